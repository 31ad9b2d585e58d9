/*
** test_repl.c -- Tab completion at the lkeras prompt, for real: lkeras runs
** on a pseudo-terminal (so that it reads through libedit), the test types a
** prefix and a Tab, and reads what the terminal shows. Each completed line
** is made to print a marker that only a correct completion produces (the
** marker is built by concatenation, so the echo of the typed line cannot
** match it).
**
** The lkeras tried is the one beside this program's folder: build/lkeras for
** build/tests/test_repl, build/asan/lkeras for the sanitizer build. Without
** a pseudo-terminal (no /dev/ptmx) the test says so and checks nothing.
*/
#define _XOPEN_SOURCE 700
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "check.h"

#ifndef WAIT_MS
#define WAIT_MS 30000          /* how long to wait for an expected answer */
#endif

struct term {
  int fd;                      /* the master side */
  pid_t pid;
  char screen[1 << 16];        /* everything shown since the last mark */
  size_t len;
};

static double now_ms(void)
{
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return ts.tv_sec * 1e3 + ts.tv_nsec / 1e6;
}

/* Reads what the terminal shows until `want` appears in it (1) or the time
** is up or lkeras has gone (0). */
static int wait_for(struct term *t, const char *want)
{
  double end = now_ms() + WAIT_MS;
  for (;;) {
    t->screen[t->len] = '\0';
    if (strstr(t->screen, want)) return 1;
    double left = end - now_ms();
    if (left <= 0) return 0;
    struct pollfd p = {t->fd, POLLIN, 0};
    int r = poll(&p, 1, (int)left);
    if (r < 0 && errno == EINTR) continue;
    if (r <= 0) return 0;
    if (t->len + 1 >= sizeof t->screen) {   /* keep the newest half */
      memmove(t->screen, t->screen + sizeof t->screen / 2, t->len - sizeof t->screen / 2);
      t->len -= sizeof t->screen / 2;
    }
    ssize_t n = read(t->fd, t->screen + t->len, sizeof t->screen - 1 - t->len);
    if (n <= 0) return 0;      /* EIO: the slave side is closed */
    char *got = t->screen + t->len;
    size_t k = 0;
    for (ssize_t i = 0; i < n; i++)   /* NULs (a terminal's padding) would end the string */
      if (got[i] != '\0') got[k++] = got[i];
    t->len += k;
  }
}

/* forgets what was shown so far */
static void mark(struct term *t)
{
  t->len = 0;
  t->screen[0] = '\0';
}

static void type(struct term *t, const char *keys)
{
  size_t n = strlen(keys);
  while (n > 0) {
    ssize_t w = write(t->fd, keys, n);
    if (w < 0 && errno == EINTR) continue;
    if (w <= 0) return;
    keys += w;
    n -= (size_t)w;
  }
}

/* Starts lkeras on a new pseudo-terminal. 0 with a reason in why when there
** is none to be had. */
static int start(struct term *t, const char *prog, char *why, size_t whylen)
{
  memset(t, 0, sizeof *t);
  t->fd = posix_openpt(O_RDWR | O_NOCTTY);
  if (t->fd < 0) {
    snprintf(why, whylen, "posix_openpt: %s", strerror(errno));
    return 0;
  }
  char *slave = NULL;
  if (grantpt(t->fd) != 0 || unlockpt(t->fd) != 0 || !(slave = ptsname(t->fd))) {
    snprintf(why, whylen, "cannot set up the pseudo-terminal: %s", strerror(errno));
    close(t->fd);
    return 0;
  }
  char path[PATH_MAX];
  snprintf(path, sizeof path, "%s", slave);
  t->pid = fork();
  if (t->pid < 0) {
    snprintf(why, whylen, "fork: %s", strerror(errno));
    close(t->fd);
    return 0;
  }
  if (t->pid == 0) {
    setsid();
    int s = open(path, O_RDWR);
    if (s < 0) _exit(126);
    dup2(s, 0);
    dup2(s, 1);
    dup2(s, 2);
    if (s > 2) close(s);
    close(t->fd);
    setenv("TERM", "vt100", 1);
    setenv("LKERAS_HISTORY", "", 1);     /* no history file */
    setenv("COLUMNS", "200", 1);
    unsetenv("LUA_INIT");
    unsetenv("LUA_INIT_5_4");
    execl(prog, prog, (char *)NULL);
    _exit(127);
  }
  return 1;
}

/* the lkeras beside this program's folder */
static void lkeras_path(const char *argv0, char *out, size_t cap)
{
  char dir[PATH_MAX];
  snprintf(dir, sizeof dir, "%s", argv0);
  char *slash = strrchr(dir, '/');
  if (slash) *slash = '\0';
  else snprintf(dir, sizeof dir, ".");
  snprintf(out, cap, "%s/../lkeras", dir);
}

int main(int argc, char **argv)
{
  (void)argc;
  char prog[PATH_MAX + 16], why[256];
  lkeras_path(argv[0], prog, sizeof prog);
  if (access(prog, X_OK) != 0) {
    fprintf(stderr, "test_repl: %s is not there (build it first)\n", prog);
    CHECK(0);
    return check_report("test_repl");
  }
  signal(SIGPIPE, SIG_IGN);
  static struct term t;
  if (!start(&t, prog, why, sizeof why)) {
    char msg[320];
    snprintf(msg, sizeof msg, "no pseudo-terminal to run lkeras on (%s)", why);
    check_skip("test_repl", msg);
    return check_report("test_repl");
  }
  CHECK_MSG(wait_for(&t, "> "), "no prompt; the terminal showed: %s", t.screen);

  /* a global */
  mark(&t);
  type(&t, "prin\t('G' .. 'LOBAL')\n");
  CHECK_MSG(wait_for(&t, "GLOBAL"), "prin<Tab>: %s", t.screen);

  /* a table field: keras.lay<Tab> -> keras.layers, then keras.layers.Den<Tab> */
  mark(&t);
  type(&t, "x = keras.lay\t\n");
  type(&t, "print('L' .. tostring(x == keras.layers))\n");
  CHECK_MSG(wait_for(&t, "Ltrue"), "keras.lay<Tab>: %s", t.screen);
  mark(&t);
  type(&t, "print('D' .. tostring(keras.layers.Den\t == keras.layers.Dense))\n");
  CHECK_MSG(wait_for(&t, "Dtrue"), "keras.layers.Den<Tab>: %s", t.screen);

  /* methods of a model after ':' */
  mark(&t);
  type(&t, "m = keras.Sequential{keras.layers.Dense{1, input_shape = {1}}}\n");
  type(&t, "m:compile{optimizer = 'sgd', loss = 'mse'}\n");
  type(&t, "print('F' .. #m:fi\t(keras.tensor{{1}}, keras.tensor{{2}}, {verbose = 0}).epoch)\n");
  CHECK_MSG(wait_for(&t, "F1"), "m:fi<Tab>: %s", t.screen);

  /* several candidates: the first Tab inserts what they share, the second lists them */
  mark(&t);
  type(&t, "print('P' .. m:pre\t\t");
  CHECK_MSG(wait_for(&t, "predict_on_batch"), "m:pre<Tab><Tab> listed no candidates: %s", t.screen);
  CHECK_MSG(strstr(t.screen, "predict_proba") != NULL && strstr(t.screen, "predict_classes") != NULL,
            "m:pre<Tab><Tab>: %s", t.screen);
  mark(&t);
  type(&t, "_on_batch(keras.tensor{{2}}):size())\n");
  CHECK_MSG(wait_for(&t, "P1"), "m:predict + _on_batch: %s", t.screen);

  /* a tensor's methods, through its metatable */
  mark(&t);
  type(&t, "tt = keras.tensor{1, 2, 3, 4}\n");
  type(&t, "print('T' .. tt:resha\t{2, 2}.shape[1])\n");
  CHECK_MSG(wait_for(&t, "T2"), "tt:resha<Tab>: %s", t.screen);

  /* nothing to complete leaves the line as typed */
  mark(&t);
  type(&t, "print('N' .. tostring(nosuch\t == nil))\n");
  CHECK_MSG(wait_for(&t, "Ntrue"), "nosuch<Tab>: %s", t.screen);

  /* the session ends (os.exit rather than Ctrl-D: a Ctrl-D typed before
  ** libedit has put the terminal in raw mode would be taken by the terminal) */
  CHECK_MSG(wait_for(&t, "Ntrue\r\n> "), "no prompt after the last line: %s", t.screen);
  type(&t, "os.exit(0, true)\n");
  int status = 0;
  double end = now_ms() + WAIT_MS;
  pid_t got = 0;
  while ((got = waitpid(t.pid, &status, WNOHANG)) == 0 && now_ms() < end) {
    char buf[4096];
    struct pollfd p = {t.fd, POLLIN, 0};
    if (poll(&p, 1, 50) > 0 && read(t.fd, buf, sizeof buf) <= 0) poll(NULL, 0, 10);
  }
  if (got == 0) {
    kill(t.pid, SIGKILL);
    waitpid(t.pid, &status, 0);
  }
  CHECK_MSG(got == t.pid && WIFEXITED(status) && WEXITSTATUS(status) == 0,
            "lkeras did not end cleanly (status %d)", status);
  close(t.fd);
  return check_report("test_repl");
}
