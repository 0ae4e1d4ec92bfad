-- sign.lua: the signing part of `make bench`: the same signature made by
-- orbt.sign and by hand with luaossl.
--
--   lua5.4 sign.lua orbt|luaossl get|post SECONDS TIMESTAMP
--
-- Both do the same work for the same inputs: SHA-256 of the body and
-- HMAC-SHA256 over METHOD\nTIMESTAMP\nCLIENT_ID\nBODY_HASH, both in Base64,
-- returned as a new table of the five headers. The timestamp is given, so
-- that neither reads the clock. Credentials come from the environment as for
-- the clients. Prints "ok requests=N seconds=S cpu=C signature=SIG" (C: the
-- process's CPU seconds in the measured part).
local workload = require("workload")

local mode, body_kind, seconds, ts = arg[1], arg[2], tonumber(arg[3]), arg[4]
if not ((mode == "orbt" or mode == "luaossl") and (body_kind == "get" or body_kind == "post") and seconds and ts) then
  workload.fail("usage: sign.lua orbt|luaossl get|post SECONDS TIMESTAMP")
end
local creds = workload.credentials()
local api_key, client_id, secret = creds.api_key, creds.client_id, creds.secret
local method = body_kind == "get" and "GET" or "POST"
-- The body of a create, as client_orbt.lua sends it.
local body = body_kind == "get" and ""
  or '{"fullName":"Bench Consumer","email":"sign@bench.example","currency":"USD","initialFunds":1}'

local sign
if mode == "orbt" then
  local orbt_sign = require("orbt").sign
  local input = { method = method, body = body, client_id = client_id, api_key = api_key, secret = secret,
    timestamp = ts }
  sign = function()
    return orbt_sign(input)
  end
else
  local b64 = require("mime").b64
  local digest = require("openssl.digest")
  local hmac = require("openssl.hmac")
  sign = function()
    local body_hash = b64(digest.new("sha256"):final(body))
    local message = method .. "\n" .. ts .. "\n" .. client_id .. "\n" .. body_hash
  local signature = b64(hmac.new(secret, "sha256"):final(message))
    return { ["x-api-key"] = api_key, ["x-client-id"] = client_id, ["x-timestamp"] = ts,
      ["x-body-hash"] = body_hash, ["x-signature"] = signature }
  end
end

local signature = sign()["x-signature"]
local gettime = workload.gettime
-- The clock is read once per batch, so that it costs next to nothing.
local BATCH = 256
local n = 0
local cpu = os.clock()
local started = gettime()
local deadline = started + seconds
local finished
repeat
  for _ = 1, BATCH do
    sign()
  end
  n = n + BATCH
  finished = gettime()
until finished >= deadline
cpu = os.clock() - cpu
io.stdout:write(("ok requests=%d seconds=%.6f cpu=%.6f signature=%s\n")
  :format(n, finished - started, cpu, signature))
