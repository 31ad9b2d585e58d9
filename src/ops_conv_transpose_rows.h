/*
** ops_conv_transpose_rows.h -- the row of conv2d_transpose in the op table
** (included inside the kr_ops[] initializer in ops.c), for opdefs_conv_transpose.h.
*/
  {.name = "conv2d_transpose", .nin = -1, .shape = kr_conv_transpose_shape, .forward = kr_k_conv2d_transpose,
   .grad = kr_conv_transpose_grad, .scratch = kr_conv_transpose_scratch, .attrs = kr_conv_transpose_attrs},
