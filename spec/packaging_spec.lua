-- Packaging: `luarocks make` with the rockspec installs a module that Lua
-- loads from that tree alone.
local shell = require("support.shell")

describe("the rockspec", function()
  it("installs with luarocks make into a tree that lua loads orbt from", function()
    local lua = os.getenv("LUA") or "lua5.4"
    local version = lua == "luajit" and "5.1" or lua:match("(%d%.%d)$") or "5.4"
    local tree = shell.tmpdir()
    -- luarocks builds in place, so it builds from a copy of the sources.
    local work = shell.tmpdir()
    assert.is_true(shell.exec(("cp -r src lua bin orbt-scm-1.rockspec %s/"):format(shell.quote(work))))
    -- The orbt command's dependencies (argparse, luv) are Debian packages
    -- here, which luarocks does not see, and no rock server is reachable.
    local out, ok = shell.run(("cd %s && luarocks --lua-version=%s make --deps-mode=none --tree %s "
      .. "orbt-scm-1.rockspec 2>&1")
      :format(shell.quote(work), version, shell.quote(tree)))
    shell.exec("rm -rf " .. shell.quote(work))
    assert.is_true(ok, out)
    -- Only the tree: the project's own build and lua/ are not on the paths.
    local probe = [[
      local orbt = require("orbt")
      assert(orbt._VERSION and orbt.sign and orbt.new and orbt.null ~= nil)
      local c = assert(orbt.new{api_key = "k", client_id = "c", secret = "s"})
      assert(c.customers and c.customer_pages and c.create_customer and c.list_customers)
      for template in package.cpath:gmatch("[^;]+") do -- package.searchpath is 5.2+
        local path = template:gsub("%?", "orbt")
        if io.open(path) then io.write(path, "\n") break end
      end
    ]]
    local cmd = ("cd %s && LUA_PATH=%s LUA_CPATH=%s %s -e %s 2>&1"):format(shell.quote(tree),
      shell.quote(("%s/share/lua/%s/?.lua;%s/share/lua/%s/?/init.lua"):format(tree, version, tree, version)),
      shell.quote(("%s/lib/lua/%s/?.so"):format(tree, version)), lua, shell.quote(probe))
    local loaded, loads = shell.run(cmd)
    local has_command = shell.exec(("test -x %s/bin/orbt"):format(shell.quote(tree)))
    shell.exec("rm -rf " .. shell.quote(tree))
    assert.is_true(has_command, "the rockspec installs bin/orbt")
    assert.is_true(loads, loaded)
    assert.matches("/lib/lua/" .. version .. "/orbt.so", loaded, 1, true)
  end)
end)

-- Every C file builds warning-free (-Wall -Wextra -Werror -Wformat=2...)
-- with gcc and with clang: `make CC=clang` builds the module, orbt-mock and
-- the embedding host. Once, on the Lua 5.4 pass.
describe("make CC=clang", function()
  if os.getenv("ORBT_RUNTIME") ~= "lua5.4" then
    pending("runs on the Lua 5.4 pass")
    return
  end
  it("builds the module, orbt-mock and the embedding host warning-free", function()
    local top = shell.tmpdir()
    local out, ok = shell.run(("make --no-print-directory CC=clang RUNTIME=lua5.4 TOP=%s %s/lua5.4/orbt.so "
      .. "%s/orbt-mock %s/lua5.4/orbt-embed 2>&1"):format(shell.quote(top), top, top, top))
    shell.exec("rm -rf " .. shell.quote(top))
    assert.is_true(ok, out)
    assert.matches("clang ", out, 1, true)
    assert.is_nil(out:find("warning:", 1, true), out)
  end)
end)
