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
end)
