-- The Sequential model: a list of layers given to the constructor, or added
-- one at a time with :add (Keras's "Getting started with the Sequential model").
local keras = keras or require "keras"
local Dense, Activation = keras.layers.Dense, keras.layers.Activation

local model = keras.Sequential{
  Dense{32, input_shape = {784}},
  Activation"relu",
  Dense{10},
  Activation"softmax",
}
model:summary()

local model2 = keras.Sequential()
model2:add(Dense{32, input_dim = 784})
model2:add(Activation"relu")
model2:summary()

-- the three ways of giving the input shape are the same model
local a = keras.Sequential{Dense{32, input_shape = {784}}}
local b = keras.Sequential{Dense{32, input_dim = 784}}
local c = keras.Sequential{Dense{32, batch_input_shape = {keras.None, 784}}}
assert(a:count_params() == b:count_params() and b:count_params() == c:count_params())
print("params:", a:count_params())
