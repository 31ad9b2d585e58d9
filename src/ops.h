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
} kr_opinfo;

enum {
  KR_F_NOGRAD = 1,   /* output does not depend smoothly on inputs: zero gradient */
  KR_F_LEAF = 2,
  KR_F_ELEMENTWISE = 4,
  KR_F_ALIAS = 8,         /* output is input 0's data seen in another shape: no copy */
  KR_F_ALIAS_INFER = 16   /* the same, outside training unless attr i0 is set (dropout) */
};

extern const kr_opinfo kr_ops[];

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

static inline int64_t kr_numel(const kr_shape *s)
{
  int64_t n = 1;
  for (int i = 0; i < s->ndim; i++) n *= s->dim[i];
  return n;
}

#endif
