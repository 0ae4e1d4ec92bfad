-- version_spec: one version everywhere. src/version.h is the one place it
-- is written; the module, the User-Agent orbt-mock receives, the release
-- rockspec (its name, version and source), CHANGELOG.md, debian/changelog,
-- the releases the README names, `orbt --version` and `orbt-mock --version`
-- must all say the same. Runs on every runtime; the
-- orbt command's part on the Lua 5.4 pass, where the command runs.
local cli = require("support.cli")
local harness = require("support.harness")
local shell = require("support.shell")

local function read(path)
  return (assert(shell.read_file(path), path .. " is missing"))
end

-- The version as src/version.h writes it, on its one ORBT_VERSION line.
local DEFINED = {}
for value in read("src/version.h"):gmatch('\n#define ORBT_VERSION "([^"\n]*)"') do
  DEFINED[#DEFINED + 1] = value
end
local VERSION = DEFINED[1] or "(none)"

-- For a Lua pattern that matches `s` literally.
local function literal(s)
  return (s:gsub("%p", "%%%0"))
end

-- A rockspec's fields: the file runs as Lua with a table of its own as its
-- globals (setfenv on Lua 5.1 and LuaJIT, load's env on 5.2+).
local function load_rockspec(path)
  local text = read(path)
  local fields = {}
  local chunk, err
  if setfenv then
    chunk, err = loadstring(text, "@" .. path)
    if chunk then
      setfenv(chunk, fields)
    end
  else
    chunk, err = load(text, "@" .. path, "t", fields)
  end
  assert(chunk, err)
  chunk()
  return fields
end

local RELEASE = ("orbt-%s-1.rockspec"):format(VERSION)

describe("the version", function()
  it("is a semantic version, MAJOR.MINOR.PATCH, in src/version.h", function()
    assert(#DEFINED == 1, ("src/version.h defines ORBT_VERSION %d times, not once"):format(#DEFINED))
    -- Numbers without leading zeros (semver.org, item 2).
    local parts = { VERSION:match("^(%d+)%.(%d+)%.(%d+)$") }
    assert(#parts == 3, ("src/version.h's ORBT_VERSION %q is not MAJOR.MINOR.PATCH"):format(VERSION))
    for _, n in ipairs(parts) do
      assert(n == "0" or n:sub(1, 1) ~= "0", ("%q has a number with a leading zero"):format(VERSION))
    end
  end)

  it("is the module's _VERSION", function()
    assert.equal(VERSION, require("orbt")._VERSION)
  end)

  it("names the release rockspec, its version and its source", function()
    local spec = load_rockspec(RELEASE)
    assert.equal("orbt", spec.package)
    assert.equal(VERSION .. "-1", spec.version)
    assert.equal(VERSION, spec.version:match("^(.-)%-%d+$"))
    assert.is_table(spec.source, RELEASE .. " has no source")
    assert.equal(("https://github.com/orbt/orbt-lua/releases/download/v%s/orbt-%s.tar.gz"):format(VERSION, VERSION),
      spec.source.url)
    assert.equal("orbt-" .. VERSION, spec.source.dir)
    -- The tarball holds the rockspec, so the rockspec cannot hold its sum.
    assert.is_nil(spec.source.md5)
  end)

  it("has one release rockspec: no other version's is left beside it", function()
    local names = {}
    for name in shell.run("ls *.rockspec"):gmatch("[^\n]+") do
      names[#names + 1] = name
    end
    table.sort(names)
    local expected = { RELEASE, "orbt-scm-1.rockspec" }
    table.sort(expected)
    assert.same(expected, names)
  end)

  it("is built by the release rockspec exactly as by the scm one", function()
    local release, scm = load_rockspec(RELEASE), load_rockspec("orbt-scm-1.rockspec")
    -- Everything but version and source: a source file added to one
    -- rockspec's build and not the other's fails here.
    for _, field in ipairs{ "rockspec_format", "package", "description", "dependencies",
      "external_dependencies", "build" } do
      assert.same(scm[field], release[field], field .. " differs between the two rockspecs")
    end
    -- And the build is the checkout's: every C file of src/ and Lua file of lua/.
    local built = {}
    for _, source in ipairs(scm.build.modules.orbt.sources) do
      built[source] = true
    end
    for _, module in pairs(scm.build.modules) do
      if type(module) == "string" then
        built[module] = true
      end
    end
    for path in shell.run("ls src/*.c; find lua -name '*.lua'"):gmatch("[^\n]+") do
      assert(built[path], path .. " is in no rockspec's build")
    end
  end)

  it("heads CHANGELOG.md's newest release: ## [" .. VERSION .. "]", function()
    local changelog = read("CHANGELOG.md")
    local heading = "\n## %[" .. literal(VERSION) .. "%]"
    assert(("\n" .. changelog):find(heading), "CHANGELOG.md has no heading ## [" .. VERSION .. "]")
    -- The first heading with a version number (an [Unreleased] one may come before it).
    local newest = ("\n" .. changelog):match("\n## %[(%d[^%]]*)%]")
    assert.equal(VERSION, newest)
    -- The link references at the bottom: Unreleased compares from this tag,
    -- and this release has a link of its own.
    local base = "https://github.com/orbt/orbt-lua/"
    assert(changelog:find("\n%[Unreleased%]: " .. literal(base .. "compare/v" .. VERSION .. "...HEAD") .. "\n"),
      "CHANGELOG.md's [Unreleased] link does not compare from v" .. VERSION)
    assert(changelog:find("\n%[" .. literal(VERSION) .. "%]: " .. literal(base) .. "%S*v" .. literal(VERSION) .. "\n"),
      "CHANGELOG.md has no [" .. VERSION .. "] link ending in v" .. VERSION)
  end)

  it("is the top entry of debian/changelog: orbt (" .. VERSION .. "-N)", function()
    local top = read("debian/changelog"):match("^[^\n]*")
    local package, upstream, revision = top:match("^(%S+) %(([^)]-)%-(%d+)%) ")
    assert(package, "debian/changelog's first line is not `orbt (VERSION-N) ...`: " .. top)
    assert.equal("orbt", package)
    assert.equal(VERSION, upstream)
    assert.truthy(tonumber(revision) >= 1)
  end)

  it("names, in the README's and docs' .deb files, debian/changelog's revision", function()
    local revision = read("debian/changelog"):match("^%S+ %([^)]-%-(%d+)%)")
    local names = 0
    for path in shell.run("ls README.md docs/*.md"):gmatch("[^\n]+") do
      for upstream, rev in read(path):gmatch("orbt[%-%a]*_(%d+%.%d+%.%d+)%-(%d+)_%w+%.deb") do
        names = names + 1
        assert.equal(VERSION .. "-" .. revision, upstream .. "-" .. rev, path .. " names a .deb of another version")
      end
    end
    assert(names > 0, "README.md and docs/*.md name no .deb file")
  end)

  it("is the release the README and docs/*.md name", function()
    -- Where the documents name an orbt release: orbt 0.2.0, orbt-0.2.0.tar.gz,
    -- orbt-0.2.0-1.rockspec, lua-orbt_0.2.0-1_amd64.deb, the tag v0.2.0 and
    -- printed versions. Other software's versions (Lua 5.4.4) are not these.
    local V = "(%d+%.%d+%.%d+)"
    local contexts = { "orbt[ %-]" .. V, "orbt_" .. V, "orbt%-tools_" .. V, "%f[%w]v" .. V,
      "orbt command, module " .. V, "_VERSION[^#\n]*# %-%-> " .. V }
    local wrong, named = {}, 0
    for path in shell.run("ls README.md docs/*.md"):gmatch("[^\n]+") do
      local n = 0
      for line in (read(path) .. "\n"):gmatch("(.-)\n") do
        n = n + 1
        for _, pattern in ipairs(contexts) do
          for found in line:gmatch(pattern) do
            named = named + 1
            if found ~= VERSION then
              wrong[#wrong + 1] = ("%s:%d: %s"):format(path, n, line)
            end
          end
        end
      end
    end
    assert(#wrong == 0, ("%d of %d mentions of a release are not %s:\n%s")
      :format(#wrong, named, VERSION, table.concat(wrong, "\n")))
  end)

  describe("on the wire", function()
    local env = harness.with_mock{ reset = false }

    it("is in the User-Agent orbt-mock receives", function()
      assert(env.client:list_customers{ page = 0, size = 1 })
      local request = env.mock:last_request()
      local agent
      for name, value in pairs(request.headers) do
        if name:lower() == "user-agent" then
          agent = value
        end
      end
      assert.equal("orbt-lua/" .. VERSION, agent)
    end)
  end)

  it("is what orbt-mock --version prints", function()
    local out, ok = shell.run(shell.quote(os.getenv("ORBT_MOCK") or "build/orbt-mock") .. " --version 2>&1")
    assert.is_true(ok, out)
    assert.equal("orbt-mock " .. VERSION .. "\n", out)
  end)

  describe("orbt --version", function()
    if os.getenv("ORBT_RUNTIME") ~= "lua5.4" then
      pending("runs on the Lua 5.4 pass (bin/orbt is a Lua 5.4 program)")
      return
    end

    it("prints it", function()
      local out, err, code = cli.run({ "--version" })
      assert.equal(0, code, err)
      assert.equal("orbt command, module " .. VERSION .. "\n", out)
    end)
  end)
end)
