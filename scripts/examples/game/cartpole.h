/*
** cartpole.h -- the cart-pole balancing task of Barto, Sutton & Anderson (1983),
** with the constants, the Euler integration and the termination of Gym's
** CartPole-v0: gravity 9.8, cart mass 1.0, pole mass 0.1, pole half-length 0.5,
** force 10 N, time step 0.02 s; an episode ends when |theta| > 12 degrees or
** |x| > 2.4, or after 200 steps; every step earns a reward of 1.
**
** Also the game's random numbers (splitmix64): the start states, the agent's
** exploration and the replay sampling all draw from seeded generators, so a run
** is reproducible from its seed.
*/
#ifndef CARTPOLE_H
#define CARTPOLE_H

#include <stdint.h>

#define CP_OBS 4          /* x, x_dot, theta, theta_dot */
#define CP_ACTIONS 2      /* 0: push left, 1: push right */
#define CP_MAX_STEPS 200  /* CartPole-v0's time limit */

typedef struct cp_rng { uint64_t s; } cp_rng;

void cp_rng_seed(cp_rng *r, uint64_t seed);
uint64_t cp_rng_next(cp_rng *r);
double cp_rng_uniform(cp_rng *r);             /* [0, 1) */
int64_t cp_rng_below(cp_rng *r, int64_t n);   /* 0 .. n-1, n >= 1 */

typedef struct cartpole {
  double x, x_dot, theta, theta_dot;
  int steps;       /* steps taken in this episode */
  int done;        /* the pole fell or the cart left the track */
  int truncated;   /* the episode reached CP_MAX_STEPS without falling */
} cartpole;

/* a new episode: each state variable uniform in [-0.05, 0.05] */
void cp_reset(cartpole *c, cp_rng *r);
/* one step of 0.02 s with action 0 or 1; returns the reward (1) */
double cp_step(cartpole *c, int action);
/* the observation as floats: x, x_dot, theta, theta_dot */
void cp_observe(const cartpole *c, float obs[CP_OBS]);
/* 1 while the episode goes on */
int cp_running(const cartpole *c);

#endif
