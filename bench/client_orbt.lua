-- client_orbt.lua: alternative (b) of `make bench`: the workload through
-- orbt (one client, so one reused libcurl handle). Over HTTPS it trusts
-- the CA in BENCH_CA_FILE (ca_file; verification is always on). See workload.lua.
local orbt = require("orbt")
local workload = require("workload")

local run = workload.args(arg)
local creds = workload.credentials()
local client, err = orbt.new{ api_key = creds.api_key, client_id = creds.client_id, secret = creds.secret,
  base_url = run.base_url, timeout = 10, ca_file = run.ca_file }
if not client then workload.fail(err) end

local step
if run.workload == "get" then
  local query = { page = 0, size = workload.PAGE_SIZE }
  step = function()
    local page, why = client:list_customers(query)
    if not page then return nil, tostring(why) end
    return workload.check_page(page)
  end
else
  local tag = run.tag
  step = function(i)
    local customer, why = client:create_customer(workload.customer(tag, i))
    if not customer then return nil, tostring(why) end
    return workload.check_customer(customer)
  end
end

workload.run(run, step)
client:close()
