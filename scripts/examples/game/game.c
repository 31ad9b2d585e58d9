/*
** game.c -- a game that learns: CartPole simulated in C (cartpole.c), the game
** loop in C, and a DQN agent written in Lua with lkeras (agent.lua).
**
**   build/game/cartpole [--quick] [--seed N] [--episodes N] [--plot FILE] [AGENT.lua]
**
** agent.lua returns a table: the hyperparameters, build(seed) (the Q-network,
** compiled), and report(run) (the summary and the plot). Everything that runs
** per frame or per learning step is C: the simulation, epsilon-greedy action
** selection (a predict of one row from a float buffer), the replay buffer (C
** floats, allocated once), minibatch sampling, the DQN targets (a predict of
** the target network on the batch's next states) and the training step (a
** train_on_batch on the gathered buffers), all through the C API of lkeras.h
** (lk_predict, lk_train_on_batch, lk_get_weights/lk_set_weights); after the
** first call for each row count, lk_predict and lk_train_on_batch allocate
** nothing and leave no Lua garbage.
**
** The run is reproducible from its seed: the seed picks the initial weights
** (keras.random.seed in agent.build) and seeds the game's own generators
** (start states, exploration, replay sampling); the engine runs on one thread.
**
** --quick (make test): a short run of the same agent, twice, that checks that
** the loop runs, that learning moves the Q-values of start states towards the
** returns the agent gets, that the loop makes no engine allocation and no Lua
** garbage after its second learning step (target syncs aside), and that the
** same seed gives the same run; it ends with "game_quick: N passed, M failed".
*/
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <lauxlib.h>
#include <lualib.h>

#include "lkeras.h"
#include "cartpole.h"

#define SOLVED_MEAN 195.0   /* Gym's bar for CartPole-v0 */
#define SOLVED_WINDOW 100   /* consecutive episodes */
#define PROBE_STATES 64     /* start states whose Q-values the quick mode follows */

typedef struct hyper {
  double gamma, lr;
  int batch_size, replay_size, learn_start, train_every, target_sync, double_dqn;
  double epsilon_start, epsilon_end, td_clip;
  int epsilon_decay_steps, episodes, quick_episodes, quick_learn_start, seed;
} hyper;

/* the replay buffer: C floats, allocated once */
typedef struct replay {
  int cap, size, next;
  float *s, *s2, *r;
  unsigned char *a, *terminal;
} replay;

typedef struct run {
  hyper h;
  lua_State *L;
  lk_model *online, *target;
  replay rb;
  cp_rng env_rng, act_rng, replay_rng;
  /* one batch's buffers, allocated once */
  float *bs, *bs2, *q, *qn, *qo, *y;
  int64_t *bidx;
  float *weights;
  size_t nweights;
  int64_t total_steps, learn_steps;
  double last_loss;
  int *returns, episodes_run, solved_at;
  double *mean100;
  double wall_s, cpu_s;   /* the episodes' wall-clock time, and the process's CPU time in them */
  /* the quick mode's watch of the hot path: the engine's allocations and the
  ** Lua heap (its collector stopped) from the second learning step on */
  int watch, marked;
  uint64_t allocs_mark;
  long lua_mark, sync_lua;   /* bytes; sync_lua: what the target syncs added */
} run;

static double now(void)
{
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

/* ---- the agent's table (agent.lua) ---- */

/* agent[k]: a number (true/false count as 1/0), dflt when nil; a value of
** another type is named in bad (the first one) */
static double num_field(lua_State *L, int t, const char *k, double dflt, char *bad, size_t n)
{
  lua_getfield(L, t, k);
  double v = dflt;
  if (lua_type(L, -1) == LUA_TNUMBER) v = lua_tonumber(L, -1);
  else if (lua_isboolean(L, -1)) v = lua_toboolean(L, -1);
  else if (!lua_isnil(L, -1) && !*bad) snprintf(bad, n, "agent.%s: expected a number, got %s", k, luaL_typename(L, -1));
  lua_pop(L, 1);
  return v;
}

/* the hyperparameters; 1 with the message in err when one is not a number */
static int read_hyper(lua_State *L, int t, hyper *h, char *err, size_t n)
{
  *err = 0;
#define F(k, dflt) num_field(L, t, k, dflt, err, n)
  h->gamma = F("gamma", 0.99);
  h->lr = F("lr", 1e-3);
  h->batch_size = (int)F("batch_size", 64);
  h->replay_size = (int)F("replay_size", 10000);
  h->learn_start = (int)F("learn_start", 1000);
  h->train_every = (int)F("train_every", 1);
  h->target_sync = (int)F("target_sync", 500);
  h->double_dqn = (int)F("double_dqn", 0);
  h->epsilon_start = F("epsilon_start", 1.0);
  h->epsilon_end = F("epsilon_end", 0.01);
  h->epsilon_decay_steps = (int)F("epsilon_decay_steps", 10000);
  h->td_clip = F("td_clip", 0);
  h->episodes = (int)F("episodes", 600);
  h->quick_episodes = (int)F("quick_episodes", 30);
  h->quick_learn_start = (int)F("quick_learn_start", 256);
  h->seed = (int)F("seed", 1);
#undef F
  return *err != 0;
}

static int check_hyper(const hyper *h, char *err, size_t n)
{
  if (h->batch_size < 1 || h->replay_size < h->batch_size || h->learn_start < h->batch_size ||
      h->train_every < 1 || h->target_sync < 1 || h->episodes < 1 || h->quick_episodes < 1 ||
      h->epsilon_decay_steps < 1 || !(h->gamma >= 0 && h->gamma <= 1)) {
    snprintf(err, n, "agent: expected batch_size >= 1, replay_size and learn_start >= batch_size, "
                     "train_every, target_sync, episodes, epsilon_decay_steps >= 1 and 0 <= gamma <= 1");
    return 1;
  }
  return 0;
}

/* agent.build(seed) -> a compiled model, pinned */
static lk_model *build_model(lua_State *L, int agent, int seed, char *err, size_t n)
{
  lua_getfield(L, agent, "build");
  lua_pushinteger(L, seed);
  if (lua_pcall(L, 1, 1, 0) != LUA_OK) {
    snprintf(err, n, "agent.build: %s", lua_tostring(L, -1));
    lua_pop(L, 1);
    return NULL;
  }
  lk_model *m = lk_model_get(L, -1);
  lua_pop(L, 1);
  if (!m) {
    snprintf(err, n, "agent.build: %s", lk_errmsg(L));
    return NULL;
  }
  int64_t nin, nout;
  if (lk_model_io(m, &nin, &nout) != LK_OK) {
    snprintf(err, n, "agent.build: %s", lk_errmsg(L));
    lk_model_release(m);
    return NULL;
  }
  if (nin != CP_OBS || nout != CP_ACTIONS) {
    snprintf(err, n, "agent.build: expected a model from %d inputs to %d outputs, got %lld to %lld", CP_OBS,
             CP_ACTIONS, (long long)nin, (long long)nout);
    lk_model_release(m);
    return NULL;
  }
  return m;
}

/* ---- the run ---- */

static void run_free(run *g)
{
  lk_model_release(g->online);
  lk_model_release(g->target);
  free(g->rb.s); free(g->rb.s2); free(g->rb.r); free(g->rb.a); free(g->rb.terminal);
  free(g->bs); free(g->bs2); free(g->q); free(g->qn); free(g->qo); free(g->y);
  free(g->bidx);
  free(g->weights);
  free(g->returns);
  free(g->mean100);
  memset(g, 0, sizeof *g);
}

/* the models, the buffers and the generators; the agent's table at stack index agent */
static int run_init(run *g, lua_State *L, int agent, const hyper *h, int episodes, char *err, size_t n)
{
  memset(g, 0, sizeof *g);
  g->h = *h;
  g->L = L;
  g->solved_at = -1;
  if (!(g->online = build_model(L, agent, h->seed, err, n))) return 1;
  if (!(g->target = build_model(L, agent, h->seed, err, n))) return 1;
  size_t cap = (size_t)h->replay_size, b = (size_t)h->batch_size;
  g->rb.cap = h->replay_size;
  g->rb.s = malloc(cap * CP_OBS * sizeof(float));
  g->rb.s2 = malloc(cap * CP_OBS * sizeof(float));
  g->rb.r = malloc(cap * sizeof(float));
  g->rb.a = malloc(cap);
  g->rb.terminal = malloc(cap);
  g->bs = malloc(b * CP_OBS * sizeof(float));
  g->bs2 = malloc(b * CP_OBS * sizeof(float));
  g->q = malloc(b * CP_ACTIONS * sizeof(float));
  g->qn = malloc(b * CP_ACTIONS * sizeof(float));
  g->qo = malloc(b * CP_ACTIONS * sizeof(float));
  g->y = malloc(b * CP_ACTIONS * sizeof(float));
  g->bidx = malloc(b * sizeof(int64_t));
  g->returns = calloc((size_t)episodes, sizeof(int));
  g->mean100 = calloc((size_t)episodes, sizeof(double));
  if (!g->rb.s || !g->rb.s2 || !g->rb.r || !g->rb.a || !g->rb.terminal || !g->bs || !g->bs2 || !g->q || !g->qn ||
      !g->qo || !g->y || !g->bidx || !g->returns || !g->mean100) {
    snprintf(err, n, "out of memory");
    return 1;
  }
  /* the target network starts as a copy of the online one */
  size_t count;
  if (lk_get_weights(g->online, NULL, 0, &g->nweights) != 0 ||
      !(g->weights = malloc(g->nweights * sizeof(float))) ||
      lk_get_weights(g->online, g->weights, g->nweights, &count) != 0 ||
      lk_set_weights(g->target, g->weights, g->nweights) != 0) {
    snprintf(err, n, "target network: %s", g->weights ? lk_errmsg(g->L) : "out of memory");
    return 1;
  }
  uint64_t seed = (uint64_t)h->seed;
  cp_rng_seed(&g->env_rng, seed * 3 + 1);
  cp_rng_seed(&g->act_rng, seed * 3 + 2);
  cp_rng_seed(&g->replay_rng, seed * 3 + 3);
  return 0;
}

static double epsilon(const run *g)
{
  double t = (double)g->total_steps / g->h.epsilon_decay_steps;
  if (t > 1) t = 1;
  return g->h.epsilon_start + t * (g->h.epsilon_end - g->h.epsilon_start);
}

static long lua_bytes(lua_State *L) { return 1024L * lua_gc(L, LUA_GCCOUNT) + lua_gc(L, LUA_GCCOUNTB); }

static int argmax2(const float *q) { return q[1] > q[0] ? 1 : 0; }

/* epsilon-greedy: a random action, or the online network's best */
static int act(run *g, const float obs[CP_OBS], char *err, size_t n)
{
  if (cp_rng_uniform(&g->act_rng) < epsilon(g)) return (int)cp_rng_below(&g->act_rng, CP_ACTIONS);
  float q[CP_ACTIONS];
  if (lk_predict(g->online, obs, 1, q) != 0) {
    snprintf(err, n, "%s", lk_errmsg(g->L));
    return -1;
  }
  return argmax2(q);
}

static void remember(replay *rb, const float *s, int a, float r, const float *s2, int terminal)
{
  int i = rb->next;
  memcpy(rb->s + (size_t)i * CP_OBS, s, CP_OBS * sizeof(float));
  memcpy(rb->s2 + (size_t)i * CP_OBS, s2, CP_OBS * sizeof(float));
  rb->a[i] = (unsigned char)a;
  rb->r[i] = r;
  rb->terminal[i] = (unsigned char)terminal;
  rb->next = (i + 1) % rb->cap;
  if (rb->size < rb->cap) rb->size++;
}

/* one DQN step: a minibatch from the replay buffer, its targets
** r + gamma * max_a' Q_target(s', a') (Double DQN: Q_target(s', argmax_a' Q_online(s', a'))),
** 0 after a terminal step, and one train_on_batch of the online network; the
** other action's output keeps the network's own value, so it adds no error */
static int learn(run *g, char *err, size_t n)
{
  const hyper *h = &g->h;
  int b = h->batch_size;
  int64_t *ix = g->bidx;
  for (int i = 0; i < b; i++) {
    int64_t k = cp_rng_below(&g->replay_rng, g->rb.size);
    ix[i] = k;
    memcpy(g->bs + (size_t)i * CP_OBS, g->rb.s + (size_t)k * CP_OBS, CP_OBS * sizeof(float));
    memcpy(g->bs2 + (size_t)i * CP_OBS, g->rb.s2 + (size_t)k * CP_OBS, CP_OBS * sizeof(float));
  }
  if (lk_predict(g->online, g->bs, b, g->q) != 0 || lk_predict(g->target, g->bs2, b, g->qn) != 0 ||
      (h->double_dqn && lk_predict(g->online, g->bs2, b, g->qo) != 0)) {
    snprintf(err, n, "learn: %s", lk_errmsg(g->L));
    return 1;
  }
  memcpy(g->y, g->q, (size_t)b * CP_ACTIONS * sizeof(float));
  for (int i = 0; i < b; i++) {
    int64_t k = ix[i];
    const float *qn = g->qn + (size_t)i * CP_ACTIONS;
    double next = h->double_dqn ? qn[argmax2(g->qo + (size_t)i * CP_ACTIONS)] : fmax(qn[0], qn[1]);
    double target = g->rb.r[k] + (g->rb.terminal[k] ? 0.0 : h->gamma * next);
    float *y = g->y + (size_t)i * CP_ACTIONS + g->rb.a[k];
    if (h->td_clip > 0) {   /* the gradient of a Huber loss of width td_clip, through mse */
      double d = target - *y;
      if (d > h->td_clip) d = h->td_clip;
      if (d < -h->td_clip) d = -h->td_clip;
      target = *y + d;
    }
    *y = (float)target;
  }
  float loss;
  if (lk_train_on_batch(g->online, g->bs, g->y, b, &loss) != 0) {
    snprintf(err, n, "learn: %s", lk_errmsg(g->L));
    return 1;
  }
  g->last_loss = loss;
  g->learn_steps++;
  if (g->watch && g->learn_steps == 2) {
    lua_gc(g->L, LUA_GCSTOP);
    g->allocs_mark = lk_memory_allocs(g->L);
    g->lua_mark = lua_bytes(g->L);
    g->marked = 1;
  }
  return 0;
}

/* the target network gets the online one's weights; lk_get_weights and
** lk_set_weights go through Lua (a few KB of garbage per sync, every
** target_sync steps), which the quick mode's watch counts apart */
static int sync_target(run *g, char *err, size_t n)
{
  size_t count;
  long before = g->marked ? lua_bytes(g->L) : 0;
  if (lk_get_weights(g->online, g->weights, g->nweights, &count) != 0 ||
      lk_set_weights(g->target, g->weights, g->nweights) != 0) {
    snprintf(err, n, "target sync: %s", lk_errmsg(g->L));
    return 1;
  }
  if (g->marked) g->sync_lua += lua_bytes(g->L) - before;
  return 0;
}

/* one episode; its return, or -1 on error */
static int episode(run *g, char *err, size_t n)
{
  cartpole c;
  float s[CP_OBS], s2[CP_OBS];
  int ret = 0;
  cp_reset(&c, &g->env_rng);
  cp_observe(&c, s);
  while (cp_running(&c)) {
    int a = act(g, s, err, n);
    if (a < 0) return -1;
    ret += (int)cp_step(&c, a);
    cp_observe(&c, s2);
    /* a time-limit end is not terminal: the pole still stands, the target bootstraps */
    remember(&g->rb, s, a, 1.0f, s2, c.done);
    memcpy(s, s2, sizeof s);
    g->total_steps++;
    if (g->rb.size >= g->h.learn_start && g->total_steps % g->h.train_every == 0 && learn(g, err, n) != 0)
      return -1;
    if (g->total_steps % g->h.target_sync == 0 && sync_target(g, err, n) != 0) return -1;
  }
  return ret;
}

/* up to `episodes` episodes, stopping once solved when stop_when_solved */
static int play(run *g, int episodes, int stop_when_solved, int verbose, char *err, size_t n)
{
  double t0 = now();
  clock_t c0 = clock();
  for (int e = 0; e < episodes; e++) {
    int ret = episode(g, err, n);
    if (ret < 0) return 1;
    g->returns[e] = ret;
    g->episodes_run = e + 1;
    int lo = e + 1 > SOLVED_WINDOW ? e + 1 - SOLVED_WINDOW : 0;
    double sum = 0;
    for (int i = lo; i <= e; i++) sum += g->returns[i];
    g->mean100[e] = sum / (e + 1 - lo);
    if (verbose && ((e + 1) % 20 == 0 || e == 0))
      printf("episode %4d  return %3d  mean(last %3d) %6.1f  epsilon %.3f  steps %7lld  loss %.4f  %.1f s\n", e + 1,
             ret, e + 1 - lo, g->mean100[e], epsilon(g), (long long)g->total_steps, g->last_loss, now() - t0);
    if (g->solved_at < 0 && e + 1 >= SOLVED_WINDOW && g->mean100[e] >= SOLVED_MEAN) {
      g->solved_at = e + 1;
      if (verbose)
        printf("solved at episode %d: mean return %.1f over episodes %d-%d\n", e + 1, g->mean100[e], lo + 1, e + 1);
      if (stop_when_solved) break;
    }
    if (verbose) fflush(stdout);
  }
  g->wall_s = now() - t0;
  g->cpu_s = (double)(clock() - c0) / CLOCKS_PER_SEC;
  return 0;
}

/* agent.report{...}: the summary and the plot, in Lua */
static int report(run *g, int agent, const char *plot, char *err, size_t n)
{
  lua_State *L = g->L;
  lua_getfield(L, agent, "report");
  if (!lua_isfunction(L, -1)) {
    lua_pop(L, 1);
    return 0;
  }
  lua_createtable(L, 0, 8);
  lua_createtable(L, g->episodes_run, 0);
  lua_createtable(L, g->episodes_run, 0);
  for (int e = 0; e < g->episodes_run; e++) {
    lua_pushinteger(L, g->returns[e]);
    lua_rawseti(L, -3, e + 1);
    lua_pushnumber(L, g->mean100[e]);
    lua_rawseti(L, -2, e + 1);
  }
  lua_setfield(L, -3, "mean100");
  lua_setfield(L, -2, "returns");
  lua_pushinteger(L, g->solved_at > 0 ? g->solved_at : -1);
  lua_setfield(L, -2, "solved_at");
  lua_pushnumber(L, g->wall_s);
  lua_setfield(L, -2, "wall_s");
  lua_pushnumber(L, g->cpu_s);
  lua_setfield(L, -2, "cpu_s");
  lua_pushinteger(L, (lua_Integer)g->total_steps);
  lua_setfield(L, -2, "steps");
  lua_pushinteger(L, (lua_Integer)g->learn_steps);
  lua_setfield(L, -2, "learn_steps");
  lua_pushinteger(L, g->h.seed);
  lua_setfield(L, -2, "seed");
  if (plot) {
    lua_pushstring(L, plot);
    lua_setfield(L, -2, "plot");
  }
  if (lua_pcall(L, 1, 0, 0) != LUA_OK) {
    snprintf(err, n, "agent.report: %s", lua_tostring(L, -1));
    lua_pop(L, 1);
    return 1;
  }
  return 0;
}

/* a Lua state with keras (one engine thread) and the agent's table on top */
static lua_State *open_agent(const char *path, char *err, size_t n)
{
  lua_State *L = luaL_newstate();
  if (!L) {
    snprintf(err, n, "cannot create a Lua state");
    return NULL;
  }
  luaL_openlibs(L);
  luaL_requiref(L, "keras", luaopen_keras, 1);
  lua_getfield(L, -1, "set_num_threads");
  lua_pushinteger(L, 1);
  lua_call(L, 1, 0);
  lua_pop(L, 1);
  if (luaL_dofile(L, path) != LUA_OK) {
    snprintf(err, n, "%s", lua_tostring(L, -1));
    lua_close(L);
    return NULL;
  }
  if (!lua_istable(L, -1)) {
    snprintf(err, n, "%s: expected the agent's table as the result, got %s", path, luaL_typename(L, -1));
    lua_close(L);
    return NULL;
  }
  return L;
}

/* ---- the quick mode ---- */

/* the mean over fixed start states of the greedy action's Q-value */
static int probe_q(run *g, const float *states, double *mean, char *err, size_t n)
{
  float q[PROBE_STATES * CP_ACTIONS];
  if (lk_predict(g->online, states, PROBE_STATES, q) != 0) {
    snprintf(err, n, "%s", lk_errmsg(g->L));
    return 1;
  }
  double s = 0;
  for (int i = 0; i < PROBE_STATES; i++) s += fmax(q[2 * i], q[2 * i + 1]);
  *mean = s / PROBE_STATES;
  return 0;
}

static int passed, failed;

static void check(int ok, const char *what)
{
  if (ok) {
    passed++;
  } else {
    failed++;
    printf("FAIL game_quick: %s\n", what);
  }
}

static int quick(const char *agent_path, int seed_override, int episodes_override)
{
  char err[1024] = "";
  int returns[2][256];
  int n_ep = 0, complete = 0;
  for (int pass = 0; pass < 2; pass++) {
    lua_State *L = open_agent(agent_path, err, sizeof err);
    check(L != NULL, "the agent loads");
    if (!L) {
      printf("  %s\n", err);
      break;
    }
    int agent = lua_gettop(L);
    hyper h;
    int bad = read_hyper(L, agent, &h, err, sizeof err);
    if (seed_override >= 0) h.seed = seed_override;
    h.learn_start = h.quick_learn_start;
    n_ep = episodes_override > 0 ? episodes_override : h.quick_episodes;
    if (n_ep > 256) n_ep = 256;
    run g;
    memset(&g, 0, sizeof g);
    int ok = !bad && check_hyper(&h, err, sizeof err) == 0 &&
             run_init(&g, L, agent, &h, n_ep, err, sizeof err) == 0;
    check(ok, "the run starts (agent.build, the buffers, the target copy)");
    if (!ok) {
      printf("  %s\n", err);
      run_free(&g);
      lua_close(L);
      break;
    }
    /* start states of their own generator, the same for both probes */
    float probe[PROBE_STATES * CP_OBS];
    cp_rng pr;
    cp_rng_seed(&pr, 12345);
    for (int i = 0; i < PROBE_STATES; i++) {
      cartpole c;
      cp_reset(&c, &pr);
      cp_observe(&c, probe + i * CP_OBS);
    }
    double q0 = 0, q1 = 0;
    uint64_t allocs = 0;
    long lua_garbage = 0;
    g.watch = 1;
    ok = probe_q(&g, probe, &q0, err, sizeof err) == 0 && play(&g, n_ep, 0, 0, err, sizeof err) == 0;
    if (ok && g.marked) {
      allocs = lk_memory_allocs(L) - g.allocs_mark;
      lua_garbage = lua_bytes(L) - g.lua_mark - g.sync_lua;
      lua_gc(L, LUA_GCRESTART);
    }
    ok = ok && probe_q(&g, probe, &q1, err, sizeof err) == 0;
    check(ok, "the game loop runs its episodes");
    if (!ok) printf("  %s\n", err);
    if (ok) {
      int in_range = 1;
      long steps = 0;
      for (int e = 0; e < n_ep; e++) {
        in_range &= g.returns[e] >= 1 && g.returns[e] <= CP_MAX_STEPS;
        steps += g.returns[e];
        returns[pass][e] = g.returns[e];
      }
      complete++;
      check(in_range && steps == g.total_steps, "every episode ends within 200 steps, the steps add up");
      check(g.rb.size == (steps < h.replay_size ? steps : h.replay_size), "the replay buffer holds every step");
      /* a learning step at each step t >= learn_start with t % train_every == 0 */
      long want = steps >= h.learn_start ? steps / h.train_every - (h.learn_start - 1) / h.train_every : 0;
      check(g.learn_steps == want &&
            g.learn_steps > 0, "learning steps ran once the replay buffer held learn_start steps");
      check(isfinite(g.last_loss), "the loss is finite");
      /* actions, learning steps and target syncs after the first of each */
      check(g.marked && allocs == 0, "no engine allocation in the game loop after the second learning step");
      check(g.marked && lua_garbage == 0, "no Lua garbage from actions and learning steps after the second one");
      /* every reward is 1: learning raises the Q-values of start states from
      ** about 0 (small initial weights) towards the discounted returns */
      check(q1 - q0 >= 2.0 && isfinite(q1),
            "learning raises the mean Q-value of start states by at least 2");
      printf("game_quick: pass %d, seed %d: %d episodes, %ld steps, %lld learning steps, mean return %.1f, "
             "Q(start) %.3f -> %.3f, loss %.4f, %.2f s; since the second learning step: %llu engine allocations, "
             "Lua garbage %ld bytes (target syncs: %ld)\n", pass + 1, h.seed, n_ep, steps, (long long)g.learn_steps,
             (double)steps / n_ep, q0, q1, g.last_loss, g.wall_s, (unsigned long long)allocs, lua_garbage, g.sync_lua);
    }
    run_free(&g);
    lua_close(L);
  }
  if (complete == 2) {
    int same = 1;
    for (int e = 0; e < n_ep; e++) same &= returns[0][e] == returns[1][e];
    check(same, "the same seed gives the same episodes");
  }
  printf("game_quick: %d passed, %d failed\n", passed, failed);
  return failed ? 1 : 0;
}

/* ---- main ---- */

/* a whole number in [lo, 2^31) from an option's argument, or -1 */
static int int_arg(const char *opt, const char *text, int lo)
{
  char *end;
  long v = strtol(text, &end, 10);
  if (end == text || *end || v < lo || v > 2147483647L) {
    fprintf(stderr, "cartpole: %s expects a whole number >= %d, got '%s'\n", opt, lo, text);
    return -1;
  }
  return (int)v;
}

static void usage(void)
{
  fprintf(stderr, "usage: cartpole [--quick] [--seed N] [--episodes N] [--plot FILE] [AGENT.lua]\n"
                  "  (AGENT.lua defaults to scripts/examples/game/agent.lua)\n");
}

int main(int argc, char **argv)
{
  const char *agent_path = "scripts/examples/game/agent.lua", *plot = NULL;
  int quick_mode = 0, seed = -1, episodes = 0;
  for (int i = 1; i < argc; i++) {
    if (!strcmp(argv[i], "--quick")) {
      quick_mode = 1;
    } else if (!strcmp(argv[i], "--seed") && i + 1 < argc) {
      if ((seed = int_arg("--seed", argv[++i], 0)) < 0) return 2;
    } else if (!strcmp(argv[i], "--episodes") && i + 1 < argc) {
      if ((episodes = int_arg("--episodes", argv[++i], 1)) < 0) return 2;
    } else if (!strcmp(argv[i], "--plot") && i + 1 < argc) {
      plot = argv[++i];
    } else if (argv[i][0] == '-') {
      usage();
      return 2;
    } else {
      agent_path = argv[i];
    }
  }
  if (quick_mode) return quick(agent_path, seed, episodes);

  char err[1024] = "";
  lua_State *L = open_agent(agent_path, err, sizeof err);
  if (!L) {
    fprintf(stderr, "cartpole: %s\n", err);
    return 1;
  }
  int agent = lua_gettop(L);
  hyper h;
  int bad = read_hyper(L, agent, &h, err, sizeof err);
  if (seed >= 0) h.seed = seed;
  if (episodes > 0) h.episodes = episodes;
  run g;
  memset(&g, 0, sizeof g);
  int rc = bad || check_hyper(&h, err, sizeof err) || run_init(&g, L, agent, &h, h.episodes, err, sizeof err) ||
           play(&g, h.episodes, 1, 1, err, sizeof err) || report(&g, agent, plot, err, sizeof err);
  if (rc) fprintf(stderr, "cartpole: %s\n", err);
  else if (g.solved_at < 0) rc = 3;
  run_free(&g);
  lua_close(L);
  return rc;
}
