/*
** atomic.c -- temporary file, fsync, rename, fsync of the directory: see
** atomic.h. Moved here from the three copies that were in npy.c,
** model_file.c and h5.c (npy.c's never synced the directory).
*/
#include "atomic.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

int kr_atomic_create(kr_ctx *ctx, const char *path, char **tmp)
{
  *tmp = NULL;
  size_t plen = strlen(path);
  char *name = kr_malloc(ctx, plen + 48);
  if (!name) return -1;
  int fd = -1;
  for (int attempt = 0; attempt < 100 && fd < 0; attempt++) {
    snprintf(name, plen + 48, "%s.tmp%ld.%d", path, (long)getpid(), attempt);
    fd = open(name, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0666);
    if (fd < 0 && errno != EEXIST) break;
  }
  if (fd < 0) {
    int e = errno;
    kr_fail(ctx, KR_EIO, "save: '%s': cannot create the temporary file '%s' (%s)", path, name, strerror(e));
    kr_free(ctx, name);
    return -1;
  }
  *tmp = name;
  return fd;
}

int kr_atomic_write(int fd, const void *buf, size_t n)
{
  const unsigned char *p = buf;
  while (n > 0) {
    ssize_t w = write(fd, p, n);
    if (w < 0 && errno == EINTR) continue;
    if (w <= 0) {
      if (w == 0) errno = EIO;
      return -1;
    }
    p += w;
    n -= (size_t)w;
  }
  return 0;
}

/* fsync the directory holding path, so that the rename itself is durable */
static void sync_dir(const char *path)
{
  const char *slash = strrchr(path, '/');
  char dir[4096];
  if (!slash) {
    strcpy(dir, ".");
  } else {
    size_t n = (size_t)(slash - path);
    if (n == 0) n = 1;
    if (n >= sizeof dir) return;
    memcpy(dir, path, n);
    dir[n] = '\0';
  }
  int fd = open(dir, O_RDONLY | O_CLOEXEC);
  if (fd >= 0) {
    (void)fsync(fd);
    close(fd);
  }
}

int kr_atomic_commit(kr_ctx *ctx, const char *path, const char *tmp)
{
  int fd = open(tmp, O_RDONLY | O_CLOEXEC);
  int ok = fd >= 0 && fsync(fd) == 0;
  int e = errno;
  if (fd >= 0) close(fd);
  if (!ok) {
    unlink(tmp);
    return kr_fail(ctx, KR_EIO, "save: '%s': cannot write (%s)", path, strerror(e));
  }
  if (rename(tmp, path) != 0) {
    e = errno;
    unlink(tmp);
    return kr_fail(ctx, KR_EIO, "save: '%s': cannot replace it with '%s' (%s)", path, tmp, strerror(e));
  }
  sync_dir(path);
  return KR_OK;
}

FILE *kr_atomic_fopen(kr_ctx *ctx, const char *path, char **tmp)
{
  int fd = kr_atomic_create(ctx, path, tmp);
  if (fd < 0) return NULL;
  FILE *f = fdopen(fd, "wb");
  if (!f) {
    int e = errno;
    close(fd);
    kr_atomic_abort(*tmp);
    kr_free(ctx, *tmp);
    *tmp = NULL;
    kr_fail(ctx, KR_EIO, "save: '%s': cannot write (%s)", path, strerror(e));
  }
  return f;
}

int kr_atomic_fclose(kr_ctx *ctx, const char *path, char **tmp, FILE *f, int ok)
{
  int e = errno;
  if (fflush(f) != 0 && ok) {
    ok = 0;
    e = errno;
  }
  if (fclose(f) != 0 && ok) {
    ok = 0;
    e = errno;
  }
  int st = ok ? kr_atomic_commit(ctx, path, *tmp) : KR_EIO;
  if (!ok) {
    kr_atomic_abort(*tmp);
    kr_fail(ctx, KR_EIO, "save: '%s': cannot write (%s)", path, strerror(e));
  }
  kr_free(ctx, *tmp);
  *tmp = NULL;
  return st;
}

void kr_atomic_abort(const char *tmp)
{
  if (tmp) unlink(tmp);
}
