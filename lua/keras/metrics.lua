-- keras.metrics: the Keras 2.2.4 metric functions (keras/metrics.py, TF
-- backend semantics), every loss usable as a metric, and M.resolve, which
-- turns what compile{metrics=...} was given into a function and the name
-- that logs, history keys and the progress bar show.
local K, losses = ...
local util = require("keras.util")
local is_callable = util.is_callable
local raise = util.raise

local M = {}

-- mean(y_true == round(y_pred)) over the last axis (round: half to even, as tf.round)
function M.binary_accuracy(y_true, y_pred)
  return K.mean(K.equal(y_true, K.round(y_pred)), -1)
end

function M.categorical_accuracy(y_true, y_pred)
  return K.equal(K.argmax(y_true, -1), K.argmax(y_pred, -1))
end

-- labels of shape (..., 1) or (...) against argmax(y_pred)
function M.sparse_categorical_accuracy(y_true, y_pred)
  if K.ndim(y_true) == K.ndim(y_pred) then y_true = K.squeeze(y_true, -1) end
  return K.equal(y_true, K.argmax(y_pred, -1))
end

-- tf.nn.in_top_k: the target is in the top k when fewer than k classes score
-- strictly higher than it (ties at the boundary count as in); a row with a
-- non-finite score is never in. predictions (..., C), targets (...) -> (...)
local function in_top_k(predictions, targets, k)
  local ps = predictions.shape
  local onehot = K.one_hot(targets, ps[#ps])
  local target_score = K.sum(K.mul(predictions, onehot), -1, true)
  local higher = K.sum(K.greater(predictions, target_score), -1)
  local finite = K.min(K.less(K.abs(predictions), math.huge), -1)
  return K.mul(K.less(higher, k), finite)
end
M._in_top_k = in_top_k

local function check_k(k, who)
  if k == nil then return 5 end
  if math.type(k) ~= "integer" or k < 1 then
    raise(string.format("%s: k must be an integer >= 1, got %s", who, tostring(k)))
  end
  return k
end

-- as Keras 2.2.4: K.mean(in_top_k(...), axis=-1), the mean over the batch
function M.top_k_categorical_accuracy(y_true, y_pred, k)
  k = check_k(k, "top_k_categorical_accuracy")
  return K.mean(in_top_k(y_pred, K.argmax(y_true, -1), k), -1)
end

function M.sparse_top_k_categorical_accuracy(y_true, y_pred, k)
  k = check_k(k, "sparse_top_k_categorical_accuracy")
  return K.mean(in_top_k(y_pred, losses._labels_like(y_true, y_pred), k), -1)
end

local own = {"binary_accuracy", "categorical_accuracy", "sparse_categorical_accuracy",
             "top_k_categorical_accuracy", "sparse_top_k_categorical_accuracy"}

-- name -> function and function -> canonical (display) name
local by_name, name_of = {}, {}
for _, n in ipairs(own) do
  by_name[n] = M[n]
  name_of[M[n]] = n
end
for _, n in ipairs(losses._names) do
  M[n] = losses[n]
  by_name[n] = losses[n]
  name_of[losses[n]] = n
end
for _, a in ipairs{"mse", "MSE", "mae", "MAE", "mape", "MAPE", "msle", "MSLE", "kld", "KLD", "cosine"} do
  M[a] = losses[a]
  by_name[a] = losses[a]
end

-- the canonical name of a built-in metric function, or nil
function M.name_of(fn) return name_of[fn] end

-- M.get(name | function) -> fn (Keras's metrics.get)
function M.get(x)
  if type(x) == "string" then
    local f = by_name[x]
    if not f then raise(string.format("unknown metric '%s'", x)) end
    return f
  end
  if type(x) == "function" then return x end
  raise(string.format("metric must be a name or a function, got %s", type(x)))
end

-- the name of the variable that holds fn: locals of the frames from `level`
-- (absolute, as seen from this function) up, then upvalues of those frames'
-- functions, then globals
local MAX_FRAMES = 10

local function variable_name(fn, level)
  level = level + 1   -- this function's own frame
  local name = util.variable_name(fn, level, level + MAX_FRAMES - 1)
  return name
end

local function is_one(shape)
  if type(shape) ~= "table" then return false end
  return shape[#shape] == 1
end

-- M.resolve(metric, output_shape, loss_name, caller_level) -> fn, display_name
--   metric: a name, a function (or callable table), or {name=, fn=}
--   output_shape: the model output's shape (a sequence; its last entry decides
--     binary accuracy); loss_name: the canonical name of that output's loss
--     (losses.get's second value), nil for a custom loss
--   caller_level: the frame of the user's code, counted as error() counts in
--     the function that calls resolve: 1 (the default) is that function itself,
--     2 its caller (what compile passes, so that the user's compile line is
--     meant). Errors point there, and a function's name is looked up in the
--     locals of that frame and the frames above it. A tail call into resolve
--     removes a frame: call it as `local f, n = M.resolve(...)`.
-- M._resolve(...), the same for the library (compile): its errors point at
-- the user's line, caller_level only finds the function's name.
-- "accuracy"/"acc" -> binary, sparse or categorical accuracy shown as "acc";
-- "crossentropy"/"ce" -> the matching crossentropy shown as "ce"; other names
-- show the function's canonical name ("mae" -> "mean_absolute_error"); a
-- function shows its variable name, or "custom_metric".
local function resolve(metric, output_shape, loss_name, caller_level, at_level)
  local level = (caller_level or 1) + 1
  local function raise_here(msg)
    if at_level then error(msg, level + 1) end
    raise(msg)
  end
  if type(metric) == "string" then
    local acc = metric == "accuracy" or metric == "acc"
    local ce = metric == "crossentropy" or metric == "ce"
    if acc or ce then
      local kind
      if is_one(output_shape) or loss_name == "binary_crossentropy" then
        kind = "binary"
      elseif loss_name == "sparse_categorical_crossentropy" then
        kind = "sparse"
      else
        kind = "categorical"
      end
      if acc then
        local f = kind == "binary" and M.binary_accuracy
               or kind == "sparse" and M.sparse_categorical_accuracy
               or M.categorical_accuracy
        return f, "acc"
      end
      local f = kind == "binary" and losses.binary_crossentropy
             or kind == "sparse" and losses.sparse_categorical_crossentropy
             or losses.categorical_crossentropy
      return f, "ce"
    end
    local f = by_name[metric]
    if not f then raise_here(string.format("unknown metric '%s'", metric)) end
    return f, name_of[f]
  end
  if type(metric) == "table" and getmetatable(metric) == nil then
    local name, fn = metric.name, metric.fn
    if type(name) ~= "string" or name == "" then
      raise_here("metric table needs a name: {name = \"...\", fn = function(y_true, y_pred) ... end}")
    end
    if not is_callable(fn) then
      raise_here(string.format("metric '%s': fn must be a function, got %s", name, type(fn)))
    end
    return fn, name
  end
  if is_callable(metric) then
    local n = name_of[metric]
    if n then return metric, n end
    return metric, variable_name(metric, level) or "custom_metric"
  end
  raise_here(string.format("metric must be a name, a function or {name=, fn=}, got %s", type(metric)))
end

-- (tail calls: resolve's frame takes the place of theirs, keeping the levels)
function M.resolve(metric, output_shape, loss_name, caller_level)
  return resolve(metric, output_shape, loss_name, caller_level, true)
end
function M._resolve(metric, output_shape, loss_name, caller_level)
  return resolve(metric, output_shape, loss_name, caller_level, false)
end

return M
