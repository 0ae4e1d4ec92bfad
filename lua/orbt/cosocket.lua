-- orbt.cosocket: the nginx transport.
--
-- Inside OpenResty/nginx, a blocking libcurl call in a request handler stalls
-- the worker and every request it serves. Wherever nginx allows cosockets
-- (rewrite, access and content handlers, timers, some ssl phases) orbt sends
-- its requests over ngx.socket.tcp instead: they yield to nginx's event loop,
-- reuse connections from nginx's keep-alive pool and verify TLS. Elsewhere
-- (init phases, plain Lua) the C core's libcurl transport is used.
--
-- Only the bytes move here. Validation, signing and reading the answer stay
-- in the C core, through client:_prepare and client:_answer.
--
-- Choice per client: orbt.new{transport = "auto"} (the default) as above,
-- "curl" always libcurl, "cosocket" always cosockets (an `invalid` error in
-- a phase without them).

local ngx = ngx -- the global nginx provides; nil in plain Lua
local tonumber = tonumber
local tostring = tostring
local setmetatable = setmetatable
local pcall = pcall
local concat = table.concat
local floor = math.floor
local min = math.min

local M = {}

-- Phases in which nginx lets Lua use cosockets.
local COSOCKET_PHASES = {
  rewrite = true, access = true, content = true, timer = true,
  ssl_cert = true, ssl_session_fetch = true, ssl_client_hello = true,
}

local KEEPALIVE_IDLE_MS = 30000   -- a pooled connection idle longer is closed
local KEEPALIVE_POOL_SIZE = 32    -- connections kept per pool, per worker
local HEADER_LINES_MAX = 200      -- answers with more header lines are refused
local HEADER_BYTES_MAX = 64 * 1024
local LINE_BYTES_MAX = 8 * 1024

local VERSION = "0.1.0"

-- Set by install: the core's error constructor.
local make_error = function(fields) return fields end

local CUSTOMER_PATH = "/api/partner/v1/customer"

-- nil and an `invalid` error for operation op, refused before any traffic.
local function invalid(op, field, message)
  return nil, make_error({ kind = "invalid", field = field, message = message, retryable = false,
    method = op == "list_customers" and "GET" or "POST", path = CUSTOMER_PATH })
end

-- ===== Settings =====

-- "https://host:8443/prefix" -> its parts; the default ports by scheme.
local function parse_base_url(url)
  local scheme, authority, prefix = url:match("^(%a[%w+.-]*)://([^/?#]+)(.*)$")
  if not scheme then
    return nil
  end
  scheme = scheme:lower()
  local host, port = authority:match("^%[([^%]]+)%]:?(%d*)$") -- [::1]:8080
  if not host then
    host, port = authority:match("^([^:]+):?(%d*)$")
  end
  if not host then
    return nil
  end
  local tls = scheme == "https"
  return {
    tls = tls,
    host = host,
    -- Cosockets resolve names through nginx's `resolver` directive, which
    -- does not read /etc/hosts; localhost is loopback by definition (RFC 6761).
    address = (host:lower() == "localhost" or host:lower():match("%.localhost$")) and "127.0.0.1" or host,
    port = tonumber(port) or (tls and 443 or 80),
    authority = authority,
    prefix = prefix,
    -- One pool per scheme, host and port: a TLS connection is never handed
    -- to a plain-text request, nor the other way round.
    pool = ("orbt:%s:%s:%s"):format(scheme, host, port ~= "" and port or (tls and "443" or "80")),
  }
end

-- Settings read once per client; weak keys let clients be collected.
local settings_cache = setmetatable({}, { __mode = "k" })

local function settings_of(client)
  local s = settings_cache[client]
  if s then
    return s
  end
  local base_url, timeout, connect_timeout, max_body, transport, has_ca_file = client:_settings()
  if not base_url then
    return nil
  end
  s = parse_base_url(base_url)
  if not s then
    return nil
  end
  s.timeout, s.connect_timeout, s.max_body, s.transport = timeout, connect_timeout, max_body, transport
  s.has_ca_file = has_ca_file
  settings_cache[client] = s
  return s
end

-- ===== One exchange =====

-- An exchange ends as: status, body, failure, message, request_sent.
-- failure is nil, "network", "timeout" or "too_large" (the core's names).

local function failed(err)
  return err == "timeout" and "timeout" or "network"
end

local function now()
  ngx.update_time()
  return ngx.now()
end

-- Gives the socket what is left of the call's time; false once it is spent.
local function set_remaining(sock, deadline)
  local left = deadline - now()
  if left <= 0 then
    return false
  end
  sock:settimeout(floor(left * 1000) + 1)
  return true
end

-- One CRLF-terminated line. receive("*l") would hold a line of any length
-- in memory; this refuses one longer than LINE_BYTES_MAX.
local function read_line(sock)
  local reader = sock:receiveuntil("\r\n")
  local parts, total = {}, 0
  while true do
    local data, err = reader(4096)
    if not data then
      if err then
        return nil, err
      end
      return concat(parts)
    end
    total = total + #data
    if total > LINE_BYTES_MAX then
      return nil, ("an answer line is longer than %d bytes"):format(LINE_BYTES_MAX)
    end
    parts[#parts + 1] = data
  end
end

-- Reads the header lines after the status line.
local function read_headers(sock)
  local length, chunked, close, keep_alive, retry_after = nil, false, false, false, nil
  local lines, bytes = 0, 0
  while true do
    local line, err = read_line(sock)
    if not line then
      return nil, err
    end
    if line == "" then
      return { length = length, chunked = chunked, close = close, keep_alive = keep_alive,
        retry_after = retry_after }
    end
    lines, bytes = lines + 1, bytes + #line
    if lines > HEADER_LINES_MAX or bytes > HEADER_BYTES_MAX then
      return nil, ("the answer has more than %d header lines or %d bytes of headers")
        :format(HEADER_LINES_MAX, HEADER_BYTES_MAX)
    end
    local name, value = line:match("^([^:]+):%s*(.-)%s*$")
    if name then
      name = name:lower()
      if name == "content-length" then
        if not value:match("^%d+$") or (length and length ~= tonumber(value)) then
          return nil, "the answer has an invalid Content-Length"
        end
        length = tonumber(value)
      elseif name == "transfer-encoding" then
        chunked = value:lower():find("chunked", 1, true) ~= nil
      elseif name == "connection" then
        close = value:lower():find("close", 1, true) ~= nil
        keep_alive = value:lower():find("keep-alive", 1, true) ~= nil
      elseif name == "retry-after" then
        retry_after = value
      end
    end
  end
end

local function read_chunked(sock, max_body, deadline)
  local parts, total = {}, 0
  while true do
    if not set_remaining(sock, deadline) then
      return nil, "timeout"
    end
    local line, err = read_line(sock)
    if not line then
      return nil, err
    end
    local size = tonumber(line:match("^%x+"), 16)
    if not size then
      return nil, "the answer has a malformed chunk"
    end
    if size == 0 then
      repeat -- trailer lines, up to the empty one
        line, err = read_line(sock)
      until not line or line == ""
      if not line then
        return nil, err
      end
      return concat(parts)
    end
    total = total + size
    if total > max_body then
      return nil, "too_large"
    end
    local data
    data, err = sock:receive(size)
    if not data then
      return nil, err
    end
    parts[#parts + 1] = data
    local crlf
    crlf, err = sock:receive(2)
    if crlf ~= "\r\n" then
      return nil, err or "the answer has a malformed chunk"
    end
  end
end

-- An answer with neither a length nor chunks ends when the server closes.
local function read_until_close(sock, max_body)
  local parts, total = {}, 0
  while true do
    local data, err = sock:receiveany(64 * 1024)
    if not data then
      if err == "closed" then
        return concat(parts)
      end
      return nil, err
    end
    total = total + #data
    if total > max_body then
      return nil, "too_large"
    end
    parts[#parts + 1] = data
  end
end

local function read_body(sock, status, head, s, deadline)
  if status == 204 or status == 304 or (status >= 100 and status < 200) then
    return ""
  end
  if head.chunked then
    return read_chunked(sock, s.max_body, deadline)
  end
  if head.length then
    if head.length > s.max_body then
      return nil, "too_large"
    end
    return sock:receive(head.length)
  end
  head.close = true
  return read_until_close(sock, s.max_body)
end

local function request_text(s, method, target, headers, body)
  local parts = {
    method, " ", s.prefix, target, " HTTP/1.1\r\n",
    "Host: ", s.authority, "\r\n",
    "User-Agent: orbt-lua/", VERSION, " (nginx cosocket)\r\n",
    headers,
  }
  if body ~= "" or method == "POST" then
    parts[#parts + 1] = "Content-Length: " .. #body .. "\r\n"
  end
  parts[#parts + 1] = "\r\n"
  parts[#parts + 1] = body
  return concat(parts)
end

local function connect(s, deadline)
  local sock = ngx.socket.tcp()
  sock:settimeout(floor(min(s.connect_timeout, deadline - now()) * 1000) + 1)
  local ok, err = sock:connect(s.address, s.port, { pool = s.pool, pool_size = KEEPALIVE_POOL_SIZE })
  if not ok then
    return nil, failed(err), ("could not connect to %s:%d: %s"):format(s.host, s.port, tostring(err))
  end
  -- A connection from the pool already did its handshake.
  if s.tls and sock:getreusedtimes() == 0 then
    if not set_remaining(sock, deadline) then
      sock:close()
      return nil, "timeout", "the call's timeout passed during the TLS handshake"
    end
    local session
    session, err = sock:sslhandshake(nil, s.host, true) -- true: verify the peer
    if not session then
      sock:close()
      return nil, failed(err), ("TLS handshake with %s failed: %s"):format(s.host, tostring(err))
    end
  end
  return sock
end

-- Also returns whether the connection came from the pool and died before
-- any of the answer arrived: the server had closed it while it sat idle.
local function exchange_once(s, method, target, headers, body, deadline)
  local sock, failure, message = connect(s, deadline)
  if not sock then
    return 0, nil, failure, message, false
  end
  local reused = sock:getreusedtimes() > 0
  local function fail(status, err, what)
    sock:close()
    if err == "too_large" then
      return status, nil, "too_large", ("the answer is larger than max_body (%d bytes)"):format(s.max_body), true
    end
    if err == "timeout" then
      return status, nil, "timeout", "the call's timeout passed while " .. what, true
    end
    local stale = reused and status == 0 and err ~= "timeout"
    return status, nil, "network", what .. ": " .. tostring(err), true, stale
  end

  if not set_remaining(sock, deadline) then
    return fail(0, "timeout", "sending the request")
  end
  local sent, err = sock:send(request_text(s, method, target, headers, body))
  if not sent then
    return fail(0, err, "sending the request")
  end
  if not set_remaining(sock, deadline) then
    return fail(0, "timeout", "waiting for the answer")
  end
  local line
  line, err = read_line(sock)
  if not line then
    return fail(0, err, "no answer arrived")
  end
  local minor, status = line:match("^HTTP/1%.([01]) (%d%d%d)")
  status = tonumber(status)
  if not status then
    return fail(0, "not an HTTP/1.x status line", "reading the answer")
  end
  local head
  head, err = read_headers(sock)
  if not head then
    return fail(status, err, "reading the answer's headers")
  end
  local answer
  answer, err = read_body(sock, status, head, s, deadline)
  if not answer then
    return fail(status, err, "the answer was cut off")
  end
  if head.close or (minor == "0" and not head.keep_alive) then
    sock:close()
  else
    sock:setkeepalive(KEEPALIVE_IDLE_MS, KEEPALIVE_POOL_SIZE)
  end
  return status, answer, nil, nil, true, false, head.retry_after
end

-- One attempt, within `deadline` (an ngx.now() time): the call's deadline or
-- the client's timeout, whichever comes first.
local function exchange(s, method, target, headers, body, deadline)
  local status, answer, failure, message, sent, stale, retry_after =
    exchange_once(s, method, target, headers, body, deadline)
  -- libcurl's rule, kept here: a request on a pooled connection that turned
  -- out dead is sent once more on another connection if it is a GET (no
  -- body, nothing applied), but never a create, which the server may have
  -- received before the connection died.
  if stale and method == "GET" then
    local again -- luacheck: ignore 231 (a second stale connection is not retried)
    status, answer, failure, message, sent, again, retry_after =
      exchange_once(s, method, target, headers, body, deadline)
  end
  return status, answer, failure, message, sent, retry_after
end

-- ===== The methods =====

-- A call with the core's retry policy (src/retry.h): the core decides
-- whether and how long to wait; the wait is ngx.sleep, so it yields too.
-- Every attempt is prepared, and so signed, afresh.
local function call(client, op, args, opts, s)
  local started = now()
  local attempt = 0
  while true do
    attempt = attempt + 1
    local method, target, headers, body, deadline, max_retries = client:_prepare(op, args, opts)
    if not method then
      return nil, target -- refused before any traffic: nil, err
    end
    local deadline_at = started + deadline
    local attempt_end = min(now() + s.timeout, deadline_at)
    local ok, status, answer, failure, message, sent, retry_after =
      pcall(exchange, s, method, target, headers, body, attempt_end)
    if not ok then
      -- A fault in this module still ends as an error value, and the core
      -- still hears about the request it prepared.
      status, answer, failure, message, sent =
        0, nil, "network", "the nginx transport failed: " .. tostring(status), true
    elseif failure == "timeout" and attempt_end == deadline_at then
      message = ("the call's deadline of %g s passed (attempt %d)"):format(deadline, attempt)
    end
    local result, err, delay = client:_answer(op, status, answer, failure, message, sent, retry_after,
      attempt, max_retries, deadline_at - now())
    if result or not delay then
      return result, err
    end
    ngx.sleep(delay)
  end
end

local function phase()
  return ngx.get_phase()
end

local function wrap(direct, op)
  return function(client, args, opts)
    local s = settings_of(client)
    if not s then
      return direct(client, args, opts) -- closed or not a client: the core says so
    end
    if s.transport == "curl" then
      return direct(client, args, opts)
    end
    local current = phase()
    if not COSOCKET_PHASES[current] then
      if s.transport == "cosocket" then
        return invalid(op, "transport", ('transport = "cosocket" needs a phase where nginx allows cosockets '
          .. '(rewrite, access, content, timer); this is the %s phase'):format(tostring(current)))
      end
      return direct(client, args, opts)
    end
    if s.has_ca_file then
      -- Cosockets trust what nginx.conf says; a ca_file silently ignored
      -- would be a surprise.
      return invalid(op, "ca_file", "ca_file applies to libcurl only: in nginx, trust a CA with "
        .. 'lua_ssl_trusted_certificate, or give the client transport = "curl"')
    end
    return call(client, op, args, opts, s)
  end
end

-- create_customers over cosockets: `concurrency` light threads
-- (ngx.thread) share the list, each sending one create at a time through
-- create_customer. One result per input, in input order.
local BULK_OPTIONS = { concurrency = true, max_retries = true, deadline = true }
local THREAD_PHASES = { rewrite = true, access = true, content = true, timer = true }

local function create_many(client, create, list, opts)
  if type(list) ~= "table" then
    return invalid("create_customers", "customers", "create_customers takes a list (a table) of customers")
  end
  opts = opts or {}
  if type(opts) ~= "table" then
    return invalid("create_customers", "options", "options must be a table")
  end
  for key in pairs(opts) do
    if not BULK_OPTIONS[key] then
      return invalid("create_customers", tostring(key), "unknown field '" .. tostring(key) .. "'")
    end
  end
  local concurrency = opts.concurrency or 8
  if type(concurrency) ~= "number" or concurrency ~= floor(concurrency) or concurrency < 1 or concurrency > 64 then
    return invalid("create_customers", "concurrency", "concurrency must be an integer from 1 to 64")
  end
  local limits
  if opts.max_retries ~= nil or opts.deadline ~= nil then
    limits = { max_retries = opts.max_retries, deadline = opts.deadline }
  end
  local n = #list
  local results, failures, next_index = {}, 0, 1
  local function worker()
    while next_index <= n do
      local i = next_index
      next_index = i + 1
      local customer, err = create(client, list[i], limits)
      results[i] = customer or err
      if not customer then
        failures = failures + 1
      end
    end
  end
  if THREAD_PHASES[ngx.get_phase()] and concurrency > 1 and n > 1 then
    local threads = {}
    for t = 1, min(concurrency, n) do
      threads[t] = ngx.thread.spawn(worker)
    end
    for t = 1, #threads do
      local ok, err = ngx.thread.wait(threads[t])
      if not ok then
        error(err, 0)
      end
    end
  else
    worker()
  end
  return results, failures
end

-- Called by luaopen_orbt with the client's method table. Outside nginx the
-- core's methods stay as they are.
function M.install(methods, error_constructor)
  make_error = error_constructor
  if not (ngx and ngx.socket and ngx.socket.tcp and ngx.get_phase) then
    return
  end
  for _, op in ipairs({ "create_customer", "list_customers" }) do
    methods[op] = wrap(methods[op], op)
  end
  local bulk_direct, create = methods.create_customers, methods.create_customer
  methods.create_customers = function(client, list, opts)
    local s = settings_of(client)
    if not s or s.transport == "curl" or (s.transport == "auto" and not COSOCKET_PHASES[phase()]) then
      return bulk_direct(client, list, opts)
    end
    return create_many(client, create, list, opts)
  end
end

M._parse_base_url = parse_base_url -- for the specs

return M
