-- support/cli.lua: runs the orbt command (bin/orbt) as a user would, in a
-- process of its own, with this run's module and Lua layer, against a mock.
--
--   local out, err, code = cli.run({ "customers", "list" }, { mock = env.mock })
--
-- opts: mock (its ORBT_* variables are set), env (more variables; false
-- unsets one), dir (working directory; default a fresh one per call),
-- stdin (text), inherit (true: ORBT_* variables come from the calling
-- shell). Otherwise ORBT_* and proxy variables of the spec run are never
-- inherited, and XDG_CONFIG_HOME points to an empty directory unless env
-- sets it.
local shell = require("support.shell")

local M = {}

M.ROOT = (shell.run("pwd"):gsub("%s+$", ""))

local INHERITED = { "ORBT_API_KEY", "ORBT_CLIENT_ID", "ORBT_SECRET", "ORBT_BASE_URL", "ORBT_PROFILE", "http_proxy",
  "https_proxy", "HTTPS_PROXY", "all_proxy", "ALL_PROXY", "no_proxy", "NO_PROXY" }

local empty_config

-- The command line that runs `orbt ARGS` with the given variables.
function M.command(args, opts)
  opts = opts or {}
  local vars = {}
  if opts.mock then
    vars.ORBT_API_KEY, vars.ORBT_CLIENT_ID = opts.mock.api_key, opts.mock.client_id
    vars.ORBT_SECRET, vars.ORBT_BASE_URL = opts.mock.secret, opts.mock.url
  end
  if not empty_config then
    empty_config = shell.tmpdir()
  end
  vars.XDG_CONFIG_HOME = empty_config
  for k, v in pairs(opts.env or {}) do
    vars[k] = v
  end
  local parts = { "env" }
  for _, name in ipairs(opts.inherit and {} or INHERITED) do
    parts[#parts + 1] = "-u " .. name
  end
  local preload = os.getenv("ORBT_LUA_PRELOAD")
  if preload and preload ~= "" then
    vars.LD_PRELOAD, vars.ASAN_OPTIONS = preload, "detect_leaks=0"
  end
  vars.LUA_PATH = M.ROOT .. "/lua/?.lua;;"
  vars.LUA_CPATH = assert(os.getenv("ORBT_BUILD"), "ORBT_BUILD names the module's build directory") .. "/?.so;;"
  local names = {}
  for k in pairs(vars) do
    names[#names + 1] = k
  end
  table.sort(names)
  for _, k in ipairs(names) do
    if vars[k] ~= false then
      parts[#parts + 1] = k .. "=" .. shell.quote(vars[k])
    end
  end
  parts[#parts + 1] = "lua5.4 " .. shell.quote(M.ROOT .. "/bin/orbt")
  for _, a in ipairs(args) do
    parts[#parts + 1] = shell.quote(a)
  end
  return table.concat(parts, " ")
end

-- Runs it to the end: stdout, stderr, exit code.
function M.run(args, opts)
  opts = opts or {}
  local dir = opts.dir or shell.tmpdir()
  local io_dir = shell.tmpdir()
  local stdin = "/dev/null"
  if opts.stdin then
    stdin = io_dir .. "/stdin"
    shell.write_file(stdin, opts.stdin)
  end
  local out = shell.run(("cd %s && %s <%s >%s/out 2>%s/err; echo $?"):format(shell.quote(dir), M.command(args, opts),
    stdin, io_dir, io_dir))
  local stdout, stderr = shell.read_file(io_dir .. "/out") or "", shell.read_file(io_dir .. "/err") or ""
  shell.exec("rm -rf " .. shell.quote(io_dir))
  if not opts.dir then
    shell.exec("rm -rf " .. shell.quote(dir))
  end
  return stdout, stderr, tonumber(out:match("(%d+)%s*$"))
end

-- Starts it in the background in opts.dir: {pid =, dir =}; M.wait reads
-- its exit code and output.
function M.start(args, opts)
  local dir = assert(opts.dir, "start needs a dir")
  local proc = { dir = dir }
  -- A simple command in the background: $! is the command's own pid.
  local script = ("cd %s || exit 1; %s </dev/null >%s/.cli-out 2>%s/.cli-err & echo $! >%s/.cli-pid; wait $!; "
    .. "echo $? >%s/.cli-status"):format(shell.quote(dir), M.command(args, opts), dir, dir, dir, dir)
  os.remove(dir .. "/.cli-status")
  os.remove(dir .. "/.cli-pid")
  shell.exec("sh -c " .. shell.quote(script) .. " >/dev/null 2>&1 &")
  proc.pid = tonumber(shell.wait_for(function()
    return (shell.read_file(dir .. "/.cli-pid") or ""):match("%d+")
  end, 10))
  return proc
end

function M.wait(proc, seconds)
  local status = shell.wait_for(function()
    return (shell.read_file(proc.dir .. "/.cli-status") or ""):match("%d+")
  end, seconds or 60)
  return tonumber(status), shell.read_file(proc.dir .. "/.cli-out") or "", shell.read_file(proc.dir .. "/.cli-err")
    or ""
end

function M.signal(proc, name)
  shell.exec(("kill -%s %d 2>/dev/null"):format(name, proc.pid))
end

-- The journal's rows by their last state: {done = n, ...}, and the rows.
function M.journal_states(path)
  local states, rows = {}, {}
  for line, state in (shell.read_file(path) or ""):gmatch("\n(%d+)\t[^\t]*\t(%a+)\t[^\n]*\t%.") do
    rows[line] = state
  end
  for _, state in pairs(rows) do
    states[state] = (states[state] or 0) + 1
  end
  return states, rows
end

-- Writes a CSV file (a list of lists) as the command's own writer does.
function M.write_csv(path, records)
  local csv = require("orbt.cli.csv")
  local f = assert(io.open(path, "wb"))
  for _, r in ipairs(records) do
    f:write(csv.line(r))
  end
  f:close()
end

return M
