-- RNN with cells written in Lua (docs/recurrent_cells.md): a layer class made
-- with keras.layers.Layer:extend that has a state_size (a number, or a list
-- of them) and call(self, x, states[, kwargs]) returning the step's output and
-- the list of its new states, as a Keras cell does:
--
--   local MinimalRNNCell = keras.layers.Layer:extend("MinimalRNNCell")
--   function MinimalRNNCell:init(args) self.units = args.units or args[1]; self.state_size = self.units end
--   function MinimalRNNCell:build(shape)
--     self.kernel = self:add_weight{name = "kernel", shape = {shape[2], self.units}}
--     self.recurrent_kernel = self:add_weight{name = "recurrent_kernel", shape = {self.units, self.units}}
--   end
--   function MinimalRNNCell:call(x, states)
--     local h = K.dot(x, self.kernel) + K.dot(states[1], self.recurrent_kernel)
--     return h, {h}
--   end
--   local y = keras.layers.RNN(MinimalRNNCell(32))(x)
--
-- The steps are unrolled when the model is put together: the cell's call runs
-- once per time step on symbolic tensors (K.rnn), so the model's graph holds
-- every step and nothing of the cell runs in Lua while the model trains or
-- predicts. The number of time steps must therefore be known when the layer is
-- called, and such an RNN cannot be stateful (its states would have to live
-- between batches outside the graph); both are refused clearly. A stack
-- (RNN{cell1, cell2} or StackedRNNCells) of Lua cells passes each step through
-- the cells in order, its states listed the last cell's first, as Keras 2.2.4.
local keras = ...
local util = require("keras.util")
local raise = util.raise
local bool = util.bool
local core, K, L = keras._core, keras.backend, keras.layers
local is_node = core.is_node
local R = L._recurrent

local fmt = string.format

local function cell_name(c) return fmt("cell '%s' (%s)", tostring(c.name), tostring(c.class_name)) end

-- the cell's state sizes as a list
local function state_sizes(who, c)
  local sz = c.state_size
  local list = type(sz) == "table" and sz or {sz}
  if #list == 0 then raise(fmt("%s: %s has an empty state_size", who, cell_name(c))) end
  for i, v in ipairs(list) do
    if math.type(v) ~= "integer" or v < 1 then
      raise(fmt("%s: %s: state_size must be a positive integer or a list of them, got %s at position %d", who,
        cell_name(c), tostring(v), i))
    end
  end
  return list
end

-- the width of a cell's output: its output_size when it has one, else its
-- first state's size (Keras 2.2.4's RNN and StackedRNNCells)
local function output_size(who, c)
  if c.output_size ~= nil then
    if math.type(c.output_size) ~= "integer" or c.output_size < 1 then
      raise(fmt("%s: %s: output_size must be a positive integer, got %s", who, cell_name(c), tostring(c.output_size)))
    end
    return c.output_size
  end
  return state_sizes(who, c)[1]
end

-- RNN's constructor for Lua cells (layers_rnn.lua hands over)
function L._lua_cell_rnn(self, o, cells)
  for _, x in ipairs(cells) do
    if x._rnn_owner and x._rnn_owner ~= self then
      raise(fmt("RNN: cell '%s' already belongs to layer '%s'", x.name, x._rnn_owner.name))
    end
  end
  for _, x in ipairs(cells) do x._rnn_owner = self end
  self._lua_cells, self._cells = cells, cells
  self.return_sequences = bool(o.return_sequences, false)
  self.return_state = bool(o.return_state, false)
  self.go_backwards = bool(o.go_backwards, false)
  self.stateful = bool(o.stateful, false)
  self.unroll = bool(o.unroll, false)
  self._kind = "RNN"
  if self.stateful then
    raise(fmt("RNN: stateful = true needs the states kept between batches, which a RNN of a cell written in Lua "
      .. "(%s) cannot do: its steps are unrolled into the model's graph. Use SimpleRNNCell, GRUCell or LSTMCell, "
      .. "or pass the states yourself (initial_state and return_state)", cell_name(cells[1])))
  end
  self._nstates = 0
  for _, x in ipairs(cells) do self._nstates = self._nstates + #state_sizes("RNN", x) end
  R.take_batch(self)
end

-- build: each cell built for its step input (batch, features), in the RNN's
-- name scope (Keras's weight names: rnn_1/kernel:0, rnn_1/kernel_1:0, ...)
function L._lua_cell_rnn_build(self, shape)
  if #shape ~= 3 then
    error(fmt("Input 0 is incompatible with layer %s: expected ndim=3, found ndim=%d", self.name, #shape))
  end
  local F = shape[3]
  local list, seen = {}, {}
  for _, c in ipairs(self._lua_cells) do
    if not c.built then
      local batch = math.type(shape[1]) == "integer" and shape[1] or -1   -- (K.None: unknown)
      local ok, err = pcall(c._run_build, c, {batch, F})
      if not ok then raise(self:_msg("building %s: %s", cell_name(c), (L._strip(err)))) end
      c.built = true
    end
    for _, w in ipairs(c._weights) do
      local base = self.name .. "/" .. w.short
      local k = seen[base]
      seen[base] = (k or 0) + 1
      w.name = base .. (k and ("_" .. k) or "") .. ":0"
      list[#list + 1] = w
    end
    F = output_size("RNN", c)
  end
  self._weights = list
end

-- the output and new states of one cell's step, checked
local function cell_step(self, c, x, states, kw)
  local ok, out, new = pcall(c.call, c, x, states, kw)
  if not ok then raise(self:_msg("%s: call: %s", cell_name(c), (L._strip(out)))) end
  if not is_node(out) and type(out) == "table" and new == nil and is_node(out[1]) then out, new = out[1], out[2] end
  if not is_node(out) then
    raise(self:_msg("%s: call(x, states) must return the output (a symbolic tensor) and the list of new states, "
      .. "got %s", cell_name(c), type(out)))
  end
  if is_node(new) then new = {new} end
  if type(new) ~= "table" or #new ~= #states then
    raise(self:_msg("%s: call(x, states) returned %s new states, expected %d (its state_size)", cell_name(c),
      type(new) == "table" and tostring(#new) or type(new), #states))
  end
  for i, t in ipairs(new) do
    if not is_node(t) then raise(self:_msg("%s: new state %d is not a symbolic tensor", cell_name(c), i)) end
  end
  return out, new
end

-- zeros of (batch, size): the initial state Keras makes from the input
local function zero_state(x, size)
  local z = K.sum(K.zeros_like(x), {1, 2})          -- (batch,)
  return K.tile(K.expand_dims(z, 1), {1, size})     -- (batch, size)
end

function L._lua_cell_rnn_call(self, x, kwargs)
  local ins = R.input_list(x)
  local xin = ins[1]
  local initial = {}
  for i = 2, #ins do initial[#initial + 1] = ins[i] end
  if kwargs.initial_state then
    local st = is_node(kwargs.initial_state) and {kwargs.initial_state} or kwargs.initial_state
    for _, t in ipairs(st) do initial[#initial + 1] = t end
  end
  if kwargs.constants ~= nil then error(self:_msg("constants are not supported for cells written in Lua"), 0) end
  if #initial > 0 and #initial ~= self._nstates then
    error(self:_msg("Layer has %d states but was passed %d initial states.", self._nstates, #initial), 0)
  end
  local T = xin.shape[2]
  if T == nil or T < 1 then
    raise(self:_msg("%s is written in Lua: its steps are unrolled when the model is put together, so the number "
      .. "of time steps must be known (got None); give Input a shape with the length, or use a built-in cell",
      cell_name(self._lua_cells[1])))
  end
  local cells = self._lua_cells
  -- each cell's states, in the layer's order (the last cell's first)
  local sizes, first = {}, {}
  local k = 1
  for i = #cells, 1, -1 do
    sizes[i] = state_sizes("RNN", cells[i])
    first[i] = k
    k = k + #sizes[i]
  end
  if #initial == 0 then
    for i = 1, #cells do
      for j, sz in ipairs(sizes[i]) do initial[first[i] + j - 1] = zero_state(xin, sz) end
    end
  end
  local kw = {training = kwargs.training}
  local function step(xt, states)
    local new = {}
    local y = xt
    for i, c in ipairs(cells) do
      local mine = {}
      for j = 1, #sizes[i] do mine[j] = states[first[i] + j - 1] end
      local out, got = cell_step(self, c, y, mine, kw)
      for j = 1, #sizes[i] do new[first[i] + j - 1] = got[j] end
      y = out
    end
    return y, new
  end
  local mask = kwargs.mask
  if mask == nil then mask = xin:meta().mask end
  local last, outputs, states = K.rnn(step, xin, initial, self.go_backwards, mask)
  local y = self.return_sequences and outputs or last
  if self.return_sequences and mask ~= nil then y:meta().mask = mask end
  self:_activity_loss(y)
  local outs = {y}
  if self.return_state then
    for _, s in ipairs(states) do outs[#outs + 1] = s end
  end
  R.mark_batch(self, outs)
  if #outs == 1 then return y end
  return outs
end

return true
