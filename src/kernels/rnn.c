/*
** rnn.c -- recurrent layers over a whole sequence: SimpleRNN, LSTM (Keras
** gate order i, f, c, o), GRU (z, r, h; reset gate before or after the
** recurrent product), forward and backpropagation through time.
** Shape letters as in ops_rnn.h: B batch, T timesteps, F features, u units,
** G gates, Gu = G*u. Sequences stay batch-major, (B, T, .) like the input.
**
** Forward (kr_k_rnn): one GEMM projects every timestep of x through W into
** P (B, T, Gu); then per step a GEMM adds h_prev U into P[:, t] and the gate
** math runs in place, leaving the activated gates in P. The aux keeps what
** BPTT needs: P, the state before each input step Hin (and Cin), the final
** state, the GRU's recurrent h term, the dropout masks.
** Backward (kr_k_rnn_bptt): walks the steps in reverse, writing the gates'
** pre-activation gradients dP (B, T, Gu); then dx = dP W^T, dW = x^T dP and
** dU = Hin^T dP are one GEMM each.
** Masked steps (mask 0) carry state and output over; the carried output
** starts at zeros, as in Keras's K.rnn.
*/
#include "kernels.h"
#include "../ops_rnn.h"

#include <cblas.h>
#include <math.h>
#include <string.h>

/* ---- activations, in place over n values, and their derivatives from the output ---- */

#define SELU_ALPHA 1.6732632423543772848170429916717f
#define SELU_SCALE 1.0507009873554804934193349852946f

static inline float sigm(float x) { return 1.0f / (1.0f + expf(-x)); }

static void act_fwd(int code, float *v, int64_t n)
{
  switch (code) {
  case KR_RACT_LINEAR: break;
  case KR_RACT_TANH: for (int64_t i = 0; i < n; i++) v[i] = tanhf(v[i]); break;
  case KR_RACT_SIGMOID: for (int64_t i = 0; i < n; i++) v[i] = sigm(v[i]); break;
  case KR_RACT_HARD_SIGMOID:
    for (int64_t i = 0; i < n; i++) {
      float y = 0.2f * v[i] + 0.5f;
      v[i] = y < 0.0f ? 0.0f : y > 1.0f ? 1.0f : y;
    }
    break;
  case KR_RACT_RELU: for (int64_t i = 0; i < n; i++) v[i] = v[i] > 0.0f ? v[i] : 0.0f; break;
  case KR_RACT_ELU: for (int64_t i = 0; i < n; i++) v[i] = v[i] > 0.0f ? v[i] : expm1f(v[i]); break;
  case KR_RACT_SOFTSIGN: for (int64_t i = 0; i < n; i++) v[i] = v[i] / (1.0f + fabsf(v[i])); break;
  case KR_RACT_SOFTPLUS:
    for (int64_t i = 0; i < n; i++) v[i] = v[i] > 20.0f ? v[i] : log1pf(expf(v[i]));
    break;
  case KR_RACT_SELU:
    for (int64_t i = 0; i < n; i++) v[i] = v[i] > 0.0f ? SELU_SCALE * v[i] : SELU_SCALE * SELU_ALPHA * expm1f(v[i]);
    break;
  case KR_RACT_EXPONENTIAL: for (int64_t i = 0; i < n; i++) v[i] = expf(v[i]); break;
  }
}

/* d[i] *= f'(x) where y = f(x) */
static void act_bwd(int code, float *d, const float *y, int64_t n)
{
  switch (code) {
  case KR_RACT_LINEAR: break;
  case KR_RACT_TANH: for (int64_t i = 0; i < n; i++) d[i] *= 1.0f - y[i] * y[i]; break;
  case KR_RACT_SIGMOID: for (int64_t i = 0; i < n; i++) d[i] *= y[i] * (1.0f - y[i]); break;
  case KR_RACT_HARD_SIGMOID:
    for (int64_t i = 0; i < n; i++) d[i] *= (y[i] > 0.0f && y[i] < 1.0f) ? 0.2f : 0.0f;
    break;
  case KR_RACT_RELU: for (int64_t i = 0; i < n; i++) d[i] *= y[i] > 0.0f ? 1.0f : 0.0f; break;
  case KR_RACT_ELU: for (int64_t i = 0; i < n; i++) d[i] *= y[i] > 0.0f ? 1.0f : y[i] + 1.0f; break;
  case KR_RACT_SOFTSIGN:
    for (int64_t i = 0; i < n; i++) {
      float a = 1.0f - fabsf(y[i]);
      d[i] *= a * a;
    }
    break;
  case KR_RACT_SOFTPLUS: for (int64_t i = 0; i < n; i++) d[i] *= -expm1f(-y[i]); break;
  case KR_RACT_SELU:
    for (int64_t i = 0; i < n; i++) d[i] *= y[i] > 0.0f ? SELU_SCALE : y[i] + SELU_SCALE * SELU_ALPHA;
    break;
  case KR_RACT_EXPONENTIAL: for (int64_t i = 0; i < n; i++) d[i] *= y[i]; break;
  }
}

/* ---- small helpers ---- */

/* C (M, N; ldc) = alpha A B + beta C with optional transposes, row-major */
static void gemm(int ta, int tb, int64_t M, int64_t N, int64_t K, const float *A, int64_t lda, const float *B,
                 int64_t ldb, float beta, float *C, int64_t ldc)
{
  if (M <= 0 || N <= 0) return;
  if (K <= 0) {
    for (int64_t i = 0; i < M; i++)
      for (int64_t j = 0; j < N; j++) C[i * ldc + j] = beta == 0.0f ? 0.0f : beta * C[i * ldc + j];
    return;
  }
  cblas_sgemm(CblasRowMajor, ta ? CblasTrans : CblasNoTrans, tb ? CblasTrans : CblasNoTrans, (int)M, (int)N, (int)K,
              1.0f, A, (int)lda, B, (int)ldb, beta, C, (int)ldc);
}

static void draw_masks(kr_ctx *ctx, float *m, int64_t n, double rate)
{
  float keep = (float)(1.0 / (1.0 - rate));
  for (int64_t i = 0; i < n; i++) m[i] = kr_rng_uniform(ctx) >= rate ? keep : 0.0f;
}

/* the input time of processing step s */
static inline int64_t step_t(const kr_rnn_dims *d, int64_t s)
{
  return (d->flags & KR_RNNF_BACKWARDS) ? d->T - 1 - s : s;
}

/* position of step s in a return_sequences output */
static inline int64_t out_pos(const kr_rnn_dims *d, int64_t s)
{
  return (d->flags & KR_RNNF_INPUT_ORDER) ? step_t(d, s) : s;
}

static const char *const cell_name[] = {"SimpleRNN", "LSTM", "GRU", "GRU"};

/* the run's batch against a stateful layer's state */
static int check_state_batch(const kr_exec *e, const kr_rnn_dims *d)
{
  if (d->ih0 < 0) return KR_OK;
  int64_t sb = e->xs[d->ih0]->dim[0];
  if (sb != d->B)
    return kr_fail(e->ctx, KR_ESHAPE,
                   "stateful %s: the batch has %lld samples but the layer's state holds %lld (with stateful=true "
                   "every batch must have exactly batch_size samples: give a number of samples that is a "
                   "multiple of the batch size)",
                   cell_name[d->cell & 3], (long long)d->B, (long long)sb);
  return KR_OK;
}

/* ---- forward ---- */

int kr_k_rnn(const kr_exec *e)
{
  kr_rnn_dims d;
  kr_rnn_layout(e->node, e->xs[0]->dim[0], &d);
  d.B = e->xs[0]->dim[0];
  if (check_state_batch(e, &d) != KR_OK) return kr_errcode(e->ctx);
  const int64_t B = d.B, T = d.T, F = d.F, u = d.u, G = d.G, Gu = d.Gu;
  const int lstm = d.cell == KR_RNN_LSTM, gru = d.cell == KR_RNN_GRU, gra = d.cell == KR_RNN_GRU_RA;
  const float *x = e->x[0], *W = e->x[1], *U = e->x[2], *bias = e->x[3];
  const float *mask = d.imask >= 0 ? e->x[d.imask] : NULL;
  float *aux = e->aux, *P = aux + d.oP, *Hin = aux + d.oHin, *Hfin = aux + d.oHfin;
  float *Cin = lstm ? aux + d.oCin : NULL, *Cfin = lstm ? aux + d.oCfin : NULL;
  float *RH = gra ? aux + d.oRH : NULL;
  int drop = e->training && d.dropout > 0, rdrop = e->training && d.rdropout > 0;
  float *DX = drop ? aux + d.oDX : NULL, *DH = rdrop ? aux + d.oDH : NULL;
  float *tmpG = e->scratch, *tmp = tmpG + B * Gu, *Xm = tmp + B * u;
  const int64_t ldP = T * Gu, ldH = T * u;
  int retseq = (d.flags & KR_RNNF_RETSEQ) != 0;
  float *y = e->y;

  /* input projection: P = x W (per gate with its dropout mask) */
  if (drop) {
    draw_masks(e->ctx, DX, G * B * F, d.dropout);
    for (int64_t g = 0; g < G; g++) {
      for (int64_t b = 0; b < B; b++)
        for (int64_t t = 0; t < T; t++) {
          const float *xr = x + (b * T + t) * F, *m = DX + (g * B + b) * F;
          float *o = Xm + (b * T + t) * F;
          for (int64_t f = 0; f < F; f++) o[f] = xr[f] * m[f];
        }
      gemm(0, 0, B * T, u, F, Xm, F, W + g * u, Gu, 0.0f, P + g * u, Gu);
    }
  } else {
    gemm(0, 0, B * T, Gu, F, x, F, W, Gu, 0.0f, P, Gu);
  }
  if (rdrop) draw_masks(e->ctx, DH, G * B * u, d.rdropout);

  /* initial state into Hin[:, t(0)] */
  int64_t t0 = step_t(&d, 0);
  for (int64_t b = 0; b < B; b++) {
    float *h = Hin + b * ldH + t0 * u;
    if (d.ih0 >= 0) memcpy(h, e->x[d.ih0] + b * u, (size_t)u * sizeof(float));
    else memset(h, 0, (size_t)u * sizeof(float));
    if (lstm) {
      float *c = Cin + b * ldH + t0 * u;
      if (d.ic0 >= 0) memcpy(c, e->x[d.ic0] + b * u, (size_t)u * sizeof(float));
      else memset(c, 0, (size_t)u * sizeof(float));
    }
  }
  if (mask) {   /* the carried output starts at zeros */
    if (retseq) memset(y, 0, (size_t)(B * T * u) * sizeof(float));
    else memset(y, 0, (size_t)(B * u) * sizeof(float));
  }
  const float *b0 = bias, *b1 = gra ? bias + Gu : NULL;

  for (int64_t s = 0; s < T; s++) {
    int64_t t = step_t(&d, s);
    int last = s == T - 1;
    int64_t tn = last ? 0 : step_t(&d, s + 1);
    float *Pt = P + t * Gu;
    const float *hp = Hin + t * u;              /* row b at hp + b*ldH */
    float *hn = last ? Hfin : Hin + tn * u;     /* row b at hn + b*ldn */
    int64_t ldn = last ? u : ldH;
    const float *cp = lstm ? Cin + t * u : NULL;
    float *cn = lstm ? (last ? Cfin : Cin + tn * u) : NULL;

    /* recurrent products */
    if (gra) {
      if (rdrop) {
        for (int64_t g = 0; g < 3; g++) {
          for (int64_t b = 0; b < B; b++)
            for (int64_t j = 0; j < u; j++) tmp[b * u + j] = hp[b * ldH + j] * DH[(g * B + b) * u + j];
          gemm(0, 0, B, u, u, tmp, u, U + g * u, Gu, 0.0f, tmpG + g * u, Gu);
        }
      } else {
        gemm(0, 0, B, Gu, u, hp, ldH, U, Gu, 0.0f, tmpG, Gu);
      }
    } else {
      int64_t ng = gru ? 2 : G;   /* the GRU's h gate waits for r */
      if (rdrop) {
        for (int64_t g = 0; g < ng; g++) {
          for (int64_t b = 0; b < B; b++)
            for (int64_t j = 0; j < u; j++) tmp[b * u + j] = hp[b * ldH + j] * DH[(g * B + b) * u + j];
          gemm(0, 0, B, u, u, tmp, u, U + g * u, Gu, 1.0f, Pt + g * u, ldP);
        }
      } else {
        gemm(0, 0, B, ng * u, u, hp, ldH, U, Gu, 1.0f, Pt, ldP);
      }
    }

    /* gate math, row by row */
    for (int64_t b = 0; b < B; b++) {
      const float *h0 = hp + b * ldH;
      float *h1 = hn + b * ldn;
      if (mask && mask[b * T + t] == 0.0f) {
        memcpy(h1, h0, (size_t)u * sizeof(float));
        if (lstm) memcpy(cn + b * ldn, cp + b * ldH, (size_t)u * sizeof(float));
        continue;
      }
      float *row = Pt + b * ldP;
      if (d.cell == KR_RNN_SIMPLE) {
        for (int64_t j = 0; j < u; j++) row[j] += b0[j];
        act_fwd(d.act, row, u);
        memcpy(h1, row, (size_t)u * sizeof(float));
      } else if (lstm) {
        for (int64_t j = 0; j < Gu; j++) row[j] += b0[j];
        act_fwd(d.ract, row, 2 * u);
        act_fwd(d.act, row + 2 * u, u);
        act_fwd(d.ract, row + 3 * u, u);
        const float *c0 = cp + b * ldH;
        float *c1 = cn + b * ldn;
        for (int64_t j = 0; j < u; j++) c1[j] = row[u + j] * c0[j] + row[j] * row[2 * u + j];
        memcpy(h1, c1, (size_t)u * sizeof(float));
        act_fwd(d.act, h1, u);
        for (int64_t j = 0; j < u; j++) h1[j] *= row[3 * u + j];
      } else if (gru) {
        for (int64_t j = 0; j < 2 * u; j++) row[j] += b0[j];
        act_fwd(d.ract, row, 2 * u);
      } else {   /* GRU, reset after */
        const float *R = tmpG + b * Gu;
        float *rh = RH + b * ldH + t * u;
        for (int64_t j = 0; j < 2 * u; j++) row[j] += b0[j] + R[j] + b1[j];
        act_fwd(d.ract, row, 2 * u);
        for (int64_t j = 0; j < u; j++) {
          rh[j] = R[2 * u + j] + b1[2 * u + j];
          row[2 * u + j] += b0[2 * u + j] + row[u + j] * rh[j];
        }
        act_fwd(d.act, row + 2 * u, u);
        for (int64_t j = 0; j < u; j++) h1[j] = row[j] * h0[j] + (1.0f - row[j]) * row[2 * u + j];
      }
    }
    if (gru) {
      /* h gate: (r * h_prev) U_h, then the mix */
      for (int64_t b = 0; b < B; b++) {
        const float *h0 = hp + b * ldH, *row = Pt + b * ldP;
        for (int64_t j = 0; j < u; j++)
          tmp[b * u + j] = row[u + j] * h0[j] * (rdrop ? DH[(2 * B + b) * u + j] : 1.0f);
      }
      gemm(0, 0, B, u, u, tmp, u, U + 2 * u, Gu, 1.0f, Pt + 2 * u, ldP);
      for (int64_t b = 0; b < B; b++) {
        if (mask && mask[b * T + t] == 0.0f) continue;
        float *row = Pt + b * ldP;
        const float *h0 = hp + b * ldH;
        float *h1 = hn + b * ldn;
        for (int64_t j = 0; j < u; j++) row[2 * u + j] += b0[2 * u + j];
        act_fwd(d.act, row + 2 * u, u);
        for (int64_t j = 0; j < u; j++) h1[j] = row[j] * h0[j] + (1.0f - row[j]) * row[2 * u + j];
      }
    }

    /* outputs */
    if (retseq) {
      int64_t pos = out_pos(&d, s), prev = s > 0 ? out_pos(&d, s - 1) : -1;
      for (int64_t b = 0; b < B; b++) {
        float *o = y + (b * T + pos) * u;
        if (mask && mask[b * T + t] == 0.0f) {
          if (prev >= 0) memcpy(o, y + (b * T + prev) * u, (size_t)u * sizeof(float));
        } else {
          memcpy(o, hn + b * ldn, (size_t)u * sizeof(float));
        }
      }
    } else if (mask) {
      for (int64_t b = 0; b < B; b++)
        if (mask[b * T + t] != 0.0f) memcpy(y + b * u, hn + b * ldn, (size_t)u * sizeof(float));
    }
  }
  if (!retseq && !mask) memcpy(y, Hfin, (size_t)(B * u) * sizeof(float));

  /* a stateful layer keeps its final state for the next batch */
  if (d.flags & KR_RNNF_STATEFUL) {
    memcpy((float *)e->x[d.ih0], Hfin, (size_t)(B * u) * sizeof(float));
    if (lstm) memcpy((float *)e->x[d.ic0], Cfin, (size_t)(B * u) * sizeof(float));
  }
  return KR_OK;
}

/* (rnn, rnn inputs...) -> its final h or c */
int kr_k_rnn_state(const kr_exec *e)
{
  kr_rnn_dims d;
  const kr_node *r = e->node->in[0];
  kr_rnn_layout(r, e->xs[1]->dim[0], &d);
  d.B = e->xs[1]->dim[0];
  kr_rnn_layout(r, d.B, &d);
  const float *src = e->xaux[0] + (e->node->attr.i[5] == 1 ? d.oCfin : d.oHfin);
  memcpy(e->y, src, (size_t)(d.B * d.u) * sizeof(float));
  return KR_OK;
}

/* ---- backward through time ---- */

int kr_k_rnn_bptt(const kr_exec *e)
{
  const kr_node *r = e->node->in[0];
  kr_rnn_dims d;
  kr_rnn_layout(r, e->xs[2]->dim[0], &d);
  const int64_t B = d.B, T = d.T, F = d.F, u = d.u, G = d.G, Gu = d.Gu;
  const int lstm = d.cell == KR_RNN_LSTM, gru = d.cell == KR_RNN_GRU, gra = d.cell == KR_RNN_GRU_RA;
  const int mode = (int)e->node->attr.i[5];
  const float *g = e->x[1];
  const float *const *in = e->x + 2;   /* the rnn's inputs */
  const float *x = in[0], *W = in[1], *U = in[2];
  const float *mask = d.imask >= 0 ? in[d.imask] : NULL;
  const float *raux = e->xaux[0];
  const float *P = raux + d.oP, *Hin = raux + d.oHin, *Hfin = raux + d.oHfin;
  const float *Cin = lstm ? raux + d.oCin : NULL, *Cfin = lstm ? raux + d.oCfin : NULL;
  const float *RH = gra ? raux + d.oRH : NULL;
  int drop = e->training && d.dropout > 0, rdrop = e->training && d.rdropout > 0;
  const float *DX = drop ? raux + d.oDX : NULL, *DH = rdrop ? raux + d.oDH : NULL;
  float *gaux = e->aux;
  float *dW = gaux + d.gW, *dU = gaux + d.gU, *db = gaux + d.gb, *dh0 = gaux + d.gh0, *dc0 = gaux + d.gc0;
  float *dP = e->scratch, *dR = gra ? dP + B * T * Gu : dP;
  float *dh = dP + B * T * Gu * (gra ? 2 : 1), *dc = dh + B * u, *dcarry = dc + B * u, *tmp = dcarry + B * u;
  float *big = tmp + B * Gu;   /* (B*T, max(F, u)) */
  const int64_t ldP = T * Gu, ldH = T * u;
  int retseq = (d.flags & KR_RNNF_RETSEQ) != 0;

  memset(dh, 0, (size_t)(3 * B * u) * sizeof(float));
  if (mode == 1) memcpy(dh, g, (size_t)(B * u) * sizeof(float));
  if (mode == 2) memcpy(dc, g, (size_t)(B * u) * sizeof(float));

  for (int64_t s = T - 1; s >= 0; s--) {
    int64_t t = step_t(&d, s);
    int last = s == T - 1;
    int64_t tn = last ? 0 : step_t(&d, s + 1);
    /* the output's gradient at this step */
    if (mode == 0) {
      const float *gy = retseq ? g : (last ? g : NULL);
      int64_t pos = out_pos(&d, s);
      for (int64_t b = 0; b < B; b++) {
        const float *gr = gy ? (retseq ? gy + (b * T + pos) * u : gy + b * u) : NULL;
        float *dhb = dh + b * u;
        if (mask) {
          float *cb = dcarry + b * u;
          if (gr)
            for (int64_t j = 0; j < u; j++) cb[j] += gr[j];
          if (mask[b * T + t] != 0.0f) {
            for (int64_t j = 0; j < u; j++) dhb[j] += cb[j];
            memset(cb, 0, (size_t)u * sizeof(float));
          }
        } else if (gr) {
          for (int64_t j = 0; j < u; j++) dhb[j] += gr[j];
        }
      }
    }
    const float *Pt = P + t * Gu;
    float *dPt = dP + t * Gu, *dRt = dR + t * Gu;
    const float *hp = Hin + t * u;
    /* cell backward, row by row; masked rows pass dh, dc through */
    for (int64_t b = 0; b < B; b++) {
      float *dprow = dPt + b * ldP;
      if (mask && mask[b * T + t] == 0.0f) {
        memset(dprow, 0, (size_t)Gu * sizeof(float));
        if (gra) memset(dRt + b * ldP, 0, (size_t)Gu * sizeof(float));
        continue;
      }
      const float *row = Pt + b * ldP;
      float *dhb = dh + b * u;
      if (d.cell == KR_RNN_SIMPLE) {
        memcpy(dprow, dhb, (size_t)u * sizeof(float));
        act_bwd(d.act, dprow, row, u);
        memset(dhb, 0, (size_t)u * sizeof(float));
      } else if (lstm) {
        const float *c0 = Cin + b * ldH + t * u;
        const float *c1 = last ? Cfin + b * u : Cin + b * ldH + tn * u;
        float *dcb = dc + b * u;
        float *tc = tmp + b * Gu;   /* act(c1), then its derivative factor */
        memcpy(tc, c1, (size_t)u * sizeof(float));
        act_fwd(d.act, tc, u);
        float *fac = tc + u;
        for (int64_t j = 0; j < u; j++) fac[j] = dhb[j] * row[3 * u + j];
        act_bwd(d.act, fac, tc, u);
        for (int64_t j = 0; j < u; j++) {
          float dcn = dcb[j] + fac[j];
          dprow[j] = dcn * row[2 * u + j];             /* di */
          dprow[u + j] = dcn * c0[j];                  /* df */
          dprow[2 * u + j] = dcn * row[j];             /* dg */
          dprow[3 * u + j] = dhb[j] * tc[j];           /* do */
          dcb[j] = dcn * row[u + j];
        }
        act_bwd(d.ract, dprow, row, 2 * u);
        act_bwd(d.act, dprow + 2 * u, row + 2 * u, u);
        act_bwd(d.ract, dprow + 3 * u, row + 3 * u, u);
        memset(dhb, 0, (size_t)u * sizeof(float));
      } else {
        const float *h0 = hp + b * ldH;
        for (int64_t j = 0; j < u; j++) {
          float z = row[j], hh = row[2 * u + j], dn = dhb[j];
          dprow[j] = dn * (h0[j] - hh);          /* dz */
          dprow[2 * u + j] = dn * (1.0f - z);    /* dhh */
          dhb[j] = dn * z;                       /* straight to h_prev */
        }
        act_bwd(d.ract, dprow, row, u);
        act_bwd(d.act, dprow + 2 * u, row + 2 * u, u);
        if (gra) {
          const float *rh = RH + b * ldH + t * u;
          float *drrow = dRt + b * ldP;
          for (int64_t j = 0; j < u; j++) {
            drrow[2 * u + j] = dprow[2 * u + j] * row[u + j];
            dprow[u + j] = dprow[2 * u + j] * rh[j];
          }
          act_bwd(d.ract, dprow + u, row + u, u);
          memcpy(drrow, dprow, (size_t)(2 * u) * sizeof(float));
        }
      }
    }
    /* into h_prev through U */
    if (gru) {
      /* d(r * h) = dP_h U_h^T, then dr and the h_prev share */
      gemm(0, 1, B, u, u, dPt + 2 * u, ldP, U + 2 * u, Gu, 0.0f, tmp, u);
      for (int64_t b = 0; b < B; b++) {
        if (mask && mask[b * T + t] == 0.0f) continue;
        const float *row = Pt + b * ldP, *h0 = hp + b * ldH;
        float *dprow = dPt + b * ldP, *dhb = dh + b * u, *drh = tmp + b * u;
        for (int64_t j = 0; j < u; j++) {
          float m = rdrop ? DH[(2 * B + b) * u + j] : 1.0f;
          dprow[u + j] = drh[j] * h0[j] * m;
          dhb[j] += drh[j] * row[u + j] * m;
        }
        act_bwd(d.ract, dprow + u, row + u, u);
      }
    }
    const float *src = gra ? dRt : dPt;
    int64_t ng = gru ? 2 : G;
    if (rdrop) {
      for (int64_t k = 0; k < ng; k++) {
        gemm(0, 1, B, u, u, src + k * u, ldP, U + k * u, Gu, 0.0f, tmp, u);
        for (int64_t b = 0; b < B; b++) {
          if (mask && mask[b * T + t] == 0.0f) continue;
          const float *m = DH + (k * B + b) * u;
          for (int64_t j = 0; j < u; j++) dh[b * u + j] += tmp[b * u + j] * m[j];
        }
      }
    } else {
      gemm(0, 1, B, u, ng * u, src, ldP, U, Gu, 1.0f, dh, u);
    }
  }
  memcpy(dh0, dh, (size_t)(B * u) * sizeof(float));
  memcpy(dc0, dc, (size_t)(B * u) * sizeof(float));

  /* weights and inputs, one GEMM each (per gate under dropout) */
  const int64_t BT = B * T;
  if (drop) {
    memset(e->y, 0, (size_t)(BT * F) * sizeof(float));
    for (int64_t k = 0; k < G; k++) {
      gemm(0, 1, BT, F, u, dP + k * u, Gu, W + k * u, Gu, 0.0f, big, F);
      for (int64_t b = 0; b < B; b++)
        for (int64_t t = 0; t < T; t++) {
          const float *m = DX + (k * B + b) * F, *src = big + (b * T + t) * F;
          float *o = e->y + (b * T + t) * F;
          for (int64_t f = 0; f < F; f++) o[f] += src[f] * m[f];
        }
      for (int64_t b = 0; b < B; b++)
        for (int64_t t = 0; t < T; t++) {
          const float *m = DX + (k * B + b) * F, *xr = x + (b * T + t) * F;
          float *o = big + (b * T + t) * F;
          for (int64_t f = 0; f < F; f++) o[f] = xr[f] * m[f];
        }
      gemm(1, 0, F, u, BT, big, F, dP + k * u, Gu, 0.0f, dW + k * u, Gu);
    }
  } else {
    gemm(0, 1, BT, F, Gu, dP, Gu, W, Gu, 0.0f, e->y, F);
    gemm(1, 0, F, Gu, BT, x, F, dP, Gu, 0.0f, dW, Gu);
  }
  const float *dsrc = gra ? dR : dP;
  for (int64_t k = 0; k < G; k++) {
    int hgate = gru && k == 2;
    if (!rdrop && !hgate) {
      if (k > 0) continue;   /* all gates in one GEMM */
      int64_t n = gru ? 2 * u : Gu;
      gemm(1, 0, u, n, BT, Hin, u, dsrc, Gu, 0.0f, dU, Gu);
      continue;
    }
    for (int64_t b = 0; b < B; b++)
      for (int64_t t = 0; t < T; t++) {
        const float *h = Hin + (b * T + t) * u;
        const float *m = rdrop ? DH + (k * B + b) * u : NULL;
        const float *rr = hgate ? P + (b * T + t) * Gu + u : NULL;
        float *o = big + (b * T + t) * u;
        for (int64_t j = 0; j < u; j++) o[j] = h[j] * (m ? m[j] : 1.0f) * (rr ? rr[j] : 1.0f);
      }
    gemm(1, 0, u, u, BT, big, u, dsrc + k * u, Gu, 0.0f, dU + k * u, Gu);
  }
  /* biases: column sums */
  int nb = gra ? 2 : 1;
  for (int k = 0; k < nb; k++) {
    const float *src = k ? dR : dP;
    float *o = db + k * Gu;
    memset(o, 0, (size_t)Gu * sizeof(float));
    for (int64_t i = 0; i < BT; i++) {
      const float *rw = src + i * Gu;
      for (int64_t j = 0; j < Gu; j++) o[j] += rw[j];
    }
  }
  (void)Hfin;
  return KR_OK;
}

/* (rnn_grad) -> one of dW, dU, db, dh0, dc0 */
int kr_k_rnn_part(const kr_exec *e)
{
  const kr_node *g = e->node->in[0];
  kr_rnn_dims d;
  kr_rnn_layout(g->in[0], e->xs[0]->dim[0], &d);
  size_t off[5] = {d.gW, d.gU, d.gb, d.gh0, d.gc0};
  memcpy(e->y, e->xaux[0] + off[e->node->attr.i[6]], (size_t)kr_numel(e->ys) * sizeof(float));
  return KR_OK;
}
