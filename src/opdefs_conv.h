/*
** opdefs_conv.h -- the conv family's ops, appended to opdefs.h's list:
** KR_OPDEF(ENUM, "name") lines, in the same order as the rows of ops_conv_rows.h.
*/
