/*
** format.c -- tensors as text, the way numpy 1.24 prints float32 arrays with
** its default options (str(a)): "[[1. 2.]\n [3. 4.]]", the shortest digits
** that identify each float32 (at most 8 after the point), one width per
** array, scientific notation when the magnitudes call for it, rows wrapped
** at 75 columns, and "..." summaries past 1000 elements. A 0-d tensor prints
** like a numpy float32 scalar ("18.0", "1e-05").
** The rules are numpy's arrayprint.py (FloatingFormat, _formatArray) and
** its Dragon4 modes; tests/fixtures/print.lua holds numpy's own output.
*/
#include "kr.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define LINE_WIDTH 75
#define THRESHOLD 1000
#define EDGE 3
#define PRECISION 8            /* numpy's default print precision */
#define EXACT_INTS 16777216.0f /* 2^24: from here on every float32 is an integer */

typedef struct {
  kr_ctx *ctx;
  char *buf;
  size_t len, cap;
  int oom;
  int sci;        /* scientific notation for the whole array */
  int prec;       /* digits after the point: mantissa (sci) or at most (positional) */
  int frac;       /* positional: widest fraction, the others are padded with spaces */
  int width;      /* every element is right-aligned to this */
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

static void spaces(fmt *f, int n)
{
  for (int i = 0; i < n; i++) put(f, " ", 1);
}

/* ---- one number ---- */

/* The shortest decimal digits that read back as |v| (Dragon4's unique mode):
** digits into d (no point, no trailing zeros, "0" for zero), the decimal
** exponent of the first digit into *e; returns the number of digits. */
static int shortest(float v, char *d, int *e)
{
  char b[40];
  float a = fabsf(v);
  for (int k = 1; k <= 9; k++) {
    snprintf(b, sizeof b, "%.*e", k - 1, (double)a);
    if (strtof(b, NULL) == a) break;
  }
  int n = 0;
  const char *p = b;
  for (; *p && *p != 'e'; p++)
    if (*p >= '0' && *p <= '9') d[n++] = *p;
  *e = atoi(p + 1);
  while (n > 1 && d[n - 1] == '0') n--;
  d[n] = '\0';
  return n;
}

/* positional digits of a finite v: [-]int.frac with the fraction unpadded.
** maxfrac < 0: no limit (scalars); otherwise at most maxfrac fractional
** digits, rounded (numpy's precision). exact_ints: integers from 2^24 on are
** written exactly (numpy arrays) instead of as their shortest digits. */
static int positional(float v, int maxfrac, int exact_ints, char *b, size_t size)
{
  if (exact_ints && fabsf(v) >= EXACT_INTS) return snprintf(b, size, "%.0f.", (double)v);
  char d[16];
  int e, n = shortest(v, d, &e);
  int nfrac = n - 1 - e > 0 ? n - 1 - e : 0;
  if (maxfrac >= 0 && nfrac > maxfrac) {
    int k = snprintf(b, size, "%.*f", maxfrac, (double)v);
    while (k > 0 && b[k - 1] == '0') b[--k] = '\0';
    return k;
  }
  char out[96];
  int k = 0;
  if (signbit(v)) out[k++] = '-';
  if (e < 0) {
    out[k++] = '0';
  } else {
    for (int i = 0; i <= e; i++) out[k++] = i < n ? d[i] : '0';
  }
  out[k++] = '.';
  for (int i = e + 1; i < n; i++) out[k++] = i < 0 ? '0' : d[i];
  out[k] = '\0';
  return snprintf(b, size, "%s", out);
}

/* digits after the point in v's shortest scientific form */
static int sci_frac(float v)
{
  char d[16];
  int e;
  return shortest(v, d, &e) - 1;
}

/* an array element, without the padding to the common width */
static int one(const fmt *f, float v, char *b, size_t n)
{
  if (isnan(v)) return snprintf(b, n, "nan");
  if (isinf(v)) return snprintf(b, n, v > 0 ? "inf" : "-inf");
  if (f->sci) {
    /* every mantissa gets prec digits: the exact value rounded (numpy's min_digits) */
    char m[64];
    snprintf(m, sizeof m, "%.*e", f->prec, (double)v);
    char *x = strchr(m, 'e');
    if (f->prec == 0) return snprintf(b, n, "%.*s.%s", (int)(x - m), m, x);
    return snprintf(b, n, "%s", m);
  }
  int k = positional(v, PRECISION, 1, b, n);
  const char *dot = strchr(b, '.');
  int have = dot ? (int)strlen(dot + 1) : 0;
  for (int i = have; i < f->frac && k + 1 < (int)n; i++) b[k++] = ' ', b[k] = '\0';
  return k;
}

/* a 0-d tensor: str(np.float32(v)) */
static void scalar(float v, char *b, size_t n)
{
  float a = fabsf(v);
  if (isnan(v)) {
    snprintf(b, n, "nan");
  } else if (isinf(v)) {
    snprintf(b, n, v > 0 ? "inf" : "-inf");
  } else if (a == 0 || (a >= 1e-4 && a < 1e16)) {
    int k = positional(v, -1, 0, b, n);
    if (k > 0 && b[k - 1] == '.' && k + 1 < (int)n) b[k++] = '0', b[k] = '\0';
  } else {
    char d[16];
    int e, nd = shortest(v, d, &e);
    snprintf(b, n, "%s%c%s%se%c%02d", signbit(v) ? "-" : "", d[0], nd > 1 ? "." : "", d + 1,
             e < 0 ? '-' : '+', e < 0 ? -e : e);
  }
}

/* numpy's FloatingFormat.fillFormat on the elements that will be shown */
static void choose_format(fmt *f, const float *d, int64_t n)
{
  float maxa = 0, mina = INFINITY;
  for (int64_t i = 0; i < n; i++) {
    float a = fabsf(d[i]);
    if (!isfinite(a) || a == 0) continue;
    if (a > maxa) maxa = a;
    if (a < mina) mina = a;
  }
  f->sci = 0;
  if (maxa > 0) {
    volatile float ratio = maxa / mina;   /* numpy divides in float32 */
    f->sci = maxa >= 1e8f || (double)mina < 1e-4 || ratio > 1000.0f;
  }
  f->prec = f->frac = 0;
  char b[96];
  for (int64_t i = 0; i < n; i++) {
    if (!isfinite(d[i])) continue;
    if (f->sci) {
      int p = sci_frac(d[i]);
      if (p > f->prec) f->prec = p;
    } else {
      positional(d[i], PRECISION, 1, b, sizeof b);
      int p = (int)strlen(strchr(b, '.') + 1);
      if (p > f->frac) f->frac = p;
    }
  }
  if (f->prec > PRECISION) f->prec = PRECISION;
  f->width = 0;
  for (int64_t i = 0; i < n; i++) {
    int w = one(f, d[i], b, sizeof b);
    if (w > f->width) f->width = w;
  }
}

/* ---- layout (numpy's _formatArray with separator ' ') ---- */

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

/* Add a word to a row at depth axis. numpy keeps each word of a row inside
** LINE_WIDTH - axis - 1 columns, leaving room for the closing brackets, and
** never wraps the first word of a line. */
static void word(fmt *f, const char *w, int axis, size_t *col)
{
  size_t n = strlen(w), indent = (size_t)axis + 1;
  if (*col > indent && *col + n > (size_t)(LINE_WIDTH - 1 - axis)) {
    while (f->len > 0 && f->buf[f->len - 1] == ' ') f->buf[--f->len] = '\0';
    puts_(f, "\n");
    spaces(f, (int)indent);
    *col = indent;
  }
  puts_(f, w);
  *col += n;
}

static void emit(fmt *f, const kr_tensor *t, int axis, int64_t off, int summarize, size_t *col)
{
  const kr_shape *s = &t->shape;
  int64_t n = s->dim[axis];
  int64_t stride = 1;
  for (int i = axis + 1; i < s->ndim; i++) stride *= s->dim[i];
  int last = axis == s->ndim - 1;
  puts_(f, "[");
  (*col)++;
  char b[128], padded[160];
  for (int64_t i = 0; i < n; i++) {
    if (summarize && shown(n) && i == EDGE) {
      if (last) {
        word(f, "...", axis, col);
        puts_(f, " ");
        (*col)++;
      } else {
        puts_(f, "...");
        for (int k = 0; k < s->ndim - 1 - axis; k++) puts_(f, "\n");
        spaces(f, axis + 1);
        *col = (size_t)axis + 1;
      }
      i = n - EDGE;
    }
    if (last) {
      int w = one(f, KR_DATA(t)[off + i], b, sizeof b);
      snprintf(padded, sizeof padded, "%*s%s", f->width - w, "", b);
      word(f, padded, axis, col);
      if (i + 1 < n) {
        puts_(f, " ");
        (*col)++;
      }
    } else {
      emit(f, t, axis + 1, off + i * stride, summarize, col);
      if (i + 1 < n) {
        for (int k = 0; k < s->ndim - 1 - axis; k++) puts_(f, "\n");
        spaces(f, axis + 1);
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
    char b[96];
    scalar(KR_DATA(t)[0], b, sizeof b);
    puts_(&f, b);
  } else if (total == 0) {
    puts_(&f, "[]");
  } else {
    int64_t cnt = 0;
    int64_t cap = total;
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
