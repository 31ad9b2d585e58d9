-- MLP for binary classification, evaluated with multiple returns.
local keras = keras or require "keras"
local Dense, Dropout = keras.layers.Dense, keras.layers.Dropout
local quick = os.getenv("LKERAS_QUICK")
local check = dofile(arg[0]:match("^(.-)[^/]*$") .. "lib/check.lua")

keras.random.seed(1337)

-- dummy data
local x_train = keras.random.random{1000, 20}
local y_train = keras.random.randint(2, {1000, 1})
local x_test = keras.random.random{100, 20}
local y_test = keras.random.randint(2, {100, 1})

local model = keras.Sequential{
  Dense{64, input_dim = 20, activation = "relu"},
  Dropout(0.5),
  Dense{64, activation = "relu"},
  Dropout(0.5),
  Dense{1, activation = "sigmoid"},
}
model:compile{loss = "binary_crossentropy", optimizer = "rmsprop", metrics = {"accuracy"}}

local epochs = quick and 2 or 20
local h = model:fit(x_train, y_train, {epochs = epochs, batch_size = 128})
local loss, accuracy = model:evaluate(x_test, y_test, {batch_size = 128})
print(string.format("test loss %.4f, test accuracy %.4f", loss, accuracy))

-- what the example claims: evaluate gives the loss and the accuracy (random labels: near chance)
check.epochs(h, epochs)
check.between(loss, 0, nil, "the test loss")
check.between(accuracy, 0, 1, "the test accuracy")
