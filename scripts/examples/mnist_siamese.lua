-- A siamese network (Keras's examples/mnist_siamese.py) on Fashion-MNIST: one
-- base network embeds both images of a pair (shared weights), a Lambda layer
-- takes the Euclidean distance of the embeddings, and a contrastive loss pulls
-- pairs of the same class together and pushes other pairs a margin apart.
-- The loss and the accuracy metric are Lua functions of K ops.
--   lkeras scripts/examples/mnist_siamese.lua   (LKERAS_QUICK=1: a tiny run)
local keras = keras or require "keras"
local K, L = keras.backend, keras.layers
local quick = os.getenv("LKERAS_QUICK")

keras.random.seed(5)
math.randomseed(5)
local num_classes, epochs = 10, quick and 1 or 20

local function euclidean_distance(vects)
  local x, y = vects[1], vects[2]
  local sum_square = K.sum(K.square(x - y), 1, true)
  return K.sqrt(K.maximum(sum_square, K.epsilon()))
end
local function eucl_dist_output_shape(shapes) return {shapes[1][1], 1} end

-- Hadsell-et-al.'06 contrastive loss
local function contrastive_loss(y_true, y_pred)
  local margin = 1
  local square_pred = K.square(y_pred)
  local margin_square = K.square(K.maximum(margin - y_pred, 0))
  return K.mean(y_true * square_pred + (1 - y_true) * margin_square)
end

-- positive and negative pairs, alternately
local function create_pairs(digit_indices)
  local a, b, y = {}, {}, {}
  local n = math.huge
  for d = 0, num_classes - 1 do n = math.min(n, #digit_indices[d] - 1) end
  for d = 0, num_classes - 1 do
    for i = 1, n do
      a[#a + 1], b[#b + 1], y[#y + 1] = digit_indices[d][i], digit_indices[d][i + 1], 1
      local dn = (d + math.random(1, num_classes - 1)) % num_classes
      a[#a + 1], b[#b + 1], y[#y + 1] = digit_indices[d][i], digit_indices[dn][i], 0
    end
  end
  return a, b, keras.tensor(y)
end

local function create_base_network(input_shape)
  local input = keras.Input{shape = input_shape}
  local x = L.Flatten()(input)
  x = L.Dense(128, {activation = "relu"})(x)
  x = L.Dropout(0.1)(x)
  x = L.Dense(128, {activation = "relu"})(x)
  x = L.Dropout(0.1)(x)
  x = L.Dense(128, {activation = "relu"})(x)
  return keras.Model(input, x)
end

-- y_pred < 0.5 means "same class"
local function compute_accuracy(y_true, y_pred)
  local right = 0
  for i = 1, y_true.shape[1] do
    if (y_pred:get(i, 1) < 0.5) == (y_true:get(i) == 1) then right = right + 1 end
  end
  return right / y_true.shape[1]
end
local function accuracy(y_true, y_pred)
  return K.mean(K.equal(y_true, K.cast(K.less(y_pred, 0.5), K.dtype(y_true))))
end

local n_train, n_test = quick and 3000 or 60000, quick and 1000 or 10000
local x_train, y_train, x_test, y_test = keras.datasets.fashion_mnist.load_data()
x_train = x_train:slice(1, n_train) / 255
x_test = x_test:slice(1, n_test) / 255
local input_shape = {28, 28}

local function indices(y, n)
  local by = {}
  for d = 0, num_classes - 1 do by[d] = {} end
  for i = 1, n do local d = math.tointeger(y:get(i)); by[d][#by[d] + 1] = i end
  return by
end
local tr_a, tr_b, tr_y = create_pairs(indices(y_train, n_train))
local te_a, te_b, te_y = create_pairs(indices(y_test, n_test))
local tr_x = {x_train:take(tr_a), x_train:take(tr_b)}
local te_x = {x_test:take(te_a), x_test:take(te_b)}
print(string.format("%d training pairs, %d test pairs", #tr_a, #te_a))

local base_network = create_base_network(input_shape)
local input_a, input_b = keras.Input{shape = input_shape}, keras.Input{shape = input_shape}
local processed_a, processed_b = base_network(input_a), base_network(input_b)
local distance = L.Lambda(euclidean_distance, {output_shape = eucl_dist_output_shape})({processed_a, processed_b})
local model = keras.Model({input_a, input_b}, distance)

model:compile{loss = contrastive_loss, optimizer = keras.optimizers.RMSprop(), metrics = {accuracy}}
local history = model:fit(tr_x, tr_y, {batch_size = 128, epochs = epochs, validation_data = {te_x, te_y}})

local tr_acc = compute_accuracy(tr_y, model:predict(tr_x))
local te_acc = compute_accuracy(te_y, model:predict(te_x))
print(string.format("* Accuracy on training set: %0.2f%%", 100 * tr_acc))
print(string.format("* Accuracy on test set: %0.2f%%", 100 * te_acc))

local h = history.history
assert(#h.loss == epochs and h.loss[#h.loss] == h.loss[#h.loss], "a finite loss")
assert(te_acc > (quick and 0.6 or 0.85), "test accuracy " .. te_acc)
