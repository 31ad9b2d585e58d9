/*
** test_optim.c -- the optimizers (src/optim.c) against Keras 2.2.4 reference
** trajectories computed in float64 by scripts/fixtures/optim_fixtures.py
** (tests/c/optim_fixtures.h), plus iterations, decay, resuming, slots, no
** allocation per step, argument errors and an allocation-failure sweep.
** Tolerance: |got - want| <= 1e-5 * (1 + |want|) (our loops run in float32).
*/
#include "kr.h"
#include "check.h"
#include "optim_fixtures.h"

#include <stdlib.h>
#include <string.h>

#define TOL 1e-5

static int near(double got, double want) { return fabs(got - want) <= TOL * (1.0 + fabs(want)); }

static kr_tensor *make_var(kr_ctx *ctx, int ndim, const int64_t *dims, const float *data)
{
  kr_shape s = kr_shape_make(ndim, dims);
  kr_tensor *t = kr_tensor_new(ctx, &s);
  if (t) memcpy(KR_DATA(t), data, (size_t)kr_tensor_numel(t) * sizeof(float));
  return t;
}

/* the fixture's two vars, with its initial weights */
static void fixture_vars(kr_ctx *ctx, kr_tensor **vars)
{
  int off = 0;
  for (int v = 0; v < OF_NVARS; v++) {
    vars[v] = make_var(ctx, of_ndim[v], of_dims[v], of_w0 + off);
    off += of_numel[v];
  }
}

static int slots_per_var(int kind)
{
  switch (kind) {
  case KR_ADADELTA: case KR_ADAMAX: case KR_NADAM: return 2;
  case KR_ADAM: return 3;
  default: return 1;
  }
}

/* ---- every case of the fixtures, step by step ---- */

static void test_trajectories(void)
{
  for (int c = 0; c < OF_NCASES; c++) {
    const of_case *fc = &of_cases[c];
    kr_ctx *ctx = kr_ctx_new();
    kr_tensor *vars[OF_NVARS];
    fixture_vars(ctx, vars);
    kr_optim *o = kr_optim_new(ctx, &fc->cfg);
    CHECK_MSG(o != NULL, "%s: %s", fc->name, kr_errmsg(ctx));
    if (!o) continue;
    CHECK(kr_optim_bind(o, OF_NVARS, vars) == KR_OK);
    CHECK(kr_optim_iterations(o) == 0);
    CHECK(kr_optim_nslots(o) == slots_per_var(fc->cfg.kind) * OF_NVARS);

    float gbuf[OF_TOTAL];
    float *grads[OF_NVARS] = {gbuf, gbuf + of_numel[0]};
    size_t mem = kr_mem_in_use(ctx);
    int bad = 0;
    for (int k = 0; k < OF_NSTEPS; k++) {
      memcpy(gbuf, of_grads[k], sizeof gbuf);   /* clipping scales the buffers in place */
      kr_optim_step(o, grads);
      int off = 0;
      for (int v = 0; v < OF_NVARS; v++) {
        const float *p = KR_DATA(vars[v]);
        for (int j = 0; j < of_numel[v]; j++) {
          double want = fc->expect[k][off + j];
          if (!near(p[j], want) && bad++ < 5)
            fprintf(stderr, "%s: step %d, var %d, element %d: got %.9g, want %.9g\n",
                    fc->name, k + 1, v + 1, j, (double)p[j], want);
        }
        off += of_numel[v];
      }
      CHECK_MSG(kr_optim_iterations(o) == k + 1, "%s", fc->name);
      CHECK_MSG(kr_mem_in_use(ctx) == mem, "%s: kr_optim_step allocated", fc->name);
    }
    CHECK_MSG(bad == 0, "%s: %d weights off", fc->name, bad);
    kr_optim_free(o);
    for (int v = 0; v < OF_NVARS; v++) kr_tensor_release(vars[v]);
    CHECK_MSG(kr_mem_in_use(ctx) == 0, "%s: leak", fc->name);
    kr_ctx_free(ctx);
  }
}

/* ---- odd shapes and sizes (vector loops and their tails): every update but
** clipnorm is element-wise, so element j of var v follows fixture element
** (first_v + j) % OF_TOTAL ---- */

static void test_shapes(void)
{
  static const int64_t d0[3] = {7, 11, 13}, d2[1] = {5};
  const int nd[3] = {3, 0, 1};
  const int64_t *dims[3] = {d0, NULL, d2};
  const int n[3] = {7 * 11 * 13, 1, 5};
  int cases = 0;
  for (int c = 0; c < OF_NCASES; c++) {
    const of_case *fc = &of_cases[c];
    if (fc->cfg.clipnorm > 0) continue;
    kr_ctx *ctx = kr_ctx_new();
    kr_tensor *vars[3];
    float *gb[3];
    int first[3], pos = 0;
    for (int v = 0; v < 3; v++) {
      float *w = malloc((size_t)n[v] * sizeof *w);
      gb[v] = malloc((size_t)n[v] * sizeof *gb[v]);
      first[v] = pos;
      for (int j = 0; j < n[v]; j++) w[j] = of_w0[(pos + j) % OF_TOTAL];
      vars[v] = make_var(ctx, nd[v], dims[v], w);
      free(w);
      pos += n[v];
    }
    kr_optim *o = kr_optim_new(ctx, &fc->cfg);
    CHECK(o && kr_optim_bind(o, 3, vars) == KR_OK);
    int bad = 0;
    for (int k = 0; k < OF_NSTEPS; k++) {
      for (int v = 0; v < 3; v++)
        for (int j = 0; j < n[v]; j++) gb[v][j] = of_grads[k][(first[v] + j) % OF_TOTAL];
      kr_optim_step(o, gb);
      for (int v = 0; v < 3; v++)
        for (int j = 0; j < n[v]; j++)
          if (!near(KR_DATA(vars[v])[j], fc->expect[k][(first[v] + j) % OF_TOTAL]) && bad++ < 3)
            fprintf(stderr, "%s (shapes): step %d var %d element %d\n", fc->name, k + 1, v, j);
    }
    CHECK_MSG(bad == 0, "%s: %d weights off", fc->name, bad);
    cases++;
    kr_optim_free(o);
    for (int v = 0; v < 3; v++) {
      kr_tensor_release(vars[v]);
      free(gb[v]);
    }
    CHECK(kr_mem_in_use(ctx) == 0);
    kr_ctx_free(ctx);
  }
  CHECK(cases > 15);
}

/* ---- slots: count, order, shapes, zeros; rebinding ---- */

static const of_case *find_case(const char *name)
{
  for (int c = 0; c < OF_NCASES; c++)
    if (strcmp(of_cases[c].name, name) == 0) return &of_cases[c];
  return NULL;
}

static void test_slots(void)
{
  kr_ctx *ctx = kr_ctx_new();
  kr_tensor *vars[OF_NVARS];
  fixture_vars(ctx, vars);
  size_t base = kr_mem_in_use(ctx);

  for (int ams = 0; ams <= 1; ams++) {
    kr_optim_cfg cfg = find_case("adam")->cfg;
    cfg.amsgrad = ams;
    kr_optim *o = kr_optim_new(ctx, &cfg);
    CHECK(kr_optim_nslots(o) == 0);
    CHECK(kr_optim_slot(o, 0) == NULL);
    CHECK(kr_optim_bind(o, OF_NVARS, vars) == KR_OK);
    CHECK(kr_optim_nslots(o) == 3 * OF_NVARS);
    /* ms, vs, vhats; each kind var after var */
    for (int k = 0; k < 3; k++)
      for (int v = 0; v < OF_NVARS; v++) {
        kr_tensor *s = kr_optim_slot(o, k * OF_NVARS + v);
        CHECK(s != NULL);
        if (!s) continue;
        if (k == 2 && !ams) {
          CHECK(s->shape.ndim == 1 && s->shape.dim[0] == 1);   /* Keras: K.zeros(1) */
        } else {
          CHECK(kr_shape_eq(&s->shape, &vars[v]->shape));
        }
        int zero = 1;
        for (int64_t j = 0; j < kr_tensor_numel(s); j++) zero &= KR_DATA(s)[j] == 0.0f;
        CHECK(zero);
      }
    CHECK(kr_optim_slot(o, 3 * OF_NVARS) == NULL);
    CHECK(kr_optim_slot(o, -1) == NULL);

    /* one step, then m of var 0 is (1 - beta_1) g and v (slot 2) is (1 - beta_2) g^2 */
    float gbuf[OF_TOTAL];
    float *grads[OF_NVARS] = {gbuf, gbuf + of_numel[0]};
    memcpy(gbuf, of_grads[0], sizeof gbuf);
    kr_optim_step(o, grads);
    CHECK_NEAR(KR_DATA(kr_optim_slot(o, 0))[1], 0.1 * of_grads[0][1], 1e-7);
    CHECK_NEAR(KR_DATA(kr_optim_slot(o, OF_NVARS))[0], 0.001 * of_grads[0][0] * of_grads[0][0], 1e-8);

    /* rebinding: fresh zero slots, iterations kept, no leak */
    size_t bound = kr_mem_in_use(ctx);
    CHECK(kr_optim_bind(o, OF_NVARS, vars) == KR_OK);
    CHECK(kr_mem_in_use(ctx) == bound);
    CHECK(KR_DATA(kr_optim_slot(o, 0))[1] == 0.0f);
    CHECK(kr_optim_iterations(o) == 1);
    CHECK(kr_optim_bind(o, 1, vars) == KR_OK);
    CHECK(kr_optim_nslots(o) == 3);
    CHECK(kr_optim_bind(o, 0, NULL) == KR_OK);
    CHECK(kr_optim_nslots(o) == 0);
    kr_optim_step(o, NULL);   /* nothing bound: only counts */
    CHECK(kr_optim_iterations(o) == 2);
    kr_optim_free(o);
    CHECK(kr_mem_in_use(ctx) == base);
  }

  static const struct { int kind, per_var; } kinds[] = {
    {KR_SGD, 1}, {KR_RMSPROP, 1}, {KR_ADAGRAD, 1}, {KR_ADADELTA, 2},
    {KR_ADAM, 3}, {KR_ADAMAX, 2}, {KR_NADAM, 2},
  };
  for (size_t i = 0; i < sizeof kinds / sizeof kinds[0]; i++) {
    kr_optim_cfg cfg = {.kind = kinds[i].kind, .lr = 0.01};
    kr_optim *o = kr_optim_new(ctx, &cfg);
    CHECK(o && kr_optim_bind(o, OF_NVARS, vars) == KR_OK);
    CHECK(kr_optim_nslots(o) == kinds[i].per_var * OF_NVARS);
    for (int s = 0; s < kr_optim_nslots(o); s++)
      CHECK(kr_shape_eq(&kr_optim_slot(o, s)->shape, &vars[s % OF_NVARS]->shape) ||
            kinds[i].kind == KR_ADAM);
    kr_optim_free(o);
  }
  kr_optim_free(NULL);
  CHECK(kr_mem_in_use(ctx) == base);
  for (int v = 0; v < OF_NVARS; v++) kr_tensor_release(vars[v]);
  CHECK(kr_mem_in_use(ctx) == 0);
  kr_ctx_free(ctx);
}

/* ---- iterations, decay, config changes between steps ---- */

static void test_decay(void)
{
  kr_ctx *ctx = kr_ctx_new();
  const int64_t d = 3;
  const float w[3] = {1.0f, -2.0f, 0.5f};
  kr_tensor *var = make_var(ctx, 1, &d, w);
  kr_optim_cfg cfg = {.kind = KR_SGD, .lr = 0.1, .decay = 0.5};
  kr_optim *o = kr_optim_new(ctx, &cfg);
  CHECK(kr_optim_bind(o, 1, &var) == KR_OK);
  float g[3] = {1.0f, 2.0f, -4.0f}, *gp = g;

  /* decay counts the iterations before the step: lr_t = 0.1 / (1 + 0.5*4) */
  kr_optim_set_iterations(o, 4);
  CHECK(kr_optim_iterations(o) == 4);
  kr_optim_step(o, &gp);
  CHECK(kr_optim_iterations(o) == 5);
  for (int j = 0; j < 3; j++) CHECK_NEAR(KR_DATA(var)[j], w[j] - 0.1 / 3.0 * g[j], 1e-6);

  /* lr and decay read at every step */
  memcpy(KR_DATA(var), w, sizeof w);
  kr_optim_config(o)->lr = 1.0;
  kr_optim_config(o)->decay = 0.0;
  kr_optim_step(o, &gp);
  for (int j = 0; j < 3; j++) CHECK_NEAR(KR_DATA(var)[j], w[j] - g[j], 1e-6);

  /* clipvalue scales the caller's buffers in place (documented) */
  kr_optim_config(o)->clipvalue = 1.5;
  kr_optim_step(o, &gp);
  CHECK(g[0] == 1.0f && g[1] == 1.5f && g[2] == -1.5f);

  /* clipnorm: norm 5 >= 2.5 halves the gradients */
  float h[3] = {0.0f, 3.0f, -4.0f}, *hp = h;
  kr_optim_config(o)->clipvalue = 0;
  kr_optim_config(o)->clipnorm = 2.5;
  kr_optim_step(o, &hp);
  CHECK_NEAR(h[1], 1.5, 1e-7);
  CHECK_NEAR(h[2], -2.0, 1e-7);
  kr_optim_step(o, &hp);   /* norm 2.5 >= 2.5 still scales, by 1 */
  CHECK_NEAR(h[2], -2.0, 1e-7);

  /* negative iteration counts are treated as 0 */
  kr_optim_set_iterations(o, -3);
  CHECK(kr_optim_iterations(o) == 0);
  kr_optim_free(o);
  kr_tensor_release(var);
  CHECK(kr_mem_in_use(ctx) == 0);
  kr_ctx_free(ctx);
}

/* ---- epsilon <= 0 means Keras's 1e-7: visible with gradients of that size.
** Adagrad, one step: a = g^2, p -= lr*g/(|g| + eps) = lr/2 when g = eps ---- */

static void test_epsilon_default(void)
{
  kr_ctx *ctx = kr_ctx_new();
  const int64_t d = 2;
  const float w[2] = {0.0f, 1.0f};
  const double eps[3] = {0.0, -1.0, 1e-7};
  for (int e = 0; e < 3; e++) {
    kr_tensor *var = make_var(ctx, 1, &d, w);
    kr_optim_cfg cfg = {.kind = KR_ADAGRAD, .lr = 0.01, .epsilon = eps[e]};
    kr_optim *o = kr_optim_new(ctx, &cfg);
    CHECK(kr_optim_bind(o, 1, &var) == KR_OK);
    float g[2] = {1e-7f, -1e-7f}, *gp = g;
    kr_optim_step(o, &gp);
    CHECK_NEAR(KR_DATA(var)[0], -0.005, 1e-6);
    CHECK_NEAR(KR_DATA(var)[1], 1.005, 1e-6);
    kr_optim_free(o);
    kr_tensor_release(var);
  }
  CHECK(kr_mem_in_use(ctx) == 0);
  kr_ctx_free(ctx);
}

/* ---- resuming: slots copied into a fresh optimizer + set_iterations (what
** loading a saved model does) continues the trajectory exactly; for Nadam
** this needs m_schedule rebuilt from the iteration count ---- */

static void test_resume(void)
{
  const char *names[] = {"nadam", "nadam_eps", "adam_amsgrad", "adamax_decay_eps",
                         "sgd_nesterov_decay", "adadelta_decay"};
  for (size_t c = 0; c < sizeof names / sizeof names[0]; c++) {
    const of_case *fc = find_case(names[c]);
    CHECK(fc != NULL);
    if (!fc) continue;
    kr_ctx *ctx = kr_ctx_new();
    kr_tensor *vars[OF_NVARS];
    fixture_vars(ctx, vars);
    float gbuf[OF_TOTAL];
    float *grads[OF_NVARS] = {gbuf, gbuf + of_numel[0]};
    kr_optim *a = kr_optim_new(ctx, &fc->cfg);
    CHECK(kr_optim_bind(a, OF_NVARS, vars) == KR_OK);
    for (int k = 0; k < 2; k++) {
      memcpy(gbuf, of_grads[k], sizeof gbuf);
      kr_optim_step(a, grads);
    }
    kr_optim *b = kr_optim_new(ctx, &fc->cfg);
    CHECK(kr_optim_bind(b, OF_NVARS, vars) == KR_OK);
    CHECK(kr_optim_nslots(b) == kr_optim_nslots(a));
    for (int s = 0; s < kr_optim_nslots(a); s++) {
      kr_tensor *from = kr_optim_slot(a, s), *to = kr_optim_slot(b, s);
      memcpy(KR_DATA(to), KR_DATA(from), (size_t)kr_tensor_numel(from) * sizeof(float));
    }
    kr_optim_set_iterations(b, kr_optim_iterations(a));
    kr_optim_free(a);
    int bad = 0;
    for (int k = 2; k < OF_NSTEPS; k++) {
      memcpy(gbuf, of_grads[k], sizeof gbuf);
      kr_optim_step(b, grads);
      int off = 0;
      for (int v = 0; v < OF_NVARS; v++) {
        for (int j = 0; j < of_numel[v]; j++)
          bad += !near(KR_DATA(vars[v])[j], fc->expect[k][off + j]);
        off += of_numel[v];
      }
    }
    CHECK_MSG(bad == 0, "%s resumed: %d weights off", fc->name, bad);
    kr_optim_free(b);
    for (int v = 0; v < OF_NVARS; v++) kr_tensor_release(vars[v]);
    CHECK(kr_mem_in_use(ctx) == 0);
    kr_ctx_free(ctx);
  }
}

/* Nadam's schedule after a huge iteration count is rebuilt quickly, and
** stepping from there stays finite */
static void test_nadam_long_run(void)
{
  const double beta_1[3] = {0.9, 1.0, 1.5};
  for (int b = 0; b < 3; b++) {
    kr_ctx *ctx = kr_ctx_new();
    const int64_t d = 2;
    const float w[2] = {0.5f, -0.5f};
    kr_tensor *var = make_var(ctx, 1, &d, w);
    kr_optim_cfg cfg = {.kind = KR_NADAM, .lr = 0.002, .beta_1 = beta_1[b], .beta_2 = 0.999,
                        .schedule_decay = 0.004};
    kr_optim *o = kr_optim_new(ctx, &cfg);
    CHECK(kr_optim_bind(o, 1, &var) == KR_OK);
    double t0 = kr_now();
    kr_optim_set_iterations(o, INT64_C(1) << 50);
    CHECK(kr_now() - t0 < 1.0);
    CHECK(kr_optim_iterations(o) == INT64_C(1) << 50);
    float g[2] = {0.25f, -1.0f}, *gp = g;
    kr_optim_step(o, &gp);
    if (b == 0) CHECK(isfinite(KR_DATA(var)[0]) && isfinite(KR_DATA(var)[1]));
    kr_optim_free(o);
    kr_tensor_release(var);
    kr_ctx_free(ctx);
  }
}

/* ---- argument errors ---- */

static void test_errors(void)
{
  kr_ctx *ctx = kr_ctx_new();
  kr_optim_cfg cfg = {.kind = KR_OPTIM_COUNT, .lr = 0.01};
  CHECK(kr_optim_new(ctx, &cfg) == NULL);
  CHECK(kr_errcode(ctx) == KR_EARG);
  CHECK(strcmp(kr_errmsg(ctx), "optimizer: unknown kind 7") == 0);
  cfg.kind = -1;
  CHECK(kr_optim_new(ctx, &cfg) == NULL);
  CHECK(kr_optim_new(ctx, NULL) == NULL);
  cfg.kind = KR_ADAM;
  cfg.lr = NAN;
  CHECK(kr_optim_new(ctx, &cfg) == NULL);
  CHECK(kr_errcode(ctx) == KR_EARG);
  CHECK(strcmp(kr_errmsg(ctx), "Adam: lr must be a finite number, got nan") == 0);
  cfg.lr = 0.001;
  cfg.clipnorm = INFINITY;
  CHECK(kr_optim_new(ctx, &cfg) == NULL);
  CHECK(strcmp(kr_errmsg(ctx), "Adam: clipnorm must be a finite number, got inf") == 0);
  cfg.clipnorm = 0;
  CHECK(kr_mem_in_use(ctx) == 0);

  kr_optim *o = kr_optim_new(ctx, &cfg);
  CHECK(o != NULL);
  kr_tensor *vars[2] = {NULL, NULL};
  fixture_vars(ctx, vars);
  CHECK(kr_optim_bind(o, 2, vars) == KR_OK);
  kr_tensor *holes[2] = {vars[0], NULL};
  CHECK(kr_optim_bind(o, 2, holes) == KR_EARG);
  CHECK(strcmp(kr_errmsg(ctx), "Adam: variable 2 is missing") == 0);
  CHECK(kr_optim_nslots(o) == 6);   /* a bad list leaves the old binding */
  CHECK(kr_optim_bind(o, -1, vars) == KR_EARG);
  CHECK(kr_optim_bind(o, 1, NULL) == KR_EARG);
  kr_optim_free(o);
  for (int v = 0; v < 2; v++) kr_tensor_release(vars[v]);
  CHECK(kr_mem_in_use(ctx) == 0);
  kr_ctx_free(ctx);
}

/* ---- allocation failures in kr_optim_new and kr_optim_bind ---- */

static void test_alloc_failures(void)
{
  for (int c = 0; c < OF_NCASES; c++) {
    const of_case *fc = &of_cases[c];
    kr_ctx *ctx = kr_ctx_new();
    kr_tensor *vars[OF_NVARS];
    fixture_vars(ctx, vars);
    size_t start = kr_mem_in_use(ctx);
    int failures = 0, ok = 0;
    for (long n = 1; n < 200 && !ok; n++) {
      kr_mem_fail_at(ctx, n);
      kr_optim *o = kr_optim_new(ctx, &fc->cfg);
      int st = o ? kr_optim_bind(o, OF_NVARS, vars) : KR_EMEM;
      kr_mem_fail_at(ctx, 0);
      if (st == KR_OK) {
        ok = 1;
        CHECK(kr_optim_nslots(o) == slots_per_var(fc->cfg.kind) * OF_NVARS);
      } else {
        failures++;
        CHECK_MSG(st == KR_EMEM && kr_errcode(ctx) == KR_EMEM, "%s: n=%ld: %s", fc->name, n,
                  kr_errmsg(ctx));
        if (o) {
          CHECK(kr_optim_nslots(o) == 0);   /* a failed bind leaves it unbound */
          /* and it can be bound again */
          CHECK(kr_optim_bind(o, OF_NVARS, vars) == KR_OK);
        }
      }
      kr_optim_free(o);
      CHECK_MSG(kr_mem_in_use(ctx) == start, "%s: n=%ld leaks", fc->name, n);
    }
    CHECK(ok);
    /* struct + 2 arrays + 3 allocations per slot tensor */
    CHECK_MSG(failures == 3 + 3 * slots_per_var(fc->cfg.kind) * OF_NVARS, "%s: %d failures",
              fc->name, failures);
    for (int v = 0; v < OF_NVARS; v++) kr_tensor_release(vars[v]);
    CHECK(kr_mem_in_use(ctx) == 0);
    kr_ctx_free(ctx);
  }
}

/* ---- large vars split among the workers: every kind, after 3 steps, 1, 2 and
** 3 threads give the same weights and slots bit for bit, and the same weights
** as the vars cut into pieces small enough to be updated whole (uneven sizes:
** the ends of the split; small vars on one worker each) ---- */

typedef struct piece { int v; int64_t start, len; } piece;

/* the weights after 3 steps, the pieces' end to end; the slots likewise if `slots` */
static float *run_pieces(const kr_optim_cfg *cfg, int threads, int np, const piece *ps, float **slots, size_t *nslotf)
{
  kr_ctx *ctx = kr_ctx_new();
  kr_set_num_threads(ctx, threads);
  kr_tensor *vars[8];
  float *g[8];
  size_t total = 0;
  for (int i = 0; i < np; i++) {
    kr_shape vs = kr_shape_make(1, &ps[i].len);
    vars[i] = kr_tensor_new(ctx, &vs);
    g[i] = malloc((size_t)ps[i].len * sizeof(float));
    for (int64_t j = 0; j < ps[i].len; j++) {
      int64_t q = ps[i].start + j;
      KR_DATA(vars[i])[j] = (float)((q * 37 + ps[i].v) % 101) / 50.0f - 1.0f;
    }
    total += (size_t)ps[i].len;
  }
  kr_optim *o = kr_optim_new(ctx, cfg);
  CHECK(o && kr_optim_bind(o, np, vars) == KR_OK);
  for (int k = 0; o && k < 3; k++) {
    for (int i = 0; i < np; i++)
      for (int64_t j = 0; j < ps[i].len; j++) {
        int64_t q = ps[i].start + j;
        g[i][j] = (float)((q * 13 + 7 * k + ps[i].v) % 97) / 40.0f - 1.2f;
      }
    kr_optim_step(o, g);
  }
  float *w = malloc(total * sizeof(float));
  size_t off = 0;
  for (int i = 0; i < np; i++) {
    memcpy(w + off, KR_DATA(vars[i]), (size_t)ps[i].len * sizeof(float));
    off += (size_t)ps[i].len;
  }
  if (slots && o) {
    *nslotf = 0;
    for (int i = 0; i < kr_optim_nslots(o); i++) *nslotf += (size_t)kr_tensor_numel(kr_optim_slot(o, i));
    *slots = malloc(*nslotf * sizeof(float));
    off = 0;
    for (int i = 0; i < kr_optim_nslots(o); i++) {
      kr_tensor *t = kr_optim_slot(o, i);
      memcpy(*slots + off, KR_DATA(t), (size_t)kr_tensor_numel(t) * sizeof(float));
      off += (size_t)kr_tensor_numel(t);
    }
  }
  kr_optim_free(o);
  for (int i = 0; i < np; i++) {
    kr_tensor_release(vars[i]);
    free(g[i]);
  }
  kr_ctx_free(ctx);
  return w;
}

static void test_threads(void)
{
  static const piece whole[4] = {{0, 0, 200003}, {1, 0, 70001}, {2, 0, 100}, {3, 0, 5}};
  static const piece cut[8] = {{0, 0, 50001},     {0, 50001, 50001}, {0, 100002, 50001}, {0, 150003, 50000},
                               {1, 0, 35001},     {1, 35001, 35000}, {2, 0, 100},        {3, 0, 5}};
  size_t total = 200003 + 70001 + 100 + 5;
  for (int c = 0; c < OF_NCASES; c++) {
    const of_case *fc = &of_cases[c];
    float *w[3], *sl[3] = {NULL, NULL, NULL};
    size_t ns[3] = {0, 0, 0};
    for (int th = 1; th <= 3; th++) w[th - 1] = run_pieces(&fc->cfg, th, 4, whole, &sl[th - 1], &ns[th - 1]);
    float *ref = run_pieces(&fc->cfg, 1, 8, cut, NULL, NULL);
    CHECK_MSG(memcmp(w[0], ref, total * sizeof(float)) == 0, "%s: 1 thread: the weights differ from the cut vars'",
              fc->name);
    for (int th = 2; th <= 3; th++) {
      int same = memcmp(w[th - 1], w[0], total * sizeof(float)) == 0;
      same &= sl[th - 1] && sl[0] && ns[th - 1] == ns[0] && memcmp(sl[th - 1], sl[0], ns[0] * sizeof(float)) == 0;
      CHECK_MSG(same, "%s: %d threads give other weights or slots than 1", fc->name, th);
    }
    for (int th = 0; th < 3; th++) {
      free(w[th]);
      free(sl[th]);
    }
    free(ref);
  }
}

/* keras.constraints: the projection after an update, against float64 */
static void project_ref(const kr_constraint *c, double *w, const int64_t *dim, int nd)
{
  int64_t stride[8], n = 1;
  for (int k = nd - 1; k >= 0; k--) {
    stride[k] = n;
    n *= dim[k];
  }
  if (c->kind == KR_CONSTRAINT_NON_NEG) {
    for (int64_t e = 0; e < n; e++) w[e] = w[e] >= 0 ? w[e] : 0;
    return;
  }
  double ss[64] = {0};
  int64_t grp[64];
  for (int64_t e = 0; e < n; e++) {
    int64_t g = 0;
    for (int k = 0; k < nd; k++)
      if (!((c->axes >> k) & 1u)) g += (e / stride[k]) % dim[k] * stride[k];
    grp[e] = g;
    ss[g] += w[e] * w[e];
  }
  for (int64_t e = 0; e < n; e++) {
    double nr = sqrt(ss[grp[e]]), f;
    if (c->kind == KR_CONSTRAINT_MAX_NORM) f = fmin(nr, c->max_value) / (1e-7 + nr);
    else if (c->kind == KR_CONSTRAINT_UNIT_NORM) f = 1 / (1e-7 + nr);
    else f = (c->rate * fmax(c->min_value, fmin(nr, c->max_value)) + (1 - c->rate) * nr) / (1e-7 + nr);
    w[e] *= f;
  }
}

static void test_constraints(void)
{
  kr_ctx *ctx = kr_ctx_new();
  const int64_t dim[3] = {2, 3, 4};
  kr_shape sh = kr_shape_make(3, dim);
  const kr_constraint cases[] = {
    {.kind = KR_CONSTRAINT_MAX_NORM, .axes = 1u, .max_value = 1.0},
    {.kind = KR_CONSTRAINT_MAX_NORM, .axes = 5u, .max_value = 1.5},
    {.kind = KR_CONSTRAINT_NON_NEG},
    {.kind = KR_CONSTRAINT_UNIT_NORM, .axes = 7u},
    {.kind = KR_CONSTRAINT_UNIT_NORM, .axes = 4u},
    {.kind = KR_CONSTRAINT_MIN_MAX_NORM, .axes = 2u, .min_value = 1.2, .max_value = 1.4, .rate = 0.7},
  };
  for (size_t ci = 0; ci < sizeof cases / sizeof cases[0]; ci++) {
    kr_tensor *w = kr_tensor_new(ctx, &sh), *other = kr_tensor_new(ctx, &sh);
    float g[24];
    double ref[24];
    for (int i = 0; i < 24; i++) {
      KR_DATA(w)[i] = KR_DATA(other)[i] = (float)(((i * 37) % 23 - 11) / 7.3);
      g[i] = (float)((i % 5) - 2) * 0.5f;
      ref[i] = (double)(KR_DATA(w)[i] - 0.1f * g[i]);   /* SGD, no momentum, in float32 as the kernel */
    }
    kr_optim_cfg cfg = {.kind = KR_SGD, .lr = 0.1};
    kr_optim *o = kr_optim_new(ctx, &cfg);
    kr_tensor *vars[2] = {w, other};
    CHECK(kr_optim_bind(o, 2, vars) == KR_OK);
    CHECK(kr_optim_constrain(o, 0, &cases[ci]) == KR_OK);
    float gbuf[48];
    memcpy(gbuf, g, sizeof g);
    memcpy(gbuf + 24, g, sizeof g);
    float *grads[2] = {gbuf, gbuf + 24};
    size_t before = kr_mem_in_use(ctx);
    kr_optim_step(o, grads);
    CHECK(kr_mem_in_use(ctx) == before);   /* the projection allocates nothing */
    project_ref(&cases[ci], ref, dim, 3);
    int ok = 1;
    for (int i = 0; i < 24; i++) ok &= fabs(KR_DATA(w)[i] - ref[i]) <= 1e-6 * (1 + fabs(ref[i]));
    CHECK_MSG(ok, "constraint case %zu", ci);
    /* the unconstrained var got the plain update */
    int plain = 1;
    for (int i = 0; i < 24; i++)
      plain &= KR_DATA(other)[i] == (float)(((i * 37) % 23 - 11) / 7.3) - 0.1f * g[i];
    CHECK(plain);
    /* a bind clears the constraints */
    CHECK(kr_optim_bind(o, 2, vars) == KR_OK);
    float saved[24];
    memcpy(saved, KR_DATA(w), sizeof saved);
    memset(gbuf, 0, sizeof gbuf);
    for (int i = 0; i < 24; i++) KR_DATA(w)[i] = -5.0f;
    kr_optim_step(o, grads);
    CHECK(KR_DATA(w)[0] == -5.0f && KR_DATA(w)[23] == -5.0f);
    kr_optim_free(o);
    kr_tensor_release(w);
    kr_tensor_release(other);
  }

  /* bad descriptors are errors, not crashes */
  kr_tensor *w = kr_tensor_zeros(ctx, &sh);
  kr_optim_cfg cfg = {.kind = KR_SGD, .lr = 0.1};
  kr_optim *o = kr_optim_new(ctx, &cfg);
  CHECK(kr_optim_bind(o, 1, &w) == KR_OK);
  const kr_constraint bad[] = {
    {.kind = KR_CONSTRAINT_MAX_NORM, .axes = 8u, .max_value = 1},   /* axis 3 of a rank-3 var */
    {.kind = KR_CONSTRAINT_MAX_NORM, .axes = 0u, .max_value = 1},
    {.kind = KR_CONSTRAINT_MAX_NORM, .axes = 1u, .max_value = -1},
    {.kind = KR_CONSTRAINT_MIN_MAX_NORM, .axes = 1u, .min_value = 2, .max_value = 1, .rate = 1},
    {.kind = KR_CONSTRAINT_MIN_MAX_NORM, .axes = 1u, .min_value = 0, .max_value = 1, .rate = 1.5},
    {.kind = KR_CONSTRAINT_COUNT},
  };
  for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) CHECK_MSG(kr_optim_constrain(o, 0, &bad[i]) == KR_EARG, "%zu", i);
  CHECK(kr_optim_constrain(o, 1, &bad[0]) == KR_EARG);
  /* zero weights stay zero (no 0/0) */
  CHECK(kr_optim_constrain(o, 0, &(kr_constraint){.kind = KR_CONSTRAINT_UNIT_NORM, .axes = 1u}) == KR_OK);
  float zg[24] = {0};
  float *zgs[1] = {zg};
  kr_optim_step(o, zgs);
  CHECK(KR_DATA(w)[0] == 0.0f && KR_DATA(w)[23] == 0.0f);
  kr_optim_free(o);
  kr_tensor_release(w);
  CHECK(kr_mem_in_use(ctx) == 0);
  kr_ctx_free(ctx);
}

/* ---- the sharded step (keras.distributed on one host): two "ranks" that
** each update their pieces from two gradient segments and copy the other's
** pieces in, and a whole step that reads the sums, give the same bits as one
** optimizer stepping on the summed gradients; the slots too, once gathered */
enum { SP_NV = 3 };
static const int64_t sp_len[SP_NV] = {1000, 37, 300};
static const size_t sp_off[SP_NV] = {0, 1008, 1056};   /* 16-float aligned, as a plan's region */
#define SP_N 1360

static void sp_vars(kr_ctx *ctx, kr_tensor **v)
{
  for (int i = 0; i < SP_NV; i++) {
    kr_shape sh = kr_shape_make(1, &sp_len[i]);
    v[i] = kr_tensor_new(ctx, &sh);
    for (int64_t e = 0; e < sp_len[i]; e++) KR_DATA(v[i])[e] = (float)sin(0.37 * (double)(e + 1) + i);
  }
}

/* rank r's pieces of the region cut in two shares of whole lines */
static int sp_pieces(int r, kr_optim_piece *pc)
{
  size_t lines = (SP_N + 15) / 16, a = lines * (size_t)r / 2 * 16, b = lines * (size_t)(r + 1) / 2 * 16;
  int np = 0;
  for (int i = 0; i < SP_NV; i++) {
    size_t lo = sp_off[i] > a ? sp_off[i] : a, hi = sp_off[i] + (size_t)sp_len[i];
    if (hi > b) hi = b;
    if (lo >= hi) continue;
    pc[np++] = (kr_optim_piece){i, lo - sp_off[i], hi - sp_off[i], lo};
  }
  return np;
}

static void test_step_pieces(void)
{
  for (int c = 0; c < OF_NCASES; c++) {
    const of_case *fc = &of_cases[c];
    kr_ctx *ctx = kr_ctx_new();
    kr_tensor *vr[SP_NV], *v0[SP_NV], *v1[SP_NV], *vw[SP_NV], *v3[SP_NV];
    sp_vars(ctx, vr);
    sp_vars(ctx, v3);
    sp_vars(ctx, v0);
    sp_vars(ctx, v1);
    sp_vars(ctx, vw);
    kr_optim *ref = kr_optim_new(ctx, &fc->cfg), *o0 = kr_optim_new(ctx, &fc->cfg);
    kr_optim *o1 = kr_optim_new(ctx, &fc->cfg), *ow = kr_optim_new(ctx, &fc->cfg), *o3 = kr_optim_new(ctx, &fc->cfg);
    CHECK(ref && o0 && o1 && ow && o3);
    if (!ref || !o0 || !o1 || !ow || !o3) continue;
    CHECK(kr_optim_bind(ref, SP_NV, vr) == KR_OK && kr_optim_bind(o0, SP_NV, v0) == KR_OK &&
          kr_optim_bind(o1, SP_NV, v1) == KR_OK && kr_optim_bind(ow, SP_NV, vw) == KR_OK &&
          kr_optim_bind(o3, SP_NV, v3) == KR_OK);
    if (!kr_optim_can_shard(ref)) {   /* clipping: the whole step on every rank */
      CHECK(fc->cfg.clipnorm > 0 || fc->cfg.clipvalue > 0);
      goto done;
    }
    float *seg[3], *out[2], sum[SP_N];
    for (int q = 0; q < 2; q++) {
      seg[q] = calloc(SP_N, sizeof(float));
      out[q] = calloc(SP_N, sizeof(float));
    }
    seg[2] = calloc(SP_N, sizeof(float));   /* a third rank's segment, zeros: the same sums */
    kr_optim_piece pc[2][SP_NV], all[2 * SP_NV];
    int np[2] = {sp_pieces(0, pc[0]), sp_pieces(1, pc[1])};
    CHECK(np[0] >= 1 && np[1] >= 1);
    memcpy(all, pc[0], (size_t)np[0] * sizeof *all);
    memcpy(all + np[0], pc[1], (size_t)np[1] * sizeof *all);
    kr_optim *os[2] = {o0, o1};
    kr_tensor **vs[2] = {v0, v1};
    for (int step = 0; step < 4; step++) {
      for (int q = 0; q < 2; q++)
        for (size_t e = 0; e < SP_N; e++) seg[q][e] = (float)cos(0.11 * (double)e * (q + 1) + step) * 0.3f;
      for (size_t e = 0; e < SP_N; e++) sum[e] = (seg[0][e] + seg[1][e]) * 0.5f;
      float *gp[SP_NV];
      for (int i = 0; i < SP_NV; i++) gp[i] = sum + sp_off[i];
      kr_optim_step(ref, gp);
      for (int r = 0; r < 2; r++)
        kr_optim_step_pieces(os[r], pc[r], np[r], seg, 2, 0.5f, out[r], NULL, NULL, 0);
      for (int r = 0; r < 2; r++)   /* rank r copies the other's new weights in */
        for (int m = 0; m < np[1 - r]; m++) {
          const kr_optim_piece *x = &pc[1 - r][m];
          memcpy(KR_DATA(vs[r][x->var]) + x->lo, out[1 - r] + x->off, (x->hi - x->lo) * sizeof(float));
        }
      /* as the chunked step takes it: a call per piece, in any order, then the finish */
      for (int m = np[0] + np[1] - 1; m >= 0; m--) kr_optim_update_pieces(ow, all + m, 1, seg, 2, 0.5f, NULL);
      kr_optim_step_finish(ow, NULL, NULL, 0, 0.5f);
      /* three segments: summed a short piece at a time into a buffer, not
      ** read as the update goes as two are */
      kr_optim_step_pieces(o3, all, np[0] + np[1], seg, 3, 0.5f, NULL, NULL, NULL, 0);
    }
    int same = 1, wsame = 1, same3 = 1;
    for (int i = 0; i < SP_NV; i++) {
      size_t bytes = (size_t)sp_len[i] * sizeof(float);
      same &= memcmp(KR_DATA(vr[i]), KR_DATA(v0[i]), bytes) == 0 && memcmp(KR_DATA(vr[i]), KR_DATA(v1[i]), bytes) == 0;
      wsame &= memcmp(KR_DATA(vr[i]), KR_DATA(vw[i]), bytes) == 0;
      same3 &= memcmp(KR_DATA(vr[i]), KR_DATA(v3[i]), bytes) == 0;
    }
    CHECK_MSG(same3, "%s: the step from three segments differs from one optimizer's", fc->name);
    CHECK_MSG(same, "%s: the split step's weights differ from one optimizer's", fc->name);
    CHECK_MSG(wsame, "%s: the whole step reading the sums, a piece at a time, differs from one optimizer's", fc->name);
    CHECK(kr_optim_iterations(o0) == 4 && kr_optim_iterations(ow) == 4);
    /* the slots: each rank's own pieces are current; gathered, all are */
    for (int k = 0; k < kr_optim_full_slots(o0); k++) {
      for (int r = 0; r < 2; r++) kr_optim_slots_pieces(os[r], k, pc[r], np[r], out[r], 1);
      for (int r = 0; r < 2; r++) kr_optim_slots_pieces(os[r], k, pc[1 - r], np[1 - r], out[1 - r], 0);
    }
    int ssame = 1;
    for (int k = 0; k < kr_optim_nslots(ref); k++) {
      kr_tensor *a = kr_optim_slot(ref, k), *b0 = kr_optim_slot(o0, k), *b1 = kr_optim_slot(o1, k);
      size_t bytes = (size_t)kr_tensor_numel(a) * sizeof(float);
      ssame &= memcmp(KR_DATA(a), KR_DATA(b0), bytes) == 0 && memcmp(KR_DATA(a), KR_DATA(b1), bytes) == 0;
    }
    CHECK_MSG(ssame, "%s: the gathered slots differ from one optimizer's", fc->name);
    for (int q = 0; q < 2; q++) {
      free(seg[q]);
      free(out[q]);
    }
    free(seg[2]);
  done:
    kr_optim_free(ref);
    kr_optim_free(o0);
    kr_optim_free(o1);
    kr_optim_free(ow);
    kr_optim_free(o3);
    for (int i = 0; i < SP_NV; i++) {
      kr_tensor_release(vr[i]);
      kr_tensor_release(v0[i]);
      kr_tensor_release(v1[i]);
      kr_tensor_release(vw[i]);
      kr_tensor_release(v3[i]);
    }
    kr_ctx_free(ctx);
  }
}

int main(void)
{
  test_trajectories();
  test_shapes();
  test_threads();
  test_slots();
  test_decay();
  test_epsilon_default();
  test_resume();
  test_nadam_long_run();
  test_errors();
  test_alloc_failures();
  test_constraints();
  test_step_pieces();
  return check_report("test_optim");
}
