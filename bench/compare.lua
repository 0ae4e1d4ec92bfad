-- compare.lua: `make compare`. orbt's two parsers of its own against the
-- libraries a user would otherwise get, on the same inputs:
--   JSON (bench/compare_json.lua): src/json.c against cJSON, lua-cjson and
--     dkjson on the cases of bench/compare_json_cases.lua;
--   HTTP/1.1 (bench/compare_http.lua): src/http1.c, through the client,
--     against the curl tool on exact server bytes over a loopback socket.
-- Prints markdown, also written to COMPARE_OUT (default
-- build/compare/results.md). COMPARE_BIN is the C half of the JSON part
-- (bench/compare_json.c, default build/compare/compare_json).
local shell = require("support.shell")
local compare_json = require("compare_json")
local compare_http = require("compare_http")

local out_path = os.getenv("COMPARE_OUT") or "build/compare/results.md"
local bin = os.getenv("COMPARE_BIN") or "build/compare/compare_json"
local dir = out_path:match("^(.*)/[^/]+$") or "."
assert(shell.exec("mkdir -p " .. shell.quote(dir .. "/http")))

local debian = (shell.read_file("/etc/debian_version") or "?"):gsub("%s+$", "")
local text = table.concat({
  "## orbt's parsers against the libraries they replace",
  "",
  ("`make compare` on %s, Debian %s, %s."):format(os.date("!%Y-%m-%d %H:%M UTC"), debian, _VERSION),
  "",
  compare_json.run({ bin = bin, dir = dir }),
  compare_http.run({ dir = dir .. "/http" }),
}, "\n")

io.write(text)
local f = assert(io.open(out_path, "w"))
f:write(text)
f:close()
io.write("\n(written to ", out_path, ")\n")
