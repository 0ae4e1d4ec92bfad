-- orbt.cli.journal: an import's append-only record of what happened to each
-- row, so that a later run knows what is done.
--
-- One line per event, tab-separated, ending in a "." field so that a line
-- cut short by a crash is recognised and ignored:
--
--   LINE  HASH  STATE  ID  WALLET  REASON  .
--
-- STATE is "sent" (written, and synced, before the row's request leaves),
-- "done", "failed" (certainly not applied), "notsent" (certainly not
-- applied and worth sending again) or "unknown" (may have been applied).
-- The last complete line for a row wins. Every batch of lines is fsync'ed
-- before the import goes on.
local sys = require("orbt.cli.sys")

local M = {}
local Journal = {}
Journal.__index = Journal

local STATES = { sent = true, done = true, failed = true, notsent = true, unknown = true }
local MAGIC = "# orbt import journal 1 "

local function clean(s)
  return (tostring(s == nil and "" or s):gsub("[\t\r\n]", " "))
end

-- Opens (creating) the journal of an import of `kind` ("customers" or
-- "transactions"). Returns it, with .rows[line] = {hash, state, id, wallet,
-- reason} from earlier runs; or nil, message.
function M.open(path, kind)
  local rows = {}
  local f = io.open(path, "rb")
  local text = f and f:read("a") or ""
  if f then
    f:close()
  end
  if text ~= "" then
    local first = text:match("^[^\n]*")
    if first:sub(1, #MAGIC) ~= MAGIC then
      return nil, path .. " is not an orbt import journal"
    end
    local was = first:sub(#MAGIC + 1)
    if was ~= kind then
      return nil, ("%s is the journal of an import of %s, not %s"):format(path, was, kind)
    end
    for l in text:gmatch("\n([^\n]*)") do
      local line, hash, state, id, wallet, reason =
        l:match("^(%d+)\t([^\t]*)\t(%a+)\t([^\t]*)\t([^\t]*)\t([^\t]*)\t%.$")
      if line and STATES[state] then
        rows[tonumber(line)] = { hash = hash, state = state, id = id, wallet = wallet, reason = reason }
      end
    end
  end
  local out, err = sys.append_file(path)
  if not out then
    return nil, ("cannot write the journal %s: %s"):format(path, tostring(err))
  end
  local self = setmetatable({ path = path, rows = rows, out = out, pending = {} }, Journal)
  if text == "" then
    self.pending[1] = MAGIC .. kind .. "\n"
  elseif text:sub(-1) ~= "\n" then
    self.pending[1] = "\n" -- a line cut short stays on its own, and is ignored
  end
  return self
end

-- Queues one event; flush() writes and syncs the queue.
function Journal:record(line, hash, state, id, wallet, reason)
  local row = { hash = hash, state = state, id = id and tostring(id) or "", wallet = wallet and tostring(wallet) or "",
    reason = reason or "" }
  self.rows[line] = row
  local p = self.pending
  p[#p + 1] = ("%d\t%s\t%s\t%s\t%s\t%s\t.\n"):format(line, clean(hash), state, clean(row.id), clean(row.wallet),
    clean(row.reason))
end

function Journal:flush()
  if #self.pending == 0 then
    return true
  end
  local data = table.concat(self.pending)
  self.pending = {}
  local ok, err = self.out:write(data)
  if ok then
    ok, err = self.out:sync()
  end
  if not ok then
    return nil, ("cannot write the journal %s: %s"):format(self.path, tostring(err))
  end
  return true
end

function Journal:close()
  self.out:close()
end

return M
