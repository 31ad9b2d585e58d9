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

#include "io/atomic.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

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
  if (op == KR_OP_CONV3D) return "conv3d_forward";
  if (op == KR_OP_CONV3D_GRAD_INPUT) return "conv3d_input_gradient";
  if (op == KR_OP_CONV3D_GRAD_KERNEL) return "conv3d_kernel_gradient";
  if (op == KR_OP_CONV3D_TRANSPOSE) return "conv3d_transpose";
  switch (op) {
  case KR_OP_CONV2D: return "forward";
  case KR_OP_CONV2D_GRAD_INPUT: return "input_gradient";
  case KR_OP_CONV2D_TRANSPOSE: return "transposed";
  case KR_OP_DEPTHWISE_CONV2D: return "depthwise_forward";
  case KR_OP_DEPTHWISE_CONV2D_GRAD_INPUT: return "depthwise_input_gradient";
  case KR_OP_DEPTHWISE_CONV2D_GRAD_KERNEL: return "depthwise_kernel_gradient";
  default: return "kernel_gradient";
  }
}

/* a node's view for the tuner: kernels/conv.c's for conv2d, kernels/conv3d.c's for the 3-D ops */
static void tune_key(const kr_node *n, int64_t *key)
{
  memset(key, 0, KR_CONV_KEY * sizeof *key);
  if (kr_is_conv3d_op(n->op)) kr_conv3d_tune_key(n, key);
  else kr_conv_tune_key(n, key);
}

static int algo_valid(const kr_node *n, int algo)
{
  return kr_is_conv3d_op(n->op) ? kr_conv3d_algo_valid(n, algo) : kr_conv_algo_valid(n, algo);
}

static int algo_rule(const kr_node *n)
{
  return kr_is_conv3d_op(n->op) ? kr_conv3d_algo_rule(n) : kr_conv_algo_rule(n);
}

static void tune_sizes(const kr_node *n, int64_t batch, size_t *a, size_t *b, size_t *out)
{
  if (kr_is_conv3d_op(n->op)) kr_conv3d_tune_sizes(n, batch, a, b, out);
  else kr_conv_tune_sizes(n, batch, a, b, out);
}

static void tune_run(const kr_node *n, int64_t batch, int algo, const float *a, const float *b, float *out,
                     float *scratch, int T)
{
  if (kr_is_conv3d_op(n->op)) kr_conv3d_tune_run(n, batch, algo, a, b, out, scratch, T);
  else kr_conv_tune_run(n, batch, algo, a, b, out, scratch, T);
}

static int tune_workers(kr_ctx *ctx, const kr_node *n, int64_t batch)
{
  return kr_is_conv3d_op(n->op) ? kr_conv3d_tune_workers(ctx, n, batch) : kr_conv_tune_workers(ctx, n, batch);
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
  tune_key(n, key);
  const kr_conv_tuned *t = find(ctx, key);
  return t ? t->algo : KR_CONV_ALGO_RULE;
}

/* ---- the on-disk cache (opt-in): one line per choice ----
** "cpu<TAB>threads<TAB>op k1 ... k23<TAB>lowering": the CPU's model name,
** the workers the choice was timed on, the geometry's key (kr_conv_tune_key /
** kr_conv3d_tune_key: the pass's op by name, then the shapes, strides,
** dilations, pads, relu) and the lowering's name. Read when a context meets a
** geometry it has not tuned: a line for this CPU, thread count and key gives
** the choice without timing, if that lowering is valid for the node (else it
** is timed again). Written when a choice is timed: the file's well-formed
** lines, that one replaced or added, saved atomically (io/atomic.h), at most
** CACHE_LINES lines (the oldest dropped). A file that is not a regular file,
** is larger than CACHE_BYTES, or holds lines of another form is never trusted:
** such lines count as absent and are dropped when the file is rewritten.
** Failures to read or write leave the tuner as it is (nothing is reported). */

#define CACHE_BYTES ((long)1 << 20)
#define CACHE_LINES 4096
#define CACHE_LINE 1024
#define CACHE_HEADER "# lkeras conv autotuner cache 1\n"

int kr_set_conv_tune_cache(kr_ctx *ctx, const char *path)
{
  if (path && strlen(path) >= KR_CONV_CACHE_PATH)
    return kr_fail(ctx, KR_EARG, "set_conv_autotune: the cache path is longer than %d bytes", KR_CONV_CACHE_PATH - 1);
  ctx->conv_cache_set = 1;
  snprintf(ctx->conv_cache, sizeof ctx->conv_cache, "%s", path ? path : "");
  return KR_OK;
}

const char *kr_get_conv_tune_cache(kr_ctx *ctx)
{
  const char *p = ctx->conv_cache_set ? ctx->conv_cache : getenv("LKERAS_CONV_TUNE_CACHE");
  return p && p[0] && strlen(p) < KR_CONV_CACHE_PATH ? p : NULL;
}

/* the CPU's model name (CPUID's brand string, as blas_info reports it; else
** /proc/cpuinfo's), tabs and control characters made spaces */
static const char *cpu_model(kr_ctx *ctx)
{
  if (ctx->cpu_model[0]) return ctx->cpu_model;
  const kr_blas_info *bi = kr_blas_init();
  snprintf(ctx->cpu_model, sizeof ctx->cpu_model, "%s", bi && bi->cpu_model[0] ? bi->cpu_model : "unknown");
  FILE *f = strcmp(ctx->cpu_model, "unknown") == 0 ? fopen("/proc/cpuinfo", "r") : NULL;
  char line[512];
  while (f && fgets(line, sizeof line, f))
    if (strncmp(line, "model name", 10) == 0 && strchr(line, ':')) {
      const char *v = strchr(line, ':') + 1;
      while (*v == ' ') v++;
      snprintf(ctx->cpu_model, sizeof ctx->cpu_model, "%s", v);
      break;
    }
  if (f) fclose(f);
  for (char *c = ctx->cpu_model; *c; c++)
    if ((unsigned char)*c < 32 || *c == 127) *c = ' ';
  size_t n = strlen(ctx->cpu_model);
  while (n > 0 && ctx->cpu_model[n - 1] == ' ') ctx->cpu_model[--n] = 0;
  if (!n) snprintf(ctx->cpu_model, sizeof ctx->cpu_model, "unknown");
  return ctx->cpu_model;
}

/* one line of the file: its CPU, threads, key and lowering; 0 when it is not well-formed */
static int parse_line(const char *line, char *cpu, size_t ncpu, int *threads, int64_t *key, int *algo)
{
  const char *t1 = strchr(line, '\t'), *t2 = t1 ? strchr(t1 + 1, '\t') : NULL, *t3 = t2 ? strchr(t2 + 1, '\t') : NULL;
  if (!t3 || strchr(t3 + 1, '\t') || (size_t)(t1 - line) >= ncpu || t1 == line) return 0;
  memcpy(cpu, line, (size_t)(t1 - line));
  cpu[t1 - line] = 0;
  char *end;
  errno = 0;
  long th = strtol(t1 + 1, &end, 10);
  if (errno || end != t2 || th < 1 || th > KR_CONV_MAX_SLOTS) return 0;
  *threads = (int)th;
  /* the op by name (op numbers change between versions) */
  const char *p = t2 + 1, *sp = strchr(p, ' ');
  char op[40];
  if (!sp || sp > t3 || (size_t)(sp - p) >= sizeof op) return 0;
  memcpy(op, p, (size_t)(sp - p));
  op[sp - p] = 0;
  int o = kr_op_lookup(op);
  if (!(o == KR_OP_CONV2D || o == KR_OP_CONV2D_GRAD_INPUT || o == KR_OP_CONV2D_GRAD_KERNEL || kr_is_conv3d_op(o)))
    return 0;
  key[0] = o;
  p = sp + 1;
  for (int i = 1; i < KR_CONV_KEY; i++) {
    errno = 0;
    long long v = strtoll(p, &end, 10);
    if (errno || end == p || v < -((long long)1 << 40) || v > ((long long)1 << 40)) return 0;
    key[i] = v;
    p = end;
    if (i + 1 < KR_CONV_KEY && *p != ' ') return 0;
  }
  if (p != t3) return 0;
  char name[32];
  size_t nl = strcspn(t3 + 1, "\r\n");
  const char *rest = t3 + 1 + nl;
  if (nl == 0 || nl >= sizeof name || (strcmp(rest, "\n") != 0 && strcmp(rest, "\r\n") != 0)) return 0;
  memcpy(name, t3 + 1, nl);
  name[nl] = 0;
  for (int a = KR_CONV_ALGO_RULE + 1; a < KR_CONV_ALGO_COUNT; a++)
    if (strcmp(name, kr_conv_algo_name(a)) == 0) {
      *algo = a;
      return 1;
    }
  return 0;
}

/* the file's lines, each well-formed one passed to fn(line, arg) (fn returns
** 0 to stop); 0 when the file cannot be read or is too large */
static int read_cache(kr_ctx *ctx, const char *path, int (*fn)(const char *, void *), void *arg)
{
  char msg[KR_MSG_SIZE];
  int code = ctx->code;
  memcpy(msg, ctx->msg, sizeof msg);
  struct stat sb;
  int fd = access(path, F_OK) == 0 ? kr_open_regular(ctx, "conv autotune cache", path, &sb) : -1;
  ctx->code = code;   /* a missing or odd file is only an empty cache */
  memcpy(ctx->msg, msg, sizeof msg);
  if (fd < 0) return 0;
  FILE *f = sb.st_size <= CACHE_BYTES ? fdopen(fd, "r") : NULL;
  if (!f) {
    close(fd);
    return 0;
  }
  char line[CACHE_LINE];
  long total = 0;
  int skipping = 0;
  while (fgets(line, sizeof line, f)) {
    size_t n = strlen(line);
    total += (long)n;
    if (total > CACHE_BYTES) break;
    int whole = n > 0 && line[n - 1] == '\n';
    if (skipping || !whole) {   /* the rest of a line too long to be ours */
      skipping = !whole;
      continue;
    }
    if (!fn(line, arg)) break;
  }
  fclose(f);
  return 1;
}

typedef struct lookup {
  const char *cpu;
  int threads, algo;
  const int64_t *key;
} lookup;

static int lookup_line(const char *line, void *arg)
{
  lookup *l = arg;
  char cpu[KR_CONV_CPU_NAME];
  int threads, algo;
  int64_t key[KR_CONV_KEY];
  if (parse_line(line, cpu, sizeof cpu, &threads, key, &algo) && threads == l->threads && strcmp(cpu, l->cpu) == 0 &&
      memcmp(key, l->key, sizeof key) == 0)
    l->algo = algo;   /* the last line for a geometry wins */
  return 1;
}

/* the lowering the cache holds for this geometry, CPU and thread count, or RULE */
static int cache_lookup(kr_ctx *ctx, const char *path, const int64_t *key, int threads)
{
  lookup l = {.cpu = cpu_model(ctx), .threads = threads, .algo = KR_CONV_ALGO_RULE, .key = key};
  read_cache(ctx, path, lookup_line, &l);
  return l.algo;
}

typedef struct keep {
  char **lines;
  int n;
  const char *skip;   /* the line being replaced (its first three fields) */
  size_t nskip;
} keep;

static int keep_line(const char *line, void *arg)
{
  keep *k = arg;
  char cpu[KR_CONV_CPU_NAME];
  int threads, algo;
  int64_t key[KR_CONV_KEY];
  if (!parse_line(line, cpu, sizeof cpu, &threads, key, &algo) || strncmp(line, k->skip, k->nskip) == 0) return 1;
  if (k->n == CACHE_LINES - 1) {   /* full: the oldest goes */
    free(k->lines[0]);
    memmove(k->lines, k->lines + 1, (size_t)(k->n - 1) * sizeof *k->lines);
    k->n--;
  }
  char *c = strdup(line);
  if (c) k->lines[k->n++] = c;
  return 1;
}

/* this choice into the file: its lines, the one for the same geometry replaced */
static void cache_store(kr_ctx *ctx, const char *path, const kr_conv_tuned *e)
{
  char line[CACHE_LINE];
  int len = snprintf(line, sizeof line, "%s\t%d\t", cpu_model(ctx), e->threads);
  if (len > 0 && len < (int)sizeof line)
    len += snprintf(line + len, sizeof line - (size_t)len, "%s", kr_op_name((int)e->key[0]));
  for (int i = 1; i < KR_CONV_KEY && len > 0 && len < (int)sizeof line; i++)
    len += snprintf(line + len, sizeof line - (size_t)len, " %lld", (long long)e->key[i]);
  size_t head = (size_t)len;
  if (len > 0 && len < (int)sizeof line)
    len += snprintf(line + len, sizeof line - (size_t)len, "\t%s\n", kr_conv_algo_name(e->algo));
  if (len <= 0 || len >= (int)sizeof line - 1) return;
  keep k = {.lines = malloc(CACHE_LINES * sizeof(char *)), .skip = line, .nskip = head};
  if (!k.lines) return;
  read_cache(ctx, path, keep_line, &k);
  char msg[KR_MSG_SIZE];
  int code = ctx->code;
  memcpy(msg, ctx->msg, sizeof msg);
  char *tmp = NULL;
  FILE *f = kr_atomic_fopen(ctx, path, &tmp);
  if (f) {
    int ok = fputs(CACHE_HEADER, f) >= 0;
    for (int i = 0; i < k.n; i++) ok = ok && fputs(k.lines[i], f) >= 0;
    ok = ok && fputs(line, f) >= 0;
    kr_atomic_fclose(ctx, path, &tmp, f, ok);
  }
  ctx->code = code;   /* a cache that cannot be written is only not written */
  memcpy(ctx->msg, msg, sizeof msg);
  for (int i = 0; i < k.n; i++) free(k.lines[i]);
  free(k.lines);
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
  tune_key(n, key);
  for (int i = 1; i < KR_CONV_KEY - 2; i++)
    if (key[i] < 0) return;   /* a None length: nothing to time */
  if (find(ctx, key)) return;
  double t0 = kr_now();
  kr_conv_tuned e;
  memset(&e, 0, sizeof e);
  memcpy(e.key, key, sizeof key);
  e.rule = algo_rule(n);
  e.algo = e.rule;
  for (int k = 0; k < NCAND; k++)
    if (algo_valid(n, CANDIDATES[k])) {
      e.cand[e.ncand] = CANDIDATES[k];
      e.ms[e.ncand++] = -1;
    }
  int64_t tb = batch < TUNE_BATCH ? batch : TUNE_BATCH;
  e.batch = tb;
  e.threads = tune_workers(ctx, n, tb);
  const char *path = e.ncand > 1 ? kr_get_conv_tune_cache(ctx) : NULL;
  if (path) {
    int algo = cache_lookup(ctx, path, key, e.threads);
    if (algo != KR_CONV_ALGO_RULE && algo_valid(n, algo)) {
      e.algo = algo;
      e.cached = 1;
      for (int k = 0; k < e.ncand; k++) e.ms[k] = -1;
      ctx->conv_tuned[ctx->conv_ntuned++] = e;
      return;
    }
  }
  if (e.ncand > 1) {
    size_t na, nb, nout;
    tune_sizes(n, tb, &na, &nb, &nout);
    if ((na + nb + nout + scratch_floats) * sizeof(float) > TUNE_MAX_BYTES) return;
    float *a = buffer(na, 1), *b = buffer(nb, 1), *out = buffer(nout, 0), *scratch = buffer(scratch_floats, 0);
    if (a && b && out && scratch) {
      double best = -1, rule_ms = -1;
      for (int k = 0; k < e.ncand; k++) {
        double ms = -1;
        tune_run(n, tb, e.cand[k], a, b, out, scratch, e.threads);
        for (int r = 0; r < TUNE_RUNS; r++) {
          double s = kr_now();
          tune_run(n, tb, e.cand[k], a, b, out, scratch, e.threads);
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
  if (path) cache_store(ctx, path, &e);
}
