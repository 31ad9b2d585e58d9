/*
** conv_geom.h -- the geometry of a 2-D convolution (channels_last; rank 3
** inputs are one row), read from its input, kernel and output shapes and
** its attributes: shared by the convolution kernels (conv.c) and the
** depthwise ones (dwconv.c). The kernel's last axis is the output channels
** O of a convolution, the depth multiplier M of a depthwise one.
*/
#ifndef KR_CONV_GEOM_H
#define KR_CONV_GEOM_H

#include "../ops_conv.h"

typedef struct kr_cgeom {
  int64_t N, H, W, C, KH, KW;
  union { int64_t O; int64_t M; };   /* w's last axis */
  int64_t Ho, Wo;
  int64_t sh, sw, dh, dw, pt, pl;
} kr_cgeom;

/* x, w and the output y; the output's batch may be missing (N from x) */
static inline kr_cgeom kr_conv_geom(const kr_shape *x, const kr_shape *w, const kr_shape *y, const kr_attr *a)
{
  kr_cgeom g;
  int r = x->ndim;
  g.N = x->dim[0] < 0 ? 1 : x->dim[0];
  g.H = r == 4 ? x->dim[1] : 1;
  g.W = x->dim[r - 2];
  g.C = x->dim[r - 1];
  g.KH = r == 4 ? w->dim[0] : 1;
  g.KW = w->dim[r - 3];
  g.O = w->dim[r - 1];
  g.Ho = r == 4 ? y->dim[1] : 1;
  g.Wo = y->dim[r - 2];
  g.sh = a->i[KR_CONV_STRIDE_H];
  g.sw = a->i[KR_CONV_STRIDE_W];
  g.dh = a->i[KR_CONV_DILATION_H];
  g.dw = a->i[KR_CONV_DILATION_W];
  g.pt = a->i[KR_CONV_PAD_TOP];
  g.pl = a->i[KR_CONV_PAD_LEFT];
  return g;
}

#endif
