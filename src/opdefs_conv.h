/*
** opdefs_conv.h -- the conv family's ops, appended to opdefs.h's list:
** KR_OPDEF(ENUM, "name") lines, in the same order as the rows of ops_conv_rows.h.
** Inputs and attributes: see ops_conv.h.
*/
KR_OPDEF(CONV2D, "conv2d")                         /* (x, w[, b]) */
KR_OPDEF(CONV2D_GRAD_INPUT, "conv2d_grad_input")   /* (dy, w, x[, y][, after]) */
KR_OPDEF(CONV2D_GRAD_KERNEL, "conv2d_grad_kernel") /* (dy, x, w[, y][, after]) */
KR_OPDEF(MAX_POOL2D, "max_pool2d")                 /* (x); aux: argmax in each window */
KR_OPDEF(MAX_POOL2D_GRAD, "max_pool2d_grad")       /* (dy, pool node) */
KR_OPDEF(AVG_POOL2D, "avg_pool2d")                 /* (x) */
KR_OPDEF(AVG_POOL2D_GRAD, "avg_pool2d_grad")       /* (dy, x) */
KR_OPDEF(PAD2D, "pad2d")                           /* (x); gradient: crop2d */
KR_OPDEF(CROP2D, "crop2d")                         /* (x); gradient: pad2d */
KR_OPDEF(UPSAMPLE2D, "upsample2d")                 /* (x) */
KR_OPDEF(UPSAMPLE2D_GRAD, "upsample2d_grad")       /* (dy, x) */
KR_OPDEF(SPATIAL_DROPOUT, "spatial_dropout")       /* (x); training only; aux: mask (N, C) */
KR_OPDEF(SPATIAL_DROPOUT_GRAD, "spatial_dropout_grad") /* (dy, spatial_dropout node) */
KR_OPDEF(DEPTHWISE_CONV2D, "depthwise_conv2d")     /* (x, w); w (KH, KW, C, M) */
KR_OPDEF(DEPTHWISE_CONV2D_GRAD_INPUT, "depthwise_conv2d_grad_input")   /* (dy, w, x) */
KR_OPDEF(DEPTHWISE_CONV2D_GRAD_KERNEL, "depthwise_conv2d_grad_kernel") /* (dy, x, w) */
