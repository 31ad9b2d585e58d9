-- Keras 2.2.4's examples/antirectifier.py: a custom layer (Layer:extend) that
-- replaces ReLU. It centres its input, L2-normalizes it, and returns the
-- positive part and the negative part side by side, so nothing is thrown
-- away and the output is twice as wide. Small-data translation: instead of
-- MNIST, 10 classes of noisy prototypes in 64 dimensions.
local keras = keras or require "keras"
local K, L = keras.backend, keras.layers
local quick = os.getenv("LKERAS_QUICK")

local Antirectifier = L.Layer:extend("Antirectifier")

function Antirectifier.compute_output_shape(_, input_shape)   -- (self unused)
  local shape = {}
  for i, d in ipairs(input_shape) do shape[i] = d end
  shape[#shape] = shape[#shape] * 2
  return shape
end

function Antirectifier.call(_, inputs)
  inputs = inputs - K.mean(inputs, 1, true)
  inputs = K.l2_normalize(inputs, 1)
  local pos = K.relu(inputs)
  local neg = K.relu(-inputs)
  return K.concatenate({pos, neg}, 1)
end

-- the data: sample = prototype of its class + noise
keras.random.seed(1337)
local num_classes, dim = 10, 64
local prototypes = keras.random.normal({num_classes, dim}, 0, 1)
local function make(n)
  local labels = keras.random.randint(num_classes, {n})
  local x = keras.random.normal({n, dim}, 0, 2.5)
  for i = 1, n do x[i]:assign(x[i] + prototypes[labels:get(i) + 1]) end
  return x, keras.utils.to_categorical(labels, num_classes)
end
local x_train, y_train = make(quick and 2000 or 6000)
local x_test, y_test = make(1000)

local model = keras.Sequential{
  L.Dense{256, input_shape = {dim}},
  Antirectifier(),
  L.Dropout(0.1),
  L.Dense(256),
  Antirectifier(),
  L.Dropout(0.1),
  L.Dense(num_classes),
  L.Activation("softmax"),
}
model:summary()
model:compile{loss = "categorical_crossentropy", optimizer = "rmsprop", metrics = {"accuracy"}}
model:fit(x_train, y_train, {batch_size = 128, epochs = quick and 3 or 20, verbose = quick and 2 or 1,
                             validation_data = {x_test, y_test}})
local loss, acc = model:evaluate(x_test, y_test, {verbose = 0})
print(string.format("test loss %.4f, test accuracy %.4f", loss, acc))
if acc < 0.6 then error(string.format("antirectifier: the model did not learn (test accuracy %.4f)", acc)) end
