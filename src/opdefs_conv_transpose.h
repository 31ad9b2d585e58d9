/*
** opdefs_conv_transpose.h -- the transposed convolution, appended to
** opdefs.h's list (its row: ops_conv_transpose_rows.h; inputs and
** attributes: ops_conv_transpose.h).
*/
KR_OPDEF(CONV2D_TRANSPOSE, "conv2d_transpose")     /* (x, w[, b]); attr.shape: the output */
