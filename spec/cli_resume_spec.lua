-- cli_resume_spec: 10,000-row imports against orbt-mock with faults on about
-- 5% of the requests (drops after processing, 503s after processing,
-- delays), interrupted with SIGINT at about 40% and killed with SIGKILL at
-- about 70%, then resumed: every row is applied exactly once, and the money
-- is exact to the cent. Lua 5.4 pass only.
local cli = require("support.cli")
local harness = require("support.harness")
local shell = require("support.shell")

local ROWS = 10000
local START = "10000000.00"

-- Faults on about 5% of the POSTs to path (each kind one request in 60).
local function faults(mock, path)
  for _, f in ipairs{ { drop = "after" }, { status = 503, apply = true }, { delay_ms = 20 } } do
    f.path, f.method, f.every, f.count = path, "POST", 60, 1000000
    mock:fault(f)
  end
end

local function cents(text)
  local units, frac = text:match("^(%d+)%.(%d%d)$")
  return tonumber(units) * 100 + tonumber(frac)
end

local function money(c)
  return ("%d.%02d"):format(math.floor(c / 100), c % 100)
end

-- Runs the import to about `fraction` done, then sends `signal`; returns
-- the exit code.
local function interrupt(args, opts, journal, fraction, signal)
  local proc = cli.start(args, opts)
  local reached = shell.wait_for(function()
    local states = cli.journal_states(journal)
    return (states.done or 0) >= ROWS * fraction
  end, 60)
  assert(reached, "the import did not reach " .. fraction * 100 .. "%")
  cli.signal(proc, signal)
  return (cli.wait(proc, 60))
end

describe("orbt import, killed and resumed", function()
  if os.getenv("ORBT_RUNTIME") ~= "lua5.4" then
    pending("runs on the Lua 5.4 pass (bin/orbt is a Lua 5.4 program)")
    return
  end
  local env = harness.with_mock{ mock = { balance = START, args = { "--quiet" } }, client = { timeout = 10 } }

  it("creates 10,000 customers exactly once through SIGINT at 40% and SIGKILL at 70%", function()
    local dir = shell.tmpdir()
    local records, total = { { "fullName", "email", "currency", "initialFunds" } }, 0
    for i = 1, ROWS do
      local funds = ("%d.%02d"):format(i % 7, i % 100)
      total = total + cents(funds)
      records[#records + 1] = { ("Person %d, \"the %dth\""):format(i, i), ("p%d@example.com"):format(i), "USD", funds }
    end
    cli.write_csv(dir .. "/people.csv", records)
    faults(env.mock, "/api/partner/v1/customer")
    local args = { "import", "customers", "people.csv", "--concurrency", "16", "--progress", "none" }
    local opts = { mock = env.mock, dir = dir }
    local journal = dir .. "/people.csv.journal"

    assert.equal(130, interrupt(args, opts, journal, 0.4, "INT"))
    local states = cli.journal_states(journal)
    assert.is_nil(states.sent, "a drained run leaves no row in flight")
    assert.is_true(states.done < ROWS * 0.7)
    assert.equal(137, interrupt(args, opts, journal, 0.7, "KILL"))

    local code, out, err = cli.wait(cli.start(args, opts), 120)
    assert.equal(0, code, out .. err)
    states = cli.journal_states(journal)
    assert.same({ done = ROWS }, states)
    local summary = require("dkjson").decode(out)
    assert.is_true(summary.skipped >= ROWS * 0.7)

    local stats = env.mock:stats()
    assert.equal(ROWS, stats.consumers)
    local emails, n = {}, 0
    for c in env.client:customers{ size = 50 } do
      assert.is_nil(emails[c.consumerEmail], "created twice: " .. c.consumerEmail)
      emails[c.consumerEmail], n = true, n + 1
    end
    assert.equal(ROWS, n)
    assert.equal(money(cents(START) - total), stats.balance)
    shell.exec("rm -rf " .. shell.quote(dir))
  end)

  it("applies 10,000 transactions exactly once through SIGINT at 40% and SIGKILL at 70%", function()
    local dir = shell.tmpdir()
    local wallets, funded = {}, 0
    for i = 1, 10 do
      local c = assert(env.client:create_customer(harness.customer{ initialFunds = "1.00" }))
      wallets[i] = c.walletId
      funded = funded + 100
    end
    -- No referenceId column: each comes from the row and its occurrence, and
    -- many rows are identical.
    local records, total = { { "walletId", "amount", "transactionType", "description" } }, 0
    for i = 1, ROWS do
      local amount = ("0.%02d"):format(i % 50 + 1)
      total = total + cents(amount)
      records[#records + 1] = { wallets[i % 10 + 1], amount, "CREDIT", "cashback" }
    end
    cli.write_csv(dir .. "/credits.csv", records)
    faults(env.mock, "/api/partner/v1/wallets/*")
    local args = { "import", "transactions", "credits.csv", "--concurrency", "16", "--progress", "none" }
    local opts = { mock = env.mock, dir = dir }
    local journal = dir .. "/credits.csv.journal"

    assert.equal(130, interrupt(args, opts, journal, 0.4, "INT"))
    assert.equal(137, interrupt(args, opts, journal, 0.7, "KILL"))
    local code, out, err = cli.wait(cli.start(args, opts), 120)
    assert.equal(0, code, out .. err)
    assert.same({ done = ROWS }, (cli.journal_states(journal)))

    local stats = env.mock:stats()
    assert.equal(ROWS, stats.movements)
    assert.equal(money(cents(START) - funded - total), stats.balance)
    -- and a rerun changes nothing
    code = select(3, cli.run(args, opts))
    assert.equal(0, code)
    assert.equal(ROWS, env.mock:stats().movements)
    shell.exec("rm -rf " .. shell.quote(dir))
  end)
end)
