-- support/certs.lua: certificates for TLS specs, made with the openssl tool.
local shell = require("support.shell")

local M = {}

-- Makes, in dir: a private CA (ca.pem, ca.key), a server certificate it
-- signed for localhost and 127.0.0.1 (server.pem, server.key), and an
-- untrusted self-signed one for the same names (untrusted.pem,
-- untrusted.key). Returns the paths: ca, cert, key, untrusted_cert,
-- untrusted_key.
function M.make(dir)
  local function file(name)
    return shell.quote(dir .. "/" .. name)
  end
  local steps = {
    ("openssl req -x509 -newkey rsa:2048 -nodes -days 2 -subj /CN=orbt-spec-ca -keyout %s -out %s")
      :format(file("ca.key"), file("ca.pem")),
    ("openssl req -newkey rsa:2048 -nodes -subj /CN=localhost -keyout %s -out %s")
      :format(file("server.key"), file("server.csr")),
    ("printf 'subjectAltName=DNS:localhost,IP:127.0.0.1\\n' > %s"):format(file("san.ext")),
    ("openssl x509 -req -in %s -CA %s -CAkey %s -CAcreateserial -days 2 -extfile %s -out %s")
      :format(file("server.csr"), file("ca.pem"), file("ca.key"), file("san.ext"), file("server.pem")),
    ("openssl req -x509 -newkey rsa:2048 -nodes -days 2 -subj /CN=localhost "
      .. "-addext subjectAltName=DNS:localhost,IP:127.0.0.1 -keyout %s -out %s")
      :format(file("untrusted.key"), file("untrusted.pem")),
  }
  for _, step in ipairs(steps) do
    local out, ok = shell.run(step .. " 2>&1")
    assert(ok, out)
  end
  return { ca = dir .. "/ca.pem", cert = dir .. "/server.pem", key = dir .. "/server.key",
    untrusted_cert = dir .. "/untrusted.pem", untrusted_key = dir .. "/untrusted.key" }
end

return M
