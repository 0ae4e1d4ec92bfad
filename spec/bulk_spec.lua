-- client:create_customers: many creates at once over libcurl's multi
-- interface, one result per input, in input order, nothing skipped.
local orbt = require("orbt")
local mockserver = require("support.mock")
local harness = require("support.harness")
local raw = require("support.raw")
local shell = require("support.shell")

local PATH = mockserver.PATH

describe("create_customers", function()
  local env = harness.with_mock()

  it("returns one result per input, in input order: customers, refusals and API errors", function()
    local taken = assert(env.client:create_customer(harness.customer()))
    local list = harness.customers(30)
    list[4].email = "not an email"                             -- refused before sending
    list[11].currency = "usd"                                  -- refused before sending
    list[17].email = taken.email                               -- the API answers 400
    list[23] = "not a table"                                   -- refused before sending
    local results, failures = env.client:create_customers(list, { concurrency = 6 })
    assert.equal(30, #results)
    assert.equal(4, failures)
    for i = 1, 30 do
      local r = results[i]
      if i == 4 or i == 11 or i == 23 then
        assert.is_true(orbt.is_error(r), i)
        assert.equal("invalid", r.kind)
      elseif i == 17 then
        assert.is_true(orbt.is_error(r))
        assert.equal("api", r.kind)
        assert.equal(400, r.status)
        assert.equal("VALIDATION_ERROR", r.code)
        assert.equal(1, r.attempts)
      else
        assert.is_false(orbt.is_error(r), tostring(r))
        assert.equal(list[i].email, r.email) -- results[i] belongs to list[i]
        assert.equal("number", type(r.id))
      end
    end
    assert.equal("email", results[4].field)
    assert.equal("currency", results[11].field)
    local stats = env.mock:stats()
    assert.equal(1 + 27, stats.requests_total) -- the three refused never left
    assert.equal(1 + 26, stats.consumers)
    assert.equal(0, stats.auth_failures)
  end)

  it("runs up to `concurrency` creates at once over kept-alive connections", function()
    env.mock:fault{ path = PATH, method = "POST", delay_ms = 200, count = 24 }
    local results, failures = env.client:create_customers(harness.customers(24), { concurrency = 8 })
    assert.equal(0, failures)
    assert.equal(24, #results)
    local stats = env.mock:stats()
    assert.equal(24, stats.consumers)
    assert.is_true(stats.peak_in_flight >= 2, "peak in flight " .. stats.peak_in_flight)
    assert.is_true(stats.peak_in_flight <= 8, "peak in flight " .. stats.peak_in_flight)
    -- 24 creates, at most 8 connections: each connection carried several.
    assert.is_true(stats.connections <= 8, "connections " .. stats.connections)
  end)

  it("retries each create by the same policy as create_customer", function()
    env.mock:fault{ path = PATH, method = "POST", status = 429, count = 3 }
    local results, failures = env.client:create_customers(harness.customers(6), { concurrency = 3 })
    assert.equal(0, failures)
    assert.equal(6, #results)
    assert.equal(6, env.mock:stats().consumers)
    assert.equal(9, env.mock:stats().requests_total) -- three refused with 429, sent again

    env.mock:reset()
    env.mock:fault{ path = PATH, method = "POST", status = 503, count = 1 }
    results, failures = env.client:create_customers(harness.customers(2), { concurrency = 1 })
    assert.equal(1, failures)
    assert.equal("api", results[1].kind) -- a 503 create is not sent again
    assert.equal(503, results[1].status)
    assert.equal(1, results[1].attempts)
    assert.equal(1, env.mock:stats().consumers)
  end)

  it("takes an empty list, and refuses bad options before sending", function()
    local results, failures = env.client:create_customers({})
    assert.same({}, results)
    assert.equal(0, failures)
    for _, bad in ipairs{ { concurrency = 0 }, { concurrency = 65 }, { concurrency = 1.5 },
      { concurrency = "4" }, { parallel = 4 }, { deadline = -1 } } do
      local none, err = env.client:create_customers({ harness.customer() }, bad)
      assert.is_nil(none)
      assert.equal("invalid", err.kind)
    end
    local none, err = env.client:create_customers("people")
    assert.is_nil(none)
    assert.equal("customers", err.field)
    assert.equal(0, env.mock:stats().requests_total)
  end)

  it("is refused on a closed client", function()
    local c = env.mock:client()
    c:close()
    local none, err = c:create_customers({ harness.customer() })
    assert.is_nil(none)
    assert.matches("closed", err.message)
  end)

  -- In a child interpreter: a crash there fails this spec, not the run.
  local function child(script, vars)
    return shell.run("timeout 120 sh -c " .. shell.quote(shell.lua_command(script, vars)) .. " 2>&1")
  end

  it("is refused, without a crash, when an item's __index closes the client half way", function()
    local out, ok = child([[
      local orbt = require("orbt")
      local c = assert(orbt.new{ api_key = "k", client_id = "c", secret = "s", base_url = "http://127.0.0.1:9" })
      local odd = setmetatable({}, { __index = function() c:close() end })
      local good = { fullName = "A B", email = "a@b.io", currency = "USD", initialFunds = 1 }
      local results, err = c:create_customers({ odd, good })
      io.write(tostring(results), " ", err.kind, " ", err.message)
    ]])
    assert.is_true(ok, out)
    assert.equal("nil invalid the client is closed", out)
  end)

  it("keeps one result per input when every one of 1,500 creates fails (a gateway's HTML page)", function()
    local page = "<html><body>502 Bad Gateway</body></html>"
    local server = raw.start(("return { default = { bytes = %q } }"):format(
      raw.answer("502 Bad Gateway", page, { "Content-Type: text/html" })))
    local out, ok = child([[
      local orbt = require("orbt")
      local c = assert(orbt.new{ api_key = "k", client_id = "c", secret = "s", base_url = os.getenv("URL"),
        max_retries = 0 })
      local list = {}
      for i = 1, 1500 do
        list[i] = { fullName = "A B", email = "a" .. i .. "@b.io", currency = "USD", initialFunds = 1 }
      end
      local results, failures = c:create_customers(list, { concurrency = 1 })
      io.write(#results, " ", failures, " ", results[1500].status)
    ]], { URL = server.url })
    server:cleanup()
    assert.is_true(ok, out:sub(1, 2000))
    assert.equal("1500 1500 502", out)
  end)

  -- In a child too: its heap of 9,000 results stays out of the specs' own.
  it("returns every result of 9,000 creates (more than LuaJIT's C stack holds)", function()
    local m = env.mock
    local out, ok = child([[
      local orbt = require("orbt")
      local c = assert(orbt.new{ api_key = os.getenv("KEY"), client_id = os.getenv("ID"),
        secret = os.getenv("SECRET"), base_url = os.getenv("URL") })
      local list = {}
      for i = 1, 9000 do
        list[i] = { fullName = "Many " .. i, email = "many" .. i .. "@example.com", currency = "USD",
          initialFunds = 1 }
      end
      local results, failures = c:create_customers(list, { concurrency = 16 })
      io.write(#results, " ", failures, " ", results[9000].email)
    ]], { URL = m.url, KEY = m.api_key, ID = m.client_id, SECRET = m.secret })
    assert.is_true(ok, out:sub(1, 2000))
    assert.equal("9000 0 many9000@example.com", out)
    assert.equal(9000, m:stats().consumers)
  end)
end)
