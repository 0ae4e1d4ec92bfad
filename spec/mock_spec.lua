-- orbt-mock is real: it verifies every header of every request. These specs
-- sign by hand and send through the curl command-line tool.
local orbt = require("orbt")
local mockserver = require("support.mock")
local harness = require("support.harness")
local shell = require("support.shell")
local json = require("dkjson")

local PATH = mockserver.PATH

-- UTC timestamp `offset` seconds from now, in the API's format.
local function timestamp(offset)
  return os.date("!%Y-%m-%dT%H:%M:%S.000Z", os.time() + (offset or 0))
end

-- Header lines for a request to mock m, signed with orbt.sign at now +
-- `offset` seconds, then changed by `tamper`.
local function headers_for(m, method, payload, tamper, offset)
  local h = assert(orbt.sign{ method = method, body = payload, client_id = m.client_id,
    api_key = m.api_key, secret = m.secret, timestamp = timestamp(offset) })
  if tamper then
    tamper(h)
  end
  local lines = { "Content-Type: application/json" }
  for name, value in pairs(h) do
    lines[#lines + 1] = name .. ": " .. value
  end
  return lines
end

describe("orbt-mock", function()
  local env = harness.with_mock{ lazy = true, client = false }

  local n = 0
  local function body()
    n = n + 1
    return ('{"fullName":"Hand Signed","email":"hand%d@example.com","currency":"USD","initialFunds":5}'):format(n)
  end

  local function signed_headers(method, payload, tamper, offset)
    return headers_for(env.mock, method, payload, tamper, offset)
  end

  local function post(tamper, payload)
    payload = payload or body()
    return env.mock:http("POST", PATH, signed_headers("POST", payload, tamper), payload)
  end

  it("accepts a correctly hand-signed create", function()
    local status, raw = post()
    assert.equal(200, status)
    assert.equal(101, json.decode(raw).data.id)
    assert.equal(1, env.mock:stats().consumers)
  end)

  it("accepts a signature computed entirely by the openssl tool", function()
    local dir = shell.tmpdir()
    local payload = body()
    local ts = timestamp()
    shell.write_file(dir .. "/body", payload)
    local hash = shell.run("openssl dgst -sha256 -binary " .. dir .. "/body | base64 -w0")
    shell.write_file(dir .. "/sts", "POST\n" .. ts .. "\n" .. env.mock.client_id .. "\n" .. hash)
    local sig = shell.run(("openssl dgst -sha256 -mac HMAC -macopt key:%s -binary %s/sts | base64 -w0")
      :format(env.mock.secret, dir))
    shell.exec("rm -rf " .. shell.quote(dir))
    local status = env.mock:http("POST", PATH, { "Content-Type: application/json",
      "x-api-key: " .. env.mock.api_key, "x-client-id: " .. env.mock.client_id, "x-timestamp: " .. ts,
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
      local stats = env.mock:stats()
      assert.equal(0, stats.consumers)
      assert.equal(1, stats.auth_failures)
    end)
  end

  it("answers 403 to a body changed after signing", function()
    local payload = body()
    local headers = signed_headers("POST", payload)
    local status = env.mock:http("POST", PATH, headers, payload:gsub("5}$", "500}"))
    assert.equal(403, status)
    assert.equal(0, env.mock:stats().consumers)
  end)

  -- Timestamps here have whole seconds, so probes stay 10 s clear of the
  -- ±300 s window's edge.
  local function post_at(offset)
    local payload = body()
    return (env.mock:http("POST", PATH, signed_headers("POST", payload, nil, offset), payload))
  end

  it("answers 403 to a stale or future timestamp, correctly signed", function()
    for _, offset in ipairs{ -310, -3600, 310, 86400 } do
      assert.equal(403, post_at(offset), "offset " .. offset)
    end
    assert.equal(0, env.mock:stats().consumers)
  end)

  it("accepts a timestamp inside the window, either side of now", function()
    assert.equal(200, post_at(-290))
    assert.equal(200, post_at(290))
    assert.equal(2, env.mock:stats().consumers)
  end)

  it("answers 403 to a GET signed as a POST", function()
    local h = signed_headers("POST", "")
    assert.equal(403, (env.mock:http("GET", PATH, h)))
  end)

  it("answers 422 to invalid query parameters", function()
    for _, q in ipairs{ "?size=51", "?size=0", "?page=-1", "?page=x", "?size=2.5" } do
      local status = env.mock:http("GET", PATH .. q, signed_headers("GET", ""))
      assert.equal(422, status, q)
    end
  end)

  it("serves several clients at once", function()
    env.mock:fault{ path = PATH, method = "GET", delay_ms = 1000, count = 8 }
    local h = {}
    for _, line in ipairs(signed_headers("GET", "")) do
      h[#h + 1] = "-H " .. shell.quote(line)
    end
    local one = ("curl -s --max-time 30 -o /dev/null %s %s")
      :format(table.concat(h, " "), shell.quote(env.mock.url .. PATH))
    local script = {}
    for i = 1, 8 do
      script[i] = one .. " &"
    end
    script[#script + 1] = "wait"
    shell.run(table.concat(script, "\n"))
    local stats = env.mock:stats()
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

describe("orbt-mock over TLS", function()
  local certs = require("support.certs")
  local dir, paths

  lazy_setup(function()
    dir = shell.tmpdir()
    paths = certs.make(dir)
  end)

  local env = harness.with_mock{ lazy = true, client = false,
    mock = function() return { tls = { cert = paths.cert, key = paths.key, ca = paths.ca } } end }

  lazy_teardown(function()
    shell.exec("rm -rf " .. shell.quote(dir))
  end)

  local function create_body(n)
    return ('{"fullName":"Over TLS","email":"tls%d@example.com","currency":"USD","initialFunds":5}'):format(n)
  end

  it("says https in its first line and answers a signed create and list from the curl tool", function()
    assert.matches("^https://127%.0%.0%.1:%d+$", env.mock.url)
    local payload = create_body(1)
    local status, raw = env.mock:http("POST", PATH, headers_for(env.mock, "POST", payload), payload)
    assert.equal(200, status)
    assert.equal(101, json.decode(raw).data.id)
    status, raw = env.mock:http("GET", PATH .. "?size=5", headers_for(env.mock, "GET", ""))
    assert.equal(200, status)
    local page = json.decode(raw)
    assert.equal(1, #page.content)
    assert.equal("tls1@example.com", page.content[1].consumerEmail)
    assert.equal(2, env.mock:request_count())
  end)

  it("is refused by the curl tool without the CA, and answers nothing in plain HTTP", function()
    local http_url = env.mock.url:gsub("^https:", "http:")
    local _, verified = shell.run(("curl -sS --max-time 10 -o /dev/null %s 2>&1"):format(
      shell.quote(env.mock.url .. "/__mock/stats")))
    assert.is_false(verified)
    local plain = shell.run(("curl -s --max-time 10 -o /dev/null -w '%%{http_code}' %s"):format(
      shell.quote(http_url .. "/__mock/stats")))
    assert.equal("000", plain)
    assert.equal(0, env.mock:request_count())
  end)

  it("serves the orbt client with ca_file over https", function()
    local client = env.mock:client{ ca_file = paths.ca }
    local customer = assert(client:create_customer(harness.customer{ email = "jane@example.com", initialFunds = 50 }))
    assert.equal(101, customer.id)
    assert.equal(50, customer.walletBalance)
    local page = assert(client:list_customers{ size = 5 })
    assert.equal(1, #page.content)
    assert.equal("jane@example.com", page.content[1].consumerEmail)
    assert.is_false(page.hasNext)
    local seen = env.mock:requests()
    assert.equal(2, #seen)
    assert.equal("POST", seen[1].method)
    assert.equal("GET", seen[2].method)
    client:close()
  end)

  it("applies faults set through its control path over TLS", function()
    env.mock:fault{ path = PATH, method = "GET", status = 503, count = 1 }
    local client = env.mock:client{ ca_file = paths.ca }
    local _, err = client:list_customers(nil, { max_retries = 0 })
    assert.equal("api", err.kind)
    assert.equal(503, err.status)
    assert(client:list_customers())
    assert.equal(2, env.mock:request_count())
    client:close()
  end)

  it("refuses a client that does not trust its CA before any request", function()
    local client = env.mock:client()
    local customer, err = client:create_customer(harness.customer())
    assert.is_nil(customer)
    assert.equal("network", err.kind)
    assert.is_nil(err.status)
    assert.matches("certificate", err.message)
    local page, list_err = client:list_customers()
    assert.is_nil(page)
    assert.equal("network", list_err.kind)
    local stats = env.mock:stats()
    assert.equal(0, stats.requests_total)
    assert.equal(0, stats.consumers)
    client:close()
  end)

  -- Runs orbt-mock with these flags; returns its output and exit status.
  local function run_mock(flags)
    local out = shell.run(("%s %s 2>&1; echo \"exit:$?\""):format(
      shell.quote(os.getenv("ORBT_MOCK") or "build/orbt-mock"), flags))
    local text, status = out:match("^(.-)exit:(%d+)%s*$")
    return text, tonumber(status)
  end

  it("stops with status 2 and one clear line for unusable certificate flags", function()
    local q = shell.quote
    local cases = {
      { ("--tls-cert %s --tls-key %s"):format(q(dir .. "/missing.pem"), q(paths.key)),
        "--tls-cert " .. dir .. "/missing.pem: No such file or directory" },
      { ("--tls-cert %s --tls-key %s"):format(q(paths.cert), q(dir .. "/missing.key")),
        "--tls-key " .. dir .. "/missing.key: No such file or directory" },
      { ("--tls-cert %s --tls-key %s"):format(q(paths.key), q(paths.key)),
        "--tls-cert " .. paths.key .. ": holds no PEM certificate" },
      { ("--tls-cert %s --tls-key %s"):format(q(paths.cert), q(paths.untrusted_key)),
        "--tls-key " .. paths.untrusted_key .. ": is not the private key of the --tls-cert certificate" },
      { "--tls-cert " .. q(paths.cert), "--tls-cert and --tls-key go together" },
    }
    for _, case in ipairs(cases) do
      local out, status = run_mock("--port 0 --lifetime 5 " .. case[1])
      assert.equal(2, status, out)
      assert.matches("^orbt%-mock: [^\n]+\n", out)
      assert.equal("orbt-mock: " .. case[2], out:match("^([^\n]+)"))
      assert.is_nil(out:find("listening", 1, true))
    end
  end)
end)

-- The wallet endpoints, hand-signed and sent by the curl tool: what orbt's
-- specs rely on, checked without orbt's client.
describe("orbt-mock's wallets, hand-signed", function()
  local env = harness.with_mock{ client = false, mock = { balance = "100.00" } }

  local function send(method, path, payload)
    return env.mock:http(method, path, headers_for(env.mock, method, payload or ""), payload)
  end

  local function create()
    local status, raw = send("POST", PATH,
      '{"fullName":"Wallet Owner","email":"owner@example.com","currency":"EUR","initialFunds":10.50}')
    assert.equal(200, status, raw)
    return json.decode(raw).data
  end

  it("applies a credit once, answers its replay byte for byte, and refuses the referenceId with another payload",
    function()
      local customer = create()
      local path = "/api/partner/v1/wallets/" .. customer.walletId .. "/transactions"
      local credit = '{"amount":1.10,"transactionType":"CREDIT","referenceId":"hand-1","description":"café"}'
      local status, first = send("POST", path, credit)
      assert.equal(200, status, first)
      assert.matches('"amount":1.10,', first, 1, true)    -- money as exact decimals
      assert.matches('"balance":11.60,', first, 1, true)
      local data = json.decode(first).data
      assert.equal("CREDIT", data.transactionType)
      assert.equal("café", data.description)
      assert.matches("^%d%d%d%d%-%d%d%-%d%dT%d%d:%d%d:%d%d%.%d%d%dZ$", data.createdAt)
      local again_status, again = send("POST", path, credit)
      assert.equal(200, again_status)
      assert.equal(first, again)
      local conflict_status, conflict = send("POST", path, credit:gsub("1%.10", "1.11"))
      assert.equal(403, conflict_status)
      assert.equal("BUSINESS_RULE_ERROR", json.decode(conflict).code)
      local stats = env.mock:stats()
      assert.same({ 1, 1, 1, 0 }, { stats.movements, stats.replays, stats.credits, stats.debits })
      assert.equal("88.40", stats.balance)
    end)

  it("answers each documented refusal with its status and code", function()
    local customer = create()
    local path = "/api/partner/v1/wallets/" .. customer.walletId .. "/transactions"
    local cases = {
      { '{"amount":90,"transactionType":"CREDIT","referenceId":"r1"}', 402, "BUSINESS_RULE_ERROR" },
      { '{"amount":10.51,"transactionType":"DEBIT","referenceId":"r2"}', 500, "SYSTEM_ERROR" },
      { '{"amount":0,"transactionType":"DEBIT","referenceId":"r3"}', 400, "VALIDATION_ERROR" },
      { '{"amount":1.0000001,"transactionType":"CREDIT","referenceId":"r7"}', 400, "VALIDATION_ERROR" },
      { '{"amount":-1,"transactionType":"CREDIT","referenceId":"r8"}', 400, "VALIDATION_ERROR" },
      { '{"amount":1e13,"transactionType":"CREDIT","referenceId":"r9"}', 400, "VALIDATION_ERROR" },
      { '{"amount":1,"transactionType":"REFUND","referenceId":"r4"}', 400, "VALIDATION_ERROR" },
      { '{"amount":1,"transactionType":"CREDIT"}', 400, "VALIDATION_ERROR" },
      { '{"amount":1,"transactionType":"CREDIT","referenceId":"r5","walletId":"x"}', 400, "VALIDATION_ERROR" },
    }
    for _, case in ipairs(cases) do
      local status, raw = send("POST", path, case[1])
      assert.equal(case[2], status, case[1] .. " -> " .. raw)
      assert.equal(case[3], json.decode(raw).code, raw)
    end
    local status, raw = send("POST", "/api/partner/v1/wallets/999/transactions",
      '{"amount":1,"transactionType":"CREDIT","referenceId":"r6"}')
    assert.equal(404, status, raw)
    status = send("GET", path)
    assert.equal(405, status)
    for _, bad in ipairs{ "abc", "0", "-1" } do
      status, raw = send("GET", "/api/partner/v1/customer/" .. bad .. "/wallets")
      assert.equal(422, status, raw)
    end
    assert.equal(0, env.mock:stats().movements)
    assert.equal("89.50", env.mock:stats().balance)
    -- Exact from the number's text, exponents included: never through a double.
    status, raw = send("POST", path, '{"amount":1e-06,"transactionType":"CREDIT","referenceId":"micro"}')
    assert.equal(200, status, raw)
    status, raw = send("POST", path, '{"amount":0.30000000,"transactionType":"CREDIT","referenceId":"point3"}')
    assert.equal(200, status, raw)
    assert.matches('"balance":10.800001,', raw, 1, true)
    assert.equal("89.199999", env.mock:stats().balance)
  end)

  it("adds CAMPAIGN wallets through the control path, and pages a consumer's wallets", function()
    local customer = create()
    local ids = env.mock:add_wallets{ customerId = customer.id, count = 3, campaignId = "C", campaignName = "N",
      balance = "2.00", currency = "EUR" }
    assert.equal(3, #ids)
    local status, raw = send("GET", "/api/partner/v1/customer/" .. customer.id .. "/wallets?page=1&size=2")
    assert.equal(200, status, raw)
    local page = json.decode(raw)
    assert.same({ 1, 2, false }, { page.page, page.size, page.hasNext })
    assert.equal(2, #page.content)
    assert.same({ "C-2", "N 2", "CAMPAIGN", "EUR" }, { page.content[1].campaignId, page.content[1].campaignName,
      page.content[1].walletType, page.content[1].currency })
    -- The consumer list counts them; the partner paid nothing for them.
    local _, list = send("GET", PATH)
    assert.equal(3, json.decode(list).content[1].totalCampaignWallets)
    assert.equal("89.50", env.mock:stats().balance)
    local bad = env.mock:http("POST", "/__mock/wallets", { "Content-Type: application/json" },
      '{"customerId":999}')
    assert.equal(400, bad)
  end)

  it("hits one matching request in `every`, on a path prefix", function()
    local customer = create()
    local path = "/api/partner/v1/wallets/" .. customer.walletId .. "/transactions"
    env.mock:fault{ path = "/api/partner/v1/wallets/*", method = "POST", status = 503, every = 3, count = 2 }
    local statuses = {}
    for i = 1, 7 do
      statuses[i] = send("POST", path, ('{"amount":1,"transactionType":"CREDIT","referenceId":"e%d"}'):format(i))
    end
    assert.same({ 200, 200, 503, 200, 200, 503, 200 }, statuses)
  end)
end)
