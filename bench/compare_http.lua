-- compare_http.lua: the HTTP/1.1 part of `make compare` (bench/compare.lua).
-- Each case is the exact bytes a server sends (spec/support/raw_server.lua
-- over a real loopback socket, a new server per run), fetched by
--   curl   the curl command-line tool (libcurl): one URL, or two URLs on one
--          command line, which makes curl send the second request on the
--          same connection when it can; -sS, no -f, so a 4xx is exit 0
--   orbt   client:list_customers() with transport = "curl" (libcurl opens
--          the connection, orbt's src/http1.c reads the answer), max_retries = 0
-- Each request's outcome is one of
--   the right answer   status 200 and the body the server meant for it
--   an error           the client reported a failure (curl: exit code not 0)
--   a WRONG answer     any other answer: a body or status the server did not
--                      mean for that request, or any answer at all where the
--                      framing is broken and an error is the only right outcome.
--                      For orbt an answer is a result, or an error value that
--                      carries a status and the body orbt read (kind "api" or
--                      "decode"): the body came out of orbt's HTTP reader, so
--                      it counts even when the JSON step then refused it.
local raw = require("support.raw")
local shell = require("support.shell")

local M = {}

local function page(id)
  return ('{"content":[{"id":%d,"fullName":"A B"}],"page":0,"size":20,"hasNext":false}'):format(id)
end

-- What the server means to send (A, then B for a second request), and
-- what is there to be taken by mistake (X).
local A = { id = 7, body = page(7) }
local B = { id = 8, body = page(8) }
local X = { id = 666, body = page(666) }
local ERROR = "error" -- only an error is right: the framing is broken

local function answer(status, body, headers)
  return raw.answer(status, body, headers)
end

local chunked = raw.chunked

local function gzip(bytes)
  local pipe = assert(io.popen("printf '%s' " .. shell.quote(bytes) .. " | gzip -9 -n -c", "r"))
  local out = pipe:read("a")
  assert(pipe:close() and #out > 0, "gzip failed")
  return out
end

local OK = "HTTP/1.1 200 OK\r\n"
local CHUNKED = OK .. "Transfer-Encoding: chunked\r\n\r\n"

-- name; steps (one per request, as raw_server.lua takes them); meant (per
-- request: the answer meant, or ERROR); error_ok (an error is also right:
-- RFC 9112 lets the client refuse); valid (an answer a client must read:
-- an error is a refusal of it); pause (seconds between the two requests).
local function cases()
  return {
    {
      name = "a well-formed answer (control)",
      steps = { { bytes = answer("200 OK", A.body) } },
      meant = { A },
      valid = true,
    },
    {
      name = "a body that runs to the close (control)",
      steps = { { bytes = OK .. "Connection: close\r\n\r\n" .. A.body, close = true } },
      meant = { A },
      valid = true,
    },
    {
      name = "chunked, a byte at a time (control)",
      steps = { { bytes = CHUNKED .. chunked(A.body, 16), pieces = 1 } },
      meant = { A },
      valid = true,
    },
    {
      name = "100 Continue and 103 Early Hints before the answer",
      why = "RFC 9110 section 15.2: a client must read 1xx answers before the final one",
      steps = { { bytes = "HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 103 Early Hints\r\nLink: </x>\r\n\r\n"
        .. answer("200 OK", A.body) } },
      meant = { A },
      valid = true,
    },
    {
      name = "`Content-Length: 6 5`",
      why = "RFC 9112 section 6.3: a Content-Length that is not one number is an unrecoverable error; "
        .. "the answer is discarded",
      steps = { { bytes = OK .. "Content-Length: 6 5\r\n\r\n" .. A.body, close = true } },
      meant = { ERROR },
    },
    {
      name = "two different Content-Length headers (5, then the body's length)",
      why = "RFC 9112 section 6.3: differing Content-Length values are an unrecoverable error; taking "
        .. "either one is a guess",
      steps = { { bytes = OK .. "Content-Length: 5\r\nContent-Length: " .. #A.body .. "\r\n\r\n" .. A.body,
        close = true } },
      meant = { ERROR },
    },
    {
      name = "a NUL in a header (`Content-Length: 5<00>" .. #A.body .. "`)",
      why = "RFC 9110 section 5.5: a NUL in a field value makes the client reject the answer or read "
        .. "the NUL as a space, and `5 74` is no Content-Length",
      steps = { { bytes = OK .. "Content-Length: 5\0" .. #A.body .. "\r\n\r\n" .. A.body, close = true } },
      meant = { ERROR },
    },
    {
      name = "Content-Length: 5 with Transfer-Encoding: chunked",
      why = "RFC 9112 section 6.3: Transfer-Encoding overrides Content-Length, and such an answer ought "
        .. "to be handled as an error",
      steps = { { bytes = OK .. "Content-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n" .. chunked(A.body, 32),
        close = true } },
      meant = { A },
      error_ok = true,
    },
    {
      name = "`Transfer-Encoding: gzip, chunked` (the body gzipped, unasked)",
      why = "RFC 9112 section 7: gzip is a registered transfer coding, here unasked (no TE header); "
        .. "undoing it or refusing the answer are both right, the gzipped bytes as the body are not",
      steps = { { bytes = OK .. "Transfer-Encoding: gzip, chunked\r\n\r\n" .. chunked(gzip(A.body), 32),
        close = true } },
      meant = { A },
      error_ok = true,
    },
    {
      name = "the connection closed inside the header",
      why = "RFC 9112 section 8: an answer cut off by the close is incomplete",
      steps = { { bytes = OK .. "Content-Type: appl", close = true } },
      meant = { ERROR },
    },
    {
      name = "a body shorter than its Content-Length, then the close",
      why = "RFC 9112 section 8: an answer cut off by the close is incomplete",
      steps = { { bytes = OK .. "Content-Length: " .. (#A.body + 20) .. "\r\n\r\n" .. A.body, close = true } },
      meant = { ERROR },
    },
    {
      name = "a bare CR in a header (`X-A: 1<0d>Content-Length: 5`, no other length)",
      why = "RFC 9112 section 2.2: a bare CR makes the line invalid or is read as a space; either way "
        .. "there is no Content-Length and the body runs to the close",
      steps = { { bytes = OK .. "Connection: close\r\nX-A: 1\rContent-Length: 5\r\n\r\n" .. A.body,
        close = true } },
      meant = { A },
      error_ok = true,
    },
    {
      name = "an obs-fold line (`X-A: 1` folded onto ` Content-Length: 5`, no other length)",
      why = "RFC 9112 section 5.2: a user agent must replace the fold with spaces; X-A is then `1 "
        .. "Content-Length: 5` and the body runs to the close",
      steps = { { bytes = OK .. "Connection: close\r\nX-A: 1\r\n Content-Length: 5\r\n\r\n" .. A.body,
        close = true } },
      meant = { A },
      valid = true,
    },
    {
      name = "a chunk size past 64 bits (2^64 + the body's length)",
      why = "RFC 9112 section 7.1: recipients must guard against integer overflow in chunk sizes",
      steps = { { bytes = CHUNKED .. ("1%016x\r\n"):format(#A.body) .. A.body .. "\r\n0\r\n\r\n", close = true } },
      meant = { ERROR },
    },
    {
      name = "chunk data longer than its size",
      why = "RFC 9112 section 8: a chunked body that fails to decode is incomplete",
      steps = { { bytes = CHUNKED .. "5\r\n" .. A.body .. "\r\n0\r\n\r\n", close = true } },
      meant = { ERROR },
    },
    {
      name = "a whole second answer after the first on a kept-alive connection; then a second request",
      why = "bytes that came before a request was sent are not its answer",
      steps = { { bytes = answer("200 OK", A.body) .. answer("200 OK", X.body) },
        { bytes = answer("200 OK", B.body) } },
      meant = { A, B },
      valid = true,
    },
    {
      name = "a 408 sent on the idle kept-alive connection; then a second request",
      why = "RFC 9110 section 15.5.9: 408 says the server did not receive a complete request in time; "
        .. "this one came before the second request was sent, so it is not that request's answer",
      steps = { { bytes = answer("200 OK", A.body),
        later = answer("408 Request Timeout", '{"code":"TIMEOUT","message":"idle"}') },
        { bytes = answer("200 OK", B.body) } },
      meant = { A, B },
      valid = true,
      pause = 0.5,
    },
    {
      name = "a 408 and the close on the idle kept-alive connection; then a second request",
      why = "as above; the close tells the client the connection is gone as well",
      steps = { { bytes = answer("200 OK", A.body),
        later = answer("408 Request Timeout", '{"code":"TIMEOUT","message":"idle"}', { "Connection: close" }),
        close = true },
        { bytes = answer("200 OK", B.body) } },
      meant = { A, B },
      valid = true,
      pause = 0.5,
    },
  }
end

local function scenario(steps)
  local lines = { "return {" }
  for _, step in ipairs(steps) do
    lines[#lines + 1] = ("  { bytes = %q, close = %s, pieces = %s, later = %s },"):format(
      step.bytes or "", tostring(step.close or false), tostring(step.pieces),
      step.later and ("%q"):format(step.later) or "nil")
  end
  lines[#lines + 1] = "}"
  return table.concat(lines, "\n")
end

-- ===== The clients =====
-- Each gives, per request, { answer = true, status, body | id } or
-- { error = "what the client said" }.

local PATH = "/api/partner/v1/customer"

local function run_curl(case, url, dir)
  local args = { "curl -sS --max-time 5",
    "-w " .. shell.quote("=> %{urlnum} %{exitcode} %{http_code} %{errormsg}\\n") }
  if case.pause then
    args[#args + 1] = ("--rate %d/s"):format(math.floor(1 / case.pause))
  end
  for i = 1, #case.meant do
    args[#args + 1] = ("%s -o %s/body%d"):format(shell.quote(url .. PATH), dir, i)
  end
  shell.exec("rm -f " .. dir .. "/body*")
  local out = shell.run(table.concat(args, " ") .. " 2>/dev/null")
  local got = {}
  for n, code, status, message in out:gmatch("=> (%d+) (%d+) (%d+) ([^\n]*)") do
    local i = tonumber(n) + 1
    if code == "0" then
      got[i] = { answer = true, status = tonumber(status), body = shell.read_file(("%s/body%d"):format(dir, i)) or "" }
    else
      got[i] = { error = ("exit %s: %s"):format(code, message) }
    end
  end
  return got
end

local function run_orbt(case, url)
  local orbt = require("orbt")
  local client = assert(orbt.new({ api_key = "compare-api-key", client_id = "3f1c2a9e-8b7d-4e6f-9a01-23456789abcd",
    secret = "s3cret", base_url = url, timeout = 5, max_retries = 0, transport = "curl" }))
  local got = {}
  for i = 1, #case.meant do
    if i > 1 and case.pause then
      shell.sleep(case.pause)
    end
    local result, err = client:list_customers()
    if result then
      got[i] = { answer = true, status = 200, id = result.content[1] and result.content[1].id }
    elseif err.status and (err.kind == "api" or err.kind == "decode") then
      got[i] = { answer = true, status = err.status, body = err.body or "", also = err.kind .. ": " .. err.message }
    else
      -- The kind, and the reason the message ends with in parentheses.
      local message = tostring(err.message)
      got[i] = { error = err.kind .. ": " .. (message:match("%(([^()]*)%)$") or message) }
    end
  end
  client:close()
  return got
end

-- ===== Judging =====

local function show(s, max)
  local out = s:gsub(".", function(c)
    local b = c:byte()
    if b < 32 or b > 126 or c == "|" or c == "`" then
      return ("<%02x>"):format(b)
    end
  end)
  if #out > max then
    out = out:sub(1, max) .. "…"
  end
  return out
end

local function describe(o)
  if o.id then
    return ("a result with id %s"):format(tostring(o.id))
  end
  local what = #o.body == 0 and ("status %d, an empty body"):format(o.status)
    or ("status %d, %d-byte body `%s`"):format(o.status, #o.body, show(o.body, 16))
  if o.also then
    what = what .. " (then " .. o.also .. ")"
  end
  return what
end

local function is_meant(o, m)
  return m ~= ERROR and o.status == 200 and ((o.id ~= nil and o.id == m.id) or (o.body ~= nil and o.body == m.body))
end

-- One client's outcomes on a case: the cell, and whether it was a wrong
-- answer, and whether it refused an answer it had to read.
local function judge(case, got)
  local parts, wrong, refused = {}, false, false
  for i, m in ipairs(case.meant) do
    local o = got[i]
    local prefix = #case.meant > 1 and ("request %d: "):format(i) or ""
    if o == nil then
      parts[#parts + 1] = prefix .. "no outcome"
      wrong = true
    elseif o.error then
      local fine = m == ERROR or case.error_ok
      refused = refused or (not fine and case.valid)
      parts[#parts + 1] = prefix .. "error (" .. show(o.error, 70) .. ")"
        .. ((not fine and case.valid) and ", a valid answer refused" or "")
    elseif is_meant(o, m) then
      parts[#parts + 1] = prefix .. "right answer"
    else
      wrong = true
      parts[#parts + 1] = prefix .. "**WRONG**: " .. describe(o)
    end
  end
  return table.concat(parts, "; "), wrong, refused
end

-- Each case must be able to come out wrong, and right outcomes must not:
-- checked on made-up outcomes before anything runs.
local function check_judging(list)
  for _, case in ipairs(list) do
    local stray, meant, failed, stray_id = {}, {}, {}, {}
    for i, m in ipairs(case.meant) do
      stray[i] = { answer = true, status = 200, body = X.body }
      stray_id[i] = { answer = true, status = 200, id = X.id }
      meant[i] = { answer = true, status = 200, body = (m == ERROR and A or m).body }
      failed[i] = { error = "made up" }
    end
    local _, wrong = judge(case, stray)
    assert(wrong, case.name .. ": a stray body is not judged wrong")
    _, wrong = judge(case, stray_id)
    assert(wrong, case.name .. ": a stray result is not judged wrong")
    _, wrong = judge(case, meant)
    assert(wrong == (case.meant[1] == ERROR), case.name .. ": the meant body is judged wrongly")
    _, wrong = judge(case, failed)
    assert(not wrong, case.name .. ": an error is judged a wrong answer")
  end
end

function M.run(opts)
  local list = cases()
  check_judging(list)
  local version = shell.run("curl --version"):match("^curl (%S+)") or "?"
  local curl_name = "curl " .. version .. " (libcurl)"
  local out = {}
  local function say(line) out[#out + 1] = line end
  say(("### HTTP/1.1 framing: %d answers over a real loopback socket"):format(#list))
  say("")
  say("| case | right outcome | " .. curl_name .. " | orbt (src/http1.c) |")
  say("|---|---|---|---|")
  local totals = { curl = { wrong = 0, refused = 0 }, orbt = { wrong = 0, refused = 0 } }
  for _, case in ipairs(list) do
    local row = { case.name }
    if case.meant[1] == ERROR then
      row[2] = "an error"
    else
      row[2] = (#case.meant > 1 and "each request its own answer" or "the answer")
        .. (case.error_ok and ", or an error" or "")
    end
    for _, client in ipairs{ "curl", "orbt" } do
      local server = raw.start(scenario(case.steps))
      local ok, got = pcall(client == "curl" and run_curl or run_orbt, case, server.url, opts.dir)
      local seen = server:seen()
      server:cleanup()
      assert(ok, got)
      local text, wrong, refused = judge(case, got)
      if #case.meant > 1 then
        text = text .. (" (%d connection%s)"):format(seen.connections, seen.connections == 1 and "" or "s")
      end
      totals[client].wrong = totals[client].wrong + (wrong and 1 or 0)
      totals[client].refused = totals[client].refused + (refused and 1 or 0)
      row[#row + 1] = text
    end
    say("| " .. table.concat(row, " | ") .. " |")
  end
  say(("| **wrong answers** | | **%d** | **%d** |"):format(totals.curl.wrong, totals.orbt.wrong))
  say(("| valid answers refused | | %d | %d |"):format(totals.curl.refused, totals.orbt.refused))
  say("")
  say("curl: `curl -sS --max-time 5 URL -o FILE` (two requests: `URL -o FILE1 URL -o FILE2`, which reuses "
    .. "the connection when curl sees fit; with `--rate 2/s` where the requests are 0.5 s apart); an answer "
    .. "is exit 0 with its status and body. orbt: `client:list_customers()` with `transport = \"curl\"` and "
    .. "`max_retries = 0`; its error cells give the kind and the reason its message ends with. In case names "
    .. "and bodies, `<HH>` is a raw byte.")
  say("")
  say("Why the right outcome is right:")
  say("")
  for _, case in ipairs(list) do
    if case.why then
      say(("- %s: %s."):format(case.name, case.why))
    end
  end
  return table.concat(out, "\n") .. "\n"
end

return M
