-- keras.backend (Keras's K): ops on concrete tensors and on symbolic tensors.
-- Every function builds one graph op in C. When an argument is symbolic (a
-- keras.Node: an Input, a layer output, the y_true/y_pred a loss receives),
-- the result is symbolic too and runs later inside a compiled plan; otherwise
-- the op is evaluated at once and a keras.Tensor comes back.
local core = ...

local K = {}
local is_node = core.is_node
local op, eval = core.op, core.eval

K.None = require("keras.util").None

local EPSILON = 1e-7

-- Raise err at the user's line: the first caller outside the library (the
-- engine's messages would otherwise name a line of this file): keras.util.
local raise = require("keras.util").raise
K._raise = raise

local function apply(name, inputs, attrs)
  for i = 1, #inputs do
    local v = inputs[i]
    local tv = type(v)
    if tv ~= "number" and tv ~= "table" and not is_node(v) and getmetatable(v) ~= core.Tensor then
      raise(string.format("%s: input %d must be a tensor, a number or a table, got %s", name, i, tv))
    end
  end
  local ok, n = pcall(op, name, inputs, attrs)
  if not ok then raise(n) end
  for i = 1, #inputs do
    if is_node(inputs[i]) then return n end
  end
  local ok2, v = pcall(eval, n)
  if not ok2 then raise(v) end
  return v
end
K.apply = apply

local function ndim_of(x)
  if type(x) == "number" then return 0 end
  if type(x) == "table" and getmetatable(x) == nil then
    local d, t = 0, x
    while type(t) == "table" do d, t = d + 1, t[1] end
    return d
  end
  return x.ndim
end

-- axis (nil = all, number or list, negative from the end) -> bit mask
local function axis_mask(x, axis, who)
  local nd = ndim_of(x)
  if axis == nil then return (1 << nd) - 1 end
  local list = type(axis) == "table" and axis or {axis}
  local mask = 0
  for _, a in ipairs(list) do
    if math.type(a) ~= "integer" then raise(string.format("%s: axis must be an integer, got %s", who, tostring(a))) end
    local p = a < 0 and a + nd or a
    if p < 0 or p >= nd then
      raise(string.format("%s: axis %d is out of range for a tensor of rank %d", who, a, nd))
    end
    mask = mask | (1 << p)
  end
  return mask
end
K._axis_mask = axis_mask

-- A concrete result of rank 0 (a reduction over every axis without keepdims)
-- comes back as a Lua number, as numpy's scalars and Torch7's sums do;
-- symbolic results stay nodes.
local function number_if_scalar(v)
  if getmetatable(v) == core.Tensor and v.ndim == 0 then return v:get() end
  return v
end
K._number_if_scalar = number_if_scalar

function K.epsilon() return EPSILON end

-- The OpenBLAS kernels in use and how they were chosen (src/blas.c): a table
-- {core, chosen_by = "openblas"|"lkeras"|"user", openblas_core, detail, checked,
-- rejected, warning, threads, cpu, cpu_features, cpu_level, config}.
function K.blas_info() return core.blas_info() end
-- the engine's memory limit in this state (bytes held at once; 0: none):
-- an allocation past it fails with an error naming the limit
function K.set_memory_limit(bytes)
  if bytes == nil then bytes = 0 end
  if math.type(bytes) ~= "integer" or bytes < 0 then
    raise("keras.backend.set_memory_limit: expected an integer number of bytes >= 0 (0: no limit), got "
      .. tostring(bytes))
  end
  core.set_memory_limit(bytes)
end
function K.get_memory_limit() return core.get_memory_limit() end

-- The convolution autotuner (src/conv_tune.c, docs/design.md): on by default;
-- K.set_conv_autotune(false) keeps the fixed lowering rules (results
-- reproducible to the bit); K.conv_autotune_report() lists what was tuned:
-- {enabled, total_s, entries = {{pass, input, kernel, output, strides,
-- dilation, pads, relu, batch, threads, candidate, rule, cached, times = {name = ms}}}}.
-- K.set_conv_autotune(true, {cache = path}) also keeps the choices in a text
-- file (keyed by the CPU's model, the geometry and the thread count) that a
-- later process reads instead of timing again; {cache = false} keeps none and
-- ignores LKERAS_CONV_TUNE_CACHE, the file used when no cache was given.
function K.set_conv_autotune(on, opts)
  if type(on) ~= "boolean" then
    raise("K.set_conv_autotune: expected a boolean, got " .. type(on))
  end
  if opts ~= nil then
    if type(opts) ~= "table" then raise("K.set_conv_autotune: options must be a table, got " .. type(opts)) end
    for k in pairs(opts) do
      if k ~= "cache" then raise("K.set_conv_autotune: unknown option '" .. tostring(k) .. "' (expected: cache)") end
    end
    local c = opts.cache
    if c ~= nil and c ~= false and (type(c) ~= "string" or c == "") then
      raise("K.set_conv_autotune: cache must be a file path or false, got " .. (type(c) == "string" and "''" or
        type(c)))
    end
    if c ~= nil then core.set_conv_tune_cache(c) end
  end
  core.set_conv_autotune(on)
end
function K.get_conv_tune_cache() return core.get_conv_tune_cache() end
function K.get_conv_autotune() return core.get_conv_autotune() end
function K.conv_autotune_report() return core.conv_autotune_report() end

-- Results never depend on the thread count (docs/reliability.md). Two choices
-- are made by timing, once per state: the convolutions' lowerings (the
-- autotuner) and whether inference plans use the packed GEMM. Their variants
-- agree within float tolerance, not to the bit, so two states may differ in
-- the last bits. K.set_deterministic(true) replaces both measurements by
-- fixed rules (conv: the fixed lowering rules; Dense in inference: the plain
-- products training uses), for plans built from then on: the same script then
-- gives the same floats in every state and process, at any thread count.
-- K.set_deterministic(false) measures again (the default).
function K.set_deterministic(on)
  if type(on) ~= "boolean" then
    raise("K.set_deterministic: expected a boolean, got " .. type(on))
  end
  core.set_conv_autotune(not on)
  core.gemm_packed(on and 0 or 2)
end
function K.get_deterministic() return not core.get_conv_autotune() and core.gemm_packed() ~= 2 end
function K.set_epsilon(e) EPSILON = e end
function K.floatx() return "float32" end
function K.image_data_format() return "channels_last" end
function K.backend() return "lkeras" end

function K.is_keras_tensor(x) return is_node(x) end
function K.is_tensor(x) return is_node(x) or getmetatable(x) == core.Tensor end

function K.int_shape(x)
  local s = x.shape
  local out = {}
  for i, d in ipairs(s) do out[i] = d < 0 and K.None or d end
  return out
end

function K.ndim(x) return ndim_of(x) end

local function describe(v)
  if is_node(v) then return "a symbolic tensor" end
  if getmetatable(v) == core.Tensor then return "a tensor" end
  return type(v)
end

-- every tensor holds float32
local function check_dtype(dtype, who)
  if dtype ~= nil and dtype ~= "float32" then
    raise(string.format("%s: dtype '%s' is not supported: lkeras computes in float32 (give nil or \"float32\")",
      who, tostring(dtype)))
  end
end

local function check_name(name, who)
  if name ~= nil and type(name) ~= "string" then
    raise(string.format("%s: name must be a string, got %s", who, type(name)))
  end
end

-- the tensor of a value given to K.constant or K.variable (who): a number, a
-- table or a tensor, never a symbolic one
local function concrete_value(value, who)
  if is_node(value) then raise(who .. ": value must be a number, a table or a tensor, got a symbolic tensor") end
  local tv = type(value)
  if tv ~= "number" and tv ~= "table" and getmetatable(value) ~= core.Tensor then
    raise(who .. ": value must be a number, a table or a tensor, got " .. tv)
  end
  local ok, t = pcall(core.tensor, value)
  if not ok then raise(t) end
  return t
end

-- K.constant(value, dtype, shape, name), as tf.constant under Keras 2.2.4: with
-- a shape, a single value fills it, a list of as many values is reshaped, and a
-- shorter list is padded with its last value
function K.constant(value, dtype, shape, name)
  check_dtype(dtype, "K.constant")
  check_name(name, "K.constant")
  local t = concrete_value(value, "K.constant")
  if shape ~= nil then
    if type(shape) ~= "table" then raise("K.constant: shape must be a list of sizes, got " .. type(shape)) end
    local dims, total = {}, 1
    for i, d in ipairs(shape) do
      if math.type(d) ~= "integer" or d < 0 then
        raise(string.format("K.constant: shape[%d] must be an integer >= 0, got %s", i, tostring(d)))
      end
      dims[i], total = d, total * d
    end
    local n = t:size()
    if n == total then
      t = t:reshape(#dims > 0 and dims or {})
    elseif n == 1 then
      t = core.full(dims, t:reshape{1}:get(1))
    elseif n > 0 and n < total then
      local flat, vals = t:reshape{-1}, {}
      for i = 1, total do vals[i] = flat:get(math.min(i, n)) end
      t = core.tensor(vals):reshape(dims)
    else
      raise(string.format("K.constant: %d values do not fit shape (%s)", n, table.concat(dims, ", ")))
    end
  end
  local node = core.const(t)
  if name then node:meta().name = name end
  return node
end

-- K.variable(value, dtype, name): a symbolic variable holding a copy of value;
-- ops on it are symbolic (K.eval computes them, K.gradients differentiates
-- them), K.get_value / K.set_value read and replace its value
function K.variable(value, dtype, name, constraint)
  check_dtype(dtype, "K.variable")
  check_name(name, "K.variable")
  if constraint ~= nil then raise("K.variable: constraint is not supported") end
  local t = concrete_value(value, "K.variable")
  local node = core.variable(t)
  if name then node:meta().name = name end
  return node
end

-- values: a copy of a variable's (or a constant's) tensor, a Lua number for
-- a rank-0 one; objects that hold a value of their own (an optimizer's lr)
-- answer through __get_value / __set_value in their metatable
function K.get_value(x)
  local mt = getmetatable(x)
  if type(mt) == "table" and mt.__get_value then return mt.__get_value(x) end
  if type(x) == "number" then return x end
  if is_node(x) then
    local v = x.value
    if not v then
      raise("K.get_value: a symbolic tensor computed from others has no value of its own (use K.eval)")
    end
    return number_if_scalar(v:copy())
  end
  if getmetatable(x) == core.Tensor then return number_if_scalar(x) end
  raise("K.get_value: expected a variable, got " .. describe(x))
end

function K.set_value(x, v)
  local mt = getmetatable(x)
  if type(mt) == "table" and mt.__set_value then return mt.__set_value(x, v) end
  local target = x
  if is_node(x) then
    if x.op ~= "variable" then raise("K.set_value: expected a variable, got a symbolic tensor of op " .. x.op) end
    target = x.value
  elseif getmetatable(x) ~= core.Tensor then
    raise("K.set_value: expected a variable, got " .. describe(x))
  end
  local ok, err = pcall(target.assign, target, v)
  if not ok then raise("K.set_value: " .. tostring(err):gsub("^.-:%d+: ", "")) end
end

function K.eval(x)
  local mt = getmetatable(x)
  if type(mt) == "table" and mt.__get_value then return mt.__get_value(x) end
  if is_node(x) then
    local ok, v = pcall(eval, x)
    if not ok then raise(v) end
    return number_if_scalar(v)
  end
  return number_if_scalar(x)
end

-- elementwise, two inputs
for _, name in ipairs{"add", "sub", "mul", "div", "maximum", "minimum", "equal", "not_equal",
                      "greater", "greater_equal", "less", "less_equal"} do
  K[name] = function(a, b) return apply(name, {a, b}) end
end

function K.pow(x, a)
  if type(a) == "number" then return apply("pows", {x}, {exponent = a}) end
  return apply("pow", {x, a})
end

-- elementwise, one input
for _, name in ipairs{"abs", "sign", "square", "sqrt", "exp", "log", "round", "floor", "sigmoid",
                      "hard_sigmoid", "tanh", "softplus", "softsign", "selu", "neg"} do
  K[name] = function(x) return apply(name, {x}) end
end

-- Keras clips at 0 before the square root
function K.sqrt(x) return apply("sqrt", {apply("clip", {x}, {min_value = 0, max_value = math.huge})}) end

-- nil bounds are open, as Keras's None
function K.clip(x, lo, hi)
  lo, hi = lo or -math.huge, hi or math.huge
  if hi < lo then hi = lo end
  return apply("clip", {x}, {min_value = lo, max_value = hi})
end

function K.relu(x, alpha, max_value)
  return apply("relu", {x}, {alpha = alpha or 0, max_value = max_value or 0})
end

function K.elu(x, alpha) return apply("elu", {x}, {alpha = alpha or 1.0}) end
function K.exponential(x) return apply("exp", {x}) end
function K.linear(x) return x end
function K.identity(x) return apply("identity", {x}) end
function K.stop_gradient(x) return apply("stop_gradient", {x}) end
-- every tensor holds float32: a cast to an integer type truncates toward 0
-- (as tf.cast does), a cast to bool gives 1 where x is not 0
function K.cast(x, dtype)
  if type(dtype) == "string" and dtype:match("^u?int") then
    return apply("mul", {apply("sign", {x}), apply("floor", {apply("abs", {x})})})
  elseif dtype == "bool" then
    return apply("not_equal", {x, 0})
  end
  return x
end
function K.scale(x, a, b) return apply("scale", {x}, {scale = a, offset = b or 0}) end
function K.zeros_like(x) return apply("zeros_like", {x}) end
function K.ones_like(x) return apply("scale", {apply("zeros_like", {x})}, {scale = 0, offset = 1}) end

function K.softmax(x, axis) return apply("softmax", {x}, {axis = axis or -1}) end
function K.log_softmax(x, axis) return apply("log_softmax", {x}, {axis = axis or -1}) end

-- reductions
for _, name in ipairs{"sum", "mean", "max", "min", "prod"} do
  K[name] = function(x, axis, keepdims)
    return number_if_scalar(apply(name, {x}, {axes = axis_mask(x, axis, "K." .. name), keepdims = keepdims and 1 or 0}))
  end
end

function K.argmax(x, axis) return apply("argmax", {x}, {axis = axis or -1}) end
function K.argmin(x, axis) return apply("argmin", {x}, {axis = axis or -1}) end

function K.any(x, axis, keepdims)
  return number_if_scalar(K.greater(K.max(K.abs(x), axis, keepdims), 0))
end
function K.all(x, axis, keepdims)
  return number_if_scalar(K.greater(K.min(K.abs(x), axis, keepdims), 0))
end

function K.var(x, axis, keepdims)
  local m = K.mean(x, axis, true)
  return K.mean(K.square(K.sub(x, m)), axis, keepdims)
end
function K.std(x, axis, keepdims) return number_if_scalar(K.sqrt(K.var(x, axis, keepdims))) end

-- K.dot: (..., k) x (k, n); both 2-D or the first of higher rank
function K.dot(a, b) return apply("matmul", {a, b}, {transpose_a = 0, transpose_b = 0}) end
function K.transpose(x)
  local nd = ndim_of(x)
  local perm = {}
  for i = 1, nd do perm[i] = nd - i end
  return apply("transpose", {x}, {perm = perm})
end
function K.permute_dimensions(x, pattern) return apply("transpose", {x}, {perm = pattern}) end

-- reshape: -1 infers one dimension; a symbolic batch axis stays
function K.reshape(x, shape)
  local s = {}
  local src = x.shape
  local known, infer = 1, nil
  for i, d in ipairs(shape) do
    if d == K.None then d = -1 end
    s[i] = d
  end
  local batched = is_node(x) and src[1] < 0
  if batched and s[1] ~= nil and s[1] ~= -1 and s[1] ~= src[1] then
    local dims = {}
    for i, d in ipairs(src) do dims[i] = d < 0 and "None" or tostring(d) end
    raise(string.format("K.reshape: the first axis of a symbolic tensor of shape (%s) is its batch axis: "
      .. "give it as -1 or keras.None, got %s", table.concat(dims, ", "), tostring(s[1])))
  end
  local total = 1
  for i = batched and 2 or 1, #src do total = total * src[i] end
  for i = batched and 2 or 1, #s do
    if s[i] == -1 then
      if infer then raise("K.reshape: only one dimension can be -1") end
      infer = i
    else
      known = known * s[i]
    end
  end
  if infer then
    if known == 0 or total % known ~= 0 then raise("K.reshape: cannot infer the -1 dimension") end
    s[infer] = total // known
  end
  if batched then s[1] = src[1] end
  return apply("reshape", {x}, {shape = s})
end

function K.flatten(x) return K.reshape(x, {-1}) end
function K.batch_flatten(x)
  if is_node(x) then return K.reshape(x, {-1, -1}) end   -- the first -1 is the batch axis
  return K.reshape(x, {x.shape[1], -1})
end

function K.expand_dims(x, axis)
  local s = x.shape
  axis = axis or -1
  local nd = #s
  if math.type(axis) ~= "integer" or axis < -nd - 1 or axis > nd then
    raise(string.format("K.expand_dims: axis %s is out of range for a tensor of rank %d", tostring(axis), nd))
  end
  if axis < 0 then axis = axis + nd + 1 end
  local out = {}
  for i = 1, nd + 1 do
    if i - 1 < axis then out[i] = s[i] elseif i - 1 == axis then out[i] = 1 else out[i] = s[i - 1] end
  end
  return apply("reshape", {x}, {shape = out})
end

function K.squeeze(x, axis)
  local s = x.shape
  local nd = #s
  if math.type(axis) ~= "integer" or axis < -nd or axis >= nd then
    raise(string.format("K.squeeze: axis %s is out of range for a tensor of rank %d", tostring(axis), nd))
  end
  if axis < 0 then axis = axis + nd end
  if s[axis + 1] ~= 1 then raise(string.format("K.squeeze: axis %d has size %d, not 1", axis, s[axis + 1])) end
  local out = {}
  for i = 1, nd do
    if i - 1 ~= axis then out[#out + 1] = s[i] end
  end
  return apply("reshape", {x}, {shape = out})
end

function K.concatenate(list, axis) return apply("concat", list, {axis = axis or -1}) end

function K.one_hot(ids, n) return apply("one_hot", {ids}, {classes = n}) end
function K.gather(t, ids) return apply("gather", {t, ids}) end

function K.in_train_phase(a, b) return apply("in_train_phase", {a, b}) end
-- the Dropout layer's: drops in training only
function K._train_dropout(x, rate) return apply("dropout", {x}, {rate = rate}) end

-- K.dropout(x, level, noise_shape, seed): Keras's, which drops always (in a
-- Lambda at predict time too), keeping each unit with probability 1 - level
-- and scaling it by 1 / (1 - level). noise_shape: the mask's shape, of x's
-- rank, each size x's or 1 (keras.None: x's), the mask broadcast over the 1s.
function K.dropout(x, level, noise_shape, seed)
  if type(level) ~= "number" or not (level >= 0 and level < 1) then
    raise("K.dropout: level must be a number in [0, 1), got " .. tostring(level))
  end
  if seed ~= nil then
    raise("K.dropout: seed is not supported (seed the whole run with keras.random.seed(n))")
  end
  if not is_node(x) and getmetatable(x) ~= core.Tensor then
    local ok, t = pcall(core.tensor, x)
    if not ok then raise("K.dropout: x must be a tensor, got " .. type(x)) end
    x = t
  end
  if noise_shape == nil then return apply("dropout", {x}, {rate = level, always = 1}) end
  if type(noise_shape) ~= "table" then
    raise("K.dropout: noise_shape must be a list of sizes, got " .. type(noise_shape))
  end
  local s = x.shape
  if #noise_shape ~= #s then
    raise(string.format("K.dropout: noise_shape has %d sizes for a tensor of rank %d", #noise_shape, #s))
  end
  local axes = {}
  for i, d in ipairs(noise_shape) do
    if d == 1 and s[i] ~= 1 then
      axes[#axes + 1] = i - 1
    elseif not (d == K.None or d == -1 or d == s[i]) then
      local dims = {}
      for k, v in ipairs(s) do dims[k] = v < 0 and "None" or tostring(v) end
      raise(string.format("K.dropout: noise_shape[%d] must be %s or 1 (the input is (%s)), got %s", i,
        dims[i], table.concat(dims, ", "), tostring(d)))
    end
  end
  if #axes == 0 then return apply("dropout", {x}, {rate = level, always = 1}) end
  -- a mask of ones of the noise shape (batch size included), dropped, broadcast
  local ones = K.ones_like(apply("sum", {x}, {axes = axis_mask(x, axes, "K.dropout"), keepdims = 1}))
  return K.mul(x, apply("dropout", {ones}, {rate = level, always = 1}))
end

function K.l2_normalize(x, axis)
  local n = K.sqrt(K.maximum(K.sum(K.square(x), axis, true), EPSILON))
  return K.div(x, n)
end

-- K.gradients(loss, variables): the gradients of a scalar symbolic loss with
-- respect to each of variables (K.variables, layer weights, Inputs, any
-- symbolic tensor the loss is computed from), as a list of symbolic tensors
-- (K.eval gives their values). A variable the loss does not depend on gets
-- zeros. One symbolic tensor may be given for the list.
function K.gradients(loss, variables)
  if not is_node(loss) then
    raise("K.gradients: loss must be a symbolic tensor (computed from K.variable, Input or layer tensors), got "
      .. describe(loss))
  end
  if is_node(variables) then variables = {variables} end
  if type(variables) ~= "table" or getmetatable(variables) ~= nil then
    raise("K.gradients: variables must be a list of symbolic tensors, got " .. describe(variables))
  end
  local n = 0
  for k in pairs(variables) do
    if math.type(k) ~= "integer" or k < 1 then
      raise("K.gradients: variables must be a list of symbolic tensors (a table with key " .. tostring(k) .. ")")
    end
    n = math.max(n, k)
  end
  local given = variables
  variables = {}
  for i = 1, n do
    -- a weight as the tensor model.weights / layer.weights list: its node
    local v = given[i]
    if getmetatable(v) == core.Tensor and K._weight_nodes and K._weight_nodes[v] then v = K._weight_nodes[v] end
    variables[i] = v
  end
  if loss.ndim ~= 0 then loss = K.sum(loss) end   -- tf.gradients sums a loss that is not a scalar
  for i = 1, n do
    if not is_node(variables[i]) then
      raise(string.format("K.gradients: variables[%d] must be a symbolic tensor (K.variable, a weight, an Input), "
        .. "got %s", i, describe(variables[i])))
    end
  end
  local ok, g = pcall(core.gradients, loss, variables)
  if not ok then raise((tostring(g):gsub("^gradients: ", "K.gradients: "))) end
  return g
end


-- K.batch_dot(x, y, axes): per sample, contract axis axes[1] of x with
-- axes[2] of y (Keras's batch_dot for 2-D and 3-D tensors). 2-D x 2-D gives
-- (batch, 1).
function K.batch_dot(x, y, axes)
  local nx, ny = K.ndim(x), K.ndim(y)
  if type(axes) == "number" then axes = {axes, axes} end
  if axes == nil then axes = {nx - 1, ny == 2 and 1 or ny - 2} end
  local a1 = axes[1] < 0 and axes[1] + nx or axes[1]
  local a2 = axes[2] < 0 and axes[2] + ny or axes[2]
  if nx == 2 and ny == 2 then
    if a1 ~= 1 or a2 ~= 1 then raise("K.batch_dot: 2-D inputs contract axis 1 with axis 1") end
    return K.sum(K.mul(x, y), 1, true)
  end
  if nx ~= 3 or ny ~= 3 then
    raise(string.format("K.batch_dot: supports 2-D and 3-D inputs, got ranks %d and %d", nx, ny))
  end
  if a1 < 1 or a1 > 2 or a2 < 1 or a2 > 2 then raise("K.batch_dot: axes must be 1 or 2 for 3-D inputs") end
  -- x's contracted axis last (no transpose) or first (transpose); y's first or last
  return K.apply("batch_matmul", {x, y}, {transpose_a = a1 == 1 and 1 or 0, transpose_b = a2 == 2 and 1 or 0})
end

-- the rest of Keras's backend (backend_ext.lua)
local ext = package.preload["keras.backend_ext"]
if not ext then error("keras: missing module keras.backend_ext") end
ext(core, K)

-- A missing tensor: every function of K whose parameters include x, y, a, b,
-- kernel, y_true, y_pred, tensors or list says which one is nil and where it goes (not
-- "attempt to index a nil value" from inside this file), through one wrapper
-- made here once for all of them. The is_* predicates take anything; K.scale's
-- a and b are numbers (b optional).
local REQUIRED = {x = true, y = true, a = true, b = true, kernel = true, y_true = true, y_pred = true, tensors = true,
                  list = true}
for name, f in pairs(K) do
  if type(f) == "function" and name:sub(1, 1) ~= "_" and name:sub(1, 3) ~= "is_" and name ~= "scale" then
    local need, names = {}, {}
    for i = 1, debug.getinfo(f, "u").nparams do
      local p = debug.getlocal(f, i)
      if REQUIRED[p] then need[#need + 1], names[#need + 1] = i, p end
    end
    if #need > 0 then
      local who = "K." .. name
      K[name] = function(...)
        for j = 1, #need do
          if select(need[j], ...) == nil then
            raise(string.format("%s: argument %d (%s) is nil: expected %s", who, need[j], names[j],
              (names[j] == "list" or names[j] == "tensors") and "a list of tensors" or "a tensor"))
          end
        end
        return f(...)
      end
    end
  end
end

return K
