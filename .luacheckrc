-- luacheck --std lua54 (run by make test): lua/, tests/ and scripts/ with zero warnings
std = "lua54"
max_line_length = 120
files["tests"] = {std = "+busted"}
-- scripts run under the lkeras host, where keras is a global (or require "keras")
files["scripts"] = {globals = {"keras"}}
files["tests/fuzz"] = {globals = {"keras"}}
