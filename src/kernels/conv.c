/*
** conv.c -- the convolution kernels of the conv family, channels_last (see
** ops_conv.h for the ops, their inputs and attributes): conv2d and its
** gradients with respect to the input, kernel and bias. Pooling, padding,
** cropping, upsampling and spatial dropout are in spatial.c.
** This file is over 1,000 lines because it is one mechanism: the lowering of
** a convolution to products (im2col, the two Winograd forms, the two AVX-512
** kernels), chosen per geometry over one cgeom and one scratch layout.
** Shape letters: N batch, H W input rows and columns, C input channels,
** KH KW kernel (or pool window) size, O filters, Ho Wo output size,
** K = KH*KW*C. A rank-3 tensor (N, T, C) is run as H = 1, W = T.
**
** Lowering. 3x3 kernels at stride 1 with enough channels go through
** Winograd F(2x2, 3x3), and 1D kernels of 3 at stride 1 through F(4, 3);
** other forward products with 16 to 64 filters, no dilation and 12 output columns or
** more (any strides) through a register-tiled AVX-512 kernel (avx_conv) where the CPU
** has one (sections below); the rest through im2col. Kernel gradients with 16 to 64 filters (column dilation 1) have a
** register-tiled AVX-512 kernel of their own (avx_dw_*); the others go through im2col.
** The N*Ho*Wo output positions are the rows of a matrix product.
** A block of R rows is unfolded (im2col) into R x K floats, columns in the
** kernel tensor's own order (kh, kw, c), so the kernel (KH, KW, C, O) is
** already the K x O right-hand matrix: y_block = cols x w by cblas_sgemm,
** then the bias and the fused relu while the block is in cache. R is chosen
** so that a block is about BLOCK_FLOATS floats (it stays in L1/L2). Gradients:
**   dw += cols^T dz  (per chunk, then summed in chunk order);
**   dx  = the stride-1 case is itself a convolution of dz by the kernel
**         flipped and transposed to (KH, KW, O, C), padded by (K-1)*d - pad,
**         so it runs through the same im2col + sgemm; strides > 1 go through
**         dcols = dz w^T and a scatter-add (col2im), or on AVX-512 (16 to 64
**         input channels) through the phase-by-phase direct kernel of
**         conv_transpose.c, which is also conv2d_transpose's forward;
**   db  = the column sums of dz.
** dz = dy, or dy * (y > 0) when the conv's relu is fused (f0 = 1), formed
** block by block in the scratch.
**
** Threads. The samples are cut into G fixed chunks of contiguous samples
** (conv_chunks: up to KR_MAX_CHUNKS; threadpool.h, "Determinism": G and the chunks'
** bounds do not depend on the threads), run by T workers with
** kr_parallel_chunks; the products of a chunk start at its first sample, so
** every float comes out the same for any T. A chunk owns its samples' rows
** of every output, so no two workers write the same float; the kernel
** gradient, a sum over the samples, has one partial sum per chunk, added in
** chunk order (kr_sum_chunks). T = min(the context's threads, the node's scratch slots f1
** (fixed when the node was made, so the plan sized the scratch for them),
** the samples); tiny problems run on one. Workers come from the kernels'
** thread pool (threadpool.h), each with a slot of the op's scratch; OpenBLAS is switched
** to one thread while they run and back afterwards. With a single worker OpenBLAS keeps its own threads. When the
** pool is busy or cannot start, the calling thread runs every share: the
** result does not change.
** Kernels never allocate: every buffer is the plan's (output, aux, scratch).
*/
#include "kernels.h"
#include "../ops_conv.h"
#include "../ops_conv_transpose.h"
#include "threadpool.h"

#include <cblas.h>
#include <math.h>
#include <stdint.h>
#include <string.h>

#include "conv_geom.h"
#include "conv_transpose.h"
#include "conv_thin.h"
#include "conv_pw.h"

#define BLOCK_FLOATS 8192         /* im2col block: 32 KiB, stays in L1/L2 (measured best, 4K-12K) */
#define BLOCK_FLOATS_WIDE 65536   /* the same for 128 filters or more */
#define MIN_ROWS 16
#define MAX_ROWS 1024
#define PAR_MIN_WORK 400000       /* multiply-adds (or copied floats) below which one worker runs */

/* rows of a block for K columns and O filters: small blocks measured best
** for up to 64 filters, larger ones above (OpenBLAS's small-matrix path) */
static int64_t rows_for(int64_t K, int64_t O)
{
  int64_t r = (O >= 128 ? BLOCK_FLOATS_WIDE : BLOCK_FLOATS) / (K > 0 ? K : 1);
  return r < MIN_ROWS ? MIN_ROWS : r > MAX_ROWS ? MAX_ROWS : r;
}

static size_t up16(size_t n) { return (n + 15) / 16 * 16; }

/* workers for N samples and `work` multiply-adds, at most `slots` (also
** the pooling kernels' in spatial.c) */
int kr_conv_workers(const kr_exec *e, int64_t N, double work, int slots)
{
  int T = kr_get_num_threads(e->ctx);
  if (T > slots) T = slots;
  if (T > KR_CONV_MAX_SLOTS) T = KR_CONV_MAX_SLOTS;
  if ((int64_t)T > N) T = (int)N;
  if (work < PAR_MIN_WORK) T = 1;
  return T < 1 ? 1 : T;
}

static int node_slots(const kr_node *n)
{
  int s = (int)n->attr.f[KR_CONV_SLOTS];
  return s < 1 ? 1 : s > KR_CONV_MAX_SLOTS ? KR_CONV_MAX_SLOTS : s;
}

/* ---- geometry ---- */

typedef kr_cgeom cgeom;

static int64_t gK(const cgeom *g) { return g->KH * g->KW * g->C; }

/* the fixed sample chunks of g's batch (threadpool.h, "Determinism"): at most
** 16, each of at least CHUNK_WORK multiply-adds (16 MFLOP, as the matrix
** products' tiles in linalg.c; smaller chunks cut the
** products into blocks too small to run fast on one thread); a function of
** the geometry alone, never larger for a smaller batch */
#define CHUNK_WORK 8e6
static int conv_chunks(const cgeom *g)
{
  double work = (double)g->N * (double)(g->Ho * g->Wo) * (double)(gK(g) * g->O);
  return kr_chunk_count(g->N, 1, work, CHUNK_WORK);
}

/* a pointwise (1x1) kernel at stride 1 without padding: the input rows are the im2col columns, read in place */
static int is_pointwise(const cgeom *g)
{
  return g->KH == 1 && g->KW == 1 && g->sh == 1 && g->sw == 1 && g->pt == 0 && g->pl == 0 && g->Ho == g->H &&
         g->Wo == g->W;
}

/* the transposed geometry of the stride-1 input gradient: dz (N, Ho, Wo, O)
** convolved by the flipped kernel (KH, KW, O, C) gives dx (N, H, W, C) */
static cgeom transposed(const cgeom *g)
{
  cgeom t = *g;
  t.H = g->Ho;
  t.W = g->Wo;
  t.C = g->O;
  t.O = g->C;
  t.Ho = g->H;
  t.Wo = g->W;
  t.pt = (g->KH - 1) * g->dh - g->pt;
  t.pl = (g->KW - 1) * g->dw - g->pl;
  return t;
}

/* the kernel gradient's job (im2col or avx_dw_*) */
typedef struct gk_job {
  cgeom g;
  const float *dy, *mask, *x;
  float *dw, *scratch;
  int bias;
  size_t slot, dz_off, part_off, db_off;   /* part_off: the chunks' partial sums, after the slots */
} gk_job;

/* ---- im2col and col2im over a block of rows ---- */

/* dst[i] = src[i], or src[i] where mask[i] > 0 and 0 elsewhere */
static inline void copy_span(float *restrict dst, const float *restrict src, const float *restrict mask, int64_t n)
{
  if (!mask) {
    if (n > 32) {
      memcpy(dst, src, (size_t)n * sizeof(float));
      return;
    }
    /* short spans (a few channels: the first layer) in fixed-size pieces,
    ** which the compiler inlines, rather than a library call each */
    for (; n >= 8; n -= 8, dst += 8, src += 8) memcpy(dst, src, 8 * sizeof(float));
    if (n & 4) {
      memcpy(dst, src, 4 * sizeof(float));
      dst += 4;
      src += 4;
    }
    if (n & 2) {
      memcpy(dst, src, 2 * sizeof(float));
      dst += 2;
      src += 2;
    }
    if (n & 1) *dst = *src;
    return;
  }
  for (int64_t i = 0; i < n; i++) {
    float v = src[i];   /* loaded unconditionally: the loop vectorizes */
    dst[i] = !(mask[i] <= 0.0f) ? v : 0.0f;   /* a NaN y passes dy, as relu_grad */
  }
}

/* y[i] stays where m[i] > 0 and is 0 elsewhere: an input gradient masked by
** the relu of the layer below (see conv2d_grad_input's f3) */
static inline void keep_where(float *restrict y, const float *restrict m, int64_t n)
{
  for (int64_t i = 0; i < n; i++) y[i] = !(m[i] <= 0.0f) ? y[i] : 0.0f;
}

/* db[o] += the sum of the nr rows of dz (nr x O) */
static void add_rows(float *restrict db, const float *restrict dz, int64_t nr, int64_t O)
{
  for (int64_t i = 0; i < nr; i++) {
    const float *restrict r = dz + i * O;
    for (int64_t o = 0; o < O; o++) db[o] += r[o];
  }
}

/* rows [r0, r0 + nr) of the unfolded input into cols (nr x K); mask: see copy_span */
VEC_CLONES static void im2col(const cgeom *g, const float *x, const float *mask, int64_t r0, int64_t nr, float *cols)
{
  int64_t P = g->Ho * g->Wo, K = gK(g), C = g->C, KW = g->KW;
  int64_t n = r0 / P, rem = r0 % P, oh = rem / g->Wo, ow = rem % g->Wo;
  int64_t plane = g->H * g->W * C, rowlen = g->W * C;
  for (int64_t r = 0; r < nr; r++) {
    float *row = cols + r * K;
    int64_t base = n * plane;
    int64_t h0 = oh * g->sh - g->pt, w0 = ow * g->sw - g->pl;
    for (int64_t kh = 0; kh < g->KH; kh++) {
      int64_t h = h0 + kh * g->dh;
      float *dst = row + kh * KW * C;
      if (h < 0 || h >= g->H) {
        memset(dst, 0, (size_t)(KW * C) * sizeof(float));
        continue;
      }
      int64_t off = base + h * rowlen;
      if (g->dw == 1 && w0 >= 0 && w0 + KW <= g->W) {
        copy_span(dst, x + off + w0 * C, mask ? mask + off + w0 * C : NULL, KW * C);
        continue;
      }
      for (int64_t kw = 0; kw < KW; kw++) {
        int64_t w = w0 + kw * g->dw;
        if (w < 0 || w >= g->W) memset(dst + kw * C, 0, (size_t)C * sizeof(float));
        else copy_span(dst + kw * C, x + off + w * C, mask ? mask + off + w * C : NULL, C);
      }
    }
    if (++ow == g->Wo) {
      ow = 0;
      if (++oh == g->Ho) {
        oh = 0;
        n++;
      }
    }
  }
}

void kr_conv_im2col_block(const cgeom *g, const float *x, const float *mask, int64_t r0, int64_t nr, float *cols)
{
  im2col(g, x, mask, r0, nr, cols);
}

/* the adjoint of im2col: dx += the block's columns, where they came from */
VEC_CLONES static void col2im_add(const cgeom *g, const float *cols, int64_t r0, int64_t nr, float *dx)
{
  int64_t P = g->Ho * g->Wo, K = gK(g), C = g->C, KW = g->KW;
  int64_t n = r0 / P, rem = r0 % P, oh = rem / g->Wo, ow = rem % g->Wo;
  int64_t plane = g->H * g->W * C, rowlen = g->W * C;
  for (int64_t r = 0; r < nr; r++) {
    const float *row = cols + r * K;
    int64_t h0 = oh * g->sh - g->pt, w0 = ow * g->sw - g->pl;
    for (int64_t kh = 0; kh < g->KH; kh++) {
      int64_t h = h0 + kh * g->dh;
      if (h < 0 || h >= g->H) continue;
      float *xr = dx + n * plane + h * rowlen;
      const float *src = row + kh * KW * C;
      for (int64_t kw = 0; kw < KW; kw++) {
        int64_t w = w0 + kw * g->dw;
        if (w < 0 || w >= g->W) continue;
        float *d = xr + w * C;
        const float *s = src + kw * C;
        for (int64_t c = 0; c < C; c++) d[c] += s[c];
      }
    }
    if (++ow == g->Wo) {
      ow = 0;
      if (++oh == g->Ho) {
        oh = 0;
        n++;
      }
    }
  }
}

/* ---- the forward product, also used by the stride-1 input gradient ---- */

/* one forward product on T workers (fwd_rows, wino_rows, wino1_rows): w is
** the kernel, or for Winograd its transform U; scratch: a slot per worker */
typedef struct fwd_job {
  cgeom g;
  const float *x, *mask, *w, *bias, *omask;
  int relu;
  float *y, *scratch;
  size_t slot;
} fwd_job;

VEC_CLONES static void fwd_rows(void *arg, int c, int G, int t)
{
  fwd_job *j = arg;
  const cgeom *g = &j->g;
  int64_t n0, n1, P = g->Ho * g->Wo, K = gK(g), O = g->O, R = rows_for(K, O);
  kr_share(g->N, c, G, &n0, &n1);
  float *cols = j->scratch + (size_t)t * j->slot;
  int pointwise = is_pointwise(g) && !j->mask;
  for (int64_t r = n0 * P; r < n1 * P; r += R) {
    int64_t nr = n1 * P - r < R ? n1 * P - r : R;
    const float *a = cols;
    if (pointwise) a = j->x + r * K;
    else im2col(g, j->x, j->mask, r, nr, cols);
    float *y = j->y + r * O;
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, (int)nr, (int)O, (int)K, 1.0f, a, (int)K, j->w, (int)O,
                0.0f, y, (int)O);
    if (j->bias || j->relu) {
      const float *b = j->bias;
      for (int64_t i = 0; i < nr; i++) {
        float *yr = y + i * O;
        if (b)
          for (int64_t o = 0; o < O; o++) yr[o] += b[o];
        if (j->relu)
          for (int64_t o = 0; o < O; o++) yr[o] = !(yr[o] <= 0.0f) ? yr[o] : 0.0f;   /* NaN stays */
      }
    }
    if (j->omask) keep_where(y, j->omask + r * O, nr * O);
  }
}

/* ---- Winograd F(2x2, 3x3): 3x3 kernels at stride 1 ----
** Each 2x2 block of outputs (a tile) comes from a 4x4 patch of the input:
** V = B^T d B and U = G g G^T turn the convolution into 16 independent
** products M_k = V_k U_k (k over the 4x4 transformed positions), each a
** (tiles x C) by (C x O) sgemm, and Y = A^T M A gives the 2x2 outputs: 16
** multiplications per tile and channel pair instead of 36 (2.25x fewer).
** B^T = [1 0 -1 0; 0 1 1 0; 0 -1 1 0; 0 1 0 -1], G = [1 0 0; .5 .5 .5;
** .5 -.5 .5; 0 0 1], A^T = [1 1 1 0; 0 1 -1 -1]. Tiles are taken in blocks
** of RT (V and M in the worker's slot), the transforms vectorized over the
** channels. Used for enough channels (WINO_MIN_CH, WINO_MIN_SUM), where the
** products are wide enough to run well. */

#define WINO_FLOATS 131072        /* V + M of a block of tiles: 512 KiB */
#define WINO_MIN_CH 16            /* channels on each side, and */
#define WINO_MIN_SUM 96           /* in all: 32 -> 32 ran no faster than im2col (measured), 32 -> 64 did */

static int wino_ok(const cgeom *g)
{
  return g->KH == 3 && g->KW == 3 && g->sh == 1 && g->sw == 1 && g->dh == 1 && g->dw == 1 && g->C >= WINO_MIN_CH &&
         g->O >= WINO_MIN_CH && g->C + g->O >= WINO_MIN_SUM;
}

static int64_t wino_tiles(const cgeom *g)
{
  int64_t r = WINO_FLOATS / (16 * (g->C + g->O));
  return r < 8 ? 8 : r > 256 ? 256 : r;
}

/* slot: V (16 x RT x C), M (16 x RT x O), a 4x4 patch (16 x C), 8 x O */
static size_t wino_slot(const cgeom *g)
{
  int64_t RT = wino_tiles(g);
  return up16((size_t)(16 * RT * g->C)) + up16((size_t)(16 * RT * g->O)) + up16((size_t)(16 * g->C)) +
         up16((size_t)(8 * g->O));
}

/* U_k (C x O), k = 4i + j, from the kernel w (3, 3, C, O) */
static void wino_weights(const cgeom *g, const float *w, float *U)
{
  int64_t CO = g->C * g->O;
  for (int64_t q = 0; q < CO; q++) {
    float k[3][3], t[4][3];
    for (int a = 0; a < 3; a++)
      for (int b = 0; b < 3; b++) k[a][b] = w[(a * 3 + b) * CO + q];
    for (int b = 0; b < 3; b++) {   /* t = G k */
      t[0][b] = k[0][b];
      t[1][b] = 0.5f * (k[0][b] + k[1][b] + k[2][b]);
      t[2][b] = 0.5f * (k[0][b] - k[1][b] + k[2][b]);
      t[3][b] = k[2][b];
    }
    for (int a = 0; a < 4; a++) {   /* U = t G^T */
      U[(a * 4 + 0) * CO + q] = t[a][0];
      U[(a * 4 + 1) * CO + q] = 0.5f * (t[a][0] + t[a][1] + t[a][2]);
      U[(a * 4 + 2) * CO + q] = 0.5f * (t[a][0] - t[a][1] + t[a][2]);
      U[(a * 4 + 3) * CO + q] = t[a][2];
    }
  }
}

VEC_CLONES static void wino_rows(void *arg, int c, int G, int t)
{
  fwd_job *j = arg;
  const cgeom *g = &j->g;
  int64_t C = g->C, O = g->O, RT = wino_tiles(g);
  int64_t TH = (g->Ho + 1) / 2, TW = (g->Wo + 1) / 2, PT = TH * TW, n0, n1;
  kr_share(g->N, c, G, &n0, &n1);
  float *V = j->scratch + (size_t)t * j->slot;
  float *M = V + up16((size_t)(16 * RT * C));
  float *d = M + up16((size_t)(16 * RT * O));
  float *S = d + up16((size_t)(16 * C));
  for (int64_t q0 = n0 * PT; q0 < n1 * PT; q0 += RT) {
    int64_t nt = n1 * PT - q0 < RT ? n1 * PT - q0 : RT;
    /* input transform */
    for (int64_t i = 0; i < nt; i++) {
      int64_t q = q0 + i, n = q / PT, th = q % PT / TW, tw = q % PT % TW;
      int64_t h0 = 2 * th - g->pt, w0 = 2 * tw - g->pl;
      for (int r = 0; r < 4; r++)
        for (int c4 = 0; c4 < 4; c4++) {
          int64_t h = h0 + r, w = w0 + c4;
          float *dst = d + (r * 4 + c4) * C;
          if (h < 0 || h >= g->H || w < 0 || w >= g->W) {
            memset(dst, 0, (size_t)C * sizeof(float));
          } else {
            int64_t off = ((n * g->H + h) * g->W + w) * C;
            copy_span(dst, j->x + off, j->mask ? j->mask + off : NULL, C);
          }
        }
      for (int b = 0; b < 4; b++) {   /* columns: B^T d, in place */
        float *restrict d0 = d + b * C, *restrict d1 = d + (4 + b) * C, *restrict d2 = d + (8 + b) * C,
                        *restrict d3 = d + (12 + b) * C;
        for (int64_t c = 0; c < C; c++) {
          float a0 = d0[c], a1 = d1[c], a2 = d2[c], a3 = d3[c];
          d0[c] = a0 - a2;
          d1[c] = a1 + a2;
          d2[c] = a2 - a1;
          d3[c] = a1 - a3;
        }
      }
      for (int a = 0; a < 4; a++) {   /* rows: (B^T d) B, into V */
        const float *restrict e0 = d + (a * 4) * C, *restrict e1 = d + (a * 4 + 1) * C,
                              *restrict e2 = d + (a * 4 + 2) * C, *restrict e3 = d + (a * 4 + 3) * C;
        float *restrict v0 = V + ((a * 4 + 0) * RT + i) * C, *restrict v1 = V + ((a * 4 + 1) * RT + i) * C;
        float *restrict v2 = V + ((a * 4 + 2) * RT + i) * C, *restrict v3 = V + ((a * 4 + 3) * RT + i) * C;
        for (int64_t c = 0; c < C; c++) {
          float a0 = e0[c], a1 = e1[c], a2 = e2[c], a3 = e3[c];
          v0[c] = a0 - a2;
          v1[c] = a1 + a2;
          v2[c] = a2 - a1;
          v3[c] = a1 - a3;
        }
      }
    }
    /* the 16 products */
    for (int k = 0; k < 16; k++)
      cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, (int)nt, (int)O, (int)C, 1.0f, V + k * RT * C, (int)C,
                  j->w + k * C * O, (int)O, 0.0f, M + k * RT * O, (int)O);
    /* output transform, bias, relu */
    for (int64_t i = 0; i < nt; i++) {
      int64_t q = q0 + i, n = q / PT, th = q % PT / TW, tw = q % PT % TW;
      for (int b = 0; b < 4; b++) {   /* S = A^T m: 2 x 4 */
        const float *restrict m0 = M + ((0 + b) * RT + i) * O, *restrict m1 = M + ((4 + b) * RT + i) * O;
        const float *restrict m2 = M + ((8 + b) * RT + i) * O, *restrict m3 = M + ((12 + b) * RT + i) * O;
        float *restrict s0 = S + b * O, *restrict s1 = S + (4 + b) * O;
        for (int64_t o = 0; o < O; o++) {
          s0[o] = m0[o] + m1[o] + m2[o];
          s1[o] = m1[o] - m2[o] - m3[o];
        }
      }
      for (int a = 0; a < 2; a++) {   /* Y = S A: 2 x 2 */
        int64_t oh = 2 * th + a;
        if (oh >= g->Ho) break;
        const float *restrict r0 = S + (a * 4) * O, *restrict r1 = S + (a * 4 + 1) * O;
        const float *restrict r2 = S + (a * 4 + 2) * O, *restrict r3 = S + (a * 4 + 3) * O;
        for (int b = 0; b < 2; b++) {
          int64_t ow = 2 * tw + b;
          if (ow >= g->Wo) break;
          float *restrict yo = j->y + ((n * g->Ho + oh) * g->Wo + ow) * O;
          const float *restrict bias = j->bias;
          if (b == 0)
            for (int64_t o = 0; o < O; o++) yo[o] = r0[o] + r1[o] + r2[o];
          else
            for (int64_t o = 0; o < O; o++) yo[o] = r1[o] - r2[o] - r3[o];
          if (bias)
            for (int64_t o = 0; o < O; o++) yo[o] += bias[o];
          if (j->relu)
            for (int64_t o = 0; o < O; o++) yo[o] = !(yo[o] <= 0.0f) ? yo[o] : 0.0f;
          if (j->omask) keep_where(yo, j->omask + ((n * g->Ho + oh) * g->Wo + ow) * O, O);
        }
      }
    }
  }
}

/* ---- Winograd F(4, 3): 1D kernels of 3 at stride 1 ----
** Four outputs (a tile) come from six inputs: v = B^T d and u = G g turn
** the convolution into 6 independent products M_k = V_k U_k, each a
** (tiles x C) by (C x O) sgemm, and y = A^T m gives the 4 outputs: 6
** multiplications per tile and channel pair instead of 12 (2x fewer).
** B^T = [4 0 -5 0 1 0; 0 -4 -4 1 1 0; 0 4 -4 -1 1 0; 0 -2 -1 2 1 0;
**        0 2 -1 -2 1 0; 0 4 0 -5 0 1],
** G = [1/4 0 0; -1/6 -1/6 -1/6; -1/6 1/6 -1/6; 1/24 1/12 1/6;
**      1/24 -1/12 1/6; 0 0 1],
** A^T = [1 1 1 1 1 0; 0 1 -1 2 -2 0; 0 1 1 4 4 0; 0 1 -1 8 -8 1].
** Padding (same, causal) is zero rows in the tiles; a tile past the end
** computes outputs that are not stored. Rank-3 inputs only (H = 1). */

#define WINO1_FLOATS 196608       /* V + M of a block of tiles: 768 KiB */
#define WINO1_MIN_CH 8            /* channels on each side */

static int wino1_ok(const cgeom *g)
{
  return g->H == 1 && g->KH == 1 && g->KW == 3 && g->sw == 1 && g->dw == 1 && g->C >= WINO1_MIN_CH &&
         g->O >= WINO1_MIN_CH;
}

static int64_t wino1_tiles(const cgeom *g)
{
  int64_t r = WINO1_FLOATS / (6 * (g->C + g->O));
  return r < 8 ? 8 : r > 512 ? 512 : r;
}

/* slot: V (6 x RT x C), M (6 x RT x O), a tile of input rows (6 x C), a zero
** row (C or O: padding, and the bias when there is none), 4 output rows
** (4 x O) for the last tile of a sample */
static size_t wino1_slot(const cgeom *g)
{
  int64_t RT = wino1_tiles(g), Z = g->C > g->O ? g->C : g->O;
  return up16((size_t)(6 * RT * g->C)) + up16((size_t)(6 * RT * g->O)) + up16((size_t)(6 * g->C)) +
         up16((size_t)Z) + up16((size_t)(4 * g->O));
}

/* U_k (C x O) from the kernel w (3, C, O) */
VEC_CLONES static void wino1_weights_n(int64_t n, const float *restrict g0, const float *restrict g1,
                                       const float *restrict g2, float *restrict u0, float *restrict u1,
                                       float *restrict u2, float *restrict u3, float *restrict u4,
                                       float *restrict u5)
{
  const float s6 = 1.0f / 6.0f, s12 = 1.0f / 12.0f, s24 = 1.0f / 24.0f;
  for (int64_t q = 0; q < n; q++) {
    float a = g0[q], b = g1[q], c = g2[q];
    u0[q] = 0.25f * a;
    u1[q] = -s6 * (a + b + c);
    u2[q] = -s6 * (a - b + c);
    u3[q] = s24 * a + s12 * b + s6 * c;
    u4[q] = s24 * a - s12 * b + s6 * c;
    u5[q] = c;
  }
}

static void wino1_weights(const cgeom *g, const float *w, float *U)
{
  int64_t CO = g->C * g->O;
  wino1_weights_n(CO, w, w + CO, w + 2 * CO, U, U + CO, U + 2 * CO, U + 3 * CO, U + 4 * CO, U + 5 * CO);
}

/* v = B^T d over C channels */
static inline void wino1_in(int64_t C, const float *restrict d0, const float *restrict d1, const float *restrict d2,
                            const float *restrict d3, const float *restrict d4, const float *restrict d5,
                            float *restrict v0, float *restrict v1, float *restrict v2, float *restrict v3,
                            float *restrict v4, float *restrict v5)
{
  for (int64_t c = 0; c < C; c++) {
    float a0 = d0[c], a1 = d1[c], a2 = d2[c], a3 = d3[c], a4 = d4[c], a5 = d5[c];
    v0[c] = 4.0f * a0 - 5.0f * a2 + a4;
    v1[c] = a3 + a4 - 4.0f * (a1 + a2);
    v2[c] = a4 - a3 + 4.0f * (a1 - a2);
    v3[c] = a4 - a2 + 2.0f * (a3 - a1);
    v4[c] = a4 - a2 - 2.0f * (a3 - a1);
    v5[c] = 4.0f * a1 - 5.0f * a3 + a5;
  }
}

/* 4 output rows y = A^T m + bias (relu when `relu`, a constant where it is inlined) over O filters */
static inline void wino1_out(int64_t O, const float *restrict m0, const float *restrict m1, const float *restrict m2,
                             const float *restrict m3, const float *restrict m4, const float *restrict m5,
                             const float *restrict bias, const int relu, float *restrict y)
{
  for (int64_t o = 0; o < O; o++) {
    float s12 = m1[o] + m2[o], d12 = m1[o] - m2[o], s34 = m3[o] + m4[o], d34 = m3[o] - m4[o], b = bias[o];
    float y0 = m0[o] + s12 + s34 + b, y1 = d12 + 2.0f * d34 + b, y2 = s12 + 4.0f * s34 + b,
          y3 = d12 + 8.0f * d34 + m5[o] + b;
    if (relu) {
      y0 = !(y0 <= 0.0f) ? y0 : 0.0f;
      y1 = !(y1 <= 0.0f) ? y1 : 0.0f;
      y2 = !(y2 <= 0.0f) ? y2 : 0.0f;
      y3 = !(y3 <= 0.0f) ? y3 : 0.0f;
    }
    y[o] = y0;
    y[O + o] = y1;
    y[2 * O + o] = y2;
    y[3 * O + o] = y3;
  }
}

VEC_CLONES static void wino1_rows(void *arg, int c, int G, int t)
{
  fwd_job *j = arg;
  const cgeom *g = &j->g;
  int64_t C = g->C, O = g->O, RT = wino1_tiles(g), PT = (g->Wo + 3) / 4, n0, n1;
  kr_share(g->N, c, G, &n0, &n1);
  float *V = j->scratch + (size_t)t * j->slot;
  float *M = V + up16((size_t)(6 * RT * C));
  float *patch = M + up16((size_t)(6 * RT * O));
  float *zero = patch + up16((size_t)(6 * C));
  int64_t Z = C > O ? C : O;
  float *last = zero + up16((size_t)Z);
  const float *bias = j->bias ? j->bias : zero;
  memset(zero, 0, (size_t)Z * sizeof(float));
  for (int64_t q0 = n0 * PT; q0 < n1 * PT; q0 += RT) {
    int64_t nt = n1 * PT - q0 < RT ? n1 * PT - q0 : RT;
    /* input transform */
    for (int64_t i = 0; i < nt; i++) {
      int64_t q = q0 + i, n = q / PT, w0 = 4 * (q % PT) - g->pl;
      const float *d[6];
      for (int k = 0; k < 6; k++) {
        int64_t w = w0 + k;
        if (w < 0 || w >= g->W) {
          d[k] = zero;
        } else if (j->mask) {
          int64_t off = (n * g->W + w) * C;
          copy_span(patch + k * C, j->x + off, j->mask + off, C);
          d[k] = patch + k * C;
        } else {
          d[k] = j->x + (n * g->W + w) * C;
        }
      }
      wino1_in(C, d[0], d[1], d[2], d[3], d[4], d[5], V + i * C, V + (RT + i) * C, V + (2 * RT + i) * C,
               V + (3 * RT + i) * C, V + (4 * RT + i) * C, V + (5 * RT + i) * C);
    }
    /* the 6 products */
    for (int k = 0; k < 6; k++)
      cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, (int)nt, (int)O, (int)C, 1.0f, V + k * RT * C, (int)C,
                  j->w + k * C * O, (int)O, 0.0f, M + k * RT * O, (int)O);
    /* output transform, bias, relu */
    for (int64_t i = 0; i < nt; i++) {
      int64_t q = q0 + i, n = q / PT, ow = 4 * (q % PT);
      int64_t rows = g->Wo - ow < 4 ? g->Wo - ow : 4;
      float *y = j->y + (n * g->Wo + ow) * O, *dst = rows == 4 ? y : last;
      const float *m = M + i * O;
      size_t k = (size_t)(RT * O);
      if (j->relu) wino1_out(O, m, m + k, m + 2 * k, m + 3 * k, m + 4 * k, m + 5 * k, bias, 1, dst);
      else wino1_out(O, m, m + k, m + 2 * k, m + 3 * k, m + 4 * k, m + 5 * k, bias, 0, dst);
      if (rows < 4) memcpy(y, last, (size_t)(rows * O) * sizeof(float));
      if (j->omask) keep_where(y, j->omask + (n * g->Wo + ow) * O, rows * O);
    }
  }
}

/* ---- avx_conv: register-tiled convolution on AVX-512: any strides, no dilation, 16 to 64 filters ----
** For narrow layers (32 -> 32 filters and the like) the im2col products are
** too thin for OpenBLAS to run well, and Winograd's are thinner still. Here
** each output pixel's O filters stay in NV = O/16 vector registers; a tile of
** PW pixels along a row (NV * PW accumulators, 24 of the 32 registers) sums
** over the taps and the channels: per channel, NV loads of the kernel and PW
** broadcasts of the input feed NV * PW fused multiply-adds. Bias and relu are
** applied before the one store. No scratch: the input is read in place.
** A tile whose taps all fall inside the row runs at full width; the pixels
** at a padded edge run one at a time, skipping the taps outside. The last
** tile of a row is moved left to end at the row's end (pixels computed twice
** are written twice with the same value). Only without an input mask (the
** forward pass proper), picked at run time on CPUs with AVX-512F. */

#if defined(__GNUC__) && !defined(__clang__) && defined(__x86_64__)
#include <immintrin.h>
#define HAVE_AVX512 1

#define AVX_CONV_MIN_CH 3

/* output columns [*lo, *hi) whose taps (column dilation 1) all fall inside the input row */
static void inside_cols(const cgeom *g, int64_t *lo, int64_t *hi)
{
  int64_t l = (g->pl + g->sw - 1) / g->sw, last = g->W - g->KW + g->pl, h = last < 0 ? 0 : last / g->sw + 1;
  if (l > g->Wo) l = g->Wo;
  if (h > g->Wo) h = g->Wo;
  *lo = l;
  *hi = h < l ? l : h;
}

static int cpu_has_avx512(void) { return __builtin_cpu_supports("avx512f") != 0; }

/* valid from 12 output columns, or from one full tile's (PW pixels,
** avx_conv_rows) where that is less; the fixed rule (fwd_rule) takes it
** from 12 */
static int avx_conv_ok(const cgeom *g)
{
  static const int min_wo[5] = {0, 12, 12, 8, 6};
  return cpu_has_avx512() && g->dh == 1 && g->dw == 1 && g->O % 16 == 0 && g->O <= 64 && g->C >= AVX_CONV_MIN_CH &&
         g->Wo >= min_wo[g->O / 16];
}

typedef struct avx_conv_job {
  cgeom g;
  const float *x, *w, *bias, *omask;
  int relu;
  float *y;
} avx_conv_job;

/* PW pixels from output column ow0 of row (n, oh), taps kh in [kh0, kh1);
** every kw tap of every pixel inside the row when `inside`, else PW must be 1
** and taps outside the row are skipped */
#define AVX_CONV_TILE(NAME, NV, PW)                                                                                 \
  __attribute__((target("avx512f,fma"))) static void NAME(const avx_conv_job *j, int64_t n, int64_t oh,         \
                                                         int64_t ow0, int64_t kh0, int64_t kh1)              \
  {                                                                                                          \
    const cgeom *g = &j->g;                                                                                  \
    int64_t C = g->C, O = g->O;                                                                              \
    __m512 acc[PW][NV];                                                                                      \
    _Pragma("GCC unroll 16") for (int p = 0; p < PW; p++)                                                    \
      _Pragma("GCC unroll 4") for (int v = 0; v < NV; v++) acc[p][v] = _mm512_setzero_ps();                 \
    for (int64_t kh = kh0; kh < kh1; kh++) {                                                                 \
      int64_t h = oh * g->sh - g->pt + kh;                                                                   \
      for (int64_t kw = 0; kw < g->KW; kw++) {                                                               \
        int64_t w0 = ow0 * g->sw - g->pl + kw;                                                               \
        if (PW == 1 && (w0 < 0 || w0 >= g->W)) continue;                                                     \
        const float *xr = j->x + ((n * g->H + h) * g->W + w0) * C;                                           \
        const float *wk = j->w + (kh * g->KW + kw) * C * O;                                                  \
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
    float *yr = j->y + ((n * g->Ho + oh) * g->Wo + ow0) * O;                                                 \
    _Pragma("GCC unroll 4") for (int v = 0; v < NV; v++) {                                                   \
      __m512 b = j->bias ? _mm512_loadu_ps(j->bias + 16 * v) : _mm512_setzero_ps();                          \
      _Pragma("GCC unroll 16") for (int p = 0; p < PW; p++) {                                                \
        __m512 r = _mm512_add_ps(acc[p][v], b);                                                              \
        if (j->relu) /* r <= 0 (ordered) -> 0: NaN stays, where max_ps would give 0 */                       \
          r = _mm512_mask_mov_ps(r, _mm512_cmp_ps_mask(r, _mm512_setzero_ps(), _CMP_LE_OQ), _mm512_setzero_ps()); \
        if (j->omask)                                                                                        \
          r = _mm512_maskz_mov_ps(_mm512_cmp_ps_mask(_mm512_loadu_ps(j->omask + (yr - j->y) + p * O + 16 * v), \
                                                     _mm512_setzero_ps(), _CMP_GT_OQ),                       \
                                  r);                                                                        \
        _mm512_storeu_ps(yr + p * O + 16 * v, r);                                                            \
      }                                                                                                      \
    }                                                                                                        \
  }

AVX_CONV_TILE(avx_conv_tile1, 1, 24)
AVX_CONV_TILE(avx_conv_tile2, 2, 12)
AVX_CONV_TILE(avx_conv_tile3, 3, 8)
AVX_CONV_TILE(avx_conv_tile4, 4, 6)
AVX_CONV_TILE(avx_conv_px1, 1, 1)
AVX_CONV_TILE(avx_conv_px2, 2, 1)
AVX_CONV_TILE(avx_conv_px3, 3, 1)
AVX_CONV_TILE(avx_conv_px4, 4, 1)

typedef void (*avx_conv_fn)(const avx_conv_job *, int64_t, int64_t, int64_t, int64_t, int64_t);

static void avx_conv_rows(void *arg, int c, int G, int t)
{
  const avx_conv_job *j = arg;
  const cgeom *g = &j->g;
  int NV = (int)(g->O / 16);
  static const int pws[5] = {0, 24, 12, 8, 6};
  static const avx_conv_fn tiles[5] = {NULL, avx_conv_tile1, avx_conv_tile2, avx_conv_tile3, avx_conv_tile4};
  static const avx_conv_fn pixels[5] = {NULL, avx_conv_px1, avx_conv_px2, avx_conv_px3, avx_conv_px4};
  int64_t PW = pws[NV], n0, n1, lo, hi;
  avx_conv_fn tile = tiles[NV], px = pixels[NV];
  kr_share(g->N, c, G, &n0, &n1);
  inside_cols(g, &lo, &hi);
  for (int64_t n = n0; n < n1; n++)
    for (int64_t oh = 0; oh < g->Ho; oh++) {
      int64_t kh0 = g->pt - oh * g->sh, kh1 = g->H + g->pt - oh * g->sh;
      if (kh0 < 0) kh0 = 0;
      if (kh1 > g->KH) kh1 = g->KH;
      for (int64_t ow = 0; ow < lo; ow++) px(j, n, oh, ow, kh0, kh1);
      if (hi - lo >= PW) {
        for (int64_t ow = lo; ow < hi; ow += PW) tile(j, n, oh, ow + PW <= hi ? ow : hi - PW, kh0, kh1);
      } else {
        for (int64_t ow = lo; ow < hi; ow++) px(j, n, oh, ow, kh0, kh1);
      }
      for (int64_t ow = hi; ow < g->Wo; ow++) px(j, n, oh, ow, kh0, kh1);
    }
}

/* ---- avx_dw: the kernel gradient on AVX-512: 16 to 64 filters, column dilation 1 ----
** dw[kh][kw][c][:] = the sum over output pixels p of x[p's tap (kh, kw)][c] *
** dz[p][:]. For one kh the (kw, c) pairs are one run of J = KW*C floats in
** both x (along a row, from the pixel's first tap) and dw, so a tile holds CB
** consecutive of them times the O filters in registers (NV = O/16 vectors
** each; CB * NV <= 24) and sums over the pixels whose taps all fall inside
** the row: per pixel, NV loads of dz and CB broadcasts of x feed CB * NV fused
** multiply-adds. Pixels at a padded edge go one at a time, tap by tap. The
** output rows are taken in strips of AVX_DW_FLOATS floats of dz, formed once per
** strip when the conv's relu is fused (dz = dy where y > 0), so the passes
** over a strip read it from cache. Any strides and row dilation. */

#define AVX_DW_FLOATS 16384          /* dz of a strip: 64 KiB */

static int avx_dw_ok(const cgeom *g)
{
  return cpu_has_avx512() && g->dw == 1 && g->O % 16 == 0 && g->O <= 64 && !is_pointwise(g);
}

static int64_t avx_dw_rows(const cgeom *g)
{
  int64_t r = AVX_DW_FLOATS / (g->Wo * g->O);
  return r < 1 ? 1 : r > g->Ho ? g->Ho : r;
}

/* acc (CB rows of dw from j0, stride O) += over the output rows [oh0, oh1) of
** the strip starting at row s0 (dz: the strip) and the columns [lo, hi) */
#define AVX_DW_TILE(NAME, NV, CB)                                                                                   \
  __attribute__((target("avx512f,fma"))) static void NAME(const cgeom *g, const float *x, const float *dz,     \
                                                         float *acc, int64_t n, int64_t s0, int64_t oh0,        \
                                                         int64_t oh1, int64_t kh, int64_t j0, int64_t lo,       \
                                                         int64_t hi)                                            \
  {                                                                                                             \
    int64_t C = g->C, O = g->O, step = g->sw * C;                                                               \
    __m512 a[CB][NV];                                                                                           \
    _Pragma("GCC unroll 24") for (int i = 0; i < CB; i++)                                                       \
      _Pragma("GCC unroll 4") for (int v = 0; v < NV; v++) a[i][v] = _mm512_loadu_ps(acc + i * O + 16 * v);    \
    for (int64_t oh = oh0; oh < oh1; oh++) {                                                                    \
      int64_t h = oh * g->sh + kh * g->dh - g->pt;                                                              \
      const float *xp = x + ((n * g->H + h) * g->W + lo * g->sw - g->pl) * C + j0;                              \
      const float *dp = dz + ((oh - s0) * g->Wo + lo) * O;                                                      \
      for (int64_t ow = lo; ow < hi; ow++, xp += step, dp += O) {                                               \
        __m512 d[NV];                                                                                           \
        _Pragma("GCC unroll 4") for (int v = 0; v < NV; v++) d[v] = _mm512_loadu_ps(dp + 16 * v);              \
        _Pragma("GCC unroll 24") for (int i = 0; i < CB; i++) {                                                 \
          __m512 b = _mm512_set1_ps(xp[i]);                                                                     \
          _Pragma("GCC unroll 4") for (int v = 0; v < NV; v++) a[i][v] = _mm512_fmadd_ps(b, d[v], a[i][v]);    \
        }                                                                                                       \
      }                                                                                                         \
    }                                                                                                           \
    _Pragma("GCC unroll 24") for (int i = 0; i < CB; i++)                                                       \
      _Pragma("GCC unroll 4") for (int v = 0; v < NV; v++) _mm512_storeu_ps(acc + i * O + 16 * v, a[i][v]);    \
  }

typedef void (*avx_dw_fn)(const cgeom *, const float *, const float *, float *, int64_t, int64_t, int64_t, int64_t,
                       int64_t, int64_t, int64_t, int64_t);

AVX_DW_TILE(avx_dw_1_24, 1, 24)
AVX_DW_TILE(avx_dw_1_8, 1, 8)
AVX_DW_TILE(avx_dw_1_4, 1, 4)
AVX_DW_TILE(avx_dw_1_2, 1, 2)
AVX_DW_TILE(avx_dw_1_1, 1, 1)
AVX_DW_TILE(avx_dw_2_12, 2, 12)
AVX_DW_TILE(avx_dw_2_8, 2, 8)
AVX_DW_TILE(avx_dw_2_4, 2, 4)
AVX_DW_TILE(avx_dw_2_2, 2, 2)
AVX_DW_TILE(avx_dw_2_1, 2, 1)
AVX_DW_TILE(avx_dw_3_8, 3, 8)
AVX_DW_TILE(avx_dw_3_4, 3, 4)
AVX_DW_TILE(avx_dw_3_2, 3, 2)
AVX_DW_TILE(avx_dw_3_1, 3, 1)
AVX_DW_TILE(avx_dw_4_6, 4, 6)
AVX_DW_TILE(avx_dw_4_4, 4, 4)
AVX_DW_TILE(avx_dw_4_2, 4, 2)
AVX_DW_TILE(avx_dw_4_1, 4, 1)

/* per NV: the tile widths, widest first, and their kernels */
static const int avx_dw_cb[5][5] = {{0}, {24, 8, 4, 2, 1}, {12, 8, 4, 2, 1}, {8, 4, 2, 1, 0}, {6, 4, 2, 1, 0}};
static const avx_dw_fn avx_dw_tiles[5][5] = {{NULL},
                                       {avx_dw_1_24, avx_dw_1_8, avx_dw_1_4, avx_dw_1_2, avx_dw_1_1},
                                       {avx_dw_2_12, avx_dw_2_8, avx_dw_2_4, avx_dw_2_2, avx_dw_2_1},
                                       {avx_dw_3_8, avx_dw_3_4, avx_dw_3_2, avx_dw_3_1, NULL},
                                       {avx_dw_4_6, avx_dw_4_4, avx_dw_4_2, avx_dw_4_1, NULL}};

/* one edge pixel (n, oh, ow) of tap row kh: every tap inside the row */
__attribute__((target("avx512f,fma"))) static void avx_dw_pixel(const cgeom *g, const float *x, const float *d,
                                                            float *acc, int64_t n, int64_t oh, int64_t ow,
                                                            int64_t kh)
{
  int64_t C = g->C, O = g->O, h = oh * g->sh + kh * g->dh - g->pt;
  for (int64_t kw = 0; kw < g->KW; kw++) {
    int64_t w = ow * g->sw - g->pl + kw;
    if (w < 0 || w >= g->W) continue;
    const float *xp = x + ((n * g->H + h) * g->W + w) * C;
    float *ap = acc + (kh * g->KW + kw) * C * O;
    for (int64_t c = 0; c < C; c++) {
      __m512 b = _mm512_set1_ps(xp[c]);
      for (int64_t o = 0; o < O; o += 16)
        _mm512_storeu_ps(ap + c * O + o, _mm512_fmadd_ps(b, _mm512_loadu_ps(d + o), _mm512_loadu_ps(ap + c * O + o)));
    }
  }
}

static void avx_dw_rows_fn(void *arg, int c, int G, int t)
{
  gk_job *j = arg;
  const cgeom *g = &j->g;
  int64_t n0, n1, lo, hi, O = g->O, K = gK(g), J = g->KW * g->C, S = avx_dw_rows(g), NV = O / 16;
  kr_share(g->N, c, G, &n0, &n1);
  float *slot = j->scratch + (size_t)t * j->slot, *acc = j->scratch + j->part_off + (size_t)c * j->db_off;
  float *db = acc + up16((size_t)(K * O));
  memset(acc, 0, (size_t)(K * O) * sizeof(float));
  if (j->bias) memset(db, 0, (size_t)O * sizeof(float));
  inside_cols(g, &lo, &hi);
  for (int64_t n = n0; n < n1; n++)
    for (int64_t s0 = 0; s0 < g->Ho; s0 += S) {
      int64_t rows = g->Ho - s0 < S ? g->Ho - s0 : S, np = rows * g->Wo;
      const float *dz = j->dy + (n * g->Ho + s0) * g->Wo * O;
      if (j->mask) {
        copy_span(slot, dz, j->mask + (n * g->Ho + s0) * g->Wo * O, np * O);
        dz = slot;
      }
      if (j->bias) add_rows(db, dz, np, O);
      for (int64_t kh = 0; kh < g->KH; kh++) {
        /* the strip's rows whose tap row kh falls inside the input */
        int64_t oh0 = s0, oh1 = s0 + rows;
        while (oh0 < oh1 && oh0 * g->sh + kh * g->dh - g->pt < 0) oh0++;
        while (oh1 > oh0 && (oh1 - 1) * g->sh + kh * g->dh - g->pt >= g->H) oh1--;
        if (oh0 == oh1) continue;
        if (hi > lo) {
          int64_t j0 = 0;
          for (int k = 0; k < 5 && j0 < J; k++) {
            int cb = avx_dw_cb[NV][k];
            if (!cb) break;
            for (; J - j0 >= cb; j0 += cb)
              avx_dw_tiles[NV][k](g, j->x, dz, acc + (kh * J + j0) * O, n, s0, oh0, oh1, kh, j0, lo, hi);
          }
        }
        for (int64_t oh = oh0; oh < oh1; oh++) {
          const float *dr = dz + (oh - s0) * g->Wo * O;
          for (int64_t ow = 0; ow < lo; ow++) avx_dw_pixel(g, j->x, dr + ow * O, acc, n, oh, ow, kh);
          for (int64_t ow = hi; ow < g->Wo; ow++) avx_dw_pixel(g, j->x, dr + ow * O, acc, n, oh, ow, kh);
        }
      }
    }
}
#else
#define HAVE_AVX512 0
#endif

/* ---- the forward product: Winograd or im2col; also the stride-1 input gradient ---- */

static size_t fwd_slot(const cgeom *g) { return up16((size_t)(rows_for(gK(g), g->O) * gK(g))); }

#if !HAVE_AVX512
static int avx_conv_ok(const cgeom *g) { (void)g; return 0; }
static int avx_dw_ok(const cgeom *g) { (void)g; return 0; }
#endif

/* Lowerings (KR_CONV_ALGO_*, ops_conv.h): KR_CONV_ALGO_RULE is the fixed
** rule; the others force one candidate where it is valid for the geometry
** (algo_ok), for the autotuner (conv_tune.c) and the tests. */
static int fwd_algo_ok(const cgeom *g, int algo, int masked)
{
  switch (algo) {
  case KR_CONV_ALGO_IM2COL: return 1;
  case KR_CONV_ALGO_WINOGRAD: return wino_ok(g);
  case KR_CONV_ALGO_WINOGRAD1D: return wino1_ok(g);
  case KR_CONV_ALGO_DIRECT: return !masked && (avx_conv_ok(g) || kr_thin_ok(g));   /* conv_thin.c: O <= 4 */
  case KR_CONV_ALGO_PACKED: return 1;
  default: return 0;
  }
}

/* the fixed rule's forward lowering */
static int fwd_rule(const cgeom *g, int masked)
{
#if HAVE_AVX512
  if (!masked && !wino_ok(g) && !wino1_ok(g) && !is_pointwise(g) && avx_conv_ok(g) && g->Wo >= 12)
    return KR_CONV_ALGO_DIRECT;
#endif
  if (wino_ok(g)) return KR_CONV_ALGO_WINOGRAD;
  if (wino1_ok(g)) return KR_CONV_ALGO_WINOGRAD1D;
  return KR_CONV_ALGO_IM2COL;
}

/* the scratch of a forward product by `algo`: `shared` floats (Winograd's U) + a slot per worker */
static void fwd_layout(const cgeom *g, int algo, size_t *shared, size_t *slot)
{
  if (algo == KR_CONV_ALGO_WINOGRAD) {
    *shared = up16((size_t)(16 * g->C * g->O));
    *slot = wino_slot(g);
  } else if (algo == KR_CONV_ALGO_WINOGRAD1D) {
    *shared = up16((size_t)(6 * g->C * g->O));
    *slot = wino1_slot(g);
  } else if (algo == KR_CONV_ALGO_DIRECT) {
    *shared = avx_conv_ok(g) ? 0 : kr_thin_forward_scratch(g);   /* the thin kernel's repacked weights */
    *slot = 0;
  } else if (algo == KR_CONV_ALGO_PACKED) {
    kr_conv_pw_layout(g, shared, slot);
  } else {
    *shared = 0;
    *slot = fwd_slot(g);
  }
}

/* the largest forward scratch of any valid lowering, for `slots` workers */
static size_t fwd_scratch_max(const cgeom *g, int slots, int masked)
{
  size_t best = 0;
  for (int a = KR_CONV_ALGO_IM2COL; a < KR_CONV_ALGO_COUNT; a++)
    if (fwd_algo_ok(g, a, masked)) {
      size_t shared, slot;
      fwd_layout(g, a, &shared, &slot);
      size_t s = shared + (size_t)slots * slot;
      if (s > best) best = s;
    }
  return best;
}

/* x (with mask) conv w (+ bias, relu) -> y on T workers by `algo` (RULE: the
** fixed rule; an invalid one falls back to it); scratch per fwd_layout */
static void forward(const cgeom *g, const float *x, const float *mask, const float *w, const float *bias, int relu,
                    const float *omask, float *y, float *scratch, int T, int algo)
{
  if (!fwd_algo_ok(g, algo, mask != NULL)) algo = fwd_rule(g, mask != NULL);
  size_t shared, slot;
  fwd_layout(g, algo, &shared, &slot);
  if (algo == KR_CONV_ALGO_PACKED) {
    kr_conv_pw_forward(g, x, mask, w, bias, relu, omask, y, scratch, T);
    return;
  }
#if HAVE_AVX512
  if (algo == KR_CONV_ALGO_DIRECT && avx_conv_ok(g)) {
    avx_conv_job j = {*g, x, w, bias, omask, relu, y};
    kr_parallel_chunks(T, conv_chunks(&j.g), avx_conv_rows, &j);
    return;
  }
#endif
  if (algo == KR_CONV_ALGO_DIRECT) {
    kr_thin_forward(g, conv_chunks(g), x, w, bias, relu, omask, y, scratch, T);
    return;
  }
  if (algo == KR_CONV_ALGO_WINOGRAD) {
    fwd_job j = {*g, x, mask, scratch, bias, omask, relu, y, scratch + shared, slot};
    wino_weights(g, w, scratch);
    kr_parallel_chunks(T, conv_chunks(&j.g), wino_rows, &j);
  } else if (algo == KR_CONV_ALGO_WINOGRAD1D) {
    fwd_job j = {*g, x, mask, scratch, bias, omask, relu, y, scratch + shared, slot};
    wino1_weights(g, w, scratch);
    kr_parallel_chunks(T, conv_chunks(&j.g), wino1_rows, &j);
  } else {
    fwd_job j = {*g, x, mask, w, bias, omask, relu, y, scratch + shared, slot};
    kr_parallel_chunks(T, conv_chunks(&j.g), fwd_rows, &j);
  }
}

/* the geometry of a node: conv2d (x, w[, b]); the gradients (dy, w, x) and
** (dy, x, w); the batch `batch` (the plan's) where the shapes leave it open */
static cgeom node_geom(const kr_node *n, int64_t batch)
{
  cgeom g;
  if (n->op == KR_OP_CONV2D || n->op == KR_OP_DEPTHWISE_CONV2D)
    g = kr_conv_geom(&n->in[0]->shape, &n->in[1]->shape, &n->shape, &n->attr);
  else if (n->op == KR_OP_CONV2D_GRAD_INPUT || n->op == KR_OP_DEPTHWISE_CONV2D_GRAD_INPUT)
    g = kr_conv_geom(&n->in[2]->shape, &n->in[1]->shape, &n->in[0]->shape, &n->attr);
  else if (n->op == KR_OP_CONV2D_TRANSPOSE)   /* (x, w[, b]) -> y: the convolution y -> x */
    g = kr_conv_geom(&n->shape, &n->in[1]->shape, &n->in[0]->shape, &n->attr);
  else g = kr_conv_geom(&n->in[1]->shape, &n->in[2]->shape, &n->in[0]->shape, &n->attr);
  if (batch > 0) g.N = batch;
  return g;
}

/* the batch a node runs at in a plan for `batch` samples */
static int64_t run_batch(const kr_node *n, int64_t batch)
{
  return n->in[0]->shape.dim[0] < 0 ? batch : n->in[0]->shape.dim[0];
}

size_t kr_conv_scratch(const kr_node *n, int64_t batch)
{
  cgeom g = node_geom(n, 0);
  size_t s = fwd_scratch_max(&g, node_slots(n), 0);
  kr_conv_tune(n, run_batch(n, batch), s);
  return s;
}

static double conv_work(const cgeom *g) { return (double)g->N * (double)(g->Ho * g->Wo) * (double)(gK(g) * g->O); }

/* (x, w[, b]) -> y */
int kr_k_conv2d(const kr_exec *e)
{
  cgeom g = kr_conv_geom(e->xs[0], e->xs[1], e->ys, &e->node->attr);
  int relu = e->node->attr.f[KR_CONV_RELU] != 0;
  forward(&g, e->x[0], NULL, e->x[1], e->nin > 2 ? e->x[2] : NULL, relu, NULL, e->y, e->scratch,
          kr_conv_workers(e, g.N, conv_work(&g), node_slots(e->node)), kr_conv_algo(e->ctx, e->node));
  return KR_OK;
}

/* ---- input gradient ---- */

/* stride 1: the flipped, transposed kernel wt (KH, KW, O, C) */
static void flip_kernel(const cgeom *g, const float *w, float *wt)
{
  int64_t C = g->C, O = g->O;
  for (int64_t kh = 0; kh < g->KH; kh++)
    for (int64_t kw = 0; kw < g->KW; kw++) {
      const float *src = w + (kh * g->KW + kw) * C * O;
      float *dst = wt + ((g->KH - 1 - kh) * g->KW + (g->KW - 1 - kw)) * O * C;
      for (int64_t c = 0; c < C; c++)
        for (int64_t o = 0; o < O; o++) dst[o * C + c] = src[c * O + o];
    }
}

/* strides > 1: dcols = dz w^T, then scatter-add */
typedef struct bwd_job {
  cgeom g;
  const float *dy, *mask, *w, *omask, *bias;
  int relu;
  float *dx, *scratch;
  size_t slot, dz_off;
} bwd_job;

VEC_CLONES static void bwd_rows(void *arg, int c, int G, int t)
{
  bwd_job *j = arg;
  const cgeom *g = &j->g;
  int64_t n0, n1, P = g->Ho * g->Wo, K = gK(g), O = g->O, R = rows_for(K, O);
  kr_share(g->N, c, G, &n0, &n1);
  float *dcols = j->scratch + (size_t)t * j->slot, *dz = dcols + j->dz_off;
  int64_t plane = g->H * g->W * g->C;
  if (j->bias) {   /* conv2d_transpose: the sums start at the bias */
    float *d = j->dx + n0 * plane;
    for (int64_t p = 0; p < (n1 - n0) * g->H * g->W; p++) memcpy(d + p * g->C, j->bias, (size_t)g->C * sizeof(float));
  } else {
    memset(j->dx + n0 * plane, 0, (size_t)((n1 - n0) * plane) * sizeof(float));
  }
  for (int64_t r = n0 * P; r < n1 * P; r += R) {
    int64_t nr = n1 * P - r < R ? n1 * P - r : R;
    const float *a = j->dy + r * O;
    if (j->mask) {
      copy_span(dz, a, j->mask + r * O, nr * O);
      a = dz;
    }
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, (int)nr, (int)K, (int)O, 1.0f, a, (int)O, j->w, (int)O,
                0.0f, dcols, (int)K);
    col2im_add(g, dcols, r, nr, j->dx);
  }
  if (j->relu) {
    float *d = j->dx + n0 * plane;
    for (int64_t i = 0; i < (n1 - n0) * plane; i++) d[i] = !(d[i] <= 0.0f) ? d[i] : 0.0f;   /* NaN stays */
  }
  if (j->omask) keep_where(j->dx + n0 * plane, j->omask + n0 * plane, (n1 - n0) * plane);
}

static int stride1(const cgeom *g) { return g->sh == 1 && g->sw == 1; }

/* The input gradient's lowerings: KR_CONV_ALGO_COL2IM (dcols = dz w^T and a
** scatter-add; any strides) or, at stride 1, a forward product of the
** transposed geometry by the flipped kernel, lowered by the forward's
** IM2COL, WINOGRAD, WINOGRAD1D or DIRECT; at strides > 1 DIRECT is the
** phase-by-phase AVX-512 kernel of conv_transpose.c. */
static int gi_algo_ok(const cgeom *g, int algo, int masked)
{
  if (algo == KR_CONV_ALGO_COL2IM) return 1;
  if (!stride1(g)) return algo == KR_CONV_ALGO_DIRECT && kr_tconv_direct_ok(g);
  cgeom t = transposed(g);
  return fwd_algo_ok(&t, algo, masked);
}

static int gi_rule(const cgeom *g, int masked)
{
  if (!stride1(g)) return kr_tconv_direct_ok(g) ? KR_CONV_ALGO_DIRECT : KR_CONV_ALGO_COL2IM;
  cgeom t = transposed(g);
  return fwd_rule(&t, masked);
}

/* stride 1 (forward lowerings): the flipped kernel (K x C at the start) then
** the forward product's own scratch; COL2IM: dcols and dz per worker */
static void gi_layout(const cgeom *g, int algo, size_t *slot, size_t *dz_off, size_t *shared)
{
  if (algo == KR_CONV_ALGO_DIRECT && !stride1(g)) {   /* the repacked kernel; a masked sample per worker */
    kr_tconv_direct_layout(g, shared, slot);
    *dz_off = 0;
  } else if (algo != KR_CONV_ALGO_COL2IM) {
    cgeom t = transposed(g);
    size_t fshared;
    fwd_layout(&t, algo, &fshared, slot);
    *shared = up16((size_t)(gK(g) * g->O)) + fshared;
    *dz_off = 0;
  } else {
    int64_t R = rows_for(gK(g), g->O);
    *shared = 0;
    *dz_off = up16((size_t)(R * gK(g)));
    *slot = *dz_off + up16((size_t)(R * g->O));
  }
}

static size_t gi_scratch_max(const cgeom *g, int slots, int masked)
{
  size_t best = 0;
  for (int a = KR_CONV_ALGO_IM2COL; a < KR_CONV_ALGO_COUNT; a++)
    if (gi_algo_ok(g, a, masked)) {
      size_t slot, dz_off, shared;
      gi_layout(g, a, &slot, &dz_off, &shared);
      size_t s = shared + (size_t)slots * slot;
      if (s > best) best = s;
    }
  return best;
}

size_t kr_conv_grad_input_scratch(const kr_node *n, int64_t batch)
{
  /* (dy, w, x[, y]) */
  cgeom g = node_geom(n, 0);
  size_t s = gi_scratch_max(&g, node_slots(n), n->attr.f[KR_CONV_RELU] != 0);
  kr_conv_tune(n, run_batch(n, batch), s);
  return s;
}

/* dy (masked by mask > 0 if given) -> dx, masked by omask > 0 if given; the
** bias (C) added and the relu applied by conv2d_transpose, NULL and 0 else */
static void grad_input(const cgeom *g, const float *dy, const float *mask, const float *w, const float *omask,
                       const float *bias, int relu, float *dx, float *scratch, int T, int algo)
{
  if (!gi_algo_ok(g, algo, mask != NULL)) algo = gi_rule(g, mask != NULL);
  size_t slot, dz_off, shared;
  gi_layout(g, algo, &slot, &dz_off, &shared);
  if (algo == KR_CONV_ALGO_DIRECT && !stride1(g)) {
    kr_tconv_direct(g, conv_chunks(g), dy, mask, w, bias, relu, omask, dx, scratch, T);
  } else if (algo != KR_CONV_ALGO_COL2IM) {
    cgeom t = transposed(g);
    size_t wt = up16((size_t)(gK(g) * g->O));
    flip_kernel(g, w, scratch);
    forward(&t, dy, mask, scratch, bias, relu, omask, dx, scratch + wt, T, algo);
  } else {
    bwd_job j;
    j.g = *g;
    j.dy = dy;
    j.mask = mask;
    j.w = w;
    j.omask = omask;
    j.bias = bias;
    j.relu = relu;
    j.dx = dx;
    j.scratch = scratch;
    j.slot = slot;
    j.dz_off = dz_off;
    kr_parallel_chunks(T, conv_chunks(&j.g), bwd_rows, &j);
  }
}

int kr_k_conv2d_grad_input(const kr_exec *e)
{
  cgeom g = kr_conv_geom(e->xs[2], e->xs[1], e->xs[0], &e->node->attr);
  const float *mask = e->node->attr.f[KR_CONV_RELU] != 0 ? e->x[3] : NULL;
  const float *omask = e->node->attr.f[KR_CONV_MASK_X] != 0 ? e->x[2] : NULL;
  int T = kr_conv_workers(e, g.N, conv_work(&g), node_slots(e->node));
  grad_input(&g, e->x[0], mask, e->x[1], omask, NULL, 0, e->y, e->scratch, T, kr_conv_algo(e->ctx, e->node));
  return KR_OK;
}

/* ---- the transposed convolution: the input gradient's product, the
** transpose's input x in the place of dy and its output in that of dx ---- */

size_t kr_conv_transpose_scratch(const kr_node *n, int64_t batch)
{
  cgeom g = node_geom(n, 0);
  size_t s = gi_scratch_max(&g, node_slots(n), 0);
  kr_conv_tune(n, run_batch(n, batch), s);
  return s;
}

/* (x, w[, b]) -> y: attr.shape's rows and columns, x's batch */
int kr_k_conv2d_transpose(const kr_exec *e)
{
  cgeom g = kr_conv_geom(e->ys, e->xs[1], e->xs[0], &e->node->attr);
  int T = kr_conv_workers(e, g.N, conv_work(&g), node_slots(e->node));
  grad_input(&g, e->x[0], NULL, e->x[1], NULL, e->nin > 2 ? e->x[2] : NULL, e->node->attr.f[KR_CONV_RELU] != 0,
             e->y, e->scratch, T, kr_conv_algo(e->ctx, e->node));
  return KR_OK;
}

/* ---- kernel gradient: dw = sum over rows of cols^T dz; db = column sums of dz ---- */

VEC_CLONES static void gk_rows(void *arg, int c, int G, int t)
{
  gk_job *j = arg;
  const cgeom *g = &j->g;
  int64_t n0, n1, P = g->Ho * g->Wo, K = gK(g), O = g->O, R = rows_for(K, O);
  kr_share(g->N, c, G, &n0, &n1);
  float *cols = j->scratch + (size_t)t * j->slot, *dz = cols + j->dz_off;
  float *acc = j->scratch + j->part_off + (size_t)c * j->db_off, *db = acc + up16((size_t)(K * O));
  int pointwise = is_pointwise(g);
  float beta = 0.0f;
  if (j->bias) memset(db, 0, (size_t)O * sizeof(float));
  for (int64_t r = n0 * P; r < n1 * P; r += R) {
    int64_t nr = n1 * P - r < R ? n1 * P - r : R;
    const float *a = cols, *b = j->dy + r * O;
    if (pointwise) a = j->x + r * K;
    else im2col(g, j->x, NULL, r, nr, cols);
    if (j->mask) {
      copy_span(dz, b, j->mask + r * O, nr * O);
      b = dz;
    }
    if (j->bias) add_rows(db, b, nr, O);
    cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, (int)K, (int)O, (int)nr, 1.0f, a, (int)K, b, (int)O, beta,
                acc, (int)O);
    beta = 1.0f;
  }
  if (beta == 0.0f) memset(acc, 0, (size_t)(K * O) * sizeof(float));
}

/* The kernel gradient's lowerings: KR_CONV_ALGO_IM2COL, or
** KR_CONV_ALGO_DIRECT (avx_dw_*, where avx_dw_ok; else conv_thin.c's, O <= 4) */
static int gk_algo_ok(const cgeom *g, int algo)
{
  return algo == KR_CONV_ALGO_IM2COL || (algo == KR_CONV_ALGO_DIRECT && (avx_dw_ok(g) || kr_thin_ok(g))) ||
         (algo == KR_CONV_ALGO_PACKED && kr_conv_pw_gk_ok(g));
}

static int gk_rule(const cgeom *g) { return avx_dw_ok(g) ? KR_CONV_ALGO_DIRECT : KR_CONV_ALGO_IM2COL; }

/* a slot per worker: im2col: cols, dz; avx_dw_* (avx_dw_ok): a strip of dz.
** After the `slots` slots, at part_off, a partial sum per chunk, db_off
** floats apart: the partial dw (K x O), then the partial db (O) */
static void gk_layout(const cgeom *g, int algo, int slots, size_t *slot, size_t *dz_off, size_t *part_off,
                      size_t *db_off)
{
  *db_off = up16((size_t)(gK(g) * g->O)) + up16((size_t)g->O);
  if (algo == KR_CONV_ALGO_PACKED) {
    *dz_off = 0;
    *slot = kr_conv_pw_gk_slot(g);
    *part_off = (size_t)slots * *slot;
    return;
  }
#if HAVE_AVX512
  if (algo == KR_CONV_ALGO_DIRECT && avx_dw_ok(g)) {
    *dz_off = 0;
    *slot = up16((size_t)(avx_dw_rows(g) * g->Wo * g->O));
    *part_off = (size_t)slots * *slot;
    return;
  }
#endif
  if (algo == KR_CONV_ALGO_DIRECT) {   /* conv_thin.c: the partial sums alone */
    *dz_off = 0;
    *slot = 0;
    *part_off = 0;
    return;
  }
  int64_t R = rows_for(gK(g), g->O);
  *dz_off = up16((size_t)(R * gK(g)));
  *slot = *dz_off + up16((size_t)(R * g->O));
  *part_off = (size_t)slots * *slot;
}

/* the largest scratch of the valid lowerings, with the chunks' partial sums
** of the largest batch the plan runs (a smaller batch has no more chunks) */
static size_t gk_scratch_max(const cgeom *g, int slots, int64_t batch)
{
  cgeom gb = *g;
  gb.N = batch > 0 ? batch : KR_MAX_CHUNKS;
  size_t best = 0;
  for (int a = KR_CONV_ALGO_IM2COL; a < KR_CONV_ALGO_COUNT; a++)
    if (gk_algo_ok(g, a)) {
      size_t slot, dz_off, part_off, db_off;
      gk_layout(g, a, slots, &slot, &dz_off, &part_off, &db_off);
      size_t need = part_off + (size_t)conv_chunks(&gb) * db_off;
      if (need > best) best = need;
    }
  return best;
}

size_t kr_conv_grad_kernel_scratch(const kr_node *n, int64_t batch)
{
  /* (dy, x, w[, y]) */
  cgeom g = node_geom(n, 0);
  size_t s = gk_scratch_max(&g, node_slots(n), run_batch(n, batch));
  kr_conv_tune(n, run_batch(n, batch), s);
  return s;
}

/* dy (masked by mask > 0 if given), x -> dw (K x O), with bias db as row K:
** a partial sum per chunk of samples (fixed by the shape), added in chunk
** order, so the result does not depend on the number of workers */
static void grad_kernel(const cgeom *g, const float *dy, const float *mask, const float *x, float *dw, int bias,
                        float *scratch, int T, int slots, int algo)
{
  if (!gk_algo_ok(g, algo)) algo = gk_rule(g);
  if (algo == KR_CONV_ALGO_PACKED) {
    kr_conv_pw_grad_kernel(g, dy, mask, x, dw, bias, scratch, T);
    return;
  }
  gk_job j;
  j.g = *g;
  j.dy = dy;
  j.mask = mask;
  j.x = x;
  j.dw = dw;
  j.bias = bias;
  j.scratch = scratch;
  gk_layout(&j.g, algo, slots, &j.slot, &j.dz_off, &j.part_off, &j.db_off);
  int G = conv_chunks(&j.g);
#if HAVE_AVX512
  if (algo == KR_CONV_ALGO_DIRECT && avx_dw_ok(g))
    kr_parallel_chunks(T, G, avx_dw_rows_fn, &j);
  else
#endif
  if (algo == KR_CONV_ALGO_DIRECT)
    kr_thin_grad_kernel(g, G, dy, mask, x, bias, scratch + j.part_off, j.db_off, T);
  else
    kr_parallel_chunks(T, G, gk_rows, &j);
  int64_t O = g->O, KO = gK(g) * O;
  const float *parts = scratch + j.part_off;
  kr_sum_chunks(dw, parts, j.db_off, G, KO);
  if (bias) kr_sum_chunks(dw + KO, parts + up16((size_t)KO), j.db_off, G, O);
}

/* (dy, x, w[, y]) -> dw (K x O), and with f2 = 1 db as row K */
int kr_k_conv2d_grad_kernel(const kr_exec *e)
{
  cgeom g = kr_conv_geom(e->xs[1], e->xs[2], e->xs[0], &e->node->attr);
  int T = kr_conv_workers(e, g.N, conv_work(&g), node_slots(e->node));
  grad_kernel(&g, e->x[0], e->node->attr.f[KR_CONV_RELU] != 0 ? e->x[3] : NULL, e->x[1], e->y,
              e->node->attr.f[KR_CONV_WITH_BIAS] != 0, e->scratch, T, node_slots(e->node), kr_conv_algo(e->ctx, e->node));
  return KR_OK;
}

/* ---- the autotuner's runs (conv_tune.c): one pass of a node's geometry by one lowering ---- */

static int is_dw(const kr_node *n)
{
  return n->op == KR_OP_DEPTHWISE_CONV2D || n->op == KR_OP_DEPTHWISE_CONV2D_GRAD_INPUT ||
         n->op == KR_OP_DEPTHWISE_CONV2D_GRAD_KERNEL;
}

int kr_conv_algo_valid(const kr_node *n, int algo)
{
  if (is_dw(n)) return kr_dw_algo_valid(n, algo);
  cgeom g = node_geom(n, 1);
  int masked = n->attr.f[KR_CONV_RELU] != 0;
  if (n->op == KR_OP_CONV2D) return fwd_algo_ok(&g, algo, 0);
  if (n->op == KR_OP_CONV2D_GRAD_INPUT) return gi_algo_ok(&g, algo, masked);
  if (n->op == KR_OP_CONV2D_TRANSPOSE) return gi_algo_ok(&g, algo, 0);
  return gk_algo_ok(&g, algo);
}

int kr_conv_algo_rule(const kr_node *n)
{
  if (is_dw(n)) return kr_dw_algo_rule(n);
  cgeom g = node_geom(n, 1);
  int masked = n->attr.f[KR_CONV_RELU] != 0;
  if (n->op == KR_OP_CONV2D) return fwd_rule(&g, 0);
  if (n->op == KR_OP_CONV2D_GRAD_INPUT) return gi_rule(&g, masked);
  if (n->op == KR_OP_CONV2D_TRANSPOSE) return gi_rule(&g, 0);
  return gk_rule(&g);
}

/* the floats of each buffer a pass reads or writes: a (x or dy), b (w or x), out */
void kr_conv_tune_sizes(const kr_node *n, int64_t batch, size_t *a, size_t *b, size_t *out)
{
  if (is_dw(n)) {
    kr_dw_tune_sizes(n, batch, a, b, out);
    return;
  }
  cgeom g = node_geom(n, batch);
  size_t nx = (size_t)(g.N * g.H * g.W * g.C), ny = (size_t)(g.N * g.Ho * g.Wo * g.O), nw = (size_t)(gK(&g) * g.O);
  if (n->op == KR_OP_CONV2D) {
    *a = nx;
    *b = nw + (size_t)g.O;   /* the kernel, then the bias */
    *out = ny;
  } else if (n->op == KR_OP_CONV2D_GRAD_INPUT) {
    *a = ny;
    *b = nw;
    *out = nx;
  } else if (n->op == KR_OP_CONV2D_TRANSPOSE) {
    *a = ny;
    *b = nw + (size_t)g.C;   /* the kernel, then the bias */
    *out = nx;
  } else {
    *a = ny;
    *b = nx;
    *out = nw + (size_t)g.O;
  }
}

/* one pass of n's geometry at `batch` by `algo` on T workers; the inputs also
** serve as the masks (their values do not matter for the time) */
void kr_conv_tune_run(const kr_node *n, int64_t batch, int algo, const float *a, const float *b, float *out,
                      float *scratch, int T)
{
  if (is_dw(n)) {
    kr_dw_tune_run(n->ctx, n, batch, algo, a, b, out, scratch);   /* its workers: kr_dw_tune_workers */
    return;
  }
  cgeom g = node_geom(n, batch);
  int masked = n->attr.f[KR_CONV_RELU] != 0;
  if (n->op == KR_OP_CONV2D) {
    forward(&g, a, NULL, b, b + gK(&g) * g.O, masked, NULL, out, scratch, T, algo);
  } else if (n->op == KR_OP_CONV2D_GRAD_INPUT) {
    grad_input(&g, a, masked ? a : NULL, b, NULL, NULL, 0, out, scratch, T, algo);
  } else if (n->op == KR_OP_CONV2D_TRANSPOSE) {
    grad_input(&g, a, NULL, b, NULL, b + gK(&g) * g.O, masked, out, scratch, T, algo);
  } else {
    grad_kernel(&g, a, masked ? a : NULL, b, out, n->attr.f[KR_CONV_WITH_BIAS] != 0, scratch, T, node_slots(n), algo);
  }
}

/* the cache key of n's geometry (the batch left out): up to KR_CONV_KEY numbers */
void kr_conv_tune_key(const kr_node *n, int64_t *key)
{
  cgeom g = node_geom(n, 1);
  int64_t k[KR_CONV_KEY] = {n->op, g.H, g.W, g.C, g.KH, g.KW, g.O, g.Ho, g.Wo, g.sh, g.sw, g.dh, g.dw, g.pt, g.pl,
                            n->attr.f[KR_CONV_RELU] != 0, n->attr.f[KR_CONV_MASK_X] != 0 || n->attr.f[KR_CONV_WITH_BIAS] != 0};
  memcpy(key, k, sizeof k);
}

/* the workers a pass of n at `batch` runs on */
int kr_conv_tune_workers(kr_ctx *ctx, const kr_node *n, int64_t batch)
{
  if (is_dw(n)) return kr_dw_tune_workers(ctx, n, batch);
  cgeom g = node_geom(n, batch);
  kr_exec e;
  memset(&e, 0, sizeof e);
  e.ctx = ctx;
  return kr_conv_workers(&e, g.N, conv_work(&g), node_slots(n));
}
