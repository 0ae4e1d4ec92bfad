-- The core's interface for a transport written in Lua (what the nginx
-- transport uses): client:_prepare signs and frames a request, any byte
-- mover sends it and feeds what comes back to the core's reader, and
-- client:_answer turns it into the call's result. Here the byte mover is
-- LuaSocket, against a real orbt-mock.
local socket = require("socket")
local mockserver = require("support.mock")
local harness = require("support.harness")

local PATH = mockserver.PATH

-- Sends rq.wire on a new connection and feeds the answer to rq.reader.
-- Returns the reader's last state and whether the connection could be kept.
local function exchange(url, rq)
  local host, port = url:match("^http://([^:/]+):(%d+)")
  local conn = assert(socket.connect(host, tonumber(port)))
  assert(conn:send(rq.wire))
  -- Whatever has arrived, in pieces of up to 512 bytes.
  conn:settimeout(0.01)
  local state, keep = "more", false
  local give_up = socket.gettime() + 10
  repeat
    local data, err, partial = conn:receive(512)
    data = data or partial
    if data and #data > 0 then
      state, keep = rq.reader:feed(data)
    end
    if err == "closed" and state == "more" then
      state, keep = rq.reader:close()
    end
    assert(err == nil or err == "closed" or err == "timeout", err)
    assert(socket.gettime() < give_up, "no complete answer within 10 s")
  until state ~= "more"
  conn:close()
  return state, keep
end

describe("client:_prepare and client:_answer", function()
  local env = harness.with_mock()

  it("prepares a signed request that orbt-mock accepts, and reads its answer", function()
    local rq = assert(env.client:_prepare("create_customer", {
      fullName = "Prepared", email = "prepared@example.com", currency = "USD", initialFunds = 19.99 }))
    assert.equal("POST", rq.method)
    assert.equal(PATH, rq.target)
    assert.is_false(rq.may_resend, "a create never goes twice")
    assert.matches("^POST /api/partner/v1/customer HTTP/1%.1\r\nHost: 127%.0%.0%.1:%d+\r\n", rq.wire)
    assert.matches("\r\nx%-signature: [%w+/=]+\r\n", rq.wire)
    assert.matches("\r\nContent%-Length: 92\r\n\r\n"
      .. '{"fullName":"Prepared","email":"prepared@example.com","currency":"USD","initialFunds":19.99}$', rq.wire)
    local state, keep = exchange(env.mock.url, rq)
    assert.equal("done", state)
    assert.is_true(keep)
    local customer = assert(env.client:_answer{ reader = rq.reader, sent = true })
    assert.equal(101, customer.id)
    assert.equal(0, env.mock:stats().auth_failures)

    rq = assert(env.client:_prepare("list_customers", { page = 0, size = 1 }))
    assert.same({ "GET", PATH .. "?page=0&size=1", true }, { rq.method, rq.target, rq.may_resend })
    assert.is_nil(rq.wire:find("Content-Length", 1, true), "a GET has no body")
    exchange(env.mock.url, rq)
    local page = assert(env.client:_answer{ reader = rq.reader, sent = true })
    assert.equal(101, page.content[1].consumerId)
  end)

  it("refuses bad arguments before preparing anything", function()
    local rq, err = env.client:_prepare("list_customers", { size = 99 })
    assert.is_nil(rq)
    assert.equal("invalid", err.kind)
    assert.equal("size", err.field)
    assert.has_error(function() env.client:_prepare("delete_everything", {}) end)
  end)

  it("reads the answer from any pieces, and says when the connection cannot be kept", function()
    local rq = assert(env.client:_prepare("list_customers", {}))
    local body = '{"content":[],"page":0,"size":20,"hasNext":false}'
    local answer = ("HTTP/1.1 200 OK\r\nContent-Length: %d\r\n\r\n%s"):format(#body, body)
    for i = 1, #answer - 1 do
      assert.equal("more", (rq.reader:feed(answer:sub(i, i))))
    end
    assert.equal(#answer - 1, rq.reader:received())
    local state, keep = rq.reader:feed(answer:sub(-1) .. "HTTP/1.1 200")
    assert.same({ "done", false }, { state, keep }, "bytes past the answer: not kept")
    assert.equal(200, rq.reader:status())
    assert.same({ content = {}, page = 0, size = 20, hasNext = false },
      assert(env.client:_answer{ reader = rq.reader }))

    rq = assert(env.client:_prepare("list_customers", {}))
    rq.reader:feed("HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\n{")
    assert.equal("bad", (rq.reader:close()))
    assert.matches("before the answer was complete", rq.reader:message())
    local _, err = env.client:_answer{ reader = rq.reader, sent = true }
    assert.equal("network", err.kind)
    assert.equal(200, err.status)
  end)

  it("turns transport failures into the same errors as libcurl's", function()
    local create = harness.customer()
    local rq = env.client:_prepare("create_customer", create)
    local _, never_sent = env.client:_answer{ reader = rq.reader, failure = "network", message = "could not connect",
      sent = false }
    assert.equal("network", never_sent.kind)
    assert.is_true(never_sent.retryable, "a create that never left is safe to repeat")

    rq = env.client:_prepare("create_customer", create)
    rq.reader:feed("HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\n{")
    local _, cut = env.client:_answer{ reader = rq.reader, failure = "network", message = "closed", sent = true }
    assert.equal(200, cut.status)
    assert.is_false(cut.retryable)
    assert.matches("may have been applied", cut.message)

    rq = env.client:_prepare("list_customers", {})
    local _, slow = env.client:_answer{ reader = rq.reader, failure = "timeout", message = "the call's timeout passed",
      sent = true }
    assert.equal("timeout", slow.kind)
    assert.is_true(slow.retryable)

    rq = env.client:_prepare("list_customers", {})
    local _, refused = env.client:_answer{ reader = rq.reader, failure = "certificate", sent = false,
      message = "TLS handshake with h failed: 18: self-signed certificate" }
    assert.equal("network", refused.kind)
    assert.is_false(refused.retryable, "a refused certificate is refused again")
    assert.matches("not trusted", refused.message)
  end)

  it("gives the delay before the next attempt when the policy wants one", function()
    local rq = env.client:_prepare("list_customers", {})
    rq.reader:feed("HTTP/1.1 503 Service Unavailable\r\nRetry-After: 1\r\nContent-Length: 2\r\n\r\n{}")
    local result, err, delay = env.client:_answer{ reader = rq.reader, sent = true, attempt = 1, max_retries = 2,
      seconds_left = 30 }
    assert.is_nil(result)
    assert.equal(503, err.status)
    assert.equal(1, delay)
    rq = env.client:_prepare("create_customer", harness.customer())
    rq.reader:feed("HTTP/1.1 503 Service Unavailable\r\nContent-Length: 2\r\n\r\n{}")
    result, err, delay = env.client:_answer{ reader = rq.reader, sent = true, attempt = 1, max_retries = 2,
      seconds_left = 30 }
    assert.is_nil(result)
    assert.equal(503, err.status)
    assert.is_nil(delay, "a create that reached the server is not tried again")
  end)

  it("reads a proxy's answer to CONNECT with the same reader", function()
    local reader = env.client:_tunnel()
    local state, keep = reader:feed("HTTP/1.1 200 Connection established\r\nProxy-Agent: x\r\n\r\n")
    assert.same({ "done", true }, { state, keep })
    reader = env.client:_tunnel()
    reader:feed("HTTP/1.1 407 Proxy Authentication Required\r\nContent-Length: 5\r\n\r\nno no")
    assert.equal(407, reader:status())
    assert.has_error(function() env.client:_answer{ reader = reader } end)
  end)

  it("gives the transport the client's settings, read once by the core", function()
    local s = env.client:_settings()
    assert.same({ "http", "127.0.0.1", "127.0.0.1", env.mock.port, false, "127.0.0.1:" .. env.mock.port },
      { s.scheme, s.host, s.address, s.port, s.tls, s.authority })
    assert.equal(10, s.timeout)
    assert.equal("auto", s.transport)
    assert.is_nil(s.proxy)
    local other = require("orbt").new{ api_key = "k", client_id = "c", secret = "s",
      base_url = "https://localhost:8443/sandbox/", proxy = "http://user:pa%3Ass@127.0.0.1:3128" }
    s = other:_settings()
    assert.same({ "https", "localhost", "127.0.0.1", 8443, true }, { s.scheme, s.host, s.address, s.port, s.tls })
    assert.same({ "http", "127.0.0.1", 3128, false }, { s.proxy.scheme, s.proxy.host, s.proxy.port, s.proxy.tls })
    -- user:pa:ss, Base64
    assert.equal("CONNECT localhost:8443 HTTP/1.1\r\nHost: localhost:8443\r\nUser-Agent: orbt-lua/"
      .. require("orbt")._VERSION .. " (nginx cosocket)\r\nProxy-Authorization: Basic dXNlcjpwYTpzcw==\r\n\r\n",
      s.proxy.connect)
    assert.is_nil(s.pool:find("user", 1, true), "the pool name holds no credentials")
    assert.are_not.equal(s.pool, env.client:_settings().pool)
    other:close()
  end)

  it("sends CONNECT to the server's host and port, as libcurl does, default port or not", function()
    for base, target in pairs{ ["https://partner.orbt.com"] = "partner.orbt.com:443",
      ["http://127.0.0.1"] = "127.0.0.1:80", ["https://partner.orbt.com:8443"] = "partner.orbt.com:8443",
      ["https://[::1]"] = "[::1]:443" } do
      local other = assert(require("orbt").new{ api_key = "k", client_id = "c", secret = "s", base_url = base,
        proxy = "http://proxy.example:3128" })
      local connect = other:_settings().proxy.connect
      other:close()
      assert.equal("CONNECT " .. target .. " HTTP/1.1\r\nHost: " .. target .. "\r\n",
        connect:match("^[^\n]*\n[^\n]*\n"))
    end
  end)

  -- The descriptors this process has open.
  local function open_descriptors()
    local n = 0
    local ls = assert(io.popen("ls /proc/" .. io.open("/proc/self/stat"):read("*l"):match("^%d+") .. "/fd"))
    for _ in ls:lines() do n = n + 1 end
    ls:close()
    return n
  end

  it("releases a closed client once a prepared call is abandoned (its reader collected)", function()
    local client = env.client
    assert(client:list_customers{ size = 1 }) -- a kept-alive libcurl connection
    local rq = assert(client:_prepare("list_customers", { size = 1 }))
    client:close()                             -- waits for the call in flight
    assert.is_userdata(rq.reader)
    local before = open_descriptors()
    rq = nil -- luacheck: ignore 311 (the transport dropped the call)
    collectgarbage()
    collectgarbage()
    assert.is_true(open_descriptors() < before, "the connection was not closed")
    local _, err = client:list_customers()
    assert.matches("closed", err.message)
  end)

  it("lets a call in flight finish when the client is closed meanwhile", function()
    local rq = env.client:_prepare("list_customers", { size = 1 })
    env.client:close()
    local _, refused = env.client:list_customers()
    assert.matches("closed", refused.message)
    -- The answer still decodes: close() waited for it. Then the client is closed.
    exchange(env.mock.url, rq)
    local page = assert(env.client:_answer{ reader = rq.reader, sent = true })
    assert.is_table(page.content)
    local _, after = env.client:_prepare("list_customers", {})
    assert.equal("invalid", after.kind)
    assert.matches("closed", after.message)
  end)
end)
