-- orbt.cli.config: where the command's settings come from. A flag wins over
-- the environment, which wins over the profile file ($XDG_CONFIG_HOME/orbt/config,
-- else ~/.config/orbt/config: INI sections, one per profile). There is no
-- flag for the secret: a command line is visible to every local user.
local sys = require("orbt.cli.sys")

local M = {}

M.DEFAULT_URL = "https://partner.orbt.com"
M.UAT_URL = "https://api-uat.ncentiva.com"
M.KEYS = { "api_key", "client_id", "secret", "base_url" }
local ENV = { api_key = "ORBT_API_KEY", client_id = "ORBT_CLIENT_ID", secret = "ORBT_SECRET",
  base_url = "ORBT_BASE_URL" }
M.ENV = ENV
-- What libcurl reads for proxies; shown by `orbt config check`.
M.PROXY_VARS = { "https_proxy", "HTTPS_PROXY", "http_proxy", "all_proxy", "ALL_PROXY", "no_proxy", "NO_PROXY" }

function M.path(getenv)
  local xdg = getenv("XDG_CONFIG_HOME")
  if xdg and xdg ~= "" then
    return xdg .. "/orbt/config"
  end
  local home = getenv("HOME")
  return home and (home .. "/.config/orbt/config") or nil
end

-- Reads an INI text: { [section] = { key = value } } or nil, message.
function M.parse_ini(text, path)
  local sections, current, n = {}, nil, 0
  for raw in (text .. "\n"):gmatch("([^\n]*)\n") do
    n = n + 1
    local l = raw:gsub("\r$", ""):match("^%s*(.-)%s*$")
    if l ~= "" and not l:match("^[#;]") then
      local name = l:match("^%[%s*([^%]]-)%s*%]$")
      if name then
        current = sections[name] or {}
        sections[name] = current
      else
        local key, value = l:match("^([%w_%-]+)%s*=%s*(.-)$")
        if not key or not current then
          return nil, ("%s:%d: expected [profile] or key = value"):format(path, n)
        end
        value = value:match('^"(.*)"$') or value
        current[key] = value
      end
    end
  end
  return sections
end

-- The profile file's section for `profile`, checked: refused when group or
-- others may read it. Returns the section (or {} when there is no file),
-- the path, or nil, message.
function M.read_profile(path, profile, explicit)
  if not path then
    return {}
  end
  local mode = sys.mode(path)
  if not mode then
    if explicit then
      return nil, ("profile %q asked for, but there is no %s"):format(profile, path)
    end
    return {}
  end
  if mode & 0x24 ~= 0 then -- S_IRGRP | S_IROTH
    return nil, ("%s can be read by other users and holds a secret; run: chmod 600 %s"):format(path, path)
  end
  local text, err = sys.read_file(path)
  if not text then
    return nil, err
  end
  local sections, perr = M.parse_ini(text, path)
  if not sections then
    return nil, perr
  end
  local section = sections[profile]
  if not section then
    if explicit then
      return nil, ("%s has no [%s] section"):format(path, profile)
    end
    return {}
  end
  for key in pairs(section) do
    local known = false
    for _, k in ipairs(M.KEYS) do
      known = known or k == key
    end
    if not known and key ~= "uat" then
      return nil, ("%s: [%s]: unknown setting %q (known: %s, uat)"):format(path, profile, key,
        table.concat(M.KEYS, ", "))
    end
  end
  return section
end

-- Resolves every setting. flags: {api_key, client_id, base_url, profile, uat}.
-- Returns { key = {value =, source =} , profile =, path = } or nil, message.
function M.resolve(flags, getenv)
  getenv = getenv or os.getenv
  local profile, explicit = "default", false
  if flags.profile then
    profile, explicit = flags.profile, true
  elseif (getenv("ORBT_PROFILE") or "") ~= "" then
    profile, explicit = getenv("ORBT_PROFILE"), true
  end
  local path = M.path(getenv)
  local section, err = M.read_profile(path, profile, explicit)
  if not section then
    return nil, err
  end
  local out = { profile = profile, path = path }
  local in_file = ("%s [%s]"):format(tostring(path), profile)
  for _, key in ipairs(M.KEYS) do
    local env = getenv(ENV[key])
    if flags[key] then
      out[key] = { value = flags[key], source = "flag --" .. key:gsub("_", "-") }
    elseif key == "base_url" and flags.uat then
      out[key] = { value = M.UAT_URL, source = "flag --uat" }
    elseif env and env ~= "" then
      out[key] = { value = env, source = "environment " .. ENV[key] }
    elseif section[key] and section[key] ~= "" then
      out[key] = { value = section[key], source = in_file }
    elseif key == "base_url" and section.uat == "true" then
      out[key] = { value = M.UAT_URL, source = in_file .. " uat = true" }
    elseif key == "base_url" then
      out[key] = { value = M.DEFAULT_URL, source = "default" }
    else
      out[key] = { source = "not set" }
    end
  end
  return out
end

-- "********" and the length: enough to tell which secret is set, nothing of it.
function M.mask(secret)
  return ("******** (%d bytes)"):format(#secret)
end

return M
