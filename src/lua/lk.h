/*
** lk.h -- helpers shared by the binding files (src/lua/): the context of
** a lua_State, raising engine errors, checking tensors, nodes and shapes.
** The binding checks arguments, calls one engine function and pushes the
** result; it does no math.
*/
#ifndef LK_H
#define LK_H

#include <lua.h>
#include <lauxlib.h>

#include "../kr.h"

#define LK_TENSOR "keras.Tensor"
#define LK_NODE "keras.Node"
#define LK_TRAINER "keras.Trainer"
#define LK_OPTIM "keras.Optimizer"

kr_ctx *lk_ctx(lua_State *L);
/* Tells Lua's collector about the engine memory allocated since the last
** call (the context's bytes in use that it has not yet been told of), as if
** Lua had allocated it: garbage tensors are then collected in proportion to
** their size. Called where a tensor or node userdata is made. */
void lk_gc_account(lua_State *L);
/* the same without raising: NULL when keras is not opened in L (or L is closing) */
kr_ctx *lk_ctx_or_null(lua_State *L);
int lk_raise(lua_State *L, kr_ctx *ctx);
/* the end of an __index(obj, key) of userdata: pushes methods[key], methods
** being the "methods" table of obj's metatable; returns 1 */
int lk_index_method(lua_State *L);
/* the metatable `name` (made once): methods as __index, gc as __gc and
** close as __close (NULL: none; usually gc too, a handle freed by the
** collector, by a to-be-closed variable or by its free method); leaves the
** stack as it was */
void lk_new_class(lua_State *L, const char *name, const luaL_Reg *methods, lua_CFunction gc, lua_CFunction close);

/* tensors */
kr_tensor **lk_newtensorslot(lua_State *L);           /* userdata with *slot = NULL */
void lk_pushtensor(lua_State *L, kr_tensor *t);       /* takes the reference */
kr_tensor *lk_checktensor(lua_State *L, int idx);
kr_tensor *lk_testtensor(lua_State *L, int idx);
/* a tensor, a number or a nested table of numbers; the result is on the stack
** at the top (a new userdata when converted) and returned */
kr_tensor *lk_totensor(lua_State *L, int idx);
/* a sequence of sizes; allow_batch: -1 allowed as the first size; 2: also
** -1 (KR_NONE, a None length) as any later size (symbolic shapes) */
void lk_checkshape(lua_State *L, int idx, kr_shape *s, int allow_batch);
void lk_pushshape(lua_State *L, const kr_shape *s);   /* -1 stays -1; Lua maps it to None */

/* nodes */
void lk_pushnode(lua_State *L, kr_node *n);           /* takes the reference */
kr_node *lk_checknode(lua_State *L, int idx);
kr_node *lk_testnode(lua_State *L, int idx);

/* trainers: the engine's trainer of a keras.Trainer, NULL if not one */
kr_trainer *lk_totrainer(lua_State *L, int idx);

int lk_open_tensor(lua_State *L);   /* each adds its functions to the table on top */
int lk_open_graph(lua_State *L);
int lk_open_train(lua_State *L);
int lk_open_saving(lua_State *L);
int lk_open_prefetch(lua_State *L);
int lk_open_function(lua_State *L);
int lk_open_image(lua_State *L);
int lk_open_image_async(lua_State *L);
/* n samples' transforms from the flat list at idx (12 numbers each, image.c's
** core.image_transform layout) into p */
struct kr_image_params;
void lk_image_params(lua_State *L, int idx, int64_t n, struct kr_image_params *p);
int lk_open_dist(lua_State *L);
struct kr_dist;
struct kr_dist *lk_checkdist(lua_State *L, int idx);   /* a keras.Dist (dist.c) */

#endif
