-- scale_nginx.lua: the handlers of the "nginx at scale" part of `make bench`
-- (bench/nginx_scale.conf.in, bench/nginx_upstream.conf.in).
--
-- The front nginx: every request to /orbt makes one orbt call,
-- client:list_customers{size = 20}, through cosockets, with one client per
-- worker (made in init_worker, used in content handlers), to the upstream;
-- /orbt_tls the same with a second client whose base_url is the upstream's
-- HTTPS port (tls_url; nginx verifies it against lua_ssl_trusted_certificate).
-- A failed call answers 502 and logs "orbt call failed: ..."; a page without
-- 20 consumers answers 500. (/baseline, the same call written by hand, is
-- bench/scale_baseline.lua.)
--
-- The upstream nginx: answers the canned page after holding every request
-- for hold_ms, and counts requests in flight in the shared dict
-- `bench_scale` (incremented on entry, decremented before answering),
-- keeping the peak, and the peak since the last /mark (which starts it at
-- the number in flight then), and counts the connections it accepted and,
-- on its HTTPS port, the TLS handshakes and resumed ones; /stats reports
-- them, /reset clears them.
--
-- bench_scale, a global set by init_by_lua, holds the settings: for the
-- front the credentials, upstream_url, tls_url and pool_size; for the
-- upstream hold_ms and page_file.
-- luacheck: std +ngx_lua
-- luacheck: globals bench_scale

local M = {}

local settings = bench_scale

-- ===== The front =====

local client, tls_client

function M.init_worker()
  local orbt = require("orbt")
  -- No retries: every failed call is a failed handler request.
  local function make(base_url)
    return assert(orbt.new{ api_key = settings.api_key, client_id = settings.client_id, secret = settings.secret,
      base_url = base_url, timeout = 10, max_retries = 0, pool_size = settings.pool_size,
      pool_backlog = settings.pool_backlog })
  end
  client = make(settings.upstream_url)
  tls_client = make(settings.tls_url)
  require("scale_baseline").init_worker()
end

-- The handler's answer to one call of `who` ("orbt", "baseline"): 502 and
-- "<who> call failed: ..." logged when it failed, 500 when the page lacks
-- its 20 consumers, else "ok".
function M.answer(who, page, err)
  if not page then
    ngx.log(ngx.ERR, who, " call failed: ", tostring(err))
    ngx.status = 502
    return ngx.say(who, " call failed")
  end
  if type(page) ~= "table" or type(page.content) ~= "table" or #page.content ~= 20 then
    ngx.log(ngx.ERR, who, " call answered a page without 20 consumers")
    ngx.status = 500
    return ngx.say("bad page")
  end
  ngx.say("ok")
end

local QUERY = { size = 20 }

local function list(c)
  return M.answer("orbt", c:list_customers(QUERY))
end

function M.list()
  return list(client)
end

function M.list_tls()
  return list(tls_client)
end

-- The worker's pid, so that the harness can read its RSS and CPU time.
function M.pid()
  ngx.say(ngx.worker.pid())
end

-- ===== The upstream =====

local page_text

function M.init_upstream()
  local f = assert(io.open(settings.page_file, "rb"))
  page_text = f:read("*a")
  f:close()
end

function M.page()
  local dict = ngx.shared.bench_scale
  local n = dict:incr("in_flight", 1, 0)
  -- One worker: nothing runs between the incr and these lines.
  if n > (dict:get("peak") or 0) then
    dict:set("peak", n)
  end
  if n > (dict:get("peak_since_mark") or 0) then
    dict:set("peak_since_mark", n)
  end
  if ngx.var.connection_requests == "1" then
    dict:incr("connections", 1, 0)
  end
  ngx.sleep(settings.hold_ms / 1000)
  dict:incr("in_flight", -1, 0)
  dict:incr("served", 1, 0)
  ngx.header["Content-Type"] = "application/json"
  ngx.header["Content-Length"] = #page_text
  ngx.print(page_text)
end

-- The page on the HTTPS port: a request that opened its connection made a
-- TLS handshake first, a resumed one if $ssl_session_reused is "r".
function M.page_tls()
  if ngx.var.connection_requests == "1" then
    local dict = ngx.shared.bench_scale
    dict:incr("tls_handshakes", 1, 0)
    if ngx.var.ssl_session_reused == "r" then
      dict:incr("tls_resumed", 1, 0)
    end
  end
  return M.page()
end

function M.mark()
  local dict = ngx.shared.bench_scale
  dict:set("peak_since_mark", dict:get("in_flight") or 0)
  ngx.say("marked")
end

function M.stats()
  local dict = ngx.shared.bench_scale
  ngx.say(("peak=%d peak_since_mark=%d in_flight=%d served=%d connections=%d tls_handshakes=%d tls_resumed=%d")
    :format(dict:get("peak") or 0, dict:get("peak_since_mark") or 0, dict:get("in_flight") or 0,
      dict:get("served") or 0, dict:get("connections") or 0, dict:get("tls_handshakes") or 0,
      dict:get("tls_resumed") or 0))
end

function M.reset()
  ngx.shared.bench_scale:flush_all()
  ngx.say("reset")
end

return M
