-- script.lua: what the embedding host (host.c) runs. It creates two
-- consumers, lists a page and walks them, printing one line per step.
-- Reads ORBT_BASE_URL, ORBT_API_KEY, ORBT_CLIENT_ID and ORBT_SECRET.

local orbt = require("orbt")

local function env(name)
  return assert(os.getenv(name), "set " .. name)
end

local client = assert(orbt.new{
  api_key = env("ORBT_API_KEY"), client_id = env("ORBT_CLIENT_ID"),
  secret = env("ORBT_SECRET"), base_url = env("ORBT_BASE_URL"), timeout = 10,
})
print(("embedded: %s on %s"):format(orbt._VERSION, jit and jit.version or _VERSION))

local run = tostring(os.time())
for i, amount in ipairs({ 25, "19.99" }) do
  local customer, err = client:create_customer{
    fullName = "Embedded " .. i, email = ("embedded%d.%s@example.com"):format(i, run),
    currency = "EUR", initialFunds = amount,
  }
  if not customer then
    error(tostring(err), 0)
  end
  print(("created %d %s %.2f"):format(customer.id, customer.fullName, customer.walletBalance))
end

local page, err = client:list_customers{ page = 0, size = 1 }
if not page then
  error(tostring(err), 0)
end
print(("listed %d hasNext=%s"):format(#page.content, tostring(page.hasNext)))

local walked = 0
for _ in client:customers{ size = 1 } do
  walked = walked + 1
end
print(("walked %d"):format(walked))
client:close()
