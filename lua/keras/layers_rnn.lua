-- keras.layers, the sequence family: Embedding, Masking, SimpleRNN, GRU,
-- LSTM, CuDNNGRU, CuDNNLSTM, RNN with its cells (Keras 2.2.4 arguments,
-- defaults, initializers and weight layouts); the wrappers Bidirectional and
-- TimeDistributed are in layers_wrappers.lua and ConvLSTM2D in
-- layers_convlstm.lua, their saving specs here with the other recurrent
-- layers'.
--
-- A recurrent layer adds ONE graph node for the whole sequence (the C op
-- "rnn": input projection of every step in one GEMM, a GEMM and fused gate
-- math per step, backpropagation through time in C); return_state adds
-- "rnn_state" nodes that read the final states the rnn node kept.
--
-- Masks: a layer that makes a mask (Embedding with mask_zero, Masking) puts
-- it on its output as t:meta().mask, a (batch, timesteps) symbolic tensor of
-- 1/0; recurrent layers, Bidirectional and TimeDistributed read it from
-- their input (or from call's {mask = m}) and pass it on when they return
-- sequences, as Keras's compute_mask does.
--
-- Stateful layers: the state lives in tensors the layer owns; the rnn node
-- reads them as its initial state and writes the final state back after
-- every run (fit, evaluate, predict, train_on_batch). The fixed batch size of
-- batch_input_shape / batch_size is taken off the graph's input (the engine
-- runs graphs for any batch size) and kept by the layer, which checks it when
-- it runs; layers of this family put it on their outputs (meta().batch_size)
-- so that a stateful layer further on finds it.
local keras = ...
local util = require("keras.util")
local raise = util.raise
local core, K, L = keras._core, keras.backend, keras.layers
local A, I = keras.activations, keras.initializers
local is_node = core.is_node

local define, shape_str = L._define, L._shape_str
local check_int, check_number = L._check_int, L._check_number

-- ---- shared helpers ----

-- the codes of the rnn op's cells, flags and activations, from the engine (src/ops_rnn.c)
local ACT = core.rnn_activations
local ACT_NAMES = {}
for k in pairs(ACT) do ACT_NAMES[#ACT_NAMES + 1] = k end
table.sort(ACT_NAMES)

local CELL = core.rnn_cells
local FLAG = core.rnn_flags
local F_RETSEQ, F_BACK, F_INIT = FLAG.return_sequences, FLAG.go_backwards, FLAG.initial_state
local F_MASK, F_STATEFUL, F_INPUT_ORDER = FLAG.mask, FLAG.stateful, FLAG.input_order

local STATEFUL_NEEDS_BATCH = "If a RNN is stateful, it needs to know its batch size. Specify the batch size " ..
  "of your input tensors: \n- If using a Sequential model, specify the batch size by passing a " ..
  "`batch_input_shape` argument to your first layer.\n- If using the functional API, specify the batch size " ..
  "by passing a `batch_shape` argument to your Input layer."

local function act_code(who, what, v)
  local _, name = A.get(v, who)
  local code = ACT[name]
  if not code then
    raise(string.format("%s: %s must be one of %s for a recurrent layer, got %s", who, what,
      table.concat(ACT_NAMES, ", "), name == "custom" and "a function" or "'" .. tostring(name) .. "'"))
  end
  return code, name
end

local function regularizer(who, r) return util.regularizer(keras, who, r) end
local function constraint(who, c) return util.constraint(keras, who, c) end

local bool = util.bool

-- a fixed batch size given to a layer of this family: kept by the layer,
-- taken off the shape the model builds its Input from
local function take_batch(self)
  local bis = self._batch_input_shape
  if bis and bis[1] ~= -1 then
    self._fixed_batch = bis[1]
    local s = {-1}
    for i = 2, #bis do s[i] = bis[i] end
    self._user_batch_input_shape = bis
    self._batch_input_shape = s
  end
end

-- the fixed batch size known upstream of x: on its shape, or left on a node's meta
local function find_batch(x)
  if x.shape[1] ~= -1 then return x.shape[1] end
  local seen, queue, head = {}, {x}, 1
  while queue[head] and head < 20000 do
    local n = queue[head]
    head = head + 1
    local b = n:meta().batch_size
    if b then return b end
    for _, p in ipairs(n:inputs()) do
      if not seen[p] then
        seen[p] = true
        queue[#queue + 1] = p
      end
    end
  end
  return nil
end

local function mark_batch(self, outs)
  if not self._fixed_batch then return end
  for _, o in ipairs(outs) do o:meta().batch_size = self._fixed_batch end
end

local function input_list(x)
  if is_node(x) then return {x} end
  return x
end

-- ---- Embedding ----

local Embedding = define("Embedding", {"input_dim", "output_dim", "embeddings_initializer", "embeddings_regularizer",
  "activity_regularizer", "embeddings_constraint", "mask_zero", "input_length"}, {"input_dim", "output_dim",
  "embeddings_initializer", "embeddings_regularizer", "activity_regularizer", "embeddings_constraint",
  "mask_zero", "input_length"}, function(self, o)
  self.input_dim = check_int("Embedding", "input_dim", o.input_dim)
  self.output_dim = check_int("Embedding", "output_dim", o.output_dim)
  self.embeddings_initializer = I.get(o.embeddings_initializer or "uniform", "Embedding")
  self.embeddings_regularizer = regularizer("Embedding", o.embeddings_regularizer)
  self.activity_regularizer = regularizer("Embedding", o.activity_regularizer)
  self.embeddings_constraint = constraint("Embedding", o.embeddings_constraint)
  self.mask_zero = bool(o.mask_zero, false)
  local len = o.input_length
  if len == K.None then len = nil end   -- Keras's input_length=None: any length
  if len ~= nil and not (math.type(len) == "integer" and len >= 1) and type(len) ~= "table" then
    raise("Embedding: input_length must be a positive integer, got " .. tostring(len))
  end
  self.input_length = len
  -- the input is (batch, input_length) ids; input_dim is the vocabulary size, not a shape
  if not o.batch_input_shape and not o.input_shape then
    if len then
      local s = {o.batch_size or -1}
      if type(len) == "table" then
        for i, d in ipairs(len) do s[i + 1] = d end
      else
        s[2] = len
      end
      self._batch_input_shape = s
    else
      self._batch_input_shape = {o.batch_size or -1, -1}   -- (None, None) in Keras: any length
    end
  end
  take_batch(self)
end)

function Embedding:build(_shape)
  self.embeddings = self:add_weight{name = "embeddings", shape = {self.input_dim, self.output_dim},
                                    initializer = self.embeddings_initializer,
                                    regularizer = self.embeddings_regularizer,
                                    constraint = self.embeddings_constraint}
end

function Embedding:call(x)
  local s = x.shape
  if #s < 2 then error(self:_msg("expected input of rank >= 2 (batch, ids...), got shape %s", shape_str(s)), 0) end
  local len = self.input_length
  if len then
    local want = type(len) == "table" and len or {len}
    local ok = #want == #s - 1
    for i, d in ipairs(want) do if d ~= K.None and s[i + 1] ~= d then ok = false end end
    if not ok then
      error(self:_msg('"input_length" is %s, but received input has shape %s',
        type(len) == "table" and shape_str(len) or tostring(len), shape_str(s)), 0)
    end
  end
  local y = K.gather(self.embeddings, x)
  if self.mask_zero then y:meta().mask = K.not_equal(x, 0) end
  self:_activity_loss(y)
  mark_batch(self, {y})
  return y
end

function Embedding:compute_mask(x)
  if not self.mask_zero then return nil end
  return K.not_equal(x, 0)
end

-- ---- Masking ----

local Masking = define("Masking", {"mask_value"}, {"mask_value"}, function(self, o)
  self.mask_value = o.mask_value == nil and 0.0 or o.mask_value
  if type(self.mask_value) ~= "number" then
    raise("Masking: mask_value must be a number, got " .. type(self.mask_value))
  end
  take_batch(self)
end)

function Masking:call(x)
  local s = x.shape
  if #s < 3 then
    error(self:_msg("expected input of rank >= 3 (batch, timesteps, features), got shape %s", shape_str(s)), 0)
  end
  local keep = K.not_equal(x, self.mask_value)
  local y = K.mul(x, K.any(keep, -1, true))
  y:meta().mask = K.any(keep, -1)
  mark_batch(self, {y})
  return y
end

-- ---- recurrent layers ----

local RNN_COMMON = {"units", "activation", "recurrent_activation", "use_bias", "kernel_initializer",
  "recurrent_initializer", "bias_initializer", "kernel_regularizer", "recurrent_regularizer", "bias_regularizer",
  "activity_regularizer", "kernel_constraint", "recurrent_constraint", "bias_constraint", "dropout",
  "recurrent_dropout", "implementation", "return_sequences", "return_state", "go_backwards", "stateful", "unroll"}

local function keywords(extra)
  local t = {}
  for i, k in ipairs(RNN_COMMON) do t[i] = k end
  for _, k in ipairs(extra or {}) do t[#t + 1] = k end
  return t
end

local rnn_methods = {}

-- the regularizer, constraint and dropout options of a recurrent layer
-- (kernel, recurrent kernel, bias), shared with ConvLSTM2D
local function recurrent_options(self, o, who)
  self.kernel_regularizer = regularizer(who, o.kernel_regularizer)
  self.recurrent_regularizer = regularizer(who, o.recurrent_regularizer)
  self.bias_regularizer = regularizer(who, o.bias_regularizer)
  self.activity_regularizer = regularizer(who, o.activity_regularizer)
  self.kernel_constraint = constraint(who, o.kernel_constraint)
  self.recurrent_constraint = constraint(who, o.recurrent_constraint)
  self.bias_constraint = constraint(who, o.bias_constraint)
  self.dropout = check_number(who, "dropout", o.dropout or 0, 0, 1)
  self.recurrent_dropout = check_number(who, "recurrent_dropout", o.recurrent_dropout or 0, 0, 1)
end

local function rnn_init(self, o, kind, who)
  who = who or kind
  self._kind = kind
  self.units = check_int(who, "units", o.units)
  self._act, self.activation = act_code(who, "activation", o.activation == nil and "tanh" or o.activation)
  if kind == "SimpleRNN" then
    if o.recurrent_activation ~= nil then raise("SimpleRNN: unknown argument 'recurrent_activation'") end
    self._ract, self.recurrent_activation = ACT.sigmoid, nil
  else
    self._ract, self.recurrent_activation = act_code(who, "recurrent_activation",
      o.recurrent_activation == nil and "hard_sigmoid" or o.recurrent_activation)
  end
  self.use_bias = bool(o.use_bias, true)
  self.kernel_initializer = I.get(o.kernel_initializer or "glorot_uniform", who)
  self.recurrent_initializer = I.get(o.recurrent_initializer or "orthogonal", who)
  self.bias_initializer = I.get(o.bias_initializer or "zeros", who)
  self.unit_forget_bias = kind == "LSTM" and bool(o.unit_forget_bias, true) or nil
  self.reset_after = kind == "GRU" and bool(o.reset_after, false) or nil
  recurrent_options(self, o, who)
  local impl = o.implementation == nil and 1 or o.implementation
  if impl ~= 0 and impl ~= 1 and impl ~= 2 then
    raise(who .. ": implementation must be 1 or 2, got " .. tostring(impl))
  end
  self.implementation = impl == 0 and 1 or impl
  self.return_sequences = bool(o.return_sequences, false)
  self.return_state = bool(o.return_state, false)
  self.go_backwards = bool(o.go_backwards, false)
  self.stateful = bool(o.stateful, false)
  self.unroll = bool(o.unroll, false)
  self._cell = CELL[kind]
  if kind == "GRU" and self.reset_after then self._cell = CELL.GRU_reset_after end
  self._gates = kind == "LSTM" and 4 or kind == "GRU" and 3 or 1
  self._nstates = kind == "LSTM" and 2 or 1
  take_batch(self)
end

function rnn_methods.build(self, shape)
  if type(shape[1]) == "table" then shape = shape[1] end
  if #shape ~= 3 then
    error(string.format("Input 0 is incompatible with layer %s: expected ndim=3, found ndim=%d", self.name, #shape))
  end
  rnn_methods._make_weights(self, shape[3])
end

-- kernel (F, G*u), recurrent_kernel (u, G*u) and bias: (G*u), (2, G*u) for the
-- GRU with reset_after, (2*G*u) for the CuDNN layers (input and recurrent halves)
function rnn_methods._make_weights(self, F)
  local u, G = self.units, self._gates
  self.input_dim = F
  self.kernel = self:add_weight{name = "kernel", shape = {F, G * u}, initializer = self.kernel_initializer,
                                regularizer = self.kernel_regularizer, constraint = self.kernel_constraint}
  self.recurrent_kernel = self:add_weight{name = "recurrent_kernel", shape = {u, G * u},
                                          initializer = self.recurrent_initializer,
                                          regularizer = self.recurrent_regularizer,
                                          constraint = self.recurrent_constraint,
                                          constraint_arg = "recurrent_constraint"}
  local bshape = self._cell == CELL.GRU_reset_after and {2, G * u} or {G * u}
  if self._cudnn then bshape = {2 * G * u} end
  if self.use_bias then
    local init = self.bias_initializer
    if self.unit_forget_bias then
      local bi = self.bias_initializer
      -- the forget gate's 1 is in the recurrent half of a CuDNNLSTM's bias
      local before = self._cudnn and 5 * u or u
      init = function()
        return K.concatenate({bi{before}, core.full({u}, 1), bi{2 * u}}, 0)
      end
    end
    self.bias = self:add_weight{name = "bias", shape = bshape, initializer = init,
                                regularizer = self.bias_regularizer, constraint = self.bias_constraint}
  else
    self.bias = core.const(core.full(bshape, 0))
  end
end

-- a recurrent layer's call arguments: the input, and the initial states
-- given as extra inputs (layer({x, h, c})) then as kwargs.initial_state
local function input_and_states(x, kwargs)
  local ins = input_list(x)
  local initial = {}
  for i = 2, #ins do initial[#initial + 1] = ins[i] end
  if kwargs.initial_state then
    local st = is_node(kwargs.initial_state) and {kwargs.initial_state} or kwargs.initial_state
    for _, t in ipairs(st) do initial[#initial + 1] = t end
  end
  return ins[1], initial
end

-- the state tensors of a stateful layer, made on first use for a batch size
local function ensure_states(self, batch)
  if self._states then return end
  self._state_batch = batch
  self._states, self._state_nodes = {}, {}
  for i = 1, self._nstates do
    self._states[i] = core.full({batch, self.units}, 0)
    self._state_nodes[i] = core.const(self._states[i])
  end
end

function rnn_methods.call(self, x, kwargs)
  kwargs = kwargs or {}
  local xin, initial = input_and_states(x, kwargs)
  local s = xin.shape
  if #s ~= 3 then
    error(string.format("Input 0 is incompatible with layer %s: expected ndim=3, found ndim=%d", self.name, #s), 0)
  end
  if s[3] ~= self.input_dim then
    error(self:_msg("expected input with last dimension %d, got %d", self.input_dim, s[3]), 0)
  end
  local mask = kwargs.mask
  if mask == nil then mask = xin:meta().mask end
  local flags = 0
  if self.return_sequences then flags = flags | F_RETSEQ end
  if self.go_backwards then flags = flags | F_BACK end
  if self._input_order and self.return_sequences then flags = flags | F_INPUT_ORDER end
  local args = {xin, self.kernel, self.recurrent_kernel, self._op_bias and self:_op_bias() or self.bias}
  if #initial > 0 then
    if #initial ~= self._nstates then
      error(self:_msg("Layer has %d states but was passed %d initial states.", self._nstates, #initial), 0)
    end
    for i, t in ipairs(initial) do
      if not is_node(t) then
        error(self:_msg("initial_state %d must be a symbolic tensor", i), 0)
      end
      local ts = t.shape
      if #ts ~= 2 or ts[2] ~= self.units or ts[1] ~= s[1] then
        error(self:_msg("initial state %d has shape %s, expected %s", i, shape_str(ts), shape_str{s[1], self.units}), 0)
      end
      args[#args + 1] = t
    end
    flags = flags | F_INIT
  elseif self.stateful then
    local batch = self._fixed_batch or self._state_batch or find_batch(xin)
    if not batch then error(STATEFUL_NEEDS_BATCH, 0) end
    self._fixed_batch = batch
    ensure_states(self, batch)
    if self._state_batch ~= batch then
      error(self:_msg("the layer's states hold %d samples but its input has batch size %d", self._state_batch, batch),
        0)
    end
    for _, n in ipairs(self._state_nodes) do args[#args + 1] = n end
    flags = flags | F_INIT | F_STATEFUL
  end
  if mask ~= nil then
    if not is_node(mask) then error(self:_msg("mask must be a symbolic tensor"), 0) end
    local ms = mask.shape
    if #ms ~= 2 or ms[2] ~= s[2] then
      error(self:_msg("mask has shape %s, expected (batch, %d)", shape_str(ms), s[2]), 0)
    end
    args[#args + 1] = mask
    flags = flags | F_MASK
  end
  local function rnn_attrs()
    return {cell = self._cell, units = self.units, flags = flags, activation = self._act,
            recurrent_activation = self._ract, dropout = self.dropout < 1 and self.dropout or 0,
            recurrent_dropout = self.recurrent_dropout < 1 and self.recurrent_dropout or 0}
  end
  local attrs = rnn_attrs()
  local y = core.op("rnn", args, attrs)
  if self.return_sequences and mask ~= nil then y:meta().mask = mask end
  self:_activity_loss(y)
  local outs = {y}
  if self.return_state then
    local sargs = {y}
    for i, a in ipairs(args) do sargs[i + 1] = a end
    for k = 1, self._nstates do
      local sa = rnn_attrs()
      sa.state = k - 1
      outs[#outs + 1] = core.op("rnn_state", sargs, sa)
    end
  end
  mark_batch(self, outs)
  if #outs == 1 then return y end
  return outs
end

-- initial_state given at call: Keras adds the states to the layer's inputs.
-- Keras 2.2.4's RNN.__call__(inputs, initial_state, ...): lstm(x, states) too
function rnn_methods.__call_layer(self, x, kwargs)
  if is_node(kwargs) or (type(kwargs) == "table" and getmetatable(kwargs) == nil and is_node(kwargs[1])) then
    kwargs = {initial_state = kwargs}
  end
  if type(kwargs) == "table" and kwargs.initial_state ~= nil then
    local st = kwargs.initial_state
    st = is_node(st) and {st} or st
    local ins = {}
    for _, t in ipairs(input_list(x)) do ins[#ins + 1] = t end
    for _, t in ipairs(st) do ins[#ins + 1] = t end
    local kw = {}
    for k, v in pairs(kwargs) do if k ~= "initial_state" then kw[k] = v end end
    return L.Layer.__call_layer(self, ins, kw)
  end
  return L.Layer.__call_layer(self, x, kwargs)
end

function rnn_methods.reset_states(self, states)
  if not self.stateful then return end   -- model:reset_states() visits every layer
  if not self._states then
    if not self._fixed_batch then raise(self:_msg("%s", STATEFUL_NEEDS_BATCH)) end
    ensure_states(self, self._fixed_batch)
  end
  if states == nil then
    for _, t in ipairs(self._states) do t:assign(0) end
    return
  end
  if getmetatable(states) == core.Tensor then states = {states} end
  if type(states) ~= "table" or #states ~= #self._states then
    raise(string.format("Layer %s expects %d states, but it received %d state values.", self.name, #self._states,
      type(states) == "table" and #states or 1))
  end
  for i, v in ipairs(states) do
    if getmetatable(v) ~= core.Tensor then v = core.tensor(v) end
    local vs, want = v.shape, {self._state_batch, self.units}
    if #vs ~= 2 or vs[1] ~= want[1] or vs[2] ~= want[2] then
      raise(string.format("State %d is incompatible with layer %s: expected shape=%s, found shape=%s", i - 1,
        self.name, shape_str(want), shape_str(vs)))
    end
    self._states[i]:assign(v)
  end
end

-- the state tensors (nil until the layer knows its batch size)
function rnn_methods.get_states(self)
  local out = {}
  for i, t in ipairs(self._states or {}) do out[i] = t end
  return out
end

-- Keras 2.2.4's positional order of each recurrent layer
local INITS = {"kernel_initializer", "recurrent_initializer", "bias_initializer"}
local REGS = {"kernel_regularizer", "recurrent_regularizer", "bias_regularizer", "activity_regularizer",
  "kernel_constraint", "recurrent_constraint", "bias_constraint", "dropout", "recurrent_dropout"}
local TAIL = {"return_sequences", "return_state", "go_backwards", "stateful", "unroll"}
local function order(...)
  local out = {}
  for _, part in ipairs{...} do
    for _, k in ipairs(type(part) == "table" and part or {part}) do out[#out + 1] = k end
  end
  return out
end
local POSITIONAL = {
  SimpleRNN = order("units", "activation", "use_bias", INITS, REGS, TAIL),
  GRU = order("units", "activation", "recurrent_activation", "use_bias", INITS, REGS, "implementation", TAIL,
    "reset_after"),
  LSTM = order("units", "activation", "recurrent_activation", "use_bias", INITS, "unit_forget_bias", REGS,
    "implementation", TAIL),
}

local function rnn_class(kind, extra)
  local cls = define(kind, POSITIONAL[kind], keywords(extra), function(self, o) rnn_init(self, o, kind) end)
  for k, f in pairs(rnn_methods) do cls[k] = f end
  cls._getters.states = function(self) return self:get_states() end
  return cls
end

local SimpleRNN = rnn_class("SimpleRNN")
SimpleRNN._prefix = "simple_rnn"
rnn_class("GRU", {"reset_after"})
rnn_class("LSTM", {"unit_forget_bias"})

-- ---- CuDNNGRU, CuDNNLSTM: cuDNN's math on the CPU ----
-- CuDNNLSTM is the LSTM with tanh and sigmoid; CuDNNGRU is the GRU with
-- reset_after, tanh and sigmoid. Their bias holds the input and the
-- recurrent halves one after the other (8u, 6u: Keras's layout); the op gets
-- their sum (LSTM) or the two rows (GRU), so gradients reach both halves.
local CUDNN_INITS = {"kernel_initializer", "recurrent_initializer", "bias_initializer"}
local CUDNN_REGS = {"kernel_regularizer", "recurrent_regularizer", "bias_regularizer", "activity_regularizer",
  "kernel_constraint", "recurrent_constraint", "bias_constraint"}
local CUDNN_TAIL = {"return_sequences", "return_state", "stateful"}

local function cudnn_class(name, kind)
  local positional = order("units", CUDNN_INITS, kind == "LSTM" and "unit_forget_bias" or {}, CUDNN_REGS, CUDNN_TAIL)
  local kw = order(positional, "go_backwards")
  local cls = define(name, positional, kw, function(self, o)
    local opts = {}
    for _, k in ipairs(kw) do opts[k] = o[k] end
    opts.activation, opts.recurrent_activation = "tanh", "sigmoid"
    if kind == "GRU" then opts.reset_after = true end
    self._cudnn = true
    rnn_init(self, opts, kind, name)
    self.activation, self.recurrent_activation = nil, nil
  end)
  for k, f in pairs(rnn_methods) do cls[k] = f end
  cls._getters.states = function(self) return self:get_states() end
  function cls:_op_bias()
    local n = self._gates * self.units
    if kind == "GRU" then return core.op("reshape", {self.bias}, {shape = {2, n}}) end
    return K.add(core.op("slice", {self.bias}, {axis = 0, start = 0, length = n}),
                 core.op("slice", {self.bias}, {axis = 0, start = n, length = n}))
  end
  function cls:call(x, kwargs)
    local m = kwargs and kwargs.mask
    if m == nil then m = input_list(x)[1]:meta().mask end
    if m ~= nil then error(self:_msg("Masking is not supported for CuDNN RNNs."), 0) end
    return rnn_methods.call(self, x, kwargs)
  end
  return cls
end

L.CuDNNGRU = cudnn_class("CuDNNGRU", "GRU")
L.CuDNNLSTM = cudnn_class("CuDNNLSTM", "LSTM")
L.CuDNNGRU._prefix, L.CuDNNLSTM._prefix = "cu_dnngru", "cu_dnnlstm"

-- ---- SimpleRNNCell, GRUCell, LSTMCell, StackedRNNCells and RNN(cell) ----
-- A cell holds a recurrent layer's arguments and weights; RNN runs it over
-- the sequence with the same rnn op as SimpleRNN, GRU and LSTM (the loop over
-- steps stays in C). A stack of cells runs as a stack of rnn ops, every one
-- over the whole sequence: the same numbers as one step through every cell
-- in turn, since a cell's step needs only the step before it.
local CELL_REGS = {"kernel_regularizer", "recurrent_regularizer", "bias_regularizer", "kernel_constraint",
  "recurrent_constraint", "bias_constraint", "dropout", "recurrent_dropout"}
local CELL_POSITIONAL = {
  SimpleRNN = order("units", "activation", "use_bias", INITS, CELL_REGS),
  GRU = order("units", "activation", "recurrent_activation", "use_bias", INITS, CELL_REGS, "implementation",
    "reset_after"),
  LSTM = order("units", "activation", "recurrent_activation", "use_bias", INITS, "unit_forget_bias", CELL_REGS,
    "implementation"),
}

local function cell_class(kind)
  local name = kind .. "Cell"
  local cls = define(name, CELL_POSITIONAL[kind], CELL_POSITIONAL[kind], function(self, o)
    rnn_init(self, o, kind, name)
    self._kind = nil   -- (not a layer of its own: Bidirectional takes RNN layers)
    self._rnn_cell = kind
    self.state_size = kind == "LSTM" and {self.units, self.units} or self.units
  end)
  cls._make_weights = rnn_methods._make_weights
  function cls:build(shape)
    if type(shape[1]) == "table" then shape = shape[1] end
    rnn_methods._make_weights(self, shape[#shape])
  end
  function cls:call()
    error(self:_msg("a cell runs inside an RNN layer: keras.layers.RNN(cell)(x)"), 0)
  end
  return cls
end

cell_class("SimpleRNN")
cell_class("GRU")
cell_class("LSTM")
L.SimpleRNNCell._prefix, L.GRUCell._prefix, L.LSTMCell._prefix = "simple_rnn_cell", "gru_cell", "lstm_cell"

local function is_builtin_cell(c) return L.is_layer(c) and c._rnn_cell ~= nil end

-- a cell written in Lua (docs/recurrent_cells.md): a layer class with a
-- state_size and call(self, x, states) returning the output and the new states
local function is_lua_cell(c)
  return L.is_layer(c) and c._rnn_cell == nil and c.class_name ~= "StackedRNNCells" and c.state_size ~= nil
    and type(c.call) == "function" and c._run_build ~= nil
end

local function cell_error(who, c)
  return string.format("%s: expected a cell (SimpleRNNCell, GRUCell, LSTMCell, a cell written in Lua with " ..
    "state_size and call(self, x, states), StackedRNNCells) or a list of cells, got %s", who,
    L.is_layer(c) and ("a " .. tostring(c.class_name) .. " layer") or type(c))
end

-- a lone table of layers is a list of cells: RNN({c1, c2}), StackedRNNCells({c1, c2}) (and RNN{c1, c2})
local function cell_list(t, least)
  if #t < (least or 2) or L.is_layer(t) then return false end
  for k, v in pairs(t) do
    if math.type(k) ~= "integer" or not L.is_layer(v) then return false end
  end
  return true
end

local StackedRNNCells = define("StackedRNNCells", {"cells"}, {"cells"}, function(self, o)
  local cells = o.cells
  if type(cells) ~= "table" or L.is_layer(cells) or #cells == 0 then
    raise("StackedRNNCells: cells must be a non-empty list of cells, got " ..
      (L.is_layer(cells) and "one layer" or type(cells)))
  end
  local lua = 0
  for _, c in ipairs(cells) do
    if is_lua_cell(c) then lua = lua + 1 elseif not is_builtin_cell(c) then raise(cell_error("StackedRNNCells", c)) end
  end
  if lua > 0 and lua < #cells then
    raise("StackedRNNCells: a stack mixes cells written in Lua with built-in cells; stack cells of one kind "
      .. "(write the built-in step in Lua too, or use RNN layers one after another)")
  end
  self.cells = cells
  local sizes = {}
  for i = #cells, 1, -1 do   -- Keras 2.2.4: the states in reverse order of the stack
    local sz = cells[i].state_size
    for _, v in ipairs(type(sz) == "table" and sz or {sz}) do sizes[#sizes + 1] = v end
  end
  self.state_size = sizes
end, {single = function(t) return cell_list(t, 1) end})

function StackedRNNCells.call(self)
  error(self:_msg("a cell runs inside an RNN layer: keras.layers.RNN(cell)(x)"), 0)
end

-- the cells written in Lua of RNN's cell argument (a list), or nil
local function lua_cells_of(c)
  if is_lua_cell(c) then return {c} end
  if L.is_layer(c) and c.class_name == "StackedRNNCells" and is_lua_cell(c.cells[1]) then
    local out = {}
    for _, x in ipairs(c.cells) do out[#out + 1] = x end
    return out
  end
  return nil
end

-- the flat list of built-in cells of RNN's cell argument
local function cells_of(c)
  if L.is_layer(c) and c.class_name == "StackedRNNCells" then
    local out = {}
    for _, x in ipairs(c.cells) do out[#out + 1] = x end
    return out
  end
  if is_builtin_cell(c) then return {c} end
  raise(cell_error("RNN", c))
end

local RNN = define("RNN", {"cell", "return_sequences", "return_state", "go_backwards", "stateful", "unroll"},
  {"cell", "return_sequences", "return_state", "go_backwards", "stateful", "unroll"},
  function(self, o)
  local c = o.cell
  if type(c) == "table" and not L.is_layer(c) then
    if #c == 0 then raise("RNN: cell must be a cell or a non-empty list of cells, got an empty table") end
    c = StackedRNNCells{cells = c}
    o.cell = c   -- the config names the stack, as Keras's
  end
  self.cell = c
  local lua = lua_cells_of(c)
  if lua then return L._lua_cell_rnn(self, o, lua) end
  self._cells = cells_of(c)
  for _, x in ipairs(self._cells) do
    if x._rnn_owner and x._rnn_owner ~= self then
      raise(string.format("RNN: cell '%s' already belongs to layer '%s'", x.name, x._rnn_owner.name))
    end
  end
  for _, x in ipairs(self._cells) do x._rnn_owner = self end
  self.return_sequences = bool(o.return_sequences, false)
  self.return_state = bool(o.return_state, false)
  self.go_backwards = bool(o.go_backwards, false)
  self.stateful = bool(o.stateful, false)
  self.unroll = bool(o.unroll, false)
  self._kind = "RNN"
  self._nstates = 0
  for _, x in ipairs(self._cells) do self._nstates = self._nstates + x._nstates end
  take_batch(self)
  -- a runner per cell: one rnn op with this layer's flags (and its states, when stateful)
  self._runners = {}
  for i, x in ipairs(self._cells) do
    self._runners[i] = setmetatable({}, {__index = x})
  end
end, {single = cell_list})

function RNN:build(shape)
  if type(shape[1]) == "table" then shape = shape[1] end
  if self._lua_cells then return L._lua_cell_rnn_build(self, shape) end
  if #shape ~= 3 then
    error(string.format("Input 0 is incompatible with layer %s: expected ndim=3, found ndim=%d", self.name, #shape))
  end
  local F = shape[3]
  local list = {}
  for _, c in ipairs(self._cells) do
    if not c.built then
      rnn_methods._make_weights(c, F)
      c.built = true
    elseif c.input_dim ~= F then
      error(self:_msg("cell '%s' was built for inputs of %d features, got %d", c.name, c.input_dim, F), 0)
    end
    -- Keras makes the cells' weights in this layer's name scope
    for _, w in ipairs(c._weights) do
      w.name = self.name .. "/" .. w.short .. ":0"
      list[#list + 1] = w
    end
    F = c.units
  end
  self._weights = list
end

function RNN:call(x, kwargs)
  kwargs = kwargs or {}
  if self._lua_cells then return L._lua_cell_rnn_call(self, x, kwargs) end
  local xin, initial = input_and_states(x, kwargs)
  if kwargs.constants ~= nil then error(self:_msg("constants are not supported (the cells take none)"), 0) end
  if #initial > 0 and #initial ~= self._nstates then
    error(self:_msg("Layer has %d states but was passed %d initial states.", self._nstates, #initial), 0)
  end
  local mask = kwargs.mask
  if mask == nil then mask = xin:meta().mask end
  -- the states come in reverse order of the stack: the last cell's first
  local per, k = {}, 1
  for i = #self._cells, 1, -1 do
    local n = self._cells[i]._nstates
    if #initial > 0 then
      per[i] = {}
      for j = 1, n do per[i][j] = initial[k + j - 1] end
    end
    k = k + n
  end
  local n = #self._cells
  local y, states = xin, {}
  for i, r in ipairs(self._runners) do
    local last = i == n
    r.return_sequences = self.return_sequences or not last
    r.return_state = self.return_state
    r.go_backwards = self.go_backwards
    -- (a cell before the last gives its sequence in input order, so that every
    -- cell of a go_backwards stack reads the steps as the first one did)
    r._input_order = not last or self._input_order or nil   -- (Bidirectional's backward layer: input order)
    r.stateful = self.stateful
    r._fixed_batch = r._fixed_batch or self._fixed_batch
    local out = rnn_methods.call(r, y, {mask = mask, initial_state = per[i]})
    if self.return_state then
      states[i] = {}
      for j = 2, #out do states[i][j - 1] = out[j] end
      out = out[1]
    end
    y = out
    if not self._fixed_batch then self._fixed_batch = r._fixed_batch end
  end
  local outs = {y}
  if self.return_state then
    for i = n, 1, -1 do
      for _, s in ipairs(states[i]) do outs[#outs + 1] = s end
    end
  end
  mark_batch(self, outs)
  if #outs == 1 then return y end
  return outs
end

RNN.__call_layer = rnn_methods.__call_layer

function RNN:get_losses()
  local out = L.Layer.get_losses(self)
  for _, c in ipairs(self._cells) do
    for _, v in ipairs(c:get_losses()) do out[#out + 1] = v end
  end
  return out
end

-- states in the order of the layer's state list (the last cell's first)
function RNN:reset_states(states)
  if not self.stateful or self._lua_cells then return end
  if states ~= nil and getmetatable(states) == core.Tensor then states = {states} end
  if states ~= nil and (type(states) ~= "table" or #states ~= self._nstates) then
    raise(string.format("Layer %s expects %d states, but it received %d state values.", self.name, self._nstates,
      type(states) == "table" and #states or 1))
  end
  local k = 1
  for i = #self._runners, 1, -1 do
    local r = self._runners[i]
    r._fixed_batch = r._fixed_batch or self._fixed_batch
    if states == nil then
      rnn_methods.reset_states(r)
    else
      local part = {}
      for j = 1, r._nstates do part[j] = states[k + j - 1] end
      rnn_methods.reset_states(r, part)
    end
    k = k + r._nstates
  end
end

function RNN:get_states()
  local out = {}
  if self._lua_cells then return out end
  for i = #self._runners, 1, -1 do
    for _, t in ipairs(rnn_methods.get_states(self._runners[i])) do out[#out + 1] = t end
  end
  return out
end
RNN._getters.states = function(self) return self:get_states() end

-- ---- Bidirectional and TimeDistributed: layers_wrappers.lua, with these helpers ----

L._recurrent = {take_batch = take_batch, mark_batch = mark_batch, input_list = input_list,
                call_layer = rnn_methods.__call_layer, options = recurrent_options}

-- ---- masked pooling ----

-- GlobalAveragePooling1D is mask-aware since Keras 2.2.3: the mean over the
-- unmasked steps, sum(x * mask) / sum(mask). (The layer itself belongs to the
-- convolution family; this wraps its call when the input carries a mask.)
local GAP1 = L.GlobalAveragePooling1D
if GAP1 and not GAP1._mask_aware then
  local plain = GAP1.call
  GAP1._mask_aware = true
  function GAP1:call(x, kwargs)
    local mask = (kwargs and kwargs.mask) or x:meta().mask
    if mask == nil then return plain(self, x, kwargs) end
    local first = self.data_format == "channels_first"
    local m = K.expand_dims(mask, first and 1 or -1)
    local steps = first and 2 or 1
    return K.div(K.sum(K.mul(x, m), steps), K.sum(m, steps))
  end
end


-- ---- Keras 2.2.4's configs of this file's classes: keys in Keras's order
-- with their defaults, and how a constructor's value becomes Keras's (ints to
-- tuples); saving.lua writes and reads configs by them (layer_config.lua) ----

do
  local config = require("keras.layer_config")
  local NULL, REQ = config.NULL, config.REQ
  local initializer, concat = config.initializer, config.concat
  local RNN_BASE = {"return_sequences", false, "return_state", false, "go_backwards", false, "stateful", false,
                    "unroll", false}
  local RNN_REGS = {"kernel_regularizer", NULL, "recurrent_regularizer", NULL, "bias_regularizer", NULL,
    "activity_regularizer", NULL, "kernel_constraint", NULL, "recurrent_constraint", NULL, "bias_constraint", NULL,
    "dropout", 0.0, "recurrent_dropout", 0.0}
  -- the cells: no activity_regularizer; the CuDNN layers: no dropout
  local CELL_INITS = {"kernel_initializer", initializer("glorot_uniform"),
    "recurrent_initializer", initializer("orthogonal"), "bias_initializer", initializer("zeros")}
  local CELL_KEYS_REGS = {"kernel_regularizer", NULL, "recurrent_regularizer", NULL, "bias_regularizer", NULL,
    "kernel_constraint", NULL, "recurrent_constraint", NULL, "bias_constraint", NULL,
    "dropout", 0.0, "recurrent_dropout", 0.0}
  local CUDNN_BASE = {"return_sequences", false, "return_state", false, "go_backwards", false, "stateful", false}
  local CUDNN_KEYS_REGS = {"kernel_regularizer", NULL, "recurrent_regularizer", NULL, "bias_regularizer", NULL,
    "activity_regularizer", NULL, "kernel_constraint", NULL, "recurrent_constraint", NULL, "bias_constraint", NULL}
  config.add({
    Masking = {"mask_value", 0.0},
    Embedding = {"input_dim", REQ, "output_dim", REQ, "embeddings_initializer", initializer("uniform"),
      "embeddings_regularizer", NULL, "activity_regularizer", NULL, "embeddings_constraint", NULL, "mask_zero", false,
      "input_length", NULL},
    SimpleRNN = concat(RNN_BASE, {"units", REQ, "activation", "tanh", "use_bias", true,
      "kernel_initializer", initializer("glorot_uniform"), "recurrent_initializer", initializer("orthogonal"),
      "bias_initializer", initializer("zeros")}, RNN_REGS),
    GRU = concat(RNN_BASE, {"units", REQ, "activation", "tanh", "recurrent_activation", "hard_sigmoid",
      "use_bias", true, "kernel_initializer", initializer("glorot_uniform"),
      "recurrent_initializer", initializer("orthogonal"), "bias_initializer", initializer("zeros")}, RNN_REGS,
      {"implementation", 1, "reset_after", false}),
    LSTM = concat(RNN_BASE, {"units", REQ, "activation", "tanh", "recurrent_activation", "hard_sigmoid",
      "use_bias", true, "kernel_initializer", initializer("glorot_uniform"),
      "recurrent_initializer", initializer("orthogonal"), "bias_initializer", initializer("zeros"),
      "unit_forget_bias", true}, RNN_REGS, {"implementation", 1}),
    Bidirectional = {"layer", REQ, "merge_mode", "concat"},
    TimeDistributed = {"layer", REQ},
    RNN = concat(RNN_BASE, {"cell", REQ}),
    StackedRNNCells = {"cells", REQ},
    SimpleRNNCell = concat({"units", REQ, "activation", "tanh", "use_bias", true}, CELL_INITS, CELL_KEYS_REGS),
    GRUCell = concat({"units", REQ, "activation", "tanh", "recurrent_activation", "hard_sigmoid", "use_bias", true},
      CELL_INITS, CELL_KEYS_REGS, {"implementation", 1, "reset_after", false}),
    LSTMCell = concat({"units", REQ, "activation", "tanh", "recurrent_activation", "hard_sigmoid", "use_bias", true},
      CELL_INITS, {"unit_forget_bias", true}, CELL_KEYS_REGS, {"implementation", 1}),
    CuDNNGRU = concat(CUDNN_BASE, {"units", REQ}, CELL_INITS, CUDNN_KEYS_REGS),
    CuDNNLSTM = concat(CUDNN_BASE, {"units", REQ}, CELL_INITS, {"unit_forget_bias", true}, CUDNN_KEYS_REGS),
    ConvLSTM2D = concat(RNN_BASE, {"filters", REQ, "kernel_size", REQ, "strides", {1, 1}, "padding", "valid",
      "data_format", "channels_last", "dilation_rate", {1, 1}, "activation", "tanh",
      "recurrent_activation", "hard_sigmoid", "use_bias", true}, CELL_INITS, {"unit_forget_bias", true}, RNN_REGS),
  }, {
    ConvLSTM2D = {kernel_size = config.tuple(2), strides = config.tuple(2), dilation_rate = config.tuple(2)},
  })
end

return true
