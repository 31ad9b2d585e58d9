-- keras.tensor: constructors, and the numpy-like methods and operators that
-- concrete tensors (keras.Tensor) and symbolic tensors (keras.Node) share.
-- The math is the graph ops of the C engine (see backend.lua).
local core, K = ...

local T = {}

local function shape_arg(shape, who)
  if math.type(shape) == "integer" then return {shape} end
  if type(shape) ~= "table" then
    error(string.format("%s: shape must be a table of sizes, got %s", who, type(shape)), 3)
  end
  for i, d in ipairs(shape) do
    if math.type(d) ~= "integer" or d < 0 then
      error(string.format("%s: shape[%d] must be a size >= 0, got %s", who, i, tostring(d)), 3)
    end
  end
  return shape
end
T._shape_arg = shape_arg

function T.zeros(shape) return core.full(shape_arg(shape, "zeros"), 0) end
function T.ones(shape) return core.full(shape_arg(shape, "ones"), 1) end
function T.full(shape, v)
  if type(v) ~= "number" then error("full: value must be a number, got " .. type(v), 2) end
  return core.full(shape_arg(shape, "full"), v)
end
function T.zeros_like(t) return core.full(t.shape, 0) end
function T.ones_like(t) return core.full(t.shape, 1) end
T.arange = core.arange
function T.load(path) return core.load_npy(path) end
function T.from_csv(path, opts)
  opts = opts or {}
  return core.from_csv(path, opts.delimiter or ",", opts.skip_header or opts.header)
end
function T.concat(list, axis) return K.concatenate(list, axis or 0) end
function T.stack(list)
  local rows = {}
  for i, t in ipairs(list) do rows[i] = K.expand_dims(t, 0) end
  return K.concatenate(rows, 0)
end

setmetatable(T, {__call = function(_, v)
  if v == nil then error("keras.tensor: expected a table, a number or a tensor", 2) end
  return core.tensor(v)
end})

-- ---- methods shared by tensors and symbolic tensors ----

local shared = {}

function shared.matmul(a, b) return K.dot(a, b) end
function shared.dot(a, b) return K.dot(a, b) end
function shared.sum(t, axis, keepdims) return K.sum(t, axis, keepdims) end
function shared.mean(t, axis, keepdims) return K.mean(t, axis, keepdims) end
function shared.max(t, axis, keepdims) return K.max(t, axis, keepdims) end
function shared.min(t, axis, keepdims) return K.min(t, axis, keepdims) end
function shared.prod(t, axis, keepdims) return K.prod(t, axis, keepdims) end
function shared.argmax(t, axis) return K.argmax(t, axis or -1) end
function shared.argmin(t, axis) return K.argmin(t, axis or -1) end
function shared.abs(t) return K.abs(t) end
function shared.exp(t) return K.exp(t) end
function shared.log(t) return K.log(t) end
function shared.sqrt(t) return K.sqrt(t) end
function shared.square(t) return K.square(t) end
function shared.pow(t, p) return K.pow(t, p) end
function shared.clip(t, lo, hi) return K.clip(t, lo, hi) end
function shared.round(t) return K.round(t) end
function shared.eq(a, b) return K.equal(a, b) end
function shared.ne(a, b) return K.not_equal(a, b) end
function shared.gt(a, b) return K.greater(a, b) end
function shared.ge(a, b) return K.greater_equal(a, b) end
function shared.lt(a, b) return K.less(a, b) end
function shared.le(a, b) return K.less_equal(a, b) end
function shared.maximum(a, b) return K.maximum(a, b) end
function shared.minimum(a, b) return K.minimum(a, b) end
function shared.softmax(t, axis) return K.softmax(t, axis) end
function shared.sigmoid(t) return K.sigmoid(t) end
function shared.tanh(t) return K.tanh(t) end
function shared.relu(t) return K.relu(t) end

function shared.transpose(t, perm)
  if perm then
    local p = {}
    for i, v in ipairs(perm) do p[i] = v end
    return K.permute_dimensions(t, p)
  end
  return K.transpose(t)
end

local meta = {
  __add = function(a, b) return K.add(a, b) end,
  __sub = function(a, b) return K.sub(a, b) end,
  __mul = function(a, b) return K.mul(a, b) end,
  __div = function(a, b) return K.div(a, b) end,
  __pow = function(a, b) return K.pow(a, b) end,
  __unm = function(a) return K.neg(a) end,
}

for _, mt in ipairs{core.Tensor, core.Node} do
  for k, f in pairs(shared) do mt.methods[k] = f end
  for k, f in pairs(meta) do mt[k] = f end
end

-- ---- concrete tensors only ----

local tm = core.Tensor.methods

function tm.copy(t) return core.tensor(t) end
function tm.numel(t) return t:size() end
function tm.flatten(t) return t:reshape{-1} end
function tm.item(t)
  if t:size() ~= 1 then error("item: tensor has " .. t:size() .. " elements, not 1", 2) end
  return t:reshape{1}:get(1)
end

-- reshape also takes sizes as separate arguments: t:reshape(2, 3)
local raw_reshape = tm.reshape
function tm.reshape(t, shape, ...)
  if type(shape) ~= "table" then shape = {shape, ...} end
  return raw_reshape(t, shape)
end

return T
