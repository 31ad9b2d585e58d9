/*
** ops_rnn.h -- shape rules, gradient rules and kernels of the rnn family
** (ops_rnn.c, kernels/rnn.c), named in the rows of ops_rnn_rows.h.
*/
#ifndef KR_OPS_RNN_H
#define KR_OPS_RNN_H

#include "ops.h"

#endif
