-- walk.lua: the walking part of `make bench`: one process walks every
-- consumer with client:customers{size = 50} and keeps nothing, so its peak
-- RSS (measured around it) shows whether memory stays flat with the number
-- of consumers.
--
--   lua5.4 walk.lua BASE_URL EXPECTED
--
-- Checks that it saw EXPECTED consumers with increasing ids. Prints
-- "ok requests=CONSUMERS seconds=S cpu=C pages=P" (C: CPU seconds of the walk).
local orbt = require("orbt")
local workload = require("workload")

local base_url, expected = arg[1], tonumber(arg[2])
if not (base_url and expected) then
  workload.fail("usage: walk.lua BASE_URL EXPECTED")
end
local creds = workload.credentials()
local client, err = orbt.new{ api_key = creds.api_key, client_id = creds.client_id, secret = creds.secret,
  base_url = base_url, timeout = 10 }
if not client then workload.fail(err) end

local gettime = workload.gettime
local seen, last_id = 0, -1
local cpu = os.clock()
local started = gettime()
local ok, walk_err = pcall(function()
  for consumer in client:customers{ size = 50 } do
    local id = consumer.consumerId
    if type(id) ~= "number" or id <= last_id then
      error("consumer ids do not increase at consumer " .. seen + 1)
    end
    last_id = id
    seen = seen + 1
  end
end)
local finished = gettime()
cpu = os.clock() - cpu
if not ok then workload.fail(tostring(walk_err)) end
if seen ~= expected then
  workload.fail(("walked %d consumers, expected %d"):format(seen, expected))
end
io.stdout:write(("ok requests=%d seconds=%.6f cpu=%.6f pages=%d\n"):format(seen, finished - started, cpu,
  (seen + 49) // 50))
client:close()
