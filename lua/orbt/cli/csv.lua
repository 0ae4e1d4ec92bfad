-- orbt.cli.csv: CSV as RFC 4180 has it, read the way Python's csv module
-- reads it with strict=True (the reference the specs compare against):
-- quoted fields may hold commas, quotes ("") and line ends; records end with
-- CRLF, LF or a lone CR; a UTF-8 BOM is dropped; blank lines are skipped; a
-- quote inside an unquoted field is an ordinary character. Text after a
-- closing quote, and a quoted field that never closes, are errors that name
-- the line.
local M = {}

local find, sub, byte = string.find, string.sub, string.byte
local QUOTE, COMMA, CR, LF = 34, 44, 13, 10

local function count_lines(s, i, j)
  local n, at = 0, i
  while true do
    local cr_or_lf = find(s, "[\r\n]", at)
    if not cr_or_lf or cr_or_lf > j then
      return n
    end
    -- CRLF is one line end
    if byte(s, cr_or_lf) == CR and byte(s, cr_or_lf + 1) == LF and cr_or_lf + 1 <= j then
      cr_or_lf = cr_or_lf + 1
    end
    n = n + 1
    at = cr_or_lf + 1
  end
end

-- Reads all of text. Returns a list of records, each a list of field strings
-- with .line, the physical line (1-based) the record starts on; or nil and
-- {line =, message =}.
function M.parse(text)
  local records = {}
  local pos, len, line = 1, #text, 1
  if sub(text, 1, 3) == "\239\187\191" then
    pos = 4
  end
  while pos <= len do
    local record = { line = line }
    local blank = true
    while true do
      local c = byte(text, pos)
      local field
      if c == QUOTE then
        blank = false
        local parts = {}
        local at = pos + 1
        while true do
          local q = find(text, '"', at, true)
          if not q then
            return nil, { line = record.line, message = "a quoted field that starts on this line never closes" }
          end
          parts[#parts + 1] = sub(text, at, q - 1)
          line = line + count_lines(text, at, q - 1)
          if byte(text, q + 1) == QUOTE then
            parts[#parts + 1] = '"'
            at = q + 2
          else
            pos = q + 1
            break
          end
        end
        field = table.concat(parts)
        c = byte(text, pos)
        if c ~= nil and c ~= COMMA and c ~= CR and c ~= LF then
          return nil, { line = line, message = "text after a closing quote (a quote inside a field is written \"\")" }
        end
      else
        local stop = find(text, "[,\r\n]", pos)
        if stop then
          field = sub(text, pos, stop - 1)
          pos = stop
        else
          field = sub(text, pos)
          pos = len + 1
        end
        if field ~= "" then
          blank = false
        end
        c = byte(text, pos)
      end
      record[#record + 1] = field
      if c == COMMA then
        blank = false
        pos = pos + 1
      else
        -- the end of the record: CRLF, CR, LF or the end of the text
        if c == CR and byte(text, pos + 1) == LF then
          pos = pos + 2
        elseif c ~= nil then
          pos = pos + 1
        end
        if c ~= nil then
          line = line + 1
        end
        break
      end
    end
    if not blank then
      records[#records + 1] = record
    end
  end
  return records
end

-- One field as CSV writes it: quoted when it holds a comma, a quote or a line end.
function M.field(s)
  s = tostring(s == nil and "" or s)
  if find(s, '[,"\r\n]') then
    return '"' .. s:gsub('"', '""') .. '"'
  end
  return s
end

-- One record (a list of values) as a CSV line with its CRLF.
function M.line(values)
  local out = {}
  for i = 1, #values do
    out[i] = M.field(values[i])
  end
  return table.concat(out, ",") .. "\r\n"
end

return M
