-- keras.tensor: constructors, and the numpy-like methods and operators that
-- concrete tensors (keras.Tensor) and symbolic tensors (keras.Node) share.
-- The math is the graph ops of the C engine (see backend.lua).
local core, K = ...

local T = {}

local raise = K._raise

-- call a core function; its errors name the user's line
local function call(f, ...)
  local r = table.pack(pcall(f, ...))
  if not r[1] then raise(r[2]) end
  return table.unpack(r, 2, r.n)
end

-- a shape: a size or a sequence of sizes (integers >= 0; 1e6 counts as an integer)
local function shape_arg(shape, who)
  if type(shape) == "number" then shape = {shape} end
  if type(shape) ~= "table" then
    raise(string.format("%s: shape must be a table of sizes, got %s", who, type(shape)))
  end
  local out = {}
  for i, d in ipairs(shape) do
    local n = math.tointeger(d)
    if not n or n < 0 then
      raise(string.format("%s: shape[%d] must be an integer >= 0, got %s", who, i, tostring(d)))
    end
    out[i] = n
  end
  return out
end
T._shape_arg = shape_arg

function T.zeros(shape) return call(core.full, shape_arg(shape, "zeros"), 0) end
function T.ones(shape) return call(core.full, shape_arg(shape, "ones"), 1) end
function T.full(shape, v)
  if type(v) ~= "number" then raise("full: value must be a number, got " .. type(v)) end
  return call(core.full, shape_arg(shape, "full"), v)
end
function T.zeros_like(t) return call(core.full, t.shape, 0) end
function T.ones_like(t) return call(core.full, t.shape, 1) end
function T.arange(a, b, step) return call(core.arange, a, b, step) end
function T.load(path) return call(core.load_npy, path) end
-- a .npz archive: name -> float32 tensor, or -> a list of integer lists for a
-- 1-D object array of Python lists (imdb.npz, reuters.npz)
function T.load_npz(path)
  if type(path) ~= "string" then raise("load_npz: path must be a string, got " .. type(path)) end
  return call(core.load_npz, path)
end
function T.from_csv(path, opts)
  opts = opts or {}
  return call(core.from_csv, path, opts.delimiter or ",", opts.skip_header or opts.header)
end
function T.concat(list, axis) return K.concatenate(list, axis or 0) end
function T.stack(list)
  local rows = {}
  for i, t in ipairs(list) do rows[i] = K.expand_dims(t, 0) end
  return K.concatenate(rows, 0)
end

setmetatable(T, {__call = function(_, v)
  local tv = type(v)
  if tv ~= "table" and tv ~= "number" and getmetatable(v) ~= core.Tensor then
    raise("keras.tensor: expected a table, a number or a tensor, got " .. tv)
  end
  return call(core.tensor, v)
end})

-- ---- methods shared by tensors and symbolic tensors ----

local shared = {}

-- numpy's matmul for vectors: a 1-D operand gets a unit axis for the
-- product (a row on the left, a column on the right) that is removed after
function shared.matmul(a, b)
  if type(b) == "table" and getmetatable(b) == nil then b = call(core.tensor, b) end
  local na, nb = K.ndim(a), K.ndim(b)
  if na ~= 1 and nb ~= 1 then return K.dot(a, b) end
  local out = {}
  if na > 1 then
    for i = 1, na - 1 do out[i] = a.shape[i] end
  end
  if nb > 1 then out[#out + 1] = b.shape[nb] end
  if na == 1 then a = K.reshape(a, {1, -1}) end
  if nb == 1 then b = K.reshape(b, {-1, 1}) end
  return K.reshape(K.dot(a, b), out)
end
function shared.dot(a, b) return K.dot(a, b) end
function shared.sum(t, axis, keepdims) return K.sum(t, axis, keepdims) end
function shared.mean(t, axis, keepdims) return K.mean(t, axis, keepdims) end
function shared.max(t, axis, keepdims) return K.max(t, axis, keepdims) end
function shared.min(t, axis, keepdims) return K.min(t, axis, keepdims) end
function shared.prod(t, axis, keepdims) return K.prod(t, axis, keepdims) end
-- population variance and standard deviation (numpy's and K.std's: divide by n)
function shared.var(t, axis, keepdims) return K.var(t, axis, keepdims) end
function shared.std(t, axis, keepdims) return K.std(t, axis, keepdims) end
-- without an axis: on a tensor, the position in the flattened tensor (numpy's
-- a.argmax()); on a symbolic tensor, the last axis (K.argmax's default)
function shared.argmax(t, axis)
  if axis == nil and not core.is_node(t) then return K.argmax(K.reshape(t, {-1}), 0) end
  return K.argmax(t, axis or -1)
end
function shared.argmin(t, axis)
  if axis == nil and not core.is_node(t) then return K.argmin(K.reshape(t, {-1}), 0) end
  return K.argmin(t, axis or -1)
end
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
  local n = t:size()
  if n ~= 1 then
    raise(string.format("item: only a tensor of one element converts to a number, got %d elements (shape %s)",
      n, "(" .. table.concat(t.shape, ", ") .. ")"))
  end
  return t:reshape{1}:get(1)
end

-- reshape also takes sizes as separate arguments: t:reshape(2, 3)
local raw_reshape = tm.reshape
function tm.reshape(t, shape, ...)
  if type(shape) ~= "table" then shape = {shape, ...} end
  return call(raw_reshape, t, shape)
end

return T
