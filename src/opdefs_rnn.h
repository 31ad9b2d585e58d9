/*
** opdefs_rnn.h -- the rnn family's ops, appended to opdefs.h's list:
** KR_OPDEF(ENUM, "name") lines, in the same order as the rows of ops_rnn_rows.h.
*/
