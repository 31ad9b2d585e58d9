/*
** test_backend.c -- the backend family's ops (src/ops_backend.c,
** src/kernels/backend.c): shape, fill, the random draws, cumsum, cumprod,
** select.
**   - the op table rows of opdefs_backend.h;
**   - forward values against double-precision references written here;
**     the random ops against their distributions (mean, spread, range) and
**     drawing anew at every run of a plan, reproducibly after kr_rng_seed;
**   - finite-difference gradient checks of every differentiable op of the
**     family (fd_check.h: central differences with Richardson extrapolation,
**     |analytic - numeric| <= FD_RTOL * max(1, |numeric|)), the
**     cumprod gradient also exactly at zeros, and that the gradient helper
**     cumprod_grad appeared in a checked gradient graph;
**   - shape errors naming the op, and an allocation-failure sweep over
**     graph + gradients + plan + run with no leak.
*/
#include "kr.h"
#include "ops.h"
#include "ops_backend.h"
#include "check.h"
#include "eval_util.h"
#include "grad_util.h"
#include "fd_check.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#define SEED 20261207u

static int covered[KR_OP_COUNT];
static int in_grad[KR_OP_COUNT];

static int has(const char *s, const char *sub) { return strstr(s, sub) != NULL; }

static void test_table(void)
{
  static const struct { int op; const char *name; } rows[] = {
#define KR_OPDEF(e, s) {KR_OP_##e, s},
#include "opdefs_backend.h"
#undef KR_OPDEF
  };
  int n = (int)(sizeof rows / sizeof rows[0]);
  CHECK(n == 13);
  for (int i = 0; i < n; i++) {
    CHECK_MSG(kr_op_lookup(rows[i].name) == rows[i].op, "kr_op_lookup('%s')", rows[i].name);
    CHECK_MSG(strcmp(kr_op_name(rows[i].op), rows[i].name) == 0, "row %d is '%s'", rows[i].op,
              kr_op_name(rows[i].op));
    CHECK(kr_ops[rows[i].op].forward && kr_ops[rows[i].op].shape);
  }
}

/* ---- the finite-difference check (fd_check.h) ---- */

static double worst_seen[KR_OP_COUNT];

static void fd_check(gcase *c, kr_node *out)
{
  covered[c->op] = 1;
  fd_opts o = {.seed = SEED, .seen = in_grad, .helper = -1};
  fd_check_outputs(c, 1, &out, NULL, &o);
  worst_seen[c->op] = fmax(worst_seen[c->op], o.worst);
}

static void fd_done(gcase *c, kr_node *out)
{
  fd_check(c, out);
  gu_end(c);
}

/* ---- gradients ---- */

static void test_grads(kr_ctx *ctx)
{
  gcase c;
  static const struct { int nd; int64_t d[3]; int ax; } cs[] = {
    {1, {5}, 0}, {2, {3, 4}, 1}, {2, {3, 4}, 0}, {3, {2, 3, 4}, 1}, {3, {2, 3, 4}, -1},
  };
  for (size_t k = 0; k < sizeof cs / sizeof cs[0]; k++) {
    kr_shape s = kr_shape_make(cs[k].nd, cs[k].d);
    for (int rev = 0; rev < 2; rev++) {
      gu_begin(&c, ctx, rev ? "cumsum reverse" : "cumsum", KR_OP_CUMSUM);
      fd_done(&c, op1(&c, KR_OP_CUMSUM, var_u(&c, s, -2, 2), AT(.i = {cs[k].ax, rev})));
    }
    /* factors of both signs, away from 0 so the products stay O(1) */
    gu_begin(&c, ctx, "cumprod", KR_OP_CUMPROD);
    static const double kinks[] = {0};
    fd_done(&c, op1(&c, KR_OP_CUMPROD, var_k(&c, s, -1.6, 1.6, 1, kinks), AT(.i = {cs[k].ax})));
  }
  /* sin, cos */
  for (int k = 0; k < 2; k++) {
    gu_begin(&c, ctx, k ? "cos" : "sin", k ? KR_OP_COS : KR_OP_SIN);
    fd_done(&c, op1(&c, k ? KR_OP_COS : KR_OP_SIN, var_u(&c, S(3, 4), -3, 3), NULL));
  }
  /* reverse: one axis, two axes, none */
  static const int64_t masks[] = {1, 2, 5, 6, 0};
  for (size_t k = 0; k < sizeof masks / sizeof masks[0]; k++) {
    gu_begin(&c, ctx, "reverse", KR_OP_REVERSE);
    fd_done(&c, op1(&c, KR_OP_REVERSE, var_u(&c, S(2, 3, 2), -2, 2), AT(.i = {masks[k]})));
  }
  /* select: gradient to both branches; the condition a constant of 0s and 1s */
  {
    static const float cond[12] = {1, 0, 0, 1, 1, 1, 0, 0, 1, 0, 1, 0};
    gu_begin(&c, ctx, "select", KR_OP_SELECT);
    kr_node *in[3] = {cst_data(&c, S(3, 4), cond), var_u(&c, S(3, 4), -2, 2), var_u(&c, S(3, 4), -2, 2)};
    fd_done(&c, opn(&c, KR_OP_SELECT, 3, in, NULL));
  }
  /* cumprod's gradient where the input has zeros: exact, against the
  ** closed form d/dx_k sum_j r_j prod_{m<=j} x_m = sum_{j>=k} r_j prod_{m<=j, m!=k} x_m */
  {
    static const float xs[6] = {1.5f, 0.0f, -2.0f, 0.0f, 0.5f, 3.0f};
    static const float rs[6] = {0.3f, -0.7f, 0.2f, 0.9f, -0.4f, 0.6f};
    gu_begin(&c, ctx, "cumprod at zeros", KR_OP_CUMPROD);
    kr_node *x = var_data(&c, S(6), xs);
    kr_node *y = op1(&c, KR_OP_CUMPROD, x, AT(.i = {0}));
    kr_node *loss = op1(&c, KR_OP_SUM, op2(&c, KR_OP_MUL, y, cst_data(&c, S(6), rs), NULL), AT(.i = {1, 0}));
    kr_node *g = NULL;
    int st = loss ? kr_gradients(ctx, loss, 1, &x, &g) : KR_EARG;
    CHECK_MSG(st == KR_OK, "cumprod at zeros: %s", kr_errmsg(ctx));
    if (st == KR_OK && gu_keep(&c, g)) {
      kr_tensor *t = kr_eval(ctx, g);
      CHECK(t != NULL);
      for (int k = 0; t && k < 6; k++) {
        double want = 0;
        for (int j = k; j < 6; j++) {
          double p = rs[j];
          for (int m = 0; m <= j; m++)
            if (m != k) p *= xs[m];
          want += p;
        }
        CHECK_NEAR(KR_DATA(t)[k], want, 1e-5 * (1 + fabs(want)));
      }
      kr_tensor_release(t);
    }
    gu_end(&c);
  }
}

/* ---- forward values ---- */

static kr_tensor *eval1(kr_ctx *ctx, kr_node *n)
{
  kr_tensor *t = n ? kr_eval(ctx, n) : NULL;
  CHECK_MSG(t != NULL, "eval: %s", kr_errmsg(ctx));
  return t;
}

static void test_forward(kr_ctx *ctx)
{
  gcase c;
  /* cumsum / cumprod on (2, 3, 2) along each axis, both directions */
  {
    float xs[12];
    for (int i = 0; i < 12; i++) xs[i] = (float)(0.5 + 0.25 * ((i * 7) % 11) - 1.0);
    int64_t d[3] = {2, 3, 2};
    for (int ax = 0; ax < 3; ax++)
      for (int kind = 0; kind < 3; kind++) {
        gu_begin(&c, ctx, "cum forward", KR_OP_CUMSUM);
        kr_node *x = cst_data(&c, S(2, 3, 2), xs);
        int op = kind == 2 ? KR_OP_CUMPROD : KR_OP_CUMSUM;
        kr_node *y = op1(&c, op, x, AT(.i = {ax, kind == 1}));
        kr_tensor *t = y ? eval1(ctx, y) : NULL;
        int64_t st[3] = {6, 2, 1};
        for (int64_t i = 0; t && i < 12; i++) {
          int64_t idx[3] = {i / 6, (i / 2) % 3, i % 2};
          double acc = kind == 2 ? 1.0 : 0.0;
          for (int64_t j = 0; j < d[ax]; j++) {
            int in = kind == 1 ? j >= idx[ax] : j <= idx[ax];
            if (!in) continue;
            double v = xs[i + (j - idx[ax]) * st[ax]];
            acc = kind == 2 ? acc * v : acc + v;
          }
          CHECK_MSG(fabs(KR_DATA(t)[i] - acc) <= 1e-6 * (1 + fabs(acc)), "%s axis %d [%lld]: %g, expected %g",
                    kind == 2 ? "cumprod" : kind ? "cumsum reverse" : "cumsum", ax, (long long)i,
                    (double)KR_DATA(t)[i], acc);
        }
        kr_tensor_release(t);
        gu_end(&c);
      }
  }
  /* sin, cos against libm in double */
  {
    float xs[6] = {-2.5f, -1.0f, 0.0f, 0.3f, 1.7f, 3.1f};
    for (int k = 0; k < 2; k++) {
      gu_begin(&c, ctx, "sin/cos forward", k ? KR_OP_COS : KR_OP_SIN);
      kr_tensor *t = eval1(ctx, op1(&c, k ? KR_OP_COS : KR_OP_SIN, cst_data(&c, S(6), xs), NULL));
      for (int i = 0; t && i < 6; i++) CHECK_NEAR(KR_DATA(t)[i], k ? cos(xs[i]) : sin(xs[i]), 1e-6);
      kr_tensor_release(t);
      gu_end(&c);
    }
  }
  /* reverse of (2, 3, 2) on axes 0 and 2 */
  {
    float xs[12];
    for (int i = 0; i < 12; i++) xs[i] = (float)i;
    gu_begin(&c, ctx, "reverse forward", KR_OP_REVERSE);
    kr_tensor *t = eval1(ctx, op1(&c, KR_OP_REVERSE, cst_data(&c, S(2, 3, 2), xs), AT(.i = {5})));
    for (int i = 0; t && i < 12; i++) {
      int a = i / 6, b = (i / 2) % 3, d = i % 2;
      CHECK(KR_DATA(t)[i] == xs[(1 - a) * 6 + b * 2 + (1 - d)]);
    }
    kr_tensor_release(t);
    gu_end(&c);
  }
  /* shape */
  {
    gu_begin(&c, ctx, "shape", KR_OP_SHAPE);
    kr_node *s = op1(&c, KR_OP_SHAPE, cst_zeros(&c, S(2, 3, 5)), NULL);
    kr_tensor *t = s ? eval1(ctx, s) : NULL;
    CHECK(t && t->shape.ndim == 1 && t->shape.dim[0] == 3);
    if (t) CHECK(KR_DATA(t)[0] == 2 && KR_DATA(t)[1] == 3 && KR_DATA(t)[2] == 5);
    kr_tensor_release(t);
    gu_end(&c);
  }
  /* shape of a placeholder with a batch axis, in a plan run with batch 7 */
  {
    kr_node *in = kr_node_input(ctx, &(kr_shape){2, {KR_BATCH, 4}});
    kr_node *s = in ? kr_node_op(ctx, KR_OP_SHAPE, 1, &in, NULL) : NULL;
    kr_plan *p = s ? kr_plan_new(ctx, 1, &s, 1, &in, 8, 0) : NULL;
    CHECK_MSG(p != NULL, "shape plan: %s", kr_errmsg(ctx));
    if (p) {
      CHECK(kr_plan_run(p, 7) == KR_OK);
      CHECK(kr_plan_output(p, 0)[0] == 7 && kr_plan_output(p, 0)[1] == 4);
    }
    kr_plan_free(p);
    kr_node_release(s);
    kr_node_release(in);
  }
  /* fill */
  {
    gu_begin(&c, ctx, "fill", KR_OP_FILL);
    kr_attr a = {.f = {2.5}};
    a.shape = S(2, 3);
    kr_node *f = op1(&c, KR_OP_FILL, cst_zeros(&c, S0), &a);
    kr_tensor *t = f ? eval1(ctx, f) : NULL;
    CHECK(t && kr_tensor_numel(t) == 6);
    for (int i = 0; t && i < 6; i++) CHECK(KR_DATA(t)[i] == 2.5f);
    kr_tensor_release(t);
    gu_end(&c);
  }
}

/* ---- the random ops: distributions, fresh draws, seeding ---- */

static void stats(const float *v, int64_t n, double *mean, double *sd, double *lo, double *hi)
{
  double s = 0, s2 = 0;
  *lo = INFINITY, *hi = -INFINITY;
  for (int64_t i = 0; i < n; i++) {
    s += v[i];
    *lo = fmin(*lo, v[i]);
    *hi = fmax(*hi, v[i]);
  }
  *mean = s / (double)n;
  for (int64_t i = 0; i < n; i++) s2 += (v[i] - *mean) * (v[i] - *mean);
  *sd = sqrt(s2 / (double)n);
}

static void test_random(kr_ctx *ctx)
{
  /* 40000 draws: the sample mean's standard error is sd / 200 */
  enum { N = 40000 };
  /* truncated N(0,1) on [-2, 2]: sd = sqrt(1 - 2 * 2 phi(2) / (2 Phi(2) - 1)) */
  double phi2 = exp(-2.0) / sqrt(2 * M_PI), Z = erf(2 / sqrt(2.0));
  double tsd = sqrt(1 - 4 * phi2 / Z);
  static const struct { int op; double f0, f1; double mean, sd, lo, hi; } rs[] = {
    {KR_OP_RANDOM_NORMAL, 1.5, 2.0, 1.5, 2.0, -INFINITY, INFINITY},
    {KR_OP_RANDOM_UNIFORM, -1.0, 3.0, 1.0, 4.0 / 3.4641016151377544, -1.0, 3.0},
    {KR_OP_RANDOM_BINOMIAL, 0.3, 0, 0.3, 0.458257569495584, 0.0, 1.0},
    {KR_OP_TRUNCATED_NORMAL, -1.0, 0.5, -1.0, 0, -2.0, 0.0},
  };
  for (size_t k = 0; k < sizeof rs / sizeof rs[0]; k++) {
    const char *name = kr_op_name(rs[k].op);
    double want_sd = rs[k].op == KR_OP_TRUNCATED_NORMAL ? 0.5 * tsd : rs[k].sd;
    kr_node *in = kr_node_input(ctx, &(kr_shape){2, {KR_BATCH, 2}});
    kr_attr a = {.f = {rs[k].f0, rs[k].f1}};
    a.shape = (kr_shape){2, {KR_BATCH, N / 4}};
    kr_node *r = in ? kr_node_op(ctx, rs[k].op, 1, &in, &a) : NULL;
    kr_plan *p = r ? kr_plan_new(ctx, 1, &r, 1, &in, 4, 0) : NULL;
    CHECK_MSG(p != NULL, "%s: %s", name, kr_errmsg(ctx));
    if (p) {
      float *first = malloc(N * sizeof *first);
      kr_rng_seed(ctx, SEED);
      CHECK(kr_plan_run(p, 4) == KR_OK);
      const float *v = kr_plan_output(p, 0);
      double m, sd, lo, hi;
      stats(v, N, &m, &sd, &lo, &hi);
      CHECK_MSG(fabs(m - rs[k].mean) <= 5 * want_sd / 200, "%s: mean %g, expected %g", name, m, rs[k].mean);
      CHECK_MSG(fabs(sd - want_sd) <= 0.03 * want_sd, "%s: sd %g, expected %g", name, sd, want_sd);
      CHECK_MSG(lo >= rs[k].lo && hi <= rs[k].hi, "%s: range [%g, %g] outside [%g, %g]", name, lo, hi, rs[k].lo,
                rs[k].hi);
      if (rs[k].op == KR_OP_RANDOM_BINOMIAL) {
        int other = 0;
        for (int i = 0; i < N; i++) other += v[i] != 0.0f && v[i] != 1.0f;
        CHECK_MSG(other == 0, "random_binomial: %d values not 0 or 1", other);
      }
      if (rs[k].op == KR_OP_RANDOM_UNIFORM) CHECK_MSG(hi < 3.0, "random_uniform reached maxval");
      if (first) memcpy(first, v, N * sizeof *first);
      /* the next run draws anew; reseeding repeats the first */
      CHECK(kr_plan_run(p, 4) == KR_OK);
      int same = 0;
      for (int i = 0; first && i < N; i++) same += first[i] == v[i];
      /* two binomial draws agree with probability p^2 + (1-p)^2 = 0.58 */
      int most = rs[k].op == KR_OP_RANDOM_BINOMIAL ? N * 62 / 100 : N / 100;
      CHECK_MSG(same < most, "%s: the second run repeated %d of %d values", name, same, N);
      kr_rng_seed(ctx, SEED);
      CHECK(kr_plan_run(p, 4) == KR_OK);
      same = 0;
      for (int i = 0; first && i < N; i++) same += first[i] == v[i];
      CHECK_MSG(same == N, "%s: after reseeding only %d of %d values repeat", name, same, N);
      /* a smaller batch draws fewer rows */
      CHECK(kr_plan_run(p, 1) == KR_OK);
      CHECK(kr_plan_output_shape(p, 0, 1).dim[0] == 1);
      free(first);
    }
    kr_plan_free(p);
    kr_node_release(r);
    kr_node_release(in);
  }
}

/* ---- gradients with respect to a placeholder the loss does not use ---- */

static void test_unused_placeholder(kr_ctx *ctx)
{
  size_t before = kr_mem_in_use(ctx);
  kr_node *a = kr_node_input(ctx, &(kr_shape){2, {KR_BATCH, 3}});
  kr_node *b = kr_node_input(ctx, &(kr_shape){2, {KR_BATCH, 2}});
  kr_node *sq = a ? kr_node_op(ctx, KR_OP_SQUARE, 1, &a, NULL) : NULL;
  kr_node *loss = sq ? kr_node_op(ctx, KR_OP_SUM, 1, &sq, AT(.i = {3, 0})) : NULL;
  kr_node *vars[2] = {a, b}, *g[2] = {NULL, NULL};
  int st = loss ? kr_gradients(ctx, loss, 2, vars, g) : KR_EARG;
  CHECK_MSG(st == KR_OK, "unused placeholder: %s", kr_errmsg(ctx));
  if (st == KR_OK) {
    CHECK(kr_shape_eq(&g[1]->shape, &b->shape) && g[1]->op == KR_OP_ZEROS_LIKE);
    kr_plan *p = kr_plan_new(ctx, 2, g, 2, vars, 4, 0);
    CHECK_MSG(p != NULL, "plan: %s", kr_errmsg(ctx));
    if (p) {
      for (int i = 0; i < 12; i++) kr_plan_input(p, 0)[i] = (float)i;
      for (int i = 0; i < 8; i++) kr_plan_input(p, 1)[i] = 1.0f;
      CHECK(kr_plan_run(p, 4) == KR_OK);
      for (int i = 0; i < 12; i++) CHECK(kr_plan_output(p, 0)[i] == 2.0f * (float)i);
      for (int i = 0; i < 8; i++) CHECK(kr_plan_output(p, 1)[i] == 0.0f);
    }
    kr_plan_free(p);
  }
  kr_node_release(g[0]);
  kr_node_release(g[1]);
  kr_node_release(loss);
  kr_node_release(sq);
  kr_node_release(a);
  kr_node_release(b);
  CHECK(kr_mem_in_use(ctx) == before);
}

/* ---- errors ---- */

static void test_errors(kr_ctx *ctx)
{
  gcase c;
  gu_begin(&c, ctx, "errors", KR_OP_SELECT);
  kr_node *x = cst_zeros(&c, S(3, 4));
  kr_node *in[3] = {x, x, cst_zeros(&c, S(4))};
  CHECK(kr_node_op(ctx, KR_OP_SELECT, 3, in, NULL) == NULL);
  CHECK_MSG(has(kr_errmsg(ctx), "select: the condition has shape (3, 4) but branch 2 has (4,)"), "'%s'",
            kr_errmsg(ctx));
  CHECK(kr_node_op(ctx, KR_OP_CUMSUM, 1, &x, AT(.i = {2})) == NULL);
  CHECK_MSG(has(kr_errmsg(ctx), "cumsum: axis 2 out of range for shape (3, 4)"), "'%s'", kr_errmsg(ctx));
  kr_attr a = {.f = {2.0, 1.0}};
  a.shape = S(2);
  CHECK(kr_node_op(ctx, KR_OP_RANDOM_UNIFORM, 1, &x, &a) == NULL);
  CHECK_MSG(has(kr_errmsg(ctx), "random_uniform: minval 2 is above maxval 1"), "'%s'", kr_errmsg(ctx));
  a = (kr_attr){.f = {1.5}};
  a.shape = S(2);
  CHECK(kr_node_op(ctx, KR_OP_RANDOM_BINOMIAL, 1, &x, &a) == NULL);
  CHECK_MSG(has(kr_errmsg(ctx), "random_binomial: p must be in [0, 1], got 1.5"), "'%s'", kr_errmsg(ctx));
  a = (kr_attr){.f = {0, -1}};
  a.shape = S(2);
  CHECK(kr_node_op(ctx, KR_OP_RANDOM_NORMAL, 1, &x, &a) == NULL);
  CHECK_MSG(has(kr_errmsg(ctx), "random_normal: stddev must be >= 0, got -1"), "'%s'", kr_errmsg(ctx));
  a = (kr_attr){.f = {0}};
  a.shape = (kr_shape){2, {3, -1}};
  CHECK(kr_node_op(ctx, KR_OP_FILL, 1, &x, &a) == NULL);
  CHECK_MSG(has(kr_errmsg(ctx), "fill: bad shape"), "'%s'", kr_errmsg(ctx));
  kr_node *b = kr_node_input(ctx, &(kr_shape){2, {KR_BATCH, 4}});
  CHECK(b && kr_node_op(ctx, KR_OP_CUMPROD, 1, &b, AT(.i = {0})) == NULL);
  CHECK_MSG(has(kr_errmsg(ctx), "cumprod: cannot run along the batch axis"), "'%s'", kr_errmsg(ctx));
  kr_node_release(b);
  gu_end(&c);
}

/* ---- allocation failures: graph + gradients + plan + run, no leak ---- */

typedef struct { float y[6], g[6]; } sweep_out;

/* y = select(c, cumprod(x), cumsum(reverse(x))) + sin(x) * random_uniform;
** d sum(y) / d x */
static int sweep_once(kr_ctx *ctx, sweep_out *out)
{
  static const float xd[6] = {0.5f, -1.2f, 0.8f, 1.5f, -0.3f, 0.9f}, cd[6] = {1, 0, 1, 0, 0, 1};
  kr_tensor *tx = NULL, *tc = NULL;
  kr_node *x = NULL, *c = NULL, *cp = NULL, *rv = NULL, *cs = NULL, *sel = NULL, *sn = NULL, *ru = NULL;
  kr_node *m = NULL, *y = NULL, *loss = NULL, *g = NULL;
  kr_plan *plan = NULL;
  int st = KR_EMEM;
  kr_attr ra = {.f = {0.5, 1.5}};
  ra.shape = S(2, 3);
  if (!(tx = gu_t_data(ctx, S(2, 3), xd)) || !(tc = gu_t_data(ctx, S(2, 3), cd))) goto done;
  if (!(x = kr_node_variable(ctx, tx)) || !(c = kr_node_const(ctx, tc))) goto done;
  if (!(cp = kr_op1(ctx, KR_OP_CUMPROD, x, AT(.i = {1}))) || !(rv = kr_op1(ctx, KR_OP_REVERSE, x, AT(.i = {2}))) ||
      !(cs = kr_op1(ctx, KR_OP_CUMSUM, rv, AT(.i = {1, 1}))))
    goto done;
  kr_node *in3[3] = {c, cp, cs};
  if (!(sel = kr_node_op(ctx, KR_OP_SELECT, 3, in3, NULL)) || !(sn = kr_op1(ctx, KR_OP_SIN, x, NULL)) ||
      !(ru = kr_op1(ctx, KR_OP_RANDOM_UNIFORM, x, &ra)) || !(m = kr_op2(ctx, KR_OP_MUL, sn, ru, NULL)) ||
      !(y = kr_op2(ctx, KR_OP_ADD, sel, m, NULL)) || !(loss = kr_op1(ctx, KR_OP_SUM, y, AT(.i = {3, 0}))))
    goto done;
  if ((st = kr_gradients(ctx, loss, 1, &x, &g)) != KR_OK) goto done;
  kr_node *outs[2] = {y, g};
  st = KR_EMEM;
  if (!(plan = kr_plan_new(ctx, 2, outs, 0, NULL, 1, 0))) goto done;
  kr_rng_seed(ctx, SEED);
  if ((st = kr_plan_run(plan, 1)) != KR_OK) goto done;
  memcpy(out->y, kr_plan_output(plan, 0), sizeof out->y);
  memcpy(out->g, kr_plan_output(plan, 1), sizeof out->g);
  st = KR_OK;
done:
  kr_plan_free(plan);
  kr_node *all[] = {g, loss, y, m, ru, sn, sel, cs, rv, cp, c, x};
  for (size_t i = 0; i < sizeof all / sizeof all[0]; i++) kr_node_release(all[i]);
  kr_tensor_release(tx);
  kr_tensor_release(tc);
  return st;
}

static void test_alloc_sweep(void)
{
  kr_ctx *ctx = kr_ctx_new();
  sweep_out want, got;
  CHECK_MSG(sweep_once(ctx, &want) == KR_OK, "alloc sweep reference: %s", kr_errmsg(ctx));
  CHECK(kr_mem_in_use(ctx) == 0);
  long n;
  int failures = 0, bad = 0;
  for (n = 1; n < 100000; n++) {
    kr_mem_fail_at(ctx, n);
    int st = sweep_once(ctx, &got);
    kr_mem_fail_at(ctx, 0);
    if (kr_mem_in_use(ctx) != 0 && bad++ < 5)
      fprintf(stderr, "alloc sweep: failing allocation %ld leaks %zu bytes\n", n, kr_mem_in_use(ctx));
    if (st == KR_OK) break;
    failures++;
    if ((st != KR_EMEM || !has(kr_errmsg(ctx), "out of memory")) && bad++ < 5)
      fprintf(stderr, "alloc sweep: allocation %ld: status %d, message '%s'\n", n, st, kr_errmsg(ctx));
  }
  CHECK_MSG(bad == 0, "alloc sweep: %d problems", bad);
  CHECK_MSG(failures > 20, "alloc sweep: only %d failing runs", failures);
  CHECK(kr_mem_in_use(ctx) == 0);
  CHECK_MSG(memcmp(&got, &want, sizeof got) == 0, "alloc sweep: the run after %ld allocations differs", n);
  kr_ctx_free(ctx);
}

static void test_coverage(void)
{
  static const int ops[] = {
#define KR_OPDEF(e, s) KR_OP_##e,
#include "opdefs_backend.h"
#undef KR_OPDEF
  };
  for (size_t i = 0; i < sizeof ops / sizeof ops[0]; i++) {
    int op = ops[i];
    if (kr_ops[op].grad) CHECK_MSG(covered[op], "no finite-difference check for op '%s'", kr_op_name(op));
    else if (!(kr_ops[op].flags & KR_F_NOGRAD))
      CHECK_MSG(in_grad[op], "gradient helper '%s' appeared in no checked gradient", kr_op_name(op));
  }
}

int main(void)
{
  kr_ctx *ctx = kr_ctx_new();
  if (!ctx) return 1;
  (void)var_grid;
  test_table();
  test_grads(ctx);
  test_forward(ctx);
  test_random(ctx);
  test_unused_placeholder(ctx);
  test_errors(ctx);
  test_coverage();
  CHECK_MSG(kr_mem_in_use(ctx) == 0, "%zu bytes still in use", kr_mem_in_use(ctx));
  kr_ctx_free(ctx);
  test_alloc_sweep();
  if (getenv("FD_WORST"))
    for (int i = 0; i < KR_OP_COUNT; i++)
      if (worst_seen[i] > 0) fprintf(stderr, "worst %-24s %.3g\n", kr_op_name(i), worst_seen[i]);
  return check_report("test_backend");
}
