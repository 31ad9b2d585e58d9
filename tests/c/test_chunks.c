/*
** test_chunks.c -- the fixed-chunk primitive of the thread pool
** (src/kernels/threadpool.h, "Determinism") and what is built on it:
**   kr_parallel_chunks runs every chunk exactly once, on slots below
**     min(T, G), whatever T (1 .. 20, more than the pool has);
**   kr_chunk_count is a function of the shape alone, within its bounds;
**   kr_sum_chunks adds the partial sums in chunk order (operands chosen so
**     that any other order gives other floats);
**   kr_sgemm_fixed gives the same floats for 1 .. 5 threads, also when
**     OpenBLAS itself was set to several threads, and matches a float64
**     product; every transpose, alpha and beta;
**   the engine's conv and its kernel gradient give the same floats at 1, 2
**     and 3 threads (kr_eval).
*/
#include "kr.h"
#include "ops.h"
#include "ops_conv.h"
#include "kernels/kernels.h"
#include "kernels/threadpool.h"
#include "openblas.h"
#include "check.h"

#include <math.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ---- kr_parallel_chunks ---- */

typedef struct seen_job {
  _Atomic int count[64];
  _Atomic int bad_slot, bad_G;
  int slots, G;
} seen_job;

static void seen_fn(void *arg, int c, int G, int slot)
{
  seen_job *j = arg;
  if (G != j->G) atomic_fetch_add(&j->bad_G, 1);
  if (slot < 0 || slot >= j->slots) atomic_fetch_add(&j->bad_slot, 1);
  if (c >= 0 && c < 64) atomic_fetch_add(&j->count[c], 1);
}

static void test_parallel_chunks(void)
{
  for (int T = 1; T <= 20; T += (T < 5 ? 1 : 5))
    for (int G = 1; G <= 40; G += (G < 4 ? 1 : 9)) {
      seen_job j;
      memset(&j, 0, sizeof j);
      j.G = G;
      j.slots = kr_chunk_slots(T, G);
      int used = kr_parallel_chunks(T, G, seen_fn, &j);
      CHECK_MSG(used >= 1 && used <= j.slots, "T %d G %d: %d slots used, at most %d", T, G, used, j.slots);
      int once = 1;
      for (int c = 0; c < 64; c++) once &= atomic_load(&j.count[c]) == (c < G ? 1 : 0);
      CHECK_MSG(once, "T %d G %d: every chunk once", T, G);
      CHECK_MSG(atomic_load(&j.bad_slot) == 0 && atomic_load(&j.bad_G) == 0, "T %d G %d: slot and G", T, G);
    }
  CHECK(kr_chunk_slots(3, 2) == 2 && kr_chunk_slots(0, 5) == 1 && kr_chunk_slots(40, 40) == KR_MAX_CHUNKS);
}

/* ---- kr_chunk_count ---- */

static void test_chunk_count(void)
{
  CHECK(kr_chunk_count(0, 1, 1e9, 1) == 1);
  CHECK(kr_chunk_count(1000, 1, 1e9, 1) == KR_MAX_CHUNKS);
  CHECK(kr_chunk_count(5, 1, 1e9, 1) == 5);
  CHECK(kr_chunk_count(64, 16, 1e9, 1) == 4);
  CHECK(kr_chunk_count(1000, 1, 3.5e6, 1e6) == 3);
  CHECK(kr_chunk_count(1000, 1, 1e5, 1e6) == 1);
  int ok = 1;
  for (int64_t items = 1; items < 300; items += 7)
    for (double w = 1e3; w < 1e9; w *= 3.7) {
      int G = kr_chunk_count(items, 4, w, 1e6);
      ok &= G >= 1 && G <= KR_MAX_CHUNKS && (G == 1 || (items / G >= 4 && w / G >= 1e6));
    }
  CHECK_MSG(ok, "kr_chunk_count within its bounds");
}

/* ---- kr_sum_chunks ---- */

static void test_sum_chunks(void)
{
  /* 5 chunks of 3 floats, 4 floats apart; in chunk order the sum of
  ** 1e8, 1, -1e8, 1, 1 is 2 in float (1e8 + 1 rounds to 1e8), any order that
  ** adds -1e8 before the 1 gives 3 */
  float parts[20] = {0};
  const float v[5] = {1e8f, 1.0f, -1e8f, 1.0f, 1.0f};
  for (int c = 0; c < 5; c++)
    for (int i = 0; i < 3; i++) parts[c * 4 + i] = v[c] * (float)(i + 1);
  float dst[3];
  kr_sum_chunks(dst, parts, 4, 5, 3);
  for (int i = 0; i < 3; i++) {
    volatile float want = 0.0f;
    for (int c = 0; c < 5; c++) want += v[c] * (float)(i + 1);
    CHECK_MSG(dst[i] == want, "element %d: %g, in chunk order %g", i, (double)dst[i], (double)want);
  }
  CHECK(dst[0] == 2.0f);
  /* in place: dst is chunk 0's partial */
  kr_sum_chunks(parts, parts, 4, 5, 3);
  CHECK(parts[0] == 2.0f && parts[1] == dst[1] && parts[2] == dst[2]);
  /* one chunk: a copy */
  float one[2] = {3.0f, 4.0f}, out[2] = {0};
  kr_sum_chunks(out, one, 2, 1, 2);
  CHECK(out[0] == 3.0f && out[1] == 4.0f);
}

/* ---- kr_sgemm_fixed ---- */

static float draw(uint32_t *s)
{
  *s = *s * 1664525u + 1013904223u;
  return (float)((*s >> 8) / 16777216.0) - 0.5f;
}

static void test_sgemm_fixed(void)
{
  static const int shapes[][5] = {
    {128, 512, 784, 0, 0}, {784, 512, 128, 1, 0}, {128, 784, 512, 0, 1}, {37, 77, 1000, 0, 0},
    {1000, 77, 37, 1, 1}, {5, 300, 7, 0, 0}, {513, 17, 64, 0, 1}, {1, 1, 1, 0, 0}, {300, 3, 2000, 1, 0},
  };
  int blas_was = openblas_get_num_threads();
  for (size_t s = 0; s < sizeof shapes / sizeof shapes[0]; s++) {
    int M = shapes[s][0], N = shapes[s][1], K = shapes[s][2], ta = shapes[s][3], tb = shapes[s][4];
    float *A = malloc(sizeof(float) * (size_t)M * K), *B = malloc(sizeof(float) * (size_t)K * N);
    float *C0 = malloc(sizeof(float) * (size_t)M * N), *C = malloc(sizeof(float) * (size_t)M * N);
    uint32_t seed = (uint32_t)s + 7;
    for (long i = 0; i < (long)M * K; i++) A[i] = draw(&seed);
    for (long i = 0; i < (long)K * N; i++) B[i] = draw(&seed);
    int lda = ta ? M : K, ldb = tb ? K : N;
    float alpha = s % 2 ? 0.5f : 1.0f, beta = s % 3 ? 0.25f : 0.0f;
    for (long i = 0; i < (long)M * N; i++) C0[i] = draw(&seed);
    memcpy(C, C0, sizeof(float) * (size_t)M * N);
    openblas_set_num_threads(1);
    kr_sgemm_fixed(1, ta, tb, M, N, K, alpha, A, lda, B, ldb, beta, C, N);
    /* against float64 */
    double worst = 0;
    for (int i = 0; i < M; i++)
      for (int j = 0; j < N; j++) {
        double r = 0;
        for (int k = 0; k < K; k++)
          r += (double)(ta ? A[(long)k * lda + i] : A[(long)i * lda + k]) *
               (double)(tb ? B[(long)j * ldb + k] : B[(long)k * ldb + j]);
        r = alpha * r + beta * (double)C0[(long)i * N + j];
        double d = fabs(r - (double)C[(long)i * N + j]);
        if (d > worst) worst = d;
      }
    CHECK_MSG(worst <= 1e-5 * sqrt((double)K) + 1e-6, "%dx%dx%d (%d%d): off by %g from float64", M, N, K, ta, tb,
              worst);
    /* the same floats at 2 .. 5 threads, OpenBLAS at 1 or at 3 threads around the call */
    for (int T = 2; T <= 5; T++) {
      float *D = malloc(sizeof(float) * (size_t)M * N);
      memcpy(D, C0, sizeof(float) * (size_t)M * N);
      openblas_set_num_threads(T % 2 ? 3 : 1);
      kr_sgemm_fixed(T, ta, tb, M, N, K, alpha, A, lda, B, ldb, beta, D, N);
      CHECK_MSG(memcmp(C, D, sizeof(float) * (size_t)M * N) == 0, "%dx%dx%d (%d%d): %d threads differ from 1", M,
                N, K, ta, tb, T);
      CHECK_MSG(openblas_get_num_threads() == (T % 2 ? 3 : 1), "OpenBLAS's thread count given back");
      free(D);
    }
    free(A);
    free(B);
    free(C0);
    free(C);
  }
  openblas_set_num_threads(blas_was);
}

/* ---- the engine's conv through kr_eval at 1, 2, 3 threads ---- */

static kr_tensor *rand_tensor(kr_ctx *ctx, int ndim, const int64_t *dim, uint32_t seed)
{
  kr_shape s = kr_shape_make(ndim, dim);
  kr_tensor *t = kr_tensor_new(ctx, &s);
  if (!t) return NULL;
  for (int64_t i = 0; i < kr_numel(&s); i++) KR_DATA(t)[i] = draw(&seed);
  return t;
}

/* the conv's output and its kernel gradient with the bias row (im2col and,
** where the CPU has it, AVX-512 paths; 4, 2, 3 and 1 sample chunks): the
** same floats at 1, 2 and 3 threads */
static void test_conv_threads(kr_ctx *ctx)
{
  static const int64_t cases[][6] = {/* N H W C KH O */
                                     {32, 24, 24, 8, 3, 32}, {17, 24, 24, 16, 3, 16}, {64, 48, 48, 4, 3, 5},
                                     {16, 12, 12, 3, 3, 8}};
  for (size_t c = 0; c < sizeof cases / sizeof cases[0]; c++) {
    const int64_t *k = cases[c];
    int64_t ho = k[1] - k[4] + 1;
    int64_t xd[4] = {k[0], k[1], k[2], k[3]}, wd[4] = {k[4], k[4], k[3], k[5]}, yd[4] = {k[0], ho, ho, k[5]};
    kr_tensor *tx = rand_tensor(ctx, 4, xd, 1), *tw = rand_tensor(ctx, 4, wd, 2), *tdy = rand_tensor(ctx, 4, yd, 3);
    CHECK(tx && tw && tdy);
    kr_tensor *first[2] = {NULL, NULL};
    for (int T = 1; T <= 3 && tx && tw && tdy; T++) {
      kr_set_num_threads(ctx, T);
      kr_attr at;
      memset(&at, 0, sizeof at);
      at.i[KR_CONV_STRIDE_H] = at.i[KR_CONV_STRIDE_W] = 1;
      at.i[KR_CONV_DILATION_H] = at.i[KR_CONV_DILATION_W] = 1;
      kr_node *x = kr_node_const(ctx, tx), *w = kr_node_const(ctx, tw), *dy = kr_node_const(ctx, tdy);
      kr_node *in[2] = {x, w};
      kr_node *y = kr_node_op(ctx, KR_OP_CONV2D, 2, in, &at);
      kr_attr ab = at;
      ab.f[KR_CONV_WITH_BIAS] = 1;
      kr_node *gin[3] = {dy, x, w};
      kr_node *gk = kr_node_op(ctx, KR_OP_CONV2D_GRAD_KERNEL, 3, gin, &ab);
      kr_node *n[2] = {y, gk};
      for (int i = 0; i < 2; i++) {
        kr_tensor *out = n[i] ? kr_eval(ctx, n[i]) : NULL;
        CHECK_MSG(out != NULL, "conv case %zu at %d threads: %s", c, T, kr_errmsg(ctx));
        if (!out) continue;
        if (!first[i]) {
          first[i] = out;
          continue;
        }
        int64_t nf = kr_numel(&first[i]->shape);
        CHECK_MSG(nf == kr_numel(&out->shape) &&
                      memcmp(KR_DATA(first[i]), KR_DATA(out), (size_t)nf * sizeof(float)) == 0,
                  "conv case %zu: the %s at %d threads differs from 1 thread", c, i ? "kernel gradient" : "output",
                  T);
        kr_tensor_release(out);
      }
      kr_node_release(gk);
      kr_node_release(y);
      kr_node_release(dy);
      kr_node_release(w);
      kr_node_release(x);
    }
    for (int i = 0; i < 2; i++)
      if (first[i]) kr_tensor_release(first[i]);
    if (tx) kr_tensor_release(tx);
    if (tw) kr_tensor_release(tw);
    if (tdy) kr_tensor_release(tdy);
  }
  kr_set_num_threads(ctx, 1);
}

int main(void)
{
  test_parallel_chunks();
  test_chunk_count();
  test_sum_chunks();
  test_sgemm_fixed();
  kr_ctx *ctx = kr_ctx_new();
  CHECK(ctx != NULL);
  if (ctx) {
    test_conv_threads(ctx);
    kr_ctx_free(ctx);
  }
  return check_report("test_chunks");
}
