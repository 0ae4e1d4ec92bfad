-- Proxies as users set them: the `proxy` option (http://, https://,
-- socks5h://, with credentials), or the environment as libcurl reads it,
-- with the option winning. Real proxies from Debian on loopback: tinyproxy
-- for HTTP (CONNECT tunnels), Dante for SOCKS5. orbt-mock counts what
-- arrives; the proxies' logs show what they carried.
local orbt = require("orbt")
local harness = require("support.harness")
local proxyserver = require("support.proxy")
local socksserver = require("support.socks")
local certs = require("support.certs")
local shell = require("support.shell")

-- No request line but CONNECTs, and nothing secret, in the proxy's log.
local function assert_only_tunnels(proxy, mock, count)
  local requests = proxy:requests()
  assert.equal(count, #requests, table.concat(requests, "\n"))
  for _, line in ipairs(requests) do
    assert.equal(("CONNECT 127.0.0.1:%d HTTP/1.1"):format(mock.port), line)
  end
  local log = proxy:log()
  assert.is_nil(log:find(mock.secret, 1, true), "the secret in the proxy's log")
  assert.is_nil(log:find(mock.api_key, 1, true), "the api key in the proxy's log")
  assert.is_nil(log:find("/api/partner", 1, true), "a request path in the proxy's log")
end

describe("the proxy option", function()
  local env = harness.with_mock{ client = false }
  local dir, files

  setup(function()
    dir = shell.tmpdir()
    files = certs.make(dir)
  end)

  local tls = harness.with_mock{ client = false,
    mock = function() return { tls = { cert = files.cert, key = files.key, ca = files.ca } } end }

  teardown(function()
    shell.exec("rm -rf " .. shell.quote(dir))
  end)

  it("creates once through an HTTP proxy, which carries only a CONNECT tunnel", function()
    local proxy = proxyserver.start()
    local client = env.mock:client{ proxy = proxy.url }
    local created = assert(client:create_customer(harness.customer()))
    assert(client:list_customers())
    client:close()
    assert.equal(101, created.id)
    local stats = env.mock:stats()
    assert.equal(1, stats.consumers)
    assert.equal(2, stats.requests_total)
    assert.equal(1, stats.connections, "one tunnel, kept alive")
    assert_only_tunnels(proxy, env.mock, 1)
    proxy:stop()
  end)

  it("authenticates to the proxy with the URL's credentials, which never reach the server", function()
    local proxy = proxyserver.start{ basic_auth = { user = "orbt", password = "pr0xy-pass" } }
    local client = env.mock:client{ proxy = proxy:url_with_credentials() }
    assert(client:create_customer(harness.customer()))
    assert.is_nil(tostring(client):find("pr0xy-pass", 1, true))
    client:close()
    assert.equal(1, env.mock:stats().consumers)
    assert_only_tunnels(proxy, env.mock, 1)
    assert.is_nil(proxy:log():find("pr0xy-pass", 1, true))
    for _, request in ipairs(env.mock:requests()) do
      for name, value in pairs(request.headers) do
        assert.is_nil(name:lower():find("proxy", 1, true), "a proxy header reached the server")
        assert.is_nil(value:find("pr0xy", 1, true))
      end
    end

    -- Without the credentials: the proxy refuses the tunnel, nothing is sent.
    local refused = env.mock:client{ proxy = proxy.url, max_retries = 1 }
    local _, err = refused:create_customer(harness.customer())
    refused:close()
    assert.equal("network", err.kind)
    assert.is_true(err.retryable, "nothing was sent: safe to repeat")
    assert.is_nil(err.message:find("may have been applied", 1, true), err.message)
    assert.equal(2, err.attempts)
    assert.equal(1, env.mock:stats().requests_total)
    proxy:stop()
  end)

  it("reaches an https:// server through the tunnel, verifying its certificate", function()
    local proxy = proxyserver.start()
    local client = tls.mock:client{ proxy = proxy.url, ca_file = files.ca }
    assert(client:create_customer(harness.customer()))
    client:close()
    assert.equal(1, tls.mock:stats().consumers)
    assert_only_tunnels(proxy, tls.mock, 1)
    proxy:stop()
  end)

  it("sends create_customers through the proxy, each create once", function()
    local proxy = proxyserver.start()
    local client = env.mock:client{ proxy = proxy.url }
    local results, failures = client:create_customers(harness.customers(4), { concurrency = 2 })
    client:close()
    assert.equal(0, failures)
    assert.equal(4, #results)
    local stats = env.mock:stats()
    assert.equal(4, stats.consumers)
    assert.equal(4, stats.requests_total)
    assert_only_tunnels(proxy, env.mock, stats.connections)
    proxy:stop()
  end)

  it("goes through a SOCKS5 proxy", function()
    local socks = socksserver.start()
    local client = env.mock:client{ proxy = socks.url }
    assert(client:create_customer(harness.customer()))
    client:close()
    assert.equal(1, env.mock:stats().consumers)
    assert.matches("pass%(%d+%): tcp/connect", socks:log())
    socks:stop()
  end)

  it("refuses a proxy that is not a proxy URL before any traffic", function()
    for _, bad in ipairs{ "ftp://127.0.0.1:21", "http://127.0.0.1:3128/path", "http://", 3128, true } do
      local client, err = orbt.new{ api_key = "k", client_id = "c", secret = "s", proxy = bad }
      assert.is_nil(client, tostring(bad))
      assert.equal("proxy", err.field)
    end
    local _, err = orbt.new{ api_key = "k", client_id = "c", secret = "s", proxy_ca_file = "/nonexistent/ca.pem" }
    assert.equal("proxy_ca_file", err.field)
  end)

  -- The environment is read when the client is made, as libcurl reads it:
  -- a child process has its own.
  local function run_with_env(vars, script)
    local source = ("local orbt = require('orbt'); local c = assert(orbt.new{api_key=%q, client_id=%q, "
      .. "secret=%q, base_url=%q, max_retries=0, proxy=%s}); local r, e = c:list_customers(); "
      .. "io.write(r and 'ok' or tostring(e))"):format(env.mock.api_key, env.mock.client_id, env.mock.secret,
      env.mock.url, script or "nil")
    return shell.run("env -u http_proxy -u https_proxy -u all_proxy -u ALL_PROXY -u no_proxy -u NO_PROXY "
      .. shell.lua_command(source, vars) .. " 2>&1")
  end

  it("takes the proxy from the environment, and the option wins over it", function()
    local proxy = proxyserver.start()
    local dead = "http://127.0.0.1:9"
    assert.equal("ok", run_with_env({ http_proxy = proxy.url }))
    assert.equal(1, #proxy:requests(), "http_proxy was used")
    assert.equal("ok", run_with_env({ all_proxy = proxy.url }))
    assert.equal(2, #proxy:requests(), "all_proxy was used")
    -- An https_proxy is for https:// servers only.
    assert.equal("ok", run_with_env({ https_proxy = dead }))
    -- The option wins; false means none; no_proxy skips it.
    assert.equal("ok", run_with_env({ http_proxy = dead }, ("%q"):format(proxy.url)))
    assert.equal(3, #proxy:requests())
    assert.equal("ok", run_with_env({ http_proxy = dead }, "false"))
    assert.equal("ok", run_with_env({ http_proxy = dead, no_proxy = "localhost,127.0.0.0/8" }))
    assert.equal("ok", run_with_env({ http_proxy = dead, NO_PROXY = "127.0.0.1" }))
    local through_dead = run_with_env({ http_proxy = dead })
    assert.matches("^orbt: network: ", through_dead)
    assert.equal(3, #proxy:requests())
    proxy:stop()
  end)
end)

describe("proxies in nginx, over cosockets #nginx", function()
  local json = require("dkjson")
  local env_proxy

  setup(function()
    env_proxy = proxyserver.start()
  end)

  -- nginx's environment: what a user passes in with `env https_proxy;`.
  local env = harness.with_mock{ client = false,
    nginx = function() return { env = { https_proxy = env_proxy.url } } end }

  teardown(function()
    env_proxy:stop()
  end)

  -- The calls, made by a handler on a client with these options.
  local function calls(options, list)
    local opts = { api_key = env.mock.api_key, client_id = env.mock.client_id, secret = env.mock.secret,
      base_url = env.mock.url, timeout = 5, max_retries = 1, transport = "cosocket" }
    for k, v in pairs(options) do
      opts[k] = v
    end
    local status, body = env.nginx:post("/calls", json.encode({ options = opts, calls = list }))
    assert.equal(200, status, body)
    return assert(json.decode(body), body)
  end

  it("creates once through an http:// proxy: a CONNECT over the cosocket", function()
    local proxy = proxyserver.start()
    local got = calls({ proxy = proxy.url }, { { "create_customer", harness.customer() }, { "list_customers", {} } })
    assert.is_true(got[1].ok, got[1].message)
    assert.is_true(got[2].ok, got[2].message)
    assert.equal(1, env.mock:stats().consumers)
    assert.equal(2, env.mock:stats().requests_total)
    assert_only_tunnels(proxy, env.mock, 1)
    proxy:stop()
  end)

  it("authenticates to the proxy, and a refused tunnel is not sent", function()
    local proxy = proxyserver.start{ basic_auth = { user = "orbt", password = "pr0xy-pass" } }
    local got = calls({ proxy = proxy:url_with_credentials() }, { { "create_customer", harness.customer() } })
    assert.is_true(got[1].ok, got[1].message)
    assert_only_tunnels(proxy, env.mock, 1)
    got = calls({ proxy = proxy.url }, { { "create_customer", harness.customer() } })
    assert.is_false(got[1].ok)
    assert.equal("network", got[1].kind)
    assert.is_true(got[1].retryable, got[1].message)
    assert.equal(2, got[1].attempts)
    assert.matches("refused the tunnel: 407", got[1].message, 1, true)
    assert.equal(1, env.mock:stats().requests_total)
    proxy:stop()
  end)

  it("reaches an https:// server through the tunnel, then TLS with the server", function()
    local proxy = proxyserver.start()
    local got = calls({ proxy = proxy.url, base_url = env.nginx.settings.tls_url },
      { { "create_customer", harness.customer() } })
    assert.is_true(got[1].ok, got[1].message)
    assert.equal(1, env.mock:stats().consumers)
    local requests = proxy:requests()
    assert.same({ ("CONNECT %s HTTP/1.1"):format(env.nginx.settings.tls_url:match("//(.*)$")) }, requests)
    proxy:stop()
  end)

  it("takes https_proxy from nginx's environment", function()
    local before = #env_proxy:requests()
    local got = calls({ base_url = env.nginx.settings.tls_url }, { { "list_customers", {} } })
    assert.is_true(got[1].ok, got[1].message)
    assert.equal(before + 1, #env_proxy:requests())
    -- proxy = false goes straight to the server.
    got = calls({ base_url = env.nginx.settings.tls_url, proxy = false }, { { "list_customers", {} } })
    assert.is_true(got[1].ok, got[1].message)
    assert.equal(before + 1, #env_proxy:requests())
  end)

  it("refuses, before any traffic, what cosockets cannot do: at orbt.new for transport = \"cosocket\", "
    .. "at the call for \"auto\"", function()
    local cases = {
      { options = { proxy = "socks5h://127.0.0.1:1080" }, field = "proxy", says = "needs libcurl" },
      { options = { proxy = "https://127.0.0.1:3129", base_url = env.nginx.settings.tls_url }, field = "proxy",
        says = "inside TLS" },
      { options = { proxy = env_proxy.url, proxy_ca_file = env.nginx.settings.ca_file }, field = "proxy_ca_file",
        says = "lua_ssl_trusted_certificate" },
    }
    for _, case in ipairs(cases) do
      local got = calls(case.options, { { "list_customers", {} } })
      local at_new = got.new_error
      assert.equal("invalid", at_new.kind)
      assert.equal(case.field, at_new.field)
      assert.matches(case.says, at_new.message, 1, true)
      local options = { transport = "auto" }
      for k, v in pairs(case.options) do
        options[k] = v
      end
      got = calls(options, { { "list_customers", {} } })
      assert.equal("invalid", got[1].kind)
      assert.equal(case.field, got[1].field)
      assert.equal(at_new.message, got[1].message) -- the same words either way
    end
    assert.equal(0, env.mock:stats().requests_total)
  end)
end)
