/*
** fuzz_image.c -- libFuzzer target for the PNG and JPEG decoders
** (src/io/image.c: libpng's simplified API, libjpeg-turbo), built with clang
** -fsanitize=fuzzer,address,undefined by `make fuzz-image` (long run) and
** `make test` (a bounded run, tests/fuzz/bounded.sh). The build lowers
** KR_IMAGE_MAX_PIXELS to 2^20 so that inputs declaring huge images are
** refused before their allocation, as the library refuses its own limit.
**
** The input is written to a scratch file (kr_image_read takes a path) and
** decoded to 1, 3 or 4 channels (its size modulo 3), then resized to 5 x 7.
** Every input must give an image of the declared size or an error with a
** message. Seeds: tests/fuzz/corpus_image/ (the PNG and JPEG fixtures).
*/
#include "kr.h"
#include "image.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static kr_ctx *ctx;
static char path[64];

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
  if (!ctx) {
    ctx = kr_ctx_new();
    snprintf(path, sizeof path, "/tmp/lkeras-fuzz-image-%ld", (long)getpid());
  }
  FILE *f = fopen(path, "wb");
  if (!f) return 0;
  fwrite(data, 1, size, f);
  fclose(f);
  static const int chans[3] = {1, 3, 4};
  int c = chans[size % 3];
  kr_image img, small;
  if (kr_image_read(ctx, path, c, &img) == KR_OK) {
    if (img.h < 1 || img.w < 1 || img.c != c || !img.px) __builtin_trap();
    if ((int64_t)img.h * img.w > KR_IMAGE_MAX_PIXELS) __builtin_trap();
    volatile unsigned sink = img.px[(size_t)img.h * img.w * (size_t)c - 1];
    (void)sink;
    if (kr_image_resize_nearest(ctx, &img, 5, 7, &small) == KR_OK) free(small.px);
    free(img.px);
  } else if (kr_errmsg(ctx)[0] == '\0') {
    __builtin_trap();
  }
  return 0;
}
