/*
** dist.c (binding) -- keras.Dist: the world of keras.distributed (src/dist.h),
** one per lua_State, opened on first use and kept in the registry. Its
** collection (lua_close) is the end of the program: the MPI world waits,
** bounded, for every rank and shuts down; when the host reported that the
** script failed (registry field "lkeras.failed", set by lkeras), it aborts
** the job at once instead, so that the other ranks do not wait for it.
*/
#include "lk.h"
#include "../dist.h"

#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define LK_DIST "keras.Dist"

static const char DIST_KEY = 'd';

typedef struct lk_dist {
  kr_dist d;
  int open;
} lk_dist;

static int d_gc(lua_State *L)
{
  lk_dist *u = luaL_checkudata(L, 1, LK_DIST);
  if (!u->open) return 0;
  u->open = 0;
  lua_getfield(L, LUA_REGISTRYINDEX, "lkeras.failed");
  int failed = lua_toboolean(L, -1);
  lua_pop(L, 1);
  if (failed && u->d.size > 1) u->d.ops->abort(u->d.impl, "its script failed (see its error above)");
  /* a trainer's state still in the window (a fit that never ended: its
  ** coroutine dropped): the window and the state stay as they are */
  if (u->d.shm && !u->d.nmoved) {   /* the shared region's end is collective: every rank here first (bounded wait) */
    char err[KR_DIST_ERR];
    if (u->d.ops->barrier(u->d.impl, err) == 0) kr_dist_shared_release(&u->d);
  }
  free(u->d.shm_segs);
  u->d.shm_segs = NULL;
  u->d.ops->finalize(u->d.impl);
  return 0;
}

/* core.dist(): the world, opened on the first call */
static int d_get(lua_State *L)
{
  lua_rawgetp(L, LUA_REGISTRYINDEX, &DIST_KEY);
  if (!lua_isnil(L, -1)) return 1;
  lua_pop(L, 1);
  lk_dist *u = lua_newuserdatauv(L, sizeof *u, 0);
  memset(u, 0, sizeof *u);
  kr_dist_open_single(&u->d);
  luaL_setmetatable(L, LK_DIST);
  char err[KR_DIST_ERR];
  if (kr_dist_open(&u->d, err)) return luaL_error(L, "%s", err);
  u->open = 1;
  lua_pushvalue(L, -1);
  lua_rawsetp(L, LUA_REGISTRYINDEX, &DIST_KEY);
  return 1;
}

kr_dist *lk_checkdist(lua_State *L, int idx)
{
  lk_dist *u = luaL_checkudata(L, idx, LK_DIST);
  if (!u->open) luaL_argerror(L, idx, "keras.distributed has ended");
  return &u->d;
}

static int d_info(lua_State *L)
{
  kr_dist *d = lk_checkdist(L, 1);
  lua_createtable(L, 0, 5);
  lua_pushinteger(L, d->size);
  lua_setfield(L, -2, "size");
  lua_pushinteger(L, d->rank);
  lua_setfield(L, -2, "rank");
  lua_pushinteger(L, d->local_size);
  lua_setfield(L, -2, "local_size");
  lua_pushinteger(L, d->local_rank);
  lua_setfield(L, -2, "local_rank");
  lua_pushstring(L, d->ops->name);
  lua_setfield(L, -2, "transport");
  lua_pushboolean(L, d->threads_ok);
  lua_setfield(L, -2, "threads_ok");
  long nc = sysconf(_SC_NPROCESSORS_ONLN);
  lua_pushinteger(L, nc > 0 ? (lua_Integer)nc : 1);
  lua_setfield(L, -2, "cores");   /* this host's */
  return 1;
}

static int d_raise(lua_State *L, const char *err) { return luaL_error(L, "%s", err); }

/* d:allreduce(t, average) -> a new tensor: the sum over the ranks, or
** with average the sum divided by the number of ranks */
static int d_allreduce(lua_State *L)
{
  kr_dist *d = lk_checkdist(L, 1);
  kr_tensor *t = lk_checktensor(L, 2);
  int average = lua_toboolean(L, 3);
  kr_tensor *c = kr_tensor_copy(lk_ctx(L), t);
  if (!c) return lk_raise(L, lk_ctx(L));
  lk_pushtensor(L, c);
  char err[KR_DIST_ERR];
  size_t n = (size_t)kr_tensor_numel(c);
  float *v = KR_DATA(c);
  if (d->ops->allreduce(d->impl, v, n, KR_DIST_F32, err)) return d_raise(L, err);
  if (average && d->size > 1)
    for (size_t i = 0; i < n; i++) v[i] /= (float)d->size;
  return 1;
}

/* d:rng_state() -> 8 numbers (the generator's state in 32-bit halves);
** d:set_rng_state(list) */
static int d_rng_state(lua_State *L)
{
  lk_checkdist(L, 1);
  uint64_t s[4];
  kr_rng_get_state(lk_ctx(L), s);
  lua_createtable(L, 8, 0);
  for (int i = 0; i < 8; i++) {
    lua_pushnumber(L, (double)((s[i / 2] >> (32 * (i % 2))) & 0xffffffffu));
    lua_rawseti(L, -2, i + 1);
  }
  return 1;
}

static int d_set_rng_state(lua_State *L)
{
  lk_checkdist(L, 1);
  luaL_checktype(L, 2, LUA_TTABLE);
  uint64_t s[4] = {0, 0, 0, 0};
  for (int i = 0; i < 8; i++) {
    lua_geti(L, 2, i + 1);
    double v = luaL_checknumber(L, -1);
    lua_pop(L, 1);
    s[i / 2] |= ((uint64_t)v & 0xffffffffu) << (32 * (i % 2));
  }
  kr_rng_set_state(lk_ctx(L), s);
  return 0;
}

/* d:allreduce_numbers({...}) -> the sums over the ranks, in double precision;
** d:broadcast_numbers({...}, root) -> root's numbers (bcast) */
static int numbers_collective(lua_State *L, int bcast)
{
  kr_dist *d = lk_checkdist(L, 1);
  luaL_checktype(L, 2, LUA_TTABLE);
  lua_Integer root = bcast ? luaL_checkinteger(L, 3) : 0;
  lua_Integer n = luaL_len(L, 2);
  double *v = lua_newuserdatauv(L, (size_t)(n ? n : 1) * sizeof *v, 0);
  for (lua_Integer i = 0; i < n; i++) {
    lua_geti(L, 2, i + 1);
    v[i] = luaL_checknumber(L, -1);
    lua_pop(L, 1);
  }
  char err[KR_DIST_ERR];
  if (bcast ? d->ops->broadcast(d->impl, v, (size_t)n, KR_DIST_F64, (int)root, err)
            : d->ops->allreduce(d->impl, v, (size_t)n, KR_DIST_F64, err))
    return d_raise(L, err);
  lua_createtable(L, (int)n, 0);
  for (lua_Integer i = 0; i < n; i++) {
    lua_pushnumber(L, v[i]);
    lua_rawseti(L, -2, i + 1);
  }
  return 1;
}

static int d_allreduce_numbers(lua_State *L) { return numbers_collective(L, 0); }

/* d:broadcast_(t, root): t takes root's values, in place */
static int d_broadcast_(lua_State *L)
{
  kr_dist *d = lk_checkdist(L, 1);
  kr_tensor *t = lk_checktensor(L, 2);
  lua_Integer root = luaL_checkinteger(L, 3);
  char err[KR_DIST_ERR];
  if (d->ops->broadcast(d->impl, KR_DATA(t), (size_t)kr_tensor_numel(t), KR_DIST_F32, (int)root, err))
    return d_raise(L, err);
  return 0;
}

/* d:broadcast(t, root) -> a new tensor with root's values of t */
static int d_broadcast(lua_State *L)
{
  kr_dist *d = lk_checkdist(L, 1);
  kr_tensor *t = lk_checktensor(L, 2);
  lua_Integer root = luaL_checkinteger(L, 3);
  kr_tensor *c = kr_tensor_copy(lk_ctx(L), t);
  if (!c) return lk_raise(L, lk_ctx(L));
  lk_pushtensor(L, c);
  char err[KR_DIST_ERR];
  if (d->ops->broadcast(d->impl, KR_DATA(c), (size_t)kr_tensor_numel(c), KR_DIST_F32, (int)root, err))
    return d_raise(L, err);
  return 1;
}

static int d_broadcast_numbers(lua_State *L) { return numbers_collective(L, 1); }

/* d:allgather(t) -> every rank's t along the first axis, rank order (the
** other axes must agree) */
static int d_allgather(lua_State *L)
{
  kr_dist *d = lk_checkdist(L, 1);
  kr_tensor *t = lk_checktensor(L, 2);
  kr_ctx *ctx = lk_ctx(L);
  if (t->shape.ndim < 1) return luaL_error(L, "allgather: the tensor needs a first axis (got a scalar)");
  int64_t rows = t->shape.dim[0];
  int64_t row = rows ? kr_tensor_numel(t) / rows : 1;
  /* every rank's rows and row size */
  double *meta = lua_newuserdatauv(L, (size_t)d->size * 2 * sizeof *meta, 0);
  size_t *counts = lua_newuserdatauv(L, (size_t)d->size * sizeof *counts, 0);
  for (int r = 0; r < 2 * d->size; r++) meta[r] = 0;
  meta[2 * d->rank] = (double)rows;
  meta[2 * d->rank + 1] = (double)row;
  char err[KR_DIST_ERR];
  if (d->ops->allreduce(d->impl, meta, (size_t)d->size * 2, KR_DIST_F64, err)) return d_raise(L, err);
  int64_t total = 0;
  for (int r = 0; r < d->size; r++) {
    if ((int64_t)meta[2 * r + 1] != row && meta[2 * r] > 0 && rows > 0)
      return luaL_error(L, "allgather: rank %d's rows have %lld values, this rank's (%d) %lld", r,
                        (long long)meta[2 * r + 1], d->rank, (long long)row);
    counts[r] = (size_t)meta[2 * r] * (size_t)row;
    total += (int64_t)meta[2 * r];
  }
  kr_shape s = t->shape;
  s.dim[0] = total;
  kr_tensor *out = kr_tensor_new(ctx, &s);
  if (!out) return lk_raise(L, ctx);
  lk_pushtensor(L, out);
  if (d->ops->allgather(d->impl, KR_DATA(t), KR_DATA(out), counts, KR_DIST_F32, err)) return d_raise(L, err);
  return 1;
}

static int d_barrier(lua_State *L)
{
  kr_dist *d = lk_checkdist(L, 1);
  char err[KR_DIST_ERR];
  if (d->ops->barrier(d->impl, err)) return d_raise(L, err);
  return 0;
}

/* dist:release_state(sync): the end of fit: the weights and slots a trainer
** kept in the shared window back in its own memory; sync false on an error
** path (no collective) */
static int d_release_state(lua_State *L)
{
  kr_dist *d = lk_checkdist(L, 1);
  int sync = lua_toboolean(L, 2);
  char err[KR_DIST_ERR];
  if (kr_dist_state_release(d, sync, err) && sync) return d_raise(L, err);
  return 0;
}

static int d_abort(lua_State *L)
{
  kr_dist *d = lk_checkdist(L, 1);
  const char *msg = luaL_optstring(L, 2, "keras.distributed.abort");
  if (d->size > 1) d->ops->abort(d->impl, msg);
  return luaL_error(L, "%s", msg);
}

static const luaL_Reg d_methods[] = {
  {"info", d_info},
  {"allreduce", d_allreduce},
  {"allreduce_numbers", d_allreduce_numbers},
  {"broadcast", d_broadcast},
  {"broadcast_", d_broadcast_},
  {"broadcast_numbers", d_broadcast_numbers},
  {"allgather", d_allgather},
  {"barrier", d_barrier},
  {"abort", d_abort},
  {"release_state", d_release_state},
  {"rng_state", d_rng_state},
  {"set_rng_state", d_set_rng_state},
  {NULL, NULL}
};

static const luaL_Reg funcs[] = {
  {"dist", d_get},
  {NULL, NULL}
};

int lk_open_dist(lua_State *L)
{
  lk_new_class(L, LK_DIST, d_methods, d_gc, NULL);
  luaL_setfuncs(L, funcs, 0);
  return 0;
}
