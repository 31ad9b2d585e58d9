-- Load a model saved by an earlier run and carry on with it: predict, look
-- at its training configuration, train it further, save it again. With no
-- argument it loads tests/fixtures/old_format_v1.lkm, a model saved by an
-- earlier lkeras (model-file format version 1); give a path to load another
-- (.lkm, or a Keras 2 .h5 file).
-- Run: lkeras scripts/examples/load_saved_model.lua [model.lkm|model.h5]
local keras = keras or require "keras"

local path = arg and arg[1] or "tests/fixtures/old_format_v1.lkm"
local model = keras.models.load_model(path)
print("loaded " .. path)
model:summary()

if model.optimizer then
  print(string.format("compiled with %s (lr %g) after %d steps; loss %s; metrics: %s", model.optimizer.class_name,
    keras.backend.get_value(model.optimizer.lr), model.optimizer.iterations, tostring(model.loss),
    table.concat(model.metrics_names, ", ")))
end

-- predictions on made-up inputs of the right shape
local shape = {4}
for i = 2, #model.inputs[1].shape do shape[i] = model.inputs[1].shape[i] end
keras.random.seed(1)
local x = keras.random.uniform(shape, -1, 1)
print("predictions:")
print(model:predict(x))

-- train on a little more data, then save it in both formats
if model.optimizer and #model.outputs == 1 then
  local out = model.outputs[1].shape
  local k = out[#out]
  local y = keras.utils.to_categorical(keras.random.randint(k, {4}), k)
  local before = model.optimizer.iterations
  model:fit(x, y, {epochs = 2, verbose = 0})
  print(string.format("trained on: %d -> %d optimizer steps", before, model.optimizer.iterations))
end
local p = io.popen("mktemp -d /tmp/lkeras-load-XXXXXX")
local dir = p:read("l")
p:close()
model:save(dir .. "/again.lkm")
model:save(dir .. "/again.h5")
local back = keras.models.load_model(dir .. "/again.h5")
local diff = (back:predict(x) - model:predict(x)):abs():max()
print(string.format("saved as .lkm and .h5; the .h5 copy predicts the same (largest difference %g)", diff))
os.execute("rm -rf '" .. dir .. "'")
if diff ~= 0 then error("the reloaded model predicts differently") end
