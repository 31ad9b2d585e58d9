/*
** dist_comm.c -- the communication thread of data-parallel training: the
** reduction of a step's gradients overlapped with the backward pass that
** computes them (as PyTorch DDP does).
**
** The train plan's gradients live end to end in one region, in the order
** the backward pass computes them (kr_plan_new_grouped). The region is cut
** into buckets at fixed places, computed from the plan alone (so every rank
** cuts the same, and the collectives match): at the end of a gradient, once
** the bucket holds at least `first` floats, and never more than `fusion`
** floats (a larger gradient is split). While the plan runs, the hook after
** each gradient tells this thread how much of the region is final; the
** thread scales and allreduces every bucket that is complete, in order, and
** the main thread waits for the last one after the run. The thread sleeps on
** a condition variable between buckets, and the main thread makes no
** collective call while the thread works (MPI_THREAD_SERIALIZED).
**
** Nothing is allocated per step: the thread and the bucket table are made
** when the trainer is given the world or a new plan.
*/
#include <pthread.h>
#include <string.h>

#include "dist.h"
#include "kr.h"

struct kr_dist_comm {
  kr_ctx *ctx;
  kr_dist *d;
  pthread_t th;
  pthread_mutex_t mu;
  pthread_cond_t go, done;
  int stop;
  /* the bucket table: bounds[0] = 0 < bounds[1] < ... < bounds[nb] */
  size_t *bounds;
  size_t nb, cap;
  /* the step under way */
  float *g;
  float fw;
  int shm;            /* g is the world's shared region: kr_dist_shared_sum */
  size_t ready;       /* floats of the region final (the hook's) */
  size_t next;        /* the next bucket to reduce */
  int active, failed, busy;   /* busy: a bucket is being reduced */
  char err[KR_DIST_ERR];
};

static void *comm_main(void *arg)
{
  kr_dist_comm *c = arg;
  pthread_mutex_lock(&c->mu);
  for (;;) {
    while (!c->stop && !(c->active && !c->failed && c->next < c->nb && c->bounds[c->next + 1] <= c->ready))
      pthread_cond_wait(&c->go, &c->mu);
    if (c->stop) break;
    size_t k = c->next;
    size_t a = c->bounds[k], b = c->bounds[k + 1];
    float *g = c->g;
    float fw = c->fw;
    int shm = c->shm;
    c->busy = 1;
    pthread_mutex_unlock(&c->mu);
    if (fw != 1.0f)
      for (size_t i = a; i < b; i++) g[i] *= fw;
    char err[KR_DIST_ERR];
    int bad = shm ? kr_dist_shared_sum(c->d, a, b - a, err)
                  : c->d->ops->allreduce(c->d->impl, g + a, b - a, KR_DIST_F32, err);
    pthread_mutex_lock(&c->mu);
    if (bad) {
      c->failed = 1;
      memcpy(c->err, err, sizeof err);
    }
    c->next = k + 1;
    c->busy = 0;
    pthread_cond_broadcast(&c->done);
  }
  pthread_mutex_unlock(&c->mu);
  return NULL;
}

kr_dist_comm *kr_dist_comm_new(kr_ctx *ctx, kr_dist *d)
{
  kr_dist_comm *c = kr_calloc(ctx, sizeof *c);
  if (!c) return NULL;
  c->ctx = ctx;
  c->d = d;
  if (pthread_mutex_init(&c->mu, NULL)) goto fail_mu;
  if (pthread_cond_init(&c->go, NULL)) goto fail_go;
  if (pthread_cond_init(&c->done, NULL)) goto fail_done;
  if (pthread_create(&c->th, NULL, comm_main, c)) goto fail_th;
  return c;
fail_th:
  pthread_cond_destroy(&c->done);
fail_done:
  pthread_cond_destroy(&c->go);
fail_go:
  pthread_mutex_destroy(&c->mu);
fail_mu:
  kr_free(ctx, c);
  kr_fail(ctx, KR_EMEM, "keras.distributed: cannot start the communication thread");
  return NULL;
}

void kr_dist_comm_free(kr_dist_comm *c)
{
  if (!c) return;
  pthread_mutex_lock(&c->mu);
  c->stop = 1;
  pthread_cond_broadcast(&c->go);
  pthread_mutex_unlock(&c->mu);
  pthread_join(c->th, NULL);
  pthread_cond_destroy(&c->done);
  pthread_cond_destroy(&c->go);
  pthread_mutex_destroy(&c->mu);
  kr_free(c->ctx, c->bounds);
  kr_free(c->ctx, c);
}

int kr_dist_comm_plan(kr_dist_comm *c, const kr_plan *p, size_t first, size_t fusion)
{
  size_t ng = kr_plan_group_ends(p, NULL, 0), n;
  kr_plan_group(p, &n);
  if (first < 1) first = 1;
  if (fusion < first) fusion = first;
  /* at most one cut per gradient end, plus the splits of large ones */
  size_t need = ng + 2 + (fusion ? n / fusion : 0) + 1;
  size_t *ends = kr_malloc(c->ctx, (ng ? ng : 1) * sizeof *ends);
  if (!ends) return KR_EMEM;
  kr_plan_group_ends(p, ends, ng);
  if (need > c->cap) {
    size_t *b = kr_malloc(c->ctx, need * sizeof *b);
    if (!b) {
      kr_free(c->ctx, ends);
      return KR_EMEM;
    }
    kr_free(c->ctx, c->bounds);
    c->bounds = b;
    c->cap = need;
  }
  size_t nb = 0, at = 0;
  c->bounds[0] = 0;
  for (size_t i = 0; i < ng; i++) {
    size_t e = ends[i] < n ? ends[i] : n;
    while (e - at > fusion) {   /* a gradient larger than a bucket: in pieces */
      at += fusion;
      c->bounds[++nb] = at;
    }
    if (e - at >= first || (i + 1 == ng && e > at)) {
      at = e;
      c->bounds[++nb] = at;
    }
  }
  if (at < n) c->bounds[++nb] = n;   /* the region's tail after the last gradient (alignment) */
  c->nb = nb;
  kr_free(c->ctx, ends);
  return KR_OK;
}

size_t kr_dist_comm_buckets(const kr_dist_comm *c) { return c->nb; }

void kr_dist_comm_begin(kr_dist_comm *c, float *g, float fw, int shm)
{
  pthread_mutex_lock(&c->mu);
  c->g = g;
  c->fw = fw;
  c->shm = shm;
  c->ready = 0;
  c->next = 0;
  c->failed = 0;
  c->active = 1;
  pthread_mutex_unlock(&c->mu);
}

void kr_dist_comm_ready(void *ud, size_t floats)
{
  kr_dist_comm *c = ud;
  pthread_mutex_lock(&c->mu);
  if (floats > c->ready) {
    c->ready = floats;
    if (c->next < c->nb && c->bounds[c->next + 1] <= floats) pthread_cond_signal(&c->go);
  }
  pthread_mutex_unlock(&c->mu);
}

int kr_dist_comm_end(kr_dist_comm *c, int ran, char *err)
{
  pthread_mutex_lock(&c->mu);
  if (ran) {
    /* the whole region is final: the buckets not yet started go now */
    c->ready = c->nb ? c->bounds[c->nb] : 0;
    pthread_cond_signal(&c->go);
    while (!c->failed && c->next < c->nb) pthread_cond_wait(&c->done, &c->mu);
  } else {
    /* the run failed: start no other bucket, wait for the one under way */
    c->active = 0;
    while (c->busy) pthread_cond_wait(&c->done, &c->mu);
  }
  c->active = 0;
  int bad = c->failed;
  if (bad) memcpy(err, c->err, KR_DIST_ERR);
  pthread_mutex_unlock(&c->mu);
  return bad;
}
