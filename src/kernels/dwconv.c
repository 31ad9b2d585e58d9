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
  const float *xb = x + ((n * g->H + ih0) * g->W + ow * g->sw - g->pl) * C;
  for (int64_t c0 = 0; c0 < C; c0 += 16) {
    __m512 acc[PB];
#pragma GCC unroll 8
    for (int i = 0; i < P; i++) acc[i] = _mm512_setzero_ps();
    for (int64_t kh = kh0; kh < kh1; kh++) {
      const float *xr = xb + kh * g->dh * g->W * C + c0, *wr = w + kh * KW * C + c0;
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
  if (g->M == 1 && g->C % 16 == 0 && cpu_has_avx512()) {
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

int kr_k_depthwise_conv2d(const kr_exec *e)
{
  dw_job j;
  j.g = kr_conv_geom(e->xs[0], e->xs[1], e->ys, &e->node->attr);
  j.a = e->x[0];
  j.b = e->x[1];
  j.out = e->y;
  j.scratch = NULL;
  j.groups = 0;
  const dgeom *g = &j.g;
  double work = (double)g->N * (double)(g->Ho * g->Wo) * (double)(g->KH * g->KW * g->C * g->M);
  kr_parallel(workers(e, g->N * g->Ho, work), fwd_rows, &j);
  return KR_OK;
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

VEC_CLONES static void gi_rows(void *arg, int t, int T)
{
  const dw_job *j = arg;
  const dgeom *g = &j->g;
  int64_t r0, r1, CM = g->C * g->M;
  kr_share(g->N * g->H, t, T, &r0, &r1);
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

int kr_k_depthwise_conv2d_grad_input(const kr_exec *e)
{
  /* (dy, w, x) */
  dw_job j;
  j.g = kr_conv_geom(e->xs[2], e->xs[1], e->xs[0], &e->node->attr);
  j.a = e->x[0];
  j.b = e->x[1];
  j.out = e->y;
  j.scratch = NULL;
  j.groups = 0;
  const dgeom *g = &j.g;
  double work = (double)g->N * (double)(g->Ho * g->Wo) * (double)(g->KH * g->KW * g->C * g->M);
  kr_parallel(workers(e, g->N * g->H, work), gi_rows, &j);
  return KR_OK;
}

/* ---- kernel gradient: dw[kh, kw, j] = sum over n, oh, ow of
** x[n, ih, iw, j / M] * dy[n, oh, ow, j] ---- */

static int64_t kernel_floats(const dgeom *g) { return g->KH * g->KW * g->C * g->M; }

size_t kr_dwconv_grad_kernel_scratch(const kr_node *n, int64_t batch)
{
  (void)batch;
  const kr_shape *w = &n->in[2]->shape;
  return (size_t)KR_DWCONV_GROUPS * (size_t)kr_numel(w);
}

VEC_CLONES static void gk_groups(void *arg, int t, int T)
{
  const dw_job *j = arg;
  const dgeom *g = &j->g;
  int64_t g0, g1, CM = g->C * g->M, KK = kernel_floats(g);
  kr_share(j->groups, t, T, &g0, &g1);
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

int kr_k_depthwise_conv2d_grad_kernel(const kr_exec *e)
{
  /* (dy, x, w) */
  dw_job j;
  j.g = kr_conv_geom(e->xs[1], e->xs[2], e->xs[0], &e->node->attr);
  j.a = e->x[0];
  j.b = e->x[1];
  j.out = e->y;
  j.scratch = e->scratch;
  const dgeom *g = &j.g;
  j.groups = g->N < KR_DWCONV_GROUPS ? g->N : KR_DWCONV_GROUPS;
  double work = (double)g->N * (double)(g->Ho * g->Wo) * (double)kernel_floats(g);
  if (j.groups < 1) {
    memset(e->y, 0, (size_t)kernel_floats(g) * sizeof(float));
    return KR_OK;
  }
  kr_parallel(workers(e, j.groups, work), gk_groups, &j);
  sum_groups(e->y, e->scratch, j.groups, kernel_floats(g));
  return KR_OK;
}
