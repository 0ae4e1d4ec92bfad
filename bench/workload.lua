-- workload.lua: what every Lua client of `make bench` does, in one place, so
-- that the alternatives differ only in how they sign, send and parse.
--
-- A client is run as `lua5.4 CLIENT.lua BASE_URL WORKLOAD LIMIT TAG`:
--   WORKLOAD  "get"  signed GET of a 20-item page (?page=0&size=20), or
--             "post" signed POST create with a fresh email each time;
--   LIMIT     "1.5s" runs for that many seconds after the warm-up, "2000"
--             runs exactly that many requests after it;
--   TAG       makes the emails of this run unique (orbt-mock refuses a
--             second wallet for the same email and currency).
-- Credentials come from ORBT_API_KEY, ORBT_CLIENT_ID and ORBT_SECRET. For
-- an https:// BASE_URL, BENCH_CA_FILE names the PEM file of the CA to trust
-- (certificates are verified).
-- The client prints one line: "ok requests=N seconds=S cpu=C" (C: the
-- process's CPU seconds in the measured part), or "fail WHY" and exits 1.
-- Every answer is parsed in full and checked, so a client that fails
-- silently cannot post a good figure.
--
-- The clock is LuaSocket's gettime (plain Lua has no sub-second wall clock),
-- so every Lua client loads socket.core, orbt's included.

local gettime = require("socket.core").gettime

local clock = os.clock
local floor = math.floor
local type = type

local M = {}

M.PATH = "/api/partner/v1/customer"
M.LIST_QUERY = "page=0&size=20"
M.PAGE_SIZE = 20
M.WARMUP = 20

local function fail(why)
  io.stdout:write("fail ", tostring(why), "\n")
  os.exit(1)
end
M.fail = fail

local function env(name)
  local value = os.getenv(name)
  if value == nil or value == "" then
    fail("set " .. name)
  end
  return value
end

function M.credentials()
  return { api_key = env("ORBT_API_KEY"), client_id = env("ORBT_CLIENT_ID"), secret = env("ORBT_SECRET") }
end

-- The command line, checked.
function M.args(argv)
  local base_url, workload, limit, tag = argv[1], argv[2], argv[3], argv[4]
  if not (base_url and (workload == "get" or workload == "post") and limit and tag) then
    fail("usage: CLIENT.lua BASE_URL get|post SECONDSs|COUNT TAG")
  end
  local seconds = limit:match("^([%d.]+)s$")
  local run = { base_url = base_url:gsub("/+$", ""), workload = workload, tag = tag,
    seconds = tonumber(seconds), count = (not seconds) and tonumber(limit) or nil }
  if not (run.seconds or (run.count and run.count == floor(run.count))) then
    fail("bad LIMIT " .. limit)
  end
  local scheme, host = run.base_url:match("^(https?)://([^/]+)$")
  run.host, run.tls = host, scheme == "https"
  if run.tls then
    run.ca_file = os.getenv("BENCH_CA_FILE")
    if not run.ca_file or run.ca_file == "" then fail("set BENCH_CA_FILE for an https:// BASE_URL") end
  end
  return run
end

-- The consumer created by request i of a run: the same fields, in the same
-- order, as orbt's create_customer sends.
function M.customer(tag, i)
  return { fullName = "Bench Consumer", email = tag .. "-" .. i .. "@bench.example",
    currency = "USD", initialFunds = 1 }
end

-- Whether an HTTP status is a success: any 2xx (orbt-mock may answer a
-- create with 200 or 201).
function M.is_2xx(status)
  return type(status) == "number" and status >= 200 and status <= 299
end

-- A decoded list page: 20 consumers, each with the fields a caller uses.
function M.check_page(page)
  if type(page) ~= "table" or type(page.content) ~= "table" then
    return nil, "the page has no content"
  end
  local content = page.content
  if #content ~= M.PAGE_SIZE then
    return nil, ("the page has %d consumers, not %d"):format(#content, M.PAGE_SIZE)
  end
  for i = 1, #content do
    local c = content[i]
    if type(c.consumerId) ~= "number" or type(c.consumerName) ~= "string" or type(c.consumerEmail) ~= "string" then
      return nil, "consumer " .. i .. " lacks consumerId, consumerName or consumerEmail"
    end
  end
  if page.page ~= 0 or page.size ~= M.PAGE_SIZE or type(page.hasNext) ~= "boolean" then
    return nil, "the page lacks page, size or hasNext"
  end
  return true
end

-- The `data` of a create answer.
function M.check_customer(data)
  if type(data) ~= "table" or type(data.id) ~= "number" or type(data.walletId) ~= "string"
    or data.currency ~= "USD" then
    return nil, "the create answer lacks data.id, data.walletId or data.currency"
  end
  return true
end

-- x-timestamp for a gettime() value: ISO 8601 UTC with milliseconds.
function M.timestamp(now)
  local seconds = floor(now)
  return os.date("!%Y-%m-%dT%H:%M:%S", seconds) .. (".%03dZ"):format(floor((now - seconds) * 1000))
end

M.gettime = gettime

-- Runs step(i) (true, or nil and why) for the warm-up and then for the
-- measured part, and prints the result line.
function M.run(run, step)
  local i = 0
  for _ = 1, M.WARMUP do
    i = i + 1
    local ok, why = step(i)
    if not ok then fail(why) end
  end
  local n = 0
  local cpu = clock()
  local started = gettime()
  local finished
  if run.count then
    for _ = 1, run.count do
      i = i + 1
      local ok, why = step(i)
      if not ok then fail(why) end
    end
    n = run.count
    finished = gettime()
  else
    local deadline = started + run.seconds
    repeat
      i = i + 1
      n = n + 1
      local ok, why = step(i)
      if not ok then fail(why) end
      finished = gettime()
    until finished >= deadline
  end
  cpu = clock() - cpu
  io.stdout:write(("ok requests=%d seconds=%.6f cpu=%.6f\n"):format(n, finished - started, cpu))
end

return M
