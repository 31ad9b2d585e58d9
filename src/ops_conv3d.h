/*
** ops_conv3d.h -- the 3-D convolution ops (ops_conv3d.c, kernels/conv3d.c),
** channels_last, named in the rows of ops_conv_rows.h:
**   conv3d (x, w[, b])    x (N, D, H, W, C), w (KD, KH, KW, C, O), b (O)
**                         -> (N, Do, Ho, Wo, O); f0 = fused relu (0 / 1)
**   conv3d_grad_input  (dy, w, x) -> x's shape    (dy already masked by any relu)
**   conv3d_grad_kernel (dy, x, w) -> w's shape
**   conv3d_transpose (x, w[, b])  x (N, D, H, W, C), w (KD, KH, KW, O, C)
**                         (Keras's Conv3DTranspose layout), b (O); attribute
**                         `shape` the output's shape (N, Do, Ho, Wo, O): the
**                         input gradient of the conv3d that takes the output
**                         back to x (its strides, dilations and leading pads)
** Attributes (a kr_attr has 8 integer slots, so the pads that follow each
** axis and the left pad are integral floats):
**   i = {stride_d, stride_h, stride_w, dilation_d, dilation_h, dilation_w,
**        pad_front, pad_top}
**   f = {relu, slots (set by the shape rules), -, pad_left, pad_back,
**        pad_bottom, pad_right}
** conv3d_transpose takes pad_front, pad_top, pad_left and the shape; its
** shape rule sets the trailing pads of that conv3d (0 where the output
** padding leaves rows the conv never reaches).
*/
#ifndef KR_OPS_CONV3D_H
#define KR_OPS_CONV3D_H

#include "ops.h"

enum {
  KR_C3_STRIDE_D, KR_C3_STRIDE_H, KR_C3_STRIDE_W, KR_C3_DILATION_D, KR_C3_DILATION_H, KR_C3_DILATION_W,
  KR_C3_PAD_FRONT, KR_C3_PAD_TOP
};
enum { KR_C3_RELU = 0, KR_C3_SLOTS = 1, KR_C3_PAD_LEFT = 3, KR_C3_PAD_BACK = 4, KR_C3_PAD_BOTTOM = 5,
       KR_C3_PAD_RIGHT = 6 };

extern const kr_attrname kr_conv3d_attrs[], kr_conv3d_transpose_attrs[];

/* ops_conv3d.c */
int kr_conv3d_shape(kr_ctx *ctx, kr_node *n);
int kr_conv3d_grad_input_shape(kr_ctx *ctx, kr_node *n);
int kr_conv3d_grad_kernel_shape(kr_ctx *ctx, kr_node *n);
int kr_conv3d_transpose_shape(kr_ctx *ctx, kr_node *n);
int kr_conv3d_grad(kr_ctx *ctx, kr_node *n, kr_node *dy, kr_node **dx);
int kr_conv3d_transpose_grad(kr_ctx *ctx, kr_node *n, kr_node *dy, kr_node **dx);

/* kernels/conv3d.c */
size_t kr_conv3d_scratch(const kr_node *n, int64_t batch);
int kr_k_conv3d(const kr_exec *e);
int kr_k_conv3d_grad_input(const kr_exec *e);
int kr_k_conv3d_grad_kernel(const kr_exec *e);
int kr_k_conv3d_transpose(const kr_exec *e);
int kr_is_conv3d_op(int op);
/* the autotuner's view of a 3-D node (conv_tune.c), as kernels/conv.c's for conv2d */
int kr_conv3d_algo_valid(const kr_node *n, int algo);
int kr_conv3d_algo_rule(const kr_node *n);
void kr_conv3d_tune_key(const kr_node *n, int64_t *key);
void kr_conv3d_tune_sizes(const kr_node *n, int64_t batch, size_t *a, size_t *b, size_t *out);
void kr_conv3d_tune_run(const kr_node *n, int64_t batch, int algo, const float *a, const float *b, float *out,
                        float *scratch, int T);
int kr_conv3d_tune_workers(kr_ctx *ctx, const kr_node *n, int64_t batch);

#endif
