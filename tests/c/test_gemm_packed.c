/*
** test_gemm_packed.c -- the packed-panel GEMM (src/kernels/gemm_packed.c),
** every kernel this CPU runs, against a float64 reference.
**
** Tolerance: each output is bias + sum_k a_k b_k summed in float32 in a
** fixed order (FMA or not). The classical bound for a recursive sum of K
** products plus one more addition is |err| <= gamma_{K+1} (|bias| + sum |a_k b_k|),
** gamma_n = n u / (1 - n u), u = 2^-24; we allow (K + 2) u (...) times 1.01 and
** 1e-30 for exact zeros. An activation applied afterwards (relu, a map, a
** row-wise softmax) is checked on the float64 reference through the same
** float32 function, with the input's error carried by the function's slope
** (1 for relu; sigmoid's <= 1/4; softmax's <= 1 per input).
** Shapes: M, N, K in {1, 7, 17, 64, 257} (edges of every micro-tile and
** panel), row strides larger than the rows (odd), weights plain and
** transposed, with and without bias, 1 to 3 threads: results identical
** bit for bit across thread counts.
*/
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "check.h"
#include "kr.h"
#include "kernels/gemm_packed.h"

static uint32_t seed = 12345;
static float rnd(void)
{
  seed = seed * 1664525u + 1013904223u;
  return (float)((int)(seed >> 8) % 20001 - 10000) / 10000.0f;
}

static void sigmoid_map(void *ud, const float *x, float *y, int64_t n)
{
  (void)ud;
  for (int64_t i = 0; i < n; i++) y[i] = 1.0f / (1.0f + expf(-x[i]));
}

static void softmax_rows(void *ud, const float *x, float *y, int64_t rows, int64_t n)
{
  (void)ud;
  for (int64_t r = 0; r < rows; r++) {
    const float *xr = x + r * n;
    float *yr = y + r * n;
    float m = xr[0];
    for (int64_t j = 1; j < n; j++) m = xr[j] > m ? xr[j] : m;
    double s = 0;
    for (int64_t j = 0; j < n; j++) s += exp((double)xr[j] - m);
    for (int64_t j = 0; j < n; j++) yr[j] = (float)(exp((double)xr[j] - m) / s);
  }
}

enum { EPI_NONE, EPI_RELU, EPI_MAP, EPI_ROWS };

/* one shape on one kernel: returns the worst error / bound */
static double one(kr_ctx *ctx, int isa, int64_t M, int64_t N, int64_t K, int trans, int with_bias, int epi_kind,
                  int threads, float *out_copy)
{
  int64_t lda = K + 3, ldc = epi_kind == EPI_ROWS ? N : N + 5;
  float *A = malloc((size_t)(M * lda) * sizeof *A), *W = malloc((size_t)(K * N + 1) * sizeof *W);
  float *bias = malloc((size_t)N * sizeof *bias), *C = malloc((size_t)(M * ldc) * sizeof *C);
  float *pre = malloc((size_t)(M * N) * sizeof *pre);
  double *ref = malloc((size_t)(M * N) * sizeof *ref), *mag = malloc((size_t)(M * N) * sizeof *mag);
  for (int64_t i = 0; i < M * lda; i++) A[i] = rnd();
  for (int64_t i = 0; i < K * N; i++) W[i] = rnd();
  for (int64_t i = 0; i < N; i++) bias[i] = rnd();
  for (int64_t i = 0; i < M * ldc; i++) C[i] = 1234.5f;   /* the padding of the stride must stay */
  kr_gemm_pack *pk = kr_gemm_pack_new(ctx, isa, K, N);
  CHECK(pk != NULL);
  CHECK(pk->isa == isa);
  kr_gemm_pack_set(pk, W, trans, with_bias ? bias : NULL);
  kr_gemm_epi epi;
  memset(&epi, 0, sizeof epi);
  if (epi_kind == EPI_RELU) epi.relu = 1;
  if (epi_kind == EPI_MAP) epi.map = sigmoid_map;
  if (epi_kind == EPI_ROWS) {
    epi.rows = softmax_rows;
    epi.pre = pre;
  }
  kr_gemm_packed(pk, A, M, lda, C, ldc, epi_kind == EPI_NONE ? NULL : &epi, threads);
  for (int64_t i = 0; i < M; i++)
    for (int64_t j = 0; j < N; j++) {
      double s = with_bias ? bias[j] : 0, g = with_bias ? fabs(bias[j]) : 0;
      for (int64_t k = 0; k < K; k++) {
        double w = trans ? W[j * K + k] : W[k * N + j];
        s += (double)A[i * lda + k] * w;
        g += fabs((double)A[i * lda + k] * w);
      }
      ref[i * N + j] = s;
      mag[i * N + j] = (K + 2) * ldexp(1.0, -24) * g * 1.01 + 1e-30;
    }
  double worst = 0;
  for (int64_t i = 0; i < M; i++) {
    double rowmax = -INFINITY, rowsum = 0, rowerr = 0;
    if (epi_kind == EPI_ROWS) {
      for (int64_t j = 0; j < N; j++) rowmax = fmax(rowmax, ref[i * N + j]);
      for (int64_t j = 0; j < N; j++) rowsum += exp(ref[i * N + j] - rowmax);
      for (int64_t j = 0; j < N; j++) rowerr = fmax(rowerr, mag[i * N + j]);
    }
    for (int64_t j = 0; j < N; j++) {
      double r = ref[i * N + j], bound = mag[i * N + j];
      switch (epi_kind) {
      case EPI_RELU: r = r > 0 ? r : 0; break;
      case EPI_MAP: r = 1 / (1 + exp(-r)); bound = bound / 4 + 4 * ldexp(1.0, -24); break;
      case EPI_ROWS: r = exp(r - rowmax) / rowsum; bound = 2 * rowerr + 4 * ldexp(1.0, -24); break;
      default: break;
      }
      double e = fabs((double)C[i * ldc + j] - r) / bound;
      if (!(e <= worst)) worst = e;   /* NaN counts as the worst */
      if (out_copy) out_copy[i * N + j] = C[i * ldc + j];
    }
    for (int64_t j = N; j < ldc; j++)
      if (C[i * ldc + j] != 1234.5f) worst = INFINITY;   /* wrote past the row */
  }
  kr_gemm_pack_free(ctx, pk);
  free(A);
  free(W);
  free(bias);
  free(C);
  free(pre);
  free(ref);
  free(mag);
  return worst;
}

int main(void)
{
  kr_ctx *ctx = kr_ctx_new();
  int best = kr_gemm_isa_best();
  printf("test_gemm_packed: kernels up to %s on this CPU\n", kr_gemm_isa_name(best));
  CHECK(strcmp(kr_gemm_isa_name(KR_GEMM_GENERIC), "generic") == 0);
  if (best < KR_GEMM_AVX512) check_skip("test_gemm_packed", "no AVX-512 here: that kernel is not run");
  if (best < KR_GEMM_AVX2) check_skip("test_gemm_packed", "no AVX2+FMA here: that kernel is not run");
  /* a kernel above the CPU's level is never handed out */
  kr_gemm_pack *over = kr_gemm_pack_new(ctx, KR_GEMM_AVX512 + 1, 3, 3);
  CHECK(over && over->isa == KR_GEMM_GENERIC);
  kr_gemm_pack_free(ctx, over);

  static const int64_t sizes[] = {1, 7, 17, 64, 257};
  for (int isa = KR_GEMM_GENERIC; isa <= best; isa++) {
    double worst = 0;
    int cases = 0;
    for (int a = 0; a < 5; a++)
      for (int b = 0; b < 5; b++)
        for (int c = 0; c < 5; c++) {
          int64_t M = sizes[a], N = sizes[b], K = sizes[c];
          if (M * N * K > 257 * 64 * 257) continue;   /* the biggest products once each, below */
          int v = (a + b + c) % 4;
          double e = one(ctx, isa, M, N, K, v & 1, v != 3, (a + 2 * b + c) % 4, 1 + (a + c) % 3, NULL);
          CHECK_MSG(e <= 1.0, "%s M=%lld N=%lld K=%lld: error %.3g of the bound", kr_gemm_isa_name(isa),
                    (long long)M, (long long)N, (long long)K, e);
          if (e > worst) worst = e;
          cases++;
        }
    for (int k = 0; k < 4; k++) {
      double e = one(ctx, isa, 257, 257, 257, k & 1, 1, k, 2, NULL);
      CHECK_MSG(e <= 1.0, "%s 257^3 epilogue %d: error %.3g of the bound", kr_gemm_isa_name(isa), k, e);
    }
    printf("test_gemm_packed: %s: %d shapes, worst error %.3f of the bound\n", kr_gemm_isa_name(isa), cases, worst);

    /* thread counts: bit-identical results (each element's sum in one thread,
    ** full micro-tiles and ragged ones computed alike) */
    for (int kind = EPI_NONE; kind <= EPI_ROWS; kind++) {
      float *r1 = malloc(131 * 77 * sizeof *r1), *r2 = malloc(131 * 77 * sizeof *r2);
      float *r3 = malloc(131 * 77 * sizeof *r3);
      uint32_t s0 = seed;
      one(ctx, isa, 131, 77, 93, 0, 1, kind, 1, r1);
      seed = s0;
      one(ctx, isa, 131, 77, 93, 0, 1, kind, 2, r2);
      seed = s0;
      one(ctx, isa, 131, 77, 93, 0, 1, kind, 3, r3);
      CHECK(memcmp(r1, r2, 131 * 77 * sizeof *r1) == 0);
      CHECK(memcmp(r1, r3, 131 * 77 * sizeof *r1) == 0);
      free(r1);
      free(r2);
      free(r3);
    }
  }

  /* K = 0: the bias alone, through the epilogue */
  {
    kr_gemm_pack *pk = kr_gemm_pack_new(ctx, best, 0, 5);
    float bias[5] = {-2, -1, 0, 1, 2}, C[3 * 5], A[1] = {0};
    kr_gemm_pack_set(pk, A, 0, bias);
    kr_gemm_epi epi;
    memset(&epi, 0, sizeof epi);
    epi.relu = 1;
    kr_gemm_packed(pk, A, 3, 0, C, 5, &epi, 1);
    int ok = 1;
    for (int i = 0; i < 3; i++)
      for (int j = 0; j < 5; j++) ok &= C[i * 5 + j] == (bias[j] > 0 ? bias[j] : 0);
    CHECK(ok);
    kr_gemm_pack_free(ctx, pk);
  }

  /* the measured choice: an answer, and the same one again (cached per process) */
  int p1 = kr_gemm_prefer_packed(ctx, best, 128, 512, 784);
  double t0 = kr_now();
  int p2 = kr_gemm_prefer_packed(ctx, best, 128, 512, 784);
  double t1 = kr_now();
  CHECK(p1 == 0 || p1 == 1);
  CHECK(p1 == p2);
  CHECK_MSG(t1 - t0 < 1e-3, "the second call measured again (%.3g s)", t1 - t0);
  printf("test_gemm_packed: 128x784 @ 784x512: %s\n", p1 ? "packed kernel" : "sgemm");
  CHECK(kr_mem_in_use(ctx) == 0);

  kr_ctx_free(ctx);
  return check_report("test_gemm_packed");
}
