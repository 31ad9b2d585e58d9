/*
** spatial.c -- the conv family's kernels that are not convolutions, channels_last
** (see ops_conv.h for the ops, their inputs and attributes): max and average
** pooling and their gradients; zero padding and cropping; upsampling and its
** gradient; spatial dropout and its gradient. Moved verbatim from conv.c.
** Shape letters as in conv.c: N batch, H W input rows and columns, C
** channels, KH KW pool window, Ho Wo output size. A rank-3 tensor (N, T, C)
** is run as H = 1, W = T.
**
** Threads: the pooling kernels split the samples among workers as conv.c does
** (kr_conv_workers, kr_share; threadpool.h). Kernels never allocate: every
** buffer is the plan's (output, aux).
*/
#include "kernels.h"
#include "../ops_conv.h"
#include "threadpool.h"

#include <math.h>
#include <stdint.h>
#include <string.h>

/* ---- pooling: window, strides, pads (KR_POOL_*) ---- */

typedef struct pgeom {
  int64_t N, H, W, C, KH, KW, Ho, Wo, sh, sw, pt, pl;
} pgeom;

static pgeom pool_geom(const kr_shape *x, const kr_shape *y, const kr_attr *a)
{
  pgeom g;
  int r = x->ndim;
  g.N = x->dim[0];
  g.H = r == 4 ? x->dim[1] : 1;
  g.W = x->dim[r - 2];
  g.C = x->dim[r - 1];
  g.Ho = r == 4 ? y->dim[1] : 1;
  g.Wo = y->dim[r - 2];
  g.KH = a->i[KR_POOL_SIZE_H];
  g.KW = a->i[KR_POOL_SIZE_W];
  g.sh = a->i[KR_POOL_STRIDE_H];
  g.sw = a->i[KR_POOL_STRIDE_W];
  g.pt = a->i[KR_POOL_PAD_TOP];
  g.pl = a->i[KR_POOL_PAD_LEFT];
  return g;
}

/* the window of output (oh, ow), clipped to the input: rows [h0, h1), cols [w0, w1) */
static void window(const pgeom *g, int64_t oh, int64_t ow, int64_t *h0, int64_t *h1, int64_t *w0, int64_t *w1)
{
  int64_t hs = oh * g->sh - g->pt, ws = ow * g->sw - g->pl;
  *h0 = hs < 0 ? 0 : hs;
  *h1 = hs + g->KH > g->H ? g->H : hs + g->KH;
  *w0 = ws < 0 ? 0 : ws;
  *w1 = ws + g->KW > g->W ? g->W : ws + g->KW;
}

/* argmax indices: one byte per output when the window has < 256 cells, else two */
static int idx_bytes(int64_t cells) { return cells < 255 ? 1 : 2; }

static void idx_put(unsigned char *aux, int bytes, int64_t i, unsigned v)
{
  if (bytes == 1) aux[i] = (unsigned char)v;
  else {
    aux[2 * i] = (unsigned char)(v & 0xff);
    aux[2 * i + 1] = (unsigned char)(v >> 8);
  }
}

static unsigned idx_get(const unsigned char *aux, int bytes, int64_t i)
{
  if (bytes == 1) return aux[i];
  return (unsigned)aux[2 * i] | (unsigned)aux[2 * i + 1] << 8;
}

size_t kr_maxpool_aux(const kr_node *n, int64_t batch)
{
  if (n->attr.f[KR_POOL_KEEP_ARGMAX] == 0) return 0;   /* the gradient finds the maxima again */
  kr_shape c = kr_concrete(&n->shape, batch);
  size_t bytes = (size_t)kr_numel(&c) * (size_t)idx_bytes(n->attr.i[KR_POOL_SIZE_H] * n->attr.i[KR_POOL_SIZE_W]);
  return (bytes + sizeof(float) - 1) / sizeof(float);
}

typedef struct pool_job {
  pgeom g;
  const float *x, *dy;
  float *y;
  unsigned char *aux;
  int bytes;
  int positive;   /* max pool gradient: only windows whose maximum is > 0 pass dy on */
} pool_job;

#define CCHUNK 256   /* channels handled at once by the pooling loops (a stack buffer) */


/* The max over the window of output o (channels c0 .. c0+nc) into y and,
** when idf is given, the index of the first cell holding it (kh*KW + kw) as
** a float: the compare-and-select loops over the channels then vectorize. */
VEC_CLONES static void window_max(const pgeom *g, const float *x, int64_t n, int64_t oh, int64_t ow, int64_t c0, int64_t nc,
                       float *restrict y, float *restrict idf)
{
  int64_t h0, h1, w0, w1, C = g->C;
  int64_t hs = oh * g->sh - g->pt, ws = ow * g->sw - g->pl;
  window(g, oh, ow, &h0, &h1, &w0, &w1);
  const float *first = x + ((n * g->H + h0) * g->W + w0) * C + c0;
  for (int64_t c = 0; c < nc; c++) y[c] = first[c];
  if (idf) {
    float i0 = (float)((h0 - hs) * g->KW + (w0 - ws));
    for (int64_t c = 0; c < nc; c++) idf[c] = i0;
  }
  for (int64_t h = h0; h < h1; h++)
    for (int64_t w = w0; w < w1; w++) {
      if (h == h0 && w == w0) continue;
      const float *restrict xr = x + ((n * g->H + h) * g->W + w) * C + c0;
      if (!idf) {
        for (int64_t c = 0; c < nc; c++) y[c] = (xr[c] > y[c] || xr[c] != xr[c]) ? xr[c] : y[c];   /* NaN wins */
        continue;
      }
      float id = (float)((h - hs) * g->KW + (w - ws));
      for (int64_t c = 0; c < nc; c++) {   /* the blend as arithmetic: this form vectorizes */
        float v = xr[c], m = y[c], i = idf[c];
        int take = v > m || (v != v && m == m);   /* NaN wins; the first NaN's index */
        float b = (float)take;
        y[c] = take ? v : m;
        idf[c] = i + b * (id - i);
      }
    }
}

static void maxpool_rows(void *arg, int t, int T)
{
  pool_job *j = arg;
  const pgeom *g = &j->g;
  int64_t n0, n1, C = g->C;
  float idf[CCHUNK];
  kr_share(g->N, t, T, &n0, &n1);
  for (int64_t n = n0; n < n1; n++)
    for (int64_t oh = 0; oh < g->Ho; oh++)
      for (int64_t ow = 0; ow < g->Wo; ow++) {
        int64_t o = ((n * g->Ho + oh) * g->Wo + ow) * C;
        for (int64_t c0 = 0; c0 < C; c0 += CCHUNK) {
          int64_t nc = C - c0 < CCHUNK ? C - c0 : CCHUNK;
          window_max(g, j->x, n, oh, ow, c0, nc, j->y + o + c0, j->aux ? idf : NULL);
          if (j->aux)
            for (int64_t c = 0; c < nc; c++) idx_put(j->aux, j->bytes, o + c0 + c, (unsigned)idf[c]);
        }
      }
}

int kr_k_max_pool2d(const kr_exec *e)
{
  pool_job j;
  j.g = pool_geom(e->xs[0], e->ys, &e->node->attr);
  j.x = e->x[0];
  j.y = e->y;
  j.aux = (unsigned char *)e->aux;
  j.bytes = idx_bytes(j.g.KH * j.g.KW);
  double work = (double)kr_numel(e->ys) * (double)(j.g.KH * j.g.KW);
  kr_parallel(kr_conv_workers(e, j.g.N, work, KR_CONV_MAX_SLOTS), maxpool_rows, &j);
  return KR_OK;
}

/* windows that do not overlap cover each input cell at most once: the
** gradient kernels then store instead of adding, after zeroing only the
** cells no window covers */
static int disjoint(const pgeom *g) { return g->sh >= g->KH && g->sw >= g->KW; }

static int covered(int64_t i, int64_t pad, int64_t stride, int64_t k, int64_t nout)
{
  int64_t p = i + pad;
  return p / stride < nout && p % stride < k;
}

static void zero_uncovered(const pgeom *g, float *plane)
{
  int64_t C = g->C;
  for (int64_t h = 0; h < g->H; h++) {
    float *row = plane + h * g->W * C;
    if (!covered(h, g->pt, g->sh, g->KH, g->Ho)) {
      memset(row, 0, (size_t)(g->W * C) * sizeof(float));
      continue;
    }
    for (int64_t w = 0; w < g->W; w++)
      if (!covered(w, g->pl, g->sw, g->KW, g->Wo)) memset(row + w * C, 0, (size_t)C * sizeof(float));
  }
}

/* before a pooling gradient of samples [n0, n1) is summed into dx: with
** disjoint windows (1 returned) each covered cell is stored once and only the
** uncovered ones are zeroed; else all of dx is zeroed for the sums (0) */
static int clear_dx(const pgeom *g, float *dx, int64_t n0, int64_t n1)
{
  int64_t plane = g->H * g->W * g->C;
  int store = disjoint(g);
  if (store)
    for (int64_t n = n0; n < n1; n++) zero_uncovered(g, dx + n * plane);
  else
    memset(dx + n0 * plane, 0, (size_t)((n1 - n0) * plane) * sizeof(float));
  return store;
}

VEC_CLONES static void maxpool_grad_rows(void *arg, int t, int T)
{
  pool_job *j = arg;
  const pgeom *g = &j->g;
  int64_t n0, n1, C = g->C;
  float idf[CCHUNK], ymax[CCHUNK], dd[CCHUNK];
  kr_share(g->N, t, T, &n0, &n1);
  int store = clear_dx(g, j->y, n0, n1);
  for (int64_t n = n0; n < n1; n++)
    for (int64_t oh = 0; oh < g->Ho; oh++)
      for (int64_t ow = 0; ow < g->Wo; ow++) {
        int64_t h0, h1, w0, w1, o = ((n * g->Ho + oh) * g->Wo + ow) * C;
        int64_t hs = oh * g->sh - g->pt, ws = ow * g->sw - g->pl;
        window(g, oh, ow, &h0, &h1, &w0, &w1);
        for (int64_t c0 = 0; c0 < C; c0 += CCHUNK) {
          int64_t nc = C - c0 < CCHUNK ? C - c0 : CCHUNK;
          const float *restrict d = j->dy + o + c0;
          if (j->aux)
            for (int64_t c = 0; c < nc; c++) idf[c] = (float)idx_get(j->aux, j->bytes, o + c0 + c);
          else
            window_max(g, j->x, n, oh, ow, c0, nc, ymax, idf);
          if (j->positive) {
            for (int64_t c = 0; c < nc; c++) dd[c] = !(ymax[c] <= 0.0f) ? d[c] : 0.0f;   /* NaN passes, as relu_grad */
            d = dd;
          }
          for (int64_t h = h0; h < h1; h++)
            for (int64_t w = w0; w < w1; w++) {
              float *restrict xr = j->y + ((n * g->H + h) * g->W + w) * C + c0;
              float id = (float)((h - hs) * g->KW + (w - ws));
              if (store)
                for (int64_t c = 0; c < nc; c++) {
                  float v = d[c];
                  xr[c] = idf[c] == id ? v : 0.0f;
                }
              else
                for (int64_t c = 0; c < nc; c++) {
                  float v = d[c];
                  xr[c] += idf[c] == id ? v : 0.0f;
                }
            }
        }
      }
}

/* (dy, pool) or (dy, x) -> dx: dy to the cell each max came from */
int kr_k_max_pool2d_grad(const kr_exec *e)
{
  pool_job j;
  j.g = pool_geom(e->ys, e->xs[0], &e->node->attr);
  j.dy = e->x[0];
  j.x = e->x[1];
  j.y = e->y;
  j.aux = e->node->attr.f[KR_POOL_KEEP_ARGMAX] != 0 ? (unsigned char *)e->xaux[1] : NULL;
  j.bytes = idx_bytes(j.g.KH * j.g.KW);
  j.positive = e->node->attr.f[KR_POOL_RELU_BELOW] != 0;
  kr_parallel(kr_conv_workers(e, j.g.N, (double)kr_numel(e->ys), KR_CONV_MAX_SLOTS), maxpool_grad_rows, &j);
  return KR_OK;
}

VEC_CLONES static void avgpool_rows(void *arg, int t, int T)
{
  pool_job *j = arg;
  const pgeom *g = &j->g;
  int64_t n0, n1, C = g->C;
  kr_share(g->N, t, T, &n0, &n1);
  for (int64_t n = n0; n < n1; n++)
    for (int64_t oh = 0; oh < g->Ho; oh++)
      for (int64_t ow = 0; ow < g->Wo; ow++) {
        int64_t h0, h1, w0, w1;
        window(g, oh, ow, &h0, &h1, &w0, &w1);
        float *y = j->y + ((n * g->Ho + oh) * g->Wo + ow) * C;
        memset(y, 0, (size_t)C * sizeof(float));
        for (int64_t h = h0; h < h1; h++)
          for (int64_t w = w0; w < w1; w++) {
            const float *xr = j->x + ((n * g->H + h) * g->W + w) * C;
            for (int64_t c = 0; c < C; c++) y[c] += xr[c];
          }
        float inv = 1.0f / (float)((h1 - h0) * (w1 - w0));
        for (int64_t c = 0; c < C; c++) y[c] *= inv;
      }
}

/* the mean of the real (unpadded) cells of each window */
int kr_k_avg_pool2d(const kr_exec *e)
{
  pool_job j;
  j.g = pool_geom(e->xs[0], e->ys, &e->node->attr);
  j.x = e->x[0];
  j.y = e->y;
  double work = (double)kr_numel(e->ys) * (double)(j.g.KH * j.g.KW);
  kr_parallel(kr_conv_workers(e, j.g.N, work, KR_CONV_MAX_SLOTS), avgpool_rows, &j);
  return KR_OK;
}

VEC_CLONES static void avgpool_grad_rows(void *arg, int t, int T)
{
  pool_job *j = arg;
  const pgeom *g = &j->g;
  int64_t n0, n1, C = g->C;
  kr_share(g->N, t, T, &n0, &n1);
  int store = clear_dx(g, j->y, n0, n1);
  for (int64_t n = n0; n < n1; n++)
    for (int64_t oh = 0; oh < g->Ho; oh++)
      for (int64_t ow = 0; ow < g->Wo; ow++) {
        int64_t h0, h1, w0, w1;
        window(g, oh, ow, &h0, &h1, &w0, &w1);
        const float *restrict d = j->dy + ((n * g->Ho + oh) * g->Wo + ow) * C;
        float inv = 1.0f / (float)((h1 - h0) * (w1 - w0));
        for (int64_t h = h0; h < h1; h++)
          for (int64_t w = w0; w < w1; w++) {
            float *restrict xr = j->y + ((n * g->H + h) * g->W + w) * C;
            if (store)
              for (int64_t c = 0; c < C; c++) xr[c] = d[c] * inv;
            else
              for (int64_t c = 0; c < C; c++) xr[c] += d[c] * inv;
          }
      }
}

/* (dy, x) -> dx */
int kr_k_avg_pool2d_grad(const kr_exec *e)
{
  pool_job j;
  j.g = pool_geom(e->xs[1], e->xs[0], &e->node->attr);
  j.dy = e->x[0];
  j.y = e->y;
  double work = (double)kr_numel(e->xs[0]) * (double)(j.g.KH * j.g.KW);
  kr_parallel(kr_conv_workers(e, j.g.N, work, KR_CONV_MAX_SLOTS), avgpool_grad_rows, &j);
  return KR_OK;
}

/* ---- padding and cropping: top, bottom, left, right (KR_PAD2D_*) ---- */

/* the small one (s: N, Hs, Ws) placed at (top, left) inside the big one (b) */
static void place(const kr_shape *s, const kr_shape *b, const int64_t *at, const float *src, float *dst, int pad)
{
  int r = s->ndim;
  int64_t N = s->dim[0], C = s->dim[r - 1];
  int64_t Hs = r == 4 ? s->dim[1] : 1, Ws = s->dim[r - 2];
  int64_t Hb = r == 4 ? b->dim[1] : 1, Wb = b->dim[r - 2];
  if (pad) memset(dst, 0, (size_t)kr_numel(b) * sizeof(float));
  for (int64_t n = 0; n < N; n++)
    for (int64_t h = 0; h < Hs; h++) {
      int64_t so = (n * Hs + h) * Ws * C, bo = ((n * Hb + h + at[KR_PAD2D_TOP]) * Wb + at[KR_PAD2D_LEFT]) * C;
      if (pad) memcpy(dst + bo, src + so, (size_t)(Ws * C) * sizeof(float));
      else memcpy(dst + so, src + bo, (size_t)(Ws * C) * sizeof(float));
    }
}

int kr_k_pad2d(const kr_exec *e)
{
  place(e->xs[0], e->ys, e->node->attr.i, e->x[0], e->y, 1);
  return KR_OK;
}

int kr_k_crop2d(const kr_exec *e)
{
  place(e->ys, e->xs[0], e->node->attr.i, e->x[0], e->y, 0);
  return KR_OK;
}

/* ---- upsampling (KR_UPSAMPLE_H, _W = sh, sw): every cell repeated sh x sw times ---- */

/* the small side's dimensions (x: N, H, W, C), the repeats, the output's width */
typedef struct ugeom {
  int64_t N, C, H, W, sh, sw, Wo;
} ugeom;

static ugeom up_geom(const kr_shape *s, const kr_attr *a)
{
  int r = s->ndim;
  ugeom g = {s->dim[0], s->dim[r - 1], r == 4 ? s->dim[1] : 1, s->dim[r - 2], a->i[KR_UPSAMPLE_H],
             a->i[KR_UPSAMPLE_W], 0};
  g.Wo = g.W * g.sw;
  return g;
}

int kr_k_upsample2d(const kr_exec *e)
{
  const ugeom g = up_geom(e->xs[0], &e->node->attr);
  const int64_t N = g.N, C = g.C, H = g.H, W = g.W, sh = g.sh, sw = g.sw, Wo = g.Wo;
  const float *x = e->x[0];
  float *y = e->y;
  for (int64_t n = 0; n < N; n++)
    for (int64_t h = 0; h < H; h++) {
      float *row = y + ((n * H + h) * sh) * Wo * C;
      const float *xr = x + (n * H + h) * W * C;
      for (int64_t w = 0; w < W; w++)
        for (int64_t k = 0; k < sw; k++) memcpy(row + (w * sw + k) * C, xr + w * C, (size_t)C * sizeof(float));
      for (int64_t k = 1; k < sh; k++) memcpy(row + k * Wo * C, row, (size_t)(Wo * C) * sizeof(float));
    }
  return KR_OK;
}

/* (dy, x) -> dx: the sum of each cell's copies */
int kr_k_upsample2d_grad(const kr_exec *e)
{
  const kr_shape *s = e->xs[1];
  const ugeom g = up_geom(s, &e->node->attr);
  const int64_t N = g.N, C = g.C, H = g.H, W = g.W, sh = g.sh, sw = g.sw, Wo = g.Wo;
  const float *dy = e->x[0];
  float *dx = e->y;
  memset(dx, 0, (size_t)kr_numel(s) * sizeof(float));
  for (int64_t n = 0; n < N; n++)
    for (int64_t h = 0; h < H; h++) {
      float *xr = dx + (n * H + h) * W * C;
      for (int64_t k = 0; k < sh; k++) {
        const float *row = dy + ((n * H + h) * sh + k) * Wo * C;
        for (int64_t w = 0; w < W; w++)
          for (int64_t q = 0; q < sw; q++) {
            const float *d = row + (w * sw + q) * C;
            for (int64_t c = 0; c < C; c++) xr[w * C + c] += d[c];
          }
      }
    }
  return KR_OK;
}

/* ---- spatial dropout: KR_SDROP_RATE; one draw per (sample, channel) ---- */

size_t kr_sdrop_aux(const kr_node *n, int64_t batch)
{
  kr_shape c = kr_concrete(&n->shape, batch);
  return (size_t)(c.dim[0] * c.dim[c.ndim - 1]);
}

/* x seen as (N, S, C): y = x * m[n, c], m = 1/(1 - rate) or 0 */
int kr_k_spatial_dropout(const kr_exec *e)
{
  const kr_shape *s = e->ys;
  int64_t N = s->dim[0], C = s->dim[s->ndim - 1], S = N > 0 && C > 0 ? kr_numel(s) / (N * C) : 0;
  double rate = e->node->attr.f[KR_SDROP_RATE];
  float *m = e->aux;
  if (!e->training || rate <= 0) {
    for (int64_t i = 0; i < N * C; i++) m[i] = 1.0f;
    memcpy(e->y, e->x[0], (size_t)kr_numel(s) * sizeof(float));
    return KR_OK;
  }
  float keep = (float)(1.0 / (1.0 - rate));
  for (int64_t i = 0; i < N * C; i++) m[i] = kr_rng_uniform(e->ctx) >= rate ? keep : 0.0f;
  const float *x = e->x[0];
  for (int64_t n = 0; n < N; n++)
    for (int64_t k = 0; k < S; k++) {
      const float *xr = x + (n * S + k) * C;
      float *yr = e->y + (n * S + k) * C;
      const float *mr = m + n * C;
      for (int64_t c = 0; c < C; c++) yr[c] = xr[c] * mr[c];
    }
  return KR_OK;
}

/* (dy, spatial_dropout node) -> dy * mask */
int kr_k_spatial_dropout_grad(const kr_exec *e)
{
  const kr_shape *s = e->ys;
  int64_t N = s->dim[0], C = s->dim[s->ndim - 1], S = N > 0 && C > 0 ? kr_numel(s) / (N * C) : 0;
  const float *m = e->xaux[1], *dy = e->x[0];
  if (!m) {
    memcpy(e->y, dy, (size_t)kr_numel(s) * sizeof(float));
    return KR_OK;
  }
  for (int64_t n = 0; n < N; n++)
    for (int64_t k = 0; k < S; k++) {
      const float *d = dy + (n * S + k) * C;
      float *yr = e->y + (n * S + k) * C;
      const float *mr = m + n * C;
      for (int64_t c = 0; c < C; c++) yr[c] = d[c] * mr[c];
    }
  return KR_OK;
}
