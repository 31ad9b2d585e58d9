-- Fashion-MNIST with an LSTM reading each image row by row: 28 steps of 28
-- pixels, LSTM(128), then a softmax over the 10 classes. Reads the IDX files
-- that Debian's dataset-fashion-mnist installs.
--   lkeras scripts/examples/fashion_lstm.lua [epochs]
local keras = keras or require "keras"
local L = keras.layers

local epochs = tonumber(arg and arg[1]) or 5
keras.random.seed(6)

local x_train, y_train, x_test, y_test = keras.datasets.fashion_mnist.load_data()
x_train = x_train:reshape{60000, 28, 28} / 255      -- (samples, timesteps = rows, features = pixels)
x_test = x_test:reshape{10000, 28, 28} / 255
y_train = keras.utils.to_categorical(y_train, 10)
y_test = keras.utils.to_categorical(y_test, 10)
print(string.format("%d train sequences, %d test sequences of 28 steps x 28 features",
                    x_train.shape[1], x_test.shape[1]))

local model = keras.Sequential{
  L.LSTM{128, input_shape = {28, 28}},
  L.Dense{10, activation = "softmax"},
}
model:summary()
model:compile{loss = "categorical_crossentropy", optimizer = "adam", metrics = {"accuracy"}}

local now = keras._core.now
local t0 = now()
local history = model:fit(x_train, y_train, {batch_size = 128, epochs = epochs, verbose = 2,
                                           validation_data = {x_test, y_test}})
local loss, acc = model:evaluate(x_test, y_test, {verbose = 0})
print(string.format("Test loss: %.4f", loss))
print(string.format("Test accuracy: %.4f after %d epochs", acc, epochs))
print(string.format("Wall time: %.1fs", now() - t0))

-- the pictures (docs/plotting.md): the model's graph drawn by Graphviz's dot,
-- the training curves by gnuplot; without those programs the run still counts
local drawn, why = pcall(keras.utils.plot_model, model, {to_file = "fashion_lstm_model.png", show_shapes = true})
print(drawn and "wrote fashion_lstm_model.png" or why)
drawn, why = pcall(keras.utils.plot_history, history, {to_file = "fashion_lstm_history.png"})
print(drawn and "wrote fashion_lstm_history.png" or why)
