-- orbt.cli.progress: an import's progress on stderr. "bar" redraws one line
-- in place (a terminal), "plain" writes a line every 5 seconds (a log),
-- "none" is quiet.
local sys = require("orbt.cli.sys")

local M = {}
local Progress = {}
Progress.__index = Progress

M.PLAIN_EVERY = 5
local BAR_EVERY = 0.1
local WIDTH = 24

-- total: rows the run will have done when it finishes; done: already done.
function M.new(mode, total, done, stream)
  local now = sys.now()
  return setmetatable({ mode = mode, total = total, done = done, start_done = done, failed = 0,
    started = now, last = -math.huge, stream = stream or io.stderr }, Progress)
end

local function clock(seconds)
  seconds = math.floor(seconds + 0.5)
  if seconds >= 3600 then
    return ("%d:%02d:%02d"):format(seconds // 3600, seconds % 3600 // 60, seconds % 60)
  end
  return ("%d:%02d"):format(seconds // 60, seconds % 60)
end

function Progress:figures()
  local elapsed = sys.now() - self.started
  local moved = self.done - self.start_done
  local rate = elapsed > 0 and moved / elapsed or 0
  local left = self.total - self.done
  local eta = rate > 0 and clock(left / rate) or "--:--"
  return rate, eta
end

function Progress:draw(final)
  local rate, eta = self:figures()
  if self.mode == "bar" then
    local filled = self.total > 0 and math.floor(WIDTH * self.done / self.total) or WIDTH
    self.stream:write(("\r\27[K[%s%s] %d/%d  %.0f rows/s  ETA %s  %d failed"):format(("#"):rep(filled),
      ("."):rep(WIDTH - filled), self.done, self.total, rate, eta, self.failed), final and "\n" or "")
  else
    self.stream:write(("orbt: %d/%d rows, %.0f rows/s, ETA %s, %d failed\n"):format(self.done, self.total, rate,
      eta, self.failed))
  end
  self.stream:flush()
end

-- Called as rows complete: n more done, f more failed among them.
function Progress:update(n, f)
  self.done = self.done + n
  self.failed = self.failed + (f or 0)
  if self.mode == "none" then
    return
  end
  local now = sys.now()
  local every = self.mode == "bar" and BAR_EVERY or M.PLAIN_EVERY
  if now - self.last >= every then
    self.last = now
    self:draw(false)
  end
end

function Progress:finish()
  if self.mode == "bar" then
    self:draw(true)
  elseif self.mode == "plain" then
    self:draw(false)
  end
end

return M
