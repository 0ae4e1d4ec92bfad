-- luacheck: lua/ is the shipped layer; spec/ runs under busted.
max_line_length = 120
files["spec"] = { std = "+busted" }
-- Handlers run inside nginx, which provides the `ngx` API.
files["spec/nginx"] = { std = "+ngx_lua" }
files["lua/orbt/cosocket.lua"] = { std = "+ngx_lua" }
