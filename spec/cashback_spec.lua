-- examples/cashback.lua: 5% cashback on a list of orders, run as a user
-- runs it (a new interpreter, credentials from the environment), twice, and
-- with a fault on the way: every order is paid exactly once, to the cent.
local harness = require("support.harness")
local shell = require("support.shell")

describe("examples/cashback.lua", function()
  local env = harness.with_mock{ mock = { balance = "1000.00" } }

  -- Runs the example on an orders file; returns its output and exit status.
  local function cashback(orders)
    local dir = shell.tmpdir()
    shell.write_file(dir .. "/orders", orders)
    local command = shell.lua_command(
      ("arg = { [0] = 'examples/cashback.lua', %q }; dofile('examples/cashback.lua')"):format(dir .. "/orders"), {
        ORBT_BASE_URL = env.mock.url, ORBT_API_KEY = env.mock.api_key, ORBT_CLIENT_ID = env.mock.client_id,
        ORBT_SECRET = env.mock.secret })
    local out = shell.run(command .. " 2>&1; echo \"exit:$?\"")
    shell.exec("rm -rf " .. shell.quote(dir))
    local body, status = out:match("^(.-)exit:(%d+)%s*$")
    return body or out, tonumber(status)
  end

  local function wallets(n)
    local ids = {}
    for i = 1, n do
      ids[i] = assert(env.client:create_customer(harness.customer{ initialFunds = 0 })).walletId
    end
    return ids
  end

  it("pays each order once, however often it runs, and through a fault", function()
    local w = wallets(3)
    local orders = ("ORD-1 %s 39.90\nORD-2 %s 100\n\nORD-3 %s 0.30\nORD-4 %s 0.09\n"):format(w[1], w[2], w[3],
      w[3])
    -- The first run's credit of ORD-2 is applied, then answered 503: orbt
    -- sends it again with the same referenceId.
    env.mock:fault{ path = "/api/partner/v1/wallets/" .. w[2] .. "/transactions", method = "POST", status = 503,
      apply = true }
    for run = 1, 2 do
      local out, status = cashback(orders)
      assert.equal(0, status, out)
      assert.matches("ORD-1: 2.00 credited to wallet " .. w[1], out, 1, true)   -- 1.995, half up
      assert.matches("ORD-2: 5.00 credited to wallet " .. w[2], out, 1, true)
      assert.matches("ORD-3: 0.02 credited to wallet " .. w[3], out, 1, true)   -- 0.015, half up
      assert.matches("ORD-4: no cashback (0.00)", out, 1, true)                -- 0.0045 rounds to nothing
      assert.matches("4 of 4 orders paid, 7.02 in all", out, 1, true)
      local stats = env.mock:stats()
      assert.equal(3, stats.movements, "run " .. run)
      assert.equal("992.98", stats.balance)
    end
    assert.equal("2.00", env.mock:wallet(w[1]).balance_text)
    assert.equal("5.00", env.mock:wallet(w[2]).balance_text)
    assert.equal("0.02", env.mock:wallet(w[3]).balance_text)
    local stats = env.mock:stats()
    assert.equal(1 + 3, stats.replays) -- the 503's resend, and the whole second run
  end)

  it("reports what was not paid, with the reason, and exits 1", function()
    local w = wallets(1)
    local out, status = cashback(("ORD-9 %s 50000.00\nORD-10 %s 20.00\n"):format(w[1], w[1]))
    assert.equal(1, status, out)
    assert.matches("ORD-9: not paid (insufficient_partner_funds)", out, 1, true)
    assert.matches("ORD-10: 1.00 credited", out, 1, true)
    assert.matches("1 of 2 orders paid, 1.00 in all", out, 1, true)
  end)

  it("refuses a malformed orders file before sending anything, and exits 2", function()
    local out, status = cashback("ORD-1 101 12.345\n")
    assert.equal(2, status, out)
    assert.matches("orders:1: expected", out, 1, true)
    assert.equal(0, env.mock:request_count())
  end)
end)
