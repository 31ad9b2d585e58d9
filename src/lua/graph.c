/*
** graph.c (binding) -- keras.Node userdata: the symbolic tensors that layers
** pass around. Each engine node has at most one userdata (a weak cache in the
** registry), so two symbolic tensors compare equal exactly when they are the
** same node output. Ops are created by name with an attribute table of
** named attributes, {axis = 1}, {stride_h = 2, ...}, checked against the
** op's names in the op table (kr_opinfo.attrs), and `shape` for the ops
** that take a target shape; the engine checks the shapes.
*/
#include "lk.h"
#include "../ops.h"
#include "../ops_rnn.h"

#include <string.h>

static const char CACHE_KEY = 'n';

static int n_gc(lua_State *L)
{
  kr_node **slot = luaL_checkudata(L, 1, LK_NODE);
  if (*slot) {
    kr_node_release(*slot);
    *slot = NULL;
  }
  return 0;
}

void lk_pushnode(lua_State *L, kr_node *n)
{
  lk_gc_account(L);
  lua_rawgetp(L, LUA_REGISTRYINDEX, &CACHE_KEY);
  if (lua_rawgetp(L, -1, n) == LUA_TUSERDATA) {
    kr_node **slot = lua_touserdata(L, -1);
    if (*slot == n) {
      lua_remove(L, -2);
      kr_node_release(n);   /* the cached userdata already holds a reference */
      return;
    }
  }
  lua_pop(L, 1);
  kr_node **slot = lua_newuserdatauv(L, sizeof *slot, 1);
  *slot = n;
  luaL_setmetatable(L, LK_NODE);
  lua_pushvalue(L, -1);
  lua_rawsetp(L, -3, n);
  lua_remove(L, -2);
}

kr_node *lk_testnode(lua_State *L, int idx)
{
  kr_node **slot = luaL_testudata(L, idx, LK_NODE);
  return slot ? *slot : NULL;
}

kr_node *lk_checknode(lua_State *L, int idx)
{
  kr_node **slot = luaL_checkudata(L, idx, LK_NODE);
  if (!*slot) luaL_argerror(L, idx, "node has been freed");
  return *slot;
}

/* a node, or a tensor/number/table made a constant node (pushed on the stack) */
static kr_node *tonode(lua_State *L, int idx)
{
  idx = lua_absindex(L, idx);
  kr_node *n = lk_testnode(L, idx);
  if (n) {
    lua_pushvalue(L, idx);
    return n;
  }
  kr_ctx *ctx = lk_ctx(L);
  kr_tensor *t = lk_totensor(L, idx);
  kr_node *c = kr_node_const(ctx, t);
  lua_pop(L, 1);
  if (!c) lk_raise(L, ctx);
  lk_pushnode(L, c);
  return c;
}

static int n_input(lua_State *L)
{
  kr_ctx *ctx = lk_ctx(L);
  kr_shape s;
  lk_checkshape(L, 1, &s, 2);
  kr_node *n = kr_node_input(ctx, &s);
  if (!n) return lk_raise(L, ctx);
  lk_pushnode(L, n);
  return 1;
}

static int n_const(lua_State *L)
{
  tonode(L, 1);
  return 1;
}

static int n_variable(lua_State *L)
{
  kr_ctx *ctx = lk_ctx(L);
  kr_tensor *t = lk_checktensor(L, 1);
  kr_node *n = kr_node_variable(ctx, t);
  if (!n) return lk_raise(L, ctx);
  lk_pushnode(L, n);
  return 1;
}

/* the names an op takes, for an error message */
static const char *attr_names(lua_State *L, const kr_attrname *names)
{
  luaL_Buffer b;
  luaL_buffinit(L, &b);
  for (const kr_attrname *a = names; a && a->name; a++) {
    if (a != names) luaL_addstring(&b, ", ");
    luaL_addstring(&b, a->name);
  }
  if (!names || !names->name) luaL_addstring(&b, "none");
  luaL_pushresult(&b);
  return lua_tostring(L, -1);
}

/* an integer attribute (a boolean is 1 or 0) at the top of the stack */
static int64_t attr_int(lua_State *L, const char *op, const char *name)
{
  if (lua_isboolean(L, -1)) return lua_toboolean(L, -1);
  int isint;
  lua_Integer v = lua_tointegerx(L, -1, &isint);
  if (!isint)
    luaL_error(L, "op '%s': attribute '%s' must be an integer, got %s", op, name, luaL_typename(L, -1));
  return (int64_t)v;
}

/* the attribute table at index t into a, by the op's names */
static void read_attrs(lua_State *L, int t, int op, kr_attr *a)
{
  const char *opname = kr_ops[op].name;
  const kr_attrname *names = kr_ops[op].attrs;
  lua_pushnil(L);
  while (lua_next(L, t)) {
    if (lua_type(L, -2) != LUA_TSTRING)
      luaL_error(L, "op '%s': attribute names must be strings, got %s", opname, luaL_typename(L, -2));
    const char *key = lua_tostring(L, -2);
    if (strcmp(key, "shape") == 0) {
      lk_checkshape(L, lua_gettop(L), &a->shape, 2);
      lua_pop(L, 1);
      continue;
    }
    const kr_attrname *n = names;
    while (n && n->name && strcmp(n->name, key) != 0) n++;
    if (!n || !n->name)
      luaL_error(L, "op '%s': unknown attribute '%s' (expected one of: %s)", opname, key, attr_names(L, names));
    if (n->kind == KR_ATTR_FLOAT) {
      if (lua_type(L, -1) != LUA_TNUMBER)
        luaL_error(L, "op '%s': attribute '%s' must be a number, got %s", opname, key, luaL_typename(L, -1));
      a->f[n->slot] = lua_tonumber(L, -1);
    } else if (n->kind == KR_ATTR_INT) {
      a->i[n->slot] = attr_int(L, opname, key);
    } else {
      if (!lua_istable(L, -1))
        luaL_error(L, "op '%s': attribute '%s' must be a list of integers, got %s", opname, key,
                   luaL_typename(L, -1));
      lua_Integer len = luaL_len(L, -1);
      if (len > KR_MAX_ATTR - n->slot)
        luaL_error(L, "op '%s': attribute '%s' has %d entries, at most %d", opname, key, (int)len,
                   KR_MAX_ATTR - n->slot);
      for (lua_Integer i = 1; i <= len; i++) {
        lua_geti(L, -1, i);
        a->i[n->slot + i - 1] = attr_int(L, opname, key);
        lua_pop(L, 1);
      }
    }
    lua_pop(L, 1);
  }
}

static int n_op(lua_State *L)
{
  kr_ctx *ctx = lk_ctx(L);
  const char *name = luaL_checkstring(L, 1);
  int op = kr_op_lookup(name);
  if (op < 0) return luaL_error(L, "unknown op '%s'", name);
  luaL_checktype(L, 2, LUA_TTABLE);
  int nin = (int)luaL_len(L, 2);
  if (nin < 1 || nin > 256) return luaL_error(L, "%s: bad number of inputs (%d)", name, nin);
  kr_attr a;
  memset(&a, 0, sizeof a);
  if (lua_istable(L, 3)) read_attrs(L, 3, op, &a);
  kr_node *in[256];
  int base = lua_gettop(L);
  luaL_checkstack(L, nin + 4, "op");
  for (int i = 0; i < nin; i++) {
    lua_geti(L, 2, i + 1);
    in[i] = tonode(L, -1);
    lua_remove(L, -2);
  }
  kr_node *n = kr_node_op(ctx, op, nin, in, &a);
  if (!n) return lk_raise(L, ctx);
  lua_settop(L, base);
  lk_pushnode(L, n);
  return 1;
}

static int n_eval(lua_State *L)
{
  kr_ctx *ctx = lk_ctx(L);
  kr_node *n = tonode(L, 1);
  kr_tensor **slot = lk_newtensorslot(L);
  if (!(*slot = kr_eval(ctx, n))) return lk_raise(L, ctx);
  return 1;
}

static int n_gradients(lua_State *L)
{
  kr_ctx *ctx = lk_ctx(L);
  kr_node *loss = lk_checknode(L, 1);
  luaL_checktype(L, 2, LUA_TTABLE);
  int nv = (int)luaL_len(L, 2);
  if (nv < 0 || nv > 100000) return luaL_error(L, "gradients: bad variable list");
  kr_node **vars = lua_newuserdatauv(L, (size_t)(nv + 1) * sizeof *vars, 0);
  kr_node **grads = lua_newuserdatauv(L, (size_t)(nv + 1) * sizeof *grads, 0);
  for (int i = 0; i < nv; i++) {
    lua_geti(L, 2, i + 1);
    vars[i] = lk_checknode(L, -1);
    lua_pop(L, 1);
  }
  if (kr_gradients(ctx, loss, nv, vars, grads) != KR_OK) return lk_raise(L, ctx);
  lua_createtable(L, nv, 0);
  for (int i = 0; i < nv; i++) {
    lk_pushnode(L, grads[i]);
    lua_rawseti(L, -2, i + 1);
  }
  return 1;
}

static int n_index(lua_State *L)
{
  kr_node *n = lk_checknode(L, 1);
  if (lua_type(L, 2) == LUA_TNUMBER) {
    /* t[i]: methods.__geti(t, i) when the Lua side defines it (K.shape(x)[1]) */
    lua_getmetatable(L, 1);
    lua_getfield(L, -1, "methods");
    if (lua_getfield(L, -1, "__geti") != LUA_TFUNCTION) return 0;
    lua_pushvalue(L, 1);
    lua_pushvalue(L, 2);
    lua_call(L, 2, 1);
    return 1;
  }
  const char *k = lua_tostring(L, 2);
  if (k) {
    if (strcmp(k, "shape") == 0) {
      lk_pushshape(L, &n->shape);
      return 1;
    }
    if (strcmp(k, "ndim") == 0) {
      lua_pushinteger(L, n->shape.ndim);
      return 1;
    }
    if (strcmp(k, "op") == 0) {
      lua_pushstring(L, kr_op_name(n->op));
      return 1;
    }
    if (strcmp(k, "value") == 0) {
      if (!n->value) return 0;
      kr_tensor_retain(n->value);
      lk_pushtensor(L, n->value);
      return 1;
    }
    if (strcmp(k, "id") == 0) {
      lua_pushinteger(L, (lua_Integer)n->id);
      return 1;
    }
  }
  return lk_index_method(L);
}

/* the node's inputs, as nodes */
static int n_inputs(lua_State *L)
{
  kr_node *n = lk_checknode(L, 1);
  lua_createtable(L, n->nin, 0);
  for (int i = 0; i < n->nin; i++) {
    kr_node_retain(n->in[i]);
    lk_pushnode(L, n->in[i]);
    lua_rawseti(L, -2, i + 1);
  }
  return 1;
}

/* uservalue slot 1: a Lua table of annotations (Keras history) */
static int n_meta(lua_State *L)
{
  lk_checknode(L, 1);
  if (lua_getiuservalue(L, 1, 1) != LUA_TTABLE) {
    lua_pop(L, 1);
    lua_newtable(L);
    lua_pushvalue(L, -1);
    lua_setiuservalue(L, 1, 1);
  }
  return 1;
}

static int n_tostring(lua_State *L)
{
  kr_node *n = lk_checknode(L, 1);
  char b[160];
  lua_pushfstring(L, "<symbolic tensor %s shape=%s>", kr_op_name(n->op), kr_shape_str(&n->shape, b, sizeof b));
  return 1;
}

static int n_is(lua_State *L)
{
  lua_pushboolean(L, lk_testnode(L, 1) != NULL);
  return 1;
}

static const luaL_Reg n_meta_funcs[] = {
  {"__gc", n_gc},
  {"__index", n_index},
  {"__tostring", n_tostring},
  {NULL, NULL}
};

static const luaL_Reg n_methods[] = {
  {"inputs", n_inputs},
  {"meta", n_meta},
  {NULL, NULL}
};

static const luaL_Reg n_funcs[] = {
  {"input", n_input},
  {"const", n_const},
  {"variable", n_variable},
  {"op", n_op},
  {"eval", n_eval},
  {"gradients", n_gradients},
  {"is_node", n_is},
  {NULL, NULL}
};

static void pushnames(lua_State *L, const kr_namedint *names)
{
  lua_newtable(L);
  for (const kr_namedint *n = names; n->name; n++) {
    lua_pushinteger(L, (lua_Integer)n->value);
    lua_setfield(L, -2, n->name);
  }
}

int lk_open_graph(lua_State *L)
{
  lua_rawgetp(L, LUA_REGISTRYINDEX, &CACHE_KEY);
  if (lua_isnil(L, -1)) {
    lua_newtable(L);
    lua_newtable(L);
    lua_pushliteral(L, "v");
    lua_setfield(L, -2, "__mode");
    lua_setmetatable(L, -2);
    lua_rawsetp(L, LUA_REGISTRYINDEX, &CACHE_KEY);
  }
  lua_pop(L, 1);
  if (luaL_newmetatable(L, LK_NODE)) {
    luaL_setfuncs(L, n_meta_funcs, 0);
    lua_newtable(L);
    luaL_setfuncs(L, n_methods, 0);
    lua_setfield(L, -2, "methods");
  }
  lua_setfield(L, -2, "Node");
  luaL_setfuncs(L, n_funcs, 0);
  /* the codes of the rnn op's cells, flags and activations, by name */
  pushnames(L, kr_rnn_cell_names);
  lua_setfield(L, -2, "rnn_cells");
  pushnames(L, kr_rnn_flag_names);
  lua_setfield(L, -2, "rnn_flags");
  pushnames(L, kr_rnn_activation_names);
  lua_setfield(L, -2, "rnn_activations");
  return 0;
}
