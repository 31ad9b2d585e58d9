/*
** opdefs_rnn.h -- the rnn family's ops, appended to opdefs.h's list:
** KR_OPDEF(ENUM, "name") lines, in the same order as the rows of ops_rnn_rows.h.
** See ops_rnn.h for the inputs and attributes of each.
*/
KR_OPDEF(RNN, "rnn")                       /* (x, W, U, b, [h0, [c0]], [mask]): the whole sequence */
KR_OPDEF(RNN_STATE, "rnn_state")           /* (rnn node, rnn's inputs...): final h (i5 = 0) or c (i5 = 1) */
KR_OPDEF(RNN_GRAD, "rnn_grad")             /* (rnn node, g, rnn's inputs...): BPTT, dx out, the rest in aux */
KR_OPDEF(RNN_GRAD_PART, "rnn_grad_part")   /* (rnn_grad node): dW, dU, db, dh0 or dc0 (i6) */
