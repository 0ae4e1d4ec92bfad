-- Answers that are hard to decode: long arrays of integers, deep nesting.
-- Each goes through a real orbt-mock, which serves the body as injected.
local mockserver = require("support.mock")
local harness = require("support.harness")

local PATH = mockserver.PATH

local number_type = require("support.runtime").number_type

describe("decoding hostile answers", function()
  local env = harness.with_mock{ lazy = true, shared_client = true }

  it("decodes a long array of integers", function()
    -- An earlier decoder checked each number for a fraction by scanning on
    -- to the next '.' or 'e' in the whole answer: this 800 kB page took about
    -- 15 s of CPU. A regression to that shows as a run that long.
    local n = 400000
    local body = '{"hasNext":false,"content":[' .. ("7,"):rep(n - 1) .. '7]}'
    env.mock:fault{ path = PATH, method = "GET", status = 200, body = body }
    local page, err = env.client:list_customers()
    assert.is_nil(err)
    assert.equal(n, #page.content)
    assert.equal(7, page.content[n])
    assert.equal("integer", number_type(page.content[n]))
  end)

  -- A page whose one item has `value` as its consumerName; the value starts
  -- at byte #HEAD (0-based).
  local HEAD = '{"hasNext":false,"content":[{"consumerId":1,"consumerName":'
  local function page_with(value)
    return HEAD .. value .. '}]}'
  end

  local function decode(value)
    env.mock:fault{ path = PATH, method = "GET", status = 200, body = page_with(value) }
    local page, err = env.client:list_customers(nil, { max_retries = 0 })
    return page and page.content[1].consumerName, err
  end

  it("decodes escapes: \\u0000, surrogate pairs, and the short ones", function()
    assert.equal("a\0b", decode('"a\\u0000b"'))
    assert.equal("\240\159\152\128", decode('"\\ud83d\\ude00"')) -- U+1F600 in UTF-8
    assert.equal("\195\169", decode('"\\u00e9"'))
    assert.equal('"\\/\b\f\n\r\t', decode('"\\"\\\\\\/\\b\\f\\n\\r\\t"'))
    assert.equal("Zo\195\171", decode('"Zo\195\171"')) -- raw UTF-8 passes through
  end)

  it("reads integers exactly within 64 bits and refuses numbers past the double range", function()
    local max = decode("9223372036854775807")
    local min = decode("-9223372036854775808")
    if math.type then -- integers exist: exact at both ends
      assert.equal(math.maxinteger, max)
      assert.equal(math.mininteger, min)
      assert.equal("float", math.type(decode("9223372036854775808")))
    end
    assert.equal(0.5, decode("5e-1"))
    assert.equal(-0.25, decode("-2.5E-1"))
    local _, err = decode("1e400")
    assert.equal("decode", err.kind)
    assert.equal("the answer has a number too large to represent", err.message)
  end)

  it("reads -0 as the float -0.0, keeping its sign", function()
    for _, text in ipairs{ "-0", "-0.0", "-0e0", "-0E+2" } do
      local v = decode(text)
      assert.equal(-math.huge, 1 / v, text)
      if math.type then
        assert.equal("float", math.type(v), text)
      end
    end
    local zero = decode("0")
    assert.equal(math.huge, 1 / zero)
    assert.equal("integer", number_type(zero))
  end)

  it("refuses what is not strict JSON, saying where", function()
    local bad = { '"a\tb"', '"\\x"', '"\\ud800"', '"\\udc00x"', '"\\u12"', "01", "1.", "-", ".5",
      "+1", "1e", "[1,]", '{"a":1,}', "tru", "nul", "'a'", '"unterminated' }
    for _, value in ipairs(bad) do
      local name, err = decode(value)
      assert.is_nil(name, value)
      assert.equal("decode", err.kind, value)
      assert.matches("not valid JSON %(.+ at byte %d+%)", err.message)
    end
    env.mock:fault{ path = PATH, method = "GET", status = 200, body = '{"hasNext":false,"content":[]} x' }
    local _, trailing = env.client:list_customers()
    assert.equal("the answer has data after its JSON value", trailing.message)
  end)

  local function not_json(why, at)
    return ("the answer is not valid JSON (%s at byte %d)"):format(why, at)
  end

  it("calls a byte that cannot start a value an unexpected character, at its offset", function()
    -- The value, and the offset of the stray byte within it.
    local stray = { { ",", 0 }, { "]", 0 }, { "}", 0 }, { ":", 0 }, { "'a'", 0 }, { "True", 0 },
      { "undefined", 0 }, { "+1", 0 }, { ".5", 0 }, { "[,1]", 1 }, { "[1,,2]", 3 },
      { "[1,]", 3 }, { "[:]", 1 }, { '{"a":}', 5 }, { '{"a":,"b":1}', 5 }, { "[ \t,1]", 3 } }
    for _, case in ipairs(stray) do
      local name, err = decode(case[1])
      assert.is_nil(name, case[1])
      assert.equal("decode", err.kind, case[1])
      assert.equal(not_json("unexpected character", #HEAD + case[2]), err.message, case[1])
    end
  end)

  it("calls a UTF-8 byte order mark before the answer an unexpected character at byte 0", function()
    env.mock:fault{ path = PATH, method = "GET", status = 200,
      body = "\239\187\191" .. '{"hasNext":false,"content":[]}' }
    local page, err = env.client:list_customers(nil, { max_retries = 0 })
    assert.is_nil(page)
    assert.equal("decode", err.kind)
    assert.equal(not_json("unexpected character", 0), err.message)
  end)

  it("keeps 'bad number' for text that starts like a number and is malformed", function()
    for _, value in ipairs{ "-", "-a", "-.5", "01", "-01", "00", "1.", "1.e5", "1e", "1e+", "1E-x" } do
      local name, err = decode(value)
      assert.is_nil(name, value)
      assert.equal("decode", err.kind, value)
      assert.matches("^the answer is not valid JSON %(bad number at byte %d+%)$", err.message)
    end
  end)

  it("says where each error is: the offset of the offending byte itself", function()
    -- The value, the reason, and the offset of the offending byte within the value.
    local cases = {
      { "[1 2]", "expected ',' or ']' in an array", 3 },
      { "[1;2]", "expected ',' or ']' in an array", 2 },
      { "[1}", "expected ',' or ']' in an array", 2 },
      { '{"a":1 "b":2}', "expected ',' or '}' in an object", 7 },
      { '{"a":1]', "expected ',' or '}' in an object", 6 },
      { "[ ]]", "expected ',' or '}' in an object", 3 },
      { '{"a" 1}', "expected ':' in an object", 5 },
      { "{1:2}", "expected a string key in an object", 1 },
      { "nul", "unexpected character", 3 },
      { "tru", "unexpected character", 3 },
      { "fals", "unexpected character", 4 },
      { "nULL", "unexpected character", 1 },
      { "trUe", "unexpected character", 2 },
      { "-", "bad number", 1 },
      { "-a", "bad number", 1 },
      { "-.5", "bad number", 1 },
      { "01", "bad number", 1 },
      { "-01", "bad number", 2 },
      { "1.", "bad number", 2 },
      { "1.e5", "bad number", 2 },
      { "1e", "bad number", 2 },
      { "1e+", "bad number", 3 },
      { "1E-x", "bad number", 3 },
      { '"a\tb"', "control character in a string", 2 },
      { '"\\x"', "bad escape in a string", 2 },
      { '"a\\"\\x"', "bad escape in a string", 5 },
      { '"\\u12"', "bad \\u escape", 5 },
      { '"\\u12G4"', "bad \\u escape", 5 },
      { '"\\ud800"', "lone high surrogate in \\u escape", 7 },
      { '"\\ud800\\n"', "lone high surrogate in \\u escape", 8 },
      { '"\\udc00x"', "lone low surrogate in \\u escape", 1 },
      { '"ab\\ud800\\u0041"', "bad surrogate pair in \\u escape", 9 },
      { '"\\ud800\\u00G0"', "bad \\u escape", 11 },
      { "1" .. ("0"):rep(500), "number too long", 0 }, -- the whole number is at fault
    }
    for _, case in ipairs(cases) do
      local name, err = decode(case[1])
      assert.is_nil(name, case[1])
      assert.equal("decode", err.kind, case[1])
      assert.equal(not_json(case[2], #HEAD + case[3]), err.message, case[1])
    end
  end)

  it("points at the end, the body's length, when the answer stops short", function()
    local cut = {
      { '{"hasNext":false,"content":[', "unexpected end" },
      { '{"hasNext":false,"content":[1', "unterminated array" },
      { '{"hasNext":false', "unterminated object" },
      { '{"hasNext":fal', "unexpected end" },
      { '{"hasNext"', "expected ':' in an object" },
      { '{"hasNext":false,', "expected a string key in an object" },
      { '{"hasNext":false,"content":["abc', "unterminated string" },
      { '{"hasNext":false,"content":["ab\\"c', "unterminated string" },
      { '{"hasNext":false,"content":["abc\\', "unterminated string" },
      { '{"hasNext":false,"content":["\\u00', "bad \\u escape" },
      { '{"hasNext":false,"content":["\\ud800', "lone high surrogate in \\u escape" },
      { '{"hasNext":false,"content":["\\ud800\\', "lone high surrogate in \\u escape" },
      { '{"hasNext":false,"content":[-', "bad number" },
      { '{"hasNext":false,"content":[1.', "bad number" },
    }
    for _, case in ipairs(cut) do
      env.mock:fault{ path = PATH, method = "GET", status = 200, body = case[1] }
      local page, err = env.client:list_customers(nil, { max_retries = 0 })
      assert.is_nil(page, case[1])
      assert.equal("decode", err.kind, case[1])
      assert.equal(not_json(case[2], #case[1]), err.message, case[1])
    end
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
        env.mock:fault{ path = PATH, method = a[1], status = a[2], body = a[3] }
        collectgarbage()
        local before = collectgarbage("count")
        local result, err
        if a[1] == "GET" then
          result, err = env.client:list_customers()
        else
          result, err = env.client:create_customer(harness.customer())
        end
        local grown_kb = collectgarbage("count") - before
        assert.is_nil(result)
        assert.equal("decode", err.kind)
        assert.equal(a[2], err.status)
        assert.equal(1, err.message:find("the answer is nested more than 1000 levels deep", 1, true))
        -- A create answered 2xx was applied, whatever its answer says.
        assert.equal(a[1] == "POST", err.maybe_applied)
        assert.equal(a[1] == "POST", err.message:find("may have been applied", 1, true) ~= nil)
        assert.equal(a[3]:sub(1, 4096), err.body)
        assert.is_true(grown_kb < 256, ("the call grew the Lua heap by %.1f KiB"):format(grown_kb))
      end
    end)

    it("decodes 1000 levels of " .. kind .. "s, the deepest allowed", function()
      -- The page object is the first level, so content holds 999 more.
      env.mock:fault{ path = PATH, method = "GET", status = 200,
        body = '{"hasNext":false,"content":' .. nested(kind, 999) .. "}" }
      local page, err = env.client:list_customers()
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
    env.mock:fault{ path = PATH, method = "GET", status = 400, body = deep }
    local page, err = env.client:list_customers()
    assert.is_nil(page)
    assert.equal("api", err.kind)
    assert.equal(400, err.status)
    assert.is_nil(err.code)
    assert.equal("bad request", err.message)
    assert.equal(deep:sub(1, 4096), err.body)
  end)
end)
