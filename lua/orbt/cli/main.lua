-- orbt.cli.main: the `orbt` command's arguments (lua-argparse), its
-- sub-commands and their exit codes. bin/orbt calls main(arg).
--
-- Exit codes: 0 all done; 1 some items failed; 2 usage or configuration;
-- 3 authentication; 4 network after retries; 130/143 an import interrupted
-- by SIGINT/SIGTERM (run it again to resume).
local argparse = require("argparse")
local orbt = require("orbt")
local config = require("orbt.cli.config")
local output = require("orbt.cli.output")
local sys = require("orbt.cli.sys")

local M = {}

M.EXIT = { ok = 0, failed = 1, usage = 2, auth = 3, network = 4 }

local function say(text)
  io.stderr:write("orbt: ", (tostring(text):gsub("^orbt: ", ""):gsub("[\r\n]+", " ")), "\n")
  io.stderr:flush()
end

-- One line on stderr for an error value, with its reason; the exit code for it.
local function fail(err)
  local line = tostring(err)
  if err.reason and not line:find(err.reason, 1, true) then
    line = line .. " [reason: " .. err.reason .. "]"
  end
  if err.maybe_applied then
    line = line .. " (it may have been applied)"
  end
  say(line)
  if err.kind == "invalid" then
    return M.EXIT.usage
  elseif err.reason == "authentication" then
    return M.EXIT.auth
  elseif err.kind == "network" or err.kind == "timeout" then
    return M.EXIT.network
  end
  return M.EXIT.failed
end

local function positive_integer(lo, hi)
  return function(s)
    local n = math.tointeger(tonumber(s))
    if not n or n < lo or (hi and n > hi) then
      return nil, ("%s is not an integer from %d%s"):format(s, lo, hi and (" to " .. hi) or " up")
    end
    return n
  end
end

function M.parser()
  local p = argparse("orbt", "Orbt partner API from the shell: calls, and bulk imports that resume.")
    -- One line, as help2man reads it for the man page's SYNOPSIS; the
    -- options are listed below it, two spaces at least from their text.
    :usage("Usage: orbt [OPTION]... COMMAND [ARG]...")
    :help_description_margin(28)
    :epilog("Settings: flags, then ORBT_API_KEY, ORBT_CLIENT_ID, ORBT_SECRET, ORBT_BASE_URL, ORBT_PROFILE,\n"
      .. "then the profile file $XDG_CONFIG_HOME/orbt/config (chmod 600). There is no flag for the secret.\n"
      .. "Exit codes: 0 done, 1 some items failed, 2 usage or configuration, 3 authentication,\n"
      .. "4 network after retries, 130/143 an import interrupted (run it again to resume).")
  p:flag("--version", "Print the version and exit."):action(function()
    io.stdout:write(("orbt command, module %s\n"):format(orbt._VERSION))
    os.exit(0)
  end)
  p:option("--profile", "Profile (section) of the config file.")
  p:option("--api-key", "API key.")
  p:option("--client-id", "Client id (a UUID).")
  p:option("--base-url", "API base URL.")
  p:flag("--uat", "Use Orbt's UAT host.")
  p:option("--timeout", "Seconds per request."):convert(tonumber)
  p:mutex(p:flag("--json", "One JSON object per line (the default when stdout is not a terminal)."),
    p:flag("--csv", "CSV with a header row."),
    p:flag("--table", "An aligned table (the default on a terminal)."))
  p:add_help_command()
  p:require_command(true)
  p:command_target("command") -- "import customers" also sets args.customers

  local customers = p:command("customers", "List and create consumers.")
  customers:require_command(true)
  local cl = customers:command("list", "List consumers, a page at a time or --all.")
  cl:option("--page", "Page (from 0).", "0"):convert(positive_integer(0))
  cl:option("--size", "Page size (1 to 50).", "20"):convert(positive_integer(1, 50))
  cl:flag("--all", "Every page.")
  local cc = customers:command("create", "Create a consumer and fund its wallet.")
  cc:option("--name", "Full name."):args(1):count(1)
  cc:option("--email", "Email."):args(1):count(1)
  cc:option("--currency", "ISO 4217 code, such as USD."):args(1):count(1)
  cc:option("--funds", "Initial funds, such as 50.00."):args(1):count(1)

  local wallets = p:command("wallets", "List a consumer's wallets.")
  wallets:require_command(true)
  local wl = wallets:command("list", "List a consumer's wallets.")
  wl:argument("customer_id", "The consumer's id.")
  wl:option("--page", "Page (from 0).", "0"):convert(positive_integer(0))
  wl:option("--size", "Page size (1 to 50).", "20"):convert(positive_integer(1, 50))
  wl:flag("--all", "Every page.")

  for _, name in ipairs{ "credit", "debit" } do
    local c = p:command(name, ("%s a wallet, once per reference."):format(name == "credit" and "Credit" or "Debit"))
    c:argument("wallet_id", "The wallet's id.")
    c:argument("amount", "The amount, such as 12.50.")
    c:option("--ref", "referenceId: the idempotency key."):args(1):count(1)
    c:option("--description", "Description.")
  end

  local import = p:command("import", "Import a CSV file of customers or transactions, resumably.")
  import:require_command(true)
  for _, kind in ipairs{ "customers", "transactions" } do
    local c = import:command(kind, ("Import %s from FILE.csv (header: %s)."):format(kind,
      kind == "customers" and "fullName,email,currency,initialFunds"
        or "walletId,amount,transactionType[,referenceId][,description]"))
    c:argument("file", "The CSV file.")
    c:option("--concurrency", "Requests in flight at once (1 to 64).", "8"):convert(positive_integer(1, 64))
    c:flag("--dry-run", "Validate every row and stop.")
    c:flag("--skip-invalid", "Send the valid rows even when some are invalid.")
    c:flag("--retry-failed", "Send again the rows an earlier run recorded as failed.")
    c:option("--out", "Write RESULTS.csv: the input columns, ids, outcome and reason.")
    c:option("--journal", "The journal (default FILE.csv.journal).")
    c:option("--progress", "bar, plain or none (default: bar on a terminal, else plain)."):choices{ "bar", "plain",
      "none" }
  end

  local sign = p:command("sign", "Print the five signed headers, for another HTTP tool.")
  sign:option("--method", "HTTP method."):args(1):count(1)
  sign:option("--body-file", "The request body (- for stdin); none for a GET.")
  sign:option("--timestamp", "x-timestamp to sign (default: now).")

  local mock = p:command("mock", "Start orbt-mock in the background; print the export lines for it.")
  mock:option("--port", "Port (0: a free one).", "0"):convert(positive_integer(0, 65535))
  mock:option("--balance", "The partner's starting balance.", "1000.00")
  mock:option("--lifetime", "Seconds before it stops by itself.", "3600"):convert(positive_integer(1))

  local cfg = p:command("config", "Configuration.")
  cfg:require_command(true)
  cfg:command("check", "Show each setting and where it comes from (the secret masked).")
  return p
end

local function mode_of(args)
  if args.json then
    return "json"
  elseif args.csv then
    return "csv"
  elseif args.table then
    return "table"
  end
  return sys.isatty(1) and "table" or "json"
end

local function settings(args)
  return config.resolve{ api_key = args.api_key, client_id = args.client_id, base_url = args.base_url,
    profile = args.profile, uat = args.uat }
end

local function need(s, keys)
  for _, key in ipairs(keys) do
    if not s[key].value then
      return nil, ("no %s: set %s%s, or %s in [%s] of %s"):format(key:gsub("_", " "), config.ENV[key],
        key ~= "secret" and (" or --" .. key:gsub("_", "-")) or "", key, s.profile, tostring(s.path))
    end
  end
  return true
end

-- The client for the settings, or nil, exit code (after saying why).
local function client_for(args)
  local s, err = settings(args)
  if not s then
    say(err)
    return nil, M.EXIT.usage
  end
  local ok, nerr = need(s, { "api_key", "client_id", "secret" })
  if not ok then
    say(nerr)
    return nil, M.EXIT.usage
  end
  local client, cerr = orbt.new{ api_key = s.api_key.value, client_id = s.client_id.value, secret = s.secret.value,
    base_url = s.base_url.value, timeout = args.timeout }
  if not client then
    say(cerr)
    return nil, M.EXIT.usage
  end
  return client
end

local COLUMNS = {
  consumer = { "consumerId", "consumerName", "consumerEmail", "totalStandardWallets", "totalCampaignWallets" },
  customer = { "id", "walletId", "fullName", "email", "walletBalance", "currency" },
  wallet = { "walletId", "currency", "balance", "walletType", "status", "campaignId", "campaignName" },
  transaction = { "transactionId", "walletId", "transactionType", "amount", "referenceId", "balance", "description" },
}

-- A page, or every item through the iterator; errors mid-walk are values.
local function list(args, columns, page_fn, iter_fn)
  local client, code = client_for(args)
  if not client then
    return code
  end
  local out = output.writer(mode_of(args), columns)
  if args.all then
    local ok, err = pcall(function()
      for item in iter_fn(client) do
        out:add(item)
      end
    end)
    out:finish()
    if not ok then
      return orbt.is_error(err) and fail(err) or error(err, 0)
    end
    return 0
  end
  local page, err = page_fn(client)
  if not page then
    return fail(err)
  end
  for _, item in ipairs(page.content or {}) do
    out:add(item)
  end
  out:finish()
  if page.hasNext == true and out.mode == "table" then
    io.stderr:write(("(page %d; more with --page %d, or --all)\n"):format(args.page, args.page + 1))
  end
  return 0
end

local function one(args, columns, call)
  local client, code = client_for(args)
  if not client then
    return code
  end
  local result, err = call(client)
  if not result then
    return fail(err)
  end
  local out = output.writer(mode_of(args), columns)
  out:add(result)
  out:finish()
  return 0
end

local commands = {}

function commands.customers(args)
  if args.list then
    return list(args, COLUMNS.consumer, function(c)
      return c:list_customers{ page = args.page, size = args.size }
    end, function(c)
      return c:customers{ size = 50 }
    end)
  end
  return one(args, COLUMNS.customer, function(c)
    return c:create_customer{ fullName = args.name, email = args.email, currency = args.currency,
      initialFunds = args.funds }
  end)
end

function commands.wallets(args)
  return list(args, COLUMNS.wallet, function(c)
    return c:list_wallets(args.customer_id, { page = args.page, size = args.size })
  end, function(c)
    return c:wallets(args.customer_id, { size = 50 })
  end)
end

local function move(verb)
  return function(args)
    return one(args, COLUMNS.transaction, function(c)
      return c[verb](c, args.wallet_id, { amount = args.amount, referenceId = args.ref,
        description = args.description })
    end)
  end
end
commands.credit = move("credit")
commands.debit = move("debit")

function commands.import(args)
  local kind = args.customers and "customers" or "transactions"
  local client, code
  if not args.dry_run then
    client, code = client_for(args)
    if not client then
      return code
    end
  end
  local mode = args.progress or (sys.isatty(2) and "bar" or "plain")
  return require("orbt.cli.import").run{ kind = kind, file = args.file, client = client,
    concurrency = args.concurrency, dry_run = args.dry_run, skip_invalid = args.skip_invalid,
    retry_failed = args.retry_failed, out = args.out, journal = args.journal, progress = mode, say = say,
    mode = mode_of(args) }
end

function commands.sign(args)
  local s, err = settings(args)
  if not s then
    say(err)
    return M.EXIT.usage
  end
  local ok, nerr = need(s, { "api_key", "client_id", "secret" })
  if not ok then
    say(nerr)
    return M.EXIT.usage
  end
  local body = ""
  if args.body_file then
    local f, ferr = io.stdin, nil
    if args.body_file ~= "-" then
      f, ferr = io.open(args.body_file, "rb")
    end
    if not f then
      say(ferr)
      return M.EXIT.usage
    end
    body = f:read("a")
    f:close()
  end
  local headers, serr = orbt.sign{ method = args.method:upper(), body = body, client_id = s.client_id.value,
    api_key = s.api_key.value, secret = s.secret.value, timestamp = args.timestamp }
  if not headers then
    return fail(serr)
  end
  if args.json then
    io.stdout:write(output.json(headers), "\n")
  else
    -- "Name: value" lines, as curl -H @FILE reads them
    for _, name in ipairs{ "x-api-key", "x-client-id", "x-timestamp", "x-body-hash", "x-signature" } do
      io.stdout:write(name, ": ", headers[name], "\n")
    end
  end
  return 0
end

-- orbt-mock: $ORBT_MOCK, next to this command, in the checkout's build/,
-- then on PATH.
local function find_mock(script)
  local candidates = {}
  if (os.getenv("ORBT_MOCK") or "") ~= "" then
    candidates[1] = os.getenv("ORBT_MOCK")
  end
  local dir = script and script:match("^(.*)/[^/]*$") or "."
  candidates[#candidates + 1] = dir .. "/orbt-mock"
  candidates[#candidates + 1] = dir .. "/../build/orbt-mock"
  for p in (os.getenv("PATH") or ""):gmatch("[^:]+") do
    candidates[#candidates + 1] = p .. "/orbt-mock"
  end
  for _, c in ipairs(candidates) do
    local mode = sys.mode(c)
    if mode and mode & 0x49 ~= 0 then
      return c
    end
  end
  return nil
end

local function shell_quote(s)
  return "'" .. tostring(s):gsub("'", "'\\''") .. "'"
end

function commands.mock(args, script)
  local bin = find_mock(script)
  if not bin then
    say("orbt-mock not found: set ORBT_MOCK, or put orbt-mock on PATH (make builds build/orbt-mock)")
    return M.EXIT.usage
  end
  local f = assert(io.open("/dev/urandom", "rb"))
  local secret = "mock-" .. f:read(16):gsub(".", function(c) return ("%02x"):format(c:byte()) end)
  f:close()
  local api_key, client_id = "mock-api-key", "3f1c2a9e-8b7d-4e6f-9a01-23456789abcd"
  local dir = os.tmpname()
  os.remove(dir)
  local out, log = dir .. ".out", dir .. ".log"
  local pid, err = sys.spawn_detached(bin, { "--port", tostring(args.port), "--balance", args.balance,
    "--api-key", api_key, "--client-id", client_id, "--lifetime", tostring(args.lifetime), "--quiet" },
    { "ORBT_MOCK_SECRET=" .. secret }, out, log)
  if not pid then
    say(("cannot start %s: %s"):format(bin, tostring(err)))
    return M.EXIT.usage
  end
  local url
  local deadline = sys.now() + 10
  repeat
    local fh = io.open(out, "rb")
    url = fh and fh:read("a"):match("listening on (%S+)")
    if fh then
      fh:close()
    end
    if not url then
      if not sys.alive(pid) or sys.now() > deadline then
        local lh = io.open(log, "rb")
        say("orbt-mock did not start: " .. (lh and lh:read("a") or ""))
        return M.EXIT.usage
      end
      sys.sleep(0.02)
    end
  until url
  os.remove(out)
  local lines = {
    { "ORBT_BASE_URL", url }, { "ORBT_API_KEY", api_key }, { "ORBT_CLIENT_ID", client_id },
    { "ORBT_SECRET", secret }, { "ORBT_MOCK_PID", tostring(pid) },
  }
  if args.json then
    local obj = {}
    for _, kv in ipairs(lines) do
      obj[kv[1]] = kv[2]
    end
    io.stdout:write(output.json(obj), "\n")
  else
    for _, kv in ipairs(lines) do
      io.stdout:write(("export %s=%s\n"):format(kv[1], shell_quote(kv[2])))
    end
    io.stdout:write(("# orbt-mock %s, stops after %d s, or: kill $ORBT_MOCK_PID; log: %s\n"):format(url,
      args.lifetime, log))
  end
  return 0
end

function commands.config(args)
  local s, err = settings(args)
  if not s then
    say(err)
    return M.EXIT.usage
  end
  local out = output.writer(mode_of(args), { "setting", "value", "source" })
  for _, key in ipairs(config.KEYS) do
    local v = s[key].value
    if v and key == "secret" then
      v = config.mask(v)
    end
    out:add{ setting = key, value = v or "", source = s[key].source }
  end
  out:add{ setting = "profile", value = s.profile, source = tostring(s.path) }
  for _, name in ipairs(config.PROXY_VARS) do
    local v = os.getenv(name)
    if v and v ~= "" then
      out:add{ setting = name, value = v, source = "environment (libcurl reads it)" }
    end
  end
  out:finish()
  local ok, nerr = need(s, { "api_key", "client_id", "secret" })
  if not ok then
    say(nerr)
    return M.EXIT.usage
  end
  local client, cerr = orbt.new{ api_key = s.api_key.value, client_id = s.client_id.value, secret = s.secret.value,
    base_url = s.base_url.value }
  if not client then
    say(cerr)
    return M.EXIT.usage
  end
  client:close()
  return 0
end

-- Runs the command line `argv`; returns the exit code.
function M.main(argv, script)
  output.set_null(orbt.null)
  local p = M.parser()
  local ok, args = p:pparse(argv)
  if not ok then
    say(args)
    io.stderr:write("Try 'orbt help' or 'orbt help COMMAND'.\n")
    return M.EXIT.usage
  end
  return commands[args.command](args, script)
end

return M
