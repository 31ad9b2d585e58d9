/*
** ops_rnn_rows.h -- the rnn family's rows of the op table (included inside
** the kr_ops[] initializer in ops.c), one per KR_OPDEF in opdefs_rnn.h, in order.
*/
  {"rnn", -1, kr_rnn_shape, kr_k_rnn, kr_rnn_grad_rule, kr_rnn_aux, kr_rnn_scratch, 0},
  {"rnn_state", -1, kr_rnn_state_shape, kr_k_rnn_state, kr_rnn_state_grad_rule, NULL, NULL, 0},
  {"rnn_grad", -1, kr_rnn_bptt_shape, kr_k_rnn_bptt, NULL, kr_rnn_bptt_aux, kr_rnn_bptt_scratch, 0},
  {"rnn_grad_part", 1, kr_rnn_part_shape, kr_k_rnn_part, NULL, NULL, NULL, 0},
