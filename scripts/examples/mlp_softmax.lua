-- Multilayer perceptron (MLP) for multi-class softmax classification, with
-- Dropout and SGD with Nesterov momentum, then evaluate.
local keras = keras or require "keras"
local Dense, Dropout = keras.layers.Dense, keras.layers.Dropout
local SGD = keras.optimizers.SGD
local quick = os.getenv("LKERAS_QUICK")
local check = dofile(arg[0]:match("^(.-)[^/]*$") .. "lib/check.lua")

keras.random.seed(1337)

-- dummy data
local x_train = keras.random.random{1000, 20}
local y_train = keras.utils.to_categorical(keras.random.randint(10, {1000, 1}), 10)
local x_test = keras.random.random{100, 20}
local y_test = keras.utils.to_categorical(keras.random.randint(10, {100, 1}), 10)

local model = keras.Sequential()
-- Dense(64) is a fully-connected layer with 64 hidden units.
-- in the first layer, you must specify the expected input data shape:
-- here, 20-dimensional vectors.
model:add(Dense{64, activation = "relu", input_dim = 20})
model:add(Dropout(0.5))
model:add(Dense{64, activation = "relu"})
model:add(Dropout(0.5))
model:add(Dense{10, activation = "softmax"})

local sgd = SGD{lr = 0.01, decay = 1e-6, momentum = 0.9, nesterov = true}
model:compile{loss = "categorical_crossentropy", optimizer = sgd, metrics = {"accuracy"}}

local epochs = quick and 2 or 20
local h = model:fit(x_train, y_train, {epochs = epochs, batch_size = 128})
local score = {model:evaluate(x_test, y_test, {batch_size = 128})}
print(string.format("test loss %.4f, test accuracy %.4f", score[1], score[2]))

-- what the example claims: evaluate gives the loss and the accuracy (random labels: near chance)
check.epochs(h, epochs)
check.names(model.metrics_names, {"loss", "acc"}, "the metrics' names")
check.between(score[1], 0, nil, "the test loss")
check.between(score[2], 0, 1, "the test accuracy")
check.shape(model:predict(x_test).shape, {100, 10}, "the predictions")
