/*
** threadpool.h -- the kernels' worker threads (threadpool.c): one job split in T parts,
** part 0 on the calling thread, the others on a small process-wide pool.
**
** Determinism. A result must not depend on the thread count (docs/reliability.md,
** "Determinism"). Work whose floats are summed across items (batch-dimension
** gradient sums, the rows of one matrix product) is therefore cut into fixed
** chunks: their number and bounds are a function of the problem's shape only,
** never of the threads. kr_parallel_chunks runs them on T threads (thread t
** runs a contiguous run of chunks, in order), and kr_sum_chunks combines the
** chunks' partial results in chunk order, so 1, 2 or 16 threads add the same
** floats in the same order.
*/
#ifndef KR_THREADPOOL_H
#define KR_THREADPOOL_H

#include <stddef.h>
#include <stdint.h>

typedef void (*kr_part_fn)(void *arg, int t, int T);

/* fn(arg, t, T) for t = 0 .. T-1, each part once, all done on return. While
** the parts run, OpenBLAS is single-threaded (each part runs its own
** products; also when T is 1, so that a product's floats never depend on
** OpenBLAS's thread count). When the pool is busy (another thread's job) or its workers
** cannot be started, the calling thread runs every part in order: callers
** must not depend on which thread runs a part. */
void kr_parallel(int T, kr_part_fn fn, void *arg);

/* the items [*n0, *n1) of part t of T: N items split in contiguous ranges */
static inline void kr_share(int64_t N, int t, int T, int64_t *n0, int64_t *n1)
{
  *n0 = N * t / T;
  *n1 = N * (t + 1) / T;
}

/* ---- fixed chunks ---- */

#define KR_MAX_CHUNKS 16

/* fn(arg, c, G, slot): chunk c of G; slot (0 .. the threads used - 1) names
** the scratch the running thread may use, and no two chunks that run at the
** same time share a slot */
typedef void (*kr_chunk_fn)(void *arg, int c, int G, int slot);

/* fn for every chunk c = 0 .. G-1, each once, on up to T threads (never more
** than G), all done on return. OpenBLAS is single-threaded while the chunks run,
** whatever T is (a product inside a chunk must give the same floats whichever
** thread count the context has). Returns the number of slots used. */
int kr_parallel_chunks(int T, int G, kr_chunk_fn fn, void *arg);

/* the slots kr_parallel_chunks(T, G, ...) uses: min(T, G), at least 1 */
static inline int kr_chunk_slots(int T, int G)
{
  if (T > G) T = G;
  if (T > KR_MAX_CHUNKS) T = KR_MAX_CHUNKS;
  return T < 1 ? 1 : T;
}

/* the chunk count for `items` independent items (samples, rows) and `work`
** floating-point operations in all: at most KR_MAX_CHUNKS, at most
** items / min_items, and each chunk at least min_work operations; at least 1.
** A function of the shape alone. */
static inline int kr_chunk_count(int64_t items, int64_t min_items, double work, double min_work)
{
  int64_t G = KR_MAX_CHUNKS;
  if (min_items < 1) min_items = 1;
  if (G > items / min_items) G = items / min_items;
  while (G > 1 && work / (double)G < min_work) G--;
  return G < 1 ? 1 : (int)G;
}

/* dst[i] = parts[0][i] + parts[1][i] + ... + parts[G-1][i], added in chunk
** order (part c at parts + c * stride), for i in [0, n): the same floats for
** any thread count. dst may be parts itself (chunk 0's partial). */
void kr_sum_chunks(float *dst, const float *parts, size_t stride, int G, int64_t n);

#endif
