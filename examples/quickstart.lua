-- quickstart.lua: create consumers, list a page, walk them all, credit a
-- wallet exactly once, and see how orbt reports a refused input and an API
-- error.
--
-- Reads ORBT_BASE_URL, ORBT_API_KEY, ORBT_CLIENT_ID and ORBT_SECRET from the
-- environment (`make demo` sets them for a local orbt-mock).

local orbt = require("orbt")

local function env(name)
  local value = os.getenv(name)
  if not value or value == "" then
    io.stderr:write("quickstart: set ", name, "\n")
    os.exit(2)
  end
  return value
end

local client = assert(orbt.new{
  api_key = env("ORBT_API_KEY"),
  client_id = env("ORBT_CLIENT_ID"),
  secret = env("ORBT_SECRET"),
  base_url = env("ORBT_BASE_URL"),
  timeout = 10,
})
print("client:", tostring(client))

-- 1. Create three consumers, each with initial funds.
local run = tostring(os.time())
local first
local people = {
  { "Jane Smith", 50 },          -- a Lua integer
  { "Zoë Ünïcødé", 19.99 },       -- a float: sent as 19.99, not 19.989999999999998
  { "Ade Okafor", "0.10" },       -- a decimal string: sent verbatim
}
for i, person in ipairs(people) do
  local customer, err = client:create_customer{
    fullName = person[1],
    email = ("consumer%d.%s@example.com"):format(i, run),
    currency = "USD",
    initialFunds = person[2],
  }
  if not customer then
    error(tostring(err))
  end
  first = first or customer
  print(("created #%d %s: wallet %s, balance %.2f %s"):format(
    customer.id, customer.fullName, customer.walletId, customer.walletBalance, customer.currency))
end

-- 2. One page.
local page = assert(client:list_customers{ page = 0, size = 2 })
print(("page %d (size %d): %d consumers, hasNext=%s"):format(
  page.page, page.size, #page.content, tostring(page.hasNext)))

-- 3. Every consumer, fetched lazily page by page.
local count = 0
for consumer in client:customers{ size = 2 } do
  count = count + 1
  print(("  %d. %s <%s>"):format(consumer.consumerId, consumer.consumerName, consumer.consumerEmail))
end
print("walked " .. count .. " consumers")

-- 4. Money: the first consumer's wallets, and a credit applied once. The
-- referenceId is the idempotency key: sent again, nothing moves twice.
for wallet in client:wallets(first.id) do
  print(("wallet %s: %s %s, balance %.2f"):format(wallet.walletId, wallet.walletType, wallet.currency,
    wallet.balance))
end
local credit = { amount = "5.00", referenceId = "welcome-bonus-" .. first.id .. "-" .. run,
  description = "welcome bonus" }
for _ = 1, 2 do
  local tx, err = client:credit(first.walletId, credit)
  if not tx then
    error(tostring(err))
  end
  print(("credited %s to wallet %s with referenceId %s: %s"):format(credit.amount, first.walletId,
    credit.referenceId, tostring(tx.transactionId or "done")))
end

-- 5. Refused before sending: lower-case currency.
local _, refused = client:create_customer{
  fullName = "Bad Input", email = "bad@example.com", currency = "usd", initialFunds = 1,
}
print("refused:", tostring(refused), "(field: " .. refused.field .. ")")

-- 6. An API error: this email already has a USD wallet.
local _, api_err = client:create_customer{
  fullName = "Jane Smith", email = ("consumer1.%s@example.com"):format(run),
  currency = "USD", initialFunds = 5,
}
print("api error:", tostring(api_err))
print(("  kind=%s status=%d code=%s reason=%s retryable=%s"):format(
  api_err.kind, api_err.status, tostring(api_err.code), tostring(api_err.reason), tostring(api_err.retryable)))

client:close()
