-- rng_check.lua: during a distributed fit each rank draws from a stream of
-- its own (Dropout's masks differ between ranks), and after it the common
-- stream is the same on every rank (the next shuffle agrees), with shuffling
-- and without. Prints "ok" on every rank.
local keras = require("keras")
local L = keras.layers
local dist = keras.distributed
dist.init()
keras.random.seed(3)
local x = keras.random.normal({64, 5})
local y = keras.random.normal({64, 1})
local model = keras.Sequential{L.Dense(8, {input_shape = {5}}), L.Dropout(0.5), L.Dense(1)}
model:compile{optimizer = dist.DistributedOptimizer(keras.optimizers.SGD{lr = 0.01}), loss = "mse"}
for _, shuffle in ipairs{true, false} do
  local inside = {}
  local probe = keras.callbacks.LambdaCallback{on_batch_end = function()
    inside[#inside + 1] = keras.random.random({1}):get(1)
  end}
  model:fit(x, y, {batch_size = 8, epochs = 2, verbose = 0, shuffle = shuffle, callbacks = {probe}})
  -- inside the epochs: every rank's own stream; two epochs: two different streams
  local mine = keras.tensor{inside[1], inside[#inside]}
  local all = dist.allgather(mine:reshape{1, 2})
  for r = 1, dist.size() - 1 do
    assert(all:get(1, 1) ~= all:get(r + 1, 1), "rank streams are the same during fit")
  end
  assert(inside[1] ~= inside[#inside // 2 + 1], "the same stream in both epochs")
  -- after: the common stream, the same everywhere
  local after = keras.random.random({3})
  local g = dist.allgather(after:reshape{1, 3})
  for r = 2, dist.size() do
    for k = 1, 3 do assert(g:get(r, k) == g:get(1, k), "the common stream differs after fit") end
  end
end
print("ok rank " .. dist.rank())
