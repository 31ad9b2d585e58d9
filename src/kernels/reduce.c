/*
** reduce.c -- reductions over axes (sum, mean, max, min, prod, argmax),
** softmax and log-softmax on one axis, and the broadcasting pair
** sum_to / broadcast_to that gradients of broadcast ops need.
** A reduced shape is seen as the input shape with stride 0 on reduced axes.
*/
#include "kernels.h"

#include <float.h>
#include <math.h>
#include <string.h>

/* ---- softmax ---- */

/* e^x for x <= 0 (softmax shifts by the row max), branch-free so that loops
** over it vectorize: x = k ln2 + r with |r| <= ln2/2, e^r by a degree-6
** polynomial, 2^k through the exponent bits. Relative error about 2e-7;
** below -87 the result is 0, as expf underflows there too. */
static inline float exp_nonpos(float x)
{
  x = x < -87.0f ? -87.0f : x;
  /* x <= 0: truncating t - 0.5 rounds t to nearest (cvttps2dq, no call) */
  float k = (float)(int32_t)(x * 1.44269504088896341f - 0.5f);
  float r = x - k * 0.693359375f;          /* ln2 split in two for accuracy */
  r = r - k * -2.12194440e-4f;
  float p = 1.0f + r * (1.0f + r * (0.5f + r * (1.6666666e-1f + r * (4.1666418e-2f + r * (8.3335184e-3f + r * 1.3887943e-3f)))));
  union { float f; int32_t i; } u;
  u.i = (int32_t)(k + 127.0f) << 23;
  return p * u.f;
}

/* the usual case: rows along the last axis, contiguous */
static void softmax_rows(const float *restrict x, float *restrict y, int64_t rows, int64_t n)
{
  for (int64_t r = 0; r < rows; r++) {
    const float *xr = x + r * n;
    float *yr = y + r * n;
    float m = xr[0];
    for (int64_t j = 1; j < n; j++) m = xr[j] > m ? xr[j] : m;
    for (int64_t j = 0; j < n; j++) yr[j] = exp_nonpos(xr[j] - m);   /* vectorizes */
    float s = 0;
    for (int64_t j = 0; j < n; j++) s += yr[j];
    float inv = 1.0f / s;
    for (int64_t j = 0; j < n; j++) yr[j] *= inv;
  }
}

int kr_k_softmax(const kr_exec *e)
{
  int64_t outer, n, inner;
  kr_split_axis(e->ys, e->node->attr.i[KR_AXIS], &outer, &n, &inner);
  if (inner == 1 && n > 0) {
    softmax_rows(e->x[0], e->y, outer, n);
    return KR_OK;
  }
  const float *x = e->x[0];
  float *y = e->y;
  for (int64_t o = 0; o < outer; o++)
    for (int64_t k = 0; k < inner; k++) {
      const float *xr = x + o * n * inner + k;
      float *yr = y + o * n * inner + k;
      float m = -INFINITY;
      for (int64_t j = 0; j < n; j++) m = xr[j * inner] > m ? xr[j * inner] : m;
      double s = 0;
      for (int64_t j = 0; j < n; j++) {
        float v = expf(xr[j * inner] - m);
        yr[j * inner] = v;
        s += v;
      }
      float inv = (float)(1.0 / s);
      for (int64_t j = 0; j < n; j++) yr[j * inner] *= inv;
    }
  return KR_OK;
}

/* The gradients of softmax and log-softmax along the axis, from dy and the
** forward output y: s = the sum of SUM_TERM over the axis, then dx = DX.
** softmax:     dx = y * (dy - sum(dy * y))
** log-softmax: dx = dy - exp(y) * sum(dy) */
#define SOFTMAX_GRAD(NAME, SUM_TERM, DX)                                                \
  int NAME(const kr_exec *e)                                                            \
  {                                                                                     \
    int64_t outer, n, inner;                                                            \
    kr_split_axis(e->ys, e->node->attr.i[KR_AXIS], &outer, &n, &inner);                 \
    const float *dy = e->x[0], *y = e->x[1];                                            \
    float *dx = e->y;                                                                   \
    for (int64_t o = 0; o < outer; o++)                                                 \
      for (int64_t k = 0; k < inner; k++) {                                             \
        int64_t base = o * n * inner + k;                                               \
        double s = 0;                                                                   \
        for (int64_t j = 0; j < n; j++) s += SUM_TERM;                                  \
        for (int64_t j = 0; j < n; j++) dx[base + j * inner] = DX;                      \
      }                                                                                 \
    return KR_OK;                                                                       \
  }

SOFTMAX_GRAD(kr_k_softmax_grad, (double)dy[base + j * inner] * y[base + j * inner],
             y[base + j * inner] * (dy[base + j * inner] - (float)s))

int kr_k_log_softmax(const kr_exec *e)
{
  int64_t outer, n, inner;
  kr_split_axis(e->ys, e->node->attr.i[KR_AXIS], &outer, &n, &inner);
  const float *x = e->x[0];
  float *y = e->y;
  for (int64_t o = 0; o < outer; o++)
    for (int64_t k = 0; k < inner; k++) {
      int64_t base = o * n * inner + k;
      float m = -INFINITY;
      for (int64_t j = 0; j < n; j++) m = x[base + j * inner] > m ? x[base + j * inner] : m;
      double s = 0;
      for (int64_t j = 0; j < n; j++) s += exp((double)x[base + j * inner] - m);
      float lse = m + (float)log(s);
      for (int64_t j = 0; j < n; j++) y[base + j * inner] = x[base + j * inner] - lse;
    }
  return KR_OK;
}

SOFTMAX_GRAD(kr_k_log_softmax_grad, dy[base + j * inner], dy[base + j * inner] - expf(y[base + j * inner]) * (float)s)

/* ---- reductions ---- */

/* strides into the reduced output for each input axis (0 on reduced axes) */
static int64_t reduced_strides(const kr_shape *x, int64_t mask, int64_t *st)
{
  int64_t s = 1, count = 1;
  for (int i = x->ndim - 1; i >= 0; i--) {
    if (mask & ((int64_t)1 << i)) {
      st[i] = 0;
      count *= x->dim[i];
    } else {
      st[i] = s;
      s *= x->dim[i];
    }
  }
  return count;
}

/* walk every element of x: i is the flat input index, o the output offset */
#define WALK(x, st, BODY)                                                  \
  do {                                                                     \
    int64_t idx_[KR_MAX_DIMS] = {0}, o = 0, total_ = kr_numel(x);          \
    int r_ = (x)->ndim;                                                    \
    for (int64_t i = 0; i < total_; i++) {                                 \
      BODY;                                                                \
      for (int d_ = r_ - 1; d_ >= 0; d_--) {                               \
        idx_[d_]++;                                                        \
        o += (st)[d_];                                                     \
        if (idx_[d_] < (x)->dim[d_]) break;                                \
        o -= (st)[d_] * (x)->dim[d_];                                      \
        idx_[d_] = 0;                                                      \
      }                                                                    \
    }                                                                      \
  } while (0)

int kr_k_reduce(const kr_exec *e)
{
  const kr_shape *xs = e->xs[0];
  const float *x = e->x[0];
  float *y = e->y;
  int64_t ny = kr_numel(e->ys), st[KR_MAX_DIMS];
  int64_t count = reduced_strides(xs, e->node->attr.i[KR_REDUCE_AXES], st);
  int op = e->node->op;
  /* the common case: reduce the trailing axes (rows of length count) */
  int64_t mask = e->node->attr.i[KR_REDUCE_AXES];
  int trailing = 1;
  for (int i = 0, seen = 0; i < xs->ndim; i++) {
    int red = (int)((mask >> i) & 1);
    if (seen && !red) trailing = 0;
    if (red) seen = 1;
  }
  if (trailing && count > 0 && ny * count == kr_numel(xs)) {
    for (int64_t r = 0; r < ny; r++) {
      const float *xr = x + r * count;
      double acc;
      if (op == KR_OP_SUM || op == KR_OP_MEAN) {
        acc = 0;
        for (int64_t j = 0; j < count; j++) acc += xr[j];
        if (op == KR_OP_MEAN) acc /= (double)count;
      } else if (op == KR_OP_PROD) {
        acc = 1;
        for (int64_t j = 0; j < count; j++) acc *= xr[j];
      } else {
        float m = xr[0];
        if (op == KR_OP_MAX)   /* NaN wins, as numpy's max */
          for (int64_t j = 1; j < count; j++) m = (xr[j] > m || xr[j] != xr[j]) ? xr[j] : m;
        else
          for (int64_t j = 1; j < count; j++) m = (xr[j] < m || xr[j] != xr[j]) ? xr[j] : m;
        acc = m;
      }
      y[r] = (float)acc;
    }
    return KR_OK;
  }
  if (op == KR_OP_SUM || op == KR_OP_MEAN) {
    memset(y, 0, (size_t)ny * sizeof(float));
    WALK(xs, st, y[o] += x[i]);
    if (op == KR_OP_MEAN)   /* the mean of nothing is NaN, as in numpy */
      for (int64_t i = 0; i < ny; i++) y[i] = count > 0 ? y[i] / (float)count : NAN;
  } else if (op == KR_OP_PROD) {
    for (int64_t i = 0; i < ny; i++) y[i] = 1.0f;
    WALK(xs, st, y[o] *= x[i]);
  } else if (op == KR_OP_MAX) {
    for (int64_t i = 0; i < ny; i++) y[i] = -INFINITY;
    WALK(xs, st, if (x[i] > y[o] || x[i] != x[i]) y[o] = x[i]);
  } else {
    for (int64_t i = 0; i < ny; i++) y[i] = INFINITY;
    WALK(xs, st, if (x[i] < y[o] || x[i] != x[i]) y[o] = x[i]);
  }
  return KR_OK;
}

/* index (0-based, as a float) of the first max/min along axis i0 */
int kr_k_argreduce(const kr_exec *e)
{
  int64_t outer, n, inner;
  kr_split_axis(e->xs[0], e->node->attr.i[KR_AXIS], &outer, &n, &inner);
  const float *x = e->x[0];
  int mx = e->node->op == KR_OP_ARGMAX;
  for (int64_t o = 0; o < outer; o++)
    for (int64_t k = 0; k < inner; k++) {
      const float *xr = x + o * n * inner + k;
      int64_t best = 0;
      for (int64_t j = 1; j < n; j++)
        if (mx ? xr[j * inner] > xr[best * inner] : xr[j * inner] < xr[best * inner]) best = j;
      e->y[o * inner + k] = (float)best;
    }
  return KR_OK;
}

/* (dy, x): dy spread back over the reduced axes; / count for mean */
int kr_k_reduce_grad(const kr_exec *e)
{
  const kr_shape *xs = e->xs[1];
  const float *dy = e->x[0];
  float *dx = e->y;
  int64_t st[KR_MAX_DIMS];
  int64_t count = reduced_strides(xs, e->node->attr.i[KR_REDUCE_AXES], st);
  float scale = e->node->attr.i[KR_REDUCE_MEAN] && count > 0 ? 1.0f / (float)count : 1.0f;
  WALK(xs, st, dx[i] = dy[o] * scale);
  return KR_OK;
}

/* (dy, x, y): dy is shared among the positions where x equals the reduced
** value (split evenly among ties, as TensorFlow does); scratch counts ties */
int kr_k_maxmin_grad(const kr_exec *e)
{
  const kr_shape *xs = e->xs[1];
  const float *dy = e->x[0], *x = e->x[1], *y = e->x[2];
  float *dx = e->y, *cnt = e->scratch;
  int64_t st[KR_MAX_DIMS];
  reduced_strides(xs, e->node->attr.i[KR_REDUCE_AXES], st);
  memset(cnt, 0, (size_t)kr_numel(e->xs[2]) * sizeof(float));
  /* a NaN reduced value came from the NaN positions: they share dy */
#define HIT(i, o) (x[i] == y[o] || (x[i] != x[i] && y[o] != y[o]))
  WALK(xs, st, if (HIT(i, o)) cnt[o] += 1.0f);
  WALK(xs, st, dx[i] = HIT(i, o) ? dy[o] / cnt[o] : 0.0f);
#undef HIT
  return KR_OK;
}

/* (dy, x): d prod / d x_i is the product of the other elements. Counting the
** zeros of each group keeps it exact where x_i = 0 (no 0/0): with no zero it
** is prod / x_i, with one zero only that position gets the product of the
** rest, with more every position gets 0. */
int kr_k_prod_grad(const kr_exec *e)
{
  const kr_shape *xs = e->xs[1];
  const float *dy = e->x[0], *x = e->x[1];
  float *dx = e->y;
  int64_t ny = kr_numel(e->xs[0]), st[KR_MAX_DIMS];
  float *zeros = e->scratch, *rest = e->scratch + ny;
  reduced_strides(xs, e->node->attr.i[KR_REDUCE_AXES], st);
  for (int64_t i = 0; i < ny; i++) {
    zeros[i] = 0;
    rest[i] = 1;
  }
  WALK(xs, st, if (x[i] == 0) zeros[o] += 1; else rest[o] *= x[i]);
  WALK(xs, st, dx[i] = zeros[o] == 0 ? dy[o] * rest[o] / x[i]
                     : (zeros[o] == 1 && x[i] == 0) ? dy[o] * rest[o] : 0.0f);
  return KR_OK;
}

/* ---- broadcasting ---- */

int kr_k_sum_to(const kr_exec *e)
{
  const kr_shape *xs = e->xs[0];
  int64_t st[KR_MAX_DIMS];
  kr_bcast_strides(e->ys, xs, st);
  int64_t ny = kr_numel(e->ys);
  const float *x = e->x[0];
  float *y = e->y;
  /* common case: y is a trailing block of x (bias gradients) */
  int64_t nx = kr_numel(xs);
  int suffix = 1;
  for (int i = 0; i < e->ys->ndim; i++)
    if (e->ys->dim[e->ys->ndim - 1 - i] != xs->dim[xs->ndim - 1 - i]) suffix = 0;
  memset(y, 0, (size_t)ny * sizeof(float));
  if (suffix && ny > 0) {
    for (int64_t r = 0; r < nx / ny; r++) {
      const float *xr = x + r * ny;
      for (int64_t j = 0; j < ny; j++) y[j] += xr[j];
    }
    return KR_OK;
  }
  WALK(xs, st, y[o] += x[i]);
  return KR_OK;
}

int kr_k_broadcast_to(const kr_exec *e)
{
  const kr_shape *ys = e->ys;
  int64_t st[KR_MAX_DIMS];
  kr_bcast_strides(e->xs[0], ys, st);
  const float *x = e->x[0];
  float *y = e->y;
  WALK(ys, st, y[i] = x[o]);
  return KR_OK;
}
