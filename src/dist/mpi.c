/*
** dist/mpi.c -- the reducer over MPI (Open MPI), built into its own plugin,
** build/keras_mpi.so, with mpicc: the only lkeras code that links libmpi.
** dist.c opens it at run time when the process was started by mpirun.
**
** Faults: the world's communicator returns errors (MPI_ERRORS_RETURN), and
** each becomes a message for Lua. A rank that dies is noticed by mpirun,
** which ends the job. A rank that raises stops calling collectives, so the
** others would wait for ever: a watchdog thread aborts the world
** (MPI_Abort, with a message naming the rank and the call) when one
** collective waits more than the timeout (LKERAS_DIST_TIMEOUT seconds,
** default 300). The normal end (finalize) waits for every rank at a barrier
** under the same bound; lkeras's host aborts at once when its script failed.
*/
#include <mpi.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "../dist.h"

typedef struct mpi_impl {
  MPI_Comm world, fin;          /* duplicates of MPI_COMM_WORLD: the collectives', the end's */
  MPI_Comm node;                /* the ranks of this host (MPI_COMM_NULL: none) */
  int size, rank;
  int *counts, *displs;
  double timeout;
  pthread_t dog;
  pthread_mutex_t mu;
  pthread_cond_t cv;
  int dog_on, stop;
  _Atomic double busy_since;    /* 0: not in a collective */
  const char *_Atomic busy_what;
} mpi_impl;

static double now_s(void)
{
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

static void *watchdog(void *arg)
{
  mpi_impl *m = arg;
  pthread_mutex_lock(&m->mu);
  while (!m->stop) {
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    ts.tv_sec += 1;
    pthread_cond_timedwait(&m->cv, &m->mu, &ts);
    if (m->stop) break;
    double since = m->busy_since;
    if (since > 0 && now_s() - since > m->timeout) {
      fprintf(stderr, "lkeras: keras.distributed: rank %d waited more than %g s in %s: another rank died, raised "
              "an error or stopped calling the collectives; aborting the job (LKERAS_DIST_TIMEOUT sets the bound)\n",
              m->rank, m->timeout, m->busy_what ? m->busy_what : "a collective");
      fflush(stderr);
      MPI_Abort(MPI_COMM_WORLD, 1);
    }
  }
  pthread_mutex_unlock(&m->mu);
  return NULL;
}

static void enter(mpi_impl *m, const char *what)
{
  m->busy_what = what;
  m->busy_since = now_s();
}

static void leave(mpi_impl *m) { m->busy_since = 0.0; }

static int failed(mpi_impl *m, int rc, const char *what, char *err)
{
  leave(m);
  if (rc == MPI_SUCCESS) return 0;
  char s[MPI_MAX_ERROR_STRING];
  int len = 0;
  MPI_Error_string(rc, s, &len);
  snprintf(err, KR_DIST_ERR, "keras.distributed: %s failed on rank %d: %.180s", what, m->rank, s);
  return 1;
}

static MPI_Datatype type_of(int dtype) { return dtype == KR_DIST_F64 ? MPI_DOUBLE : MPI_FLOAT; }

/* MPI counts are ints: larger buffers go in pieces */
#define PIECE ((size_t)1 << 30)

static int m_allreduce(void *impl, void *buf, size_t n, int dtype, char *err)
{
  mpi_impl *m = impl;
  size_t es = kr_dist_dtype_size(dtype);
  for (size_t at = 0; at < n; at += PIECE) {
    size_t k = n - at < PIECE ? n - at : PIECE;
    enter(m, "allreduce");
    int rc = MPI_Allreduce(MPI_IN_PLACE, (char *)buf + at * es, (int)k, type_of(dtype), MPI_SUM, m->world);
    if (failed(m, rc, "allreduce", err)) return 1;
  }
  return 0;
}

static int m_broadcast(void *impl, void *buf, size_t n, int dtype, int root, char *err)
{
  mpi_impl *m = impl;
  if (root < 0 || root >= m->size) {
    snprintf(err, KR_DIST_ERR, "broadcast: root %d is not a rank (the world has %d)", root, m->size);
    return 1;
  }
  size_t es = kr_dist_dtype_size(dtype);
  for (size_t at = 0; at < n; at += PIECE) {
    size_t k = n - at < PIECE ? n - at : PIECE;
    enter(m, "broadcast");
    int rc = MPI_Bcast((char *)buf + at * es, (int)k, type_of(dtype), root, m->world);
    if (failed(m, rc, "broadcast", err)) return 1;
  }
  return 0;
}

static int m_allgather(void *impl, const void *in, void *out, const size_t *counts, int dtype, char *err)
{
  mpi_impl *m = impl;
  size_t at = 0;
  for (int r = 0; r < m->size; r++) {
    if (counts[r] > (size_t)0x7fffffff || at > (size_t)0x7fffffff) {
      snprintf(err, KR_DIST_ERR, "allgather: more than 2^31 elements");
      return 1;
    }
    m->counts[r] = (int)counts[r];
    m->displs[r] = (int)at;
    at += counts[r];
  }
  enter(m, "allgather");
  int rc = MPI_Allgatherv(in, m->counts[m->rank], type_of(dtype), out, m->counts, m->displs, type_of(dtype),
                          m->world);
  return failed(m, rc, "allgather", err);
}

static int m_barrier(void *impl, char *err)
{
  mpi_impl *m = impl;
  enter(m, "barrier");
  return failed(m, MPI_Barrier(m->world), "barrier", err);
}

static void m_abort(void *impl, const char *msg)
{
  mpi_impl *m = impl;
  fprintf(stderr, "lkeras: keras.distributed: rank %d aborts the job: %s\n", m->rank, msg ? msg : "");
  fflush(stderr);
  MPI_Abort(MPI_COMM_WORLD, 1);
}

static void stop_dog(mpi_impl *m)
{
  if (!m->dog_on) return;
  pthread_mutex_lock(&m->mu);
  m->stop = 1;
  pthread_cond_signal(&m->cv);
  pthread_mutex_unlock(&m->mu);
  pthread_join(m->dog, NULL);
  m->dog_on = 0;
}

static void m_finalize(void *impl)
{
  mpi_impl *m = impl;
  /* every rank at the end, within the bound: else some rank failed */
  MPI_Request rq;
  int done = 0;
  if (MPI_Ibarrier(m->fin, &rq) == MPI_SUCCESS) {
    double t0 = now_s();
    while (!done && now_s() - t0 < m->timeout) {
      if (MPI_Test(&rq, &done, MPI_STATUS_IGNORE) != MPI_SUCCESS) break;
      if (!done) {
        struct timespec ts = {0, 1000000};
        nanosleep(&ts, NULL);
      }
    }
  }
  if (!done) m_abort(m, "the other ranks did not reach the end of the program in time (one of them failed?)");
  stop_dog(m);
  if (m->node != MPI_COMM_NULL) MPI_Comm_free(&m->node);
  MPI_Comm_free(&m->fin);
  MPI_Comm_free(&m->world);
  free(m->counts);
  free(m->displs);
  free(m);
  int fin = 0;
  MPI_Finalized(&fin);
  if (!fin) MPI_Finalize();
}

/* ---- shared memory on one host: an MPI-3 window (MPI_Win_allocate_shared)
** over the host's ranks, open for the whole of its life (lock_all); its
** barrier is MPI_Win_sync, MPI_Barrier, MPI_Win_sync ---- */

typedef struct shm_win {
  MPI_Win win;
} shm_win;

static void *m_shm_new(void *impl, size_t n, float **segs, char *err)
{
  mpi_impl *m = impl;
  int lsize = 0;
  if (m->node == MPI_COMM_NULL || MPI_Comm_size(m->node, &lsize) != MPI_SUCCESS || lsize != m->size) return NULL;
  if (n > (size_t)0x7fffffff / sizeof(float)) {
    snprintf(err, KR_DIST_ERR, "keras.distributed: a shared region of %zu floats is too large", n);
    return NULL;
  }
  shm_win *w = calloc(1, sizeof *w);
  if (!w) {
    snprintf(err, KR_DIST_ERR, "keras.distributed: out of memory");
    return NULL;
  }
  MPI_Info info;
  MPI_Info_create(&info);
  MPI_Info_set(info, "alloc_shared_noncontig", "true");   /* each segment on its own pages */
  void *base = NULL;
  enter(m, "MPI_Win_allocate_shared");
  int rc = MPI_Win_allocate_shared((MPI_Aint)(n * sizeof(float)), (int)sizeof(float), info, m->node, &base, &w->win);
  MPI_Info_free(&info);
  if (failed(m, rc, "MPI_Win_allocate_shared", err)) {
    free(w);
    return NULL;
  }
  for (int q = 0; q < m->size; q++) {
    MPI_Aint size = 0;
    int disp = 0;
    void *ptr = NULL;
    int qrank = q;   /* the host's communicator ranks the world's in order (split keyed by world rank) */
    if (MPI_Win_shared_query(w->win, qrank, &size, &disp, &ptr) != MPI_SUCCESS || !ptr) {
      snprintf(err, KR_DIST_ERR, "keras.distributed: MPI_Win_shared_query failed for rank %d", q);
      MPI_Win_free(&w->win);
      free(w);
      return NULL;
    }
    segs[q] = ptr;
  }
  MPI_Win_lock_all(MPI_MODE_NOCHECK, w->win);
  return w;
}

static int m_shm_barrier(void *impl, void *win, char *err)
{
  mpi_impl *m = impl;
  shm_win *w = win;
  MPI_Win_sync(w->win);
  enter(m, "barrier (shared region)");
  int rc = MPI_Barrier(m->node);
  if (failed(m, rc, "barrier (shared region)", err)) return 1;
  MPI_Win_sync(w->win);
  return 0;
}

static void m_shm_free(void *impl, void *win)
{
  shm_win *w = win;
  if (!w) return;
  MPI_Win_unlock_all(w->win);
  MPI_Win_free(&w->win);
  free(w);
}

static const kr_dist_ops mpi_ops = {
  "mpi", m_allreduce, m_broadcast, m_allgather, m_barrier, m_abort, m_finalize,
  m_shm_new, m_shm_barrier, m_shm_free
};

int lkeras_dist_mpi_open(kr_dist *d, char *err);

int lkeras_dist_mpi_open(kr_dist *d, char *err)
{
  int inited = 0, provided = 0;
  MPI_Initialized(&inited);
  /* serialized: the communication thread of the overlapped reduction
  ** (dist_comm.c) makes collective calls while the main thread makes none */
  if (!inited) {
    if (MPI_Init_thread(NULL, NULL, MPI_THREAD_SERIALIZED, &provided) != MPI_SUCCESS) {
      snprintf(err, KR_DIST_ERR, "keras.distributed: MPI_Init_thread failed");
      return 1;
    }
  } else if (MPI_Query_thread(&provided) != MPI_SUCCESS) {
    provided = MPI_THREAD_SINGLE;
  }
  mpi_impl *m = calloc(1, sizeof *m);
  if (!m) {
    snprintf(err, KR_DIST_ERR, "keras.distributed: out of memory");
    return 1;
  }
  MPI_Comm_set_errhandler(MPI_COMM_WORLD, MPI_ERRORS_RETURN);
  MPI_Comm_dup(MPI_COMM_WORLD, &m->world);
  MPI_Comm_dup(MPI_COMM_WORLD, &m->fin);
  MPI_Comm_set_errhandler(m->world, MPI_ERRORS_RETURN);
  MPI_Comm_set_errhandler(m->fin, MPI_ERRORS_RETURN);
  MPI_Comm_size(m->world, &m->size);
  MPI_Comm_rank(m->world, &m->rank);
  int lsize = 1, lrank = 0;
  m->node = MPI_COMM_NULL;
  if (MPI_Comm_split_type(m->world, MPI_COMM_TYPE_SHARED, m->rank, MPI_INFO_NULL, &m->node) == MPI_SUCCESS) {
    MPI_Comm_size(m->node, &lsize);
    MPI_Comm_rank(m->node, &lrank);
    MPI_Comm_set_errhandler(m->node, MPI_ERRORS_RETURN);
  } else {
    m->node = MPI_COMM_NULL;
  }
  m->counts = calloc((size_t)m->size, sizeof *m->counts);
  m->displs = calloc((size_t)m->size, sizeof *m->displs);
  m->timeout = d->timeout > 0 ? d->timeout : 300;
  if (!m->counts || !m->displs) {
    snprintf(err, KR_DIST_ERR, "keras.distributed: out of memory");
    return 1;
  }
  pthread_mutex_init(&m->mu, NULL);
  pthread_cond_init(&m->cv, NULL);
  m->dog_on = pthread_create(&m->dog, NULL, watchdog, m) == 0;
  d->ops = &mpi_ops;
  d->impl = m;
  d->size = m->size;
  d->rank = m->rank;
  d->local_size = lsize;
  d->local_rank = lrank;
  d->threads_ok = provided >= MPI_THREAD_SERIALIZED;
  return 0;
}
