-- luacheck --std lua54 (run by make test): lua/, tests/ and scripts/ with zero warnings
std = "lua54"
max_line_length = 120
-- tests: the specs compare as `if not (|got - want| <= tol) then error`, which a NaN fails;
-- W581's `x > y` would let a NaN pass, so the NaN-safe form stays and W581 is off here only.
-- self = false in tests and scripts: a method that overrides a hook (a Callback's
-- on_epoch_end, a Layer's call) keeps Keras's signature even where it needs no self.
files["tests"] = {std = "+busted", ignore = {"581"}, self = false}
-- scripts run under the lkeras host, where keras is a global (or require "keras")
files["scripts"] = {globals = {"keras"}, self = false}
files["tests/fuzz"] = {globals = {"keras"}}
