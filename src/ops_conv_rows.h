/*
** ops_conv_rows.h -- the conv family's rows of the op table (included inside
** the kr_ops[] initializer in ops.c), one per KR_OPDEF in opdefs_conv.h, in order.
*/
  {"conv2d", -1, kr_conv_shape, kr_k_conv2d, kr_conv_grad, NULL, kr_conv_scratch, 0},
  {"conv2d_grad_input", -1, kr_conv_grad_input_shape, kr_k_conv2d_grad_input, NULL, NULL,
   kr_conv_grad_input_scratch, 0},
  {"conv2d_grad_kernel", -1, kr_conv_grad_kernel_shape, kr_k_conv2d_grad_kernel, NULL, NULL,
   kr_conv_grad_kernel_scratch, 0},
  {"max_pool2d", 1, kr_pool_shape, kr_k_max_pool2d, kr_maxpool_grad, kr_maxpool_aux, NULL, 0},
  {"max_pool2d_grad", 2, kr_maxpool_grad_shape, kr_k_max_pool2d_grad, NULL, NULL, NULL, 0},
  {"avg_pool2d", 1, kr_pool_shape, kr_k_avg_pool2d, kr_avgpool_grad, NULL, NULL, 0},
  {"avg_pool2d_grad", 2, kr_avgpool_grad_shape, kr_k_avg_pool2d_grad, NULL, NULL, NULL, 0},
  {"pad2d", 1, kr_pad2d_shape, kr_k_pad2d, kr_pad2d_grad, NULL, NULL, 0},
  {"crop2d", 1, kr_crop2d_shape, kr_k_crop2d, kr_crop2d_grad, NULL, NULL, 0},
  {"upsample2d", 1, kr_upsample_shape, kr_k_upsample2d, kr_upsample_grad, NULL, NULL, 0},
  {"upsample2d_grad", 2, kr_upsample_grad_shape, kr_k_upsample2d_grad, NULL, NULL, NULL, 0},
  {"spatial_dropout", 1, kr_sdrop_shape, kr_k_spatial_dropout, kr_sdrop_grad, kr_sdrop_aux, NULL, 0},
  {"spatial_dropout_grad", 2, kr_sdrop_grad_shape, kr_k_spatial_dropout_grad, NULL, NULL, NULL, 0},
