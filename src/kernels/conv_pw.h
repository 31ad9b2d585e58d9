/*
** conv_pw.h -- convolutions as products on the packed GEMM (conv_pw.c):
** the lowering KR_CONV_ALGO_PACKED of conv.c's forward products (and so of
** the stride-1 input gradients, which are forward products); pointwise
** ones read their input in place, the others are unfolded block by block.
*/
#ifndef KR_CONV_PW_H
#define KR_CONV_PW_H

#include "conv_geom.h"

/* 1 when g is pointwise: 1x1 kernel, stride 1, no padding (rows = pixels) */
int kr_conv_pw_ok(const kr_cgeom *g);
/* conv.c's im2col: rows [r0, r0 + nr) of g's unfolded input x (masked by
** mask > 0 if given) into cols (nr x KH*KW*C) */
void kr_conv_im2col_block(const kr_cgeom *g, const float *x, const float *mask, int64_t r0, int64_t nr, float *cols);
/* the scratch: `shared` floats (the packed kernel and bias), then a slot of
** `slot` floats per worker (a block of masked input rows) */
void kr_conv_pw_layout(const kr_cgeom *g, size_t *shared, size_t *slot);
/* y (N*Ho*Wo x O) = cols(x) (N*Ho*Wo x K, x masked by mask > 0 if given) w (K x O)
** + bias (or none), relu when `relu`, then kept where omask > 0 if given;
** on T workers (at most the scratch's slots) */
void kr_conv_pw_forward(const kr_cgeom *g, const float *x, const float *mask, const float *w, const float *bias,
                        int relu, const float *omask, float *y, float *scratch, int T);

/* the kernel gradient of a pointwise g on AVX-512 CPUs (kr_conv_pw_gk_ok):
** dw (C x O) = x^T dz, and with `bias` db as row C; dz = dy, or dy where
** mask > 0; on T workers, the same floats for any T; scratch: a slot of
** kr_conv_pw_gk_slot floats per worker (64-byte aligned) */
int kr_conv_pw_gk_ok(const kr_cgeom *g);
size_t kr_conv_pw_gk_slot(const kr_cgeom *g);
void kr_conv_pw_grad_kernel(const kr_cgeom *g, const float *dy, const float *mask, const float *x, float *dw, int bias,
                            float *scratch, int T);

#endif
