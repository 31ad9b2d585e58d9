/*
** test_conv3d.c -- the 3-D convolution ops (src/ops_conv3d.c,
** src/kernels/conv3d.c): the forward against float64 loops written here,
** finite-difference gradient checks (fd_check.h) of conv3d and
** conv3d_transpose for x, the kernel and the bias (strides, dilations, both
** paddings, output padding, the fused relu) by every lowering (the fixed rule,
** vol2col + sgemm, col2vol, direct), the same floats for 1 and 2 threads,
** and the shape rules' refusals. PyTorch's values: tests/conv3d_spec.lua.
*/
#include "kr.h"
#include "ops.h"
#include "ops_conv.h"
#include "check.h"
#include "fd_check.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

static int covered[KR_OP_COUNT];
static int in_grad[KR_OP_COUNT];

/* conv3d's attributes: strides, dilations, pads {front, back, top, bottom, left, right}, relu */
static kr_attr c3attr(const int64_t *st, const int64_t *dl, const int64_t *p, int relu)
{
  kr_attr a;
  memset(&a, 0, sizeof a);
  for (int k = 0; k < 3; k++) {
    a.i[KR_C3_STRIDE_D + k] = st[k];
    a.i[KR_C3_DILATION_D + k] = dl[k];
  }
  a.i[KR_C3_PAD_FRONT] = p[0];
  a.i[KR_C3_PAD_TOP] = p[2];
  a.f[KR_C3_PAD_LEFT] = (double)p[4];
  a.f[KR_C3_PAD_BACK] = (double)p[1];
  a.f[KR_C3_PAD_BOTTOM] = (double)p[3];
  a.f[KR_C3_PAD_RIGHT] = (double)p[5];
  a.f[KR_C3_RELU] = relu;
  return a;
}

/* y in float64 from the definition: conv3d of x by w (zero padding) */
static void conv3d_ref(const kr_shape *xs, const kr_shape *ws, const kr_shape *ys, const kr_attr *a, const float *x,
                       const float *w, const float *b, double *y)
{
  int64_t N = xs->dim[0], D = xs->dim[1], H = xs->dim[2], W = xs->dim[3], C = xs->dim[4];
  int64_t KD = ws->dim[0], KH = ws->dim[1], KW = ws->dim[2], O = ws->dim[4];
  int64_t Do = ys->dim[1], Ho = ys->dim[2], Wo = ys->dim[3];
  const int64_t *i = a->i;
  for (int64_t n = 0; n < N; n++)
    for (int64_t od = 0; od < Do; od++)
      for (int64_t oh = 0; oh < Ho; oh++)
        for (int64_t ow = 0; ow < Wo; ow++)
          for (int64_t o = 0; o < O; o++) {
            double s = b ? b[o] : 0;
            for (int64_t kd = 0; kd < KD; kd++)
              for (int64_t kh = 0; kh < KH; kh++)
                for (int64_t kw = 0; kw < KW; kw++) {
                  int64_t id = od * i[0] - i[6] + kd * i[3], ih = oh * i[1] - i[7] + kh * i[4];
                  int64_t iw = ow * i[2] - (int64_t)a->f[KR_C3_PAD_LEFT] + kw * i[5];
                  if (id < 0 || id >= D || ih < 0 || ih >= H || iw < 0 || iw >= W) continue;
                  for (int64_t c = 0; c < C; c++)
                    s += (double)x[(((n * D + id) * H + ih) * W + iw) * C + c] *
                         (double)w[(((kd * KH + kh) * KW + kw) * C + c) * O + o];
                }
            y[(((n * Do + od) * Ho + oh) * Wo + ow) * O + o] = a->f[KR_C3_RELU] != 0 && s < 0 ? 0 : s;
          }
}

/* the transposed convolution from its definition: every input position
** scattered through the kernel (KD, KH, KW, O, C) into y (zero first), at
** position i*s + k*d - pad */
static void transpose_ref(const kr_shape *xs, const kr_shape *ws, const kr_shape *ys, const kr_attr *a,
                          const float *x, const float *w, const float *b, double *y)
{
  int64_t N = xs->dim[0], D = xs->dim[1], H = xs->dim[2], W = xs->dim[3], C = xs->dim[4];
  int64_t KD = ws->dim[0], KH = ws->dim[1], KW = ws->dim[2], O = ws->dim[3];
  int64_t Do = ys->dim[1], Ho = ys->dim[2], Wo = ys->dim[3];
  const int64_t *i = a->i;
  int64_t ny = kr_shape_numel(ys);
  for (int64_t k = 0; k < ny; k++) y[k] = b ? b[k % O] : 0;
  for (int64_t n = 0; n < N; n++)
    for (int64_t d = 0; d < D; d++)
      for (int64_t h = 0; h < H; h++)
        for (int64_t v = 0; v < W; v++)
          for (int64_t kd = 0; kd < KD; kd++)
            for (int64_t kh = 0; kh < KH; kh++)
              for (int64_t kw = 0; kw < KW; kw++) {
                int64_t od = d * i[0] + kd * i[3] - i[6], oh = h * i[1] + kh * i[4] - i[7];
                int64_t ow = v * i[2] + kw * i[5] - (int64_t)a->f[KR_C3_PAD_LEFT];
                if (od < 0 || od >= Do || oh < 0 || oh >= Ho || ow < 0 || ow >= Wo) continue;
                for (int64_t o = 0; o < O; o++)
                  for (int64_t c = 0; c < C; c++)
                    y[(((n * Do + od) * Ho + oh) * Wo + ow) * O + o] +=
                      (double)x[(((n * D + d) * H + h) * W + v) * C + c] *
                      (double)w[(((kd * KH + kh) * KW + kw) * O + o) * C + c];
              }
}

typedef struct c3case {
  const char *name;
  int transpose;
  int64_t x[5], w[5];
  int64_t st[3], dl[3], p[6];   /* conv3d: every pad; transpose: the leading ones (p[0], p[2], p[4]) */
  int64_t out[5];               /* transpose: the output shape */
  int bias, relu;
} c3case;

static const c3case CASES[] = {
  {"valid 2x3x2 + bias", 0, {2, 3, 4, 4, 2}, {2, 3, 2, 2, 3}, {1, 1, 1}, {1, 1, 1}, {0, 0, 0, 0, 0, 0}, {0}, 1, 0},
  {"same strides (2, 1, 2)", 0, {1, 5, 3, 5, 2}, {3, 2, 3, 2, 2}, {2, 1, 2}, {1, 1, 1}, {1, 1, 0, 1, 1, 1}, {0}, 0,
   0},
  {"same dilation (2, 1, 2) + bias", 0, {1, 5, 4, 5, 2}, {2, 3, 2, 2, 2}, {1, 1, 1}, {2, 1, 2}, {1, 1, 1, 1, 1, 0},
   {0}, 1, 0},
  {"valid strides 2, 5 -> 20 channels", 0, {1, 5, 5, 5, 5}, {2, 2, 2, 5, 20}, {2, 2, 2}, {1, 1, 1},
   {0, 0, 0, 0, 0, 0}, {0}, 0, 0},
  {"relu same + bias", 0, {2, 3, 3, 4, 3}, {2, 2, 3, 3, 2}, {1, 1, 1}, {1, 1, 1}, {0, 1, 0, 1, 1, 1}, {0}, 1, 1},
  {"relu strides 2, 4 -> 16 channels", 0, {1, 4, 5, 4, 4}, {2, 2, 2, 4, 16}, {2, 2, 2}, {1, 1, 1},
   {0, 0, 0, 0, 0, 0}, {0}, 0, 1},
  /* the register-tiled forward (16 and 32 filters): full tiles and the padded edges */
  {"16 filters same, one channel, 28 columns + bias", 0, {1, 2, 3, 28, 1}, {2, 2, 3, 1, 16}, {1, 1, 1}, {1, 1, 1},
   {0, 1, 0, 1, 1, 1}, {0}, 1, 0},
  {"48 filters, 6 columns", 0, {1, 2, 3, 6, 2}, {2, 2, 2, 2, 48}, {1, 1, 1}, {1, 1, 1}, {0, 0, 0, 0, 0, 0}, {0}, 0,
   0},
  {"64 filters same, 9 columns", 0, {1, 2, 2, 9, 2}, {1, 2, 3, 2, 64}, {1, 1, 1}, {1, 1, 1}, {0, 0, 0, 1, 1, 1},
   {0}, 1, 0},
  {"32 filters strides (1, 1, 2) + bias", 0, {1, 2, 2, 27, 2}, {1, 2, 3, 2, 32}, {1, 1, 2}, {1, 1, 1},
   {0, 0, 0, 1, 1, 1}, {0}, 1, 0},
  /* 16 input channels at stride 1: the input gradient as the forward of the flipped kernel */
  {"16 -> 3 channels same dilation (1, 2, 1)", 0, {1, 3, 4, 5, 16}, {1, 2, 2, 16, 3}, {1, 1, 1}, {1, 2, 1},
   {0, 0, 1, 1, 0, 1}, {0}, 1, 0},
  {"transpose stride 1 -> 16 channels + bias", 1, {1, 2, 3, 3, 2}, {2, 2, 2, 16, 2}, {1, 1, 1}, {1, 1, 1},
   {0, 0, 0, 0, 0, 0}, {1, 3, 4, 4, 16}, 1, 0},
  {"transpose valid + bias", 1, {2, 2, 3, 3, 3}, {2, 2, 3, 2, 3}, {1, 1, 1}, {1, 1, 1}, {0}, {2, 3, 4, 5, 2}, 1, 0},
  {"transpose same strides 2", 1, {1, 3, 2, 3, 2}, {3, 3, 3, 3, 2}, {2, 2, 2}, {1, 1, 1}, {1, 0, 1, 0, 1, 0},
   {1, 6, 4, 6, 3}, 0, 0},
  {"transpose valid strides 2 output padding (1, 0, 1)", 1, {1, 2, 3, 2, 2}, {3, 3, 3, 2, 2}, {2, 2, 2},
   {1, 1, 1}, {0}, {1, 6, 7, 6, 2}, 1, 0},
  {"transpose same strides (2, 2, 3) output padding", 1, {1, 2, 2, 3, 3}, {3, 2, 3, 3, 3}, {2, 2, 3}, {1, 1, 1},
   {0, 0, 0, 0, 0, 0}, {1, 4, 4, 9, 3}, 1, 0},
  {"transpose dilation 2, 16 -> 8 channels", 1, {1, 2, 3, 2, 16}, {2, 2, 2, 8, 16}, {1, 1, 1}, {2, 2, 2},
   {0, 0, 0, 0, 0, 0}, {1, 4, 5, 4, 8}, 0, 0},
};
#define NCASES ((int)(sizeof CASES / sizeof CASES[0]))

static kr_attr case_attr(const c3case *k)
{
  kr_attr a = c3attr(k->st, k->dl, k->p, k->relu);
  if (k->transpose) {
    a.f[KR_C3_PAD_BACK] = a.f[KR_C3_PAD_BOTTOM] = a.f[KR_C3_PAD_RIGHT] = 0;
    a.shape = kr_shape_make(5, k->out);
  }
  return a;
}

/* the case's node on variables (or constants); the relu cases retry until no pre-activation is within 0.05 of 0 */
static kr_node *build(gcase *c, const c3case *k, int variables)
{
  kr_attr a = case_attr(k);
  kr_shape xs = kr_shape_make(5, k->x), ws = kr_shape_make(5, k->w);
  int64_t nb = k->transpose ? k->w[3] : k->w[4];
  kr_shape bs = kr_shape_make(1, &nb);
  int op = k->transpose ? KR_OP_CONV3D_TRANSPOSE : KR_OP_CONV3D;
  for (int tries = 0; tries < 400; tries++) {
    kr_tensor *tx = gu_t_uniform(c->ctx, xs, -1, 1, NOKINKS, 0), *tw = gu_t_uniform(c->ctx, ws, -1, 1, NOKINKS, 0);
    kr_tensor *tb = k->bias ? gu_t_uniform(c->ctx, bs, -0.5, 0.5, NOKINKS, 0) : NULL;
    int ok = 1;
    if (k->relu) {
      kr_node *in[3] = {kr_node_const(c->ctx, tx), kr_node_const(c->ctx, tw), tb ? kr_node_const(c->ctx, tb) : NULL};
      kr_attr lin = a;
      lin.f[KR_C3_RELU] = 0;
      kr_node *z = kr_node_op(c->ctx, op, k->bias ? 3 : 2, in, &lin);
      kr_tensor *tz = z ? kr_eval(c->ctx, z) : NULL;
      ok = tz != NULL;
      for (int64_t i = 0; tz && i < kr_tensor_numel(tz); i++)
        if (fabsf(KR_DATA(tz)[i]) < 0.05f) ok = 0;
      kr_tensor_release(tz);
      kr_node_release(z);
      for (int i = 0; i < 3; i++) kr_node_release(in[i]);
    }
    if (ok) {
      kr_node *in[3] = {gu_leaf(c, tx, variables), gu_leaf(c, tw, variables), tb ? gu_leaf(c, tb, variables) : NULL};
      return opn(c, op, k->bias ? 3 : 2, in, &a);
    }
    kr_tensor_release(tx);
    kr_tensor_release(tw);
    kr_tensor_release(tb);
  }
  CHECK_MSG(0, "%s: no inputs away from the kink", c->name);
  return NULL;
}

static const int ALGOS[] = {KR_CONV_ALGO_RULE, KR_CONV_ALGO_IM2COL, KR_CONV_ALGO_COL2IM, KR_CONV_ALGO_DIRECT};
#define NALGOS 4

/* the forward against float64, every case by every lowering */
static void test_forward(kr_ctx *ctx)
{
  for (int ai = 0; ai < NALGOS; ai++) {
    kr_conv_force_algo(ctx, ALGOS[ai]);
    for (int k = 0; k < NCASES; k++) {
      char name[160];
      snprintf(name, sizeof name, "%s forward by %s", CASES[k].name, kr_conv_algo_name(ALGOS[ai]));
      gcase c;
      gu_begin(&c, ctx, name, CASES[k].transpose ? KR_OP_CONV3D_TRANSPOSE : KR_OP_CONV3D);
      kr_node *y = build(&c, &CASES[k], 0);
      kr_tensor *ty = y ? kr_eval(ctx, y) : NULL;
      CHECK_MSG(ty != NULL, "%s: %s", name, kr_errmsg(ctx));
      if (ty) {
        int64_t ny = kr_tensor_numel(ty);
        double *ref = malloc((size_t)ny * sizeof(double)), worst = 0;
        const float *b = CASES[k].bias ? KR_DATA(y->in[2]->value) : NULL;
        if (CASES[k].transpose)
          transpose_ref(&y->in[0]->shape, &y->in[1]->shape, &y->shape, &y->attr, KR_DATA(y->in[0]->value),
                        KR_DATA(y->in[1]->value), b, ref);
        else
          conv3d_ref(&y->in[0]->shape, &y->in[1]->shape, &y->shape, &y->attr, KR_DATA(y->in[0]->value),
                     KR_DATA(y->in[1]->value), b, ref);
        for (int64_t i = 0; i < ny; i++) worst = fmax(worst, fabs(KR_DATA(ty)[i] - ref[i]) / fmax(1.0, fabs(ref[i])));
        /* float32 sums of at most 144 products of O(1) */
        CHECK_MSG(worst <= 1e-5, "%s: off the float64 reference by %.3g", name, worst);
        free(ref);
      }
      kr_tensor_release(ty);
      gu_end(&c);
    }
  }
  kr_conv_force_algo(ctx, KR_CONV_ALGO_RULE);
}

/* every gradient (x, kernel, bias) by finite differences, the gradient nodes run by each lowering */
static void test_fd(kr_ctx *ctx)
{
  for (int ai = 0; ai < NALGOS; ai++) {
    kr_conv_force_algo(ctx, ALGOS[ai]);
    for (int k = 0; k < NCASES; k++) {
      char name[160];
      snprintf(name, sizeof name, "%s gradients by %s", CASES[k].name, kr_conv_algo_name(ALGOS[ai]));
      gcase c;
      int op = CASES[k].transpose ? KR_OP_CONV3D_TRANSPOSE : KR_OP_CONV3D;
      gu_begin(&c, ctx, name, op);
      kr_node *y = build(&c, &CASES[k], 1);
      covered[op] = 1;
      /* FD_RTOL is derived for a perturbed element reaching up to ~100 outputs
      ** of O(1-5) (fd_check.h); here an input element reaches taps x filters of
      ** them and a kernel element every output position, and outputs summing
      ** 64 or more products are O(3-8) (the direct lowering's plain loops also
      ** round each product before adding it, where sgemm fuses them): the
      ** rounding grows as the square root of the outputs times their size,
      ** 2.6e-4 measured. 5e-4 still misses a 1% error twentyfold. */
      const int64_t *w = CASES[k].w, *yd = y ? y->shape.dim : NULL;
      int64_t reach_x = w[0] * w[1] * w[2] * (CASES[k].transpose ? w[3] : w[4]);
      int64_t reach_w = yd ? (CASES[k].transpose ? kr_shape_numel(&y->in[0]->shape) / CASES[k].x[4]
                                                 : yd[0] * yd[1] * yd[2] * yd[3]) : 0;
      int64_t products = w[0] * w[1] * w[2] * (CASES[k].transpose ? w[4] : w[3]);
      double rtol = reach_x > 100 || reach_w > 100 || products >= 64 ? 5e-4 : 0;
      fd_opts o = {.points = 150, .seen = in_grad, .helper = -1, .rtol = rtol};
      if (y) fd_check_outputs(&c, 1, &y, NULL, &o);
      gu_end(&c);
    }
  }
  kr_conv_force_algo(ctx, KR_CONV_ALGO_RULE);
  CHECK(covered[KR_OP_CONV3D] && covered[KR_OP_CONV3D_TRANSPOSE]);
  CHECK_MSG(in_grad[KR_OP_CONV3D_GRAD_INPUT] && in_grad[KR_OP_CONV3D_GRAD_KERNEL],
            "the gradient helpers appeared in the checked gradients");
}

/* 1 and 2 threads: the same floats for every lowering, forward and both
** gradients, with two workers really running (28M multiply-adds: 3 chunks) */
static void test_threads(kr_ctx *ctx)
{
  static const c3case big = {"threads", 0, {16, 8, 8, 8, 8}, {3, 3, 3, 8, 16}, {1, 1, 1}, {1, 1, 1},
                             {1, 1, 1, 1, 1, 1}, {0}, 1, 0};
  static const c3case bigt = {"threads transpose", 1, {16, 4, 4, 4, 16}, {3, 3, 3, 8, 16}, {2, 2, 2}, {1, 1, 1},
                              {0, 0, 0, 0, 0, 0}, {16, 9, 9, 9, 8}, 1, 0};
  const c3case *cs[2] = {&big, &bigt};
  for (int which = 0; which < 2; which++)
    for (int ai = 0; ai < NALGOS; ai++) {
      kr_conv_force_algo(ctx, ALGOS[ai]);
      gcase c;
      gu_begin(&c, ctx, cs[which]->name, KR_OP_CONV3D);
      kr_set_num_threads(ctx, 2);   /* the nodes' scratch slots: two workers */
      kr_node *y = build(&c, cs[which], 1);
      kr_node *sum = y ? opn(&c, KR_OP_SUM, 1, &y, AT(.i = {31, 0})) : NULL;
      kr_node *g[3] = {NULL, NULL, NULL};
      if (sum && kr_gradients(ctx, sum, 3, c.var, g) == KR_OK) {
        kr_node *outs[4] = {y, g[0], g[1], g[2]};
        kr_tensor *t1[4] = {0}, *t2[4] = {0};
        kr_set_num_threads(ctx, 1);
        CHECK(kt_eval_nodes(ctx, 4, outs, 0, 1, t1) == KR_OK);
        kr_set_num_threads(ctx, 2);
        CHECK(kr_conv3d_tune_workers(ctx, y, 16) == 2);
        CHECK(kr_conv3d_tune_workers(ctx, g[1]->op == KR_OP_CONV3D_GRAD_KERNEL ? g[1] : g[0], 16) == 2);
        CHECK(kt_eval_nodes(ctx, 4, outs, 0, 1, t2) == KR_OK);
        kr_set_num_threads(ctx, 1);
        for (int i = 0; i < 4; i++) {
          int same = t1[i] && t2[i] && kr_tensor_numel(t1[i]) == kr_tensor_numel(t2[i]) &&
                     memcmp(KR_DATA(t1[i]), KR_DATA(t2[i]), (size_t)kr_tensor_numel(t1[i]) * sizeof(float)) == 0;
          CHECK_MSG(same, "%s by %s: output %d differs between 1 and 2 threads", cs[which]->name,
                    kr_conv_algo_name(ALGOS[ai]), i);
          kr_tensor_release(t1[i]);
          kr_tensor_release(t2[i]);
        }
      } else {
        CHECK_MSG(0, "%s: no gradients: %s", cs[which]->name, kr_errmsg(ctx));
      }
      for (int i = 0; i < 3; i++) kr_node_release(g[i]);
      gu_end(&c);
    }
  kr_conv_force_algo(ctx, KR_CONV_ALGO_RULE);
}

/* the tuner: both lowerings of each pass timed once per geometry, a valid choice kept */
static void test_autotune(kr_ctx *ctx)
{
  kr_conv_autotune_clear(ctx);
  kr_set_conv_autotune(ctx, 1);
  gcase c;
  gu_begin(&c, ctx, "autotune", KR_OP_CONV3D);
  kr_node *y = build(&c, &CASES[3], 1);
  kr_node *sum = y ? opn(&c, KR_OP_SUM, 1, &y, AT(.i = {31, 0})) : NULL;
  kr_node *g[2] = {NULL, NULL};
  if (sum && kr_gradients(ctx, sum, 2, c.var, g) == KR_OK) {
    kr_tensor *t[2] = {0};
    CHECK(kt_eval_nodes(ctx, 2, g, 0, 1, t) == KR_OK);
    int seen[3] = {0};
    for (int i = 0; i < kr_conv_autotune_count(ctx); i++) {
      const kr_conv_tuned *e = kr_conv_autotune_entry(ctx, i);
      int op = (int)e->key[0];
      if (!kr_is_conv3d_op(op)) continue;
      seen[op == KR_OP_CONV3D ? 0 : op == KR_OP_CONV3D_GRAD_INPUT ? 1 : 2] = 1;
      CHECK(e->ncand == 2);
      CHECK(e->algo == KR_CONV_ALGO_DIRECT || e->algo == KR_CONV_ALGO_IM2COL || e->algo == KR_CONV_ALGO_COL2IM);
      for (int k = 0; k < e->ncand; k++) CHECK(e->ms[k] >= 0);
    }
    CHECK(seen[0] && seen[1] && seen[2]);
    int n = kr_conv_autotune_count(ctx);
    kr_tensor_release(t[0]);
    kr_tensor_release(t[1]);
    CHECK(kt_eval_nodes(ctx, 2, g, 0, 1, t) == KR_OK);
    CHECK_MSG(kr_conv_autotune_count(ctx) == n, "a geometry tuned twice");
    kr_tensor_release(t[0]);
    kr_tensor_release(t[1]);
  }
  for (int i = 0; i < 2; i++) kr_node_release(g[i]);
  gu_end(&c);
  kr_conv_autotune_clear(ctx);
}

/* a training plan of conv3d (bias, relu) then conv3d_transpose on a batched
** placeholder: its runs, at the full batch and a smaller one, allocate nothing */
static void test_no_alloc(kr_ctx *ctx)
{
  for (int threads = 1; threads <= 2; threads++) {
    kr_set_num_threads(ctx, threads);
    gcase c;
    gu_begin(&c, ctx, "no allocation in plan runs", KR_OP_CONV3D);
    kr_shape ps = S(-1, 5, 6, 7, 2);
    kr_node *x = gu_keep(&c, kr_node_input(ctx, &ps));
    kr_node *w = var_u(&c, S(3, 3, 3, 2, 16), -1, 1), *b = var_u(&c, S(16), -1, 1);
    kr_node *wt = var_u(&c, S(2, 2, 2, 3, 16), -1, 1);
    static const int64_t one[3] = {1, 1, 1}, two[3] = {2, 2, 2}, same[6] = {1, 1, 1, 1, 1, 1};
    kr_attr a = c3attr(one, one, same, 1), at = c3attr(two, one, (const int64_t[6]){0}, 0);
    at.shape = S(-1, 10, 12, 14, 3);
    kr_node *y = x ? opn(&c, KR_OP_CONV3D, 3, (kr_node *[]){x, w, b}, &a) : NULL;
    kr_node *z = y ? opn(&c, KR_OP_CONV3D_TRANSPOSE, 2, (kr_node *[]){y, wt}, &at) : NULL;
    kr_node *sum = z ? opn(&c, KR_OP_SUM, 1, &z, AT(.i = {31, 0})) : NULL;
    kr_node *g[3] = {NULL, NULL, NULL};
    if (sum && kr_gradients(ctx, sum, 3, (kr_node *[]){w, b, wt}, g) == KR_OK) {
      kr_node *outs[4] = {sum, g[0], g[1], g[2]};
      kr_plan *p = kr_plan_new(ctx, 4, outs, 1, &x, 6, 1);
      CHECK_MSG(p != NULL, "plan: %s", kr_errmsg(ctx));
      if (p) {
        float *in = kr_plan_input(p, 0);
        for (int i = 0; i < 6 * 5 * 6 * 7 * 2; i++) in[i] = (float)((i * 37) % 11) * 0.1f - 0.5f;
        CHECK(kr_plan_run(p, 6) == KR_OK);
        uint64_t before = kr_mem_allocs(ctx);
        for (int i = 0; i < 3; i++) CHECK(kr_plan_run(p, 6) == KR_OK);
        CHECK(kr_plan_run(p, 4) == KR_OK);
        CHECK_MSG(kr_mem_allocs(ctx) == before, "%llu allocations in plan runs",
                  (unsigned long long)(kr_mem_allocs(ctx) - before));
        CHECK(isfinite(kr_plan_output(p, 0)[0]));
        kr_plan_free(p);
      }
    } else {
      CHECK_MSG(0, "no gradients: %s", kr_errmsg(ctx));
    }
    for (int i = 0; i < 3; i++) kr_node_release(g[i]);
    gu_end(&c);
  }
  kr_set_num_threads(ctx, 1);
}

/* a node made with these inputs and attributes fails with a message containing `want` */
static void refused(kr_ctx *ctx, int op, int nin, kr_node *const *in, const kr_attr *a, const char *want)
{
  kr_node *n = kr_node_op(ctx, op, nin, in, a);
  CHECK_MSG(n == NULL, "%s: accepted", want);
  if (n) kr_node_release(n);
  else CHECK_MSG(strstr(kr_errmsg(ctx), want) != NULL, "expected \"%s\", got \"%s\"", want, kr_errmsg(ctx));
}

static void test_errors(kr_ctx *ctx)
{
  gcase c;
  gu_begin(&c, ctx, "errors", KR_OP_CONV3D);
  static const int64_t one[3] = {1, 1, 1}, zero[6] = {0};
  kr_attr a = c3attr(one, one, zero, 0);
  kr_node *x = cst_u(&c, S(2, 4, 4, 4, 3), -1, 1), *w = cst_u(&c, S(2, 2, 2, 3, 5), -1, 1);
  kr_node *x4 = cst_u(&c, S(2, 4, 4, 3), -1, 1), *w4 = cst_u(&c, S(2, 2, 3, 5), -1, 1);
  kr_node *big = cst_u(&c, S(5, 2, 2, 3, 5), -1, 1), *b4 = cst_u(&c, S(4), -1, 1);
  refused(ctx, KR_OP_CONV3D, 2, (kr_node *[]){x4, w}, &a, "conv3d: expected an input of rank 5");
  refused(ctx, KR_OP_CONV3D, 2, (kr_node *[]){x, w4}, &a, "conv3d: expected a kernel of rank 5");
  refused(ctx, KR_OP_CONV3D, 2, (kr_node *[]){x, big}, &a, "is larger than the padded input");
  refused(ctx, KR_OP_CONV3D, 3, (kr_node *[]){x, w, b4}, &a, "conv3d: the bias has shape (4,), expected (5,)");
  refused(ctx, KR_OP_CONV3D, 2, (kr_node *[]){w, x}, &a, "input channels");
  kr_attr bad = a;
  bad.i[KR_C3_DILATION_H] = 0;
  refused(ctx, KR_OP_CONV3D, 2, (kr_node *[]){x, w}, &bad, "attribute 'dilation_h' must be in [1, 16777216], got 0");
  bad = a;
  bad.f[KR_C3_PAD_BACK] = -1;
  refused(ctx, KR_OP_CONV3D, 2, (kr_node *[]){x, w}, &bad, "attribute 'pad_back' must be an integer");
  bad = a;
  bad.f[KR_C3_PAD_RIGHT] = NAN;
  refused(ctx, KR_OP_CONV3D, 2, (kr_node *[]){x, w}, &bad, "attribute 'pad_right' must be an integer");
  bad = a;
  bad.f[KR_C3_RELU] = 2;
  refused(ctx, KR_OP_CONV3D, 2, (kr_node *[]){x, w}, &bad, "relu (the fused activation) must be 0");
  /* the gradients check dy against the conv's output */
  kr_node *dy = cst_u(&c, S(2, 3, 3, 4, 5), -1, 1);
  refused(ctx, KR_OP_CONV3D_GRAD_INPUT, 3, (kr_node *[]){dy, w, x}, &a, "the output gradient has shape");
  refused(ctx, KR_OP_CONV3D_GRAD_KERNEL, 3, (kr_node *[]){dy, x, w}, &a, "the output gradient has shape");
  /* conv3d_transpose: the output shape must come back to x */
  kr_node *xt = cst_u(&c, S(2, 3, 3, 3, 5), -1, 1);
  kr_attr t = a;
  t.i[KR_C3_STRIDE_D] = 2;
  t.shape = S(2, 9, 4, 4, 3);
  refused(ctx, KR_OP_CONV3D_TRANSPOSE, 2, (kr_node *[]){xt, w}, &t, "conv3d_transpose: impossible output shape");
  t.shape = S(2, 6, 4, 4, 3);
  kr_node *ok = kr_node_op(ctx, KR_OP_CONV3D_TRANSPOSE, 2, (kr_node *[]){xt, w}, &t);
  CHECK_MSG(ok != NULL, "output padding 1 along the depth: %s", kr_errmsg(ctx));
  kr_node_release(ok);
  t.shape = S(2, 6, 4, 4, 4);
  refused(ctx, KR_OP_CONV3D_TRANSPOSE, 2, (kr_node *[]){xt, w}, &t, "has 4 channels, the kernel");
  t.shape = S(2, 6, 4, 4);
  refused(ctx, KR_OP_CONV3D_TRANSPOSE, 2, (kr_node *[]){xt, w}, &t, "must have 5 entries");
  gu_end(&c);
}

int main(void)
{
  (void)var_k;   /* grad_util.h helpers this file does not need */
  (void)var_data;
  (void)cst_data;
  (void)var_u;
  (void)var_grid;
  (void)cst_zeros;
  kr_ctx *ctx = kr_ctx_new();
  if (!ctx) return 1;
  kr_set_num_threads(ctx, 1);
  kr_set_conv_autotune(ctx, 0);
  test_forward(ctx);
  test_fd(ctx);
  test_threads(ctx);
  test_autotune(ctx);
  test_errors(ctx);
  test_no_alloc(ctx);
  CHECK_MSG(kr_mem_in_use(ctx) == 0, "%zu bytes still in use", kr_mem_in_use(ctx));
  kr_ctx_free(ctx);
  return check_report("test_conv3d");
}
