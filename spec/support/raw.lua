-- support/raw.lua: starts spec/support/raw_server.lua with a scenario and
-- reads back what it saw. See raw_server.lua for the scenario's steps.
local shell = require("support.shell")

local M = {}
local Raw = {}
Raw.__index = Raw

local function spec_dir()
  local source = debug.getinfo(1, "S").source:sub(2)
  return (source:match("^(.*)/support/[^/]+$") or "spec")
end

-- A complete answer: status line, header lines, body with its length.
function M.answer(status, body, headers)
  local lines = { "HTTP/1.1 " .. status }
  for _, h in ipairs(headers or {}) do lines[#lines + 1] = h end
  if body then lines[#lines + 1] = "Content-Length: " .. #body end
  return table.concat(lines, "\r\n") .. "\r\n\r\n" .. (body or "")
end

-- body in chunks of `size` bytes; extension (";ext=1") after each size and
-- trailer lines ("X-Trailer: 1\r\n") before the end, when given.
function M.chunked(body, size, extension, trailer)
  local parts = {}
  for i = 1, #body, size do
    local piece = body:sub(i, i + size - 1)
    parts[#parts + 1] = ("%x%s\r\n%s\r\n"):format(#piece, extension or "", piece)
  end
  return table.concat(parts) .. "0\r\n" .. (trailer or "") .. "\r\n"
end

M.PAGE = '{"content":[{"id":7,"fullName":"A B"}],"page":0,"size":20,"hasNext":false}'
M.CREATED = '{"data":{"id":8,"fullName":"A B","email":"a@b.io"}}'

function M.start(scenario_source)
  local self = setmetatable({ dir = shell.tmpdir() }, Raw)
  local f = assert(io.open(self.dir .. "/scenario.lua", "w"))
  f:write(scenario_source)
  f:close()
  local server = spec_dir() .. "/support/raw_server.lua"
  local d = self.dir
  local script = ("lua5.4 %s %s/scenario.lua %s/log >%s/out 2>%s/err & echo $! >%s/pid")
    :format(shell.quote(server), d, d, d, d, d)
  shell.exec("sh -c " .. shell.quote(script) .. " >/dev/null 2>&1")
  self.url = shell.wait_for(function()
    return (shell.read_file(d .. "/out") or ""):match("listening on (http://[%d.:]+)")
  end, 10)
  assert(self.url, "raw_server did not start: " .. tostring(shell.read_file(d .. "/err")))
  self.pid = tonumber(shell.wait_for(function()
    return (shell.read_file(d .. "/pid") or ""):match("%d+")
  end, 10))
  return self
end

-- What the server saw: connections accepted, request lines and User-Agents read.
function Raw:seen()
  local log = shell.read_file(self.dir .. "/log") or ""
  local seen = { connections = 0, requests = {}, agents = {} }
  for line in log:gmatch("[^\n]+") do
    if line:match("^connection ") then
      seen.connections = seen.connections + 1
    elseif line:match("^agent ") then
      seen.agents[#seen.agents + 1] = line:match("^agent %d+ (.*)$")
    else
      seen.requests[#seen.requests + 1] = line:match("^request %d+ (.*)$")
    end
  end
  return seen
end

function Raw:cleanup()
  if self.pid then shell.exec("kill " .. self.pid .. " 2>/dev/null") end
  shell.exec("rm -rf " .. shell.quote(self.dir))
end

return M
