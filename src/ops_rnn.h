/*
** ops_rnn.h -- shape rules, gradient rules and kernels of the rnn family
** (ops_rnn.c, kernels/rnn.c), named in the rows of ops_rnn_rows.h.
**
** Shape letters: B batch, T timesteps, F input features, u units, G gates
** (1 SimpleRNN, 4 LSTM in Keras's order i, f, c, o, 3 GRU in order z, r, h).
**
** rnn (x, W, U, b, [h0, [c0]], [mask]) runs a whole sequence:
**   x (B, T, F), W (F, G*u), U (u, G*u), b (G*u), or (2, G*u) for a GRU with
**   reset_after (row 0 the input bias, row 1 the recurrent bias); h0 and c0
**   (B, u) when flag INIT is set (c0 for LSTM only), else zeros; mask (B, T)
**   when flag MASK is set (0: the step is skipped, output and state carried
**   over, as Keras's K.rnn does). With flag STATEFUL, h0/c0 are the layer's
**   state tensors (a fixed batch size) and the final state is written back
**   into them after each run.
**   Output: (B, T, u) with flag RETSEQ (in processing order, reversed when
**   going backwards, unless INPUT_ORDER), else the last output (B, u).
**   attrs: i0 cell (KR_RNN_*), i1 units, i2 flags (KR_RNNF_*), i3 activation,
**   i4 recurrent activation (KR_RACT_*), f0 dropout, f1 recurrent_dropout
**   (Keras implementation=1 masks: one per gate, drawn per run, fixed over time;
**   training only).
** rnn_state (rnn, the rnn's inputs...): its final h (i5 = 0) or c (i5 = 1).
** rnn_grad (rnn, g, the rnn's inputs...): backpropagation through time of g,
**   the gradient of the rnn's output (i5 = 0), of its final h (i5 = 1) or
**   of its final c (i5 = 2). Output dx (B, T, F); aux keeps dW, dU, db, dh0, dc0.
** rnn_grad_part (rnn_grad): one of those (i6: 0 dW, 1 dU, 2 db, 3 dh0, 4 dc0).
*/
#ifndef KR_OPS_RNN_H
#define KR_OPS_RNN_H

#include "ops.h"

enum { KR_RNN_SIMPLE = 0, KR_RNN_LSTM = 1, KR_RNN_GRU = 2, KR_RNN_GRU_RA = 3 };

enum {
  KR_RNNF_RETSEQ = 1,       /* output every step */
  KR_RNNF_BACKWARDS = 2,    /* go_backwards */
  KR_RNNF_INIT = 4,         /* initial state inputs given */
  KR_RNNF_MASK = 8,         /* a mask input is given */
  KR_RNNF_STATEFUL = 16,    /* write the final state back into h0/c0 */
  KR_RNNF_INPUT_ORDER = 32  /* return_sequences in input time order (Bidirectional) */
};

/* attribute slots of rnn, rnn_state, rnn_grad, rnn_grad_part: i[], f[] */
enum {
  KR_RNNA_CELL = 0, KR_RNNA_UNITS = 1, KR_RNNA_FLAGS = 2, KR_RNNA_ACTIVATION = 3,
  KR_RNNA_RECURRENT_ACTIVATION = 4,
  KR_RNNA_WHICH = 5,       /* rnn_state: 0 h, 1 c; rnn_grad: 0 output, 1 h, 2 c */
  KR_RNNA_PART = 6         /* rnn_grad_part: 0 dW, 1 dU, 2 db, 3 dh0, 4 dc0 */
};
enum { KR_RNNA_DROPOUT = 0, KR_RNNA_RECURRENT_DROPOUT = 1 };

/* activations of the cells, by code; each has a derivative in terms of its output */
enum {
  KR_RACT_LINEAR = 0, KR_RACT_TANH, KR_RACT_SIGMOID, KR_RACT_HARD_SIGMOID, KR_RACT_RELU,
  KR_RACT_ELU, KR_RACT_SOFTSIGN, KR_RACT_SOFTPLUS, KR_RACT_SELU, KR_RACT_EXPONENTIAL, KR_RACT_COUNT
};

/* where everything of one rnn node lives, for a concrete batch */
typedef struct kr_rnn_dims {
  int cell;
  unsigned flags;
  int64_t B, T, F, u, G, Gu;
  int act, ract;
  double dropout, rdropout;
  int ih0, ic0, imask;       /* input positions in the rnn node, -1 when absent */
  /* aux of the rnn node, in floats */
  size_t oP, oHin, oCin, oHfin, oCfin, oTC, oRH, oDX, oDH, aux;
  /* aux of the rnn_grad node */
  size_t gW, gU, gb, gh0, gc0, gaux;
} kr_rnn_dims;

/* ops_rnn.c: the attributes taken by name, and the names of the cells, flags
** and activations (exported to Lua as keras.core.rnn_cells, rnn_flags,
** rnn_activations) */
extern const kr_attrname kr_rnn_attrs[], kr_rnn_state_attrs[];
extern const kr_namedint kr_rnn_cell_names[], kr_rnn_flag_names[], kr_rnn_activation_names[];

/* dims of an rnn node for a batch size (used when x has a batch axis) */
void kr_rnn_layout(const kr_node *rnn, int64_t batch, kr_rnn_dims *d);

/* ops_rnn.c: shape rules, gradient rules, buffer sizes */
int kr_rnn_shape(kr_ctx *ctx, kr_node *n);
int kr_rnn_state_shape(kr_ctx *ctx, kr_node *n);
int kr_rnn_bptt_shape(kr_ctx *ctx, kr_node *n);
int kr_rnn_part_shape(kr_ctx *ctx, kr_node *n);
int kr_rnn_grad_rule(kr_ctx *ctx, kr_node *n, kr_node *dy, kr_node **dx);
int kr_rnn_state_grad_rule(kr_ctx *ctx, kr_node *n, kr_node *dy, kr_node **dx);
size_t kr_rnn_aux(const kr_node *n, int64_t batch);
size_t kr_rnn_scratch(const kr_node *n, int64_t batch);
size_t kr_rnn_bptt_aux(const kr_node *n, int64_t batch);
size_t kr_rnn_bptt_scratch(const kr_node *n, int64_t batch);

/* kernels/rnn.c */
int kr_k_rnn(const kr_exec *e);
int kr_k_rnn_state(const kr_exec *e);
int kr_k_rnn_bptt(const kr_exec *e);
int kr_k_rnn_part(const kr_exec *e);

#endif
