/*
** grad_util.h -- helpers of test_grad.c: a seeded random source of the test's
** own, shape literals, and a "case" that owns the nodes it builds so that
** every gradient check can end with a leak check.
**   S(3, 4)   the shape (3, 4); S0 the scalar shape ()
**   AT(...)   a kr_attr literal, e.g. AT(.i = {2, 1}) or AT(.f = {0.1, 0.6})
**   KINKS(a, b, ...)   points the random inputs must stay away from
*/
#ifndef KR_GRAD_UTIL_H
#define KR_GRAD_UTIL_H

#include "kr.h"
#include "check.h"

#include <stdint.h>
#include <string.h>

/* ---- random numbers of the test (xorshift64*), independent of the engine's ---- */

static uint64_t gu_state = 0x2545f4914f6cdd1dULL;

static double gu_urand(void)
{
  gu_state ^= gu_state >> 12;
  gu_state ^= gu_state << 25;
  gu_state ^= gu_state >> 27;
  return (double)((gu_state * 0x2545f4914f6cdd1dULL) >> 11) * 0x1.0p-53;
}

static double gu_uniform(double lo, double hi) { return lo + (hi - lo) * gu_urand(); }

/* ---- literals ---- */

static kr_shape gu_shape(int n, const int64_t *d) { return kr_shape_make(n, d); }

#define S(...) gu_shape((int)(sizeof((int64_t[]){__VA_ARGS__}) / sizeof(int64_t)), (int64_t[]){__VA_ARGS__})
#define S0 gu_shape(0, NULL)
#define AT(...) (&(kr_attr){__VA_ARGS__})
#define KINKS(...) (int)(sizeof((double[]){__VA_ARGS__}) / sizeof(double)), (double[]){__VA_ARGS__}
#define NOKINKS 0, NULL

/* ---- tensors ---- */

/* uniform in [lo, hi], every value at least `gap` away from each kink */
static kr_tensor *gu_t_uniform(kr_ctx *ctx, kr_shape s, double lo, double hi, int nk, const double *kinks,
                               double gap)
{
  kr_tensor *t = kr_tensor_new(ctx, &s);
  if (!t) return NULL;
  float *d = KR_DATA(t);
  for (int64_t j = 0; j < kr_tensor_numel(t); j++) {
    double v;
    int ok;
    do {
      v = gu_uniform(lo, hi);
      ok = 1;
      for (int k = 0; k < nk; k++)
        if (fabs(v - kinks[k]) < gap) ok = 0;
    } while (!ok);
    d[j] = (float)v;
  }
  return t;
}

/* offset + step * (k - n/2) for k a random permutation of 0..n-1: distinct
** values spaced by step (no ties for max/min) */
static kr_tensor *gu_t_grid(kr_ctx *ctx, kr_shape s, double step, double offset)
{
  kr_tensor *t = kr_tensor_new(ctx, &s);
  if (!t) return NULL;
  int64_t n = kr_tensor_numel(t);
  float *d = KR_DATA(t);
  for (int64_t j = 0; j < n; j++) d[j] = (float)(offset + step * (double)(j - n / 2));
  for (int64_t j = n - 1; j > 0; j--) {
    int64_t k = (int64_t)(gu_urand() * (double)(j + 1));
    float tmp = d[j];
    d[j] = d[k];
    d[k] = tmp;
  }
  return t;
}

static kr_tensor *gu_t_data(kr_ctx *ctx, kr_shape s, const float *data)
{
  kr_tensor *t = kr_tensor_new(ctx, &s);
  if (t) memcpy(KR_DATA(t), data, (size_t)kr_tensor_numel(t) * sizeof(float));
  return t;
}

/* ---- a gradient case: the nodes it built, its variables, the memory before ---- */

#define GU_MAXVAR 8
#define GU_MAXOWN 48

typedef struct gcase {
  kr_ctx *ctx;
  const char *name;
  int op;                       /* the op whose gradient rule is under test */
  size_t base;                  /* kr_mem_in_use when the case began */
  int nvar, nown, broken;
  kr_node *var[GU_MAXVAR];
  kr_node *own[GU_MAXOWN];
} gcase;

static void gu_begin(gcase *c, kr_ctx *ctx, const char *name, int op)
{
  memset(c, 0, sizeof *c);
  c->ctx = ctx;
  c->name = name;
  c->op = op;
  c->base = kr_mem_in_use(ctx);
}

static kr_node *gu_keep(gcase *c, kr_node *n)
{
  if (!n || c->nown == GU_MAXOWN) {
    if (!c->broken) fprintf(stderr, "%s: building the graph failed: %s\n", c->name, n ? "too many nodes" : kr_errmsg(c->ctx));
    c->broken = 1;
    if (n) kr_node_release(n);
    return NULL;
  }
  c->own[c->nown++] = n;
  return n;
}

/* a leaf from a tensor (consumed); variables are what the check differentiates by */
static kr_node *gu_leaf(gcase *c, kr_tensor *t, int variable)
{
  if (!t) return gu_keep(c, NULL);
  kr_node *n = variable ? kr_node_variable(c->ctx, t) : kr_node_const(c->ctx, t);
  kr_tensor_release(t);
  if (!gu_keep(c, n)) return NULL;
  if (variable) c->var[c->nvar++] = n;
  return n;
}

static kr_node *var_u(gcase *c, kr_shape s, double lo, double hi)
{
  return gu_leaf(c, gu_t_uniform(c->ctx, s, lo, hi, NOKINKS, 0), 1);
}

/* away from kinks by 0.1: ten times the finite-difference step */
static kr_node *var_k(gcase *c, kr_shape s, double lo, double hi, int nk, const double *kinks)
{
  return gu_leaf(c, gu_t_uniform(c->ctx, s, lo, hi, nk, kinks, 0.1), 1);
}

static kr_node *var_grid(gcase *c, kr_shape s, double step, double offset)
{
  return gu_leaf(c, gu_t_grid(c->ctx, s, step, offset), 1);
}

static kr_node *var_data(gcase *c, kr_shape s, const float *d) { return gu_leaf(c, gu_t_data(c->ctx, s, d), 1); }
static kr_node *cst_data(gcase *c, kr_shape s, const float *d) { return gu_leaf(c, gu_t_data(c->ctx, s, d), 0); }
static kr_node *cst_zeros(gcase *c, kr_shape s) { return gu_leaf(c, kr_tensor_zeros(c->ctx, &s), 0); }

static kr_node *cst_u(gcase *c, kr_shape s, double lo, double hi)
{
  return gu_leaf(c, gu_t_uniform(c->ctx, s, lo, hi, NOKINKS, 0), 0);
}

static kr_node *op1(gcase *c, int op, kr_node *a, const kr_attr *at)
{
  return gu_keep(c, kr_node_op(c->ctx, op, 1, &a, at));
}

static kr_node *op2(gcase *c, int op, kr_node *a, kr_node *b, const kr_attr *at)
{
  kr_node *in[2] = {a, b};
  return gu_keep(c, kr_node_op(c->ctx, op, 2, in, at));
}

static kr_node *opn(gcase *c, int op, int n, kr_node *const *in, const kr_attr *at)
{
  return gu_keep(c, kr_node_op(c->ctx, op, n, in, at));
}

/* release everything the case built and check that nothing is left over */
static void gu_end(gcase *c)
{
  while (c->nown > 0) kr_node_release(c->own[--c->nown]);
  CHECK_MSG(kr_mem_in_use(c->ctx) == c->base, "%s: %zu bytes leaked", c->name,
            kr_mem_in_use(c->ctx) - c->base);
}

#endif
