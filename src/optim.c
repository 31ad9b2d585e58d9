/*
** optim.c -- the Keras 2.2.4 optimizers: SGD, RMSprop, Adagrad, Adadelta,
** Adam (amsgrad), Adamax, Nadam, with clipnorm/clipvalue and lr decay.
** Knows nothing of Lua; the Lua layer fills the Keras defaults into
** kr_optim_cfg (only epsilon <= 0 is defaulted here, to 1e-7).
**
** Numbers: weights, gradients and slots are float32 and the per-element
** loops run in float32; per-step scalars (decayed lr, bias corrections, the
** Nadam momentum schedule) are computed in double and rounded once.
**
** Rules shared by all kinds (keras/optimizers.py [2.2.4]):
**   - gradients are clipped first: clipnorm (global norm over every gradient
**     of the step: g *= clipnorm/norm when norm >= clipnorm), then clipvalue
**     (g = clamp(g, -clipvalue, clipvalue)). Clipping is done IN PLACE in the
**     caller's gradient buffers (they are scratch, refilled every step).
**   - decay: lr_t = lr / (1 + decay*iterations) with the iteration count
**     before the increment; applied when decay > 0, by every kind but Nadam
**     (Keras 2.2.4 Nadam has no decay).
**   - iterations counts steps (starts at 0, +1 after each kr_optim_step).
**
** Slots (kr_optim_slot): for each slot kind, for each bound var, in this
** order, which is Keras 2.2.4's `optimizer.weights` without `iterations`:
**   SGD       moments                          (v, shape of the var)
**   RMSprop   accumulators                     (a)
**   Adagrad   accumulators                     (a)
**   Adadelta  accumulators, delta_accumulators (a, d)
**   Adam      ms, vs, vhats                    (vhats have shape (1,) unless
**                                              amsgrad, as in Keras)
**   Adamax    ms, us
**   Nadam     ms, vs
** Keras saves [iterations] + slots for SGD, Adam, Adamax and Nadam, and only
** the slots for RMSprop, Adagrad and Adadelta.
**
** Fixed at creation / bind: the kind is taken from cfg at kr_optim_new and
** amsgrad at kr_optim_bind (it decides the vhat shapes); changing them later
** through kr_optim_config has no effect. Everything else in the config is
** read at every step.
**
** Nadam's m_schedule (a running product of momentum caches, not a Keras
** weight) is kept in double. kr_optim_set_iterations recomputes it from the
** iteration count, so training resumed from a saved model continues the
** schedule (Keras 2.2.4 itself would restart it at 1 after loading).
*/
#include "kr.h"
#include "kernels/kernels.h"
#include "kernels/threadpool.h"

#include <math.h>
#include <string.h>

struct kr_optim {
  kr_ctx *ctx;
  kr_optim_cfg cfg;
  int kind;             /* cfg.kind at kr_optim_new */
  int amsgrad;          /* cfg.amsgrad at kr_optim_bind */
  int64_t iterations;
  double m_schedule;    /* Nadam */
  int nvars;
  kr_tensor **vars;     /* one reference each */
  int nslots;
  kr_tensor **slots;    /* nslots = slot kinds * nvars */
  kr_constraint *cons;  /* NULL until kr_optim_constrain, then nvars (KR_CONSTRAINT_NONE: none) */
  int ncons;            /* how many are not NONE */
};

static const char *const kind_names[KR_OPTIM_COUNT] = {
  "SGD", "RMSprop", "Adagrad", "Adadelta", "Adam", "Adamax", "Nadam"
};

static int slot_kinds(int kind)
{
  switch (kind) {
  case KR_ADADELTA: case KR_ADAMAX: case KR_NADAM: return 2;
  case KR_ADAM: return 3;
  default: return 1;
  }
}

/* ---- the per-element updates: p (weights), g (gradients), slots; n floats.
** Built for AVX-512, AVX2 and plain x86-64 (VEC_CLONES): the same bits on
** each, since C11 mode contracts nothing into FMAs and the square root and
** the division are exact to the rounding in every width ---- */

/* Each update is written once (UPDATE_KERNEL), as the loop body over gi,
** the gradient of element i, and built twice: NAME reads gi = g[i];
** NAME_sum2 reads two segments of the shared gradient region and scales
** their sum as it goes, gi = (g0[i] + g1[i]) * s, the same bits as summing
** into a buffer first (C11 contracts nothing, and times 1 is exact). Two
** ranks on a host is the usual distributed step (train.c): one loop streaming
** its four arrays at once ran in about two thirds of the time of a pass
** summing into a buffer and a pass updating from it (measured). */
#define UPDATE_KERNEL(NAME, BODY, ...)                                                                  \
  VEC_CLONES static void NAME(__VA_ARGS__, const float *restrict g, size_t n)                            \
  {                                                                                                      \
    for (size_t i = 0; i < n; i++) {                                                                     \
      const float gi = g[i];                                                                             \
      BODY                                                                                               \
    }                                                                                                    \
  }                                                                                                      \
  VEC_CLONES static void NAME##_sum2(__VA_ARGS__, const float *restrict g0, const float *restrict g1,    \
                                     float s, size_t n)                                                  \
  {                                                                                                      \
    for (size_t i = 0; i < n; i++) {                                                                     \
      const float gi = (g0[i] + g1[i]) * s;                                                              \
      BODY                                                                                               \
    }                                                                                                    \
  }

UPDATE_KERNEL(sgd_update, {
  float vi = mom * v[i] - lr * gi;
  v[i] = vi;
  p[i] = p[i] + vi;
}, float *restrict p, float *restrict v, float lr, float mom)

UPDATE_KERNEL(nesterov_update, {
  float vi = mom * v[i] - lr * gi;
  v[i] = vi;
  p[i] = p[i] + mom * vi - lr * gi;
}, float *restrict p, float *restrict v, float lr, float mom)

/* RMSprop: c = 1 - rho, computed in double by the caller */
UPDATE_KERNEL(rms_update, {
  float ai = rho * a[i] + c * (gi * gi);
  a[i] = ai;
  p[i] = p[i] - lr * gi / (sqrtf(ai) + eps);
}, float *restrict p, float *restrict a, float lr, float rho, float c, float eps)

UPDATE_KERNEL(adagrad_update, {
  float ai = a[i] + gi * gi;
  a[i] = ai;
  p[i] = p[i] - lr * gi / (sqrtf(ai) + eps);
}, float *restrict p, float *restrict a, float lr, float eps)

UPDATE_KERNEL(adadelta_update, {
  float ai = rho * a[i] + c * (gi * gi);
  float u = gi * sqrtf(d[i] + eps) / sqrtf(ai + eps);
  a[i] = ai;
  p[i] = p[i] - lr * u;
  d[i] = rho * d[i] + c * (u * u);
}, float *restrict p, float *restrict a, float *restrict d, float lr, float rho, float c, float eps)

/* Adam, AMSGrad, Adamax, Nadam: b1, c1, b2, c2 = beta_1, 1 - beta_1, beta_2, 1 - beta_2 */
/* Adam's and Nadam's moments at i, stored back into m and v and kept in MI, VI */
#define ADAM_MOMENTS(MI, VI)                      \
  float MI = b1 * m[i] + c1 * gi;                 \
  float VI = b2 * v[i] + c2 * (gi * gi);          \
  m[i] = MI;                                      \
  v[i] = VI

UPDATE_KERNEL(adam_update, {
  ADAM_MOMENTS(mi, vi);
  p[i] = p[i] - lr_t * mi / (sqrtf(vi) + eps);
}, float *restrict p, float *restrict m, float *restrict v, float lr_t, float b1, float c1, float b2, float c2,
   float eps)

UPDATE_KERNEL(amsgrad_update, {
  ADAM_MOMENTS(mi, vi);
  float hi = vh[i] > vi ? vh[i] : vi;
  vh[i] = hi;
  p[i] = p[i] - lr_t * mi / (sqrtf(hi) + eps);
}, float *restrict p, float *restrict m, float *restrict v, float *restrict vh, float lr_t, float b1, float c1,
   float b2, float c2, float eps)

UPDATE_KERNEL(adamax_update, {
  float mi = b1 * m[i] + c1 * gi;
  float bu = b2 * u[i];
  float ag = fabsf(gi);
  float ui = bu > ag ? bu : ag;      /* NaN in g propagates, as in K.maximum */
  m[i] = mi;
  u[i] = ui;
  p[i] = p[i] - lr_t * mi / (ui + eps);
}, float *restrict p, float *restrict m, float *restrict u, float lr_t, float b1, float c1, float b2, float eps)

/* m_bar = cg*g + cm*m_t; v' = cv*v_t; p -= lr*m_bar/(sqrt(v') + eps) */
UPDATE_KERNEL(nadam_update, {
  ADAM_MOMENTS(mi, vi);
  p[i] = p[i] - lr * (cg * gi + cm * mi) / (sqrtf(cv * vi) + eps);
}, float *restrict p, float *restrict m, float *restrict v, float lr, float b1, float c1, float b2, float c2,
   float cg, float cm, float cv, float eps)

/* ---- gradient clipping (in place) ---- */

static void clip_grads(const kr_optim *o, float *const *grads)
{
  double cn = o->cfg.clipnorm, cv = o->cfg.clipvalue;
  if (cn > 0) {
    double ss = 0;
    for (int i = 0; i < o->nvars; i++) {
      const float *g = grads[i];
      size_t n = (size_t)kr_tensor_numel(o->vars[i]);
      for (size_t j = 0; j < n; j++) ss += (double)g[j] * (double)g[j];
    }
    double norm = sqrt(ss);
    if (norm >= cn) {
      float s = (float)(cn / norm);
      for (int i = 0; i < o->nvars; i++) {
        float *restrict g = grads[i];
        size_t n = (size_t)kr_tensor_numel(o->vars[i]);
        for (size_t j = 0; j < n; j++) g[j] *= s;
      }
    }
  }
  if (cv > 0) {
    float hi = (float)cv, lo = -(float)cv;
    for (int i = 0; i < o->nvars; i++) {
      float *restrict g = grads[i];
      size_t n = (size_t)kr_tensor_numel(o->vars[i]);
      for (size_t j = 0; j < n; j++) {
        float x = g[j] < lo ? lo : g[j];
        g[j] = x > hi ? hi : x;
      }
    }
  }
}

/* ---- Nadam momentum schedule ---- */

static double momentum_cache(const kr_optim_cfg *c, double t)
{
  return c->beta_1 * (1.0 - 0.5 * pow(0.96, t * c->schedule_decay));
}

/* m_schedule after `it` steps: the product of momentum_cache(t), t = 1..it.
** Stops early once the product no longer changes (it underflows to 0 after a
** few thousand steps with the usual beta_1) or is no longer finite. */
static double m_schedule_at(const kr_optim_cfg *c, int64_t it)
{
  double ms = 1.0;
  for (int64_t t = 1; t <= it; t++) {
    double next = ms * momentum_cache(c, (double)t);
    if (next == ms || !isfinite(next)) return next;
    ms = next;
  }
  return ms;
}

/* ---- the API ---- */

kr_optim *kr_optim_new(kr_ctx *ctx, const kr_optim_cfg *cfg)
{
  if (!cfg) return kr_fail(ctx, KR_EARG, "optimizer: no configuration given"), NULL;
  if (cfg->kind < 0 || cfg->kind >= KR_OPTIM_COUNT)
    return kr_fail(ctx, KR_EARG, "optimizer: unknown kind %d", cfg->kind), NULL;
  const struct { const char *name; double v; } num[] = {
    {"lr", cfg->lr}, {"momentum", cfg->momentum}, {"decay", cfg->decay}, {"rho", cfg->rho},
    {"epsilon", cfg->epsilon}, {"beta_1", cfg->beta_1}, {"beta_2", cfg->beta_2},
    {"schedule_decay", cfg->schedule_decay}, {"clipnorm", cfg->clipnorm},
    {"clipvalue", cfg->clipvalue},
  };
  for (size_t i = 0; i < sizeof num / sizeof num[0]; i++)
    if (!isfinite(num[i].v))
      return kr_fail(ctx, KR_EARG, "%s: %s must be a finite number, got %g",
                     kind_names[cfg->kind], num[i].name, num[i].v), NULL;
  kr_optim *o = kr_calloc(ctx, sizeof *o);
  if (!o) return NULL;
  o->ctx = ctx;
  o->cfg = *cfg;
  o->kind = cfg->kind;
  o->amsgrad = cfg->amsgrad != 0;
  o->m_schedule = 1.0;
  return o;
}

static void unbind(kr_optim *o)
{
  for (int i = 0; i < o->nslots; i++) kr_tensor_release(o->slots[i]);
  for (int i = 0; i < o->nvars; i++) kr_tensor_release(o->vars[i]);
  kr_free(o->ctx, o->slots);
  kr_free(o->ctx, o->vars);
  kr_free(o->ctx, o->cons);
  o->slots = NULL;
  o->vars = NULL;
  o->cons = NULL;
  o->ncons = 0;
  o->nslots = o->nvars = 0;
}

void kr_optim_free(kr_optim *o)
{
  if (!o) return;
  unbind(o);
  kr_free(o->ctx, o);
}

kr_optim_cfg *kr_optim_config(kr_optim *o) { return &o->cfg; }

int64_t kr_optim_iterations(const kr_optim *o) { return o->iterations; }

void kr_optim_set_iterations(kr_optim *o, int64_t it)
{
  if (it < 0) it = 0;
  o->iterations = it;
  o->m_schedule = o->kind == KR_NADAM ? m_schedule_at(&o->cfg, it) : 1.0;
}

/* Frees the old slots first; on failure the optimizer is left unbound. */
int kr_optim_bound_to(const kr_optim *o, int nvars, kr_tensor *const *vars)
{
  if (nvars != o->nvars || nvars == 0) return 0;
  for (int i = 0; i < nvars; i++)
    if (o->vars[i] != vars[i]) return 0;
  return 1;
}

int kr_optim_bind(kr_optim *o, int nvars, kr_tensor *const *vars)
{
  kr_ctx *ctx = o->ctx;
  const char *name = kind_names[o->kind];
  if (nvars < 0 || (nvars > 0 && !vars))
    return kr_fail(ctx, KR_EARG, "%s: bad variable list (%d variables)", name, nvars);
  for (int i = 0; i < nvars; i++)
    if (!vars[i]) return kr_fail(ctx, KR_EARG, "%s: variable %d is missing", name, i + 1);
  unbind(o);
  o->amsgrad = o->cfg.amsgrad != 0;
  if (nvars == 0) return KR_OK;

  int nk = slot_kinds(o->kind);
  o->vars = kr_malloc(ctx, (size_t)nvars * sizeof *o->vars);
  o->slots = kr_calloc(ctx, (size_t)nk * (size_t)nvars * sizeof *o->slots);
  if (!o->vars || !o->slots) {
    kr_free(ctx, o->vars);
    kr_free(ctx, o->slots);
    o->vars = NULL;
    o->slots = NULL;
    return KR_EMEM;
  }
  for (int i = 0; i < nvars; i++) {
    kr_tensor_retain(vars[i]);
    o->vars[i] = vars[i];
  }
  o->nvars = nvars;
  o->nslots = nk * nvars;   /* unbind copes with the NULL entries of a partial bind */
  const int64_t one = 1;
  kr_shape dummy = kr_shape_make(1, &one);
  for (int k = 0; k < nk; k++)
    for (int i = 0; i < nvars; i++) {
      int small = o->kind == KR_ADAM && k == 2 && !o->amsgrad;
      kr_tensor *s = kr_tensor_zeros(ctx, small ? &dummy : &vars[i]->shape);
      if (!s) {
        int code = kr_errcode(ctx);
        unbind(o);
        return code != KR_OK ? code : KR_EMEM;
      }
      o->slots[k * nvars + i] = s;
    }
  return KR_OK;
}

/* the per-step scalars of one kr_optim_step */
typedef struct step_k {
  float flr, feps, lr_t, cg, cm, cv;
  float betas[4];
  float gscale;   /* the gradients' factor (kr_optim_step_scaled), 1: none */
} step_k;

/* the update of var i's elements [lo, hi); g0: the gradient of element lo
** on, or, with g1, the sum of g0's and g1's times s (the _sum2 kernels) */
static void update_part(const kr_optim *o, const step_k *k, const float *g0, const float *g1, float s, int i,
                        size_t lo, size_t hi)
{
  const kr_optim_cfg *c = &o->cfg;
  int nv = o->nvars;
  kr_tensor **sl = o->slots;
  float *p = KR_DATA(o->vars[i]) + lo;
  size_t n = hi - lo;
  const float *b = k->betas;
#define SLOT(j) (KR_DATA(sl[(j) * nv + i]) + lo)
#define UPDATE(NAME, ...) (g1 ? NAME##_sum2(__VA_ARGS__, g0, g1, s, n) : NAME(__VA_ARGS__, g0, n))
  switch (o->kind) {
  case KR_SGD:
    if (c->nesterov) UPDATE(nesterov_update, p, SLOT(0), k->flr, (float)c->momentum);
    else UPDATE(sgd_update, p, SLOT(0), k->flr, (float)c->momentum);
    break;
  case KR_RMSPROP: UPDATE(rms_update, p, SLOT(0), k->flr, (float)c->rho, (float)(1.0 - c->rho), k->feps); break;
  case KR_ADAGRAD: UPDATE(adagrad_update, p, SLOT(0), k->flr, k->feps); break;
  case KR_ADADELTA:
    UPDATE(adadelta_update, p, SLOT(0), SLOT(1), k->flr, (float)c->rho, (float)(1.0 - c->rho), k->feps);
    break;
  case KR_ADAM:
    if (o->amsgrad) UPDATE(amsgrad_update, p, SLOT(0), SLOT(1), SLOT(2), k->lr_t, b[0], b[1], b[2], b[3], k->feps);
    else UPDATE(adam_update, p, SLOT(0), SLOT(1), k->lr_t, b[0], b[1], b[2], b[3], k->feps);
    break;
  case KR_ADAMAX: UPDATE(adamax_update, p, SLOT(0), SLOT(1), k->lr_t, b[0], b[1], b[2], k->feps); break;
  case KR_NADAM:
    UPDATE(nadam_update, p, SLOT(0), SLOT(1), k->flr, b[0], b[1], b[2], b[3], k->cg, k->cm, k->cv, k->feps);
    break;
  default: KR_ASSERT(0);
  }
#undef UPDATE
#undef SLOT
}

/* update_part, with the gradients first multiplied by k->gscale a short
** piece at a time (the piece is still in the cache when it is updated) */
#define SCALE_PIECE 2048
static void update_range(const kr_optim *o, const step_k *k, float *const *grads, int i, size_t lo, size_t hi)
{
  if (k->gscale == 1.0f) {
    update_part(o, k, grads[i] + lo, NULL, 1.0f, i, lo, hi);
    return;
  }
  for (size_t a = lo; a < hi; a += SCALE_PIECE) {
    size_t b = hi - a < SCALE_PIECE ? hi : a + SCALE_PIECE;
    float *restrict g = grads[i];
    float s = k->gscale;
    for (size_t j = a; j < b; j++) g[j] *= s;
    update_part(o, k, grads[i] + a, NULL, 1.0f, i, a, b);
  }
}

/* Every update is element by element, so a large var is split among the
** kernels' workers (kr_parallel) in contiguous ranges: memory-bound loops
** that one core cannot saturate. The result does not depend on the split. */
#define SPLIT_MIN 65536   /* elements below which a var stays on one worker */

typedef struct step_job {
  const kr_optim *o;
  const step_k *k;
  float *const *grads;
} step_job;

static void step_part(void *arg, int t, int T)
{
  const step_job *j = arg;
  for (int i = 0; i < j->o->nvars; i++) {
    size_t n = (size_t)kr_tensor_numel(j->o->vars[i]);
    if (n < SPLIT_MIN) {
      if (i % T == t) update_range(j->o, j->k, j->grads, i, 0, n);
      continue;
    }
    size_t lo = n * (size_t)t / (size_t)T / 16 * 16, hi = t + 1 == T ? n : n * (size_t)(t + 1) / (size_t)T / 16 * 16;
    update_range(j->o, j->k, j->grads, i, lo, hi);
  }
}

/* the step's scalars (decayed lr, bias corrections, Nadam's schedule, which
** it advances) */
/* the step's scalars from the optimizer's state; no change to it (a split
** step computes them for every piece it takes): step_done advances it */
static void step_scalars(const kr_optim *o, step_k *kp, float gscale)
{
  const kr_optim_cfg *c = &o->cfg;
  double eps = c->epsilon > 0 ? c->epsilon : 1e-7;
  double lr = c->lr;
  if (o->kind != KR_NADAM && c->decay > 0) lr /= 1.0 + c->decay * (double)o->iterations;
  double t = (double)o->iterations + 1.0;
  memset(kp, 0, sizeof *kp);
  kp->gscale = gscale;
  kp->flr = (float)lr;
  kp->feps = (float)eps;
  /* beta_1, 1 - beta_1, beta_2, 1 - beta_2: the differences taken in double
  ** (1 - (float)0.999 is off by 1.3e-5 relative) */
  kp->betas[0] = (float)c->beta_1;
  kp->betas[1] = (float)(1.0 - c->beta_1);
  kp->betas[2] = (float)c->beta_2;
  kp->betas[3] = (float)(1.0 - c->beta_2);
  if (o->kind == KR_ADAM) kp->lr_t = (float)(lr * sqrt(1.0 - pow(c->beta_2, t)) / (1.0 - pow(c->beta_1, t)));
  if (o->kind == KR_ADAMAX) kp->lr_t = (float)(lr / (1.0 - pow(c->beta_1, t)));
  if (o->kind == KR_NADAM) {
    double mc_t = momentum_cache(c, t), mc_t1 = momentum_cache(c, t + 1.0);
    double ms_new = o->m_schedule * mc_t, ms_next = ms_new * mc_t1;
    kp->cg = (float)((1.0 - mc_t) / (1.0 - ms_new));
    kp->cm = (float)(mc_t1 / (1.0 - ms_next));
    kp->cv = (float)(1.0 / (1.0 - pow(c->beta_2, t)));
  }
}

/* the step taken: the iteration count, and Nadam's schedule as step_scalars
** used it (the same product in double) */
static void step_done(kr_optim *o)
{
  if (o->kind == KR_NADAM) o->m_schedule = o->m_schedule * momentum_cache(&o->cfg, (double)o->iterations + 1.0);
  o->iterations++;
}

void kr_optim_step(kr_optim *o, float *const *grads) { kr_optim_step_scaled(o, grads, 1.0f); }

void kr_optim_step_scaled(kr_optim *o, float *const *grads, float gscale)
{
  const kr_optim_cfg *c = &o->cfg;
  if (gscale != 1.0f && (c->clipnorm > 0 || c->clipvalue > 0)) {
    /* clipping sees the scaled gradients: scale them all first */
    for (int i = 0; i < o->nvars; i++) {
      float *restrict g = grads[i];
      size_t n = (size_t)kr_tensor_numel(o->vars[i]);
      for (size_t j = 0; j < n; j++) g[j] *= gscale;
    }
    gscale = 1.0f;
  }
  step_k k;
  step_scalars(o, &k, gscale);

  clip_grads(o, grads);

  size_t total = 0;
  for (int i = 0; i < o->nvars; i++) total += (size_t)kr_tensor_numel(o->vars[i]);
  int T = kr_get_num_threads(o->ctx);
  if (T < 1 || total < 2 * SPLIT_MIN) T = 1;
  if (T > 16) T = 16;
  step_job j = {o, &k, grads};
  kr_parallel(T, step_part, &j);
  if (o->ncons > 0)
    for (int i = 0; i < o->nvars; i++)
      if (o->cons[i].kind != KR_CONSTRAINT_NONE) kr_constraint_apply(&o->cons[i], o->vars[i]);
  for (int i = 0; i < o->nvars; i++) kr_tensor_touch(o->vars[i]);   /* packed copies (plan.c) go stale */
  step_done(o);
}

/* ---- the sharded step (keras.distributed on one host, see kr.h) ---- */

int kr_optim_can_shard(const kr_optim *o)
{
  return !(o->cfg.clipnorm > 0) && !(o->cfg.clipvalue > 0) && o->ncons == 0;
}

/* the sum over the segments of floats [off, off + n), times s, into buf */
VEC_CLONES static void sum_scaled(float *restrict buf, float *const *segs, int nseg, size_t off, size_t n, float s)
{
  const float *restrict s0 = segs[0] + off;
  for (size_t j = 0; j < n; j++) buf[j] = s0[j];
  for (int q = 1; q < nseg; q++) {
    const float *restrict sq = segs[q] + off;
    for (size_t j = 0; j < n; j++) buf[j] += sq[j];
  }
  if (s != 1.0f)
    for (size_t j = 0; j < n; j++) buf[j] *= s;
}

/* n floats from src to dst, past the cache where the CPU has streaming
** stores (dst 64-byte aligned): the other ranks read them next, from
** memory, instead of pulling the lines from this core's cache */
#if defined(__GNUC__) && !defined(__clang__) && defined(__x86_64__) && defined(__linux__)
#include <immintrin.h>
__attribute__((target("avx512f"))) static void stream_copy_avx512(float *dst, const float *src, size_t n)
{
  size_t i = 0;
  if (((uintptr_t)dst & 63) == 0)
    for (; i + 16 <= n; i += 16) _mm512_stream_ps(dst + i, _mm512_loadu_ps(src + i));
  for (; i < n; i++) dst[i] = src[i];
}
static void stream_copy(float *dst, const float *src, size_t n)
{
  if (__builtin_cpu_supports("avx512f")) stream_copy_avx512(dst, src, n);
  else memcpy(dst, src, n * sizeof(float));
}
static void stream_fence(void) { _mm_sfence(); }
#else
static void stream_copy(float *dst, const float *src, size_t n) { memcpy(dst, src, n * sizeof(float)); }
static void stream_fence(void) {}
#endif

/* the pieces' elements updated with the sum of the segments (see kr.h) */
static void update_pieces(kr_optim *o, const step_k *k, const kr_optim_piece *pc, int npc, float *const *segs,
                          int nseg, float gscale, float *out)
{
  float buf[SCALE_PIECE];
  /* two segments: read as the update goes, a whole piece at a time (a short
  ** piece at a time where the new weights are copied out, still cached) */
  size_t step = nseg == 2 && !out ? SIZE_MAX : SCALE_PIECE;
  for (int m = 0; m < npc; m++) {
    int i = pc[m].var;
    const float *p = KR_DATA(o->vars[i]);
    for (size_t a = pc[m].lo, b; a < pc[m].hi; a = b) {
      b = pc[m].hi - a < step ? pc[m].hi : a + step;
      size_t off = pc[m].off + (a - pc[m].lo);
      if (nseg == 2) {
        update_part(o, k, segs[0] + off, segs[1] + off, gscale, i, a, b);
      } else {
        sum_scaled(buf, segs, nseg, off, b - a, gscale);
        update_part(o, k, buf, NULL, 1.0f, i, a, b);
      }
      if (out) stream_copy(out + off, p + a, b - a);
    }
  }
  if (out) stream_fence();
}

void kr_optim_step_pieces(kr_optim *o, const kr_optim_piece *pc, int npc, float *const *segs, int nseg,
                          float gscale, float *out, float *const *grads, const int *local, int nlocal)
{
  kr_optim_update_pieces(o, pc, npc, segs, nseg, gscale, out);
  kr_optim_step_finish(o, grads, local, nlocal, gscale);
}

void kr_optim_update_pieces(kr_optim *o, const kr_optim_piece *pc, int npc, float *const *segs, int nseg,
                            float gscale, float *out)
{
  step_k k;
  step_scalars(o, &k, gscale);
  update_pieces(o, &k, pc, npc, segs, nseg, gscale, out);
}

void kr_optim_step_finish(kr_optim *o, float *const *grads, const int *local, int nlocal, float gscale)
{
  step_k k;
  step_scalars(o, &k, gscale);
  for (int m = 0; m < nlocal; m++) {
    int i = local[m];
    update_range(o, &k, grads, i, 0, (size_t)kr_tensor_numel(o->vars[i]));
  }
  step_done(o);
}

int kr_optim_full_slots(const kr_optim *o)
{
  return slot_kinds(o->kind) - (o->kind == KR_ADAM && !o->amsgrad ? 1 : 0);
}

void kr_optim_slots_pieces(kr_optim *o, int kind, const kr_optim_piece *pc, int npc, float *buf, int to_buf)
{
  for (int m = 0; m < npc; m++) {
    float *sl = KR_DATA(o->slots[kind * o->nvars + pc[m].var]) + pc[m].lo;
    size_t n = pc[m].hi - pc[m].lo;
    if (to_buf) memcpy(buf + pc[m].off, sl, n * sizeof(float));
    else memcpy(sl, buf + pc[m].off, n * sizeof(float));
  }
}

/* ---- constraints ---- */

static const char *const constraint_names[KR_CONSTRAINT_COUNT] = {
  "none", "MaxNorm", "NonNeg", "UnitNorm", "MinMaxNorm"
};

int kr_optim_constrain(kr_optim *o, int i, const kr_constraint *c)
{
  kr_ctx *ctx = o->ctx;
  if (i < 0 || i >= o->nvars) return kr_fail(ctx, KR_EARG, "constraint: no variable %d (%d bound)", i + 1, o->nvars);
  if (!c || c->kind < 0 || c->kind >= KR_CONSTRAINT_COUNT)
    return kr_fail(ctx, KR_EARG, "constraint: unknown kind %d", c ? c->kind : -1);
  const char *name = constraint_names[c->kind];
  int nd = o->vars[i]->shape.ndim;
  if (c->kind != KR_CONSTRAINT_NONE && c->kind != KR_CONSTRAINT_NON_NEG) {
    if (c->axes == 0 || (nd < 32 && (c->axes >> nd) != 0))
      return kr_fail(ctx, KR_EARG, "%s: axes mask 0x%x does not fit a variable of rank %d", name, c->axes, nd);
    if (c->kind == KR_CONSTRAINT_MAX_NORM && !(isfinite(c->max_value) && c->max_value >= 0))
      return kr_fail(ctx, KR_EARG, "%s: max_value must be a finite number >= 0, got %g", name, c->max_value);
    if (c->kind == KR_CONSTRAINT_MIN_MAX_NORM &&
        !(isfinite(c->min_value) && isfinite(c->max_value) && c->min_value >= 0 && c->min_value <= c->max_value))
      return kr_fail(ctx, KR_EARG, "%s: need 0 <= min_value <= max_value, got %g and %g", name, c->min_value,
                     c->max_value);
    if (c->kind == KR_CONSTRAINT_MIN_MAX_NORM && !(isfinite(c->rate) && c->rate >= 0 && c->rate <= 1))
      return kr_fail(ctx, KR_EARG, "%s: rate must be in [0, 1], got %g", name, c->rate);
  }
  if (!o->cons) {   /* made at the first constraint (compile time), never in a step */
    if (c->kind == KR_CONSTRAINT_NONE) return KR_OK;
    o->cons = kr_calloc(ctx, (size_t)o->nvars * sizeof *o->cons);
    if (!o->cons) return KR_EMEM;
  }
  int was = o->cons[i].kind != KR_CONSTRAINT_NONE, is = c->kind != KR_CONSTRAINT_NONE;
  o->cons[i] = *c;
  o->ncons += is - was;
  return KR_OK;
}

/* the factor a norm n is multiplied by */
static double norm_factor(const kr_constraint *c, double n)
{
  const double eps = 1e-7;   /* K.epsilon() */
  switch (c->kind) {
  case KR_CONSTRAINT_MAX_NORM: return (n < c->max_value ? n : c->max_value) / (eps + n);
  case KR_CONSTRAINT_UNIT_NORM: return 1.0 / (eps + n);
  default: {
    double d = n < c->min_value ? c->min_value : n > c->max_value ? c->max_value : n;
    return (c->rate * d + (1.0 - c->rate) * n) / (eps + n);
  }
  }
}

/* the offset of element q of a group at base: q counted over the axes
** id[0..ni) (the last fastest) */
static int64_t group_offset(int64_t base, int64_t q, int ni, const int *id, const kr_shape *s, const int64_t *stride)
{
  for (int j = ni - 1; j >= 0; j--) {
    base += q % s->dim[id[j]] * stride[id[j]];
    q /= s->dim[id[j]];
  }
  return base;
}

/* Norm kinds: the var split into groups (one per index of the axes outside
** c->axes), each group's L2 norm taken over the axes in c->axes, in double.
** No allocation: offsets are computed from the shape on the stack. */
void kr_constraint_apply(const kr_constraint *c, kr_tensor *w)
{
  float *p = KR_DATA(w);
  const kr_shape *s = &w->shape;
  int64_t n = kr_tensor_numel(w);
  if (c->kind == KR_CONSTRAINT_NONE || n == 0) return;
  if (c->kind == KR_CONSTRAINT_NON_NEG) {
    for (int64_t e = 0; e < n; e++)
      if (p[e] < 0) p[e] = 0;
    return;
  }
  int nd = s->ndim, od[KR_MAX_DIMS], id[KR_MAX_DIMS], no = 0, ni = 0;
  int64_t stride[KR_MAX_DIMS], nout = 1, nin = 1;
  int64_t st = 1;
  for (int k = nd - 1; k >= 0; k--) {
    stride[k] = st;
    st *= s->dim[k];
  }
  for (int k = 0; k < nd; k++) {
    if ((c->axes >> k) & 1u) {
      id[ni++] = k;
      nin *= s->dim[k];
    } else {
      od[no++] = k;
      nout *= s->dim[k];
    }
  }
  if (nd == 0) nin = 1;
  for (int64_t g = 0; g < nout; g++) {
    int64_t base = 0, r = g;
    for (int j = no - 1; j >= 0; j--) {
      base += r % s->dim[od[j]] * stride[od[j]];
      r /= s->dim[od[j]];
    }
    double ss = 0;
    for (int64_t q = 0; q < nin; q++) {
      int64_t off = group_offset(base, q, ni, id, s, stride);
      ss += (double)p[off] * (double)p[off];
    }
    float f = (float)norm_factor(c, sqrt(ss));
    for (int64_t q = 0; q < nin; q++) p[group_offset(base, q, ni, id, s, stride)] *= f;
  }
}

int kr_optim_nslots(const kr_optim *o) { return o->nslots; }

kr_tensor *kr_optim_slot(kr_optim *o, int i)
{
  return i >= 0 && i < o->nslots ? o->slots[i] : NULL;
}
