/*
** train.c -- training and inference loops in C.
** A trainer holds the model's graph (inputs, targets, sample weights, outputs,
** the logged scalars with the total loss first, the trainable variables and
** their gradient nodes) and up to three plans built on first use: train
** (logs + gradients, training mode), test (logs) and predict (outputs). A plan
** is built for a maximum batch size and reused for every batch, the smaller
** last one included: the batch loop gathers rows into the plan's input
** buffers, runs the plan, steps the optimizer, and allocates nothing.
*/
#include "kr.h"
#include "ops.h"
#include "ctx_impl.h"
#include "dist.h"

#include <float.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdio.h>
#include <math.h>
#include <string.h>

#define ALIGN_FLOATS 16   /* plan.c aligns every buffer to 16 floats */

/* a gradient region cut in P parts (kr_dist_share: whole cache lines), and
** each part in pieces of the vars whose gradients fall in it: part q's are
** pieces[at[q]] .. pieces[at[q + 1]] */
typedef struct kr_cut {
  kr_optim_piece *pieces;
  int *at;
  int npieces, cap, pcap;
} kr_cut;

/* an arena and the number of trainers using it */
typedef struct kr_arena_box {
  int refs;
  float *mem;
  size_t bytes;
} kr_arena_box;

static void box_release(kr_ctx *ctx, kr_arena_box *b)
{
  if (!b || --b->refs > 0) return;
  kr_free(ctx, b->mem);
  kr_free(ctx, b);
}

struct kr_trainer {
  kr_ctx *ctx;
  int nin, ntgt, nsw, nout, nlog, nvar;
  kr_node **nodes;          /* inputs, targets, weights, outputs, logs, vars, grads */
  kr_node **in, **tgt, **sw, **out, **logs, **vars, **grads;
  kr_optim *optim;
  kr_plan *train, *test, *pred;
  kr_arena_box *arena;      /* shared by the three plans, which never run at once, and
                               by the trainers given it with kr_trainer_share_arena */
  const float **gradp;      /* the train plan's gradient outputs */
  double *acc, *cur, *mean;  /* fit's running logs: the batch's, the sums, the means */
  double *eacc, *ecur, *emean;   /* evaluate's (a callback in fit may run evaluate) */
  kr_node **plan_in;        /* inputs ++ targets ++ weights */
  /* data-parallel training (kr_trainer_set_dist): the world, the largest
  ** allreduce in floats, the state averaged each step, the logs' buffer */
  kr_dist *dist;
  size_t fusion;
  int nstate;
  kr_tensor **state;
  double *dlogs;
  int train_grouped;        /* the train plan's gradients are one region */
  double dist_s;            /* seconds spent in the steps' collectives, and the steps */
  int64_t dist_steps;
  uint64_t dist_epochs;     /* distributed epochs run: each draws dropout from a new stream */
  uint64_t dist_batches;    /* distributed train_on_batch steps: each draws from a new stream */
  double dist_rows;         /* the world's rows in the last distributed train_on_batch */
  /* the overlapped reduction (kr_trainer_set_overlap): the communication
  ** thread, the plan its buckets were cut for, the first bucket's floats */
  kr_dist_comm *comm;
  const kr_plan *comm_plan;
  size_t comm_first;
  /* the train plan whose gradient region is the world's shared region
  ** (kr_dist_shared), and that window's generation */
  const kr_plan *shm_plan;
  uint64_t shm_gen;
  /* the sharded step there (dist_shard_plan): every rank's pieces of the
  ** vars (shares: part q is rank q's), the vars whose gradients are not in
  ** the region, the region's floats (the exchange area of the updated
  ** weights follows it in each segment) */
  kr_cut shares;
  int *local;
  int nlocal;
  size_t shard_n;
  /* the chunked step on the shared state (dist_chunked_step): the region in
  ** chunks, in a contiguous range per rank, each ready once every rank's run has
  ** passed chunk_ready[c] (its gradients written, its weights read for the
  ** last time); for the plan chunk_plan. LKERAS_DIST_EARLY=0: not used */
  kr_cut chunks;
  int nchunks;
  size_t *chunk_ready;
  const kr_plan *chunk_plan;
  int early_off;
  int shard_on;
  int slots_stale;          /* sharded steps ran: the slots outside each rank's pieces are old */
  /* split or whole step, chosen by measuring (dist_shard_this_step): 0 not
  ** yet, 1 whole, 2 split; LKERAS_DIST_SHARD=0|1 forces it (shard_force) */
  int shard_mode, shard_force, trial_n;
  double trial_t[2];
  int64_t state_steps;      /* steps taken on the shared state (dist_state_begin) */
  int64_t chunked_steps;    /* of which chunked (dist_chunked_step) */
  int state_refused;        /* a var or slot cannot move (part of a larger storage): not asked again */
};

void kr_trainer_free(kr_trainer *t)
{
  if (!t) return;
  kr_ctx *ctx = t->ctx;
  if (t->dist && t->dist->state_owner == t) {   /* no collective here: the values as they are */
    char err[KR_DIST_ERR];
    kr_dist_state_release(t->dist, 0, err);
  }
  kr_dist_comm_free(t->comm);
  kr_free(ctx, t->shares.pieces);
  kr_free(ctx, t->shares.at);
  kr_free(ctx, t->chunks.pieces);
  kr_free(ctx, t->chunks.at);
  kr_free(ctx, t->chunk_ready);
  kr_free(ctx, t->local);
  kr_plan_free(t->train);
  kr_plan_free(t->test);
  kr_plan_free(t->pred);
  box_release(ctx, t->arena);
  int total = t->nin + t->ntgt + t->nsw + t->nout + t->nlog + 2 * t->nvar;
  if (t->nodes)
    for (int i = 0; i < total; i++) kr_node_release(t->nodes[i]);
  kr_free(ctx, t->nodes);
  kr_free(ctx, t->gradp);
  kr_free(ctx, t->acc);
  kr_free(ctx, t->plan_in);
  for (int i = 0; i < t->nstate; i++) kr_tensor_release(t->state[i]);
  kr_free(ctx, t->state);
  kr_free(ctx, t->dlogs);
  kr_free(ctx, t);
}

kr_trainer *kr_trainer_new(kr_ctx *ctx, const kr_trainer_spec *s)
{
  kr_trainer *t = kr_calloc(ctx, sizeof *t);
  if (!t) return NULL;
  t->ctx = ctx;
  int total = s->nin + s->ntgt + s->nsw + s->nout + s->nlog + 2 * s->nvar;
  t->nodes = kr_calloc(ctx, (size_t)(total ? total : 1) * sizeof *t->nodes);
  t->gradp = kr_calloc(ctx, (size_t)(s->nvar ? s->nvar : 1) * sizeof *t->gradp);
  t->acc = kr_calloc(ctx, (size_t)(6 * (s->nlog ? s->nlog : 1)) * sizeof *t->acc);
  t->plan_in = kr_calloc(ctx, (size_t)(s->nin + s->ntgt + s->nsw + 1) * sizeof *t->plan_in);
  t->arena = kr_calloc(ctx, sizeof *t->arena);
  if (!t->nodes || !t->gradp || !t->acc || !t->plan_in || !t->arena) goto fail;
  t->arena->refs = 1;
  t->cur = t->acc + (s->nlog ? s->nlog : 1);
  t->mean = t->cur + (s->nlog ? s->nlog : 1);
  t->eacc = t->mean + (s->nlog ? s->nlog : 1);
  t->ecur = t->eacc + (s->nlog ? s->nlog : 1);
  t->emean = t->ecur + (s->nlog ? s->nlog : 1);
  t->nin = s->nin;
  t->ntgt = s->ntgt;
  t->nsw = s->nsw;
  t->nout = s->nout;
  t->nlog = s->nlog;
  t->optim = s->optim;
  kr_node **p = t->nodes;
  t->in = p;   p += s->nin;
  t->tgt = p;  p += s->ntgt;
  t->sw = p;   p += s->nsw;
  t->out = p;  p += s->nout;
  t->logs = p; p += s->nlog;
  t->vars = p; p += s->nvar;
  t->grads = p;
#define TAKE(dst, src, n) for (int i = 0; i < (n); i++) { (dst)[i] = (src)[i]; kr_node_retain((src)[i]); }
  TAKE(t->in, s->inputs, s->nin);
  TAKE(t->tgt, s->targets, s->ntgt);
  TAKE(t->sw, s->weights, s->nsw);
  TAKE(t->out, s->outputs, s->nout);
  TAKE(t->logs, s->logs, s->nlog);
  TAKE(t->vars, s->vars, s->nvar);
#undef TAKE
  t->nvar = s->nvar;   /* from here on kr_trainer_free releases the vars and any grads made */
  for (int i = 0; i < s->nin; i++) t->plan_in[i] = s->inputs[i];
  for (int i = 0; i < s->ntgt; i++) t->plan_in[s->nin + i] = s->targets[i];
  for (int i = 0; i < s->nsw; i++) t->plan_in[s->nin + s->ntgt + i] = s->weights[i];
  if (s->nvar > 0) {
    if (s->nlog < 1 || !s->optim) {
      kr_fail(ctx, KR_EARG, "trainer: training needs a loss and an optimizer");
      goto fail;
    }
    if (kr_gradients(ctx, s->logs[0], s->nvar, s->vars, t->grads) != KR_OK) goto fail;
    kr_tensor **vt = kr_malloc(ctx, (size_t)s->nvar * sizeof *vt);
    if (!vt) goto fail;
    for (int i = 0; i < s->nvar; i++) vt[i] = s->vars[i]->value;
    int st = s->keep_optim && kr_optim_bound_to(s->optim, s->nvar, vt) ? KR_OK
             : kr_optim_bind(s->optim, s->nvar, vt);
    kr_free(ctx, vt);
    if (st != KR_OK) goto fail;
    for (int i = 0; s->constraints && i < s->nvar; i++)
      if (kr_optim_constrain(s->optim, i, &s->constraints[i]) != KR_OK) goto fail;
  }
  return t;
fail:
  kr_trainer_free(t);
  return NULL;
}

/* ---- data checks and plans ---- */

static int64_t rows_of(const kr_tensor *x) { return x->shape.ndim ? x->shape.dim[0] : 1; }

static int check_data(kr_ctx *ctx, const char *what, const kr_data *d, kr_node *const *nodes, int n,
                      int64_t *nsamples)
{
  char a[128], b[128];
  if (!d || d->n != n)
    return kr_fail(ctx, KR_EARG, "%s: expected %d arrays, got %d", what, n, d ? d->n : 0);
  for (int i = 0; i < n; i++) {
    const kr_tensor *x = d->t[i];
    const kr_shape *s = &nodes[i]->shape;
    int ok = x->shape.ndim == s->ndim && x->shape.ndim >= 1;
    for (int k = 1; ok && k < s->ndim; k++)
      if (s->dim[k] != x->shape.dim[k]) ok = 0;
    /* a fixed batch size B (an Input's batch_shape) takes any multiple of B
    ** rows; the loops then run batches of exactly B (fixed_batch below) */
    if (ok && s->dim[0] >= 0 && (s->dim[0] == 0 ? x->shape.dim[0] != 0 : x->shape.dim[0] % s->dim[0] != 0)) ok = 0;
    if (!ok)
      return kr_fail(ctx, KR_ESHAPE, "%s: array %d has shape %s, expected %s", what, i + 1,
                     kr_shape_str(&x->shape, a, sizeof a), kr_shape_str(s, b, sizeof b));
    if (*nsamples < 0) *nsamples = rows_of(x);
    else if (rows_of(x) != *nsamples)
      return kr_fail(ctx, KR_EARG, "%s: array %d has %lld samples but the first has %lld", what, i + 1,
                     (long long)rows_of(x), (long long)*nsamples);
  }
  return KR_OK;
}

/* whether plan p's gradient region is in the world's current shared window */
static int shm_bound(const kr_trainer *t, const kr_plan *p)
{
  return t->dist && t->dist->shm && t->shm_plan == p && t->shm_gen == t->dist->shm_gen;
}

/* the plan of a kind (0 train, 1 test, 2 predict) for batches up to `batch`,
** built on first use (or again for a larger batch) and bound to the
** trainer's arena, which grows to the largest plan's need. Called before a
** loop and again after every call back into the host, which may have run
** another of the trainer's loops (and so rebuilt a plan or moved the arena) */
static int ensure_plan(kr_trainer *t, kr_plan **pp, int kind, int64_t batch)
{
  kr_ctx *ctx = t->ctx;
  /* A plan for a larger batch replaces *pp only once its arena is there: a
  ** failure (out of memory) leaves the trainer as it was, and the next call
  ** plans again for its own batch instead of asking for the same memory. */
  int grouped = kind == 0 && t->dist && t->dist->size > 1;
  kr_plan *fresh = NULL;
  if (!*pp || kr_plan_max_batch(*pp) < batch || (kind == 0 && grouped != t->train_grouped)) {
    kr_plan *p = NULL;
    if (kind == 0) {
      int n = t->nlog + t->nvar;
      kr_node **outs = kr_malloc(ctx, (size_t)(n ? n : 1) * sizeof *outs);
      if (!outs) return KR_EMEM;
      for (int i = 0; i < t->nlog; i++) outs[i] = t->logs[i];
      for (int i = 0; i < t->nvar; i++) outs[t->nlog + i] = t->grads[i];
      p = grouped ? kr_plan_new_grouped(ctx, n, outs, t->nin + t->ntgt + t->nsw, t->plan_in, batch, 1, t->nlog)
                  : kr_plan_new_unbound(ctx, n, outs, t->nin + t->ntgt + t->nsw, t->plan_in, batch, 1);
      kr_free(ctx, outs);
    } else if (kind == 1) {
      p = kr_plan_new_unbound(ctx, t->nlog, t->logs, t->nin + t->ntgt + t->nsw, t->plan_in, batch, 0);
    } else {
      p = kr_plan_new_unbound(ctx, t->nout, t->out, t->nin, t->in, batch, 0);
    }
    if (!p) return kr_errcode(ctx);
    fresh = p;
  }
  size_t need = kr_plan_arena_bytes(fresh ? fresh : *pp);
  kr_arena_box *box = t->arena;
  if (need > box->bytes || !box->mem) {
    /* nothing in the arena lives between runs: free first, no copy */
    kr_free(ctx, box->mem);
    box->mem = NULL;
    box->bytes = 0;
    float *a = kr_calloc(ctx, need ? need : sizeof(float));
    if (!a) {
      kr_plan_free(fresh);
      return kr_errcode(ctx);
    }
    box->mem = a;
    box->bytes = need;
  }
  if (fresh) {
    kr_plan_free(*pp);
    *pp = fresh;
    if (kind == 0) t->train_grouped = grouped;
  }
  kr_plan_bind(*pp, box->mem);
  if (kind == 0) {
    /* the gradient region in the world's shared window only while that
    ** window lasts (another trainer may have made a larger one) */
    if (!shm_bound(t, *pp)) {
      kr_plan_bind_group(*pp, NULL);
      t->shm_plan = NULL;
    }
    for (int i = 0; i < t->nvar; i++) t->gradp[i] = kr_plan_output(*pp, t->nlog + i);
  }
  return KR_OK;
}

void kr_trainer_share_arena(kr_trainer *t, kr_trainer *with)
{
  if (!t || !with || t->arena == with->arena) return;
  box_release(t->ctx, t->arena);
  t->arena = with->arena;
  t->arena->refs++;
}

static void gather(kr_plan *p, int first, const kr_data *d, const int64_t *idx, int64_t b)
{
  for (int i = 0; i < d->n; i++) {
    float *dst = kr_plan_input(p, first + i);
    if (dst) kr_tensor_gather_rows(dst, d->t[i], idx, b);
  }
}

static void copy_rows(kr_plan *p, int first, const kr_data *d, int64_t start, int64_t b)
{
  for (int i = 0; i < d->n; i++) {
    float *dst = kr_plan_input(p, first + i);
    if (!dst) continue;
    const kr_tensor *x = d->t[i];
    int64_t row = rows_of(x) ? kr_tensor_numel(x) / rows_of(x) : 0;
    memcpy(dst, KR_DATA(x) + start * row, (size_t)(b * row) * sizeof(float));
  }
}

/* dst = src (n floats); 1 when one of them is NaN or infinite. Predict checks
** its input while it copies a batch, so that the data is read once */
static int copy_finite(float *restrict dst, const float *restrict src, int64_t n)
{
  int bad = 0;
  for (int64_t i = 0; i < n; i++) {
    float v = src[i];
    dst[i] = v;
    bad |= !(fabsf(v) <= FLT_MAX);
  }
  return bad;
}

/* copy_rows of the inputs, checked: 0, or the number (from 1) of the first
** input with a NaN or an infinity among these rows */
static int copy_rows_finite(kr_plan *p, const kr_data *d, int64_t start, int64_t b)
{
  int bad = 0;
  for (int i = 0; i < d->n; i++) {
    float *dst = kr_plan_input(p, i);
    if (!dst) continue;
    const kr_tensor *x = d->t[i];
    int64_t row = rows_of(x) ? kr_tensor_numel(x) / rows_of(x) : 0;
    if (copy_finite(dst, KR_DATA(x) + start * row, b * row) && !bad) bad = i + 1;
  }
  return bad;
}

static int check_xy(kr_trainer *t, const char *what, const kr_data *x, const kr_data *y, const kr_data *sw,
                    int64_t *n)
{
  *n = -1;
  if (check_data(t->ctx, what, x, t->in, t->nin, n)) return kr_errcode(t->ctx);
  if (y && check_data(t->ctx, what, y, t->tgt, t->ntgt, n)) return kr_errcode(t->ctx);
  if (sw && check_data(t->ctx, what, sw, t->sw, t->nsw, n)) return kr_errcode(t->ctx);
  if (t->nlog < 1 && y) return kr_fail(t->ctx, KR_EARG, "%s: the model has no loss (compile it first)", what);
  return KR_OK;
}

/* The fixed batch size of the model's inputs (an Input with a batch_shape:
** a leading size that is not a batch axis), or 0. Such a graph runs batches
** of exactly that size: the loops refuse any other batch size, and n must be
** a multiple of it (check_data) */
static int64_t fixed_batch(const kr_trainer *t)
{
  for (int i = 0; i < t->nin; i++) {
    const kr_shape *s = &t->in[i]->shape;
    if (s->ndim >= 1 && s->dim[0] > 0) return s->dim[0];
  }
  return 0;
}

static int check_fixed_batch(kr_trainer *t, const char *what, int64_t n, int64_t bs)
{
  int64_t fb = fixed_batch(t);
  if (!fb || n == 0 || bs == fb) return KR_OK;
  if (strstr(what, "on_batch"))
    return kr_fail(t->ctx, KR_EARG, "%s: the model's inputs have a fixed batch size of %lld (batch_shape); "
                   "give %lld samples, got %lld", what, (long long)fb, (long long)fb, (long long)bs);
  return kr_fail(t->ctx, KR_EARG, "%s: the model's inputs have a fixed batch size of %lld (batch_shape); "
                 "give batch_size = %lld, got %lld", what, (long long)fb, (long long)fb, (long long)bs);
}

/* ---- loops ---- */

static int fit_epoch_body(kr_trainer *t, const kr_data *x, const kr_data *y, const kr_data *sw,
                         const int64_t *idx, int64_t nidx, int64_t batch_size,
                         kr_batch_fn fn, kr_batch_begin_fn begin, void *ud, double min_interval,
                         double *logs_out)
{
  kr_ctx *ctx = t->ctx;
  int64_t n;
  if (check_xy(t, "fit", x, y, sw, &n)) return kr_errcode(ctx);
  if (batch_size < 1) return kr_fail(ctx, KR_EARG, "fit: batch_size must be >= 1, got %lld", (long long)batch_size);
  for (int64_t i = 0; i < nidx; i++)
    if (idx[i] < 0 || idx[i] >= n) return kr_fail(ctx, KR_EARG, "fit: sample index out of range");
  int64_t bs = batch_size < nidx ? batch_size : (nidx > 0 ? nidx : 1);
  if (nidx % (fixed_batch(t) ? fixed_batch(t) : 1))
    return kr_fail(ctx, KR_EARG, "fit: %lld samples are not a multiple of the model's fixed batch size %lld",
                   (long long)nidx, (long long)fixed_batch(t));
  if (check_fixed_batch(t, "fit", nidx, bs)) return kr_errcode(ctx);
  if (ensure_plan(t, &t->train, 0, bs)) return kr_errcode(ctx);
  kr_plan *p = t->train;
  for (int k = 0; k < t->nlog; k++) t->acc[k] = 0;
  double seen = 0, last = kr_now();
  int64_t batch_index = 0;
  for (int64_t start = 0; start < nidx; start += bs, batch_index++) {
    int64_t b = nidx - start < bs ? nidx - start : bs;
    if (begin) {
      if (begin(ud, batch_index, b)) {
        for (int k = 0; k < t->nlog; k++) logs_out[k] = seen > 0 ? t->acc[k] / seen : 0;
        return KR_ESTOP;
      }
      if (ensure_plan(t, &t->train, 0, bs)) return kr_errcode(ctx);   /* see ensure_plan */
      p = t->train;
    }
    gather(p, 0, x, idx + start, b);
    gather(p, t->nin, y, idx + start, b);
    gather(p, t->nin + t->ntgt, sw, idx + start, b);
    int st = kr_plan_run(p, b);
    if (st != KR_OK) return st;
    if (t->nvar > 0) kr_optim_step(t->optim, (float *const *)t->gradp);
    for (int k = 0; k < t->nlog; k++) {
      t->cur[k] = kr_plan_output(p, k)[0];
      t->acc[k] += t->cur[k] * (double)b;
    }
    seen += (double)b;
    if (fn) {
      double now = kr_now();
      if (min_interval <= 0 || now - last >= min_interval || start + b >= nidx) {
        for (int k = 0; k < t->nlog; k++) t->mean[k] = t->acc[k] / seen;
        last = now;
        if (fn(ud, batch_index, b, t->nlog, t->cur, t->mean)) {
          for (int k = 0; k < t->nlog; k++) logs_out[k] = t->mean[k];   /* the epoch so far */
          return KR_ESTOP;
        }
        if (ensure_plan(t, &t->train, 0, bs)) return kr_errcode(ctx);   /* see ensure_plan */
        p = t->train;
      }
    }
  }
  for (int k = 0; k < t->nlog; k++) logs_out[k] = seen > 0 ? t->acc[k] / seen : 0;
  return KR_OK;
}

static int evaluate_body(kr_trainer *t, const kr_data *x, const kr_data *y, const kr_data *sw,
                        int64_t batch_size, kr_batch_fn fn, void *ud, double *logs_out)
{
  kr_ctx *ctx = t->ctx;
  int64_t n;
  if (check_xy(t, "evaluate", x, y, sw, &n)) return kr_errcode(ctx);
  if (t->nlog < 1) return kr_fail(ctx, KR_EARG, "evaluate: the model must be compiled first");
  if (batch_size < 1) return kr_fail(ctx, KR_EARG, "evaluate: batch_size must be >= 1, got %lld", (long long)batch_size);
  int64_t bs = batch_size < n ? batch_size : (n > 0 ? n : 1);
  if (check_fixed_batch(t, "evaluate", n, bs)) return kr_errcode(ctx);
  if (ensure_plan(t, &t->test, 1, bs)) return kr_errcode(ctx);
  kr_plan *p = t->test;
  for (int k = 0; k < t->nlog; k++) t->eacc[k] = 0;
  double seen = 0;
  int64_t bi = 0;
  for (int64_t start = 0; start < n; start += bs, bi++) {
    int64_t b = n - start < bs ? n - start : bs;
    copy_rows(p, 0, x, start, b);
    copy_rows(p, t->nin, y, start, b);
    copy_rows(p, t->nin + t->ntgt, sw, start, b);
    int st = kr_plan_run(p, b);
    if (st != KR_OK) return st;
    for (int k = 0; k < t->nlog; k++) {
      t->ecur[k] = kr_plan_output(p, k)[0];
      t->eacc[k] += t->ecur[k] * (double)b;
    }
    seen += (double)b;
    if (fn) {
      for (int k = 0; k < t->nlog; k++) t->emean[k] = t->eacc[k] / seen;
      if (fn(ud, bi, b, t->nlog, t->ecur, t->emean)) return KR_ESTOP;
      if (ensure_plan(t, &t->test, 1, bs)) return kr_errcode(ctx);
      p = t->test;
    }
  }
  for (int k = 0; k < t->nlog; k++) logs_out[k] = seen > 0 ? t->eacc[k] / seen : 0;
  return KR_OK;
}

static int predict_body(kr_trainer *t, const kr_data *x, int64_t batch_size, kr_tensor **out)
{
  kr_ctx *ctx = t->ctx;
  int64_t n = -1;
  if (check_data(ctx, "predict", x, t->in, t->nin, &n)) return kr_errcode(ctx);
  if (batch_size < 1) return kr_fail(ctx, KR_EARG, "predict: batch_size must be >= 1, got %lld", (long long)batch_size);
  int64_t bs = batch_size < n ? batch_size : (n > 0 ? n : 1);
  if (check_fixed_batch(t, "predict", n, bs)) return kr_errcode(ctx);
  if (ensure_plan(t, &t->pred, 2, bs)) return kr_errcode(ctx);
  kr_plan *p = t->pred;
  int64_t fb = fixed_batch(t);
  for (int k = 0; k < t->nout; k++) out[k] = NULL;
  for (int k = 0; k < t->nout; k++) {
    kr_shape s = kr_concrete(&t->out[k]->shape, n);
    /* with a fixed batch size, an output whose leading size is that size is
    ** batched by it: n rows in all */
    int fixed_rows = fb && s.ndim >= 1 && s.dim[0] == fb;
    if (fixed_rows) s.dim[0] = n;
    if (!fixed_rows && !kr_is_batched(&t->out[k]->shape)) {
      for (int j = 0; j < k; j++) kr_tensor_release(out[j]);
      return kr_fail(ctx, KR_ESHAPE, "predict: output %d has no batch axis", k + 1);
    }
    out[k] = kr_tensor_new(ctx, &s);
    if (!out[k]) {
      for (int j = 0; j < k; j++) kr_tensor_release(out[j]);
      return kr_errcode(ctx);
    }
  }
  for (int64_t start = 0; start < n; start += bs) {
    int64_t b = n - start < bs ? n - start : bs;
    int bad = copy_rows_finite(p, x, start, b);
    int st = bad ? kr_fail(ctx, KR_EARG, "predict: input %d contains NaN or Inf", bad) : kr_plan_run(p, b);
    if (st != KR_OK) {
      for (int k = 0; k < t->nout; k++) kr_tensor_release(out[k]);
      return st;
    }
    for (int k = 0; k < t->nout; k++) {
      int64_t row = kr_shape_numel(&t->out[k]->shape);
      if (fb && t->out[k]->shape.dim[0] == fb) row /= fb;   /* the fixed batch's rows */
      memcpy(KR_DATA(out[k]) + start * row, kr_plan_output(p, k), (size_t)(b * row) * sizeof(float));
    }
  }
  return KR_OK;
}

/* ---- data-parallel training (keras.distributed) ---- */

int kr_trainer_set_dist(kr_trainer *t, kr_dist *d, size_t fusion_bytes, int nstate, kr_tensor *const *state)
{
  kr_ctx *ctx = t->ctx;
  if (t->dist && t->dist != d && t->dist->state_owner == t) {   /* leaving the world: the state comes home */
    char err[KR_DIST_ERR];
    kr_dist_state_release(t->dist, 0, err);
  }
  for (int i = 0; i < t->nstate; i++) kr_tensor_release(t->state[i]);
  kr_free(ctx, t->state);
  kr_free(ctx, t->dlogs);
  t->state = NULL;
  t->nstate = 0;
  t->dlogs = NULL;
  t->dist = NULL;
  kr_dist_comm_free(t->comm);
  t->comm = NULL;
  t->comm_plan = NULL;
  if (!d) return KR_OK;
  t->dlogs = kr_calloc(ctx, (size_t)(t->nlog + 1) * sizeof *t->dlogs);
  t->state = kr_calloc(ctx, (size_t)(nstate ? nstate : 1) * sizeof *t->state);
  if (!t->dlogs || !t->state) return kr_errcode(ctx);
  for (int i = 0; i < nstate; i++) {
    kr_tensor_retain(state[i]);
    t->state[i] = state[i];
  }
  t->nstate = nstate;
  const char *sf = getenv("LKERAS_DIST_SHARD");
  t->shard_force = sf && (strcmp(sf, "0") == 0 || strcmp(sf, "1") == 0) ? sf[0] - '0' : -1;
  const char *ea = getenv("LKERAS_DIST_EARLY");
  t->early_off = ea && strcmp(ea, "0") == 0;
  t->fusion = fusion_bytes / sizeof(float) / ALIGN_FLOATS * ALIGN_FLOATS;
  if (t->fusion < ALIGN_FLOATS) t->fusion = ALIGN_FLOATS;
  t->dist = d;
  return KR_OK;
}

int kr_trainer_set_overlap(kr_trainer *t, size_t first_bytes)
{
  if (!first_bytes || !t->dist) {
    kr_dist_comm_free(t->comm);
    t->comm = NULL;
    t->comm_plan = NULL;
    return KR_OK;
  }
  if (!t->dist->threads_ok)
    return kr_fail(t->ctx, KR_EARG, "keras.distributed: the overlap needs MPI with MPI_THREAD_SERIALIZED");
  t->comm_first = first_bytes / sizeof(float);
  t->comm_plan = NULL;   /* cut the buckets again */
  if (!t->comm && !(t->comm = kr_dist_comm_new(t->ctx, t->dist))) return kr_errcode(t->ctx);
  return KR_OK;
}

void kr_rng_get_state(const kr_ctx *ctx, uint64_t s[4]) { memcpy(s, ctx->rng, sizeof ctx->rng); }

void kr_rng_set_state(kr_ctx *ctx, const uint64_t s[4])
{
  memcpy(ctx->rng, s, sizeof ctx->rng);
  ctx->have_spare = 0;
}

int kr_trainer_dist_shared(const kr_trainer *t) { return t->train && shm_bound(t, t->train); }

int64_t kr_trainer_dist_state_steps(const kr_trainer *t) { return t->state_steps; }

int64_t kr_trainer_dist_chunked_steps(const kr_trainer *t) { return t->chunked_steps; }

int kr_trainer_dist_split(const kr_trainer *t, double *split_s, double *whole_s)
{
  *split_s = t->trial_t[1];
  *whole_s = t->trial_t[0];
  if (t->shard_force >= 0) return t->shard_force;
  if (t->state_steps > 0 && !t->shard_mode) return 1;   /* the shared state: split, no trial */
  return t->shard_mode ? t->shard_mode - 1 : -1;
}

size_t kr_trainer_overlap_buckets(const kr_trainer *t)
{
  return t->comm && t->comm_plan ? kr_dist_comm_buckets(t->comm) : 0;
}

void kr_trainer_dist_stats(const kr_trainer *t, double *seconds, int64_t *steps, double *last_rows)
{
  *seconds = t->dist_s;
  *steps = t->dist_steps;
  if (last_rows) *last_rows = t->dist_rows;
}

/* the rows of a global batch of g that a rank takes: [*off, *off + *cnt) */
static void dist_slice(int64_t g, int size, int rank, int64_t *off, int64_t *cnt)
{
  int64_t base = g / size, rem = g % size;
  *off = rank * base + (rank < rem ? rank : rem);
  *cnt = base + (rank < rem ? 1 : 0);
}

static int dist_fail(kr_trainer *t, const char *err) { return kr_fail(t->ctx, KR_EIO, "%s", err); }

/* the step's gradients, weighted by w (this rank's share of the global
** batch, or 1 when the optimizer scales the sum), summed over the ranks in
** place in the plan's gradient region, in buckets of at most t->fusion
** floats; then the state (BatchNormalization's moving statistics), weighted
** by this rank's share wstate */
static int dist_reduce_state(kr_trainer *t, float fw);

/* g[0..n) *= fw (this rank's share of the global batch), unless fw is 1 */
static void scale_floats(float *g, size_t n, float fw)
{
  if (fw != 1.0f)
    for (size_t i = 0; i < n; i++) g[i] *= fw;
}

static int dist_reduce(kr_trainer *t, kr_plan *p, double w, double wstate)
{
  char err[KR_DIST_ERR];
  kr_dist *d = t->dist;
  size_t n;
  float *g = kr_plan_group(p, &n);
  scale_floats(g, n, (float)w);
  if (shm_bound(t, p)) {
    if (kr_dist_shared_sum(d, 0, n, err)) return dist_fail(t, err);
  } else {
    for (size_t at = 0; at < n; at += t->fusion) {
      size_t k = n - at < t->fusion ? n - at : t->fusion;
      if (d->ops->allreduce(d->impl, g + at, k, KR_DIST_F32, err)) return dist_fail(t, err);
    }
  }
  return dist_reduce_state(t, (float)wstate);
}

/* BatchNormalization's moving statistics, weighted by this rank's share fw */
static int dist_reduce_state(kr_trainer *t, float fw)
{
  char err[KR_DIST_ERR];
  kr_dist *d = t->dist;
  for (int i = 0; i < t->nstate; i++) {
    float *v = KR_DATA(t->state[i]);
    size_t m = (size_t)kr_tensor_numel(t->state[i]);
    for (size_t j = 0; j < m; j++) v[j] *= fw;
    if (d->ops->allreduce(d->impl, v, m, KR_DIST_F32, err)) return dist_fail(t, err);
  }
  return KR_OK;
}

/* the region [0, n) cut in P parts of whole cache lines (kr_dist_share):
** each var's gradient [off, off + numel) in the region falls in one or more
** parts, a piece each (the sharded step's shares, one per rank, and the
** chunked step's chunks). The same on every rank. */
static int cut_region(kr_trainer *t, const float *seg, size_t n, int P, kr_cut *c)
{
  kr_ctx *ctx = t->ctx;
  int cap = t->nvar * P + 1;
  if (cap > c->cap || P + 1 > c->pcap) {
    kr_optim_piece *pc = kr_malloc(ctx, (size_t)cap * sizeof *pc);
    int *at = kr_malloc(ctx, (size_t)(P + 1) * sizeof *at);
    if (!pc || !at) {
      kr_free(ctx, pc);
      kr_free(ctx, at);
      return kr_errcode(ctx);
    }
    kr_free(ctx, c->pieces);
    kr_free(ctx, c->at);
    c->pieces = pc;
    c->at = at;
    c->cap = cap;
    c->pcap = P + 1;
  }
  int np = 0;
  for (int q = 0; q < P; q++) {
    size_t a, b;
    kr_dist_share(n, P, q, &a, &b);
    c->at[q] = np;
    for (int i = 0; i < t->nvar; i++) {
      const float *g = t->gradp[i];
      if (!(g >= seg && g < seg + n)) continue;
      size_t off = (size_t)(g - seg), len = (size_t)kr_tensor_numel(t->vars[i]->value);
      size_t lo = off > a ? off : a, hi = off + len < b ? off + len : b;
      if (lo >= hi) continue;
      c->pieces[np].var = i;
      c->pieces[np].lo = lo - off;
      c->pieces[np].hi = hi - off;
      c->pieces[np].off = lo;
      np++;
    }
  }
  c->at[P] = np;
  c->npieces = np;
  return KR_OK;
}

static int dist_shard_plan(kr_trainer *t, const float *seg, size_t n)
{
  kr_ctx *ctx = t->ctx;
  t->shard_on = 0;
  t->chunk_plan = NULL;
  kr_free(ctx, t->local);
  t->local = kr_malloc(ctx, (size_t)(t->nvar + 1) * sizeof *t->local);
  if (!t->local) return kr_errcode(ctx);
  t->nlocal = 0;
  for (int i = 0; i < t->nvar; i++) {
    const float *g = t->gradp[i];
    if (!(g >= seg && g < seg + n)) t->local[t->nlocal++] = i;
  }
  int st = cut_region(t, seg, n, t->dist->size, &t->shares);
  if (st != KR_OK) return st;
  t->shard_n = n;
  t->shard_on = 1;
  return KR_OK;
}

/* whether this trainer's weights and slots are the host's one copy in the
** shared window (dist_state_begin) */
static int state_ours(const kr_trainer *t) { return t->dist && t->dist->state_owner == t; }

/* the shared state back in each rank's own memory (collective) */
static int dist_state_end(kr_trainer *t)
{
  char err[KR_DIST_ERR];
  if (state_ours(t) && kr_dist_state_release(t->dist, 1, err)) return dist_fail(t, err);
  return KR_OK;
}

/* The chunked step's words in the control area carry the step's tick above
** TICK_SHIFT bits: a rank's progress is (tick << TICK_SHIFT) + the steps of
** its run done (so a plan of 2^TICK_SHIFT steps or more takes no chunks), a
** range word (tick << TICK_SHIFT) | (front << 10) | end (so at most
** CHUNKS_MAX chunks, below 2^10) */
#define TICK_SHIFT 20
#define CHUNKS_MAX 512

/* the chunks of the region [seg, seg + n) for plan p's chunked step (see
** the trainer's fields) */
static int dist_chunk_plan(kr_trainer *t, const kr_plan *p, const float *seg, size_t n)
{
  kr_ctx *ctx = t->ctx;
  kr_dist *d = t->dist;
  t->chunk_plan = NULL;
  if (t->early_off || !d->shm_ctrl || d->size > KR_DIST_CTRL_RANKS || kr_plan_steps(p) >= ((size_t)1 << TICK_SHIFT))
    return KR_OK;
  int C = (int)(n / 32768);   /* 128 KB of gradients a chunk: a few microseconds of work */
  if (C < d->size) C = d->size;
  if (C > CHUNKS_MAX) C = CHUNKS_MAX;
  int st = cut_region(t, seg, n, C, &t->chunks);
  if (st != KR_OK) return st;
  size_t *ready = kr_malloc(ctx, (size_t)C * sizeof *ready);
  size_t *vready = kr_malloc(ctx, (size_t)(t->nvar + 1) * sizeof *vready);
  if (!ready || !vready) {
    kr_free(ctx, ready);
    kr_free(ctx, vready);
    return kr_errcode(ctx);
  }
  for (int i = 0; i < t->nvar; i++) {
    size_t g = kr_plan_output_step(p, t->nlog + i), w = kr_plan_last_read(p, t->vars[i]);
    vready[i] = w != (size_t)-1 && w > g ? w : g;
  }
  for (int c = 0; c < C; c++) {
    size_t r = 0;
    for (int m = t->chunks.at[c]; m < t->chunks.at[c + 1]; m++)
      if (vready[t->chunks.pieces[m].var] > r) r = vready[t->chunks.pieces[m].var];
    ready[c] = r;
  }
  kr_free(ctx, vready);
  kr_free(ctx, t->chunk_ready);
  t->chunk_ready = ready;
  t->nchunks = C;
  t->chunk_plan = p;
  return KR_OK;
}

/* The shared state, for the split step of fit on one host: every var whose
** gradient is in the region [seg, seg + n) and its optimizer slots move into
** the window's state area, var i at the gradient's offset, slot kind k at
** (1 + k) n past it. Every rank then updates its pieces of the host's one
** copy in place: no rank copies weights to another, and the slots are whole
** at every step. Not when a var or a slot is part of a larger storage, or
** the step cannot be split (clipping, constraints, the overlapped
** reduction, LKERAS_DIST_SHARD=0). Collective. */
static int dist_state_begin(kr_trainer *t, const kr_plan *p, const float *seg, size_t n)
{
  kr_ctx *ctx = t->ctx;
  kr_dist *d = t->dist;
  int K = kr_optim_full_slots(t->optim);
  if (!d->shm_state || d->nmoved || t->comm || t->shard_force == 0 || !kr_optim_can_shard(t->optim) ||
      d->shm_lead < (size_t)(1 + K) * n || t->state_refused)
    return KR_OK;
  size_t cap = (size_t)t->nvar * (size_t)(1 + K);
  kr_tensor **ts = kr_malloc(ctx, (cap ? cap : 1) * sizeof *ts);
  size_t *off = kr_malloc(ctx, (cap ? cap : 1) * sizeof *off);
  int count = 0, whole = ts && off;
  for (int i = 0; whole && i < t->nvar; i++) {
    const float *g = t->gradp[i];
    if (!(g >= seg && g < seg + n)) continue;
    int64_t m = kr_tensor_numel(t->vars[i]->value);
    for (int k = -1; whole && k < K; k++) {
      kr_tensor *v = k < 0 ? t->vars[i]->value : kr_optim_slot(t->optim, k * t->nvar + i);
      whole = v && v->offset == 0 && v->st->n == (size_t)m && kr_tensor_numel(v) == m;
      ts[count] = v;
      off[count++] = (size_t)(g - seg) + (size_t)(1 + k) * n;
    }
  }
  if (!whole || count == 0) {   /* out of memory, or a part of a larger storage: the copying split */
    int st = ts && off ? KR_OK : kr_errcode(ctx);
    if (st == KR_OK) t->state_refused = 1;
    kr_free(ctx, ts);
    kr_free(ctx, off);
    return st;
  }
  char err[KR_DIST_ERR];
  int bad = kr_dist_state_share(d, t, count, ts, off, err);
  kr_free(ctx, ts);
  kr_free(ctx, off);
  if (bad) {
    char err2[KR_DIST_ERR];
    kr_dist_state_release(d, 0, err2);
    return dist_fail(t, err);
  }
  return dist_chunk_plan(t, p, seg, n);
}

/* fit's train plan p with its gradient region in the world's shared window,
** where there is one, and its state there too where it can be (collective:
** every rank at the same point) */
static int dist_shard_slots(kr_trainer *t);

static int dist_bind_shared(kr_trainer *t, kr_plan *p)
{
  if (shm_bound(t, p)) {   /* bound by an earlier fit: its state went home at its end */
    if (state_ours(t)) return KR_OK;
    size_t n;
    const float *seg = kr_plan_group(p, &n);
    return dist_state_begin(t, p, seg, n);
  }
  int st = dist_state_end(t);   /* the region moves: the state comes home first */
  if (st != KR_OK) return st;
  t->state_refused = 0;
  if (t->slots_stale && t->dist->shm) {   /* the old pieces' slots first */
    st = dist_shard_slots(t);
    if (st != KR_OK) return st;
    t->slots_stale = 0;
  }
  size_t n;
  kr_plan_group(p, &n);
  char err[KR_DIST_ERR];
  int failed = 0;
  /* the region, then as much again for the sharded step's updated weights;
  ** on rank 0, the room for the shared state (the weights and the slots) */
  int K = kr_optim_full_slots(t->optim);
  size_t lead = !t->comm && t->shard_force != 0 && kr_optim_can_shard(t->optim) ? (size_t)(1 + K) * n : 0;
  float *seg = kr_dist_shared(t->dist, 2 * n, lead, err, &failed);
  if (failed) return dist_fail(t, err);
  if (!seg) return KR_OK;   /* no shared memory: allreduce */
  kr_plan_bind_group(p, seg);
  t->shm_plan = p;
  t->shm_gen = t->dist->shm_gen;
  for (int i = 0; i < t->nvar; i++) t->gradp[i] = kr_plan_output(p, t->nlog + i);
  if ((st = dist_shard_plan(t, seg, n)) != KR_OK) return st;
  return dist_state_begin(t, p, seg, n);
}

/* the step of fit on one host (plan p bound to the shared region, an
** optimizer without clipping or constraints): each rank's gradients are in
** its segment (multiplied by its share first unless every share is the
** same); after a barrier the optimizer reads each gradient as the sum of the
** segments (in rank order, times post: no pass writes the sums). Split: each
** rank updates only its pieces of the vars, writes their new values to its
** exchange area, and after the second barrier copies the other ranks' pieces
** in; the weights come out the same bits on every rank. Whole: every rank
** updates every var; the second barrier keeps the next backward pass from
** writing a segment another rank still reads. *wait: the seconds in the
** barriers and the copies. With the shared state (state_ours), split: each
** rank's pieces are updated in place in the host's one copy, nothing to copy */
static int dist_shared_step(kr_trainer *t, kr_plan *p, double pre, float post, int split, double *wait)
{
  int inplace = state_ours(t);
  kr_dist *d = t->dist;
  char err[KR_DIST_ERR];
  size_t n;
  float *g = kr_plan_group(p, &n);
  scale_floats(g, n, (float)pre);
  int r = d->rank;
  float **segs = d->shm_segs;
  double t0 = kr_now();
  if (d->ops->shm_barrier(d->impl, d->shm, err)) return dist_fail(t, err);
  double t1 = kr_now();
  if (split)
    kr_optim_step_pieces(t->optim, t->shares.pieces + t->shares.at[r], t->shares.at[r + 1] - t->shares.at[r], segs, d->size,
                         post, inplace ? NULL : segs[r] + n, (float *const *)t->gradp, t->local, t->nlocal);
  else
    kr_optim_step_pieces(t->optim, t->shares.pieces, t->shares.npieces, segs, d->size, post, NULL, (float *const *)t->gradp,
                         t->local, t->nlocal);
  double t2 = kr_now();
  if (d->ops->shm_barrier(d->impl, d->shm, err)) return dist_fail(t, err);
  for (int q = 0; split && !inplace && q < d->size; q++) {
    if (q == r) continue;
    const float *x = segs[q] + n;
    for (int m = t->shares.at[q]; m < t->shares.at[q + 1]; m++) {
      const kr_optim_piece *pc = &t->shares.pieces[m];
      memcpy(KR_DATA(t->vars[pc->var]->value) + pc->lo, x + pc->off, (pc->hi - pc->lo) * sizeof(float));
    }
  }
  for (int i = 0; i < t->nvar; i++) kr_tensor_touch(t->vars[i]->value);   /* packed copies go stale */
  *wait = (t1 - t0) + (kr_now() - t2);
  return KR_OK;
}

static inline void relax_cpu(void)
{
#if (defined(__GNUC__) || defined(__clang__)) && (defined(__x86_64__) || defined(__i386__))
  __builtin_ia32_pause();
#endif
}

/* this rank's progress word in the control area, and rank q's wait for it */
static _Atomic uint64_t *progress_word(const kr_dist *d, int q)
{
  return (_Atomic uint64_t *)(d->shm_ctrl + 8 * (1 + q));   /* a cache line each */
}

static int wait_progress(kr_dist *d, int q, uint64_t need, double *waited, char *err)
{
  _Atomic uint64_t *w = progress_word(d, q);
  if (atomic_load_explicit(w, memory_order_acquire) >= need) return 0;
  double t0 = kr_now();
  for (unsigned k = 1; atomic_load_explicit(w, memory_order_acquire) < need; k++) {
    if (k % 64) {
      relax_cpu();
      continue;
    }
    double e = kr_now() - t0;
    if (e > d->timeout) {
      snprintf(err, KR_DIST_ERR, "keras.distributed: rank %d waited more than %g s for rank %d's gradients: "
               "another rank died, raised an error or stopped calling fit", d->rank, d->timeout, q);
      return 1;
    }
    if (e > 50e-6) sched_yield();   /* a rank may share this core (more ranks than cores) */
  }
  *waited += kr_now() - t0;
  return 0;
}

/* rank q's range word in the control area: the chunks [front, end) of q's
** own range not yet taken this step (tick) */
static _Atomic uint64_t *range_word(const kr_dist *d, int q)
{
  return (_Atomic uint64_t *)(d->shm_ctrl + 8 * (1 + KR_DIST_CTRL_RANKS + q));
}

static uint64_t range_pack(uint64_t tick, uint64_t front, uint64_t end)
{
  return tick << TICK_SHIFT | front << 10 | end;
}

/* takes a chunk of rank v's range for rank r this step (tick), or -1 when
** none is left: the owner from the front, the others from the back, so two
** ranks work on chunks far apart until they meet. The first rank to look at a
** range this step sets it up: [v C / P, (v + 1) C / P) */
static int take_chunk(const kr_dist *d, int v, int r, uint64_t tick, int C)
{
  _Atomic uint64_t *w = range_word(d, v);
  uint64_t x = atomic_load_explicit(w, memory_order_relaxed);
  for (;;) {
    if (x >> TICK_SHIFT != tick) {
      uint64_t P = (uint64_t)d->size, fresh = range_pack(tick, (uint64_t)v * C / P, (uint64_t)(v + 1) * C / P);
      if (atomic_compare_exchange_weak_explicit(w, &x, fresh, memory_order_relaxed, memory_order_relaxed)) x = fresh;
      continue;
    }
    uint64_t f = x >> 10 & 1023, e = x & 1023;
    if (f >= e) return -1;
    uint64_t next = v == r ? range_pack(tick, f + 1, e) : range_pack(tick, f, e - 1);
    if (atomic_compare_exchange_weak_explicit(w, &x, next, memory_order_relaxed, memory_order_relaxed))
      return (int)(v == r ? f : e - 1);
  }
}

/* The chunked step on the shared state (one host, an even step): instead of
** a barrier after the run and a share of the region per rank, the region is
** cut in chunks, each rank owning a contiguous range of them, and a chunk is
** ready once every rank's run has passed the chunk's step (its gradients
** written, its weights read for the last time), which the plans publish as
** they go. A rank whose run is done updates its own chunks from the front as
** they become ready, then takes the others' from the back: so a rank that
** finishes first updates the layers the others are done with while they
** finish, instead of waiting, and the work after the slowest run is shared.
** Owned ranges, not one counter that hands out the next chunk to whoever
** asks: two cores updating neighbouring chunks of the same pages at once ran
** several times slower than each on its own half (measured on a 2-core VM;
** docs/distributed.md). Each element's update is the same arithmetic,
** whichever rank takes it. The barrier at the end keeps every next run after
** every update. */
static int dist_chunked_step(kr_trainer *t, float post, double *wait)
{
  kr_dist *d = t->dist;
  char err[KR_DIST_ERR];
  int r = d->rank, P = d->size, C = t->nchunks;
  uint64_t tick = d->shm_tick + 1;
  double waited = 0;
  for (int k = 0; k < P; k++) {
    int v = (r + k) % P;
    for (int c; (c = take_chunk(d, v, r, tick, C)) >= 0;) {
      uint64_t need = (tick << TICK_SHIFT) + t->chunk_ready[c] + 1;
      for (int q = 0; q < P; q++)
        if (q != r && wait_progress(d, q, need, &waited, err)) return dist_fail(t, err);
      kr_optim_update_pieces(t->optim, t->chunks.pieces + t->chunks.at[c], t->chunks.at[c + 1] - t->chunks.at[c],
                             d->shm_segs, P, post, NULL);
    }
  }
  kr_optim_step_finish(t->optim, (float *const *)t->gradp, t->local, t->nlocal, post);
  double t0 = kr_now();
  if (d->ops->shm_barrier(d->impl, d->shm, err)) return dist_fail(t, err);
  d->shm_tick = tick;
  for (int i = 0; i < t->nvar; i++) kr_tensor_touch(t->vars[i]->value);   /* packed copies go stale */
  *wait = waited + (kr_now() - t0);
  return KR_OK;
}

/* Split or whole step: the split one repeats no work, but on a host whose
** cores exchange cache lines slowly, copying the new weights between the
** ranks can cost more than it saves (large models). So the first full steps
** measure both: one to warm up, two split, two whole; the sums of every
** rank's times decide, the same on every rank. This step: split or not, and
** *trial: 1 or 0 when it is timed as split or whole. */
enum { TRIAL_WARM = 1, TRIAL_EACH = 2 };
static int dist_shard_this_step(kr_trainer *t, int full, int *trial)
{
  *trial = -1;
  if (t->shard_force >= 0) return t->shard_force;
  if (t->shard_mode) return t->shard_mode - 1;
  int k = t->trial_n;
  if (!full) return k < TRIAL_WARM + TRIAL_EACH;   /* a short step: the phase's way, untimed */
  t->trial_n++;
  if (k < TRIAL_WARM) return 1;
  int split = k < TRIAL_WARM + TRIAL_EACH;
  *trial = split;
  return split;
}

/* a timed step of the trial; after the last, the choice (collective) */
static int dist_shard_timed(kr_trainer *t, int split, double seconds)
{
  t->trial_t[split] += seconds;
  if (t->trial_n < TRIAL_WARM + 2 * TRIAL_EACH) return KR_OK;
  char err[KR_DIST_ERR];
  double sum[2] = {t->trial_t[0], t->trial_t[1]};
  if (t->dist->ops->allreduce(t->dist->impl, sum, 2, KR_DIST_F64, err)) return dist_fail(t, err);
  t->shard_mode = sum[1] <= sum[0] ? 2 : 1;
  t->trial_t[0] = sum[0];   /* the world's, for the report (kr_trainer_dist_shard) */
  t->trial_t[1] = sum[1];
  return KR_OK;
}

/* the optimizer's slots after sharded steps: each rank's pieces of every
** slot to every rank, through the exchange areas (collective) */
static int dist_shard_slots(kr_trainer *t)
{
  kr_dist *d = t->dist;
  char err[KR_DIST_ERR];
  int r = d->rank;
  float **segs = d->shm_segs;
  size_t n = t->shard_n;
  /* the last step's copies from the exchange areas end before they are written */
  if (d->ops->shm_barrier(d->impl, d->shm, err)) return dist_fail(t, err);
  for (int k = 0; k < kr_optim_full_slots(t->optim); k++) {
    kr_optim_slots_pieces(t->optim, k, t->shares.pieces + t->shares.at[r], t->shares.at[r + 1] - t->shares.at[r],
                          segs[r] + n, 1);
    if (d->ops->shm_barrier(d->impl, d->shm, err)) return dist_fail(t, err);
    for (int q = 0; q < d->size; q++)
      if (q != r)
        kr_optim_slots_pieces(t->optim, k, t->shares.pieces + t->shares.at[q], t->shares.at[q + 1] - t->shares.at[q],
                              segs[q] + n, 0);
    if (d->ops->shm_barrier(d->impl, d->shm, err)) return dist_fail(t, err);
  }
  return KR_OK;
}

/* the global batch's logs: each rank's weighted by its rows; *rows (when
** not NULL): the global batch's rows */
static int dist_logs(kr_trainer *t, int64_t cnt, double *cur, double *rows)
{
  char err[KR_DIST_ERR];
  for (int k = 0; k < t->nlog; k++) t->dlogs[k] = cur[k] * (double)cnt;
  t->dlogs[t->nlog] = (double)cnt;
  if (t->dist->ops->allreduce(t->dist->impl, t->dlogs, (size_t)t->nlog + 1, KR_DIST_F64, err))
    return dist_fail(t, err);
  double total = t->dlogs[t->nlog];
  for (int k = 0; k < t->nlog; k++) cur[k] = total > 0 ? t->dlogs[k] / total : 0;
  if (rows) *rows = total;
  return KR_OK;
}

/* this rank's stream of random numbers (Dropout's masks) for distributed
** step `salt` of a kind, drawn from the common state, which the caller keeps
** and restores after the step (so it stays the same on every rank) */
static void dist_rank_stream(kr_trainer *t, const uint64_t common[4], uint64_t salt)
{
  kr_rng_seed(t->ctx, common[0] ^ (common[1] << 1) ^ ((uint64_t)(t->dist->rank + 1) * 0x9E3779B97F4A7C15ull)
                      ^ (salt * 0xD1B54A32D192ED03ull));
}

/* this rank's b rows of a distributed step (rows: their indices) through
** plan p, with hook after each gradient (NULL: none); its logs in t->cur.
** No rows: a zero gradient region and zero logs, for the collectives */
static int dist_run_rows(kr_trainer *t, kr_plan *p, const kr_data *x, const kr_data *y, const kr_data *sw,
                         const int64_t *rows, int64_t b, kr_plan_group_hook hook, void *ud)
{
  if (b == 0) {
    size_t gn;
    float *gr = kr_plan_group(p, &gn);
    memset(gr, 0, gn * sizeof *gr);
    for (int k = 0; k < t->nlog; k++) t->cur[k] = 0;
    return KR_OK;
  }
  gather(p, 0, x, rows, b);
  gather(p, t->nin, y, rows, b);
  gather(p, t->nin + t->ntgt, sw, rows, b);
  int st = kr_plan_run_hooked(p, b, hook, ud);
  for (int k = 0; k < t->nlog && st == KR_OK; k++) t->cur[k] = kr_plan_output(p, k)[0];
  return st;
}

/* fit's epoch in a world of several ranks: idx (the same on every rank) is
** cut in global batches of size x batch_size rows; this rank runs its slice
** of each, the gradients are averaged weighted by rows, and every rank
** steps its optimizer with the same numbers. Dropout draws from a stream of
** this rank's own for the epoch; the common stream (shuffling) is restored
** after it, so it stays the same on every rank */
static int fit_epoch_dist_body(kr_trainer *t, const kr_data *x, const kr_data *y, const kr_data *sw,
                               const int64_t *idx, int64_t nidx, int64_t batch_size,
                               kr_batch_fn fn, kr_batch_begin_fn begin, void *ud, double min_interval,
                               double *logs_out)
{
  kr_ctx *ctx = t->ctx;
  kr_dist *d = t->dist;
  int64_t n;
  if (check_xy(t, "fit", x, y, sw, &n)) return kr_errcode(ctx);
  if (batch_size < 1) return kr_fail(ctx, KR_EARG, "fit: batch_size must be >= 1, got %lld", (long long)batch_size);
  if (t->nvar < 1) return kr_fail(ctx, KR_EARG, "fit: distributed training needs trainable weights");
  if (fixed_batch(t))
    return kr_fail(ctx, KR_EARG, "fit: a model with a fixed batch size (batch_shape) cannot train distributed");
  for (int64_t i = 0; i < nidx; i++)
    if (idx[i] < 0 || idx[i] >= n) return kr_fail(ctx, KR_EARG, "fit: sample index out of range");
  int64_t gbs = batch_size * d->size;
  int64_t bs = batch_size;
  if (ensure_plan(t, &t->train, 0, bs)) return kr_errcode(ctx);
  kr_plan *p = t->train;
  if (dist_bind_shared(t, p)) return kr_errcode(ctx);
  for (int k = 0; k < t->nlog; k++) t->acc[k] = 0;
  double seen = 0, last = kr_now();
  int64_t batch_index = 0;
  int st = KR_OK;
  uint64_t common[4];
  memcpy(common, ctx->rng, sizeof common);
  double spare = ctx->spare;
  int have_spare = ctx->have_spare;
  /* the rank's stream: from the common state, the rank and the epoch (the
  ** common state alone repeats when fit does not shuffle) */
  t->dist_epochs++;
  dist_rank_stream(t, common, t->dist_epochs);
  for (int64_t start = 0; start < nidx; start += gbs, batch_index++) {
    int64_t g = nidx - start < gbs ? nidx - start : gbs;
    int64_t off, b;
    dist_slice(g, d->size, d->rank, &off, &b);
    if (begin) {
      if (begin(ud, batch_index, g)) {
        for (int k = 0; k < t->nlog; k++) logs_out[k] = seen > 0 ? t->acc[k] / seen : 0;
        st = KR_ESTOP;
        goto out;
      }
      if ((st = ensure_plan(t, &t->train, 0, bs)) || (st = dist_bind_shared(t, t->train))) goto out;
      p = t->train;
    }
    /* every rank's share the same (g a multiple of the ranks): the sum is
    ** scaled by the optimizer as it reads it, else each rank's share first */
    double share = (double)b / (double)g;
    int even = g % d->size == 0;
    double pre = even ? 1.0 : share;
    float post = even ? (float)(1.0 / (double)d->size) : 1.0f;
    /* sharded (one host, shared region, no clipping or constraints): the
    ** optimizer's work split over the ranks */
    int can_shard = !t->comm && t->shard_on && shm_bound(t, p) && kr_optim_can_shard(t->optim);
    /* the shared state only takes the split step (a callback may have set
    ** clipping since: every rank alike) */
    if (!can_shard && (st = dist_state_end(t))) goto out;
    int trial = -1;   /* which way this step is timed for the choice, or -1 */
    int shard = state_ours(t) ? 1 : can_shard ? dist_shard_this_step(t, g == gbs, &trial) : 0;
    if (!shard && t->slots_stale) {   /* the whole step needs whole slots (every rank decides alike) */
      if ((st = dist_shard_slots(t))) goto out;
      t->slots_stale = 0;
    }
    double ts = kr_now();
    double t0, t1;
    if (t->comm) {
      /* overlapped: each bucket is reduced as soon as the backward pass has
      ** written it (every rank cuts the same buckets from the same plan) */
      if (t->comm_plan != p) {
        if ((st = kr_dist_comm_plan(t->comm, p, t->comm_first, t->fusion))) goto out;
        t->comm_plan = p;
      }
      size_t gn;
      kr_dist_comm_begin(t->comm, kr_plan_group(p, &gn), (float)pre, shm_bound(t, p));
      st = dist_run_rows(t, p, x, y, sw, idx + start + off, b, kr_dist_comm_ready, t->comm);
      t0 = kr_now();   /* the collectives' time: the wait after the run */
      char err[KR_DIST_ERR];
      int bad = kr_dist_comm_end(t->comm, st == KR_OK, err);
      if (st != KR_OK) goto out;
      if (bad) {
        st = dist_fail(t, err);
        goto out;
      }
      if ((st = dist_reduce_state(t, (float)share))) goto out;
      t1 = kr_now();
    } else if (can_shard && state_ours(t) && t->chunk_plan == p && even) {
      /* the chunked step: this run's progress published as it goes */
      _Atomic uint64_t *w = progress_word(d, d->rank);
      uint64_t base = (d->shm_tick + 1) << TICK_SHIFT;
      kr_plan_set_progress(p, (void *)w, base);
      st = dist_run_rows(t, p, x, y, sw, idx + start + off, b, NULL, NULL);
      kr_plan_set_progress(p, NULL, 0);
      if (st != KR_OK) goto out;
      atomic_store_explicit(w, base + kr_plan_steps(p), memory_order_release);   /* all of it (b = 0: no run) */
      t0 = kr_now();
      double wait = 0;
      if ((st = dist_chunked_step(t, post, &wait)) || (st = dist_reduce_state(t, (float)share))) goto out;
      t->state_steps++;
      t->chunked_steps++;
      t1 = t0 + wait;
    } else {
      if ((st = dist_run_rows(t, p, x, y, sw, idx + start + off, b, NULL, NULL))) goto out;
      t0 = kr_now();
      if (can_shard) {   /* the shared region: the split or the whole step */
        double wait = 0;
        if ((st = dist_shared_step(t, p, pre, post, shard, &wait)) || (st = dist_reduce_state(t, (float)share)))
          goto out;
        if (shard && !state_ours(t)) t->slots_stale = 1;
        if (state_ours(t)) t->state_steps++;
        t1 = t0 + wait;
      } else {
        if ((st = dist_reduce(t, p, pre, share))) goto out;
        t1 = kr_now();
      }
    }
    double t2;
    if (can_shard) {
      t2 = kr_now();   /* the step is done: t0..t1 counted its barriers and copies */
    } else {
      kr_optim_step_scaled(t->optim, (float *const *)t->gradp, post);
      t2 = kr_now();
    }
    if (trial >= 0 && (st = dist_shard_timed(t, trial, t2 - ts))) goto out;
    if ((st = dist_logs(t, b, t->cur, NULL))) goto out;
    t->dist_s += (t1 - t0) + (kr_now() - t2);
    t->dist_steps++;
    for (int k = 0; k < t->nlog; k++) t->acc[k] += t->cur[k] * (double)g;
    seen += (double)g;
    if (fn) {
      double now = kr_now();
      if (min_interval <= 0 || now - last >= min_interval || start + g >= nidx) {
        for (int k = 0; k < t->nlog; k++) t->mean[k] = t->acc[k] / seen;
        last = now;
        if (fn(ud, batch_index, g, t->nlog, t->cur, t->mean)) {
          for (int k = 0; k < t->nlog; k++) logs_out[k] = t->mean[k];
          st = KR_ESTOP;
          goto out;
        }
        if ((st = ensure_plan(t, &t->train, 0, bs)) || (st = dist_bind_shared(t, t->train))) goto out;
        p = t->train;
      }
    }
  }
  for (int k = 0; k < t->nlog; k++) logs_out[k] = seen > 0 ? t->acc[k] / seen : 0;
out:
  /* the epoch's end (or a stop asked by a callback, on every rank): every
  ** rank's slots whole again */
  if ((st == KR_OK || st == KR_ESTOP) && t->slots_stale) {
    int s2 = dist_shard_slots(t);
    if (s2 != KR_OK) st = s2;
    else t->slots_stale = 0;
  }
  memcpy(ctx->rng, common, sizeof common);
  ctx->spare = spare;
  ctx->have_spare = have_spare;
  return st;
}

/* the public loops run with flush-to-zero (see kr_fp_enter in ctx_impl.h) */
int kr_trainer_fit_epoch(kr_trainer *t, const kr_data *x, const kr_data *y, const kr_data *sw,
                         const int64_t *idx, int64_t nidx, int64_t batch_size,
                         kr_batch_fn fn, kr_batch_begin_fn begin, void *ud, double min_interval,
                         double *logs_out)
{
  kr_fpmode m = kr_fp_enter();
  int st = t->dist && t->dist->size > 1
           ? fit_epoch_dist_body(t, x, y, sw, idx, nidx, batch_size, fn, begin, ud, min_interval, logs_out)
           : fit_epoch_body(t, x, y, sw, idx, nidx, batch_size, fn, begin, ud, min_interval, logs_out);
  kr_fp_leave(m);
  return st;
}

int kr_trainer_evaluate(kr_trainer *t, const kr_data *x, const kr_data *y, const kr_data *sw,
                        int64_t batch_size, kr_batch_fn fn, void *ud, double *logs_out)
{
  kr_fpmode m = kr_fp_enter();
  int st = evaluate_body(t, x, y, sw, batch_size, fn, ud, logs_out);
  kr_fp_leave(m);
  return st;
}

int kr_trainer_predict(kr_trainer *t, const kr_data *x, int64_t batch_size, kr_tensor **out)
{
  kr_fpmode m = kr_fp_enter();
  int st = predict_body(t, x, batch_size, out);
  kr_fp_leave(m);
  return st;
}

static int dist_on(const kr_trainer *t) { return t->dist && t->dist->size > 1; }

/* train_on_batch in a world of several ranks (Horovod's form): every rank
** calls it with its own rows, its inputs already in plan p; the step is the
** world's: the logs and the gradients weighted by each rank's rows, then the
** same optimizer step on every rank. Dropout draws from this rank's stream */
static int dist_batch(kr_trainer *t, kr_plan *p, int64_t b, double *logs_out)
{
  kr_ctx *ctx = t->ctx;
  if (t->nvar < 1) return kr_fail(ctx, KR_EARG, "train_on_batch: distributed training needs trainable weights");
  int st0 = dist_state_end(t);
  if (st0 != KR_OK) return st0;
  if (t->shm_plan == p) {
    /* the ranks' plans may differ here (each its own rows): allreduce */
    kr_plan_bind_group(p, NULL);
    t->shm_plan = NULL;
    for (int i = 0; i < t->nvar; i++) t->gradp[i] = kr_plan_output(p, t->nlog + i);
  }
  uint64_t common[4];
  memcpy(common, ctx->rng, sizeof common);
  double spare = ctx->spare;
  int have_spare = ctx->have_spare;
  dist_rank_stream(t, common, ~++t->dist_batches);
  int st = kr_plan_run(p, b);
  memcpy(ctx->rng, common, sizeof common);
  ctx->spare = spare;
  ctx->have_spare = have_spare;
  if (st != KR_OK) return st;
  for (int k = 0; k < t->nlog; k++) t->cur[k] = kr_plan_output(p, k)[0];
  double t0 = kr_now(), g = 0;
  if ((st = dist_logs(t, b, t->cur, &g))) return st;
  t->dist_rows = g;
  if ((st = dist_reduce(t, p, (double)b / g, (double)b / g))) return st;
  double t1 = kr_now();
  kr_optim_step(t->optim, (float *const *)t->gradp);
  t->dist_s += t1 - t0;
  t->dist_steps++;
  for (int k = 0; k < t->nlog; k++) logs_out[k] = t->cur[k];
  return KR_OK;
}

static int one_batch_body(kr_trainer *t, int train, const kr_data *x, const kr_data *y, const kr_data *sw,
                     double *logs_out)
{
  kr_ctx *ctx = t->ctx;
  int64_t n;
  const char *what = train ? "train_on_batch" : "test_on_batch";
  if (check_xy(t, what, x, y, sw, &n)) return kr_errcode(ctx);
  if (t->nlog < 1) return kr_fail(ctx, KR_EARG, "%s: the model must be compiled first", what);
  if (n < 1) return kr_fail(ctx, KR_EARG, "%s: no samples", what);
  if (check_fixed_batch(t, what, n, n)) return kr_errcode(ctx);
  kr_plan **pp = train ? &t->train : &t->test;
  if (ensure_plan(t, pp, train ? 0 : 1, n)) return kr_errcode(ctx);
  copy_rows(*pp, 0, x, 0, n);
  copy_rows(*pp, t->nin, y, 0, n);
  copy_rows(*pp, t->nin + t->ntgt, sw, 0, n);
  if (train && dist_on(t)) return dist_batch(t, *pp, n, logs_out);
  int st = kr_plan_run(*pp, n);
  if (st != KR_OK) return st;
  if (train && t->nvar > 0) kr_optim_step(t->optim, (float *const *)t->gradp);
  for (int k = 0; k < t->nlog; k++) logs_out[k] = kr_plan_output(*pp, k)[0];
  return KR_OK;
}

static int one_batch(kr_trainer *t, int train, const kr_data *x, const kr_data *y, const kr_data *sw,
                     double *logs_out)
{
  kr_fpmode m = kr_fp_enter();
  int st = one_batch_body(t, train, x, y, sw, logs_out);
  kr_fp_leave(m);
  return st;
}

int kr_trainer_train_batch(kr_trainer *t, const kr_data *x, const kr_data *y, const kr_data *sw,
                           double *logs_out)
{
  return one_batch(t, 1, x, y, sw, logs_out);
}

int kr_trainer_test_batch(kr_trainer *t, const kr_data *x, const kr_data *y, const kr_data *sw,
                          double *logs_out)
{
  return one_batch(t, 0, x, y, sw, logs_out);
}

/* ---- the C API's data path (src/lua/capi.c): the plans of a model with one
** input and one output fed from, and read into, the host's row-major float
** buffers. Each call runs the plan built for the most rows asked so far (a
** plan for N rows runs any batch up to N), so that after the first call for
** a given row count nothing is allocated. ---- */

/* per-sample floats of node n's shape (a fixed batch size fb counts once) */
static int64_t sample_floats(const kr_node *n, int64_t fb)
{
  int64_t row = kr_shape_numel(&n->shape);
  if (fb && n->shape.ndim >= 1 && n->shape.dim[0] == fb) row /= fb;
  return row;
}

int kr_trainer_io(kr_trainer *t, const char *what, int64_t *in_features, int64_t *out_features)
{
  kr_ctx *ctx = t->ctx;
  char a[128];
  if (t->nin != 1 || t->nout != 1)
    return kr_fail(ctx, KR_EARG, "%s: the model has %d inputs and %d outputs; the C API's buffers take models "
                   "with one input and one output", what, t->nin, t->nout);
  if (kr_shape_has_none(&t->in[0]->shape))
    return kr_fail(ctx, KR_ESHAPE, "%s: the model's input has shape %s, with a None length; the C API needs "
                   "fixed per-sample sizes", what, kr_shape_str(&t->in[0]->shape, a, sizeof a));
  int64_t fb = fixed_batch(t);
  if (!fb && !kr_is_batched(&t->out[0]->shape))
    return kr_fail(ctx, KR_ESHAPE, "%s: the model's output has no batch axis", what);
  if (in_features) *in_features = sample_floats(t->in[0], fb);
  if (out_features) *out_features = sample_floats(t->out[0], fb);
  return KR_OK;
}

static int check_rows(kr_trainer *t, const char *what, int64_t rows)
{
  if (rows < 1) return kr_fail(t->ctx, KR_EARG, "%s: rows must be >= 1, got %lld", what, (long long)rows);
  int64_t fb = fixed_batch(t);
  if (fb && rows != fb)
    return kr_fail(t->ctx, KR_EARG, "%s: the model's inputs have a fixed batch size of %lld (batch_shape); "
                   "give %lld rows, got %lld", what, (long long)fb, (long long)fb, (long long)rows);
  return KR_OK;
}

static int predict_rows_body(kr_trainer *t, const float *x, int64_t rows, float *y)
{
  kr_ctx *ctx = t->ctx;
  int64_t nx, ny;
  if (kr_trainer_io(t, "lk_predict", &nx, &ny) || check_rows(t, "lk_predict", rows)) return kr_errcode(ctx);
  if (ensure_plan(t, &t->pred, 2, rows)) return kr_errcode(ctx);
  if (copy_finite(kr_plan_input(t->pred, 0), x, rows * nx))
    return kr_fail(ctx, KR_EARG, "lk_predict: the input contains NaN or Inf");
  int st = kr_plan_run(t->pred, rows);
  if (st != KR_OK) return st;
  memcpy(y, kr_plan_output(t->pred, 0), (size_t)(rows * ny) * sizeof(float));
  return KR_OK;
}

int kr_trainer_predict_rows(kr_trainer *t, const float *x, int64_t rows, float *y)
{
  kr_fpmode m = kr_fp_enter();
  int st = predict_rows_body(t, x, rows, y);
  kr_fp_leave(m);
  return st;
}

static int train_rows_body(kr_trainer *t, const float *x, const float *y, int64_t rows, double *loss)
{
  kr_ctx *ctx = t->ctx;
  int64_t nx;
  const char *what = "lk_train_on_batch";
  if (kr_trainer_io(t, what, &nx, NULL) || check_rows(t, what, rows)) return kr_errcode(ctx);
  if (t->nlog < 1 || t->ntgt != 1 || t->nvar < 1 || !t->optim)
    return kr_fail(ctx, KR_EARG, "%s: the model must be compiled with a loss and have trainable weights", what);
  int64_t fb = fixed_batch(t);
  int64_t ny = sample_floats(t->tgt[0], fb);
  if (ensure_plan(t, &t->train, 0, rows)) return kr_errcode(ctx);
  kr_plan *p = t->train;
  float *dx = kr_plan_input(p, 0), *dy = kr_plan_input(p, 1);
  if (dx) memcpy(dx, x, (size_t)(rows * nx) * sizeof(float));
  if (dy) memcpy(dy, y, (size_t)(rows * ny) * sizeof(float));
  for (int i = 0; i < t->nsw; i++) {   /* no sample weights: ones, as train_on_batch without them */
    float *w = kr_plan_input(p, 2 + i);
    int64_t nw = sample_floats(t->sw[i], fb) * rows;
    for (int64_t k = 0; w && k < nw; k++) w[k] = 1.0f;
  }
  if (dist_on(t)) {
    int st = dist_batch(t, p, rows, t->cur);
    if (st != KR_OK) return st;
    if (loss) *loss = t->cur[0];
    return KR_OK;
  }
  int st = kr_plan_run(p, rows);
  if (st != KR_OK) return st;
  kr_optim_step(t->optim, (float *const *)t->gradp);
  for (int k = 0; k < t->nlog; k++) t->cur[k] = kr_plan_output(p, k)[0];
  if (loss) *loss = t->cur[0];
  return KR_OK;
}

int kr_trainer_train_rows(kr_trainer *t, const float *x, const float *y, int64_t rows, double *loss)
{
  kr_fpmode m = kr_fp_enter();
  int st = train_rows_body(t, x, y, rows, loss);
  kr_fp_leave(m);
  return st;
}

int kr_trainer_rows_shape(kr_trainer *t, int target, const kr_shape *x, kr_shape *y)
{
  if (t->nin != 1 || t->nout != 1 || (target && (t->ntgt != 1 || t->nvar < 1 || !t->optim))) return 0;
  const kr_shape *s = &t->in[0]->shape;
  if (x->ndim != s->ndim || x->ndim < 1 || x->dim[0] < 1 || kr_shape_has_none(s)) return 0;
  for (int k = 1; k < s->ndim; k++)
    if (x->dim[k] != s->dim[k]) return 0;
  int64_t fb = fixed_batch(t);
  if (fb && x->dim[0] != fb) return 0;
  const kr_shape *o = target ? &t->tgt[0]->shape : &t->out[0]->shape;
  if (!fb && !kr_is_batched(o)) return 0;
  *y = kr_concrete(o, x->dim[0]);
  if (o->ndim >= 1 && o->dim[0] < -1) return 0;   /* a time axis folded into the batch */
  return 1;
}

const double *kr_trainer_logs(const kr_trainer *t, int *n)
{
  *n = t->nlog;
  return t->cur;
}
