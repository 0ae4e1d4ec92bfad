-- A C host with 8 threads, each with a lua_State of its own
-- (examples/embed/threads.c), with orbt and the host built with
-- ThreadSanitizer. Every thread opens orbt at the same moment (a barrier),
-- so the once-per-process set-up (libcurl's global init, OpenSSL's
-- algorithms, the proxy pool's salt) is raced for real; then each makes
-- creates, lists, a bulk create, signatures and referenceIds through its
-- own client against one orbt-mock. Any ThreadSanitizer report fails it.
-- The host embeds Lua 5.4, so it runs on the Lua 5.4 pass only.
local harness = require("support.harness")
local shell = require("support.shell")

local THREADS, CALLS = 8, 10

describe("a C host with 8 threads, each with its own lua_State, under ThreadSanitizer", function()
  if os.getenv("ORBT_RUNTIME") ~= "lua5.4" then
    pending("runs on the Lua 5.4 pass (the host embeds Lua 5.4)")
    return
  end
  local env = harness.with_mock{ client = false }

  it("opens orbt on every thread at once and calls through it, with no data race reported", function()
    local out, built = shell.run("make --no-print-directory tsan 2>&1")
    assert.is_true(built, out)
    local vars = {
      ORBT_BASE_URL = env.mock.url, ORBT_API_KEY = env.mock.api_key, ORBT_CLIENT_ID = env.mock.client_id,
      ORBT_SECRET = env.mock.secret, ORBT_THREAD_CALLS = tostring(CALLS),
      LUA_PATH_5_4 = "lua/?.lua", LUA_CPATH_5_4 = "",
      TSAN_OPTIONS = "halt_on_error=1 exitcode=66 second_deadlock_stack=1",
    }
    local assignments = {}
    for name, value in pairs(vars) do
      assignments[#assignments + 1] = name .. "=" .. shell.quote(value)
    end
    -- Under `make test SANITIZE=1` the interpreter preloads AddressSanitizer,
    -- which cannot share a process with ThreadSanitizer.
    local ran
    out, ran = shell.run(("env -u LD_PRELOAD %s build/tsan/orbt-threads examples/embed/thread.lua %d 2>&1")
      :format(table.concat(assignments, " "), THREADS))
    assert.is_nil(out:find("ThreadSanitizer", 1, true), out)
    assert.is_true(ran, out)
    assert.matches(("orbt-threads: %d threads, 0 failed"):format(THREADS), out, 1, true)

    -- Every thread's calls reached orbt-mock, signed correctly.
    local stats = env.mock:stats()
    assert.equal(THREADS * CALLS * 2, stats.consumers)
    assert.equal(0, stats.auth_failures)
    assert.equal(THREADS * CALLS * 3, stats.requests_total)
  end)
end)
