/*
** conv_tune.c -- the convolution autotuner: each conv2d pass (forward, input
** gradient, kernel gradient) of a geometry runs by the lowering measured
** fastest on this CPU, as cuDNN's benchmark mode does (docs/design.md,
** "Convolution lowering and autotuning").
**
** When a plan sizes a conv node's scratch (kernels/conv.c), kr_conv_tune
** times every lowering valid for the node's geometry (kr_conv_algo_valid) on
** buffers of its own at the plan's batch (at most TUNE_BATCH samples) with
** the context's workers: one warm-up run, then the best of TUNE_RUNS. The
** fixed rule's lowering is kept unless another is faster by more than
** TUNE_MARGIN (timing noise does not flip choices). The choice is cached in
** the context (kr_ctx.conv_tuned, keyed by the geometry without the batch and
** the thread count: a later plan of any batch and any thread count runs the
** same lowering, so results do not change with the thread count within a
** process); each kernel looks its node up when it runs (kr_conv_algo). The
** scratch is sized for the largest valid lowering, so any choice fits.
** Different lowerings give results equal within float tolerance only;
** kr_set_conv_autotune(ctx, 0) keeps the fixed rules (reproducible bits).
** The tuner's buffers come from malloc, outside the context's accounting,
** and are freed before it returns; when they cannot be had, the rule stays.
*/
#include "kr.h"
#include "ctx_impl.h"
#include "ops.h"
#include "ops_conv.h"

#include <stdlib.h>
#include <string.h>

#define TUNE_BATCH 32          /* samples timed at most */
#define TUNE_RUNS 2            /* timed runs per candidate after a warm-up */
#define TUNE_MARGIN 0.05       /* another lowering must beat the rule by 5% */
#define TUNE_MAX_BYTES ((size_t)1 << 28)   /* buffers above 256 MiB: not tuned */

static const int CANDIDATES[] = {KR_CONV_ALGO_IM2COL, KR_CONV_ALGO_WINOGRAD, KR_CONV_ALGO_WINOGRAD1D,
                                 KR_CONV_ALGO_DIRECT, KR_CONV_ALGO_COL2IM, KR_CONV_ALGO_PACKED,
                                 KR_CONV_ALGO_LOOPS};
#define NCAND ((int)(sizeof CANDIDATES / sizeof CANDIDATES[0]))

void kr_set_conv_autotune(kr_ctx *ctx, int on) { ctx->conv_autotune_off = !on; }
int kr_get_conv_autotune(const kr_ctx *ctx) { return !ctx->conv_autotune_off; }
int kr_conv_autotune_count(const kr_ctx *ctx) { return ctx->conv_ntuned; }
double kr_conv_autotune_seconds(const kr_ctx *ctx) { return ctx->conv_tune_s; }
void kr_conv_force_algo(kr_ctx *ctx, int algo) { ctx->conv_force = algo; }

const kr_conv_tuned *kr_conv_autotune_entry(const kr_ctx *ctx, int i)
{
  return i >= 0 && i < ctx->conv_ntuned ? &ctx->conv_tuned[i] : NULL;
}

void kr_conv_autotune_clear(kr_ctx *ctx)
{
  ctx->conv_ntuned = 0;
  ctx->conv_tune_s = 0;
}

const char *kr_conv_algo_name(int algo)
{
  static const char *names[KR_CONV_ALGO_COUNT] = {"rule", "im2col", "winograd", "winograd1d", "direct", "col2im",
                                                  "packed", "loops"};
  return algo >= 0 && algo < KR_CONV_ALGO_COUNT ? names[algo] : "?";
}

const char *kr_conv_pass_name(int op)
{
  switch (op) {
  case KR_OP_CONV2D: return "forward";
  case KR_OP_CONV2D_GRAD_INPUT: return "input_gradient";
  case KR_OP_DEPTHWISE_CONV2D: return "depthwise_forward";
  case KR_OP_DEPTHWISE_CONV2D_GRAD_INPUT: return "depthwise_input_gradient";
  case KR_OP_DEPTHWISE_CONV2D_GRAD_KERNEL: return "depthwise_kernel_gradient";
  default: return "kernel_gradient";
  }
}

static const kr_conv_tuned *find(const kr_ctx *ctx, const int64_t *key)
{
  for (int i = 0; i < ctx->conv_ntuned; i++)
    if (memcmp(ctx->conv_tuned[i].key, key, sizeof ctx->conv_tuned[i].key) == 0) return &ctx->conv_tuned[i];
  return NULL;
}

int kr_conv_algo(kr_ctx *ctx, const kr_node *n)
{
  if (ctx->conv_force) return ctx->conv_force;
  if (ctx->conv_autotune_off || ctx->conv_ntuned == 0) return KR_CONV_ALGO_RULE;
  int64_t key[KR_CONV_KEY];
  kr_conv_tune_key(n, key);
  const kr_conv_tuned *t = find(ctx, key);
  return t ? t->algo : KR_CONV_ALGO_RULE;
}

static float *buffer(size_t n, int fill)
{
  float *p = malloc((n ? n : 1) * sizeof(float));
  if (p && fill)
    for (size_t i = 0; i < n; i++) p[i] = (float)((int)(i % 97) - 48) * (1.0f / 64);
  return p;
}

void kr_conv_tune(const kr_node *n, int64_t batch, size_t scratch_floats)
{
  kr_ctx *ctx = n->ctx;
  if (ctx->conv_autotune_off || ctx->conv_force || ctx->conv_ntuned >= KR_CONV_TUNE_MAX || batch < 1) return;
  int64_t key[KR_CONV_KEY];
  kr_conv_tune_key(n, key);
  for (int i = 1; i < KR_CONV_KEY - 2; i++)
    if (key[i] < 0) return;   /* a None length: nothing to time */
  if (find(ctx, key)) return;
  double t0 = kr_now();
  kr_conv_tuned e;
  memset(&e, 0, sizeof e);
  memcpy(e.key, key, sizeof key);
  e.rule = kr_conv_algo_rule(n);
  e.algo = e.rule;
  for (int k = 0; k < NCAND; k++)
    if (kr_conv_algo_valid(n, CANDIDATES[k])) {
      e.cand[e.ncand] = CANDIDATES[k];
      e.ms[e.ncand++] = -1;
    }
  int64_t tb = batch < TUNE_BATCH ? batch : TUNE_BATCH;
  e.batch = tb;
  e.threads = kr_conv_tune_workers(ctx, n, tb);
  if (e.ncand > 1) {
    size_t na, nb, nout;
    kr_conv_tune_sizes(n, tb, &na, &nb, &nout);
    if ((na + nb + nout + scratch_floats) * sizeof(float) > TUNE_MAX_BYTES) return;
    float *a = buffer(na, 1), *b = buffer(nb, 1), *out = buffer(nout, 0), *scratch = buffer(scratch_floats, 0);
    if (a && b && out && scratch) {
      double best = -1, rule_ms = -1;
      for (int k = 0; k < e.ncand; k++) {
        double ms = -1;
        kr_conv_tune_run(n, tb, e.cand[k], a, b, out, scratch, e.threads);
        for (int r = 0; r < TUNE_RUNS; r++) {
          double s = kr_now();
          kr_conv_tune_run(n, tb, e.cand[k], a, b, out, scratch, e.threads);
          s = (kr_now() - s) * 1e3;
          if (ms < 0 || s < ms) ms = s;
        }
        e.ms[k] = ms;
        if (e.cand[k] == e.rule) rule_ms = ms;
        if (best < 0 || ms < best) {
          best = ms;
          e.algo = e.cand[k];
        }
      }
      if (rule_ms >= 0 && best > rule_ms * (1 - TUNE_MARGIN)) e.algo = e.rule;
    }
    free(a);
    free(b);
    free(out);
    free(scratch);
    if (!(a && b && out && scratch)) return;
  }
  ctx->conv_tuned[ctx->conv_ntuned++] = e;
  ctx->conv_tune_s += kr_now() - t0;
}
