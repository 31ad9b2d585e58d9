-- A single-input model with 2 classes (binary classification) on random data.
local keras = keras or require "keras"
local Dense = keras.layers.Dense
local quick = os.getenv("LKERAS_QUICK")
local check = dofile(arg[0]:match("^(.-)[^/]*$") .. "lib/check.lua")

keras.random.seed(1337)

local model = keras.Sequential{
  Dense{32, activation = "relu", input_dim = 100},
  Dense{1, activation = "sigmoid"},
}
model:compile{optimizer = "rmsprop", loss = "binary_crossentropy", metrics = {"accuracy"}}

-- dummy data
local data = keras.random.random{1000, 100}
local labels = keras.random.randint(2, {1000, 1})

-- train, iterating on the data in batches of 32 samples
local epochs = quick and 2 or 10
local h = model:fit(data, labels, {epochs = epochs, batch_size = 32})

-- what the example claims: it trains (random labels: the model can only memorise them)
check.epochs(h, epochs)
check.epochs(h, epochs, "acc")
check.falls(h)
