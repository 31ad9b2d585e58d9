/*
** image.c -- ImageDataGenerator's transforms on a batch of h x w x c images
** (keras-preprocessing 1.0.5's apply_transform), parallel over samples.
**
** The affine part is scipy.ndimage.affine_transform with order=1, as Keras
** calls it per channel: the output pixel (r, c) samples the input at
** A * (r, c) + b by bilinear interpolation between the four grid points
** around it. Grid indices outside the image follow the fill mode (Keras's
** docs): nearest aaaa|abcd|dddd, reflect dcba|abcd|dcba, wrap abcd|abcd|abcd;
** constant gives cval to every point whose row or column lies outside
** [0, n - 1].
*/
#include <cblas.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "../image.h"
#include "threadpool.h"
#include "../openblas.h"

static int64_t fill_index(int64_t i, int64_t n, int fill)
{
  if (i >= 0 && i < n) return i;
  if (fill == KR_FILL_NEAREST) return i < 0 ? 0 : n - 1;
  if (fill == KR_FILL_WRAP) {
    int64_t m = i % n;
    return m < 0 ? m + n : m;
  }
  /* reflect: period 2n, the second half mirrored */
  int64_t p = 2 * n, m = i % p;
  if (m < 0) m += p;
  return m < n ? m : p - 1 - m;
}

typedef struct {
  const float *x;
  float *y;
  int64_t n, h, w, c;
  const kr_image_params *p;
  int fill;
  double cval;
} job;

static void affine(const job *j, const float *x, float *y, const double *a)
{
  int64_t h = j->h, w = j->w, c = j->c;
  for (int64_t r = 0; r < h; r++) {
    for (int64_t q = 0; q < w; q++) {
      double sr = a[0] * (double)r + a[1] * (double)q + a[2];
      double sc = a[3] * (double)r + a[4] * (double)q + a[5];
      float *o = y + (r * w + q) * c;
      if (j->fill == KR_FILL_CONSTANT &&
          (!(sr >= 0 && sr <= (double)(h - 1)) || !(sc >= 0 && sc <= (double)(w - 1)))) {
        for (int64_t k = 0; k < c; k++) o[k] = (float)j->cval;
        continue;
      }
      if (!isfinite(sr) || !isfinite(sc)) {
        for (int64_t k = 0; k < c; k++) o[k] = (float)j->cval;
        continue;
      }
      /* keep the floor representable; far points are all one fill anyway */
      if (sr < -4.0 * (double)h - 4) sr = -4.0 * (double)h - 4;
      if (sr > 4.0 * (double)h + 4) sr = 4.0 * (double)h + 4;
      if (sc < -4.0 * (double)w - 4) sc = -4.0 * (double)w - 4;
      if (sc > 4.0 * (double)w + 4) sc = 4.0 * (double)w + 4;
      double fr = floor(sr), fc = floor(sc);
      double tr = sr - fr, tc = sc - fc;
      int fill = j->fill == KR_FILL_CONSTANT ? KR_FILL_NEAREST : j->fill;
      int64_t r0 = fill_index((int64_t)fr, h, fill), r1 = fill_index((int64_t)fr + 1, h, fill);
      int64_t c0 = fill_index((int64_t)fc, w, fill), c1 = fill_index((int64_t)fc + 1, w, fill);
      const float *p00 = x + (r0 * w + c0) * c, *p01 = x + (r0 * w + c1) * c;
      const float *p10 = x + (r1 * w + c0) * c, *p11 = x + (r1 * w + c1) * c;
      double w00 = (1 - tr) * (1 - tc), w01 = (1 - tr) * tc, w10 = tr * (1 - tc), w11 = tr * tc;
      for (int64_t k = 0; k < c; k++)
        o[k] = (float)(w00 * p00[k] + w01 * p01[k] + w10 * p10[k] + w11 * p11[k]);
    }
  }
}

static void flip(float *y, int64_t h, int64_t w, int64_t c, int horizontal)
{
  if (horizontal) {
    for (int64_t r = 0; r < h; r++)
      for (int64_t q = 0; q < w / 2; q++) {
        float *a = y + (r * w + q) * c, *b = y + (r * w + (w - 1 - q)) * c;
        for (int64_t k = 0; k < c; k++) { float t = a[k]; a[k] = b[k]; b[k] = t; }
      }
  } else {
    for (int64_t r = 0; r < h / 2; r++) {
      float *a = y + r * w * c, *b = y + (h - 1 - r) * w * c;
      for (int64_t k = 0; k < w * c; k++) { float t = a[k]; a[k] = b[k]; b[k] = t; }
    }
  }
}

static void sample(const job *j, int64_t i)
{
  int64_t sz = j->h * j->w * j->c;
  const float *x = j->x + i * sz;
  float *y = j->y + i * sz;
  const kr_image_params *p = &j->p[i];
  if (p->affine) affine(j, x, y, p->a);
  else memcpy(y, x, (size_t)sz * sizeof *y);
  if (p->has_shift) {
    float lo = y[0], hi = y[0];
    for (int64_t k = 1; k < sz; k++) { if (y[k] < lo) lo = y[k]; if (y[k] > hi) hi = y[k]; }
    for (int64_t k = 0; k < sz; k++) {
      float v = (float)((double)y[k] + p->shift);
      y[k] = v < lo ? lo : v > hi ? hi : v;
    }
  }
  if (p->flip_h) flip(y, j->h, j->w, j->c, 1);
  if (p->flip_v) flip(y, j->h, j->w, j->c, 0);
  if (p->has_brightness) {
    /* array_to_img's scaling to 0..255 and uint8, then PIL's blend with black
    ** (float factor, truncated, clipped); an alpha channel is kept */
    float lo = y[0], hi;
    for (int64_t k = 1; k < sz; k++) if (y[k] < lo) lo = y[k];
    hi = y[0] - lo;
    for (int64_t k = 0; k < sz; k++) if (y[k] - lo > hi) hi = y[k] - lo;
    float f = (float)p->brightness;
    for (int64_t k = 0; k < sz; k++) {
      float v = y[k] - lo;
      if (hi != 0) v /= hi;
      v *= 255.0f;
      float u = v < 0 ? 0.0f : v >= 255.0f ? 255.0f : floorf(v);
      if (j->c == 4 && k % 4 == 3) { y[k] = u; continue; }
      float t = u * f;
      y[k] = t <= 0.0f ? 0.0f : t >= 255.0f ? 255.0f : floorf(t);
    }
  }
}

static void part(void *arg, int t, int T)
{
  const job *j = arg;
  int64_t i0, i1;
  kr_share(j->n, t, T, &i0, &i1);
  for (int64_t i = i0; i < i1; i++) sample(j, i);
}

int kr_image_transform(kr_ctx *ctx, const float *x, float *y, int64_t n, int64_t h, int64_t w,
                       int64_t c, const kr_image_params *p, int fill, double cval)
{
  if (n < 0 || h < 1 || w < 1 || c < 1)
    return kr_fail(ctx, KR_ESHAPE, "apply_transform: images must have positive sizes");
  if (fill < KR_FILL_CONSTANT || fill > KR_FILL_WRAP)
    return kr_fail(ctx, KR_EARG, "apply_transform: unknown fill mode");
  job j = {x, y, n, h, w, c, p, fill, cval};
  int T = kr_get_num_threads(ctx);
  if (T > n) T = (int)n;
  if (T <= 1) {
    for (int64_t i = 0; i < n; i++) sample(&j, i);
  } else {
    kr_parallel(T, part, &j);
  }
  return KR_OK;
}

/* ---- ZCA whitening (ImageDataGenerator.fit) ---- */

extern void dsyev_(const char *jobz, const char *uplo, const int *n, double *a, const int *lda, double *w,
                   double *work, const int *lwork, int *info);

static int zca(kr_ctx *ctx, const float *x, int64_t n, int64_t d, double eps, float *pc)
{
  if (n < 1 || d < 1 || d > 16384)
    return kr_fail(ctx, KR_EARG, "fit: zca_whitening needs 1 to 16384 features per sample, got %lld",
                   (long long)d);
  int m = (int)d, info = 0, lwork = -1;
  float *s = malloc((size_t)d * (size_t)d * sizeof *s);
  double *a = malloc((size_t)d * (size_t)d * sizeof *a);
  double *w = malloc((size_t)d * sizeof *w);
  double *b = malloc((size_t)d * (size_t)d * sizeof *b);
  double *c = malloc((size_t)d * (size_t)d * sizeof *c);
  double q = 0, *work = NULL;
  int rc = KR_OK;
  if (!s || !a || !w || !b || !c) { rc = kr_fail(ctx, KR_EMEM, "fit: zca_whitening: out of memory"); goto done; }
  /* sigma = x^T x / n in float32, as numpy's dot on Keras's floatx arrays */
  cblas_ssyrk(CblasRowMajor, CblasUpper, CblasTrans, m, (int)n, 1.0f / (float)n, x, m, 0.0f, s, m);
  for (int64_t i = 0; i < d; i++)
    for (int64_t j = i; j < d; j++) a[i * d + j] = a[j * d + i] = s[i * d + j];
  /* eigenvectors v and eigenvalues l of the symmetric sigma (its SVD):
  ** pc = v diag(1 / sqrt(l + eps)) v^T */
  dsyev_("V", "L", &m, a, &m, w, &q, &lwork, &info);
  lwork = info == 0 && q >= 1 ? (int)q : 3 * m;
  work = malloc((size_t)lwork * sizeof *work);
  if (!work) { rc = kr_fail(ctx, KR_EMEM, "fit: zca_whitening: out of memory"); goto done; }
  dsyev_("V", "L", &m, a, &m, w, work, &lwork, &info);
  if (info != 0) {
    rc = kr_fail(ctx, KR_EVALUE, "fit: zca_whitening: the eigendecomposition failed (%d)", info);
    goto done;
  }
  /* row-major a now holds the eigenvectors as rows (column-major columns) */
  for (int64_t k = 0; k < d; k++) {
    double f = 1.0 / sqrt(fabs(w[k]) + eps);   /* the singular values are |l| */
    for (int64_t i = 0; i < d; i++) b[k * d + i] = a[k * d + i] * f;
  }
  /* pc[i][j] = sum_k a[k][i] f_k a[k][j] */
  cblas_dgemm(CblasRowMajor, CblasTrans, CblasNoTrans, m, m, m, 1.0, b, m, a, m, 0.0, c, m);
  for (int64_t i = 0; i < d * d; i++) pc[i] = (float)c[i];
done:
  free(s);
  free(a);
  free(w);
  free(b);
  free(c);
  free(work);
  return rc;
}

/* OpenBLAS and its LAPACK single-threaded meanwhile: their thread count
** would change the result's floats (threadpool.h, "Determinism") */
int kr_image_zca(kr_ctx *ctx, const float *x, int64_t n, int64_t d, double eps, float *pc)
{
  int saved = openblas_get_num_threads();
  if (saved != 1) openblas_set_num_threads(1);
  int rc = zca(ctx, x, n, d, eps, pc);
  if (saved != 1) openblas_set_num_threads(saved);
  return rc;
}
