-- orbt frames HTTP/1.1 itself on the connection libcurl opens (src/http1.c
-- reads the answers). These specs talk to a server that sends exact bytes
-- (support/raw_server.lua) over a real loopback socket: answers in pieces,
-- interim answers, every way a body can end, broken framing, and
-- connections that close at the worst moment.
local orbt = require("orbt")
local raw = require("support.raw")
local mockserver = require("support.mock")

local answer, PAGE, CREATED = raw.answer, raw.PAGE, raw.CREATED

local function chunked(body, size)
  local parts = {}
  for i = 1, #body, size do
    local piece = body:sub(i, i + size - 1)
    parts[#parts + 1] = ("%x;ext=1\r\n%s\r\n"):format(#piece, piece)
  end
  return table.concat(parts) .. "0\r\nX-Trailer: 1\r\n\r\n"
end

local function scenario(steps)
  local lines = { "return {" }
  for _, step in ipairs(steps) do
    lines[#lines + 1] = ("  { bytes = %q, close = %s, pieces = %s, hold = %s, later = %s },"):format(
      step.bytes or "", tostring(step.close or false), tostring(step.pieces), tostring(step.hold),
      step.later and ("%q"):format(step.later) or "nil")
  end
  lines[#lines + 1] = "}"
  return table.concat(lines, "\n")
end

local CUSTOMER = { fullName = "A B", email = "a@b.io", currency = "USD", initialFunds = 1 }

describe("HTTP/1.1 framing", function()
  local server, client

  local function serve(steps, options)
    server = raw.start(scenario(steps))
    local opts = { api_key = mockserver.API_KEY, client_id = mockserver.CLIENT_ID, secret = "s3cret",
      base_url = server.url, timeout = 5, max_retries = 0, transport = "curl" }
    for k, v in pairs(options or {}) do opts[k] = v end
    client = assert(orbt.new(opts))
  end

  after_each(function()
    if client then client:close() end
    if server then server:cleanup() end
    client, server = nil, nil
  end)

  it("sends one well-formed request line and Host header, and keeps the connection", function()
    local ok = { bytes = answer("200 OK", PAGE) }
    serve{ ok, ok, { bytes = answer("201 Created", CREATED) } }
    assert(client:list_customers{ page = 2, size = 5 })
    assert(client:list_customers())
    assert(client:create_customer(CUSTOMER))
    local seen = server:seen()
    assert.equal(1, seen.connections)
    assert.equal("GET /api/partner/v1/customer?page=2&size=5 HTTP/1.1", seen.requests[1])
    assert.equal("POST /api/partner/v1/customer HTTP/1.1", seen.requests[3])
  end)

  it("reads an answer that arrives a byte at a time, chunked with extensions and trailers", function()
    local body = chunked(PAGE, 7)
    serve{ { bytes = "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n" .. body, pieces = 1 } }
    local page = assert(client:list_customers())
    assert.equal(7, page.content[1].id)
    assert.is_false(page.hasNext)
  end)

  it("skips interim 1xx answers and takes the final one", function()
    serve{ { bytes = "HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 103 Early Hints\r\nLink: </x>\r\n\r\n"
      .. answer("201 Created", CREATED) } }
    local customer = assert(client:create_customer(CUSTOMER))
    assert.equal(8, customer.id)
  end)

  it("reads a body that runs to the close, and opens a new connection after it", function()
    serve{ { bytes = "HTTP/1.0 200 OK\r\nContent-Type: application/json\r\n\r\n" .. PAGE, close = true },
      { bytes = answer("200 OK", PAGE) } }
    assert.equal(7, assert(client:list_customers()).content[1].id)
    assert(client:list_customers())
    assert.equal(2, server:seen().connections)
  end)

  it("does not use a connection again after Connection: close or bytes past the answer", function()
    serve{ { bytes = answer("200 OK", PAGE, { "Connection: keep-alive, close" }) },
      { bytes = answer("200 OK", PAGE) .. "HTTP/1.1 200 OK\r\n" },
      { bytes = answer("200 OK", PAGE) } }
    for _ = 1, 3 do assert(client:list_customers()) end
    assert.equal(3, server:seen().connections)
  end)

  it("takes Retry-After and the status of an error answer", function()
    serve{ { bytes = answer("503 Service Unavailable", '{"code":"BUSY","message":"busy"}', { "Retry-After: 120" }) } }
    local page, err = client:list_customers()
    assert.is_nil(page)
    assert.equal("api", err.kind)
    assert.equal(503, err.status)
    assert.equal(120, err.retry_after)
  end)

  local CHUNKED = "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n"
  local broken = {
    { "a status line that is not HTTP/1.x", "HTTP/2 200\r\n\r\n", "status line" },
    { "conflicting Content-Length headers",
      "HTTP/1.1 200 OK\r\nContent-Length: 3\r\nContent-Length: 4\r\n\r\n{}}", "conflicting" },
    { "a Transfer-Encoding other than chunked",
      "HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip\r\n\r\n", "Transfer-Encoding" },
    { "a folded header line",
      "HTTP/1.1 200 OK\r\nX-A: 1\r\n  2\r\nContent-Length: 2\r\n\r\n{}", "malformed header" },
    { "a NUL in the header", "HTTP/1.1 200 OK\r\nX-A: \0\r\nContent-Length: 2\r\n\r\n{}", "NUL" },
    { "a bare CR in the header", "HTTP/1.1 200 OK\r\nX-A: 1\r2\r\nContent-Length: 2\r\n\r\n{}", "bare CR" },
    { "a bad chunk size", CHUNKED .. "zz\r\n", "chunk size" },
    { "chunk data longer than its size", CHUNKED .. "2\r\n{}}\r\n0\r\n\r\n", "longer than its size" },
    { "a body cut short by the close",
      "HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\n{\"content\":", "before the answer was complete" },
    { "a 101 Switching Protocols", "HTTP/1.1 101 Switching Protocols\r\n\r\n", "101" },
  }
  for _, case in ipairs(broken) do
    it("refuses " .. case[1] .. " as a network error, and recovers", function()
      serve{ { bytes = case[2], close = true }, { bytes = answer("200 OK", PAGE) } }
      local page, err = client:list_customers()
      assert.is_nil(page)
      assert.equal("network", err.kind)
      assert.matches(case[3], err.message, 1, true)
      assert(client:list_customers(), "the next call works on a new connection")
      assert.equal(2, server:seen().connections)
    end)
  end

  it("refuses a chunked body past max_body before reading it", function()
    serve{ { bytes = "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n100000\r\n", close = true } }
    client:close()
    client = assert(orbt.new{ api_key = mockserver.API_KEY, client_id = mockserver.CLIENT_ID, secret = "s3cret",
      base_url = server.url, max_retries = 0, max_body = 4096 })
    local page, err = client:list_customers()
    assert.is_nil(page)
    assert.matches("max_body", err.message)
  end)

  it("opens a new connection for a GET when the server closed the kept-alive one", function()
    serve{ { bytes = answer("200 OK", PAGE), close = true }, { bytes = answer("200 OK", PAGE) } }
    assert(client:list_customers())
    require("support.shell").sleep(0.1)
    assert(client:list_customers())
    local seen = server:seen()
    assert.equal(2, seen.connections)
    assert.equal(2, #seen.requests)
  end)

  it("sends a GET once more on a new connection when the kept-alive one dies before any answer", function()
    serve{ { bytes = answer("200 OK", PAGE) }, { close = true }, { bytes = answer("200 OK", PAGE) } }
    assert(client:list_customers())
    assert.equal(7, assert(client:list_customers()).content[1].id)
    local seen = server:seen()
    assert.equal(2, seen.connections)
    assert.equal(3, #seen.requests)
  end)

  it("does not take bytes a server sent unasked on an idle connection for the next answer", function()
    local stale = answer("408 Request Timeout", '{"code":"TIMEOUT","message":"idle"}')
    serve{ { bytes = answer("200 OK", PAGE), later = stale }, { bytes = answer("200 OK", PAGE) } }
    assert(client:list_customers())
    require("support.shell").sleep(0.2)
    assert.equal(7, assert(client:list_customers()).content[1].id)
    assert.equal(2, server:seen().connections)
  end)

  it("checks a kept-alive connection before a create, and creates once on a new one", function()
    serve{ { bytes = answer("200 OK", PAGE), close = true }, { bytes = answer("201 Created", CREATED) } }
    assert(client:list_customers())
    require("support.shell").sleep(0.1)
    assert.equal(8, assert(client:create_customer(CUSTOMER)).id)
    local seen = server:seen()
    assert.equal(2, seen.connections)
    assert.same({ "GET /api/partner/v1/customer HTTP/1.1", "POST /api/partner/v1/customer HTTP/1.1" },
      seen.requests)
  end)

  it("never sends a create twice when the connection closes after it was read", function()
    serve{ { bytes = answer("200 OK", PAGE) }, { close = true }, { bytes = answer("201 Created", CREATED) } }
    assert(client:list_customers())
    local customer, err = client:create_customer(CUSTOMER)
    assert.is_nil(customer)
    assert.equal("network", err.kind)
    assert.is_false(err.retryable)
    assert.matches("may have been applied", err.message)
    assert.equal(2, #server:seen().requests)
  end)

  it("times out on a server that never answers, within the timeout", function()
    serve{ { hold = 3, bytes = answer("200 OK", PAGE) } }
    client:close()
    client = assert(orbt.new{ api_key = mockserver.API_KEY, client_id = mockserver.CLIENT_ID, secret = "s3cret",
      base_url = server.url, timeout = 0.3, max_retries = 0 })
    local started = os.time()
    local page, err = client:list_customers()
    assert.is_nil(page)
    assert.equal("timeout", err.kind)
    assert.is_true(os.time() - started <= 2)
  end)
end)
