-- HTTP/1.1 framing, the same on every transport: one libcurl call at a
-- time, libcurl's connections driven many at once (the bulk engine, as
-- create_customers uses it), and nginx cosockets. Each case is a server
-- that sends exact bytes (support/raw_server.lua) over a real loopback
-- socket, the calls made against it, and one expected outcome per call and
-- for what the server saw; each transport must meet the same expectations.
local json = require("dkjson")
local orbt = require("orbt")
local raw = require("support.raw")
local shell = require("support.shell")
local mockserver = require("support.mock")
local harness = require("support.harness")

local answer, PAGE, CREATED = raw.answer, raw.PAGE, raw.CREATED

local function chunked(body, size)
  return raw.chunked(body, size, ";ext=1", "X-Trailer: 1\r\n")
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
local LIST = { "list_customers", {} }
local CREATE = { "create_customer", CUSTOMER }
local PAGE_OK = { ok = true, id = 7 }
local CREATED_OK = { ok = true, id = 8 }
local CHUNKED = "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n"
local GET_LINE = "GET /api/partner/v1/customer HTTP/1.1"
local POST_LINE = "POST /api/partner/v1/customer HTTP/1.1"

local function broken(name, bytes, message)
  return {
    name = "refuses " .. name .. " as a network error, and recovers",
    steps = { { bytes = bytes, close = true }, { bytes = answer("200 OK", PAGE) } },
    calls = { LIST, LIST },
    expect = { { kind = "network", message = message }, PAGE_OK },
    connections = 2,
  }
end

-- name, steps (one per request, in the order they arrive), calls, the
-- expected outcome of each call, and what the server saw.
local CASES = {
  {
    name = "sends one well-formed request line and Host header, and keeps the connection",
    steps = { { bytes = answer("200 OK", PAGE) }, { bytes = answer("200 OK", PAGE) },
      { bytes = answer("200 OK", CREATED) } },
    calls = { { "list_customers", { page = 2, size = 5 } }, LIST, CREATE },
    expect = { PAGE_OK, PAGE_OK, CREATED_OK },
    connections = 1,
    requests = { "GET /api/partner/v1/customer?page=2&size=5 HTTP/1.1", GET_LINE, POST_LINE },
  },
  {
    name = "reads an answer that arrives a byte at a time, chunked with extensions and trailers",
    steps = { { bytes = CHUNKED .. chunked(PAGE, 7), pieces = 1 } },
    calls = { LIST },
    expect = { PAGE_OK },
  },
  {
    name = "skips interim 1xx answers (100 Continue, 103) and takes the final one",
    steps = { { bytes = "HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 103 Early Hints\r\nLink: </x>\r\n\r\n"
      .. answer("200 OK", CREATED) } },
    calls = { CREATE },
    expect = { CREATED_OK },
  },
  {
    name = "reads a body that runs to the close, and opens a new connection after it",
    steps = { { bytes = "HTTP/1.0 200 OK\r\nContent-Type: application/json\r\n\r\n" .. PAGE, close = true },
      { bytes = answer("200 OK", PAGE) } },
    calls = { LIST, LIST },
    expect = { PAGE_OK, PAGE_OK },
    connections = 2,
  },
  {
    name = "does not use a connection again after Connection: close or bytes past the answer",
    steps = { { bytes = answer("200 OK", PAGE, { "Connection: keep-alive, close" }) },
      { bytes = answer("200 OK", PAGE) .. "HTTP/1.1 200 OK\r\n" },
      { bytes = answer("200 OK", PAGE) } },
    calls = { LIST, LIST, LIST },
    expect = { PAGE_OK, PAGE_OK, PAGE_OK },
    connections = 3,
  },
  {
    name = "uses chunked when Content-Length comes with it, and does not keep that connection",
    steps = { { bytes = "HTTP/1.1 200 OK\r\nContent-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n"
      .. chunked(PAGE, 16) }, { bytes = answer("200 OK", PAGE) } },
    calls = { LIST, LIST },
    expect = { PAGE_OK, PAGE_OK },
    connections = 2,
  },
  {
    name = "takes Retry-After and the status of an error answer",
    steps = { { bytes = answer("503 Service Unavailable", '{"code":"BUSY","message":"busy"}',
      { "Retry-After: 120" }) } },
    calls = { LIST },
    expect = { { kind = "api", status = 503, retry_after = 120, retryable = true } },
  },
  broken("a status line that is not HTTP/1.x", "HTTP/2 200\r\n\r\n", "status line"),
  broken("conflicting Content-Length headers",
    "HTTP/1.1 200 OK\r\nContent-Length: 3\r\nContent-Length: 4\r\n\r\n{}}", "conflicting"),
  broken("a Transfer-Encoding other than chunked", "HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip\r\n\r\n",
    "Transfer-Encoding"),
  broken("gzip, chunked", "HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip, chunked\r\n\r\n5\r\nhello\r\n0\r\n\r\n",
    "Transfer-Encoding"),
  broken("a folded line with no field before it", "HTTP/1.1 200 OK\r\n  X-A: 1\r\nContent-Length: 2\r\n\r\n{}",
    "malformed header"),
  broken("a Content-Length folded into two numbers",
    "HTTP/1.1 200 OK\r\nContent-Length: 1\r\n 2\r\n\r\n{\"content\":[]}", "invalid Content-Length"),
  {
    name = "reads an obsolete folded header line as one space (RFC 9112 section 5.2)",
    steps = { { bytes = ("HTTP/1.1 200 OK\r\nX-A: 1\r\n  2\r\nContent-Length:\r\n\t%d\r\n\r\n%s"):format(#PAGE, PAGE) },
      { bytes = answer("200 OK", PAGE) } },
    calls = { LIST, LIST },
    expect = { PAGE_OK, PAGE_OK },
    connections = 1,
  },
  broken("a NUL in the header", "HTTP/1.1 200 OK\r\nX-A: \0\r\nContent-Length: 2\r\n\r\n{}", "NUL"),
  broken("a bare CR in the header", "HTTP/1.1 200 OK\r\nX-A: 1\r2\r\nContent-Length: 2\r\n\r\n{}", "bare CR"),
  broken("a bad chunk size", CHUNKED .. "zz\r\n", "chunk size"),
  broken("chunk data longer than its size", CHUNKED .. "2\r\n{}}\r\n0\r\n\r\n", "longer than its size"),
  broken("a body cut short by the close", "HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\n{\"content\":",
    "before the answer was complete"),
  broken("a 101 Switching Protocols", "HTTP/1.1 101 Switching Protocols\r\n\r\n", "101"),
  {
    name = "refuses a chunked body past max_body before reading it",
    options = { max_body = 4096 },
    steps = { { bytes = CHUNKED .. "100000\r\n", close = true } },
    calls = { LIST },
    expect = { { kind = "decode", status = 200, message = "max_body", retryable = false } },
  },
  {
    name = "opens a new connection for a GET when the server closed the kept-alive one",
    steps = { { bytes = answer("200 OK", PAGE), close = true }, { bytes = answer("200 OK", PAGE) } },
    calls = { LIST, "pause", LIST },
    expect = { PAGE_OK, PAGE_OK },
    connections = 2,
    requests = { GET_LINE, GET_LINE },
  },
  {
    name = "sends a GET once more on a new connection when the kept-alive one dies before any answer",
    steps = { { bytes = answer("200 OK", PAGE) }, { close = true }, { bytes = answer("200 OK", PAGE) } },
    calls = { LIST, LIST },
    expect = { PAGE_OK, PAGE_OK },
    connections = 2,
    requests = { GET_LINE, GET_LINE, GET_LINE },
  },
  {
    name = "does not take bytes a server sent unasked on an idle connection for the next answer",
    steps = { { bytes = answer("200 OK", PAGE), later = answer("408 Request Timeout",
      '{"code":"TIMEOUT","message":"idle"}') }, { bytes = answer("200 OK", PAGE) } },
    calls = { LIST, "pause", LIST },
    expect = { PAGE_OK, PAGE_OK },
    connections = 2,
  },
  {
    name = "checks a kept-alive connection before a create, and creates once on a new one",
    steps = { { bytes = answer("200 OK", PAGE), close = true }, { bytes = answer("200 OK", CREATED) } },
    calls = { LIST, "pause", CREATE },
    expect = { PAGE_OK, CREATED_OK },
    connections = 2,
    requests = { GET_LINE, POST_LINE },
  },
  {
    name = "never sends a create twice when the connection closes after it was read",
    steps = { { bytes = answer("200 OK", PAGE) }, { close = true }, { bytes = answer("200 OK", CREATED) } },
    calls = { LIST, CREATE },
    expect = { PAGE_OK, { kind = "network", retryable = false, message = "may have been applied" } },
    requests = { GET_LINE, POST_LINE },
  },
  {
    name = "times out on a server that never answers, within the timeout",
    options = { timeout = 0.3 },
    steps = { { hold = 3, bytes = answer("200 OK", PAGE) } },
    calls = { LIST },
    expect = { { kind = "timeout", retryable = true } },
    within = 2,
  },
}

-- The outcome of one call, in the terms the cases are written in.
local function outcome(result, err)
  if result then
    return { ok = true, id = result.id or (result.content and result.content[1] and result.content[1].id) }
  end
  return { ok = false, kind = err.kind, status = err.status, message = err.message, retryable = err.retryable,
    retry_after = err.retry_after }
end

local function check(case, got, seen, seconds, by_cosocket)
  -- Every request came from the transport under test.
  for _, agent in ipairs(seen.agents) do
    assert.equal(by_cosocket, agent:find("(nginx cosocket)", 1, true) ~= nil, agent)
  end
  for i, want in ipairs(case.expect) do
    local have = got[i]
    assert.is_table(have, ("call %d: no outcome"):format(i))
    if want.ok then
      assert.is_true(have.ok, ("call %d: %s"):format(i, tostring(have.message)))
      assert.equal(want.id, have.id)
    else
      assert.is_false(have.ok, ("call %d succeeded"):format(i))
      assert.equal(want.kind, have.kind, have.message)
      for _, key in ipairs{ "status", "retryable", "retry_after" } do
        if want[key] ~= nil then
          assert.equal(want[key], have[key], ("call %d: %s"):format(i, key))
        end
      end
      if want.message then
        assert.matches(want.message, have.message, 1, true)
      end
    end
  end
  assert.equal(#case.expect, #got)
  if case.connections then
    assert.equal(case.connections, seen.connections, "connections")
  end
  if case.requests then
    assert.same(case.requests, seen.requests)
  end
  if case.within then
    assert.is_true(seconds <= case.within, ("took %d s"):format(seconds))
  end
end

local function client_options(url, case)
  local opts = { api_key = mockserver.API_KEY, client_id = mockserver.CLIENT_ID, secret = "s3cret",
    base_url = url, timeout = 5, max_retries = 0 }
  for k, v in pairs(case.options or {}) do
    opts[k] = v
  end
  return opts
end

-- The libcurl transports, in this process: one call at a time, or each
-- call through the bulk engine.
local function run_in_process(case, url, through_bulk)
  local opts = client_options(url, case)
  opts.transport = "curl"
  local client = assert(orbt.new(opts))
  local got = {}
  for _, call in ipairs(case.calls) do
    if call == "pause" then
      shell.sleep(0.2)
    elseif through_bulk then
      local results = client:_bulk(call[1], { call[2] }, { concurrency = 1 })
      local r = results[1]
      got[#got + 1] = orbt.is_error(r) and outcome(nil, r) or outcome(r)
    else
      got[#got + 1] = outcome(client[call[1]](client, call[2]))
    end
  end
  client:close()
  return got
end

local function each_case(run, by_cosocket)
  for _, case in ipairs(CASES) do
    it(case.name, function()
      local server = raw.start(scenario(case.steps))
      local started = os.time()
      local ok, got = pcall(run, case, server.url)
      local seconds = os.time() - started
      local seen = server:seen()
      server:cleanup()
      assert(ok, got)
      check(case, got, seen, seconds, by_cosocket)
    end)
  end
end

describe("HTTP/1.1 framing, one libcurl call at a time", function()
  each_case(function(case, url) return run_in_process(case, url, false) end, false)
end)

describe("HTTP/1.1 framing, through the bulk engine on libcurl's connections", function()
  each_case(function(case, url) return run_in_process(case, url, true) end, false)
end)

describe("HTTP/1.1 framing, over nginx cosockets #nginx", function()
  -- The cases' servers are raw ones: the mock only gives nginx its settings.
  local env = harness.with_mock{ client = false, reset = false, nginx = true }

  each_case(function(case, url)
    local opts = client_options(url, case)
    opts.transport = "cosocket"
    local request = json.encode({ options = opts, calls = case.calls })
    local status, body = env.nginx:post("/calls", request)
    assert.equal(200, status, body)
    return assert(json.decode(body), body)
  end, true)
end)
