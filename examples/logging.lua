-- logging.lua: one log line per HTTP attempt, from orbt's on_response hook.
--
--   examples/run-with-mock.sh lua5.4 examples/logging.lua
--
-- (after `make`, with LUA_PATH="$PWD/lua/?.lua;;" and
-- LUA_CPATH="$PWD/build/lua5.4/?.so;;" as for examples/quickstart.lua).
--
-- The client comes from the environment (orbt.from_env: ORBT_API_KEY,
-- ORBT_CLIENT_ID, ORBT_SECRET, ORBT_BASE_URL, ...). on_response runs after
-- every attempt, retries included, and gets what the call was (operation,
-- method, path, attempt) and how it went: the status, or the error's kind and
-- reason when there was no good answer, the duration, the request id the
-- server gave, and whether orbt retries and after what delay. It never gets a
-- header value, a body or a credential, so every field is safe to log.
--
-- The log lines are logfmt (key=value) on stderr; the script's own results
-- go to stdout. Replace `log` with your logger.

local orbt = require("orbt")

-- A logfmt value: bare when it can be, else quoted.
local function value_text(v)
  local s = tostring(v)
  if s ~= "" and not s:find('[%s"=\\]') then
    return s
  end
  return '"' .. s:gsub('[\\"]', "\\%0"):gsub("\n", "\\n") .. '"'
end

local function log(fields)
  local parts = { os.date("!%Y-%m-%dT%H:%M:%SZ"), "orbt" }
  for i = 1, #fields, 2 do
    local key, v = fields[i], fields[i + 1]
    if v ~= nil then
      parts[#parts + 1] = key .. "=" .. value_text(v)
    end
  end
  io.stderr:write(table.concat(parts, " "), "\n")
end

-- One line per attempt. Hooks run inside the call: keep them quick, and
-- never call the client from one (orbt refuses that).
local function on_response(info)
  log{
    "op", info.operation,
    "method", info.method,
    "path", info.path,
    "attempt", info.attempt,
    "status", info.status,          -- nil when no answer came (a timeout, a refused connection)
    "kind", info.kind,              -- nil on success; "api", "network", "timeout", "decode", ...
    "reason", info.reason,
    "duration_ms", ("%.1f"):format(info.duration * 1000),
    "request_id", info.request_id,
    "retry", info.retry,
    "delay_ms", info.delay and ("%.0f"):format(info.delay * 1000),
  }
end

-- A hook that raises does not break the call; orbt hands its error here.
local function on_hook_error(message)
  log{ "level", "error", "hook_error", message }
end

local client, err = orbt.from_env{ timeout = 10, on_response = on_response, on_hook_error = on_hook_error }
if not client then
  io.stderr:write("logging: ", tostring(err), "\n")
  os.exit(2)
end

local function show(what, result, call_err)
  if result then
    print(what .. ": ok")
  else
    print(what .. ": " .. tostring(call_err))
  end
end

-- A read, a create, the same create again (the server refuses it: this email
-- already has a USD wallet), and a credit.
local email = ("logging-%d@example.com"):format(os.time())
show("list_customers", client:list_customers{ size = 5 })
local customer, create_err = client:create_customer{ fullName = "Log Example", email = email, currency = "USD",
  initialFunds = 10 }
show("create_customer", customer, create_err)
show("create_customer again", client:create_customer{ fullName = "Log Example", email = email, currency = "USD",
  initialFunds = 10 })
if customer then
  show("credit", client:credit(customer.walletId, { amount = "2.50", referenceId = "logging-" .. email,
    description = "log example" }))
end

-- The whole of the last call, retries included.
local last = client:last_response()
print(("last call: %s, %d attempt(s), status %s, request id %s, %.1f ms"):format(last.operation, last.attempts,
  tostring(last.status), tostring(last.request_id), last.duration * 1000))
client:close()

-- Retries: a client for an address where nothing listens (port 9 on this
-- machine), with the same hook. A read is retried after a refused
-- connection, so the log shows three attempts of one call, each with the
-- delay before the next.
local unreachable = assert(orbt.from_env{ base_url = "http://127.0.0.1:9", max_retries = 2, timeout = 2,
  on_response = on_response, on_hook_error = on_hook_error })
show("list_customers at 127.0.0.1:9", unreachable:list_customers())
unreachable:close()
