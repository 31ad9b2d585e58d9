/*
** lkeras.h -- the public header for programs that embed lkeras (API.md 15).
**
** A host program opens the library in a Lua 5.4 state, builds or loads a
** model from Lua code, then moves data between its own float buffers and the
** model with the lk_* functions below, without Lua tables: after the first
** call for a given row count, lk_predict and lk_train_on_batch allocate
** nothing and leave no Lua garbage (the model's compiled plans run directly).
**
** A complete example (cc game.c $(pkg-config --cflags --libs lkeras)):
**
**   #include <stdio.h>
**   #include <lauxlib.h>
**   #include <lualib.h>
**   #include <lkeras.h>
**
**   int main(void)
**   {
**     lua_State *L = luaL_newstate();          (or lua_newstate(my_alloc, ud): the
**     luaL_openlibs(L);                         engine's memory then comes from it too)
**     luaL_requiref(L, "keras", luaopen_keras, 1);
**     lua_pop(L, 1);
**     if (luaL_dostring(L,
**           "local m = keras.Sequential{keras.layers.Dense{64, input_shape = {4}, activation = 'relu'},"
**           "                           keras.layers.Dense{2}}\n"
**           "m:compile{optimizer = 'adam', loss = 'mse'}\n"
**           "return m") != LUA_OK) {
**       fprintf(stderr, "%s\n", lua_tostring(L, -1));
**       return 1;
**     }
**     lk_model *m = lk_model_get(L, -1);       (pinned: the model lives while the handle does)
**     lua_pop(L, 1);
**     if (!m) { fprintf(stderr, "%s\n", lk_errmsg(L)); return 1; }
**     int64_t nin, nout;
**     lk_model_io(m, &nin, &nout);             (4 and 2)
**     float x[4] = {0.1f, 0.2f, 0.3f, 0.4f}, y[2], target[2] = {1, 0}, loss;
**     for (int step = 0; step < 100; step++)
**       if (lk_train_on_batch(m, x, target, 1, &loss) != LK_OK) { fprintf(stderr, "%s\n", lk_errmsg(L)); break; }
**     if (lk_predict(m, x, 1, y) != LK_OK) fprintf(stderr, "%s\n", lk_errmsg(L));
**     printf("loss %g, y = %g %g\n", loss, y[0], y[1]);
**     lk_model_release(m);                     (before lua_close)
**     lua_close(L);
**     return 0;
**   }
**
** Without pkg-config: -llkeras -llua5.4 -lopenblas -lz -lm -lpthread -ldl, plus
** -lhdf5_serial -lpng -ljpeg for a static link of a build with HDF5 and images
** (pkg-config --static --libs lkeras says exactly what the build needs).
**
** Errors. Every function that can fail returns LK_OK (0) or an error code;
** lk_errmsg(L) then gives the message (it names the function and says what
** was expected and what was got). No function here raises a Lua error or
** leaves values on the Lua stack, except lk_push_tensor's one result. A NULL
** handle returns LK_EARG (there is no state to hold a message).
**
** Thread rules. A lua_State and everything made in it (handles, tensors,
** buffers returned by lk_tensor_data) belong to one thread at a time: calls
** for one state must not overlap. Different states may run on different
** threads at once, each with its own engine context (allocator, memory
** limit, random generator, errors). lk_set_num_threads sets the engine's
** thread count for the state; the kernels' worker pool and OpenBLAS's thread
** count are process-wide, shared by all states (their results do not depend
** on which state runs when).
**
** Lifetime rules. lk_model_get pins the model with a registry reference: it
** lives while the handle does, even when Lua drops it. lk_model_release
** unpins it (the model then lives on while Lua holds it) and frees the
** handle. Release every handle before lua_close: a handle used after its
** state is closed is undefined behaviour by contract; this implementation
** detects it and returns LK_ECLOSED (and says so on stderr in debug builds,
** -DKR_DEBUG), and lk_model_release then only frees the handle, with the
** state's allocator, which must still be usable. lk_tensor_data's pointer is
** borrowed from the tensor: valid while the tensor lives (keep it on the
** stack or referenced from Lua).
**
** Memory. The engine allocates through the state's allocator (lua_getallocf,
** the function given to lua_newstate), so a host that budgets memory in its
** allocator sees the engine's too. lk_set_memory_limit caps the bytes the
** engine holds at once in this state; an allocation past it fails with an
** error naming the limit (the Lua side: keras.backend.set_memory_limit).
*/
#ifndef LKERAS_H
#define LKERAS_H

#include <stddef.h>
#include <stdint.h>
#include <lua.h>

#ifdef __cplusplus
extern "C" {
#endif

#define LK_VERSION_MAJOR 0
#define LK_VERSION_MINOR 1
#define LK_MAX_DIMS 8          /* the most axes a tensor has (lk_tensor_data's shape buffer) */

enum {
  LK_OK = 0,
  LK_ESHAPE = 1,   /* shapes do not fit */
  LK_EARG = 2,     /* a bad argument: NULL buffer, wrong row count, unsuitable model */
  LK_EMEM = 3,     /* out of memory, or the memory limit (lk_set_memory_limit) reached */
  LK_EIO = 4,
  LK_EFORMAT = 5,
  LK_EVALUE = 6,   /* a bad data value */
  LK_ESTOP = 7,
  LK_ELUA = 100,   /* an error raised by Lua code (e.g. while compiling a plan): see lk_errmsg */
  LK_ECLOSED = 101 /* the handle's lua_State has been closed */
};

int luaopen_keras(lua_State *L);

typedef struct lk_model lk_model;

/* pins the model at stack index idx (NULL on error, with lk_errmsg(L) set) */
lk_model *lk_model_get(lua_State *L, int idx);
/* unpins; the model lives on while Lua holds it. NULL is ignored */
void lk_model_release(lk_model *m);
/* per-sample float counts of a model with one input and one output (the
** product of the input's and the output's shapes after the batch axis) */
int lk_model_io(lk_model *m, int64_t *in_features, int64_t *out_features);
/* y (rows x out_features) = the model on x (rows x in_features), row-major,
** in inference mode (model:predict_on_batch). No allocation, no Lua garbage
** after the first call for a given rows (a plan for N rows runs any rows <= N).
** Fails on NULL buffers, rows < 1, a fixed batch size other than rows, a
** model with several inputs or outputs or a None length, NaN or Inf in x. */
int lk_predict(lk_model *m, const float *x, int64_t rows, float *y);
/* one training step (model:train_on_batch, unit sample weights) on x (rows x
** in_features) and y (rows x the target's per-sample size, out_features for
** the usual losses; for sparse_categorical_crossentropy, 1: the class as a
** float); *loss (may be NULL) gets the batch's total loss. The model must be
** compiled. No allocation, no Lua garbage after the first call for a rows. */
int lk_train_on_batch(lk_model *m, const float *x, const float *y, int64_t rows, float *loss);
/* all weights in model:get_weights() order, flattened, into buf (cap floats);
** *count gets the total. buf NULL with cap 0 only asks for the count */
int lk_get_weights(lk_model *m, float *buf, size_t cap, size_t *count);
/* all weights from buf (count floats, exactly the total, get_weights order) */
int lk_set_weights(lk_model *m, const float *buf, size_t count);
/* pushes a keras tensor with a copy of data (shape[0..ndim), ndim <= LK_MAX_DIMS) */
int lk_push_tensor(lua_State *L, const float *data, int ndim, const int64_t *shape);
/* the data of the keras tensor at idx (borrowed, row-major, contiguous);
** *ndim and shape[0..*ndim) (room for LK_MAX_DIMS) when not NULL. NULL, with
** lk_errmsg set, when the value is not a tensor */
float *lk_tensor_data(lua_State *L, int idx, int *ndim, int64_t *shape);
/* the engine's thread count for this state's work (keras.set_num_threads) */
int lk_set_num_threads(lua_State *L, int n);
/* engine allocations past `bytes` held at once fail with an error naming the
** limit; 0 removes the limit (the default) */
int lk_set_memory_limit(lua_State *L, size_t bytes);
/* the engine's bytes in use and its allocations so far in this state */
size_t lk_memory_in_use(lua_State *L);
uint64_t lk_memory_allocs(lua_State *L);
/* the message of the last error in this state */
const char *lk_errmsg(lua_State *L);

#ifdef __cplusplus
}
#endif

#endif
