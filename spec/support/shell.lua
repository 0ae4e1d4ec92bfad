-- support/shell.lua: small process helpers for specs (plain Lua, no C libraries).
local M = {}

function M.quote(s)
  return "'" .. tostring(s):gsub("'", "'\\''") .. "'"
end

-- Under `make test SANITIZE=1` only the Lua interpreter needs the sanitizer
-- runtimes preloaded; the tools specs start (curl, openssl, luarocks, the
-- mock, which is built with them) must not inherit the preload.
local CLEAN_ENV = "unset LD_PRELOAD ASAN_OPTIONS UBSAN_OPTIONS; "

-- Runs a shell command; returns its stdout and whether it exited 0. The
-- status travels on the last line because Lua 5.1's pipe:close() drops it.
function M.run(cmd)
  local pipe = assert(io.popen(CLEAN_ENV .. "{ " .. cmd .. "\n}; echo \"orbt-status:$?\"", "r"))
  local out = pipe:read("*a")
  pipe:close()
  local body, status = out:match("^(.-)orbt%-status:(%d+)%s*$")
  return body or out, status == "0"
end

-- Runs a shell command for its effect; returns whether it exited 0
-- (os.execute gives true in Lua 5.2+, and 0 in Lua 5.1).
function M.exec(cmd)
  local result = os.execute(CLEAN_ENV .. cmd)
  return result == true or result == 0
end

-- A command line that runs a Lua script in a new interpreter with this
-- project's paths, with the sanitizer runtimes when the specs run under them.
function M.lua_command(script, env)
  local parts = {}
  for name, value in pairs(env or {}) do
    parts[#parts + 1] = name .. "=" .. M.quote(value)
  end
  local preload = os.getenv("ORBT_LUA_PRELOAD")
  if preload and preload ~= "" then
    parts[#parts + 1] = "LD_PRELOAD=" .. M.quote(preload) .. " ASAN_OPTIONS=detect_leaks=0"
  end
  for _, name in ipairs{ "LUA_PATH", "LUA_CPATH" } do
    parts[#parts + 1] = name .. "=" .. M.quote(os.getenv(name) or "")
  end
  return table.concat(parts, " ") .. " " .. (os.getenv("LUA") or "lua5.4") .. " -e " .. M.quote(script)
end

-- A port for a server a spec starts, below Linux's ephemeral range (where
-- `--port 0` servers and outgoing connections take theirs). Whoever starts
-- the server tries another when it is taken.
function M.random_port()
  local n = M.run("od -An -N2 -tu2 /dev/urandom"):gsub("%s", "")
  return 20000 + (tonumber(n) % 12000)
end

-- Sends pid `signal` and waits up to `seconds` for it to be gone.
-- Whether process pid runs. A server a spec started in the background
-- (nginx's master) is no child of the spec run: once it exits it may stay a
-- zombie until init reaps it, which kill -0 cannot tell from a live process.
function M.running(pid)
  local f = io.open("/proc/" .. pid .. "/stat", "r")
  if not f then
    return false
  end
  local stat = f:read("*a") or ""
  f:close()
  return stat:match("^%d+ %b() (%a)") ~= "Z"
end

-- Sends pid `signal`; returns whether it was gone within `seconds` (10).
function M.stop_process(pid, signal, seconds)
  M.exec(("kill -%s %d 2>/dev/null"):format(signal, pid))
  return M.wait_for(function()
    return not M.running(pid)
  end, seconds or 10) ~= nil
end

function M.sleep(seconds)
  M.exec("sleep " .. seconds)
end

function M.tmpdir()
  local dir = M.run("mktemp -d"):gsub("%s+$", "")
  return dir
end

function M.read_file(path)
  local f = io.open(path, "rb")
  if not f then
    return nil
  end
  local data = f:read("*a")
  f:close()
  return data
end

function M.write_file(path, data)
  local f = assert(io.open(path, "wb"))
  f:write(data)
  f:close()
end

-- Waits until check() returns a true value or `seconds` pass.
function M.wait_for(check, seconds)
  local deadline = os.time() + (seconds or 10)
  repeat
    local value = check()
    if value then
      return value
    end
    M.sleep(0.02)
  until os.time() > deadline
  return nil
end

return M
