/*
** npz.c -- NumPy .npz archives (np.savez, np.savez_compressed): a zip file
** whose members are .npy files, stored or deflated. The whole archive is
** read into memory (Keras's largest, imdb.npz, is 17 MB), its central
** directory is walked, and each member is inflated with zlib into a buffer
** of the size the directory gives, checked against its CRC-32, then read by
** npy.c; a 1-D object array (pickled lists of integers) goes to pickle.c.
** The file is untrusted: every offset and length is checked against the
** bytes read, and a member's claimed size is refused when deflate could not
** produce it from its compressed size (at most 1032:1) before anything is
** allocated for it.
*/
#include "io.h"
#include "atomic.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>
#include <sys/stat.h>
#include <zlib.h>

#define EOCD_SIG 0x06054b50u
#define Z64_LOC_SIG 0x07064b50u
#define Z64_EOCD_SIG 0x06064b50u
#define CEN_SIG 0x02014b50u
#define LOC_SIG 0x04034b50u
#define MAX_RATIO 1032u   /* deflate's best compression ratio */

static uint64_t rd(const unsigned char *p, int n)
{
  uint64_t v = 0;
  for (int k = n - 1; k >= 0; k--) v = v << 8 | p[k];
  return v;
}

static int bad(kr_ctx *ctx, const char *path, const char *what)
{
  return kr_fail(ctx, KR_EFORMAT, "load_npz: '%s' is not a valid .npz archive (%s)", path, what);
}

static int read_file(kr_ctx *ctx, const char *path, unsigned char **buf, size_t *len)
{
  *buf = NULL;
  *len = 0;
  struct stat sb;
  int fd = kr_open_regular(ctx, "load_npz:", path, &sb);   /* never blocks on a FIFO or a device */
  if (fd < 0) return kr_errcode(ctx);
  FILE *f = fdopen(fd, "rb");
  if (!f) {
    close(fd);
    return kr_fail(ctx, KR_EIO, "load_npz: '%s': cannot open (%s)", path, strerror(errno));
  }
  int rc = KR_OK;
  if (sb.st_size == 0) {
    rc = bad(ctx, path, "the file is empty");
  } else if (kr_mem_check(ctx, "load_npz:", path, "the archive", (uint64_t)sb.st_size) != KR_OK) {
    rc = KR_EMEM;
  } else if (!(*buf = kr_malloc(ctx, (size_t)sb.st_size))) {
    rc = kr_errcode(ctx);
  } else if (fread(*buf, 1, (size_t)sb.st_size, f) != (size_t)sb.st_size) {
    rc = kr_fail(ctx, KR_EIO, "load_npz: '%s': read error (%s)", path, strerror(errno));
  } else {
    *len = (size_t)sb.st_size;
  }
  fclose(f);
  if (rc != KR_OK) {
    kr_free(ctx, *buf);
    *buf = NULL;
  }
  return rc;
}

/* the central directory: its offset, size and number of entries */
static int find_directory(kr_ctx *ctx, const char *path, const unsigned char *b, size_t len,
                          uint64_t *cd_off, uint64_t *cd_size, uint64_t *count)
{
  if (len < 22) return bad(ctx, path, "too short for a zip file");
  size_t lo = len - 22 > 65535 ? len - 22 - 65535 : 0;
  size_t e = len - 22 + 1;
  do {
    e--;
    if (rd(b + e, 4) == EOCD_SIG && e + 22 + rd(b + e + 20, 2) == len) break;
  } while (e > lo);
  if (rd(b + e, 4) != EOCD_SIG) return bad(ctx, path, "no zip end-of-directory record");
  *count = rd(b + e + 10, 2);
  *cd_size = rd(b + e + 12, 4);
  *cd_off = rd(b + e + 16, 4);
  if (*count == 0xffff || *cd_size == 0xffffffffu || *cd_off == 0xffffffffu) {
    if (e < 20 || rd(b + e - 20, 4) != Z64_LOC_SIG) return bad(ctx, path, "no zip64 locator");
    uint64_t z = rd(b + e - 12, 8);
    if (z > len || len - z < 56 || rd(b + z, 4) != Z64_EOCD_SIG) return bad(ctx, path, "bad zip64 directory record");
    *count = rd(b + z + 32, 8);
    *cd_size = rd(b + z + 40, 8);
    *cd_off = rd(b + z + 48, 8);
  }
  if (*cd_off > len || *cd_size > len - *cd_off) return bad(ctx, path, "the directory lies outside the file");
  if (*count > *cd_size / 46) return bad(ctx, path, "more entries than the directory holds");
  return KR_OK;
}

/* one member's bytes, inflated and checked, into a new buffer */
static int member_data(kr_ctx *ctx, const char *path, const char *name, const unsigned char *b, size_t len,
                       int method, uint64_t crc, uint64_t csize, uint64_t usize, uint64_t loc,
                       unsigned char **out)
{
  char what[400];
  *out = NULL;
  if (loc > len || len - loc < 30 || rd(b + loc, 4) != LOC_SIG) {
    snprintf(what, sizeof what, "member '%s': bad local header", name);
    return bad(ctx, path, what);
  }
  uint64_t data = loc + 30 + rd(b + loc + 26, 2) + rd(b + loc + 28, 2);
  if (data > len || csize > len - data) {
    snprintf(what, sizeof what, "member '%s': truncated (%llu compressed bytes, the file ends first)", name,
             (unsigned long long)csize);
    return bad(ctx, path, what);
  }
  if (method == 0 ? usize != csize : usize > csize * MAX_RATIO + 64) {
    snprintf(what, sizeof what, "member '%s': size %llu cannot come from %llu compressed bytes", name,
             (unsigned long long)usize, (unsigned long long)csize);
    return bad(ctx, path, what);
  }
  if (usize >= ((uint64_t)1 << 31) || csize >= ((uint64_t)1 << 31)) {
    snprintf(what, sizeof what, "member '%s': %llu bytes (members of up to 2 GiB are read)", name,
             (unsigned long long)usize);
    return bad(ctx, path, what);
  }
  /* the member's bytes and the array they become (as float32, up to 4 times more) */
  snprintf(what, sizeof what, "the member '%s'", name);
  if (kr_mem_check(ctx, "load_npz:", path, what, 5 * usize) != KR_OK) return KR_EMEM;
  unsigned char *u = kr_malloc(ctx, (size_t)usize + 1);
  if (!u) return kr_errcode(ctx);
  if (method == 0) {
    memcpy(u, b + data, (size_t)usize);
  } else {
    z_stream z;
    memset(&z, 0, sizeof z);
    if (inflateInit2(&z, -MAX_WBITS) != Z_OK) {
      kr_free(ctx, u);
      return kr_fail(ctx, KR_EIO, "load_npz: '%s': zlib could not start", path);
    }
    z.next_in = (unsigned char *)(b + data);
    z.avail_in = (uInt)csize;
    z.next_out = u;
    z.avail_out = (uInt)usize + 1;   /* one spare byte shows a member longer than said */
    int zr = inflate(&z, Z_FINISH);
    uint64_t out_done = z.total_out;
    inflateEnd(&z);
    if (zr != Z_STREAM_END || out_done != usize) {
      kr_free(ctx, u);
      snprintf(what, sizeof what, "member '%s': %s", name,
               zr == Z_DATA_ERROR ? "corrupt deflate data" :
               out_done != usize && zr == Z_STREAM_END ? "its size differs from the directory's" :
               "truncated deflate data");
      return bad(ctx, path, what);
    }
  }
  if ((uint64_t)crc32(0L, u, (uInt)usize) != crc) {
    kr_free(ctx, u);
    snprintf(what, sizeof what, "member '%s': CRC-32 mismatch", name);
    return bad(ctx, path, what);
  }
  *out = u;
  return KR_OK;
}

/* the zip64 extra field (id 1): the sizes and offset that the entry gives as 0xffffffff */
static int zip64_extra(const unsigned char *x, size_t n, uint64_t *usize, uint64_t *csize, uint64_t *loc)
{
  while (n >= 4) {
    size_t id = (size_t)rd(x, 2), sz = (size_t)rd(x + 2, 2);
    if (sz > n - 4) return 0;
    if (id == 1) {
      const unsigned char *p = x + 4;
      size_t left = sz;
      uint64_t *f[3] = {usize, csize, loc};
      for (int i = 0; i < 3; i++) {
        if (*f[i] != 0xffffffffu) continue;
        if (left < 8) return 0;
        *f[i] = rd(p, 8);
        p += 8;
        left -= 8;
      }
      return 1;
    }
    x += 4 + sz;
    n -= 4 + sz;
  }
  return 1;
}

int kr_npz_parse(kr_ctx *ctx, const unsigned char *b, size_t len, const char *path, kr_npz_member_fn fn,
                 void *ud)
{
  unsigned char *u = NULL;
  int rc;
  uint64_t cd_off = 0, cd_size = 0, count = 0;
  if ((rc = find_directory(ctx, path, b, len, &cd_off, &cd_size, &count)) != KR_OK) goto done;
  uint64_t at = cd_off, end = cd_off + cd_size;
  for (uint64_t i = 0; i < count; i++) {
    if (end - at < 46 || rd(b + at, 4) != CEN_SIG) {
      rc = bad(ctx, path, "a bad directory entry");
      goto done;
    }
    const unsigned char *e = b + at;
    int flags = (int)rd(e + 8, 2), method = (int)rd(e + 10, 2);
    uint64_t crc = rd(e + 16, 4), csize = rd(e + 20, 4), usize = rd(e + 24, 4), loc = rd(e + 42, 4);
    size_t nl = (size_t)rd(e + 28, 2), xl = (size_t)rd(e + 30, 2), cl = (size_t)rd(e + 32, 2);
    if (end - at - 46 < (uint64_t)nl + xl + cl) {
      rc = bad(ctx, path, "a directory entry runs past the directory");
      goto done;
    }
    char name[256], shown[300];
    size_t k = nl < sizeof name - 1 ? nl : sizeof name - 1;
    for (size_t j = 0; j < k; j++) {
      unsigned char ch = e[46 + j];
      name[j] = ch >= 32 && ch < 127 ? (char)ch : '?';
    }
    name[k] = '\0';
    snprintf(shown, sizeof shown, "%s%s", name, nl > k ? "..." : "");
    if (!zip64_extra(e + 46 + nl, xl, &usize, &csize, &loc)) {
      rc = bad(ctx, path, "a bad zip64 extra field");
      goto done;
    }
    at += 46 + nl + xl + cl;
    char what[400];
    if (flags & 1) {
      snprintf(what, sizeof what, "member '%s' is encrypted", shown);
      rc = bad(ctx, path, what);
      goto done;
    }
    if (method != 0 && method != 8) {
      snprintf(what, sizeof what, "member '%s' uses compression method %d (stored and deflate are read)",
               shown, method);
      rc = bad(ctx, path, what);
      goto done;
    }
    if (nl > k || nl < 5 || memcmp(name + nl - 4, ".npy", 4) != 0 || memchr(e + 46, 0, nl)) {
      snprintf(what, sizeof what, "member '%s' is not a .npy file", shown);
      rc = bad(ctx, path, what);
      goto done;
    }
    if ((rc = member_data(ctx, path, shown, b, len, method, crc, csize, usize, loc, &u)) != KR_OK) goto done;
    char label[600];
    snprintf(label, sizeof label, "%s' member '%s", path, shown);
    kr_tensor *t = NULL;
    int64_t obj_at, obj_n;
    if ((rc = kr_npy_load_mem(ctx, u, (size_t)usize, label, &t, &obj_at, &obj_n)) != KR_OK) goto done;
    name[nl - 4] = '\0';
    if (t) {
      kr_free(ctx, u);
      u = NULL;
      if ((rc = fn(ud, name, t, NULL)) != KR_OK) goto done;
    } else {
      kr_ragged r;
      rc = kr_pickle_int_lists(ctx, u + obj_at, (size_t)(usize - (uint64_t)obj_at), label, obj_n, &r);
      kr_free(ctx, u);
      u = NULL;
      if (rc != KR_OK) goto done;
      rc = fn(ud, name, NULL, &r);
      kr_ragged_free(ctx, &r);
      if (rc != KR_OK) goto done;
    }
  }
done:
  kr_free(ctx, u);
  return rc;
}

int kr_npz_load(kr_ctx *ctx, const char *path, kr_npz_member_fn fn, void *ud)
{
  unsigned char *b;
  size_t len;
  int rc = read_file(ctx, path, &b, &len);
  if (rc != KR_OK) return rc;
  rc = kr_npz_parse(ctx, b, len, path, fn, ud);
  kr_free(ctx, b);
  return rc;
}
