-- Packaging: `luarocks make` with the scm rockspec, and `luarocks build`
-- with the release rockspec from the dist tarball, each install a module
-- that Lua loads from that tree alone.
local shell = require("support.shell")

local LUA = os.getenv("LUA") or "lua5.4"
local LUA_VERSION = LUA == "luajit" and "5.1" or LUA:match("(%d%.%d)$") or "5.4"

-- Loads orbt in a new interpreter with only `tree` on its paths (the
-- project's own build and lua/ are not on them). Returns its output (the
-- version, then the path orbt.so was loaded from) and whether it ran.
local function load_from(tree)
  local probe = [[
    local orbt = require("orbt")
    assert(orbt._VERSION and orbt.sign and orbt.new and orbt.null ~= nil)
    local c = assert(orbt.new{api_key = "k", client_id = "c", secret = "s"})
    assert(c.customers and c.customer_pages and c.create_customer and c.list_customers)
    io.write(orbt._VERSION, "\n")
    for template in package.cpath:gmatch("[^;]+") do -- package.searchpath is 5.2+
      local path = template:gsub("%?", "orbt")
      if io.open(path) then io.write(path, "\n") break end
    end
  ]]
  local v = LUA_VERSION
  local cmd = ("cd %s && LUA_PATH=%s LUA_CPATH=%s %s -e %s 2>&1"):format(shell.quote(tree),
    shell.quote(("%s/share/lua/%s/?.lua;%s/share/lua/%s/?/init.lua"):format(tree, v, tree, v)),
    shell.quote(("%s/lib/lua/%s/?.so"):format(tree, v)), LUA, shell.quote(probe))
  return shell.run(cmd)
end

describe("the rockspec", function()
  it("installs with luarocks make into a tree that lua loads orbt from", function()
    local tree = shell.tmpdir()
    -- luarocks builds in place, so it builds from a copy of the sources.
    local work = shell.tmpdir()
    assert.is_true(shell.exec(("cp -r src lua bin orbt-scm-1.rockspec %s/"):format(shell.quote(work))))
    -- The orbt command's dependencies (argparse, luv) are Debian packages
    -- here, which luarocks does not see, and no rock server is reachable.
    local out, ok = shell.run(("cd %s && luarocks --lua-version=%s make --deps-mode=none --tree %s "
      .. "orbt-scm-1.rockspec 2>&1")
      :format(shell.quote(work), LUA_VERSION, shell.quote(tree)))
    shell.exec("rm -rf " .. shell.quote(work))
    assert.is_true(ok, out)
    local loaded, loads = load_from(tree)
    local has_command = shell.exec(("test -x %s/bin/orbt"):format(shell.quote(tree)))
    shell.exec("rm -rf " .. shell.quote(tree))
    assert.is_true(has_command, "the rockspec installs bin/orbt")
    assert.is_true(loads, loaded)
    assert.matches("/lib/lua/" .. LUA_VERSION .. "/orbt.so", loaded, 1, true)
  end)
end)

-- The release: `luarocks build` with the release rockspec, as a user runs
-- it on the tarball of a GitHub release, but with the rockspec's source url
-- pointing at a local dist tarball: ORBT_DIST_TARBALL's (make distcheck sets
-- it), or else, in a git checkout, HEAD's made here as `make dist` makes it
-- (uncommitted changes are not in it; the scm case above builds the tree).
describe("the release rockspec", function()
  -- The tarball, and the version it is of (from its name, or HEAD's src/version.h).
  local function dist_tarball(work)
    local given = os.getenv("ORBT_DIST_TARBALL")
    if given and given ~= "" then
      return given, given:match("orbt%-([^/]+)%.tar%.gz$")
    end
    -- This directory must be the checkout's top, not a tarball unpacked inside another checkout.
    local top, in_git = shell.run("git rev-parse --show-toplevel 2>/dev/null")
    if not in_git or not shell.exec(("test %s -ef ."):format(shell.quote((top:gsub("%s+$", ""))))) then
      return nil
    end
    local header = shell.run("git show HEAD:src/version.h")
    local version = assert(header:match('\n#define ORBT_VERSION "([^"\n]*)"'), "HEAD's src/version.h has no version")
    local tar = ("%s/orbt-%s.tar"):format(work, version)
    local out, ok = shell.run(("git archive --format=tar --prefix=orbt-%s/ -o %s HEAD 2>&1 && gzip -n %s 2>&1")
      :format(version, shell.quote(tar), shell.quote(tar)))
    assert(ok, out)
    return tar .. ".gz", version
  end

  it("installs from the dist tarball with luarocks build into a tree that lua loads orbt from", function()
    local work = shell.tmpdir()
    local tarball, version = dist_tarball(work)
    if not tarball then
      shell.exec("rm -rf " .. shell.quote(work))
      pending("needs a git checkout, or ORBT_DIST_TARBALL (make distcheck sets it)")
      return
    end
    assert(version, "the tarball is not named orbt-VERSION.tar.gz: " .. tarball)
    assert(shell.exec("test -f " .. shell.quote(tarball)), "no tarball at " .. tarball)
    local tree = shell.tmpdir()
    finally(function()
      shell.exec("rm -rf " .. shell.quote(work) .. " " .. shell.quote(tree))
    end)
    -- The rockspec as the tarball holds it, its source url made file://.
    local name = ("orbt-%s-1.rockspec"):format(version)
    local rockspec, found = shell.run(("tar -xzOf %s %s 2>/dev/null"):format(shell.quote(tarball),
      shell.quote(("orbt-%s/%s"):format(version, name))))
    assert(found, "the tarball holds no " .. name)
    local count
    rockspec, count = rockspec:gsub('(\nsource = {\n%s*url = )"[^"\n]*"', function(prefix)
      return prefix .. ("%q"):format("file://" .. tarball)
    end)
    assert.equal(1, count, "no source url in " .. name)
    shell.write_file(work .. "/" .. name, rockspec)
    -- As in the scm case: the command's dependencies are Debian packages here.
    local out, ok = shell.run(("cd %s && luarocks --lua-version=%s build --deps-mode=none --tree %s %s 2>&1")
      :format(shell.quote(work), LUA_VERSION, shell.quote(tree), name))
    assert.is_true(ok, out)
    local loaded, loads = load_from(tree)
    assert.is_true(loads, loaded)
    assert.equal(version, loaded:match("^[^\n]*"))
    assert.matches("/lib/lua/" .. LUA_VERSION .. "/orbt.so", loaded, 1, true)
    assert.is_true(shell.exec(("test -x %s/bin/orbt"):format(shell.quote(tree))), "the rockspec installs bin/orbt")
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
