/*
** conv_thin.h -- direct AVX-512 kernels for convolutions with a few filters
** (kernels/conv_thin.c): the forward and the kernel gradient of a conv2d
** with O <= 4 filters (a decoder's last layer: 32 -> 1), where the im2col
** products of kernels/conv.c are matrix-vector products over small blocks.
** One of the DIRECT lowerings of kernels/conv.c, timed by the autotuner
** (conv_tune.c); the fixed rules do not pick them.
*/
#ifndef KR_KERNELS_CONV_THIN_H
#define KR_KERNELS_CONV_THIN_H

#include "conv_geom.h"

/* O <= 4 filters, C >= 8 channels, on a CPU with AVX-512F */
int kr_thin_ok(const kr_cgeom *g);
/* the forward's scratch (floats): the kernel repacked to (KH, KW, O, C rounded up to 16) */
size_t kr_thin_forward_scratch(const kr_cgeom *g);
/* y = x conv w (+ bias, relu), kept where omask > 0 if given; G fixed chunks
** of samples on T workers (every float the same for any T) */
void kr_thin_forward(const kr_cgeom *g, int G, const float *x, const float *w, const float *bias, int relu,
                     const float *omask, float *y, float *scratch, int T);
/* the kernel gradient of chunk c of G into parts + c * stride: dw (K x O,
** K = KH*KW*C) then, at up16(K * O), db (O) when bias; dz = dy, or dy where
** mask > 0 */
void kr_thin_grad_kernel(const kr_cgeom *g, int G, const float *dy, const float *mask, const float *x, int bias,
                         float *parts, size_t stride, int T);

#endif
