/*
** kr.h -- the lkeras engine: contexts, tensors, symbolic graphs, plans, training.
** Knows nothing of Lua (the binding lives in src/lua/).
**
** Conventions
**   - Every function that can fail returns KR_OK or an error code and leaves a
**     message in the context (kr_errmsg). Constructors return NULL on failure.
**   - Objects are reference counted: *_new returns one reference owned by the
**     caller; give it back with *_release. Functions that take a const pointer
**     borrow it.
**   - Shapes: a symbolic (graph) shape may have a negative dim[0]: the batch
**     axis, whose size is only known when a plan runs. KR_BATCH (-1) is the
**     batch itself; -k is k times the batch (a time axis folded into the batch,
**     as TimeDistributed does). Concrete tensors never have one.
**   - A symbolic shape may also have KR_NONE (-1) in a later axis: a length
**     not known when the graph is built (Keras's None, e.g. the time axis of
**     Input{shape={None, 8}}). Ops that work on any length accept it (see
**     none_ok in graph.c); others refuse it by name. A plan never has one: a
**     model builds a concrete graph per input length (lua/keras/models.lua).
*/
#ifndef KR_H
#define KR_H

#include <stddef.h>
#include <stdint.h>

#define KR_MAX_DIMS 8
#define KR_BATCH (-1)
#define KR_NONE (-1)   /* an unknown length in an axis after the first */
#define KR_MAX_ATTR 8
#define KR_MSG_SIZE 512

enum {
  KR_OK = 0,
  KR_ESHAPE,   /* shapes do not fit */
  KR_EARG,     /* a bad argument value */
  KR_EMEM,     /* out of memory */
  KR_EIO,      /* file could not be read or written */
  KR_EFORMAT,  /* file contents are not what they should be */
  KR_EVALUE,   /* a bad data value (NaN in input, label out of range) */
  KR_ESTOP     /* a callback asked to stop, or raised */
};

#ifdef KR_DEBUG
#include <stdio.h>
#include <stdlib.h>
#define KR_ASSERT(c) \
  ((c) ? (void)0 : (fprintf(stderr, "%s:%d: internal error: %s\n", __FILE__, __LINE__, #c), abort()))
#else
#define KR_ASSERT(c) ((void)0)
#endif

/* ---- shapes ---- */

typedef struct kr_shape {
  int ndim;
  int64_t dim[KR_MAX_DIMS];
} kr_shape;

kr_shape kr_shape_make(int ndim, const int64_t *dim);
int64_t kr_shape_numel(const kr_shape *s);         /* a batch axis -k counts as k */
/* The same with overflow checks, the one helper every size computed from
** untrusted dimensions goes through (tensor creation, reshape, the file
** loaders' headers): KR_OK with *n the product (0 when any dimension is 0),
** or KR_EARG when it or any one dimension exceeds KR_NUMEL_MAX (2^56: its
** bytes at up to 8 a value still fit int64 and size_t). Sets no message. */
#define KR_NUMEL_MAX ((uint64_t)1 << 56)
int kr_shape_numel_checked(const kr_shape *s, uint64_t *n);
int kr_shape_eq(const kr_shape *a, const kr_shape *b);
/* 1 when an axis after the first is KR_NONE (negative) */
int kr_shape_has_none(const kr_shape *s);
/* "(None, 64)" style text into buf, returns buf */
char *kr_shape_str(const kr_shape *s, char *buf, size_t n);

/* ---- context: errors, allocator, random generator, threads ---- */

typedef struct kr_ctx kr_ctx;

kr_ctx *kr_ctx_new(void);
void kr_ctx_free(kr_ctx *ctx);
int kr_fail(kr_ctx *ctx, int code, const char *fmt, ...)
#if defined(__GNUC__)
    __attribute__((format(printf, 3, 4)))
#endif
    ;
const char *kr_errmsg(const kr_ctx *ctx);
int kr_errcode(const kr_ctx *ctx);

/* All engine memory goes through these; they count bytes. kr_malloc reports
** KR_EMEM in ctx and returns NULL on failure. */
void *kr_malloc(kr_ctx *ctx, size_t n);
void *kr_calloc(kr_ctx *ctx, size_t n);
void kr_free(kr_ctx *ctx, void *p);
size_t kr_mem_in_use(const kr_ctx *ctx);
size_t kr_mem_peak(const kr_ctx *ctx);
uint64_t kr_mem_allocs(const kr_ctx *ctx);          /* number of allocations so far */
/* Tests: make the n-th allocation from now fail (0 = never). */
void kr_mem_fail_at(kr_ctx *ctx, long n);
/* A limit on the bytes in use: an allocation that would pass it fails with
** KR_EMEM and a message naming the limit. 0 = no limit (the default). */
void kr_mem_set_limit(kr_ctx *ctx, size_t bytes);
size_t kr_mem_limit(const kr_ctx *ctx);
/* The host's allocator, with lua_Alloc's contract (ptr, osize, nsize: nsize 0
** frees, returns NULL on failure): every engine block comes from it from now
** on. Set it before the context allocates anything (luaopen_keras sets the
** state's own, lua_getallocf). NULL: posix_memalign and free. */
typedef void *(*kr_alloc_fn)(void *ud, void *ptr, size_t osize, size_t nsize);
int kr_ctx_set_allocator(kr_ctx *ctx, kr_alloc_fn fn, void *ud);

/* Random numbers: one generator per context (xoshiro256**). */
void kr_rng_seed(kr_ctx *ctx, uint64_t seed);
uint64_t kr_rng_u64(kr_ctx *ctx);
double kr_rng_uniform(kr_ctx *ctx);                /* [0, 1) */
double kr_rng_normal(kr_ctx *ctx);                 /* N(0, 1) */
void kr_rng_shuffle(kr_ctx *ctx, int64_t *idx, int64_t n);

void kr_set_num_threads(kr_ctx *ctx, int n);
int kr_get_num_threads(const kr_ctx *ctx);
/* the engine's own GEMM kernels instead of sgemm: inference plans' packed
** GEMM (plan.c, kernels/gemm_packed.c) and the small-batch weight gradient
** (kernels/linalg.c, tn_small): 0 never, 1 always, 2 where measured faster
** than sgemm (the default; the environment variable LKERAS_GEMM_PACKED=0/1
** sets it for new contexts). Plans built afterwards follow it; the weight
** gradient's choice is made at its first run of a shape. */
void kr_set_gemm_packed(kr_ctx *ctx, int mode);
int kr_get_gemm_packed(const kr_ctx *ctx);
double kr_now(void);                               /* monotonic seconds */

/* ---- OpenBLAS's kernels (blas.c) ----
** kr_blas_init checks, once per process, that OpenBLAS runs the best kernels
** it has for this CPU and corrects its choice where it fell back (see blas.c);
** kr_ctx_new calls it. The record is read-only afterwards. */
typedef struct kr_blas_info {
  char core[48];           /* the kernels in use: openblas_get_corename() */
  char chosen_by[16];      /* "openblas", "lkeras" (corrected) or "user" (OPENBLAS_CORETYPE) */
  char rejected[48];       /* a better core that disagreed with the reference ("" if none) */
  char openblas_core[48];  /* what OpenBLAS chose itself ("" when the user chose) */
  char detail[256];        /* how, in words */
  char warning[512];       /* non-empty after a failed correction (also on stderr) */
  char cpu_model[64];
  char cpu_features[128];
  char cpu_level[16];      /* "SSE", "AVX", "AVX2+FMA", "AVX-512" or "unknown" */
  char config[128];        /* openblas_get_config() */
  int checked;             /* 1: the corrected core agreed with the C reference */
} kr_blas_info;

const kr_blas_info *kr_blas_init(void);
int kr_blas_threads(void);                          /* OpenBLAS's thread count now */

/* ---- tensors (tensor.c) ---- */

typedef struct kr_storage {
  int refs;
  kr_ctx *ctx;
  size_t n;       /* floats */
  float *data;
  uint64_t version; /* +1 on every write to the data from outside a plan run
                    ** (kr_tensor_touch): plans keep packed copies of weights
                    ** (plan.c) and repack when it moves */
} kr_storage;

typedef struct kr_tensor {
  int refs;
  kr_storage *st;
  size_t offset;  /* in floats; tensors are always contiguous row-major */
  kr_shape shape;
} kr_tensor;

#define KR_DATA(t) ((t)->st->data + (t)->offset)

kr_tensor *kr_tensor_new(kr_ctx *ctx, const kr_shape *shape);    /* uninitialised */
kr_tensor *kr_tensor_zeros(kr_ctx *ctx, const kr_shape *shape);
kr_tensor *kr_tensor_full(kr_ctx *ctx, const kr_shape *shape, float v);
kr_tensor *kr_tensor_copy(kr_ctx *ctx, const kr_tensor *t);
/* rows [first, last) of the leading axis, sharing storage */
kr_tensor *kr_tensor_rows(kr_ctx *ctx, kr_tensor *t, int64_t first, int64_t last);
/* same data, another shape with the same element count (shares storage) */
kr_tensor *kr_tensor_reshape(kr_ctx *ctx, kr_tensor *t, const kr_shape *shape);
void kr_tensor_retain(kr_tensor *t);
void kr_tensor_release(kr_tensor *t);
int64_t kr_tensor_numel(const kr_tensor *t);
/* rows of src at idx[0..n) into dst (dst has n rows of the same row size) */
void kr_tensor_gather_rows(float *dst, const kr_tensor *src, const int64_t *idx, int64_t n);
int kr_tensor_has_nonfinite(const kr_tensor *t);
/* call after writing t's data in place (a weight set, loaded or stepped):
** inference plans repack the weights they keep packed (plan.c) */
static inline void kr_tensor_touch(kr_tensor *t) { t->st->version++; }
/* t's storage now lives at data (t whole: offset 0, every float of it; the
** caller owns both memories and copies the values): plans that hold
** pointers into it bind again before their next run */
void kr_tensor_move(kr_tensor *t, float *data);
/* the tensor as numpy prints it (format.c): a kr_malloc'd string (the caller
** frees it), NULL with the context's error set on failure */
char *kr_tensor_format(kr_ctx *ctx, const kr_tensor *t);

/* ---- symbolic graphs (graph.c) ---- */

typedef struct kr_attr {
  int64_t i[KR_MAX_ATTR];
  double f[KR_MAX_ATTR];
  kr_shape shape;         /* target shape for reshape-like ops */
} kr_attr;

typedef struct kr_node kr_node;
struct kr_node {
  int refs;
  int op;                 /* KR_OP_* */
  int nin;
  kr_node **in;
  kr_shape shape;         /* dim[0] may be negative: the batch axis */
  kr_attr attr;
  kr_tensor *value;       /* KR_OP_CONST, KR_OP_VARIABLE: the data */
  uint64_t id;            /* creation order: deterministic plans */
  kr_ctx *ctx;
};

/* The op table (ops.c) has one row per op; see kr_opinfo there. */
enum {
#define KR_OPDEF(name, str) KR_OP_##name,
#include "opdefs.h"
#undef KR_OPDEF
  KR_OP_COUNT
};

const char *kr_op_name(int op);
int kr_op_lookup(const char *name);                 /* -1 if unknown */
int kr_op_is_differentiable(int op);

/* Leaves */
kr_node *kr_node_const(kr_ctx *ctx, kr_tensor *t);            /* keeps a ref to t */
kr_node *kr_node_variable(kr_ctx *ctx, kr_tensor *t);         /* a weight: same, but trainable */
kr_node *kr_node_input(kr_ctx *ctx, const kr_shape *shape);   /* a placeholder */
/* An op node: checks the inputs' shapes; NULL with a message if they do not fit. */
kr_node *kr_node_op(kr_ctx *ctx, int op, int nin, kr_node *const *in, const kr_attr *attr);
void kr_node_retain(kr_node *n);
void kr_node_release(kr_node *n);

/* Reverse-mode autodiff: gradient nodes of the scalar `loss` with respect to
** each of vars[0..nvars). A var that loss does not depend on gets zeros. The
** caller owns the returned nodes. */
int kr_gradients(kr_ctx *ctx, kr_node *loss, int nvars, kr_node *const *vars, kr_node **grads);

/* ---- plans (plan.c): a compiled list of nodes for a maximum batch size ---- */

typedef struct kr_plan kr_plan;

/* Compile a plan computing outputs[0..nout) from the inputs (placeholders)
** inputs[0..nin). training selects dropout/batchnorm behaviour: 0 inference,
** 1 training, KR_TRAINING_KEEP_STATS training without updating batchnorm's
** moving statistics (K.function in the training phase). The plan owns its
** memory (one arena of kr_plan_arena_bytes). */
#define KR_TRAINING_KEEP_STATS 2
kr_plan *kr_plan_new(kr_ctx *ctx, int nout, kr_node *const *outputs, int nin,
                     kr_node *const *inputs, int64_t max_batch, int training);
/* The same without memory: kr_plan_bind gives it an arena of at least
** kr_plan_arena_bytes, which it uses only while it runs (nothing in it lives
** from one run to the next). Plans that never run at the same time, such as
** a model's training, test and predict plans, can share one arena. */
kr_plan *kr_plan_new_unbound(kr_ctx *ctx, int nout, kr_node *const *outputs, int nin,
                             kr_node *const *inputs, int64_t max_batch, int training);
/* use `arena` (16-float aligned, kr_plan_arena_bytes or more) from now on;
** cheap when it is the arena the plan already uses */
void kr_plan_bind(kr_plan *p, float *arena);
/* kr_plan_new_unbound whose outputs from group_from on live end to end at the
** top of the arena, in the order the run computes them (16-float aligned,
** the gaps zero or stale): kr_plan_group is that region once bound (an
** output that is a variable or a constant is not in it). For reducing
** gradients across processes in place (keras.distributed) */
kr_plan *kr_plan_new_grouped(kr_ctx *ctx, int nout, kr_node *const *outputs, int nin,
                             kr_node *const *inputs, int64_t max_batch, int training, int group_from);
float *kr_plan_group(const kr_plan *p, size_t *nfloats);
/* the grouped region in mem (group floats, 16-float aligned, kept by the
** caller) instead of the arena; NULL: back in the arena */
void kr_plan_bind_group(kr_plan *p, float *mem);
/* the ends (in floats from the region's start) of the grouped outputs, in
** the order the run computes them: up to cap written, the count returned */
size_t kr_plan_group_ends(const kr_plan *p, size_t *ends, size_t cap);
/* kr_plan_run calling hook(ud, floats) after each step that completes a
** grouped output: the region's first `floats` are then final (for starting
** their reduction while the rest of the backward pass runs) */
typedef void (*kr_plan_group_hook)(void *ud, size_t floats);
int kr_plan_run_hooked(kr_plan *p, int64_t batch, kr_plan_group_hook hook, void *ud);
void kr_plan_free(kr_plan *p);
int64_t kr_plan_max_batch(const kr_plan *p);
/* buffer of placeholder i (max_batch rows), to be filled before kr_plan_run;
** this and kr_plan_output point into the arena bound at the time */
float *kr_plan_input(kr_plan *p, int i);
/* run with the given batch size (<= max_batch); never allocates */
int kr_plan_run(kr_plan *p, int64_t batch);
const float *kr_plan_output(const kr_plan *p, int i);
/* the plan's steps, in the order a run takes them: the step that computes
** output i, and the last step that reads node n's value (its own step when
** nothing reads it; (size_t)-1 when n is not in the plan) */
size_t kr_plan_steps(const kr_plan *p);
size_t kr_plan_output_step(const kr_plan *p, int i);
size_t kr_plan_last_read(const kr_plan *p, const kr_node *n);
/* word: while not NULL, every run stores base + i + 1 into it (release)
** once step i is done, so another thread or process sees how far it is */
void kr_plan_set_progress(kr_plan *p, void *word, uint64_t base);
/* concrete shape of output i for the last run's batch */
kr_shape kr_plan_output_shape(const kr_plan *p, int i, int64_t batch);
size_t kr_plan_arena_bytes(const kr_plan *p);
/* the most memory live at once while it runs (the arena is this plus what
** placement could not reuse) */
size_t kr_plan_live_bytes(const kr_plan *p);

/* Evaluate nodes whose leaves are constants/variables: one-off plan. */
kr_tensor *kr_eval(kr_ctx *ctx, kr_node *n);

/* ---- optimizers (optim.c) ---- */

enum { KR_SGD, KR_RMSPROP, KR_ADAGRAD, KR_ADADELTA, KR_ADAM, KR_ADAMAX, KR_NADAM, KR_OPTIM_COUNT };

typedef struct kr_optim_cfg {
  int kind;
  double lr, momentum, decay, rho, epsilon, beta_1, beta_2, schedule_decay;
  int nesterov, amsgrad;
  double clipnorm, clipvalue;   /* 0 = off */
} kr_optim_cfg;

typedef struct kr_optim kr_optim;

kr_optim *kr_optim_new(kr_ctx *ctx, const kr_optim_cfg *cfg);
void kr_optim_free(kr_optim *o);
kr_optim_cfg *kr_optim_config(kr_optim *o);   /* lr etc. may be changed between steps */
int64_t kr_optim_iterations(const kr_optim *o);
void kr_optim_set_iterations(kr_optim *o, int64_t it);
/* Bind the optimizer to weights (allocates the slots; called at compile). */
int kr_optim_bind(kr_optim *o, int nvars, kr_tensor *const *vars);
/* 1 when bound to exactly vars[0..nvars), in that order */
int kr_optim_bound_to(const kr_optim *o, int nvars, kr_tensor *const *vars);
/* One update: grads[i] has the same size as vars[i]. Never allocates. */
void kr_optim_step(kr_optim *o, float *const *grads);
/* kr_optim_step of the gradients times gscale (multiplied in place as the
** step reads them: the same bits as scaling them first, without the pass) */
void kr_optim_step_scaled(kr_optim *o, float *const *grads, float gscale);

/* The sharded step of data-parallel training on one host (train.c): the
** gradients of the ranks sit in shared segments, and each rank updates only
** its pieces of the vars, the gradient being the sum of the segments (in
** segment order) times gscale; the updated weights go to out (if not NULL)
** at the pieces' offsets for the other ranks to copy. Not with clipping or
** constraints (kr_optim_can_shard). Vars in `local` (gradients not in the
** segments) are updated whole from grads. The slots outside this rank's
** pieces go stale until kr_optim_slots_pieces brings them in. */
typedef struct kr_optim_piece {
  int var;          /* the var */
  size_t lo, hi;    /* its elements */
  size_t off;       /* where element lo's gradient sits in a segment */
} kr_optim_piece;
int kr_optim_can_shard(const kr_optim *o);
void kr_optim_step_pieces(kr_optim *o, const kr_optim_piece *pc, int npc, float *const *segs, int nseg,
                          float gscale, float *out, float *const *grads, const int *local, int nlocal);
/* kr_optim_step_pieces in parts: the pieces' updates (any number of calls,
** by any rank, before the finish), then the finish (the local vars and the
** iteration count) once */
void kr_optim_update_pieces(kr_optim *o, const kr_optim_piece *pc, int npc, float *const *segs, int nseg,
                            float gscale, float *out);
void kr_optim_step_finish(kr_optim *o, float *const *grads, const int *local, int nlocal, float gscale);
/* the slot kinds with a value per element of their var (Adam's vhats are
** one number unless amsgrad: the first kinds) */
int kr_optim_full_slots(const kr_optim *o);
/* slot kind `kind` of the pieces to buf at their offsets (to_buf), or back */
void kr_optim_slots_pieces(kr_optim *o, int kind, const kr_optim_piece *pc, int npc, float *buf, int to_buf);
/* Slot tensors (momenta, accumulators) for saving: count and access */
int kr_optim_nslots(const kr_optim *o);
kr_tensor *kr_optim_slot(kr_optim *o, int i);

/* Weight constraints (keras.constraints, Keras 2.2.4's formulas), projected
** onto a var after each of its updates, in kr_optim_step. axes: a bit per
** axis of the var, the axes the norm is taken over (norm kinds). eps = 1e-7.
**   max_norm      w *= clip(n, 0, max_value) / (eps + n)
**   non_neg       w = w < 0 ? 0 : w
**   unit_norm     w /= eps + n
**   min_max_norm  w *= (rate * clip(n, min_value, max_value) + (1 - rate) * n) / (eps + n) */
enum { KR_CONSTRAINT_NONE, KR_CONSTRAINT_MAX_NORM, KR_CONSTRAINT_NON_NEG, KR_CONSTRAINT_UNIT_NORM,
       KR_CONSTRAINT_MIN_MAX_NORM, KR_CONSTRAINT_COUNT };

typedef struct kr_constraint {
  int kind;
  unsigned axes;
  double max_value, min_value, rate;
} kr_constraint;

/* Var i's constraint from now on (the optimizer must be bound; a bind clears
** them all). Checks the kind, the axes against the var's rank, the values. */
int kr_optim_constrain(kr_optim *o, int i, const kr_constraint *c);
/* w projected by c, in place (what kr_optim_step does after an update) */
void kr_constraint_apply(const kr_constraint *c, kr_tensor *w);

/* ---- training and inference (train.c) ---- */

typedef struct kr_trainer kr_trainer;

/* Per-batch report to the host: the batch's own values and the running
** sample-weighted means of the logged scalars. Return nonzero to stop (KR_ESTOP). */
typedef int (*kr_batch_fn)(void *ud, int64_t batch_index, int64_t batch_size,
                           int nlogs, const double *batch_logs, const double *mean_logs);

typedef struct kr_trainer_spec {
  int nin;  kr_node *const *inputs;     /* model inputs (placeholders) */
  int ntgt; kr_node *const *targets;    /* target placeholders, one per output */
  int nsw;  kr_node *const *weights;    /* sample-weight placeholders, shape (batch,) */
  int nout; kr_node *const *outputs;    /* model outputs (for predict) */
  int nlog; kr_node *const *logs;       /* scalars: total loss first, then the rest */
  int nvar; kr_node *const *vars;       /* trainable variables */
  kr_optim *optim;                      /* borrowed; must outlive the trainer */
  int keep_optim;                       /* 1: an optimizer bound to these vars already keeps its
                                           slots (trainers of one model for several input lengths) */
  const kr_constraint *constraints;     /* NULL or nvar entries (KR_CONSTRAINT_NONE: none) */
} kr_trainer_spec;

kr_trainer *kr_trainer_new(kr_ctx *ctx, const kr_trainer_spec *spec);
void kr_trainer_free(kr_trainer *t);
/* t's plans use with's arena from now on (it grows to the largest need and
** lives while one of them does): for trainers that never run at the same
** time, such as one model's trainers for several input shapes. A trainer
** whose loop calls back into the host binds its plans again after each call,
** so another trainer of the group may run (and move the arena) meanwhile. */
void kr_trainer_share_arena(kr_trainer *t, kr_trainer *with);

typedef struct kr_data {
  int n;                     /* number of tensors */
  kr_tensor *const *t;       /* each with the same leading (sample) axis */
} kr_data;

/* Called before each batch (Keras's on_batch_begin): the host may change the
** optimizer's settings or the weights, which the batch that follows then uses.
** Return nonzero to stop before the batch (KR_ESTOP). */
typedef int (*kr_batch_begin_fn)(void *ud, int64_t batch_index, int64_t batch_size);

/* One epoch over x/y/sw rows in the order idx[0..nidx). logs_out gets the
** sample-weighted means of the log scalars (nlog values). begin, when not
** NULL, runs before every batch with the same ud as fn. */
int kr_trainer_fit_epoch(kr_trainer *t, const kr_data *x, const kr_data *y, const kr_data *sw,
                         const int64_t *idx, int64_t nidx, int64_t batch_size,
                         kr_batch_fn fn, kr_batch_begin_fn begin, void *ud, double min_interval,
                         double *logs_out);
/* Data-parallel training over the world d (dist.h; borrowed, must outlive
** the trainer's use of it; NULL: none). With more than one rank, fit_epoch's
** batch_size is per rank: see fit_epoch_dist_body in train.c. The gradients
** are summed in buckets of at most fusion_bytes; the nstate tensors
** (BatchNormalization's moving statistics) are averaged after every step. */
struct kr_dist;
/* the random generator's whole state (keras.distributed broadcasts it) */
void kr_rng_get_state(const kr_ctx *ctx, uint64_t s[4]);
void kr_rng_set_state(kr_ctx *ctx, const uint64_t s[4]);
int kr_trainer_set_dist(kr_trainer *t, struct kr_dist *d, size_t fusion_bytes, int nstate,
                        kr_tensor *const *state);
/* the time the distributed fit spent in its collectives so far, and its steps */
/* the overlapped reduction of fit's distributed steps: a communication
** thread reduces each gradient bucket while the backward pass runs, the
** first bucket cut at first_bytes (0: off, the reduction after the run) */
int kr_trainer_set_overlap(kr_trainer *t, size_t first_bytes);
/* the buckets the overlapped reduction cut (0: off, or no step yet) */
size_t kr_trainer_overlap_buckets(const kr_trainer *t);
/* whether the train plan's gradients are in the world's shared region */
int kr_trainer_dist_shared(const kr_trainer *t);
/* whether fit splits the optimizer's step over the ranks (1), takes it whole
** (0), or has not measured yet (-1); the trial's summed seconds of each */
int kr_trainer_dist_split(const kr_trainer *t, double *split_s, double *whole_s);
/* the steps fit took with the weights and slots as the host's one copy in
** the shared window (split steps updating it in place) */
int64_t kr_trainer_dist_state_steps(const kr_trainer *t);
/* of those, the steps taken in chunks (each updated as soon as every rank's
** run is past it, by its owner or by a rank done with its own, dist_chunked_step) */
int64_t kr_trainer_dist_chunked_steps(const kr_trainer *t);
/* seconds in the distributed steps' collectives, the steps, and the world's
** rows in the last distributed train_on_batch */
void kr_trainer_dist_stats(const kr_trainer *t, double *seconds, int64_t *steps, double *last_rows);
int kr_trainer_evaluate(kr_trainer *t, const kr_data *x, const kr_data *y, const kr_data *sw,
                        int64_t batch_size, kr_batch_fn fn, void *ud, double *logs_out);
/* outputs: nout tensors created here, owned by the caller. The inputs are
** checked batch by batch as they are copied: a NaN or an infinity fails with
** KR_EARG "predict: input N contains NaN or Inf" (N from 1) */
int kr_trainer_predict(kr_trainer *t, const kr_data *x, int64_t batch_size, kr_tensor **out);
/* one step on all rows given */
int kr_trainer_train_batch(kr_trainer *t, const kr_data *x, const kr_data *y, const kr_data *sw,
                           double *logs_out);
int kr_trainer_test_batch(kr_trainer *t, const kr_data *x, const kr_data *y, const kr_data *sw,
                          double *logs_out);

/* The C API's data path, for a trainer with one input and one output:
** per-sample float counts; predict `rows` rows of x (row-major) into y; one
** training step on x, y with unit sample weights (*loss: the total loss).
** `what` names the caller in messages. After the first call for a row count
** neither allocates (a plan for N rows runs any batch up to N). */
int kr_trainer_io(kr_trainer *t, const char *what, int64_t *in_features, int64_t *out_features);
int kr_trainer_predict_rows(kr_trainer *t, const float *x, int64_t rows, float *y);
int kr_trainer_train_rows(kr_trainer *t, const float *x, const float *y, int64_t rows, double *loss);
/* For the Lua API's fast paths: 1 when data of shape x fits the one input
** exactly (rows >= 1, the axes after the batch equal); *y then gets the shape
** of the output (target 0) or the target (target 1) for x's rows. 0 when not
** (the general path then checks and reports). */
int kr_trainer_rows_shape(kr_trainer *t, int target, const kr_shape *x, kr_shape *y);
/* the logged scalars of the last kr_trainer_train_rows (*n of them, the total loss first) */
const double *kr_trainer_logs(const kr_trainer *t, int *n);

#endif
