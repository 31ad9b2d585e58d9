-- Early stopping with the best weights restored, on Fashion-MNIST: an MLP
-- trained with validation_split = 0.1, EarlyStopping watching val_loss
-- (patience 3) restores the weights of the best epoch, whether it stopped
-- the run or the run reached its last epoch (restore_at_end, which Keras
-- lacks); ModelCheckpoint keeps the best model on disk too.
-- Reads the IDX files of Debian's dataset-fashion-mnist.
-- Run: lkeras scripts/examples/fashion_early_stopping.lua [max_epochs]
local keras = keras or require "keras"
local layers = keras.layers

local max_epochs = tonumber(arg and arg[1]) or 40
keras.random.seed(42)

local x_train, y_train, x_test, y_test = keras.datasets.fashion_mnist.load_data()
x_train = x_train:reshape{60000, 784} / 255
x_test = x_test:reshape{10000, 784} / 255
y_train = keras.utils.to_categorical(y_train, 10)
y_test = keras.utils.to_categorical(y_test, 10)

local model = keras.Sequential{
  layers.Dense{256, activation = "relu", input_shape = {784}},
  layers.Dropout(0.2),
  layers.Dense{256, activation = "relu"},
  layers.Dropout(0.2),
  layers.Dense{10, activation = "softmax"},
}
model:compile{loss = "categorical_crossentropy", optimizer = keras.optimizers.Adam{lr = 0.002},
              metrics = {"accuracy"}}

local p = io.popen("mktemp -d /tmp/lkeras-fashion-XXXXXX")
local dir = p:read("l")
p:close()
local stopper = keras.callbacks.EarlyStopping{monitor = "val_loss", patience = 3, verbose = 1,
                                              restore_best_weights = true, restore_at_end = true}
local history = model:fit(x_train, y_train, {batch_size = 128, epochs = max_epochs, verbose = 2,
  validation_split = 0.1, callbacks = {
    stopper,
    keras.callbacks.ModelCheckpoint{dir .. "/best.lkm", monitor = "val_loss", save_best_only = true},
  }})

local h = history.history
local best = 1
for e = 2, #h.val_loss do if h.val_loss[e] < h.val_loss[best] then best = e end end
print(string.format("ran %d epochs; best epoch %d: val_loss %.4f, val_acc %.4f", #h.val_loss, best,
  h.val_loss[best], h.val_acc[best]))

-- the model now holds the best epoch's weights, as does the checkpoint
local loss, acc = model:evaluate(x_test, y_test, {verbose = 0})
print(string.format("test loss %.4f, test accuracy %.4f (weights of epoch %d)", loss, acc, best))
local saved = keras.models.load_model(dir .. "/best.lkm")
local loss2 = saved:evaluate(x_test, y_test, {verbose = 0})
print(string.format("the checkpoint of the best epoch gives the same test loss: %.4f", loss2))

-- the pictures (docs/plotting.md): the model's graph drawn by Graphviz's dot,
-- the training curves by gnuplot; without those programs the run still counts
local drawn, why = pcall(keras.utils.plot_model, model,
  {to_file = "fashion_early_stopping_model.png", show_shapes = true})
print(drawn and "wrote fashion_early_stopping_model.png" or why)
drawn, why = pcall(keras.utils.plot_history, history, {to_file = "fashion_early_stopping_history.png"})
print(drawn and "wrote fashion_early_stopping_history.png" or why)
os.execute("rm -rf '" .. dir .. "'")
