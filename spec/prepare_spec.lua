-- The core's interface for a transport written in Lua (what the nginx
-- transport uses): client:_prepare signs a request, any HTTP client sends
-- it, client:_answer turns the answer into the call's result. Here the
-- sender is the curl command-line tool, against a real orbt-mock.
local mockserver = require("support.mock")

local PATH = mockserver.PATH

describe("client:_prepare and client:_answer", function()
  local mock, client

  setup(function()
    mock = mockserver.start()
  end)

  teardown(function()
    mock:cleanup()
  end)

  before_each(function()
    mock:reset()
    client = mock:client()
  end)

  after_each(function()
    client:close()
  end)

  -- Sends a prepared request with curl; returns status and body.
  local function send(method, target, headers, body)
    local lines = {}
    for line in headers:gmatch("([^\r\n]+)\r\n") do
      lines[#lines + 1] = line
    end
    return mock:http(method, target, lines, body ~= "" and body or nil)
  end

  it("prepares a signed request that orbt-mock accepts, and reads its answer", function()
    local method, target, headers, body = client:_prepare("create_customer", {
      fullName = "Prepared", email = "prepared@example.com", currency = "USD", initialFunds = 19.99 })
    assert.equal("POST", method)
    assert.equal(PATH, target)
    assert.matches("x%-signature: [%w+/=]+\r\n", headers)
    assert.equal('{"fullName":"Prepared","email":"prepared@example.com","currency":"USD","initialFunds":19.99}', body)
    local status, answer = send(method, target, headers, body)
    local customer = assert(client:_answer("create_customer", status, answer))
    assert.equal(101, customer.id)
    assert.equal(0, mock:stats().auth_failures)

    method, target, headers, body = client:_prepare("list_customers", { page = 0, size = 1 })
    assert.same({ "GET", PATH .. "?page=0&size=1", "" }, { method, target, body })
    local page = assert(client:_answer("list_customers", send(method, target, headers, body)))
    assert.equal(101, page.content[1].consumerId)
  end)

  it("refuses bad arguments before preparing anything", function()
    local method, err = client:_prepare("list_customers", { size = 99 })
    assert.is_nil(method)
    assert.equal("invalid", err.kind)
    assert.equal("size", err.field)
    assert.has_error(function() client:_prepare("delete_everything", {}) end)
  end)

  it("turns transport failures into the same errors as libcurl's", function()
    client:_prepare("create_customer", { fullName = "A", email = "a@example.com", currency = "USD", initialFunds = 1 })
    local _, never_sent = client:_answer("create_customer", 0, nil, "network", "could not connect", false)
    assert.equal("network", never_sent.kind)
    assert.is_true(never_sent.retryable, "a create that never left is safe to repeat")
    client:_prepare("create_customer", { fullName = "A", email = "a@example.com", currency = "USD", initialFunds = 1 })
    local _, cut = client:_answer("create_customer", 201, nil, "network", "closed", true)
    assert.equal(201, cut.status)
    assert.is_false(cut.retryable)
    assert.matches("may have been applied", cut.message)
    client:_prepare("list_customers", {})
    local _, slow = client:_answer("list_customers", 0, nil, "timeout", "the call's timeout passed", true)
    assert.equal("timeout", slow.kind)
    assert.is_true(slow.retryable)
  end)

  it("lets a call in flight finish when the client is closed meanwhile", function()
    local method, target, headers, body = client:_prepare("list_customers", { size = 1 })
    client:close()
    local _, refused = client:list_customers()
    assert.matches("closed", refused.message)
    -- The answer still decodes: close() waited for it. Then the client is closed.
    local page = assert(client:_answer("list_customers", send(method, target, headers, body)))
    assert.is_table(page.content)
    local _, after = client:_prepare("list_customers", {})
    assert.equal("invalid", after.kind)
    assert.matches("closed", after.message)
  end)
end)
