/*
** function.c (binding) -- keras.Function userdata: Keras's K.function. It
** holds the output nodes and the placeholders fed in, and compiles a plan per
** learning phase (0 inference, 1 training) once, for the largest batch seen:
** a call with a batch no larger than a previous one reuses the plan, so a
** function called in a loop compiles once. Each call checks the inputs'
** shapes against the placeholders, copies them in, runs the plan and returns
** new tensors.
*/
#include "lk.h"

#include <string.h>

#define LK_FUNCTION "keras.Function"

typedef struct lk_func {
  kr_ctx *ctx;
  int nin, nout;
  kr_node **in, **out;
  kr_plan *plan[2];
} lk_func;

static int f_gc(lua_State *L)
{
  lk_func *f = luaL_checkudata(L, 1, LK_FUNCTION);
  for (int t = 0; t < 2; t++) {
    kr_plan_free(f->plan[t]);
    f->plan[t] = NULL;
  }
  if (f->in) {
    for (int i = 0; i < f->nin; i++) kr_node_release(f->in[i]);
    kr_free(f->ctx, f->in);
    f->in = NULL;
  }
  if (f->out) {
    for (int i = 0; i < f->nout; i++) kr_node_release(f->out[i]);
    kr_free(f->ctx, f->out);
    f->out = NULL;
  }
  f->nin = f->nout = 0;
  return 0;
}

/* a list of nodes at idx into a new array of retained nodes */
static kr_node **node_list(lua_State *L, lk_func *f, int idx, const char *what, int *count)
{
  luaL_checktype(L, idx, LUA_TTABLE);
  lua_Integer n = luaL_len(L, idx);
  if (n > 100000) luaL_error(L, "K.function: too many %s (%I)", what, n);
  kr_node **a = kr_calloc(f->ctx, (size_t)(n ? n : 1) * sizeof *a);
  if (!a) lk_raise(L, f->ctx);
  *count = 0;
  for (lua_Integer i = 1; i <= n; i++) {
    lua_geti(L, idx, i);
    kr_node *nd = lk_testnode(L, -1);
    lua_pop(L, 1);
    if (!nd) {
      for (int k = 0; k < *count; k++) kr_node_release(a[k]);
      kr_free(f->ctx, a);
      luaL_error(L, "K.function: %s %I is not a symbolic tensor", what, i);
    }
    kr_node_retain(nd);
    a[(*count)++] = nd;
  }
  return a;
}

/* core.func(inputs, outputs): the placeholders must be inputs (keras.Input,
** K.placeholder, K.learning_phase()) */
static int f_new(lua_State *L)
{
  kr_ctx *ctx = lk_ctx(L);
  lk_func *f = lua_newuserdatauv(L, sizeof *f, 0);
  memset(f, 0, sizeof *f);
  f->ctx = ctx;
  luaL_setmetatable(L, LK_FUNCTION);
  f->in = node_list(L, f, 1, "input", &f->nin);
  f->out = node_list(L, f, 2, "output", &f->nout);
  for (int i = 0; i < f->nin; i++)
    if (f->in[i]->op != KR_OP_INPUT)
      return luaL_error(L, "K.function: input %d is a computed tensor (%s), not a placeholder such as an Input",
                        i + 1, kr_op_name(f->in[i]->op));
  return 1;
}

/* f:run(values, training): values a list of tensors (or numbers, nested
** tables), one per input; returns a list of tensors, one per output */
static int f_run(lua_State *L)
{
  lk_func *f = luaL_checkudata(L, 1, LK_FUNCTION);
  kr_ctx *ctx = f->ctx;
  luaL_checktype(L, 2, LUA_TTABLE);
  /* the training phase without batchnorm's moving-statistics updates, as
  ** Keras's K.function (they are updates, applied only when asked for) */
  int training = lua_toboolean(L, 3) ? 1 : 0;
  int mode = training ? KR_TRAINING_KEEP_STATS : 0;
  if (!f->in) return luaL_error(L, "K.function: the function has been freed");
  lua_Integer n = luaL_len(L, 2);
  if (n != f->nin)
    return luaL_error(L, "K.function: expected %d input%s, got %I", f->nin, f->nin == 1 ? "" : "s", n);
  int base = lua_gettop(L);
  luaL_checkstack(L, f->nin + 8, "K.function");
  kr_tensor **vals = lua_newuserdatauv(L, (size_t)(f->nin ? f->nin : 1) * sizeof *vals, 0);
  int64_t batch = -1;
  int batch_from = 0;
  for (int i = 0; i < f->nin; i++) {
    lua_geti(L, 2, i + 1);
    int t = lua_type(L, -1);
    if (t != LUA_TNUMBER && t != LUA_TTABLE && !lk_testtensor(L, -1))
      return luaL_error(L, "K.function: input %d must be a tensor, got %s", i + 1, luaL_typename(L, -1));
    vals[i] = lk_totensor(L, -1);   /* stays on the stack */
    const kr_shape *want = &f->in[i]->shape, *got = &vals[i]->shape;
    char a[128], b[128];
    int ok = want->ndim == got->ndim;
    for (int d = want->ndim > 0 && want->dim[0] < 0 ? 1 : 0; ok && d < want->ndim; d++)
      if (want->dim[d] != got->dim[d]) ok = 0;
    if (ok && want->ndim > 0 && want->dim[0] < 0) {
      int64_t k = -want->dim[0];
      if (got->dim[0] < 1 || got->dim[0] % k != 0) ok = 0;
      else if (batch < 0) {
        batch = got->dim[0] / k;
        batch_from = i + 1;
      } else if (got->dim[0] / k != batch) {
        return luaL_error(L, "K.function: input %d has %I samples but input %d has %I", i + 1,
                          (lua_Integer)(got->dim[0] / k), batch_from, (lua_Integer)batch);
      }
    }
    if (!ok)
      return luaL_error(L, "K.function: input %d has shape %s, expected %s", i + 1, kr_shape_str(got, a, sizeof a),
                        kr_shape_str(want, b, sizeof b));
    if (kr_tensor_has_nonfinite(vals[i]))
      return luaL_error(L, "K.function: input %d contains NaN or Inf", i + 1);
    lua_remove(L, -2);
  }
  if (batch < 0) batch = 1;
  kr_plan *p = f->plan[training];
  if (!p || kr_plan_max_batch(p) < batch) {
    kr_plan_free(p);
    f->plan[training] = NULL;
    p = kr_plan_new(ctx, f->nout, f->out, f->nin, f->in, batch, mode);
    if (!p) return luaL_error(L, "K.function: %s", kr_errmsg(ctx));
    f->plan[training] = p;
  }
  for (int i = 0; i < f->nin; i++) {
    float *dst = kr_plan_input(p, i);
    if (dst) memcpy(dst, KR_DATA(vals[i]), (size_t)kr_tensor_numel(vals[i]) * sizeof(float));
  }
  if (kr_plan_run(p, batch) != KR_OK) return luaL_error(L, "K.function: %s", kr_errmsg(ctx));
  lua_createtable(L, f->nout, 0);
  for (int i = 0; i < f->nout; i++) {
    kr_shape s = kr_plan_output_shape(p, i, batch);
    kr_tensor **slot = lk_newtensorslot(L);
    if (!(*slot = kr_tensor_new(ctx, &s))) return lk_raise(L, ctx);
    memcpy(KR_DATA(*slot), kr_plan_output(p, i), (size_t)kr_tensor_numel(*slot) * sizeof(float));
    lua_rawseti(L, -2, i + 1);
  }
  lua_replace(L, base + 1);
  lua_settop(L, base + 1);
  return 1;
}

static int f_counts(lua_State *L)
{
  lk_func *f = luaL_checkudata(L, 1, LK_FUNCTION);
  lua_pushinteger(L, f->nin);
  lua_pushinteger(L, f->nout);
  return 2;
}

/* how many plans were compiled and for which batch (tests: once per shape) */
static int f_plans(lua_State *L)
{
  lk_func *f = luaL_checkudata(L, 1, LK_FUNCTION);
  lua_newtable(L);
  for (int t = 0; t < 2; t++)
    if (f->plan[t]) {
      lua_pushinteger(L, kr_plan_max_batch(f->plan[t]));
      lua_rawseti(L, -2, t);
    }
  return 1;
}

static const luaL_Reg f_meta[] = {
  {"__gc", f_gc},
  {NULL, NULL}
};

static const luaL_Reg f_methods[] = {
  {"run", f_run},
  {"counts", f_counts},
  {"plans", f_plans},
  {"free", f_gc},
  {NULL, NULL}
};

static const luaL_Reg f_funcs[] = {
  {"func", f_new},
  {NULL, NULL}
};

int lk_open_function(lua_State *L)
{
  if (luaL_newmetatable(L, LK_FUNCTION)) {
    luaL_setfuncs(L, f_meta, 0);
    lua_newtable(L);
    luaL_setfuncs(L, f_methods, 0);
    lua_setfield(L, -2, "__index");
  }
  lua_pop(L, 1);
  luaL_setfuncs(L, f_funcs, 0);
  return 0;
}
