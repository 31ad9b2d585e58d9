/*
** saving.c (binding) -- model files for lua/keras/saving.lua: the native
** format (read, write, encode to a string, parse a string), HDF5 handles
** (keras.H5 userdata: attributes, datasets, commit), and the state of the
** random generator as a string (so that a resumed run can continue the
** same random stream). Layout decisions live in Lua; this file only checks
** arguments and calls src/io/model_file.c and src/io/h5.c.
*/
#include "lk.h"
#include "../ctx_impl.h"      /* the generator's state (rng_get/rng_set) */
#include "../io/model_file.h"

#include <errno.h>
#include <string.h>
#include <sys/stat.h>

#define LK_H5 "keras.H5"
#define MAX_NAMES 1000000

/* ---- guards: engine memory held by a userdata while results are pushed,
** so that a Lua memory error while pushing cannot leak it ---- */

typedef struct guard {
  kr_ctx *ctx;
  void *p;               /* kr_malloc'd bytes, or NULL */
  kr_h5_attr attr;       /* an attribute read, or kind 0 with nothing held */
} guard;

static int guard_gc(lua_State *L)
{
  guard *g = lua_touserdata(L, 1);
  if (g && g->ctx) {
    kr_free(g->ctx, g->p);
    g->p = NULL;
    kr_h5_attr_free(g->ctx, &g->attr);
  }
  return 0;
}

static guard *new_guard(lua_State *L, kr_ctx *ctx)
{
  guard *g = lua_newuserdatauv(L, sizeof *g, 0);
  memset(g, 0, sizeof *g);
  if (luaL_newmetatable(L, "keras.Guard")) {
    lua_pushcfunction(L, guard_gc);
    lua_setfield(L, -2, "__gc");
  }
  lua_setmetatable(L, -2);
  g->ctx = ctx;
  return g;
}

/* ---- the native format ---- */

/* names (a list of strings) and tensors (a list of tensors) at idx, idx+1
** into arrays anchored on the stack */
static int check_named(lua_State *L, int idx, const char ***names, const kr_tensor ***ts)
{
  luaL_checktype(L, idx, LUA_TTABLE);
  luaL_checktype(L, idx + 1, LUA_TTABLE);
  lua_Integer n = luaL_len(L, idx);
  if (n < 0 || n > MAX_NAMES) luaL_error(L, "model file: too many tensors (%d)", (int)n);
  if (luaL_len(L, idx + 1) != n)
    luaL_error(L, "model file: %d names but %d tensors", (int)n, (int)luaL_len(L, idx + 1));
  const char **nm = lua_newuserdatauv(L, (size_t)(n + 1) * sizeof *nm, 0);
  const kr_tensor **t = lua_newuserdatauv(L, (size_t)(n + 1) * sizeof *t, 0);
  for (lua_Integer i = 0; i < n; i++) {
    lua_geti(L, idx, i + 1);
    nm[i] = lua_tostring(L, -1);
    if (!nm[i] || lua_type(L, -1) != LUA_TSTRING) luaL_error(L, "model file: name %d is not a string", (int)i + 1);
    lua_pop(L, 1);   /* the names table keeps the string alive */
    lua_geti(L, idx + 1, i + 1);
    t[i] = lk_testtensor(L, -1);
    if (!t[i]) luaL_error(L, "model file: item %d is not a tensor (got %s)", (int)i + 1, luaL_typename(L, -1));
    lua_pop(L, 1);
  }
  *names = nm;
  *ts = t;
  return (int)n;
}

/* After a save completed: done.committed = true, set from C so that no Lua
** instruction (where a Ctrl-C's hook runs) comes between the rename and
** the mark. done is the argument at idx, optional. */
static void mark_committed(lua_State *L, int idx)
{
  if (!lua_istable(L, idx)) return;
  lua_pushboolean(L, 1);
  lua_setfield(L, idx, "committed");
}

/* core.lkm_save(path, json, names, tensors [, done]) */
static int s_lkm_save(lua_State *L)
{
  kr_ctx *ctx = lk_ctx(L);
  const char *path = luaL_checkstring(L, 1);
  size_t jl;
  const char *json = luaL_checklstring(L, 2, &jl);
  const char **names;
  const kr_tensor **ts;
  int n = check_named(L, 3, &names, &ts);
  if (kr_model_file_save(ctx, path, json, jl, n, names, ts) != KR_OK) return lk_raise(L, ctx);
  mark_committed(L, 5);
  return 0;
}

/* core.lkm_encode(json, names, tensors) -> the file's bytes as a string */
static int s_lkm_encode(lua_State *L)
{
  kr_ctx *ctx = lk_ctx(L);
  size_t jl;
  const char *json = luaL_checklstring(L, 1, &jl);
  const char **names;
  const kr_tensor **ts;
  int n = check_named(L, 2, &names, &ts);
  guard *g = new_guard(L, ctx);
  unsigned char *buf;
  size_t len;
  if (kr_model_file_encode(ctx, json, jl, n, names, ts, &buf, &len) != KR_OK) return lk_raise(L, ctx);
  g->p = buf;
  lua_pushlstring(L, (const char *)buf, len);
  kr_free(ctx, buf);
  g->p = NULL;
  return 1;
}

/* a parsed file as: json, {name = tensor}, {names in file order}, version */
static int push_model_file(lua_State *L, kr_model_file *mf)
{
  luaL_checkstack(L, 6, "model file");
  lua_pushlstring(L, mf->json, mf->json_len);
  lua_createtable(L, 0, mf->ntensors);
  lua_createtable(L, mf->ntensors, 0);
  for (int i = 0; i < mf->ntensors; i++) {
    lua_pushstring(L, mf->names[i]);
    lua_rawseti(L, -2, i + 1);
    kr_tensor_retain(mf->tensors[i]);
    lk_pushtensor(L, mf->tensors[i]);
    lua_setfield(L, -3, mf->names[i]);
  }
  lua_pushinteger(L, mf->version);
  return 4;
}

/* the parsed file lives in a userdata while its contents are pushed, so that
** a memory error while pushing cannot leak it */
static int mf_gc(lua_State *L)
{
  kr_model_file **slot = lua_touserdata(L, 1);
  if (slot && *slot) {
    kr_model_file_free(*slot);
    *slot = NULL;
  }
  return 0;
}

static kr_model_file **mf_slot(lua_State *L)
{
  kr_model_file **slot = lua_newuserdatauv(L, sizeof *slot, 0);
  *slot = NULL;
  if (luaL_newmetatable(L, "keras.ModelFile")) {
    lua_pushcfunction(L, mf_gc);
    lua_setfield(L, -2, "__gc");
  }
  lua_setmetatable(L, -2);
  return slot;
}

static int finish_load(lua_State *L, kr_model_file **slot)
{
  int n = push_model_file(L, *slot);
  kr_model_file_free(*slot);
  *slot = NULL;
  return n;
}

/* core.lkm_load(path) -> json, tensors by name, names, version */
static int s_lkm_load(lua_State *L)
{
  kr_ctx *ctx = lk_ctx(L);
  const char *path = luaL_checkstring(L, 1);
  kr_model_file **slot = mf_slot(L);
  if (kr_model_file_load(ctx, path, slot) != KR_OK) return lk_raise(L, ctx);
  return finish_load(L, slot);
}

/* core.lkm_parse(bytes [, what]) -> as lkm_load */
static int s_lkm_parse(lua_State *L)
{
  kr_ctx *ctx = lk_ctx(L);
  size_t n;
  const char *b = luaL_checklstring(L, 1, &n);
  const char *what = luaL_optstring(L, 2, "(string)");
  kr_model_file **slot = mf_slot(L);
  if (kr_model_file_parse(ctx, (const unsigned char *)b, n, what, slot) != KR_OK) return lk_raise(L, ctx);
  return finish_load(L, slot);
}

/* ---- HDF5 ---- */

static kr_h5 *check_h5(lua_State *L, int idx)
{
  kr_h5 **slot = luaL_checkudata(L, idx, LK_H5);
  if (!*slot) luaL_argerror(L, idx, "the HDF5 file is closed");
  return *slot;
}

static int h5_gc(lua_State *L)
{
  kr_h5 **slot = luaL_checkudata(L, 1, LK_H5);
  if (*slot) {
    kr_h5_free(*slot);
    *slot = NULL;
  }
  return 0;
}

static int h5_new(lua_State *L, int create)
{
  kr_ctx *ctx = lk_ctx(L);
  const char *path = luaL_checkstring(L, 1);
  kr_h5 **slot = lua_newuserdatauv(L, sizeof *slot, 0);
  *slot = NULL;
  luaL_setmetatable(L, LK_H5);
  if (!(*slot = create ? kr_h5_create(ctx, path) : kr_h5_open(ctx, path))) return lk_raise(L, ctx);
  return 1;
}

static int s_h5_create(lua_State *L) { return h5_new(L, 1); }
static int s_h5_open(lua_State *L) { return h5_new(L, 0); }

/* h:set_attr(group, name, value): a string, a number, or a list of strings */
static int h5_set_attr(lua_State *L)
{
  kr_h5 *h = check_h5(L, 1);
  kr_ctx *ctx = lk_ctx(L);
  const char *group = luaL_checkstring(L, 2), *name = luaL_checkstring(L, 3);
  int st;
  if (lua_type(L, 4) == LUA_TSTRING) {
    size_t len;
    const char *s = lua_tolstring(L, 4, &len);
    st = kr_h5_set_attr_string(h, group, name, s, len);
  } else if (lua_type(L, 4) == LUA_TNUMBER) {
    st = kr_h5_set_attr_number(h, group, name, lua_tonumber(L, 4));
  } else if (lua_type(L, 4) == LUA_TTABLE) {
    lua_Integer n = luaL_len(L, 4);
    if (n < 0 || n > MAX_NAMES) return luaL_argerror(L, 4, "too many strings");
    const char **s = lua_newuserdatauv(L, (size_t)(n + 1) * sizeof *s, 0);
    for (lua_Integer i = 0; i < n; i++) {
      lua_geti(L, 4, i + 1);
      if (lua_type(L, -1) != LUA_TSTRING) return luaL_error(L, "set_attr: item %d of '%s' is not a string", (int)i + 1, name);
      s[i] = lua_tostring(L, -1);
      lua_pop(L, 1);
    }
    st = kr_h5_set_attr_strings(h, group, name, (int)n, s);
  } else {
    return luaL_typeerror(L, 4, "string, number or list of strings");
  }
  if (st != KR_OK) return lk_raise(L, ctx);
  return 0;
}

/* h:attr(group, name) -> string | number | list | nil */
static int h5_attr(lua_State *L)
{
  kr_h5 *h = check_h5(L, 1);
  kr_ctx *ctx = lk_ctx(L);
  const char *group = luaL_checkstring(L, 2), *name = luaL_checkstring(L, 3);
  guard *g = new_guard(L, ctx);
  if (kr_h5_get_attr(h, group, name, &g->attr) != KR_OK) return lk_raise(L, ctx);
  kr_h5_attr a = g->attr;
  luaL_checkstack(L, 4, "attr");
  switch (a.kind) {
  case KR_H5_NONE: lua_pushnil(L); break;
  case KR_H5_STRING:
    if (a.n > 0) lua_pushlstring(L, a.s[0], a.len[0]);
    else lua_pushliteral(L, "");
    break;
  case KR_H5_NUMBER:
    if (a.n > 0 && a.v[0] == (double)(lua_Integer)a.v[0] && a.v[0] > -9.2e18 && a.v[0] < 9.2e18)
      lua_pushinteger(L, (lua_Integer)a.v[0]);
    else
      lua_pushnumber(L, a.n > 0 ? a.v[0] : 0);
    break;
  default:
    lua_createtable(L, a.n, 0);
    for (int i = 0; i < a.n; i++) {
      if (a.kind == KR_H5_STRINGS) lua_pushlstring(L, a.s[i], a.len[i]);
      else lua_pushnumber(L, a.v[i]);
      lua_rawseti(L, -2, i + 1);
    }
    break;
  }
  kr_h5_attr_free(ctx, &g->attr);
  return 1;
}

static int h5_write(lua_State *L)
{
  kr_h5 *h = check_h5(L, 1);
  kr_ctx *ctx = lk_ctx(L);
  const char *path = luaL_checkstring(L, 2);
  kr_tensor *t = lk_checktensor(L, 3);
  if (kr_h5_write_tensor(h, path, t) != KR_OK) return lk_raise(L, ctx);
  return 0;
}

static int h5_write_int(lua_State *L)
{
  kr_h5 *h = check_h5(L, 1);
  kr_ctx *ctx = lk_ctx(L);
  const char *path = luaL_checkstring(L, 2);
  lua_Integer v = luaL_checkinteger(L, 3);
  if (kr_h5_write_int(h, path, (int64_t)v) != KR_OK) return lk_raise(L, ctx);
  return 0;
}

static int h5_read(lua_State *L)
{
  kr_h5 *h = check_h5(L, 1);
  kr_ctx *ctx = lk_ctx(L);
  const char *path = luaL_checkstring(L, 2);
  kr_tensor **slot = lk_newtensorslot(L);
  if (!(*slot = kr_h5_read_tensor(h, path))) return lk_raise(L, ctx);
  return 1;
}

static int h5_read_number(lua_State *L)
{
  kr_h5 *h = check_h5(L, 1);
  kr_ctx *ctx = lk_ctx(L);
  const char *path = luaL_checkstring(L, 2);
  double v;
  if (kr_h5_read_number(h, path, &v) != KR_OK) return lk_raise(L, ctx);
  if (v == (double)(lua_Integer)v && v > -9.2e18 && v < 9.2e18) lua_pushinteger(L, (lua_Integer)v);
  else lua_pushnumber(L, v);
  return 1;
}

static int h5_exists(lua_State *L)
{
  kr_h5 *h = check_h5(L, 1);
  lua_pushboolean(L, kr_h5_exists(h, luaL_checkstring(L, 2)));
  return 1;
}

static int h5_commit(lua_State *L)
{
  kr_h5 *h = check_h5(L, 1);
  kr_ctx *ctx = lk_ctx(L);
  if (kr_h5_commit(h) != KR_OK) return lk_raise(L, ctx);
  mark_committed(L, 2);
  return 0;
}

/* ---- the random generator's state ---- */

#define RNG_STATE_LEN 42   /* version byte, 4 x u64, the spare normal (f64), have_spare */

static int s_rng_get(lua_State *L)
{
  kr_ctx *ctx = lk_ctx(L);
  unsigned char b[RNG_STATE_LEN];
  b[0] = 1;
  for (int i = 0; i < 4; i++)
    for (int k = 0; k < 8; k++) b[1 + 8 * i + k] = (unsigned char)(ctx->rng[i] >> (8 * k));
  uint64_t sp;
  memcpy(&sp, &ctx->spare, 8);
  for (int k = 0; k < 8; k++) b[33 + k] = (unsigned char)(sp >> (8 * k));
  b[41] = (unsigned char)(ctx->have_spare != 0);
  lua_pushlstring(L, (const char *)b, sizeof b);
  return 1;
}

static int s_rng_set(lua_State *L)
{
  kr_ctx *ctx = lk_ctx(L);
  size_t n;
  const unsigned char *b = (const unsigned char *)luaL_checklstring(L, 1, &n);
  if (n != RNG_STATE_LEN || b[0] != 1 || b[41] > 1)
    return luaL_argerror(L, 1, "not a state from keras.random.get_state()");
  uint64_t r[4] = {0, 0, 0, 0}, sp = 0;
  for (int i = 0; i < 4; i++)
    for (int k = 0; k < 8; k++) r[i] |= (uint64_t)b[1 + 8 * i + k] << (8 * k);
  if ((r[0] | r[1] | r[2] | r[3]) == 0) return luaL_argerror(L, 1, "not a state from keras.random.get_state()");
  for (int k = 0; k < 8; k++) sp |= (uint64_t)b[33 + k] << (8 * k);
  memcpy(ctx->rng, r, sizeof r);
  memcpy(&ctx->spare, &sp, 8);
  ctx->have_spare = b[41];
  return 0;
}

static const luaL_Reg h5_methods[] = {
  {"set_attr", h5_set_attr},
  {"attr", h5_attr},
  {"write", h5_write},
  {"write_int", h5_write_int},
  {"read", h5_read},
  {"read_number", h5_read_number},
  {"exists", h5_exists},
  {"commit", h5_commit},
  {"close", h5_gc},
  {NULL, NULL}
};

/* core.file_kind(path) -> "file", "directory", "fifo", "character device",
** "block device", "socket" or "other"; nil and the reason when it cannot be
** stat'ed. A stat, never an open: it cannot block. The Lua loaders call it
** before io.open, so that a FIFO or a device is refused instead of hanging
** the open or the read. */
static int s_file_kind(lua_State *L)
{
  const char *path = luaL_checkstring(L, 1);
  struct stat sb;
  if (stat(path, &sb) != 0) {
    lua_pushnil(L);
    lua_pushstring(L, strerror(errno));
    return 2;
  }
  lua_pushstring(L, S_ISREG(sb.st_mode) ? "file" : S_ISDIR(sb.st_mode) ? "directory" : S_ISFIFO(sb.st_mode) ? "fifo"
                    : S_ISCHR(sb.st_mode) ? "character device" : S_ISBLK(sb.st_mode) ? "block device"
                    : S_ISSOCK(sb.st_mode) ? "socket" : "other");
  return 1;
}

static const luaL_Reg funcs[] = {
  {"file_kind", s_file_kind},
  {"lkm_save", s_lkm_save},
  {"lkm_load", s_lkm_load},
  {"lkm_encode", s_lkm_encode},
  {"lkm_parse", s_lkm_parse},
  {"h5_create", s_h5_create},
  {"h5_open", s_h5_open},
  {"rng_get_state", s_rng_get},
  {"rng_set_state", s_rng_set},
  {NULL, NULL}
};

int lk_open_saving(lua_State *L)
{
  lk_new_class(L, LK_H5, h5_methods, h5_gc, h5_gc);
  luaL_setfuncs(L, funcs, 0);
  return 0;
}
