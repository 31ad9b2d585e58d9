/*
** backend.c -- kernels of the backend family (ops_backend.h): the shape of
** a tensor, fills and random draws, running sums and products, select.
** Shape letters: a running op views x as (O, N, I): O the axes before the
** axis, N the axis, I the axes after it.
*/
#include "kernels.h"
#include "../ops_backend.h"

#include <math.h>
#include <string.h>

int kr_k_shape(const kr_exec *e)
{
  for (int i = 0; i < e->xs[0]->ndim; i++) e->y[i] = (float)e->xs[0]->dim[i];
  return KR_OK;
}

int kr_k_fill(const kr_exec *e)
{
  int64_t n = kr_numel(e->ys);
  float v = (float)e->node->attr.f[KR_FILL_VALUE];
  for (int64_t i = 0; i < n; i++) e->y[i] = v;
  return KR_OK;
}

/* y = mean + stddev * N(0, 1) */
int kr_k_random_normal(const kr_exec *e)
{
  int64_t n = kr_numel(e->ys);
  double m = e->node->attr.f[KR_RANDOM_A], s = e->node->attr.f[KR_RANDOM_B];
  for (int64_t i = 0; i < n; i++) e->y[i] = (float)(m + s * kr_rng_normal(e->ctx));
  return KR_OK;
}

/* y = U[lo, hi) */
int kr_k_random_uniform(const kr_exec *e)
{
  int64_t n = kr_numel(e->ys);
  double lo = e->node->attr.f[KR_RANDOM_A], hi = e->node->attr.f[KR_RANDOM_B];
  for (int64_t i = 0; i < n; i++) {
    float v = (float)(lo + (hi - lo) * kr_rng_uniform(e->ctx));
    e->y[i] = v < (float)hi || lo == hi ? v : (float)lo;   /* rounding must not reach hi */
  }
  return KR_OK;
}

/* y = 1 with probability p, else 0 (Keras: uniform < p) */
int kr_k_random_binomial(const kr_exec *e)
{
  int64_t n = kr_numel(e->ys);
  double p = e->node->attr.f[KR_RANDOM_A];
  for (int64_t i = 0; i < n; i++) e->y[i] = kr_rng_uniform(e->ctx) < p ? 1.0f : 0.0f;
  return KR_OK;
}

/* y = mean + stddev * z, z ~ N(0, 1) redrawn while |z| > 2 */
int kr_k_truncated_normal(const kr_exec *e)
{
  int64_t n = kr_numel(e->ys);
  double m = e->node->attr.f[KR_RANDOM_A], s = e->node->attr.f[KR_RANDOM_B];
  for (int64_t i = 0; i < n; i++) {
    double z;
    do z = kr_rng_normal(e->ctx); while (fabs(z) > 2.0);
    e->y[i] = (float)(m + s * z);
  }
  return KR_OK;
}

/* y[o, j, i] = the running sum (cumsum; with KR_CUM_REVERSE from the end:
** over k >= j) or product (cumprod) of x[o, k, i] over k <= j */
#define CUM_KERNEL(NAME, INIT, OP, REV)                                       \
  int NAME(const kr_exec *e)                                                  \
  {                                                                           \
    int64_t O, N, I;                                                          \
    kr_split_axis(e->ys, e->node->attr.i[KR_CUM_AXIS], &O, &N, &I);           \
    int rev = (REV);                                                          \
    const float *x = e->x[0];                                                 \
    float *y = e->y;                                                          \
    for (int64_t o = 0; o < O; o++)                                           \
      for (int64_t i = 0; i < I; i++) {                                       \
        const float *xp = x + o * N * I + i;                                  \
        float *yp = y + o * N * I + i;                                        \
        double acc = (INIT);                                                  \
        for (int64_t j = 0; j < N; j++) {                                     \
          int64_t k = rev ? N - 1 - j : j;                                    \
          acc OP xp[k * I];                                                   \
          yp[k * I] = (float)acc;                                             \
        }                                                                     \
      }                                                                       \
    return KR_OK;                                                             \
  }

CUM_KERNEL(kr_k_cumsum, 0, +=, e->node->attr.i[KR_CUM_REVERSE] != 0)
CUM_KERNEL(kr_k_cumprod, 1, *=, 0)

/* dx_k = P_k * S_k with P_k = prod_{j<k} x_j and S_k = sum_{j>=k} dy_j
** prod_{k<m<=j} x_m, so S_k = dy_k + x_{k+1} S_{k+1}: exact at zeros, no
** division. (dy, x) -> dx of x's shape. */
int kr_k_cumprod_grad(const kr_exec *e)
{
  int64_t O, N, I;
  kr_split_axis(e->ys, e->node->attr.i[KR_CUM_AXIS], &O, &N, &I);
  const float *dy = e->x[0], *x = e->x[1];
  float *dx = e->y;
  for (int64_t o = 0; o < O; o++)
    for (int64_t i = 0; i < I; i++) {
      const float *gp = dy + o * N * I + i, *xp = x + o * N * I + i;
      float *dp = dx + o * N * I + i;
      double s = 0;
      for (int64_t k = N; k-- > 0;) {
        s = (double)gp[k * I] + (k + 1 < N ? (double)xp[(k + 1) * I] * s : 0.0);
        dp[k * I] = (float)s;
      }
      double p = 1;
      for (int64_t k = 0; k < N; k++) {
        dp[k * I] = (float)(p * dp[k * I]);
        p *= xp[k * I];
      }
    }
  return KR_OK;
}

int kr_k_select(const kr_exec *e)
{
  int64_t n = kr_numel(e->ys);
  const float *c = e->x[0], *a = e->x[1], *b = e->x[2];
  for (int64_t i = 0; i < n; i++) e->y[i] = c[i] != 0.0f ? a[i] : b[i];
  return KR_OK;
}

int kr_k_sin(const kr_exec *e)
{
  int64_t n = kr_numel(e->ys);
  for (int64_t i = 0; i < n; i++) e->y[i] = sinf(e->x[0][i]);
  return KR_OK;
}

int kr_k_cos(const kr_exec *e)
{
  int64_t n = kr_numel(e->ys);
  for (int64_t i = 0; i < n; i++) e->y[i] = cosf(e->x[0][i]);
  return KR_OK;
}

/* y[i0, ..., ik] = x[j0, ..., jk], jd = dim_d - 1 - id on the flipped axes */
int kr_k_reverse(const kr_exec *e)
{
  const kr_shape *s = e->ys;
  int64_t n = kr_numel(s), mask = e->node->attr.i[KR_REVERSE_AXES];
  int64_t stride[KR_MAX_DIMS];
  int64_t st = 1;
  for (int d = s->ndim - 1; d >= 0; d--) {
    stride[d] = st;
    st *= s->dim[d];
  }
  for (int64_t i = 0; i < n; i++) {
    int64_t rem = i, src = 0;
    for (int d = 0; d < s->ndim; d++) {
      int64_t id = rem / stride[d];
      rem -= id * stride[d];
      if (mask & ((int64_t)1 << d)) id = s->dim[d] - 1 - id;
      src += id * stride[d];
    }
    e->y[i] = e->x[0][src];
  }
  return KR_OK;
}
