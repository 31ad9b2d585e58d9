/*
** test_capi.c -- the C API of lkeras.h (API.md 15) from a C host: handles,
** lk_predict and lk_train_on_batch equal to the Lua API's predict_on_batch
** and train_on_batch, no engine allocation and no Lua garbage per call after
** the first, weights, tensors, the memory limit, the state's allocator, and
** misuse (each returns an error with a clear message, never a crash).
*/
#include <lauxlib.h>
#include <lua.h>
#include <lualib.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "check.h"
#include "lkeras.h"

/* a counting allocator: the host's view of the state's memory */
typedef struct counter {
  size_t bytes, peak;
} counter;

static void *count_alloc(void *ud, void *ptr, size_t osize, size_t nsize)
{
  counter *c = ud;
  if (ptr) c->bytes -= osize;
  if (nsize == 0) {
    free(ptr);
    return NULL;
  }
  void *p = realloc(ptr, nsize);
  if (p) c->bytes += nsize;
  else if (ptr) c->bytes += osize;
  if (c->bytes > c->peak) c->peak = c->bytes;
  return p;
}

static lua_State *open_state(counter *c)
{
  lua_State *L = c ? lua_newstate(count_alloc, c) : luaL_newstate();
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

/* global `name` (a keras model) as a handle */
static lk_model *handle(lua_State *L, const char *name)
{
  lua_getglobal(L, name);
  lk_model *m = lk_model_get(L, -1);
  lua_pop(L, 1);
  if (!m) fprintf(stderr, "lk_model_get: %s\n", lk_errmsg(L));
  return m;
}

static int has(const char *msg, const char *part)
{
  if (strstr(msg, part)) return 1;
  fprintf(stderr, "message '%s' lacks '%s'\n", msg, part);
  return 0;
}

/* the tensor in global `name` copied into out (n floats); 1 if it fit */
static int tensor_global(lua_State *L, const char *name, float *out, int64_t n)
{
  lua_getglobal(L, name);
  int nd;
  int64_t shape[LK_MAX_DIMS];
  float *d = lk_tensor_data(L, -1, &nd, shape);
  int64_t k = 1;
  for (int i = 0; d && i < nd; i++) k *= shape[i];
  int ok = d && k == n;
  if (ok) memcpy(out, d, (size_t)n * sizeof(float));
  lua_pop(L, 1);
  return ok;
}

static const char *MODELS =
  "keras.random.seed(11)\n"
  "local function make()\n"
  "  local m = keras.Sequential{keras.layers.Dense{16, input_shape = {4}, activation = 'tanh'},\n"
  "                             keras.layers.Dense{3, activation = 'softmax'}}\n"
  "  m:compile{optimizer = keras.optimizers.Adam{lr = 0.01}, loss = 'categorical_crossentropy'}\n"
  "  return m\n"
  "end\n"
  "a, b = make(), make()\n"
  "b:set_weights(a:get_weights())\n"
  "keras.random.seed(5)\n"
  "x = keras.random.random{5, 4}\n"
  "y = keras.utils.to_categorical(keras.tensor{0, 1, 2, 1, 0}, 3)\n";

static void test_equal_to_lua(void)
{
  lua_State *L = open_state(NULL);
  CHECK(run(L, MODELS));
  lk_model *ma = handle(L, "a");
  CHECK(ma != NULL);
  if (!ma) {
    lua_close(L);
    return;
  }
  int64_t nin = 0, nout = 0;
  CHECK(lk_model_io(ma, &nin, &nout) == LK_OK);
  CHECK(nin == 4 && nout == 3);
  float x[20], y[15], p[15], q[15];
  CHECK(tensor_global(L, "x", x, 20));
  CHECK(tensor_global(L, "y", y, 15));
  /* predict: equal to predict_on_batch */
  CHECK(lk_predict(ma, x, 5, p) == LK_OK);
  CHECK(run(L, "pb = b:predict_on_batch(x)"));
  CHECK(tensor_global(L, "pb", q, 15));
  int same = 1;
  for (int i = 0; i < 15; i++) same &= p[i] == q[i];
  CHECK_MSG(same, "lk_predict differs from predict_on_batch");
  /* one row at a time gives the same rows */
  for (int r = 0; r < 5; r++) {
    float one[3];
    CHECK(lk_predict(ma, x + 4 * r, 1, one) == LK_OK);
    for (int k = 0; k < 3; k++) CHECK_NEAR(one[k], p[3 * r + k], 1e-6);
  }
  /* train: the same losses and weights as train_on_batch, step by step */
  for (int step = 0; step < 5; step++) {
    float loss = -1;
    CHECK(lk_train_on_batch(ma, x, y, 5, &loss) == LK_OK);
    CHECK(run(L, "lb = b:train_on_batch(x, y)"));
    lua_getglobal(L, "lb");
    double lb = lua_tonumber(L, -1);
    lua_pop(L, 1);
    CHECK_NEAR(loss, lb, 1e-6 * fabs(lb));
  }
  size_t na = 0, nb = 0;
  CHECK(lk_get_weights(ma, NULL, 0, &na) == LK_OK);
  CHECK(na == 4 * 16 + 16 + 16 * 3 + 3);
  float *wa = malloc(na * sizeof *wa), *wb = malloc(na * sizeof *wb);
  CHECK(lk_get_weights(ma, wa, na, &na) == LK_OK);
  lk_model *mb = handle(L, "b");
  CHECK(mb && lk_get_weights(mb, wb, na, &nb) == LK_OK && nb == na);
  double diff = 0;
  for (size_t i = 0; i < na; i++) diff = fmax(diff, fabs(wa[i] - wb[i]));
  CHECK_MSG(diff <= 1e-6, "weights differ by %g after the same steps", diff);
  /* the order of get_weights: the first kernel's first value, the last bias's last */
  CHECK(run(L, "w = a:get_weights(); w1, wl = w[1]:get(1, 1), w[#w]:get(3)"));
  lua_getglobal(L, "w1");
  lua_getglobal(L, "wl");
  CHECK(wa[0] == (float)lua_tonumber(L, -2));
  CHECK(wa[na - 1] == (float)lua_tonumber(L, -1));
  lua_pop(L, 2);
  /* set_weights: b takes a's, then both predict alike */
  for (size_t i = 0; i < na; i++) wa[i] *= 0.5f;
  CHECK(lk_set_weights(mb, wa, na) == LK_OK);
  CHECK(lk_get_weights(mb, wb, na, &nb) == LK_OK);
  CHECK(memcmp(wa, wb, na * sizeof *wa) == 0);
  CHECK(run(L, "w = b:get_weights(); w1 = w[1]:get(1, 1)"));
  lua_getglobal(L, "w1");
  CHECK(wa[0] == (float)lua_tonumber(L, -1));
  lua_pop(L, 1);
  free(wa);
  free(wb);

  /* a predict plan that holds packed weights (gemm_packed.c, forced on)
  ** packs again after lk_set_weights: against a float64 forward pass */
  CHECK(run(L, "was_packed = keras._core.gemm_packed(1); "
               "c = keras.Sequential{keras.layers.Dense(16, {input_shape = {4}, activation = 'relu'}), "
               "keras.layers.Dense(3)}; c:compile{optimizer = 'sgd', loss = 'mse'}"));
  lk_model *mc = handle(L, "c");
  float xc[2 * 4] = {0.5f, -1.0f, 0.25f, 2.0f, -0.75f, 0.125f, 1.5f, -0.5f}, yc[2 * 3];
  CHECK(mc && lk_predict(mc, xc, 2, yc) == LK_OK);   /* the plan is built (packed) here */
  CHECK(run(L, "keras._core.gemm_packed(was_packed)"));
  size_t nc = 0;
  CHECK(lk_get_weights(mc, NULL, 0, &nc) == LK_OK && nc == 4 * 16 + 16 + 16 * 3 + 3);
  float wc[4 * 16 + 16 + 16 * 3 + 3];
  for (size_t i = 0; i < nc; i++) wc[i] = (float)((int)(i * 7 % 17) - 8) / 16.0f;
  CHECK(lk_set_weights(mc, wc, nc) == LK_OK);
  CHECK(lk_predict(mc, xc, 2, yc) == LK_OK);
  const float *k1 = wc, *b1 = wc + 64, *k2 = wc + 80, *b2 = wc + 128;
  double worst = 0;
  for (int r = 0; r < 2; r++) {
    double h[16];
    for (int j = 0; j < 16; j++) {
      double a = b1[j];
      for (int i = 0; i < 4; i++) a += (double)xc[4 * r + i] * k1[16 * i + j];
      h[j] = a > 0 ? a : 0;
    }
    for (int o = 0; o < 3; o++) {
      double a = b2[o];
      for (int j = 0; j < 16; j++) a += h[j] * k2[3 * j + o];
      worst = fmax(worst, fabs(a - yc[3 * r + o]));
    }
  }
  CHECK_MSG(worst <= 1e-5, "lk_predict after lk_set_weights is off by %g (a stale packed copy?)", worst);

  /* no engine allocation and no Lua garbage per call after the first */
  float xb[32 * 4], yb[32 * 3], out[32 * 3], loss;
  for (int i = 0; i < 32 * 4; i++) xb[i] = (float)((i * 37) % 11) / 11.0f;
  for (int i = 0; i < 32; i++)
    for (int k = 0; k < 3; k++) yb[3 * i + k] = k == i % 3;
  CHECK(lk_predict(ma, xb, 1, out) == LK_OK);
  CHECK(lk_predict(ma, xb, 32, out) == LK_OK);
  CHECK(lk_train_on_batch(ma, xb, yb, 32, &loss) == LK_OK);
  CHECK(lk_train_on_batch(ma, xb, yb, 8, &loss) == LK_OK);
  lua_gc(L, LUA_GCCOLLECT);
  lua_gc(L, LUA_GCSTOP);
  uint64_t allocs = lk_memory_allocs(L);
  int kb = lua_gc(L, LUA_GCCOUNT), b = lua_gc(L, LUA_GCCOUNTB);
  int ok = 1;
  for (int i = 0; i < 200; i++) {
    ok &= lk_predict(ma, xb, 1, out) == LK_OK;
    ok &= lk_predict(ma, xb, 32, out) == LK_OK;
    ok &= lk_predict(ma, xb, 7, out) == LK_OK;
    ok &= lk_train_on_batch(ma, xb, yb, 32, &loss) == LK_OK;
    ok &= lk_train_on_batch(ma, xb, yb, 8, &loss) == LK_OK;
  }
  CHECK(ok);
  CHECK_MSG(lk_memory_allocs(L) == allocs, "%llu engine allocations in 1000 calls",
            (unsigned long long)(lk_memory_allocs(L) - allocs));
  CHECK_MSG(lua_gc(L, LUA_GCCOUNT) == kb && lua_gc(L, LUA_GCCOUNTB) == b, "Lua memory grew by %d bytes",
            (lua_gc(L, LUA_GCCOUNT) - kb) * 1024 + lua_gc(L, LUA_GCCOUNTB) - b);
  lua_gc(L, LUA_GCRESTART);

  /* compiling again: the handle follows the model's new trainer */
  CHECK(run(L, "a:compile{optimizer = keras.optimizers.SGD{lr = 0.1}, loss = 'mse'}"));
  CHECK(lk_train_on_batch(ma, x, y, 5, &loss) == LK_OK);
  CHECK(run(L, "b:set_weights(a:get_weights()); b:compile{optimizer = keras.optimizers.SGD{lr = 0.1}, loss = 'mse'}"));
  float l2;
  CHECK(lk_train_on_batch(ma, x, y, 5, &loss) == LK_OK);
  CHECK(lk_train_on_batch(mb, x, y, 5, &l2) == LK_OK);
  CHECK_NEAR(loss, l2, 1e-6);
  lk_model_release(ma);
  lk_model_release(mb);
  lk_model_release(mc);
  lua_close(L);
}

static void test_misuse(void)
{
  lua_State *L = open_state(NULL);
  CHECK(run(L, MODELS));
  CHECK(run(L, "local i1, i2 = keras.layers.Input{shape = {2}}, keras.layers.Input{shape = {2}}\n"
               "two = keras.Model{inputs = {i1, i2}, outputs = keras.layers.Dense{1}(keras.layers.add{i1, i2})}\n"
               "plain = keras.Sequential{keras.layers.Dense{2, input_shape = {4}}}\n"
               "local i3 = keras.layers.Input{shape = {keras.None, 3}}\n"
               "seq = keras.Model{inputs = i3, outputs = keras.layers.Dense{2}(i3)}\n"));
  lk_model *m = handle(L, "a");
  float x[8] = {0}, y[6] = {0}, loss;
  CHECK(lk_predict(m, NULL, 1, y) == LK_EARG && has(lk_errmsg(L), "lk_predict: x is NULL"));
  CHECK(lk_predict(m, x, 1, NULL) == LK_EARG && has(lk_errmsg(L), "lk_predict: y is NULL"));
  CHECK(lk_predict(m, x, 0, y) == LK_EARG && has(lk_errmsg(L), "rows must be >= 1, got 0"));
  CHECK(lk_predict(m, x, -3, y) == LK_EARG && has(lk_errmsg(L), "got -3"));
  CHECK(lk_train_on_batch(m, x, NULL, 1, &loss) == LK_EARG && has(lk_errmsg(L), "lk_train_on_batch: y is NULL"));
  CHECK(lk_train_on_batch(m, x, y, 0, &loss) == LK_EARG && has(lk_errmsg(L), "rows must be >= 1"));
  x[1] = NAN;
  CHECK(lk_predict(m, x, 1, y) == LK_EARG && has(lk_errmsg(L), "NaN or Inf"));
  x[1] = 0;
  CHECK(lk_predict(NULL, x, 1, y) == LK_EARG);
  CHECK(lk_model_io(NULL, NULL, NULL) == LK_EARG);
  lk_model_release(NULL);
  size_t n;
  CHECK(lk_get_weights(m, y, 6, &n) == LK_EARG && has(lk_errmsg(L), "the buffer holds 6"));
  CHECK(lk_get_weights(m, y, 6, NULL) == LK_EARG && has(lk_errmsg(L), "count is NULL"));
  CHECK(lk_set_weights(m, y, 6) == LK_EARG && has(lk_errmsg(L), "weight values, got 6"));
  CHECK(lk_set_weights(m, NULL, 6) == LK_EARG && has(lk_errmsg(L), "buf is NULL"));
  /* a model with two inputs */
  lk_model *t = handle(L, "two");
  CHECK(t != NULL);
  CHECK(lk_predict(t, x, 1, y) == LK_EARG && has(lk_errmsg(L), "2 inputs and 1 outputs"));
  CHECK(lk_model_io(t, NULL, NULL) == LK_EARG && has(lk_errmsg(L), "one input and one output"));
  lk_model_release(t);
  /* a None length */
  lk_model *s = handle(L, "seq");
  CHECK(s && lk_predict(s, x, 1, y) == LK_ELUA && has(lk_errmsg(L), "None length"));
  lk_model_release(s);
  /* training a model that was not compiled */
  lk_model *p = handle(L, "plain");
  CHECK(p && lk_predict(p, x, 1, y) == LK_OK);
  CHECK(p && lk_train_on_batch(p, x, y, 1, &loss) == LK_ELUA && has(lk_errmsg(L), "compile"));
  lk_model_release(p);
  /* not a model */
  lua_pushinteger(L, 3);
  CHECK(lk_model_get(L, -1) == NULL && has(lk_errmsg(L), "expected a keras model"));
  CHECK(lk_tensor_data(L, -1, NULL, NULL) == NULL && has(lk_errmsg(L), "not a keras tensor"));
  lua_pop(L, 1);
  CHECK(lua_gettop(L) == 0);
  /* tensors both ways */
  int64_t shape[2] = {2, 3};
  float v[6] = {1, 2, 3, 4, 5, 6};
  CHECK(lk_push_tensor(L, v, 2, shape) == LK_OK);
  lua_setglobal(L, "pushed");
  CHECK(run(L, "s = pushed:sum(); r, c = pushed.shape[1], pushed.shape[2]"));
  lua_getglobal(L, "s");
  CHECK(lua_tonumber(L, -1) == 21);
  lua_pop(L, 1);
  lua_getglobal(L, "pushed");
  int nd;
  int64_t sh[LK_MAX_DIMS];
  float *d = lk_tensor_data(L, -1, &nd, sh);
  CHECK(d && nd == 2 && sh[0] == 2 && sh[1] == 3 && d[5] == 6);
  lua_pop(L, 1);
  int64_t bad[2] = {2, -1};
  CHECK(lk_push_tensor(L, v, 2, bad) == LK_EARG && has(lk_errmsg(L), "negative"));
  CHECK(lk_push_tensor(L, NULL, 2, shape) == LK_EARG && has(lk_errmsg(L), "data is NULL"));
  CHECK(lk_push_tensor(L, v, 9, shape) == LK_EARG && has(lk_errmsg(L), "ndim must be 0 to 8"));
  CHECK(lua_gettop(L) == 0);
  CHECK(lk_set_num_threads(L, 0) == LK_EARG && has(lk_errmsg(L), ">= 1"));
  CHECK(lk_set_num_threads(L, 1) == LK_OK);

  /* a memory limit below what a plan needs */
  CHECK(lk_set_memory_limit(L, lk_memory_in_use(L) + 64) == LK_OK);
  static float big[4096 * 4], bigy[4096 * 3];
  CHECK(lk_predict(m, big, 4096, bigy) == LK_EMEM && has(lk_errmsg(L), "memory limit of"));
  CHECK(lk_set_memory_limit(L, 0) == LK_OK);
  CHECK(lk_predict(m, big, 4096, bigy) == LK_OK);
  /* the Lua side: keras.backend.set_memory_limit, an error naming the limit */
  CHECK(run(L, "keras.backend.set_memory_limit(keras.backend.get_memory_limit() + 1000)\n"
               "assert(keras.backend.get_memory_limit() == 1000)\n"
               "local ok, err = pcall(keras.random.random, {1000, 1000})\n"
               "assert(not ok and err:find('memory limit of 1000 bytes', 1, true), err)\n"
               "keras.backend.set_memory_limit(0)\n"
               "assert(keras.random.random{1000, 1000}:size() == 1000000)\n"));
  lk_model_release(m);

  /* a handle used after its state is closed */
  lk_model *late = handle(L, "b");
  lua_close(L);
  CHECK(lk_predict(late, x, 1, y) == LK_ECLOSED);
  CHECK(lk_train_on_batch(late, x, y, 1, &loss) == LK_ECLOSED);
  CHECK(lk_get_weights(late, NULL, 0, &n) == LK_ECLOSED);
  lk_model_release(late);
}

/* the engine's memory comes from the state's allocator */
static void test_allocator(void)
{
  counter c = {0, 0};
  lua_State *L = open_state(&c);
  size_t before = c.bytes;
  CHECK(run(L, "big = keras.random.random{1000, 1000}"));
  CHECK_MSG(c.bytes >= before + 4000000, "the host's allocator saw %zu bytes more", c.bytes - before);
  size_t held = c.bytes;
  CHECK(run(L, "big = nil; collectgarbage(); collectgarbage()"));
  CHECK_MSG(c.bytes + 4000000 <= held, "freed: %zu -> %zu", held, c.bytes);
  lua_close(L);
  CHECK_MSG(c.bytes == 0, "%zu bytes left after lua_close", c.bytes);
}

int main(void)
{
  test_equal_to_lua();
  test_misuse();
  test_allocator();
  return check_report("test_capi");
}
