/*
** lkeras.h -- the public header for programs that embed lkeras.
**
** luaopen_keras opens the library in a Lua 5.4 state and returns the keras
** module table. A C program embeds it like this:
**
**   #include <lauxlib.h>
**   #include <lualib.h>
**   #include "lkeras.h"
**
**   lua_State *L = luaL_newstate();
**   luaL_openlibs(L);
**   luaL_requiref(L, "keras", luaopen_keras, 1);   (package.loaded.keras and the global keras)
**   lua_pop(L, 1);
**   if (luaL_dostring(L, "print(keras.tensor{{1, 2}, {3, 4}})") != LUA_OK)
**     fprintf(stderr, "%s\n", lua_tostring(L, -1));
**   lua_close(L);
**
** Lua code in that state then uses the global keras (or require "keras",
** which returns the same table). Link with libkeras.a and
** -llua5.4 -lopenblas -lhdf5_serial -lpng -ljpeg -lz -lm -lpthread -ldl. The first
** context checks which OpenBLAS kernels run (src/blas.c); keras.backend.blas_info()
** tells the result.
*/
#ifndef LKERAS_H
#define LKERAS_H

#include <lua.h>

#ifdef __cplusplus
extern "C" {
#endif

int luaopen_keras(lua_State *L);

#ifdef __cplusplus
}
#endif

#endif
