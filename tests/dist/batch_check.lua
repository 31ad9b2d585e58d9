-- keras.distributed with train_on_batch and fit_generator (Horovod's form:
-- every rank calls them with its own rows), run under mpirun by
-- tests/dist/run.sh and with one process as the reference and the control:
--   lkeras tests/dist/batch_check.lua MODE N GLOBAL OUT [plain]
-- MODE: onbatch | generator. N seeded samples, 3 epochs of global batches of
-- GLOBAL rows in order; each rank takes its share of every global batch
-- (uneven where GLOBAL is not a multiple of the ranks). Writes every step's
-- (onbatch) or epoch's (generator) loss and accuracy, then the final weights,
-- to OUT.rank<r> (one number a line), for compare.lua. plain: the optimizer
-- without DistributedOptimizer (the control: each rank steps on its own rows).
local keras = require("keras")
local L = keras.layers
local dist = keras.distributed
dist.init()
local mode, n, global, out = arg[1], math.tointeger(tonumber(arg[2])), math.tointeger(tonumber(arg[3])), arg[4]
local plain = arg[5] == "plain"
local size, rank = dist.size(), dist.rank()
keras.random.seed(4321)
local x = keras.random.normal({n, 12})
local y = keras.utils.to_categorical(keras.random.randint(0, 3, {n}), 3)
local model = keras.Sequential{L.Dense(16, {activation = "tanh", input_shape = {12}}),
                               L.Dense(3, {activation = "softmax"})}
local opt = keras.optimizers.Adam{lr = 0.01}
model:compile{optimizer = plain and opt or dist.DistributedOptimizer(opt),
              loss = "categorical_crossentropy", metrics = {"accuracy"}}

-- this rank's rows of the global batch of g rows starting at row a (from 1)
local function mine(a, g)
  local base, rem = g // size, g % size
  local first = a + rank * base + math.min(rank, rem)
  return first, first + base + (rank < rem and 1 or 0) - 1
end

local f = assert(io.open(string.format("%s.rank%d", out, rank), "w"))
if mode == "onbatch" then
  for _ = 1, 3 do
    for a = 1, n, global do
      local lo, hi = mine(a, math.min(global, n - a + 1))
      local loss, acc = model:train_on_batch(x:slice(lo, hi), y:slice(lo, hi))
      f:write(string.format("loss %.17g\nloss_acc %.17g\n", loss, acc))
    end
  end
elseif mode == "generator" then
  local a = 1
  local function gen()
    if a > n then a = 1 end
    local lo, hi = mine(a, math.min(global, n - a + 1))
    a = a + global
    return x:slice(lo, hi), y:slice(lo, hi)
  end
  local steps = (n + global - 1) // global
  local h = model:fit_generator(gen, {steps_per_epoch = steps, epochs = 3, verbose = 0})
  for e = 1, 3 do f:write(string.format("loss %.17g\nloss_acc %.17g\n", h.history.loss[e], h.history.acc[e])) end
else
  error("unknown mode " .. tostring(mode))
end
for _, w in ipairs(model:get_weights()) do
  local t = w:reshape{-1}
  for i = 1, t:size() do f:write(string.format("%.9g\n", t:get(i))) end
end
f:close()
