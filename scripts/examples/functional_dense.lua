-- The functional API: a tensor in, a tensor out, layers called on tensors.
-- Three Dense layers on Input{shape={784}} (Keras's first functional example).
local keras = keras or require "keras"
local Dense = keras.layers.Dense
local quick = os.getenv("LKERAS_QUICK")
local check = dofile(arg[0]:match("^(.-)[^/]*$") .. "lib/check.lua")

-- this returns a tensor
local inputs = keras.Input{shape = {784}}

-- a layer instance is callable on a tensor, and returns a tensor
local x = Dense{64, activation = "relu"}(inputs)
x = Dense{64, activation = "relu"}(x)
local predictions = Dense{10, activation = "softmax"}(x)

-- this creates a model that includes the Input layer and three Dense layers
local model = keras.Model{inputs = inputs, outputs = predictions}
model:compile{optimizer = "rmsprop", loss = "categorical_crossentropy", metrics = {"accuracy"}}
model:summary()

local n = quick and 256 or 2048
local data = keras.random.random{n, 784}
local labels = keras.utils.to_categorical(keras.random.randint(10, {n, 1}), 10)
local epochs = quick and 1 or 5
local h = model:fit(data, labels, {epochs = epochs, batch_size = 32})   -- starts training

-- what the example claims: a model from a tensor in to a tensor out, whose output is a softmax over 10
check.epochs(h, epochs)
check.shape(model.output_shape, {keras.None, 10}, "the model's output")
local p = model:predict(data)
check.shape(p.shape, {n, 10}, "the predictions")
check.close(p:sum(-1), keras.tensor.ones{n}, 1e-5, "the sums of the softmax rows")
