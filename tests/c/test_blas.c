/*
** test_blas.c -- OpenBLAS's kernels, checked and corrected (src/blas.c), as an
** embedding host sees them: the program opens keras in its own lua_State.
** OpenBLAS selects its kernels once per process, so every case runs in a
** fresh copy of this program ("child" mode) under its own environment:
**   - OpenBLAS "chose" Prescott (LKERAS_TEST_BLAS_CORE): lkeras corrects it
**     to the best core for this CPU, checked against the C reference;
**   - the user's OPENBLAS_CORETYPE wins over everything, our test knob too;
**   - a correction that disagrees with the reference is dropped, with a warning;
**   - untouched: whatever OpenBLAS and lkeras choose fits the CPU.
** In every case a product through keras agrees with a float64 reference.
*/
#include <lauxlib.h>
#include <lua.h>
#include <lualib.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include "check.h"
#include "lkeras.h"

/* the child: prints blas_info's fields and the error of a 67x131 @ 131x45 product */
static const char *CHILD =
  "local b = keras.backend.blas_info()\n"
  "for _, k in ipairs{'core', 'chosen_by', 'openblas_core', 'cpu_level', 'detail', 'rejected'} do\n"
  "  print(k .. '=' .. tostring(b[k]))\n"
  "end\n"
  "print('checked=' .. tostring(b.checked))\n"
  "print('warning=' .. tostring(b.warning))\n"
  "keras.random.seed(5)\n"
  "local M, K, N = 67, 131, 45\n"
  "local a, w = keras.random.uniform({M, K}, -1, 1), keras.random.uniform({K, N}, -1, 1)\n"
  "local c = keras.backend.dot(a, w)\n"
  "local worst = 0\n"
  "for i = 1, M do for j = 1, N do\n"
  "  local s, mag = 0, 0\n"
  "  for k = 1, K do local p = a:get(i, k) * w:get(k, j); s = s + p; mag = mag + math.abs(p) end\n"
  "  worst = math.max(worst, math.abs(c:get(i, j) - s) / (mag * K * 1.2e-7))\n"
  "end end\n"
  "print('product_err=' .. worst)\n";

static int child(void)
{
  lua_State *L = luaL_newstate();
  luaL_openlibs(L);
  luaL_requiref(L, "keras", luaopen_keras, 1);
  lua_pop(L, 1);
  int ok = luaL_dostring(L, CHILD) == LUA_OK;
  if (!ok) fprintf(stderr, "lua error: %s\n", lua_tostring(L, -1));
  lua_close(L);
  return ok ? 0 : 1;
}

typedef struct result {
  char core[64], chosen_by[32], openblas_core[64], cpu_level[32], detail[300], checked[8], rejected[64], warning[1024];
  double product_err;
  int ran;
} result;

static void field(const char *line, const char *key, char *out, size_t n)
{
  size_t k = strlen(key);
  if (strncmp(line, key, k) == 0 && line[k] == '=') {
    snprintf(out, n, "%s", line + k + 1);
    size_t m = strlen(out);
    if (m && out[m - 1] == '\n') out[m - 1] = '\0';
  }
}

/* runs this program in child mode under `envs` (an env(1) argument list) */
static result run_child(const char *self, const char *envs)
{
  result r;
  memset(&r, 0, sizeof r);
  r.product_err = 1e30;
  char cmd[1024];
  snprintf(cmd, sizeof cmd, "env %s '%s' child 2>&1", envs, self);
  FILE *p = popen(cmd, "r");
  if (!p) return r;
  char line[1024];
  while (fgets(line, sizeof line, p)) {
    field(line, "core", r.core, sizeof r.core);
    field(line, "chosen_by", r.chosen_by, sizeof r.chosen_by);
    field(line, "openblas_core", r.openblas_core, sizeof r.openblas_core);
    field(line, "cpu_level", r.cpu_level, sizeof r.cpu_level);
    field(line, "detail", r.detail, sizeof r.detail);
    field(line, "checked", r.checked, sizeof r.checked);
    field(line, "rejected", r.rejected, sizeof r.rejected);
    if (strncmp(line, "lkeras: warning: ", 17) == 0) snprintf(r.warning, sizeof r.warning, "%s", line);
    if (strncmp(line, "product_err=", 12) == 0) r.product_err = atof(line + 12);
  }
  r.ran = pclose(p) == 0;
  return r;
}

/* the instruction level a core name needs, as blas.c ranks them */
static int level_of(const char *core)
{
  static const char *avx[] = {"SandyBridge", "Bulldozer", "Piledriver", "Steamroller"};
  static const char *avx2[] = {"Haswell", "Excavator", "Zen"};
  static const char *avx512[] = {"SkylakeX", "Cooperlake", "SapphireRapids"};
  for (size_t i = 0; i < 4; i++) if (!strcasecmp(core, avx[i])) return 1;
  for (size_t i = 0; i < 3; i++) if (!strcasecmp(core, avx2[i])) return 2;
  for (size_t i = 0; i < 3; i++) if (!strcasecmp(core, avx512[i])) return 3;
  return 0;
}

static int cpu_level(const char *name)
{
  if (!strcmp(name, "AVX")) return 1;
  if (!strcmp(name, "AVX2+FMA")) return 2;
  if (!strcmp(name, "AVX-512")) return 3;
  return 0;
}

int main(int argc, char **argv)
{
  if (argc > 1 && strcmp(argv[1], "child") == 0) return child();
  const char *self = "/proc/self/exe";
  char buf[4096];
  ssize_t n = readlink(self, buf, sizeof buf - 1);
  if (n > 0) {
    buf[n] = '\0';
    self = buf;
  }
  const char *CLEAN = "-u OPENBLAS_CORETYPE -u LKERAS_TEST_BLAS_CORE -u LKERAS_TEST_BLAS_MISMATCH";
  char envs[512];

  /* 1. OpenBLAS "chose" its SSE3 fallback: corrected on any CPU with AVX or more */
  snprintf(envs, sizeof envs, "%s LKERAS_TEST_BLAS_CORE=Prescott", CLEAN);
  result a = run_child(self, envs);
  CHECK_MSG(a.ran, "child (fallback core) failed: %s", a.detail);
  CHECK_MSG(strcmp(a.openblas_core, "Prescott") == 0, "openblas_core '%s'", a.openblas_core);
  int lvl = cpu_level(a.cpu_level);
  if (lvl > 0) {
    CHECK_MSG(strcmp(a.chosen_by, "lkeras") == 0, "chosen_by '%s' (%s)", a.chosen_by, a.detail);
    CHECK_MSG(level_of(a.core) == lvl, "core %s for a %s CPU", a.core, a.cpu_level);
    CHECK_MSG(strcmp(a.checked, "true") == 0, "checked %s", a.checked);
    CHECK_MSG(strcmp(a.rejected, "nil") == 0, "rejected '%s'", a.rejected);
    CHECK_MSG(a.warning[0] == '\0', "unexpected warning: %s", a.warning);
  } else {
    CHECK_MSG(strcmp(a.chosen_by, "openblas") == 0 && strcmp(a.core, "Prescott") == 0,
              "an SSE CPU keeps Prescott, got %s (%s)", a.core, a.chosen_by);
  }
  CHECK_MSG(a.product_err <= 4.0, "product error %g bounds", a.product_err);

  /* 2. the user's OPENBLAS_CORETYPE wins, over our test knob too */
  snprintf(envs, sizeof envs, "%s OPENBLAS_CORETYPE=Prescott LKERAS_TEST_BLAS_CORE=Haswell", CLEAN);
  result u = run_child(self, envs);
  CHECK_MSG(u.ran, "child (user core) failed");
  CHECK_MSG(strcmp(u.core, "Prescott") == 0, "core '%s'", u.core);
  CHECK_MSG(strcmp(u.chosen_by, "user") == 0, "chosen_by '%s'", u.chosen_by);
  CHECK_MSG(strstr(u.detail, "OPENBLAS_CORETYPE=Prescott") != NULL, "detail '%s'", u.detail);
  CHECK_MSG(u.product_err <= 4.0, "product error %g bounds", u.product_err);

  /* 3. a corrected core that disagrees with the reference is dropped, with a warning */
  snprintf(envs, sizeof envs, "%s LKERAS_TEST_BLAS_CORE=Prescott LKERAS_TEST_BLAS_MISMATCH=1", CLEAN);
  result f = run_child(self, envs);
  CHECK_MSG(f.ran, "child (mismatch) failed");
  CHECK_MSG(strcmp(f.core, "Prescott") == 0, "core '%s'", f.core);
  if (lvl > 0) {
    CHECK_MSG(strcmp(f.chosen_by, "openblas") == 0, "chosen_by '%s'", f.chosen_by);
    CHECK_MSG(level_of(f.rejected) == lvl, "rejected '%s'", f.rejected);
    CHECK_MSG(strstr(f.warning, "disagreed with the C reference") != NULL, "warning '%s'", f.warning);
    CHECK_MSG(strcmp(f.checked, "false") == 0, "checked %s", f.checked);
  }
  CHECK_MSG(f.product_err <= 4.0, "product error %g bounds", f.product_err);

  /* 4. as found (OPENBLAS_CORETYPE unset): the kernels in use fit the CPU */
  result d = run_child(self, CLEAN);
  CHECK_MSG(d.ran, "child (as found) failed");
  CHECK_MSG(strcmp(d.chosen_by, "openblas") == 0 || strcmp(d.chosen_by, "lkeras") == 0, "chosen_by '%s'",
            d.chosen_by);
  CHECK_MSG(level_of(d.core) >= cpu_level(d.cpu_level), "core %s below a %s CPU", d.core, d.cpu_level);
  CHECK_MSG(d.product_err <= 4.0, "product error %g bounds", d.product_err);
  return check_report("test_blas");
}
