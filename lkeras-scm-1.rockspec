-- LuaRocks package of lkeras: `luarocks make` in a clone (after `make deps`)
-- builds with the Makefile (the C engine, build/keras.so and the lkeras host)
-- and installs the module and the host into the tree (see docs/install.md).
-- The C libraries come from Debian: `make deps` installs them.
rockspec_format = "3.0"
package = "lkeras"
version = "scm-1"
source = {
   url = "git+file:///dev/null",   -- built from a clone: `luarocks make` reads no source
}
description = {
   summary = "The Keras 2.2.4 API for Lua 5.4, with every bit of math in a C engine",
   detailed = [[
Sequential and functional models, layers, losses, optimizers and callbacks
with Keras 2.2.4's arguments and numbers; tensors, symbolic graphs with
automatic differentiation and training loops in C11 on OpenBLAS. Installs the
module `keras` (require "keras") and the `lkeras` command (a script host and
an interactive prompt).]],
   license = "unknown",
}
dependencies = {
   "lua >= 5.4, < 5.5",
}
build = {
   type = "make",
   makefile = "Makefile",
   build_target = "all",
   build_variables = {
      LUA_INC = "$(LUA_INCDIR)",
   },
   install_target = "rock-install",
   install_variables = {
      INST_LIBDIR = "$(LIBDIR)",
      INST_BINDIR = "$(BINDIR)",
   },
}
