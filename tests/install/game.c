/*
** game.c -- the smallest host built against an installed lkeras the way the
** docs say (cc game.c $(pkg-config --cflags --libs lkeras)), by
** tests/install_spec.lua: a model from Lua, trained and asked through the C
** API, and a .h5 save whose outcome depends on the build (HDF5=0: an error).
** Prints "loss <first> <last> pred <p> h5 <ok | the error>".
*/
#include <stdio.h>
#include <lauxlib.h>
#include <lualib.h>
#include <lkeras.h>

int main(int argc, char **argv)
{
  lua_State *L = luaL_newstate();
  luaL_openlibs(L);
  luaL_requiref(L, "keras", luaopen_keras, 1);
  lua_pop(L, 1);
  if (luaL_dostring(L, "keras.random.seed(1)\n"
                       "local m = keras.Sequential{keras.layers.Dense{8, input_shape = {2}, activation = 'tanh'},\n"
                       "                           keras.layers.Dense{1}}\n"
                       "m:compile{optimizer = keras.optimizers.SGD{lr = 0.1}, loss = 'mse'}\n"
                       "return m") != LUA_OK) {
    fprintf(stderr, "%s\n", lua_tostring(L, -1));
    return 1;
  }
  lk_model *m = lk_model_get(L, -1);
  if (!m) {
    fprintf(stderr, "%s\n", lk_errmsg(L));
    return 1;
  }
  float x[8] = {0, 0, 0, 1, 1, 0, 1, 1}, y[4] = {0, 1, 1, 2}, first = 0, loss = 0, p[4];
  for (int i = 0; i < 200; i++) {
    if (lk_train_on_batch(m, x, y, 4, &loss) != LK_OK) {
      fprintf(stderr, "%s\n", lk_errmsg(L));
      return 1;
    }
    if (i == 0) first = loss;
  }
  if (lk_predict(m, x, 4, p) != LK_OK) {
    fprintf(stderr, "%s\n", lk_errmsg(L));
    return 1;
  }
  printf("loss %.4f %.4f pred %.2f ", first, loss, p[3]);
  lua_setglobal(L, "model");
  lua_pushstring(L, argc > 1 ? argv[1] : "game_model.h5");
  lua_setglobal(L, "path");
  if (luaL_dostring(L, "model:save(path)") == LUA_OK) printf("h5 ok\n");
  else printf("h5 %s\n", lua_tostring(L, -1));
  lk_model_release(m);
  lua_close(L);
  return 0;
}
