/*
** ops_conv_transpose.c -- the shape rule and the gradient rule of
** conv2d_transpose (inputs and attributes: ops_conv_transpose.h; the kernel
** is in kernels/conv.c, beside the input gradient it shares).
** The shape rule checks everything the kernel and the gradient nodes rely
** on, so that a node made by name from Lua with odd inputs fails here.
** Shape letters: N batch, h w the input's rows and columns, C its channels,
** H W the output's, O its channels (the kernel's third axis).
*/
#include "kr.h"
#include "ops.h"
#include "ops_conv.h"
#include "ops_conv_transpose.h"

#include <string.h>

/* pad_bottom and pad_right are not taken: the shape rule sets them */
const kr_attrname kr_conv_transpose_attrs[] = {
  {"stride_h", KR_ATTR_INT, KR_CONV_STRIDE_H},
  {"stride_w", KR_ATTR_INT, KR_CONV_STRIDE_W},
  {"dilation_h", KR_ATTR_INT, KR_CONV_DILATION_H},
  {"dilation_w", KR_ATTR_INT, KR_CONV_DILATION_W},
  {"pad_top", KR_ATTR_INT, KR_CONV_PAD_TOP},
  {"pad_left", KR_ATTR_INT, KR_CONV_PAD_LEFT},
  {"relu", KR_ATTR_FLOAT, KR_CONV_RELU},
  {NULL, 0, 0}
};

#define SH(s, b) kr_shape_str((s), (b), sizeof(b))
#define ATTR_MAX ((int64_t)1 << 24)   /* as ops_conv.c: keeps products in range */
#define WHO "conv2d_transpose"

/* one spatial axis: the input's n, the output's m, stride s, kernel k,
** dilation d, the cut `first` (pad_top / pad_left); the padding at the end
** (pad_bottom / pad_right) with which the convolution takes m back to n,
** or -1 when there is none (or only one with a window wholly in the
** padding, which no 'valid' or 'same' convolution has) */
static int64_t end_pad(int64_t n, int64_t m, int64_t s, int64_t k, int64_t d, int64_t first)
{
  int64_t ext = (k - 1) * d + 1;
  int64_t pad = (n - 1) * s + ext - m - first;   /* the last window ends at the padded end */
  if (pad < 0) pad = 0;
  int64_t span = m + first + pad - ext;
  if (pad > ext - 1 || span < 0 || span / s + 1 != n) return -1;
  return pad;
}

int kr_conv_transpose_shape(kr_ctx *ctx, kr_node *n)
{
  char a[128], b[128];
  if (n->nin != 2 && n->nin != 3)
    return kr_fail(ctx, KR_EARG, WHO ": expected 2 or 3 inputs (x, kernel[, bias]), got %d", n->nin);
  const kr_shape *x = &n->in[0]->shape, *w = &n->in[1]->shape, *o = &n->attr.shape;
  if (x->ndim != 4)
    return kr_fail(ctx, KR_ESHAPE, WHO ": expected an input of rank 4 (batch, rows, cols, channels), got shape %s",
                   SH(x, a));
  for (int i = 1; i < 4; i++)
    if (x->dim[i] < 1) return kr_fail(ctx, KR_ESHAPE, WHO ": input shape %s has an empty axis", SH(x, a));
  if (w->ndim != 4)
    return kr_fail(ctx, KR_ESHAPE, WHO ": expected a kernel of rank 4 (rows, cols, out_channels, in_channels), "
                   "got shape %s", SH(w, b));
  for (int i = 0; i < 4; i++)
    if (w->dim[i] < 1 || w->dim[i] > ATTR_MAX) return kr_fail(ctx, KR_ESHAPE, WHO ": bad kernel shape %s", SH(w, b));
  if (w->dim[3] != x->dim[3])
    return kr_fail(ctx, KR_ESHAPE, WHO ": the kernel %s takes %lld input channels (its last axis), the input %s has "
                   "%lld", SH(w, b), (long long)w->dim[3], SH(x, a), (long long)x->dim[3]);
  if (o->ndim != 4)
    return kr_fail(ctx, KR_EARG, WHO ": the output shape (attribute 'shape') must have 4 entries (batch, rows, cols, "
                   "channels), got %d", o->ndim);
  if (o->dim[1] < 1 || o->dim[2] < 1 || o->dim[1] > ATTR_MAX || o->dim[2] > ATTR_MAX)
    return kr_fail(ctx, KR_EARG, WHO ": bad output shape %s", SH(o, a));
  if (o->dim[3] != w->dim[2])
    return kr_fail(ctx, KR_ESHAPE, WHO ": the output shape %s has %lld channels, the kernel %s gives %lld", SH(o, a),
                   (long long)o->dim[3], SH(w, b), (long long)w->dim[2]);
  int64_t *at = n->attr.i;
  for (int k = KR_CONV_STRIDE_H; k <= KR_CONV_DILATION_W; k++)
    if (at[k] < 1 || at[k] > ATTR_MAX)
      return kr_fail(ctx, KR_EARG, WHO ": strides and dilations must be in [1, %lld], got %lld", (long long)ATTR_MAX,
                     (long long)at[k]);
  double relu = n->attr.f[KR_CONV_RELU];
  if (relu != 0 && relu != 1)
    return kr_fail(ctx, KR_EARG, WHO ": relu (the fused activation) must be 0 (linear) or 1 (relu), got %g", relu);
  static const char *const axis[2] = {"rows", "columns"};
  static const char *const first_name[2] = {"pad_top", "pad_left"};
  for (int d = 0; d < 2; d++) {
    int64_t s = at[KR_CONV_STRIDE_H + d], dl = at[KR_CONV_DILATION_H + d], k = w->dim[d];
    int64_t first = at[d == 0 ? KR_CONV_PAD_TOP : KR_CONV_PAD_LEFT];
    if (first < 0 || first > (k - 1) * dl)
      return kr_fail(ctx, KR_EARG, WHO ": %s must be in [0, %lld] (the kernel's extent less one), got %lld",
                     first_name[d], (long long)((k - 1) * dl), (long long)first);
    int64_t pad = end_pad(x->dim[d + 1], o->dim[d + 1], s, k, dl, first);
    if (pad < 0)
      return kr_fail(ctx, KR_ESHAPE, WHO ": an output of %lld %s does not come from the input's %lld with stride %lld, "
                     "kernel extent %lld and %s %lld (the convolution of the output does not give the input back)",
                     (long long)o->dim[d + 1], axis[d], (long long)x->dim[d + 1], (long long)s,
                     (long long)((k - 1) * dl + 1), first_name[d], (long long)first);
    at[d == 0 ? KR_CONV_PAD_BOTTOM : KR_CONV_PAD_RIGHT] = pad;
  }
  if (n->nin == 3) {
    const kr_shape *bs = &n->in[2]->shape;
    if (bs->ndim != 1 || bs->dim[0] != w->dim[2])
      return kr_fail(ctx, KR_ESHAPE, WHO ": the bias has shape %s, expected (%lld,)", SH(bs, a), (long long)w->dim[2]);
  }
  kr_shape out = *o;
  out.dim[0] = x->dim[0];
  n->shape = out;
  int t = kr_get_num_threads(ctx);
  n->attr.f[KR_CONV_SLOTS] = t < 1 ? 1 : t > KR_CONV_MAX_SLOTS ? KR_CONV_MAX_SLOTS : t;
  return KR_OK;
}

/* dz: dy, or dy where y > 0 with the fused relu. When dy is the input
** gradient of a conv reading this node's output, that node masks it as it
** writes it (conv2d_grad_input f3, as ops_conv.c's masked_dy); else a
** relu_grad node (y > 0 exactly where the pre-activation is > 0). */
static kr_node *relu_dz(kr_ctx *ctx, kr_node *n, kr_node *dy)
{
  kr_attr a = dy->attr;
  if (dy->op == KR_OP_CONV2D_GRAD_INPUT && dy->in[2] == n && a.f[KR_CONV_MASK_X] == 0) {
    a.f[KR_CONV_MASK_X] = 1;
    return kr_node_op(ctx, dy->op, dy->nin, dy->in, &a);
  }
  memset(&a, 0, sizeof a);
  return kr_op2(ctx, KR_OP_RELU_GRAD, dy, n, &a);
}

int kr_conv_transpose_grad(kr_ctx *ctx, kr_node *n, kr_node *dy, kr_node **dx)
{
  kr_node *x = n->in[0], *w = n->in[1];
  kr_node *dz = dy;
  if (n->attr.f[KR_CONV_RELU] != 0) {
    dz = relu_dz(ctx, n, dy);
    if (!dz) return kr_errcode(ctx);
  } else {
    kr_node_retain(dz);
  }
  kr_attr a;
  memset(&a, 0, sizeof a);
  memcpy(a.i, n->attr.i, sizeof a.i);   /* the convolution's geometry, pads included; linear */
  kr_node *ci[2] = {dz, w}, *ki[3] = {x, dz, w};
  dx[0] = kr_node_op(ctx, KR_OP_CONV2D, 2, ci, &a);
  dx[1] = dx[0] ? kr_node_op(ctx, KR_OP_CONV2D_GRAD_KERNEL, 3, ki, &a) : NULL;
  if (dx[1] && n->nin == 3) dx[2] = kr_unbroadcast(ctx, dz, n->in[2]);
  kr_node_release(dz);
  if (!dx[0] || !dx[1] || (n->nin == 3 && !dx[2])) return kr_errcode(ctx);
  return KR_OK;
}
