-- support/calls.lua: runs a spec's calls on a client and describes each
-- outcome as a plain table, the same way in this process and inside nginx
-- (spec/nginx/handlers.lua), so one spec can hold every transport to the
-- same answers.
--
--   local c = calls.call("credit", "101", { amount = 1, referenceId = "r" })
--   local outcomes = calls.run(client, { c, ... })            -- one call at a time
--   local outcomes = calls.run(client, { c, ... }, "bulk")    -- each through the bulk engine
--
-- An outcome is {ok = true, result = ..., failures = ...} or {ok = false,
-- error fields...}. Results are copied into plain tables: orbt.null becomes
-- NULL below, an error value its fields with is_error = true. A call with
-- iterate = true walks the iterator it names and gives the list of items.
local unpack = table.unpack or unpack -- luacheck: ignore 143 (Lua 5.1's global)

local M = {}

M.NULL = "<null>"

-- The path parameters of each operation with some, in argument order: the
-- bulk engine takes them as fields of the list item.
M.PARAMS = {
  list_wallets = { "customerId" },
  create_transaction = { "walletId" },
  credit = { "walletId" },
  debit = { "walletId" },
}

local ERROR_FIELDS = { "kind", "status", "code", "reason", "message", "field", "retryable", "maybe_applied",
  "attempts", "retry_after", "method", "path", "body", "request_id" }

function M.call(name, ...)
  return { name = name, argc = select("#", ...), argv = { ... } }
end

-- The call as JSON can carry it: argument positions as string keys, so
-- that a nil among them survives.
function M.encode(c)
  local argv = {}
  for i = 1, c.argc do
    if c.argv[i] ~= nil then
      argv[tostring(i)] = c.argv[i]
    end
  end
  return { name = c.name, argc = c.argc, argv = argv, iterate = c.iterate }
end

function M.decode(c)
  local argv = {}
  for i = 1, c.argc do
    argv[i] = c.argv[tostring(i)]
  end
  return { name = c.name, argc = c.argc, argv = argv, iterate = c.iterate }
end

local function error_fields(err)
  local t = { ok = false, is_error = true, text = tostring(err) }
  for _, k in ipairs(ERROR_FIELDS) do
    t[k] = err[k]
  end
  return t
end

local function plain(orbt, v)
  if v == orbt.null then
    return M.NULL
  end
  if type(v) ~= "table" then
    return v
  end
  if orbt.is_error(v) then
    return error_fields(v)
  end
  local copy = {}
  for k, x in pairs(v) do
    copy[k] = plain(orbt, x)
  end
  return copy
end

local function walk(orbt, client, c)
  local items = {}
  local ok, err = pcall(function()
    for item in client[c.name](client, unpack(c.argv, 1, c.argc)) do
      items[#items + 1] = plain(orbt, item)
    end
  end)
  if not ok then
    return orbt.is_error(err) and error_fields(err) or { ok = false, text = tostring(err) }
  end
  return { ok = true, result = items }
end

-- One call through client:_bulk: its path parameters go into the item.
local function through_bulk(client, c)
  local params = M.PARAMS[c.name] or {}
  local n = #params
  local args = c.argv[n + 1]
  local item = args
  if n > 0 then
    item = {}
    for k, v in pairs(args or {}) do
      item[k] = v
    end
    for i, name in ipairs(params) do
      item[name] = c.argv[i]
    end
  end
  local results, failures = client:_bulk(c.name, { item }, c.argv[n + 2])
  if not results then
    return nil, failures
  end
  local r = results[1]
  local is_error = require("orbt").is_error(r)
  assert(#results == 1 and failures == (is_error and 1 or 0))
  if is_error then
    return nil, r
  end
  return r
end

-- Hooks for orbt.new that record what they see, in this process or inside
-- nginx: {options = {on_request, on_response, on_hook_error}, seen = {...}}.
-- Each entry of seen is {hook = name, info = a copy} or, for
-- on_hook_error, {hook = "on_hook_error", message = ..., operation = ...}.
-- spec.raise names a hook that raises after recording; spec.yield one
-- that calls ngx.sleep(0) (nginx only).
function M.recording_hooks(spec)
  local seen = {}
  local function recorder(name)
    return function(info)
      local copy = {}
      for k, v in pairs(info) do
        copy[k] = v
      end
      seen[#seen + 1] = { hook = name, info = copy }
      if spec.yield == name then
        ngx.sleep(0) -- luacheck: ignore 113 (nginx's global)
      end
      if spec.raise == name then
        error("the " .. name .. " hook fails on purpose")
      end
    end
  end
  return {
    seen = seen,
    options = {
      on_request = recorder("on_request"),
      on_response = recorder("on_response"),
      on_hook_error = function(message, info)
        seen[#seen + 1] = { hook = "on_hook_error", message = message, operation = info.operation }
      end,
    },
  }
end

-- A copy of t with extra's fields on top.
function M.copy(t, extra)
  local c = {}
  for k, v in pairs(t or {}) do
    c[k] = v
  end
  for k, v in pairs(extra or {}) do
    c[k] = v
  end
  return c
end

-- The transports a spec holds to the same answers, and a runner for each:
-- run(list, overrides, hooks) makes a client for env's mock (overrides go
-- into orbt.new's options), runs the calls on the transport and returns one
-- outcome per call, then, when `hooks` asks for recording hooks
-- (recording_hooks), what they saw and the client's last_response().
M.TRANSPORTS = {
  { name = "one libcurl call at a time" },
  { name = "the bulk engine on libcurl's connections", how = "bulk" },
  { name = "nginx cosockets #nginx", nginx = true },
}

function M.runner(env, transport)
  local json = require("dkjson")
  return function(list, overrides, hooks)
    local options = M.copy({ api_key = env.mock.api_key, client_id = env.mock.client_id, secret = env.mock.secret,
      base_url = env.mock.url, timeout = 5 }, overrides)
    if not transport.nginx then
      local recording = hooks and M.recording_hooks(hooks)
      local client = assert(require("orbt").new(M.copy(options, recording and recording.options)))
      local outcomes = M.run(client, list, transport.how)
      local last = client:last_response()
      client:close()
      return outcomes, recording and recording.seen, last
    end
    options.transport = "cosocket"
    local encoded = {}
    for i, c in ipairs(list) do
      encoded[i] = M.encode(c)
    end
    local status, body = env.nginx:post("/calls", json.encode({ options = options, calls = encoded, hooks = hooks }))
    assert(status == 200, body)
    local got = assert(json.decode(body), body)
    if hooks then
      return got.outcomes, got.seen, got.last
    end
    return got
  end
end

function M.run(client, list, how)
  local orbt = require("orbt")
  local outcomes = {}
  for i, c in ipairs(list) do
    if c.iterate then
      outcomes[i] = walk(orbt, client, c)
    else
      local result, err
      if how == "bulk" then
        result, err = through_bulk(client, c)
      else
        result, err = client[c.name](client, unpack(c.argv, 1, c.argc))
      end
      if result ~= nil then
        -- A bulk method's second value is its count of failures.
        outcomes[i] = { ok = true, result = plain(orbt, result), failures = type(err) == "number" and err or nil }
      else
        outcomes[i] = error_fields(err)
      end
    end
  end
  return outcomes
end

return M
