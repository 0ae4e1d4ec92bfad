-- Production hooks and request ids: on_request / on_response around every
-- attempt, on_hook_error, err.request_id, client:last_response() and
-- send_request_id. Every case runs on every transport (one libcurl call at
-- a time, the bulk engine, nginx cosockets on the LuaJIT pass) and must
-- come out the same; what was sent is read from orbt-mock.
local json = require("dkjson")
local orbt = require("orbt")
local harness = require("support.harness")
local calls = require("support.calls")
local raw = require("support.raw")

local call = calls.call
local PATH = "/api/partner/v1/customer"

-- What an info may hold: what the call is and how the attempt went.
local INFO_KEYS = { operation = true, method = true, path = true, attempt = true, idempotency = true,
  request_id = true, status = true, duration = true, bytes = true, kind = true, reason = true, retry = true,
  delay = true }

local TRANSPORTS = calls.TRANSPORTS
local copy = calls.copy

-- Runs calls with recording hooks (hooks = {raise =, yield =}; always on)
-- and returns outcomes, what the hooks saw, and last_response().
local function runner(env, transport)
  local run = calls.runner(env, transport)
  return function(list, options, hooks)
    return run(list, options, hooks or {})
  end
end

local function of_hook(seen, name)
  local list = {}
  for _, s in ipairs(seen) do
    if s.hook == name then
      list[#list + 1] = s.info or s
    end
  end
  return list
end

local function assert_info_keys(info)
  for k in pairs(info) do
    assert.is_true(INFO_KEYS[k] ~= nil, "an info field no one asked for: " .. tostring(k))
  end
end

for _, transport in ipairs(TRANSPORTS) do
  describe("hooks and request ids, over " .. transport.name, function()
    local env = harness.with_mock{ client = false, nginx = transport.nginx, lazy = true }
    local run = runner(env, transport)

    it("on_request runs before and on_response after every attempt, with what the call is and how it went",
      function()
      env.mock:fault{ path = PATH, method = "GET", status = 503, count = 1 }
      local outcomes, seen, last = run({ call("list_customers", { size = 2 }, { max_retries = 2 }) })
      assert.is_true(outcomes[1].ok, outcomes[1].text)
      local order = {}
      for i, s in ipairs(seen) do
        order[i] = s.hook .. " " .. s.info.attempt
        assert_info_keys(s.info)
        assert.equal("list_customers", s.info.operation)
        assert.equal("GET", s.info.method)
        assert.equal(PATH, s.info.path)
        assert.equal("read", s.info.idempotency)
      end
      assert.same({ "on_request 1", "on_response 1", "on_request 2", "on_response 2" }, order)
      local first, second = seen[2].info, seen[4].info
      assert.equal(503, first.status)
      assert.equal("api", first.kind)
      assert.equal("server", first.reason)
      assert.is_true(first.retry)
      assert.is_true(first.delay >= 0)
      assert.is_true(first.duration >= 0 and first.duration < 5)
      assert.matches("^mock%-%x+$", first.request_id)
      assert.equal(200, second.status)
      assert.is_false(second.retry)
      assert.is_nil(second.kind)
      assert.is_nil(second.delay)
      assert.is_true(second.bytes > 0)
      assert.matches("^mock%-%x+$", second.request_id)
      assert.are_not.equal(first.request_id, second.request_id)
      -- last_response: the call as a whole.
      assert.equal(200, last.status)
      assert.equal(2, last.attempts)
      assert.equal("list_customers", last.operation)
      assert.equal(second.request_id, last.request_id)
      assert.is_true(last.duration >= first.duration + second.duration)
    end)

    it("gives the error its request id, in tostring too, and on_response the error's kind and reason",
      function()
      env.mock:fault{ path = PATH, method = "POST", status = 503, count = 1 }
      local outcomes, seen, last = run({ call("create_customer", harness.customer()) })
      local err = outcomes[1]
      assert.is_false(err.ok)
      assert.matches("^mock%-%x+$", err.request_id)
      assert.matches(", request id " .. err.request_id .. ")", err.text, 1, true)
      local responses = of_hook(seen, "on_response")
      assert.equal(1, #responses)
      assert.equal("create", responses[1].idempotency)
      assert.equal("api", responses[1].kind)
      assert.equal("server", responses[1].reason)
      assert.is_false(responses[1].retry)
      assert.equal(err.request_id, responses[1].request_id)
      assert.equal(503, last.status)
      assert.equal(err.request_id, last.request_id)
    end)

    it("sees a timeout and the retry of a keyed call", function()
      local customer = assert(run({ call("create_customer", harness.customer()) })[1].result)
      local wallet = customer.walletId
      env.mock:fault{ path = "/api/partner/v1/wallets/" .. wallet .. "/transactions", method = "POST",
        delay_ms = 700, count = 1 }
      local outcomes, seen = run({ call("credit", wallet, { amount = "1.50", referenceId = "hooked" }) },
        { timeout = 0.3 })
      assert.is_true(outcomes[1].ok, outcomes[1].text)
      local responses = of_hook(seen, "on_response")
      assert.equal(2, #responses, json.encode(seen))
      assert.equal("keyed", responses[1].idempotency)
      assert.equal("timeout", responses[1].kind)
      assert.is_true(responses[1].retry)
      assert.is_nil(responses[1].status)
      assert.is_true(responses[1].duration >= 0.25)
      assert.equal(200, responses[2].status)
      assert.equal(1, env.mock:stats().movements)
    end)

    it("goes on when a hook raises, and tells on_hook_error once per failure", function()
      local outcomes, seen = run({ call("list_customers", {}), call("create_customer", harness.customer()) }, nil,
        { raise = "on_request" })
      assert.is_true(outcomes[1].ok, outcomes[1].text)
      assert.is_true(outcomes[2].ok, outcomes[2].text)
      local reported = of_hook(seen, "on_hook_error")
      assert.equal(2, #reported)
      assert.matches("the on_request hook raised an error; the call went on:", reported[1].message, 1, true)
      assert.matches("fails on purpose", reported[1].message, 1, true)
      assert.equal("list_customers", reported[1].operation)
      assert.equal("create_customer", reported[2].operation)
      assert.equal(2, #of_hook(seen, "on_response"))
      assert.equal(1, env.mock:stats().consumers)
    end)

    if transport.nginx then
      it("runs a call's own hooks instead of the client's, for single and bulk calls", function()
        local status, body = env.nginx:get("/call-hooks")
        assert.equal(200, status, body)
        local got = assert(json.decode(body), body)
        assert.same({ "call on_request list_customers", "call on_response list_customers",
          "call on_request create_customer", "call on_response create_customer",
          "client on_request list_customers", "client on_response list_customers" }, got.seen)
      end)

      it("reports a hook that yields (ngx.sleep) as its error, and the call goes on", function()
        local outcomes, seen = run({ call("list_customers", {}) }, nil, { yield = "on_response" })
        assert.is_true(outcomes[1].ok, outcomes[1].text)
        local reported = of_hook(seen, "on_hook_error")
        assert.equal(1, #reported, json.encode(seen))
        assert.matches("the on_response hook tried to yield (ngx.sleep, a cosocket): hooks run inside the call "
          .. "and cannot; do I/O from ngx.timer.at instead", reported[1].message, 1, true)
      end)
    end

    it("sends a fresh x-request-id with each attempt when asked, and reports that id", function()
      env.mock:fault{ path = PATH, method = "GET", status = 502, count = 1 }
      local outcomes, seen = run({ call("list_customers", {}, { max_retries = 1 }) }, { send_request_id = true })
      assert.is_true(outcomes[1].ok, outcomes[1].text)
      local sent = {}
      for _, rq in ipairs(env.mock:requests(2)) do
        sent[#sent + 1] = rq.headers["x-request-id"]
      end
      local requests, responses = of_hook(seen, "on_request"), of_hook(seen, "on_response")
      assert.equal(2, #sent)
      for i = 1, 2 do
        assert.matches("^%x+%-%x+%-4%x+%-[89ab]%x+%-%x+$", sent[i])
        assert.equal(sent[i], requests[i].request_id)
        assert.equal(sent[i], responses[i].request_id) -- orbt-mock passes it on
      end
      assert.are_not.equal(sent[1], sent[2])
    end)

    it("puts no header value, body, secret, api key or signature in any info, over a run of faults", function()
      local customers = harness.customers(4)
      env.mock:fault{ path = PATH, method = "GET", status = 503, count = 1 }
      env.mock:fault{ path = PATH, method = "GET", drop = "before", count = 1 }
      env.mock:fault{ path = PATH, method = "GET", status = 200, truncate = true, count = 1 }
      env.mock:fault{ path = PATH, method = "POST", status = 400, count = 1,
        body = '{"code":"E","message":"' .. env.mock.secret .. '"}' }
      env.mock:fault{ path = PATH, method = "POST", status = 429, retry_after = "0", count = 1 }
      local outcomes, seen = run({
        call("list_customers", {}, { max_retries = 3 }),
        call("create_customer", customers[1]),
        call("create_customer", customers[2]),
        call("list_customers", {}, { max_retries = 0 }),
      }, { send_request_id = true })
      assert.is_true(#seen >= 12)
      local secrets = { env.mock.secret, env.mock.api_key, env.mock.client_id }
      for _, rq in ipairs(env.mock:requests(50)) do
        secrets[#secrets + 1] = rq.headers["x-signature"]
        secrets[#secrets + 1] = rq.headers["x-body-hash"]
      end
      local function walk(v, where)
        if type(v) == "table" then
          for k, x in pairs(v) do
            walk(k, where)
            walk(x, where .. "." .. tostring(k))
          end
        elseif type(v) == "string" then
          for _, s in ipairs(secrets) do
            assert.is_nil(v:find(s, 1, true), where .. " holds a credential or a signature: " .. v)
          end
          assert.is_nil(v:find('"code":"E"', 1, true), where .. " holds a body")
        end
      end
      walk(seen, "seen")
      assert.is_false(outcomes[2].ok)
    end)
  end)
end

describe("hooks, in a client's calls", function()
  local env = harness.with_mock{ client = false }

  it("a call's own hooks in its limits table replace the client's for that call", function()
    local client_saw, call_saw = {}, {}
    local client = env.mock:client{ on_request = function(info) client_saw[#client_saw + 1] = info.operation end }
    assert(client:list_customers(nil, { on_request = function(info) call_saw[#call_saw + 1] = info.operation end }))
    assert(client:list_customers())
    assert(client:create_customers({ harness.customer() },
      { on_request = function(info) call_saw[#call_saw + 1] = info.operation end }))
    client:close()
    assert.same({ "list_customers", "create_customer" }, call_saw)
    assert.same({ "list_customers" }, client_saw)
  end)

  it("refuses a hook that is not a function, before any traffic", function()
    local _, err = orbt.new{ api_key = "k", client_id = "c", secret = "s", on_response = "log" }
    assert.equal("on_response", err.field)
    local client = env.mock:client()
    local _, call_err = client:list_customers(nil, { on_request = true })
    assert.equal("on_request", call_err.field)
    client:close()
    assert.equal(0, env.mock:request_count())
  end)

  it("ends the retries when a hook closes the client, and tells on_response once per attempt", function()
    env.mock:fault{ path = PATH, method = "GET", status = 503, count = 5 }
    local seen = {}
    local client
    client = env.mock:client{ max_retries = 3,
      on_request = function() client:close() end,
      on_response = function(info)
        seen[#seen + 1] = ("%d %s %s %s"):format(info.attempt, tostring(info.status), tostring(info.retry), info.path)
      end }
    local _, err = client:list_customers()
    assert.equal(503, err.status)
    assert.equal(1, err.attempts)
    assert.same({ "1 503 false " .. PATH }, seen)
    local _, after = client:list_customers()
    assert.matches("closed", after.message, 1, true)
  end)

  it("keeps a client the hook closes working until the call ends, and refuses calls from inside a hook", function()
    local client
    local inner
    client = env.mock:client{ on_request = function()
      inner = select(2, client:list_customers())
      client:close()
    end }
    assert(client:list_customers())
    assert.equal("invalid", inner.kind)
    assert.matches("in use", inner.message, 1, true)
    local _, after = client:list_customers()
    assert.matches("closed", after.message, 1, true)
  end)

  it("writes a hook's error to stderr when there is no on_hook_error", function()
    local shell = require("support.shell")
    local script = ([[
      local orbt = require("orbt")
      local c = assert(orbt.new{ api_key = %q, client_id = %q, secret = %q, base_url = %q,
        on_response = function() error("out of ink") end })
      assert(c:list_customers())
      print("done")
    ]]):format(env.mock.api_key, env.mock.client_id, env.mock.secret, env.mock.url)
    local out = shell.run(shell.lua_command(script) .. " 2>&1")
    assert.matches("orbt: the on_response hook raised an error; the call went on: .*out of ink\ndone", out)
  end)
end)

describe("request ids", function()
  it("come from the first header the client prefers, and request_id_headers goes first", function()
    local headers = { "traceparent: 00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01",
      "X-Correlation-Id: corr-1", "X-Trace-Id: custom 7" }
    local server = raw.start(("return { default = { bytes = %q } }"):format(raw.answer("503 Busy", "{}", headers)))
    local function first_id(options)
      local client = assert(orbt.new(copy({ api_key = "k", client_id = "c", secret = "s", base_url = server.url,
        max_retries = 0 }, options)))
      local _, err = client:list_customers()
      local last = client:last_response()
      client:close()
      assert.equal(err.request_id, last.request_id)
      return err.request_id
    end
    assert.equal("corr-1", first_id())
    -- Cut at the first byte that is not visible ASCII.
    assert.equal("custom", first_id{ request_id_headers = { "X-Trace-Id" } })
    assert.equal("corr-1", first_id{ request_id_headers = { "x-none" } })
    server:cleanup()
    local _, err = orbt.new{ api_key = "k", client_id = "c", secret = "s", request_id_headers = { "bad name" } }
    assert.equal("request_id_headers", err.field)
  end)
end)
