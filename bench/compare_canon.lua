-- compare_canon.lua: one line of printable ASCII for a decoded JSON value,
-- so that the values of every parser in `make compare` (bench/compare.lua)
-- and the expected values of the cases can be compared as strings.
-- bench/compare_json.c writes the same form for cJSON's values in C; the
-- two must stay alike.
--
--   null            null
--   true, false     true, false
--   a number        an integer as %d; a float 0 as 0 or -0 (its sign kept),
--                   integral below 1e21 as %.0f (its exact value), else
--                   %.17g; NaN as nan, infinities as inf and -inf. So the
--                   integer 1 and the float 1.0 are both 1, and the float
--                   9007199254740992.0 is not the integer 9007199254740993.
--   a string        "..." with bytes 0x20-0x7e as they are, except " and \,
--                   and every other byte as \xHH: byte-exact
--   an array        [a,b,c]; a table whose keys are exactly 1..n
--   an object       {"k":v,...} in the order of the keys' own forms; a key
--                   that is not a string as #<number>
--   empty           {} for an empty array and an empty object alike: a Lua
--                   table cannot tell them apart
--
-- canon(value, null) takes the parser's null value (a light userdata for
-- orbt and lua-cjson, json.null for dkjson).

local function number(v)
  if math.type(v) == "integer" then
    return ("%d"):format(v)
  end
  if v ~= v then
    return "nan"
  end
  if v == math.huge then
    return "inf"
  end
  if v == -math.huge then
    return "-inf"
  end
  if v == 0 then
    return 1 / v < 0 and "-0" or "0"
  end
  if v == math.floor(v) and math.abs(v) < 1e21 then
    return ("%.0f"):format(v)
  end
  return ("%.17g"):format(v)
end

local function str(s)
  -- Printable ASCII but " and \ as they are; every other byte escaped.
  local escaped = s:gsub(".", function(c)
    local b = c:byte()
    if b < 32 or b > 126 or b == 34 or b == 92 then
      return ("\\x%02x"):format(b)
    end
  end)
  return '"' .. escaped .. '"'
end

local canon

local function is_array(t)
  local n = 0
  for k in pairs(t) do
    if math.type(k) ~= "integer" or k < 1 then
      return false
    end
    n = n + 1
  end
  return n > 0 and n == #t, n
end

function canon(v, null)
  if v == nil or (null ~= nil and rawequal(v, null)) then
    return "null"
  end
  local t = type(v)
  if t == "boolean" then
    return tostring(v)
  elseif t == "number" then
    return number(v)
  elseif t == "string" then
    return str(v)
  elseif t ~= "table" then
    return "<" .. t .. ">"
  end
  local parts = {}
  if is_array(v) then
    for i = 1, #v do
      parts[i] = canon(v[i], null)
    end
    return "[" .. table.concat(parts, ",") .. "]"
  end
  for k, item in pairs(v) do
    local key = type(k) == "string" and str(k) or "#" .. tostring(k)
    parts[#parts + 1] = { key, canon(item, null) }
  end
  table.sort(parts, function(a, b) return a[1] < b[1] end)
  for i, p in ipairs(parts) do
    parts[i] = p[1] .. ":" .. p[2]
  end
  return "{" .. table.concat(parts, ",") .. "}"
end

return canon
