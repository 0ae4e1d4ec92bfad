-- client_socket.lua: alternative (c) of `make bench`: the workload written
-- by hand in Lua, as a user without orbt would: one LuaSocket TCP
-- connection kept alive, luaossl for SHA-256 and HMAC-SHA256, LuaSocket's
-- mime.b64 for Base64, lua-cjson to encode and decode. See workload.lua.
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
if not run.host then workload.fail("base URL must be http://HOST:PORT") end
local host, port = run.host:match("^(.+):(%d+)$")

local sock = socket.tcp()
sock:settimeout(10)
local ok, err = sock:connect(host, tonumber(port))
if not ok then workload.fail("connect: " .. err) end
-- After connect: LuaSocket makes the socket itself only then.
sock:setoption("tcp-nodelay", true)

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

-- One exchange on the kept-alive connection; the answer needs a Content-Length.
local function exchange(method, target, body)
  local parts = { method, " ", target, " HTTP/1.1\r\nHost: ", run.host, "\r\nAccept: application/json\r\n",
    auth_headers(method, body) }
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
  return status, answer
end

local step
if run.workload == "get" then
  local target = workload.PATH .. "?" .. workload.LIST_QUERY
  step = function()
    local status, answer = exchange("GET", target, "")
    if status ~= 200 then return nil, ("GET answered %s: %s"):format(status, answer) end
    return workload.check_page(cjson.decode(answer))
  end
else
  local tag = run.tag
  step = function(i)
    local status, answer = exchange("POST", workload.PATH, cjson.encode(workload.customer(tag, i)))
    if status ~= 201 then return nil, ("POST answered %s: %s"):format(status, answer) end
    local doc = cjson.decode(answer)
    if doc.success ~= true then return nil, "the create answer lacks success = true" end
    return workload.check_customer(doc.data)
  end
end

workload.run(run, step)
sock:close()
