/*
** ops.h -- the op table and what a kernel sees when a plan runs it.
** Shared by graph.c (shape inference, autodiff), plan.c (execution), ops.c
** (the table) and the kernels in src/kernels/.
*/
#ifndef KR_OPS_H
#define KR_OPS_H

#include "kr.h"

/* One op execution inside a plan. Shapes are concrete (the batch size filled in). */
typedef struct kr_exec {
  kr_ctx *ctx;
  const kr_node *node;
  int training;
  float *y;                  /* output */
  float *aux;                /* this node's saved data (op's aux size), or NULL */
  float *scratch;            /* temporary for this op only (op's scratch size), or NULL */
  const kr_shape *ys;
  int nin;
  const float *const *x;     /* inputs */
  const kr_shape *const *xs;
  float *const *xaux;        /* inputs' aux buffers (for gradient ops) */
  const kr_tensor *const *xval; /* inputs' tensors when they are CONST/VARIABLE, else NULL */
} kr_exec;

/* One attribute an op takes by name (keras.core.op's attribute table
** {name = value}): where it goes in kr_attr. Each op family names its slots
** in an enum (below for the core ops; ops_conv.h, ops_rnn.h, ops_backend.h)
** that kernels, shape rules and these tables share. */
enum {
  KR_ATTR_INT = 1,    /* i[slot]: an integer (a boolean is 1 or 0) */
  KR_ATTR_FLOAT,      /* f[slot]: a number */
  KR_ATTR_INTS        /* i[slot..]: a list of integers (at most KR_MAX_ATTR - slot) */
};
typedef struct kr_attrname {
  const char *name;   /* NULL ends a list */
  int kind;           /* KR_ATTR_* */
  int slot;
} kr_attrname;

/* the name of an op's attribute slot (kind KR_ATTR_INT or KR_ATTR_FLOAT),
** for messages: the op's own name for it, else "i3" / "f0" */
const char *kr_attr_name(int op, int kind, int slot);

/* a named constant exported to Lua (RNN cells, flags, activations) */
typedef struct kr_namedint {
  const char *name;   /* NULL ends a list */
  int64_t value;
} kr_namedint;

typedef struct kr_opinfo {
  const char *name;
  int nin;                   /* number of inputs; -1: one or more */
  /* set n->shape from n->in[] and n->attr; fail with a message naming the op */
  int (*shape)(kr_ctx *ctx, kr_node *n);
  int (*forward)(const kr_exec *e);
  /* gradient rule: dx[i] = node for d(loss)/d(in[i]) given dy, or NULL for
  ** "no gradient". NULL rule: the op is not differentiable (an error if asked). */
  int (*grad)(kr_ctx *ctx, kr_node *n, kr_node *dy, kr_node **dx);
  size_t (*aux)(const kr_node *n, int64_t batch);       /* floats kept with the output */
  size_t (*scratch)(const kr_node *n, int64_t batch);   /* floats for this op only */
  unsigned flags;
  const kr_attrname *attrs;  /* the attributes the binding takes by name; NULL: none */
} kr_opinfo;

enum {
  KR_F_NOGRAD = 1,   /* output does not depend smoothly on inputs: zero gradient */
  KR_F_LEAF = 2,
  KR_F_ELEMENTWISE = 4,
  KR_F_ALIAS = 8,         /* output is input 0's data seen in another shape: no copy */
  KR_F_ALIAS_INFER = 16   /* the same, outside training unless attr i0 is set (dropout) */
};

extern const kr_opinfo kr_ops[];

/* ---- attribute slots of the core ops (opdefs.h) ---- */
/* f[] of the elementwise ops with parameters and of their gradients */
enum { KR_SCALE_MUL = 0, KR_SCALE_ADD = 1 };           /* scale: y = x*mul + add */
enum { KR_POWS_EXPONENT = 0 };                         /* pows: y = x^exponent */
enum { KR_CLIP_MIN = 0, KR_CLIP_MAX = 1 };             /* clip, clip_grad */
enum { KR_RELU_ALPHA = 0, KR_RELU_MAX = 1 };           /* relu, relu_grad (max 0: none) */
enum { KR_ELU_ALPHA = 0 };                             /* elu, elu_grad */
enum { KR_THRESHOLD_THETA = 0 };                       /* thresholded_relu and its gradient */
/* i[] of the ops along one axis: softmax, log_softmax, argmax, argmin, concat */
enum { KR_AXIS = 0 };
/* i[] of the reductions (sum, mean, max, min, prod) and reduce_grad */
enum { KR_REDUCE_AXES = 0, KR_REDUCE_KEEPDIMS = 1, KR_REDUCE_MEAN = 2 };
/* i[] of matmul and batch_matmul */
enum { KR_MATMUL_TRANSPOSE_A = 0, KR_MATMUL_TRANSPOSE_B = 1 };
/* i[] of transpose: the permutation from slot 0 */
enum { KR_TRANSPOSE_PERM = 0 };
/* i[] of slice and pad_axis: the axis, where the part starts, its length
** (slice) or the padded length (pad_axis) */
enum { KR_SLICE_AXIS = 0, KR_SLICE_START = 1, KR_SLICE_LENGTH = 2 };
/* i[] of one_hot */
enum { KR_ONE_HOT_CLASSES = 0 };
/* dropout: f[] rate, i[] always (also outside training) */
enum { KR_DROPOUT_RATE = 0 };
enum { KR_DROPOUT_ALWAYS = 0 };
/* batchnorm: i[] axis (and which gradient, batchnorm_grad_gamma), f[] momentum, epsilon */
enum { KR_BN_AXIS = 0, KR_BN_WHICH = 2 };
enum { KR_BN_MOMENTUM = 0, KR_BN_EPSILON = 1 };

/* attrs.c: the names keras.core.op takes for the core ops (the rows of ops.c) */
extern const kr_attrname kr_scale_attrs[], kr_pows_attrs[], kr_clip_attrs[], kr_relu_attrs[], kr_elu_attrs[],
  kr_theta_attrs[], kr_axis_attrs[], kr_reduce_attrs[], kr_matmul_attrs[], kr_transpose_attrs[], kr_slice_attrs[],
  kr_one_hot_attrs[], kr_dropout_attrs[], kr_batchnorm_attrs[];

/* graph.c: the nodes reachable from roots, inputs before users, in a
** deterministic order (plan.c builds plans in it). Returns a kr_malloc'd
** array (the caller frees it) and its length in *count. */
kr_node **kr_topo_order(kr_ctx *ctx, int nroots, kr_node *const *roots, size_t *count);

/* graph.c helpers for gradient rules and layer code */
kr_node *kr_op1(kr_ctx *ctx, int op, kr_node *a, const kr_attr *attr);
kr_node *kr_op2(kr_ctx *ctx, int op, kr_node *a, kr_node *b, const kr_attr *attr);
kr_node *kr_op3(kr_ctx *ctx, int op, kr_node *a, kr_node *b, kr_node *c, const kr_attr *attr);
kr_node *kr_scalar_const(kr_ctx *ctx, float v);
/* sum a broadcast gradient g down to the shape of x (returns g retained when equal) */
kr_node *kr_unbroadcast(kr_ctx *ctx, kr_node *g, const kr_node *x);
int kr_is_batched(const kr_shape *s);

/* concrete shape: a batch axis -k becomes k * batch */
static inline kr_shape kr_concrete(const kr_shape *s, int64_t batch)
{
  kr_shape c = *s;
  if (c.ndim > 0 && c.dim[0] < 0) c.dim[0] = -c.dim[0] * batch;
  return c;
}

/* a zero axis first: beside one, the others may be large enough that their
** product alone would overflow (kr_shape_numel_checked allows it) */
static inline int64_t kr_numel(const kr_shape *s)
{
  for (int i = 0; i < s->ndim; i++)
    if (s->dim[i] == 0) return 0;
  int64_t n = 1;
  for (int i = 0; i < s->ndim; i++) n *= s->dim[i];
  return n;
}

#endif
