/*
** test_dist.c -- the engine side of keras.distributed without MPI: a grouped
** plan (kr_plan_new_grouped) computes what the ordinary plan computes, with
** its gradient outputs end to end in one region of its arena; the
** single-process world (src/dist.h) answers every call; kr_dist_open stays
** single without mpirun. The MPI runs are tests/dist/run.sh.
*/
#include <stdlib.h>
#include <string.h>

#include "check.h"
#include "dist.h"
#include "kr.h"
#include "ops.h"

static kr_node *op(kr_ctx *ctx, int o, kr_node *a, kr_node *b, int64_t i0)
{
  kr_attr at;
  memset(&at, 0, sizeof at);
  at.i[0] = i0;
  return b ? kr_op2(ctx, o, a, b, &at) : kr_op1(ctx, o, a, &at);
}

static void test_grouped_plan(void)
{
  kr_ctx *ctx = kr_ctx_new();
  kr_rng_seed(ctx, 5);
  kr_shape xs = {2, {KR_BATCH, 6}}, Ws = {2, {6, 5}}, Vs = {2, {5, 3}}, bs = {1, {3}};
  kr_node *x = kr_node_input(ctx, &xs);
  kr_tensor *Wt = kr_tensor_new(ctx, &Ws), *Vt = kr_tensor_new(ctx, &Vs), *bt = kr_tensor_new(ctx, &bs);
  float *w = KR_DATA(Wt), *v = KR_DATA(Vt), *bb = KR_DATA(bt);
  for (int i = 0; i < 30; i++) w[i] = (float)kr_rng_normal(ctx) * 0.5f;
  for (int i = 0; i < 15; i++) v[i] = (float)kr_rng_normal(ctx) * 0.5f;
  for (int i = 0; i < 3; i++) bb[i] = 0.1f * (float)i;
  kr_node *W = kr_node_variable(ctx, Wt), *V = kr_node_variable(ctx, Vt), *b = kr_node_variable(ctx, bt);
  kr_node *h0 = op(ctx, KR_OP_MATMUL, x, W, 0);
  kr_node *h = op(ctx, KR_OP_TANH, h0, NULL, 0);
  kr_node *o0 = op(ctx, KR_OP_MATMUL, h, V, 0);
  kr_node *o = op(ctx, KR_OP_ADD, o0, b, 0);
  kr_node *sq = op(ctx, KR_OP_MUL, o, o, 0);
  kr_node *loss = op(ctx, KR_OP_MEAN, sq, NULL, 3);   /* axes mask: both */
  CHECK(loss != NULL);
  kr_node *vars[3] = {W, V, b}, *grads[3] = {NULL, NULL, NULL};
  int gst = kr_gradients(ctx, loss, 3, vars, grads);
  CHECK_MSG(gst == KR_OK, "%s", kr_errmsg(ctx));
  if (gst != KR_OK) return;
  kr_node *outs[4] = {loss, grads[0], grads[1], grads[2]};
  kr_plan *a = kr_plan_new(ctx, 4, outs, 1, &x, 8, 1);
  kr_plan *g = kr_plan_new_grouped(ctx, 4, outs, 1, &x, 8, 1, 1);
  CHECK(a != NULL && g != NULL);
  if (!a || !g) return;
  float *arena = calloc(1, kr_plan_arena_bytes(g));
  kr_plan_bind(g, arena);
  float *xa = kr_plan_input(a, 0), *xg = kr_plan_input(g, 0);
  for (int i = 0; i < 8 * 6; i++) xa[i] = xg[i] = (float)kr_rng_normal(ctx);
  CHECK(kr_plan_run(a, 7) == KR_OK);
  CHECK(kr_plan_run(g, 7) == KR_OK);
  size_t n = 0;
  float *region = kr_plan_group(g, &n);
  size_t want = 30 + 15 + 3, in_region = 0;
  CHECK_MSG(n >= want && n <= want + 3 * 15, "region of %zu floats for %zu gradient floats", n, want);
  CHECK(kr_plan_output(a, 0)[0] == kr_plan_output(g, 0)[0]);
  const size_t sizes[3] = {30, 15, 3};
  for (int k = 0; k < 3; k++) {
    const float *pa = kr_plan_output(a, k + 1), *pg = kr_plan_output(g, k + 1);
    CHECK_MSG(memcmp(pa, pg, sizes[k] * sizeof(float)) == 0, "gradient %d differs in the grouped plan", k);
    int inside = pg >= region && pg + sizes[k] <= region + n;
    CHECK_MSG(inside, "gradient %d is outside the region", k);
    in_region += inside ? sizes[k] : 0;
  }
  CHECK(in_region == want);
  /* three disjoint buffers */
  for (int k = 0; k < 3; k++)
    for (int m = k + 1; m < 3; m++) {
      const float *pk = kr_plan_output(g, k + 1), *pm = kr_plan_output(g, m + 1);
      CHECK(pk + sizes[k] <= pm || pm + sizes[m] <= pk);
    }
  /* summing the region in place (as the reducer does) touches only gradients */
  for (size_t i = 0; i < n; i++) region[i] *= 2.0f;
  CHECK(kr_plan_output(g, 3)[1] == 2.0f * kr_plan_output(a, 3)[1]);
  CHECK(kr_plan_output(g, 0)[0] == kr_plan_output(a, 0)[0]);
  /* an ordinary plan has no region */
  size_t none = 1;
  kr_plan_group(a, &none);
  CHECK(none == 0);
  kr_plan_free(a);
  kr_plan_free(g);
  free(arena);
  kr_node *ns[] = {x, W, V, b, h0, h, o0, o, sq, loss, grads[0], grads[1], grads[2]};
  for (size_t i = 0; i < sizeof ns / sizeof *ns; i++) kr_node_release(ns[i]);
  kr_tensor_release(Wt);
  kr_tensor_release(Vt);
  kr_tensor_release(bt);
  kr_ctx_free(ctx);
}

static void test_single_world(void)
{
  kr_dist d;
  char err[KR_DIST_ERR] = "";
  setenv("LKERAS_DIST", "single", 1);
  CHECK(kr_dist_open(&d, err) == 0);
  CHECK(d.size == 1 && d.rank == 0 && d.local_size == 1 && d.local_rank == 0);
  CHECK(strcmp(d.ops->name, "single") == 0);
  float buf[4] = {1, 2, 3, 4}, out[4] = {0, 0, 0, 0};
  double dd[2] = {0.5, 1.5};
  CHECK(d.ops->allreduce(d.impl, buf, 4, KR_DIST_F32, err) == 0 && buf[3] == 4);
  CHECK(d.ops->allreduce(d.impl, dd, 2, KR_DIST_F64, err) == 0 && dd[1] == 1.5);
  CHECK(d.ops->broadcast(d.impl, buf, 4, KR_DIST_F32, 0, err) == 0);
  CHECK(d.ops->broadcast(d.impl, buf, 4, KR_DIST_F32, 1, err) != 0);
  CHECK_MSG(strstr(err, "root 1") != NULL, "%s", err);
  size_t counts[1] = {3};
  CHECK(d.ops->allgather(d.impl, buf, out, counts, KR_DIST_F32, err) == 0);
  CHECK(out[0] == 1 && out[2] == 3 && out[3] == 0);
  CHECK(d.ops->barrier(d.impl, err) == 0);
  d.ops->finalize(d.impl);
  /* with a broken plugin path and mpirun's variable, the error names what to install */
  setenv("LKERAS_DIST", "mpi", 1);
  setenv("LKERAS_MPI_PLUGIN", "/nonexistent/keras_mpi.so", 1);
  CHECK(kr_dist_open(&d, err) != 0);
  CHECK_MSG(strstr(err, "libopenmpi-dev") != NULL && strstr(err, "/nonexistent/keras_mpi.so") != NULL, "%s", err);
  CHECK(d.size == 1);
  unsetenv("LKERAS_DIST");
  unsetenv("LKERAS_MPI_PLUGIN");
}

int main(void)
{
  test_grouped_plan();
  test_single_world();
  return check_report("test_dist");
}
