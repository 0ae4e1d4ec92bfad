-- orbt.cosocket: the nginx transport.
--
-- Inside OpenResty/nginx, a blocking libcurl call in a request handler stalls
-- the worker and every request it serves. Wherever nginx allows cosockets
-- (rewrite, access and content handlers, timers, some ssl phases) orbt sends
-- its requests over ngx.socket.tcp instead: they yield to nginx's event loop,
-- reuse connections from nginx's keep-alive pool and verify TLS. Elsewhere
-- (init phases, plain Lua) the C core's libcurl transport is used.
--
-- Only bytes move here. Validation, signing, framing, reading the answer
-- (the core's HTTP/1.1 reader, the same one libcurl's connections feed) and
-- the retry decision stay in the C core, through client:_prepare,
-- reader:feed and client:_answer. Which operations exist comes from the
-- core's operation table.
--
-- Choice per client: orbt.new{transport = "auto"} (the default) as above,
-- "curl" always libcurl, "cosocket" always cosockets (an `invalid` error in
-- a phase without them).

-- The global nginx provides; nil in plain Lua (read raw: a program that
-- guards its globals must still be able to load orbt).
local ngx = rawget(_G, "ngx")
local tostring = tostring
local ipairs = ipairs
local error = error
local setmetatable = setmetatable
local pcall = pcall
local pairs = pairs
local coroutine = coroutine
local floor = math.floor
local min = math.min

local M = {}

-- Phases in which nginx lets Lua use cosockets.
local COSOCKET_PHASES = {
  rewrite = true, access = true, content = true, timer = true,
  ssl_cert = true, ssl_session_fetch = true, ssl_client_hello = true,
}

local KEEPALIVE_IDLE_MS = 30000   -- a pooled connection idle longer is closed
local READ_CHUNK = 16384          -- bytes one receive takes at most

-- Why a create that lost its connection is not sent again (as libcurl's transport says it).
local RESEND_REFUSED = "the connection closed after the request was sent; it was not sent again because it "
  .. "may have been applied"

-- Set by install: the core's error constructor.
local make_error = function(fields) return fields end

-- nil and an `invalid` error for operation op, refused before any traffic.
local function invalid(op, field, message)
  return nil, make_error({ kind = "invalid", field = field, message = message, retryable = false,
    method = op.method, path = op.path })
end

-- ===== Settings =====

-- Dotted IPv4 or bracketless IPv6: no lookup.
local function is_address(host)
  return host:find("^%d+%.%d+%.%d+%.%d+$") ~= nil or host:find(":", 1, true) ~= nil
end

-- Settings read once per client from the core; weak keys let clients be
-- collected.
local settings_cache = setmetatable({}, { __mode = "k" })

local function settings_of(client)
  local s = settings_cache[client]
  if s then
    return s
  end
  s = client:_settings()
  if s then
    -- What every connect asks of nginx's pool (client option pool_size):
    -- made once per client, not per call. Calls beyond it wait at orbt's
    -- own gate (pool_backlog), not in nginx's backlog: see "The pool's gate".
    s.connect_options = { pool = s.pool, pool_size = s.pool_size }
    -- Where every connect goes, and whether its name needs nginx's resolver.
    local via = s.proxy
    s.connect_host, s.connect_port = s.address, s.port
    if via then
      s.connect_host, s.connect_port = via.address, via.port
    end
    s.connect_literal = is_address(s.connect_host)
    settings_cache[client] = s
  end
  return s
end

-- ===== One exchange =====

local function now()
  ngx.update_time()
  return ngx.now()
end

local function failed(err)
  return err == "timeout" and "timeout" or "network"
end

-- Gives the socket what is left of the attempt's time; false once it is spent.
local function set_remaining(sock, deadline)
  local left = deadline - now()
  if left <= 0 then
    return false
  end
  sock:settimeout(floor(left * 1000) + 1)
  return true
end

-- Feeds what arrives to the reader until it has an answer. Returns its
-- state ("done", "bad", "too_large") and whether the connection may be
-- kept, or nil and the socket's error.
local function read_answer(sock, reader, deadline)
  while true do
    if not set_remaining(sock, deadline) then
      return nil, "timeout"
    end
    local data, err = sock:receiveany(READ_CHUNK)
    local state, keep
    if data then
      state, keep = reader:feed(data)
    elseif err == "closed" then
      state, keep = reader:close()
    else
      return nil, err
    end
    if state ~= "more" then
      return state, keep
    end
  end
end

-- The TLS session of the latest handshake per route (origin and proxy,
-- whatever the pool's sizes) and peer ("origin" or "proxy"), per worker.
local tls_sessions = {}

-- TLS with the peer's name checked; a certificate nginx does not trust
-- (lua_ssl_trusted_certificate) fails the same way every time. A new
-- connection offers the session of the latest handshake on its route, so
-- that a server with a session cache resumes it instead of a full
-- handshake, as libcurl's connections do.
local function handshake(sock, host, deadline, s, peer)
  if not set_remaining(sock, deadline) then
    return nil, "timeout", "the call's timeout passed during the TLS handshake"
  end
  local sessions = tls_sessions[s.route]
  if not sessions then
    sessions = {}
    tls_sessions[s.route] = sessions
  end
  local session, err = sock:sslhandshake(sessions[peer], host, true)
  if session then
    sessions[peer] = session
    return true
  end
  err = tostring(err)
  -- lua-nginx-module reports verification failures as "<X509 code>: <text>"
  -- or "certificate host mismatch"; other handshake failures otherwise.
  local refused = err:match("^%d+: ") or err:find("certificate", 1, true)
  return nil, refused and "certificate" or failed(err), ("TLS handshake with %s failed: %s"):format(host, err)
end

-- Through an HTTP proxy: a CONNECT over the cosocket, read with the core's
-- reader, then the tunnel carries everything else.
local function tunnel(client, sock, s, deadline)
  local proxy = s.proxy
  if proxy.tls then
    local ok, failure, message = handshake(sock, proxy.host, deadline, s, "proxy")
    if not ok then
      return nil, failure, message
    end
  end
  if not set_remaining(sock, deadline) then
    return nil, "timeout", "the call's timeout passed while asking the proxy for a tunnel"
  end
  local sent, err = sock:send(proxy.connect)
  if not sent then
    return nil, failed(err), ("could not ask the proxy %s:%d for a tunnel: %s"):format(proxy.host, proxy.port,
      tostring(err))
  end
  local reader = client:_tunnel()
  local state
  state, err = read_answer(sock, reader, deadline)
  if state ~= "done" then
    return nil, err and failed(err) or "network", ("the proxy %s:%d did not answer the tunnel request: %s")
      :format(proxy.host, proxy.port, tostring(err or reader:message() or state))
  end
  local status = reader:status()
  if status < 200 or status >= 300 then
    return nil, "network", ("the proxy %s:%d refused the tunnel: %d"):format(proxy.host, proxy.port, status)
  end
  return true
end

-- ===== Connecting within the time allowed =====

-- The cosocket's timeout covers the TCP connect but not name resolution,
-- which waits on nginx's resolver for up to its resolver_timeout (30 s by
-- default). So a host name is connected in a light thread that races a
-- sleep of the time left; whichever ends first decides, and the other is
-- killed (nginx then drops the pending lookup or connect).
local RAN_OUT = {} -- what the sleeping thread returns

local function connect_in_thread(sock, host, port, options)
  return sock:connect(host, port, options)
end

local function sleep_in_thread(seconds)
  ngx.sleep(seconds)
  return RAN_OUT
end

local THREAD_PHASES = { rewrite = true, access = true, content = true, timer = true }

local function connect_within(sock, s, seconds)
  local host, port, options = s.connect_host, s.connect_port, s.connect_options
  if s.connect_literal or not THREAD_PHASES[ngx.get_phase()] then
    return sock:connect(host, port, options)
  end
  local connecting = ngx.thread.spawn(connect_in_thread, sock, host, port, options)
  -- A light thread that ended within spawn (a pooled connection, or a
  -- failure at once) is a "zombie" until waited for.
  local status = coroutine.status(connecting)
  if status == "zombie" or status == "dead" then
    local _, ok, err = ngx.thread.wait(connecting)
    return ok, err
  end
  local sleeping = ngx.thread.spawn(sleep_in_thread, seconds)
  local done, ok, err = ngx.thread.wait(connecting, sleeping)
  ngx.thread.kill(connecting)
  ngx.thread.kill(sleeping)
  if not done then
    error(ok, 0)
  end
  if ok == RAN_OUT then
    sock:close()
    return nil, "timeout", ("resolving the name or connecting took longer than %g s"):format(seconds)
  end
  return ok, err
end

-- A connection from the pool, or a new one (through the proxy, TLS).
-- Returns the socket and whether it came from the pool, or nil, failure,
-- message: nothing was sent.
local function connect(client, s, deadline)
  local seconds = min(s.connect_timeout, deadline - now())
  if seconds <= 0 then
    return nil, "timeout", "the call's timeout passed before connecting"
  end
  local sock = ngx.socket.tcp()
  sock:settimeout(floor(seconds * 1000) + 1)
  local via = s.proxy
  local ok, err, detail = connect_within(sock, s, seconds)
  if not ok then
    return nil, failed(err), ("could not connect to %s:%d: %s"):format(via and via.host or s.host, s.connect_port,
      detail or tostring(err))
  end
  -- A connection from the pool already has its tunnel and handshake.
  if sock:getreusedtimes() > 0 then
    return sock, true
  end
  local failure, message
  if via then
    ok, failure, message = tunnel(client, sock, s, deadline)
    if not ok then
      sock:close()
      return nil, failure, message
    end
  end
  if s.tls then
    ok, failure, message = handshake(sock, s.host, deadline, s, "origin")
    if not ok then
      sock:close()
      return nil, failure, message
    end
  end
  return sock, false
end

-- An exchange whose socket failed with err while doing `what` (see
-- exchange_once).
local function failed_exchange(sock, rq, reused, err, what)
  sock:close()
  if err == "timeout" then
    return true, "timeout", "the call's timeout passed while " .. what, false
  end
  local stale = reused and rq.reader:received() == 0
  return true, "network", what .. ": " .. tostring(err), stale
end

-- One try of a prepared request. Returns what client:_answer is told
-- besides the reader (whether the request was sent, and the failure and
-- its message, if any), and whether it died on a pooled connection before
-- any answer (the server had closed it while it sat idle). Values, not a
-- table: the call's one outcome table is made by `attempts`.
local function exchange_once(client, s, rq, deadline)
  local sock, reused_or_failure, message = connect(client, s, deadline)
  if not sock then
    return false, reused_or_failure, message, false
  end
  local reused = reused_or_failure
  if not set_remaining(sock, deadline) then
    -- Nothing of the request left: as safe to repeat as a failed connect.
    sock:close()
    return false, "timeout", "the call's timeout passed before the request was sent", false
  end
  local sent, err = sock:send(rq.wire)
  if not sent then
    return failed_exchange(sock, rq, reused, err, "sending the request")
  end
  local state, keep_or_err = read_answer(sock, rq.reader, deadline)
  if not state then
    return failed_exchange(sock, rq, reused, keep_or_err,
      rq.reader:received() == 0 and "waiting for the answer" or "reading the answer")
  end
  local keep = keep_or_err
  if state == "done" and keep then
    -- A connection nginx cannot pool (unread bytes) is closed instead.
    if not sock:setkeepalive(KEEPALIVE_IDLE_MS, s.pool_size) then
      sock:close()
    end
  else
    sock:close()
  end
  -- "bad" and "too_large" are the reader's to tell: no failure here.
  return true, nil, nil, state == "bad" and reused and rq.reader:received() == 0
end

-- One attempt, within `deadline` (an ngx.now() time): the call's deadline or
-- the client's timeout, whichever comes first. Returns sent, failure,
-- message and whether it was sent a second time.
local function exchange(client, s, rq, deadline)
  local sent, failure, message, stale = exchange_once(client, s, rq, deadline)
  -- libcurl's rule, kept here: a request on a pooled connection that turned
  -- out dead is sent once more on another connection if it may go twice
  -- (not a create), which the core says.
  if stale and rq.may_resend then
    rq.reader:reset()
    -- Sent either way, as the first connection took it; and resent, as
    -- that one may have handed it to the server.
    local _
    _, failure, message = exchange_once(client, s, rq, deadline)
    return true, failure, message, true
  elseif stale then
    return true, "network", RESEND_REFUSED, false
  end
  return sent, failure, message, false
end

-- ===== The pool's gate =====

-- With pool_backlog set, at most pool_size calls of a worker use
-- connections of one pool at a time, and up to pool_backlog more wait for
-- one of them, in order, for at most connect_timeout (or what is left of
-- the attempt). The gate is an ngx.semaphore of pool_size permits per pool
-- name, shared by the clients of the worker that name the same pool.
--
-- nginx's own backlog (the connect option `backlog`) is not used: in
-- lua-nginx-module 0.10.23, connections put back in one pass of the event
-- loop wake one waiting connect between them, so under a burst the waiting
-- calls go through one connection at a time (200 calls on 20 connections
-- that each hold 100 ms took 8.6 s instead of 1 s).
--
-- A permit is held by the coroutine that took it, until its exchange ends.
-- A coroutine that never gives it back (its request ended while it was
-- suspended, or ngx.thread.kill) is found once it has been collected: the
-- leases are weak keys, and the count of permits out is checked against
-- them, at most once a second, when a call would have to wait.
local semaphore -- ngx.semaphore, loaded with the first gate (lua-resty-core)
local gates = {}
local LEASE_CHECK_INTERVAL = 1 -- seconds

local function gate_of(s)
  local gate = gates[s.pool]
  if gate then
    return gate
  end
  semaphore = semaphore or require("ngx.semaphore")
  gate = { sema = semaphore.new(s.pool_size), leases = setmetatable({}, { __mode = "k" }), out = 0,
    checked_at = 0 }
  gates[s.pool] = gate
  return gate
end

-- Gives back the permits of coroutines that were collected holding one.
local function reclaim(gate)
  local at = now()
  if at - gate.checked_at < LEASE_CHECK_INTERVAL then
    return
  end
  gate.checked_at = at
  local live = 0
  for _ in pairs(gate.leases) do
    live = live + 1
  end
  if live < gate.out then
    gate.sema:post(gate.out - live)
    gate.out = live
  end
end

-- A permit for this coroutine (true), nil when the client has no backlog
-- or the phase cannot wait, or nil, failure, message: nothing was sent.
local function acquire(s, deadline)
  if not s.pool_backlog then
    return nil
  end
  local gate = gate_of(s)
  local sema = gate.sema
  if sema:count() <= 0 then
    reclaim(gate)
    -- count() is the permits free less the calls waiting.
    if sema:count() <= -s.pool_backlog then
      return nil, "network", ("the keep-alive pool is full: %d connections in use and %d calls waiting "
        .. "(pool_size, pool_backlog); nothing was sent"):format(s.pool_size, s.pool_backlog)
    end
  end
  local seconds = min(s.connect_timeout, deadline - now())
  if seconds <= 0 then
    return nil, "timeout", "the call's timeout passed before connecting"
  end
  local ok, err = sema:wait(seconds)
  if ok then
    -- nginx runs handlers and timers in coroutines; a permit taken outside
    -- one (none is known) is given back all the same, just not reclaimed.
    local co = coroutine.running()
    if co then
      gate.leases[co] = true
      gate.out = gate.out + 1
    end
    return true
  end
  if err == "timeout" then
    return nil, "timeout", ("waited %g s for one of the keep-alive pool's %d connections (pool_size); "
      .. "nothing was sent"):format(seconds, s.pool_size)
  end
  return nil -- a phase where nginx cannot wait (ssl_client_hello): nginx's pool alone
end

local function release(s)
  local gate = gates[s.pool]
  local co = coroutine.running()
  if co and gate.leases[co] then
    gate.leases[co] = nil
    gate.out = gate.out - 1
  end
  gate.sema:post(1)
end

-- ===== Calls =====

-- One attempt through the pool's gate. Never raises: a fault in this
-- module still ends as an error value, and the core still hears about the
-- request it prepared.
local function gated_exchange(client, s, rq, deadline)
  local leased, failure, message = acquire(s, deadline)
  if failure then
    return false, failure, message, false
  end
  local ok, sent, resent
  ok, sent, failure, message, resent = pcall(exchange, client, s, rq, deadline)
  if leased then
    release(s)
  end
  if not ok then
    return true, "network", "the nginx transport failed: " .. tostring(sent), false
  end
  return sent, failure, message, resent
end

-- The attempts of one call, with the core's retry policy (src/retry.h): the
-- core decides whether and how long to wait; the wait is ngx.sleep, so it
-- yields too. rq is written once, by client:_prepare (signed for its first
-- attempt) or client:_bulk_plan (not yet signed); every other attempt is
-- client:_again: the same bytes, signed afresh.
local function attempts(client, s, rq)
  local started = now()
  local attempt = 0
  local applied_before = false -- an earlier attempt may have been applied (the core says)
  while true do
    attempt = attempt + 1
    if attempt > 1 or not rq.wire then
      local again, err = client:_again(rq)
      if not again then
        return nil, err -- the client was closed meanwhile
      end
    end
    local deadline_at = started + rq.deadline
    local attempt_end = min(now() + s.timeout, deadline_at)
    local sent, failure, message, resent = gated_exchange(client, s, rq, attempt_end)
    if failure == "timeout" and attempt_end == deadline_at then
      message = ("the call's deadline of %g s passed (attempt %d)"):format(rq.deadline, attempt)
    end
    -- One table per attempt, made whole at once.
    local result, err, delay = client:_answer({ sent = sent, resent = resent, failure = failure, message = message,
      reader = rq.reader, attempt = attempt, max_retries = rq.max_retries, seconds_left = deadline_at - now(),
      applied_before = applied_before,
      on_response = rq.on_response, -- the call's own hook, if it has one
    })
    if result or not delay then
      return result, err
    end
    applied_before = err.maybe_applied
    if delay > 0 then
      ngx.sleep(delay) -- 0 (a Retry-After of 0) goes on at once: nginx warns on ngx.sleep(0)
    end
  end
end

local function call(client, s, op, ...)
  local rq, err = client:_prepare(op.name, ...)
  if not rq then
    return nil, err -- refused before any traffic
  end
  return attempts(client, s, rq)
end

-- Whether this client's calls go over cosockets now: nil, or the settings.
local function cosocket_settings(client)
  local s = settings_of(client)
  if not s or s.transport == "curl" then
    return nil
  end
  if not COSOCKET_PHASES[ngx.get_phase()] and s.transport == "auto" then
    return nil
  end
  return s
end

-- Why a call of op cannot go over cosockets now: nil, or nil and an
-- `invalid` error.
local function cosocket_refusal(op, s)
  local current = ngx.get_phase()
  if not COSOCKET_PHASES[current] then
    return invalid(op, "transport", ('transport = "cosocket" needs a phase where nginx allows cosockets '
      .. '(rewrite, access, content, timer); this is the %s phase'):format(tostring(current)))
  end
  -- Why this client cannot use cosockets (a ca_file, a SOCKS proxy...):
  -- the core decides, once, when the client is made.
  if s.refusal_field then
    return invalid(op, s.refusal_field, s.refusal)
  end
  return nil
end

local function wrap(direct, op)
  return function(client, ...)
    local s = cosocket_settings(client)
    if not s then
      return direct(client, ...) -- libcurl; or closed, or not a client: the core says so
    end
    local _, refused = cosocket_refusal(op, s)
    if refused then
      return nil, refused
    end
    return call(client, s, op, ...)
  end
end

-- Many calls at once over cosockets: `concurrency` light threads
-- (ngx.thread) share the list, each making one call at a time. One result
-- per input, in input order. The core reads the options and the list and
-- writes every call once, as for libcurl's bulk calls: items it refuses
-- (invalid, or sharing an idempotency key with another payload) are not
-- sent, and a list changed during the calls changes nothing that is sent.
local function call_many(client, s, op, list, opts)
  local concurrency, calls, refused, results = client:_bulk_plan(op.name, list, opts)
  if not concurrency then
    return nil, calls
  end
  local n = #list
  local failures, next_index = refused, 1
  local function worker()
    while next_index <= n do
      local i = next_index
      next_index = i + 1
      if results[i] == nil then
        local result, err = attempts(client, s, calls[i])
        results[i] = result or err
        if not result then
          failures = failures + 1
        end
      end
    end
  end
  if THREAD_PHASES[ngx.get_phase()] and concurrency > 1 and n > 1 then
    local threads = {}
    for t = 1, min(concurrency, n) do
      threads[t] = ngx.thread.spawn(worker)
    end
    -- Every thread is waited for before a fault in one is raised, so no
    -- call is still running when the caller gets the error.
    local fault
    for t = 1, #threads do
      local ok, err = ngx.thread.wait(threads[t])
      if not ok and fault == nil then
        fault = err
      end
    end
    if fault ~= nil then
      error(fault, 0)
    end
  else
    worker()
  end
  return results, failures
end

local function wrap_bulk(direct, op)
  return function(client, list, opts)
    local s = cosocket_settings(client)
    if not s then
      return direct(client, list, opts)
    end
    local _, refused = cosocket_refusal(op, s)
    if refused then
      return nil, refused
    end
    return call_many(client, s, op, list, opts)
  end
end

-- Called by luaopen_orbt with the client's method table, the core's error
-- constructor and the operation rows. Outside nginx the core's methods stay
-- as they are.
function M.install(methods, error_constructor, operations)
  make_error = error_constructor
  if not (ngx and ngx.socket and ngx.socket.tcp and ngx.get_phase) then
    return
  end
  for _, op in ipairs(operations) do
    methods[op.name] = wrap(methods[op.name], op)
    if op.bulk then
      methods[op.bulk] = wrap_bulk(methods[op.bulk], op)
    end
  end
end

return M
