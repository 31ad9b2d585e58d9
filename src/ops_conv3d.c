/*
** ops_conv3d.c -- shape rules and gradient rules of the 3-D convolutions
** (conv3d, its input and kernel gradients, conv3d_transpose); inputs and
** attributes: see ops_conv3d.h. The kernels are in kernels/conv3d.c.
** Shape rules check everything a kernel relies on, so that a node made by
** name from Lua with odd inputs fails here with a message, never in a kernel.
*/
#include "kr.h"
#include "ops.h"
#include "ops_conv.h"
#include "ops_conv3d.h"

#include <math.h>
#include <string.h>

const kr_attrname kr_conv3d_attrs[] = {
  {"stride_d", KR_ATTR_INT, KR_C3_STRIDE_D},
  {"stride_h", KR_ATTR_INT, KR_C3_STRIDE_H},
  {"stride_w", KR_ATTR_INT, KR_C3_STRIDE_W},
  {"dilation_d", KR_ATTR_INT, KR_C3_DILATION_D},
  {"dilation_h", KR_ATTR_INT, KR_C3_DILATION_H},
  {"dilation_w", KR_ATTR_INT, KR_C3_DILATION_W},
  {"pad_front", KR_ATTR_INT, KR_C3_PAD_FRONT},
  {"pad_top", KR_ATTR_INT, KR_C3_PAD_TOP},
  {"pad_left", KR_ATTR_FLOAT, KR_C3_PAD_LEFT},
  {"pad_back", KR_ATTR_FLOAT, KR_C3_PAD_BACK},
  {"pad_bottom", KR_ATTR_FLOAT, KR_C3_PAD_BOTTOM},
  {"pad_right", KR_ATTR_FLOAT, KR_C3_PAD_RIGHT},
  {"relu", KR_ATTR_FLOAT, KR_C3_RELU},
  {NULL, 0, 0}
};

const kr_attrname kr_conv3d_transpose_attrs[] = {
  {"stride_d", KR_ATTR_INT, KR_C3_STRIDE_D},
  {"stride_h", KR_ATTR_INT, KR_C3_STRIDE_H},
  {"stride_w", KR_ATTR_INT, KR_C3_STRIDE_W},
  {"dilation_d", KR_ATTR_INT, KR_C3_DILATION_D},
  {"dilation_h", KR_ATTR_INT, KR_C3_DILATION_H},
  {"dilation_w", KR_ATTR_INT, KR_C3_DILATION_W},
  {"pad_front", KR_ATTR_INT, KR_C3_PAD_FRONT},
  {"pad_top", KR_ATTR_INT, KR_C3_PAD_TOP},
  {"pad_left", KR_ATTR_FLOAT, KR_C3_PAD_LEFT},
  {NULL, 0, 0}
};

#define SH(s, b) kr_shape_str((s), (b), sizeof(b))
#define ATTR_MAX ((int64_t)1 << 24)

static const char *opname(const kr_node *n) { return kr_ops[n->op].name; }

int kr_is_conv3d_op(int op)
{
  return op == KR_OP_CONV3D || op == KR_OP_CONV3D_GRAD_INPUT || op == KR_OP_CONV3D_GRAD_KERNEL ||
         op == KR_OP_CONV3D_TRANSPOSE;
}

static void set_slots(kr_ctx *ctx, kr_node *n)
{
  int t = kr_get_num_threads(ctx);
  if (t < 1) t = 1;
  if (t > KR_CONV_MAX_SLOTS) t = KR_CONV_MAX_SLOTS;
  n->attr.f[KR_C3_SLOTS] = t;
}

/* a float slot holding a pad: an integer in [0, ATTR_MAX] */
static int float_pad(kr_ctx *ctx, const kr_node *n, int slot, const char *name, int64_t *v)
{
  double f = n->attr.f[slot];
  if (!(f >= 0 && f <= (double)ATTR_MAX) || f != floor(f))
    return kr_fail(ctx, KR_EARG, "%s: attribute '%s' must be an integer in [0, %lld], got %g", opname(n), name,
                   (long long)ATTR_MAX, f);
  *v = (int64_t)f;
  return KR_OK;
}

/* the attributes common to every 3-D op: strides and dilations in
** [1, ATTR_MAX], leading pads in [0, ATTR_MAX], relu 0 or 1 */
static int check_attrs(kr_ctx *ctx, const kr_node *n, int64_t *pl)
{
  static const char *names[] = {"stride_d", "stride_h", "stride_w", "dilation_d", "dilation_h", "dilation_w",
                                "pad_front", "pad_top"};
  for (int k = 0; k < 8; k++) {
    int64_t lo = k < 6 ? 1 : 0, v = n->attr.i[k];
    if (v < lo || v > ATTR_MAX)
      return kr_fail(ctx, KR_EARG, "%s: attribute '%s' must be in [%lld, %lld], got %lld", opname(n), names[k],
                     (long long)lo, (long long)ATTR_MAX, (long long)v);
  }
  if (n->attr.f[KR_C3_RELU] != 0 && n->attr.f[KR_C3_RELU] != 1)
    return kr_fail(ctx, KR_EARG, "%s: relu (the fused activation) must be 0 (linear) or 1 (relu), got %g", opname(n),
                   n->attr.f[KR_C3_RELU]);
  return float_pad(ctx, n, KR_C3_PAD_LEFT, "pad_left", pl);
}

/* x (N, D, H, W, C) with known sizes; w rank 5 with positive sizes */
static int check_x_w(kr_ctx *ctx, const kr_node *n, const kr_shape *x, const kr_shape *w, const char *wname)
{
  char a[128], b[128];
  if (x->ndim != 5)
    return kr_fail(ctx, KR_ESHAPE, "%s: expected an input of rank 5 (batch, depth, rows, cols, channels), got shape %s",
                   opname(n), SH(x, a));
  for (int i = 1; i < 5; i++)
    if (x->dim[i] < 1)
      return kr_fail(ctx, KR_ESHAPE, "%s: input shape %s needs known, non-empty depth, rows, cols and channels",
                     opname(n), SH(x, a));
  if (w->ndim != 5)
    return kr_fail(ctx, KR_ESHAPE, "%s: expected a kernel of rank 5 (depth, rows, cols, %s), got shape %s", opname(n),
                   wname, SH(w, b));
  for (int i = 0; i < 5; i++)
    if (w->dim[i] < 1 || w->dim[i] > ATTR_MAX)
      return kr_fail(ctx, KR_ESHAPE, "%s: bad kernel shape %s", opname(n), SH(w, b));
  return KR_OK;
}

/* the output shape of the conv3d of x by w (KD, KH, KW, C, O) under n's attributes */
static int conv3d_out(kr_ctx *ctx, const kr_node *n, const kr_shape *x, const kr_shape *w, kr_shape *out)
{
  char a[128], b[128];
  int64_t pl, pads[6];
  if (check_x_w(ctx, n, x, w, "in, out") || check_attrs(ctx, n, &pl)) return kr_errcode(ctx);
  if (w->dim[3] != x->dim[4])
    return kr_fail(ctx, KR_ESHAPE, "%s: the kernel %s expects %lld input channels, the input %s has %lld", opname(n),
                   SH(w, b), (long long)w->dim[3], SH(x, a), (long long)x->dim[4]);
  pads[0] = n->attr.i[KR_C3_PAD_FRONT];
  pads[2] = n->attr.i[KR_C3_PAD_TOP];
  pads[4] = pl;
  if (float_pad(ctx, n, KR_C3_PAD_BACK, "pad_back", &pads[1]) ||
      float_pad(ctx, n, KR_C3_PAD_BOTTOM, "pad_bottom", &pads[3]) ||
      float_pad(ctx, n, KR_C3_PAD_RIGHT, "pad_right", &pads[5]))
    return kr_errcode(ctx);
  *out = *x;
  for (int k = 0; k < 3; k++) {
    int64_t s = n->attr.i[KR_C3_STRIDE_D + k], d = n->attr.i[KR_C3_DILATION_D + k];
    int64_t ext = (w->dim[k] - 1) * d + 1, padded = x->dim[k + 1] + pads[2 * k] + pads[2 * k + 1];
    if (ext > padded)
      return kr_fail(ctx, KR_ESHAPE, "%s: the kernel %s (extent %lld along axis %d with dilation) is larger than the "
                     "padded input (%lld; input %s)", opname(n), SH(w, b), (long long)ext, k + 1, (long long)padded,
                     SH(x, a));
    out->dim[k + 1] = (padded - ext) / s + 1;
  }
  out->dim[4] = w->dim[4];
  return KR_OK;
}

int kr_conv3d_shape(kr_ctx *ctx, kr_node *n)
{
  if (n->nin != 2 && n->nin != 3)
    return kr_fail(ctx, KR_EARG, "conv3d: expected 2 or 3 inputs (x, kernel[, bias]), got %d", n->nin);
  kr_shape out;
  if (conv3d_out(ctx, n, &n->in[0]->shape, &n->in[1]->shape, &out)) return kr_errcode(ctx);
  if (n->nin == 3) {
    const kr_shape *b = &n->in[2]->shape;
    if (b->ndim != 1 || b->dim[0] != out.dim[4]) {
      char a[128];
      return kr_fail(ctx, KR_ESHAPE, "conv3d: the bias has shape %s, expected (%lld,)", SH(b, a),
                     (long long)out.dim[4]);
    }
  }
  n->shape = out;
  set_slots(ctx, n);
  return KR_OK;
}

/* the gradients: dy must be what the conv of x by w gives; no fused relu */
static int check_dy(kr_ctx *ctx, kr_node *n, const kr_shape *x, const kr_shape *w)
{
  kr_shape out;
  char a[128], b[128];
  if (n->nin != 3) return kr_fail(ctx, KR_EARG, "%s: expected 3 inputs, got %d", opname(n), n->nin);
  if (n->attr.f[KR_C3_RELU] != 0)
    return kr_fail(ctx, KR_EARG, "%s: relu must be 0 (the output gradient comes masked)", opname(n));
  if (conv3d_out(ctx, n, x, w, &out)) return kr_errcode(ctx);
  const kr_shape *dy = &n->in[0]->shape;
  if (!kr_shape_eq(dy, &out))
    return kr_fail(ctx, KR_ESHAPE, "%s: the output gradient has shape %s, the convolution gives %s", opname(n),
                   SH(dy, a), SH(&out, b));
  return KR_OK;
}

int kr_conv3d_grad_input_shape(kr_ctx *ctx, kr_node *n)
{
  if (check_dy(ctx, n, &n->in[2]->shape, &n->in[1]->shape)) return kr_errcode(ctx);
  n->shape = n->in[2]->shape;
  set_slots(ctx, n);
  return KR_OK;
}

int kr_conv3d_grad_kernel_shape(kr_ctx *ctx, kr_node *n)
{
  if (check_dy(ctx, n, &n->in[1]->shape, &n->in[2]->shape)) return kr_errcode(ctx);
  n->shape = n->in[2]->shape;
  set_slots(ctx, n);
  return KR_OK;
}

/* conv3d_transpose (x, w[, b]): the output (attr.shape) must be taken back
** to x by the conv3d of the same strides, dilations and leading pads; the
** trailing pads of that conv are set here (f4..f6) */
int kr_conv3d_transpose_shape(kr_ctx *ctx, kr_node *n)
{
  char a[128], b[128];
  if (n->nin != 2 && n->nin != 3)
    return kr_fail(ctx, KR_EARG, "conv3d_transpose: expected 2 or 3 inputs (x, kernel[, bias]), got %d", n->nin);
  const kr_shape *x = &n->in[0]->shape, *w = &n->in[1]->shape, *os = &n->attr.shape;
  int64_t pl;
  if (check_x_w(ctx, n, x, w, "out, in") || check_attrs(ctx, n, &pl)) return kr_errcode(ctx);
  if (n->attr.f[KR_C3_RELU] != 0) return kr_fail(ctx, KR_EARG, "conv3d_transpose: takes no fused relu");
  if (w->dim[4] != x->dim[4])
    return kr_fail(ctx, KR_ESHAPE, "conv3d_transpose: the kernel %s expects %lld input channels (its last axis), the "
                   "input %s has %lld", SH(w, b), (long long)w->dim[4], SH(x, a), (long long)x->dim[4]);
  if (os->ndim != 5)
    return kr_fail(ctx, KR_EARG, "conv3d_transpose: attribute 'shape' (the output shape) must have 5 entries, got %d",
                   os->ndim);
  if (os->dim[4] != w->dim[3])
    return kr_fail(ctx, KR_ESHAPE, "conv3d_transpose: the output shape %s has %lld channels, the kernel %s gives %lld",
                   SH(os, a), (long long)os->dim[4], SH(w, b), (long long)w->dim[3]);
  int64_t lead[3] = {n->attr.i[KR_C3_PAD_FRONT], n->attr.i[KR_C3_PAD_TOP], pl};
  kr_shape out = *x;
  for (int k = 0; k < 3; k++) {
    int64_t m = os->dim[k + 1], s = n->attr.i[KR_C3_STRIDE_D + k], d = n->attr.i[KR_C3_DILATION_D + k];
    int64_t ext = (w->dim[k] - 1) * d + 1, in = x->dim[k + 1];
    int64_t after = (in - 1) * s + ext - m - lead[k];
    if (after < 0) after = 0;
    if (m < 1 || m > ATTR_MAX || m + lead[k] + after < ext || (m + lead[k] + after - ext) / s + 1 != in)
      return kr_fail(ctx, KR_ESHAPE, "conv3d_transpose: impossible output shape %s: its convolution (kernel %s, "
                     "stride %lld, pad %lld along axis %d) does not take it back to the input %s", SH(os, a), SH(w, b),
                     (long long)s, (long long)lead[k], k + 1, SH(x, b));
    out.dim[k + 1] = m;
    n->attr.f[KR_C3_PAD_BACK + k] = (double)after;
  }
  out.dim[4] = w->dim[3];
  if (n->nin == 3) {
    const kr_shape *bs = &n->in[2]->shape;
    if (bs->ndim != 1 || bs->dim[0] != out.dim[4])
      return kr_fail(ctx, KR_ESHAPE, "conv3d_transpose: the bias has shape %s, expected (%lld,)", SH(bs, a),
                     (long long)out.dim[4]);
  }
  n->shape = out;
  set_slots(ctx, n);
  return KR_OK;
}

/* the bias gradient: dy summed over every axis but the channels (sum_to,
** whose rows-of-channels case is the bias gradients' fast path) */
static kr_node *bias_grad(kr_ctx *ctx, kr_node *dy)
{
  kr_attr a;
  memset(&a, 0, sizeof a);
  a.shape.ndim = 1;
  a.shape.dim[0] = dy->shape.dim[4];
  return kr_op1(ctx, KR_OP_SUM_TO, dy, &a);
}

int kr_conv3d_grad(kr_ctx *ctx, kr_node *n, kr_node *dy, kr_node **dx)
{
  kr_node *dz = dy;
  kr_attr a = n->attr;
  a.f[KR_C3_RELU] = 0;
  if (n->attr.f[KR_C3_RELU] != 0) {
    kr_attr r;
    memset(&r, 0, sizeof r);
    dz = kr_op2(ctx, KR_OP_RELU_GRAD, dy, n, &r);   /* dy where y > 0 */
    if (!dz) return kr_errcode(ctx);
  } else {
    kr_node_retain(dz);
  }
  kr_node *gi[3] = {dz, n->in[1], n->in[0]}, *gk[3] = {dz, n->in[0], n->in[1]};
  dx[0] = kr_node_op(ctx, KR_OP_CONV3D_GRAD_INPUT, 3, gi, &a);
  dx[1] = dx[0] ? kr_node_op(ctx, KR_OP_CONV3D_GRAD_KERNEL, 3, gk, &a) : NULL;
  if (n->nin == 3 && dx[1]) dx[2] = bias_grad(ctx, dz);
  kr_node_release(dz);
  if (!dx[0] || !dx[1] || (n->nin == 3 && !dx[2])) return kr_errcode(ctx);
  return KR_OK;
}

/* y = T(x, w): dx is the conv3d of dy by w, dw the kernel gradient of that
** conv with x in the output gradient's place */
int kr_conv3d_transpose_grad(kr_ctx *ctx, kr_node *n, kr_node *dy, kr_node **dx)
{
  kr_attr a = n->attr;
  memset(&a.shape, 0, sizeof a.shape);
  kr_node *fw[2] = {dy, n->in[1]}, *gk[3] = {n->in[0], dy, n->in[1]};
  dx[0] = kr_node_op(ctx, KR_OP_CONV3D, 2, fw, &a);
  dx[1] = dx[0] ? kr_node_op(ctx, KR_OP_CONV3D_GRAD_KERNEL, 3, gk, &a) : NULL;
  if (n->nin == 3 && dx[1]) dx[2] = bias_grad(ctx, dy);
  if (!dx[0] || !dx[1] || (n->nin == 3 && !dx[2])) return kr_errcode(ctx);
  return KR_OK;
}
