-- Layers and models written in Lua (docs/custom_layers.md): keras.layers.Layer:extend
-- and keras.Model:extend, the methods such classes use (add_weight, add_loss,
-- compute_output_shape, compute_mask, get_config), model:add_loss and
-- model.updates.
--
-- A Lua-written layer is traced: its call runs once per layer call, on
-- symbolic tensors, when a model is put together (or, for a subclassed model,
-- on its first fit/predict/build). What it returns is graph, compiled into the
-- model's plan with every other layer: fit runs its batches in C and no Lua of
-- the layer runs per batch.
local keras = ...
local util = require("keras.util")
local is_plain = util.is_plain
local raise = util.raise
local core, K, L, M = keras._core, keras.backend, keras.layers, keras.models
local is_node = core.is_node
local Layer = L.Layer
local shape_str = L._shape_str

-- Keras's common constructor options, taken by the base class (Keras's
-- Layer.__init__ kwargs); init receives the rest
local BASE_OPTIONS = {"name", "trainable", "input_shape", "input_dim", "batch_input_shape", "batch_size",
                      "dtype", "weights"}

-- a shape as users see it: keras.None for the unknown (batch) size
local function user_shape(s)
  local out = {}
  for i, d in ipairs(s) do out[i] = (d == -1) and K.None or d end
  return out
end

local function shapes_for_user(shapes)
  if type(shapes[1]) == "table" then
    local out = {}
    for i, s in ipairs(shapes) do out[i] = user_shape(s) end
    return out
  end
  return user_shape(shapes)
end

local function what_is(v)
  if getmetatable(v) == core.Tensor then return "a concrete keras.Tensor" end
  if v == nil then return "nothing" end
  return type(v)
end

-- the constructor's arguments as one table: MyLayer(64, {name = "a"}) and
-- MyLayer{64, name = "a"} give {64, name = "a"}; MyLayer(64, 32) gives {64, 32}
local function ctor_args(who, n, ...)
  local last = n > 0 and select(n, ...) or nil
  local args = {}
  if n >= 1 and is_plain(last) then
    for k, v in pairs(last) do args[k] = v end
    if n > 1 then
      if #last > 0 then
        error(string.format("%s: positional arguments given both before and inside the options table", who), 0)
      end
      for i = 1, n - 1 do args[i] = (select(i, ...)) end
    end
  else
    for i = 1, n do args[i] = (select(i, ...)) end
  end
  return args
end

-- MyNet -> my_net (Keras's auto-names: my_net_1, ...)
local function snake(name)
  local s = name:gsub("(.)(%u[%l%d]+)", "%1_%2"):gsub("(%l)(%u)", "%1_%2")
  return s:lower()
end

local function check_name(who, name)
  if type(name) ~= "string" or not name:match("^[%a_][%w_]*$") then
    raise(string.format("%s: the class name must be an identifier string (its class_name in configs), got %s", who,
      type(name) == "string" and ("'" .. name .. "'") or type(name)))
  end
end

-- ======================================================================
-- layers
-- ======================================================================

-- the hidden base of every Lua-written layer class
local CustomLayer = L._class("Layer")
setmetatable(CustomLayer, {__index = Layer})
CustomLayer._custom = true
CustomLayer.supports_masking = false   -- a class or its init may set it

-- the base config (Keras's Layer.get_config) of a layer
function L._base_config(layer)
  local c = {name = layer.name, trainable = layer.trainable}
  if layer._batch_input_shape then
    c.batch_input_shape = user_shape(layer._batch_input_shape)
    c.dtype = "float32"
  end
  return c
end

local function new_layer(cls, n, ...)
  local who = cls.class_name
  local args = ctor_args(who, n, ...)
  local common = {}
  for _, k in ipairs(BASE_OPTIONS) do
    common[k] = args[k]
    args[k] = nil
  end
  if common.dtype ~= nil and common.dtype ~= "float32" then
    error(string.format("%s: dtype must be 'float32' (the engine's one float type), got %s", who,
      tostring(common.dtype)), 0)
  end
  if common.batch_size ~= nil and common.input_shape == nil and common.input_dim == nil then
    error(string.format("%s: batch_size needs input_shape or input_dim (or give batch_input_shape)", who), 0)
  end
  local self = setmetatable({}, cls)
  local ok, err = pcall(Layer._init, self, common)
  if not ok then error(err, 0) end
  self._args = args
  self.dtype = "float32"
  if self.init then self:init(args) end
  return self
end

local function extend_layer(parent, name)
  check_name("Layer:extend", name)
  if parent ~= Layer and not rawget(parent, "_custom") then
    raise(string.format("extend: keras.layers.%s cannot be extended; extend keras.layers.Layer "
      .. "(or a class made with extend)", tostring(parent.class_name)))
  end
  if parent == Layer then parent = CustomLayer end
  local cls = L._class(name, parent)
  cls._custom = true
  local construct = L._api(function(...) return new_layer(cls, select("#", ...), ...) end)
  setmetatable(cls, {__index = parent, __call = function(_, ...) return construct(...) end})
  -- Keras's Layer.from_config(config): cls(**config)
  cls.from_config = function(config, custom)
    if not is_plain(config) then raise(name .. ".from_config: the config must be a table") end
    local deser = keras.saving and keras.saving._deser or function(v) return v end
    local ok, l = pcall(function() return cls(deser(config, custom)) end)
    if not ok then raise(L._strip(l)) end
    return l
  end
  return cls
end

-- keras.layers.Layer:extend("MyDense") -> a class
function Layer.extend(parent, name)
  return extend_layer(parent, name)
end

-- Keras's defaults for what the class does not define
function CustomLayer.init() end
function CustomLayer.build() end
function CustomLayer.call(_, x) return x end
function CustomLayer.compute_output_shape(_, input_shape) return input_shape end
function CustomLayer:compute_mask(_, mask)
  if not self.supports_masking then return nil end
  return mask
end
function CustomLayer:get_config() return L._base_config(self) end

-- self:add_weight{name =, shape =, initializer =, regularizer =, trainable =,
-- constraint =, dtype =} or Keras's positional (name, shape, {...})
local WEIGHT_ARGS = {name = true, shape = true, initializer = true, regularizer = true, trainable = true,
                     constraint = true, dtype = true}
function CustomLayer:add_weight(a, b, c)
  local o = {}
  if is_plain(a) and b == nil then
    for k, v in pairs(a) do o[k] = v end
  else
    for k, v in pairs(c or {}) do o[k] = v end
    o.name, o.shape = a, b
    if type(b) == "table" and not is_plain(b) then o.shape = nil end
  end
  if o[1] ~= nil then o.name, o[1] = o[1], nil end
  if o[2] ~= nil then o.shape, o[2] = o[2], nil end
  local function fail(fmt, ...) raise(self:_msg("add_weight: " .. fmt, ...)) end
  if not self._building then
    raise(self:_msg("add_weight called outside build: weights are made in build(input_shape), "
      .. "which runs on the layer's first call"))
  end
  for k in pairs(o) do
    if not WEIGHT_ARGS[k] then fail("unknown argument '%s'", tostring(k)) end
  end
  if type(o.name) ~= "string" or o.name == "" then fail("name must be a non-empty string, got %s", what_is(o.name)) end
  if type(o.shape) ~= "table" then
    fail("shape of weight '%s' must be a table of sizes, got %s", o.name, what_is(o.shape))
  end
  local shape = {}
  for i = 1, #o.shape do
    local d = o.shape[i]
    if math.type(d) ~= "integer" or d < 1 then
      fail("shape of weight '%s' must hold positive integers (known when build runs), got %s at position %d",
        o.name, d == K.None and "None" or tostring(d), i)
    end
    shape[i] = d
  end
  if o.dtype ~= nil and o.dtype ~= "float32" then fail("dtype must be 'float32', got %s", tostring(o.dtype)) end
  for _, w in ipairs(self._weights) do
    if w.short == o.name then fail("the layer already has a weight named '%s'", o.name) end
  end
  local reg
  if o.regularizer ~= nil then reg = keras.regularizers.get(o.regularizer, self.class_name) end
  local con
  if o.constraint ~= nil then
    local okc, cc = pcall(keras.constraints.get, o.constraint, string.format("constraint (weight '%s')", o.name))
    if not okc then fail("%s", (L._strip(cc))) end
    con = cc
  end
  local ok, node = pcall(Layer.add_weight, self, {name = o.name, shape = shape, initializer = o.initializer,
    regularizer = reg, trainable = o.trainable ~= false, constraint = con, constraint_arg = "constraint"})
  if not ok then fail("%s", (L._strip(node))) end
  return node
end

-- symbolic scalars: a list, one tensor; a tensor with axes is averaged (as
-- tf.keras does); numbers become constants
local function loss_terms(who, losses)
  local list = (is_node(losses) or type(losses) ~= "table" or getmetatable(losses) == core.Tensor)
    and {losses} or losses
  local out = {}
  for i = 1, #list do
    local t = list[i]
    if type(t) == "number" then t = K.constant(t) end
    if not is_node(t) then
      error(string.format("%s: a loss must be a symbolic tensor (built with K ops from the model's tensors), got %s",
        who, what_is(t)), 0)
    end
    if t.ndim > 0 then t = K.mean(t) end
    out[#out + 1] = t
  end
  if #out == 0 then error(who .. ": no loss given", 0) end
  return out
end

-- self:add_loss(t): inside call, a term of this call (it counts in a model
-- when this call is part of it); elsewhere, a term of the layer itself
function CustomLayer:add_loss(losses, inputs)
  if inputs ~= nil then
    raise(self:_msg("add_loss: the inputs argument is not supported (a loss added inside call belongs to that call)"))
  end
  local terms = loss_terms(self:_msg("add_loss"), losses)
  for _, t in ipairs(terms) do
    if self._pending_losses and not self._building then
      table.insert(self._pending_losses, t)
    else
      table.insert(self._losses, function() return t end)
    end
  end
end

-- the layer's losses: its own (regularizers, add_loss outside call) and
-- those of each of its calls
function CustomLayer:get_losses()
  local out = Layer.get_losses(self)
  for _, rec in ipairs(self._inbound) do
    for _, t in ipairs(rec.losses or {}) do out[#out + 1] = t end
  end
  return out
end

-- the layer's own losses only (a model adds those of its calls)
function CustomLayer:_own_losses() return Layer.get_losses(self) end

function CustomLayer:_run_build(shapes)
  self._building = true
  local ok, err = pcall(self.build, self, shapes_for_user(shapes))
  self._building = false
  if not ok then error(err, 0) end
end

local function masks_of(x)
  if is_node(x) then return x:meta().mask end
  local out, any = {}, false
  for i, t in ipairs(x) do
    out[i] = t:meta().mask
    if out[i] ~= nil then any = true end
  end
  return any and out or nil
end

local function overrides(self, method) return self[method] ~= CustomLayer[method] end

-- call(x) or call(x, kwargs): kwargs carries what the caller passed
-- (training = ...) and the input mask, for a call that takes it
function CustomLayer:_run_call(x, kwargs)
  local call = self.call
  local info = type(call) == "function" and debug.getinfo(call, "u")
  local kw = kwargs
  if info and (info.nparams >= 3 or info.isvararg) then
    kw = {}
    for k, v in pairs(kwargs or {}) do kw[k] = v end
    if kw.mask == nil then kw.mask = masks_of(x) end
  end
  local out = call(self, x, kw)
  local outs
  if is_node(out) then
    outs = {out}
  elseif is_plain(out) and #out > 0 then
    outs = out
  else
    error(self:_msg("call must return a symbolic tensor or a list of them (built from its inputs with K ops), got %s",
      what_is(out)), 0)
  end
  for i, o in ipairs(outs) do
    if not is_node(o) then
      error(self:_msg("call returned a list whose item %d is %s, not a symbolic tensor", i, what_is(o)), 0)
    end
  end
  -- the output shape: traced; checked against compute_output_shape when the class has one
  local first_in = is_node(x) and x or x[1]
  local batch = first_in.shape[1]
  local declared
  if overrides(self, "compute_output_shape") then
    local in_shapes = is_node(x) and user_shape(x.shape) or shapes_for_user((function()
      local s = {}
      for i, t in ipairs(x) do s[i] = t.shape end
      return s
    end)())
    declared = self:compute_output_shape(in_shapes)
    if type(declared) ~= "table" then
      error(self:_msg("compute_output_shape must return a shape (a table of sizes), got %s", what_is(declared)), 0)
    end
    if #outs == 1 and (type(declared[1]) ~= "table" or declared[1] == K.None) then declared = {declared} end
    if #declared ~= #outs then
      error(self:_msg("compute_output_shape gives %d shapes but call returned %d tensors", #declared, #outs), 0)
    end
  end
  for i, o in ipairs(outs) do
    local s = o.shape
    -- (an axis the graph knows as None, a sequence length, is inferred: it is None)
    local known = #s >= 1 and s[1] == batch
    if declared then
      local d = declared[i]
      local same = type(d) == "table" and #d == #s
      if same then
        for k = 1, #s do
          local dk = d[k]
          if dk ~= K.None and dk ~= nil and s[k] >= 0 and dk ~= s[k] then same = false end
        end
      end
      if not same then
        error(self:_msg("compute_output_shape gives %s but call returned a tensor of shape %s%s",
          type(d) == "table" and shape_str(user_shape(d)) or tostring(d), shape_str(s),
          #outs > 1 and string.format(" (output %d)", i) or ""), 0)
      end
    elseif not known then
      error(self:_msg("cannot infer the output shape: call returned a tensor of shape %s %s; define "
        .. "compute_output_shape(input_shape), and return a tensor whose first axis is the batch",
        shape_str(s), "without the batch axis"), 0)
    end
  end
  return out
end

-- layers a layer made in init and used in call (self.dense = L.Dense(...)):
-- their weights are the layer's too (trained, saved, counted), after its own
local function track_sublayers(self)
  local have, subs = {}, self._sublayers or {}
  for _, w in ipairs(self._weights) do have[w] = true end
  local known = {}
  for _, l in ipairs(subs) do known[l] = true end
  local function add(v)
    if v ~= self and L.is_layer(v) and rawget(v, "_weights") and not known[v] then   -- instances, not classes
      known[v] = true
      subs[#subs + 1] = v
    end
  end
  local keys = {}
  for k in pairs(self) do if type(k) == "string" then keys[#keys + 1] = k end end
  table.sort(keys)
  for _, k in ipairs(keys) do
    local v = rawget(self, k)
    if is_plain(v) then
      for _, x in ipairs(v) do add(x) end
    else
      add(v)
    end
  end
  self._sublayers = subs
  for _, l in ipairs(subs) do
    local ws = l._all_layers and l:_weight_records() or Layer._ordered_weights(l)
    for _, w in ipairs(ws) do
      if not have[w] then
        have[w] = true
        self._weights[#self._weights + 1] = w
      end
    end
  end
end

-- the base call of a layer or model written in Lua, collecting the losses its
-- call adds (add_loss): the outputs and that list; an error is raised at the
-- user's line unless it already names one
local function call_collecting_losses(self, x, kwargs)
  self._pending_losses = {}
  local ok, out = pcall(Layer.__call_layer, self, x, kwargs)
  local pending = self._pending_losses
  self._pending_losses = nil
  if not ok then
    local msg, positioned = L._strip(out)
    if positioned then error(msg, 0) end
    raise(msg)
  end
  return out, pending
end

function CustomLayer:__call_layer(x, kwargs)
  -- Keras's default compute_mask refuses a mask the layer was not written for
  local ok_in, in_mask = pcall(masks_of, x)
  if ok_in and in_mask ~= nil and not self.supports_masking and not overrides(self, "compute_mask") then
    raise(string.format("Layer %s does not support masking, but was passed an input_mask "
      .. "(set self.supports_masking = true in init, or define compute_mask)", self.name))
  end
  local out, pending = call_collecting_losses(self, x, kwargs)
  local rec = self._inbound[#self._inbound]
  if #pending > 0 then rec.losses = pending end
  track_sublayers(self)
  -- masks: compute_mask(x, mask) when the class has one (Keras's default,
  -- when the layer supports masking: the mask passes on)
  in_mask = masks_of(rec.inputs[2] and rec.inputs or rec.inputs[1])
  if overrides(self, "compute_mask") then
    local x_arg = #rec.inputs == 1 and rec.inputs[1] or rec.inputs
    local mok, m = pcall(self.compute_mask, self, x_arg, in_mask)
    if not mok then raise(self:_msg("compute_mask: %s", (L._strip(m)))) end
    local ms = (m == nil or is_node(m)) and {m} or m
    for i, o in ipairs(rec.outputs) do o:meta().mask = ms[i] end
  end
  return out
end

-- ======================================================================
-- losses and updates of models
-- ======================================================================

local Model = M.Model

-- the layer calls reached from tensors, walking the graph (calls inside
-- nested models included), in a fixed order
local function calls_reached(outputs)
  local seen, recs, list = {}, {}, {}
  local stack = {}
  for i = #outputs, 1, -1 do stack[#stack + 1] = outputs[i] end
  while #stack > 0 do
    local n = table.remove(stack)
    if not seen[n] then
      seen[n] = true
      local m = n:meta()
      if m.layer and m.node_index then
        local rec = m.layer._inbound[m.node_index]
        if rec and not recs[rec] then
          recs[rec] = true
          list[#list + 1] = {layer = m.layer, rec = rec}
        end
      end
      local ins = n:inputs()
      for i = #ins, 1, -1 do stack[#stack + 1] = ins[i] end
    end
  end
  return list
end
M._calls_reached = calls_reached

-- a layer's own losses, nested models' layers included
local function own_losses(layer, out, seen)
  if seen[layer] then return end
  seen[layer] = true
  if layer._all_layers then
    for _, l in ipairs(layer._all_layers) do own_losses(l, out, seen) end
    return
  end
  local list = layer._own_losses and layer:_own_losses() or layer:get_losses()
  for _, t in ipairs(list) do out[#out + 1] = t end
  for _, l in ipairs(layer._sublayers or {}) do own_losses(l, out, seen) end
end

-- every loss term of the model: the layers' (regularizers, add_loss), those
-- of the layer calls that are part of the model, and model:add_loss's
function Model:get_losses()
  local out = {}
  if not self.outputs then return out end
  local seen = {}
  for _, l in ipairs(self._all_layers or {}) do own_losses(l, out, seen) end
  local any = false
  for l in pairs(seen) do
    for _, rec in ipairs(l._inbound or {}) do if rec.losses then any = true end end
  end
  if any then
    for _, c in ipairs(calls_reached(self.outputs)) do
      for _, t in ipairs(c.rec.losses or {}) do out[#out + 1] = t end
    end
  end
  for _, t in ipairs(self._added_losses or {}) do out[#out + 1] = t end
  return out
end

-- the Input layers a tensor depends on
local function inputs_of(t)
  local out = {}
  for _, c in ipairs(calls_reached({t})) do
    if c.layer.class_name == "InputLayer" then out[#out + 1] = c.rec.outputs[1] end
  end
  return out
end

-- model:add_loss(t) or model:add_loss{t1, t2}: symbolic scalars built from
-- the model's tensors, added to the training loss at the next compile
function Model:add_loss(losses)
  if not self.inputs then
    raise("add_loss: the model is not built yet (add losses built from its tensors once it has inputs)")
  end
  local ok, terms = pcall(loss_terms, "add_loss", losses)
  if not ok then raise(terms) end
  local mine = {}
  for _, x in ipairs(self.inputs) do mine[x] = true end
  for _, t in ipairs(terms) do
    for _, x in ipairs(inputs_of(t)) do
      if not mine[x] then
        raise(string.format("add_loss: the loss depends on input '%s', which is not an input of model '%s'",
          x:meta().layer.name, self.name))
      end
    end
  end
  self._added_losses = self._added_losses or {}
  for _, t in ipairs(terms) do table.insert(self._added_losses, t) end
end

-- model.updates / layer.updates: the state updates that training runs
-- besides the optimizer's: BatchNormalization's moving averages (run inside
-- its op in training mode), one per statistic and call
local Update = {}
Update.__index = Update
Update.__name = "keras.Update"
Update.__tostring = function(u)
  return string.format("<update %s: moving average, momentum %g>", u.name, u.momentum)
end

local function updates_of_call(layer, out)
  if layer.class_name ~= "BatchNormalization" then return end
  for _, k in ipairs{"moving_mean", "moving_variance"} do
    out[#out + 1] = setmetatable({kind = "moving_average", layer = layer, variable = layer[k],
      name = layer.name .. "/" .. k .. ":0", momentum = layer.momentum}, Update)
  end
end

function Layer._getters.updates(self)
  local out = {}
  if self._all_layers then
    if self.outputs then
      for _, c in ipairs(calls_reached(self.outputs)) do updates_of_call(c.layer, out) end
    end
    return out
  end
  for _ in ipairs(self._inbound) do updates_of_call(self, out) end
  return out
end

-- ======================================================================
-- subclassed models: keras.Model:extend("Net")
-- ======================================================================

local CustomModel = L._class("Model", Model)
setmetatable(CustomModel, {__index = Model})
CustomModel._subclassed = true

local function new_model(cls, n, ...)
  local who = cls.class_name
  local args = ctor_args(who, n, ...)
  local name = args.name
  args.name = nil
  if name ~= nil and type(name) ~= "string" then error(who .. ": name must be a string", 0) end
  local self = setmetatable({}, cls)
  Layer._init(self, {name = name})
  self.stop_training = false
  self._args = args
  if self.init then self:init(args) end
  return self
end

function CustomModel.init() end
function CustomModel:call()
  error(string.format("%s (%s): the class has no call(self, inputs) method", self.class_name, self.name), 0)
end

-- trace call once on symbolic inputs of these shapes (batch axis included)
function CustomModel:_trace(shapes, who)
  local multi = type(shapes[1]) == "table"
  local list = multi and shapes or {shapes}
  local ins = {}
  for i, s in ipairs(list) do
    local bs = {}
    for k, d in ipairs(s) do bs[k] = (d == -1) and K.None or d end
    bs[1] = K.None
    ins[i] = L.Input{batch_shape = bs}
  end
  self._trace_losses = {}
  local ok, out = pcall(self.call, self, multi and ins or ins[1])
  local losses = self._trace_losses
  self._trace_losses = nil
  if not ok then error(out, 0) end
  local outs = is_node(out) and {out} or out
  if not is_plain(outs) or #outs == 0 then
    error(string.format("%s: %s's call must return a symbolic tensor or a list of them, got %s", who, self.class_name,
      what_is(out)), 0)
  end
  for i, o in ipairs(outs) do
    if not is_node(o) then
      error(string.format("%s: %s's call returned a list whose item %d is %s, not a symbolic tensor", who,
        self.class_name, i, what_is(o)), 0)
    end
    -- outputs must come from a layer (a bare K op result is wrapped)
    if not o:meta().layer then
      local lam = L.Lambda(function(t) return t end)
      outs[i] = lam(o)
    end
  end
  self.inputs, self.outputs = ins, outs
  M._build_network(self, ins, outs, who)
  self._added_losses = losses   -- self:add_loss in call, on the traced tensors
end

-- self:add_loss(t) inside call: a term of the traced model, or of this call
-- when the model is called on other tensors; elsewhere model:add_loss
function CustomModel:add_loss(losses)
  if self._trace_losses or self._pending_losses then
    local ok, terms = pcall(loss_terms, "add_loss", losses)
    if not ok then raise(terms) end
    for _, t in ipairs(terms) do table.insert(self._trace_losses or self._pending_losses, t) end
    return
  end
  local ok, err = pcall(Model.add_loss, self, losses)
  if not ok then raise(L._strip(err)) end
end

function CustomModel:__call_layer(x, kwargs)
  local out, pending = call_collecting_losses(self, x, kwargs)
  if #pending > 0 then self._inbound[#self._inbound].losses = pending end
  return out
end

-- built from the first data (fit, evaluate, predict...)
function CustomModel:_ensure_built(x, who)
  if self.inputs then return end
  local list = getmetatable(x) == core.Tensor and {x} or x
  if not is_plain(list) or #list == 0 then raise(who .. ": cannot build the model from this data") end
  local shapes = {}
  for i, t in ipairs(list) do
    if getmetatable(t) ~= core.Tensor then raise(string.format("%s: cannot build the model: input %d is %s", who, i,
      what_is(t))) end
    shapes[i] = t.shape
  end
  local ok, err = pcall(self._trace, self, #shapes == 1 and shapes[1] or shapes, who)
  if not ok then self.inputs, self.outputs = nil, nil; raise(err) end
end

-- net:build(input_shape): {keras.None, 784}, or a list of shapes
function CustomModel:build(input_shape)
  if self.inputs then return end
  if type(input_shape) ~= "table" or #input_shape == 0 then
    raise("build: input_shape must be a shape (batch axis included) or a list of shapes")
  end
  local function engine(s)
    local out = {}
    for i, d in ipairs(s) do
      if d == K.None then out[i] = -1
      elseif math.type(d) == "integer" and d >= 1 then out[i] = d
      else
        raise(string.format("build: input_shape must hold positive integers or keras.None, got %s", tostring(d)))
      end
    end
    return out
  end
  local shapes
  if type(input_shape[1]) == "table" and input_shape[1] ~= K.None then
    shapes = {}
    for i, s in ipairs(input_shape) do shapes[i] = engine(s) end
  else
    shapes = engine(input_shape)
  end
  local ok, err = pcall(self._trace, self, shapes, "build")
  if not ok then self.inputs, self.outputs = nil, nil; raise(L._strip(err)) end
end

-- (traced by _run_call when first called on symbolic tensors)
function CustomModel._run_build() end

-- called on symbolic tensors: the first call traces the model; later ones
-- run call again (layers made in init are shared, as in Keras)
function CustomModel:_run_call(x, kwargs)
  if not self.inputs then
    local shapes = {}
    local list = is_node(x) and {x} or x
    for i, t in ipairs(list) do shapes[i] = t.shape end
    self:_trace(#shapes == 1 and shapes[1] or shapes, self.class_name)
  end
  return self:call(x, kwargs)
end

for _, method in ipairs{"save", "to_json", "get_config"} do
  CustomModel[method] = function(self)
    raise(string.format("%s: %s is a subclassed model (keras.Model:extend): its architecture is Lua code, "
      .. "which cannot be saved; use save_weights/load_weights and rebuild it in code", method, self.class_name))
  end
end

function Model.extend(parent, name)
  check_name("Model:extend", name)
  if parent ~= Model and not rawget(parent, "_subclassed") then
    raise(string.format("extend: %s cannot be extended; extend keras.Model (or a class made with Model:extend)",
      tostring(parent.class_name)))
  end
  if parent == Model then parent = CustomModel end
  local cls = L._class(name, parent)
  cls._subclassed = true
  cls._prefix = snake(name)
  local construct = L._api(function(...) return new_model(cls, select("#", ...), ...) end)
  setmetatable(cls, {__index = parent, __call = function(_, ...) return construct(...) end})
  cls.__tostring = Model.__tostring
  return cls
end

-- public entry points report errors at the user's line
for _, name in ipairs{"add_loss", "get_losses"} do Model[name] = L._api(Model[name]) end
CustomModel.build = L._api(CustomModel.build)

return {Layer = CustomLayer, Model = CustomModel}
