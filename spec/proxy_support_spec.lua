-- support/proxy.lua starts a real tinyproxy: these specs check the helper
-- itself with the curl tool, against a real orbt-mock, so specs of the
-- client's own proxy support can rely on it.
local orbt = require("orbt")
local mockserver = require("support.mock")
local harness = require("support.harness")
local proxies = require("support.proxy")
local shell = require("support.shell")
local json = require("dkjson")

describe("support.proxy", function()
  local env = harness.with_mock{ lazy = true, client = false, reset = false }
  local dir

  lazy_setup(function()
    dir = shell.tmpdir()
  end)

  lazy_teardown(function()
    shell.exec("rm -rf " .. shell.quote(dir))
  end)

  -- One GET through the curl tool with these extra arguments; returns the
  -- status (0 when no answer), the body, and the proxy's answer to CONNECT
  -- (0 when there was none).
  local function curl(args, url)
    local out = shell.run(("curl -s --max-time 20 -o %s -w '%%{http_code} %%{http_connect}' %s %s"):format(
      shell.quote(dir .. "/answer"), args, shell.quote(url)))
    local status, connect = out:match("^(%d+) (%d+)$")
    return tonumber(status) or 0, shell.read_file(dir .. "/answer") or "", tonumber(connect) or 0
  end

  local function contains(list, value)
    for _, v in ipairs(list) do
      if v == value then
        return true
      end
    end
    return false
  end

  describe("without authentication", function()
    local proxy

    lazy_setup(function()
      proxy = proxies.start()
    end)

    lazy_teardown(function()
      proxy:stop()
    end)

    it("listens on a loopback URL", function()
      assert.matches("^http://127%.0%.0%.1:%d+$", proxy.url)
    end)

    it("forwards a request to orbt-mock's control path and logs its request line", function()
      local before = #proxy:requests()
      local status, body = curl("-x " .. shell.quote(proxy.url), env.mock.url .. "/__mock/stats")
      assert.equal(200, status)
      assert.is_number(json.decode(body).requests_total)
      local seen = proxy:requests()
      assert.equal(before + 1, #seen)
      assert.equal(("GET %s/__mock/stats HTTP/1.1"):format(env.mock.url), seen[#seen])
    end)

    it("passes a signed API request through unchanged, without a Via header", function()
      env.mock:reset()
      local headers = {}
      local signed = assert(orbt.sign{ method = "GET", body = "", client_id = env.mock.client_id,
        api_key = env.mock.api_key, secret = env.mock.secret })
      for name, value in pairs(signed) do
        headers[#headers + 1] = "-H " .. shell.quote(name .. ": " .. value)
      end
      local status, body = curl("-x " .. shell.quote(proxy.url) .. " " .. table.concat(headers, " "),
        env.mock.url .. mockserver.PATH)
      assert.equal(200, status, body)
      assert.is_false(json.decode(body).hasNext)
      local received = env.mock:last_request()
      assert.equal(signed["x-signature"], received.headers["x-signature"])
      assert.is_nil(received.headers["via"])
      assert.is_true(contains(proxy:requests(), ("GET %s%s HTTP/1.1"):format(env.mock.url, mockserver.PATH)))
    end)

    it("opens a CONNECT tunnel to orbt-mock and logs the CONNECT line", function()
      local status, _, connect = curl("-p -x " .. shell.quote(proxy.url), env.mock.url .. "/__mock/stats")
      assert.equal(200, status)
      assert.equal(200, connect)
      assert.is_true(contains(proxy:requests(), ("CONNECT 127.0.0.1:%d HTTP/1.1"):format(env.mock.port)))
    end)
  end)

  describe("with basic_auth", function()
    local proxy

    lazy_setup(function()
      proxy = proxies.start{ basic_auth = { user = "spec-user", password = "spec.pass_1" } }
    end)

    lazy_teardown(function()
      proxy:stop()
    end)

    -- tinyproxy 1.11 answers wrong credentials with 401, not 407. The
    -- mock counts every API request, even unsigned ones (it answers 403).
    it("answers 407 without credentials and 401 with a wrong password, forwarding neither", function()
      env.mock:reset()
      local url = env.mock.url .. mockserver.PATH
      assert.equal(407, (curl("-x " .. shell.quote(proxy.url), url)))
      assert.equal(401, (curl("-x " .. shell.quote(proxy.url) .. " --proxy-user spec-user:wrong", url)))
      local _, _, connect = curl("-p -x " .. shell.quote(proxy.url), url)
      assert.equal(407, connect)
      assert.equal(0, env.mock:request_count())
      assert.equal(403, (curl("-x " .. shell.quote(proxy:url_with_credentials()), url)))
      assert.equal(1, env.mock:request_count())
    end)

    it("forwards with --proxy-user or with the credentials in the proxy URL", function()
      local url = env.mock.url .. "/__mock/stats"
      assert.equal(200, (curl("-x " .. shell.quote(proxy.url) .. " --proxy-user spec-user:spec.pass_1", url)))
      assert.equal("http://spec-user:spec.pass_1@127.0.0.1:" .. proxy.port, proxy:url_with_credentials())
      assert.equal(200, (curl("-x " .. shell.quote(proxy:url_with_credentials()), url)))
      local status, _, connect = curl("-p -x " .. shell.quote(proxy:url_with_credentials()), url)
      assert.equal(200, status)
      assert.equal(200, connect)
    end)
  end)

  it("stops cleanly: status 0, the port closed, its directory removed", function()
    local proxy = proxies.start()
    assert.equal(200, (curl("-x " .. shell.quote(proxy.url), env.mock.url .. "/__mock/stats")))
    local proxy_dir = proxy.dir
    assert.equal(0, proxy:stop())
    assert.equal(0, (curl("-x " .. shell.quote(proxy.url), env.mock.url .. "/__mock/stats")))
    assert.is_false(shell.exec("test -e " .. shell.quote(proxy_dir)))
  end)

  it("tries another port when the one it picked is taken", function()
    local first = proxies.start()
    local second = proxies.start{ port = first.port }
    assert.are_not.equal(first.port, second.port)
    assert.equal(200, (curl("-x " .. shell.quote(second.url), env.mock.url .. "/__mock/stats")))
    assert.equal(1, #second:requests())
    assert.equal(0, #first:requests())
    assert.equal(0, second:stop())
    assert.equal(0, first:stop())
  end)
end)
