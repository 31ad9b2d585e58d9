/*
** test_model_file.c -- the native model file (src/io/model_file.c) and the
** HDF5 wrapper (src/io/h5.c):
**   - round trips through memory and files, the version-1 fixture of tests/;
**   - hostile files: every truncated prefix, every single-bit flip, huge or
**     overflowing declared sizes (json length, tensor count, name length,
**     dimensions), bad magic, versions, flags, dtypes, ranks, NUL and
**     duplicate names, trailing bytes; each an error, never a crash, and
**     never a large allocation;
**   - allocation-failure sweeps of parse, load, encode and save;
**   - a killed save: a child process saves two models in turn, in a loop,
**     and is killed with SIGKILL at random moments; the file must then always
**     be one of the two, complete;
**   - HDF5: attributes and datasets round trip, a missing file and a file
**     that is not HDF5 give errors, an uncommitted file leaves no trace.
** Files are written under a fresh directory in /tmp, removed at the end.
*/
#include "kr.h"
#include "io/model_file.h"
#include "check.h"

#include <dirent.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>
#include <zlib.h>

static char dir[64];

static const char *P(const char *name)
{
  static char buf[4][320];
  static int k;
  k = (k + 1) % 4;
  snprintf(buf[k], sizeof buf[k], "%s/%s", dir, name);
  return buf[k];
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

static int has(kr_ctx *ctx, const char *s) { return strstr(kr_errmsg(ctx), s) != NULL; }

static void put32(unsigned char *p, uint32_t v)
{
  for (int i = 0; i < 4; i++) p[i] = (unsigned char)(v >> (8 * i));
}

static void put64(unsigned char *p, uint64_t v)
{
  put32(p, (uint32_t)v);
  put32(p + 4, (uint32_t)(v >> 32));
}

/* rewrite the trailing checksum after editing a file in memory */
static void fix_crc(unsigned char *b, size_t n)
{
  uLong c = crc32(0L, Z_NULL, 0);
  c = crc32(c, b, (uInt)(n - 4));
  put32(b + n - 4, (uint32_t)c);
}

/* ---- a sample model file ---- */

static const char *JSON = "{\"format\": \"lkeras\", \"attrs\": {}}";

typedef struct sample {
  kr_tensor *t[3];
  const char *names[3];
} sample;

static void make_sample(kr_ctx *ctx, sample *s, float base)
{
  kr_shape a = {2, {3, 4}}, b = {1, {4}}, c = {0, {0}};
  s->t[0] = kr_tensor_new(ctx, &a);
  s->t[1] = kr_tensor_new(ctx, &b);
  s->t[2] = kr_tensor_full(ctx, &c, base);   /* a scalar */
  for (int i = 0; i < 12; i++) KR_DATA(s->t[0])[i] = base + (float)i * 0.5f;
  for (int i = 0; i < 4; i++) KR_DATA(s->t[1])[i] = -base - (float)i;
  s->names[0] = "model_weights/dense_1/dense_1/kernel:0";
  s->names[1] = "model_weights/dense_1/dense_1/bias:0";
  s->names[2] = "optimizer_weights/x";
}

static void free_sample(sample *s)
{
  for (int i = 0; i < 3; i++) kr_tensor_release(s->t[i]);
}

static int same_as_sample(const kr_model_file *mf, const sample *s)
{
  if (mf->ntensors != 3 || strcmp(mf->json, JSON) != 0 || mf->json_len != strlen(JSON)) return 0;
  for (int i = 0; i < 3; i++) {
    if (strcmp(mf->names[i], s->names[i]) != 0) return 0;
    if (!kr_shape_eq(&mf->tensors[i]->shape, &s->t[i]->shape)) return 0;
    if (memcmp(KR_DATA(mf->tensors[i]), KR_DATA(s->t[i]), (size_t)kr_tensor_numel(s->t[i]) * 4) != 0) return 0;
  }
  return 1;
}

static unsigned char *encode_sample(kr_ctx *ctx, const sample *s, size_t *n)
{
  unsigned char *b;
  int st = kr_model_file_encode(ctx, JSON, strlen(JSON), 3, s->names, (const kr_tensor *const *)s->t, &b, n);
  CHECK(st == KR_OK);
  return b;
}

/* parse must fail with KR_EFORMAT and a message holding text, without leaking */
static void expect_bad(kr_ctx *ctx, const unsigned char *b, size_t n, const char *text, const char *what)
{
  size_t before = kr_mem_in_use(ctx);
  kr_model_file *mf = (kr_model_file *)1;
  int st = kr_model_file_parse(ctx, b, n, "f.lkm", &mf);
  CHECK_MSG(st == KR_EFORMAT, "%s: status %d (%s)", what, st, kr_errmsg(ctx));
  CHECK_MSG(mf == NULL, "%s: out not cleared", what);
  if (text) CHECK_MSG(has(ctx, text), "%s: message '%s' lacks '%s'", what, kr_errmsg(ctx), text);
  CHECK_MSG(kr_mem_in_use(ctx) == before, "%s: leaks", what);
  CHECK_MSG(kr_mem_peak(ctx) < ((size_t)64 << 20), "%s: allocated %zu bytes", what, kr_mem_peak(ctx));
  if (st == KR_OK) kr_model_file_free(mf);
}

/* ---- round trips ---- */

static void test_round_trip(kr_ctx *ctx)
{
  sample s;
  make_sample(ctx, &s, 1.25f);
  size_t n;
  unsigned char *b = encode_sample(ctx, &s, &n);
  kr_model_file *mf;
  CHECK(kr_model_file_parse(ctx, b, n, "mem", &mf) == KR_OK);
  CHECK(mf && mf->version == 1 && same_as_sample(mf, &s));
  kr_model_file_free(mf);
  /* through a file, and the bytes are the same as in memory */
  CHECK(kr_model_file_save(ctx, P("a.lkm"), JSON, strlen(JSON), 3, s.names, (const kr_tensor *const *)s.t) == KR_OK);
  size_t fn;
  unsigned char *fb = read_file(P("a.lkm"), &fn);
  CHECK(fb && fn == n && memcmp(fb, b, n) == 0);
  free(fb);
  CHECK(kr_model_file_load(ctx, P("a.lkm"), &mf) == KR_OK);
  CHECK(mf && same_as_sample(mf, &s));
  kr_model_file_free(mf);
  /* no temporary file is left behind */
  DIR *d = opendir(dir);
  int others = 0;
  struct dirent *e;
  while (d && (e = readdir(d)))
    if (strstr(e->d_name, ".tmp")) others++;
  if (d) closedir(d);
  CHECK(others == 0);
  /* empty: no JSON, no tensors */
  CHECK(kr_model_file_encode(ctx, "", 0, 0, NULL, NULL, &fb, &fn) == KR_OK);
  CHECK(fn == 36);
  CHECK(kr_model_file_parse(ctx, fb, fn, "empty", &mf) == KR_OK);
  CHECK(mf && mf->ntensors == 0 && mf->json_len == 0 && mf->json[0] == '\0');
  kr_model_file_free(mf);
  kr_free(ctx, fb);
  kr_free(ctx, b);
  free_sample(&s);
}

static void test_fixture_v1(kr_ctx *ctx)
{
  kr_model_file *mf;
  int st = kr_model_file_load(ctx, "tests/fixtures/old_format_v1.lkm", &mf);
  CHECK_MSG(st == KR_OK, "%s", kr_errmsg(ctx));
  if (st != KR_OK) return;
  CHECK(mf->version == 1);
  CHECK(mf->ntensors > 0);
  CHECK(strstr(mf->json, "\"model_config\"") != NULL);
  kr_model_file_free(mf);
}

/* ---- hostile files ---- */

static void test_truncations(kr_ctx *ctx)
{
  sample s;
  make_sample(ctx, &s, 3.0f);
  size_t n;
  unsigned char *b = encode_sample(ctx, &s, &n);
  for (size_t k = 0; k < n; k++) {
    char what[64];
    snprintf(what, sizeof what, "prefix of %zu bytes", k);
    expect_bad(ctx, b, k, k < 8 ? "bad magic" : "truncated", what);
  }
  /* a prefix padded back to the full length with zeros is no better */
  unsigned char *c = malloc(n);
  for (size_t k = 32; k < n; k += 7) {
    memcpy(c, b, k);
    memset(c + k, 0, n - k);
    expect_bad(ctx, c, n, NULL, "zero-padded prefix");
  }
  free(c);
  kr_free(ctx, b);
  free_sample(&s);
}

static void test_bit_flips(kr_ctx *ctx)
{
  sample s;
  make_sample(ctx, &s, -2.0f);
  size_t n;
  unsigned char *b = encode_sample(ctx, &s, &n);
  unsigned char *c = malloc(n);
  int accepted = 0;
  for (size_t i = 0; i < n; i++) {
    for (int bit = 0; bit < 8; bit++) {
      memcpy(c, b, n);
      c[i] ^= (unsigned char)(1u << bit);
      kr_model_file *mf = NULL;
      size_t before = kr_mem_in_use(ctx);
      int st = kr_model_file_parse(ctx, c, n, "flip", &mf);
      if (st == KR_OK) {
        accepted++;
        kr_model_file_free(mf);
      }
      CHECK_MSG(kr_mem_in_use(ctx) == before, "flip at %zu.%d leaks", i, bit);
    }
  }
  CHECK_MSG(accepted == 0, "%d single-bit flips went unnoticed", accepted);
  /* flips with the checksum fixed afterwards: the structure checks alone */
  srand(7);
  for (int k = 0; k < 3000; k++) {
    memcpy(c, b, n);
    int flips = 1 + rand() % 4;
    for (int f = 0; f < flips; f++) c[rand() % (n - 4)] ^= (unsigned char)(1u << (rand() % 8));
    fix_crc(c, n);
    kr_model_file *mf = NULL;
    size_t before = kr_mem_in_use(ctx);
    if (kr_model_file_parse(ctx, c, n, "flip", &mf) == KR_OK) kr_model_file_free(mf);
    CHECK_MSG(kr_mem_in_use(ctx) == before, "random flips %d leak", k);
  }
  free(c);
  kr_free(ctx, b);
  free_sample(&s);
}

/* a file with one tensor whose header fields are given */
static size_t craft(unsigned char *b, uint32_t version, uint32_t flags, uint64_t jl, uint32_t nt, uint32_t namelen,
                    const char *name, uint32_t dtype, uint32_t rank, const uint64_t *dims, size_t ndata)
{
  static const unsigned char magic[8] = {0x89, 'L', 'K', 'M', '\r', '\n', 0x1a, '\n'};
  memcpy(b, magic, 8);
  put32(b + 8, version);
  put32(b + 12, flags);
  put64(b + 16, jl);
  put32(b + 24, nt);
  put32(b + 28, 0);
  size_t at = 32;
  memcpy(b + at, "{}", 2);
  at += 2;
  put32(b + at, namelen);
  at += 4;
  memcpy(b + at, name, strlen(name));
  at += strlen(name);
  put32(b + at, dtype);
  put32(b + at + 4, rank);
  at += 8;
  for (uint32_t i = 0; i < rank && i < 12; i++, at += 8) put64(b + at, dims[i]);
  memset(b + at, 0, ndata);
  at += ndata;
  at += 4;
  fix_crc(b, at);
  return at;
}

static void test_lying_headers(kr_ctx *ctx)
{
  unsigned char b[1024];
  uint64_t d2[2] = {2, 3}, huge[12], big2[2] = {(uint64_t)1 << 40, (uint64_t)1 << 40};
  for (int i = 0; i < 12; i++) huge[i] = (uint64_t)1 << 40;
  size_t n;
  /* a good one first, to show that craft() is right */
  n = craft(b, 1, 0, 2, 1, 1, "w", 1, 2, d2, 24);
  kr_model_file *mf;
  CHECK_MSG(kr_model_file_parse(ctx, b, n, "craft", &mf) == KR_OK, "%s", kr_errmsg(ctx));
  if (mf) kr_model_file_free(mf);
  n = craft(b, 2, 0, 2, 1, 1, "w", 1, 2, d2, 24);
  expect_bad(ctx, b, n, "format version 2 is not supported", "a future version");
  n = craft(b, 0, 0, 2, 1, 1, "w", 1, 2, d2, 24);
  expect_bad(ctx, b, n, "format version 0", "version 0");
  n = craft(b, 1, 4, 2, 1, 1, "w", 1, 2, d2, 24);
  expect_bad(ctx, b, n, "unknown flags", "flags");
  n = craft(b, 1, 0, (uint64_t)1 << 62, 1, 1, "w", 1, 2, d2, 24);
  expect_bad(ctx, b, n, "truncated", "huge JSON length");
  n = craft(b, 1, 0, UINT64_MAX, 1, 1, "w", 1, 2, d2, 24);
  expect_bad(ctx, b, n, "truncated", "JSON length 2^64-1");
  n = craft(b, 1, 0, 2, 0xffffffffu, 1, "w", 1, 2, d2, 24);
  expect_bad(ctx, b, n, "declares 4294967295 tensors", "huge tensor count");
  n = craft(b, 1, 0, 2, 2, 1, "w", 1, 2, d2, 24);
  expect_bad(ctx, b, n, NULL, "one tensor more than present");
  n = craft(b, 1, 0, 2, 1, 0xffffffffu, "w", 1, 2, d2, 24);
  expect_bad(ctx, b, n, "name of 4294967295 bytes", "huge name length");
  n = craft(b, 1, 0, 2, 1, 0, "", 1, 2, d2, 24);
  expect_bad(ctx, b, n, "name of 0 bytes", "empty name");
  n = craft(b, 1, 0, 2, 1, 200, "w", 1, 2, d2, 24);
  expect_bad(ctx, b, n, NULL, "name longer than the file");
  n = craft(b, 1, 0, 2, 1, 3, "a\0b", 1, 2, d2, 24);   /* strlen is 1: fix by hand below */
  {
    unsigned char c[1024];
    static const unsigned char magic[8] = {0x89, 'L', 'K', 'M', '\r', '\n', 0x1a, '\n'};
    size_t at = 0;
    memcpy(c, magic, 8);
    put32(c + 8, 1);
    put32(c + 12, 0);
    put64(c + 16, 0);
    put32(c + 24, 1);
    put32(c + 28, 0);
    at = 32;
    put32(c + at, 3);
    memcpy(c + at + 4, "a\0b", 3);
    at += 7;
    put32(c + at, 1);
    put32(c + at + 4, 0);
    at += 8;
    memset(c + at, 0, 4);
    at += 4 + 4;
    fix_crc(c, at);
    expect_bad(ctx, c, at, "NUL byte in its name", "NUL in a name");
  }
  n = craft(b, 1, 0, 2, 1, 1, "w", 2, 2, d2, 24);
  expect_bad(ctx, b, n, "dtype 2", "float64 dtype");
  n = craft(b, 1, 0, 2, 1, 1, "w", 1, 9, huge, 0);
  expect_bad(ctx, b, n, "rank 9", "rank 9");
  n = craft(b, 1, 0, 2, 1, 1, "w", 1, 8, huge, 0);
  expect_bad(ctx, b, n, "more values than the file holds", "2^320 values");
  n = craft(b, 1, 0, 2, 1, 1, "w", 1, 2, big2, 0);
  expect_bad(ctx, b, n, "more values than the file holds", "2^80 values");
  uint64_t toobig[1] = {((uint64_t)1 << 40) + 1};
  n = craft(b, 1, 0, 2, 1, 1, "w", 1, 1, toobig, 0);
  expect_bad(ctx, b, n, "too large", "a dimension above 2^40");
  uint64_t wrap[2] = {(uint64_t)1 << 33, (uint64_t)1 << 31};   /* 2^64 floats: wraps to 0 in 64 bits */
  n = craft(b, 1, 0, 2, 1, 1, "w", 1, 2, wrap, 0);
  expect_bad(ctx, b, n, "more values than the file holds", "a product that wraps");
  n = craft(b, 1, 0, 2, 1, 1, "w", 1, 2, d2, 20);
  expect_bad(ctx, b, n, NULL, "data cut short");
  n = craft(b, 1, 0, 2, 1, 1, "w", 1, 2, d2, 28);
  expect_bad(ctx, b, n, "unexpected bytes after the last tensor", "trailing bytes");
  memcpy(b, "\x89HDF\r\n\x1a\n", 8);
  expect_bad(ctx, b, 64, "not an lkeras model file", "HDF5 magic");
  /* two tensors with the same name */
  sample s;
  make_sample(ctx, &s, 1.0f);
  s.names[1] = s.names[0];
  unsigned char *e;
  size_t en;
  CHECK(kr_model_file_encode(ctx, JSON, strlen(JSON), 3, s.names, (const kr_tensor *const *)s.t, &e, &en) == KR_EARG);
  CHECK(has(ctx, "two tensors are named"));
  s.names[1] = "other";
  CHECK(kr_model_file_encode(ctx, JSON, strlen(JSON), 3, s.names, (const kr_tensor *const *)s.t, &e, &en) == KR_OK);
  /* rename "other" to the first name in the bytes: same length? no: craft by patching */
  kr_free(ctx, e);
  free_sample(&s);
  /* files that do not exist or are not regular */
  CHECK(kr_model_file_load(ctx, P("missing.lkm"), &mf) == KR_EIO && has(ctx, "cannot open"));
  CHECK(kr_model_file_load(ctx, dir, &mf) == KR_EIO && has(ctx, "not a regular file"));
  write_file(P("empty.lkm"), "", 0);
  CHECK(kr_model_file_load(ctx, P("empty.lkm"), &mf) == KR_EFORMAT && has(ctx, "bad magic"));
}

/* random garbage after a valid header: errors only */
static void test_random_files(kr_ctx *ctx)
{
  unsigned char b[512];
  int tried = 0, rejected = 0, unnamed = 0, badcode = 0;
  srand(11);
  for (int k = 0; k < 20000; k++) {
    size_t n = (size_t)(rand() % (int)sizeof b);
    for (size_t i = 0; i < n; i++) b[i] = (unsigned char)rand();
    if (n >= 32) {
      static const unsigned char magic[8] = {0x89, 'L', 'K', 'M', '\r', '\n', 0x1a, '\n'};
      memcpy(b, magic, 8);
      put32(b + 8, 1);
      put32(b + 12, 0);
      put32(b + 28, 0);
      if (rand() % 2) put64(b + 16, (uint64_t)(rand() % 64));
      if (rand() % 2) put32(b + 24, (uint32_t)(rand() % 4));
      fix_crc(b, n);
    }
    kr_model_file *mf = NULL;
    size_t before = kr_mem_in_use(ctx);
    int st = kr_model_file_parse(ctx, b, n, "random", &mf);
    tried++;
    if (st == KR_OK) {
      kr_model_file_free(mf);
    } else {
      rejected++;
      if (st != KR_EFORMAT) badcode++;
      if (!strstr(kr_errmsg(ctx), "'random'")) unnamed++;
    }
    if (kr_mem_in_use(ctx) != before) {
      CHECK_MSG(0, "random file %d leaks", k);
      break;
    }
  }
  /* every input was parsed (no early stop on a leak); random bytes are
  ** rejected as a format error whose message names the file */
  CHECK(tried == 20000);
  CHECK_MSG(rejected > 19000, "%d of %d rejected", rejected, tried);
  CHECK_MSG(badcode == 0, "%d rejections were not KR_EFORMAT", badcode);
  CHECK_MSG(unnamed == 0, "%d messages do not name the file", unnamed);
}

/* ---- allocation failures ---- */

static void test_alloc_failures(kr_ctx *ctx)
{
  sample s;
  make_sample(ctx, &s, 4.0f);
  size_t n;
  unsigned char *b = encode_sample(ctx, &s, &n);
  CHECK(kr_model_file_save(ctx, P("s.lkm"), JSON, strlen(JSON), 3, s.names, (const kr_tensor *const *)s.t) == KR_OK);
  const char *what[3] = {"parse", "load", "encode"};
  for (int which = 0; which < 3; which++) {
    size_t before = kr_mem_in_use(ctx);
    int fails = 0, ok = 0;
    for (long k = 1; k < 200; k++) {
      kr_mem_fail_at(ctx, k);
      kr_model_file *mf = NULL;
      unsigned char *e = NULL;
      size_t en;
      int st = which == 0   ? kr_model_file_parse(ctx, b, n, "mem", &mf)
               : which == 1 ? kr_model_file_load(ctx, P("s.lkm"), &mf)
                            : kr_model_file_encode(ctx, JSON, strlen(JSON), 3, s.names,
                                                   (const kr_tensor *const *)s.t, &e, &en);
      kr_mem_fail_at(ctx, 0);
      if (st == KR_OK) {
        ok = 1;
        CHECK(which == 2 || same_as_sample(mf, &s));
        kr_model_file_free(mf);
        kr_free(ctx, e);
        break;
      }
      fails++;
      CHECK_MSG(st == KR_EMEM, "%s at %ld: %s", what[which], k, kr_errmsg(ctx));
      CHECK_MSG(kr_mem_in_use(ctx) == before, "%s leaks at %ld", what[which], k);
    }
    CHECK_MSG(ok && fails > 0, "%s: ok %d after %d failures", what[which], ok, fails);
  }
  /* save: a failed save leaves the previous file as it was */
  size_t n0, n1;
  unsigned char *old = read_file(P("s.lkm"), &n0);
  for (long k = 1; k < 10; k++) {
    size_t before = kr_mem_in_use(ctx);
    kr_mem_fail_at(ctx, k);
    int st = kr_model_file_save(ctx, P("s.lkm"), "{}", 2, 0, NULL, NULL);
    kr_mem_fail_at(ctx, 0);
    CHECK(kr_mem_in_use(ctx) == before);
    if (st == KR_OK) break;
    CHECK(st == KR_EMEM);
    unsigned char *now = read_file(P("s.lkm"), &n1);
    CHECK(old && now && n0 == n1 && memcmp(old, now, n0) == 0);
    free(now);
  }
  free(old);
  CHECK(kr_model_file_save(ctx, "/nonexistent-dir/x.lkm", "{}", 2, 0, NULL, NULL) == KR_EIO);
  CHECK(has(ctx, "cannot create the temporary file"));
  kr_free(ctx, b);
  free_sample(&s);
}

/* ---- a save killed at random moments ---- */

static void test_killed_save(kr_ctx *ctx)
{
  sample a, b;
  make_sample(ctx, &a, 1.0f);
  make_sample(ctx, &b, 2.0f);
  /* a larger tensor makes each save take long enough to be interrupted */
  kr_shape big = {1, {1 << 18}};
  kr_tensor *ta = kr_tensor_full(ctx, &big, 1.0f), *tb = kr_tensor_full(ctx, &big, 2.0f);
  kr_tensor_release(a.t[0]);
  kr_tensor_release(b.t[0]);
  a.t[0] = ta;
  b.t[0] = tb;
  const char *path = P("killed.lkm");
  CHECK(kr_model_file_save(ctx, path, JSON, strlen(JSON), 3, a.names, (const kr_tensor *const *)a.t) == KR_OK);
  srand((unsigned)time(NULL));
  int good = 0, rounds = 40, as = 0, bs = 0;
  for (int r = 0; r < rounds; r++) {
    pid_t pid = fork();
    if (pid == 0) {
      for (int i = 0;; i++) {
        sample *s = (i % 2) ? &a : &b;
        kr_model_file_save(ctx, path, JSON, strlen(JSON), 3, s->names, (const kr_tensor *const *)s->t);
      }
    }
    struct timespec ts = {0, (long)(rand() % 30000) * 1000L};
    nanosleep(&ts, NULL);
    kill(pid, SIGKILL);
    waitpid(pid, NULL, 0);
    kr_model_file *mf;
    if (kr_model_file_load(ctx, path, &mf) == KR_OK) {
      float v = KR_DATA(mf->tensors[0])[12345];
      if (v == 1.0f) as++;
      if (v == 2.0f) bs++;
      good += v == 1.0f || v == 2.0f;
      kr_model_file_free(mf);
    } else {
      fprintf(stderr, "round %d: %s\n", r, kr_errmsg(ctx));
    }
  }
  CHECK_MSG(good == rounds, "%d of %d loads after a kill were whole files", good, rounds);
  printf("killed saves: %d rounds, old file %d times, new file %d times\n", rounds, as, bs);
  /* the killed children leave their temporary files: remove them */
  DIR *d = opendir(dir);
  struct dirent *e;
  while (d && (e = readdir(d))) {
    if (strstr(e->d_name, "killed.lkm.tmp")) unlink(P(e->d_name));
  }
  if (d) closedir(d);
  free_sample(&a);
  free_sample(&b);
}

/* ---- HDF5 ---- */

static void test_h5(kr_ctx *ctx)
{
  size_t before = kr_mem_in_use(ctx);
  kr_h5 *h = kr_h5_create(ctx, P("a.h5"));
  CHECK_MSG(h != NULL, "%s", kr_errmsg(ctx));
  if (!h) return;
  const char *names[2] = {"dense_1", "dropout_1"};
  kr_shape s = {2, {2, 3}};
  kr_tensor *t = kr_tensor_full(ctx, &s, 1.5f);
  CHECK(kr_h5_set_attr_string(h, "/", "model_config", "{\"a\": 1}", 8) == KR_OK);
  CHECK(kr_h5_set_attr_strings(h, "model_weights", "layer_names", 2, names) == KR_OK);
  CHECK(kr_h5_set_attr_strings(h, "model_weights/dropout_1", "weight_names", 0, NULL) == KR_OK);
  CHECK(kr_h5_set_attr_number(h, "optimizer_weights", "n", 7) == KR_OK);
  CHECK(kr_h5_write_tensor(h, "model_weights/dense_1/dense_1/kernel:0", t) == KR_OK);
  CHECK(kr_h5_write_tensor(h, "model_weights/dense_1/dense_1/kernel:0", t) != KR_OK && has(ctx, "already exists"));
  CHECK(kr_h5_write_int(h, "optimizer_weights/SGD/iterations:0", 42) == KR_OK);
  CHECK(access(P("a.h5"), F_OK) != 0);   /* nothing at the path before commit */
  CHECK(kr_h5_commit(h) == KR_OK);
  kr_h5_free(h);
  h = kr_h5_open(ctx, P("a.h5"));
  CHECK_MSG(h != NULL, "%s", kr_errmsg(ctx));
  if (h) {
    kr_h5_attr a;
    CHECK(kr_h5_get_attr(h, "/", "model_config", &a) == KR_OK && a.kind == KR_H5_STRING && a.n == 1 &&
          strcmp(a.s[0], "{\"a\": 1}") == 0);
    kr_h5_attr_free(ctx, &a);
    CHECK(kr_h5_get_attr(h, "model_weights", "layer_names", &a) == KR_OK && a.kind == KR_H5_STRINGS && a.n == 2 &&
          strcmp(a.s[1], "dropout_1") == 0);
    kr_h5_attr_free(ctx, &a);
    CHECK(kr_h5_get_attr(h, "model_weights/dropout_1", "weight_names", &a) == KR_OK && a.n == 0);
    kr_h5_attr_free(ctx, &a);
    CHECK(kr_h5_get_attr(h, "optimizer_weights", "n", &a) == KR_OK && a.kind == KR_H5_NUMBER && a.v[0] == 7);
    kr_h5_attr_free(ctx, &a);
    CHECK(kr_h5_get_attr(h, "nowhere", "x", &a) == KR_OK && a.kind == KR_H5_NONE);
    kr_tensor *r = kr_h5_read_tensor(h, "model_weights/dense_1/dense_1/kernel:0");
    CHECK(r && kr_shape_eq(&r->shape, &s) && KR_DATA(r)[5] == 1.5f);
    kr_tensor_release(r);
    double v = 0;
    CHECK(kr_h5_read_number(h, "optimizer_weights/SGD/iterations:0", &v) == KR_OK && v == 42);
    CHECK(kr_h5_read_tensor(h, "model_weights/nope") == NULL && has(ctx, "no dataset"));
    CHECK(kr_h5_read_number(h, "model_weights/dense_1/dense_1/kernel:0", &v) != KR_OK && has(ctx, "one number"));
    CHECK(kr_h5_exists(h, "model_weights/dense_1") && !kr_h5_exists(h, "model_weights/x/y"));
    kr_h5_free(h);
  }
  /* an abandoned file leaves nothing behind */
  h = kr_h5_create(ctx, P("b.h5"));
  CHECK(h != NULL);
  kr_h5_free(h);
  CHECK(access(P("b.h5"), F_OK) != 0);
  DIR *d = opendir(dir);
  struct dirent *e;
  int tmp = 0;
  while (d && (e = readdir(d)))
    if (strstr(e->d_name, "b.h5.tmp")) tmp++;
  if (d) closedir(d);
  CHECK(tmp == 0);
  CHECK(kr_h5_open(ctx, P("missing.h5")) == NULL && has(ctx, "cannot open"));
  write_file(P("text.h5"), "not hdf5 at all", 15);
  CHECK(kr_h5_open(ctx, P("text.h5")) == NULL && has(ctx, "not an HDF5 file"));
  kr_tensor_release(t);
  CHECK(kr_mem_in_use(ctx) == before);
}

static void cleanup(void)
{
  DIR *d = opendir(dir);
  struct dirent *e;
  while (d && (e = readdir(d)))
    if (e->d_name[0] != '.') unlink(P(e->d_name));
  if (d) closedir(d);
  rmdir(dir);
}

int main(void)
{
  snprintf(dir, sizeof dir, "/tmp/lkeras-mf-XXXXXX");
  if (!mkdtemp(dir)) {
    perror("mkdtemp");
    return 2;
  }
  kr_ctx *ctx = kr_ctx_new();
  test_round_trip(ctx);
  test_fixture_v1(ctx);
  test_truncations(ctx);
  test_bit_flips(ctx);
  test_lying_headers(ctx);
  test_random_files(ctx);
  test_alloc_failures(ctx);
  test_killed_save(ctx);
  test_h5(ctx);
  CHECK(kr_mem_in_use(ctx) == 0);
  kr_ctx_free(ctx);
  cleanup();
  return check_report("test_model_file");
}
