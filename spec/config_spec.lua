-- orbt.from_env: a client from ORBT_API_KEY, ORBT_CLIENT_ID, ORBT_SECRET,
-- ORBT_BASE_URL, ORBT_TIMEOUT, ORBT_MAX_RETRIES and ORBT_PROXY, with
-- overrides on top; an error names the variable and never shows a value.
-- Each case runs a fresh Lua process with exactly the environment given.
local json = require("dkjson")
local harness = require("support.harness")
local shell = require("support.shell")

local VARIABLES = { "ORBT_API_KEY", "ORBT_CLIENT_ID", "ORBT_SECRET", "ORBT_BASE_URL", "ORBT_TIMEOUT",
  "ORBT_MAX_RETRIES", "ORBT_PROXY", "https_proxy", "HTTPS_PROXY", "http_proxy", "all_proxy", "ALL_PROXY" }

-- Runs the script's body with only these ORBT_ variables set; it gets
-- `orbt` and `json`, and whatever it prints as JSON comes back decoded.
local function with_env(vars, body)
  local unset = {}
  for _, name in ipairs(VARIABLES) do
    unset[#unset + 1] = "-u " .. name
  end
  local script = 'local orbt = require("orbt") local json = require("dkjson") ' .. body
  local out, ok = shell.run("env " .. table.concat(unset, " ") .. " " .. shell.lua_command(script, vars) .. " 2>&1")
  assert.is_true(ok, out)
  return assert(json.decode(out), out)
end

local REPORT = [[
  local function report(client, err)
    if not client then
      print(json.encode({ field = err.field, kind = err.kind, message = err.message, text = tostring(err) }))
      return
    end
    local page, call_err = client:list_customers(%s)
    print(json.encode({ ok = page ~= nil, attempts = call_err and call_err.attempts, kind = call_err and call_err.kind,
      client = tostring(client) }))
  end
]]

describe("orbt.from_env", function()
  local env = harness.with_mock{ client = false }

  local function vars(extra)
    local v = { ORBT_API_KEY = env.mock.api_key, ORBT_CLIENT_ID = env.mock.client_id, ORBT_SECRET = env.mock.secret,
      ORBT_BASE_URL = env.mock.url }
    for k, x in pairs(extra or {}) do
      v[k] = x
    end
    return v
  end

  it("makes a client from the environment that calls orbt-mock", function()
    local got = with_env(vars(), REPORT:format("") .. "report(orbt.from_env())")
    assert.is_true(got.ok)
    assert.matches(env.mock.client_id, got.client, 1, true)
    assert.equal(1, env.mock:request_count())
  end)

  it("reads ORBT_TIMEOUT and ORBT_MAX_RETRIES", function()
    env.mock:fault{ path = "/api/partner/v1/customer", method = "GET", delay_ms = 800, count = 10 }
    local got = with_env(vars{ ORBT_TIMEOUT = "0.2", ORBT_MAX_RETRIES = "1" },
      REPORT:format("") .. "report(orbt.from_env())")
    assert.is_false(got.ok)
    assert.equal("timeout", got.kind)
    assert.equal(2, got.attempts)
  end)

  it("takes overrides on top of the environment", function()
    local got = with_env(vars{ ORBT_BASE_URL = "http://127.0.0.1:9" },
      REPORT:format("") .. ("report(orbt.from_env{ base_url = %q })"):format(env.mock.url))
    assert.is_true(got.ok)
    got = with_env({ ORBT_API_KEY = env.mock.api_key, ORBT_CLIENT_ID = env.mock.client_id },
      REPORT:format("") .. ("report(orbt.from_env{ secret = %q, base_url = %q })")
        :format(env.mock.secret, env.mock.url))
    assert.is_true(got.ok)
  end)

  for _, missing in ipairs{ "ORBT_API_KEY", "ORBT_CLIENT_ID", "ORBT_SECRET" } do
    it("refuses a missing " .. missing .. ", naming it and showing no value", function()
      local v = vars()
      v[missing] = nil
      local got = with_env(v, REPORT:format("") .. "report(orbt.from_env())")
      assert.equal("invalid", got.kind)
      assert.equal(missing, got.field)
      assert.matches(missing .. " is not set", got.message, 1, true)
      for _, value in pairs(v) do
        assert.is_nil(got.text:find(value, 1, true), "the error shows a value: " .. got.text)
      end
    end)
  end

  it("refuses an ORBT_TIMEOUT or ORBT_MAX_RETRIES that is not a number, without repeating it", function()
    for name, bad in pairs{ ORBT_TIMEOUT = "soon-xyzzy", ORBT_MAX_RETRIES = "2.5xyzzy" } do
      local got = with_env(vars{ [name] = bad }, REPORT:format("") .. "report(orbt.from_env())")
      assert.equal(name, got.field)
      assert.is_nil(got.text:find("xyzzy", 1, true))
    end
    local got = with_env(vars(), REPORT:format("") .. "report(orbt.from_env('not a table'))")
    assert.equal("overrides", got.field)
  end)
end)

describe("orbt.from_env in nginx #nginx", function()
  local env = harness.with_mock{ client = false, nginx = function(mock)
    return { env = { ORBT_API_KEY = mock.api_key, ORBT_CLIENT_ID = mock.client_id, ORBT_SECRET = mock.secret,
      ORBT_BASE_URL = mock.url } }
  end }

  it("reads the variables nginx.conf passes with `env` lines", function()
    local status, body = env.nginx:get("/from-env")
    assert.equal(200, status, body)
    local got = assert(json.decode(body), body)
    assert.is_true(got.ok, body)
    assert.equal(1, env.mock:request_count())
  end)
end)
