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
**
** A weight gradient at a small batch (matmul with transpose a, a sum over few
** rows: Dense's x^T dy) has its own AVX-512 kernel, tn_small: each row of the
** product summed in registers and stored once (streamed past the cache when
** the product is large), where sgemm clears the output, then reads and writes
** it again (on the bench machine, 30976 x 256 over 16 rows: 2.3 to 3.0 ms
** against sgemm's 3.7 to 5.3 on one thread). Which of the two runs is measured on first use, per shape, on
** the operands themselves (no allocation), and kept in the context
** (kr_set_gemm_packed: 0 never tn_small, 1 always, 2 measured).
*/
#include "kernels.h"
#include "threadpool.h"
#include "../ctx_impl.h"

#include <cblas.h>
#include <stdint.h>
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

/* ---- tn_small: C (K x N) = A^T B, A (M x K) and B (M x N) row-major, M small ---- */

#define TN_SMALL_MAX_M 32        /* the rows summed: at most this many */
#define TN_SMALL_MIN_OUT 65536   /* and a product of at least this many floats */
#define TN_SMALL_ISA 0x7e57      /* its measured choices' mark in ctx->gemm_choices */

typedef struct tn_job {
  int64_t M, K, N, bs;
  const float *A, *B;
  float *C;
  int stream;
} tn_job;

#if defined(__GNUC__) && !defined(__clang__) && defined(__x86_64__) && defined(__linux__)
#include <immintrin.h>
#define HAVE_TN_SMALL 1
/* rows [i0, i1) of C: row i is the sum over m of A[m][i] B[m][:], 128
** columns (8 registers) at a time, then 16 at a time (masked at the end),
** each stored once */
#define TN_FMA8(a, b)                                                                     \
  do {                                                                                    \
    c0 = _mm512_fmadd_ps(a, _mm512_loadu_ps((b)), c0);                                    \
    c1 = _mm512_fmadd_ps(a, _mm512_loadu_ps((b) + 16), c1);                               \
    c2 = _mm512_fmadd_ps(a, _mm512_loadu_ps((b) + 32), c2);                               \
    c3 = _mm512_fmadd_ps(a, _mm512_loadu_ps((b) + 48), c3);                               \
    c4 = _mm512_fmadd_ps(a, _mm512_loadu_ps((b) + 64), c4);                               \
    c5 = _mm512_fmadd_ps(a, _mm512_loadu_ps((b) + 80), c5);                               \
    c6 = _mm512_fmadd_ps(a, _mm512_loadu_ps((b) + 96), c6);                               \
    c7 = _mm512_fmadd_ps(a, _mm512_loadu_ps((b) + 112), c7);                              \
  } while (0)

__attribute__((target("avx512f"))) static inline void tn_store(float *d, __m512 v, int stream)
{
  if (stream) _mm512_stream_ps(d, v);
  else _mm512_storeu_ps(d, v);
}

__attribute__((target("avx512f"))) static void tn_rows_avx512(const tn_job *j, int64_t i0, int64_t i1)
{
  const int64_t M = j->M, K = j->K, N = j->N, N8 = N / 128 * 128;
  const float *restrict A = j->A, *restrict B = j->B;
  for (int64_t i = i0; i < i1; i++) {
    float *restrict c = j->C + i * N;
    int stream = j->stream && ((uintptr_t)c & 63) == 0;
    for (int64_t c0i = 0; c0i < N8; c0i += 128) {
      __m512 c0, c1, c2, c3, c4, c5, c6, c7;
      c0 = c1 = c2 = c3 = c4 = c5 = c6 = c7 = _mm512_setzero_ps();
      for (int64_t m = 0; m < M; m++) {
        __m512 a = _mm512_set1_ps(A[m * K + i]);
        TN_FMA8(a, B + m * N + c0i);
      }
      float *d = c + c0i;
      tn_store(d, c0, stream);
      tn_store(d + 16, c1, stream);
      tn_store(d + 32, c2, stream);
      tn_store(d + 48, c3, stream);
      tn_store(d + 64, c4, stream);
      tn_store(d + 80, c5, stream);
      tn_store(d + 96, c6, stream);
      tn_store(d + 112, c7, stream);
    }
    for (int64_t c0i = N8; c0i < N; c0i += 16) {
      int64_t w = N - c0i < 16 ? N - c0i : 16;
      __mmask16 mk = w == 16 ? (__mmask16)0xFFFF : (__mmask16)((1u << w) - 1);
      __m512 acc = _mm512_setzero_ps();
      for (int64_t m = 0; m < M; m++)
        acc = _mm512_fmadd_ps(_mm512_set1_ps(A[m * K + i]), _mm512_maskz_loadu_ps(mk, B + m * N + c0i), acc);
      _mm512_mask_storeu_ps(c + c0i, mk, acc);
    }
  }
  if (j->stream) _mm_sfence();
}
#undef TN_FMA8

static void tn_chunk(void *arg, int c, int G, int slot)
{
  const tn_job *j = arg;
  int64_t i0 = (int64_t)c * j->bs, i1 = i0 + j->bs > j->K ? j->K : i0 + j->bs;
  if (i1 > i0) tn_rows_avx512(j, i0, i1);
}

/* on T threads, in row blocks fixed by the shape: the same floats for any T */
static void tn_small(int T, int64_t M, int64_t K, int64_t N, const float *A, const float *B, float *C)
{
  tn_job j = {M, K, N, 0, A, B, C, (double)K * (double)N * sizeof(float) > 4e6};
  int64_t bs = (K + 63) / 64;   /* 64 blocks at most, whole cache lines of A */
  bs = (bs + 15) / 16 * 16;
  j.bs = bs;
  kr_parallel_chunks(T, (int)((K + bs - 1) / bs), tn_chunk, &j);
}

/* whether tn_small runs this product: measured the first time the shape
** comes, both ways on the operands (3 rounds each, interleaved, the best of
** each), the output left as the chosen way writes it */
static int tn_small_chosen(kr_ctx *ctx, int T, int64_t M, int64_t K, int64_t N, const float *A, const float *B,
                           float *C)
{
  int mode = kr_get_gemm_packed(ctx);   /* 0 never, 1 always, 2 measured */
  if (mode == 0 || M > TN_SMALL_MAX_M || (double)K * (double)N < TN_SMALL_MIN_OUT || !__builtin_cpu_supports("avx512f"))
    return 0;
  if (mode == 1) return 1;
  for (int i = 0; i < ctx->gemm_nchoices; i++) {
    const kr_gemm_choice *c = &ctx->gemm_choices[i];
    if (c->isa == TN_SMALL_ISA && c->M == M && c->N == N && c->K == K) return c->packed;
  }
  double best_own = 1e30, best_blas = 1e30;
  for (int r = 0; r < 3; r++) {
    double t0 = kr_now();
    kr_sgemm_fixed(T, 1, 0, K, N, M, 1.0f, A, K, B, N, 0.0f, C, N);
    double t1 = kr_now();
    tn_small(T, M, K, N, A, B, C);
    double t2 = kr_now();
    if (t1 - t0 < best_blas) best_blas = t1 - t0;
    if (t2 - t1 < best_own) best_own = t2 - t1;
  }
  int own = best_own < best_blas;
  if (ctx->gemm_nchoices < KR_GEMM_CHOICES)
    ctx->gemm_choices[ctx->gemm_nchoices++] = (kr_gemm_choice){TN_SMALL_ISA, M, N, K, own};
  if (!own) kr_sgemm_fixed(T, 1, 0, K, N, M, 1.0f, A, K, B, N, 0.0f, C, N);
  return -1;   /* measured: C holds the product already */
}
#endif

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
    int T = kr_get_num_threads(e->ctx);
#ifdef HAVE_TN_SMALL
    int own = tn_small_chosen(e->ctx, T, M, K, N, e->x[0], e->x[1], e->y);
    if (own < 0) return KR_OK;
    if (own) {
      tn_small(T, M, K, N, e->x[0], e->x[1], e->y);
      return KR_OK;
    }
#endif
    kr_sgemm_fixed(T, 1, 0, K, N, M, 1.0f, e->x[0], K, e->x[1], N, 0.0f, e->y, N);
  }
  return KR_OK;
}
