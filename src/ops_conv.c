/*
** ops_conv.c -- shape rules and gradient rules of the conv family
** (convolution, pooling, padding/cropping, upsampling, spatial dropout).
** Inputs and attributes of each op: see ops_conv.h. The kernels are in
** kernels/conv.c.
** Shape rules check everything a kernel relies on (ranks, channel counts,
** the gradient helpers' inputs against the forward op's geometry), so that a
** node made by name from Lua with odd inputs fails here, never in a kernel.
** Shape letters: N batch (KR_BATCH while symbolic), H W spatial size, C
** channels, KH KW kernel or window size, O filters.
*/
#include "kr.h"
#include "ops.h"
#include "ops_conv.h"

#include <string.h>

/* ---- the attributes keras.core.op takes by name (slots: ops_conv.h) ---- */

const kr_attrname kr_conv_attrs[] = {
  {"stride_h", KR_ATTR_INT, KR_CONV_STRIDE_H},
  {"stride_w", KR_ATTR_INT, KR_CONV_STRIDE_W},
  {"dilation_h", KR_ATTR_INT, KR_CONV_DILATION_H},
  {"dilation_w", KR_ATTR_INT, KR_CONV_DILATION_W},
  {"pad_top", KR_ATTR_INT, KR_CONV_PAD_TOP},
  {"pad_bottom", KR_ATTR_INT, KR_CONV_PAD_BOTTOM},
  {"pad_left", KR_ATTR_INT, KR_CONV_PAD_LEFT},
  {"pad_right", KR_ATTR_INT, KR_CONV_PAD_RIGHT},
  {"relu", KR_ATTR_FLOAT, KR_CONV_RELU},
  {NULL, 0, 0}
};

const kr_attrname kr_pool_attrs[] = {
  {"pool_h", KR_ATTR_INT, KR_POOL_SIZE_H},
  {"pool_w", KR_ATTR_INT, KR_POOL_SIZE_W},
  {"stride_h", KR_ATTR_INT, KR_POOL_STRIDE_H},
  {"stride_w", KR_ATTR_INT, KR_POOL_STRIDE_W},
  {"pad_top", KR_ATTR_INT, KR_POOL_PAD_TOP},
  {"pad_bottom", KR_ATTR_INT, KR_POOL_PAD_BOTTOM},
  {"pad_left", KR_ATTR_INT, KR_POOL_PAD_LEFT},
  {"pad_right", KR_ATTR_INT, KR_POOL_PAD_RIGHT},
  {NULL, 0, 0}
};

const kr_attrname kr_pad2d_attrs[] = {
  {"top", KR_ATTR_INT, KR_PAD2D_TOP},
  {"bottom", KR_ATTR_INT, KR_PAD2D_BOTTOM},
  {"left", KR_ATTR_INT, KR_PAD2D_LEFT},
  {"right", KR_ATTR_INT, KR_PAD2D_RIGHT},
  {NULL, 0, 0}
};

const kr_attrname kr_upsample_attrs[] = {
  {"size_h", KR_ATTR_INT, KR_UPSAMPLE_H},
  {"size_w", KR_ATTR_INT, KR_UPSAMPLE_W},
  {NULL, 0, 0}
};

const kr_attrname kr_sdrop_attrs[] = {
  {"rate", KR_ATTR_FLOAT, KR_SDROP_RATE},
  {NULL, 0, 0}
};

#define SH(s, b) kr_shape_str((s), (b), sizeof(b))
#define ATTR_MAX ((int64_t)1 << 24)   /* strides, dilations, pads: keeps products in range */

static const char *opname(const kr_node *n) { return kr_ops[n->op].name; }

static int rank_ok(kr_ctx *ctx, const kr_node *n, const kr_shape *x)
{
  char a[128];
  if (x->ndim != 3 && x->ndim != 4)
    return kr_fail(ctx, KR_ESHAPE, "%s: expected an input of rank 3 (batch, steps, channels) or 4 (batch, rows, cols, channels), got shape %s",
                   opname(n), SH(x, a));
  for (int i = 1; i < x->ndim; i++)
    if (x->dim[i] < 1 && !(x->dim[i] == KR_NONE && i == x->ndim - 2))
      return kr_fail(ctx, KR_ESHAPE, "%s: input shape %s has an empty axis%s", opname(n), SH(x, a),
                     x->dim[i] < 0 ? " (only the steps or columns axis may be None)" : "");
  return KR_OK;
}

/* attributes i[from..from+count) must lie in [lo, ATTR_MAX] */
static int attrs_in_range(kr_ctx *ctx, const kr_node *n, int from, int count, int64_t lo, const char *what)
{
  for (int k = from; k < from + count; k++)
    if (n->attr.i[k] < lo || n->attr.i[k] > ATTR_MAX)
      return kr_fail(ctx, KR_EARG, "%s: %s must be in [%lld, %lld], got %lld", opname(n), what, (long long)lo,
                     (long long)ATTR_MAX, (long long)n->attr.i[k]);
  return KR_OK;
}

/* rank 3 is the 1-D case: the height entries i[h...] must be neutral */
static int neutral_height(kr_ctx *ctx, const kr_node *n, const kr_shape *x, int n1, const int *ones, int n0,
                          const int *zeros)
{
  if (x->ndim != 3) return KR_OK;
  for (int k = 0; k < n1; k++)
    if (n->attr.i[ones[k]] != 1)
      return kr_fail(ctx, KR_EARG, "%s: a rank-3 input has no height: attribute '%s' must be 1, got %lld", opname(n),
                     kr_attr_name(n->op, KR_ATTR_INT, ones[k]), (long long)n->attr.i[ones[k]]);
  for (int k = 0; k < n0; k++)
    if (n->attr.i[zeros[k]] != 0)
      return kr_fail(ctx, KR_EARG, "%s: a rank-3 input has no height: attribute '%s' must be 0, got %lld", opname(n),
                     kr_attr_name(n->op, KR_ATTR_INT, zeros[k]), (long long)n->attr.i[zeros[k]]);
  return KR_OK;
}

static void set_slots(kr_ctx *ctx, kr_node *n)
{
  int t = kr_get_num_threads(ctx);
  if (t < 1) t = 1;
  if (t > KR_CONV_MAX_SLOTS) t = KR_CONV_MAX_SLOTS;
  n->attr.f[KR_CONV_SLOTS] = t;
}

/* ---- convolution ---- */

/* output shape of a conv of x by kernel w under n's attributes */
static int conv_out(kr_ctx *ctx, const kr_node *n, const kr_shape *x, const kr_shape *w, kr_shape *out)
{
  char a[128], b[128];
  if (rank_ok(ctx, n, x)) return KR_ESHAPE;
  int r = x->ndim;
  if (w->ndim != r)
    return kr_fail(ctx, KR_ESHAPE, "%s: a kernel of shape %s does not fit an input of shape %s (expected rank %d)",
                   opname(n), SH(w, b), SH(x, a), r);
  for (int i = 0; i < r; i++)
    if (w->dim[i] < 1)
      return kr_fail(ctx, KR_ESHAPE, "%s: bad kernel shape %s", opname(n), SH(w, b));
  if (w->dim[r - 2] != x->dim[r - 1])
    return kr_fail(ctx, KR_ESHAPE, "%s: the kernel %s expects %lld input channels, the input %s has %lld", opname(n),
                   SH(w, b), (long long)w->dim[r - 2], SH(x, a), (long long)x->dim[r - 1]);
  if (attrs_in_range(ctx, n, KR_CONV_STRIDE_H, 4, 1, "strides and dilations") ||
      attrs_in_range(ctx, n, KR_CONV_PAD_TOP, 4, 0, "paddings"))
    return KR_EARG;
  static const int ones[] = {KR_CONV_STRIDE_H, KR_CONV_DILATION_H}, zeros[] = {KR_CONV_PAD_TOP, KR_CONV_PAD_BOTTOM};
  if (neutral_height(ctx, n, x, 2, ones, 2, zeros)) return KR_EARG;
  if (n->attr.f[KR_CONV_RELU] != 0 && n->attr.f[KR_CONV_RELU] != 1)
    return kr_fail(ctx, KR_EARG, "%s: relu (the fused activation) must be 0 (linear) or 1 (relu), got %g", opname(n),
                   n->attr.f[KR_CONV_RELU]);
  const int64_t *at = n->attr.i;
  int64_t H = r == 4 ? x->dim[1] : 1, W = x->dim[r - 2];
  int64_t KH = r == 4 ? w->dim[0] : 1, KW = w->dim[r - 3];
  int64_t eh = (KH - 1) * at[KR_CONV_DILATION_H] + 1, ew = (KW - 1) * at[KR_CONV_DILATION_W] + 1;
  int64_t ph = H + at[KR_CONV_PAD_TOP] + at[KR_CONV_PAD_BOTTOM];
  int64_t pw = W + at[KR_CONV_PAD_LEFT] + at[KR_CONV_PAD_RIGHT];
  if (W == KR_NONE) pw = ew;   /* a None length: the output's is None too (set below) */
  if (KH > ATTR_MAX || KW > ATTR_MAX || eh > ph || ew > pw)
    return kr_fail(ctx, KR_ESHAPE, "%s: the kernel %s (extent %lldx%lld with dilation) is larger than the padded input %lldx%lld",
                   opname(n), SH(w, b), (long long)eh, (long long)ew, (long long)ph, (long long)pw);
  *out = *x;
  if (r == 4) out->dim[1] = (ph - eh) / at[KR_CONV_STRIDE_H] + 1;
  out->dim[r - 2] = W == KR_NONE ? KR_NONE : (pw - ew) / at[KR_CONV_STRIDE_W] + 1;
  out->dim[r - 1] = w->dim[r - 1];
  return KR_OK;
}

int kr_conv_shape(kr_ctx *ctx, kr_node *n)
{
  if (n->nin != 2 && n->nin != 3)
    return kr_fail(ctx, KR_EARG, "conv2d: expected 2 or 3 inputs (x, kernel[, bias]), got %d", n->nin);
  kr_shape out;
  if (conv_out(ctx, n, &n->in[0]->shape, &n->in[1]->shape, &out)) return kr_errcode(ctx);
  if (n->nin == 3) {
    const kr_shape *b = &n->in[2]->shape;
    if (b->ndim != 1 || b->dim[0] != out.dim[out.ndim - 1]) {
      char a[128];
      return kr_fail(ctx, KR_ESHAPE, "conv2d: the bias has shape %s, expected (%lld,)", SH(b, a),
                     (long long)out.dim[out.ndim - 1]);
    }
  }
  n->shape = out;
  set_slots(ctx, n);
  return KR_OK;
}

/* the gradient helpers: dy must be what the conv of x by w gives; y (the
** relu mask) comes as input `yi` exactly when f0 says relu */
static int check_dy(kr_ctx *ctx, kr_node *n, const kr_shape *x, const kr_shape *w, int base, int yi)
{
  kr_shape out;
  char a[128], b[128];
  if (conv_out(ctx, n, x, w, &out)) return kr_errcode(ctx);
  const kr_shape *dy = &n->in[0]->shape;
  if (!kr_shape_eq(dy, &out))
    return kr_fail(ctx, KR_ESHAPE, "%s: the output gradient has shape %s, the convolution gives %s", opname(n),
                   SH(dy, a), SH(&out, b));
  int want = base + (n->attr.f[KR_CONV_RELU] != 0);
  if (n->nin != want && n->nin != want + 1)
    return kr_fail(ctx, KR_EARG, "%s: expected %d inputs (%d with an ordering input), got %d", opname(n), want,
                   want + 1, n->nin);
  if (want > base && !kr_shape_eq(&n->in[yi]->shape, dy))
    return kr_fail(ctx, KR_ESHAPE, "%s: the activation mask has shape %s, expected %s", opname(n),
                   SH(&n->in[yi]->shape, a), SH(dy, b));
  return KR_OK;
}

int kr_conv_grad_input_shape(kr_ctx *ctx, kr_node *n)
{
  if (n->nin < 3) return kr_fail(ctx, KR_EARG, "conv2d_grad_input: expected inputs (dy, w, x[, y]), got %d", n->nin);
  if (n->attr.f[KR_CONV_MASK_X] != 0 && n->attr.f[KR_CONV_MASK_X] != 1)
    return kr_fail(ctx, KR_EARG, "conv2d_grad_input: f3 (mask by x > 0) must be 0 or 1, got %g",
                   n->attr.f[KR_CONV_MASK_X]);
  if (check_dy(ctx, n, &n->in[2]->shape, &n->in[1]->shape, 3, 3)) return kr_errcode(ctx);
  n->shape = n->in[2]->shape;
  set_slots(ctx, n);
  return KR_OK;
}

int kr_conv_grad_kernel_shape(kr_ctx *ctx, kr_node *n)
{
  if (n->nin < 3) return kr_fail(ctx, KR_EARG, "conv2d_grad_kernel: expected inputs (dy, x, w[, y]), got %d", n->nin);
  if (n->attr.f[KR_CONV_WITH_BIAS] != 0 && n->attr.f[KR_CONV_WITH_BIAS] != 1)
    return kr_fail(ctx, KR_EARG, "conv2d_grad_kernel: f2 (the bias row) must be 0 or 1, got %g",
                   n->attr.f[KR_CONV_WITH_BIAS]);
  if (check_dy(ctx, n, &n->in[1]->shape, &n->in[2]->shape, 3, 3)) return kr_errcode(ctx);
  int act = n->attr.f[KR_CONV_RELU] != 0;
  if (n->nin != 3 + act)
    return kr_fail(ctx, KR_EARG, "conv2d_grad_kernel: expected %d inputs, got %d", 3 + act, n->nin);
  const kr_shape *w = &n->in[2]->shape;
  if (n->attr.f[KR_CONV_WITH_BIAS] != 0) {
    kr_shape s;
    memset(&s, 0, sizeof s);
    s.ndim = 2;
    s.dim[0] = kr_numel(w) / w->dim[w->ndim - 1] + 1;
    s.dim[1] = w->dim[w->ndim - 1];
    n->shape = s;
  } else {
    n->shape = *w;
  }
  set_slots(ctx, n);
  return KR_OK;
}

static kr_node *slice_rows(kr_ctx *ctx, kr_node *m, int64_t start, int64_t len, const kr_shape *to)
{
  kr_attr a;
  memset(&a, 0, sizeof a);
  a.i[KR_SLICE_AXIS] = 0;
  a.i[KR_SLICE_START] = start;
  a.i[KR_SLICE_LENGTH] = len;
  kr_node *s = kr_op1(ctx, KR_OP_SLICE, m, &a);
  if (!s) return NULL;
  memset(&a, 0, sizeof a);
  a.shape = *to;
  kr_node *r = kr_op1(ctx, KR_OP_RESHAPE, s, &a);
  kr_node_release(s);
  return r;
}

/* dx, dw and db read the same dy. The kernel gradient also sums dy's columns
** (the bias gradient) as an extra row while the blocks are in cache; small
** slices take dw and db apart. When the kernel is a variable, the input
** gradient takes the kernel gradient as an extra "ordering" input whose value
** it ignores, so that a plan, which orders nodes depth-first from its
** outputs, runs the two one after the other and frees dy once the input
** gradient is done; otherwise the kernel gradients of all layers would wait
** for the end of the backward pass, each keeping its layer's dy alive.
** (A frozen kernel variable between trainable layers then has its gradient
** computed without use; a constant kernel is not linked.) */
/*
** The relu's mask. With a fused relu, dx, dw and db read dz = dy * (y > 0).
** When dy is the input gradient of a conv, or the gradient of a max pool that
** finds its maxima again, reading this conv's output y, that node can apply
** the mask itself while it writes dy (conv2d_grad_input f3, max_pool2d_grad
** f2): a masked twin of it is made here and the three gradients read it as
** they are, without y, which they then need not read. The unmasked node, if
** nothing else holds it, is never planned. */
static kr_node *masked_dy(kr_ctx *ctx, kr_node *n, kr_node *dy)
{
  kr_attr a = dy->attr;
  if (dy->op == KR_OP_CONV2D_GRAD_INPUT && dy->in[2] == n && a.f[KR_CONV_MASK_X] == 0) a.f[KR_CONV_MASK_X] = 1;
  else if (dy->op == KR_OP_MAX_POOL2D_GRAD && a.f[KR_POOL_KEEP_ARGMAX] == 0 && dy->in[1] == n &&
           a.f[KR_POOL_RELU_BELOW] == 0)
    a.f[KR_POOL_RELU_BELOW] = 1;
  else return NULL;
  return kr_node_op(ctx, dy->op, dy->nin, dy->in, &a);
}

int kr_conv_grad(kr_ctx *ctx, kr_node *n, kr_node *dy, kr_node **dx)
{
  int act = n->attr.f[KR_CONV_RELU] != 0, bias = n->nin == 3;
  const kr_shape *ws = &n->in[1]->shape;
  kr_attr a = n->attr, ai = n->attr;
  kr_node *mdy = act ? masked_dy(ctx, n, dy) : NULL;
  if (mdy) {
    dy = mdy;
    act = 0;
    a.f[KR_CONV_RELU] = ai.f[KR_CONV_RELU] = 0;
  }
  a.f[KR_CONV_WITH_BIAS] = bias;
  kr_node *gk[4] = {dy, n->in[0], n->in[1], n};
  kr_node *k = kr_node_op(ctx, KR_OP_CONV2D_GRAD_KERNEL, 3 + act, gk, &a);
  if (!k) {
    kr_node_release(mdy);
    return kr_errcode(ctx);
  }
  if (bias) {
    int64_t K = kr_numel(ws) / ws->dim[ws->ndim - 1];
    kr_shape bs = n->in[2]->shape;
    dx[1] = slice_rows(ctx, k, 0, K, ws);
    dx[2] = dx[1] ? slice_rows(ctx, k, K, 1, &bs) : NULL;
  } else {
    kr_node_retain(k);
    dx[1] = k;
  }
  kr_node *gi[5] = {dy, n->in[1], n->in[0], n, NULL};
  int link = n->in[1]->op == KR_OP_VARIABLE;
  gi[3 + act] = k;
  dx[0] = dx[1] && (!bias || dx[2]) ? kr_node_op(ctx, KR_OP_CONV2D_GRAD_INPUT, 3 + act + link, gi, &ai) : NULL;
  kr_node_release(k);
  kr_node_release(mdy);
  if (!dx[0] || !dx[1] || (bias && !dx[2])) return kr_errcode(ctx);
  return KR_OK;
}

/* ---- pooling: window, strides, pads (KR_POOL_*) ---- */

static int pool_out(kr_ctx *ctx, const kr_node *n, const kr_shape *x, kr_shape *out)
{
  if (rank_ok(ctx, n, x)) return KR_ESHAPE;
  if (attrs_in_range(ctx, n, KR_POOL_SIZE_H, 4, 1, "pool sizes and strides") ||
      attrs_in_range(ctx, n, KR_POOL_PAD_TOP, 4, 0, "paddings"))
    return KR_EARG;
  static const int ones[] = {KR_POOL_SIZE_H, KR_POOL_STRIDE_H}, zeros[] = {KR_POOL_PAD_TOP, KR_POOL_PAD_BOTTOM};
  if (neutral_height(ctx, n, x, 2, ones, 2, zeros)) return KR_EARG;
  const int64_t *at = n->attr.i;
  int64_t kh = at[KR_POOL_SIZE_H], kw = at[KR_POOL_SIZE_W];
  int64_t pt = at[KR_POOL_PAD_TOP], pb = at[KR_POOL_PAD_BOTTOM], pl = at[KR_POOL_PAD_LEFT], pr = at[KR_POOL_PAD_RIGHT];
  int r = x->ndim;
  int64_t H = r == 4 ? x->dim[1] : 1, W = x->dim[r - 2];
  if (kh * kw > 65535)
    return kr_fail(ctx, KR_EARG, "%s: a pool window of %lldx%lld cells is too large (at most 65535)", opname(n),
                   (long long)kh, (long long)kw);
  if (pt >= kh || pb >= kh || pl >= kw || pr >= kw)
    return kr_fail(ctx, KR_EARG, "%s: padding must be smaller than the pool window %lldx%lld", opname(n),
                   (long long)kh, (long long)kw);
  int64_t ph = H + pt + pb, pw = W + pl + pr;
  if (W == KR_NONE) pw = kw;   /* a None length: the output's is None too (set below) */
  if (kh > ph || kw > pw) {
    char a[128];
    return kr_fail(ctx, KR_ESHAPE, "%s: the pool window %lldx%lld is larger than the padded input %lldx%lld (input %s)",
                   opname(n), (long long)kh, (long long)kw, (long long)ph, (long long)pw,
                   SH(x, a));
  }
  *out = *x;
  if (r == 4) out->dim[1] = (ph - kh) / at[KR_POOL_STRIDE_H] + 1;
  out->dim[r - 2] = W == KR_NONE ? KR_NONE : (pw - kw) / at[KR_POOL_STRIDE_W] + 1;
  return KR_OK;
}

/* max_pool2d keeps its argmax in aux (f0 = 1) unless its input is a conv
** with a fused relu (f0 = 0): that output stays alive for the conv's own
** gradient anyway, so the pool's gradient finds the maxima again from it,
** and the pool's output and argmax need not live until the backward pass */
int kr_pool_shape(kr_ctx *ctx, kr_node *n)
{
  kr_shape out;
  if (pool_out(ctx, n, &n->in[0]->shape, &out)) return kr_errcode(ctx);
  n->shape = out;
  if (n->op == KR_OP_MAX_POOL2D) {
    const kr_node *x = n->in[0];
    n->attr.f[KR_POOL_KEEP_ARGMAX] = !(x->op == KR_OP_CONV2D && x->attr.f[KR_CONV_RELU] != 0);
  }
  return KR_OK;
}

static int same_shape(kr_ctx *ctx, const kr_node *n, const kr_shape *got, const kr_shape *want, const char *what)
{
  if (kr_shape_eq(got, want)) return KR_OK;
  char a[128], b[128];
  return kr_fail(ctx, KR_ESHAPE, "%s: %s has shape %s, expected %s", opname(n), what, SH(got, a), SH(want, b));
}

/* f0 = 1: (dy, pool node), the argmax from the pool's aux;
** f0 = 0: (dy, x) with the pool's attributes, the argmax found again */
int kr_maxpool_grad_shape(kr_ctx *ctx, kr_node *n)
{
  const kr_node *p = n->in[1];
  double relu_below = n->attr.f[KR_POOL_RELU_BELOW], keep = n->attr.f[KR_POOL_KEEP_ARGMAX];
  if (relu_below != 0 && (relu_below != 1 || keep != 0))
    return kr_fail(ctx, KR_EARG, "max_pool2d_grad: f2 (only windows whose maximum is > 0) must be 0, or 1 with f0 = 0; "
                                 "got f2 = %g, f0 = %g", relu_below, keep);
  if (keep == 0) {
    kr_shape out;
    if (pool_out(ctx, n, &p->shape, &out)) return kr_errcode(ctx);
    if (same_shape(ctx, n, &n->in[0]->shape, &out, "the output gradient")) return KR_ESHAPE;
    n->shape = p->shape;
    return KR_OK;
  }
  if (p->op != KR_OP_MAX_POOL2D || p->attr.f[KR_POOL_KEEP_ARGMAX] == 0)
    return kr_fail(ctx, KR_EARG, "max_pool2d_grad: the second input must be a max_pool2d node that keeps its argmax, got %s",
                   opname(p));
  if (same_shape(ctx, n, &n->in[0]->shape, &p->shape, "the output gradient")) return KR_ESHAPE;
  n->attr = p->attr;
  n->shape = p->in[0]->shape;
  return KR_OK;
}

int kr_avgpool_grad_shape(kr_ctx *ctx, kr_node *n)
{
  kr_shape out;
  if (pool_out(ctx, n, &n->in[1]->shape, &out)) return kr_errcode(ctx);
  if (same_shape(ctx, n, &n->in[0]->shape, &out, "the output gradient")) return KR_ESHAPE;
  n->shape = n->in[1]->shape;
  return KR_OK;
}

int kr_maxpool_grad(kr_ctx *ctx, kr_node *n, kr_node *dy, kr_node **dx)
{
  dx[0] = kr_op2(ctx, KR_OP_MAX_POOL2D_GRAD, dy, n->attr.f[KR_POOL_KEEP_ARGMAX] != 0 ? n : n->in[0], &n->attr);
  return dx[0] ? KR_OK : kr_errcode(ctx);
}

int kr_avgpool_grad(kr_ctx *ctx, kr_node *n, kr_node *dy, kr_node **dx)
{
  dx[0] = kr_op2(ctx, KR_OP_AVG_POOL2D_GRAD, dy, n->in[0], &n->attr);
  return dx[0] ? KR_OK : kr_errcode(ctx);
}

/* ---- padding and cropping: i = {top, bottom, left, right} ---- */

static int pad_common(kr_ctx *ctx, kr_node *n, int sign)
{
  const kr_shape *x = &n->in[0]->shape;
  if (rank_ok(ctx, n, x)) return KR_ESHAPE;
  if (attrs_in_range(ctx, n, KR_PAD2D_TOP, 4, 0, sign > 0 ? "paddings" : "croppings")) return KR_EARG;
  static const int zeros[] = {KR_PAD2D_TOP, KR_PAD2D_BOTTOM};
  if (neutral_height(ctx, n, x, 0, NULL, 2, zeros)) return KR_EARG;
  const int64_t *at = n->attr.i;
  int64_t top = at[KR_PAD2D_TOP], bottom = at[KR_PAD2D_BOTTOM], left = at[KR_PAD2D_LEFT], right = at[KR_PAD2D_RIGHT];
  int r = x->ndim;
  kr_shape out = *x;
  if (r == 4) out.dim[1] += sign * (top + bottom);
  if (x->dim[r - 2] != KR_NONE) out.dim[r - 2] += sign * (left + right);   /* None stays None */
  if ((r == 4 && out.dim[1] < 1) || (out.dim[r - 2] < 1 && x->dim[r - 2] != KR_NONE)) {
    char a[128];
    return kr_fail(ctx, KR_ESHAPE, "crop2d: cropping %lld+%lld, %lld+%lld leaves nothing of an input of shape %s",
                   (long long)top, (long long)bottom, (long long)left, (long long)right, SH(x, a));
  }
  n->shape = out;
  return KR_OK;
}

int kr_pad2d_shape(kr_ctx *ctx, kr_node *n) { return pad_common(ctx, n, 1); }
int kr_crop2d_shape(kr_ctx *ctx, kr_node *n) { return pad_common(ctx, n, -1); }

int kr_pad2d_grad(kr_ctx *ctx, kr_node *n, kr_node *dy, kr_node **dx)
{
  dx[0] = kr_op1(ctx, KR_OP_CROP2D, dy, &n->attr);
  return dx[0] ? KR_OK : kr_errcode(ctx);
}

int kr_crop2d_grad(kr_ctx *ctx, kr_node *n, kr_node *dy, kr_node **dx)
{
  dx[0] = kr_op1(ctx, KR_OP_PAD2D, dy, &n->attr);
  return dx[0] ? KR_OK : kr_errcode(ctx);
}

/* ---- upsampling: KR_UPSAMPLE_H, KR_UPSAMPLE_W ---- */

static int upsample_out(kr_ctx *ctx, const kr_node *n, const kr_shape *x, kr_shape *out)
{
  if (rank_ok(ctx, n, x)) return KR_ESHAPE;
  if (attrs_in_range(ctx, n, KR_UPSAMPLE_H, 2, 1, "sizes")) return KR_EARG;
  static const int ones[] = {KR_UPSAMPLE_H};
  if (neutral_height(ctx, n, x, 1, ones, 0, NULL)) return KR_EARG;
  int r = x->ndim;
  *out = *x;
  if (r == 4) out->dim[1] *= n->attr.i[KR_UPSAMPLE_H];
  if (x->dim[r - 2] != KR_NONE) out->dim[r - 2] *= n->attr.i[KR_UPSAMPLE_W];   /* None stays None */
  return KR_OK;
}

int kr_upsample_shape(kr_ctx *ctx, kr_node *n)
{
  kr_shape out;
  if (upsample_out(ctx, n, &n->in[0]->shape, &out)) return kr_errcode(ctx);
  n->shape = out;
  return KR_OK;
}

int kr_upsample_grad_shape(kr_ctx *ctx, kr_node *n)
{
  kr_shape out;
  if (upsample_out(ctx, n, &n->in[1]->shape, &out)) return kr_errcode(ctx);
  if (same_shape(ctx, n, &n->in[0]->shape, &out, "the output gradient")) return KR_ESHAPE;
  n->shape = n->in[1]->shape;
  return KR_OK;
}

int kr_upsample_grad(kr_ctx *ctx, kr_node *n, kr_node *dy, kr_node **dx)
{
  dx[0] = kr_op2(ctx, KR_OP_UPSAMPLE2D_GRAD, dy, n->in[0], &n->attr);
  return dx[0] ? KR_OK : kr_errcode(ctx);
}

/* ---- spatial dropout: f0 = rate ---- */

int kr_sdrop_shape(kr_ctx *ctx, kr_node *n)
{
  const kr_shape *x = &n->in[0]->shape;
  char a[128];
  if (x->ndim < 3)
    return kr_fail(ctx, KR_ESHAPE, "spatial_dropout: expected an input of rank >= 3 (batch, ..., channels), got shape %s",
                   SH(x, a));
  double rate = n->attr.f[KR_SDROP_RATE];
  if (!(rate >= 0 && rate < 1)) return kr_fail(ctx, KR_EARG, "spatial_dropout: rate must be in [0, 1), got %g", rate);
  n->shape = *x;
  return KR_OK;
}

int kr_sdrop_grad_shape(kr_ctx *ctx, kr_node *n)
{
  const kr_node *d = n->in[1];
  if (d->op != KR_OP_SPATIAL_DROPOUT)
    return kr_fail(ctx, KR_EARG, "spatial_dropout_grad: the second input must be a spatial_dropout node, got %s",
                   opname(d));
  if (same_shape(ctx, n, &n->in[0]->shape, &d->shape, "the output gradient")) return KR_ESHAPE;
  n->attr = d->attr;
  n->shape = d->shape;
  return KR_OK;
}

int kr_sdrop_grad(kr_ctx *ctx, kr_node *n, kr_node *dy, kr_node **dx)
{
  dx[0] = kr_op2(ctx, KR_OP_SPATIAL_DROPOUT_GRAD, dy, n, &n->attr);
  return dx[0] ? KR_OK : kr_errcode(ctx);
}
