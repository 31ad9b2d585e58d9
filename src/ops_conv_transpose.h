/*
** ops_conv_transpose.h -- conv2d_transpose: the transposed 2-D convolution
** (Keras's Conv2DTranspose, K.conv2d_transpose), channels_last.
**
**   conv2d_transpose (x, w[, b]) -> attr.shape's (N, H, W, O) with N x's batch
**     x (N, h, w, C), w (KH, KW, O, C) (Keras's layout: output channels, then
**     input channels), b (O). It is the adjoint of the convolution y -> x of
**     conv2d by the same w: the scatter of every input pixel through the
**     kernel, which is what conv2d_grad_input computes (kernels/conv.c runs it
**     through the same lowerings, with the bias and the relu applied as the
**     output is written).
**     i = conv2d's {sh, sw, dh, dw, pt, pb, pl, pr} of that convolution:
**     pad_top and pad_left are the rows and columns cut from the top and the
**     left of the full scatter ((h - 1)*sh + (KH - 1)*dh + 1 rows), at most
**     (KH - 1)*dh and (KW - 1)*dw; pad_bottom and pad_right are set by the
**     shape rule (the padding with which that convolution takes H x W back
**     to h x w: refused when there is none). attr.shape: the output's shape
**     (its batch entry is not read), so Keras's output_padding and
**     output_shape are expressed. f0 = fused activation (0 linear, 1 relu);
**     f1 = scratch slots (set by the shape rule).
**   Gradients (ops_conv_transpose.c): dz = dy, masked by y > 0 with the relu;
**     dx = conv2d(dz, w) with the same i; dw = conv2d_grad_kernel(x, dz, w)
**     (x plays the convolution's output gradient); db = dz summed down to (O).
**     So the autotuner (conv_tune.c) times these passes as conv2d passes, and
**     the forward as an input-gradient pass of its own key.
*/
#ifndef KR_OPS_CONV_TRANSPOSE_H
#define KR_OPS_CONV_TRANSPOSE_H

#include "ops.h"

extern const kr_attrname kr_conv_transpose_attrs[];
int kr_conv_transpose_shape(kr_ctx *ctx, kr_node *n);
int kr_conv_transpose_grad(kr_ctx *ctx, kr_node *n, kr_node *dy, kr_node **dx);
/* kernels/conv.c */
size_t kr_conv_transpose_scratch(const kr_node *n, int64_t batch);
int kr_k_conv2d_transpose(const kr_exec *e);

#endif
