-- Validation: every rule of the interface refuses bad input with an `invalid`
-- error naming the field, and orbt-mock proves no request reached it.
local orbt = require("orbt")
local harness = require("support.harness")

describe("validation before sending", function()
  local env = harness.with_mock{ lazy = true, shared_client = true, reset = false }

  -- Runs `call`, checks it was refused on `field`, and that the server saw nothing.
  local function assert_refused(field, call)
    local before = env.mock:request_count()
    local result, err = call()
    assert.is_nil(result)
    assert.is_table(err)
    assert.equal("invalid", err.kind)
    assert.equal(field, err.field)
    assert.is_false(err.retryable)
    assert.is_string(err.message)
    assert.is_nil(err.status)
    assert.equal(before, env.mock:request_count(), "a refused call reached the server")
  end

  local function refused_create(field, overrides)
    assert_refused(field, function()
      return env.client:create_customer(harness.customer(overrides))
    end)
  end

  it("sends a valid create (the baseline the other cases differ from)", function()
    local before = env.mock:request_count()
    assert.is_table((env.client:create_customer(harness.customer{ email = "baseline@example.com" })))
    assert.equal(before + 1, env.mock:request_count())
  end)

  describe("create_customer", function()
    it("requires every field", function()
      for _, field in ipairs{ "fullName", "email", "currency", "initialFunds" } do
        refused_create(field, { [field] = false }) -- wrong type
        local c = harness.customer()
        c[field] = nil
        assert_refused(field, function() return env.client:create_customer(c) end)
      end
    end)

    it("requires strings to be strings and not empty", function()
      refused_create("fullName", { fullName = 42 })
      refused_create("fullName", { fullName = "" })
      refused_create("email", { email = {} })
      refused_create("currency", { currency = 840 })
    end)

    it("refuses a fullName that is not UTF-8 text", function()
      refused_create("fullName", { fullName = "Jane\255Smith" })
      refused_create("fullName", { fullName = "Jane\nSmith" })
      refused_create("fullName", { fullName = "Jane\0Smith" })
    end)

    it("refuses an email that is not shaped like an address", function()
      for _, email in ipairs{ "jane", "jane@", "@example.com", "jane smith@example.com",
        "jane@exam ple.com", "jane\t@example.com", "jane@example.com\n", "jane\0@example.com",
        "a@b@example.com", "jane@.example.com", "jane@example.com." } do
        refused_create("email", { email = email })
      end
    end)

    it("refuses a currency that is not three upper-case letters", function()
      for _, currency in ipairs{ "usd", "US", "USDT", "U5D", "ÜSD", " USD" } do
        refused_create("currency", { currency = currency })
      end
    end)

    it("refuses initialFunds that are not a finite amount >= 0", function()
      for _, amount in ipairs{ 0 / 0, math.huge, -math.huge, -1, -0.01, "-1", "abc", "",
        "5e3", "050", "1.", ".5", "1,50", " 5", "5 ", "0x10", "1.2.3", "+5", true } do
        refused_create("initialFunds", { initialFunds = amount })
      end
    end)

    it("refuses unknown fields", function()
      refused_create("walletId", { walletId = "101" })
      refused_create("fullname", { fullname = "lower-case typo" })
    end)

    it("refuses a field name that only starts like a known one", function()
      local c = harness.customer()
      c["initialFunds\0"] = 999
      assert_refused("initialFunds", function() return env.client:create_customer(c) end)
    end)

    -- A table whose __index hands out strings nothing else refers to,
    -- collecting garbage on every access: validation must keep each string
    -- alive while it uses it. The values are built at run time and kept
    -- reversed, because Lua interns short strings and a literal in any loaded
    -- chunk would keep the "fresh" string alive. A use-after-free here shows
    -- under `make test SANITIZE=1`.
    it("reads tables whose fields come from an __index function", function()
      local stamp = tostring(os.time() % 100000)
      local forward = {
        fullName = "Proxy " .. stamp,
        email = "proxy." .. stamp .. "@example.org",
        currency = "C" .. ("fh"):upper(),
        initialFunds = ("%d.%02d"):format(12, 57),
      }
      local reversed = {}
      for k, v in pairs(forward) do
        reversed[k] = v:reverse()
      end
      forward = nil -- luacheck: ignore 311
      local proxy = setmetatable({}, { __index = function(_, key)
        collectgarbage()
        local v = reversed[key]
        return v and v:reverse()
      end })
      local customer, err = env.client:create_customer(proxy)
      assert.is_table(customer, tostring(err))
      assert.equal("proxy." .. stamp .. "@example.org", customer.email)
      assert.matches('"initialFunds":12.57}$', env.mock:last_request().body)
    end)

    it("refuses a customer that is not a table", function()
      assert_refused("customer", function() return env.client:create_customer("jane") end)
      assert_refused("customer", function() return env.client:create_customer() end)
    end)
  end)

  describe("list_customers", function()
    it("refuses a page that is not an integer >= 0", function()
      for _, page in ipairs{ -1, 1.5, "1", 0 / 0, math.huge, true } do
        assert_refused("page", function() return env.client:list_customers{ page = page } end)
      end
    end)

    it("refuses a size outside 1..50", function()
      for _, size in ipairs{ 0, 51, -5, 2.5, "20", 1e9 } do
        assert_refused("size", function() return env.client:list_customers{ size = size } end)
      end
    end)

    it("refuses unknown options", function()
      assert_refused("limit", function() return env.client:list_customers{ limit = 5 } end)
    end)
  end)

  describe("the iterators", function()
    -- Iterator options are raised (a for loop has no place for `nil, err`).
    local function assert_raises_invalid(field, fn)
      local before = env.mock:request_count()
      local ok, err = pcall(fn)
      assert.is_false(ok)
      assert.is_table(err)
      assert.equal("invalid", err.kind)
      assert.equal(field, err.field)
      assert.matches("^orbt: invalid: ", tostring(err))
      assert.equal(before, env.mock:request_count())
    end

    it("refuse bad page, size, limit and unknown options before any request", function()
      assert_raises_invalid("size", function() return env.client:customers{ size = 51 } end)
      assert_raises_invalid("page", function() return env.client:customer_pages{ page = -1 } end)
      assert_raises_invalid("limit", function() return env.client:customers{ limit = 1.5 } end)
      assert_raises_invalid("pages", function() return env.client:customers{ pages = 2 } end)
    end)
  end)

  describe("orbt.new", function()
    local function new_with(overrides)
      local m = env.mock
      local opts = { api_key = m.api_key, client_id = m.client_id, secret = m.secret, base_url = m.url }
      for k, v in pairs(overrides) do
        opts[k] = v
      end
      return orbt.new(opts)
    end

    it("refuses an api_key or client_id with CR, LF or NUL: they are header values", function()
      for _, field in ipairs{ "api_key", "client_id" } do
        for _, bad in ipairs{ "a\rb", "a\nb", "a\0b", "key\r\nX-Injected: 1" } do
          assert_refused(field, function() return new_with{ [field] = bad } end)
        end
      end
    end)

    -- The secret is only an HMAC key, never sent (secret_spec.lua signs
    -- with such secrets against orbt-mock; sign_spec.lua against openssl).
    it("accepts a secret with CR, LF, NUL or any other byte", function()
      for _, secret in ipairs{ "a\rb", "a\nb", "a\0b", "\0", "key\r\nX-Injected: 1", "\255\254", "\1\127" } do
        local c, err = new_with{ secret = secret }
        assert.is_nil(err, ("%q"):format(secret))
        assert.is_not_nil(c)
        c:close()
      end
    end)

    it("requires the credentials", function()
      for _, field in ipairs{ "api_key", "client_id", "secret" } do
        assert_refused(field, function() return new_with{ [field] = false } end)
        assert_refused(field, function() return new_with{ [field] = "" } end)
      end
    end)

    it("accepts http:// only for loopback hosts unless told otherwise", function()
      assert_refused("base_url", function() return new_with{ base_url = "http://partner.orbt.com" } end)
      assert_refused("base_url", function() return new_with{ base_url = "http://10.0.0.1:8080" } end)
      assert_refused("base_url", function() return new_with{ base_url = "ftp://partner.orbt.com" } end)
      assert_refused("base_url", function() return new_with{ base_url = "https://user:pw@partner.orbt.com" } end)
      assert_refused("base_url", function() return new_with{ base_url = "https://partner.orbt.com?x=1" } end)
      local accepted = { "http://localhost:1", "http://127.0.0.2:1", "http://[::1]:1", "https://partner.orbt.com" }
      for _, url in ipairs(accepted) do
        assert.is_not_nil(new_with{ base_url = url }, url)
      end
      assert.is_not_nil(new_with{ base_url = "http://partner.orbt.com", allow_insecure_http = true })
    end)

    it("refuses bad timeouts, sizes and unknown options", function()
      assert_refused("timeout", function() return new_with{ timeout = 0 } end)
      assert_refused("timeout", function() return new_with{ timeout = -1 } end)
      assert_refused("timeout", function() return new_with{ timeout = 0 / 0 } end)
      assert_refused("connect_timeout", function() return new_with{ connect_timeout = "10" } end)
      assert_refused("max_body", function() return new_with{ max_body = 1.5 } end)
      assert_refused("allow_insecure_http", function() return new_with{ allow_insecure_http = "yes" } end)
      assert_refused("secret_key", function() return new_with{ secret_key = "x" } end)
      assert.is_not_nil(new_with{ timeout = 0.25, connect_timeout = 0.1 })
    end)

    it("takes a ca_file only when it can be read", function()
      assert_refused("ca_file", function() return new_with{ ca_file = "/nonexistent/orbt-ca.pem" } end)
      assert_refused("ca_file", function() return new_with{ ca_file = 1 } end)
      local _, dir = new_with{ ca_file = "/etc" }
      assert.equal("ca_file", dir.field)
      assert.matches("not a directory", dir.message, 1, true)
      local path = os.tmpname()
      assert.is_not_nil(new_with{ ca_file = path })
      os.remove(path)
    end)

    it("takes a pool_size from 1 and a pool_backlog from 0 (cosockets' keep-alive pool)", function()
      assert.is_not_nil(new_with{ pool_size = 1, pool_backlog = 0 })
      assert.is_not_nil(new_with{ pool_size = 2000, pool_backlog = 5000 })
      for _, bad in ipairs{ { pool_size = 0 }, { pool_size = 2.5 }, { pool_size = "256" }, { pool_backlog = -1 },
        { pool_backlog = 100001 } } do
        local field = next(bad)
        assert_refused(field, function() return new_with(bad) end)
      end
    end)

    it("takes a transport: auto or curl anywhere, cosocket only inside nginx", function()
      assert.is_not_nil(new_with{ transport = "auto" })
      assert.is_not_nil(new_with{ transport = "curl" })
      assert_refused("transport", function() return new_with{ transport = "socket" } end)
      assert_refused("transport", function() return new_with{ transport = 1 } end)
      local _, err = new_with{ transport = "cosocket" }
      assert.equal("transport", err.field)
      assert.matches("only inside nginx", err.message, 1, true)
    end)
  end)

  it("raises only on misuse: a method called on something that is not a client", function()
    assert.has_error(function() env.client.create_customer({}, harness.customer()) end)
    assert.has_error(function() env.client.list_customers(nil) end)
  end)
end)
