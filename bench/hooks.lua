-- hooks.lua: the hooks part of `make bench` (BENCH_PARTS=hooks): what
-- hooks that do nothing cost per request, against no hooks, in one process
-- and one run.
--
--   lua5.4 hooks.lua BASE_URL ROUNDS REQUESTS
--
-- The workload is (b)'s GET page of 20 (list_customers{page = 0, size = 20},
-- every answer decoded and checked), sent by three clients made alike, each
-- on its own kept-alive connection:
--   none    no hooks,
--   client  empty on_request and on_response given to orbt.new,
--   call    the same empty hooks in the call's limits table (one table, reused).
-- Each round runs REQUESTS requests (after a warm-up) on each client in
-- turn, in an order rotated by round, and takes each client's CPU time
-- (os.clock: user + system of the process) per request. Ratios are taken
-- within a round, so drift of the machine cancels, then the median over the
-- rounds. Credentials come from ORBT_API_KEY, ORBT_CLIENT_ID and ORBT_SECRET.
--
-- Prints one line, "ok rounds=R requests=N none=S client=S call=S
-- client_ratio=X client_min=X client_max=X call_ratio=X call_min=X call_max=X
-- rate=Q" (S: median CPU seconds per request; Q: requests per wall-clock
-- second, none), or "fail WHY" and exits 1; then, for a reader, the
-- markdown rows.
local orbt = require("orbt")
local workload = require("workload")

local base_url, rounds, requests = arg[1], tonumber(arg[2] or ""), tonumber(arg[3] or "")
if not (base_url and rounds and requests and rounds >= 1 and requests >= 1) then
  workload.fail("usage: hooks.lua BASE_URL ROUNDS REQUESTS")
end

local clock, gettime = os.clock, workload.gettime
local creds = workload.credentials()

local function nothing() end

local function new_client(extra)
  local options = { api_key = creds.api_key, client_id = creds.client_id, secret = creds.secret,
    base_url = base_url, timeout = 10 }
  for k, v in pairs(extra or {}) do
    options[k] = v
  end
  local client, err = orbt.new(options)
  if not client then workload.fail(err) end
  return client
end

local query = { page = 0, size = workload.PAGE_SIZE }
local call_limits = { on_request = nothing, on_response = nothing }

local VARIANTS = {
  { key = "none", client = new_client(), label = "(b) orbt, no hooks" },
  { key = "client", client = new_client{ on_request = nothing, on_response = nothing },
    label = "(b) orbt, empty on_request + on_response in orbt.new" },
  { key = "call", client = new_client(), limits = call_limits,
    label = "(b) orbt, empty on_request + on_response in the call's limits table" },
}

-- A turn: TURN requests on one variant; returns their CPU seconds.
local TURN = 5
local function turn(variant)
  local client, limits = variant.client, variant.limits
  local cpu = clock()
  for _ = 1, TURN do
    local page, why = client:list_customers(query, limits)
    if not page then workload.fail(why) end
    local ok, bad = workload.check_page(page)
    if not ok then workload.fail(bad) end
  end
  return clock() - cpu
end

-- A round: n requests on each variant, TURN at a time in turn (the order
-- rotated each time), so that all see the machine in the same state.
-- Returns each variant's CPU seconds per request, and the round's wall time.
local function round_of(n)
  local sums = {}
  for i = 1, #VARIANTS do sums[i] = 0 end
  local turns = math.ceil(n / TURN)
  local wall = gettime()
  for k = 1, turns do
    for j = 0, #VARIANTS - 1 do
      local i = (j + k) % #VARIANTS + 1
      sums[i] = sums[i] + turn(VARIANTS[i])
    end
  end
  wall = gettime() - wall
  for i = 1, #VARIANTS do sums[i] = sums[i] / (turns * TURN) end
  return sums, wall, turns * TURN
end

round_of(workload.WARMUP)
for _, v in ipairs(VARIANTS) do
  v.cpus = {}
end
local rates = {}

local function median(values)
  local v = {}
  for i, x in ipairs(values) do v[i] = x end
  table.sort(v)
  local n = #v
  if n % 2 == 1 then return v[(n + 1) / 2] end
  return (v[n / 2] + v[n / 2 + 1]) / 2
end

local ratios = { client = {}, call = {} }
for round = 1, rounds do
  local cpus, wall, made = round_of(requests)
  for i, v in ipairs(VARIANTS) do
    v.cpus[round] = cpus[i]
  end
  rates[round] = #VARIANTS * made / wall
  for _, key in ipairs{ "client", "call" } do
    local v = key == "client" and VARIANTS[2] or VARIANTS[3]
    ratios[key][round] = v.cpus[round] / VARIANTS[1].cpus[round]
  end
  if round % 50 == 0 or round == rounds then
    io.stderr:write(("bench: hooks: %d of %d rounds\n"):format(round, rounds))
  end
end
for _, v in ipairs(VARIANTS) do
  v.client:close()
end

local function range(list)
  local lo, hi = math.huge, -math.huge
  for _, x in ipairs(list) do
    lo, hi = math.min(lo, x), math.max(hi, x)
  end
  return lo, hi
end

local client_min, client_max = range(ratios.client)
local call_min, call_max = range(ratios.call)
io.stdout:write(("ok rounds=%d requests=%d none=%.9f client=%.9f call=%.9f client_ratio=%.4f client_min=%.4f "
  .. "client_max=%.4f call_ratio=%.4f call_min=%.4f call_max=%.4f rate=%.1f\n"):format(rounds, requests,
  median(VARIANTS[1].cpus), median(VARIANTS[2].cpus), median(VARIANTS[3].cpus), median(ratios.client), client_min,
  client_max, median(ratios.call), call_min, call_max, median(rates)))

io.stdout:write("\n| alternative | workload | CPU per request | ratio to no hooks (min–max over rounds) |\n",
  "|---|---|---:|---:|\n")
for _, v in ipairs(VARIANTS) do
  local r = ratios[v.key]
  local ratio = r and ("%.3f× (%.3f–%.3f)"):format(median(r), range(r)) or "1×"
  io.stdout:write(("| %s | GET page of 20 | %.1f µs | %s |\n"):format(v.label, median(v.cpus) * 1e6, ratio))
end
