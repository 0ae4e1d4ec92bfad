-- support/harness.lua: the set-up most specs share, and the one customer
-- factory.
--
--   describe("...", function()
--     local env = harness.with_mock{ client = { timeout = 5 } }
--     it("...", function() assert(env.client:list_customers()) end)
--   end)
--
-- with_mock registers busted's hooks in the describe block that calls it:
-- the mock is started once for the block and cleaned up after it (a mock
-- that does not exit cleanly fails the run), and before each spec it is
-- reset and a fresh client made, closed after the spec. Options:
--   mock           options for support.mock's start, or a function returning
--                  them (called at set-up, after hooks registered earlier)
--   client         overrides for the client's options; false: no client
--   shared_client  true: one client for the whole block instead of one per spec
--   reset          false: the mock is not reset before each spec
--   lazy           true: lazy_setup/lazy_teardown instead of setup/teardown
--   nginx          true: a real nginx (support.nginx) configured for the
--                  mock, started after it and stopped before it; or
--                  { settings = extra settings for the handlers, env = its
--                  environment }, or a function returning that. A signal or
--                  an [alert] in its error log fails the run
-- Specs read env.mock, env.client and env.nginx.
local busted = require("busted")
local mockserver = require("support.mock")

local M = {}

local function value_of(option, ...)
  if type(option) == "function" then
    return option(...)
  end
  return type(option) == "table" and option or {}
end

local function start_nginx(mock, option)
  local o = value_of(option, mock)
  local settings = { api_key = mock.api_key, client_id = mock.client_id, secret = mock.secret, mock_url = mock.url }
  for k, v in pairs(o.settings or {}) do
    settings[k] = v
  end
  return require("support.nginx").start{ settings = settings, env = o.env }
end

-- A crash or a Lua error anywhere in nginx fails the run.
local function assert_quiet(log)
  for _, pattern in ipairs{ "[^\n]*signal %d+[^\n]*", "[^\n]*%[alert%][^\n]*" } do
    local line = log:match(pattern)
    assert(not line, ("nginx logged %s\n%s"):format(tostring(line), log))
  end
end

function M.with_mock(opts)
  opts = opts or {}
  local env = {}
  local wants_client = opts.client ~= false
  local per_spec = wants_client and not opts.shared_client
  local setup = opts.lazy and busted.lazy_setup or busted.setup
  local teardown = opts.lazy and busted.lazy_teardown or busted.teardown

  setup(function()
    env.mock = mockserver.start(value_of(opts.mock))
    if opts.nginx then
      env.nginx = start_nginx(env.mock, opts.nginx)
    end
    if wants_client and not per_spec then
      env.client = env.mock:client(opts.client)
    end
  end)

  teardown(function()
    local log = env.nginx and env.nginx:stop()
    if env.client then
      env.client:close()
    end
    if env.mock then
      env.mock:cleanup()
    end
    if log then
      assert_quiet(log)
    end
  end)

  if opts.reset ~= false or per_spec then
    busted.before_each(function()
      if opts.reset ~= false then
        env.mock:reset()
      end
      if per_spec then
        env.client = env.mock:client(opts.client)
      end
    end)
  end

  if per_spec then
    busted.after_each(function()
      if env.client then
        env.client:close()
        env.client = nil
      end
    end)
  end

  return env
end

-- A tag for this process, so runs in parallel never make the same email.
local function process_tag()
  local f = io.open("/dev/urandom", "rb")
  local bytes = f and f:read(4)
  if f then
    f:close()
  end
  if not bytes then
    return ("%x"):format(os.time())
  end
  return (bytes:gsub(".", function(byte) return ("%02x"):format(byte:byte()) end))
end

local TAG = process_tag()
local made = 0

-- A valid customer for create_customer, with an email no other call makes;
-- overrides replace (or, with false, spoil) any field.
function M.customer(overrides)
  made = made + 1
  local c = { fullName = "Customer " .. made, email = ("customer%d-%s@example.com"):format(made, TAG),
    currency = "USD", initialFunds = 1 }
  for k, v in pairs(overrides or {}) do
    c[k] = v
  end
  return c
end

-- A list of n such customers, each with the same overrides.
function M.customers(n, overrides)
  local list = {}
  for i = 1, n do
    list[i] = M.customer(overrides)
  end
  return list
end

return M
