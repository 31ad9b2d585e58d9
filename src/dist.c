/*
** dist.c -- the reducer's single-process world and the loader of the MPI
** plugin (see dist.h). The plugin is found next to the object this code was
** linked into (build/keras.so or build/lkeras: build/keras_mpi.so; an
** installed lkeras: PREFIX/lib/lkeras/keras_mpi.so), or where the
** LKERAS_MPI_PLUGIN environment variable says. It is opened only when the
** process was started by mpirun, so a single process never loads libmpi.
*/
#define _GNU_SOURCE   /* dladdr */
#include "dist.h"
#include "kr.h"

#include <dlfcn.h>
#include <stdio.h>
#include <stdlib.h>
#include <stdint.h>
#include <string.h>

size_t kr_dist_dtype_size(int dtype) { return dtype == KR_DIST_F64 ? sizeof(double) : sizeof(float); }

/* ---- the single process: a world of size 1 ---- */

static int one_allreduce(void *impl, void *buf, size_t n, int dtype, char *err) { return 0; }
static int one_broadcast(void *impl, void *buf, size_t n, int dtype, int root, char *err)
{
  if (root != 0) {
    snprintf(err, KR_DIST_ERR, "broadcast: root %d is not a rank of this world of size 1", root);
    return 1;
  }
  return 0;
}
static int one_allgather(void *impl, const void *in, void *out, const size_t *counts, int dtype, char *err)
{
  if (out != in) memmove(out, in, counts[0] * kr_dist_dtype_size(dtype));
  return 0;
}
static int one_barrier(void *impl, char *err) { return 0; }
static void one_abort(void *impl, const char *msg) {}
static void one_finalize(void *impl) {}

static const kr_dist_ops single_ops = {
  "single", one_allreduce, one_broadcast, one_allgather, one_barrier, one_abort, one_finalize,
  NULL, NULL, NULL   /* no shared memory: a world of one never reduces */
};

void kr_dist_open_single(kr_dist *d)
{
  memset(d, 0, sizeof *d);
  d->ops = &single_ops;
  d->size = d->local_size = 1;
  d->timeout = 0;
  d->threads_ok = 1;
}

/* ---- the MPI plugin ---- */

static int under_mpirun(void)
{
  const char *v = getenv("LKERAS_DIST");
  if (v && !strcmp(v, "single")) return 0;
  if (v && !strcmp(v, "mpi")) return 1;
  return getenv("OMPI_COMM_WORLD_SIZE") || getenv("PMIX_RANK") || getenv("PMI_RANK");
}

static void *try_open(const char *path) { return dlopen(path, RTLD_NOW | RTLD_GLOBAL | RTLD_NODELETE); }

static void *open_plugin(char *tried, size_t tsz)
{
  const char *env = getenv("LKERAS_MPI_PLUGIN");
  tried[0] = 0;
  if (env && *env) {
    snprintf(tried, tsz, "%s", env);
    return try_open(env);
  }
  Dl_info info;
  char dir[4096] = ".";
  if (dladdr((void *)&kr_dist_open, &info) && info.dli_fname) {
    snprintf(dir, sizeof dir, "%s", info.dli_fname);
    char *slash = strrchr(dir, '/');
    if (slash) *slash = 0;
    else snprintf(dir, sizeof dir, ".");
  }
  static const char *const rel[] = {"/keras_mpi.so", "/../lib/lkeras/keras_mpi.so", "/../../lkeras/keras_mpi.so"};
  for (size_t i = 0; i < sizeof rel / sizeof *rel; i++) {
    char path[4200];
    snprintf(path, sizeof path, "%s%s", dir, rel[i]);
    size_t used = strlen(tried);
    if (used + strlen(path) + 3 < tsz) snprintf(tried + used, tsz - used, "%s%.*s", used ? ", " : "",
                                                (int)(tsz - used - 3), path);
    void *h = try_open(path);
    if (h) return h;
  }
  return NULL;
}

int kr_dist_open(kr_dist *d, char *err)
{
  kr_dist_open_single(d);
  if (!under_mpirun()) return 0;
  char tried[1024];
  void *h = open_plugin(tried, sizeof tried);
  if (!h) {
    const char *why = dlerror();
    snprintf(err, KR_DIST_ERR, "keras.distributed: started by mpirun, but the MPI plugin could not be loaded "
             "(%s; tried %.600s): build lkeras with Open MPI installed (mpicc; Debian: libopenmpi-dev)",
             why ? why : "not found", tried);
    return 1;
  }
  kr_dist_open_fn open = (kr_dist_open_fn)dlsym(h, KR_DIST_MPI_ENTRY);
  if (!open) {
    snprintf(err, KR_DIST_ERR, "keras.distributed: %s has no %s", tried, KR_DIST_MPI_ENTRY);
    return 1;
  }
  const char *t = getenv("LKERAS_DIST_TIMEOUT");
  double timeout = t ? atof(t) : 300.0;
  kr_dist m;
  memset(&m, 0, sizeof m);
  m.timeout = timeout > 0 ? timeout : 300.0;
  if (open(&m, err)) return 1;
  *d = m;
  return 0;
}

/* ---- the shared gradient region (see dist.h) ---- */

static void end_window(kr_dist *d)
{
  if (d->shm && d->ops->shm_free) d->ops->shm_free(d->impl, d->shm);
  d->shm = NULL;
  d->shm_floats = 0;
}

float *kr_dist_shared(kr_dist *d, size_t n, size_t lead, char *err, int *failed)
{
  *failed = 0;
  if (d->size < 2 || !d->ops->shm_new) return NULL;
  const char *env = getenv("LKERAS_DIST_SHM");
  if (env && strcmp(env, "0") == 0) return NULL;
  if (d->shm && d->shm_floats >= n && d->shm_lead >= lead) return d->shm_segs[d->rank];
  if (d->nmoved) return NULL;   /* a trainer's state lives in this window */
  if (!d->shm_segs && !(d->shm_segs = calloc((size_t)d->size, sizeof *d->shm_segs))) {
    snprintf(err, KR_DIST_ERR, "keras.distributed: out of memory");
    *failed = 1;
    return NULL;
  }
  end_window(d);
  /* rounded up, so that a few more floats later need no new window */
  size_t want = n + n / 8 + 64, lwant = lead ? lead + lead / 8 + 64 : 0;
  if (want + lwant > (size_t)0x7fffffff / sizeof(float)) lwant = 0;   /* too large for rank 0: no shared state */
  char why[KR_DIST_ERR] = "";
  /* rank 0's lead: 16 floats to align, the control words, the state */
  size_t lhead = lwant ? 16 + KR_DIST_CTRL_FLOATS : 0;
  void *w = d->ops->shm_new(d->impl, want + (d->rank == 0 ? lhead + lwant : 0), d->shm_segs, why);
  if (!w) {
    if (why[0]) {   /* a failure, not the absence of shared memory */
      memcpy(err, why, KR_DIST_ERR);
      *failed = 1;
    }
    return NULL;
  }
  d->shm = w;
  d->shm_floats = want;
  d->shm_lead = lwant;
  if (lwant) {
    uintptr_t at = ((uintptr_t)(d->shm_segs[0] + want) + 63) & ~(uintptr_t)63;
    d->shm_ctrl = (uint64_t *)at;
    d->shm_state = (float *)at + KR_DIST_CTRL_FLOATS;
  } else {
    d->shm_ctrl = NULL;
    d->shm_state = NULL;
  }
  d->shm_gen++;
  return d->shm_segs[d->rank];
}

int kr_dist_state_share(kr_dist *d, const void *owner, int count, kr_tensor *const *t, const size_t *off, char *err)
{
  if (d->nmoved || !d->shm_state || count < 1) {
    snprintf(err, KR_DIST_ERR, "keras.distributed: no room for the shared state");
    return 1;
  }
  kr_tensor **moved = malloc((size_t)count * sizeof *moved);
  float **home = malloc((size_t)count * sizeof *home);
  if (!moved || !home) {
    free(moved);
    free(home);
    snprintf(err, KR_DIST_ERR, "keras.distributed: out of memory");
    return 1;
  }
  /* no rank still copies the last state out (kr_dist_state_release) */
  if (d->ops->shm_barrier(d->impl, d->shm, err)) {
    free(moved);
    free(home);
    return 1;
  }
  if (d->rank == 0) memset(d->shm_ctrl, 0, KR_DIST_CTRL_FLOATS * sizeof(float));
  d->shm_tick = 0;
  for (int i = 0; i < count; i++) {
    float *at = d->shm_state + off[i];
    if (d->rank == 0) memcpy(at, KR_DATA(t[i]), (size_t)kr_tensor_numel(t[i]) * sizeof(float));
    kr_tensor_retain(t[i]);
    moved[i] = t[i];
    home[i] = t[i]->st->data;
    kr_tensor_move(t[i], at);
  }
  d->moved = moved;
  d->home = home;
  d->nmoved = count;
  d->state_owner = owner;
  /* rank 0's values are there before any rank reads them */
  return d->ops->shm_barrier(d->impl, d->shm, err);
}

int kr_dist_state_release(kr_dist *d, int sync, char *err)
{
  if (!d->nmoved) return 0;
  int bad = sync && d->ops->shm_barrier(d->impl, d->shm, err);
  for (int i = 0; i < d->nmoved; i++) {
    kr_tensor *t = d->moved[i];
    memcpy(d->home[i], KR_DATA(t), (size_t)kr_tensor_numel(t) * sizeof(float));
    kr_tensor_move(t, d->home[i]);
    kr_tensor_release(t);
  }
  free(d->moved);
  free(d->home);
  d->moved = NULL;
  d->home = NULL;
  d->nmoved = 0;
  d->state_owner = NULL;
  return bad;
}

/* the sum of the segments over [a, b): s = seg0 + seg1 + ... in rank order,
** written back into every segment */
#if defined(__GNUC__) && !defined(__clang__) && defined(__x86_64__) && defined(__linux__)
__attribute__((target_clones("avx512f", "avx2", "default")))
#endif
static void sum_segments(float *const *segs, int p, size_t a, size_t b)
{
  enum { PIECE = 1024 };
  for (size_t at = a; at < b; at += PIECE) {
    size_t e = b - at < PIECE ? b : at + PIECE;
    float *restrict s0 = segs[0];
    for (int q = 1; q < p; q++) {
      const float *restrict sq = segs[q];
      for (size_t i = at; i < e; i++) s0[i] += sq[i];
    }
    for (int q = 1; q < p; q++) memcpy(segs[q] + at, s0 + at, (e - at) * sizeof(float));
  }
}

void kr_dist_share(size_t n, int size, int rank, size_t *a, size_t *b)
{
  size_t lines = (n + 15) / 16;
  *a = lines * (size_t)rank / (size_t)size * 16;
  *b = lines * (size_t)(rank + 1) / (size_t)size * 16;
  if (*a > n) *a = n;
  if (*b > n) *b = n;
}

int kr_dist_shared_sum(kr_dist *d, size_t off, size_t n, char *err)
{
  if (d->ops->shm_barrier(d->impl, d->shm, err)) return 1;
  size_t a, b;
  kr_dist_share(n, d->size, d->rank, &a, &b);
  if (b > a) sum_segments(d->shm_segs, d->size, off + a, off + b);
  return d->ops->shm_barrier(d->impl, d->shm, err);
}

void kr_dist_shared_release(kr_dist *d)
{
  end_window(d);
  free(d->shm_segs);
  d->shm_segs = NULL;
}
