-- Amounts: what goes out on the wire is read back from the raw body that
-- orbt-mock received, not from anything the client reports.
local mockserver = require("support.mock")
local json = require("dkjson")

describe("amounts on the wire", function()
  local mock, client
  local n = 0

  lazy_setup(function()
    mock = mockserver.start{ balance = "100000000.00" }
    client = mock:client()
  end)

  lazy_teardown(function()
    client:close()
    mock:cleanup()
  end)

  local function create_with(amount)
    n = n + 1
    local customer, err = client:create_customer{ fullName = "Amount " .. n,
      email = ("amount%d@example.com"):format(n), currency = "USD", initialFunds = amount }
    assert.is_table(customer, tostring(err))
    local seen = mock:last_request()
    assert.equal("POST", seen.method)
    return seen.body:match('"initialFunds":([^,}]*)'), customer, seen.body
  end

  it("sends each amount in the shortest form that reads back exactly", function()
    local cases = {
      { 19.99, "19.99" }, { 0.1, "0.1" }, { 50, "50" }, { "50.00", "50.00" },
      { 50.0, "50" }, { 0, "0" }, { 0.3, "0.3" }, { 1234567.89, "1234567.89" },
      { 0.1 + 0.2, "0.30000000000000004" }, { 1e-7, "1e-07" }, { "0.10", "0.10" },
    }
    for _, case in ipairs(cases) do
      local wire = create_with(case[1])
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
    n = n + 1
    local name = 'Zoë "Quotes" \\ Ünïcødé / 日本 😀'
    local customer = assert(client:create_customer{ fullName = name,
      email = ("escape%d@example.com"):format(n), currency = "EUR", initialFunds = 1 })
    assert.equal(name, customer.fullName)
    assert.equal(name, json.decode(mock:last_request().body).fullName)
  end)

  it("reads money back without float noise", function()
    local _, customer = create_with(19.99)
    assert.equal(19.99, customer.walletBalance)
    assert.equal("19.99", tostring(customer.walletBalance))
  end)

  it("refuses NaN, infinities, negatives and malformed strings before sending", function()
    local before = mock:request_count()
    for _, bad in ipairs{ 0 / 0, math.huge, -math.huge, -5, -0.5, "1e3", "12,50", "five", "-1.00", "1.2.3" } do
      local customer, err = client:create_customer{ fullName = "Bad", email = "bad@example.com",
        currency = "USD", initialFunds = bad }
      assert.is_nil(customer)
      assert.equal("invalid", err.kind)
      assert.equal("initialFunds", err.field)
    end
    assert.equal(before, mock:request_count())
  end)
end)
