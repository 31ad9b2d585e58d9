/*
** csv_classify.c -- the smallest useful embedding of lkeras: a command-line
** classifier. Loads a saved model (.lkm, or .h5 in a build with HDF5) and
** predicts the rows of a CSV file read from stdin, through the C API
** (lkeras.h): numbers go from the parsed rows straight into lk_predict.
**
**   csv_classify model.lkm [--probs] < data.csv
**
** Each row holds the model's input features (in_features numbers, separated
** by commas; a first line that is not numbers is taken as a header and
** skipped). For each row it prints the class: the index (from 0) of the
** largest output, or 0/1 for a model with one output (> 0.5); with --probs,
** the outputs follow it, comma-separated. Rows are predicted in blocks of
** 256; a bad row stops it with a message naming the line.
** Build: make csv_classify (build/csv_classify), or
**   cc csv_classify.c $(pkg-config --cflags --libs lkeras)
*/
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <lauxlib.h>
#include <lualib.h>

#include "lkeras.h"

#define BLOCK 256

/* the numbers of one line into row[0..n): 1, or 0 when it is not n numbers */
static int parse(char *line, float *row, int64_t n)
{
  char *p = line;
  for (int64_t i = 0; i < n; i++) {
    char *end;
    errno = 0;
    double v = strtod(p, &end);
    if (end == p || errno == ERANGE) return 0;
    row[i] = (float)v;
    p = end;
    while (*p == ' ' || *p == '\t') p++;
    if (i + 1 < n) {
      if (*p != ',') return 0;
      p++;
    }
  }
  while (*p == ' ' || *p == '\t' || *p == '\r' || *p == '\n') p++;
  return *p == '\0';
}

static void print_block(const float *y, int64_t rows, int64_t nout, int probs)
{
  for (int64_t r = 0; r < rows; r++) {
    const float *o = y + r * nout;
    int64_t cls = 0;
    if (nout == 1) cls = o[0] > 0.5f;
    else
      for (int64_t k = 1; k < nout; k++)
        if (o[k] > o[cls]) cls = k;
    printf("%lld", (long long)cls);
    for (int64_t k = 0; probs && k < nout; k++) printf(",%.6g", o[k]);
    putchar('\n');
  }
}

int main(int argc, char **argv)
{
  const char *path = NULL;
  int probs = 0;
  for (int i = 1; i < argc; i++) {
    if (!strcmp(argv[i], "--probs")) probs = 1;
    else if (!path && argv[i][0] != '-') path = argv[i];
    else {
      fprintf(stderr, "csv_classify: unknown argument %s\n", argv[i]);
      return 2;
    }
  }
  if (!path) {
    fprintf(stderr, "usage: csv_classify model.lkm [--probs] < data.csv\n");
    return 2;
  }
  lua_State *L = luaL_newstate();
  luaL_openlibs(L);
  luaL_requiref(L, "keras", luaopen_keras, 1);
  lua_pop(L, 1);
  int rc = 1;
  lk_model *m = NULL;
  float *x = NULL, *y = NULL;
  char *line = NULL;
  size_t cap = 0;
  lua_getglobal(L, "keras");
  lua_getfield(L, -1, "models");
  lua_getfield(L, -1, "load_model");
  lua_pushstring(L, path);
  if (lua_pcall(L, 1, 1, 0) != LUA_OK) {
    fprintf(stderr, "csv_classify: %s\n", lua_tostring(L, -1));
    goto done;
  }
  m = lk_model_get(L, -1);
  lua_settop(L, 0);
  int64_t nin, nout;
  if (!m || lk_model_io(m, &nin, &nout) != LK_OK) {
    fprintf(stderr, "csv_classify: %s\n", lk_errmsg(L));
    goto done;
  }
  x = malloc((size_t)(BLOCK * nin) * sizeof *x);
  y = malloc((size_t)(BLOCK * nout) * sizeof *y);
  if (!x || !y) {
    fprintf(stderr, "csv_classify: out of memory\n");
    goto done;
  }
  int64_t rows = 0, lineno = 0;
  ssize_t len;
  while ((len = getline(&line, &cap, stdin)) >= 0) {
    lineno++;
    if (len == 0 || strspn(line, " \t\r\n") == (size_t)len) continue;   /* blank */
    if (!parse(line, x + rows * nin, nin)) {
      if (lineno == 1) continue;   /* a header */
      fprintf(stderr, "csv_classify: line %lld: expected %lld numbers separated by commas\n", (long long)lineno,
              (long long)nin);
      goto done;
    }
    if (++rows == BLOCK) {
      if (lk_predict(m, x, rows, y) != LK_OK) {
        fprintf(stderr, "csv_classify: %s\n", lk_errmsg(L));
        goto done;
      }
      print_block(y, rows, nout, probs);
      rows = 0;
    }
  }
  if (rows > 0) {
    if (lk_predict(m, x, rows, y) != LK_OK) {
      fprintf(stderr, "csv_classify: %s\n", lk_errmsg(L));
      goto done;
    }
    print_block(y, rows, nout, probs);
  }
  rc = 0;
done:
  free(line);
  free(x);
  free(y);
  lk_model_release(m);
  lua_close(L);
  return rc;
}
