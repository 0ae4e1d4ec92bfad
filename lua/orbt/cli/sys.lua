-- orbt.cli.sys: what the orbt command needs from the operating system --
-- signals, isatty, fsync, a monotonic clock, starting a detached process --
-- in one place, on luv (libuv's Lua binding, Debian's lua-luv). Debian 12's
-- lua-posix is built for Lua 5.1 to 5.3 only; luv has a Lua 5.4 build, and
-- libuv's one-shot signal handlers (SA_RESETHAND) give the "a second Ctrl-C
-- exits at once" behaviour even while a call is blocked inside the C core.
local uv = require("luv")

local M = {}

function M.isatty(fd)
  return uv.guess_handle(fd) == "tty"
end

-- Seconds since an arbitrary point, monotonic, fractional.
function M.now()
  return uv.hrtime() / 1e9
end

function M.sleep(seconds)
  uv.sleep(math.floor(seconds * 1000))
end

function M.pid()
  return math.tointeger(uv.os_getpid())
end

-- st_mode of a path, or nil, message.
function M.mode(path)
  local st, err = uv.fs_stat(path)
  if not st then
    return nil, err
  end
  return st.mode
end

-- The whole file at path, or nil and io.open's message.
function M.read_file(path)
  local f, err = io.open(path, "rb")
  if not f then
    return nil, err
  end
  local text = f:read("a")
  f:close()
  return text
end

-- An append-only file whose writes reach the disk before sync() returns.
local Appender = {}
Appender.__index = Appender

function M.append_file(path)
  local fd, err = uv.fs_open(path, "a", tonumber("644", 8))
  if not fd then
    return nil, err
  end
  return setmetatable({ fd = fd }, Appender)
end

function Appender:write(data)
  local off = 1
  while off <= #data do
    local n, err = uv.fs_write(self.fd, off == 1 and data or data:sub(off), -1)
    if not n then
      return nil, err
    end
    off = off + n
  end
  return true
end

function Appender:sync()
  return uv.fs_fsync(self.fd)
end

function Appender:close()
  if self.fd then
    uv.fs_close(self.fd)
    self.fd = nil
  end
end

-- Catches the first SIGINT and the first SIGTERM. on_signal(name) runs from
-- M.poll(), between calls. Each handler is one-shot: the kernel puts the
-- default action back as it delivers the signal, so the next one of the same
-- kind ends the process at once, wherever it is. After the first signal of
-- either kind, the other is given back its default action too.
local watchers = {}

function M.trap(on_signal)
  for _, name in ipairs{ "sigint", "sigterm" } do
    local w = uv.new_signal()
    watchers[name] = w
    uv.signal_start_oneshot(w, name, function(signame)
      for other, ow in pairs(watchers) do
        if other ~= signame then
          ow:stop() -- libuv restores the default action of a signal no one watches
        end
      end
      on_signal(signame)
    end)
  end
end

-- Runs the signal callbacks of signals that arrived since the last poll.
function M.poll()
  uv.run("nowait")
end

-- Starts a program detached from this process (its own session), stdin from
-- /dev/null, stdout and stderr into files. env: list of "NAME=value"
-- added to this process's environment. Returns the pid, or nil, message.
function M.spawn_detached(file, args, env, stdout_path, stderr_path)
  local environ = {}
  for k, v in pairs(uv.os_environ()) do
    environ[#environ + 1] = k .. "=" .. v
  end
  for _, kv in ipairs(env or {}) do
    environ[#environ + 1] = kv
  end
  local null = assert(uv.fs_open("/dev/null", "r", 0))
  local out, err = uv.fs_open(stdout_path, "w", tonumber("600", 8))
  if not out then
    return nil, err
  end
  local log = assert(uv.fs_open(stderr_path, "w", tonumber("600", 8)))
  local handle, pid = uv.spawn(file, { args = args, env = environ, stdio = { null, out, log }, detached = true },
    function() end)
  uv.fs_close(null)
  uv.fs_close(out)
  uv.fs_close(log)
  if not handle then
    return nil, pid
  end
  handle:unref()
  return math.tointeger(pid)
end

function M.alive(pid)
  return uv.kill(pid, 0) == 0
end

return M
