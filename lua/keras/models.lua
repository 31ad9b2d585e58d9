-- keras.models: Model (a graph of layer calls) and Sequential (the same,
-- built one add at a time), with compile / fit / evaluate / predict.
-- compile builds ONE training graph (outputs, weighted losses, metrics) and a
-- C trainer over it; fit then runs whole epochs in C. Lua only runs between
-- epochs, and inside an epoch only when a progress bar or a per-batch
-- callback asks for it (throttled to the bar's refresh interval).
-- This file: the Model and Sequential classes, compile and summary; the data
-- arguments, None lengths, fit, evaluate and predict are in training.lua.
local keras = ...
local util = require("keras.util")
local is_plain, is_tensor = util.is_plain, util.is_tensor
local raise = util.raise
local core, K, L = keras._core, keras.backend, keras.layers
local is_node = core.is_node

local M = {}

local shape_str = L._shape_str

-- the call forms of docs/signatures.md (args.lua): call_spec(who, positional, tables)
local args_spec, args_parse = keras._args.spec, keras._args.parse
local function call_spec(who, positional, tables)
  return args_spec{who = who, positional = positional, allowed = {}, tables = tables}
end
-- data (x, y, sample weights) may be a list or a table keyed by names
local DATA = {x = "keyed", y = "keyed", sample_weight = "keyed", class_weight = "keyed",
              callbacks = true, validation_data = true}
-- a lone table given to predict is its x (a list of inputs, or keyed by name)
-- unless it names an argument: predict{xa, xb} is predict({xa, xb})
local function lone_x(s)
  return function(t)
    for k in pairs(t) do
      if type(k) == "string" and s.known[k] then return false end
    end
    return true
  end
end
-- fit and evaluate read a lone table as the one-table form (fit{x, y, epochs = 2}),
-- unless it is keyed by input names only
local function keyed_x(s)
  return function(t)
    if t[1] ~= nil then return false end
    for k in pairs(t) do
      if type(k) ~= "string" or s.known[k] then return false end
    end
    return true
  end
end

-- ---- the Model class ----

local Model = L._class("Model")
M.Model = Model
Model._prefix = "model"

-- walk back from the outputs through the recorded layer calls
-- Keras 2.2.4's network map: the calls in an order where inputs come first,
-- and the layers sorted by depth (deepest first, the inputs), ties broken by
-- the order in which a walk back from the outputs first meets them.
local function build_network(self, inputs, outputs, who)
  local calls, seen, layer_index, nlayers = {}, {}, {}, 0
  local reached_inputs = {}
  local function visit(t)
    local m = t:meta()
    local layer = m.layer
    if not layer then
      error(string.format("%s: output tensors to a Model must be the output of a Keras layer (got %s)", who,
        tostring(t)), 0)
    end
    local rec = layer._inbound[m.node_index]
    if seen[rec] then return end
    seen[rec] = true
    if not layer_index[layer] then
      nlayers = nlayers + 1
      layer_index[layer] = nlayers
    end
    if layer.class_name == "InputLayer" then
      reached_inputs[t] = layer
    end
    for _, it in ipairs(rec.inputs) do visit(it) end
    calls[#calls + 1] = {layer = layer, rec = rec}
  end
  for _, o in ipairs(outputs) do visit(o) end
  -- depths: outputs 0, each input one deeper than its deepest user
  local node_depth, layer_depth = {}, {}
  for i = #calls, 1, -1 do
    local c = calls[i]
    local d = math.max(node_depth[c.rec] or 0, layer_depth[c.layer] or 0)
    layer_depth[c.layer], node_depth[c.rec] = d, d
    for _, it in ipairs(c.rec.inputs) do
      local m = it:meta()
      local r = m.layer._inbound[m.node_index]
      node_depth[r] = math.max(d + 1, node_depth[r] or 0)
    end
  end
  local given = {}
  for i, x in ipairs(inputs) do
    local m = x:meta()
    if not (m.layer and m.layer.class_name == "InputLayer") then
      error(string.format("%s: input %d is not a keras.Input (model inputs must come from keras.Input)", who, i), 0)
    end
    given[x] = true
    if not reached_inputs[x] then
      error(string.format("%s: input '%s' is not connected to the outputs", who, m.layer.name), 0)
    end
  end
  for t, layer in pairs(reached_inputs) do
    if not given[t] then
      error(string.format('Graph disconnected: cannot obtain value for tensor %s at layer "%s". Pass it in inputs.',
        layer.name, layer.name), 0)
    end
  end
  self._calls = calls
  self._layer_index = layer_index   -- the set of layers, for extend_chain
  local list = {}
  for l in pairs(layer_index) do list[#list + 1] = l end
  table.sort(list, function(a, b)
    if layer_depth[a] ~= layer_depth[b] then return layer_depth[a] > layer_depth[b] end
    return layer_index[a] < layer_index[b]
  end)
  self._all_layers = list
end
M._build_network = build_network

local function init_model(self, inputs, outputs, name)
  L.Layer._init(self, {name = name})
  self.inputs, self.outputs = inputs, outputs
  self.built = true
  self.stop_training = false
  self._trainer = nil
  self._predictor = nil
  self.history = nil
end

-- Keras 2.2.4: Model(inputs, outputs, name)
local MODEL_SPEC = call_spec("Model", {"inputs", "outputs", "name"}, {inputs = true, outputs = true})

setmetatable(Model, {__index = L.Layer, __call = function(_, ...)
  local o = args_parse(MODEL_SPEC, ...)
  local function list(x, what)
    if is_node(x) then return {x} end
    if is_plain(x) and #x > 0 then
      for i, t in ipairs(x) do
        if not is_node(t) then raise(string.format("Model: %s[%d] is not a symbolic tensor", what, i)) end
      end
      return x
    end
    raise(string.format("Model: %s must be a symbolic tensor or a list of them", what))
  end
  local inputs, outputs = list(o.inputs, "inputs"), list(o.outputs, "outputs")
  local self = setmetatable({}, Model)
  init_model(self, inputs, outputs, o.name)
  build_network(self, inputs, outputs, "Model")
  return self
end})

function Model._getters.layers(self)
  local out = {}
  for i, l in ipairs(self._all_layers or {}) do out[i] = l end
  return out
end

local function model_shapes(list)
  if not list then raise("This model has not yet been built.") end
  local out = {}
  for i, t in ipairs(list) do
    local s = {}
    for k, d in ipairs(t.shape) do s[k] = d < 0 and K.None or d end
    out[i] = s
  end
  if #out == 1 then return out[1] end
  return out
end
function Model._getters.output_shape(self) return model_shapes(self.outputs) end
function Model._getters.input_shape(self) return model_shapes(self.inputs) end
function Model._getters.input(self) return self.inputs and (#self.inputs == 1 and self.inputs[1] or self.inputs) end
function Model._getters.output(self) return self.outputs and (#self.outputs == 1 and self.outputs[1]
  or self.outputs) end

function Model._getters.input_names(self)
  local out = {}
  for i, x in ipairs(self.inputs or {}) do out[i] = x:meta().layer.name end
  return out
end

function Model._getters.output_names(self)
  local out, used = {}, {}
  for i, x in ipairs(self.outputs or {}) do
    local n = x:meta().layer.name
    if used[n] then n = n .. "_" .. used[n]; used[n] = 1 else used[n] = 1 end
    out[i] = n
  end
  return out
end

function Model._getters.weights(self)
  local out = {}
  for _, w in ipairs(self:_weight_records()) do out[#out + 1] = w.tensor end
  return out
end

function Model._getters.trainable_weights(self)
  local out = {}
  for _, w in ipairs(self:_weight_records(true)) do out[#out + 1] = w.tensor end
  return out
end

-- Keras's Network.non_trainable_weights: the layers' non-trainable weights
-- (moving statistics, weights of frozen layers) in layer order; for a frozen
-- model, every weight, the layers' trainable ones first
function Model._getters.non_trainable_weights(self)
  local out = {}
  if not self.trainable then
    for _, w in ipairs(self:_weight_records(true, true)) do out[#out + 1] = w.tensor end
  end
  for _, w in ipairs(self:_weight_records(false, not self.trainable)) do out[#out + 1] = w.tensor end
  return out
end

-- unique weight records in layer order (layer weights ordered as Keras does).
-- trainable nil: all; true: the trainable ones; false: the non-trainable
-- ones. A frozen model has no trainable weights unless ignore_self is set.
function Model:_weight_records(trainable, ignore_self)
  local out, seen = {}, {}
  local function add(layer, parent_trainable)
    if layer._all_layers and layer ~= self then
      for _, l in ipairs(layer._all_layers) do add(l, parent_trainable and layer.trainable) end
      return
    end
    for _, w in ipairs(L.Layer._ordered_weights(layer)) do
      local tr = w.trainable and layer.trainable and parent_trainable
      if not seen[w] and (trainable == nil or trainable == tr) then
        seen[w] = true
        out[#out + 1] = w
      end
    end
  end
  local top = ignore_self or self.trainable ~= false
  for _, l in ipairs(self._all_layers or {}) do add(l, top) end
  return out
end

function Model:get_weights()
  local out = {}
  for i, w in ipairs(self:_weight_records()) do out[i] = w.tensor:copy() end
  return out
end

function Model:set_weights(list)
  local ws = self:_weight_records()
  if type(list) ~= "table" or #list ~= #ws then
    raise(string.format("set_weights: the model has %d weights, got %s", #ws,
      type(list) == "table" and tostring(#list) or type(list)))
  end
  for i, w in ipairs(ws) do
    local v = is_tensor(list[i]) and list[i] or core.tensor(list[i])
    local a, b = w.tensor.shape, v.shape
    local ok = #a == #b
    for k = 1, #a do if a[k] ~= b[k] then ok = false end end
    if not ok then
      raise(string.format("set_weights: weight %d (%s) has shape %s, got %s", i, w.name, shape_str(a), shape_str(b)))
    end
    w.tensor:assign(v)
  end
end

function Model:count_params()
  local n = 0
  for _, w in ipairs(self:_weight_records()) do n = n + w.tensor:size() end
  return n
end

-- Keras 2.2.4: get_layer(name, index); index counts from 1, as model.layers
local GET_LAYER_SPEC = call_spec("get_layer", {"name", "index"})

function Model:get_layer(...)
  local o = args_parse(GET_LAYER_SPEC, ...)
  local name, index = o.name, o.index
  if name ~= nil and index ~= nil then raise("get_layer: give a layer name or an index, not both") end
  if name == nil and index == nil then raise("get_layer: provide either a layer name or a layer index") end
  if index ~= nil then
    local layers = self.layers
    if math.type(index) ~= "integer" then
      raise(string.format("get_layer: index must be an integer (from 1), got %s", tostring(index)))
    end
    local l = layers[index]
    if not l then raise(string.format("get_layer: no layer at index %d (the model has %d)", index, #layers)) end
    return l
  end
  if type(name) ~= "string" then
    raise(string.format("get_layer: name must be a string, got %s", type(name)))
  end
  for _, l in ipairs(self._all_layers or {}) do
    if l.name == name then return l end
  end
  raise(string.format("No such layer: %s", tostring(name)))
end

-- Model:get_losses (the layers' losses, their calls' and add_loss's): lua/keras/custom.lua

function Model:reset_states()
  for _, l in ipairs(self._all_layers or {}) do
    if l._all_layers then l:reset_states()            -- a model used as a layer
    elseif l.stateful and l.reset_states then l:reset_states() end
  end
end

-- a model called on new inputs: every recorded layer call is replayed on them
function Model:call(x)
  local xs = is_node(x) and {x} or x
  if #xs ~= #self.inputs then
    error(string.format("Model %s expects %d inputs, got %d", self.name, #self.inputs, #xs), 0)
  end
  local map = {}
  for i, t in ipairs(self.inputs) do
    local a, b = t.shape, xs[i].shape
    local ok = #a == #b
    for k = 2, #a do if a[k] ~= b[k] and a[k] ~= -1 then ok = false end end
    if not ok then
      error(string.format("Model %s: input %d expected shape %s, got %s", self.name, i, shape_str(a), shape_str(b)), 0)
    end
    map[t] = xs[i]
  end
  for _, c in ipairs(self._calls) do
    if c.layer.class_name ~= "InputLayer" then
      local ins = {}
      for i, t in ipairs(c.rec.inputs) do ins[i] = map[t] end
      local out = c.layer(#ins == 1 and ins[1] or ins, c.rec.kwargs)
      local outs = is_node(out) and {out} or out
      for i, t in ipairs(c.rec.outputs) do map[t] = outs[i] end
    end
  end
  local outs = {}
  for i, t in ipairs(self.outputs) do outs[i] = map[t] end
  if #outs == 1 then return outs[1] end
  return outs
end

function Model.build(_self) end

-- ---- Sequential ----

local Sequential = L._class("Sequential", Model)
M.Sequential = Sequential
Sequential._prefix = "sequential"

setmetatable(Sequential, {__index = Model, __call = function(_, a, b, ...)
  if select("#", ...) > 0 then raise("Sequential: too many positional arguments") end
  local list, name
  if is_plain(a) then
    list = {}
    for i, l in ipairs(a) do list[i] = l end
    name = a.name
    for k in pairs(a) do
      if math.type(k) ~= "integer" and k ~= "name" and k ~= "layers" then
        raise(string.format("Sequential: unknown argument '%s'", tostring(k)))
      end
    end
    if a.layers then list = a.layers end
  elseif a ~= nil then
    raise("Sequential: expected a list of layers")
  end
  -- Keras 2.2.4: Sequential(layers, name)
  if type(b) == "string" then
    if name ~= nil then raise("Sequential: argument 'name' given twice") end
    name = b
  elseif is_plain(b) then
    for k, v in pairs(b) do
      if k ~= "name" then raise(string.format("Sequential: unknown argument '%s'", tostring(k))) end
      if name ~= nil then raise("Sequential: argument 'name' given twice") end
      name = v
    end
  elseif b ~= nil then
    raise("Sequential: name must be a string, got " .. type(b))
  end
  local self = setmetatable({}, Sequential)
  init_model(self, nil, nil, name)
  self._seq = {}
  self._outs = {}
  self._all_layers = {}
  for _, l in ipairs(list or {}) do
    local ok, err = pcall(self.add, self, l)
    if not ok then raise(err) end
  end
  return self
end})

function Sequential._getters.layers(self)
  local out = {}
  for i, l in ipairs(self._seq) do out[i] = l end
  return out
end

local function seq_reset(self)
  self._trainer, self._predictor, self._compiled, self._variants = nil, nil, nil, nil
end

-- After one layer is applied to the end of a Sequential whose network is
-- built, its network grows by that call instead of being walked again (n adds
-- were O(n^2)): the call comes last in _calls and the layer, new and the only
-- one at depth 0, last in _all_layers, which is what build_network gives.
-- false (nothing changed) when that does not hold: build_network then runs.
local function extend_chain(self, from)
  local calls, set, list = self._calls, self._layer_index, self._all_layers
  if from < 2 or from ~= #self._seq or not calls or not set or not list or #calls == 0 then return false end
  local prev, y = self._outs[from - 1], self._outs[from]
  local pm = prev:meta()
  if not pm.layer or calls[#calls].rec ~= pm.layer._inbound[pm.node_index] then return false end
  local m = y:meta()
  local l = m.layer
  if not l or set[l] then return false end
  local rec = l._inbound[m.node_index]
  if not rec or #rec.inputs ~= 1 or rec.inputs[1] ~= prev then return false end
  calls[#calls + 1] = {layer = l, rec = rec}
  set[l] = true
  list[#list + 1] = l
  return true
end

-- apply the layers from index `from` on, starting from the current output
local function seq_apply(self, from)
  for i = from, #self._seq do
    local l = self._seq[i]
    local x = self._outs[i - 1] or self.inputs[1]
    local y = l(x)
    if not is_node(y) then
      error(string.format("Sequential: layer %s has %d outputs; all layers in a Sequential model should have a " ..
        "single output tensor",
        l.name, #y), 0)
    end
    self._outs[i] = y
  end
  self.outputs = {self._outs[#self._seq]}
  if self.inputs and extend_chain(self, from) then return end
  self._all_layers = {}
  if self.inputs then
    build_network(self, self.inputs, self.outputs, "Sequential")
  end
end

function Sequential:add(layer)
  if not L.is_layer(layer) then
    raise(string.format("The added layer must be an instance of class Layer. Found: %s", tostring(layer)))
  end
  seq_reset(self)
  if #self._seq == 0 and layer.class_name == "InputLayer" then
    -- an InputLayer gives the model its input; it is not one of model.layers
    if self.inputs then raise("Sequential: an InputLayer can only be the first layer") end
    self.inputs = {layer.output}
    self._input_layer = layer
    return
  end
  table.insert(self._seq, layer)
  local n = #self._seq
  if n == 1 and self.inputs then
    local ok, err = pcall(seq_apply, self, 1)
    if not ok then table.remove(self._seq); raise(err) end
  elseif n == 1 then
    local bis = layer._batch_input_shape
    if not bis and layer.inputs and layer._all_layers then   -- a model as the first layer
      bis = layer.inputs[1].shape
    end
    if bis then
      local x = L.InputLayer.new{batch_shape = (function()
        local s = {}
        for i, d in ipairs(bis) do s[i] = d == -1 and K.None or d end
        return s
      end)(), name = nil}.output
      self.inputs = {x}
      local ok, err = pcall(seq_apply, self, 1)
      if not ok then table.remove(self._seq); self.inputs = nil; raise(err) end
    end
  elseif self.inputs then
    local ok, err = pcall(seq_apply, self, n)
    if not ok then table.remove(self._seq); raise(err) end
  end
end

function Sequential:pop()
  if #self._seq == 0 then raise("There are no layers in the model.") end
  seq_reset(self)
  table.remove(self._seq)
  self._outs[#self._seq + 1] = nil
  if #self._seq == 0 then
    self.inputs, self.outputs, self._all_layers = nil, nil, {}
  elseif self.inputs then
    self.outputs = {self._outs[#self._seq]}
    build_network(self, self.inputs, self.outputs, "Sequential")
  end
end

-- a Sequential model without an input shape is built on the first data
function Sequential:_ensure_built(x, who)
  if self.inputs then return end
  if #self._seq == 0 then raise(who .. ": the model has no layers") end
  local t = type(x) == "table" and not is_tensor(x) and x[1] or x
  if not is_tensor(t) then raise(who .. ": cannot build the model from this data") end
  local s = t.shape
  local shape = {K.None}
  for i = 2, #s do shape[i] = s[i] end
  self.inputs = {L.InputLayer.new{batch_shape = shape}.output}
  local ok, err = pcall(seq_apply, self, 1)
  if not ok then self.inputs = nil; raise(err) end
end

function Model._ensure_built(_self) end

function Sequential:call(x)
  if not self.inputs then
    local s = x.shape
    local shape = {K.None}
    for i = 2, #s do shape[i] = s[i] end
    self.inputs = {L.InputLayer.new{batch_shape = shape}.output}
    seq_apply(self, 1)
  end
  return Model.call(self, x)
end

-- ---- compile ----

local function per_output(v, names, who, what, default)
  local out = {}
  if v == nil then
    for i = 1, #names do out[i] = default end
  elseif is_plain(v) and v[1] == nil and next(v) ~= nil and what ~= "metrics" then
    for k in pairs(v) do
      local ok = false
      for _, n in ipairs(names) do if n == k then ok = true end end
      if not ok then
        raise(string.format("%s: unknown output name '%s' in %s (outputs: %s)", who, tostring(k), what,
          table.concat(names, ", ")))
      end
    end
    for i, n in ipairs(names) do
      out[i] = v[n]
      if out[i] == nil then
        if default == nil then raise(string.format("%s: %s has no entry for output '%s'", who, what, n)) end
        out[i] = default
      end
    end
  elseif is_plain(v) and v[1] ~= nil and what ~= "metrics" then
    if #v ~= #names then
      raise(string.format("%s: %s has %d entries but the model has %d outputs", who, what, #v, #names))
    end
    for i = 1, #names do out[i] = v[i] end
  else
    for i = 1, #names do out[i] = v end
  end
  return out
end

-- metrics: a list for every output, or a table keyed by output name
local function metrics_per_output(v, names, who)
  local out = {}
  for i = 1, #names do out[i] = {} end
  if v == nil then return out end
  if not is_plain(v) then raise(who .. ": metrics must be a list") end
  if v[1] == nil and next(v) ~= nil and type(next(v)) == "string" and v.fn == nil then
    for k, m in pairs(v) do
      local idx
      for i, n in ipairs(names) do if n == k then idx = i end end
      if not idx then
        raise(string.format("%s: unknown output name '%s' in metrics (outputs: %s)", who, tostring(k),
          table.concat(names, ", ")))
      end
      out[idx] = (is_plain(m) and m.fn == nil) and m or {m}
    end
  else
    for i = 1, #names do out[i] = v end
  end
  return out
end

-- Keras 2.2.4's weighted_masked_objective: the per-sample score (the mean
-- over every axis but the batch's; a scalar counts for every sample),
-- mean(score * w) / mean(w != 0)
local function weighted_score(score, w)
  if score.ndim > 1 then
    local axes = {}
    for k = 1, score.ndim - 1 do axes[k] = k end
    score = K.mean(score, axes)
  elseif score.ndim == 0 then
    score = K.add(K.mul(K.zeros_like(w), 0), score)
  end
  return K.div(K.mean(K.mul(score, w)), K.maximum(K.mean(K.not_equal(w, 0)), K.epsilon()))
end

-- Keras 2.2.4: compile(optimizer, loss, metrics, loss_weights, sample_weight_mode,
-- weighted_metrics, target_tensors)
-- (plan_cache_size: lkeras's, for models with None-length axes)
local COMPILE_SPEC = call_spec("compile", {"optimizer", "loss", "metrics", "loss_weights", "sample_weight_mode",
                                      "weighted_metrics", "target_tensors"},
                          {loss = "keyed", metrics = "keyed", loss_weights = "keyed", sample_weight_mode = "keyed",
                           weighted_metrics = "keyed", target_tensors = "keyed"})
COMPILE_SPEC.allowed.plan_cache_size = true
COMPILE_SPEC.known.plan_cache_size = true

function Model:compile(...)
  local o = args_parse(COMPILE_SPEC, ...)
  if not keras.losses or not keras.optimizers or not keras.metrics then
    raise("compile: losses, metrics or optimizers are not available in this build")
  end
  if self._ensure_built and not self.inputs then
    if #(self._seq or {}) > 0 or self._subclassed then
      -- deferred: build when data arrives
      self._pending_compile = o
      self._trainer, self._predictor = nil, nil
      return
    end
    raise("compile: the model has no layers")
  end
  self:_compile(o, 3)
end

-- level: the user's frame as error() counts it here, where metrics.resolve
-- looks up the variable name of a metric function (errors go to the user's
-- line by themselves)
function Model:_compile(o, level)
  if o.optimizer == nil then raise("compile: missing argument 'optimizer'") end
  if o.loss == nil and #self:get_losses() == 0 then
    raise("compile: missing argument 'loss'")   -- (Keras: "...has no loss to optimize.")
  end
  if o.loss == nil then
    -- no loss for the outputs: the loss is the model's own (add_loss,
    -- regularizers), and fit, evaluate and validation data take no targets
    for _, k in ipairs{"loss_weights", "metrics"} do
      if o[k] ~= nil then
        raise(string.format("compile: %s needs a loss for the outputs (compiled without loss, "
          .. "the model takes no targets)", k))
      end
    end
  end
  if o.sample_weight_mode ~= nil then
    raise("compile: sample_weight_mode is not supported by this version of lkeras")
  end
  if o.target_tensors ~= nil then
    raise("compile: target_tensors is not supported by this version of lkeras (give the targets as y to fit)")
  end
  local pcs = o.plan_cache_size
  if pcs ~= nil and (math.type(pcs) ~= "integer" or pcs < 1) then
    raise("compile: plan_cache_size must be an integer >= 1, got " .. tostring(pcs))
  end
  local optimizer = keras.optimizers._lookup(o.optimizer)
  local g = self:_training_graph(o, self.outputs, level)
  if self:_has_none() then
    -- graphs with a None length are compiled per input shape (see variant_for);
    -- the optimizer's slots exist from now on, shared by them all
    local ok, err = pcall(optimizer._ud.bind, optimizer._ud, g.vars, g.constraints)
    if not ok then raise("compile: " .. tostring(err):gsub("^[^:]*:%d+: ", "")) end
    self._trainer = nil
    self._variants = nil
  else
    local ok, trainer = pcall(core.trainer, {inputs = self.inputs, targets = g.targets, weights = g.weights,
      outputs = self.outputs, logs = g.logs, vars = g.vars, constraints = g.constraints, optimizer = optimizer._ud})
    if not ok then raise("compile: " .. tostring(trainer):gsub("^[^:]*:%d+: ", "")) end
    self._trainer = trainer
  end
  self._predictor = nil
  self._targets = g.targets
  self.optimizer = optimizer
  self.loss = o.loss
  self.loss_functions = g.loss_names
  self.metrics_names = g.log_names
  self._compiled = o
  self._pending_compile = nil
end

-- the loss, the metrics and their placeholders over the model's outputs (or
-- the same outputs traced again for one input shape)
function Model:_training_graph(o, outputs, level)
  local names = self.output_names
  local loss_specs = per_output(o.loss, names, "compile", "loss")
  local lw = per_output(o.loss_weights, names, "compile", "loss_weights", 1.0)
  local mspecs = metrics_per_output(o.metrics, names, "compile")
  local wspecs = metrics_per_output(o.weighted_metrics, names, "compile")
  local targets, weights, logs, log_names = {}, {}, {}, {"loss"}
  local total
  local out_losses, loss_names = {}, {}
  for i, y_pred in ipairs(o.loss ~= nil and outputs or {}) do
    local fn, lname = keras.losses._lookup(loss_specs[i])
    loss_names[i] = lname
    local s = y_pred.shape
    local ts = {}
    for k, d in ipairs(s) do ts[k] = d end
    if lname == "sparse_categorical_crossentropy" then ts[#ts] = 1 end
    local y_true = core.input(ts)
    local w = core.input({s[1]})   -- the batch axis, or a fixed batch size (batch_shape)
    targets[i], weights[i] = y_true, w
    local score = fn(y_true, y_pred)
    if not is_node(score) then raise(string.format("compile: the loss for output '%s' must return a symbolic tensor",
      names[i])) end
    local weighted = weighted_score(score, w)
    out_losses[i] = weighted
    local term = lw[i] == 1.0 and weighted or K.mul(weighted, lw[i])
    total = total and K.add(total, term) or term
  end
  for _, r in ipairs(self:get_losses()) do total = total and K.add(total, r) or r end
  logs[1] = total
  if #out_losses > 1 then
    for i, l in ipairs(out_losses) do
      logs[#logs + 1] = l
      log_names[#log_names + 1] = names[i] .. "_loss"
    end
  end
  local used = {}
  for i, y_pred in ipairs(o.loss ~= nil and outputs or {}) do
    local s = y_pred.shape
    -- Keras 2.2.4: each output's metrics, then its weighted_metrics, named
    -- weighted_<name> and weighted by the sample weights as the loss is
    local specs = {}
    for _, spec in ipairs(mspecs[i]) do specs[#specs + 1] = {spec, false} end
    for _, spec in ipairs(wspecs[i]) do specs[#specs + 1] = {spec, true} end
    for _, sw in ipairs(specs) do
      local spec, weighted = sw[1], sw[2]
      local fn, mname = keras.metrics._resolve(spec, s, loss_names[i], level)
      local v = fn(targets[i], y_pred)
      if not is_node(v) then raise(string.format("compile: metric '%s' must return a symbolic tensor", mname)) end
      if weighted then
        v = weighted_score(v, weights[i])
        mname = "weighted_" .. mname
      else
        v = K.mean(v)
      end
      local full = #self.outputs > 1 and (names[i] .. "_" .. mname) or mname
      if used[full] then
        used[full] = used[full] + 1
        full = full .. "_" .. used[full]
      else
        used[full] = 0
      end
      logs[#logs + 1] = v
      log_names[#log_names + 1] = full
    end
  end
  local vars, constraints = {}, {}
  for _, w in ipairs(self:_weight_records(true)) do
    vars[#vars + 1] = w.node
    constraints[#vars] = w.constraint_desc or false   -- projected after each update (keras.constraints)
  end
  return {targets = targets, weights = weights, logs = logs, log_names = log_names, loss_names = loss_names,
          vars = vars, constraints = constraints}
end

-- ---- summary ----

-- Keras 2.2.4: summary(line_length, positions, print_fn)
local SUMMARY_SPEC = call_spec("summary", {"line_length", "positions", "print_fn"}, {positions = true})

function Model:summary(...)
  local o = args_parse(SUMMARY_SPEC, ...)
  if not self.inputs then
    raise("This model has not yet been built. Build the model first by calling build() or calling fit() with some " ..
      "data. Or specify input_shape or batch_input_shape in the first layer for automatic build.")
  end
  local S = keras._summary or package.preload["keras.summary"]()
  keras._summary = S
  local sequential = self._seq ~= nil
  if not sequential then
    -- Keras treats a graph whose layers each have one node, one input, in a chain, as sequential-like
    sequential = true
    for _, l in ipairs(self._all_layers) do
      local inside = 0
      for _, c in ipairs(self._calls) do if c.layer == l then inside = inside + 1 end end
      if inside > 1 then sequential = false end
      for _, c in ipairs(self._calls) do
        if c.layer == l and #c.rec.inputs > 1 then sequential = false end
      end
    end
    if #self.inputs > 1 or #self.outputs > 1 then sequential = false end
  end
  local rows = {}
  for _, l in ipairs(sequential and self._seq or self._all_layers) do
    local outs
    for _, c in ipairs(self._calls) do if c.layer == l then outs = outs or c.rec.outputs end end
    local shape = outs and (#outs == 1 and shape_str(outs[1].shape) or "multiple") or "multiple"
    local row = {name = l.name, class = l.class_name, output_shape = shape,
                 params = l._all_layers and l:count_params() or L.Layer.count_params(l)}
    if not sequential then
      row.connected = {}
      for _, c in ipairs(self._calls) do
        if c.layer == l then
          for _, t in ipairs(c.rec.inputs) do
            local m = t:meta()
            row.connected[#row.connected + 1] = string.format("%s[%d][%d]", m.layer.name, m.node_index - 1,
              m.tensor_index - 1)
          end
        end
      end
    end
    rows[#rows + 1] = row
  end
  local total, trainable = self:count_params(), 0
  for _, w in ipairs(self:_weight_records(true)) do trainable = trainable + w.tensor:size() end
  S.print(rows, {sequential = sequential, total = total, trainable = trainable, non_trainable = total - trainable,
                 line_length = o.line_length, positions = o.positions,
                 write = o.print_fn and function(s) o.print_fn((s:gsub("\n$", ""))) end or keras._write})
end

-- every public method reports errors at the caller's line
for _, cls in ipairs{Model, Sequential} do
  for _, name in ipairs{"compile", "fit", "evaluate", "predict", "predict_on_batch", "predict_classes",
                        "predict_proba", "train_on_batch", "test_on_batch", "summary", "add", "pop",
                        "get_weights", "set_weights", "get_layer", "count_params", "reset_states"} do
    local f = rawget(cls, name)
    if f then cls[name] = L._api(f) end
  end
end

Model.__tostring = function(self)
  return string.format("<%s %s: %d layers, %d params>", self.class_name, self.name, #self.layers,
    self.inputs and self:count_params() or 0)
end
Sequential.__tostring = Model.__tostring
-- ---- data arguments, None lengths, fit, evaluate, predict, one batch ----
-- in training.lua, which shares the call forms above

do
  local training = package.preload["keras.training"]
  if not training then error("keras: missing module keras.training") end
  training(keras, M, {call_spec = call_spec, DATA = DATA, keyed_x = keyed_x, lone_x = lone_x})
end


return M
