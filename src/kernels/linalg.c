/*
** linalg.c -- matrix products through OpenBLAS sgemm.
** batch_matmul (a, b): (B, n, k) x (B, k, m) per batch entry, i0/i1 transpose
** the last two axes of a / b.
** matmul (a, b), attrs i0 = transpose a, i1 = transpose b:
**   plain:        a (..., K) seen as (M, K), b (K, N) -> (..., N)
**   transpose b:  b (N, K)
**   transpose a:  a (..., K) and b (..., N) with the same leading axes,
**                 seen as (M, K) and (M, N) -> a^T b (K, N)
*/
#include "kernels.h"

#include <cblas.h>
#include <string.h>

/* batch_matmul: one sgemm per batch entry */
int kr_k_batch_matmul(const kr_exec *e)
{
  const kr_shape *as = e->xs[0], *bs = e->xs[1];
  int ta = (int)e->node->attr.i[KR_MATMUL_TRANSPOSE_A], tb = (int)e->node->attr.i[KR_MATMUL_TRANSPOSE_B];
  int64_t B = as->dim[0], n = e->ys->dim[1], m = e->ys->dim[2];
  int64_t k = ta ? as->dim[1] : as->dim[2];
  int64_t sa = as->dim[1] * as->dim[2], sb = bs->dim[1] * bs->dim[2];
  for (int64_t i = 0; i < B; i++) {
    float *y = e->y + i * n * m;
    if (k == 0) {
      memset(y, 0, (size_t)(n * m) * sizeof(float));
      continue;
    }
    if (n == 0 || m == 0) continue;
    cblas_sgemm(CblasRowMajor, ta ? CblasTrans : CblasNoTrans, tb ? CblasTrans : CblasNoTrans, (int)n, (int)m,
                (int)k, 1.0f, e->x[0] + i * sa, (int)as->dim[2], e->x[1] + i * sb, (int)bs->dim[2], 0.0f, y, (int)m);
  }
  return KR_OK;
}

/* linear: the bias fills every row of y, then sgemm adds x W onto it */
int kr_k_linear(const kr_exec *e)
{
  const kr_shape *as = e->xs[0];
  int64_t K = as->dim[as->ndim - 1], N = e->xs[1]->dim[1];
  int64_t M = K ? kr_numel(as) / K : 0;
  const float *b = e->x[2];
  float *y = e->y;
  for (int64_t r = 0; r < M; r++) memcpy(y + r * N, b, (size_t)N * sizeof(float));
  if (M == 0 || N == 0 || K == 0) return KR_OK;
  cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, (int)M, (int)N, (int)K, 1.0f, e->x[0], (int)K, e->x[1],
              (int)N, 1.0f, y, (int)N);
  return KR_OK;
}

int kr_k_matmul(const kr_exec *e)
{
  const kr_shape *as = e->xs[0], *bs = e->xs[1];
  int ta = (int)e->node->attr.i[KR_MATMUL_TRANSPOSE_A], tb = (int)e->node->attr.i[KR_MATMUL_TRANSPOSE_B];
  int64_t K = as->dim[as->ndim - 1];
  int64_t M = K ? kr_numel(as) / K : 0;
  if (!ta) {
    int64_t N = tb ? bs->dim[0] : bs->dim[1];
    if (M == 0 || N == 0) return KR_OK;
    cblas_sgemm(CblasRowMajor, CblasNoTrans, tb ? CblasTrans : CblasNoTrans, (int)M, (int)N, (int)K, 1.0f,
                e->x[0], (int)K, e->x[1], tb ? (int)K : (int)N, 0.0f, e->y, (int)N);
  } else {
    int64_t N = bs->dim[bs->ndim - 1];
    if (K == 0 || N == 0) return KR_OK;
    if (M == 0) {
      for (int64_t i = 0; i < K * N; i++) e->y[i] = 0.0f;
      return KR_OK;
    }
    cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, (int)K, (int)N, (int)M, 1.0f, e->x[0], (int)K,
                e->x[1], (int)N, 0.0f, e->y, (int)N);
  }
  return KR_OK;
}
