-- Checkpoint and resume: train with ModelCheckpoint writing the whole model
-- (weights, optimizer state, training config) after every epoch, stop
-- halfway as if the process had died, then resume from the last checkpoint
-- in a fresh model. The resumed run ends with exactly the weights of a run
-- that was never interrupted: the optimizer's slots and iteration count come
-- back from the file, and the random generator's state (shuffling, dropout)
-- is saved beside it. Run: lkeras scripts/examples/checkpoint_resume.lua [dir]
local keras = keras or require "keras"
local layers = keras.layers
local quick = os.getenv("LKERAS_QUICK")

local dir = arg and arg[1]
if not dir then
  local p = io.popen("mktemp -d /tmp/lkeras-checkpoints-XXXXXX")
  dir = p:read("l")
  p:close()
end
local epochs, half = quick and 4 or 10, quick and 2 or 5

keras.random.seed(7)
local n = quick and 600 or 4000
local x = keras.random.random{n, 16}
local y = keras.utils.to_categorical((x:sum(1) * 1.5):round():clip(0, 9), 10)   -- 10 classes from the row sums

local function build()
  local model = keras.Sequential{
    layers.Dense{64, activation = "relu", input_shape = {16}},
    layers.Dropout(0.3),
    layers.Dense{10, activation = "softmax"},
  }
  model:compile{optimizer = keras.optimizers.Adam{lr = 0.003}, loss = "categorical_crossentropy",
                metrics = {"accuracy"}}
  return model
end

-- keeps the random generator's state next to each checkpoint
local RngCheckpoint = {}
function RngCheckpoint:on_epoch_end(epoch)
  local f = assert(io.open(string.format("%s/rng.%02d", dir, epoch + 1), "wb"))
  f:write(keras.random.get_state())
  f:close()
end

local start = keras.random.get_state()

-- 1. the run that is "interrupted" after `half` epochs
local model = build()
model:fit(x, y, {epochs = half, batch_size = 32, verbose = 2, validation_split = 0.1, callbacks = {
  keras.callbacks.ModelCheckpoint(dir .. "/ckpt.{epoch:02d}-{val_loss:.3f}.lkm", {verbose = 1}),
  RngCheckpoint}})

-- 2. resume: the newest checkpoint, its generator state, the next epoch
local newest
for name in io.popen("ls " .. dir):lines() do
  if name:match("^ckpt%.%d%d%-.*%.lkm$") then newest = name end
end
print("resuming from " .. newest)
local resumed = keras.models.load_model(dir .. "/" .. newest)
local done = tonumber(newest:match("^ckpt%.(%d%d)"))
local f = assert(io.open(string.format("%s/rng.%02d", dir, done), "rb"))
keras.random.set_state(f:read("a"))
f:close()
print(string.format("optimizer: %s after %d steps", resumed.optimizer.class_name, resumed.optimizer.iterations))
resumed:fit(x, y, {epochs = epochs, initial_epoch = done, batch_size = 32, verbose = 2, validation_split = 0.1})

-- 3. the same training without the interruption
keras.random.set_state(start)
local whole = build()
whole:fit(x, y, {epochs = epochs, batch_size = 32, verbose = 0, validation_split = 0.1})

local a, b = whole:get_weights(), resumed:get_weights()
local worst = 0
for i = 1, #a do worst = math.max(worst, (a[i] - b[i]):abs():max()) end
print(string.format("largest difference between the resumed and the unbroken run: %g", worst))
if worst ~= 0 then error("the resumed run differs from the unbroken run") end
print("resumed run matches the unbroken run bit for bit")
if not (arg and arg[1]) then os.execute("rm -rf '" .. dir .. "'") end
