-- cli_import.lua: the import part of `make bench` (BENCH_PARTS=cli). With
-- orbt-mock holding every create for BENCH_CLI_DELAY_MS (default 20), it
-- times BENCH_CLI_ROWS creates (default 10,000) at concurrency 16 three ways,
-- each on a fresh mock state:
--   (a) create_customers called directly with the whole list;
--   (b) `orbt import customers` of the same rows as a CSV file, with its
--       fsync'ed journal and plain progress lines;
--   (c) the same import with --progress none.
-- Target: (b) reaches at least 0.9x the rate of (a), i.e. the journal and
-- progress cost less than 10%. Prints a markdown table; exits 1 when a run
-- fails or the target is missed. Run from the checkout with LUA_PATH
-- covering lua/ and spec/, and ORBT_BUILD / ORBT_MOCK set (make bench does).
local cli = require("support.cli")
local mockserver = require("support.mock")
local shell = require("support.shell")
local socket = require("socket")

local ROWS = tonumber(os.getenv("BENCH_CLI_ROWS") or "10000")
local DELAY = tonumber(os.getenv("BENCH_CLI_DELAY_MS") or "20")
local CONCURRENCY = 16
local PATH = "/api/partner/v1/customer"

local mock = mockserver.start{ balance = "100000000.00", args = { "--quiet" } }
local dir = shell.tmpdir()

local function rows(tag)
  local list = {}
  for i = 1, ROWS do
    list[i] = { fullName = "Bench " .. i, email = ("bench-%s-%d@example.com"):format(tag, i), currency = "USD",
      initialFunds = "1.00" }
  end
  return list
end

local function fresh()
  mock:reset()
  mock:fault{ path = PATH, method = "POST", delay_ms = DELAY, count = ROWS * 2 }
end

local results = {}

local function direct()
  fresh()
  local client = mock:client{ timeout = 30 }
  local list = rows("direct")
  local t0 = socket.gettime()
  local out, failures = client:create_customers(list, { concurrency = CONCURRENCY })
  local seconds = socket.gettime() - t0
  client:close()
  assert(out and failures == 0, "create_customers failed: " .. tostring(failures))
  return seconds
end

local function import(progress, tag)
  fresh()
  local records = { { "fullName", "email", "currency", "initialFunds" } }
  for _, r in ipairs(rows(tag)) do
    records[#records + 1] = { r.fullName, r.email, r.currency, r.initialFunds }
  end
  local file = dir .. "/" .. tag .. ".csv"
  os.remove(file .. ".journal")
  cli.write_csv(file, records)
  local t0 = socket.gettime()
  local _, err, code = cli.run({ "import", "customers", file, "--concurrency", tostring(CONCURRENCY), "--progress",
    progress }, { mock = mock, dir = dir })
  local seconds = socket.gettime() - t0
  assert(code == 0, "orbt import failed: " .. err)
  assert(mock:stats().consumers == ROWS, "orbt import did not create every row")
  return seconds
end

local ok, err = pcall(function()
  results[#results + 1] = { "(a) create_customers{concurrency = 16}, directly", direct() }
  results[#results + 1] = { "(b) orbt import customers, journal + plain progress", import("plain", "plain") }
  results[#results + 1] = { "(c) orbt import customers, journal, --progress none", import("none", "quiet") }
end)
shell.exec("rm -rf " .. shell.quote(dir))
mock:cleanup()
if not ok then
  io.stderr:write("bench cli_import: ", tostring(err), "\n")
  os.exit(1)
end

local base = ROWS / results[1][2]
local lines = {
  ("### orbt import (%d creates, orbt-mock holding each %d ms, concurrency %d)"):format(ROWS, DELAY, CONCURRENCY),
  "", "| run | seconds | creates/s | vs (a) |", "|---|---:|---:|---:|",
}
for _, r in ipairs(results) do
  local rate = ROWS / r[2]
  lines[#lines + 1] = ("| %s | %.2f | %.0f | %.3f× |"):format(r[1], r[2], rate, rate / base)
end
local ratio = (ROWS / results[2][2]) / base
local met = ratio >= 0.9
lines[#lines + 1] = ""
lines[#lines + 1] = ("Target: orbt import ≥ 0.90× create_customers (journal and progress cost < 10%%): %.3f× %s")
  :format(ratio, met and "met" or "MISSED")
io.stdout:write(table.concat(lines, "\n"), "\n")
os.exit(met and 0 or 1)
