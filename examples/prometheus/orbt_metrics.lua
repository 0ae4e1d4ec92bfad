-- orbt_metrics.lua: Prometheus metrics for orbt's calls in nginx.
--
-- on_response (orbt's hook, run after every HTTP attempt) counts attempts by
-- operation and status in an ngx.shared dict, with the error's kind on a
-- failed attempt, adds up their durations, and counts the attempts that a
-- retry follows. serve() answers /metrics in Prometheus's text exposition
-- format (version 0.0.4). Every worker writes to the same dict, so one
-- scrape sees the whole server.
--
-- nginx.conf needs `lua_shared_dict orbt_metrics 1m;` (some 150 bytes per
-- series; the series are few: operations x statuses seen).
--
-- Hooks run inside the call and cannot yield (no cosocket, no ngx.sleep).
-- ngx.shared dict operations never yield, so they are safe here.
-- luacheck: globals ngx

local M = {}

local DICT_NAME = "orbt_metrics"
local SEP = "\t"

local dict = ngx.shared[DICT_NAME]
if not dict then
  error("orbt_metrics: nginx.conf needs `lua_shared_dict " .. DICT_NAME .. " 1m;`")
end

local function add(key, by)
  local _, err = dict:incr(key, by, 0)
  if err then
    ngx.log(ngx.ERR, "orbt_metrics: cannot count ", key, ": ", err)
  end
end

-- The hook: pass it as on_response to orbt.new or orbt.from_env.
function M.on_response(info)
  local op = info.operation
  -- status: the HTTP status of the answer, "none" when none came (a
  -- timeout, a refused connection). kind: only on a failed attempt.
  local status = info.status and tostring(info.status) or "none"
  add("requests" .. SEP .. op .. SEP .. status .. SEP .. (info.kind or ""), 1)
  add("duration_sum" .. SEP .. op, info.duration)
  add("duration_count" .. SEP .. op, 1)
  if info.retry then
    add("retries" .. SEP .. op, 1)
  end
end

-- A label value in the exposition format: \, " and newline escaped.
local function label(name, value)
  return name .. '="' .. value:gsub('[\\"]', "\\%0"):gsub("\n", "\\n") .. '"'
end

local function split(key)
  local parts = {}
  for part in (key .. SEP):gmatch("(.-)" .. SEP) do
    parts[#parts + 1] = part
  end
  return parts
end

local METRICS = {
  { name = "orbt_requests_total", type = "counter", prefix = "requests",
    help = "HTTP attempts orbt made (retries count once each), by operation and status "
      .. '(status "none": no answer came; kind: the error kind of a failed attempt).' },
  { name = "orbt_retries_total", type = "counter", prefix = "retries",
    help = "Attempts after which orbt retried the call, by operation." },
  { name = "orbt_request_duration_seconds", type = "summary", prefix = "duration_",
    help = "Seconds per attempt, from sending to the answer or the error, by operation." },
}

-- The metrics as text, series in a stable order.
function M.render()
  local keys = dict:get_keys(0)
  table.sort(keys)
  local out = {}
  for _, metric in ipairs(METRICS) do
    out[#out + 1] = "# HELP " .. metric.name .. " " .. metric.help
    out[#out + 1] = "# TYPE " .. metric.name .. " " .. metric.type
    for _, key in ipairs(keys) do
      local parts = split(key)
      local kind_of = parts[1]
      if kind_of:sub(1, #metric.prefix) == metric.prefix then
        local value = dict:get(key)
        if value then
          local name, labels, text = metric.name, { label("operation", parts[2]) }, ("%d"):format(value)
          if kind_of == "requests" then
            labels[2] = label("status", parts[3])
            if parts[4] ~= "" then
              labels[3] = label("kind", parts[4])
            end
          elseif kind_of == "duration_sum" then
            name, text = name .. "_sum", ("%.6f"):format(value)
          elseif kind_of == "duration_count" then
            name = name .. "_count"
          end
          out[#out + 1] = name .. "{" .. table.concat(labels, ",") .. "} " .. text
        end
      end
    end
  end
  return table.concat(out, "\n") .. "\n"
end

-- The /metrics handler.
function M.serve()
  ngx.header["Content-Type"] = "text/plain; version=0.0.4; charset=utf-8"
  ngx.print(M.render())
end

return M
