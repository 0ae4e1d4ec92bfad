-- bulk.lua: the bulk part of `make bench`. orbt-mock delays every create by
-- DELAY_MS; COUNT creates then go through one client, either one after the
-- other with create_customer, or with create_customers at CONCURRENCY.
--
--   lua5.4 bulk.lua BASE_URL COUNT CONCURRENCY DELAY_MS TAG
--
-- CONCURRENCY 0 means sequential create_customer calls. Every create must
-- succeed, and results must come back in input order. Prints
-- "ok requests=COUNT seconds=S cpu=C".
local orbt = require("orbt")
local http = require("socket.http")
local ltn12 = require("ltn12")
local workload = require("workload")

local base_url, count, concurrency, delay_ms, tag = arg[1], tonumber(arg[2]), tonumber(arg[3]),
  tonumber(arg[4]), arg[5]
if not (base_url and count and concurrency and delay_ms and tag) then
  workload.fail("usage: bulk.lua BASE_URL COUNT CONCURRENCY DELAY_MS TAG")
end

-- Every create on the path waits DELAY_MS at the server (orbt-mock's delay fault).
local fault = ('{"path":"/api/partner/v1/customer","method":"POST","delay_ms":%d,"count":%d}')
  :format(delay_ms, count)
local _, status = http.request{ url = base_url .. "/__mock/faults", method = "POST",
  headers = { ["Content-Type"] = "application/json", ["Content-Length"] = #fault },
  source = ltn12.source.string(fault) }
if not workload.is_2xx(status) then workload.fail("orbt-mock refused the delay fault: " .. tostring(status)) end

local creds = workload.credentials()
local client, err = orbt.new{ api_key = creds.api_key, client_id = creds.client_id, secret = creds.secret,
  base_url = base_url, timeout = 30, max_retries = 0 }
if not client then workload.fail(tostring(err)) end

local list = {}
for i = 1, count do
  list[i] = { fullName = "Bulk " .. i, email = ("bulk-%s-%d@bench.example"):format(tag, i), currency = "USD",
    initialFunds = 1 }
end

local gettime = workload.gettime
local cpu = os.clock()
local started = gettime()
local results = {}
if concurrency == 0 then
  for i = 1, count do
    results[i] = client:create_customer(list[i]) or false
  end
else
  local failures
  results, failures = client:create_customers(list, { concurrency = concurrency })
  if failures ~= 0 then workload.fail(("%d of %d creates failed"):format(failures, count)) end
end
local finished = gettime()
cpu = os.clock() - cpu
for i = 1, count do
  local r = results[i]
  if not r or orbt.is_error(r) or r.email ~= list[i].email then
    workload.fail(("create %d failed or came back out of order"):format(i))
  end
end
io.stdout:write(("ok requests=%d seconds=%.6f cpu=%.6f\n"):format(count, finished - started, cpu))
client:close()
