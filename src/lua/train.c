/*
** train.c (binding) -- keras.Optimizer and keras.Trainer userdata.
** The trainer runs whole epochs in C; when Lua asked for progress, the loop
** calls back through lk_batch (throttled by min_interval, or every batch for
** per-batch callbacks), and through lk_batch_begin before every batch when
** a callback defines on_batch_begin (else no Lua runs there). The callback runs under lua_pcall so that a Lua error
** never unwinds through the engine; it is raised again once the loop returned.
*/
#include "lk.h"

#include <string.h>

/* ---- optimizer ---- */

static const char *const optim_names[] = {"sgd", "rmsprop", "adagrad", "adadelta", "adam", "adamax", "nadam", NULL};

static kr_optim *check_optim(lua_State *L, int idx)
{
  kr_optim **slot = luaL_checkudata(L, idx, LK_OPTIM);
  if (!*slot) luaL_argerror(L, idx, "optimizer has been freed");
  return *slot;
}

static int o_gc(lua_State *L)
{
  kr_optim **slot = luaL_checkudata(L, 1, LK_OPTIM);
  if (*slot) {
    kr_optim_free(*slot);
    *slot = NULL;
  }
  return 0;
}

static double *cfg_field(kr_optim_cfg *c, const char *k)
{
  if (!strcmp(k, "lr")) return &c->lr;
  if (!strcmp(k, "momentum")) return &c->momentum;
  if (!strcmp(k, "decay")) return &c->decay;
  if (!strcmp(k, "rho")) return &c->rho;
  if (!strcmp(k, "epsilon")) return &c->epsilon;
  if (!strcmp(k, "beta_1")) return &c->beta_1;
  if (!strcmp(k, "beta_2")) return &c->beta_2;
  if (!strcmp(k, "schedule_decay")) return &c->schedule_decay;
  if (!strcmp(k, "clipnorm")) return &c->clipnorm;
  if (!strcmp(k, "clipvalue")) return &c->clipvalue;
  return NULL;
}

static const char *const cfg_numbers[] = {"lr", "momentum", "decay", "rho", "epsilon", "beta_1", "beta_2",
                                          "schedule_decay", "clipnorm", "clipvalue", NULL};

/* core.optimizer{kind=, lr=, ...}: the Lua side has filled every default */
static int o_new(lua_State *L)
{
  kr_ctx *ctx = lk_ctx(L);
  luaL_checktype(L, 1, LUA_TTABLE);
  kr_optim_cfg c;
  memset(&c, 0, sizeof c);
  lua_getfield(L, 1, "kind");
  c.kind = luaL_checkoption(L, -1, NULL, optim_names);
  lua_pop(L, 1);
  for (int i = 0; cfg_numbers[i]; i++) {
    lua_getfield(L, 1, cfg_numbers[i]);
    if (!lua_isnil(L, -1)) {
      if (!lua_isnumber(L, -1))
        return luaL_error(L, "optimizer: %s must be a number, got %s", cfg_numbers[i], luaL_typename(L, -1));
      *cfg_field(&c, cfg_numbers[i]) = lua_tonumber(L, -1);
    }
    lua_pop(L, 1);
  }
  lua_getfield(L, 1, "nesterov");
  c.nesterov = lua_toboolean(L, -1);
  lua_getfield(L, 1, "amsgrad");
  c.amsgrad = lua_toboolean(L, -1);
  lua_pop(L, 2);
  kr_optim **slot = lua_newuserdatauv(L, sizeof *slot, 0);
  *slot = NULL;
  luaL_setmetatable(L, LK_OPTIM);
  if (!(*slot = kr_optim_new(ctx, &c))) return lk_raise(L, ctx);
  return 1;
}

static int o_get(lua_State *L)
{
  kr_optim *o = check_optim(L, 1);
  const char *k = luaL_checkstring(L, 2);
  if (!strcmp(k, "iterations")) {
    lua_pushinteger(L, (lua_Integer)kr_optim_iterations(o));
    return 1;
  }
  double *f = cfg_field(kr_optim_config(o), k);
  if (!f) return luaL_argerror(L, 2, "unknown optimizer setting");
  lua_pushnumber(L, *f);
  return 1;
}

static int o_set(lua_State *L)
{
  kr_optim *o = check_optim(L, 1);
  const char *k = luaL_checkstring(L, 2);
  if (!strcmp(k, "iterations")) {
    lua_Integer it = luaL_checkinteger(L, 3);
    if (it < 0) return luaL_argerror(L, 3, "iterations must be >= 0");
    kr_optim_set_iterations(o, it);
    return 0;
  }
  double *f = cfg_field(kr_optim_config(o), k);
  if (!f) return luaL_argerror(L, 2, "unknown optimizer setting");
  double v = luaL_checknumber(L, 3);
  if (v != v) return luaL_argerror(L, 3, "NaN");
  *f = v;
  return 0;
}

static int o_slots(lua_State *L)
{
  kr_optim *o = check_optim(L, 1);
  int n = kr_optim_nslots(o);
  lua_createtable(L, n, 0);
  for (int i = 0; i < n; i++) {
    kr_tensor *t = kr_optim_slot(o, i);
    kr_tensor_retain(t);
    lk_pushtensor(L, t);
    lua_rawseti(L, -2, i + 1);
  }
  return 1;
}

/* The constraints of n vars from the list at idx (nil: none): entries false
** or {kind = "max_norm" | "non_neg" | "unit_norm" | "min_max_norm", axes =
** {0-based axes}, max_value =, min_value =, rate =}; NULL when the list is nil,
** else an array anchored on the stack (one more value there). */
static const char *const constraint_kinds[] = {"none", "max_norm", "non_neg", "unit_norm", "min_max_norm", NULL};

static kr_constraint *constraint_list(lua_State *L, int idx, int n)
{
  if (lua_isnoneornil(L, idx)) return NULL;
  idx = lua_absindex(L, idx);
  luaL_checktype(L, idx, LUA_TTABLE);
  if (luaL_len(L, idx) != n) luaL_error(L, "constraints: expected %d entries, got %d", n, (int)luaL_len(L, idx));
  kr_constraint *a = lua_newuserdatauv(L, (size_t)(n ? n : 1) * sizeof *a, 0);
  memset(a, 0, (size_t)(n ? n : 1) * sizeof *a);
  for (int i = 0; i < n; i++) {
    if (lua_geti(L, idx, i + 1) == LUA_TTABLE) {
      lua_getfield(L, -1, "kind");
      a[i].kind = luaL_checkoption(L, -1, NULL, constraint_kinds);
      lua_pop(L, 1);
      static const char *const num[] = {"max_value", "min_value", "rate"};
      double *dst[] = {&a[i].max_value, &a[i].min_value, &a[i].rate};
      for (int k = 0; k < 3; k++) {
        lua_getfield(L, -1, num[k]);
        *dst[k] = lua_isnil(L, -1) ? 0 : luaL_checknumber(L, -1);
        lua_pop(L, 1);
      }
      if (lua_getfield(L, -1, "axes") == LUA_TTABLE) {
        int m = (int)luaL_len(L, -1);
        for (int k = 1; k <= m; k++) {
          lua_geti(L, -1, k);
          lua_Integer ax = luaL_checkinteger(L, -1);
          lua_pop(L, 1);
          if (ax < 0 || ax >= KR_MAX_DIMS) luaL_error(L, "constraints: axis %d out of range", (int)ax);
          a[i].axes |= 1u << ax;
        }
      }
      lua_pop(L, 1);
    }
    lua_pop(L, 1);
  }
  return a;
}

/* opt:bind{variable nodes}[, constraints]: fresh slots for these weights (a
** model whose trainers are made later, one per input shape, binds at compile);
** constraints as constraint_list reads them */
static int o_bind(lua_State *L)
{
  kr_ctx *ctx = lk_ctx(L);
  kr_optim *o = check_optim(L, 1);
  luaL_checktype(L, 2, LUA_TTABLE);
  lua_Integer n = luaL_len(L, 2);
  if (n < 0 || n > 100000) return luaL_argerror(L, 2, "bad variable list");
  kr_tensor **vt = lua_newuserdatauv(L, (size_t)(n ? n : 1) * sizeof *vt, 0);
  for (lua_Integer i = 0; i < n; i++) {
    lua_geti(L, 2, i + 1);
    kr_node *v = lk_checknode(L, -1);
    lua_pop(L, 1);
    if (v->op != KR_OP_VARIABLE || !v->value) return luaL_error(L, "bind: entry %I is not a variable", i + 1);
    vt[i] = v->value;
  }
  kr_constraint *cons = constraint_list(L, 3, (int)n);
  if (kr_optim_bind(o, (int)n, vt) != KR_OK) return lk_raise(L, ctx);
  for (int i = 0; cons && i < (int)n; i++)
    if (kr_optim_constrain(o, i, &cons[i]) != KR_OK) return lk_raise(L, ctx);
  return 0;
}

/* ---- trainer ---- */

typedef struct lk_trainer {
  kr_trainer *t;
  int nin, ntgt, nsw, nout, nlog;
} lk_trainer;

static lk_trainer *check_trainer(lua_State *L, int idx)
{
  lk_trainer *u = luaL_checkudata(L, idx, LK_TRAINER);
  if (!u->t) luaL_argerror(L, idx, "trainer has been freed");
  return u;
}

/* the engine's trainer of the keras.Trainer at idx, NULL if it is not one
** (or was freed): for the C API (capi.c) */
kr_trainer *lk_totrainer(lua_State *L, int idx)
{
  lk_trainer *u = luaL_testudata(L, idx, LK_TRAINER);
  return u ? u->t : NULL;
}

static int tr_gc(lua_State *L)
{
  lk_trainer *u = luaL_checkudata(L, 1, LK_TRAINER);
  if (u->t) {
    kr_trainer_free(u->t);
    u->t = NULL;
  }
  return 0;
}

/* nodes from spec[field] into an array anchored on the stack */
static kr_node **node_list(lua_State *L, int spec, const char *field, int *n)
{
  lua_getfield(L, spec, field);
  if (lua_isnil(L, -1)) {
    *n = 0;
    return NULL;
  }
  luaL_checktype(L, -1, LUA_TTABLE);
  int k = (int)luaL_len(L, -1);
  if (k < 0 || k > 100000) luaL_error(L, "trainer: bad list '%s'", field);
  kr_node **a = lua_newuserdatauv(L, (size_t)(k + 1) * sizeof *a, 0);
  for (int i = 0; i < k; i++) {
    lua_geti(L, -2, i + 1);
    a[i] = lk_checknode(L, -1);
    lua_pop(L, 1);
  }
  lua_remove(L, -2);   /* keep the array userdata, drop the Lua list (the spec holds the nodes) */
  *n = k;
  return a;
}

static int tr_new(lua_State *L)
{
  kr_ctx *ctx = lk_ctx(L);
  luaL_checktype(L, 1, LUA_TTABLE);
  kr_trainer_spec s;
  memset(&s, 0, sizeof s);
  s.inputs = node_list(L, 1, "inputs", &s.nin);
  s.targets = node_list(L, 1, "targets", &s.ntgt);
  s.weights = node_list(L, 1, "weights", &s.nsw);
  s.outputs = node_list(L, 1, "outputs", &s.nout);
  s.logs = node_list(L, 1, "logs", &s.nlog);
  s.vars = node_list(L, 1, "vars", &s.nvar);
  lua_getfield(L, 1, "constraints");
  s.constraints = constraint_list(L, -1, s.nvar);
  lua_getfield(L, 1, "keep_optimizer");
  s.keep_optim = lua_toboolean(L, -1);
  lua_pop(L, 1);
  lua_getfield(L, 1, "optimizer");
  if (!lua_isnil(L, -1)) s.optim = check_optim(L, -1);
  int optidx = lua_gettop(L);
  lk_trainer *u = lua_newuserdatauv(L, sizeof *u, 1);
  memset(u, 0, sizeof *u);
  luaL_setmetatable(L, LK_TRAINER);
  lua_pushvalue(L, optidx);
  lua_setiuservalue(L, -2, 1);   /* the optimizer lives as long as the trainer */
  if (!(u->t = kr_trainer_new(ctx, &s))) return lk_raise(L, ctx);
  if (lua_getfield(L, 1, "share_arena") != LUA_TNIL) kr_trainer_share_arena(u->t, check_trainer(L, -1)->t);
  lua_pop(L, 1);
  u->nin = s.nin;
  u->ntgt = s.ntgt;
  u->nsw = s.nsw;
  u->nout = s.nout;
  u->nlog = s.nlog;
  return 1;
}

/* a Lua list of tensors as kr_data; the array is anchored on the stack */
static void data_arg(lua_State *L, int idx, kr_data *d, const char *what)
{
  d->n = 0;
  d->t = NULL;
  if (lua_isnoneornil(L, idx)) return;
  luaL_checktype(L, idx, LUA_TTABLE);
  int n = (int)luaL_len(L, idx);
  if (n > 10000) luaL_error(L, "%s: too many arrays", what);
  kr_tensor **a = lua_newuserdatauv(L, (size_t)(n + 1) * sizeof *a, 0);
  for (int i = 0; i < n; i++) {
    lua_geti(L, idx, i + 1);
    a[i] = lk_testtensor(L, -1);
    if (!a[i]) luaL_error(L, "%s: array %d is not a tensor (got %s)", what, i + 1, luaL_typename(L, -1));
    lua_pop(L, 1);
  }
  d->n = n;
  d->t = a;
}

typedef struct cb_state {
  lua_State *L;
  int fn;          /* stack index of the Lua function */
  int failed;      /* the callback raised: its error is on the stack top */
  int begin_fn;    /* stack index of the before-batch function, 0 if none */
} cb_state;

static void push_logs(lua_State *L, int n, const double *v)
{
  lua_createtable(L, n, 0);
  for (int i = 0; i < n; i++) {
    lua_pushnumber(L, v[i]);
    lua_rawseti(L, -2, i + 1);
  }
}

static int lk_batch(void *ud, int64_t batch_index, int64_t batch_size, int nlogs, const double *cur,
                    const double *mean)
{
  cb_state *cb = ud;
  lua_State *L = cb->L;
  if (!lua_checkstack(L, 8)) {
    lua_pushliteral(L, "callback: stack overflow");
    cb->failed = 1;
    return 1;
  }
  lua_pushvalue(L, cb->fn);
  lua_pushinteger(L, (lua_Integer)batch_index);
  lua_pushinteger(L, (lua_Integer)batch_size);
  push_logs(L, nlogs, cur);
  push_logs(L, nlogs, mean);
  if (lua_pcall(L, 4, 1, 0) != LUA_OK) {
    cb->failed = 1;   /* leave the error object on the stack */
    return 1;
  }
  int stop = lua_toboolean(L, -1);
  lua_pop(L, 1);
  return stop;
}

/* before a batch: begin_fn(batch_index, batch_size); its result is ignored
** (Keras checks stop_training after the batch), an error stops the loop */
static int lk_batch_begin(void *ud, int64_t batch_index, int64_t batch_size)
{
  cb_state *cb = ud;
  lua_State *L = cb->L;
  if (!lua_checkstack(L, 4)) {
    lua_pushliteral(L, "callback: stack overflow");
    cb->failed = 1;
    return 1;
  }
  lua_pushvalue(L, cb->begin_fn);
  lua_pushinteger(L, (lua_Integer)batch_index);
  lua_pushinteger(L, (lua_Integer)batch_size);
  if (lua_pcall(L, 2, 0, 0) != LUA_OK) {
    cb->failed = 1;   /* leave the error object on the stack */
    return 1;
  }
  return 0;
}

/* after a loop: raise the engine's or the callback's error, or say it stopped */
static int finish(lua_State *L, kr_ctx *ctx, int st, cb_state *cb, int nlogs, const double *logs)
{
  if (st == KR_ESTOP && cb->failed) return lua_error(L);
  if (st == KR_ESTOP) {
    push_logs(L, nlogs, logs);
    lua_pushboolean(L, 1);
    return 2;
  }
  if (st != KR_OK) return lk_raise(L, ctx);
  push_logs(L, nlogs, logs);
  lua_pushboolean(L, 0);
  return 2;
}

/* tr:fit_epoch(x, y, sw, shuffle, batch_size, fn, min_interval, begin_fn) -> logs, stopped */
static int tr_fit_epoch(lua_State *L)
{
  kr_ctx *ctx = lk_ctx(L);
  lk_trainer *u = check_trainer(L, 1);
  lua_settop(L, 9);   /* fixed argument slots: the arrays below are pushed above them */
  kr_data x, y, sw;
  data_arg(L, 2, &x, "fit");
  data_arg(L, 3, &y, "fit");
  data_arg(L, 4, &sw, "fit");
  int shuffle = lua_toboolean(L, 5);
  lua_Integer bs = luaL_checkinteger(L, 6);
  int has_fn = !lua_isnoneornil(L, 7);
  double min_interval = luaL_optnumber(L, 8, 0.0);
  if (has_fn) luaL_checktype(L, 7, LUA_TFUNCTION);
  int has_begin = !lua_isnoneornil(L, 9);
  if (has_begin) luaL_checktype(L, 9, LUA_TFUNCTION);
  if (x.n < 1) return luaL_error(L, "fit: no input arrays");
  const kr_tensor *x0 = x.t[0];
  int64_t n = x0->shape.ndim ? x0->shape.dim[0] : 0;
  int64_t *idx = lua_newuserdatauv(L, (size_t)(n ? n : 1) * sizeof *idx, 0);
  for (int64_t i = 0; i < n; i++) idx[i] = i;
  if (shuffle) kr_rng_shuffle(ctx, idx, n);
  double *logs = lua_newuserdatauv(L, (size_t)(u->nlog + 1) * sizeof *logs, 0);
  cb_state cb = {L, 7, 0, has_begin ? 9 : 0};
  int st = kr_trainer_fit_epoch(u->t, &x, &y, &sw, idx, n, bs, has_fn ? lk_batch : NULL,
                                has_begin ? lk_batch_begin : NULL, &cb, min_interval, logs);
  return finish(L, ctx, st, &cb, u->nlog, logs);
}

/* tr:evaluate(x, y, sw, batch_size, fn) -> logs, stopped */
static int tr_evaluate(lua_State *L)
{
  kr_ctx *ctx = lk_ctx(L);
  lk_trainer *u = check_trainer(L, 1);
  lua_settop(L, 6);
  kr_data x, y, sw;
  data_arg(L, 2, &x, "evaluate");
  data_arg(L, 3, &y, "evaluate");
  data_arg(L, 4, &sw, "evaluate");
  lua_Integer bs = luaL_checkinteger(L, 5);
  int has_fn = !lua_isnoneornil(L, 6);
  if (has_fn) luaL_checktype(L, 6, LUA_TFUNCTION);
  double *logs = lua_newuserdatauv(L, (size_t)(u->nlog + 1) * sizeof *logs, 0);
  cb_state cb = {L, 6, 0, 0};
  int st = kr_trainer_evaluate(u->t, &x, &y, &sw, bs, has_fn ? lk_batch : NULL, &cb, logs);
  return finish(L, ctx, st, &cb, u->nlog, logs);
}

static int tr_predict(lua_State *L)
{
  kr_ctx *ctx = lk_ctx(L);
  lk_trainer *u = check_trainer(L, 1);
  lua_settop(L, 3);
  kr_data x;
  data_arg(L, 2, &x, "predict");
  lua_Integer bs = luaL_checkinteger(L, 3);
  kr_tensor **out = lua_newuserdatauv(L, (size_t)(u->nout + 1) * sizeof *out, 0);
  if (kr_trainer_predict(u->t, &x, bs, out) != KR_OK) return lk_raise(L, ctx);
  lua_createtable(L, u->nout, 0);
  for (int i = 0; i < u->nout; i++) {
    lk_pushtensor(L, out[i]);
    lua_rawseti(L, -2, i + 1);
  }
  return 1;
}

static int one(lua_State *L, int train)
{
  kr_ctx *ctx = lk_ctx(L);
  lk_trainer *u = check_trainer(L, 1);
  kr_data x, y, sw;
  const char *what = train ? "train_on_batch" : "test_on_batch";
  lua_settop(L, 4);
  data_arg(L, 2, &x, what);
  data_arg(L, 3, &y, what);
  data_arg(L, 4, &sw, what);
  double *logs = lua_newuserdatauv(L, (size_t)(u->nlog + 1) * sizeof *logs, 0);
  int st = train ? kr_trainer_train_batch(u->t, &x, &y, &sw, logs) : kr_trainer_test_batch(u->t, &x, &y, &sw, logs);
  if (st != KR_OK) return lk_raise(L, ctx);
  push_logs(L, u->nlog, logs);
  return 1;
}

/* The fast paths of predict_on_batch, predict of a few rows and
** train_on_batch (training.lua): one input and one output, tensors of
** exactly the model's shapes. Nothing is allocated and no Lua value made
** after the first call for a row count (predict_rows with an out tensor).
** They return nil when they do not apply (another shape, several inputs,
** NaN in the data, an engine error): the caller then takes the general
** path, which checks everything and reports as it always did. */

/* tr:predict_rows(x[, out[, max_rows]]) -> out (a new tensor when not
** given) or nil; nil too when x has more than max_rows rows */
static int tr_predict_rows(lua_State *L)
{
  kr_ctx *ctx = lk_ctx(L);
  lk_trainer *u = check_trainer(L, 1);
  lua_Integer max_rows = luaL_optinteger(L, 4, LUA_MAXINTEGER);
  lua_settop(L, 3);
  kr_tensor *x = lk_testtensor(L, 2), *out = lk_testtensor(L, 3);
  kr_shape ys;
  if (!x || (!out && !lua_isnil(L, 3)) || !kr_trainer_rows_shape(u->t, 0, &x->shape, &ys) ||
      x->shape.dim[0] > max_rows || (out && !kr_shape_eq(&out->shape, &ys))) {
    lua_pushnil(L);
    return 1;
  }
  if (!out) {
    kr_tensor **slot = lk_newtensorslot(L);
    if (!(*slot = kr_tensor_new(ctx, &ys))) return lk_raise(L, ctx);
    out = *slot;
  }
  if (kr_trainer_predict_rows(u->t, KR_DATA(x), x->shape.dim[0], KR_DATA(out)) != KR_OK) lua_pushnil(L);
  return 1;
}

/* tr:train_rows(x, y) -> the logged values (total loss first), or nil */
static int tr_train_rows(lua_State *L)
{
  lk_trainer *u = check_trainer(L, 1);
  kr_tensor *x = lk_testtensor(L, 2), *y = lk_testtensor(L, 3);
  kr_shape ys;
  if (!x || !y || !kr_trainer_rows_shape(u->t, 1, &x->shape, &ys) || !kr_shape_eq(&y->shape, &ys) ||
      kr_tensor_has_nonfinite(x) || kr_tensor_has_nonfinite(y) ||
      kr_trainer_train_rows(u->t, KR_DATA(x), KR_DATA(y), x->shape.dim[0], NULL) != KR_OK) {
    lua_pushnil(L);
    return 1;
  }
  int n;
  const double *logs = kr_trainer_logs(u->t, &n);
  luaL_checkstack(L, n, "train_on_batch: too many logged values");
  for (int i = 0; i < n; i++) lua_pushnumber(L, logs[i]);
  return n;
}

/* tr:set_dist(world or nil, fusion_bytes, {state tensors}[, overlap_first_bytes]):
** data-parallel fit over the world (a keras.Dist, kept alive by the
** registry); overlap_first_bytes > 0: the reduction overlapped with the
** backward pass, its first bucket that large */
static int tr_set_dist(lua_State *L)
{
  kr_ctx *ctx = lk_ctx(L);
  lk_trainer *u = check_trainer(L, 1);
  if (lua_isnoneornil(L, 2)) {
    kr_trainer_set_dist(u->t, NULL, 0, 0, NULL);
    return 0;
  }
  struct kr_dist *d = lk_checkdist(L, 2);
  lua_Number fusion = luaL_checknumber(L, 3);
  if (!(fusion >= 1)) return luaL_argerror(L, 3, "fusion size must be >= 1 byte");
  int n = 0;
  if (!lua_isnoneornil(L, 4)) {
    luaL_checktype(L, 4, LUA_TTABLE);
    n = (int)luaL_len(L, 4);
  }
  kr_tensor **st = lua_newuserdatauv(L, (size_t)(n + 1) * sizeof *st, 0);
  for (int i = 0; i < n; i++) {
    lua_geti(L, 4, i + 1);
    st[i] = lk_checktensor(L, -1);
    lua_pop(L, 1);
  }
  lua_Number first = luaL_optnumber(L, 5, 0);
  if (!(first >= 0)) return luaL_argerror(L, 5, "the overlap's first bucket must be >= 0 bytes");
  if (kr_trainer_set_dist(u->t, d, (size_t)fusion, n, st) != KR_OK) return lk_raise(L, ctx);
  if (kr_trainer_set_overlap(u->t, (size_t)first) != KR_OK) return lk_raise(L, ctx);
  return 0;
}

/* tr:dist_stats() -> seconds in the distributed steps' collectives, steps,
** the world's rows in the last distributed train_on_batch, the overlap's
** buckets (0: off), whether the gradients are summed in shared memory,
** the split step's choice (1 split, 0 whole, -1 not yet), the steps taken
** on the shared state (the weights and slots one copy per host), and of
** those the steps taken in chunks */
static int tr_dist_stats(lua_State *L)
{
  lk_trainer *u = check_trainer(L, 1);
  double sec, rows;
  int64_t steps;
  kr_trainer_dist_stats(u->t, &sec, &steps, &rows);
  lua_pushnumber(L, sec);
  lua_pushinteger(L, (lua_Integer)steps);
  lua_pushnumber(L, rows);
  lua_pushinteger(L, (lua_Integer)kr_trainer_overlap_buckets(u->t));
  lua_pushboolean(L, kr_trainer_dist_shared(u->t));
  double ss, ws;
  lua_pushinteger(L, kr_trainer_dist_split(u->t, &ss, &ws));
  lua_pushinteger(L, (lua_Integer)kr_trainer_dist_state_steps(u->t));
  lua_pushinteger(L, (lua_Integer)kr_trainer_dist_chunked_steps(u->t));
  return 8;
}

static int tr_train_batch(lua_State *L) { return one(L, 1); }
static int tr_test_batch(lua_State *L) { return one(L, 0); }

static const luaL_Reg o_methods[] = {
  {"get", o_get},
  {"set", o_set},
  {"slots", o_slots},
  {"bind", o_bind},
  {"free", o_gc},
  {NULL, NULL}
};

static const luaL_Reg tr_methods[] = {
  {"fit_epoch", tr_fit_epoch},
  {"evaluate", tr_evaluate},
  {"predict", tr_predict},
  {"train_batch", tr_train_batch},
  {"predict_rows", tr_predict_rows},
  {"train_rows", tr_train_rows},
  {"test_batch", tr_test_batch},
  {"set_dist", tr_set_dist},
  {"dist_stats", tr_dist_stats},
  {"free", tr_gc},
  {NULL, NULL}
};

static const luaL_Reg funcs[] = {
  {"optimizer", o_new},
  {"trainer", tr_new},
  {NULL, NULL}
};

int lk_open_train(lua_State *L)
{
  lk_new_class(L, LK_OPTIM, o_methods, o_gc, o_gc);
  lk_new_class(L, LK_TRAINER, tr_methods, tr_gc, tr_gc);
  luaL_setfuncs(L, funcs, 0);
  return 0;
}
