/*
** test_embed.c -- the library embedded in a C program, as a game or a tool
** would: open keras in its own lua_State, train and predict, twice side by
** side in two states that must not share anything (seeds, errors, weights).
*/
#include <lauxlib.h>
#include <lua.h>
#include <lualib.h>
#include <string.h>

#include "check.h"
#include "lkeras.h"

static lua_State *open_state(void)
{
  lua_State *L = luaL_newstate();
  luaL_openlibs(L);
  luaL_requiref(L, "keras", luaopen_keras, 1);
  lua_pop(L, 1);
  return L;
}

static int run(lua_State *L, const char *code)
{
  if (luaL_dostring(L, code) != LUA_OK) {
    fprintf(stderr, "lua error: %s\n", lua_tostring(L, -1));
    lua_pop(L, 1);
    return 0;
  }
  return 1;
}

static const char *TRAIN =
  "keras.random.seed(7)\n"
  "local x = keras.random.random{256, 2}\n"
  "local y = x:sum(1):gt(1.0):reshape{256, 1}\n"
  "model = keras.Sequential{keras.layers.Dense{16, input_dim = 2, activation = 'tanh'},\n"
  "                         keras.layers.Dense{1, activation = 'sigmoid'}}\n"
  "model:compile{optimizer = keras.optimizers.Adam{lr = 0.05}, loss = 'binary_crossentropy', metrics = {'accuracy'}}\n"
  "model:fit(x, y, {epochs = 30, batch_size = 32, verbose = 0})\n"
  "loss, acc = model:evaluate(x, y, {verbose = 0})\n"
  "p = model:predict(keras.tensor{{0.9, 0.9}, {0.05, 0.05}})\n"
  "p1, p2 = p:get(1, 1), p:get(2, 1)\n";

static double getnum(lua_State *L, const char *name)
{
  lua_getglobal(L, name);
  double v = lua_tonumber(L, -1);
  lua_pop(L, 1);
  return v;
}

int main(void)
{
  lua_State *a = open_state(), *b = open_state();
  CHECK(run(a, TRAIN));
  CHECK(run(b, TRAIN));
  /* the learned rule: x1 + x2 > 1 */
  CHECK_MSG(getnum(a, "acc") > 0.9, "accuracy %g", getnum(a, "acc"));
  CHECK(getnum(a, "p1") > 0.5);
  CHECK(getnum(a, "p2") < 0.5);
  /* two states with the same seed train identically, independently */
  CHECK(getnum(a, "loss") == getnum(b, "loss"));
  CHECK(getnum(a, "p1") == getnum(b, "p1"));
  /* an error in one state is a Lua error there, and the other goes on */
  CHECK(luaL_dostring(a, "keras.layers.Dense{-3}") != LUA_OK);
  CHECK(strstr(lua_tostring(a, -1), "Dense: units must be an integer >= 1, got -3") != NULL);
  lua_pop(a, 1);
  CHECK(run(b, "assert(model:predict(keras.tensor{{0.5, 0.5}}).shape[1] == 1)"));
  /* reseeding one state does not touch the other */
  CHECK(run(a, "keras.random.seed(1); r1 = keras.random.random{1}:get(1)"));
  CHECK(run(b, "keras.random.seed(1); keras.random.random{1}"));
  CHECK(run(a, "r2 = keras.random.random{1}:get(1); keras.random.seed(1); keras.random.random{1}; r3 = keras.random.random{1}:get(1)"));
  CHECK(getnum(a, "r2") == getnum(a, "r3"));
  lua_close(a);
  lua_close(b);
  return check_report("test_embed");
}
