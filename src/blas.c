/*
** blas.c -- which OpenBLAS kernels run, checked once per process.
**
** OpenBLAS built with DYNAMIC_ARCH (Debian's is) picks a set of kernels (a
** "core": Prescott, Haswell, SkylakeX, ...) from CPUID when it is loaded. A
** release older than the CPU does not recognise it and falls back to its
** SSE3 kernels, several times below what the CPU can do (an Emerald Rapids
** Xeon under OpenBLAS 0.3.21 gets "Prescott": sgemm 5x below the machine).
**
** kr_blas_init, run once per process by the first kr_ctx_new (so the lkeras
** host, require "keras" from stock Lua and an embedding host all pass here):
**   1. reads the CPU's features (CPUID, and XGETBV: the OS must save the
**      registers) and ranks them: SSE < AVX < AVX2+FMA < AVX-512;
**   2. ranks the core OpenBLAS chose the same way;
**   3. when the core is below the CPU and the user has not set
**      OPENBLAS_CORETYPE, asks OpenBLAS to select again with the best core
**      it has for the CPU: gotoblas_dynamic_quit + gotoblas_dynamic_init,
**      OpenBLAS's own selection entry points, with OPENBLAS_CORETYPE set for
**      that one call and unset again afterwards. This works whether OpenBLAS
**      was loaded with lkeras or long before by the host;
**   4. checks the new core: sgemm on small and medium products (every
**      transpose, alpha and beta) against a float64 C reference. A core that
**      disagrees is dropped: OpenBLAS's own choice comes back, with a warning
**      (older OpenBLAS builds compute wrong results on some CPUs).
** A user's OPENBLAS_CORETYPE always wins and is never changed.
**
** For tests, on any machine (never set in normal use):
**   LKERAS_TEST_BLAS_CORE=NAME   behave as if OpenBLAS had chosen NAME itself
**                                (it is selected through OpenBLAS first)
**   LKERAS_TEST_BLAS_MISMATCH=1  the reference check reports a disagreement
**
** Process-wide state (the exception to "no global mutable state"): OpenBLAS's
** kernel selection is one per process, so its record here is too; it is
** written once, under pthread_once, and read-only afterwards. Another thread
** must not run OpenBLAS while the first context of the process is made.
*/
#define _GNU_SOURCE 1   /* dladdr */
#include "kr.h"

#include <dlfcn.h>
#include <float.h>
#include <math.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <cblas.h>

#if defined(__x86_64__) || defined(__i386__)
#include <cpuid.h>
#define HAVE_CPUID 1
#endif

#include "openblas.h"

static kr_blas_info info;
static pthread_once_t once = PTHREAD_ONCE_INIT;

/* ---- the CPU ---- */

enum { LEVEL_UNKNOWN = -1, LEVEL_SSE = 0, LEVEL_AVX, LEVEL_AVX2, LEVEL_AVX512 };

static const char *const level_names[] = {"SSE", "AVX", "AVX2+FMA", "AVX-512"};

typedef struct cpu_facts {
  int level;
  int amd;                      /* AuthenticAMD or HygonGenuine: Zen kernels for AVX2 */
  char model[64];
  char features[128];
} cpu_facts;

static void add_feature(cpu_facts *c, int have, const char *name)
{
  if (!have) return;
  size_t n = strlen(c->features);
  snprintf(c->features + n, sizeof c->features - n, "%s%s", n ? " " : "", name);
}

static void read_cpu(cpu_facts *c)
{
  memset(c, 0, sizeof *c);
  c->level = LEVEL_UNKNOWN;
  snprintf(c->model, sizeof c->model, "unknown");
#ifdef HAVE_CPUID
  unsigned a, b, cx, d;
  if (!__get_cpuid(0, &a, &b, &cx, &d)) return;
  unsigned maxleaf = a;
  char vendor[13];
  memcpy(vendor, &b, 4);
  memcpy(vendor + 4, &d, 4);
  memcpy(vendor + 8, &cx, 4);
  vendor[12] = '\0';
  c->amd = strcmp(vendor, "AuthenticAMD") == 0 || strcmp(vendor, "HygonGenuine") == 0;

  unsigned brand[12] = {0};
  if (__get_cpuid(0x80000000, &a, &b, &cx, &d) && a >= 0x80000004) {
    for (unsigned i = 0; i < 3; i++)
      __get_cpuid(0x80000002 + i, &brand[4 * i], &brand[4 * i + 1], &brand[4 * i + 2], &brand[4 * i + 3]);
    const char *s = (const char *)brand;
    while (*s == ' ') s++;
    snprintf(c->model, sizeof c->model, "%.47s", s);
    size_t n = strlen(c->model);
    while (n > 0 && c->model[n - 1] == ' ') c->model[--n] = '\0';
  }

  __get_cpuid(1, &a, &b, &cx, &d);
  int sse3 = (cx >> 0) & 1, fma = (cx >> 12) & 1, osxsave = (cx >> 27) & 1, avx = (cx >> 28) & 1;
  unsigned long long xcr0 = 0;
  if (osxsave) {
    unsigned lo, hi;
    __asm__ volatile("xgetbv" : "=a"(lo), "=d"(hi) : "c"(0));
    xcr0 = ((unsigned long long)hi << 32) | lo;
  }
  int os_avx = (xcr0 & 0x6) == 0x6, os_avx512 = (xcr0 & 0xe6) == 0xe6;
  int avx2 = 0, f = 0, dq = 0, cd = 0, bw = 0, vl = 0;
  if (maxleaf >= 7) {
    __cpuid_count(7, 0, a, b, cx, d);
    avx2 = (b >> 5) & 1;
    f = (b >> 16) & 1;
    dq = (b >> 17) & 1;
    cd = (b >> 28) & 1;
    bw = (b >> 30) & 1;
    vl = (b >> 31) & 1;
  }
  add_feature(c, sse3, "sse3");
  add_feature(c, avx && os_avx, "avx");
  add_feature(c, avx2 && os_avx, "avx2");
  add_feature(c, fma && os_avx, "fma");
  add_feature(c, f && os_avx512, "avx512f");
  add_feature(c, bw && os_avx512, "avx512bw");
  add_feature(c, dq && os_avx512, "avx512dq");
  add_feature(c, vl && os_avx512, "avx512vl");
  add_feature(c, cd && os_avx512, "avx512cd");
  if (f && bw && dq && vl && cd && os_avx512 && avx2 && fma)
    c->level = LEVEL_AVX512;
  else if (avx2 && fma && os_avx)
    c->level = LEVEL_AVX2;
  else if (avx && os_avx)
    c->level = LEVEL_AVX;
  else
    c->level = LEVEL_SSE;
#endif
}

/* ---- OpenBLAS's cores ---- */

/* the instruction level each x86-64 core name of OpenBLAS's DYNAMIC_ARCH needs */
static const struct { const char *name; int level; } cores[] = {
    {"Katmai", LEVEL_SSE},       {"Coppermine", LEVEL_SSE},  {"Northwood", LEVEL_SSE},
    {"Prescott", LEVEL_SSE},     {"Banias", LEVEL_SSE},      {"Atom", LEVEL_SSE},
    {"Core2", LEVEL_SSE},        {"Penryn", LEVEL_SSE},      {"Dunnington", LEVEL_SSE},
    {"Nehalem", LEVEL_SSE},      {"Athlon", LEVEL_SSE},      {"Opteron", LEVEL_SSE},
    {"Opteron_SSE3", LEVEL_SSE}, {"Barcelona", LEVEL_SSE},   {"Nano", LEVEL_SSE},
    {"Bobcat", LEVEL_SSE},       {"SandyBridge", LEVEL_AVX}, {"Bulldozer", LEVEL_AVX},
    {"Piledriver", LEVEL_AVX},   {"Steamroller", LEVEL_AVX}, {"Haswell", LEVEL_AVX2},
    {"Excavator", LEVEL_AVX2},   {"Zen", LEVEL_AVX2},        {"SkylakeX", LEVEL_AVX512},
    {"Cooperlake", LEVEL_AVX512}, {"SapphireRapids", LEVEL_AVX512},
};

static int core_level(const char *name)
{
  for (size_t i = 0; i < sizeof cores / sizeof cores[0]; i++)
    if (strcasecmp(name, cores[i].name) == 0) return cores[i].level;
  return LEVEL_UNKNOWN;
}

static const char *best_core(const cpu_facts *c)
{
  switch (c->level) {
  case LEVEL_AVX512: return "SkylakeX";
  case LEVEL_AVX2: return c->amd ? "Zen" : "Haswell";
  case LEVEL_AVX: return "SandyBridge";
  default: return NULL;
  }
}

typedef void (*select_fn)(void);

typedef struct selector {
  select_fn init, quit;
} selector;

/* OpenBLAS's selection entry points, from the library that holds the linked
** openblas_get_corename (a module loaded RTLD_LOCAL by Lua has its OpenBLAS
** outside the global scope, so RTLD_DEFAULT would not find them). */
static int find_selector(selector *s)
{
  memset(s, 0, sizeof *s);
  Dl_info di;
  void *h = NULL;
  if (dladdr((void *)(uintptr_t)&openblas_get_corename, &di) && di.dli_fname)
    h = dlopen(di.dli_fname, RTLD_NOW | RTLD_NOLOAD);
  void *init = h ? dlsym(h, "gotoblas_dynamic_init") : dlsym(RTLD_DEFAULT, "gotoblas_dynamic_init");
  void *quit = h ? dlsym(h, "gotoblas_dynamic_quit") : dlsym(RTLD_DEFAULT, "gotoblas_dynamic_quit");
  if (h) dlclose(h);   /* drops the reference NOLOAD took; the library stays loaded */
  if (!init || !quit) return 0;
  s->init = (select_fn)(uintptr_t)init;
  s->quit = (select_fn)(uintptr_t)quit;
  return 1;
}

/* select again: with `core` (NULL: OpenBLAS's own detection) */
static void reselect(const selector *s, const char *core)
{
  if (core) setenv("OPENBLAS_CORETYPE", core, 1);
  s->quit();
  s->init();
  if (core) unsetenv("OPENBLAS_CORETYPE");
}

/* ---- the reference check ---- */

static float draw(uint32_t *st)
{
  *st = *st * 1664525u + 1013904223u;
  return (float)((int)(*st >> 9) % 2001 - 1000) / 1000.0f;
}

/* one product C = alpha op(A) op(B) + beta C against float64; 1 if it agrees */
static int check_one(int M, int N, int K, int ta, int tb, float alpha, float beta, int corrupt)
{
  size_t na = (size_t)M * K, nb = (size_t)K * N, nc = (size_t)M * N;
  float *a = malloc(na * sizeof *a), *b = malloc(nb * sizeof *b), *c = malloc(nc * sizeof *c);
  float *c0 = malloc(nc * sizeof *c0);
  int ok = 0;
  if (!a || !b || !c || !c0) goto done;
  uint32_t st = (uint32_t)(M * 131 + N * 17 + K + ta * 7 + tb * 3);
  for (size_t i = 0; i < na; i++) a[i] = draw(&st);
  for (size_t i = 0; i < nb; i++) b[i] = draw(&st);
  for (size_t i = 0; i < nc; i++) c0[i] = c[i] = draw(&st);
  int lda = ta ? M : K, ldb = tb ? K : N;
  cblas_sgemm(CblasRowMajor, ta ? CblasTrans : CblasNoTrans, tb ? CblasTrans : CblasNoTrans, M, N, K, alpha,
              a, lda, b, ldb, beta, c, N);
  if (corrupt) c[nc / 2] += 1.0f;
  ok = 1;
  for (int i = 0; i < M && ok; i++)
    for (int j = 0; j < N; j++) {
      double s = 0, mag = 0;
      for (int k = 0; k < K; k++) {
        double x = ta ? a[(size_t)k * M + i] : a[(size_t)i * K + k];
        double y = tb ? b[(size_t)j * K + k] : b[(size_t)k * N + j];
        s += x * y;
        mag += fabs(x * y);
      }
      double ref = alpha * s + beta * (double)c0[(size_t)i * N + j];
      double bound = 4.0 * (K + 2) * FLT_EPSILON * (fabs(alpha) * mag + fabs(beta * c0[(size_t)i * N + j])) + 1e-30;
      if (!(fabs((double)c[(size_t)i * N + j] - ref) <= bound)) { ok = 0; break; }
    }
done:
  free(a);
  free(b);
  free(c);
  free(c0);
  return ok;
}

/* small products (OpenBLAS's small-matrix kernels) and medium ones with
** ragged edges (its packed GEMM), every transpose */
static int check_core(int corrupt)
{
  static const int sizes[][3] = {{7, 5, 9}, {67, 45, 131}, {130, 97, 259}};
  for (size_t s = 0; s < sizeof sizes / sizeof sizes[0]; s++)
    for (int t = 0; t < 4; t++)
      if (!check_one(sizes[s][0], sizes[s][1], sizes[s][2], t & 1, t >> 1, s == 1 ? 0.75f : 1.0f,
                     s == 0 ? 0.0f : 0.5f, corrupt && s == 1 && t == 3))
        return 0;
  return 1;
}

/* ---- the decision ---- */

static void decide(void)
{
  cpu_facts cpu;
  read_cpu(&cpu);
  snprintf(info.cpu_model, sizeof info.cpu_model, "%s", cpu.model);
  snprintf(info.cpu_features, sizeof info.cpu_features, "%s", cpu.features);
  snprintf(info.cpu_level, sizeof info.cpu_level, "%s", cpu.level >= 0 ? level_names[cpu.level] : "unknown");

  selector sel;
  int can_select = find_selector(&sel);
  const char *user = getenv("OPENBLAS_CORETYPE");
  const char *test_core = getenv("LKERAS_TEST_BLAS_CORE");
  const char *mismatch = getenv("LKERAS_TEST_BLAS_MISMATCH");
  int corrupt = mismatch && *mismatch && strcmp(mismatch, "0") != 0;

  if (user && *user) {
    snprintf(info.chosen_by, sizeof info.chosen_by, "user");
    snprintf(info.detail, sizeof info.detail, "OPENBLAS_CORETYPE=%.40s is set: used as it is", user);
  } else {
    if (test_core && *test_core && can_select) reselect(&sel, test_core);   /* "OpenBLAS chose it" */
    const char *own = openblas_get_corename();
    snprintf(info.openblas_core, sizeof info.openblas_core, "%s", own);
    int own_level = core_level(own);
    const char *want = best_core(&cpu);
    if (!can_select) {
      snprintf(info.chosen_by, sizeof info.chosen_by, "openblas");
      snprintf(info.detail, sizeof info.detail, "this OpenBLAS build selects no kernels at run time");
    } else if (own_level == LEVEL_UNKNOWN || cpu.level == LEVEL_UNKNOWN) {
      snprintf(info.chosen_by, sizeof info.chosen_by, "openblas");
      snprintf(info.detail, sizeof info.detail, "core '%.40s' or this CPU is not one lkeras knows: left as it is",
               own);
    } else if (own_level >= cpu.level || !want) {
      snprintf(info.chosen_by, sizeof info.chosen_by, "openblas");
      snprintf(info.detail, sizeof info.detail, "OpenBLAS's choice fits this CPU (%s)", level_names[cpu.level]);
    } else {
      reselect(&sel, want);
      const char *now = openblas_get_corename();
      int ok = core_level(now) > own_level && check_core(corrupt);
      if (ok) {
        snprintf(info.chosen_by, sizeof info.chosen_by, "lkeras");
        snprintf(info.detail, sizeof info.detail, "OpenBLAS chose %.40s (%s) for this %s CPU; %.40s agreed with a C reference",
                 own, level_names[own_level], level_names[cpu.level], now);
        info.checked = 1;
      } else {
        char got[48];
        snprintf(got, sizeof got, "%s", now);
        reselect(&sel, test_core && *test_core ? test_core : NULL);
        snprintf(info.chosen_by, sizeof info.chosen_by, "openblas");
        snprintf(info.rejected, sizeof info.rejected, "%s", got);
        snprintf(info.detail, sizeof info.detail, "%s %.40s disagreed with the C reference: OpenBLAS's own %.40s kept",
                 core_level(got) > own_level ? "the better core" : "selecting the better core failed; got", got,
                 openblas_get_corename());
        snprintf(info.warning, sizeof info.warning,
                 "lkeras: warning: OpenBLAS runs its %s kernels on this %s CPU (%s); %s. Set OPENBLAS_CORETYPE to choose.",
                 openblas_get_corename(), level_names[cpu.level], info.cpu_model, info.detail);
      }
    }
  }
  snprintf(info.core, sizeof info.core, "%s", openblas_get_corename());
  snprintf(info.config, sizeof info.config, "%s", openblas_get_config());
  if (info.warning[0]) fprintf(stderr, "%s\n", info.warning);
}

const kr_blas_info *kr_blas_init(void)
{
  pthread_once(&once, decide);
  return &info;
}

int kr_blas_threads(void) { return openblas_get_num_threads(); }
