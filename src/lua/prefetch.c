/*
** prefetch.c (binding) -- core.gather_async: a batch of rows gathered on a
** worker thread while Lua goes on (generators.lua prefetches the batches of
** a TimeseriesGenerator with it).
**   job = core.gather_async({src1, src2, ...}, {rows1, rows2, ...}, {shape1, shape2, ...})
**   out1, out2, ... = job:wait()
** rows are 1-based row numbers of each source; each output (shape given) gets
** those rows. The job holds references to its sources and outputs; wait and
** __gc join the worker first, so a job dropped mid-flight (an error in fit)
** never leaves a thread writing into freed memory.
*/
#include "lk.h"
#include "../prefetch.h"

#include <string.h>

#define LK_PREFETCH "keras.Prefetch"

typedef struct lk_job {
  kr_prefetch p;
  kr_tensor *src[KR_PREFETCH_MAX];
  kr_tensor *dst[KR_PREFETCH_MAX];
  int64_t *idx;                    /* after the struct, in the same userdata */
} lk_job;

static int job_gc(lua_State *L)
{
  lk_job *j = luaL_checkudata(L, 1, LK_PREFETCH);
  kr_prefetch_wait(&j->p);
  for (int i = 0; i < KR_PREFETCH_MAX; i++) {
    if (j->src[i]) kr_tensor_release(j->src[i]);
    if (j->dst[i]) kr_tensor_release(j->dst[i]);
    j->src[i] = j->dst[i] = NULL;
  }
  j->p.ng = 0;
  return 0;
}

static int job_wait(lua_State *L)
{
  lk_job *j = luaL_checkudata(L, 1, LK_PREFETCH);
  kr_prefetch_wait(&j->p);
  int n = j->p.ng;
  if (n == 0) return luaL_error(L, "gather_async: this job has been freed");
  luaL_checkstack(L, n, "gather_async");
  for (int i = 0; i < n; i++) {
    kr_tensor_retain(j->dst[i]);
    lk_pushtensor(L, j->dst[i]);
  }
  return n;
}

static int gather_async(lua_State *L)
{
  kr_ctx *ctx = lk_ctx(L);
  luaL_checktype(L, 1, LUA_TTABLE);
  luaL_checktype(L, 2, LUA_TTABLE);
  luaL_checktype(L, 3, LUA_TTABLE);
  int ng = (int)luaL_len(L, 1);
  if (ng < 1 || ng > KR_PREFETCH_MAX)
    return luaL_error(L, "gather_async: expected 1 to %d sources, got %d", KR_PREFETCH_MAX, ng);
  if (luaL_len(L, 2) != ng || luaL_len(L, 3) != ng)
    return luaL_error(L, "gather_async: %d sources need %d row lists and %d shapes", ng, ng, ng);
  int64_t total = 0;
  for (int i = 0; i < ng; i++) {
    lua_geti(L, 2, i + 1);
    luaL_checktype(L, -1, LUA_TTABLE);
    total += (int64_t)luaL_len(L, -1);
    lua_pop(L, 1);
  }
  if (total > ((int64_t)1 << 40) / (int64_t)sizeof(int64_t)) return luaL_error(L, "gather_async: too many rows");
  /* the job exists (and will be collected) before anything it owns */
  lk_job *j = lua_newuserdatauv(L, sizeof *j + (size_t)(total ? total : 1) * sizeof(int64_t), 0);
  memset(j, 0, sizeof *j);
  j->idx = (int64_t *)(j + 1);
  luaL_setmetatable(L, LK_PREFETCH);
  int64_t *next = j->idx;
  for (int i = 0; i < ng; i++) {
    lua_geti(L, 1, i + 1);
    kr_tensor *src = lk_testtensor(L, -1);
    if (!src) return luaL_error(L, "gather_async: source %d is not a tensor", i + 1);
    lua_pop(L, 1);
    if (src->shape.ndim < 1) return luaL_error(L, "gather_async: source %d has no rows", i + 1);
    kr_tensor_retain(src);
    j->src[i] = src;
    j->p.ng = i + 1;   /* from here on __gc releases this entry */
    int64_t rows = src->shape.dim[0];
    int64_t row = rows ? kr_tensor_numel(src) / rows : 0;
    lua_geti(L, 2, i + 1);
    int64_t n = (int64_t)luaL_len(L, -1);
    for (int64_t k = 0; k < n; k++) {
      lua_geti(L, -1, (lua_Integer)k + 1);
      int ok;
      lua_Integer r = lua_tointegerx(L, -1, &ok);
      if (!ok || r < 1 || r > rows)
        return luaL_error(L, "gather_async: row %d of list %d is not a row number in 1..%I", (int)k + 1, i + 1,
                          (lua_Integer)rows);
      next[k] = (int64_t)r - 1;
      lua_pop(L, 1);
    }
    lua_pop(L, 1);
    kr_shape s;
    lua_geti(L, 3, i + 1);
    lk_checkshape(L, lua_gettop(L), &s, 0);
    lua_pop(L, 1);
    if (kr_shape_numel(&s) != n * row)
      return luaL_error(L, "gather_async: shape %d holds %I values, but %I rows of %I were asked for", i + 1,
                        (lua_Integer)kr_shape_numel(&s), (lua_Integer)n, (lua_Integer)row);
    if (!(j->dst[i] = kr_tensor_new(ctx, &s))) return lk_raise(L, ctx);
    j->p.g[i] = (kr_gather){src, KR_DATA(j->dst[i]), next, n};
    next += n;
  }
  kr_prefetch_start(&j->p);
  return 1;
}

static const luaL_Reg job_methods[] = {
  {"wait", job_wait},
  {"free", job_gc},
  {NULL, NULL}
};

static const luaL_Reg funcs[] = {
  {"gather_async", gather_async},
  {NULL, NULL}
};

int lk_open_prefetch(lua_State *L)
{
  lk_new_class(L, LK_PREFETCH, job_methods, job_gc, job_gc);
  luaL_setfuncs(L, funcs, 0);
  return 0;
}
