-- cli_spec: the orbt command (bin/orbt), each sub-command and exit code,
-- against a real orbt-mock, run as a separate process the way a user runs
-- it. On the Lua 5.4 pass only (the command is a Lua 5.4 program).
local cli = require("support.cli")
local harness = require("support.harness")
local shell = require("support.shell")
local json = require("dkjson")

local function lines_of(text)
  local out = {}
  for l in text:gmatch("[^\n]+") do
    out[#out + 1] = l
  end
  return out
end

local function json_lines(text)
  local out = {}
  for _, l in ipairs(lines_of(text)) do
    out[#out + 1] = assert(json.decode(l), l)
  end
  return out
end

describe("the orbt command", function()
  if os.getenv("ORBT_RUNTIME") ~= "lua5.4" then
    pending("runs on the Lua 5.4 pass (bin/orbt is a Lua 5.4 program)")
    return
  end
  local env = harness.with_mock{ client = false }

  describe("calls", function()
    it("creates a consumer and lists it as JSON lines when stdout is not a terminal", function()
      local out, err, code = cli.run({ "customers", "create", "--name", "Jane Smith", "--email", "jane@example.com",
        "--currency", "USD", "--funds", "50.25" }, { mock = env.mock })
      assert.equal(0, code, err)
      local created = json_lines(out)[1]
      assert.equal("jane@example.com", created.email)
      assert.equal(50.25, created.walletBalance)
      out, err, code = cli.run({ "customers", "list" }, { mock = env.mock })
      assert.equal(0, code, err)
      local listed = json_lines(out)
      assert.equal(1, #listed)
      assert.equal(created.id, listed[1].consumerId)
      assert.equal("", err)
    end)

    it("prints aligned tables with --table and CSV with --csv, money as received", function()
      for i = 1, 3 do
        assert(select(3, cli.run({ "customers", "create", "--name", "N" .. i, "--email", i .. "@example.com",
          "--currency", "USD", "--funds", "10.05" }, { mock = env.mock })) == 0)
      end
      local out, _, code = cli.run({ "--table", "customers", "list", "--size", "2" }, { mock = env.mock })
      assert.equal(0, code)
      local rows = lines_of(out)
      assert.equal(3, #rows)
      assert.matches("^consumerId  consumerName  consumerEmail", rows[1])
      -- every row as wide as the header, numbers right-aligned under it
      assert.equal(#rows[1]:match("^consumerId"), #rows[2]:match("^ *%d+"))
      local _, err = cli.run({ "--table", "customers", "list", "--size", "2" }, { mock = env.mock })
      assert.matches("more with --page 1, or --all", err, 1, true)
      out = cli.run({ "--csv", "customers", "list", "--all" }, { mock = env.mock })
      rows = lines_of(out:gsub("\r", ""))
      assert.equal("consumerId,consumerName,consumerEmail,totalStandardWallets,totalCampaignWallets", rows[1])
      assert.equal(4, #rows)
      local wallet = rows[2]:match("^(%d+)")
      out = cli.run({ "--csv", "wallets", "list", wallet }, { mock = env.mock })
      assert.matches(wallet .. ",USD,10.05,STANDARD,ENABLED", out, 1, true)
    end)

    it("credits and debits once per --ref, and exits 1 with the reason when the API refuses", function()
      local out = cli.run({ "customers", "create", "--name", "W", "--email", "w@example.com", "--currency", "USD",
        "--funds", "10" }, { mock = env.mock })
      local wallet = json_lines(out)[1].walletId
      local credit = { "credit", wallet, "2.50", "--ref", "ref-1", "--description", "cashback" }
      local first, _, code = cli.run(credit, { mock = env.mock })
      assert.equal(0, code)
      local again = cli.run(credit, { mock = env.mock })
      assert.same(json_lines(first), json_lines(again))
      assert.equal(1, env.mock:stats().movements)
      assert.equal("12.50", env.mock:wallet(wallet).balance_text)
      local _, err
      _, err, code = cli.run({ "credit", wallet, "3.00", "--ref", "ref-1" }, { mock = env.mock })
      assert.equal(1, code)
      assert.matches("reason: idempotency_conflict", err, 1, true)
      assert.equal(1, #lines_of(err))
      _, err, code = cli.run({ "debit", wallet, "100", "--ref", "ref-2" }, { mock = env.mock })
      assert.equal(1, code)
      assert.matches("insufficient_wallet_funds", err, 1, true)
      out, _, code = cli.run({ "debit", wallet, "0.50", "--ref", "ref-3" }, { mock = env.mock })
      assert.equal(0, code)
      assert.equal(12, json_lines(out)[1].balance)
      assert.matches('"balance":12.00,', out, 1, true)
    end)

    it("prints money with at least two decimals, adding digits and never rounding any away", function()
      local out, err, code = cli.run({ "--csv", "customers", "create", "--name", "Money Print",
        "--email", "money.print@example.com", "--currency", "USD", "--funds", "50.00" }, { mock = env.mock })
      assert.equal(0, code, err)
      local row = lines_of(out)[2]
      assert.matches(",50%.00,USD%s*$", row)
      local wallet = row:match("^%d+,(%d+),")
      for amount, shown in pairs{ ["2.5"] = "2.50", ["0.125"] = "0.125", ["19.99"] = "19.99", ["3"] = "3.00" } do
        out, err, code = cli.run({ "--json", "credit", wallet, amount, "--ref", "money-" .. amount },
          { mock = env.mock })
        assert.equal(0, code, err)
        assert.matches('"amount":' .. shown:gsub("%.", "%%.") .. ",", out)
      end
      out = cli.run({ "--json", "wallets", "list", wallet }, { mock = env.mock })
      assert.matches('"balance":75.615,', out, 1, true) -- 50 + 2.5 + 0.125 + 19.99 + 3, to the last digit
    end)

    it("exits 2 on usage errors and invalid input, sending nothing", function()
      local before = env.mock:request_count()
      local cases = {
        { "customers", "lst" },
        { "customers", "create", "--name", "A", "--email", "not an email", "--currency", "USD", "--funds", "1" },
        { "customers", "list", "--size", "51" },
        { "credit", "101", "1.00" },
        { "import", "customers" },
        { "--secret", "x", "customers", "list" },
      }
      for _, args in ipairs(cases) do
        local _, err, code = cli.run(args, { mock = env.mock })
        assert.equal(2, code, table.concat(args, " ") .. ": " .. err)
        assert.matches("^orbt: ", err)
      end
      assert.equal(before, env.mock:request_count())
    end)

    it("exits 3 on an authentication failure and 4 when the server cannot be reached", function()
      local _, err, code = cli.run({ "customers", "list" }, { mock = env.mock, env = { ORBT_SECRET = "wrong" } })
      assert.equal(3, code)
      assert.matches("reason: authentication", err, 1, true)
      assert.is_nil(err:find(env.mock.secret, 1, true))
      _, err, code = cli.run({ "customers", "list" }, { mock = env.mock,
        env = { ORBT_BASE_URL = "http://127.0.0.1:" .. shell.random_port() } })
      assert.equal(4, code, err)
      assert.matches("network", err, 1, true)
    end)

    it("prints help, the version and per-command help", function()
      local out, _, code = cli.run({ "--help" })
      assert.equal(0, code)
      for _, word in ipairs{ "customers", "wallets", "credit", "debit", "import", "sign", "mock", "config",
        "Exit codes" } do
        assert.matches(word, out, 1, true)
      end
      out, _, code = cli.run({ "--version" })
      assert.equal(0, code)
      assert.matches("^orbt command, module %d", out)
      out, _, code = cli.run({ "help", "import" })
      assert.equal(0, code)
      assert.matches("fullName,email,currency,initialFunds", out, 1, true)
    end)
  end)

  describe("sign", function()
    it("prints the five headers that orbt-mock accepts, for the curl tool", function()
      local dir = shell.tmpdir()
      shell.write_file(dir .. "/body.json", '{"fullName":"Curl User","email":"curl@example.com","currency":"USD",'
        .. '"initialFunds":5}')
      local out, err, code = cli.run({ "sign", "--method", "post", "--body-file", "body.json" },
        { mock = env.mock, dir = dir })
      assert.equal(0, code, err)
      local headers = lines_of(out)
      assert.equal(5, #headers)
      headers[#headers + 1] = "Content-Type: application/json"
      local status = env.mock:http("POST", "/api/partner/v1/customer", headers, shell.read_file(dir .. "/body.json"))
      assert.equal(200, status)
      assert.equal(1, env.mock:stats().consumers)
      out = cli.run({ "--json", "sign", "--method", "GET", "--timestamp", "2026-06-03T10:00:00.000Z" },
        { mock = env.mock, dir = dir })
      local h = json.decode(out)
      assert.equal("47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSuFU=", h["x-body-hash"])
      assert.equal("2026-06-03T10:00:00.000Z", h["x-timestamp"])
      assert.is_nil(out:find(env.mock.secret, 1, true))
      shell.exec("rm -rf " .. shell.quote(dir))
    end)
  end)

  describe("configuration", function()
    local home
    before_each(function()
      home = shell.tmpdir()
      shell.exec("mkdir -p " .. home .. "/orbt")
    end)
    after_each(function()
      shell.exec("rm -rf " .. shell.quote(home))
    end)

    local function profile_file(text, mode)
      shell.write_file(home .. "/orbt/config", text)
      shell.exec(("chmod %s %s/orbt/config"):format(mode or "600", home))
    end

    it("reads a profile, and flags win over the environment, which wins over the file", function()
      profile_file(("[default]\napi_key = %s\nclient_id = %s\nsecret = %s\nbase_url = %s\n\n[other]\napi_key = k2\n"
        .. "client_id = c2\nsecret = s2\nuat = true\n"):format(env.mock.api_key, env.mock.client_id, env.mock.secret,
        env.mock.url))
      local _, err, code = cli.run({ "customers", "list" }, { env = { XDG_CONFIG_HOME = home } })
      assert.equal(0, code, err)
      local out = cli.run({ "--json", "config", "check" }, { env = { XDG_CONFIG_HOME = home,
        ORBT_API_KEY = "from-env" }, })
      local by = {}
      for _, row in ipairs(json_lines(out)) do
        by[row.setting] = row
      end
      assert.equal("from-env", by.api_key.value)
      assert.equal("environment ORBT_API_KEY", by.api_key.source)
      assert.matches("%[default%]$", by.client_id.source)
      assert.matches("^%*+ %(%d+ bytes%)$", by.secret.value)
      assert.is_nil(out:find(env.mock.secret, 1, true))
      out = cli.run({ "--json", "--api-key", "from-flag", "--profile", "other", "config", "check" },
        { env = { XDG_CONFIG_HOME = home, ORBT_API_KEY = "from-env" } })
      by = {}
      for _, row in ipairs(json_lines(out)) do
        by[row.setting] = row
      end
      assert.equal("from-flag", by.api_key.value)
      assert.equal("c2", by.client_id.value)
      assert.equal("https://api-uat.ncentiva.com", by.base_url.value)
      out = cli.run({ "--json", "--uat", "config", "check" }, { env = { XDG_CONFIG_HOME = home } })
      assert.matches('"source":"flag --uat","value":"https://api-uat.ncentiva.com"', out, 1, true)
    end)

    it("refuses a profile file that group or others can read, naming the chmod", function()
      profile_file("[default]\napi_key = k\nclient_id = c\nsecret = s\n", "644")
      local _, err, code = cli.run({ "customers", "list" }, { env = { XDG_CONFIG_HOME = home } })
      assert.equal(2, code)
      assert.matches("chmod 600 " .. home .. "/orbt/config", err, 1, true)
      assert.equal(0, env.mock:request_count())
    end)

    it("says which setting is missing, and exits 2", function()
      local _, err, code = cli.run({ "customers", "list" }, { env = { ORBT_API_KEY = "k", ORBT_CLIENT_ID = "c" } })
      assert.equal(2, code)
      assert.matches("no secret: set ORBT_SECRET", err, 1, true)
      _, err, code = cli.run({ "config", "check" }, { env = { ORBT_API_KEY = "k" } })
      assert.equal(2, code)
      assert.matches("no client id", err, 1, true)
    end)
  end)

  describe("mock", function()
    it("starts orbt-mock in the background and prints export lines that reach it", function()
      local dir = shell.tmpdir()
      local out, err, code = cli.run({ "mock", "--balance", "77.00", "--lifetime", "60" },
        { env = { ORBT_MOCK = os.getenv("ORBT_MOCK") } })
      assert.equal(0, code, err)
      shell.write_file(dir .. "/exports", out)
      local script = (". ./exports && %s && curl -s \"$ORBT_BASE_URL/__mock/stats\"; kill $ORBT_MOCK_PID"):format(
        cli.command({ "--json", "customers", "create", "--name", "M", "--email", "m@example.com", "--currency", "USD",
          "--funds", "7" }, { inherit = true }))
      local result = shell.run("cd " .. shell.quote(dir) .. " && " .. script)
      assert.matches('"email":"m@example.com"', result, 1, true)
      assert.matches('"balance":"70.00"', result, 1, true)
      shell.exec("rm -rf " .. shell.quote(dir))
    end)
  end)
end)
