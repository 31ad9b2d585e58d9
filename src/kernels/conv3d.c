/*
** conv3d.c -- the kernels of the 3-D convolutions (ops_conv3d.h):
** conv3d, its input and kernel gradients, and conv3d_transpose (the input
** gradient's product with x in dy's place, then the bias), channels_last.
** Shape letters: N batch, D H W input size, C input channels, KD KH KW
** kernel size, O filters, Do Ho Wo output size, K = KD*KH*KW*C, P = Do*Ho*Wo.
**
** Two lowerings of each pass, chosen by the conv autotuner (conv_tune.c)
** per geometry, or by the fixed rule (conv3d_rule) when it is off:
**   IM2COL (vol2col + sgemm): a block of R output positions is unfolded
**     into R x K floats in the kernel's own order (kd, kh, kw, c), so the
**     kernel (KD, KH, KW, C, O) is the K x O right-hand matrix:
**     forward  y_block = cols w (then the bias and the relu);
**     dx       dcols = dz_block w^T, scattered back (COL2IM);
**     dw       dw += cols^T dz_block.
**   DIRECT: no unfolding; every output position sums its taps in place,
**     vectorized over the output channels (forward, dw) or the input
**     channels (dx: a gather over the output positions that reach each input
**     position, with the kernel transposed once to (KD, KH, KW, O, C)).
** Threads: as conv.c's. The samples are cut into G fixed chunks
** (kr_chunk_count: a function of the shape, not the threads), run by
** kr_parallel_chunks; a chunk owns its samples' rows of every output, and the
** kernel gradient has one partial sum per chunk, added in chunk order
** (kr_sum_chunks): the same floats for any thread count. The scratch (the
** plan's) holds a slot per worker (the unfolded block) and the partial sums,
** sized for the largest lowering so that any choice fits. Kernels never
** allocate.
*/
#include "kernels.h"
#include "../ops_conv.h"
#include "../ops_conv3d.h"
#include "threadpool.h"

#include <cblas.h>
#include <string.h>

#define BLOCK_FLOATS 8192
#define BLOCK_FLOATS_WIDE 65536
#define MIN_ROWS 16
#define MAX_ROWS 1024
#define CHUNK_WORK 8e6
#define PAR_MIN_WORK 400000

typedef struct c3g {
  int64_t N, D, H, W, C, KD, KH, KW, O, Do, Ho, Wo;
  int64_t sd, sh, sw, dd, dh, dw, pf, pt, pl;
} c3g;

/* x (N, D, H, W, C), w (KD, KH, KW, C, O), y (N, Do, Ho, Wo, O) */
static c3g geom(const kr_shape *x, const kr_shape *w, const kr_shape *y, const kr_attr *a)
{
  c3g g;
  g.N = x->dim[0] < 0 ? 1 : x->dim[0];
  g.D = x->dim[1];
  g.H = x->dim[2];
  g.W = x->dim[3];
  g.C = w->dim[3];
  g.KD = w->dim[0];
  g.KH = w->dim[1];
  g.KW = w->dim[2];
  g.O = w->dim[4];
  g.Do = y->dim[1];
  g.Ho = y->dim[2];
  g.Wo = y->dim[3];
  g.sd = a->i[KR_C3_STRIDE_D];
  g.sh = a->i[KR_C3_STRIDE_H];
  g.sw = a->i[KR_C3_STRIDE_W];
  g.dd = a->i[KR_C3_DILATION_D];
  g.dh = a->i[KR_C3_DILATION_H];
  g.dw = a->i[KR_C3_DILATION_W];
  g.pf = a->i[KR_C3_PAD_FRONT];
  g.pt = a->i[KR_C3_PAD_TOP];
  g.pl = (int64_t)a->f[KR_C3_PAD_LEFT];
  return g;
}

/* the geometry of a node's convolution (for conv3d_transpose: the conv3d
** that takes its output back to its input); `batch` > 0 sets N */
static c3g node_geom(const kr_node *n, int64_t batch)
{
  c3g g;
  if (n->op == KR_OP_CONV3D) g = geom(&n->in[0]->shape, &n->in[1]->shape, &n->shape, &n->attr);
  else if (n->op == KR_OP_CONV3D_GRAD_INPUT) g = geom(&n->in[2]->shape, &n->in[1]->shape, &n->in[0]->shape, &n->attr);
  else if (n->op == KR_OP_CONV3D_GRAD_KERNEL) g = geom(&n->in[1]->shape, &n->in[2]->shape, &n->in[0]->shape, &n->attr);
  else g = geom(&n->shape, &n->in[1]->shape, &n->in[0]->shape, &n->attr);
  if (batch > 0) g.N = batch;
  return g;
}

static int64_t gK(const c3g *g) { return g->KD * g->KH * g->KW * g->C; }
static int64_t gP(const c3g *g) { return g->Do * g->Ho * g->Wo; }
static size_t up16(size_t n) { return (n + 15) / 16 * 16; }
static double work(const c3g *g) { return (double)g->N * (double)gP(g) * (double)gK(g) * (double)g->O; }
static int chunks(const c3g *g) { return kr_chunk_count(g->N, 1, work(g), CHUNK_WORK); }

static int64_t rows_for(const c3g *g)
{
  int64_t K = gK(g), r = (g->O >= 128 ? BLOCK_FLOATS_WIDE : BLOCK_FLOATS) / (K > 0 ? K : 1);
  return r < MIN_ROWS ? MIN_ROWS : r > MAX_ROWS ? MAX_ROWS : r;
}

static int node_slots(const kr_node *n)
{
  int s = (int)n->attr.f[KR_C3_SLOTS];
  return s < 1 ? 1 : s > KR_CONV_MAX_SLOTS ? KR_CONV_MAX_SLOTS : s;
}

/* the workers for g: the context's threads, at most the node's slots and the samples */
static int workers(kr_ctx *ctx, const c3g *g, int slots)
{
  int T = kr_get_num_threads(ctx);
  if (T > slots) T = slots;
  if (T > KR_CONV_MAX_SLOTS) T = KR_CONV_MAX_SLOTS;
  if ((int64_t)T > g->N) T = (int)g->N;
  if (work(g) < PAR_MIN_WORK) T = 1;
  return T < 1 ? 1 : T;
}

/* the taps [lo, hi) of a kernel axis that land inside an input of n for
** output position o (stride s, dilation d, leading pad p) */
static inline void tap_range(int64_t o, int64_t s, int64_t d, int64_t p, int64_t k, int64_t n, int64_t *lo,
                             int64_t *hi)
{
  int64_t base = o * s - p;   /* the input position of tap 0 */
  int64_t a = base >= 0 ? 0 : (-base + d - 1) / d;
  int64_t b = base >= n ? 0 : (n - 1 - base) / d + 1;
  *lo = a;
  *hi = b < k ? b : k;
  if (*hi < *lo) *hi = *lo;
}

/* ---- vol2col and col2vol over a block of rows ---- */

/* rows [r0, r0 + nr) of the samples' positions (r counted from sample 0) unfolded into cols (nr x K) */
VEC_CLONES static void vol2col(const c3g *g, const float *x, int64_t r0, int64_t nr, float *cols)
{
  int64_t P = gP(g), K = gK(g), C = g->C;
  for (int64_t r = 0; r < nr; r++) {
    int64_t q = r0 + r, n = q / P, rem = q % P;
    int64_t od = rem / (g->Ho * g->Wo), oh = rem / g->Wo % g->Ho, ow = rem % g->Wo;
    float *row = cols + r * K;
    for (int64_t kd = 0; kd < g->KD; kd++) {
      int64_t id = od * g->sd - g->pf + kd * g->dd;
      for (int64_t kh = 0; kh < g->KH; kh++) {
        int64_t ih = oh * g->sh - g->pt + kh * g->dh;
        for (int64_t kw = 0; kw < g->KW; kw++, row += C) {
          int64_t iw = ow * g->sw - g->pl + kw * g->dw;
          if (id < 0 || id >= g->D || ih < 0 || ih >= g->H || iw < 0 || iw >= g->W) {
            memset(row, 0, (size_t)C * sizeof(float));
          } else {
            const float *src = x + (((n * g->D + id) * g->H + ih) * g->W + iw) * C;
            for (int64_t c = 0; c < C; c++) row[c] = src[c];
          }
        }
      }
    }
  }
}

/* the adjoint: dx += each row's columns where they came from */
VEC_CLONES static void col2vol_add(const c3g *g, const float *cols, int64_t r0, int64_t nr, float *dx)
{
  int64_t P = gP(g), K = gK(g), C = g->C;
  for (int64_t r = 0; r < nr; r++) {
    int64_t q = r0 + r, n = q / P, rem = q % P;
    int64_t od = rem / (g->Ho * g->Wo), oh = rem / g->Wo % g->Ho, ow = rem % g->Wo;
    const float *row = cols + r * K;
    for (int64_t kd = 0; kd < g->KD; kd++) {
      int64_t id = od * g->sd - g->pf + kd * g->dd;
      for (int64_t kh = 0; kh < g->KH; kh++) {
        int64_t ih = oh * g->sh - g->pt + kh * g->dh;
        for (int64_t kw = 0; kw < g->KW; kw++, row += C) {
          int64_t iw = ow * g->sw - g->pl + kw * g->dw;
          if (id < 0 || id >= g->D || ih < 0 || ih >= g->H || iw < 0 || iw >= g->W) continue;
          float *dst = dx + (((n * g->D + id) * g->H + ih) * g->W + iw) * C;
          for (int64_t c = 0; c < C; c++) dst[c] += row[c];
        }
      }
    }
  }
}

/* y[i*O + o] += b[o], then the relu (NaN stays NaN) */
VEC_CLONES static void bias_relu(float *restrict y, int64_t rows, int64_t O, const float *restrict b, int relu)
{
  for (int64_t i = 0; i < rows; i++) {
    float *restrict r = y + i * O;
    if (b)
      for (int64_t o = 0; o < O; o++) r[o] += b[o];
    if (relu)
      for (int64_t o = 0; o < O; o++) r[o] = r[o] <= 0.0f ? 0.0f : r[o];
  }
}

/* ---- the direct loops ---- */

/* forward: the positions of samples [n0, n1), each the sum of its taps */
VEC_CLONES static void fwd_direct(const c3g *g, const float *x, const float *w, float *y, int64_t n0, int64_t n1)
{
  int64_t C = g->C, O = g->O;
  for (int64_t n = n0; n < n1; n++)
    for (int64_t od = 0; od < g->Do; od++) {
      int64_t d0, d1;
      tap_range(od, g->sd, g->dd, g->pf, g->KD, g->D, &d0, &d1);
      for (int64_t oh = 0; oh < g->Ho; oh++) {
        int64_t h0, h1;
        tap_range(oh, g->sh, g->dh, g->pt, g->KH, g->H, &h0, &h1);
        for (int64_t ow = 0; ow < g->Wo; ow++) {
          int64_t w0, w1;
          tap_range(ow, g->sw, g->dw, g->pl, g->KW, g->W, &w0, &w1);
          float *restrict acc = y + (((n * g->Do + od) * g->Ho + oh) * g->Wo + ow) * O;
          for (int64_t o = 0; o < O; o++) acc[o] = 0.0f;
          for (int64_t kd = d0; kd < d1; kd++)
            for (int64_t kh = h0; kh < h1; kh++)
              for (int64_t kw = w0; kw < w1; kw++) {
                int64_t id = od * g->sd - g->pf + kd * g->dd, ih = oh * g->sh - g->pt + kh * g->dh;
                int64_t iw = ow * g->sw - g->pl + kw * g->dw;
                const float *restrict xr = x + (((n * g->D + id) * g->H + ih) * g->W + iw) * C;
                const float *restrict wk = w + ((kd * g->KH + kh) * g->KW + kw) * C * O;
                for (int64_t c = 0; c < C; c++) {
                  float xv = xr[c];
                  const float *restrict wc = wk + c * O;
                  for (int64_t o = 0; o < O; o++) acc[o] += xv * wc[o];
                }
              }
        }
      }
    }
}

/* ---- the forward's direct loops on AVX-512: 16 to 64 filters ----
** As conv.c's avx_conv: the O filters of an output position stay in NV = O/16
** vector registers, and a tile of PW positions along a row (NV * PW
** accumulators, at most 24 registers) sums over the taps and channels: per
** channel, NV loads of the kernel and PW broadcasts of the input feed NV * PW
** fused multiply-adds. Positions whose column taps all fall inside the row go
** in full tiles (the last one moved left to end at the row's end: positions
** computed twice get the same floats twice), the others one at a time, taps
** outside skipped. Bias and relu before the one store. The depth and row
** taps are the same for the whole row. Picked at run time on CPUs with
** AVX-512F; each position's floats do not depend on the tile it is in. */
#if defined(__GNUC__) && !defined(__clang__) && defined(__x86_64__)
#include <immintrin.h>
#define HAVE_AVX512 1

static int cpu_has_avx512(void) { return __builtin_cpu_supports("avx512f") != 0; }
static int avx_fwd_ok(const c3g *g) { return cpu_has_avx512() && g->O % 16 == 0 && g->O <= 64; }

typedef struct avx_row {
  const c3g *g;
  const float *x, *w, *bias;
  float *y;
  int relu;
  int64_t n, od, oh, d0, d1, h0, h1;
} avx_row;

#define AVX3_TILE(NAME, NV, PW)                                                                                   \
  __attribute__((target("avx512f,fma"))) static void NAME(const avx_row *r, int64_t ow0)                        \
  {                                                                                                            \
    const c3g *g = r->g;                                                                                       \
    int64_t C = g->C, O = g->O;                                                                                \
    __m512 acc[PW][NV];                                                                                        \
    _Pragma("GCC unroll 16") for (int p = 0; p < PW; p++)                                                      \
      _Pragma("GCC unroll 4") for (int v = 0; v < NV; v++) acc[p][v] = _mm512_setzero_ps();                   \
    for (int64_t kd = r->d0; kd < r->d1; kd++) {                                                               \
      int64_t id = r->od * g->sd - g->pf + kd * g->dd;                                                         \
      for (int64_t kh = r->h0; kh < r->h1; kh++) {                                                             \
        int64_t ih = r->oh * g->sh - g->pt + kh * g->dh;                                                       \
        const float *xrow = r->x + ((r->n * g->D + id) * g->H + ih) * g->W * C;                                \
        for (int64_t kw = 0; kw < g->KW; kw++) {                                                               \
          int64_t iw = ow0 * g->sw - g->pl + kw * g->dw;                                                       \
          if (PW == 1 && (iw < 0 || iw >= g->W)) continue;                                                     \
          const float *xr = xrow + iw * C;                                                                     \
          const float *wk = r->w + ((kd * g->KH + kh) * g->KW + kw) * C * O;                                   \
          for (int64_t c = 0; c < C; c++) {                                                                    \
            __m512 wv[NV];                                                                                     \
            _Pragma("GCC unroll 4") for (int v = 0; v < NV; v++) wv[v] = _mm512_loadu_ps(wk + c * O + 16 * v); \
            _Pragma("GCC unroll 16") for (int p = 0; p < PW; p++) {                                            \
              __m512 xb = _mm512_set1_ps(xr[p * g->sw * C + c]);                                               \
              _Pragma("GCC unroll 4") for (int v = 0; v < NV; v++) acc[p][v] =                                 \
                  _mm512_fmadd_ps(xb, wv[v], acc[p][v]);                                                       \
            }                                                                                                  \
          }                                                                                                    \
        }                                                                                                      \
      }                                                                                                        \
    }                                                                                                          \
    float *yr = r->y + (((r->n * g->Do + r->od) * g->Ho + r->oh) * g->Wo + ow0) * O;                           \
    _Pragma("GCC unroll 4") for (int v = 0; v < NV; v++) {                                                     \
      __m512 b = r->bias ? _mm512_loadu_ps(r->bias + 16 * v) : _mm512_setzero_ps();                            \
      _Pragma("GCC unroll 16") for (int p = 0; p < PW; p++) {                                                  \
        __m512 t = _mm512_add_ps(acc[p][v], b);                                                                \
        if (r->relu) /* t <= 0 (ordered) -> 0: NaN stays */                                                    \
          t = _mm512_mask_mov_ps(t, _mm512_cmp_ps_mask(t, _mm512_setzero_ps(), _CMP_LE_OQ), _mm512_setzero_ps()); \
        _mm512_storeu_ps(yr + p * O + 16 * v, t);                                                              \
      }                                                                                                        \
    }                                                                                                          \
  }

AVX3_TILE(avx3_tile1_24, 1, 24)
AVX3_TILE(avx3_tile1_16, 1, 16)
AVX3_TILE(avx3_tile1_12, 1, 12)
AVX3_TILE(avx3_tile1_8, 1, 8)
AVX3_TILE(avx3_tile1_4, 1, 4)
AVX3_TILE(avx3_tile2_12, 2, 12)
AVX3_TILE(avx3_tile2_8, 2, 8)
AVX3_TILE(avx3_tile2_6, 2, 6)
AVX3_TILE(avx3_tile2_4, 2, 4)
AVX3_TILE(avx3_tile3_8, 3, 8)
AVX3_TILE(avx3_tile3_6, 3, 6)
AVX3_TILE(avx3_tile3_4, 3, 4)
AVX3_TILE(avx3_tile4_6, 4, 6)
AVX3_TILE(avx3_tile4_4, 4, 4)
AVX3_TILE(avx3_px1, 1, 1)
AVX3_TILE(avx3_px2, 2, 1)
AVX3_TILE(avx3_px3, 3, 1)
AVX3_TILE(avx3_px4, 4, 1)

typedef void (*avx3_fn)(const avx_row *, int64_t);

/* the tile widths of each NV (widest first, at most 24 accumulators) */
#define AVX3_WIDTHS 5
static const int avx3_pw[5][AVX3_WIDTHS] = {{0}, {24, 16, 12, 8, 4}, {12, 8, 6, 4, 0}, {8, 6, 4, 0, 0}, {6, 4, 0, 0, 0}};
static const avx3_fn avx3_tiles[5][AVX3_WIDTHS] = {
  {NULL},
  {avx3_tile1_24, avx3_tile1_16, avx3_tile1_12, avx3_tile1_8, avx3_tile1_4},
  {avx3_tile2_12, avx3_tile2_8, avx3_tile2_6, avx3_tile2_4, NULL},
  {avx3_tile3_8, avx3_tile3_6, avx3_tile3_4, NULL, NULL},
  {avx3_tile4_6, avx3_tile4_4, NULL, NULL, NULL}};

/* the forward of samples [n0, n1), bias and relu included. The inside run of
** each row goes in tiles of the width the cost below finds cheapest for its
** length (the widest of equals), the last tile moved left */
static void avx_fwd(const c3g *g, const float *x, const float *w, const float *bias, int relu, float *y, int64_t n0,
                    int64_t n1)
{
  static const avx3_fn pixels[5] = {NULL, avx3_px1, avx3_px2, avx3_px3, avx3_px4};
  int NV = (int)(g->O / 16);
  avx3_fn px = pixels[NV], tile = NULL;
  /* columns whose taps all fall inside the row */
  int64_t lo = (g->pl + g->sw - 1) / g->sw, last = g->W - 1 - (g->KW - 1) * g->dw + g->pl;
  int64_t hi = last < 0 ? 0 : last / g->sw + 1;
  if (lo > g->Wo) lo = g->Wo;
  if (hi > g->Wo) hi = g->Wo;
  if (hi < lo) hi = lo;
  /* the cycles of a tile per tap and channel: its fused multiply-adds (two a
  ** cycle), its loads (NV of the kernel, PW broadcasts; two a cycle), or the
  ** multiply-add latency (4) when it has fewer than 8 chains */
  int64_t run = hi - lo, PW = 0;
  double best = 0;
  for (int k = 0; k < AVX3_WIDTHS && avx3_pw[NV][k]; k++) {
    int64_t pw = avx3_pw[NV][k];
    double fma = pw * NV / 2.0, loads = (pw + NV) / 2.0, per = fma > loads ? fma : loads;
    double cost = (double)((run + pw - 1) / pw) * (per > 4 ? per : 4);
    if (pw <= run && (!PW || cost < best)) {
      PW = pw;
      best = cost;
      tile = avx3_tiles[NV][k];
    }
  }
  avx_row r = {.g = g, .x = x, .w = w, .bias = bias, .y = y, .relu = relu};
  for (int64_t n = n0; n < n1; n++)
    for (int64_t od = 0; od < g->Do; od++)
      for (int64_t oh = 0; oh < g->Ho; oh++) {
        r.n = n;
        r.od = od;
        r.oh = oh;
        tap_range(od, g->sd, g->dd, g->pf, g->KD, g->D, &r.d0, &r.d1);
        tap_range(oh, g->sh, g->dh, g->pt, g->KH, g->H, &r.h0, &r.h1);
        for (int64_t ow = 0; ow < lo; ow++) px(&r, ow);
        if (tile) {
          for (int64_t ow = lo; ow < hi; ow += PW) tile(&r, ow + PW <= hi ? ow : hi - PW);
        } else {
          for (int64_t ow = lo; ow < hi; ow++) px(&r, ow);
        }
        for (int64_t ow = hi; ow < g->Wo; ow++) px(&r, ow);
      }
}
/* ---- the kernel gradient's direct loops on AVX-512: 16 to 64 filters, column dilation 1 ----
** As conv.c's avx_dw: for one kernel (depth, row) tap the (kw, c) pairs are
** one run of J = KW*C floats both in x (from a position's first column tap)
** and in dw, so a block of CB consecutive pairs times the O filters stays in
** CB * NV registers while every output position of the chunk adds x times
** its dz: per position, NV loads of dz and CB broadcasts of x feed CB * NV
** fused multiply-adds. Positions at a padded column edge check each pair. */
static int avx_gk_ok(const c3g *g) { return cpu_has_avx512() && g->O % 16 == 0 && g->O <= 64 && g->dw == 1; }

#define AVX3_GK(NAME, NV, CB)                                                                                     \
  __attribute__((target("avx512f,fma"))) static void NAME(const c3g *g, const float *dz, const float *x,        \
                                                         float *part, int64_t n0, int64_t n1, int64_t kd,      \
                                                         int64_t kh, int64_t j0, int64_t cbn)                  \
  {                                                                                                            \
    int64_t C = g->C, O = g->O, J = g->KW * C;                                                                 \
    __m512 acc[CB][NV];                                                                                        \
    _Pragma("GCC unroll 8") for (int b = 0; b < CB; b++)                                                       \
      _Pragma("GCC unroll 4") for (int v = 0; v < NV; v++) acc[b][v] = _mm512_setzero_ps();                   \
    for (int64_t n = n0; n < n1; n++)                                                                          \
      for (int64_t od = 0; od < g->Do; od++) {                                                                 \
        int64_t id = od * g->sd - g->pf + kd * g->dd;                                                          \
        if (id < 0 || id >= g->D) continue;                                                                    \
        for (int64_t oh = 0; oh < g->Ho; oh++) {                                                               \
          int64_t ih = oh * g->sh - g->pt + kh * g->dh;                                                        \
          if (ih < 0 || ih >= g->H) continue;                                                                  \
          const float *xrow = x + ((n * g->D + id) * g->H + ih) * g->W * C;                                    \
          const float *drow = dz + ((n * g->Do + od) * g->Ho + oh) * g->Wo * O;                                \
          for (int64_t ow = 0; ow < g->Wo; ow++) {                                                             \
            int64_t iw0 = ow * g->sw - g->pl;                                                                  \
            __m512 d[NV];                                                                                      \
            _Pragma("GCC unroll 4") for (int v = 0; v < NV; v++) d[v] = _mm512_loadu_ps(drow + ow * O + 16 * v); \
            if (iw0 >= 0 && iw0 + g->KW <= g->W) {                                                             \
              const float *xr = xrow + iw0 * C + j0;                                                           \
              _Pragma("GCC unroll 8") for (int b = 0; b < CB; b++) {                                           \
                if (b >= cbn) break;                                                                           \
                __m512 xb = _mm512_set1_ps(xr[b]);                                                             \
                _Pragma("GCC unroll 4") for (int v = 0; v < NV; v++) acc[b][v] =                               \
                    _mm512_fmadd_ps(xb, d[v], acc[b][v]);                                                      \
              }                                                                                                \
            } else {                                                                                           \
              _Pragma("GCC unroll 8") for (int b = 0; b < CB; b++) {                                           \
                int64_t j = j0 + b, iw = iw0 + j / C;                                                          \
                if (b >= cbn || iw < 0 || iw >= g->W) continue;                                                \
                __m512 xb = _mm512_set1_ps(xrow[iw * C + j % C]);                                              \
                _Pragma("GCC unroll 4") for (int v = 0; v < NV; v++) acc[b][v] =                               \
                    _mm512_fmadd_ps(xb, d[v], acc[b][v]);                                                      \
              }                                                                                                \
            }                                                                                                  \
          }                                                                                                    \
        }                                                                                                      \
      }                                                                                                        \
    float *pk = part + ((kd * g->KH + kh) * J + j0) * O;                                                       \
    _Pragma("GCC unroll 8") for (int b = 0; b < CB; b++) {                                                     \
      if (b >= cbn) break;                                                                                     \
      _Pragma("GCC unroll 4") for (int v = 0; v < NV; v++) {                                                   \
        float *dst = pk + b * O + 16 * v;                                                                      \
        _mm512_storeu_ps(dst, _mm512_add_ps(_mm512_loadu_ps(dst), acc[b][v]));                                 \
      }                                                                                                        \
    }                                                                                                          \
  }

AVX3_GK(avx3_gk1, 1, 8)
AVX3_GK(avx3_gk2, 2, 6)
AVX3_GK(avx3_gk3, 3, 4)
AVX3_GK(avx3_gk4, 4, 4)

typedef void (*avx3_gk_fn)(const c3g *, const float *, const float *, float *, int64_t, int64_t, int64_t, int64_t,
                           int64_t, int64_t);

/* part (K x O, zero) += the kernel gradient of samples [n0, n1) */
static void avx_gk(const c3g *g, const float *dz, const float *x, float *part, int64_t n0, int64_t n1)
{
  static const avx3_gk_fn fns[5] = {NULL, avx3_gk1, avx3_gk2, avx3_gk3, avx3_gk4};
  static const int cbs[5] = {0, 8, 6, 4, 4};
  int NV = (int)(g->O / 16);
  int64_t J = g->KW * g->C, CB = cbs[NV];
  for (int64_t kd = 0; kd < g->KD; kd++)
    for (int64_t kh = 0; kh < g->KH; kh++)
      for (int64_t j0 = 0; j0 < J; j0 += CB) fns[NV](g, dz, x, part, n0, n1, kd, kh, j0, J - j0 < CB ? J - j0 : CB);
}
#else
static int avx_fwd_ok(const c3g *g) { (void)g; return 0; }
static int avx_gk_ok(const c3g *g) { (void)g; return 0; }
static void avx_gk(const c3g *g, const float *dz, const float *x, float *part, int64_t n0, int64_t n1)
{
  (void)g, (void)dz, (void)x, (void)part, (void)n0, (void)n1;
}
static void avx_fwd(const c3g *g, const float *x, const float *w, const float *bias, int relu, float *y, int64_t n0,
                    int64_t n1)
{
  (void)g, (void)x, (void)w, (void)bias, (void)relu, (void)y, (void)n0, (void)n1;
}
#endif

/* the input positions' taps: output position (o - p + k*d)/s along one axis when it divides */
static inline int out_pos(int64_t i, int64_t k, int64_t s, int64_t d, int64_t p, int64_t no, int64_t *o)
{
  int64_t t = i + p - k * d;
  if (t < 0 || t % s) return 0;
  *o = t / s;
  return *o < no;
}

/* input gradient: dx of samples [n0, n1) gathered from the output positions
** that reach each input position; wt the kernel as (KD, KH, KW, O, C) */
VEC_CLONES static void gi_direct(const c3g *g, const float *dz, const float *wt, float *dx, int64_t n0, int64_t n1)
{
  int64_t C = g->C, O = g->O;
  for (int64_t n = n0; n < n1; n++)
    for (int64_t d = 0; d < g->D; d++)
      for (int64_t h = 0; h < g->H; h++)
        for (int64_t x = 0; x < g->W; x++) {
          float *restrict acc = dx + (((n * g->D + d) * g->H + h) * g->W + x) * C;
          for (int64_t c = 0; c < C; c++) acc[c] = 0.0f;
          for (int64_t kd = 0; kd < g->KD; kd++) {
            int64_t od;
            if (!out_pos(d, kd, g->sd, g->dd, g->pf, g->Do, &od)) continue;
            for (int64_t kh = 0; kh < g->KH; kh++) {
              int64_t oh;
              if (!out_pos(h, kh, g->sh, g->dh, g->pt, g->Ho, &oh)) continue;
              for (int64_t kw = 0; kw < g->KW; kw++) {
                int64_t ow;
                if (!out_pos(x, kw, g->sw, g->dw, g->pl, g->Wo, &ow)) continue;
                const float *restrict dr = dz + (((n * g->Do + od) * g->Ho + oh) * g->Wo + ow) * O;
                const float *restrict wk = wt + ((kd * g->KH + kh) * g->KW + kw) * O * C;
                for (int64_t o = 0; o < O; o++) {
                  float dv = dr[o];
                  const float *restrict wo = wk + o * C;
                  for (int64_t c = 0; c < C; c++) acc[c] += dv * wo[c];
                }
              }
            }
          }
        }
}

/* kernel gradient: part (K x O) += the taps of samples [n0, n1) times dz */
VEC_CLONES static void gk_direct(const c3g *g, const float *dz, const float *x, float *part, int64_t n0, int64_t n1)
{
  int64_t C = g->C, O = g->O;
  for (int64_t n = n0; n < n1; n++)
    for (int64_t od = 0; od < g->Do; od++) {
      int64_t d0, d1;
      tap_range(od, g->sd, g->dd, g->pf, g->KD, g->D, &d0, &d1);
      for (int64_t oh = 0; oh < g->Ho; oh++) {
        int64_t h0, h1;
        tap_range(oh, g->sh, g->dh, g->pt, g->KH, g->H, &h0, &h1);
        for (int64_t ow = 0; ow < g->Wo; ow++) {
          int64_t w0, w1;
          tap_range(ow, g->sw, g->dw, g->pl, g->KW, g->W, &w0, &w1);
          const float *restrict dr = dz + (((n * g->Do + od) * g->Ho + oh) * g->Wo + ow) * O;
          for (int64_t kd = d0; kd < d1; kd++)
            for (int64_t kh = h0; kh < h1; kh++)
              for (int64_t kw = w0; kw < w1; kw++) {
                int64_t id = od * g->sd - g->pf + kd * g->dd, ih = oh * g->sh - g->pt + kh * g->dh;
                int64_t iw = ow * g->sw - g->pl + kw * g->dw;
                const float *restrict xr = x + (((n * g->D + id) * g->H + ih) * g->W + iw) * C;
                float *restrict pk = part + ((kd * g->KH + kh) * g->KW + kw) * C * O;
                for (int64_t c = 0; c < C; c++) {
                  float xv = xr[c];
                  float *restrict pc = pk + c * O;
                  for (int64_t o = 0; o < O; o++) pc[o] += xv * dr[o];
                }
              }
        }
      }
    }
}

/* ---- the passes: jobs run chunk by chunk ---- */

typedef struct job {
  c3g g;
  int algo, relu;
  const float *a, *b, *bias;   /* forward: x, w; dx: dz, w (or wt); dw: dz, x */
  float *out, *scratch;        /* scratch: the slots, then (dw) the chunks' partial sums */
  size_t slot, part_off;
} job;

static void fwd_chunk(void *arg, int c, int G, int t)
{
  const job *j = arg;
  const c3g *g = &j->g;
  int64_t n0, n1, P = gP(g), O = g->O, K = gK(g);
  kr_share(g->N, c, G, &n0, &n1);
  if (j->algo == KR_CONV_ALGO_DIRECT) {
    if (avx_fwd_ok(g)) {
      avx_fwd(g, j->a, j->b, j->bias, j->relu, j->out, n0, n1);
      return;
    }
    fwd_direct(g, j->a, j->b, j->out, n0, n1);
    bias_relu(j->out + n0 * P * O, (n1 - n0) * P, O, j->bias, j->relu);
    return;
  }
  float *cols = j->scratch + (size_t)t * j->slot;
  int64_t R = rows_for(g), end = n1 * P;
  for (int64_t r0 = n0 * P; r0 < end; r0 += R) {
    int64_t nr = end - r0 < R ? end - r0 : R;
    vol2col(g, j->a, r0, nr, cols);
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, (int)nr, (int)O, (int)K, 1.0f, cols, (int)K, j->b, (int)O,
                0.0f, j->out + r0 * O, (int)O);
    bias_relu(j->out + r0 * O, nr, O, j->bias, j->relu);
  }
}

static void gi_chunk(void *arg, int c, int G, int t)
{
  const job *j = arg;
  const c3g *g = &j->g;
  int64_t n0, n1, P = gP(g), O = g->O, K = gK(g), X = g->D * g->H * g->W * g->C;
  kr_share(g->N, c, G, &n0, &n1);
  if (j->algo == KR_CONV_ALGO_DIRECT) {
    gi_direct(g, j->a, j->b, j->out, n0, n1);
  } else {
    float *cols = j->scratch + (size_t)t * j->slot;
    memset(j->out + n0 * X, 0, (size_t)((n1 - n0) * X) * sizeof(float));
    int64_t R = rows_for(g), end = n1 * P;
    for (int64_t r0 = n0 * P; r0 < end; r0 += R) {
      int64_t nr = end - r0 < R ? end - r0 : R;
      cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, (int)nr, (int)K, (int)O, 1.0f, j->a + r0 * O, (int)O, j->b,
                  (int)O, 0.0f, cols, (int)K);
      col2vol_add(g, cols, r0, nr, j->out);
    }
  }
  if (j->bias) bias_relu(j->out + n0 * X, (n1 - n0) * g->D * g->H * g->W, g->C, j->bias, 0);
}

static void gk_chunk(void *arg, int c, int G, int t)
{
  const job *j = arg;
  const c3g *g = &j->g;
  int64_t n0, n1, P = gP(g), O = g->O, K = gK(g);
  kr_share(g->N, c, G, &n0, &n1);
  float *part = j->scratch + j->part_off + (size_t)c * (size_t)(K * O);
  memset(part, 0, (size_t)(K * O) * sizeof(float));
  if (j->algo == KR_CONV_ALGO_DIRECT) {
    if (avx_gk_ok(g)) avx_gk(g, j->a, j->b, part, n0, n1);
    else gk_direct(g, j->a, j->b, part, n0, n1);
    return;
  }
  float *cols = j->scratch + (size_t)t * j->slot;
  int64_t R = rows_for(g), end = n1 * P;
  for (int64_t r0 = n0 * P; r0 < end; r0 += R) {
    int64_t nr = end - r0 < R ? end - r0 : R;
    vol2col(g, j->b, r0, nr, cols);
    cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, (int)K, (int)O, (int)nr, 1.0f, cols, (int)K, j->a + r0 * O,
                (int)O, 1.0f, part, (int)O);
  }
}

/* ---- lowerings, rules and scratch ---- */

enum { PASS_FWD, PASS_GI, PASS_GK };

static int pass_of(int op)
{
  return op == KR_OP_CONV3D ? PASS_FWD : op == KR_OP_CONV3D_GRAD_KERNEL ? PASS_GK : PASS_GI;
}

static int im2col_algo(int pass) { return pass == PASS_GI ? KR_CONV_ALGO_COL2IM : KR_CONV_ALGO_IM2COL; }

static int algo_ok(int pass, int algo) { return algo == KR_CONV_ALGO_DIRECT || algo == im2col_algo(pass); }

/* the input gradient at stride 1 as a forward convolution: dz (N, Do, Ho, Wo,
** O) by the flipped kernel (KD, KH, KW, O, C), padded by (k - 1) * d - pad,
** gives dx (N, D, H, W, C) */
static c3g transposed(const c3g *g)
{
  c3g t = *g;
  t.D = g->Do;
  t.H = g->Ho;
  t.W = g->Wo;
  t.C = g->O;
  t.O = g->C;
  t.Do = g->D;
  t.Ho = g->H;
  t.Wo = g->W;
  t.pf = (g->KD - 1) * g->dd - g->pf;
  t.pt = (g->KH - 1) * g->dh - g->pt;
  t.pl = (g->KW - 1) * g->dw - g->pl;
  return t;
}

/* wt[kd][kh][kw][o][c] = w[KD-1-kd][KH-1-kh][KW-1-kw][c][o] */
static void flip_kernel(const c3g *g, const float *w, float *wt)
{
  int64_t C = g->C, O = g->O;
  for (int64_t kd = 0; kd < g->KD; kd++)
    for (int64_t kh = 0; kh < g->KH; kh++)
      for (int64_t kw = 0; kw < g->KW; kw++) {
        const float *src = w + (((g->KD - 1 - kd) * g->KH + (g->KH - 1 - kh)) * g->KW + (g->KW - 1 - kw)) * C * O;
        float *dst = wt + ((kd * g->KH + kh) * g->KW + kw) * O * C;
        for (int64_t c = 0; c < C; c++)
          for (int64_t o = 0; o < O; o++) dst[o * C + c] = src[c * O + o];
      }
}

/* the fixed rule (measured on an AVX-512 CPU, one thread, 16 to 64 filters):
** the register-tiled direct kernels where they apply -- the forward 2.2-6x
** faster than vol2col + sgemm, the kernel gradient 1.4-6x, the input gradient
** at stride 1 (the forward of the flipped kernel) likewise when the input has
** 16 to 64 channels -- else the sgemm lowerings (col2vol for the input
** gradient: the direct gather is slower on every geometry measured; the
** plain direct loops for kernel gradients of small kernels, C*O <= 64) */
static int rule(const c3g *g, int pass)
{
  if (pass == PASS_FWD) return avx_fwd_ok(g) ? KR_CONV_ALGO_DIRECT : KR_CONV_ALGO_IM2COL;
  if (pass == PASS_GI) {
    c3g t = transposed(g);
    int flip = g->sd == 1 && g->sh == 1 && g->sw == 1 && t.pf >= 0 && t.pt >= 0 && t.pl >= 0 && avx_fwd_ok(&t);
    return flip ? KR_CONV_ALGO_DIRECT : KR_CONV_ALGO_COL2IM;
  }
  return avx_gk_ok(g) || g->C * g->O <= 64 ? KR_CONV_ALGO_DIRECT : KR_CONV_ALGO_IM2COL;
}

/* the scratch layout: `slots` unfolded blocks, then the transposed kernel
** (dx, DIRECT) or G partial sums (dw) */
static size_t slot_floats(const c3g *g) { return up16((size_t)(rows_for(g) * gK(g))); }

static size_t scratch_floats(const c3g *g, int pass, int slots, size_t *part_off)
{
  size_t s = (size_t)slots * slot_floats(g);
  *part_off = s;
  if (pass == PASS_GI) return s + up16((size_t)(gK(g) * g->O));
  if (pass == PASS_GK) return s + (size_t)chunks(g) * up16((size_t)(gK(g) * g->O));
  return s;
}

/* the algo a node runs by: the tuner's choice, else the rule */
static int choose(kr_ctx *ctx, const kr_node *n, const c3g *g, int pass)
{
  int a = kr_conv_algo(ctx, n);
  return a != KR_CONV_ALGO_RULE && algo_ok(pass, a) ? a : rule(g, pass);
}

/* wt (KD, KH, KW, O, C) from w (KD, KH, KW, C, O) */
static void transpose_kernel(const c3g *g, const float *w, float *wt)
{
  int64_t taps = g->KD * g->KH * g->KW, C = g->C, O = g->O;
  for (int64_t t = 0; t < taps; t++)
    for (int64_t c = 0; c < C; c++)
      for (int64_t o = 0; o < O; o++) wt[(t * O + o) * C + c] = w[(t * C + c) * O + o];
}

static void run_pass(const c3g *g, int pass, int algo, const float *a, const float *b, const float *bias, int relu,
                     float *out, float *scratch, int T, int slots)
{
  job j;
  memset(&j, 0, sizeof j);
  j.g = *g;
  j.algo = algo;
  j.relu = relu;
  j.a = a;
  j.b = b;
  j.bias = bias;
  j.out = out;
  j.scratch = scratch;
  j.slot = slot_floats(g);
  scratch_floats(g, pass, slots, &j.part_off);
  int G = chunks(g);
  if (T > slots) T = slots;
  if (pass == PASS_FWD) {
    kr_parallel_chunks(T, G, fwd_chunk, &j);
  } else if (pass == PASS_GI) {
    c3g t = transposed(g);
    if (algo == KR_CONV_ALGO_DIRECT && g->sd == 1 && g->sh == 1 && g->sw == 1 && t.pf >= 0 && t.pt >= 0 &&
        t.pl >= 0 && avx_fwd_ok(&t)) {
      /* stride 1: the forward of dz by the flipped kernel, by the register-tiled loops */
      flip_kernel(g, b, scratch + j.part_off);
      j.g = t;
      j.b = scratch + j.part_off;
      kr_parallel_chunks(T, G, fwd_chunk, &j);
      return;
    }
    if (algo == KR_CONV_ALGO_DIRECT) {
      transpose_kernel(g, b, scratch + j.part_off);
      j.b = scratch + j.part_off;
    }
    kr_parallel_chunks(T, G, gi_chunk, &j);
  } else {
    kr_parallel_chunks(T, G, gk_chunk, &j);
    int64_t KO = gK(g) * g->O;
    kr_sum_chunks(out, scratch + j.part_off, up16((size_t)KO), G, KO);
  }
}

/* ---- the ops' entry points ---- */

static int64_t run_batch(const kr_node *n, int64_t batch)
{
  return n->in[0]->shape.dim[0] < 0 ? batch : n->in[0]->shape.dim[0];
}

size_t kr_conv3d_scratch(const kr_node *n, int64_t batch)
{
  int64_t b = run_batch(n, batch);
  c3g g = node_geom(n, b > 0 ? b : 1);
  size_t off, s = scratch_floats(&g, pass_of(n->op), node_slots(n), &off);
  kr_conv_tune(n, b, s);
  return s;
}

/* the geometry of a running node from its concrete shapes */
static c3g exec_geom(const kr_exec *e)
{
  const kr_node *n = e->node;
  if (n->op == KR_OP_CONV3D) return geom(e->xs[0], e->xs[1], e->ys, &n->attr);
  if (n->op == KR_OP_CONV3D_GRAD_INPUT) return geom(e->ys, e->xs[1], e->xs[0], &n->attr);
  if (n->op == KR_OP_CONV3D_GRAD_KERNEL) return geom(e->xs[1], e->ys, e->xs[0], &n->attr);
  return geom(e->ys, e->xs[1], e->xs[0], &n->attr);
}

static int exec_pass(const kr_exec *e, const float *a, const float *b, const float *bias, int relu)
{
  c3g g = exec_geom(e);
  int pass = pass_of(e->node->op), slots = node_slots(e->node);
  run_pass(&g, pass, choose(e->ctx, e->node, &g, pass), a, b, bias, relu, e->y, e->scratch,
           workers(e->ctx, &g, slots), slots);
  return KR_OK;
}

int kr_k_conv3d(const kr_exec *e)
{
  return exec_pass(e, e->x[0], e->x[1], e->nin > 2 ? e->x[2] : NULL, e->node->attr.f[KR_C3_RELU] != 0);
}

int kr_k_conv3d_grad_input(const kr_exec *e) { return exec_pass(e, e->x[0], e->x[1], NULL, 0); }
int kr_k_conv3d_grad_kernel(const kr_exec *e) { return exec_pass(e, e->x[0], e->x[1], NULL, 0); }
int kr_k_conv3d_transpose(const kr_exec *e) { return exec_pass(e, e->x[0], e->x[1], e->nin > 2 ? e->x[2] : NULL, 0); }

/* ---- the autotuner's view (conv_tune.c) ---- */

int kr_conv3d_algo_valid(const kr_node *n, int algo) { return algo_ok(pass_of(n->op), algo); }

int kr_conv3d_algo_rule(const kr_node *n)
{
  c3g g = node_geom(n, 1);
  return rule(&g, pass_of(n->op));
}

void kr_conv3d_tune_key(const kr_node *n, int64_t *key)
{
  c3g g = node_geom(n, 1);
  int64_t k[KR_CONV_KEY] = {n->op, g.D, g.H, g.W, g.C, g.KD, g.KH, g.KW, g.O, g.Do, g.Ho, g.Wo, g.sd, g.sh, g.sw,
                            g.dd, g.dh, g.dw, g.pf, g.pt, g.pl, n->attr.f[KR_C3_RELU] != 0,
                            n->op == KR_OP_CONV3D_TRANSPOSE || (n->op == KR_OP_CONV3D && n->nin > 2)};
  memcpy(key, k, sizeof k);
}

void kr_conv3d_tune_sizes(const kr_node *n, int64_t batch, size_t *a, size_t *b, size_t *out)
{
  c3g g = node_geom(n, batch);
  size_t nx = (size_t)(g.N * g.D * g.H * g.W * g.C), ny = (size_t)(g.N * gP(&g) * g.O), nw = (size_t)(gK(&g) * g.O);
  int pass = pass_of(n->op);
  *a = pass == PASS_FWD ? nx : ny;
  *b = (pass == PASS_GK ? nx : nw) + (size_t)(g.O > g.C ? g.O : g.C);   /* then room for a bias */
  *out = pass == PASS_FWD ? ny : pass == PASS_GI ? nx : nw;
}

void kr_conv3d_tune_run(const kr_node *n, int64_t batch, int algo, const float *a, const float *b, float *out,
                        float *scratch, int T)
{
  c3g g = node_geom(n, batch);
  int pass = pass_of(n->op);
  const float *bias = NULL;
  if (n->op == KR_OP_CONV3D && n->nin > 2) bias = b + gK(&g) * g.O;
  if (n->op == KR_OP_CONV3D_TRANSPOSE && n->nin > 2) bias = b + gK(&g) * g.O;
  run_pass(&g, pass, algo, a, b, bias, n->attr.f[KR_C3_RELU] != 0, out, scratch, T, node_slots(n));
}

int kr_conv3d_tune_workers(kr_ctx *ctx, const kr_node *n, int64_t batch)
{
  c3g g = node_geom(n, batch);
  return workers(ctx, &g, node_slots(n));
}
