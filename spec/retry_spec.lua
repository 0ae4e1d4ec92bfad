-- The retry policy (src/retry.h, README "Retries") against orbt-mock's fault
-- injection: for each fault and each call, the outcome, the error's kind,
-- the number of attempts orbt-mock received, and for creates the consumers
-- it holds: no duplicate from a retry, none lost.
local mockserver = require("support.mock")
local harness = require("support.harness")
local shell = require("support.shell")

local PATH = mockserver.PATH

describe("retries", function()
  local env = harness.with_mock{ client = { timeout = 5 } }

  local function create(c, opts)
    return (c or env.client):create_customer(harness.customer(), opts)
  end

  local function list(c, opts)
    return (c or env.client):list_customers({ size = 5 }, opts)
  end

  -- The requests orbt-mock received on the API path.
  local function attempts_seen()
    return env.mock:stats().requests_total
  end

  -- Waits until requests held by a delay fault have been processed.
  local function settle(seconds)
    shell.sleep(seconds)
  end

  describe("a list (GET)", function()
    for _, status in ipairs{ 429, 500, 502, 503, 504 } do
      it("is tried again after " .. status .. " and succeeds", function()
        env.mock:fault{ path = PATH, method = "GET", status = status, count = 1 }
        assert(list())
        assert.equal(2, attempts_seen())
      end)

      it("gives up after max_retries on a lasting " .. status, function()
        env.mock:fault{ path = PATH, method = "GET", status = status, count = 10 }
        local page, err = list()
        assert.is_nil(page)
        assert.equal("api", err.kind)
        assert.equal(status, err.status)
        assert.equal(3, err.attempts)
        assert.is_true(err.retryable)
        assert.equal(3, attempts_seen())
      end)
    end

    it("keeps an HTML error page through the retries", function()
      local html = "<html><body><h1>502 Bad Gateway</h1></body></html>"
      env.mock:fault{ path = PATH, method = "GET", status = 502, body = html, content_type = "text/html", count = 10 }
      local _, err = list()
      assert.equal("api", err.kind)
      assert.equal(html, err.body)
      assert.equal(3, err.attempts)
    end)

    it("is tried again after a timeout", function()
      env.mock:fault{ path = PATH, method = "GET", delay_ms = 1500, count = 1 }
      assert(list(env.mock:client{ timeout = 0.3 }))
      assert.equal(2, attempts_seen())
    end)

    it("is tried again when the connection drops before or after the request is read", function()
      for _, when in ipairs{ "before", "after" } do
        env.mock:reset()
        env.mock:fault{ path = PATH, method = "GET", drop = when, count = 1 }
        assert(list(env.mock:client()), when)
        assert.equal(2, attempts_seen(), when)
      end
    end)

    it("is tried again after a truncated answer", function()
      env.mock:fault{ path = PATH, method = "GET", truncate = true, count = 1 }
      assert(list())
      assert.equal(2, attempts_seen())
    end)

    it("is not tried again after malformed JSON or an oversized answer", function()
      env.mock:fault{ path = PATH, method = "GET", status = 200, body = "{not json", count = 10 }
      local _, err = list()
      assert.equal("decode", err.kind)
      assert.equal(1, err.attempts)
      assert.equal(1, attempts_seen())

      env.mock:reset()
      env.mock:fault{ path = PATH, method = "GET", oversize = 4096, count = 10 }
      local small = env.mock:client{ max_body = 1024 }
      _, err = list(small)
      assert.equal("decode", err.kind)
      assert.matches("max_body", err.message)
      assert.equal(1, err.attempts)
      assert.equal(1, attempts_seen())
    end)

    it("is tried again when the server cannot be reached, and says how often", function()
      local gone = mockserver.start()
      local url = gone.url
      gone:cleanup()
      local _, err = list(env.mock:client{ base_url = url })
      assert.equal("network", err.kind)
      assert.equal(3, err.attempts)
      assert.is_true(err.retryable)
    end)

    it("takes max_retries from the client or the call", function()
      env.mock:fault{ path = PATH, method = "GET", status = 503, count = 10 }
      local _, err = list(env.mock:client{ max_retries = 0 })
      assert.equal(1, err.attempts)
      _, err = list(nil, { max_retries = 1 })
      assert.equal(2, err.attempts)
      assert.equal(1 + 2, attempts_seen())
    end)

    it("signs every attempt afresh", function()
      env.mock:fault{ path = PATH, method = "GET", status = 503, retry_after = "1", count = 1 }
      assert(list())
      local requests = env.mock:requests(2)
      assert.equal(2, #requests)
      local function header(r, name)
        for k, v in pairs(r.headers) do
          if k:lower() == name then
            return v
          end
        end
      end
      assert.are_not.equal(header(requests[1], "x-timestamp"), header(requests[2], "x-timestamp"))
      assert.are_not.equal(header(requests[1], "x-signature"), header(requests[2], "x-signature"))
      assert.equal(0, env.mock:stats().auth_failures)
    end)
  end)

  describe("a create (POST)", function()
    it("is tried again after 429, and exactly one consumer is created", function()
      env.mock:fault{ path = PATH, method = "POST", status = 429, count = 1 }
      local customer = assert(create())
      assert.equal(101, customer.id)
      assert.equal(2, attempts_seen())
      assert.equal(1, env.mock:stats().consumers)
    end)

    for _, status in ipairs{ 500, 502, 503, 504 } do
      it("is not tried again after " .. status .. ": the server may have applied it", function()
        env.mock:fault{ path = PATH, method = "POST", status = status, count = 1 }
        local customer, err = create()
        assert.is_nil(customer)
        assert.equal("api", err.kind)
        assert.equal(status, err.status)
        assert.equal(1, err.attempts)
        assert.is_false(err.retryable)
        assert.is_true(err.maybe_applied)
        assert.matches("the create reached the server and may have been applied, so it was not sent again",
          err.message, 1, true)
        assert.equal(1, attempts_seen())
        assert.equal(0, env.mock:stats().consumers)
      end)
    end

    it("is not tried again after an HTML error page", function()
      env.mock:fault{ path = PATH, method = "POST", status = 502, body = "<html>bad gateway</html>",
        content_type = "text/html", count = 1 }
      local _, err = create()
      assert.equal("api", err.kind)
      assert.equal("<html>bad gateway</html>", err.body)
      assert.equal(1, err.attempts)
      assert.equal(0, env.mock:stats().consumers)
    end)

    it("is not tried again after a timeout, and the one create is applied once", function()
      env.mock:fault{ path = PATH, method = "POST", delay_ms = 800, count = 1 }
      local _, err = create(env.mock:client{ timeout = 0.3 })
      assert.equal("timeout", err.kind)
      assert.equal(1, err.attempts)
      assert.is_false(err.retryable)
      assert.matches("may have been applied", err.message)
      settle(1)
      assert.equal(1, attempts_seen())
      assert.equal(1, env.mock:stats().consumers)
    end)

    it("is not tried again when the connection drops before or after the request is read", function()
      for _, when in ipairs{ "before", "after" } do
        env.mock:reset()
        env.mock:fault{ path = PATH, method = "POST", drop = when, count = 1 }
        local _, err = create(env.mock:client())
        assert.equal("network", err.kind, when)
        assert.equal(1, err.attempts, when)
        assert.is_false(err.retryable, when)
        assert.equal(1, attempts_seen(), when)
        assert.equal(when == "after" and 1 or 0, env.mock:stats().consumers, when)
      end
    end)

    it("is not tried again after a truncated answer, which was applied", function()
      env.mock:fault{ path = PATH, method = "POST", truncate = true, count = 1 }
      local _, err = create()
      assert.equal("network", err.kind)
      assert.equal(200, err.status)
      assert.equal(1, err.attempts)
      assert.equal(1, env.mock:stats().consumers)
    end)

    it("is not tried again after malformed JSON or an oversized answer", function()
      env.mock:fault{ path = PATH, method = "POST", status = 201, body = "{not json", apply = true, count = 1 }
      local _, err = create()
      assert.equal("decode", err.kind)
      assert.equal(1, err.attempts)
      assert.equal(1, env.mock:stats().consumers)

      env.mock:reset()
      env.mock:fault{ path = PATH, method = "POST", oversize = 4096, count = 1 }
      _, err = create(env.mock:client{ max_body = 1024 })
      assert.equal("decode", err.kind)
      assert.equal(1, err.attempts)
      assert.equal(1, attempts_seen())
    end)

    it("is tried again when it never reached the server", function()
      local gone = mockserver.start()
      local url = gone.url
      gone:cleanup()
      local _, err = create(env.mock:client{ base_url = url })
      assert.equal("network", err.kind)
      assert.equal(3, err.attempts)
      assert.is_true(err.retryable)
    end)
  end)

  describe("Retry-After", function()
    -- RFC 9110's three HTTP-date forms of a time `at` (os.time()), in
    -- English whatever the locale.
    local DAYS = { "Sunday", "Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday" }
    local MONTHS = { "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec" }
    local DATE_FORMS = {
      ["IMF-fixdate"] = function(t)   -- Sun, 06 Nov 1994 08:49:37 GMT
        return ("%s, %02d %s %04d %02d:%02d:%02d GMT")
          :format(DAYS[t.wday]:sub(1, 3), t.day, MONTHS[t.month], t.year, t.hour, t.min, t.sec)
      end,
      ["RFC 850"] = function(t)       -- Sunday, 06-Nov-94 08:49:37 GMT
        return ("%s, %02d-%s-%02d %02d:%02d:%02d GMT")
          :format(DAYS[t.wday], t.day, MONTHS[t.month], t.year % 100, t.hour, t.min, t.sec)
      end,
      ["asctime"] = function(t)       -- Sun Nov  6 08:49:37 1994
        return ("%s %s %2d %02d:%02d:%02d %04d")
          :format(DAYS[t.wday]:sub(1, 3), MONTHS[t.month], t.day, t.hour, t.min, t.sec, t.year)
      end,
    }
    local function http_date(form, at)
      return DATE_FORMS[form](os.date("!*t", at))
    end

    it("is honoured in seconds", function()
      env.mock:fault{ path = PATH, method = "POST", status = 429, retry_after = "1", count = 1 }
      assert(create())
      assert.equal(2, attempts_seen())
      assert.equal(1, env.mock:stats().consumers)
    end)

    -- The date is 2 s ahead in whole seconds: a retry after the backoff
    -- alone (at most 0.25 s) would come back before it.
    for _, form in ipairs{ "IMF-fixdate", "RFC 850", "asctime" } do
      it("is honoured as an HTTP date in the " .. form .. " form", function()
        local at = os.time() + 2
        local date = http_date(form, at)
        env.mock:fault{ path = PATH, method = "GET", status = 503, retry_after = date, count = 1 }
        local _, err = list(nil, { max_retries = 0 })
        assert.equal(503, err.status)
        assert.is_number(err.retry_after, date)
        assert.is_true(err.retry_after >= 1 and err.retry_after <= 2, date .. ": " .. err.retry_after)

        at = os.time() + 2
        date = http_date(form, at)
        env.mock:fault{ path = PATH, method = "POST", status = 429, retry_after = date, count = 1 }
        assert(create())
        assert.is_true(os.time() >= at, date .. " was not waited for")
        assert.equal(3, attempts_seen())
        assert.equal(1, env.mock:stats().consumers)
      end)
    end

    -- Not a Retry-After: the backoff applies, and the error does not
    -- pretend the server asked for a wait.
    it("is ignored when it is neither seconds nor an HTTP date", function()
      for _, bad in ipairs{ "soon", "1.5", "-1", "Sun, 32 Nov 2094 08:49:37 GMT", "Sun, 06 Foo 2094 08:49:37 GMT",
        "Sun Nov 36 08:49:37 2094", "Sunday, 06-Nov-94 25:49:37 GMT" } do
        env.mock:reset()
        env.mock:fault{ path = PATH, method = "GET", status = 503, retry_after = bad, count = 1 }
        local _, err = list(nil, { max_retries = 0 })
        assert.equal(503, err.status, bad)
        assert.is_nil(err.retry_after, bad)
        env.mock:fault{ path = PATH, method = "GET", status = 503, retry_after = bad, count = 1 }
        local started = os.time()
        assert(list())
        assert.is_true(os.time() - started <= 1, bad .. ": waited past the backoff")
      end
    end)

    it("past the cap: no wait, and the error says what the server asked", function()
      env.mock:fault{ path = PATH, method = "GET", status = 503, retry_after = "120", count = 10 }
      local _, err = list()
      assert.equal(503, err.status)
      assert.equal(1, err.attempts)
      assert.equal(120, err.retry_after)
      assert.equal(1, attempts_seen())
    end)
  end)

  describe("the deadline", function()
    it("stops the retries when the next wait would pass it", function()
      env.mock:fault{ path = PATH, method = "GET", status = 503, retry_after = "1", count = 10 }
      local _, err = list(nil, { deadline = 1.5 })
      assert.equal(2, err.attempts)
      assert.equal(2, attempts_seen())
    end)

    it("cuts an attempt's timeout to what it leaves", function()
      env.mock:fault{ path = PATH, method = "GET", delay_ms = 3000, count = 10 }
      local _, err = list(nil, { deadline = 0.5 })
      assert.equal("timeout", err.kind)
      assert.matches("deadline of 0.5 s passed", err.message, 1, true)
      assert.equal(1, err.attempts)
    end)

    it("refuses bad limits before sending", function()
      for _, bad in ipairs{ { deadline = 0 }, { deadline = "1" }, { max_retries = -1 }, { max_retries = 11 },
        { max_retries = 1.5 }, { retries = 1 } } do
        local _, err = list(nil, bad)
        assert.equal("invalid", err.kind)
      end
      assert.equal(0, attempts_seen())
    end)
  end)
end)
