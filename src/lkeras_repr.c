/*
** lkeras_repr.c -- the lkeras host's printer of the values of REPL
** expressions: tables as constructors one level deep (at most REPR_ITEMS
** items, keys sorted), strings quoted inside tables, values with __tostring
** (tensors, models) through it, shortened to "<keras.Tensor shape=...>" when
** nested. Moved verbatim from lkeras.c ("printing values"); no global state.
*/
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <lua.h>
#include <lauxlib.h>

#include "lkeras_repr.h"

#define REPR_ITEMS  20        /* table items shown before "..." */
#define REPR_STRLEN 60        /* bytes of a string shown inside a table */

/* ---- printing values ---- */

static const char *const keywords[] = {
  "and", "break", "do", "else", "elseif", "end", "false", "for", "function", "goto", "if",
  "in", "local", "nil", "not", "or", "repeat", "return", "then", "true", "until", "while",
  NULL
};

static int is_name(const char *s)
{
  if (!(*s == '_' || (*s >= 'a' && *s <= 'z') || (*s >= 'A' && *s <= 'Z'))) return 0;
  for (const char *p = s; *p; p++)
    if (!(*p == '_' || (*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') || (*p >= '0' && *p <= '9')))
      return 0;
  for (int i = 0; keywords[i]; i++)
    if (strcmp(s, keywords[i]) == 0) return 0;
  return 1;
}

/* Pushes the string at idx as a Lua literal, cut after REPR_STRLEN bytes. */
static void push_quoted(lua_State *L, int idx)
{
  size_t len;
  const char *s = lua_tolstring(L, idx, &len);
  size_t n = len;
  if (n > REPR_STRLEN) {
    n = REPR_STRLEN;
    while (n > 0 && ((unsigned char)s[n] & 0xC0) == 0x80) n--;   /* not inside a UTF-8 char */
  }
  luaL_Buffer b;
  luaL_buffinit(L, &b);
  luaL_addchar(&b, '"');
  for (size_t i = 0; i < n; i++) {
    unsigned char c = (unsigned char)s[i];
    char esc[8];
    switch (c) {
    case '"': luaL_addstring(&b, "\\\""); break;
    case '\\': luaL_addstring(&b, "\\\\"); break;
    case '\n': luaL_addstring(&b, "\\n"); break;
    case '\r': luaL_addstring(&b, "\\r"); break;
    case '\t': luaL_addstring(&b, "\\t"); break;
    default:
      if (c < 32 || c == 127) {
        snprintf(esc, sizeof esc, "\\%03d", c);
        luaL_addstring(&b, esc);
      } else {
        luaL_addchar(&b, (char)c);
      }
    }
  }
  if (n < len) luaL_addstring(&b, "...");
  luaL_addchar(&b, '"');
  luaL_pushresult(&b);
}

static int get_shape(lua_State *L)
{
  lua_getfield(L, 1, "shape");
  return 1;
}

/* Pushes "<name>" for an object whose tostring is too long to nest, with its
** shape when it has one: "<keras.Tensor shape={60000, 28, 28}>". */
static void push_brief(lua_State *L, int idx)
{
  const char *name = luaL_typename(L, idx);
  int ndim = 0;
  if (luaL_getmetafield(L, idx, "__name") == LUA_TNIL) lua_pushnil(L);
  if (lua_type(L, -1) == LUA_TSTRING) name = lua_tostring(L, -1);
  lua_pushcfunction(L, get_shape);
  lua_pushvalue(L, idx);
  if (lua_pcall(L, 1, 1, 0) == LUA_OK && lua_type(L, -1) == LUA_TTABLE) {
    ndim = (int)lua_rawlen(L, -1);
    if (ndim > 16) ndim = 0;
    for (int i = 1; i <= ndim; i++) {
      if (lua_rawgeti(L, -1, i) != LUA_TNUMBER) ndim = 0;
      lua_pop(L, 1);
    }
  }
  luaL_Buffer b;
  luaL_buffinit(L, &b);
  luaL_addchar(&b, '<');
  luaL_addstring(&b, name);
  for (int i = 1; i <= ndim; i++) {
    luaL_addstring(&b, i == 1 ? " shape={" : ", ");
    lua_rawgeti(L, -2, i);   /* a balanced push and pop between buffer calls */
    lua_Number d = lua_tonumber(L, -1);
    lua_pop(L, 1);
    lua_pushfstring(L, "%I", (lua_Integer)d);
    luaL_addvalue(&b);
  }
  if (ndim > 0) luaL_addchar(&b, '}');
  luaL_addchar(&b, '>');
  luaL_pushresult(&b);
  lua_replace(L, -3);
  lua_pop(L, 1);
}

static void push_repr(lua_State *L, int idx, int top);

static int key_rank(lua_State *L, int idx)
{
  switch (lua_type(L, idx)) {
  case LUA_TNUMBER: return 0;
  case LUA_TSTRING: return 1;
  case LUA_TBOOLEAN: return 2;
  default: return 3;
  }
}

/* Numbers first, then strings, each in order; other keys keep their place. */
static int key_less(lua_State *L, int a, int b)
{
  int ra = key_rank(L, a), rb = key_rank(L, b);
  if (ra != rb) return ra < rb;
  return ra <= 1 && lua_compare(L, a, b, LUA_OPLT);
}

/* Keeps keys[1..n] the cap smallest keys seen: inserts the key on top of
** the stack (left there) in order. Returns the new n; *dropped counts the
** keys that fell off the end. */
static int keep_key(lua_State *L, int keys, int n, int cap, lua_Integer *dropped)
{
  if (n == cap) {
    (*dropped)++;
    if (cap == 0) return n;
    lua_rawgeti(L, keys, n);
    int less = key_less(L, -2, -1);
    lua_pop(L, 1);
    if (!less) return n;
    n--;
  }
  int j = n;
  for (; j >= 1; j--) {
    lua_rawgeti(L, keys, j);
    if (!key_less(L, -2, -1)) {
      lua_pop(L, 1);
      break;
    }
    lua_rawseti(L, keys, j + 1);
  }
  lua_pushvalue(L, -1);
  lua_rawseti(L, keys, j + 1);
  return n + 1;
}

/* Pushes the key at idx as it is written in a constructor: name or [key]. */
static void push_key(lua_State *L, int idx)
{
  idx = lua_absindex(L, idx);
  if (lua_type(L, idx) == LUA_TSTRING && is_name(lua_tostring(L, idx))) {
    lua_pushvalue(L, idx);
    return;
  }
  lua_pushliteral(L, "[");
  push_repr(L, idx, 0);
  lua_pushliteral(L, "]");
  lua_concat(L, 3);
}

/* Pushes "{1, 2, a = 3}": the sequence part, then the other keys sorted,
** one level deep, at most REPR_ITEMS items. */
static void push_table(lua_State *L, int t)
{
  lua_Integer n = (lua_Integer)lua_rawlen(L, t);
  lua_Integer more = 0;
  int nparts = 0, nkeys = 0;
  lua_newtable(L);
  int parts = lua_gettop(L);
  lua_newtable(L);
  int keys = parts + 1;

  for (lua_Integer i = 1; i <= n && i <= REPR_ITEMS; i++) {
    lua_rawgeti(L, t, i);
    push_repr(L, -1, 0);
    lua_rawseti(L, parts, ++nparts);
    lua_pop(L, 1);
  }
  if (n > REPR_ITEMS) more = n - REPR_ITEMS;

  lua_pushnil(L);
  while (lua_next(L, t)) {
    lua_pop(L, 1);
    if (lua_isinteger(L, -1)) {
      lua_Integer k = lua_tointeger(L, -1);
      if (k >= 1 && k <= n) continue;
    }
    nkeys = keep_key(L, keys, nkeys, REPR_ITEMS - nparts, &more);
  }
  for (int i = 1; i <= nkeys; i++) {
    lua_rawgeti(L, keys, i);
    push_key(L, -1);
    lua_pushliteral(L, " = ");
    lua_pushvalue(L, -3);
    lua_rawget(L, t);
    push_repr(L, -1, 0);
    lua_remove(L, -2);
    lua_concat(L, 3);
    lua_rawseti(L, parts, ++nparts);
    lua_pop(L, 1);
  }

  luaL_Buffer b;
  luaL_buffinit(L, &b);
  luaL_addchar(&b, '{');
  for (int i = 1; i <= nparts; i++) {
    if (i > 1) luaL_addstring(&b, ", ");
    lua_rawgeti(L, parts, i);
    luaL_addvalue(&b);
  }
  if (more > 0) {
    lua_pushfstring(L, "%s... (%I more)", nparts > 0 ? ", " : "", (lua_Integer)more);
    luaL_addvalue(&b);
  }
  luaL_addchar(&b, '}');
  luaL_pushresult(&b);
  lua_replace(L, parts);
  lua_pop(L, 1);
}

/* Pushes a readable form of the value at idx. At the top level strings are
** raw and tables are expanded; inside a table strings are quoted, nested
** tables are "{...}" and long tostrings (tensors) are shortened. Values with
** __tostring (tensors, models) print through it. */
static void push_repr(lua_State *L, int idx, int top)
{
  idx = lua_absindex(L, idx);
  int type = lua_type(L, idx);
  if (luaL_getmetafield(L, idx, "__tostring") != LUA_TNIL) {
    lua_pop(L, 1);
    size_t len;
    const char *s = luaL_tolstring(L, idx, &len);
    if (!top && (len > REPR_STRLEN || memchr(s, '\n', len))) {
      lua_pop(L, 1);
      push_brief(L, idx);
    }
    return;
  }
  if (type == LUA_TSTRING) {
    if (top) lua_pushvalue(L, idx);
    else push_quoted(L, idx);
  } else if (type == LUA_TTABLE && top) {
    push_table(L, idx);
  } else if (type == LUA_TTABLE) {
    lua_pushnil(L);
    if (lua_next(L, idx)) {
      lua_pop(L, 2);
      lua_pushliteral(L, "{...}");
    } else {
      lua_pushliteral(L, "{}");
    }
  } else {
    luaL_tolstring(L, idx, NULL);
  }
}

/* The REPL's printer: its arguments, tab-separated, on one line. The line
** is built first so that a failing __tostring prints nothing. */
int lk_host_print_values(lua_State *L)
{
  int n = lua_gettop(L);
  luaL_Buffer b;
  luaL_buffinit(L, &b);
  for (int i = 1; i <= n; i++) {
    if (i > 1) luaL_addchar(&b, '\t');
    push_repr(L, i, 1);
    luaL_addvalue(&b);
  }
  luaL_addchar(&b, '\n');
  luaL_pushresult(&b);
  size_t len;
  const char *s = lua_tolstring(L, -1, &len);
  fwrite(s, 1, len, stdout);
  fflush(stdout);
  return 0;
}
