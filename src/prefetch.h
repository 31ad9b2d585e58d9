/*
** prefetch.h -- row gathers run on a worker thread, so that the next batch of
** a Sequence of C-side data is made while the current one trains.
** The worker copies rows (kr_tensor_gather_rows) and does nothing else: no
** allocation, no reference counts, no context, no Lua. The caller owns every
** tensor and index array named in the job and keeps them alive, unchanged,
** until kr_prefetch_wait has returned.
*/
#ifndef KR_PREFETCH_H
#define KR_PREFETCH_H

#include <pthread.h>

#include "kr.h"

#define KR_PREFETCH_MAX 4

typedef struct kr_gather {     /* rows idx[0..n) of src into dst (n rows of src's row size) */
  const kr_tensor *src;
  float *dst;
  const int64_t *idx;
  int64_t n;
} kr_gather;

typedef struct kr_prefetch {
  kr_gather g[KR_PREFETCH_MAX];
  int ng;
  int running;                 /* a worker is gathering: wait before reading any dst */
  pthread_t thread;
} kr_prefetch;

/* runs the job's gathers on a new thread; when no thread can be made, runs
** them on this one before returning. Never fails. */
void kr_prefetch_start(kr_prefetch *p);
/* returns when the gathers are done; idempotent */
void kr_prefetch_wait(kr_prefetch *p);

#endif
