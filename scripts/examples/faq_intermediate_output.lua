-- Keras FAQ: "How can I obtain the output of an intermediate layer?" Both of
-- the FAQ's ways: a new Model over the layer's output, and K["function"]
-- (Keras's K.function; `function` is a Lua keyword) -- with the learning phase
-- as an extra input, so a Dropout in between acts as in training (1) or as at
-- test time (0).
--   lkeras scripts/examples/faq_intermediate_output.lua
local keras = keras or require "keras"
local K, L = keras.backend, keras.layers

keras.random.seed(3)
local model = keras.Sequential{
  L.Dense(32, {activation = "relu", input_shape = {16}, name = "hidden"}),
  L.Dropout(0.5),
  L.Dense(8, {activation = "relu", name = "my_layer"}),
  L.Dense(1, {activation = "sigmoid"}),
}
model:compile{optimizer = "adam", loss = "binary_crossentropy"}
local x = keras.random.random{64, 16}
local y = keras.tensor.zeros{64, 1}
model:fit(x, y, {epochs = 2, verbose = 0})

-- 1. a model that ends at the layer
local layer_name = "my_layer"
local intermediate_layer_model = keras.Model{inputs = model.input, outputs = model:get_layer(layer_name).output}
local intermediate_output = intermediate_layer_model:predict(x)
print("intermediate output shape:", intermediate_output.shape[1], intermediate_output.shape[2])

-- 2. a backend function from the input to the third layer's output
local get_3rd_layer_output = K["function"]({model.layers[1].input}, {model.layers[3].output})
local layer_output = get_3rd_layer_output({x})[1]
local diff = (layer_output - intermediate_output):abs():max()
print(string.format("K.function and the intermediate model agree: max difference %g", diff))
assert(diff < 1e-6)

-- 3. with the learning phase: 0 is test mode (no dropout), 1 training mode
get_3rd_layer_output = K["function"]({model.layers[1].input, K.learning_phase()}, {model.layers[3].output})
local test_mode = get_3rd_layer_output({x, 0})[1]
local train_mode = get_3rd_layer_output({x, 1})[1]
print(string.format("test mode vs the model: %g; train mode vs test mode: %g",
                    (test_mode - intermediate_output):abs():max(), (train_mode - test_mode):abs():max()))
assert((test_mode - intermediate_output):abs():max() < 1e-6, "test mode has no dropout")
assert((train_mode - test_mode):abs():max() > 1e-3, "train mode drops units")
