-- keras.losses: the Keras 2.2.4 loss functions (keras/losses.py with the
-- TensorFlow backend's crossentropies). Each is f(y_true, y_pred) -> one value
-- per sample (the last axis reduced), written with K ops so it works on
-- concrete tensors (evaluated at once) and on the symbolic tensors a compiled
-- model passes (then it is differentiated like any graph).
local K = ...
local raise = require("keras.util").raise

local L = {}

local EPS = K.epsilon

-- TensorFlow's tf.nn.l2_normalize (what K.l2_normalize calls in 2.2.4):
-- x / sqrt(max(sum(x^2), 1e-12)) along the last axis
local function l2_normalize(x)
  return K.div(x, K.sqrt(K.maximum(K.sum(K.square(x), -1, true), 1e-12)))
end

function L.mean_squared_error(y_true, y_pred)
  return K.mean(K.square(K.sub(y_pred, y_true)), -1)
end

function L.mean_absolute_error(y_true, y_pred)
  return K.mean(K.abs(K.sub(y_pred, y_true)), -1)
end

function L.mean_absolute_percentage_error(y_true, y_pred)
  local diff = K.abs(K.div(K.sub(y_true, y_pred), K.clip(K.abs(y_true), EPS(), math.huge)))
  return K.scale(K.mean(diff, -1), 100)
end

function L.mean_squared_logarithmic_error(y_true, y_pred)
  local first_log = K.log(K.scale(K.clip(y_pred, EPS(), math.huge), 1, 1))
  local second_log = K.log(K.scale(K.clip(y_true, EPS(), math.huge), 1, 1))
  return K.mean(K.square(K.sub(first_log, second_log)), -1)
end

-- max(1 - y_true*y_pred, 0)
local function hinge_margin(y_true, y_pred)
  return K.maximum(K.scale(K.mul(y_true, y_pred), -1, 1), 0)
end

function L.squared_hinge(y_true, y_pred)
  return K.mean(K.square(hinge_margin(y_true, y_pred)), -1)
end

function L.hinge(y_true, y_pred)
  return K.mean(hinge_margin(y_true, y_pred), -1)
end

function L.categorical_hinge(y_true, y_pred)
  local pos = K.sum(K.mul(y_true, y_pred), -1)
  local neg = K.max(K.mul(K.scale(y_true, -1, 1), y_pred), -1)
  return K.maximum(K.scale(K.sub(neg, pos), 1, 1), 0)
end

-- log(cosh(x)) = x + softplus(-2x) - log(2)
function L.logcosh(y_true, y_pred)
  local x = K.sub(y_pred, y_true)
  return K.mean(K.scale(K.add(x, K.softplus(K.scale(x, -2))), 1, -math.log(2)), -1)
end

-- TF backend categorical_crossentropy(from_logits=False): renormalise, clip,
-- -sum(y log p)
function L.categorical_crossentropy(y_true, y_pred)
  local out = K.div(y_pred, K.sum(y_pred, -1, true))
  out = K.clip(out, EPS(), 1 - EPS())
  return K.neg(K.sum(K.mul(y_true, K.log(out)), -1))
end

-- y_true reshaped to y_pred's leading shape (y_pred.shape without its last
-- axis): Keras flattens the labels, which accepts (..., 1) and (...)
local function labels_like(y_true, y_pred)
  local ps = y_pred.shape
  local lead = {}
  for i = 1, #ps - 1 do lead[i] = ps[i] end
  if #lead == 0 then raise("sparse_categorical_crossentropy: y_pred needs a class axis") end
  local ts = y_true.shape
  if #ts == #lead then
    local same = true
    for i = 1, #ts do if ts[i] ~= lead[i] then same = false end end
    if same then return y_true end
  end
  return K.reshape(y_true, lead)
end
L._labels_like = labels_like

-- TF backend sparse_categorical_crossentropy(from_logits=False): clip, log,
-- then sparse softmax cross-entropy with those logits against integer labels
function L.sparse_categorical_crossentropy(y_true, y_pred)
  local ps = y_pred.shape
  local classes = ps[#ps]
  local logits = K.log(K.clip(y_pred, EPS(), 1 - EPS()))
  local ids = labels_like(y_true, y_pred)
  local onehot = K.one_hot(ids, classes)
  return K.neg(K.sum(K.mul(onehot, K.log_softmax(logits, -1)), -1))
end

-- TF backend binary_crossentropy(from_logits=False): clip, z = log(p/(1-p)),
-- then sigmoid_cross_entropy_with_logits: max(z,0) - z*y + log(1 + exp(-|z|)),
-- built as TF builds it, with a mask cond = (z >= 0) in place of relu and
-- abs, so that the gradient at z = 0 (p = 0.5) is TF's sigmoid(z) - y and
-- not the 0 that relu's and abs's subgradients would give there
local function elementwise_binary_crossentropy(y_true, y_pred)
  local p = K.clip(y_pred, EPS(), 1 - EPS())
  local z = K.log(K.div(p, K.scale(p, -1, 1)))
  local relu_logits = K.mul(z, K.greater_equal(z, 0))     -- where(cond, z, 0)
  local neg_abs_logits = K.sub(z, K.scale(relu_logits, 2)) -- where(cond, -z, z)
  return K.add(K.sub(relu_logits, K.mul(z, y_true)), K.softplus(neg_abs_logits))
end

function L.binary_crossentropy(y_true, y_pred)
  return K.mean(elementwise_binary_crossentropy(y_true, y_pred), -1)
end

function L.kullback_leibler_divergence(y_true, y_pred)
  y_true = K.clip(y_true, EPS(), 1)
  y_pred = K.clip(y_pred, EPS(), 1)
  return K.sum(K.mul(y_true, K.log(K.div(y_true, y_pred))), -1)
end

function L.poisson(y_true, y_pred)
  return K.mean(K.sub(y_pred, K.mul(y_true, K.log(K.scale(y_pred, 1, EPS())))), -1)
end

function L.cosine_proximity(y_true, y_pred)
  return K.neg(K.sum(K.mul(l2_normalize(y_true), l2_normalize(y_pred)), -1))
end

-- canonical names (a Python function's __name__), in a fixed order
local canonical = {
  "mean_squared_error", "mean_absolute_error", "mean_absolute_percentage_error",
  "mean_squared_logarithmic_error", "squared_hinge", "hinge", "categorical_hinge", "logcosh",
  "categorical_crossentropy", "sparse_categorical_crossentropy", "binary_crossentropy",
  "kullback_leibler_divergence", "poisson", "cosine_proximity",
}
L._names = canonical

-- aliases, as keras/losses.py defines them
local aliases = {
  mse = "mean_squared_error", MSE = "mean_squared_error",
  mae = "mean_absolute_error", MAE = "mean_absolute_error",
  mape = "mean_absolute_percentage_error", MAPE = "mean_absolute_percentage_error",
  msle = "mean_squared_logarithmic_error", MSLE = "mean_squared_logarithmic_error",
  kld = "kullback_leibler_divergence", KLD = "kullback_leibler_divergence",
  cosine = "cosine_proximity",
}

local by_name, name_of = {}, {}
for _, n in ipairs(canonical) do
  by_name[n] = L[n]
  name_of[L[n]] = n
end
for a, n in pairs(aliases) do
  L[a] = L[n]
  by_name[a] = L[n]
end

-- the canonical name of a built-in loss function, or nil
function L.name_of(fn) return name_of[fn] end

-- L._lookup(name | function) -> fn, canonical name. A built-in function
-- passed as a value gets its canonical name too; any other function (or
-- callable table) gets nil. nil -> nil (no loss), as Keras's
-- losses.get(None). Errors point at the user's line (e.g. the compile line).
local function lookup(x)
  if x == nil then return nil end
  local tx = type(x)
  if tx == "string" then
    local f = by_name[x]
    if not f then raise(string.format("unknown loss '%s'", x)) end
    return f, name_of[f]
  end
  if tx == "function" then return x, name_of[x] end
  local mt = getmetatable(x)
  if tx == "table" and mt and mt.__call then return x, nil end
  raise(string.format("loss must be a name or a function, got %s", tx))
end
L._lookup = lookup

-- L.get(name | function [, level]) -> fn, canonical name, as _lookup, for a
-- caller that names the frame its errors point at: `level` as error() counts
-- it in the function that calls get (default 2: that function's caller)
function L.get(x, level)
  local ok, f, name = pcall(lookup, x)
  if not ok then error(f, (level or 2) + 1) end
  return f, name
end

return L
