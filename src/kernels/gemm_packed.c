/*
** gemm_packed.c -- C = act(A B + bias) with B (the weights) packed once.
**
** The weights are copied into panels of nr columns (K rows of nr floats
** each, zero padded past N), the layout the micro-kernel streams; A is read
** in place. A micro-kernel computes an mr x nr tile in registers: the sum
** over k = 0 .. K-1 in that order (one FMA per k where the CPU has FMA),
** then the bias, then the epilogue while the tile is still in registers or
** L1 (relu in registers, an elementwise activation on the row pieces, or a
** row-wise one such as softmax once a row block is complete).
**
** Kernels, one per instruction level (chosen by kr_gemm_isa_best from
** blas.c's CPUID ranking, compiled with target attributes so the file builds
** for any x86-64):
**   AVX-512  mr 8, nr 32: 16 zmm accumulators
**   AVX2+FMA mr 6, nr 16: 12 ymm accumulators
**   generic  mr 4, nr 8: plain C (SSE where the compiler vectorizes it)
** A tile with fewer than mr rows takes the one-row path of the same kernel,
** and a panel with fewer than nr columns computes the padding and stores
** only the columns that exist: the same instructions in the same order for
** every output element, so results do not depend on how rows are split over
** threads.
**
** Threads: the rows are split in whole micro-tiles over the engine's pool
** (threadpool.h); within a part the loop runs panel by panel (a panel of B
** stays in L2 while the part's row tiles pass over it).
**
** Whether the packed kernel is used at all is measured (kr_gemm_prefer_packed):
** against OpenBLAS's sgemm, for the shape, once per process. That choice is
** the process-wide state here (a small table under a mutex, like blas.c's
** record): it caches a measurement of the machine, never a result.
*/
#include "gemm_packed.h"
#include "threadpool.h"
#include "../openblas.h"
#include "../ctx_impl.h"

#include <cblas.h>
#include <stdint.h>
#include <string.h>

#if defined(__x86_64__) && defined(__GNUC__)
#include <immintrin.h>
#define HAVE_X86_KERNELS 1
#endif

static const int isa_mr[] = {4, 6, 8};
static const int isa_nr[] = {8, 16, 32};
static const char *const isa_names[] = {"generic", "AVX2+FMA", "AVX-512"};

int kr_gemm_isa_best(void)
{
#ifdef HAVE_X86_KERNELS
  const char *level = kr_blas_init()->cpu_level;
  if (strcmp(level, "AVX-512") == 0) return KR_GEMM_AVX512;
  if (strcmp(level, "AVX2+FMA") == 0) return KR_GEMM_AVX2;
#endif
  return KR_GEMM_GENERIC;
}

const char *kr_gemm_isa_name(int isa)
{
  return isa >= 0 && isa <= KR_GEMM_AVX512 ? isa_names[isa] : "unknown";
}

/* ---- packing ---- */

kr_gemm_pack *kr_gemm_pack_new(kr_ctx *ctx, int isa, int64_t K, int64_t N)
{
  if (isa < KR_GEMM_GENERIC || isa > kr_gemm_isa_best()) isa = KR_GEMM_GENERIC;
  kr_gemm_pack *pk = kr_calloc(ctx, sizeof *pk);
  if (!pk) return NULL;
  pk->isa = isa;
  pk->mr = isa_mr[isa];
  pk->nr = isa_nr[isa];
  pk->K = K;
  pk->N = N;
  pk->Np = (N + pk->nr - 1) / pk->nr * pk->nr;
  size_t floats = (size_t)(pk->K * pk->Np + pk->Np) + 16;
  pk->mem = kr_calloc(ctx, (floats ? floats : 1) * sizeof(float));
  if (!pk->mem) {
    kr_free(ctx, pk);
    return NULL;
  }
  uintptr_t a = ((uintptr_t)pk->mem + 63) & ~(uintptr_t)63;
  pk->b = (float *)a;
  pk->bias = pk->b + pk->K * pk->Np;
  return pk;
}

static int valid_isa(int isa) { return isa < KR_GEMM_GENERIC || isa > kr_gemm_isa_best() ? KR_GEMM_GENERIC : isa; }

size_t kr_gemm_pack_floats(int isa, int64_t K, int64_t N)
{
  int64_t nr = isa_nr[valid_isa(isa)], Np = (N + nr - 1) / nr * nr;
  return (size_t)(K * Np + Np) + 16;
}

void kr_gemm_pack_view(kr_gemm_pack *pk, int isa, int64_t K, int64_t N, float *mem)
{
  isa = valid_isa(isa);
  memset(pk, 0, sizeof *pk);
  pk->isa = isa;
  pk->mr = isa_mr[isa];
  pk->nr = isa_nr[isa];
  pk->K = K;
  pk->N = N;
  pk->Np = (N + pk->nr - 1) / pk->nr * pk->nr;
  pk->b = (float *)(((uintptr_t)mem + 63) & ~(uintptr_t)63);
  pk->bias = pk->b + pk->K * pk->Np;
}

void kr_gemm_pack_free(kr_ctx *ctx, kr_gemm_pack *pk)
{
  if (!pk) return;
  kr_free(ctx, pk->mem);
  kr_free(ctx, pk);
}

void kr_gemm_pack_set(kr_gemm_pack *pk, const float *W, int trans, const float *bias)
{
  int64_t K = pk->K, N = pk->N, nr = pk->nr;
  for (int64_t p = 0; p < pk->Np / nr; p++) {
    float *dst = pk->b + p * K * nr;
    int64_t j0 = p * nr, w = N - j0 < nr ? N - j0 : nr;
    for (int64_t k = 0; k < K; k++) {
      float *d = dst + k * nr;
      if (!trans) {
        memcpy(d, W + k * N + j0, (size_t)w * sizeof(float));
      } else {
        for (int64_t c = 0; c < w; c++) d[c] = W[(j0 + c) * K + k];
      }
      for (int64_t c = w; c < nr; c++) d[c] = 0.0f;
    }
  }
  for (int64_t j = 0; j < pk->Np; j++) pk->bias[j] = bias && j < N ? bias[j] : 0.0f;
}

/* ---- micro-kernels ----
** kern(K, A, lda, mr, B, bias, C, ldc, nr, epi): rows [0, mr) of A times
** the panel B (K x NR), plus bias, epilogue, into the first nr columns of C.
** epi here is NULL or carries relu / map only. */

typedef void (*kern_fn)(int64_t K, const float *A, int64_t lda, int mr, const float *B, const float *bias,
                        float *C, int64_t ldc, int nr, const kr_gemm_epi *epi);

/* the end of one row: acc (NR floats, bias added, relu applied) into C
** (relu lets NaN through: max(0, x) with x second, which maxps returns when
** either is NaN) */
static inline void row_out(const float *acc, float *C, int nr, const kr_gemm_epi *epi)
{
  if (epi && epi->map) epi->map(epi->ud, acc, C, nr);
  else memcpy(C, acc, (size_t)nr * sizeof(float));
}

/* generic: plain C, one path for every row count */
static void kern_generic(int64_t K, const float *A, int64_t lda, int mr, const float *B, const float *bias,
                         float *C, int64_t ldc, int nr, const kr_gemm_epi *epi)
{
  enum { MR = 4, NR = 8 };
  float acc[MR][NR];
  for (int r = 0; r < MR; r++)
    for (int c = 0; c < NR; c++) acc[r][c] = 0.0f;
  for (int64_t k = 0; k < K; k++) {
    const float *b = B + k * NR;
    for (int r = 0; r < mr; r++) {
      float a = A[r * lda + k];
      for (int c = 0; c < NR; c++) acc[r][c] = acc[r][c] + a * b[c];
    }
  }
  for (int r = 0; r < mr; r++) {
    for (int c = 0; c < NR; c++) {
      float v = acc[r][c] + bias[c];
      acc[r][c] = epi && epi->relu ? (!(v <= 0.0f) ? v : 0.0f) : v;
    }
    row_out(acc[r], C + r * ldc, nr, epi);
  }
}

#ifdef HAVE_X86_KERNELS

#define T512 __attribute__((target("avx512f,avx2,fma")))
#define T256 __attribute__((target("avx2,fma")))

T512 static inline void out512(__m512 c0, __m512 c1, const float *bias, float *C, int nr, const kr_gemm_epi *epi)
{
  c0 = _mm512_add_ps(c0, _mm512_loadu_ps(bias));
  c1 = _mm512_add_ps(c1, _mm512_loadu_ps(bias + 16));
  if (epi && epi->relu) {
    c0 = _mm512_max_ps(_mm512_setzero_ps(), c0);
    c1 = _mm512_max_ps(_mm512_setzero_ps(), c1);
  }
  if (epi && epi->map) {
    float t[32] __attribute__((aligned(64)));
    _mm512_store_ps(t, c0);
    _mm512_store_ps(t + 16, c1);
    epi->map(epi->ud, t, C, nr);
  } else if (nr == 32) {
    _mm512_storeu_ps(C, c0);
    _mm512_storeu_ps(C + 16, c1);
  } else {
    __mmask16 m0 = (__mmask16)(nr >= 16 ? 0xffff : (1u << nr) - 1);
    __mmask16 m1 = (__mmask16)(nr <= 16 ? 0 : (1u << (nr - 16)) - 1);
    _mm512_mask_storeu_ps(C, m0, c0);
    _mm512_mask_storeu_ps(C + 16, m1, c1);
  }
}

T512 static void kern_avx512(int64_t K, const float *A, int64_t lda, int mr, const float *B, const float *bias,
                             float *C, int64_t ldc, int nr, const kr_gemm_epi *epi)
{
  if (mr == 8) {
    __m512 c00 = _mm512_setzero_ps(), c01 = c00, c10 = c00, c11 = c00, c20 = c00, c21 = c00, c30 = c00, c31 = c00;
    __m512 c40 = c00, c41 = c00, c50 = c00, c51 = c00, c60 = c00, c61 = c00, c70 = c00, c71 = c00;
    const float *a0 = A, *a1 = A + lda, *a2 = A + 2 * lda, *a3 = A + 3 * lda;
    const float *a4 = A + 4 * lda, *a5 = A + 5 * lda, *a6 = A + 6 * lda, *a7 = A + 7 * lda;
    for (int64_t k = 0; k < K; k++) {
      __m512 b0 = _mm512_load_ps(B + k * 32), b1 = _mm512_load_ps(B + k * 32 + 16), a;
#define ROW(r)                          \
      a = _mm512_set1_ps(a##r[k]);      \
      c##r##0 = _mm512_fmadd_ps(a, b0, c##r##0); \
      c##r##1 = _mm512_fmadd_ps(a, b1, c##r##1);
      ROW(0) ROW(1) ROW(2) ROW(3) ROW(4) ROW(5) ROW(6) ROW(7)
#undef ROW
    }
    out512(c00, c01, bias, C, nr, epi);
    out512(c10, c11, bias, C + ldc, nr, epi);
    out512(c20, c21, bias, C + 2 * ldc, nr, epi);
    out512(c30, c31, bias, C + 3 * ldc, nr, epi);
    out512(c40, c41, bias, C + 4 * ldc, nr, epi);
    out512(c50, c51, bias, C + 5 * ldc, nr, epi);
    out512(c60, c61, bias, C + 6 * ldc, nr, epi);
    out512(c70, c71, bias, C + 7 * ldc, nr, epi);
    return;
  }
  for (int r = 0; r < mr; r++) {
    __m512 c0 = _mm512_setzero_ps(), c1 = c0;
    const float *ar = A + r * lda;
    for (int64_t k = 0; k < K; k++) {
      __m512 a = _mm512_set1_ps(ar[k]);
      c0 = _mm512_fmadd_ps(a, _mm512_load_ps(B + k * 32), c0);
      c1 = _mm512_fmadd_ps(a, _mm512_load_ps(B + k * 32 + 16), c1);
    }
    out512(c0, c1, bias, C + r * ldc, nr, epi);
  }
}

T256 static inline void out256(__m256 c0, __m256 c1, const float *bias, float *C, int nr, const kr_gemm_epi *epi)
{
  c0 = _mm256_add_ps(c0, _mm256_loadu_ps(bias));
  c1 = _mm256_add_ps(c1, _mm256_loadu_ps(bias + 8));
  if (epi && epi->relu) {
    c0 = _mm256_max_ps(_mm256_setzero_ps(), c0);
    c1 = _mm256_max_ps(_mm256_setzero_ps(), c1);
  }
  if (nr == 16 && !(epi && epi->map)) {
    _mm256_storeu_ps(C, c0);
    _mm256_storeu_ps(C + 8, c1);
    return;
  }
  float t[16] __attribute__((aligned(32)));
  _mm256_store_ps(t, c0);
  _mm256_store_ps(t + 8, c1);
  row_out(t, C, nr, epi);
}

T256 static void kern_avx2(int64_t K, const float *A, int64_t lda, int mr, const float *B, const float *bias,
                           float *C, int64_t ldc, int nr, const kr_gemm_epi *epi)
{
  if (mr == 6) {
    __m256 c00 = _mm256_setzero_ps(), c01 = c00, c10 = c00, c11 = c00, c20 = c00, c21 = c00;
    __m256 c30 = c00, c31 = c00, c40 = c00, c41 = c00, c50 = c00, c51 = c00;
    const float *a0 = A, *a1 = A + lda, *a2 = A + 2 * lda, *a3 = A + 3 * lda, *a4 = A + 4 * lda, *a5 = A + 5 * lda;
    for (int64_t k = 0; k < K; k++) {
      __m256 b0 = _mm256_load_ps(B + k * 16), b1 = _mm256_load_ps(B + k * 16 + 8), a;
#define ROW(r)                          \
      a = _mm256_broadcast_ss(a##r + k);  \
      c##r##0 = _mm256_fmadd_ps(a, b0, c##r##0); \
      c##r##1 = _mm256_fmadd_ps(a, b1, c##r##1);
      ROW(0) ROW(1) ROW(2) ROW(3) ROW(4) ROW(5)
#undef ROW
    }
    out256(c00, c01, bias, C, nr, epi);
    out256(c10, c11, bias, C + ldc, nr, epi);
    out256(c20, c21, bias, C + 2 * ldc, nr, epi);
    out256(c30, c31, bias, C + 3 * ldc, nr, epi);
    out256(c40, c41, bias, C + 4 * ldc, nr, epi);
    out256(c50, c51, bias, C + 5 * ldc, nr, epi);
    return;
  }
  for (int r = 0; r < mr; r++) {
    __m256 c0 = _mm256_setzero_ps(), c1 = c0;
    const float *ar = A + r * lda;
    for (int64_t k = 0; k < K; k++) {
      __m256 a = _mm256_broadcast_ss(ar + k);
      c0 = _mm256_fmadd_ps(a, _mm256_load_ps(B + k * 16), c0);
      c1 = _mm256_fmadd_ps(a, _mm256_load_ps(B + k * 16 + 8), c1);
    }
    out256(c0, c1, bias, C + r * ldc, nr, epi);
  }
}
#endif

static kern_fn kernel_of(int isa)
{
#ifdef HAVE_X86_KERNELS
  if (isa == KR_GEMM_AVX512) return kern_avx512;
  if (isa == KR_GEMM_AVX2) return kern_avx2;
#endif
  return kern_generic;
}

/* ---- the driver ---- */

typedef struct gemm_job {
  const kr_gemm_pack *pk;
  const float *A;
  int64_t M, lda;
  float *C;
  int64_t ldc;
  const kr_gemm_epi *epi;
  int64_t tiles;
} gemm_job;

static void gemm_part(void *arg, int t, int T)
{
  const gemm_job *j = arg;
  const kr_gemm_pack *pk = j->pk;
  kern_fn kern = kernel_of(pk->isa);
  int64_t t0, t1;
  kr_share(j->tiles, t, T, &t0, &t1);
  int64_t mr = pk->mr, nr = pk->nr, K = pk->K, N = pk->N;
  int64_t m0 = t0 * mr, m1 = t1 * mr < j->M ? t1 * mr : j->M;
  if (m0 >= m1) return;
  const kr_gemm_epi *epi = j->epi;
  int rows = epi && epi->rows;
  float *D = rows ? epi->pre : j->C;
  int64_t ldd = rows ? N : j->ldc;
  const kr_gemm_epi *tile_epi = rows ? NULL : epi;
  for (int64_t p = 0; p < pk->Np / nr; p++) {
    const float *B = pk->b + p * K * nr;
    int w = (int)(N - p * nr < nr ? N - p * nr : nr);
    for (int64_t m = m0; m < m1; m += mr) {
      int h = (int)(m1 - m < mr ? m1 - m : mr);
      kern(K, j->A + m * j->lda, j->lda, h, B, pk->bias + p * nr, D + m * ldd + p * nr, ldd, w, tile_epi);
    }
  }
  if (rows) epi->rows(epi->ud, epi->pre + m0 * N, j->C + m0 * j->ldc, m1 - m0, N);
}

void kr_gemm_packed(const kr_gemm_pack *pk, const float *A, int64_t M, int64_t lda, float *C, int64_t ldc,
                    const kr_gemm_epi *epi, int T)
{
  if (M <= 0 || pk->N <= 0) return;
  gemm_job j = {pk, A, M, lda, C, ldc, epi, (M + pk->mr - 1) / pk->mr};
  if (T > j.tiles) T = (int)j.tiles;
  /* a part below ~0.5M multiply-adds (a few microseconds) costs about as
  ** much to hand to a worker as to run */
  int64_t per = M * pk->Np * (pk->K ? pk->K : 1);
  while (T > 1 && per / T < ((int64_t)1 << 19)) T--;
  if (T <= 1) gemm_part(&j, 0, 1);
  else kr_parallel(T, gemm_part, &j);
}

/* ---- measured choice: packed kernel or sgemm, per shape, per context ---- */

static int cached(const kr_ctx *ctx, int isa, int64_t M, int64_t N, int64_t K, int *packed)
{
  for (int i = 0; i < ctx->gemm_nchoices; i++) {
    const kr_gemm_choice *c = &ctx->gemm_choices[i];
    if (c->isa == isa && c->M == M && c->N == N && c->K == K) {
      *packed = c->packed;
      return 1;
    }
  }
  return 0;
}

static void remember(kr_ctx *ctx, int isa, int64_t M, int64_t N, int64_t K, int packed)
{
  if (ctx->gemm_nchoices < KR_GEMM_CHOICES) ctx->gemm_choices[ctx->gemm_nchoices++] = (kr_gemm_choice){isa, M, N, K, packed};
}

int kr_gemm_prefer_packed(kr_ctx *ctx, int isa, int64_t M, int64_t N, int64_t K)
{
  if (M > 512) M = 512;   /* per row the cost is the same past a few hundred rows */
  if (M < 1 || N < 1) return 0;
  int packed = 0;
  if (cached(ctx, isa, M, N, K, &packed)) return packed;
  float *a = kr_malloc(ctx, (size_t)(M * K + 1) * sizeof(float));
  float *w = kr_malloc(ctx, (size_t)(K * N + 1) * sizeof(float));
  float *b = kr_malloc(ctx, (size_t)N * sizeof(float));
  float *c = kr_malloc(ctx, (size_t)(M * N) * sizeof(float));
  kr_gemm_pack *pk = a && w && b && c ? kr_gemm_pack_new(ctx, isa, K, N) : NULL;
  if (!pk) {
    kr_free(ctx, a);
    kr_free(ctx, w);
    kr_free(ctx, b);
    kr_free(ctx, c);
    return 0;   /* not remembered: memory may be there next time */
  }
  for (int64_t i = 0; i < M * K; i++) a[i] = (float)((i * 7) % 13) * 0.1f - 0.6f;
  for (int64_t i = 0; i < K * N; i++) w[i] = (float)((i * 5) % 11) * 0.1f - 0.5f;
  for (int64_t i = 0; i < N; i++) b[i] = 0.01f * (float)i;
  kr_gemm_pack_set(pk, w, 0, b);
  int saved = openblas_get_num_threads();
  if (saved != 1) openblas_set_num_threads(1);
  double best_p = 1e30, best_s = 1e30, start = kr_now();
  /* interleaved rounds, the best of each side: at least 3, more while
  ** under 20 ms in all (a busy machine slows single rounds, not the best) */
  for (int r = 0; r < 9; r++) {
    double t0 = kr_now();
    kr_gemm_packed(pk, a, M, K, c, N, NULL, 1);
    double t1 = kr_now();
    for (int64_t i = 0; i < M; i++) memcpy(c + i * N, b, (size_t)N * sizeof(float));
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, (int)M, (int)N, (int)K, 1.0f, a, (int)K, w, (int)N,
                1.0f, c, (int)N);
    double t2 = kr_now();
    if (t1 - t0 < best_p) best_p = t1 - t0;
    if (t2 - t1 < best_s) best_s = t2 - t1;
    if (r >= 2 && t2 - start > 0.02) break;
  }
  if (saved != 1) openblas_set_num_threads(saved);
  packed = best_p < best_s;
  kr_gemm_pack_free(ctx, pk);
  kr_free(ctx, a);
  kr_free(ctx, w);
  kr_free(ctx, b);
  kr_free(ctx, c);
  remember(ctx, isa, M, N, K, packed);
  return packed;
}
