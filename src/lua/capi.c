/*
** capi.c -- the C API of lkeras.h (API.md section 15): model handles, the
** float-buffer data path, weights, tensors, threads, the memory limit.
**
** A handle (lk_model) pins a model with a registry reference and caches the
** engine trainer that predicts or trains it, with a registry reference of its
** own (so the userdata cannot be collected and its address reused while it is
** cached). Each call checks, with raw table reads that neither allocate nor
** raise, that the model still uses that trainer (compile makes a new one);
** only when it does not, a protected call runs Model:_c_trainer
** (lua/keras/training.lua) to get the current one. The data then goes
** straight between the host's buffers and the compiled plans of src/train.c:
** no Lua values are made, and after the first call for a row count nothing is
** allocated.
**
** Every entry point returns an error code and leaves the message in the
** state's engine context (lk_errmsg); none raises a Lua error: whatever may
** raise (creating values, running Lua) runs under lua_pcall.
**
** The state's handles form a list owned by a registry userdata whose
** finalizer, run by lua_close, marks them closed: a handle used afterwards
** returns LK_ECLOSED (and says so on stderr in KR_DEBUG builds).
*/
#include "lk.h"
#include "../lkeras.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

struct lk_model {
  lua_State *L;          /* NULL once the state is closed */
  lua_Alloc alloc;       /* the state's allocator: the handle's own memory */
  void *alloc_ud;
  int ref;               /* the model */
  int key_trainer, key_predictor;   /* the strings "_trainer", "_predictor" */
  int ref_train, ref_pred;          /* the cached trainer userdata (LUA_NOREF: none) */
  const void *ud_train, *ud_pred;
  lk_model *next, **prevp;          /* the state's list of handles */
};

typedef struct lk_handles {
  lk_model *head;
} lk_handles;

static const char HANDLES_KEY = 'h';

/* the state's context without raising: NULL when keras is not opened there */
static kr_ctx *ctx_of(lua_State *L)
{
  return lk_ctx_or_null(L);
}

static int fail(lua_State *L, int code, const char *fmt, ...)
#if defined(__GNUC__)
    __attribute__((format(printf, 3, 4)))
#endif
    ;

static int fail(lua_State *L, int code, const char *fmt, ...)
{
  kr_ctx *ctx = ctx_of(L);
  if (!ctx) return code;
  char msg[KR_MSG_SIZE];
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(msg, sizeof msg, fmt, ap);
  va_end(ap);
  kr_fail(ctx, code, "%s", msg);
  return code;
}

/* ---- the state's list of handles ---- */

static int handles_gc(lua_State *L)
{
  lk_handles *h = lua_touserdata(L, 1);
  for (lk_model *m = h->head; m; m = m->next) {
    m->L = NULL;
    m->prevp = NULL;
  }
  h->head = NULL;
  return 0;
}

static lk_handles *handles(lua_State *L)
{
  if (lua_rawgetp(L, LUA_REGISTRYINDEX, &HANDLES_KEY) == LUA_TUSERDATA) {
    lk_handles *h = lua_touserdata(L, -1);
    lua_pop(L, 1);
    return h;
  }
  lua_pop(L, 1);
  lk_handles *h = lua_newuserdatauv(L, sizeof *h, 0);
  h->head = NULL;
  lua_createtable(L, 0, 1);
  lua_pushcfunction(L, handles_gc);
  lua_setfield(L, -2, "__gc");
  lua_setmetatable(L, -2);
  lua_rawsetp(L, LUA_REGISTRYINDEX, &HANDLES_KEY);
  return h;
}

/* a usable handle: 0, or the error code (a message where there is a state) */
static int check_handle(const lk_model *m, const char *what)
{
  if (!m) return LK_EARG;
  if (!m->L) {
#ifdef KR_DEBUG
    fprintf(stderr, "lkeras: %s: the model handle's lua_State has been closed (release handles before lua_close)\n",
            what);
#endif
    return LK_ECLOSED;
  }
  return LK_OK;
}

/* ---- handles ---- */

/* protected: the model at index 1 pinned, the handle's keys made */
static int model_get_pf(lua_State *L)
{
  lk_model *m = lua_touserdata(L, 2);
  lua_settop(L, 1);
  if (lua_type(L, 1) != LUA_TTABLE || lua_getfield(L, 1, "_c_trainer") != LUA_TFUNCTION)
    return luaL_error(L, "lk_model_get: expected a keras model at the index, got %s", luaL_typename(L, 1));
  lua_pop(L, 1);
  handles(L);
  lua_pushliteral(L, "_trainer");
  m->key_trainer = luaL_ref(L, LUA_REGISTRYINDEX);
  lua_pushliteral(L, "_predictor");
  m->key_predictor = luaL_ref(L, LUA_REGISTRYINDEX);
  lua_pushvalue(L, 1);
  m->ref = luaL_ref(L, LUA_REGISTRYINDEX);
  return 0;
}

static void unref_all(lua_State *L, lk_model *m)
{
  luaL_unref(L, LUA_REGISTRYINDEX, m->ref);
  luaL_unref(L, LUA_REGISTRYINDEX, m->key_trainer);
  luaL_unref(L, LUA_REGISTRYINDEX, m->key_predictor);
  luaL_unref(L, LUA_REGISTRYINDEX, m->ref_train);
  luaL_unref(L, LUA_REGISTRYINDEX, m->ref_pred);
}

lk_model *lk_model_get(lua_State *L, int idx)
{
  kr_ctx *ctx = ctx_of(L);
  if (!ctx) return NULL;
  if (!lua_checkstack(L, 8)) {
    kr_fail(ctx, LK_EMEM, "lk_model_get: the Lua stack cannot grow");
    return NULL;
  }
  idx = lua_absindex(L, idx);
  void *ud;
  lua_Alloc alloc = lua_getallocf(L, &ud);
  lk_model *m = alloc(ud, NULL, 0, sizeof *m);
  if (!m) {
    kr_fail(ctx, LK_EMEM, "lk_model_get: out of memory");
    return NULL;
  }
  memset(m, 0, sizeof *m);
  m->alloc = alloc;
  m->alloc_ud = ud;
  m->ref = m->key_trainer = m->key_predictor = m->ref_train = m->ref_pred = LUA_NOREF;
  lua_pushcfunction(L, model_get_pf);
  lua_pushvalue(L, idx);
  lua_pushlightuserdata(L, m);
  if (lua_pcall(L, 2, 0, 0) != LUA_OK) {
    kr_fail(ctx, LK_ELUA, "%s", lua_tostring(L, -1) ? lua_tostring(L, -1) : "lk_model_get: error");
    lua_pop(L, 1);
    unref_all(L, m);
    alloc(ud, m, sizeof *m, 0);
    return NULL;
  }
  lk_handles *h = handles(L);   /* made by model_get_pf: no allocation here */
  m->L = L;
  m->next = h->head;
  if (h->head) h->head->prevp = &m->next;
  m->prevp = &h->head;
  h->head = m;
  return m;
}

void lk_model_release(lk_model *m)
{
  if (!m) return;
  if (m->L) {
    unref_all(m->L, m);
    if (m->prevp) {
      *m->prevp = m->next;
      if (m->next) m->next->prevp = m->prevp;
    }
  }
  m->alloc(m->alloc_ud, m, sizeof *m, 0);
}

/* protected: Model:_c_trainer(train, who) into the handle's cache */
static int resolve_pf(lua_State *L)
{
  lk_model *m = lua_touserdata(L, 1);
  int train = lua_toboolean(L, 2);
  const char *who = lua_tostring(L, 3);
  lua_rawgeti(L, LUA_REGISTRYINDEX, m->ref);
  lua_getfield(L, -1, "_c_trainer");
  lua_insert(L, -2);
  lua_pushboolean(L, train);
  lua_pushstring(L, who);
  lua_call(L, 3, 1);
  if (!lk_totrainer(L, -1)) return luaL_error(L, "%s: the model has no trainer", who);
  int *ref = train ? &m->ref_train : &m->ref_pred;
  luaL_unref(L, LUA_REGISTRYINDEX, *ref);
  *ref = LUA_NOREF;
  const void *ud = lua_touserdata(L, -1);
  *ref = luaL_ref(L, LUA_REGISTRYINDEX);
  if (train) m->ud_train = ud;
  else m->ud_pred = ud;
  return 0;
}

/* the model's trainer now, for training or predicting; NULL with the
** message set. The fast path reads two table fields raw: no allocation. */
static kr_trainer *trainer_of(lk_model *m, int train, const char *who)
{
  lua_State *L = m->L;
  if (!lua_checkstack(L, 6)) {
    fail(L, LK_EMEM, "%s: the Lua stack cannot grow", who);
    return NULL;
  }
  lua_rawgeti(L, LUA_REGISTRYINDEX, m->ref);
  lua_rawgeti(L, LUA_REGISTRYINDEX, m->key_trainer);
  lua_rawget(L, -2);
  if (!train && lua_isnil(L, -1)) {
    lua_pop(L, 1);
    lua_rawgeti(L, LUA_REGISTRYINDEX, m->key_predictor);
    lua_rawget(L, -2);
  }
  const void *cached = train ? m->ud_train : m->ud_pred;
  kr_trainer *t = NULL;
  if (cached && lua_touserdata(L, -1) == cached) t = lk_totrainer(L, -1);
  lua_pop(L, 2);
  if (t) return t;
  lua_pushcfunction(L, resolve_pf);
  lua_pushlightuserdata(L, m);
  lua_pushboolean(L, train);
  lua_pushstring(L, who);
  if (lua_pcall(L, 3, 0, 0) != LUA_OK) {
    const char *msg = lua_tostring(L, -1);
    fail(L, LK_ELUA, "%s", msg ? msg : "error while getting the model's trainer");
    lua_pop(L, 1);
    return NULL;
  }
  lua_rawgeti(L, LUA_REGISTRYINDEX, train ? m->ref_train : m->ref_pred);
  t = lk_totrainer(L, -1);
  lua_pop(L, 1);
  if (!t) fail(L, LK_EARG, "%s: the model's trainer has been freed", who);
  return t;
}

int lk_model_io(lk_model *m, int64_t *in_features, int64_t *out_features)
{
  int st = check_handle(m, "lk_model_io");
  if (st) return st;
  kr_trainer *t = trainer_of(m, 0, "lk_model_io");
  if (!t) return kr_errcode(ctx_of(m->L));
  return kr_trainer_io(t, "lk_model_io", in_features, out_features);
}

int lk_predict(lk_model *m, const float *x, int64_t rows, float *y)
{
  int st = check_handle(m, "lk_predict");
  if (st) return st;
  if (!x || !y) return fail(m->L, LK_EARG, "%s", !x ? "lk_predict: x is NULL" : "lk_predict: y is NULL");
  kr_trainer *t = trainer_of(m, 0, "lk_predict");
  if (!t) return kr_errcode(ctx_of(m->L));
  return kr_trainer_predict_rows(t, x, rows, y);
}

int lk_train_on_batch(lk_model *m, const float *x, const float *y, int64_t rows, float *loss)
{
  int st = check_handle(m, "lk_train_on_batch");
  if (st) return st;
  if (!x || !y)
    return fail(m->L, LK_EARG, "%s", !x ? "lk_train_on_batch: x is NULL" : "lk_train_on_batch: y is NULL");
  kr_trainer *t = trainer_of(m, 1, "lk_train_on_batch");
  if (!t) return kr_errcode(ctx_of(m->L));
  double l = 0;
  st = kr_trainer_train_rows(t, x, y, rows, &l);
  if (st == LK_OK && loss) *loss = (float)l;
  return st;
}

/* ---- weights ---- */

/* protected: the model's weight tensors (get_weights order) as a list on top */
static int weights_pf(lua_State *L)
{
  lk_model *m = lua_touserdata(L, 1);
  lua_rawgeti(L, LUA_REGISTRYINDEX, m->ref);
  lua_getfield(L, -1, "_c_weights");
  lua_insert(L, -2);
  lua_call(L, 1, 1);
  luaL_checktype(L, -1, LUA_TTABLE);
  return 1;
}

/* the weight tensors of the list on L's stack top, end to end: their total
** size, -1 when one is not a tensor; copied into out, or from in, where given */
static int64_t walk_weights(lua_State *L, float *out, const float *in)
{
  int64_t total = 0;
  lua_Integer n = (lua_Integer)lua_rawlen(L, -1);
  for (lua_Integer i = 1; i <= n; i++) {
    lua_rawgeti(L, -1, i);
    kr_tensor *w = lk_testtensor(L, -1);
    lua_pop(L, 1);
    if (!w) return -1;
    size_t k = (size_t)kr_tensor_numel(w);
    if (out) memcpy(out + total, KR_DATA(w), k * sizeof(float));
    if (in) {
      memcpy(KR_DATA(w), in + total, k * sizeof(float));
      kr_tensor_touch(w);   /* plans holding a packed copy repack (gemm_packed.c) */
    }
    total += (int64_t)k;
  }
  return total;
}

/* the list of weight tensors on the stack top and their total size; -1 on error */
static int64_t weights_list(lk_model *m, const char *who)
{
  lua_State *L = m->L;
  if (!lua_checkstack(L, 6)) return fail(L, LK_EMEM, "%s: the Lua stack cannot grow", who), -1;
  lua_pushcfunction(L, weights_pf);
  lua_pushlightuserdata(L, m);
  if (lua_pcall(L, 1, 1, 0) != LUA_OK) {
    const char *msg = lua_tostring(L, -1);
    fail(L, LK_ELUA, "%s", msg ? msg : "error while listing the model's weights");
    lua_pop(L, 1);
    return -1;
  }
  int64_t total = walk_weights(L, NULL, NULL);
  if (total < 0) {
    lua_pop(L, 1);
    return fail(L, LK_EARG, "%s: a weight of the model is not a tensor", who), -1;
  }
  return total;
}

int lk_get_weights(lk_model *m, float *buf, size_t cap, size_t *count)
{
  int st = check_handle(m, "lk_get_weights");
  if (st) return st;
  lua_State *L = m->L;
  if (!count) return fail(L, LK_EARG, "%s", "lk_get_weights: count is NULL");
  int64_t total = weights_list(m, "lk_get_weights");
  if (total < 0) return kr_errcode(ctx_of(L));
  *count = (size_t)total;
  if (!buf && cap == 0) {   /* a query of the size */
    lua_pop(L, 1);
    return LK_OK;
  }
  if (!buf || cap < (size_t)total) {
    lua_pop(L, 1);
    kr_ctx *ctx = ctx_of(L);
    if (!buf) return kr_fail(ctx, LK_EARG, "lk_get_weights: buf is NULL (with cap %zu)", cap);
    return kr_fail(ctx, LK_EARG, "lk_get_weights: the model has %lld weight values, the buffer holds %zu",
                   (long long)total, cap);
  }
  walk_weights(L, buf, NULL);
  lua_pop(L, 1);
  return LK_OK;
}

int lk_set_weights(lk_model *m, const float *buf, size_t count)
{
  int st = check_handle(m, "lk_set_weights");
  if (st) return st;
  lua_State *L = m->L;
  if (!buf) return fail(L, LK_EARG, "%s", "lk_set_weights: buf is NULL");
  int64_t total = weights_list(m, "lk_set_weights");
  if (total < 0) return kr_errcode(ctx_of(L));
  if ((size_t)total != count) {
    lua_pop(L, 1);
    return kr_fail(ctx_of(L), LK_EARG, "lk_set_weights: the model has %lld weight values, got %zu",
                   (long long)total, count);
  }
  walk_weights(L, NULL, buf);
  lua_pop(L, 1);
  return LK_OK;
}

/* ---- tensors ---- */

typedef struct push_args {
  const float *data;
  kr_shape shape;
} push_args;

static int push_pf(lua_State *L)
{
  push_args *a = lua_touserdata(L, 1);
  kr_ctx *ctx = lk_ctx(L);
  kr_tensor **slot = lk_newtensorslot(L);
  if (!(*slot = kr_tensor_new(ctx, &a->shape))) return lk_raise(L, ctx);
  int64_t n = kr_tensor_numel(*slot);
  if (n > 0) memcpy(KR_DATA(*slot), a->data, (size_t)n * sizeof(float));
  return 1;
}

int lk_push_tensor(lua_State *L, const float *data, int ndim, const int64_t *shape)
{
  kr_ctx *ctx = ctx_of(L);
  if (!ctx) return LK_EARG;
  if (ndim < 0 || ndim > LK_MAX_DIMS)
    return kr_fail(ctx, LK_EARG, "lk_push_tensor: ndim must be 0 to %d, got %d", LK_MAX_DIMS, ndim);
  if (ndim > 0 && !shape) return kr_fail(ctx, LK_EARG, "lk_push_tensor: shape is NULL");
  push_args a;
  a.data = data;
  a.shape = kr_shape_make(0, NULL);
  a.shape.ndim = ndim;
  int64_t n = 1;
  for (int i = 0; i < ndim; i++) {
    if (shape[i] < 0)
      return kr_fail(ctx, LK_EARG, "lk_push_tensor: size %d of the shape is negative (%lld)", i + 1,
                     (long long)shape[i]);
    if (shape[i] > 0 && n > INT64_MAX / shape[i])
      return kr_fail(ctx, LK_EARG, "lk_push_tensor: the shape's element count overflows");
    n *= shape[i];
    a.shape.dim[i] = shape[i];
  }
  if (n > 0 && !data) return kr_fail(ctx, LK_EARG, "lk_push_tensor: data is NULL");
  if (!lua_checkstack(L, 4)) return kr_fail(ctx, LK_EMEM, "lk_push_tensor: the Lua stack cannot grow");
  lua_pushcfunction(L, push_pf);
  lua_pushlightuserdata(L, &a);
  if (lua_pcall(L, 1, 1, 0) != LUA_OK) {
    const char *msg = lua_tostring(L, -1);
    int code = kr_errcode(ctx) == LK_EMEM ? LK_EMEM : LK_ELUA;
    kr_fail(ctx, code, "lk_push_tensor: %s", msg ? msg : "error");
    lua_pop(L, 1);
    return code;
  }
  return LK_OK;
}

float *lk_tensor_data(lua_State *L, int idx, int *ndim, int64_t *shape)
{
  kr_ctx *ctx = ctx_of(L);
  if (!ctx) return NULL;
  kr_tensor **slot = lua_touserdata(L, idx);
  kr_tensor *t = NULL;
  if (slot && lua_getmetatable(L, idx)) {
    luaL_getmetatable(L, LK_TENSOR);
    if (lua_rawequal(L, -1, -2)) t = *slot;
    lua_pop(L, 2);
  }
  if (!t) {
    kr_fail(ctx, LK_EARG, "lk_tensor_data: the value at index %d is not a keras tensor (got %s)", idx,
            luaL_typename(L, idx));
    return NULL;
  }
  if (ndim) *ndim = t->shape.ndim;
  if (shape)
    for (int i = 0; i < t->shape.ndim; i++) shape[i] = t->shape.dim[i];
  return KR_DATA(t);
}

/* ---- the state's settings ---- */

int lk_set_num_threads(lua_State *L, int n)
{
  kr_ctx *ctx = ctx_of(L);
  if (!ctx) return LK_EARG;
  if (n < 1) return kr_fail(ctx, LK_EARG, "lk_set_num_threads: n must be >= 1, got %d", n);
  kr_set_num_threads(ctx, n);
  return LK_OK;
}

int lk_set_memory_limit(lua_State *L, size_t bytes)
{
  kr_ctx *ctx = ctx_of(L);
  if (!ctx) return LK_EARG;
  kr_mem_set_limit(ctx, bytes);
  return LK_OK;
}

size_t lk_memory_in_use(lua_State *L)
{
  kr_ctx *ctx = ctx_of(L);
  return ctx ? kr_mem_in_use(ctx) : 0;
}

uint64_t lk_memory_allocs(lua_State *L)
{
  kr_ctx *ctx = ctx_of(L);
  return ctx ? kr_mem_allocs(ctx) : 0;
}

const char *lk_errmsg(lua_State *L)
{
  kr_ctx *ctx = ctx_of(L);
  if (!ctx) return "lkeras: the library is not opened in this lua_State (luaopen_keras)";
  return kr_errmsg(ctx);
}
