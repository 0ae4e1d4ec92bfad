-- soak.lua: `make soak`. Drives SOAK_CALLS calls (default 1,000,000) through
-- one client against orbt-mock: lists, creates, walks, and a share of
-- injected faults (503, 429, HTML pages, malformed and truncated JSON,
-- dropped connections, oversized answers, thousands of headers). Every
-- 10,000 calls it samples this process's resident memory and open file
-- descriptors. It passes when, after the warm-up (the first 10%), memory
-- grows by less than 1 MiB and no descriptor is left open; it prints the
-- samples as a markdown table either way.
--
-- The client runs with max_retries = 0: the retry waits are seconds each
-- and are covered by spec/retry_spec.lua; here every error path must come
-- back as a value and leave nothing behind.
--
-- Settings: SOAK_CALLS (default 1000000), SOAK_SAMPLE (default 10000),
-- SOAK_OUT (default build/soak.md).

local orbt = require("orbt")
local mockserver = require("support.mock")

local CALLS = tonumber(os.getenv("SOAK_CALLS") or "") or 1000000
local SAMPLE = tonumber(os.getenv("SOAK_SAMPLE") or "") or 10000
local OUT = os.getenv("SOAK_OUT") or "build/soak.md"
local WARMUP = math.floor(CALLS / 10)
local GROWTH_LIMIT = 1024 * 1024
local PATH = mockserver.PATH

-- ===== This process =====

local function read_file(path)
  local f = io.open(path)
  if not f then
    return nil
  end
  local data = f:read("*a")
  f:close()
  return data
end

local PID = read_file("/proc/self/stat"):match("^(%d+)")

local function rss_bytes()
  return tonumber(read_file("/proc/" .. PID .. "/status"):match("VmRSS:%s*(%d+) kB")) * 1024
end

local function open_fds()
  local pipe = io.popen("ls /proc/" .. PID .. "/fd")
  local count = 0
  for _ in pipe:lines() do
    count = count + 1
  end
  pipe:close()
  return count - 1 -- the pipe itself
end

-- ===== The workload =====

-- Faults, one injected every FAULT_EVERY calls for the next request on the
-- path: about 2% of calls end in an error.
local FAULT_EVERY = 50
local FAULTS = {
  { method = "GET", status = 503, retry_after = "1" },
  { method = "POST", status = 429 },
  { method = "GET", status = 502, body = "<html><body>bad gateway</body></html>", content_type = "text/html" },
  { method = "GET", status = 200, body = "{not json" },
  { method = "GET", truncate = true },
  { method = "POST", truncate = true },
  { method = "GET", drop = "before" },
  { method = "POST", drop = "after" },
  { method = "GET", status = 200, oversize = 2 * 1024 * 1024 },
  { method = "GET", headers = 1000 },
  { method = "POST", status = 500, body = '{"code":"INTERNAL","message":"try later"}' },
}

local mock = mockserver.start({ balance = "100000000.00" })
local client = assert(orbt.new{
  api_key = mock.api_key, client_id = mock.client_id, secret = mock.secret, base_url = mock.url,
  timeout = 10, max_retries = 0, max_body = 1024 * 1024,
})

local outcomes = { ok = 0 }
local function count(result, err)
  if result then
    outcomes.ok = outcomes.ok + 1
  else
    local kind = type(err) == "table" and err.kind or "raised: " .. tostring(err)
    outcomes[kind] = (outcomes[kind] or 0) + 1
  end
end

local created = 0
local function create()
  created = created + 1
  return client:create_customer{
    fullName = "Soak " .. created, email = ("soak%d@example.com"):format(created),
    currency = "USD", initialFunds = created % 7 == 0 and "12.34" or 1,
  }
end

local function list()
  local pages = math.max(1, math.floor(created / 20))
  return client:list_customers{ page = created % pages, size = 20 }
end

-- A walk of two pages; an error mid-walk is raised, so it is caught here.
local function walk()
  return pcall(function()
    local seen = 0
    for _ in client:customers{ size = 50, limit = 100 } do
      seen = seen + 1
    end
    return seen
  end)
end

-- ===== The run =====

local samples = {}
local function sample(calls)
  samples[#samples + 1] = { calls = calls, rss = rss_bytes(), fds = open_fds() }
end

print(("soak: %d calls through one client against orbt-mock at %s"):format(CALLS, mock.url))
sample(0)
local calls, fault_index, next_fault, next_sample = 0, 0, FAULT_EVERY, SAMPLE
local started = os.time()
while calls < CALLS do
  if calls >= next_fault then
    fault_index = fault_index % #FAULTS + 1
    local f = {}
    for k, v in pairs(FAULTS[fault_index]) do
      f[k] = v
    end
    f.path = PATH
    mock:fault(f)
    next_fault = next_fault + FAULT_EVERY
  end
  local step = calls % 10
  if step < 4 then
    count(list())
    calls = calls + 1
  elseif step < 7 then
    count(create())
    calls = calls + 1
  else
    local ok, result = walk()
    count(ok and result, not ok and result or nil)
    calls = calls + 2 -- two pages
  end
  if calls >= next_sample then
    sample(calls)
    next_sample = next_sample + SAMPLE
  end
end
local seconds = os.time() - started
mock:clear_faults()
client:close()
collectgarbage()
collectgarbage()
sample(calls)
local stats = mock:stats()
mock:cleanup()

-- ===== Report =====

local warm
for _, s in ipairs(samples) do
  if s.calls >= WARMUP then
    warm = s
    break
  end
end
local peak_after = warm.rss
for _, s in ipairs(samples) do
  if s.calls >= WARMUP and s.rss > peak_after then
    peak_after = s.rss
  end
end
local growth = peak_after - warm.rss
local final = samples[#samples]
local fds_leaked = final.fds - samples[1].fds

local lines = {
  ("# soak: %d calls, one client, %s"):format(calls, os.date("!%Y-%m-%d %H:%M UTC")),
  "",
  ("%d seconds, %.0f calls/s. orbt-mock saw %d requests and holds %d consumers."):format(
    seconds, calls / math.max(seconds, 1), stats.requests_total, stats.consumers),
  "",
  "| outcome | calls |",
  "|---|---:|",
}
local kinds = {}
for kind in pairs(outcomes) do
  kinds[#kinds + 1] = kind
end
table.sort(kinds)
for _, kind in ipairs(kinds) do
  lines[#lines + 1] = ("| %s | %d |"):format(kind, outcomes[kind])
end
lines[#lines + 1] = ""
lines[#lines + 1] = "| calls | RSS (KiB) | open fds |"
lines[#lines + 1] = "|---:|---:|---:|"
local every = math.max(1, math.floor(#samples / 25))
for i, s in ipairs(samples) do
  if i == 1 or i == #samples or i % every == 0 or s == warm then
    lines[#lines + 1] = ("| %d | %d | %d |"):format(s.calls, s.rss // 1024, s.fds)
  end
end
lines[#lines + 1] = ""
lines[#lines + 1] = ("After the warm-up (%d calls, RSS %d KiB): peak RSS %d KiB, growth %d KiB (limit %d KiB)."):format(
  warm.calls, warm.rss // 1024, peak_after // 1024, growth // 1024, GROWTH_LIMIT // 1024)
lines[#lines + 1] = ("Open descriptors: %d at the start, %d at the end (client closed): %d leaked."):format(
  samples[1].fds, final.fds, fds_leaked)
if fds_leaked > 0 then
  lines[#lines + 1] = "Open at the end:"
  local pipe = io.popen("ls -l /proc/" .. PID .. "/fd")
  for line in pipe:lines() do
    lines[#lines + 1] = "    " .. line
  end
  pipe:close()
end
local pass = growth < GROWTH_LIMIT and fds_leaked <= 0 and (outcomes.ok or 0) > 0
lines[#lines + 1] = pass and "PASS" or "FAIL"
local report = table.concat(lines, "\n") .. "\n"
io.write(report)
local f = io.open(OUT, "w")
if f then
  f:write(report)
  f:close()
end
os.exit(pass and 0 or 1)
