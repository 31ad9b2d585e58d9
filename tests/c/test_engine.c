/*
** test_engine.c -- the plan and the trainer through the C API: a model built
** from graph nodes trains; the batch loop allocates nothing; the last,
** smaller batch runs in the same plan; disconnected graphs and bad data are
** errors with messages; an allocation-failure sweep over compile + fit.
*/
#include <math.h>
#include <string.h>

#include "check.h"
#include "ctx_impl.h"   /* test_failed_plan lowers ctx->max_alloc */
#include "kr.h"
#include "ops.h"

typedef struct model {
  kr_node *x, *t, *w, *W, *b, *logits, *out, *loss;
  kr_tensor *Wt, *bt;
  kr_optim *opt;
  kr_trainer *tr;
} model;

static kr_node *fill_attr_op(kr_ctx *ctx, int op, kr_node *a, kr_node *b, int64_t i0, int64_t i1)
{
  kr_attr at;
  memset(&at, 0, sizeof at);
  at.i[0] = i0;
  at.i[1] = i1;
  return b ? kr_op2(ctx, op, a, b, &at) : kr_op1(ctx, op, a, &at);
}

/* softmax regression: out = softmax(x W + b), loss = mean(-sum(t log out) * w) */
static int build(kr_ctx *ctx, model *m, int64_t in, int64_t classes)
{
  memset(m, 0, sizeof *m);
  kr_shape xs = {2, {KR_BATCH, in}}, ts = {2, {KR_BATCH, classes}}, ws = {1, {KR_BATCH}};
  kr_shape Ws = {2, {in, classes}}, bs = {1, {classes}};
  m->x = kr_node_input(ctx, &xs);
  m->t = kr_node_input(ctx, &ts);
  m->w = kr_node_input(ctx, &ws);
  m->Wt = kr_tensor_zeros(ctx, &Ws);
  m->bt = kr_tensor_zeros(ctx, &bs);
  if (!m->x || !m->t || !m->w || !m->Wt || !m->bt) return KR_EMEM;
  m->W = kr_node_variable(ctx, m->Wt);
  m->b = kr_node_variable(ctx, m->bt);
  if (!m->W || !m->b) return KR_EMEM;
  kr_node *xw = fill_attr_op(ctx, KR_OP_MATMUL, m->x, m->W, 0, 0);
  if (!xw) return kr_errcode(ctx);
  m->logits = kr_op2(ctx, KR_OP_ADD, xw, m->b, NULL);
  kr_node_release(xw);
  if (!m->logits) return kr_errcode(ctx);
  m->out = fill_attr_op(ctx, KR_OP_SOFTMAX, m->logits, NULL, -1, 0);
  kr_node *ls = m->out ? fill_attr_op(ctx, KR_OP_LOG_SOFTMAX, m->logits, NULL, -1, 0) : NULL;
  kr_node *tl = ls ? kr_op2(ctx, KR_OP_MUL, m->t, ls, NULL) : NULL;
  kr_node *s = tl ? fill_attr_op(ctx, KR_OP_SUM, tl, NULL, 2, 0) : NULL;
  kr_node *sw = s ? kr_op2(ctx, KR_OP_MUL, s, m->w, NULL) : NULL;
  kr_node *mn = sw ? fill_attr_op(ctx, KR_OP_MEAN, sw, NULL, 1, 0) : NULL;
  m->loss = mn ? kr_op1(ctx, KR_OP_NEG, mn, NULL) : NULL;
  kr_node_release(ls);
  kr_node_release(tl);
  kr_node_release(s);
  kr_node_release(sw);
  kr_node_release(mn);
  if (!m->loss) return kr_errcode(ctx);
  kr_optim_cfg cfg;
  memset(&cfg, 0, sizeof cfg);
  cfg.kind = KR_SGD;
  cfg.lr = 0.5;
  m->opt = kr_optim_new(ctx, &cfg);
  if (!m->opt) return kr_errcode(ctx);
  kr_node *vars[2] = {m->W, m->b};
  kr_trainer_spec spec = {1, &m->x, 1, &m->t, 1, &m->w, 1, &m->out, 1, &m->loss, 2, vars, m->opt, 0, NULL};
  m->tr = kr_trainer_new(ctx, &spec);
  return m->tr ? KR_OK : kr_errcode(ctx);
}

static void destroy(model *m)
{
  kr_trainer_free(m->tr);
  kr_optim_free(m->opt);
  kr_node *ns[] = {m->x, m->t, m->w, m->W, m->b, m->logits, m->out, m->loss};
  for (size_t i = 0; i < sizeof ns / sizeof *ns; i++) kr_node_release(ns[i]);
  kr_tensor_release(m->Wt);
  kr_tensor_release(m->bt);
}

/* data: class = the larger of the two features */
static void make_data(kr_ctx *ctx, int64_t n, kr_tensor **x, kr_tensor **t, kr_tensor **w)
{
  kr_shape xs = {2, {n, 2}}, ts = {2, {n, 2}}, ws = {1, {n}};
  *x = kr_tensor_new(ctx, &xs);
  *t = kr_tensor_zeros(ctx, &ts);
  *w = kr_tensor_full(ctx, &ws, 1.0f);
  for (int64_t i = 0; i < n; i++) {
    float a = (float)kr_rng_uniform(ctx), b = (float)kr_rng_uniform(ctx);
    KR_DATA(*x)[2 * i] = a;
    KR_DATA(*x)[2 * i + 1] = b;
    KR_DATA(*t)[2 * i + (a > b ? 0 : 1)] = 1.0f;
  }
}

static void test_training(void)
{
  kr_ctx *ctx = kr_ctx_new();
  kr_rng_seed(ctx, 11);
  model m;
  CHECK(build(ctx, &m, 2, 2) == KR_OK);
  kr_tensor *x, *t, *w;
  make_data(ctx, 1000, &x, &t, &w);
  kr_data dx = {1, &x}, dt = {1, &t}, dw = {1, &w};
  int64_t idx[1000];
  for (int i = 0; i < 1000; i++) idx[i] = i;
  double logs[1], first = 0;
  /* epoch 1 builds the plan; later epochs must not allocate, whatever the batch count */
  CHECK(kr_trainer_fit_epoch(m.tr, &dx, &dt, &dw, idx, 1000, 64, NULL, NULL, NULL, 0, logs) == KR_OK);
  first = logs[0];
  uint64_t a0 = kr_mem_allocs(ctx);
  CHECK(kr_trainer_fit_epoch(m.tr, &dx, &dt, &dw, idx, 1000, 64, NULL, NULL, NULL, 0, logs) == KR_OK);
  CHECK(kr_trainer_fit_epoch(m.tr, &dx, &dt, &dw, idx, 1000, 7, NULL, NULL, NULL, 0, logs) == KR_OK);  /* 143 batches, last of 6 */
  CHECK_MSG(kr_mem_allocs(ctx) == a0, "the batch loop allocated %llu times",
            (unsigned long long)(kr_mem_allocs(ctx) - a0));
  for (int e = 0; e < 20; e++) kr_trainer_fit_epoch(m.tr, &dx, &dt, &dw, idx, 1000, 64, NULL, NULL, NULL, 0, logs);
  CHECK_MSG(logs[0] < first * 0.7, "loss %g did not fall from %g", logs[0], first);
  /* evaluate's mean is the sample-weighted mean over batches: the same for any batch size */
  double l1[1], l2[1];
  CHECK(kr_trainer_evaluate(m.tr, &dx, &dt, &dw, 1000, NULL, NULL, l1) == KR_OK);
  CHECK(kr_trainer_evaluate(m.tr, &dx, &dt, &dw, 33, NULL, NULL, l2) == KR_OK);
  CHECK_NEAR(l1[0], l2[0], 1e-5);
  /* predict: probabilities, the last batch smaller; the learned rule holds */
  kr_tensor *p;
  CHECK(kr_trainer_predict(m.tr, &dx, 128, &p) == KR_OK);
  int right = 0;
  for (int i = 0; i < 1000; i++) {
    float p0 = KR_DATA(p)[2 * i], p1 = KR_DATA(p)[2 * i + 1];
    CHECK_NEAR(p0 + p1, 1.0, 1e-5);
    right += (p0 > p1) == (KR_DATA(t)[2 * i] == 1.0f);
  }
  CHECK_MSG(right > 950, "%d of 1000 right", right);
  kr_tensor_release(p);
  /* bad data: errors with messages, no crash */
  kr_shape bad = {2, {10, 3}};
  kr_tensor *xb = kr_tensor_zeros(ctx, &bad);
  kr_data dxb = {1, &xb};
  CHECK(kr_trainer_predict(m.tr, &dxb, 4, &p) == KR_ESHAPE);
  CHECK(strstr(kr_errmsg(ctx), "predict: array 1 has shape (10, 3), expected (None, 2)") != NULL);
  kr_tensor_release(xb);
  int64_t bad_idx[1] = {1000};
  CHECK(kr_trainer_fit_epoch(m.tr, &dx, &dt, &dw, bad_idx, 1, 64, NULL, NULL, NULL, 0, logs) == KR_EARG);
  kr_tensor_release(x);
  kr_tensor_release(t);
  kr_tensor_release(w);
  destroy(&m);
  CHECK_MSG(kr_mem_in_use(ctx) == 0, "%zu bytes leaked", kr_mem_in_use(ctx));
  kr_ctx_free(ctx);
}

/* the before-batch hook: runs before its batch, so a learning rate it sets
** is the one the batch's step uses; nonzero stops before the batch */
typedef struct hook_log {
  kr_optim *opt;
  char order[64];      /* 'b' before a batch, 'e' after it */
  int n;
  int64_t sizes[8];
  double lr_for[8];    /* lr to set before batch i */
  int stop_at;         /* begin returns 1 at this batch (-1: never) */
} hook_log;

static int hook_begin(void *ud, int64_t bi, int64_t size)
{
  hook_log *h = ud;
  if (h->n < 63) h->order[h->n++] = 'b';
  if (bi < 8) {
    h->sizes[bi] = size;
    kr_optim_config(h->opt)->lr = h->lr_for[bi];
  }
  return bi == h->stop_at;
}

static int hook_end(void *ud, int64_t bi, int64_t size, int nlogs, const double *cur, const double *mean)
{
  hook_log *h = ud;
  if (h->n < 63) h->order[h->n++] = 'e';
  return 0;
}

static void test_batch_begin(void)
{
  kr_ctx *ctx = kr_ctx_new();
  kr_rng_seed(ctx, 5);
  model m;
  CHECK(build(ctx, &m, 2, 2) == KR_OK);
  kr_tensor *x, *t, *w;
  make_data(ctx, 10, &x, &t, &w);
  kr_data dx = {1, &x}, dt = {1, &t}, dw = {1, &w};
  int64_t idx[10];
  for (int i = 0; i < 10; i++) idx[i] = i;
  double logs[1];
  /* lr 0 before every batch: nothing moves although the optimizer was made with lr 0.5 */
  hook_log h;
  memset(&h, 0, sizeof h);
  h.opt = m.opt;
  h.stop_at = -1;
  CHECK(kr_trainer_fit_epoch(m.tr, &dx, &dt, &dw, idx, 10, 4, hook_end, hook_begin, &h, 0, logs) == KR_OK);
  CHECK_MSG(strcmp(h.order, "bebebe") == 0, "hooks ran in the order '%s'", h.order);
  CHECK(h.sizes[0] == 4 && h.sizes[1] == 4 && h.sizes[2] == 2);
  for (int i = 0; i < 4; i++) CHECK(KR_DATA(m.Wt)[i] == 0.0f);
  /* lr 0.5 for the first batch only: the weights move by that batch alone,
  ** and a second epoch without the hook (lr stays 0) leaves them there */
  memset(h.order, 0, sizeof h.order);
  h.n = 0;
  h.lr_for[0] = 0.5;
  CHECK(kr_trainer_fit_epoch(m.tr, &dx, &dt, &dw, idx, 10, 4, NULL, hook_begin, &h, 0, logs) == KR_OK);
  CHECK_MSG(strcmp(h.order, "bbb") == 0, "hooks ran in the order '%s'", h.order);
  float after[4];
  memcpy(after, KR_DATA(m.Wt), sizeof after);
  CHECK(after[0] != 0.0f);
  /* softmax regression from zero weights: the first step is -lr * x^T (p - t) * w / n with p = 1/2 */
  double g0 = 0;
  for (int i = 0; i < 4; i++) g0 += KR_DATA(x)[2 * i] * (0.5 - KR_DATA(t)[2 * i]) / 4.0;
  CHECK_NEAR(after[0], -0.5 * g0, 1e-6);
  /* stopping before batch 1: batch 0 ran, batch 1 did not */
  memset(h.order, 0, sizeof h.order);
  h.n = 0;
  h.stop_at = 1;
  h.lr_for[0] = 0;
  CHECK(kr_trainer_fit_epoch(m.tr, &dx, &dt, &dw, idx, 10, 4, hook_end, hook_begin, &h, 0, logs) == KR_ESTOP);
  CHECK_MSG(strcmp(h.order, "beb") == 0, "hooks ran in the order '%s'", h.order);
  /* with the hook the loop still allocates nothing */
  h.stop_at = -1;
  uint64_t a0 = kr_mem_allocs(ctx);
  CHECK(kr_trainer_fit_epoch(m.tr, &dx, &dt, &dw, idx, 10, 4, NULL, hook_begin, &h, 0, logs) == KR_OK);
  CHECK(kr_mem_allocs(ctx) == a0);
  kr_tensor_release(x);
  kr_tensor_release(t);
  kr_tensor_release(w);
  destroy(&m);
  CHECK_MSG(kr_mem_in_use(ctx) == 0, "%zu bytes leaked", kr_mem_in_use(ctx));
  kr_ctx_free(ctx);
}

static void test_disconnected(void)
{
  kr_ctx *ctx = kr_ctx_new();
  kr_shape s = {2, {KR_BATCH, 3}};
  kr_node *a = kr_node_input(ctx, &s), *b = kr_node_input(ctx, &s);
  kr_node *c = kr_op2(ctx, KR_OP_ADD, a, b, NULL);
  kr_plan *p = kr_plan_new(ctx, 1, &c, 1, &a, 8, 0);
  CHECK(p == NULL);
  CHECK(strstr(kr_errmsg(ctx), "graph disconnected") != NULL);
  kr_shape s2 = {2, {KR_BATCH, 4}};
  kr_node *d = kr_node_input(ctx, &s2);
  CHECK(kr_op2(ctx, KR_OP_ADD, a, d, NULL) == NULL);
  CHECK(strstr(kr_errmsg(ctx), "add: cannot broadcast shapes (None, 3) and (None, 4)") != NULL);
  kr_node_release(c);
  kr_node_release(a);
  kr_node_release(b);
  kr_node_release(d);
  CHECK(kr_mem_in_use(ctx) == 0);
  kr_ctx_free(ctx);
}

/* trainers sharing one arena (kr_trainer_share_arena), as one model's
** trainers for several input shapes do: a's fit calls back into the host,
** which runs b with a larger plan (the arena grows and moves); the results
** equal those of twins with arenas of their own, and freeing either is safe */
typedef struct { kr_trainer *other; kr_data *x; int runs; } cb_state;

static int run_other(void *ud, int64_t bi, int64_t bs, int nlogs, const double *cur, const double *mean)
{
  (void)bi; (void)bs; (void)nlogs; (void)cur; (void)mean;
  cb_state *c = ud;
  kr_tensor *p = NULL;
  if (kr_trainer_predict(c->other, c->x, 64 + 16 * c->runs, &p) != KR_OK) return 1;
  kr_tensor_release(p);
  c->runs++;
  return 0;
}

static void test_shared_trainer_arena(void)
{
  kr_ctx *ctx = kr_ctx_new();
  kr_rng_seed(ctx, 5);
  model a, b, a2, b2;
  CHECK(build(ctx, &a, 2, 2) == KR_OK && build(ctx, &a2, 2, 2) == KR_OK);
  CHECK(build(ctx, &b, 2, 2) == KR_OK && build(ctx, &b2, 2, 2) == KR_OK);
  kr_trainer_share_arena(a.tr, b.tr);
  kr_tensor *x, *t, *w;
  make_data(ctx, 300, &x, &t, &w);
  kr_data dx = {1, &x}, dt = {1, &t}, dw = {1, &w};
  int64_t idx[300];
  for (int i = 0; i < 300; i++) idx[i] = i;
  double la[1], la2[1], lb[1], lb2[1];
  cb_state c1 = {b.tr, &dx, 0}, c2 = {b2.tr, &dx, 0};
  for (int e = 0; e < 3; e++) {
    CHECK(kr_trainer_fit_epoch(a.tr, &dx, &dt, &dw, idx, 300, 16, run_other, NULL, &c1, 0, la) == KR_OK);
    CHECK(kr_trainer_fit_epoch(a2.tr, &dx, &dt, &dw, idx, 300, 16, run_other, NULL, &c2, 0, la2) == KR_OK);
    CHECK(kr_trainer_fit_epoch(b.tr, &dx, &dt, &dw, idx, 300, 100, NULL, NULL, NULL, 0, lb) == KR_OK);
    CHECK(kr_trainer_fit_epoch(b2.tr, &dx, &dt, &dw, idx, 300, 100, NULL, NULL, NULL, 0, lb2) == KR_OK);
    CHECK(la[0] == la2[0] && lb[0] == lb2[0]);
  }
  CHECK(c1.runs == 57 && c2.runs == 57);
  CHECK(memcmp(KR_DATA(a.Wt), KR_DATA(a2.Wt), 4 * sizeof(float)) == 0);
  CHECK(memcmp(KR_DATA(b.Wt), KR_DATA(b2.Wt), 4 * sizeof(float)) == 0);
  destroy(&b);   /* the arena lives on with a */
  CHECK(kr_trainer_evaluate(a.tr, &dx, &dt, &dw, 300, NULL, NULL, la) == KR_OK);
  CHECK(kr_trainer_evaluate(a2.tr, &dx, &dt, &dw, 300, NULL, NULL, la2) == KR_OK);
  CHECK(la[0] == la2[0]);
  destroy(&a);
  destroy(&a2);
  destroy(&b2);
  kr_tensor_release(x);
  kr_tensor_release(t);
  kr_tensor_release(w);
  CHECK_MSG(kr_mem_in_use(ctx) == 0, "%zu bytes leaked", kr_mem_in_use(ctx));
  kr_ctx_free(ctx);
}

/* None lengths (KR_NONE past the batch axis): accepted by inputs and by the
** ops made for them, refused by name elsewhere and by every plan */
static void test_none_lengths(void)
{
  kr_ctx *ctx = kr_ctx_new();
  char buf[128];
  kr_shape s = {3, {KR_BATCH, KR_NONE, 4}};
  kr_node *x = kr_node_input(ctx, &s);
  CHECK(x != NULL);
  kr_shape bad = {3, {KR_BATCH, -2, 4}};
  CHECK(kr_node_input(ctx, &bad) == NULL);
  CHECK(strstr(kr_errmsg(ctx), "Input: dimension 2 must be a positive size or None, got -2") != NULL);
  /* elementwise and reductions keep or drop the None axis */
  kr_node *t = kr_op1(ctx, KR_OP_TANH, x, NULL);
  CHECK(t && kr_shape_eq(&t->shape, &s));
  kr_attr ra;
  memset(&ra, 0, sizeof ra);
  ra.i[0] = 2;   /* axis 1 */
  kr_node *m = kr_op1(ctx, KR_OP_MEAN, t, &ra);
  CHECK(m && m->shape.ndim == 2 && m->shape.dim[0] == KR_BATCH && m->shape.dim[1] == 4);
  /* concat on the None axis stays None; on the last axis adds up */
  kr_attr ca;
  memset(&ca, 0, sizeof ca);
  ca.i[0] = 1;
  kr_node *cin[2] = {x, t};
  kr_node *c1 = kr_node_op(ctx, KR_OP_CONCAT, 2, cin, &ca);
  CHECK(c1 && c1->shape.dim[1] == KR_NONE);
  ca.i[0] = -1;
  kr_node *c2 = kr_node_op(ctx, KR_OP_CONCAT, 2, cin, &ca);
  CHECK(c2 && c2->shape.dim[1] == KR_NONE && c2->shape.dim[2] == 8);
  /* broadcasting a (4,) bias over (None, None, 4) */
  kr_shape bs = {1, {4}};
  kr_tensor *bt = kr_tensor_zeros(ctx, &bs);
  kr_node *b = kr_node_const(ctx, bt);
  kr_tensor_release(bt);
  kr_node *sum = kr_op2(ctx, KR_OP_ADD, x, b, NULL);
  CHECK(sum && kr_shape_eq(&sum->shape, &s));
  /* reshape: axes of size 1 may come and go around a None axis, nothing else */
  kr_attr rs;
  memset(&rs, 0, sizeof rs);
  rs.shape = (kr_shape){4, {KR_BATCH, KR_NONE, 4, 1}};
  kr_node *r1 = kr_op1(ctx, KR_OP_RESHAPE, x, &rs);
  CHECK(r1 && kr_shape_eq(&r1->shape, &rs.shape));
  rs.shape = (kr_shape){2, {KR_BATCH, 16}};
  CHECK(kr_op1(ctx, KR_OP_RESHAPE, x, &rs) == NULL);
  CHECK(strstr(kr_errmsg(ctx),
               "reshape: cannot reshape (None, None, 4) to (None, 16): a None (variable-length) axis") != NULL);
  /* slicing the None axis, and ops without a None rule, are refused by name */
  kr_attr sa;
  memset(&sa, 0, sizeof sa);
  sa.i[0] = 1; sa.i[1] = 0; sa.i[2] = 1;
  CHECK(kr_op1(ctx, KR_OP_SLICE, x, &sa) == NULL);
  CHECK(strstr(kr_errmsg(ctx), "cannot slice a None (variable-length) axis") != NULL);
  kr_attr bm;
  memset(&bm, 0, sizeof bm);
  bm.i[1] = 1;
  CHECK(kr_op2(ctx, KR_OP_BATCH_MATMUL, x, x, &bm) == NULL);
  CHECK(strstr(kr_errmsg(ctx),
               "batch_matmul: input 1 has a None (variable-length) axis, shape (None, None, 4)") != NULL);
  /* 1-D padding keeps the None steps axis None */
  kr_attr pa;
  memset(&pa, 0, sizeof pa);
  pa.i[2] = 1; pa.i[3] = 2;
  kr_node *pd = kr_op1(ctx, KR_OP_PAD2D, x, &pa);
  CHECK(pd && kr_shape_eq(&pd->shape, &s));
  kr_node_release(pd);
  /* no plan over a None axis */
  kr_plan *p = kr_plan_new(ctx, 1, &sum, 1, &x, 4, 0);
  CHECK(p == NULL);
  CHECK_MSG(strstr(kr_errmsg(ctx), "has a None (variable-length) axis; a plan needs every length known") != NULL,
            "%s", kr_errmsg(ctx));
  CHECK(strcmp(kr_shape_str(&s, buf, sizeof buf), "(None, None, 4)") == 0);
  CHECK(kr_shape_has_none(&s) && !kr_shape_has_none(&bs));
  kr_node *all[] = {x, t, m, c1, c2, b, sum, r1};
  for (size_t i = 0; i < sizeof all / sizeof *all; i++) kr_node_release(all[i]);
  CHECK_MSG(kr_mem_in_use(ctx) == 0, "%zu bytes leaked", kr_mem_in_use(ctx));
  kr_ctx_free(ctx);
}

/* plans without memory of their own: two bound in turn to one arena give
** what their owning twins give; an unbound plan refuses to run */
static void test_shared_arena(void)
{
  kr_ctx *ctx = kr_ctx_new();
  kr_shape s = {2, {KR_BATCH, 5}};
  kr_node *a = kr_node_input(ctx, &s);
  kr_node *sq = kr_op1(ctx, KR_OP_SQUARE, a, NULL);
  kr_node *th = kr_op1(ctx, KR_OP_TANH, a, NULL);
  kr_node *both = kr_op2(ctx, KR_OP_ADD, sq, th, NULL);
  kr_plan *own1 = kr_plan_new(ctx, 1, &both, 1, &a, 4, 0), *own2 = kr_plan_new(ctx, 1, &th, 1, &a, 7, 0);
  kr_plan *p1 = kr_plan_new_unbound(ctx, 1, &both, 1, &a, 4, 0), *p2 = kr_plan_new_unbound(ctx, 1, &th, 1, &a, 7, 0);
  CHECK(own1 && own2 && p1 && p2);
  if (own1 && own2 && p1 && p2) {
    CHECK(kr_plan_run(p1, 4) == KR_EARG && strstr(kr_errmsg(ctx), "no arena bound") != NULL);
    CHECK(kr_plan_input(p1, 0) == NULL);
    CHECK(kr_plan_live_bytes(own1) > 0 && kr_plan_live_bytes(own1) <= kr_plan_arena_bytes(own1));
    size_t need = kr_plan_arena_bytes(p1) > kr_plan_arena_bytes(p2) ? kr_plan_arena_bytes(p1) : kr_plan_arena_bytes(p2);
    kr_shape as = {1, {(int64_t)(need / sizeof(float) + 16)}};
    kr_tensor *arena = kr_tensor_full(ctx, &as, NAN);   /* garbage left by nobody: NaN everywhere */
    int same = 1;
    for (int round = 0; round < 3; round++) {
      for (int k = 0; k < 2; k++) {
        kr_plan *p = k ? p2 : p1, *o = k ? own2 : own1;
        int64_t b = k ? 7 : 3 + round % 2;
        kr_plan_bind(p, KR_DATA(arena) + (k ? 16 : 0));   /* both share the block, at different offsets */
        float *xi = kr_plan_input(p, 0), *xo = kr_plan_input(o, 0);
        for (int64_t i = 0; i < b * 5; i++) xi[i] = xo[i] = (float)(0.1 * (double)(i + round) - 1.0);
        CHECK(kr_plan_run(p, b) == KR_OK && kr_plan_run(o, b) == KR_OK);
        if (memcmp(kr_plan_output(p, 0), kr_plan_output(o, 0), (size_t)(b * 5) * sizeof(float)) != 0) same = 0;
      }
    }
    CHECK_MSG(same, "plans sharing one arena differ from plans with their own");
    kr_tensor_release(arena);
  }
  kr_plan_free(own1);
  kr_plan_free(own2);
  kr_plan_free(p1);
  kr_plan_free(p2);
  kr_node *ns[] = {a, sq, th, both};
  for (size_t i = 0; i < sizeof ns / sizeof *ns; i++) kr_node_release(ns[i]);
  CHECK_MSG(kr_mem_in_use(ctx) == 0, "%zu bytes leaked", kr_mem_in_use(ctx));
  kr_ctx_free(ctx);
}

/* every allocation in building and training may fail: errors, never crashes or leaks */
static void test_alloc_failures(void)
{
  int ok = 0;
  for (long n = 1; n < 2000 && !ok; n++) {
    kr_ctx *ctx = kr_ctx_new();
    kr_rng_seed(ctx, 1);
    kr_tensor *x = NULL, *t = NULL, *w = NULL;
    make_data(ctx, 100, &x, &t, &w);
    size_t base = kr_mem_in_use(ctx);
    kr_mem_fail_at(ctx, n);
    model m;
    int st = build(ctx, &m, 2, 2);
    if (st == KR_OK) {
      kr_data dx = {1, &x}, dt = {1, &t}, dw = {1, &w};
      int64_t idx[100];
      for (int i = 0; i < 100; i++) idx[i] = i;
      double logs[1];
      st = kr_trainer_fit_epoch(m.tr, &dx, &dt, &dw, idx, 100, 16, NULL, NULL, NULL, 0, logs);
      if (st == KR_OK) ok = 1;
      else CHECK(st == KR_EMEM);
    } else {
      CHECK_MSG(st == KR_EMEM, "n=%ld: status %d (%s)", n, st, kr_errmsg(ctx));
    }
    destroy(&m);
    kr_mem_fail_at(ctx, 0);
    CHECK_MSG(kr_mem_in_use(ctx) == base, "n=%ld: %zu bytes leaked", n, kr_mem_in_use(ctx) - base);
    kr_tensor_release(x);
    kr_tensor_release(t);
    kr_tensor_release(w);
    kr_ctx_free(ctx);
  }
  CHECK(ok);
}

/* A fit whose plan's arena cannot be allocated fails with KR_EMEM and does
** not keep that plan: the next fit, with a small batch, plans for its own
** batch and runs (issue 17 finding 5); evaluate and predict the same. */
static void test_failed_plan(void)
{
  kr_ctx *ctx = kr_ctx_new();
  kr_rng_seed(ctx, 5);
  model m;
  CHECK(build(ctx, &m, 2, 2) == KR_OK);
  enum { N = 100000 };
  kr_tensor *x, *t, *w;
  make_data(ctx, N, &x, &t, &w);
  kr_data dx = {1, &x}, dt = {1, &t}, dw = {1, &w};
  int64_t *idx = kr_malloc(ctx, N * sizeof *idx);
  for (int64_t i = 0; i < N; i++) idx[i] = i;
  double logs[1];
  /* a small fit first: the trainer has a plan, which must survive */
  CHECK(kr_trainer_fit_epoch(m.tr, &dx, &dt, &dw, idx, 256, 16, NULL, NULL, NULL, 0, logs) == KR_OK);
  size_t saved = ctx->max_alloc;
  ctx->max_alloc = (size_t)1 << 20;   /* one allocation of at most 1 MB: batch N needs more */
  for (int round = 0; round < 2; round++) {
    int st = kr_trainer_fit_epoch(m.tr, &dx, &dt, &dw, idx, N, N, NULL, NULL, NULL, 0, logs);
    CHECK_MSG(st == KR_EMEM, "round %d: fit with batch %d: status %d (%s)", round, (int)N, st, kr_errmsg(ctx));
    st = kr_trainer_fit_epoch(m.tr, &dx, &dt, &dw, idx, 256, 16, NULL, NULL, NULL, 0, logs);
    CHECK_MSG(st == KR_OK, "round %d: fit with batch 16 after the failure: %s", round, kr_errmsg(ctx));
    CHECK(isfinite(logs[0]));
    st = kr_trainer_evaluate(m.tr, &dx, &dt, &dw, N, NULL, NULL, logs);
    CHECK_MSG(st == KR_EMEM, "round %d: evaluate with batch %d: status %d", round, (int)N, st);
    kr_shape s16 = {2, {16, 2}};
    kr_tensor *x16 = kr_tensor_zeros(ctx, &s16), *out = NULL;
    kr_data d16 = {1, &x16};
    st = kr_trainer_predict(m.tr, &d16, 16, &out);
    CHECK_MSG(st == KR_OK, "round %d: predict after the failure: %s", round, kr_errmsg(ctx));
    kr_tensor_release(out);
    kr_tensor_release(x16);
  }
  ctx->max_alloc = saved;
  kr_free(ctx, idx);
  destroy(&m);
  kr_tensor_release(x);
  kr_tensor_release(t);
  kr_tensor_release(w);
  CHECK_MSG(kr_mem_in_use(ctx) == 0, "%zu bytes leaked", kr_mem_in_use(ctx));
  kr_ctx_free(ctx);
}

/* a zero axis beside axes whose product alone overflows int64 (a hostile
** model file's shape, found by the bounded fuzz run): no elements, and the
** count says so without overflowing */
static void test_zero_axis_numel(void)
{
  kr_ctx *ctx = kr_ctx_new();
  kr_shape s = {3, {(int64_t)1 << 32, ((int64_t)1 << 37) + 2, 0}};
  kr_tensor *t = kr_tensor_new(ctx, &s);
  CHECK(t != NULL);
  if (t) CHECK(kr_tensor_numel(t) == 0);
  kr_shape s2 = {3, {0, (int64_t)1 << 40, (int64_t)1 << 40}};
  kr_tensor *t2 = kr_tensor_new(ctx, &s2);
  CHECK(t2 != NULL);
  if (t2) CHECK(kr_tensor_numel(t2) == 0);
  kr_tensor_release(t);
  kr_tensor_release(t2);
  CHECK(kr_mem_in_use(ctx) == 0);
  kr_ctx_free(ctx);
}

int main(void)
{
  test_zero_axis_numel();
  test_training();
  test_batch_begin();
  test_disconnected();
  test_none_lengths();
  test_shared_trainer_arena();
  test_shared_arena();
  test_alloc_failures();
  test_failed_plan();
  return check_report("test_engine");
}
