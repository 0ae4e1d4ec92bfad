-- orbt inside a real nginx (Debian's nginx with its Lua module, LuaJIT):
-- requests go over cosockets wherever nginx allows them, and through
-- libcurl elsewhere. Runs on the LuaJIT pass of `make test` (tag "nginx").
local json = require("dkjson")
local mockserver = require("support.mock")
local harness = require("support.harness")

local PATH = mockserver.PATH
-- The module in nginx is this run's: the same version as the one loaded here.
local AGENT = "orbt-lua/" .. require("orbt")._VERSION
local COSOCKET_AGENT = AGENT .. " (nginx cosocket)"

local function user_agent(request)
  for name, value in pairs(request.headers) do
    if name:lower() == "user-agent" then
      return value
    end
  end
end

describe("orbt in nginx #nginx", function()
  local env = harness.with_mock{ client = false, nginx = { settings = { dead_url = "http://127.0.0.1:9" } } }

  local function get_json(path)
    local status, body = env.nginx:get(path)
    assert.equal(200, status, body)
    return assert(json.decode(body), body)
  end

  it("creates, lists and walks consumers from a content handler over cosockets", function()
    local result = get_json("/walk?count=5&tag=walk")
    assert.is_nil(result.error, result.error and result.error.text)
    assert.equal(5, #result.created)
    assert.equal(101, result.created[1].id)
    assert.equal("19.99", result.created[1].balance)
    assert.equal(2, result.first_page)
    assert.is_true(result.has_next)
    assert.same({ 101, 102, 103, 104, 105 }, result.walked)
    assert.equal("content", result.phase)
    -- What reached orbt-mock: 5 creates, 1 list and 3 pages of the walk,
    -- all sent by the cosocket transport, all verified by the mock.
    local stats = env.mock:stats()
    assert.equal(9, stats.requests_total)
    assert.equal(0, stats.auth_failures)
    assert.equal(5, stats.consumers)
    for _, request in ipairs(env.mock:requests(9)) do
      assert.equal(COSOCKET_AGENT, user_agent(request))
    end
  end)

  it("keeps connections alive in nginx's pool", function()
    get_json("/walk?count=3&tag=pool")
    get_json("/walk?count=2&tag=pool2")
    -- 5 creates + 2 lists + 5 pages from one worker, over one connection.
    local stats = env.mock:stats()
    assert.equal(12, stats.requests_total)
    assert.equal(1, stats.connections)
  end)

  -- orbt-mock holds each list delay_ms; `count` requests reach the worker
  -- at once. Each must succeed; returns orbt-mock's stats.
  local function delayed_lists(path, count, delay_ms)
    env.mock:fault{ path = PATH, method = "GET", count = count, delay_ms = delay_ms }
    for _, body in ipairs(env.nginx:get_parallel(path, count)) do
      local result = assert(json.decode(body), body)
      assert.is_true(result.ok, body)
    end
    local stats = env.mock:stats()
    assert.equal(count, stats.requests_total)
    return stats
  end

  it("does not block the worker: 20 requests wait on orbt-mock at the same moment", function()
    local stats = delayed_lists("/list", 20, 300)
    assert.is_true(stats.peak_in_flight >= 15, "peak in flight was " .. stats.peak_in_flight)
  end)

  -- 8 requests held 150 ms each: one after the other, 1.2 s.
  it("blocks the worker when libcurl is forced: one request in flight at a time", function()
    local stats = delayed_lists("/list?transport=curl", 8, 150)
    assert.equal(1, stats.peak_in_flight)
    for _, request in ipairs(env.mock:requests(8)) do
      assert.equal(AGENT, user_agent(request))
    end
  end)

  it("sends a GET again when a pooled connection dies, but never a create", function()
    assert.is_true(get_json("/list").ok) -- a pooled connection to reuse
    env.mock:reset()
    env.mock:fault{ path = PATH, method = "POST", drop = "before" }
    local created = get_json("/create?tag=stale")
    assert.is_false(created.ok)
    assert.equal("network", created.error.kind)
    assert.is_false(created.error.retryable)
    assert.equal(1, env.mock:stats().requests_total, "the create reached the server more than once")
    assert.equal(0, env.mock:stats().consumers)

    assert.is_true(get_json("/list").ok)
    env.mock:reset()
    env.mock:fault{ path = PATH, method = "GET", drop = "before" }
    local listed = get_json("/list")
    assert.is_true(listed.ok, listed.error and listed.error.text)
    assert.equal(2, env.mock:stats().requests_total) -- the dropped one and the one sent again
  end)

  it("retries with the core's policy over cosockets: a list again, a create not", function()
    env.mock:fault{ path = PATH, method = "GET", status = 503, retry_after = "1", count = 1 }
    env.mock:fault{ path = PATH, method = "POST", status = 503, count = 1 }
    local result = get_json("/retry")
    assert.is_true(result.list.ok, result.list.error and result.list.error.text)
    assert.is_false(result.create.ok)
    assert.equal(503, result.create.error.status)
    assert.equal(1, result.create.attempts)
    local requests = env.mock:requests(3)
    assert.equal(3, #requests)
    assert.equal("GET", requests[1].method)
    assert.equal("GET", requests[2].method)
    assert.are_not.equal(requests[1].headers["x-timestamp"], requests[2].headers["x-timestamp"])
    assert.equal(0, env.mock:stats().consumers)
  end)

  it("ends hostile answers in clear errors: thousands of headers, 100 MiB, 10,000 levels", function()
    env.mock:fault{ path = PATH, method = "GET", headers = 5000 }
    local result = get_json("/hostile")
    assert.equal("decode", result.error.kind)
    assert.is_false(result.error.retryable)
    assert.matches("more than 200 header lines", result.error.message, 1, true)
    for _, chunked in ipairs{ false, true } do
      env.mock:fault{ path = PATH, method = "GET", status = 200, oversize = 100 * 1024 * 1024, chunked = chunked }
      result = get_json("/hostile")
      assert.equal("decode", result.error.kind)
      assert.matches("max_body", result.error.message, 1, true)
    end
    env.mock:fault{ path = PATH, method = "GET", status = 200, body = ("["):rep(10000) .. ("]"):rep(10000) }
    result = get_json("/hostile")
    assert.equal("decode", result.error.kind)
    assert.is_true(get_json("/hostile").ok, "the worker's client works afterwards")
  end)

  it("creates many consumers at once over cosockets, one result per input in order", function()
    env.mock:fault{ path = PATH, method = "POST", delay_ms = 300, count = 11 }
    local result = get_json("/bulk")
    assert.equal(12, result.count)
    assert.equal(1, result.failures)
    for i = 1, 12 do
      if i == 5 then
        assert.equal("invalid", result.kinds[i])
      else
        assert.equal(("nginx-bulk%d@example.com"):format(i), result.emails[i])
      end
    end
    local stats = env.mock:stats()
    assert.equal(11, stats.consumers)
    assert.is_true(stats.peak_in_flight >= 3, "peak in flight " .. stats.peak_in_flight)
    assert.is_true(stats.peak_in_flight <= 4, "peak in flight " .. stats.peak_in_flight)
    for _, request in ipairs(env.mock:requests(11)) do
      assert.matches(COSOCKET_AGENT, user_agent(request), 1, true)
    end
  end)

  it("uses libcurl where nginx has no cosockets, and refuses a forced cosocket there", function()
    local result = get_json("/init-worker")
    assert.is_true(result.auto.ok, result.auto.error and result.auto.error.text)
    assert.is_false(result.forced_cosocket.ok)
    assert.equal("invalid", result.forced_cosocket.error.kind)
    assert.equal("transport", result.forced_cosocket.error.field)
    assert.matches("init_worker", result.forced_cosocket.error.message, 1, true)
  end)

  it("uses cosockets in a timer", function()
    local result = get_json("/timer")
    assert.is_true(result.ok, result.error and result.error.message)
    assert.matches(COSOCKET_AGENT, user_agent(env.mock:last_request()), 1, true)
  end)

  it("verifies TLS peers: a trusted certificate works, an untrusted one is refused unsent, for good", function()
    local result = get_json("/tls")
    assert.is_true(result.trusted.ok, result.trusted.error and result.trusted.error.text)
    assert.is_true(result.trusted.again)
    assert.is_false(result.untrusted.ok)
    assert.equal("network", result.untrusted.error.kind)
    assert.matches("TLS handshake", result.untrusted.error.message, 1, true)
    assert.matches("certificate", result.untrusted.error.message, 1, true)
    -- The handshake failed before any request was sent, and fails the same
    -- way every time: not retryable, and said so.
    assert.equal("network", result.untrusted_create.error.kind)
    assert.is_false(result.untrusted_create.error.retryable)
    assert.is_false(result.untrusted.error.retryable)
    assert.equal(1, result.untrusted.error.attempts, "a refused certificate is not tried again")
    assert.matches("not trusted", result.untrusted_create.error.message, 1, true)
    assert.is_nil(result.untrusted_create.error.message:find("may have been applied", 1, true))
    -- Only the two trusted calls reached orbt-mock.
    assert.equal(2, env.mock:stats().requests_total)
  end)

  it("holds 200 calls at once to pool_size connections when a backlog lets the rest wait", function()
    -- 10 rounds of 20 calls that each take 100 ms: about 1 s when every
    -- freed connection goes to a waiting call at once.
    env.mock:fault{ path = PATH, method = "GET", delay_ms = 100, count = 1000 }
    local result = get_json("/pool?count=200&pool_size=20&backlog=200&connect_timeout=3")
    assert.equal(200, result.ok, json.encode(result.errors))
    assert.is_true(env.mock:stats().connections <= 20, "connections: " .. env.mock:stats().connections)
  end)

  it("fails a call that waited connect_timeout for a pooled connection, with nothing sent", function()
    env.mock:fault{ path = PATH, method = "GET", delay_ms = 1500, count = 1000 }
    local result = get_json("/pool?count=3&pool_size=1&backlog=5&connect_timeout=0.3")
    assert.equal(1, result.ok, json.encode(result.errors))
    assert.equal(2, #result.errors)
    for _, err in ipairs(result.errors) do
      assert.equal("timeout", err.kind)
      assert.is_true(err.retryable)
      assert.is_false(err.maybe_applied)
      assert.matches("waited 0.3 s for one of the keep-alive pool's 1 connections (pool_size); nothing was sent",
        err.message, 1, true)
    end
    assert.equal(1, env.mock:stats().requests_total)
  end)

  it("gives back the place of a call whose light thread was killed holding a pooled connection", function()
    env.mock:fault{ path = PATH, method = "GET", delay_ms = 1500, count = 1 }
    local result = get_json("/pool_kill")
    assert.truthy(result.killed, json.encode(result))
    assert.is_true(result.ok, json.encode(result.error))
    assert.is_true(result.seconds < 1, "the next call waited " .. result.seconds .. " s")
  end)

  it("fails a call beyond pool_size + pool_backlog with a clear, retryable network error", function()
    env.mock:fault{ path = PATH, method = "GET", delay_ms = 300, count = 1000 }
    local result = get_json("/pool?count=20&pool_size=2&backlog=3")
    assert.equal(5, result.ok)
    assert.equal(15, #result.errors)
    for _, err in ipairs(result.errors) do
      assert.equal("network", err.kind)
      assert.is_true(err.retryable)
      assert.is_false(err.maybe_applied)
      assert.matches("the keep-alive pool is full: 2 connections in use and 3 calls waiting (pool_size, "
        .. "pool_backlog); nothing was sent", err.message, 1, true)
    end
    assert.is_true(env.mock:stats().connections <= 2)
  end)

  it("bounds name resolution by timeout, connect_timeout and deadline, with a resolver that never answers",
    function()
    local result = get_json("/unresolvable")
    local limits = { timeout = 1, connect_timeout = 0.5, create = 1, retried = 0.8, deadline = 0.7 }
    for name, limit in pairs(limits) do
      local r = result[name]
      assert.is_false(r.ok, name)
      assert.equal("timeout", r.kind, name)
      assert.matches(name == "deadline" and "the call's deadline of 0.7 s passed"
        or "could not connect to orbt-spec.invalid:443: resolving the name or connecting took longer than", r.message,
        1, true)
      assert.is_true(r.retryable, name) -- nothing was sent
      assert.is_false(r.maybe_applied, name)
      -- Well before nginx's resolver_timeout of 30 s.
      assert.is_true(r.seconds >= limit * 0.9 and r.seconds < limit + 1.5,
        ("%s: %.2f s for a limit of %g s"):format(name, r.seconds, limit))
    end
    assert.equal(2, result.retried.attempts)
    assert.equal(0, env.mock:stats().requests_total)
  end)

  it("trusts a CA file through libcurl, and refuses one for cosockets", function()
    local orbt = require("orbt")
    local function client(url, ca_file)
      return assert(orbt.new{ api_key = env.mock.api_key, client_id = env.mock.client_id, secret = env.mock.secret,
        base_url = url, ca_file = ca_file, max_retries = 0, timeout = 10 })
    end
    assert(client(env.nginx.settings.tls_url, env.nginx.settings.ca_file):list_customers())
    local _, unknown_ca = client(env.nginx.settings.tls_url):list_customers()
    assert.equal("network", unknown_ca.kind)
    assert.matches("certificate", unknown_ca.message)
    local _, untrusted = client(env.nginx.settings.untrusted_url, env.nginx.settings.ca_file):list_customers()
    assert.equal("network", untrusted.kind)
    local _, missing = orbt.new{ api_key = "k", client_id = "c", secret = "s", ca_file = "/nonexistent/ca.pem" }
    assert.equal("ca_file", missing.field)
    assert.equal(1, env.mock:stats().requests_total)

    local result = get_json("/ca-file")
    assert.equal("invalid", result.error.kind)
    assert.equal("ca_file", result.error.field)
    assert.matches("lua_ssl_trusted_certificate", result.error.message, 1, true)
    assert.is_false(result.made)
    assert.equal("invalid", result.new_error.kind)
    assert.equal("ca_file", result.new_error.field)
    assert.equal(result.error.message, result.new_error.message)
  end)

  -- One handshake for a run of calls; when the server closes the connection,
  -- the next one resumes the TLS session instead of starting again: on
  -- libcurl's connections and on cosockets alike.
  local function tls_entries(earlier, count)
    -- nginx logs a request after it answered: wait for the lines.
    local log = require("support.shell").wait_for(function()
      local entries = env.nginx:tls_log()
      return #entries >= earlier + count and entries or nil
    end, 10) or env.nginx:tls_log()
    local kept_log, closing_log = {}, {}
    for i = earlier + 1, #log do
      local entry = log[i]
      if entry.uri:match("^/once/") then
        closing_log[#closing_log + 1] = entry
      elseif entry.uri:match("^/api/") then
        kept_log[#kept_log + 1] = entry
      end
    end
    return kept_log, closing_log
  end

  -- first: whether the first connection resumed a session of earlier calls.
  local function assert_resumed(closing_log, first)
    assert.equal(3, #closing_log)
    for i, entry in ipairs(closing_log) do
      assert.equal(1, entry.number, "a new connection for each call")
      assert.equal(i > 1 or first, entry.resumed, "resumed from the second connection on")
    end
  end

  it("keeps one TLS connection through libcurl, and resumes the session on a new one", function()
    local orbt = require("orbt")
    local function client(url)
      return assert(orbt.new{ api_key = env.mock.api_key, client_id = env.mock.client_id, secret = env.mock.secret,
        base_url = url, ca_file = env.nginx.settings.ca_file, max_retries = 0, timeout = 10 })
    end
    local earlier = #env.nginx:tls_log()
    local kept = client(env.nginx.settings.tls_url)
    for _ = 1, 3 do assert(kept:list_customers()) end
    kept:close()
    local closing = client(env.nginx.settings.tls_url .. "/once")
    for _ = 1, 3 do assert(closing:list_customers()) end
    closing:close()

    local kept_log, closing_log = tls_entries(earlier, 6)
    assert.equal(3, #kept_log)
    assert.same({ 1, 2, 3 }, { kept_log[1].number, kept_log[2].number, kept_log[3].number })
    assert_resumed(closing_log, false)
  end)

  it("resumes the TLS session on a new cosocket connection, whichever client made the last one", function()
    local earlier = #env.nginx:tls_log()
    assert.equal(3, get_json("/tls_resume").ok)
    local _, closing_log = tls_entries(earlier, 4)
    -- Another client, with another pool, made a TLS connection to this
    -- server first: even the first of the three resumes its session.
    assert_resumed(closing_log, true)
  end)

  it("returns errors as values through cosockets", function()
    env.mock:fault{ path = PATH, method = "GET", count = 1, status = 503, retry_after = "2" }
    local result = get_json("/errors")
    assert.equal("invalid", result.invalid.kind)
    assert.equal("email", result.invalid.field)
    assert.equal("api", result.api.kind)
    assert.equal(503, result.api.status)
    assert.is_true(result.api.retryable)
    assert.equal("invalid", result.closed.kind)
    assert.matches("closed", result.closed.message)
    assert.equal("network", result.network.kind)
    assert.matches("could not connect", result.network.message, 1, true)
    assert.equal(1, env.mock:stats().requests_total)
  end)
end)

describe("create_customers over cosockets, refused options #nginx", function()
  local env = harness.with_mock{ client = false, nginx = true }

  -- The calls, made by a handler on a client with these options.
  local function calls(list)
    local opts = { api_key = env.mock.api_key, client_id = env.mock.client_id, secret = env.mock.secret,
      base_url = env.mock.url, transport = "cosocket" }
    local status, body = env.nginx:post("/calls", json.encode({ options = opts, calls = list }))
    assert.equal(200, status, body)
    return assert(json.decode(body), body)
  end

  it("refuses bad options once, before any traffic, as libcurl's bulk calls do", function()
    local one = { harness.customer() }
    local got = calls({ { "create_customers", one, { concurrency = 1, max_retries = "two" } },
      { "create_customers", one, { deadline = -1 } }, { "create_customers", one, { concurrency = 65 } },
      { "create_customers", one, { colour = "blue" } } })
    for i, field in ipairs{ "max_retries", "deadline", "concurrency", "colour" } do
      assert.is_false(got[i].ok, field)
      assert.equal("invalid", got[i].kind)
      assert.equal(field, got[i].field)
    end
    assert.equal(0, env.mock:stats().requests_total)
  end)
end)
