-- client:request(method, path, opts): any call under /api/partner/, signed
-- and sent like the named operations, with the same retries, errors and
-- hooks, on libcurl and on nginx cosockets (the LuaJIT pass). What was
-- sent is read from orbt-mock, which checks every signature.
local orbt = require("orbt")
local harness = require("support.harness")
local calls = require("support.calls")

local call = calls.call
local PATH = "/api/partner/v1/customer"

local TRANSPORTS = { calls.TRANSPORTS[1], calls.TRANSPORTS[3] } -- no bulk form of request
local runner = calls.runner

for _, transport in ipairs(TRANSPORTS) do
  describe("client:request, over " .. transport.name, function()
    local env = harness.with_mock{ client = false, nginx = transport.nginx, lazy = true }
    local run = runner(env, transport)

    it("sends a GET with a query, its names sorted and encoded, and returns the answer as it is", function()
      local got = run({ call("request", "GET", PATH,
        { query = { size = 2, page = 0, q = "a b&c=d", on = true, big = 1e21 } }) })
      assert.is_true(got[1].ok, got[1].text)
      assert.equal(2, got[1].result.size)
      assert.is_false(got[1].result.hasNext)
      local sent = env.mock:last_request()
      assert.equal("GET", sent.method)
      assert.equal(PATH, sent.path)
      assert.equal("big=1e%2B21&on=true&page=0&q=a%20b%26c%3Dd&size=2", sent.query)
      assert.equal(0, env.mock:stats().auth_failures)
    end)

    it("writes a table body with the core's writer: exact numbers, sorted keys, orbt.null", function()
      local body = { fullName = "Raw Table", email = "raw.table@example.com", currency = "USD", initialFunds = 19.99 }
      local got = run({ call("request", "POST", PATH, { body = body }) })
      assert.is_true(got[1].ok, got[1].text)
      assert.equal("19.99", ("%.2f"):format(got[1].result.data.walletBalance))
      assert.equal('{"currency":"USD","email":"raw.table@example.com","fullName":"Raw Table","initialFunds":19.99}',
        env.mock:last_request().body)
      assert.equal(0, env.mock:stats().auth_failures)
    end)

    it("sends a JSON text body byte for byte", function()
      local text = '{ "fullName": "Raw Text", "email": "raw.text@example.com", "currency": "EUR", "initialFunds": 5 }'
      local got = run({ call("request", "POST", PATH, { body = text }) })
      assert.is_true(got[1].ok, got[1].text)
      assert.equal(text, env.mock:last_request().body)
    end)

    it("returns an answer of any shape: an array as a list", function()
      env.mock:fault{ path = PATH, method = "GET", status = 200, body = '[1, "two", {"three": 3}]', count = 1 }
      local got = run({ call("request", "GET", PATH) })
      assert.is_true(got[1].ok, got[1].text)
      assert.equal(1, got[1].result[1])
      assert.equal("two", got[1].result[2])
      assert.equal(3, got[1].result[3].three)
    end)

    it("retries by its class: read for GET, create for the rest unless told keyed", function()
      env.mock:fault{ path = PATH, method = "GET", status = 503, count = 1 }
      env.mock:fault{ path = PATH, method = "POST", status = 503, count = 1 }
      local got = run({
        call("request", "GET", PATH, { max_retries = 1 }),
        call("request", "POST", PATH, { body = "{}", max_retries = 1 }),
      })
      assert.is_true(got[1].ok, got[1].text)
      local create = got[2]
      assert.equal("api", create.kind)
      assert.equal(503, create.status)
      assert.equal(1, create.attempts)
      assert.is_true(create.maybe_applied)
      assert.matches("^mock%-%x+$", create.request_id)
      env.mock:fault{ path = PATH, method = "POST", status = 503, count = 1 }
      got = run({ call("request", "POST", PATH, { idempotency = "keyed", max_retries = 1,
        body = { fullName = "Keyed", email = "keyed@example.com", currency = "USD", initialFunds = 1 } }) })
      assert.is_true(got[1].ok, got[1].text)
    end)

    it("answers an unknown endpoint with an api error", function()
      local got = run({ call("request", "GET", "/api/partner/v1/nothing-here") })
      assert.equal("api", got[1].kind)
      assert.equal(404, got[1].status)
      assert.equal("not_found", got[1].reason)
    end)

    it("refuses before any traffic what could send credentials elsewhere, and bad options", function()
      local bad = {
        { "GET", "https://elsewhere.example/api/partner/v1/customer", "path" },
        { "GET", "//elsewhere.example/api/partner/", "path" },
        { "GET", "/api/partner/../../admin", "path" },
        { "GET", "/api/partner/%2e%2e/admin", "path" },
        { "GET", "/api/partner/..%2F..%2Fadmin", "path" },
        { "GET", "/api/partner/v1%5C..%5Cadmin", "path" },
        { "GET", "/api/partner/v1/customer?size=1", "path" },
        { "GET", "/api/partner/v1/customer#top", "path" },
        { "GET", "/api/partner/v1/cust omer", "path" },
        { "GET", "/api/admin", "path" },
        { "FETCH", PATH, "method" },
        { "get", PATH, "method" },
        { "GET", PATH, "body", { body = "{}" } },
        { "POST", PATH, "body", { body = "{not json" } },
        { "POST", PATH, "query", { query = { 1, 2 } } },
        { "POST", PATH, "idempotency", { idempotency = "sometimes" } },
        { "POST", PATH, "retries", { retries = 1 } },
      }
      local list = {}
      for i, b in ipairs(bad) do
        list[i] = call("request", b[1], b[2], b[4])
      end
      local got = run(list)
      for i, b in ipairs(bad) do
        assert.equal("invalid", got[i].kind, b[2])
        assert.equal(b[3], got[i].field, b[2] .. ": " .. tostring(got[i].message))
      end
      assert.equal(0, env.mock:request_count())
    end)
  end)
end

describe("client:request, in plain Lua", function()
  local env = harness.with_mock{}

  it("refuses a table body that has no JSON form", function()
    for _, body in ipairs{ { f = print }, { 1, 2, x = 3 }, { [true] = 1 }, { n = 0 / 0 } } do
      local _, err = env.client:request("POST", PATH, { body = body })
      assert.equal("body", err.field)
    end
    local nested = {}
    nested.self = nested
    local _, err = env.client:request("POST", PATH, { body = nested })
    assert.matches("nested more than 100 deep", err.message, 1, true)
    assert.equal(0, env.mock:request_count())
  end)

  it("writes orbt.null, booleans, lists and integers exactly", function()
    env.mock:fault{ path = PATH, method = "POST", status = 200, body = "{}", count = 1 }
    assert(env.client:request("POST", PATH, { body = { a = orbt.null, b = { true, false }, c = 9007199254740993 },
      idempotency = "keyed" }))
    local expected = math.type and '{"a":null,"b":[true,false],"c":9007199254740993}' -- integers on 5.3+
    local sent = env.mock:last_request().body
    if expected then
      assert.equal(expected, sent)
    else
      assert.matches('^{"a":null,"b":%[true,false%],"c":%d+}$', sent)
    end
  end)

  it("runs the hooks with operation \"request\" and the call's method and path", function()
    local seen = {}
    local client = env.mock:client{ on_response = function(info) seen[#seen + 1] = info end }
    assert(client:request("GET", PATH, { query = { size = 1 } }))
    local last = client:last_response()
    client:close()
    assert.equal("request", last.operation)
    assert.equal(200, last.status)
    assert.equal("request", seen[1].operation)
    assert.equal("GET", seen[1].method)
    assert.equal(PATH, seen[1].path)
    assert.equal("read", seen[1].idempotency)
  end)
end)
