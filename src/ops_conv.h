/*
** ops_conv.h -- shape rules, gradient rules and kernels of the conv family
** (ops_conv.c, kernels/conv.c), named in the rows of ops_conv_rows.h.
*/
#ifndef KR_OPS_CONV_H
#define KR_OPS_CONV_H

#include "ops.h"

#endif
