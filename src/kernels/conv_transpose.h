/*
** conv_transpose.h -- the direct AVX-512 kernel of a strided convolution's
** input-gradient product (kernels/conv_transpose.c): conv2d_transpose's
** forward and conv2d_grad_input at strides > 1, one of the lowerings of
** kernels/conv.c (KR_CONV_ALGO_DIRECT there), picked by the fixed rule or the
** autotuner (conv_tune.c). g is the convolution's geometry (x -> y, kr_cgeom):
** the product reads dy (N, Ho, Wo, O) and writes dx (N, H, W, C).
*/
#ifndef KR_KERNELS_CONV_TRANSPOSE_H
#define KR_KERNELS_CONV_TRANSPOSE_H

#include "conv_geom.h"

/* strides > 1, no dilation, C a multiple of 16 up to 64, on a CPU with AVX-512F */
int kr_tconv_direct_ok(const kr_cgeom *g);
/* its scratch (floats): `shared` (the kernel repacked to (KH, KW, O, C)),
** then a slot per worker (one sample's masked dy) */
void kr_tconv_direct_layout(const kr_cgeom *g, size_t *shared, size_t *slot);
/* dx = the scatter of dy (where mask > 0, if given) through w (KH, KW, C,
** O), plus bias (C) if given, the relu if relu, kept where omask > 0 if
** given; G fixed chunks of samples on T workers (every float the same for any T) */
void kr_tconv_direct(const kr_cgeom *g, int G, const float *dy, const float *mask, const float *w, const float *bias,
                     int relu, const float *omask, float *dx, float *scratch, int T);

#endif
