-- A single-input model with 2 classes (binary classification) on random data.
local keras = keras or require "keras"
local Dense = keras.layers.Dense
local quick = os.getenv("LKERAS_QUICK")

local model = keras.Sequential{
  Dense{32, activation = "relu", input_dim = 100},
  Dense{1, activation = "sigmoid"},
}
model:compile{optimizer = "rmsprop", loss = "binary_crossentropy", metrics = {"accuracy"}}

-- dummy data
local data = keras.random.random{1000, 100}
local labels = keras.random.randint(2, {1000, 1})

-- train, iterating on the data in batches of 32 samples
model:fit(data, labels, {epochs = quick and 2 or 10, batch_size = 32})
