/*
** bridge.h -- the game's data path to lkeras models, shaped like the C API of
** API.md section 15 (lk_model_get, lk_predict, lk_train_on_batch,
** lk_get_weights/lk_set_weights). This version goes through the Lua-side
** predict_on_batch/train_on_batch, with one input tensor per row count reused
** across calls; the game calls only these functions.
*/
#ifndef GAME_BRIDGE_H
#define GAME_BRIDGE_H

#include <stddef.h>
#include <stdint.h>

#include <lua.h>

typedef struct gm_model gm_model;

/* pins the model at stack index idx; NULL (message at the top of the stack) on error */
gm_model *gm_model_get(lua_State *L, int idx);
void gm_model_release(gm_model *m);
/* per-sample sizes of a model with one input and one output */
int gm_model_io(gm_model *m, int64_t *in_features, int64_t *out_features);
/* row-major float buffers; 0 on success, else gm_errmsg(m) says why */
int gm_predict(gm_model *m, const float *x, int64_t rows, float *y);
int gm_train_on_batch(gm_model *m, const float *x, const float *y, int64_t rows, float *loss);
/* all weights, get_weights order, flat */
int gm_get_weights(gm_model *m, float *buf, size_t cap, size_t *count);
int gm_set_weights(gm_model *m, const float *buf, size_t count);
const char *gm_errmsg(gm_model *m);

#endif
