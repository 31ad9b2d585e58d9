/*
** ops_conv_rows.h -- the conv family's rows of the op table (included inside
** the kr_ops[] initializer in ops.c), one per KR_OPDEF in opdefs_conv.h, in order.
*/
