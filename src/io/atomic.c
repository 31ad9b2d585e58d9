/*
** atomic.c -- temporary file, fsync, rename, fsync of the directory: see
** atomic.h; and the checks every loader makes when it opens a file and
** before it allocates. Moved here from the three copies that were in npy.c,
** model_file.c and h5.c (npy.c's never synced the directory).
*/
#include "atomic.h"
#include "ctx_impl.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <unistd.h>

#define MAX_LINKS 40   /* symbolic links followed, as the kernel does */

/* what a non-regular file is, for messages */
static const char *file_kind(mode_t m)
{
  if (S_ISDIR(m)) return "a directory";
  if (S_ISFIFO(m)) return "a FIFO";
  if (S_ISCHR(m)) return "a character device";
  if (S_ISBLK(m)) return "a block device";
  if (S_ISSOCK(m)) return "a socket";
  return "not a regular file";
}

/* the length of the folder part of p, slash included (0: none) */
static size_t dir_len(const char *p)
{
  const char *slash = strrchr(p, '/');
  return slash ? (size_t)(slash - p) + 1 : 0;
}

/* The file a save replaces: path with its symbolic links followed, to any
** depth (a dangling link gives the file it names). kr_malloc'd, or NULL
** with a message. */
static char *save_target(kr_ctx *ctx, const char *path)
{
  size_t n = strlen(path);
  char *cur = kr_malloc(ctx, n + 1);
  if (!cur) return NULL;
  memcpy(cur, path, n + 1);
  for (int depth = 0; depth <= MAX_LINKS; depth++) {
    struct stat sb;
    if (lstat(cur, &sb) != 0 || !S_ISLNK(sb.st_mode)) return cur;
    char link[PATH_MAX];
    ssize_t k = readlink(cur, link, sizeof link - 1);
    if (k <= 0) return cur;   /* the open below reports it */
    link[k] = '\0';
    size_t keep = link[0] == '/' ? 0 : dir_len(cur);
    char *next = kr_malloc(ctx, keep + (size_t)k + 1);
    if (!next) {
      kr_free(ctx, cur);
      return NULL;
    }
    memcpy(next, cur, keep);
    memcpy(next + keep, link, (size_t)k + 1);
    kr_free(ctx, cur);
    cur = next;
  }
  kr_fail(ctx, KR_EIO, "save: '%s': too many levels of symbolic links", path);
  kr_free(ctx, cur);
  return NULL;
}

/* "<digits>.<digits>" and nothing else: the pid of a temporary name */
static long tmp_pid(const char *s)
{
  char *end;
  if (*s < '0' || *s > '9') return -1;
  long pid = strtol(s, &end, 10);
  if (*end != '.' || end[1] < '0' || end[1] > '9') return -1;
  s = end + 1;
  while (*s >= '0' && *s <= '9') s++;
  return *s == '\0' && pid > 0 ? pid : -1;
}

/* Remove the temporary files "<target>.tmp<pid>.<n>" of saves whose process
** no longer runs (killed mid-save). Regular files only; best effort. */
static void clean_stale(kr_ctx *ctx, const char *target)
{
  size_t dl = dir_len(target), bl = strlen(target + dl);
  char *dir = kr_malloc(ctx, dl + 2);
  if (!dir) return;
  if (dl == 0) strcpy(dir, ".");
  else {
    memcpy(dir, target, dl);
    dir[dl] = '\0';
  }
  DIR *d = opendir(dir);
  struct dirent *e;
  while (d && (e = readdir(d)) != NULL) {
    const char *nm = e->d_name;
    if (strncmp(nm, target + dl, bl) != 0 || strncmp(nm + bl, ".tmp", 4) != 0) continue;
    long pid = tmp_pid(nm + bl + 4);
    if (pid <= 0 || pid == (long)getpid() || pid > INT_MAX) continue;
    if (kill((pid_t)pid, 0) == 0 || errno != ESRCH) continue;   /* alive (or not ours to ask) */
    size_t nl = strlen(nm);
    char *full = kr_malloc(ctx, dl + nl + 1);
    if (!full) break;
    memcpy(full, target, dl);
    memcpy(full + dl, nm, nl + 1);
    struct stat sb;
    if (lstat(full, &sb) == 0 && S_ISREG(sb.st_mode)) (void)unlink(full);
    kr_free(ctx, full);
  }
  if (d) closedir(d);
  kr_free(ctx, dir);
}

int kr_atomic_create(kr_ctx *ctx, const char *path, char **tmp)
{
  *tmp = NULL;
  char *target = save_target(ctx, path);
  if (!target) return -1;
  struct stat old;
  int exists = stat(target, &old) == 0;
  if (exists && !S_ISREG(old.st_mode)) {
    kr_fail(ctx, KR_EIO, "save: '%s': cannot replace it: %s is there, not a regular file (refused)", path,
            file_kind(old.st_mode));
    kr_free(ctx, target);
    return -1;
  }
  clean_stale(ctx, target);
  size_t plen = strlen(target);
  char *name = kr_malloc(ctx, plen + 48);
  if (!name) {
    kr_free(ctx, target);
    return -1;
  }
  int fd = -1;
  for (int attempt = 0; attempt < 100 && fd < 0; attempt++) {
    snprintf(name, plen + 48, "%s.tmp%ld.%d", target, (long)getpid(), attempt);
    fd = open(name, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0666);
    if (fd < 0 && errno != EEXIST) break;
  }
  kr_free(ctx, target);
  if (fd < 0) {
    int e = errno;
    kr_fail(ctx, KR_EIO, "save: '%s': cannot create the temporary file '%s' (%s)", path, name, strerror(e));
    kr_free(ctx, name);
    return -1;
  }
  if (exists) {   /* the old file's owner (where allowed), then its mode */
    if ((old.st_uid != geteuid() || old.st_gid != getegid()) && fchown(fd, old.st_uid, old.st_gid) != 0)
      (void)fchown(fd, (uid_t)-1, old.st_gid);
    (void)fchmod(fd, old.st_mode & 07777);
  }
  *tmp = name;
  return fd;
}

/* the target of a temporary name: tmp without its ".tmp<pid>.<n>" */
static size_t target_len(const char *tmp)
{
  size_t n = strlen(tmp);
  for (size_t i = n; i >= 4; i--)
    if (memcmp(tmp + i - 4, ".tmp", 4) == 0) return i - 4;
  return n;
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
  char dir[PATH_MAX];
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
  /* the file the temporary was made for (path with its links followed) */
  size_t tl = target_len(tmp);
  char *target = kr_malloc(ctx, tl + 1);
  if (!target) {
    unlink(tmp);
    return kr_errcode(ctx);
  }
  memcpy(target, tmp, tl);
  target[tl] = '\0';
  struct stat sb;
  if (lstat(target, &sb) == 0 && !S_ISREG(sb.st_mode)) {   /* appeared since the create */
    unlink(tmp);
    kr_free(ctx, target);
    return kr_fail(ctx, KR_EIO, "save: '%s': cannot replace it: %s is there, not a regular file (refused)", path,
                   S_ISLNK(sb.st_mode) ? "a new symbolic link" : file_kind(sb.st_mode));
  }
  if (rename(tmp, target) != 0) {
    e = errno;
    unlink(tmp);
    kr_free(ctx, target);
    return kr_fail(ctx, KR_EIO, "save: '%s': cannot replace it with '%s' (%s)", path, tmp, strerror(e));
  }
  sync_dir(target);
  kr_free(ctx, target);
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

/* ---- the read side ---- */

int kr_open_regular(kr_ctx *ctx, const char *who, const char *path, struct stat *out)
{
  int fd = open(path, O_RDONLY | O_NONBLOCK | O_NOCTTY | O_CLOEXEC);
  if (fd < 0) {
    int e = errno;
    kr_fail(ctx, KR_EIO, "%s '%s': cannot open (%s)", who, path, strerror(e));
    return -1;
  }
  struct stat sb;
  if (fstat(fd, &sb) != 0) {
    int e = errno;
    close(fd);
    kr_fail(ctx, KR_EIO, "%s '%s': cannot open (%s)", who, path, strerror(e));
    return -1;
  }
  if (S_ISDIR(sb.st_mode)) {
    close(fd);
    kr_fail(ctx, KR_EIO, "%s '%s': cannot open (%s): not a regular file", who, path, strerror(EISDIR));
    return -1;
  }
  if (!S_ISREG(sb.st_mode)) {
    close(fd);
    kr_fail(ctx, KR_EIO, "%s '%s': not a regular file (%s)", who, path, file_kind(sb.st_mode));
    return -1;
  }
  int fl = fcntl(fd, F_GETFL);
  if (fl >= 0) (void)fcntl(fd, F_SETFL, fl & ~O_NONBLOCK);
  if (out) *out = sb;
  return fd;
}

int kr_check_regular(kr_ctx *ctx, const char *who, const char *path)
{
  int fd = kr_open_regular(ctx, who, path, NULL);
  if (fd < 0) return kr_errcode(ctx);
  close(fd);
  return KR_OK;
}

/* the first number in a small file, or 0 ("max", unreadable) */
static uint64_t read_limit(const char *file)
{
  int fd = open(file, O_RDONLY | O_NONBLOCK | O_CLOEXEC);
  if (fd < 0) return 0;
  char buf[64];
  ssize_t n = read(fd, buf, sizeof buf - 1);
  close(fd);
  if (n <= 0) return 0;
  buf[n] = '\0';
  if (buf[0] < '0' || buf[0] > '9') return 0;
  return (uint64_t)strtoull(buf, NULL, 10);
}

size_t kr_mem_budget(kr_ctx *ctx)
{
  uint64_t b = ctx->max_alloc;
  uint64_t cg = read_limit("/sys/fs/cgroup/memory.max");
  if (cg == 0) cg = read_limit("/sys/fs/cgroup/memory/memory.limit_in_bytes");
  if (cg > 0 && cg < b) b = cg;
  struct rlimit rl;
  if (getrlimit(RLIMIT_AS, &rl) == 0 && rl.rlim_cur != RLIM_INFINITY && (uint64_t)rl.rlim_cur < b)
    b = (uint64_t)rl.rlim_cur;
  return b > SIZE_MAX ? SIZE_MAX : (size_t)b;
}

int kr_mem_check(kr_ctx *ctx, const char *who, const char *path, const char *what, uint64_t nbytes)
{
  size_t b = kr_mem_budget(ctx);
  if (nbytes <= b) return KR_OK;
  return kr_fail(ctx, KR_EMEM, "%s '%s': %s needs %llu bytes, more than the memory budget (%zu bytes)", who, path,
                 what, (unsigned long long)nbytes, b);
}
