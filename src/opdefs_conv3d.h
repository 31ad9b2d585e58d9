/*
** opdefs_conv3d.h -- the 3-D convolutions (ops_conv3d.h), appended to
** opdefs.h's list after the other families, in the same order as the rows of
** ops_conv3d_rows.h. Their gradient checks: tests/c/test_conv3d.c.
*/
KR_OPDEF(CONV3D, "conv3d")                         /* (x, w[, b]) */
KR_OPDEF(CONV3D_GRAD_INPUT, "conv3d_grad_input")   /* (dy, w, x) */
KR_OPDEF(CONV3D_GRAD_KERNEL, "conv3d_grad_kernel") /* (dy, x, w) */
KR_OPDEF(CONV3D_TRANSPOSE, "conv3d_transpose")     /* (x, w[, b]); w (KD, KH, KW, O, C) */
