-- leak_workload.lua: the workload `make valgrind` runs under valgrind. It goes
-- through every path of the client (create, list, walk, wallets, credits and
-- debits one at a time and in bulk, each kind of error, clients closed and
-- clients only collected) so a leak anywhere shows up.
-- Needs ORBT_BASE_URL, ORBT_API_KEY, ORBT_CLIENT_ID and ORBT_SECRET
-- (examples/run-with-mock.sh sets them).
local orbt = require("orbt")

local function options(overrides)
  local o = { api_key = os.getenv("ORBT_API_KEY"), client_id = os.getenv("ORBT_CLIENT_ID"),
    secret = os.getenv("ORBT_SECRET"), base_url = os.getenv("ORBT_BASE_URL"), timeout = 10 }
  for k, v in pairs(overrides or {}) do
    o[k] = v
  end
  return o
end

local client = assert(orbt.new(options()))
local created = 0
for i = 1, 60 do
  local amount = ({ 9.99, 5, "0.10", 0 })[i % 4 + 1]
  assert(client:create_customer{ fullName = "Leak Check " .. i, email = ("leak%d@example.com"):format(i),
    currency = "USD", initialFunds = amount })
  created = created + 1
end

-- Many at once: 28 created, one refused before sending, one refused by the API.
local bulk = {}
for i = 1, 30 do
  bulk[i] = { fullName = "Leak Bulk " .. i, email = ("leakbulk%d@example.com"):format(i), currency = "USD",
    initialFunds = 1 }
end
bulk[3].email = "bad"
bulk[5].email = "leak2@example.com"
local results, bulk_failures = client:create_customers(bulk, { concurrency = 4 })
assert(#results == 30 and bulk_failures == 2, ("bulk: %d results, %d failures"):format(#results, bulk_failures))
created = created + 28
local unreachable = assert(orbt.new(options{ base_url = "http://127.0.0.1:1", max_retries = 1 }))
local none = unreachable:create_customers({ bulk[1], bulk[2] }, { concurrency = 2 })
assert(orbt.is_error(none[1]) and orbt.is_error(none[2]))

local walked = 0
for _ in client:customers{ size = 7 } do
  walked = walked + 1
end
assert(walked == created, ("walked %d of %d"):format(walked, created))
for page in client:customer_pages{ size = 50, limit = 55 } do
  assert(#page.content > 0)
end
assert(client:list_customers{ page = 1, size = 10 })

-- Wallets and transactions: a walk, credits and debits, a replay, the
-- refusals the API answers, and many at once with a conflict in the list.
local wallet = "101"
for w in client:wallets(101, { size = 1 }) do
  assert(w.walletId == wallet)
end
assert(client:list_wallets("101", { page = 0, size = 50 }))
assert(client:credit(wallet, { amount = "2.50", referenceId = "leak-credit", description = "leak check" }))
assert(client:credit(wallet, { amount = "2.50", referenceId = "leak-credit", description = "leak check" }))
assert(client:debit(tonumber(wallet), { amount = 1, referenceId = orbt.reference_id() }))
assert(client:create_transaction(wallet, { amount = 0.5, transactionType = "CREDIT", referenceId = "leak-tx" }))
local tx_errors = {
  { client:credit(wallet, { amount = "3.00", referenceId = "leak-credit" }) },    -- idempotency_conflict
  { client:debit(wallet, { amount = 1000000, referenceId = "leak-short" }) },     -- insufficient_wallet_funds
  { client:credit(wallet, { amount = 1e9, referenceId = "leak-big" }) },          -- insufficient_partner_funds
  { client:credit("nope", { amount = 1, referenceId = "leak-404" }) },            -- not_found
  { client:list_wallets(999999) },                                                -- invalid_request
  { client:credit("../x", { amount = 1, referenceId = "leak-bad" }) },            -- invalid
}
for i, result in ipairs(tx_errors) do
  assert(result[1] == nil and #tostring(result[2]) > 0, "transaction failure " .. i .. " did not fail")
end
local txs, tx_failures = client:create_transactions({
  { walletId = wallet, amount = 1, transactionType = "CREDIT", referenceId = "leak-b1" },
  { walletId = wallet, amount = 2, transactionType = "CREDIT", referenceId = "leak-b1" },
  { walletId = wallet, amount = 1, transactionType = "DEBIT", referenceId = "leak-b2" },
  { walletId = "nope", amount = 1, transactionType = "CREDIT", referenceId = "leak-b3" },
  { walletId = wallet, amount = -1, transactionType = "CREDIT", referenceId = "leak-b4" },
}, { concurrency = 3 })
assert(#txs == 5 and tx_failures == 4, ("transactions: %d results, %d failures"):format(#txs, tx_failures))

-- Errors of every kind, each turned into text as a user would.
local failures = {
  { client:create_customer{ fullName = "X", email = "bad", currency = "USD", initialFunds = 1 } },
  { client:create_customer{ fullName = "Leak Check 1", email = "leak1@example.com", -- a duplicate
    currency = "USD", initialFunds = 1 } },
  { client:list_customers{ size = 99 } },
  { assert(orbt.new(options{ secret = "wrong" })):list_customers() },
  { assert(orbt.new(options{ base_url = "http://127.0.0.1:1" })):create_customer{
    fullName = "X", email = "x@example.com", currency = "USD", initialFunds = 1 } },
  { orbt.new(options{ base_url = "http://example.com" }) },
  { orbt.sign{ method = "GET" } },
}
for i, result in ipairs(failures) do
  assert(result[1] == nil and type(result[2]) == "table", "failure case " .. i .. " did not fail")
  assert(#tostring(result[2]) > 0)
end
local raised = pcall(function() for _ in client:customers{ size = 0 } do end end)
assert(not raised)

-- Through a real proxy (tinyproxy): one call, and many at once, in tunnels.
local proxy = require("support.proxy").start()
local proxied = assert(orbt.new(options{ proxy = proxy.url }))
assert(proxied:list_customers{ size = 1 })
local pages = proxied:_bulk("list_customers", { { page = 0, size = 2 }, { page = 1, size = 2 } }, { concurrency = 2 })
assert(pages[1].content and pages[2].content)
proxied:close()
proxy:stop()
local refused = assert(orbt.new(options{ proxy = "http://127.0.0.1:1", max_retries = 0 }))
assert(orbt.is_error(refused:create_customers({ bulk[1] })[1]))

-- The bridge a Lua transport uses: prepared requests, readers fed by hand,
-- answers and failures, the settings and the reader of a CONNECT.
local settings = assert(orbt.new(options{ proxy = "http://u:p@127.0.0.1:3128" })):_settings()
assert(settings.proxy.connect:find("CONNECT", 1, true))
for i = 1, 10 do
  local rq = assert(client:_prepare("list_customers", { size = 1 }))
  local body = '{"content":[],"page":0,"size":1,"hasNext":false}'
  rq.reader:feed(("HTTP/1.1 200 OK\r\nContent-Length: %d\r\n\r\n"):format(#body))
  rq.reader:feed(body:sub(1, i))
  if i % 2 == 0 then
    rq.reader:feed(body:sub(i + 1))
    assert(client:_answer{ reader = rq.reader, sent = true })
  else
    assert(not client:_answer{ reader = rq.reader, failure = "network", message = "reset", sent = true })
  end
end
-- A call written once and signed again for a second attempt, and the calls
-- of a bulk plan, one sent by hand and the rest dropped unsent.
local again = assert(client:_prepare("credit", "101", { amount = 1, referenceId = "leak-again" }))
local first_wire = again.wire
assert(not client:_answer{ reader = again.reader, failure = "network", message = "refused", sent = false })
assert(client:_again(again).wire ~= first_wire)
again.reader:feed('HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\n{}')
assert(client:_answer{ reader = again.reader, sent = true })
local concurrency, calls, plan_refused, refusals = client:_bulk_plan("create_transaction", {
  { walletId = "101", amount = 1, transactionType = "CREDIT", referenceId = "leak-plan-1" },
  { walletId = "101", amount = 0, transactionType = "CREDIT", referenceId = "leak-plan-2" },
  { walletId = "102", amount = 1, transactionType = "DEBIT", referenceId = "leak-plan-3" },
}, { concurrency = 2 })
assert(concurrency == 2 and plan_refused == 1 and refusals[2].field == "amount" and calls[3])
assert(client:_again(calls[1]).wire)
assert(not client:_answer{ reader = calls[1].reader, failure = "timeout", message = "slow", sent = true })
calls = nil -- luacheck: ignore 311

local tunnel = client:_tunnel()
tunnel:feed("HTTP/1.1 407 Proxy Authentication Required\r\nContent-Length: 3\r\n\r\nno!")
assert(tunnel:status() == 407)
local dropped = client:_prepare("create_customer", bulk[1]) -- prepared, never answered: collected
assert(dropped.reader)
dropped = nil -- luacheck: ignore 311

-- Clients dropped without close are released by the garbage collector.
for _ = 1, 20 do
  local c = assert(orbt.new(options()))
  assert(c:list_customers{ size = 1 })
end
collectgarbage()
collectgarbage()

-- Hooks (one raising, reported through on_hook_error), request ids sent
-- and read, last_response, raw requests with query and table bodies, and
-- clients from the environment. The bulk call's own on_response replaces
-- the client's, so three answers reach the client's hook.
local hooked_seen = 0
local hooked = assert(orbt.new(options{ send_request_id = true, request_id_headers = { "x-trace-id" },
  on_request = function() error("a hook fails") end,
  on_response = function(info) hooked_seen = hooked_seen + (info.request_id and 1 or 0) end,
  on_hook_error = function() end }))
assert(hooked:list_customers{ size = 2 })
assert(hooked:create_customers({ { fullName = "Leak Hook", email = "leakhook@example.com", currency = "USD",
  initialFunds = 1 } }, { on_response = function() end }))
assert(hooked:request("GET", "/api/partner/v1/customer", { query = { size = 1, page = 0 } }))
assert(hooked:request("POST", "/api/partner/v1/customer", { body = { fullName = "Leak Raw",
  email = "leakraw@example.com", currency = "USD", initialFunds = 2.5, note = orbt.null } }))
assert(not hooked:request("POST", "/api/partner/v1/customer", { body = { f = print } }))
assert(not hooked:request("GET", "/api/partner/../x"))
local last = hooked:last_response()
assert(last.status == 200 and hooked_seen == 3, ("last %s, %d ids seen"):format(tostring(last.status), hooked_seen))
created = created + 2
hooked = nil -- luacheck: ignore 311 (collected, not closed)
assert(orbt.from_env{ max_retries = 0 }):close()
assert(not orbt.from_env{ client_id = 1 })

assert(orbt.sign{ method = "POST", body = "{}", client_id = "c", api_key = "k", secret = "s" })
client:close()
assert(select(2, client:list_customers()).message:find("closed"))
print(("leak workload: %d created, %d walked, %d failures checked"):format(created, walked, #failures))
