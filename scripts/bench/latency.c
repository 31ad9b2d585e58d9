/*
** latency.c -- the latency benchmark's harness for lkeras (make bench, the
** latency section; scripts/bench/latency.sh runs it interleaved with the
** libtorch harness, latency_torch.cpp). A model built in Lua answers
** single-sample calls through lk_predict, each timed alone:
**
**   latency MODEL CALLS RAWFILE [RSS_CALLS]
**
** MODEL: mlp (Dense 4-64-64-2, relu) or lstm (LSTM(32) over one step of 4
** features). Appends one line per call (nanoseconds) to RAWFILE, prints a
** JSON line for the round (median, p99, p99.9 in microseconds, the engine's
** allocations per call), and with RSS_CALLS the resident set's growth over
** that many more calls. One thread (lk_set_num_threads), as the peer.
*/
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <lauxlib.h>
#include <lualib.h>

#include "lkeras.h"

static const char *MLP =
  "keras.random.seed(1)\n"
  "return keras.Sequential{keras.layers.Dense{64, input_shape = {4}, activation = 'relu'},\n"
  "                        keras.layers.Dense{64, activation = 'relu'}, keras.layers.Dense{2}}\n";
static const char *LSTM =
  "keras.random.seed(1)\n"
  "return keras.Sequential{keras.layers.LSTM{32, input_shape = {1, 4}}}\n";

static double now_ns(void)
{
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec * 1e9 + (double)ts.tv_nsec;
}

static long rss_kb(void)
{
  FILE *f = fopen("/proc/self/statm", "r");
  long pages = 0, res = 0;
  if (f) {
    if (fscanf(f, "%ld %ld", &pages, &res) != 2) res = 0;
    fclose(f);
  }
  return res * 4;   /* 4 KiB pages */
}

static int cmp(const void *a, const void *b)
{
  float x = *(const float *)a, y = *(const float *)b;
  return (x > y) - (x < y);
}

int main(int argc, char **argv)
{
  if (argc < 4) {
    fprintf(stderr, "usage: latency mlp|lstm CALLS RAWFILE [RSS_CALLS]\n");
    return 2;
  }
  const char *name = argv[1];
  long calls = atol(argv[2]), rss_calls = argc > 4 ? atol(argv[4]) : 0;
  lua_State *L = luaL_newstate();
  luaL_openlibs(L);
  luaL_requiref(L, "keras", luaopen_keras, 1);
  lua_pop(L, 1);
  lk_set_num_threads(L, 1);
  if (luaL_dostring(L, strcmp(name, "lstm") ? MLP : LSTM) != LUA_OK) {
    fprintf(stderr, "latency: %s\n", lua_tostring(L, -1));
    return 1;
  }
  lk_model *m = lk_model_get(L, -1);
  lua_pop(L, 1);
  int64_t nin, nout;
  if (!m || lk_model_io(m, &nin, &nout) != LK_OK) {
    fprintf(stderr, "latency: %s\n", lk_errmsg(L));
    return 1;
  }
  float x[64], y[64];
  for (int i = 0; i < nin; i++) x[i] = 0.1f * (float)(i + 1);
  for (int i = 0; i < 1000; i++) lk_predict(m, x, 1, y);   /* warm up */
  float *t = malloc((size_t)calls * sizeof *t);
  if (!t) return 1;
  uint64_t a0 = lk_memory_allocs(L);
  for (long i = 0; i < calls; i++) {
    x[0] = (float)(i & 7) * 0.01f;
    double s = now_ns();
    if (lk_predict(m, x, 1, y) != LK_OK) {
      fprintf(stderr, "latency: %s\n", lk_errmsg(L));
      return 1;
    }
    t[i] = (float)(now_ns() - s);
  }
  double allocs_per_call = (double)(lk_memory_allocs(L) - a0) / (double)calls;
  FILE *raw = fopen(argv[3], "a");
  for (long i = 0; raw && i < calls; i++) fprintf(raw, "%.0f\n", t[i]);
  if (raw) fclose(raw);
  qsort(t, (size_t)calls, sizeof *t, cmp);
  printf("{\"side\": \"lkeras\", \"model\": \"%s\", \"calls\": %ld, \"median_us\": %.3f, \"p99_us\": %.3f, "
         "\"p999_us\": %.3f, \"engine_allocs_per_call\": %.3f, \"y0\": %.6f",
         name, calls, t[calls / 2] / 1e3, t[(long)(calls * 0.99)] / 1e3, t[(long)(calls * 0.999)] / 1e3,
         allocs_per_call, (double)y[0]);
  if (rss_calls > 0) {
    long r0 = rss_kb();
    for (long i = 0; i < rss_calls; i++) lk_predict(m, x, 1, y);
    printf(", \"rss_calls\": %ld, \"rss_growth_kb\": %ld", rss_calls, rss_kb() - r0);
  }
  printf("}\n");
  free(t);
  lk_model_release(m);
  lua_close(L);
  return 0;
}
