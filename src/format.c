/*
** format.c -- tensors as text, the way numpy prints float32 arrays:
** "[[1. 2.]\n [3. 4.]]", shortest digits that identify each float32, one
** width per array, scientific notation for very large/small magnitudes,
** rows wrapped at 75 columns, and "..." summaries past 1000 elements.
*/
#include "kr.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define LINE_WIDTH 75
#define THRESHOLD 1000
#define EDGE 3

typedef struct {
  kr_ctx *ctx;
  char *buf;
  size_t len, cap;
  int oom;
  /* number format */
  int sci, integral, frac, intw, width;
} fmt;

static void put(fmt *f, const char *s, size_t n)
{
  if (f->oom) return;
  if (f->len + n + 1 > f->cap) {
    size_t nc = f->cap ? f->cap : 256;
    while (nc < f->len + n + 1) nc *= 2;
    char *nb = kr_malloc(f->ctx, nc);
    if (!nb) {
      f->oom = 1;
      return;
    }
    if (f->len) memcpy(nb, f->buf, f->len);
    kr_free(f->ctx, f->buf);
    f->buf = nb;
    f->cap = nc;
  }
  memcpy(f->buf + f->len, s, n);
  f->len += n;
  f->buf[f->len] = '\0';
}

static void puts_(fmt *f, const char *s) { put(f, s, strlen(s)); }

/* fewest fractional digits (<= 8) that give back the same float32 */
static int frac_digits(float v)
{
  char b[64];
  for (int p = 0; p <= 8; p++) {
    snprintf(b, sizeof b, "%.*f", p, (double)v);
    if ((float)strtod(b, NULL) == v) return p;
  }
  return 8;
}

static int sci_digits(float v)
{
  char b[64];
  for (int p = 0; p <= 8; p++) {
    snprintf(b, sizeof b, "%.*e", p, (double)v);
    if ((float)strtod(b, NULL) == v) return p;
  }
  return 8;
}

/* text of one number without padding */
static int one(const fmt *f, float v, char *b, size_t n)
{
  if (isnan(v)) return snprintf(b, n, "nan");
  if (isinf(v)) return snprintf(b, n, v > 0 ? "inf" : "-inf");
  if (f->sci) {
    int p = sci_digits(v);
    char m[64];
    snprintf(m, sizeof m, "%.*e", f->frac, (double)v);
    /* numpy pads the mantissa's digits with spaces, not zeros, past what is needed */
    char *e = strchr(m, 'e');
    int keep = p == 0 ? 1 : p + 2;          /* digit, point, digits */
    if (v < 0) keep++;
    char out[96];
    int k = snprintf(out, sizeof out, "%.*s", keep, m);
    if (p == 0) out[k++] = '.', out[k] = '\0';
    int pad = f->frac - p;
    for (int i = 0; i < pad; i++) out[k++] = ' ';
    out[k] = '\0';
    /* numpy writes e-05, e+03: two exponent digits at least */
    return snprintf(b, n, "%s%s", out, e);
  }
  if (f->integral) return snprintf(b, n, "%.0f.", (double)v);
  int p = frac_digits(v);
  int k = snprintf(b, n, "%.*f", p, (double)v);
  if (p == 0 && k + 1 < (int)n) b[k++] = '.', b[k] = '\0';
  for (int i = p; i < f->frac && k + 1 < (int)n; i++) b[k++] = ' ', b[k] = '\0';
  return k;
}

static void choose_format(fmt *f, const float *d, int64_t n)
{
  double maxa = 0, mina = INFINITY;
  int any = 0, integral = 1;
  for (int64_t i = 0; i < n; i++) {
    float v = d[i];
    if (!isfinite(v)) continue;
    double a = fabs(v);
    any = 1;
    if (a > maxa) maxa = a;
    if (a > 0 && a < mina) mina = a;
    if (v != floorf(v)) integral = 0;
  }
  f->sci = any && (maxa >= 1e8 || (mina < 1e-4 && mina > 0) || (mina > 0 && maxa / mina > 1e3 && !integral));
  f->integral = integral && !f->sci;
  f->frac = 0;
  if (!f->integral)
    for (int64_t i = 0; i < n; i++)
      if (isfinite(d[i])) {
        int p = f->sci ? sci_digits(d[i]) : frac_digits(d[i]);
        if (p > f->frac) f->frac = p;
      }
  f->width = 0;
  char b[96];
  for (int64_t i = 0; i < n; i++) {
    int w = one(f, d[i], b, sizeof b);
    if (w > f->width) f->width = w;
  }
}

static int shown(int64_t n) { return n > 2 * EDGE; }

/* collect the elements that will be printed, for the format choice */
static void collect(const kr_tensor *t, int axis, int64_t off, int summarize, float *out, int64_t *k)
{
  const kr_shape *s = &t->shape;
  if (axis == s->ndim) {
    out[(*k)++] = KR_DATA(t)[off];
    return;
  }
  int64_t stride = 1;
  for (int i = axis + 1; i < s->ndim; i++) stride *= s->dim[i];
  int64_t n = s->dim[axis];
  for (int64_t i = 0; i < n; i++) {
    if (summarize && shown(n) && i == EDGE) i = n - EDGE;
    collect(t, axis + 1, off + i * stride, summarize, out, k);
  }
}

static void emit(fmt *f, const kr_tensor *t, int axis, int64_t off, int summarize, size_t *col)
{
  const kr_shape *s = &t->shape;
  int64_t n = s->dim[axis];
  int64_t stride = 1;
  for (int i = axis + 1; i < s->ndim; i++) stride *= s->dim[i];
  puts_(f, "[");
  (*col)++;
  char b[128];
  for (int64_t i = 0; i < n; i++) {
    if (summarize && shown(n) && i == EDGE) {
      if (axis == s->ndim - 1) {
        puts_(f, " ...");
        *col += 4;
      } else {
        puts_(f, "...");
        for (int k = 0; k < s->ndim - 1 - axis; k++) puts_(f, "\n");
        for (int k = 0; k <= axis; k++) puts_(f, " ");
        *col = (size_t)axis + 1;
      }
      i = n - EDGE;
    }
    if (axis == s->ndim - 1) {
      int w = one(f, KR_DATA(t)[off + i], b, sizeof b);
      char padded[160];
      snprintf(padded, sizeof padded, "%*s%s", f->width - w, "", b);
      /* the last item must leave room for the closing brackets */
      size_t need = strlen(padded) + (i + 1 == n ? (size_t)axis + 1 : 0);
      if (i > 0 && *col + 1 + need > LINE_WIDTH) {
        puts_(f, "\n");
        for (int k = 0; k <= axis; k++) puts_(f, " ");
        *col = (size_t)axis + 1;
      } else if (i > 0) {
        puts_(f, " ");
        (*col)++;
      }
      puts_(f, padded);
      *col += strlen(padded);
    } else {
      emit(f, t, axis + 1, off + i * stride, summarize, col);
      if (i + 1 < n) {
        for (int k = 0; k < s->ndim - 1 - axis; k++) puts_(f, "\n");
        for (int k = 0; k <= axis; k++) puts_(f, " ");
        *col = (size_t)axis + 1;
      }
    }
  }
  puts_(f, "]");
  (*col)++;
}

char *kr_tensor_format(kr_ctx *ctx, const kr_tensor *t)
{
  fmt f;
  memset(&f, 0, sizeof f);
  f.ctx = ctx;
  int64_t total = kr_tensor_numel(t);
  int summarize = total > THRESHOLD;
  if (t->shape.ndim == 0) {
    choose_format(&f, KR_DATA(t), 1);
    char b[96];
    one(&f, KR_DATA(t)[0], b, sizeof b);
    puts_(&f, b);
  } else if (total == 0) {
    puts_(&f, "[]");
  } else {
    int64_t cnt = 0;
    int64_t cap = summarize ? 1 : total;
    if (summarize) {
      cap = 1;
      for (int i = 0; i < t->shape.ndim; i++) cap *= shown(t->shape.dim[i]) ? 2 * EDGE : t->shape.dim[i];
    }
    float *sel = kr_malloc(ctx, (size_t)cap * sizeof(float));
    if (!sel) return NULL;
    collect(t, 0, 0, summarize, sel, &cnt);
    choose_format(&f, sel, cnt);
    kr_free(ctx, sel);
    size_t col = 0;
    emit(&f, t, 0, 0, summarize, &col);
  }
  if (f.oom) {
    kr_free(ctx, f.buf);
    kr_fail(ctx, KR_EMEM, "out of memory while printing a tensor");
    return NULL;
  }
  return f.buf;
}
