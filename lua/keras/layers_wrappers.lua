-- keras.layers.Bidirectional and TimeDistributed (Keras 2.2.4 arguments and
-- weight layouts): layers that wrap another layer. Their saving specs are in
-- layers_rnn.lua's config block, with the recurrent layers'.
local keras = ...
local util = require("keras.util")
local raise = util.raise
local core, K, L = keras._core, keras.backend, keras.layers
local is_node = core.is_node
local define, shape_str = L._define, L._shape_str
-- the recurrent family's helpers for a fixed batch size and for calls (layers_rnn.lua)
local R = L._recurrent
local take_batch, mark_batch, input_list = R.take_batch, R.mark_batch, R.input_list

-- ---- wrappers ----

-- weights of the wrapped layers as the wrapper's own records
local function adopt_weights(self, subs)
  local list = {}
  for _, l in ipairs(subs) do
    local recs = l._all_layers and l:_weight_records() or l._weights
    for _, w in ipairs(recs) do list[#list + 1] = w end
  end
  self._weights = list
end

local function build_sub(sub, shape)
  if sub.built then return end
  local ok, err = pcall(sub._run_build, sub, shape)
  if not ok then error(err, 0) end
  sub.built = true
  if sub._initial_weights then
    local w = sub._initial_weights
    sub._initial_weights = nil
    sub:set_weights(w)
  end
end

-- ---- Bidirectional ----

local MERGE = {concat = true, sum = true, mul = true, ave = true}

local Bidirectional = define("Bidirectional", {"layer", "merge_mode", "weights"}, {"layer", "merge_mode"},
  function(self, o)
  local layer = o.layer
  if not (L.is_layer(layer) and layer._kind) then
    raise("Bidirectional: the wrapped layer must be a recurrent layer (SimpleRNN, GRU, LSTM, RNN, CuDNNGRU or " ..
      "CuDNNLSTM), got " ..
      (L.is_layer(layer) and layer.class_name or type(layer)))
  end
  local mm = o.merge_mode
  if mm == nil then mm = "concat" end
  if mm == K.None or mm == false then mm = nil
  elseif not MERGE[mm] then
    raise('Invalid merge mode. Merge mode should be one of {"sum", "mul", "ave", "concat", None}')
  end
  self.merge_mode = mm
  -- the backward layer: the same configuration going the other way
  local args = {}
  for k, v in pairs(layer._args or {}) do args[k] = v end
  args.go_backwards = not layer.go_backwards
  args.name = "backward_" .. layer.name
  args.weights, args.batch_input_shape, args.input_shape, args.batch_size = nil, nil, nil, nil
  args.input_dim, args.input_length = nil, nil
  -- RNN(cell): the backward layer gets cells of its own, from the cell's config (as Keras's from_config)
  if layer.class_name == "RNN" then
    -- (cells written in Lua come back through their own classes)
    local classes = {}
    for _, c in ipairs(layer.cell.cells or {layer.cell}) do
      if c._custom then classes[c.class_name] = getmetatable(c) end
    end
    args.cell = L.deserialize(L.serialize(layer.cell), classes)
  end
  local cls = L[layer.class_name]
  self.backward_layer = cls(args)
  self.forward_layer = layer
  layer.name = "forward_" .. layer.name
  self.backward_layer._input_order = true
  self.return_sequences = layer.return_sequences
  self.return_state = layer.return_state
  self.stateful = layer.stateful
  self._kind = layer._kind
  if not self._batch_input_shape and layer._batch_input_shape then
    self._batch_input_shape = layer._batch_input_shape
    self._user_batch_input_shape = layer._user_batch_input_shape
  end
  self._fixed_batch = layer._fixed_batch
  take_batch(self)
  if self._fixed_batch then
    layer._fixed_batch = self._fixed_batch
    self.backward_layer._fixed_batch = self._fixed_batch
  end
end)

function Bidirectional:build(shape)
  if type(shape[1]) == "table" then shape = shape[1] end
  build_sub(self.forward_layer, shape)
  build_sub(self.backward_layer, shape)
  adopt_weights(self, {self.forward_layer, self.backward_layer})
end

function Bidirectional:call(x, kwargs)
  kwargs = kwargs or {}
  local ins = input_list(x)
  local xin = ins[1]
  local states = {}
  for i = 2, #ins do states[#states + 1] = ins[i] end
  local mask = kwargs.mask
  if mask == nil then mask = xin:meta().mask end
  local fw_kw, bw_kw = {mask = mask}, {mask = mask}
  if #states > 0 then
    local n = #states // 2
    if #states % 2 ~= 0 then
      error(self:_msg("initial_state must hold the forward and the backward states (an even number), got %d",
        #states), 0)
    end
    fw_kw.initial_state, bw_kw.initial_state = {}, {}
    for i = 1, n do
      fw_kw.initial_state[i] = states[i]
      bw_kw.initial_state[i] = states[n + i]
    end
  end
  local y = self.forward_layer:call(xin, fw_kw)
  local yb = self.backward_layer:call(xin, bw_kw)
  local fs, bs = {}, {}
  if self.return_state then
    for i = 2, #y do fs[#fs + 1] = y[i] end
    for i = 2, #yb do bs[#bs + 1] = yb[i] end
    y, yb = y[1], yb[1]
  end
  local outs
  local mm = self.merge_mode
  if mm == "concat" then outs = {K.concatenate({y, yb}, -1)}
  elseif mm == "sum" then outs = {K.add(y, yb)}
  elseif mm == "mul" then outs = {K.mul(y, yb)}
  elseif mm == "ave" then outs = {K.scale(K.add(y, yb), 0.5)}
  else outs = {y, yb} end
  if self.return_sequences and mask ~= nil then
    for _, o in ipairs(outs) do o:meta().mask = mask end
  end
  for _, s in ipairs(fs) do outs[#outs + 1] = s end
  for _, s in ipairs(bs) do outs[#outs + 1] = s end
  mark_batch(self, outs)
  if #outs == 1 then return outs[1] end
  return outs
end

Bidirectional.__call_layer = R.call_layer

function Bidirectional:get_losses()
  local out = L.Layer.get_losses(self)
  for _, l in ipairs{self.forward_layer, self.backward_layer} do
    for _, v in ipairs(l:get_losses()) do out[#out + 1] = v end
  end
  return out
end

function Bidirectional:reset_states(states)
  if not self.stateful then return end
  if states == nil then
    self.forward_layer:reset_states()
    self.backward_layer:reset_states()
    return
  end
  local n = #states // 2
  local a, b = {}, {}
  for i = 1, n do a[i], b[i] = states[i], states[n + i] end
  self.forward_layer:reset_states(a)
  self.backward_layer:reset_states(b)
end

-- ---- TimeDistributed ----

-- layers that act on the last axis only: applying them to (batch, steps, ...)
-- is applying them to every step
local LAST_AXIS = {Dense = true, Activation = true, Dropout = true, LeakyReLU = true, ReLU = true, ELU = true,
                   ThresholdedReLU = true, Softmax = true, PReLU = true, BatchNormalization = true}

local TimeDistributed = define("TimeDistributed", {"layer"}, {"layer"}, function(self, o)
  if not L.is_layer(o.layer) then
    raise("TimeDistributed: the first argument must be a layer or a model, got " .. type(o.layer))
  end
  self.layer = o.layer
  take_batch(self)
end)

function TimeDistributed:build(shape)
  if type(shape[1]) == "table" then shape = shape[1] end
  if #shape < 3 then
    error(self:_msg("expected input of rank >= 3 (batch, timesteps, ...), got shape %s", shape_str(shape)))
  end
  local inner = {shape[1]}
  for i = 3, #shape do inner[#inner + 1] = shape[i] end
  local l = self.layer
  if not l._all_layers then build_sub(l, inner) end
  adopt_weights(self, {l})
end

function TimeDistributed:call(x, kwargs)
  local s = x.shape
  if #s < 3 then
    error(self:_msg("expected input of rank >= 3 (batch, timesteps, ...), got shape %s", shape_str(s)), 0)
  end
  local l = self.layer
  local mask = (kwargs and kwargs.mask) or x:meta().mask
  local T = s[2]
  local y
  local function one(t)
    local r = l:_run_call(t)
    if not is_node(r) then error(self:_msg("the wrapped layer must return one tensor"), 0) end
    return r
  end
  if LAST_AXIS[l.class_name] then
    y = one(x)
  elseif T < 0 then
    -- a None time axis: a model traces this call again for every concrete
    -- length (and folds the time axis then), so here the output only needs
    -- its shape: the wrapped layer's on one step, under (batch, None)
    local rest = {s[1]}
    for i = 3, #s do rest[#rest + 1] = s[i] end
    local ys = one(core.input(rest)).shape
    local shape = {s[1], -1}
    for i = 2, #ys do shape[#shape + 1] = ys[i] end
    y = core.input(shape)
  elseif s[1] < 0 then
    -- an unknown batch: fold the time axis into it, (batch * T, ...), as Keras does
    local folded = {s[1] * T}
    for i = 3, #s do folded[#folded + 1] = s[i] end
    local yt = one(core.op("reshape", {x}, {shape = folded}))
    local ys = yt.shape
    local back = {s[1], T}
    for i = 2, #ys do back[#back + 1] = ys[i] end
    y = core.op("reshape", {yt}, {shape = back})
  else
    -- a fixed batch: one call per step, sharing the weights (Keras's K.rnn path)
    local rest = {s[1]}
    for i = 3, #s do rest[#rest + 1] = s[i] end
    local steps = {}
    for t = 1, T do
      local yt = one(core.op("reshape", {core.op("slice", {x}, {axis = 1, start = t - 1, length = 1})}, {shape = rest}))
      local ys = yt.shape
      local e = {ys[1], 1}
      for i = 2, #ys do e[#e + 1] = ys[i] end
      steps[t] = core.op("reshape", {yt}, {shape = e})
    end
    y = #steps == 1 and steps[1] or K.concatenate(steps, 1)
  end
  if mask ~= nil then y:meta().mask = mask end
  mark_batch(self, {y})
  return y
end

function TimeDistributed:get_losses()
  local out = L.Layer.get_losses(self)
  for _, v in ipairs(self.layer:get_losses()) do out[#out + 1] = v end
  return out
end

function TimeDistributed:reset_states() if self.layer.reset_states then self.layer:reset_states() end end

-- layers whose input_shape may start with a None time axis (layers.lua)
for _, name in ipairs{"Embedding", "Masking", "SimpleRNN", "GRU", "LSTM", "Bidirectional", "TimeDistributed", "RNN",
                      "CuDNNGRU", "CuDNNLSTM"} do
  if L[name] then L[name]._none_length_ok = true end
end
