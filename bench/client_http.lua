-- client_http.lua: alternative (d) of `make bench`: the workload through
-- LuaSocket's socket.http (a new connection for every request: it sends
-- "connection: close"), luaossl, mime.b64 and lua-cjson. See workload.lua.
--
-- For an https:// base URL it is alternative (g): the same through LuaSec's
-- ssl.https, the usual way to write HTTPS with LuaSocket, verifying the
-- server's certificate against BENCH_CA_FILE (verify = "peer", cafile).
-- So every request makes a new connection with a full TLS handshake and a
-- new TLS context (which reads the CA file). It sets no TCP_NODELAY and
-- sends the request line and the headers in two writes, so two TLS
-- records: the second often waits for the server's delayed ACK of the
-- first. LuaSec verifies the chain but has no host name check.
local ltn12 = require("ltn12")
local b64 = require("mime").b64
local digest = require("openssl.digest")
local hmac = require("openssl.hmac")
local cjson = require("cjson")
local workload = require("workload")

local concat = table.concat

local run = workload.args(arg)
local creds = workload.credentials()
local http = run.tls and require("ssl.https") or require("socket.http")
local api_key, client_id, secret = creds.api_key, creds.client_id, creds.secret
local gettime, timestamp = workload.gettime, workload.timestamp

local function request(method, url, body)
  local ts = timestamp(gettime())
  local body_hash = b64(digest.new("sha256"):final(body))
  local message = method .. "\n" .. ts .. "\n" .. client_id .. "\n" .. body_hash
  local signature = b64(hmac.new(secret, "sha256"):final(message))
  local headers = { ["x-api-key"] = api_key, ["x-client-id"] = client_id, ["x-timestamp"] = ts,
    ["x-body-hash"] = body_hash, ["x-signature"] = signature, accept = "application/json" }
  local source
  if method == "POST" then
    headers["content-type"] = "application/json"
    headers["content-length"] = #body
    source = ltn12.source.string(body)
  end
  local chunks = {}
  local ok, status = http.request{ url = url, method = method, headers = headers, source = source,
    sink = ltn12.sink.table(chunks), verify = run.tls and "peer" or nil, cafile = run.ca_file }
  if not ok then return nil, status end
  return status, concat(chunks)
end

local step
if run.workload == "get" then
  local url = run.base_url .. workload.PATH .. "?" .. workload.LIST_QUERY
  step = function()
    local status, answer = request("GET", url, "")
    if not workload.is_2xx(status) then return nil, ("GET answered %s: %s"):format(status, answer) end
    return workload.check_page(cjson.decode(answer))
  end
else
  local url, tag = run.base_url .. workload.PATH, run.tag
  step = function(i)
    local status, answer = request("POST", url, cjson.encode(workload.customer(tag, i)))
    if not workload.is_2xx(status) then return nil, ("POST answered %s: %s"):format(status, answer) end
    local doc = cjson.decode(answer)
    if doc.success ~= true then return nil, "the create answer lacks success = true" end
    return workload.check_customer(doc.data)
  end
end

workload.run(run, step)
