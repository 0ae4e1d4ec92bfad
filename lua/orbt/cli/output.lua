-- orbt.cli.output: results on stdout as an aligned table (on a terminal),
-- one JSON object per line (the default elsewhere) or CSV. Numbers print
-- exactly as the core read them: integers as integers, other numbers in the
-- shortest form that reads back to the same double. Money fields print with
-- at least two decimals (50 as 50.00, 2.5 as 2.50, 0.125 as 0.125): digits
-- are added, never rounded away.
local csv = require("orbt.cli.csv")

local M = {}

local null -- orbt.null, set by M.set_null

function M.set_null(v)
  null = v
end

function M.number(x)
  if math.type(x) == "integer" then
    return ("%d"):format(x)
  end
  if x ~= x or x == math.huge or x == -math.huge then
    return "null"
  end
  if x == math.floor(x) and math.abs(x) < 2 ^ 63 then
    return ("%d"):format(math.tointeger(x))
  end
  for p = 1, 17 do
    local s = ("%." .. p .. "g"):format(x)
    if tonumber(s) == x then
      return s
    end
  end
  return ("%.17g"):format(x)
end

-- The fields that hold an amount of money, in the API's answers.
local MONEY = { amount = true, balance = true, walletBalance = true, initialFunds = true }

-- x as money: M.number's digits, with at least two decimals.
function M.money(x)
  local s = M.number(x)
  if s:find("[^%d.-]") then
    return s -- null, or an exponent: left as it is
  end
  local decimals = s:match("%.(%d*)$")
  if not decimals then
    return s .. ".00"
  end
  return #decimals == 1 and s .. "0" or s
end

local function number_text(v, key)
  return MONEY[key] and M.money(v) or M.number(v)
end

local function text(v, key)
  if v == nil or v == null then
    return ""
  elseif type(v) == "number" then
    return number_text(v, key)
  end
  return tostring(v)
end
M.text = text

local ESC = { ['"'] = '\\"', ["\\"] = "\\\\", ["\b"] = "\\b", ["\f"] = "\\f", ["\n"] = "\\n", ["\r"] = "\\r",
  ["\t"] = "\\t" }

local function json_string(s)
  return '"' .. s:gsub('[%c"\\]', function(c)
    return ESC[c] or ("\\u%04x"):format(c:byte())
  end) .. '"'
end

-- JSON text of a value: tables with keys 1..n are arrays, others objects
-- with their keys sorted (so output is stable).
function M.json(v, key)
  local t = type(v)
  if v == nil or v == null then
    return "null"
  elseif t == "number" then
    return number_text(v, key)
  elseif t == "boolean" then
    return tostring(v)
  elseif t == "string" then
    return json_string(v)
  elseif t == "table" then
    if #v > 0 then
      local parts = {}
      for i = 1, #v do
        parts[i] = M.json(v[i])
      end
      return "[" .. table.concat(parts, ",") .. "]"
    end
    local keys = {}
    for k in pairs(v) do
      keys[#keys + 1] = tostring(k)
    end
    table.sort(keys)
    local parts = {}
    for i, k in ipairs(keys) do
      parts[i] = json_string(k) .. ":" .. M.json(v[k], k)
    end
    return "{" .. table.concat(parts, ",") .. "}"
  end
  return json_string(tostring(v))
end

-- A writer of records. mode: "table", "json" or "csv"; columns: the fields
-- shown in table and CSV modes (JSON shows every field). write: where the
-- text goes (default io.stdout).
local Writer = {}
Writer.__index = Writer

function M.writer(mode, columns, stream)
  local self = setmetatable({ mode = mode, columns = columns, stream = stream or io.stdout, rows = {} }, Writer)
  if mode == "csv" then
    self.stream:write(csv.line(columns))
  end
  return self
end

function Writer:add(record)
  if self.mode == "json" then
    self.stream:write(M.json(record), "\n")
  elseif self.mode == "csv" then
    local values = {}
    for i, c in ipairs(self.columns) do
      values[i] = text(record[c], c)
    end
    self.stream:write(csv.line(values))
  else
    self.rows[#self.rows + 1] = record
  end
end

-- Table mode prints here, with every column as wide as its widest cell;
-- numbers are right-aligned.
function Writer:finish()
  if self.mode ~= "table" then
    self.stream:flush()
    return
  end
  local widths, cells = {}, {}
  for i, c in ipairs(self.columns) do
    widths[i] = #c
  end
  for r, record in ipairs(self.rows) do
    cells[r] = {}
    for i, c in ipairs(self.columns) do
      local s = text(record[c], c):gsub("[%c]", " ")
      cells[r][i] = { s, type(record[c]) == "number" }
      widths[i] = math.max(widths[i], utf8.len(s) or #s)
    end
  end
  local function line(values, numeric)
    local parts = {}
    for i, s in ipairs(values) do
      local pad = (" "):rep(widths[i] - (utf8.len(s) or #s))
      parts[i] = numeric[i] and (pad .. s) or (i == #values and s or s .. pad)
    end
    self.stream:write(table.concat(parts, "  "), "\n")
  end
  line(self.columns, {})
  for _, row in ipairs(cells) do
    local values, numeric = {}, {}
    for i, cell in ipairs(row) do
      values[i], numeric[i] = cell[1], cell[2]
    end
    line(values, numeric)
  end
  self.stream:flush()
end

return M
