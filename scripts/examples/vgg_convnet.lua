-- VGG-like convnet (the Keras guide's seed example): two Conv2D(32, 3x3) +
-- MaxPooling2D + Dropout, two Conv2D(64, 3x3) + MaxPooling2D + Dropout,
-- Flatten, Dense(256) + Dropout, Dense(10, softmax); SGD with Nesterov
-- momentum; random 100x100 RGB images in 10 classes.
-- LKERAS_QUICK=1: a few samples and one epoch (the test runner's mode).
local keras = keras or require "keras"
local L = keras.layers
local SGD = keras.optimizers.SGD
local quick = os.getenv("LKERAS_QUICK")
local check = dofile(arg[0]:match("^(.-)[^/]*$") .. "lib/check.lua")

-- generate dummy data
local n_train, n_test = quick and 16 or 100, quick and 8 or 20
local x_train = keras.random.random{n_train, 100, 100, 3}
local y_train = keras.utils.to_categorical(keras.random.randint(10, {n_train, 1}), 10)
local x_test = keras.random.random{n_test, 100, 100, 3}
local y_test = keras.utils.to_categorical(keras.random.randint(10, {n_test, 1}), 10)

local model = keras.Sequential()
-- input: 100x100 images with 3 channels -> (100, 100, 3) tensors.
-- this applies 32 convolution filters of size 3x3 each.
model:add(L.Conv2D{32, {3, 3}, activation = "relu", input_shape = {100, 100, 3}})
model:add(L.Conv2D{32, {3, 3}, activation = "relu"})
model:add(L.MaxPooling2D{pool_size = {2, 2}})
model:add(L.Dropout(0.25))

model:add(L.Conv2D{64, {3, 3}, activation = "relu"})
model:add(L.Conv2D{64, {3, 3}, activation = "relu"})
model:add(L.MaxPooling2D{pool_size = {2, 2}})
model:add(L.Dropout(0.25))

model:add(L.Flatten())
model:add(L.Dense{256, activation = "relu"})
model:add(L.Dropout(0.5))
model:add(L.Dense{10, activation = "softmax"})
model:summary()

local sgd = SGD{lr = 0.01, decay = 1e-6, momentum = 0.9, nesterov = true}
model:compile{loss = "categorical_crossentropy", optimizer = sgd}

local epochs = quick and 1 or 10
local h = model:fit(x_train, y_train, {batch_size = 32, epochs = epochs})
local score = model:evaluate(x_test, y_test, {batch_size = 32})
print(string.format("test loss %.4f", score))

-- what the example claims: the VGG shapes (100 -> 98 -> 96, pooled to 48 -> 46 -> 44, pooled to 22:
-- 22 * 22 * 64 features into Dense(256)) and a trained model with a finite loss
check.shape(model.layers[3].output_shape, {keras.None, 48, 48, 32}, "the first MaxPooling2D's output")
check.shape(model.layers[9].output_shape, {keras.None, 22 * 22 * 64}, "Flatten's output")
check.epochs(h, epochs)
check.between(score, 0, nil, "the test loss")
check.shape(model:predict(x_test).shape, {n_test, 10}, "the predictions")
