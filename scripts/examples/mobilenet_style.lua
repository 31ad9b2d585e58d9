-- A small MobileNet-style CNN on Fashion-MNIST (Debian's dataset-fashion-mnist):
-- MobileNet's unit -- a 3x3 depthwise convolution, then a 1x1 pointwise one,
-- each followed by batch normalization and ReLU -- written once as
-- DepthwiseConv2D + Conv2D(1x1) and elsewhere as the fused SeparableConv2D.
-- A strided Conv2D stem (28x28 -> 14x14), SeparableConv2D(64), a strided
-- SeparableConv2D(128) (-> 7x7), the depthwise + pointwise pair to 128,
-- global average pooling, Dropout(0.2), Dense(10, softmax); Adam. Prints the
-- parameter count beside a plain Conv2D's for the same widths, the test
-- accuracy and the wall time.
--   lkeras scripts/examples/mobilenet_style.lua [epochs] [threads]
-- LKERAS_QUICK=1: 3000 training and 1000 test images, two epochs (the test
-- runner's mode), with an accuracy floor.
local keras = keras or require "keras"
local L = keras.layers
local quick = os.getenv("LKERAS_QUICK")
local check = dofile(arg[0]:match("^(.-)[^/]*$") .. "lib/check.lua")

local epochs = tonumber(arg and arg[1]) or (quick and 2 or 10)
if arg and arg[2] then keras.set_num_threads(math.tointeger(tonumber(arg[2]))) end
keras.random.seed(1234)
local now = keras._core and keras._core.now or os.time
local t0 = now()

local x_train, y_train, x_test, y_test = keras.datasets.fashion_mnist.load_data()
local n_train, n_test = quick and 3000 or x_train.shape[1], quick and 1000 or x_test.shape[1]
x_train = x_train:slice(1, n_train):reshape{n_train, 28, 28, 1} / 255
x_test = x_test:slice(1, n_test):reshape{n_test, 28, 28, 1} / 255
y_train = keras.utils.to_categorical(y_train:slice(1, n_train), 10)
y_test = keras.utils.to_categorical(y_test:slice(1, n_test), 10)
print(string.format("%d train images, %d test images, %d threads", n_train, n_test, keras.get_num_threads()))

-- (momentum 0.9: the moving statistics that predict uses settle within the
-- first few hundred batches; Keras's 0.99 needs more steps than quick mode runs)
local function bn_relu(x) return L.Activation("relu")(L.BatchNormalization{momentum = 0.9}(x)) end

local inputs = keras.Input{shape = {28, 28, 1}}
local x = bn_relu(L.Conv2D{32, 3, strides = 2, padding = "same", use_bias = false}(inputs))    -- 14x14x32
x = bn_relu(L.SeparableConv2D{64, 3, padding = "same", use_bias = false}(x))                   -- 14x14x64
x = bn_relu(L.SeparableConv2D{128, 3, strides = 2, padding = "same", use_bias = false}(x))     -- 7x7x128
x = bn_relu(L.DepthwiseConv2D{3, padding = "same", use_bias = false}(x))                       -- 7x7x128
x = bn_relu(L.Conv2D{128, 1, use_bias = false}(x))                                             -- 7x7x128
x = L.GlobalAveragePooling2D()(x)
x = L.Dropout(0.2)(x)
local outputs = L.Dense{10, activation = "softmax"}(x)
local model = keras.Model{inputs = inputs, outputs = outputs, name = "mobilenet_style"}
model:summary()
model:compile{loss = "categorical_crossentropy", optimizer = keras.optimizers.Adam{lr = 0.002},
              metrics = {"accuracy"}}

-- what the factorization saves: the three separable/depthwise blocks against
-- full 3x3 convolutions of the same widths
local full = 3 * 3 * 32 * 64 + 3 * 3 * 64 * 128 + 3 * 3 * 128 * 128
local factored = (3 * 3 * 32 + 32 * 64) + (3 * 3 * 64 + 64 * 128) + (3 * 3 * 128 + 128 * 128)
print(string.format("3x3 kernels of the three blocks: %d weights factored, %d as full Conv2D (%.1fx fewer)",
  factored, full, full / factored))

local h = model:fit(x_train, y_train, {batch_size = 64, epochs = epochs, verbose = quick and 0 or 1,
                                       validation_data = not quick and {x_test, y_test} or nil})
local loss, acc = model:evaluate(x_test, y_test, {batch_size = 500, verbose = 0})
print(string.format("Test loss: %.4f", loss))
print(string.format("Test accuracy: %.4f", acc))
print(string.format("Wall time: %.1fs", now() - t0))

check.shape(model:get_layer("separable_conv2d_2").output_shape, {keras.None, 7, 7, 128},
  "the strided SeparableConv2D's output")
check.shape(model.layers[#model.layers - 2].output_shape, {keras.None, 128}, "the pooled features")
check.equal(model:get_layer("separable_conv2d_1").depthwise_kernel.shape[4], 1, "the depth multiplier")
check.epochs(h, epochs)
check.falls(h)
check.between(loss, 0, nil, "the test loss")
-- chance is 0.1; two epochs on 3000 images reach 0.73 here
check.between(acc, quick and 0.6 or 0.8, 1, "the test accuracy")
