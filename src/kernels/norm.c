/*
** norm.c -- batch normalization (Keras 2.2.4): inputs (x, gamma, beta,
** moving_mean, moving_variance), i0 = the normalized axis, f0 = momentum,
** f1 = epsilon. Shapes: x seen as (outer, C, inner) around the axis; the
** statistics are per channel over N = outer * inner values.
** Training: batch statistics normalize; the moving statistics are updated in
** place (moving = moving*momentum + batch*(1 - momentum), the variance first
** multiplied by N / (N - (1 + epsilon))). Inference: the moving statistics.
** aux keeps mean (C) and 1/sqrt(var + eps) (C) for the gradients.
*/
#include "kernels.h"

#include <math.h>

static void dims(const kr_shape *s, int ax, int64_t *outer, int64_t *C, int64_t *inner)
{
  *outer = 1;
  *inner = 1;
  for (int i = 0; i < ax; i++) *outer *= s->dim[i];
  for (int i = ax + 1; i < s->ndim; i++) *inner *= s->dim[i];
  *C = s->dim[ax];
}

#define AT(o, c, k) (((o) * C + (c)) * inner + (k))

int kr_k_batchnorm(const kr_exec *e)
{
  int64_t outer, C, inner;
  dims(e->xs[0], (int)e->node->attr.i[KR_BN_AXIS], &outer, &C, &inner);
  const float *x = e->x[0], *gamma = e->x[1], *beta = e->x[2];
  float *mm = (float *)e->x[3], *mv = (float *)e->x[4];
  double momentum = e->node->attr.f[KR_BN_MOMENTUM], eps = e->node->attr.f[KR_BN_EPSILON];
  float *mean = e->aux, *inv = e->aux + C;
  int64_t N = outer * inner;
  for (int64_t c = 0; c < C; c++) {
    if (e->training) {
      double s = 0, s2 = 0;
      for (int64_t o = 0; o < outer; o++)
        for (int64_t k = 0; k < inner; k++) s += x[AT(o, c, k)];
      double mu = N ? s / (double)N : 0;
      for (int64_t o = 0; o < outer; o++)
        for (int64_t k = 0; k < inner; k++) {
          double d = x[AT(o, c, k)] - mu;
          s2 += d * d;
        }
      double var = N ? s2 / (double)N : 0;
      mean[c] = (float)mu;
      inv[c] = (float)(1.0 / sqrt(var + eps));
      double unbiased = N > 1 ? var * (double)N / ((double)N - (1.0 + eps)) : var;
      if (e->training != KR_TRAINING_KEEP_STATS) {
        mm[c] = (float)(mm[c] * momentum + mu * (1.0 - momentum));
        mv[c] = (float)(mv[c] * momentum + unbiased * (1.0 - momentum));
      }
    } else {
      mean[c] = mm[c];
      inv[c] = (float)(1.0 / sqrt((double)mv[c] + eps));
    }
    float g = gamma[c] * inv[c], b = beta[c], m = mean[c];
    for (int64_t o = 0; o < outer; o++)
      for (int64_t k = 0; k < inner; k++) e->y[AT(o, c, k)] = (x[AT(o, c, k)] - m) * g + b;
  }
  return KR_OK;
}

/* (dy, bn, x, gamma) -> dx */
int kr_k_batchnorm_grad(const kr_exec *e)
{
  int64_t outer, C, inner;
  dims(e->xs[2], (int)e->node->attr.i[KR_BN_AXIS], &outer, &C, &inner);
  const float *dy = e->x[0], *x = e->x[2], *gamma = e->x[3];
  const float *mean = e->xaux[1], *inv = e->xaux[1] + C;
  int64_t N = outer * inner;
  for (int64_t c = 0; c < C; c++) {
    float m = mean[c], is = inv[c];
    if (!e->training || N == 0) {
      for (int64_t o = 0; o < outer; o++)
        for (int64_t k = 0; k < inner; k++) e->y[AT(o, c, k)] = dy[AT(o, c, k)] * gamma[c] * is;
      continue;
    }
    double sdy = 0, sdyx = 0;
    for (int64_t o = 0; o < outer; o++)
      for (int64_t k = 0; k < inner; k++) {
        double d = dy[AT(o, c, k)];
        sdy += d;
        sdyx += d * (x[AT(o, c, k)] - m) * is;
      }
    float a = gamma[c] * is / (float)N;
    for (int64_t o = 0; o < outer; o++)
      for (int64_t k = 0; k < inner; k++) {
        float xh = (x[AT(o, c, k)] - m) * is;
        e->y[AT(o, c, k)] = a * ((float)N * dy[AT(o, c, k)] - (float)sdy - xh * (float)sdyx);
      }
  }
  return KR_OK;
}

/* (dy, bn, x) -> dgamma = sum(dy * xhat) (i2 = 0) or dbeta = sum(dy) (i2 = 1) */
int kr_k_batchnorm_grad_param(const kr_exec *e)
{
  int64_t outer, C, inner;
  dims(e->xs[2], (int)e->node->attr.i[KR_BN_AXIS], &outer, &C, &inner);
  const float *dy = e->x[0], *x = e->x[2];
  const float *mean = e->xaux[1], *inv = e->xaux[1] + C;
  int beta = e->node->attr.i[KR_BN_WHICH] == 1;
  for (int64_t c = 0; c < C; c++) {
    double s = 0;
    for (int64_t o = 0; o < outer; o++)
      for (int64_t k = 0; k < inner; k++)
        s += beta ? dy[AT(o, c, k)] : dy[AT(o, c, k)] * (x[AT(o, c, k)] - mean[c]) * inv[c];
    e->y[c] = (float)s;
  }
  return KR_OK;
}
