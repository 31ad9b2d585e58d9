/*
** ctx_impl.h -- the inside of kr_ctx, for the engine's own files.
*/
#ifndef KR_CTX_IMPL_H
#define KR_CTX_IMPL_H

#include "kr.h"
#include "ops_conv.h"   /* kr_conv_tuned */

/* one measured choice of the packed GEMM (kernels/gemm_packed.c) */
#define KR_GEMM_CHOICES 128
typedef struct kr_gemm_choice { int isa; int64_t M, N, K; int packed; } kr_gemm_choice;

struct kr_ctx {
  char msg[KR_MSG_SIZE];
  int code;
  size_t in_use, peak;
  size_t max_alloc;            /* one allocation above this fails: the machine's memory */
  uint64_t nallocs;            /* allocations so far: tests check the batch loop makes none */
  long fail_at;
  uint64_t rng[4];
  double spare;
  int have_spare;
  int threads;
  int gemm_packed;             /* kr_set_gemm_packed */
  /* the packed GEMM's measured choices (gemm_packed.c), per shape */
  int gemm_nchoices;
  kr_gemm_choice gemm_choices[KR_GEMM_CHOICES];
  uint64_t next_node_id;
  uint64_t moves;              /* storages moved (kr_tensor_move): plans bind again */
  size_t limit;                /* engine bytes in use may not pass this (0: no limit) */
  int limit_hit;               /* the last failed allocation was refused by the limit */
  kr_alloc_fn alloc;           /* the host's allocator (a lua_Alloc), NULL: posix_memalign */
  void *alloc_ud;
  /* the conv autotuner (conv_tune.c): off (0: on), a forced lowering (tests), the tuned geometries */
  int conv_autotune_off, conv_force;
  int conv_ntuned;
  double conv_tune_s;
  kr_conv_tuned conv_tuned[KR_CONV_TUNE_MAX];
  /* its on-disk cache (conv_tune.c): the file ("" and unset: LKERAS_CONV_TUNE_CACHE), and the CPU's name */
  char conv_cache[KR_CONV_CACHE_PATH];
  int conv_cache_set;          /* kr_set_conv_tune_cache was called: the environment is not read */
  char cpu_model[KR_CONV_CPU_NAME];
};

/* xoshiro256** step, inline for kernels that draw many numbers (dropout) */
static inline uint64_t kr_rng_next(kr_ctx *ctx)
{
  uint64_t *s = ctx->rng;
  uint64_t r = ((s[1] * 5) << 7 | (s[1] * 5) >> 57) * 9;
  uint64_t t = s[1] << 17;
  s[2] ^= s[0];
  s[3] ^= s[1];
  s[1] ^= s[2];
  s[0] ^= s[3];
  s[2] ^= t;
  s[3] = (s[3] << 45) | (s[3] >> 19);
  return r;
}

/* Flush-to-zero while the engine runs a loop: optimizer accumulators that
** decay towards zero would otherwise turn denormal and slow every step
** tenfold. The caller's floating-point mode is restored afterwards, so a host
** program embedding the library is not affected. */
#if defined(__SSE__) || defined(__x86_64__)
#include <xmmintrin.h>
typedef unsigned kr_fpmode;
static inline kr_fpmode kr_fp_enter(void)
{
  unsigned old = _mm_getcsr();
  _mm_setcsr(old | 0x8040);   /* FTZ | DAZ */
  return old;
}
static inline void kr_fp_leave(kr_fpmode old) { _mm_setcsr(old); }
#else
typedef int kr_fpmode;
static inline kr_fpmode kr_fp_enter(void) { return 0; }
static inline void kr_fp_leave(kr_fpmode old) { (void)old; }
#endif

#endif
