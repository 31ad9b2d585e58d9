/*
** kernels.h -- forward kernels of the graph ops, one per op (see opdefs.h for
** what each computes). Each takes the plan's kr_exec record: output first,
** inputs, concrete shapes. Kernels never allocate; they return KR_OK or fail
** through kr_fail for data errors (an id out of range).
*/
#ifndef KR_KERNELS_H
#define KR_KERNELS_H

#include "../ops.h"

/* the outer x n x inner view of shape s around axis ax (reductions along one
** axis: softmax, argmax, cumsum, ...) */
static inline void kr_split_axis(const kr_shape *s, int64_t ax, int64_t *outer, int64_t *n, int64_t *inner)
{
  *outer = 1;
  *inner = 1;
  for (int64_t i = 0; i < ax; i++) *outer *= s->dim[i];
  for (int64_t i = ax + 1; i < s->ndim; i++) *inner *= s->dim[i];
  *n = s->dim[ax];
}

/* elementwise.c */
int kr_k_add(const kr_exec *e);
int kr_k_sub(const kr_exec *e);
int kr_k_mul(const kr_exec *e);
int kr_k_div(const kr_exec *e);
int kr_k_pow(const kr_exec *e);
int kr_k_maximum(const kr_exec *e);
int kr_k_minimum(const kr_exec *e);
int kr_k_equal(const kr_exec *e);
int kr_k_not_equal(const kr_exec *e);
int kr_k_greater(const kr_exec *e);
int kr_k_greater_equal(const kr_exec *e);
int kr_k_less(const kr_exec *e);
int kr_k_less_equal(const kr_exec *e);
int kr_k_neg(const kr_exec *e);
int kr_k_abs(const kr_exec *e);
int kr_k_sign(const kr_exec *e);
int kr_k_square(const kr_exec *e);
int kr_k_sqrt(const kr_exec *e);
int kr_k_exp(const kr_exec *e);
int kr_k_log(const kr_exec *e);
int kr_k_round(const kr_exec *e);
int kr_k_floor(const kr_exec *e);
int kr_k_scale(const kr_exec *e);
int kr_k_pows(const kr_exec *e);
int kr_k_clip(const kr_exec *e);
int kr_k_relu(const kr_exec *e);
int kr_k_sigmoid(const kr_exec *e);
int kr_k_hard_sigmoid(const kr_exec *e);
int kr_k_tanh(const kr_exec *e);
int kr_k_softplus(const kr_exec *e);
int kr_k_softsign(const kr_exec *e);
int kr_k_elu(const kr_exec *e);
int kr_k_selu(const kr_exec *e);
int kr_k_thresholded_relu(const kr_exec *e);
int kr_k_identity(const kr_exec *e);
int kr_k_zeros_like(const kr_exec *e);
int kr_k_relu_grad(const kr_exec *e);
int kr_k_sigmoid_grad(const kr_exec *e);
int kr_k_tanh_grad(const kr_exec *e);
int kr_k_hard_sigmoid_grad(const kr_exec *e);
int kr_k_elu_grad(const kr_exec *e);
int kr_k_selu_grad(const kr_exec *e);
int kr_k_clip_grad(const kr_exec *e);
int kr_k_thresholded_relu_grad(const kr_exec *e);
int kr_k_dropout(const kr_exec *e);
int kr_k_dropout_grad(const kr_exec *e);
int kr_k_in_train_phase(const kr_exec *e);

/* reduce.c */
int kr_k_softmax(const kr_exec *e);
int kr_k_softmax_grad(const kr_exec *e);
int kr_k_log_softmax(const kr_exec *e);
int kr_k_log_softmax_grad(const kr_exec *e);
int kr_k_reduce(const kr_exec *e);
int kr_k_argreduce(const kr_exec *e);
int kr_k_reduce_grad(const kr_exec *e);
int kr_k_maxmin_grad(const kr_exec *e);
int kr_k_prod_grad(const kr_exec *e);
int kr_k_sum_to(const kr_exec *e);
int kr_k_broadcast_to(const kr_exec *e);

/* linalg.c */
/* C = alpha op(A) op(B) + beta C (row-major, op = transpose when ta / tb),
** cut into fixed tiles of rows or columns (a function of M, N, K alone),
** each a single-threaded sgemm, run on up to T threads: the same floats for
** any T (threadpool.h, "Determinism") */
void kr_sgemm_fixed(int T, int ta, int tb, int64_t M, int64_t N, int64_t K, float alpha, const float *A,
                    int64_t lda, const float *B, int64_t ldb, float beta, float *C, int64_t ldc);
int kr_k_matmul(const kr_exec *e);
int kr_k_linear(const kr_exec *e);
int kr_k_batch_matmul(const kr_exec *e);

/* shape.c */
int kr_k_transpose(const kr_exec *e);
int kr_k_concat(const kr_exec *e);
int kr_k_slice(const kr_exec *e);
int kr_k_pad_axis(const kr_exec *e);
int kr_k_gather(const kr_exec *e);
int kr_k_gather_grad(const kr_exec *e);
int kr_k_one_hot(const kr_exec *e);

/* norm.c */
int kr_k_batchnorm(const kr_exec *e);
int kr_k_batchnorm_grad(const kr_exec *e);
int kr_k_batchnorm_grad_param(const kr_exec *e);

/* shared by the kernels: strides of `in` aligned to `out` (0 on broadcast axes) */
void kr_bcast_strides(const kr_shape *in, const kr_shape *out, int64_t *st);

/* loops built for AVX-512, AVX2 and plain x86-64, picked at load time
** (GCC's target_clones): the conv family's data movement, dropout */
#if defined(__GNUC__) && !defined(__clang__) && defined(__x86_64__) && defined(__linux__)
#define VEC_CLONES __attribute__((target_clones("avx512f", "avx2", "default")))
#else
#define VEC_CLONES
#endif

#endif
