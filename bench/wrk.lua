-- wrk.lua: alternative (f) of `make bench`, the server's ceiling:
-- `wrk -t1 -c1 -s bench/wrk.lua URL` sends requests signed beforehand by the
-- harness, since wrk cannot sign. BENCH_WRK_REQUESTS names a file of them,
-- one per line: METHOD, PATH, x-timestamp, x-body-hash, x-signature, BODY,
-- separated by tabs. With one line, wrk sends that same request every time
-- (a GET); with more, each request takes the next line (POSTs with unique
-- emails), and running out starts again from the top, which orbt-mock
-- answers with 400 and wrk counts as non-2xx. wrk does not parse answers.
-- ORBT_API_KEY and ORBT_CLIENT_ID give the other two headers.
-- luacheck: globals wrk request

local api_key, client_id = os.getenv("ORBT_API_KEY"), os.getenv("ORBT_CLIENT_ID")
local path = assert(os.getenv("BENCH_WRK_REQUESTS"), "set BENCH_WRK_REQUESTS")

local function parse(line)
  local method, target, ts, body_hash, signature, body =
    line:match("^(%u+)\t([^\t]+)\t([^\t]+)\t([^\t]+)\t([^\t]+)\t(.*)$")
  assert(method, "bad line in " .. path)
  local headers = { ["x-api-key"] = api_key, ["x-client-id"] = client_id, ["x-timestamp"] = ts,
    ["x-body-hash"] = body_hash, ["x-signature"] = signature, Accept = "application/json" }
  if body ~= "" then
    headers["Content-Type"] = "application/json"
  else
    body = nil
  end
  return method, target, headers, body
end

local file = assert(io.open(path, "r"))
local first = assert(file:read("*l"), "no requests in " .. path)
local several = file:read("*l") ~= nil

if not several then
  file:close()
  wrk.method, wrk.path, wrk.headers, wrk.body = parse(first)
else
  file:seek("set", 0)
  request = function()
    local line = file:read("*l")
    if line == nil then
      file:seek("set", 0)
      line = file:read("*l")
    end
    return wrk.format(parse(line))
  end
end
