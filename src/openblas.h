/*
** openblas.h -- the OpenBLAS extensions the engine calls (beyond CBLAS),
** declared once: not every cblas.h declares them (the reference CBLAS has
** none), but the OpenBLAS library this engine links always defines them.
** Used by blas.c (the report), ctx.c (the thread count) and
** kernels/threadpool.c (one thread while the workers run).
*/
#ifndef KR_OPENBLAS_H
#define KR_OPENBLAS_H

extern char *openblas_get_corename(void);
extern char *openblas_get_config(void);
extern int openblas_get_num_threads(void);
extern void openblas_set_num_threads(int);

#endif
