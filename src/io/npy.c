/*
** npy.c -- NumPy .npy files: load (versions 1.0-3.0, numeric dtypes, either
** byte order, C or Fortran order) and save ('<f4', version 1.0, C order).
** Format: "\x93NUMPY", major, minor, header length (uint16 LE for 1.0,
** uint32 LE after), a Python dict literal
**   {'descr': '<f4', 'fortran_order': False, 'shape': (3, 4), }
** padded with blanks and '\n', then the raw array data.
** The file is untrusted: the header is parsed with an explicit end, the
** shape is checked for overflow and against the bytes the file holds before
** the tensor is allocated, and data is read in small chunks.
*/
#include "io.h"
#include "atomic.h"

#include <errno.h>
#include <fcntl.h>
#include <float.h>
#include <math.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define MAGIC "\x93NUMPY"
#define MAGIC_LEN 6
#define HEADER_MAX (1 << 20)  /* numpy writes < 200 bytes for the dtypes we read */
#define CHUNK 4096            /* bytes of file data converted at a time */

/* ---- dtypes ---- */

enum { K_FLOAT, K_INT, K_UINT, K_BOOL, K_OBJECT };

typedef struct dtype {
  int kind;
  int size;       /* bytes per element */
  int big;        /* big-endian */
  char descr[16]; /* as written in the header, for messages */
} dtype;

static int host_little(void)
{
  const uint16_t one = 1;
  unsigned char b;
  memcpy(&b, &one, 1);
  return b == 1;
}

/* descr like "<f4", ">i2", "|u1", "|b1"; 0 if we do not read it */
static int parse_descr(const char *s, dtype *dt)
{
  size_t n = strlen(s);
  if (strcmp(s, "|O") == 0) {   /* Python objects, pickled after the header */
    dt->kind = K_OBJECT;
    dt->size = 8;
    dt->big = 0;
    memcpy(dt->descr, s, 3);
    return 1;
  }
  if (n < 3 || n > 4) return 0;
  char order = s[0], kind = s[1];
  int size = 0;
  for (size_t i = 2; i < n; i++) {
    if (s[i] < '0' || s[i] > '9') return 0;
    size = size * 10 + (s[i] - '0');
  }
  switch (kind) {
  case 'f': dt->kind = K_FLOAT; if (size != 2 && size != 4 && size != 8) return 0; break;
  case 'i': dt->kind = K_INT; if (size != 1 && size != 2 && size != 4 && size != 8) return 0; break;
  case 'u': dt->kind = K_UINT; if (size != 1 && size != 2 && size != 4 && size != 8) return 0; break;
  case 'b': dt->kind = K_BOOL; if (size != 1) return 0; break;
  default: return 0;
  }
  switch (order) {
  case '<': dt->big = 0; break;
  case '>': dt->big = 1; break;
  case '=': dt->big = !host_little(); break;
  case '|': if (size != 1) return 0; dt->big = 0; break;
  default: return 0;
  }
  dt->size = size;
  memcpy(dt->descr, s, n + 1);
  return 1;
}

static float half_to_float(uint32_t h)
{
  uint32_t exp = (h >> 10) & 0x1f, man = h & 0x3ff;
  float v;
  if (exp == 0) v = ldexpf((float)man, -24);
  else if (exp == 31) v = man ? NAN : INFINITY;
  else v = ldexpf((float)(man | 0x400), (int)exp - 25);
  return (h & 0x8000) ? -v : v;
}

static float narrow(double d)
{
  if (d > FLT_MAX) return INFINITY;   /* beyond float range: +-inf, as numpy does */
  if (d < -FLT_MAX) return -INFINITY;
  return (float)d;
}

/* n elements of type dt at src into dst */
static void convert(float *dst, const unsigned char *src, size_t n, const dtype *dt)
{
  int size = dt->size;
  for (size_t i = 0; i < n; i++, src += size) {
    uint64_t v = 0;
    if (dt->big)
      for (int k = 0; k < size; k++) v = (v << 8) | src[k];
    else
      for (int k = size - 1; k >= 0; k--) v = (v << 8) | src[k];
    switch (dt->kind) {
    case K_FLOAT:
      if (size == 2) dst[i] = half_to_float((uint32_t)v);
      else if (size == 4) {
        uint32_t u = (uint32_t)v;
        memcpy(&dst[i], &u, 4);
      } else {
        double d;
        memcpy(&d, &v, 8);
        dst[i] = narrow(d);
      }
      break;
    case K_INT: {   /* sign-extend exactly in int64, then round once */
      int64_t x;
      if (!(v >> (8 * size - 1))) x = (int64_t)v;
      else if (size == 8) x = -(int64_t)~v - 1;
      else x = (int64_t)v - ((int64_t)1 << (8 * size));
      dst[i] = (float)x;
      break;
    }
    case K_UINT: dst[i] = (float)v; break;
    default: dst[i] = v != 0; break;
    }
  }
}

/* ---- the header dict ---- */

typedef struct cursor {
  const char *start, *p, *end;
  char *why;      /* what went wrong, for the message */
  size_t nwhy;
} cursor;

static int peek(const cursor *c) { return c->p < c->end ? (unsigned char)*c->p : -1; }

static void skip_ws(cursor *c)
{
  while (c->p < c->end && (*c->p == ' ' || *c->p == '\t' || *c->p == '\n' || *c->p == '\r'))
    c->p++;
}

static int bad(cursor *c, const char *what)
{
  snprintf(c->why, c->nwhy, "%s at character %ld", what, (long)(c->p - c->start) + 1);
  return 0;
}

/* a quoted string into out (at most n-1 chars) */
static int parse_str(cursor *c, char *out, size_t n)
{
  int q = peek(c);
  if (q != '\'' && q != '"') return bad(c, "expected a quoted string");
  c->p++;
  size_t k = 0;
  while (c->p < c->end && *c->p != q) {
    if (*c->p == '\\' || *c->p == '\0' || *c->p == '\n') return bad(c, "bad character in a string");
    if (k + 1 >= n) return bad(c, "string too long");
    out[k++] = *c->p++;
  }
  if (c->p >= c->end) return bad(c, "unterminated string");
  c->p++;
  out[k] = '\0';
  return 1;
}

static int parse_bool(cursor *c, int *v)
{
  size_t left = (size_t)(c->end - c->p);
  if (left >= 4 && memcmp(c->p, "True", 4) == 0) { *v = 1; c->p += 4; return 1; }
  if (left >= 5 && memcmp(c->p, "False", 5) == 0) { *v = 0; c->p += 5; return 1; }
  return bad(c, "expected True or False for 'fortran_order'");
}

static int parse_shape(cursor *c, kr_shape *s)
{
  memset(s, 0, sizeof *s);
  if (peek(c) != '(') return bad(c, "expected a tuple for 'shape'");
  c->p++;
  skip_ws(c);
  while (peek(c) != ')') {
    if (peek(c) == '-') return bad(c, "negative dimension in 'shape'");
    if (peek(c) < '0' || peek(c) > '9') return bad(c, "expected a dimension in 'shape'");
    int64_t v = 0;
    while (peek(c) >= '0' && peek(c) <= '9') {
      int d = *c->p++ - '0';
      if (v > (INT64_MAX - d) / 10) return bad(c, "dimension too large in 'shape'");
      v = v * 10 + d;
    }
    if (peek(c) == 'L') c->p++;   /* Python 2 longs */
    if (s->ndim == KR_MAX_DIMS) {
      snprintf(c->why, c->nwhy, "more than %d dimensions in 'shape'", KR_MAX_DIMS);
      return 0;
    }
    s->dim[s->ndim++] = v;
    skip_ws(c);
    if (peek(c) == ',') {
      c->p++;
      skip_ws(c);
    } else if (peek(c) != ')') {
      return bad(c, "expected ',' or ')' in 'shape'");
    }
  }
  c->p++;
  return 1;
}

static int parse_header(cursor *c, dtype *dt, int *fortran, kr_shape *shape)
{
  int have_descr = 0, have_fortran = 0, have_shape = 0;
  skip_ws(c);
  if (peek(c) != '{') return bad(c, "expected '{'");
  c->p++;
  for (;;) {
    char key[32], val[32];
    skip_ws(c);
    if (peek(c) == '}') break;
    if (!parse_str(c, key, sizeof key)) return 0;
    skip_ws(c);
    if (peek(c) != ':') return bad(c, "expected ':'");
    c->p++;
    skip_ws(c);
    if (strcmp(key, "descr") == 0 && !have_descr) {
      if (peek(c) == '[') return bad(c, "structured dtypes are not supported");
      if (!parse_str(c, val, sizeof val)) return 0;
      if (!parse_descr(val, dt)) {
        snprintf(c->why, c->nwhy, "unsupported dtype '%s' (expected f2 f4 f8 i1-i8 u1-u8 b1)", val);
        return 0;
      }
      have_descr = 1;
    } else if (strcmp(key, "fortran_order") == 0 && !have_fortran) {
      if (!parse_bool(c, fortran)) return 0;
      have_fortran = 1;
    } else if (strcmp(key, "shape") == 0 && !have_shape) {
      if (!parse_shape(c, shape)) return 0;
      have_shape = 1;
    } else {
      snprintf(c->why, c->nwhy, "unexpected or repeated key '%s'", key);
      return 0;
    }
    skip_ws(c);
    if (peek(c) == ',') c->p++;
    else if (peek(c) != '}') return bad(c, "expected ',' or '}'");
  }
  c->p++;
  skip_ws(c);
  if (c->p != c->end) return bad(c, "unexpected text after the dict");
  const char *missing = !have_descr ? "descr" : !have_fortran ? "fortran_order" : !have_shape ? "shape" : NULL;
  if (missing) {
    snprintf(c->why, c->nwhy, "no '%s' key", missing);
    return 0;
  }
  return 1;
}

/* ---- load ---- */

/* the start of s[0..len) for a message: controls become '?', long text ends in "..." */
static void printable(char *out, size_t n, const char *s, size_t len)
{
  size_t k = 0, i = 0;
  while (len > 0 && (s[len - 1] == ' ' || s[len - 1] == '\n')) len--;
  for (; i < len && k + 4 < n; i++) {
    unsigned char ch = (unsigned char)s[i];
    out[k++] = ch >= 32 && ch < 127 ? (char)ch : '?';
  }
  if (i < len) {
    memcpy(out + k, "...", 3);
    k += 3;
  }
  out[k] = '\0';
}

/* Reads up to n bytes; returns how many. */
static size_t read_up_to(FILE *f, void *buf, size_t n)
{
  return fread(buf, 1, n, f);
}

static void io_error(kr_ctx *ctx, FILE *f, const char *path, int64_t want, int64_t got)
{
  if (ferror(f))
    kr_fail(ctx, KR_EIO, "load: '%s': read error (%s)", path, strerror(errno));
  else
    kr_fail(ctx, KR_EFORMAT, "load: '%s': truncated: expected %lld bytes of data, got %lld", path,
            (long long)want, (long long)got);
}

/* The data: nel elements of dt, in C or Fortran order, into t. */
static int read_data(kr_ctx *ctx, FILE *f, const char *path, const dtype *dt, int fortran,
                     kr_tensor *t, int64_t nel)
{
  unsigned char raw[CHUNK];
  float tmp[CHUNK];
  float *dst = KR_DATA(t);
  const kr_shape *s = &t->shape;
  size_t per = CHUNK / (size_t)dt->size;
  int64_t idx[KR_MAX_DIMS] = {0}, stride[KR_MAX_DIMS];
  int64_t at = 0;   /* Fortran order: row-major offset of element done */
  int64_t st = 1;
  if (nel == 0) return KR_OK;   /* the strides of an empty shape may not fit int64 */
  for (int k = s->ndim - 1; k >= 0; k--) {
    stride[k] = st;
    st *= s->dim[k];
  }
  int64_t done = 0;
  while (done < nel) {
    size_t m = (size_t)(nel - done) < per ? (size_t)(nel - done) : per;
    size_t nb = m * (size_t)dt->size;
    size_t got = read_up_to(f, raw, nb);
    if (got != nb) {
      io_error(ctx, f, path, nel * dt->size, done * dt->size + (int64_t)got);
      return kr_errcode(ctx);
    }
    if (!fortran || s->ndim < 2) {
      convert(dst + done, raw, m, dt);
    } else {
      convert(tmp, raw, m, dt);
      for (size_t i = 0; i < m; i++) {   /* the file's first axis varies fastest */
        dst[at] = tmp[i];
        for (int k = 0; k < s->ndim; k++) {
          at += stride[k];
          if (++idx[k] < s->dim[k]) break;
          at -= s->dim[k] * stride[k];
          idx[k] = 0;
        }
      }
    }
    done += (int64_t)m;
  }
  return KR_OK;
}

/* The array in f (fsize bytes, -1 when unknown). An object array ('|O')
** is not read: with obj_at, *obj_at is where its pickle starts and *obj_n
** its length (1-D only); without, it is an error. */
static kr_tensor *npy_read(kr_ctx *ctx, FILE *f, const char *path, int64_t fsize, int64_t *obj_at,
                           int64_t *obj_n)
{
  kr_tensor *t = NULL;
  char *hdr = NULL;

  /* preamble: magic, version, header length */
  unsigned char pre[12];
  size_t got = read_up_to(f, pre, 8);
  if (ferror(f)) {
    kr_fail(ctx, KR_EIO, "load: '%s': read error (%s)", path, strerror(errno));
    goto done;
  }
  if (got == 0) {
    kr_fail(ctx, KR_EFORMAT, "load: '%s' is not a .npy file (it is empty)", path);
    goto done;
  }
  if (memcmp(pre, MAGIC, got < MAGIC_LEN ? got : MAGIC_LEN) != 0) {
    kr_fail(ctx, KR_EFORMAT, "load: '%s' is not a .npy file (bad magic)", path);
    goto done;
  }
  if (got < 8) {
    kr_fail(ctx, KR_EFORMAT, "load: '%s': truncated: the file ends inside the preamble", path);
    goto done;
  }
  int major = pre[6], minor = pre[7];
  if (major < 1 || major > 3 || minor != 0) {
    kr_fail(ctx, KR_EFORMAT, "load: '%s': unsupported .npy version %d.%d (expected 1.0, 2.0 or 3.0)",
            path, major, minor);
    goto done;
  }
  size_t lenbytes = major == 1 ? 2 : 4;
  if (read_up_to(f, pre + 8, lenbytes) != lenbytes) {
    if (ferror(f)) kr_fail(ctx, KR_EIO, "load: '%s': read error (%s)", path, strerror(errno));
    else kr_fail(ctx, KR_EFORMAT, "load: '%s': truncated: the file ends inside the preamble", path);
    goto done;
  }
  uint32_t hlen = (uint32_t)pre[8] | (uint32_t)pre[9] << 8;
  if (lenbytes == 4) hlen |= (uint32_t)pre[10] << 16 | (uint32_t)pre[11] << 24;
  int64_t data_at = (int64_t)(8 + lenbytes) + hlen;
  if (hlen > HEADER_MAX) {
    kr_fail(ctx, KR_EFORMAT, "load: '%s': header length %lu is too large (at most %d)", path,
            (unsigned long)hlen, HEADER_MAX);
    goto done;
  }
  if (fsize >= 0 && data_at > fsize) {
    kr_fail(ctx, KR_EFORMAT, "load: '%s': truncated: the header says %lu bytes, the file has %lld after the preamble",
            path, (unsigned long)hlen, (long long)(fsize - (int64_t)(8 + lenbytes)));
    goto done;
  }
  hdr = kr_malloc(ctx, (size_t)hlen + 1);
  if (!hdr) goto done;
  if ((got = read_up_to(f, hdr, hlen)) != hlen) {
    if (ferror(f)) kr_fail(ctx, KR_EIO, "load: '%s': read error (%s)", path, strerror(errno));
    else kr_fail(ctx, KR_EFORMAT, "load: '%s': truncated: the header says %lu bytes, the file has %lu",
                 path, (unsigned long)hlen, (unsigned long)got);
    goto done;
  }
  hdr[hlen] = '\0';

  /* the dict */
  dtype dt;
  int fortran = 0;
  kr_shape shape;
  char why[160];
  cursor c = {hdr, hdr, hdr + hlen, why, sizeof why};
  if (!parse_header(&c, &dt, &fortran, &shape)) {
    char text[64];
    printable(text, sizeof text, hdr, hlen);
    kr_fail(ctx, KR_EFORMAT, "load: '%s': bad header (%s): %s", path, why, text);
    goto done;
  }

  /* sizes, checked for overflow and against the file before allocating */
  char sh[200];
  kr_shape_str(&shape, sh, sizeof sh);
  if (dt.kind == K_OBJECT) {
    if (!obj_at)
      kr_fail(ctx, KR_EFORMAT, "load: '%s': unsupported dtype '|O' (pickled Python objects; "
              "keras.tensor.load_npz reads 1-D object arrays of integer lists)", path);
    else if (shape.ndim != 1 || fortran)
      kr_fail(ctx, KR_EFORMAT, "load: '%s': an object array of shape %s (only 1-D object arrays of "
              "integer lists are read)", path, sh);
    else {
      *obj_at = data_at;
      *obj_n = shape.dim[0];
    }
    goto done;
  }
  /* a zero dimension anywhere makes the array empty, whatever the rest says */
  uint64_t unel;
  if (kr_shape_numel_checked(&shape, &unel) != KR_OK) {
    kr_fail(ctx, KR_EFORMAT, "load: '%s': shape %s is too large", path, sh);
    goto done;
  }
  int64_t nel = (int64_t)unel;
  int64_t nbytes = nel * dt.size;
  if (fsize >= 0 && fsize - data_at != nbytes) {
    int64_t have = fsize - data_at;
    if (have < nbytes)
      kr_fail(ctx, KR_EFORMAT, "load: '%s': truncated: shape %s of '%s' needs %lld bytes of data, the file has %lld",
              path, sh, dt.descr, (long long)nbytes, (long long)have);
    else
      kr_fail(ctx, KR_EFORMAT, "load: '%s': %lld bytes of unexpected data after the array (shape %s of '%s', %lld bytes)",
              path, (long long)(have - nbytes), sh, dt.descr, (long long)nbytes);
    goto done;
  }
  kr_free(ctx, hdr);
  hdr = NULL;
  if (kr_mem_check(ctx, "load:", path, "the array", 4 * (uint64_t)nel) != KR_OK) goto done;

  t = kr_tensor_new(ctx, &shape);
  if (!t) goto done;
  if (read_data(ctx, f, path, &dt, fortran, t, nel) != KR_OK) {
    kr_tensor_release(t);
    t = NULL;
    goto done;
  }
  if (fsize < 0 && fgetc(f) != EOF) {   /* not a regular file: look for extra bytes now */
    kr_fail(ctx, KR_EFORMAT, "load: '%s': unexpected data after the array (shape %s of '%s')",
            path, sh, dt.descr);
    kr_tensor_release(t);
    t = NULL;
  }
done:
  kr_free(ctx, hdr);
  return t;
}

kr_tensor *kr_npy_load(kr_ctx *ctx, const char *path)
{
  struct stat sb;
  int fd = kr_open_regular(ctx, "load:", path, &sb);   /* never blocks on a FIFO or a device */
  if (fd < 0) return NULL;
  FILE *f = fdopen(fd, "rb");
  if (!f) {
    close(fd);
    kr_fail(ctx, KR_EIO, "load: '%s': cannot open (%s)", path, strerror(errno));
    return NULL;
  }
  kr_tensor *t = npy_read(ctx, f, path, (int64_t)sb.st_size, NULL, NULL);
  fclose(f);
  return t;
}

int kr_npy_load_mem(kr_ctx *ctx, const unsigned char *buf, size_t len, const char *name,
                    kr_tensor **t, int64_t *obj_at, int64_t *obj_n)
{
  *t = NULL;
  *obj_at = -1;
  *obj_n = 0;
  if (len == 0)
    return kr_fail(ctx, KR_EFORMAT, "load: '%s' is not a .npy file (it is empty)", name);
  FILE *f = fmemopen((void *)buf, len, "rb");
  if (!f) return kr_fail(ctx, KR_EIO, "load: '%s': cannot read (%s)", name, strerror(errno));
  *t = npy_read(ctx, f, name, (int64_t)len, obj_at, obj_n);
  fclose(f);
  if (!*t && *obj_at < 0) return kr_errcode(ctx);
  return KR_OK;
}

/* ---- save ---- */

static int write_all(FILE *f, const kr_tensor *t)
{
  const float *d = KR_DATA(t);
  size_t n = (size_t)kr_tensor_numel(t);
  if (host_little()) return fwrite(d, sizeof(float), n, f) == n;
  unsigned char buf[CHUNK];
  while (n > 0) {
    size_t m = n < CHUNK / 4 ? n : CHUNK / 4;
    for (size_t i = 0; i < m; i++) {
      uint32_t u;
      memcpy(&u, &d[i], 4);
      for (size_t k = 0; k < 4; k++) buf[4 * i + k] = (unsigned char)(u >> (8 * k));
    }
    if (fwrite(buf, 4, m, f) != m) return 0;
    d += m;
    n -= m;
  }
  return 1;
}

int kr_npy_save(kr_ctx *ctx, const kr_tensor *t, const char *path)
{
  if (t->shape.ndim < 0 || t->shape.ndim > KR_MAX_DIMS)
    return kr_fail(ctx, KR_EARG, "save: '%s': bad tensor rank %d", path, t->shape.ndim);

  /* header, padded so that the data starts at a multiple of 64 bytes */
  char sh[200], dict[256], head[320];
  kr_shape_str(&t->shape, sh, sizeof sh);
  int dl = snprintf(dict, sizeof dict, "{'descr': '<f4', 'fortran_order': False, 'shape': %s, }", sh);
  if (dl < 0 || (size_t)dl >= sizeof dict)
    return kr_fail(ctx, KR_EARG, "save: '%s': shape %s is too long for the header", path, sh);
  size_t hlen = (size_t)dl + 1;
  hlen += (64 - (10 + hlen) % 64) % 64;
  memcpy(head, MAGIC, MAGIC_LEN);
  head[6] = 1;
  head[7] = 0;
  head[8] = (char)(hlen & 0xff);
  head[9] = (char)(hlen >> 8);
  memcpy(head + 10, dict, (size_t)dl);
  memset(head + 10 + dl, ' ', hlen - (size_t)dl - 1);
  head[10 + hlen - 1] = '\n';

  /* a temporary file next to path, renamed over it when complete */
  char *tmp;
  FILE *f = kr_atomic_fopen(ctx, path, &tmp);
  if (!f) return kr_errcode(ctx);
  int ok = fwrite(head, 1, 10 + hlen, f) == 10 + hlen && write_all(f, t);
  return kr_atomic_fclose(ctx, path, &tmp, f, ok);
}
