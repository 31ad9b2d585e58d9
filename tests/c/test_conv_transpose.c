/*
** test_conv_transpose.c -- conv2d_transpose (src/ops_conv_transpose.c, its
** kernel in src/kernels/conv.c):
**   - forward values, the input, kernel and bias gradients against a direct
**     float64 scatter written here (every input pixel through the kernel),
**     for strides, 'valid' / 'same' cuts, dilations, an output padding and
**     asymmetric kernels, with the bias and the fused relu;
**   - every lowering the autotuner may pick for the forward (kr_conv_force_algo)
**     against the same reference, and the autotuner's entry for the op;
**   - finite-difference gradient checks (fd_check.h) of x, the kernel and the
**     bias, linear and with the relu (inputs away from its kink), and that
**     the gradient graph uses conv2d and conv2d_grad_kernel;
**   - the same bits for 1 and 2 threads (forward and the three gradients);
**   - shape errors naming the op, the shapes and the attribute.
** The PyTorch fixture (torch.nn.functional.conv_transpose2d) is in
** tests/conv_transpose_spec.lua, through K.conv2d_transpose and the layer.
*/
#include "kr.h"
#include "ops.h"
#include "ops_conv.h"
#include "ops_conv_transpose.h"
#include "check.h"
#include "eval_util.h"
#include "grad_util.h"
#include "fd_check.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

static int has(const char *s, const char *sub) { return strstr(s, sub) != NULL; }

/* one case: x (N, h, w, C), kernel (KH, KW, O, C), output H x W, i = {sh, sw, dh, dw, pt, -, pl, -} */
typedef struct tcase {
  const char *name;
  int64_t x[4], w[4], H, W;
  int64_t at[8];
} tcase;

static const tcase cases[] = {
  /* the conv_autoencoder's layers: 3x3, stride 2, 'same' (TensorFlow cuts the extra row at the bottom) */
  {"3x3 stride 2 same", {2, 4, 5, 3}, {3, 3, 2, 3}, 8, 10, {2, 2, 1, 1, 0, 0, 0, 0}},
  {"3x3 stride 2 valid", {1, 3, 4, 2}, {3, 3, 2, 2}, 7, 9, {2, 2, 1, 1, 0, 0, 0, 0}},
  {"3x3 stride 2 valid, output_padding 1", {1, 3, 4, 2}, {3, 3, 2, 2}, 8, 10, {2, 2, 1, 1, 0, 0, 0, 0}},
  {"3x3 stride 1 same", {2, 4, 5, 2}, {3, 3, 3, 2}, 4, 5, {1, 1, 1, 1, 1, 0, 1, 0}},
  {"3x2 dilation 2 valid", {1, 4, 5, 2}, {3, 2, 2, 2}, 8, 7, {1, 1, 2, 2, 0, 0, 0, 0}},
  {"4x4 strides (3, 2) same", {1, 3, 3, 2}, {4, 4, 2, 2}, 9, 6, {3, 2, 1, 1, 0, 0, 1, 0}},
  {"2x2 stride 2 valid (no overlap)", {2, 3, 2, 3}, {2, 2, 4, 3}, 6, 4, {2, 2, 1, 1, 0, 0, 0, 0}},
  {"1x1 stride 3 valid, output_padding 2", {1, 2, 3, 2}, {1, 1, 3, 2}, 6, 9, {3, 3, 1, 1, 0, 0, 0, 0}},
};
#define NCASES ((int)(sizeof cases / sizeof cases[0]))

static kr_attr case_attr(const tcase *t, int relu)
{
  kr_attr a;
  memset(&a, 0, sizeof a);
  memcpy(a.i, t->at, sizeof a.i);
  a.f[KR_CONV_RELU] = relu;
  a.shape = kr_shape_make(4, (int64_t[]){t->x[0], t->H, t->W, t->w[2]});
  return a;
}

/* ---- the float64 reference: y[n, ih*sh - pt + kh*dh, iw*sw - pl + kw*dw, o] += x[n, ih, iw, c] * w[kh, kw, o, c] ---- */

typedef struct rg {
  int64_t N, h, w, C, KH, KW, O, H, W, sh, sw, dh, dw, pt, pl;
} rg;

static rg geom(const kr_shape *xs, const kr_shape *ws, int64_t H, int64_t W, const kr_attr *a)
{
  rg g = {xs->dim[0], xs->dim[1], xs->dim[2], xs->dim[3], ws->dim[0], ws->dim[1], ws->dim[2], H, W,
          a->i[0], a->i[1], a->i[2], a->i[3], a->i[4], a->i[6]};
  return g;
}

/* calls f(n, ih, iw, kh, kw, oh, ow) for every tap that lands inside the output */
#define FOR_TAPS(g, BODY)                                                                           \
  for (int64_t n = 0; n < (g)->N; n++)                                                              \
    for (int64_t ih = 0; ih < (g)->h; ih++)                                                         \
      for (int64_t iw = 0; iw < (g)->w; iw++)                                                       \
        for (int64_t kh = 0; kh < (g)->KH; kh++)                                                    \
          for (int64_t kw = 0; kw < (g)->KW; kw++) {                                                \
            int64_t oh = ih * (g)->sh - (g)->pt + kh * (g)->dh, ow = iw * (g)->sw - (g)->pl + kw * (g)->dw; \
            if (oh < 0 || oh >= (g)->H || ow < 0 || ow >= (g)->W) continue;                         \
            BODY                                                                                    \
          }

static void ref_forward(const rg *g, const float *x, const float *w, const float *b, int relu, double *y)
{
  int64_t ny = g->N * g->H * g->W * g->O;
  for (int64_t i = 0; i < ny; i++) y[i] = b ? b[i % g->O] : 0;
  FOR_TAPS(g, {
    const float *xp = x + ((n * g->h + ih) * g->w + iw) * g->C;
    double *yp = y + ((n * g->H + oh) * g->W + ow) * g->O;
    for (int64_t o = 0; o < g->O; o++)
      for (int64_t c = 0; c < g->C; c++) yp[o] += (double)xp[c] * (double)w[((kh * g->KW + kw) * g->O + o) * g->C + c];
  })
  if (relu)
    for (int64_t i = 0; i < ny; i++) y[i] = y[i] > 0 ? y[i] : 0;
}

/* dz: the output gradient, already masked by the relu */
static void ref_grads(const rg *g, const float *x, const float *w, const double *dz, double *dx, double *dw, double *db)
{
  memset(dx, 0, (size_t)(g->N * g->h * g->w * g->C) * sizeof(double));
  memset(dw, 0, (size_t)(g->KH * g->KW * g->O * g->C) * sizeof(double));
  memset(db, 0, (size_t)g->O * sizeof(double));
  for (int64_t i = 0; i < g->N * g->H * g->W * g->O; i++) db[i % g->O] += dz[i];
  FOR_TAPS(g, {
    int64_t xi = ((n * g->h + ih) * g->w + iw) * g->C;
    const double *dp = dz + ((n * g->H + oh) * g->W + ow) * g->O;
    for (int64_t o = 0; o < g->O; o++)
      for (int64_t c = 0; c < g->C; c++) {
        int64_t wi = ((kh * g->KW + kw) * g->O + o) * g->C + c;
        dx[xi + c] += dp[o] * w[wi];
        dw[wi] += dp[o] * x[xi + c];
      }
  })
}

static void compare_d(const char *name, const char *what, const kr_tensor *t, const double *want, int64_t n, double tol)
{
  int bad = 0;
  double worst = 0;
  int ok = t && kr_tensor_numel(t) == n;
  for (int64_t i = 0; ok && i < n; i++) {
    double err = fabs(KR_DATA(t)[i] - want[i]);
    if (!(err <= tol * fmax(1.0, fabs(want[i])))) {
      if (bad++ < 3) fprintf(stderr, "%s: %s[%lld] = %.9g, reference %.9g\n", name, what, (long long)i,
                             (double)KR_DATA(t)[i], want[i]);
      worst = fmax(worst, err);
    }
  }
  CHECK_MSG(ok && bad == 0, "%s: %s: %d values off (worst %.3g)%s", name, what, bad, worst, ok ? "" : ", or missing");
}

/* y, dx, dw, db of sum(y * dy) for the tensors given, on `threads` workers, through one plan */
static int run_case(kr_ctx *ctx, int threads, kr_tensor *tx, kr_tensor *tw, kr_tensor *tb, kr_tensor *tdy,
                    const kr_attr *at, kr_tensor **out)
{
  kr_set_num_threads(ctx, threads);
  for (int i = 0; i < 4; i++) out[i] = NULL;
  kr_node *x = kr_node_variable(ctx, tx), *w = kr_node_variable(ctx, tw), *b = kr_node_variable(ctx, tb);
  kr_node *dy = kr_node_const(ctx, tdy);
  kr_node *in[3] = {x, w, b};
  kr_node *y = kr_node_op(ctx, KR_OP_CONV2D_TRANSPOSE, 3, in, at);
  kr_node *p = y ? kr_op2(ctx, KR_OP_MUL, y, dy, AT(.i = {0})) : NULL;
  kr_node *loss = p ? kr_op1(ctx, KR_OP_SUM, p, AT(.i = {15, 0})) : NULL;
  kr_node *g[4] = {y, NULL, NULL, NULL};
  int st = loss ? kr_gradients(ctx, loss, 3, in, g + 1) : KR_EARG;
  if (st == KR_OK) st = kt_eval_nodes(ctx, 4, g, 1, 1, out);
  for (int i = 1; i < 4; i++) kr_node_release(g[i]);
  kr_node_release(loss);
  kr_node_release(p);
  kr_node_release(y);
  kr_node_release(x);
  kr_node_release(w);
  kr_node_release(b);
  kr_node_release(dy);
  kr_set_num_threads(ctx, 1);
  return st == KR_OK;
}

/* every case, linear and with the relu, against the reference; 1 and 2 threads give the same bits */
static void test_reference(kr_ctx *ctx)
{
  for (int k = 0; k < NCASES; k++)
    for (int relu = 0; relu <= 1; relu++) {
      const tcase *t = &cases[k];
      char name[160];
      snprintf(name, sizeof name, "%s%s", t->name, relu ? " + bias, relu" : " + bias");
      kr_attr at = case_attr(t, relu);
      kr_shape xs = kr_shape_make(4, t->x), ws = kr_shape_make(4, t->w), bs = kr_shape_make(1, &t->w[2]);
      kr_shape ys = kr_shape_make(4, (int64_t[]){t->x[0], t->H, t->W, t->w[2]});
      kr_tensor *tx = gu_t_uniform(ctx, xs, -1, 1, NOKINKS, 0), *tw = gu_t_uniform(ctx, ws, -1, 1, NOKINKS, 0);
      kr_tensor *tb = gu_t_uniform(ctx, bs, -0.5, 0.5, NOKINKS, 0), *tdy = gu_t_uniform(ctx, ys, -1, 1, NOKINKS, 0);
      rg g = geom(&xs, &ws, t->H, t->W, &at);
      int64_t ny = kr_numel(&ys), nx = kr_numel(&xs), nw = kr_numel(&ws);
      double *y = malloc((size_t)ny * sizeof(double)), *dz = malloc((size_t)ny * sizeof(double));
      double *dx = malloc((size_t)nx * sizeof(double)), *dw = malloc((size_t)nw * sizeof(double));
      double *db = malloc((size_t)g.O * sizeof(double));
      ref_forward(&g, KR_DATA(tx), KR_DATA(tw), KR_DATA(tb), relu, y);
      for (int64_t i = 0; i < ny; i++) dz[i] = relu && y[i] <= 0 ? 0 : KR_DATA(tdy)[i];
      ref_grads(&g, KR_DATA(tx), KR_DATA(tw), dz, dx, dw, db);
      kr_tensor *one[4], *two[4];
      CHECK_MSG(run_case(ctx, 1, tx, tw, tb, tdy, &at, one), "%s: %s", name, kr_errmsg(ctx));
      CHECK_MSG(run_case(ctx, 2, tx, tw, tb, tdy, &at, two), "%s (2 threads): %s", name, kr_errmsg(ctx));
      static const char *const what[4] = {"y", "dx", "dw", "db"};
      const double *want[4] = {y, dx, dw, db};
      int64_t len[4] = {ny, nx, nw, g.O};
      for (int i = 0; i < 4; i++) {
        compare_d(name, what[i], one[i], want[i], len[i], 1e-5);
        CHECK_MSG(one[i] && two[i] && memcmp(KR_DATA(one[i]), KR_DATA(two[i]), (size_t)len[i] * sizeof(float)) == 0,
                  "%s: %s differs between 1 and 2 threads", name, what[i]);
        kr_tensor_release(one[i]);
        kr_tensor_release(two[i]);
      }
      free(y);
      free(dz);
      free(dx);
      free(dw);
      free(db);
      kr_tensor_release(tx);
      kr_tensor_release(tw);
      kr_tensor_release(tb);
      kr_tensor_release(tdy);
    }
  CHECK(kr_mem_in_use(ctx) == 0);
}

/* ---- larger problems: threaded paths, every lowering ---- */

static const tcase big[] = {
  /* the conv_autoencoder's second transposed layer, a few samples */
  {"(6,14,14,64) -> 28x28x32 stride 2 same", {6, 14, 14, 64}, {3, 3, 32, 64}, 28, 28, {2, 2, 1, 1, 0, 0, 0, 0}},
  /* stride 1: the forward's lowerings on the transposed geometry (Winograd, direct, im2col) */
  {"(3,6,14,32) -> 6x14x64 stride 1 same", {3, 6, 14, 32}, {3, 3, 64, 32}, 6, 14, {1, 1, 1, 1, 1, 0, 1, 0}},
  {"(2,5,13,48) -> 7x15x16 stride 1 valid", {2, 5, 13, 48}, {3, 3, 16, 48}, 7, 15, {1, 1, 1, 1, 0, 0, 0, 0}},
  {"(2,9,9,16) -> 13x13x16 dilation 2 valid", {2, 9, 9, 16}, {3, 3, 16, 16}, 13, 13, {1, 1, 2, 2, 0, 0, 0, 0}},
  /* strides > 1, the direct kernel's tile widths and edge pixels: 16, 48, 64 channels out */
  {"(2,5,7,8) -> 10x14x16 stride 2 same", {2, 5, 7, 8}, {3, 3, 16, 8}, 10, 14, {2, 2, 1, 1, 0, 0, 0, 0}},
  {"(1,4,9,5) -> 16x29x48 5x4 strides 3 valid, output_padding (2, 1)", {1, 4, 9, 5}, {5, 4, 48, 5}, 16, 29,
   {3, 3, 1, 1, 0, 0, 0, 0}},
  {"(2,3,4,8) -> 9x12x64 2x2 strides 3 (phases without taps)", {2, 3, 4, 8}, {2, 2, 64, 8}, 9, 12,
   {3, 3, 1, 1, 0, 0, 0, 0}},
  {"(2,6,26,24) -> 12x52x32 4x4 stride 2 same", {2, 6, 26, 24}, {4, 4, 32, 24}, 12, 52, {2, 2, 1, 1, 1, 0, 1, 0}},
};

static void test_lowerings(kr_ctx *ctx)
{
  int ran[KR_CONV_ALGO_COUNT] = {0};
  for (size_t k = 0; k < sizeof big / sizeof big[0]; k++) {
    const tcase *t = &big[k];
    kr_attr at = case_attr(t, 1);
    kr_shape xs = kr_shape_make(4, t->x), ws = kr_shape_make(4, t->w), bs = kr_shape_make(1, &t->w[2]);
    kr_tensor *tx = gu_t_uniform(ctx, xs, -1, 1, NOKINKS, 0), *tw = gu_t_uniform(ctx, ws, -0.3, 0.3, NOKINKS, 0);
    kr_tensor *tb = gu_t_uniform(ctx, bs, -0.5, 0.5, NOKINKS, 0);
    rg g = geom(&xs, &ws, t->H, t->W, &at);
    int64_t ny = g.N * g.H * g.W * g.O;
    double *y = malloc((size_t)ny * sizeof(double));
    ref_forward(&g, KR_DATA(tx), KR_DATA(tw), KR_DATA(tb), 1, y);
    kr_node *x = kr_node_const(ctx, tx), *w = kr_node_const(ctx, tw), *b = kr_node_const(ctx, tb);
    kr_node *in[3] = {x, w, b};
    kr_node *n = kr_node_op(ctx, KR_OP_CONV2D_TRANSPOSE, 3, in, &at);
    CHECK_MSG(n != NULL, "%s: %s", t->name, kr_errmsg(ctx));
    for (int algo = KR_CONV_ALGO_RULE; n && algo < KR_CONV_ALGO_COUNT; algo++) {
      if (algo != KR_CONV_ALGO_RULE && !kr_conv_algo_valid(n, algo)) continue;
      ran[algo] = 1;
      kr_conv_force_algo(ctx, algo);
      kr_tensor *one = NULL, *two = NULL;
      char name[200];
      snprintf(name, sizeof name, "%s by %s", t->name, kr_conv_algo_name(algo));
      kr_set_num_threads(ctx, 1);
      one = kr_eval(ctx, n);
      kr_set_num_threads(ctx, 2);
      two = kr_eval(ctx, n);
      kr_set_num_threads(ctx, 1);
      /* float32 sums of up to 576 products of O(0.3), Winograd's transforms: ~1e-5 */
      compare_d(name, "y", one, y, ny, 1e-4);
      CHECK_MSG(one && two && memcmp(KR_DATA(one), KR_DATA(two), (size_t)ny * sizeof(float)) == 0,
                "%s: differs between 1 and 2 threads", name);
      kr_tensor_release(one);
      kr_tensor_release(two);
    }
    kr_conv_force_algo(ctx, KR_CONV_ALGO_RULE);
    kr_node_release(n);
    kr_node_release(x);
    kr_node_release(w);
    kr_node_release(b);
    kr_tensor_release(tx);
    kr_tensor_release(tw);
    kr_tensor_release(tb);
    free(y);
  }
  CHECK_MSG(ran[KR_CONV_ALGO_COL2IM] && ran[KR_CONV_ALGO_IM2COL] && ran[KR_CONV_ALGO_WINOGRAD],
            "lowerings run: col2im %d, im2col %d, winograd %d", ran[KR_CONV_ALGO_COL2IM], ran[KR_CONV_ALGO_IM2COL],
            ran[KR_CONV_ALGO_WINOGRAD]);
  if (__builtin_cpu_supports("avx512f")) CHECK_MSG(ran[KR_CONV_ALGO_DIRECT], "the direct lowering never ran");
  CHECK(kr_mem_in_use(ctx) == 0);
}

/* conv2d_grad_input at strides > 1 by the direct kernel, its dy masked by
** the conv's relu (f0) and its result by the relu below (f3), against col2im */
static void test_masked_input_gradient(kr_ctx *ctx)
{
  gcase c;
  gu_begin(&c, ctx, "masked input gradient", KR_OP_CONV2D);
  kr_node *x = cst_u(&c, S(3, 9, 11, 16), -1, 1), *w = cst_u(&c, S(3, 3, 16, 32), -0.3, 0.3);
  kr_node *dy = cst_u(&c, S(3, 5, 6, 32), -1, 1);
  kr_attr at = {.i = {2, 2, 1, 1, 1, 1, 1, 1}, .f = {1}};
  kr_node *y = opn(&c, KR_OP_CONV2D, 2, (kr_node *[]){x, w}, &at);
  kr_attr am = at;
  am.f[KR_CONV_MASK_X] = 1;
  kr_node *gi = y ? opn(&c, KR_OP_CONV2D_GRAD_INPUT, 4, (kr_node *[]){dy, w, x, y}, &am) : NULL;
  CHECK_MSG(gi != NULL, "masked input gradient: %s", kr_errmsg(ctx));
  if (gi) {
    int direct = kr_conv_algo_valid(gi, KR_CONV_ALGO_DIRECT);
    CHECK(direct == (__builtin_cpu_supports("avx512f") != 0));
    CHECK(kr_conv_algo_rule(gi) == (direct ? KR_CONV_ALGO_DIRECT : KR_CONV_ALGO_COL2IM));
    kr_conv_force_algo(ctx, KR_CONV_ALGO_COL2IM);
    kr_tensor *a = kr_eval(ctx, gi);
    kr_conv_force_algo(ctx, KR_CONV_ALGO_DIRECT);
    kr_set_num_threads(ctx, 2);
    kr_tensor *b = kr_eval(ctx, gi);
    kr_set_num_threads(ctx, 1);
    kr_conv_force_algo(ctx, KR_CONV_ALGO_RULE);
    int same = a && b, zeros = 0;
    for (int64_t i = 0; same && i < kr_tensor_numel(a); i++) {
      if (fabsf(KR_DATA(a)[i] - KR_DATA(b)[i]) > 1e-5f * fmaxf(1.0f, fabsf(KR_DATA(a)[i]))) same = 0;
      zeros += KR_DATA(b)[i] == 0.0f;
    }
    CHECK_MSG(same, "masked input gradient: direct and col2im differ");
    /* both masks act: about half the inputs are <= 0, and half of the rest see no dy through the relu */
    CHECK_MSG(a && zeros > kr_tensor_numel(a) / 3, "masked input gradient: %d zeros", zeros);
    kr_tensor_release(a);
    kr_tensor_release(b);
  }
  gu_end(&c);
}

/* conv2d at strides > 1 by the direct AVX-512 kernel (avx_conv in
** kernels/conv.c: the transposed layers' input gradients, strided Conv2D
** layers), bias and relu, against float64; 1 and 2 threads the same bits */
static void test_strided_forward(kr_ctx *ctx)
{
  static const struct {
    const char *name;
    int64_t x[4], w[4], at[8];
  } cs[] = {
    {"conv2d (2,13,27,8) 3x3x32 stride 2 same", {2, 13, 27, 8}, {3, 3, 8, 32}, {2, 2, 1, 1, 1, 1, 1, 1}},
    {"conv2d (2,28,28,32) 3x3x64 stride 2 same", {2, 28, 28, 32}, {3, 3, 32, 64}, {2, 2, 1, 1, 0, 1, 0, 1}},
    {"conv2d (1,11,20,5) 4x4x48 strides (3, 2) valid", {1, 11, 20, 5}, {4, 4, 5, 48}, {3, 2, 1, 1, 0, 0, 0, 0}},
    {"conv2d (3,14,14,64) 3x3x64 stride 2 same (7 columns)", {3, 14, 14, 64}, {3, 3, 64, 64}, {2, 2, 1, 1, 0, 1, 0, 1}},
    {"conv2d (2,9,40,16) 2x3x16 strides (1, 3) valid", {2, 9, 40, 16}, {2, 3, 16, 16}, {1, 3, 1, 1, 0, 0, 0, 0}},
  };
  int avx512 = __builtin_cpu_supports("avx512f") != 0;
  for (size_t k = 0; k < sizeof cs / sizeof cs[0]; k++) {
    kr_attr at;
    memset(&at, 0, sizeof at);
    memcpy(at.i, cs[k].at, sizeof at.i);
    at.f[KR_CONV_RELU] = 1;
    kr_shape xs = kr_shape_make(4, cs[k].x), ws = kr_shape_make(4, cs[k].w), bs = kr_shape_make(1, &cs[k].w[3]);
    kr_tensor *tx = gu_t_uniform(ctx, xs, -1, 1, NOKINKS, 0), *tw = gu_t_uniform(ctx, ws, -0.3, 0.3, NOKINKS, 0);
    kr_tensor *tb = gu_t_uniform(ctx, bs, -0.5, 0.5, NOKINKS, 0);
    kr_node *x = kr_node_const(ctx, tx), *w = kr_node_const(ctx, tw), *b = kr_node_const(ctx, tb);
    kr_node *y = kr_node_op(ctx, KR_OP_CONV2D, 3, (kr_node *[]){x, w, b}, &at);
    CHECK_MSG(y != NULL, "%s: %s", cs[k].name, kr_errmsg(ctx));
    if (y) {
      CHECK_MSG(kr_conv_algo_valid(y, KR_CONV_ALGO_DIRECT) == avx512, "%s: direct valid", cs[k].name);
      const int64_t *d = y->shape.dim;
      int64_t N = d[0], Ho = d[1], Wo = d[2], O = d[3], H = cs[k].x[1], W = cs[k].x[2], C = cs[k].x[3];
      int64_t KH = cs[k].w[0], KW = cs[k].w[1], ny = kr_numel(&y->shape);
      double *ref = malloc((size_t)ny * sizeof(double));
      const float *xv = KR_DATA(tx), *wv = KR_DATA(tw), *bv = KR_DATA(tb);
      for (int64_t n = 0; n < N; n++)
        for (int64_t oh = 0; oh < Ho; oh++)
          for (int64_t ow = 0; ow < Wo; ow++)
            for (int64_t o = 0; o < O; o++) {
              double sum = bv[o];
              for (int64_t kh = 0; kh < KH; kh++)
                for (int64_t kw = 0; kw < KW; kw++) {
                  int64_t ih = oh * at.i[0] - at.i[4] + kh, iw = ow * at.i[1] - at.i[6] + kw;
                  if (ih < 0 || ih >= H || iw < 0 || iw >= W) continue;
                  for (int64_t c = 0; c < C; c++)
                    sum += (double)xv[((n * H + ih) * W + iw) * C + c] * wv[((kh * KW + kw) * C + c) * O + o];
                }
              ref[((n * Ho + oh) * Wo + ow) * O + o] = sum > 0 ? sum : 0;
            }
      kr_conv_force_algo(ctx, avx512 ? KR_CONV_ALGO_DIRECT : KR_CONV_ALGO_RULE);
      kr_tensor *one = kr_eval(ctx, y);
      kr_set_num_threads(ctx, 2);
      kr_tensor *two = kr_eval(ctx, y);
      kr_set_num_threads(ctx, 1);
      kr_conv_force_algo(ctx, KR_CONV_ALGO_RULE);
      compare_d(cs[k].name, "y", one, ref, ny, 1e-4);
      CHECK_MSG(one && two && memcmp(KR_DATA(one), KR_DATA(two), (size_t)ny * sizeof(float)) == 0,
                "%s: differs between 1 and 2 threads", cs[k].name);
      kr_tensor_release(one);
      kr_tensor_release(two);
      free(ref);
    }
    kr_node_release(y);
    kr_node_release(x);
    kr_node_release(w);
    kr_node_release(b);
    kr_tensor_release(tx);
    kr_tensor_release(tw);
    kr_tensor_release(tb);
  }
  /* the gradients through it, by finite differences (the forward run by the direct kernel) */
  kr_conv_force_algo(ctx, avx512 ? KR_CONV_ALGO_DIRECT : KR_CONV_ALGO_RULE);
  gcase c;
  gu_begin(&c, ctx, "conv2d strides (2, 3) direct: finite differences", KR_OP_CONV2D);
  kr_node *in[3] = {var_u(&c, S(1, 5, 40, 3), -1, 1), var_u(&c, S(3, 2, 3, 16), -1, 1), var_u(&c, S(16), -0.5, 0.5)};
  kr_node *y = opn(&c, KR_OP_CONV2D, 3, in, AT(.i = {2, 3, 1, 1, 1, 1, 0, 1}));
  fd_opts o = {.points = 200, .helper = -1};
  if (y) fd_check_outputs(&c, 1, &y, NULL, &o);
  gu_end(&c);
  kr_conv_force_algo(ctx, KR_CONV_ALGO_RULE);
}

/* the thin direct kernels (kernels/conv_thin.c, O <= 4 filters: the decoder's
** last layer): forward against float64, the kernel gradient (and its bias
** row) against im2col's, 1 and 2 threads the same bits; finite differences */
static void test_thin(kr_ctx *ctx)
{
  static const struct {
    const char *name;
    int64_t x[4], w[4], at[8];
    int relu;
  } cs[] = {
    {"conv2d (3,28,28,32) 3x3x1 same (the decoder's last layer)", {3, 28, 28, 32}, {3, 3, 32, 1}, {1, 1, 1, 1, 1, 1, 1, 1}, 0},
    {"conv2d (2,9,11,12) 3x2x3 stride 2 relu", {2, 9, 11, 12}, {3, 2, 12, 3}, {2, 2, 1, 1, 1, 1, 0, 1}, 1},
    {"conv2d (2,10,9,40) 3x3x4 dilation 2 same", {2, 10, 9, 40}, {3, 3, 40, 4}, {1, 1, 2, 2, 2, 2, 2, 2}, 0},
  };
  int avx512 = __builtin_cpu_supports("avx512f") != 0;
  for (size_t k = 0; k < sizeof cs / sizeof cs[0]; k++) {
    kr_attr at;
    memset(&at, 0, sizeof at);
    memcpy(at.i, cs[k].at, sizeof at.i);
    at.f[KR_CONV_RELU] = cs[k].relu;
    kr_shape xs = kr_shape_make(4, cs[k].x), ws = kr_shape_make(4, cs[k].w), bs = kr_shape_make(1, &cs[k].w[3]);
    kr_tensor *tx = gu_t_uniform(ctx, xs, -1, 1, NOKINKS, 0), *tw = gu_t_uniform(ctx, ws, -0.3, 0.3, NOKINKS, 0);
    kr_tensor *tb = gu_t_uniform(ctx, bs, -0.5, 0.5, NOKINKS, 0);
    kr_node *x = kr_node_const(ctx, tx), *w = kr_node_const(ctx, tw), *b = kr_node_const(ctx, tb);
    kr_node *y = kr_node_op(ctx, KR_OP_CONV2D, 3, (kr_node *[]){x, w, b}, &at);
    kr_tensor *tdy = y ? gu_t_uniform(ctx, y->shape, -1, 1, NOKINKS, 0) : NULL;
    kr_node *dy = tdy ? kr_node_const(ctx, tdy) : NULL;
    kr_attr ab = at;
    ab.f[KR_CONV_WITH_BIAS] = 1;
    kr_node *gk = dy ? kr_node_op(ctx, KR_OP_CONV2D_GRAD_KERNEL, 3 + cs[k].relu, (kr_node *[]){dy, x, w, y}, &ab) : NULL;
    CHECK_MSG(y && gk, "%s: %s", cs[k].name, kr_errmsg(ctx));
    if (y && gk) {
      CHECK_MSG(kr_conv_algo_valid(y, KR_CONV_ALGO_DIRECT) == avx512 &&
                kr_conv_algo_valid(gk, KR_CONV_ALGO_DIRECT) == avx512, "%s: direct valid", cs[k].name);
      const int64_t *d = y->shape.dim;
      int64_t N = d[0], Ho = d[1], Wo = d[2], O = d[3], H = cs[k].x[1], W = cs[k].x[2], C = cs[k].x[3];
      int64_t KH = cs[k].w[0], KW = cs[k].w[1], ny = kr_numel(&y->shape);
      double *ref = malloc((size_t)ny * sizeof(double));
      const float *xv = KR_DATA(tx), *wv = KR_DATA(tw), *bv = KR_DATA(tb);
      for (int64_t n = 0; n < N; n++)
        for (int64_t oh = 0; oh < Ho; oh++)
          for (int64_t ow = 0; ow < Wo; ow++)
            for (int64_t o = 0; o < O; o++) {
              double sum = bv[o];
              for (int64_t kh = 0; kh < KH; kh++)
                for (int64_t kw = 0; kw < KW; kw++) {
                  int64_t ih = oh * at.i[0] - at.i[4] + kh * at.i[2], iw = ow * at.i[1] - at.i[6] + kw * at.i[3];
                  if (ih < 0 || ih >= H || iw < 0 || iw >= W) continue;
                  for (int64_t c = 0; c < C; c++)
                    sum += (double)xv[((n * H + ih) * W + iw) * C + c] * wv[((kh * KW + kw) * C + c) * O + o];
                }
              ref[((n * Ho + oh) * Wo + ow) * O + o] = cs[k].relu && sum <= 0 ? 0 : sum;
            }
      kr_conv_force_algo(ctx, KR_CONV_ALGO_IM2COL);
      kr_tensor *gk_ref = kr_eval(ctx, gk);
      kr_conv_force_algo(ctx, avx512 ? KR_CONV_ALGO_DIRECT : KR_CONV_ALGO_RULE);
      kr_tensor *one = kr_eval(ctx, y), *gk1 = kr_eval(ctx, gk);
      kr_set_num_threads(ctx, 2);
      kr_tensor *two = kr_eval(ctx, y), *gk2 = kr_eval(ctx, gk);
      kr_set_num_threads(ctx, 1);
      kr_conv_force_algo(ctx, KR_CONV_ALGO_RULE);
      compare_d(cs[k].name, "y", one, ref, ny, 1e-5);
      CHECK_MSG(one && two && memcmp(KR_DATA(one), KR_DATA(two), (size_t)ny * sizeof(float)) == 0,
                "%s: y differs between 1 and 2 threads", cs[k].name);
      int64_t ng = gk_ref ? kr_tensor_numel(gk_ref) : 0;
      double *gref = malloc((size_t)(ng ? ng : 1) * sizeof(double));
      for (int64_t i = 0; i < ng; i++) gref[i] = KR_DATA(gk_ref)[i];
      compare_d(cs[k].name, "dw and db (against im2col)", gk1, gref, ng, 1e-4);
      CHECK_MSG(gk1 && gk2 && ng && memcmp(KR_DATA(gk1), KR_DATA(gk2), (size_t)ng * sizeof(float)) == 0,
                "%s: dw differs between 1 and 2 threads", cs[k].name);
      free(gref);
      free(ref);
      kr_tensor_release(one);
      kr_tensor_release(two);
      kr_tensor_release(gk_ref);
      kr_tensor_release(gk1);
      kr_tensor_release(gk2);
    }
    kr_node_release(gk);
    kr_node_release(dy);
    kr_node_release(y);
    kr_node_release(x);
    kr_node_release(w);
    kr_node_release(b);
    kr_tensor_release(tdy);
    kr_tensor_release(tx);
    kr_tensor_release(tw);
    kr_tensor_release(tb);
  }
  /* the gradients by finite differences, every conv pass run by the direct kernels */
  kr_conv_force_algo(ctx, avx512 ? KR_CONV_ALGO_DIRECT : KR_CONV_ALGO_RULE);
  gcase c;
  gu_begin(&c, ctx, "conv2d 2 filters, direct (thin): finite differences", KR_OP_CONV2D);
  kr_node *in[3] = {var_u(&c, S(2, 5, 6, 10), -1, 1), var_u(&c, S(3, 3, 10, 2), -1, 1), var_u(&c, S(2), -0.5, 0.5)};
  kr_node *y = opn(&c, KR_OP_CONV2D, 3, in, AT(.i = {1, 2, 1, 1, 1, 1, 1, 1}));
  fd_opts o = {.points = 200, .helper = -1};
  if (y) fd_check_outputs(&c, 1, &y, NULL, &o);
  gu_end(&c);
  kr_conv_force_algo(ctx, KR_CONV_ALGO_RULE);
  CHECK(kr_mem_in_use(ctx) == 0);
}

/* the autotuner times the op's forward as a pass of its own */
static void test_autotune(kr_ctx *ctx)
{
  kr_conv_autotune_clear(ctx);
  const tcase *t = &big[1];
  kr_attr at = case_attr(t, 0);
  gcase c;
  gu_begin(&c, ctx, "autotune", KR_OP_CONV2D_TRANSPOSE);
  kr_node *in[2] = {cst_u(&c, kr_shape_make(4, t->x), -1, 1), cst_u(&c, kr_shape_make(4, t->w), -1, 1)};
  kr_node *y = opn(&c, KR_OP_CONV2D_TRANSPOSE, 2, in, &at);
  kr_tensor *a = y ? kr_eval(ctx, y) : NULL;
  CHECK(a != NULL);
  const kr_conv_tuned *e = kr_conv_autotune_count(ctx) >= 1 ? kr_conv_autotune_entry(ctx, 0) : NULL;
  CHECK_MSG(e && e->key[0] == KR_OP_CONV2D_TRANSPOSE && e->ncand >= 3, "autotune entry: op %lld, %d candidates",
            e ? (long long)e->key[0] : -1LL, e ? e->ncand : -1);
  int timed = 0;
  for (int i = 0; e && i < e->ncand; i++) timed += e->ms[i] >= 0;
  CHECK(e && timed == e->ncand);
  CHECK(strcmp(kr_conv_pass_name(KR_OP_CONV2D_TRANSPOSE), "transposed") == 0);
  kr_tensor_release(a);
  gu_end(&c);
  kr_conv_autotune_clear(ctx);
}

/* ---- finite differences ---- */

/* a transposed conv with the relu whose pre-activations all stay >= 0.05 away from 0 */
static kr_node *away_from_kink(gcase *c, kr_shape xs, kr_shape ws, const kr_attr *at)
{
  kr_shape bs = kr_shape_make(1, &ws.dim[2]);
  for (int tries = 0; tries < 2000; tries++) {
    kr_tensor *tx = gu_t_uniform(c->ctx, xs, -1, 1, NOKINKS, 0), *tw = gu_t_uniform(c->ctx, ws, -1, 1, NOKINKS, 0);
    kr_tensor *tb = gu_t_uniform(c->ctx, bs, -0.5, 0.5, NOKINKS, 0);
    kr_node *x = kr_node_const(c->ctx, tx), *w = kr_node_const(c->ctx, tw), *b = kr_node_const(c->ctx, tb);
    kr_node *in[3] = {x, w, b};
    kr_attr lin = *at;
    lin.f[KR_CONV_RELU] = 0;
    kr_node *z = kr_node_op(c->ctx, KR_OP_CONV2D_TRANSPOSE, 3, in, &lin);
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
      kr_node *vin[3] = {gu_leaf(c, tx, 1), gu_leaf(c, tw, 1), gu_leaf(c, tb, 1)};
      return opn(c, KR_OP_CONV2D_TRANSPOSE, 3, vin, at);
    }
    kr_tensor_release(tx);
    kr_tensor_release(tw);
    kr_tensor_release(tb);
  }
  CHECK_MSG(0, "%s: no inputs away from the kink", c->name);
  return NULL;
}

static void test_fd(kr_ctx *ctx)
{
  int seen[KR_OP_COUNT] = {0};
  for (int k = 0; k < NCASES; k++) {
    const tcase *t = &cases[k];
    for (int bias = 0; bias <= 1; bias++) {
      char name[160];
      snprintf(name, sizeof name, "fd %s%s", t->name, bias ? " + bias" : "");
      gcase c;
      gu_begin(&c, ctx, name, KR_OP_CONV2D_TRANSPOSE);
      kr_attr at = case_attr(t, 0);
      kr_node *in[3] = {var_u(&c, kr_shape_make(4, t->x), -1, 1), var_u(&c, kr_shape_make(4, t->w), -1, 1),
                        bias ? var_u(&c, kr_shape_make(1, &t->w[2]), -0.5, 0.5) : NULL};
      kr_node *y = opn(&c, KR_OP_CONV2D_TRANSPOSE, bias ? 3 : 2, in, &at);
      fd_opts o = {.points = 300, .seen = seen, .helper = KR_OP_CONV2D_GRAD_KERNEL};
      if (y) fd_check_outputs(&c, 1, &y, NULL, &o);
      gu_end(&c);
    }
  }
  CHECK_MSG(seen[KR_OP_CONV2D] && seen[KR_OP_CONV2D_GRAD_KERNEL], "the gradients are conv2d and conv2d_grad_kernel");
  /* the fused relu: small outputs, so that inputs away from the kink are found */
  static const tcase relu_cases[] = {
    {"relu 2x2 stride 2 valid", {1, 2, 2, 2}, {2, 2, 2, 2}, 4, 4, {2, 2, 1, 1, 0, 0, 0, 0}},
    {"relu 3x3 stride 2 same", {1, 2, 2, 2}, {3, 3, 1, 2}, 4, 4, {2, 2, 1, 1, 0, 0, 0, 0}},
    {"relu 2x2 stride 1 valid", {1, 2, 2, 2}, {2, 2, 1, 2}, 3, 3, {1, 1, 1, 1, 0, 0, 0, 0}},
  };
  for (size_t k = 0; k < sizeof relu_cases / sizeof relu_cases[0]; k++) {
    const tcase *t = &relu_cases[k];
    gcase c;
    gu_begin(&c, ctx, t->name, KR_OP_CONV2D_TRANSPOSE);
    kr_attr at = case_attr(t, 1);
    kr_node *y = away_from_kink(&c, kr_shape_make(4, t->x), kr_shape_make(4, t->w), &at);
    fd_opts o = {.seen = seen, .helper = KR_OP_RELU_GRAD};
    if (y) fd_check_outputs(&c, 1, &y, NULL, &o);
    gu_end(&c);
  }
  /* the relu's mask applied by the input gradient of a conv that reads the output */
  {
    const tcase *t = &relu_cases[0];
    gcase c;
    gu_begin(&c, ctx, "relu, then a conv2d (the mask in its input gradient)", KR_OP_CONV2D_TRANSPOSE);
    kr_attr at = case_attr(t, 1);
    kr_node *y = away_from_kink(&c, kr_shape_make(4, t->x), kr_shape_make(4, t->w), &at);
    kr_node *k2 = var_u(&c, S(2, 2, 2, 3), -1, 1);
    kr_node *z = y ? op2(&c, KR_OP_CONV2D, y, k2, AT(.i = {1, 1, 1, 1, 0, 1, 0, 1})) : NULL;
    fd_opts o = {.seen = seen, .helper = KR_OP_CONV2D_GRAD_INPUT};
    if (z) fd_check_outputs(&c, 1, &z, NULL, &o);
    gu_end(&c);
  }
  CHECK(kr_mem_in_use(ctx) == 0);
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
  gu_begin(&c, ctx, "errors", KR_OP_CONV2D_TRANSPOSE);
  kr_node *x = cst_zeros(&c, S(2, 4, 4, 3)), *w = cst_zeros(&c, S(3, 3, 5, 3)), *x3 = cst_zeros(&c, S(2, 4, 3));
  kr_node *w_bad = cst_zeros(&c, S(3, 3, 5, 2)), *b4 = cst_zeros(&c, S(4));
  kr_node *in[3] = {x, w, NULL};
  kr_shape out = kr_shape_make(4, (int64_t[]){2, 8, 8, 5});
  kr_attr at = {.i = {2, 2, 1, 1, 0, 0, 0, 0}, .shape = out};
  kr_node *ok = kr_node_op(ctx, KR_OP_CONV2D_TRANSPOSE, 2, in, &at);
  CHECK_MSG(ok && ok->shape.dim[1] == 8 && ok->attr.i[KR_CONV_PAD_BOTTOM] == 1 && ok->attr.i[KR_CONV_PAD_RIGHT] == 1,
            "(2,4,4,3) -> 8x8 stride 2 'same': %s", ok ? "pad_bottom/pad_right not 1" : kr_errmsg(ctx));
  kr_node_release(ok);
  kr_attr a2 = at;
  a2.shape.dim[1] = 10;   /* 'valid' with an output padding of 1 */
  ok = kr_node_op(ctx, KR_OP_CONV2D_TRANSPOSE, 2, in, &a2);
  CHECK_MSG(ok && ok->attr.i[KR_CONV_PAD_BOTTOM] == 0, "10 rows: %s", ok ? "pad_bottom not 0" : kr_errmsg(ctx));
  kr_node_release(ok);
  a2.shape.dim[1] = 11;
  expect_fail(ctx, "rows", kr_node_op(ctx, KR_OP_CONV2D_TRANSPOSE, 2, in, &a2),
              "conv2d_transpose: an output of 11 rows does not come from the input's 4 with stride 2", NULL);
  a2 = at;
  a2.shape.dim[2] = 6;   /* only with a last window wholly in the padding */
  expect_fail(ctx, "columns", kr_node_op(ctx, KR_OP_CONV2D_TRANSPOSE, 2, in, &a2), "an output of 6 columns", NULL);
  a2 = at;
  a2.shape.dim[3] = 4;
  expect_fail(ctx, "channels", kr_node_op(ctx, KR_OP_CONV2D_TRANSPOSE, 2, in, &a2),
              "the output shape (2, 8, 8, 4) has 4 channels, the kernel (3, 3, 5, 3) gives 5", NULL);
  a2 = at;
  a2.shape.ndim = 3;
  expect_fail(ctx, "output rank", kr_node_op(ctx, KR_OP_CONV2D_TRANSPOSE, 2, in, &a2),
              "the output shape (attribute 'shape') must have 4 entries", NULL);
  a2 = at;
  a2.i[KR_CONV_PAD_TOP] = 3;
  expect_fail(ctx, "cut", kr_node_op(ctx, KR_OP_CONV2D_TRANSPOSE, 2, in, &a2), "pad_top must be in [0, 2]", "got 3");
  a2 = at;
  a2.i[KR_CONV_STRIDE_W] = 0;
  expect_fail(ctx, "stride", kr_node_op(ctx, KR_OP_CONV2D_TRANSPOSE, 2, in, &a2), "strides and dilations", NULL);
  a2 = at;
  a2.f[KR_CONV_RELU] = 0.5;
  expect_fail(ctx, "relu", kr_node_op(ctx, KR_OP_CONV2D_TRANSPOSE, 2, in, &a2), "fused activation", NULL);
  in[1] = w_bad;
  expect_fail(ctx, "in channels", kr_node_op(ctx, KR_OP_CONV2D_TRANSPOSE, 2, in, &at),
              "the kernel (3, 3, 5, 2) takes 2 input channels", "the input (2, 4, 4, 3) has 3");
  in[0] = x3;
  in[1] = w;
  expect_fail(ctx, "rank", kr_node_op(ctx, KR_OP_CONV2D_TRANSPOSE, 2, in, &at), "expected an input of rank 4", NULL);
  in[0] = x;
  in[2] = b4;
  expect_fail(ctx, "bias", kr_node_op(ctx, KR_OP_CONV2D_TRANSPOSE, 3, in, &at), "the bias has shape (4,), expected (5,)",
              NULL);
  expect_fail(ctx, "inputs", kr_node_op(ctx, KR_OP_CONV2D_TRANSPOSE, 1, in, &at), "expected 2 or 3 inputs", NULL);
  gu_end(&c);
}

/* a training plan over a Conv2DTranspose-like graph allocates nothing per run */
static void test_no_alloc(kr_ctx *ctx)
{
  for (int threads = 1; threads <= 2; threads++) {
    kr_set_num_threads(ctx, threads);
    gcase c;
    gu_begin(&c, ctx, "no allocation in runs", KR_OP_CONV2D_TRANSPOSE);
    kr_node *x = gu_keep(&c, kr_node_input(ctx, &(kr_shape){.ndim = 4, .dim = {KR_BATCH, 7, 7, 16}}));
    kr_node *w = var_u(&c, S(3, 3, 8, 16), -0.3, 0.3), *b = var_u(&c, S(8), -0.1, 0.1);
    kr_attr at = {.i = {2, 2, 1, 1, 0, 0, 0, 0}, .f = {1}, .shape = {.ndim = 4, .dim = {KR_BATCH, 14, 14, 8}}};
    kr_node *y = x ? opn(&c, KR_OP_CONV2D_TRANSPOSE, 3, (kr_node *[]){x, w, b}, &at) : NULL;
    kr_node *loss = y ? op1(&c, KR_OP_SUM, y, AT(.i = {15, 0})) : NULL;
    kr_node *g[2] = {NULL, NULL};
    int st = loss ? kr_gradients(ctx, loss, 2, (kr_node *[]){w, b}, g) : KR_EARG;
    CHECK_MSG(st == KR_OK, "gradients: %s", kr_errmsg(ctx));
    if (st == KR_OK) {
      kr_node *outs[3] = {loss, g[0], g[1]};
      kr_plan *p = kr_plan_new(ctx, 3, outs, 1, &x, 6, 1);
      CHECK_MSG(p != NULL, "plan: %s", kr_errmsg(ctx));
      if (p) {
        float *in = kr_plan_input(p, 0);
        for (int i = 0; i < 6 * 7 * 7 * 16; i++) in[i] = (float)((i * 37) % 101) / 101.0f - 0.4f;
        CHECK(kr_plan_run(p, 6) == KR_OK);
        uint64_t before = kr_mem_allocs(ctx);
        for (int i = 0; i < 3; i++) CHECK(kr_plan_run(p, 6) == KR_OK);
        CHECK(kr_plan_run(p, 5) == KR_OK);
        CHECK_MSG(kr_mem_allocs(ctx) == before, "%llu allocations in plan runs",
                  (unsigned long long)(kr_mem_allocs(ctx) - before));
        CHECK(isfinite(kr_plan_output(p, 0)[0]));
        kr_plan_free(p);
      }
    }
    kr_node_release(g[0]);
    kr_node_release(g[1]);
    gu_end(&c);
  }
  kr_set_num_threads(ctx, 1);
}

int main(void)
{
  (void)var_k;   /* grad_util.h helpers this file does not need */
  (void)var_grid;
  (void)var_data;
  (void)cst_data;
  kr_ctx *ctx = kr_ctx_new();
  if (!ctx) return 1;
  kr_set_num_threads(ctx, 1);
  CHECK(kr_op_lookup("conv2d_transpose") == KR_OP_CONV2D_TRANSPOSE && kr_ops[KR_OP_CONV2D_TRANSPOSE].grad);
  test_reference(ctx);
  test_lowerings(ctx);
  test_masked_input_gradient(ctx);
  test_strided_forward(ctx);
  test_thin(ctx);
  test_autotune(ctx);
  test_fd(ctx);
  test_errors(ctx);
  test_no_alloc(ctx);
  CHECK_MSG(kr_mem_in_use(ctx) == 0, "%zu bytes still in use", kr_mem_in_use(ctx));
  kr_ctx_free(ctx);
  return check_report("test_conv_transpose");
}
