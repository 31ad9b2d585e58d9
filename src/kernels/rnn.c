/*
** rnn.c -- recurrent layers over a whole sequence: SimpleRNN, LSTM (Keras
** gate order i, f, c, o), GRU (z, r, h; reset gate before or after the
** recurrent product), forward and backpropagation through time.
** Shape letters as in ops_rnn.h: B batch, T timesteps, F features, u units,
** G gates, Gu = G*u. Sequences stay batch-major, (B, T, .) like the input.
**
** Forward (kr_k_rnn): one GEMM (OpenBLAS) projects every timestep of x
** through W into P (B, T, Gu); then per step a small GEMM adds h_prev U into
** P[:, t] and the gate math runs in place, leaving the activated gates in P.
** The aux keeps what BPTT needs: P, the state before each input step Hin
** (and Cin, act(c)), the final state, the GRU's recurrent h term, the
** dropout masks.
** Backward (kr_k_rnn_bptt): walks the steps in reverse, writing the gates'
** pre-activation gradients dP (B, T, Gu); then dx = dP W^T, dW = x^T dP and
** dU = Hin^T dP are one GEMM each.
** Masked steps (mask 0) carry state and output over; the carried output
** starts at zeros, as in Keras's K.rnn.
**
** The per-step part touches each batch row on its own, so it runs on row
** ranges (fwd_rows, bwd_rows), split among threads when the context asks
** for more than one and the work is worth it (see "threads" below). Its
** small products use the GEMM here (mm, mm_wide), not OpenBLAS, so that
** several threads may run them at once; the per-step code is compiled three
** times (AVX-512, AVX2+FMA, the baseline) and picked by the CPU at run time.
** tanh and the sigmoid are computed by branch-free float code (fexp) that
** vectorizes; the LSTM with Keras's activations runs its cell in one pass.
*/
#include "kernels.h"
#include "../ops_rnn.h"
#include "threadpool.h"

#include <cblas.h>
#include <math.h>
#include <string.h>

/* FP exceptions are not used: the selects below may be if-converted and the
** loops vectorized; products and sums may fuse into FMAs */
#pragma GCC optimize("no-trapping-math", "fp-contract=fast")

#define AI static inline __attribute__((always_inline))

/* ---- fast float math: branch-free, so the loops over a row vectorize ---- */

/* e^x with |relative error| < 1.2e-7 on [-87, 88] (clamped outside):
** x = n ln2 + r, |r| <= ln2/2, e^r by a degree-6 polynomial fitted to it
** (scripts' comment: least squares on Chebyshev nodes, float32 coefficients) */
AI float fexp(float x)
{
  x = x < -87.0f ? -87.0f : x;
  x = x > 88.0f ? 88.0f : x;
  float n = (x * 1.44269504088896341f + 12582912.0f) - 12582912.0f;   /* round to nearest */
  float r = x - n * 0.693359375f;
  r = r - n * -2.12194440e-4f;
  float p = 0.0013859301107004285f;
  p = p * r + 0.008374770171940327f;
  p = p * r + 0.04166772589087486f;
  p = p * r + 0.1666642129421234f;
  p = p * r + 0.4999999403953552f;
  p = p * r + 1.0f;
  int32_t k = (int32_t)n;
  uint32_t bits = (uint32_t)(k + 127) << 23;
  float s;
  memcpy(&s, &bits, sizeof s);
  return (1.0f + p * r) * s;
}

/* tanh(x) = 1 - 2 / (1 + e^(2x)): absolute error < 2e-7 (relative error grows
** near 0, where float32 sums of products carry more than that anyway) */
AI float ftanh(float x) { return 1.0f - 2.0f / (1.0f + fexp(2.0f * x)); }

AI float fsigm(float x) { return 1.0f / (1.0f + fexp(-x)); }

#define SELU_ALPHA 1.6732632423543772848170429916717f
#define SELU_SCALE 1.0507009873554804934193349852946f

/* an activation in place over n values */
AI void act_fwd(int code, float *restrict v, int64_t n)
{
  switch (code) {
  case KR_RACT_LINEAR: break;
  case KR_RACT_TANH: for (int64_t i = 0; i < n; i++) v[i] = ftanh(v[i]); break;
  case KR_RACT_SIGMOID: for (int64_t i = 0; i < n; i++) v[i] = fsigm(v[i]); break;
  case KR_RACT_HARD_SIGMOID:
    for (int64_t i = 0; i < n; i++) {
      float y = 0.2f * v[i] + 0.5f;
      v[i] = y < 0.0f ? 0.0f : y > 1.0f ? 1.0f : y;
    }
    break;
  case KR_RACT_RELU: for (int64_t i = 0; i < n; i++) v[i] = v[i] > 0.0f ? v[i] : 0.0f; break;
  case KR_RACT_ELU: for (int64_t i = 0; i < n; i++) v[i] = v[i] > 0.0f ? v[i] : expm1f(v[i]); break;
  case KR_RACT_SOFTSIGN: for (int64_t i = 0; i < n; i++) v[i] = v[i] / (1.0f + fabsf(v[i])); break;
  case KR_RACT_SOFTPLUS:
    for (int64_t i = 0; i < n; i++) v[i] = v[i] > 20.0f ? v[i] : log1pf(expf(v[i]));
    break;
  case KR_RACT_SELU:
    for (int64_t i = 0; i < n; i++) v[i] = v[i] > 0.0f ? SELU_SCALE * v[i] : SELU_SCALE * SELU_ALPHA * expm1f(v[i]);
    break;
  case KR_RACT_EXPONENTIAL: for (int64_t i = 0; i < n; i++) v[i] = expf(v[i]); break;
  }
}

/* d[i] *= f'(x) where y = f(x) */
AI void act_bwd(int code, float *restrict d, const float *restrict y, int64_t n)
{
  switch (code) {
  case KR_RACT_LINEAR: break;
  case KR_RACT_TANH: for (int64_t i = 0; i < n; i++) d[i] *= 1.0f - y[i] * y[i]; break;
  case KR_RACT_SIGMOID: for (int64_t i = 0; i < n; i++) d[i] *= y[i] * (1.0f - y[i]); break;
  case KR_RACT_HARD_SIGMOID:
    for (int64_t i = 0; i < n; i++) d[i] *= (y[i] > 0.0f && y[i] < 1.0f) ? 0.2f : 0.0f;
    break;
  case KR_RACT_RELU: for (int64_t i = 0; i < n; i++) d[i] *= y[i] > 0.0f ? 1.0f : 0.0f; break;
  case KR_RACT_ELU: for (int64_t i = 0; i < n; i++) d[i] *= y[i] > 0.0f ? 1.0f : y[i] + 1.0f; break;
  case KR_RACT_SOFTSIGN:
    for (int64_t i = 0; i < n; i++) {
      float a = 1.0f - fabsf(y[i]);
      d[i] *= a * a;
    }
    break;
  case KR_RACT_SOFTPLUS: for (int64_t i = 0; i < n; i++) d[i] *= -expm1f(-y[i]); break;
  case KR_RACT_SELU:
    for (int64_t i = 0; i < n; i++) d[i] *= y[i] > 0.0f ? SELU_SCALE : y[i] + SELU_SCALE * SELU_ALPHA;
    break;
  case KR_RACT_EXPONENTIAL: for (int64_t i = 0; i < n; i++) d[i] *= y[i]; break;
  }
}

/* ---- small GEMM for the per-step products: C (M, N; ldc) (+)= A (M, K) B (K, N) ---- */

typedef float v8f __attribute__((vector_size(32)));

/* (the baseline copies of these pass v8f in two SSE registers: they are inlined, never called) */
#pragma GCC diagnostic ignored "-Wpsabi"

AI v8f ld8(const float *p)
{
  v8f v;
  memcpy(&v, p, sizeof v);
  return v;
}

AI void st8(float *p, v8f v) { memcpy(p, &v, sizeof v); }

/* The blocks of 4 rows x 2W columns of C (+)= A B for a vector type VT of W
** floats (LD, ST its loads and stores), from column j on; leaves j at the
** first column not done. Expanded in mm (8 floats) and mm_wide (16). */
#define MM_BLOCKS(VT, W, LD, ST)                                                \
  for (; j + 2 * (W) <= N; j += 2 * (W)) {                                     \
    int64_t i = 0;                                                             \
    for (; i + 4 <= M; i += 4) {                                               \
      float *c0 = C + i * ldc + j, *c1 = c0 + ldc, *c2 = c1 + ldc, *c3 = c2 + ldc; \
      VT z = {0};                                                              \
      VT a0 = acc ? LD(c0) : z, b0 = acc ? LD(c0 + (W)) : z;                   \
      VT a1 = acc ? LD(c1) : z, b1 = acc ? LD(c1 + (W)) : z;                   \
      VT a2 = acc ? LD(c2) : z, b2 = acc ? LD(c2 + (W)) : z;                   \
      VT a3 = acc ? LD(c3) : z, b3 = acc ? LD(c3 + (W)) : z;                   \
      const float *x0 = A + i * lda, *x1 = x0 + lda, *x2 = x1 + lda, *x3 = x2 + lda; \
      for (int64_t k = 0; k < K; k++) {                                        \
        VT w0 = LD(B + k * ldb + j), w1 = LD(B + k * ldb + j + (W));           \
        a0 += x0[k] * w0; b0 += x0[k] * w1;                                    \
        a1 += x1[k] * w0; b1 += x1[k] * w1;                                    \
        a2 += x2[k] * w0; b2 += x2[k] * w1;                                    \
        a3 += x3[k] * w0; b3 += x3[k] * w1;                                    \
      }                                                                        \
      ST(c0, a0); ST(c0 + (W), b0);                                            \
      ST(c1, a1); ST(c1 + (W), b1);                                            \
      ST(c2, a2); ST(c2 + (W), b2);                                            \
      ST(c3, a3); ST(c3 + (W), b3);                                            \
    }                                                                          \
    for (; i < M; i++) {                                                       \
      float *c0 = C + i * ldc + j;                                             \
      VT z = {0};                                                              \
      VT a0 = acc ? LD(c0) : z, b0 = acc ? LD(c0 + (W)) : z;                   \
      const float *x0 = A + i * lda;                                           \
      for (int64_t k = 0; k < K; k++) {                                        \
        a0 += x0[k] * LD(B + k * ldb + j);                                     \
        b0 += x0[k] * LD(B + k * ldb + j + (W));                               \
      }                                                                        \
      ST(c0, a0); ST(c0 + (W), b0);                                            \
    }                                                                          \
  }

AI void mm(int64_t M, int64_t N, int64_t K, const float *A, int64_t lda, const float *B, int64_t ldb, float *C,
           int64_t ldc, int acc)
{
  int64_t j = 0;
  MM_BLOCKS(v8f, 8, ld8, st8)
  for (; j < N; j++)   /* the columns left over */
    for (int64_t i = 0; i < M; i++) {
      const float *x0 = A + i * lda;
      float s = acc ? C[i * ldc + j] : 0.0f;
      for (int64_t k = 0; k < K; k++) s += x0[k] * B[k * ldb + j];
      C[i * ldc + j] = s;
    }
}

/* the same with 512-bit vectors, blocks of 4 rows x 32 columns (AVX-512
** only: elsewhere the accumulators would not fit in registers) */
typedef float v16f __attribute__((vector_size(64)));

AI v16f ld16(const float *p)
{
  v16f v;
  memcpy(&v, p, sizeof v);
  return v;
}

AI void st16(float *p, v16f v) { memcpy(p, &v, sizeof v); }

AI void mm_wide(int64_t M, int64_t N, int64_t K, const float *A, int64_t lda, const float *B, int64_t ldb, float *C,
                int64_t ldc, int acc)
{
  int64_t j = 0;
  MM_BLOCKS(v16f, 16, ld16, st16)
  if (j < N) mm(M, N - j, K, A, lda, B + j, ldb, C + j, ldc, acc);
}

/* the products of the per-step code: wide is a constant of each compiled copy */
#define MM(...) (wide ? mm_wide(__VA_ARGS__) : mm(__VA_ARGS__))

/* ---- OpenBLAS for the big products ---- */

static void gemm(int ta, int tb, int64_t M, int64_t N, int64_t K, const float *A, int64_t lda, const float *B,
                 int64_t ldb, float beta, float *C, int64_t ldc)
{
  if (M <= 0 || N <= 0) return;
  if (K <= 0) {
    for (int64_t i = 0; i < M; i++)
      for (int64_t j = 0; j < N; j++) C[i * ldc + j] = beta == 0.0f ? 0.0f : beta * C[i * ldc + j];
    return;
  }
  cblas_sgemm(CblasRowMajor, ta ? CblasTrans : CblasNoTrans, tb ? CblasTrans : CblasNoTrans, (int)M, (int)N, (int)K,
              1.0f, A, (int)lda, B, (int)ldb, beta, C, (int)ldc);
}

/* While a kernel of this file runs, it does the threading itself: OpenBLAS
** runs single-threaded inside it (its own threads would busy-wait for work
** and take the cores from ours, and its thread count would change the
** products' floats: threadpool.h, "Determinism"), and gets its thread count
** back after. Returns the count to give back. */
static int blas_begin(kr_ctx *ctx)
{
  (void)ctx;
  int was = openblas_get_num_threads();
  if (was > 1) openblas_set_num_threads(1);
  return was;
}

static void blas_end(kr_ctx *ctx, int was)
{
  (void)ctx;
  if (was > 1) openblas_set_num_threads(was);
}

static void draw_masks(kr_ctx *ctx, float *m, int64_t n, double rate)
{
  float keep = (float)(1.0 / (1.0 - rate));
  for (int64_t i = 0; i < n; i++) m[i] = kr_rng_uniform(ctx) >= rate ? keep : 0.0f;
}

/* the input time of processing step s */
AI int64_t step_t(const kr_rnn_dims *d, int64_t s) { return (d->flags & KR_RNNF_BACKWARDS) ? d->T - 1 - s : s; }

/* position of step s in a return_sequences output */
AI int64_t out_pos(const kr_rnn_dims *d, int64_t s)
{
  return (d->flags & KR_RNNF_INPUT_ORDER) ? step_t(d, s) : s;
}

static const char *const cell_name[] = {"SimpleRNN", "LSTM", "GRU", "GRU"};

/* the run's batch against a stateful layer's state */
static int check_state_batch(const kr_exec *e, const kr_rnn_dims *d)
{
  if (d->ih0 < 0) return KR_OK;
  int64_t sb = e->xs[d->ih0]->dim[0];
  if (sb != d->B)
    return kr_fail(e->ctx, KR_ESHAPE,
                   "stateful %s: the batch has %lld samples but the layer's state holds %lld (with stateful=true "
                   "every batch must have exactly batch_size samples: give a number of samples that is a "
                   "multiple of the batch size)",
                   cell_name[d->cell & 3], (long long)d->B, (long long)sb);
  return KR_OK;
}

/* ---- threads: row ranges of one kernel run on the kernels' thread pool (threadpool.h) ---- */

#define POOL_MAX 16

typedef void (*rows_fn)(const void *job, int64_t r0, int64_t r1);

typedef struct rows_job {
  rows_fn fn;
  const void *job;
  int64_t rows;
} rows_job;

static void rows_part(void *arg, int c, int G, int slot)
{
  const rows_job *r = arg;
  (void)slot;
  r->fn(r->job, r->rows * c / G, r->rows * (c + 1) / G);
}

/* fn over rows [0, rows) in fixed parts (threadpool.h, "Determinism": their
** number is a function of rows and flops alone, so each product in a part
** is the same for any thread count), each of at least 4 rows and 8 MFLOP
** (below that, waking a thread costs more than it saves), run on up to
** `threads` threads */
static void run_rows(int threads, rows_fn fn, const void *job, int64_t rows, double flops)
{
  int parts = kr_chunk_count(rows, 4, flops, 8e6);
  if (parts > POOL_MAX) parts = POOL_MAX;
  rows_job r = {fn, job, rows};
  kr_parallel_chunks(threads, parts, rows_part, &r);
}

/* 2: AVX-512 (F, VL, BW, DQ) + FMA, 1: AVX2 + FMA, 0: the baseline */
static int cpu_level(void)
{
  if (__builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512vl") && __builtin_cpu_supports("avx512bw") &&
      __builtin_cpu_supports("avx512dq") && __builtin_cpu_supports("fma"))
    return 2;
  return __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma") ? 1 : 0;
}

#define THREE_TARGETS(name, body_fn)                                                                     \
  __attribute__((target("avx512f,avx512vl,avx512bw,avx512dq,fma,prefer-vector-width=512"))) static void \
  name##_avx512(const void *j, int64_t a, int64_t b)                                                   \
  {                                                                                                    \
    body_fn(j, a, b, 1);                                                                               \
  }                                                                                                    \
  __attribute__((target("avx2,fma"))) static void name##_avx2(const void *j, int64_t a, int64_t b)     \
  {                                                                                                    \
    body_fn(j, a, b, 0);                                                                               \
  }                                                                                                    \
  static void name##_base(const void *j, int64_t a, int64_t b) { body_fn(j, a, b, 0); }               \
  static rows_fn name##_pick(void)                                                                     \
  {                                                                                                    \
    int l = cpu_level();                                                                               \
    return l == 2 ? name##_avx512 : l == 1 ? name##_avx2 : name##_base;                                \
  }

/* ---- the LSTM cell with Keras's default activations, in one pass ---- */

/* hard_sigmoid (hard = 1) or sigmoid, and the derivative from the output */
AI float ract1(float v, int hard)
{
  if (hard) {
    float y = 0.2f * v + 0.5f;
    return y < 0.0f ? 0.0f : y > 1.0f ? 1.0f : y;
  }
  return fsigm(v);
}

AI float dract1(float y, int hard) { return hard ? ((y > 0.0f && y < 1.0f) ? 0.2f : 0.0f) : y * (1.0f - y); }

/* row: i, f, c, o pre-activations (bias not yet added) -> activated gates;
** c1 = f c0 + i g, tc = tanh(c1), h1 = o tc */
AI void lstm_cell_fwd(float *restrict row, const float *restrict b, const float *restrict c0, float *restrict c1,
                      float *restrict tc, float *restrict h1, int64_t u, int hard)
{
  for (int64_t j = 0; j < u; j++) {
    float ig = ract1(row[j] + b[j], hard), fg = ract1(row[u + j] + b[u + j], hard);
    float gg = ftanh(row[2 * u + j] + b[2 * u + j]), og = ract1(row[3 * u + j] + b[3 * u + j], hard);
    float c = fg * c0[j] + ig * gg, t = ftanh(c);
    row[j] = ig;
    row[u + j] = fg;
    row[2 * u + j] = gg;
    row[3 * u + j] = og;
    c1[j] = c;
    tc[j] = t;
    h1[j] = og * t;
  }
}

/* the gates' pre-activation gradients into dp; dc becomes the gradient of c0, dh zero */
AI void lstm_cell_bwd(float *restrict dp, const float *restrict row, const float *restrict c0,
                      const float *restrict tc, float *restrict dh, float *restrict dc, int64_t u, int hard)
{
  for (int64_t j = 0; j < u; j++) {
    float ig = row[j], fg = row[u + j], gg = row[2 * u + j], og = row[3 * u + j], t = tc[j];
    float dcn = dc[j] + dh[j] * og * (1.0f - t * t);
    dp[j] = dcn * gg * dract1(ig, hard);
    dp[u + j] = dcn * c0[j] * dract1(fg, hard);
    dp[2 * u + j] = dcn * ig * (1.0f - gg * gg);
    dp[3 * u + j] = dh[j] * t * dract1(og, hard);
    dc[j] = dcn * fg;
    dh[j] = 0.0f;
  }
}

/* ---- forward ---- */

typedef struct fjob {
  kr_rnn_dims d;
  const float *x, *W, *U, *b0, *b1, *mask, *DX, *DH;
  float *P, *Hin, *Hfin, *Cin, *Cfin, *TC, *RH, *y, *tmpG, *tmp, *Xm;
} fjob;

AI void fwd_body(const void *jv, int64_t r0, int64_t r1, int wide)
{
  const fjob *J = jv;
  const kr_rnn_dims *d = &J->d;
  const int64_t B = d->B, T = d->T, u = d->u, G = d->G, Gu = d->Gu, nr = r1 - r0;
  const int lstm = d->cell == KR_RNN_LSTM, gru = d->cell == KR_RNN_GRU, gra = d->cell == KR_RNN_GRU_RA;
  const int64_t ldP = T * Gu, ldH = T * u;
  const float *U = J->U, *b0 = J->b0, *b1 = J->b1, *mask = J->mask, *DH = J->DH;
  float *tmpG = J->tmpG + r0 * Gu, *tmp = J->tmp + r0 * u;
  int retseq = (d->flags & KR_RNNF_RETSEQ) != 0;
  int fused = d->act == KR_RACT_TANH && (d->ract == KR_RACT_HARD_SIGMOID || d->ract == KR_RACT_SIGMOID);
  if (nr <= 0) return;
  /* input projection of these rows' steps: P = x W (per gate with its dropout mask) */
  {
    const int64_t F = d->F;
    const float *xr = J->x + r0 * T * F;
    float *Pr = J->P + r0 * ldP;
    if (J->DX) {
      float *Xm = J->Xm + r0 * T * F;
      for (int64_t g = 0; g < G; g++) {
        for (int64_t i = 0; i < nr; i++) {
          const float *m = J->DX + (g * B + r0 + i) * F;
          for (int64_t t = 0; t < T; t++) {
            const float *xv = xr + (i * T + t) * F;
            float *o = Xm + (i * T + t) * F;
            for (int64_t f = 0; f < F; f++) o[f] = xv[f] * m[f];
          }
        }
        gemm(0, 0, nr * T, u, F, Xm, F, J->W + g * u, Gu, 0.0f, Pr + g * u, Gu);
      }
    } else {
      gemm(0, 0, nr * T, Gu, F, xr, F, J->W, Gu, 0.0f, Pr, Gu);
    }
  }
  for (int64_t s = 0; s < T; s++) {
    int64_t t = step_t(d, s);
    int last = s == T - 1;
    int64_t tn = last ? 0 : step_t(d, s + 1);
    float *Pt = J->P + r0 * ldP + t * Gu;
    const float *hp = J->Hin + r0 * ldH + t * u;                      /* row i at hp + i*ldH */
    int64_t ldn = last ? u : ldH;
    float *hn = last ? J->Hfin + r0 * u : J->Hin + r0 * ldH + tn * u; /* row i at hn + i*ldn */
    const float *cp = lstm ? J->Cin + r0 * ldH + t * u : NULL;
    float *cn = lstm ? (last ? J->Cfin + r0 * u : J->Cin + r0 * ldH + tn * u) : NULL;
    float *tc = lstm ? J->TC + r0 * ldH + t * u : NULL;

    /* recurrent products */
    int64_t ng = gru ? 2 : G;   /* the GRU's h gate waits for r */
    float *dst = gra ? tmpG : Pt;
    int64_t ldd = gra ? Gu : ldP;
    int acc = !gra;
    if (DH) {
      for (int64_t g = 0; g < ng; g++) {
        for (int64_t i = 0; i < nr; i++) {
          const float *m = DH + (g * B + r0 + i) * u, *h = hp + i * ldH;
          for (int64_t j = 0; j < u; j++) tmp[i * u + j] = h[j] * m[j];
        }
        MM(nr, u, u, tmp, u, U + g * u, Gu, dst + g * u, ldd, acc);
      }
    } else {
      MM(nr, ng * u, u, hp, ldH, U, Gu, dst, ldd, acc);
    }

    /* gate math, row by row */
    for (int64_t i = 0; i < nr; i++) {
      int64_t b = r0 + i;
      const float *h0 = hp + i * ldH;
      float *h1 = hn + i * ldn;
      if (mask && mask[b * T + t] == 0.0f) {
        memcpy(h1, h0, (size_t)u * sizeof(float));
        if (lstm) memcpy(cn + i * ldn, cp + i * ldH, (size_t)u * sizeof(float));
        continue;
      }
      float *row = Pt + i * ldP;
      if (d->cell == KR_RNN_SIMPLE) {
        for (int64_t j = 0; j < u; j++) row[j] += b0[j];
        act_fwd(d->act, row, u);
        memcpy(h1, row, (size_t)u * sizeof(float));
      } else if (lstm && fused) {
        const float *c0 = cp + i * ldH;
        float *c1 = cn + i * ldn, *tci = tc + i * ldH;
        if (d->ract == KR_RACT_HARD_SIGMOID) lstm_cell_fwd(row, b0, c0, c1, tci, h1, u, 1);
        else lstm_cell_fwd(row, b0, c0, c1, tci, h1, u, 0);
      } else if (lstm) {
        for (int64_t j = 0; j < Gu; j++) row[j] += b0[j];
        act_fwd(d->ract, row, 2 * u);
        act_fwd(d->act, row + 2 * u, u);
        act_fwd(d->ract, row + 3 * u, u);
        const float *c0 = cp + i * ldH;
        float *c1 = cn + i * ldn, *tci = tc + i * ldH;
        for (int64_t j = 0; j < u; j++) c1[j] = row[u + j] * c0[j] + row[j] * row[2 * u + j];
        memcpy(tci, c1, (size_t)u * sizeof(float));
        act_fwd(d->act, tci, u);
        for (int64_t j = 0; j < u; j++) h1[j] = row[3 * u + j] * tci[j];
      } else if (gru) {
        for (int64_t j = 0; j < 2 * u; j++) row[j] += b0[j];
        act_fwd(d->ract, row, 2 * u);
      } else {   /* GRU, reset after */
        const float *R = tmpG + i * Gu;
        float *rh = J->RH + b * ldH + t * u;
        for (int64_t j = 0; j < 2 * u; j++) row[j] += b0[j] + R[j] + b1[j];
        act_fwd(d->ract, row, 2 * u);
        for (int64_t j = 0; j < u; j++) {
          rh[j] = R[2 * u + j] + b1[2 * u + j];
          row[2 * u + j] += b0[2 * u + j] + row[u + j] * rh[j];
        }
        act_fwd(d->act, row + 2 * u, u);
        for (int64_t j = 0; j < u; j++) h1[j] = row[j] * h0[j] + (1.0f - row[j]) * row[2 * u + j];
      }
    }
    if (gru) {
      /* h gate: (r * h_prev) U_h, then the mix */
      for (int64_t i = 0; i < nr; i++) {
        const float *h0 = hp + i * ldH, *row = Pt + i * ldP;
        const float *m = DH ? DH + (2 * B + r0 + i) * u : NULL;
        for (int64_t j = 0; j < u; j++) tmp[i * u + j] = row[u + j] * h0[j] * (m ? m[j] : 1.0f);
      }
      MM(nr, u, u, tmp, u, U + 2 * u, Gu, Pt + 2 * u, ldP, 1);
      for (int64_t i = 0; i < nr; i++) {
        if (mask && mask[(r0 + i) * T + t] == 0.0f) continue;
        float *row = Pt + i * ldP;
        const float *h0 = hp + i * ldH;
        float *h1 = hn + i * ldn;
        for (int64_t j = 0; j < u; j++) row[2 * u + j] += b0[2 * u + j];
        act_fwd(d->act, row + 2 * u, u);
        for (int64_t j = 0; j < u; j++) h1[j] = row[j] * h0[j] + (1.0f - row[j]) * row[2 * u + j];
      }
    }

    /* outputs */
    if (retseq) {
      int64_t pos = out_pos(d, s), prev = s > 0 ? out_pos(d, s - 1) : -1;
      for (int64_t i = 0; i < nr; i++) {
        int64_t b = r0 + i;
        float *o = J->y + (b * T + pos) * u;
        if (mask && mask[b * T + t] == 0.0f) {
          if (prev >= 0) memcpy(o, J->y + (b * T + prev) * u, (size_t)u * sizeof(float));
        } else {
          memcpy(o, hn + i * ldn, (size_t)u * sizeof(float));
        }
      }
    } else if (mask) {
      for (int64_t i = 0; i < nr; i++)
        if (mask[(r0 + i) * T + t] != 0.0f) memcpy(J->y + (r0 + i) * u, hn + i * ldn, (size_t)u * sizeof(float));
    }
  }
}

THREE_TARGETS(fwd_rows, fwd_body)

int kr_k_rnn(const kr_exec *e)
{
  kr_rnn_dims d;
  kr_rnn_layout(e->node, e->xs[0]->dim[0], &d);
  if (check_state_batch(e, &d) != KR_OK) return kr_errcode(e->ctx);
  const int64_t B = d.B, T = d.T, F = d.F, u = d.u, G = d.G, Gu = d.Gu;
  const int lstm = d.cell == KR_RNN_LSTM, gra = d.cell == KR_RNN_GRU_RA;
  float *aux = e->aux;
  int drop = e->training && d.dropout > 0, rdrop = e->training && d.rdropout > 0;
  fjob J;
  J.d = d;
  J.U = e->x[2];
  J.b0 = e->x[3];
  J.b1 = gra ? e->x[3] + Gu : NULL;
  J.mask = d.imask >= 0 ? e->x[d.imask] : NULL;
  J.P = aux + d.oP;
  J.Hin = aux + d.oHin;
  J.Hfin = aux + d.oHfin;
  J.Cin = lstm ? aux + d.oCin : NULL;
  J.Cfin = lstm ? aux + d.oCfin : NULL;
  J.TC = lstm ? aux + d.oTC : NULL;
  J.RH = gra ? aux + d.oRH : NULL;
  J.DH = rdrop ? aux + d.oDH : NULL;
  J.y = e->y;
  J.tmpG = e->scratch;
  J.tmp = J.tmpG + B * Gu;
  J.Xm = J.tmp + B * u;
  J.x = e->x[0];
  J.W = e->x[1];
  J.DX = drop ? aux + d.oDX : NULL;
  const int64_t ldH = T * u;
  int retseq = (d.flags & KR_RNNF_RETSEQ) != 0;
  if (drop) draw_masks(e->ctx, aux + d.oDX, G * B * F, d.dropout);
  if (rdrop) draw_masks(e->ctx, aux + d.oDH, G * B * u, d.rdropout);

  /* initial state into Hin[:, t(0)] */
  int64_t t0 = step_t(&d, 0);
  for (int64_t b = 0; b < B; b++) {
    float *h = J.Hin + b * ldH + t0 * u;
    if (d.ih0 >= 0) memcpy(h, e->x[d.ih0] + b * u, (size_t)u * sizeof(float));
    else memset(h, 0, (size_t)u * sizeof(float));
    if (lstm) {
      float *c = J.Cin + b * ldH + t0 * u;
      if (d.ic0 >= 0) memcpy(c, e->x[d.ic0] + b * u, (size_t)u * sizeof(float));
      else memset(c, 0, (size_t)u * sizeof(float));
    }
  }
  if (J.mask) {   /* the carried output starts at zeros */
    if (retseq) memset(J.y, 0, (size_t)(B * T * u) * sizeof(float));
    else memset(J.y, 0, (size_t)(B * u) * sizeof(float));
  }

  int was = blas_begin(e->ctx);
  run_rows(kr_get_num_threads(e->ctx), fwd_rows_pick(), &J, B, 2.0 * (double)(B * T * (F + u)) * (double)Gu);
  blas_end(e->ctx, was);

  if (!retseq && !J.mask) memcpy(J.y, J.Hfin, (size_t)(B * u) * sizeof(float));
  /* a stateful layer keeps its final state for the next batch */
  if (d.flags & KR_RNNF_STATEFUL) {
    memcpy((float *)e->x[d.ih0], J.Hfin, (size_t)(B * u) * sizeof(float));
    if (lstm) memcpy((float *)e->x[d.ic0], J.Cfin, (size_t)(B * u) * sizeof(float));
  }
  return KR_OK;
}

/* (rnn, rnn inputs...) -> its final h or c */
int kr_k_rnn_state(const kr_exec *e)
{
  kr_rnn_dims d;
  kr_rnn_layout(e->node->in[0], e->xs[1]->dim[0], &d);
  const float *src = e->xaux[0] + (e->node->attr.i[KR_RNNA_WHICH] == 1 ? d.oCfin : d.oHfin);
  memcpy(e->y, src, (size_t)(d.B * d.u) * sizeof(float));
  return KR_OK;
}

/* ---- backward through time ---- */

typedef struct bjob {
  kr_rnn_dims d;
  int mode;
  const float *g, *UT, *mask, *P, *Hin, *Cin, *TC, *RH, *DH, *W, *DX;
  float *dP, *dR, *dh, *dc, *dcarry, *tmp, *dx, *big;
} bjob;

AI void bwd_body(const void *jv, int64_t r0, int64_t r1, int wide)
{
  const bjob *J = jv;
  const kr_rnn_dims *d = &J->d;
  const int64_t B = d->B, T = d->T, u = d->u, G = d->G, Gu = d->Gu, nr = r1 - r0;
  const int lstm = d->cell == KR_RNN_LSTM, gru = d->cell == KR_RNN_GRU, gra = d->cell == KR_RNN_GRU_RA;
  const int64_t ldP = T * Gu, ldH = T * u;
  const float *g = J->g, *UT = J->UT, *mask = J->mask, *DH = J->DH;
  float *dh = J->dh + r0 * u, *dc = J->dc + r0 * u, *dcarry = J->dcarry + r0 * u, *tmp = J->tmp + r0 * Gu;
  int retseq = (d->flags & KR_RNNF_RETSEQ) != 0;
  int fused = d->act == KR_RACT_TANH && (d->ract == KR_RACT_HARD_SIGMOID || d->ract == KR_RACT_SIGMOID);
  if (nr <= 0) return;
  for (int64_t s = T - 1; s >= 0; s--) {
    int64_t t = step_t(d, s);
    int last = s == T - 1;
    /* the output's gradient at this step */
    if (J->mode == 0 && (retseq || last)) {
      int64_t pos = out_pos(d, s);
      for (int64_t i = 0; i < nr; i++) {
        int64_t b = r0 + i;
        const float *gr = retseq ? g + (b * T + pos) * u : g + b * u;
        float *dhb = dh + i * u;
        if (mask) {
          float *cb = dcarry + i * u;
          for (int64_t j = 0; j < u; j++) cb[j] += gr[j];
        } else {
          for (int64_t j = 0; j < u; j++) dhb[j] += gr[j];
        }
      }
    }
    if (J->mode == 0 && mask) {
      for (int64_t i = 0; i < nr; i++) {
        if (mask[(r0 + i) * T + t] == 0.0f) continue;
        float *cb = dcarry + i * u, *dhb = dh + i * u;
        for (int64_t j = 0; j < u; j++) dhb[j] += cb[j];
        memset(cb, 0, (size_t)u * sizeof(float));
      }
    }
    const float *Pt = J->P + r0 * ldP + t * Gu;
    float *dPt = J->dP + r0 * ldP + t * Gu, *dRt = J->dR + r0 * ldP + t * Gu;
    const float *hp = J->Hin + r0 * ldH + t * u;
    /* cell backward, row by row; masked rows pass dh, dc through */
    for (int64_t i = 0; i < nr; i++) {
      int64_t b = r0 + i;
      float *dprow = dPt + i * ldP;
      if (mask && mask[b * T + t] == 0.0f) {
        memset(dprow, 0, (size_t)Gu * sizeof(float));
        if (gra) memset(dRt + i * ldP, 0, (size_t)Gu * sizeof(float));
        continue;
      }
      const float *row = Pt + i * ldP;
      float *dhb = dh + i * u;
      if (d->cell == KR_RNN_SIMPLE) {
        memcpy(dprow, dhb, (size_t)u * sizeof(float));
        act_bwd(d->act, dprow, row, u);
        memset(dhb, 0, (size_t)u * sizeof(float));
      } else if (lstm && fused) {
        const float *c0 = J->Cin + b * ldH + t * u, *tc = J->TC + b * ldH + t * u;
        if (d->ract == KR_RACT_HARD_SIGMOID) lstm_cell_bwd(dprow, row, c0, tc, dhb, dc + i * u, u, 1);
        else lstm_cell_bwd(dprow, row, c0, tc, dhb, dc + i * u, u, 0);
      } else if (lstm) {
        const float *c0 = J->Cin + b * ldH + t * u;
        const float *tc = J->TC + b * ldH + t * u;   /* act(c) of this step */
        float *dcb = dc + i * u;
        float *fac = tmp + i * Gu;
        for (int64_t j = 0; j < u; j++) fac[j] = dhb[j] * row[3 * u + j];
        act_bwd(d->act, fac, tc, u);
        for (int64_t j = 0; j < u; j++) {
          float dcn = dcb[j] + fac[j];
          dprow[j] = dcn * row[2 * u + j];             /* di */
          dprow[u + j] = dcn * c0[j];                  /* df */
          dprow[2 * u + j] = dcn * row[j];             /* dg */
          dprow[3 * u + j] = dhb[j] * tc[j];           /* do */
          dcb[j] = dcn * row[u + j];
        }
        act_bwd(d->ract, dprow, row, 2 * u);
        act_bwd(d->act, dprow + 2 * u, row + 2 * u, u);
        act_bwd(d->ract, dprow + 3 * u, row + 3 * u, u);
        memset(dhb, 0, (size_t)u * sizeof(float));
      } else {
        const float *h0 = hp + i * ldH;
        for (int64_t j = 0; j < u; j++) {
          float z = row[j], hh = row[2 * u + j], dn = dhb[j];
          dprow[j] = dn * (h0[j] - hh);          /* dz */
          dprow[2 * u + j] = dn * (1.0f - z);    /* dhh */
          dhb[j] = dn * z;                       /* straight to h_prev */
        }
        act_bwd(d->ract, dprow, row, u);
        act_bwd(d->act, dprow + 2 * u, row + 2 * u, u);
        if (gra) {
          const float *rh = J->RH + b * ldH + t * u;
          float *drrow = dRt + i * ldP;
          for (int64_t j = 0; j < u; j++) {
            drrow[2 * u + j] = dprow[2 * u + j] * row[u + j];
            dprow[u + j] = dprow[2 * u + j] * rh[j];
          }
          act_bwd(d->ract, dprow + u, row + u, u);
          memcpy(drrow, dprow, (size_t)(2 * u) * sizeof(float));
        }
      }
    }
    /* into h_prev through U */
    if (gru) {
      /* d(r * h) = dP_h U_h^T, then dr and the h_prev share */
      MM(nr, u, u, dPt + 2 * u, ldP, UT + 2 * u * u, u, tmp, u, 0);
      for (int64_t i = 0; i < nr; i++) {
        int64_t b = r0 + i;
        if (mask && mask[b * T + t] == 0.0f) continue;
        const float *row = Pt + i * ldP, *h0 = hp + i * ldH;
        float *dprow = dPt + i * ldP, *dhb = dh + i * u, *drh = tmp + i * u;
        const float *m = DH ? DH + (2 * B + b) * u : NULL;
        for (int64_t j = 0; j < u; j++) {
          float mj = m ? m[j] : 1.0f;
          dprow[u + j] = drh[j] * h0[j] * mj;
          dhb[j] += drh[j] * row[u + j] * mj;
        }
        act_bwd(d->ract, dprow + u, row + u, u);
      }
    }
    const float *src = gra ? dRt : dPt;
    int64_t ng = gru ? 2 : G;
    if (DH) {
      for (int64_t k = 0; k < ng; k++) {
        MM(nr, u, u, src + k * u, ldP, UT + k * u * u, u, tmp, u, 0);
        for (int64_t i = 0; i < nr; i++) {
          if (mask && mask[(r0 + i) * T + t] == 0.0f) continue;
          const float *m = DH + (k * B + r0 + i) * u;
          for (int64_t j = 0; j < u; j++) dh[i * u + j] += tmp[i * u + j] * m[j];
        }
      }
    } else {
      MM(nr, u, ng * u, src, ldP, UT, u, dh, u, 1);
    }
  }
  /* dx of these rows: dP W^T (per gate with its dropout mask) */
  {
    const int64_t F = d->F, BW = F > u ? F : u;
    const float *dPr = J->dP + r0 * ldP;
    float *dxr = J->dx + r0 * T * F;
    if (J->DX) {
      float *bg = J->big + r0 * T * BW;
      memset(dxr, 0, (size_t)(nr * T * F) * sizeof(float));
      for (int64_t k = 0; k < G; k++) {
        gemm(0, 1, nr * T, F, u, dPr + k * u, Gu, J->W + k * u, Gu, 0.0f, bg, F);
        for (int64_t i = 0; i < nr; i++) {
          const float *m = J->DX + (k * B + r0 + i) * F;
          for (int64_t t = 0; t < T; t++) {
            const float *sv = bg + (i * T + t) * F;
            float *o = dxr + (i * T + t) * F;
            for (int64_t f = 0; f < F; f++) o[f] += sv[f] * m[f];
          }
        }
      }
    } else {
      gemm(0, 1, nr * T, F, Gu, dPr, Gu, J->W, Gu, 0.0f, dxr, F);
    }
  }
}

THREE_TARGETS(bwd_rows, bwd_body)

/* the weight gradients, by column ranges [c0, c1) of the gates: dW = x^T dP,
** dU = Hin^T dP (dR for the GRU with reset_after; (r * Hin)^T dP_h for the
** h gate of the other GRU), db = the column sums */
typedef struct cjob {
  kr_rnn_dims d;
  const float *x, *Hin, *dP, *dR, *RHm;
  float *dW, *dU, *db;
} cjob;

static void cols_fn(const void *jv, int64_t c0, int64_t c1)
{
  const cjob *J = jv;
  const kr_rnn_dims *d = &J->d;
  const int64_t BT = d->B * d->T, F = d->F, u = d->u, Gu = d->Gu, nc = c1 - c0;
  const int gru = d->cell == KR_RNN_GRU, gra = d->cell == KR_RNN_GRU_RA;
  if (nc <= 0) return;
  gemm(1, 0, F, nc, BT, J->x, F, J->dP + c0, Gu, 0.0f, J->dW + c0, Gu);
  const float *dsrc = gra ? J->dR : J->dP;
  if (gru) {
    int64_t a1 = c1 < 2 * u ? c1 : 2 * u;
    if (a1 > c0) gemm(1, 0, u, a1 - c0, BT, J->Hin, u, dsrc + c0, Gu, 0.0f, J->dU + c0, Gu);
    int64_t b0 = c0 > 2 * u ? c0 : 2 * u;
    if (c1 > b0) gemm(1, 0, u, c1 - b0, BT, J->RHm, u, dsrc + b0, Gu, 0.0f, J->dU + b0, Gu);
  } else {
    gemm(1, 0, u, nc, BT, J->Hin, u, dsrc + c0, Gu, 0.0f, J->dU + c0, Gu);
  }
  for (int k = 0; k < (gra ? 2 : 1); k++) {
    const float *src = k ? J->dR : J->dP;
    float *o = J->db + k * Gu + c0;
    memset(o, 0, (size_t)nc * sizeof(float));
    for (int64_t i = 0; i < BT; i++) {
      const float *rw = src + i * Gu + c0;
      for (int64_t j = 0; j < nc; j++) o[j] += rw[j];
    }
  }
}

int kr_k_rnn_bptt(const kr_exec *e)
{
  const kr_node *r = e->node->in[0];
  kr_rnn_dims d;
  kr_rnn_layout(r, e->xs[2]->dim[0], &d);
  const int64_t B = d.B, T = d.T, F = d.F, u = d.u, G = d.G, Gu = d.Gu;
  const int lstm = d.cell == KR_RNN_LSTM, gru = d.cell == KR_RNN_GRU, gra = d.cell == KR_RNN_GRU_RA;
  const int mode = (int)e->node->attr.i[KR_RNNA_WHICH];
  const float *const *in = e->x + 2;   /* the rnn's inputs */
  const float *x = in[0], *W = in[1], *U = in[2];
  const float *raux = e->xaux[0];
  int drop = e->training && d.dropout > 0, rdrop = e->training && d.rdropout > 0;
  const float *DX = drop ? raux + d.oDX : NULL;
  float *gaux = e->aux;
  float *dW = gaux + d.gW, *dU = gaux + d.gU, *db = gaux + d.gb, *dh0 = gaux + d.gh0, *dc0 = gaux + d.gc0;
  bjob J;
  J.d = d;
  J.mode = mode;
  J.g = e->x[1];
  J.mask = d.imask >= 0 ? in[d.imask] : NULL;
  J.P = raux + d.oP;
  J.Hin = raux + d.oHin;
  J.Cin = lstm ? raux + d.oCin : NULL;
  J.TC = lstm ? raux + d.oTC : NULL;
  J.RH = gra ? raux + d.oRH : NULL;
  J.DH = rdrop ? raux + d.oDH : NULL;
  J.dP = e->scratch;
  J.dR = gra ? J.dP + B * T * Gu : J.dP;
  J.dh = J.dP + B * T * Gu * (gra ? 2 : 1);
  J.dc = J.dh + B * u;
  J.dcarry = J.dc + B * u;
  J.tmp = J.dcarry + B * u;
  float *UT = J.tmp + B * Gu;
  float *big = UT + Gu * u;   /* (B*T, max(F, u)) */
  J.UT = UT;
  const float *P = J.P, *Hin = J.Hin, *dP = J.dP, *dR = J.dR;

  /* U^T (Gu, u), for the products into h_prev */
  for (int64_t k = 0; k < u; k++)
    for (int64_t j = 0; j < Gu; j++) UT[j * u + k] = U[k * Gu + j];
  memset(J.dh, 0, (size_t)(3 * B * u) * sizeof(float));
  if (mode == 1) memcpy(J.dh, J.g, (size_t)(B * u) * sizeof(float));
  if (mode == 2) memcpy(J.dc, J.g, (size_t)(B * u) * sizeof(float));

  J.W = W;
  J.DX = DX;
  J.dx = e->y;
  J.big = big;
  int threads = kr_get_num_threads(e->ctx);
  const int64_t BT = B * T;
  int was = blas_begin(e->ctx);
  run_rows(threads, bwd_rows_pick(), &J, B, 2.0 * (double)(BT * (F + u)) * (double)Gu);

  memcpy(dh0, J.dh, (size_t)(B * u) * sizeof(float));
  memcpy(dc0, J.dc, (size_t)(B * u) * sizeof(float));

  /* the weights' gradients */
  const float *dsrc = gra ? dR : dP;
  if (!drop && !rdrop) {
    cjob C = {d, x, Hin, dP, dR, NULL, dW, dU, db};
    if (gru) {   /* r * Hin for the h gate */
      for (int64_t i = 0; i < BT; i++) {
        const float *h = Hin + i * u, *rr = P + i * Gu + u;
        float *o = big + i * u;
        for (int64_t j = 0; j < u; j++) o[j] = h[j] * rr[j];
      }
      C.RHm = big;
    }
    run_rows(threads, cols_fn, &C, Gu, 2.0 * (double)(BT * (F + u)) * (double)Gu);
    blas_end(e->ctx, was);
    return KR_OK;
  }
  /* under dropout, per gate with the masks */
  for (int64_t k = 0; k < G; k++) {
    if (drop) {
      for (int64_t b = 0; b < B; b++)
        for (int64_t t = 0; t < T; t++) {
          const float *m = DX + (k * B + b) * F, *xr = x + (b * T + t) * F;
          float *o = big + (b * T + t) * F;
          for (int64_t f = 0; f < F; f++) o[f] = xr[f] * m[f];
        }
      gemm(1, 0, F, u, BT, big, F, dP + k * u, Gu, 0.0f, dW + k * u, Gu);
    } else {
      gemm(1, 0, F, u, BT, x, F, dP + k * u, Gu, 0.0f, dW + k * u, Gu);
    }
  }
  for (int64_t k = 0; k < G; k++) {
    int hgate = gru && k == 2;
    for (int64_t b = 0; b < B; b++)
      for (int64_t t = 0; t < T; t++) {
        const float *h = Hin + (b * T + t) * u;
        const float *m = rdrop ? J.DH + (k * B + b) * u : NULL;
        const float *rr = hgate ? P + (b * T + t) * Gu + u : NULL;
        float *o = big + (b * T + t) * u;
        for (int64_t j = 0; j < u; j++) o[j] = h[j] * (m ? m[j] : 1.0f) * (rr ? rr[j] : 1.0f);
      }
    gemm(1, 0, u, u, BT, big, u, dsrc + k * u, Gu, 0.0f, dU + k * u, Gu);
  }
  /* biases: column sums */
  int nb = gra ? 2 : 1;
  for (int k = 0; k < nb; k++) {
    const float *src = k ? dR : dP;
    float *o = db + k * Gu;
    memset(o, 0, (size_t)Gu * sizeof(float));
    for (int64_t i = 0; i < BT; i++) {
      const float *rw = src + i * Gu;
      for (int64_t j = 0; j < Gu; j++) o[j] += rw[j];
    }
  }
  blas_end(e->ctx, was);
  return KR_OK;
}

/* (rnn_grad) -> one of dW, dU, db, dh0, dc0 */
int kr_k_rnn_part(const kr_exec *e)
{
  const kr_node *g = e->node->in[0];
  kr_rnn_dims d;
  kr_rnn_layout(g->in[0], e->xs[0]->dim[0], &d);
  size_t off[5] = {d.gW, d.gU, d.gb, d.gh0, d.gc0};
  memcpy(e->y, e->xaux[0] + off[e->node->attr.i[KR_RNNA_PART]], (size_t)kr_numel(e->ys) * sizeof(float));
  return KR_OK;
}
