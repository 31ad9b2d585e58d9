/*
** ops_conv3d_rows.h -- the 3-D convolutions' rows of the op table (included
** inside the kr_ops[] initializer in ops.c), one per KR_OPDEF in opdefs_conv3d.h, in order.
*/
  {.name = "conv3d", .nin = -1, .shape = kr_conv3d_shape, .forward = kr_k_conv3d, .grad = kr_conv3d_grad,
   .scratch = kr_conv3d_scratch, .attrs = kr_conv3d_attrs},
  {.name = "conv3d_grad_input", .nin = 3, .shape = kr_conv3d_grad_input_shape, .forward = kr_k_conv3d_grad_input,
   .scratch = kr_conv3d_scratch, .attrs = kr_conv3d_attrs},
  {.name = "conv3d_grad_kernel", .nin = 3, .shape = kr_conv3d_grad_kernel_shape, .forward = kr_k_conv3d_grad_kernel,
   .scratch = kr_conv3d_scratch, .attrs = kr_conv3d_attrs},
  {.name = "conv3d_transpose", .nin = -1, .shape = kr_conv3d_transpose_shape, .forward = kr_k_conv3d_transpose,
   .grad = kr_conv3d_transpose_grad, .scratch = kr_conv3d_scratch, .attrs = kr_conv3d_transpose_attrs},
