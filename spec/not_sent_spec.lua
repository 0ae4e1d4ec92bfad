-- A failure before the first byte of a request leaves orbt is "not sent" on
-- every path, one call or many at once: DNS, connect, the proxy's refusal
-- or authentication, SOCKS, and the TLS handshake. Such a create is safe to
-- repeat (retryable, retried) and never said to "may have been applied";
-- a refused certificate is the exception: it fails the same way every time,
-- so it is not retried. Every server here is real, on loopback.
local mockserver = require("support.mock")
local harness = require("support.harness")
local proxyserver = require("support.proxy")
local socksserver = require("support.socks")
local certs = require("support.certs")
local shell = require("support.shell")

-- An extra certificate signed by the CA in dir, for `name`, valid for
-- `days` (negative: already expired).
local function certificate(dir, file, name, days)
  local q = shell.quote
  local base = dir .. "/" .. file
  local steps = {
    ("openssl req -newkey rsa:2048 -nodes -subj /CN=%s -keyout %s -out %s"):format(name, q(base .. ".key"),
      q(base .. ".csr")),
    ("printf 'subjectAltName=DNS:%s\\n' > %s"):format(name, q(base .. ".ext")),
    ("openssl x509 -req -in %s -CA %s -CAkey %s -CAcreateserial -days %d -extfile %s -out %s")
      :format(q(base .. ".csr"), q(dir .. "/ca.pem"), q(dir .. "/ca.key"), days, q(base .. ".ext"), q(base .. ".pem")),
  }
  for _, step in ipairs(steps) do
    local out, ok = shell.run(step .. " 2>&1")
    assert(ok, out)
  end
  return { cert = base .. ".pem", key = base .. ".key" }
end

-- A TLS server that speaks TLS 1.0 only (openssl s_server), on a free port.
local function tls10_server(dir, files)
  for _ = 1, 10 do
    local port = shell.random_port()
    local script = ("openssl s_server -quiet -accept 127.0.0.1:%d -cert %s -key %s -tls1 "
      .. "-cipher 'DEFAULT:@SECLEVEL=0' >%s/s_server.out 2>&1 & echo $! >%s/s_server.pid")
      :format(port, shell.quote(files.cert), shell.quote(files.key), dir, dir)
    shell.exec("sh -c " .. shell.quote(script))
    local up = shell.wait_for(function()
      return shell.exec(("bash -c 'exec 3<>/dev/tcp/127.0.0.1/%d' 2>/dev/null"):format(port)) and "up" or nil
    end, 3)
    local pid = tonumber((shell.read_file(dir .. "/s_server.pid") or ""):match("%d+"))
    -- Listening, and ours: not another server on a port that was taken.
    if up and pid and shell.exec("kill -0 " .. pid .. " 2>/dev/null") then
      return port, pid
    end
    if pid then shell.exec("kill " .. pid .. " 2>/dev/null") end
  end
  error("openssl s_server did not start")
end

describe("failures before anything is sent", function()
  local env = harness.with_mock{ client = false, reset = false }
  local dir, files, servers

  setup(function()
    dir = shell.tmpdir()
    files = certs.make(dir)
    servers = {}
  end)

  teardown(function()
    for _, stop in ipairs(servers) do
      stop()
    end
    shell.exec("rm -rf " .. shell.quote(dir))
  end)

  -- A mock serving TLS with a certificate the client will refuse; the
  -- specs' own control requests do not check it.
  local function mock_with(tls)
    tls.insecure = true
    local m = mockserver.start{ tls = tls }
    servers[#servers + 1] = function() m:cleanup() end
    return m
  end

  local function proxy_with(opts)
    local p = proxyserver.start(opts)
    servers[#servers + 1] = function() p:stop() end
    return p
  end

  -- Each case: the client's options, and the mock that must see nothing.
  local cases = {
    { "a name that does not resolve", function()
      return { base_url = "https://orbt-spec.invalid", connect_timeout = 2 }
    end },
    { "a refused connection", function()
      return { base_url = "http://127.0.0.1:9" }
    end },
    { "a certificate for another name", function()
      local m = mock_with(certificate(dir, "other", "other.example", 2))
      return { base_url = m.url, ca_file = files.ca }, m, true
    end },
    { "an expired certificate", function()
      local m = mock_with(certificate(dir, "expired", "localhost", -1))
      return { base_url = m.url:gsub("127%.0%.0%.1", "localhost"), ca_file = files.ca }, m, true
    end },
    { "a certificate nobody trusts", function()
      local m = mock_with({ cert = files.untrusted_cert, key = files.untrusted_key })
      return { base_url = m.url, ca_file = files.ca }, m, true
    end },
    { "a server that speaks only TLS 1.0", function()
      local port, pid = tls10_server(dir, files)
      servers[#servers + 1] = function() shell.exec("kill " .. pid .. " 2>/dev/null") end
      return { base_url = ("https://127.0.0.1:%d"):format(port), ca_file = files.ca }
    end },
    { "an HTTP proxy that asks for credentials (407)", function()
      return { proxy = proxy_with{ basic_auth = { user = "u", password = "p" } }.url }, env.mock
    end },
    { "an HTTP proxy that refuses the tunnel", function()
      return { proxy = proxy_with{ connect_ports = { 443 } }.url }, env.mock
    end },
    { "a proxy that cannot be reached", function()
      return { proxy = "http://127.0.0.1:9" }, env.mock
    end },
    { "a SOCKS5 proxy that refuses the connection", function()
      local socks = socksserver.start{ refuse = true }
      servers[#servers + 1] = function() socks:stop() end
      return { proxy = socks.url }, env.mock
    end },
  }

  local function assert_not_sent(err, lasting)
    assert.equal("network", err.kind, tostring(err))
    assert.is_nil(err.status)
    assert.is_nil(err.message:find("may have been applied", 1, true), err.message)
    assert.equal(not lasting, err.retryable, err.message)
    -- With max_retries = 1: tried again unless the certificate was refused.
    assert.equal(lasting and 1 or 2, err.attempts, err.message)
    if lasting then
      assert.matches("not trusted", err.message, 1, true)
    end
  end

  for _, case in ipairs(cases) do
    it(case[1] .. ": one create, and create_customers", function()
      local overrides, target, lasting = case[2]()
      overrides.max_retries = 1
      overrides.timeout = overrides.timeout or 5
      local client = env.mock:client(overrides)
      local created, err = client:create_customer(harness.customer())
      assert.is_nil(created)
      assert_not_sent(err, lasting)
      local results, failures = client:create_customers(harness.customers(2), { concurrency = 2 })
      client:close()
      assert.equal(2, failures)
      for _, result in ipairs(results) do
        assert_not_sent(result, lasting)
      end
      if target then
        assert.equal(0, target:stats().requests_total, "a request reached the server")
      end
    end)
  end
end)
