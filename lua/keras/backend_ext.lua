-- keras.backend, continued (docs/backend.md): the rest of Keras 2.2.4's
-- tensorflow_backend.py that has a meaning on a CPU float32 engine --
-- K["function"], K.gradients, the learning phase, symbolic shapes and random
-- draws, shape manipulation, scans, losses, normalization, convolution and
-- pooling, variable updates -- and, for each function that has none, a
-- clear refusal saying why (docs/backend.md lists them all).
-- Loaded by backend.lua with the core and the K table it fills; convolution,
-- pooling, K.rnn, locally connected and 3-D ops and CTC are in backend_nn.lua,
-- which this file loads.
local core, K = ...

local is_node = core.is_node
local apply, raise, axis_mask = K.apply, K._raise, K._axis_mask
local Tensor = core.Tensor
local fmt = string.format

local function is_concrete(x) return getmetatable(x) == Tensor end
local is_plain = require("keras.util").is_plain
local check_random = require("keras.util").check_random

local function ndim_of(x)
  if type(x) == "number" then return 0 end
  return K.ndim(x)
end

local function shape_of(x)
  if type(x) == "number" then return {} end
  if is_plain(x) then return core.tensor(x).shape end
  return x.shape
end

local function shape_str(s)
  local parts = {}
  for i, d in ipairs(s) do parts[i] = d < 0 and "None" or tostring(d) end
  if #parts == 1 then return "(" .. parts[1] .. ",)" end
  return "(" .. table.concat(parts, ", ") .. ")"
end

local function what(v)
  if is_node(v) then return "a symbolic tensor" end
  if is_concrete(v) then return "a tensor" end
  return type(v)
end

local KWARGS_REQUIRED = {x = true, kernel = true, depthwise_kernel = true, pointwise_kernel = true, target = true,
                         output = true}

-- Keras's keyword arguments: f(a, b, {name = v}) or f{a, b, name = v}.
-- Returns a table of the arguments by name; an unknown name is an error.
local function kwargs(who, names, ...)
  local args = table.pack(...)
  local out = {}
  local last = args[args.n]
  local opts
  if args.n >= 1 and is_plain(last) then
    for k in pairs(last) do
      if type(k) == "string" then opts = last break end
    end
  end
  local npos = opts and args.n - 1 or args.n
  if opts and args.n == 1 then
    -- one table: its array part holds the positional arguments
    for i = 1, #opts do out[names[i]] = opts[i] end
    npos = 0
  end
  if npos > #names then raise(fmt("%s: at most %d arguments, got %d", who, #names, npos)) end
  for i = 1, npos do out[names[i]] = args[i] end
  if opts then
    local known = {}
    for _, nm in ipairs(names) do known[nm] = true end
    for k, v in pairs(opts) do
      if type(k) == "string" then
        if not known[k] then raise(fmt("%s: unknown argument '%s'", who, k)) end
        out[k] = v
      end
    end
  end
  -- the tensors these functions cannot do without (as backend.lua checks the
  -- named parameters of the others)
  for i, nm in ipairs(names) do
    if out[nm] == nil and KWARGS_REQUIRED[nm] then
      raise(fmt("%s: argument %d (%s) is nil: expected a tensor", who, i, nm))
    end
  end
  return out
end

local function check_dtype(who, dtype, allow_int)
  if dtype == nil or dtype == "float32" then return end
  if allow_int and type(dtype) == "string" and dtype:match("^u?int%d*$") then return end
  raise(fmt("%s: dtype '%s' is not supported: every tensor holds float32", who, tostring(dtype)))
end

local function no_seed(who, seed)
  if seed ~= nil then
    raise(who .. ": a per-call seed is not supported: call keras.random.seed(n) once, which makes the whole "
      .. "run reproducible (data, weights, dropout and K.random_* draws)")
  end
end

local function channels_last(who, data_format)
  if data_format ~= nil and data_format ~= "channels_last" then
    raise(fmt("%s: data_format '%s' is not supported: lkeras computes channels_last only", who, tostring(data_format)))
  end
end

-- Keras's name= argument: a symbolic result carries it in its annotations
-- (node:meta().name); tensors have no names
local function named(v, name)
  if name ~= nil and is_node(v) then v:meta().name = name end
  return v
end

local function refused(name, why)
  K[name] = function() raise(fmt("K.%s is not supported by lkeras: %s", name, why)) end
end

-- ---- weights: a layer weight's tensor stands for its variable node ----

-- tensor -> variable node, for model.weights / model.trainable_weights (whose
-- entries are the weights' tensors); filled by Layer:add_weight
K._weight_nodes = setmetatable({}, {__mode = "k"})

local function var_node(x)
  if is_node(x) then return x end
  if is_concrete(x) then return K._weight_nodes[x] end
  return nil
end

-- ---- the learning phase ----

local phase_node         -- the placeholder K.learning_phase() returns
local phase_value        -- 0 or 1 after K.set_learning_phase, else nil

function K.learning_phase()
  if phase_value ~= nil then return phase_value end
  if not phase_node then
    phase_node = core.input({})
    phase_node:meta().learning_phase = true
  end
  return phase_node
end

function K.set_learning_phase(value)
  if value ~= 0 and value ~= 1 then
    raise(fmt("K.set_learning_phase: expected 0 or 1, got %s", tostring(value)))
  end
  phase_value = value
end

local function phase_flag(v, who)
  if v == 1 or v == true then return 1 end
  if v == 0 or v == false then return 0 end
  raise(fmt("%s: the learning phase must be 0 or 1, got %s", who, tostring(v)))
end

local function same_shape(a, b)
  local sa, sb = shape_of(a), shape_of(b)
  if #sa ~= #sb then return false end
  for i = 1, #sa do
    if sa[i] ~= sb[i] then return false end
  end
  return true
end

-- a and b broadcast to one shape (zeros added where they differ)
local function broadcast_pair(a, b)
  if same_shape(a, b) then return a, b end
  local z = K.add(K.zeros_like(a), K.zeros_like(b))
  return K.add(a, z), K.add(b, z)
end

function K.in_train_phase(x, alt, training)
  if type(x) == "function" then x = x() end
  if type(alt) == "function" then alt = alt() end
  if training == nil or training == phase_node then
    if phase_value ~= nil then training = phase_value end
  end
  if training == nil or training == phase_node then
    -- chosen when the plan runs: fit (1), evaluate/predict (0), K.function
    x, alt = broadcast_pair(x, alt)
    return apply("in_train_phase", {x, alt})
  end
  if is_node(training) then return K.switch(training, x, alt) end
  return phase_flag(training, "K.in_train_phase") == 1 and x or alt
end

function K.in_test_phase(x, alt, training) return K.in_train_phase(alt, x, training) end

-- ---- K.function ----

-- function -> its keras.Function userdata (tests read the compiled plans)
K._functions = setmetatable({}, {__mode = "k"})

local Update = {}
Update.__index = Update
Update.__name = "keras.Update"

-- K["function"](inputs, outputs, updates): a Lua function taking a list of
-- values (one per input) and returning a list of tensors (one per output).
-- Plans are compiled once per learning phase, for the largest batch seen.
function K.func(inputs, outputs, updates, extra)
  local who = "K.function"
  if extra ~= nil then
    raise(who .. ": TensorFlow session arguments are not supported (there is no session)")
  end
  if is_node(inputs) then inputs = {inputs} end
  if not is_plain(inputs) then
    raise(fmt("%s: inputs must be a list of symbolic tensors, got %s", who, what(inputs)))
  end
  if is_node(outputs) or is_concrete(outputs) then outputs = {outputs} end
  if not is_plain(outputs) then raise(fmt("%s: outputs must be a list of tensors, got %s", who, what(outputs))) end
  local phase_pos
  for i, v in ipairs(inputs) do
    if not is_node(v) then
      raise(fmt("%s: input %d must be a symbolic tensor (an Input, K.placeholder or K.learning_phase()), got %s",
        who, i, what(v)))
    end
    if v == phase_node then phase_pos = i end
  end
  local outs = {}
  for i, v in ipairs(outputs) do
    if is_concrete(v) then v = core.const(v) end
    if not is_node(v) then raise(fmt("%s: output %d must be a tensor, got %s", who, i, what(v))) end
    outs[i] = v
  end
  local nout = #outs
  local upd = {}
  for i, u in ipairs(updates or {}) do
    local x, new
    if getmetatable(u) == Update then x, new = u.x, u.new
    elseif is_plain(u) then x, new = u[1], u[2]
    else raise(fmt("%s: update %d must be K.update(x, new_x) or a pair {x, new_x}, got %s", who, i, what(u))) end
    local node = var_node(x)
    if not node or node.op ~= "variable" then
      raise(fmt("%s: update %d: x must be a variable (a layer weight), got %s", who, i, what(x)))
    end
    if not is_node(new) then new = core.const(new) end
    if not same_shape(node, new) then
      raise(fmt("%s: update %d: the new value has shape %s, the variable %s", who, i, shape_str(new.shape),
        shape_str(node.shape)))
    end
    upd[i] = node.value
    outs[nout + i] = new
  end
  local ok, f = pcall(core.func, inputs, outs)
  if not ok then raise(f) end
  local nin = #inputs
  local fn = function(values)
    if not is_plain(values) then
      raise(fmt("%s: call it with a list of values, one per input ({x, ...}), got %s", who, what(values)))
    end
    if #values ~= nin then
      raise(fmt("%s: expected %d input%s, got %d", who, nin, nin == 1 and "" or "s", #values))
    end
    local training = phase_value or 0
    if phase_pos then
      training = phase_flag(values[phase_pos], who)
      local v = {}
      for i = 1, nin do v[i] = values[i] end
      v[phase_pos] = training
      values = v
    end
    local ok2, res = pcall(f.run, f, values, training == 1)
    if not ok2 then raise(res) end
    for i, t in ipairs(upd) do
      t:assign(res[nout + i])
      res[nout + i] = nil
    end
    return res
  end
  K._functions[fn] = f
  return fn
end
K["function"] = K.func

-- ---- gradients ----

-- K.gradients: backend.lua's (weights given as the tensors model.weights lists too)

-- ---- symbolic shapes ----

-- K.shape(x): a 1-D tensor of x's dimensions; symbolic when x is (the
-- batch axis filled in when a plan runs). K.shape(x)[i] (1-based) is a
-- symbolic scalar; both are accepted wherever a shape is.
function K.shape(x)
  if is_node(x) then
    local s = apply("shape", {x})
    s:meta().shape_of = x
    return s
  end
  if is_concrete(x) then return core.tensor(#x.shape > 0 and x.shape or {}) end
  if type(x) == "number" or is_plain(x) then return core.tensor(shape_of(x)) end
  raise(fmt("K.shape: expected a tensor, got %s", what(x)))
end

core.Node.methods.__geti = function(node, i)
  local src = node:meta().shape_of
  if not src then return nil end   -- other symbolic tensors have no numbered fields (as before)
  local nd = #src.shape
  if math.type(i) ~= "integer" or i < 1 or i > nd then
    raise(fmt("K.shape(x)[i]: position %s is out of range 1..%d", tostring(i), nd))
  end
  local e = apply("reshape", {apply("slice", {node}, {axis = 0, start = i - 1, length = 1})}, {shape = {}})
  e:meta().dim_of = {src, i}
  return e
end

local function dim_value(v, who, pos)
  if math.type(v) == "integer" then return v end
  if type(v) == "number" and v == math.floor(v) then return math.tointeger(v) end
  if v == K.None then
    raise(fmt("%s: shape element %d is None: give a number or a dimension K.shape(x)[i]", who, pos))
  end
  if is_node(v) then
    local d = v:meta().dim_of
    if d then return d[1].shape[d[2]], d[1] end
    raise(fmt("%s: shape element %d is a computed symbolic value: only numbers and dimensions K.shape(x)[i] "
      .. "are supported", who, pos))
  end
  raise(fmt("%s: shape element %d must be an integer, got %s", who, pos, tostring(v)))
end

-- a shape argument -> a list of sizes (the first may be the batch axis,
-- negative) and the symbolic tensor it comes from (or nil)
local function resolve_shape(shape, who)
  local dims, like = {}, nil
  if is_node(shape) then
    like = shape:meta().shape_of
    if not like then
      raise(who .. ": a symbolic shape must be K.shape(x), or a list of numbers and dimensions K.shape(x)[i]")
    end
    for i, d in ipairs(like.shape) do dims[i] = d end
    return dims, like
  end
  if is_concrete(shape) then shape = shape.ndim == 0 and {shape:totable()} or shape:totable() end
  if math.type(shape) == "integer" then shape = {shape} end
  if not is_plain(shape) then raise(fmt("%s: shape must be a list of sizes, got %s", who, what(shape))) end
  for i = 1, #shape do
    local d, src = dim_value(shape[i], who, i)
    dims[i] = d
    if src then like = like or src end
  end
  for i, d in ipairs(dims) do
    if d < 0 and (i ~= 1 or not like) then
      if like then
        raise(fmt("%s: only the first axis can be the batch axis, got shape element %d = K.shape(x)[1]", who, i))
      end
      raise(fmt("%s: shape element %d must be >= 0, got %d", who, i, d))
    end
  end
  return dims, like
end
K._resolve_shape = resolve_shape

local function fill(dims, like, v)
  return apply("fill", {like or 0}, {value = v, shape = dims})
end

-- attrs: the op's parameters by name ({mean =, stddev =}, ...)
local function random_op(op, who, shape, attrs, dtype, seed)
  check_dtype(who, dtype)
  no_seed(who, seed)
  local dims, like = resolve_shape(shape, who)
  attrs.shape = dims
  return apply(op, {like or 0}, attrs)
end

function K.random_normal(...)
  local a = kwargs("K.random_normal", {"shape", "mean", "stddev", "dtype", "seed"}, ...)
  check_random("K.random_normal", "normal", a.mean or 0, a.stddev or 1, "mean", "stddev")
  return random_op("random_normal", "K.random_normal", a.shape, {mean = a.mean or 0, stddev = a.stddev or 1},
    a.dtype, a.seed)
end

function K.random_uniform(...)
  local a = kwargs("K.random_uniform", {"shape", "minval", "maxval", "dtype", "seed"}, ...)
  check_random("K.random_uniform", "uniform", a.minval or 0, a.maxval or 1, "minval", "maxval")
  return random_op("random_uniform", "K.random_uniform", a.shape, {minval = a.minval or 0, maxval = a.maxval or 1},
    a.dtype, a.seed)
end

function K.random_binomial(...)
  local a = kwargs("K.random_binomial", {"shape", "p", "dtype", "seed"}, ...)
  return random_op("random_binomial", "K.random_binomial", a.shape, {p = a.p or 0}, a.dtype, a.seed)
end

function K.truncated_normal(...)
  local a = kwargs("K.truncated_normal", {"shape", "mean", "stddev", "dtype", "seed"}, ...)
  check_random("K.truncated_normal", "normal", a.mean or 0, a.stddev or 1, "mean", "stddev")
  return random_op("truncated_normal", "K.truncated_normal", a.shape, {mean = a.mean or 0, stddev = a.stddev or 1},
    a.dtype, a.seed)
end

function K.random_uniform_variable(shape, low, high, dtype, name, seed)
  return named(K.random_uniform(shape, low, high, dtype, seed), name)
end

function K.random_normal_variable(shape, mean, scale, dtype, name, seed)
  return named(K.random_normal(shape, mean, scale, dtype, seed), name)
end

-- reshape with a symbolic shape: resolved statically
local base_reshape = K.reshape
function K.reshape(x, shape)
  if is_node(shape) or (is_plain(shape) and (function()
    for _, d in ipairs(shape) do if is_node(d) then return true end end
    return false
  end)()) then
    local dims, like = resolve_shape(shape, "K.reshape")
    if like and dims[1] and dims[1] < 0 then dims[1] = -1 end
    shape = dims
  end
  return base_reshape(x, shape)
end

function K.zeros(shape, dtype, name)
  check_dtype("K.zeros", dtype, true)
  local dims, like = resolve_shape(shape, "K.zeros")
  return named(fill(dims, like, 0), name)
end

function K.ones(shape, dtype, name)
  check_dtype("K.ones", dtype, true)
  local dims, like = resolve_shape(shape, "K.ones")
  return named(fill(dims, like, 1), name)
end

function K.eye(size, dtype, name)
  check_dtype("K.eye", dtype, true)
  if math.type(size) ~= "integer" or size < 1 then
    raise(fmt("K.eye: size must be a positive integer, got %s", tostring(size)))
  end
  return named(apply("one_hot", {core.arange(0, size, 1)}, {classes = size}), name)
end

local base_zeros_like, base_ones_like = K.zeros_like, K.ones_like
function K.zeros_like(x, dtype, name)
  check_dtype("K.zeros_like", dtype, true)
  return named(base_zeros_like(x), name)
end
function K.ones_like(x, dtype, name)
  check_dtype("K.ones_like", dtype, true)
  return named(base_ones_like(x), name)
end

-- ---- placeholders, variables, values ----

function K.placeholder(...)
  local a = kwargs("K.placeholder", {"shape", "ndim", "dtype", "sparse", "name"}, ...)
  check_dtype("K.placeholder", a.dtype, true)
  if a.sparse then raise("K.placeholder: sparse tensors are not supported: every tensor is dense") end
  local shape = a.shape
  if shape == nil then
    if math.type(a.ndim) ~= "integer" or a.ndim < 0 then raise("K.placeholder: give a shape or an ndim") end
    shape = {}
    for i = 1, a.ndim do shape[i] = K.None end
  end
  local dims = {}
  for i, d in ipairs(shape) do
    if d == K.None then
      if i ~= 1 then
        raise(fmt("K.placeholder: axis %d is None: only the first axis (the batch) may be None here", i - 1))
      end
      d = -1
    elseif math.type(d) ~= "integer" or d < 0 then
      raise(fmt("K.placeholder: shape element %d must be a size or None, got %s", i, tostring(d)))
    end
    dims[i] = d
  end
  return named(core.input(dims), a.name)
end

-- K.constant, K.variable: backend.lua's (dtype, shape, name)

function K.is_placeholder(x) return is_node(x) and x.op == "input" end

function K.dtype(x)
  if is_node(x) or is_concrete(x) or type(x) == "number" then return "float32" end
  raise(fmt("K.dtype: expected a tensor, got %s", what(x)))
end

function K.get_variable_shape(x) return K.int_shape(x) end

function K.count_params(x)
  local s = shape_of(x)
  local n = 1
  for i, d in ipairs(s) do
    if d < 0 then raise(fmt("K.count_params: axis %d of shape %s is not known", i - 1, shape_str(s))) end
    n = n * d
  end
  return n
end

function K.batch_get_value(list)
  local out = {}
  for i, x in ipairs(list) do out[i] = K.get_value(x) end
  return out
end

function K.batch_set_value(pairs_)
  for i, p in ipairs(pairs_) do
    if not is_plain(p) then raise(fmt("K.batch_set_value: entry %d must be a pair {x, value}", i)) end
    K.set_value(p[1], p[2])
  end
end

function K.cast_to_floatx(x)
  if is_concrete(x) then return x end
  return core.tensor(x)
end

function K.set_floatx(v)
  if v ~= "float32" then raise(fmt("K.set_floatx: only 'float32' is supported, got '%s'", tostring(v))) end
end

function K.set_image_data_format(v)
  if v ~= "channels_last" then
    raise(fmt("K.set_image_data_format: only 'channels_last' is supported, got '%s'", tostring(v)))
  end
end
function K.image_dim_ordering() return "tf" end
function K.set_image_dim_ordering(v)
  if v ~= "tf" then
    raise(fmt("K.set_image_dim_ordering: only 'tf' (channels_last) is supported, got '%s'", tostring(v)))
  end
end
function K.normalize_data_format(v)
  if v == nil then return "channels_last" end
  if v ~= "channels_last" and v ~= "channels_first" then
    raise(fmt("K.normalize_data_format: expected 'channels_last' or 'channels_first', got '%s'", tostring(v)))
  end
  return v
end

function K.is_sparse(_) return false end
function K.to_dense(x) return x end

function K.print_tensor(x, message)
  if is_node(x) then
    raise("K.print_tensor: printing from inside a compiled plan is not supported: fetch the value with "
      .. "K[\"function\"] and print it")
  end
  io.write((message or ""), tostring(x), "\n")
  return x
end

function K.manual_variable_initialization(value)
  if value then
    raise("K.manual_variable_initialization: variables are initialized when they are created; manual "
      .. "initialization is not supported")
  end
end

-- ---- uids and the session ----

local uid_counts = {}
function K.get_uid(prefix)
  prefix = prefix or ""
  uid_counts[prefix] = (uid_counts[prefix] or 0) + 1
  return uid_counts[prefix]
end
function K.reset_uids() uid_counts = {} end

K._clear_hooks = {}
function K.clear_session()
  K.reset_uids()
  phase_node, phase_value = nil, nil
  for _, f in ipairs(K._clear_hooks) do f() end
end

-- ---- updates ----

local function var_target(x, who)
  if is_concrete(x) then return x, K._weight_nodes[x] end
  if is_node(x) and x.op == "variable" then return x.value, x end
  raise(fmt("%s: x must be a variable (K.variable or a layer weight), got %s", who, what(x)))
end

-- K.update(x, new_x): with a symbolic new value, an update for K.function's
-- updates list (applied after each call); otherwise x is set at once
function K.update(x, new_x)
  local t, node = var_target(x, "K.update")
  if is_node(new_x) then
    if not node then
      raise("K.update: a symbolic new value needs a variable node as x (K.variable or a layer weight)")
    end
    return setmetatable({x = node, new = new_x}, Update)
  end
  local v = is_concrete(new_x) and new_x or core.tensor(new_x)
  if not same_shape(t, v) then
    if #v.shape == 0 then v = K.add(K.zeros_like(t), v)
    else raise(fmt("K.update: the new value has shape %s, x has %s", shape_str(v.shape), shape_str(t.shape))) end
  end
  t:assign(v)
  return x
end

function K.update_add(x, inc)
  local t, node = var_target(x, "K.update_add")
  if is_node(inc) then return K.update(x, K.add(node or x, inc)) end
  return K.update(x, K.add(t, inc))    -- a concrete increment: x is set at once
end

function K.update_sub(x, dec)
  local t, node = var_target(x, "K.update_sub")
  if is_node(dec) then return K.update(x, K.sub(node or x, dec)) end
  return K.update(x, K.sub(t, dec))
end

function K.moving_average_update(x, value, momentum)
  local t, node = var_target(x, "K.moving_average_update")
  local base = is_node(value) and (node or x) or t
  return K.update(x, K.add(K.mul(base, momentum), K.mul(value, 1 - momentum)))
end

-- K.stop_gradient(x) or K.stop_gradient({x, y, ...}) (a list gives a list)
local base_stop_gradient = K.stop_gradient
function K.stop_gradient(variables)
  if is_plain(variables) then
    local out = {}
    for i, v in ipairs(variables) do out[i] = base_stop_gradient(v) end
    return out
  end
  return base_stop_gradient(variables)
end

-- ---- elementwise and selection ----

function K.sin(x) return apply("sin", {x}) end
function K.cos(x) return apply("cos", {x}) end

-- the condition broadcast over trailing axes it lacks (Keras: expanded on the right)
function K.switch(condition, then_expression, else_expression)
  local a, b = then_expression, else_expression
  if type(a) == "function" then a = a() end
  if type(b) == "function" then b = b() end
  if type(condition) == "boolean" then return condition and a or b end
  local cn = ndim_of(condition)
  local en = math.max(ndim_of(a), ndim_of(b))
  if cn > en then
    raise(fmt("K.switch: the condition has rank %d, more than the expressions' rank %d", cn, en))
  end
  if cn == 0 and not is_node(condition) then
    local v = type(condition) == "number" and condition or condition:totable()
    return v ~= 0 and a or b
  end
  local c = condition
  if cn > 0 and cn < en then
    for _ = cn + 1, en do c = K.expand_dims(c, -1) end
  end
  local z = K.add(K.add(K.zeros_like(c), K.zeros_like(a)), K.zeros_like(b))
  if not same_shape(c, z) then c = K.add(c, z) end
  if not same_shape(a, z) then a = K.add(a, z) end
  if not same_shape(b, z) then b = K.add(b, z) end
  return apply("select", {c, a, b})
end

-- ---- shapes: tile, repeat, stack, slice, reverse, padding ----

local function norm_axis(who, x, axis, extra)
  local nd = ndim_of(x) + (extra or 0)
  if math.type(axis) ~= "integer" or axis < -nd or axis >= nd then
    raise(fmt("%s: axis %s is out of range for a tensor of rank %d", who, tostring(axis), ndim_of(x)))
  end
  return axis < 0 and axis + nd or axis
end

local function batched(x) return is_node(x) and x.shape[1] ~= nil and x.shape[1] < 0 end

-- n copies of x along axis (0-based)
local function copies(x, n, axis)
  if n == 1 then return x end
  local list = {}
  for i = 1, n do list[i] = x end
  return apply("concat", list, {axis = axis})
end

function K.tile(x, n)
  if math.type(n) == "integer" then n = {n} end
  if not is_plain(n) then raise(fmt("K.tile: n must be a list of integers, got %s", what(n))) end
  local nd = ndim_of(x)
  if #n ~= nd then raise(fmt("K.tile: n has %d entries, the tensor has rank %d", #n, nd)) end
  for i, k in ipairs(n) do
    if math.type(k) ~= "integer" or k < 1 then
      raise(fmt("K.tile: n[%d] must be a positive integer, got %s", i, tostring(k)))
    end
    if k > 1 and i == 1 and batched(x) then
      raise("K.tile: cannot tile the batch axis of a symbolic tensor")
    end
  end
  for i, k in ipairs(n) do x = copies(x, k, i - 1) end
  return x
end

-- (batch, dim) -> (batch, n, dim); `repeat` is a Lua keyword: K["repeat"] (or K.repeat_)
K["repeat"] = function(x, n)
  if ndim_of(x) ~= 2 then raise(fmt("K.repeat: expected a 2-D tensor, got rank %d", ndim_of(x))) end
  if math.type(n) ~= "integer" or n < 1 then
    raise(fmt("K.repeat: n must be a positive integer, got %s", tostring(n)))
  end
  return copies(K.expand_dims(x, 1), n, 1)
end
K.repeat_ = K["repeat"]

function K.repeat_elements(x, rep, axis)
  if math.type(rep) ~= "integer" or rep < 1 then
    raise(fmt("K.repeat_elements: rep must be a positive integer, got %s", tostring(rep)))
  end
  axis = norm_axis("K.repeat_elements", x, axis)
  if axis == 0 and batched(x) then
    raise("K.repeat_elements: cannot repeat along the batch axis of a symbolic tensor")
  end
  local s = shape_of(x)
  local y = copies(K.expand_dims(x, axis + 1), rep, axis + 1)
  local target = {}
  for i, d in ipairs(s) do target[i] = d end
  target[axis + 1] = s[axis + 1] * rep
  if batched(x) then target[1] = -1 end
  return K.reshape(y, target)
end

function K.stack(list, axis)
  axis = axis or 0
  if not is_plain(list) or #list == 0 then raise("K.stack: expected a non-empty list of tensors") end
  local ax = norm_axis("K.stack", list[1], axis, 1)
  if ax == 0 and batched(list[1]) then
    raise("K.stack: stacking symbolic tensors on axis 0 would move their batch axis; stack on axis 1 or later")
  end
  local e = {}
  for i, x in ipairs(list) do e[i] = K.expand_dims(x, ax) end
  return apply("concat", e, {axis = ax})
end

function K.arange(start, stop, step, dtype)
  check_dtype("K.arange", dtype or "int32", true)
  if stop == nil then
    if start < 0 then start = 0 end
    start, stop = 0, start
  end
  step = step or 1
  for _, v in ipairs{start, stop, step} do
    if type(v) ~= "number" then raise(fmt("K.arange: start, stop and step must be numbers, got %s", what(v))) end
  end
  if step == 0 then raise("K.arange: step must not be 0") end
  return core.arange(start, stop, step)
end

function K.cumsum(x, axis) return apply("cumsum", {x}, {axis = axis or 0, reverse = 0}) end
function K.cumprod(x, axis) return apply("cumprod", {x}, {axis = axis or 0}) end

function K.reverse(x, axes)
  if math.type(axes) == "integer" then axes = {axes} end
  return apply("reverse", {x}, {axes = axis_mask(x, axes, "K.reverse")})
end

-- K.slice(x, start, size): 0-based starts; size -1 runs to the end
function K.slice(x, start, size)
  local s = shape_of(x)
  if not is_plain(start) or not is_plain(size) or #start ~= #s or #size ~= #s then
    raise(fmt("K.slice: start and size must be lists of %d integers (the rank of x)", #s))
  end
  for i = 1, #s do
    local st, sz = start[i], size[i]
    if sz == -1 then sz = s[i] - st end
    if i == 1 and batched(x) then
      if st ~= 0 or size[i] ~= -1 then raise("K.slice: cannot slice the batch axis of a symbolic tensor") end
    elseif st ~= 0 or sz ~= s[i] then
      if math.type(st) ~= "integer" or math.type(sz) ~= "integer" or st < 0 or sz < 0 or st + sz > s[i] then
        raise(fmt("K.slice: axis %d: start %s and size %s do not fit its size %d", i - 1, tostring(start[i]),
          tostring(size[i]), s[i]))
      end
      x = apply("slice", {x}, {axis = i - 1, start = st, length = sz})
    end
  end
  return x
end

local function pad_axis(x, axis, before, after, who)
  if math.type(before) ~= "integer" or math.type(after) ~= "integer" or before < 0 or after < 0 then
    raise(fmt("%s: padding must be non-negative integers, got %s and %s", who, tostring(before), tostring(after)))
  end
  if before == 0 and after == 0 then return x end
  local d = shape_of(x)[axis + 1]
  return apply("pad_axis", {x}, {axis = axis, start = before, length = d + before + after})
end

function K.temporal_padding(x, padding)
  padding = padding or {1, 1}
  if ndim_of(x) ~= 3 then raise(fmt("K.temporal_padding: expected a 3-D tensor, got rank %d", ndim_of(x))) end
  return pad_axis(x, 1, padding[1], padding[2], "K.temporal_padding")
end

function K.spatial_2d_padding(x, padding, data_format)
  channels_last("K.spatial_2d_padding", data_format)
  padding = padding or {{1, 1}, {1, 1}}
  if ndim_of(x) ~= 4 then raise(fmt("K.spatial_2d_padding: expected a 4-D tensor, got rank %d", ndim_of(x))) end
  x = pad_axis(x, 1, padding[1][1], padding[1][2], "K.spatial_2d_padding")
  return pad_axis(x, 2, padding[2][1], padding[2][2], "K.spatial_2d_padding")
end

function K.resize_images(x, height_factor, width_factor, data_format, interpolation)
  channels_last("K.resize_images", data_format)
  if interpolation ~= nil and interpolation ~= "nearest" then
    raise(fmt("K.resize_images: interpolation '%s' is not supported (only 'nearest')", tostring(interpolation)))
  end
  if ndim_of(x) ~= 4 then raise(fmt("K.resize_images: expected a 4-D tensor, got rank %d", ndim_of(x))) end
  return apply("upsample2d", {x}, {size_h = height_factor, size_w = width_factor})
end

-- ---- reductions and scans ----

function K.logsumexp(x, axis, keepdims)
  local m = K.stop_gradient(K.max(x, axis, true))
  local r = K.log(K.sum(K.exp(K.sub(x, m)), axis, true))
  r = K.add(r, m)
  if keepdims then return r end
  local mask = axis_mask(x, axis, "K.logsumexp")
  return apply("sum", {r}, {axes = mask, keepdims = 0})
end

function K.in_top_k(predictions, targets, k)
  if ndim_of(predictions) ~= 2 then
    raise(fmt("K.in_top_k: predictions must be 2-D (batch, classes), got rank %d", ndim_of(predictions)))
  end
  local n = shape_of(predictions)[2]
  local oh = K.one_hot(targets, n)
  if ndim_of(oh) ~= 2 then oh = K.reshape(oh, {batched(oh) and -1 or shape_of(predictions)[1], n}) end
  local target_score = K.sum(K.mul(predictions, oh), -1, true)
  local above = K.sum(K.greater(predictions, target_score), -1)
  return K.less(above, k)
end

-- ---- losses ----

function K.categorical_crossentropy(...)
  local a = kwargs("K.categorical_crossentropy", {"target", "output", "from_logits", "axis"}, ...)
  local target, output, axis = a.target, a.output, a.axis or -1
  if a.from_logits then
    return K.neg(K.sum(K.mul(target, K.log_softmax(output, axis)), axis))
  end
  output = K.div(output, K.sum(output, axis, true))
  output = K.clip(output, K.epsilon(), 1 - K.epsilon())
  return K.neg(K.sum(K.mul(target, K.log(output)), axis))
end

function K.sparse_categorical_crossentropy(...)
  local a = kwargs("K.sparse_categorical_crossentropy", {"target", "output", "from_logits", "axis"}, ...)
  local target, output, axis = a.target, a.output, a.axis or -1
  local nd = ndim_of(output)
  local ax = norm_axis("K.sparse_categorical_crossentropy", output, axis)
  if ax ~= nd - 1 then
    if ax == 0 and batched(output) then
      raise("K.sparse_categorical_crossentropy: the class axis cannot be the batch axis")
    end
    local perm = {}
    for i = 0, nd - 1 do if i ~= ax then perm[#perm + 1] = i end end
    perm[#perm + 1] = ax
    output = K.permute_dimensions(output, perm)
  end
  local logits = output
  if not a.from_logits then logits = K.log(K.clip(output, K.epsilon(), 1 - K.epsilon())) end
  local s = shape_of(output)
  local n = s[#s]
  local ts = {}
  for i = 1, #s - 1 do ts[i] = s[i] end
  if batched(output) then ts[1] = -1 end
  local ids = target
  if #ts == 0 then
    raise("K.sparse_categorical_crossentropy: the output needs a batch axis besides the class axis")
  end
  ids = K.reshape(ids, ts)
  local oh = K.one_hot(ids, n)
  return K.neg(K.sum(K.mul(oh, K.log_softmax(logits, -1)), -1))
end

function K.binary_crossentropy(...)
  local a = kwargs("K.binary_crossentropy", {"target", "output", "from_logits"}, ...)
  local z, x = a.target, a.output
  if not a.from_logits then
    x = K.clip(x, K.epsilon(), 1 - K.epsilon())
    x = K.log(K.div(x, K.sub(1, x)))
  end
  -- max(x, 0) - x z + log(1 + exp(-|x|)), as tf.nn.sigmoid_cross_entropy_with_logits
  return K.add(K.sub(K.relu(x), K.mul(x, z)), K.softplus(K.neg(K.abs(x))))
end

-- ---- normalization, bias ----

-- a 1-D parameter (C,) shaped to broadcast along `axis` of x
local function along(p, x, axis)
  if p == nil or type(p) == "number" then return p end
  local nd = ndim_of(x)
  if ndim_of(p) ~= 1 or axis == nd - 1 then return p end
  local s = {}
  for i = 1, nd - axis do s[i] = 1 end
  s[1] = shape_of(p)[1]
  return K.reshape(p, s)
end

function K.batch_normalization(...)
  local a = kwargs("K.batch_normalization", {"x", "mean", "var", "beta", "gamma", "axis", "epsilon"}, ...)
  local x = a.x
  local axis = norm_axis("K.batch_normalization", x, a.axis or -1)
  local eps = a.epsilon or 1e-3
  local mean, var = along(a.mean, x, axis), along(a.var, x, axis)
  local beta, gamma = along(a.beta, x, axis), along(a.gamma, x, axis)
  local y = K.div(K.sub(x, mean), K.sqrt(K.add(var, eps)))
  if gamma ~= nil then y = K.mul(y, gamma) end
  if beta ~= nil then y = K.add(y, beta) end
  return y
end

-- normalized x and the mean and variance over reduction_axes
function K.normalize_batch_in_training(x, gamma, beta, reduction_axes, epsilon)
  local mean = K.mean(x, reduction_axes, true)
  local var = K.var(x, reduction_axes, true)
  local y = K.div(K.sub(x, mean), K.sqrt(K.add(var, epsilon or 1e-3)))
  if gamma ~= nil then y = K.mul(y, gamma) end
  if beta ~= nil then y = K.add(y, beta) end
  local mask = axis_mask(x, reduction_axes, "K.normalize_batch_in_training")
  return y, apply("sum", {mean}, {axes = mask, keepdims = 0}),
    apply("sum", {var}, {axes = mask, keepdims = 0})
end

function K.bias_add(x, bias, data_format)
  channels_last("K.bias_add", data_format)
  local bn, xn = ndim_of(bias), ndim_of(x)
  if bn ~= 1 and bn ~= xn - 1 then
    raise(fmt("K.bias_add: the bias must have rank 1 or %d (the rank of x less 1), got rank %d", xn - 1, bn))
  end
  local s, bs = shape_of(x), shape_of(bias)
  for i = 1, bn do
    if bs[bn - i + 1] ~= s[xn - i + 1] then
      raise(fmt("K.bias_add: a bias of shape %s does not fit x of shape %s", shape_str(bs), shape_str(s)))
    end
  end
  return K.add(x, bias)
end

-- K.dropout (applied always, as Keras's): backend.lua's

-- ---- convolution, pooling, K.rnn, locally connected, 3-D, CTC ----
-- in backend_nn.lua, which shares the helpers above

do
  local nn = package.preload["keras.backend_nn"]
  if not nn then error("keras: missing module keras.backend_nn") end
  nn(core, K, {kwargs = kwargs, check_dtype = check_dtype, channels_last = channels_last, named = named,
    resolve_shape = resolve_shape, batched = batched, pad_axis = pad_axis, ndim_of = ndim_of, shape_of = shape_of,
    shape_str = shape_str, what = what, is_concrete = is_concrete})
end

-- ---- what Keras has and lkeras refuses, with the reason ----

for _, n in ipairs{"get_session", "set_session"} do
  refused(n, "there is no TensorFlow session: graphs are compiled and run by lkeras's own engine")
end
for _, n in ipairs{"name_scope", "variable_scope"} do
  refused(n, "graphs have no TensorFlow name or variable scopes")
end
refused("ctc_decode", "its output's length depends on the data (sparse decoded paths), which a compiled plan "
  .. "cannot have; take K.argmax over the classes and collapse repeats and blanks in Lua")
refused("ctc_label_dense_to_sparse", "there are no sparse tensors")

return K
