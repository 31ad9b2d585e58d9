-- Fashion-MNIST with data augmentation: the convnet of fashion_cnn.lua
-- (Conv2D 32 and 64, 5x5, with pooling, Dense 1024, Dropout 0.4), trained
-- through fit_generator on batches from keras.preprocessing.image's
-- ImageDataGenerator (small rotations, shifts, zoom and horizontal flips,
-- applied in C on the worker threads; docs/images.md), evaluated on the
-- untouched test images. Reads the IDX files of Debian's
-- dataset-fashion-mnist and prints the test accuracy and the wall time.
--   lkeras scripts/examples/fashion_augment.lua [epochs] [threads]
-- LKERAS_QUICK=1: 1024 training and 512 test images, two epochs (the test
-- runner's mode).
local keras = keras or require "keras"
local L = keras.layers
local image = keras.preprocessing.image
local quick = os.getenv("LKERAS_QUICK")
local check = dofile(arg[0]:match("^(.-)[^/]*$") .. "lib/check.lua")

local epochs = tonumber(arg and arg[1]) or (quick and 2 or 12)
if arg and arg[2] then keras.set_num_threads(math.tointeger(tonumber(arg[2]))) end
keras.random.seed(1234)
local now = keras._core and keras._core.now or os.time
local t0 = now()

local x_train, y_train, x_test, y_test = keras.datasets.fashion_mnist.load_data()
local n_train, n_test = quick and 1024 or x_train.shape[1], quick and 512 or x_test.shape[1]
x_train = x_train:slice(1, n_train):reshape{n_train, 28, 28, 1}
x_test = x_test:slice(1, n_test):reshape{n_test, 28, 28, 1} / 255
y_train = keras.utils.to_categorical(y_train:slice(1, n_train), 10)
y_test = keras.utils.to_categorical(y_test:slice(1, n_test), 10)
print(string.format("%d train images, %d test images, %d threads", n_train, n_test, keras.get_num_threads()))

-- the generator rescales to 0..1 after the transforms (as the test images)
local gen = image.ImageDataGenerator{rotation_range = 10, width_shift_range = 0.1, height_shift_range = 0.1,
  zoom_range = 0.1, horizontal_flip = true, fill_mode = "constant", cval = 0, rescale = 1 / 255}
local flow = gen:flow(x_train, y_train, {batch_size = 128, seed = 1})
local bx, by = flow:get(1)
check.shape(bx.shape, {128, 28, 28, 1}, "an augmented batch")
check.shape(by.shape, {128, 10}, "its labels")
check.between(bx:min(), -1e-6, 1e-6, "the augmented pixels' minimum (the black background)")
check.between(bx:max(), 0.5, 1 + 1e-6, "the augmented pixels' maximum")

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

local h = model:fit_generator(flow, {epochs = epochs, verbose = quick and 0 or 1,
                                     validation_data = {x_test, y_test}})
local loss, acc = model:evaluate(x_test, y_test, {batch_size = 500, verbose = 0})
print(string.format("Test loss: %.4f", loss))
print(string.format("Test accuracy: %.4f", acc))
print(string.format("Wall time: %.1fs", now() - t0))

check.epochs(h, epochs)
check.falls(h)
check.between(acc, quick and 0.5 or 0.85, 1, "the test accuracy")
