-- The nginx transport's plain-Lua parts. The transport itself runs in a
-- real nginx in nginx_spec.lua; here: what happens outside nginx, and that
-- its operations come from the core's table.
local orbt = require("orbt")
local shell = require("support.shell")

describe("the nginx transport outside nginx", function()
  it("leaves the core's libcurl methods in place", function()
    local client = assert(orbt.new{ api_key = "k", client_id = "c", secret = "s" })
    assert.equal("C", debug.getinfo(client.create_customer, "S").what)
    assert.equal("C", debug.getinfo(client.list_customers, "S").what)
    assert.equal("C", debug.getinfo(client.create_customers, "S").what)
    client:close()
  end)

  it("learns the operations from the core's table, with no list of its own", function()
    local source = assert(io.open("lua/orbt/cosocket.lua")):read("*a"):gsub("%-%-[^\n]*", "")
    assert.is_nil(source:find("create_customer", 1, true))
    assert.is_nil(source:find("list_customers", 1, true))
    assert.is_nil(source:find("/api/", 1, true))
    assert.is_nil(source:find("HTTP/1", 1, true), "no HTTP framing or parsing of its own")
  end)

  it("loads in a program that guards its globals (like Lua's etc/strict.lua)", function()
    local out, ok = shell.run(shell.lua_command([[
      setmetatable(_G, { __index = function(_, name)
        local caller = debug.getinfo(2, "S")
        if caller and caller.what ~= "C" then error("variable '" .. name .. "' is not declared", 2) end
      end })
      local orbt = require("orbt")
      assert(orbt.new{ api_key = "k", client_id = "c", secret = "s", transport = "cosocket" } == nil)
      io.write("loaded")
    ]]) .. " 2>&1")
    assert.is_true(ok, out)
    assert.equal("loaded", out)
  end)
end)
