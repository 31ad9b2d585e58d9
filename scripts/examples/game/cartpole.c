/*
** cartpole.c -- the cart-pole simulation (see cartpole.h); the equations of
** motion are those of Barto, Sutton & Anderson (1983) as Gym's CartPole-v0
** integrates them (explicit Euler, 0.02 s).
*/
#include "cartpole.h"

#include <math.h>

#define GRAVITY 9.8
#define MASS_CART 1.0
#define MASS_POLE 0.1
#define TOTAL_MASS (MASS_CART + MASS_POLE)
#define LENGTH 0.5                       /* half the pole's length */
#define POLE_MASS_LENGTH (MASS_POLE * LENGTH)
#define FORCE_MAG 10.0
#define TAU 0.02
#define THETA_LIMIT (12.0 * 2.0 * 3.14159265358979323846 / 360.0)
#define X_LIMIT 2.4

void cp_rng_seed(cp_rng *r, uint64_t seed) { r->s = seed; }

uint64_t cp_rng_next(cp_rng *r)
{
  uint64_t z = (r->s += 0x9e3779b97f4a7c15ULL);
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
  return z ^ (z >> 31);
}

double cp_rng_uniform(cp_rng *r) { return (double)(cp_rng_next(r) >> 11) * (1.0 / 9007199254740992.0); }

int64_t cp_rng_below(cp_rng *r, int64_t n) { return (int64_t)(cp_rng_uniform(r) * (double)n); }

void cp_reset(cartpole *c, cp_rng *r)
{
  c->x = cp_rng_uniform(r) * 0.1 - 0.05;
  c->x_dot = cp_rng_uniform(r) * 0.1 - 0.05;
  c->theta = cp_rng_uniform(r) * 0.1 - 0.05;
  c->theta_dot = cp_rng_uniform(r) * 0.1 - 0.05;
  c->steps = 0;
  c->done = 0;
  c->truncated = 0;
}

double cp_step(cartpole *c, int action)
{
  double force = action == 1 ? FORCE_MAG : -FORCE_MAG;
  double costheta = cos(c->theta), sintheta = sin(c->theta);
  double temp = (force + POLE_MASS_LENGTH * c->theta_dot * c->theta_dot * sintheta) / TOTAL_MASS;
  double thetaacc = (GRAVITY * sintheta - costheta * temp) /
                    (LENGTH * (4.0 / 3.0 - MASS_POLE * costheta * costheta / TOTAL_MASS));
  double xacc = temp - POLE_MASS_LENGTH * thetaacc * costheta / TOTAL_MASS;
  c->x += TAU * c->x_dot;
  c->x_dot += TAU * xacc;
  c->theta += TAU * c->theta_dot;
  c->theta_dot += TAU * thetaacc;
  c->steps++;
  c->done = c->x < -X_LIMIT || c->x > X_LIMIT || c->theta < -THETA_LIMIT || c->theta > THETA_LIMIT;
  c->truncated = !c->done && c->steps >= CP_MAX_STEPS;
  return 1.0;
}

void cp_observe(const cartpole *c, float obs[CP_OBS])
{
  obs[0] = (float)c->x;
  obs[1] = (float)c->x_dot;
  obs[2] = (float)c->theta;
  obs[3] = (float)c->theta_dot;
}

int cp_running(const cartpole *c) { return !c->done && !c->truncated; }
