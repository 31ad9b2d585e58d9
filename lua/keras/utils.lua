-- keras.utils: to_categorical, normalize, class weights, word vectors.
local keras = ...
local util = require("keras.util")
local is_tensor = util.is_tensor
local raise = util.raise
local core, K = keras._core, keras.backend

local U = {}

-- Keras's positional order, then options, or one table (args.lua); a lone
-- table that names no argument is the data: to_categorical({0, 2, 1})
local A = keras._args
local function call_spec(who, positional)
  local spec = A.spec{who = who, positional = positional, tables = {[positional[1]] = true}}
  spec.single = function(t)
    for k in pairs(t) do
      if type(k) == "string" and spec.known[k] then return false end
    end
    return true
  end
  return spec
end
local TO_CATEGORICAL_SPEC = call_spec("to_categorical", {"y", "num_classes", "dtype"})
local NORMALIZE_SPEC = call_spec("normalize", {"x", "axis", "order"})

-- labels (a tensor or a table of integers) -> one-hot rows; a trailing axis of
-- size 1 is squeezed, as Keras does
function U.to_categorical(...)
  local o = A.parse(TO_CATEGORICAL_SPEC, ...)
  local y, num_classes = o.y, o.num_classes
  if o.dtype ~= nil and o.dtype ~= "float32" then
    raise(string.format("to_categorical: dtype must be float32 (lkeras tensors are float32), got %s",
      tostring(o.dtype)))
  end
  if not is_tensor(y) then
    if type(y) ~= "table" then raise("to_categorical: labels must be a tensor or a table, got " .. type(y)) end
    y = core.tensor(y)
  end
  local s = y.shape
  if #s > 1 and s[#s] == 1 then
    local ns = {}
    for i = 1, #s - 1 do ns[i] = s[i] end
    y = y:reshape(ns)
  end
  if y:size() == 0 then raise("to_categorical: no labels") end
  if not y:isfinite() then raise("to_categorical: labels contain NaN or Inf") end
  if num_classes == nil then
    num_classes = math.floor(y:max()) + 1
  end
  if math.type(num_classes) ~= "integer" or num_classes < 1 then
    raise("to_categorical: num_classes must be a positive integer, got " .. tostring(num_classes))
  end
  local lo = y:min()
  if lo < 0 then raise(string.format("to_categorical: label %g is negative", lo)) end
  local ok, out = pcall(K.one_hot, y, num_classes)
  if not ok then
    local msg = tostring(out):gsub("^.-:%d+: ", ""):gsub("^one_hot: ", ""):gsub("^index ", "label ")
    raise("to_categorical: " .. msg)
  end
  return out
end

-- x / norm(x) along axis (order 1 or 2); zero norms are left as they are
function U.normalize(...)
  local o = A.parse(NORMALIZE_SPEC, ...)
  local x, axis, order = o.x, o.axis or -1, o.order or 2
  if not is_tensor(x) then x = core.tensor(x) end
  local n
  if order == 2 then
    n = K.sqrt(K.sum(K.square(x), axis, true))
  elseif order == 1 then
    n = K.sum(K.abs(x), axis, true)
  else
    raise("normalize: order must be 1 or 2, got " .. tostring(order))
  end
  n = K.add(n, K.equal(n, 0))
  return K.div(x, n)
end

-- per-sample weights from a class -> weight table (Keras 2.2.4 standardize_weights)
function U._class_weights(cw, y, who)
  if type(cw) ~= "table" then raise(who .. ": class_weight must be a table {[class] = weight}") end
  local s = y.shape
  if #s > 2 then raise(who .. ": class_weight not supported for 3+ dimensional targets.") end
  local classes = (#s == 2 and s[2] > 1) and y:argmax(-1) or y:reshape{-1}
  local list = classes:totable()
  local w = core.full({#list}, 0)
  local missing = {}
  for i, c in ipairs(list) do
    local k = math.tointeger(c) or c
    local v = cw[k]
    if v == nil then missing[#missing + 1] = k
    else
      if type(v) ~= "number" then raise(string.format("%s: class_weight[%s] must be a number", who, tostring(k))) end
      w:set(i, v)
    end
  end
  if #missing > 0 then
    local seen, uniq = {}, {}
    for _, k in ipairs(missing) do if not seen[k] then seen[k] = true; uniq[#uniq + 1] = tostring(k) end end
    raise(string.format("%s: class_weight must contain all classes in the data. The classes {%s} exist in the data " ..
      "but not in class_weight.",
      who, table.concat(uniq, ", ")))
  end
  return w
end

return U
