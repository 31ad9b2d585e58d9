/*
** fuzz_npz.c -- libFuzzer target for the .npz reader (src/io/npz.c, with
** npy.c for its members) and the pickle subset reader (src/io/pickle.c),
** built with clang -fsanitize=fuzzer,address,undefined by `make fuzz-npz`
** (long run) and `make test` (a bounded run, tests/fuzz/bounded.sh).
**
** An input whose first byte is 'P' is a bare pickle (the next byte is the
** array length it must hold); any other input is a whole .npz archive, and
** when its first byte is odd the CRC-32 of every stored member is fixed
** before parsing, so that mutations reach the .npy and pickle checks behind
** the checksum. Every input must give either members or an error with a
** message, and memory must come back to zero.
** Seeds: tests/fuzz/corpus_npz/ (copies of the .npz files of tests/fixtures/datasets and
** of their pickles).
*/
#include "kr.h"
#include "io/io.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <zlib.h>

static kr_ctx *ctx;

static int member(void *ud, const char *name, kr_tensor *t, const kr_ragged *r)
{
  volatile int64_t sink = 0;
  if (strlen(name) == 0) __builtin_trap();
  if (t) {
    int64_t n = kr_tensor_numel(t);
    if (n > 0) sink += (int64_t)KR_DATA(t)[n - 1];
    kr_tensor_release(t);
  } else {
    if (r->offsets[0] != 0) __builtin_trap();
    for (int64_t i = 0; i < r->n; i++) {
      if (r->offsets[i + 1] < r->offsets[i]) __builtin_trap();
      if (r->offsets[i + 1] > r->offsets[i]) sink += r->values[r->offsets[i + 1] - 1];
    }
  }
  (void)ud;
  (void)sink;
  return KR_OK;
}

static uint32_t rd32(const uint8_t *p) { return p[0] | p[1] << 8 | p[2] << 16 | (uint32_t)p[3] << 24; }

/* the CRC-32 of each stored member, set in both headers */
static void fix_crcs(uint8_t *b, size_t len)
{
  for (size_t at = 0; at + 46 <= len; at++) {
    if (rd32(b + at) != 0x02014b50u || b[at + 10] != 0) continue;
    uint32_t loc = rd32(b + at + 42), csize = rd32(b + at + 20);
    if (loc > len || len - loc < 30 || rd32(b + loc) != 0x04034b50u) continue;
    size_t data = (size_t)loc + 30 + (b[loc + 26] | b[loc + 27] << 8) + (b[loc + 28] | b[loc + 29] << 8);
    if (data > len || csize > len - data) continue;
    uLong c = crc32(crc32(0L, Z_NULL, 0), b + data, (uInt)csize);
    for (int i = 0; i < 4; i++) b[at + 16 + i] = b[loc + 14 + i] = (uint8_t)(c >> (8 * i));
  }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
  if (!ctx) ctx = kr_ctx_new();
  if (size >= 2 && data[0] == 'P') {
    kr_ragged r;
    int st = kr_pickle_int_lists(ctx, data + 2, size - 2, "fuzz", data[1], &r);
    if (st == KR_OK) {
      member(NULL, "x", NULL, &r);
      kr_ragged_free(ctx, &r);
    } else if (kr_errmsg(ctx)[0] == '\0') {
      __builtin_trap();
    }
  } else {
    uint8_t *copy = malloc(size ? size : 1);
    memcpy(copy, data, size);
    if (size > 0 && (data[0] & 1)) fix_crcs(copy, size);
    int st = kr_npz_parse(ctx, copy, size, "fuzz", member, NULL);
    if (st != KR_OK && kr_errmsg(ctx)[0] == '\0') __builtin_trap();
    free(copy);
  }
  if (kr_mem_in_use(ctx) != 0) __builtin_trap();   /* a leak on some path */
  return 0;
}
