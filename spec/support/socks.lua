-- support/socks.lua: a real SOCKS5 proxy for specs, Debian's Dante
-- (danted), on a free loopback port, configured from a file written into
-- its own temporary directory. It either passes every connection or
-- refuses every one, as a SOCKS server with a ruleset does.
--
--   local socks = require("support.socks").start{ refuse = false }
--   socks.port, socks.url ("socks5h://127.0.0.1:PORT")
--   socks:log()     -- what Dante logged: "pass" or "block" lines per connection
--   socks:stop()
local shell = require("support.shell")

local M = {}
local Socks = {}
Socks.__index = Socks

local random_port = shell.random_port

local function config(dir, port, refuse)
  local user = shell.run("id -un"):gsub("%s", "")
  return table.concat({
    ("logoutput: %s/danted.log"):format(dir),
    ("internal: 127.0.0.1 port = %d"):format(port),
    "external: 127.0.0.1",
    "socksmethod: none",
    "clientmethod: none",
    "user.privileged: " .. user,
    "user.unprivileged: " .. user,
    "client pass { from: 127.0.0.0/8 to: 0.0.0.0/0 log: connect error }",
    ("socks %s { from: 0.0.0.0/0 to: 0.0.0.0/0 log: connect error }"):format(refuse and "block" or "pass"),
  }, "\n") .. "\n"
end

-- One try on one port: true when it listens.
local function launch(self)
  local d = self.dir
  os.remove(d .. "/danted.log")
  os.remove(d .. "/status")
  shell.write_file(d .. "/danted.conf", config(d, self.port, self.refuse))
  local script = ("danted -f %s/danted.conf -p %s/danted.pid >%s/out 2>&1; echo $? >%s/status")
    :format(d, d, d, d)
  shell.exec("sh -c " .. shell.quote(script) .. " >/dev/null 2>&1 &")
  local state = shell.wait_for(function()
    if self:log():find("running", 1, true) then
      return "up"
    end
    if (shell.read_file(d .. "/status") or ""):match("%d+") then
      return "exited"
    end
    return nil
  end, 10)
  if state ~= "up" then
    return false
  end
  self.pid = tonumber(shell.wait_for(function()
    return (shell.read_file(d .. "/danted.pid") or ""):match("%d+")
  end, 10))
  return self.pid ~= nil
end

-- Starts danted. opts.refuse: refuse every connection (a SOCKS ruleset block).
function M.start(opts)
  opts = opts or {}
  local self = setmetatable({ dir = shell.tmpdir(), refuse = opts.refuse }, Socks)
  for _ = 1, 10 do
    self.port = random_port()
    if launch(self) then
      self.url = ("socks5h://127.0.0.1:%d"):format(self.port)
      return self
    end
  end
  local log = self:log() .. (shell.read_file(self.dir .. "/out") or "")
  shell.exec("rm -rf " .. shell.quote(self.dir))
  error("danted did not start:\n" .. log)
end

function Socks:log()
  return shell.read_file(self.dir .. "/danted.log") or ""
end

-- Stops danted and its helper processes, and removes its directory.
function Socks:stop()
  if self.pid then
    shell.stop_process(self.pid, "TERM")
    self.pid = nil
  end
  shell.exec("rm -rf " .. shell.quote(self.dir))
end

return M
