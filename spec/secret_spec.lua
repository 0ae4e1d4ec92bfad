-- The secret never leaves the client: not in errors, not in tostring, not in
-- anything orbt-mock logs or reports.
local mockserver = require("support.mock")
local harness = require("support.harness")

local PATH = mockserver.PATH

describe("the secret", function()
  local env = harness.with_mock{ lazy = true, shared_client = true, reset = false }

  local function assert_clean(value, what)
    local text = type(value) == "table" and (tostring(value) .. " " .. tostring(value.message)
      .. " " .. tostring(value.body) .. " " .. tostring(value.code)) or tostring(value)
    assert.is_nil(text:find(env.mock.secret, 1, true), what .. " contains the secret")
  end

  -- Every kind of failure, so each error path is inspected.
  local function collect_errors()
    local errors = {}
    local function add(name, _, err)
      assert.is_table(err, name .. " did not fail")
      errors[name] = err
    end
    add("invalid", env.client:create_customer(harness.customer{ email = "no-at-sign" }))
    add("forbidden", env.mock:client{ secret = env.mock.secret .. "x" }:list_customers())
    env.mock:fault{ path = PATH, method = "GET", status = 500 }
    add("server error", env.client:list_customers(nil, { max_retries = 0 }))
    env.mock:fault{ path = PATH, method = "GET", status = 200, body = "not json" }
    add("decode", env.client:list_customers())
    env.mock:fault{ path = PATH, method = "GET", delay_ms = 1000 }
    add("timeout", env.mock:client{ timeout = 0.2, max_retries = 0 }:list_customers())
    local gone = mockserver.start()
    local url = gone.url
    gone:cleanup()
    add("network", env.mock:client{ base_url = url }:list_customers())
    return errors
  end

  it("appears in no error message, field or tostring", function()
    for name, err in pairs(collect_errors()) do
      assert_clean(err, name .. " error")
    end
  end)

  it("is scrubbed from answers that echo it back", function()
    local echo = '{"code":"' .. env.mock.secret .. '","message":"your secret is ' .. env.mock.secret .. '"}'
    env.mock:fault{ path = PATH, method = "GET", status = 400, body = echo }
    local _, err = env.client:list_customers()
    assert.equal(400, err.status)
    assert_clean(err, "echoed error")
    assert.matches("REDACTED", err.message)
  end)

  it("stays out even when the redaction marker would spell it again", function()
    -- With the secret "]xxxxxxxxxxxxxxx", replacing it in "]]xxx...x" leaves
    -- "][REDACTED]xxx...x", which holds it again: such text is dropped whole.
    local secret = "]" .. ("x"):rep(15)
    local spelled = "]" .. secret .. ("x"):rep(15)
    local odd = mockserver.start{ secret = secret }
    local c = odd:client{ max_retries = 0 }
    odd:fault{ path = PATH, method = "GET", status = 400,
      body = '{"code":"' .. spelled .. '","message":"bad ' .. spelled .. '"}' }
    local _, err = c:list_customers()
    c:close()
    odd:cleanup()
    for _, field in ipairs{ "message", "code", "body" } do
      assert.is_nil(tostring(err[field]):find(secret, 1, true), field .. ": " .. tostring(err[field]))
    end
    assert.is_nil(tostring(err):find(secret, 1, true))
    assert.equal("bad request", err.message)
  end)

  it("shorter than 16 bytes, is scrubbed where it stands alone, not inside longer words", function()
    -- A test secret such as "ab" must not turn every "ab" of an answer into
    -- the marker; where it stands as a token of its own, it is scrubbed.
    local short = mockserver.start{ secret = "ab" }
    local c = short:client{ max_retries = 0 }
    short:fault{ path = PATH, method = "GET", status = 400,
      body = '{"code":"ab","message":"abc is not absent; key=ab, ab!"}' }
    local _, err = c:list_customers()
    c:close()
    short:cleanup()
    assert.equal("[REDACTED]", err.code)
    assert.equal("abc is not absent; key=[REDACTED], [REDACTED]!", err.message)
    assert.equal('{"code":"[REDACTED]","message":"abc is not absent; key=[REDACTED], [REDACTED]!"}', err.body)
  end)

  -- The secret is only an HMAC key: any bytes. A NUL cannot pass through
  -- the environment to orbt-mock; sign_spec.lua checks NUL against openssl.
  it("may hold CR, LF and bytes past ASCII, and signs with every one of them", function()
    local secret = "\r\n" .. mockserver.random_secret() .. "\r\255\n\1"
    local odd = mockserver.start{ secret = secret }
    local c = odd:client{ max_retries = 0 }
    local created, err = c:create_customer(harness.customer{ email = "odd@example.com" })
    assert.is_nil(err)
    assert.equal("odd@example.com", created.email)
    local page = assert(c:list_customers())
    assert.equal(1, #page.content)
    -- Each special byte counts: without it the signature is another one.
    for _, cut in ipairs{ "\r", "\n", "\255", "\1" } do
      local other = odd:client{ secret = secret:gsub(cut, "", 1), max_retries = 0 }
      local _, refused = other:list_customers()
      other:close()
      assert.equal(403, refused and refused.status, ("without %q"):format(cut))
    end
    c:close()
    odd:cleanup()
  end)

  it("is not in tostring(client)", function()
    local text = tostring(env.client)
    assert_clean(text, "tostring(client)")
    assert.matches(env.mock.client_id, text, 1, true)
    assert.matches(env.mock.url, text, 1, true)
  end)

  it("is in nothing orbt-mock logs or reports", function()
    assert(env.client:create_customer(harness.customer()))
    -- A request that carries the secret itself, as a careless client might.
    env.mock:http("GET", PATH, { "x-leak: " .. env.mock.secret })
    local _, raw_requests = env.mock:control("GET", "requests")
    local _, raw_stats = env.mock:control("GET", "stats")
    assert_clean(raw_requests, "the request log")
    assert_clean(raw_stats, "stats")
    assert.matches("REDACTED", raw_requests)
    assert_clean(env.mock:log(), "orbt-mock's log")
    assert.is_true(#env.mock:log() > 0)
  end)

  -- orbt-mock would show the secret as [REDACTED], so its absence from what
  -- the mock recorded means the secret was never on the wire.
  it("is never sent on the wire", function()
    env.mock:reset()
    assert(env.client:create_customer(harness.customer()))
    assert(env.client:list_customers{ page = 0, size = 5 })
    local _, raw = env.mock:control("GET", "requests")
    local seen = env.mock:requests()
    assert.equal(2, #seen)
    assert.is_nil(raw:find("REDACTED", 1, true), "a request carried the secret")
  end)

  it("leaves no piece of itself where an answer is cut to size", function()
    -- Each field is cut 4 bytes into the secret if cutting came before
    -- scrubbing: code at 64 bytes, message at 512, body at 4096.
    local head = ('{"code":"%s%s","message":"%s%s","pad":"'):format(
      ("C"):rep(60), env.mock.secret, ("m"):rep(508), env.mock.secret)
    local echo = head .. ("x"):rep(4092 - #head) .. env.mock.secret .. '"}'
    env.mock:fault{ path = PATH, method = "GET", status = 400, body = echo }
    local _, err = env.client:list_customers()
    assert.equal(400, err.status)
    local piece = env.mock.secret:sub(1, 4)
    for _, name in ipairs{ "code", "message", "body" } do
      assert.is_nil(err[name]:find(piece, 1, true), name .. " keeps a piece of the secret")
    end
    assert.equal(64, #err.code)
    assert.equal(512, #err.message)
    assert.is_true(#err.body <= 4096)
    assert.matches("REDACTED", err.body)
  end)
end)
