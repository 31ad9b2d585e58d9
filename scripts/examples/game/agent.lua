-- agent.lua -- the DQN agent of the CartPole game (scripts/examples/game/):
-- its hyperparameters, its Q-network and its report. The game (game.c) loads
-- this file, builds two networks with build(seed) (the online one and the
-- target one), and runs the data path in C; report(run) gets the run's
-- returns at the end.
--
-- DQN (Mnih et al. 2015): a replay buffer of the last replay_size steps,
-- minibatches of batch_size sampled uniformly, targets
-- r + gamma * max_a' Q_target(s', a') (0 past a terminal step; the 200-step
-- time limit is not terminal), a target network copied from the online one
-- every target_sync steps, epsilon-greedy exploration decayed linearly;
-- Double DQN's targets (van Hasselt et al. 2016) when double_dqn is set.
local keras = keras or require "keras"

local agent = {
  seed = 1,                    -- the documented seed (README.md): weights, start states, exploration
  episodes = 600,              -- at most, for make game (the run stops once solved)
  quick_episodes = 30,         -- make test's quick mode,
  quick_learn_start = 256,     -- which learns from its 256th step
  gamma = 0.99,
  lr = 1e-3,                   -- Adam
  batch_size = 64,
  replay_size = 10000,
  learn_start = 1000,          -- steps in the buffer before learning begins
  train_every = 1,             -- one learning step per game step
  target_sync = 100,           -- steps between copies of the online network to the target one
  double_dqn = true,           -- the online network picks the next action, the target one values it
  td_clip = 0,                 -- 0: plain mse; c > 0: TD errors clipped to [-c, c] (a Huber loss's gradient)
  epsilon_start = 1.0,
  epsilon_end = 0.01,
  epsilon_decay_steps = 5000,
}

--- the Q-network: the 4 observations to one Q-value per action (left, right)
function agent.build(seed)
  keras.random.seed(seed)
  local model = keras.models.Sequential()
  model:add(keras.layers.Dense(64, {input_shape = {4}, activation = "relu"}))
  model:add(keras.layers.Dense(64, {activation = "relu"}))
  model:add(keras.layers.Dense(2, {activation = "linear"}))
  model:compile{optimizer = keras.optimizers.Adam{lr = agent.lr}, loss = "mse"}
  return model
end

-- gnuplot's script of the learning curve: each episode's return, the mean of
-- the last 100, and the bar at 195
local function plot_script(run, data_path)
  local title = string.format("CartPole-v0, DQN in lkeras (seed %d): %s", run.seed,
    run.solved_at > 0 and string.format("solved at episode %d", run.solved_at) or "not solved")
  return table.concat({
    "set terminal pngcairo size 800,420 noenhanced font 'sans,10'",
    string.format("set output '%s'", run.plot:gsub("'", "''")),
    string.format("set title '%s'", title),
    "set grid",
    "set key bottom right",
    "set xlabel 'episode'",
    "set ylabel 'return'",
    string.format("set xrange [1:%d]", math.max(2, #run.returns)),
    "set yrange [0:210]",
    string.format("plot '%s' using 1:2 with points pt 7 ps 0.4 lc rgb '#1f77b4' title 'return', \\",
      data_path:gsub("'", "''")),
    string.format("     '%s' using 1:3 with lines lw 2 lc rgb '#ff7f0e' title 'mean of the last 100', \\",
      data_path:gsub("'", "''")),
    "     195 with lines dt 2 lc rgb '#2ca02c' title 'solved (195)'",
  }, "\n") .. "\n"
end

local function plot(run)
  if os.execute("command -v gnuplot >/dev/null 2>&1") ~= true then
    print("no plot: the program 'gnuplot' was not found on PATH; install the Debian package gnuplot-nox")
    return
  end
  local data_path, script_path = os.tmpname(), os.tmpname()
  local f = assert(io.open(data_path, "w"))
  for e, r in ipairs(run.returns) do f:write(string.format("%d %d %.3f\n", e, r, run.mean100[e])) end
  f:close()
  f = assert(io.open(script_path, "w"))
  f:write(plot_script(run, data_path))
  f:close()
  local ok = os.execute("gnuplot " .. script_path)
  os.remove(data_path)
  os.remove(script_path)
  if ok ~= true then error("agent.report: gnuplot could not write " .. run.plot) end
  print("learning curve: " .. run.plot)
end

--- the end of a run: run.returns, run.mean100 (by episode), run.solved_at
-- (-1: not solved), run.wall_s and run.cpu_s (seconds), run.steps, run.learn_steps, run.seed, run.plot
function agent.report(run)
  if run.solved_at > 0 then
    print(string.format("solved in %d episodes (mean return %.1f over episodes %d-%d), seed %d, "
      .. "%d steps, %d learning steps, %.1f s (CPU %.1f s)", run.solved_at, run.mean100[run.solved_at],
      run.solved_at - 99, run.solved_at, run.seed, run.steps, run.learn_steps, run.wall_s, run.cpu_s))
  else
    print(string.format("not solved in %d episodes (best mean of 100: %.1f), seed %d, %.1f s (CPU %.1f s)",
      #run.returns, math.max(table.unpack(run.mean100)), run.seed, run.wall_s, run.cpu_s))
  end
  if run.plot then plot(run) end
end

return agent
