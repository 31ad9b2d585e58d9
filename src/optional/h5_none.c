/*
** h5_none.c -- the HDF5 half of the model-file API (src/io/model_file.h) in a
** build without libhdf5 (make HDF5=0, replacing src/io/h5.c): opening or
** creating a .h5 file fails with a clear error; nothing else can be reached,
** since no kr_h5 handle ever exists.
*/
#include "../kr.h"
#include "../io/model_file.h"

#define NO_HDF5 "this lkeras was built without HDF5 (make HDF5=0): .h5 files need a build with libhdf5"

kr_h5 *kr_h5_create(kr_ctx *ctx, const char *path)
{
  kr_fail(ctx, KR_EIO, "'%s': %s", path, NO_HDF5);
  return NULL;
}

kr_h5 *kr_h5_open(kr_ctx *ctx, const char *path)
{
  kr_fail(ctx, KR_EIO, "'%s': %s", path, NO_HDF5);
  return NULL;
}

int kr_h5_commit(kr_h5 *h) { (void)h; return KR_EIO; }
void kr_h5_free(kr_h5 *h) { (void)h; }
int kr_h5_exists(kr_h5 *h, const char *path) { (void)h; (void)path; return 0; }

int kr_h5_set_attr_string(kr_h5 *h, const char *group, const char *name, const char *s, size_t len)
{
  (void)h; (void)group; (void)name; (void)s; (void)len;
  return KR_EIO;
}

int kr_h5_set_attr_strings(kr_h5 *h, const char *group, const char *name, int n, const char *const *s)
{
  (void)h; (void)group; (void)name; (void)n; (void)s;
  return KR_EIO;
}

int kr_h5_set_attr_number(kr_h5 *h, const char *group, const char *name, double v)
{
  (void)h; (void)group; (void)name; (void)v;
  return KR_EIO;
}

int kr_h5_get_attr(kr_h5 *h, const char *group, const char *name, kr_h5_attr *a)
{
  (void)h; (void)group; (void)name;
  a->kind = KR_H5_NONE;
  a->n = 0;
  a->s = NULL;
  a->len = NULL;
  a->v = NULL;
  return KR_EIO;
}

void kr_h5_attr_free(kr_ctx *ctx, kr_h5_attr *a)
{
  if (!a) return;
  for (int i = 0; a->s && i < a->n; i++) kr_free(ctx, a->s[i]);
  kr_free(ctx, a->s);
  kr_free(ctx, a->len);
  kr_free(ctx, a->v);
  a->s = NULL;
  a->len = NULL;
  a->v = NULL;
  a->n = 0;
  a->kind = KR_H5_NONE;
}

int kr_h5_write_tensor(kr_h5 *h, const char *path, const kr_tensor *t)
{
  (void)h; (void)path; (void)t;
  return KR_EIO;
}

int kr_h5_write_int(kr_h5 *h, const char *path, int64_t v)
{
  (void)h; (void)path; (void)v;
  return KR_EIO;
}

kr_tensor *kr_h5_read_tensor(kr_h5 *h, const char *path)
{
  (void)h; (void)path;
  return NULL;
}

int kr_h5_read_number(kr_h5 *h, const char *path, double *v)
{
  (void)h; (void)path; (void)v;
  return KR_EIO;
}
