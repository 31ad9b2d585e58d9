/*
** conv_pw.c -- convolutions as matrix products on the engine's own packed
** GEMM (gemm_packed.c): y (N*Ho*Wo x O) = cols (N*Ho*Wo x K) w (K x O) +
** bias, the fused relu in the micro-kernel's epilogue while the tile is in
** registers. A pointwise convolution (1x1 kernel, stride 1, no padding: the
** pointwise half of SeparableConv1D/2D, Conv2D(k, 1)) reads its input in
** place (the rows are the pixels, K = C); any other geometry unfolds a block
** of rows at a time into the worker's slot (conv.c's im2col), as the im2col
** lowering does before OpenBLAS. The kernel and the
** bias are packed into the node's scratch on every call (K*O floats, small
** beside the N*Ho*Wo*K*O multiply-adds), so weights written by the optimizer
** are never stale. With the AVX-512 micro-kernel this product runs at about
** twice OpenBLAS's Haswell sgemm on the machines measured (docs/design.md,
** "Convolution lowering and autotuning"); the autotuner (conv_tune.c)
** chooses it per geometry where it is faster.
**
** A relu mask on the input (the input gradient of a conv whose relu is
** fused: dz = dy where y > 0) is applied as the block of rows is copied (or
** unfolded) to the worker's slot; an output mask (omask) after each block.
**
** Threads: the rows are cut into blocks of rows_of(K) rows, split over the workers
** in contiguous runs; every output element is one sum over k = 0..C-1 by the
** same instructions whichever worker and block computes it (gemm_packed.c),
** so the result does not depend on the thread count.
** No allocation: the pack lives in the scratch.
*/
#include "kernels.h"
#include "threadpool.h"
#include "gemm_packed.h"
#include "conv_pw.h"

#include <string.h>

static size_t up16(size_t n) { return (n + 15) / 16 * 16; }

/* rows per block: up to 256, a block of K columns about 64K floats (L2), a multiple of 8 */
static int64_t rows_of(int64_t K)
{
  int64_t r = 65536 / (K > 0 ? K : 1);
  r = r < 16 ? 16 : r > 256 ? 256 : r;
  return r / 8 * 8;
}

static int64_t gK(const kr_cgeom *g) { return g->KH * g->KW * g->C; }

int kr_conv_pw_ok(const kr_cgeom *g)
{
  return g->KH == 1 && g->KW == 1 && g->sh == 1 && g->sw == 1 && g->pt == 0 && g->pl == 0 && g->Ho == g->H &&
         g->Wo == g->W;
}

void kr_conv_pw_layout(const kr_cgeom *g, size_t *shared, size_t *slot)
{
  *shared = up16(kr_gemm_pack_floats(kr_gemm_isa_best(), gK(g), g->O));
  *slot = up16((size_t)(rows_of(gK(g)) * gK(g)));
}

typedef struct pw_job {
  const kr_cgeom *g;
  const kr_gemm_pack *pk;
  const float *x, *mask, *omask;
  float *y, *slots;
  size_t slot;
  int64_t M, C, O, R, blocks;
  int pointwise;
  kr_gemm_epi epi;
} pw_job;

static void pw_part(void *arg, int t, int T)
{
  const pw_job *j = arg;
  int64_t b0, b1, C = j->C, O = j->O;
  kr_share(j->blocks, t, T, &b0, &b1);
  float *buf = j->slots + (size_t)t * j->slot;
  for (int64_t b = b0; b < b1; b++) {
    int64_t r = b * j->R, nr = j->M - r < j->R ? j->M - r : j->R;
    const float *a = j->x + r * C;
    if (!j->pointwise) {
      kr_conv_im2col_block(j->g, j->x, j->mask, r, nr, buf);
      a = buf;
    } else if (j->mask) {
      const float *m = j->mask + r * C;
      for (int64_t i = 0; i < nr * C; i++) {
        float v = a[i];
        buf[i] = !(m[i] <= 0.0f) ? v : 0.0f;   /* a NaN y passes dy, as relu_grad */
      }
      a = buf;
    }
    float *y = j->y + r * O;
    kr_gemm_packed(j->pk, a, nr, j->pk->K, y, O, &j->epi, 1);
    if (j->omask) {
      const float *m = j->omask + r * O;
      for (int64_t i = 0; i < nr * O; i++) y[i] = !(m[i] <= 0.0f) ? y[i] : 0.0f;
    }
  }
}

void kr_conv_pw_forward(const kr_cgeom *g, const float *x, const float *mask, const float *w, const float *bias,
                        int relu, const float *omask, float *y, float *scratch, int T)
{
  size_t shared, slot;
  kr_conv_pw_layout(g, &shared, &slot);
  kr_gemm_pack pk;
  kr_gemm_pack_view(&pk, kr_gemm_isa_best(), gK(g), g->O, scratch);
  kr_gemm_pack_set(&pk, w, 0, bias);
  pw_job j;
  memset(&j, 0, sizeof j);
  j.g = g;
  j.pk = &pk;
  j.pointwise = kr_conv_pw_ok(g);
  j.x = x;
  j.mask = mask;
  j.omask = omask;
  j.y = y;
  j.slots = scratch + shared;
  j.slot = slot;
  j.M = g->N * g->Ho * g->Wo;
  j.C = g->C;
  j.O = g->O;
  j.R = rows_of(gK(g));
  j.blocks = (j.M + j.R - 1) / j.R;
  j.epi.relu = relu;
  if (j.M < 1) return;
  if (T > j.blocks) T = (int)j.blocks;
  if (T <= 1) pw_part(&j, 0, 1);
  else kr_parallel(T, pw_part, &j);
}

/* ---- the kernel gradient of a pointwise conv: dw (C x O) = x^T dz and,
** with a bias, db (row C of dw) = the column sums of dz; dz = dy, or dy
** where mask > 0 (the conv's fused relu; a NaN mask passes dy, as
** relu_grad). The rows m (pixels) are the sum's index: a block of PW_GK_ROWS
** rows at a time is copied into the worker's slot in the layouts an AVX-512
** register tile streams (x as [channel block of 8][m][8], dz masked as
** [filter panel of 32][m][32], zero padded: strided reads of x and dy would
** hit few cache sets), then each tile of 8 channels x 32 filters adds the
** block's rows in order, one FMA per row, to its sums (kept in dw between
** blocks, which leaves their floats unchanged). So every element of dw is the
** same sequential sum over m whichever worker computes its tile, and the
** result does not depend on the thread count. The tiles are split over the
** workers (each copies the blocks it needs); db is one sum per column, in
** row order, by the worker whose tiles start the column's panel. ---- */
#if defined(__GNUC__) && !defined(__clang__) && defined(__x86_64__)
#include <immintrin.h>
#define T512 __attribute__((target("avx512f,avx2,fma")))
#define PW_GK_ROWS 128

int kr_conv_pw_gk_ok(const kr_cgeom *g) { return kr_conv_pw_ok(g) && __builtin_cpu_supports("avx512f") != 0; }

size_t kr_conv_pw_gk_slot(const kr_cgeom *g)
{
  int64_t ct = (g->C + 7) / 8, pt = (g->O + 31) / 32;
  return up16((size_t)(PW_GK_ROWS * 8 * ct)) + up16((size_t)(PW_GK_ROWS * 32 * pt));
}

typedef struct gk_job {
  const float *x, *dy, *mask;
  float *dw, *slots;
  size_t slot;
  int64_t M, C, O, ctiles, tiles;
  int bias;
} gk_job;

/* nm rows of the packed block (xp: 8 channels per row, dp: 32 filters per
** row) into the tile of channels [c0, c0 + h) x filters [o0, o0 + w) */
T512 static void gk_tile(const gk_job *j, const float *xp, const float *dp, int64_t nm, int first, int64_t c0, int h,
                         int64_t o0, int w)
{
  int64_t O = j->O;
  __mmask16 k0 = (__mmask16)(w >= 16 ? 0xffff : (1u << w) - 1);
  __mmask16 k1 = (__mmask16)(w <= 16 ? 0 : w >= 32 ? 0xffff : (1u << (w - 16)) - 1);
  __m512 a0[8], a1[8];
#pragma GCC unroll 8
  for (int i = 0; i < 8; i++) {
    float *d = j->dw + (c0 + (i < h ? i : 0)) * O + o0;
    a0[i] = first || i >= h ? _mm512_setzero_ps() : _mm512_maskz_loadu_ps(k0, d);
    a1[i] = first || i >= h ? _mm512_setzero_ps() : _mm512_maskz_loadu_ps(k1, d + 16);
  }
  for (int64_t m = 0; m < nm; m++) {
    __m512 d0 = _mm512_loadu_ps(dp + m * 32), d1 = _mm512_loadu_ps(dp + m * 32 + 16);
    const float *xm = xp + m * 8;
#pragma GCC unroll 8
    for (int i = 0; i < 8; i++) {
      __m512 a = _mm512_set1_ps(xm[i]);
      a0[i] = _mm512_fmadd_ps(a, d0, a0[i]);
      a1[i] = _mm512_fmadd_ps(a, d1, a1[i]);
    }
  }
#pragma GCC unroll 8
  for (int i = 0; i < 8; i++)
    if (i < h) {
      float *d = j->dw + (c0 + i) * O + o0;
      _mm512_mask_storeu_ps(d, k0, a0[i]);
      _mm512_mask_storeu_ps(d + 16, k1, a1[i]);
    }
}

T512 static void gk_part(void *arg, int t, int T)
{
  const gk_job *j = arg;
  int64_t t0, t1, C = j->C, O = j->O, ct = j->ctiles;
  kr_share(j->tiles, t, T, &t0, &t1);
  if (t0 >= t1) return;
  float *xp = j->slots + (size_t)t * j->slot, *dp = xp + up16((size_t)(PW_GK_ROWS * 8 * ct));
  /* the panels and channel blocks this worker's tiles need */
  int64_t p0 = t0 / ct, p1 = (t1 - 1) / ct + 1, c0 = p1 - p0 > 1 ? 0 : t0 % ct, c1 = p1 - p0 > 1 ? ct : (t1 - 1) % ct + 1;
  for (int64_t m0 = 0; m0 < j->M; m0 += PW_GK_ROWS) {
    int64_t nm = j->M - m0 < PW_GK_ROWS ? j->M - m0 : PW_GK_ROWS;
    for (int64_t b = c0; b < c1; b++) {
      float *xb = xp + b * PW_GK_ROWS * 8;
      int64_t cb = b * 8, h = C - cb < 8 ? C - cb : 8;
      __mmask16 k = (__mmask16)((1u << h) - 1);
      for (int64_t m = 0; m < nm; m++)
        _mm256_storeu_ps(xb + m * 8, _mm512_castps512_ps256(_mm512_maskz_loadu_ps(k, j->x + (m0 + m) * C + cb)));
    }
    for (int64_t p = p0; p < p1; p++) {
      float *pb = dp + p * PW_GK_ROWS * 32;
      int64_t ob = p * 32, w = O - ob < 32 ? O - ob : 32;
      __mmask16 k0 = (__mmask16)(w >= 16 ? 0xffff : (1u << w) - 1);
      __mmask16 k1 = (__mmask16)(w <= 16 ? 0 : w >= 32 ? 0xffff : (1u << (w - 16)) - 1);
      const __m512 zero = _mm512_setzero_ps();
      /* db: summed by the worker whose tiles start this panel */
      int sums = j->bias && t0 <= p * ct && p * ct < t1;
      float *db = j->dw + C * O + ob;
      __m512 s0 = sums && m0 > 0 ? _mm512_maskz_loadu_ps(k0, db) : zero;
      __m512 s1 = sums && m0 > 0 ? _mm512_maskz_loadu_ps(k1, db + 16) : zero;
      for (int64_t m = 0; m < nm; m++) {
        const float *d = j->dy + (m0 + m) * O + ob;
        __m512 d0 = _mm512_maskz_loadu_ps(k0, d), d1 = _mm512_maskz_loadu_ps(k1, d + 16);
        if (j->mask) {   /* !(y <= 0): a NaN y passes dy, as relu_grad */
          const float *mk = j->mask + (m0 + m) * O + ob;
          d0 = _mm512_maskz_mov_ps(_mm512_cmp_ps_mask(_mm512_maskz_loadu_ps(k0, mk), zero, _CMP_NLE_UQ), d0);
          d1 = _mm512_maskz_mov_ps(_mm512_cmp_ps_mask(_mm512_maskz_loadu_ps(k1, mk + 16), zero, _CMP_NLE_UQ), d1);
        }
        _mm512_storeu_ps(pb + m * 32, d0);
        _mm512_storeu_ps(pb + m * 32 + 16, d1);
        s0 = _mm512_add_ps(s0, d0);
        s1 = _mm512_add_ps(s1, d1);
      }
      if (sums) {
        _mm512_mask_storeu_ps(db, k0, s0);
        _mm512_mask_storeu_ps(db + 16, k1, s1);
      }
    }
    for (int64_t q = t0; q < t1; q++) {
      int64_t p = q / ct, b = q % ct;
      int h = (int)(C - b * 8 < 8 ? C - b * 8 : 8), w = (int)(O - p * 32 < 32 ? O - p * 32 : 32);
      gk_tile(j, xp + b * PW_GK_ROWS * 8, dp + p * PW_GK_ROWS * 32, nm, m0 == 0, b * 8, h, p * 32, w);
    }
  }
}

void kr_conv_pw_grad_kernel(const kr_cgeom *g, const float *dy, const float *mask, const float *x, float *dw, int bias,
                            float *scratch, int T)
{
  gk_job j = {x, dy, mask, dw, scratch, kr_conv_pw_gk_slot(g), g->N * g->H * g->W, g->C, g->O, (g->C + 7) / 8, 0,
              bias};
  j.tiles = j.ctiles * ((g->O + 31) / 32);
  if (j.M < 1) {
    memset(dw, 0, (size_t)((g->C + (bias != 0)) * g->O) * sizeof(float));
    return;
  }
  if (T > j.tiles) T = (int)j.tiles;
  if (T <= 1) gk_part(&j, 0, 1);
  else kr_parallel(T, gk_part, &j);
}
#else
int kr_conv_pw_gk_ok(const kr_cgeom *g) { (void)g; return 0; }
size_t kr_conv_pw_gk_slot(const kr_cgeom *g) { (void)g; return 0; }
void kr_conv_pw_grad_kernel(const kr_cgeom *g, const float *dy, const float *mask, const float *x, float *dw, int bias,
                            float *scratch, int T)
{
  (void)g; (void)dy; (void)mask; (void)x; (void)dw; (void)bias; (void)scratch; (void)T;
}
#endif
