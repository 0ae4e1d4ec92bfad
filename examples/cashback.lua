-- cashback.lua: pay 5% cashback on a list of orders into the buyers'
-- wallets, exactly once, however often the script runs.
--
--   lua5.4 examples/cashback.lua ORDERS
--
-- ORDERS has one order per line: its id, the buyer's walletId and the
-- order's total, separated by spaces ("ORD-98231 101 39.90"). Each credit's
-- referenceId is made from the order id ("cashback-ORD-98231"), so running
-- the script again after a crash, a timeout or by mistake pays nothing
-- twice: Orbt answers the first result again. Amounts are worked out in
-- integer cents and sent as decimal strings, so no float ever rounds money.
--
-- Reads ORBT_BASE_URL, ORBT_API_KEY, ORBT_CLIENT_ID and ORBT_SECRET
-- (examples/run-with-mock.sh sets them for a local orbt-mock). Exits 0 when
-- every order is paid, 1 when some are not (run it again: that is safe), 2
-- on bad input.

local orbt = require("orbt")

local RATE_PERCENT = 5

local function fail(message)
  io.stderr:write("cashback: ", message, "\n")
  os.exit(2)
end

local function env(name)
  local value = os.getenv(name)
  if not value or value == "" then
    fail("set " .. name)
  end
  return value
end

-- "39.90" -> 3990 cents; nil for anything but a plain amount.
local function to_cents(text)
  local whole, fraction = text:match("^(%d+)%.(%d%d)$")
  if not whole then
    whole, fraction = text:match("^(%d+)$"), "00"
  end
  return whole and tonumber(whole) * 100 + tonumber(fraction) or nil
end

-- 200 -> "2.00"
local function to_amount(cents)
  return ("%d.%02d"):format(math.floor(cents / 100), cents % 100)
end

local function read_orders(path)
  local file, err = io.open(path, "r")
  if not file then
    fail(err)
  end
  local orders, line_number = {}, 0
  for line in file:lines() do
    line_number = line_number + 1
    if line:match("%S") then
      local id, wallet, total = line:match("^%s*(%S+)%s+(%S+)%s+(%S+)%s*$")
      local cents = total and to_cents(total)
      if not cents then
        fail(("%s:%d: expected \"ORDER_ID WALLET_ID TOTAL\", got %q"):format(path, line_number, line))
      end
      -- 5%, rounded half up to the cent.
      local cashback = math.floor((cents * RATE_PERCENT + 50) / 100)
      orders[#orders + 1] = { id = id, wallet = wallet, cashback = cashback }
    end
  end
  file:close()
  return orders
end

local orders = read_orders(arg[1] or fail("usage: cashback.lua ORDERS"))
local client = assert(orbt.new{
  api_key = env("ORBT_API_KEY"), client_id = env("ORBT_CLIENT_ID"), secret = env("ORBT_SECRET"),
  base_url = env("ORBT_BASE_URL"),
})

-- Orders whose cashback rounds to 0.00 have nothing to pay (a credit must
-- be above 0); the rest go out together.
local list, sent = {}, {}
for _, order in ipairs(orders) do
  if order.cashback > 0 then
    sent[#sent + 1] = order
    list[#list + 1] = { walletId = order.wallet, amount = to_amount(order.cashback), transactionType = "CREDIT",
      referenceId = "cashback-" .. order.id,
      description = ("%d%% cashback on %s"):format(RATE_PERCENT, order.id) }
  else
    print(("%s: no cashback (0.00)"):format(order.id))
  end
end

local results, failures = client:create_transactions(list, { concurrency = 8 })
local paid = 0
for i, result in ipairs(results) do
  local order = sent[i]
  if orbt.is_error(result) then
    -- reason says what happened; a call that may have been applied is safe
    -- to send again with the same referenceId, which the next run does.
    local advice = (result.maybe_applied or result.retryable) and "; run again to finish it" or ""
    print(("%s: not paid (%s): %s%s"):format(order.id, result.reason or result.kind, tostring(result), advice))
  else
    paid = paid + order.cashback
    print(("%s: %s credited to wallet %s (%s)"):format(order.id, list[i].amount, order.wallet,
      tostring(result.transactionId or "done")))
  end
end
print(("%d of %d orders paid, %s in all"):format(#orders - failures, #orders, to_amount(paid)))
client:close()
os.exit(failures == 0 and 0 or 1)
