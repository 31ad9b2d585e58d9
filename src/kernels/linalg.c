/*
** linalg.c -- matrix products through OpenBLAS sgemm.
** batch_matmul (a, b): (B, n, k) x (B, k, m) per batch entry, i0/i1 transpose
** the last two axes of a / b.
** matmul (a, b), attrs i0 = transpose a, i1 = transpose b:
**   plain:        a (..., K) seen as (M, K), b (K, N) -> (..., N)
**   transpose b:  b (N, K)
**   transpose a:  a (..., K) and b (..., N) with the same leading axes,
**                 seen as (M, K) and (M, N) -> a^T b (K, N)
**
** Threads. OpenBLAS's own threading changes a product's floats with its
** thread count (it blocks the K sums differently), so every product here is
** cut by kr_sgemm_fixed into tiles fixed by the shape and run on the kernels'
** pool, each tile one single-threaded sgemm: the result is the same for any
** thread count. The tiles are row blocks when op(A) has more rows than op(B)
** has columns, else column blocks (so the smaller operand is the one packed
** again per tile), multiples of 16 wide, each of at least TILE_MIN_WORK flops.
*/
#include "kernels.h"
#include "threadpool.h"

#include <cblas.h>
#include <string.h>

#define TILE_MIN_WORK 1.6e7   /* flops of a tile: below, one sgemm (smaller tiles pack an operand too often) */
#define TILE_ALIGN 16       /* rows or columns of a tile: a multiple of the kernels' unroll */

typedef struct gemm_job {
  int ta, tb, rows;     /* rows: tiles are row blocks, else column blocks */
  int64_t M, N, K, lda, ldb, ldc, bs;
  float alpha, beta;
  const float *A, *B;
  float *C;
} gemm_job;

static void gemm_tile(void *arg, int c, int G, int slot)
{
  const gemm_job *j = arg;
  int64_t items = j->rows ? j->M : j->N, i0 = (int64_t)c * j->bs, i1 = i0 + j->bs > items ? items : i0 + j->bs;
  if (i1 <= i0) return;
  const float *A = j->A, *B = j->B;
  float *C = j->C;
  int64_t m = j->M, n = j->N;
  if (j->rows) {
    A += j->ta ? i0 : i0 * j->lda;
    C += i0 * j->ldc;
    m = i1 - i0;
  } else {
    B += j->tb ? i0 * j->ldb : i0;
    C += i0;
    n = i1 - i0;
  }
  cblas_sgemm(CblasRowMajor, j->ta ? CblasTrans : CblasNoTrans, j->tb ? CblasTrans : CblasNoTrans, (int)m, (int)n,
              (int)j->K, j->alpha, A, (int)j->lda, B, (int)j->ldb, j->beta, C, (int)j->ldc);
}

void kr_sgemm_fixed(int T, int ta, int tb, int64_t M, int64_t N, int64_t K, float alpha, const float *A,
                    int64_t lda, const float *B, int64_t ldb, float beta, float *C, int64_t ldc)
{
  if (M <= 0 || N <= 0) return;
  gemm_job j = {ta, tb, M > N, M, N, K, lda, ldb, ldc, 0, alpha, beta, A, B, C};
  int64_t items = j.rows ? M : N;
  int G = kr_chunk_count(items, TILE_ALIGN, 2.0 * (double)M * (double)N * (double)K, TILE_MIN_WORK);
  int64_t bs = (items + G - 1) / G;
  bs = (bs + TILE_ALIGN - 1) / TILE_ALIGN * TILE_ALIGN;
  j.bs = bs;
  kr_parallel_chunks(T, (int)((items + bs - 1) / bs), gemm_tile, &j);
}

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
    kr_sgemm_fixed(kr_get_num_threads(e->ctx), ta, tb, n, m, k, 1.0f, e->x[0] + i * sa, as->dim[2], e->x[1] + i * sb,
                   bs->dim[2], 0.0f, y, m);
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
  kr_sgemm_fixed(kr_get_num_threads(e->ctx), 0, 0, M, N, K, 1.0f, e->x[0], K, e->x[1], N, 1.0f, y, N);
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
    kr_sgemm_fixed(kr_get_num_threads(e->ctx), 0, tb, M, N, K, 1.0f, e->x[0], K, e->x[1], tb ? K : N, 0.0f, e->y,
                   N);
  } else {
    int64_t N = bs->dim[bs->ndim - 1];
    if (K == 0 || N == 0) return KR_OK;
    if (M == 0) {
      for (int64_t i = 0; i < K * N; i++) e->y[i] = 0.0f;
      return KR_OK;
    }
    kr_sgemm_fixed(kr_get_num_threads(e->ctx), 1, 0, K, N, M, 1.0f, e->x[0], K, e->x[1], N, 0.0f, e->y, N);
  }
  return KR_OK;
}
