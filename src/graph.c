/*
** graph.c -- symbolic nodes: construction with shape inference, reference
** counting, topological order, and reverse-mode automatic differentiation.
** A node holds references to its inputs, so a graph lives exactly as long as
** something (a Lua userdata, a plan, a layer) holds one of its outputs.
*/
#include "kr.h"
#include "ctx_impl.h"
#include "ops.h"

#include <string.h>

/* ---- construction ---- */

static kr_node *node_alloc(kr_ctx *ctx, int op, int nin)
{
  kr_node *n = kr_calloc(ctx, sizeof *n);
  if (!n) return NULL;
  if (nin > 0) {
    n->in = kr_calloc(ctx, (size_t)nin * sizeof *n->in);
    if (!n->in) {
      kr_free(ctx, n);
      return NULL;
    }
  }
  n->refs = 1;
  n->op = op;
  n->nin = nin;
  n->ctx = ctx;
  n->id = ++ctx->next_node_id;
  return n;
}

static kr_node *leaf(kr_ctx *ctx, int op, kr_tensor *t)
{
  kr_node *n = node_alloc(ctx, op, 0);
  if (!n) return NULL;
  kr_tensor_retain(t);
  n->value = t;
  n->shape = t->shape;
  return n;
}

kr_node *kr_node_const(kr_ctx *ctx, kr_tensor *t) { return leaf(ctx, KR_OP_CONST, t); }
kr_node *kr_node_variable(kr_ctx *ctx, kr_tensor *t) { return leaf(ctx, KR_OP_VARIABLE, t); }

kr_node *kr_node_input(kr_ctx *ctx, const kr_shape *shape)
{
  if (shape->ndim < 0 || shape->ndim > KR_MAX_DIMS)
    return kr_fail(ctx, KR_EARG, "Input: rank must be 0..%d, got %d", KR_MAX_DIMS, shape->ndim), NULL;
  for (int i = 0; i < shape->ndim; i++)
    if (shape->dim[i] < 0 && shape->dim[i] != (i == 0 ? KR_BATCH : KR_NONE))
      return kr_fail(ctx, KR_EARG, "Input: dimension %d must be a positive size or None, got %lld", i + 1,
                     (long long)shape->dim[i]), NULL;
  uint64_t numel;
  if (kr_shape_numel_checked(shape, &numel) != KR_OK) {
    char a[128];
    return kr_fail(ctx, KR_ESHAPE, "Input: the shape %s has more than 2^56 elements",
                   kr_shape_str(shape, a, sizeof a)), NULL;
  }
  kr_node *n = node_alloc(ctx, KR_OP_INPUT, 0);
  if (n) n->shape = *shape;
  return n;
}

/* Ops whose shape rules take a None (KR_NONE) length in an axis after the
** first: elementwise maths, reductions, the linear algebra of the last axis,
** embeddings, recurrent layers, 1-D convolution and pooling, the noise of
** random_normal/random_uniform shaped like their input. Any other op
** given such an input is refused by name. Gradient ops never see one: the
** training graph is built for concrete lengths. */
static int none_ok(int op)
{
  if (op >= KR_OP_ADD && op <= KR_OP_STOP_GRADIENT) return 1;
  if (op >= KR_OP_SOFTMAX && op <= KR_OP_ARGMIN) return 1;
  switch (op) {
  case KR_OP_ZEROS_LIKE: case KR_OP_MATMUL: case KR_OP_LINEAR: case KR_OP_RESHAPE: case KR_OP_TRANSPOSE:
  case KR_OP_CONCAT: case KR_OP_SLICE: case KR_OP_BROADCAST_TO: case KR_OP_GATHER: case KR_OP_ONE_HOT:
  case KR_OP_DROPOUT: case KR_OP_BATCHNORM: case KR_OP_IN_TRAIN_PHASE: case KR_OP_RNN: case KR_OP_RNN_STATE:
  case KR_OP_CONV2D: case KR_OP_MAX_POOL2D: case KR_OP_AVG_POOL2D: case KR_OP_SPATIAL_DROPOUT:
  case KR_OP_PAD2D: case KR_OP_CROP2D: case KR_OP_UPSAMPLE2D:
  case KR_OP_RANDOM_NORMAL: case KR_OP_RANDOM_UNIFORM:   /* noise of the like input's shape (noise layers) */
    return 1;
  default:
    return 0;
  }
}

kr_node *kr_node_op(kr_ctx *ctx, int op, int nin, kr_node *const *in, const kr_attr *attr)
{
  if (op < 0 || op >= KR_OP_COUNT || (kr_ops[op].flags & KR_F_LEAF))
    return kr_fail(ctx, KR_EARG, "graph: not an op: %d", op), NULL;
  const kr_opinfo *info = &kr_ops[op];
  if ((info->nin >= 0 && nin != info->nin) || (info->nin < 0 && nin < 1))
    return kr_fail(ctx, KR_EARG, "%s: expected %d inputs, got %d", info->name, info->nin, nin), NULL;
  for (int i = 0; i < nin; i++)
    if (!in[i]) return kr_fail(ctx, KR_EARG, "%s: input %d is missing", info->name, i + 1), NULL;
  for (int i = 0; i < nin; i++)
    if (kr_shape_has_none(&in[i]->shape) && !none_ok(op)) {
      char a[128];
      return kr_fail(ctx, KR_ESHAPE, "%s: input %d has a None (variable-length) axis, shape %s; this op needs "
                     "every length known", info->name, i + 1, kr_shape_str(&in[i]->shape, a, sizeof a)), NULL;
    }
  kr_node *n = node_alloc(ctx, op, nin);
  if (!n) return NULL;
  for (int i = 0; i < nin; i++) {
    n->in[i] = in[i];
    kr_node_retain(in[i]);
  }
  if (attr) n->attr = *attr;
  uint64_t numel;
  if (n->attr.shape.ndim > 0 && kr_shape_numel_checked(&n->attr.shape, &numel) != KR_OK) {
    char a[128];
    kr_fail(ctx, KR_ESHAPE, "%s: the shape %s has more than 2^56 elements", info->name,
            kr_shape_str(&n->attr.shape, a, sizeof a));
    kr_node_release(n);
    return NULL;
  }
  if (info->shape(ctx, n) != KR_OK) {
    kr_node_release(n);
    return NULL;
  }
  if (kr_shape_numel_checked(&n->shape, &numel) != KR_OK) {
    char a[128];
    kr_fail(ctx, KR_ESHAPE, "%s: the output shape %s has more than 2^56 elements", info->name,
            kr_shape_str(&n->shape, a, sizeof a));
    kr_node_release(n);
    return NULL;
  }
  return n;
}

void kr_node_retain(kr_node *n) { n->refs++; }

/* Iterative, so that releasing a long chain does not recurse deeply. */
void kr_node_release(kr_node *n)
{
  if (!n || --n->refs > 0) return;
  kr_ctx *ctx = n->ctx;
  /* a small explicit stack of nodes whose count reached zero */
  kr_node *local[64];
  kr_node **stack = local;
  size_t cap = 64, top = 0;
  stack[top++] = n;
  while (top > 0) {
    kr_node *m = stack[--top];
    for (int i = 0; i < m->nin; i++) {
      kr_node *c = m->in[i];
      if (c && --c->refs == 0) {
        if (top == cap) {
          /* grow through the context allocator; on failure, recurse instead */
          kr_node **ns = kr_malloc(ctx, 2 * cap * sizeof *ns);
          if (!ns) {
            c->refs = 1;
            kr_node_release(c);
            continue;
          }
          memcpy(ns, stack, top * sizeof *ns);
          if (stack != local) kr_free(ctx, stack);
          stack = ns;
          cap *= 2;
        }
        stack[top++] = c;
      }
    }
    if (m->value) kr_tensor_release(m->value);
    kr_free(ctx, m->in);
    kr_free(ctx, m);
  }
  if (stack != local) kr_free(ctx, stack);
}

kr_node *kr_op1(kr_ctx *ctx, int op, kr_node *a, const kr_attr *attr)
{
  return kr_node_op(ctx, op, 1, &a, attr);
}

kr_node *kr_op2(kr_ctx *ctx, int op, kr_node *a, kr_node *b, const kr_attr *attr)
{
  kr_node *in[2] = {a, b};
  return kr_node_op(ctx, op, 2, in, attr);
}

kr_node *kr_op3(kr_ctx *ctx, int op, kr_node *a, kr_node *b, kr_node *c, const kr_attr *attr)
{
  kr_node *in[3] = {a, b, c};
  return kr_node_op(ctx, op, 3, in, attr);
}

kr_node *kr_scalar_const(kr_ctx *ctx, float v)
{
  kr_shape s = {0, {0}};
  kr_tensor *t = kr_tensor_full(ctx, &s, v);
  if (!t) return NULL;
  kr_node *n = kr_node_const(ctx, t);
  kr_tensor_release(t);
  return n;
}

int kr_is_batched(const kr_shape *s) { return s->ndim > 0 && s->dim[0] < 0; }

kr_node *kr_unbroadcast(kr_ctx *ctx, kr_node *g, const kr_node *x)
{
  if (kr_shape_eq(&g->shape, &x->shape)) {
    kr_node_retain(g);
    return g;
  }
  kr_attr a;
  memset(&a, 0, sizeof a);
  a.shape = x->shape;
  return kr_op1(ctx, KR_OP_SUM_TO, g, &a);
}

/* ---- topological order ---- */

typedef struct { kr_node **keys; size_t cap, n; } nodeset;

static size_t hash_ptr(const void *p, size_t cap)
{
  uint64_t x = (uint64_t)(uintptr_t)p;
  x ^= x >> 33;
  x *= 0xff51afd7ed558ccdULL;
  x ^= x >> 33;
  return (size_t)x & (cap - 1);
}

/* open addressing; returns 1 if inserted, 0 if present, -1 on no memory */
static int set_add(kr_ctx *ctx, nodeset *s, kr_node *k)
{
  if (2 * (s->n + 1) > s->cap) {
    size_t nc = s->cap ? 2 * s->cap : 64;
    kr_node **nk = kr_calloc(ctx, nc * sizeof *nk);
    if (!nk) return -1;
    for (size_t i = 0; i < s->cap; i++)
      if (s->keys[i]) {
        size_t h = hash_ptr(s->keys[i], nc);
        while (nk[h]) h = (h + 1) & (nc - 1);
        nk[h] = s->keys[i];
      }
    kr_free(ctx, s->keys);
    s->keys = nk;
    s->cap = nc;
  }
  size_t h = hash_ptr(k, s->cap);
  while (s->keys[h]) {
    if (s->keys[h] == k) return 0;
    h = (h + 1) & (s->cap - 1);
  }
  s->keys[h] = k;
  s->n++;
  return 1;
}

kr_node **kr_topo_order(kr_ctx *ctx, int nroots, kr_node *const *roots, size_t *count)
{
  nodeset seen = {0};
  size_t cap = 64, n = 0, scap = 64, top = 0;
  kr_node **order = kr_malloc(ctx, cap * sizeof *order);
  struct frame { kr_node *n; int next; } *stack = kr_malloc(ctx, scap * sizeof *stack);
  if (!order || !stack) goto nomem;
  for (int r = 0; r < nroots; r++) {
    int st = set_add(ctx, &seen, roots[r]);
    if (st < 0) goto nomem;
    if (st == 0) continue;
    stack[top].n = roots[r];
    stack[top].next = 0;
    top++;
    while (top > 0) {
      struct frame *f = &stack[top - 1];
      if (f->next < f->n->nin) {
        kr_node *c = f->n->in[f->next++];
        int s2 = set_add(ctx, &seen, c);
        if (s2 < 0) goto nomem;
        if (s2 == 1) {
          if (top == scap) {
            void *ns = kr_malloc(ctx, 2 * scap * sizeof *stack);
            if (!ns) goto nomem;
            memcpy(ns, stack, scap * sizeof *stack);
            kr_free(ctx, stack);
            stack = ns;
            scap *= 2;
          }
          stack[top].n = c;
          stack[top].next = 0;
          top++;
        }
      } else {
        if (n == cap) {
          kr_node **no = kr_malloc(ctx, 2 * cap * sizeof *no);
          if (!no) goto nomem;
          memcpy(no, order, n * sizeof *no);
          kr_free(ctx, order);
          order = no;
          cap *= 2;
        }
        order[n++] = f->n;
        top--;
      }
    }
  }
  kr_free(ctx, stack);
  kr_free(ctx, seen.keys);
  *count = n;
  return order;
nomem:
  kr_free(ctx, stack);
  kr_free(ctx, order);
  kr_free(ctx, seen.keys);
  kr_fail(ctx, KR_EMEM, "out of memory while ordering the graph");
  return NULL;
}

/* ---- reverse-mode autodiff ---- */

/* index of a node in the topo order, through a hash map node -> position */
typedef struct { kr_node **keys; size_t *vals; size_t cap; } posmap;

static int pos_build(kr_ctx *ctx, posmap *m, kr_node **order, size_t n)
{
  m->cap = 64;
  while (m->cap < 2 * n + 2) m->cap *= 2;
  m->keys = kr_calloc(ctx, m->cap * sizeof *m->keys);
  m->vals = kr_malloc(ctx, m->cap * sizeof *m->vals);
  if (!m->keys || !m->vals) return KR_EMEM;
  for (size_t i = 0; i < n; i++) {
    size_t h = hash_ptr(order[i], m->cap);
    while (m->keys[h]) h = (h + 1) & (m->cap - 1);
    m->keys[h] = order[i];
    m->vals[h] = i;
  }
  return KR_OK;
}

static long pos_get(const posmap *m, const kr_node *k)
{
  size_t h = hash_ptr(k, m->cap);
  while (m->keys[h]) {
    if (m->keys[h] == k) return (long)m->vals[h];
    h = (h + 1) & (m->cap - 1);
  }
  return -1;
}

static int accumulate(kr_ctx *ctx, kr_node **slot, kr_node *g)
{
  if (!*slot) {
    *slot = g;
    return KR_OK;
  }
  kr_node *sum = kr_op2(ctx, KR_OP_ADD, *slot, g, NULL);
  kr_node_release(*slot);
  kr_node_release(g);
  *slot = sum;
  return sum ? KR_OK : kr_errcode(ctx);
}

int kr_gradients(kr_ctx *ctx, kr_node *loss, int nvars, kr_node *const *vars, kr_node **grads)
{
  if (kr_is_batched(&loss->shape) || (loss->shape.ndim != 0 && kr_shape_numel(&loss->shape) != 1))
    return kr_fail(ctx, KR_ESHAPE, "gradients: the loss must be a scalar");
  size_t n = 0;
  kr_node **order = kr_topo_order(ctx, 1, &loss, &n);
  if (!order) return kr_errcode(ctx);
  int st = KR_OK;
  posmap pm = {0};
  kr_node **g = kr_calloc(ctx, n * sizeof *g);
  char *needed = kr_calloc(ctx, n);
  if (!g || !needed || pos_build(ctx, &pm, order, n) != KR_OK) {
    st = kr_fail(ctx, KR_EMEM, "out of memory in gradients");
    goto done;
  }
  /* a node needs a gradient if a wanted variable is among its ancestors */
  for (int v = 0; v < nvars; v++) {
    long p = pos_get(&pm, vars[v]);
    if (p >= 0) needed[p] = 1;
  }
  for (size_t i = 0; i < n; i++)
    for (int k = 0; k < order[i]->nin && !needed[i]; k++)
      if (needed[pos_get(&pm, order[i]->in[k])]) needed[i] = 1;

  if (needed[n - 1]) {
    kr_attr a;
    memset(&a, 0, sizeof a);
    kr_node *one = kr_scalar_const(ctx, 1.0f);
    if (!one) {
      st = kr_errcode(ctx);
      goto done;
    }
    if (loss->shape.ndim != 0) {
      a.shape = loss->shape;
      g[n - 1] = kr_op1(ctx, KR_OP_RESHAPE, one, &a);
      kr_node_release(one);
      if (!g[n - 1]) {
        st = kr_errcode(ctx);
        goto done;
      }
    } else {
      g[n - 1] = one;
    }
  }
  for (size_t i = n; i-- > 0;) {
    kr_node *node = order[i];
    if (!g[i] || node->nin == 0) continue;
    const kr_opinfo *info = &kr_ops[node->op];
    if (info->flags & KR_F_NOGRAD) continue;
    int any = 0;
    for (int k = 0; k < node->nin; k++)
      if (needed[pos_get(&pm, node->in[k])]) any = 1;
    if (!any) continue;
    if (!info->grad) {
      st = kr_fail(ctx, KR_EARG, "gradients: op '%s' has no gradient", info->name);
      goto done;
    }
    kr_node *dx[64] = {0};
    kr_node **dxp = dx;
    if (node->nin > 64) {
      dxp = kr_calloc(ctx, (size_t)node->nin * sizeof *dxp);
      if (!dxp) {
        st = kr_errcode(ctx);
        goto done;
      }
    }
    st = info->grad(ctx, node, g[i], dxp);
    for (int k = 0; k < node->nin; k++) {
      if (!dxp[k]) continue;
      long p = pos_get(&pm, node->in[k]);
      if (st == KR_OK && needed[p]) {
        if (!kr_shape_eq(&dxp[k]->shape, &node->in[k]->shape)) {
          char a1[96], a2[96];
          st = kr_fail(ctx, KR_ESHAPE, "gradients: op '%s' gave a gradient of shape %s for an input of shape %s",
                       info->name, kr_shape_str(&dxp[k]->shape, a1, sizeof a1),
                       kr_shape_str(&node->in[k]->shape, a2, sizeof a2));
          kr_node_release(dxp[k]);
        } else {
          st = accumulate(ctx, &g[p], dxp[k]);
        }
      } else {
        kr_node_release(dxp[k]);
      }
    }
    if (dxp != dx) kr_free(ctx, dxp);
    if (st != KR_OK) goto done;
    /* a node's gradient is no longer needed once its rule has run */
    kr_node_release(g[i]);
    g[i] = NULL;
  }
  for (int v = 0; v < nvars; v++) {
    long p = pos_get(&pm, vars[v]);
    kr_node *gv = p >= 0 ? g[p] : NULL;
    if (gv) {
      kr_node_retain(gv);
      grads[v] = gv;
    } else if (kr_is_batched(&vars[v]->shape)) {
      /* the loss does not depend on it: zeros, of the batch size it will have */
      grads[v] = kr_op1(ctx, KR_OP_ZEROS_LIKE, vars[v], NULL);
      if (!grads[v]) {
        for (int w = 0; w < v; w++) { kr_node_release(grads[w]); grads[w] = NULL; }
        st = kr_errcode(ctx);
        goto done;
      }
    } else {
      /* zeros; for a placeholder with a batch axis, zeros of its run-time shape */
      kr_tensor *z = NULL;
      if (kr_is_batched(&vars[v]->shape)) {
        grads[v] = kr_op1(ctx, KR_OP_ZEROS_LIKE, vars[v], NULL);
      } else {
        z = kr_tensor_zeros(ctx, &vars[v]->shape);
        grads[v] = z ? kr_node_const(ctx, z) : NULL;
      }
      kr_tensor_release(z);
      if (!grads[v]) {
        for (int w = 0; w < v; w++) { kr_node_release(grads[w]); grads[w] = NULL; }
        st = kr_errcode(ctx);
        goto done;
      }
    }
  }
done:
  if (g)
    for (size_t i = 0; i < n; i++) kr_node_release(g[i]);
  kr_free(ctx, g);
  kr_free(ctx, needed);
  kr_free(ctx, pm.keys);
  kr_free(ctx, pm.vals);
  kr_free(ctx, order);
  return st;
}
