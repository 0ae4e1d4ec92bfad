-- client_socket.lua: alternative (c) of `make bench`: the workload written
-- by hand in Lua, as a user without orbt would: one LuaSocket TCP
-- connection kept alive, luaossl for SHA-256 and HMAC-SHA256, LuaSocket's
-- mime.b64 for Base64, lua-cjson to encode and decode. See workload.lua.
--
-- For an https:// base URL it is alternative (h): the same connection
-- wrapped once in TLS with LuaSec (ssl.wrap, verify = "peer", the CA in
-- BENCH_CA_FILE), so one handshake for the whole run. LuaSec verifies the
-- chain but has no host name check. With BENCH_RECONNECT=1 it is (i): a new
-- connection (so a new TLS handshake) for every request, with one TLS
-- context for the run and TCP_NODELAY, which ssl.https (g) lacks.
local socket = require("socket")
local b64 = require("mime").b64
local digest = require("openssl.digest")
local hmac = require("openssl.hmac")
local cjson = require("cjson")
local workload = require("workload")

local concat = table.concat
local tonumber = tonumber

local run = workload.args(arg)
local creds = workload.credentials()
if not run.host then workload.fail("base URL must be http(s)://HOST:PORT") end
local host, port = run.host:match("^(.+):(%d+)$")

local reconnect = os.getenv("BENCH_RECONNECT") == "1"

local ssl, tls_context
if run.tls then
  ssl = require("ssl")
  -- The options ssl.https uses.
  local context, why = ssl.newcontext{ mode = "client", protocol = "any", verify = "peer", cafile = run.ca_file,
    options = { "all", "no_sslv2", "no_sslv3", "no_tlsv1" } }
  if not context then workload.fail("TLS context: " .. why) end
  tls_context = context
end

local function connect()
  local s = socket.tcp()
  s:settimeout(10)
  local ok, err = s:connect(host, tonumber(port))
  if not ok then return nil, "connect: " .. err end
  -- After connect: LuaSocket makes the socket itself only then.
  s:setoption("tcp-nodelay", true)
  if tls_context then
    s, err = ssl.wrap(s, tls_context)
    if not s then return nil, "TLS: " .. err end
    -- SNI names a host, never an IP address (libcurl sends none for one either).
    if not host:match("^[%d.]+$") then s:sni(host) end
    s:settimeout(10)
    ok, err = s:dohandshake()
    if not ok then return nil, "TLS handshake: " .. err end
  end
  return s
end

local sock
if not reconnect then
  local err
  sock, err = connect()
  if not sock then workload.fail(err) end
end

local api_key, client_id, secret = creds.api_key, creds.client_id, creds.secret
local gettime, timestamp = workload.gettime, workload.timestamp

-- The five authentication headers, per the Orbt signing scheme.
local function auth_headers(method, body)
  local ts = timestamp(gettime())
  local body_hash = b64(digest.new("sha256"):final(body))
  local message = method .. "\n" .. ts .. "\n" .. client_id .. "\n" .. body_hash
  local signature = b64(hmac.new(secret, "sha256"):final(message))
  return "x-api-key: " .. api_key .. "\r\nx-client-id: " .. client_id .. "\r\nx-timestamp: " .. ts
    .. "\r\nx-body-hash: " .. body_hash .. "\r\nx-signature: " .. signature .. "\r\n"
end

-- One exchange on the kept-alive connection (or a new one, closed after);
-- the answer needs a Content-Length.
local function exchange(method, target, body)
  local parts = { method, " ", target, " HTTP/1.1\r\nHost: ", run.host, "\r\nAccept: application/json\r\n",
    auth_headers(method, body) }
  if reconnect then
    local connect_err
    sock, connect_err = connect()
    if not sock then return nil, connect_err end
    parts[#parts + 1] = "Connection: close\r\n"
  end
  if method == "POST" then
    parts[#parts + 1] = "Content-Type: application/json\r\nContent-Length: " .. #body .. "\r\n"
  end
  parts[#parts + 1] = "\r\n"
  parts[#parts + 1] = body
  local sent, send_err = sock:send(concat(parts))
  if not sent then return nil, "send: " .. send_err end
  local line, recv_err = sock:receive("*l")
  if not line then return nil, "receive: " .. recv_err end
  local status = tonumber(line:match("^HTTP/1%.1 (%d%d%d)"))
  local length
  while true do
    line, recv_err = sock:receive("*l")
    if not line then return nil, "receive: " .. recv_err end
    if line == "" then break end
    local name, value = line:match("^([^:]+):%s*(.-)%s*$")
    if name and name:lower() == "content-length" then length = tonumber(value) end
  end
  if not length then return nil, "answer without Content-Length" end
  local answer, body_err = sock:receive(length)
  if not answer then return nil, "receive: " .. body_err end
  if reconnect then sock:close() end
  return status, answer
end

local step
if run.workload == "get" then
  local target = workload.PATH .. "?" .. workload.LIST_QUERY
  step = function()
    local status, answer = exchange("GET", target, "")
    if not workload.is_2xx(status) then return nil, ("GET answered %s: %s"):format(status, answer) end
    return workload.check_page(cjson.decode(answer))
  end
else
  local tag = run.tag
  step = function(i)
    local status, answer = exchange("POST", workload.PATH, cjson.encode(workload.customer(tag, i)))
    if not workload.is_2xx(status) then return nil, ("POST answered %s: %s"):format(status, answer) end
    local doc = cjson.decode(answer)
    if doc.success ~= true then return nil, "the create answer lacks success = true" end
    return workload.check_customer(doc.data)
  end
end

workload.run(run, step)
if not reconnect then sock:close() end
