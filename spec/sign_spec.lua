-- orbt.sign: known-answer vectors, and vectors computed at test time by the
-- openssl command-line tool (an independent implementation).
local orbt = require("orbt")
local json = require("dkjson")
local shell = require("support.shell")

-- The vectors from an independent implementation ship in spec/fixtures; a
-- newer set beside the project (../shared) is checked too when present.
local function shared_vectors()
  local vectors = json.decode(assert(shell.read_file("spec/fixtures/signing.json"))).vectors
  local beside = shell.read_file("../shared/vectors/signing.json")
  for _, v in ipairs(beside and json.decode(beside).vectors or {}) do
    vectors[#vectors + 1] = v
  end
  return vectors
end

local function to_hex(s)
  return (s:gsub(".", function(c) return ("%02x"):format(c:byte()) end))
end

-- Base64 of a digest computed by openssl over a file's bytes.
local function openssl_b64(dir, name, data, mac_hex_key)
  shell.write_file(dir .. "/" .. name, data)
  local mac = mac_hex_key and ("-mac HMAC -macopt hexkey:" .. mac_hex_key) or ""
  local out, ok = shell.run(("openssl dgst -sha256 %s -binary %s/%s | base64 -w0"):format(mac, dir, name))
  assert(ok, "openssl failed")
  return out
end

local UTF8_SAMPLES = { "Zoë", "Ünïcødé", "日本語", "😀", "Ελληνικά", "€", "ß" }

local function random_bytes(n, avoid)
  local t = {}
  while #t < n do
    local b = math.random(0, 255)
    if not (avoid and avoid[b]) then
      t[#t + 1] = string.char(b)
    end
  end
  return table.concat(t)
end

local function random_text(n)
  local t = {}
  for i = 1, n do
    t[i] = math.random(4) == 1 and UTF8_SAMPLES[math.random(#UTF8_SAMPLES)]
      or string.char(math.random(32, 126))
  end
  return table.concat(t)
end

describe("orbt.sign", function()
  -- orbt.sign keeps the key of the last secret: a different secret of the
  -- same length, and going back, must each sign with their own key.
  it("signs with the secret it is given, call after call", function()
    local v = shared_vectors()[1]
    local function sign(secret)
      return orbt.sign{ method = v.method, body = v.body, client_id = v.client_id, api_key = "k",
        secret = secret, timestamp = v.timestamp }["x-signature"]
    end
    local other = v.secret:sub(1, -2) .. (v.secret:sub(-1) == "x" and "y" or "x")
    assert.equal(v.signature, sign(v.secret))
    local changed = sign(other)
    assert.are_not.equal(v.signature, changed)
    assert.equal(v.signature, sign(v.secret))
    assert.equal(changed, sign(other))
  end)

  it("matches every shared known-answer vector", function()
    local vectors = shared_vectors()
    assert.is_true(#vectors >= 3)
    for _, v in ipairs(vectors) do
      local h = assert(orbt.sign{ method = v.method, body = v.body, client_id = v.client_id,
        api_key = "any-key", secret = v.secret, timestamp = v.timestamp })
      assert.equal(v.body_hash, h["x-body-hash"])
      assert.equal(v.signature, h["x-signature"])
      assert.equal(v.timestamp, h["x-timestamp"])
      assert.equal(v.client_id, h["x-client-id"])
      assert.equal("any-key", h["x-api-key"])
    end
  end)

  it("matches openssl for random bodies, secrets and UTF-8 text", function()
    local seed = os.time()
    math.randomseed(seed)
    local dir = shell.tmpdir()
    for i = 1, 40 do
      local body = ({ "", random_bytes(math.random(1, 300)), random_text(math.random(1, 80)) })[i % 3 + 1]
      -- Secrets from 1 byte to past the 64-byte HMAC block (hashed first).
      local secret = i % 2 == 0 and random_bytes(math.random(1, 150))
        or random_text(math.random(1, 40))
      local method = ({ "GET", "POST", "PUT", "DELETE" })[math.random(4)]
      local client_id = random_text(math.random(5, 40)):gsub("[^%w%-]", "x")
      local timestamp = ("2026-%02d-%02dT%02d:%02d:%02d.%03dZ"):format(math.random(12),
        math.random(28), math.random(0, 23), math.random(0, 59), math.random(0, 59), math.random(0, 999))

      local body_hash = openssl_b64(dir, "body", body)
      local signature = openssl_b64(dir, "sts",
        method .. "\n" .. timestamp .. "\n" .. client_id .. "\n" .. body_hash, to_hex(secret))

      local h = assert(orbt.sign{ method = method, body = body, client_id = client_id,
        api_key = "k", secret = secret, timestamp = timestamp })
      assert.are.equal(body_hash, h["x-body-hash"], "body hash, seed " .. seed .. ", vector " .. i)
      assert.are.equal(signature, h["x-signature"], "signature, seed " .. seed .. ", vector " .. i)
    end
    shell.exec("rm -rf " .. shell.quote(dir))
  end)

  -- HMAC keys shorter than the 64-byte SHA-256 block are padded, longer ones
  -- hashed first. Each key holds NUL, LF, CR and 0xff, which a C string or a
  -- header could not carry. `openssl mac` takes the key in hex, so any byte.
  it("matches `openssl mac` for keys of 1 to 200 bytes of any value and bodies up to 1 MiB", function()
    math.randomseed(os.time())
    local dir = shell.tmpdir()
    local function openssl(cmd, file, data)
      shell.write_file(dir .. "/" .. file, data)
      local out, ok = shell.run(cmd:format(dir .. "/" .. file) .. " | base64 -w0")
      assert(ok and #out == 44, "openssl failed: " .. out)
      return out
    end
    local keys = { "\0", "\n", "\r", "\255", "k" }
    for _, n in ipairs{ 63, 64, 65, 200 } do
      keys[#keys + 1] = ("\0\n\r\255" .. random_bytes(n)):sub(1, n)
      keys[#keys + 1] = (random_bytes(n) .. "\255\r\n\0"):sub(-n)
    end
    local bodies = { "", '{"fullName":"Zoë","initialFunds":1}', random_bytes(4096):rep(256) }
    assert.equal(1048576, #bodies[3])
    local client_id, timestamp = "3f1c2a9e-8b7d-4e6f-9a01-23456789abcd", "2026-06-03T10:00:00.000Z"
    local seen = {}
    for b, body in ipairs(bodies) do
      local method = body == "" and "GET" or "POST"
      local body_hash = openssl("openssl dgst -sha256 -binary %s", "body", body)
      for k, key in ipairs(keys) do
        local signature = openssl("openssl mac -digest SHA256 -macopt hexkey:" .. to_hex(key) .. " -binary -in %s HMAC",
          "sts", method .. "\n" .. timestamp .. "\n" .. client_id .. "\n" .. body_hash)
        local h, err = orbt.sign{ method = method, body = body, client_id = client_id, api_key = "k",
          secret = key, timestamp = timestamp }
        assert.is_nil(err, ("key %d: %s"):format(k, tostring(err)))
        local what = ("key %d (%d bytes), body %d"):format(k, #key, b)
        assert.equal(body_hash, h["x-body-hash"], what)
        assert.equal(signature, h["x-signature"], what)
        assert.is_nil(seen[signature], what .. ": the same signature as another key")
        seen[signature] = true
      end
    end
    shell.exec("rm -rf " .. shell.quote(dir))
  end)

  it("hashes a missing body as the empty string", function()
    local h = assert(orbt.sign{ method = "GET", client_id = "c", api_key = "k", secret = "s" })
    assert.equal("47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSuFU=", h["x-body-hash"])
  end)

  it("upper-cases the method it signs", function()
    local base = { client_id = "c", api_key = "k", secret = "s", timestamp = "2026-06-03T10:00:00.000Z" }
    base.method = "post"
    local lower = assert(orbt.sign(base))
    base.method = "POST"
    local upper = assert(orbt.sign(base))
    assert.equal(upper["x-signature"], lower["x-signature"])
  end)

  it("stamps the current UTC time with milliseconds when no timestamp is given", function()
    local h = assert(orbt.sign{ method = "GET", client_id = "c", api_key = "k", secret = "s" })
    local y, mo, d, hh, mm, ss = h["x-timestamp"]:match("^(%d%d%d%d)%-(%d%d)%-(%d%d)T(%d%d):(%d%d):(%d%d)%.%d%d%dZ$")
    assert.is_not_nil(y, h["x-timestamp"])
    local now = os.time()
    local utc = os.time{ year = y, month = mo, day = d, hour = hh, min = mm, sec = ss }
      + os.difftime(now, os.time(os.date("!*t", now)))
    assert.is_true(math.abs(utc - now) <= 5)
  end)

  it("returns exactly the five authentication headers", function()
    local h = assert(orbt.sign{ method = "GET", client_id = "c", api_key = "k", secret = "s" })
    local names = {}
    for name in pairs(h) do
      names[#names + 1] = name
    end
    table.sort(names)
    assert.same({ "x-api-key", "x-body-hash", "x-client-id", "x-signature", "x-timestamp" }, names)
  end)

  it("refuses bad input with an invalid error naming the field", function()
    local good = { method = "GET", client_id = "c", api_key = "k", secret = "s" }
    local cases = {
      { "method", { method = "GE T" } },
      { "secret", { secret = "" } },
      { "secret", { secret = 42 } },
      { "secret", { secret = false } },
      { "api_key", { api_key = "k\r\nX-Evil: 1" } },
      { "client_id", { client_id = "c\0" } },
      { "timestamp", { timestamp = "2026-06-03 10:00:00" } },
      { "body", { body = 42 } },
      { "extra", { extra = true } },
      { "method", { ["method\0"] = "GET" } }, -- unknown; its name is cut at the NUL
      { "method", { method = "" } },
      { "method", { method = ("A"):rep(17) } },
      { "client_id", { client_id = false } },
    }
    for _, case in ipairs(cases) do
      local opts = {}
      for k, v in pairs(good) do opts[k] = v end
      for k, v in pairs(case[2]) do opts[k] = v end
      local h, err = orbt.sign(opts)
      assert.is_nil(h)
      assert.equal("invalid", err.kind)
      assert.equal(case[1], err.field)
    end
  end)

  it("refuses a field name that is not a string", function()
    local h, err = orbt.sign{ method = "GET", client_id = "c", api_key = "k", secret = "s", [1] = "x" }
    assert.is_nil(h)
    assert.equal("invalid", err.kind)
    assert.matches("must be strings", err.message)
  end)

  -- Input read in one pass (a plain table) and field by field (a table with
  -- a metatable, whose fields may come from __index) signs the same.
  it("signs a table whose fields come from __index like a plain one", function()
    local v = shared_vectors()[1]
    local fields = { method = v.method, body = v.body, client_id = v.client_id, api_key = "k",
      secret = v.secret, timestamp = v.timestamp }
    local proxy = setmetatable({}, { __index = function(_, key) return fields[key] end })
    local plain = assert(orbt.sign(fields))
    assert.same(plain, assert(orbt.sign(proxy)))
    assert.equal(v.signature, plain["x-signature"])
    local with_extra = setmetatable({ extra = 1 }, { __index = fields })
    local h, err = orbt.sign(with_extra)
    assert.is_nil(h)
    assert.equal("extra", err.field)
  end)
end)
