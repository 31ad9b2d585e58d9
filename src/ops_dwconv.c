/*
** ops_dwconv.c -- shape rules and gradient rule of depthwise_conv2d and its
** two gradient helpers (see ops_conv.h; kernels in kernels/dwconv.c).
** Layout channels_last: x (N, H, W, C) with w (KH, KW, C, M), or the 1-D case
** x (N, T, C) with w (KW, C, M) run as height 1; the output has C*M
** channels, channel c*M + m from input channel c and multiplier m.
** The shape rules check everything the kernels rely on, so that a node made
** by name from Lua with odd inputs fails here, never in a kernel.
*/
#include "kr.h"
#include "ops.h"
#include "ops_conv.h"

#include <string.h>

const kr_attrname kr_dwconv_attrs[] = {
  {"stride_h", KR_ATTR_INT, KR_CONV_STRIDE_H},
  {"stride_w", KR_ATTR_INT, KR_CONV_STRIDE_W},
  {"dilation_h", KR_ATTR_INT, KR_CONV_DILATION_H},
  {"dilation_w", KR_ATTR_INT, KR_CONV_DILATION_W},
  {"pad_top", KR_ATTR_INT, KR_CONV_PAD_TOP},
  {"pad_bottom", KR_ATTR_INT, KR_CONV_PAD_BOTTOM},
  {"pad_left", KR_ATTR_INT, KR_CONV_PAD_LEFT},
  {"pad_right", KR_ATTR_INT, KR_CONV_PAD_RIGHT},
  {NULL, 0, 0}
};

#define SH(s, b) kr_shape_str((s), (b), sizeof(b))
#define ATTR_MAX ((int64_t)1 << 24)   /* strides, dilations, pads: keeps products in range */

static const char *opname(const kr_node *n) { return kr_ops[n->op].name; }

/* the output shape of the depthwise convolution of x by w under n's attributes */
static int dw_out(kr_ctx *ctx, const kr_node *n, const kr_shape *x, const kr_shape *w, kr_shape *out)
{
  char a[128], b[128];
  int r = x->ndim;
  if (r != 3 && r != 4)
    return kr_fail(ctx, KR_ESHAPE, "%s: expected an input of rank 3 (batch, steps, channels) or 4 (batch, rows, cols, "
                   "channels), got shape %s", opname(n), SH(x, a));
  for (int i = 1; i < r; i++)
    if (x->dim[i] < 1) return kr_fail(ctx, KR_ESHAPE, "%s: input shape %s has an empty or unknown axis", opname(n), SH(x, a));
  if (w->ndim != r)
    return kr_fail(ctx, KR_ESHAPE, "%s: a depthwise kernel of shape %s does not fit an input of shape %s (expected rank %d)",
                   opname(n), SH(w, b), SH(x, a), r);
  for (int i = 0; i < r; i++)
    if (w->dim[i] < 1 || w->dim[i] > ATTR_MAX)
      return kr_fail(ctx, KR_ESHAPE, "%s: bad depthwise kernel shape %s", opname(n), SH(w, b));
  if (w->dim[r - 2] != x->dim[r - 1])
    return kr_fail(ctx, KR_ESHAPE, "%s: the depthwise kernel %s expects %lld input channels, the input %s has %lld",
                   opname(n), SH(w, b), (long long)w->dim[r - 2], SH(x, a), (long long)x->dim[r - 1]);
  const int64_t *at = n->attr.i;
  for (int k = KR_CONV_STRIDE_H; k <= KR_CONV_PAD_RIGHT; k++) {
    int64_t lo = k < KR_CONV_PAD_TOP ? 1 : 0;
    if (at[k] < lo || at[k] > ATTR_MAX)
      return kr_fail(ctx, KR_EARG, "%s: attribute '%s' must be in [%lld, %lld], got %lld", opname(n),
                     kr_attr_name(n->op, KR_ATTR_INT, k), (long long)lo, (long long)ATTR_MAX, (long long)at[k]);
  }
  if (r == 3 && (at[KR_CONV_STRIDE_H] != 1 || at[KR_CONV_DILATION_H] != 1 || at[KR_CONV_PAD_TOP] != 0 ||
                 at[KR_CONV_PAD_BOTTOM] != 0))
    return kr_fail(ctx, KR_EARG, "%s: a rank-3 input has no height: stride_h and dilation_h must be 1, pad_top and "
                   "pad_bottom 0", opname(n));
  for (int k = 0; k < KR_MAX_ATTR; k++)
    if (n->attr.f[k] != 0)
      return kr_fail(ctx, KR_EARG, "%s: float attribute %d must be 0 (no fused activation), got %g", opname(n), k,
                     n->attr.f[k]);
  int64_t H = r == 4 ? x->dim[1] : 1, W = x->dim[r - 2];
  int64_t KH = r == 4 ? w->dim[0] : 1, KW = w->dim[r - 3];
  int64_t eh = (KH - 1) * at[KR_CONV_DILATION_H] + 1, ew = (KW - 1) * at[KR_CONV_DILATION_W] + 1;
  int64_t ph = H + at[KR_CONV_PAD_TOP] + at[KR_CONV_PAD_BOTTOM], pw = W + at[KR_CONV_PAD_LEFT] + at[KR_CONV_PAD_RIGHT];
  if (eh > ph || ew > pw)
    return kr_fail(ctx, KR_ESHAPE, "%s: the kernel %s (extent %lldx%lld with dilation) is larger than the padded input "
                   "%lldx%lld", opname(n), SH(w, b), (long long)eh, (long long)ew, (long long)ph, (long long)pw);
  int64_t CM = w->dim[r - 2] * w->dim[r - 1];
  if (CM > ATTR_MAX)
    return kr_fail(ctx, KR_ESHAPE, "%s: %lld output channels are too many", opname(n), (long long)CM);
  *out = *x;
  if (r == 4) out->dim[1] = (ph - eh) / at[KR_CONV_STRIDE_H] + 1;
  out->dim[r - 2] = (pw - ew) / at[KR_CONV_STRIDE_W] + 1;
  out->dim[r - 1] = CM;
  return KR_OK;
}

int kr_dwconv_shape(kr_ctx *ctx, kr_node *n)
{
  kr_shape out;
  if (dw_out(ctx, n, &n->in[0]->shape, &n->in[1]->shape, &out)) return kr_errcode(ctx);
  n->shape = out;
  return KR_OK;
}

/* the gradient helpers: dy must be what the depthwise conv of x by w gives */
static int check_dy(kr_ctx *ctx, kr_node *n, const kr_shape *x, const kr_shape *w)
{
  kr_shape out;
  char a[128], b[128];
  if (dw_out(ctx, n, x, w, &out)) return kr_errcode(ctx);
  const kr_shape *dy = &n->in[0]->shape;
  if (!kr_shape_eq(dy, &out))
    return kr_fail(ctx, KR_ESHAPE, "%s: the output gradient has shape %s, the convolution gives %s", opname(n),
                   SH(dy, a), SH(&out, b));
  return KR_OK;
}

int kr_dwconv_grad_input_shape(kr_ctx *ctx, kr_node *n)
{
  /* (dy, w, x) */
  if (check_dy(ctx, n, &n->in[2]->shape, &n->in[1]->shape)) return kr_errcode(ctx);
  n->shape = n->in[2]->shape;
  return KR_OK;
}

int kr_dwconv_grad_kernel_shape(kr_ctx *ctx, kr_node *n)
{
  /* (dy, x, w) */
  if (check_dy(ctx, n, &n->in[1]->shape, &n->in[2]->shape)) return kr_errcode(ctx);
  n->shape = n->in[2]->shape;
  return KR_OK;
}

int kr_dwconv_grad(kr_ctx *ctx, kr_node *n, kr_node *dy, kr_node **dx)
{
  kr_node *gi[3] = {dy, n->in[1], n->in[0]}, *gk[3] = {dy, n->in[0], n->in[1]};
  dx[0] = kr_node_op(ctx, KR_OP_DEPTHWISE_CONV2D_GRAD_INPUT, 3, gi, &n->attr);
  dx[1] = dx[0] ? kr_node_op(ctx, KR_OP_DEPTHWISE_CONV2D_GRAD_KERNEL, 3, gk, &n->attr) : NULL;
  if (!dx[0] || !dx[1]) {
    kr_node_release(dx[0]);
    dx[0] = NULL;
    return kr_errcode(ctx);
  }
  return KR_OK;
}
