-- Sequence classification with 1D convolutions (the Keras guide's seed
-- example): Conv1D(64, 3) x2, MaxPooling1D(3), Conv1D(128, 3) x2,
-- GlobalAveragePooling1D, Dropout(0.5), Dense(1, sigmoid); rmsprop; random
-- sequences of 64 steps with 100 features and binary labels.
-- LKERAS_QUICK=1: a few samples and one epoch (the test runner's mode).
local keras = keras or require "keras"
local L = keras.layers
local quick = os.getenv("LKERAS_QUICK")
local check = dofile(arg[0]:match("^(.-)[^/]*$") .. "lib/check.lua")

local seq_length = 64
local n_train, n_test = quick and 64 or 1000, quick and 32 or 100
local x_train = keras.random.random{n_train, seq_length, 100}
local y_train = keras.random.randint(2, {n_train, 1})
local x_test = keras.random.random{n_test, seq_length, 100}
local y_test = keras.random.randint(2, {n_test, 1})

local model = keras.Sequential()
model:add(L.Conv1D{64, 3, activation = "relu", input_shape = {seq_length, 100}})
model:add(L.Conv1D{64, 3, activation = "relu"})
model:add(L.MaxPooling1D(3))
model:add(L.Conv1D{128, 3, activation = "relu"})
model:add(L.Conv1D{128, 3, activation = "relu"})
model:add(L.GlobalAveragePooling1D())
model:add(L.Dropout(0.5))
model:add(L.Dense{1, activation = "sigmoid"})
model:summary()

model:compile{loss = "binary_crossentropy", optimizer = "rmsprop", metrics = {"accuracy"}}

local epochs = quick and 1 or 10
local h = model:fit(x_train, y_train, {batch_size = 16, epochs = epochs})
local loss, acc = model:evaluate(x_test, y_test, {batch_size = 16})
print(string.format("test loss %.4f, test accuracy %.4f", loss, acc))

-- what the example claims: the shapes through the stack (64 steps -> 62 -> 60, pooled by 3 -> 20 -> 18 -> 16,
-- averaged over time -> 128 features) and one probability per sequence
check.shape(model.layers[3].output_shape, {keras.None, 20, 64}, "MaxPooling1D(3)'s output")
check.shape(model.layers[5].output_shape, {keras.None, 16, 128}, "the last Conv1D's output")
check.shape(model.layers[6].output_shape, {keras.None, 128}, "GlobalAveragePooling1D's output")
check.epochs(h, epochs)
check.between(loss, 0, nil, "the test loss")
check.between(acc, 0, 1, "the test accuracy")
local p = model:predict(x_test)
check.shape(p.shape, {n_test, 1}, "the predictions")
check.between(p:min(), 0, nil, "the smallest probability")
check.between(p:max(), nil, 1, "the largest probability")
