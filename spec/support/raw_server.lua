-- raw_server.lua SCENARIO LOG: a loopback HTTP server that answers with
-- exactly the bytes a scenario gives, for the specs of orbt's HTTP/1.1
-- framing: answers split into pieces, interim answers, bodies that run to
-- the close, broken framing, connections closed at the worst moment.
--
-- SCENARIO is a Lua file returning a list of steps, one per request in the
-- order they arrive (and `default` for the rest). A step: bytes (sent as
-- the answer), pieces (send them this many bytes at a time, 1 ms apart),
-- close (close the connection after the step), hold (seconds to wait before
-- answering), later (bytes sent unasked 50 ms after the answer). LOG gets "connection N" per accepted connection,
-- "request N <request line>" and "agent N <User-Agent>" per request read. It runs with LuaSocket, one
-- connection at a time (the specs' clients are sequential), and exits after
-- 60 s without a connection.
local socket = require("socket")

local scenario = dofile(arg[1])
local log = assert(io.open(arg[2], "a"))
log:setvbuf("line")

local server = assert(socket.bind("127.0.0.1", 0))
server:settimeout(60)
local _, port = server:getsockname()
io.stdout:write("listening on http://127.0.0.1:", port, "\n")
io.stdout:flush()

-- Reads one request (line, header, Content-Length body); nil at the close.
-- Returns the request line and the User-Agent.
local function read_request(conn)
  local first = conn:receive("*l")
  if not first then return nil end
  local length, agent = 0, ""
  while true do
    local line = conn:receive("*l")
    if not line then return nil end
    if line == "" then break end
    local n = line:lower():match("^content%-length:%s*(%d+)")
    if n then length = tonumber(n) end
    agent = line:match("^[Uu]ser%-[Aa]gent:%s*(.*)$") or agent
  end
  if length > 0 and not conn:receive(length) then return nil end
  return first, agent
end

local function answer(conn, step)
  if step.hold then socket.sleep(step.hold) end
  local bytes = step.bytes or ""
  local piece = step.pieces or #bytes
  for i = 1, #bytes, math.max(piece, 1) do
    conn:send(bytes:sub(i, i + piece - 1))
    if step.pieces then socket.sleep(0.001) end
  end
  if step.later then
    socket.sleep(0.05)
    conn:send(step.later)
  end
end

local requests, connections = 0, 0
while true do
  local conn = server:accept()
  if not conn then break end
  connections = connections + 1
  log:write("connection ", connections, "\n")
  conn:settimeout(30)
  conn:setoption("tcp-nodelay", true)
  while true do
    local line, agent = read_request(conn)
    if not line then break end
    requests = requests + 1
    log:write("request ", requests, " ", line, "\n")
    log:write("agent ", requests, " ", agent, "\n")
    local step = scenario[requests] or scenario.default or { close = true }
    answer(conn, step)
    if step.close then break end
  end
  conn:close()
end
