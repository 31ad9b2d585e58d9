/*
** ops_backend.h -- shape rules, gradient rules and kernels of the backend
** family (ops_backend.c, kernels/backend.c), named in the rows of
** ops_backend_rows.h: the ops keras.backend needs beyond the core ones.
**
** shape (x): a 1-D tensor of x's rank holding x's dimensions for the run
**   (the batch axis as the plan's batch size). No gradient.
** fill, random_normal, random_uniform, random_binomial, truncated_normal
**   (like): a tensor of attr.shape (dim[0] may be the symbolic batch axis),
**   filled with f0 (fill) or drawn anew from the context's generator at every
**   run of the plan: N(f0, f1^2); U[f0, f1); 1 with probability f0, else 0;
**   N(f0, f1^2) redrawn while more than two standard deviations from the mean
**   (TensorFlow's truncated_normal). The input only places the op in a graph
**   (its values are not read). No gradient.
** cumsum (x): running sum along axis i0 (i1 = 1: from the end).
** cumprod (x): running product along axis i0; its gradient is cumprod_grad
**   (dy, x), exact where x has zeros (no division).
** sin, cos (x): elementwise; gradients cos(x), -sin(x).
** reverse (x): x with the axes in mask i0 flipped; its own gradient.
** select (cond, a, b): a where cond != 0, else b; the three of one shape.
**   Gradient: none to cond; dy where chosen, 0 elsewhere, to a and b.
*/
#ifndef KR_OPS_BACKEND_H
#define KR_OPS_BACKEND_H

#include "ops.h"

/* attribute slots: fill f[], the random ops f[] (mean and stddev, minval and
** maxval, or p), cumsum/cumprod i[], reverse i[] */
enum { KR_FILL_VALUE = 0 };
enum { KR_RANDOM_A = 0, KR_RANDOM_B = 1 };
enum { KR_CUM_AXIS = 0, KR_CUM_REVERSE = 1 };
enum { KR_REVERSE_AXES = 0 };

/* ops_backend.c: the attributes taken by name (the rows of ops_backend_rows.h) */
extern const kr_attrname kr_fill_attrs[], kr_normal_attrs[], kr_uniform_attrs[], kr_binomial_attrs[],
  kr_cumsum_attrs[], kr_cumprod_attrs[], kr_reverse_attrs[];

int kr_bk_shape_shape(kr_ctx *ctx, kr_node *n);
int kr_bk_fill_shape(kr_ctx *ctx, kr_node *n);
int kr_bk_cum_shape(kr_ctx *ctx, kr_node *n);
int kr_bk_second_shape(kr_ctx *ctx, kr_node *n);
int kr_bk_select_shape(kr_ctx *ctx, kr_node *n);
int kr_bk_same_shape(kr_ctx *ctx, kr_node *n);
int kr_bk_reverse_shape(kr_ctx *ctx, kr_node *n);

int kr_bk_cumsum_grad(kr_ctx *ctx, kr_node *n, kr_node *dy, kr_node **dx);
int kr_bk_cumprod_grad(kr_ctx *ctx, kr_node *n, kr_node *dy, kr_node **dx);
int kr_bk_select_grad(kr_ctx *ctx, kr_node *n, kr_node *dy, kr_node **dx);
int kr_bk_sin_grad(kr_ctx *ctx, kr_node *n, kr_node *dy, kr_node **dx);
int kr_bk_cos_grad(kr_ctx *ctx, kr_node *n, kr_node *dy, kr_node **dx);
int kr_bk_reverse_grad(kr_ctx *ctx, kr_node *n, kr_node *dy, kr_node **dx);

int kr_k_shape(const kr_exec *e);
int kr_k_fill(const kr_exec *e);
int kr_k_random_normal(const kr_exec *e);
int kr_k_random_uniform(const kr_exec *e);
int kr_k_random_binomial(const kr_exec *e);
int kr_k_truncated_normal(const kr_exec *e);
int kr_k_cumsum(const kr_exec *e);
int kr_k_cumprod(const kr_exec *e);
int kr_k_cumprod_grad(const kr_exec *e);
int kr_k_select(const kr_exec *e);
int kr_k_sin(const kr_exec *e);
int kr_k_cos(const kr_exec *e);
int kr_k_reverse(const kr_exec *e);

#endif
