/*
** lkeras.c -- the lkeras host program: runs scripts with the global keras
** preloaded, and is an interactive prompt (libedit line editing, history
** in ~/.lkeras_history) that prints the value of each expression (the
** printer is lkeras_repr.c).
**
** Global mutable state, for SIGINT (a handler can reach nothing else) and
** for libedit's completion hooks (which take no user data):
**   sig_L       the state a Ctrl-C interrupts; set once in main before any
**               handler is installed, read by on_sigint_run.
**   sig_prompt  set by on_sigint_prompt while we wait for a line, read and
**               cleared by the line readers.
**   complete_L  the state Tab completion asks (keras.complete); set once in
**               repl_open_tty, read by the completion hooks while readline
**               waits for a line, when no Lua code runs.
** Everything else lives on the C stack of pmain or in the Lua state.
*/
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <locale.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <wchar.h>

#include <editline/readline.h>

#include <lua.h>
#include <lauxlib.h>
#include <lualib.h>

#include "lkeras.h"
#include "lkeras_repr.h"
#include "kr.h"

#define PROG        "lkeras"
#define PROMPT      "> "
#define PROMPT2     "... "
#define HIST_NAME   "/.lkeras_history"
#define HIST_MAX    1000      /* lines kept in the history file */

static lua_State *sig_L;
static volatile sig_atomic_t sig_prompt;
static lua_State *complete_L;

/* ---- signals ---- */

/* Runs at the next Lua instruction after a Ctrl-C. */
static void stop_hook(lua_State *L, lua_Debug *ar)
{
  (void)ar;
  lua_sethook(L, NULL, 0, 0);
  luaL_error(L, "interrupted!");
}

/* Ctrl-C while Lua runs: ask the state to stop at its next instruction
** (lua_sethook is safe to call here). A second Ctrl-C before that, say
** inside a long C function, takes the default action and ends the process. */
static void on_sigint_run(int sig)
{
  signal(sig, SIG_DFL);
  lua_sethook(sig_L, stop_hook, LUA_MASKCALL | LUA_MASKRET | LUA_MASKLINE | LUA_MASKCOUNT, 1);
}

/* Ctrl-C at the prompt: the line reader sees the flag and drops the line. */
static void on_sigint_prompt(int sig)
{
  (void)sig;
  sig_prompt = 1;
}

/* restart: whether interrupted system calls resume (not at the prompt,
** where the reader must wake up). */
static void catch_sigint(void (*fn)(int), int restart, struct sigaction *old)
{
  struct sigaction sa;
  memset(&sa, 0, sizeof sa);
  sa.sa_handler = fn;
  sa.sa_flags = restart ? SA_RESTART : 0;
  sigemptyset(&sa.sa_mask);
  sigaction(SIGINT, &sa, old);
}

/* ---- running chunks ---- */

/* Message handler: the error as a string, plus a traceback. */
static int on_error(lua_State *L)
{
  const char *msg = lua_tostring(L, 1);
  if (msg == NULL) {
    if (luaL_callmeta(L, 1, "__tostring") && lua_type(L, -1) == LUA_TSTRING)
      msg = lua_tostring(L, -1);
    else
      msg = lua_pushfstring(L, "(error object is a %s value)", luaL_typename(L, 1));
  }
  luaL_traceback(L, L, msg, 1);
  return 1;
}

/* Calls the function below its narg arguments with Ctrl-C armed; an error
** message gets a traceback when trace is set. */
static int pcall_armed(lua_State *L, int narg, int nres, int trace)
{
  int base = lua_gettop(L) - narg;
  struct sigaction old;
  if (trace) {
    lua_pushcfunction(L, on_error);
    lua_insert(L, base);
  }
  catch_sigint(on_sigint_run, 1, &old);
  int st = lua_pcall(L, narg, nres, trace ? base : 0);
  sigaction(SIGINT, &old, NULL);
  if (lua_gethook(L) == stop_hook)   /* a Ctrl-C that came too late */
    lua_sethook(L, NULL, 0, 0);
  if (trace) lua_remove(L, base);
  return st;
}

static int docall(lua_State *L, int narg, int nres)
{
  return pcall_armed(L, narg, nres, 1);
}

/* Prints and pops the error message on top when st is an error. */
static int report(lua_State *L, int st, const char *prefix)
{
  if (st != LUA_OK) {
    const char *msg = lua_tostring(L, -1);
    fflush(stdout);
    fprintf(stderr, "%s%s\n", prefix, msg ? msg : "(error object is not a string)");
    fflush(stderr);
    lua_pop(L, 1);
  }
  return st;
}

static int run_chunk(lua_State *L, int st)
{
  if (st == LUA_OK) st = docall(L, 0, 0);
  return report(L, st, PROG ": ");
}

static int run_string(lua_State *L, const char *s, const char *name)
{
  return run_chunk(L, luaL_loadbuffer(L, s, strlen(s), name));
}

/* name NULL: standard input. */
static int run_file(lua_State *L, const char *name)
{
  return run_chunk(L, luaL_loadfile(L, name));
}

/* -l mod: require mod into the global mod; -l g=mod: into the global g. */
static int run_lib(lua_State *L, const char *spec)
{
  const char *eq = strchr(spec, '=');
  const char *mod = eq ? eq + 1 : spec;
  if (eq) lua_pushlstring(L, spec, (size_t)(eq - spec));
  else lua_pushstring(L, spec);
  lua_getglobal(L, "require");
  lua_pushstring(L, mod);
  int st = docall(L, 1, 1);
  if (st == LUA_OK) {
    lua_setglobal(L, lua_tostring(L, -2));
    lua_pop(L, 1);
    return LUA_OK;
  }
  lua_remove(L, -2);
  return report(L, st, PROG ": ");
}

/* ---- history ---- */

struct repl {
  int tty;              /* reading through libedit */
  FILE *hist;           /* the history file, open for appending, or NULL */
  char *last;           /* the last line added to the history */
};

/* $LKERAS_HISTORY (empty: no history), else ~/.lkeras_history. Malloc'd. */
static char *hist_path(void)
{
  const char *env = getenv("LKERAS_HISTORY");
  if (env) return *env ? strdup(env) : NULL;
  const char *home = getenv("HOME");
  if (!home || !*home) return NULL;
  char *path = malloc(strlen(home) + sizeof HIST_NAME);
  if (path) {
    strcpy(path, home);
    strcat(path, HIST_NAME);
  }
  return path;
}

/* Replaces the file with its last HIST_MAX lines, atomically. */
static void hist_trim(const char *path, char **ring, size_t total)
{
  size_t len = strlen(path);
  char *tmp = malloc(len + sizeof ".tmp");
  if (!tmp) return;
  memcpy(tmp, path, len);
  memcpy(tmp + len, ".tmp", sizeof ".tmp");
  int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
  FILE *f = fd >= 0 ? fdopen(fd, "w") : NULL;
  if (f) {
    for (size_t i = total - HIST_MAX; i < total; i++)
      if (ring[i % HIST_MAX]) fprintf(f, "%s\n", ring[i % HIST_MAX]);
    if (fclose(f) == 0) rename(tmp, path);
    else remove(tmp);
  } else if (fd >= 0) {
    close(fd);
    remove(tmp);
  }
  free(tmp);
}

/* Loads the last HIST_MAX lines of the history file into libedit and opens
** the file for appending. A missing or unwritable file means no history. */
static void hist_open(struct repl *r)
{
  char *path = hist_path();
  if (!path) return;
  char *ring[HIST_MAX] = {0};
  size_t total = 0;
  FILE *f = fopen(path, "r");
  if (f) {
    char *line = NULL;
    size_t cap = 0;
    ssize_t len;
    while ((len = getline(&line, &cap, f)) >= 0) {
      if (len > 0 && line[len - 1] == '\n') line[--len] = '\0';
      if (len == 0) continue;
      char **slot = &ring[total++ % HIST_MAX];
      free(*slot);
      *slot = strdup(line);
    }
    free(line);
    fclose(f);
  }
  size_t first = total > HIST_MAX ? total - HIST_MAX : 0;
  for (size_t i = first; i < total; i++) {
    char *s = ring[i % HIST_MAX];
    if (!s) continue;
    add_history(s);
    free(r->last);
    r->last = strdup(s);
  }
  if (total > HIST_MAX) hist_trim(path, ring, total);
  for (size_t i = 0; i < HIST_MAX; i++) free(ring[i]);
  int fd = open(path, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0600);
  if (fd >= 0 && !(r->hist = fdopen(fd, "a"))) close(fd);
  free(path);
}

/* Adds a line to the history and the file, unless blank or a repeat. */
static void hist_add(struct repl *r, const char *line)
{
  if (line[strspn(line, " \t\r\n")] == '\0') return;
  if (r->last && strcmp(r->last, line) == 0) return;
  add_history(line);
  free(r->last);
  r->last = strdup(line);
  if (r->hist) {
    fprintf(r->hist, "%s\n", line);
    fflush(r->hist);
  }
}

static void hist_close(struct repl *r)
{
  if (r->hist) fclose(r->hist);
  r->hist = NULL;
  free(r->last);
  r->last = NULL;
}

/* ---- line input ---- */

/* libedit's key reader: one character, decoded from the locale's multibyte
** encoding. A Ctrl-C makes it report end of input, which ends readline();
** the caller tells the two apart by sig_prompt. */
static int read_key(FILE *in)
{
  int fd = fileno(in);
  char buf[MB_LEN_MAX];
  size_t n = 0;
  mbstate_t mb;
  memset(&mb, 0, sizeof mb);
  for (;;) {
    ssize_t k = read(fd, buf + n, 1);
    if (k < 0 && errno == EINTR && !sig_prompt) continue;
    if (k <= 0) return EOF;
    wchar_t wc;
    size_t got = mbrtowc(&wc, buf + n, 1, &mb);
    n++;
    if (got == (size_t)-2 && n < sizeof buf) continue;
    if (got == (size_t)-1 || got == (size_t)-2) return (unsigned char)buf[0];
    return (int)wc;
  }
}

/* Reads a line and pushes it without its newline. Returns 1, 0 at end of
** input, -1 when Ctrl-C dropped the line. */
static int read_line(lua_State *L, struct repl *r, int first)
{
  lua_getglobal(L, first ? "_PROMPT" : "_PROMPT2");
  const char *prompt = lua_tostring(L, -1);
  if (!prompt) prompt = first ? PROMPT : PROMPT2;
  sig_prompt = 0;
  if (r->tty) {
    char *line = readline(prompt);
    lua_pop(L, 1);
    if (!line) return sig_prompt ? -1 : 0;
    hist_add(r, line);
    lua_pushstring(L, line);
    free(line);
    return 1;
  }
  fputs(prompt, stdout);
  fflush(stdout);
  lua_pop(L, 1);
  luaL_Buffer b;
  luaL_buffinit(L, &b);
  int c, any = 0;
  while ((c = getc(stdin)) != EOF && c != '\n') {
    luaL_addchar(&b, (char)c);
    any = 1;
  }
  luaL_pushresult(&b);
  if (c == EOF) {
    int intr = ferror(stdin) && sig_prompt;
    clearerr(stdin);
    if (intr || !any) {
      lua_pop(L, 1);
      return intr ? -1 : 0;
    }
  }
  return 1;
}

/* ---- the REPL ---- */

#define CHUNK_EOF  (-1)
#define CHUNK_INTR (-2)

/* A syntax error at the end of the input: the chunk goes on. */
static int incomplete(lua_State *L, int st)
{
  static const char mark[] = "<eof>";
  size_t len, k = sizeof mark - 1;
  if (st != LUA_ERRSYNTAX) return 0;
  const char *msg = lua_tolstring(L, -1, &len);
  return len >= k && memcmp(msg + len - k, mark, k) == 0;
}

/* Reads lines until they compile. The first line is tried as "return line"
** so that expressions print. Pushes the function and returns LUA_OK, or
** pushes a message and returns an error, or pushes nothing and returns
** CHUNK_EOF or CHUNK_INTR. */
static int read_chunk(lua_State *L, struct repl *r)
{
  int got = read_line(L, r, 1);
  if (got <= 0) return got == 0 ? CHUNK_EOF : CHUNK_INTR;
  const char *ret = lua_pushfstring(L, "return %s;", lua_tostring(L, -1));
  if (luaL_loadbuffer(L, ret, strlen(ret), "=stdin") == LUA_OK) {
    lua_remove(L, -2);
    lua_remove(L, -2);
    return LUA_OK;
  }
  lua_pop(L, 2);
  for (;;) {
    size_t len;
    const char *code = lua_tolstring(L, -1, &len);
    int st = luaL_loadbuffer(L, code, len, "=stdin");
    if (!incomplete(L, st)) {
      lua_remove(L, -2);
      return st;
    }
    got = read_line(L, r, 0);
    if (got == 0) {          /* end of input inside a chunk: show the error */
      lua_remove(L, -2);
      return st;
    }
    if (got < 0) {
      lua_pop(L, 2);
      return CHUNK_INTR;
    }
    lua_remove(L, -2);
    lua_pushliteral(L, "\n");
    lua_insert(L, -2);
    lua_concat(L, 3);
  }
}

/* ---- Tab completion ---- */

/* Characters that end the word Tab completes: '.' and ':' are not among
** them, so "keras.lay" and "model:fi" are completed whole. */
static char word_breaks[] = " \t\n\"\\'`@$><=;|&{}()[],+-*/%^~#";

#define COMPLETIONS "lkeras.completions"   /* registry: the current list */

/* Calls require("keras.complete")(text) and keeps its list of strings in
** the registry; any error just means no completions. */
static int completions_fill(lua_State *L)
{
  const char *text = lua_touserdata(L, 1);
  lua_getglobal(L, "require");
  lua_pushliteral(L, "keras.complete");
  lua_call(L, 1, 1);
  lua_pushstring(L, text);
  lua_call(L, 1, 1);
  luaL_checktype(L, -1, LUA_TTABLE);
  lua_setfield(L, LUA_REGISTRYINDEX, COMPLETIONS);
  return 0;
}

/* libedit's generator: state 0 computes the list, then one malloc'd match
** per call until NULL */
static char *completion_next(const char *text, int state)
{
  lua_State *L = complete_L;
  if (!L) return NULL;
  int top = lua_gettop(L);
  if (state == 0) {
    lua_pushnil(L);
    lua_setfield(L, LUA_REGISTRYINDEX, COMPLETIONS);
    lua_pushcfunction(L, completions_fill);
    lua_pushlightuserdata(L, (void *)text);
    if (lua_pcall(L, 1, 0, 0) != LUA_OK) lua_pop(L, 1);
  }
  char *out = NULL;
  if (lua_getfield(L, LUA_REGISTRYINDEX, COMPLETIONS) == LUA_TTABLE &&
      lua_rawgeti(L, -1, (lua_Integer)state + 1) == LUA_TSTRING)
    out = strdup(lua_tostring(L, -1));
  lua_settop(L, top);
  return out;
}

/* never a file name: the matches are Lua names or nothing */
static char *no_completion(const char *text, int state)
{
  (void)text;
  (void)state;
  return NULL;
}

static char **complete_word(const char *text, int start, int end)
{
  (void)start;
  (void)end;
  rl_attempted_completion_over = 1;
  return rl_completion_matches(text, completion_next);
}

/* lkeras --version: the BLAS line too (which kernels run, and why) */
static void print_blas(void)
{
  const kr_blas_info *b = kr_blas_init();
  printf("OpenBLAS: %s kernels (%s: %s), %d threads; CPU: %s (%s)\n", b->core, b->chosen_by, b->detail,
         kr_blas_threads(), b->cpu_model, b->cpu_level);
  fflush(stdout);
}

static void print_version(lua_State *L)
{
  int top = lua_gettop(L);
  const char *v = NULL;
  lua_getfield(L, LUA_REGISTRYINDEX, LUA_LOADED_TABLE);
  if (lua_getfield(L, -1, "keras") == LUA_TTABLE) {
    if (lua_getfield(L, -1, "__version__") != LUA_TSTRING)
      lua_getfield(L, -2, "__version");
    v = lua_tostring(L, -1);
  }
  printf("%s %s (%s)\n", PROG, v ? v : "(unknown version)", LUA_RELEASE);
  fflush(stdout);
  lua_settop(L, top);
}

/* Sets up libedit once: our key reader, Tab completion, a locale that
** decodes UTF-8. */
static void repl_open_tty(lua_State *L, struct repl *r)
{
  const char *loc = setlocale(LC_CTYPE, "");
  if (!loc || strcmp(loc, "C") == 0 || strcmp(loc, "POSIX") == 0)
    setlocale(LC_CTYPE, "C.UTF-8");
  rl_readline_name = PROG;
  rl_getc_function = read_key;
  complete_L = L;
  rl_attempted_completion_function = complete_word;
  rl_completion_entry_function = no_completion;
  rl_basic_word_break_characters = word_breaks;
  rl_completer_word_break_characters = word_breaks;
  rl_completion_append_character = '\0';
  using_history();
  stifle_history(HIST_MAX);
  hist_open(r);
}

/* tty: read through libedit; banner: print the version line first. */
static void repl(lua_State *L, int tty, int banner)
{
  struct repl r = {tty, NULL, NULL};
  struct sigaction old;
  int base = lua_gettop(L);
  if (tty) repl_open_tty(L, &r);
  if (banner) print_version(L);
  catch_sigint(on_sigint_prompt, 0, &old);
  for (;;) {
    int st = read_chunk(L, &r);
    if (st == CHUNK_EOF) break;
    if (st == CHUNK_INTR) {
      fputc('\n', stdout);
      fflush(stdout);
      continue;
    }
    if (st == LUA_OK) st = docall(L, 0, LUA_MULTRET);
    int n = lua_gettop(L) - base;
    if (st == LUA_OK && n > 0) {
      luaL_checkstack(L, LUA_MINSTACK, "too many results to print");
      lua_pushcfunction(L, lk_host_print_values);
      lua_insert(L, base + 1);
      st = pcall_armed(L, n, 0, 0);
      if (st != LUA_OK) {
        const char *msg = lua_tostring(L, -1);
        lua_pushfstring(L, "error printing the result: %s", msg ? msg : "(error object is not a string)");
      }
    }
    report(L, st, "");
    lua_settop(L, base);
  }
  lua_settop(L, base);
  fputc('\n', stdout);
  fflush(stdout);
  sigaction(SIGINT, &old, NULL);
  hist_close(&r);
}

/* ---- command line ---- */

enum { OPT_E = 1, OPT_I = 2, OPT_V = 4, OPT_NOENV = 8, OPT_WARN = 16, OPT_HELP = 32 };

struct cmdline {
  int argc;
  char **argv;
  int script;           /* index of the script in argv, 0 if none */
  int flags;
  const char *bad;      /* the option in error, if any */
};

static void usage(FILE *f)
{
  fprintf(f,
    "usage: " PROG " [options] [script [args]]\n"
    "Available options are:\n"
    "  -e stat   execute string 'stat'\n"
    "  -i        enter interactive mode after executing 'script'\n"
    "  -l mod    require library 'mod' into global 'mod'\n"
    "  -l g=mod  require library 'mod' into global 'g'\n"
    "  -v        show version information\n"
    "  -E        ignore environment variables\n"
    "  -W        turn warnings on\n"
    "  -h        show this help\n"
    "  --        stop handling options\n"
    "  -         stop handling options and execute stdin\n"
    "The global 'keras' is loaded before anything runs. With no script and a\n"
    "terminal on stdin, " PROG " is interactive; its history is kept in\n"
    "~/.lkeras_history ($LKERAS_HISTORY names another file, empty for none).\n");
}

/* Sets cl->script and cl->flags; returns 0 and sets cl->bad on a bad option. */
static int parse_args(struct cmdline *cl)
{
  char **argv = cl->argv;
  for (int i = 1; i < cl->argc; i++) {
    const char *a = argv[i];
    if (a[0] != '-' || a[1] == '\0') {        /* a script, or "-" for stdin */
      cl->script = i;
      return 1;
    }
    if (strcmp(a, "--") == 0) {
      cl->script = i + 1 < cl->argc ? i + 1 : 0;
      return 1;
    }
    if (strcmp(a, "--help") == 0) {
      cl->flags |= OPT_HELP;
      continue;
    }
    if (strcmp(a, "--version") == 0) {
      cl->flags |= OPT_V;
      continue;
    }
    cl->bad = a;
    switch (a[1]) {
    case 'e': case 'l':
      if (a[1] == 'e') cl->flags |= OPT_E;
      if (a[2] == '\0' && ++i >= cl->argc) return 0;
      break;
    case 'i': if (a[2]) return 0; cl->flags |= OPT_I; break;
    case 'v': if (a[2]) return 0; cl->flags |= OPT_V; break;
    case 'E': if (a[2]) return 0; cl->flags |= OPT_NOENV; break;
    case 'W': if (a[2]) return 0; cl->flags |= OPT_WARN; break;
    case 'h': if (a[2]) return 0; cl->flags |= OPT_HELP; break;
    default: return 0;
    }
    cl->bad = NULL;
  }
  return 1;
}

/* arg[0] is the script (the program when there is none), arg[1..] its
** arguments, negative indices the program and its options. */
static void make_arg_table(lua_State *L, const struct cmdline *cl)
{
  int s = cl->script;
  lua_createtable(L, cl->argc - s - 1 > 0 ? cl->argc - s - 1 : 0, s + 1);
  for (int i = 0; i < cl->argc; i++) {
    lua_pushstring(L, cl->argv[i]);
    lua_rawseti(L, -2, i - s);
  }
  lua_setglobal(L, "arg");
}

/* LUA_INIT_5_4 or LUA_INIT: code, or @file. */
static int run_init(lua_State *L)
{
  const char *name = "=LUA_INIT_5_4";
  const char *init = getenv(name + 1);
  if (!init) {
    name = "=LUA_INIT";
    init = getenv(name + 1);
  }
  if (!init) return LUA_OK;
  return init[0] == '@' ? run_file(L, init + 1) : run_string(L, init, name);
}

/* -e and -l, in the order given. */
static int run_options(lua_State *L, const struct cmdline *cl)
{
  int end = cl->script > 0 ? cl->script : cl->argc;
  for (int i = 1; i < end; i++) {
    const char *a = cl->argv[i];
    if (a[0] != '-' || (a[1] != 'e' && a[1] != 'l')) continue;
    const char *v = a[2] ? a + 2 : cl->argv[++i];
    int st = a[1] == 'e' ? run_string(L, v, "=(command line)") : run_lib(L, v);
    if (st != LUA_OK) return st;
  }
  return LUA_OK;
}

/* The script gets its arguments as "...". */
static int run_script(lua_State *L, const struct cmdline *cl)
{
  const char *name = cl->argv[cl->script];
  if (strcmp(name, "-") == 0 && strcmp(cl->argv[cl->script - 1], "--") != 0) name = NULL;
  int st = luaL_loadfile(L, name);
  if (st == LUA_OK) {
    int n = cl->argc - cl->script - 1;
    luaL_checkstack(L, n + LUA_MINSTACK, "too many arguments to script");
    for (int i = cl->script + 1; i < cl->argc; i++) lua_pushstring(L, cl->argv[i]);
    st = docall(L, n, 0);
  }
  return report(L, st, PROG ": ");
}

static int pmain(lua_State *L)
{
  const struct cmdline *cl = lua_touserdata(L, 1);
  luaL_checkversion(L);
  if (cl->flags & OPT_NOENV) {                /* package reads this when it opens */
    lua_pushboolean(L, 1);
    lua_setfield(L, LUA_REGISTRYINDEX, "LUA_NOENV");
  }
  lua_gc(L, LUA_GCSTOP);                      /* no collections while loading */
  luaL_openlibs(L);
  lua_gc(L, LUA_GCGEN, 0, 0);                 /* the stock lua5.4's mode; keras may change it */
  luaL_requiref(L, "keras", luaopen_keras, 1);
  lua_pop(L, 1);
  lua_gc(L, LUA_GCRESTART);
  make_arg_table(L, cl);
  if (cl->flags & OPT_WARN) lua_warning(L, "@on", 0);
  if (cl->flags & OPT_V) {
    print_version(L);
    print_blas();
  }
  if (!(cl->flags & OPT_NOENV) && run_init(L) != LUA_OK) return 0;
  if (run_options(L, cl) != LUA_OK) return 0;
  if (cl->script > 0 && run_script(L, cl) != LUA_OK) return 0;
  if (cl->flags & OPT_I) {
    repl(L, isatty(STDIN_FILENO), !(cl->flags & OPT_V));
  } else if (cl->script == 0 && !(cl->flags & (OPT_E | OPT_V))) {
    if (isatty(STDIN_FILENO)) repl(L, 1, 1);
    else if (run_file(L, NULL) != LUA_OK) return 0;
  }
  lua_pushboolean(L, 1);
  return 1;
}

int main(int argc, char **argv)
{
  struct cmdline cl = {argc, argv, 0, 0, NULL};
  if (!parse_args(&cl)) {
    if (cl.bad[1] == 'e' || cl.bad[1] == 'l')
      fprintf(stderr, PROG ": '%s' needs argument\n", cl.bad);
    else
      fprintf(stderr, PROG ": unrecognized option '%s'\n", cl.bad);
    usage(stderr);
    return EXIT_FAILURE;
  }
  if (cl.flags & OPT_HELP) {
    usage(stdout);
    return EXIT_SUCCESS;
  }
  lua_State *L = luaL_newstate();
  if (!L) {
    fprintf(stderr, PROG ": cannot create state: not enough memory\n");
    return EXIT_FAILURE;
  }
  sig_L = L;
  lua_pushcfunction(L, pmain);
  lua_pushlightuserdata(L, &cl);
  int st = lua_pcall(L, 1, 1, 0);
  int ok = st == LUA_OK && lua_toboolean(L, -1);
  report(L, st, PROG ": ");
  if (!ok) {   /* keras.distributed aborts the job at once (src/lua/dist.c) */
    lua_pushboolean(L, 1);
    lua_setfield(L, LUA_REGISTRYINDEX, "lkeras.failed");
  }
  lua_close(L);
  return ok ? EXIT_SUCCESS : EXIT_FAILURE;
}
