/*
** ops_rnn_rows.h -- the rnn family's rows of the op table (included inside
** the kr_ops[] initializer in ops.c), one per KR_OPDEF in opdefs_rnn.h, in order.
*/
  {.name = "rnn", .nin = -1, .shape = kr_rnn_shape, .forward = kr_k_rnn, .grad = kr_rnn_grad_rule, .aux = kr_rnn_aux,
   .scratch = kr_rnn_scratch, .attrs = kr_rnn_attrs},
  {.name = "rnn_state", .nin = -1, .shape = kr_rnn_state_shape, .forward = kr_k_rnn_state,
   .grad = kr_rnn_state_grad_rule, .attrs = kr_rnn_state_attrs},
  {.name = "rnn_grad", .nin = -1, .shape = kr_rnn_bptt_shape, .forward = kr_k_rnn_bptt, .aux = kr_rnn_bptt_aux,
   .scratch = kr_rnn_bptt_scratch},
  {.name = "rnn_grad_part", .nin = 1, .shape = kr_rnn_part_shape, .forward = kr_k_rnn_part},
