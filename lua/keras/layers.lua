-- keras.layers: the layer protocol and the core layers.
-- A layer owns its weights (tensors, each with one variable node) and adds
-- graph nodes when it is called on symbolic tensors. Each call is recorded
-- (inputs, outputs): that record is how models find their graph, and calling
-- a layer again shares its weights. The math is C graph ops (backend.lua).
local keras = ...
local util = require("keras.util")
local set = util.set
local raise = util.raise
local core, K = keras._core, keras.backend
local A, I = keras.activations, keras.initializers
local is_node = core.is_node

local layers = {}

-- ---- classes ----

local Layer = {class_name = "Layer", _getters = {}}
Layer.__index = Layer

local function class(name, parent)
  parent = parent or Layer
  local cls = setmetatable({class_name = name, _getters = setmetatable({}, {__index = parent._getters})},
                           {__index = parent})
  cls.__index = function(self, k)
    local g = cls._getters[k]
    if g then return g(self) end
    return cls[k]
  end
  cls.__call = function(self, ...) return self:__call_layer(...) end
  cls.__tostring = function(self) return string.format("<%s %s>", name, self.name) end
  cls.__name = "keras.layers." .. name
  return cls
end
layers._class = class
layers.Layer = Layer

-- Public entry points run their body through `api`: an error raised anywhere
-- inside the library reaches the user without positions inside lua/keras/,
-- pointing at the user's line unless it already names one.
local function strip(msg)
  if type(msg) ~= "string" then return msg, false end
  local prev
  repeat
    prev = msg
    msg = msg:gsub("^lua/keras/[%w_]+%.lua:%d+: ", ""):gsub("^%[C%]: ", "")
  until msg == prev
  return msg, msg:match("^[^%s:]+:%d+: ") ~= nil
end
layers._strip = strip

-- (the results pass through as values: no table per call)
local function api_results(ok, ...)
  if ok then return ... end
  local msg, positioned = strip((...))
  if positioned then error(msg, 0) end
  raise(msg)
end

function layers._api(fn)
  return function(...)
    return api_results(pcall(fn, ...))
  end
end

function layers.is_layer(x)
  return type(x) == "table" and x.__call_layer ~= nil and getmetatable(x) ~= nil
end

-- ---- arguments: Dense(64, {activation="relu"}) or Dense{64, activation="relu"} ----

local COMMON = {name = true, trainable = true, input_shape = true, input_dim = true, input_length = true,
                batch_size = true, batch_input_shape = true, dtype = true, weights = true}

local is_plain = keras._args.is_plain
local args_spec, args_parse = keras._args.spec, keras._args.parse

-- a lone table that is a list of numbers (and keras.None) is the first
-- positional value, as in Reshape({3, 4}) or Input({keras.None, 16})
local number_list = keras._args.number_list
layers._number_list = number_list

-- parse(cls, a, b, positional, allowed, first_is_sequence): the arguments of
-- a layer-like constructor called with at most two arguments (see args.lua
-- for the rule; define below takes any number)
local function parse(cls, a, b, positional, allowed, first_is_sequence)
  local s = args_spec{who = cls, positional = positional, allowed = allowed, common = COMMON,
                      single = first_is_sequence and number_list or nil}
  local o
  if b == nil then o = args_parse(s, a) else o = args_parse(s, a, b) end
  return o
end
layers._parse = parse

layers._set = set

-- ---- names: dense_1, dense_2, ... per class, per Lua state ----

local uids = {}
local function snake(name)
  local s = name:gsub("(.)(%u[%l%d]+)", "%1_%2"):gsub("(%l)(%u)", "%1_%2")
  return s:lower()
end
function layers._unique_name(prefix)
  uids[prefix] = (uids[prefix] or 0) + 1
  return prefix .. "_" .. uids[prefix]
end
function layers._reset_uids() uids = {} end
K._clear_hooks[#K._clear_hooks + 1] = layers._reset_uids

-- ---- shapes ----

local function shape_str(s)
  local parts = {}
  for i, d in ipairs(s) do parts[i] = (d == K.None or d < 0) and "None" or tostring(d) end
  if #parts == 1 then return "(" .. parts[1] .. ",)" end
  return "(" .. table.concat(parts, ", ") .. ")"
end
layers._shape_str = shape_str

local function user_shape(s)
  local out = {}
  for i, d in ipairs(s) do out[i] = d < 0 and K.None or d end
  return out
end

-- a Keras shape from the user: sizes, keras.None for unknown; -1 inside the engine
local function engine_shape(s, who, what)
  if type(s) ~= "table" then raise(string.format("%s: %s must be a table of sizes, got %s", who, what, type(s))) end
  local out = {}
  for i, d in ipairs(s) do
    if d == K.None or d == -1 then
      out[i] = -1   -- the batch, or a length known only from the data (a None axis)
    elseif math.type(d) ~= "integer" or d < 1 then
      raise(string.format("%s: %s must hold positive integers, got %s", who, what, tostring(d)))
    else
      out[i] = d
    end
  end
  return out
end
layers._engine_shape = engine_shape

-- ---- the base layer ----

function Layer._init(self, o)
  self.name = o.name or layers._unique_name(self._prefix or snake(self.class_name))
  if type(self.name) ~= "string" then raise(self.class_name .. ": name must be a string") end
  self.trainable = o.trainable == nil and true or not not o.trainable
  self._weights = {}
  self._inbound = {}
  self._losses = {}
  self.built = false
  self.stateful = false
  if o.weights then self._initial_weights = o.weights end
  -- first-layer shape arguments
  local bis
  if o.batch_input_shape then
    bis = engine_shape(o.batch_input_shape, self.class_name, "batch_input_shape")
  elseif o.input_shape then
    local s = engine_shape(o.input_shape, self.class_name, "input_shape")
    -- a leading None is a time axis of any length for the layers made for one
    -- (_none_length_ok, set in layers_rnn.lua and layers_conv.lua)
    if s[1] == -1 and not self._none_length_ok then
      raise(self.class_name .. ": input_shape must not include the batch dimension")
    end
    bis = {o.batch_size or -1}
    for i, d in ipairs(s) do bis[i + 1] = d end
  elseif o.input_dim then
    if math.type(o.input_dim) ~= "integer" or o.input_dim < 1 then
      raise(string.format("%s: input_dim must be a positive integer, got %s", self.class_name, tostring(o.input_dim)))
    end
    if o.input_length then
      bis = {o.batch_size or -1, o.input_length, o.input_dim}
    else
      bis = {o.batch_size or -1, o.input_dim}
    end
  end
  self._batch_input_shape = bis
  return self
end

function Layer:_msg(fmt, ...)
  return string.format("%s (%s): " .. fmt, self.class_name, self.name, ...)
end

function Layer:add_weight(o)
  local shape = o.shape
  local init = I.get(o.initializer or "glorot_uniform", self.class_name)
  local t = init(shape)
  local w = {name = self.name .. "/" .. o.name .. ":0", short = o.name, tensor = t,
             node = core.variable(t), trainable = o.trainable ~= false, regularizer = o.regularizer,
             constraint = o.constraint}
  if o.constraint then   -- its C descriptor, applied after every update (keras.constraints)
    w.constraint_desc = keras.constraints._descriptor(o.constraint, shape,
      string.format("%s: %s", self.class_name, o.constraint_arg or o.name .. "_constraint"))
  end
  K._weight_nodes[t] = w.node
  table.insert(self._weights, w)
  if o.regularizer then
    table.insert(self._losses, function() return o.regularizer(w.node) end)
  end
  return w.node, w
end

-- the activity_regularizer's loss on the output y, when the layer has one:
-- the regularizer of the whole batch's output, not divided by the batch size
-- (Keras 2.2.4's Layer.__call__; tf.keras divides, Keras 2.2.4 does not)
function Layer:_activity_loss(y)
  local r = self.activity_regularizer
  if not r then return end
  table.insert(self._losses, function() return r(y) end)
end

-- the kernel (of shape kshape) and, with use_bias, the bias (units) of Dense
-- and the convolutions, from their initializer and regularizer options
function Layer:_add_kernel_and_bias(kshape, units)
  self.kernel = self:add_weight{name = "kernel", shape = kshape, initializer = self.kernel_initializer,
                                regularizer = self.kernel_regularizer, constraint = self.kernel_constraint}
  if self.use_bias then
    self.bias = self:add_weight{name = "bias", shape = {units}, initializer = self.bias_initializer,
                                regularizer = self.bias_regularizer, constraint = self.bias_constraint}
  end
end

-- weights: trainable first, then non-trainable (Keras's layer.weights order)
local function ordered(self)
  local out = {}
  for _, w in ipairs(self._weights) do if w.trainable then out[#out + 1] = w end end
  for _, w in ipairs(self._weights) do if not w.trainable then out[#out + 1] = w end end
  return out
end
Layer._ordered_weights = ordered

function Layer._getters.weights(self)
  local out = {}
  for i, w in ipairs(ordered(self)) do out[i] = w.tensor end
  return out
end

function Layer._getters.trainable_weights(self)
  local out = {}
  if not self.trainable then return out end
  for _, w in ipairs(self._weights) do if w.trainable then out[#out + 1] = w.tensor end end
  return out
end

-- Keras: a frozen layer's weights are all non-trainable, its trainable ones first
function Layer._getters.non_trainable_weights(self)
  local out = {}
  for _, w in ipairs(ordered(self)) do
    if not w.trainable or not self.trainable then out[#out + 1] = w.tensor end
  end
  return out
end

function Layer:get_weights()
  local out = {}
  for i, w in ipairs(ordered(self)) do out[i] = w.tensor:copy() end
  return out
end

function Layer:set_weights(list)
  local ws = ordered(self)
  if type(list) ~= "table" then raise(self:_msg("set_weights expects a list of tensors")) end
  if #list ~= #ws then
    raise(string.format('You called `set_weights(weights)` on layer "%s" with a weight list of length %d, but the ' ..
      'layer was expecting %d weights.',
      self.name, #list, #ws))
  end
  for i, w in ipairs(ws) do
    local v = list[i]
    if getmetatable(v) ~= core.Tensor then v = core.tensor(v) end
    local a, b = w.tensor.shape, v.shape
    local same = #a == #b
    for k = 1, #a do if a[k] ~= b[k] then same = false end end
    if not same then
      raise(string.format("Layer weight shape %s not compatible with provided weight shape %s (layer %s, weight %s)",
        shape_str(a), shape_str(b), self.name, w.short))
    end
    w.tensor:assign(v)
  end
end

function Layer:count_params()
  local n = 0
  for _, w in ipairs(self._weights) do n = n + w.tensor:size() end
  return n
end

-- the symbolic losses of the layer (regularizers)
function Layer:get_losses()
  local out = {}
  for _, f in ipairs(self._losses) do out[#out + 1] = f() end
  return out
end

function Layer.reset_states(_self) end

-- ---- calling a layer ----

local function as_list(x)
  if is_node(x) then return {x}, true end
  return x, false
end

function Layer:__call_layer(x, kwargs)
  local inputs, single = as_list(x)
  if type(inputs) ~= "table" or #inputs == 0 then
    raise(self:_msg("expected a symbolic tensor (keras.Input or a layer output), got %s",
      getmetatable(x) == core.Tensor and "a concrete tensor" or type(x)))
  end
  for i, t in ipairs(inputs) do
    if not is_node(t) then
      raise(self:_msg("input %d is not a symbolic tensor (keras.Input or a layer output), got %s", i,
        getmetatable(t) == core.Tensor and "a concrete tensor" or type(t)))
    end
  end
  if not self.built and self._batch_input_shape and single and self.class_name ~= "InputLayer" then
    local want, got = self._batch_input_shape, inputs[1].shape
    local ok = #want == #got
    for i = 2, #want do if ok and want[i] ~= got[i] and want[i] ~= -1 then ok = false end end
    if not ok then
      if #want == #got and #want >= 2 then
        local only_last = true
        for i = 2, #want - 1 do if want[i] ~= got[i] then only_last = false end end
        if only_last then
          raise(self:_msg("expected input with last dimension %d, got %d", want[#want], got[#got]))
        end
      end
      raise(self:_msg("expected input shape %s, got %s", shape_str(want), shape_str(got)))
    end
  end
  if not self.built then
    local shapes = {}
    for i, t in ipairs(inputs) do shapes[i] = t.shape end
    local ok, err = pcall(self._run_build, self, single and shapes[1] or shapes)
    if not ok then raise(err) end
    self.built = true
    if self._initial_weights then
      local w = self._initial_weights
      self._initial_weights = nil
      local ok2, err2 = pcall(self.set_weights, self, w)
      if not ok2 then raise(err2) end
    end
  end
  local out, outs = self:_apply(inputs, single, kwargs)
  local rec = {inputs = inputs, outputs = outs, kwargs = kwargs}
  table.insert(self._inbound, rec)
  for i, o in ipairs(outs) do
    local m = o:meta()
    m.layer, m.node_index, m.tensor_index = self, #self._inbound, i
  end
  if is_node(out) then return outs[1] end
  return outs
end

-- run call on built weights: the outputs as call returned them and as a list
-- of nodes of their own, with the input's mask passed along; an error is
-- raised at the user's line, or without a position when no_position is set
function Layer:_apply(inputs, single, kwargs, no_position)
  local arg = single and inputs[1] or inputs
  local ok, out = pcall(self._run_call, self, arg, kwargs)
  if not ok then
    -- engine messages gain the layer's name
    if type(out) == "string" and not out:find(self.name, 1, true) then
      out = self:_msg("%s", out:gsub("^[^:]*:%d+: ", ""))
    end
    if no_position then error(out, 0) end
    raise(out)
  end
  local outs = as_list(out)
  -- a layer's output must be a node of its own (history is kept per node)
  for i, o in ipairs(outs) do
    for _, t in ipairs(inputs) do
      if rawequal(o, t) then outs[i] = K.identity(o) end
    end
    if outs[i]:meta().layer then
      outs[i] = K.identity(outs[i])
    end
  end
  -- layers that keep the time axis pass a mask along (Keras's supports_masking)
  local in_mask = single and inputs[1]:meta().mask or nil
  for _, o in ipairs(outs) do
    local m = o:meta()
    if in_mask ~= nil and self.supports_masking and m.mask == nil then m.mask = in_mask end
  end
  return out, outs
end

-- the same call again on other inputs (a model resolving a None length):
-- nothing is recorded, no weight is made; the outputs as a list
function Layer:_replay(inputs, kwargs)
  if not self.built then error(self:_msg("cannot be re-traced before it is built"), 0) end
  if self.activity_regularizer then
    error(self:_msg("activity_regularizer is not supported in a model with a None (variable-length) axis"), 0)
  end
  local _, outs = self:_apply(inputs, #inputs == 1, kwargs, true)
  return outs
end

function Layer.build(_self, _shape) end
function Layer.call(_self, x) return x end
-- how __call_layer runs build and call (layers written in Lua, made with
-- Layer:extend, replace these: lua/keras/custom.lua)
function Layer:_run_build(shapes) return self:build(shapes) end
function Layer:_run_call(x, kwargs) return self:call(x, kwargs) end

-- ---- nodes: inputs and outputs of each call ----

local function node_at(self, i, what)
  if #self._inbound == 0 then
    raise(string.format("Layer %s is not connected, no input to return.", self.name))
  end
  local rec = self._inbound[i]
  if not rec then
    raise(string.format("Asked to get %s at node %d, but the layer has only %d inbound nodes.", what, i,
      #self._inbound))
  end
  return rec
end

local function one_node(self, what)
  if #self._inbound == 0 then
    raise(string.format("Layer %s has no inbound nodes.", self.name))
  end
  if #self._inbound > 1 then
    raise(string.format('Layer %s has multiple inbound nodes, hence the notion of "layer %s" is ill-defined. Use ' ..
      '`get_%s_at(node_index)` instead.',
      self.name, what, what))
  end
  return self._inbound[1]
end

local function unwrap(list) if #list == 1 then return list[1] end return list end
local function shapes_of(list)
  local out = {}
  for i, t in ipairs(list) do out[i] = user_shape(t.shape) end
  if #out == 1 then return out[1] end
  return out
end

function Layer:get_output_at(i) return unwrap(node_at(self, i, "output").outputs) end
function Layer:get_input_at(i) return unwrap(node_at(self, i, "input").inputs) end
function Layer:get_output_shape_at(i) return shapes_of(node_at(self, i, "output shape").outputs) end
function Layer:get_input_shape_at(i) return shapes_of(node_at(self, i, "input shape").inputs) end
function Layer._getters.output(self) return unwrap(one_node(self, "output").outputs) end
function Layer._getters.input(self) return unwrap(one_node(self, "input").inputs) end
-- a shape is well defined when every call saw the same one (as in Keras)
local function common_shape(self, what, field)
  if #self._inbound > 1 then
    local same = true
    for _, rec in ipairs(self._inbound) do
      if #rec[field] ~= #self._inbound[1][field] then same = false end
      for i, t in ipairs(rec[field]) do
        if shape_str(t.shape) ~= shape_str(self._inbound[1][field][i].shape) then same = false end
      end
    end
    if same then return shapes_of(self._inbound[1][field]) end
    raise(string.format('The layer "%s" has multiple inbound nodes, with different %s shapes. Hence the notion of ' ..
      '"%s shape" is ill-defined for the layer. Use `get_%s_shape_at(node_index)` instead.',
      self.name, what, what, what))
  end
  return shapes_of(one_node(self, what .. "_shape")[field])
end
function Layer._getters.output_shape(self) return common_shape(self, "output", "outputs") end
function Layer._getters.input_shape(self)
  if #self._inbound == 0 and self._batch_input_shape then return user_shape(self._batch_input_shape) end
  return common_shape(self, "input", "inputs")
end
function Layer._getters.inbound_nodes(self) return self._inbound end
function Layer._getters.losses(self) return self:get_losses() end

-- ---- Input ----

local InputLayer = class("InputLayer")
InputLayer._prefix = "input"
layers.InputLayer = InputLayer

local INPUT_ARGS = set{"shape", "batch_shape", "dtype", "name", "sparse", "tensor", "input_shape",
                       "batch_input_shape", "batch_size", "input_tensor"}
local INPUT_TABLES = {shape = true, batch_shape = true, input_shape = true, batch_input_shape = true}
-- Keras 2.2.4: Input(shape, batch_shape, name, dtype, sparse, tensor),
-- InputLayer(input_shape, batch_size, batch_input_shape, dtype, input_tensor, sparse, name)
local INPUT_SPEC = args_spec{who = "Input", positional = {"shape", "batch_shape", "name", "dtype", "sparse", "tensor"},
                             allowed = INPUT_ARGS, tables = INPUT_TABLES, single = number_list}
local INPUT_LAYER_SPEC = args_spec{who = "InputLayer", positional = {"input_shape", "batch_size", "batch_input_shape",
                                   "dtype", "input_tensor", "sparse", "name"}, allowed = INPUT_ARGS,
                                   tables = INPUT_TABLES, single = number_list}

function InputLayer.new(o)
  local self = setmetatable({}, InputLayer)
  local shape
  if o.batch_shape or o.batch_input_shape then
    shape = engine_shape(o.batch_shape or o.batch_input_shape, "Input", "batch_shape")
  elseif o.shape or o.input_shape then
    local s = engine_shape(o.shape or o.input_shape, "Input", "shape")
    shape = {o.batch_size or -1}
    for i, d in ipairs(s) do shape[i + 1] = d end
  else
    raise("Input: give a shape (shape={...}) or a batch_shape")
  end
  if o.sparse then raise("Input: sparse inputs are not supported by this version of lkeras") end
  if o.tensor ~= nil or o.input_tensor ~= nil then
    raise("Input: building on an existing tensor (tensor=) is not supported by this version of lkeras")
  end
  if o.dtype and o.dtype ~= "float32" and o.dtype ~= "int32" and o.dtype ~= "int64" then
    raise("Input: dtype must be float32 or int32, got '" .. tostring(o.dtype) .. "'")
  end
  Layer._init(self, {name = o.name})
  self._args = o
  self.dtype = o.dtype or "float32"
  self._batch_input_shape = shape
  self.built = true
  local node = core.input(shape)
  local rec = {inputs = {}, outputs = {node}}
  self._inbound[1] = rec
  local m = node:meta()
  m.layer, m.node_index, m.tensor_index = self, 1, 1
  return self
end

-- keras.Input{shape={784}} -> a symbolic tensor
function layers.Input(...)
  local o = args_parse(INPUT_SPEC, ...)
  return InputLayer.new(o).output
end

-- keras.layers.InputLayer{input_shape={784}} (a layer, as in Keras)
setmetatable(InputLayer, {__index = Layer, __call = function(_, ...)
  local o = args_parse(INPUT_LAYER_SPEC, ...)
  return InputLayer.new(o)
end})

-- ---- a helper to declare layer classes ----

-- the layers' arguments whose value may be a table (a trailing table there is
-- a value, not the options table: Conv2D(32, {3, 3}), Lambda(f, nil, nil, {k = 1}))
local TABLE_ARGS = {kernel_size = true, strides = true, dilation_rate = true, pool_size = true, padding = true,
                    cropping = true, size = true, target_shape = true, dims = true, axes = true,
                    shared_axes = true, noise_shape = true, output_shape = true, arguments = "keyed",
                    weights = true, input_length = true, axis = true, mask = true, cell = true, cells = true}
layers._TABLE_ARGS = TABLE_ARGS

-- define("Dense", {"units"}, {"activation", ...}, init) -> class with a constructor
-- taking Keras's positional arguments in order, then options (args.lua)
local function define(name, positional, keywords, init, opts)
  local cls = class(name, opts and opts.parent)
  local spec = args_spec{who = name, positional = positional, allowed = set(keywords), common = COMMON,
                         tables = TABLE_ARGS,
                         single = opts and (opts.single or opts.first_is_sequence and number_list) or nil}
  cls._spec = spec
  local construct = layers._api(function(...)
    local o = args_parse(spec, ...)
    local self = setmetatable({}, cls)
    Layer._init(self, o)
    init(self, o)
    self._args = o   -- the constructor's arguments by name: configs and clones start here
    return self
  end)
  setmetatable(cls, {__index = opts and opts.parent or Layer, __call = function(_, ...)
    return construct(...)
  end})
  layers[name] = cls
  return cls
end
layers._define = define

local function check_number(who, name, v, lo, hi, lo_open)
  if type(v) ~= "number" or v ~= v or (lo and (lo_open and v <= lo or v < lo)) or (hi and v >= hi) then
    raise(string.format("%s: %s must be a number%s, got %s", who, name,
      lo and hi and string.format(" in [%g, %g)", lo, hi) or lo and string.format(" >= %g", lo) or "", tostring(v)))
  end
  return v
end
layers._check_number = check_number

local function check_int(who, name, v, lo)
  if math.type(v) ~= "integer" or v < (lo or 1) then
    raise(string.format("%s: %s must be an integer >= %d, got %s", who, name, lo or 1, tostring(v)))
  end
  return v
end
layers._check_int = check_int

local function regularizer(who, r) return util.regularizer(keras, who, r) end
local function constraint(who, c) return util.constraint(keras, who, c) end

-- ---- Dense ----

local Dense = define("Dense", {"units", "activation", "use_bias", "kernel_initializer", "bias_initializer",
  "kernel_regularizer", "bias_regularizer", "activity_regularizer", "kernel_constraint", "bias_constraint"},
  {"units", "activation", "use_bias", "kernel_initializer",
  "bias_initializer", "kernel_regularizer", "bias_regularizer", "activity_regularizer",
  "kernel_constraint", "bias_constraint"}, function(self, o)
  self.units = check_int("Dense", "units", o.units)
  self.activation, self._act_name = A.get(o.activation, "Dense")
  self.use_bias = o.use_bias == nil and true or o.use_bias
  self.kernel_initializer = I.get(o.kernel_initializer or "glorot_uniform", "Dense")
  self.bias_initializer = I.get(o.bias_initializer or "zeros", "Dense")
  self.kernel_regularizer = regularizer("Dense", o.kernel_regularizer)
  self.bias_regularizer = regularizer("Dense", o.bias_regularizer)
  self.activity_regularizer = regularizer("Dense", o.activity_regularizer)
  self.kernel_constraint = constraint("Dense", o.kernel_constraint)
  self.bias_constraint = constraint("Dense", o.bias_constraint)
end)
Dense.supports_masking = true

function Dense:build(shape)
  local n = shape[#shape]
  if #shape < 2 then error(self:_msg("expected input of rank >= 2, got shape %s", shape_str(shape))) end
  self.input_dim = n
  self:_add_kernel_and_bias({n, self.units}, self.units)
end

function Dense:call(x)
  local s = x.shape
  if s[#s] ~= self.input_dim then
    error(self:_msg("expected input with last dimension %d, got %d", self.input_dim, s[#s]), 0)
  end
  local y
  if self.use_bias then
    y = core.op("linear", {x, self.kernel, self.bias})   -- x W + b in one pass
  else
    y = K.dot(x, self.kernel)
  end
  y = self.activation(y)
  self:_activity_loss(y)
  return y
end

-- ---- Activation and advanced activations ----

local Activation = define("Activation", {"activation"}, {"activation"}, function(self, o)
  if o.activation == nil then raise("Activation: missing argument 'activation'") end
  self.activation, self._act_name = A.get(o.activation, "Activation")
end)
Activation.supports_masking = true
function Activation:call(x) return self.activation(x) end

local LeakyReLU = define("LeakyReLU", {"alpha"}, {"alpha"}, function(self, o)
  self.alpha = check_number("LeakyReLU", "alpha", o.alpha or 0.3, 0)
end)
LeakyReLU.supports_masking = true
LeakyReLU._prefix = "leaky_re_lu"
function LeakyReLU:call(x) return K.relu(x, self.alpha) end

local RELU_ARGS = {"max_value", "negative_slope", "threshold"}
local ReLU = define("ReLU", RELU_ARGS, RELU_ARGS, function(self, o)
  self.max_value = o.max_value
  self.negative_slope = o.negative_slope or 0
  if o.threshold and o.threshold ~= 0 then raise("ReLU: threshold other than 0 is not supported") end
  if self.max_value then check_number("ReLU", "max_value", self.max_value, 0, nil, true) end
end)
ReLU.supports_masking = true
ReLU._prefix = "re_lu"
function ReLU:call(x) return K.relu(x, self.negative_slope, self.max_value) end

local ELU = define("ELU", {"alpha"}, {"alpha"}, function(self, o)
  self.alpha = check_number("ELU", "alpha", o.alpha or 1.0)
end)
ELU.supports_masking = true
function ELU:call(x) return K.elu(x, self.alpha) end

local ThresholdedReLU = define("ThresholdedReLU", {"theta"}, {"theta"}, function(self, o)
  self.theta = check_number("ThresholdedReLU", "theta", o.theta or 1.0, 0)
end)
ThresholdedReLU.supports_masking = true
ThresholdedReLU._prefix = "thresholded_re_lu"
-- one C op (thresholded_relu, src/ops.c) and its gradient helper; see docs/adding_an_op.md
function ThresholdedReLU:call(x) return K.apply("thresholded_relu", {x}, {theta = self.theta}) end

local Softmax = define("Softmax", {"axis"}, {"axis"}, function(self, o) self.axis = o.axis or -1 end)
Softmax.supports_masking = true
function Softmax:call(x) return K.softmax(x, self.axis) end

local PReLU = define("PReLU", {"alpha_initializer", "alpha_regularizer", "alpha_constraint", "shared_axes"},
  {"alpha_initializer", "alpha_regularizer", "alpha_constraint", "shared_axes"},
  function(self, o)
    self.alpha_initializer = I.get(o.alpha_initializer or "zeros", "PReLU")
    self.alpha_regularizer = regularizer("PReLU", o.alpha_regularizer)
    self.shared_axes = o.shared_axes
    self.alpha_constraint = constraint("PReLU", o.alpha_constraint)
  end)
PReLU.supports_masking = true
PReLU._prefix = "p_re_lu"
function PReLU:build(shape)
  local s = {}
  for i = 2, #shape do s[i - 1] = shape[i] end
  for _, a in ipairs(self.shared_axes or {}) do s[a] = 1 end
  self.alpha = self:add_weight{name = "alpha", shape = s, initializer = self.alpha_initializer,
                               regularizer = self.alpha_regularizer, constraint = self.alpha_constraint}
end
-- relu(x) - alpha * relu(-x)
function PReLU:call(x) return K.sub(K.relu(x), K.mul(self.alpha, K.relu(K.neg(x)))) end

-- ---- Dropout and the noise layers: layers_noise.lua ----

-- ---- shape layers ----

local function per_sample(shape, _who)
  local n = 1
  for i = 2, #shape do n = n * shape[i] end
  return n
end

local Flatten = define("Flatten", {"data_format"}, {"data_format"}, function(_self, o)
  if o.data_format ~= nil and o.data_format ~= "channels_last" then
    raise(string.format("Flatten: data_format %s is not supported (channels_last only)", tostring(o.data_format)))
  end
end)
local function refuse_none(self, s)
  for i = 2, #s do
    if s[i] < 0 then
      error(self:_msg("input shape %s has a None (variable-length) axis; %s needs every length known "
        .. "(give the Input or the first layer a fixed length)", shape_str(s), self.class_name), 0)
    end
  end
end

function Flatten:call(x)
  local s = x.shape
  if #s < 2 then error(self:_msg("expected input of rank >= 2, got shape %s", shape_str(s)), 0) end
  refuse_none(self, s)
  if #s == 2 then return K.identity(x) end
  return K.reshape(x, {s[1], per_sample(s)})
end

local Reshape = define("Reshape", {"target_shape"}, {"target_shape"}, function(self, o)
  if type(o.target_shape) ~= "table" then raise("Reshape: target_shape must be a table of sizes") end
  local unknown = 0
  for i, d in ipairs(o.target_shape) do
    if d == -1 or d == K.None then unknown = unknown + 1
    elseif math.type(d) ~= "integer" or d < 1 then
      raise(string.format("Reshape: target_shape[%d] must be a positive integer or -1, got %s", i, tostring(d)))
    end
  end
  if unknown > 1 then raise("Reshape: can only infer one unknown dimension") end
  self.target_shape = o.target_shape
end, {first_is_sequence = true})
function Reshape:call(x)
  local s = x.shape
  refuse_none(self, s)
  local total = per_sample(s)
  local t, known, unknown = {s[1]}, 1, nil
  for i, d in ipairs(self.target_shape) do
    if d == -1 or d == K.None then unknown = i + 1 else known = known * d end
    t[i + 1] = d
  end
  if unknown then
    if total % known ~= 0 then
      error(self:_msg("total size of new array must be unchanged (input %s, target %s)", shape_str(s),
        shape_str(self.target_shape)), 0)
    end
    t[unknown] = total // known
  elseif known ~= total then
    error(self:_msg("total size of new array must be unchanged (input %s, target %s)", shape_str(s),
      shape_str(self.target_shape)), 0)
  end
  return core.op("reshape", {x}, {shape = t})
end

local Permute = define("Permute", {"dims"}, {"dims"}, function(self, o)
  if type(o.dims) ~= "table" then raise("Permute: dims must be a table of axes (1-based, without the batch axis)") end
  self.dims = o.dims
end, {first_is_sequence = true})
function Permute:call(x)
  local nd = #x.shape
  if #self.dims ~= nd - 1 then
    error(self:_msg("dims has %d entries but the input has %d non-batch axes", #self.dims, nd - 1), 0)
  end
  local perm, seen = {0}, {}
  for i, d in ipairs(self.dims) do
    if math.type(d) ~= "integer" or d < 1 or d >= nd or seen[d] then
      error(self:_msg("dims must be a permutation of 1..%d, got %s", nd - 1, tostring(d)), 0)
    end
    seen[d] = true
    perm[i + 1] = d
  end
  return K.permute_dimensions(x, perm)
end

local RepeatVector = define("RepeatVector", {"n"}, {"n"}, function(self, o)
  self.n = check_int("RepeatVector", "n", o.n)
end)
function RepeatVector:call(x)
  local s = x.shape
  if #s ~= 2 then error(self:_msg("expected input of rank 2, got shape %s", shape_str(s)), 0) end
  local e = core.op("reshape", {x}, {shape = {s[1], 1, s[2]}})
  local list = {}
  for i = 1, self.n do list[i] = e end
  return K.concatenate(list, 1)
end

-- ---- Lambda ----

local LAMBDA_ARGS = {"function", "output_shape", "mask", "arguments"}
local Lambda = define("Lambda", LAMBDA_ARGS, LAMBDA_ARGS,
  function(self, o)
    if type(o["function"]) ~= "function" then raise("Lambda: the first argument must be a function") end
    self.fn = o["function"]
    self.arguments = o.arguments or {}
    local os = o.output_shape
    if os ~= nil and type(os) ~= "function" and not (is_plain(os) and os[1] ~= nil) then
      raise("Lambda: output_shape must be a list of sizes (without the batch axis) or a function, got " .. type(os))
    end
    self.output_shape_arg = os
    if o.mask ~= nil then raise("Lambda: mask is not supported by this version of lkeras") end
  end)

-- output_shape: the engine infers the output's shape; a given output_shape
-- (Keras's, without the batch axis, or a function of the input shape giving
-- it with the batch axis) must agree with it
local function check_lambda_shape(self, x, y)
  local want = self.output_shape_arg
  if want == nil or not is_node(y) then return end
  local got = user_shape(y.shape)
  if type(want) == "function" then
    local ins = is_node(x) and user_shape(x.shape) or {}
    if not is_node(x) then for i, t in ipairs(x) do ins[i] = user_shape(t.shape) end end
    want = want(ins)
    if not is_plain(want) then
      error(self:_msg("output_shape must return a shape (a table), got %s", type(want)), 0)
    end
    want = {table.unpack(want, 2)}
  end
  local ok = #want == #got - 1
  for i, d in ipairs(want) do
    if d ~= K.None and d ~= -1 and d ~= got[i + 1] then ok = false end
  end
  if not ok then
    error(self:_msg("output_shape %s does not match the function's output %s", shape_str({-1, table.unpack(want)}),
      shape_str(got)), 0)
  end
end

function Lambda:call(x)
  local y = self.fn(x, self.arguments)
  if not is_node(y) and not (type(y) == "table" and is_node(y[1])) then
    error(self:_msg("the function must return a symbolic tensor, got %s", type(y)), 0)
  end
  check_lambda_shape(self, x, y)
  return y
end

-- ---- BatchNormalization ----

local BN_ARGS = {"axis", "momentum", "epsilon", "center", "scale", "beta_initializer", "gamma_initializer",
  "moving_mean_initializer", "moving_variance_initializer", "beta_regularizer", "gamma_regularizer",
  "beta_constraint", "gamma_constraint"}
local BatchNormalization = define("BatchNormalization", BN_ARGS, {"axis", "momentum", "epsilon", "center", "scale",
  "beta_initializer", "gamma_initializer", "moving_mean_initializer", "moving_variance_initializer",
  "beta_regularizer", "gamma_regularizer", "beta_constraint", "gamma_constraint"}, function(self, o)
  self.axis = o.axis or -1
  self.momentum = check_number("BatchNormalization", "momentum", o.momentum or 0.99, 0)
  self.epsilon = check_number("BatchNormalization", "epsilon", o.epsilon or 1e-3, 0, nil, true)
  self.center = o.center == nil and true or o.center
  self.scale = o.scale == nil and true or o.scale
  self.beta_initializer = I.get(o.beta_initializer or "zeros", "BatchNormalization")
  self.gamma_initializer = I.get(o.gamma_initializer or "ones", "BatchNormalization")
  self.moving_mean_initializer = I.get(o.moving_mean_initializer or "zeros", "BatchNormalization")
  self.moving_variance_initializer = I.get(o.moving_variance_initializer or "ones", "BatchNormalization")
  self.beta_regularizer = regularizer("BatchNormalization", o.beta_regularizer)
  self.gamma_regularizer = regularizer("BatchNormalization", o.gamma_regularizer)
  self.beta_constraint = constraint("BatchNormalization", o.beta_constraint)
  self.gamma_constraint = constraint("BatchNormalization", o.gamma_constraint)
end)
BatchNormalization.supports_masking = true
function BatchNormalization:build(shape)
  local ax = self.axis < 0 and #shape + self.axis + 1 or self.axis + 1
  if ax < 2 or ax > #shape then
    error(self:_msg("axis %d is out of range for input shape %s", self.axis, shape_str(shape)))
  end
  local c = shape[ax]
  if self.scale then
    self.gamma = self:add_weight{name = "gamma", shape = {c}, initializer = self.gamma_initializer,
                                 regularizer = self.gamma_regularizer, constraint = self.gamma_constraint}
  else
    self.gamma = core.const(core.full({c}, 1))
  end
  if self.center then
    self.beta = self:add_weight{name = "beta", shape = {c}, initializer = self.beta_initializer,
                                regularizer = self.beta_regularizer, constraint = self.beta_constraint}
  else
    self.beta = core.const(core.full({c}, 0))
  end
  self.moving_mean = self:add_weight{name = "moving_mean", shape = {c}, initializer = self.moving_mean_initializer,
                                     trainable = false}
  self.moving_variance = self:add_weight{name = "moving_variance", shape = {c},
                                         initializer = self.moving_variance_initializer, trainable = false}
  self._channels = c
end
function BatchNormalization:call(x)
  local s = x.shape
  local ax = self.axis < 0 and #s + self.axis or self.axis
  if s[ax + 1] ~= self._channels then
    error(self:_msg("expected axis %d to have size %d, got %s", self.axis, self._channels, shape_str(s)), 0)
  end
  return core.op("batchnorm", {x, self.gamma, self.beta, self.moving_mean, self.moving_variance},
                 {axis = ax, momentum = self.momentum, epsilon = self.epsilon})
end

-- ---- merge layers (Add, Concatenate, Dot, ...): layers_merge.lua ----

-- ---- Keras 2.2.4's configs of this file's classes: keys in Keras's order
-- with their defaults, and how a constructor's value becomes Keras's (ints to
-- tuples); saving.lua writes and reads configs by them (layer_config.lua) ----

do
  local config = require("keras.layer_config")
  local NULL, REQ = config.NULL, config.REQ
  local initializer, concat, CONV_TAIL = config.initializer, config.concat, config.CONV_TAIL
  config.add({
    Dense = concat({"units", REQ}, CONV_TAIL),
    Activation = {"activation", REQ},
    Flatten = {"data_format", "channels_last"},
    Reshape = {"target_shape", REQ},
    Permute = {"dims", REQ},
    RepeatVector = {"n", REQ},
    BatchNormalization = {"axis", -1, "momentum", 0.99, "epsilon", 0.001, "center", true, "scale", true,
      "beta_initializer", initializer("zeros"), "gamma_initializer", initializer("ones"),
      "moving_mean_initializer", initializer("zeros"), "moving_variance_initializer", initializer("ones"),
      "beta_regularizer", NULL, "gamma_regularizer", NULL, "beta_constraint", NULL, "gamma_constraint", NULL},
    LeakyReLU = {"alpha", 0.3},
    ELU = {"alpha", 1.0},
    ThresholdedReLU = {"theta", 1.0},
    Softmax = {"axis", -1},
    ReLU = {"max_value", NULL, "negative_slope", 0.0, "threshold", 0.0},
    PReLU = {"alpha_initializer", initializer("zeros"), "alpha_regularizer", NULL, "alpha_constraint", NULL,
      "shared_axes", NULL},
  })
end

return layers
