-- Hostile or broken answers: thousands of headers, a 100 MiB body, JSON
-- nested 10,000 levels deep. Each ends in a clear error, with the process's
-- memory bounded, and the client keeps working.
local mockserver = require("support.mock")
local harness = require("support.harness")

local PATH = mockserver.PATH
local MiB = 1024 * 1024

-- Resident memory of this process, in bytes (Linux).
local function rss()
  local f = assert(io.open("/proc/self/status"))
  local status = f:read("*a")
  f:close()
  return tonumber(status:match("VmRSS:%s*(%d+) kB")) * 1024
end

describe("hostile answers", function()
  local env = harness.with_mock{ client = { max_retries = 0 } }

  it("refuses an answer with thousands of header lines as malformed, not retried", function()
    local retrying = env.mock:client{ max_retries = 2 }
    env.mock:fault{ path = PATH, method = "GET", headers = 5000 }
    local page, err = retrying:list_customers()
    assert.is_nil(page)
    assert.equal("decode", err.kind)
    assert.is_false(err.retryable)
    assert.equal(1, err.attempts)
    assert.is_false(err.maybe_applied)
    assert.matches("more than 200 header lines", err.message, 1, true)
    assert.is_nil(err.message:find("may have been applied", 1, true))
    assert.equal(1, #env.mock:requests(10))
    retrying:close()
    -- A hundred extra lines are fine.
    env.mock:fault{ path = PATH, method = "GET", headers = 100 }
    assert(env.client:list_customers())
  end)

  it("says a create answered with thousands of header lines may have been applied", function()
    local retrying = env.mock:client{ max_retries = 2 }
    env.mock:fault{ path = PATH, method = "POST", headers = 5000 }
    local created, err = retrying:create_customer(harness.customer())
    assert.is_nil(created)
    assert.equal("decode", err.kind)
    assert.is_false(err.retryable)
    assert.equal(1, err.attempts)
    assert.is_true(err.maybe_applied)
    assert.matches("more than 200 header lines", err.message, 1, true)
    assert.matches("may have been applied", err.message, 1, true)
    -- On the bulk engine too, item by item.
    env.mock:fault{ path = PATH, method = "POST", headers = 5000 }
    local results = retrying:create_customers({ harness.customer(), harness.customer() }, { concurrency = 1 })
    assert.equal("decode", results[1].kind)
    assert.is_true(results[1].maybe_applied)
    assert.is_false(results[1].retryable)
    assert.truthy(results[2].id, "the next item goes through")
    retrying:close()
  end)

  for _, framing in ipairs{ "announced", "chunked" } do
    it("refuses a 100 MiB " .. framing .. " body without holding it", function()
      collectgarbage()
      local before = rss()
      env.mock:fault{ path = PATH, method = "GET", status = 200, oversize = 100 * MiB, chunked = framing == "chunked" }
      local page, err = env.client:list_customers()
      assert.is_nil(page)
      assert.equal("decode", err.kind)
      assert.matches("max_body", err.message)
      assert.is_true(#(err.body or "") <= 4096)
      local grew = rss() - before
      assert.is_true(grew < 48 * MiB, ("memory grew by %.1f MiB"):format(grew / MiB))
      assert(env.client:list_customers(), "the client works afterwards")
    end)
  end

  for _, shape in ipairs{ "arrays", "objects" } do
    it("refuses JSON nested 10,000 levels deep (" .. shape .. ")", function()
      local depth = 10000
      local body = shape == "arrays" and ("["):rep(depth) .. ("]"):rep(depth)
        or ('{"a":'):rep(depth) .. "1" .. ("}"):rep(depth)
      env.mock:fault{ path = PATH, method = "GET", status = 200, body = body }
      local page, err = env.client:list_customers()
      assert.is_nil(page)
      assert.equal("decode", err.kind)
      assert.is_false(err.retryable)
      assert(env.client:list_customers(), "the client works afterwards")
    end)
  end
end)
