/*
** ops_rnn.c -- the rnn family's shape rules, gradient rules and buffer sizes
** (the kernels are in kernels/rnn.c; ops_rnn.h describes the ops).
** The gradient of an rnn (or of one of its final states) is one rnn_grad
** node doing backpropagation through time; it outputs dx and keeps the
** gradients of the weights and initial states in its aux, where
** rnn_grad_part nodes read them.
*/
#include "kr.h"
#include "ops.h"
#include "ops_rnn.h"

#include <string.h>

/* ---- names: the attributes keras.core.op takes (slots: ops_rnn.h), and the
** codes of the cells, flags and activations, exported to Lua ---- */

/* the rnn's own attributes; rnn_state takes them (they must match its rnn's) and which state */
#define RNN_ATTRS                                                         \
  {"cell", KR_ATTR_INT, KR_RNNA_CELL}, {"units", KR_ATTR_INT, KR_RNNA_UNITS}, \
  {"flags", KR_ATTR_INT, KR_RNNA_FLAGS}, {"activation", KR_ATTR_INT, KR_RNNA_ACTIVATION}, \
  {"recurrent_activation", KR_ATTR_INT, KR_RNNA_RECURRENT_ACTIVATION},    \
  {"dropout", KR_ATTR_FLOAT, KR_RNNA_DROPOUT},                            \
  {"recurrent_dropout", KR_ATTR_FLOAT, KR_RNNA_RECURRENT_DROPOUT}

const kr_attrname kr_rnn_attrs[] = {RNN_ATTRS, {NULL, 0, 0}};
const kr_attrname kr_rnn_state_attrs[] = {RNN_ATTRS, {"state", KR_ATTR_INT, KR_RNNA_WHICH}, {NULL, 0, 0}};

const kr_namedint kr_rnn_cell_names[] = {
  {"SimpleRNN", KR_RNN_SIMPLE},
  {"LSTM", KR_RNN_LSTM},
  {"GRU", KR_RNN_GRU},
  {"GRU_reset_after", KR_RNN_GRU_RA},
  {NULL, 0}
};

const kr_namedint kr_rnn_flag_names[] = {
  {"return_sequences", KR_RNNF_RETSEQ},
  {"go_backwards", KR_RNNF_BACKWARDS},
  {"initial_state", KR_RNNF_INIT},
  {"mask", KR_RNNF_MASK},
  {"stateful", KR_RNNF_STATEFUL},
  {"input_order", KR_RNNF_INPUT_ORDER},
  {NULL, 0}
};

const kr_namedint kr_rnn_activation_names[] = {
  {"linear", KR_RACT_LINEAR},
  {"tanh", KR_RACT_TANH},
  {"sigmoid", KR_RACT_SIGMOID},
  {"hard_sigmoid", KR_RACT_HARD_SIGMOID},
  {"relu", KR_RACT_RELU},
  {"elu", KR_RACT_ELU},
  {"softsign", KR_RACT_SOFTSIGN},
  {"softplus", KR_RACT_SOFTPLUS},
  {"selu", KR_RACT_SELU},
  {"exponential", KR_RACT_EXPONENTIAL},
  {NULL, 0}
};

#define SH(s, b) kr_shape_str((s), (b), sizeof(b))

static const char *const cell_names[] = {"SimpleRNN", "LSTM", "GRU", "GRU"};

static int gates_of(int cell) { return cell == KR_RNN_LSTM ? 4 : cell == KR_RNN_SIMPLE ? 1 : 3; }

/* ---- layout ---- */

void kr_rnn_layout(const kr_node *rnn, int64_t batch, kr_rnn_dims *d)
{
  const kr_attr *a = &rnn->attr;
  const kr_shape *xs = &rnn->in[0]->shape;
  memset(d, 0, sizeof *d);
  d->cell = (int)a->i[KR_RNNA_CELL];
  d->u = a->i[KR_RNNA_UNITS];
  d->flags = (unsigned)a->i[KR_RNNA_FLAGS];
  d->act = (int)a->i[KR_RNNA_ACTIVATION];
  d->ract = (int)a->i[KR_RNNA_RECURRENT_ACTIVATION];
  d->dropout = a->f[KR_RNNA_DROPOUT];
  d->rdropout = a->f[KR_RNNA_RECURRENT_DROPOUT];
  d->G = gates_of(d->cell);
  d->Gu = d->G * d->u;
  d->B = xs->dim[0] < 0 ? -xs->dim[0] * batch : xs->dim[0];   /* -k: k times the batch */
  d->T = xs->dim[1];
  d->F = xs->dim[2];
  int k = 4;
  d->ih0 = d->ic0 = d->imask = -1;
  if (d->flags & KR_RNNF_INIT) {
    d->ih0 = k++;
    if (d->cell == KR_RNN_LSTM) d->ic0 = k++;
  }
  if (d->flags & KR_RNNF_MASK) d->imask = k++;
  size_t B = (size_t)d->B, T = (size_t)d->T, F = (size_t)d->F, u = (size_t)d->u, G = (size_t)d->G;
  size_t o = 0;
  d->oP = o;    o += B * T * G * u;
  d->oHin = o;  o += B * T * u;
  d->oHfin = o; o += B * u;
  if (d->cell == KR_RNN_LSTM) {
    d->oCin = o;  o += B * T * u;
    d->oCfin = o; o += B * u;
    d->oTC = o;   o += B * T * u;   /* act(c) of each step, for BPTT */
  }
  if (d->cell == KR_RNN_GRU_RA) { d->oRH = o; o += B * T * u; }
  if (d->dropout > 0) { d->oDX = o; o += G * B * F; }
  if (d->rdropout > 0) { d->oDH = o; o += G * B * u; }
  d->aux = o;
  o = 0;
  d->gW = o;  o += F * G * u;
  d->gU = o;  o += u * G * u;
  d->gb = o;  o += (d->cell == KR_RNN_GRU_RA ? 2 : 1) * G * u;
  d->gh0 = o; o += B * u;
  d->gc0 = o; o += B * u;
  d->gaux = o;
}

/* ---- shape rules ---- */

static int bad(kr_ctx *ctx, const kr_node *n, const char *what, const kr_shape *got, const kr_shape *want)
{
  char a[128], b[128];
  if (want)
    return kr_fail(ctx, KR_ESHAPE, "%s (%s): %s has shape %s, expected %s", kr_ops[n->op].name,
                   cell_names[n->attr.i[KR_RNNA_CELL] & 3], what, SH(got, a), SH(want, b));
  return kr_fail(ctx, KR_ESHAPE, "%s (%s): %s has shape %s", kr_ops[n->op].name,
                 cell_names[n->attr.i[KR_RNNA_CELL] & 3], what, SH(got, a));
}

static kr_shape shape2(int64_t a, int64_t b)
{
  kr_shape s;
  memset(&s, 0, sizeof s);
  s.ndim = 2;
  s.dim[0] = a;
  s.dim[1] = b;
  return s;
}

/* the checks of an rnn node's inputs n->in[first ...] against its attrs */
static int check_inputs(kr_ctx *ctx, const kr_node *n, int first)
{
  const kr_attr *a = &n->attr;
  if (a->i[KR_RNNA_CELL] < 0 || a->i[KR_RNNA_CELL] > KR_RNN_GRU_RA)
    return kr_fail(ctx, KR_EARG, "%s: unknown cell %lld", kr_ops[n->op].name, (long long)a->i[KR_RNNA_CELL]);
  if (a->i[KR_RNNA_UNITS] < 1)
    return kr_fail(ctx, KR_EARG, "%s: units must be >= 1, got %lld", kr_ops[n->op].name,
                   (long long)a->i[KR_RNNA_UNITS]);
  int64_t act = a->i[KR_RNNA_ACTIVATION], ract = a->i[KR_RNNA_RECURRENT_ACTIVATION];
  if (act < 0 || act >= KR_RACT_COUNT || ract < 0 || ract >= KR_RACT_COUNT)
    return kr_fail(ctx, KR_EARG, "%s: unknown activation code", kr_ops[n->op].name);
  double drop = a->f[KR_RNNA_DROPOUT], rdrop = a->f[KR_RNNA_RECURRENT_DROPOUT];
  if (!(drop >= 0 && drop < 1) || !(rdrop >= 0 && rdrop < 1))
    return kr_fail(ctx, KR_EARG, "%s: dropout rates must be in [0, 1)", kr_ops[n->op].name);
  unsigned flags = (unsigned)a->i[KR_RNNA_FLAGS];
  int cell = (int)a->i[KR_RNNA_CELL];
  int want = 4 + ((flags & KR_RNNF_INIT) ? (cell == KR_RNN_LSTM ? 2 : 1) : 0) + ((flags & KR_RNNF_MASK) ? 1 : 0);
  if (n->nin - first != want)
    return kr_fail(ctx, KR_EARG, "%s (%s): expected %d inputs, got %d", kr_ops[n->op].name, cell_names[cell & 3],
                   want, n->nin - first);
  if ((flags & KR_RNNF_STATEFUL) && !(flags & KR_RNNF_INIT))
    return kr_fail(ctx, KR_EARG, "%s: a stateful rnn needs its state inputs", kr_ops[n->op].name);
  kr_node *const *in = n->in + first;
  const kr_shape *x = &in[0]->shape;
  if (x->ndim != 3) return bad(ctx, n, "the input", x, NULL);
  /* dim[1] may be KR_NONE: a length known only when a plan is built */
  if (x->dim[1] == 0 || x->dim[1] < KR_NONE || x->dim[2] < 1)
    return bad(ctx, n, "the input (it needs at least one timestep)", x, NULL);
  int64_t u = a->i[KR_RNNA_UNITS], Gu = gates_of(cell) * u, F = x->dim[2], B = x->dim[0];
  kr_shape w = shape2(F, Gu), r = shape2(u, Gu);
  if (!kr_shape_eq(&in[1]->shape, &w)) return bad(ctx, n, "the kernel", &in[1]->shape, &w);
  if (!kr_shape_eq(&in[2]->shape, &r)) return bad(ctx, n, "the recurrent kernel", &in[2]->shape, &r);
  kr_shape bs;
  memset(&bs, 0, sizeof bs);
  if (cell == KR_RNN_GRU_RA) bs = shape2(2, Gu);
  else { bs.ndim = 1; bs.dim[0] = Gu; }
  if (!kr_shape_eq(&in[3]->shape, &bs)) return bad(ctx, n, "the bias", &in[3]->shape, &bs);
  int k = 4;
  if (flags & KR_RNNF_INIT) {
    for (int j = 0; j < (cell == KR_RNN_LSTM ? 2 : 1); j++, k++) {
      const kr_shape *h = &in[k]->shape;
      int ok = h->ndim == 2 && h->dim[1] == u;
      if (ok && h->dim[0] != B) {
        /* a stateful layer's state has a fixed batch size; checked when it runs */
        ok = (flags & KR_RNNF_STATEFUL) && B == KR_BATCH && h->dim[0] >= 1;
      }
      if (!ok) {
        kr_shape hs = shape2(B, u);
        return bad(ctx, n, j ? "the initial cell state" : "the initial state", h, &hs);
      }
    }
  }
  if (flags & KR_RNNF_MASK) {
    kr_shape ms = shape2(B, x->dim[1]);
    if (!kr_shape_eq(&in[k]->shape, &ms)) return bad(ctx, n, "the mask", &in[k]->shape, &ms);
  }
  return KR_OK;
}

int kr_rnn_shape(kr_ctx *ctx, kr_node *n)
{
  if (check_inputs(ctx, n, 0) != KR_OK) return kr_errcode(ctx);
  const kr_shape *x = &n->in[0]->shape;
  kr_shape y = *x;
  if (n->attr.i[KR_RNNA_FLAGS] & KR_RNNF_RETSEQ) {
    y.dim[2] = n->attr.i[KR_RNNA_UNITS];
  } else {
    y = shape2(x->dim[0], n->attr.i[KR_RNNA_UNITS]);
  }
  n->shape = y;
  return KR_OK;
}

/* the inputs after `first` are the rnn node's own inputs */
static int same_inputs(kr_ctx *ctx, const kr_node *n, int first)
{
  const kr_node *r = n->in[0];
  if (r->op != KR_OP_RNN) return kr_fail(ctx, KR_EARG, "%s: the first input must be an rnn node", kr_ops[n->op].name);
  if (n->nin - first != r->nin)
    return kr_fail(ctx, KR_EARG, "%s: expected the rnn's %d inputs, got %d", kr_ops[n->op].name, r->nin, n->nin - first);
  for (int i = 0; i < r->nin; i++)
    if (n->in[first + i] != r->in[i])
      return kr_fail(ctx, KR_EARG, "%s: input %d is not the rnn's input %d", kr_ops[n->op].name, first + i + 1, i + 1);
  for (int i = KR_RNNA_CELL; i <= KR_RNNA_RECURRENT_ACTIVATION; i++)
    if (n->attr.i[i] != r->attr.i[i]) return kr_fail(ctx, KR_EARG, "%s: attributes differ from the rnn's", kr_ops[n->op].name);
  if (n->attr.f[KR_RNNA_DROPOUT] != r->attr.f[KR_RNNA_DROPOUT] ||
      n->attr.f[KR_RNNA_RECURRENT_DROPOUT] != r->attr.f[KR_RNNA_RECURRENT_DROPOUT])
    return kr_fail(ctx, KR_EARG, "%s: attributes differ from the rnn's", kr_ops[n->op].name);
  return KR_OK;
}

int kr_rnn_state_shape(kr_ctx *ctx, kr_node *n)
{
  if (n->nin < 1 || same_inputs(ctx, n, 1) != KR_OK) return kr_errcode(ctx) ? kr_errcode(ctx) : KR_EARG;
  const kr_node *r = n->in[0];
  int64_t which = n->attr.i[KR_RNNA_WHICH];
  if (which != 0 && !(which == 1 && r->attr.i[KR_RNNA_CELL] == KR_RNN_LSTM))
    return kr_fail(ctx, KR_EARG, "rnn_state: no state %lld for this cell", (long long)which);
  n->shape = shape2(r->in[0]->shape.dim[0], r->attr.i[KR_RNNA_UNITS]);
  return KR_OK;
}

int kr_rnn_bptt_shape(kr_ctx *ctx, kr_node *n)
{
  if (n->nin < 2 || same_inputs(ctx, n, 2) != KR_OK) return kr_errcode(ctx) ? kr_errcode(ctx) : KR_EARG;
  const kr_node *r = n->in[0];
  int64_t mode = n->attr.i[KR_RNNA_WHICH];
  kr_shape want = r->shape;
  if (mode == 1 || (mode == 2 && r->attr.i[KR_RNNA_CELL] == KR_RNN_LSTM))
    want = shape2(r->in[0]->shape.dim[0], r->attr.i[KR_RNNA_UNITS]);
  else if (mode != 0) return kr_fail(ctx, KR_EARG, "rnn_grad: bad mode %lld", (long long)mode);
  if (!kr_shape_eq(&n->in[1]->shape, &want)) return bad(ctx, n, "the incoming gradient", &n->in[1]->shape, &want);
  n->shape = r->in[0]->shape;
  return KR_OK;
}

int kr_rnn_part_shape(kr_ctx *ctx, kr_node *n)
{
  const kr_node *g = n->in[0];
  if (g->op != KR_OP_RNN_GRAD) return kr_fail(ctx, KR_EARG, "rnn_grad_part: the input must be an rnn_grad node");
  const kr_node *r = g->in[0];
  int64_t part = n->attr.i[KR_RNNA_PART];
  kr_rnn_dims d;
  kr_rnn_layout(r, 1, &d);
  int idx = part == 0 ? 1 : part == 1 ? 2 : part == 2 ? 3 : part == 3 ? d.ih0 : part == 4 ? d.ic0 : -1;
  if (idx < 0) return kr_fail(ctx, KR_EARG, "rnn_grad_part: no part %lld for this rnn", (long long)part);
  n->shape = r->in[idx]->shape;
  return KR_OK;
}

/* ---- gradient rules ---- */

/* rnn_grad(rnn, g, rnn inputs...) with mode; NULL on failure */
static kr_node *bptt(kr_ctx *ctx, kr_node *rnn, kr_node *g, int mode)
{
  kr_node *local[16];
  kr_node **in = local;
  int nin = rnn->nin + 2;
  if (nin > 16) return kr_fail(ctx, KR_EARG, "rnn_grad: too many inputs"), NULL;
  in[0] = rnn;
  in[1] = g;
  for (int i = 0; i < rnn->nin; i++) in[2 + i] = rnn->in[i];
  kr_attr a = rnn->attr;
  a.i[KR_RNNA_WHICH] = mode;
  return kr_node_op(ctx, KR_OP_RNN_GRAD, nin, in, &a);
}

static kr_node *part(kr_ctx *ctx, kr_node *g, int which)
{
  kr_attr a = g->attr;
  a.i[KR_RNNA_PART] = which;
  return kr_op1(ctx, KR_OP_RNN_GRAD_PART, g, &a);
}

/* dx[first + k] for the rnn's input k, from one rnn_grad node */
static int spread(kr_ctx *ctx, kr_node *rnn, kr_node *g, kr_node **dx)
{
  kr_rnn_dims d;
  kr_rnn_layout(rnn, 1, &d);
  kr_node_retain(g);
  dx[0] = g;
  dx[1] = part(ctx, g, 0);
  dx[2] = part(ctx, g, 1);
  dx[3] = part(ctx, g, 2);
  if (!dx[1] || !dx[2] || !dx[3]) return kr_errcode(ctx);
  /* a stateful layer's state is data, not a function of anything trained */
  if (d.ih0 >= 0 && !(d.flags & KR_RNNF_STATEFUL)) {
    if (!(dx[d.ih0] = part(ctx, g, 3))) return kr_errcode(ctx);
    if (d.ic0 >= 0 && !(dx[d.ic0] = part(ctx, g, 4))) return kr_errcode(ctx);
  }
  return KR_OK;
}

int kr_rnn_grad_rule(kr_ctx *ctx, kr_node *n, kr_node *dy, kr_node **dx)
{
  kr_node *g = bptt(ctx, n, dy, 0);
  if (!g) return kr_errcode(ctx);
  int st = spread(ctx, n, g, dx);
  kr_node_release(g);
  return st;
}

int kr_rnn_state_grad_rule(kr_ctx *ctx, kr_node *n, kr_node *dy, kr_node **dx)
{
  kr_node *rnn = n->in[0];
  kr_node *g = bptt(ctx, rnn, dy, 1 + (int)n->attr.i[KR_RNNA_WHICH]);
  if (!g) return kr_errcode(ctx);
  dx[0] = NULL;   /* the output sequence does not depend on this */
  int st = spread(ctx, rnn, g, dx + 1);
  kr_node_release(g);
  return st;
}

/* ---- buffer sizes ---- */

size_t kr_rnn_aux(const kr_node *n, int64_t batch)
{
  kr_rnn_dims d;
  kr_rnn_layout(n, batch, &d);
  return d.aux;
}

size_t kr_rnn_scratch(const kr_node *n, int64_t batch)
{
  kr_rnn_dims d;
  kr_rnn_layout(n, batch, &d);
  size_t s = (size_t)(d.B * d.Gu + d.B * d.u);
  if (d.dropout > 0) s += (size_t)(d.B * d.T * d.F);
  return s;
}

size_t kr_rnn_bptt_aux(const kr_node *n, int64_t batch)
{
  kr_rnn_dims d;
  kr_rnn_layout(n->in[0], batch, &d);
  return d.gaux;
}

/* dP (B, T, Gu), dR (GRU reset_after), dh, dc, the output carry, a row of
** gates, U transposed, and one (B, T, max(F, u)) temporary */
size_t kr_rnn_bptt_scratch(const kr_node *n, int64_t batch)
{
  kr_rnn_dims d;
  kr_rnn_layout(n->in[0], batch, &d);
  size_t BT = (size_t)(d.B * d.T), Gu = (size_t)d.Gu, B = (size_t)d.B, u = (size_t)d.u;
  size_t s = BT * Gu * (d.cell == KR_RNN_GRU_RA ? 2 : 1);
  s += 3 * B * u + B * Gu + Gu * u;
  s += BT * (size_t)(d.F > d.u ? d.F : d.u);
  return s;
}
