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

#define PAR_MIN_WORK 400000   /* multiply-adds below which one worker runs */

typedef struct dgeom {
  int64_t N, H, W, C, M, KH, KW, Ho, Wo;
  int64_t sh, sw, dh, dw, pt, pl;
} dgeom;

static dgeom geom(const kr_shape *x, const kr_shape *w, const kr_shape *y, const kr_attr *a)
{
  dgeom g;
  int r = x->ndim;
  g.N = x->dim[0] < 0 ? 1 : x->dim[0];
  g.H = r == 4 ? x->dim[1] : 1;
  g.W = x->dim[r - 2];
  g.C = x->dim[r - 1];
  g.KH = r == 4 ? w->dim[0] : 1;
  g.KW = w->dim[r - 3];
  g.M = w->dim[r - 1];
  g.Ho = r == 4 ? y->dim[1] : 1;
  g.Wo = y->dim[r - 2];
  g.sh = a->i[KR_CONV_STRIDE_H];
  g.sw = a->i[KR_CONV_STRIDE_W];
  g.dh = a->i[KR_CONV_DILATION_H];
  g.dw = a->i[KR_CONV_DILATION_W];
  g.pt = a->i[KR_CONV_PAD_TOP];
  g.pl = a->i[KR_CONV_PAD_LEFT];
  return g;
}

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

VEC_CLONES static void fwd_rows(void *arg, int t, int T)
{
  const dw_job *j = arg;
  const dgeom *g = &j->g;
  int64_t r0, r1, CM = g->C * g->M;
  kr_share(g->N * g->Ho, t, T, &r0, &r1);
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
  j.g = geom(e->xs[0], e->xs[1], e->ys, &e->node->attr);
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

VEC_CLONES static void gi_rows(void *arg, int t, int T)
{
  const dw_job *j = arg;
  const dgeom *g = &j->g;
  int64_t r0, r1, CM = g->C * g->M;
  kr_share(g->N * g->H, t, T, &r0, &r1);
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
  j.g = geom(e->xs[2], e->xs[1], e->xs[0], &e->node->attr);
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
  j.g = geom(e->xs[1], e->xs[2], e->xs[0], &e->node->attr);
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
