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
