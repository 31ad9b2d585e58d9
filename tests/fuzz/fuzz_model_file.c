/*
** fuzz_model_file.c -- libFuzzer target for the native model file parser
** (src/io/model_file.c), built with clang -fsanitize=fuzzer,address,undefined
** by `make fuzz` (long run) and `make test` (a bounded run, tests/fuzz/bounded.sh).
**
** An input with its first byte odd gets its trailing CRC-32 recomputed
** before parsing, so that mutations reach the structure checks behind the
** checksum instead of all stopping at it. Every input must give either a
** parsed file or an error with a message; memory must come back to zero.
** Seeds: tests/fuzz/corpus/ holds real files saved by lkeras.
*/
#include "kr.h"
#include "io/model_file.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <zlib.h>

static kr_ctx *ctx;

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
  if (!ctx) ctx = kr_ctx_new();
  const uint8_t *in = data;
  uint8_t *copy = NULL;
  if (size >= 36 && (data[0] & 1)) {
    copy = malloc(size);
    memcpy(copy, data, size);
    copy[0] = 0x89;   /* the magic's first byte (odd) */
    uLong c = crc32(crc32(0L, Z_NULL, 0), copy, (uInt)(size - 4));
    for (int i = 0; i < 4; i++) copy[size - 4 + i] = (uint8_t)(c >> (8 * i));
    in = copy;
  }
  kr_model_file *mf = NULL;
  int st = kr_model_file_parse(ctx, in, size, "fuzz", &mf);
  if (st == KR_OK) {
    /* touch everything the parser claims to have made */
    volatile float sink = 0;
    for (int i = 0; i < mf->ntensors; i++) {
      int64_t n = kr_tensor_numel(mf->tensors[i]);
      if (n > 0) sink += KR_DATA(mf->tensors[i])[n - 1];
      if (strlen(mf->names[i]) == 0) __builtin_trap();
    }
    if (strlen(mf->json) > mf->json_len) __builtin_trap();
    (void)sink;
    kr_model_file_free(mf);
  } else if (mf != NULL || kr_errmsg(ctx)[0] == '\0') {
    __builtin_trap();
  }
  if (kr_mem_in_use(ctx) != 0) __builtin_trap();   /* a leak on some path */
  free(copy);
  return 0;
}
