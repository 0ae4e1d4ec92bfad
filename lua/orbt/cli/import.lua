-- orbt.cli.import: `orbt import customers|transactions FILE.csv`. Reads the
-- whole file, validates every row before anything is sent, then sends the
-- rows through create_customers / create_transactions in batches, recording
-- each row's outcome in an fsync'ed journal, so that a later run with the
-- same file does only what is left and nothing is ever applied twice.
local orbt = require("orbt")
local csv = require("orbt.cli.csv")
local journal = require("orbt.cli.journal")
local output = require("orbt.cli.output")
local progress = require("orbt.cli.progress")
local sys = require("orbt.cli.sys")

local M = {}

M.KINDS = {
  customers = {
    op = "create_customer", bulk = "create_customers", noun = "created",
    columns = { "fullName", "email", "currency", "initialFunds" },
    required = { fullName = true, email = true, currency = true, initialFunds = true },
    results = { "id", "walletId" },
  },
  transactions = {
    op = "create_transaction", bulk = "create_transactions", noun = "applied",
    columns = { "walletId", "amount", "transactionType", "referenceId", "description" },
    required = { walletId = true, amount = true, transactionType = true },
    results = { "transactionId" },
  },
}

-- A batch holds this many rows per unit of concurrency: big enough that the
-- batch boundary costs little, small enough that a drain after Ctrl-C is quick.
M.BATCH_PER_SLOT = 32
-- Rounds of "resolve the unknown outcomes, send again what was not applied".
M.ROUNDS = 3

-- FNV-1a (64 bits) of s, in hex: the journal's row hash, which only has to
-- notice that a row changed, and costs a fraction of a SHA-256 per row.
local function fnv1a(s)
  local h = -3750763034362895579 -- the FNV offset basis, 0xcbf29ce484222325
  for i = 1, #s do
    h = (h ~ s:byte(i)) * 1099511628211
  end
  return ("%016x"):format(h)
end

-- SHA-256 of s, Base64: the body hash orbt.sign computes for a request.
local function sha256(s)
  local h = assert(orbt.sign{ method = "POST", body = s, client_id = "journal", api_key = "journal",
    secret = "journal", timestamp = "2026-01-01T00:00:00.000Z" })
  return h["x-body-hash"]
end

-- ===== reading and validating =====

local function header_problem(kind, header)
  local spec = M.KINDS[kind]
  local known, seen = {}, {}
  for _, c in ipairs(spec.columns) do
    known[c] = true
  end
  local problems = {}
  for _, name in ipairs(header) do
    if not known[name] then
      problems[#problems + 1] = ("unknown column %q"):format(name)
    elseif seen[name] then
      problems[#problems + 1] = ("column %q appears twice"):format(name)
    end
    seen[name] = true
  end
  for _, c in ipairs(spec.columns) do
    if spec.required[c] and not seen[c] then
      problems[#problems + 1] = ("missing column %q"):format(c)
    end
  end
  if #problems == 0 then
    return nil
  end
  return ("%s; the header is: %s; an import of %s takes: %s (%s optional)"):format(table.concat(problems, ", "),
    table.concat(header, ","), kind, table.concat(spec.columns, ","),
    kind == "transactions" and "referenceId and description" or "none")
end

-- Parses and maps the file's rows. Returns {header =, rows = {...}} where a
-- row is {line =, values = {column = text}, item = call argument, hash =,
-- problem = text when it cannot be an item}; or nil, message.
function M.read(kind, path)
  local text, err = sys.read_file(path)
  if not text then
    return nil, err
  end
  local records, perr = csv.parse(text)
  if not records then
    return nil, ("%s:%d: %s"):format(path, perr.line, perr.message)
  end
  if #records == 0 then
    return nil, path .. ": no header row"
  end
  local header = records[1]
  local problem = header_problem(kind, header)
  if problem then
    return nil, ("%s:%d: %s"):format(path, header.line, problem)
  end
  local spec = M.KINDS[kind]
  local rows, occurrences = {}, {}
  for r = 2, #records do
    local rec = records[r]
    local row = { line = rec.line, values = {} }
    if #rec ~= #header then
      row.problem = ("%d fields where the header has %d"):format(#rec, #header)
    end
    for i, name in ipairs(header) do
      row.values[name] = rec[i] or ""
    end
    local canon = {}
    for i, c in ipairs(spec.columns) do
      canon[i] = row.values[c] or ""
    end
    row.hash = fnv1a(table.concat(canon, "\0"))
    local v = row.values
    if kind == "customers" then
      row.item = { fullName = v.fullName, email = v.email, currency = v.currency, initialFunds = v.initialFunds }
    else
      row.item = { walletId = v.walletId, amount = v.amount, transactionType = v.transactionType,
        referenceId = v.referenceId, description = v.description }
      if (v.description or "") == "" then
        row.item.description = nil
      end
      if (v.referenceId or "") == "" then
        -- From the content and its occurrence among identical rows: the
        -- same file gives the same ids, so a rerun never pays twice.
        local content = table.concat({ v.walletId, v.amount, v.transactionType, v.description or "" }, "\0")
        occurrences[content] = (occurrences[content] or 0) + 1
        local digest = sha256(content):sub(1, 22):gsub("[+/]", { ["+"] = "-", ["/"] = "_" })
        row.item.referenceId = ("orbt-%s-%d"):format(digest, occurrences[content])
        row.derived_ref = true
      end
    end
    rows[#rows + 1] = row
  end
  return { header = header, rows = rows }
end

-- Checks every row with the core's own rules, sending nothing: each bad
-- row gets .problem = "column FIELD: reason".
function M.validate(kind, rows)
  local spec = M.KINDS[kind]
  local client = assert(orbt.new{ api_key = "validate", client_id = "validate", secret = "validate",
    base_url = "http://127.0.0.1:9" })
  local items, index = {}, {}
  for _, row in ipairs(rows) do
    if not row.problem then
      items[#items + 1] = row.item
      index[#items] = row
    end
  end
  local _, _, _, results = client:_bulk_plan(spec.op, items, {})
  for i, r in pairs(results or {}) do
    if orbt.is_error(r) then
      local row = index[i]
      local msg = r.message or tostring(r)
      row.problem = r.field and ("column %s: %s"):format(r.field, msg) or msg
    end
  end
  client:close()
end

-- ===== sending =====

local function outcome_of(err)
  if err.maybe_applied then
    return "unknown"
  elseif err.reason == "authentication" or err.kind == "network" or err.kind == "timeout" or err.retryable then
    return "notsent"
  end
  return "failed"
end

local function reason_of(err)
  return err.reason or err.kind or "error"
end

local Run = {}
Run.__index = Run

-- Sends rows (a list) in batches; returns false when the run must stop.
function Run:send(rows)
  local spec = M.KINDS[self.kind]
  local batch = self.concurrency * M.BATCH_PER_SLOT
  local at = 1
  while at <= #rows do
    sys.poll()
    if self.stop then
      return false
    end
    local items, chunk = {}, {}
    for i = at, math.min(at + batch - 1, #rows) do
      local row = rows[i]
      chunk[#chunk + 1] = row
      items[#items + 1] = row.item
      self.journal:record(row.line, row.hash, "sent")
    end
    at = at + #chunk
    local ok, err = self.journal:flush()
    if not ok then
      self:fatal(err, 2)
      return false
    end
    local results, failures = self.client[spec.bulk](self.client, items, { concurrency = self.concurrency })
    if not results then
      self:fatal(tostring(failures), 2)
      return false
    end
    local failed, down, auth = 0, 0, false
    for i, row in ipairs(chunk) do
      local r = results[i]
      if orbt.is_error(r) then
        local state, reason = outcome_of(r), reason_of(r)
        row.state, row.reason = state, reason
        self.journal:record(row.line, row.hash, state, nil, nil, reason)
        if state == "unknown" then
          self.unknown[#self.unknown + 1] = row
        elseif state == "failed" then
          failed = failed + 1
        end
        if r.kind == "network" or r.kind == "timeout" then
          down = down + 1
        end
        auth = auth or r.reason == "authentication"
        self.last_error = r
      else
        row.state, row.reason = "done", ""
        if self.kind == "customers" then
          row.id, row.wallet = r.id, r.walletId
        else
          row.id = r.transactionId
        end
        row.result = r
        self.journal:record(row.line, row.hash, "done", row.id, row.wallet)
        self.counts.done = self.counts.done + 1
      end
    end
    ok, err = self.journal:flush()
    if not ok then
      self:fatal(err, 2)
      return false
    end
    self:advance(chunk, failed)
    if auth then
      self:fatal("the server refused the credentials: " .. tostring(self.last_error), 3)
      return false
    elseif down == #chunk then
      self:fatal("every request of a batch failed to reach the server: " .. tostring(self.last_error), 4)
      return false
    end
  end
  return true
end

-- The progress counts each row once, the first time it has an outcome.
function Run:advance(rows, failed)
  local n = 0
  for _, row in ipairs(rows) do
    if not row.counted then
      row.counted, n = true, n + 1
    end
  end
  self.progress:update(n, failed)
end

function Run:fatal(message, code)
  if not self.exit_code then
    self.exit_code, self.message = code, message
  end
  self.stop = self.stop or "error"
end

-- Every consumer's id by email, walking the whole list once.
local function consumers_by_email(client)
  local last
  for _ = 1, 3 do
    local by_email = {}
    local ok, err = pcall(function()
      for c in client:customers{ size = 50 } do
        local list = by_email[c.consumerEmail] or {}
        list[#list + 1] = c.consumerId
        by_email[c.consumerEmail] = list
      end
    end)
    if ok then
      return by_email
    end
    last = err
  end
  return nil, last
end

-- Customers whose create may have been applied: found by email (with a
-- STANDARD wallet in the row's currency) they are done; not found, they go
-- back into `again` to be sent. Returns again, or nil when the list could
-- not be read (they stay unknown).
function Run:resolve_customers(rows)
  local by_email, err = consumers_by_email(self.client)
  if not by_email then
    self.resolve_error = err
    return nil
  end
  local again = {}
  for _, row in ipairs(rows) do
    local found
    for _, id in ipairs(by_email[row.item.email] or {}) do
      local ok, walked = pcall(function()
        for w in self.client:wallets(id, { size = 50 }) do
          if w.walletType == "STANDARD" and w.currency == row.item.currency then
            return w.walletId
          end
        end
      end)
      if ok and walked then
        found = { id = id, wallet = walked }
        break
      elseif not ok then
        self.resolve_error = walked
        return nil
      end
    end
    if found then
      row.state, row.id, row.wallet, row.reason = "done", found.id, found.wallet, ""
      self.journal:record(row.line, row.hash, "done", found.id, found.wallet, "resolved")
      self.counts.resolved_found = self.counts.resolved_found + 1
      self.counts.done = self.counts.done + 1
      self:advance({ row }, 0)
    else
      again[#again + 1] = row
      self.counts.resolved_again = self.counts.resolved_again + 1
    end
  end
  local ok, ferr = self.journal:flush()
  if not ok then
    self:fatal(ferr, 2)
  end
  return again
end

-- Unknown outcomes, until none are left or the rounds run out: customers
-- are looked up first, transactions are sent again with their referenceId.
function Run:settle(rows)
  for _ = 1, M.ROUNDS do
    if #rows == 0 or self.stop then
      return rows
    end
    local again = rows
    if self.kind == "customers" then
      again = self:resolve_customers(rows)
      if not again then
        return rows
      end
    else
      self.counts.resolved_again = self.counts.resolved_again + #rows
    end
    self.unknown = {}
    self:send(again)
    rows = self.unknown
  end
  return rows
end

-- ===== the command =====

-- opts: kind, file, client, concurrency, dry_run, skip_invalid,
-- retry_failed, out (path), journal (path), progress ("bar"|"plain"|"none"),
-- say (function(text) writing a line on stderr), mode (output mode).
-- Returns the exit code.
function M.run(opts)
  local kind = opts.kind
  local say = opts.say
  local started = sys.now()
  local data, err = M.read(kind, opts.file)
  if not data then
    say(err)
    return 2
  end
  local rows = data.rows
  M.validate(kind, rows)
  local invalid = 0
  for _, row in ipairs(rows) do
    if row.problem then
      invalid = invalid + 1
      row.state, row.reason = "invalid", row.problem
      if invalid <= 100 then
        say(("%s:%d: %s"):format(opts.file, row.line, row.problem))
      end
    end
  end
  if invalid > 100 then
    say(("... and %d more invalid rows"):format(invalid - 100))
  end
  if opts.dry_run then
    say(("%s: %d rows, %d valid, %d invalid; nothing sent (--dry-run)"):format(opts.file, #rows, #rows - invalid,
      invalid))
    return invalid > 0 and 2 or 0
  end
  if invalid > 0 and not opts.skip_invalid then
    say(("%s: %d invalid rows; nothing was sent (--skip-invalid sends the valid ones)"):format(opts.file, invalid))
    return 2
  end

  local jpath = opts.journal or (opts.file .. ".journal")
  local j, jerr = journal.open(jpath, kind)
  if not j then
    say(jerr)
    return 2
  end
  -- A row the journal knows must be the row it knew.
  local by_line, changed = {}, {}
  for _, row in ipairs(rows) do
    by_line[row.line] = row
  end
  for line, entry in pairs(j.rows) do
    local row = by_line[line]
    if not row or row.hash ~= entry.hash then
      changed[#changed + 1] = line
    end
  end
  if #changed > 0 then
    table.sort(changed)
    say(("%s changed since %s recorded it (line %s%s); refusing to guess which rows are done. Use the original "
      .. "file, or another --journal for a new import"):format(opts.file, jpath, table.concat(changed, ", ", 1,
      math.min(#changed, 10)), #changed > 10 and ", ..." or ""))
    j:close()
    return 2
  end

  local self = setmetatable({ kind = kind, client = opts.client, concurrency = opts.concurrency or 8, journal = j,
    unknown = {}, counts = { done = 0, skipped = 0, resolved_found = 0, resolved_again = 0 } }, Run)
  local queue, earlier_unknown = {}, {}
  for _, row in ipairs(rows) do
    local entry = j.rows[row.line]
    if row.state == "invalid" then -- luacheck: ignore 542
    elseif not entry or entry.state == "notsent" then
      queue[#queue + 1] = row
    elseif entry.state == "done" then
      row.state, row.id, row.wallet, row.reason = "skipped", entry.id, entry.wallet, ""
      self.counts.skipped = self.counts.skipped + 1
    elseif entry.state == "failed" then
      if opts.retry_failed then
        queue[#queue + 1] = row
      else
        row.state, row.reason, row.earlier = "failed", entry.reason, true
      end
    else -- "sent" with no outcome (the run was killed) or "unknown"
      row.state, row.reason = "unknown", entry.reason ~= "" and entry.reason or "interrupted"
      earlier_unknown[#earlier_unknown + 1] = row
    end
  end
  local todo = #queue + #earlier_unknown
  self.progress = progress.new(opts.progress, self.counts.skipped + todo, self.counts.skipped)
  sys.trap(function(name)
    self.stop = self.stop or name
  end)

  -- Outcomes left unknown by an earlier run are settled first.
  if #earlier_unknown > 0 then
    self.counts.unknown = #earlier_unknown
    if kind == "customers" then
      self:settle(earlier_unknown)
    else
      for _, row in ipairs(earlier_unknown) do
        queue[#queue + 1] = row
      end
      self.counts.resolved_again = self.counts.resolved_again + #earlier_unknown
    end
  end
  if not self.stop then
    self:send(queue)
  end
  if #self.unknown > 0 then
    self.counts.unknown = (self.counts.unknown or 0) + #self.unknown
    self:settle(self.unknown) -- what is still unknown stays so, for the next run
  end
  self.progress:finish()
  j:close()

  -- What became of each row.
  local failed, by_reason, unknown_left, not_sent = 0, {}, 0, 0
  for _, row in ipairs(rows) do
    if row.state == "failed" or row.state == "invalid" or (row.state == "notsent" and not self.stop) then
      failed = failed + 1
      local reason = row.state == "invalid" and "invalid" or row.reason
      by_reason[reason] = (by_reason[reason] or 0) + 1
    elseif row.state == "unknown" then
      unknown_left = unknown_left + 1
    elseif row.state == nil or row.state == "notsent" then
      not_sent = not_sent + 1
    end
  end
  local elapsed = sys.now() - started
  local summary = {
    import = kind, file = opts.file, journal = jpath, rows = #rows, [M.KINDS[kind].noun] = self.counts.done,
    skipped = self.counts.skipped, failed = failed, failed_by_reason = by_reason, invalid = invalid,
    unknown = self.counts.unknown or 0, resolved_found = self.counts.resolved_found,
    resolved_sent_again = self.counts.resolved_again, unknown_left = unknown_left, not_sent = not_sent,
    elapsed = tonumber(("%.3f"):format(elapsed)), rate = tonumber(("%.1f"):format(self.counts.done / elapsed)),
    interrupted = (self.stop == "sigint" or self.stop == "sigterm") and self.stop or nil,
  }
  if opts.out then
    local ok, oerr = M.write_results(opts.out, kind, data, rows)
    if not ok then
      say(oerr)
    end
  end
  M.print_summary(summary, opts.mode, opts.stdout or io.stdout)
  if self.message then
    say(self.message)
  end
  if self.resolve_error then
    say("the consumer list could not be read to settle unknown outcomes: " .. tostring(self.resolve_error))
  end
  if summary.interrupted then
    say(("interrupted by %s: %d rows not sent%s; run the same command again to resume (journal %s)"):format(
      summary.interrupted:upper(), not_sent, unknown_left > 0 and (", " .. unknown_left .. " unknown") or "", jpath))
    return summary.interrupted == "sigint" and 130 or 143
  end
  if self.exit_code then
    return self.exit_code
  end
  if unknown_left > 0 then
    say(("%d rows may or may not have been applied; run the same command again to settle them"):format(unknown_left))
  end
  return (failed > 0 or unknown_left > 0 or not_sent > 0) and 1 or 0
end

-- The input's columns, then what happened to each row.
function M.write_results(path, kind, data, rows)
  local f, err = io.open(path, "wb")
  if not f then
    return nil, err
  end
  local columns = {}
  for i, c in ipairs(data.header) do
    columns[i] = c
  end
  local has_ref = false
  for _, c in ipairs(data.header) do
    has_ref = has_ref or c == "referenceId"
  end
  if kind == "transactions" and not has_ref then
    columns[#columns + 1] = "referenceId"
  end
  local extra = kind == "customers" and { "id", "walletId" } or { "transactionId" }
  for _, c in ipairs(extra) do
    columns[#columns + 1] = c
  end
  columns[#columns + 1] = "outcome"
  columns[#columns + 1] = "reason"
  f:write(csv.line(columns))
  for _, row in ipairs(rows) do
    local values = {}
    for i, c in ipairs(data.header) do
      values[i] = row.values[c]
    end
    if kind == "transactions" then
      if not has_ref then
        values[#values + 1] = row.item.referenceId
      elseif row.derived_ref then
        for i, c in ipairs(data.header) do
          if c == "referenceId" then
            values[i] = row.item.referenceId
          end
        end
      end
      values[#values + 1] = output.text(row.id)
    else
      values[#values + 1] = output.text(row.id)
      values[#values + 1] = output.text(row.wallet)
    end
    local state = row.state or "notsent"
    values[#values + 1] = state == "notsent" and "not sent" or state
    values[#values + 1] = row.reason or ""
    f:write(csv.line(values))
  end
  f:close()
  return true
end

function M.print_summary(s, mode, stream)
  if mode == "json" then
    stream:write(output.json(s), "\n")
    return
  end
  local noun = s.created and "created" or "applied"
  local reasons = {}
  for reason, n in pairs(s.failed_by_reason) do
    reasons[#reasons + 1] = ("%d %s"):format(n, reason)
  end
  table.sort(reasons)
  local lines = {
    ("import %s: %d rows in %s"):format(s.import, s.rows, s.file),
    ("  %-9s %d"):format(noun, s[noun]),
    ("  %-9s %d (already done)"):format("skipped", s.skipped),
    ("  %-9s %d%s"):format("failed", s.failed, #reasons > 0 and (" (" .. table.concat(reasons, ", ") .. ")") or ""),
    ("  %-9s %d, then resolved: %d found, %d sent again; %d left unknown"):format("unknown", s.unknown,
      s.resolved_found, s.resolved_sent_again, s.unknown_left),
    ("  %-9s %d"):format("not sent", s.not_sent),
    ("  %-9s %.1f s, %.0f rows/s"):format("elapsed", s.elapsed, s.rate),
  }
  stream:write(table.concat(lines, "\n"), "\n")
  stream:flush()
end

return M
