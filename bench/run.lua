-- run.lua: `make bench`. Measures orbt against the ways of doing the same
-- work without it, on the same machine in the same run, and prints one
-- markdown table (also written to BENCH_OUT, default build/bench/results.md).
--
-- The workload (bench/workload.lua): a signed GET of a 20-item page and a
-- signed POST create, one connection, sequential, every answer parsed and
-- checked. It is sent by
--   (a) a plain C loop on one reused libcurl handle with libcurl's default
--       options (bench/curl_loop.c),
--   (a') the same loop with CURLOPT_NOSIGNAL, which spares libcurl's
--       per-request signal handling: the fair C baseline,
--   (b) orbt (bench/client_orbt.lua),
--   (c) hand-written Lua on one kept-alive LuaSocket connection with luaossl
--       and lua-cjson (bench/client_socket.lua),
--   (d) LuaSocket's socket.http with luaossl and lua-cjson (bench/client_http.lua),
--   (e) the curl, openssl and jq command-line tools per request (bench/cli_client.sh),
--   (f) wrk -t1 -c1 with requests signed beforehand: the server's ceiling,
-- to nginx answering canned JSON (bench/nginx.conf.in) and to orbt-mock.
-- Over HTTPS, to the same nginx with a certificate from a CA made here with
-- the openssl tool and trusted through a CA file (verification on), it is sent by
--   (b) orbt with ca_file,
--   (g) LuaSec's ssl.https (a new connection, so a TLS handshake, per
--       request) with luaossl and lua-cjson (bench/client_http.lua),
--   (h) hand-written Lua on one kept-alive LuaSocket connection wrapped in
--       TLS by LuaSec (bench/client_socket.lua),
--   (i) the same with a new connection per request, as (g) but with
--       TCP_NODELAY and one TLS context: what a handshake per request costs
--       without ssl.https's stalls (see client_http.lua),
-- and nginx's access log of that server counts the TLS handshakes of each run.
-- Each run is its own process, so its peak RSS is its own. Every round runs
-- every alternative once, in a rotated order, so that drift of the machine
-- cancels in the ratios, which are taken within a round; the table shows
-- medians over the rounds. Then: signing alone (bench/sign.lua,
-- bench/sign_c.c), syscalls per request (perf trace or strace), the peak RSS of
-- walking 1,000 and 100,000 consumers with client:customers{size = 50},
-- bulk creates and credits, and nginx at scale: one nginx worker whose handler makes
-- one orbt call per request (cosockets) to an upstream that holds every
-- request 50 ms, with 1,000 handler requests in flight at once (wrk), beside
-- proxy_pass to the same upstream, the fair baseline (the same call written
-- by hand with orbt.sign, ngx.socket.tcp and lua-cjson,
-- bench/scale_baseline.lua) and orbt over TLS to the upstream's HTTPS port;
-- orbt's requests/s and p99 against the baseline's, new upstream connections
-- and TLS handshakes are checked against targets (bench/scale_nginx.lua,
-- bench/nginx_scale.conf.in, bench/nginx_upstream.conf.in). Hooks: what
-- empty on_request and on_response hooks cost in CPU per request against
-- no hooks, GET page of 20 to the canned nginx, in one process with the
-- clients taking turns (bench/hooks.lua); the target is at most 1.03x.
--
-- Settings from the environment:
--   BENCH_QUICK=1        a smoke run: one short round, a small walk
--   BENCH_ROUNDS         rounds (default 5)
--   BENCH_SECONDS        seconds per HTTP run (default 1; wrk takes whole seconds)
--   BENCH_CLI_COUNT      requests per run of (e) (default 15)
--   BENCH_SIGN_SECONDS   seconds per signing run (default 0.5)
--   BENCH_WALK           consumers in the large walk (default 100000)
--   BENCH_BULK           creates, and credits, in the bulk part (default 2000)
--   BENCH_SYSCALLS=0     skip counting syscalls
--   BENCH_SCALE_IN_FLIGHT
--                        nginx at scale: handler requests in flight at once
--                        (wrk connections; default 1000)
--   BENCH_SCALE_HOLD_MS  nginx at scale: how long the upstream holds every
--                        request (default 50)
--   BENCH_SCALE_SECONDS  nginx at scale: seconds of load per run (default 5)
--   BENCH_SCALE_ROUNDS   nginx at scale: rounds, each running every row once
--                        in a rotated order (default 3)
--   BENCH_HOOKS_ROUNDS   hooks: rounds (default 100)
--   BENCH_HOOKS_REQUESTS hooks: requests per client per round (default 200)
--   BENCH_PARTS          the parts to run, comma-separated (default: all of
--                        http,sign,syscalls,walk,bulk,scale,hooks); e.g.
--                        BENCH_PARTS=scale runs only nginx at scale
--   BENCH_OUT            where to write the table
--   BENCH_PARTS=cli      the orbt command's import against create_customers
--                        (bench/cli_import.lua; BENCH_CLI_ROWS, BENCH_CLI_DELAY_MS)

local socket = require("socket")
local orbt = require("orbt")
local WARMUP = require("workload").WARMUP

local floor, max = math.floor, math.max
local concat = table.concat

-- ===== Settings and paths =====

local QUICK = os.getenv("BENCH_QUICK") == "1"

local function setting(name, default)
  local value = tonumber(os.getenv(name) or "")
  return value or default
end

local S = {
  rounds = floor(setting("BENCH_ROUNDS", QUICK and 1 or 5)),
  seconds = setting("BENCH_SECONDS", QUICK and 0.3 or 1),
  cli_count = floor(setting("BENCH_CLI_COUNT", QUICK and 3 or 15)),
  sign_seconds = setting("BENCH_SIGN_SECONDS", QUICK and 0.2 or 0.5),
  walk_small = 1000,
  walk_large = floor(setting("BENCH_WALK", QUICK and 10000 or 100000)),
  bulk_count = floor(setting("BENCH_BULK", QUICK and 200 or 2000)),
  bulk_delay_ms = 20,
  bulk_concurrency = 16,
  syscalls = os.getenv("BENCH_SYSCALLS") ~= "0",
  parts = {},
  trace_counts = { 100, 2100 },    -- syscalls: the difference of the two runs is per request
  -- nginx at scale: handler requests in flight at once (wrk connections),
  -- how long the upstream holds each request, seconds of load per run.
  scale_in_flight = floor(setting("BENCH_SCALE_IN_FLIGHT", 1000)),
  scale_hold_ms = setting("BENCH_SCALE_HOLD_MS", 50),
  scale_seconds = max(1, floor(setting("BENCH_SCALE_SECONDS", QUICK and 2 or 5) + 0.5)),
  scale_rounds = max(1, floor(setting("BENCH_SCALE_ROUNDS", QUICK and 1 or 3))),
  scale_threads = 2,               -- wrk threads
  scale_min_peak = 0.9,            -- the upstream's peak in flight must reach this share of scale_in_flight
  -- Targets against the fair baseline (the hand-written cosocket handler):
  scale_min_rate_ratio = 0.85,     -- orbt's requests/s at least this share of the baseline's
  scale_max_p99_ratio = 1.5,       -- orbt's p99 at most this multiple of the baseline's
  scale_max_tls_p99_ratio = 2,     -- orbt over TLS: p99 at most this multiple of orbt's over HTTP
  -- hooks: rounds, and requests per client in each round.
  hooks_rounds = max(1, floor(setting("BENCH_HOOKS_ROUNDS", QUICK and 10 or 100))),
  hooks_requests = max(5, floor(setting("BENCH_HOOKS_REQUESTS", QUICK and 50 or 200))),
  hooks_max_ratio = 1.03,          -- target: hooks that do nothing cost at most 3% CPU per request
}
S.wrk_seconds = max(1, floor(S.seconds + 0.5))

local PART_NAMES = { "http", "sign", "syscalls", "walk", "bulk", "scale", "hooks", "cli" }
do
  local known = {}
  for _, name in ipairs(PART_NAMES) do known[name] = true end
  local list = os.getenv("BENCH_PARTS") or concat(PART_NAMES, ",")
  for name in list:gmatch("[^,%s]+") do
    if not known[name] then
      io.stderr:write("bench: unknown part '", name, "' in BENCH_PARTS; known: ", concat(PART_NAMES, ","), "\n")
      os.exit(2)
    end
    S.parts[name] = true
  end
  S.syscalls = S.syscalls and S.parts.syscalls == true
end
local PARTS = S.parts

local BENCH = arg[0]:match("^(.*)/[^/]+$") or "."
local BUILD = os.getenv("ORBT_BUILD") or "build/lua5.4"
-- The LuaJIT build of orbt and its pure-Lua layer, for nginx at scale.
local NGINX_BUILD = os.getenv("ORBT_NGINX_BUILD") or "build/luajit"
local LUA_DIR = os.getenv("ORBT_LUA_DIR") or "lua"
local MOCK = os.getenv("ORBT_MOCK") or "build/orbt-mock"
local BIN = os.getenv("BENCH_BIN") or (BUILD .. "/bench")
local OUT = os.getenv("BENCH_OUT") or (BIN .. "/results.md")
local LUA = os.getenv("LUA") or "lua5.4"

local PATH = "/api/partner/v1/customer"
local LIST_TARGET = PATH .. "?page=0&size=20"

-- ===== Shell =====

local function quote(s)
  return "'" .. tostring(s):gsub("'", "'\\''") .. "'"
end

local function sh(cmd)
  local pipe = assert(io.popen(cmd, "r"))
  local out = pipe:read("a")
  local ok = pipe:close()
  return out, ok == true
end

local function read_file(path)
  local f = io.open(path, "rb")
  if not f then return nil end
  local data = f:read("a")
  f:close()
  return data
end

local function write_file(path, data)
  local f = assert(io.open(path, "wb"))
  assert(f:write(data))
  f:close()
end

local function progress(...)
  io.stderr:write("bench: ", concat({ ... }), "\n")
  io.stderr:flush()
end

local function is_2xx(status)
  return type(status) == "number" and status >= 200 and status <= 299
end

local function command_exists(name)
  local _, ok = sh("command -v " .. quote(name) .. " >/dev/null 2>&1")
  return ok
end

local TMP = (sh("mktemp -d"):gsub("%s+$", ""))

-- Throwaway credentials. Clients read them from an environment file, not
-- from their command line, where `ps` would show them.
local CREDS = {
  api_key = "bench-api-key",
  client_id = "3f1c2a9e-8b7d-4e6f-9a01-23456789abcd",
  secret = "bench-secret-" .. sh("od -An -N12 -tx1 /dev/urandom"):gsub("%s", ""),
}
local ENV_FILE = TMP .. "/env"
write_file(ENV_FILE, ("export ORBT_API_KEY=%s ORBT_CLIENT_ID=%s ORBT_SECRET=%s ORBT_MOCK_SECRET=%s\n")
  :format(quote(CREDS.api_key), quote(CREDS.client_id), quote(CREDS.secret), quote(CREDS.secret)))
os.execute("chmod 600 " .. quote(ENV_FILE))

local function with_env(cmd)
  return ". " .. quote(ENV_FILE) .. "; " .. cmd
end

-- ===== Servers =====

local started_pids = {}

-- Starts cmd in the background; returns its pid.
local function background(cmd, name)
  local out = sh(with_env(("%s >%s 2>%s & echo $!"):format(cmd, quote(TMP .. "/" .. name .. ".out"),
    quote(TMP .. "/" .. name .. ".log"))))
  local pid = assert(tonumber(out), "could not start " .. name)
  started_pids[pid] = name
  return pid
end

local function alive(pid)
  local _, ok = sh("kill -0 " .. pid .. " 2>/dev/null")
  return ok
end

local function stop(pid)
  if not started_pids[pid] then return end
  started_pids[pid] = nil
  os.execute("kill -TERM " .. pid .. " 2>/dev/null")
  for _ = 1, 200 do
    if not alive(pid) then return end
    socket.sleep(0.05)
  end
  os.execute("kill -KILL " .. pid .. " 2>/dev/null")
end

local function wait_for(what, check)
  for _ = 1, 200 do
    local value = check()
    if value then return value end
    socket.sleep(0.05)
  end
  error(type(what) == "function" and what() or what)
end

local function start_mock(name)
  local pid = background(("%s --port 0 --quiet --lifetime 3600 --api-key %s --client-id %s --balance 1000000000.00")
    :format(quote(MOCK), quote(CREDS.api_key), quote(CREDS.client_id)), name)
  local url = wait_for("orbt-mock did not start: " .. tostring(read_file(TMP .. "/" .. name .. ".log")), function()
    return (read_file(TMP .. "/" .. name .. ".out") or ""):match("listening on (http://[%d.:]+)")
  end)
  return { name = "orbt-mock", pid = pid, url = url }
end

local function free_port()
  local s = assert(socket.bind("127.0.0.1", 0))
  local _, port = s:getsockname()
  s:close()
  return tonumber(port)
end

local function accepts(port)
  local c = socket.tcp()
  c:settimeout(0.2)
  local ok = c:connect("127.0.0.1", port)
  c:close()
  return ok
end

-- Starts nginx with two servers: plain HTTP, and HTTPS (see nginx.conf.in),
-- answering with orbt-mock's statuses and bytes (canned).
local function start_nginx(canned)
  for _, text in ipairs{ canned.page, canned.created } do
    assert(not text:find("[\\'$]"), "a canned answer holds a character nginx would interpret")
  end
  local dir = TMP .. "/nginx"
  os.execute("mkdir -p " .. quote(dir))
  -- A CA and a server certificate it signed, as the specs make them.
  require("support.certs").make(dir)
  local port, tls_port = free_port(), free_port()
  while tls_port == port do tls_port = free_port() end
  local user = sh("id -u"):match("^0%s") and "user root;" or ""
  local conf = read_file(BENCH .. "/nginx.conf.in")
  local fields = { USER = user, DIR = dir, PORT = tostring(port), TLS_PORT = tostring(tls_port),
    PAGE = canned.page, PAGE_STATUS = tostring(canned.page_status), CREATED = canned.created,
    CREATED_STATUS = tostring(canned.created_status) }
  conf = conf:gsub("@([%u_]+)@", function(key) return assert(fields[key], key) end)
  write_file(dir .. "/nginx.conf", conf)
  local nginx = command_exists("nginx") and "nginx" or "/usr/sbin/nginx"
  local pid = background(("%s -p %s -c %s -e %s"):format(nginx, quote(dir), quote(dir .. "/nginx.conf"),
    quote(dir .. "/error.log")), "nginx")
  wait_for(function()
    return "nginx did not start: " .. (read_file(TMP .. "/nginx.log") or "") .. (read_file(dir .. "/error.log") or "")
  end, function()
    return accepts(port) and accepts(tls_port)
  end)
  -- The TLS server's name goes into tags, hence into emails: no spaces.
  return { name = "nginx", pid = pid, url = "http://127.0.0.1:" .. port },
    { name = "nginx-tls", label = "nginx HTTPS", pid = pid, url = "https://127.0.0.1:" .. tls_port, tls = true,
      exports = "export BENCH_CA_FILE=" .. quote(dir .. "/ca.pem") .. ";", access_log = dir .. "/tls-access.log" }
end

-- ===== Requests made by the harness itself =====

local function sign(method, body, timestamp)
  return orbt.sign{ method = method, body = body, client_id = CREDS.client_id, api_key = CREDS.api_key,
    secret = CREDS.secret, timestamp = timestamp }
end

local function create_body(tag, i)
  return '{"fullName":"Bench Consumer","email":"' .. tag .. "-" .. i
    .. '@bench.example","currency":"USD","initialFunds":1}'
end

-- One signed exchange through the curl tool; returns status and raw body.
local function raw_request(url, method, target, body)
  local args = { "curl -sS --max-time 10 -o", quote(TMP .. "/raw"), "-w '%{http_code}' -X", method,
    "-H 'Accept: application/json'" }
  for name, value in pairs(sign(method, body)) do
    args[#args + 1] = "-H " .. quote(name .. ": " .. value)
  end
  if body ~= "" then
    args[#args + 1] = "-H 'Content-Type: application/json' --data-binary " .. quote(body)
  end
  args[#args + 1] = quote(url .. target)
  local status = sh(concat(args, " "))
  return tonumber(status), read_file(TMP .. "/raw")
end

local function seed(url, from, to, tag)
  local client = assert(orbt.new{ api_key = CREDS.api_key, client_id = CREDS.client_id, secret = CREDS.secret,
    base_url = url, timeout = 10 })
  for i = from, to do
    local customer, err = client:create_customer{ fullName = "Bench Consumer " .. i,
      email = tag .. "-" .. i .. "@bench.example", currency = "USD", initialFunds = 1 }
    if not customer then error("seeding orbt-mock: " .. tostring(err)) end
  end
  client:close()
end

-- ===== One measured run =====

-- Runs cmd under /usr/bin/time, which gives the peak RSS (KiB) and the CPU
-- seconds of the whole run, start-up included.
local function timed(cmd, exports)
  local out, err, usage = TMP .. "/run.out", TMP .. "/run.err", TMP .. "/run.usage"
  os.remove(out)
  os.remove(usage)
  os.execute(with_env(("%s exec /usr/bin/time -f '%%M %%U %%S' -o %s %s >%s 2>%s"):format(exports or "",
    quote(usage), cmd, quote(out), quote(err))))
  local kib, user, sys = (read_file(usage) or ""):match("(%d+) ([%d.]+) ([%d.]+)%s*$")
  return read_file(out) or "", read_file(err) or "", tonumber(kib), (tonumber(user) or 0) + (tonumber(sys) or 0)
end

-- Runs a client; returns {rate, cpu (seconds per request), rss (KiB), out}
-- or {failed = why}. The rate is requests per wall-clock second of the
-- measured part. The CPU time is the client's own for that part when it
-- reports one (a to d), else that of its whole run (e: every process it
-- started), over the requests it made.
local function measure(cmd, exports)
  local text, stderr, kib, cpu_total = timed(cmd, exports)
  local n, seconds = text:match("^ok requests=(%d+) seconds=([%d.]+)")
  if not n then
    local why = text:match("^fail ([^\n]*)") or "no result"
    stderr = stderr:sub(-300):gsub("%s+", " ")
    return { failed = why .. (stderr ~= "" and (" (stderr: " .. stderr .. ")") or "") }
  end
  n = tonumber(n)
  local cpu = tonumber(text:match(" cpu=([%d.]+)")) or cpu_total
  return { rate = n / tonumber(seconds), cpu = cpu / n, cpu_seconds = cpu, n = n, rss = kib, out = text }
end

-- wrk's file of pre-signed requests (see bench/wrk.lua), signed now.
local function wrk_requests(workload, tag)
  local lines = {}
  if workload == "get" then
    local h = sign("GET", "")
    lines[1] = concat({ "GET", LIST_TARGET, h["x-timestamp"], h["x-body-hash"], h["x-signature"], "" }, "\t")
  else
    -- More than wrk can send in its run, so that every email is new.
    for i = 1, S.wrk_seconds * 40000 do
      local body = create_body(tag, i)
      local h = sign("POST", body)
      lines[i] = concat({ "POST", PATH, h["x-timestamp"], h["x-body-hash"], h["x-signature"], body }, "\t")
    end
  end
  local path = TMP .. "/wrk-requests"
  write_file(path, concat(lines, "\n") .. "\n")
  return path
end

local function run_wrk(server, workload, tag)
  local requests = wrk_requests(workload, tag)
  local text, stderr, kib, cpu = timed(("wrk -t1 -c1 -d%ds -s %s %s"):format(S.wrk_seconds,
    quote(BENCH .. "/wrk.lua"), quote(server.url)), "export BENCH_WRK_REQUESTS=" .. quote(requests) .. ";")
  os.remove(requests)
  local rate = tonumber(text:match("Requests/sec:%s*([%d.]+)"))
  local n = tonumber(text:match("(%d+) requests in"))
  if not rate or not n or n == 0 then
    return { failed = "wrk: " .. (text .. stderr):sub(-300):gsub("%s+", " ") }
  end
  local bad = text:match("Non%-2xx or 3xx responses: (%d+)") or text:match("Socket errors: ([^\n]+)")
  if bad then
    return { failed = "wrk saw failures: " .. bad }
  end
  return { rate = rate, cpu = cpu / n, rss = kib, out = text }
end

-- ===== TLS handshakes, from nginx's access log =====

local function file_size(path)
  local f = io.open(path, "rb")
  if not f then return 0 end
  local size = f:seek("end")
  f:close()
  return size
end

-- A tally of TLS requests from an access log: each request on a new
-- connection ($connection_requests = 1) began with a TLS handshake, and
-- $ssl_session_reused = "r" says that it resumed a session.
local function tls_tally()
  return { requests = 0, handshakes = 0, resumed = 0, protocol_set = {} }
end

local function tls_count(t, nth, reused, protocol)
  t.requests = t.requests + 1
  if nth == "1" then
    t.handshakes = t.handshakes + 1
    if reused == "r" then t.resumed = t.resumed + 1 end
  end
  t.protocol_set[protocol] = true
end

-- The tally, with the protocols seen as one sorted list.
local function tls_total(t)
  local list = {}
  for protocol in pairs(t.protocol_set) do list[#list + 1] = protocol end
  table.sort(list)
  t.protocols, t.protocol_set = concat(list, ", "), nil
  return t
end

-- The requests the TLS server logged from byte `from` of its access log on
-- (one run's), once there are `expected` of them: nginx writes a request's
-- line after answering it, so the last line can lag the client's exit.
-- Returns {requests, connections, handshakes, resumed, protocols} or nil, why.
-- Each new connection ($connection_requests = 1) began with a TLS
-- handshake; $ssl_session_reused = "r" says that it resumed a session.
local function tls_log_since(path, from, expected)
  local lines
  for _ = 1, 100 do
    local f = io.open(path, "rb")
    local text = ""
    if f then
      f:seek("set", from)
      text = f:read("a")
      f:close()
    end
    lines = {}
    for l in text:gmatch("[^\n]+") do lines[#lines + 1] = l end
    if #lines >= expected then break end
    socket.sleep(0.02)
  end
  local seen = {}
  local t = tls_tally()
  t.connections = 0
  for _, l in ipairs(lines) do
    local connection, nth, reused, protocol, status = l:match("^(%d+) (%d+) (%S+) (%S+) (%d+)$")
    if not connection then return nil, "unreadable access log line: " .. l end
    if protocol == "-" then return nil, "a request without TLS in the TLS server's log" end
    if not status:match("^2%d%d$") then return nil, "nginx logged status " .. status end
    if not seen[connection] then
      seen[connection] = true
      t.connections = t.connections + 1
    end
    tls_count(t, nth, reused, protocol)
  end
  return tls_total(t)
end

-- Adds the run's TLS handshakes (r.tls) to a client's result; the log must
-- hold every request the client made, warm-up included, and no other.
local function count_handshakes(r, server, from)
  if r.failed then return r end
  local expected = r.n + WARMUP
  local t, why = tls_log_since(server.access_log, from, expected)
  if not t then return { failed = why } end
  if t.requests ~= expected then
    return { failed = ("nginx logged %d TLS requests; the client made %d"):format(t.requests, expected) }
  end
  r.tls = t
  return r
end

-- ===== The alternatives =====

local function lua_client(script, exports)
  return function(server, workload, tag)
    local from = server.access_log and file_size(server.access_log)
    local r = measure(("%s %s %s %s %gs %s"):format(LUA, quote(BENCH .. "/" .. script), quote(server.url), workload,
      S.seconds, tag), (server.exports or "") .. (exports or ""))
    return from and count_handshakes(r, server, from) or r
  end
end

local function c_loop(options)
  return function(server, workload, tag)
    return measure(("%s%s %s %s %gs %s"):format(quote(BIN .. "/curl_loop"), options, quote(server.url), workload,
      S.seconds, tag))
  end
end

-- Keys name the alternatives in the table; tag (in emails) is the key in
-- letters and digits.
local ALTERNATIVES = {
  { key = "a", label = "(a) C: libcurl, reused handle", run = c_loop("") },
  { key = "a'", tag = "a1", label = "(a') C: libcurl, reused handle, CURLOPT_NOSIGNAL", run = c_loop(" --nosignal") },
  { key = "b", label = "(b) orbt", run = lua_client("client_orbt.lua") },
  { key = "c", label = "(c) Lua: LuaSocket keep-alive + luaossl + lua-cjson", run = lua_client("client_socket.lua") },
  { key = "d", label = "(d) Lua: socket.http + luaossl + lua-cjson", run = lua_client("client_http.lua") },
  { key = "e", label = "(e) curl + openssl + jq tools per request", run = function(server, workload, tag)
    return measure(("sh %s %s %s %d %s"):format(quote(BENCH .. "/cli_client.sh"), quote(server.url), workload,
      S.cli_count, tag))
  end },
  { key = "f", label = "(f) wrk -t1 -c1, pre-signed", run = run_wrk },
}

local function alternative(key)
  for _, alt in ipairs(ALTERNATIVES) do
    if alt.key == key then return alt end
  end
  error("no alternative " .. key)
end
local REFERENCE = alternative("f")
local ORBT, HAND_WRITTEN, C_FAIR = alternative("b"), alternative("c"), alternative("a'")

-- Over HTTPS; ratios are to (g), the usual way to write HTTPS in Lua.
local TLS_ALTERNATIVES = {
  { key = "b", label = "(b) orbt, ca_file", run = lua_client("client_orbt.lua") },
  { key = "g", label = "(g) Lua: ssl.https (LuaSec) + luaossl + lua-cjson", run = lua_client("client_http.lua") },
  { key = "h", label = "(h) Lua: LuaSocket + LuaSec keep-alive + luaossl + lua-cjson",
    run = lua_client("client_socket.lua") },
  { key = "i", label = "(i) Lua: LuaSocket + LuaSec, new connection per request, TCP_NODELAY",
    run = lua_client("client_socket.lua", "export BENCH_RECONNECT=1;") },
}
local TLS_REFERENCE = TLS_ALTERNATIVES[2]

local WORKLOADS = {
  { key = "get", label = "GET page of 20" },
  { key = "post", label = "POST create" },
}

local SIGNERS = {
  { key = "orbt", label = "orbt.sign (Lua)", cmd = function(body, ts)
    return ("%s %s orbt %s %g %s"):format(LUA, quote(BENCH .. "/sign.lua"), body, S.sign_seconds, ts)
  end },
  { key = "luaossl", label = "Lua: luaossl + mime.b64", cmd = function(body, ts)
    return ("%s %s luaossl %s %g %s"):format(LUA, quote(BENCH .. "/sign.lua"), body, S.sign_seconds, ts)
  end },
  { key = "oneshot", label = "C: one-shot HMAC()", cmd = function(body, ts)
    return ("%s oneshot %s %g %s"):format(quote(BIN .. "/sign_c"), body, S.sign_seconds, ts)
  end },
  { key = "pads", label = "C: HMAC pads once per key", cmd = function(body, ts)
    return ("%s pads %s %g %s"):format(quote(BIN .. "/sign_c"), body, S.sign_seconds, ts)
  end },
}

-- ===== Statistics and formatting =====

local function median(values)
  local v = {}
  for i, x in ipairs(values) do v[i] = x end
  table.sort(v)
  local n = #v
  if n == 0 then return nil end
  if n % 2 == 1 then return v[(n + 1) // 2] end
  return (v[n // 2] + v[n // 2 + 1]) / 2
end

local function thousands(x)
  local s = ("%d"):format(floor(x + 0.5))
  local out = s:reverse():gsub("(%d%d%d)", "%1,"):reverse()
  return (out:gsub("^,", ""))
end

local function rate_text(x)
  if x >= 100 then return thousands(x) end
  return ("%.1f"):format(x)
end

local function spread(rates)
  local lo, hi = math.huge, 0
  for _, r in ipairs(rates) do
    lo, hi = math.min(lo, r), math.max(hi, r)
  end
  return rate_text(lo) .. "–" .. rate_text(hi)
end

local function mib(kib)
  return kib and ("%.1f MiB"):format(kib / 1024) or "?"
end

local function ratio_text(x, reference)
  if not x then return "—" end
  local digits = x < 0.01 and "%.4f" or (x < 0.1 and "%.3f" or (x < 10 and "%.2f" or "%.0f"))
  return (digits .. "× %s"):format(x, reference)
end

-- results[id] = { rates = {round = rate}, rss = peak, failed = why }
local results = {}

local function record(id, round, r)
  local entry = results[id] or { rates = {}, cpus = {} }
  results[id] = entry
  if r.failed then
    entry.failed = entry.failed or r.failed
    progress("  FAILED ", id, ": ", r.failed)
    return
  end
  entry.rates[round] = r.rate
  entry.cpus[round] = r.cpu
  if r.tls then
    entry.tls = entry.tls or {}
    entry.tls[round] = r.tls
  end
  if r.rss and (not entry.rss or r.rss > entry.rss) then entry.rss = r.rss end
end

local function cpu_of(id)
  local list = {}
  for _, cpu in pairs((results[id] or {}).cpus or {}) do list[#list + 1] = cpu end
  return median(list)
end

local function rates_of(id)
  local list = {}
  for _, rate in pairs((results[id] or {}).rates or {}) do list[#list + 1] = rate end
  return list
end

-- Median over the rounds of rate(id) / rate(reference) within each round
-- (field "rates"), or of their CPU times per request (field "cpus").
local function ratio(id, reference, field)
  field = field or "rates"
  local a, b = results[id], results[reference]
  if not a or not b or a.failed or b.failed then return nil end
  local list = {}
  for round, x in pairs(a[field]) do
    if b[field][round] then list[#list + 1] = x / b[field][round] end
  end
  return median(list)
end

local function cpu_ratio(id, reference)
  return ratio(id, reference, "cpus")
end

-- ===== The parts =====

local function http_id(server, workload, alt)
  return server.name .. "|" .. workload.key .. "|" .. alt.key
end

local function alternatives_of(server)
  if server.tls then return TLS_ALTERNATIVES, TLS_REFERENCE end
  return ALTERNATIVES, REFERENCE
end

local function run_http_round(servers, round)
  for _, server in ipairs(servers) do
    local alternatives = alternatives_of(server)
    local n = #alternatives
    for _, workload in ipairs(WORKLOADS) do
      for k = 0, n - 1 do
        local alt = alternatives[(k + round - 1) % n + 1]
        local tag = ("%s-r%d-%s"):format(alt.tag or alt.key, round, server.name)
        local r = alt.run(server, workload.key, tag)
        record(http_id(server, workload, alt), round, r)
        if r.rate then
          progress(("round %d/%d  %-9s %-4s %-52s %10s/s%s"):format(round, S.rounds, server.name,
            workload.key:upper(), alt.label, rate_text(r.rate),
            r.tls and ("  %d TLS handshake(s)"):format(r.tls.handshakes) or ""))
        end
      end
    end
  end
end

local SIGN_TIMESTAMP = "2026-11-26T10:00:00.000Z"

local function run_sign_round(round)
  local n = #SIGNERS
  for _, workload in ipairs(WORKLOADS) do
    local body = workload.key == "get" and ""
      or '{"fullName":"Bench Consumer","email":"sign@bench.example","currency":"USD","initialFunds":1}'
    local expected = sign(workload.key:upper(), body, SIGN_TIMESTAMP)["x-signature"]
    for k = 0, n - 1 do
      local signer = SIGNERS[(k + round - 1) % n + 1]
      local r = measure(signer.cmd(workload.key, SIGN_TIMESTAMP))
      if r.out and r.out:match("signature=(%S+)") ~= expected then
        r = { failed = "its signature differs from orbt.sign's" }
      elseif r.cpu_seconds and r.cpu_seconds > 0 then
        -- Pure computation in one thread: per second of its own CPU time,
        -- so that other load on the machine does not count against it.
        r.rate = r.n / r.cpu_seconds
      end
      record("sign|" .. workload.key .. "|" .. signer.key, round, r)
      if r.rate then
        progress(("round %d/%d  signing   %-4s %-52s %10s/s"):format(round, S.rounds, workload.key:upper(),
          signer.label, rate_text(r.rate)))
      end
    end
  end
end

-- Syscalls counted by `perf trace -s` (tracepoints: it barely slows the
-- client, so whether a read finds the answer already there is as in the
-- timed runs) or, where perf cannot trace, `strace -f -c` (which slows the
-- client a lot, so reads find their data more often than they would).
-- Both count every thread. Returns calls and failed calls by name.
local TRACERS = {
  { name = "perf trace -s", probe = "perf trace -s -o /dev/null -- true", command = function(file, cmd)
    return ("perf trace -s -o %s -- %s"):format(quote(file), cmd)
  end, parse = function(line)
    local name, calls, errors = line:match("^%s+([%w_]+)%s+(%d+)%s+(%d+)%s+[%d.]+%s")
    return name, tonumber(calls), tonumber(errors)
  end },
  { name = "strace -f -c", probe = "strace -f -o /dev/null true", command = function(file, cmd)
    return ("strace -f -c -o %s %s"):format(quote(file), cmd)
  end, parse = function(line)
    local fields = {}
    for field in line:gmatch("%S+") do fields[#fields + 1] = field end
    local name = fields[#fields]
    if (#fields == 5 or #fields == 6) and tonumber(fields[1]) and tonumber(fields[4]) and name ~= "total" then
      return name, tonumber(fields[4]), tonumber(#fields == 6 and fields[5] or 0)
    end
  end },
}

local function syscall_counts(tracer, cmd)
  local file, run = TMP .. "/trace", TMP .. "/trace.run"
  os.remove(file)
  os.execute(with_env(("%s >%s 2>&1"):format(tracer.command(file, cmd), quote(run))))
  local text = read_file(run) or ""
  if not text:match("^ok ") then return nil, text:sub(1, 200) end
  local calls, errors = {}, {}
  for line in (read_file(file) or ""):gmatch("[^\n]+") do
    local name, n, failed = tracer.parse(line)
    if name and n then
      calls[name] = (calls[name] or 0) + n
      errors[name] = (errors[name] or 0) + (failed or 0)
    end
  end
  return { calls = calls, errors = errors }
end

-- The alternatives whose syscalls are counted, and how to run each for a count.
local SYSCALL_CLIENTS = {
  { key = "a", program = function() return quote(BIN .. "/curl_loop") end },
  { key = "a'", tag = "a1", program = function() return quote(BIN .. "/curl_loop") .. " --nosignal" end },
  { key = "b", program = function() return LUA .. " " .. quote(BENCH .. "/client_orbt.lua") end },
  { key = "c", program = function() return LUA .. " " .. quote(BENCH .. "/client_socket.lua") end },
}

-- Two runs of different length per client; the difference is what the
-- extra requests cost, without start-up and warm-up.
local function run_syscalls(server)
  if not S.syscalls then return nil end
  local tracer
  for _, t in ipairs(TRACERS) do
    local _, ok = sh(t.probe .. " >/dev/null 2>&1")
    if ok then
      tracer = t
      break
    end
  end
  if not tracer then
    progress("neither perf nor strace can trace here; skipping syscalls per request")
    return nil
  end
  local short, long = S.trace_counts[1], S.trace_counts[2]
  local columns = { tracer = tracer.name }
  for _, workload in ipairs(WORKLOADS) do
    for _, client in ipairs(SYSCALL_CLIENTS) do
      local function cmd(count, tag)
        return ("%s %s %s %d %s"):format(client.program(), quote(server.url), workload.key, count, tag)
      end
      local c1, why1 = syscall_counts(tracer, cmd(short, "trace-short-" .. (client.tag or client.key)))
      local c2, why2 = syscall_counts(tracer, cmd(long, "trace-long-" .. (client.tag or client.key)))
      local column = { key = client.key, workload = workload, per = {} }
      if c1 and c2 then
        for name, n in pairs(c2.calls) do
          column.per[name] = (n - (c1.calls[name] or 0)) / (long - short)
          local failed = (c2.errors[name] or 0) - (c1.errors[name] or 0)
          if failed > 0 then
            column.per[name .. " (failed)"] = failed / (long - short)
          end
        end
      else
        column.failed = why1 or why2
      end
      columns[#columns + 1] = column
      progress(("syscalls  %s (%s): %s"):format(workload.key:upper(), client.key, column.failed or "counted"))
    end
  end
  return columns
end

local function run_walk()
  local mock = start_mock("walk-mock")
  local rows = {}
  local seeded = 0
  for _, count in ipairs{ S.walk_small, S.walk_large } do
    progress(("walking: seeding orbt-mock up to %s consumers"):format(thousands(count)))
    seed(mock.url, seeded + 1, count, "walk")
    seeded = count
    local r = measure(("%s %s %s %d"):format(LUA, quote(BENCH .. "/walk.lua"), quote(mock.url), count))
    rows[#rows + 1] = { count = count, result = r }
    if r.failed then
      progress("  FAILED walk ", count, ": ", r.failed)
    else
      progress(("walked %s consumers: peak RSS %s"):format(thousands(count), mib(r.rss)))
    end
  end
  stop(mock.pid)
  return rows
end

-- Creates, then credits, with orbt-mock delaying each by 20 ms: one after
-- the other, then the bulk method at concurrency 16, each on a fresh mock.
local function run_bulk()
  local rows = {}
  for _, kind in ipairs{ "creates", "credits" } do
    for _, concurrency in ipairs{ 0, S.bulk_concurrency } do
      local mock = start_mock("bulk-mock")
      local r = measure(("%s %s %s %d %d %d %s %s"):format(LUA, quote(BENCH .. "/bulk.lua"), quote(mock.url),
        S.bulk_count, concurrency, S.bulk_delay_ms, kind .. concurrency, kind))
      stop(mock.pid)
      rows[#rows + 1] = { kind = kind, concurrency = concurrency, result = r }
      progress(("bulk: %d %s at concurrency %d: %s"):format(S.bulk_count, kind, concurrency,
        r.failed and ("FAILED " .. r.failed) or (rate_text(r.rate) .. " " .. kind .. "/s")))
    end
  end
  return rows
end

-- The bulk rows of one kind: {sequential, bulk}.
local function bulk_pair(bulk, kind)
  local pair = {}
  for _, b in ipairs(bulk) do
    if b.kind == kind then
      pair[b.concurrency == 0 and 1 or 2] = b.result
    end
  end
  return pair
end

-- ===== nginx at scale =====

-- Two nginx processes, one worker each (bench/nginx_scale.conf.in,
-- bench/nginx_upstream.conf.in): the front serves /proxy, proxy_pass to the
-- upstream; /baseline, the fair baseline, the same call written by hand
-- with orbt.sign, ngx.socket.tcp and lua-cjson (bench/scale_baseline.lua);
-- /orbt, where every request makes one orbt call through cosockets; and
-- /orbt_tls, the same over TLS to the upstream's HTTPS port. The upstream
-- holds every request scale_hold_ms, counts the requests in flight and the
-- connections it accepted, and logs its HTTPS requests, whose
-- $connection_requests and $ssl_session_reused count the TLS handshakes.
-- wrk keeps scale_in_flight requests in flight at the front for
-- scale_seconds. Each alternative gets a fresh pair, so that the front
-- worker's RSS before the load is its own. The report sets orbt against the
-- fair baseline (scale_targets).

local function absolute(path)
  if path:sub(1, 1) == "/" then return path end
  return (sh("pwd"):gsub("%s+$", "")) .. "/" .. path
end

-- orbt's keep-alive pool per worker: its pool_size option, sized to the
-- requests in flight, as docs/nginx.md says to size it.
local function orbt_pool_size()
  return S.scale_in_flight
end

-- orbt's pool_backlog option: none (nil), orbt's default. With none, a call
-- that finds pool_size connections busy opens one more, and the pool keeps
-- pool_size of them once their answers are in.
local function orbt_pool_backlog()
  return nil
end

-- The rows, in this order: nginx's ceiling, the fair baseline, orbt, orbt
-- over TLS. The fair baseline's pool is sized like orbt's.
local function scale_alternatives()
  local pool = orbt_pool_size()
  local list = {
    { key = "proxy", label = ("nginx proxy_pass, upstream keepalive %s"):format(thousands(S.scale_in_flight)),
      path = "/proxy", keepalive = S.scale_in_flight },
  }
  if pool and pool < S.scale_in_flight then
    list[#list + 1] = { key = "proxy-pool", label = ("nginx proxy_pass, upstream keepalive %d (orbt's pool)")
      :format(pool), path = "/proxy", keepalive = pool }
  end
  list[#list + 1] = { key = "baseline", label = ("fair baseline: hand-written cosocket handler (orbt.sign, "
    .. "ngx.socket.tcp pool_size %s, lua-cjson)"):format(thousands(pool)), short = "fair baseline",
    path = "/baseline", keepalive = 1, baseline = true }
  list[#list + 1] = { key = "b", label = "(b) orbt: list_customers{size = 20} per request, cosockets",
    short = "(b) orbt", path = "/orbt", keepalive = 1, checked = true }
  list[#list + 1] = { key = "b-tls", label = "(b) orbt over TLS: the same to the upstream's HTTPS port",
    short = "(b) orbt over TLS", path = "/orbt_tls", keepalive = 1, checked = true, tls = true }
  return list
end

-- A CA and a server certificate it signed for 127.0.0.1, made once for the
-- part with the openssl tool: RSA 2048, as a user's server would have. Not
-- spec/support/certs.lua's: nginx's cosockets check the peer's name given to
-- sslhandshake, here "127.0.0.1", against the certificate's DNS names only,
-- so the name is a DNS entry too, beside the IP one.
-- Returns the paths (ca, cert, key), or nil and why not.
local function scale_certs()
  local dir = TMP .. "/scale-ca"
  os.execute("mkdir -p " .. quote(dir))
  local function file(name) return quote(dir .. "/" .. name) end
  local steps = {
    ("openssl req -x509 -newkey rsa:2048 -nodes -days 2 -subj /CN=orbt-bench-scale-ca -keyout %s -out %s")
      :format(file("ca.key"), file("ca.pem")),
    ("openssl req -newkey rsa:2048 -nodes -subj /CN=127.0.0.1 -keyout %s -out %s")
      :format(file("server.key"), file("server.csr")),
    ("printf 'subjectAltName=IP:127.0.0.1,DNS:127.0.0.1\\n' > %s"):format(file("san.ext")),
    ("openssl x509 -req -in %s -CA %s -CAkey %s -CAcreateserial -days 2 -extfile %s -out %s")
      :format(file("server.csr"), file("ca.pem"), file("ca.key"), file("san.ext"), file("server.pem")),
  }
  for _, step in ipairs(steps) do
    local out, ok = sh(step .. " 2>&1")
    if not ok then return nil, "openssl: " .. out:gsub("%s+", " ") end
  end
  return { ca = dir .. "/ca.pem", cert = dir .. "/server.pem", key = dir .. "/server.key" }
end

-- The directory of lua-cjson's build for Lua 5.1, which nginx's LuaJIT
-- loads (Debian's lua-cjson puts it under /usr/lib/<multiarch>/lua/5.1).
local function lua51_cjson_dir()
  local found = sh("ls /usr/lib/*/lua/5.1/cjson.so /usr/local/lib/lua/5.1/cjson.so /usr/lib/lua/5.1/cjson.so "
    .. "2>/dev/null")
  return found:match("^(%S+)/cjson%.so")
end

-- A Lua table constructor for the settings nginx's init_by_lua reads.
local function lua_literal(t)
  local keys, parts = {}, {}
  for k in pairs(t) do keys[#keys + 1] = k end
  table.sort(keys)
  for _, k in ipairs(keys) do
    local v = t[k]
    parts[#parts + 1] = ("%s = %s"):format(k, type(v) == "string" and ("%q"):format(v) or tostring(v))
  end
  return "{ " .. concat(parts, ", ") .. " }"
end

-- Descriptors each process needs: two per handler request at the front
-- (its client and its upstream connection), and room to spare.
local function scale_nofile()
  return 2 * S.scale_in_flight + 1024
end

-- nil, or why this machine cannot open that many descriptors.
local function scale_limits_problem()
  local need = scale_nofile()
  local hard = sh("sh -c 'ulimit -Hn' 2>&1"):gsub("%s+$", "")
  if hard == "unlimited" or (tonumber(hard) or 0) >= need then return nil end
  if sh("id -u"):match("^0%s") then return nil end -- root may raise its hard limit
  return ("nginx at scale needs %d open files per process; the hard limit (ulimit -Hn) is %s"):format(need, hard)
end

local function start_scale_nginx(role, dir, template, fields)
  local conf = read_file(BENCH .. "/" .. template)
  fields.DIR = dir
  fields.USER = sh("id -u"):match("^0%s") and "user root;" or ""
  fields.NOFILE = tostring(scale_nofile())
  fields.CONNECTIONS = tostring(scale_nofile() - 512)
  fields.BACKLOG = tostring(2 * S.scale_in_flight)
  conf = conf:gsub("@([%u_]+)@", function(key) return assert(fields[key], key) end)
  local path = dir .. "/" .. role .. ".conf"
  write_file(path, conf)
  local nginx = command_exists("nginx") and "nginx" or "/usr/sbin/nginx"
  local pid = background(("%s -p %s -c %s -e %s"):format(nginx, quote(dir), quote(path),
    quote(dir .. "/" .. role .. "-error.log")), "scale-" .. role)
  wait_for(function()
    return ("nginx (%s) did not start: %s%s"):format(role, read_file(TMP .. "/scale-" .. role .. ".log") or "",
      read_file(dir .. "/" .. role .. "-error.log") or "")
  end, function()
    return accepts(tonumber(fields.PORT))
  end)
  return pid
end

local function http_get(url)
  local body, status = require("socket.http").request(url)
  return is_2xx(status) and body or nil, status
end

local function proc_status_kib(pid, field)
  return tonumber((read_file("/proc/" .. pid .. "/status") or ""):match(field .. ":%s*(%d+) kB"))
end

-- The process's CPU seconds so far (user + system), from /proc/PID/stat.
local CLOCK_TICKS = tonumber((sh("getconf CLK_TCK"))) or 100
local function proc_cpu_seconds(pid)
  local stat = read_file("/proc/" .. pid .. "/stat") or ""
  local fields = {}
  for field in (stat:match("%) (.*)$") or ""):gmatch("%S+") do fields[#fields + 1] = field end
  -- After "pid (comm) ": state is field 1, utime field 12, stime field 13.
  local utime, stime = tonumber(fields[12]), tonumber(fields[13])
  return utime and (utime + stime) / CLOCK_TICKS or nil
end

local function finished_process(pid)
  local state = (read_file("/proc/" .. pid .. "/stat") or ""):match("%) (%a)")
  return state == nil or state == "Z"
end

-- wrk's latency figures ("51.23ms") in milliseconds.
local function wrk_ms(text)
  local value, unit = text:match("^([%d.]+)(%a+)$")
  local scale = ({ us = 0.001, ms = 1, s = 1000, m = 60000 })[unit]
  return value and scale and tonumber(value) * scale or nil
end

-- What wrk counted: requests, rate, latencies and failures.
local function parse_wrk(text)
  local r = {
    requests = tonumber(text:match("(%d+) requests in")),
    rate = tonumber(text:match("Requests/sec:%s*([%d.]+)")),
    p50 = wrk_ms(text:match("\n%s*50%%%s+(%S+)") or ""),
    p99 = wrk_ms(text:match("\n%s*99%%%s+(%S+)") or ""),
    non_2xx = tonumber(text:match("Non%-2xx or 3xx responses: (%d+)")) or 0,
    socket_errors = 0,
  }
  local connect, read, write, timeout =
    text:match("Socket errors: connect (%d+), read (%d+), write (%d+), timeout (%d+)")
  if connect then
    r.socket_errors = tonumber(connect) + tonumber(read) + tonumber(write) + tonumber(timeout)
    r.socket_text = ("connect %s, read %s, write %s, timeout %s"):format(connect, read, write, timeout)
  end
  return r
end

local function scale_wrk(url, threads, connections, seconds, name)
  return background(("ulimit -n %d && exec wrk -t%d -c%d -d%ds --timeout 10s --latency %s"):format(scale_nofile(),
    threads, connections, seconds, quote(url)), name)
end

local function wait_wrk(pid, name, seconds, each)
  local deadline = socket.gettime() + seconds + 30
  while not finished_process(pid) and alive(pid) do
    if each then each() end
    if socket.gettime() > deadline then
      stop(pid)
      return nil, "wrk did not finish"
    end
    socket.sleep(0.05)
  end
  started_pids[pid] = nil
  return (read_file(TMP .. "/" .. name .. ".out") or "") .. (read_file(TMP .. "/" .. name .. ".log") or "")
end

-- Lines of both nginx error logs at level error or above that are not a
-- failed orbt or baseline call (counted apart): how many, and the first.
local function log_problems(dir)
  local n, first = 0, nil
  for _, name in ipairs{ "front-error.log", "upstream-error.log" } do
    for l in (read_file(dir .. "/" .. name) or ""):gmatch("[^\n]+") do
      if l:match("%[error%]") or l:match("%[crit%]") or l:match("%[alert%]") or l:match("%[emerg%]") then
        if not l:find("orbt call ", 1, true) and not l:find("baseline call ", 1, true) then
          n = n + 1
          first = first or l:gsub("^%S+ %S+ ", "")
        end
      end
    end
  end
  return n, first
end

-- The handler requests that failed at the front, from its error log.
local function front_failures(dir)
  local n, first = 0, nil
  for l in (read_file(dir .. "/front-error.log") or ""):gmatch("[^\n]+") do
    local why = l:match("%[error%].-(orbt call [^\n]-), client:") or l:match("%[error%].-(orbt call .*)$")
      or l:match("%[error%].-(baseline call [^\n]-), client:") or l:match("%[error%].-(baseline call .*)$")
    if why then
      n = n + 1
      first = first or why
    end
  end
  return n, first
end

-- The p99 of nginx's $request_time (ms) at the front for the requests to
-- `path` that ended between `from` and `to` (seconds since the epoch).
local function front_p99(path, uri, from, to)
  local times = {}
  for l in (read_file(path) or ""):gmatch("[^\n]+") do
    local at, took, what = l:match("^(%S+) (%S+) (%S+)$")
    at, took = tonumber(at), tonumber(took)
    if what == uri and at and took and at >= from and at <= to then
      times[#times + 1] = took * 1000
    end
  end
  if #times == 0 then return nil end
  table.sort(times)
  return times[max(1, floor(#times * 0.99 + 0.5))]
end

-- The upstream's access log of its HTTPS requests: requests, TLS
-- handshakes (a request with $connection_requests = 1) and resumed ones
-- ($ssl_session_reused = r), and the protocols seen.
local function tls_log_counts(path)
  local t = tls_tally()
  for l in (read_file(path) or ""):gmatch("[^\n]+") do
    local _, nth, reused, protocol = l:match("^(%S+) (%S+) (%S+) (%S+) ")
    if nth then
      tls_count(t, nth, reused, protocol)
    end
  end
  return tls_total(t)
end

local function run_scale_one(alt, canned, certs, cjson_dir, round)
  local dir = TMP .. "/scale-" .. alt.key .. "-" .. round
  os.execute("mkdir -p " .. quote(dir))
  write_file(dir .. "/page.json", canned.page)
  local upstream_port, front_port, tls_port = free_port(), free_port(), free_port()
  while front_port == upstream_port do front_port = free_port() end
  while tls_port == upstream_port or tls_port == front_port do tls_port = free_port() end
  local lua_path = absolute(LUA_DIR) .. "/?.lua;" .. absolute(BENCH) .. "/?.lua"
  local pids = {}
  local function finish(r)
    for _, pid in ipairs(pids) do stop(pid) end
    return r
  end
  pids[1] = start_scale_nginx("upstream", dir, "nginx_upstream.conf.in", { PORT = tostring(upstream_port),
    TLS_PORT = tostring(tls_port), CERT_FILE = certs.cert, KEY_FILE = certs.key,
    HOLD_MS = tostring(S.scale_hold_ms), LUA_PATH = lua_path,
    SETTINGS = lua_literal{ hold_ms = S.scale_hold_ms, page_file = dir .. "/page.json" } })
  pids[2] = start_scale_nginx("front", dir, "nginx_scale.conf.in", { PORT = tostring(front_port),
    UPSTREAM_PORT = tostring(upstream_port), PROXY_KEEPALIVE = tostring(alt.keepalive), LUA_PATH = lua_path,
    LUA_CPATH = absolute(NGINX_BUILD) .. "/?.so;" .. cjson_dir .. "/?.so", CA_FILE = certs.ca,
    SETTINGS = lua_literal{ api_key = CREDS.api_key, client_id = CREDS.client_id, secret = CREDS.secret,
      upstream_url = "http://127.0.0.1:" .. upstream_port, tls_url = "https://127.0.0.1:" .. tls_port,
      upstream_host = "127.0.0.1", upstream_port = upstream_port,
      pool_size = orbt_pool_size(), pool_backlog = orbt_pool_backlog() } })
  local front = "http://127.0.0.1:" .. front_port
  local upstream = "http://127.0.0.1:" .. upstream_port
  local worker = tonumber(http_get(front .. "/pid") or "")
  if not worker then return finish{ failed = "the front nginx did not say its worker's pid" } end

  -- Warm-up at low concurrency: the client, the JIT and the pools exist
  -- before RSS is read, so that the growth is what the load in flight costs.
  local name = "scale-wrk-" .. alt.key
  local text = wait_wrk(scale_wrk(front .. alt.path, 1, 10, 1, name .. "-warm"), name .. "-warm", 1)
  local warm = parse_wrk(text or "")
  if not warm.requests or warm.requests == 0 or warm.non_2xx > 0 or warm.socket_errors > 0 then
    local _, why = front_failures(dir)
    return finish{ failed = "warm-up failed: " .. (why or (text or ""):sub(-300):gsub("%s+", " ")) }
  end
  local failed_before = front_failures(dir)
  -- The warm-up's new connections and TLS handshakes count in the whole run's.
  local warm_stats = http_get(upstream .. "/stats") or ""
  http_get(upstream .. "/reset")
  socket.sleep(0.2)

  local rss_before = proc_status_kib(worker, "VmRSS")
  local cpu_before = proc_cpu_seconds(worker)
  local rss_peak = rss_before
  -- One second into the load, the upstream starts a second peak: the one
  -- after wrk's first burst of connections.
  local mark_at, marked = socket.gettime() + 1, false
  local function sample()
    local rss = proc_status_kib(worker, "VmRSS")
    if rss and rss > rss_peak then rss_peak = rss end
    if not marked and socket.gettime() >= mark_at then
      marked = http_get(upstream .. "/mark") ~= nil
    end
  end
  local load_from = socket.gettime()
  text = wait_wrk(scale_wrk(front .. alt.path, S.scale_threads, S.scale_in_flight, S.scale_seconds, name), name,
    S.scale_seconds, sample)
  local load_to = socket.gettime()
  local cpu_after = proc_cpu_seconds(worker)
  -- Just after: the calls still in flight when wrk stopped finish within the hold.
  for _ = 1, 4 do
    sample()
    socket.sleep(S.scale_hold_ms / 1000)
  end
  local stats = http_get(upstream .. "/stats") or ""
  local r = parse_wrk(text or "")
  if not r.requests or not r.rate or not r.p50 or not r.p99 then
    return finish{ failed = "wrk: " .. (text or ""):sub(-300):gsub("%s+", " ") }
  end
  local failed_calls, why = front_failures(dir)
  r.failed_calls, r.why = failed_calls - failed_before, why
  r.errors = r.non_2xx + r.socket_errors
  r.peak = tonumber(stats:match("peak=(%d+)"))
  r.steady_peak = marked and tonumber(stats:match("peak_since_mark=(%d+)")) or nil
  r.upstream_served = tonumber(stats:match("served=(%d+)"))
  r.upstream_connections = tonumber(stats:match("connections=(%d+)"))
  r.warm_connections = tonumber(warm_stats:match("connections=(%d+)"))
  if r.upstream_connections and r.warm_connections then
    r.run_connections = r.upstream_connections + r.warm_connections
  end
  -- nginx writes its access logs within a second (flush=1s).
  socket.sleep(1.2)
  r.handler_p99 = front_p99(dir .. "/front-access.log", alt.path, load_from, load_to)
  if alt.tls then
    -- The whole run's handshakes from the access log; the load's from the
    -- shared dict.
    r.tls = tls_log_counts(dir .. "/upstream-access.log")
    r.tls.load_handshakes = tonumber(stats:match("tls_handshakes=(%d+)"))
    r.tls.load_resumed = tonumber(stats:match("tls_resumed=(%d+)"))
    local warm_tls = tonumber(warm_stats:match("tls_handshakes=(%d+)"))
    if not (warm_tls and r.tls.load_handshakes and warm_tls + r.tls.load_handshakes == r.tls.handshakes) then
      r.tls_mismatch = ("the upstream's access log holds %s TLS handshakes, its counts %s in the warm-up and %s "
        .. "in the load"):format(thousands(r.tls.handshakes), tostring(warm_tls), tostring(r.tls.load_handshakes))
    end
  end
  r.rss_before, r.rss_peak = rss_before, rss_peak
  if r.peak and r.peak > 0 and rss_before then
    r.rss_per_call = (rss_peak - rss_before) / r.peak -- KiB
  end
  if cpu_before and cpu_after and r.requests > 0 then
    r.cpu = (cpu_after - cpu_before) / r.requests
    r.busy = (cpu_after - cpu_before) / S.scale_seconds
  end
  -- Little's law: the upstream's mean in flight is its rate times the hold.
  r.mean_in_flight = r.rate * S.scale_hold_ms / 1000
  r.log_problems, r.log_first = log_problems(dir)
  r.worker = worker
  return finish(r)
end

-- One row of the table from an alternative's rounds: medians of the rates,
-- latencies, CPU, RSS and in-flight figures; failures summed; the most new
-- connections and TLS handshakes of any round (the targets bound them).
-- A round that failed fails the row.
local function combine_scale(rounds)
  for _, r in ipairs(rounds) do
    if r.failed then return r end
  end
  local function med(key)
    local values = {}
    for _, r in ipairs(rounds) do
      if r[key] then values[#values + 1] = r[key] end
    end
    return median(values)
  end
  local c = {}
  for _, key in ipairs{ "rate", "p50", "p99", "handler_p99", "cpu", "busy", "rss_before", "rss_per_call", "peak",
    "steady_peak",
    "mean_in_flight" } do
    c[key] = med(key)
  end
  c.requests, c.errors, c.failed_calls, c.log_problems, c.rss_peak = 0, 0, 0, 0, 0
  for _, r in ipairs(rounds) do
    c.requests, c.errors = c.requests + r.requests, c.errors + r.errors
    c.failed_calls, c.log_problems = c.failed_calls + r.failed_calls, c.log_problems + r.log_problems
    c.why, c.log_first = c.why or r.why, c.log_first or r.log_first
    c.rss_peak = max(c.rss_peak, r.rss_peak or 0)
    c.tls_mismatch = c.tls_mismatch or r.tls_mismatch
    if r.run_connections and (not c.run_connections or r.run_connections > c.run_connections) then
      c.run_connections, c.warm_connections, c.upstream_connections = r.run_connections, r.warm_connections,
        r.upstream_connections
    end
    if r.tls and (not c.tls or r.tls.handshakes > c.tls.handshakes) then
      c.tls = r.tls
    end
  end
  return c
end

local function run_scale(canned)
  local problem = scale_limits_problem()
  local certs, cjson_dir
  if not problem then
    local why
    certs, why = scale_certs()
    problem = not certs and why or nil
  end
  if not problem then
    cjson_dir = lua51_cjson_dir()
    problem = not cjson_dir and "lua-cjson for Lua 5.1 (cjson.so) not found; the fair baseline needs it" or nil
  end
  local alternatives = scale_alternatives()
  local by_key = {}
  for _, alt in ipairs(alternatives) do by_key[alt.key] = {} end
  -- Every round runs every alternative once, in an order rotated each round.
  for round = 1, S.scale_rounds do
    for i = 1, #alternatives do
      local alt = alternatives[(i + round - 2) % #alternatives + 1]
      local r = problem and { failed = problem } or run_scale_one(alt, canned, certs, cjson_dir, round)
      local list = by_key[alt.key]
      list[#list + 1] = r
      if r.failed then
        progress(("  FAILED nginx at scale, round %d, %s: %s"):format(round, alt.label, r.failed))
      else
        progress(("nginx at scale, round %d: %-62s %8s/s  p99 %s ms  %d failed  upstream peak %s  connections %s%s")
          :format(round, alt.label, rate_text(r.rate), ("%.1f"):format(r.p99), r.errors, tostring(r.peak),
          tostring(r.run_connections), r.tls and ("  TLS handshakes %d"):format(r.tls.handshakes) or ""))
      end
    end
  end
  local rows = {}
  for _, alt in ipairs(alternatives) do
    rows[#rows + 1] = { alt = alt, result = combine_scale(by_key[alt.key]), rounds = by_key[alt.key] }
  end
  return rows
end

-- ===== The report =====

local function machine()
  local cpu = (read_file("/proc/cpuinfo") or ""):match("model name%s*:%s*([^\n]+)") or "?"
  local os_name = (read_file("/etc/os-release") or ""):match('PRETTY_NAME="([^"]+)"') or "?"
  local cores = sh("nproc"):gsub("%s+$", "")
  return ("%s, %s cores (%s), kernel %s"):format(os_name, cores, cpu, (sh("uname -r"):gsub("%s+$", "")))
end

local function loadavg()
  return ((read_file("/proc/loadavg") or "?"):match("^(%S+ %S+ %S+)")) or "?"
end

local function versions()
  local function first_line(cmd)
    return (sh(cmd .. " 2>&1"):match("[^\n]*") or "?"):gsub("%s+$", "")
  end
  return concat({
    first_line(LUA .. " -v"),
    "orbt " .. orbt._VERSION,
    first_line("curl --version"):match("^(curl %S+ %S+ %S+)") or "curl ?",
    first_line("openssl version"),
    first_line("nginx -v"):gsub("^nginx version: ", ""),
    (first_line("wrk -v"):match("^(wrk %S+)") or "wrk"),
  }, ", ")
end

local function microseconds(seconds)
  if not seconds then return "—" end
  local us = seconds * 1e6
  return us >= 1000 and (thousands(us) .. " µs") or (("%.1f µs"):format(us))
end

-- ----- Hooks -----

-- bench/hooks.lua against the canned nginx: one process, three clients
-- (no hooks; empty hooks in orbt.new; empty hooks in the call's limits
-- table) taking turns. Returns its figures, or {failed = why}.
local function run_hooks(server)
  progress(("hooks: %d rounds of %d requests per client, against %s"):format(S.hooks_rounds, S.hooks_requests,
    server.name))
  local text, stderr = timed(("%s %s %s %d %d"):format(LUA, quote(BENCH .. "/hooks.lua"), quote(server.url),
    S.hooks_rounds, S.hooks_requests))
  local line = text:match("^ok ([^\n]*)")
  if not line then
    local why = text:match("^fail ([^\n]*)") or "no result"
    return { failed = why .. " (stderr: " .. stderr:sub(-300):gsub("%s+", " ") .. ")" }
  end
  local r = { server = server }
  for key, value in line:gmatch("([%w_]+)=([%d.]+)") do
    r[key] = tonumber(value)
  end
  progress(("hooks: CPU per request %s without hooks, %s with empty hooks (%.3f×), %s with them per call (%.3f×)")
    :format(microseconds(r.none), microseconds(r.client), r.client_ratio, microseconds(r.call), r.call_ratio))
  return r
end

-- The hooks rows of the main table.
local function hooks_rows(line, h)
  if not h then return end
  local where = h.server and h.server.name or "nginx"
  if h.failed then
    line(("| hooks: (b) orbt | GET page of 20 | %s | FAILED: %s | | | | | |"):format(where, (h.failed:gsub("|", "/"))))
    return
  end
  line(("| hooks: (b) orbt, no hooks | GET page of 20 | %s | %s | | 1× no hooks (CPU) | %s | — | — |"):format(where,
    rate_text(h.rate), microseconds(h.none)))
  line(("| hooks: (b) orbt, empty on_request + on_response in orbt.new | GET page of 20 | %s | | | "
    .. "%.3f× no hooks (CPU; %.3f–%.3f) | %s | — | — |"):format(where, h.client_ratio, h.client_min, h.client_max,
    microseconds(h.client)))
  line(("| hooks: (b) orbt, empty on_request + on_response per call | GET page of 20 | %s | | | "
    .. "%.3f× no hooks (CPU; %.3f–%.3f) | %s | — | — |"):format(where, h.call_ratio, h.call_min, h.call_max,
    microseconds(h.call)))
end

local HEADER = "| alternative | workload | server | per second | min–max | ratio | CPU per request | peak RSS "
  .. "| TLS handshakes per run |"
local RULE = "|---|---|---|---:|---:|---:|---:|---:|---:|"

local function range_text(list)
  local lo, hi = math.huge, -math.huge
  for _, x in ipairs(list) do
    lo, hi = math.min(lo, x), math.max(hi, x)
  end
  return lo == hi and thousands(lo) or (thousands(lo) .. "–" .. thousands(hi))
end

-- The TLS runs of an alternative, in round order.
local function tls_runs(id)
  local runs = {}
  for round = 1, S.rounds do
    local t = ((results[id] or {}).tls or {})[round]
    if t then runs[#runs + 1] = t end
  end
  return runs
end

-- "1 of 6,000–6,500 requests": the handshakes of a run over the rounds, and
-- the requests those runs made.
local function handshakes_text(id)
  local runs = tls_runs(id)
  if #runs == 0 then return "—" end
  local handshakes, requests, resumed = {}, {}, 0
  for i, t in ipairs(runs) do
    handshakes[i], requests[i] = t.handshakes, t.requests
    resumed = resumed + t.resumed
  end
  return ("%s of %s requests%s"):format(range_text(handshakes), range_text(requests),
    resumed > 0 and (", %s resumed"):format(thousands(resumed)) or "")
end

-- One row of the table from the results of one alternative.
local function table_row(label, what, server, id, reference, reference_label)
  local entry = results[id] or { failed = "not run" }
  if entry.failed then
    return ("| %s | %s | %s | FAILED: %s | | | | | |"):format(label, what, server, (entry.failed:gsub("|", "/")))
  end
  local rates = rates_of(id)
  local ref = id == reference and ("1× " .. reference_label) or ratio_text(ratio(id, reference), reference_label)
  return ("| %s | %s | %s | %s | %s | %s | %s | %s | %s |"):format(label, what, server, rate_text(median(rates)),
    spread(rates), ref, microseconds(cpu_of(id)), mib(entry.rss), handshakes_text(id))
end

local function syscall_table(line, server, syscalls)
  line(("Syscalls per request, %s (%s; runs of %d and %d requests, the difference divided by %d; "
    .. "\"(failed)\" counts calls that returned an error, such as a read that found nothing yet):")
    :format(server.name, syscalls.tracer, S.trace_counts[1], S.trace_counts[2],
      S.trace_counts[2] - S.trace_counts[1]))
  line("")
  local header, rule = { "| syscall" }, { "|---" }
  local names, totals = {}, {}
  for i, column in ipairs(syscalls) do
    header[#header + 1] = ("(%s) %s"):format(column.key, column.workload.key:upper())
    rule[#rule + 1] = "---:"
    totals[i] = 0
    for name, per in pairs(column.per) do
      if not name:find(" (failed)", 1, true) then totals[i] = totals[i] + per end
      if per >= 0.005 then names[name] = true end
    end
  end
  line(concat(header, " | ") .. " |")
  line(concat(rule, "|") .. "|")
  local sorted = {}
  for name in pairs(names) do sorted[#sorted + 1] = name end
  table.sort(sorted)
  for _, name in ipairs(sorted) do
    local cells = { "| " .. name }
    for _, column in ipairs(syscalls) do
      cells[#cells + 1] = column.failed and "failed" or ("%.2f"):format(column.per[name] or 0)
    end
    line(concat(cells, " | ") .. " |")
  end
  local cells = { "| **total**" }
  for i, column in ipairs(syscalls) do
    cells[#cells + 1] = column.failed and "failed" or ("**%.2f**"):format(totals[i])
  end
  line(concat(cells, " | ") .. " |")
end

-- Over TLS: orbt against (g) and (h), and every run's handshakes.
local function tls_section(line, server)
  line(("Over TLS (%s):"):format(server.label))
  for _, workload in ipairs(WORKLOADS) do
    local ids, ratios, cpus = {}, {}, {}
    for i, alt in ipairs(TLS_ALTERNATIVES) do
      ids[i] = http_id(server, workload, alt)
      cpus[#cpus + 1] = ("(%s) %s"):format(alt.key, microseconds(cpu_of(ids[i])))
    end
    for i = 2, #ids do
      ratios[#ratios + 1] = ratio_text(ratio(ids[1], ids[i]), "(" .. TLS_ALTERNATIVES[i].key .. ")")
    end
    line(("- %s: orbt's requests/s %s; CPU per request %s"):format(workload.label, concat(ratios, ", "),
      concat(cpus, ", ")))
  end
  line("")
  line("TLS handshakes in each run (handshakes/requests, in round order; the protocol nginx logged):")
  for _, workload in ipairs(WORKLOADS) do
    for _, alt in ipairs(TLS_ALTERNATIVES) do
      local cells, protocols = {}, {}
      for _, t in ipairs(tls_runs(http_id(server, workload, alt))) do
        cells[#cells + 1] = thousands(t.handshakes) .. "/" .. thousands(t.requests)
          .. (t.resumed > 0 and (" (%s resumed)"):format(thousands(t.resumed)) or "")
        protocols[t.protocols] = true
      end
      local list = {}
      for p in pairs(protocols) do list[#list + 1] = p end
      table.sort(list)
      line(("- %s, %s: %s%s"):format(alt.label, workload.label, #cells > 0 and concat(cells, ", ") or "not run",
        #list > 0 and (" (" .. concat(list, "; ") .. ")") or ""))
    end
  end
end

-- nginx at scale: one row per alternative.
local function scale_section(line, scale)
  line(("nginx at scale: one nginx worker (nginx %s with its Lua module, orbt's LuaJIT build); wrk -t%d -c%s "
    .. "for %d s, so %s handler requests in flight at once; the upstream, another nginx worker, holds every "
    .. "request %g ms and answers the page of 20 (over HTTP, or HTTPS for the TLS row); orbt's pool_size %s, "
    .. "pool_backlog %s; %d round(s), each running every row once in a rotated order:"):format(
    (sh("nginx -v 2>&1"):match("nginx/(%S+)") or "?"), S.scale_threads, thousands(S.scale_in_flight),
    S.scale_seconds, thousands(S.scale_in_flight), S.scale_hold_ms, thousands(orbt_pool_size()),
    orbt_pool_backlog() and thousands(orbt_pool_backlog()) or "none", S.scale_rounds))
  line("")
  line("| alternative | per second | p50 | p99 | handler p99 | failed | new upstream connections (warm-up + load) "
    .. "| TLS "
    .. "handshakes (resumed) | worker RSS before → peak | upstream in flight: peak, after 1 s, mean | RSS "
    .. "growth per call in flight | worker CPU per request (busy) |")
  line("|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
  for _, row in ipairs(scale) do
    local r = row.result
    if r.failed then
      line(("| %s | FAILED: %s | | | | | | | | | | |"):format(row.alt.label, (r.failed:gsub("|", "/"))))
    else
      local connections = r.run_connections and ("%s (%s + %s)"):format(thousands(r.run_connections),
        thousands(r.warm_connections), thousands(r.upstream_connections)) or "?"
      local tls = r.tls and ("%s (%s resumed)"):format(thousands(r.tls.handshakes),
        thousands(r.tls.resumed)) or "—"
      line(("| %s | %s | %.1f ms | %.1f ms | %s | %s of %s | %s | %s | %s → %s | %s, %s, %s | %s | %s (%s) |"):format(
        row.alt.label, rate_text(r.rate), r.p50, r.p99,
        r.handler_p99 and ("%.1f ms"):format(r.handler_p99) or "?", thousands(r.errors), thousands(r.requests),
        connections, tls, mib(r.rss_before), mib(r.rss_peak),
        r.peak and thousands(r.peak) or "?", r.steady_peak and thousands(r.steady_peak) or "?",
        thousands(r.mean_in_flight),
        r.rss_per_call and ("%.1f KiB"):format(r.rss_per_call) or "?", microseconds(r.cpu),
        r.busy and ("%.0f%% of a core"):format(100 * r.busy) or "?"))
    end
  end
  line("")
  line("Figures are medians over the rounds, except: failed, summed over the rounds; new upstream "
    .. "connections and TLS handshakes, the most of any round; RSS peak, the highest. "
    .. "Per second: handler requests wrk completed per second of its run; p50 and p99 are wrk's latencies. "
    .. "Handler p99: the p99 of the front's $request_time for the load's requests (from nginx reading the "
    .. "request's first byte to writing its answer's last), so without the time a request waited to be "
    .. "accepted or read. Both nginx accept every pending connection at once (multi_accept on). "
    .. "Failed: non-2xx answers and socket errors (connect, read, write, timeout at 10 s) that wrk counted, "
    .. "of the requests it completed; the front answers 502 when the call fails (no retries) and 500 "
    .. "when the page lacks its 20 consumers. "
    .. "The fair baseline is what a careful user writes without orbt (bench/scale_baseline.lua): per request "
    .. "orbt.sign{...} for the five headers, a minimal HTTP/1.1 GET written by hand in one send, "
    .. "ngx.socket.tcp with connect options { pool, pool_size, backlog } sized like orbt's client, the "
    .. "status line and headers read line by line and the Content-Length body, lua-cjson (cjson.safe) to "
    .. "decode it, the 20 consumers checked, setkeepalive. The TLS row is orbt with base_url "
    .. "https://127.0.0.1:PORT, the upstream's second port (listen ssl, nginx's TLS defaults, "
    .. "ssl_session_cache shared), with an RSA 2048 certificate for 127.0.0.1 from a CA made for the run "
    .. "with the openssl tool, which the front trusts through lua_ssl_trusted_certificate. "
    .. "New upstream connections: the connections the upstream accepted ($connection_requests = 1), in the "
    .. "warm-up and in the load. TLS handshakes: the HTTPS requests of the upstream's access log with "
    .. "$connection_requests = 1, warm-up and load, a resumed one ($ssl_session_reused = r) counted too. "
    .. "The upstream counts requests in flight in an ngx.shared dict "
    .. "(up on entry, down before answering) and keeps the peak, over the whole load and from 1 s into it "
    .. "(after wrk's first burst); its mean in flight is the rate times the hold (Little's law). "
    .. "RSS is the front worker's VmRSS (/proc/PID/status): before, after a warm-up of 1 s at 10 "
    .. "connections; peak, sampled every 50 ms during the load and just after it. RSS growth per call in "
    .. "flight is (peak − before) / the upstream's peak in flight. Worker CPU per request is the front "
    .. "worker's user + system time during the load (/proc/PID/stat) over the requests wrk completed; busy "
    .. "is that time over the load's duration. "
    .. "Each run of an alternative has a fresh pair of nginx processes. proxy_pass is nginx's "
    .. "own ceiling for the same load, with HTTP/1.1 kept-alive upstream connections capped as the label says.")
end

-- The row of the alternative with this key, unless it failed.
local function scale_row(scale, key)
  for _, row in ipairs(scale) do
    if row.alt.key == key and not row.result.failed then return row.result end
  end
  return nil
end

-- A line of the report for a ratio against its goal: at least goal, or with
-- at_most, at most goal.
local function target_line(line, text, value, goal, at_most)
  if not value then
    line(("- %s: not measured"):format(text))
  else
    local met = at_most and value <= goal or (not at_most and value >= goal)
    line(("- %s: %.2f× (target %s %.2f×) %s"):format(text, value, at_most and "≤" or "≥", goal,
      met and "met" or "NOT met"))
  end
end

-- The targets of nginx at scale: orbt against the fair baseline, the
-- connections and TLS handshakes of the whole run, TLS against plain; then
-- the checks of the alternatives marked checked.
local function scale_targets(line, scale)
  if #scale == 0 then return end
  local function target(text, value, goal, at_most)
    target_line(line, text, value, goal, at_most)
  end
  local function count_target(text, value, goal, extra)
    if not value then
      line(("- %s: not measured"):format(text))
    else
      line(("- %s: %s%s (target ≤ %s) %s"):format(text, thousands(value), extra or "", thousands(goal),
        value <= goal and "met" or "NOT met"))
    end
  end
  local base, b, tls = scale_row(scale, "baseline"), scale_row(scale, "b"), scale_row(scale, "b-tls")
  -- A ratio of two alternatives taken within each round: the median, and
  -- each round's in round order.
  local function round_ratio(over, under, key)
    local rounds_over, rounds_under
    for _, row in ipairs(scale) do
      if row.alt.key == over then rounds_over = row.rounds end
      if row.alt.key == under then rounds_under = row.rounds end
    end
    local ratios, texts = {}, {}
    for i = 1, S.scale_rounds do
      local x, y = rounds_over and rounds_over[i], rounds_under and rounds_under[i]
      if not x or not y or x.failed or y.failed or not x[key] or not y[key] then return nil end
      ratios[i] = x[key] / y[key]
      texts[i] = ("%.2f"):format(ratios[i])
    end
    return median(ratios), #texts > 1 and (" [rounds: " .. concat(texts, ", ") .. "]") or ""
  end
  local function ratio_target(text, over, under, key, goal, at_most)
    local value, rounds = round_ratio(over, under, key)
    target(text .. (rounds or ""), value, goal, at_most)
  end
  local at = ("nginx at scale, %s in flight"):format(thousands(S.scale_in_flight))
  ratio_target(("%s: (b) orbt / fair baseline, requests per second"):format(at), "b", "baseline", "rate",
    S.scale_min_rate_ratio)
  ratio_target(("%s: (b) orbt / fair baseline, p99"):format(at), "b", "baseline", "p99", S.scale_max_p99_ratio,
    true)
  count_target(("%s: (b) orbt, new upstream connections in the whole run"):format(at), b and b.run_connections,
    S.scale_in_flight)
  count_target(("%s: (b) orbt over TLS, new upstream connections in the whole run"):format(at),
    tls and tls.run_connections, S.scale_in_flight)
  count_target(("%s: (b) orbt over TLS, TLS handshakes in the whole run"):format(at),
    tls and tls.tls and tls.tls.handshakes, S.scale_in_flight,
    tls and tls.tls and (" (%s resumed)"):format(thousands(tls.tls.resumed)))
  ratio_target(("%s: (b) orbt over TLS p99 / (b) orbt p99"):format(at), "b-tls", "b", "p99",
    S.scale_max_tls_p99_ratio, true)
  local handler_tls, handler_rounds = round_ratio("b-tls", "b", "handler_p99")
  if handler_tls then
    line(("- %s: (b) orbt over TLS handler p99 / (b) orbt handler p99 (nginx's $request_time)%s: %.2f×"):format(at,
      handler_rounds, handler_tls))
  end
  if base and b and base.cpu and b.cpu then
    local cpu_median, rounds = round_ratio("b", "baseline", "cpu")
    line(("- %s: worker CPU per request, (b) orbt %s, fair baseline %s (%s×%s); worker RSS growth per call in "
      .. "flight, (b) orbt %s, fair baseline %s"):format(at, microseconds(b.cpu), microseconds(base.cpu),
      cpu_median and ("%.2f"):format(cpu_median) or "?", rounds or "",
      b.rss_per_call and ("%.1f KiB"):format(b.rss_per_call) or "?",
      base.rss_per_call and ("%.1f KiB"):format(base.rss_per_call) or "?"))
  end
  local need = floor(S.scale_min_peak * S.scale_in_flight + 0.5)
  for _, row in ipairs(scale) do
    if row.alt.checked then
      local r = row.result
      local what = ("nginx at scale, %s, %s in flight"):format(row.alt.short, thousands(S.scale_in_flight))
      if r.failed then
        line(("- %s: not measured (FAILED: %s)"):format(what, r.failed))
      else
        line(("- %s: failed handler requests %s of %s (target 0) %s"):format(what, thousands(r.errors),
          thousands(r.requests), (r.errors == 0 and r.failed_calls == 0) and "met" or "NOT met"))
        line(("- %s: upstream peak in flight %s (target ≥ %s) %s"):format(what, r.peak and thousands(r.peak) or "?",
          thousands(need), (r.peak or 0) >= need and "met" or "NOT met"))
      end
    end
  end
  for _, row in ipairs(scale) do
    local r = row.result
    if not r.failed then
      if r.failed_calls > 0 then
        line(("- nginx at scale, %s: the front logged %s failed calls, the first: %s"):format(row.alt.label,
          thousands(r.failed_calls), r.why))
      end
      if r.log_problems > 0 then
        line(("- nginx at scale, %s: nginx logged %s other errors, the first: %s"):format(row.alt.label,
          thousands(r.log_problems), r.log_first))
      end
      if r.tls_mismatch then
        line(("- nginx at scale, %s: %s"):format(row.alt.label, r.tls_mismatch))
      end
      if r.tls then
        line(("- nginx at scale, %s: %s TLS handshakes (%s resumed) for %s HTTPS requests in the whole run, %s "
          .. "(%s resumed) of them in the load; protocol %s"):format(row.alt.label, thousands(r.tls.handshakes),
          thousands(r.tls.resumed), thousands(r.tls.requests), tostring(r.tls.load_handshakes),
          tostring(r.tls.load_resumed), r.tls.protocols ~= "" and r.tls.protocols or "?"))
      end
    end
  end
end

local function report(parts)
  local servers, syscalls, walk, load_before, bulk = parts.servers, parts.syscalls, parts.walk, parts.load_before,
    parts.bulk
  local hooks = parts.hooks
  local out = {}
  local function line(s) out[#out + 1] = s end
  local cores = tonumber((sh("nproc"))) or 1
  line(("orbt benchmark, %s UTC. %s. Load average before/after: %s / %s."):format(os.date("!%Y-%m-%d %H:%M"),
    machine(), load_before, loadavg()))
  line(versions() .. ".")
  if PARTS.http or PARTS.sign then
    line(("%d round(s); HTTP runs of %gs (wrk %ds), %d requests per run of (e), signing runs of %gs. "
      .. "Figures are medians over the rounds; ratios are taken within each round, then the median.")
      :format(S.rounds, S.seconds, S.wrk_seconds, S.cli_count, S.sign_seconds))
  end
  if (tonumber(load_before:match("^%S+")) or 0) > 0.25 * cores then
    line("The machine had other load when the run began (load average above): requests/s are lower and "
      .. "noisier than on an idle machine. The ratios within rounds and the CPU per request hold up better.")
  end
  local main_table = #servers > 0 or PARTS.sign or #walk > 0 or #bulk > 0 or hooks ~= nil
  if main_table then
    line("")
    line(HEADER)
    line(RULE)
  end
  for _, server in ipairs(servers) do
    local alternatives, reference_alt = alternatives_of(server)
    for _, workload in ipairs(WORKLOADS) do
      local reference = http_id(server, workload, reference_alt)
      for _, alt in ipairs(alternatives) do
        line(table_row(alt.label, workload.label, server.label or server.name, http_id(server, workload, alt),
          reference, "(" .. reference_alt.key .. ")"))
      end
    end
  end
  for _, workload in ipairs(PARTS.sign and WORKLOADS or {}) do
    local reference = "sign|" .. workload.key .. "|luaossl"
    for _, signer in ipairs(SIGNERS) do
      line(table_row("signing: " .. signer.label, "sign " .. workload.key:upper() .. " inputs", "—",
        "sign|" .. workload.key .. "|" .. signer.key, reference, "luaossl"))
    end
  end
  for _, w in ipairs(walk) do
    local r = w.result
    local label, what = "walking: (b) orbt customers{size = 50}", ("walk %s consumers"):format(thousands(w.count))
    if r.failed then
      line(("| %s | %s | orbt-mock | FAILED: %s | | | | | |"):format(label, what, r.failed))
    else
      line(("| %s | %s | orbt-mock | %s | | — | %s | %s | — |"):format(label, what, rate_text(r.rate),
        microseconds(r.cpu), mib(r.rss)))
    end
  end
  local BULK_METHODS = { creates = { "create_customer", "create_customers" },
    credits = { "create_transaction", "create_transactions" } }
  for _, b in ipairs(bulk) do
    local r = b.result
    local sequential = bulk_pair(bulk, b.kind)[1]
    local methods = BULK_METHODS[b.kind]
    local label = b.concurrency == 0 and ("bulk: (b) orbt %s, one after the other"):format(methods[1])
      or ("bulk: (b) orbt %s{concurrency = %d}"):format(methods[2], b.concurrency)
    local what = ("%s %s, %d ms each at the server"):format(thousands(S.bulk_count), b.kind, S.bulk_delay_ms)
    if r.failed then
      line(("| %s | %s | orbt-mock | FAILED: %s | | | | | |"):format(label, what, r.failed))
    else
      local speedup = sequential and not sequential.failed and ("%.1f× sequential"):format(r.rate / sequential.rate)
        or "—"
      line(("| %s | %s | orbt-mock | %s | | %s | %s | %s | — |"):format(label, what, rate_text(r.rate), speedup,
        microseconds(r.cpu), mib(r.rss)))
    end
  end
  hooks_rows(line, hooks)
  if main_table then
    line("")
    line("Per second: requests (wall clock) for HTTP rows; signatures per second of the signer's own CPU time "
      .. "for signing rows; consumers for walking rows. "
      .. "(f) is the server's ceiling on one connection: wrk sends requests the harness signed just before, "
      .. "and does not parse answers. nginx answers every request with the status and bytes orbt-mock gave "
      .. "for it and checks nothing; orbt-mock checks every signature, timestamp and body hash and stores every "
      .. "create. "
      .. "Signing rows make the same five headers from the same inputs (fixed timestamp); the C rows build no "
      .. "table. CPU per request is the client's own (user + system, all threads) over the measured part; for "
      .. "(e) and (f) it is the whole run's over its requests, every process included for (e). "
      .. "Peak RSS is the highest over the rounds (/usr/bin/time %M); for (e) it is the largest single process. "
      .. "(a') is (a) with CURLOPT_NOSIGNAL: without it libcurl installs and restores a SIGPIPE handler around "
      .. "every transfer (the rt_sigaction calls in the syscall table). The CPU targets against (a') take "
      .. "orbt's CPU per request over (a')'s within each round, then the median over the rounds.")
  end
  if hooks and not hooks.failed then
    line("")
    line(("Hooks rows (bench/hooks.lua): one process with three clients made alike, each on its own kept-alive "
      .. "connection to the nginx above, the GET page of 20 answered, decoded and checked: no hooks; empty "
      .. "on_request and on_response given to orbt.new; the same hooks in the call's limits table. The clients "
      .. "take turns of 5 requests, in an order rotated each turn, for %d requests each per round, %d rounds; "
      .. "CPU per request is the process's (os.clock: user + system) over a client's turns. Ratios are taken "
      .. "within a round, then the median over the rounds (in brackets: the lowest and highest round). "
      .. "Per second: all three clients' requests over the wall clock."):format(hooks.requests, hooks.rounds))
  end
  if #servers > 0 then
    line("")
    line("nginx HTTPS rows: the same nginx and answers over TLS, with an RSA 2048 certificate for 127.0.0.1 signed "
      .. "by a CA made for the run; every client verifies the certificate against that CA's file (orbt: "
      .. "ca_file; LuaSec: verify = \"peer\", cafile). LuaSec checks the chain only, not the host name; orbt "
      .. "(libcurl) checks both. Ratios are to (g), ssl.https, which makes a new connection for every "
      .. "request and writes the request line and the headers as two TLS records without TCP_NODELAY, so "
      .. "the second often waits for the server's delayed ACK (some 40 ms on Linux); (i) makes a new "
      .. "connection per request too, without that stall. TLS handshakes per run are counted in the "
      .. "server's access log of each run ($connection_requests = 1: a new connection, so a handshake; "
      .. "$ssl_session_reused = r: a resumed one), over the rounds, with the requests of those runs, "
      .. "warm-up included; a run's log must hold exactly the requests the client made, all over TLS.")
  end
  if #parts.scale > 0 then
    line("")
    scale_section(line, parts.scale)
  end
  line("")
  line("Targets:")
  local function target(text, value, goal, at_most)
    target_line(line, text, value, goal, at_most)
  end
  for _, server in ipairs(servers) do
    for _, workload in ipairs(server.tls and {} or WORKLOADS) do
      local b = http_id(server, workload, ORBT)
      target(("orbt / (c) hand-written Lua, %s, %s"):format(workload.label, server.name),
        ratio(b, http_id(server, workload, HAND_WRITTEN)), 1.0)
      target(("orbt / (f) wrk, %s, %s"):format(workload.label, server.name),
        ratio(b, http_id(server, workload, REFERENCE)), 0.75)
      target(("orbt CPU per request / (a') C libcurl with CURLOPT_NOSIGNAL, %s, %s")
        :format(workload.label, server.name), cpu_ratio(b, http_id(server, workload, C_FAIR)), 0.85, true)
    end
  end
  for _, workload in ipairs(PARTS.sign and WORKLOADS or {}) do
    target(("orbt.sign (HMAC through EVP_MAC) / luaossl, %s inputs"):format(workload.key:upper()),
      ratio("sign|" .. workload.key .. "|orbt", "sign|" .. workload.key .. "|luaossl"), 2.0)
  end
  for _, kind in ipairs{ "creates", "credits" } do
    local pair = bulk_pair(bulk, kind)
    local one = kind == "creates" and "create" or "credit"
    if pair[1] and pair[2] and not pair[1].failed and not pair[2].failed then
      target(("%s at concurrency %d / one %s after the other, %d ms per %s")
        :format(kind == "creates" and "create_customers" or "create_transactions", S.bulk_concurrency, one,
          S.bulk_delay_ms, one), pair[2].rate / pair[1].rate, 12)
    end
  end
  if #walk == 2 and walk[1].result.rss and walk[2].result.rss then
    line(("- walking: peak RSS %s at %s consumers, %s at %s (%.2f×)"):format(mib(walk[1].result.rss),
      thousands(walk[1].count), mib(walk[2].result.rss), thousands(walk[2].count),
      walk[2].result.rss / walk[1].result.rss))
  end
  scale_targets(line, parts.scale)
  if hooks and not hooks.failed then
    target("hooks that do nothing (on_request + on_response in orbt.new) / no hooks, CPU per request, "
      .. "GET page of 20, " .. hooks.server.name, hooks.client_ratio, S.hooks_max_ratio, true)
  end
  if #servers > 0 then
    line("")
    line("Client CPU per request, orbt against (c) and (a') (medians; lower is better for orbt):")
  end
  for _, server in ipairs(servers) do
    for _, workload in ipairs(server.tls and {} or WORKLOADS) do
      local b = cpu_of(http_id(server, workload, ORBT))
      local c = cpu_of(http_id(server, workload, HAND_WRITTEN))
      local a1 = cpu_of(http_id(server, workload, C_FAIR))
      if b and c and a1 then
        line(("- %s, %s: orbt %s, (c) %s (%.2f×), (a') %s (%.2f×)"):format(workload.label, server.name,
          microseconds(b), microseconds(c), b / c, microseconds(a1), b / a1))
      end
    end
  end
  for _, server in ipairs(servers) do
    if server.tls then
      line("")
      tls_section(line, server)
    end
  end
  if syscalls then
    line("")
    syscall_table(line, parts.syscall_server, syscalls)
  end
  return concat(out, "\n") .. "\n"
end

-- ===== Main =====

local function main()
  local load_before = loadavg()
  -- A rough guess from runs on a 2-core machine: for each round 28 client
  -- runs (8 over TLS), 4 wrk runs, 4 runs of (e) at some 14 requests/s and
  -- 8 signing runs; then counting syscalls, and seeding the walk at ~7,000 creates/s.
  -- nginx at scale: four runs per round, each with its warm-up and start-up.
  local http_round = PARTS.http and (28 * (S.seconds + 0.1) + 4 * (S.wrk_seconds + 0.3) + 4 * S.cli_count / 14) or 0
  local sign_round = PARTS.sign and 8 * (S.sign_seconds + 0.05) or 0
  local seconds = S.rounds * (http_round + sign_round) + (PARTS.walk and S.walk_large / 7000 or 0)
    + (PARTS.scale and S.scale_rounds * 4 * (S.scale_seconds + 5) or 0)
    + (PARTS.hooks and 3 * S.hooks_rounds * S.hooks_requests / 4000 or 0) + 15
  progress(("%sabout %d s; BENCH_QUICK=1 for a smoke run"):format(
    (PARTS.http or PARTS.sign) and ("%d round(s), "):format(S.rounds) or "", floor(seconds)))
  local mock = start_mock("mock")
  -- 20 consumers for the GET page; then the answers nginx repeats are the
  -- ones orbt-mock gives, byte for byte.
  seed(mock.url, 1, 20, "seed")
  local page_status, page = raw_request(mock.url, "GET", LIST_TARGET, "")
  assert(is_2xx(page_status), "orbt-mock answered the page with " .. tostring(page_status))
  local created_status, created = raw_request(mock.url, "POST", PATH, create_body("canned", 1))
  assert(is_2xx(created_status), "orbt-mock answered the create with " .. tostring(created_status))
  local canned = { page = page, page_status = page_status, created = created, created_status = created_status }
  local nginx, nginx_tls
  if PARTS.http or S.syscalls or PARTS.hooks then
    nginx, nginx_tls = start_nginx(canned)
  end
  local servers = PARTS.http and { nginx, mock, nginx_tls } or {}

  if PARTS.http or PARTS.sign then
    for round = 1, S.rounds do
      if PARTS.http then run_http_round(servers, round) end
      if PARTS.sign then run_sign_round(round) end
    end
  end
  local syscalls = S.syscalls and run_syscalls(nginx) or nil
  local hooks = PARTS.hooks and run_hooks(nginx) or nil
  if nginx then stop(nginx.pid) end
  stop(mock.pid)
  local walk = PARTS.walk and run_walk() or {}
  local bulk = PARTS.bulk and run_bulk() or {}
  local scale = PARTS.scale and run_scale(canned) or {}

  local text = report{ servers = servers, syscalls = syscalls, syscall_server = nginx, walk = walk,
    load_before = load_before, bulk = bulk, scale = scale, hooks = hooks }
  -- The orbt command's import against create_customers (bench/cli_import.lua).
  local cli_failed = false
  if PARTS.cli then
    local pipe = assert(io.popen(LUA .. " " .. quote(BENCH .. "/cli_import.lua") .. " 2>&1; echo \"cli-status:$?\""))
    local out = pipe:read("a")
    pipe:close()
    cli_failed = not out:match("cli%-status:0%s*$")
    text = text .. "\n" .. out:gsub("cli%-status:%d+%s*$", "")
  end
  os.execute("mkdir -p " .. quote(OUT:match("^(.*)/[^/]+$") or "."))
  write_file(OUT, text)
  io.stdout:write("\n", text)
  io.stdout:write("\n(written to ", OUT, ")\n")
  for _, entry in pairs(results) do
    if entry.failed then return false end
  end
  for _, w in ipairs(walk) do
    if w.result.failed then return false end
  end
  for _, b in ipairs(bulk) do
    if b.result.failed then return false end
  end
  for _, row in ipairs(scale) do
    if row.result.failed then return false end
  end
  if cli_failed then return false end
  if hooks and hooks.failed then return false end
  return true
end

local ok, result = xpcall(main, debug.traceback)
for pid in pairs(started_pids) do
  stop(pid)
end
os.execute("rm -rf " .. quote(TMP))
if not ok then
  io.stderr:write("bench: ", tostring(result), "\n")
  os.exit(1)
end
if not result then
  io.stderr:write("bench: some runs failed; see FAILED in the table\n")
  os.exit(1)
end
