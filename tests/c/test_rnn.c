/*
** test_rnn.c -- the recurrent ops (src/ops_rnn.c, src/kernels/rnn.c):
**   - forward sequences and final states against references from PyTorch
**     (sigmoid gates) and from a float64 numpy transcription of Keras 2.2.4
**     (hard_sigmoid, GRU reset_after=False, masks, go_backwards), generated
**     by scripts/fixtures/rnn_fixtures.py into tests/fixtures/rnn_fixtures.h;
**   - gradients of all weights, inputs and initial states against PyTorch's
**     autograd, through the output sequence and the final states at once;
**   - finite-difference checks of rnn and rnn_state (so of rnn_grad and
**     rnn_grad_part, which their gradient rules build) for every cell, with
**     masks, go_backwards, last output or full sequence, initial states,
**     hard_sigmoid, every activation code, and dropout / recurrent dropout in
**     a training plan (the generator reseeded before each run);
**   - stateful write-back (two half sequences equal one whole), the error on
**     a batch of another size, a plan's smaller last batch, shape-rule
**     errors, and an allocation-failure sweep without leaks.
** Finite differences: fd_check.h, as in test_grad.c (Richardson-extrapolated
** central differences, |analytic - numeric| <= FD_RTOL * max(1, |numeric|)).
*/
#include "kr.h"
#include "ops.h"
#include "ops_rnn.h"
#include "check.h"
#include "eval_util.h"
#include "grad_util.h"
#include "fd_check.h"
#include "../fixtures/rnn_fixtures.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#define SEED 777u

/* Against the float64 references (PyTorch, numpy): the fixture inputs are
** float32 values, so what differs is the engine's float32 arithmetic, each
** operation off by at most u = 2^-24 ~ 6e-8 relative. A forward value goes
** through RF_T = 5 steps of a dot product over F + U = 10 terms plus about
** 8 elementwise gate operations: at most ~5 * 18 = 90 roundings, 5.4e-6 in
** the worst case. A gradient also runs the T steps backwards through the
** (U, G * U = 24) products and sums over the B = 3 rows: ~5 * (24 + 3 + 8) =
** 175 roundings, 1e-5. Measured: at most 1.5e-7 forward, 2.9e-7 gradients
** (relative to 1 + |reference|), so both bounds hold with a margin, while a
** 1e-4 slip of a gate or a bias would be caught. */
#define RF_FWD_TOL 6e-6
#define RF_GRAD_TOL 1e-5

static int seen_op[KR_OP_COUNT];

/* ---- building ---- */

typedef struct rin { kr_node *x, *W, *U, *b, *h0, *c0, *mask; } rin;

static kr_attr rnn_attr(int cell, int64_t u, unsigned flags, int act, int ract, double drop, double rdrop)
{
  kr_attr a;
  memset(&a, 0, sizeof a);
  a.i[0] = cell;
  a.i[1] = u;
  a.i[2] = flags;
  a.i[3] = act;
  a.i[4] = ract;
  a.f[0] = drop;
  a.f[1] = rdrop;
  return a;
}

static kr_node *mk_rnn(gcase *c, const kr_attr *at, const rin *in)
{
  kr_node *v[8];
  int n = 0;
  kr_attr a = *at;
  v[n++] = in->x;
  v[n++] = in->W;
  v[n++] = in->U;
  v[n++] = in->b;
  if (in->h0) {
    a.i[2] |= KR_RNNF_INIT;
    v[n++] = in->h0;
    if (a.i[0] == KR_RNN_LSTM) v[n++] = in->c0;
  }
  if (in->mask) {
    a.i[2] |= KR_RNNF_MASK;
    v[n++] = in->mask;
  }
  for (int i = 0; i < n; i++)
    if (!v[i]) return gu_keep(c, NULL);
  return opn(c, KR_OP_RNN, n, v, &a);
}

static kr_node *mk_state(gcase *c, kr_node *rnn, int which)
{
  if (!rnn) return NULL;
  kr_node *v[9];
  v[0] = rnn;
  for (int i = 0; i < rnn->nin; i++) v[1 + i] = rnn->in[i];
  kr_attr a = rnn->attr;
  a.i[5] = which;
  return opn(c, KR_OP_RNN_STATE, rnn->nin + 1, v, &a);
}

static int gates(int cell) { return cell == KR_RNN_LSTM ? 4 : cell == KR_RNN_SIMPLE ? 1 : 3; }

static kr_shape bias_shape(int cell, int64_t u)
{
  return cell == KR_RNN_GRU_RA ? S(2, 3 * u) : S(gates(cell) * u);
}

/* loss = sum_k sum(out_k * R_k) */
static kr_node *weighted_loss(gcase *c, int n, kr_node *const *outs, kr_node *const *R)
{
  kr_node *loss = NULL;
  for (int k = 0; k < n; k++) {
    if (!outs[k]) return gu_keep(c, NULL);
    kr_node *r = R && R[k] ? R[k] : cst_u(c, outs[k]->shape, -1, 1);
    kr_node *p = op2(c, KR_OP_MUL, outs[k], r, NULL);
    kr_node *s = p ? op1(c, KR_OP_SUM, p, AT(.i = {(1 << outs[k]->shape.ndim) - 1, 0})) : NULL;
    loss = loss && s ? op2(c, KR_OP_ADD, loss, s, NULL) : s;
    if (!loss) return NULL;
  }
  return loss;
}

/* ---- evaluation: inference through kr_eval, training through a plan (reseeded) ---- */

static int eval_all(kr_ctx *ctx, int n, kr_node *const *nodes, int training, kr_tensor **out)
{
  return kt_eval_nodes(ctx, n, nodes, training, SEED, out);
}

/* ---- the finite-difference check (fd_check.h) of loss = sum_k sum(outs[k] * R_k) ---- */

static double fd_worst;

static void fd_check(gcase *c, int n, kr_node *const *outs, int training)
{
  fd_opts o = {.training = training, .seed = SEED, .seen = seen_op, .mark_loss = 1, .helper = -1};
  fd_check_outputs(c, n, outs, NULL, &o);
  fd_worst = fmax(fd_worst, o.worst);
}

/* ---- fixtures: forward against torch / numpy ---- */

static int close_to(double got, double want, double tol) { return isfinite(got) && fabs(got - want) <= tol * (1.0 + fabs(want)); }

static void compare(const char *name, const char *what, const kr_tensor *t, const double *want, int64_t n, double tol)
{
  int bad = 0;
  if (!t) {
    CHECK_MSG(0, "%s: %s not computed", name, what);
    return;
  }
  CHECK_MSG(kr_tensor_numel(t) == n, "%s: %s has %lld values, expected %lld", name, what,
            (long long)kr_tensor_numel(t), (long long)n);
  for (int64_t i = 0; i < n && i < kr_tensor_numel(t); i++)
    if (!close_to(KR_DATA(t)[i], want[i], tol)) {
      if (bad++ < 3) fprintf(stderr, "%s: %s[%lld] = %.9g, want %.9g\n", name, what, (long long)i, (double)KR_DATA(t)[i], want[i]);
    }
  CHECK_MSG(bad == 0, "%s: %s: %d values off", name, what, bad);
}

static void fixture_inputs(gcase *c, const rf_case *f, rin *in, int vars)
{
  int G = gates(f->cell);
  kr_node *(*leaf)(gcase *, kr_shape, const float *) = vars ? var_data : cst_data;
  in->x = leaf(c, S(RF_B, RF_T, RF_F), f->x);
  in->W = leaf(c, S(RF_F, G * RF_U), f->W);
  in->U = leaf(c, S(RF_U, G * RF_U), f->U);
  in->b = leaf(c, bias_shape(f->cell, RF_U), f->b);
  in->h0 = leaf(c, S(RF_B, RF_U), f->h0);
  in->c0 = f->c0 ? leaf(c, S(RF_B, RF_U), f->c0) : NULL;
  in->mask = f->mask ? cst_data(c, S(RF_B, RF_T), f->mask) : NULL;
}

static void test_fixtures(kr_ctx *ctx)
{
  for (int k = 0; k < RF_NCASES; k++) {
    const rf_case *f = &rf_cases[k];
    gcase c;
    gu_begin(&c, ctx, f->name, KR_OP_RNN);
    rin in;
    fixture_inputs(&c, f, &in, 0);
    int ract = f->hard ? KR_RACT_HARD_SIGMOID : KR_RACT_SIGMOID;
    unsigned back = f->backwards ? KR_RNNF_BACKWARDS : 0;
    kr_attr seq = rnn_attr(f->cell, RF_U, KR_RNNF_RETSEQ | back, KR_RACT_TANH, ract, 0, 0);
    kr_attr ord = rnn_attr(f->cell, RF_U, KR_RNNF_RETSEQ | KR_RNNF_INPUT_ORDER | back, KR_RACT_TANH, ract, 0, 0);
    kr_attr last = rnn_attr(f->cell, RF_U, back, KR_RACT_TANH, ract, 0, 0);
    kr_node *ys = mk_rnn(&c, &seq, &in), *yo = mk_rnn(&c, &ord, &in), *yl = mk_rnn(&c, &last, &in);
    kr_node *h = mk_state(&c, ys, 0), *cc = f->cell == KR_RNN_LSTM ? mk_state(&c, yl, 1) : NULL;
    if (c.broken) {
      CHECK_MSG(0, "%s: building: %s", f->name, kr_errmsg(ctx));
      gu_end(&c);
      continue;
    }
    kr_tensor *t[5] = {0};
    kr_node *nodes[5] = {ys, yo, yl, h, cc};
    int n = cc ? 5 : 4;
    int st = eval_all(ctx, n, nodes, 0, t);
    CHECK_MSG(st == KR_OK, "%s: %s", f->name, kr_errmsg(ctx));
    if (st == KR_OK) {
      double tol = RF_FWD_TOL;
      compare(f->name, "sequence", t[0], f->y, RF_B * RF_T * RF_U, tol);
      /* input order: position t holds the step that read input t */
      double *yin = malloc(sizeof(double) * RF_B * RF_T * RF_U);
      for (int b = 0; b < RF_B; b++)
        for (int s = 0; s < RF_T; s++) {
          int ti = f->backwards ? RF_T - 1 - s : s;
          memcpy(yin + (b * RF_T + ti) * RF_U, f->y + (b * RF_T + s) * RF_U, sizeof(double) * RF_U);
        }
      compare(f->name, "sequence in input order", t[1], yin, RF_B * RF_T * RF_U, tol);
      free(yin);
      compare(f->name, "last output", t[2], f->last, RF_B * RF_U, tol);
      compare(f->name, "final h", t[3], f->h, RF_B * RF_U, tol);
      if (cc) compare(f->name, "final c", t[4], f->c, RF_B * RF_U, tol);
    }
    for (int i = 0; i < n; i++) kr_tensor_release(t[i]);
    gu_end(&c);
  }
}

/* gradients through the sequence and the final states against torch autograd */
static void test_torch_grads(kr_ctx *ctx)
{
  for (int k = 0; k < RF_NCASES; k++) {
    const rf_case *f = &rf_cases[k];
    if (!f->has_grads) continue;
    char name[64];
    snprintf(name, sizeof name, "%s gradients", f->name);
    gcase c;
    gu_begin(&c, ctx, name, KR_OP_RNN);
    rin in;
    fixture_inputs(&c, f, &in, 1);
    kr_attr seq = rnn_attr(f->cell, RF_U, KR_RNNF_RETSEQ, KR_RACT_TANH, KR_RACT_SIGMOID, 0, 0);
    kr_node *y = mk_rnn(&c, &seq, &in);
    kr_node *outs[3] = {y, mk_state(&c, y, 0), f->cell == KR_RNN_LSTM ? mk_state(&c, y, 1) : NULL};
    kr_node *R[3] = {cst_data(&c, S(RF_B, RF_T, RF_U), f->R), cst_data(&c, S(RF_B, RF_U), f->Rh),
                     cst_data(&c, S(RF_B, RF_U), f->Rc)};
    kr_node *loss = weighted_loss(&c, outs[2] ? 3 : 2, outs, R);
    kr_node *g[GU_MAXVAR] = {0};
    int st = loss ? kr_gradients(ctx, loss, c.nvar, c.var, g) : KR_EARG;
    CHECK_MSG(st == KR_OK, "%s: %s", name, kr_errmsg(ctx));
    if (st == KR_OK) {
      for (int v = 0; v < c.nvar; v++) gu_keep(&c, g[v]);
      kr_tensor *t[GU_MAXVAR] = {0};
      st = eval_all(ctx, c.nvar, g, 0, t);
      CHECK_MSG(st == KR_OK, "%s: %s", name, kr_errmsg(ctx));
      const double *want[6] = {f->dx, f->dW, f->dU, f->db, f->dh0, f->dc0};
      const char *what[6] = {"dx", "dW", "dU", "db", "dh0", "dc0"};
      for (int v = 0; st == KR_OK && v < c.nvar; v++) {
        compare(name, what[v], t[v], want[v], kr_tensor_numel(c.var[v]->value), RF_GRAD_TOL);
        kr_tensor_release(t[v]);
      }
    }
    gu_end(&c);
  }
}

/* ---- finite differences ---- */

typedef struct fdspec {
  const char *name;
  int cell, act, ract;
  unsigned flags;        /* RETSEQ, BACKWARDS, INPUT_ORDER */
  int init, mask, states, training;
  double drop, rdrop, wscale;
} fdspec;

static void fd_case(kr_ctx *ctx, const fdspec *s)
{
  int64_t B = 2, T = 4, F = 3, u = 3, G = gates(s->cell);
  gcase c;
  gu_begin(&c, ctx, s->name, KR_OP_RNN);
  double w = s->wscale;
  rin in;
  memset(&in, 0, sizeof in);
  in.x = var_u(&c, S(B, T, F), -1, 1);
  in.W = var_u(&c, S(F, G * u), -w, w);
  in.U = var_u(&c, S(u, G * u), -w, w);
  in.b = var_u(&c, bias_shape(s->cell, u), -w, w);
  if (s->init) {
    in.h0 = var_u(&c, S(B, u), -0.5, 0.5);
    if (s->cell == KR_RNN_LSTM) in.c0 = var_u(&c, S(B, u), -0.5, 0.5);
  }
  if (s->mask) {
    static const float m[8] = {1, 0, 1, 1, 0, 0, 1, 0};   /* a masked step; a sequence masked at the start */
    in.mask = cst_data(&c, S(B, T), m);
  }
  kr_attr a = rnn_attr(s->cell, u, s->flags, s->act, s->ract, s->drop, s->rdrop);
  kr_node *y = mk_rnn(&c, &a, &in);
  kr_node *outs[3] = {y, NULL, NULL};
  int n = 1;
  if (s->states) {
    outs[n++] = mk_state(&c, y, 0);
    if (s->cell == KR_RNN_LSTM) outs[n++] = mk_state(&c, y, 1);
  }
  fd_check(&c, n, outs, s->training);
  gu_end(&c);
}

static void test_fd(kr_ctx *ctx)
{
  const int SIG = KR_RACT_SIGMOID, HS = KR_RACT_HARD_SIGMOID, TH = KR_RACT_TANH;
  const unsigned RS = KR_RNNF_RETSEQ, BK = KR_RNNF_BACKWARDS, IO = KR_RNNF_INPUT_ORDER;
  static const char *const names[] = {"SimpleRNN", "LSTM", "GRU", "GRU reset_after"};
  for (int cell = 0; cell < 4; cell++) {
    char nm[8][96];
    fdspec sp[8] = {
      {nm[0], cell, TH, SIG, RS, 0, 0, 0, 0, 0, 0, 0.8},
      {nm[1], cell, TH, SIG, 0, 1, 0, 1, 0, 0, 0, 0.8},
      {nm[2], cell, TH, SIG, RS | BK, 1, 1, 1, 0, 0, 0, 0.8},
      {nm[3], cell, TH, SIG, BK, 0, 1, 0, 0, 0, 0, 0.8},
      {nm[4], cell, TH, SIG, RS | BK | IO, 1, 1, 0, 0, 0, 0, 0.8},
      {nm[5], cell, TH, HS, RS, 1, 0, 1, 0, 0, 0, 0.2},
      {nm[6], cell, TH, SIG, RS, 1, 1, 1, 1, 0.3, 0.4, 0.8},
      {nm[7], cell, TH, SIG, 0, 0, 0, 0, 1, 0.5, 0, 0.8},
    };
    snprintf(nm[0], 96, "fd %s sequence", names[cell]);
    snprintf(nm[1], 96, "fd %s last output + states from h0", names[cell]);
    snprintf(nm[2], 96, "fd %s backwards, masked, sequence + states", names[cell]);
    snprintf(nm[3], 96, "fd %s backwards, masked, last output", names[cell]);
    snprintf(nm[4], 96, "fd %s backwards, input order, masked", names[cell]);
    snprintf(nm[5], 96, "fd %s hard_sigmoid", names[cell]);
    snprintf(nm[6], 96, "fd %s dropout + recurrent dropout, masked (training)", names[cell]);
    snprintf(nm[7], 96, "fd %s input dropout only (training)", names[cell]);
    for (int k = 0; k < 8; k++) fd_case(ctx, &sp[k]);
  }
  /* the final state alone: only rnn_state's gradient rule runs */
  for (int cell = 0; cell < 4; cell++) {
    char nm[96];
    snprintf(nm, sizeof nm, "fd %s final states only", names[cell]);
    int64_t B = 2, T = 3, F = 2, u = 3, G = gates(cell);
    gcase c;
    gu_begin(&c, ctx, nm, KR_OP_RNN_STATE);
    rin in = {var_u(&c, S(B, T, F), -1, 1), var_u(&c, S(F, G * u), -0.8, 0.8), var_u(&c, S(u, G * u), -0.8, 0.8),
              var_u(&c, bias_shape(cell, u), -0.5, 0.5), var_u(&c, S(B, u), -0.5, 0.5), NULL, NULL};
    if (cell == KR_RNN_LSTM) in.c0 = var_u(&c, S(B, u), -0.5, 0.5);
    kr_attr a = rnn_attr(cell, u, KR_RNNF_RETSEQ, TH, SIG, 0, 0);
    kr_node *y = mk_rnn(&c, &a, &in);
    kr_node *outs[2] = {mk_state(&c, y, 0), cell == KR_RNN_LSTM ? mk_state(&c, y, 1) : NULL};
    fd_check(&c, outs[1] ? 2 : 1, outs, 0);
    gu_end(&c);
  }
}

/* every activation code: forward against double formulas (T = 1, U = 0, W = I), and FD */
static void test_activations(kr_ctx *ctx)
{
  static const char *const names[] = {"linear", "tanh", "sigmoid", "hard_sigmoid", "relu", "elu", "softsign",
                                      "softplus", "selu", "exponential"};
  for (int act = 0; act < KR_RACT_COUNT; act++) {
    gcase c;
    char nm[64];
    snprintf(nm, sizeof nm, "activation %s", names[act]);
    gu_begin(&c, ctx, nm, KR_OP_RNN);
    static const float xv[6] = {-2.0f, -0.7f, -0.1f, 0.2f, 0.9f, 3.0f};
    static const float I2[4] = {1, 0, 0, 1};
    static const float z4[4] = {0, 0, 0, 0};
    rin in = {cst_data(&c, S(3, 1, 2), xv), cst_data(&c, S(2, 2), I2), cst_data(&c, S(2, 2), z4),
              cst_data(&c, S(2), z4), NULL, NULL, NULL};
    kr_attr a = rnn_attr(KR_RNN_SIMPLE, 2, KR_RNNF_RETSEQ, act, KR_RACT_SIGMOID, 0, 0);
    kr_node *y = mk_rnn(&c, &a, &in);
    kr_tensor *t = y ? kr_eval(ctx, y) : NULL;
    CHECK_MSG(t != NULL, "%s: %s", nm, kr_errmsg(ctx));
    for (int i = 0; t && i < 6; i++) {
      double v = xv[i], want;
      switch (act) {
      case KR_RACT_LINEAR: want = v; break;
      case KR_RACT_TANH: want = tanh(v); break;
      case KR_RACT_SIGMOID: want = 1 / (1 + exp(-v)); break;
      case KR_RACT_HARD_SIGMOID: want = fmin(1, fmax(0, 0.2 * v + 0.5)); break;
      case KR_RACT_RELU: want = v > 0 ? v : 0; break;
      case KR_RACT_ELU: want = v > 0 ? v : expm1(v); break;
      case KR_RACT_SOFTSIGN: want = v / (1 + fabs(v)); break;
      case KR_RACT_SOFTPLUS: want = log1p(exp(v)); break;
      case KR_RACT_SELU: want = 1.0507009873554804934 * (v > 0 ? v : 1.6732632423543772848 * expm1(v)); break;
      default: want = exp(v); break;
      }
      CHECK_MSG(close_to(KR_DATA(t)[i], want, 1e-6), "%s(%g) = %.9g, want %.9g", nm, v, (double)KR_DATA(t)[i], want);
    }
    kr_tensor_release(t);
    gu_end(&c);
    /* the derivative from the output, by finite differences (inputs kept off kinks) */
    snprintf(nm, sizeof nm, "fd SimpleRNN activation %s", names[act]);
    gu_begin(&c, ctx, nm, KR_OP_RNN);
    int kinky = act == KR_RACT_RELU || act == KR_RACT_HARD_SIGMOID || act == KR_RACT_ELU || act == KR_RACT_SELU;
    double lo = kinky ? 0.05 : -0.4, hi = 0.4;
    rin in2 = {var_u(&c, S(2, 3, 2), kinky ? 0.1 : -1, 1), var_u(&c, S(2, 3), lo, hi), var_u(&c, S(3, 3), lo, hi),
               var_u(&c, S(3), lo, hi), NULL, NULL, NULL};
    kr_attr a2 = rnn_attr(KR_RNN_SIMPLE, 3, KR_RNNF_RETSEQ, act, KR_RACT_SIGMOID, 0, 0);
    kr_node *y2 = mk_rnn(&c, &a2, &in2);
    fd_check(&c, 1, &y2, 0);
    gu_end(&c);
  }
}

/* ---- stateful ---- */

static void test_stateful(kr_ctx *ctx)
{
  for (int cell = 0; cell < 4; cell++) {
    int64_t B = 2, T = 6, F = 3, u = 4, G = gates(cell);
    gcase c;
    gu_begin(&c, ctx, "stateful halves", KR_OP_RNN);
    kr_node *x = cst_u(&c, S(B, T, F), -1, 1);
    kr_node *W = cst_u(&c, S(F, G * u), -0.5, 0.5), *U = cst_u(&c, S(u, G * u), -0.5, 0.5);
    kr_node *b = cst_u(&c, bias_shape(cell, u), -0.5, 0.5);
    kr_node *h0 = cst_zeros(&c, S(B, u)), *c0 = cst_zeros(&c, S(B, u));
    kr_attr whole = rnn_attr(cell, u, KR_RNNF_RETSEQ, KR_RACT_TANH, KR_RACT_HARD_SIGMOID, 0, 0);
    rin wi = {x, W, U, b, NULL, NULL, NULL};
    kr_node *yw = mk_rnn(&c, &whole, &wi);
    /* the same sequence in two halves through a placeholder, the state carried by the op */
    kr_shape sph = S(KR_BATCH, T / 2, F);
    kr_node *ph = gu_keep(&c, kr_node_input(ctx, &sph));
    kr_attr st = rnn_attr(cell, u, KR_RNNF_RETSEQ | KR_RNNF_STATEFUL, KR_RACT_TANH, KR_RACT_HARD_SIGMOID, 0, 0);
    rin si = {ph, W, U, b, h0, c0, NULL};
    kr_node *ys = mk_rnn(&c, &st, &si);
    kr_tensor *tw = yw ? kr_eval(ctx, yw) : NULL;
    kr_plan *p = ys ? kr_plan_new(ctx, 1, &ys, 1, &ph, B, 0) : NULL;
    CHECK_MSG(tw && p, "stateful: %s", kr_errmsg(ctx));
    if (tw && p) {
      const float *xd = KR_DATA(x->value);
      for (int half = 0; half < 2; half++) {
        float *dst = kr_plan_input(p, 0);
        for (int64_t bb = 0; bb < B; bb++)
          memcpy(dst + bb * (T / 2) * F, xd + (bb * T + half * (T / 2)) * F, sizeof(float) * (size_t)((T / 2) * F));
        int rs = kr_plan_run(p, B);
        CHECK_MSG(rs == KR_OK, "stateful run: %s", kr_errmsg(ctx));
        const float *out = kr_plan_output(p, 0);
        int bad = 0;
        for (int64_t bb = 0; bb < B; bb++)
          for (int64_t k = 0; k < (T / 2) * u; k++) {
            float want = KR_DATA(tw)[(bb * T + half * (T / 2)) * u + k], got = out[bb * (T / 2) * u + k];
            if (!close_to(got, want, 1e-5)) bad++;
          }
        CHECK_MSG(bad == 0, "stateful cell %d half %d: %d values differ from the whole sequence", cell, half, bad);
      }
      /* the state tensor holds the final h */
      kr_node *hf = mk_state(&c, yw, 0);
      kr_tensor *th = hf ? kr_eval(ctx, hf) : NULL;
      int same = th != NULL;
      for (int64_t k = 0; th && k < B * u; k++)
        if (!close_to(KR_DATA(h0->value)[k], KR_DATA(th)[k], 1e-5)) same = 0;
      CHECK_MSG(same, "stateful cell %d: the state tensor does not hold the final state", cell);
      kr_tensor_release(th);
      /* a batch of another size is an error naming both sizes */
      int rs = kr_plan_run(p, 1);
      const char *want = cell == KR_RNN_LSTM ? "stateful LSTM: the batch has 1 samples but the layer's state holds 2"
                                             : "the batch has 1 samples but the layer's state holds 2";
      CHECK_MSG(rs == KR_ESHAPE && strstr(kr_errmsg(ctx), want), "stateful: status %d, '%s'", rs, kr_errmsg(ctx));
    }
    kr_plan_free(p);
    kr_tensor_release(tw);
    gu_end(&c);
  }
  /* no gradient flows into a stateful layer's state; the rest trains */
  {
    gcase c;
    gu_begin(&c, ctx, "stateful gradients", KR_OP_RNN);
    rin in = {var_u(&c, S(2, 3, 2), -1, 1), var_u(&c, S(2, 16), -0.5, 0.5), var_u(&c, S(4, 16), -0.5, 0.5),
              var_u(&c, S(16), -0.5, 0.5), cst_zeros(&c, S(2, 4)), cst_zeros(&c, S(2, 4)), NULL};
    kr_attr a = rnn_attr(KR_RNN_LSTM, 4, KR_RNNF_STATEFUL, KR_RACT_TANH, KR_RACT_SIGMOID, 0, 0);
    kr_node *y = mk_rnn(&c, &a, &in);
    kr_node *loss = weighted_loss(&c, 1, &y, NULL);
    kr_node *g[4] = {0};
    int st = loss ? kr_gradients(ctx, loss, 4, c.var, g) : KR_EARG;
    CHECK_MSG(st == KR_OK, "stateful gradients: %s", kr_errmsg(ctx));
    for (int v = 0; v < 4; v++) gu_keep(&c, g[v]);
    gu_end(&c);
  }
}

/* a plan built for 12 rows, run with 9: the same outputs as nine single rows,
** and weight gradients that are the sums of the single rows' (the small GEMM's
** blocks of 4 rows, its row and column tails: u = 20) */
static void test_batched_plan(kr_ctx *ctx)
{
  enum { NB = 9, T = 4, F = 3, u = 20 };
  for (int cell = 0; cell < 4; cell++) {
    int64_t G = gates(cell);
    gcase c;
    gu_begin(&c, ctx, "batched plan", KR_OP_RNN);
    kr_shape sph = S(KR_BATCH, T, F), smph = S(KR_BATCH, T);
    kr_node *ph = gu_keep(&c, kr_node_input(ctx, &sph));
    kr_node *mph = gu_keep(&c, kr_node_input(ctx, &smph));
    rin in = {ph, var_u(&c, S(F, G * u), -0.5, 0.5), var_u(&c, S(u, G * u), -0.3, 0.3),
              var_u(&c, bias_shape(cell, u), -0.5, 0.5), NULL, NULL, mph};
    kr_attr a = rnn_attr(cell, u, KR_RNNF_RETSEQ | KR_RNNF_BACKWARDS, KR_RACT_TANH, KR_RACT_HARD_SIGMOID, 0.2, 0.3);
    kr_node *y = mk_rnn(&c, &a, &in);
    kr_node *h = mk_state(&c, y, 0);
    kr_node *R = cst_u(&c, S(T, u), -1, 1);
    kr_node *loss = weighted_loss(&c, 1, &y, &R);
    kr_node *g[3] = {0};
    if (loss && kr_gradients(ctx, loss, 3, c.var, g) == KR_OK)
      for (int v = 0; v < 3; v++) gu_keep(&c, g[v]);
    kr_node *outs[5] = {y, h, g[0], g[1], g[2]};
    kr_node *ins[2] = {ph, mph};
    kr_plan *big = !c.broken ? kr_plan_new(ctx, 5, outs, 2, ins, 12, 0) : NULL;
    kr_plan *one = !c.broken ? kr_plan_new(ctx, 5, outs, 2, ins, 1, 0) : NULL;
    CHECK_MSG(big && one, "batched plan: %s", kr_errmsg(ctx));
    if (big && one) {
      float xs[NB * T * F], ms[NB * T];
      for (int i = 0; i < NB * T * F; i++) xs[i] = (float)sin(0.7 * i);
      for (int i = 0; i < NB * T; i++) ms[i] = (i % 5 == 2) ? 0.0f : 1.0f;
      memcpy(kr_plan_input(big, 0), xs, sizeof xs);
      memcpy(kr_plan_input(big, 1), ms, sizeof ms);
      CHECK(kr_plan_run(big, NB) == KR_OK);
      int bad = 0;
      int64_t ng[3];
      double *gs[3];
      for (int v = 0; v < 3; v++) {
        ng[v] = kr_shape_numel(&c.var[v]->shape);
        gs[v] = calloc((size_t)ng[v], sizeof(double));
      }
      for (int r = 0; r < NB; r++) {
        memcpy(kr_plan_input(one, 0), xs + r * T * F, sizeof(float) * T * F);
        memcpy(kr_plan_input(one, 1), ms + r * T, sizeof(float) * T);
        CHECK(kr_plan_run(one, 1) == KR_OK);
        for (int k = 0; k < T * u; k++)
          if (!close_to(kr_plan_output(one, 0)[k], kr_plan_output(big, 0)[r * T * u + k], 1e-6)) bad++;
        for (int k = 0; k < u; k++)
          if (!close_to(kr_plan_output(one, 1)[k], kr_plan_output(big, 1)[r * u + k], 1e-6)) bad++;
        for (int v = 0; v < 3; v++)
          for (int64_t k = 0; k < ng[v]; k++) gs[v][k] += kr_plan_output(one, 2 + v)[k];
      }
      CHECK_MSG(bad == 0, "cell %d: a batch of %d in a plan for 12 differs from single rows (%d values)", cell, NB, bad);
      for (int v = 0; v < 3; v++) {
        int off = 0;
        for (int64_t k = 0; k < ng[v]; k++)
          if (!close_to(kr_plan_output(big, 2 + v)[k], gs[v][k], 1e-4)) off++;
        CHECK_MSG(off == 0, "cell %d: gradient %d of the batch is not the sum over its rows (%d values)", cell, v, off);
        free(gs[v]);
      }
    }
    kr_plan_free(big);
    kr_plan_free(one);
    gu_end(&c);
  }
}

/* the work split among threads gives the values of one thread (the same bits
** for the per-step part; OpenBLAS may sum in another order for fewer rows)
** (big enough to be split in three: 16 rows, 2*B*T*u*Gu >= 3 * 8 MFLOP) */
static void test_threads(kr_ctx *ctx)
{
  for (int cell = 0; cell < 4; cell++) {
    int64_t B = 16, T = 48, F = 3, u = 128, G = gates(cell);
    gcase c;
    gu_begin(&c, ctx, "threads", KR_OP_RNN);
    static float m[16 * 48];
    for (int i = 0; i < 16 * 48; i++) m[i] = (i % 7 == 3) ? 0.0f : 1.0f;
    rin in = {var_u(&c, S(B, T, F), -1, 1), var_u(&c, S(F, G * u), -0.2, 0.2), var_u(&c, S(u, G * u), -0.1, 0.1),
              var_u(&c, bias_shape(cell, u), -0.5, 0.5), var_u(&c, S(B, u), -0.5, 0.5), NULL,
              cst_data(&c, S(B, T), m)};
    if (cell == KR_RNN_LSTM) in.c0 = var_u(&c, S(B, u), -0.5, 0.5);
    kr_attr a = rnn_attr(cell, u, KR_RNNF_RETSEQ | KR_RNNF_BACKWARDS, KR_RACT_TANH, KR_RACT_SIGMOID, 0.2, 0.3);
    kr_node *y = mk_rnn(&c, &a, &in);
    kr_node *loss = weighted_loss(&c, 1, &y, NULL);
    kr_node *g[GU_MAXVAR] = {0};
    int st = loss ? kr_gradients(ctx, loss, c.nvar, c.var, g) : KR_EARG;
    CHECK_MSG(st == KR_OK, "threads: %s", kr_errmsg(ctx));
    if (st == KR_OK) {
      int n = c.nvar;
      for (int v = 0; v < n; v++) gu_keep(&c, g[v]);
      kr_node *outs[GU_MAXVAR + 1];
      outs[0] = y;
      for (int v = 0; v < n; v++) outs[1 + v] = g[v];
      kr_tensor *one[GU_MAXVAR + 1], *many[GU_MAXVAR + 1];
      int saved = kr_get_num_threads(ctx);
      kr_set_num_threads(ctx, 1);
      int s1 = eval_all(ctx, n + 1, outs, 1, one);
      kr_set_num_threads(ctx, 3);
      int s3 = eval_all(ctx, n + 1, outs, 1, many);
      kr_set_num_threads(ctx, saved);
      CHECK_MSG(s1 == KR_OK && s3 == KR_OK, "threads: %s", kr_errmsg(ctx));
      for (int k = 0; s1 == KR_OK && s3 == KR_OK && k <= n; k++) {
        int64_t cnt = kr_tensor_numel(one[k]), off = 0;
        for (int64_t q = 0; q < cnt; q++)
          if (!close_to(KR_DATA(many[k])[q], KR_DATA(one[k])[q], 1e-5)) off++;
        CHECK_MSG(off == 0, "cell %d: output %d differs between 1 and 3 threads (%lld values)", cell, k, (long long)off);
      }
      for (int k = 0; k <= n; k++) {
        if (s1 == KR_OK) kr_tensor_release(one[k]);
        if (s3 == KR_OK) kr_tensor_release(many[k]);
      }
    }
    gu_end(&c);
  }
}

/* ---- shape errors ---- */

static void expect_fail(kr_ctx *ctx, kr_node *n, const char *want)
{
  CHECK_MSG(n == NULL && strstr(kr_errmsg(ctx), want) != NULL, "expected an error with '%s', got '%s'", want,
            n ? "(a node)" : kr_errmsg(ctx));
  kr_node_release(n);
}

static void test_errors(kr_ctx *ctx)
{
  gcase c;
  gu_begin(&c, ctx, "errors", KR_OP_RNN);
  kr_node *x = cst_zeros(&c, S(2, 3, 4)), *W = cst_zeros(&c, S(4, 20)), *U = cst_zeros(&c, S(5, 20));
  kr_node *b = cst_zeros(&c, S(20)), *h = cst_zeros(&c, S(2, 5)), *m = cst_zeros(&c, S(2, 3));
  kr_attr a = rnn_attr(KR_RNN_LSTM, 5, 0, KR_RACT_TANH, KR_RACT_HARD_SIGMOID, 0, 0);
  kr_node *v[8] = {x, W, U, b, h, h, m};
  expect_fail(ctx, kr_node_op(ctx, KR_OP_RNN, 5, v, &a), "rnn (LSTM): expected 4 inputs, got 5");
  kr_node *x2 = cst_zeros(&c, S(2, 3));
  kr_node *v2[4] = {x2, W, U, b};
  expect_fail(ctx, kr_node_op(ctx, KR_OP_RNN, 4, v2, &a), "rnn (LSTM): the input has shape (2, 3)");
  kr_node *v3[4] = {x, U, U, b};
  expect_fail(ctx, kr_node_op(ctx, KR_OP_RNN, 4, v3, &a), "rnn (LSTM): the kernel has shape (5, 20), expected (4, 20)");
  kr_node *v4[4] = {x, W, W, b};
  expect_fail(ctx, kr_node_op(ctx, KR_OP_RNN, 4, v4, &a), "the recurrent kernel has shape (4, 20), expected (5, 20)");
  kr_node *v5[4] = {x, W, U, h};
  expect_fail(ctx, kr_node_op(ctx, KR_OP_RNN, 4, v5, &a), "the bias has shape (2, 5), expected (20,)");
  kr_attr ai = a;
  ai.i[2] = KR_RNNF_INIT;
  kr_node *v6[6] = {x, W, U, b, m, h};
  expect_fail(ctx, kr_node_op(ctx, KR_OP_RNN, 6, v6, &ai), "the initial state has shape (2, 3), expected (2, 5)");
  kr_attr am = a;
  am.i[2] = KR_RNNF_MASK;
  kr_node *v7[5] = {x, W, U, b, h};
  expect_fail(ctx, kr_node_op(ctx, KR_OP_RNN, 5, v7, &am), "the mask has shape (2, 5), expected (2, 3)");
  kr_attr ad = a;
  ad.f[0] = 1.0;
  expect_fail(ctx, kr_node_op(ctx, KR_OP_RNN, 4, v, &ad), "rnn: dropout rates must be in [0, 1)");
  kr_attr ac = a;
  ac.i[0] = 9;
  expect_fail(ctx, kr_node_op(ctx, KR_OP_RNN, 4, v, &ac), "rnn: unknown cell 9");
  kr_attr au = a;
  au.i[3] = 99;
  expect_fail(ctx, kr_node_op(ctx, KR_OP_RNN, 4, v, &au), "rnn: unknown activation code");
  kr_node *x0 = cst_zeros(&c, S(2, 0, 4));
  kr_node *v8[4] = {x0, W, U, b};
  expect_fail(ctx, kr_node_op(ctx, KR_OP_RNN, 4, v8, &a), "needs at least one timestep");
  /* the helper ops refuse what is not theirs */
  kr_node *ok = opn(&c, KR_OP_RNN, 4, v, &a);
  kr_node *sv[5] = {x, x, W, U, b};
  kr_attr as = a;
  expect_fail(ctx, kr_node_op(ctx, KR_OP_RNN_STATE, 5, sv, &as), "rnn_state: the first input must be an rnn node");
  kr_node *sv2[5] = {ok, x, W, W, b};
  expect_fail(ctx, kr_node_op(ctx, KR_OP_RNN_STATE, 5, sv2, &as), "rnn_state: input 4 is not the rnn's input 3");
  kr_attr as2 = a;
  as2.i[5] = 1;
  kr_attr ag = rnn_attr(KR_RNN_GRU, 5, 0, KR_RACT_TANH, KR_RACT_HARD_SIGMOID, 0, 0);
  kr_node *Wg = cst_zeros(&c, S(4, 15)), *Ug = cst_zeros(&c, S(5, 15)), *bg = cst_zeros(&c, S(15));
  kr_node *gv[4] = {x, Wg, Ug, bg};
  kr_node *gru = opn(&c, KR_OP_RNN, 4, gv, &ag);
  kr_node *sv3[5] = {gru, x, Wg, Ug, bg};
  ag.i[5] = 1;
  expect_fail(ctx, kr_node_op(ctx, KR_OP_RNN_STATE, 5, sv3, &ag), "rnn_state: no state 1 for this cell");
  kr_node *gg[6] = {ok, x, x, W, U, b};
  expect_fail(ctx, kr_node_op(ctx, KR_OP_RNN_GRAD, 6, gg, &a), "rnn_grad (LSTM): the incoming gradient has shape (2, 3, 4), expected (2, 5)");
  expect_fail(ctx, kr_node_op(ctx, KR_OP_RNN_GRAD_PART, 1, &ok, &a), "rnn_grad_part: the input must be an rnn_grad node");
  (void)as2;
  gu_end(&c);
}

/* ---- allocation failures: graph, gradients, plan, run ---- */

static int build_and_run(kr_ctx *ctx)
{
  int st = KR_EMEM;
  kr_node *nodes[16] = {0};
  int nn = 0;
  kr_node *g[4] = {0};
  kr_plan *p = NULL;
  kr_shape sx = S(2, 3, 2), sw = S(2, 9), su = S(3, 9), sb = S(9), sh = S(2, 3);
  kr_tensor *tx = kr_tensor_full(ctx, &sx, 0.5f), *tw = kr_tensor_full(ctx, &sw, 0.1f);
  kr_tensor *tu = kr_tensor_full(ctx, &su, -0.2f), *tb = kr_tensor_full(ctx, &sb, 0.3f);
  kr_tensor *th = kr_tensor_full(ctx, &sh, 0.0f);
  if (!tx || !tw || !tu || !tb || !th) goto done;
  kr_node *x = nodes[nn++] = kr_node_variable(ctx, tx);
  kr_node *W = nodes[nn++] = kr_node_variable(ctx, tw);
  kr_node *U = nodes[nn++] = kr_node_variable(ctx, tu);
  kr_node *b = nodes[nn++] = kr_node_variable(ctx, tb);
  kr_node *h = nodes[nn++] = kr_node_variable(ctx, th);
  if (!x || !W || !U || !b || !h) goto done;
  kr_attr a = rnn_attr(KR_RNN_GRU, 3, KR_RNNF_RETSEQ | KR_RNNF_INIT, KR_RACT_TANH, KR_RACT_HARD_SIGMOID, 0.1, 0.1);
  kr_node *in[5] = {x, W, U, b, h};
  kr_node *y = nodes[nn++] = kr_node_op(ctx, KR_OP_RNN, 5, in, &a);
  if (!y) goto done;
  kr_node *in2[6] = {y, x, W, U, b, h};
  kr_node *s = nodes[nn++] = kr_node_op(ctx, KR_OP_RNN_STATE, 6, in2, &a);
  if (!s) goto done;
  kr_node *l1 = nodes[nn++] = kr_op1(ctx, KR_OP_SUM, y, AT(.i = {7, 0}));
  kr_node *l2 = l1 ? (nodes[nn++] = kr_op1(ctx, KR_OP_SUM, s, AT(.i = {3, 0}))) : NULL;
  kr_node *loss = l2 ? (nodes[nn++] = kr_op2(ctx, KR_OP_ADD, l1, l2, NULL)) : NULL;
  if (!loss) goto done;
  kr_node *vars[4] = {W, U, b, h};
  if ((st = kr_gradients(ctx, loss, 4, vars, g)) != KR_OK) goto done;
  p = kr_plan_new(ctx, 4, g, 0, NULL, 1, 1);
  if (!p) {
    st = kr_errcode(ctx);
    goto done;
  }
  st = kr_plan_run(p, 1);
done:
  kr_plan_free(p);
  for (int i = 0; i < 4; i++) kr_node_release(g[i]);
  while (nn > 0) kr_node_release(nodes[--nn]);
  kr_tensor_release(tx);
  kr_tensor_release(tw);
  kr_tensor_release(tu);
  kr_tensor_release(tb);
  kr_tensor_release(th);
  return st;
}

static void test_alloc_failures(kr_ctx *ctx)
{
  size_t base = kr_mem_in_use(ctx);
  uint64_t before = kr_mem_allocs(ctx);
  CHECK_MSG(build_and_run(ctx) == KR_OK, "alloc sweep: the case fails without failures: %s", kr_errmsg(ctx));
  long total = (long)(kr_mem_allocs(ctx) - before);
  int ok_at = 0;
  for (long n = 1; n <= total + 1; n++) {
    kr_mem_fail_at(ctx, n);
    int st = build_and_run(ctx);
    kr_mem_fail_at(ctx, 0);
    CHECK_MSG(kr_mem_in_use(ctx) == base, "allocation %ld failing: %zu bytes leaked", n, kr_mem_in_use(ctx) - base);
    if (st == KR_OK) {
      ok_at = (int)n;
      break;
    }
    CHECK_MSG(st == KR_EMEM, "allocation %ld failing: status %d (%s)", n, st, kr_errmsg(ctx));
  }
  CHECK_MSG(ok_at > 5, "the sweep never got through (%d)", ok_at);
}

static void test_coverage(void)
{
  CHECK_MSG(seen_op[KR_OP_RNN], "no rnn node was checked");
  CHECK_MSG(seen_op[KR_OP_RNN_STATE], "no rnn_state node was checked");
  CHECK_MSG(seen_op[KR_OP_RNN_GRAD], "no rnn_grad node in a checked gradient");
  CHECK_MSG(seen_op[KR_OP_RNN_GRAD_PART], "no rnn_grad_part node in a checked gradient");
  CHECK(kr_op_lookup("rnn") == KR_OP_RNN);
  CHECK(kr_op_lookup("rnn_grad_part") == KR_OP_RNN_GRAD_PART);
}

int main(void)
{
  (void)var_k;   /* grad_util.h's helpers this file does not use */
  (void)var_grid;
  kr_ctx *ctx = kr_ctx_new();
  if (!ctx) return 1;
  kr_rng_seed(ctx, 42);
  test_fixtures(ctx);
  test_torch_grads(ctx);
  test_fd(ctx);
  test_activations(ctx);
  test_stateful(ctx);
  test_batched_plan(ctx);
  test_threads(ctx);
  test_errors(ctx);
  test_alloc_failures(ctx);
  test_coverage();
  kr_ctx_free(ctx);
  if (getenv("FD_WORST")) fprintf(stderr, "worst rnn %.3g\n", fd_worst);
  return check_report("test_rnn");
}
