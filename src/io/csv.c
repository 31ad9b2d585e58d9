/*
** csv.c -- numeric CSV into a (rows, cols) float32 tensor.
** The whole text is read into memory, then walked twice: the first walk
** counts rows and fields and finds the first line that breaks the table's
** shape (no allocation for the tensor is made if there is one); the second
** parses the numbers, so errors are reported in file order.
** Numbers are read with strtod in the "C" locale (set for this thread
** only, with uselocale), whatever locale the host program has chosen.
*/
#include "io.h"
#include "atomic.h"

#include <errno.h>
#include <float.h>
#include <locale.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <sys/stat.h>

#define FIELD_MAX 128   /* longest field we try to read as a number */

/* ---- the text ---- */

/* all of f into a NUL-terminated buffer (kr_malloc); NULL with a message */
static char *read_all(kr_ctx *ctx, FILE *f, const char *path, size_t *len)
{
  struct stat sb;
  size_t cap = 1 << 16;
  if (fstat(fileno(f), &sb) == 0 && S_ISREG(sb.st_mode) && (uint64_t)sb.st_size < SIZE_MAX / 2)
    cap = (size_t)sb.st_size + 1;
  char *buf = kr_malloc(ctx, cap);
  size_t n = 0;
  while (buf) {
    n += fread(buf + n, 1, cap - n, f);
    if (ferror(f)) {
      kr_fail(ctx, KR_EIO, "CSV '%s': read error (%s)", path, strerror(errno));
      break;
    }
    if (n < cap) {   /* the end, with room for the NUL */
      buf[n] = '\0';
      *len = n;
      return buf;
    }
    if (cap > SIZE_MAX / 2) {
      kr_fail(ctx, KR_EMEM, "CSV '%s': the file is too large", path);
      break;
    }
    char *more = kr_malloc(ctx, cap * 2);
    if (more) memcpy(more, buf, n);
    kr_free(ctx, buf);
    buf = more;
    cap *= 2;
  }
  kr_free(ctx, buf);
  return NULL;
}

/* the next line from text[*pos..n): start and length without "\n" or "\r\n" */
static int next_line(const char *text, size_t n, size_t *pos, const char **s, size_t *len)
{
  if (*pos >= n) return 0;
  const char *p = text + *pos;
  const char *nl = memchr(p, '\n', n - *pos);
  size_t l = nl ? (size_t)(nl - p) : n - *pos;
  *pos += l + (nl != NULL);
  if (l > 0 && p[l - 1] == '\r') l--;
  *s = p;
  *len = l;
  return 1;
}

static int blank(int c) { return c == ' ' || c == '\t'; }

static int is_empty(const char *s, size_t len)
{
  for (size_t i = 0; i < len; i++)
    if (!blank(s[i]) && s[i] != '\r') return 0;
  return 1;
}

/* ---- fields ---- */

typedef struct fields {
  const char *p, *end;
  char delim;
  int done;
} fields;

/* the next field of a line, without padding blanks or enclosing quotes */
static int next_field(fields *it, const char **s, size_t *len)
{
  if (it->done) return 0;
  const char *a, *b;
  if (it->delim == ' ') {   /* runs of blanks separate */
    while (it->p < it->end && blank(*it->p)) it->p++;
    if (it->p == it->end) return it->done = 1, 0;
    a = it->p;
    while (it->p < it->end && !blank(*it->p)) it->p++;
    b = it->p;
  } else {
    a = it->p;
    const char *d = memchr(a, it->delim, (size_t)(it->end - a));
    b = d ? d : it->end;
    it->p = d ? d + 1 : it->end;
    it->done = d == NULL;
  }
  while (a < b && blank(*a)) a++;
  while (b > a && blank(b[-1])) b--;
  if (b - a >= 2 && *a == '"' && b[-1] == '"') a++, b--;
  *s = a;
  *len = (size_t)(b - a);
  return 1;
}

static int64_t count_fields(const char *s, size_t len, char delim)
{
  fields it = {s, s + len, delim, 0};
  const char *f;
  size_t fl;
  int64_t n = 0;
  while (next_field(&it, &f, &fl)) n++;
  return n;
}

/* the field as a number; 0 if it is not one */
static int parse_number(const char *s, size_t len, float *out)
{
  char buf[FIELD_MAX + 1];
  if (len == 0 || len > FIELD_MAX) return 0;
  memcpy(buf, s, len);
  buf[len] = '\0';
  if (strchr(" \t\n\v\f\r", buf[0])) return 0;   /* strtod would skip these */
  char *end;
  double d = strtod(buf, &end);
  if (end != buf + len) return 0;
  *out = d > FLT_MAX ? INFINITY : d < -FLT_MAX ? -INFINITY : (float)d;
  return 1;
}

/* ---- the walks ---- */

typedef struct csv {
  kr_ctx *ctx;
  const char *path;
  const char *text;
  size_t n;
  char delim;
  int skip_header;
} csv;

typedef struct layout {
  int64_t rows, cols, cols_line;  /* cols_line: the first data line */
  int64_t bad_line, bad_fields;   /* the first line that breaks the table; 0 if none */
} layout;

static void scan(const csv *c, layout *lay)
{
  size_t pos = 0;
  const char *s;
  size_t len;
  int64_t line = 0, empty_line = 0;
  memset(lay, 0, sizeof *lay);
  lay->cols = -1;
  while (next_line(c->text, c->n, &pos, &s, &len)) {
    line++;
    if (line == 1 && c->skip_header) continue;
    if (is_empty(s, len)) {
      if (!empty_line) empty_line = line;
      continue;
    }
    if (empty_line) {   /* an empty line with data after it */
      lay->bad_line = empty_line;
      lay->bad_fields = 0;
      return;
    }
    int64_t nf = count_fields(s, len, c->delim);
    if (lay->cols < 0) {
      lay->cols = nf;
      lay->cols_line = line;
    } else if (nf != lay->cols) {
      lay->bad_line = line;
      lay->bad_fields = nf;
      return;
    }
    lay->rows++;
  }
}

/* parse the numbers of the lines before `stop` (0: all) into dst (NULL: check only) */
static int parse(const csv *c, int64_t stop, float *dst)
{
  size_t pos = 0;
  const char *s;
  size_t len;
  int64_t line = 0, k = 0;
  while (next_line(c->text, c->n, &pos, &s, &len)) {
    line++;
    if (stop && line >= stop) break;
    if ((line == 1 && c->skip_header) || is_empty(s, len)) continue;
    fields it = {s, s + len, c->delim, 0};
    const char *f;
    size_t fl;
    int64_t col = 0;
    while (next_field(&it, &f, &fl)) {
      float v;
      col++;
      if (!parse_number(f, fl, &v)) {
        char shown[48];
        size_t m = 0;
        for (size_t i = 0; i < fl && m < 40; i++)
          shown[m++] = (unsigned char)f[i] >= 32 && (unsigned char)f[i] < 127 ? f[i] : '?';
        shown[m] = '\0';
        return kr_fail(c->ctx, KR_EFORMAT, "CSV '%s': line %lld, column %lld: expected a number, got '%s%s'",
                       c->path, (long long)line, (long long)col, shown, fl > m ? "..." : "");
      }
      if (dst) dst[k++] = v;
    }
  }
  return KR_OK;
}

kr_tensor *kr_csv_load(kr_ctx *ctx, const char *path, char delim, int skip_header)
{
  if (delim == '\0' || delim == '\n' || delim == '\r' || delim == '"' || delim == '.' || delim == '-' ||
      delim == '+' || (delim >= '0' && delim <= '9')) {
    kr_fail(ctx, KR_EARG, "CSV '%s': bad delimiter (code %d): it cannot be a line end, a quote or part of a number",
            path, (unsigned char)delim);
    return NULL;
  }
  int fd = kr_open_regular(ctx, "CSV", path, NULL);   /* never blocks on a FIFO or a device */
  if (fd < 0) return NULL;
  FILE *f = fdopen(fd, "rb");
  if (!f) {
    close(fd);
    kr_fail(ctx, KR_EIO, "CSV '%s': cannot open (%s)", path, strerror(errno));
    return NULL;
  }
  size_t n = 0;
  char *text = read_all(ctx, f, path, &n);
  fclose(f);
  if (!text) return NULL;

  csv c = {ctx, path, text, n, delim, skip_header};
  layout lay;
  kr_tensor *t = NULL;
  scan(&c, &lay);
  if (lay.rows == 0 && !lay.bad_line) {
    kr_fail(ctx, KR_EFORMAT, "CSV '%s': no data rows%s", path, skip_header ? " after the header" : "");
    goto done;
  }
  if (!lay.bad_line) {
    kr_shape shape = kr_shape_make(2, (int64_t[]){lay.rows, lay.cols});
    t = kr_tensor_new(ctx, &shape);
    if (!t) goto done;
  }

  /* numbers, read in the C locale whatever the program's locale is */
  locale_t cl = newlocale(LC_NUMERIC_MASK, "C", (locale_t)0);
  locale_t old = cl ? uselocale(cl) : (locale_t)0;
  int st = parse(&c, lay.bad_line, t ? KR_DATA(t) : NULL);
  if (cl) {
    uselocale(old);
    freelocale(cl);
  }
  if (st == KR_OK && lay.bad_line) {
    if (lay.bad_fields == 0)
      kr_fail(ctx, KR_EFORMAT, "CSV '%s': line %lld is empty (only the last lines may be)", path,
              (long long)lay.bad_line);
    else
      kr_fail(ctx, KR_EFORMAT, "CSV '%s': line %lld has %lld fields, expected %lld (as on line %lld)", path,
              (long long)lay.bad_line, (long long)lay.bad_fields, (long long)lay.cols,
              (long long)lay.cols_line);
  }
  if (st != KR_OK || lay.bad_line) {
    kr_tensor_release(t);
    t = NULL;
  }
done:
  kr_free(ctx, text);
  return t;
}
