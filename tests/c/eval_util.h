/*
** eval_util.h -- evaluating graph nodes in the gradient-checking C tests
** (test_grad.c, test_conv.c, test_rnn.c): inference through kr_eval, or one
** run of a training plan, with the generator reseeded first, so that random
** ops (dropout) draw the same masks in every evaluation.
*/
#ifndef KR_EVAL_UTIL_H
#define KR_EVAL_UTIL_H

#include <math.h>
#include <string.h>

#include "kr.h"

/* values of nodes[0..n) into new tensors owned by the caller */
static int kt_eval_nodes(kr_ctx *ctx, int n, kr_node *const *nodes, int training, uint64_t seed, kr_tensor **out)
{
  for (int i = 0; i < n; i++) out[i] = NULL;
  if (!training) {
    /* reseeded too: K.dropout's ops draw masks at inference */
    for (int i = 0; i < n; i++) {
      kr_rng_seed(ctx, seed);
      if (!(out[i] = kr_eval(ctx, nodes[i]))) goto fail;
    }
    return KR_OK;
  }
  kr_plan *p = kr_plan_new(ctx, n, nodes, 0, NULL, 1, 1);
  if (!p) return kr_errcode(ctx);
  kr_rng_seed(ctx, seed);
  int st = kr_plan_run(p, 1);
  for (int i = 0; st == KR_OK && i < n; i++) {
    out[i] = kr_tensor_new(ctx, &nodes[i]->shape);
    if (!out[i]) st = kr_errcode(ctx);
    else memcpy(KR_DATA(out[i]), kr_plan_output(p, i), (size_t)kr_tensor_numel(out[i]) * sizeof(float));
  }
  kr_plan_free(p);
  if (st == KR_OK) return KR_OK;
fail:
  for (int i = 0; i < n; i++) kr_tensor_release(out[i]);
  return kr_errcode(ctx) ? kr_errcode(ctx) : KR_EARG;
}

/* the first value of a node, NaN when it cannot be evaluated */
static inline double kt_scalar(kr_ctx *ctx, kr_node *n, int training, uint64_t seed)
{
  kr_tensor *t;
  if (kt_eval_nodes(ctx, 1, &n, training, seed, &t) != KR_OK) return NAN;
  double v = KR_DATA(t)[0];
  kr_tensor_release(t);
  return v;
}

#endif
