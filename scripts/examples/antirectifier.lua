-- The antirectifier (Keras's examples/antirectifier.py): a custom layer written
-- in Lua that centres each sample, L2-normalises it and keeps both its positive
-- and its negative part, so its output is twice as wide as its input -- an
-- alternative to ReLU that loses no information. Trained on Fashion-MNIST
-- (Debian's dataset-fashion-mnist) where Keras's example uses MNIST.
--   lkeras scripts/examples/antirectifier.lua    (LKERAS_QUICK=1: 2000 samples, one epoch)
local keras = keras or require "keras"
local K, L = keras.backend, keras.layers
local quick = os.getenv("LKERAS_QUICK")

local Antirectifier = L.Layer:extend("Antirectifier")

function Antirectifier:compute_output_shape(input_shape)
  assert(#input_shape == 2, "Antirectifier expects 2D inputs")
  return {input_shape[1], input_shape[2] * 2}
end

function Antirectifier:call(inputs)
  local x = inputs - K.mean(inputs, 1, true)        -- axis 1: the features, as in Keras
  x = K.l2_normalize(x, 1)
  local pos, neg = K.relu(x), K.relu(-x)
  return K.concatenate({pos, neg}, 1)
end

keras.random.seed(1337)
local batch_size, num_classes, epochs = 128, 10, quick and 1 or 10
local n_train, n_test = quick and 2000 or 60000, quick and 500 or 10000

local x_train, y_train, x_test, y_test = keras.datasets.fashion_mnist.load_data()
x_train = x_train:slice(1, n_train):reshape{n_train, 784} / 255
x_test = x_test:slice(1, n_test):reshape{n_test, 784} / 255
y_train = keras.utils.to_categorical(y_train:slice(1, n_train), num_classes)
y_test = keras.utils.to_categorical(y_test:slice(1, n_test), num_classes)
print(n_train .. " train samples, " .. n_test .. " test samples")

local model = keras.Sequential()
model:add(L.Dense(256, {input_shape = {784}}))
model:add(Antirectifier())
model:add(L.Dropout(0.1))
model:add(L.Dense(256))
model:add(Antirectifier())
model:add(L.Dropout(0.1))
model:add(L.Dense(num_classes))
model:add(L.Activation("softmax"))
model:summary()

model:compile{loss = "categorical_crossentropy", optimizer = "rmsprop", metrics = {"accuracy"}}
local history = model:fit(x_train, y_train, {batch_size = batch_size, epochs = epochs, verbose = 1,
                                             validation_data = {x_test, y_test}})
local loss, acc = model:evaluate(x_test, y_test, {verbose = 0})
print(string.format("Test loss: %.4f", loss))
print(string.format("Test accuracy: %.4f", acc))

-- what the example claims: the layer doubles the width, and the network learns
assert(model.layers[2].output_shape[2] == 512, "Antirectifier doubles the features")
assert(#history.history.loss == epochs)
assert(loss == loss and loss < math.log(10), "a finite loss below chance level")
assert(acc > (quick and 0.6 or 0.88), "test accuracy " .. acc)
