-- Keras FAQ: "How can I obtain the output of an intermediate layer?"
-- Two ways, as the FAQ gives them: a Model from the input to the layer's
-- output, or a backend function K["function"]; with K.learning_phase() the
-- same function runs the layers as in training (Dropout active) or as in
-- inference. Small random data; LKERAS_QUICK=1 trains for one epoch.
local keras = keras or require "keras"
local K = keras.backend
local L = keras.layers

keras.random.seed(42)
local quick = os.getenv("LKERAS_QUICK") == "1"

-- the largest absolute difference (a number, whether max() gives a number or a 0-d tensor)
local function maxdiff(p, q)
  local m = (p - q):abs():max()
  return type(m) == "number" and m or m:totable()
end

local x = keras.random.random{512, 20}
local y = keras.utils.to_categorical(keras.random.randint(3, {512, 1}), 3)

local model = keras.Sequential{
  L.Dense(32, {activation = "relu", input_shape = {20}, name = "hidden"}),
  L.Dropout(0.5),
  L.Dense(3, {activation = "softmax"}),
}
model:compile{optimizer = "adam", loss = "categorical_crossentropy", metrics = {"accuracy"}}
model:fit(x, y, {epochs = quick and 1 or 10, batch_size = 32, verbose = 0})

-- 1. a model whose output is the intermediate layer's
local hidden = model:get_layer("hidden")
local intermediate = keras.Model{inputs = model.input, outputs = hidden.output}
local a = intermediate:predict(x:slice(1, 4))

-- 2. a backend function of the model's input
local get_hidden = K["function"]({model.input}, {hidden.output})
local b = get_hidden({x:slice(1, 4)})[1]
assert(maxdiff(a, b) < 1e-6, "the two ways disagree")
print("hidden layer output (4 samples):")
print(b)

-- 3. with the learning phase: the Dropout layer's output in training (1) and test (0) mode
local get_dropped = K["function"]({model.input, K.learning_phase()}, {model.layers[2].output})
local train_out = get_dropped({x:slice(1, 4), 1})[1]
local test_out = get_dropped({x:slice(1, 4), 0})[1]
assert(maxdiff(test_out, b) < 1e-6, "phase 0: Dropout is the identity")
local zeros, total = 0, 0
for _, row in ipairs(train_out:totable()) do
  for _, v in ipairs(row) do
    total = total + 1
    if v == 0 then zeros = zeros + 1 end
  end
end
print(string.format("phase 1: %d of %d values are zero (Dropout 0.5 and the relu)", zeros, total))
