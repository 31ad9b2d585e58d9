-- keras.layers.ConvLSTM2D (Keras 2.2.4 arguments, defaults and weight
-- layouts), built from the engine's conv2d and elementwise ops. Its saving
-- spec is in layers_rnn.lua's config block, with the other recurrent layers'.
local keras = ...
local util = require("keras.util")
local raise, bool = util.raise, util.bool
local core, K, L = keras._core, keras.backend, keras.layers
local A, I = keras.activations, keras.initializers
local is_node = core.is_node
local define, shape_str = L._define, L._shape_str
local check_int = L._check_int

-- ---- ConvLSTM2D: an LSTM whose products are 2-D convolutions ----
--
-- Keras 2.2.4's equations, channels_last: with x_t (batch, rows, cols, in)
-- and the gates' slices of kernel (kh, kw, in, 4f), recurrent_kernel
-- (kh, kw, f, 4f) and bias (4f) in the order i, f, c, o,
--   z = conv(x_t, kernel; strides, padding, dilation) + bias
--       + conv(h_{t-1}, recurrent_kernel; stride 1, 'same')
--   i, f, o = recurrent_activation(z_i, z_f, z_o), c_t = f*c_{t-1} + i*activation(z_c),
--   h_t = o * activation(c_t); h_0 = c_0 = 0.
-- The steps are unrolled in the graph (the time axis must be fixed): the
-- input convolution of every step is one conv2d over (batch * time) images,
-- each step adds one recurrent conv2d and its gate math, and the plan runs
-- in C without Lua per step. Dropout (training only, Keras's masks: one per
-- gate, drawn once per batch, shared by the steps) multiplies the input and
-- h_{t-1} before each gate's convolution.

local CONVLSTM_KEYS = {"filters", "kernel_size", "strides", "padding", "data_format", "dilation_rate", "activation",
  "recurrent_activation", "use_bias", "kernel_initializer", "recurrent_initializer", "bias_initializer",
  "unit_forget_bias", "kernel_regularizer", "recurrent_regularizer", "bias_regularizer", "activity_regularizer",
  "kernel_constraint", "recurrent_constraint", "bias_constraint", "return_sequences", "go_backwards", "stateful",
  "dropout", "recurrent_dropout"}
local CONVLSTM_KW = {}
for i, k in ipairs(CONVLSTM_KEYS) do CONVLSTM_KW[i] = k end
CONVLSTM_KW[#CONVLSTM_KW + 1] = "return_state"
CONVLSTM_KW[#CONVLSTM_KW + 1] = "unroll"

-- an integer or a list of two integers >= 1
local function pair(who, name, v)
  if type(v) == "table" and #v == 1 then v = v[1] end
  if math.type(v) == "integer" then v = {v, v} end
  if type(v) ~= "table" or #v ~= 2 or math.type(v[1]) ~= "integer" or math.type(v[2]) ~= "integer"
     or v[1] < 1 or v[2] < 1 then
    raise(string.format("%s: %s must be an integer or a list of 2 integers >= 1, got %s", who, name,
      type(v) == "table" and "a table of " .. #v or tostring(v)))
  end
  return {v[1], v[2]}
end

local ConvLSTM2D = define("ConvLSTM2D", CONVLSTM_KEYS, CONVLSTM_KW, function(self, o)
  local who = "ConvLSTM2D"
  self.filters = check_int(who, "filters", o.filters)
  if o.kernel_size == nil then raise(who .. ": missing argument 'kernel_size'") end
  self.kernel_size = pair(who, "kernel_size", o.kernel_size)
  self.strides = pair(who, "strides", o.strides or 1)
  self.dilation_rate = pair(who, "dilation_rate", o.dilation_rate or 1)
  o.kernel_size = self.kernel_size
  if o.strides ~= nil then o.strides = self.strides end
  if o.dilation_rate ~= nil then o.dilation_rate = self.dilation_rate end
  if (self.strides[1] ~= 1 or self.strides[2] ~= 1) and (self.dilation_rate[1] ~= 1 or self.dilation_rate[2] ~= 1)
  then
    raise(who .. ": strides other than 1 cannot be combined with a dilation_rate other than 1")
  end
  local padding = o.padding or "valid"
  if type(padding) == "string" then padding = padding:lower() end
  if padding ~= "valid" and padding ~= "same" then
    raise(string.format("%s: padding must be 'valid' or 'same', got %s", who,
      type(padding) == "string" and "'" .. padding .. "'" or tostring(padding)))
  end
  self.padding = padding
  if o.data_format ~= nil and o.data_format ~= "channels_last" then
    raise(string.format("%s: data_format %s is not supported (channels_last only)", who,
      type(o.data_format) == "string" and "'" .. o.data_format .. "'" or tostring(o.data_format)))
  end
  self.data_format = "channels_last"
  self.activation, self._act_name = A.get(o.activation == nil and "tanh" or o.activation, who)
  self.recurrent_activation, self._ract_name = A.get(o.recurrent_activation == nil and "hard_sigmoid"
    or o.recurrent_activation, who)
  self.use_bias = bool(o.use_bias, true)
  self.kernel_initializer = I.get(o.kernel_initializer or "glorot_uniform", who)
  self.recurrent_initializer = I.get(o.recurrent_initializer or "orthogonal", who)
  self.bias_initializer = I.get(o.bias_initializer or "zeros", who)
  self.unit_forget_bias = bool(o.unit_forget_bias, true)
  L._recurrent.options(self, o, who)
  self.return_sequences = bool(o.return_sequences, false)
  self.return_state = bool(o.return_state, false)
  self.go_backwards = bool(o.go_backwards, false)
  if bool(o.unroll, false) then raise(who .. ": Unrolling isn't possible with convolutional RNNs.") end
  if bool(o.stateful, false) then
    raise(who .. ": stateful = true is not supported (the steps are unrolled in the graph, which keeps no "
      .. "state between batches)")
  end
  self.stateful = false
end)
ConvLSTM2D._prefix = "conv_lst_m2d"
ConvLSTM2D._none_length_ok = true   -- a None time axis is refused in build, with its own message

-- output size of one spatial axis (Keras's conv_output_length)
local function conv_out(n, k, padding, s, d)
  local ext = (k - 1) * d + 1
  if padding == "same" then return (n + s - 1) // s end
  return (n - ext + s) // s
end

-- TensorFlow's 'same' amounts (the extra one after), zeros for 'valid'
local function same_pads(padding, n, k, s, d)
  if padding ~= "same" then return 0, 0 end
  local total = math.max(((n + s - 1) // s - 1) * s + (k - 1) * d + 1 - n, 0)
  return total // 2, total - total // 2
end

function ConvLSTM2D:build(shape)
  if type(shape[1]) == "table" then shape = shape[1] end
  if #shape ~= 5 then
    error(self:_msg("expected input with ndim=5 (batch, time, rows, cols, channels), found ndim=%d (shape %s)",
      #shape, shape_str(shape)), 0)
  end
  if shape[2] < 0 then
    error(self:_msg("needs a fixed number of timesteps (its steps are unrolled in the graph), got shape %s",
      shape_str(shape)), 0)
  end
  local ks, st, dl = self.kernel_size, self.strides, self.dilation_rate
  local out = {}
  for a = 1, 2 do
    local n = shape[a + 2]
    if n < 0 then error(self:_msg("needs fixed rows and cols, got shape %s", shape_str(shape)), 0) end
    out[a] = conv_out(n, ks[a], self.padding, st[a], dl[a])
    if out[a] < 1 then
      error(self:_msg("kernel extent %dx%d is larger than the input %dx%d (padding 'valid')",
        (ks[1] - 1) * dl[1] + 1, (ks[2] - 1) * dl[2] + 1, shape[3], shape[4]), 0)
    end
  end
  local f, c = self.filters, shape[5]
  self.input_channels, self.output_size = c, out
  self.kernel = self:add_weight{name = "kernel", shape = {ks[1], ks[2], c, 4 * f},
    initializer = self.kernel_initializer, regularizer = self.kernel_regularizer, constraint = self.kernel_constraint}
  self.recurrent_kernel = self:add_weight{name = "recurrent_kernel", shape = {ks[1], ks[2], f, 4 * f},
    initializer = self.recurrent_initializer, regularizer = self.recurrent_regularizer,
    constraint = self.recurrent_constraint, constraint_arg = "recurrent_constraint"}
  if self.use_bias then
    local init = self.bias_initializer
    if self.unit_forget_bias then
      local bi = self.bias_initializer
      init = function() return K.concatenate({bi{f}, core.full({f}, 1), bi{2 * f}}, 0) end
    end
    self.bias = self:add_weight{name = "bias", shape = {4 * f}, initializer = init,
      regularizer = self.bias_regularizer, constraint = self.bias_constraint}
  end
end

-- the slice [g*f, (g+1)*f) of the last axis (a gate's part)
local function gate(t, g, f)
  return K.apply("slice", {t}, {axis = #t.shape - 1, start = g * f, length = f})
end

-- conv2d of x with w (+ b), strides st, dilation dl, the padding's amounts for x's sizes
local function conv2d(x, w, b, padding, st, dl)
  local s, ks = x.shape, w.shape
  local pt, pb = same_pads(padding, s[2], ks[1], st[1], dl[1])
  local pl, pr = same_pads(padding, s[3], ks[2], st[2], dl[2])
  local inputs = {x, w}
  if b then inputs[3] = b end
  return K.apply("conv2d", inputs, {stride_h = st[1], stride_w = st[2], dilation_h = dl[1], dilation_w = dl[2],
    pad_top = pt, pad_bottom = pb, pad_left = pl, pad_right = pr, relu = 0})
end

-- Keras's dropout masks: one per gate, ones in predict and evaluate
local function gate_masks(like, rate)
  if rate <= 0 or rate >= 1 then return nil end
  local ones = K.ones_like(like)
  local out = {}
  for g = 1, 4 do out[g] = K.in_train_phase(K.dropout(ones, rate), ones) end
  return out
end

-- initial_state given at call: added to the layer's inputs, as Keras's RNN does
ConvLSTM2D.__call_layer = L._recurrent.call_layer

-- the initial states (h, c) passed as extra inputs or initial_state, checked
local function initial_states(self, ins, kwargs)
  local initial = {}
  for i = 2, #ins do initial[#initial + 1] = ins[i] end
  if kwargs.initial_state ~= nil then
    local st = is_node(kwargs.initial_state) and {kwargs.initial_state} or kwargs.initial_state
    for _, t in ipairs(st) do initial[#initial + 1] = t end
  end
  if #initial == 0 then return nil end
  if #initial ~= 2 then
    error(self:_msg("Layer has 2 states but was passed %d initial states.", #initial), 0)
  end
  local out = self.output_size
  for i, t in ipairs(initial) do
    local ts = t.shape
    if #ts ~= 4 or ts[2] ~= out[1] or ts[3] ~= out[2] or ts[4] ~= self.filters then
      error(self:_msg("initial state %d must have shape (batch, %d, %d, %d), got %s", i, out[1], out[2],
        self.filters, shape_str(ts)), 0)
    end
  end
  return initial
end

function ConvLSTM2D:call(x, kwargs)
  kwargs = kwargs or {}
  local ins = is_node(x) and {x} or x
  x = ins[1]
  local initial = initial_states(self, ins, kwargs)
  -- a mask (batch, time): a masked step keeps the states and repeats the
  -- previous output (zeros before the first), as Keras's K.rnn
  local mask = kwargs.mask
  if mask == nil then mask = x:meta().mask end
  if mask ~= nil and (#mask.shape ~= 2 or mask.shape[2] ~= x.shape[2]) then
    error(self:_msg("expects a mask of shape (batch, %d) (one value per time step), got %s", x.shape[2],
      shape_str(mask.shape)), 0)
  end
  local s = x.shape
  if #s ~= 5 then
    error(self:_msg("expected input with ndim=5 (batch, time, rows, cols, channels), found ndim=%d (shape %s)", #s,
      shape_str(s)), 0)
  end
  if s[5] ~= self.input_channels then
    error(self:_msg("expected input with %d channels (last axis), got shape %s", self.input_channels, shape_str(s)),
      0)
  end
  if s[2] < 0 then
    error(self:_msg("needs a fixed number of timesteps (its steps are unrolled in the graph), got shape %s",
      shape_str(s)), 0)
  end
  local T, f, out = s[2], self.filters, self.output_size
  if conv_out(s[3], self.kernel_size[1], self.padding, self.strides[1], self.dilation_rate[1]) ~= out[1]
     or conv_out(s[4], self.kernel_size[2], self.padding, self.strides[2], self.dilation_rate[2]) ~= out[2] then
    error(self:_msg("was built for an output of %dx%d, got an input of shape %s", out[1], out[2], shape_str(s)), 0)
  end
  local st, dl, pad = self.strides, self.dilation_rate, self.padding
  local bias = self.use_bias and self.bias or nil
  -- the input convolutions of every step at once: (batch * T, rows, cols, in)
  local x0 = K.squeeze(K.apply("slice", {x}, {axis = 1, start = 0, length = 1}), 1)
  local function input_conv(xs, w, b)
    -- a None batch folds as -T (the engine's reshape, as TimeDistributed's)
    local y = conv2d(core.op("reshape", {xs}, {shape = {s[1] * T, s[3], s[4], s[5]}}), w, b, pad, st, dl)
    return core.op("reshape", {y}, {shape = {s[1], T, out[1], out[2], w.shape[4]}})
  end
  local xz
  local dmask = gate_masks(x0, self.dropout)
  if dmask then
    local parts = {}
    for g = 1, 4 do
      parts[g] = input_conv(K.mul(x, K.expand_dims(dmask[g], 1)), gate(self.kernel, g - 1, f),
        bias and gate(bias, g - 1, f) or nil)
    end
    xz = K.concatenate(parts, -1)
  else
    xz = input_conv(x, self.kernel, bias)
  end
  local z0 = K.squeeze(K.apply("slice", {xz}, {axis = 1, start = 0, length = 1}), 1)
  local zeros = K.zeros_like(gate(z0, 0, f))
  local h, c = zeros, zeros
  if initial then h, c = initial[1], initial[2] end
  local prev = zeros
  local rmask = gate_masks(h, self.recurrent_dropout)
  local rk, one = self.recurrent_kernel, {1, 1}
  local ract, act = self.recurrent_activation, self.activation
  local outs = {}
  for k = 1, T do
    local t = self.go_backwards and T - k or k - 1
    local zx = K.squeeze(K.apply("slice", {xz}, {axis = 1, start = t, length = 1}), 1)
    local zh
    if rmask then
      local parts = {}
      for g = 1, 4 do parts[g] = conv2d(K.mul(h, rmask[g]), gate(rk, g - 1, f), nil, "same", one, one) end
      zh = K.concatenate(parts, -1)
    else
      zh = conv2d(h, rk, nil, "same", one, one)
    end
    local z = K.add(zx, zh)
    local i = ract(gate(z, 0, f))
    local fg = ract(gate(z, 1, f))
    local c2 = K.add(K.mul(fg, c), K.mul(i, act(gate(z, 2, f))))
    local h2 = K.mul(ract(gate(z, 3, f)), act(c2))
    if mask ~= nil then
      local m = K.squeeze(K.apply("slice", {mask}, {axis = 1, start = t, length = 1}), 1)
      outs[k] = K.switch(m, h2, prev)
      h, c = K.switch(m, h2, h), K.switch(m, c2, c)
    else
      outs[k], h, c = h2, h2, c2
    end
    prev = outs[k]
  end
  local y = self.return_sequences and K.stack(outs, 1) or outs[T]
  if self.return_sequences and mask ~= nil then y:meta().mask = mask end
  self:_activity_loss(y)
  if self.return_state then return {y, h, c} end
  return y
end
