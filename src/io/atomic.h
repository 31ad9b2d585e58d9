/*
** atomic.h -- the one way a file is written in place: the bytes go to a
** fresh temporary file next to the target ("path.tmp<pid>.<n>", created
** with O_EXCL), which is fsync'ed, renamed over the target, and then the
** directory is fsync'ed so that the rename itself is durable. A reader never
** sees a torn file, and a save that fails or is killed leaves the previous
** file as it was. Used by the .npy writer (npy.c), the native model file
** (model_file.c) and HDF5 (h5.c).
**
**   char *tmp; int fd = kr_atomic_create(ctx, path, &tmp);
**   ... write the bytes to fd (or close it and let a library write tmp) ...
**   close it, then  kr_atomic_commit(ctx, path, tmp)  or  kr_atomic_abort(tmp)
**   kr_free(ctx, tmp);
**
** or, through stdio: f = kr_atomic_fopen(ctx, path, &tmp); fwrite...;
** kr_atomic_fclose(ctx, path, &tmp, f, all_writes_ok).
**
** Messages start with "save: 'path'".
*/
#ifndef KR_IO_ATOMIC_H
#define KR_IO_ATOMIC_H

#include "kr.h"

#include <stdio.h>

/* Create a new empty temporary file next to path, open for writing (O_CLOEXEC).
** Returns its descriptor and sets *tmp to its name (kr_malloc'd; the caller
** frees it), or returns -1 with *tmp NULL and a message in ctx. */
int kr_atomic_create(kr_ctx *ctx, const char *path, char **tmp);

/* Write all n bytes of buf to fd, through short writes and EINTR: 0, or -1
** with errno set. */
int kr_atomic_write(int fd, const void *buf, size_t n);

/* Make the closed temporary file tmp durable and put it at path: fsync it,
** rename it over path, fsync path's directory. KR_OK, or an error code with
** a message; on an error tmp is removed and path is untouched. */
int kr_atomic_commit(kr_ctx *ctx, const char *path, const char *tmp);

/* The same for a writer through stdio: kr_atomic_create, then fdopen "wb".
** NULL (nothing left behind) with a message, or the stream with *tmp set. */
FILE *kr_atomic_fopen(kr_ctx *ctx, const char *path, char **tmp);

/* Finish a save through kr_atomic_fopen's stream: ok says whether every
** write succeeded (errno from the failing one). Flushes and closes f, then
** commits, or on any failure removes the temporary file and fails with
** "save: 'path': cannot write (why)". Frees *tmp and sets it to NULL. */
int kr_atomic_fclose(kr_ctx *ctx, const char *path, char **tmp, FILE *f, int ok);

/* Give up a save: remove tmp (NULL is allowed). */
void kr_atomic_abort(const char *tmp);

#endif
