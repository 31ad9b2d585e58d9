/*
** gemm_packed.h -- C = act(A B + bias) with B packed once in the kernel's
** panel layout (gemm_packed.c). Inference plans (plan.c) keep each Dense
** layer's weights packed this way and repack them only when they change.
*/
#ifndef KR_GEMM_PACKED_H
#define KR_GEMM_PACKED_H

#include "../kr.h"

/* the kernels, by instruction level; each runs only where the CPU has it */
enum { KR_GEMM_GENERIC = 0, KR_GEMM_AVX2 = 1, KR_GEMM_AVX512 = 2 };

/* the best kernel this CPU runs (from blas.c's CPUID ranking) */
int kr_gemm_isa_best(void);
const char *kr_gemm_isa_name(int isa);

/* what happens to a finished tile, in cache, before the next one:
**   relu: max(x, 0) in registers;
**   map:  y[0..n) = f(x[0..n)) on a piece of one row (an elementwise activation);
**   rows: y = f(x) on whole rows once all of a row block's panels are done
**         (softmax); the products go first to `pre` (M x N floats), and
**         the output's row stride must be N. */
typedef struct kr_gemm_epi {
  int relu;
  void (*map)(void *ud, const float *x, float *y, int64_t n);
  void (*rows)(void *ud, const float *x, float *y, int64_t rows, int64_t n);
  void *ud;
  float *pre;
} kr_gemm_epi;

typedef struct kr_gemm_pack {
  int isa, mr, nr;
  int64_t K, N, Np;       /* Np: N rounded up to nr */
  float *b;               /* Np / nr panels of K x nr floats (row k of a panel contiguous), 64-byte aligned */
  float *bias;            /* Np floats: the bias, zeros past N (all zeros without one) */
  void *mem;              /* the allocation behind b and bias */
} kr_gemm_pack;

/* a pack for K x N weights (NULL with the context's error set on failure) */
kr_gemm_pack *kr_gemm_pack_new(kr_ctx *ctx, int isa, int64_t K, int64_t N);
void kr_gemm_pack_free(kr_ctx *ctx, kr_gemm_pack *pk);
/* a pack over the caller's memory (a kernel's scratch: no allocation): the
** floats it needs for K x N weights, and the pack laid out on `mem` (any
** float alignment; kr_gemm_pack_free must not be called on it) */
size_t kr_gemm_pack_floats(int isa, int64_t K, int64_t N);
void kr_gemm_pack_view(kr_gemm_pack *pk, int isa, int64_t K, int64_t N, float *mem);
/* packs W (K x N row-major, or N x K when trans) and bias (N floats, or NULL) */
void kr_gemm_pack_set(kr_gemm_pack *pk, const float *W, int trans, const float *bias);

/* C (M x N, row stride ldc) = epilogue(A (M x K, row stride lda) B + bias),
** on T threads: row blocks of whole micro-tiles, each output element's sum
** over K in one thread, in the order k = 0, 1, ..., K-1, so the result does
** not depend on T. */
void kr_gemm_packed(const kr_gemm_pack *pk, const float *A, int64_t M, int64_t lda, float *C, int64_t ldc,
                    const kr_gemm_epi *epi, int T);

/* 1 when the packed kernel `isa` is faster than OpenBLAS's sgemm (bias rows
** copied, then beta = 1) for an M x K by K x N product on this machine:
** measured once per process and shape, one thread on each side (so the
** choice does not depend on the thread count). 0 also when the measurement
** cannot allocate its buffers. */
int kr_gemm_prefer_packed(kr_ctx *ctx, int isa, int64_t M, int64_t N, int64_t K);

#endif
