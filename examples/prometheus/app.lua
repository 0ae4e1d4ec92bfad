-- app.lua: the example's handlers, which call Orbt through one client per
-- nginx worker, counted by orbt_metrics.
--
--   GET  /customers                  a page of consumers
--   POST /customers?name=..&email=.. a consumer with a USD wallet
--
-- The client lives in this module's local `client`: a module is loaded once
-- per worker, so its locals last as long as the worker, and every request
-- of the worker shares one client (and its kept-alive connections). Never
-- make it a global: nginx's Lua module warns about globals, and a global
-- written in one request is seen by the next.
-- luacheck: globals ngx

local orbt = require("orbt")
local metrics = require("orbt_metrics")

local M = {}

local client

-- Made on the worker's first request (a client is not made in
-- init_by_lua: that runs in nginx's master, before the workers exist).
-- The credentials come from the ORBT_* variables that nginx.conf's `env`
-- lines pass to the workers.
local function get_client()
  if not client then
    local err
    client, err = orbt.from_env{ timeout = 5, on_response = metrics.on_response }
    if not client then
      return nil, err
    end
  end
  return client
end

local function fail(status, err)
  ngx.status = status
  ngx.say(tostring(err))
end

-- An orbt error as this server's answer: a refusal by Orbt is the caller's
-- (422), anything else is the upstream's (502).
local function fail_call(err)
  return fail(err.kind == "api" and err.status and err.status < 500 and 422 or 502, err)
end

function M.customers()
  local c, err = get_client()
  if not c then
    return fail(500, err)
  end
  if ngx.req.get_method() == "POST" then
    local args = ngx.req.get_uri_args()
    local customer, create_err = c:create_customer{ fullName = args.name or "", email = args.email or "",
      currency = "USD", initialFunds = 0 }
    if not customer then
      return fail_call(create_err)
    end
    ngx.status = 201
    ngx.say("created consumer ", customer.id, " with wallet ", customer.walletId)
    return
  end
  local page, list_err = c:list_customers{ size = 20 }
  if not page then
    return fail_call(list_err)
  end
  ngx.say(#page.content, " consumers on page ", page.page)
end

return M
