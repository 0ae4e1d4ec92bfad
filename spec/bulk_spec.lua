-- client:create_customers: many creates at once over libcurl's multi
-- interface, one result per input, in input order, nothing skipped.
local orbt = require("orbt")
local mockserver = require("support.mock")

local PATH = mockserver.PATH

describe("create_customers", function()
  local mock, client
  local run = 0

  setup(function()
    mock = mockserver.start()
  end)

  teardown(function()
    mock:cleanup()
  end)

  before_each(function()
    mock:reset()
    client = mock:client()
    run = run + 1
  end)

  after_each(function()
    client:close()
  end)

  local function person(i, extra)
    local p = { fullName = "Bulk " .. i, email = ("bulk%d-%d@example.com"):format(run, i), currency = "USD",
      initialFunds = 1 }
    for k, v in pairs(extra or {}) do
      p[k] = v
    end
    return p
  end

  it("returns one result per input, in input order: customers, refusals and API errors", function()
    local taken = assert(client:create_customer(person(0, { email = ("taken%d@example.com"):format(run) })))
    local list = {}
    for i = 1, 30 do
      list[i] = person(i)
    end
    list[4] = person(4, { email = "not an email" })           -- refused before sending
    list[11] = person(11, { currency = "usd" })                -- refused before sending
    list[17] = person(17, { email = taken.email })             -- the API answers 400
    list[23] = "not a table"                                   -- refused before sending
    local results, failures = client:create_customers(list, { concurrency = 6 })
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
    local stats = mock:stats()
    assert.equal(1 + 27, stats.requests_total) -- the three refused never left
    assert.equal(1 + 26, stats.consumers)
    assert.equal(0, stats.auth_failures)
  end)

  it("runs up to `concurrency` creates at once over kept-alive connections", function()
    mock:fault{ path = PATH, method = "POST", delay_ms = 200, count = 24 }
    local list = {}
    for i = 1, 24 do
      list[i] = person(i)
    end
    local results, failures = client:create_customers(list, { concurrency = 8 })
    assert.equal(0, failures)
    assert.equal(24, #results)
    local stats = mock:stats()
    assert.equal(24, stats.consumers)
    assert.is_true(stats.peak_in_flight >= 2, "peak in flight " .. stats.peak_in_flight)
    assert.is_true(stats.peak_in_flight <= 8, "peak in flight " .. stats.peak_in_flight)
    -- 24 creates, at most 8 connections: each connection carried several.
    assert.is_true(stats.connections <= 8, "connections " .. stats.connections)
  end)

  it("retries each create by the same policy as create_customer", function()
    mock:fault{ path = PATH, method = "POST", status = 429, count = 3 }
    local list = {}
    for i = 1, 6 do
      list[i] = person(i)
    end
    local results, failures = client:create_customers(list, { concurrency = 3 })
    assert.equal(0, failures)
    assert.equal(6, #results)
    assert.equal(6, mock:stats().consumers)
    assert.equal(9, mock:stats().requests_total) -- three refused with 429, sent again

    mock:reset()
    mock:fault{ path = PATH, method = "POST", status = 503, count = 1 }
    results, failures = client:create_customers({ person(7), person(8) }, { concurrency = 1 })
    assert.equal(1, failures)
    assert.equal("api", results[1].kind) -- a 503 create is not sent again
    assert.equal(503, results[1].status)
    assert.equal(1, results[1].attempts)
    assert.equal(1, mock:stats().consumers)
  end)

  it("takes an empty list, and refuses bad options before sending", function()
    local results, failures = client:create_customers({})
    assert.same({}, results)
    assert.equal(0, failures)
    for _, bad in ipairs{ { concurrency = 0 }, { concurrency = 65 }, { concurrency = 1.5 },
      { concurrency = "4" }, { parallel = 4 }, { deadline = -1 } } do
      local none, err = client:create_customers({ person(1) }, bad)
      assert.is_nil(none)
      assert.equal("invalid", err.kind)
    end
    local none, err = client:create_customers("people")
    assert.is_nil(none)
    assert.equal("customers", err.field)
    assert.equal(0, mock:stats().requests_total)
  end)

  it("is refused on a closed client", function()
    local c = mock:client()
    c:close()
    local none, err = c:create_customers({ person(1) })
    assert.is_nil(none)
    assert.matches("closed", err.message)
  end)
end)
