/*
** image_async.c (binding) -- an ImageDataGenerator batch made on a worker
** thread while the current batch trains (image.lua's iterators give it to
** generators.lua as their _prefetch):
**   job = core.image_batch_async{src = x, rows = {r1, ...}, params = p, fill = f, cval = v}
**   job = core.image_batch_async{files = {path1, ...}, channels = c, height = h, width = w,
**                                params = p, fill = f, cval = v}
**   y = job:wait()
** The first form takes rows (1-based) of x (samples, h, w, c); the second
** reads PNG or JPEG files into c channels, resized (nearest) to h x w, as
** core.image_read does. params (optional): 12 numbers per sample, as
** core.image_transform takes them; each sample is then transformed. wait()
** returns the (n, h, w, c) batch, or raises the error the worker met (a file
** missing, truncated or not an image).
**
** The worker has its own kr_ctx (its error message; one thread: the engine's
** pool belongs to the training step it overlaps), reads only the source
** tensor and the job's own arrays, and writes only the output tensor, so it
** runs beside Lua and the engine without locks. The job holds references to
** its source and output; wait and __gc join the worker first, so a job dropped
** mid-flight never leaves a thread writing into freed memory.
*/
#include "lk.h"
#include "../image.h"

#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#define LK_IMAGE_JOB "keras.ImageBatchJob"

typedef struct img_job {
  pthread_t thread;
  int running;               /* a worker runs: join before reading anything it writes */
  int rc;                    /* the worker's result (KR_OK or its error code) */
  kr_ctx *wctx;              /* the worker's context */
  kr_tensor *src, *out;      /* held references */
  int64_t n, h, w, c;
  int64_t *rows;             /* n 0-based rows of src, or NULL */
  char **files;              /* n paths, or NULL */
  kr_image_params *p;        /* n transforms, or NULL */
  float *scratch;            /* one decoded image (files with params) */
  int fill;
  double cval;
} img_job;

/* one file into dst: decoded, resized to h x w, as floats 0..255 */
static int read_file(img_job *j, const char *path, float *dst)
{
  kr_image img, rs;
  if (kr_image_read(j->wctx, path, (int)j->c, &img) != KR_OK) return kr_errcode(j->wctx);
  if (img.h != j->h || img.w != j->w) {
    int rc = kr_image_resize_nearest(j->wctx, &img, (int)j->h, (int)j->w, &rs);
    free(img.px);
    if (rc != KR_OK) return rc;
    img = rs;
  }
  size_t n = (size_t)(j->h * j->w * j->c);
  for (size_t i = 0; i < n; i++) dst[i] = (float)img.px[i];
  free(img.px);
  return KR_OK;
}

static int run(img_job *j)
{
  int64_t size = j->h * j->w * j->c;
  float *y = KR_DATA(j->out);
  for (int64_t k = 0; k < j->n; k++) {
    float *yk = y + k * size;
    const float *x;
    if (j->src) {
      x = KR_DATA(j->src) + j->rows[k] * size;
    } else {
      float *dst = j->p ? j->scratch : yk;
      int rc = read_file(j, j->files[k], dst);
      if (rc != KR_OK) return rc;
      x = dst;
    }
    if (j->p) {
      int rc = kr_image_transform(j->wctx, x, yk, 1, j->h, j->w, j->c, &j->p[k], j->fill, j->cval);
      if (rc != KR_OK) return rc;
    } else if (x != yk) {
      memcpy(yk, x, (size_t)size * sizeof *yk);
    }
  }
  return KR_OK;
}

static void *worker(void *arg)
{
  img_job *j = arg;
  j->rc = run(j);
  return NULL;
}

static void join(img_job *j)
{
  if (!j->running) return;
  pthread_join(j->thread, NULL);
  j->running = 0;
}

static int job_gc(lua_State *L)
{
  img_job *j = luaL_checkudata(L, 1, LK_IMAGE_JOB);
  join(j);
  if (j->src) kr_tensor_release(j->src);
  if (j->out) kr_tensor_release(j->out);
  if (j->files) {
    for (int64_t k = 0; k < j->n; k++) free(j->files[k]);
    free(j->files);
  }
  free(j->rows);
  free(j->p);
  free(j->scratch);
  if (j->wctx) kr_ctx_free(j->wctx);
  memset(j, 0, sizeof *j);
  return 0;
}

static int job_wait(lua_State *L)
{
  img_job *j = luaL_checkudata(L, 1, LK_IMAGE_JOB);
  join(j);
  if (!j->out) return luaL_error(L, "image_batch_async: this job has been freed");
  if (j->rc != KR_OK) return luaL_error(L, "%s", kr_errmsg(j->wctx));
  kr_tensor_retain(j->out);
  lk_pushtensor(L, j->out);
  return 1;
}

static int64_t int_field(lua_State *L, const char *k, int64_t lo, int64_t hi)
{
  lua_getfield(L, 1, k);
  int ok;
  lua_Integer v = lua_tointegerx(L, -1, &ok);
  lua_pop(L, 1);
  if (!ok || v < lo || v > hi)
    return luaL_error(L, "image_batch_async: %s must be an integer in %I..%I", k, (lua_Integer)lo, (lua_Integer)hi);
  return (int64_t)v;
}

/* the params field (12 numbers per sample, image_transform's layout), or none */
static void read_params(lua_State *L, img_job *j)
{
  lua_getfield(L, 1, "params");
  if (lua_isnil(L, -1)) {
    lua_pop(L, 1);
    return;
  }
  luaL_checktype(L, -1, LUA_TTABLE);
  int t = lua_gettop(L);
  if ((int64_t)luaL_len(L, t) != j->n * 12)
    luaL_error(L, "image_batch_async: expected 12 parameters per image (%I images)", (lua_Integer)j->n);
  j->fill = (int)int_field(L, "fill", KR_FILL_CONSTANT, KR_FILL_WRAP);
  lua_getfield(L, 1, "cval");
  j->cval = luaL_optnumber(L, -1, 0.0);
  lua_pop(L, 1);
  if (!(j->p = calloc((size_t)(j->n ? j->n : 1), sizeof *j->p))) luaL_error(L, "image_batch_async: out of memory");
  lk_image_params(L, t, j->n, j->p);
  lua_pop(L, 1);
}

static void from_rows(lua_State *L, img_job *j)
{
  kr_tensor *src = lk_checktensor(L, -1);
  if (src->shape.ndim != 4)
    luaL_error(L, "image_batch_async: src must have shape (samples, height, width, channels)");
  kr_tensor_retain(src);
  j->src = src;
  j->h = src->shape.dim[1], j->w = src->shape.dim[2], j->c = src->shape.dim[3];
  lua_getfield(L, 1, "rows");
  luaL_checktype(L, -1, LUA_TTABLE);
  j->n = (int64_t)luaL_len(L, -1);
  if (!(j->rows = malloc((size_t)(j->n ? j->n : 1) * sizeof *j->rows)))
    luaL_error(L, "image_batch_async: out of memory");
  for (int64_t k = 0; k < j->n; k++) {
    lua_geti(L, -1, (lua_Integer)k + 1);
    int ok;
    lua_Integer r = lua_tointegerx(L, -1, &ok);
    if (!ok || r < 1 || r > src->shape.dim[0])
      luaL_error(L, "image_batch_async: row %I is not a row number in 1..%I", (lua_Integer)k + 1,
                 (lua_Integer)src->shape.dim[0]);
    j->rows[k] = (int64_t)r - 1;
    lua_pop(L, 1);
  }
  lua_pop(L, 1);
}

static void from_files(lua_State *L, img_job *j)
{
  luaL_checktype(L, -1, LUA_TTABLE);
  j->c = int_field(L, "channels", 1, 4);
  if (j->c == 2) luaL_error(L, "image_batch_async: channels must be 1, 3 or 4");
  j->h = int_field(L, "height", 1, INT32_MAX);
  j->w = int_field(L, "width", 1, INT32_MAX);
  if (j->h * j->w > KR_IMAGE_MAX_PIXELS) luaL_error(L, "image_batch_async: height x width is too large");
  j->n = (int64_t)luaL_len(L, -1);
  if (!(j->files = calloc((size_t)(j->n ? j->n : 1), sizeof *j->files)))
    luaL_error(L, "image_batch_async: out of memory");
  int64_t n = j->n;
  j->n = 0;   /* counts the paths made, for __gc */
  for (int64_t k = 0; k < n; k++) {
    lua_geti(L, -1, (lua_Integer)k + 1);
    const char *s = lua_tostring(L, -1);
    if (!s || lua_type(L, -1) != LUA_TSTRING)
      luaL_error(L, "image_batch_async: file %I is not a string", (lua_Integer)k + 1);
    if (!(j->files[k] = strdup(s))) luaL_error(L, "image_batch_async: out of memory");
    j->n = k + 1;
    lua_pop(L, 1);
  }
  j->n = n;
}

static int image_batch_async(lua_State *L)
{
  kr_ctx *ctx = lk_ctx(L);
  luaL_checktype(L, 1, LUA_TTABLE);
  lua_settop(L, 1);
  /* the job exists (and will be collected) before anything it owns */
  img_job *j = lua_newuserdatauv(L, sizeof *j, 0);
  memset(j, 0, sizeof *j);
  luaL_setmetatable(L, LK_IMAGE_JOB);
  lua_getfield(L, 1, "src");
  int has_src = !lua_isnil(L, -1);
  if (has_src) {
    from_rows(L, j);
    lua_pop(L, 1);
  } else {
    lua_pop(L, 1);
    lua_getfield(L, 1, "files");
    if (lua_isnil(L, -1)) return luaL_error(L, "image_batch_async: give src and rows, or files");
    from_files(L, j);
    lua_pop(L, 1);
  }
  read_params(L, j);
  if (!(j->wctx = kr_ctx_new())) return luaL_error(L, "image_batch_async: out of memory");
  kr_set_num_threads(j->wctx, 1);
  if (!has_src && j->p && !(j->scratch = malloc((size_t)(j->h * j->w * j->c) * sizeof *j->scratch)))
    return luaL_error(L, "image_batch_async: out of memory");
  kr_shape s = {4, {j->n, j->h, j->w, j->c}};
  if (!(j->out = kr_tensor_new(ctx, &s))) return lk_raise(L, ctx);
  if (pthread_create(&j->thread, NULL, worker, j) == 0) j->running = 1;
  else j->rc = run(j);   /* no thread to be had: made now */
  return 1;
}

static const luaL_Reg job_methods[] = {
  {"wait", job_wait},
  {"free", job_gc},
  {NULL, NULL}
};

static const luaL_Reg funcs[] = {
  {"image_batch_async", image_batch_async},
  {NULL, NULL}
};

int lk_open_image_async(lua_State *L)
{
  lk_new_class(L, LK_IMAGE_JOB, job_methods, job_gc, job_gc);
  luaL_setfuncs(L, funcs, 0);
  return 0;
}
