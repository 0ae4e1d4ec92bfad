-- Answers that are hard to decode: long arrays of integers, deep nesting.
-- Each goes through a real orbt-mock, which serves the body as injected.
local mockserver = require("support.mock")

local PATH = mockserver.PATH

describe("decoding hostile answers", function()
  local mock, client

  lazy_setup(function()
    mock = mockserver.start()
    client = mock:client()
  end)

  lazy_teardown(function()
    client:close()
    mock:cleanup()
  end)

  before_each(function()
    mock:reset()
  end)

  it("decodes a long array of integers in linear time", function()
    -- Each number used to be checked for a fraction by scanning on to the
    -- next '.' or 'e' in the whole answer: with none after the array, this
    -- 800 kB page took about 15 s of CPU, and an 8 MiB one about half an hour.
    local n = 400000
    local body = '{"hasNext":false,"content":[' .. ("7,"):rep(n - 1) .. '7]}'
    mock:fault{ path = PATH, method = "GET", status = 200, body = body }
    local started = os.clock()
    local page, err = client:list_customers()
    local cpu = os.clock() - started
    assert.is_nil(err)
    assert.equal(n, #page.content)
    assert.equal(7, page.content[n])
    assert.equal("integer", math.type(page.content[n]))
    assert.is_true(cpu < 2, ("decoding took %.2f s of CPU"):format(cpu))
  end)

  -- n levels: arrays ("[[[...]]]") or objects ({"a":{"a":...1}}).
  local function nested(kind, n)
    if kind == "array" then
      return ("["):rep(n) .. ("]"):rep(n)
    end
    return ('{"a":'):rep(n) .. "1" .. ("}"):rep(n)
  end

  for _, kind in ipairs{ "array", "object" } do
    it("refuses 10,000 levels of " .. kind .. "s with a clear decode error and bounded memory", function()
      local deep = nested(kind, 10000)
      local answers = {
        { "GET", 200, deep },
        { "GET", 200, '{"hasNext":false,"content":[' .. deep .. "]}" },
        { "POST", 201, '{"success":true,"data":{"id":1,"extra":' .. deep .. "}}" },
      }
      for _, a in ipairs(answers) do
        mock:fault{ path = PATH, method = a[1], status = a[2], body = a[3] }
        collectgarbage()
        local before = collectgarbage("count")
        local result, err
        if a[1] == "GET" then
          result, err = client:list_customers()
        else
          result, err = client:create_customer{ fullName = "Deep", email = "deep@example.com",
            currency = "USD", initialFunds = 1 }
        end
        local grown_kb = collectgarbage("count") - before
        assert.is_nil(result)
        assert.equal("decode", err.kind)
        assert.equal(a[2], err.status)
        assert.equal("the answer is nested more than 1000 levels deep", err.message)
        assert.equal(a[3]:sub(1, 4096), err.body)
        assert.is_true(grown_kb < 256, ("the call grew the Lua heap by %.1f KiB"):format(grown_kb))
      end
    end)

    it("decodes 1000 levels of " .. kind .. "s, the deepest allowed", function()
      -- The page object is the first level, so content holds 999 more.
      mock:fault{ path = PATH, method = "GET", status = 200,
        body = '{"hasNext":false,"content":' .. nested(kind, 999) .. "}" }
      local page, err = client:list_customers()
      assert.is_nil(err)
      local levels, v = 1, page.content
      while type(v) == "table" do
        levels = levels + 1
        v = v[1] or v.a
      end
      assert.equal(1000, levels)
    end)
  end

  it("keeps a 10,000-level error body as the raw body of an api error", function()
    local deep = nested("array", 10000)
    mock:fault{ path = PATH, method = "GET", status = 400, body = deep }
    local page, err = client:list_customers()
    assert.is_nil(page)
    assert.equal("api", err.kind)
    assert.equal(400, err.status)
    assert.is_nil(err.code)
    assert.equal("bad request", err.message)
    assert.equal(deep:sub(1, 4096), err.body)
  end)
end)
