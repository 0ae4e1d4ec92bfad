-- cli_import_spec: `orbt import`: the CSV reader against Python's csv module,
-- validation before sending, the journal, --out, derived referenceIds,
-- Ctrl-C twice, and the progress bar in a real pseudo-terminal. Lua 5.4 pass
-- only.
local cli = require("support.cli")
local harness = require("support.harness")
local shell = require("support.shell")
local json = require("dkjson")

local CUSTOMERS = { "fullName", "email", "currency", "initialFunds" }

local function people(n, from)
  local records = { CUSTOMERS }
  for i = from or 1, (from or 1) + n - 1 do
    records[#records + 1] = { "Person " .. i, ("p%d@example.com"):format(i), "USD", "1.50" }
  end
  return records
end

describe("orbt import", function()
  if os.getenv("ORBT_RUNTIME") ~= "lua5.4" then
    pending("runs on the Lua 5.4 pass (bin/orbt is a Lua 5.4 program)")
    return
  end
  local csv = require("orbt.cli.csv")

  describe("reads CSV", function()
    -- Python's csv module (strict) on the same bytes: for each path, its
    -- records or its error. One python3 for all the paths.
    local function python_each(paths)
      local script = [==[
import csv, json, sys
out = []
for path in sys.argv[1:]:
    with open(path, newline="", encoding="utf-8-sig") as f:
        try:
            rows = [r for r in csv.reader(f, strict=True) if r != []]
            out.append({"rows": rows})
        except csv.Error as e:
            out.append({"error": str(e)})
print(json.dumps(out))
]==]
      local args = {}
      for i, path in ipairs(paths) do
        args[i] = shell.quote(path)
      end
      local answers = json.decode((shell.run(("python3 -c %s %s"):format(shell.quote(script),
        table.concat(args, " ")))))
      assert.equal(#paths, #answers)
      return answers
    end

    local function python(path)
      return python_each{ path }[1]
    end

    it("as Python's csv module does, on a generated corpus of tricky files", function()
      local dir = shell.tmpdir()
      local pieces = { "", "plain", "with, comma", 'with "quotes"', "two\nlines", "crlf\r\ninside", " spaced ",
        '"', ",", "é ü 日本", "trailing\n", "x" }
      local seed = 12345
      local function rand(n)
        seed = (seed * 1103515245 + 12345) % 2147483648
        return seed % n + 1
      end
      local paths, texts, parsed = {}, {}, {}
      for case = 1, 60 do
        local records = {}
        for r = 1, rand(6) do
          local fields = {}
          for f = 1, rand(4) do
            fields[f] = pieces[rand(#pieces)]
          end
          if #fields == 1 and fields[1] == "" then
            fields[1] = "only"
          end
          records[r] = fields
        end
        local eol = ({ "\r\n", "\n", "\r\n", "\n" })[case % 4 + 1]
        local lines = {}
        for r, fields in ipairs(records) do
          local out = {}
          for i, v in ipairs(fields) do
            -- quote when needed, and sometimes when not
            out[i] = (v:find('[,"\r\n]') or rand(3) == 1) and ('"' .. v:gsub('"', '""') .. '"') or v
          end
          lines[r] = table.concat(out, ",")
        end
        local text = table.concat(lines, eol) .. (case % 3 == 0 and "" or eol)
        if case % 5 == 0 then
          text = "\239\187\191" .. text
        end
        if case % 7 == 0 then
          text = text .. eol .. eol -- blank lines at the end
        end
        paths[case] = ("%s/case%d.csv"):format(dir, case)
        shell.write_file(paths[case], text)
        local ours = assert(csv.parse(text))
        local plain = {}
        for i, r in ipairs(ours) do
          plain[i] = { table.unpack(r) }
        end
        texts[case], parsed[case] = text, plain
      end
      for case, theirs in ipairs(python_each(paths)) do
        assert.same(theirs.rows, parsed[case], "case " .. case .. ": " .. texts[case])
      end
      shell.exec("rm -rf " .. shell.quote(dir))
    end)

    it("and refuses malformed quoting with the line, as Python's strict mode refuses it", function()
      local dir = shell.tmpdir()
      for _, case in ipairs{
        { 'a,b\r\nc,"d"x\r\n', 2 },
        { 'a,b\n"one\ntwo" ,x\n', 3 },
        { 'a,b\nc,d\n"never closed,\nmore\n', 3 },
      } do
        shell.write_file(dir .. "/bad.csv", case[1])
        assert.is_string(python(dir .. "/bad.csv").error)
        local none, err = csv.parse(case[1])
        assert.is_nil(none)
        assert.equal(case[2], err.line, case[1])
      end
      shell.exec("rm -rf " .. shell.quote(dir))
    end)
  end)

  describe("against orbt-mock", function()
    local env = harness.with_mock{ client = { timeout = 10 } }
    local dir
    before_each(function()
      dir = shell.tmpdir()
    end)
    after_each(function()
      shell.exec("rm -rf " .. shell.quote(dir))
    end)

    local function import(args, extra)
      local opts = { mock = env.mock, dir = dir }
      for k, v in pairs(extra or {}) do
        opts[k] = v
      end
      table.insert(args, 1, "import")
      return cli.run(args, opts)
    end

    it("refuses unknown or missing columns, showing the header", function()
      cli.write_csv(dir .. "/in.csv", { { "fullname", "email", "currency" }, { "A", "a@example.com", "USD" } })
      local _, err, code = import{ "customers", "in.csv" }
      assert.equal(2, code)
      assert.matches('unknown column "fullname"', err, 1, true)
      assert.matches('missing column "initialFunds"', err, 1, true)
      assert.matches("the header is: fullname,email,currency", err, 1, true)
      assert.equal(0, env.mock:request_count())
    end)

    it("validates every row first: bad rows are named by line and column and nothing is sent", function()
      local records = people(5)
      records[3][2] = "not an email"
      records[5][4] = "-3"
      records[6] = { "Short", "s@example.com" }
      cli.write_csv(dir .. "/in.csv", records)
      local _, err, code = import{ "customers", "in.csv" }
      assert.equal(2, code)
      assert.matches("in.csv:3: column email: ", err, 1, true)
      assert.matches("in.csv:5: column initialFunds: ", err, 1, true)
      assert.matches("in.csv:6: 2 fields where the header has 4", err, 1, true)
      assert.matches("3 invalid rows; nothing was sent", err, 1, true)
      assert.equal(0, env.mock:request_count())
      _, err, code = import{ "customers", "in.csv", "--dry-run" }
      assert.equal(2, code)
      assert.matches("5 rows, 2 valid, 3 invalid; nothing sent", err, 1, true)
      assert.equal(0, env.mock:request_count())
      local out
      out, err, code = import{ "customers", "in.csv", "--skip-invalid", "--out", "results.csv" }
      assert.equal(1, code, err)
      assert.equal(2, env.mock:stats().consumers)
      local summary = json.decode(out)
      assert.equal(2, summary.created)
      assert.equal(3, summary.failed)
      local results = assert(csv.parse(shell.read_file(dir .. "/results.csv")))
      assert.same({ "fullName", "email", "currency", "initialFunds", "id", "walletId", "outcome", "reason" },
        { table.unpack(results[1]) })
      assert.equal("done", results[2][7])
      assert.matches("^%d+$", results[2][5])
      assert.equal("invalid", results[3][7])
      assert.matches("^column email: ", results[3][8])
    end)

    it("skips done rows on a rerun, refuses a changed file, and sends failed rows again only when asked", function()
      cli.write_csv(dir .. "/in.csv", people(30))
      assert(env.client:create_customer{ fullName = "Earlier", email = "p7@example.com", currency = "USD",
        initialFunds = 1 })
      local out, err, code = import{ "customers", "in.csv", "--concurrency", "4" }
      assert.equal(1, code, err)
      local summary = json.decode(out)
      local _
      assert.equal(29, summary.created)
      assert.same({ duplicate_customer = 1 }, summary.failed_by_reason)
      local before = env.mock:request_count()
      out, _, code = import{ "customers", "in.csv" }
      assert.equal(1, code)
      assert.equal(29, json.decode(out).skipped)
      assert.equal(before, env.mock:request_count())
      -- the failed row, sent again on request, fails again; nothing else is sent
      _, _, code = import{ "customers", "in.csv", "--retry-failed" }
      assert.equal(1, code)
      assert.equal(before + 1, env.mock:request_count())
      local records = people(30)
      records[11][1] = "Someone Else"
      cli.write_csv(dir .. "/in.csv", records)
      _, err, code = import{ "customers", "in.csv" }
      assert.equal(2, code)
      assert.matches("in.csv changed since in.csv.journal recorded it (line 11)", err, 1, true)
      assert.equal(30, env.mock:stats().consumers)
    end)

    it("derives referenceIds from each row and its occurrence: without the journal, nothing is paid twice", function()
      local c = assert(env.client:create_customer{ fullName = "W", email = "w@example.com", currency = "USD",
        initialFunds = 1 })
      local records = { { "walletId", "amount", "transactionType", "description" } }
      for _ = 1, 5 do
        records[#records + 1] = { c.walletId, "2.00", "CREDIT", "same" }
      end
      records[#records + 1] = { c.walletId, "0.50", "DEBIT", "" }
      cli.write_csv(dir .. "/tx.csv", records)
      local _, err, code = import{ "transactions", "tx.csv", "--out", "r.csv" }
      assert.equal(0, code, err)
      assert.equal(6, env.mock:stats().movements)
      os.remove(dir .. "/tx.csv.journal")
      _, err, code = import{ "transactions", "tx.csv" }
      assert.equal(0, code, err)
      local stats = env.mock:stats()
      assert.equal(6, stats.movements)
      assert.equal(6, stats.replays)
      assert.equal("10.50", env.mock:wallet(c.walletId).balance_text)
      local results = assert(csv.parse(shell.read_file(dir .. "/r.csv")))
      assert.equal("referenceId", results[1][5])
      assert.matches("^orbt%-.+%-1$", results[2][5])
      assert.matches("^orbt%-.+%-5$", results[6][5])
    end)

    it("drains on the first SIGINT, and a second one exits at once leaving unknowns the next run settles", function()
      cli.write_csv(dir .. "/in.csv", people(64))
      env.mock:fault{ path = "/api/partner/v1/customer", method = "POST", delay_ms = 1500, count = 1000 }
      local args = { "import", "customers", "in.csv", "--concurrency", "8", "--progress", "none" }
      local opts = { mock = env.mock, dir = dir }
      local proc = cli.start(args, opts)
      assert(shell.wait_for(function()
        return (cli.journal_states(dir .. "/in.csv.journal").sent or 0) > 0
      end, 10))
      cli.signal(proc, "INT")
      shell.sleep(0.2)
      cli.signal(proc, "INT")
      local code, out = cli.wait(proc, 10)
      assert.equal(130, code)
      assert.equal("", out) -- gone at once: no summary
      local states = cli.journal_states(dir .. "/in.csv.journal")
      assert.equal(64, states.sent)
      env.mock:clear_faults()
      shell.sleep(1.5) -- the requests held by the delay are answered meanwhile
      local err
      out, err, code = cli.run(args, opts)
      assert.equal(0, code, err)
      local summary = json.decode(out)
      assert.equal(64, summary.unknown)
      assert.equal(64, summary.resolved_found + summary.resolved_sent_again)
      assert.equal(64, env.mock:stats().consumers)
    end)

    it("one SIGINT finishes the rows in flight, completes the journal and says how to resume", function()
      -- one request in flight at a time: a batch is 32 rows, 1.6 s
      cli.write_csv(dir .. "/in.csv", people(100))
      env.mock:fault{ path = "/api/partner/v1/customer", method = "POST", delay_ms = 50, count = 1000 }
      local args = { "import", "customers", "in.csv", "--concurrency", "1", "--progress", "none" }
      local proc = cli.start(args, { mock = env.mock, dir = dir })
      assert(shell.wait_for(function()
        return (cli.journal_states(dir .. "/in.csv.journal").sent or 0) > 0
      end, 10))
      cli.signal(proc, "INT")
      local code, out, err = cli.wait(proc, 20)
      assert.equal(130, code)
      local summary = json.decode(out)
      assert.equal(32, summary.created)
      assert.equal("sigint", summary.interrupted)
      assert.matches("run the same command again to resume", err, 1, true)
      assert.same({ done = 32 }, (cli.journal_states(dir .. "/in.csv.journal")))
    end)

    it("draws a progress bar on a terminal and finishes it; writes plain lines when piped", function()
      cli.write_csv(dir .. "/in.csv", people(3000))
      local cmd = cli.command({ "--table", "import", "customers", "in.csv", "--concurrency", "16" },
        { mock = env.mock })
      local tty = shell.run(("cd %s && script -qec %s /dev/null"):format(shell.quote(dir), shell.quote(cmd)))
      assert.matches("\r\27[K[", tty, 1, true)
      assert.matches("[########################] 3000/3000", tty, 1, true)
      assert.matches("rows/s  ETA ", tty, 1, true)
      assert.matches("created   3000", tty, 1, true)
      local _, err, code = cli.run({ "import", "customers", "in.csv", "--journal", "again.journal" },
        { mock = env.mock, dir = dir })
      assert.equal(1, code)
      assert.matches("^orbt: %d+/3000 rows, %d+ rows/s, ETA [%d:-]+, %d+ failed\n", err)
      assert.is_nil(err:find("\r", 1, true))
    end)
  end)
end)
