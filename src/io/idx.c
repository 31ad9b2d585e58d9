/*
** idx.c -- IDX files (the MNIST format), gzip-compressed or plain.
** Format (big-endian): 0x00 0x00, a type byte, the number of dimensions,
** one uint32 per dimension, then the data. Types: 0x08 ubyte, 0x09 byte,
** 0x0B short, 0x0C int, 0x0D float, 0x0E double.
** The file is untrusted. A plain file's size must match its header exactly;
** a gzip file may not declare more data than deflate could pack into its
** size (at most 1032 to 1), so a small file cannot make us allocate much.
** zlib reads both kinds through gzread; its own buffers are outside our
** allocator and are freed by gzclose on every path.
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
#include <zlib.h>

#define CHUNK 4096            /* bytes of file data converted at a time */
#define DEFLATE_RATIO 1032    /* the most deflate expands: 258 bytes from 2 bits */

/* element size of an IDX type code, 0 if unknown */
static int type_size(int type)
{
  switch (type) {
  case 0x08: case 0x09: return 1;
  case 0x0B: return 2;
  case 0x0C: case 0x0D: return 4;
  case 0x0E: return 8;
  default: return 0;
  }
}

static float narrow(double d)
{
  if (d > FLT_MAX) return INFINITY;
  if (d < -FLT_MAX) return -INFINITY;
  return (float)d;
}

/* n big-endian elements of IDX type `type` at src into dst */
static void convert(float *dst, const unsigned char *src, size_t n, int type)
{
  for (size_t i = 0; i < n; i++) {
    switch (type) {
    case 0x08: dst[i] = src[i]; break;
    case 0x09: dst[i] = src[i] < 128 ? (float)src[i] : (float)src[i] - 256.0f; break;
    case 0x0B: {
      const unsigned char *p = src + 2 * i;
      int v = p[0] << 8 | p[1];
      dst[i] = (float)(v < 32768 ? v : v - 65536);
      break;
    }
    case 0x0C: case 0x0D: {
      const unsigned char *p = src + 4 * i;
      uint32_t u = (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
      if (type == 0x0D) memcpy(&dst[i], &u, 4);
      else dst[i] = (float)((u & 0x80000000u) ? (int64_t)u - ((int64_t)1 << 32) : (int64_t)u);
      break;
    }
    default: {
      const unsigned char *p = src + 8 * i;
      uint64_t u = 0;
      for (int k = 0; k < 8; k++) u = u << 8 | p[k];
      double d;
      memcpy(&d, &u, 8);
      dst[i] = narrow(d);
      break;
    }
    }
  }
}

/* Reads up to n bytes; returns how many. *err gets zlib's error code:
** Z_OK (a short count is then the end of a plain file or of the gzip data),
** Z_BUF_ERROR (the gzip stream ends early), or another error. */
static size_t gz_read(gzFile gz, void *buf, size_t n, int *err)
{
  size_t got = 0;
  while (got < n) {
    int r = gzread(gz, (char *)buf + got, (unsigned)(n - got));
    if (r <= 0) break;
    got += (size_t)r;
  }
  gzerror(gz, err);
  return got;
}

static void gz_fail(kr_ctx *ctx, gzFile gz, const char *path)
{
  int err;
  const char *msg = gzerror(gz, &err);
  if (err == Z_ERRNO)
    kr_fail(ctx, KR_EIO, "IDX '%s': read error (%s)", path, strerror(errno));
  else if (err == Z_MEM_ERROR)
    kr_fail(ctx, KR_EMEM, "IDX '%s': out of memory in zlib", path);
  else if (err == Z_BUF_ERROR)
    kr_fail(ctx, KR_EFORMAT, "IDX '%s': truncated: the gzip stream ends early", path);
  else {
    const char *colon = strncmp(msg, "<fd:", 4) == 0 ? strstr(msg, ": ") : NULL;
    kr_fail(ctx, KR_EFORMAT, "IDX '%s': corrupt gzip data (%s)", path, colon ? colon + 2 : msg);
  }
}

/* a short read in the header */
static void gz_fail_short(kr_ctx *ctx, gzFile gz, const char *path, int err)
{
  if (err == Z_BUF_ERROR) gz_fail(ctx, gz, path);
  else kr_fail(ctx, KR_EFORMAT, "IDX '%s': truncated: the file ends inside the header", path);
}

/* the rest of kr_idx_load, on an open stream; fsize < 0 if unknown */
static kr_tensor *load(kr_ctx *ctx, gzFile gz, const char *path, int64_t fsize, int gzip)
{
  unsigned char h[4 * KR_MAX_DIMS];
  int err;
  size_t got = gz_read(gz, h, 4, &err);
  if (err != Z_OK && err != Z_BUF_ERROR) return gz_fail(ctx, gz, path), NULL;
  if (got == 0 && err == Z_OK)
    return kr_fail(ctx, KR_EFORMAT, "IDX '%s' is not an IDX file (it is empty)", path), NULL;
  if ((got >= 1 && h[0] != 0) || (got >= 2 && h[1] != 0)) {
    char seen[16];
    size_t k = 0;
    for (size_t i = 0; i < got; i++)
      k += (size_t)snprintf(seen + k, sizeof seen - k, "%s%02x", i ? " " : "", h[i]);
    return kr_fail(ctx, KR_EFORMAT, "IDX '%s' is not an IDX file (bad magic: expected 00 00 <type> <ndim>, got %s)",
                   path, seen), NULL;
  }
  if (got >= 3 && type_size(h[2]) == 0)
    return kr_fail(ctx, KR_EFORMAT,
                   "IDX '%s': unknown data type 0x%02x (expected 0x08, 0x09, 0x0B, 0x0C, 0x0D or 0x0E)",
                   path, h[2]), NULL;
  if (got < 4) return gz_fail_short(ctx, gz, path, err), NULL;
  int type = h[2], ndim = h[3], esize = type_size(type);
  if (ndim < 1 || ndim > KR_MAX_DIMS)
    return kr_fail(ctx, KR_EFORMAT, "IDX '%s': %d dimensions (expected 1 to %d)", path, ndim, KR_MAX_DIMS), NULL;
  got = gz_read(gz, h, 4 * (size_t)ndim, &err);
  if (err != Z_OK && err != Z_BUF_ERROR) return gz_fail(ctx, gz, path), NULL;
  if (got < 4 * (size_t)ndim) return gz_fail_short(ctx, gz, path, err), NULL;

  kr_shape shape;
  memset(&shape, 0, sizeof shape);
  shape.ndim = ndim;
  for (int i = 0; i < ndim; i++) {
    const unsigned char *p = h + 4 * i;
    shape.dim[i] = (int64_t)((uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3]);
  }
  char sh[200];
  kr_shape_str(&shape, sh, sizeof sh);
  uint64_t unel;   /* a zero dimension anywhere makes it empty */
  if (kr_shape_numel_checked(&shape, &unel) != KR_OK)
    return kr_fail(ctx, KR_EFORMAT, "IDX '%s': shape %s is too large", path, sh), NULL;
  int64_t nel = (int64_t)unel;
  int64_t nbytes = nel * esize, head = 4 + 4 * (int64_t)ndim;
  if (fsize >= 0 && !gzip && fsize - head != nbytes) {
    if (fsize - head < nbytes)
      return kr_fail(ctx, KR_EFORMAT, "IDX '%s': truncated: expected %lld bytes of data, got %lld",
                     path, (long long)nbytes, (long long)(fsize - head)), NULL;
    return kr_fail(ctx, KR_EFORMAT, "IDX '%s': %lld bytes of unexpected data after the %lld bytes of shape %s",
                   path, (long long)(fsize - head - nbytes), (long long)nbytes, sh), NULL;
  }
  if (fsize >= 0 && gzip && nbytes / DEFLATE_RATIO > fsize)
    return kr_fail(ctx, KR_EFORMAT,
                   "IDX '%s': truncated: shape %s needs %lld bytes of data, more than a %lld-byte gzip file can hold",
                   path, sh, (long long)nbytes, (long long)fsize), NULL;
  if (kr_mem_check(ctx, "IDX", path, "the array", 4 * (uint64_t)nel) != KR_OK) return NULL;

  kr_tensor *t = kr_tensor_new(ctx, &shape);
  if (!t) return NULL;
  unsigned char raw[CHUNK];
  float *dst = KR_DATA(t);
  size_t per = CHUNK / (size_t)esize;
  int64_t done = 0;
  while (done < nel) {
    size_t m = (size_t)(nel - done) < per ? (size_t)(nel - done) : per;
    got = gz_read(gz, raw, m * (size_t)esize, &err);
    if (err != Z_OK && err != Z_BUF_ERROR) {
      gz_fail(ctx, gz, path);
      kr_tensor_release(t);
      return NULL;
    }
    if (got < m * (size_t)esize) {
      kr_fail(ctx, KR_EFORMAT, "IDX '%s': truncated: expected %lld bytes of data, got %lld", path,
              (long long)nbytes, (long long)(done * esize + (int64_t)got));
      kr_tensor_release(t);
      return NULL;
    }
    convert(dst + done, raw, m, type);
    done += (int64_t)m;
  }
  /* the end: nothing more, and (gzip) the trailer's checksum and length agree */
  got = gz_read(gz, raw, 1, &err);
  if (got != 0 || err != Z_OK) {
    if (err != Z_OK) gz_fail(ctx, gz, path);
    else kr_fail(ctx, KR_EFORMAT, "IDX '%s': unexpected data after the %lld bytes of shape %s",
                 path, (long long)nbytes, sh);
    kr_tensor_release(t);
    return NULL;
  }
  return t;
}

kr_tensor *kr_idx_load(kr_ctx *ctx, const char *path)
{
  struct stat sb;
  int fd = kr_open_regular(ctx, "IDX", path, &sb);   /* never blocks on a FIFO or a device */
  if (fd < 0) return NULL;
  unsigned char m[2];
  int64_t fsize = (int64_t)sb.st_size;
  int gzip = pread(fd, m, 2, 0) == 2 && m[0] == 0x1f && m[1] == 0x8b;
  gzFile gz = gzdopen(fd, "rb");
  if (!gz) {
    close(fd);
    kr_fail(ctx, KR_EMEM, "IDX '%s': cannot open (out of memory in zlib)", path);
    return NULL;
  }
  gzbuffer(gz, 1 << 16);
  kr_tensor *t = load(ctx, gz, path, fsize, gzip);
  gzclose(gz);
  return t;
}
