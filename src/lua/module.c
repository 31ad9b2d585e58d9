/*
** module.c -- luaopen_keras: the one exported entry point.
** Creates the state's engine context (a full userdata in the registry, made
** before any tensor so that lua_close finalizes it last), registers the Lua
** half of the library (lua/keras/ files, compiled into the binary by
** scripts/embed.lua) in package.preload, and runs keras.init with the C core.
*/
#include "lk.h"
#include "../ops_conv.h"

#include <limits.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

typedef struct lk_source {
  const char *name;
  const char *src;
  size_t len;
} lk_source;

extern const lk_source lk_embedded[];
extern const int lk_embedded_count;

static const char CTX_KEY = 'k';

/* the registry's context userdata: the context first (lk_ctx reads it as a
** kr_ctx *), then the engine bytes in use that Lua's collector was told of */
typedef struct lk_state {
  kr_ctx *ctx;
  size_t gc_told;
} lk_state;

static int ctx_gc(lua_State *L)
{
  kr_ctx **p = luaL_checkudata(L, 1, "keras.Context");
  if (*p) {
    kr_ctx_free(*p);
    *p = NULL;
  }
  return 0;
}

kr_ctx *lk_ctx(lua_State *L)
{
  lua_rawgetp(L, LUA_REGISTRYINDEX, &CTX_KEY);
  kr_ctx **p = lua_touserdata(L, -1);
  lua_pop(L, 1);
  if (!p || !*p) luaL_error(L, "keras: the library is not initialised in this state");
  return *p;
}

void lk_gc_account(lua_State *L)
{
  lua_rawgetp(L, LUA_REGISTRYINDEX, &CTX_KEY);
  lk_state *s = lua_touserdata(L, -1);
  lua_pop(L, 1);
  if (!s || !s->ctx) return;
  size_t now = kr_mem_in_use(s->ctx);
  if (now <= s->gc_told) {     /* freed since: count growth from here */
    s->gc_told = now;
    return;
  }
  size_t kb = (now - s->gc_told) >> 10;
  if (kb == 0) return;         /* under 1 KB: wait until it adds up */
  s->gc_told += kb << 10;
  if (!lua_gc(L, LUA_GCISRUNNING)) return;   /* collectgarbage("stop") is honoured */
  lua_gc(L, LUA_GCSTEP, kb > INT_MAX ? INT_MAX : (int)kb);
}

kr_ctx *lk_ctx_or_null(lua_State *L)
{
  lua_rawgetp(L, LUA_REGISTRYINDEX, &CTX_KEY);
  kr_ctx **p = luaL_testudata(L, -1, "keras.Context");
  lua_pop(L, 1);
  return p ? *p : NULL;
}

int lk_raise(lua_State *L, kr_ctx *ctx)
{
  return luaL_error(L, "%s", kr_errmsg(ctx));
}

static int preload_embedded(lua_State *L)
{
  const lk_source *s = lua_touserdata(L, lua_upvalueindex(1));
  int nargs = lua_gettop(L);
  const char *chunk = lua_pushfstring(L, "@lua/keras/%s.lua", s->name + 6); /* after "keras." */
  if (luaL_loadbufferx(L, s->src, s->len, chunk, "t") != LUA_OK) return lua_error(L);
  lua_remove(L, -2);
  lua_insert(L, 1);            /* the chunk gets every argument: require's, or the library's parts */
  lua_call(L, nargs, 1);
  return 1;
}

/* stats of the allocator: bytes in use, peak bytes, allocations so far */
static int core_mem(lua_State *L)
{
  kr_ctx *ctx = lk_ctx(L);
  lua_pushinteger(L, (lua_Integer)kr_mem_in_use(ctx));
  lua_pushinteger(L, (lua_Integer)kr_mem_peak(ctx));
  lua_pushinteger(L, (lua_Integer)kr_mem_allocs(ctx));
  return 3;
}

static int core_set_threads(lua_State *L)
{
  kr_set_num_threads(lk_ctx(L), (int)luaL_checkinteger(L, 1));
  return 0;
}

/* keras.backend.set_memory_limit(bytes): 0 or nil removes it */
static int core_set_memory_limit(lua_State *L)
{
  lua_Integer n = luaL_optinteger(L, 1, 0);
  if (n < 0) return luaL_argerror(L, 1, "the limit must be >= 0 bytes");
  kr_mem_set_limit(lk_ctx(L), (size_t)n);
  return 0;
}

static int core_get_memory_limit(lua_State *L)
{
  lua_pushinteger(L, (lua_Integer)kr_mem_limit(lk_ctx(L)));
  return 1;
}

/* the inference plans' packed GEMM for plans built from now on: 0 never,
** 1 always, 2 where measured faster (kr_set_gemm_packed); returns the mode before */
static int core_gemm_packed(lua_State *L)
{
  kr_ctx *ctx = lk_ctx(L);
  int before = kr_get_gemm_packed(ctx);
  if (!lua_isnoneornil(L, 1)) {
    lua_Integer m = luaL_checkinteger(L, 1);
    luaL_argcheck(L, m >= 0 && m <= 2, 1, "expected 0 (never), 1 (always) or 2 (measured)");
    kr_set_gemm_packed(ctx, (int)m);
  }
  lua_pushinteger(L, before);
  return 1;
}

static int core_get_threads(lua_State *L)
{
  lua_pushinteger(L, kr_get_num_threads(lk_ctx(L)));
  return 1;
}

static int core_now(lua_State *L)
{
  lua_pushnumber(L, kr_now());
  return 1;
}


static int core_isatty(lua_State *L)
{
  luaL_Stream *s = luaL_testudata(L, 1, LUA_FILEHANDLE);
  lua_pushboolean(L, s && s->f && isatty(fileno(s->f)));
  return 1;
}

static int core_fail_alloc(lua_State *L)
{
  kr_mem_fail_at(lk_ctx(L), (long)luaL_checkinteger(L, 1));
  return 0;
}

/* t[k] = v for the table on top */
static void set_string(lua_State *L, const char *k, const char *v)
{
  lua_pushstring(L, v);
  lua_setfield(L, -2, k);
}

/* keras.backend.blas_info(): OpenBLAS's kernels, how they were chosen, the CPU */
static int core_blas_info(lua_State *L)
{
  const kr_blas_info *b = kr_blas_init();
  lua_createtable(L, 0, 11);
  set_string(L, "core", b->core);
  set_string(L, "chosen_by", b->chosen_by);
  set_string(L, "openblas_core", b->openblas_core);
  set_string(L, "detail", b->detail);
  if (b->warning[0]) set_string(L, "warning", b->warning);
  lua_pushboolean(L, b->checked);
  lua_setfield(L, -2, "checked");
  lua_pushinteger(L, kr_blas_threads());
  lua_setfield(L, -2, "threads");
  set_string(L, "cpu", b->cpu_model);
  if (b->rejected[0]) set_string(L, "rejected", b->rejected);
  set_string(L, "cpu_features", b->cpu_features);
  set_string(L, "cpu_level", b->cpu_level);
  set_string(L, "config", b->config);
  return 1;
}

/* keras.backend.set_conv_autotune(on), get_conv_autotune() (src/conv_tune.c) */
static int core_set_conv_autotune(lua_State *L)
{
  luaL_checktype(L, 1, LUA_TBOOLEAN);
  kr_set_conv_autotune(lk_ctx(L), lua_toboolean(L, 1));
  return 0;
}

/* keras.backend.set_conv_autotune(on, {cache = path | false}): the on-disk cache (conv_tune.c) */
static int core_set_conv_tune_cache(lua_State *L)
{
  kr_ctx *ctx = lk_ctx(L);
  const char *path = lua_toboolean(L, 1) ? luaL_checkstring(L, 1) : NULL;
  if (kr_set_conv_tune_cache(ctx, path) != KR_OK) return lk_raise(L, ctx);
  return 0;
}

static int core_get_conv_tune_cache(lua_State *L)
{
  const char *p = kr_get_conv_tune_cache(lk_ctx(L));
  if (p) lua_pushstring(L, p);
  else lua_pushboolean(L, 0);
  return 1;
}

static int core_get_conv_autotune(lua_State *L)
{
  lua_pushboolean(L, kr_get_conv_autotune(lk_ctx(L)));
  return 1;
}

/* {k1 = key[i1], k2 = key[i2], ...} as a list, set as field `name` */
static void set_ints(lua_State *L, const char *name, const int64_t *key, const int *idx, int n)
{
  lua_createtable(L, n, 0);
  for (int i = 0; i < n; i++) {
    lua_pushinteger(L, (lua_Integer)key[idx[i]]);
    lua_rawseti(L, -2, i + 1);
  }
  lua_setfield(L, -2, name);
}

/* keras.backend.conv_autotune_report(): {total_s, entries = {{pass, input,
** kernel, output, strides, dilation, pads, relu, batch, threads, candidate,
** rule, times = {lowering = ms}}, ...}} in the order tuned */
static int core_conv_autotune_report(lua_State *L)
{
  kr_ctx *ctx = lk_ctx(L);
  int n = kr_conv_autotune_count(ctx);
  lua_createtable(L, 0, 3);
  lua_pushnumber(L, kr_conv_autotune_seconds(ctx));
  lua_setfield(L, -2, "total_s");
  lua_pushboolean(L, kr_get_conv_autotune(ctx));
  lua_setfield(L, -2, "enabled");
  lua_createtable(L, n, 0);
  for (int i = 0; i < n; i++) {
    const kr_conv_tuned *t = kr_conv_autotune_entry(ctx, i);
    /* key: op, H, W, C, KH, KW, O, Ho, Wo, sh, sw, dh, dw, pt, pl, relu, mask/bias */
    static const int in[] = {1, 2, 3}, k[] = {4, 5, 3, 6}, out[] = {7, 8, 6}, st[] = {9, 10}, dl[] = {11, 12},
                     pd[] = {13, 14};
    /* 3-D key: op, D, H, W, C, KD, KH, KW, O, Do, Ho, Wo, strides, dilations, pads (3 each), relu, bias */
    static const int in3[] = {1, 2, 3, 4}, k3[] = {5, 6, 7, 4, 8}, out3[] = {9, 10, 11, 8}, st3[] = {12, 13, 14},
                     dl3[] = {15, 16, 17}, pd3[] = {18, 19, 20};
    int d3 = kr_is_conv3d_op((int)t->key[0]);
    lua_createtable(L, 0, 13);
    set_string(L, "pass", kr_conv_pass_name((int)t->key[0]));
    set_ints(L, "input", t->key, d3 ? in3 : in, d3 ? 4 : 3);
    set_ints(L, "kernel", t->key, d3 ? k3 : k, d3 ? 5 : 4);
    set_ints(L, "output", t->key, d3 ? out3 : out, d3 ? 4 : 3);
    set_ints(L, "strides", t->key, d3 ? st3 : st, d3 ? 3 : 2);
    set_ints(L, "dilation", t->key, d3 ? dl3 : dl, d3 ? 3 : 2);
    set_ints(L, "pads", t->key, d3 ? pd3 : pd, d3 ? 3 : 2);
    lua_pushboolean(L, t->key[d3 ? 21 : 15] != 0);
    lua_setfield(L, -2, "relu");
    lua_pushinteger(L, (lua_Integer)t->batch);
    lua_setfield(L, -2, "batch");
    lua_pushinteger(L, t->threads);
    lua_setfield(L, -2, "threads");
    lua_pushboolean(L, t->cached);
    lua_setfield(L, -2, "cached");
    set_string(L, "candidate", kr_conv_algo_name(t->algo));
    set_string(L, "rule", kr_conv_algo_name(t->rule));
    lua_createtable(L, 0, t->ncand);
    for (int c = 0; c < t->ncand; c++) {
      if (t->ms[c] >= 0) lua_pushnumber(L, t->ms[c]);
      else lua_pushboolean(L, 0);   /* the only candidate: not timed */
      lua_setfield(L, -2, kr_conv_algo_name(t->cand[c]));
    }
    lua_setfield(L, -2, "times");
    lua_rawseti(L, -2, i + 1);
  }
  lua_setfield(L, -2, "entries");
  return 1;
}

static const luaL_Reg core_funcs[] = {
  {"blas_info", core_blas_info},
  {"mem", core_mem},
  {"set_num_threads", core_set_threads},
  {"get_num_threads", core_get_threads},
  {"set_memory_limit", core_set_memory_limit},
  {"get_memory_limit", core_get_memory_limit},
  {"gemm_packed", core_gemm_packed},
  {"now", core_now},
  {"isatty", core_isatty},
  {"fail_alloc", core_fail_alloc},
  {"set_conv_autotune", core_set_conv_autotune},
  {"get_conv_autotune", core_get_conv_autotune},
  {"conv_autotune_report", core_conv_autotune_report},
  {"set_conv_tune_cache", core_set_conv_tune_cache},
  {"get_conv_tune_cache", core_get_conv_tune_cache},
  {NULL, NULL}
};

int luaopen_keras(lua_State *L)
{
  /* the context, once per state */
  lua_rawgetp(L, LUA_REGISTRYINDEX, &CTX_KEY);
  int have = !lua_isnil(L, -1);
  lua_pop(L, 1);
  if (!have) {
    lk_state *st = lua_newuserdatauv(L, sizeof *st, 0);
    st->ctx = NULL;
    st->gc_told = 0;
    kr_ctx **p = &st->ctx;
    if (luaL_newmetatable(L, "keras.Context")) {
      lua_pushcfunction(L, ctx_gc);
      lua_setfield(L, -2, "__gc");
    }
    lua_setmetatable(L, -2);
    *p = kr_ctx_new();
    if (!*p) return luaL_error(L, "keras: out of memory");
    /* engine memory comes from the state's allocator: a host that gave
    ** lua_newstate its own sees (and can budget) all of it */
    void *aud;
    lua_Alloc af = lua_getallocf(L, &aud);
    kr_ctx_set_allocator(*p, af, aud);
    lua_rawsetp(L, LUA_REGISTRYINDEX, &CTX_KEY);
  }
  /* package.preload["keras.xxx"] for every embedded module */
  lua_getglobal(L, "package");
  if (lua_istable(L, -1)) {
    lua_getfield(L, -1, "preload");
    if (lua_istable(L, -1)) {
      for (int i = 0; i < lk_embedded_count; i++) {
        lua_pushlightuserdata(L, (void *)&lk_embedded[i]);
        lua_pushcclosure(L, preload_embedded, 1);
        lua_setfield(L, -2, lk_embedded[i].name);
      }
    }
    lua_pop(L, 1);
  }
  lua_pop(L, 1);
  /* the core table */
  lua_newtable(L);
  luaL_setfuncs(L, core_funcs, 0);
  lk_open_tensor(L);
  lk_open_graph(L);
  lk_open_train(L);
  lk_open_saving(L);
  lk_open_prefetch(L);
  lk_open_function(L);
  lk_open_image(L);
  lk_open_image_async(L);
  lk_open_dist(L);
  /* keras.init(core) returns the module */
  const lk_source *init = NULL;
  for (int i = 0; i < lk_embedded_count; i++)
    if (strcmp(lk_embedded[i].name, "keras.init") == 0) init = &lk_embedded[i];
  if (!init) return luaL_error(L, "keras: keras.init is missing from the build");
  if (luaL_loadbufferx(L, init->src, init->len, "@lua/keras/init.lua", "t") != LUA_OK) return lua_error(L);
  lua_insert(L, -2);
  lua_call(L, 1, 1);
  return 1;
}
