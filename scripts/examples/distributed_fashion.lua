-- Fashion-MNIST with a multilayer perceptron, trained data-parallel by
-- keras.distributed (docs/distributed.md):
--   mpirun -np 2 lkeras scripts/examples/distributed_fashion.lua [epochs]
--   lkeras scripts/examples/distributed_fashion.lua [epochs]    (one process)
-- The global batch is 128 whatever the number of processes (128 / size rows
-- each), so every run trains the same steps and reaches the same test
-- accuracy (tanh, not ReLU: a ReLU unit whose input sits at 0 within
-- rounding switches on in one run and not in the other, and RMSprop turns
-- such a difference into a full step). Only rank 0 prints. LKERAS_QUICK=1: 2048 training and 1000 test
-- images, two epochs (make test runs it so, with one process and with two).
local keras = keras or require "keras"
local layers = keras.layers
local dist = keras.distributed
dist.init()

local quick = os.getenv("LKERAS_QUICK")
local epochs = tonumber(arg and arg[1]) or (quick and 2 or 10)
keras.random.seed(42)

local x_train, y_train, x_test, y_test = keras.datasets.fashion_mnist.load_data()
local n_train, n_test = quick and 2048 or 60000, quick and 1000 or 10000
x_train = x_train:slice(1, n_train):reshape{n_train, 784} / 255
x_test = x_test:slice(1, n_test):reshape{n_test, 784} / 255
y_train = keras.utils.to_categorical(y_train:slice(1, n_train), 10)
y_test = keras.utils.to_categorical(y_test:slice(1, n_test), 10)
local root = dist.rank() == 0
local global_batch = 128
if global_batch % dist.size() ~= 0 then error("run it with a number of processes that divides 128") end
if root then
  print(string.format("%d train samples, %d test samples, %d processes x batch %d", n_train, n_test, dist.size(),
    global_batch // dist.size()))
end

local model = keras.Sequential{
  layers.Dense{256, activation = "tanh", input_shape = {784}},
  layers.Dense{256, activation = "tanh"},
  layers.Dense{10, activation = "softmax"},
}
local opt = dist.DistributedOptimizer(keras.optimizers.RMSprop{lr = 0.001})
model:compile{loss = "categorical_crossentropy", optimizer = opt, metrics = {"accuracy"}}

local t0 = os.time()
model:fit(x_train, y_train, {batch_size = global_batch // dist.size(), epochs = epochs,
                             verbose = root and 2 or 0,
                             callbacks = {dist.BroadcastGlobalVariablesCallback(0), dist.MetricAverageCallback()}})
-- every rank evaluates its share of the test set; the figures are the world's
local loss, acc = model:evaluate(x_test, y_test, {verbose = 0})
if root then
  print(string.format("Test loss: %.4f", loss))
  print(string.format("Test accuracy: %.4f", acc))
  print(string.format("Wall time: %ds", os.time() - t0))
end
