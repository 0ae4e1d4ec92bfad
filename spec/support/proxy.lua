-- support/proxy.lua: a real HTTP proxy for specs, Debian's tinyproxy, on a
-- free loopback port, configured from a file written into its own temporary
-- directory. It logs every request line it receives, so specs can check that
-- traffic went through it (a forwarded GET, or a CONNECT for a tunnel).
--
--   local proxy = require("support.proxy").start{ basic_auth = { user = "u", password = "p" } }
--   proxy.url                      --> "http://127.0.0.1:PORT"
--   proxy:url_with_credentials()   --> "http://u:p@127.0.0.1:PORT"
--   proxy:requests()               --> { "CONNECT 127.0.0.1:4567 HTTP/1.1", ... }
--   proxy:stop()
local shell = require("support.shell")

local M = {}
local Proxy = {}
Proxy.__index = Proxy

local random_port = shell.random_port

-- tinyproxy reads a user name and password only in these characters.
local function check_word(what, s)
  assert(type(s) == "string" and s:match("^[%w%-%._]+$"),
    "basic_auth." .. what .. " must be letters, digits, '-', '.' or '_'")
  return s
end

local function config(dir, port, basic_auth, connect_ports)
  local lines = {
    "Port " .. port,
    "Listen 127.0.0.1",
    "Allow 127.0.0.1",
    "Timeout 60",
    "MaxClients 50",
    "Syslog Off",
    ('LogFile "%s/tinyproxy.log"'):format(dir),
    "LogLevel Info",   -- Info logs every request line, CONNECTs included
    ('PidFile "%s/tinyproxy.pid"'):format(dir),
    "DisableViaHeader Yes",
  }
  -- Without ConnectPort lines CONNECT may reach any port (the mock's is
  -- random); with them, only those.
  for _, p in ipairs(connect_ports or {}) do
    lines[#lines + 1] = "ConnectPort " .. p
  end
  if basic_auth then
    lines[#lines + 1] = ("BasicAuth %s %s"):format(check_word("user", basic_auth.user),
      check_word("password", basic_auth.password))
  end
  return table.concat(lines, "\n") .. "\n"
end

-- One try on one port: "up", "taken" (the port is in use) or an error.
local function launch(self)
  local d = self.dir
  for _, name in ipairs{ "tinyproxy.log", "out", "err", "pid", "status" } do
    os.remove(d .. "/" .. name)
  end
  shell.write_file(d .. "/tinyproxy.conf", config(d, self.port, self.basic_auth, self.connect_ports))
  -- In the foreground (-d) under a watcher shell, which records its pid
  -- and, once it ends, its exit status.
  local script = ("tinyproxy -d -c %s/tinyproxy.conf >%s/out 2>%s/err & echo $! >%s/pid; wait $!; echo $? >%s/status")
    :format(d, d, d, d, d)
  shell.exec("sh -c " .. shell.quote(script) .. " >/dev/null 2>&1 &")
  local state = shell.wait_for(function()
    if self:log():find("Accepting connections", 1, true) then
      return "up"
    end
    if (shell.read_file(d .. "/status") or ""):match("%d+") then
      return "exited"
    end
    return nil
  end, 10)
  local err = shell.read_file(d .. "/err") or ""
  if state == "exited" and err:find("Could not create listening sockets", 1, true) then
    return "taken"
  end
  assert(state == "up", ("tinyproxy did not start (%s):\n%s%s"):format(tostring(state), err, self:log()))
  self.pid = tonumber(shell.wait_for(function()
    return (shell.read_file(d .. "/pid") or ""):match("%d+")
  end, 10))
  assert(self.pid, "tinyproxy's pid was not recorded")
  return "up"
end

-- Starts tinyproxy. opts.basic_auth = {user =, password =}: every request
-- must then carry those credentials (407 without any; tinyproxy answers
-- wrong ones with 401). opts.connect_ports: the only ports CONNECT may
-- reach (a CONNECT elsewhere is refused with 403). opts.port: the port to
-- try first (the others are picked at random).
function M.start(opts)
  opts = opts or {}
  local self = setmetatable({ dir = shell.tmpdir(), basic_auth = opts.basic_auth,
    connect_ports = opts.connect_ports }, Proxy)
  for try = 1, 10 do
    self.port = try == 1 and opts.port or random_port()
    if launch(self) == "up" then
      self.url = ("http://127.0.0.1:%d"):format(self.port)
      return self
    end
  end
  shell.exec("rm -rf " .. shell.quote(self.dir))
  error("tinyproxy found no free port in 10 tries")
end

local function url_escape(s)
  return (s:gsub("[^%w%-%._~]", function(c)
    return ("%%%02X"):format(c:byte())
  end))
end

-- The proxy URL with the basic_auth credentials in it.
function Proxy:url_with_credentials()
  local auth = assert(self.basic_auth, "this proxy was started without basic_auth")
  return ("http://%s:%s@127.0.0.1:%d"):format(url_escape(auth.user), url_escape(auth.password), self.port)
end

function Proxy:log()
  return shell.read_file(self.dir .. "/tinyproxy.log") or ""
end

-- The request lines tinyproxy received, oldest first, as sent by the client:
-- "GET http://127.0.0.1:4567/__mock/stats HTTP/1.1", "CONNECT 127.0.0.1:4567 HTTP/1.1".
-- Refused ones (407) are included: tinyproxy logs a request before checking it.
function Proxy:requests()
  local lines = {}
  for line in self:log():gmatch("[^\n]+") do
    local request = line:match("%]: Request %(file descriptor %d+%): (.+)$")
    if request then
      lines[#lines + 1] = request
    end
  end
  return lines
end

-- Stops tinyproxy (SIGTERM), waits for it and removes its directory.
-- Returns its exit status, 0 for a clean stop (nil if it had to be killed).
function Proxy:stop()
  if self.pid then
    local function exited()
      return (shell.read_file(self.dir .. "/status") or ""):match("%d+")
    end
    shell.exec("kill -TERM " .. self.pid .. " 2>/dev/null")
    local status = shell.wait_for(exited, 10)
    if not status then
      shell.exec("kill -KILL " .. self.pid .. " 2>/dev/null")
      shell.wait_for(exited, 5)
    end
    self.pid = nil
    self.exit_status = status and tonumber(status)
    shell.exec("rm -rf " .. shell.quote(self.dir))
  end
  return self.exit_status
end

return M
