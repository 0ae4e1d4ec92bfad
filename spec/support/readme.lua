-- support/readme.lua: the fenced blocks of README.md and docs/*.md, and how
-- spec/readme_spec.lua runs them. docs/development.md ("The documentation is
-- tested") states the conventions this file implements.
local mockserver = require("support.mock")
local shell = require("support.shell")

local M = {}

-- Blocks with these info strings are run; every other fence is only read.
M.RUN = { lua = true, sh = true, nginx = true }
-- How many blocks may carry a not-run marker, over all the documents.
M.MAX_SKIPPED = 8
-- Seconds one block may take before it counts as hanging.
M.LUA_SECONDS = 60
M.SH_SECONDS = 600 -- a block may run `make` on a fresh checkout

local MARK = "@@orbt-readme-check@@"

local function root()
  return (shell.run("pwd"):gsub("%s+$", ""))
end

M.ROOT = root()

-- README.md, then docs/*.md in name order.
function M.documents()
  local list = { "README.md" }
  for path in shell.run("ls docs/*.md 2>/dev/null"):gmatch("[^\n]+") do
    list[#list + 1] = path
  end
  return list
end

local function lines_of(text)
  local lines = {}
  for line in (text:gsub("\n$", "") .. "\n"):gmatch("(.-)\n") do
    lines[#lines + 1] = line
  end
  return lines
end

local function marker_reason(line)
  return line and line:match("^<!%-%- not run: (.-) %-%->%s*$")
end

-- The fenced blocks of one document: {file, line (of the opening fence),
-- lang (the info string's first word), text, skip (the marker's reason)},
-- and a list of problems (a marker not right before a run block, a fence
-- never closed).
function M.blocks(path)
  local lines = lines_of(assert(shell.read_file(path), "cannot read " .. path))
  local blocks, problems = {}, {}
  local i = 1
  while i <= #lines do
    local indent, fence, info = lines[i]:match("^( *)(```+)%s*(.-)%s*$")
    if fence and not info:find("`", 1, true) then
      local start = i
      local lang = info:match("^(%S+)") or ""
      local body = {}
      i = i + 1
      while i <= #lines and not lines[i]:match("^ *" .. fence .. "%s*$") do
        body[#body + 1] = lines[i]:sub(1, #indent):match("^ *$") and lines[i]:sub(#indent + 1) or lines[i]
        i = i + 1
      end
      if i > #lines then
        problems[#problems + 1] = ("%s:%d: this fence is never closed"):format(path, start)
      end
      local skip = marker_reason(lines[start - 1])
      if skip and not M.RUN[lang] then
        problems[#problems + 1] = ("%s:%d: a not-run marker before a %q block, which is never run")
          :format(path, start - 1, lang)
      end
      blocks[#blocks + 1] = { file = path, line = start, lang = lang, text = table.concat(body, "\n") .. "\n",
        skip = skip }
    elseif lines[i]:match("^%s*<!%-%- not run")
      and not (marker_reason(lines[i]) and (lines[i + 1] or ""):match("^ *```")) then
      problems[#problems + 1] = ("%s:%d: a not-run marker reads `<!-- not run: REASON -->`, on the line "
        .. "directly before a fence"):format(path, i)
    end
    i = i + 1
  end
  return blocks, problems
end

-- ===== Expected output =====

-- An expected line as a pattern: exact, except that "..." stands for any text.
local function line_pattern(text)
  local escaped = text:gsub("[%^%$%(%)%%%.%[%]%*%+%-%?]", "%%%0")
  return "^" .. escaped:gsub("%%%.%%%.%%%.", ".-") .. "$"
end

-- What a Lua block says it prints: the text after `-->` at the end of a
-- line, and the lines of a `-- result:` comment, in order.
function M.lua_expectations(text)
  local expected = {}
  local in_result = false
  for n, line in ipairs(lines_of(text)) do
    local comment = line:match("^%s*%-%-(.*)$")
    if in_result and comment and not comment:match("^%-") then
      expected[#expected + 1] = { text = comment:gsub("^ ", ""), line = n }
    else
      in_result = false
      if line:match("^%s*%-%- result:%s*$") then
        in_result = true
      else
        local after = line:match("%-%->(.*)$")
        if after then
          expected[#expected + 1] = { text = (after:gsub("^ ", ""):gsub("%s+$", "")), line = n }
        end
      end
    end
  end
  return expected
end

-- Checks that `output` holds each expected line, in order; other lines may
-- come between. Returns nil or a message.
local function check_lines(output, expected, where)
  local lines = lines_of(output)
  local at = 1
  for _, e in ipairs(expected) do
    local pattern = line_pattern(e.text)
    local found
    for j = at, #lines do
      if lines[j]:match(pattern) then
        found = j
        break
      end
    end
    if not found then
      return ("%s, line %d of the block: expected a line\n  %s\nin the output (after its line %d):\n%s")
        :format(where, e.line, e.text, at - 1, output)
    end
    at = found + 1
  end
  return nil
end

-- A sh block with a printed mark before each group of `# --> TEXT` lines, so
-- that each group is checked against the output of the commands before it.
local function sh_script(text)
  local out, groups = {}, {}
  local in_group = false
  for n, line in ipairs(lines_of(text)) do
    local expected = line:match("^%s*# %-%->(.*)$")
    if expected then
      if not in_group then
        out[#out + 1] = ("printf '\\n%%s\\n' '%s'"):format(MARK)
        groups[#groups + 1] = {}
        in_group = true
      end
      local group = groups[#groups]
      group[#group + 1] = { text = (expected:gsub("^ ", ""):gsub("%s+$", "")), line = n }
    else
      in_group = false
    end
    out[#out + 1] = line
  end
  return table.concat(out, "\n") .. "\n", groups
end

local function check_sh_output(output, groups, where)
  local segments, current = {}, {}
  for _, line in ipairs(lines_of(output)) do
    if line == MARK then
      segments[#segments + 1] = table.concat(current, "\n")
      current = {}
    else
      current[#current + 1] = line
    end
  end
  for k, group in ipairs(groups) do
    local segment = segments[k]
    if not segment then
      return ("%s: the block stopped before the check on its line %d"):format(where, group[1].line)
    end
    local problem = check_lines(segment, group, where)
    if problem then
      return problem
    end
  end
  return nil
end

-- ===== Running =====

local function where(block)
  return ("%s:%d (%s block)"):format(block.file, block.line, block.lang)
end
M.where = where

local function assignments(env)
  local names = {}
  for name in pairs(env) do
    names[#names + 1] = name
  end
  table.sort(names)
  local parts = {}
  for _, name in ipairs(names) do
    parts[#parts + 1] = name .. "=" .. shell.quote(env[name])
  end
  return table.concat(parts, " ")
end

-- What the spec run has in its environment that a user's shell would not:
-- make exports the variables given on its command line (`make test
-- SANITIZE=1`), so a block's own `make` would build something else.
local UNSET = { "MAKEFLAGS", "MFLAGS", "MAKELEVEL", "MAKEOVERRIDES", "SANITIZE", "RUNTIME", "RUNTIMES", "TOP",
  "CC", "BUSTED", "FUZZ_SECONDS", "LUA_PATH", "LUA_CPATH", "LUA_INIT",
  "LUA_PATH_5_2", "LUA_PATH_5_3", "LUA_PATH_5_4", "LUA_CPATH_5_2", "LUA_CPATH_5_3", "LUA_CPATH_5_4",
  "LUA_INIT_5_2", "LUA_INIT_5_3", "LUA_INIT_5_4", "LUA", "ORBT_BUILD", "ORBT_MOCK", "ORBT_RUNTIME",
  "ORBT_MAKE_ARGS", "ORBT_LUA_PRELOAD", "ORBT_API_KEY", "ORBT_CLIENT_ID", "ORBT_SECRET", "ORBT_BASE_URL" }

local function clean_env_prefix()
  local parts = { "env" }
  for _, name in ipairs(UNSET) do
    parts[#parts + 1] = "-u " .. name
  end
  return table.concat(parts, " ")
end

local function sanitizer_env()
  local preload = os.getenv("ORBT_LUA_PRELOAD")
  if preload and preload ~= "" then
    return { LD_PRELOAD = preload, ASAN_OPTIONS = "detect_leaks=0" }
  end
  return {}
end

local function build_dir()
  return assert(os.getenv("ORBT_BUILD"), "ORBT_BUILD names the module's build directory")
end

-- A fresh orbt-mock as examples/run-with-mock.sh starts one (its partner
-- balance is 1000.00), and the variables a block reads to reach it.
function M.start_mock()
  local mock = mockserver.start{ balance = "1000.00" }
  return mock, { ORBT_API_KEY = mock.api_key, ORBT_CLIENT_ID = mock.client_id, ORBT_SECRET = mock.secret,
    ORBT_BASE_URL = mock.url }
end

-- Runs a lua block as a script with the runtime under test, in a fresh
-- temporary directory, against a fresh orbt-mock, with LUA_PATH and
-- LUA_CPATH as the README tells a user. Returns nil or a message.
function M.run_lua(block)
  local dir = shell.tmpdir()
  shell.write_file(dir .. "/block.lua", block.text)
  local mock, env = M.start_mock()
  env.LUA_PATH = M.ROOT .. "/lua/?.lua;;"
  env.LUA_CPATH = build_dir() .. "/?.so;;"
  for k, v in pairs(sanitizer_env()) do
    env[k] = v
  end
  if env.LD_PRELOAD then
    -- The sanitizer runtimes are for the interpreter only: a curl the block
    -- starts must not inherit them (curl hangs with them preloaded).
    assert(shell.exec("mkdir " .. shell.quote(dir .. "/bin")))
    local curl = shell.run("command -v curl"):gsub("%s+$", "")
    shell.write_file(dir .. "/bin/curl", ("#!/bin/sh\nunset LD_PRELOAD\nexec %s \"$@\"\n"):format(curl))
    assert(shell.exec("chmod +x " .. shell.quote(dir .. "/bin/curl")))
    env.PATH = dir .. "/bin:" .. (os.getenv("PATH") or "/usr/bin:/bin")
  end
  local cmd = ("cd %s && %s %s timeout %d %s block.lua 2>stderr"):format(shell.quote(dir), clean_env_prefix(),
    assignments(env), M.LUA_SECONDS, os.getenv("LUA") or "lua5.4")
  local output, ok = shell.run(cmd)
  local stderr = shell.read_file(dir .. "/stderr") or ""
  shell.exec("rm -rf " .. shell.quote(dir))
  local cleaned, why = pcall(mock.cleanup, mock)
  if not ok then
    return ("%s failed:\n%s\n%s"):format(where(block), output, stderr)
  end
  if not cleaned then
    return ("%s: orbt-mock: %s"):format(where(block), tostring(why))
  end
  return check_lines(output, M.lua_expectations(block.text), where(block))
end

-- A temporary directory that looks like the checkout: a symlink to each of
-- its top-level entries.
local function checkout_copy()
  local dir = shell.tmpdir()
  assert(shell.exec(("for f in %s/*; do ln -s \"$f\" %s/; done"):format(shell.quote(M.ROOT), shell.quote(dir))))
  return dir
end

-- Runs a sh block with `sh -e` in a directory that looks like the checkout.
-- opts.env: variables to set; opts.subst: {from, to} pairs replaced in the
-- text first. Returns nil or a message.
function M.run_sh(block, opts)
  opts = opts or {}
  local text = block.text
  for _, pair in ipairs(opts.subst or {}) do
    text = M.replace(text, pair[1], pair[2])
  end
  local script, groups = sh_script(text)
  local dir = checkout_copy()
  shell.write_file(dir .. "/block.sh", script)
  local cmd = ("cd %s && %s %s timeout %d sh -e block.sh 2>block.stderr"):format(shell.quote(dir),
    clean_env_prefix(), assignments(opts.env or {}), M.SH_SECONDS)
  local output, ok = shell.run(cmd)
  local stderr = shell.read_file(dir .. "/block.stderr") or ""
  shell.exec("rm -rf " .. shell.quote(dir))
  if not ok then
    return ("%s failed:\n%s\n%s"):format(where(block), output:gsub("\n?" .. MARK, ""), stderr)
  end
  return check_sh_output(output, groups, where(block))
end

-- Plain text replacement (no patterns).
function M.replace(text, from, to)
  local out, at = {}, 1
  while true do
    local s, e = text:find(from, at, true)
    if not s then
      break
    end
    out[#out + 1] = text:sub(at, s - 1)
    out[#out + 1] = to
    at = e + 1
  end
  out[#out + 1] = text:sub(at)
  return table.concat(out)
end

-- ===== nginx =====

-- The README's nginx.conf names these; a run puts the real values in.
M.NGINX_CHECKOUT = "/opt/orbt"
M.NGINX_ADDRESS = "127.0.0.1:8080"

local function nameserver()
  local conf = shell.read_file("/etc/resolv.conf") or ""
  return conf:match("\nnameserver%s+(%S+)") or conf:match("^nameserver%s+(%S+)")
end

-- The substitutions for an nginx block (and for the sh block run against
-- it): the checkout, the module under test, a free port, the machine's
-- nameserver, and `user root;` when run as root.
local function nginx_substitutions(port)
  local subst = {
    { M.NGINX_CHECKOUT .. "/build/luajit", build_dir() },
    { M.NGINX_CHECKOUT, M.ROOT },
    { M.NGINX_ADDRESS, "127.0.0.1:" .. port },
  }
  return subst
end

local function nginx_conf(text, port)
  for _, pair in ipairs(nginx_substitutions(port)) do
    text = M.replace(text, pair[1], pair[2])
  end
  local ns = nameserver()
  if ns then
    text = text:gsub("\n(%s*)resolver%s+%S+", "\n%1resolver " .. ns:gsub("%%", "%%%%"), 1)
  end
  if shell.run("id -u"):gsub("%s", "") == "0" then
    -- As root the workers would run as nobody, which may not read the
    -- checkout; the spec keeps them root, on loopback.
    text = "user root;\n" .. text
  end
  return text
end

-- Levels of nginx's log that fail a run: a warning too (a global variable
-- written from a handler is one).
local BAD_LOG = { "warn", "error", "crit", "alert", "emerg" }

-- The path asked for until nginx answers; its 404 is not held against the
-- configuration.
local PROBE = "/orbt-readme-probe"

local stop_process = shell.stop_process

local Nginx = {}
Nginx.__index = Nginx

-- Starts the nginx block's configuration with `nginx -p DIR -e stderr -c
-- DIR/nginx.conf`, its environment `env`. Returns the server, or nil and a
-- message.
function M.start_nginx(block, env)
  local dir = shell.tmpdir()
  local vars = sanitizer_env()
  for k, v in pairs(env) do
    vars[k] = v
  end
  local log = ""
  for _ = 1, 5 do
    local port = shell.random_port()
    shell.write_file(dir .. "/nginx.conf", nginx_conf(block.text, port))
    os.remove(dir .. "/stderr")
    os.remove(dir .. "/pid")
    local q = shell.quote(dir)
    -- One simple command in the background, so that $! is nginx's master.
    local start = ("%s %s nginx -p %s -e stderr -c %s/nginx.conf >%s/stdout 2>%s/stderr & echo $! >%s/pid")
      :format(clean_env_prefix(), assignments(vars), q, q, q, q, q)
    shell.exec("sh -c " .. shell.quote(start) .. " >/dev/null 2>&1")
    local self = setmetatable({ dir = dir, port = port, block = block }, Nginx)
    self.pid = tonumber(shell.wait_for(function()
      return (shell.read_file(dir .. "/pid") or ""):match("%d+")
    end, 10))
    local state = shell.wait_for(function()
      local _, answered = shell.run(("curl -s -o /dev/null --max-time 1 http://127.0.0.1:%d%s"):format(port, PROBE))
      if answered then
        return "up"
      end
      if not self.pid or not shell.running(self.pid) then
        return "gone"
      end
      return nil
    end, 15)
    if state == "up" then
      return self
    end
    log = self:log()
    self:stop()
    if not log:find("Address already in use", 1, true) then
      break
    end
  end
  shell.exec("rm -rf " .. shell.quote(dir))
  return nil, ("%s: nginx did not start:\n%s"):format(where(block), log)
end

function Nginx:log()
  return (shell.read_file(self.dir .. "/stderr") or "") .. (shell.read_file(self.dir .. "/stdout") or "")
end

function Nginx:substitutions()
  return nginx_substitutions(self.port)
end

-- Stops nginx, always: TERM, then KILL if it is still there.
function Nginx:stop()
  if self.pid then
    if not stop_process(self.pid, "TERM", 10) then
      stop_process(self.pid, "KILL", 5)
    end
    self.pid = nil
  end
end

-- Stops nginx and removes its directory; returns nil or a message naming
-- the lines of its log at level warn or above.
function Nginx:finish()
  self:stop()
  local log = self:log()
  shell.exec("rm -rf " .. shell.quote(self.dir))
  local bad = {}
  for line in log:gmatch("[^\n]+") do
    for _, level in ipairs(BAD_LOG) do
      if line:find("[" .. level .. "]", 1, true) and not line:find(PROBE, 1, true) then
        bad[#bad + 1] = line
        break
      end
    end
  end
  if #bad > 0 then
    return ("%s: nginx logged:\n%s"):format(where(self.block), table.concat(bad, "\n"))
  end
  return nil
end

return M
