-- Amounts: what goes out on the wire is read back from the raw body that
-- orbt-mock received, not from anything the client reports.
local harness = require("support.harness")
local shell = require("support.shell")
local json = require("dkjson")

describe("amounts on the wire", function()
  local env = harness.with_mock{ lazy = true, shared_client = true, reset = false,
    mock = { balance = "100000000.00" } }
  local n = 0

  -- refused: orbt-mock keeps micro-units and refuses a 7th decimal (400)
  -- rather than round money; what went out is checked all the same.
  local function create_with(amount, refused)
    n = n + 1
    local customer, err = env.client:create_customer{ fullName = "Amount " .. n,
      email = ("amount%d@example.com"):format(n), currency = "USD", initialFunds = amount }
    if refused then
      assert.equal(400, err and err.status, tostring(err))
      assert.matches("at most 6 decimals", err.message, 1, true)
    else
      assert.is_table(customer, tostring(err))
    end
    local seen = env.mock:last_request()
    assert.equal("POST", seen.method)
    return seen.body:match('"initialFunds":([^,}]*)'), customer, seen.body
  end

  it("sends each amount in the shortest form that reads back exactly", function()
    local cases = {
      { 19.99, "19.99" }, { 0.1, "0.1" }, { 50, "50" }, { "50.00", "50.00" },
      { 50.0, "50" }, { 0, "0" }, { 0.3, "0.3" }, { 1234567.89, "1234567.89" },
      { 0.1 + 0.2, "0.30000000000000004", true }, { 1e-7, "1e-07", true }, { "0.10", "0.10" },
      { 1e-6, "1e-06" },
    }
    for _, case in ipairs(cases) do
      local wire = create_with(case[1], case[3])
      assert.equal(case[2], wire, "amount " .. tostring(case[1]))
      if type(case[1]) == "number" then
        assert.equal(case[1], tonumber(wire))
      end
    end
  end)

  it("sends the body in the documented field order, as valid JSON", function()
    local _, _, body = create_with(19.99)
    assert.matches('^{"fullName":"Amount %d+","email":"amount%d+@example.com",'
      .. '"currency":"USD","initialFunds":19.99}$', body)
    assert.is_table(json.decode(body))
  end)

  it("escapes text in the body so the JSON stays exact", function()
    local name = 'Zoë "Quotes" \\ Ünïcødé / 日本 😀'
    local customer = assert(env.client:create_customer(harness.customer{ fullName = name, currency = "EUR" }))
    assert.equal(name, customer.fullName)
    assert.equal(name, json.decode(env.mock:last_request().body).fullName)
  end)

  it("reads money back without float noise", function()
    local _, customer = create_with(19.99)
    assert.equal(19.99, customer.walletBalance)
    assert.equal("19.99", tostring(customer.walletBalance))
  end)

  -- A host program may set LC_NUMERIC to a locale with a decimal comma
  -- (de_DE) or a multi-byte decimal point (ps_AF). The locales are compiled
  -- at test time with localedef, and a second Lua process runs under them.
  it("writes and reads numbers with '.' whatever the C locale says", function()
    local dir = shell.tmpdir()
    for _, name in ipairs{ "de_DE", "ps_AF" } do
      local _, ok = shell.run(("localedef -i %s -f UTF-8 %s/%s.UTF-8 2>&1"):format(name, dir, name))
      assert.is_true(ok, "localedef " .. name)
      n = n + 1
      local script = ([[
        assert(os.setlocale("%s.UTF-8", "numeric"), "locale not loaded")
        -- LuaJIT formats numbers itself, so only PUC Lua shows the locale.
        assert(jit or tostring(0.5):find(",") or tostring(0.5) ~= "0.5" or %q == "ps_AF")
        local orbt = require("orbt")
        local c = assert(orbt.new{ api_key = %q, client_id = %q, secret = %q, base_url = %q })
        local customer, err = c:create_customer{ fullName = "Locale", email = %q,
          currency = "USD", initialFunds = 19.99 }
        assert(customer, tostring(err))
        io.write(string.format("%%.2f|%%s", customer.walletBalance, tostring(customer.walletBalance == 19.99)))
      ]]):format(name, name, env.mock.api_key, env.mock.client_id, env.mock.secret, env.mock.url,
        ("locale%d@example.com"):format(n))
      local out, ran = shell.run(shell.lua_command(script, { LOCPATH = dir }) .. " 2>&1")
      assert.is_true(ran, out)
      assert.matches("|true$", out)
      assert.matches('"initialFunds":19.99}$', env.mock:last_request().body)
    end
    shell.exec("rm -rf " .. shell.quote(dir))
  end)

  it("refuses NaN, infinities, negatives and malformed strings before sending", function()
    local before = env.mock:request_count()
    for _, bad in ipairs{ 0 / 0, math.huge, -math.huge, -5, -0.5, "1e3", "12,50", "five", "-1.00", "1.2.3" } do
      local customer, err = env.client:create_customer(harness.customer{ initialFunds = bad })
      assert.is_nil(customer)
      assert.equal("invalid", err.kind)
      assert.equal("initialFunds", err.field)
    end
    assert.equal(before, env.mock:request_count())
  end)
end)
