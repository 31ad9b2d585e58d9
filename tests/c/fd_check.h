/*
** fd_check.h -- the finite-difference gradient check of the C tests
** (test_grad.c, test_conv.c, test_rnn.c, test_backend.c), written once.
**
** For outputs out_k of a case and weights R_k (fixed random tensors of their
** shapes, so that d loss / d out is not all ones), loss = sum_k sum(out_k * R_k).
** The analytic gradient of the loss with respect to each variable of the case
** (kr_gradients, evaluated by the engine) is compared with central
** differences of the loss.
**
** How the numeric side is made accurate enough for a tight tolerance:
**   - the loss is summed here in float64 from the engine's float32 outputs,
**     so the only rounding in a difference is that of the outputs the
**     perturbed element actually changes (each off by u = 2^-24 relative);
**   - the step actually stored is used: ((float)(x+h) - (float)(x-h));
**   - Richardson extrapolation, D = (4 D(h/2) - D(h)) / 3 with h = 1e-2,
**     cancels the h^2 f'''/6 truncation term of the central difference
**     (1.3e-2 for x^-2 at x = 0.5, as large as the old tolerance); what is
**     left is h^4 f^(5) / 480 (~2e-6 there) plus the rounding,
**     (4/3 + 1/6) u |out| / h ~ 1e-5 |out| for an op whose perturbed element
**     changes one output, sqrt(m) times that when it changes m outputs that
**     each accumulate in float32 (products, reductions, normalizations).
** Inputs are O(1) and kept >= 0.1 = 10 h away from kinks and ties.
** Tolerance: |analytic - numeric| <= rtol * max(1, |numeric|). FD_RTOL =
** 2e-4 by default: the rounding above for m up to ~100 outputs of O(1-5)
** gives ~5e-5; measured, the worst of every check in the four tests is 6e-5
** (batchnorm, the RNN cells). A case needing more passes its own rtol and
** says why (test_conv.c: Winograd). A rule off by 1% misses FD_RTOL by a
** factor of ten or more (a tanh gradient scaled by 1.01 was tried: caught,
** worst error 4e-3; the former tolerance, 2e-2, let it pass).
** FD_WORST=1 in the environment: the tests print their worst error per op.
*/
#ifndef KR_FD_CHECK_H
#define KR_FD_CHECK_H

#include "kr.h"
#include "check.h"
#include "eval_util.h"
#include "grad_util.h"

#include <math.h>
#include <stdio.h>

#define FD_H 1e-2
#define FD_RTOL 2e-4   /* derived above */
#define FD_MAXOUT 4

typedef struct fd_opts {
  int training;         /* evaluate through a training plan (dropout, batchnorm) */
  uint64_t seed;        /* the engine's generator is reseeded before every evaluation */
  double rtol;          /* 0: FD_RTOL */
  int64_t points;       /* 0: every element of each variable; n: about n, spread out */
  int *seen;            /* [KR_OP_COUNT] or NULL: set for every op in the gradient graphs */
  int mark_loss;        /* also set `seen` for the ops of the loss graph itself */
  int helper;           /* an op the gradient graph must contain, or -1 */
  double worst;         /* out: the largest |analytic - numeric| / max(1, |numeric|) seen */
} fd_opts;

static void fd_mark(kr_node *n, int *seen, kr_node **visited, int *nv, int cap, int op, int *found)
{
  for (int i = 0; i < *nv; i++)
    if (visited[i] == n) return;
  if (*nv < cap) visited[(*nv)++] = n;
  if (seen) seen[n->op] = 1;
  if (n->op == op) *found = 1;
  for (int k = 0; k < n->nin; k++) fd_mark(n->in[k], seen, visited, nv, cap, op, found);
}

/* sum_k sum(out_k * R_k) in float64, the outputs evaluated by the engine; NaN on failure */
static double fd_loss(gcase *c, int n, kr_node *const *outs, kr_node *const *R, const fd_opts *o)
{
  kr_tensor *t[FD_MAXOUT] = {0};
  if (kt_eval_nodes(c->ctx, n, outs, o->training, o->seed, t) != KR_OK) return NAN;
  double s = 0;
  for (int k = 0; k < n; k++) {
    const float *a = KR_DATA(t[k]), *r = KR_DATA(R[k]->value);
    int64_t m = kr_tensor_numel(t[k]);
    for (int64_t i = 0; i < m; i++) s += (double)a[i] * (double)r[i];
    kr_tensor_release(t[k]);
  }
  return s;
}

/* the central difference of the loss in x[j] with step h, over the step stored */
static double fd_central(gcase *c, int n, kr_node *const *outs, kr_node *const *R, const fd_opts *o, float *x,
                         int64_t j, double h)
{
  float x0 = x[j], xp = (float)(x0 + h), xm = (float)(x0 - h);
  x[j] = xp;
  double lp = fd_loss(c, n, outs, R, o);
  x[j] = xm;
  double lm = fd_loss(c, n, outs, R, o);
  x[j] = x0;
  return (lp - lm) / ((double)xp - (double)xm);
}

/* Check d loss / d var for every variable of c; R[k] NULL (or R NULL): a
** random weight in [-1, 1] made here. Returns the number of checks failed. */
static int fd_check_outputs(gcase *c, int n, kr_node *const *outs, kr_node *const *R_in, fd_opts *o)
{
  kr_ctx *ctx = c->ctx;
  int failed_before = check_failed;
  double rtol = o->rtol > 0 ? o->rtol : FD_RTOL;
  if (c->broken || n < 1 || n > FD_MAXOUT || c->nvar == 0) {
    CHECK_MSG(0, "%s: no graph to check (%s)", c->name, kr_errmsg(ctx));
    return 1;
  }
  kr_node *R[FD_MAXOUT] = {0};
  kr_node *loss = NULL;
  for (int k = 0; k < n; k++) {
    if (!outs[k]) {
      CHECK_MSG(0, "%s: output %d was not built (%s)", c->name, k, kr_errmsg(ctx));
      return 1;
    }
    R[k] = R_in && R_in[k] ? R_in[k] : cst_u(c, outs[k]->shape, -1.0, 1.0);
    kr_node *p = R[k] ? op2(c, KR_OP_MUL, outs[k], R[k], NULL) : NULL;
    kr_node *s = p ? op1(c, KR_OP_SUM, p, AT(.i = {(1 << outs[k]->shape.ndim) - 1, 0})) : NULL;
    loss = loss && s ? op2(c, KR_OP_ADD, loss, s, NULL) : s;
    if (!loss || !R[k]->value) {
      CHECK_MSG(0, "%s: could not build the loss", c->name);
      return 1;
    }
  }
  kr_node *g[GU_MAXVAR] = {0};
  int st = kr_gradients(ctx, loss, c->nvar, c->var, g);
  CHECK_MSG(st == KR_OK, "%s: kr_gradients: %s", c->name, kr_errmsg(ctx));
  if (st != KR_OK) return 1;
  for (int v = 0; v < c->nvar; v++) gu_keep(c, g[v]);
  if (c->broken) return 1;

  kr_node *visited[512];
  int nv = 0, found = 0;
  for (int v = 0; v < c->nvar; v++) {
    CHECK_MSG(kr_shape_eq(&g[v]->shape, &c->var[v]->shape), "%s: gradient %d has the wrong shape", c->name, v);
    fd_mark(g[v], o->seen, visited, &nv, 512, o->helper, &found);
  }
  if (o->mark_loss) fd_mark(loss, o->seen, visited, &nv, 512, -1, &found);
  if (o->helper >= 0)
    CHECK_MSG(found, "%s: the gradient graph has no '%s' node", c->name, kr_op_name(o->helper));

  kr_tensor *ga[GU_MAXVAR] = {0};
  st = kt_eval_nodes(ctx, c->nvar, g, o->training, o->seed, ga);
  CHECK_MSG(st == KR_OK, "%s: evaluating the gradients: %s", c->name, kr_errmsg(ctx));
  if (st != KR_OK) return 1;

  for (int v = 0; v < c->nvar; v++) {
    float *x = KR_DATA(c->var[v]->value);
    const float *ana = KR_DATA(ga[v]);
    int64_t nx = kr_tensor_numel(c->var[v]->value);
    int bad = 0;
    double worst = 0;
    int64_t step = o->points > 0 && nx > o->points + o->points / 2 ? nx / o->points : 1;
    for (int64_t j = 0; j < nx; j += step) {
      double d1 = fd_central(c, n, outs, R, o, x, j, FD_H);
      double d2 = fd_central(c, n, outs, R, o, x, j, FD_H / 2);
      double num = (4.0 * d2 - d1) / 3.0;
      double err = fabs((double)ana[j] - num), scale = fmax(1.0, fabs(num));
      if (!isnan(err)) o->worst = fmax(o->worst, err / scale);
      if (!(err <= rtol * scale)) {
        if (bad++ < 4)
          fprintf(stderr, "%s (%s): d loss / d input %d [%lld] (x = %.6g): analytic %.7g, numeric %.7g\n", c->name,
                  o->training ? "training" : "inference", v, (long long)j, (double)x[j], (double)ana[j], num);
        worst = isnan(err) ? err : fmax(worst, err);
      }
    }
    CHECK_MSG(bad == 0, "%s: gradient of input %d: %d of %lld elements off (worst error %.3g, tolerance %.3g)",
              c->name, v, bad, (long long)nx, worst, rtol);
    kr_tensor_release(ga[v]);
  }
  return check_failed - failed_before;
}

/* At a tie or a kink the finite difference means nothing: the gradient there
** is a convention, pinned to what TensorFlow's rule gives (the values in
** want[v], d sum(out) / d var v, i.e. R = 1). Returns the checks failed. */
static inline int fd_expect_grads(gcase *c, kr_node *out, const float *const *want)
{
  int failed_before = check_failed;
  if (c->broken || !out || c->nvar == 0) {
    CHECK_MSG(0, "%s: no graph to check (%s)", c->name, kr_errmsg(c->ctx));
    return 1;
  }
  kr_node *loss = op1(c, KR_OP_SUM, out, AT(.i = {(1 << out->shape.ndim) - 1, 0}));
  kr_node *g[GU_MAXVAR] = {0};
  int st = loss ? kr_gradients(c->ctx, loss, c->nvar, c->var, g) : KR_EARG;
  CHECK_MSG(st == KR_OK, "%s: kr_gradients: %s", c->name, kr_errmsg(c->ctx));
  if (st != KR_OK) return 1;
  for (int v = 0; v < c->nvar; v++) gu_keep(c, g[v]);
  if (c->broken) return 1;
  kr_tensor *ga[GU_MAXVAR] = {0};
  st = kt_eval_nodes(c->ctx, c->nvar, g, 0, 0, ga);
  CHECK_MSG(st == KR_OK, "%s: evaluating the gradients: %s", c->name, kr_errmsg(c->ctx));
  if (st != KR_OK) return 1;
  for (int v = 0; v < c->nvar; v++) {
    int64_t n = kr_tensor_numel(ga[v]);
    for (int64_t j = 0; j < n; j++)
      CHECK_MSG(fabs((double)KR_DATA(ga[v])[j] - (double)want[v][j]) <= 1e-6,
                "%s: d sum / d input %d [%lld] (x = %g) is %.9g, want %.9g", c->name, v, (long long)j,
                (double)KR_DATA(c->var[v]->value)[j], (double)KR_DATA(ga[v])[j], (double)want[v][j]);
    kr_tensor_release(ga[v]);
  }
  return check_failed - failed_before;
}

#endif
