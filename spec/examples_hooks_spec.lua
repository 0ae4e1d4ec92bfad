-- The examples of orbt's hooks, run as a user runs them:
--   examples/logging.lua through examples/run-with-mock.sh, on every runtime:
--     one log line per attempt, retries included;
--   examples/prometheus/ in Debian's nginx (#nginx, the LuaJIT pass): calls
--     through its handler, faults injected in orbt-mock, /metrics scraped
--     with the curl tool, and every count checked against what orbt-mock saw.
--
-- The example's nginx.conf is written for a user: it names the checkout
-- /opt/orbt and listens on 127.0.0.1:8080. The spec starts it exactly as
-- spec/readme_spec.lua starts the documentation's nginx.conf blocks
-- (support/readme.lua's start_nginx): /opt/orbt/build/luajit becomes the
-- build under test, any other /opt/orbt the checkout, 127.0.0.1:8080 a free
-- port, the resolver the machine's nameserver, `user root;` is added when
-- run as root, and the ORBT_* variables of the spec's orbt-mock are in its
-- environment. A line nginx logs at warn or above fails the spec.
local harness = require("support.harness")
local shell = require("support.shell")

local PATH = "/api/partner/v1/customer"

-- ===== examples/logging.lua =====

describe("examples/logging.lua", function()
  -- Runs the example as its header says; returns stdout, stderr and the exit status.
  local function run_example()
    local dir = shell.tmpdir()
    local vars = {}
    for _, name in ipairs{ "ORBT_MOCK", "LUA_PATH", "LUA_CPATH" } do
      vars[#vars + 1] = name .. "=" .. shell.quote(os.getenv(name) or "")
    end
    local preload = os.getenv("ORBT_LUA_PRELOAD")
    if preload and preload ~= "" then
      vars[#vars + 1] = "LD_PRELOAD=" .. shell.quote(preload) .. " ASAN_OPTIONS=detect_leaks=0"
    end
    local status = shell.run(("env %s sh examples/run-with-mock.sh %s examples/logging.lua >%s/out 2>%s/err; echo $?")
      :format(table.concat(vars, " "), os.getenv("LUA") or "lua5.4", dir, dir))
    local out, err = shell.read_file(dir .. "/out") or "", shell.read_file(dir .. "/err") or ""
    shell.exec("rm -rf " .. shell.quote(dir))
    return out, err, tonumber(status)
  end

  it("logs one logfmt line per attempt, with the status or the error's kind, and the retries", function()
    local out, err, status = run_example()
    assert.equal(0, status, out .. err)
    local lines = {}
    for line in err:gmatch("[^\n]+") do
      local fields = {}
      local stamp, rest = line:match("^(%d%d%d%d%-%d%d%-%d%dT%d%d:%d%d:%d%dZ) orbt (.*)$")
      assert.is_truthy(stamp, "not a log line: " .. line)
      for key, value in rest:gmatch("([%w_]+)=(%S+)") do
        fields[key] = value
      end
      lines[#lines + 1] = fields
    end
    -- op, attempt, status or kind, reason, retry: one row per attempt.
    local expected = {
      { "list_customers", "1", "200", nil, nil, "false" },
      { "create_customer", "1", "200", nil, nil, "false" },
      { "create_customer", "1", "400", "api", "duplicate_customer", "false" },
      { "credit", "1", "200", nil, nil, "false" },
      { "list_customers", "1", nil, "network", nil, "true" },
      { "list_customers", "2", nil, "network", nil, "true" },
      { "list_customers", "3", nil, "network", nil, "false" },
    }
    assert.equal(#expected, #lines, err)
    local ids = {}
    for i, e in ipairs(expected) do
      local l = lines[i]
      assert.same(e, { l.op, l.attempt, l.status, l.kind, l.reason, l.retry }, "line " .. i)
      assert.matches("^%d+%.%d$", l.duration_ms)
      assert.equal(e[1] == "list_customers" and "GET" or "POST", l.method)
      assert.matches("^/api/partner/v1/", l.path)
      if l.status then
        -- Every answer of orbt-mock carries its own request id.
        assert.matches("^mock%-%x+$", l.request_id)
        assert.is_nil(ids[l.request_id], "a request id twice")
        ids[l.request_id] = true
      else
        assert.is_nil(l.request_id)
      end
      -- A delay is logged exactly when a retry follows.
      assert.equal(l.retry == "true", l.delay_ms ~= nil, "line " .. i)
    end
    assert.matches("create_customer again: orbt: 400 VALIDATION_ERROR: ", out, 1, true)
    assert.matches("\nlast call: credit, 1 attempt%(s%), status 200, request id mock%-%x+, [%d.]+ ms\n", out)
    assert.matches("list_customers at 127.0.0.1:9: orbt: network: ", out, 1, true)
  end)
end)

-- ===== examples/prometheus/ =====

-- Parses the exposition format: { [series] = value } and the HELP and TYPE
-- lines by metric name. Any other line fails.
local function parse_metrics(text)
  local series, help, types = {}, {}, {}
  for line in text:gmatch("[^\n]+") do
    local name, rest = line:match("^# HELP ([%w_]+) (.+)$")
    if name then
      help[name] = rest
    else
      name, rest = line:match("^# TYPE ([%w_]+) (%a+)$")
      if name then
        types[name] = rest
      else
        local key, value = line:match("^([%w_]+{[^}]*}) ([%d.]+)$")
        assert(key, "not a line of the Prometheus text format: " .. line)
        assert(series[key] == nil, "a series twice: " .. key)
        series[key] = tonumber(value)
      end
    end
  end
  return series, help, types
end

describe("examples/prometheus/ in nginx #nginx", function()
  local env = harness.with_mock{ client = false, lazy = true }
  local readme = require("support.readme")
  local nginx

  lazy_setup(function()
    local conf = assert(shell.read_file("examples/prometheus/nginx.conf"))
    nginx = assert(readme.start_nginx({ text = conf, file = "examples/prometheus/nginx.conf", line = 1,
      lang = "nginx" }, { ORBT_API_KEY = env.mock.api_key, ORBT_CLIENT_ID = env.mock.client_id,
      ORBT_SECRET = env.mock.secret, ORBT_BASE_URL = env.mock.url }))
  end)

  lazy_teardown(function()
    if nginx then
      local problem = nginx:finish()
      assert(problem == nil, problem)
    end
  end)

  -- One request to the example with the curl tool; returns status and body.
  local function curl(method, path)
    local out = shell.run(("curl -s --max-time 30 -X %s -w '\\n%%{http_code}' %s"):format(method,
      shell.quote(("http://127.0.0.1:%d%s"):format(nginx.port, path))))
    local body, status = out:match("^(.*)\n(%d+)$")
    return tonumber(status), body
  end

  it("counts every attempt by operation, status and kind, as orbt-mock saw them, and serves them at /metrics",
    function()
    local tag = tostring(os.time())
    local statuses = {}
    local function call(method, path)
      statuses[#statuses + 1] = (curl(method, path))
    end
    call("GET", "/customers")
    call("POST", "/customers?name=Ann+Lee&email=ann-" .. tag .. "%40example.com")
    call("POST", "/customers?name=Ann+Lee&email=ann-" .. tag .. "%40example.com") -- a second USD wallet: 400
    -- A 503, then the retry of the read (after a backoff of at most 0.25 s).
    env.mock:fault{ path = PATH, method = "GET", status = 503, count = 1 }
    call("GET", "/customers")
    -- A create that got a 503 may have been applied: orbt does not send it again.
    env.mock:fault{ path = PATH, method = "POST", status = 503, count = 1 }
    call("POST", "/customers?name=Bo+Ek&email=bo-" .. tag .. "%40example.com")
    call("GET", "/customers")
    assert.same({ 200, 201, 422, 200, 502, 200 }, statuses)

    local status, text = curl("GET", "/metrics")
    assert.equal(200, status, text)
    local series, help, types = parse_metrics(text)

    -- What orbt-mock received, by method and path.
    local got = {}
    for _, rq in ipairs(env.mock:requests(100)) do
      local key = rq.method .. " " .. rq.path
      got[key] = (got[key] or 0) + 1
    end
    local gets, posts = got["GET " .. PATH] or 0, got["POST " .. PATH] or 0
    assert.equal(4, gets)   -- three reads, one of them twice
    assert.equal(3, posts)
    assert.equal(gets + posts, env.mock:request_count())
    -- Of those, orbt-mock answered one GET and one POST with the injected
    -- 503s, and one POST (the second wallet) with 400.
    assert.same({
      ['orbt_requests_total{operation="list_customers",status="200"}'] = gets - 1,
      ['orbt_requests_total{operation="list_customers",status="503",kind="api"}'] = 1,
      ['orbt_requests_total{operation="create_customer",status="200"}'] = posts - 2,
      ['orbt_requests_total{operation="create_customer",status="400",kind="api"}'] = 1,
      ['orbt_requests_total{operation="create_customer",status="503",kind="api"}'] = 1,
      ['orbt_retries_total{operation="list_customers"}'] = 1,
      ['orbt_request_duration_seconds_count{operation="list_customers"}'] = gets,
      ['orbt_request_duration_seconds_count{operation="create_customer"}'] = posts,
      ['orbt_request_duration_seconds_sum{operation="list_customers"}'] =
        series['orbt_request_duration_seconds_sum{operation="list_customers"}'],
      ['orbt_request_duration_seconds_sum{operation="create_customer"}'] =
        series['orbt_request_duration_seconds_sum{operation="create_customer"}'],
    }, series)
    for _, op in ipairs{ "list_customers", "create_customer" } do
      local sum = series['orbt_request_duration_seconds_sum{operation="' .. op .. '"}']
      assert.is_true(sum > 0 and sum < 5, op .. ": " .. tostring(sum))
    end
    assert.same({ orbt_requests_total = "counter", orbt_retries_total = "counter",
      orbt_request_duration_seconds = "summary" }, types)
    for name in pairs(types) do
      assert.is_truthy(help[name], "no HELP for " .. name)
    end

    -- The counters only grow; another scrape is counted nowhere.
    local again = parse_metrics(select(2, curl("GET", "/metrics")))
    assert.same(series, again)
  end)
end)
