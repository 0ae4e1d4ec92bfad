-- support/mock.lua: a real orbt-mock process for specs, and its control path.
--
-- The control path and hand-made requests go through the `curl` command-line
-- tool, an HTTP client independent of orbt, so specs check what reached the
-- wire instead of trusting the client under test.
local json = require("dkjson")
local shell = require("support.shell")

local M = {}
local Mock = {}
Mock.__index = Mock

M.API_KEY = "spec-api-key"
M.CLIENT_ID = "3f1c2a9e-8b7d-4e6f-9a01-23456789abcd"
M.PATH = "/api/partner/v1/customer"

local function mock_binary()
  return os.getenv("ORBT_MOCK") or "build/orbt-mock"
end

-- A secret unlikely to occur anywhere by chance, so "never appears" means something.
function M.random_secret()
  local hex = shell.run("od -An -N12 -tx1 /dev/urandom"):gsub("%s", "")
  return "sk-spec-" .. hex
end

-- Starts orbt-mock on a free port. opts: secret, api_key, client_id,
-- balance, skew, args (extra flags), tls. tls = {cert = PEM file, key = PEM
-- file, ca = PEM file}: the mock serves HTTPS with cert and key, and the
-- curl tool trusts ca (support.certs makes all three).
function M.start(opts)
  opts = opts or {}
  local self = setmetatable({
    secret = opts.secret or M.random_secret(),
    api_key = opts.api_key or M.API_KEY,
    client_id = opts.client_id or M.CLIENT_ID,
    tls = opts.tls,
    dir = shell.tmpdir(),
  }, Mock)
  local flags = {
    "--port 0", "--lifetime 900",
    "--api-key " .. shell.quote(self.api_key),
    "--client-id " .. shell.quote(self.client_id),
    "--balance " .. shell.quote(opts.balance or "100000.00"),
  }
  if opts.skew then
    flags[#flags + 1] = "--skew " .. opts.skew
  end
  if opts.tls then
    flags[#flags + 1] = "--tls-cert " .. shell.quote(opts.tls.cert)
    flags[#flags + 1] = "--tls-key " .. shell.quote(opts.tls.key)
  end
  for _, extra in ipairs(opts.args or {}) do
    flags[#flags + 1] = extra
  end
  -- A watcher shell waits for the mock so its exit status can be read back.
  local d = self.dir
  local script = ("ORBT_MOCK_SECRET=%s %s %s >%s/out 2>%s/log & echo $! >%s/pid; wait $!; echo $? >%s/status")
    :format(shell.quote(self.secret), shell.quote(mock_binary()), table.concat(flags, " "),
      d, d, d, d)
  shell.exec("sh -c " .. shell.quote(script) .. " >/dev/null 2>&1 &")
  local line = shell.wait_for(function()
    local out = shell.read_file(d .. "/out")
    return out and out:match("listening on (https?://[%d.:]+)")
  end, 10)
  assert(line, "orbt-mock did not start: " .. tostring(shell.read_file(d .. "/log")))
  self.url = line
  self.port = tonumber(line:match(":(%d+)$"))
  -- The shell creates the pid file before it writes the number: wait for digits.
  self.pid = tonumber(shell.wait_for(function()
    return (shell.read_file(d .. "/pid") or ""):match("%d+")
  end, 10))
  assert(self.pid, "orbt-mock's pid was not recorded")
  return self
end

-- Sends SIGTERM and waits; returns the exit status (nil if it did not stop).
function Mock:stop()
  if not self.pid then
    return self.exit_status
  end
  shell.exec("kill -TERM " .. self.pid .. " 2>/dev/null")
  -- The shell creates the file before it writes the number: wait for digits.
  local status = shell.wait_for(function()
    return (shell.read_file(self.dir .. "/status") or ""):match("%d+")
  end, 10)
  self.pid = nil
  self.exit_status = status and tonumber(status)
  return self.exit_status
end

function Mock:log()
  return shell.read_file(self.dir .. "/log") or ""
end

-- Stops the mock and insists it exits cleanly: under SANITIZE=1 a sanitizer
-- report or leak in the mock makes its exit status non-zero.
function Mock:cleanup()
  local status = self:stop()
  local log = self:log()
  shell.exec("rm -rf " .. shell.quote(self.dir))
  assert(status == 0, ("orbt-mock exited with status %s:\n%s"):format(tostring(status), log:sub(-4000)))
end

-- A client for this mock; overrides go into orbt.new's options.
function Mock:client(overrides)
  local orbt = require("orbt")
  local opts = { api_key = self.api_key, client_id = self.client_id, secret = self.secret,
    base_url = self.url, timeout = 10 }
  for k, v in pairs(overrides or {}) do
    opts[k] = v
  end
  return assert(orbt.new(opts))
end

-- One HTTP exchange through the curl CLI. headers: list of "Name: value".
-- Returns status (number, 0 when no answer) and the raw body. Over HTTPS
-- curl verifies the mock's certificate against tls.ca, unless tls.insecure
-- (a mock whose certificate a spec wants refused, by the client under test).
function Mock:http(method, path, headers, body)
  local args = { "curl", "-sS", "--max-time", "30", "-o", self.dir .. "/answer", "-w", "'%{http_code}'",
    "-X", method, "-H", "'Expect:'" }
  if self.tls and self.tls.insecure then
    args[#args + 1] = "--insecure"
  elseif self.tls and self.tls.ca then
    args[#args + 1] = "--cacert " .. shell.quote(self.tls.ca)
  end
  for _, h in ipairs(headers or {}) do
    args[#args + 1] = "-H " .. shell.quote(h)
  end
  if body then
    shell.write_file(self.dir .. "/request", body)
    args[#args + 1] = "--data-binary @" .. self.dir .. "/request"
  end
  args[#args + 1] = shell.quote(self.url .. path)
  os.remove(self.dir .. "/answer")
  local out = shell.run(table.concat(args, " ") .. " 2>/dev/null")
  return tonumber(out) or 0, shell.read_file(self.dir .. "/answer") or ""
end

function Mock:control(method, path, body)
  local status, raw = self:http(method, "/__mock/" .. path,
    body and { "Content-Type: application/json" } or nil, body and json.encode(body) or nil)
  assert(status == 200, ("control %s %s answered %d: %s"):format(method, path, status, raw))
  return json.decode(raw), raw
end

function Mock:stats()
  return (self:control("GET", "stats"))
end

function Mock:reset(balance)
  self:control("POST", "reset" .. (balance and ("?balance=" .. balance) or ""))
end

-- Requests received on the API paths, oldest first.
function Mock:requests(limit)
  return (self:control("GET", "requests" .. (limit and ("?limit=" .. limit) or ""))).requests
end

function Mock:last_request()
  local list = self:requests(1)
  return list[#list]
end

function Mock:fault(spec)
  self:control("POST", "faults", spec)
end

function Mock:clear_faults()
  self:control("DELETE", "faults")
end

-- Adds CAMPAIGN wallets to a consumer (orbt-mock's control path):
-- {customerId =, currency =, campaignId =, campaignName =, balance = "10.00",
-- count =}. Returns their ids.
function Mock:add_wallets(spec)
  return (self:control("POST", "wallets", spec)).walletIds
end

-- A wallet as orbt-mock holds it, read with the curl tool; balance_text is
-- its balance exactly as the JSON has it ("25.01").
function Mock:wallet(id)
  local wallet, raw = self:control("GET", "wallets?id=" .. id)
  wallet.balance_text = raw:match('"balance":%s*([%d.]+)')
  return wallet
end

-- Total API requests received so far.
function Mock:request_count()
  return self:stats().requests_total
end

return M
