/*
** test_image.c -- the image kernels without Lua (src/kernels/image.c,
** src/io/image.c): the batch transform against a direct float64 evaluation
** of the same sampling (every fill mode, far-away and non-finite
** coordinates, several threads), the flips and the channel shift; the
** decoder's refusals and a PNG/JPEG round trip; ZCA's matrix whitens. Run
** under ASan+UBSan by `make test`'s sanitizer pass.
*/
#include "kr.h"
#include "image.h"
#include "check.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define N 5
#define H 6
#define W 7
#define C 3

static int64_t ext(int64_t i, int64_t n, int fill)
{
  if (fill == KR_FILL_NEAREST || fill == KR_FILL_CONSTANT) return i < 0 ? 0 : i >= n ? n - 1 : i;
  if (fill == KR_FILL_WRAP) return ((i % n) + n) % n;
  int64_t m = ((i % (2 * n)) + 2 * n) % (2 * n);
  return m < n ? m : 2 * n - 1 - m;
}

static double sample_at(const float *x, double r, double q, int64_t k, int fill, double cval)
{
  if (!isfinite(r) || !isfinite(q)) return cval;
  if (fill == KR_FILL_CONSTANT && (r < 0 || r > H - 1 || q < 0 || q > W - 1)) return cval;
  double fr = floor(r), fq = floor(q), tr = r - fr, tq = q - fq, v = 0;
  for (int a = 0; a < 2; a++)
    for (int b = 0; b < 2; b++) {
      int64_t rr = ext((int64_t)fr + a, H, fill), qq = ext((int64_t)fq + b, W, fill);
      v += (a ? tr : 1 - tr) * (b ? tq : 1 - tq) * x[(rr * W + qq) * C + k];
    }
  return v;
}

static void transforms(kr_ctx *ctx)
{
  static float x[N * H * W * C], y[N * H * W * C];
  for (int i = 0; i < N * H * W * C; i++) x[i] = (float)((i * 37) % 101);
  kr_image_params p[N];
  memset(p, 0, sizeof p);
  double mats[N][6] = {
    {0.8, -0.6, 2.0, 0.6, 0.8, -1.0},
    {1.0, 0.0, -3.5, 0.0, 1.0, 4.25},
    {1.5, 0.3, -2.0, -0.2, 0.7, 1.0},
    {1e12, 0.0, 0.0, 0.0, -1e12, 0.0},    /* far away: one fill, no overflow */
    {0.0, 0.0, NAN, 0.0, 1.0, 0.0},       /* not finite: cval */
  };
  for (int fill = KR_FILL_CONSTANT; fill <= KR_FILL_WRAP; fill++) {
    for (int threads = 1; threads <= 3; threads += 2) {
      kr_set_num_threads(ctx, threads);
      for (int i = 0; i < N; i++) {
        memcpy(p[i].a, mats[i], sizeof mats[i]);
        p[i].affine = 1;
      }
      CHECK(kr_image_transform(ctx, x, y, N, H, W, C, p, fill, 2.5) == KR_OK);
      double worst = 0;
      for (int i = 0; i < N; i++)
        for (int r = 0; r < H; r++)
          for (int q = 0; q < W; q++)
            for (int k = 0; k < C; k++) {
              const double *a = mats[i];
              double want = sample_at(x + (size_t)i * H * W * C, a[0] * r + a[1] * q + a[2],
                                      a[3] * r + a[4] * q + a[5], k, fill, 2.5);
              if (i == 4 && fill != KR_FILL_CONSTANT) want = 2.5;
              if (i == 3) continue;   /* clamped far away: checked finite below */
              double d = fabs(want - y[(((size_t)i * H + r) * W + q) * C + k]);
              if (d > worst) worst = d;
            }
      CHECK_MSG(worst < 1e-3, "fill %d threads %d: max difference %g", fill, threads, worst);
      int finite = 1;
      for (int j = 0; j < H * W * C; j++) finite &= isfinite(y[3 * H * W * C + j]);
      CHECK(finite);
    }
  }
  /* flips and the channel shift on the identity */
  memset(p, 0, sizeof p);
  p[0].flip_h = 1;
  p[1].flip_v = 1;
  p[2].has_shift = 1;
  p[2].shift = 50;
  CHECK(kr_image_transform(ctx, x, y, 3, H, W, C, p, KR_FILL_NEAREST, 0) == KR_OK);
  CHECK(y[0] == x[(W - 1) * C]);
  CHECK(y[H * W * C] == x[H * W * C + (H - 1) * W * C]);
  float lo = 1e9f, hi = -1e9f;
  for (int j = 0; j < H * W * C; j++) {
    float v = x[2 * H * W * C + j];
    if (v < lo) lo = v;
    if (v > hi) hi = v;
  }
  int ok = 1;
  for (int j = 0; j < H * W * C; j++) {
    float v = x[2 * H * W * C + j] + 50;
    ok &= y[2 * H * W * C + j] == (v > hi ? hi : v);
  }
  CHECK(ok);
  CHECK(kr_image_transform(ctx, x, y, 1, 0, W, C, p, KR_FILL_NEAREST, 0) != KR_OK);
  CHECK(kr_image_transform(ctx, x, y, 1, H, W, C, p, 9, 0) != KR_OK);
  kr_set_num_threads(ctx, 1);
}

static void files(kr_ctx *ctx)
{
  char png[64], jpg[64], bad[64];
  snprintf(png, sizeof png, "/tmp/lkeras-test-image-%ld.png", (long)getpid());
  snprintf(jpg, sizeof jpg, "/tmp/lkeras-test-image-%ld.jpg", (long)getpid());
  snprintf(bad, sizeof bad, "/tmp/lkeras-test-image-%ld.bad", (long)getpid());
  unsigned char px[4 * 5 * 3];
  for (int i = 0; i < 60; i++) px[i] = (unsigned char)(i * 4);
  kr_image im = {4, 5, 3, px}, back;
  CHECK(kr_image_write(ctx, png, &im, 0, 75) == KR_OK);
  CHECK(kr_image_read(ctx, png, 3, &back) == KR_OK);
  CHECK(back.h == 4 && back.w == 5 && back.c == 3 && memcmp(back.px, px, 60) == 0);
  free(back.px);
  CHECK(kr_image_read(ctx, png, 1, &back) == KR_OK);
  CHECK(back.px[0] == (unsigned char)((19595u * 0 + 38470u * 4 + 7471u * 8 + 0x8000u) >> 16));
  free(back.px);
  CHECK(kr_image_write(ctx, jpg, &im, 1, 90) == KR_OK);
  CHECK(kr_image_read(ctx, jpg, 4, &back) == KR_OK);
  CHECK(back.c == 4 && back.px[3] == 255);
  free(back.px);
  /* truncations of both files: an error with a message, never a crash */
  for (int which = 0; which < 2; which++) {
    FILE *f = fopen(which ? jpg : png, "rb");
    unsigned char buf[4096];
    size_t n = f ? fread(buf, 1, sizeof buf, f) : 0;
    if (f) fclose(f);
    int refused = 1;
    for (size_t cut = 0; cut + 1 < n; cut += 7) {
      FILE *g = fopen(bad, "wb");
      fwrite(buf, 1, cut, g);
      fclose(g);
      if (kr_image_read(ctx, bad, 3, &back) == KR_OK) {
        /* only a file whose pixel data are all there (a missing IEND) loads */
        if (which || back.h != 4 || back.w != 5 || memcmp(back.px, px, 60) != 0) refused = 0;
        free(back.px);
      } else if (kr_errmsg(ctx)[0] == '\0') {
        refused = 0;
      }
    }
    CHECK_MSG(refused, "every truncation of the %s file is refused (or gives every pixel)", which ? "JPEG" : "PNG");
  }
  CHECK(kr_image_read(ctx, "/nonexistent/x.png", 3, &back) == KR_EIO);
  unlink(png);
  unlink(jpg);
  unlink(bad);
}

static void zca(kr_ctx *ctx)
{
  enum { n = 40, d = 6 };
  static float x[n * d], pc[d * d];
  for (int i = 0; i < n * d; i++) x[i] = (float)fmod(sin((i + 1) * 12.9898) * 43758.5453, 1.0) - 0.5f;
  CHECK(kr_image_zca(ctx, x, n, d, 1e-6, pc) == KR_OK);
  /* pc is symmetric and pc sigma pc = I */
  double sigma[d][d] = {{0}}, worst = 0;
  for (int i = 0; i < d; i++)
    for (int j = 0; j < d; j++) {
      for (int s = 0; s < n; s++) sigma[i][j] += (double)x[s * d + i] * x[s * d + j] / n;
      worst = fmax(worst, fabs(pc[i * d + j] - pc[j * d + i]));
    }
  for (int i = 0; i < d; i++)
    for (int j = 0; j < d; j++) {
      double v = 0;
      for (int a = 0; a < d; a++)
        for (int b = 0; b < d; b++) v += pc[i * d + a] * sigma[a][b] * pc[b * d + j];
      worst = fmax(worst, fabs(v - (i == j)));
    }
  CHECK_MSG(worst < 1e-3, "ZCA: max deviation %g", worst);
}

int main(void)
{
  kr_ctx *ctx = kr_ctx_new();
  CHECK(ctx != NULL);
  if (!ctx) return check_report("test_image");
  transforms(ctx);
  files(ctx);
  zca(ctx);
  kr_ctx_free(ctx);
  return check_report("test_image");
}
