-- bulk.lua: the bulk part of `make bench`. orbt-mock delays every create
-- (KIND "creates") or every credit (KIND "credits") by DELAY_MS; COUNT of
-- them then go through one client, either one after the other
-- (create_customer, credit), or with the bulk method (create_customers,
-- create_transactions) at CONCURRENCY.
--
--   lua5.4 bulk.lua BASE_URL COUNT CONCURRENCY DELAY_MS TAG [KIND]
--
-- CONCURRENCY 0 means one call after the other. Every call must succeed,
-- and results must come back in input order. Prints
-- "ok requests=COUNT seconds=S cpu=C".
local orbt = require("orbt")
local http = require("socket.http")
local ltn12 = require("ltn12")
local workload = require("workload")

local base_url, count, concurrency, delay_ms, tag, kind = arg[1], tonumber(arg[2]), tonumber(arg[3]),
  tonumber(arg[4]), arg[5], arg[6] or "creates"
if not (base_url and count and concurrency and delay_ms and tag and (kind == "creates" or kind == "credits")) then
  workload.fail("usage: bulk.lua BASE_URL COUNT CONCURRENCY DELAY_MS TAG [creates|credits]")
end

local creds = workload.credentials()
local client, err = orbt.new{ api_key = creds.api_key, client_id = creds.client_id, secret = creds.secret,
  base_url = base_url, timeout = 30, max_retries = 0 }
if not client then workload.fail(tostring(err)) end

-- The credits go to one consumer's wallet, made before the delay applies.
local wallet
if kind == "credits" then
  local customer, create_err = client:create_customer{ fullName = "Bulk credits", currency = "USD",
    email = ("bulk-credits-%s@bench.example"):format(tag), initialFunds = 0 }
  if not customer then workload.fail(tostring(create_err)) end
  wallet = customer.walletId
end

-- Every call on the path waits DELAY_MS at the server (orbt-mock's delay fault).
local path = kind == "creates" and "/api/partner/v1/customer" or "/api/partner/v1/wallets/*"
local fault = ('{"path":"%s","method":"POST","delay_ms":%d,"count":%d}'):format(path, delay_ms, count)
local _, status = http.request{ url = base_url .. "/__mock/faults", method = "POST",
  headers = { ["Content-Type"] = "application/json", ["Content-Length"] = #fault },
  source = ltn12.source.string(fault) }
if not workload.is_2xx(status) then workload.fail("orbt-mock refused the delay fault: " .. tostring(status)) end

local list = {}
for i = 1, count do
  if kind == "creates" then
    list[i] = { fullName = "Bulk " .. i, email = ("bulk-%s-%d@bench.example"):format(tag, i), currency = "USD",
      initialFunds = 1 }
  else
    list[i] = { walletId = wallet, amount = "0.01", transactionType = "CREDIT",
      referenceId = ("bench-%s-%d"):format(tag, i) }
  end
end

local single, many = "create_customer", "create_customers"
if kind == "credits" then
  single, many = "create_transaction", "create_transactions"
end

local gettime = workload.gettime
local cpu = os.clock()
local started = gettime()
local results = {}
if concurrency == 0 then
  for i = 1, count do
    local item = list[i]
    if kind == "credits" then
      results[i] = client:create_transaction(wallet, { amount = item.amount, transactionType = "CREDIT",
        referenceId = item.referenceId }) or false
    else
      results[i] = client[single](client, item) or false
    end
  end
else
  local failures
  results, failures = client[many](client, list, { concurrency = concurrency })
  if failures ~= 0 then workload.fail(("%d of %d calls failed"):format(failures, count)) end
end
local finished = gettime()
cpu = os.clock() - cpu
local key = kind == "creates" and "email" or "referenceId"
for i = 1, count do
  local r = results[i]
  if not r or orbt.is_error(r) or r[key] ~= list[i][key] then
    workload.fail(("call %d failed or came back out of order"):format(i))
  end
end
io.stdout:write(("ok requests=%d seconds=%.6f cpu=%.6f\n"):format(count, finished - started, cpu))
client:close()
