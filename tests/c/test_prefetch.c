/*
** test_prefetch.c -- row gathers on a worker thread (src/prefetch.c): the
** rows arrive as the synchronous gather puts them, for several sources in one
** job and for many jobs in flight at once; waiting twice is harmless.
*/
#include "kr.h"
#include "prefetch.h"
#include "check.h"

#include <string.h>

#define ROWS 64
#define COLS 5
#define JOBS 8

int main(void)
{
  kr_ctx *ctx = kr_ctx_new();
  CHECK(ctx != NULL);
  if (!ctx) return check_report("test_prefetch");
  kr_shape s = {2, {ROWS, COLS}}, s1 = {1, {ROWS}};
  kr_tensor *a = kr_tensor_new(ctx, &s), *b = kr_tensor_new(ctx, &s1);
  for (int i = 0; i < ROWS * COLS; i++) KR_DATA(a)[i] = (float)i;
  for (int i = 0; i < ROWS; i++) KR_DATA(b)[i] = 1000.0f + (float)i;

  static int64_t idx[JOBS][ROWS];
  static float out_a[JOBS][ROWS * COLS], out_b[JOBS][ROWS], want[ROWS * COLS];
  kr_prefetch jobs[JOBS];
  for (int j = 0; j < JOBS; j++) {
    for (int k = 0; k < ROWS; k++) idx[j][k] = (k * (2 * j + 1) + j) % ROWS;
    memset(&jobs[j], 0, sizeof jobs[j]);
    jobs[j].g[0] = (kr_gather){a, out_a[j], idx[j], ROWS};
    jobs[j].g[1] = (kr_gather){b, out_b[j], idx[j], ROWS - j};   /* a shorter second list */
    jobs[j].ng = 2;
    kr_prefetch_start(&jobs[j]);
  }
  for (int j = JOBS - 1; j >= 0; j--) {   /* waited in another order than started */
    kr_prefetch_wait(&jobs[j]);
    kr_prefetch_wait(&jobs[j]);
    CHECK(jobs[j].running == 0);
    kr_tensor_gather_rows(want, a, idx[j], ROWS);
    CHECK(memcmp(want, out_a[j], sizeof want) == 0);
    int ok = 1;
    for (int k = 0; k < ROWS - j; k++)
      if (out_b[j][k] != 1000.0f + (float)idx[j][k]) ok = 0;
    CHECK_MSG(ok, "job %d: second source", j);
  }
  /* a job of no gathers */
  kr_prefetch empty;
  memset(&empty, 0, sizeof empty);
  kr_prefetch_start(&empty);
  kr_prefetch_wait(&empty);
  CHECK(empty.running == 0);

  kr_tensor_release(a);
  kr_tensor_release(b);
  kr_ctx_free(ctx);
  return check_report("test_prefetch");
}
