/*
** ops_backend.c -- shape and gradient rules of the backend family (see
** ops_backend.h for what each op computes; kernels in kernels/backend.c).
** Shape letters: B the batch axis (negative while symbolic).
*/
#include "kr.h"
#include "ops_backend.h"

#include <string.h>

/* ---- the attributes keras.core.op takes by name (slots: ops_backend.h) ---- */

const kr_attrname kr_fill_attrs[] = {
  {"value", KR_ATTR_FLOAT, KR_FILL_VALUE},
  {NULL, 0, 0}
};

const kr_attrname kr_normal_attrs[] = {
  {"mean", KR_ATTR_FLOAT, KR_RANDOM_A},
  {"stddev", KR_ATTR_FLOAT, KR_RANDOM_B},
  {NULL, 0, 0}
};

const kr_attrname kr_uniform_attrs[] = {
  {"minval", KR_ATTR_FLOAT, KR_RANDOM_A},
  {"maxval", KR_ATTR_FLOAT, KR_RANDOM_B},
  {NULL, 0, 0}
};

const kr_attrname kr_binomial_attrs[] = {
  {"p", KR_ATTR_FLOAT, KR_RANDOM_A},
  {NULL, 0, 0}
};

const kr_attrname kr_cumsum_attrs[] = {
  {"axis", KR_ATTR_INT, KR_CUM_AXIS},
  {"reverse", KR_ATTR_INT, KR_CUM_REVERSE},
  {NULL, 0, 0}
};

const kr_attrname kr_cumprod_attrs[] = {
  {"axis", KR_ATTR_INT, KR_CUM_AXIS},
  {NULL, 0, 0}
};

const kr_attrname kr_reverse_attrs[] = {
  {"axes", KR_ATTR_INT, KR_REVERSE_AXES},
  {NULL, 0, 0}
};

#define SH(s, b) kr_shape_str((s), (b), sizeof(b))

int kr_bk_shape_shape(kr_ctx *ctx, kr_node *n)
{
  kr_shape r;
  memset(&r, 0, sizeof r);
  r.ndim = 1;
  r.dim[0] = n->in[0]->shape.ndim;
  n->shape = r;
  return KR_OK;
}

/* fill and the random ops: the target shape is attr.shape */
int kr_bk_fill_shape(kr_ctx *ctx, kr_node *n)
{
  const kr_shape *t = &n->attr.shape, *like = &n->in[0]->shape;
  char b[128];
  for (int i = 0; i < t->ndim; i++)
    /* a None (variable-length) axis only where the like input has it: noise of
    ** x's shape in a model built for every length, run per length */
    if (t->dim[i] < 0 && i != 0 && !(like->ndim == t->ndim && like->dim[i] < 0))
      return kr_fail(ctx, KR_ESHAPE, "%s: bad shape %s (only the first axis may be the batch axis)",
                     kr_op_name(n->op), SH(t, b));
  if (n->op == KR_OP_RANDOM_UNIFORM && !(n->attr.f[KR_RANDOM_A] <= n->attr.f[KR_RANDOM_B]))
    return kr_fail(ctx, KR_EARG, "random_uniform: minval %g is above maxval %g", n->attr.f[KR_RANDOM_A],
                   n->attr.f[KR_RANDOM_B]);
  if ((n->op == KR_OP_RANDOM_NORMAL || n->op == KR_OP_TRUNCATED_NORMAL) && !(n->attr.f[KR_RANDOM_B] >= 0))
    return kr_fail(ctx, KR_EARG, "%s: stddev must be >= 0, got %g", kr_op_name(n->op), n->attr.f[KR_RANDOM_B]);
  if (n->op == KR_OP_RANDOM_BINOMIAL && !(n->attr.f[KR_RANDOM_A] >= 0 && n->attr.f[KR_RANDOM_A] <= 1))
    return kr_fail(ctx, KR_EARG, "random_binomial: p must be in [0, 1], got %g", n->attr.f[KR_RANDOM_A]);
  n->shape = *t;
  return KR_OK;
}

int kr_bk_cum_shape(kr_ctx *ctx, kr_node *n)
{
  const kr_shape *x = &n->in[0]->shape;
  int64_t ax = n->attr.i[KR_CUM_AXIS];
  char b[128];
  if (ax < -x->ndim || ax >= x->ndim)
    return kr_fail(ctx, KR_EARG, "%s: axis %lld out of range for shape %s", kr_op_name(n->op), (long long)ax,
                   SH(x, b));
  if (ax < 0) ax += x->ndim;
  if (ax == 0 && kr_is_batched(x))
    return kr_fail(ctx, KR_ESHAPE, "%s: cannot run along the batch axis (input shape %s)", kr_op_name(n->op),
                   SH(x, b));
  n->attr.i[KR_CUM_AXIS] = ax;
  n->shape = *x;
  return KR_OK;
}

int kr_bk_second_shape(kr_ctx *ctx, kr_node *n)
{
  n->shape = n->in[1]->shape;
  return KR_OK;
}

int kr_bk_select_shape(kr_ctx *ctx, kr_node *n)
{
  for (int i = 1; i < 3; i++)
    if (!kr_shape_eq(&n->in[i]->shape, &n->in[0]->shape)) {
      char a[128], b[128];
      return kr_fail(ctx, KR_ESHAPE, "select: the condition has shape %s but branch %d has %s",
                     SH(&n->in[0]->shape, a), i, SH(&n->in[i]->shape, b));
    }
  n->shape = n->in[0]->shape;
  return KR_OK;
}

int kr_bk_cumsum_grad(kr_ctx *ctx, kr_node *n, kr_node *dy, kr_node **dx)
{
  /* y_j = sum_{i<=j} x_i: dx_i = sum_{j>=i} dy_j, the running sum the other way */
  kr_attr a = n->attr;
  a.i[KR_CUM_REVERSE] = !n->attr.i[KR_CUM_REVERSE];
  dx[0] = kr_op1(ctx, KR_OP_CUMSUM, dy, &a);
  return dx[0] ? KR_OK : kr_errcode(ctx);
}

int kr_bk_cumprod_grad(kr_ctx *ctx, kr_node *n, kr_node *dy, kr_node **dx)
{
  dx[0] = kr_op2(ctx, KR_OP_CUMPROD_GRAD, dy, n->in[0], &n->attr);
  return dx[0] ? KR_OK : kr_errcode(ctx);
}

int kr_bk_select_grad(kr_ctx *ctx, kr_node *n, kr_node *dy, kr_node **dx)
{
  kr_node *z = kr_op1(ctx, KR_OP_ZEROS_LIKE, dy, NULL);
  if (!z) return kr_errcode(ctx);
  kr_node *in1[3] = {n->in[0], dy, z}, *in2[3] = {n->in[0], z, dy};
  dx[0] = NULL;
  dx[1] = kr_node_op(ctx, KR_OP_SELECT, 3, in1, NULL);
  dx[2] = dx[1] ? kr_node_op(ctx, KR_OP_SELECT, 3, in2, NULL) : NULL;
  kr_node_release(z);
  if (!dx[1] || !dx[2]) {
    kr_node_release(dx[1]);
    dx[1] = NULL;
    return kr_errcode(ctx);
  }
  return KR_OK;
}

int kr_bk_same_shape(kr_ctx *ctx, kr_node *n)
{
  n->shape = n->in[0]->shape;
  return KR_OK;
}

int kr_bk_reverse_shape(kr_ctx *ctx, kr_node *n)
{
  const kr_shape *x = &n->in[0]->shape;
  if (n->attr.i[KR_REVERSE_AXES] < 0 || (n->attr.i[KR_REVERSE_AXES] >> x->ndim)) {
    char b[128];
    return kr_fail(ctx, KR_EARG, "reverse: axis out of range for shape %s", SH(x, b));
  }
  n->shape = *x;
  return KR_OK;
}

/* dx = dy * f(x) */
static int grad_times(kr_ctx *ctx, kr_node *dy, kr_node *f, kr_node **dx)
{
  if (!f) return kr_errcode(ctx);
  dx[0] = kr_op2(ctx, KR_OP_MUL, dy, f, NULL);
  kr_node_release(f);
  return dx[0] ? KR_OK : kr_errcode(ctx);
}

int kr_bk_sin_grad(kr_ctx *ctx, kr_node *n, kr_node *dy, kr_node **dx)
{
  return grad_times(ctx, dy, kr_op1(ctx, KR_OP_COS, n->in[0], NULL), dx);
}

int kr_bk_cos_grad(kr_ctx *ctx, kr_node *n, kr_node *dy, kr_node **dx)
{
  kr_node *s = kr_op1(ctx, KR_OP_SIN, n->in[0], NULL);
  kr_node *ns = s ? kr_op1(ctx, KR_OP_NEG, s, NULL) : NULL;
  kr_node_release(s);
  return grad_times(ctx, dy, ns, dx);
}

int kr_bk_reverse_grad(kr_ctx *ctx, kr_node *n, kr_node *dy, kr_node **dx)
{
  dx[0] = kr_op1(ctx, KR_OP_REVERSE, dy, &n->attr);
  return dx[0] ? KR_OK : kr_errcode(ctx);
}
