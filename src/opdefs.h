/*
** opdefs.h -- the list of graph ops, one line each: KR_OPDEF(ENUM, "name").
** Included with a KR_OPDEF definition by kr.h (the enum) and ops.c (the table,
** whose length a _Static_assert ties to KR_OP_COUNT). The "name" is what
** keras.core.op() takes and what error messages show.
*/
/* leaves */
KR_OPDEF(CONST, "const")
KR_OPDEF(VARIABLE, "variable")
KR_OPDEF(INPUT, "input")
/* elementwise, two inputs, numpy broadcasting */
KR_OPDEF(ADD, "add")
KR_OPDEF(SUB, "sub")
KR_OPDEF(MUL, "mul")
KR_OPDEF(DIV, "div")
KR_OPDEF(POW, "pow")
KR_OPDEF(MAXIMUM, "maximum")
KR_OPDEF(MINIMUM, "minimum")
KR_OPDEF(EQUAL, "equal")
KR_OPDEF(NOT_EQUAL, "not_equal")
KR_OPDEF(GREATER, "greater")
KR_OPDEF(GREATER_EQUAL, "greater_equal")
KR_OPDEF(LESS, "less")
KR_OPDEF(LESS_EQUAL, "less_equal")
/* elementwise, one input (f[0], f[1]: parameters where named) */
KR_OPDEF(NEG, "neg")
KR_OPDEF(ABS, "abs")
KR_OPDEF(SIGN, "sign")
KR_OPDEF(SQUARE, "square")
KR_OPDEF(SQRT, "sqrt")
KR_OPDEF(EXP, "exp")
KR_OPDEF(LOG, "log")
KR_OPDEF(ROUND, "round")
KR_OPDEF(FLOOR, "floor")
KR_OPDEF(SCALE, "scale")               /* y = x*f0 + f1 */
KR_OPDEF(POWS, "pows")                 /* y = x^f0 */
KR_OPDEF(CLIP, "clip")                 /* f0 = lo, f1 = hi */
KR_OPDEF(RELU, "relu")                 /* f0 = alpha (negative slope), f1 = max value (0 = none) */
KR_OPDEF(SIGMOID, "sigmoid")
KR_OPDEF(HARD_SIGMOID, "hard_sigmoid")
KR_OPDEF(TANH, "tanh")
KR_OPDEF(SOFTPLUS, "softplus")
KR_OPDEF(SOFTSIGN, "softsign")
KR_OPDEF(ELU, "elu")                   /* f0 = alpha */
KR_OPDEF(SELU, "selu")
KR_OPDEF(THRESHOLDED_RELU, "thresholded_relu") /* f0 = theta: y = x where x > theta, else 0 */
KR_OPDEF(IDENTITY, "identity")
KR_OPDEF(STOP_GRADIENT, "stop_gradient")
/* gradient helpers: (dy, x) or (dy, y) */
KR_OPDEF(RELU_GRAD, "relu_grad")       /* (dy, x), attrs of the relu */
KR_OPDEF(SIGMOID_GRAD, "sigmoid_grad") /* (dy, y) */
KR_OPDEF(TANH_GRAD, "tanh_grad")       /* (dy, y) */
KR_OPDEF(HARD_SIGMOID_GRAD, "hard_sigmoid_grad") /* (dy, x) */
KR_OPDEF(ELU_GRAD, "elu_grad")         /* (dy, x), f0 = alpha */
KR_OPDEF(SELU_GRAD, "selu_grad")       /* (dy, x) */
KR_OPDEF(CLIP_GRAD, "clip_grad")       /* (dy, x), f0 = lo, f1 = hi */
KR_OPDEF(THRESHOLDED_RELU_GRAD, "thresholded_relu_grad") /* (dy, x), f0 = theta */
KR_OPDEF(ZEROS_LIKE, "zeros_like")     /* (x): zeros of x's shape */
/* softmax over axis i0 */
KR_OPDEF(SOFTMAX, "softmax")
KR_OPDEF(SOFTMAX_GRAD, "softmax_grad") /* (dy, y) */
KR_OPDEF(LOG_SOFTMAX, "log_softmax")
KR_OPDEF(LOG_SOFTMAX_GRAD, "log_softmax_grad") /* (dy, y) */
/* reductions: i0 = axis bit mask, i1 = keepdims */
KR_OPDEF(SUM, "sum")
KR_OPDEF(MEAN, "mean")
KR_OPDEF(MAX, "max")
KR_OPDEF(MIN, "min")
KR_OPDEF(PROD, "prod")
KR_OPDEF(ARGMAX, "argmax")             /* i0 = axis */
KR_OPDEF(ARGMIN, "argmin")
KR_OPDEF(REDUCE_GRAD, "reduce_grad")   /* (dy, x): dy broadcast back; i2: 0 sum, 1 mean */
KR_OPDEF(MAXMIN_GRAD, "maxmin_grad")   /* (dy, x, y): dy to where x == y */
KR_OPDEF(PROD_GRAD, "prod_grad")       /* (dy, x): gradient of prod, exact at zeros */
KR_OPDEF(SUM_TO, "sum_to")             /* (x): sum broadcast axes down to attr.shape */
/* linear algebra: (a, b), i0 = transpose a, i1 = transpose b */
KR_OPDEF(MATMUL, "matmul")
KR_OPDEF(BATCH_MATMUL, "batch_matmul") /* (a, b): (B,n,k) x (B,k,m); i0, i1 transpose a / b */
KR_OPDEF(LINEAR, "linear")             /* (x, W, b): x W + b, x (..., K), W (K, N), b (N,) */
/* shape ops */
KR_OPDEF(RESHAPE, "reshape")           /* attr.shape, dim0 KR_BATCH kept */
KR_OPDEF(TRANSPOSE, "transpose")       /* i[0..ndim) permutation */
KR_OPDEF(CONCAT, "concat")             /* variadic; i0 = axis */
KR_OPDEF(SLICE, "slice")               /* i0 = axis, i1 = start, i2 = length */
KR_OPDEF(PAD_AXIS, "pad_axis")         /* (x): place x at i1 inside length i2 on axis i0 (grad of slice) */
KR_OPDEF(BROADCAST_TO, "broadcast_to") /* (x, like) */
KR_OPDEF(GATHER, "gather")             /* (table, ids): rows of table */
KR_OPDEF(GATHER_GRAD, "gather_grad")   /* (dy, ids, table) */
KR_OPDEF(ONE_HOT, "one_hot")           /* (ids), i0 = classes */
/* layers with state of their own */
KR_OPDEF(DROPOUT, "dropout")           /* f0 = rate; training only (i0 = 1: always); aux: mask */
KR_OPDEF(DROPOUT_GRAD, "dropout_grad") /* (dy, dropout node) */
KR_OPDEF(BATCHNORM, "batchnorm")       /* (x, gamma, beta, mean, var); i0 axis, f0 momentum, f1 eps */
KR_OPDEF(BATCHNORM_GRAD, "batchnorm_grad")   /* (dy, bn node, x, gamma): dx */
KR_OPDEF(BATCHNORM_GRAD_GAMMA, "batchnorm_grad_gamma") /* (dy, bn node, x); i2: 0 dgamma, 1 dbeta */
KR_OPDEF(IN_TRAIN_PHASE, "in_train_phase")   /* (a, b): a when training, else b */
/* families in files of their own: convolution and pooling, recurrent layers
** (each has its own gradient checks: tests/c/test_conv.c, tests/c/test_rnn.c,
** tests/c/test_backend.c) */
#ifndef KR_OPDEFS_CORE_ONLY
#include "opdefs_conv.h"
#include "opdefs_rnn.h"
#include "opdefs_backend.h"
#include "opdefs_conv3d.h"
#include "opdefs_conv_transpose.h"
#endif
