-- compile for a multi-class classifier, a binary classifier, a regression, and
-- with a custom metric written with backend ops (Keras's mean_pred example).
local keras = keras or require "keras"
local K = keras.backend
local Dense = keras.layers.Dense
local check = dofile(arg[0]:match("^(.-)[^/]*$") .. "lib/check.lua")

local function model_with(units, act)
  return keras.Sequential{Dense{32, activation = "relu", input_dim = 100}, Dense{units, activation = act}}
end

-- multi-class classification
local model = model_with(10, "softmax")
model:compile{optimizer = "rmsprop", loss = "categorical_crossentropy", metrics = {"accuracy"}}
print("multi-class:", table.concat(model.metrics_names, ", "))
check.names(model.metrics_names, {"loss", "acc"}, "the multi-class model's metrics")

-- binary classification
model = model_with(1, "sigmoid")
model:compile{optimizer = "rmsprop", loss = "binary_crossentropy", metrics = {"accuracy"}}
print("binary:", table.concat(model.metrics_names, ", "))
check.names(model.metrics_names, {"loss", "acc"}, "the binary model's metrics")

-- mean squared error regression
model = model_with(1, nil)
model:compile{optimizer = "rmsprop", loss = "mse"}
print("regression:", table.concat(model.metrics_names, ", "))
check.names(model.metrics_names, {"loss"}, "the regression's metrics")

-- a custom metric: traced once at compile, runs in C
local function mean_pred(_y_true, y_pred)
  return K.mean(y_pred)
end
model = model_with(1, "sigmoid")
model:compile{optimizer = "rmsprop", loss = "binary_crossentropy", metrics = {"accuracy", mean_pred}}
print("custom metric:", table.concat(model.metrics_names, ", "))
check.names(model.metrics_names, {"loss", "acc", "mean_pred"}, "the metrics with a custom one")

local x = keras.random.random{200, 100}
local y = keras.random.randint(2, {200, 1})
local h = model:fit(x, y, {epochs = 2, batch_size = 32, verbose = 0})
print(string.format("mean_pred after 2 epochs: %.4f", h.history.mean_pred[2]))

-- the custom metric is the mean of sigmoid outputs: one value per epoch, in (0, 1)
for _, v in ipairs(check.epochs(h, 2, "mean_pred")) do check.between(v, 0, 1, "mean_pred") end
