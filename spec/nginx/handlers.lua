-- nginx.handlers: request handlers for the nginx specs (spec/nginx_spec.lua).
-- Each answers a JSON document describing what orbt did, so the spec can
-- compare it with what orbt-mock saw on the wire.
local orbt = require("orbt")
local json = require("dkjson")
local calls = require("support.calls")

local M = {}

-- spec_settings is set by init_by_lua in spec/nginx/nginx.conf.
local settings = spec_settings -- luacheck: ignore 113 (set by the config)

local function new_client(overrides)
  local opts = {
    api_key = settings.api_key, client_id = settings.client_id, secret = settings.secret,
    base_url = settings.mock_url, timeout = 10,
  }
  for k, v in pairs(overrides or {}) do
    opts[k] = v
  end
  return assert(orbt.new(opts))
end

-- One client per worker and transport: connections are pooled per worker.
local clients = {}
local function client_for(transport)
  transport = transport or "auto"
  if not clients[transport] then
    clients[transport] = new_client({ transport = transport })
  end
  return clients[transport]
end

local function error_fields(err)
  if not err then
    return nil
  end
  return { kind = err.kind, status = err.status, message = err.message, field = err.field,
    text = tostring(err), retryable = err.retryable, attempts = err.attempts, maybe_applied = err.maybe_applied }
end

local function reply(doc)
  ngx.header["Content-Type"] = "application/json"
  ngx.say(json.encode(doc))
end

-- Creates `count` consumers, lists the first page and walks them all.
function M.walk()
  local args = ngx.req.get_uri_args()
  local count = tonumber(args.count) or 3
  local client = client_for(args.transport)
  local created = {}
  for i = 1, count do
    local customer, err = client:create_customer{
      fullName = "Nginx " .. i, email = ("nginx%d-%s@example.com"):format(i, args.tag or "x"),
      currency = "USD", initialFunds = "19.99",
    }
    if not customer then
      return reply({ error = error_fields(err) })
    end
    created[#created + 1] = { id = customer.id, balance = tostring(customer.walletBalance) }
  end
  local page, err = client:list_customers{ page = 0, size = 2 }
  if not page then
    return reply({ error = error_fields(err) })
  end
  local walked = {}
  local ok, walk_err = pcall(function()
    for consumer in client:customers{ size = 2 } do
      walked[#walked + 1] = consumer.consumerId
    end
  end)
  reply({ created = created, first_page = #page.content, has_next = page.hasNext,
    walked = walked, walk_error = not ok and error_fields(walk_err) or nil, phase = ngx.get_phase() })
end

-- One list call without retries, for the hostile answers the spec injects.
function M.hostile()
  local page, err = client_for("auto"):list_customers({ size = 1 }, { max_retries = 0 })
  reply({ ok = page ~= nil, error = error_fields(err) })
end

-- One list call; ?transport=curl forces libcurl.
function M.list()
  local args = ngx.req.get_uri_args()
  local page, err = client_for(args.transport):list_customers{ size = 1 }
  reply({ ok = page ~= nil, error = error_fields(err) })
end

-- A list and a create with the default retry policy; the spec injects faults.
function M.retry()
  local client = client_for("auto")
  local page, list_err = client:list_customers{ size = 1 }
  local customer, create_err = client:create_customer{
    fullName = "Nginx retry", email = "retry@example.com", currency = "USD", initialFunds = 5 }
  reply({ list = { ok = page ~= nil, error = error_fields(list_err) },
    create = { ok = customer ~= nil, error = error_fields(create_err),
      attempts = create_err and create_err.attempts } })
end

-- create_customers over cosockets: 12 inputs, the fifth refused.
function M.bulk()
  local list = {}
  for i = 1, 12 do
    list[i] = { fullName = "Nginx bulk " .. i, email = ("nginx-bulk%d@example.com"):format(i),
      currency = "USD", initialFunds = 2 }
  end
  list[5].email = "not an email"
  local results, failures = client_for("auto"):create_customers(list, { concurrency = 4 })
  local emails, kinds = {}, {}
  for i = 1, #results do
    emails[i] = orbt.is_error(results[i]) and "" or results[i].email
    kinds[i] = orbt.is_error(results[i]) and results[i].kind or "customer"
  end
  reply({ count = #results, failures = failures, emails = emails, kinds = kinds })
end

-- One create; answers what came back.
function M.create()
  local args = ngx.req.get_uri_args()
  local customer, err = client_for(args.transport):create_customer{
    fullName = "Nginx create", email = ("create-%s@example.com"):format(args.tag or "x"),
    currency = "USD", initialFunds = 5 }
  reply({ ok = customer ~= nil, id = customer and customer.id, error = error_fields(err) })
end

-- init_worker: no cosockets here, so "auto" must use libcurl, and a forced
-- "cosocket" must be refused with a clear error.
local init_worker_result = {}

function M.init_worker()
  local page, err = new_client():list_customers{ size = 1 }
  init_worker_result.auto = { ok = page ~= nil, error = error_fields(err) }
  local forced, forced_err = new_client({ transport = "cosocket" }):list_customers{ size = 1 }
  init_worker_result.forced_cosocket = { ok = forced ~= nil, error = error_fields(forced_err) }
end

function M.init_worker_report()
  reply(init_worker_result)
end

-- A timer runs outside any request; cosockets work there.
function M.timer()
  local result = {}
  local ok, err = ngx.timer.at(0, function()
    local page, list_err = client_for("auto"):list_customers{ size = 1 }
    result.ok, result.error = page ~= nil, error_fields(list_err)
    result.done = true
  end)
  if not ok then
    return reply({ error = { message = err } })
  end
  for _ = 1, 500 do
    if result.done then
      break
    end
    ngx.sleep(0.01)
  end
  reply(result)
end

-- Through TLS: a certificate from the trusted CA, then one nobody trusts.
function M.tls()
  local trusted = new_client({ base_url = settings.tls_url })
  local page, err = trusted:list_customers{ size = 1 }
  local again = trusted:list_customers{ size = 1 }
  local untrusted = new_client({ base_url = settings.untrusted_url })
  local refused, refused_err = untrusted:list_customers{ size = 1 }
  local created, create_err = untrusted:create_customer{
    fullName = "Never", email = "never@example.com", currency = "USD", initialFunds = 1 }
  reply({
    trusted = { ok = page ~= nil, again = again ~= nil, error = error_fields(err) },
    untrusted = { ok = refused ~= nil, error = error_fields(refused_err) },
    untrusted_create = { ok = created ~= nil, error = error_fields(create_err) },
  })
end

-- One call through cosockets to a TLS server by one client, then three by
-- another to the same server, which closes the connection after every
-- answer: three new connections (a pool of its own, pool_size 7), each
-- resuming the latest session.
function M.tls_resume()
  local other = new_client({ base_url = settings.tls_url, transport = "cosocket", pool_size = 5 })
  local first = other:list_customers{ size = 1 }
  other:close()
  if not first then
    return reply({ ok = 0 })
  end
  local client = new_client({ base_url = settings.tls_url .. "/once", transport = "cosocket", max_retries = 0,
    pool_size = 7 })
  local ok = 0
  for _ = 1, 3 do
    if client:list_customers{ size = 1 } then
      ok = ok + 1
    end
  end
  client:close()
  reply({ ok = ok })
end

-- A ca_file cannot apply to cosockets: a clear error, not a silent ignore.
-- With transport = "auto" it comes at the call (libcurl could still carry
-- it elsewhere); with "cosocket" at orbt.new.
function M.ca_file()
  local page, err = new_client({ base_url = settings.tls_url, ca_file = settings.ca_file }):list_customers()
  local made, new_err = orbt.new({ api_key = settings.api_key, client_id = settings.client_id,
    secret = settings.secret, base_url = settings.tls_url, ca_file = settings.ca_file, transport = "cosocket" })
  reply({ ok = page ~= nil, error = error_fields(err), made = made ~= nil, new_error = error_fields(new_err) })
end

-- A host name nginx's resolver never answers for (spec/nginx/nginx.conf):
-- each call must end within its timeout or connect_timeout, not after the
-- resolver's 30 s; a create is not sent, so it is safe to repeat.
function M.unresolvable()
  local function timed(options, op)
    ngx.update_time()
    local started = ngx.now()
    local client = new_client(options)
    local result, err
    if op == "create" then
      result, err = client:create_customer{ fullName = "Never", email = "never@example.com", currency = "USD",
        initialFunds = 1 }
    else
      result, err = client:list_customers()
    end
    ngx.update_time()
    client:close()
    local fields = error_fields(err) or {}
    fields.ok = result ~= nil
    fields.seconds = ngx.now() - started
    return fields
  end
  local url = "https://orbt-spec.invalid"
  reply({
    timeout = timed({ base_url = url, timeout = 1, max_retries = 0 }),
    connect_timeout = timed({ base_url = url, timeout = 10, connect_timeout = 0.5, max_retries = 0 }),
    create = timed({ base_url = url, timeout = 1, max_retries = 0 }, "create"),
    retried = timed({ base_url = url, timeout = 0.4, max_retries = 1 }),
    deadline = timed({ base_url = url, timeout = 10, deadline = 0.7, max_retries = 5 }),
  })
end

-- A call's own hooks replace the client's, for a single call and a bulk
-- call; a call without them gets the client's.
function M.call_hooks()
  local seen = {}
  local function recorder(who, hook)
    return function(info)
      seen[#seen + 1] = ("%s %s %s"):format(who, hook, info.operation)
    end
  end
  local client = new_client({ transport = "cosocket", on_request = recorder("client", "on_request"),
    on_response = recorder("client", "on_response") })
  local own = { on_request = recorder("call", "on_request"), on_response = recorder("call", "on_response") }
  assert(client:list_customers(nil, own))
  local results = client:create_customers({ { fullName = "Hooked Bulk", email = "hooked.bulk@example.com",
    currency = "USD", initialFunds = 1 } }, own)
  assert(results and results[1].id)
  assert(client:list_customers())
  client:close()
  reply({ seen = seen })
end

-- `count` calls at once (light threads) on one client with the given
-- pool_size and pool_backlog; reports how many succeeded and the errors.
function M.pool()
  local args = ngx.req.get_uri_args()
  local client = new_client({ transport = "cosocket", max_retries = 0, timeout = 20,
    pool_size = tonumber(args.pool_size), pool_backlog = tonumber(args.backlog),
    connect_timeout = tonumber(args.connect_timeout) })
  local function one()
    local page, err = client:list_customers{ size = 1 }
    return page ~= nil, err and error_fields(err)
  end
  local threads = {}
  for i = 1, tonumber(args.count) do
    threads[i] = ngx.thread.spawn(one)
  end
  local ok, errors = 0, {}
  for i = 1, #threads do
    local _, succeeded, err = ngx.thread.wait(threads[i])
    if succeeded then
      ok = ok + 1
    else
      errors[#errors + 1] = err
    end
  end
  client:close()
  reply({ ok = ok, errors = errors })
end

-- A call whose light thread is killed while it holds the only connection
-- of a pool (pool_size 1, a backlog): once that thread is collected, its
-- place comes back, and the next call goes through at once.
function M.pool_kill()
  local client = new_client({ transport = "cosocket", max_retries = 0, pool_size = 1, pool_backlog = 1,
    connect_timeout = 3 })
  local holder = ngx.thread.spawn(function()
    return client:list_customers{ size = 1 }
  end)
  ngx.sleep(0.3) -- the holder now waits for its answer
  local killed = ngx.thread.kill(holder)
  holder = nil -- luacheck: ignore 311 (the last reference to the killed thread goes)
  collectgarbage("collect")
  collectgarbage("collect")
  ngx.update_time()
  local started = ngx.now()
  local page, err = client:list_customers{ size = 1 }
  ngx.update_time()
  client:close()
  reply({ killed = killed, ok = page ~= nil, error = error_fields(err), seconds = ngx.now() - started })
end

-- A client from nginx's environment (the `env` lines of nginx.conf).
function M.from_env()
  local client, err = orbt.from_env{ transport = "cosocket" }
  if not client then
    return reply({ error = error_fields(err) })
  end
  local page, list_err = client:list_customers()
  client:close()
  reply({ ok = page ~= nil, error = error_fields(list_err) })
end

-- Errors travel as values through the cosocket transport too.
function M.errors()
  local client = client_for("auto")
  local _, invalid = client:create_customer{ fullName = "X", email = "not an email",
    currency = "USD", initialFunds = 1 }
  local _, api = client:list_customers({ size = 1 }, { max_retries = 0 }) -- the spec injects a fault first
  local closed = new_client()
  closed:close()
  local _, after_close = closed:list_customers()
  local unreachable = new_client({ base_url = settings.dead_url, connect_timeout = 2 })
  local _, network = unreachable:list_customers()
  reply({ invalid = error_fields(invalid), api = error_fields(api),
    closed = error_fields(after_close), network = error_fields(network) })
end

-- Calls posted by a spec (framing_spec.lua, proxy_spec.lua, wallets_spec.lua),
-- in order, on a client made with the posted options; answers one outcome
-- per call.
function M.calls()
  ngx.req.read_body()
  local request = assert(json.decode(ngx.req.get_body_data()))
  local hooks = request.hooks and calls.recording_hooks(request.hooks)
  if hooks then
    for name, fn in pairs(hooks.options) do
      request.options[name] = fn
    end
  end
  local client, refused = orbt.new(request.options)
  if not client then
    return reply({ new_error = error_fields(refused) })
  end
  local outcomes = {}
  for _, call in ipairs(request.calls) do
    if call == "pause" then
      ngx.sleep(0.2)
    elseif call.name then
      -- support.calls' form: any arguments, and the whole result.
      outcomes[#outcomes + 1] = calls.run(client, { calls.decode(call) })[1]
    else
      -- A call's arguments after its name; a third, when given, is options.
      local result, err = client[call[1]](client, call[2], call[3])
      if result then
        outcomes[#outcomes + 1] = { ok = true,
          id = result.id or (result.content and result.content[1] and result.content[1].id) }
      else
        outcomes[#outcomes + 1] = { ok = false, kind = err.kind, status = err.status, message = err.message,
          retryable = err.retryable, retry_after = err.retry_after, attempts = err.attempts, field = err.field }
      end
    end
  end
  local last = client:last_response()
  client:close()
  if hooks then
    return reply({ outcomes = outcomes, seen = hooks.seen, last = last })
  end
  reply(outcomes)
end

return M
