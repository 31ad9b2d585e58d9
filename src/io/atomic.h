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
**
** What a save promises about what is already at the path:
**   - a symbolic link is followed (to any depth) and its target is replaced
**     atomically; the link itself stays a link;
**   - anything that is not a regular file (a device, a FIFO, a socket, a
**     directory) is refused with an error, never replaced;
**   - the new file keeps the old one's permission bits, and its owner and
**     group where the process may set them;
**   - temporary files of this pattern for the same target left by a process
**     that no longer runs (a killed save) are removed.
**
** The read side lives here too: kr_open_regular is how every loader opens
** its file (never blocking on a FIFO or a device), and kr_mem_budget is the
** memory a loader may ask for (checked against a file's declared sizes
** before anything is allocated).
*/
#ifndef KR_IO_ATOMIC_H
#define KR_IO_ATOMIC_H

#include "kr.h"

#include <stdio.h>
#include <sys/stat.h>

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

/* Open path read-only for a loader: the open never blocks (O_NONBLOCK, so a
** FIFO without a writer or a device cannot hang it), anything but a regular
** file is refused, then the descriptor is switched back to blocking reads.
** who prefixes messages: "<who> '<path>': not a regular file (a FIFO)".
** Returns the descriptor (O_CLOEXEC) with *sb filled (sb may be NULL), or -1
** with a message in ctx (KR_EIO). */
int kr_open_regular(kr_ctx *ctx, const char *who, const char *path, struct stat *sb);

/* The same check for a library that opens the file by name (libhdf5, Lua's
** io.open): KR_OK when path is a regular file that can be opened. */
int kr_check_regular(kr_ctx *ctx, const char *who, const char *path);

/* The most memory a loader may ask for: the context's limit for one
** allocation, or when lower the memory limit of the process's cgroup (v2
** /sys/fs/cgroup/memory.max, v1 memory/memory.limit_in_bytes) or its
** address-space limit (ulimit -v). */
size_t kr_mem_budget(kr_ctx *ctx);

/* KR_OK when a loader may allocate nbytes (its file's declared size);
** otherwise KR_EMEM with "<who> '<path>': <what> needs N bytes, more than
** the memory budget (M bytes)". */
int kr_mem_check(kr_ctx *ctx, const char *who, const char *path, const char *what, uint64_t nbytes);

#endif
