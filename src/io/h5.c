/*
** h5.c -- HDF5 files through Debian's libhdf5 (serial), as thin as the Keras
** layout needs: groups created on demand, string / string-array / number
** attributes as h5py writes them for Keras (fixed-length, NUL-padded byte
** strings), float32 datasets, a scalar int64 dataset. The layout itself
** (model_config, model_weights/<layer>/<weight>, ...) is decided in Lua.
**
** A file being written is built in memory (libhdf5's core driver); kr_h5_commit
** writes its image through the atomic write of io/atomic.c (a temporary file
** next to the target, fsync, rename, fsync of the folder), so a killed or
** failed save leaves the previous file intact. Files are created with the HDF5 1.8 object format so that
** attributes above 64 KiB (large model_config texts) go to dense storage;
** h5py and every libhdf5 since 1.8 read them.
**
** Process-wide state (an exception to the engine's rule, like OpenBLAS's
** thread count): libhdf5's own library state and error stack. We switch off
** its automatic error printing on each create/open, and read the innermost
** message of its error stack into our messages.
**
** libhdf5 parses the file itself; it is not hardened against hostile files
** the way the native format is (model_file.c): load untrusted models from
** the native format.
*/
#include "model_file.h"
#include "atomic.h"

#include <hdf5.h>

#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define MAX_ITEMS (1 << 24)       /* items in an attribute we read */
#define MAX_ATTR_BYTES (1u << 30)

struct kr_h5 {
  kr_ctx *ctx;
  hid_t file;          /* < 0 once closed */
  int writing;
  int committed;
  char *path;          /* the target */
  char *tmp;           /* writing: the temporary file */
  int fd;              /* writing: tmp, open until the commit (else -1) */
};

/* ---- messages ---- */

static herr_t first_error(unsigned n, const H5E_error2_t *e, void *ud)
{
  char *buf = ud;
  if (n == 0 && e->desc) snprintf(buf, 200, "%s", e->desc);
  return 0;
}

/* "'path' (HDF5): what: libhdf5's innermost message" */
static int fail(kr_h5 *h, int code, const char *fmt, const char *arg)
{
  char why[200] = "", what[300];
  H5Ewalk2(H5E_DEFAULT, H5E_WALK_DOWNWARD, first_error, why);
  H5Eclear2(H5E_DEFAULT);
  snprintf(what, sizeof what, fmt, arg);
  if (why[0]) return kr_fail(h->ctx, code, "'%s' (HDF5): %s (%s)", h->path, what, why);
  return kr_fail(h->ctx, code, "'%s' (HDF5): %s", h->path, what);
}

static char *copy_str(kr_ctx *ctx, const char *s, size_t n)
{
  char *p = kr_malloc(ctx, n + 1);
  if (!p) return NULL;
  memcpy(p, s, n);
  p[n] = '\0';
  return p;
}

/* ---- open, create, commit, free ---- */

static kr_h5 *new_handle(kr_ctx *ctx, const char *path)
{
  H5Eset_auto2(H5E_DEFAULT, NULL, NULL);
  kr_h5 *h = kr_calloc(ctx, sizeof *h);
  if (!h) return NULL;
  h->ctx = ctx;
  h->file = -1;
  h->fd = -1;
  h->path = copy_str(ctx, path, strlen(path));
  if (!h->path) {
    kr_free(ctx, h);
    return NULL;
  }
  return h;
}

void kr_h5_free(kr_h5 *h)
{
  if (!h) return;
  if (h->file >= 0) H5Fclose(h->file);
  h->file = -1;
  if (h->fd >= 0) close(h->fd);
  h->fd = -1;
  if (h->writing && !h->committed) kr_atomic_abort(h->tmp);
  kr_free(h->ctx, h->tmp);
  kr_free(h->ctx, h->path);
  kr_free(h->ctx, h);
}

kr_h5 *kr_h5_create(kr_ctx *ctx, const char *path)
{
  kr_h5 *h = new_handle(ctx, path);
  if (!h) return NULL;
  h->writing = 1;
  /* claim the temporary file now (so that a folder that cannot take it is
  ** an error here); libhdf5 builds the file in memory (the core driver, no
  ** backing store) and kr_h5_commit writes its image there. libhdf5 never
  ** writes to disk itself: a write that fails (disk full, a size limit)
  ** would leave its file open in a state that crashes the library's exit
  ** handler. */
  h->fd = kr_atomic_create(ctx, path, &h->tmp);
  if (h->fd < 0) {
    kr_h5_free(h);
    return NULL;
  }
  hid_t fapl = H5Pcreate(H5P_FILE_ACCESS);
  if (fapl >= 0) {
    H5Pset_libver_bounds(fapl, H5F_LIBVER_V18, H5F_LIBVER_LATEST);
    H5Pset_fapl_core(fapl, (size_t)1 << 20, 0);
  }
  h->file = H5Fcreate(h->tmp, H5F_ACC_TRUNC, H5P_DEFAULT, fapl >= 0 ? fapl : H5P_DEFAULT);
  if (fapl >= 0) H5Pclose(fapl);
  if (h->file < 0) {
    fail(h, KR_EIO, "cannot create the file%s", "");
    kr_h5_free(h);
    return NULL;
  }
  return h;
}

kr_h5 *kr_h5_open(kr_ctx *ctx, const char *path)
{
  kr_h5 *h = new_handle(ctx, path);
  if (!h) return NULL;
  /* our own open first: it never blocks (a FIFO, a device) and refuses
  ** anything but a regular file; libhdf5 then opens that same file through
  ** /proc/self/fd, so the file cannot be swapped between check and use */
  int fd = kr_open_regular(ctx, "load:", path, NULL);
  if (fd < 0) {
    kr_h5_free(h);
    return NULL;
  }
  char byfd[64];
  snprintf(byfd, sizeof byfd, "/proc/self/fd/%d", fd);
  const char *name = access(byfd, R_OK) == 0 ? byfd : path;
  htri_t is = H5Fis_hdf5(name);
  if (is <= 0) {
    close(fd);
    H5Eclear2(H5E_DEFAULT);
    kr_fail(ctx, KR_EFORMAT, "load: '%s': not an HDF5 file", path);
    kr_h5_free(h);
    return NULL;
  }
  h->file = H5Fopen(name, H5F_ACC_RDONLY, H5P_DEFAULT);
  close(fd);
  if (h->file < 0) {
    fail(h, KR_EFORMAT, "cannot open the file%s", "");
    kr_h5_free(h);
    return NULL;
  }
  return h;
}

/* ---- the superblock of a file image ----
** libhdf5 1.10 clears the "open for writing" flag of a version 2/3
** superblock in the image H5Fget_file_image returns but leaves the checksum
** computed with the flag set, so the image does not open. We recompute it:
** Jenkins' lookup3 ("hashlittle", initial value 0) over the superblock's
** 12 + 4 * sizeof(offsets) bytes, stored little-endian after them. */

#define ROT32(x, k) (((x) << (k)) | ((x) >> (32 - (k))))

static uint32_t lookup3(const unsigned char *k, size_t len)
{
  uint32_t a, b, c;
  a = b = c = 0xdeadbeefu + (uint32_t)len;
  while (len > 12) {
    a += (uint32_t)k[0] | (uint32_t)k[1] << 8 | (uint32_t)k[2] << 16 | (uint32_t)k[3] << 24;
    b += (uint32_t)k[4] | (uint32_t)k[5] << 8 | (uint32_t)k[6] << 16 | (uint32_t)k[7] << 24;
    c += (uint32_t)k[8] | (uint32_t)k[9] << 8 | (uint32_t)k[10] << 16 | (uint32_t)k[11] << 24;
    a -= c; a ^= ROT32(c, 4); c += b;
    b -= a; b ^= ROT32(a, 6); a += c;
    c -= b; c ^= ROT32(b, 8); b += a;
    a -= c; a ^= ROT32(c, 16); c += b;
    b -= a; b ^= ROT32(a, 19); a += c;
    c -= b; c ^= ROT32(b, 4); b += a;
    len -= 12;
    k += 12;
  }
  if (len == 0) return c;
  unsigned char r[12] = {0};
  memcpy(r, k, len);
  a += (uint32_t)r[0] | (uint32_t)r[1] << 8 | (uint32_t)r[2] << 16 | (uint32_t)r[3] << 24;
  b += (uint32_t)r[4] | (uint32_t)r[5] << 8 | (uint32_t)r[6] << 16 | (uint32_t)r[7] << 24;
  c += (uint32_t)r[8] | (uint32_t)r[9] << 8 | (uint32_t)r[10] << 16 | (uint32_t)r[11] << 24;
  c ^= b; c -= ROT32(b, 14);
  a ^= c; a -= ROT32(c, 11);
  b ^= a; b -= ROT32(a, 25);
  c ^= b; c -= ROT32(b, 16);
  a ^= c; a -= ROT32(c, 4);
  b ^= a; b -= ROT32(a, 14);
  c ^= b; c -= ROT32(b, 24);
  return c;
}

static void fix_superblock_checksum(unsigned char *img, size_t n)
{
  static const unsigned char sig[8] = {0x89, 'H', 'D', 'F', '\r', '\n', 0x1a, '\n'};
  if (n < 12 || memcmp(img, sig, 8) != 0 || (img[8] != 2 && img[8] != 3)) return;
  size_t len = 12 + 4 * (size_t)img[9];
  if (img[9] > 8 || len + 4 > n) return;
  uint32_t sum = lookup3(img, len);
  for (int i = 0; i < 4; i++) img[len + (size_t)i] = (unsigned char)(sum >> (8 * i));
}

int kr_h5_commit(kr_h5 *h)
{
  if (!h->writing || h->file < 0) return kr_fail(h->ctx, KR_EARG, "'%s' (HDF5): the file is not open for writing", h->path);
  /* the file's image, out of libhdf5's memory into the temporary file */
  ssize_t n = H5Fflush(h->file, H5F_SCOPE_GLOBAL) < 0 ? -1 : H5Fget_file_image(h->file, NULL, 0);
  unsigned char *img = n > 0 ? kr_malloc(h->ctx, (size_t)n) : NULL;
  if (n <= 0 || !img || H5Fget_file_image(h->file, img, (size_t)n) != n) {
    int code = n > 0 && !img ? kr_errcode(h->ctx) : fail(h, KR_EIO, "cannot write the file%s", "");
    kr_free(h->ctx, img);
    return code;
  }
  fix_superblock_checksum(img, (size_t)n);
  herr_t r = H5Fclose(h->file);
  h->file = -1;
  int ok = r >= 0 && kr_atomic_write(h->fd, img, (size_t)n) == 0;
  int e = errno;
  kr_free(h->ctx, img);
  if (r < 0) return fail(h, KR_EIO, "cannot write the file%s", "");
  if (close(h->fd) != 0 && ok) {
    ok = 0;
    e = errno;
  }
  h->fd = -1;
  if (!ok) return kr_fail(h->ctx, KR_EIO, "save: '%s': cannot write (%s)", h->path, strerror(e));
  if (kr_atomic_commit(h->ctx, h->path, h->tmp) != KR_OK) return kr_errcode(h->ctx);
  h->committed = 1;
  return KR_OK;
}

/* ---- paths and groups ---- */

/* 1 when the link name in g is a hard link; else 0 with a message (create
** -1: none). Soft, external and user-defined links are never followed: an
** external link would read another file. */
static int hard_link(kr_h5 *h, hid_t g, const char *name, const char *path, int create)
{
  H5L_info_t li;
  if (H5Lget_info(g, name, &li, H5P_DEFAULT) < 0) {
    H5Eclear2(H5E_DEFAULT);
    if (create >= 0) kr_fail(h->ctx, KR_EFORMAT, "'%s' (HDF5): cannot read the link '%s' in '%s'", h->path, name, path);
    return 0;
  }
  if (li.type == H5L_TYPE_HARD) return 1;
  if (create >= 0)
    kr_fail(h->ctx, KR_EFORMAT, "'%s' (HDF5): '%s' in '%s' is %s link: refused (only hard links are followed)",
            h->path, name, path,
            li.type == H5L_TYPE_EXTERNAL ? "an external" : li.type == H5L_TYPE_SOFT ? "a soft" : "a user-defined");
  return 0;
}

/* the group at path (each component created when create is 1); < 0 with a
** message when it is missing or cannot be made (create -1: no message).
** The caller closes it. */
static hid_t group_at(kr_h5 *h, const char *path, int create)
{
  hid_t cur = H5Gopen2(h->file, "/", H5P_DEFAULT);
  if (cur < 0) {
    fail(h, KR_EFORMAT, "cannot open the root group%s", "");
    return -1;
  }
  const char *p = path;
  char comp[1024];
  while (*p) {
    while (*p == '/') p++;
    if (!*p) break;
    size_t n = strcspn(p, "/");
    if (n >= sizeof comp) {
      H5Gclose(cur);
      kr_fail(h->ctx, KR_EARG, "'%s' (HDF5): a path component is too long", h->path);
      return -1;
    }
    memcpy(comp, p, n);
    comp[n] = '\0';
    p += n;
    hid_t next;
    htri_t ex = H5Lexists(cur, comp, H5P_DEFAULT);
    if (ex > 0 && !hard_link(h, cur, comp, path, create)) {
      H5Gclose(cur);
      return -1;
    }
    if (ex > 0) {
      H5O_info_t info;
      if (H5Oget_info_by_name(cur, comp, &info, H5P_DEFAULT) < 0 || info.type != H5O_TYPE_GROUP) {
        H5Gclose(cur);
        H5Eclear2(H5E_DEFAULT);
        if (create >= 0) kr_fail(h->ctx, KR_EFORMAT, "'%s' (HDF5): '%s' is not a group", h->path, path);
        return -1;
      }
      next = H5Gopen2(cur, comp, H5P_DEFAULT);
    } else if (create > 0 && h->writing) {
      next = H5Gcreate2(cur, comp, H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT);
    } else {
      H5Gclose(cur);
      H5Eclear2(H5E_DEFAULT);
      if (create >= 0) kr_fail(h->ctx, KR_EFORMAT, "'%s' (HDF5): no group '%s'", h->path, path);
      return -1;
    }
    H5Gclose(cur);
    if (next < 0) {
      fail(h, KR_EFORMAT, "cannot open or create the group '%s'", path);
      return -1;
    }
    cur = next;
  }
  return cur;
}

/* split "a/b/c" into the group "a/b" (in buf) and the last name "c" */
static const char *split(kr_h5 *h, const char *path, char *buf, size_t n)
{
  const char *slash = strrchr(path, '/');
  size_t gl = slash ? (size_t)(slash - path) : 0;
  if (gl >= n) {
    kr_fail(h->ctx, KR_EARG, "'%s' (HDF5): path too long", h->path);
    return NULL;
  }
  memcpy(buf, path, gl);
  buf[gl] = '\0';
  const char *last = slash ? slash + 1 : path;
  if (!*last) {
    kr_fail(h->ctx, KR_EARG, "'%s' (HDF5): empty name in '%s'", h->path, path);
    return NULL;
  }
  return last;
}

int kr_h5_exists(kr_h5 *h, const char *path)
{
  char gbuf[4096];
  const char *last = split(h, path, gbuf, sizeof gbuf);
  if (!last) return 0;
  hid_t g = group_at(h, gbuf, -1);   /* quiet: a missing group means "no" */
  if (g < 0) return 0;
  htri_t ex = H5Lexists(g, last, H5P_DEFAULT);
  H5Gclose(g);
  H5Eclear2(H5E_DEFAULT);
  return ex > 0;
}

/* ---- attributes ---- */

static int put_attr(kr_h5 *h, const char *group, const char *name, hid_t type, hid_t space, const void *buf)
{
  hid_t g = group_at(h, group, 1);
  if (g < 0) return kr_errcode(h->ctx);
  if (H5Aexists(g, name) > 0) H5Adelete(g, name);
  hid_t a = H5Acreate2(g, name, type, space, H5P_DEFAULT, H5P_DEFAULT);
  int ok = a >= 0 && H5Awrite(a, type, buf) >= 0;
  if (a >= 0) H5Aclose(a);
  H5Gclose(g);
  if (!ok) return fail(h, KR_EIO, "cannot write the attribute '%s'", name);
  return KR_OK;
}

int kr_h5_set_attr_string(kr_h5 *h, const char *group, const char *name, const char *s, size_t len)
{
  hid_t t = H5Tcopy(H5T_C_S1);
  H5Tset_size(t, len ? len : 1);
  H5Tset_strpad(t, H5T_STR_NULLPAD);
  hid_t sp = H5Screate(H5S_SCALAR);
  int st = put_attr(h, group, name, t, sp, len ? s : "");
  H5Sclose(sp);
  H5Tclose(t);
  return st;
}

int kr_h5_set_attr_strings(kr_h5 *h, const char *group, const char *name, int n, const char *const *s)
{
  if (n == 0) {   /* what Keras writes for no names: an empty float64 array */
    hsize_t d0 = 0;
    hid_t sp = H5Screate_simple(1, &d0, NULL);
    double dummy = 0;
    int st = put_attr(h, group, name, H5T_IEEE_F64LE, sp, &dummy);
    H5Sclose(sp);
    return st;
  }
  size_t w = 1;
  for (int i = 0; i < n; i++) {
    size_t l = strlen(s[i]);
    if (l > w) w = l;
  }
  if (w > MAX_ATTR_BYTES / (size_t)n) return kr_fail(h->ctx, KR_EARG, "'%s' (HDF5): attribute '%s' too large", h->path, name);
  char *buf = kr_calloc(h->ctx, w * (size_t)n);
  if (!buf) return KR_EMEM;
  for (int i = 0; i < n; i++) memcpy(buf + w * (size_t)i, s[i], strlen(s[i]));
  hid_t t = H5Tcopy(H5T_C_S1);
  H5Tset_size(t, w);
  H5Tset_strpad(t, H5T_STR_NULLPAD);
  hsize_t dn = (hsize_t)n;
  hid_t sp = H5Screate_simple(1, &dn, NULL);
  int st = put_attr(h, group, name, t, sp, buf);
  H5Sclose(sp);
  H5Tclose(t);
  kr_free(h->ctx, buf);
  return st;
}

int kr_h5_set_attr_number(kr_h5 *h, const char *group, const char *name, double v)
{
  hid_t sp = H5Screate(H5S_SCALAR);
  int st;
  if (v == (double)(int64_t)v && v > -9.2e18 && v < 9.2e18) {
    int64_t i = (int64_t)v;
    st = put_attr(h, group, name, H5T_STD_I64LE, sp, &i);
  } else {
    st = put_attr(h, group, name, H5T_IEEE_F64LE, sp, &v);
  }
  H5Sclose(sp);
  return st;
}

void kr_h5_attr_free(kr_ctx *ctx, kr_h5_attr *a)
{
  if (a->s)
    for (int i = 0; i < a->n; i++) kr_free(ctx, a->s[i]);
  kr_free(ctx, a->s);
  kr_free(ctx, a->len);
  kr_free(ctx, a->v);
  memset(a, 0, sizeof *a);
}

static int read_strings(kr_h5 *h, hid_t at, hid_t ftype, hssize_t n, kr_h5_attr *a)
{
  kr_ctx *ctx = h->ctx;
  a->s = kr_calloc(ctx, (size_t)n * sizeof *a->s);
  a->len = kr_calloc(ctx, (size_t)n * sizeof *a->len);
  if (!a->s || !a->len) return KR_EMEM;
  a->n = (int)n;
  if (H5Tis_variable_str(ftype) > 0) {
    char **v = kr_calloc(ctx, (size_t)n * sizeof *v);
    if (!v) return KR_EMEM;
    hid_t mt = H5Tcopy(H5T_C_S1);
    H5Tset_size(mt, H5T_VARIABLE);
    H5Tset_cset(mt, H5Tget_cset(ftype));
    int st = KR_OK;
    if (H5Aread(at, mt, v) < 0) {
      st = fail(h, KR_EFORMAT, "cannot read a string attribute%s", "");
    } else {
      for (hssize_t i = 0; i < n && st == KR_OK; i++) {
        const char *s = v[i] ? v[i] : "";
        size_t l = strlen(s);
        if (!(a->s[i] = copy_str(ctx, s, l))) st = KR_EMEM;
        a->len[i] = l;
      }
      hid_t sp = H5Aget_space(at);
      H5Dvlen_reclaim(mt, sp, H5P_DEFAULT, v);
      H5Sclose(sp);
    }
    H5Tclose(mt);
    kr_free(ctx, v);
    return st;
  }
  size_t w = H5Tget_size(ftype);
  if (w == 0 || w > MAX_ATTR_BYTES / (size_t)n) return kr_fail(ctx, KR_EFORMAT, "'%s' (HDF5): string attribute too large", h->path);
  H5T_str_t pad = H5Tget_strpad(ftype);
  char *buf = kr_malloc(ctx, w * (size_t)n);
  if (!buf) return KR_EMEM;
  hid_t mt = H5Tcopy(ftype);
  int st = KR_OK;
  if (H5Aread(at, mt, buf) < 0) {
    st = fail(h, KR_EFORMAT, "cannot read a string attribute%s", "");
  } else {
    for (hssize_t i = 0; i < n && st == KR_OK; i++) {
      const char *s = buf + w * (size_t)i;
      size_t l = 0;
      while (l < w && s[l]) l++;
      if (pad == H5T_STR_SPACEPAD)
        while (l > 0 && s[l - 1] == ' ') l--;
      if (!(a->s[i] = copy_str(ctx, s, l))) st = KR_EMEM;
      a->len[i] = l;
    }
  }
  H5Tclose(mt);
  kr_free(ctx, buf);
  return st;
}

int kr_h5_get_attr(kr_h5 *h, const char *group, const char *name, kr_h5_attr *a)
{
  memset(a, 0, sizeof *a);
  hid_t g = group_at(h, group, -1);
  if (g < 0) {   /* no such group: no such attribute; but a refused link is an error */
    g = group_at(h, group, 0);
    if (g < 0) return strstr(kr_errmsg(h->ctx), "refused") ? kr_errcode(h->ctx) : KR_OK;
  }
  htri_t ex = H5Aexists(g, name);
  if (ex <= 0) {
    H5Gclose(g);
    H5Eclear2(H5E_DEFAULT);
    a->kind = KR_H5_NONE;
    return KR_OK;
  }
  hid_t at = H5Aopen(g, name, H5P_DEFAULT);
  H5Gclose(g);
  if (at < 0) return fail(h, KR_EFORMAT, "cannot open the attribute '%s'", name);
  hid_t ftype = H5Aget_type(at), sp = H5Aget_space(at);
  int st = KR_OK;
  int rank = sp >= 0 ? H5Sget_simple_extent_ndims(sp) : -1;
  hssize_t n = sp >= 0 ? H5Sget_simple_extent_npoints(sp) : -1;
  H5T_class_t cls = ftype >= 0 ? H5Tget_class(ftype) : H5T_NO_CLASS;
  if (rank < 0 || rank > 1 || n < 0 || n > MAX_ITEMS) {
    st = kr_fail(h->ctx, KR_EFORMAT, "'%s' (HDF5): attribute '%s' is not a scalar or a list", h->path, name);
  } else if (cls == H5T_STRING) {
    a->kind = rank == 0 ? KR_H5_STRING : KR_H5_STRINGS;
    if (n > 0) st = read_strings(h, at, ftype, n, a);
  } else if (cls == H5T_INTEGER || cls == H5T_FLOAT) {
    a->kind = rank == 0 ? KR_H5_NUMBER : KR_H5_NUMBERS;
    if (n > 0) {
      a->v = kr_malloc(h->ctx, (size_t)n * sizeof *a->v);
      if (!a->v) st = KR_EMEM;
      else if (H5Aread(at, H5T_NATIVE_DOUBLE, a->v) < 0)
        st = fail(h, KR_EFORMAT, "cannot read the attribute '%s'", name);
      a->n = (int)n;
    }
  } else {
    st = kr_fail(h->ctx, KR_EFORMAT, "'%s' (HDF5): attribute '%s' has a type lkeras does not read", h->path, name);
  }
  if (ftype >= 0) H5Tclose(ftype);
  if (sp >= 0) H5Sclose(sp);
  H5Aclose(at);
  if (st != KR_OK) kr_h5_attr_free(h->ctx, a);
  return st;
}

/* ---- datasets ---- */

static hid_t new_dataset(kr_h5 *h, const char *path, hid_t type, hid_t space)
{
  char gbuf[4096];
  const char *last = split(h, path, gbuf, sizeof gbuf);
  if (!last) return -1;
  hid_t g = group_at(h, gbuf, 1);
  if (g < 0) return -1;
  if (H5Lexists(g, last, H5P_DEFAULT) > 0) {
    H5Gclose(g);
    kr_fail(h->ctx, KR_EARG, "'%s' (HDF5): '%s' already exists", h->path, path);
    return -1;
  }
  hid_t d = H5Dcreate2(g, last, type, space, H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT);
  H5Gclose(g);
  if (d < 0) fail(h, KR_EIO, "cannot create the dataset '%s'", path);
  return d;
}

int kr_h5_write_tensor(kr_h5 *h, const char *path, const kr_tensor *t)
{
  hsize_t dims[KR_MAX_DIMS];
  for (int i = 0; i < t->shape.ndim; i++) dims[i] = (hsize_t)t->shape.dim[i];
  hid_t sp = t->shape.ndim == 0 ? H5Screate(H5S_SCALAR) : H5Screate_simple(t->shape.ndim, dims, NULL);
  if (sp < 0) return fail(h, KR_EIO, "cannot make the dataspace of '%s'", path);
  hid_t d = new_dataset(h, path, H5T_IEEE_F32LE, sp);
  int st = KR_OK;
  if (d < 0) {
    st = kr_errcode(h->ctx);
  } else {
    if (kr_tensor_numel(t) > 0 && H5Dwrite(d, H5T_NATIVE_FLOAT, H5S_ALL, H5S_ALL, H5P_DEFAULT, KR_DATA(t)) < 0)
      st = fail(h, KR_EIO, "cannot write the dataset '%s'", path);
    H5Dclose(d);
  }
  H5Sclose(sp);
  return st;
}

int kr_h5_write_int(kr_h5 *h, const char *path, int64_t v)
{
  hid_t sp = H5Screate(H5S_SCALAR);
  hid_t d = new_dataset(h, path, H5T_STD_I64LE, sp);
  int st = KR_OK;
  if (d < 0) {
    st = kr_errcode(h->ctx);
  } else {
    if (H5Dwrite(d, H5T_NATIVE_INT64, H5S_ALL, H5S_ALL, H5P_DEFAULT, &v) < 0)
      st = fail(h, KR_EIO, "cannot write the dataset '%s'", path);
    H5Dclose(d);
  }
  H5Sclose(sp);
  return st;
}

/* The sandbox and the memory bound of a dataset about to be read: no
** external raw storage (its bytes would come from another file) and no
** virtual layout (mapped from other files); its declared size within the
** memory budget; its stored size consistent with the declared one (a
** filtered dataset inflates at most DEFLATE_RATIO times, deflate's limit;
** an unfiltered one stores what it declares, less unwritten chunks of up to
** FILL_SLACK bytes); its chunks no larger than the budget. */
#define DEFLATE_RATIO 1032
#define FILL_SLACK ((uint64_t)1 << 16)
static int check_storage(kr_h5 *h, hid_t d, const char *path, const kr_shape *s, size_t typesize)
{
  hid_t dcpl = H5Dget_create_plist(d);
  if (dcpl < 0) return fail(h, KR_EFORMAT, "cannot read the storage of '%s'", path);
  int next = H5Pget_external_count(dcpl);
  H5D_layout_t layout = H5Pget_layout(dcpl);
  int nfilters = H5Pget_nfilters(dcpl);
  hsize_t chunk[H5S_MAX_RANK];
  int crank = layout == H5D_CHUNKED ? H5Pget_chunk(dcpl, H5S_MAX_RANK, chunk) : 0;
  H5Pclose(dcpl);
  H5Eclear2(H5E_DEFAULT);
  if (next != 0)
    return kr_fail(h->ctx, KR_EFORMAT, "'%s' (HDF5): the dataset '%s' keeps its values in external files: refused "
                   "(a model file must hold its own weights)", h->path, path);
  if (layout == H5D_VIRTUAL || layout < 0)
    return kr_fail(h->ctx, KR_EFORMAT, "'%s' (HDF5): the dataset '%s' has a virtual or unknown layout: refused "
                   "(a model file must hold its own weights)", h->path, path);
  uint64_t numel;
  if (kr_shape_numel_checked(s, &numel) != KR_OK || numel > UINT64_MAX / 8)
    return kr_fail(h->ctx, KR_EFORMAT, "'%s' (HDF5): the dataset '%s' declares too many values", h->path, path);
  uint64_t declared = numel * (uint64_t)typesize, as_f32 = numel * 4;
  uint64_t need = declared > as_f32 ? declared : as_f32;
  char what[300];
  snprintf(what, sizeof what, "the dataset '%s'", path);
  if (kr_mem_check(h->ctx, "load:", h->path, what, need) != KR_OK) return KR_EMEM;
  uint64_t stored = (uint64_t)H5Dget_storage_size(d);
  uint64_t most = stored > (UINT64_MAX - FILL_SLACK) / DEFLATE_RATIO ? UINT64_MAX
                  : stored * (nfilters > 0 ? DEFLATE_RATIO : 1) + FILL_SLACK;
  if (declared > most)
    return kr_fail(h->ctx, KR_EFORMAT, "'%s' (HDF5): the dataset '%s' declares %llu bytes but stores %llu%s: refused",
                   h->path, path, (unsigned long long)declared, (unsigned long long)stored,
                   nfilters > 0 ? " compressed (more than deflate can inflate)" : "");
  if (crank > 0) {
    uint64_t cb = typesize;
    for (int i = 0; i < crank; i++)
      cb = chunk[i] != 0 && cb > UINT64_MAX / chunk[i] ? UINT64_MAX : cb * chunk[i];
    if (kr_mem_check(h->ctx, "load:", h->path, "one chunk", cb) != KR_OK) return KR_EMEM;
  }
  return KR_OK;
}

/* open a numeric dataset and its shape */
static hid_t open_numeric(kr_h5 *h, const char *path, kr_shape *s)
{
  char gbuf[4096];
  const char *last = split(h, path, gbuf, sizeof gbuf);
  if (!last) return -1;
  hid_t g = group_at(h, gbuf, 0);
  if (g < 0) {   /* a link refused on the way keeps its message */
    if (!strstr(kr_errmsg(h->ctx), "refused")) kr_fail(h->ctx, KR_EFORMAT, "'%s' (HDF5): no dataset '%s'", h->path, path);
    return -1;
  }
  if (H5Lexists(g, last, H5P_DEFAULT) <= 0) {
    H5Gclose(g);
    H5Eclear2(H5E_DEFAULT);
    kr_fail(h->ctx, KR_EFORMAT, "'%s' (HDF5): no dataset '%s'", h->path, path);
    return -1;
  }
  if (!hard_link(h, g, last, path, 0)) {
    H5Gclose(g);
    return -1;
  }
  hid_t d = H5Dopen2(g, last, H5P_DEFAULT);
  H5Gclose(g);
  if (d < 0) {
    fail(h, KR_EFORMAT, "'%s' is not a dataset", path);
    return -1;
  }
  hid_t ty = H5Dget_type(d), sp = H5Dget_space(d);
  H5T_class_t cls = ty >= 0 ? H5Tget_class(ty) : H5T_NO_CLASS;
  size_t typesize = ty >= 0 ? H5Tget_size(ty) : 0;
  int rank = sp >= 0 ? H5Sget_simple_extent_ndims(sp) : -1;
  int ok = (cls == H5T_INTEGER || cls == H5T_FLOAT) && rank >= 0 && rank <= KR_MAX_DIMS;
  if (ok) {
    hsize_t dims[KR_MAX_DIMS];
    H5Sget_simple_extent_dims(sp, dims, NULL);
    memset(s, 0, sizeof *s);
    s->ndim = rank;
    for (int i = 0; i < rank; i++) {
      if (dims[i] > ((hsize_t)1 << 40)) ok = 0;
      s->dim[i] = (int64_t)dims[i];
    }
  }
  if (ty >= 0) H5Tclose(ty);
  if (sp >= 0) H5Sclose(sp);
  if (!ok) {
    H5Dclose(d);
    H5Eclear2(H5E_DEFAULT);
    kr_fail(h->ctx, KR_EFORMAT, "'%s' (HDF5): '%s' is not a numeric dataset of rank 0..%d", h->path, path,
            KR_MAX_DIMS);
    return -1;
  }
  if (check_storage(h, d, path, s, typesize) != KR_OK) {
    H5Dclose(d);
    return -1;
  }
  return d;
}

kr_tensor *kr_h5_read_tensor(kr_h5 *h, const char *path)
{
  kr_shape s;
  hid_t d = open_numeric(h, path, &s);
  if (d < 0) return NULL;
  kr_tensor *t = kr_tensor_new(h->ctx, &s);
  if (t && kr_tensor_numel(t) > 0 && H5Dread(d, H5T_NATIVE_FLOAT, H5S_ALL, H5S_ALL, H5P_DEFAULT, KR_DATA(t)) < 0) {
    kr_tensor_release(t);
    t = NULL;
    fail(h, KR_EFORMAT, "cannot read the dataset '%s'", path);
  }
  H5Dclose(d);
  return t;
}

int kr_h5_read_number(kr_h5 *h, const char *path, double *v)
{
  kr_shape s;
  hid_t d = open_numeric(h, path, &s);
  if (d < 0) return kr_errcode(h->ctx);
  int st = KR_OK;
  if (kr_shape_numel(&s) != 1) {
    st = kr_fail(h->ctx, KR_EFORMAT, "'%s' (HDF5): '%s' should hold one number", h->path, path);
  } else if (H5Dread(d, H5T_NATIVE_DOUBLE, H5S_ALL, H5S_ALL, H5P_DEFAULT, v) < 0) {
    st = fail(h, KR_EFORMAT, "cannot read the dataset '%s'", path);
  }
  H5Dclose(d);
  return st;
}
