/*
** test_conv.c -- the conv family's ops (src/ops_conv.c, src/kernels/conv.c).
**   - the op table rows of opdefs_conv.h;
**   - forward values and gradients against PyTorch (float64) fixtures
**     (tests/fixtures/conv_fixtures.h, scripts/fixtures/conv_fixtures.py):
**     |got - want| <= 1e-5 * max(1, |want|), with 1 and 2 threads;
**   - larger problems that take the threaded paths (2 and 3 workers) against
**     a direct double-precision implementation written here, and against the
**     same op on one thread;
**   - finite-difference gradient checks of every differentiable op of the
**     family (fd_check.h: central differences with Richardson extrapolation,
**     the loss summed in float64, |analytic - numeric| <= FD_RTOL * max(1,
**     |numeric|), Winograd's looser one explained at FD_RTOL_WINOGRAD; inputs
**     kept away from kinks and ties), and that every gradient helper op appeared
**     in a checked gradient graph;
**   - shape errors (messages naming the op and the shapes), no allocation in
**     a plan run, and an allocation-failure sweep over graph + gradients +
**     plan + run with no leak.
*/
#include "kr.h"
#include "ops.h"
#include "ops_conv.h"
#include "check.h"
#include "eval_util.h"
#include "grad_util.h"
#include "fd_check.h"
#include "../fixtures/conv_fixtures.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#define FX_RTOL 1e-5
#define DROP_SEED 20240612u

static int covered[KR_OP_COUNT];
static int in_grad[KR_OP_COUNT];

static int has(const char *s, const char *sub) { return strstr(s, sub) != NULL; }

/* ---- the table ---- */

static void test_table(void)
{
  static const struct { int op; const char *name; } rows[] = {
#define KR_OPDEF(e, s) {KR_OP_##e, s},
#include "opdefs_conv.h"
#undef KR_OPDEF
  };
  int n = (int)(sizeof rows / sizeof rows[0]);
  CHECK(n == 16);
  for (int i = 0; i < n; i++) {
    CHECK_MSG(kr_op_lookup(rows[i].name) == rows[i].op, "kr_op_lookup('%s')", rows[i].name);
    CHECK_MSG(strcmp(kr_op_name(rows[i].op), rows[i].name) == 0, "row %d is '%s'", rows[i].op,
              kr_op_name(rows[i].op));
    CHECK(kr_ops[rows[i].op].forward && kr_ops[rows[i].op].shape);
  }
}

/* ---- evaluation helpers ---- */

static int eval_nodes(kr_ctx *ctx, int n, kr_node *const *nodes, int training, kr_tensor **out)
{
  return kt_eval_nodes(ctx, n, nodes, training, DROP_SEED, out);
}

/* ---- the finite-difference check (fd_check.h), about 400 elements of a large tensor ---- */

static double worst_seen[KR_OP_COUNT];

static void fd_check_tol(gcase *c, kr_node *out, int training, double rtol)
{
  covered[c->op] = 1;
  fd_opts o = {.training = training, .seed = DROP_SEED, .rtol = rtol, .points = 400, .seen = in_grad, .helper = -1};
  fd_check_outputs(c, 1, &out, NULL, &o);
  worst_seen[c->op] = fmax(worst_seen[c->op], o.worst);
}

static void fd_done_tol(gcase *c, kr_node *out, int training, double rtol)
{
  fd_check_tol(c, out, training, rtol);
  gu_end(c);
}

static void fd_done(gcase *c, kr_node *out, int training) { fd_done_tol(c, out, training, 0); }

/* The Winograd convolution's forward (the numeric side) rounds more than a
** direct dot product: its input and output transforms add and subtract
** values before and after the products (about 10 u relative per output
** instead of u), and one perturbed input reaches m = 3 * 3 * 64 = 576
** outputs of O(3): the finite difference is off by about sqrt(m) * 10 u *
** |out| / h * 1.5 ~ 2e-3 (measured: 1.9e-3). FD_RTOL would fail on rounding
** alone; 5e-3 still misses a 1% error by a factor of two. */
#define FD_RTOL_WINOGRAD 5e-3

/* ---- fixtures ---- */

/* the script's gen(): float32(((k * 7919 + seed) % 2001) / 1000 - 1); kernels (seed 23) scaled by 0.1f */
static float fx_gen(int64_t k, long seed)
{
  float v = (float)((double)((k * 7919 + seed) % 2001) / 1000.0 - 1.0);
  return seed == 23 ? v * 0.1f : v;
}

static kr_tensor *fx_tensor(kr_ctx *ctx, const cf_array *a)
{
  kr_shape s = kr_shape_make(a->ndim, a->dim);
  kr_tensor *t = kr_tensor_new(ctx, &s);
  if (!t) return NULL;
  for (int64_t i = 0; i < kr_tensor_numel(t); i++) KR_DATA(t)[i] = a->v ? (float)a->v[i] : fx_gen(i, a->seed);
  return t;
}

static kr_node *fx_const(gcase *c, const cf_array *a)
{
  return a->v || a->seed ? gu_leaf(c, fx_tensor(c->ctx, a), 0) : NULL;
}

static void fx_values(const char *name, const char *what, const float *got, const cf_array *want);

/* values of n against want; a kernel gradient with a bias row (f2 = 1)
** against want (dw) and, in its last row, bias (db) */
static void fx_compare2(kr_ctx *ctx, const char *name, const char *what, kr_node *n, const cf_array *want,
                        const cf_array *bias)
{
  if (!n) {
    CHECK_MSG(0, "%s: %s: no node: %s", name, what, kr_errmsg(ctx));
    return;
  }
  kr_shape s = kr_shape_make(want->ndim, want->dim);
  int64_t nw = kr_numel(&s);
  int shape_ok = bias ? kr_numel(&n->shape) == nw + bias->dim[0] : kr_shape_eq(&n->shape, &s);
  CHECK_MSG(shape_ok, "%s: %s has the wrong shape", name, what);
  kr_tensor *t = kr_eval(ctx, n);
  CHECK_MSG(t != NULL, "%s: %s: %s", name, what, kr_errmsg(ctx));
  if (t && shape_ok) {
    fx_values(name, what, KR_DATA(t), want);
    if (bias) fx_values(name, "db (the bias row)", KR_DATA(t) + nw, bias);
  }
  kr_tensor_release(t);
}

static void fx_compare(kr_ctx *ctx, const char *name, const char *what, kr_node *n, const cf_array *want)
{
  fx_compare2(ctx, name, what, n, want, NULL);
}

static void fx_values(const char *name, const char *what, const float *got_v, const cf_array *want)
{
  kr_shape s = kr_shape_make(want->ndim, want->dim);
  int bad = 0;
  double worst = 0;
  for (int64_t i = 0; i < kr_numel(&s); i++) {
    double got = got_v[i], w = want->v[i], err = fabs(got - w);
    if (!(err <= FX_RTOL * fmax(1.0, fabs(w)))) {
      if (bad++ < 3) fprintf(stderr, "%s: %s[%lld] = %.9g, torch %.9g\n", name, what, (long long)i, got, w);
      worst = fmax(worst, err);
    }
  }
  CHECK_MSG(bad == 0, "%s: %s: %d values off (worst %.3g)", name, what, bad, worst);
}

static int op_of(const char *name) { return kr_op_lookup(name); }

static void test_fixtures(kr_ctx *ctx, int threads)
{
  kr_set_num_threads(ctx, threads);
  for (int k = 0; k < CF_NCASES; k++) {
    const cf_case *f = &cf_cases[k];
    char name[160];
    snprintf(name, sizeof name, "%s (%d thread%s)", f->name, threads, threads > 1 ? "s" : "");
    gcase c;
    int op = op_of(f->op);
    gu_begin(&c, ctx, name, op);
    kr_attr at;
    memset(&at, 0, sizeof at);
    for (int i = 0; i < 8; i++) at.i[i] = f->attr[i];
    at.f[0] = f->act;
    kr_node *x = fx_const(&c, &f->x);
    if (op == KR_OP_CONV2D) {
      kr_node *w = fx_const(&c, &f->w), *b = fx_const(&c, &f->b), *dy = fx_const(&c, &f->dy);
      kr_node *in[3] = {x, w, b};
      kr_node *y = opn(&c, op, b ? 3 : 2, in, &at);
      fx_compare(ctx, name, "y", y, &f->y);
      int act = f->act != 0;
      kr_node *gi[4] = {dy, w, x, y}, *gk[4] = {dy, x, w, y};
      if (y) {
        fx_compare(ctx, name, "dx", opn(&c, KR_OP_CONV2D_GRAD_INPUT, 3 + act, gi, &y->attr), &f->dx);
        if (f->dw.v) fx_compare(ctx, name, "dw", opn(&c, KR_OP_CONV2D_GRAD_KERNEL, 3 + act, gk, &y->attr), &f->dw);
        if (b && f->dw.v) {
          kr_attr ab = y->attr;
          ab.f[2] = 1;
          fx_compare2(ctx, name, "dw with the bias row", opn(&c, KR_OP_CONV2D_GRAD_KERNEL, 3 + act, gk, &ab), &f->dw,
                      &f->db);
        }
      }
    } else if (op == KR_OP_MAX_POOL2D || op == KR_OP_AVG_POOL2D) {
      kr_node *y = op1(&c, op, x, &at), *dy = fx_const(&c, &f->dy);
      fx_compare(ctx, name, "y", y, &f->y);
      if (y && op == KR_OP_MAX_POOL2D) {
        /* the argmax from the pool's aux, and found again from x */
        fx_compare(ctx, name, "dx (argmax kept)", op2(&c, KR_OP_MAX_POOL2D_GRAD, dy, y, AT(.f = {1})), &f->dx);
        fx_compare(ctx, name, "dx (argmax found again)", op2(&c, KR_OP_MAX_POOL2D_GRAD, dy, x, &at), &f->dx);
      }
      if (y && op == KR_OP_AVG_POOL2D) fx_compare(ctx, name, "dx", op2(&c, KR_OP_AVG_POOL2D_GRAD, dy, x, &at), &f->dx);
    } else {
      fx_compare(ctx, name, "y", op1(&c, op, x, &at), &f->y);
    }
    gu_end(&c);
  }
  kr_set_num_threads(ctx, 1);
}

/* ---- a direct double-precision reference for the threaded paths ---- */

typedef struct rgeom {
  int64_t N, H, W, C, KH, KW, O, Ho, Wo, sh, sw, dh, dw, pt, pl;
} rgeom;

static rgeom rg(const kr_shape *x, const kr_shape *w, const kr_shape *y, const kr_attr *a)
{
  rgeom g;
  int r = x->ndim;
  g.N = x->dim[0];
  g.H = r == 4 ? x->dim[1] : 1;
  g.W = x->dim[r - 2];
  g.C = x->dim[r - 1];
  g.KH = r == 4 ? w->dim[0] : 1;
  g.KW = w->dim[r - 3];
  g.O = w->dim[r - 1];
  g.Ho = r == 4 ? y->dim[1] : 1;
  g.Wo = y->dim[r - 2];
  g.sh = a->i[0];
  g.sw = a->i[1];
  g.dh = a->i[2];
  g.dw = a->i[3];
  g.pt = a->i[4];
  g.pl = a->i[6];
  return g;
}

/* y (before the activation) and, given dz, dx dw db */
static void ref_conv(const rgeom *g, const float *x, const float *w, const float *b, double *y)
{
  for (int64_t n = 0; n < g->N; n++)
    for (int64_t oh = 0; oh < g->Ho; oh++)
      for (int64_t ow = 0; ow < g->Wo; ow++)
        for (int64_t o = 0; o < g->O; o++) {
          double s = b ? b[o] : 0;
          for (int64_t kh = 0; kh < g->KH; kh++)
            for (int64_t kw = 0; kw < g->KW; kw++) {
              int64_t h = oh * g->sh - g->pt + kh * g->dh, ww = ow * g->sw - g->pl + kw * g->dw;
              if (h < 0 || h >= g->H || ww < 0 || ww >= g->W) continue;
              for (int64_t c = 0; c < g->C; c++)
                s += (double)x[((n * g->H + h) * g->W + ww) * g->C + c] * w[((kh * g->KW + kw) * g->C + c) * g->O + o];
            }
          y[((n * g->Ho + oh) * g->Wo + ow) * g->O + o] = s;
        }
}

static void ref_conv_grads(const rgeom *g, const float *x, const float *w, const double *dz, double *dx, double *dw,
                           double *db)
{
  memset(dx, 0, (size_t)(g->N * g->H * g->W * g->C) * sizeof(double));
  memset(dw, 0, (size_t)(g->KH * g->KW * g->C * g->O) * sizeof(double));
  memset(db, 0, (size_t)g->O * sizeof(double));
  for (int64_t n = 0; n < g->N; n++)
    for (int64_t oh = 0; oh < g->Ho; oh++)
      for (int64_t ow = 0; ow < g->Wo; ow++)
        for (int64_t o = 0; o < g->O; o++) {
          double d = dz[((n * g->Ho + oh) * g->Wo + ow) * g->O + o];
          db[o] += d;
          for (int64_t kh = 0; kh < g->KH; kh++)
            for (int64_t kw = 0; kw < g->KW; kw++) {
              int64_t h = oh * g->sh - g->pt + kh * g->dh, ww = ow * g->sw - g->pl + kw * g->dw;
              if (h < 0 || h >= g->H || ww < 0 || ww >= g->W) continue;
              for (int64_t c = 0; c < g->C; c++) {
                int64_t xi = ((n * g->H + h) * g->W + ww) * g->C + c, wi = ((kh * g->KW + kw) * g->C + c) * g->O + o;
                dx[xi] += d * w[wi];
                dw[wi] += d * x[xi];
              }
            }
        }
}

static void compare_d(const char *name, const char *what, const kr_tensor *t, const double *want, double tol)
{
  int bad = 0;
  double worst = 0;
  for (int64_t i = 0; t && i < kr_tensor_numel(t); i++) {
    double err = fabs(KR_DATA(t)[i] - want[i]);
    if (!(err <= tol * fmax(1.0, fabs(want[i])))) {
      if (bad++ < 3) fprintf(stderr, "%s: %s[%lld] = %.9g, reference %.9g\n", name, what, (long long)i,
                             (double)KR_DATA(t)[i], want[i]);
      worst = fmax(worst, err);
    }
  }
  CHECK_MSG(t && bad == 0, "%s: %s: %d values off (worst %.3g)", name, what, bad, worst);
}

static void compare_t(const char *name, const char *what, const kr_tensor *a, const kr_tensor *b)
{
  int same = a && b && kr_tensor_numel(a) == kr_tensor_numel(b);
  for (int64_t i = 0; same && i < kr_tensor_numel(a); i++)
    if (fabsf(KR_DATA(a)[i] - KR_DATA(b)[i]) > 1e-4f * fmaxf(1.0f, fabsf(KR_DATA(b)[i]))) same = 0;
  CHECK_MSG(same, "%s: %s differs from the one-thread result (1e-4)", name, what);
}

/* the conv, its three gradients at `threads`; outputs y dx dw db */
static int conv_run(kr_ctx *ctx, int threads, kr_tensor *tx, kr_tensor *tw, kr_tensor *tb, kr_tensor *tdy,
                    const kr_attr *at, kr_tensor **out)
{
  kr_set_num_threads(ctx, threads);
  for (int i = 0; i < 4; i++) out[i] = NULL;
  kr_node *x = kr_node_const(ctx, tx), *w = kr_node_const(ctx, tw), *b = kr_node_const(ctx, tb);
  kr_node *dy = kr_node_const(ctx, tdy);
  kr_node *in[3] = {x, w, b};
  kr_node *y = kr_node_op(ctx, KR_OP_CONV2D, 3, in, at);
  int act = at->f[0] != 0;
  kr_node *gi[4] = {dy, w, x, y}, *gk[4] = {dy, x, w, y};
  kr_node *n[4] = {y, NULL, NULL, NULL};
  kr_attr ab = *at;
  ab.f[2] = 1;
  if (y) {
    n[1] = kr_node_op(ctx, KR_OP_CONV2D_GRAD_INPUT, 3 + act, gi, at);
    n[2] = kr_node_op(ctx, KR_OP_CONV2D_GRAD_KERNEL, 3 + act, gk, &ab);   /* dw and the bias row */
  }
  int ok = 1;
  for (int i = 0; i < 3; i++) {
    out[i] = n[i] ? kr_eval(ctx, n[i]) : NULL;
    if (!out[i]) ok = 0;
  }
  /* split the kernel gradient: dw, then db */
  out[3] = NULL;
  if (out[2]) {
    kr_shape ws = tw->shape, bs = tb->shape;
    kr_tensor *dw = kr_tensor_new(ctx, &ws), *db = kr_tensor_new(ctx, &bs);
    memcpy(KR_DATA(dw), KR_DATA(out[2]), (size_t)kr_numel(&ws) * sizeof(float));
    memcpy(KR_DATA(db), KR_DATA(out[2]) + kr_numel(&ws), (size_t)kr_numel(&bs) * sizeof(float));
    kr_tensor_release(out[2]);
    out[2] = dw;
    out[3] = db;
  }
  if (!out[3]) ok = 0;
  for (int i = 3; i >= 0; i--) kr_node_release(n[i]);
  kr_node_release(x);
  kr_node_release(w);
  kr_node_release(b);
  kr_node_release(dy);
  kr_set_num_threads(ctx, 1);
  return ok;
}

static void threaded_conv(kr_ctx *ctx, const char *name, kr_shape xs, kr_shape ws, const kr_attr *at)
{
  kr_tensor *tx = gu_t_uniform(ctx, xs, -1, 1, NOKINKS, 0), *tw = gu_t_uniform(ctx, ws, -1, 1, NOKINKS, 0);
  kr_shape bs = kr_shape_make(1, &ws.dim[ws.ndim - 1]);
  kr_tensor *tb = gu_t_uniform(ctx, bs, -0.5, 0.5, NOKINKS, 0);
  /* the output shape from a throwaway node */
  kr_node *x = kr_node_const(ctx, tx), *w = kr_node_const(ctx, tw);
  kr_node *in[2] = {x, w};
  kr_node *y = kr_node_op(ctx, KR_OP_CONV2D, 2, in, at);
  CHECK_MSG(y != NULL, "%s: %s", name, kr_errmsg(ctx));
  if (!y) goto done0;
  kr_shape ys = y->shape;
  kr_tensor *tdy = gu_t_uniform(ctx, ys, -1, 1, NOKINKS, 0);
  rgeom g = rg(&xs, &ws, &ys, at);
  int64_t ny = kr_numel(&ys);
  double *ry = malloc((size_t)ny * sizeof(double)), *dz = malloc((size_t)ny * sizeof(double));
  double *rdx = malloc((size_t)kr_numel(&xs) * sizeof(double)), *rdw = malloc((size_t)kr_numel(&ws) * sizeof(double));
  double *rdb = malloc((size_t)g.O * sizeof(double));
  ref_conv(&g, KR_DATA(tx), KR_DATA(tw), KR_DATA(tb), ry);
  for (int64_t i = 0; i < ny; i++) {
    if (at->f[0] != 0 && ry[i] <= 0) ry[i] = 0;
    dz[i] = at->f[0] != 0 && ry[i] <= 0 ? 0 : KR_DATA(tdy)[i];
  }
  ref_conv_grads(&g, KR_DATA(tx), KR_DATA(tw), dz, rdx, rdw, rdb);
  kr_tensor *one[4], *many[4];
  CHECK_MSG(conv_run(ctx, 1, tx, tw, tb, tdy, at, one), "%s (1 thread): %s", name, kr_errmsg(ctx));
  for (int threads = 2; threads <= 3; threads++) {
    char nm[160];
    snprintf(nm, sizeof nm, "%s (%d threads)", name, threads);
    CHECK_MSG(conv_run(ctx, threads, tx, tw, tb, tdy, at, many), "%s: %s", nm, kr_errmsg(ctx));
    compare_d(nm, "y", many[0], ry, 1e-4);
    compare_d(nm, "dx", many[1], rdx, 1e-4);
    compare_d(nm, "dw", many[2], rdw, 1e-4);
    compare_d(nm, "db", many[3], rdb, 1e-4);
    static const char *const what[4] = {"y", "dx", "dw", "db"};
    for (int i = 0; i < 4; i++) {
      compare_t(nm, what[i], many[i], one[i]);
      kr_tensor_release(many[i]);
    }
  }
  compare_d(name, "y (1 thread)", one[0], ry, 1e-4);
  compare_d(name, "dx (1 thread)", one[1], rdx, 1e-4);
  for (int i = 0; i < 4; i++) kr_tensor_release(one[i]);
  free(ry);
  free(dz);
  free(rdx);
  free(rdw);
  free(rdb);
  kr_tensor_release(tdy);
  kr_node_release(y);
done0:
  kr_node_release(x);
  kr_node_release(w);
  kr_tensor_release(tx);
  kr_tensor_release(tw);
  kr_tensor_release(tb);
}

/* pools: threaded against one thread, forward and gradient */
static void threaded_pool(kr_ctx *ctx, const char *name, int op, kr_shape xs, const kr_attr *at)
{
  kr_tensor *r[2][2] = {{NULL, NULL}, {NULL, NULL}};
  kr_tensor *tx = gu_t_grid(ctx, xs, 0.01, 0.0);
  kr_tensor *tdy = NULL;
  for (int k = 0; k < 2; k++) {
    kr_set_num_threads(ctx, k ? 2 : 1);
    kr_node *x = kr_node_const(ctx, tx), *y = kr_node_op(ctx, op, 1, &x, at);
    CHECK_MSG(y != NULL, "%s: %s", name, kr_errmsg(ctx));
    if (y) {
      if (!tdy) tdy = gu_t_uniform(ctx, y->shape, -1, 1, NOKINKS, 0);
      kr_node *dy = kr_node_const(ctx, tdy);
      kr_node *g = op == KR_OP_MAX_POOL2D ? kr_op2(ctx, KR_OP_MAX_POOL2D_GRAD, dy, y, AT(.f = {1}))
                                          : kr_op2(ctx, KR_OP_AVG_POOL2D_GRAD, dy, x, at);
      /* one plan for both, so the max pool's argmax is the one its gradient reads */
      kr_node *outs[2] = {y, g};
      kr_plan *p = g ? kr_plan_new(ctx, 2, outs, 0, NULL, 1, 1) : NULL;
      if (p && kr_plan_run(p, 1) == KR_OK) {
        for (int i = 0; i < 2; i++) {
          r[k][i] = kr_tensor_new(ctx, &outs[i]->shape);
          memcpy(KR_DATA(r[k][i]), kr_plan_output(p, i), (size_t)kr_numel(&outs[i]->shape) * sizeof(float));
        }
      }
      CHECK_MSG(r[k][1] != NULL, "%s: %s", name, kr_errmsg(ctx));
      kr_plan_free(p);
      kr_node_release(g);
      kr_node_release(dy);
    }
    kr_node_release(y);
    kr_node_release(x);
  }
  compare_t(name, "y (2 threads)", r[1][0], r[0][0]);
  compare_t(name, "dx (2 threads)", r[1][1], r[0][1]);
  for (int k = 0; k < 2; k++)
    for (int i = 0; i < 2; i++) kr_tensor_release(r[k][i]);
  kr_tensor_release(tx);
  kr_tensor_release(tdy);
  kr_set_num_threads(ctx, 1);
}

static void test_threads(kr_ctx *ctx)
{
  threaded_conv(ctx, "conv2d (4,12,12,8) 3x3x16 same relu", S(4, 12, 12, 8), S(3, 3, 8, 16),
                AT(.i = {1, 1, 1, 1, 1, 1, 1, 1}, .f = {1}));
  threaded_conv(ctx, "conv2d (8,21,19,8) 3x3x16 stride 2", S(8, 21, 19, 8), S(3, 3, 8, 16),
                AT(.i = {2, 2, 1, 1, 0, 0, 0, 0}));
  threaded_conv(ctx, "conv2d (3,16,16,12) 3x3x16 dilation 2 same", S(3, 16, 16, 12), S(3, 3, 12, 16),
                AT(.i = {1, 1, 2, 2, 2, 2, 2, 2}));
  threaded_conv(ctx, "conv2d (5,20,20,16) 1x1x32", S(5, 20, 20, 16), S(1, 1, 16, 32), AT(.i = {1, 1, 1, 1}));
  /* 3x3 at stride 1 with enough channels: Winograd, several tile blocks, partial tiles */
  threaded_conv(ctx, "conv2d (4,13,15,32) 3x3x64 same relu (winograd)", S(4, 13, 15, 32), S(3, 3, 32, 64),
                AT(.i = {1, 1, 1, 1, 1, 1, 1, 1}, .f = {1}));
  threaded_conv(ctx, "conv2d (3,20,17,80) 3x3x16 valid (winograd)", S(3, 20, 17, 80), S(3, 3, 80, 16),
                AT(.i = {1, 1, 1, 1}));
  threaded_conv(ctx, "conv2d (2,30,30,64) 3x3x64 same (winograd, many blocks)", S(2, 30, 30, 64), S(3, 3, 64, 64),
                AT(.i = {1, 1, 1, 1, 1, 1, 1, 1}, .f = {1}));
  threaded_conv(ctx, "conv1d (8,40,16) 3x32 relu", S(8, 40, 16), S(3, 16, 32), AT(.i = {1, 1, 1, 1}, .f = {1}));
  threaded_conv(ctx, "conv1d (9,60,16) 5x24 causal dilation 2", S(9, 60, 16), S(5, 16, 24),
                AT(.i = {1, 1, 1, 2, 0, 0, 8, 0}));
  /* 16 to 64 filters at stride 1 without Winograd: the direct AVX-512 kernel (where the CPU has it),
  ** full tiles, a last tile moved left, padded edges pixel by pixel; the stride-1 input gradient too */
  threaded_conv(ctx, "conv2d (3,20,30,32) 3x3x32 valid relu (direct)", S(3, 20, 30, 32), S(3, 3, 32, 32),
                AT(.i = {1, 1, 1, 1}, .f = {1}));
  threaded_conv(ctx, "conv2d (2,17,29,16) 3x3x32 same (direct)", S(2, 17, 29, 16), S(3, 3, 16, 32),
                AT(.i = {1, 1, 1, 1, 1, 1, 1, 1}));
  threaded_conv(ctx, "conv2d (2,9,40,5) 5x5x64 same (direct)", S(2, 9, 40, 5), S(5, 5, 5, 64),
                AT(.i = {1, 1, 1, 1, 2, 2, 2, 2}));
  threaded_conv(ctx, "conv2d (3,14,33,48) 2x3x48 valid (direct)", S(3, 14, 33, 48), S(2, 3, 48, 48),
                AT(.i = {1, 1, 1, 1}));
  threaded_conv(ctx, "conv2d (4,30,30,3) 3x3x16 valid relu (direct, first layer)", S(4, 30, 30, 3),
                S(3, 3, 3, 16), AT(.i = {1, 1, 1, 1}, .f = {1}));
  threaded_conv(ctx, "conv1d (6,50,12) 5x32 same (direct)", S(6, 50, 12), S(5, 12, 32),
                AT(.i = {1, 1, 1, 1, 0, 0, 2, 2}));
  /* the kernel gradient's direct AVX-512 path (16 to 64 filters, column dilation 1): strips of
  ** output rows, tiles of (kw, c) runs narrower than the widest (J = 21 = 8 + 8 + 4 + 1),
  ** padded edges pixel by pixel, strides and row dilation */
  threaded_conv(ctx, "conv2d (3,19,23,7) 3x3x48 stride 2 same relu (direct dw)", S(3, 19, 23, 7), S(3, 3, 7, 48),
                AT(.i = {2, 2, 1, 1, 1, 1, 1, 1}, .f = {1}));
  threaded_conv(ctx, "conv2d (2,21,18,5) 3x2x16 row dilation 2 same (direct dw)", S(2, 21, 18, 5), S(3, 2, 5, 16),
                AT(.i = {1, 1, 2, 1, 2, 2, 0, 1}));
  threaded_conv(ctx, "conv2d (2,70,70,8) 3x3x64 valid relu (direct dw, strips)", S(2, 70, 70, 8), S(3, 3, 8, 64),
                AT(.i = {1, 1, 1, 1}, .f = {1}));
  threaded_conv(ctx, "conv1d (5,33,9) 4x16 stride 3 causal (direct dw)", S(5, 33, 9), S(4, 9, 16),
                AT(.i = {1, 3, 1, 1, 0, 0, 3, 0}));
  /* pointwise products by the packed GEMM (forced; the forward and the stride-1 input gradient):
  ** several blocks of rows split over the workers, a ragged last tile and panel, the relu fused */
  kr_conv_force_algo(ctx, KR_CONV_ALGO_PACKED);
  threaded_conv(ctx, "conv2d (5,13,11,24) 1x1x37 relu (packed)", S(5, 13, 11, 24), S(1, 1, 24, 37),
                AT(.i = {1, 1, 1, 1}, .f = {1}));
  threaded_conv(ctx, "conv1d (7,90,64) 1x128 (packed)", S(7, 90, 64), S(1, 64, 128), AT(.i = {1, 1, 1, 1}));
  /* other geometries unfolded block by block before the packed product */
  threaded_conv(ctx, "conv2d (6,32,31,3) 3x3x32 stride 2 same relu (packed, unfolded)", S(6, 32, 31, 3),
                S(3, 3, 3, 32), AT(.i = {2, 2, 1, 1, 0, 1, 0, 1}, .f = {1}));
  threaded_conv(ctx, "conv2d (3,12,14,20) 3x3x24 same relu (packed, unfolded)", S(3, 12, 14, 20), S(3, 3, 20, 24),
                AT(.i = {1, 1, 1, 1, 1, 1, 1, 1}, .f = {1}));
  kr_conv_force_algo(ctx, KR_CONV_ALGO_RULE);
  /* 1D kernels of 3 at stride 1: Winograd F(4, 3); tile blocks across samples, a partial last tile */
  threaded_conv(ctx, "conv1d (10,130,100) 3x64 valid relu (winograd)", S(10, 130, 100), S(3, 100, 64),
                AT(.i = {1, 1, 1, 1}, .f = {1}));
  threaded_conv(ctx, "conv1d (5,37,24) 3x40 same (winograd)", S(5, 37, 24), S(3, 24, 40),
                AT(.i = {1, 1, 1, 1, 0, 0, 1, 1}));
  threaded_conv(ctx, "conv1d (7,9,128) 3x128 causal relu (winograd)", S(7, 9, 128), S(3, 128, 128),
                AT(.i = {1, 1, 1, 1, 0, 0, 2, 0}, .f = {1}));
  threaded_conv(ctx, "conv1d (4,6,8) 3x8 valid (winograd, one short tile)", S(4, 6, 8), S(3, 8, 8),
                AT(.i = {1, 1, 1, 1}));
  threaded_pool(ctx, "max_pool2d (4,30,30,16) 3x3 stride 1", KR_OP_MAX_POOL2D, S(4, 30, 30, 16),
                AT(.i = {3, 3, 1, 1, 0, 0, 0, 0}));
  threaded_pool(ctx, "avg_pool2d (4,30,30,16) 3x3 stride 2 same", KR_OP_AVG_POOL2D, S(4, 31, 30, 16),
                AT(.i = {3, 3, 2, 2, 1, 1, 1, 1}));
  threaded_pool(ctx, "max_pool2d (6,40,40,32) 2x2", KR_OP_MAX_POOL2D, S(6, 40, 40, 32), AT(.i = {2, 2, 2, 2}));
}

/* ---- finite differences ---- */

/* a conv whose pre-activations all stay >= 0.05 away from 0 (the relu's kink) */
static kr_node *conv_away_from_kink(gcase *c, kr_shape xs, kr_shape ws, const kr_attr *at, int bias)
{
  for (int tries = 0; tries < 400; tries++) {
    kr_tensor *tx = gu_t_uniform(c->ctx, xs, -1, 1, NOKINKS, 0), *tw = gu_t_uniform(c->ctx, ws, -1, 1, NOKINKS, 0);
    kr_shape bs = kr_shape_make(1, &ws.dim[ws.ndim - 1]);
    kr_tensor *tb = bias ? gu_t_uniform(c->ctx, bs, -0.5, 0.5, NOKINKS, 0) : NULL;
    kr_node *x = kr_node_const(c->ctx, tx), *w = kr_node_const(c->ctx, tw), *b = tb ? kr_node_const(c->ctx, tb) : NULL;
    kr_node *in[3] = {x, w, b};
    kr_attr lin = *at;
    lin.f[0] = 0;
    kr_node *z = kr_node_op(c->ctx, KR_OP_CONV2D, bias ? 3 : 2, in, &lin);
    kr_tensor *tz = z ? kr_eval(c->ctx, z) : NULL;
    int ok = tz != NULL;
    for (int64_t i = 0; tz && i < kr_tensor_numel(tz); i++)
      if (fabsf(KR_DATA(tz)[i]) < 0.05f) ok = 0;
    kr_tensor_release(tz);
    kr_node_release(z);
    kr_node_release(x);
    kr_node_release(w);
    kr_node_release(b);
    if (ok) {
      kr_node *vx = gu_leaf(c, tx, 1), *vw = gu_leaf(c, tw, 1), *vb = tb ? gu_leaf(c, tb, 1) : NULL;
      kr_node *vin[3] = {vx, vw, vb};
      return opn(c, KR_OP_CONV2D, bias ? 3 : 2, vin, at);
    }
    kr_tensor_release(tx);
    kr_tensor_release(tw);
    kr_tensor_release(tb);
  }
  CHECK_MSG(0, "%s: no inputs away from the kink", c->name);
  return NULL;
}

static void test_fd_conv(kr_ctx *ctx)
{
  static const struct {
    const char *name;
    int nx;
    int64_t x[4];
    int nw;
    int64_t w[4];
    int64_t at[8];
    int bias, relu;
    double rtol;   /* 0: FD_RTOL */
  } cs[] = {
    {"conv2d valid 3x3 + bias", 4, {2, 4, 5, 2}, 4, {3, 3, 2, 3}, {1, 1, 1, 1, 0, 0, 0, 0}, 1, 0, 0},
    {"conv2d same stride 2 + bias (col2im)", 4, {1, 5, 6, 2}, 4, {3, 3, 2, 2}, {2, 2, 1, 1, 1, 1, 0, 1}, 1, 0, 0},
    {"conv2d same 4x4 asymmetric", 4, {1, 4, 5, 2}, 4, {4, 4, 2, 2}, {1, 1, 1, 1, 1, 2, 1, 2}, 0, 0, 0},
    {"conv2d dilation 2 same", 4, {1, 5, 5, 2}, 4, {3, 3, 2, 2}, {1, 1, 2, 2, 2, 2, 2, 2}, 1, 0, 0},
    {"conv2d strides (1, 2)", 4, {2, 4, 6, 2}, 4, {2, 3, 2, 2}, {1, 2, 1, 1, 0, 0, 1, 1}, 0, 0, 0},
    {"conv2d 1x1 + bias", 4, {2, 3, 3, 3}, 4, {1, 1, 3, 2}, {1, 1, 1, 1, 0, 0, 0, 0}, 1, 0, 0},
    {"conv2d 1x1 stride 2", 4, {1, 5, 4, 2}, 4, {1, 1, 2, 3}, {2, 2, 1, 1, 0, 0, 0, 0}, 0, 0, 0},
    {"conv2d relu stride 1", 4, {1, 4, 4, 2}, 4, {2, 2, 2, 2}, {1, 1, 1, 1, 0, 0, 0, 0}, 1, 1, 0},
    {"conv2d relu stride 2 same", 4, {1, 5, 5, 2}, 4, {3, 3, 2, 2}, {2, 2, 1, 1, 1, 1, 1, 1}, 1, 1, 0},
    {"conv2d winograd 32->64 same + bias", 4, {1, 3, 4, 32}, 4, {3, 3, 32, 64}, {1, 1, 1, 1, 1, 1, 1, 1}, 1, 0,
     FD_RTOL_WINOGRAD},
    {"conv2d winograd 64->32 relu valid", 4, {1, 4, 3, 64}, 4, {3, 3, 64, 32}, {1, 1, 1, 1, 0, 0, 0, 0}, 1, 1,
     FD_RTOL_WINOGRAD},
    {"conv1d causal dilation 2 + bias", 3, {2, 6, 2}, 3, {3, 2, 3}, {1, 1, 1, 2, 0, 0, 4, 0}, 1, 0, 0},
    {"conv1d stride 2 same", 3, {2, 7, 2}, 3, {3, 2, 2}, {1, 2, 1, 1, 0, 0, 1, 1}, 0, 0, 0},
    {"conv1d relu", 3, {2, 5, 3}, 3, {2, 3, 2}, {1, 1, 1, 1, 0, 0, 0, 0}, 1, 1, 0},
  };
  for (size_t k = 0; k < sizeof cs / sizeof cs[0]; k++) {
    gcase c;
    gu_begin(&c, ctx, cs[k].name, KR_OP_CONV2D);
    kr_attr at;
    memset(&at, 0, sizeof at);
    memcpy(at.i, cs[k].at, sizeof cs[k].at);
    at.f[0] = cs[k].relu;
    kr_shape xs = kr_shape_make(cs[k].nx, cs[k].x), ws = kr_shape_make(cs[k].nw, cs[k].w);
    kr_node *y;
    if (cs[k].relu) {
      y = conv_away_from_kink(&c, xs, ws, &at, cs[k].bias);
    } else {
      kr_node *x = var_u(&c, xs, -1, 1), *w = var_u(&c, ws, -1, 1);
      kr_shape bs = kr_shape_make(1, &cs[k].w[cs[k].nw - 1]);
      kr_node *b = cs[k].bias ? var_u(&c, bs, -0.5, 0.5) : NULL;
      kr_node *in[3] = {x, w, b};
      y = opn(&c, KR_OP_CONV2D, cs[k].bias ? 3 : 2, in, &at);
    }
    fd_done_tol(&c, y, 0, cs[k].rtol);
  }
  /* the input alone (a constant kernel: the gradients are not linked) */
  {
    gcase c2;
    gu_begin(&c2, ctx, "conv2d gradient of the input only", KR_OP_CONV2D);
    kr_node *in2[3] = {var_u(&c2, S(2, 5, 4, 2), -1, 1), cst_u(&c2, S(3, 2, 2, 3), -1, 1), cst_u(&c2, S(3), -1, 1)};
    fd_done(&c2, opn(&c2, KR_OP_CONV2D, 3, in2, AT(.i = {1, 1, 1, 1, 1, 1, 0, 1})), 0);
  }
  /* the kernel alone (the input is a constant) */
  gcase c;
  gu_begin(&c, ctx, "conv2d gradient of the kernel only", KR_OP_CONV2D);
  kr_node *in[2] = {cst_u(&c, S(1, 4, 4, 2), -1, 1), var_u(&c, S(3, 3, 2, 2), -1, 1)};
  fd_done(&c, opn(&c, KR_OP_CONV2D, 2, in, AT(.i = {1, 1, 1, 1, 1, 1, 1, 1})), 0);
}

static void test_fd_pool(kr_ctx *ctx)
{
  static const struct {
    const char *name;
    int nx;
    int64_t x[4];
    int64_t at[8];
  } cs[] = {
    {"2x2 valid", 4, {2, 4, 4, 2}, {2, 2, 2, 2, 0, 0, 0, 0}},
    {"3x3 stride 2 same", 4, {1, 5, 6, 2}, {3, 3, 2, 2, 1, 1, 1, 1}},
    {"3x3 stride 1 overlapping", 4, {1, 5, 4, 2}, {3, 3, 1, 1, 0, 0, 0, 0}},
    {"2x2 stride 1 same (pads 0/1)", 4, {1, 3, 4, 2}, {2, 2, 1, 1, 0, 1, 0, 1}},
    {"2x2 stride 3 (cells no window covers)", 4, {1, 7, 8, 2}, {2, 2, 3, 3, 0, 0, 0, 0}},
    {"2x3 strides (3, 2) pads 1/0", 4, {2, 5, 7, 2}, {2, 3, 3, 2, 1, 0, 0, 0}},
    {"1-D 3 stride 2", 3, {2, 9, 2}, {1, 3, 1, 2, 0, 0, 0, 0}},
    {"1-D 2 same", 3, {2, 5, 3}, {1, 2, 1, 2, 0, 0, 0, 1}},
  };
  for (int kind = 0; kind < 2; kind++)
    for (size_t k = 0; k < sizeof cs / sizeof cs[0]; k++) {
      int op = kind ? KR_OP_AVG_POOL2D : KR_OP_MAX_POOL2D;
      char name[96];
      snprintf(name, sizeof name, "%s %s", kr_op_name(op), cs[k].name);
      gcase c;
      gu_begin(&c, ctx, name, op);
      kr_attr at;
      memset(&at, 0, sizeof at);
      memcpy(at.i, cs[k].at, sizeof cs[k].at);
      kr_shape xs = kr_shape_make(cs[k].nx, cs[k].x);
      kr_node *x = kind ? var_u(&c, xs, -1, 1) : var_grid(&c, xs, 0.15, 0.03);   /* max: no ties */
      fd_done(&c, op1(&c, op, x, &at), 0);
    }
}

/* max pooling at ties: the first largest cell of a window in row-major order
** gets the window's dy (TensorFlow's max_pool gradient keeps the first
** maximum it meets, comparing strictly) */
static void test_pool_ties(kr_ctx *ctx)
{
  static const float ones[9] = {1, 1, 1, 1, 1, 1, 1, 1, 1};
  static const float g1[9] = {1, 1, 0, 1, 1, 0, 0, 0, 0};
  gcase c;
  gu_begin(&c, ctx, "max_pool2d 2x2 stride 1, all equal", KR_OP_MAX_POOL2D);
  kr_node *x = var_data(&c, S(1, 3, 3, 1), ones);
  fd_expect_grads(&c, op1(&c, KR_OP_MAX_POOL2D, x, AT(.i = {2, 2, 1, 1, 0, 0, 0, 0})), (const float *const[]){g1});
  gu_end(&c);
  static const float x2[8] = {0, 2, 2, 2, 2, 1, 2, 2};
  static const float g2[8] = {0, 1, 1, 0, 0, 0, 0, 0};
  gu_begin(&c, ctx, "max_pool2d 2x2 stride 2, ties in both windows", KR_OP_MAX_POOL2D);
  x = var_data(&c, S(1, 2, 4, 1), x2);
  fd_expect_grads(&c, op1(&c, KR_OP_MAX_POOL2D, x, AT(.i = {2, 2, 2, 2, 0, 0, 0, 0})), (const float *const[]){g2});
  gu_end(&c);
}

static void test_fd_shape_ops(kr_ctx *ctx)
{
  static const struct {
    int op;
    const char *name;
    int nx;
    int64_t x[4];
    int64_t at[4];
  } cs[] = {
    {KR_OP_PAD2D, "pad2d (1, 2, 0, 3)", 4, {2, 2, 3, 2}, {1, 2, 0, 3}},
    {KR_OP_PAD2D, "pad2d rank 3", 3, {2, 3, 2}, {0, 0, 2, 1}},
    {KR_OP_CROP2D, "crop2d (1, 0, 2, 1)", 4, {2, 4, 5, 2}, {1, 0, 2, 1}},
    {KR_OP_CROP2D, "crop2d rank 3", 3, {2, 5, 2}, {0, 0, 1, 2}},
    {KR_OP_UPSAMPLE2D, "upsample2d (2, 3)", 4, {2, 2, 2, 2}, {2, 3}},
    {KR_OP_UPSAMPLE2D, "upsample2d rank 3", 3, {2, 3, 2}, {1, 2}},
  };
  for (size_t k = 0; k < sizeof cs / sizeof cs[0]; k++) {
    gcase c;
    gu_begin(&c, ctx, cs[k].name, cs[k].op);
    kr_attr at;
    memset(&at, 0, sizeof at);
    for (int i = 0; i < 4; i++) at.i[i] = cs[k].at[i];
    fd_done(&c, op1(&c, cs[k].op, var_u(&c, kr_shape_make(cs[k].nx, cs[k].x), -1, 1), &at), 0);
  }
}

static void test_spatial_dropout(kr_ctx *ctx)
{
  gcase c;
  gu_begin(&c, ctx, "spatial_dropout 0.5 (2,3,3,4) training", KR_OP_SPATIAL_DROPOUT);
  fd_done(&c, op1(&c, KR_OP_SPATIAL_DROPOUT, var_u(&c, S(2, 3, 3, 4), -1, 1), AT(.f = {0.5})), 1);
  gu_begin(&c, ctx, "spatial_dropout 0.3 (3,4,5) training", KR_OP_SPATIAL_DROPOUT);
  fd_done(&c, op1(&c, KR_OP_SPATIAL_DROPOUT, var_u(&c, S(3, 4, 5), -1, 1), AT(.f = {0.3})), 1);
  gu_begin(&c, ctx, "spatial_dropout 0.5 inference", KR_OP_SPATIAL_DROPOUT);
  fd_done(&c, op1(&c, KR_OP_SPATIAL_DROPOUT, var_u(&c, S(2, 3, 4), -1, 1), AT(.f = {0.5})), 0);
  /* the mask is one value per (sample, channel), the same over all positions */
  gu_begin(&c, ctx, "spatial_dropout mask", KR_OP_SPATIAL_DROPOUT);
  kr_node *x = cst_u(&c, S(4, 5, 6, 8), 1, 2);
  kr_node *y = op1(&c, KR_OP_SPATIAL_DROPOUT, x, AT(.f = {0.5}));
  kr_tensor *t = NULL;
  if (y && eval_nodes(ctx, 1, &y, 1, &t) == KR_OK) {
    const float *xv = KR_DATA(x->value), *yv = KR_DATA(t);
    int consistent = 1, zeros = 0, kept = 0;
    for (int64_t n = 0; n < 4; n++)
      for (int64_t ch = 0; ch < 8; ch++) {
        double r0 = yv[n * 240 + ch] / xv[n * 240 + ch];
        if (r0 == 0) zeros++;
        else if (fabs(r0 - 2.0) < 1e-6) kept++;
        for (int64_t s = 1; s < 30; s++) {
          double r = yv[(n * 30 + s) * 8 + ch] / xv[(n * 30 + s) * 8 + ch];
          if (fabs(r - r0) > 1e-6) consistent = 0;
        }
      }
    CHECK_MSG(consistent && zeros > 3 && kept > 3 && zeros + kept == 32,
              "spatial dropout mask: consistent %d, %d dropped and %d kept of 32 channels", consistent, zeros, kept);
  } else {
    CHECK_MSG(0, "spatial_dropout mask: %s", kr_errmsg(ctx));
  }
  kr_tensor_release(t);
  gu_end(&c);
}

/* a max pool after a relu conv finds its maxima again in the gradient (no
** aux); elsewhere it keeps them; both give the same dx */
static void test_pool_modes(kr_ctx *ctx)
{
  gcase c;
  gu_begin(&c, ctx, "max_pool2d modes", KR_OP_MAX_POOL2D);
  kr_node *x = cst_u(&c, S(2, 6, 6, 3), -1, 1), *w = cst_u(&c, S(3, 3, 3, 4), -1, 1);
  kr_node *relu = opn(&c, KR_OP_CONV2D, 2, (kr_node *[]){x, w}, AT(.i = {1, 1, 1, 1, 1, 1, 1, 1}, .f = {1}));
  kr_node *lin = opn(&c, KR_OP_CONV2D, 2, (kr_node *[]){x, w}, AT(.i = {1, 1, 1, 1, 1, 1, 1, 1}));
  kr_node *p1 = relu ? op1(&c, KR_OP_MAX_POOL2D, relu, AT(.i = {2, 2, 2, 2})) : NULL;
  kr_node *p2 = lin ? op1(&c, KR_OP_MAX_POOL2D, lin, AT(.i = {2, 2, 2, 2})) : NULL;
  CHECK(p1 && p1->attr.f[0] == 0 && kr_ops[KR_OP_MAX_POOL2D].aux(p1, 4) == 0);
  CHECK(p2 && p2->attr.f[0] == 1 && kr_ops[KR_OP_MAX_POOL2D].aux(p2, 4) > 0);
  if (p1 && p2) {
    kr_node *dy = cst_u(&c, p1->shape, -1, 1);
    kr_node *a = op2(&c, KR_OP_MAX_POOL2D_GRAD, dy, p2, AT(.f = {1}));
    kr_attr again = p2->attr;
    again.f[0] = 0;
    kr_node *b = op2(&c, KR_OP_MAX_POOL2D_GRAD, dy, lin, &again);
    kr_node *d = op2(&c, KR_OP_MAX_POOL2D_GRAD, dy, relu, &p1->attr);
    kr_tensor *ta = a ? kr_eval(ctx, a) : NULL, *tb = b ? kr_eval(ctx, b) : NULL, *td = d ? kr_eval(ctx, d) : NULL;
    CHECK_MSG(ta && tb && td, "pool modes: %s", kr_errmsg(ctx));
    int same = ta && tb;
    for (int64_t i = 0; same && i < kr_tensor_numel(ta); i++) same = KR_DATA(ta)[i] == KR_DATA(tb)[i];
    CHECK_MSG(same, "max_pool2d_grad: the kept and the recomputed argmax differ");
    kr_tensor_release(ta);
    kr_tensor_release(tb);
    kr_tensor_release(td);
  }
  gu_end(&c);
}

/* ---- the relu's mask applied by the node that makes dy (kr_conv_grad's masked_dy) ----
** relu conv -> conv (the upper input gradient masks its output: f3) and relu
** conv -> max pool (the pool gradient drops windows whose maximum is 0: f2),
** against the same layers with the relu as an op of its own, which no
** fusion touches: the same gradients, through other kernels (1e-4) */

static int find_masked(kr_node *n, kr_node **seen, int *nseen, int cap)
{
  for (int i = 0; i < *nseen; i++)
    if (seen[i] == n) return 0;
  if (*nseen < cap) seen[(*nseen)++] = n;
  int found = (n->op == KR_OP_CONV2D_GRAD_INPUT && n->attr.f[3] != 0) ||
              (n->op == KR_OP_MAX_POOL2D_GRAD && n->attr.f[2] != 0);
  for (int k = 0; k < n->nin; k++) found += find_masked(n->in[k], seen, nseen, cap);
  return found;
}

/* layer: conv with a fused relu, or (fused = 0) a linear conv and a relu op */
static kr_node *relu_conv(gcase *c, int fused, kr_node *x, kr_node *w, kr_node *b, const kr_attr *at)
{
  kr_attr a = *at;
  a.f[0] = fused;
  kr_node *y = opn(c, KR_OP_CONV2D, b ? 3 : 2, (kr_node *[]){x, w, b}, &a);
  return fused || !y ? y : op1(c, KR_OP_RELU, y, AT(.f = {0, 0}));
}

static void test_mask_fusion(kr_ctx *ctx)
{
  static const struct {
    const char *name;
    int r;                 /* rank of x */
    int64_t x[4], wa[4], wb[4];
    int64_t ata[8], atb[8];
    int relu_b, pool, want;   /* masks the fusion must apply */
  } cs[] = {
    {"relu conv -> relu conv (direct) -> max pool", 4, {2, 14, 13, 8}, {3, 3, 8, 16}, {3, 3, 16, 32},
     {1, 1, 1, 1, 1, 1, 1, 1}, {1, 1, 1, 1, 0, 0, 0, 0}, 1, 1, 2},
    {"relu conv -> conv stride 2 (col2im)", 4, {2, 9, 10, 4}, {3, 3, 4, 8}, {3, 3, 8, 16},
     {1, 1, 1, 1, 1, 1, 1, 1}, {2, 2, 1, 1, 1, 1, 1, 1}, 0, 0, 1},
    {"relu conv -> relu conv (winograd)", 4, {2, 7, 8, 8}, {3, 3, 8, 64}, {3, 3, 64, 64},
     {1, 1, 1, 1, 1, 1, 1, 1}, {1, 1, 1, 1, 1, 1, 1, 1}, 1, 0, 1},
    {"relu conv -> conv (im2col, 12 channels)", 4, {3, 8, 9, 5}, {3, 3, 5, 12}, {3, 3, 12, 20},
     {1, 1, 1, 1, 0, 0, 0, 0}, {1, 1, 1, 1, 1, 1, 1, 1}, 0, 0, 1},
    {"relu conv1d -> relu conv1d (winograd F(4,3)) -> max pool", 3, {3, 21, 8}, {3, 8, 16}, {3, 16, 24},
     {1, 1, 1, 1, 0, 0, 1, 1}, {1, 1, 1, 1, 0, 0, 0, 0}, 1, 1, 2},
  };
  for (size_t k = 0; k < sizeof cs / sizeof cs[0]; k++) {
    gcase c;
    gu_begin(&c, ctx, cs[k].name, KR_OP_CONV2D);
    int r = cs[k].r;
    kr_attr ata, atb;
    memset(&ata, 0, sizeof ata);
    memset(&atb, 0, sizeof atb);
    memcpy(ata.i, cs[k].ata, sizeof ata.i);
    memcpy(atb.i, cs[k].atb, sizeof atb.i);
    atb.f[0] = cs[k].relu_b;
    kr_node *x = var_u(&c, kr_shape_make(r, cs[k].x), -1, 1);
    kr_node *wa = var_u(&c, kr_shape_make(r, cs[k].wa), -0.5, 0.5), *wb = var_u(&c, kr_shape_make(r, cs[k].wb), -0.3, 0.3);
    kr_node *ba = var_u(&c, S(cs[k].wa[r - 1]), -0.2, 0.2), *bb = var_u(&c, S(cs[k].wb[r - 1]), -0.2, 0.2);
    kr_node *loss[2] = {NULL, NULL}, *g[2][GU_MAXVAR] = {{0}}, *R = NULL;
    for (int fused = 1; fused >= 0; fused--) {
      kr_node *a = relu_conv(&c, fused, x, wa, ba, &ata);
      kr_node *y = a ? (cs[k].relu_b ? relu_conv(&c, fused, a, wb, bb, &atb)
                                     : opn(&c, KR_OP_CONV2D, 3, (kr_node *[]){a, wb, bb}, &atb))
                     : NULL;
      if (y && cs[k].pool) y = op1(&c, KR_OP_MAX_POOL2D, y, AT(.i = {r == 4 ? 2 : 1, 2, r == 4 ? 2 : 1, 2}));
      if (!y) break;
      if (!R) R = cst_u(&c, y->shape, -1, 1);   /* made for the fused graph, used by both */
      loss[fused] = R ? op1(&c, KR_OP_SUM, op2(&c, KR_OP_MUL, y, R, NULL), AT(.i = {(1 << y->shape.ndim) - 1, 0})) : NULL;
      if (!loss[fused]) break;
      int st = kr_gradients(ctx, loss[fused], c.nvar, c.var, g[fused]);
      CHECK_MSG(st == KR_OK, "%s: kr_gradients: %s", c.name, kr_errmsg(ctx));
      for (int v = 0; v < c.nvar; v++) gu_keep(&c, g[fused][v]);
      if (st != KR_OK) break;
    }
    if (!c.broken && loss[0] && loss[1]) {
      kr_node *seen[512];
      int nseen = 0, found = 0;
      for (int v = 0; v < c.nvar; v++) found += find_masked(g[1][v], seen, &nseen, 512);
      CHECK_MSG(found == cs[k].want, "%s: %d masked gradient nodes, expected %d", c.name, found, cs[k].want);
      nseen = 0;
      for (int v = 0; v < c.nvar; v++) CHECK_MSG(find_masked(g[0][v], seen, &nseen, 512) == 0, "%s: unfused graph masked", c.name);
      for (int threads = 1; threads <= 2; threads++) {
        kr_set_num_threads(ctx, threads);
        kr_tensor *t[2][GU_MAXVAR] = {{0}};
        int ok = eval_nodes(ctx, c.nvar, g[1], 1, t[1]) == KR_OK && eval_nodes(ctx, c.nvar, g[0], 1, t[0]) == KR_OK;
        CHECK_MSG(ok, "%s: evaluating: %s", c.name, kr_errmsg(ctx));
        for (int v = 0; ok && v < c.nvar; v++) {
          int bad = 0, nz = 0;
          for (int64_t i = 0; i < kr_tensor_numel(t[0][v]); i++) {
            float p = KR_DATA(t[1][v])[i], q = KR_DATA(t[0][v])[i];
            if (!(fabsf(p - q) <= 1e-4f * fmaxf(1.0f, fabsf(q)))) {
              if (bad++ < 3) fprintf(stderr, "%s: gradient %d [%lld]: fused %.8g, unfused %.8g\n", c.name, v, (long long)i, p, q);
            }
            nz += q != 0;
          }
          CHECK_MSG(bad == 0 && nz > 0, "%s (%d threads): gradient %d: %d values differ, %d nonzero", c.name, threads, v,
                    bad, nz);
        }
        for (int f = 0; f < 2; f++)
          for (int v = 0; v < c.nvar; v++) kr_tensor_release(t[f][v]);
      }
      kr_set_num_threads(ctx, 1);
    }
    gu_end(&c);
  }
}

static void test_coverage(void)
{
  for (int op = KR_OP_CONV2D; op <= KR_OP_DEPTHWISE_CONV2D_GRAD_KERNEL; op++) {
    if (kr_ops[op].grad) CHECK_MSG(covered[op], "no finite-difference check for op '%s'", kr_op_name(op));
    else CHECK_MSG(in_grad[op], "gradient helper '%s' appeared in no checked gradient", kr_op_name(op));
  }
}

/* ---- every lowering of conv2d and its gradients (the autotuner's candidates) ---- */

/* y in float64 straight from the definition (zero padding), linear or relu */
static void conv_reference(const kr_shape *xs, const kr_shape *ws, const kr_shape *ys, const kr_attr *at,
                           const float *x, const float *w, double *y)
{
  int r = xs->ndim;
  int64_t N = xs->dim[0], H = r == 4 ? xs->dim[1] : 1, W = xs->dim[r - 2], C = xs->dim[r - 1];
  int64_t KH = r == 4 ? ws->dim[0] : 1, KW = ws->dim[r - 3], O = ws->dim[r - 1];
  int64_t Ho = r == 4 ? ys->dim[1] : 1, Wo = ys->dim[r - 2];
  for (int64_t n = 0; n < N; n++)
    for (int64_t oh = 0; oh < Ho; oh++)
      for (int64_t ow = 0; ow < Wo; ow++)
        for (int64_t o = 0; o < O; o++) {
          double s = 0;
          for (int64_t kh = 0; kh < KH; kh++)
            for (int64_t kw = 0; kw < KW; kw++) {
              int64_t ih = oh * at->i[0] - at->i[4] + kh * at->i[2], iw = ow * at->i[1] - at->i[6] + kw * at->i[3];
              if (ih < 0 || ih >= H || iw < 0 || iw >= W) continue;
              for (int64_t c = 0; c < C; c++)
                s += (double)x[((n * H + ih) * W + iw) * C + c] * (double)w[((kh * KW + kw) * C + c) * O + o];
            }
          y[((n * Ho + oh) * Wo + ow) * O + o] = at->f[0] != 0 && s < 0 ? 0 : s;
        }
}

/* which passes a forced lowering really ran: [algo][pass] */
static int lowered[KR_CONV_ALGO_COUNT][3];

static void mark_lowered(kr_node *n, int algo, kr_node **seen, int *nseen)
{
  for (int i = 0; i < *nseen; i++)
    if (seen[i] == n) return;
  if (*nseen < 256) seen[(*nseen)++] = n;
  int pass = n->op == KR_OP_CONV2D ? 0 : n->op == KR_OP_CONV2D_GRAD_INPUT ? 1 : n->op == KR_OP_CONV2D_GRAD_KERNEL ? 2 : -1;
  if (pass >= 0 && kr_conv_algo_valid(n, algo)) lowered[algo][pass] = 1;
  for (int k = 0; k < n->nin; k++) mark_lowered(n->in[k], algo, seen, nseen);
}

static void test_lowerings(kr_ctx *ctx)
{
  static const struct {
    const char *name;
    int nx;
    int64_t x[4];
    int64_t w[4];
    int64_t at[8];
    int relu;
  } cs[] = {
    {"3x3 same 32->64 (winograd, direct)", 4, {1, 5, 13, 32}, {3, 3, 32, 64}, {1, 1, 1, 1, 1, 1, 1, 1}, 0},
    {"3x3 valid 48->64 (winograd, direct)", 4, {2, 6, 16, 48}, {3, 3, 48, 64}, {1, 1, 1, 1, 0, 0, 0, 0}, 0},
    {"3x3 valid 64->32 relu (winograd, masked)", 4, {1, 4, 3, 64}, {3, 3, 64, 32}, {1, 1, 1, 1, 0, 0, 0, 0}, 1},
    {"conv1d 3 valid 24->32 (winograd1d, direct)", 3, {2, 20, 24}, {3, 24, 32}, {1, 1, 1, 1, 0, 0, 0, 0}, 0},
    {"conv1d 3 causal 32->32 relu (masked)", 3, {1, 5, 32}, {3, 32, 32}, {1, 1, 1, 1, 0, 0, 2, 0}, 1},
    {"5x5 same stride 2 16->16 (col2im)", 4, {2, 9, 14, 16}, {5, 5, 16, 16}, {2, 2, 1, 1, 2, 2, 2, 2}, 0},
    {"1x1 16->16 (pointwise)", 4, {2, 3, 13, 16}, {1, 1, 16, 16}, {1, 1, 1, 1, 0, 0, 0, 0}, 0},
    /* 300 rows (more than a block of the packed lowering, not a multiple of
    ** its tile), 37 filters (a ragged panel); then the relu fused (masked) */
    {"1x1 24->37 (pointwise, packed)", 4, {3, 10, 10, 24}, {1, 1, 24, 37}, {1, 1, 1, 1, 0, 0, 0, 0}, 0},
    {"1x1 8->37 relu (pointwise, masked)", 4, {1, 2, 1, 8}, {1, 1, 8, 37}, {1, 1, 1, 1, 0, 0, 0, 0}, 1},
    {"conv1d 1 20->40 (pointwise)", 3, {2, 9, 20}, {1, 20, 40}, {1, 1, 1, 1, 0, 0, 0, 0}, 0},
  };
  for (int algo = KR_CONV_ALGO_IM2COL; algo < KR_CONV_ALGO_COUNT; algo++) {
    kr_conv_force_algo(ctx, algo);
    for (size_t k = 0; k < sizeof cs / sizeof cs[0]; k++) {
      char name[160];
      snprintf(name, sizeof name, "%s by %s", cs[k].name, kr_conv_algo_name(algo));
      kr_attr at;
      memset(&at, 0, sizeof at);
      memcpy(at.i, cs[k].at, sizeof at.i);
      at.f[0] = cs[k].relu;
      kr_shape xs = kr_shape_make(cs[k].nx, cs[k].x), ws = kr_shape_make(cs[k].nx, cs[k].w);
      /* the forward against float64 */
      gcase c;
      gu_begin(&c, ctx, name, KR_OP_CONV2D);
      kr_node *in[2] = {cst_u(&c, xs, -1, 1), cst_u(&c, ws, -1, 1)};
      kr_node *y = opn(&c, KR_OP_CONV2D, 2, in, &at);
      kr_tensor *ty = y ? kr_eval(ctx, y) : NULL;
      CHECK_MSG(ty != NULL, "%s: %s", name, kr_errmsg(ctx));
      if (ty) {
        int64_t ny = kr_tensor_numel(ty);
        double *ref = malloc((size_t)ny * sizeof(double)), worst = 0;
        conv_reference(&xs, &ws, &y->shape, &at, KR_DATA(in[0]->value), KR_DATA(in[1]->value), ref);
        for (int64_t i = 0; i < ny; i++) worst = fmax(worst, fabs(KR_DATA(ty)[i] - ref[i]) / fmax(1.0, fabs(ref[i])));
        /* a float32 sum of up to 432 products of O(1), Winograd's transforms: ~1e-5 */
        CHECK_MSG(worst <= 1e-4, "%s: forward off the float64 reference by %.3g", name, worst);
        free(ref);
      }
      kr_tensor_release(ty);
      gu_end(&c);
      /* both gradients by finite differences, the gradient nodes run by the same lowering */
      gu_begin(&c, ctx, name, KR_OP_CONV2D);
      kr_node *out = cs[k].relu ? conv_away_from_kink(&c, xs, ws, &at, 0) : NULL;
      if (!cs[k].relu) {
        kr_node *vin[2] = {var_u(&c, xs, -1, 1), var_u(&c, ws, -1, 1)};
        out = opn(&c, KR_OP_CONV2D, 2, vin, &at);
      }
      if (out) {
        kr_node *g[2] = {NULL, NULL}, *vars[2] = {c.var[0], c.var[1]};
        kr_node *sum = kr_op1(ctx, KR_OP_SUM, out, AT(.i = {(1 << out->shape.ndim) - 1, 0}));
        if (sum && kr_gradients(ctx, sum, 2, vars, g) == KR_OK) {
          kr_node *seen[256];
          int nseen = 0;
          for (int i = 0; i < 2; i++) mark_lowered(g[i], algo, seen, &nseen);
          mark_lowered(out, algo, seen, &nseen);
        }
        for (int i = 0; i < 2; i++) kr_node_release(g[i]);
        kr_node_release(sum);
      }
      /* about 60 elements of each variable: 5 lowerings x 7 geometries */
      fd_opts o = {.rtol = FD_RTOL_WINOGRAD, .points = 60, .seen = in_grad, .helper = -1};
      if (out) fd_check_outputs(&c, 1, &out, NULL, &o);
      gu_end(&c);
    }
  }
  kr_conv_force_algo(ctx, KR_CONV_ALGO_RULE);
  static const char *pass[3] = {"forward", "input gradient", "kernel gradient"};
  int avx512 = __builtin_cpu_supports("avx512f") != 0;
  static const int want[KR_CONV_ALGO_COUNT][3] = {
    [KR_CONV_ALGO_IM2COL] = {1, 1, 1}, [KR_CONV_ALGO_WINOGRAD] = {1, 1, 0}, [KR_CONV_ALGO_WINOGRAD1D] = {1, 1, 0},
    [KR_CONV_ALGO_DIRECT] = {1, 1, 1}, [KR_CONV_ALGO_COL2IM] = {0, 1, 0}, [KR_CONV_ALGO_PACKED] = {1, 1, 1}};
  for (int a = KR_CONV_ALGO_IM2COL; a < KR_CONV_ALGO_COUNT; a++)
    for (int p = 0; p < 3; p++)
      if (want[a][p] && ((a != KR_CONV_ALGO_DIRECT && (a != KR_CONV_ALGO_PACKED || p != 2)) || avx512))
        CHECK_MSG(lowered[a][p], "lowering %s never ran the %s", kr_conv_algo_name(a), pass[p]);
}

/* the tuner: a choice per geometry, cached, reported; off keeps the rules */
static void test_autotune(kr_ctx *ctx)
{
  kr_conv_autotune_clear(ctx);
  CHECK(kr_get_conv_autotune(ctx) == 1);
  gcase c;
  gu_begin(&c, ctx, "autotune", KR_OP_CONV2D);
  kr_node *in[2] = {cst_u(&c, S(4, 12, 14, 32), -1, 1), cst_u(&c, S(3, 3, 32, 32), -1, 1)};
  kr_node *y = opn(&c, KR_OP_CONV2D, 2, in, AT(.i = {1, 1, 1, 1, 1, 1, 1, 1}));
  kr_tensor *a = y ? kr_eval(ctx, y) : NULL;
  CHECK(kr_conv_autotune_count(ctx) == 1);
  const kr_conv_tuned *t = kr_conv_autotune_entry(ctx, 0);
  CHECK_MSG(t != NULL && t->ncand >= 2 && t->key[0] == KR_OP_CONV2D && t->batch == 4,
            "autotune entry: %d candidates, op %lld, batch %lld", t ? t->ncand : -1, t ? (long long)t->key[0] : -1LL,
            t ? (long long)t->batch : -1LL);
  int timed = 0, has_choice = 0;
  for (int i = 0; t && i < t->ncand; i++) {
    timed += t->ms[i] >= 0;
    has_choice |= t->cand[i] == t->algo;
  }
  CHECK_MSG(t && timed == t->ncand && has_choice, "autotune: every candidate timed, the choice among them");
  CHECK(kr_conv_autotune_seconds(ctx) > 0);
  /* the same geometry again: cached, not tuned again */
  kr_tensor *b = y ? kr_eval(ctx, y) : NULL;
  CHECK(kr_conv_autotune_count(ctx) == 1);
  CHECK(a && b && memcmp(KR_DATA(a), KR_DATA(b), (size_t)kr_tensor_numel(a) * sizeof(float)) == 0);
  /* off: the rule, and nothing more tuned */
  kr_set_conv_autotune(ctx, 0);
  CHECK(kr_get_conv_autotune(ctx) == 0);
  kr_node *in2[2] = {cst_u(&c, S(2, 9, 9, 16), -1, 1), cst_u(&c, S(3, 3, 16, 16), -1, 1)};
  kr_node *y2 = opn(&c, KR_OP_CONV2D, 2, in2, AT(.i = {1, 1, 1, 1}));
  kr_tensor *d = y2 ? kr_eval(ctx, y2) : NULL;
  CHECK(d != NULL && kr_conv_autotune_count(ctx) == 1);
  CHECK(kr_conv_algo(ctx, y) == KR_CONV_ALGO_RULE);
  kr_set_conv_autotune(ctx, 1);
  kr_tensor_release(a);
  kr_tensor_release(b);
  kr_tensor_release(d);
  gu_end(&c);
  CHECK(strcmp(kr_conv_algo_name(KR_CONV_ALGO_WINOGRAD), "winograd") == 0);
  CHECK(strcmp(kr_conv_pass_name(KR_OP_CONV2D_GRAD_KERNEL), "kernel_gradient") == 0);
}

/* ---- depthwise_conv2d: a float64 reference, finite differences, threads ---- */

/* y[n, oh, ow, c*M + m] in float64 straight from the definition (zero padding) */
static void dw_reference(const kr_shape *xs, const kr_shape *ws, const kr_shape *ys, const kr_attr *at,
                         const float *x, const float *w, double *y)
{
  int r = xs->ndim;
  int64_t N = xs->dim[0], H = r == 4 ? xs->dim[1] : 1, W = xs->dim[r - 2], C = xs->dim[r - 1];
  int64_t KH = r == 4 ? ws->dim[0] : 1, KW = ws->dim[r - 3], M = ws->dim[r - 1];
  int64_t Ho = r == 4 ? ys->dim[1] : 1, Wo = ys->dim[r - 2];
  for (int64_t n = 0; n < N; n++)
    for (int64_t oh = 0; oh < Ho; oh++)
      for (int64_t ow = 0; ow < Wo; ow++)
        for (int64_t c = 0; c < C; c++)
          for (int64_t m = 0; m < M; m++) {
            double s = 0;
            for (int64_t kh = 0; kh < KH; kh++)
              for (int64_t kw = 0; kw < KW; kw++) {
                int64_t ih = oh * at->i[0] - at->i[4] + kh * at->i[2], iw = ow * at->i[1] - at->i[6] + kw * at->i[3];
                if (ih < 0 || ih >= H || iw < 0 || iw >= W) continue;
                s += (double)x[((n * H + ih) * W + iw) * C + c] * (double)w[((kh * KW + kw) * C + c) * M + m];
              }
            y[((n * Ho + oh) * Wo + ow) * C * M + c * M + m] = s;
          }
}

static const struct {
  const char *name;
  int nx;
  int64_t x[4];
  int64_t w[4];
  int64_t at[8];
} dw_cases[] = {
  {"depthwise 3x3 valid", 4, {2, 5, 6, 3}, {3, 3, 3, 1}, {1, 1, 1, 1, 0, 0, 0, 0}},
  {"depthwise 3x3 same stride 2 multiplier 2", 4, {2, 7, 6, 3}, {3, 3, 3, 2}, {2, 2, 1, 1, 1, 1, 1, 1}},
  {"depthwise 2x3 same dilation 2 multiplier 3", 4, {1, 6, 7, 2}, {2, 3, 2, 3}, {1, 1, 2, 2, 1, 1, 2, 2}},
  {"depthwise strides (1, 3) dilation (2, 1)", 4, {2, 7, 8, 4}, {3, 2, 4, 1}, {1, 3, 2, 1, 0, 0, 0, 0}},
  {"depthwise 5x5 same asymmetric pads", 4, {1, 4, 5, 2}, {4, 4, 2, 2}, {1, 1, 1, 1, 1, 2, 1, 2}},
  {"depthwise 3x3 same 32 channels (register blocks)", 4, {2, 5, 6, 32}, {3, 3, 32, 1}, {1, 1, 1, 1, 1, 1, 1, 1}},
  {"depthwise 3x3 same stride 2 16 channels (register blocks)", 4, {1, 7, 6, 16}, {3, 3, 16, 1},
   {2, 2, 1, 1, 1, 1, 0, 1}},
  {"depthwise 2x3 dilation (2, 1) 16 channels (register blocks)", 4, {1, 6, 7, 16}, {2, 3, 16, 1},
   {1, 1, 2, 1, 1, 1, 1, 1}},
  {"depthwise 1-D same multiplier 2", 3, {2, 7, 3}, {3, 3, 2}, {1, 1, 1, 1, 0, 0, 1, 1}},
  {"depthwise 1-D stride 2 16 channels (register blocks)", 3, {2, 9, 16}, {3, 16, 1}, {1, 2, 1, 1, 0, 0, 1, 1}},
  {"depthwise 1-D stride 2 dilation 2", 3, {2, 11, 2}, {3, 2, 1}, {1, 2, 1, 2, 0, 0, 0, 0}},
  /* rows wide enough for the AVX-512 kernels' blocks of 8 pixels, and a ragged rest */
  {"depthwise 3x3 same 32 channels, 21 columns (pixel blocks)", 4, {2, 4, 21, 32}, {3, 3, 32, 1},
   {1, 1, 1, 1, 1, 1, 1, 1}},
  {"depthwise 3x3 same stride 2 48 channels, 35 columns (pixel blocks)", 4, {1, 5, 35, 48}, {3, 3, 48, 1},
   {2, 2, 1, 1, 0, 1, 1, 1}},
  {"depthwise 3x3 dilation 2 same 16 channels, 30 columns (pixel blocks)", 4, {1, 6, 30, 16}, {3, 3, 16, 1},
   {1, 1, 2, 2, 2, 2, 2, 2}},
  {"depthwise 1-D 5 stride 2 16 channels, 40 steps (pixel blocks)", 3, {2, 40, 16}, {5, 16, 1},
   {1, 2, 1, 1, 0, 0, 1, 2}},
};

static void test_depthwise(kr_ctx *ctx)
{
  for (size_t k = 0; k < sizeof dw_cases / sizeof dw_cases[0]; k++) {
    kr_attr at;
    memset(&at, 0, sizeof at);
    memcpy(at.i, dw_cases[k].at, sizeof at.i);
    kr_shape xs = kr_shape_make(dw_cases[k].nx, dw_cases[k].x), ws = kr_shape_make(dw_cases[k].nx, dw_cases[k].w);
    /* the forward against the float64 reference */
    {
      gcase c;
      gu_begin(&c, ctx, dw_cases[k].name, KR_OP_DEPTHWISE_CONV2D);
      kr_node *x = cst_u(&c, xs, -1, 1), *w = cst_u(&c, ws, -1, 1), *in[2] = {x, w};
      kr_node *y = opn(&c, KR_OP_DEPTHWISE_CONV2D, 2, in, &at);
      kr_tensor *ty = y ? kr_eval(ctx, y) : NULL;
      CHECK_MSG(ty != NULL, "%s: %s", dw_cases[k].name, kr_errmsg(ctx));
      if (ty) {
        int64_t ny = kr_tensor_numel(ty);
        double *ref = malloc((size_t)ny * sizeof(double));
        dw_reference(&xs, &ws, &y->shape, &at, KR_DATA(x->value), KR_DATA(w->value), ref);
        int bad = 0;
        for (int64_t i = 0; i < ny; i++)
          if (!(fabs(KR_DATA(ty)[i] - ref[i]) <= 1e-5 * fmax(1.0, fabs(ref[i])))) bad++;
        CHECK_MSG(bad == 0, "%s: %d outputs differ from the float64 reference", dw_cases[k].name, bad);
        free(ref);
      }
      kr_tensor_release(ty);
      gu_end(&c);
    }
    /* both gradients by finite differences */
    gcase c;
    gu_begin(&c, ctx, dw_cases[k].name, KR_OP_DEPTHWISE_CONV2D);
    kr_node *in[2] = {var_u(&c, xs, -1, 1), var_u(&c, ws, -1, 1)};
    fd_done(&c, opn(&c, KR_OP_DEPTHWISE_CONV2D, 2, in, &at), 0);
  }
  /* the input alone, the kernel alone */
  {
    gcase c;
    gu_begin(&c, ctx, "depthwise gradient of the input only", KR_OP_DEPTHWISE_CONV2D);
    kr_node *in[2] = {var_u(&c, S(2, 5, 4, 3), -1, 1), cst_u(&c, S(3, 2, 3, 2), -1, 1)};
    fd_done(&c, opn(&c, KR_OP_DEPTHWISE_CONV2D, 2, in, AT(.i = {2, 1, 1, 1, 1, 1, 0, 1})), 0);
    gu_begin(&c, ctx, "depthwise gradient of the kernel only", KR_OP_DEPTHWISE_CONV2D);
    kr_node *in2[2] = {cst_u(&c, S(2, 5, 4, 3), -1, 1), var_u(&c, S(3, 2, 3, 2), -1, 1)};
    fd_done(&c, opn(&c, KR_OP_DEPTHWISE_CONV2D, 2, in2, AT(.i = {1, 2, 1, 1, 1, 1, 0, 1})), 0);
  }
  /* 1, 2 and 3 threads give the same bits (rows split among workers; the
  ** kernel gradient over fixed groups of samples), large enough to split */
  for (int64_t M = 1; M <= 2; M++) {   /* the register blocks (M = 1), the general loops */
    kr_tensor *r[3][3] = {{NULL}};
    kr_shape xs = S(19, 20, 22, 32), ws = S(3, 3, 32, M);
    const kr_attr *at = AT(.i = {1, 1, 1, 1, 1, 1, 1, 1});
    kr_tensor *tx = gu_t_uniform(ctx, xs, -1, 1, NOKINKS, 0), *tw = gu_t_uniform(ctx, ws, -1, 1, NOKINKS, 0);
    kr_tensor *tdy = gu_t_uniform(ctx, S(19, 20, 22, 32 * M), -1, 1, NOKINKS, 0);
    for (int k = 0; k < 3; k++) {
      kr_set_num_threads(ctx, k + 1);
      kr_node *x = kr_node_const(ctx, tx), *w = kr_node_const(ctx, tw), *dy = kr_node_const(ctx, tdy);
      kr_node *in[2] = {x, w}, *gi[3] = {dy, w, x}, *gk[3] = {dy, x, w};
      kr_node *n[3] = {kr_node_op(ctx, KR_OP_DEPTHWISE_CONV2D, 2, in, at),
                       kr_node_op(ctx, KR_OP_DEPTHWISE_CONV2D_GRAD_INPUT, 3, gi, at),
                       kr_node_op(ctx, KR_OP_DEPTHWISE_CONV2D_GRAD_KERNEL, 3, gk, at)};
      for (int i = 0; i < 3; i++) {
        r[k][i] = n[i] ? kr_eval(ctx, n[i]) : NULL;
        CHECK_MSG(r[k][i] != NULL, "depthwise threads: %s", kr_errmsg(ctx));
        kr_node_release(n[i]);
      }
      kr_node_release(x);
      kr_node_release(w);
      kr_node_release(dy);
    }
    static const char *what[3] = {"y", "dx", "dw"};
    for (int k = 1; k < 3; k++)
      for (int i = 0; i < 3; i++) {
        int same = r[k][i] && r[0][i] && kr_tensor_numel(r[k][i]) == kr_tensor_numel(r[0][i]) &&
                   memcmp(KR_DATA(r[k][i]), KR_DATA(r[0][i]), (size_t)kr_tensor_numel(r[0][i]) * sizeof(float)) == 0;
        CHECK_MSG(same, "depthwise (M = %d) %s with %d threads differs from one thread", (int)M, what[i], k + 1);
      }
    for (int k = 0; k < 3; k++)
      for (int i = 0; i < 3; i++) kr_tensor_release(r[k][i]);
    kr_tensor_release(tx);
    kr_tensor_release(tw);
    kr_tensor_release(tdy);
    kr_set_num_threads(ctx, 1);
  }
}

/* ---- errors ---- */

static void expect_fail(kr_ctx *ctx, const char *what, kr_node *n, const char *s1, const char *s2)
{
  const char *m = kr_errmsg(ctx);
  CHECK_MSG(n == NULL && has(m, s1) && (!s2 || has(m, s2)), "%s: expected an error with '%s' '%s', got '%s'", what,
            s1, s2 ? s2 : "", n ? "(a node)" : m);
  kr_node_release(n);
}

static void test_errors(kr_ctx *ctx)
{
  gcase c;
  gu_begin(&c, ctx, "errors", KR_OP_CONV2D);
  kr_node *x4 = cst_zeros(&c, S(2, 5, 5, 3)), *w4 = cst_zeros(&c, S(3, 3, 3, 4)), *x2 = cst_zeros(&c, S(5, 3));
  kr_node *w_bad = cst_zeros(&c, S(3, 3, 2, 4)), *big = cst_zeros(&c, S(7, 7, 3, 4)), *b5 = cst_zeros(&c, S(5));
  kr_node *x3 = cst_zeros(&c, S(2, 6, 3)), *w3 = cst_zeros(&c, S(3, 3, 4));
  kr_node *in[3];
  in[0] = x2; in[1] = w4;
  expect_fail(ctx, "rank 2", kr_node_op(ctx, KR_OP_CONV2D, 2, in, AT(.i = {1, 1, 1, 1})), "conv2d: expected an input of rank 3", "(5, 3)");
  in[0] = x4; in[1] = w_bad;
  expect_fail(ctx, "channels", kr_node_op(ctx, KR_OP_CONV2D, 2, in, AT(.i = {1, 1, 1, 1})), "expects 2 input channels", "has 3");
  in[1] = big;
  expect_fail(ctx, "too large", kr_node_op(ctx, KR_OP_CONV2D, 2, in, AT(.i = {1, 1, 1, 1})), "is larger than the padded input 5x5", NULL);
  in[1] = w3;
  expect_fail(ctx, "kernel rank", kr_node_op(ctx, KR_OP_CONV2D, 2, in, AT(.i = {1, 1, 1, 1})), "does not fit an input of shape (2, 5, 5, 3)", NULL);
  in[1] = w4;
  expect_fail(ctx, "stride 0", kr_node_op(ctx, KR_OP_CONV2D, 2, in, AT(.i = {0, 1, 1, 1})), "strides and dilations must be in [1,", NULL);
  expect_fail(ctx, "negative pad", kr_node_op(ctx, KR_OP_CONV2D, 2, in, AT(.i = {1, 1, 1, 1, -1})), "paddings must be in [0,", NULL);
  expect_fail(ctx, "activation", kr_node_op(ctx, KR_OP_CONV2D, 2, in, AT(.i = {1, 1, 1, 1}, .f = {2})), "fused activation", NULL);
  in[2] = b5;
  expect_fail(ctx, "bias", kr_node_op(ctx, KR_OP_CONV2D, 3, in, AT(.i = {1, 1, 1, 1})), "the bias has shape (5,), expected (4,)", NULL);
  expect_fail(ctx, "one input", kr_node_op(ctx, KR_OP_CONV2D, 1, in, AT(.i = {1, 1, 1, 1})), "expected 2 or 3 inputs", NULL);
  in[0] = x3; in[1] = w3;
  expect_fail(ctx, "1-D height stride", kr_node_op(ctx, KR_OP_CONV2D, 2, in, AT(.i = {2, 1, 1, 1})), "a rank-3 input has no height", NULL);
  /* gradient helpers check what they get */
  kr_node *y = opn(&c, KR_OP_CONV2D, 2, (kr_node *[]){x4, w4}, AT(.i = {1, 1, 1, 1}));
  kr_node *dy_bad = cst_zeros(&c, S(2, 3, 3, 5));
  in[0] = dy_bad; in[1] = w4; in[2] = x4;
  expect_fail(ctx, "grad_input dy", kr_node_op(ctx, KR_OP_CONV2D_GRAD_INPUT, 3, in, AT(.i = {1, 1, 1, 1})),
              "the output gradient has shape (2, 3, 3, 5), the convolution gives (2, 3, 3, 4)", NULL);
  in[0] = y;
  expect_fail(ctx, "grad_input mask", kr_node_op(ctx, KR_OP_CONV2D_GRAD_INPUT, 3, in, AT(.i = {1, 1, 1, 1}, .f = {1})),
              "expected 4 inputs (5 with an ordering input), got 3", NULL);
  expect_fail(ctx, "max_pool2d_grad of a conv", kr_op2(ctx, KR_OP_MAX_POOL2D_GRAD, y, y, AT(.f = {1})),
              "must be a max_pool2d node that keeps its argmax, got conv2d", NULL);
  expect_fail(ctx, "max_pool2d_grad recomputing", kr_op2(ctx, KR_OP_MAX_POOL2D_GRAD, y, x4, AT(.i = {2, 2, 2, 2})),
              "the output gradient has shape (2, 3, 3, 4), expected (2, 2, 2, 3)", NULL);
  expect_fail(ctx, "spatial_dropout_grad of a conv", kr_op2(ctx, KR_OP_SPATIAL_DROPOUT_GRAD, y, y, NULL),
              "must be a spatial_dropout node", NULL);
  /* pools, padding, upsampling, dropout */
  expect_fail(ctx, "pool too large", kr_op1(ctx, KR_OP_MAX_POOL2D, x4, AT(.i = {6, 2, 1, 1})), "the pool window 6x2 is larger than the padded input 5x5", NULL);
  expect_fail(ctx, "pool pad", kr_op1(ctx, KR_OP_AVG_POOL2D, x4, AT(.i = {2, 2, 1, 1, 2})), "padding must be smaller than the pool window", NULL);
  expect_fail(ctx, "pool cells", kr_op1(ctx, KR_OP_MAX_POOL2D, x4, AT(.i = {300, 300, 1, 1})), "too large (at most 65535)", NULL);
  expect_fail(ctx, "crop", kr_op1(ctx, KR_OP_CROP2D, x4, AT(.i = {3, 2})), "leaves nothing", NULL);
  expect_fail(ctx, "upsample 0", kr_op1(ctx, KR_OP_UPSAMPLE2D, x4, AT(.i = {0, 2})), "sizes must be in [1,", NULL);
  expect_fail(ctx, "spatial dropout rank", kr_op1(ctx, KR_OP_SPATIAL_DROPOUT, x2, AT(.f = {0.5})), "rank >= 3", NULL);
  expect_fail(ctx, "spatial dropout rate", kr_op1(ctx, KR_OP_SPATIAL_DROPOUT, x4, AT(.f = {1.0})), "rate must be in [0, 1)", NULL);
  gu_end(&c);
}

/* ---- a small convnet: no allocation per run; an allocation-failure sweep ---- */

typedef struct net {
  kr_tensor *t[4];
  kr_node *n[16];
  int nn;
  kr_node *g[3];
  kr_plan *plan;
} net;

static void net_free(net *m)
{
  kr_plan_free(m->plan);
  for (int i = 0; i < 3; i++) kr_node_release(m->g[i]);
  for (int i = m->nn - 1; i >= 0; i--) kr_node_release(m->n[i]);
  for (int i = 0; i < 4; i++) kr_tensor_release(m->t[i]);
  memset(m, 0, sizeof *m);
}

static kr_node *keep(net *m, kr_node *n)
{
  if (n) m->n[m->nn++] = n;
  return n;
}

/* input (B, 8, 8, 2) -> conv 3x3x4 relu same -> max pool 2 -> spatial dropout
** -> conv 3x3x3 -> avg pool -> sum; gradients of w1, b1, w2 */
static int net_build(kr_ctx *ctx, net *m, int64_t batch)
{
  static const float r[8] = {0.3f, -0.2f, 0.5f, 0.1f, -0.4f, 0.25f, -0.15f, 0.35f};
  memset(m, 0, sizeof *m);
  kr_shape ws1 = S(3, 3, 2, 4), bs1 = S(4), ws2 = S(3, 3, 4, 3);
  if (!(m->t[0] = kr_tensor_new(ctx, &ws1)) || !(m->t[1] = kr_tensor_new(ctx, &bs1)) ||
      !(m->t[2] = kr_tensor_new(ctx, &ws2)))
    return kr_errcode(ctx);
  for (int k = 0; k < 3; k++)
    for (int64_t i = 0; i < kr_tensor_numel(m->t[k]); i++) KR_DATA(m->t[k])[i] = r[(i + k) % 8];
  kr_shape xs = S(KR_BATCH, 8, 8, 2);
  kr_node *x = keep(m, kr_node_input(ctx, &xs));
  kr_node *w1 = x ? keep(m, kr_node_variable(ctx, m->t[0])) : NULL;
  kr_node *b1 = w1 ? keep(m, kr_node_variable(ctx, m->t[1])) : NULL;
  kr_node *w2 = b1 ? keep(m, kr_node_variable(ctx, m->t[2])) : NULL;
  if (!w2) return kr_errcode(ctx);
  kr_node *c1 = keep(m, kr_node_op(ctx, KR_OP_CONV2D, 3, (kr_node *[]){x, w1, b1}, AT(.i = {1, 1, 1, 1, 1, 1, 1, 1}, .f = {1})));
  kr_node *p1 = c1 ? keep(m, kr_op1(ctx, KR_OP_MAX_POOL2D, c1, AT(.i = {2, 2, 2, 2}))) : NULL;
  kr_node *d1 = p1 ? keep(m, kr_op1(ctx, KR_OP_SPATIAL_DROPOUT, p1, AT(.f = {0.25}))) : NULL;
  kr_node *c2 = d1 ? keep(m, kr_node_op(ctx, KR_OP_CONV2D, 2, (kr_node *[]){d1, w2}, AT(.i = {1, 1, 1, 1}))) : NULL;
  kr_node *p2 = c2 ? keep(m, kr_op1(ctx, KR_OP_AVG_POOL2D, c2, AT(.i = {2, 2, 1, 1}))) : NULL;
  kr_node *loss = p2 ? keep(m, kr_op1(ctx, KR_OP_SUM, p2, AT(.i = {15, 0}))) : NULL;
  if (!loss) return kr_errcode(ctx);
  kr_node *vars[3] = {w1, b1, w2};
  int st = kr_gradients(ctx, loss, 3, vars, m->g);
  if (st != KR_OK) return st;
  kr_node *outs[4] = {loss, m->g[0], m->g[1], m->g[2]};
  m->plan = kr_plan_new(ctx, 4, outs, 1, &x, batch, 1);
  if (!m->plan) return kr_errcode(ctx);
  float *in = kr_plan_input(m->plan, 0);
  for (int64_t i = 0; i < batch * 128; i++) in[i] = r[i % 8] * (float)(1 + i % 5);
  return KR_OK;
}

static void test_depthwise_errors(kr_ctx *ctx)
{
  gcase c;
  gu_begin(&c, ctx, "depthwise errors", KR_OP_DEPTHWISE_CONV2D);
  kr_node *x = cst_zeros(&c, S(2, 5, 5, 3)), *w = cst_zeros(&c, S(3, 3, 3, 2)), *wbad = cst_zeros(&c, S(3, 3, 4, 2));
  kr_node *w3 = cst_zeros(&c, S(3, 3, 2)), *big = cst_zeros(&c, S(6, 6, 3, 1));
  kr_node *in[2] = {x, wbad};
  expect_fail(ctx, "channels", kr_node_op(ctx, KR_OP_DEPTHWISE_CONV2D, 2, in, AT(.i = {1, 1, 1, 1})),
              "depthwise_conv2d: the depthwise kernel", "expects 4 input channels");
  in[1] = w3;
  expect_fail(ctx, "rank", kr_node_op(ctx, KR_OP_DEPTHWISE_CONV2D, 2, in, AT(.i = {1, 1, 1, 1})),
              "does not fit an input of shape", "expected rank 4");
  in[1] = big;
  expect_fail(ctx, "extent", kr_node_op(ctx, KR_OP_DEPTHWISE_CONV2D, 2, in, AT(.i = {1, 1, 1, 1})),
              "is larger than the padded input", NULL);
  in[1] = w;
  expect_fail(ctx, "stride 0", kr_node_op(ctx, KR_OP_DEPTHWISE_CONV2D, 2, in, AT(.i = {0, 1, 1, 1})),
              "attribute 'stride_h' must be in [1,", NULL);
  expect_fail(ctx, "relu", kr_node_op(ctx, KR_OP_DEPTHWISE_CONV2D, 2, in, AT(.i = {1, 1, 1, 1}, .f = {1})),
              "no fused activation", NULL);
  kr_node *dy = cst_zeros(&c, S(2, 3, 3, 5)), *gi[3] = {dy, w, x};
  expect_fail(ctx, "dy", kr_node_op(ctx, KR_OP_DEPTHWISE_CONV2D_GRAD_INPUT, 3, gi, AT(.i = {1, 1, 1, 1})),
              "the output gradient has shape (2, 3, 3, 5)", "gives (2, 3, 3, 6)");
  gu_end(&c);
}

static void test_no_alloc(kr_ctx *ctx)
{
  for (int threads = 1; threads <= 2; threads++) {
    kr_set_num_threads(ctx, threads);
    net m;
    int st = net_build(ctx, &m, 6);
    CHECK_MSG(st == KR_OK, "net: %s", kr_errmsg(ctx));
    if (st == KR_OK) {
      CHECK(kr_plan_run(m.plan, 6) == KR_OK);
      uint64_t before = kr_mem_allocs(ctx);
      for (int i = 0; i < 3; i++) CHECK(kr_plan_run(m.plan, 6) == KR_OK);
      CHECK(kr_plan_run(m.plan, 5) == KR_OK);    /* a smaller last batch in the same plan */
      CHECK_MSG(kr_mem_allocs(ctx) == before, "%llu allocations in plan runs",
                (unsigned long long)(kr_mem_allocs(ctx) - before));
      CHECK(isfinite(kr_plan_output(m.plan, 0)[0]));
    }
    net_free(&m);
  }
  kr_set_num_threads(ctx, 1);
  CHECK(kr_mem_in_use(ctx) == 0);
}

static void test_alloc_sweep(void)
{
  kr_ctx *ctx = kr_ctx_new();
  kr_set_num_threads(ctx, 1);
  net ref, m;
  CHECK_MSG(net_build(ctx, &ref, 3) == KR_OK, "alloc sweep reference: %s", kr_errmsg(ctx));
  kr_rng_seed(ctx, 7);
  CHECK(kr_plan_run(ref.plan, 3) == KR_OK);
  float want = kr_plan_output(ref.plan, 0)[0];
  net_free(&ref);
  CHECK(kr_mem_in_use(ctx) == 0);
  int failures = 0, bad = 0;
  for (long n = 1; n < 100000; n++) {
    kr_mem_fail_at(ctx, n);
    int st = net_build(ctx, &m, 3);
    kr_mem_fail_at(ctx, 0);
    if (st == KR_OK) {
      kr_rng_seed(ctx, 7);
      CHECK(kr_plan_run(m.plan, 3) == KR_OK);
      CHECK_MSG(kr_plan_output(m.plan, 0)[0] == want, "alloc sweep: the run after %ld allocations differs", n);
      net_free(&m);
      break;
    }
    net_free(&m);
    failures++;
    if (kr_mem_in_use(ctx) != 0 && bad++ < 5)
      fprintf(stderr, "alloc sweep: failing allocation %ld leaks %zu bytes\n", n, kr_mem_in_use(ctx));
    if ((st != KR_EMEM || !has(kr_errmsg(ctx), "out of memory")) && bad++ < 5)
      fprintf(stderr, "alloc sweep: allocation %ld: status %d, message '%s'\n", n, st, kr_errmsg(ctx));
  }
  CHECK_MSG(bad == 0, "alloc sweep: %d problems", bad);
  CHECK_MSG(failures > 20, "alloc sweep: only %d failing runs", failures);
  CHECK(kr_mem_in_use(ctx) == 0);
  kr_ctx_free(ctx);
}

int main(void)
{
  (void)var_k;   /* grad_util.h helpers this file does not need */
  (void)var_data;
  (void)cst_data;
  kr_ctx *ctx = kr_ctx_new();
  if (!ctx) return 1;
  kr_set_num_threads(ctx, 1);
  test_table();
  test_fixtures(ctx, 1);
  test_fixtures(ctx, 2);
  test_threads(ctx);
  test_fd_conv(ctx);
  test_fd_pool(ctx);
  test_pool_ties(ctx);
  test_fd_shape_ops(ctx);
  test_spatial_dropout(ctx);
  test_pool_modes(ctx);
  test_mask_fusion(ctx);
  test_depthwise(ctx);
  /* each depthwise lowering forced (the rule mixes them): the loops, and the
  ** AVX-512 register kernels where they apply (elsewhere the rule runs) */
  kr_conv_force_algo(ctx, KR_CONV_ALGO_LOOPS);
  test_depthwise(ctx);
  kr_conv_force_algo(ctx, KR_CONV_ALGO_DIRECT);
  test_depthwise(ctx);
  kr_conv_force_algo(ctx, KR_CONV_ALGO_RULE);
  test_lowerings(ctx);
  test_autotune(ctx);
  test_coverage();
  test_errors(ctx);
  test_depthwise_errors(ctx);
  test_no_alloc(ctx);
  CHECK_MSG(kr_mem_in_use(ctx) == 0, "%zu bytes still in use", kr_mem_in_use(ctx));
  kr_ctx_free(ctx);
  test_alloc_sweep();
  if (getenv("FD_WORST"))
    for (int i = 0; i < KR_OP_COUNT; i++)
      if (worst_seen[i] > 0) fprintf(stderr, "worst %-24s %.3g\n", kr_op_name(i), worst_seen[i]);
  return check_report("test_conv");
}
