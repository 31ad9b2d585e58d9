/*
** plan.c -- a compiled graph: nodes in order, one memory arena, run many times.
** kr_plan_new decides everything once: the order of the nodes, where every
** output, saved (aux) and scratch buffer lives in the arena (first fit, freed
** after the last use), and the input/shape tables each kernel will read.
** kr_plan_run then only fills in the batch size and calls the kernels: no
** allocation, no lookups. The arena is the plan's own, or one the caller
** binds (kr_plan_new_unbound, kr_plan_bind): placement yields offsets, and
** binding turns them into the pointers the kernels read.
**
** An inference plan (training 0) keeps the weights of each linear/matmul
** whose weights are variables packed in the GEMM's panel layout
** (kernels/gemm_packed.c), where that kernel was measured faster than sgemm
** for the shape, and applies the activation that alone consumes its output
** in the GEMM's epilogue (the activation's step becomes an alias). The packs
** follow the weights' storage versions (kr_tensor_touch): a run first
** repacks any whose weights were written since.
*/
#include "kr.h"
#include "ctx_impl.h"
#include "ops.h"
#include "kernels/gemm_packed.h"

#include <stdatomic.h>
#include <string.h>

#define ALIGN 16  /* floats: 64 bytes */

typedef struct step {
  kr_node *node;
  long alias;                 /* step whose buffer this one shares (no kernel runs), or -1 */
  float *y, *aux, *scratch;
  kr_shape ys;
  size_t yoff, auxoff, scroff, ysize, auxsize, scrsize;
  int input_index;            /* placeholder number, or -1 */
  int first;                  /* index of the first input in the plan's arrays */
  kr_gemm_pack *pk;           /* linear/matmul with packed weights, or NULL */
  const kr_node *act;         /* the activation fused into its epilogue, or NULL */
  uint64_t wver, bver;        /* the weights' and bias's storage versions packed */
  size_t gend;                /* a grouped output's step: its end in the group region, else 0 */
} step;

struct kr_plan {
  kr_ctx *ctx;
  int training;
  int64_t max_batch, batch;
  size_t n;
  step *steps;
  /* per-input tables, all steps' inputs end to end */
  const float **x;
  const kr_shape **xs;
  float **xaux;
  const kr_tensor **xval;
  float *arena;               /* bound memory, or NULL */
  int own;                    /* the arena is the plan's (kr_plan_new) */
  size_t arena_floats, live_floats;
  size_t *xsrc;               /* per input: the step that computes it */
  int nout, nin;
  size_t *out_step, *in_step;
  size_t *smap, smapcap;      /* while building: node -> step + 1 (0: empty), open addressing */
  size_t group_off, group_floats;  /* kr_plan_new_grouped: the outputs' contiguous region */
  float *group_mem;           /* kr_plan_bind_group: the region's memory (NULL: in the arena) */
  uint64_t moves;             /* ctx->moves when bound: a storage moved since, bind again */
  _Atomic uint64_t *progress; /* kr_plan_set_progress: base + steps done, stored as a run goes */
  uint64_t progress_base;
};

/* ---- first-fit placement in the arena ---- */

typedef struct { size_t off, size; } block;
typedef struct { block *b; size_t n, cap, high, live, peak; kr_ctx *ctx; } freelist;

static size_t round_up(size_t n) { return (n + ALIGN - 1) / ALIGN * ALIGN; }

static int fl_alloc(freelist *f, size_t size, size_t *off)
{
  if (size == 0) {
    *off = 0;
    return KR_OK;
  }
  f->live += size;
  if (f->live > f->peak) f->peak = f->live;
  for (size_t i = 0; i < f->n; i++)
    if (f->b[i].size >= size) {
      *off = f->b[i].off;
      f->b[i].off += size;
      f->b[i].size -= size;
      if (f->b[i].size == 0) {
        memmove(&f->b[i], &f->b[i + 1], (f->n - i - 1) * sizeof *f->b);
        f->n--;
      }
      return KR_OK;
    }
  /* grow at the top; reuse a free block that ends there */
  if (f->n > 0 && f->b[f->n - 1].off + f->b[f->n - 1].size == f->high) {
    *off = f->b[f->n - 1].off;
    f->high = *off + size;
    f->n--;
    return KR_OK;
  }
  *off = f->high;
  f->high += size;
  return KR_OK;
}

static int fl_free(freelist *f, size_t off, size_t size)
{
  if (size == 0) return KR_OK;
  f->live -= size;
  size_t i = 0;
  while (i < f->n && f->b[i].off < off) i++;
  if (f->n == f->cap) {
    size_t nc = f->cap ? 2 * f->cap : 32;
    block *nb = kr_malloc(f->ctx, nc * sizeof *nb);
    if (!nb) return KR_EMEM;
    if (f->n) memcpy(nb, f->b, f->n * sizeof *nb);
    kr_free(f->ctx, f->b);
    f->b = nb;
    f->cap = nc;
  }
  memmove(&f->b[i + 1], &f->b[i], (f->n - i) * sizeof *f->b);
  f->b[i].off = off;
  f->b[i].size = size;
  f->n++;
  /* merge with the next, then with the previous */
  if (i + 1 < f->n && f->b[i].off + f->b[i].size == f->b[i + 1].off) {
    f->b[i].size += f->b[i + 1].size;
    memmove(&f->b[i + 1], &f->b[i + 2], (f->n - i - 2) * sizeof *f->b);
    f->n--;
  }
  if (i > 0 && f->b[i - 1].off + f->b[i - 1].size == f->b[i].off) {
    f->b[i - 1].size += f->b[i].size;
    memmove(&f->b[i], &f->b[i + 1], (f->n - i - 1) * sizeof *f->b);
    f->n--;
  }
  return KR_OK;
}

/* ---- building ---- */

static size_t smap_hash(const kr_node *n, size_t cap)
{
  uint64_t x = (uint64_t)(uintptr_t)n;
  x ^= x >> 33;
  x *= 0xff51afd7ed558ccdULL;
  x ^= x >> 33;
  return (size_t)x & (cap - 1);
}

/* the step of every node, through a hash table (a scan of the steps made
** building a plan O(nodes^2): 6,000 layers took seconds) */
static int smap_build(kr_plan *p)
{
  size_t cap = 64;
  while (cap < 2 * p->n + 2) cap *= 2;
  p->smap = kr_calloc(p->ctx, cap * sizeof *p->smap);
  if (!p->smap) return KR_EMEM;
  p->smapcap = cap;
  for (size_t i = 0; i < p->n; i++) {
    size_t h = smap_hash(p->steps[i].node, cap);
    while (p->smap[h]) h = (h + 1) & (cap - 1);
    p->smap[h] = i + 1;
  }
  return KR_OK;
}

/* the step computing n among steps [0, upto), or -1 */
static long find_step(const kr_plan *p, const kr_node *n, size_t upto)
{
  size_t h = smap_hash(n, p->smapcap);
  while (p->smap[h]) {
    size_t i = p->smap[h] - 1;
    if (p->steps[i].node == n) return i < upto ? (long)i : -1;
    h = (h + 1) & (p->smapcap - 1);
  }
  return -1;
}

/* ---- packed weights (inference plans) ---- */

static int is_weight(const kr_node *n, int ndim)
{
  return (n->op == KR_OP_VARIABLE || n->op == KR_OP_CONST) && n->value && n->value->shape.ndim == ndim;
}

/* the activations an epilogue applies: the op's own kernel, on pieces of
** rows (elementwise) or on whole rows (softmax over the last axis) */
static int fusable(const kr_node *a)
{
  switch (a->op) {
  case KR_OP_RELU: case KR_OP_SIGMOID: case KR_OP_HARD_SIGMOID: case KR_OP_TANH: case KR_OP_SOFTPLUS:
  case KR_OP_SOFTSIGN: case KR_OP_ELU: case KR_OP_SELU: case KR_OP_THRESHOLDED_RELU: case KR_OP_EXP:
    return a->nin == 1;
  case KR_OP_SOFTMAX:
    return a->nin == 1 && a->attr.i[KR_AXIS] == a->shape.ndim - 1;
  default:
    return 0;
  }
}

static int is_rows_act(const kr_node *a) { return a && a->op == KR_OP_SOFTMAX; }

static void pack_step(step *s)
{
  const kr_node *nd = s->node;
  const kr_tensor *w = nd->in[1]->value, *b = nd->op == KR_OP_LINEAR ? nd->in[2]->value : NULL;
  int trans = nd->op == KR_OP_MATMUL && nd->attr.i[KR_MATMUL_TRANSPOSE_B];
  kr_gemm_pack_set(s->pk, KR_DATA(w), trans, b ? KR_DATA(b) : NULL);
  s->wver = w->st->version;
  s->bver = b ? b->st->version : 0;
}

/* step i: packed weights where the kernel wins for the shape (or the context
** says always), then the activation that alone reads its output fused:
** that step becomes an alias of this one. Returns KR_OK or KR_EMEM. */
static int plan_pack(kr_plan *p, size_t i, int64_t max_batch)
{
  step *s = &p->steps[i];
  kr_node *nd = s->node;
  kr_ctx *ctx = p->ctx;
  int mode = kr_get_gemm_packed(ctx);
  if (mode == 0) return KR_OK;
  int64_t K, N;
  if (nd->op == KR_OP_LINEAR) {
    if (!is_weight(nd->in[1], 2) || !is_weight(nd->in[2], 1)) return KR_OK;
    K = nd->in[1]->value->shape.dim[0];
    N = nd->in[1]->value->shape.dim[1];
  } else if (nd->op == KR_OP_MATMUL && !nd->attr.i[KR_MATMUL_TRANSPOSE_A]) {
    if (!is_weight(nd->in[1], 2)) return KR_OK;
    int tb = (int)nd->attr.i[KR_MATMUL_TRANSPOSE_B];
    K = nd->in[1]->value->shape.dim[tb ? 1 : 0];
    N = nd->in[1]->value->shape.dim[tb ? 0 : 1];
  } else {
    return KR_OK;
  }
  const kr_node *x = nd->in[0];
  /* batched inputs only: a constant graph is evaluated once (kr_eval) */
  if (!kr_is_batched(&x->shape) || K < 1 || N < 1 || x->shape.dim[x->shape.ndim - 1] != K) return KR_OK;
  kr_shape xc = kr_concrete(&x->shape, max_batch);
  int64_t M = kr_numel(&xc) / K;
  int isa = kr_gemm_isa_best();
  if (mode == 2 && !kr_gemm_prefer_packed(ctx, isa, M, N, K)) return KR_OK;
  s->pk = kr_gemm_pack_new(ctx, isa, K, N);
  if (!s->pk) return KR_EMEM;
  pack_step(s);

  /* the one consumer, if an activation and this output is not the plan's */
  for (int k = 0; k < p->nout; k++)
    if (p->out_step[k] == i) return KR_OK;
  long user = -1;
  int uses = 0;
  for (size_t j = i + 1; j < p->n; j++)
    for (int k = 0; k < p->steps[j].node->nin; k++)
      if (p->steps[j].node->in[k] == nd) {
        user = (long)j;
        uses++;
      }
  if (uses != 1 || p->steps[user].alias >= 0 || !fusable(p->steps[user].node)) return KR_OK;
  if (!kr_shape_eq(&p->steps[user].node->shape, &nd->shape)) return KR_OK;
  s->act = p->steps[user].node;
  p->steps[user].alias = (long)i;
  return KR_OK;
}

void kr_plan_free(kr_plan *p)
{
  if (!p) return;
  kr_ctx *ctx = p->ctx;
  if (p->steps)
    for (size_t i = 0; i < p->n; i++) {
      kr_node_release(p->steps[i].node);
      kr_gemm_pack_free(ctx, p->steps[i].pk);
    }
  kr_free(ctx, p->steps);
  kr_free(ctx, p->x);
  kr_free(ctx, p->xs);
  kr_free(ctx, p->xaux);
  kr_free(ctx, p->xval);
  kr_free(ctx, p->xsrc);
  if (p->own) kr_free(ctx, p->arena);
  kr_free(ctx, p->out_step);
  kr_free(ctx, p->in_step);
  kr_free(ctx, p->smap);
  kr_free(ctx, p);
}

void kr_plan_bind(kr_plan *p, float *arena)
{
  if (p->arena == arena && p->moves == p->ctx->moves) return;
  p->arena = arena;
  p->moves = p->ctx->moves;
  for (size_t i = 0; i < p->n; i++) {
    step *s = &p->steps[i];
    kr_node *nd = s->node;
    if (nd->op == KR_OP_CONST || nd->op == KR_OP_VARIABLE) {
      s->y = KR_DATA(nd->value);
    } else if (s->alias >= 0) {
      s->y = p->steps[s->alias].y;   /* set already: the alias comes later in the order */
    } else {
      s->y = s->gend && p->group_mem ? p->group_mem + (s->yoff - p->group_off) : arena + s->yoff;
      s->aux = s->auxsize ? arena + s->auxoff : NULL;
      s->scratch = s->scrsize ? arena + s->scroff : NULL;
    }
  }
  for (size_t i = 0; i < p->n; i++) {
    step *s = &p->steps[i];
    for (int k = 0; k < s->node->nin; k++) {
      const step *src = &p->steps[p->xsrc[s->first + k]];
      p->x[s->first + k] = src->y;
      p->xaux[s->first + k] = src->aux;
    }
  }
}

static kr_plan *plan_build(kr_ctx *ctx, int nout, kr_node *const *outputs, int nin, kr_node *const *inputs,
                           int64_t max_batch, int training, int own, int group_from)
{
  if (max_batch < 1) max_batch = 1;
  kr_plan *p = kr_calloc(ctx, sizeof *p);
  if (!p) return NULL;
  p->ctx = ctx;
  p->training = training;
  p->max_batch = max_batch;
  p->batch = max_batch;
  p->nout = nout;
  p->nin = nin;
  size_t n = 0;
  kr_node **order = kr_topo_order(ctx, nout, outputs, &n);
  long *last = NULL;
  char *grouped = NULL;
  freelist fl = {NULL, 0, 0, 0, 0, 0, ctx};
  if (!order) goto fail;
  p->steps = kr_calloc(ctx, (n ? n : 1) * sizeof *p->steps);
  p->out_step = kr_malloc(ctx, (size_t)(nout ? nout : 1) * sizeof *p->out_step);
  p->in_step = kr_malloc(ctx, (size_t)(nin ? nin : 1) * sizeof *p->in_step);
  last = kr_malloc(ctx, (n ? n : 1) * sizeof *last);
  grouped = kr_calloc(ctx, n ? n : 1);
  if (!p->steps || !p->out_step || !p->in_step || !last || !grouped) goto fail;
  size_t total_in = 0;
  for (size_t i = 0; i < n; i++)
    if (kr_shape_has_none(&order[i]->shape)) {
      char a[128];
      kr_fail(ctx, KR_ESHAPE, "plan: %s node of shape %s has a None (variable-length) axis; a plan needs every "
              "length known (a model resolves None axes from the data it is given)", kr_op_name(order[i]->op),
              kr_shape_str(&order[i]->shape, a, sizeof a));
      goto fail;
    }
  for (size_t i = 0; i < n; i++) {
    p->steps[i].node = order[i];
    kr_node_retain(order[i]);
    p->steps[i].input_index = -1;
    p->steps[i].first = (int)total_in;
    total_in += (size_t)order[i]->nin;
    last[i] = (long)i;
  }
  p->n = n;
  if (smap_build(p)) goto fail;
  p->x = kr_calloc(ctx, (total_in ? total_in : 1) * sizeof *p->x);
  p->xs = kr_calloc(ctx, (total_in ? total_in : 1) * sizeof *p->xs);
  p->xaux = kr_calloc(ctx, (total_in ? total_in : 1) * sizeof *p->xaux);
  p->xval = kr_calloc(ctx, (total_in ? total_in : 1) * sizeof *p->xval);
  p->xsrc = kr_calloc(ctx, (total_in ? total_in : 1) * sizeof *p->xsrc);
  if (!p->x || !p->xs || !p->xaux || !p->xval || !p->xsrc) goto fail;

  /* inputs: each placeholder in the graph must be one of the given inputs */
  for (int k = 0; k < nin; k++) {
    long s = find_step(p, inputs[k], n);
    p->in_step[k] = s >= 0 ? (size_t)s : (size_t)-1;
    if (s >= 0) {
      if (p->steps[s].input_index >= 0) {
        kr_fail(ctx, KR_EARG, "plan: input %d is given twice", k + 1);
        goto fail;
      }
      p->steps[s].input_index = k;
    }
  }
  for (size_t i = 0; i < n; i++)
    if (order[i]->op == KR_OP_INPUT && p->steps[i].input_index < 0) {
      char b[96];
      kr_fail(ctx, KR_EARG, "graph disconnected: a value of shape %s depends on an input that was not given",
              kr_shape_str(&order[i]->shape, b, sizeof b));
      goto fail;
    }
  for (int k = 0; k < nout; k++) p->out_step[k] = (size_t)find_step(p, outputs[k], n);

  /* last use of every step */
  for (size_t i = 0; i < n; i++) {
    kr_node *nd = order[i];
    for (int k = 0; k < nd->nin; k++) {
      long s = find_step(p, nd->in[k], i);
      KR_ASSERT(s >= 0);
      if ((long)i > last[s]) last[s] = (long)i;
    }
  }
  for (int k = 0; k < nout; k++) last[p->out_step[k]] = (long)n;       /* outputs live on */
  for (int k = 0; k < nin; k++)
    if (p->in_step[k] != (size_t)-1) last[p->in_step[k]] = (long)n;    /* inputs too */
  /* aliases: a reshape (or an inference-time dropout) shares its input's
  ** buffer, which then lives as long as the alias's last user */
  for (size_t i = 0; i < n; i++) {
    unsigned fl = kr_ops[order[i]->op].flags;
    p->steps[i].alias = -1;
    if ((fl & KR_F_ALIAS) || ((fl & KR_F_ALIAS_INFER) && !training && !order[i]->attr.i[KR_DROPOUT_ALWAYS])) {
      long j = find_step(p, order[i]->in[0], i);
      while (p->steps[j].alias >= 0) j = p->steps[j].alias;
      p->steps[i].alias = j;
    }
  }
  if (!training)
    for (size_t i = 0; i < n; i++)
      if (plan_pack(p, i, max_batch)) goto nomem;
  for (size_t i = n; i-- > 0;) {
    long j = p->steps[i].alias;
    if (j >= 0 && last[i] > last[j]) last[j] = last[i];
  }
  /* grouped outputs (an alias's: the buffer it shares) get the region at the
  ** end, in the order the steps compute them; those that are a variable or
  ** a constant have no buffer to place */
  for (int k = group_from >= 0 ? group_from : nout; k < nout; k++) {
    long j = (long)p->out_step[k];
    while (p->steps[j].alias >= 0) j = p->steps[j].alias;
    int op = order[j]->op;
    if (op != KR_OP_CONST && op != KR_OP_VARIABLE && op != KR_OP_INPUT) grouped[j] = 1;
  }

  /* placement: the placeholders first, since they are filled before the run
  ** starts and must not share memory with anything computed in it */
  for (size_t i = 0; i < n; i++) {
    step *s = &p->steps[i];
    if (s->node->op != KR_OP_INPUT) continue;
    kr_shape c = kr_concrete(&s->node->shape, max_batch);
    s->ysize = round_up((size_t)kr_numel(&c));
    if (fl_alloc(&fl, s->ysize, &s->yoff)) goto nomem;
  }
  for (size_t i = 0; i < n; i++) {
    step *s = &p->steps[i];
    kr_node *nd = s->node;
    const kr_opinfo *info = &kr_ops[nd->op];
    if (nd->op == KR_OP_CONST || nd->op == KR_OP_VARIABLE || nd->op == KR_OP_INPUT) continue;
    if (s->alias >= 0) goto release_inputs;
    kr_shape c = kr_concrete(&nd->shape, max_batch);
    s->ysize = round_up((size_t)kr_numel(&c));
    s->auxsize = info->aux ? round_up(info->aux(nd, max_batch)) : 0;
    s->scrsize = info->scratch ? round_up(info->scratch(nd, max_batch)) : 0;
    if (is_rows_act(s->act)) s->scrsize = round_up((size_t)kr_numel(&c));   /* the products before softmax */
    if ((!grouped[i] && fl_alloc(&fl, s->ysize, &s->yoff)) || fl_alloc(&fl, s->auxsize, &s->auxoff) ||
        fl_alloc(&fl, s->scrsize, &s->scroff))
      goto nomem;
    if (fl_free(&fl, s->scroff, s->scrsize)) goto nomem;
  release_inputs:
    /* inputs whose last use is this step */
    for (int k = 0; k < nd->nin; k++) {
      long j = find_step(p, nd->in[k], i);
      int dup = 0;
      for (int m = 0; m < k; m++)
        if (nd->in[m] == nd->in[k]) dup = 1;
      if (!dup && last[j] == (long)i && p->steps[j].ysize && !grouped[j]) {
        if (fl_free(&fl, p->steps[j].yoff, p->steps[j].ysize) ||
            fl_free(&fl, p->steps[j].auxoff, p->steps[j].auxsize))
          goto nomem;
      }
    }
    if (last[i] == (long)i && s->alias < 0) { /* never used: free at once (only dead ends) */
      if (fl_free(&fl, s->yoff, s->ysize) || fl_free(&fl, s->auxoff, s->auxsize)) goto nomem;
    }
  }
  p->group_off = fl.high;
  for (size_t i = 0; i < n; i++)
    if (grouped[i]) {
      p->steps[i].yoff = p->group_off + p->group_floats;
      p->group_floats += p->steps[i].ysize;
      p->steps[i].gend = p->group_floats;
    }
  p->arena_floats = fl.high + p->group_floats;
  p->live_floats = fl.peak + p->group_floats;
  for (size_t i = 0; i < n; i++) {
    step *s = &p->steps[i];
    if (s->node->value) s->ys = s->node->value->shape;
    else s->ys = kr_concrete(&s->node->shape, max_batch);
    for (int k = 0; k < s->node->nin; k++) {
      long j = find_step(p, s->node->in[k], i);
      p->xsrc[s->first + k] = (size_t)j;
      p->xs[s->first + k] = &p->steps[j].ys;
      p->xval[s->first + k] = p->steps[j].node->value;
    }
  }
  if (own) {
    float *a = kr_calloc(ctx, (fl.high ? fl.high : 1) * sizeof(float));
    if (!a) goto fail;
    p->own = 1;
    kr_plan_bind(p, a);
  }
  kr_free(ctx, fl.b);
  kr_free(ctx, last);
  kr_free(ctx, grouped);
  kr_free(ctx, order);
  kr_free(ctx, p->smap);
  p->smap = NULL;
  p->smapcap = 0;
  return p;
nomem:
  kr_fail(ctx, KR_EMEM, "out of memory while planning");
fail:
  kr_free(ctx, fl.b);
  kr_free(ctx, last);
  kr_free(ctx, grouped);
  kr_free(ctx, order);
  kr_plan_free(p);
  return NULL;
}

kr_plan *kr_plan_new(kr_ctx *ctx, int nout, kr_node *const *outputs, int nin,
                     kr_node *const *inputs, int64_t max_batch, int training)
{
  return plan_build(ctx, nout, outputs, nin, inputs, max_batch, training, 1, -1);
}

kr_plan *kr_plan_new_unbound(kr_ctx *ctx, int nout, kr_node *const *outputs, int nin,
                             kr_node *const *inputs, int64_t max_batch, int training)
{
  return plan_build(ctx, nout, outputs, nin, inputs, max_batch, training, 0, -1);
}

kr_plan *kr_plan_new_grouped(kr_ctx *ctx, int nout, kr_node *const *outputs, int nin,
                             kr_node *const *inputs, int64_t max_batch, int training, int group_from)
{
  return plan_build(ctx, nout, outputs, nin, inputs, max_batch, training, 0, group_from);
}

void kr_plan_bind_group(kr_plan *p, float *mem)
{
  if (p->group_mem == mem) return;
  p->group_mem = mem;
  float *arena = p->arena;
  if (!arena) return;
  p->arena = NULL;   /* bind again: the grouped outputs' pointers move */
  kr_plan_bind(p, arena);
}

float *kr_plan_group(const kr_plan *p, size_t *nfloats)
{
  *nfloats = p->arena ? p->group_floats : 0;
  if (!p->arena) return NULL;
  return p->group_mem ? p->group_mem : p->arena + p->group_off;
}

int64_t kr_plan_max_batch(const kr_plan *p) { return p->max_batch; }
size_t kr_plan_live_bytes(const kr_plan *p) { return p->live_floats * sizeof(float); }
size_t kr_plan_arena_bytes(const kr_plan *p) { return p->arena_floats * sizeof(float); }

float *kr_plan_input(kr_plan *p, int i)
{
  if (i < 0 || i >= p->nin || p->in_step[i] == (size_t)-1 || !p->arena) return NULL;
  return p->steps[p->in_step[i]].y;
}

const float *kr_plan_output(const kr_plan *p, int i) { return p->steps[p->out_step[i]].y; }

kr_shape kr_plan_output_shape(const kr_plan *p, int i, int64_t batch)
{
  return kr_concrete(&p->steps[p->out_step[i]].node->shape, batch);
}

/* ---- running ---- */

typedef struct act_call {
  kr_ctx *ctx;
  const kr_node *act;
} act_call;

/* the activation op's forward kernel from x to y, both of shape sh */
static void act_forward(const act_call *a, const float *x, float *y, const kr_shape *sh)
{
  const float *xs[1] = {x};
  const kr_shape *ss[1] = {sh};
  kr_exec e;
  memset(&e, 0, sizeof e);
  e.ctx = a->ctx;
  e.node = a->act;
  e.y = y;
  e.ys = sh;
  e.nin = 1;
  e.x = xs;
  e.xs = ss;
  kr_ops[a->act->op].forward(&e);
}

/* the activation op's kernel on a piece of a row */
static void act_map(void *ud, const float *x, float *y, int64_t n)
{
  kr_shape sh;
  memset(&sh, 0, sizeof sh);
  sh.ndim = 1;
  sh.dim[0] = n;
  act_forward(ud, x, y, &sh);
}

/* ... on whole rows (softmax over the last axis) */
static void act_rows(void *ud, const float *x, float *y, int64_t rows, int64_t n)
{
  const act_call *a = ud;
  kr_shape sh;
  memset(&sh, 0, sizeof sh);
  sh.ndim = a->act->shape.ndim;
  for (int k = 0; k < sh.ndim; k++) sh.dim[k] = 1;
  sh.dim[sh.ndim - 2] = rows;
  sh.dim[sh.ndim - 1] = n;
  act_forward(a, x, y, &sh);
}

static void run_packed(kr_plan *p, step *s)
{
  const kr_shape *xs = p->xs[s->first];
  const kr_gemm_pack *pk = s->pk;
  int64_t M = pk->K ? kr_numel(xs) / pk->K : 0;
  act_call a = {p->ctx, s->act};
  kr_gemm_epi epi;
  memset(&epi, 0, sizeof epi);
  const kr_node *act = s->act;
  if (act && act->op == KR_OP_RELU && act->attr.f[KR_RELU_ALPHA] == 0 && !(act->attr.f[KR_RELU_MAX] > 0)) {
    epi.relu = 1;
  } else if (is_rows_act(act)) {
    epi.rows = act_rows;
    epi.pre = s->scratch;
  } else if (act) {
    epi.map = act_map;
  }
  epi.ud = &a;
  if (M == 0) return;
  if (pk->K == 0) {
    /* no products: the bias alone (K = 0 x N weights), through the same epilogue */
    static const float none[1] = {0.0f};
    kr_gemm_packed(pk, none, M, 0, s->y, pk->N, &epi, 1);
    return;
  }
  kr_gemm_packed(pk, p->x[s->first], M, pk->K, s->y, pk->N, &epi, kr_get_num_threads(p->ctx));
}

size_t kr_plan_group_ends(const kr_plan *p, size_t *ends, size_t cap)
{
  size_t k = 0;
  for (size_t i = 0; i < p->n; i++)
    if (p->steps[i].gend) {
      if (k < cap) ends[k] = p->steps[i].gend;
      k++;
    }
  return k;
}

int kr_plan_run(kr_plan *p, int64_t batch) { return kr_plan_run_hooked(p, batch, NULL, NULL); }

int kr_plan_run_hooked(kr_plan *p, int64_t batch, kr_plan_group_hook hook, void *ud)
{
  if (!p->arena) return kr_fail(p->ctx, KR_EARG, "plan: no arena bound (kr_plan_bind)");
  if (p->moves != p->ctx->moves) kr_plan_bind(p, p->arena);   /* a weight's storage moved */
  if (batch < 1 || batch > p->max_batch)
    return kr_fail(p->ctx, KR_EARG, "plan: batch %lld outside 1..%lld", (long long)batch,
                   (long long)p->max_batch);
  if (batch != p->batch) {
    for (size_t i = 0; i < p->n; i++)
      if (p->steps[i].node->value == NULL) p->steps[i].ys = kr_concrete(&p->steps[i].node->shape, batch);
    p->batch = batch;
  }
  kr_exec e;
  e.ctx = p->ctx;
  e.training = p->training;
  for (size_t i = 0; i < p->n; i++) {
    step *s = &p->steps[i];
    const kr_opinfo *info = &kr_ops[s->node->op];
    if (s->pk) {
      /* weights written since they were packed: pack them again */
      const kr_node *nd = s->node;
      if (nd->in[1]->value->st->version != s->wver ||
          (nd->op == KR_OP_LINEAR && nd->in[2]->value->st->version != s->bver))
        pack_step(s);
      run_packed(p, s);
    } else if (info->forward && s->alias < 0) {   /* not a leaf or an alias */
      e.node = s->node;
      e.y = s->y;
      e.aux = s->aux;
      e.scratch = s->scratch;
      e.ys = &s->ys;
      e.nin = s->node->nin;
      e.x = &p->x[s->first];
      e.xs = &p->xs[s->first];
      e.xaux = &p->xaux[s->first];
      e.xval = &p->xval[s->first];
      int st = info->forward(&e);
      if (st != KR_OK) return st;
      if (hook && s->gend) hook(ud, s->gend);
    }
    if (p->progress) atomic_store_explicit(p->progress, p->progress_base + i + 1, memory_order_release);
  }
  return KR_OK;
}

size_t kr_plan_steps(const kr_plan *p) { return p->n; }

size_t kr_plan_output_step(const kr_plan *p, int i) { return p->out_step[i]; }

size_t kr_plan_last_read(const kr_plan *p, const kr_node *n)
{
  size_t last = (size_t)-1;
  for (size_t i = 0; i < p->n; i++) {
    const step *s = &p->steps[i];
    if (s->node == n && last == (size_t)-1) last = i;
    for (int k = 0; k < s->node->nin; k++)
      if (p->steps[p->xsrc[s->first + k]].node == n) last = i;
  }
  return last;
}

void kr_plan_set_progress(kr_plan *p, void *word, uint64_t base)
{
  p->progress = word;
  p->progress_base = base;
}

/* ---- one-off evaluation of constant graphs ---- */

kr_tensor *kr_eval(kr_ctx *ctx, kr_node *n)
{
  if (kr_is_batched(&n->shape))
    return kr_fail(ctx, KR_EARG, "cannot evaluate a symbolic tensor with a batch axis: "
                                 "it depends on an Input"), NULL;
  kr_plan *p = kr_plan_new(ctx, 1, &n, 0, NULL, 1, 0);
  if (!p) return NULL;
  kr_tensor *t = NULL;
  if (kr_plan_run(p, 1) == KR_OK) {
    t = kr_tensor_new(ctx, &n->shape);
    if (t) memcpy(KR_DATA(t), kr_plan_output(p, 0), (size_t)kr_numel(&n->shape) * sizeof(float));
  }
  kr_plan_free(p);
  return t;
}
