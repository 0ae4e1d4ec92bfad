-- What each thread of examples/embed/threads.c runs, in its own lua_State:
-- a client of its own, and calls of every kind through it (one at a time,
-- many at once on libcurl's multi interface, signing, fresh referenceIds).
-- THREAD is the thread's number, set by the host.
local orbt = require("orbt")
local THREAD = rawget(_G, "THREAD") -- set by the host

local CALLS = tonumber(os.getenv("ORBT_THREAD_CALLS")) or 10

local client = assert(orbt.new{
  api_key = assert(os.getenv("ORBT_API_KEY"), "set ORBT_API_KEY"),
  client_id = assert(os.getenv("ORBT_CLIENT_ID"), "set ORBT_CLIENT_ID"),
  secret = assert(os.getenv("ORBT_SECRET"), "set ORBT_SECRET"),
  base_url = os.getenv("ORBT_BASE_URL"),
})

local function customer(i)
  return { fullName = ("Thread %d customer %d"):format(THREAD, i),
    email = ("thread%d-%d@example.com"):format(THREAD, i), currency = "USD", initialFunds = "1.00" }
end

for i = 1, CALLS do
  assert(client:create_customer(customer(i)))
  assert(client:list_customers{ size = 5 })
  assert(orbt.sign{ method = "POST", body = "{}", client_id = "c", api_key = "k", secret = "s" })
  assert(#orbt.reference_id() == 36)
end

local many = {}
for i = 1, CALLS do
  many[i] = customer(CALLS + i)
end
local results, failures = client:create_customers(many, { concurrency = 4 })
assert(results, failures)
assert(failures == 0, ("%d of %d creates failed"):format(failures, CALLS))
client:close()
