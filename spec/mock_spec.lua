-- orbt-mock is real: it verifies every header of every request. These specs
-- sign by hand and send through the curl command-line tool.
local orbt = require("orbt")
local mockserver = require("support.mock")
local shell = require("support.shell")
local json = require("dkjson")

local PATH = mockserver.PATH

-- UTC timestamp `offset` seconds from now, in the API's format.
local function timestamp(offset)
  return os.date("!%Y-%m-%dT%H:%M:%S.000Z", os.time() + (offset or 0))
end

describe("orbt-mock", function()
  local mock

  lazy_setup(function()
    mock = mockserver.start()
  end)

  lazy_teardown(function()
    mock:cleanup()
  end)

  before_each(function()
    mock:reset()
  end)

  local n = 0
  local function body()
    n = n + 1
    return ('{"fullName":"Hand Signed","email":"hand%d@example.com","currency":"USD","initialFunds":5}'):format(n)
  end

  -- Headers for a request, signed with orbt.sign at now + `offset` seconds,
  -- then changed by `tamper`.
  local function signed_headers(method, payload, tamper, offset)
    local h = assert(orbt.sign{ method = method, body = payload, client_id = mock.client_id,
      api_key = mock.api_key, secret = mock.secret, timestamp = timestamp(offset) })
    if tamper then
      tamper(h)
    end
    local lines = { "Content-Type: application/json" }
    for name, value in pairs(h) do
      lines[#lines + 1] = name .. ": " .. value
    end
    return lines
  end

  local function post(tamper, payload)
    payload = payload or body()
    return mock:http("POST", PATH, signed_headers("POST", payload, tamper), payload)
  end

  it("accepts a correctly hand-signed create", function()
    local status, raw = post()
    assert.equal(200, status)
    assert.equal(101, json.decode(raw).data.id)
    assert.equal(1, mock:stats().consumers)
  end)

  it("accepts a signature computed entirely by the openssl tool", function()
    local dir = shell.tmpdir()
    local payload = body()
    local ts = timestamp()
    shell.write_file(dir .. "/body", payload)
    local hash = shell.run("openssl dgst -sha256 -binary " .. dir .. "/body | base64 -w0")
    shell.write_file(dir .. "/sts", "POST\n" .. ts .. "\n" .. mock.client_id .. "\n" .. hash)
    local sig = shell.run(("openssl dgst -sha256 -mac HMAC -macopt key:%s -binary %s/sts | base64 -w0")
      :format(mock.secret, dir))
    shell.exec("rm -rf " .. shell.quote(dir))
    local status = mock:http("POST", PATH, { "Content-Type: application/json",
      "x-api-key: " .. mock.api_key, "x-client-id: " .. mock.client_id, "x-timestamp: " .. ts,
      "x-body-hash: " .. hash, "x-signature: " .. sig }, payload)
    assert.equal(200, status)
  end)

  local tamperings = {
    ["a tampered signature"] = function(h)
      local s = h["x-signature"]
      h["x-signature"] = (s:sub(1, 1) == "A" and "B" or "A") .. s:sub(2)
    end,
    ["a wrong body hash"] = function(h)
      h["x-body-hash"] = "47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSuFU="
    end,
    ["a wrong API key"] = function(h)
      h["x-api-key"] = "someone-elses-key"
    end,
    ["a wrong client id"] = function(h)
      h["x-client-id"] = "00000000-0000-0000-0000-000000000000"
    end,
    ["a malformed timestamp"] = function(h)
      h["x-timestamp"] = "yesterday"
    end,
  }
  for _, name in ipairs{ "x-api-key", "x-client-id", "x-timestamp", "x-body-hash", "x-signature" } do
    tamperings["a missing " .. name .. " header"] = function(h)
      h[name] = nil
    end
  end

  for what, tamper in pairs(tamperings) do
    it("answers 403 to " .. what .. " and changes nothing", function()
      local status, raw = post(tamper)
      assert.equal(403, status)
      assert.is_string(json.decode(raw).code)
      local stats = mock:stats()
      assert.equal(0, stats.consumers)
      assert.equal(1, stats.auth_failures)
    end)
  end

  it("answers 403 to a body changed after signing", function()
    local payload = body()
    local headers = signed_headers("POST", payload)
    local status = mock:http("POST", PATH, headers, payload:gsub("5}$", "500}"))
    assert.equal(403, status)
    assert.equal(0, mock:stats().consumers)
  end)

  -- Timestamps here have whole seconds, so probes stay 10 s clear of the
  -- ±300 s window's edge.
  local function post_at(offset)
    local payload = body()
    return (mock:http("POST", PATH, signed_headers("POST", payload, nil, offset), payload))
  end

  it("answers 403 to a stale or future timestamp, correctly signed", function()
    for _, offset in ipairs{ -310, -3600, 310, 86400 } do
      assert.equal(403, post_at(offset), "offset " .. offset)
    end
    assert.equal(0, mock:stats().consumers)
  end)

  it("accepts a timestamp inside the window, either side of now", function()
    assert.equal(200, post_at(-290))
    assert.equal(200, post_at(290))
    assert.equal(2, mock:stats().consumers)
  end)

  it("answers 403 to a GET signed as a POST", function()
    local h = signed_headers("POST", "")
    assert.equal(403, (mock:http("GET", PATH, h)))
  end)

  it("answers 422 to invalid query parameters", function()
    for _, q in ipairs{ "?size=51", "?size=0", "?page=-1", "?page=x", "?size=2.5" } do
      local status = mock:http("GET", PATH .. q, signed_headers("GET", ""))
      assert.equal(422, status, q)
    end
  end)

  it("serves several clients at once", function()
    mock:fault{ path = PATH, method = "GET", delay_ms = 1000, count = 8 }
    local h = {}
    for _, line in ipairs(signed_headers("GET", "")) do
      h[#h + 1] = "-H " .. shell.quote(line)
    end
    local one = ("curl -s --max-time 30 -o /dev/null %s %s"):format(table.concat(h, " "), shell.quote(mock.url .. PATH))
    local script = {}
    for i = 1, 8 do
      script[i] = one .. " &"
    end
    script[#script + 1] = "wait"
    shell.run(table.concat(script, "\n"))
    local stats = mock:stats()
    assert.equal(8, stats.requests_total)
    assert.is_true(stats.peak_in_flight >= 6, "peak in flight was " .. stats.peak_in_flight)
  end)

  it("stops cleanly on SIGTERM", function()
    local other = mockserver.start()
    local url = other.url
    assert.equal(200, (other:http("GET", "/__mock/stats")))
    assert.equal(0, other:stop())
    assert.matches("stopped", other:log())
    local status = other:http("GET", "/__mock/stats")
    assert.equal(0, status, "the port still answers after SIGTERM: " .. url)
    other:cleanup()
  end)
end)
