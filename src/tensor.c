/*
** tensor.c -- float32 tensors: storage, shapes, views of leading-axis rows.
** Tensors are always contiguous and row-major; a view is a storage plus an
** offset. Knows nothing of Lua (the binding is src/lua/tensor.c).
** Ownership: kr_tensor_new* and the view functions give the caller one
** reference; give it back with kr_tensor_release.
*/
#include "kr.h"
#include "ctx_impl.h"
#include "ops.h"

#include <math.h>
#include <string.h>

static int check_shape(kr_ctx *ctx, const kr_shape *shape, size_t *n)
{
  if (shape->ndim < 0 || shape->ndim > KR_MAX_DIMS)
    return kr_fail(ctx, KR_EARG, "tensor: rank must be 0..%d, got %d", KR_MAX_DIMS, shape->ndim);
  for (int i = 0; i < shape->ndim; i++) {
    int64_t d = shape->dim[i];
    if (d < 0)
      return kr_fail(ctx, KR_EARG, "tensor: dimension %d must be >= 0, got %lld", i + 1, (long long)d);
  }
  uint64_t total;
  if (kr_shape_numel_checked(shape, &total) != KR_OK || total > ((uint64_t)1 << 40))
    return kr_fail(ctx, KR_EMEM, "tensor: shape too large");
  *n = (size_t)total;
  return KR_OK;
}

kr_tensor *kr_tensor_new(kr_ctx *ctx, const kr_shape *shape)
{
  size_t n;
  if (check_shape(ctx, shape, &n) != KR_OK) return NULL;
  kr_tensor *t = kr_malloc(ctx, sizeof *t);
  if (!t) return NULL;
  kr_storage *st = kr_malloc(ctx, sizeof *st);
  if (!st) {
    kr_free(ctx, t);
    return NULL;
  }
  st->data = kr_malloc(ctx, (n ? n : 1) * sizeof(float));
  if (!st->data) {
    kr_free(ctx, st);
    kr_free(ctx, t);
    return NULL;
  }
  st->refs = 1;
  st->ctx = ctx;
  st->n = n;
  st->version = 0;
  t->refs = 1;
  t->st = st;
  t->offset = 0;
  t->shape = *shape;
  for (int i = shape->ndim; i < KR_MAX_DIMS; i++) t->shape.dim[i] = 0;
  return t;
}

kr_tensor *kr_tensor_zeros(kr_ctx *ctx, const kr_shape *shape)
{
  kr_tensor *t = kr_tensor_new(ctx, shape);
  if (t) memset(KR_DATA(t), 0, (size_t)kr_tensor_numel(t) * sizeof(float));
  return t;
}

kr_tensor *kr_tensor_full(kr_ctx *ctx, const kr_shape *shape, float v)
{
  kr_tensor *t = kr_tensor_new(ctx, shape);
  if (t) {
    float *d = KR_DATA(t);
    int64_t n = kr_tensor_numel(t);
    for (int64_t i = 0; i < n; i++) d[i] = v;
  }
  return t;
}

kr_tensor *kr_tensor_copy(kr_ctx *ctx, const kr_tensor *src)
{
  kr_tensor *t = kr_tensor_new(ctx, &src->shape);
  if (t) memcpy(KR_DATA(t), KR_DATA(src), (size_t)kr_tensor_numel(src) * sizeof(float));
  return t;
}

static kr_tensor *view(kr_ctx *ctx, kr_tensor *base, size_t offset, const kr_shape *shape)
{
  kr_tensor *t = kr_malloc(ctx, sizeof *t);
  if (!t) return NULL;
  t->refs = 1;
  t->st = base->st;
  t->st->refs++;
  t->offset = offset;
  t->shape = *shape;
  return t;
}

kr_tensor *kr_tensor_rows(kr_ctx *ctx, kr_tensor *t, int64_t first, int64_t last)
{
  if (t->shape.ndim < 1)
    return kr_fail(ctx, KR_EARG, "tensor: cannot take rows of a scalar"), NULL;
  int64_t n = t->shape.dim[0];
  if (first < 0 || last > n || first > last)
    return kr_fail(ctx, KR_EARG, "tensor: rows %lld..%lld out of range for %lld rows",
                   (long long)first + 1, (long long)last, (long long)n), NULL;
  kr_shape s = t->shape;
  s.dim[0] = last - first;
  int64_t row = n ? kr_tensor_numel(t) / n : 0;
  return view(ctx, t, t->offset + (size_t)(first * row), &s);
}

kr_tensor *kr_tensor_reshape(kr_ctx *ctx, kr_tensor *t, const kr_shape *shape)
{
  size_t n;
  if (check_shape(ctx, shape, &n) != KR_OK) return NULL;
  if ((int64_t)n != kr_tensor_numel(t)) {
    char a[128], b[128];
    return kr_fail(ctx, KR_ESHAPE, "reshape: cannot reshape %s (%lld elements) to %s",
                   kr_shape_str(&t->shape, a, sizeof a), (long long)kr_tensor_numel(t),
                   kr_shape_str(shape, b, sizeof b)), NULL;
  }
  return view(ctx, t, t->offset, shape);
}

void kr_tensor_retain(kr_tensor *t) { t->refs++; }

void kr_tensor_move(kr_tensor *t, float *data)
{
  t->st->data = data;
  t->st->version++;
  t->st->ctx->moves++;
}

void kr_tensor_release(kr_tensor *t)
{
  if (!t || --t->refs > 0) return;
  kr_storage *st = t->st;
  kr_ctx *ctx = st->ctx;
  if (--st->refs == 0) {
    kr_free(ctx, st->data);
    kr_free(ctx, st);
  }
  kr_free(ctx, t);
}

int64_t kr_tensor_numel(const kr_tensor *t) { return kr_numel(&t->shape); }   /* a zero axis first (ops.h) */

void kr_tensor_gather_rows(float *dst, const kr_tensor *src, const int64_t *idx, int64_t n)
{
  int64_t rows = src->shape.ndim ? src->shape.dim[0] : 1;
  size_t row = rows ? (size_t)(kr_tensor_numel(src) / rows) : 0;
  const float *s = KR_DATA(src);
  for (int64_t i = 0; i < n; i++)
    memcpy(dst + (size_t)i * row, s + (size_t)idx[i] * row, row * sizeof(float));
}

int kr_tensor_has_nonfinite(const kr_tensor *t)
{
  const float *d = KR_DATA(t);
  int64_t n = kr_tensor_numel(t);
  /* blocks without an early exit, so that the test vectorizes; NaN fails <= */
  for (int64_t b = 0; b < n; b += 4096) {
    int64_t e = b + 4096 < n ? b + 4096 : n;
    int bad = 0;
    for (int64_t i = b; i < e; i++) bad |= !(fabsf(d[i]) <= 3.40282347e38f);
    if (bad) return 1;
  }
  return 0;
}
