-- Fashion-MNIST with a small convnet: the "2 Conv+pooling" model of the
-- Fashion-MNIST benchmark table (TensorFlow's layers tutorial, 0.916 there):
-- Conv2D(32, 5x5, same, relu), MaxPooling2D(2), Conv2D(64, 5x5, same, relu),
-- MaxPooling2D(2), Flatten, Dense(1024, relu), Dropout(0.4), Dense(10, softmax);
-- Adam. Reads the IDX files of Debian's dataset-fashion-mnist and prints the
-- test accuracy and the wall time.
--   lkeras scripts/examples/fashion_cnn.lua [epochs] [threads]
local keras = keras or require "keras"
local L = keras.layers

local epochs = tonumber(arg and arg[1]) or 12
if arg and arg[2] then keras.set_num_threads(math.tointeger(tonumber(arg[2]))) end
keras.random.seed(1234)
local now = keras._core and keras._core.now or os.time
local t0 = now()

local x_train, y_train, x_test, y_test = keras.datasets.fashion_mnist.load_data()
x_train = x_train:reshape{60000, 28, 28, 1} / 255
x_test = x_test:reshape{10000, 28, 28, 1} / 255
y_train = keras.utils.to_categorical(y_train, 10)
y_test = keras.utils.to_categorical(y_test, 10)
print(string.format("%d train samples, %d test samples, %d threads", x_train.shape[1], x_test.shape[1],
  keras.get_num_threads()))

local model = keras.Sequential{
  L.Conv2D{32, {5, 5}, padding = "same", activation = "relu", input_shape = {28, 28, 1}},
  L.MaxPooling2D{pool_size = {2, 2}},
  L.Conv2D{64, {5, 5}, padding = "same", activation = "relu"},
  L.MaxPooling2D{pool_size = {2, 2}},
  L.Flatten(),
  L.Dense{1024, activation = "relu"},
  L.Dropout(0.4),
  L.Dense{10, activation = "softmax"},
}
model:summary()
model:compile{loss = "categorical_crossentropy", optimizer = keras.optimizers.Adam{lr = 0.001},
              metrics = {"accuracy"}}

local history = model:fit(x_train, y_train, {batch_size = 128, epochs = epochs, verbose = 1,
                                           validation_data = {x_test, y_test}})
local loss, acc = model:evaluate(x_test, y_test, {batch_size = 500, verbose = 0})
print(string.format("Test loss: %.4f", loss))
print(string.format("Test accuracy: %.4f", acc))
print(string.format("Wall time: %.1fs", now() - t0))

-- the pictures (docs/plotting.md): the model's graph drawn by Graphviz's dot,
-- the training curves by gnuplot; without those programs the run still counts
local drawn, why = pcall(keras.utils.plot_model, model, {to_file = "fashion_cnn_model.png", show_shapes = true})
print(drawn and "wrote fashion_cnn_model.png" or why)
drawn, why = pcall(keras.utils.plot_history, history, {to_file = "fashion_cnn_history.png"})
print(drawn and "wrote fashion_cnn_history.png" or why)
