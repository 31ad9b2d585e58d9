-- resume_check.lua DIR PHASE: a checkpoint written by rank 0 resumes with
-- another number of ranks (tests/dist/run.sh runs "save" with -np 2, then
-- "resume" with -np 3). save: 2 epochs, ModelCheckpoint to DIR/ckpt.lkm
-- (written by rank 0 only). resume: every rank loads it, wraps the loaded
-- optimizer again and trains 1 more epoch; each rank writes its weights
-- and the optimizer's iteration count to DIR/resumed.rank<r>.
local keras = require("keras")
local L = keras.layers
local dist = keras.distributed
dist.init()
local dir, phase = arg[1], arg[2]
keras.random.seed(99)
local x = keras.random.normal({90, 6})
local y = keras.random.normal({90, 2})
if phase == "save" then
  local model = keras.Sequential{L.Dense(8, {activation = "tanh", input_shape = {6}}), L.Dense(2)}
  model:compile{optimizer = dist.DistributedOptimizer(keras.optimizers.Adam{lr = 0.01}), loss = "mse"}
  model:fit(x, y, {batch_size = 10, epochs = 2, verbose = 0,
    callbacks = {dist.BroadcastGlobalVariablesCallback(0), keras.callbacks.ModelCheckpoint(dir .. "/ckpt.lkm"),
                 keras.callbacks.CSVLogger(dir .. "/log.csv")}})
else
  local model = keras.models.load_model(dir .. "/ckpt.lkm")
  dist.DistributedOptimizer(model.optimizer)
  local it0 = model.optimizer.iterations
  model:fit(x, y, {batch_size = 10, epochs = 1, verbose = 0, callbacks = {dist.BroadcastGlobalVariablesCallback(0)}})
  local f = assert(io.open(string.format("%s/resumed.rank%d", dir, dist.rank()), "w"))
  f:write(string.format("iterations %d -> %d\n", it0, model.optimizer.iterations))
  for _, w in ipairs(model:get_weights()) do
    local t = w:reshape{-1}
    for i = 1, t:size() do f:write(string.format("%.9g\n", t:get(i))) end
  end
  f:close()
end
