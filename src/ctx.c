/*
** ctx.c -- the per-state context: error message, counting allocator, random
** generator, thread setting. There is no global mutable state in the engine;
** the one process-wide setting we touch is OpenBLAS's thread count (see
** kr_set_num_threads).
*/
#include "kr.h"
#include "ctx_impl.h"
#include "openblas.h"

#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

/* ---- shapes ---- */

kr_shape kr_shape_make(int ndim, const int64_t *dim)
{
  kr_shape s;
  memset(&s, 0, sizeof s);
  s.ndim = ndim;
  for (int i = 0; i < ndim; i++) s.dim[i] = dim[i];
  return s;
}

int64_t kr_shape_numel(const kr_shape *s)
{
  int64_t n = 1;
  for (int i = 0; i < s->ndim; i++) n *= (s->dim[i] < 0 ? -s->dim[i] : s->dim[i]);
  return n;
}

int kr_shape_numel_checked(const kr_shape *s, uint64_t *n)
{
  uint64_t p = 1;
  int zero = 0, over = 0;
  for (int i = 0; i < s->ndim; i++) {
    int64_t d = s->dim[i];
    uint64_t a = d < 0 ? (uint64_t)0 - (uint64_t)d : (uint64_t)d;   /* a batch axis -k counts as k */
    if (a > KR_NUMEL_MAX) return KR_EARG;   /* even beside a zero: its strides would overflow */
    if (a == 0) zero = 1;
    else if (p > KR_NUMEL_MAX / a) over = 1;
    else p *= a;
  }
  *n = zero ? 0 : p;
  return zero || !over ? KR_OK : KR_EARG;
}

int kr_shape_eq(const kr_shape *a, const kr_shape *b)
{
  if (a->ndim != b->ndim) return 0;
  for (int i = 0; i < a->ndim; i++)
    if (a->dim[i] != b->dim[i]) return 0;
  return 1;
}

int kr_shape_has_none(const kr_shape *s)
{
  for (int i = 1; i < s->ndim; i++)
    if (s->dim[i] < 0) return 1;
  return 0;
}

char *kr_shape_str(const kr_shape *s, char *buf, size_t n)
{
  size_t k = 0;
  if (n == 0) return buf;
  buf[0] = '\0';
  k += (size_t)snprintf(buf + k, n - k, "(");
  for (int i = 0; i < s->ndim && k < n; i++) {
    if (s->dim[i] < 0)
      k += (size_t)snprintf(buf + k, n - k, "%sNone", i ? ", " : "");
    else
      k += (size_t)snprintf(buf + k, n - k, "%s%lld", i ? ", " : "", (long long)s->dim[i]);
  }
  if (k < n) k += (size_t)snprintf(buf + k, n - k, s->ndim == 1 ? ",)" : ")");
  return buf;
}

/* ---- context ---- */

kr_ctx *kr_ctx_new(void)
{
  kr_blas_init();   /* once per process: OpenBLAS's kernels fit the CPU */
  kr_ctx *ctx = calloc(1, sizeof *ctx);
  if (!ctx) return NULL;
  kr_rng_seed(ctx, (uint64_t)time(NULL) ^ ((uint64_t)getpid() << 32) ^ (uint64_t)(uintptr_t)ctx);
  long pages = sysconf(_SC_PHYS_PAGES), psize = sysconf(_SC_PAGESIZE);
  ctx->max_alloc = pages > 0 && psize > 0 ? (size_t)pages * (size_t)psize : ((size_t)1 << 40);
  long nc = sysconf(_SC_NPROCESSORS_ONLN);
  ctx->threads = nc > 0 ? (int)nc : 1;
  const char *gp = getenv("LKERAS_GEMM_PACKED");
  ctx->gemm_packed = gp && (strcmp(gp, "0") == 0 || strcmp(gp, "1") == 0) ? gp[0] - '0' : 2;
  return ctx;
}

void kr_ctx_free(kr_ctx *ctx)
{
  free(ctx);
}

int kr_fail(kr_ctx *ctx, int code, const char *fmt, ...)
{
  va_list ap;
  va_start(ap, fmt);
  int k = vsnprintf(ctx->msg, sizeof ctx->msg, fmt, ap);
  va_end(ap);
  /* an out-of-memory message right after the memory limit refused a block
  ** (the caller's words replace kr_malloc's) still names the limit */
  if (code == KR_EMEM && ctx->limit_hit && k >= 0 && (size_t)k < sizeof ctx->msg && !strstr(ctx->msg, "memory limit"))
    snprintf(ctx->msg + k, sizeof ctx->msg - (size_t)k,
             " (memory limit of %zu bytes reached: keras.backend.set_memory_limit / lk_set_memory_limit)", ctx->limit);
  ctx->limit_hit = 0;
  ctx->code = code;
  return code;
}

const char *kr_errmsg(const kr_ctx *ctx) { return ctx->msg; }
int kr_errcode(const kr_ctx *ctx) { return ctx->code; }

/* ---- allocator: a size header in front of each block ----
** Blocks come from posix_memalign, or from the host's allocator (a lua_Alloc,
** kr_ctx_set_allocator): that one does not align, so we ask for 64 bytes
** more and keep the offset back to its block in the header. */

#define HDR 64   /* keeps the payload 64-byte aligned */

typedef struct blk_hdr {
  size_t n;        /* payload bytes */
  size_t shift;    /* host allocator: payload - HDR - the host's block */
} blk_hdr;

void *kr_malloc(kr_ctx *ctx, size_t n)
{
  if (ctx->fail_at > 0 && --ctx->fail_at == 0) {
    kr_fail(ctx, KR_EMEM, "out of memory (injected failure)");
    return NULL;
  }
  if (n > ctx->max_alloc || n > SIZE_MAX - 2 * HDR) {
    kr_fail(ctx, KR_EMEM, "out of memory (asked for %zu bytes)", n);
    return NULL;
  }
  if (ctx->limit && (n > ctx->limit || ctx->in_use > ctx->limit - n)) {
    kr_fail(ctx, KR_EMEM, "memory limit of %zu bytes reached: %zu bytes in use, asked for %zu more "
            "(keras.backend.set_memory_limit / lk_set_memory_limit)", ctx->limit, ctx->in_use, n);
    ctx->limit_hit = 1;
    return NULL;
  }
  char *b = NULL;
  size_t shift = 0;
  if (ctx->alloc) {
    char *raw = ctx->alloc(ctx->alloc_ud, NULL, 0, n + 2 * HDR);
    if (raw) {
      b = (char *)(((uintptr_t)raw + HDR - 1) & ~(uintptr_t)(HDR - 1));
      shift = (size_t)(b - raw);
    }
  } else {
    void *p = NULL;
    if (posix_memalign(&p, HDR, n + HDR) == 0) b = p;
  }
  if (!b) {
    kr_fail(ctx, KR_EMEM, "out of memory (asked for %zu bytes)", n);
    return NULL;
  }
  ((blk_hdr *)b)->n = n;
  ((blk_hdr *)b)->shift = shift;
  ctx->limit_hit = 0;
  ctx->nallocs++;
  ctx->in_use += n;
  if (ctx->in_use > ctx->peak) ctx->peak = ctx->in_use;
  return b + HDR;
}

void *kr_calloc(kr_ctx *ctx, size_t n)
{
  void *p = kr_malloc(ctx, n);
  if (p) memset(p, 0, n);
  return p;
}

void kr_free(kr_ctx *ctx, void *p)
{
  if (!p) return;
  char *b = (char *)p - HDR;
  size_t n = ((blk_hdr *)b)->n;
  ctx->in_use -= n;
  if (ctx->alloc) ctx->alloc(ctx->alloc_ud, b - ((blk_hdr *)b)->shift, n + 2 * HDR, 0);
  else free(b);
}

int kr_ctx_set_allocator(kr_ctx *ctx, kr_alloc_fn fn, void *ud)
{
  if (ctx->nallocs > 0 && ctx->in_use > 0 && fn != ctx->alloc)
    return kr_fail(ctx, KR_EARG, "set_allocator: the context has allocated already; set it first");
  ctx->alloc = fn;
  ctx->alloc_ud = ud;
  return KR_OK;
}

void kr_mem_set_limit(kr_ctx *ctx, size_t bytes) { ctx->limit = bytes; }
size_t kr_mem_limit(const kr_ctx *ctx) { return ctx->limit; }

size_t kr_mem_in_use(const kr_ctx *ctx) { return ctx->in_use; }
size_t kr_mem_peak(const kr_ctx *ctx) { return ctx->peak; }
void kr_mem_fail_at(kr_ctx *ctx, long n) { ctx->fail_at = n; }
uint64_t kr_mem_allocs(const kr_ctx *ctx) { return ctx->nallocs; }

/* ---- random numbers: xoshiro256** seeded through splitmix64 ---- */

static uint64_t splitmix64(uint64_t *x)
{
  uint64_t z = (*x += 0x9e3779b97f4a7c15ULL);
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
  return z ^ (z >> 31);
}

void kr_rng_seed(kr_ctx *ctx, uint64_t seed)
{
  uint64_t x = seed;
  for (int i = 0; i < 4; i++) ctx->rng[i] = splitmix64(&x);
  ctx->have_spare = 0;
}

uint64_t kr_rng_u64(kr_ctx *ctx) { return kr_rng_next(ctx); }   /* the step is in ctx_impl.h */

double kr_rng_uniform(kr_ctx *ctx)
{
  return (double)(kr_rng_u64(ctx) >> 11) * 0x1.0p-53;
}

double kr_rng_normal(kr_ctx *ctx)
{
  if (ctx->have_spare) {
    ctx->have_spare = 0;
    return ctx->spare;
  }
  double u, v, s;
  do {
    u = 2.0 * kr_rng_uniform(ctx) - 1.0;
    v = 2.0 * kr_rng_uniform(ctx) - 1.0;
    s = u * u + v * v;
  } while (s >= 1.0 || s == 0.0);
  double m = sqrt(-2.0 * log(s) / s);
  ctx->spare = v * m;
  ctx->have_spare = 1;
  return u * m;
}

void kr_rng_shuffle(kr_ctx *ctx, int64_t *idx, int64_t n)
{
  for (int64_t i = n - 1; i > 0; i--) {
    int64_t j = (int64_t)(kr_rng_u64(ctx) % (uint64_t)(i + 1));
    int64_t t = idx[i];
    idx[i] = idx[j];
    idx[j] = t;
  }
}

/* ---- threads and time ---- */

void kr_set_num_threads(kr_ctx *ctx, int n)
{
  if (n < 1) n = 1;
  ctx->threads = n;
  openblas_set_num_threads(n);   /* process-wide: OpenBLAS has one pool */
}

int kr_get_num_threads(const kr_ctx *ctx) { return ctx->threads; }

void kr_set_gemm_packed(kr_ctx *ctx, int mode) { ctx->gemm_packed = mode < 0 || mode > 2 ? 2 : mode; }
int kr_get_gemm_packed(const kr_ctx *ctx) { return ctx->gemm_packed; }

double kr_now(void)
{
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}
