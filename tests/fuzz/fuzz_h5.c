/*
** fuzz_h5.c -- libFuzzer target for the HDF5 weight reader (src/io/h5.c),
** built with clang -fsanitize=fuzzer,address,undefined by `make fuzz-h5`
** (long run) and `make test` (a bounded run, tests/fuzz/bounded.sh).
**
** Each input is written to a scratch file and read the way the Lua loader
** reads a Keras file: the root's model_config / keras_version / backend
** attributes, model_weights' layer_names, each layer's weight_names, each
** weight's dataset, the optimizer's weight_names and datasets, and the
** iterations number. Every call must succeed or fail with a message; memory
** must come back to zero. libhdf5 itself is not instrumented: what this
** checks is h5.c's handling of whatever libhdf5 returns.
** Seeds: tests/fuzz/corpus_h5/ holds real files saved by lkeras.
*/
#include "kr.h"
#include "io/model_file.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static kr_ctx *ctx;
static char path[64];

#define MUST_HAVE_MESSAGE(st) \
  do {                        \
    if ((st) != KR_OK && kr_errmsg(ctx)[0] == '\0') __builtin_trap(); \
  } while (0)

static void read_weights(kr_h5 *h, const char *group, const kr_h5_attr *names)
{
  char p[512];
  for (int i = 0; i < names->n && i < 64; i++) {
    snprintf(p, sizeof p, "%s/%s", group, names->s[i]);
    kr_tensor *t = kr_h5_read_tensor(h, p);
    if (t) {
      int64_t n = kr_tensor_numel(t);
      volatile float sink = n > 0 ? KR_DATA(t)[n - 1] : 0;
      (void)sink;
      kr_tensor_release(t);
    } else if (kr_errmsg(ctx)[0] == '\0') {
      __builtin_trap();
    }
  }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
  if (!ctx) {
    ctx = kr_ctx_new();
    snprintf(path, sizeof path, "/tmp/lkeras-fuzz-h5-%ld.h5", (long)getpid());
  }
  FILE *f = fopen(path, "wb");
  if (!f) return 0;
  fwrite(data, 1, size, f);
  fclose(f);
  kr_h5 *h = kr_h5_open(ctx, path);
  if (!h) {
    if (kr_errmsg(ctx)[0] == '\0') __builtin_trap();
  } else {
    kr_h5_attr a;
    static const char *const root_attrs[] = {"model_config", "keras_version", "backend", "training_config"};
    for (int k = 0; k < 4; k++) {
      int st = kr_h5_get_attr(h, "/", root_attrs[k], &a);
      MUST_HAVE_MESSAGE(st);
      if (st == KR_OK) kr_h5_attr_free(ctx, &a);
    }
    const char *top = kr_h5_exists(h, "model_weights") ? "model_weights" : "/";
    kr_h5_attr layers;
    int st = kr_h5_get_attr(h, top, "layer_names", &layers);
    MUST_HAVE_MESSAGE(st);
    if (st == KR_OK && layers.kind == KR_H5_STRINGS) {
      char g[512];
      for (int i = 0; i < layers.n && i < 64; i++) {
        snprintf(g, sizeof g, "%s/%s", strcmp(top, "/") == 0 ? "" : top, layers.s[i]);
        st = kr_h5_get_attr(h, g, "weight_names", &a);
        MUST_HAVE_MESSAGE(st);
        if (st == KR_OK) {
          if (a.kind == KR_H5_STRINGS) read_weights(h, g, &a);
          kr_h5_attr_free(ctx, &a);
        }
      }
    }
    kr_h5_attr_free(ctx, &layers);   /* zeroed on an error: freeing is safe */
    st = kr_h5_get_attr(h, "optimizer_weights", "weight_names", &a);
    MUST_HAVE_MESSAGE(st);
    if (st == KR_OK) {
      if (a.kind == KR_H5_STRINGS) read_weights(h, "optimizer_weights", &a);
      kr_h5_attr_free(ctx, &a);
    }
    double v;
    st = kr_h5_read_number(h, "optimizer_weights/SGD/iterations:0", &v);
    MUST_HAVE_MESSAGE(st);
    kr_h5_free(h);
  }
  if (kr_mem_in_use(ctx) != 0) __builtin_trap();   /* a leak on some path */
  return 0;
}
