/*
** model_file.c -- the native model file (the layout is in model_file.h):
** parse from memory with every length checked before use, load from a
** path, encode to memory, save atomically (temporary file + fsync +
** rename, then fsync of the directory).
** The file is untrusted: the parser never reads past its buffer, checks
** each count against the bytes that remain before allocating for it, and
** multiplies dimensions with overflow checks.
*/
#include "model_file.h"
#include "atomic.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <zlib.h>

static const unsigned char MAGIC[8] = {0x89, 'L', 'K', 'M', '\r', '\n', 0x1a, '\n'};
#define HEADER_SIZE 32
#define DTYPE_F32 1
#define MAX_DIM ((uint64_t)1 << 40)

/* ---- little-endian integers ---- */

static uint32_t get32(const unsigned char *p)
{
  return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

static uint64_t get64(const unsigned char *p) { return (uint64_t)get32(p) | (uint64_t)get32(p + 4) << 32; }

static void put32(unsigned char *p, uint32_t v)
{
  for (int i = 0; i < 4; i++) p[i] = (unsigned char)(v >> (8 * i));
}

static void put64(unsigned char *p, uint64_t v)
{
  put32(p, (uint32_t)v);
  put32(p + 4, (uint32_t)(v >> 32));
}

static int host_little(void)
{
  const uint16_t one = 1;
  unsigned char b;
  memcpy(&b, &one, 1);
  return b == 1;
}

/* crc32 over any length (zlib's takes uInt) */
static uLong crc_update(uLong crc, const unsigned char *p, size_t n)
{
  while (n > 0) {
    uInt m = n > (1u << 30) ? (1u << 30) : (uInt)n;
    crc = crc32(crc, p, m);
    p += m;
    n -= m;
  }
  return crc;
}

/* ---- parsing ---- */

typedef struct reader {
  kr_ctx *ctx;
  const unsigned char *buf;
  size_t n, at;
  const char *what;
} reader;

static int truncated(reader *r, const char *item)
{
  return kr_fail(r->ctx, KR_EFORMAT, "load: '%s': truncated model file (%s at byte %zu, the file has %zu bytes)",
                 r->what, item, r->at, r->n);
}

static size_t left(const reader *r) { return r->n - r->at; }

void kr_model_file_free(kr_model_file *mf)
{
  if (!mf) return;
  kr_ctx *ctx = mf->ctx;
  for (int i = 0; i < mf->ntensors; i++) {
    if (mf->names) kr_free(ctx, mf->names[i]);
    if (mf->tensors) kr_tensor_release(mf->tensors[i]);
  }
  kr_free(ctx, mf->names);
  kr_free(ctx, mf->tensors);
  kr_free(ctx, mf->json);
  kr_free(ctx, mf);
}

/* one tensor record into mf slot i */
static int parse_tensor(reader *r, kr_model_file *mf, int i)
{
  kr_ctx *ctx = r->ctx;
  if (left(r) < 4) return truncated(r, "a tensor name length");
  uint32_t nl = get32(r->buf + r->at);
  if (nl == 0 || nl > KR_MF_MAX_NAME)
    return kr_fail(ctx, KR_EFORMAT, "load: '%s': tensor %d has a name of %u bytes (expected 1..%d) at byte %zu",
                   r->what, i + 1, nl, KR_MF_MAX_NAME, r->at);
  r->at += 4;
  if (left(r) < nl) return truncated(r, "a tensor name");
  if (memchr(r->buf + r->at, 0, nl))
    return kr_fail(ctx, KR_EFORMAT, "load: '%s': tensor %d has a NUL byte in its name", r->what, i + 1);
  char *name = kr_malloc(ctx, (size_t)nl + 1);
  if (!name) return KR_EMEM;
  memcpy(name, r->buf + r->at, nl);
  name[nl] = '\0';
  mf->names[i] = name;
  r->at += nl;
  for (int k = 0; k < i; k++)
    if (strcmp(mf->names[k], name) == 0)
      return kr_fail(ctx, KR_EFORMAT, "load: '%s': two tensors are named '%s'", r->what, name);
  if (left(r) < 8) return truncated(r, "a tensor header");
  uint32_t dtype = get32(r->buf + r->at), rank = get32(r->buf + r->at + 4);
  if (dtype != DTYPE_F32)
    return kr_fail(ctx, KR_EFORMAT, "load: '%s': tensor '%s' has dtype %u (only 1, float32, is known)", r->what, name,
                   dtype);
  if (rank > KR_MAX_DIMS)
    return kr_fail(ctx, KR_EFORMAT, "load: '%s': tensor '%s' has rank %u (at most %d)", r->what, name, rank,
                   KR_MAX_DIMS);
  r->at += 8;
  if (left(r) < 8 * (size_t)rank) return truncated(r, "tensor dimensions");
  kr_shape s;
  memset(&s, 0, sizeof s);
  s.ndim = (int)rank;
  for (uint32_t k = 0; k < rank; k++) {
    uint64_t d = get64(r->buf + r->at + 8 * k);
    if (d > MAX_DIM)
      return kr_fail(ctx, KR_EFORMAT, "load: '%s': tensor '%s' has dimension %u of size %llu (too large)", r->what,
                     name, k + 1, (unsigned long long)d);
    s.dim[k] = (int64_t)d;
  }
  r->at += 8 * (size_t)rank;
  uint64_t numel;   /* the one overflow-checked product (src/ctx.c) */
  if (kr_shape_numel_checked(&s, &numel) != KR_OK || numel > left(r) / 4)
    return kr_fail(ctx, KR_EFORMAT, "load: '%s': truncated model file (tensor '%s' declares more values than the file holds, at byte %zu)",
                   r->what, name, r->at);
  kr_tensor *t = kr_tensor_new(ctx, &s);
  if (!t) return kr_errcode(ctx);
  mf->tensors[i] = t;
  size_t nb = (size_t)numel * 4;
  if (host_little()) {
    memcpy(KR_DATA(t), r->buf + r->at, nb);
  } else {
    float *d = KR_DATA(t);
    for (size_t k = 0; k < (size_t)numel; k++) {
      uint32_t u = get32(r->buf + r->at + 4 * k);
      memcpy(&d[k], &u, 4);
    }
  }
  r->at += nb;
  return KR_OK;
}

int kr_model_file_parse(kr_ctx *ctx, const unsigned char *buf, size_t n, const char *what, kr_model_file **out)
{
  *out = NULL;
  reader r = {ctx, buf, n, 0, what ? what : "(memory)"};
  if (n < 8 || memcmp(buf, MAGIC, 8) != 0)
    return kr_fail(ctx, KR_EFORMAT, "load: '%s': not an lkeras model file (bad magic bytes)", r.what);
  if (n < HEADER_SIZE) return truncated(&r, "the header");
  uint32_t version = get32(buf + 8), flags = get32(buf + 12);
  uint64_t jl = get64(buf + 16);
  uint32_t nt = get32(buf + 24), reserved = get32(buf + 28);
  if (version < 1 || version > KR_MF_VERSION)
    return kr_fail(ctx, KR_EFORMAT, "load: '%s': model file format version %u is not supported (this lkeras reads 1..%d)",
                   r.what, version, KR_MF_VERSION);
  if (flags != 0 || reserved != 0)
    return kr_fail(ctx, KR_EFORMAT, "load: '%s': unknown flags in the header (0x%x, 0x%x)", r.what, flags, reserved);
  r.at = HEADER_SIZE;
  if (jl > left(&r)) return truncated(&r, "the JSON text");
  /* every record takes at least 17 bytes: count before allocating */
  if (nt > KR_MF_MAX_TENSORS || (uint64_t)nt * 17 > left(&r) - jl)
    return kr_fail(ctx, KR_EFORMAT, "load: '%s': truncated model file (the header declares %u tensors, %zu bytes follow)",
                   r.what, nt, left(&r) - (size_t)jl);
  kr_model_file *mf = kr_calloc(ctx, sizeof *mf);
  if (!mf) return KR_EMEM;
  mf->ctx = ctx;
  mf->version = version;
  int st = KR_OK;
  mf->json = kr_malloc(ctx, (size_t)jl + 1);
  if (!mf->json) {
    st = KR_EMEM;
    goto fail;
  }
  memcpy(mf->json, buf + r.at, (size_t)jl);
  mf->json[jl] = '\0';
  mf->json_len = (size_t)jl;
  r.at += (size_t)jl;
  if (nt > 0) {
    mf->names = kr_calloc(ctx, (size_t)nt * sizeof *mf->names);
    mf->tensors = kr_calloc(ctx, (size_t)nt * sizeof *mf->tensors);
    if (!mf->names || !mf->tensors) {
      st = KR_EMEM;
      goto fail;
    }
  }
  mf->ntensors = (int)nt;
  for (uint32_t i = 0; i < nt; i++)
    if ((st = parse_tensor(&r, mf, (int)i)) != KR_OK) goto fail;
  if (left(&r) < 4) {
    st = truncated(&r, "the checksum");
    goto fail;
  }
  if (left(&r) > 4) {
    st = kr_fail(ctx, KR_EFORMAT, "load: '%s': %zu unexpected bytes after the last tensor", r.what, left(&r) - 4);
    goto fail;
  }
  uint32_t want = get32(buf + r.at), got = (uint32_t)crc_update(crc32(0L, Z_NULL, 0), buf, r.at);
  if (want != got) {
    st = kr_fail(ctx, KR_EFORMAT, "load: '%s': checksum mismatch (the file is corrupted: stored %08x, computed %08x)",
                 r.what, want, got);
    goto fail;
  }
  *out = mf;
  return KR_OK;
fail:
  kr_model_file_free(mf);
  return st != KR_OK ? st : kr_errcode(ctx);
}

int kr_model_file_load(kr_ctx *ctx, const char *path, kr_model_file **out)
{
  *out = NULL;
  struct stat sb;
  int fd = kr_open_regular(ctx, "load:", path, &sb);   /* never blocks on a FIFO or a device */
  if (fd < 0) return kr_errcode(ctx);
  if ((uint64_t)sb.st_size > (uint64_t)SIZE_MAX / 2) {
    close(fd);
    return kr_fail(ctx, KR_EIO, "load: '%s': file too large", path);
  }
  /* the file's bytes, then its tensors (at most as many bytes again) */
  if (kr_mem_check(ctx, "load:", path, "the model file", 2 * (uint64_t)sb.st_size) != KR_OK) {
    close(fd);
    return KR_EMEM;
  }
  size_t n = (size_t)sb.st_size;
  unsigned char *buf = kr_malloc(ctx, n ? n : 1);
  if (!buf) {
    close(fd);
    return KR_EMEM;
  }
  size_t got = 0;
  while (got < n) {
    ssize_t k = read(fd, buf + got, n - got);
    if (k < 0 && errno == EINTR) continue;
    if (k <= 0) break;
    got += (size_t)k;
  }
  int e = errno;
  close(fd);
  if (got != n) {
    kr_free(ctx, buf);
    return kr_fail(ctx, KR_EIO, "load: '%s': read error (%s)", path, got < n ? strerror(e) : "file changed");
  }
  int st = kr_model_file_parse(ctx, buf, n, path, out);
  kr_free(ctx, buf);
  return st;
}

/* ---- writing ---- */

typedef struct sink {
  FILE *f;              /* a file, or NULL: into mem */
  unsigned char *mem;
  size_t at, cap;
  uLong crc;
  int ok;
} sink;

static void emit(sink *s, const void *p, size_t n)
{
  if (!s->ok || n == 0) return;
  s->crc = crc_update(s->crc, p, n);
  if (s->f) {
    if (fwrite(p, 1, n, s->f) != n) s->ok = 0;
  } else {
    if (n > s->cap - s->at) {
      s->ok = 0;
      return;
    }
    memcpy(s->mem + s->at, p, n);
    s->at += n;
  }
}

static void emit_floats(sink *s, const float *d, size_t n)
{
  if (host_little()) {
    emit(s, d, n * sizeof(float));
    return;
  }
  unsigned char buf[4096];
  while (n > 0) {
    size_t m = n < sizeof buf / 4 ? n : sizeof buf / 4;
    for (size_t i = 0; i < m; i++) {
      uint32_t u;
      memcpy(&u, &d[i], 4);
      put32(buf + 4 * i, u);
    }
    emit(s, buf, 4 * m);
    d += m;
    n -= m;
  }
}

static int check_inputs(kr_ctx *ctx, const char *what, int nt, const char *const *names, const kr_tensor *const *t)
{
  if (nt < 0 || nt > KR_MF_MAX_TENSORS)
    return kr_fail(ctx, KR_EARG, "save: '%s': %d tensors (at most %d)", what, nt, KR_MF_MAX_TENSORS);
  for (int i = 0; i < nt; i++) {
    size_t nl = strlen(names[i]);
    if (nl == 0 || nl > KR_MF_MAX_NAME)
      return kr_fail(ctx, KR_EARG, "save: '%s': tensor name %d has %zu bytes (expected 1..%d)", what, i + 1, nl,
                     KR_MF_MAX_NAME);
    for (int k = 0; k < i; k++)
      if (strcmp(names[k], names[i]) == 0)
        return kr_fail(ctx, KR_EARG, "save: '%s': two tensors are named '%s'", what, names[i]);
    if (t[i]->shape.ndim < 0 || t[i]->shape.ndim > KR_MAX_DIMS)
      return kr_fail(ctx, KR_EARG, "save: '%s': tensor '%s' has a bad rank", what, names[i]);
  }
  return KR_OK;
}

static void emit_all(sink *s, const char *json, size_t jl, int nt, const char *const *names,
                     const kr_tensor *const *t)
{
  unsigned char h[HEADER_SIZE];
  memcpy(h, MAGIC, 8);
  put32(h + 8, KR_MF_VERSION);
  put32(h + 12, 0);
  put64(h + 16, (uint64_t)jl);
  put32(h + 24, (uint32_t)nt);
  put32(h + 28, 0);
  emit(s, h, sizeof h);
  emit(s, json, jl);
  for (int i = 0; i < nt; i++) {
    unsigned char b[12 + 8 * KR_MAX_DIMS];
    size_t nl = strlen(names[i]);
    put32(b, (uint32_t)nl);
    emit(s, b, 4);
    emit(s, names[i], nl);
    put32(b, DTYPE_F32);
    put32(b + 4, (uint32_t)t[i]->shape.ndim);
    for (int k = 0; k < t[i]->shape.ndim; k++) put64(b + 8 + 8 * k, (uint64_t)t[i]->shape.dim[k]);
    emit(s, b, 8 + 8 * (size_t)t[i]->shape.ndim);
    emit_floats(s, KR_DATA(t[i]), (size_t)kr_tensor_numel(t[i]));
  }
  unsigned char c[4];
  put32(c, (uint32_t)s->crc);
  if (s->ok) {   /* the checksum is not part of what it sums */
    uLong keep = s->crc;
    emit(s, c, 4);
    s->crc = keep;
  }
}

static size_t encoded_size(size_t jl, int nt, const char *const *names, const kr_tensor *const *t)
{
  size_t n = HEADER_SIZE + jl + 4;
  for (int i = 0; i < nt; i++)
    n += 12 + strlen(names[i]) + 8 * (size_t)t[i]->shape.ndim + 4 * (size_t)kr_tensor_numel(t[i]);
  return n;
}

int kr_model_file_encode(kr_ctx *ctx, const char *json, size_t jl, int nt, const char *const *names,
                         const kr_tensor *const *t, unsigned char **out, size_t *outlen)
{
  *out = NULL;
  *outlen = 0;
  int st = check_inputs(ctx, "(memory)", nt, names, t);
  if (st != KR_OK) return st;
  size_t n = encoded_size(jl, nt, names, t);
  sink s = {NULL, kr_malloc(ctx, n), 0, n, crc32(0L, Z_NULL, 0), 1};
  if (!s.mem) return KR_EMEM;
  emit_all(&s, json, jl, nt, names, t);
  if (!s.ok || s.at != n) {
    kr_free(ctx, s.mem);
    return kr_fail(ctx, KR_EARG, "encode: internal size mismatch");
  }
  *out = s.mem;
  *outlen = n;
  return KR_OK;
}

int kr_model_file_save(kr_ctx *ctx, const char *path, const char *json, size_t jl, int nt,
                       const char *const *names, const kr_tensor *const *t)
{
  int st = check_inputs(ctx, path, nt, names, t);
  if (st != KR_OK) return st;
  char *tmp;
  FILE *f = kr_atomic_fopen(ctx, path, &tmp);
  if (!f) return kr_errcode(ctx);
  sink s = {f, NULL, 0, 0, crc32(0L, Z_NULL, 0), 1};
  emit_all(&s, json, jl, nt, names, t);
  return kr_atomic_fclose(ctx, path, &tmp, f, s.ok);
}
