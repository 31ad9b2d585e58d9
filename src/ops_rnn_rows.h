/*
** ops_rnn_rows.h -- the rnn family's rows of the op table (included inside
** the kr_ops[] initializer in ops.c), one per KR_OPDEF in opdefs_rnn.h, in order.
*/
