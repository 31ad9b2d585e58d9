/*
** ops_conv.h -- shape rules, gradient rules and kernels of the conv family
** (ops_conv.c, kernels/conv.c, kernels/spatial.c), named in the rows of ops_conv_rows.h.
**
** Layout: channels_last. A rank-4 tensor is (N, H, W, C); a rank-3 tensor
** (N, T, C) is the 1-D case, run as height 1 (H = 1, W = T). Attributes:
**   conv2d (x, w[, b])        i = {sh, sw, dh, dw, pt, pb, pl, pr}: strides,
**                             dilations, zero padding top/bottom/left/right;
**                             f0 = fused activation (0 linear, 1 relu);
**                             w (KH, KW, C, O) or (KW, C, O) for rank 3; b (O).
**   conv2d_grad_input   (dy, w, x[, y][, after])  -> x's shape
**                             f3 = 1: the result is masked by x > 0 (the
**                             relu of the conv below, applied as dx is
**                             written; see masked_dy in ops_conv.c)
**   conv2d_grad_kernel  (dy, x, w[, y])  -> w's shape, or with f2 = 1 the
**                             (K + 1, O) matrix of dw (K = KH*KW*C rows)
**                             and the bias gradient (the column sums of dy)
**                             as its last row;
**                             the conv's attributes; y (the conv node) is
**                             given when f0 = relu: dy is masked by y > 0;
**                             `after`: any node, not read, that must run
**                             first (orders the gradients in a plan).
**   max_pool2d, avg_pool2d (x)  i = {kh, kw, sh, sw, pt, pb, pl, pr};
**                             padded cells are ignored (the average divides
**                             by the number of real cells, as TensorFlow).
**   max_pool2d: f0 (set by the shape rule) = 1 when the argmax is kept in
**             aux, 0 when the input is a relu-fused conv2d (whose output
**             lives until the backward pass anyway: the gradient finds the
**             maxima again, and the pool's output can be freed early)
**   max_pool2d_grad (dy, pool node) with f0 = 1, (dy, x) with f0 = 0 and the
**             pool's attributes; with f0 = 0, f2 = 1: windows whose maximum
**             is not > 0 pass no gradient (the relu of the conv below);
**             avg_pool2d_grad (dy, x)
**   pad2d (x)  i = {top, bottom, left, right} zeros; crop2d (x) the same
**              amounts removed (each is the other's gradient)
**   upsample2d (x)  i = {sh, sw} repeats; upsample2d_grad (dy, x) sums
**   spatial_dropout (x)  f0 = rate: one mask value per (sample, channel),
**              aux keeps it; spatial_dropout_grad (dy, spatial_dropout node)
** For rank 3 the height entries must be neutral (stride/dilation/repeat 1,
** padding 0, pool height 1). The scratch slot count f1 of the conv ops is
** set by their shape rules (the context's thread count, at most 16).
*/
#ifndef KR_OPS_CONV_H
#define KR_OPS_CONV_H

#include "ops.h"

/* conv2d and its gradients: i[] geometry, f[] */
enum {
  KR_CONV_STRIDE_H, KR_CONV_STRIDE_W, KR_CONV_DILATION_H, KR_CONV_DILATION_W,
  KR_CONV_PAD_TOP, KR_CONV_PAD_BOTTOM, KR_CONV_PAD_LEFT, KR_CONV_PAD_RIGHT
};
enum {
  KR_CONV_RELU = 0,        /* the fused activation: 0 linear, 1 relu */
  KR_CONV_SLOTS = 1,       /* scratch slots (set by the shape rules) */
  KR_CONV_WITH_BIAS = 2,   /* conv2d_grad_kernel: the bias gradient as the last row */
  KR_CONV_MASK_X = 3       /* conv2d_grad_input: the result masked by x > 0 */
};
/* max_pool2d, avg_pool2d and their gradients: i[] window and geometry, f[] */
enum {
  KR_POOL_SIZE_H, KR_POOL_SIZE_W, KR_POOL_STRIDE_H, KR_POOL_STRIDE_W,
  KR_POOL_PAD_TOP, KR_POOL_PAD_BOTTOM, KR_POOL_PAD_LEFT, KR_POOL_PAD_RIGHT
};
enum {
  KR_POOL_KEEP_ARGMAX = 0, /* max_pool2d (set by the shape rule) */
  KR_POOL_RELU_BELOW = 2   /* max_pool2d_grad without argmax: the conv below is relu-fused */
};
/* pad2d, crop2d: i[] */
enum { KR_PAD2D_TOP, KR_PAD2D_BOTTOM, KR_PAD2D_LEFT, KR_PAD2D_RIGHT };
/* upsample2d: i[] */
enum { KR_UPSAMPLE_H, KR_UPSAMPLE_W };
/* spatial_dropout: f[] */
enum { KR_SDROP_RATE = 0 };

/* ops_conv.c: the attributes taken by name (the rows of ops_conv_rows.h) */
extern const kr_attrname kr_conv_attrs[], kr_pool_attrs[], kr_pad2d_attrs[], kr_upsample_attrs[],
  kr_sdrop_attrs[];

/* ops_conv.c: shape rules */
int kr_conv_shape(kr_ctx *ctx, kr_node *n);
int kr_conv_grad_input_shape(kr_ctx *ctx, kr_node *n);
int kr_conv_grad_kernel_shape(kr_ctx *ctx, kr_node *n);
int kr_pool_shape(kr_ctx *ctx, kr_node *n);
int kr_maxpool_grad_shape(kr_ctx *ctx, kr_node *n);
int kr_avgpool_grad_shape(kr_ctx *ctx, kr_node *n);
int kr_pad2d_shape(kr_ctx *ctx, kr_node *n);
int kr_crop2d_shape(kr_ctx *ctx, kr_node *n);
int kr_upsample_shape(kr_ctx *ctx, kr_node *n);
int kr_upsample_grad_shape(kr_ctx *ctx, kr_node *n);
int kr_sdrop_shape(kr_ctx *ctx, kr_node *n);
int kr_sdrop_grad_shape(kr_ctx *ctx, kr_node *n);

/* ops_conv.c: gradient rules */
int kr_conv_grad(kr_ctx *ctx, kr_node *n, kr_node *dy, kr_node **dx);
int kr_maxpool_grad(kr_ctx *ctx, kr_node *n, kr_node *dy, kr_node **dx);
int kr_avgpool_grad(kr_ctx *ctx, kr_node *n, kr_node *dy, kr_node **dx);
int kr_pad2d_grad(kr_ctx *ctx, kr_node *n, kr_node *dy, kr_node **dx);
int kr_crop2d_grad(kr_ctx *ctx, kr_node *n, kr_node *dy, kr_node **dx);
int kr_upsample_grad(kr_ctx *ctx, kr_node *n, kr_node *dy, kr_node **dx);
int kr_sdrop_grad(kr_ctx *ctx, kr_node *n, kr_node *dy, kr_node **dx);

/* kernels/conv.c: scratch sizes (floats) */
size_t kr_conv_scratch(const kr_node *n, int64_t batch);
size_t kr_conv_grad_input_scratch(const kr_node *n, int64_t batch);
size_t kr_conv_grad_kernel_scratch(const kr_node *n, int64_t batch);
/* kernels/spatial.c: aux sizes (floats) */
size_t kr_maxpool_aux(const kr_node *n, int64_t batch);
size_t kr_sdrop_aux(const kr_node *n, int64_t batch);

/* kernels/conv.c: kernels */
int kr_k_conv2d(const kr_exec *e);
int kr_k_conv2d_grad_input(const kr_exec *e);
int kr_k_conv2d_grad_kernel(const kr_exec *e);
/* kernels/conv.c: the workers for N samples and `work` multiply-adds (or
** copied floats), at most `slots`; also used by kernels/spatial.c */
int kr_conv_workers(const kr_exec *e, int64_t N, double work, int slots);

/* kernels/spatial.c: kernels */
int kr_k_max_pool2d(const kr_exec *e);
int kr_k_max_pool2d_grad(const kr_exec *e);
int kr_k_avg_pool2d(const kr_exec *e);
int kr_k_avg_pool2d_grad(const kr_exec *e);
int kr_k_pad2d(const kr_exec *e);
int kr_k_crop2d(const kr_exec *e);
int kr_k_upsample2d(const kr_exec *e);
int kr_k_upsample2d_grad(const kr_exec *e);
int kr_k_spatial_dropout(const kr_exec *e);
int kr_k_spatial_dropout_grad(const kr_exec *e);

/* the scratch slot count a conv node was planned with (f1) */
#define KR_CONV_MAX_SLOTS 16

/* depthwise_conv2d (x, w) (ops_dwconv.c, kernels/dwconv.c): w (KH, KW, C, M)
** or (KW, C, M) for rank 3, output channel c*M + m (TensorFlow's order);
** i[] as conv2d's (KR_CONV_STRIDE_H ...), no fused activation, no bias.
**   depthwise_conv2d_grad_input  (dy, w, x) -> x's shape
**   depthwise_conv2d_grad_kernel (dy, x, w) -> w's shape; its scratch holds
**             KR_DWCONV_GROUPS partial sums (a fixed split of the samples,
**             summed in order: the same result for any thread count) */
#define KR_DWCONV_GROUPS 16
extern const kr_attrname kr_dwconv_attrs[];
int kr_dwconv_shape(kr_ctx *ctx, kr_node *n);
int kr_dwconv_grad_input_shape(kr_ctx *ctx, kr_node *n);
int kr_dwconv_grad_kernel_shape(kr_ctx *ctx, kr_node *n);
int kr_dwconv_grad(kr_ctx *ctx, kr_node *n, kr_node *dy, kr_node **dx);
size_t kr_dwconv_grad_kernel_scratch(const kr_node *n, int64_t batch);
int kr_k_depthwise_conv2d(const kr_exec *e);
int kr_k_depthwise_conv2d_grad_input(const kr_exec *e);
int kr_k_depthwise_conv2d_grad_kernel(const kr_exec *e);

/* ---- the lowerings of conv2d and its gradients, and their autotuner ----
** (kernels/conv.c, conv_tune.c; docs/design.md "Convolution lowering and
** autotuning"). RULE is the fixed rule; the others name one candidate.
** forward: IM2COL, WINOGRAD (3x3), WINOGRAD1D (3), DIRECT (AVX-512 tiles);
** input gradient: COL2IM, or at stride 1 one of the forward's four on the
** transposed geometry; kernel gradient: IM2COL or DIRECT (avx_dw).
** PACKED: forward products (and so stride-1 input gradients) by the
** engine's packed GEMM, pointwise ones (1x1, stride 1, no padding) read in
** place, the others unfolded by blocks; and pointwise kernel gradients on
** AVX-512 CPUs, x^T dz by register tiles (kernels/conv_pw.c). */
enum {
  KR_CONV_ALGO_RULE, KR_CONV_ALGO_IM2COL, KR_CONV_ALGO_WINOGRAD, KR_CONV_ALGO_WINOGRAD1D, KR_CONV_ALGO_DIRECT,
  KR_CONV_ALGO_COL2IM, KR_CONV_ALGO_PACKED, KR_CONV_ALGO_LOOPS, KR_CONV_ALGO_COUNT
};
/* The depthwise passes (kernels/dwconv.c) go through the same tuner: DIRECT
** (AVX-512 register kernels, M = 1 and channels a multiple of 16) or LOOPS
** (the vectorized loops, every geometry). */
int kr_dw_algo_valid(const kr_node *n, int algo);
int kr_dw_algo_rule(const kr_node *n);
void kr_dw_tune_sizes(const kr_node *n, int64_t batch, size_t *a, size_t *b, size_t *out);
void kr_dw_tune_run(kr_ctx *ctx, const kr_node *n, int64_t batch, int algo, const float *a, const float *b,
                    float *out, float *scratch);
int kr_dw_tune_workers(kr_ctx *ctx, const kr_node *n, int64_t batch);
size_t kr_dwconv_scratch(const kr_node *n, int64_t batch);
#define KR_CONV_KEY 24   /* numbers in a geometry's cache key (conv3d's use 23) */
#define KR_CONV_TUNE_MAX 256  /* tuned geometries kept per context (2-D and 3-D) */

/* one tuned geometry: the key, the pass, the lowerings timed and the choice */
typedef struct kr_conv_tuned {
  int64_t key[KR_CONV_KEY];
  int64_t batch;       /* the batch it was timed at */
  int threads;         /* the workers it was timed on */
  int algo, rule;      /* the choice; the fixed rule's */
  int ncand;
  int cand[KR_CONV_ALGO_COUNT];
  double ms[KR_CONV_ALGO_COUNT];   /* best time of each candidate (ms); < 0: not timed (one candidate) */
  int cached;          /* the choice came from the on-disk cache (nothing timed) */
} kr_conv_tuned;

/* conv_tune.c: the public switches and the report */
void kr_set_conv_autotune(kr_ctx *ctx, int on);
int kr_get_conv_autotune(const kr_ctx *ctx);
int kr_conv_autotune_count(const kr_ctx *ctx);
const kr_conv_tuned *kr_conv_autotune_entry(const kr_ctx *ctx, int i);
double kr_conv_autotune_seconds(const kr_ctx *ctx);
void kr_conv_autotune_clear(kr_ctx *ctx);
const char *kr_conv_algo_name(int algo);
const char *kr_conv_pass_name(int op);
/* the on-disk cache of the choices (conv_tune.c, docs/design.md): path, or
** NULL to keep none (the environment's LKERAS_CONV_TUNE_CACHE is then not
** read either); KR_EARG for a path too long. kr_get_conv_tune_cache: the
** file in use, or NULL. */
#define KR_CONV_CACHE_PATH 1024
#define KR_CONV_CPU_NAME 128
int kr_set_conv_tune_cache(kr_ctx *ctx, const char *path);
const char *kr_get_conv_tune_cache(kr_ctx *ctx);
/* tests: every conv2d pass of ctx runs by `algo` where it is valid (RULE: off) */
void kr_conv_force_algo(kr_ctx *ctx, int algo);
/* conv_tune.c, called by the scratch sizes and the kernels of kernels/conv.c */
void kr_conv_tune(const kr_node *n, int64_t batch, size_t scratch_floats);
int kr_conv_algo(kr_ctx *ctx, const kr_node *n);
/* kernels/conv.c: what the tuner needs of a node */
int kr_conv_algo_valid(const kr_node *n, int algo);
int kr_conv_algo_rule(const kr_node *n);
void kr_conv_tune_key(const kr_node *n, int64_t *key);
void kr_conv_tune_sizes(const kr_node *n, int64_t batch, size_t *a, size_t *b, size_t *out);
void kr_conv_tune_run(const kr_node *n, int64_t batch, int algo, const float *a, const float *b, float *out,
                      float *scratch, int T);
int kr_conv_tune_workers(kr_ctx *ctx, const kr_node *n, int64_t batch);

#include "ops_conv3d.h"

#endif
