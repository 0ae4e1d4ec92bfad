-- The nginx transport's plain-Lua parts. The transport itself runs in a
-- real nginx in nginx_spec.lua; here: what happens outside nginx, and how it
-- reads base URLs.
local orbt = require("orbt")
local cosocket = require("orbt.cosocket")

describe("the nginx transport outside nginx", function()
  it("leaves the core's libcurl methods in place", function()
    local client = assert(orbt.new{ api_key = "k", client_id = "c", secret = "s" })
    assert.equal("C", debug.getinfo(client.create_customer, "S").what)
    assert.equal("C", debug.getinfo(client.list_customers, "S").what)
    client:close()
  end)

  it("reads scheme, host, port and path prefix from base URLs", function()
    local parse = cosocket._parse_base_url
    local s = parse("https://partner.orbt.com")
    assert.same({ true, "partner.orbt.com", "partner.orbt.com", 443, "partner.orbt.com", "" },
      { s.tls, s.host, s.address, s.port, s.authority, s.prefix })
    s = parse("http://127.0.0.1:8080/sandbox")
    assert.same({ false, "127.0.0.1", 8080, "127.0.0.1:8080", "/sandbox" },
      { s.tls, s.host, s.port, s.authority, s.prefix })
    s = parse("http://[::1]:9000")
    assert.same({ "::1", 9000, "[::1]:9000" }, { s.host, s.port, s.authority })
    -- nginx's resolver does not read /etc/hosts: localhost connects to
    -- 127.0.0.1 and keeps its name for TLS verification and Host.
    s = parse("https://localhost:8443")
    assert.same({ "localhost", "127.0.0.1", 8443 }, { s.host, s.address, s.port })
    -- Separate keep-alive pools for TLS and plain text.
    assert.are_not.equal(parse("https://h:1").pool, parse("http://h:1").pool)
    assert.is_nil(parse("partner.orbt.com"))
  end)
end)
