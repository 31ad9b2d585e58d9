-- keras.distributed's correctness check, run under mpirun by tests/dist/run.sh
-- (and with one process as the reference and the control):
--   lkeras tests/dist/train_check.lua MODEL OPT N BATCH OUT [overlap | serial]
-- trains MODEL (mlp | cnn | lstm) with OPT (sgd | adam | rmsprop | nadam) on N seeded
-- samples, 3 epochs with shuffling, batch BATCH per process, and writes the
-- final weights, every epoch's loss, evaluate's loss and the predictions
-- to OUT.rank<r> (one number a line). overlap / serial: the reduction in
-- buckets of 26 floats and up (at most 78), overlapped with the backward
-- pass or after it.
local keras = require("keras")
local L = keras.layers
local dist = keras.distributed
dist.init()
local model_kind, opt_kind, n, batch, out = arg[1], arg[2], tonumber(arg[3]), tonumber(arg[4]), arg[5]
n, batch = math.tointeger(n), math.tointeger(batch)
keras.random.seed(1234)
local x, y, model
if model_kind == "mlp" then
  x = keras.random.normal({n, 12})
  y = keras.utils.to_categorical(keras.random.randint(0, 3, {n}), 3)
  model = keras.Sequential{L.Dense(16, {activation = "tanh", input_shape = {12}}), L.Dense(3, {activation = "softmax"})}
elseif model_kind == "cnn" then
  x = keras.random.normal({n, 8, 8, 1})
  y = keras.utils.to_categorical(keras.random.randint(0, 3, {n}), 3)
  model = keras.Sequential{L.Conv2D(4, 3, {activation = "relu", input_shape = {8, 8, 1}}), L.MaxPooling2D(2),
                           L.Flatten(), L.Dense(3, {activation = "softmax"})}
elseif model_kind == "lstm" then
  x = keras.random.normal({n, 5, 3})
  y = keras.random.normal({n, 2})
  model = keras.Sequential{L.LSTM(6, {input_shape = {5, 3}}), L.Dense(2)}
else
  error("unknown model " .. tostring(model_kind))
end
local opt
if opt_kind == "sgd" then opt = keras.optimizers.SGD{lr = 0.05, momentum = 0.9, nesterov = true}
elseif opt_kind == "adam" then opt = keras.optimizers.Adam{lr = 0.01}
elseif opt_kind == "rmsprop" then opt = keras.optimizers.RMSprop{lr = 0.01}
elseif opt_kind == "nadam" then opt = keras.optimizers.Nadam{lr = 0.01}
else error("unknown optimizer " .. tostring(opt_kind)) end
local dopt
if arg[6] == "overlap" or arg[6] == "serial" then
  dopt = dist.DistributedOptimizer(opt, {overlap = arg[6] == "overlap", first_bucket_mb = 104 / 1048576,
                                         fusion_mb = 312 / 1048576})
else
  dopt = dist.DistributedOptimizer(opt)
end
model:compile{optimizer = dopt, loss = model_kind == "lstm" and "mse"
  or "categorical_crossentropy"}
local h = model:fit(x, y, {batch_size = batch, epochs = 3, shuffle = true, verbose = 0,
                           callbacks = {dist.BroadcastGlobalVariablesCallback(0)}})
local f = assert(io.open(string.format("%s.rank%d", out, dist.rank()), "w"))
for _, v in ipairs(h.history.loss) do f:write(string.format("loss %.17g\n", v)) end
for _, w in ipairs(model:get_weights()) do
  local t = w:reshape{-1}
  for i = 1, t:size() do f:write(string.format("%.9g\n", t:get(i))) end
end
-- the optimizer's slots (every rank's whole after the epochs, also where the
-- step was split over the ranks)
for _, w in ipairs(model.optimizer:get_slots()) do
  local t = w:reshape{-1}
  for i = 1, t:size() do f:write(string.format("%.9g\n", t:get(i))) end
end
-- forced split on one host: the steps ran on the shared state (the weights
-- and slots one copy for the host)
if os.getenv("LKERAS_DIST_SHARD") == "1" and dist.size() > 1 and os.getenv("LKERAS_DIST_SHM") ~= "0" then
  assert(select(7, model._trainer:dist_stats()) > 0, "the split step did not run on the shared state")
  local chunked = select(8, model._trainer:dist_stats())
  if os.getenv("LKERAS_DIST_EARLY") == "0" then assert(chunked == 0, "chunked steps with LKERAS_DIST_EARLY=0")
  else assert(chunked > 0, "no step was taken in chunks") end
end
-- evaluate and predict: each rank its share of the rows, reduced and gathered
if arg[6] == "overlap" and dist.size() > 1 then
  assert(select(4, model._trainer:dist_stats()) > 1, "the overlap cut one bucket only")
end
f:write(string.format("loss_eval %.17g\n", model:evaluate(x, y, {batch_size = 32, verbose = 0})))
local p = model:predict(x, {batch_size = 32}):reshape{-1}
for i = 1, p:size() do f:write(string.format("%.9g\n", p:get(i))) end
f:close()
