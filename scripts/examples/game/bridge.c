/*
** bridge.c -- see bridge.h. Models are pinned in the Lua registry; each call
** copies the caller's floats into a keras tensor kept for that row count
** (src/lua/lk.h gives its data pointer), calls the model's method and copies
** the result back.
*/
#include "bridge.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <lauxlib.h>

#include "lua/lk.h"

#define GM_SLOTS 4   /* row counts with a kept input tensor (the game uses 1 and its batch) */

struct gm_model {
  lua_State *L;
  int ref;                 /* the model in the registry */
  int64_t nin, nout;
  int64_t rows[GM_SLOTS];  /* row count of each kept tensor pair, 0: free */
  int xref[GM_SLOTS], yref[GM_SLOTS];
  char err[512];
};

static int fail(gm_model *m, const char *what)
{
  lua_State *L = m->L;
  const char *msg = lua_type(L, -1) == LUA_TSTRING ? lua_tostring(L, -1) : "(no message)";
  if (!strncmp(msg, what, strlen(what))) snprintf(m->err, sizeof m->err, "%s", msg);   /* it names itself */
  else snprintf(m->err, sizeof m->err, "%s: %s", what, msg);
  lua_pop(L, 1);
  return 1;
}

/* the size of axis 1 of a shape {None, n}, or -1 */
static int64_t axis1(lua_State *L, int idx)
{
  int64_t n = -1;
  if (lua_istable(L, idx) && lua_rawlen(L, idx) == 2) {
    lua_rawgeti(L, idx, 2);
    if (lua_isinteger(L, -1)) n = lua_tointeger(L, -1);
    lua_pop(L, 1);
  }
  return n;
}

/* (model) -> its input and output sizes, or -1 -1; run protected: reading a
** field of something that is not a model may raise */
static int io_sizes(lua_State *L)
{
  if (!lua_istable(L, 1)) return luaL_error(L, "expected a keras model, got %s", luaL_typename(L, 1));
  lua_getfield(L, 1, "input_shape");
  lua_getfield(L, 1, "output_shape");
  lua_pushinteger(L, axis1(L, 2));
  lua_pushinteger(L, axis1(L, 3));
  return 2;
}

gm_model *gm_model_get(lua_State *L, int idx)
{
  gm_model *m = calloc(1, sizeof *m);
  if (!m) {
    lua_pushliteral(L, "gm_model_get: out of memory");
    return NULL;
  }
  m->L = L;
  idx = lua_absindex(L, idx);
  lua_pushcfunction(L, io_sizes);
  lua_pushvalue(L, idx);
  if (lua_pcall(L, 1, 2, 0) != LUA_OK) {
    free(m);
    lua_pushfstring(L, "gm_model_get: %s", lua_tostring(L, -1));
    lua_remove(L, -2);
    return NULL;
  }
  m->nin = lua_tointeger(L, -2);
  m->nout = lua_tointeger(L, -1);
  lua_pop(L, 2);
  if (m->nin < 1 || m->nout < 1) {
    free(m);
    lua_pushliteral(L, "gm_model_get: expected a built model with one input and one output of shape (None, n)");
    return NULL;
  }
  lua_pushvalue(L, idx);
  m->ref = luaL_ref(L, LUA_REGISTRYINDEX);
  return m;
}

void gm_model_release(gm_model *m)
{
  if (!m) return;
  for (int i = 0; i < GM_SLOTS; i++)
    if (m->rows[i]) {
      luaL_unref(m->L, LUA_REGISTRYINDEX, m->xref[i]);
      luaL_unref(m->L, LUA_REGISTRYINDEX, m->yref[i]);
    }
  luaL_unref(m->L, LUA_REGISTRYINDEX, m->ref);
  free(m);
}

int gm_model_io(gm_model *m, int64_t *in_features, int64_t *out_features)
{
  *in_features = m->nin;
  *out_features = m->nout;
  return 0;
}

const char *gm_errmsg(gm_model *m) { return m->err; }

static int new_tensor(lua_State *L, int64_t rows, int64_t cols)
{
  kr_ctx *ctx = lk_ctx(L);
  kr_shape s;
  memset(&s, 0, sizeof s);
  s.ndim = 2;
  s.dim[0] = rows;
  s.dim[1] = cols;
  kr_tensor *t = kr_tensor_zeros(ctx, &s);
  if (!t) return 0;
  lk_pushtensor(L, t);
  return luaL_ref(L, LUA_REGISTRYINDEX);
}

/* the kept input (x) and target (y) tensors for this row count */
static int slot_for(gm_model *m, int64_t rows)
{
  int free_slot = -1;
  for (int i = 0; i < GM_SLOTS; i++) {
    if (m->rows[i] == rows) return i;
    if (!m->rows[i] && free_slot < 0) free_slot = i;
  }
  if (free_slot < 0) {
    snprintf(m->err, sizeof m->err, "bridge: more than %d different row counts", GM_SLOTS);
    return -1;
  }
  int xr = new_tensor(m->L, rows, m->nin), yr = xr ? new_tensor(m->L, rows, m->nout) : 0;
  if (!xr || !yr) {
    snprintf(m->err, sizeof m->err, "bridge: cannot allocate a %lld-row tensor", (long long)rows);
    return -1;
  }
  m->rows[free_slot] = rows;
  m->xref[free_slot] = xr;
  m->yref[free_slot] = yr;
  return free_slot;
}

static float *data_of(lua_State *L, int ref)
{
  lua_rawgeti(L, LUA_REGISTRYINDEX, ref);
  kr_tensor *t = lk_testtensor(L, -1);
  lua_pop(L, 1);   /* the registry keeps it */
  return KR_DATA(t);
}

int gm_predict(gm_model *m, const float *x, int64_t rows, float *y)
{
  lua_State *L = m->L;
  if (!x || !y || rows < 1) {
    snprintf(m->err, sizeof m->err, "gm_predict: expected buffers and rows >= 1, got rows %lld", (long long)rows);
    return 1;
  }
  int s = slot_for(m, rows);
  if (s < 0) return 1;
  memcpy(data_of(L, m->xref[s]), x, (size_t)(rows * m->nin) * sizeof *x);
  lua_rawgeti(L, LUA_REGISTRYINDEX, m->ref);
  lua_getfield(L, -1, "predict_on_batch");
  lua_insert(L, -2);
  lua_rawgeti(L, LUA_REGISTRYINDEX, m->xref[s]);
  if (lua_pcall(L, 2, 1, 0) != LUA_OK) return fail(m, "predict_on_batch");
  kr_tensor *t = lk_testtensor(L, -1);
  if (!t || kr_tensor_numel(t) != rows * m->nout) {
    lua_pushliteral(L, "the result is not a tensor of rows x output features");
    return fail(m, "predict_on_batch");
  }
  memcpy(y, KR_DATA(t), (size_t)(rows * m->nout) * sizeof *y);
  lua_pop(L, 1);
  return 0;
}

int gm_train_on_batch(gm_model *m, const float *x, const float *y, int64_t rows, float *loss)
{
  lua_State *L = m->L;
  if (!x || !y || rows < 1) {
    snprintf(m->err, sizeof m->err, "gm_train_on_batch: expected buffers and rows >= 1, got rows %lld",
             (long long)rows);
    return 1;
  }
  int s = slot_for(m, rows);
  if (s < 0) return 1;
  memcpy(data_of(L, m->xref[s]), x, (size_t)(rows * m->nin) * sizeof *x);
  memcpy(data_of(L, m->yref[s]), y, (size_t)(rows * m->nout) * sizeof *y);
  lua_rawgeti(L, LUA_REGISTRYINDEX, m->ref);
  lua_getfield(L, -1, "train_on_batch");
  lua_insert(L, -2);
  lua_rawgeti(L, LUA_REGISTRYINDEX, m->xref[s]);
  lua_rawgeti(L, LUA_REGISTRYINDEX, m->yref[s]);
  if (lua_pcall(L, 3, 1, 0) != LUA_OK) return fail(m, "train_on_batch");
  if (loss) *loss = (float)lua_tonumber(L, -1);
  lua_pop(L, 1);
  return 0;
}

/* the tensors of model:get_weights(), one after the other */
int gm_get_weights(gm_model *m, float *buf, size_t cap, size_t *count)
{
  lua_State *L = m->L;
  lua_rawgeti(L, LUA_REGISTRYINDEX, m->ref);
  lua_getfield(L, -1, "get_weights");
  lua_insert(L, -2);
  if (lua_pcall(L, 1, 1, 0) != LUA_OK) return fail(m, "get_weights");
  size_t n = 0;
  lua_Integer k = (lua_Integer)lua_rawlen(L, -1);
  for (lua_Integer i = 1; i <= k; i++) {
    lua_rawgeti(L, -1, i);
    kr_tensor *t = lk_testtensor(L, -1);
    size_t len = t ? (size_t)kr_tensor_numel(t) : 0;
    if (t && buf && n + len <= cap) memcpy(buf + n, KR_DATA(t), len * sizeof *buf);
    n += len;
    lua_pop(L, 1);
  }
  lua_pop(L, 1);
  if (count) *count = n;
  if (buf && n > cap) {
    snprintf(m->err, sizeof m->err, "gm_get_weights: the model has %zu weights, the buffer holds %zu", n, cap);
    return 1;
  }
  return 0;
}

int gm_set_weights(gm_model *m, const float *buf, size_t count)
{
  lua_State *L = m->L;
  /* the model's own list, overwritten in place and set back */
  lua_rawgeti(L, LUA_REGISTRYINDEX, m->ref);
  lua_getfield(L, -1, "get_weights");
  lua_pushvalue(L, -2);
  if (lua_pcall(L, 1, 1, 0) != LUA_OK) {
    lua_remove(L, -2);
    return fail(m, "set_weights");
  }
  size_t n = 0;
  lua_Integer k = (lua_Integer)lua_rawlen(L, -1);
  for (lua_Integer i = 1; i <= k; i++) {
    lua_rawgeti(L, -1, i);
    kr_tensor *t = lk_testtensor(L, -1);
    size_t len = t ? (size_t)kr_tensor_numel(t) : 0;
    if (t && n + len <= count) memcpy(KR_DATA(t), buf + n, len * sizeof *buf);
    n += len;
    lua_pop(L, 1);
  }
  if (n != count) {
    lua_pop(L, 2);
    snprintf(m->err, sizeof m->err, "gm_set_weights: the model has %zu weights, got %zu", n, count);
    return 1;
  }
  lua_getfield(L, -2, "set_weights");
  lua_pushvalue(L, -3);
  lua_pushvalue(L, -3);
  if (lua_pcall(L, 2, 0, 0) != LUA_OK) {
    lua_remove(L, -2);
    lua_remove(L, -2);
    return fail(m, "set_weights");
  }
  lua_pop(L, 2);
  return 0;
}
