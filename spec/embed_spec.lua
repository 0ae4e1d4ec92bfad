-- examples/embed: a C host program that links orbt statically (liborbt.a),
-- registers it in package.preload and runs a Lua script that creates, lists
-- and walks consumers through orbt-mock. Built and run on every runtime.
local harness = require("support.harness")
local shell = require("support.shell")

describe("a C host embedding Lua with orbt linked in", function()
  local env = harness.with_mock{ client = false, reset = false }

  it("builds with make embed and runs a script that creates, lists and walks", function()
    local out, built = shell.run(("make --no-print-directory embed %s 2>&1")
      :format(os.getenv("ORBT_MAKE_ARGS") or ""))
    assert.is_true(built, out)
    local binary = assert(os.getenv("ORBT_BUILD")) .. "/orbt-embed"

    -- orbt is inside the program: no shared orbt.so is loaded.
    local symbols = shell.run("nm " .. shell.quote(binary))
    assert.matches(" T luaopen_orbt\n", symbols, 1, true)
    local libraries = shell.run("ldd " .. shell.quote(binary))
    assert.is_nil(libraries:find("orbt", 1, true), libraries)

    -- An empty cpath: require("orbt") can only be served by package.preload.
    local vars = {
      ORBT_BASE_URL = env.mock.url, ORBT_API_KEY = env.mock.api_key, ORBT_CLIENT_ID = env.mock.client_id,
      ORBT_SECRET = env.mock.secret, LUA_PATH = "lua/?.lua", LUA_CPATH = "",
      LUA_PATH_5_2 = "lua/?.lua", LUA_CPATH_5_2 = "", LUA_PATH_5_3 = "lua/?.lua", LUA_CPATH_5_3 = "",
      LUA_PATH_5_4 = "lua/?.lua", LUA_CPATH_5_4 = "",
    }
    local assignments = {}
    for name, value in pairs(vars) do
      assignments[#assignments + 1] = name .. "=" .. shell.quote(value)
    end
    local ran
    out, ran = shell.run(("%s %s examples/embed/script.lua 2>&1")
      :format(table.concat(assignments, " "), shell.quote(binary)))
    assert.is_true(ran, out)
    assert.matches("embedded: " .. require("orbt")._VERSION .. " on ", out, 1, true)
    assert.matches("created 101 Embedded 1 25.00\n", out, 1, true)
    assert.matches("created 102 Embedded 2 19.99\n", out, 1, true)
    assert.matches("listed 1 hasNext=true\n", out, 1, true)
    assert.matches("walked 2\n", out, 1, true)

    local stats = env.mock:stats()
    assert.equal(2, stats.consumers)
    assert.equal(0, stats.auth_failures)
    assert.equal(5, stats.requests_total) -- 2 creates, 1 list, 2 pages of the walk
  end)

  it("puts no name into the host but luaopen_orbt and orbt_ ones", function()
    local out, built = shell.run(("make --no-print-directory embed %s 2>&1")
      :format(os.getenv("ORBT_MAKE_ARGS") or ""))
    assert.is_true(built, out)
    local archive = assert(os.getenv("ORBT_BUILD")) .. "/liborbt.a"
    local symbols, listed = shell.run("nm -g --defined-only " .. shell.quote(archive))
    assert.is_true(listed, symbols)
    -- Every defined global: luaopen_orbt, or a name with orbt's prefix.
    local unprefixed = {}
    for name in symbols:gmatch("\n%x+ %u ([^\n]+)") do
      if not name:match("^orbt_") then
        unprefixed[#unprefixed + 1] = name
      end
    end
    assert.same({ "luaopen_orbt" }, unprefixed)
    -- The helpers are inside, but local: a host's own buffer_init cannot clash.
    local all = shell.run("nm " .. shell.quote(archive))
    assert.matches(" t buffer_init\n", all, 1, true)
    assert.matches(" t transport_perform\n", all, 1, true)
  end)
end)
