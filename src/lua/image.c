/*
** image.c (binding) -- keras.preprocessing.image's C side:
**   t = core.image_read(path, channels[, height, width])   (h, w, c) floats 0..255
**   core.image_write(path, t, jpeg, quality)                t: (h, w, c), values truncated to 0..255
**   y = core.image_transform(x, params, fill, cval)         x: (n, h, w, c); params: n * 12 numbers
**   pc = core.image_zca(x, eps)                             x: (n, d); pc: (d, d)
** params per sample: a00 a01 b0 a10 a11 b1, affine (0/1), channel shift (nil
** as NaN), flip_h, flip_v, brightness (NaN: none), unused.
*/
#include "lk.h"
#include "../image.h"

#include <dirent.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

static int image_read(lua_State *L)
{
  kr_ctx *ctx = lk_ctx(L);
  const char *path = luaL_checkstring(L, 1);
  int c = (int)luaL_checkinteger(L, 2);
  lua_Integer th = luaL_optinteger(L, 3, 0), tw = luaL_optinteger(L, 4, 0);
  kr_image img, rs;
  if (kr_image_read(ctx, path, c, &img) != KR_OK) return lk_raise(L, ctx);
  if (th > 0 && tw > 0 && (th != img.h || tw != img.w)) {
    if (th > INT32_MAX || tw > INT32_MAX) {
      free(img.px);
      return luaL_error(L, "load_img: target_size too large");
    }
    int rc = kr_image_resize_nearest(ctx, &img, (int)th, (int)tw, &rs);
    free(img.px);
    if (rc != KR_OK) return lk_raise(L, ctx);
    img = rs;
  }
  kr_shape s = {3, {img.h, img.w, img.c}};
  kr_tensor *t = kr_tensor_new(ctx, &s);
  if (!t) {
    free(img.px);
    return lk_raise(L, ctx);
  }
  float *d = KR_DATA(t);
  size_t n = (size_t)img.h * img.w * img.c;
  for (size_t i = 0; i < n; i++) d[i] = (float)img.px[i];
  free(img.px);
  lk_pushtensor(L, t);
  return 1;
}

static int image_write(lua_State *L)
{
  kr_ctx *ctx = lk_ctx(L);
  const char *path = luaL_checkstring(L, 1);
  kr_tensor *t = lk_checktensor(L, 2);
  int jpeg = lua_toboolean(L, 3);
  int quality = (int)luaL_optinteger(L, 4, 75);
  if (t->shape.ndim != 3 || t->shape.dim[0] < 1 || t->shape.dim[1] < 1 ||
      t->shape.dim[0] * t->shape.dim[1] > KR_IMAGE_MAX_PIXELS)
    return luaL_error(L, "save_img: expected an image of shape (height, width, channels)");
  kr_image img = {(int)t->shape.dim[0], (int)t->shape.dim[1], (int)t->shape.dim[2], NULL};
  size_t n = (size_t)img.h * img.w * (size_t)t->shape.dim[2];
  img.px = malloc(n ? n : 1);
  if (!img.px) return luaL_error(L, "save_img: out of memory");
  const float *d = KR_DATA(t);
  for (size_t i = 0; i < n; i++) {
    float v = d[i];
    img.px[i] = (unsigned char)(v >= 255.0f ? 255 : v > 0.0f ? (int)v : 0);
  }
  int rc = kr_image_write(ctx, path, &img, jpeg, quality);
  free(img.px);
  if (rc != KR_OK) return lk_raise(L, ctx);
  return 0;
}

static double num_at(lua_State *L, int idx, lua_Integer i)
{
  lua_rawgeti(L, idx, i);
  double v = lua_isnumber(L, -1) ? lua_tonumber(L, -1) : NAN;
  lua_pop(L, 1);
  return v;
}

void lk_image_params(lua_State *L, int idx, int64_t n, kr_image_params *p)
{
  for (int64_t i = 0; i < n; i++) {
    lua_Integer b = i * 12;
    for (int k = 0; k < 6; k++) p[i].a[k] = num_at(L, idx, b + k + 1);
    p[i].affine = num_at(L, idx, b + 7) != 0;
    double sh = num_at(L, idx, b + 8), br = num_at(L, idx, b + 11);
    p[i].has_shift = !isnan(sh);
    p[i].shift = p[i].has_shift ? sh : 0;
    p[i].flip_h = num_at(L, idx, b + 9) != 0;
    p[i].flip_v = num_at(L, idx, b + 10) != 0;
    p[i].has_brightness = !isnan(br);
    p[i].brightness = p[i].has_brightness ? br : 1;
  }
}

static int image_transform(lua_State *L)
{
  kr_ctx *ctx = lk_ctx(L);
  kr_tensor *x = lk_checktensor(L, 1);
  luaL_checktype(L, 2, LUA_TTABLE);
  int fill = (int)luaL_checkinteger(L, 3);
  double cval = luaL_checknumber(L, 4);
  if (x->shape.ndim != 4)
    return luaL_error(L, "apply_transform: expected images of shape (n, height, width, channels)");
  int64_t n = x->shape.dim[0];
  if (luaL_len(L, 2) != n * 12) return luaL_error(L, "apply_transform: expected 12 parameters per image");
  kr_image_params *p = lua_newuserdatauv(L, sizeof *p * (size_t)(n ? n : 1), 0);
  lk_image_params(L, 2, n, p);
  kr_tensor *y = kr_tensor_new(ctx, &x->shape);
  if (!y) return lk_raise(L, ctx);
  lk_pushtensor(L, y);
  if (kr_image_transform(ctx, KR_DATA(x), KR_DATA(y), n, x->shape.dim[1], x->shape.dim[2],
                         x->shape.dim[3], p, fill, cval) != KR_OK)
    return lk_raise(L, ctx);
  return 1;
}

/* names, kinds = core.list_dir(path): the entries but . and .., kinds[i]
** "dir" or "file" (links followed) */
static int list_dir(lua_State *L)
{
  const char *path = luaL_checkstring(L, 1);
  DIR *d = opendir(path);
  if (!d) return luaL_error(L, "flow_from_directory: cannot read the directory %s", path);
  lua_newtable(L);
  lua_newtable(L);
  lua_Integer n = 0;
  struct dirent *e;
  luaL_Buffer b;
  while ((e = readdir(d)) != NULL) {
    if (strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0) continue;
    luaL_buffinit(L, &b);
    luaL_addstring(&b, path);
    luaL_addchar(&b, '/');
    luaL_addstring(&b, e->d_name);
    luaL_pushresult(&b);
    struct stat st;
    int isdir = stat(lua_tostring(L, -1), &st) == 0 && S_ISDIR(st.st_mode);
    lua_pop(L, 1);
    n++;
    lua_pushstring(L, e->d_name);
    lua_rawseti(L, -3, n);
    lua_pushstring(L, isdir ? "dir" : "file");
    lua_rawseti(L, -2, n);
  }
  closedir(d);
  return 2;
}

/* y = core.image_quantize(x): PIL's uint8 values (truncated, clipped to 0..255) */
static int image_quantize(lua_State *L)
{
  kr_ctx *ctx = lk_ctx(L);
  kr_tensor *x = lk_checktensor(L, 1);
  kr_tensor *y = kr_tensor_new(ctx, &x->shape);
  if (!y) return lk_raise(L, ctx);
  const float *a = KR_DATA(x);
  float *b = KR_DATA(y);
  int64_t n = kr_tensor_numel(x);
  for (int64_t i = 0; i < n; i++) b[i] = a[i] >= 255.0f ? 255.0f : a[i] > 0.0f ? floorf(a[i]) : 0.0f;
  lk_pushtensor(L, y);
  return 1;
}

/* pc = core.image_zca(x, eps): x (n, d) -> ZCA whitening's (d, d) matrix */
static int image_zca(lua_State *L)
{
  kr_ctx *ctx = lk_ctx(L);
  kr_tensor *x = lk_checktensor(L, 1);
  double eps = luaL_checknumber(L, 2);
  if (x->shape.ndim != 2) return luaL_error(L, "fit: zca_whitening: expected samples of shape (n, features)");
  kr_shape s = {2, {x->shape.dim[1], x->shape.dim[1]}};
  if (s.dim[0] < 1 || s.dim[0] > 16384)
    return luaL_error(L, "fit: zca_whitening needs 1 to 16384 features per sample, got %I", (lua_Integer)s.dim[0]);
  kr_tensor *pc = kr_tensor_new(ctx, &s);
  if (!pc) return lk_raise(L, ctx);
  lk_pushtensor(L, pc);
  if (kr_image_zca(ctx, KR_DATA(x), x->shape.dim[0], x->shape.dim[1], eps, KR_DATA(pc)) != KR_OK)
    return lk_raise(L, ctx);
  return 1;
}

static const luaL_Reg funcs[] = {
  {"image_zca", image_zca},
  {"image_quantize", image_quantize},
  {"list_dir", list_dir},
  {"image_read", image_read},
  {"image_write", image_write},
  {"image_transform", image_transform},
  {NULL, NULL}
};

int lk_open_image(lua_State *L)
{
  luaL_setfuncs(L, funcs, 0);
  return 0;
}
