-- The interface against a real orbt-mock: create_customer, list_customers,
-- customers and customer_pages, and every way a call can fail.
local orbt = require("orbt")
local mockserver = require("support.mock")
local harness = require("support.harness")
local shell = require("support.shell")

local PATH = mockserver.PATH

local number_type = require("support.runtime").number_type

-- An object whose collection calls fn: tables take __gc from Lua 5.2 on;
-- Lua 5.1 and LuaJIT honour it only on userdata, made with newproxy.
local function with_finalizer(fn)
  if newproxy then -- luacheck: ignore 113 (5.1 and LuaJIT only)
    local proxy = newproxy(true) -- luacheck: ignore 113
    getmetatable(proxy).__gc = fn
    return proxy
  end
  return setmetatable({}, { __gc = fn })
end

describe("the client", function()
  local env = harness.with_mock{ lazy = true, shared_client = true }

  -- Creates `count` consumers straight through the client.
  local function fill(count)
    for _ = 1, count do
      assert(env.client:create_customer(harness.customer()))
    end
  end

  describe("create_customer", function()
    it("returns the created consumer with the documented fields and types", function()
      local customer, err = env.client:create_customer(harness.customer{ fullName = "Jane Smith",
        email = "jane.smith@example.com", initialFunds = 50 })
      assert.is_nil(err)
      assert.equal(101, customer.id)
      assert.equal("integer", number_type(customer.id))
      assert.equal("101", customer.walletId)
      assert.equal("Jane Smith", customer.fullName)
      assert.equal("jane.smith@example.com", customer.email)
      assert.equal(50, customer.walletBalance)
      assert.equal("USD", customer.currency)
      assert.equal(1, env.mock:stats().consumers)
    end)

    it("returns 400 VALIDATION_ERROR for an email that already has a wallet in that currency", function()
      local fields = harness.customer()
      assert(env.client:create_customer(fields))
      local customer, err = env.client:create_customer(fields)
      assert.is_nil(customer)
      assert.equal("api", err.kind)
      assert.equal(400, err.status)
      assert.equal("integer", number_type(err.status))
      assert.equal("VALIDATION_ERROR", err.code)
      assert.is_string(err.message)
      assert.is_false(err.retryable)
      assert.is_string(err.body)
      assert.equal(1, env.mock:stats().consumers)
    end)

    it("returns 402 BUSINESS_RULE_ERROR when the partner wallet cannot cover the funds", function()
      env.mock:reset("10.00")
      local customer, err = env.client:create_customer(harness.customer{ initialFunds = 50 })
      assert.is_nil(customer)
      assert.equal("api", err.kind)
      assert.equal(402, err.status)
      assert.equal("BUSINESS_RULE_ERROR", err.code)
      -- orbt-mock sends an x-request-id with every answer; the text ends with it.
      assert.matches("^mock%-%x+$", err.request_id)
      assert.equal("orbt: 402 BUSINESS_RULE_ERROR: " .. err.message .. " (POST /api/partner/v1/customer, request id "
        .. err.request_id .. ")", tostring(err))
      assert.equal(0, env.mock:stats().consumers)
    end)

    it("returns 403 when the secret is wrong, and nothing is created", function()
      local wrong = env.mock:client{ secret = "not-the-secret" }
      local customer, err = wrong:create_customer(harness.customer())
      assert.is_nil(customer)
      assert.equal("api", err.kind)
      assert.equal(403, err.status)
      assert.is_string(err.code)
      assert.is_string(err.message)
      assert.equal(0, env.mock:stats().consumers)
    end)

    it("signs every request afresh, with the current time", function()
      assert(env.client:list_customers())
      shell.sleep(0.05)
      assert(env.client:list_customers())
      local seen = env.mock:requests(2)
      assert.equal(2, #seen)
      assert.are_not.equal(seen[1].headers["x-timestamp"], seen[2].headers["x-timestamp"])
      assert.are_not.equal(seen[1].headers["x-signature"], seen[2].headers["x-signature"])
      local now = os.date("!%Y-%m-%dT%H:%M", os.time())
      local before = os.date("!%Y-%m-%dT%H:%M", os.time() - 60)
      for _, r in ipairs(seen) do
        local minute = r.headers["x-timestamp"]:sub(1, 16)
        assert.is_true(minute == now or minute == before, r.headers["x-timestamp"])
        assert.equal("application/json", r.headers["accept"])
        assert.equal(env.mock.api_key, r.headers["x-api-key"])
      end
    end)

    it("sends a create with a JSON content type", function()
      assert(env.client:create_customer(harness.customer()))
      assert.equal("application/json", env.mock:last_request().headers["content-type"])
    end)

    -- orbt-mock answers 200, as Orbt's docs show; any other 2xx is success too.
    for _, status in ipairs{ 201, 202 } do
      it("takes a create answered " .. status .. " as success", function()
        local answer = ('{"success":true,"data":{"id":7%d,"walletId":"7%d","fullName":"Any Success",'
          .. '"email":"any@example.com","walletBalance":1.00,"currency":"USD"}}'):format(status, status)
        env.mock:fault{ path = PATH, method = "POST", status = status, body = answer, apply = true, count = 1 }
        local logged = #env.mock:log()
        local customer, err = env.client:create_customer(harness.customer())
        assert.is_nil(err)
        assert.equal(7 * 1000 + status, customer.id)
        assert.equal("7" .. status, customer.walletId)
        assert.equal(1, env.mock:stats().consumers)
        assert.matches("POST " .. PATH .. " " .. status .. "\n", env.mock:log():sub(logged + 1), 1, true)
      end)
    end
  end)

  describe("list_customers", function()
    it("returns a page with the documented fields and types", function()
      fill(3)
      local page = assert(env.client:list_customers{ page = 0, size = 2 })
      assert.equal(0, page.page)
      assert.equal(2, page.size)
      assert.is_true(page.hasNext)
      assert.equal(2, #page.content)
      local first = page.content[1]
      assert.equal("integer", number_type(first.consumerId))
      assert.equal(101, first.consumerId)
      assert.is_string(first.consumerName)
      assert.is_string(first.consumerEmail)
      assert.equal("integer", number_type(first.totalStandardWallets))
      assert.equal("integer", number_type(first.totalCampaignWallets))
      local last = assert(env.client:list_customers{ page = 1, size = 2 })
      assert.is_false(last.hasNext)
      assert.equal(103, last.content[1].consumerId)
    end)

    it("sends page and size only when given", function()
      assert(env.client:list_customers())
      assert.equal("", env.mock:last_request().query)
      assert(env.client:list_customers{ page = 3, size = 7 })
      assert.equal("page=3&size=7", env.mock:last_request().query)
    end)

    it("returns a 422 as an api error with code and message", function()
      env.mock:fault{ path = PATH, method = "GET", status = 422,
        body = '{"code":"INVALID_QUERY_PARAMETER","message":"size must be an integer between 1 and 50"}' }
      local page, err = env.client:list_customers{ size = 5 }
      assert.is_nil(page)
      assert.equal("api", err.kind)
      assert.equal(422, err.status)
      assert.equal("INVALID_QUERY_PARAMETER", err.code)
      assert.equal("size must be an integer between 1 and 50", err.message)
    end)
  end)

  describe("customers", function()
    it("walks 123 consumers with size 50: each once, in order, in ceil(123/50) requests", function()
      fill(123)
      local before = env.mock:stats().methods.GET or 0
      local ids = {}
      for consumer in env.client:customers{ size = 50 } do
        ids[#ids + 1] = consumer.consumerId
      end
      assert.equal(123, #ids)
      for i, id in ipairs(ids) do
        assert.equal(100 + i, id)
      end
      assert.equal(3, (env.mock:stats().methods.GET or 0) - before)
    end)

    it("needs ceil(N/50) requests when N is a multiple of the size too", function()
      fill(100)
      local before = env.mock:request_count()
      local count = 0
      for _ in env.client:customers{ size = 50 } do
        count = count + 1
      end
      assert.equal(100, count)
      assert.equal(2, env.mock:request_count() - before)
    end)

    it("stops early at limit without fetching further pages", function()
      fill(30)
      local before = env.mock:request_count()
      local ids = {}
      for consumer in env.client:customers{ size = 5, limit = 7 } do
        ids[#ids + 1] = consumer.consumerId
      end
      assert.same({ 101, 102, 103, 104, 105, 106, 107 }, ids)
      assert.equal(2, env.mock:request_count() - before)
    end)

    it("starts at the given page", function()
      fill(12)
      local ids = {}
      for consumer in env.client:customers{ size = 5, page = 2 } do
        ids[#ids + 1] = consumer.consumerId
      end
      assert.same({ 111, 112 }, ids)
    end)

    it("yields nothing for an empty list, after one request", function()
      local before = env.mock:request_count()
      for _ in env.client:customers() do
        error("no consumer expected")
      end
      assert.equal(1, env.mock:request_count() - before)
    end)

    it("stops on an empty page even when hasNext says true", function()
      env.mock:fault{ path = PATH, method = "GET", status = 200,
        body = '{"content":[],"page":0,"size":50,"hasNext":true}' }
      local before = env.mock:request_count()
      for _ in env.client:customers() do
        error("no consumer expected")
      end
      assert.equal(1, env.mock:request_count() - before)
    end)

    it("raises an error mid-walk as the error object", function()
      fill(12)
      local seen = 0
      local ok, err = pcall(function()
        for _ in env.client:customers{ size = 5, max_retries = 0 } do
          seen = seen + 1
          if seen == 5 then
            env.mock:fault{ path = PATH, method = "GET", status = 503, retry_after = "1" }
          end
        end
      end)
      assert.is_false(ok)
      assert.equal(5, seen)
      assert.is_table(err)
      assert.equal("api", err.kind)
      assert.equal(503, err.status)
      assert.is_true(err.retryable)
      assert.matches("^orbt: 503 ", tostring(err))
    end)
  end)

  describe("customer_pages", function()
    it("yields page tables lazily and cuts the last one at limit", function()
      fill(12)
      local sizes, before = {}, env.mock:request_count()
      for page in env.client:customer_pages{ size = 5, limit = 8 } do
        sizes[#sizes + 1] = #page.content
      end
      assert.same({ 5, 3 }, sizes)
      assert.equal(2, env.mock:request_count() - before)
      sizes = {}
      for page in env.client:customer_pages{ size = 5 } do
        sizes[#sizes + 1] = #page.content
      end
      assert.same({ 5, 5, 2 }, sizes)
    end)

    it("makes no request for limit = 0", function()
      local before = env.mock:request_count()
      for _ in env.client:customer_pages{ limit = 0 } do
        error("no page expected")
      end
      assert.equal(before, env.mock:request_count())
    end)
  end)

  describe("answers that are not the documented JSON", function()
    it("reports a 2xx answer that is not JSON as a decode error with the raw body", function()
      env.mock:fault{ path = PATH, method = "GET", status = 200, body = "{not json" }
      local page, err = env.client:list_customers()
      assert.is_nil(page)
      assert.equal("decode", err.kind)
      assert.equal(200, err.status)
      assert.equal("{not json", err.body)
    end)

    it("reports data after the JSON value as a decode error", function()
      env.mock:fault{ path = PATH, method = "GET", status = 200,
        body = '{"content":[],"page":0,"size":50,"hasNext":false} 12' }
      local page, err = env.client:list_customers()
      assert.is_nil(page)
      assert.equal("decode", err.kind)
    end)

    it("reports a number past the double range as a decode error, not inf", function()
      env.mock:fault{ path = PATH, method = "GET", status = 200,
        body = '{"content":[{"consumerId":1,"balance":1e400}],"page":0,"size":1,"hasNext":false}' }
      local page, err = env.client:list_customers()
      assert.is_nil(page)
      assert.equal("decode", err.kind)
      assert.matches("too large", err.message)
    end)

    it("reports a 2xx answer of the wrong shape as a decode error", function()
      env.mock:fault{ path = PATH, method = "POST", status = 201, body = '{"success":true}' }
      local customer, err = env.client:create_customer(harness.customer())
      assert.is_nil(customer)
      assert.equal("decode", err.kind)
    end)

    it("keeps an HTML error page as the raw body of an api error", function()
      local html = "<html><body><h1>502 Bad Gateway</h1></body></html>"
      env.mock:fault{ path = PATH, method = "GET", status = 502, body = html, content_type = "text/html" }
      local page, err = env.client:list_customers(nil, { max_retries = 0 })
      assert.is_nil(page)
      assert.equal("api", err.kind)
      assert.equal(502, err.status)
      assert.is_nil(err.code)
      assert.equal(html, err.body)
      assert.is_true(err.retryable)
    end)

    it("reads error codes and messages from the other usual places", function()
      local shapes = {
        { '{"errorCode":"E1","errorMessage":"m1"}', "E1", "m1" },
        { '{"error":{"code":"E2","message":"m2"}}', "E2", "m2" },
        { '{"error":"E3","detail":"m3"}', "E3", "m3" },
        { '[1,2,3]', nil, "bad request" },
      }
      for _, shape in ipairs(shapes) do
        env.mock:fault{ path = PATH, method = "GET", status = 400, body = shape[1] }
        local _, err = env.client:list_customers()
        assert.equal(shape[2], err.code)
        assert.equal(shape[3], err.message)
      end
    end)

    it("returns JSON null as orbt.null and keeps integers exact past 2^53", function()
      env.mock:fault{ path = PATH, method = "GET", status = 200,
        body = '{"content":[{"consumerId":9007199254740993,"consumerName":null,"score":2.50}],'
          .. '"page":0,"size":1,"hasNext":false}' }
      local page = assert(env.client:list_customers())
      local item = page.content[1]
      assert.equal(orbt.null, item.consumerName)
      assert.equal(9007199254740993, item.consumerId)
      assert.equal("integer", number_type(item.consumerId))
      assert.equal("float", number_type(item.score))
    end)

    it("refuses an answer larger than max_body, announced or streamed", function()
      local small = env.mock:client{ max_body = 4096 }
      -- With a Content-Length libcurl refuses it up front; chunked, the
      -- body collector has to stop it as the bytes arrive.
      for _, chunked in ipairs{ false, true } do
        env.mock:fault{ path = PATH, method = "GET", oversize = 100000, chunked = chunked }
        local page, err = small:list_customers()
        assert.is_nil(page)
        assert.equal("decode", err.kind)
        assert.equal(200, err.status)
        assert.matches("max_body", err.message)
      end
      assert(small:list_customers(), "the client works after a refused answer")
    end)
  end)

  describe("network failures", function()
    it("reports a refused connection as a network error, safe to retry", function()
      local port = mockserver.start()
      local url = port.url
      port:cleanup()
      local dead = env.mock:client{ base_url = url }
      local page, err = dead:list_customers()
      assert.is_nil(page)
      assert.equal("network", err.kind)
      assert.is_nil(err.status)
      assert.is_true(err.retryable)
      local customer, cerr = dead:create_customer(harness.customer())
      assert.is_nil(customer)
      assert.equal("network", cerr.kind)
      assert.is_true(cerr.retryable, "a create that never connected is safe to repeat")
    end)

    it("reports a slow answer as a timeout", function()
      env.mock:fault{ path = PATH, method = "POST", delay_ms = 1500, count = 1 }
      local impatient = env.mock:client{ timeout = 0.3 }
      local customer, err = impatient:create_customer(harness.customer())
      assert.is_nil(customer)
      assert.equal("timeout", err.kind)
      assert.is_false(err.retryable, "a create that may have arrived is not safe to repeat")
    end)

    it("reports a connection dropped before the answer as a network error", function()
      local fresh = env.mock:client() -- a new connection: nothing to fall back on
      env.mock:fault{ path = PATH, method = "GET", drop = "before" }
      local page, err = fresh:list_customers(nil, { max_retries = 0 })
      assert.is_nil(page)
      assert.equal("network", err.kind)
      assert.is_true(err.retryable)
      fresh:close()
    end)

    -- libcurl silently resends a request when a reused keep-alive connection
    -- dies; a create must never be sent twice behind the caller's back.
    for _, when in ipairs{ "before", "after" } do
      it("never resends a create when a reused connection drops " .. when .. " processing it", function()
        assert(env.client:list_customers()) -- the connection is now open and reused next
        env.mock:reset()
        env.mock:fault{ path = PATH, method = "POST", drop = when }
        local customer, err = env.client:create_customer(harness.customer())
        assert.is_nil(customer)
        assert.equal("network", err.kind)
        assert.is_false(err.retryable)
        local stats = env.mock:stats()
        assert.equal(1, stats.requests_total, "the create reached the server more than once")
        assert.equal(when == "after" and 1 or 0, stats.consumers)
        -- The client is still usable afterwards.
        assert(env.client:create_customer(harness.customer()))
      end)
    end

    it("says a create whose 200 answer was cut off may have been applied", function()
      env.mock:fault{ path = PATH, method = "POST", truncate = true }
      local customer, err = env.client:create_customer(harness.customer())
      assert.is_nil(customer)
      assert.equal("network", err.kind)
      assert.equal(200, err.status)
      assert.is_false(err.retryable)
      assert.matches("may have been applied", err.message)
      assert.matches("^orbt: network: .* %(HTTP 200, POST /api/partner/v1/customer, request id mock%-%x+%)$",
        tostring(err))
      assert.equal(1, env.mock:stats().consumers)
    end)

    it("reports a truncated answer as a network error", function()
      fill(3)
      env.mock:fault{ path = PATH, method = "GET", truncate = true }
      local page, err = env.client:list_customers(nil, { max_retries = 0 })
      assert.is_nil(page)
      assert.equal("network", err.kind)
    end)
  end)

  describe("the client object", function()
    it("reuses one connection for many calls", function()
      fill(1)
      local fresh = env.mock:client()
      env.mock:reset()
      for _ = 1, 5 do
        assert(fresh:list_customers())
      end
      assert(fresh:create_customer(harness.customer()))
      local stats = env.mock:stats()
      assert.equal(6, stats.requests_total)
      assert.equal(1, stats.connections)
      fresh:close()
    end)

    -- Decoding an answer allocates, so finalizers (user code) can run in the
    -- middle of a call and touch the same client. A finalizer that closes the
    -- client must not free the answer being decoded (a use-after-free under
    -- SANITIZE=1), and a nested call must not overwrite it. Lua 5.4's
    -- generational mode with a tiny minor multiplier collects young garbage
    -- every few KiB; elsewhere an incremental collector that never pauses
    -- does. The finalizer tables stay referenced until just before the call,
    -- so they become garbage only while the call is decoding a large page.
    it("stays consistent when a finalizer uses the client during a call", function()
      local long_name = ("n"):rep(20000)
      for i = 1, 50 do
        assert(env.client:create_customer(harness.customer{ fullName = long_name .. i }))
      end
      local tries, outcome = 0, nil
      local generational = _VERSION == "Lua 5.4"
      if generational then
        collectgarbage("generational", 1, 100)
      else
        -- Each step does a lot of work, so a cycle ends (and its finalizers
        -- run) within one call however large the rest of the run left the
        -- heap.
        collectgarbage("setpause", 0)
        collectgarbage("setstepmul", 10000)
      end
      while not outcome and tries < 50 do
        tries = tries + 1
        local c = env.mock:client()
        local state, opts = {}, { size = 50 }
        local holder = {} -- luacheck: ignore 241 (only kept to be dropped just before the call)
        for i = 1, 50 do
          holder[i] = with_finalizer(function()
            if state.done then return end
            state.done = true
            local _, nested = c:list_customers{ size = 1 }
            state.busy = nested ~= nil and nested.message:find("in use", 1, true) ~= nil
            c:close()
          end)
        end
        holder = nil -- luacheck: ignore 311 (drops the only reference)
        local page, err = c:list_customers(opts)
        if state.busy then
          outcome = { page = page, err = err, after = select(2, c:list_customers()) }
        end
        c:close()
      end
      if generational then
        collectgarbage("incremental")
      else
        collectgarbage("setpause", 200)
        collectgarbage("setstepmul", 200)
      end
      collectgarbage()
      assert.is_table(outcome, "no finalizer ran during a call in " .. tries .. " tries")
      assert.is_table(outcome.page, tostring(outcome.err))
      assert.equal(50, #outcome.page.content)
      assert.matches("closed", outcome.after.message)
    end)

    it("refuses calls after close with a clear error", function()
      local c = env.mock:client()
      c:close()
      local page, err = c:list_customers()
      assert.is_nil(page)
      assert.equal("invalid", err.kind)
      assert.matches("closed", tostring(err))
    end)
  end)
end)
