/*
** pickle.c -- the one pickle lkeras reads: a 1-D numpy object array of
** Python lists of integers, as np.save writes it (Keras's imdb.npz and
** reuters.npz hold x_train / x as such arrays). Protocols 2, 3 and 4.
**
** The pickle is run on a small stack machine that knows only the opcodes
** those files use (no dicts, no floats, no Python 0-protocol text); the
** only globals accepted are numpy's array and dtype reconstructors and
** _codecs.encode (how Python 3 writes bytes at protocol 2), and none is
** ever called: the result is checked to be
**   _reconstruct(ndarray, ...).__setstate__((version, (n,), dtype('O8'),
**                                           False, [list of int lists]))
** and the lists are taken from it. The input is untrusted: every read is
** bounds-checked and every table grows only with the opcodes read, so
** memory stays a small multiple of the pickle's size. Integers in a list
** are appended to one shared array, which holds a list's items in one
** run: a list whose appends are interleaved with another's is refused
** (np.save never writes that).
*/
#include "io.h"

#include <stdio.h>
#include <string.h>

enum { V_NONE, V_BOOL, V_INT, V_MARK, V_NODE };
enum { N_STR, N_TUPLE, N_LIST, N_GLOBAL, N_OBJ };

typedef struct val {
  int kind;
  int64_t x;      /* V_BOOL, V_INT: the value; V_NODE: a node index */
} val;

typedef struct node {
  int kind;
  int ints;       /* N_LIST: 1 if its items are in ints[], 0 if in refs[] (or empty) */
  int64_t start;  /* N_STR: offset in the pickle; N_TUPLE, N_LIST: first item */
  int64_t count;  /* N_STR: length; N_TUPLE, N_LIST: items */
  int64_t a, b;   /* N_GLOBAL: the module and name N_STR nodes; N_OBJ: callable, args */
  int64_t state;  /* N_OBJ: the BUILD state (a node), -1 before */
} node;

typedef struct vm {
  kr_ctx *ctx;
  const unsigned char *p;
  size_t len, pos, op_at;
  const char *name;
  size_t limit;   /* no table grows past this many entries */
  val *stack; size_t nstack, capstack;
  node *nodes; size_t nnodes, capnodes;
  val *refs; size_t nrefs, caprefs;
  int64_t *ints; size_t nints, capints;
  val *memo; size_t nmemo, capmemo;
} vm;

static int fail(vm *m, const char *what)
{
  return kr_fail(m->ctx, KR_EFORMAT, "load_npz: '%s': unsupported or corrupt pickle (%s at byte %zu; "
                 "only 1-D object arrays of integer lists are read)", m->name, what, m->op_at);
}

static int grow(vm *m, void **arr, size_t *cap, size_t need, size_t elem)
{
  if (need <= *cap) return KR_OK;
  if (need > m->limit) return fail(m, "too many items for its size");
  size_t nc = *cap ? *cap : 64;
  while (nc < need) nc *= 2;
  if (nc > m->limit) nc = m->limit;
  void *np = kr_malloc(m->ctx, nc * elem);
  if (!np) return kr_errcode(m->ctx);
  if (*cap) memcpy(np, *arr, *cap * elem);
  kr_free(m->ctx, *arr);
  *arr = np;
  *cap = nc;
  return KR_OK;
}

static int push(vm *m, int kind, int64_t x)
{
  if (grow(m, (void **)&m->stack, &m->capstack, m->nstack + 1, sizeof(val)) != KR_OK) return -1;
  m->stack[m->nstack].kind = kind;
  m->stack[m->nstack++].x = x;
  return 0;
}

static int64_t new_node(vm *m, int kind)
{
  if (grow(m, (void **)&m->nodes, &m->capnodes, m->nnodes + 1, sizeof(node)) != KR_OK) return -1;
  node *n = &m->nodes[m->nnodes];
  memset(n, 0, sizeof *n);
  n->kind = kind;
  n->state = -1;
  return (int64_t)m->nnodes++;
}

static int push_node(vm *m, int kind, int64_t *idx)
{
  int64_t i = new_node(m, kind);
  if (i < 0) return -1;
  if (idx) *idx = i;
  return push(m, V_NODE, i);
}

static int need(vm *m, size_t n)
{
  if (m->len - m->pos < n) {
    fail(m, "the pickle ends inside an opcode");
    return -1;
  }
  return 0;
}

static uint64_t le(const unsigned char *b, int n)
{
  uint64_t v = 0;
  for (int k = n - 1; k >= 0; k--) v = v << 8 | b[k];
  return v;
}

/* the node of a stack value of kind nk, or NULL */
static node *as(vm *m, val v, int nk)
{
  if (v.kind != V_NODE) return NULL;
  node *n = &m->nodes[v.x];
  return n->kind == nk ? n : NULL;
}

static int pop(vm *m, val *v)
{
  if (m->nstack == 0 || m->stack[m->nstack - 1].kind == V_MARK) return fail(m, "stack underflow");
  *v = m->stack[--m->nstack];
  return KR_OK;
}

/* the index of the topmost mark, or an error */
static int find_mark(vm *m, size_t *at)
{
  for (size_t i = m->nstack; i > 0; i--)
    if (m->stack[i - 1].kind == V_MARK) {
      *at = i - 1;
      return KR_OK;
    }
  return fail(m, "no mark");
}

/* a tuple of the top k stack values (k <= nstack, none a mark) */
static int make_tuple(vm *m, size_t from)
{
  size_t k = m->nstack - from;
  if (grow(m, (void **)&m->refs, &m->caprefs, m->nrefs + k, sizeof(val)) != KR_OK) return -1;
  int64_t t = new_node(m, N_TUPLE);
  if (t < 0) return -1;
  m->nodes[t].start = (int64_t)m->nrefs;
  m->nodes[t].count = (int64_t)k;
  for (size_t i = from; i < m->nstack; i++) {
    if (m->stack[i].kind == V_MARK) return fail(m, "a mark inside a tuple");
    m->refs[m->nrefs++] = m->stack[i];
  }
  m->nstack = from;
  return push(m, V_NODE, t);
}

/* append stack[from..] to the list below from */
static int append(vm *m, size_t from)
{
  if (from == 0) return fail(m, "append without a list");
  node *l = as(m, m->stack[from - 1], N_LIST);
  if (!l) return fail(m, "append to something that is not a list");
  size_t k = m->nstack - from;
  if (k == 0) return KR_OK;
  int ints = m->stack[from].kind == V_INT;
  for (size_t i = from; i < m->nstack; i++)
    if ((m->stack[i].kind == V_INT) != ints) return fail(m, "a list mixing integers and other items");
  if (l->count > 0 && l->ints != ints) return fail(m, "a list mixing integers and other items");
  size_t *n = ints ? &m->nints : &m->nrefs;
  if (l->count == 0) {
    l->ints = ints;
    l->start = (int64_t)*n;
  } else if ((size_t)(l->start + l->count) != *n) {
    return fail(m, "interleaved list appends");
  }
  if (ints) {
    if (grow(m, (void **)&m->ints, &m->capints, m->nints + k, sizeof(int64_t)) != KR_OK) return -1;
    for (size_t i = from; i < m->nstack; i++) m->ints[m->nints++] = m->stack[i].x;
  } else {
    if (grow(m, (void **)&m->refs, &m->caprefs, m->nrefs + k, sizeof(val)) != KR_OK) return -1;
    for (size_t i = from; i < m->nstack; i++) m->refs[m->nrefs++] = m->stack[i];
  }
  l->count += (int64_t)k;
  m->nstack = from;
  return KR_OK;
}

static int str_is(vm *m, int64_t idx, const char *s)
{
  const node *n = &m->nodes[idx];
  size_t k = strlen(s);
  return n->kind == N_STR && (size_t)n->count == k && memcmp(m->p + n->start, s, k) == 0;
}

static int global(vm *m, int64_t mod, int64_t name)
{
  static const char *const allowed[][2] = {
    {"numpy.core.multiarray", "_reconstruct"}, {"numpy._core.multiarray", "_reconstruct"},
    {"numpy", "ndarray"}, {"numpy", "dtype"}, {"_codecs", "encode"},
  };
  for (size_t i = 0; i < sizeof allowed / sizeof allowed[0]; i++)
    if (str_is(m, mod, allowed[i][0]) && str_is(m, name, allowed[i][1])) {
      int64_t g;
      if (push_node(m, N_GLOBAL, &g) != 0) return -1;
      m->nodes[g].a = mod;
      m->nodes[g].b = name;
      return KR_OK;
    }
  return fail(m, "a global other than numpy's array reconstructors");
}

/* a string of n bytes at pos */
static int str_op(vm *m, size_t n)
{
  if (need(m, n) != 0) return -1;
  int64_t s;
  if (push_node(m, N_STR, &s) != 0) return -1;
  m->nodes[s].start = (int64_t)m->pos;
  m->nodes[s].count = (int64_t)n;
  m->pos += n;
  return KR_OK;
}

static int memo_put(vm *m, uint64_t key)
{
  if (m->nstack == 0 || m->stack[m->nstack - 1].kind == V_MARK) return fail(m, "memoizing nothing");
  if (key >= m->limit) return fail(m, "memo key too large");
  if (grow(m, (void **)&m->memo, &m->capmemo, (size_t)key + 1, sizeof(val)) != KR_OK) return -1;
  while (m->nmemo <= key) m->memo[m->nmemo++].kind = V_MARK;   /* V_MARK: unset */
  m->memo[key] = m->stack[m->nstack - 1];
  return KR_OK;
}

static int memo_get(vm *m, uint64_t key)
{
  if (key >= m->nmemo || m->memo[key].kind == V_MARK) return fail(m, "memo key not set");
  val v = m->memo[key];
  return push(m, v.kind, v.x);
}

static int64_t sign_extend(uint64_t v, int n)
{
  if (n == 8 || !(v >> (8 * n - 1))) return (int64_t)v;
  return (int64_t)v - ((int64_t)1 << (8 * n));
}

/* run to STOP; the result is left on the stack */
static int run(vm *m)
{
  while (m->pos < m->len) {
    m->op_at = m->pos;
    int op = m->p[m->pos++];
    int rc = KR_OK;
    val a, b;
    size_t at = 0;
    switch (op) {
    case 0x80:   /* PROTO */
      if (need(m, 1) != 0) return -1;
      if (m->p[m->pos] < 2 || m->p[m->pos] > 4) return fail(m, "a protocol other than 2, 3 or 4");
      m->pos++;
      break;
    case 0x95:   /* FRAME: a length, then the frame's opcodes */
      if (need(m, 8) != 0) return -1;
      m->pos += 8;
      break;
    case '.':    /* STOP */
      if (m->nstack != 1 || m->stack[0].kind == V_MARK) return fail(m, "STOP with a stack not of one value");
      if (m->pos != m->len) {
        m->op_at = m->pos;
        return fail(m, "data after STOP");
      }
      return KR_OK;
    case '(': rc = push(m, V_MARK, 0); break;
    case 'N': rc = push(m, V_NONE, 0); break;
    case 0x88: rc = push(m, V_BOOL, 1); break;
    case 0x89: rc = push(m, V_BOOL, 0); break;
    case 'K':    /* BININT1 */
      if (need(m, 1) != 0) return -1;
      rc = push(m, V_INT, m->p[m->pos]);
      m->pos += 1;
      break;
    case 'M':    /* BININT2 */
      if (need(m, 2) != 0) return -1;
      rc = push(m, V_INT, (int64_t)le(m->p + m->pos, 2));
      m->pos += 2;
      break;
    case 'J':    /* BININT */
      if (need(m, 4) != 0) return -1;
      rc = push(m, V_INT, sign_extend(le(m->p + m->pos, 4), 4));
      m->pos += 4;
      break;
    case 0x8a: { /* LONG1 */
      if (need(m, 1) != 0) return -1;
      int n = m->p[m->pos++];
      if (n > 8) return fail(m, "an integer wider than 64 bits");
      if (need(m, (size_t)n) != 0) return -1;
      rc = push(m, V_INT, n ? sign_extend(le(m->p + m->pos, n), n) : 0);
      m->pos += (size_t)n;
      break;
    }
    case 'U': case 'C': case 0x8c:   /* SHORT_BINSTRING, SHORT_BINBYTES, SHORT_BINUNICODE */
      if (need(m, 1) != 0) return -1;
      m->pos++;
      rc = str_op(m, m->p[m->pos - 1]);
      break;
    case 'T': case 'B': case 'X':    /* BINSTRING, BINBYTES, BINUNICODE */
      if (need(m, 4) != 0) return -1;
      m->pos += 4;
      rc = str_op(m, (size_t)le(m->p + m->pos - 4, 4));
      break;
    case ')': rc = make_tuple(m, m->nstack); break;
    case 0x85: case 0x86: case 0x87: {   /* TUPLE1..3 */
      size_t k = (size_t)(op - 0x84);
      if (m->nstack < k) return fail(m, "stack underflow");
      rc = make_tuple(m, m->nstack - k);
      break;
    }
    case 't':
      if (find_mark(m, &at) != KR_OK) return -1;
      memmove(m->stack + at, m->stack + at + 1, (m->nstack - at - 1) * sizeof(val));
      m->nstack--;
      rc = make_tuple(m, at);
      break;
    case ']': rc = push_node(m, N_LIST, NULL); break;
    case 'l':    /* LIST: from the mark */
      if (find_mark(m, &at) != KR_OK) return -1;
      m->stack[at].kind = V_NODE;   /* the mark's slot becomes the list */
      if ((m->stack[at].x = new_node(m, N_LIST)) < 0) return -1;
      rc = append(m, at + 1);
      break;
    case 'a':
      if (m->nstack < 2) return fail(m, "stack underflow");
      rc = append(m, m->nstack - 1);
      break;
    case 'e':    /* APPENDS */
      if (find_mark(m, &at) != KR_OK) return -1;
      memmove(m->stack + at, m->stack + at + 1, (m->nstack - at - 1) * sizeof(val));
      m->nstack--;
      rc = append(m, at);
      break;
    case 'c': {  /* GLOBAL: "module\nname\n" */
      int64_t s[2];
      for (int i = 0; i < 2; i++) {
        const unsigned char *nl = memchr(m->p + m->pos, '\n', m->len - m->pos);
        if (!nl || nl - (m->p + m->pos) > 64) return fail(m, "a bad GLOBAL");
        if ((s[i] = new_node(m, N_STR)) < 0) return -1;
        m->nodes[s[i]].start = (int64_t)m->pos;
        m->nodes[s[i]].count = nl - (m->p + m->pos);
        m->pos = (size_t)(nl - m->p) + 1;
      }
      rc = global(m, s[0], s[1]);
      break;
    }
    case 0x93:   /* STACK_GLOBAL */
      if (pop(m, &b) != KR_OK || pop(m, &a) != KR_OK) return -1;
      if (!as(m, a, N_STR) || !as(m, b, N_STR)) return fail(m, "STACK_GLOBAL of non-strings");
      rc = global(m, a.x, b.x);
      break;
    case 'q': case 'r': {   /* BINPUT, LONG_BINPUT */
      int n = op == 'q' ? 1 : 4;
      if (need(m, (size_t)n) != 0) return -1;
      m->pos += (size_t)n;
      rc = memo_put(m, le(m->p + m->pos - n, n));
      break;
    }
    case 0x94: rc = memo_put(m, m->nmemo); break;   /* MEMOIZE */
    case 'h': case 'j': {   /* BINGET, LONG_BINGET */
      int n = op == 'h' ? 1 : 4;
      if (need(m, (size_t)n) != 0) return -1;
      m->pos += (size_t)n;
      rc = memo_get(m, le(m->p + m->pos - n, n));
      break;
    }
    case 'R': {  /* REDUCE: callable(*args), kept as an object, never called */
      if (pop(m, &b) != KR_OK || pop(m, &a) != KR_OK) return -1;
      if (!as(m, a, N_GLOBAL) || !as(m, b, N_TUPLE)) return fail(m, "REDUCE of something that is not a global");
      int64_t o;
      if (push_node(m, N_OBJ, &o) != 0) return -1;
      m->nodes[o].a = a.x;
      m->nodes[o].b = b.x;
      break;
    }
    case 'b': {  /* BUILD */
      if (pop(m, &b) != KR_OK) return -1;
      if (m->nstack == 0) return fail(m, "stack underflow");
      node *o = as(m, m->stack[m->nstack - 1], N_OBJ);
      if (!o || o->state >= 0 || b.kind != V_NODE) return fail(m, "a bad BUILD");
      o->state = b.x;
      break;
    }
    default: {
      char what[48];
      snprintf(what, sizeof what, "opcode 0x%02x", (unsigned)op);
      return fail(m, what);
    }
    }
    if (rc != KR_OK) return kr_errcode(m->ctx) ? kr_errcode(m->ctx) : fail(m, "out of memory");
  }
  m->op_at = m->pos;
  return fail(m, "no STOP");
}

/* item i of a tuple node */
static val item(vm *m, const node *t, int64_t i) { return m->refs[t->start + i]; }

/* the result: an ndarray of dtype object and shape (n,) holding lists of ints */
static int extract(vm *m, int64_t n, kr_ragged *r)
{
  val top = m->stack[0];
  node *o = as(m, top, N_OBJ), *st = NULL, *shape = NULL, *dt = NULL, *data = NULL;
  if (!o || !(str_is(m, m->nodes[o->a].b, "_reconstruct")) || o->state < 0 ||
      m->nodes[o->state].kind != N_TUPLE || m->nodes[o->state].count != 5)
    return fail(m, "the result is not a numpy array");
  st = &m->nodes[o->state];
  shape = as(m, item(m, st, 1), N_TUPLE);
  dt = as(m, item(m, st, 2), N_OBJ);
  data = as(m, item(m, st, 4), N_LIST);
  val fo = item(m, st, 3);
  if (!dt || !str_is(m, m->nodes[dt->a].b, "dtype") || m->nodes[dt->b].count < 1 ||
      !as(m, item(m, &m->nodes[dt->b], 0), N_STR) || !str_is(m, item(m, &m->nodes[dt->b], 0).x, "O8"))
    return fail(m, "an array whose dtype is not object");
  if (!shape || shape->count != 1 || item(m, shape, 0).kind != V_INT || (fo.kind != V_BOOL && fo.kind != V_INT) ||
      fo.x != 0)
    return fail(m, "an array that is not 1-D");
  if (item(m, shape, 0).x != n) return fail(m, "an array whose length is not the header's");
  if (!data || data->count != n || (n > 0 && data->ints)) return fail(m, "array data that is not a list of lists");
  int64_t total = 0;
  for (int64_t i = 0; i < n; i++) {
    node *l = as(m, m->refs[data->start + i], N_LIST);
    if (!l || (l->count > 0 && !l->ints)) return fail(m, "an array item that is not a list of integers");
    total += l->count;
  }
  r->n = n;
  r->offsets = kr_malloc(m->ctx, (size_t)(n + 1) * sizeof(int64_t));
  r->values = kr_malloc(m->ctx, (size_t)(total ? total : 1) * sizeof(int64_t));
  if (!r->offsets || !r->values) {
    kr_ragged_free(m->ctx, r);
    return kr_errcode(m->ctx);
  }
  int64_t k = 0;
  for (int64_t i = 0; i < n; i++) {
    const node *l = &m->nodes[m->refs[data->start + i].x];
    r->offsets[i] = k;
    if (l->count) memcpy(r->values + k, m->ints + l->start, (size_t)l->count * sizeof(int64_t));
    k += l->count;
  }
  r->offsets[n] = k;
  return KR_OK;
}

void kr_ragged_free(kr_ctx *ctx, kr_ragged *r)
{
  kr_free(ctx, r->offsets);
  kr_free(ctx, r->values);
  r->offsets = r->values = NULL;
  r->n = 0;
}

int kr_pickle_int_lists(kr_ctx *ctx, const unsigned char *p, size_t len, const char *name,
                        int64_t n, kr_ragged *r)
{
  memset(r, 0, sizeof *r);
  vm m = {.ctx = ctx, .p = p, .len = len, .name = name, .limit = len + 16};
  int rc = run(&m);
  if (rc == KR_OK) rc = extract(&m, n, r);
  kr_free(ctx, m.stack);
  kr_free(ctx, m.nodes);
  kr_free(ctx, m.refs);
  kr_free(ctx, m.ints);
  kr_free(ctx, m.memo);
  return rc == KR_OK ? KR_OK : kr_errcode(ctx);
}
