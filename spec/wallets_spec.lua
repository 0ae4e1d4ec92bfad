-- Wallets and transactions: list_wallets and its iterators, credit, debit
-- and create_transaction, against orbt-mock's wallets. Every case runs on
-- every transport: one libcurl call at a time, each call through the bulk
-- engine, and nginx cosockets (on the LuaJIT pass); they must answer alike.
-- What moved is read from orbt-mock (money movements, balances, requests),
-- never from the client under test.
local orbt = require("orbt")
local harness = require("support.harness")
local calls = require("support.calls")
local shell = require("support.shell")

local call = calls.call
local TX_PREFIX = "/api/partner/v1/wallets/*"

local function tx_path(wallet)
  return "/api/partner/v1/wallets/" .. wallet .. "/transactions"
end

local copy = calls.copy

-- Cents as an exact decimal string: 1234 -> "12.34".
local function cents(n)
  return ("%d.%02d"):format(math.floor(n / 100), n % 100)
end

local TRANSPORTS = calls.TRANSPORTS
local runner = calls.runner

local function one(run, c, overrides)
  return run({ c }, overrides)[1]
end

local function assert_ok(outcome)
  assert.is_true(outcome.ok, outcome.text)
  return outcome.result
end

local function assert_api(outcome, status, reason)
  assert.is_false(outcome.ok, "the call succeeded")
  assert.equal("api", outcome.kind, outcome.text)
  assert.equal(status, outcome.status, outcome.text)
  assert.equal(reason, outcome.reason, outcome.text)
  return outcome
end

for _, transport in ipairs(TRANSPORTS) do
  describe("wallets and transactions, over " .. transport.name, function()
    local env = harness.with_mock{ mock = { balance = "1000.00" }, nginx = transport.nginx }
    local run = runner(env, transport)

    -- A consumer made by the spec's own client: its id and its wallet's id.
    local function consumer(funds)
      local c = assert(env.client:create_customer(harness.customer{ initialFunds = funds or "10.00" }))
      return c.id, c.walletId
    end

    local function balance_of(wallet)
      return env.mock:wallet(wallet).balance_text
    end

    describe("list_wallets", function()
      it("lists a consumer's STANDARD wallet and its CAMPAIGN wallets, with every documented field", function()
        local id, wallet = consumer("12.50")
        env.mock:add_wallets{ customerId = id, currency = "EUR", campaignId = "SPRING-26",
          campaignName = "Spring", balance = "5.25" }
        local page = assert_ok(one(run, call("list_wallets", id, { page = 0, size = 50 })))
        assert.equal(0, page.page)
        assert.equal(50, page.size)
        assert.is_false(page.hasNext)
        assert.equal(2, #page.content)
        local standard, campaign = page.content[1], page.content[2]
        assert.same({ walletId = wallet, currency = "USD", balance = 12.5, walletType = "STANDARD",
          status = "ENABLED" }, standard)
        assert.equal("string", type(campaign.walletId))
        assert.same({ walletId = campaign.walletId, currency = "EUR", balance = 5.25, walletType = "CAMPAIGN",
          campaignId = "SPRING-26", campaignName = "Spring", status = "ENABLED" }, campaign)
        local sent = env.mock:last_request()
        assert.equal("/api/partner/v1/customer/" .. id .. "/wallets", sent.path)
        assert.equal("page=0&size=50", sent.query)
      end)

      it("takes the consumer id as an integer or a string of digits, and sends no query it was not given", function()
        local id = consumer()
        local outcomes = run{ call("list_wallets", tostring(id)), call("list_wallets", id, {}) }
        assert.equal(1, #assert_ok(outcomes[1]).content)
        assert.equal(1, #assert_ok(outcomes[2]).content)
        assert.equal("", env.mock:last_request().query)
      end)

      it("answers 422 for a consumer that does not exist: reason invalid_request", function()
        local err = assert_api(one(run, call("list_wallets", 999999)), 422, "invalid_request")
        assert.equal("INVALID_CONSUMER_ID", err.code)
        assert.is_false(err.retryable)
        assert.is_false(err.maybe_applied)
        assert.equal(1, err.attempts)
      end)

      if transport.how ~= "bulk" then
        it("walks 120 wallets in 3 requests of 50, with wallets() and with wallet_pages()", function()
          local id = consumer()
          env.mock:add_wallets{ customerId = id, count = 119, balance = "1.00" }
          local before = env.mock:request_count()
          local walked = run{ { name = "wallets", argc = 2, argv = { id, { size = 50 } }, iterate = true } }[1]
          local items = assert_ok(walked)
          assert.equal(120, #items)
          assert.equal("STANDARD", items[1].walletType)
          local seen = {}
          for _, w in ipairs(items) do
            assert.is_nil(seen[w.walletId], "a wallet came twice")
            seen[w.walletId] = true
          end
          assert.equal(before + 3, env.mock:request_count())
          local pages = assert_ok(run{ { name = "wallet_pages", argc = 2, argv = { id, { limit = 120 } },
            iterate = true } }[1])
          assert.same({ 50, 50, 20 }, { #pages[1].content, #pages[2].content, #pages[3].content })
          assert.equal(3, #pages)
          assert.equal(before + 6, env.mock:request_count())
        end)

        it("raises the error of a failed page instead of stopping quietly", function()
          local id = consumer()
          env.mock:add_wallets{ customerId = id, count = 60 }
          env.mock:fault{ path = "/api/partner/v1/customer/" .. id .. "/wallets", method = "GET", status = 403,
            every = 2 }
          local walked = run{ { name = "wallets", argc = 2, argv = { id, { size = 50 } }, iterate = true } }[1]
          assert_api(walked, 403, "authentication")
        end)
      end
    end)

    describe("credit, debit and create_transaction", function()
      it("moves money exactly, with the body sent byte for byte as signed", function()
        local _, wallet = consumer("10.00")
        local outcomes = run{
          call("credit", wallet, { amount = "15.00", referenceId = "cashback-ORD-98231",
            description = "5% cashback on ORD-98231" }),
          call("debit", wallet, { amount = 4.99, referenceId = "refund-ORD-98232" }),
          call("create_transaction", wallet, { amount = 19.99, transactionType = "CREDIT",
            referenceId = "bonus-1" }),
        }
        local credit = assert_ok(outcomes[1])
        assert.equal("CREDIT", credit.transactionType)
        assert.equal("cashback-ORD-98231", credit.referenceId)
        assert.equal("5% cashback on ORD-98231", credit.description)
        assert.equal(wallet, credit.walletId)
        assert.equal(25, credit.balance)
        assert.equal("DEBIT", assert_ok(outcomes[2]).transactionType)
        assert.equal(assert_ok(outcomes[3]).balance, 40)
        -- 10.00 + 15.00 - 4.99 + 19.99, exactly; the partner paid the difference.
        assert.equal("40.00", balance_of(wallet))
        local stats = env.mock:stats()
        assert.equal(3, stats.movements)
        assert.equal(2, stats.credits)
        assert.equal(1, stats.debits)
        assert.equal("960.00", stats.balance)
        local sent = env.mock:requests(3)
        assert.equal(tx_path(wallet), sent[1].path)
        assert.equal('{"amount":15.00,"transactionType":"CREDIT","referenceId":"cashback-ORD-98231",'
          .. '"description":"5% cashback on ORD-98231"}', sent[1].body)
        assert.equal('{"amount":4.99,"transactionType":"DEBIT","referenceId":"refund-ORD-98232"}', sent[2].body)
        assert.equal('{"amount":19.99,"transactionType":"CREDIT","referenceId":"bonus-1"}', sent[3].body)
      end)

      it("applies a referenceId sent twice with the same payload once, and answers the first result", function()
        local _, wallet = consumer()
        local tx = { amount = 3, referenceId = "once-1" }
        local outcomes = run{ call("credit", wallet, tx), call("credit", wallet, tx) }
        assert.same(assert_ok(outcomes[1]), assert_ok(outcomes[2]))
        local stats = env.mock:stats()
        assert.equal(1, stats.movements)
        assert.equal(1, stats.replays)
        assert.equal("13.00", balance_of(wallet))
      end)

      it("sends an integer walletId as its digits", function()
        local _, wallet = consumer()
        assert_ok(one(run, call("credit", tonumber(wallet), { amount = 1, referenceId = "int-id" })))
        assert.equal(tx_path(wallet), env.mock:last_request().path)
      end)

      it("returns an answer without the envelope as it is, and an empty 2xx body as an empty table", function()
        local _, wallet = consumer()
        env.mock:fault{ path = tx_path(wallet), method = "POST", status = 200,
          body = '{"transactionId":"T-1","amount":2.50,"extra":null}' }
        env.mock:fault{ path = tx_path(wallet), method = "POST", status = 200, body = "" }
        local outcomes = run{ call("credit", wallet, { amount = 1, referenceId = "any-1" }),
          call("credit", wallet, { amount = 1, referenceId = "any-2" }) }
        assert.same({ transactionId = "T-1", amount = 2.5, extra = calls.NULL }, assert_ok(outcomes[1]))
        assert.same({}, assert_ok(outcomes[2]))
      end)

      it("refuses a 2xx answer that is not a JSON object, and says it may have been applied", function()
        local _, wallet = consumer()
        env.mock:fault{ path = tx_path(wallet), method = "POST", status = 200, body = "[1,2]" }
        env.mock:fault{ path = tx_path(wallet), method = "POST", status = 200, body = "{\"success\":tru" }
        local outcomes = run{ call("credit", wallet, { amount = 1, referenceId = "bad-1" }),
          call("credit", wallet, { amount = 1, referenceId = "bad-2" }) }
        for _, o in ipairs(outcomes) do
          assert.is_false(o.ok)
          assert.equal("decode", o.kind, o.text)
          assert.equal(200, o.status)
          assert.is_true(o.maybe_applied)
          assert.is_false(o.retryable)
          assert.matches("sending it again with the same referenceId is safe", o.message, 1, true)
        end
      end)
    end)

    describe("errors carry a reason read from status and code together", function()
      it("insufficient_partner_funds: a credit the partner balance cannot cover (402)", function()
        local _, wallet = consumer()
        local err = assert_api(one(run, call("credit", wallet, { amount = "990.01", referenceId = "big" })), 402,
          "insufficient_partner_funds")
        assert.equal("BUSINESS_RULE_ERROR", err.code)
        assert.is_false(err.retryable)
        assert.is_false(err.maybe_applied)
        assert.equal(0, env.mock:stats().movements)
      end)

      it("idempotency_conflict: a referenceId used before with another payload (403, not authentication)", function()
        local _, wallet = consumer()
        local outcomes = run{ call("credit", wallet, { amount = 5, referenceId = "dup" }),
          call("credit", wallet, { amount = 6, referenceId = "dup" }),
          call("debit", wallet, { amount = 5, referenceId = "dup" }) }
        assert_ok(outcomes[1])
        for i = 2, 3 do
          local err = assert_api(outcomes[i], 403, "idempotency_conflict")
          assert.equal("BUSINESS_RULE_ERROR", err.code)
          assert.is_false(err.retryable)
          assert.equal(1, err.attempts)
        end
        assert.equal(1, env.mock:stats().movements)
      end)

      it("authentication: a 403 without a business code", function()
        local _, wallet = consumer()
        local outcomes = run({ call("credit", wallet, { amount = 5, referenceId = "auth" }),
          call("list_wallets", 101) }, { secret = "not-the-secret" })
        assert_api(outcomes[1], 403, "authentication")
        assert_api(outcomes[2], 403, "authentication")
        assert.is_false(outcomes[1].retryable)
        assert.equal(2, env.mock:stats().auth_failures)
      end)

      it("insufficient_wallet_funds: a debit the wallet cannot cover (500 SYSTEM_ERROR), not retried", function()
        local _, wallet = consumer("10.00")
        local err = assert_api(one(run, call("debit", wallet, { amount = "10.01", referenceId = "short" })), 500,
          "insufficient_wallet_funds")
        assert.equal("SYSTEM_ERROR", err.code)
        assert.equal(1, err.attempts)
        assert.is_false(err.retryable)
        assert.is_false(err.maybe_applied)
        assert.equal(2, env.mock:request_count()) -- the create, and one debit
      end)

      it("duplicate_customer: a second create for an email and currency (400 VALIDATION_ERROR)", function()
        local customer = harness.customer()
        local outcomes = run{ call("create_customer", customer), call("create_customer", customer) }
        assert_ok(outcomes[1])
        local err = assert_api(outcomes[2], 400, "duplicate_customer")
        assert.equal("VALIDATION_ERROR", err.code)
      end)

      it("not_found, invalid_request, rate_limited and server", function()
        local _, wallet = consumer()
        env.mock:fault{ path = tx_path(wallet), method = "POST", status = 429, count = 1 }
        env.mock:fault{ path = tx_path(wallet), method = "POST", status = 502, count = 1 }
        env.mock:fault{ path = tx_path(wallet), method = "POST", status = 400, count = 1,
          body = '{"code":"VALIDATION_ERROR","message":"amount has too many decimals"}' }
        local once = { max_retries = 0 }
        local outcomes = run{
          call("credit", "no-such-wallet", { amount = 1, referenceId = "nf" }),
          call("credit", wallet, { amount = 1, referenceId = "rl" }, once),
          call("credit", wallet, { amount = 1, referenceId = "sv" }, once),
          call("credit", wallet, { amount = 1, referenceId = "ir" }, once),
        }
        assert.is_false(assert_api(outcomes[1], 404, "not_found").retryable)
        local limited = assert_api(outcomes[2], 429, "rate_limited")
        assert.is_true(limited.retryable)
        assert.is_false(limited.maybe_applied)
        local server = assert_api(outcomes[3], 502, "server")
        assert.is_true(server.retryable)
        assert.is_true(server.maybe_applied)
        assert.matches("sending it again with the same referenceId is safe", server.message, 1, true)
        local invalid = assert_api(outcomes[4], 400, "invalid_request")
        assert.is_false(invalid.retryable)
        assert.is_false(invalid.maybe_applied)
        assert.equal(0, env.mock:stats().movements)
      end)
    end)

    describe("a malformed answer", function()
      it("more than 200 header lines: a decode error, not retried; a credit may have been applied", function()
        local _, wallet = consumer()
        env.mock:fault{ path = tx_path(wallet), method = "POST", headers = 5000, count = 1 }
        env.mock:fault{ path = "/api/partner/v1/customer", method = "GET", headers = 300, count = 1 }
        local outcomes = run{
          call("credit", wallet, { amount = "1.25", referenceId = "many-headers" }),
          call("list_customers", {}),
        }
        for _, err in ipairs(outcomes) do
          assert.is_false(err.ok, "the call succeeded")
          assert.equal("decode", err.kind, err.text)
          assert.is_false(err.retryable)
          assert.equal(1, err.attempts)
          assert.matches("more than 200 header lines", err.text, 1, true)
        end
        assert.is_true(outcomes[1].maybe_applied)
        assert.matches("sending it again with the same referenceId is safe", outcomes[1].text, 1, true)
        assert.is_false(outcomes[2].maybe_applied)
        assert.equal(1, env.mock:stats().movements) -- it was applied; the answer was lost
      end)
    end)

    describe("exactly once under faults", function()
      local function assert_once(wallet, outcome, balance, requests)
        local tx = assert_ok(outcome)
        assert.equal("CREDIT", tx.transactionType)
        local stats = env.mock:stats()
        assert.equal(1, stats.movements)
        assert.equal(requests - 1, stats.replays)
        assert.equal(balance, balance_of(wallet))
        local sent = env.mock:requests(requests)
        assert.equal(requests, #sent)
        -- Every attempt sends the same bytes, signed afresh.
        for i = 2, requests do
          assert.equal(sent[1].body, sent[i].body)
          assert.equal(sent[1].headers["x-body-hash"], sent[i].headers["x-body-hash"])
        end
        return sent
      end

      it("resends a credit whose connection dropped after it was applied, and it moves once", function()
        local _, wallet = consumer("10.00")
        env.mock:fault{ path = tx_path(wallet), method = "POST", drop = "after" }
        local outcome = one(run, call("credit", wallet, { amount = "2.35", referenceId = "drop-1" }))
        assert_once(wallet, outcome, "12.35", 2)
        assert.equal("987.65", env.mock:stats().balance)
      end)

      it("resends a credit answered 503 after it was applied, and it moves once", function()
        local _, wallet = consumer("10.00")
        env.mock:fault{ path = tx_path(wallet), method = "POST", status = 503, apply = true, count = 2 }
        local outcome = one(run, call("credit", wallet, { amount = 0.1, referenceId = "503-1" }))
        assert_once(wallet, outcome, "10.10", 3)
      end)

      it("resends after a 500 that is not a JSON error with a code", function()
        local _, wallet = consumer("10.00")
        env.mock:fault{ path = tx_path(wallet), method = "POST", status = 500, apply = true,
          body = "<html>Internal Server Error</html>", content_type = "text/html" }
        local outcome = one(run, call("credit", wallet, { amount = 1, referenceId = "500-1" }))
        assert_once(wallet, outcome, "11.00", 2)
      end)

      it("resends a credit whose attempt timed out after sending", function()
        local _, wallet = consumer("10.00")
        env.mock:fault{ path = tx_path(wallet), method = "POST", delay_ms = 1500 }
        local outcome = one(run, call("credit", wallet, { amount = 1, referenceId = "slow-1" }), { timeout = 0.5 })
        shell.sleep(1.5) -- the first attempt is processed when its delay ends: a replay
        assert_once(wallet, outcome, "11.00", 2)
      end)

      it("resends after a 500 whose \"error\" is a status text, not a code", function()
        local _, wallet = consumer("10.00")
        env.mock:fault{ path = tx_path(wallet), method = "POST", status = 500, apply = true,
          body = '{"timestamp":"2026-06-03T10:00:00.000+00:00","status":500,"error":"Internal Server Error"}' }
        local outcome = one(run, call("credit", wallet, { amount = 1, referenceId = "spring-500" }))
        assert_once(wallet, outcome, "11.00", 2)
      end)

      it("says a call may have been applied when an earlier attempt was, whatever the last one got", function()
        local _, wallet = consumer("10.00")
        env.mock:fault{ path = tx_path(wallet), method = "POST", drop = "after" }
        env.mock:fault{ path = tx_path(wallet), method = "POST", status = 429, count = 3 }
        local err = one(run, call("credit", wallet, { amount = 1, referenceId = "then-429" }, { max_retries = 1 }))
        assert_api(err, 429, "rate_limited")
        assert.equal(2, err.attempts)
        assert.is_true(err.maybe_applied)
        assert.matches("may have been applied: sending it again with the same referenceId is safe", err.message,
          1, true)
        assert.equal(1, env.mock:stats().movements)
      end)

      it("does not resend a 500 with an error code: it may have been applied, and the same call is safe", function()
        local _, wallet = consumer("10.00")
        env.mock:fault{ path = tx_path(wallet), method = "POST", status = 500, apply = true,
          body = '{"code":"SYSTEM_ERROR","message":"ledger timeout"}' }
        local tx = { amount = 1, referenceId = "coded-500" }
        local outcomes = run{ call("credit", wallet, tx), call("credit", wallet, tx) }
        local err = assert_api(outcomes[1], 500, "server")
        assert.equal(1, err.attempts)
        assert.is_true(err.maybe_applied)
        assert.is_false(err.retryable)
        assert.matches("may have been applied: sending it again with the same referenceId is safe",
          err.message, 1, true)
        assert_once(wallet, outcomes[2], "11.00", 2)
      end)

      it("gives up after max_retries with an error that says the credit may have been applied", function()
        local _, wallet = consumer("10.00")
        -- One drop more than the attempts: over nginx's pool, the first
        -- attempt may go on a connection kept from an earlier call, and a
        -- request that dies there unanswered is sent once more at once, as
        -- libcurl does, without counting as an attempt.
        env.mock:fault{ path = tx_path(wallet), method = "POST", drop = "after", count = 4 }
        local err = one(run, call("credit", wallet, { amount = 1, referenceId = "lost" }))
        assert.is_false(err.ok)
        assert.equal("network", err.kind, err.text)
        assert.equal(3, err.attempts)
        assert.is_true(err.retryable)
        assert.is_true(err.maybe_applied)
        assert.matches("sending it again with the same referenceId is safe", err.message, 1, true)
        assert.equal(1, env.mock:stats().movements)
      end)
    end)

    describe("validation, before any traffic", function()
      local GOOD = { amount = 1, referenceId = "ok-1" }
      -- {field, call}: every one is refused with an `invalid` error on field.
      local function cases()
        local list = {}
        local function add(field, c)
          list[#list + 1] = { field, c }
        end
        local function tx(overrides)
          local t = copy(GOOD)
          for k, v in pairs(overrides) do
            if v == "<nil>" then
              t[k] = nil
            else
              t[k] = v
            end
          end
          return t
        end
        for _, amount in ipairs{ "<nil>", 0, -1, -0.01, "0", "0.00", "abc", "", "1e3", "-1", "+1", "1.",
          ".5", "1,5", " 1", "0x10", "1.2.3", "1234567890123456", "1.1234567890123", true } do
          add("amount", call("credit", "101", tx{ amount = amount }))
        end
        for _, ref in ipairs{ "<nil>", "", "has space", ("x"):rep(129), "tab\tbed", "caf\195\169", 42, true } do
          add("referenceId", call("credit", "101", tx{ referenceId = ref }))
        end
        for _, description in ipairs{ 42, "line\nbreak", "nul\0byte", ("\195\169"):rep(256), false } do
          add("description", call("debit", "101", tx{ description = description }))
        end
        for _, kind in ipairs{ "<nil>", "credit", "REFUND", "CREDIT ", 1 } do
          add("transactionType", call("create_transaction", "101", tx{ transactionType = kind }))
        end
        add("transactionType", call("credit", "101", tx{ transactionType = "DEBIT" }))
        if transport.how ~= "bulk" then -- a bulk item's walletId is one of its fields
          add("walletId", call("credit", "101", tx{ walletId = "101" }))
        end
        add("extra", call("create_transaction", "101", tx{ transactionType = "CREDIT", extra = 1 }))
        for _, wallet in ipairs{ "", ".", "..", "a/b", "a b", "a%2Fb", "caf\195\169", ("w"):rep(65), 1.5, true,
          "?x", "#x" } do
          add("walletId", call("credit", wallet, copy(GOOD)))
        end
        add("walletId", call("credit", nil, copy(GOOD)))
        for _, id in ipairs{ 0, -1, 1.5, "abc", "01", "1 ", "", "-5", "12345678901234567890", true } do
          add("customerId", call("list_wallets", id))
        end
        add("customerId", call("list_wallets", nil, { size = 5 }))
        add("size", call("list_wallets", 101, { size = 0 }))
        add("size", call("list_wallets", 101, { size = 51 }))
        add("size", call("list_wallets", 101, { size = 1.5 }))
        add("page", call("list_wallets", 101, { page = -1 }))
        add("filter", call("list_wallets", 101, { filter = "x" }))
        add("max_retries", call("credit", "101", copy(GOOD), { max_retries = -1 }))
        return list
      end

      it("refuses every rule with an invalid error naming the field, and sends nothing", function()
        local list = cases()
        local batch = {}
        for i, case in ipairs(list) do
          batch[i] = case[2]
        end
        local outcomes = run(batch)
        for i, case in ipairs(list) do
          local o = outcomes[i]
          local label = ("case %d (%s)"):format(i, case[1])
          assert.is_false(o.ok, label .. " was sent")
          assert.equal("invalid", o.kind, label .. ": " .. tostring(o.text))
          assert.equal(case[1], o.field, label .. ": " .. tostring(o.text))
          assert.is_false(o.retryable)
          assert.is_nil(o.status)
          assert.is_nil(o.attempts)
        end
        assert.equal(0, env.mock:request_count())
      end)

      it("sends what is just inside the rules", function()
        local _, wallet = consumer()
        local outcomes = run{
          call("credit", wallet, { amount = "0.000000000001", referenceId = ("r"):rep(128),
            description = ("\195\169"):rep(255) }),
          call("credit", wallet, { amount = "999999999999999.999999999999", referenceId = "!~" }),
          call("list_wallets", "101", { page = 2147483647, size = 50 }),
        }
        -- orbt-mock keeps micro-units: it refuses a 12th decimal, and never rounds it.
        assert.matches("at most 6 decimals", outcomes[1].message, 1, true)
        assert.equal(400, outcomes[1].status)
        assert_api(outcomes[2], 400, "invalid_request") -- orbt-mock's largest amount is 10^12
        assert.is_false(assert_ok(outcomes[3]).hasNext)
        assert.equal(1 + 3, env.mock:request_count())
      end)
    end)
  end)
end

-- create_transactions: the bulk method, on libcurl's connections and over
-- nginx cosockets.
local BULK_TRANSPORTS = {
  { name = "libcurl's multi interface" },
  { name = "nginx cosockets #nginx", nginx = true },
}

for _, transport in ipairs(BULK_TRANSPORTS) do
  describe("create_transactions, over " .. transport.name, function()
    local env = harness.with_mock{ mock = { balance = "100000.00" }, nginx = transport.nginx }
    local run = runner(env, transport)

    local function consumers(n, funds)
      local wallets = {}
      for i = 1, n do
        wallets[i] = assert(env.client:create_customer(harness.customer{ initialFunds = funds or 0 })).walletId
      end
      return wallets
    end

    it("gives one result per input, in order; refuses invalid items and referenceIds reused with another "
      .. "payload, and sends the rest", function()
      local w = consumers(2, "5.00")
      local list = {
        { walletId = w[1], amount = 1, transactionType = "CREDIT", referenceId = "a" },
        { walletId = w[1], amount = 2, transactionType = "CREDIT", referenceId = "conflict" },
        { walletId = w[2], amount = "3.00", transactionType = "CREDIT", referenceId = "same" },
        { walletId = w[1], amount = 4, transactionType = "CREDIT", referenceId = "conflict" },
        { walletId = w[2], amount = "3.00", transactionType = "CREDIT", referenceId = "same" },
        { walletId = w[1], amount = 5, transactionType = "REFUND", referenceId = "bad" },
        { walletId = w[2], amount = 2, transactionType = "CREDIT", referenceId = "conflict" },
        { amount = 6, transactionType = "CREDIT", referenceId = "no-wallet" },
        { walletId = w[2], amount = 1, transactionType = "DEBIT", referenceId = "b" },
      }
      local outcome = one(run, call("create_transactions", list, { concurrency = 4 }))
      local results = assert_ok(outcome)
      assert.equal(#list, #results)
      assert.equal(5, outcome.failures)
      assert.equal("a", results[1].referenceId)
      for _, i in ipairs{ 2, 4, 7 } do
        assert.is_true(results[i].is_error, i)
        assert.equal("invalid", results[i].kind)
        assert.equal("referenceId", results[i].field)
        assert.matches("items 2 and 4 of the list have the same referenceId with different payloads",
          results[i].message, 1, true)
      end
      assert.same(results[3], results[5])          -- the same payload twice: one movement, one answer
      assert.equal("transactionType", results[6].field)
      assert.equal("walletId", results[8].field)
      assert.equal("DEBIT", results[9].transactionType)
      local stats = env.mock:stats()
      assert.equal(3, stats.movements)             -- a, same, b
      assert.equal(2 + 4, stats.requests_total)    -- the creates, and the items sent
    end)

    it("moves 1,000 credits exactly once with faults on 10% of them, to the cent", function()
      local w = consumers(10)
      local list, total = {}, 0
      for i = 1, 1000 do
        total = total + i
        list[i] = { walletId = w[i % 10 + 1], amount = cents(i), transactionType = "CREDIT",
          referenceId = ("bulk-%04d"):format(i), description = "item " .. i }
      end
      env.mock:fault{ path = TX_PREFIX, method = "POST", drop = "after", every = 20, count = 50 }
      env.mock:fault{ path = TX_PREFIX, method = "POST", status = 503, apply = true, every = 19, count = 50 }
      local outcome = one(run, call("create_transactions", list, { concurrency = 16, max_retries = 8 }))
      local results = assert_ok(outcome)
      assert.equal(0, outcome.failures)
      for i = 1, 1000 do
        assert.equal(list[i].referenceId, results[i].referenceId)
      end
      local stats = env.mock:stats()
      assert.equal(1000, stats.movements)
      assert.equal(10 + 1000 + 100, stats.requests_total) -- 100 faults, each resent once or more
      assert.equal(100, stats.replays)                    -- every fault fell on an applied request
      -- 100000.00 less 0.01 + 0.02 + ... + 10.00, exactly.
      assert.equal(cents(10000000 - total), stats.balance)
    end)
  end)
end

describe("orbt.reference_id", function()
  it("gives a fresh UUID v4 each time, from OpenSSL's randomness", function()
    local seen = {}
    for _ = 1, 10000 do
      local id = orbt.reference_id()
      assert.matches("^%x%x%x%x%x%x%x%x%-%x%x%x%x%-4%x%x%x%-[89ab]%x%x%x%-%x%x%x%x%x%x%x%x%x%x%x%x$", id)
      assert.is_nil(seen[id])
      seen[id] = true
    end
  end)
end)
