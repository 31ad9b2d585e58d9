/*
** conv_thin.c -- the direct kernels of convolutions with a few filters
** (conv_thin.h). With O <= 4 filters an im2col block of R rows times K =
** KH*KW*C columns meets a K x O kernel: the product is a matrix-vector one,
** and copying the block costs more than it. Here the channels are the
** vector lanes instead:
**   forward: per output pixel and filter, one AVX-512 accumulator summed
**     over the taps inside the input and the 16-channel blocks (the kernel
**     repacked once to (KH, KW, O, C rounded up to 16), zeros past C; the
**     input's last block read under a mask), then reduced to a float, the
**     bias, the relu and the output mask applied as it is stored;
**   kernel gradient: per chunk of samples a partial sum (dw, and db with the
**     bias) in the plan's scratch: every pixel adds x's channels at each tap
**     times dz (dy, or dy where the conv's relu passed it), then
**     kernels/conv.c adds the chunks in order (kr_sum_chunks).
** Each chunk's samples are run by one worker, every sum in a fixed order:
** the same floats for any number of workers. No allocation.
*/
#include "kernels.h"
#include "../ops_conv.h"
#include "threadpool.h"
#include "conv_thin.h"

#include <string.h>

#if defined(__GNUC__) && !defined(__clang__) && defined(__x86_64__)
#include <immintrin.h>
#define HAVE_AVX512 1
#else
#define HAVE_AVX512 0
#endif

#define THIN_MAX_O 4

static int64_t blocks16(int64_t c) { return (c + 15) / 16; }

int kr_thin_ok(const kr_cgeom *g)
{
#if HAVE_AVX512
  return __builtin_cpu_supports("avx512f") != 0 && g->O <= THIN_MAX_O && g->C >= 8;
#else
  (void)g;
  return 0;
#endif
}

size_t kr_thin_forward_scratch(const kr_cgeom *g) { return (size_t)(g->KH * g->KW * g->O * blocks16(g->C) * 16); }

#if HAVE_AVX512

typedef struct thin_job {
  kr_cgeom g;
  const float *x, *w, *bias, *omask, *dy, *mask;
  int relu, with_bias;
  float *y, *parts;
  size_t stride;
} thin_job;

__attribute__((target("avx512f,fma"))) static void thin_fwd_rows(void *arg, int c, int G, int t)
{
  const thin_job *j = arg;
  const kr_cgeom *g = &j->g;
  int64_t C = g->C, O = g->O, CB = blocks16(C), n0, n1;
  __mmask16 tail = (C % 16) ? (__mmask16)((1u << (C % 16)) - 1) : (__mmask16)0xFFFF;
  (void)t;
  kr_share(g->N, c, G, &n0, &n1);
  for (int64_t n = n0; n < n1; n++)
    for (int64_t oh = 0; oh < g->Ho; oh++)
      for (int64_t ow = 0; ow < g->Wo; ow++) {
        __m512 acc[THIN_MAX_O];
        for (int o = 0; o < THIN_MAX_O; o++) acc[o] = _mm512_setzero_ps();
        for (int64_t kh = 0; kh < g->KH; kh++) {
          int64_t ih = oh * g->sh - g->pt + kh * g->dh;
          if (ih < 0 || ih >= g->H) continue;
          for (int64_t kw = 0; kw < g->KW; kw++) {
            int64_t iw = ow * g->sw - g->pl + kw * g->dw;
            if (iw < 0 || iw >= g->W) continue;
            const float *xr = j->x + ((n * g->H + ih) * g->W + iw) * C;
            const float *wk = j->w + (kh * g->KW + kw) * O * CB * 16;
            for (int64_t cb = 0; cb < CB; cb++) {
              __m512 xv = cb == CB - 1 ? _mm512_maskz_loadu_ps(tail, xr + 16 * cb) : _mm512_loadu_ps(xr + 16 * cb);
              for (int64_t o = 0; o < O; o++)
                acc[o] = _mm512_fmadd_ps(xv, _mm512_loadu_ps(wk + (o * CB + cb) * 16), acc[o]);
            }
          }
        }
        int64_t at = ((n * g->Ho + oh) * g->Wo + ow) * O;
        for (int64_t o = 0; o < O; o++) {
          float v = _mm512_reduce_add_ps(acc[o]) + (j->bias ? j->bias[o] : 0.0f);
          if (j->relu && v <= 0.0f) v = 0.0f;   /* NaN stays */
          if (j->omask && j->omask[at + o] <= 0.0f) v = 0.0f;   /* as keep_where */
          j->y[at + o] = v;
        }
      }
}

void kr_thin_forward(const kr_cgeom *g, int G, const float *x, const float *w, const float *bias, int relu,
                     const float *omask, float *y, float *scratch, int T)
{
  /* w (KH, KW, C, O) -> (KH, KW, O, CB*16), zeros past C */
  int64_t C = g->C, O = g->O, CB = blocks16(C);
  memset(scratch, 0, kr_thin_forward_scratch(g) * sizeof(float));
  for (int64_t k = 0; k < g->KH * g->KW; k++)
    for (int64_t c = 0; c < C; c++)
      for (int64_t o = 0; o < O; o++) scratch[(k * O + o) * CB * 16 + c] = w[(k * C + c) * O + o];
  thin_job j;
  memset(&j, 0, sizeof j);
  j.g = *g;
  j.x = x;
  j.w = scratch;
  j.bias = bias;
  j.omask = omask;
  j.relu = relu;
  j.y = y;
  kr_parallel_chunks(T, G, thin_fwd_rows, &j);
}

__attribute__((target("avx512f,fma"))) static void thin_gk_rows(void *arg, int c, int G, int t)
{
  const thin_job *j = arg;
  const kr_cgeom *g = &j->g;
  int64_t C = g->C, O = g->O, KO = g->KH * g->KW * C * O, n0, n1;
  float *acc = j->parts + (size_t)c * j->stride, *db = acc + (KO + 15) / 16 * 16;
  (void)t;
  kr_share(g->N, c, G, &n0, &n1);
  memset(acc, 0, (size_t)KO * sizeof(float));
  if (j->with_bias) memset(db, 0, (size_t)O * sizeof(float));
  for (int64_t n = n0; n < n1; n++)
    for (int64_t oh = 0; oh < g->Ho; oh++)
      for (int64_t ow = 0; ow < g->Wo; ow++) {
        int64_t at = ((n * g->Ho + oh) * g->Wo + ow) * O;
        float d[THIN_MAX_O];
        for (int64_t o = 0; o < O; o++) {
          float v = j->dy[at + o];
          d[o] = j->mask && j->mask[at + o] <= 0.0f ? 0.0f : v;   /* a NaN mask passes dy, as copy_span */
          if (j->with_bias) db[o] += d[o];
        }
        for (int64_t kh = 0; kh < g->KH; kh++) {
          int64_t ih = oh * g->sh - g->pt + kh * g->dh;
          if (ih < 0 || ih >= g->H) continue;
          for (int64_t kw = 0; kw < g->KW; kw++) {
            int64_t iw = ow * g->sw - g->pl + kw * g->dw;
            if (iw < 0 || iw >= g->W) continue;
            const float *xr = j->x + ((n * g->H + ih) * g->W + iw) * C;
            float *ak = acc + (kh * g->KW + kw) * C * O;
            if (O == 1) {
              float d0 = d[0];
              for (int64_t ch = 0; ch < C; ch++) ak[ch] += xr[ch] * d0;
            } else {
              for (int64_t ch = 0; ch < C; ch++)
                for (int64_t o = 0; o < O; o++) ak[ch * O + o] += xr[ch] * d[o];
            }
          }
        }
      }
}

void kr_thin_grad_kernel(const kr_cgeom *g, int G, const float *dy, const float *mask, const float *x, int bias,
                         float *parts, size_t stride, int T)
{
  thin_job j;
  memset(&j, 0, sizeof j);
  j.g = *g;
  j.x = x;
  j.dy = dy;
  j.mask = mask;
  j.with_bias = bias;
  j.parts = parts;
  j.stride = stride;
  kr_parallel_chunks(T, G, thin_gk_rows, &j);
}

#else

/* never chosen: kr_thin_ok is false without AVX-512 */
void kr_thin_forward(const kr_cgeom *g, int G, const float *x, const float *w, const float *bias, int relu,
                     const float *omask, float *y, float *scratch, int T)
{
  (void)g, (void)G, (void)x, (void)w, (void)bias, (void)relu, (void)omask, (void)y, (void)scratch, (void)T;
}

void kr_thin_grad_kernel(const kr_cgeom *g, int G, const float *dy, const float *mask, const float *x, int bias,
                         float *parts, size_t stride, int T)
{
  (void)g, (void)G, (void)dy, (void)mask, (void)x, (void)bias, (void)parts, (void)stride, (void)T;
}

#endif
