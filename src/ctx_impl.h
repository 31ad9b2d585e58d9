/*
** ctx_impl.h -- the inside of kr_ctx, for the engine's own files.
*/
#ifndef KR_CTX_IMPL_H
#define KR_CTX_IMPL_H

#include "kr.h"

struct kr_ctx {
  char msg[KR_MSG_SIZE];
  int code;
  size_t in_use, peak;
  size_t max_alloc;            /* one allocation above this fails: the machine's memory */
  uint64_t nallocs;            /* allocations so far: tests check the batch loop makes none */
  long fail_at;
  uint64_t rng[4];
  double spare;
  int have_spare;
  int threads;
  uint64_t next_node_id;
};

#endif
