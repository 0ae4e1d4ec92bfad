-- support/runtime.lua: what differs between the Lua runtimes the specs run on.
local M = {}

-- Lua 5.3+ has integers and math.type; on 5.1, 5.2 and LuaJIT every number
-- is a double, and an integer result is one with no fraction.
function M.number_type(v)
  if math.type then
    return math.type(v)
  end
  return v == math.floor(v) and "integer" or "float"
end

return M
