/*
** pool.h -- the kernels' worker threads (pool.c): one job split in T parts,
** part 0 on the calling thread, the others on a small process-wide pool.
*/
#ifndef KR_POOL_H
#define KR_POOL_H

typedef void (*kr_part_fn)(void *arg, int t, int T);

/* fn(arg, t, T) for t = 0 .. T-1, each part once, all done on return. While
** the parts run, OpenBLAS is single-threaded (each part runs its own
** products). When the pool is busy (another thread's job) or its workers
** cannot be started, the calling thread runs every part in order: callers
** must not depend on which thread runs a part. */
void kr_parallel(int T, kr_part_fn fn, void *arg);

#endif
