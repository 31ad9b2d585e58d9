/*
** elementwise.c -- elementwise kernels: binary ops with numpy broadcasting,
** activations and their gradient helpers, dropout.
** Binary ops take fast paths for equal shapes, a scalar side and a trailing
** (bias-like) operand; anything else walks the output with broadcast strides.
*/
#include "kernels.h"
#include "../ctx_impl.h"

#include <math.h>
#include <stdint.h>
#include <string.h>

void kr_bcast_strides(const kr_shape *in, const kr_shape *out, int64_t *st)
{
  int64_t s = 1;
  for (int i = out->ndim - 1; i >= 0; i--) {
    int k = i - (out->ndim - in->ndim);
    if (k < 0 || in->dim[k] == 1) st[i] = 0;
    else {
      st[i] = s;
      s *= in->dim[k];
    }
  }
}

/* b's shape, leading 1s aside, equals the trailing axes of y */
static int is_suffix(const kr_shape *b, const kr_shape *y)
{
  int lead = 0;
  while (lead < b->ndim && b->dim[lead] == 1) lead++;
  int nb = b->ndim - lead;
  if (nb > y->ndim) return 0;
  for (int i = 0; i < nb; i++)
    if (b->dim[lead + i] != y->dim[y->ndim - nb + i]) return 0;
  return 1;
}

#define BINARY(fname, EXPR)                                                          \
  int fname(const kr_exec *e)                                                        \
  {                                                                                  \
    const float *restrict A = e->x[0], *restrict Bv = e->x[1];                       \
    float *restrict Y = e->y;                                                        \
    int64_t ny = kr_numel(e->ys), na = kr_numel(e->xs[0]), nb = kr_numel(e->xs[1]); \
    if (na == ny && nb == ny) {                                                      \
      for (int64_t i = 0; i < ny; i++) { float a = A[i], b = Bv[i]; Y[i] = (EXPR); } \
      return KR_OK;                                                                  \
    }                                                                                \
    if (nb == 1 && na == ny) {                                                       \
      float b = Bv[0];                                                               \
      for (int64_t i = 0; i < ny; i++) { float a = A[i]; Y[i] = (EXPR); }           \
      return KR_OK;                                                                  \
    }                                                                                \
    if (na == 1 && nb == ny) {                                                       \
      float a = A[0];                                                                \
      for (int64_t i = 0; i < ny; i++) { float b = Bv[i]; Y[i] = (EXPR); }           \
      return KR_OK;                                                                  \
    }                                                                                \
    if (na == ny && nb > 0 && is_suffix(e->xs[1], e->ys)) {                          \
      for (int64_t r = 0; r < ny / nb; r++) {                                        \
        const float *ar = A + r * nb; float *yr = Y + r * nb;                        \
        for (int64_t j = 0; j < nb; j++) { float a = ar[j], b = Bv[j]; yr[j] = (EXPR); } \
      }                                                                              \
      return KR_OK;                                                                  \
    }                                                                                \
    if (nb == ny && na > 0 && is_suffix(e->xs[0], e->ys)) {                          \
      for (int64_t r = 0; r < ny / na; r++) {                                        \
        const float *br = Bv + r * na; float *yr = Y + r * na;                       \
        for (int64_t j = 0; j < na; j++) { float a = A[j], b = br[j]; yr[j] = (EXPR); } \
      }                                                                              \
      return KR_OK;                                                                  \
    }                                                                                \
    const kr_shape *ys = e->ys;                                                      \
    int r = ys->ndim;                                                                \
    int64_t sa[KR_MAX_DIMS], sb[KR_MAX_DIMS], idx[KR_MAX_DIMS] = {0};                \
    kr_bcast_strides(e->xs[0], ys, sa);                                              \
    kr_bcast_strides(e->xs[1], ys, sb);                                              \
    int64_t inner = ys->dim[r - 1], ia = sa[r - 1], ib = sb[r - 1];                  \
    int64_t oa = 0, ob = 0;                                                          \
    for (int64_t o = 0; o < ny; o += inner) {                                        \
      for (int64_t j = 0; j < inner; j++) {                                          \
        float a = A[oa + j * ia], b = Bv[ob + j * ib];                               \
        Y[o + j] = (EXPR);                                                           \
      }                                                                              \
      for (int d = r - 2; d >= 0; d--) {                                             \
        idx[d]++; oa += sa[d]; ob += sb[d];                                          \
        if (idx[d] < ys->dim[d]) break;                                              \
        oa -= sa[d] * ys->dim[d]; ob -= sb[d] * ys->dim[d]; idx[d] = 0;              \
      }                                                                              \
    }                                                                                \
    return KR_OK;                                                                    \
  }

BINARY(kr_k_add, a + b)
BINARY(kr_k_sub, a - b)
BINARY(kr_k_mul, a * b)
BINARY(kr_k_div, a / b)
BINARY(kr_k_pow, powf(a, b))
/* NaN wins, as in numpy: a NaN a is chosen, and a NaN b is (a >= b is false) */
BINARY(kr_k_maximum, (a >= b || a != a) ? a : b)
BINARY(kr_k_minimum, (a <= b || a != a) ? a : b)
BINARY(kr_k_equal, (float)(a == b))
BINARY(kr_k_not_equal, (float)(a != b))
BINARY(kr_k_greater, (float)(a > b))
BINARY(kr_k_greater_equal, (float)(a >= b))
BINARY(kr_k_less, (float)(a < b))
BINARY(kr_k_less_equal, (float)(a <= b))

/* ---- unary: y = f(x), parameters in the node's attr.f ---- */

#define UNARY(fname, EXPR)                                          \
  int fname(const kr_exec *e)                                       \
  {                                                                 \
    const float *restrict X = e->x[0];                              \
    float *restrict Y = e->y;                                       \
    int64_t n = kr_numel(e->ys);                                    \
    const float f0 = (float)e->node->attr.f[0], f1 = (float)e->node->attr.f[1]; \
    (void)f0; (void)f1;                                             \
    for (int64_t i = 0; i < n; i++) { float x = X[i]; Y[i] = (EXPR); } \
    return KR_OK;                                                   \
  }

static inline float sigmoidf(float x)
{
  if (x >= 0) return 1.0f / (1.0f + expf(-x));
  float z = expf(x);
  return z / (1.0f + z);
}

#define SELU_ALPHA 1.6732632423543772848170429916717
#define SELU_SCALE 1.0507009873554804934193349852946

UNARY(kr_k_neg, -x)
UNARY(kr_k_abs, fabsf(x))
UNARY(kr_k_sign, (float)((x > 0) - (x < 0)))
UNARY(kr_k_square, x * x)
UNARY(kr_k_sqrt, sqrtf(x))
UNARY(kr_k_exp, expf(x))
UNARY(kr_k_log, logf(x))
UNARY(kr_k_round, rintf(x))   /* half to even, as numpy and TensorFlow round */
UNARY(kr_k_floor, floorf(x))
UNARY(kr_k_scale, x * f0 + f1)
UNARY(kr_k_pows, powf(x, f0))
UNARY(kr_k_clip, x < f0 ? f0 : x > f1 ? f1 : x)
/* !(x <= 0): NaN takes the x side (relu(NaN) is NaN), as in numpy */
static UNARY(relu_general, !(x <= 0) ? (f1 > 0 && x > f1 ? f1 : x) : f0 != 0 ? f0 * x : 0.0f)

/* the plain max(x, 0) vectorizes; alpha or max_value take the general loop */
int kr_k_relu(const kr_exec *e)
{
  if (e->node->attr.f[KR_RELU_ALPHA] != 0 || e->node->attr.f[KR_RELU_MAX] > 0) return relu_general(e);
  const float *restrict X = e->x[0];
  float *restrict Y = e->y;
  int64_t n = kr_numel(e->ys);
  for (int64_t i = 0; i < n; i++) Y[i] = !(X[i] <= 0.0f) ? X[i] : 0.0f;   /* NaN stays NaN */
  return KR_OK;
}
UNARY(kr_k_sigmoid, sigmoidf(x))
UNARY(kr_k_hard_sigmoid, x < -2.5f ? 0.0f : x > 2.5f ? 1.0f : 0.2f * x + 0.5f)
UNARY(kr_k_tanh, tanhf(x))
UNARY(kr_k_softplus, (x > 0 ? x : 0.0f) + log1pf(expf(-fabsf(x))))
UNARY(kr_k_softsign, x / (1.0f + fabsf(x)))
UNARY(kr_k_elu, x > 0 ? x : f0 * expm1f(x))
UNARY(kr_k_selu, (float)SELU_SCALE * (x > 0 ? x : (float)SELU_ALPHA * expm1f(x)))
/* Keras's ThresholdedReLU: x where x > theta (f0), else 0; x == theta gives 0 */
UNARY(kr_k_thresholded_relu, x > f0 ? x : 0.0f)

int kr_k_identity(const kr_exec *e)
{
  if (e->y != e->x[0]) memcpy(e->y, e->x[0], (size_t)kr_numel(e->ys) * sizeof(float));
  return KR_OK;
}

int kr_k_zeros_like(const kr_exec *e)
{
  memset(e->y, 0, (size_t)kr_numel(e->ys) * sizeof(float));
  return KR_OK;
}

/* ---- gradient helpers: (dy, x) or (dy, y) -> dx ---- */

#define GRAD2(fname, EXPR)                                                \
  int fname(const kr_exec *e)                                             \
  {                                                                       \
    const float *restrict DY = e->x[0], *restrict V = e->x[1];            \
    float *restrict Y = e->y;                                             \
    int64_t n = kr_numel(e->ys);                                          \
    const float f0 = (float)e->node->attr.f[0], f1 = (float)e->node->attr.f[1]; \
    (void)f0; (void)f1;                                                   \
    for (int64_t i = 0; i < n; i++) { float dy = DY[i], v = V[i]; Y[i] = (EXPR); } \
    return KR_OK;                                                         \
  }

/* the gradients follow the forward's choice: at a NaN x (the x side) dy passes */
static GRAD2(relu_grad_general, !(v <= 0) ? (f1 > 0 && v >= f1 ? 0.0f : dy) : f0 * dy)

int kr_k_relu_grad(const kr_exec *e)
{
  if (e->node->attr.f[KR_RELU_ALPHA] != 0 || e->node->attr.f[KR_RELU_MAX] > 0) return relu_grad_general(e);
  const float *restrict DY = e->x[0], *restrict X = e->x[1];
  float *restrict Y = e->y;
  int64_t n = kr_numel(e->ys);
  for (int64_t i = 0; i < n; i++) {
    float d = DY[i];   /* an unconditional load lets the loop vectorize */
    Y[i] = !(X[i] <= 0.0f) ? d : 0.0f;
  }
  return KR_OK;
}
GRAD2(kr_k_sigmoid_grad, dy * v * (1.0f - v))
GRAD2(kr_k_tanh_grad, dy * (1.0f - v * v))
/* (dy, x): 0.2 dy on [-2.5, 2.5], bounds included: Keras clips 0.2 x + 0.5 with
** tf.clip_by_value, whose gradient passes at the bounds */
GRAD2(kr_k_hard_sigmoid_grad, (v >= -2.5f && v <= 2.5f) ? 0.2f * dy : 0.0f)
GRAD2(kr_k_elu_grad, v > 0 ? dy : dy * f0 * expf(v))
GRAD2(kr_k_selu_grad, (float)SELU_SCALE * (v > 0 ? dy : dy * (float)SELU_ALPHA * expf(v)))
GRAD2(kr_k_clip_grad, !(v < f0 || v > f1) ? dy : 0.0f)   /* NaN x: clip gives x, dy passes */
/* (dy, x): dy where x > theta (f0), else 0 (the same side of the tie as the forward) */
GRAD2(kr_k_thresholded_relu_grad, v > f0 ? dy : 0.0f)

/* ---- dropout: inverted; the kept units are scaled by 1/(1-rate) ----
** A unit is kept when a uniform 16-bit draw is >= rate * 2^16 (the rate is
** honoured to 1/65536). The draws come from DROP_LANES xoshiro128++
** generators side by side, seeded from the context's generator at each call
** (so a seed still fixes every mask): each step of the lanes gives 2 draws per
** lane, and the loop over lanes vectorizes. */

#define DROP_LANES 16

static inline uint32_t rotl32(uint32_t v, int k) { return (v << k) | (v >> (32 - k)); }

VEC_CLONES static void dropout_fill(uint32_t st[4][DROP_LANES], const float *restrict x, float *restrict m,
                                     float *restrict y, int64_t n, uint32_t thr, float keep)
{
  uint32_t *restrict s0 = st[0], *restrict s1 = st[1], *restrict s2 = st[2], *restrict s3 = st[3];
  uint32_t r[DROP_LANES];
  for (int64_t i = 0; i < n; i += 2 * DROP_LANES) {
    for (int l = 0; l < DROP_LANES; l++) {
      uint32_t a = s0[l], b = s1[l], c = s2[l], d = s3[l];
      r[l] = rotl32(a + d, 7) + a;
      uint32_t t = b << 9;
      c ^= a;
      d ^= b;
      b ^= c;
      a ^= d;
      c ^= t;
      d = rotl32(d, 11);
      s0[l] = a;
      s1[l] = b;
      s2[l] = c;
      s3[l] = d;
    }
    if (n - i >= 2 * DROP_LANES) {
      for (int l = 0; l < DROP_LANES; l++) {
        float k0 = (float)((r[l] & 0xffffu) >= thr) * keep, k1 = (float)((r[l] >> 16) >= thr) * keep;
        m[i + l] = k0;
        m[i + DROP_LANES + l] = k1;
        y[i + l] = x[i + l] * k0;
        y[i + DROP_LANES + l] = x[i + DROP_LANES + l] * k1;
      }
    } else {
      for (int64_t k = 0; i + k < n; k++) {
        uint32_t u = k < DROP_LANES ? r[k] & 0xffffu : r[k - DROP_LANES] >> 16;
        m[i + k] = (float)(u >= thr) * keep;
        y[i + k] = x[i + k] * m[i + k];
      }
    }
  }
}

int kr_k_dropout(const kr_exec *e)
{
  int64_t n = kr_numel(e->ys);
  double rate = e->node->attr.f[KR_DROPOUT_RATE];
  int always = e->node->attr.i[KR_DROPOUT_ALWAYS] != 0;   /* K.dropout: in inference too */
  if ((!e->training && !always) || rate <= 0) {
    if (e->aux)
      for (int64_t i = 0; i < n; i++) e->aux[i] = 1.0f;
    return kr_k_identity(e);
  }
  float keep = (float)(1.0 / (1.0 - rate));
  uint32_t thr = (uint32_t)(rate * 65536.0 + 0.5);
  uint32_t st[4][DROP_LANES];
  for (int l = 0; l < DROP_LANES; l++) {
    uint64_t a = kr_rng_next(e->ctx), b = kr_rng_next(e->ctx);
    st[0][l] = (uint32_t)a;
    st[1][l] = (uint32_t)(a >> 32);
    st[2][l] = (uint32_t)b;
    st[3][l] = (uint32_t)(b >> 32);
    if (!(st[0][l] | st[1][l] | st[2][l] | st[3][l])) st[0][l] = 1;   /* xoshiro's one bad state */
  }
  dropout_fill(st, e->x[0], e->aux, e->y, n, thr, keep);
  return KR_OK;
}

int kr_k_dropout_grad(const kr_exec *e)
{
  int64_t n = kr_numel(e->ys);
  const float *m = e->xaux[1];
  if ((!e->training && !e->node->attr.i[KR_DROPOUT_ALWAYS]) || !m || e->node->attr.f[KR_DROPOUT_RATE] <= 0)
    return kr_k_identity(e);
  for (int64_t i = 0; i < n; i++) e->y[i] = e->x[0][i] * m[i];
  return KR_OK;
}

int kr_k_in_train_phase(const kr_exec *e)
{
  const float *src = e->training ? e->x[0] : e->x[1];
  memcpy(e->y, src, (size_t)kr_numel(e->ys) * sizeof(float));
  return KR_OK;
}
