/*
** conv_transpose.c -- the direct AVX-512 kernel of a strided convolution's
** input-gradient product (conv_transpose.h): the forward of conv2d_transpose
** and conv2d_grad_input at strides > 1, without the im2col matrix and the
** scatter-add (col2im) of kernels/conv.c's KR_CONV_ALGO_COL2IM.
**
** With g the convolution x -> y (kr_cgeom), the product is
**   dx[n, oh, ow, c] = sum over the taps (kh, kw) and o of dy[n, ih, iw, o] * w[kh, kw, c, o]
** where oh = ih*sh - pt + kh and ow = iw*sw - pl + kw. For an output row oh
** the taps are the kh = (oh + pt) mod sh + k*sh whose ih falls inside dy;
** along the row, the outputs of one phase ow = rw + p*sw (p = 0, 1, ...)
** take the same taps kw = (rw + pl) mod sw + k*sw, each from the consecutive
** inputs iw = (rw + pl - kw)/sw + p: the phase is a stride-1 correlation of
** dy with a sub-kernel, and no multiply-add is spent on the zeros a
** zero-insertion lowering would add. A tile holds PW outputs of one phase
** times the C channels (NV = C/16 vectors each, PW * NV <= 24) in
** registers: per o, NV loads of the kernel (repacked to (KH, KW, O, C) in the
** scratch) and PW broadcasts of dy feed PW * NV fused multiply-adds; the
** bias, the relu and the output mask are applied before the one store.
** With an input mask (dy * (mask > 0): the relu of the convolution whose
** input gradient this is), each sample's masked dy is formed once in the
** worker's slot of the scratch and read from there.
** Outputs whose taps reach outside dy run one at a time, skipping those taps.
** Threads: the samples in G fixed chunks (conv.c's conv_chunks), each sample's
** outputs written by the worker of its chunk, every float summed in the same
** order for any number of workers. No allocation: the scratch is the plan's.
*/
#include "kernels.h"
#include "../ops_conv.h"
#include "threadpool.h"
#include "conv_transpose.h"

#include <string.h>

#define TCONV_MAX_K 32   /* kernel rows and columns at most (the row's tap list) */

#if defined(__GNUC__) && !defined(__clang__) && defined(__x86_64__)
#include <immintrin.h>
#define HAVE_AVX512 1
#else
#define HAVE_AVX512 0
#endif

int kr_tconv_direct_ok(const kr_cgeom *g)
{
#if HAVE_AVX512
  return __builtin_cpu_supports("avx512f") != 0 && (g->sh > 1 || g->sw > 1) && g->dh == 1 && g->dw == 1 &&
         g->C % 16 == 0 && g->C <= 64 && g->KH <= TCONV_MAX_K && g->KW <= TCONV_MAX_K;
#else
  (void)g;
  return 0;
#endif
}

void kr_tconv_direct_layout(const kr_cgeom *g, size_t *shared, size_t *slot)
{
  *shared = (size_t)(g->KH * g->KW * g->C * g->O + 15) / 16 * 16;
  *slot = (size_t)(g->Ho * g->Wo * g->O + 15) / 16 * 16;
}

#if HAVE_AVX512

typedef struct tc_job {
  kr_cgeom g;
  const float *dy, *mask, *wt, *bias, *omask;
  int relu;
  float *dx, *slots;
  size_t slot;
} tc_job;

/* one output row's taps: kh and its input row ih */
typedef struct tc_row {
  int nkh;
  int64_t kh[TCONV_MAX_K], ih[TCONV_MAX_K];
} tc_row;

/* PW outputs of one phase from column ow0 (ow0, ow0 + sw, ...) of row (n, oh);
** every tap of every output inside dy when PW > 1, else the taps outside are skipped */
#define TCONV_TILE(NAME, NV, PW)                                                                                 \
  __attribute__((target("avx512f,fma"))) static void NAME(const tc_job *j, const float *dys, int64_t n,      \
                                                         int64_t oh, int64_t ow0, const tc_row *r)           \
  {                                                                                                          \
    const kr_cgeom *g = &j->g;                                                                               \
    int64_t C = g->C, O = g->O, sw = g->sw;                                                                  \
    __m512 acc[PW][NV];                                                                                      \
    _Pragma("GCC unroll 24") for (int p = 0; p < PW; p++)                                                    \
      _Pragma("GCC unroll 4") for (int v = 0; v < NV; v++) acc[p][v] = _mm512_setzero_ps();                 \
    for (int t = 0; t < r->nkh; t++) {                                                                       \
      int64_t kh = r->kh[t];                                                                                 \
      const float *drow = dys + r->ih[t] * g->Wo * O;                                                        \
      for (int64_t kw = (ow0 + g->pl) % sw; kw < g->KW; kw += sw) {                                          \
        int64_t iw = (ow0 + g->pl - kw) / sw;                                                                \
        if (PW == 1 && (iw < 0 || iw >= g->Wo)) continue;                                                    \
        const float *dr = drow + iw * O;                                                                     \
        const float *wk = j->wt + (kh * g->KW + kw) * O * C;                                                 \
        for (int64_t o = 0; o < O; o++) {                                                                    \
          __m512 wv[NV];                                                                                     \
          _Pragma("GCC unroll 4") for (int v = 0; v < NV; v++) wv[v] = _mm512_loadu_ps(wk + o * C + 16 * v); \
          _Pragma("GCC unroll 24") for (int p = 0; p < PW; p++) {                                            \
            __m512 xb = _mm512_set1_ps(dr[p * O + o]);                                                       \
            _Pragma("GCC unroll 4") for (int v = 0; v < NV; v++) acc[p][v] =                                 \
                _mm512_fmadd_ps(xb, wv[v], acc[p][v]);                                                       \
          }                                                                                                  \
        }                                                                                                    \
      }                                                                                                      \
    }                                                                                                        \
    float *yr = j->dx + ((n * g->H + oh) * g->W + ow0) * C;                                                  \
    _Pragma("GCC unroll 4") for (int v = 0; v < NV; v++) {                                                   \
      __m512 b = j->bias ? _mm512_loadu_ps(j->bias + 16 * v) : _mm512_setzero_ps();                          \
      _Pragma("GCC unroll 24") for (int p = 0; p < PW; p++) {                                                \
        __m512 y = _mm512_add_ps(acc[p][v], b);                                                              \
        float *dst = yr + p * sw * C + 16 * v;                                                               \
        if (j->relu) /* y <= 0 (ordered) -> 0: NaN stays, as conv.c's relu */                               \
          y = _mm512_mask_mov_ps(y, _mm512_cmp_ps_mask(y, _mm512_setzero_ps(), _CMP_LE_OQ), _mm512_setzero_ps()); \
        if (j->omask)                                                                                        \
          y = _mm512_maskz_mov_ps(                                                                           \
              _mm512_cmp_ps_mask(_mm512_loadu_ps(j->omask + (dst - j->dx)), _mm512_setzero_ps(), _CMP_GT_OQ), y); \
        _mm512_storeu_ps(dst, y);                                                                            \
      }                                                                                                      \
    }                                                                                                        \
  }

TCONV_TILE(tc_1x24, 1, 24)
TCONV_TILE(tc_1x12, 1, 12)
TCONV_TILE(tc_1x6, 1, 6)
TCONV_TILE(tc_2x12, 2, 12)
TCONV_TILE(tc_2x6, 2, 6)
TCONV_TILE(tc_2x3, 2, 3)
TCONV_TILE(tc_3x8, 3, 8)
TCONV_TILE(tc_3x4, 3, 4)
TCONV_TILE(tc_3x2, 3, 2)
TCONV_TILE(tc_4x6, 4, 6)
TCONV_TILE(tc_4x3, 4, 3)
TCONV_TILE(tc_1x1, 1, 1)
TCONV_TILE(tc_2x1, 2, 1)
TCONV_TILE(tc_3x1, 3, 1)
TCONV_TILE(tc_4x1, 4, 1)

typedef void (*tc_fn)(const tc_job *, const float *, int64_t, int64_t, int64_t, const tc_row *);

/* per NV (1..4): the tile widths, widest first (0 ends), and the functions */
static const int tc_pw[5][3] = {{0}, {24, 12, 6}, {12, 6, 3}, {8, 4, 2}, {6, 3, 0}};
static const tc_fn tc_tiles[5][3] = {{NULL},
                                     {tc_1x24, tc_1x12, tc_1x6},
                                     {tc_2x12, tc_2x6, tc_2x3},
                                     {tc_3x8, tc_3x4, tc_3x2},
                                     {tc_4x6, tc_4x3, NULL}};
static const tc_fn tc_pixel[5] = {NULL, tc_1x1, tc_2x1, tc_3x1, tc_4x1};

static void tc_rows(void *arg, int c, int G, int t)
{
  const tc_job *j = arg;
  const kr_cgeom *g = &j->g;
  int NV = (int)(g->C / 16);
  tc_fn px = tc_pixel[NV];
  int64_t n0, n1, sh = g->sh, sw = g->sw, plane = g->Ho * g->Wo * g->O;
  kr_share(g->N, c, G, &n0, &n1);
  for (int64_t n = n0; n < n1; n++) {
    const float *dys = j->dy + n * plane;
    if (j->mask) {   /* dz = dy where mask > 0 (a NaN mask passes dy, as conv.c's copy_span) */
      float *dz = j->slots + (size_t)t * j->slot;
      const float *m = j->mask + n * plane;
      for (int64_t i = 0; i < plane; i++) {
        float v = dys[i];
        dz[i] = !(m[i] <= 0.0f) ? v : 0.0f;
      }
      dys = dz;
    }
    for (int64_t oh = 0; oh < g->H; oh++) {
      tc_row r;
      r.nkh = 0;
      for (int64_t kh = (oh + g->pt) % sh; kh < g->KH; kh += sh) {
        int64_t ih = (oh + g->pt - kh) / sh;
        if (ih >= 0 && ih < g->Ho) {
          r.kh[r.nkh] = kh;
          r.ih[r.nkh++] = ih;
        }
      }
      for (int64_t rw = 0; rw < sw && rw < g->W; rw++) {
        /* the phase's outputs p = 0 .. np-1 at columns rw + p*sw; those from plo to phi take every tap inside dy */
        int64_t np = (g->W - rw + sw - 1) / sw, kw0 = (rw + g->pl) % sw, plo = 0, phi = np;
        if (kw0 < g->KW) {
          int64_t kwl = kw0 + (g->KW - 1 - kw0) / sw * sw;    /* the phase's last tap */
          int64_t b_hi = (rw + g->pl - kw0) / sw, b_lo = (rw + g->pl - kwl) / sw;   /* iw of output 0 */
          plo = -b_lo > 0 ? -b_lo : 0;
          phi = g->Wo - b_hi < np ? g->Wo - b_hi : np;
          if (plo > np) plo = np;
          if (phi < plo) phi = plo;
        }
        int64_t p = 0;
        for (; p < plo; p++) px(j, dys, n, oh, rw + p * sw, &r);
        for (int k = 0; k < 3 && tc_pw[NV][k] > 0; k++)
          for (int64_t w = tc_pw[NV][k]; phi - p >= w; p += w) tc_tiles[NV][k](j, dys, n, oh, rw + p * sw, &r);
        for (; p < np; p++) px(j, dys, n, oh, rw + p * sw, &r);
      }
    }
  }
}

void kr_tconv_direct(const kr_cgeom *g, int G, const float *dy, const float *mask, const float *w, const float *bias,
                     int relu, const float *omask, float *dx, float *scratch, int T)
{
  /* the kernel (KH, KW, C, O) repacked to (KH, KW, O, C): the C outputs of one o in a row */
  int64_t C = g->C, O = g->O;
  for (int64_t k = 0; k < g->KH * g->KW; k++) {
    const float *src = w + k * C * O;
    float *dst = scratch + k * O * C;
    for (int64_t c = 0; c < C; c++)
      for (int64_t o = 0; o < O; o++) dst[o * C + c] = src[c * O + o];
  }
  size_t shared, slot;
  kr_tconv_direct_layout(g, &shared, &slot);
  tc_job j = {*g, dy, mask, scratch, bias, omask, relu, dx, scratch + shared, slot};
  kr_parallel_chunks(T, G, tc_rows, &j);
}

#else

void kr_tconv_direct(const kr_cgeom *g, int G, const float *dy, const float *mask, const float *w, const float *bias,
                     int relu, const float *omask, float *dx, float *scratch, int T)
{
  /* never chosen: kr_tconv_direct_ok is false without AVX-512 */
  (void)g, (void)G, (void)dy, (void)mask, (void)w, (void)bias, (void)relu, (void)omask, (void)dx, (void)scratch;
  (void)T;
}

#endif
