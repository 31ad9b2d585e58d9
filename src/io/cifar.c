/*
** cifar.c -- CIFAR-10 and CIFAR-100 from their binary archives
** (cifar-10-binary.tar.gz, cifar-100-binary.tar.gz): a gzip'd tar (read
** through zlib's gz* functions; a plain tar is read too) of batch files,
** each a run of records: the label byte(s), then 3072 pixel bytes, the red
** plane, the green and the blue, each 32 rows of 32.
** Two passes over the archive: the first finds the wanted members and
** their sizes (reading through every member, so a truncated archive is
** found before anything is allocated), the second converts the records
** into (n, 32, 32, 3) channels-last pixels and (n, 1) labels.
** The archive is untrusted: header checksums are checked, sizes are parsed
** with a bound and must be a whole number of records.
*/
#include "io.h"
#include "atomic.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>
#include <zlib.h>

#define BLOCK 512
#define PIXELS 3072
#define MAX_MEMBERS 8

typedef struct tar {
  kr_ctx *ctx;
  const char *path;
  gzFile gz;
} tar;

static int fail_read(tar *t, const char *what)
{
  int zerr = 0;
  const char *msg = gzerror(t->gz, &zerr);
  if (zerr != Z_OK && zerr != Z_STREAM_END && zerr != Z_BUF_ERROR)
    return kr_fail(t->ctx, KR_EFORMAT, "cifar: '%s': %s (%s)", t->path, what, zerr == Z_ERRNO ? strerror(errno) : msg);
  return kr_fail(t->ctx, KR_EFORMAT, "cifar: '%s': truncated archive (%s)", t->path, what);
}

static int read_exact(tar *t, void *buf, size_t n, const char *what)
{
  int got = gzread(t->gz, buf, (unsigned)n);
  if (got < 0 || (size_t)got != n) return fail_read(t, what);
  return KR_OK;
}

/* an octal field of n bytes (blanks and NULs around it) */
static int octal(const unsigned char *f, int n, uint64_t *v)
{
  int i = 0, digits = 0;
  *v = 0;
  while (i < n && f[i] == ' ') i++;
  for (; i < n && f[i] >= '0' && f[i] <= '7'; i++) {
    if (++digits > 12) return 0;
    *v = *v << 3 | (uint64_t)(f[i] - '0');
  }
  for (; i < n; i++)
    if (f[i] != ' ' && f[i] != '\0') return 0;
  return digits > 0;
}

/* the next header: 1 and the member's name, size and type, 0 at the end */
static int next_header(tar *t, char *name, size_t nname, uint64_t *size, int *regular, int *rc)
{
  unsigned char h[BLOCK];
  *rc = KR_OK;
  int got = gzread(t->gz, h, BLOCK);
  if (got == 0) return 0;   /* an archive without its end blocks */
  if (got != BLOCK) {
    *rc = fail_read(t, "inside a header");
    return 0;
  }
  int zero = 1;
  for (int i = 0; i < BLOCK && zero; i++) zero = h[i] == 0;
  if (zero) return 0;
  uint64_t sum = 0, want;
  int64_t ssum = 0;   /* some old tars sum the bytes as signed chars */
  for (int i = 0; i < BLOCK; i++) {
    int b = i >= 148 && i < 156 ? ' ' : h[i];
    sum += (uint64_t)b;
    ssum += b < 128 ? b : b - 256;
  }
  if (!octal(h + 148, 8, &want) || (want != sum && (int64_t)want != ssum) || !octal(h + 124, 12, size)) {
    *rc = kr_fail(t->ctx, KR_EFORMAT, "cifar: '%s' is not a tar.gz archive (bad tar header)", t->path);
    return 0;
  }
  char full[260];
  int ustar = memcmp(h + 257, "ustar", 5) == 0 && h[345];
  snprintf(full, sizeof full, "%.155s%s%.100s", ustar ? (const char *)h + 345 : "", ustar ? "/" : "",
           (const char *)h);
  snprintf(name, nname, "%s", full);
  *regular = h[156] == '0' || h[156] == '\0';
  return 1;
}

static int skip(tar *t, uint64_t n)
{
  unsigned char buf[1 << 15];
  while (n > 0) {
    size_t m = n < sizeof buf ? (size_t)n : sizeof buf;
    if (read_exact(t, buf, m, "inside a member") != KR_OK) return kr_errcode(t->ctx);
    n -= m;
  }
  return KR_OK;
}

static const char *base(const char *s)
{
  const char *b = strrchr(s, '/');
  return b ? b + 1 : s;
}

static int which(const char *name, const char *const *members, int n)
{
  for (int i = 0; i < n; i++)
    if (strcmp(base(name), members[i]) == 0) return i;
  return -1;
}

static int open_tar(tar *t)
{
  int fd = kr_open_regular(t->ctx, "cifar:", t->path, NULL);   /* never blocks on a FIFO or a device */
  if (fd < 0) return kr_errcode(t->ctx);
  t->gz = gzdopen(fd, "rb");
  if (!t->gz) {
    close(fd);
    return kr_fail(t->ctx, KR_EIO, "cifar: '%s': cannot open (%s)", t->path, strerror(errno));
  }
  gzbuffer(t->gz, 1 << 17);
  return KR_OK;
}

int kr_cifar_load(kr_ctx *ctx, const char *path, const char *const *members, int nmembers,
                  int label_bytes, int label_index, kr_tensor **x, kr_tensor **y)
{
  *x = *y = NULL;
  if (nmembers < 1 || nmembers > MAX_MEMBERS || label_bytes < 1 || label_index < 0 || label_index >= label_bytes)
    return kr_fail(ctx, KR_EARG, "cifar: bad member list or label layout");
  tar t = {ctx, path, NULL};
  uint64_t size[MAX_MEMBERS], rec = (uint64_t)label_bytes + PIXELS;
  int found[MAX_MEMBERS] = {0};
  char name[260];
  int rc, regular;
  uint64_t sz;

  /* pass 1: sizes */
  if ((rc = open_tar(&t)) != KR_OK) return rc;
  while (next_header(&t, name, sizeof name, &sz, &regular, &rc)) {
    int i = regular ? which(name, members, nmembers) : -1;
    if (i >= 0) {
      if (found[i]) {
        rc = kr_fail(ctx, KR_EFORMAT, "cifar: '%s': member '%s' appears twice", path, members[i]);
        break;
      }
      found[i] = 1;
      size[i] = sz;
    }
    if ((rc = skip(&t, (sz + BLOCK - 1) / BLOCK * BLOCK)) != KR_OK) break;
  }
  gzclose(t.gz);
  if (rc != KR_OK) return rc;
  uint64_t n = 0, start[MAX_MEMBERS];
  for (int i = 0; i < nmembers; i++) {
    if (!found[i])
      return kr_fail(ctx, KR_EFORMAT, "cifar: '%s' has no member '%s'", path, members[i]);
    if (size[i] % rec != 0)
      return kr_fail(ctx, KR_EFORMAT, "cifar: '%s': member '%s' has %llu bytes, not a whole number of "
                     "%llu-byte records", path, members[i], (unsigned long long)size[i], (unsigned long long)rec);
    start[i] = n;
    n += size[i] / rec;
  }

  /* pass 2: the records */
  kr_shape xs = {4, {(int64_t)n, 32, 32, 3}}, ys = {2, {(int64_t)n, 1}};
  if (!(*x = kr_tensor_new(ctx, &xs)) || !(*y = kr_tensor_new(ctx, &ys))) {
    rc = kr_errcode(ctx);
    goto fail;
  }
  if ((rc = open_tar(&t)) != KR_OK) goto fail;
  unsigned char r[2 + PIXELS];
  float *xd = KR_DATA(*x), *yd = KR_DATA(*y);
  for (int i = 0; i < nmembers; i++) found[i] = 0;
  while (next_header(&t, name, sizeof name, &sz, &regular, &rc)) {
    int i = regular ? which(name, members, nmembers) : -1;
    if (i < 0 || found[i] || sz != size[i]) {
      if ((rc = skip(&t, (sz + BLOCK - 1) / BLOCK * BLOCK)) != KR_OK) break;
      continue;
    }
    found[i] = 1;
    for (uint64_t k = 0; k < sz / rec; k++) {
      if ((rc = read_exact(&t, r, (size_t)rec, "inside a member")) != KR_OK) break;
      uint64_t s = start[i] + k;
      yd[s] = r[label_index];
      float *px = xd + s * PIXELS;
      const unsigned char *p = r + label_bytes;
      for (int q = 0; q < 1024; q++)
        for (int c = 0; c < 3; c++) px[q * 3 + c] = p[c * 1024 + q];
    }
    if (rc != KR_OK || (rc = skip(&t, (BLOCK - sz % BLOCK) % BLOCK)) != KR_OK) break;
  }
  gzclose(t.gz);
  if (rc == KR_OK) {
    for (int i = 0; i < nmembers; i++)
      if (!found[i]) rc = kr_fail(ctx, KR_EFORMAT, "cifar: '%s' changed while it was read", path);
  }
  if (rc == KR_OK) return KR_OK;
fail:
  if (*x) kr_tensor_release(*x);
  if (*y) kr_tensor_release(*y);
  *x = *y = NULL;
  return rc ? rc : kr_errcode(ctx);
}
