-- support/nginx.lua: a real nginx (Debian's, with its Lua module) for specs,
-- configured from spec/nginx/nginx.conf, on free loopback ports.
local certs = require("support.certs")
local shell = require("support.shell")

local M = {}
local Nginx = {}
Nginx.__index = Nginx

local function lua_string(s)
  return ("%q"):format(s)
end

local function settings_literal(settings)
  local parts = {}
  for k, v in pairs(settings) do
    parts[#parts + 1] = ("%s = %s"):format(k, lua_string(v))
  end
  return "{ " .. table.concat(parts, ", ") .. " }"
end

local random_port = shell.random_port

local function env_lines(env)
  local lines = {}
  for name, value in pairs(env or {}) do
    lines[#lines + 1] = ("env %s=%s;"):format(name, value)
  end
  return table.concat(lines, "\n")
end

local function fill_template(text, values)
  return (text:gsub("@([%u_]+)@", function(name)
    return assert(values[name], "no value for @" .. name .. "@")
  end))
end

-- Starts nginx. opts.settings: the table handlers see as spec_settings.
-- opts.env: environment variables the workers see ({name = value}), as
-- nginx.conf's `env` directive sets them. Ports are picked at random and
-- picked again if taken.
function M.start(opts)
  local dir = shell.tmpdir()
  assert(shell.exec("mkdir -p " .. shell.quote(dir .. "/tmp")))
  certs.make(dir)   -- ca.pem, server.pem/.key, untrusted.pem/.key, as nginx.conf names them
  local template = assert(shell.read_file("spec/nginx/nginx.conf"))
  local root = shell.run("pwd"):gsub("%s+$", "")
  local build = assert(os.getenv("ORBT_BUILD"), "ORBT_BUILD names the module's build directory")
  local is_root = shell.run("id -u"):gsub("%s", "") == "0"
  -- A DNS server that never answers: a UDP socket bound and never read.
  local silent_dns = assert(require("socket").udp())
  assert(silent_dns:setsockname("127.0.0.1", 0))
  local _, dns_port = silent_dns:getsockname()
  for _ = 1, 5 do
    local port, tls_port, untrusted_port = random_port(), random_port(), random_port()
    local settings = {}
    for k, v in pairs(opts.settings) do
      settings[k] = v
    end
    settings.tls_url = ("https://localhost:%d"):format(tls_port)
    settings.untrusted_url = ("https://localhost:%d"):format(untrusted_port)
    settings.ca_file = dir .. "/ca.pem"
    local conf = fill_template(template, {
      PREFIX = dir, PORT = tostring(port), TLS_PORT = tostring(tls_port),
      UNTRUSTED_PORT = tostring(untrusted_port), DNS_PORT = tostring(dns_port),
      -- As root the worker would run as nobody and could not read the
      -- temporary directory; it stays root, on loopback, for the specs.
      USER = is_root and "user root;" or "",
      LUA_PATH = root .. "/lua/?.lua;" .. root .. "/spec/?.lua",
      LUA_CPATH = build .. "/?.so",
      MOCK_URL = opts.settings.mock_url,
      SETTINGS = settings_literal(settings),
      ENV = env_lines(opts.env),
    })
    shell.write_file(dir .. "/nginx.conf", conf)
    local self = setmetatable({ dir = dir, port = port, url = ("http://127.0.0.1:%d"):format(port),
      settings = settings, silent_dns = silent_dns }, Nginx)
    -- Under SANITIZE=1 the module is built with the sanitizers: nginx loads
    -- their runtimes first, like the Lua interpreter does.
    local preload = os.getenv("ORBT_LUA_PRELOAD")
    local env = preload and preload ~= ""
      and ("LD_PRELOAD=%s ASAN_OPTIONS=detect_leaks=0 "):format(shell.quote(preload)) or ""
    shell.exec(("%snginx -p %s -c %s -e %s >%s 2>&1 &"):format(env, shell.quote(dir), shell.quote(dir .. "/nginx.conf"),
      shell.quote(dir .. "/error.log"), shell.quote(dir .. "/stdout")))
    local up = shell.wait_for(function()
      local _, answered = shell.run(("curl -sf --max-time 2 %s/ping"):format(self.url))
      if answered then
        return "up"
      end
      local log = shell.read_file(dir .. "/error.log") or ""
      if log:find("emerg", 1, true) then
        return "failed"
      end
      return nil
    end, 15)
    if up == "up" then
      self.pid = tonumber(shell.wait_for(function()
        return (shell.read_file(dir .. "/nginx.pid") or ""):match("%d+")
      end, 10))
      return self
    end
    local log = shell.read_file(dir .. "/error.log") or ""
    if not log:find("Address already in use", 1, true) then
      error("nginx did not start:\n" .. log:sub(-4000) .. (shell.read_file(dir .. "/stdout") or ""))
    end
    shell.exec("rm -f " .. shell.quote(dir .. "/error.log"))
  end
  error("nginx found no free port in 5 tries")
end

-- GET path on nginx; returns status and body.
function Nginx:get(path)
  local out = shell.run(("curl -s --max-time 60 -o %s -w '%%{http_code}' %s"):format(
    shell.quote(self.dir .. "/answer"), shell.quote(self.url .. path)))
  return tonumber(out) or 0, shell.read_file(self.dir .. "/answer") or ""
end

-- POST body (JSON) to path on nginx; returns status and body.
function Nginx:post(path, body)
  shell.write_file(self.dir .. "/request", body)
  local out = shell.run(("curl -s --max-time 60 -o %s -w '%%{http_code}' -H 'Content-Type: application/json' "
    .. "--data-binary @%s %s"):format(shell.quote(self.dir .. "/answer"), shell.quote(self.dir .. "/request"),
    shell.quote(self.url .. path)))
  return tonumber(out) or 0, shell.read_file(self.dir .. "/answer") or ""
end

-- Sends `count` GETs of path at once (curl --parallel); returns the bodies.
function Nginx:get_parallel(path, count)
  local urls, outputs = {}, {}
  for i = 1, count do
    outputs[i] = ("%s/parallel%d"):format(self.dir, i)
    urls[#urls + 1] = ("-o %s %s"):format(shell.quote(outputs[i]), shell.quote(self.url .. path))
  end
  local out, ok = shell.run(("curl -s --max-time 120 --parallel --parallel-immediate --parallel-max %d %s 2>&1")
    :format(count, table.concat(urls, " ")))
  assert(ok, out)
  local bodies = {}
  for i = 1, count do
    bodies[i] = shell.read_file(outputs[i]) or ""
  end
  return bodies
end

-- The TLS server's log: one table per request (connection, request on the
-- connection, whether the TLS session was resumed, the URI).
function Nginx:tls_log()
  local entries = {}
  for line in (shell.read_file(self.dir .. "/tls.log") or ""):gmatch("[^\n]+") do
    local connection, number, reused, uri = line:match("^(%d+) (%d+) (%S+) (%S+)$")
    entries[#entries + 1] = { connection = connection, number = tonumber(number), resumed = reused == "r",
      uri = uri }
  end
  return entries
end

function Nginx:error_log()
  return shell.read_file(self.dir .. "/error.log") or ""
end

-- Stops nginx (graceful QUIT) and removes its directory; returns its error log.
function Nginx:stop()
  local log = self:error_log()
  if self.pid then
    shell.stop_process(self.pid, "QUIT")
    self.pid = nil
  end
  shell.exec("rm -rf " .. shell.quote(self.dir))
  self.silent_dns:close()
  return log
end

return M
