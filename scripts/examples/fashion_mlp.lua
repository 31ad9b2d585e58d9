-- Fashion-MNIST with a multilayer perceptron: 784-512-512-10, ReLU, Dropout,
-- RMSprop (the classic Keras MNIST MLP recipe), its learning rate halved every
-- 4 epochs by a LearningRateScheduler. Reads the IDX files that
-- Debian's dataset-fashion-mnist installs; run: lkeras scripts/examples/fashion_mlp.lua [epochs]
local keras = keras or require "keras"
local layers = keras.layers

local epochs = tonumber(arg and arg[1]) or 15
keras.random.seed(42)

local x_train, y_train, x_test, y_test = keras.datasets.fashion_mnist.load_data()
x_train = x_train:reshape{60000, 784} / 255
x_test = x_test:reshape{10000, 784} / 255
y_train = keras.utils.to_categorical(y_train, 10)
y_test = keras.utils.to_categorical(y_test, 10)
print(string.format("%d train samples, %d test samples", x_train.shape[1], x_test.shape[1]))

local model = keras.Sequential{
  layers.Dense{512, activation = "relu", input_shape = {784}},
  layers.Dropout(0.2),
  layers.Dense{512, activation = "relu"},
  layers.Dropout(0.2),
  layers.Dense{10, activation = "softmax"},
}
model:summary()
model:compile{loss = "categorical_crossentropy", optimizer = keras.optimizers.RMSprop(), metrics = {"accuracy"}}

local t0 = os.time()
local schedule = keras.callbacks.LearningRateScheduler(function(epoch) return 0.001 * 0.5 ^ (epoch // 4) end)
local history = model:fit(x_train, y_train, {batch_size = 128, epochs = epochs, verbose = 1,
                                           validation_data = {x_test, y_test},
                                           callbacks = {schedule}})
local loss, acc = model:evaluate(x_test, y_test, {verbose = 0})
print(string.format("Test loss: %.4f", loss))
print(string.format("Test accuracy: %.4f", acc))
print(string.format("Wall time: %ds", os.time() - t0))

-- the pictures (docs/plotting.md): the model's graph drawn by Graphviz's dot,
-- the training curves by gnuplot; without those programs the run still counts
local drawn, why = pcall(keras.utils.plot_model, model, {to_file = "fashion_mlp_model.png", show_shapes = true})
print(drawn and "wrote fashion_mlp_model.png" or why)
drawn, why = pcall(keras.utils.plot_history, history, {to_file = "fashion_mlp_history.png"})
print(drawn and "wrote fashion_mlp_history.png" or why)
