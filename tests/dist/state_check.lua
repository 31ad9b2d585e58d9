-- The shared state's life, run by tests/dist/run.sh under mpirun -np 2 on one
-- host: fit keeps the weights and optimizer slots in the host's shared window
-- (one copy for every rank) and gives them back to each process at its end,
-- after an error in a callback too; a second model's fit, with a larger
-- window, leaves the first model's weights as they were. Prints "ok rank R".
local keras = require("keras")
local L = keras.layers
local dist = keras.distributed
dist.init()
keras.random.seed(7)

local function mlp(hidden)
  local m = keras.Sequential{L.Dense(hidden, {activation = "tanh", input_shape = {6}}), L.Dense(2)}
  m:compile{optimizer = dist.DistributedOptimizer(keras.optimizers.Adam{lr = 0.01}), loss = "mse"}
  return m
end

local function flat(m)
  local out = {}
  for _, w in ipairs(m:get_weights()) do
    local t = w:reshape{-1}
    for i = 1, t:size() do out[#out + 1] = t:get(i) end
  end
  return out
end

-- every rank holds the same weights: the gathered copies agree bit for bit
local function same_on_every_rank(m, what)
  for _, w in ipairs(m:get_weights()) do
    local t = w:reshape{-1}
    local g = dist.allgather(t):reshape{dist.size(), t:size()}
    for r = 2, dist.size() do
      for i = 1, t:size() do
        assert(g:get(r, i) == g:get(1, i), what .. ": rank " .. (r - 1) .. " differs from rank 0")
      end
    end
  end
end

local x, y = keras.random.normal({64, 6}), keras.random.normal({64, 2})
local sync = dist.BroadcastGlobalVariablesCallback(0)

local a = mlp(8)
a:fit(x, y, {batch_size = 8, epochs = 2, verbose = 0, callbacks = {sync}})
local steps = select(7, a._trainer:dist_stats())
assert(steps == 8, "fit took " .. tostring(steps) .. " of its 8 steps (64 rows, 16 a step, 2 epochs) "
  .. "on the shared state")
-- every step even (16 rows over 2 ranks): each taken in chunks, any rank updating any chunk
local chunked = select(8, a._trainer:dist_stats())
assert(chunked == 8, "fit took " .. tostring(chunked) .. " of its 8 steps in chunks")
same_on_every_rank(a, "after fit")

-- a second fit of the same model shares the state again
a:fit(x, y, {batch_size = 8, epochs = 1, verbose = 0})
assert(select(7, a._trainer:dist_stats()) == 12, "the second fit did not take its 4 steps on the shared state")
same_on_every_rank(a, "after the second fit")
local before, pred = flat(a), a:predict(x):reshape{-1}

-- a larger model: its fit makes a larger window, the old one ends
local b = mlp(300)
b:fit(x, y, {batch_size = 8, epochs = 1, verbose = 0, callbacks = {dist.BroadcastGlobalVariablesCallback(0)}})
assert(select(7, b._trainer:dist_stats()) > 0, "the second model's fit did not use the shared state")
local after, pred2 = flat(a), a:predict(x):reshape{-1}
for i = 1, #before do assert(after[i] == before[i], "the first model's weight " .. i .. " changed") end
for i = 1, pred:size() do assert(pred2:get(i) == pred:get(i), "the first model's prediction " .. i .. " changed") end

-- a callback that raises on every rank at the end of the second epoch: fit
-- fails with its message, the state is back, the ranks agree and fit again works
local c = mlp(8)
local ok, err = pcall(c.fit, c, x, y, {batch_size = 8, epochs = 3, verbose = 0, callbacks = {
  dist.BroadcastGlobalVariablesCallback(0),
  keras.callbacks.LambdaCallback{on_epoch_end = function(epoch) if epoch == 1 then error("stop here") end end}}})
assert(not ok and tostring(err):find("stop here", 1, true), "fit: " .. tostring(err))
same_on_every_rank(c, "after the error")
local l0 = c:evaluate(x, y, {verbose = 0})
local s0 = select(7, c._trainer:dist_stats())
local h = c:fit(x, y, {batch_size = 8, epochs = 2, verbose = 0})
assert(select(7, c._trainer:dist_stats()) == s0 + 8,
  "the fit after the error did not take its 8 steps on the shared state")
assert(h.history.loss[2] < l0, "fit after the error did not train: " .. h.history.loss[2] .. " >= " .. l0)
same_on_every_rank(c, "fit after the error")
print("ok rank " .. dist.rank())
