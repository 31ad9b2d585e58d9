/*
** check.h -- the tiny harness of the C tests. Each test program calls CHECK
** and friends, then `return check_report("name");` from main, which prints
** "name: N passed, M failed" (", K skipped" added when check_skip was
** called) and returns nonzero when something failed.
*/
#ifndef KR_CHECK_H
#define KR_CHECK_H

#include <math.h>
#include <stdio.h>

static int check_passed, check_failed, check_skipped;

#define CHECK(cond)                                                        \
  do {                                                                     \
    if (cond) check_passed++;                                              \
    else {                                                                 \
      check_failed++;                                                      \
      fprintf(stderr, "%s:%d: check failed: %s\n", __FILE__, __LINE__, #cond); \
    }                                                                      \
  } while (0)

#define CHECK_MSG(cond, ...)                                               \
  do {                                                                     \
    if (cond) check_passed++;                                              \
    else {                                                                 \
      check_failed++;                                                      \
      fprintf(stderr, "%s:%d: check failed: %s: ", __FILE__, __LINE__, #cond); \
      fprintf(stderr, __VA_ARGS__);                                        \
      fprintf(stderr, "\n");                                               \
    }                                                                      \
  } while (0)

#define CHECK_NEAR(a, b, tol)                                              \
  CHECK_MSG(fabs((double)(a) - (double)(b)) <= (tol), "%.9g vs %.9g (tol %g)", \
            (double)(a), (double)(b), (double)(tol))

/* a part that cannot run here (say why): counted as skipped, not passed */
static inline void check_skip(const char *name, const char *why)
{
  check_skipped++;
  printf("%s: skipped: %s\n", name, why);
}

static int check_report(const char *name)
{
  if (check_skipped)
    printf("%s: %d passed, %d failed, %d skipped\n", name, check_passed, check_failed, check_skipped);
  else
    printf("%s: %d passed, %d failed\n", name, check_passed, check_failed);
  return check_failed != 0;
}

#endif
