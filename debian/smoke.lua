-- The package build's smoke test, run by dh-lua on every Lua version and on
-- LuaJIT, before the files are installed: the module loads with its Lua
-- layer, carries the version src/version.h gives, signs as the documented
-- example does, and refuses bad settings with an error value.
if jit then
  -- dh-lua builds no C part for LuaJIT: it loads the Lua 5.1 build, as it
  -- will from /usr/lib/<multiarch>/lua/5.1 once installed.
  package.cpath = "5.1-orbt/?.so;" .. package.cpath
end
local orbt = require("orbt")

local header = assert(io.open("src/version.h")):read("*a")
local version = assert(header:match('#define ORBT_VERSION "([^"]+)"'))
assert(orbt._VERSION == version, "orbt._VERSION " .. tostring(orbt._VERSION) .. ", src/version.h " .. version)
assert(type(require("orbt.pager")) == "table" and type(require("orbt.cosocket")) == "table")

-- docs/api.md's example, which openssl reproduces.
local headers = assert(orbt.sign{
  method = "POST", body = '{"fullName":"Jane Smith"}', client_id = "3f1c2a9e-8b7d-4e6f-9a01-23456789abcd",
  api_key = "key", secret = "secret", timestamp = "2026-06-03T10:00:00.000Z",
})
assert(headers["x-body-hash"] == "wGY5RWQimjY0RlMUPuiB++BA/8xJod64ykynjrXt9oc=", headers["x-body-hash"])
assert(headers["x-signature"] == "q97YOQ55ZRVV0LqKxcc+wW0O3cIuUTAaGQnxuDBH0eo=", headers["x-signature"])

local none, err = orbt.sign{ method = "GET", api_key = "key", secret = "secret" }
assert(none == nil and orbt.is_error(err) and err.kind == "invalid", tostring(err))

print(("orbt %s on %s: loads, signs, refuses"):format(orbt._VERSION, jit and jit.version or _VERSION))
