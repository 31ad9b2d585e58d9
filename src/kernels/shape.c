/*
** shape.c -- kernels that move data: transpose, concat, slice and its
** gradient pad_axis, gather (embedding lookup) and its gradient, one_hot.
** Ids arrive as floats; an id that is not an integer in range is an error.
*/
#include "kernels.h"

#include <math.h>
#include <string.h>

int kr_k_transpose(const kr_exec *e)
{
  const kr_shape *xs = e->xs[0], *ys = e->ys;
  int r = ys->ndim;
  int64_t xst[KR_MAX_DIMS], st[KR_MAX_DIMS], idx[KR_MAX_DIMS] = {0};
  int64_t s = 1;
  for (int i = r - 1; i >= 0; i--) {
    xst[i] = s;
    s *= xs->dim[i];
  }
  for (int i = 0; i < r; i++) st[i] = xst[e->node->attr.i[i]];
  const float *x = e->x[0];
  float *y = e->y;
  int64_t n = kr_numel(ys), o = 0;
  for (int64_t i = 0; i < n; i++) {
    y[i] = x[o];
    for (int d = r - 1; d >= 0; d--) {
      idx[d]++;
      o += st[d];
      if (idx[d] < ys->dim[d]) break;
      o -= st[d] * ys->dim[d];
      idx[d] = 0;
    }
  }
  return KR_OK;
}

static int64_t inner_of(const kr_shape *s, int ax)
{
  int64_t in = 1;
  for (int i = ax + 1; i < s->ndim; i++) in *= s->dim[i];
  return in;
}

static int64_t outer_of(const kr_shape *s, int ax)
{
  int64_t o = 1;
  for (int i = 0; i < ax; i++) o *= s->dim[i];
  return o;
}

int kr_k_concat(const kr_exec *e)
{
  int ax = (int)e->node->attr.i[KR_AXIS];
  int64_t outer = outer_of(e->ys, ax), inner = inner_of(e->ys, ax);
  int64_t yrow = e->ys->dim[ax] * inner, off = 0;
  for (int k = 0; k < e->nin; k++) {
    int64_t chunk = e->xs[k]->dim[ax] * inner;
    for (int64_t o = 0; o < outer; o++)
      memcpy(e->y + o * yrow + off, e->x[k] + o * chunk, (size_t)chunk * sizeof(float));
    off += chunk;
  }
  return KR_OK;
}

int kr_k_slice(const kr_exec *e)
{
  int ax = (int)e->node->attr.i[KR_SLICE_AXIS];
  int64_t outer = outer_of(e->xs[0], ax), inner = inner_of(e->xs[0], ax);
  int64_t xrow = e->xs[0]->dim[ax] * inner, chunk = e->ys->dim[ax] * inner;
  int64_t start = e->node->attr.i[KR_SLICE_START] * inner;
  for (int64_t o = 0; o < outer; o++)
    memcpy(e->y + o * chunk, e->x[0] + o * xrow + start, (size_t)chunk * sizeof(float));
  return KR_OK;
}

int kr_k_pad_axis(const kr_exec *e)
{
  int ax = (int)e->node->attr.i[KR_SLICE_AXIS];
  int64_t outer = outer_of(e->ys, ax), inner = inner_of(e->ys, ax);
  int64_t yrow = e->ys->dim[ax] * inner, chunk = e->xs[0]->dim[ax] * inner;
  int64_t start = e->node->attr.i[KR_SLICE_START] * inner;
  memset(e->y, 0, (size_t)kr_numel(e->ys) * sizeof(float));
  for (int64_t o = 0; o < outer; o++)
    memcpy(e->y + o * yrow + start, e->x[0] + o * chunk, (size_t)chunk * sizeof(float));
  return KR_OK;
}

/* An id is an integer in [0, n), compared in double: every float is exact
** there, while (float)n rounds above 2^24 and refused valid ids. An integer
** is printed as one (16777216, not 1.67772e+07). */
static int check_id(kr_ctx *ctx, const char *op, float v, int64_t n, int64_t *out)
{
  double d = v;
  if (d >= 0 && d < (double)n && d == floor(d)) {
    *out = (int64_t)d;
    return KR_OK;
  }
  if (d == floor(d) && fabs(d) < 9e18)
    return kr_fail(ctx, KR_EVALUE, "%s: index %lld is outside [0, %lld)", op, (long long)d, (long long)n);
  return kr_fail(ctx, KR_EVALUE, "%s: index %.9g is outside [0, %lld)", op, d, (long long)n);
}

/* (table (V, D), ids (...)) -> (..., D) */
int kr_k_gather(const kr_exec *e)
{
  const kr_shape *ts = e->xs[0];
  int64_t V = ts->dim[0], D = ts->dim[1], n = kr_numel(e->xs[1]);
  for (int64_t i = 0; i < n; i++) {
    int64_t id = 0;
    if (check_id(e->ctx, "embedding", e->x[1][i], V, &id)) return KR_EVALUE;
    memcpy(e->y + i * D, e->x[0] + id * D, (size_t)D * sizeof(float));
  }
  return KR_OK;
}

/* (dy (..., D), ids (...), table (V, D)) -> (V, D), rows summed */
int kr_k_gather_grad(const kr_exec *e)
{
  int64_t V = e->ys->dim[0], D = e->ys->dim[1], n = kr_numel(e->xs[1]);
  memset(e->y, 0, (size_t)(V * D) * sizeof(float));
  for (int64_t i = 0; i < n; i++) {
    int64_t id = 0;
    if (check_id(e->ctx, "embedding", e->x[1][i], V, &id)) return KR_EVALUE;
    float *row = e->y + id * D;
    const float *g = e->x[0] + i * D;
    for (int64_t j = 0; j < D; j++) row[j] += g[j];
  }
  return KR_OK;
}

int kr_k_one_hot(const kr_exec *e)
{
  int64_t C = e->node->attr.i[KR_ONE_HOT_CLASSES], n = kr_numel(e->xs[0]);
  memset(e->y, 0, (size_t)(n * C) * sizeof(float));
  for (int64_t i = 0; i < n; i++) {
    int64_t id = 0;
    if (check_id(e->ctx, "one_hot", e->x[0][i], C, &id)) return KR_EVALUE;
    e->y[i * C + id] = 1.0f;
  }
  return KR_OK;
}
