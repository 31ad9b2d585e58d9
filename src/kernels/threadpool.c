/*
** threadpool.c -- the kernels' worker threads, a thread pool (see threadpool.h).
**
** The pool is process-wide, like OpenBLAS's own: workers start on first use,
** up to the most parts asked for, and stay. This is one of the engine's two
** documented pieces of process-wide state (the other is OpenBLAS's thread
** count); it is guarded by `use` (one job at a time) and `lock`.
**
** Waiting. The jobs of one batch come close together (a convolution, a
** pooling, the next convolution), and waking a thread blocked on a condition
** variable costs tens of microseconds. So a waiting worker first spins on
** the job counter (SPIN_S), then yields its core between looks (YIELD_S: an
** OpenBLAS thread or the caller's other work runs meanwhile), and only then
** sleeps on the condition variable. The caller waits for the last part the
** same way.
*/
#include "threadpool.h"
#include "../kr.h"

#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdint.h>

#include "../openblas.h"

#define POOL_MAX 16
#define SPIN_S 30e-6    /* busy-wait */
#define YIELD_S 1e-3    /* then sched_yield between looks, then sleep */

static struct {
  pthread_mutex_t lock, use;
  pthread_cond_t go, done;
  int started;
  _Atomic unsigned long gen;
  _Atomic int pending;
  int T;
  kr_part_fn fn;
  void *arg;
} pool = {PTHREAD_MUTEX_INITIALIZER, PTHREAD_MUTEX_INITIALIZER, PTHREAD_COND_INITIALIZER, PTHREAD_COND_INITIALIZER,
          0, 0, 0, 0, NULL, NULL};

static inline void relax(void)
{
#if defined(__x86_64__) || defined(__i386__)
  __builtin_ia32_pause();
#endif
}

/* a worker waiting for a generation after `seen` (pending = 0), and the
** caller waiting for the other parts (pending = 1): return when it came or
** the time is up (then they sleep) */
static int still_waiting(int pending, unsigned long seen)
{
  if (pending) return atomic_load_explicit(&pool.pending, memory_order_acquire) > 0;
  return atomic_load_explicit(&pool.gen, memory_order_acquire) == seen;
}

static void wait_spin(int pending, unsigned long seen)
{
  double t0 = kr_now(), t;
  while (still_waiting(pending, seen)) {
    t = kr_now() - t0;
    if (t > SPIN_S + YIELD_S) return;
    if (t > SPIN_S) sched_yield();
    else relax();
  }
}

static void *worker(void *p)
{
  int id = (int)(intptr_t)p;   /* 1 .. */
  unsigned long seen = 0;
  for (;;) {
    wait_spin(0, seen);
    pthread_mutex_lock(&pool.lock);
    while (atomic_load_explicit(&pool.gen, memory_order_relaxed) == seen) pthread_cond_wait(&pool.go, &pool.lock);
    seen = atomic_load_explicit(&pool.gen, memory_order_relaxed);
    int T = pool.T;
    kr_part_fn fn = pool.fn;
    void *arg = pool.arg;
    pthread_mutex_unlock(&pool.lock);
    if (id >= T) continue;
    fn(arg, id, T);
    if (atomic_fetch_sub_explicit(&pool.pending, 1, memory_order_acq_rel) == 1) {
      pthread_mutex_lock(&pool.lock);
      pthread_cond_signal(&pool.done);
      pthread_mutex_unlock(&pool.lock);
    }
  }
  return NULL;
}

static void run_all_here(int T, kr_part_fn fn, void *arg)
{
  for (int t = 0; t < T; t++) fn(arg, t, T);
}

/* fn's parts on the calling thread alone, OpenBLAS single-threaded meanwhile */
static void run_here_single(int T, kr_part_fn fn, void *arg)
{
  int saved = openblas_get_num_threads();
  if (saved != 1) openblas_set_num_threads(1);
  run_all_here(T, fn, arg);
  if (saved != 1) openblas_set_num_threads(saved);
}

void kr_parallel(int T, kr_part_fn fn, void *arg)
{
  if (T > POOL_MAX) T = POOL_MAX;
  if (T <= 1) {
    run_here_single(1, fn, arg);
    return;
  }
  if (pthread_mutex_trylock(&pool.use) != 0) {
    run_here_single(T, fn, arg);
    return;
  }
  pthread_mutex_lock(&pool.lock);
  while (pool.started < T - 1) {
    pthread_t th;
    pthread_attr_t at;
    pthread_attr_init(&at);
    pthread_attr_setdetachstate(&at, PTHREAD_CREATE_DETACHED);
    int ok = pthread_create(&th, &at, worker, (void *)(intptr_t)(pool.started + 1)) == 0;
    pthread_attr_destroy(&at);
    if (!ok) break;
    pool.started++;
  }
  if (pool.started < T - 1) {   /* not enough workers: every part here */
    pthread_mutex_unlock(&pool.lock);
    pthread_mutex_unlock(&pool.use);
    run_here_single(T, fn, arg);
    return;
  }
  int saved = openblas_get_num_threads();
  if (saved != 1) openblas_set_num_threads(1);
  pool.fn = fn;
  pool.arg = arg;
  pool.T = T;
  atomic_store_explicit(&pool.pending, T - 1, memory_order_relaxed);
  atomic_fetch_add_explicit(&pool.gen, 1, memory_order_release);
  pthread_cond_broadcast(&pool.go);
  pthread_mutex_unlock(&pool.lock);
  fn(arg, 0, T);
  wait_spin(1, 0);
  pthread_mutex_lock(&pool.lock);
  while (atomic_load_explicit(&pool.pending, memory_order_acquire) > 0) pthread_cond_wait(&pool.done, &pool.lock);
  pthread_mutex_unlock(&pool.lock);
  if (saved != 1) openblas_set_num_threads(saved);
  pthread_mutex_unlock(&pool.use);
}

/* ---- fixed chunks (threadpool.h) ---- */

typedef struct chunk_job {
  kr_chunk_fn fn;
  void *arg;
  int G;
} chunk_job;

static void chunk_part(void *arg, int t, int T)
{
  const chunk_job *j = arg;
  int c0 = (int)((int64_t)j->G * t / T), c1 = (int)((int64_t)j->G * (t + 1) / T);
  for (int c = c0; c < c1; c++) j->fn(j->arg, c, j->G, t);
}

int kr_parallel_chunks(int T, int G, kr_chunk_fn fn, void *arg)
{
  if (G < 1) return 1;
  T = kr_chunk_slots(T, G);
  if (T > POOL_MAX) T = POOL_MAX;
  chunk_job j = {fn, arg, G};
  if (T > 1) {
    kr_parallel(T, chunk_part, &j);   /* OpenBLAS single-threaded meanwhile */
    return T;
  }
  int saved = openblas_get_num_threads();
  if (saved != 1) openblas_set_num_threads(1);
  chunk_part(&j, 0, 1);
  if (saved != 1) openblas_set_num_threads(saved);
  return 1;
}

void kr_sum_chunks(float *dst, const float *parts, size_t stride, int G, int64_t n)
{
  if (G < 1) return;
  if (dst != parts)
    for (int64_t i = 0; i < n; i++) dst[i] = parts[i];
  for (int c = 1; c < G; c++) {
    const float *p = parts + (size_t)c * stride;
    for (int64_t i = 0; i < n; i++) dst[i] += p[i];
  }
}
