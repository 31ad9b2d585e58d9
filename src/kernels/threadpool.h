/*
** threadpool.h -- the kernels' worker threads (threadpool.c): one job split in T parts,
** part 0 on the calling thread, the others on a small process-wide pool.
*/
#ifndef KR_THREADPOOL_H
#define KR_THREADPOOL_H

#include <stdint.h>

typedef void (*kr_part_fn)(void *arg, int t, int T);

/* fn(arg, t, T) for t = 0 .. T-1, each part once, all done on return. While
** the parts run, OpenBLAS is single-threaded (each part runs its own
** products). When the pool is busy (another thread's job) or its workers
** cannot be started, the calling thread runs every part in order: callers
** must not depend on which thread runs a part. */
void kr_parallel(int T, kr_part_fn fn, void *arg);

/* the items [*n0, *n1) of part t of T: N items split in contiguous ranges */
static inline void kr_share(int64_t N, int t, int T, int64_t *n0, int64_t *n1)
{
  *n0 = N * t / T;
  *n1 = N * (t + 1) / T;
}

#endif
