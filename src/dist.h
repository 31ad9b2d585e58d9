/*
** dist.h -- the reducer: the collective operations data-parallel training
** needs (keras.distributed), behind a small table of functions so that a
** transport is one file. Two exist: the single process (a world of size 1,
** where every call is a copy or nothing) in dist.c, and MPI in
** src/dist/mpi.c, built by the Makefile only where mpicc is found, into a
** separate plugin (build/keras_mpi.so) that dist.c opens at run time when the
** process was started by mpirun. So libkeras.a, keras.so and lkeras never
** link libmpi, and load on a host without it.
*/
#ifndef KR_DIST_H
#define KR_DIST_H

#include <stddef.h>
#include <stdint.h>

enum { KR_DIST_F32 = 0, KR_DIST_F64 = 1 };

#define KR_DIST_ERR 1024

/* Every function returns 0, or nonzero with a message in err (KR_DIST_ERR
** bytes). Buffers are n elements of dtype; all ranks call in the same order. */
typedef struct kr_dist_ops {
  const char *name;
  int (*allreduce)(void *impl, void *buf, size_t n, int dtype, char *err);   /* sum, in place */
  int (*broadcast)(void *impl, void *buf, size_t n, int dtype, int root, char *err);
  /* out = every rank's `in` end to end, rank order; counts[r]: rank r's elements */
  int (*allgather)(void *impl, const void *in, void *out, const size_t *counts, int dtype, char *err);
  int (*barrier)(void *impl, char *err);
  /* ends every process of the world with msg (no return where it works) */
  void (*abort)(void *impl, const char *msg);
  /* the normal end: waits (bounded) for the other ranks, then shuts down */
  void (*finalize)(void *impl);
  /* memory shared by the ranks of one host (NULL where the transport has
  ** none): a window of n floats per rank, segs[q] rank q's (the world must
  ** be one host; collective), its barrier (every rank's writes before it are
  ** seen by every rank after it), and its end (collective) */
  void *(*shm_new)(void *impl, size_t n, float **segs, char *err);
  int (*shm_barrier)(void *impl, void *win, char *err);
  void (*shm_free)(void *impl, void *win);
} kr_dist_ops;

typedef struct kr_dist {
  const kr_dist_ops *ops;
  void *impl;
  int size, rank, local_rank, local_size;
  double timeout;            /* seconds a collective may wait before the world is aborted */
  int threads_ok;            /* collectives may come from any thread, one at a time */
  /* the world's shared gradient region (kr_dist_shared): the window, every
  ** rank's segment, its floats per rank, and a count of the windows made
  ** (a plan bound to an older one binds again) */
  void *shm;
  float **shm_segs;
  size_t shm_floats;
  uint64_t shm_gen;
  /* the host's one copy of a trainer's weights and optimizer slots while it
  ** fits (kr_dist_state_share): rank 0's segment holds shm_lead more floats,
  ** shm_state, which every rank sees; the tensors whose storage was moved
  ** there, where their own memory is, and the trainer they belong to */
  size_t shm_lead;
  float *shm_state;
  /* before the state area, the step's control words (KR_DIST_CTRL_FLOATS,
  ** each word on a cache line of its own): [1 + q] rank q's progress through
  ** its run, [1 + KR_DIST_CTRL_RANKS + q] the chunks of rank q's range not yet
  ** taken (fit's chunked step, train.c); the step's tick, the same on every
  ** rank */
  uint64_t *shm_ctrl;
  uint64_t shm_tick;
  int nmoved;
  struct kr_tensor **moved;
  float **home;
  const void *state_owner;
} kr_dist;

/* the plugin's entry point (src/dist/mpi.c) */
typedef int (*kr_dist_open_fn)(kr_dist *d, char *err);
#define KR_DIST_MPI_ENTRY "lkeras_dist_mpi_open"

/* d becomes the world this process is part of: MPI when started by mpirun
** (OMPI_COMM_WORLD_SIZE or PMIX_RANK set) or when LKERAS_DIST=mpi, else the
** single process. 0, or nonzero with a message in err (started by mpirun
** but no MPI plugin, or MPI failed to start). */
int kr_dist_open(kr_dist *d, char *err);
/* the single-process world */
void kr_dist_open_single(kr_dist *d);
size_t kr_dist_dtype_size(int dtype);

/* ---- the shared gradient region (dist.c): where every rank of the world
** runs on one host and the transport has shared memory, the train plans'
** gradient regions live in one window, and the sum over the ranks is each
** rank adding up its share of the region from every segment and writing the
** sum into every segment: no message, no copy. ---- */
/* this rank's segment of at least n floats, or NULL (no shared memory
** here: use allreduce). Collective: every rank calls it at the same point
** with the same n and lead. lead: floats more in rank 0's segment for the
** shared state (d->shm_state), 0 for none. A larger n or lead makes a new
** window (the old one ends), unless a trainer's state lives in the old one
** (NULL then) */
float *kr_dist_shared(kr_dist *d, size_t n, size_t lead, char *err, int *failed);
/* the control area: up to KR_DIST_CTRL_RANKS ranks */
#define KR_DIST_CTRL_RANKS 64
#define KR_DIST_CTRL_FLOATS (16 * (2 * KR_DIST_CTRL_RANKS + 1))
/* the shared state: tensors t[0..count) (whole storages, offset 0) move into
** d->shm_state at floats off[i], with rank 0's values; every rank's tensors
** then read and write the host's one copy. The control words start at zero
** (the tick too). Collective. 0, or nonzero with a
** message in err (the state is moved all the same: release it) */
struct kr_tensor;
int kr_dist_state_share(kr_dist *d, const void *owner, int count, struct kr_tensor *const *t, const size_t *off,
                        char *err);
/* the shared state back to each tensor's own memory, with the host's values.
** sync: a barrier first (collective), so that no rank still writes it; 0 on
** an error path (no collective). 0, or nonzero with a message in err (the
** state is back all the same) */
int kr_dist_state_release(kr_dist *d, int sync, char *err);
/* rank's share [*a, *b) of n floats cut over size ranks: whole cache lines
** (16 floats), so that no two ranks write the same line */
void kr_dist_share(size_t n, int size, int rank, size_t *a, size_t *b);
/* sum floats [off, off + n) of every rank's segment into every segment, in
** rank order (the same bits on every rank); collective */
int kr_dist_shared_sum(kr_dist *d, size_t off, size_t n, char *err);
/* the end of the window (collective: at the world's end) */
void kr_dist_shared_release(kr_dist *d);

/* ---- the communication thread (dist_comm.c): a step's gradient buckets
** allreduced while the backward pass still runs ---- */
typedef struct kr_dist_comm kr_dist_comm;
struct kr_ctx;
struct kr_plan;
/* starts the thread; NULL (error set in ctx) when it cannot */
kr_dist_comm *kr_dist_comm_new(struct kr_ctx *ctx, kr_dist *d);
void kr_dist_comm_free(kr_dist_comm *c);
/* the bucket table for plan p (grouped): cuts at gradient ends once a bucket
** holds `first` floats, never more than `fusion` floats in one */
int kr_dist_comm_plan(kr_dist_comm *c, const struct kr_plan *p, size_t first, size_t fusion);
size_t kr_dist_comm_buckets(const kr_dist_comm *c);
/* a step: the region g, each rank's weight fw, shm: g is the world's shared
** region (kr_dist_shared_sum instead of allreduce); then run the plan with
** kr_dist_comm_ready as its group hook (ud = c); then end (ran: the run
** succeeded) waits for every bucket: 0, or nonzero with a message in err */
void kr_dist_comm_begin(kr_dist_comm *c, float *g, float fw, int shm);
void kr_dist_comm_ready(void *ud, size_t floats);
int kr_dist_comm_end(kr_dist_comm *c, int ran, char *err);

#endif
