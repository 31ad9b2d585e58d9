/*
** tensor.c (binding) -- keras.Tensor userdata: creation from tables and
** shapes, element access with Lua's 1-based indices, row views, slices,
** conversion back to tables, printing, random tensors. Arithmetic and
** reductions are added in Lua (lua/keras/tensor.lua) on top of the graph ops.
*/
#include "lk.h"
#include "../io/io.h"

#include <math.h>
#include <stdint.h>
#include <string.h>
#include <unistd.h>


/* ---- slots ---- */

kr_tensor **lk_newtensorslot(lua_State *L)
{
  lk_gc_account(L);
  kr_tensor **slot = lua_newuserdatauv(L, sizeof *slot, 0);
  *slot = NULL;
  luaL_setmetatable(L, LK_TENSOR);
  return slot;
}

void lk_pushtensor(lua_State *L, kr_tensor *t)
{
  kr_tensor **slot = lk_newtensorslot(L);
  *slot = t;
}

kr_tensor *lk_testtensor(lua_State *L, int idx)
{
  kr_tensor **slot = luaL_testudata(L, idx, LK_TENSOR);
  return slot ? *slot : NULL;
}

/* methods: the metatable's "methods" table */
int lk_index_method(lua_State *L)
{
  lua_getmetatable(L, 1);
  lua_getfield(L, -1, "methods");
  lua_pushvalue(L, 2);
  lua_rawget(L, -2);
  return 1;
}

void lk_new_class(lua_State *L, const char *name, const luaL_Reg *methods, lua_CFunction gc, lua_CFunction close)
{
  if (luaL_newmetatable(L, name)) {
    lua_newtable(L);
    luaL_setfuncs(L, methods, 0);
    lua_setfield(L, -2, "__index");
    lua_pushcfunction(L, gc);
    lua_setfield(L, -2, "__gc");
    if (close) {
      lua_pushcfunction(L, close);
      lua_setfield(L, -2, "__close");
    }
  }
  lua_pop(L, 1);
}

kr_tensor *lk_checktensor(lua_State *L, int idx)
{
  kr_tensor **slot = luaL_checkudata(L, idx, LK_TENSOR);
  if (!*slot) luaL_argerror(L, idx, "tensor has been freed");
  return *slot;
}

static int t_gc(lua_State *L)
{
  kr_tensor **slot = luaL_checkudata(L, 1, LK_TENSOR);
  if (*slot) {
    kr_tensor_release(*slot);
    *slot = NULL;
  }
  return 0;
}

/* ---- shapes ---- */

void lk_checkshape(lua_State *L, int idx, kr_shape *s, int allow_batch)
{
  memset(s, 0, sizeof *s);
  if (lua_isinteger(L, idx)) {
    s->ndim = 1;
    s->dim[0] = lua_tointeger(L, idx);
  } else {
    luaL_checktype(L, idx, LUA_TTABLE);
    lua_Integer n = luaL_len(L, idx);
    if (n > KR_MAX_DIMS) luaL_error(L, "shape: at most %d dimensions, got %I", KR_MAX_DIMS, n);
    s->ndim = (int)n;
    for (int i = 0; i < s->ndim; i++) {
      lua_geti(L, idx, i + 1);
      int ok;
      lua_Integer d = lua_tointegerx(L, -1, &ok);
      lua_pop(L, 1);
      if (!ok) luaL_error(L, "shape: dimension %d is not an integer", i + 1);
      if (d < 0 && !(allow_batch && i == 0) && !(allow_batch == 2 && d == KR_NONE))
        luaL_error(L, "shape: dimension %d must be >= 0, got %I", i + 1, d);
      s->dim[i] = d;
    }
  }
  for (int i = 0; i < s->ndim; i++)
    if (s->dim[i] < 0 && !(allow_batch && i == 0) && !(allow_batch == 2 && s->dim[i] == KR_NONE))
      luaL_error(L, "shape: dimension %d must be >= 0", i + 1);
}

/* A tensor of shape s must fit in this machine's memory: a bigger one is
** refused before anything is allocated (asking the allocator for terabytes
** may succeed lazily and be killed later, or abort under sanitizers). */
static void check_fits(lua_State *L, const kr_shape *s)
{
  uint64_t bytes = sizeof(float);
  int over = 0;
  for (int i = 0; i < s->ndim; i++) {
    uint64_t d = (uint64_t)s->dim[i];
    if (d == 0) return;
    if (bytes > (uint64_t)INT64_MAX / d) over = 1;
    else bytes *= d;
  }
  long pages = sysconf(_SC_PHYS_PAGES), psize = sysconf(_SC_PAGESIZE);
  uint64_t mem = pages > 0 && psize > 0 ? (uint64_t)pages * (uint64_t)psize : UINT64_MAX;
  if (over || bytes > mem) {
    char b[256];
    kr_shape_str(s, b, sizeof b);
    if (over) luaL_error(L, "tensor: shape %s is too large", b);
    luaL_error(L, "tensor: shape %s needs %I bytes, more than this machine's memory (%I bytes)", b,
               (lua_Integer)bytes, (lua_Integer)mem);
  }
}

void lk_pushshape(lua_State *L, const kr_shape *s)
{
  lua_createtable(L, s->ndim, 0);
  for (int i = 0; i < s->ndim; i++) {
    lua_pushinteger(L, s->dim[i]);
    lua_rawseti(L, -2, i + 1);
  }
}

/* ---- from Lua values ---- */

/* shape of a nested table (every level must be rectangular) */
static void table_shape(lua_State *L, int idx, kr_shape *s, int depth)
{
  lua_Integer n = luaL_len(L, idx);
  if (depth >= KR_MAX_DIMS) luaL_error(L, "tensor: nesting deeper than %d", KR_MAX_DIMS);
  s->dim[depth] = n;
  s->ndim = depth + 1;
  if (n > 0) {
    lua_geti(L, idx, 1);
    if (lua_istable(L, -1)) table_shape(L, lua_gettop(L), s, depth + 1);
    lua_pop(L, 1);
  }
}

static void table_fill(lua_State *L, int idx, const kr_shape *s, int depth, float **p)
{
  lua_Integer n = luaL_len(L, idx);
  if (n != s->dim[depth]) luaL_error(L, "tensor: ragged nested table (expected %I items at depth %d, got %I)",
                                     (lua_Integer)s->dim[depth], depth + 1, n);
  for (lua_Integer i = 1; i <= n; i++) {
    lua_geti(L, idx, i);
    if (depth + 1 < s->ndim) {
      if (!lua_istable(L, -1)) luaL_error(L, "tensor: ragged nested table (a number where a table was expected)");
      table_fill(L, lua_gettop(L), s, depth + 1, p);
    } else {
      int ok;
      lua_Number v = lua_tonumberx(L, -1, &ok);
      if (!ok) {
        if (lua_isboolean(L, -1)) v = lua_toboolean(L, -1);
        else luaL_error(L, "tensor: expected numbers, got %s", luaL_typename(L, -1));
      }
      *(*p)++ = (float)v;
    }
    lua_pop(L, 1);
  }
}

kr_tensor *lk_totensor(lua_State *L, int idx)
{
  idx = lua_absindex(L, idx);
  kr_tensor *t = lk_testtensor(L, idx);
  if (t) {
    lua_pushvalue(L, idx);
    return t;
  }
  kr_ctx *ctx = lk_ctx(L);
  kr_tensor **slot = lk_newtensorslot(L);
  kr_shape s;
  memset(&s, 0, sizeof s);
  if (lua_type(L, idx) == LUA_TNUMBER) {
    if (!(*slot = kr_tensor_full(ctx, &s, (float)lua_tonumber(L, idx)))) lk_raise(L, ctx);
    return *slot;
  }
  if (!lua_istable(L, idx)) luaL_typeerror(L, idx, "keras.Tensor, number or table");
  table_shape(L, idx, &s, 0);
  if (!(*slot = kr_tensor_new(ctx, &s))) lk_raise(L, ctx);
  float *p = KR_DATA(*slot);
  if (kr_tensor_numel(*slot) > 0) table_fill(L, idx, &s, 0, &p);
  return *slot;
}

/* ---- constructors ---- */

static int t_new(lua_State *L)
{
  luaL_checkany(L, 1);
  kr_tensor *t = lk_totensor(L, 1);
  if (lua_rawequal(L, 1, -1)) { /* already a tensor: copy it */
    kr_ctx *ctx = lk_ctx(L);
    kr_tensor **slot = lk_newtensorslot(L);
    if (!(*slot = kr_tensor_copy(ctx, t))) return lk_raise(L, ctx);
  }
  return 1;
}

static int t_full(lua_State *L)
{
  kr_ctx *ctx = lk_ctx(L);
  kr_shape s;
  lk_checkshape(L, 1, &s, 0);
  check_fits(L, &s);
  float v = (float)luaL_optnumber(L, 2, 0.0);
  kr_tensor **slot = lk_newtensorslot(L);
  if (!(*slot = kr_tensor_full(ctx, &s, v))) return lk_raise(L, ctx);
  return 1;
}

static int t_arange(lua_State *L)
{
  kr_ctx *ctx = lk_ctx(L);
  double a = luaL_checknumber(L, 1), b, step = luaL_optnumber(L, 3, 1.0);
  if (lua_isnoneornil(L, 2)) {
    b = a;
    a = 0;
  } else {
    b = luaL_checknumber(L, 2);
  }
  if (step == 0) return luaL_error(L, "arange: step must not be 0");
  double cnt = ceil((b - a) / step);
  if (!(cnt >= 0)) cnt = 0;
  if (cnt > 1e15) return luaL_error(L, "arange: too many elements");
  kr_shape s = {1, {(int64_t)cnt}};
  check_fits(L, &s);
  kr_tensor **slot = lk_newtensorslot(L);
  if (!(*slot = kr_tensor_new(ctx, &s))) return lk_raise(L, ctx);
  float *d = KR_DATA(*slot);
  for (int64_t i = 0; i < (int64_t)cnt; i++) d[i] = (float)(a + (double)i * step);
  return 1;
}

/* random tensors from the state's generator */
static int t_random(lua_State *L)
{
  kr_ctx *ctx = lk_ctx(L);
  const char *kind = luaL_checkstring(L, 1);
  kr_shape s;
  lk_checkshape(L, 2, &s, 0);
  check_fits(L, &s);
  double a = luaL_optnumber(L, 3, 0.0), b = luaL_optnumber(L, 4, 1.0);
  kr_tensor **slot = lk_newtensorslot(L);
  if (!(*slot = kr_tensor_new(ctx, &s))) return lk_raise(L, ctx);
  float *d = KR_DATA(*slot);
  int64_t n = kr_tensor_numel(*slot);
  if (strcmp(kind, "uniform") == 0) {
    for (int64_t i = 0; i < n; i++) d[i] = (float)(a + (b - a) * kr_rng_uniform(ctx));
  } else if (strcmp(kind, "normal") == 0) {
    for (int64_t i = 0; i < n; i++) d[i] = (float)(a + b * kr_rng_normal(ctx));
  } else if (strcmp(kind, "truncated_normal") == 0) {
    /* redraw values beyond two standard deviations, as TensorFlow does */
    for (int64_t i = 0; i < n; i++) {
      double z;
      do z = kr_rng_normal(ctx); while (fabs(z) > 2.0);
      d[i] = (float)(a + b * z);
    }
  } else if (strcmp(kind, "randint") == 0) {
    /* integers in [a, b) */
    double span = floor(b) - ceil(a);
    if (span < 1) return luaL_error(L, "randint: empty range [%f, %f)", a, b);
    for (int64_t i = 0; i < n; i++) d[i] = (float)(ceil(a) + floor(kr_rng_uniform(ctx) * span));
  } else {
    return luaL_argerror(L, 1, "unknown distribution");
  }
  return 1;
}

static int t_seed(lua_State *L)
{
  kr_rng_seed(lk_ctx(L), (uint64_t)luaL_checkinteger(L, 1));
  return 0;
}

/* a random permutation of 0..n-1 as a Lua sequence (used for shuffling in Lua) */
static int t_permutation(lua_State *L)
{
  kr_ctx *ctx = lk_ctx(L);
  lua_Integer n = luaL_checkinteger(L, 1);
  if (n < 0 || n > (1 << 30)) return luaL_argerror(L, 1, "bad length");
  kr_shape s = {1, {n}};
  kr_tensor **slot = lk_newtensorslot(L);
  if (!(*slot = kr_tensor_new(ctx, &s))) return lk_raise(L, ctx);
  int64_t *idx = lua_newuserdatauv(L, (size_t)(n ? n : 1) * sizeof *idx, 0);
  for (lua_Integer i = 0; i < n; i++) idx[i] = i;
  kr_rng_shuffle(ctx, idx, n);
  float *d = KR_DATA(*slot);
  for (lua_Integer i = 0; i < n; i++) d[i] = (float)idx[i];
  lua_pop(L, 1);
  return 1;
}

/* ---- access ---- */

static int64_t offset_of(lua_State *L, kr_tensor *t, int first, int count)
{
  if (count != t->shape.ndim)
    luaL_error(L, "get/set: a tensor of rank %d needs %d indices, got %d", t->shape.ndim, t->shape.ndim, count);
  int64_t off = 0;
  for (int i = 0; i < count; i++) {
    lua_Integer k = luaL_checkinteger(L, first + i);
    int64_t d = t->shape.dim[i];
    if (k < 1 || k > d) luaL_error(L, "index %I is out of range for axis %d of size %I", k, i + 1, (lua_Integer)d);
    off = off * d + (k - 1);
  }
  return off;
}

static int t_get(lua_State *L)
{
  kr_tensor *t = lk_checktensor(L, 1);
  int64_t off = offset_of(L, t, 2, lua_gettop(L) - 1);
  lua_pushnumber(L, KR_DATA(t)[off]);
  return 1;
}

static int t_set(lua_State *L)
{
  kr_tensor *t = lk_checktensor(L, 1);
  int top = lua_gettop(L);
  float v = (float)luaL_checknumber(L, top);
  int64_t off = offset_of(L, t, 2, top - 2);
  KR_DATA(t)[off] = v;
  kr_tensor_touch(t);
  lua_settop(L, 1);
  return 1;
}

static int t_slice(lua_State *L)
{
  kr_ctx *ctx = lk_ctx(L);
  kr_tensor *t = lk_checktensor(L, 1);
  if (t->shape.ndim < 1) return luaL_error(L, "slice: a scalar has no rows");
  lua_Integer n = t->shape.dim[0];
  lua_Integer a = luaL_checkinteger(L, 2), b = luaL_optinteger(L, 3, n);
  if (a < 0) a = n + a + 1;
  if (b < 0) b = n + b + 1;
  if (a < 1 || b > n || a > b + 1)
    return luaL_error(L, "slice: rows %I..%I out of range for %I rows", a, b, n);
  kr_tensor **slot = lk_newtensorslot(L);
  if (!(*slot = kr_tensor_rows(ctx, t, a - 1, b))) return lk_raise(L, ctx);
  return 1;
}

static int t_reshape(lua_State *L)
{
  kr_ctx *ctx = lk_ctx(L);
  kr_tensor *t = lk_checktensor(L, 1);
  kr_shape s;
  memset(&s, 0, sizeof s);
  /* one dimension may be -1: inferred */
  luaL_checktype(L, 2, LUA_TTABLE);
  lua_Integer n = luaL_len(L, 2);
  if (n > KR_MAX_DIMS) return luaL_error(L, "reshape: at most %d dimensions", KR_MAX_DIMS);
  int infer = -1;
  int64_t known = 1;
  s.ndim = (int)n;
  for (int i = 0; i < s.ndim; i++) {
    lua_geti(L, 2, i + 1);
    int ok;
    lua_Integer d = lua_tointegerx(L, -1, &ok);
    lua_pop(L, 1);
    if (!ok) return luaL_error(L, "reshape: dimension %d is not an integer", i + 1);
    if (d == -1 && infer < 0) infer = i;
    else if (d < 0) return luaL_error(L, "reshape: dimension %d must be >= 0 (or one -1), got %I", i + 1, d);
    else if (d > 0 && known > INT64_MAX / d) return luaL_error(L, "reshape: shape too large");
    else known *= d;
    s.dim[i] = d;
  }
  if (infer >= 0) {
    int64_t total = kr_tensor_numel(t);
    if (known == 0 || total % known != 0) {
      char b[128];
      return luaL_error(L, "reshape: cannot reshape %s into a shape with -1", kr_shape_str(&t->shape, b, sizeof b));
    }
    s.dim[infer] = total / known;
  }
  kr_tensor **slot = lk_newtensorslot(L);
  if (!(*slot = kr_tensor_reshape(ctx, t, &s))) return lk_raise(L, ctx);
  return 1;
}

static void push_table(lua_State *L, const float *d, const kr_shape *s, int axis, int64_t *off)
{
  if (axis == s->ndim) {
    lua_pushnumber(L, d[(*off)++]);
    return;
  }
  lua_createtable(L, (int)s->dim[axis], 0);
  for (int64_t i = 0; i < s->dim[axis]; i++) {
    push_table(L, d, s, axis + 1, off);
    lua_rawseti(L, -2, i + 1);
  }
}

static int t_totable(lua_State *L)
{
  kr_tensor *t = lk_checktensor(L, 1);
  if (kr_tensor_numel(t) > 50000000) return luaL_error(L, "totable: tensor too large");
  luaL_checkstack(L, t->shape.ndim + 4, "totable");
  int64_t off = 0;
  push_table(L, KR_DATA(t), &t->shape, 0, &off);
  return 1;
}

static int t_tostring(lua_State *L)
{
  kr_ctx *ctx = lk_ctx(L);
  kr_tensor **slot = luaL_checkudata(L, 1, LK_TENSOR);
  if (!*slot) {
    lua_pushliteral(L, "keras.Tensor (freed)");
    return 1;
  }
  char *s = kr_tensor_format(ctx, *slot);
  if (!s) return lk_raise(L, ctx);
  lua_pushstring(L, s);
  kr_free(ctx, s);
  return 1;
}

static int t_size(lua_State *L)
{
  kr_tensor *t = lk_checktensor(L, 1);
  if (lua_isnoneornil(L, 2)) {
    lua_pushinteger(L, kr_tensor_numel(t));
    return 1;
  }
  lua_Integer a = luaL_checkinteger(L, 2);
  if (a < 0) a += t->shape.ndim + 1;
  if (a < 1 || a > t->shape.ndim) return luaL_argerror(L, 2, "axis out of range");
  lua_pushinteger(L, t->shape.dim[a - 1]);
  return 1;
}

static int t_free(lua_State *L) { return t_gc(L); }

static int t_len(lua_State *L)
{
  kr_tensor *t = lk_checktensor(L, 1);
  lua_pushinteger(L, t->shape.ndim ? t->shape.dim[0] : 0);
  return 1;
}

/* copy another tensor's values in (same number of elements); keeps this storage */
static int t_assign(lua_State *L)
{
  kr_tensor *t = lk_checktensor(L, 1);
  kr_tensor *u = lk_totensor(L, 2);
  if (kr_tensor_numel(u) == 1 && kr_tensor_numel(t) != 1) {
    float v = KR_DATA(u)[0];
    for (int64_t i = 0; i < kr_tensor_numel(t); i++) KR_DATA(t)[i] = v;
  } else {
    if (!kr_shape_eq(&t->shape, &u->shape)) {
      char a[128], b[128];
      return luaL_error(L, "assign: shape %s does not match %s", kr_shape_str(&u->shape, b, sizeof b),
                        kr_shape_str(&t->shape, a, sizeof a));
    }
    memmove(KR_DATA(t), KR_DATA(u), (size_t)kr_tensor_numel(t) * sizeof(float));
  }
  kr_tensor_touch(t);
  lua_settop(L, 1);
  return 1;
}

static int t_isfinite(lua_State *L)
{
  lua_pushboolean(L, !kr_tensor_has_nonfinite(lk_checktensor(L, 1)));
  return 1;
}

/* rows of t at the 1-based indices in a tensor or table: a new tensor */
static int t_take(lua_State *L)
{
  kr_ctx *ctx = lk_ctx(L);
  kr_tensor *t = lk_checktensor(L, 1);
  kr_tensor *ix = lk_totensor(L, 2);
  if (t->shape.ndim < 1) return luaL_error(L, "take: a scalar has no rows");
  int64_t n = kr_tensor_numel(ix), rows = t->shape.dim[0];
  int64_t *idx = lua_newuserdatauv(L, (size_t)(n ? n : 1) * sizeof *idx, 0);
  for (int64_t i = 0; i < n; i++) {
    double v = KR_DATA(ix)[i];   /* in double: (float)rows rounds above 2^24 */
    if (!(v >= 1 && v <= (double)rows) || v != floor(v))
      return luaL_error(L, "take: row %f is out of range 1..%I", (double)v, (lua_Integer)rows);
    idx[i] = (int64_t)v - 1;
  }
  kr_shape s = t->shape;
  s.dim[0] = n;
  kr_tensor **slot = lk_newtensorslot(L);
  if (!(*slot = kr_tensor_new(ctx, &s))) return lk_raise(L, ctx);
  kr_tensor_gather_rows(KR_DATA(*slot), t, idx, n);
  return 1;
}

static int t_index(lua_State *L)
{
  kr_tensor **slot = luaL_checkudata(L, 1, LK_TENSOR);
  if (lua_type(L, 2) == LUA_TNUMBER) {
    kr_ctx *ctx = lk_ctx(L);
    kr_tensor *t = lk_checktensor(L, 1);
    int ok;
    lua_Integer i = lua_tointegerx(L, 2, &ok);
    if (!ok) return luaL_error(L, "tensor index must be an integer");
    if (t->shape.ndim < 1) return luaL_error(L, "cannot index a scalar tensor");
    lua_Integer n = t->shape.dim[0];
    if (i < 0) i = n + i + 1;
    if (i < 1 || i > n) return luaL_error(L, "index %I is out of range for %I rows", i, n);
    kr_tensor *row = kr_tensor_rows(ctx, t, i - 1, i);
    if (!row) return lk_raise(L, ctx);
    kr_shape s = row->shape;
    for (int k = 1; k < s.ndim; k++) s.dim[k - 1] = s.dim[k];
    s.ndim--;
    kr_tensor **out = lk_newtensorslot(L);
    *out = kr_tensor_reshape(ctx, row, &s);
    kr_tensor_release(row);
    if (!*out) return lk_raise(L, ctx);
    return 1;
  }
  const char *k = lua_tostring(L, 2);
  if (k && *slot) {
    if (strcmp(k, "shape") == 0) {
      lk_pushshape(L, &(*slot)->shape);
      return 1;
    }
    if (strcmp(k, "ndim") == 0) {
      lua_pushinteger(L, (*slot)->shape.ndim);
      return 1;
    }
    if (strcmp(k, "dtype") == 0) {
      lua_pushliteral(L, "float32");
      return 1;
    }
  }
  return lk_index_method(L);
}

static int t_newindex(lua_State *L)
{
  kr_tensor *t = lk_checktensor(L, 1);
  lua_Integer i = luaL_checkinteger(L, 2);
  if (t->shape.ndim < 1) return luaL_error(L, "cannot index a scalar tensor");
  lua_Integer n = t->shape.dim[0];
  if (i < 0) i = n + i + 1;
  if (i < 1 || i > n) return luaL_error(L, "index %I is out of range for %I rows", i, n);
  kr_ctx *ctx = lk_ctx(L);
  kr_tensor *row = kr_tensor_rows(ctx, t, i - 1, i);
  if (!row) return lk_raise(L, ctx);
  int64_t rn = kr_tensor_numel(row);
  kr_tensor_release(row);
  kr_tensor *v = lk_totensor(L, 3);
  int64_t vn = kr_tensor_numel(v);
  float *dst = KR_DATA(t) + (i - 1) * rn;
  if (vn == 1)
    for (int64_t k = 0; k < rn; k++) dst[k] = KR_DATA(v)[0];
  else if (vn == rn)
    memmove(dst, KR_DATA(v), (size_t)rn * sizeof(float));
  else
    return luaL_error(L, "row assignment: expected %I values, got %I", (lua_Integer)rn, (lua_Integer)vn);
  kr_tensor_touch(t);
  return 0;
}

/* ---- files ---- */

static int t_load(lua_State *L)
{
  kr_ctx *ctx = lk_ctx(L);
  const char *path = luaL_checkstring(L, 1);
  kr_tensor **slot = lk_newtensorslot(L);
  if (!(*slot = kr_npy_load(ctx, path))) return lk_raise(L, ctx);
  return 1;
}

static int t_save(lua_State *L)
{
  kr_ctx *ctx = lk_ctx(L);
  kr_tensor *t = lk_checktensor(L, 1);
  const char *path = luaL_checkstring(L, 2);
  if (kr_npy_save(ctx, t, path) != KR_OK) return lk_raise(L, ctx);
  return 0;
}

static int t_from_csv(lua_State *L)
{
  kr_ctx *ctx = lk_ctx(L);
  const char *path = luaL_checkstring(L, 1);
  const char *delim = luaL_optstring(L, 2, ",");
  int skip = lua_toboolean(L, 3);
  if (strlen(delim) != 1) return luaL_argerror(L, 2, "delimiter must be one character");
  kr_tensor **slot = lk_newtensorslot(L);
  if (!(*slot = kr_csv_load(ctx, path, delim[0], skip))) return lk_raise(L, ctx);
  return 1;
}

static int t_load_idx(lua_State *L)
{
  kr_ctx *ctx = lk_ctx(L);
  const char *path = luaL_checkstring(L, 1);
  kr_tensor **slot = lk_newtensorslot(L);
  if (!(*slot = kr_idx_load(ctx, path))) return lk_raise(L, ctx);
  return 1;
}

/* load_npz's member callback: the table is at index 1 of the stack */
static int npz_member(void *ud, const char *name, kr_tensor *t, const kr_ragged *r)
{
  lua_State *L = ud;
  if (t) {
    kr_tensor **slot = lk_newtensorslot(L);
    *slot = t;
  } else {
    lua_createtable(L, r->n > INT32_MAX ? 0 : (int)r->n, 0);
    for (int64_t i = 0; i < r->n; i++) {
      int64_t a = r->offsets[i], b = r->offsets[i + 1];
      lua_createtable(L, b - a > INT32_MAX ? 0 : (int)(b - a), 0);
      for (int64_t k = a; k < b; k++) {
        lua_pushinteger(L, r->values[k]);
        lua_rawseti(L, -2, k - a + 1);
      }
      lua_rawseti(L, -2, i + 1);
    }
  }
  lua_setfield(L, 1, name);
  return KR_OK;
}

/* load_npz(path) -> {name = tensor or list of integer lists} */
static int t_load_npz(lua_State *L)
{
  kr_ctx *ctx = lk_ctx(L);
  const char *path = luaL_checkstring(L, 1);
  lua_settop(L, 1);
  lua_pushvalue(L, 1);
  lua_newtable(L);
  lua_replace(L, 1);   /* 1: the result, 2: the path (kept alive) */
  if (kr_npz_load(ctx, path, npz_member, L) != KR_OK) return lk_raise(L, ctx);
  lua_settop(L, 1);
  return 1;
}

/* load_cifar(path, {member, ...}, label_bytes, label_index) -> x, y */
static int t_load_cifar(lua_State *L)
{
  kr_ctx *ctx = lk_ctx(L);
  const char *path = luaL_checkstring(L, 1);
  luaL_checktype(L, 2, LUA_TTABLE);
  const char *members[8];
  int n = (int)luaL_len(L, 2);
  luaL_argcheck(L, n >= 1 && n <= 8, 2, "1 to 8 member names");
  for (int i = 0; i < n; i++) {
    lua_rawgeti(L, 2, i + 1);
    members[i] = luaL_checkstring(L, -1);   /* kept alive by the table */
    lua_pop(L, 1);
  }
  int label_bytes = (int)luaL_checkinteger(L, 3), label_index = (int)luaL_checkinteger(L, 4);
  kr_tensor **xs = lk_newtensorslot(L), **ys = lk_newtensorslot(L);
  if (kr_cifar_load(ctx, path, members, n, label_bytes, label_index, xs, ys) != KR_OK) return lk_raise(L, ctx);
  return 2;
}

static const luaL_Reg t_methods[] = {
  {"get", t_get},
  {"set", t_set},
  {"slice", t_slice},
  {"reshape", t_reshape},
  {"totable", t_totable},
  {"size", t_size},
  {"free", t_free},
  {"assign", t_assign},
  {"isfinite", t_isfinite},
  {"take", t_take},
  {"save", t_save},
  {NULL, NULL}
};

static const luaL_Reg t_meta[] = {
  {"__gc", t_gc},
  {"__close", t_gc},
  {"__index", t_index},
  {"__newindex", t_newindex},
  {"__tostring", t_tostring},
  {"__len", t_len},
  {NULL, NULL}
};

static const luaL_Reg t_funcs[] = {
  {"tensor", t_new},
  {"full", t_full},
  {"arange", t_arange},
  {"random", t_random},
  {"seed", t_seed},
  {"permutation", t_permutation},
  {"load_npy", t_load},
  {"from_csv", t_from_csv},
  {"load_idx", t_load_idx},
  {"load_npz", t_load_npz},
  {"load_cifar", t_load_cifar},
  {NULL, NULL}
};

int lk_open_tensor(lua_State *L)
{
  if (luaL_newmetatable(L, LK_TENSOR)) {
    luaL_setfuncs(L, t_meta, 0);
    lua_newtable(L);
    luaL_setfuncs(L, t_methods, 0);
    lua_setfield(L, -2, "methods");
  }
  lua_setfield(L, -2, "Tensor");   /* core.Tensor = the metatable (Lua adds methods) */
  luaL_setfuncs(L, t_funcs, 0);
  return 0;
}
