-- luacheck: lua/ is the shipped layer; spec/ runs under busted.
max_line_length = 120
files["spec"] = { std = "+busted" }
