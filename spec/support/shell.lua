-- support/shell.lua: small process helpers for specs (plain Lua, no C libraries).
local M = {}

function M.quote(s)
  return "'" .. tostring(s):gsub("'", "'\\''") .. "'"
end

-- Runs a shell command; returns its stdout and whether it exited 0.
function M.run(cmd)
  local pipe = assert(io.popen(cmd, "r"))
  local out = pipe:read("a")
  local ok = pipe:close()
  return out, ok == true
end

function M.sleep(seconds)
  os.execute("sleep " .. seconds)
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
  local data = f:read("a")
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
