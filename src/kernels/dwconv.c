/*
** dwconv.c -- the depthwise convolution's kernels (depthwise_conv2d and its
** input and kernel gradients; ops and shapes: ops_conv.h, ops_dwconv.c).
** channels_last: x (N, H, W, C), w (KH, KW, C, M) read as KH*KW rows of C*M
** floats, y (N, Ho, Wo, C*M) with channel j = c*M + m: a kernel row and an
** output pixel share one index j, so every loop below runs over j (or c for
** M = 1) with unit stride and vectorizes; GCC builds each loop for AVX-512,
** AVX2 and plain x86-64 (VEC_CLONES) and picks one at load time. Direct
** loops, no im2col: each output is KH*KW multiply-adds per channel, too
** little work to gain from a matrix product.
**
** Threads: forward and input gradient split the N*Ho (N*H) rows they write
** among the workers; every output is computed by one worker in a fixed
** order, so the result does not depend on the thread count. The kernel
** gradient sums over all samples: the samples are cut into G =
** min(N, KR_DWCONV_GROUPS) fixed groups (not one per worker), each group's
** partial sum is a slot of the scratch, and the slots are added in order:
** the same result for 1 or 16 threads.
** Kernels never allocate.
*/
#include "kernels.h"
#include "../ops_conv.h"
#include "threadpool.h"

#include <string.h>

#include "conv_geom.h"

#define PAR_MIN_WORK 400000   /* multiply-adds below which one worker runs */

typedef kr_cgeom dgeom;

static int workers(const kr_exec *e, int64_t items, double work)
{
  return kr_conv_workers(e, items, work, KR_CONV_MAX_SLOTS);
}

typedef struct dw_job {
  dgeom g;
  const float *a, *b;   /* forward: x, w; input gradient: dy, w; kernel gradient: dy, x */
  float *out, *scratch;
  int64_t groups;
  int reg;              /* 1: the AVX-512 register kernels (KR_CONV_ALGO_DIRECT), 0: the loops */
} dw_job;

/* acc[j] += x[j / M] * w[j] for j < C*M */
static inline void mac_row(float *restrict acc, const float *restrict x, const float *restrict w, int64_t C, int64_t M)
{
  if (M == 1) {
    for (int64_t c = 0; c < C; c++) acc[c] += x[c] * w[c];
    return;
  }
  for (int64_t c = 0; c < C; c++) {
    float v = x[c];
    float *restrict a = acc + c * M;
    const float *restrict wr = w + c * M;
    for (int64_t m = 0; m < M; m++) a[m] += v * wr[m];
  }
}

/* ---- forward: y[n, oh, ow, j] = sum over kh, kw of x[n, ih, iw, j / M] * w[kh, kw, j] ---- */

/* M = 1 and C a multiple of VB: each output pixel's channels in blocks of VB
** summed over every tap in a local block the compiler keeps in registers,
** stored once (the general loop reads and writes the output at every tap) */
#define VB 16

VEC_CLONES static void fwd_rows_vb(const dw_job *j, int64_t r0, int64_t r1)
{
  const dgeom *g = &j->g;
  int64_t C = g->C;
  for (int64_t r = r0; r < r1; r++) {
    int64_t n = r / g->Ho, oh = r % g->Ho;
    float *yrow = j->out + r * g->Wo * C;
    int64_t kh0 = 0, kh1 = g->KH;
    while (kh0 < kh1 && oh * g->sh - g->pt + kh0 * g->dh < 0) kh0++;
    while (kh1 > kh0 && oh * g->sh - g->pt + (kh1 - 1) * g->dh >= g->H) kh1--;
    for (int64_t ow = 0; ow < g->Wo; ow++) {
      int64_t iw0 = ow * g->sw - g->pl, kw0 = 0, kw1 = g->KW;
      while (kw0 < kw1 && iw0 + kw0 * g->dw < 0) kw0++;
      while (kw1 > kw0 && iw0 + (kw1 - 1) * g->dw >= g->W) kw1--;
      for (int64_t c0 = 0; c0 < C; c0 += VB) {
        float acc[VB] = {0};
        for (int64_t kh = kh0; kh < kh1; kh++) {
          const float *xr = j->a + ((n * g->H + oh * g->sh - g->pt + kh * g->dh) * g->W + iw0) * C + c0;
          const float *wr = j->b + kh * g->KW * C + c0;
          for (int64_t kw = kw0; kw < kw1; kw++) {
            const float *restrict xp = xr + kw * g->dw * C, *restrict wp = wr + kw * C;
            for (int c = 0; c < VB; c++) acc[c] += xp[c] * wp[c];
          }
        }
        memcpy(yrow + ow * C + c0, acc, sizeof acc);
      }
    }
  }
}

/* ---- AVX-512 (M = 1, C a multiple of 16; picked at run time) ----
** Output rows as in fwd_rows_vb, but the columns whose taps all fall inside
** the input row run in blocks of PB pixels: PB accumulators (16 channels
** each) in registers, each tap's weights loaded once per block and used PB
** times, no bounds checks. The pixels at the padded edges (and the last
** columns that do not fill a block) run one at a time, skipping the taps
** outside. Every output is the same sum, over the taps in the order (kh, kw),
** by one FMA each, whichever path computes it, so the split over workers
** does not change it. */
#if defined(__GNUC__) && !defined(__clang__) && defined(__x86_64__)
#include <immintrin.h>
#define HAVE_DW512 1
#define PB 8
#define T512 __attribute__((target("avx512f,avx2,fma")))

static int cpu_has_avx512(void) { return __builtin_cpu_supports("avx512f") != 0; }

/* columns [*lo, *hi) of an output row whose taps all fall inside the input row */
static void inside_cols(const dgeom *g, int64_t *lo, int64_t *hi)
{
  int64_t ext = (g->KW - 1) * g->dw, l = (g->pl + g->sw - 1) / g->sw, last = g->W - 1 - ext + g->pl;
  int64_t h = last < 0 ? 0 : last / g->sw + 1;
  if (l > g->Wo) l = g->Wo;
  if (h > g->Wo) h = g->Wo;
  *lo = l;
  *hi = h < l ? l : h;
}

/* one output pixel's 16 channels from c0, the taps inside the input */
T512 static inline __m512 fwd_pixel512(const dgeom *g, const float *x, const float *w, int64_t n, int64_t kh0,
                                       int64_t kh1, int64_t ih0, int64_t ow, int64_t c0)
{
  int64_t C = g->C, iw0 = ow * g->sw - g->pl;
  __m512 acc = _mm512_setzero_ps();
  for (int64_t kh = kh0; kh < kh1; kh++) {
    const float *xr = x + ((n * g->H + ih0 + kh * g->dh) * g->W) * C + c0;
    const float *wr = w + kh * g->KW * C + c0;
    for (int64_t kw = 0; kw < g->KW; kw++) {
      int64_t iw = iw0 + kw * g->dw;
      if (iw < 0 || iw >= g->W) continue;
      acc = _mm512_fmadd_ps(_mm512_loadu_ps(xr + iw * C), _mm512_loadu_ps(wr + kw * C), acc);
    }
  }
  return acc;
}

/* P (a constant where inlined) inside pixels from column ow of output row yrow */
T512 static inline __attribute__((always_inline)) void fwd_block512(const dgeom *g, const float *x, const float *w,
                                                                    float *yrow, int64_t n, int64_t kh0, int64_t kh1,
                                                                    int64_t ih0, int64_t ow, const int P)
{
  int64_t C = g->C, xs = g->sw * C, KW = g->KW;
  int64_t xo = ((n * g->H + ih0) * g->W + ow * g->sw - g->pl) * C;   /* an offset: row ih0 may be outside */
  for (int64_t c0 = 0; c0 < C; c0 += 16) {
    __m512 acc[PB];
#pragma GCC unroll 8
    for (int i = 0; i < P; i++) acc[i] = _mm512_setzero_ps();
    for (int64_t kh = kh0; kh < kh1; kh++) {
      const float *xr = x + (xo + kh * g->dh * g->W * C + c0), *wr = w + kh * KW * C + c0;
      for (int64_t kw = 0; kw < KW; kw++) {
        __m512 wv = _mm512_loadu_ps(wr + kw * C);
        const float *xp = xr + kw * g->dw * C;
#pragma GCC unroll 8
        for (int i = 0; i < P; i++) acc[i] = _mm512_fmadd_ps(_mm512_loadu_ps(xp + i * xs), wv, acc[i]);
      }
    }
#pragma GCC unroll 8
    for (int i = 0; i < P; i++) _mm512_storeu_ps(yrow + (ow + i) * C + c0, acc[i]);
  }
}

T512 static void fwd_rows512(const dw_job *j, int64_t r0, int64_t r1)
{
  const dgeom *g = &j->g;
  int64_t C = g->C, lo, hi;
  inside_cols(g, &lo, &hi);
  for (int64_t r = r0; r < r1; r++) {
    int64_t n = r / g->Ho, oh = r % g->Ho, ih0 = oh * g->sh - g->pt;
    float *yrow = j->out + r * g->Wo * C;
    int64_t kh0 = 0, kh1 = g->KH;
    while (kh0 < kh1 && ih0 + kh0 * g->dh < 0) kh0++;
    while (kh1 > kh0 && ih0 + (kh1 - 1) * g->dh >= g->H) kh1--;
    int64_t ow = 0;
    for (; ow < lo; ow++)
      for (int64_t c0 = 0; c0 < C; c0 += 16) _mm512_storeu_ps(yrow + ow * C + c0, fwd_pixel512(g, j->a, j->b, n, kh0, kh1, ih0, ow, c0));
    for (; ow + PB <= hi; ow += PB) fwd_block512(g, j->a, j->b, yrow, n, kh0, kh1, ih0, ow, PB);
    for (; ow + PB / 2 <= hi; ow += PB / 2) fwd_block512(g, j->a, j->b, yrow, n, kh0, kh1, ih0, ow, PB / 2);
    for (; ow < hi; ow++) fwd_block512(g, j->a, j->b, yrow, n, kh0, kh1, ih0, ow, 1);
    for (; ow < g->Wo; ow++)
      for (int64_t c0 = 0; c0 < C; c0 += 16) _mm512_storeu_ps(yrow + ow * C + c0, fwd_pixel512(g, j->a, j->b, n, kh0, kh1, ih0, ow, c0));
  }
}
#else
#define HAVE_DW512 0
static int cpu_has_avx512(void) { return 0; }
#endif

VEC_CLONES static void fwd_rows(void *arg, int t, int T)
{
  const dw_job *j = arg;
  const dgeom *g = &j->g;
  int64_t r0, r1, CM = g->C * g->M;
  kr_share(g->N * g->Ho, t, T, &r0, &r1);
#if HAVE_DW512
  if (j->reg) {
    fwd_rows512(j, r0, r1);
    return;
  }
#endif
  if (g->M == 1 && g->C % VB == 0) {
    fwd_rows_vb(j, r0, r1);
    return;
  }
  for (int64_t r = r0; r < r1; r++) {
    int64_t n = r / g->Ho, oh = r % g->Ho;
    float *yrow = j->out + r * g->Wo * CM;
    memset(yrow, 0, (size_t)(g->Wo * CM) * sizeof(float));
    for (int64_t kh = 0; kh < g->KH; kh++) {
      int64_t ih = oh * g->sh - g->pt + kh * g->dh;
      if (ih < 0 || ih >= g->H) continue;
      const float *xrow = j->a + ((n * g->H + ih) * g->W) * g->C;
      for (int64_t kw = 0; kw < g->KW; kw++) {
        const float *wk = j->b + (kh * g->KW + kw) * CM;
        for (int64_t ow = 0; ow < g->Wo; ow++) {
          int64_t iw = ow * g->sw - g->pl + kw * g->dw;
          if (iw < 0 || iw >= g->W) continue;
          mac_row(yrow + ow * CM, xrow + iw * g->C, wk, g->C, g->M);
        }
      }
    }
  }
}

/* ---- the passes by lowering (the kernels below and the autotuner's runs) ---- */

static int fwd_reg_ok(const dgeom *g) { return HAVE_DW512 && g->M == 1 && g->C % 16 == 0 && cpu_has_avx512(); }

static void dw_forward(kr_ctx *ctx, const dgeom *g, const float *x, const float *w, float *y, int algo)
{
  dw_job j = {*g, x, w, y, NULL, 0, algo == KR_CONV_ALGO_DIRECT && fwd_reg_ok(g)};
  kr_exec e = {.ctx = ctx};
  double work = (double)g->N * (double)(g->Ho * g->Wo) * (double)(g->KH * g->KW * g->C * g->M);
  kr_parallel(workers(&e, g->N * g->Ho, work), fwd_rows, &j);
}

/* ---- input gradient: dx[n, ih, iw, c] = sum over the (kh, kw) whose window
** reaches (ih, iw) and m of dy[n, oh, ow, c*M + m] * w[kh, kw, c, m] ---- */

/* dx[c] += sum over m of dy[c*M + m] * w[c*M + m] */
static inline void dot_m(float *restrict dx, const float *restrict dy, const float *restrict w, int64_t C, int64_t M)
{
  if (M == 1) {
    for (int64_t c = 0; c < C; c++) dx[c] += dy[c] * w[c];
    return;
  }
  for (int64_t c = 0; c < C; c++) {
    float s = 0.0f;
    for (int64_t m = 0; m < M; m++) s += dy[c * M + m] * w[c * M + m];
    dx[c] += s;
  }
}

/* the output index o whose tap k reaches input i: i = o*s - p + k*d; -1 if none */
static inline int64_t tap_out(int64_t i, int64_t k, int64_t s, int64_t d, int64_t p, int64_t no)
{
  int64_t t = i + p - k * d;
  if (t < 0 || t % s != 0) return -1;
  t /= s;
  return t < no ? t : -1;
}

/* M = 1 and C a multiple of VB: as fwd_rows_vb, each input pixel's
** gradient summed over the taps that reach it in registers, stored once */
VEC_CLONES static void gi_rows_vb(const dw_job *j, int64_t r0, int64_t r1)
{
  const dgeom *g = &j->g;
  int64_t C = g->C;
  for (int64_t r = r0; r < r1; r++) {
    int64_t n = r / g->H, ih = r % g->H;
    float *dxrow = j->out + r * g->W * C;
    int64_t ohs[64], khs[64], nk = 0;   /* the row taps reaching ih (KH <= 64 here) */
    for (int64_t kh = 0; kh < g->KH; kh++) {
      int64_t oh = tap_out(ih, kh, g->sh, g->dh, g->pt, g->Ho);
      if (oh >= 0) {
        ohs[nk] = oh;
        khs[nk++] = kh;
      }
    }
    for (int64_t iw = 0; iw < g->W; iw++) {
      int64_t ows[64], kws[64], nw = 0;   /* the column taps reaching iw */
      for (int64_t kw = 0; kw < g->KW; kw++) {
        int64_t ow = tap_out(iw, kw, g->sw, g->dw, g->pl, g->Wo);
        if (ow >= 0) {
          ows[nw] = ow;
          kws[nw++] = kw;
        }
      }
      for (int64_t c0 = 0; c0 < C; c0 += VB) {
        float acc[VB] = {0};
        for (int64_t q = 0; q < nk; q++) {
          const float *dyr = j->a + ((n * g->Ho + ohs[q]) * g->Wo) * C + c0;
          const float *wr = j->b + khs[q] * g->KW * C + c0;
          for (int64_t p = 0; p < nw; p++) {
            const float *restrict dp = dyr + ows[p] * C, *restrict wp = wr + kws[p] * C;
            for (int c = 0; c < VB; c++) acc[c] += dp[c] * wp[c];
          }
        }
        memcpy(dxrow + iw * C + c0, acc, sizeof acc);
      }
    }
  }
}

#if HAVE_DW512
/* ---- AVX-512 input gradient (M = 1, C a multiple of 16) ----
** An input pixel iw receives the column taps kw with (iw + pl - kw*dw) a
** multiple of sw, from the output column ow = (iw + pl - kw*dw) / sw. Away
** from the edges (every such ow exists) the set of taps depends only on
** (iw + pl) mod sw, and the pixels iw, iw + sw, iw + 2*sw, ... of one class
** read consecutive output columns: blocks of P such pixels accumulate in
** registers, each tap's weights loaded once per block. Edge pixels run one
** at a time. Every input gradient is the sum over its taps in the order
** (kh, kw), one FMA each, on every path (as gi_rows_vb). */

/* P (a constant where inlined) pixels iw0 + k*sw of input row (n, ih): the
** row taps khs/ohs (nk), the column taps kws/ows (nw) of pixel iw0 */
T512 static inline __attribute__((always_inline)) void gi_block512(const dgeom *g, const float *dy, const float *w,
                                                                   float *dxrow, int64_t n, const int64_t *khs,
                                                                   const int64_t *ohs, int64_t nk, const int64_t *kws,
                                                                   const int64_t *ows, int64_t nw, int64_t iw0,
                                                                   const int P)
{
  int64_t C = g->C;
  for (int64_t c0 = 0; c0 < C; c0 += 16) {
    __m512 acc[PB];
#pragma GCC unroll 8
    for (int i = 0; i < P; i++) acc[i] = _mm512_setzero_ps();
    for (int64_t q = 0; q < nk; q++) {
      const float *dyr = dy + ((n * g->Ho + ohs[q]) * g->Wo) * C + c0, *wr = w + khs[q] * g->KW * C + c0;
      for (int64_t p = 0; p < nw; p++) {
        __m512 wv = _mm512_loadu_ps(wr + kws[p] * C);
        const float *dp = dyr + ows[p] * C;
#pragma GCC unroll 8
        for (int i = 0; i < P; i++) acc[i] = _mm512_fmadd_ps(_mm512_loadu_ps(dp + i * C), wv, acc[i]);
      }
    }
#pragma GCC unroll 8
    for (int i = 0; i < P; i++) _mm512_storeu_ps(dxrow + (iw0 + i * g->sw) * C + c0, acc[i]);
  }
}

/* the column taps reaching input column iw (in kw order); their count */
static int64_t col_taps(const dgeom *g, int64_t iw, int64_t *kws, int64_t *ows)
{
  int64_t nw = 0;
  for (int64_t kw = 0; kw < g->KW; kw++) {
    int64_t ow = tap_out(iw, kw, g->sw, g->dw, g->pl, g->Wo);
    if (ow >= 0) {
      kws[nw] = kw;
      ows[nw++] = ow;
    }
  }
  return nw;
}

T512 static void gi_rows512(const dw_job *j, int64_t r0, int64_t r1)
{
  const dgeom *g = &j->g;
  int64_t sw = g->sw;
  /* inside columns: every tap of the class has its output column */
  int64_t lo = (g->KW - 1) * g->dw - g->pl, hi = (g->Wo - 1) * sw - g->pl + 1;
  if (lo < 0) lo = 0;
  if (hi > g->W) hi = g->W;
  if (hi < lo) hi = lo;
  for (int64_t r = r0; r < r1; r++) {
    int64_t n = r / g->H, ih = r % g->H;
    float *dxrow = j->out + r * g->W * g->C;
    int64_t ohs[64], khs[64], nk = 0, kws[64], ows[64];
    for (int64_t kh = 0; kh < g->KH; kh++) {
      int64_t oh = tap_out(ih, kh, g->sh, g->dh, g->pt, g->Ho);
      if (oh >= 0) {
        ohs[nk] = oh;
        khs[nk++] = kh;
      }
    }
    for (int64_t iw = 0; iw < lo; iw++) {
      int64_t nw = col_taps(g, iw, kws, ows);
      gi_block512(g, j->a, j->b, dxrow, n, khs, ohs, nk, kws, ows, nw, iw, 1);
    }
    for (int64_t s0 = lo; s0 < lo + sw && s0 < hi; s0++) {
      int64_t nw = col_taps(g, s0, kws, ows), left = (hi - s0 + sw - 1) / sw, iw = s0;
      for (; left >= PB; left -= PB, iw += PB * sw) {
        gi_block512(g, j->a, j->b, dxrow, n, khs, ohs, nk, kws, ows, nw, iw, PB);
        for (int64_t p = 0; p < nw; p++) ows[p] += PB;
      }
      for (; left >= PB / 2; left -= PB / 2, iw += PB / 2 * sw) {
        gi_block512(g, j->a, j->b, dxrow, n, khs, ohs, nk, kws, ows, nw, iw, PB / 2);
        for (int64_t p = 0; p < nw; p++) ows[p] += PB / 2;
      }
      for (; left > 0; left--, iw += sw) {
        gi_block512(g, j->a, j->b, dxrow, n, khs, ohs, nk, kws, ows, nw, iw, 1);
        for (int64_t p = 0; p < nw; p++) ows[p] += 1;
      }
    }
    for (int64_t iw = hi; iw < g->W; iw++) {
      int64_t nw = col_taps(g, iw, kws, ows);
      gi_block512(g, j->a, j->b, dxrow, n, khs, ohs, nk, kws, ows, nw, iw, 1);
    }
  }
}
#endif

VEC_CLONES static void gi_rows(void *arg, int t, int T)
{
  const dw_job *j = arg;
  const dgeom *g = &j->g;
  int64_t r0, r1, CM = g->C * g->M;
  kr_share(g->N * g->H, t, T, &r0, &r1);
#if HAVE_DW512
  if (j->reg) {
    gi_rows512(j, r0, r1);
    return;
  }
#endif
  if (g->M == 1 && g->C % VB == 0 && g->KH <= 64 && g->KW <= 64) {
    gi_rows_vb(j, r0, r1);
    return;
  }
  for (int64_t r = r0; r < r1; r++) {
    int64_t n = r / g->H, ih = r % g->H;
    float *dxrow = j->out + r * g->W * g->C;
    memset(dxrow, 0, (size_t)(g->W * g->C) * sizeof(float));
    for (int64_t kh = 0; kh < g->KH; kh++) {
      int64_t oh = tap_out(ih, kh, g->sh, g->dh, g->pt, g->Ho);
      if (oh < 0) continue;
      const float *dyrow = j->a + ((n * g->Ho + oh) * g->Wo) * CM;
      for (int64_t kw = 0; kw < g->KW; kw++) {
        const float *wk = j->b + (kh * g->KW + kw) * CM;
        for (int64_t iw = 0; iw < g->W; iw++) {
          int64_t ow = tap_out(iw, kw, g->sw, g->dw, g->pl, g->Wo);
          if (ow < 0) continue;
          dot_m(dxrow + iw * g->C, dyrow + ow * CM, wk, g->C, g->M);
        }
      }
    }
  }
}

static int gi_reg_ok(const dgeom *g) { return fwd_reg_ok(g) && g->KH <= 64 && g->KW <= 64; }

static void dw_grad_input(kr_ctx *ctx, const dgeom *g, const float *dy, const float *w, float *dx, int algo)
{
  dw_job j = {*g, dy, w, dx, NULL, 0, algo == KR_CONV_ALGO_DIRECT && gi_reg_ok(g)};
  kr_exec e = {.ctx = ctx};
  double work = (double)g->N * (double)(g->Ho * g->Wo) * (double)(g->KH * g->KW * g->C * g->M);
  kr_parallel(workers(&e, g->N * g->H, work), gi_rows, &j);
}

/* ---- kernel gradient: dw[kh, kw, j] = sum over n, oh, ow of
** x[n, ih, iw, j / M] * dy[n, oh, ow, j] ---- */

static int64_t kernel_floats(const dgeom *g) { return g->KH * g->KW * g->C * g->M; }

size_t kr_dwconv_grad_kernel_scratch(const kr_node *n, int64_t batch)
{
  const kr_shape *w = &n->in[2]->shape;
  size_t s = (size_t)KR_DWCONV_GROUPS * (size_t)kr_numel(w);
  kr_conv_tune(n, n->in[0]->shape.dim[0] < 0 ? batch : n->in[0]->shape.dim[0], s);
  return s;
}

#if HAVE_DW512
/* ---- AVX-512 kernel gradient (M = 1, C a multiple of 16, KH x KW a
** constant 3x3 or 1x3 where inlined): for each output row and block of 16
** channels, the KH*KW taps' sums are loaded into registers from the group's
** partial sum, the row's pixels pass (ow in order), one dy load feeding a
** tap's FMA each (taps outside the input skipped), and the sums are stored
** back (a row's input rows stay in L1 whatever the channel count). Per
** kernel element the order of the sum is the one of gk_groups (n, oh, ow),
** so the groups and their partial sums are the same as there. */
T512 static inline __attribute__((always_inline)) void gk_group512(const dw_job *j, float *acc, int64_t n0, int64_t n1,
                                                                   const int KH, const int KW)
{
  const dgeom *g = &j->g;
  int64_t C = g->C;
  memset(acc, 0, (size_t)(KH * KW * C) * sizeof(float));
  for (int64_t n = n0; n < n1; n++)
    for (int64_t oh = 0; oh < g->Ho; oh++)
      for (int64_t c0 = 0; c0 < C; c0 += 16) {
        __m512 s[KH * KW];
#pragma GCC unroll 25
        for (int k = 0; k < KH * KW; k++) s[k] = _mm512_loadu_ps(acc + k * C + c0);
        int64_t ih0 = oh * g->sh - g->pt;
        int rows_in = ih0 >= 0 && ih0 + (KH - 1) * g->dh < g->H;
        const float *dyr = j->a + ((n * g->Ho + oh) * g->Wo) * C + c0, *xb = j->b + c0;
        int64_t xo = ((n * g->H + ih0) * g->W) * C;   /* an offset: row ih0 may be outside */
        for (int64_t ow = 0; ow < g->Wo; ow++) {
          __m512 d = _mm512_loadu_ps(dyr + ow * C);
          int64_t iw0 = ow * g->sw - g->pl;
          if (rows_in && iw0 >= 0 && iw0 + (KW - 1) * g->dw < g->W) {
#pragma GCC unroll 5
            for (int kh = 0; kh < KH; kh++)
#pragma GCC unroll 5
              for (int kw = 0; kw < KW; kw++)
                s[kh * KW + kw] = _mm512_fmadd_ps(
                    _mm512_loadu_ps(xb + (xo + ((kh * g->dh) * g->W + iw0 + kw * g->dw) * C)), d, s[kh * KW + kw]);
          } else {
#pragma GCC unroll 5
            for (int kh = 0; kh < KH; kh++) {
              int64_t ih = ih0 + kh * g->dh;
              if (ih < 0 || ih >= g->H) continue;
#pragma GCC unroll 5
              for (int kw = 0; kw < KW; kw++) {
                int64_t iw = iw0 + kw * g->dw;
                if (iw < 0 || iw >= g->W) continue;
                s[kh * KW + kw] =
                    _mm512_fmadd_ps(_mm512_loadu_ps(xb + (xo + ((kh * g->dh) * g->W + iw) * C)), d, s[kh * KW + kw]);
              }
            }
          }
        }
#pragma GCC unroll 25
        for (int k = 0; k < KH * KW; k++) _mm512_storeu_ps(acc + k * C + c0, s[k]);
      }
}

T512 static void gk_group512_any(const dw_job *j, float *acc, int64_t n0, int64_t n1)
{
  if (j->g.KH == 3 && j->g.KW == 3) gk_group512(j, acc, n0, n1, 3, 3);
  else gk_group512(j, acc, n0, n1, 1, 3);
}

static int gk512_ok(const dgeom *g)
{
  return g->M == 1 && g->C % 16 == 0 && g->KW == 3 && (g->KH == 3 || g->KH == 1) && cpu_has_avx512();
}
#endif

VEC_CLONES static void gk_groups(void *arg, int t, int T)
{
  const dw_job *j = arg;
  const dgeom *g = &j->g;
  int64_t g0, g1, CM = g->C * g->M, KK = kernel_floats(g);
  kr_share(j->groups, t, T, &g0, &g1);
#if HAVE_DW512
  if (j->reg) {
    for (int64_t q = g0; q < g1; q++) {
      int64_t n0, n1;
      kr_share(g->N, (int)q, (int)j->groups, &n0, &n1);
      gk_group512_any(j, j->scratch + q * KK, n0, n1);
    }
    return;
  }
#endif
  for (int64_t q = g0; q < g1; q++) {
    float *acc = j->scratch + q * KK;
    memset(acc, 0, (size_t)KK * sizeof(float));
    int64_t n0, n1;
    kr_share(g->N, (int)q, (int)j->groups, &n0, &n1);
    for (int64_t n = n0; n < n1; n++)
      for (int64_t oh = 0; oh < g->Ho; oh++) {
        const float *dyrow = j->a + ((n * g->Ho + oh) * g->Wo) * CM;
        for (int64_t kh = 0; kh < g->KH; kh++) {
          int64_t ih = oh * g->sh - g->pt + kh * g->dh;
          if (ih < 0 || ih >= g->H) continue;
          const float *xrow = j->b + ((n * g->H + ih) * g->W) * g->C;
          for (int64_t kw = 0; kw < g->KW; kw++) {
            float *ak = acc + (kh * g->KW + kw) * CM;
            for (int64_t ow = 0; ow < g->Wo; ow++) {
              int64_t iw = ow * g->sw - g->pl + kw * g->dw;
              if (iw < 0 || iw >= g->W) continue;
              mac_row(ak, xrow + iw * g->C, dyrow + ow * CM, g->C, g->M);
            }
          }
        }
      }
  }
}

/* dw = the groups' partial sums added in order */
VEC_CLONES static void sum_groups(float *restrict dw, const float *restrict p, int64_t G, int64_t KK)
{
  memcpy(dw, p, (size_t)KK * sizeof(float));
  for (int64_t q = 1; q < G; q++) {
    const float *restrict s = p + q * KK;
    for (int64_t i = 0; i < KK; i++) dw[i] += s[i];
  }
}

static int gk_reg_ok(const dgeom *g)
{
#if HAVE_DW512
  return gk512_ok(g);
#else
  (void)g;
  return 0;
#endif
}

static void dw_grad_kernel(kr_ctx *ctx, const dgeom *g, const float *dy, const float *x, float *dw, float *scratch,
                           int algo)
{
  dw_job j = {*g, dy, x, dw, scratch, g->N < KR_DWCONV_GROUPS ? g->N : KR_DWCONV_GROUPS,
              algo == KR_CONV_ALGO_DIRECT && gk_reg_ok(g)};
  kr_exec e = {.ctx = ctx};
  double work = (double)g->N * (double)(g->Ho * g->Wo) * (double)kernel_floats(g);
  if (j.groups < 1) {
    memset(dw, 0, (size_t)kernel_floats(g) * sizeof(float));
    return;
  }
  kr_parallel(workers(&e, j.groups, work), gk_groups, &j);
  sum_groups(dw, scratch, j.groups, kernel_floats(g));
}

/* ---- the ops' kernels: each pass by its node's lowering (kr_conv_algo:
** the autotuner's choice, or the rule) ---- */

static dgeom node_geom(const kr_node *n, int64_t batch)
{
  dgeom g;
  if (n->op == KR_OP_DEPTHWISE_CONV2D) g = kr_conv_geom(&n->in[0]->shape, &n->in[1]->shape, &n->shape, &n->attr);
  else if (n->op == KR_OP_DEPTHWISE_CONV2D_GRAD_INPUT)
    g = kr_conv_geom(&n->in[2]->shape, &n->in[1]->shape, &n->in[0]->shape, &n->attr);
  else g = kr_conv_geom(&n->in[1]->shape, &n->in[2]->shape, &n->in[0]->shape, &n->attr);
  if (batch > 0) g.N = batch;
  return g;
}

/* the node's lowering: the tuner's choice, else (the rule, or a conv2d lowering forced) the rule */
static int node_algo(const kr_exec *e)
{
  int a = kr_conv_algo(e->ctx, e->node);
  return a == KR_CONV_ALGO_DIRECT || a == KR_CONV_ALGO_LOOPS ? a : kr_dw_algo_rule(e->node);
}

int kr_k_depthwise_conv2d(const kr_exec *e)
{
  dgeom g = kr_conv_geom(e->xs[0], e->xs[1], e->ys, &e->node->attr);
  dw_forward(e->ctx, &g, e->x[0], e->x[1], e->y, node_algo(e));
  return KR_OK;
}

int kr_k_depthwise_conv2d_grad_input(const kr_exec *e)
{
  /* (dy, w, x) */
  dgeom g = kr_conv_geom(e->xs[2], e->xs[1], e->xs[0], &e->node->attr);
  dw_grad_input(e->ctx, &g, e->x[0], e->x[1], e->y, node_algo(e));
  return KR_OK;
}

int kr_k_depthwise_conv2d_grad_kernel(const kr_exec *e)
{
  /* (dy, x, w) */
  dgeom g = kr_conv_geom(e->xs[1], e->xs[2], e->xs[0], &e->node->attr);
  dw_grad_kernel(e->ctx, &g, e->x[0], e->x[1], e->y, e->scratch, node_algo(e));
  return KR_OK;
}

/* ---- the autotuner's side (conv_tune.c): the lowerings of a depthwise pass
** are KR_CONV_ALGO_DIRECT (the AVX-512 register kernels, where they apply)
** and KR_CONV_ALGO_LOOPS (the vectorized loops, every geometry); the rule:
** DIRECT for the forward and input gradient, LOOPS for the kernel gradient
** (as measured when they were written) ---- */

int kr_dw_algo_valid(const kr_node *n, int algo)
{
  dgeom g = node_geom(n, 1);
  if (algo == KR_CONV_ALGO_LOOPS) return 1;
  if (algo != KR_CONV_ALGO_DIRECT) return 0;
  return n->op == KR_OP_DEPTHWISE_CONV2D ? fwd_reg_ok(&g)
         : n->op == KR_OP_DEPTHWISE_CONV2D_GRAD_INPUT ? gi_reg_ok(&g) : gk_reg_ok(&g);
}

int kr_dw_algo_rule(const kr_node *n)
{
  if (n->op != KR_OP_DEPTHWISE_CONV2D_GRAD_KERNEL && kr_dw_algo_valid(n, KR_CONV_ALGO_DIRECT))
    return KR_CONV_ALGO_DIRECT;
  return KR_CONV_ALGO_LOOPS;
}

void kr_dw_tune_sizes(const kr_node *n, int64_t batch, size_t *a, size_t *b, size_t *out)
{
  dgeom g = node_geom(n, batch);
  size_t nx = (size_t)(g.N * g.H * g.W * g.C), ny = (size_t)(g.N * g.Ho * g.Wo * g.C * g.M);
  size_t nw = (size_t)kernel_floats(&g);
  if (n->op == KR_OP_DEPTHWISE_CONV2D) {
    *a = nx;
    *b = nw;
    *out = ny;
  } else if (n->op == KR_OP_DEPTHWISE_CONV2D_GRAD_INPUT) {
    *a = ny;
    *b = nw;
    *out = nx;
  } else {
    *a = ny;
    *b = nx;
    *out = nw;
  }
}

void kr_dw_tune_run(kr_ctx *ctx, const kr_node *n, int64_t batch, int algo, const float *a, const float *b,
                    float *out, float *scratch)
{
  dgeom g = node_geom(n, batch);
  if (n->op == KR_OP_DEPTHWISE_CONV2D) dw_forward(ctx, &g, a, b, out, algo);
  else if (n->op == KR_OP_DEPTHWISE_CONV2D_GRAD_INPUT) dw_grad_input(ctx, &g, a, b, out, algo);
  else dw_grad_kernel(ctx, &g, a, b, out, scratch, algo);
}

int kr_dw_tune_workers(kr_ctx *ctx, const kr_node *n, int64_t batch)
{
  dgeom g = node_geom(n, batch);
  kr_exec e = {.ctx = ctx};
  double work = (double)g.N * (double)(g.Ho * g.Wo) * (double)kernel_floats(&g);
  int64_t items = n->op == KR_OP_DEPTHWISE_CONV2D ? g.N * g.Ho : n->op == KR_OP_DEPTHWISE_CONV2D_GRAD_INPUT
                  ? g.N * g.H : (g.N < KR_DWCONV_GROUPS ? g.N : KR_DWCONV_GROUPS);
  return workers(&e, items, work);
}

/* the forward and input gradient have no scratch: sizing it is when the tuner runs */
size_t kr_dwconv_scratch(const kr_node *n, int64_t batch)
{
  int64_t b = n->in[0]->shape.dim[0] < 0 ? batch : n->in[0]->shape.dim[0];
  kr_conv_tune(n, b, 0);
  return 0;
}
