rockspec_format = "3.0"
package = "orbt"
version = "0.2.0-1"
-- The tarball `make dist` builds from the tag v0.2.0, attached to the
-- GitHub release. It holds this rockspec, so no md5. Everything but version
-- and source is the same as in orbt-scm-1.rockspec (spec/version_spec.lua
-- checks).
source = {
   url = "https://github.com/orbt/orbt-lua/releases/download/v0.2.0/orbt-0.2.0.tar.gz",
   dir = "orbt-0.2.0",
}
description = {
   summary = "Lua client for the Orbt partner API, with a C core",
   detailed = [[
      Create consumers with initial funds and walk them, with HMAC-SHA256
      request signing, exact amounts and errors as values. The C core links
      libcurl (connections, proxies, TLS) and OpenSSL's libcrypto (hashing,
      HMAC); it reads HTTP/1.1 and JSON with readers of its own. Pagination
      and the nginx cosocket transport are pure Lua.
   ]],
   license = "MIT",
}
dependencies = {
   "lua >= 5.1",
   -- The orbt command (bin/orbt, Lua 5.4): arguments, and signals, isatty and
   -- fsync. On Debian they come as lua-argparse and lua-luv, which luarocks
   -- does not see: there, `luarocks make --deps-mode=none`.
   "argparse >= 0.7",
   "luv >= 1.36",
}
external_dependencies = {
   -- Debian keeps curl/curl.h in the multiarch include directory, which the
   -- compiler searches but luarocks does not: check for the library only.
   CURL = { library = "curl" },
   OPENSSL = { header = "openssl/evp.h", library = "crypto" },
}
build = {
   type = "builtin",
   modules = {
      orbt = {
         sources = {
            "src/orbt.c", "src/answer.c", "src/bridge.c", "src/buffer.c", "src/bulk.c",
            "src/client.c", "src/config.c", "src/error.c", "src/hooks.c", "src/http1.c",
            "src/json.c", "src/operations.c", "src/retry.c", "src/sign.c", "src/sign_lua.c",
            "src/transport.c", "src/url.c", "src/validate.c",
         },
         defines = { "_GNU_SOURCE" },
         incdirs = { "$(OPENSSL_INCDIR)" },
         libdirs = { "$(CURL_LIBDIR)", "$(OPENSSL_LIBDIR)" },
         libraries = { "curl", "crypto" },
      },
      ["orbt.pager"] = "lua/orbt/pager.lua",
      ["orbt.cosocket"] = "lua/orbt/cosocket.lua",
      ["orbt.cli.main"] = "lua/orbt/cli/main.lua",
      ["orbt.cli.config"] = "lua/orbt/cli/config.lua",
      ["orbt.cli.csv"] = "lua/orbt/cli/csv.lua",
      ["orbt.cli.import"] = "lua/orbt/cli/import.lua",
      ["orbt.cli.journal"] = "lua/orbt/cli/journal.lua",
      ["orbt.cli.output"] = "lua/orbt/cli/output.lua",
      ["orbt.cli.progress"] = "lua/orbt/cli/progress.lua",
      ["orbt.cli.sys"] = "lua/orbt/cli/sys.lua",
   },
   install = {
      bin = { orbt = "bin/orbt" },
   },
}
