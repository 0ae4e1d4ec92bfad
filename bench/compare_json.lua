-- compare_json.lua: the JSON part of `make compare` (bench/compare.lua).
-- Every case of compare_json_cases.lua goes, as the same bytes, to
--   orbt       json_push_document (src/json.c), in C (bench/compare_json.c)
--   cJSON      cJSON_ParseWithOpts(text, &end, 1), in the same C program
--   lua-cjson  cjson.safe.decode, as installed (invalid numbers on, its default)
--              and with decode_invalid_numbers(false), its strict setting
--   dkjson     json.decode(text, 1, json.null), which returns where the value
--              ended and leaves what follows to the caller; and the same with
--              that end checked (only whitespace may follow)
-- and each outcome is scored against the case: accepted what must be
-- rejected, rejected what must be accepted, or a decoded value other than
-- the expected one (in the form of compare_canon.lua).
local canon = require("compare_canon")
local data = require("compare_json_cases")

local M = {}

local function hex(s)
  return (s:gsub(".", function(c) return ("%02x"):format(c:byte()) end))
end

-- A case's bytes for a reader: printable ASCII as it is, every other byte
-- as <HH> (no case has a printable "<" followed by hex and ">").
local function show(s)
  return (s:gsub(".", function(c)
    local b = c:byte()
    if b < 32 or b > 126 then
      return ("<%02x>"):format(b)
    end
  end))
end

local function cut(s, max)
  if #s > max then
    return s:sub(1, max) .. "…"
  end
  return s
end

local function label(case)
  local text = show(case.text)
  if #text <= 28 or not case.name then
    return "`" .. cut(text, 28) .. "`"
  end
  return case.name
end

local function run_c(bin, dir)
  local path = dir .. "/json_cases.hex"
  local f = assert(io.open(path, "wb"))
  for _, case in ipairs(data.cases) do
    f:write(hex(case.text), "\n")
  end
  f:close()
  local here = debug.getinfo(1, "S").source:sub(2):match("^(.*)/[^/]+$") or "bench"
  local pipe = assert(io.popen(("%s %s/compare_canon.lua %s"):format(bin, here, path), "r"))
  local out = pipe:read("a")
  assert(pipe:close(), "compare_json failed")
  local results, version = { orbt = {}, cjson = {} }, "?"
  for line in out:gmatch("[^\n]+") do
    local n, parser, status, what = line:match("^(%d+)\t(%w+)\t(%w+)\t(.*)$")
    if n then
      results[parser][tonumber(n)] = { ok = status == "ok", text = what }
    else
      version = line:match("^version\tcjson\t(.*)$") or error("compare_json: " .. line)
    end
  end
  for parser, list in pairs(results) do
    assert(#list == #data.cases, parser .. ": not every case has an outcome")
  end
  return results, version
end

-- decode(text) -> value | nil, reason; null is the parser's null.
local function run_lua(decode, null)
  local list = {}
  for i, case in ipairs(data.cases) do
    local ok, value, why = pcall(decode, case.text)
    if not ok then
      -- Without the file and line: a raised error's place is the library's.
      list[i] = { ok = false, text = "raised: " .. tostring(value):gsub("^[^:]*:%d+: ", "") }
    elseif value == nil then
      list[i] = { ok = false, text = tostring(why) }
    else
      list[i] = { ok = true, text = canon(value, null) }
    end
  end
  return list
end

-- Scores one parser's outcomes against the cases.
local function score(list)
  local s = { cases = 0, wrong_accepts = {}, wrong_rejects = {}, wrong_values = {} }
  for i, case in ipairs(data.cases) do
    local got = list[i]
    if case.kind == "accept" then
      s.cases = s.cases + 1
      if not got.ok then
        s.wrong_rejects[#s.wrong_rejects + 1] = label(case)
      elseif got.text ~= canon(case.value, data.NULL) then
        s.wrong_values[#s.wrong_values + 1] = ("%s gave `%s`"):format(label(case), cut(got.text, 40))
      end
    elseif case.kind == "reject" then
      s.cases = s.cases + 1
      if got.ok then
        s.wrong_accepts[#s.wrong_accepts + 1] = label(case)
      end
    end
  end
  return s
end

-- The scoring must be able to find every kind of wrong outcome in every
-- scored case: parsers that accept everything with a wrong value, or
-- refuse everything, must be wrong on each case.
local function check_scoring()
  local accepts, rejects = 0, 0
  for _, case in ipairs(data.cases) do
    if case.kind == "accept" then accepts = accepts + 1 end
    if case.kind == "reject" then rejects = rejects + 1 end
  end
  local everything, nothing, exact = {}, {}, {}
  for i, case in ipairs(data.cases) do
    everything[i] = { ok = true, text = "<not the value>" }
    nothing[i] = { ok = false, text = "refused" }
    if case.kind == "accept" then
      exact[i] = { ok = true, text = canon(case.value, data.NULL) }
    else
      exact[i] = { ok = false, text = "refused" }
    end
  end
  local s = score(everything)
  assert(#s.wrong_values == accepts and #s.wrong_accepts == rejects, "scoring misses wrong values or accepts")
  s = score(nothing)
  assert(#s.wrong_rejects == accepts and #s.wrong_accepts == 0, "scoring misses wrong rejects")
  s = score(exact)
  assert(#s.wrong_rejects + #s.wrong_accepts + #s.wrong_values == 0, "scoring faults right outcomes")
  return accepts, rejects
end

local function cell(s)
  return (s:gsub("|", "\\|"))
end

local function noted(got)
  if got.ok then
    return "accepts `" .. cell(cut(got.text, 24)) .. "`"
  end
  return "refuses (" .. cell(cut(got.text, 50)) .. ")"
end

-- Runs every parser; returns the markdown.
function M.run(opts)
  local accepts, rejects = check_scoring()
  local c, cjson_version = run_c(opts.bin, opts.dir)

  local cjson = require("cjson.safe")
  local strict = cjson.new()
  strict.decode_invalid_numbers(false)
  local dkjson = require("dkjson")
  local function dk_plain(text)
    local value, _, why = dkjson.decode(text, 1, dkjson.null)
    return value, why
  end
  local function dk_checked(text)
    local value, pos, why = dkjson.decode(text, 1, dkjson.null)
    if value ~= nil and text:find("^[ \t\r\n]*$", pos) == nil then
      return nil, "data after the value at " .. pos
    end
    return value, why
  end

  local parsers = {
    { name = "orbt (src/json.c)", list = c.orbt },
    { name = "cJSON " .. cjson_version .. " (ParseWithOpts, NUL-terminated)", list = c.cjson },
    { name = "lua-cjson " .. tostring(cjson._VERSION) .. " (cjson.safe, defaults)",
      list = run_lua(cjson.decode, cjson.null) },
    { name = "lua-cjson, decode_invalid_numbers(false)", list = run_lua(strict.decode, strict.null) },
    { name = tostring(dkjson.version) .. " (json.decode)", list = run_lua(dk_plain, dkjson.null) },
    { name = tostring(dkjson.version) .. ", end position checked", list = run_lua(dk_checked, dkjson.null) },
  }

  local out = {}
  local function say(line) out[#out + 1] = line end
  say(("### JSON: %d cases from RFC 8259 (%d must be accepted with an exact value, %d must be rejected)")
    :format(accepts + rejects, accepts, rejects))
  say("")
  say("orbt: `json_push_document` on the bytes and their length, in a Lua 5.4 state. cJSON: "
    .. "`cJSON_ParseWithOpts(text, &end, 1)` on the bytes with a NUL after them; numbers from `valuedouble`, "
    .. "strings from `valuestring`, a C string that ends at a NUL. lua-cjson: `cjson.safe.decode`. dkjson: "
    .. "`json.decode(text, 1, json.null)`. Values are compared in one form: integers exact, floats by their "
    .. "exact value (1 and 1.0 are alike), the sign of -0, strings byte for byte; an empty array and an empty "
    .. "object are alike, as a Lua table cannot tell them apart. A wrong value is one that differs without an "
    .. "error: RFC 8259 lets a parser limit precision, but an id of 9007199254740993 read as 9007199254740992 "
    .. "is another id. In case texts, `<HH>` is a raw byte.")
  say("")
  say("| parser | cases | wrong accepts | wrong rejects | wrong values |")
  say("|---|---:|---:|---:|---:|")
  for _, p in ipairs(parsers) do
    p.score = score(p.list)
    say(("| %s | %d | %d | %d | %d |"):format(p.name, p.score.cases, #p.score.wrong_accepts,
      #p.score.wrong_rejects, #p.score.wrong_values))
  end
  say("")
  say("The cases each parser got wrong:")
  say("")
  for _, p in ipairs(parsers) do
    local s, parts = p.score, {}
    if #s.wrong_accepts > 0 then parts[#parts + 1] = "accepted " .. table.concat(s.wrong_accepts, ", ") end
    if #s.wrong_rejects > 0 then parts[#parts + 1] = "rejected " .. table.concat(s.wrong_rejects, ", ") end
    if #s.wrong_values > 0 then parts[#parts + 1] = "wrong values: " .. table.concat(s.wrong_values, "; ") end
    say(("- %s: %s."):format(p.name, #parts > 0 and table.concat(parts, "; ") or "none"))
  end
  say("")
  -- The notes: the parsers as installed; a stricter setting is named only
  -- where it did otherwise.
  local shown = { parsers[1], parsers[2], parsers[3], parsers[5] }
  local variants = { { parsers[4], parsers[3] }, { parsers[6], parsers[5] } }
  say("Left to the parser by RFC 8259, not scored: what each did.")
  say("")
  local header, rule = { "case", "RFC 8259 section" }, { "---", "---" }
  for _, p in ipairs(shown) do
    header[#header + 1] = p.name
    rule[#rule + 1] = "---"
  end
  say("| " .. table.concat(header, " | ") .. " |")
  say("|" .. table.concat(rule, "|") .. "|")
  local differ = {}
  for i, case in ipairs(data.cases) do
    if case.kind == "note" then
      local where = label(case)
      if case.name and case.name ~= case.text and case.name ~= where then
        where = case.name .. " " .. where
      end
      local row = { where, case.why }
      for _, p in ipairs(shown) do
        row[#row + 1] = noted(p.list[i])
      end
      say("| " .. table.concat(row, " | ") .. " |")
      for _, v in ipairs(variants) do
        if noted(v[1].list[i]) ~= noted(v[2].list[i]) then
          differ[#differ + 1] = ("%s on %s: %s"):format(v[1].name, where, noted(v[1].list[i]))
        end
      end
    end
  end
  say("")
  if #differ == 0 then
    say("lua-cjson with decode_invalid_numbers(false), and dkjson with its end position checked, "
      .. "did the same as shown on each of these.")
  else
    say("Where the stricter settings did otherwise: " .. table.concat(differ, "; ") .. ".")
  end
  return table.concat(out, "\n") .. "\n"
end

return M
