/*
** test_io.c -- the file readers and writers (src/io): .npy save and load,
** .npy files of every dtype and both orders (bytes built here, as numpy
** writes them), IDX plain and gzip, CSV; and hostile files: every truncated
** prefix, huge or overflowing shapes, lying headers, bad magic, trailing
** bytes, random corruption; and an allocation-failure sweep for each loader
** (fail the n-th allocation: an error, never a crash or a leak); the atomic
** write (src/io/atomic.c) that every writer goes through: the file appears
** whole, a failed write leaves the old file intact and no temporary behind.
** Files are written under a fresh directory in /tmp, removed at the end.
*/
#include "kr.h"
#include "io/io.h"
#include "io/atomic.h"
#include "io/model_file.h"
#include "check.h"

#include <dirent.h>
#include <fcntl.h>
#include <math.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>
#include <zlib.h>

/* ---- helpers: paths, files, expectations ---- */

static char dir[64];

static const char *P(const char *name)
{
  static char buf[4][320];
  static int k;
  k = (k + 1) % 4;
  snprintf(buf[k], sizeof buf[k], "%s/%s", dir, name);
  return buf[k];
}

static void write_file(const char *path, const void *bytes, size_t n)
{
  FILE *f = fopen(path, "wb");
  if (!f) {
    perror(path);
    exit(2);
  }
  if (n) fwrite(bytes, 1, n, f);
  fclose(f);
}

static void write_gz(const char *path, const void *bytes, size_t n)
{
  gzFile g = gzopen(path, "wb9");
  if (!g) {
    perror(path);
    exit(2);
  }
  if (n) gzwrite(g, bytes, (unsigned)n);
  gzclose(g);
}

static unsigned char *read_file(const char *path, size_t *n)
{
  FILE *f = fopen(path, "rb");
  if (!f) return NULL;
  fseek(f, 0, SEEK_END);
  long len = ftell(f);
  fseek(f, 0, SEEK_SET);
  unsigned char *b = malloc((size_t)len + 1);
  *n = fread(b, 1, (size_t)len, f);
  fclose(f);
  return b;
}

static int has(kr_ctx *ctx, const char *s) { return strstr(kr_errmsg(ctx), s) != NULL; }

/* t must be NULL with error `code` and a message holding `text` */
#define EXPECT_FAIL(ctx, t, code, text)                                                  \
  do {                                                                                   \
    kr_tensor *t_ = (t);                                                                 \
    CHECK_MSG(t_ == NULL, "loaded, expected an error with '%s'", text);                  \
    kr_tensor_release(t_);                                                               \
    CHECK_MSG(kr_errcode(ctx) == (code), "code %d, expected %d (%s)", kr_errcode(ctx), (code), \
              kr_errmsg(ctx));                                                           \
    CHECK_MSG(has(ctx, text), "message '%s' lacks '%s'", kr_errmsg(ctx), text);          \
  } while (0)

static int same_values(const kr_tensor *t, const float *want, int64_t n)
{
  if (kr_tensor_numel(t) != n) return 0;
  const float *d = KR_DATA(t);
  for (int64_t i = 0; i < n; i++) {
    if (isnan(want[i]) ? !isnan(d[i]) : d[i] != want[i]) {
      fprintf(stderr, "element %lld: %.9g, expected %.9g\n", (long long)i, d[i], want[i]);
      return 0;
    }
  }
  return 1;
}

static int shape_is(const kr_tensor *t, int ndim, const int64_t *dim)
{
  if (t->shape.ndim != ndim) return 0;
  for (int i = 0; i < ndim; i++)
    if (t->shape.dim[i] != dim[i]) return 0;
  return 1;
}

static uint32_t lcg(uint32_t *s)
{
  *s = *s * 1664525u + 1013904223u;
  return *s >> 8;
}

/* ---- .npy bytes, as numpy writes them ---- */

/* magic, version, header length, dict, blank padding to 64 and '\n', data */
static size_t npy_bytes(unsigned char *out, int major, const char *dict, const void *data, size_t n)
{
  size_t pre = major == 1 ? 10 : 12, dl = strlen(dict);
  size_t hlen = dl + 1;
  hlen += (64 - (pre + hlen) % 64) % 64;
  memcpy(out, "\x93NUMPY", 6);
  out[6] = (unsigned char)major;
  out[7] = 0;
  for (size_t i = 0; i < pre - 8; i++) out[8 + i] = (unsigned char)(hlen >> (8 * i));
  memcpy(out + pre, dict, dl);
  memset(out + pre + dl, ' ', hlen - dl - 1);
  out[pre + hlen - 1] = '\n';
  if (n) memcpy(out + pre + hlen, data, n);
  return pre + hlen + n;
}

static size_t npy_make(unsigned char *out, int major, const char *descr, int fortran,
                       const char *shape, const void *data, size_t n)
{
  char dict[512];
  snprintf(dict, sizeof dict, "{'descr': '%s', 'fortran_order': %s, 'shape': %s, }", descr,
           fortran ? "True" : "False", shape);
  return npy_bytes(out, major, dict, data, n);
}

/* v as `size` bytes of an integer/float kind in the given byte order */
static void encode(unsigned char *out, double v, char kind, int size, int big)
{
  uint64_t u = 0;
  if (kind == 'f' && size == 4) {
    float f = (float)v;
    uint32_t w;
    memcpy(&w, &f, 4);
    u = w;
  } else if (kind == 'f') {
    memcpy(&u, &v, 8);
  } else if (kind == 'i') {
    u = (uint64_t)(int64_t)v;
  } else {
    u = (uint64_t)v;
  }
  for (int k = 0; k < size; k++) {
    unsigned char b = (unsigned char)(u >> (8 * k));
    out[big ? size - 1 - k : k] = b;
  }
}

/* ---- round trip ---- */

static void test_roundtrip(kr_ctx *ctx)
{
  static const int64_t shapes[][9] = {
    {0}, {1, 5}, {2, 3, 4}, {3, 2, 3, 4}, {2, 0, 3}, {8, 1, 2, 1, 2, 1, 2, 1, 3}, {1, 1000},
  };
  for (size_t s = 0; s < sizeof shapes / sizeof shapes[0]; s++) {
    kr_shape sh = kr_shape_make((int)shapes[s][0], &shapes[s][1]);
    kr_tensor *t = kr_tensor_new(ctx, &sh);
    int64_t n = kr_tensor_numel(t);
    for (int64_t i = 0; i < n; i++) KR_DATA(t)[i] = (float)i * 0.25f - 3.0f;
    if (n > 2) {
      KR_DATA(t)[0] = -0.0f;
      KR_DATA(t)[1] = INFINITY;
    }
    const char *path = P("rt.npy");
    CHECK(kr_npy_save(ctx, t, path) == KR_OK);
    kr_tensor *u = kr_npy_load(ctx, path);
    CHECK_MSG(u != NULL, "%s", kr_errmsg(ctx));
    if (u) {
      CHECK(kr_shape_eq(&u->shape, &t->shape));
      CHECK(memcmp(KR_DATA(u), KR_DATA(t), (size_t)n * 4) == 0);
      kr_tensor_release(u);
    }
    kr_tensor_release(t);
  }

  /* the bytes are numpy's: v1.0, '<f4', data at a multiple of 64 */
  int64_t d[2] = {3, 4};
  kr_shape sh = kr_shape_make(2, d);
  kr_tensor *t = kr_tensor_full(ctx, &sh, 1.5f);
  CHECK(kr_npy_save(ctx, t, P("rt.npy")) == KR_OK);
  size_t n = 0;
  unsigned char *b = read_file(P("rt.npy"), &n);
  CHECK(b != NULL && n == 128 + 48);
  if (b && n >= 132) {
    CHECK(memcmp(b, "\x93NUMPY\x01\x00", 8) == 0);
    CHECK(b[8] == 118 && b[9] == 0);
    const char *dict = "{'descr': '<f4', 'fortran_order': False, 'shape': (3, 4), }";
    CHECK(memcmp(b + 10, dict, strlen(dict)) == 0);
    CHECK(b[127] == '\n' && b[126] == ' ' && b[70] == ' ');
    CHECK(b[128] == 0 && b[129] == 0 && b[130] == 0xc0 && b[131] == 0x3f);   /* 1.5f LE */
  }
  free(b);

  /* 1-d and 0-d headers */
  int64_t five = 5;
  kr_shape s1 = kr_shape_make(1, &five), s0 = kr_shape_make(0, NULL);
  kr_tensor *v = kr_tensor_zeros(ctx, &s1), *z = kr_tensor_full(ctx, &s0, 7.0f);
  CHECK(kr_npy_save(ctx, v, P("v.npy")) == KR_OK);
  CHECK(kr_npy_save(ctx, z, P("z.npy")) == KR_OK);
  b = read_file(P("v.npy"), &n);
  CHECK(b && strstr((char *)b + 10, "'shape': (5,), }") != NULL);
  free(b);
  b = read_file(P("z.npy"), &n);
  CHECK(b && strstr((char *)b + 10, "'shape': (), }") != NULL && n == 128 + 4);
  free(b);
  kr_tensor *zl = kr_npy_load(ctx, P("z.npy"));
  CHECK(zl && zl->shape.ndim == 0 && KR_DATA(zl)[0] == 7.0f);
  kr_tensor_release(zl);

  /* saving replaces the file whole and leaves no temporary file behind */
  CHECK(kr_npy_save(ctx, v, P("rt.npy")) == KR_OK);
  kr_tensor *r = kr_npy_load(ctx, P("rt.npy"));
  CHECK(r && r->shape.ndim == 1 && r->shape.dim[0] == 5);
  kr_tensor_release(r);
  DIR *dd = opendir(dir);
  struct dirent *e;
  int tmps = 0;
  while (dd && (e = readdir(dd)) != NULL) tmps += strstr(e->d_name, ".tmp") != NULL;
  if (dd) closedir(dd);
  CHECK(tmps == 0);

  /* a folder that does not exist: an error naming the path */
  CHECK(kr_npy_save(ctx, t, "/nonexistent-dir/x.npy") == KR_EIO);
  CHECK_MSG(has(ctx, "save: '/nonexistent-dir/x.npy'") && has(ctx, "No such file or directory"), "%s",
            kr_errmsg(ctx));
  kr_tensor_release(t);
  kr_tensor_release(v);
  kr_tensor_release(z);
}

/* ---- .npy files of every dtype, both byte orders, both memory orders ---- */

static void test_npy_dtypes(kr_ctx *ctx)
{
  static const struct { char kind; int size; double v[8]; } cases[] = {
    {'f', 4, {0, 1.5, -2.25, 3e38, -1e-30, 7, 8, 9}},
    {'f', 8, {0, 1.5, -2.25, 1e300, -1e-30, 0.1, 1e-320, -3}},
    {'i', 1, {0, 1, -1, 127, -128, 42, -7, 5}},
    {'i', 2, {0, 1, -1, 32767, -32768, 1000, -7, 5}},
    {'i', 4, {0, 1, -1, 2147483647, -2147483648.0, -(33554432.0 + 3), 16777217, 5}},
    {'i', 8, {0, 1, -1, 9007199254740993.0, -9007199254740993.0, 42, -7, 5}},
    {'u', 1, {0, 1, 255, 128, 127, 42, 7, 5}},
    {'u', 2, {0, 1, 65535, 32768, 127, 42, 7, 5}},
    {'u', 4, {0, 1, 4294967295.0, 2147483648.0, 127, 42, 7, 5}},
    {'u', 8, {0, 1, 18446744073709549568.0, 9223372036854775808.0, 127, 42, 7, 5}},
    {'b', 1, {0, 1, 0, 1, 1, 0, 0, 1}},
  };
  unsigned char data[64], file[512];
  for (size_t c = 0; c < sizeof cases / sizeof cases[0]; c++) {
    for (int big = 0; big < 2; big++) {
      int size = cases[c].size;
      char descr[8];
      snprintf(descr, sizeof descr, "%c%c%d", size == 1 ? '|' : big ? '>' : '<', cases[c].kind, size);
      if (size == 1 && big) snprintf(descr, sizeof descr, "%c%c1", cases[c].kind == 'b' ? '|' : '<', cases[c].kind);
      float want[8];
      for (int i = 0; i < 8; i++) {
        encode(data + i * size, cases[c].v[i], cases[c].kind == 'b' ? 'u' : cases[c].kind, size, big);
        double v = cases[c].v[i];
        want[i] = v > 3.4028234663852886e38 ? INFINITY : (float)v;
        if (cases[c].kind == 'i' && size == 8) want[i] = (float)(int64_t)v;
      }
      for (int major = 1; major <= 3; major++) {
        size_t n = npy_make(file, major, descr, 0, "(2, 4)", data, (size_t)(8 * size));
        write_file(P("d.npy"), file, n);
        kr_tensor *t = kr_npy_load(ctx, P("d.npy"));
        CHECK_MSG(t != NULL, "%s v%d: %s", descr, major, kr_errmsg(ctx));
        if (t) {
          CHECK_MSG(shape_is(t, 2, (int64_t[]){2, 4}) && same_values(t, want, 8), "dtype %s", descr);
          kr_tensor_release(t);
        }
      }
    }
  }

  /* the exact int64 sign extension: rounding once, from the exact value */
  {
    unsigned char raw[8];
    encode(raw, -(33554432.0 + 3), 'i', 8, 0);
    size_t n = npy_make(file, 1, "<i8", 0, "(1,)", raw, 8);
    write_file(P("d.npy"), file, n);
    kr_tensor *t = kr_npy_load(ctx, P("d.npy"));
    CHECK(t && KR_DATA(t)[0] == (float)(-(int64_t)33554435));
    kr_tensor_release(t);
  }

  /* float16, both orders: zero, one, -2, 0.5, max, smallest subnormal, inf, -inf, nan */
  static const uint16_t half[9] = {0x0000, 0x3c00, 0xc000, 0x3800, 0x7bff, 0x0001, 0x7c00, 0xfc00, 0x7e00};
  const float hwant[9] = {0, 1, -2, 0.5f, 65504, 5.9604644775390625e-08f, INFINITY, -INFINITY, NAN};
  for (int big = 0; big < 2; big++) {
    unsigned char raw[18];
    for (int i = 0; i < 9; i++) encode(raw + 2 * i, half[i], 'u', 2, big);
    size_t n = npy_make(file, 1, big ? ">f2" : "<f2", 0, "(9,)", raw, sizeof raw);
    write_file(P("h.npy"), file, n);
    kr_tensor *t = kr_npy_load(ctx, P("h.npy"));
    CHECK_MSG(t && same_values(t, hwant, 9), "f2 big=%d", big);
    kr_tensor_release(t);
  }

  /* Fortran order: (2, 3) and (2, 3, 4), file order has the first axis fastest */
  for (int nd = 2; nd <= 3; nd++) {
    int64_t dims[3] = {2, 3, nd == 3 ? 4 : 1};
    int64_t nel = dims[0] * dims[1] * dims[2];
    double fdata[24];
    float want[24];
    for (int i = 0; i < dims[0]; i++)
      for (int j = 0; j < dims[1]; j++)
        for (int k = 0; k < dims[2]; k++) {
          double v = 100 * i + 10 * j + k;
          want[(i * dims[1] + j) * dims[2] + k] = (float)v;
          fdata[i + dims[0] * (j + dims[1] * k)] = v;
        }
    unsigned char raw[24 * 8];
    for (int64_t i = 0; i < nel; i++) encode(raw + 8 * i, fdata[i], 'f', 8, 1);
    size_t n = npy_make(file, 1, ">f8", 1, nd == 3 ? "(2, 3, 4)" : "(2, 3)", raw, (size_t)nel * 8);
    write_file(P("f.npy"), file, n);
    kr_tensor *t = kr_npy_load(ctx, P("f.npy"));
    CHECK_MSG(t && shape_is(t, nd, dims) && same_values(t, want, nel), "fortran %dd: %s", nd,
              t ? "" : kr_errmsg(ctx));
    kr_tensor_release(t);
  }

  /* a larger Fortran array crossing read chunks: (50, 70) of <i2 */
  {
    int64_t dims[2] = {50, 70};
    unsigned char *raw = malloc(50 * 70 * 2);
    float *want = malloc(50 * 70 * sizeof(float));
    unsigned char *big = malloc(50 * 70 * 2 + 128);
    for (int i = 0; i < 50; i++)
      for (int j = 0; j < 70; j++) {
        int v = i * 70 + j - 1000;
        want[i * 70 + j] = (float)v;
        encode(raw + 2 * (i + 50 * j), v, 'i', 2, 0);
      }
    size_t n = npy_make(big, 1, "<i2", 1, "(50, 70)", raw, 50 * 70 * 2);
    write_file(P("f.npy"), big, n);
    kr_tensor *t = kr_npy_load(ctx, P("f.npy"));
    CHECK(t && shape_is(t, 2, dims) && same_values(t, want, 50 * 70));
    kr_tensor_release(t);
    free(raw);
    free(want);
    free(big);
  }

  /* headers numpy could write, or Python would read: other spellings */
  static const char *dicts[] = {
    "{'descr': '<f4', 'fortran_order': False, 'shape': (2, 1), }",
    "{'shape': (2, 1), 'fortran_order': False, 'descr': '<f4'}",
    "{\"descr\": \"<f4\", \"fortran_order\": False, \"shape\": (2L, 1L)}",
    "{'descr':'<f4','fortran_order':False,'shape':(2,1,)}",
    " {\n'descr' : '<f4' ,\t'fortran_order' : True , 'shape' : ( 2 , 1 ) , } ",
  };
  float two[2] = {1.25f, -8};
  const float want2[2] = {1.25f, -8};
  for (size_t i = 0; i < sizeof dicts / sizeof dicts[0]; i++) {
    size_t n = npy_bytes(file, 1, dicts[i], two, 8);
    write_file(P("s.npy"), file, n);
    kr_tensor *t = kr_npy_load(ctx, P("s.npy"));
    CHECK_MSG(t && shape_is(t, 2, (int64_t[]){2, 1}) && same_values(t, want2, 2), "dict %zu: %s", i,
              t ? "" : kr_errmsg(ctx));
    kr_tensor_release(t);
  }

  /* empty arrays and scalars */
  {
    size_t n = npy_make(file, 1, "<f8", 0, "(0, 5)", NULL, 0);
    write_file(P("e.npy"), file, n);
    kr_tensor *t = kr_npy_load(ctx, P("e.npy"));
    CHECK(t && shape_is(t, 2, (int64_t[]){0, 5}));
    kr_tensor_release(t);
    unsigned char raw[8];
    encode(raw, -3.5, 'f', 8, 0);
    n = npy_make(file, 1, "<f8", 0, "()", raw, 8);
    write_file(P("e.npy"), file, n);
    t = kr_npy_load(ctx, P("e.npy"));
    CHECK(t && t->shape.ndim == 0 && KR_DATA(t)[0] == -3.5f);
    kr_tensor_release(t);
  }
}

/* ---- hostile .npy files ---- */

static void npy_dict_fails(kr_ctx *ctx, const char *dict, size_t ndata, const char *text)
{
  unsigned char file[1024], data[256] = {0};
  size_t n = npy_bytes(file, 1, dict, data, ndata);
  write_file(P("bad.npy"), file, n);
  EXPECT_FAIL(ctx, kr_npy_load(ctx, P("bad.npy")), KR_EFORMAT, text);
}

static void test_npy_hostile(kr_ctx *ctx)
{
  unsigned char file[4096], data[512];
  const char *path = P("bad.npy");
  char want[300];
  size_t before = kr_mem_in_use(ctx);

  /* every prefix of valid files fails cleanly */
  for (int major = 1; major <= 3; major += 2) {
    for (int i = 0; i < 12; i++) encode(data + 8 * i, i, 'f', 8, 0);
    size_t n = npy_make(file, major, "<f8", major == 3, "(3, 4)", data, 96);
    for (size_t len = 0; len < n; len++) {
      write_file(path, file, len);
      kr_tensor *t = kr_npy_load(ctx, path);
      CHECK_MSG(t == NULL, "prefix of %zu bytes loaded", len);
      kr_tensor_release(t);
      CHECK(kr_errcode(ctx) == KR_EFORMAT && has(ctx, path));
    }
    write_file(path, file, n);
    kr_tensor *t = kr_npy_load(ctx, path);
    CHECK(t != NULL);
    kr_tensor_release(t);
  }
  snprintf(want, sizeof want, "load: '%s': truncated: shape (3, 4) of '<f8' needs 96 bytes of data, the file has 95", path);
  {
    size_t n = npy_make(file, 1, "<f8", 0, "(3, 4)", data, 95);
    write_file(path, file, n);
    EXPECT_FAIL(ctx, kr_npy_load(ctx, path), KR_EFORMAT, want);
  }

  /* magic, version */
  write_file(path, "PK\x03\x04 a zip file", 15);
  snprintf(want, sizeof want, "load: '%s' is not a .npy file (bad magic)", path);
  EXPECT_FAIL(ctx, kr_npy_load(ctx, path), KR_EFORMAT, want);
  write_file(path, "\x93NUMPX\x01\x00", 8);
  EXPECT_FAIL(ctx, kr_npy_load(ctx, path), KR_EFORMAT, "(bad magic)");
  write_file(path, "", 0);
  EXPECT_FAIL(ctx, kr_npy_load(ctx, path), KR_EFORMAT, "is not a .npy file (it is empty)");
  write_file(path, "\x93NU", 3);
  EXPECT_FAIL(ctx, kr_npy_load(ctx, path), KR_EFORMAT, "truncated");
  {
    size_t n = npy_make(file, 1, "<f4", 0, "(1,)", data, 4);
    file[6] = 4;
    write_file(path, file, n);
    EXPECT_FAIL(ctx, kr_npy_load(ctx, path), KR_EFORMAT, "unsupported .npy version 4.0");
    file[6] = 1;
    file[7] = 1;
    write_file(path, file, n);
    EXPECT_FAIL(ctx, kr_npy_load(ctx, path), KR_EFORMAT, "unsupported .npy version 1.1");
  }

  /* header length lies: longer than the file, shorter than the dict, huge */
  {
    size_t n = npy_make(file, 1, "<f4", 0, "(2,)", data, 8);
    file[8] = 0xff;
    file[9] = 0x7f;
    write_file(path, file, n);
    EXPECT_FAIL(ctx, kr_npy_load(ctx, path), KR_EFORMAT, "truncated: the header says 32767 bytes");
    file[8] = 20;
    file[9] = 0;
    write_file(path, file, n);
    EXPECT_FAIL(ctx, kr_npy_load(ctx, path), KR_EFORMAT, "bad header");
    n = npy_make(file, 2, "<f4", 0, "(2,)", data, 8);
    file[8] = 0xff, file[9] = 0xff, file[10] = 0xff, file[11] = 0xff;
    write_file(path, file, n);
    EXPECT_FAIL(ctx, kr_npy_load(ctx, path), KR_EFORMAT, "header length 4294967295 is too large");
    /* a length that swallows the data: the data then reads as header text */
    n = npy_make(file, 1, "<f4", 0, "(2,)", data, 8);
    file[8] = (unsigned char)(n - 10);
    write_file(path, file, n);
    EXPECT_FAIL(ctx, kr_npy_load(ctx, path), KR_EFORMAT, "unexpected text after the dict");
  }

  /* shapes: huge, overflowing, negative, too many axes, not a tuple */
  size_t peak = kr_mem_peak(ctx);
  npy_dict_fails(ctx, "{'descr': '<f4', 'fortran_order': False, 'shape': (1099511627776,), }", 16,
                 "truncated: shape (1099511627776,) of '<f4' needs 4398046511104 bytes of data, the file has 16");
  npy_dict_fails(ctx, "{'descr': '<f8', 'fortran_order': False, 'shape': (4294967296, 4294967296, 4294967296), }", 0,
                 "shape (4294967296, 4294967296, 4294967296) is too large");
  npy_dict_fails(ctx, "{'descr': '<f8', 'fortran_order': False, 'shape': (9223372036854775807, 2), }", 0,
                 "is too large");
  npy_dict_fails(ctx, "{'descr': '<f8', 'fortran_order': False, 'shape': (99999999999999999999,), }", 0,
                 "dimension too large");
  npy_dict_fails(ctx, "{'descr': '<f4', 'fortran_order': False, 'shape': (-1, 3), }", 12, "negative dimension");
  npy_dict_fails(ctx, "{'descr': '<f4', 'fortran_order': False, 'shape': (1, 1, 1, 1, 1, 1, 1, 1, 1), }", 4,
                 "more than 8 dimensions");
  npy_dict_fails(ctx, "{'descr': '<f4', 'fortran_order': False, 'shape': [2], }", 8, "expected a tuple");
  npy_dict_fails(ctx, "{'descr': '<f4', 'fortran_order': False, 'shape': (2 3), }", 24, "expected ',' or ')'");
  npy_dict_fails(ctx, "{'descr': '<f4', 'fortran_order': False, 'shape': (2,", 8, "expected a dimension");
  CHECK(kr_mem_peak(ctx) == peak);   /* nothing big was allocated */

  /* a zero axis makes the rest irrelevant; the data must still match */
  npy_dict_fails(ctx, "{'descr': '<f4', 'fortran_order': False, 'shape': (0, 4294967296, 4294967296, 4294967296), }",
                 4, "4 bytes of unexpected data after the array");

  /* the data does not fit the shape */
  npy_dict_fails(ctx, "{'descr': '<f4', 'fortran_order': False, 'shape': (2, 2), }", 17,
                 "1 bytes of unexpected data after the array (shape (2, 2) of '<f4', 16 bytes)");
  npy_dict_fails(ctx, "{'descr': '<f4', 'fortran_order': False, 'shape': (2, 2), }", 15,
                 "needs 16 bytes of data, the file has 15");

  /* dtypes */
  npy_dict_fails(ctx, "{'descr': '<c8', 'fortran_order': False, 'shape': (1,), }", 8, "unsupported dtype '<c8'");
  npy_dict_fails(ctx, "{'descr': '<U3', 'fortran_order': False, 'shape': (1,), }", 12, "unsupported dtype '<U3'");
  npy_dict_fails(ctx, "{'descr': '|O', 'fortran_order': False, 'shape': (1,), }", 8, "unsupported dtype '|O'");
  npy_dict_fails(ctx, "{'descr': '|f4', 'fortran_order': False, 'shape': (1,), }", 4, "unsupported dtype '|f4'");
  npy_dict_fails(ctx, "{'descr': '<f3', 'fortran_order': False, 'shape': (1,), }", 3, "unsupported dtype '<f3'");
  npy_dict_fails(ctx, "{'descr': '<f', 'fortran_order': False, 'shape': (1,), }", 4, "unsupported dtype '<f'");
  npy_dict_fails(ctx, "{'descr': [('a', '<f4')], 'fortran_order': False, 'shape': (1,), }", 4,
                 "structured dtypes are not supported");
  npy_dict_fails(ctx, "{'descr': '<f4xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx', 'fortran_order': False, 'shape': (1,), }",
                 4, "string too long");

  /* the dict itself */
  npy_dict_fails(ctx, "{'descr': '<f4', 'shape': (1,), }", 4, "no 'fortran_order' key");
  npy_dict_fails(ctx, "{'descr': '<f4', 'fortran_order': False}", 4, "no 'shape' key");
  npy_dict_fails(ctx, "{'fortran_order': False, 'shape': (1,)}", 4, "no 'descr' key");
  npy_dict_fails(ctx, "{'descr': '<f4', 'fortran_order': False, 'shape': (1,), 'x': 1}", 4,
                 "unexpected or repeated key 'x'");
  npy_dict_fails(ctx, "{'descr': '<f4', 'descr': '<f4', 'fortran_order': False, 'shape': (1,)}", 4,
                 "unexpected or repeated key 'descr'");
  npy_dict_fails(ctx, "{'descr': '<f4', 'fortran_order': false, 'shape': (1,)}", 4, "expected True or False");
  npy_dict_fails(ctx, "{'descr': '<f4', 'fortran_order': False, 'shape': (1,)} junk", 4,
                 "unexpected text after the dict");
  npy_dict_fails(ctx, "{'descr': '<f4 , 'fortran_order': False, 'shape': (1,)}", 4, "unsupported dtype '<f4 , '");
  npy_dict_fails(ctx, "{'descr\": '<f4', 'fortran_order': False, 'shape': (1,)}", 4, "expected ':' at character 12");
  npy_dict_fails(ctx, "{'desc\\r': '<f4', 'fortran_order': False, 'shape': (1,)}", 4, "bad character in a string");
  npy_dict_fails(ctx, "{'descr' '<f4', 'fortran_order': False, 'shape': (1,)}", 4, "expected ':'");
  npy_dict_fails(ctx, "{'descr': '<f4' 'fortran_order': False, 'shape': (1,)}", 4, "expected ',' or '}'");
  npy_dict_fails(ctx, "('descr', '<f4')", 4, "expected '{'");
  npy_dict_fails(ctx, "", 4, "expected '{'");
  npy_dict_fails(ctx, "{'descr", 4, "string too long at character 34");
  {
    /* a NUL byte inside the header */
    size_t n = npy_make(file, 1, "<f4", 0, "(1,)", data, 4);
    file[12] = '\0';
    write_file(path, file, n);
    EXPECT_FAIL(ctx, kr_npy_load(ctx, path), KR_EFORMAT, "bad header");
  }

  /* paths that are not files */
  EXPECT_FAIL(ctx, kr_npy_load(ctx, "/nonexistent/none.npy"), KR_EIO,
              "load: '/nonexistent/none.npy': cannot open (No such file or directory)");
  EXPECT_FAIL(ctx, kr_npy_load(ctx, dir), KR_EIO, "cannot open (Is a directory)");
  /* a device is refused before a byte is read (it could block or never end) */
  EXPECT_FAIL(ctx, kr_npy_load(ctx, "/dev/null"), KR_EIO, "not a regular file (a character device)");

  /* random corruption of a valid file: whatever happens, no crash or leak */
  {
    unsigned char orig[1024];
    for (int i = 0; i < 24; i++) encode(data + 4 * i, i * 1.5, 'f', 4, 0);
    size_t n = npy_make(orig, 1, "<f4", 0, "(2, 3, 4)", data, 96);
    uint32_t seed = 12345;
    int loaded = 0;
    for (int iter = 0; iter < 3000; iter++) {
      memcpy(file, orig, n);
      int flips = 1 + (int)(lcg(&seed) % 4);
      for (int k = 0; k < flips; k++) {
        size_t at = lcg(&seed) % (iter % 2 ? 64 : n);   /* half the time in the header */
        file[at] = (unsigned char)lcg(&seed);
      }
      write_file(path, file, n);
      kr_tensor *t = kr_npy_load(ctx, path);
      if (t) {
        loaded++;
        CHECK(kr_tensor_numel(t) * 4 <= 96);
        kr_tensor_release(t);
      } else {
        CHECK(kr_errcode(ctx) != KR_OK && kr_errmsg(ctx)[0] != '\0');
      }
    }
    CHECK(loaded > 0);
  }
  CHECK(kr_mem_in_use(ctx) == before);
}

/* ---- IDX ---- */

static size_t idx_make(unsigned char *out, int type, int ndim, const uint32_t *dims, const void *data, size_t n)
{
  out[0] = 0, out[1] = 0, out[2] = (unsigned char)type, out[3] = (unsigned char)ndim;
  for (int i = 0; i < ndim; i++) encode(out + 4 + 4 * i, dims[i], 'u', 4, 1);
  if (n) memcpy(out + 4 + 4 * ndim, data, n);
  return 4 + 4 * (size_t)ndim + n;
}

static void test_idx(kr_ctx *ctx)
{
  static unsigned char file[72100], data[72000];
  float want[9000];
  const char *plain = P("x.idx"), *gz = P("x.idx.gz");
  size_t before = kr_mem_in_use(ctx);

  /* every type, plain and gzip; sizes that cross read chunks */
  static const struct { int type; char kind; int size; } types[] = {
    {0x08, 'u', 1}, {0x09, 'i', 1}, {0x0B, 'i', 2}, {0x0C, 'i', 4}, {0x0D, 'f', 4}, {0x0E, 'f', 8},
  };
  uint32_t seed = 7;
  for (size_t c = 0; c < sizeof types / sizeof types[0]; c++) {
    uint32_t dims[3] = {10, 30, 30};
    int size = types[c].size;
    for (int i = 0; i < 9000; i++) {
      double v;
      switch (types[c].type) {
      case 0x08: v = lcg(&seed) % 256; break;
      case 0x09: v = (double)(lcg(&seed) % 256) - 128; break;
      case 0x0B: v = (double)(lcg(&seed) % 65536) - 32768; break;
      case 0x0C: v = (double)(int32_t)(lcg(&seed) * 511u); break;
      default: v = ((double)lcg(&seed) - 8e6) / 1024.0; break;
      }
      if (i == 0 && types[c].type == 0x0C) v = -2147483648.0;
      if (i == 1 && types[c].type == 0x0C) v = -(33554432.0 + 3);
      encode(data + size * i, v, types[c].kind, size, 1);
      want[i] = (float)v;
    }
    size_t n = idx_make(file, types[c].type, 3, dims, data, (size_t)9000 * size);
    write_file(plain, file, n);
    write_gz(gz, file, n);
    for (int g = 0; g < 2; g++) {
      kr_tensor *t = kr_idx_load(ctx, g ? gz : plain);
      CHECK_MSG(t && shape_is(t, 3, (int64_t[]){10, 30, 30}) && same_values(t, want, 9000),
                "IDX type 0x%02x gzip=%d: %s", types[c].type, g, t ? "" : kr_errmsg(ctx));
      kr_tensor_release(t);
    }
  }

  /* the MNIST label layout, 1-d */
  {
    uint32_t d1 = 5;
    unsigned char lab[5] = {5, 0, 4, 1, 9};
    const float lw[5] = {5, 0, 4, 1, 9};
    size_t n = idx_make(file, 0x08, 1, &d1, lab, 5);
    write_gz(gz, file, n);
    kr_tensor *t = kr_idx_load(ctx, gz);
    CHECK(t && shape_is(t, 1, (int64_t[]){5}) && same_values(t, lw, 5));
    kr_tensor_release(t);
  }

  /* every prefix of a plain and of a gzip file fails cleanly */
  {
    uint32_t dims[2] = {40, 50};
    for (int i = 0; i < 2000; i++) data[i] = (unsigned char)(lcg(&seed) % 7);
    size_t n = idx_make(file, 0x08, 2, dims, data, 2000);
    for (size_t len = 0; len < n; len++) {
      write_file(plain, file, len);
      kr_tensor *t = kr_idx_load(ctx, plain);
      CHECK_MSG(t == NULL, "plain prefix of %zu bytes loaded", len);
      kr_tensor_release(t);
      CHECK(kr_errcode(ctx) == KR_EFORMAT && has(ctx, plain));
    }
    write_gz(gz, file, n);
    size_t zn = 0;
    unsigned char *z = read_file(gz, &zn);
    CHECK(z != NULL && zn > 100);
    for (size_t len = 0; z && len < zn; len++) {
      write_file(gz, z, len);
      kr_tensor *t = kr_idx_load(ctx, gz);
      CHECK_MSG(t == NULL, "gzip prefix of %zu of %zu bytes loaded", len, zn);
      kr_tensor_release(t);
      CHECK_MSG(kr_errcode(ctx) != KR_OK && has(ctx, gz), "%s", kr_errmsg(ctx));
    }
    if (z) {
      write_file(gz, z, zn);
      kr_tensor *t = kr_idx_load(ctx, gz);
      CHECK(t != NULL);
      kr_tensor_release(t);

      /* a flipped byte in the compressed data or the checksum */
      z[zn / 2] ^= 0x55;
      write_file(gz, z, zn);
      t = kr_idx_load(ctx, gz);
      CHECK(t == NULL && kr_errcode(ctx) == KR_EFORMAT);
      kr_tensor_release(t);
      z[zn / 2] ^= 0x55;
      z[zn - 6] ^= 0x01;   /* CRC32 of the trailer */
      write_file(gz, z, zn);
      EXPECT_FAIL(ctx, kr_idx_load(ctx, gz), KR_EFORMAT, "corrupt gzip data (incorrect data check)");
      free(z);
    }
  }

  /* the messages of a truncated and an overlong file */
  {
    char want_msg[300];
    uint32_t dims[3] = {60000, 28, 28};
    memset(data, 1, 1000);
    size_t n = idx_make(file, 0x08, 3, dims, data, 1000);
    write_file(plain, file, n);
    snprintf(want_msg, sizeof want_msg, "IDX '%s': truncated: expected 47040000 bytes of data, got 1000", plain);
    EXPECT_FAIL(ctx, kr_idx_load(ctx, plain), KR_EFORMAT, want_msg);
    write_gz(gz, file, n);
    snprintf(want_msg, sizeof want_msg,
             "IDX '%s': truncated: shape (60000, 28, 28) needs 47040000 bytes of data, more than a ", gz);
    EXPECT_FAIL(ctx, kr_idx_load(ctx, gz), KR_EFORMAT, want_msg);
    dims[0] = 100;   /* 78400 bytes could come from 1000 bytes of random data: read until it ends */
    for (int i = 0; i < 1000; i++) data[i] = (unsigned char)lcg(&seed);
    n = idx_make(file, 0x08, 3, dims, data, 1000);
    write_gz(gz, file, n);
    snprintf(want_msg, sizeof want_msg, "IDX '%s': truncated: expected 78400 bytes of data, got 1000", gz);
    EXPECT_FAIL(ctx, kr_idx_load(ctx, gz), KR_EFORMAT, want_msg);

    uint32_t d2[2] = {2, 3};
    n = idx_make(file, 0x08, 2, d2, data, 10);
    write_file(plain, file, n);
    EXPECT_FAIL(ctx, kr_idx_load(ctx, plain), KR_EFORMAT, "4 bytes of unexpected data after the 6 bytes of shape (2, 3)");
    write_gz(gz, file, n);
    EXPECT_FAIL(ctx, kr_idx_load(ctx, gz), KR_EFORMAT, "unexpected data after the 6 bytes of shape (2, 3)");
  }

  /* huge declared shapes: refused before any allocation */
  {
    size_t peak = kr_mem_peak(ctx);
    uint32_t dims[3] = {4294967295u, 4294967295u, 4294967295u};
    size_t n = idx_make(file, 0x0E, 3, dims, data, 8);
    write_file(plain, file, n);
    EXPECT_FAIL(ctx, kr_idx_load(ctx, plain), KR_EFORMAT, "shape (4294967295, 4294967295, 4294967295) is too large");
    uint32_t d2[2] = {1048576, 1048576};
    n = idx_make(file, 0x08, 2, d2, data, 8);
    write_file(plain, file, n);
    EXPECT_FAIL(ctx, kr_idx_load(ctx, plain), KR_EFORMAT, "truncated: expected 1099511627776 bytes of data, got 8");
    write_gz(gz, file, n);
    EXPECT_FAIL(ctx, kr_idx_load(ctx, gz), KR_EFORMAT, "needs 1099511627776 bytes of data, more than a");
    CHECK(kr_mem_peak(ctx) == peak);
    /* a zero axis: an empty tensor */
    uint32_t d3[3] = {0, 4294967295u, 4294967295u};
    n = idx_make(file, 0x08, 3, d3, data, 0);
    write_file(plain, file, n);
    kr_tensor *t = kr_idx_load(ctx, plain);
    CHECK(t && kr_tensor_numel(t) == 0 && t->shape.ndim == 3);
    kr_tensor_release(t);
  }

  /* magic, type, dimensions */
  {
    char m[200];
    write_file(plain, "\x01\x00\x08\x01\x00\x00\x00\x01\x07", 9);
    snprintf(m, sizeof m, "IDX '%s' is not an IDX file (bad magic: expected 00 00 <type> <ndim>, got 01 00 08 01)", plain);
    EXPECT_FAIL(ctx, kr_idx_load(ctx, plain), KR_EFORMAT, m);
    write_file(plain, "\x00\x00\x0a\x01\x00\x00\x00\x01\x07", 9);
    EXPECT_FAIL(ctx, kr_idx_load(ctx, plain), KR_EFORMAT, "unknown data type 0x0a");
    write_file(plain, "\x00\x00\x08\x00", 4);
    EXPECT_FAIL(ctx, kr_idx_load(ctx, plain), KR_EFORMAT, "0 dimensions (expected 1 to 8)");
    write_file(plain, "\x00\x00\x08\x09", 4);
    EXPECT_FAIL(ctx, kr_idx_load(ctx, plain), KR_EFORMAT, "9 dimensions (expected 1 to 8)");
    write_file(plain, "", 0);
    EXPECT_FAIL(ctx, kr_idx_load(ctx, plain), KR_EFORMAT, "is not an IDX file (it is empty)");
    write_gz(gz, "", 0);
    EXPECT_FAIL(ctx, kr_idx_load(ctx, gz), KR_EFORMAT, "is not an IDX file (it is empty)");
    write_gz(gz, "hello world", 11);
    EXPECT_FAIL(ctx, kr_idx_load(ctx, gz), KR_EFORMAT, "bad magic");
    write_file(plain, "\x1f\x8b\x08\x00garbage that is not deflate", 31);
    EXPECT_FAIL(ctx, kr_idx_load(ctx, plain), KR_EFORMAT, "gzip");
  }

  /* paths that are not files */
  EXPECT_FAIL(ctx, kr_idx_load(ctx, "/nonexistent/t10k.idx"), KR_EIO,
              "IDX '/nonexistent/t10k.idx': cannot open (No such file or directory)");
  EXPECT_FAIL(ctx, kr_idx_load(ctx, dir), KR_EIO, "cannot open (Is a directory)");
  EXPECT_FAIL(ctx, kr_idx_load(ctx, "/dev/null"), KR_EIO, "not a regular file (a character device)");

  /* random corruption of plain and gzip files */
  {
    uint32_t dims[2] = {6, 7};
    for (int i = 0; i < 42; i++) encode(data + 2 * i, i - 20, 'i', 2, 1);
    unsigned char orig[200];
    size_t n = idx_make(orig, 0x0B, 2, dims, data, 84);
    write_gz(gz, orig, n);
    size_t zn = 0;
    unsigned char *z = read_file(gz, &zn);
    uint32_t s2 = 99;
    for (int iter = 0; iter < 2000; iter++) {
      int g = iter % 2;
      size_t len = g ? zn : n;
      memcpy(file, g ? z : orig, len);
      int flips = 1 + (int)(lcg(&s2) % 3);
      for (int k = 0; k < flips; k++) file[lcg(&s2) % (iter % 4 < 2 ? 28 : len)] = (unsigned char)lcg(&s2);
      write_file(plain, file, len);
      kr_tensor *t = kr_idx_load(ctx, plain);
      if (t) kr_tensor_release(t);
      else CHECK(kr_errcode(ctx) != KR_OK && kr_errmsg(ctx)[0] != '\0');
    }
    free(z);
  }
  CHECK(kr_mem_in_use(ctx) == before);
}

/* ---- CSV ---- */

static kr_tensor *csv_text(kr_ctx *ctx, const char *text, char delim, int skip)
{
  write_file(P("t.csv"), text, strlen(text));
  return kr_csv_load(ctx, P("t.csv"), delim, skip);
}

static void csv_ok(kr_ctx *ctx, const char *text, char delim, int skip, int64_t rows, int64_t cols,
                   const float *want)
{
  kr_tensor *t = csv_text(ctx, text, delim, skip);
  CHECK_MSG(t != NULL, "'%s': %s", text, kr_errmsg(ctx));
  if (!t) return;
  CHECK_MSG(shape_is(t, 2, (int64_t[]){rows, cols}), "'%s': shape (%lld, %lld)", text,
            (long long)t->shape.dim[0], (long long)t->shape.dim[1]);
  CHECK_MSG(same_values(t, want, rows * cols), "'%s'", text);
  kr_tensor_release(t);
}

static void test_csv(kr_ctx *ctx)
{
  const char *path = P("t.csv");
  char want[300];
  size_t before = kr_mem_in_use(ctx);
  const float w6[6] = {1, 2, 3, 4, 5, 6};
  csv_ok(ctx, "1,2,3\n4,5,6\n", ',', 0, 2, 3, w6);
  csv_ok(ctx, "1,2,3\n4,5,6", ',', 0, 2, 3, w6);
  csv_ok(ctx, "a,b,c\n1,2,3\n4,5,6\n", ',', 1, 2, 3, w6);
  csv_ok(ctx, "1,2,3\r\n4,5,6\r\n\r\n\n  \n", ',', 0, 2, 3, w6);
  csv_ok(ctx, " 1 , 2,3 \n\t4,\"5\", 6\n", ',', 0, 2, 3, w6);
  csv_ok(ctx, "1;2;3\n4;5;6\n", ';', 0, 2, 3, w6);
  csv_ok(ctx, "1\t2\t3\n4\t5\t6\n", '\t', 0, 2, 3, w6);
  csv_ok(ctx, "  1 2   3\n4\t5 6  \n", ' ', 0, 2, 3, w6);
  csv_ok(ctx, "x y z\n1 2 3\n4 5 6\n", ' ', 1, 2, 3, w6);
  csv_ok(ctx, "\n1,2,3\n4,5,6\n", ',', 1, 2, 3, w6);   /* the header line may be empty */
  const float wsci[4] = {1.5e-3f, -2e10f, 0.25f, -7};
  csv_ok(ctx, "1.5e-3,-2E10\n+.25,-7.\n", ',', 0, 2, 2, wsci);
  const float wspec[4] = {NAN, INFINITY, -INFINITY, INFINITY};
  csv_ok(ctx, "nan,inf\n-inf,1e999\n", ',', 0, 2, 2, wspec);
  const float w1[1] = {42};
  csv_ok(ctx, "42", ',', 0, 1, 1, w1);

  /* a larger file */
  {
    size_t cap = 200000, k = 0;
    char *big = malloc(cap);
    float *bw = malloc(1000 * 7 * sizeof(float));
    for (int r = 0; r < 1000; r++)
      for (int c = 0; c < 7; c++) {
        float v = (float)(r * 7 + c) / 8.0f - 100.0f;
        bw[r * 7 + c] = v;
        k += (size_t)snprintf(big + k, cap - k, "%.9g%s", v, c == 6 ? "\n" : ",");
      }
    csv_ok(ctx, big, ',', 0, 1000, 7, bw);
    free(big);
    free(bw);
  }

  /* errors, each naming the line and column */
  snprintf(want, sizeof want, "CSV '%s': line 3, column 2: expected a number, got 'abc'", path);
  EXPECT_FAIL(ctx, csv_text(ctx, "1,2\n3,4\n5,abc\n", ',', 0), KR_EFORMAT, want);
  EXPECT_FAIL(ctx, csv_text(ctx, "h1,h2\n1,2\n3,\n", ',', 1), KR_EFORMAT, "line 3, column 2: expected a number, got ''");
  EXPECT_FAIL(ctx, csv_text(ctx, "1,2\n3,4x\n", ',', 0), KR_EFORMAT, "line 2, column 2: expected a number, got '4x'");
  EXPECT_FAIL(ctx, csv_text(ctx, "a,b\n1,2\n", ',', 0), KR_EFORMAT, "line 1, column 1: expected a number, got 'a'");
  EXPECT_FAIL(ctx, csv_text(ctx, "1,2\n3\x01,4\n", ',', 0), KR_EFORMAT, "got '3?'");
  EXPECT_FAIL(ctx, csv_text(ctx, "1,2\n3,4,5\n", ',', 0), KR_EFORMAT, "line 2 has 3 fields, expected 2 (as on line 1)");
  EXPECT_FAIL(ctx, csv_text(ctx, "h\n1,2\n3,4\n5\n", ',', 1), KR_EFORMAT, "line 4 has 1 fields, expected 2 (as on line 2)");
  EXPECT_FAIL(ctx, csv_text(ctx, "1,2\n\n3,4\n", ',', 0), KR_EFORMAT, "line 2 is empty");
  EXPECT_FAIL(ctx, csv_text(ctx, "1,2,\n", ',', 0), KR_EFORMAT, "line 1, column 3: expected a number, got ''");
  /* a bad number before a ragged line is reported first: errors come in file order */
  EXPECT_FAIL(ctx, csv_text(ctx, "1,2\n3,z\n4\n", ',', 0), KR_EFORMAT, "line 2, column 2");
  EXPECT_FAIL(ctx, csv_text(ctx, "1,2\n3,4\n4\n7,y\n", ',', 0), KR_EFORMAT, "line 3 has 1 fields");
  {
    char longf[300];
    memset(longf, '9', 200);
    strcpy(longf + 200, "\n");
    EXPECT_FAIL(ctx, csv_text(ctx, longf, ',', 0), KR_EFORMAT, "expected a number, got '9999999999");
  }
  EXPECT_FAIL(ctx, csv_text(ctx, "", ',', 0), KR_EFORMAT, "no data rows");
  EXPECT_FAIL(ctx, csv_text(ctx, "\n\n", ',', 0), KR_EFORMAT, "no data rows");
  EXPECT_FAIL(ctx, csv_text(ctx, "a,b,c\n", ',', 1), KR_EFORMAT, "no data rows after the header");
  EXPECT_FAIL(ctx, csv_text(ctx, "1,2\n", '\n', 0), KR_EARG, "bad delimiter");
  EXPECT_FAIL(ctx, csv_text(ctx, "1,2\n", '.', 0), KR_EARG, "bad delimiter");
  EXPECT_FAIL(ctx, kr_csv_load(ctx, "/nonexistent/d.csv", ',', 0), KR_EIO,
              "CSV '/nonexistent/d.csv': cannot open (No such file or directory)");
  EXPECT_FAIL(ctx, kr_csv_load(ctx, dir, ',', 0), KR_EIO, "cannot open (Is a directory)");
  {
    /* a NUL byte in a field */
    write_file(path, "1,2\n3,4\0\n", 9);
    EXPECT_FAIL(ctx, kr_csv_load(ctx, path, ',', 0), KR_EFORMAT, "line 2, column 2");
  }

  /* every prefix: a table or an error, never a crash */
  {
    const char *text = "h1,h2,h3\n1.5,-2,3e2\n\"4\", 5 ,6\r\n7,8,9\n\n";
    size_t n = strlen(text);
    int ok = 0;
    for (size_t len = 0; len <= n; len++) {
      write_file(path, text, len);
      kr_tensor *t = kr_csv_load(ctx, path, ',', 1);
      if (t) {
        ok++;
        CHECK(t->shape.ndim == 2 && t->shape.dim[0] >= 1 && t->shape.dim[1] >= 1);
        kr_tensor_release(t);
      } else {
        CHECK(kr_errcode(ctx) == KR_EFORMAT);
      }
    }
    CHECK(ok > 0);
  }
  CHECK(kr_mem_in_use(ctx) == before);
}

/* ---- allocation failures: an error at every point, never a crash or leak ---- */

typedef kr_tensor *(*loader)(kr_ctx *, const char *);

static kr_tensor *csv_loader(kr_ctx *ctx, const char *path) { return kr_csv_load(ctx, path, ',', 1); }

static void sweep(kr_ctx *ctx, loader load, const char *path, const char *what)
{
  size_t before = kr_mem_in_use(ctx);
  int fails = 0, ok = 0;
  for (long n = 1; n < 1000; n++) {
    kr_mem_fail_at(ctx, n);
    kr_tensor *t = load(ctx, path);
    kr_mem_fail_at(ctx, 0);
    if (t) {
      ok = 1;
      kr_tensor_release(t);
      break;
    }
    fails++;
    CHECK_MSG(kr_errcode(ctx) == KR_EMEM, "%s at %ld: %s", what, n, kr_errmsg(ctx));
    CHECK_MSG(kr_mem_in_use(ctx) == before, "%s leaks at %ld", what, n);
  }
  CHECK_MSG(ok && fails > 0, "%s: ok %d after %d failures", what, ok, fails);
  CHECK(kr_mem_in_use(ctx) == before);
}

static void test_alloc_failures(kr_ctx *ctx)
{
  unsigned char file[2048], data[512];
  for (int i = 0; i < 60; i++) encode(data + 8 * i, i, 'f', 8, 1);
  write_file(P("a.npy"), file, npy_make(file, 1, ">f8", 0, "(6, 10)", data, 480));
  sweep(ctx, kr_npy_load, P("a.npy"), "npy C order");
  write_file(P("b.npy"), file, npy_make(file, 3, ">f8", 1, "(6, 10)", data, 480));
  sweep(ctx, kr_npy_load, P("b.npy"), "npy Fortran order");
  uint32_t dims[2] = {6, 10};
  size_t n = idx_make(file, 0x0E, 2, dims, data, 480);
  write_file(P("a.idx"), file, n);
  write_gz(P("a.idx.gz"), file, n);
  sweep(ctx, kr_idx_load, P("a.idx"), "IDX plain");
  sweep(ctx, kr_idx_load, P("a.idx.gz"), "IDX gzip");
  const char *text = "a,b\n1,2\n3,4\n";
  write_file(P("a.csv"), text, strlen(text));
  sweep(ctx, csv_loader, P("a.csv"), "CSV");

  /* save: a failed save leaves the old file as it was and no temporary file */
  {
    int64_t d[2] = {2, 2};
    kr_shape sh = kr_shape_make(2, d);
    kr_tensor *t = kr_tensor_full(ctx, &sh, 2.0f);
    size_t before = kr_mem_in_use(ctx), n0 = 0, n1 = 0;
    unsigned char *old = read_file(P("a.npy"), &n0);
    kr_mem_fail_at(ctx, 1);
    CHECK(kr_npy_save(ctx, t, P("a.npy")) == KR_EMEM);
    kr_mem_fail_at(ctx, 0);
    CHECK(kr_mem_in_use(ctx) == before);
    unsigned char *now = read_file(P("a.npy"), &n1);
    CHECK(old && now && n0 == n1 && memcmp(old, now, n0) == 0);
    free(old);
    free(now);
    CHECK(kr_npy_save(ctx, t, P("a.npy")) == KR_OK);
    kr_tensor_release(t);
  }
}

/* ---- the atomic write (src/io/atomic.c) ---- */

static int count_tmps(void)
{
  DIR *dd = opendir(dir);
  struct dirent *e;
  int tmps = 0;
  while (dd && (e = readdir(dd)) != NULL) tmps += strstr(e->d_name, ".tmp") != NULL;
  if (dd) closedir(dd);
  return tmps;
}

static int file_is(const char *path, const char *text)
{
  size_t n = 0;
  unsigned char *b = read_file(path, &n);
  int same = b && n == strlen(text) && memcmp(b, text, n) == 0;
  free(b);
  return same;
}

static int same_bytes(const char *path, const unsigned char *want, size_t wn)
{
  size_t n = 0;
  unsigned char *b = read_file(path, &n);
  int same = b && n == wn && memcmp(b, want, n) == 0;
  free(b);
  return same;
}

static void test_atomic(kr_ctx *ctx)
{
  const char *path = P("atomic.txt");
  write_file(path, "old contents", 12);

  /* the helper itself: the new bytes replace the old file whole */
  char *tmp = NULL;
  int fd = kr_atomic_create(ctx, path, &tmp);
  CHECK(fd >= 0 && tmp != NULL);
  if (fd >= 0) {
    CHECK(tmp && strncmp(tmp, path, strlen(path)) == 0 && strstr(tmp, ".tmp") != NULL);
    CHECK(write(fd, "new", 3) == 3);
    CHECK(file_is(path, "old contents"));   /* nothing visible before the commit */
    close(fd);
    CHECK(kr_atomic_commit(ctx, path, tmp) == KR_OK);
  }
  kr_free(ctx, tmp);
  CHECK(file_is(path, "new"));
  CHECK(count_tmps() == 0);

  /* a second temporary file for the same target gets a distinct name */
  char *t1 = NULL, *t2 = NULL;
  int f1 = kr_atomic_create(ctx, path, &t1), f2 = kr_atomic_create(ctx, path, &t2);
  CHECK(f1 >= 0 && f2 >= 0 && t1 && t2 && strcmp(t1, t2) != 0);
  if (f1 >= 0) close(f1);
  if (f2 >= 0) close(f2);
  kr_atomic_abort(t1);
  kr_atomic_abort(t2);
  kr_free(ctx, t1);
  kr_free(ctx, t2);
  CHECK(count_tmps() == 0);

  /* a save given up half way: the old file stays, the temporary goes */
  fd = kr_atomic_create(ctx, path, &tmp);
  CHECK(fd >= 0);
  if (fd >= 0) {
    CHECK(write(fd, "half", 4) == 4);
    close(fd);
  }
  kr_atomic_abort(tmp);
  kr_free(ctx, tmp);
  CHECK(file_is(path, "new"));
  CHECK(count_tmps() == 0);

  /* the commit is refused (the target became a non-empty folder after the
  ** temporary file was made; one there already is refused by
  ** kr_atomic_create, see test_atomic_targets): an error naming the
  ** target, the folder untouched, no temporary left */
  const char *sub = P("atomic-dir");
  fd = kr_atomic_create(ctx, sub, &tmp);
  CHECK(mkdir(sub, 0777) == 0);
  char inner[400];
  snprintf(inner, sizeof inner, "%s/keep", sub);
  write_file(inner, "keep", 4);
  CHECK(fd >= 0);
  if (fd >= 0) close(fd);
  CHECK(kr_atomic_commit(ctx, sub, tmp) == KR_EIO);
  CHECK_MSG(has(ctx, "save: '") && has(ctx, "atomic-dir': cannot replace it"), "%s", kr_errmsg(ctx));
  kr_free(ctx, tmp);
  CHECK(file_is(inner, "keep"));
  CHECK(count_tmps() == 0);
  unlink(inner);
  rmdir(sub);

  /* no temporary file can be made (missing folder): -1, NULL, a message */
  tmp = (char *)"unchanged";
  CHECK(kr_atomic_create(ctx, "/nonexistent-dir/x.bin", &tmp) == -1);
  CHECK(tmp == NULL);
  CHECK_MSG(has(ctx, "save: '/nonexistent-dir/x.bin': cannot create the temporary file"), "%s", kr_errmsg(ctx));

  /* every writer, with its write failing part way (a file size limit, so
  ** write() gets EFBIG): the error names the path, the old file is intact
  ** byte for byte, and no temporary file is left */
  int64_t big[1] = {1 << 16};   /* 256 KiB of float32, above the limit */
  kr_shape bs = kr_shape_make(1, big);
  kr_tensor *bt = kr_tensor_full(ctx, &bs, 0.25f);
  int64_t small[1] = {3};
  kr_shape ss = kr_shape_make(1, small);
  kr_tensor *st = kr_tensor_full(ctx, &ss, 2.0f);
  CHECK(kr_npy_save(ctx, st, P("limit.npy")) == KR_OK);
  const char *nm = "w";
  const kr_tensor *stl[1] = {st}, *btl[1] = {bt};
  CHECK(kr_model_file_save(ctx, P("limit.lkm"), "{}", 2, 1, &nm, stl) == KR_OK);
  kr_h5 *h = kr_h5_create(ctx, P("limit.h5"));
  CHECK(h && kr_h5_write_tensor(h, "w", st) == KR_OK && kr_h5_commit(h) == KR_OK);
  kr_h5_free(h);
  size_t n_npy = 0, n_lkm = 0, n_h5 = 0;
  unsigned char *old_npy = read_file(P("limit.npy"), &n_npy), *old_lkm = read_file(P("limit.lkm"), &n_lkm);
  unsigned char *old_h5 = read_file(P("limit.h5"), &n_h5);
  CHECK(old_npy && old_lkm && old_h5 && n_npy < 16384 && n_lkm < 16384 && n_h5 < 16384);

  struct rlimit saved;
  CHECK(getrlimit(RLIMIT_FSIZE, &saved) == 0);
  void (*old_handler)(int) = signal(SIGXFSZ, SIG_IGN);
  struct rlimit lim = saved;
  lim.rlim_cur = 16384;
  CHECK(setrlimit(RLIMIT_FSIZE, &lim) == 0);
  int r_npy = kr_npy_save(ctx, bt, P("limit.npy"));
  int npy_msg = has(ctx, "save: '") && has(ctx, "limit.npy': cannot write");
  int r_lkm = kr_model_file_save(ctx, P("limit.lkm"), "{}", 2, 1, &nm, btl);
  int lkm_msg = has(ctx, "save: '") && has(ctx, "limit.lkm': cannot write");
  h = kr_h5_create(ctx, P("limit.h5"));
  int r_h5 = h ? kr_h5_write_tensor(h, "w", bt) : KR_EIO;
  if (h && r_h5 == KR_OK) r_h5 = kr_h5_commit(h);
  int h5_msg = has(ctx, "limit.h5");
  kr_h5_free(h);
  CHECK(setrlimit(RLIMIT_FSIZE, &saved) == 0);
  signal(SIGXFSZ, old_handler);

  CHECK(r_npy == KR_EIO && npy_msg);
  CHECK(r_lkm == KR_EIO && lkm_msg);
  CHECK(same_bytes(P("limit.npy"), old_npy, n_npy));
  CHECK(same_bytes(P("limit.lkm"), old_lkm, n_lkm));
  CHECK_MSG(r_h5 != KR_OK && h5_msg, "%d %s", r_h5, kr_errmsg(ctx));
  CHECK(same_bytes(P("limit.h5"), old_h5, n_h5));
  CHECK(count_tmps() == 0);
  /* and without the limit the same saves go through */
  CHECK(kr_npy_save(ctx, bt, P("limit.npy")) == KR_OK);
  CHECK(kr_model_file_save(ctx, P("limit.lkm"), "{}", 2, 1, &nm, btl) == KR_OK);
  kr_tensor *back = kr_npy_load(ctx, P("limit.npy"));
  CHECK(back && back->shape.ndim == 1 && back->shape.dim[0] == big[0] && KR_DATA(back)[big[0] - 1] == 0.25f);
  kr_tensor_release(back);
  CHECK(count_tmps() == 0);
  free(old_npy);
  free(old_lkm);
  free(old_h5);
  kr_tensor_release(bt);
  kr_tensor_release(st);
}

/* ---- main ---- */

static void remove_dir(void)
{
  DIR *d = opendir(dir);
  struct dirent *e;
  while (d && (e = readdir(d)) != NULL) {
    if (strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0) continue;
    unlink(P(e->d_name));
  }
  if (d) closedir(d);
  rmdir(dir);
}

/* kr_shape_numel_checked: the one overflow-checked product */
static void test_shape_numel(kr_ctx *ctx)
{
  (void)ctx;
  uint64_t n = 7;
  kr_shape s = kr_shape_make(2, (int64_t[]){4, ((int64_t)1 << 62) + 1});
  CHECK(kr_shape_numel_checked(&s, &n) == KR_EARG);
  s = kr_shape_make(3, (int64_t[]){0, INT64_MAX, INT64_MAX});   /* a zero beside dimensions beyond the bound */
  CHECK(kr_shape_numel_checked(&s, &n) == KR_EARG);
  s = kr_shape_make(4, (int64_t[]){0, (int64_t)1 << 32, (int64_t)1 << 32, (int64_t)1 << 32});
  CHECK(kr_shape_numel_checked(&s, &n) == KR_OK && n == 0);
  s = kr_shape_make(3, (int64_t[]){KR_BATCH * 3, 5, 7});   /* a batch axis -k counts as k */
  CHECK(kr_shape_numel_checked(&s, &n) == KR_OK && n == 105);
  s = kr_shape_make(2, (int64_t[]){(int64_t)1 << 28, (int64_t)1 << 28});
  CHECK(kr_shape_numel_checked(&s, &n) == KR_OK && n == (uint64_t)1 << 56);
  s = kr_shape_make(2, (int64_t[]){((int64_t)1 << 28) + 1, (int64_t)1 << 28});
  CHECK(kr_shape_numel_checked(&s, &n) == KR_EARG);
  s = kr_shape_make(0, NULL);
  CHECK(kr_shape_numel_checked(&s, &n) == KR_OK && n == 1);
  /* the graph refuses such a shape by name, for an input and a reshape target */
  kr_shape in = kr_shape_make(2, (int64_t[]){KR_BATCH, 4});
  kr_node *x = kr_node_input(ctx, &in);
  kr_attr a;
  memset(&a, 0, sizeof a);
  a.shape = kr_shape_make(3, (int64_t[]){KR_BATCH, 4, ((int64_t)1 << 62) + 1});
  CHECK(kr_node_op(ctx, KR_OP_RESHAPE, 1, &x, &a) == NULL);
  CHECK_MSG(has(ctx, "reshape: the shape (None, 4, 4611686018427387905) has more than 2^56 elements"), "%s",
            kr_errmsg(ctx));
  kr_node_release(x);
  kr_shape big = kr_shape_make(3, (int64_t[]){KR_BATCH, (int64_t)1 << 40, (int64_t)1 << 40});
  CHECK(kr_node_input(ctx, &big) == NULL);
  CHECK_MSG(has(ctx, "Input: the shape"), "%s", kr_errmsg(ctx));
}

/* every loader, given a FIFO (no writer: an open without O_NONBLOCK would
** block forever), a device or a folder: an error at once. alarm() guards
** the test: a loader that blocks ends it with SIGALRM, a failure. */
static void test_special_files(kr_ctx *ctx)
{
  const char *fifo = P("fifo");
  CHECK(mkfifo(fifo, 0600) == 0);
  alarm(20);
  EXPECT_FAIL(ctx, kr_npy_load(ctx, fifo), KR_EIO, "load: '");
  CHECK(has(ctx, "fifo': not a regular file (a FIFO)"));
  EXPECT_FAIL(ctx, kr_idx_load(ctx, fifo), KR_EIO, "not a regular file (a FIFO)");
  EXPECT_FAIL(ctx, kr_csv_load(ctx, fifo, ',', 0), KR_EIO, "not a regular file (a FIFO)");
  EXPECT_FAIL(ctx, kr_csv_load(ctx, "/dev/zero", ',', 0), KR_EIO, "not a regular file (a character device)");
  kr_model_file *mf = NULL;
  CHECK(kr_model_file_load(ctx, fifo, &mf) == KR_EIO && has(ctx, "not a regular file (a FIFO)"));
  CHECK(kr_model_file_load(ctx, "/dev/zero", &mf) == KR_EIO && has(ctx, "a character device"));
  CHECK(kr_h5_open(ctx, fifo) == NULL && has(ctx, "not a regular file (a FIFO)"));
  CHECK(kr_h5_open(ctx, "/dev/zero") == NULL && has(ctx, "a character device"));
  CHECK(kr_npz_load(ctx, fifo, NULL, NULL) == KR_EIO && has(ctx, "not a regular file (a FIFO)"));
  kr_tensor *x = NULL, *y = NULL;
  const char *members[1] = {"data_batch_1.bin"};
  CHECK(kr_cifar_load(ctx, fifo, members, 1, 1, 0, &x, &y) != KR_OK && has(ctx, "not a regular file (a FIFO)"));
  CHECK(kr_check_regular(ctx, "test", fifo) == KR_EIO);
  CHECK(kr_check_regular(ctx, "test", dir) == KR_EIO && has(ctx, "cannot open (Is a directory)"));
  alarm(0);
  unlink(fifo);
}

static mode_t mode_of(const char *path)
{
  struct stat sb;
  return stat(path, &sb) == 0 ? sb.st_mode & 07777 : 0;
}

/* kr_atomic_create/commit against what is already at the path */
static void test_atomic_targets(kr_ctx *ctx)
{
  /* a symbolic link: its target is replaced, the link stays */
  const char *real = P("t-real"), *link = P("t-link");
  write_file(real, "old", 3);
  CHECK(symlink("t-real", link) == 0);
  char *tmp;
  int fd = kr_atomic_create(ctx, link, &tmp);
  CHECK(fd >= 0);
  if (fd >= 0) {
    CHECK(write(fd, "new", 3) == 3);
    close(fd);
    CHECK(kr_atomic_commit(ctx, link, tmp) == KR_OK);
    kr_free(ctx, tmp);
  }
  struct stat sb;
  CHECK(lstat(link, &sb) == 0 && S_ISLNK(sb.st_mode));
  CHECK(file_is(real, "new"));
  /* a chain of two links, the last dangling: the file it names is made */
  const char *l2 = P("t-link2"), *made = P("t-made");
  CHECK(symlink("t-link3", l2) == 0);
  CHECK(symlink("t-made", P("t-link3")) == 0);
  fd = kr_atomic_create(ctx, l2, &tmp);
  CHECK(fd >= 0);
  if (fd >= 0) {
    CHECK(write(fd, "abc", 3) == 3);
    close(fd);
    CHECK(kr_atomic_commit(ctx, l2, tmp) == KR_OK);
    kr_free(ctx, tmp);
  }
  CHECK(file_is(made, "abc"));
  CHECK(lstat(l2, &sb) == 0 && S_ISLNK(sb.st_mode));
  /* a loop of links: an error */
  CHECK(symlink("t-loop2", P("t-loop1")) == 0 && symlink("t-loop1", P("t-loop2")) == 0);
  tmp = NULL;
  CHECK(kr_atomic_create(ctx, P("t-loop1"), &tmp) == -1 && tmp == NULL);
  CHECK_MSG(has(ctx, "too many levels of symbolic links"), "%s", kr_errmsg(ctx));

  /* the mode of the file replaced is kept (0600 stays 0600, 0751 stays 0751) */
  const char *priv = P("t-private");
  mode_t modes[2] = {0600, 0751};
  for (int i = 0; i < 2; i++) {
    write_file(priv, "old", 3);
    CHECK(chmod(priv, modes[i]) == 0);
    fd = kr_atomic_create(ctx, priv, &tmp);
    CHECK(fd >= 0);
    if (fd >= 0) {
      close(fd);
      CHECK(kr_atomic_commit(ctx, priv, tmp) == KR_OK);
      kr_free(ctx, tmp);
    }
    CHECK_MSG(mode_of(priv) == modes[i], "mode %o, expected %o", (unsigned)mode_of(priv), (unsigned)modes[i]);
    CHECK(lstat(priv, &sb) == 0 && sb.st_uid == geteuid());
  }

  /* not a regular file: refused before anything is made, left as it was */
  const char *fifo = P("t-fifo");
  CHECK(mkfifo(fifo, 0600) == 0);
  tmp = (char *)"unchanged";
  CHECK(kr_atomic_create(ctx, fifo, &tmp) == -1 && tmp == NULL);
  CHECK_MSG(has(ctx, "save: '") && has(ctx, "t-fifo': cannot replace it: a FIFO is there, not a regular file (refused)"),
            "%s", kr_errmsg(ctx));
  CHECK(lstat(fifo, &sb) == 0 && S_ISFIFO(sb.st_mode));
  const char *sub = P("t-dir");
  CHECK(mkdir(sub, 0700) == 0);
  CHECK(kr_atomic_create(ctx, sub, &tmp) == -1 && has(ctx, "a directory is there"));
  CHECK(lstat(sub, &sb) == 0 && S_ISDIR(sb.st_mode));
  CHECK(kr_atomic_fopen(ctx, fifo, &tmp) == NULL && has(ctx, "a FIFO is there"));
  kr_shape two = kr_shape_make(1, (int64_t[]){2});
  kr_tensor *t2 = kr_tensor_zeros(ctx, &two);
  CHECK(kr_npy_save(ctx, t2, fifo) == KR_EIO && has(ctx, "a FIFO is there"));
  kr_tensor_release(t2);
  CHECK(lstat(fifo, &sb) == 0 && S_ISFIFO(sb.st_mode));
  CHECK(count_tmps() == 0);
  rmdir(sub);

  /* stale temporaries: ours of a process that ended go, the rest stay */
  pid_t child = fork();
  if (child == 0) _exit(0);
  CHECK(child > 0 && waitpid(child, NULL, 0) == child);
  const char *target = P("t-tidy");
  char stale[400], live[400], other[400], odd[400];
  snprintf(stale, sizeof stale, "%s.tmp%ld.0", target, (long)child);
  snprintf(live, sizeof live, "%s.tmp%ld.2", target, (long)getppid());
  snprintf(other, sizeof other, "%s2.tmp%ld.0", target, (long)child);
  snprintf(odd, sizeof odd, "%s.tmp%ld.x", target, (long)child);
  const char *all[4] = {stale, live, other, odd};
  for (int i = 0; i < 4; i++) write_file(all[i], "partial", 7);
  fd = kr_atomic_create(ctx, target, &tmp);
  CHECK(fd >= 0);
  if (fd >= 0) {
    close(fd);
    CHECK(kr_atomic_commit(ctx, target, tmp) == KR_OK);
    kr_free(ctx, tmp);
  }
  CHECK(access(stale, F_OK) != 0);
  for (int i = 1; i < 4; i++) {
    CHECK_MSG(access(all[i], F_OK) == 0, "%s was removed", all[i]);
    unlink(all[i]);
  }
  unlink(target);
  unlink(fifo);
  unlink(real);
  unlink(link);
  unlink(l2);
  unlink(P("t-link3"));
  unlink(made);
  unlink(P("t-loop1"));
  unlink(P("t-loop2"));
  unlink(priv);
}

int main(void)
{
  strcpy(dir, "/tmp/test_io.XXXXXX");
  if (!mkdtemp(dir)) {
    perror("mkdtemp");
    return 2;
  }
  kr_ctx *ctx = kr_ctx_new();
  test_roundtrip(ctx);
  test_npy_dtypes(ctx);
  test_npy_hostile(ctx);
  test_idx(ctx);
  test_csv(ctx);
  test_alloc_failures(ctx);
  test_atomic(ctx);
  test_shape_numel(ctx);
  test_special_files(ctx);
  test_atomic_targets(ctx);
  CHECK(kr_mem_in_use(ctx) == 0);
  kr_ctx_free(ctx);
  remove_dir();
  return check_report("test_io");
}
