-- scale_baseline.lua: the fair baseline of the "nginx at scale" part of
-- `make bench` (bench/nginx_scale.conf.in, /baseline): the same call as the
-- orbt handler, GET /api/partner/v1/customer?page=0&size=20, written by hand
-- as a careful user would write it without orbt's client:
--
--   - orbt.sign{...} makes the five signed headers (a fresh timestamp per
--     request), so signing costs the same as in orbt;
--   - a minimal HTTP/1.1 request, written in one send;
--   - ngx.socket.tcp with nginx's keep-alive pool, sized like orbt's client
--     (connect options pool, pool_size, backlog), and setkeepalive after
--     every complete answer the server lets us keep;
--   - the answer read as lua-resty-http reads it: the status line and each
--     header line with receive("*l"), then the Content-Length body;
--   - the body decoded with lua-cjson (cjson.safe), and the page checked for
--     its 20 consumers.
--
-- A failed call answers 502 and logs "baseline call failed: ..."; a page
-- without 20 consumers answers 500, as the orbt handler does. Plain HTTP
-- only: the upstream answers with Content-Length, never chunked.
--
-- bench_scale, a global set by init_by_lua, holds the settings: the
-- credentials, upstream_host and upstream_port, pool_size and pool_backlog.
-- luacheck: std +ngx_lua
-- luacheck: globals bench_scale

local orbt = require("orbt")
local cjson = require("cjson.safe")

local tonumber = tonumber
local tostring = tostring
local concat = table.concat

local M = {}

local settings = bench_scale

local TARGET = "/api/partner/v1/customer?page=0&size=20"
local KEEPALIVE_IDLE_MS = 30000   -- as orbt's cosocket transport
local TIMEOUT_MS = 10000          -- as orbt's client in this bench (timeout = 10)

local host, port, sign_args, connect_options, request_head

-- The handler's answer, shared with the orbt handler (bench/scale_nginx.lua,
-- which calls this init_worker once it is loaded).
local answer

function M.init_worker()
  answer = require("scale_nginx").answer
  host, port = settings.upstream_host, settings.upstream_port
  sign_args = { method = "GET", client_id = settings.client_id, api_key = settings.api_key,
    secret = settings.secret }
  connect_options = { pool = ("baseline:%s:%d"):format(host, port), pool_size = settings.pool_size,
    backlog = settings.pool_backlog }
  request_head = ("GET %s HTTP/1.1\r\nHost: %s:%d\r\nAccept: application/json\r\n"):format(TARGET, host, port)
end

-- The answer's status, body and whether the connection may be kept; or nil
-- and what went wrong.
local function read_answer(sock)
  local line, err = sock:receive("*l")
  if not line then return nil, "reading the status line: " .. tostring(err) end
  local version, status = line:match("^HTTP/1%.(%d) (%d%d%d)")
  if not status then return nil, "not an HTTP/1.x status line: " .. line:sub(1, 80) end
  local length
  local keep = version == "1"
  while true do
    line, err = sock:receive("*l")
    if not line then return nil, "reading the headers: " .. tostring(err) end
    if line == "" then break end
    local name, value = line:match("^([^:]+):%s*(.-)%s*$")
    if not name then return nil, "a bad header line: " .. line:sub(1, 80) end
    name = name:lower()
    if name == "content-length" then
      length = tonumber(value)
    elseif name == "connection" then
      local v = value:lower()
      if v:find("close", 1, true) then keep = false elseif v:find("keep-alive", 1, true) then keep = true end
    elseif name == "transfer-encoding" then
      return nil, "a chunked answer, which this handler does not read"
    end
  end
  if not length then return nil, "an answer without Content-Length" end
  local body = ""
  if length > 0 then
    body, err = sock:receive(length)
    if not body then return nil, "reading the body: " .. tostring(err) end
  end
  return tonumber(status), body, keep
end

-- The page, or nil and why not.
local function call()
  local headers, err = orbt.sign(sign_args)
  if not headers then return nil, "signing: " .. tostring(err) end
  local sock = ngx.socket.tcp()
  sock:settimeout(TIMEOUT_MS)
  local ok
  ok, err = sock:connect(host, port, connect_options)
  if not ok then return nil, "connecting: " .. tostring(err) end
  local request = concat{ request_head,
    "x-api-key: ", headers["x-api-key"], "\r\n",
    "x-client-id: ", headers["x-client-id"], "\r\n",
    "x-timestamp: ", headers["x-timestamp"], "\r\n",
    "x-body-hash: ", headers["x-body-hash"], "\r\n",
    "x-signature: ", headers["x-signature"], "\r\n\r\n" }
  ok, err = sock:send(request)
  if not ok then
    sock:close()
    return nil, "sending: " .. tostring(err)
  end
  local status, body, keep = read_answer(sock)
  if not status then
    sock:close()
    return nil, body
  end
  if keep then
    ok, err = sock:setkeepalive(KEEPALIVE_IDLE_MS, settings.pool_size)
    if not ok then
      ngx.log(ngx.WARN, "baseline: setkeepalive failed: ", tostring(err))
      sock:close()
    end
  else
    sock:close()
  end
  if status < 200 or status > 299 then return nil, "the upstream answered " .. status end
  local page
  page, err = cjson.decode(body)
  if not page then return nil, "decoding the page: " .. tostring(err) end
  return page
end

function M.list()
  return answer("baseline", call())
end

return M
