-- A single-input model with 10 classes (categorical classification) on random data.
local keras = keras or require "keras"
local Dense = keras.layers.Dense
local quick = os.getenv("LKERAS_QUICK")
local check = dofile(arg[0]:match("^(.-)[^/]*$") .. "lib/check.lua")

keras.random.seed(1337)

local model = keras.Sequential{
  Dense{32, activation = "relu", input_dim = 100},
  Dense{10, activation = "softmax"},
}
model:compile{optimizer = "rmsprop", loss = "categorical_crossentropy", metrics = {"accuracy"}}

-- dummy data
local data = keras.random.random{1000, 100}
local labels = keras.random.randint(10, {1000, 1})

-- convert labels to categorical one-hot encoding
local one_hot_labels = keras.utils.to_categorical(labels, 10)

-- train, iterating on the data in batches of 32 samples
local epochs = quick and 2 or 10
local h = model:fit(data, one_hot_labels, {epochs = epochs, batch_size = 32})

-- what the example claims: one-hot labels of 10 classes, and it trains
check.shape(one_hot_labels.shape, {1000, 10}, "the one-hot labels")
check.epochs(h, epochs)
check.falls(h)
