/*
** prefetch.c -- row gathers on a worker thread (see prefetch.h).
** One thread per job, joined by kr_prefetch_wait: a job is a batch, so a
** thread's start-up cost is small beside the step it overlaps.
*/
#include "prefetch.h"

static void run(kr_prefetch *p)
{
  for (int i = 0; i < p->ng; i++)
    kr_tensor_gather_rows(p->g[i].dst, p->g[i].src, p->g[i].idx, p->g[i].n);
}

static void *worker(void *arg)
{
  run(arg);
  return NULL;
}

void kr_prefetch_start(kr_prefetch *p)
{
  p->running = 0;
  if (pthread_create(&p->thread, NULL, worker, p) == 0) p->running = 1;
  else run(p);
}

void kr_prefetch_wait(kr_prefetch *p)
{
  if (!p->running) return;
  pthread_join(p->thread, NULL);
  p->running = 0;
}
