/*
** ops.c -- the op table: for every op its name, shape rule, kernel and
** gradient rule, one row each (the rows are listed in opdefs.h; a
** _Static_assert below ties the table to KR_OP_COUNT).
** Shape rules fail with the op's name and both shapes in the message. Gradient
** rules build nodes of other ops, so every gradient runs in the same plan.
** Shape letters: B the batch axis (negative while symbolic: -k is k x batch).
*/
#include "kr.h"
#include "ops.h"
#include "kernels/kernels.h"
#include "ops_conv.h"
#include "ops_rnn.h"
#include "ops_backend.h"
#include "ops_conv_transpose.h"

#include <string.h>

#define SH(s, b) kr_shape_str((s), (b), sizeof(b))

static int fail_shape(kr_ctx *ctx, const kr_node *n, const char *what)
{
  char a[128];
  return kr_fail(ctx, KR_ESHAPE, "%s: %s (input shape %s)", kr_ops[n->op].name, what,
                 SH(&n->in[0]->shape, a));
}

/* ---- shape rules ---- */

static int shape_same(kr_ctx *ctx, kr_node *n)
{
  n->shape = n->in[0]->shape;
  return KR_OK;
}

/* the first input's shape; the others must match it */
static int shape_same_all(kr_ctx *ctx, kr_node *n)
{
  for (int i = 1; i < n->nin; i++)
    if (!kr_shape_eq(&n->in[i]->shape, &n->in[0]->shape)) {
      char a[128], b[128];
      return kr_fail(ctx, KR_ESHAPE, "%s: shapes %s and %s differ", kr_ops[n->op].name,
                     SH(&n->in[0]->shape, a), SH(&n->in[i]->shape, b));
    }
  n->shape = n->in[0]->shape;
  return KR_OK;
}

/* (dy, x) gradient helpers: dx has x's shape */
static int shape_second(kr_ctx *ctx, kr_node *n)
{
  n->shape = n->in[1]->shape;
  return KR_OK;
}

static int shape_broadcast(kr_ctx *ctx, kr_node *n)
{
  const kr_shape *a = &n->in[0]->shape, *b = &n->in[1]->shape;
  kr_shape r;
  memset(&r, 0, sizeof r);
  r.ndim = a->ndim > b->ndim ? a->ndim : b->ndim;
  for (int i = 0; i < r.ndim; i++) {
    int ia = i - (r.ndim - a->ndim), ib = i - (r.ndim - b->ndim);
    int64_t da = ia >= 0 ? a->dim[ia] : 1, db = ib >= 0 ? b->dim[ib] : 1;
    int64_t d;
    if (da == db) d = da;
    else if (da == 1) d = db;
    else if (db == 1) d = da;
    else {
      char x[128], y[128];
      return kr_fail(ctx, KR_ESHAPE, "%s: cannot broadcast shapes %s and %s", kr_ops[n->op].name,
                     SH(a, x), SH(b, y));
    }
    /* a negative size past the first axis is a None length; a batch axis
    ** (an operand's own first axis) must stay first */
    if (d < 0 && i != 0 && ((da < 0 && ia == 0) || (db < 0 && ib == 0))) {
      char x[128], y[128];
      return kr_fail(ctx, KR_ESHAPE, "%s: shapes %s and %s would move the batch axis", kr_ops[n->op].name,
                     SH(a, x), SH(b, y));
    }
    r.dim[i] = d;
  }
  n->shape = r;
  return KR_OK;
}

static int norm_axis(kr_ctx *ctx, const kr_node *n, int64_t axis, int ndim, int64_t *out)
{
  if (axis < -ndim || axis >= ndim) {
    char a[128];
    return kr_fail(ctx, KR_EARG, "%s: axis %lld out of range for shape %s", kr_ops[n->op].name,
                   (long long)axis, SH(&n->in[0]->shape, a));
  }
  *out = axis < 0 ? axis + ndim : axis;
  return KR_OK;
}

/* reductions: i0 = mask of axes (bit k: axis k), i1 = keepdims */
static int shape_reduce(kr_ctx *ctx, kr_node *n)
{
  const kr_shape *x = &n->in[0]->shape;
  int64_t mask = n->attr.i[KR_REDUCE_AXES];
  if (mask >> x->ndim) return fail_shape(ctx, n, "axis out of range");
  kr_shape r;
  memset(&r, 0, sizeof r);
  for (int i = 0; i < x->ndim; i++) {
    if (mask & ((int64_t)1 << i)) {
      if (n->attr.i[KR_REDUCE_KEEPDIMS]) r.dim[r.ndim++] = 1;
    } else {
      r.dim[r.ndim++] = x->dim[i];
    }
  }
  if (kr_is_batched(x) && (mask & 1) && n->attr.i[KR_REDUCE_KEEPDIMS]) r.dim[0] = 1;
  n->shape = r;
  return KR_OK;
}

static int shape_argreduce(kr_ctx *ctx, kr_node *n)
{
  const kr_shape *x = &n->in[0]->shape;
  int64_t ax;
  if (norm_axis(ctx, n, n->attr.i[KR_AXIS], x->ndim, &ax)) return kr_errcode(ctx);
  n->attr.i[KR_AXIS] = ax;
  kr_shape r;
  memset(&r, 0, sizeof r);
  for (int i = 0; i < x->ndim; i++)
    if (i != ax) r.dim[r.ndim++] = x->dim[i];
  n->shape = r;
  return KR_OK;
}

static int shape_softmax(kr_ctx *ctx, kr_node *n)
{
  const kr_shape *x = &n->in[0]->shape;
  if (x->ndim < 1) return fail_shape(ctx, n, "needs at least one axis");
  int64_t ax;
  if (norm_axis(ctx, n, n->attr.i[KR_AXIS], x->ndim, &ax)) return kr_errcode(ctx);
  if (ax == 0 && kr_is_batched(x)) return fail_shape(ctx, n, "cannot normalize over the batch axis");
  n->attr.i[KR_AXIS] = ax;
  n->shape = *x;
  return KR_OK;
}

static int shape_sum_to(kr_ctx *ctx, kr_node *n)
{
  const kr_shape *x = &n->in[0]->shape, *t = &n->attr.shape;
  if (t->ndim > x->ndim) goto bad;
  for (int i = 0; i < t->ndim; i++) {
    int64_t dx = x->dim[x->ndim - t->ndim + i], dt = t->dim[i];
    if (dt != dx && dt != 1) goto bad;
  }
  n->shape = *t;
  return KR_OK;
bad:;
  char a[128], b[128];
  return kr_fail(ctx, KR_ESHAPE, "sum_to: cannot reduce %s to %s", SH(x, a), SH(t, b));
}

/* matmul: see opdefs.h. a viewed as (M, K); i0 transposes a, i1 transposes b. */
static int shape_matmul(kr_ctx *ctx, kr_node *n)
{
  const kr_shape *a = &n->in[0]->shape, *b = &n->in[1]->shape;
  int ta = (int)n->attr.i[KR_MATMUL_TRANSPOSE_A], tb = (int)n->attr.i[KR_MATMUL_TRANSPOSE_B];
  char x[128], y[128];
  kr_shape r;
  memset(&r, 0, sizeof r);
  if (a->ndim < 1 || b->ndim < 1) goto bad;
  if (!ta) {
    if (b->ndim != 2 || kr_is_batched(b)) goto bad;
    int64_t K = a->dim[a->ndim - 1];
    int64_t bk = tb ? b->dim[1] : b->dim[0], bn = tb ? b->dim[0] : b->dim[1];
    if (K != bk) goto bad;
    r = *a;
    r.dim[r.ndim - 1] = bn;
    if (r.ndim == 1) goto bad;
  } else {
    /* a (..., K), b (..., N) with the same leading axes: out (K, N) */
    if (tb || a->ndim != b->ndim || a->ndim < 2) goto bad;
    for (int i = 0; i < a->ndim - 1; i++)
      if (a->dim[i] != b->dim[i]) goto bad;
    r.ndim = 2;
    r.dim[0] = a->dim[a->ndim - 1];
    r.dim[1] = b->dim[b->ndim - 1];
  }
  n->shape = r;
  return KR_OK;
bad:
  return kr_fail(ctx, KR_ESHAPE, "matmul: shapes %s and %s do not align%s", SH(a, x), SH(b, y),
                 ta ? " (transposed a)" : tb ? " (transposed b)" : "");
}

/* batch_matmul: a (B, n, k) (transposed: (B, k, n)), b (B, k, m) (transposed:
** (B, m, k)) -> (B, n, m); B may be the symbolic batch */
static int shape_batch_matmul(kr_ctx *ctx, kr_node *n)
{
  const kr_shape *a = &n->in[0]->shape, *b = &n->in[1]->shape;
  int ta = (int)n->attr.i[KR_MATMUL_TRANSPOSE_A], tb = (int)n->attr.i[KR_MATMUL_TRANSPOSE_B];
  char x[128], y[128];
  if (a->ndim != 3 || b->ndim != 3 || a->dim[0] != b->dim[0]) goto bad;
  int64_t an = ta ? a->dim[2] : a->dim[1], ak = ta ? a->dim[1] : a->dim[2];
  int64_t bk = tb ? b->dim[2] : b->dim[1], bm = tb ? b->dim[1] : b->dim[2];
  if (ak != bk) goto bad;
  n->shape = *a;
  n->shape.dim[1] = an;
  n->shape.dim[2] = bm;
  return KR_OK;
bad:
  return kr_fail(ctx, KR_ESHAPE, "batch_dot: shapes %s and %s do not align", SH(a, x), SH(b, y));
}

/* linear (x, W, b): a plain matmul plus a bias over the last axis */
static int shape_linear(kr_ctx *ctx, kr_node *n)
{
  kr_attr plain;
  memset(&plain, 0, sizeof plain);
  n->attr = plain;
  if (shape_matmul(ctx, n) != KR_OK) return kr_errcode(ctx);
  const kr_shape *b = &n->in[2]->shape;
  if (b->ndim != 1 || b->dim[0] != n->shape.dim[n->shape.ndim - 1]) {
    char x[128], y[128];
    return kr_fail(ctx, KR_ESHAPE, "linear: bias of shape %s does not fit the output %s", SH(b, x), SH(&n->shape, y));
  }
  return KR_OK;
}

/* the sizes other than 1 of s from axis 1 on, in order; their count */
static int non_unit(const kr_shape *s, int64_t *out)
{
  int k = 0;
  for (int i = 1; i < s->ndim; i++)
    if (s->dim[i] != 1) out[k++] = s->dim[i];
  return k;
}

static int shape_reshape(kr_ctx *ctx, kr_node *n)
{
  const kr_shape *x = &n->in[0]->shape, *t = &n->attr.shape;
  char a[128], b[128];
  if (kr_shape_has_none(x) || kr_shape_has_none(t)) {
    /* a None length survives only axes of size 1 coming or going */
    int64_t dx[KR_MAX_DIMS], dt[KR_MAX_DIMS];
    int nx = non_unit(x, dx), nt = non_unit(t, dt);
    int ok = nx == nt && kr_is_batched(t) == kr_is_batched(x) && x->ndim > 0 && t->ndim > 0 && x->dim[0] == t->dim[0];
    for (int i = 0; ok && i < nx; i++)
      if (dx[i] != dt[i]) ok = 0;
    if (!ok)
      return kr_fail(ctx, KR_ESHAPE, "reshape: cannot reshape %s to %s: a None (variable-length) axis can only "
                     "keep its place (only axes of size 1 may come or go)", SH(x, a), SH(t, b));
    n->shape = *t;
    return KR_OK;
  }
  if (kr_is_batched(t) != kr_is_batched(x) || kr_shape_numel(t) != kr_shape_numel(x))
    return kr_fail(ctx, KR_ESHAPE, "reshape: cannot reshape %s to %s", SH(x, a), SH(t, b));
  for (int i = 0; i < t->ndim; i++)
    if (t->dim[i] < 0 && i != 0)
      return kr_fail(ctx, KR_ESHAPE, "reshape: bad target shape %s", SH(t, b));
  n->shape = *t;
  return KR_OK;
}

static int shape_transpose(kr_ctx *ctx, kr_node *n)
{
  const kr_shape *x = &n->in[0]->shape;
  int seen[KR_MAX_DIMS] = {0};
  kr_shape r = *x;
  for (int i = 0; i < x->ndim; i++) {
    int64_t p = n->attr.i[KR_TRANSPOSE_PERM + i];
    if (p < 0 || p >= x->ndim || seen[p]) return fail_shape(ctx, n, "bad permutation");
    seen[p] = 1;
    r.dim[i] = x->dim[p];
  }
  if (kr_is_batched(x) && n->attr.i[KR_TRANSPOSE_PERM] != 0)
    return fail_shape(ctx, n, "the batch axis must stay first");
  n->shape = r;
  return KR_OK;
}

static int shape_concat(kr_ctx *ctx, kr_node *n)
{
  const kr_shape *x = &n->in[0]->shape;
  int64_t ax, given = n->attr.i[KR_AXIS];
  if (norm_axis(ctx, n, n->attr.i[KR_AXIS], x->ndim, &ax)) return kr_errcode(ctx);
  if (ax == 0 && kr_is_batched(x)) return fail_shape(ctx, n, "cannot concatenate on the batch axis");
  n->attr.i[KR_AXIS] = ax;
  kr_shape r = *x;
  for (int k = 1; k < n->nin; k++) {
    const kr_shape *y = &n->in[k]->shape;
    int ok = y->ndim == x->ndim;
    for (int i = 0; ok && i < x->ndim; i++)
      if (i != ax && y->dim[i] != x->dim[i]) ok = 0;
    if (!ok) {
      char a[128], b[128];
      return kr_fail(ctx, KR_ESHAPE, "concatenate: shapes %s and %s do not match except on axis %lld", SH(x, a),
                     SH(y, b), (long long)given);
    }
    if (r.dim[ax] < 0 || y->dim[ax] < 0) r.dim[ax] = KR_NONE;   /* a None length stays None */
    else r.dim[ax] += y->dim[ax];
  }
  n->shape = r;
  return KR_OK;
}

static int shape_slice(kr_ctx *ctx, kr_node *n)
{
  const kr_shape *x = &n->in[0]->shape;
  int64_t ax;
  if (norm_axis(ctx, n, n->attr.i[KR_SLICE_AXIS], x->ndim, &ax)) return kr_errcode(ctx);
  n->attr.i[KR_SLICE_AXIS] = ax;
  int64_t st = n->attr.i[KR_SLICE_START], len = n->attr.i[KR_SLICE_LENGTH];
  if (x->dim[ax] < 0)
    return fail_shape(ctx, n, ax == 0 ? "cannot slice the batch axis" : "cannot slice a None (variable-length) axis");
  if (st < 0 || len < 0 || st + len > x->dim[ax]) return fail_shape(ctx, n, "range out of bounds");
  n->shape = *x;
  n->shape.dim[ax] = len;
  return KR_OK;
}

static int shape_pad_axis(kr_ctx *ctx, kr_node *n)
{
  const kr_shape *x = &n->in[0]->shape;
  int64_t ax = n->attr.i[KR_SLICE_AXIS];
  int64_t start = n->attr.i[KR_SLICE_START], length = n->attr.i[KR_SLICE_LENGTH];
  if (ax < 0 || ax >= x->ndim || start < 0 || start + x->dim[ax] > length)
    return fail_shape(ctx, n, "bad padding");
  n->shape = *x;
  n->shape.dim[ax] = n->attr.i[KR_SLICE_LENGTH];
  return KR_OK;
}

static int shape_broadcast_to(kr_ctx *ctx, kr_node *n)
{
  /* the result must be the second input's shape */
  if (shape_broadcast(ctx, n) != KR_OK) return kr_errcode(ctx);
  if (!kr_shape_eq(&n->shape, &n->in[1]->shape)) {
    char a[128], b[128];
    return kr_fail(ctx, KR_ESHAPE, "broadcast_to: cannot broadcast %s to %s", SH(&n->in[0]->shape, a),
                   SH(&n->in[1]->shape, b));
  }
  return KR_OK;
}

static int shape_gather(kr_ctx *ctx, kr_node *n)
{
  const kr_shape *t = &n->in[0]->shape, *ids = &n->in[1]->shape;
  if (t->ndim != 2 || kr_is_batched(t) || ids->ndim + 1 > KR_MAX_DIMS) return fail_shape(ctx, n, "needs a 2-D table");
  n->shape = *ids;
  n->shape.dim[n->shape.ndim++] = t->dim[1];
  return KR_OK;
}

static int shape_gather_grad(kr_ctx *ctx, kr_node *n)
{
  n->shape = n->in[2]->shape;
  return KR_OK;
}

static int shape_one_hot(kr_ctx *ctx, kr_node *n)
{
  const kr_shape *x = &n->in[0]->shape;
  if (n->attr.i[KR_ONE_HOT_CLASSES] < 1) return fail_shape(ctx, n, "needs a number of classes >= 1");
  if (x->ndim + 1 > KR_MAX_DIMS) return fail_shape(ctx, n, "rank too large");
  n->shape = *x;
  n->shape.dim[n->shape.ndim++] = n->attr.i[KR_ONE_HOT_CLASSES];
  return KR_OK;
}

static int shape_batchnorm(kr_ctx *ctx, kr_node *n)
{
  const kr_shape *x = &n->in[0]->shape;
  int64_t ax;
  if (x->ndim < 1) return fail_shape(ctx, n, "needs at least one axis");
  if (norm_axis(ctx, n, n->attr.i[KR_BN_AXIS], x->ndim, &ax)) return kr_errcode(ctx);
  if (ax == 0 && kr_is_batched(x)) return fail_shape(ctx, n, "cannot normalize the batch axis");
  n->attr.i[KR_BN_AXIS] = ax;
  for (int k = 1; k < 5; k++) {
    const kr_shape *p = &n->in[k]->shape;
    if (p->ndim != 1 || p->dim[0] != x->dim[ax]) {
      char a[128], b[128];
      return kr_fail(ctx, KR_ESHAPE, "batchnorm: parameter %d has shape %s, expected (%lld,) for input %s", k,
                     SH(p, a), (long long)x->dim[ax], SH(x, b));
    }
  }
  n->shape = *x;
  return KR_OK;
}

static int shape_bn_grad(kr_ctx *ctx, kr_node *n)
{
  n->shape = n->in[2]->shape;   /* (dy, bn, x, gamma): dx */
  return KR_OK;
}

static int shape_bn_grad_param(kr_ctx *ctx, kr_node *n)
{
  const kr_node *bn = n->in[1];
  n->shape = bn->in[1]->shape;
  return KR_OK;
}

static int shape_in_train_phase(kr_ctx *ctx, kr_node *n)
{
  if (!kr_shape_eq(&n->in[0]->shape, &n->in[1]->shape)) {
    char a[128], b[128];
    return kr_fail(ctx, KR_ESHAPE, "in_train_phase: branches have shapes %s and %s", SH(&n->in[0]->shape, a),
                   SH(&n->in[1]->shape, b));
  }
  n->shape = n->in[0]->shape;
  return KR_OK;
}

/* ---- gradient rules ---- */

static kr_node *mk_scale(kr_ctx *ctx, kr_node *x, double a, double b)
{
  kr_attr at;
  memset(&at, 0, sizeof at);
  at.f[KR_SCALE_MUL] = a;
  at.f[KR_SCALE_ADD] = b;
  return kr_op1(ctx, KR_OP_SCALE, x, &at);
}

/* dx = unbroadcast(g) to x; consumes g */
static kr_node *unb(kr_ctx *ctx, kr_node *g, const kr_node *x)
{
  if (!g) return NULL;
  kr_node *r = kr_unbroadcast(ctx, g, x);
  kr_node_release(g);
  return r;
}

#define GRAD_DONE(...) do { kr_node *outs_[] = {__VA_ARGS__}; for (size_t q_ = 0; q_ < sizeof outs_ / sizeof *outs_; q_++) if (!outs_[q_]) return kr_errcode(ctx); return KR_OK; } while (0)

static int grad_add(kr_ctx *ctx, kr_node *n, kr_node *dy, kr_node **dx)
{
  dx[0] = kr_unbroadcast(ctx, dy, n->in[0]);
  dx[1] = kr_unbroadcast(ctx, dy, n->in[1]);
  GRAD_DONE(dx[0], dx[1]);
}

static int grad_sub(kr_ctx *ctx, kr_node *n, kr_node *dy, kr_node **dx)
{
  dx[0] = kr_unbroadcast(ctx, dy, n->in[0]);
  dx[1] = unb(ctx, kr_op1(ctx, KR_OP_NEG, dy, NULL), n->in[1]);
  GRAD_DONE(dx[0], dx[1]);
}

static int grad_mul(kr_ctx *ctx, kr_node *n, kr_node *dy, kr_node **dx)
{
  dx[0] = unb(ctx, kr_op2(ctx, KR_OP_MUL, dy, n->in[1], NULL), n->in[0]);
  dx[1] = unb(ctx, kr_op2(ctx, KR_OP_MUL, dy, n->in[0], NULL), n->in[1]);
  GRAD_DONE(dx[0], dx[1]);
}

static int grad_div(kr_ctx *ctx, kr_node *n, kr_node *dy, kr_node **dx)
{
  /* y = a / b: da = dy / b, db = -dy * y / b */
  dx[0] = unb(ctx, kr_op2(ctx, KR_OP_DIV, dy, n->in[1], NULL), n->in[0]);
  kr_node *t = kr_op2(ctx, KR_OP_MUL, dy, n, NULL);
  kr_node *u = t ? kr_op2(ctx, KR_OP_DIV, t, n->in[1], NULL) : NULL;
  kr_node_release(t);
  dx[1] = u ? unb(ctx, kr_op1(ctx, KR_OP_NEG, u, NULL), n->in[1]) : NULL;
  kr_node_release(u);
  GRAD_DONE(dx[0], dx[1]);
}

static int grad_pow(kr_ctx *ctx, kr_node *n, kr_node *dy, kr_node **dx)
{
  /* y = a^b: da = dy * b * a^(b-1) = dy * b * y / a; db = dy * y * log(a) */
  kr_node *a = n->in[0], *b = n->in[1];
  kr_node *bm1 = mk_scale(ctx, b, 1.0, -1.0);
  kr_node *p = bm1 ? kr_op2(ctx, KR_OP_POW, a, bm1, NULL) : NULL;
  kr_node *q = p ? kr_op2(ctx, KR_OP_MUL, p, b, NULL) : NULL;
  dx[0] = q ? unb(ctx, kr_op2(ctx, KR_OP_MUL, dy, q, NULL), a) : NULL;
  kr_node_release(bm1);
  kr_node_release(p);
  kr_node_release(q);
  kr_node *la = kr_op1(ctx, KR_OP_LOG, a, NULL);
  kr_node *r = la ? kr_op2(ctx, KR_OP_MUL, n, la, NULL) : NULL;
  dx[1] = r ? unb(ctx, kr_op2(ctx, KR_OP_MUL, dy, r, NULL), b) : NULL;
  kr_node_release(la);
  kr_node_release(r);
  GRAD_DONE(dx[0], dx[1]);
}

static int grad_maxmin(kr_ctx *ctx, kr_node *n, kr_node *dy, kr_node **dx)
{
  /* maximum: a gets dy where a >= b or a is NaN (the forward chose a),
  ** b elsewhere; minimum: where a <= b or a is NaN */
  int cmp = n->op == KR_OP_MAXIMUM ? KR_OP_GREATER_EQUAL : KR_OP_LESS_EQUAL;
  kr_node *ge = kr_op2(ctx, cmp, n->in[0], n->in[1], NULL);
  kr_node *nan = ge ? kr_op2(ctx, KR_OP_NOT_EQUAL, n->in[0], n->in[0], NULL) : NULL;
  kr_node *m = nan ? kr_op2(ctx, KR_OP_ADD, ge, nan, NULL) : NULL;
  kr_node_release(ge);
  kr_node_release(nan);
  kr_node *nm = m ? mk_scale(ctx, m, -1.0, 1.0) : NULL;
  dx[0] = m ? unb(ctx, kr_op2(ctx, KR_OP_MUL, dy, m, NULL), n->in[0]) : NULL;
  dx[1] = nm ? unb(ctx, kr_op2(ctx, KR_OP_MUL, dy, nm, NULL), n->in[1]) : NULL;
  kr_node_release(m);
  kr_node_release(nm);
  GRAD_DONE(dx[0], dx[1]);
}

static int grad_neg(kr_ctx *ctx, kr_node *n, kr_node *dy, kr_node **dx)
{
  dx[0] = kr_op1(ctx, KR_OP_NEG, dy, NULL);
  GRAD_DONE(dx[0]);
}

static int grad_identity(kr_ctx *ctx, kr_node *n, kr_node *dy, kr_node **dx)
{
  kr_node_retain(dy);
  dx[0] = dy;
  return KR_OK;
}

/* dx = dy * f(node) for an elementwise factor f built by the caller */
static int grad_times(kr_ctx *ctx, kr_node *dy, kr_node *factor, kr_node **dx)
{
  if (!factor) return kr_errcode(ctx);
  dx[0] = kr_op2(ctx, KR_OP_MUL, dy, factor, NULL);
  kr_node_release(factor);
  GRAD_DONE(dx[0]);
}

static int grad_abs(kr_ctx *ctx, kr_node *n, kr_node *dy, kr_node **dx)
{
  return grad_times(ctx, dy, kr_op1(ctx, KR_OP_SIGN, n->in[0], NULL), dx);
}

static int grad_square(kr_ctx *ctx, kr_node *n, kr_node *dy, kr_node **dx)
{
  return grad_times(ctx, dy, mk_scale(ctx, n->in[0], 2.0, 0.0), dx);
}

static int grad_sqrt(kr_ctx *ctx, kr_node *n, kr_node *dy, kr_node **dx)
{
  /* dy * 0.5 / y */
  kr_node *h = mk_scale(ctx, dy, 0.5, 0.0);
  dx[0] = h ? kr_op2(ctx, KR_OP_DIV, h, n, NULL) : NULL;
  kr_node_release(h);
  GRAD_DONE(dx[0]);
}

static int grad_exp(kr_ctx *ctx, kr_node *n, kr_node *dy, kr_node **dx)
{
  dx[0] = kr_op2(ctx, KR_OP_MUL, dy, n, NULL);
  GRAD_DONE(dx[0]);
}

static int grad_log(kr_ctx *ctx, kr_node *n, kr_node *dy, kr_node **dx)
{
  dx[0] = kr_op2(ctx, KR_OP_DIV, dy, n->in[0], NULL);
  GRAD_DONE(dx[0]);
}

static int grad_scale(kr_ctx *ctx, kr_node *n, kr_node *dy, kr_node **dx)
{
  dx[0] = mk_scale(ctx, dy, n->attr.f[KR_SCALE_MUL], 0.0);
  GRAD_DONE(dx[0]);
}

static int grad_pows(kr_ctx *ctx, kr_node *n, kr_node *dy, kr_node **dx)
{
  /* d x^p = p x^(p-1) */
  kr_attr a;
  memset(&a, 0, sizeof a);
  a.f[KR_POWS_EXPONENT] = n->attr.f[KR_POWS_EXPONENT] - 1.0;
  kr_node *p = kr_op1(ctx, KR_OP_POWS, n->in[0], &a);
  kr_node *q = p ? mk_scale(ctx, p, n->attr.f[KR_POWS_EXPONENT], 0.0) : NULL;
  kr_node_release(p);
  return grad_times(ctx, dy, q, dx);
}

/* grads computed by a dedicated kernel from (dy, x) or (dy, y) */
static int grad_by_op(kr_ctx *ctx, kr_node *n, kr_node *dy, kr_node **dx, int op, int use_output)
{
  dx[0] = kr_op2(ctx, op, dy, use_output ? n : n->in[0], &n->attr);
  GRAD_DONE(dx[0]);
}

static int grad_relu(kr_ctx *c, kr_node *n, kr_node *dy, kr_node **dx) { return grad_by_op(c, n, dy, dx, KR_OP_RELU_GRAD, 0); }
static int grad_sigmoid(kr_ctx *c, kr_node *n, kr_node *dy, kr_node **dx) { return grad_by_op(c, n, dy, dx, KR_OP_SIGMOID_GRAD, 1); }
static int grad_tanh(kr_ctx *c, kr_node *n, kr_node *dy, kr_node **dx) { return grad_by_op(c, n, dy, dx, KR_OP_TANH_GRAD, 1); }
static int grad_hsig(kr_ctx *c, kr_node *n, kr_node *dy, kr_node **dx) { return grad_by_op(c, n, dy, dx, KR_OP_HARD_SIGMOID_GRAD, 0); }
static int grad_elu(kr_ctx *c, kr_node *n, kr_node *dy, kr_node **dx) { return grad_by_op(c, n, dy, dx, KR_OP_ELU_GRAD, 0); }
static int grad_selu(kr_ctx *c, kr_node *n, kr_node *dy, kr_node **dx) { return grad_by_op(c, n, dy, dx, KR_OP_SELU_GRAD, 0); }
static int grad_clip(kr_ctx *c, kr_node *n, kr_node *dy, kr_node **dx) { return grad_by_op(c, n, dy, dx, KR_OP_CLIP_GRAD, 0); }
static int grad_thresholded_relu(kr_ctx *c, kr_node *n, kr_node *dy, kr_node **dx) { return grad_by_op(c, n, dy, dx, KR_OP_THRESHOLDED_RELU_GRAD, 0); }
static int grad_softmax(kr_ctx *c, kr_node *n, kr_node *dy, kr_node **dx) { return grad_by_op(c, n, dy, dx, KR_OP_SOFTMAX_GRAD, 1); }
static int grad_log_softmax(kr_ctx *c, kr_node *n, kr_node *dy, kr_node **dx) { return grad_by_op(c, n, dy, dx, KR_OP_LOG_SOFTMAX_GRAD, 1); }

static int grad_softplus(kr_ctx *ctx, kr_node *n, kr_node *dy, kr_node **dx)
{
  return grad_times(ctx, dy, kr_op1(ctx, KR_OP_SIGMOID, n->in[0], NULL), dx);
}

static int grad_softsign(kr_ctx *ctx, kr_node *n, kr_node *dy, kr_node **dx)
{
  /* 1 / (1 + |x|)^2 */
  kr_node *a = kr_op1(ctx, KR_OP_ABS, n->in[0], NULL);
  kr_node *b = a ? mk_scale(ctx, a, 1.0, 1.0) : NULL;
  kr_node *c = b ? kr_op1(ctx, KR_OP_SQUARE, b, NULL) : NULL;
  dx[0] = c ? kr_op2(ctx, KR_OP_DIV, dy, c, NULL) : NULL;
  kr_node_release(a);
  kr_node_release(b);
  kr_node_release(c);
  GRAD_DONE(dx[0]);
}

static int grad_reduce(kr_ctx *ctx, kr_node *n, kr_node *dy, kr_node **dx)
{
  kr_attr a = n->attr;
  a.i[KR_REDUCE_MEAN] = n->op == KR_OP_MEAN;
  if (n->op == KR_OP_SUM || n->op == KR_OP_MEAN) {
    dx[0] = kr_op2(ctx, KR_OP_REDUCE_GRAD, dy, n->in[0], &a);
  } else if (n->op == KR_OP_PROD) {
    dx[0] = kr_op2(ctx, KR_OP_PROD_GRAD, dy, n->in[0], &a);
  } else {
    dx[0] = kr_op3(ctx, KR_OP_MAXMIN_GRAD, dy, n->in[0], n, &a);
  }
  GRAD_DONE(dx[0]);
}

static int grad_sum_to(kr_ctx *ctx, kr_node *n, kr_node *dy, kr_node **dx)
{
  dx[0] = kr_op2(ctx, KR_OP_BROADCAST_TO, dy, n->in[0], NULL);
  GRAD_DONE(dx[0]);
}

static int grad_broadcast_to(kr_ctx *ctx, kr_node *n, kr_node *dy, kr_node **dx)
{
  dx[0] = kr_unbroadcast(ctx, dy, n->in[0]);
  dx[1] = NULL;
  GRAD_DONE(dx[0]);
}

static int grad_matmul(kr_ctx *ctx, kr_node *n, kr_node *dy, kr_node **dx)
{
  kr_node *a = n->in[0], *b = n->in[1];
  kr_attr t;
  memset(&t, 0, sizeof t);
  int ta = (int)n->attr.i[KR_MATMUL_TRANSPOSE_A], tb = (int)n->attr.i[KR_MATMUL_TRANSPOSE_B];
  if (!ta && !tb) {        /* C = A B */
    t.i[KR_MATMUL_TRANSPOSE_B] = 1;
    dx[0] = kr_op2(ctx, KR_OP_MATMUL, dy, b, &t);        /* dC B^T */
    t.i[KR_MATMUL_TRANSPOSE_B] = 0; t.i[KR_MATMUL_TRANSPOSE_A] = 1;
    dx[1] = kr_op2(ctx, KR_OP_MATMUL, a, dy, &t);        /* A^T dC */
  } else if (!ta && tb) {  /* C = A B^T */
    dx[0] = kr_op2(ctx, KR_OP_MATMUL, dy, b, &t);        /* dC B */
    t.i[KR_MATMUL_TRANSPOSE_A] = 1;
    dx[1] = kr_op2(ctx, KR_OP_MATMUL, dy, a, &t);        /* dC^T A */
  } else {                 /* C = A^T B */
    t.i[KR_MATMUL_TRANSPOSE_B] = 1;
    dx[0] = kr_op2(ctx, KR_OP_MATMUL, b, dy, &t);        /* B dC^T */
    t.i[KR_MATMUL_TRANSPOSE_B] = 0;
    dx[1] = kr_op2(ctx, KR_OP_MATMUL, a, dy, &t);        /* A dC */
  }
  GRAD_DONE(dx[0], dx[1]);
}

static int grad_batch_matmul(kr_ctx *ctx, kr_node *n, kr_node *dy, kr_node **dx)
{
  kr_node *a = n->in[0], *b = n->in[1];
  int ta = (int)n->attr.i[KR_MATMUL_TRANSPOSE_A], tb = (int)n->attr.i[KR_MATMUL_TRANSPOSE_B];
  kr_attr t1, t2;
  memset(&t1, 0, sizeof t1);
  memset(&t2, 0, sizeof t2);
  kr_node *l1, *r1, *l2, *r2;
  if (!ta && !tb) {        /* C = A B: dA = dC B^T, dB = A^T dC */
    l1 = dy, r1 = b, t1.i[KR_MATMUL_TRANSPOSE_B] = 1;
    l2 = a, r2 = dy, t2.i[KR_MATMUL_TRANSPOSE_A] = 1;
  } else if (ta && !tb) {  /* C = A^T B: dA = B dC^T, dB = A dC */
    l1 = b, r1 = dy, t1.i[KR_MATMUL_TRANSPOSE_B] = 1;
    l2 = a, r2 = dy;
  } else if (!ta && tb) {  /* C = A B^T: dA = dC B, dB = dC^T A */
    l1 = dy, r1 = b;
    l2 = dy, r2 = a, t2.i[KR_MATMUL_TRANSPOSE_A] = 1;
  } else {                 /* C = A^T B^T: dA = B^T dC^T, dB = dC^T A^T */
    l1 = b, r1 = dy, t1.i[KR_MATMUL_TRANSPOSE_A] = t1.i[KR_MATMUL_TRANSPOSE_B] = 1;
    l2 = dy, r2 = a, t2.i[KR_MATMUL_TRANSPOSE_A] = t2.i[KR_MATMUL_TRANSPOSE_B] = 1;
  }
  dx[0] = kr_op2(ctx, KR_OP_BATCH_MATMUL, l1, r1, &t1);
  dx[1] = kr_op2(ctx, KR_OP_BATCH_MATMUL, l2, r2, &t2);
  GRAD_DONE(dx[0], dx[1]);
}

static int grad_linear(kr_ctx *ctx, kr_node *n, kr_node *dy, kr_node **dx)
{
  kr_attr t;
  memset(&t, 0, sizeof t);
  t.i[KR_MATMUL_TRANSPOSE_B] = 1;
  dx[0] = kr_op2(ctx, KR_OP_MATMUL, dy, n->in[1], &t);       /* dy W^T */
  t.i[KR_MATMUL_TRANSPOSE_B] = 0;
  t.i[KR_MATMUL_TRANSPOSE_A] = 1;
  dx[1] = kr_op2(ctx, KR_OP_MATMUL, n->in[0], dy, &t);       /* x^T dy */
  dx[2] = kr_unbroadcast(ctx, dy, n->in[2]);                  /* sum over rows */
  GRAD_DONE(dx[0], dx[1], dx[2]);
}

static int grad_reshape(kr_ctx *ctx, kr_node *n, kr_node *dy, kr_node **dx)
{
  kr_attr a;
  memset(&a, 0, sizeof a);
  a.shape = n->in[0]->shape;
  dx[0] = kr_op1(ctx, KR_OP_RESHAPE, dy, &a);
  GRAD_DONE(dx[0]);
}

static int grad_transpose(kr_ctx *ctx, kr_node *n, kr_node *dy, kr_node **dx)
{
  kr_attr a;
  memset(&a, 0, sizeof a);
  for (int i = 0; i < n->shape.ndim; i++) a.i[n->attr.i[i]] = i;
  dx[0] = kr_op1(ctx, KR_OP_TRANSPOSE, dy, &a);
  GRAD_DONE(dx[0]);
}

static int grad_concat(kr_ctx *ctx, kr_node *n, kr_node *dy, kr_node **dx)
{
  kr_attr a;
  memset(&a, 0, sizeof a);
  a.i[KR_SLICE_AXIS] = n->attr.i[KR_AXIS];
  int64_t off = 0;
  for (int k = 0; k < n->nin; k++) {
    a.i[KR_SLICE_START] = off;
    a.i[KR_SLICE_LENGTH] = n->in[k]->shape.dim[a.i[KR_SLICE_AXIS]];
    off += a.i[KR_SLICE_LENGTH];
    dx[k] = kr_op1(ctx, KR_OP_SLICE, dy, &a);
    if (!dx[k]) return kr_errcode(ctx);
  }
  return KR_OK;
}

static int grad_slice(kr_ctx *ctx, kr_node *n, kr_node *dy, kr_node **dx)
{
  kr_attr a = n->attr;
  a.i[KR_SLICE_LENGTH] = n->in[0]->shape.dim[a.i[KR_SLICE_AXIS]];
  dx[0] = kr_op1(ctx, KR_OP_PAD_AXIS, dy, &a);
  GRAD_DONE(dx[0]);
}

static int grad_pad_axis(kr_ctx *ctx, kr_node *n, kr_node *dy, kr_node **dx)
{
  kr_attr a = n->attr;
  a.i[KR_SLICE_LENGTH] = n->in[0]->shape.dim[a.i[KR_SLICE_AXIS]];
  dx[0] = kr_op1(ctx, KR_OP_SLICE, dy, &a);
  GRAD_DONE(dx[0]);
}

static int grad_gather(kr_ctx *ctx, kr_node *n, kr_node *dy, kr_node **dx)
{
  dx[0] = kr_op3(ctx, KR_OP_GATHER_GRAD, dy, n->in[1], n->in[0], NULL);
  dx[1] = NULL;
  GRAD_DONE(dx[0]);
}

static int grad_dropout(kr_ctx *ctx, kr_node *n, kr_node *dy, kr_node **dx)
{
  dx[0] = kr_op2(ctx, KR_OP_DROPOUT_GRAD, dy, n, &n->attr);
  GRAD_DONE(dx[0]);
}

static int grad_batchnorm(kr_ctx *ctx, kr_node *n, kr_node *dy, kr_node **dx)
{
  kr_node *in4[4] = {dy, n, n->in[0], n->in[1]};
  kr_attr a = n->attr;
  dx[0] = kr_node_op(ctx, KR_OP_BATCHNORM_GRAD, 4, in4, &a);
  a.i[KR_BN_WHICH] = 0;
  dx[1] = kr_op3(ctx, KR_OP_BATCHNORM_GRAD_GAMMA, dy, n, n->in[0], &a);
  a.i[KR_BN_WHICH] = 1;
  dx[2] = kr_op3(ctx, KR_OP_BATCHNORM_GRAD_GAMMA, dy, n, n->in[0], &a);
  dx[3] = dx[4] = NULL;   /* moving statistics are not trained */
  GRAD_DONE(dx[0], dx[1], dx[2]);
}

static int grad_in_train_phase(kr_ctx *ctx, kr_node *n, kr_node *dy, kr_node **dx)
{
  kr_node *z = kr_op1(ctx, KR_OP_ZEROS_LIKE, dy, NULL);
  if (!z) return kr_errcode(ctx);
  dx[0] = kr_op2(ctx, KR_OP_IN_TRAIN_PHASE, dy, z, NULL);
  dx[1] = kr_op2(ctx, KR_OP_IN_TRAIN_PHASE, z, dy, NULL);
  kr_node_release(z);
  GRAD_DONE(dx[0], dx[1]);
}

/* ---- aux sizes ---- */

static size_t aux_dropout(const kr_node *n, int64_t batch)
{
  kr_shape c = kr_concrete(&n->shape, batch);
  return (size_t)kr_numel(&c);
}

static size_t aux_batchnorm(const kr_node *n, int64_t batch)
{
  return 2 * (size_t)n->shape.dim[n->attr.i[KR_BN_AXIS]];
}

static size_t scratch_maxmin(const kr_node *n, int64_t batch)
{
  kr_shape c = kr_concrete(&n->in[2]->shape, batch);   /* one tie count per reduced value */
  return (size_t)kr_numel(&c);
}

static size_t scratch_prod(const kr_node *n, int64_t batch)
{
  kr_shape c = kr_concrete(&n->in[0]->shape, batch);   /* zero counts and products of the rest */
  return 2 * (size_t)kr_numel(&c);
}

/* ---- the table ---- */

#define LEAF(nm) {.name = nm, .nin = 0, .flags = KR_F_LEAF}
#define BIN(nm, k, g)                                                                                        \
  {.name = nm, .nin = 2, .shape = shape_broadcast, .forward = k, .grad = g, .flags = KR_F_ELEMENTWISE}
#define CMP(nm, k)                                                                                           \
  {.name = nm, .nin = 2, .shape = shape_broadcast, .forward = k, .flags = KR_F_NOGRAD | KR_F_ELEMENTWISE}
#define UN(nm, k, g) {.name = nm, .nin = 1, .shape = shape_same, .forward = k, .grad = g, .flags = KR_F_ELEMENTWISE}
/* the same with attributes taken by name */
#define UNA(nm, k, g, a)                                                                                     \
  {.name = nm, .nin = 1, .shape = shape_same, .forward = k, .grad = g, .flags = KR_F_ELEMENTWISE, .attrs = a}
#define UNNG(nm, k) {.name = nm, .nin = 1, .shape = shape_same, .forward = k, .flags = KR_F_NOGRAD | KR_F_ELEMENTWISE}
#define GR(nm, k) {.name = nm, .nin = 2, .shape = shape_same_all, .forward = k}

const kr_opinfo kr_ops[] = {
  LEAF("const"), LEAF("variable"), LEAF("input"),
  BIN("add", kr_k_add, grad_add),
  BIN("sub", kr_k_sub, grad_sub),
  BIN("mul", kr_k_mul, grad_mul),
  BIN("div", kr_k_div, grad_div),
  BIN("pow", kr_k_pow, grad_pow),
  BIN("maximum", kr_k_maximum, grad_maxmin),
  BIN("minimum", kr_k_minimum, grad_maxmin),
  CMP("equal", kr_k_equal),
  CMP("not_equal", kr_k_not_equal),
  CMP("greater", kr_k_greater),
  CMP("greater_equal", kr_k_greater_equal),
  CMP("less", kr_k_less),
  CMP("less_equal", kr_k_less_equal),
  UN("neg", kr_k_neg, grad_neg),
  UN("abs", kr_k_abs, grad_abs),
  UNNG("sign", kr_k_sign),
  UN("square", kr_k_square, grad_square),
  UN("sqrt", kr_k_sqrt, grad_sqrt),
  UN("exp", kr_k_exp, grad_exp),
  UN("log", kr_k_log, grad_log),
  UNNG("round", kr_k_round),
  UNNG("floor", kr_k_floor),
  UNA("scale", kr_k_scale, grad_scale, kr_scale_attrs),
  UNA("pows", kr_k_pows, grad_pows, kr_pows_attrs),
  UNA("clip", kr_k_clip, grad_clip, kr_clip_attrs),
  UNA("relu", kr_k_relu, grad_relu, kr_relu_attrs),
  UN("sigmoid", kr_k_sigmoid, grad_sigmoid),
  UN("hard_sigmoid", kr_k_hard_sigmoid, grad_hsig),
  UN("tanh", kr_k_tanh, grad_tanh),
  UN("softplus", kr_k_softplus, grad_softplus),
  UN("softsign", kr_k_softsign, grad_softsign),
  UNA("elu", kr_k_elu, grad_elu, kr_elu_attrs),
  UN("selu", kr_k_selu, grad_selu),
  UNA("thresholded_relu", kr_k_thresholded_relu, grad_thresholded_relu, kr_theta_attrs),
  {.name = "identity", .nin = 1, .shape = shape_same, .forward = kr_k_identity, .grad = grad_identity,
   .flags = KR_F_ELEMENTWISE | KR_F_ALIAS},
  {.name = "stop_gradient", .nin = 1, .shape = shape_same, .forward = kr_k_identity,
   .flags = KR_F_NOGRAD | KR_F_ELEMENTWISE | KR_F_ALIAS},
  GR("relu_grad", kr_k_relu_grad),
  GR("sigmoid_grad", kr_k_sigmoid_grad),
  GR("tanh_grad", kr_k_tanh_grad),
  GR("hard_sigmoid_grad", kr_k_hard_sigmoid_grad),
  GR("elu_grad", kr_k_elu_grad),
  GR("selu_grad", kr_k_selu_grad),
  GR("clip_grad", kr_k_clip_grad),
  GR("thresholded_relu_grad", kr_k_thresholded_relu_grad),
  UNNG("zeros_like", kr_k_zeros_like),
  {.name = "softmax", .nin = 1, .shape = shape_softmax, .forward = kr_k_softmax, .grad = grad_softmax,
   .attrs = kr_axis_attrs},
  GR("softmax_grad", kr_k_softmax_grad),
  {.name = "log_softmax", .nin = 1, .shape = shape_softmax, .forward = kr_k_log_softmax, .grad = grad_log_softmax,
   .attrs = kr_axis_attrs},
  GR("log_softmax_grad", kr_k_log_softmax_grad),
  {.name = "sum", .nin = 1, .shape = shape_reduce, .forward = kr_k_reduce, .grad = grad_reduce, .attrs = kr_reduce_attrs},
  {.name = "mean", .nin = 1, .shape = shape_reduce, .forward = kr_k_reduce, .grad = grad_reduce, .attrs = kr_reduce_attrs},
  {.name = "max", .nin = 1, .shape = shape_reduce, .forward = kr_k_reduce, .grad = grad_reduce, .attrs = kr_reduce_attrs},
  {.name = "min", .nin = 1, .shape = shape_reduce, .forward = kr_k_reduce, .grad = grad_reduce, .attrs = kr_reduce_attrs},
  {.name = "prod", .nin = 1, .shape = shape_reduce, .forward = kr_k_reduce, .grad = grad_reduce, .attrs = kr_reduce_attrs},
  {.name = "argmax", .nin = 1, .shape = shape_argreduce, .forward = kr_k_argreduce, .flags = KR_F_NOGRAD,
   .attrs = kr_axis_attrs},
  {.name = "argmin", .nin = 1, .shape = shape_argreduce, .forward = kr_k_argreduce, .flags = KR_F_NOGRAD,
   .attrs = kr_axis_attrs},
  {.name = "reduce_grad", .nin = 2, .shape = shape_second, .forward = kr_k_reduce_grad},
  {.name = "maxmin_grad", .nin = 3, .shape = shape_second, .forward = kr_k_maxmin_grad, .scratch = scratch_maxmin},
  {.name = "prod_grad", .nin = 2, .shape = shape_second, .forward = kr_k_prod_grad, .scratch = scratch_prod},
  {.name = "sum_to", .nin = 1, .shape = shape_sum_to, .forward = kr_k_sum_to, .grad = grad_sum_to},
  {.name = "matmul", .nin = 2, .shape = shape_matmul, .forward = kr_k_matmul, .grad = grad_matmul,
   .attrs = kr_matmul_attrs},
  {.name = "batch_matmul", .nin = 2, .shape = shape_batch_matmul, .forward = kr_k_batch_matmul,
   .grad = grad_batch_matmul, .attrs = kr_matmul_attrs},
  {.name = "linear", .nin = 3, .shape = shape_linear, .forward = kr_k_linear, .grad = grad_linear},
  {.name = "reshape", .nin = 1, .shape = shape_reshape, .forward = kr_k_identity, .grad = grad_reshape,
   .flags = KR_F_ALIAS},
  {.name = "transpose", .nin = 1, .shape = shape_transpose, .forward = kr_k_transpose, .grad = grad_transpose,
   .attrs = kr_transpose_attrs},
  {.name = "concat", .nin = -1, .shape = shape_concat, .forward = kr_k_concat, .grad = grad_concat,
   .attrs = kr_axis_attrs},
  {.name = "slice", .nin = 1, .shape = shape_slice, .forward = kr_k_slice, .grad = grad_slice, .attrs = kr_slice_attrs},
  {.name = "pad_axis", .nin = 1, .shape = shape_pad_axis, .forward = kr_k_pad_axis, .grad = grad_pad_axis,
   .attrs = kr_slice_attrs},
  {.name = "broadcast_to", .nin = 2, .shape = shape_broadcast_to, .forward = kr_k_broadcast_to,
   .grad = grad_broadcast_to},
  {.name = "gather", .nin = 2, .shape = shape_gather, .forward = kr_k_gather, .grad = grad_gather},
  {.name = "gather_grad", .nin = 3, .shape = shape_gather_grad, .forward = kr_k_gather_grad},
  {.name = "one_hot", .nin = 1, .shape = shape_one_hot, .forward = kr_k_one_hot, .flags = KR_F_NOGRAD,
   .attrs = kr_one_hot_attrs},
  {.name = "dropout", .nin = 1, .shape = shape_same, .forward = kr_k_dropout, .grad = grad_dropout, .aux = aux_dropout,
   .flags = KR_F_ALIAS_INFER, .attrs = kr_dropout_attrs},
  {.name = "dropout_grad", .nin = 2, .shape = shape_same, .forward = kr_k_dropout_grad},
  {.name = "batchnorm", .nin = 5, .shape = shape_batchnorm, .forward = kr_k_batchnorm, .grad = grad_batchnorm,
   .aux = aux_batchnorm, .attrs = kr_batchnorm_attrs},
  {.name = "batchnorm_grad", .nin = 4, .shape = shape_bn_grad, .forward = kr_k_batchnorm_grad},
  {.name = "batchnorm_grad_gamma", .nin = 3, .shape = shape_bn_grad_param, .forward = kr_k_batchnorm_grad_param},
  {.name = "in_train_phase", .nin = 2, .shape = shape_in_train_phase, .forward = kr_k_in_train_phase,
   .grad = grad_in_train_phase},
#include "ops_conv_rows.h"
#include "ops_rnn_rows.h"
#include "ops_backend_rows.h"
#include "ops_conv3d_rows.h"
#include "ops_conv_transpose_rows.h"
};

_Static_assert(sizeof kr_ops / sizeof kr_ops[0] == KR_OP_COUNT, "one row per op in opdefs.h");

const char *kr_op_name(int op) { return op >= 0 && op < KR_OP_COUNT ? kr_ops[op].name : "?"; }

int kr_op_lookup(const char *name)
{
  for (int i = 0; i < KR_OP_COUNT; i++)
    if (strcmp(kr_ops[i].name, name) == 0 && !(kr_ops[i].flags & KR_F_LEAF)) return i;
  return -1;
}

int kr_op_is_differentiable(int op)
{
  return op >= 0 && op < KR_OP_COUNT && (kr_ops[op].grad != NULL || (kr_ops[op].flags & KR_F_NOGRAD));
}
