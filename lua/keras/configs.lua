-- keras.saving, continued: configs. The Keras config of every value a layer
-- holds (initializers, regularizers, activations, nested layers), of layers
-- (derived from the constructor's arguments by the specs each layers*.lua
-- file declares, layer_config.lua; the registry keras.saving.layers for
-- classes with a config of their own; layer:get_config, Class.from_config,
-- keras.layers.serialize/deserialize) and of models (Sequential and
-- functional), and the way back from a config to layers and models. Moved
-- verbatim from saving.lua, which loads it with the keras table and the saving
-- table and gets back the helpers its file layout and API share.
local keras, S = ...
local util = require("keras.util")
local is_plain, is_tensor, is_callable = util.is_plain, util.is_tensor, util.is_callable
local raise, clean = util.raise, util.clean
local K, L = keras.backend, keras.layers
local NULL = K.None
local json = require("keras.json")
local oset, array_length = json.set, json._array_length
local deep_equal = S._deep_equal

-- ======================================================================
-- values in configs: initializers, regularizers, activations, layers
-- ======================================================================

local INIT_KEYS = {
  VarianceScaling = {"scale", "mode", "distribution", "seed"},
  RandomNormal = {"mean", "stddev", "seed"},
  RandomUniform = {"minval", "maxval", "seed"},
  TruncatedNormal = {"mean", "stddev", "seed"},
  Orthogonal = {"gain", "seed"},
  Identity = {"gain"},
  Constant = {"value"},
  Zeros = {}, Ones = {},
}
local FLOAT_KEYS = {scale = true, mean = true, stddev = true, minval = true, maxval = true, gain = true, l1 = true,
                    l2 = true}

local function as_float(v)
  if math.type(v) == "integer" then return v + 0.0 end
  return v
end

local function ser_initializer(init)
  local keys = INIT_KEYS[init.class_name]
  if not keys then return nil end
  local cfg = json.object()
  for _, k in ipairs(keys) do
    local v = (init.config or {})[k]
    if v == nil then v = NULL end
    oset(cfg, k, FLOAT_KEYS[k] and as_float(v) or v)
  end
  return json.object("class_name", init.class_name, "config", cfg)
end


local function is_layer(x) return type(x) == "table" and L.is_layer(x) end
local function is_model(x) return is_layer(x) and x._all_layers ~= nil and (x.inputs ~= nil or x._seq ~= nil) end

local layer_entry -- forward: {class_name, config} of a layer

-- a Lua value from a layer's arguments as a Keras config value. ctx.json:
-- everything must be JSON (functions are errors); otherwise functions and
-- objects pass through (clone_model).
local function ser(v, key, ctx)
  if (type(v) == "string" or is_plain(v) and v.class_name) and type(key) == "string" and key:match("constraint$")
      and keras.constraints then
    v = keras.constraints.get(v, key)   -- a constraint's name or config is saved as Keras's config
  end
  local tv = type(v)
  if v == nil or v == NULL then return NULL end
  if tv == "number" or tv == "string" or tv == "boolean" then return v end
  if tv == "function" then
    if key == "activation" or key == "recurrent_activation" then
      for name, f in pairs(keras.activations) do
        if f == v and type(name) == "string" and name ~= "get" then return name end
      end
    end
    if ctx.json then ctx.fail("%s is a Lua function, which cannot be saved", key) end
    return v
  end
  if is_layer(v) then return layer_entry(v, ctx) end
  if is_tensor(v) then
    if ctx.json then ctx.fail("%s is a tensor, which does not belong in a config", key) end
    return v
  end
  if tv == "table" then
    local mt = getmetatable(v)
    if mt and v.class_name and v.config then
      if INIT_KEYS[v.class_name] then return ser_initializer(v) end
      if v.class_name == "L1L2" then
        return json.object("class_name", "L1L2", "config",
          json.object("l1", as_float(v.config.l1 or 0), "l2", as_float(v.config.l2 or 0)))
      end
      if keras.constraints and keras.constraints.is_constraint(v) then   -- Keras's keys, in its order
        local cfg = json.object()
        for _, k in ipairs(keras.constraints._classes[v.class_name].keys) do
          local x = v.config[k]
          oset(cfg, k, type(x) == "table" and json.array{table.unpack(x)} or x)
        end
        return json.object("class_name", v.class_name, "config", cfg)
      end
      if ctx.json then ctx.fail("%s is a custom %s, which cannot be saved", key, tostring(v.class_name)) end
      return v
    end
    if mt then
      if ctx.json then ctx.fail("%s is a %s, which cannot be saved", key, tostring(mt.__name or "object")) end
      return v
    end
    local out
    local n = array_length(v)
    if n then
      out = json.array()
      for i = 1, n do out[i] = ser(v[i], key, ctx) end
    else
      out = json.object()
      local keys, seen = {}, {}
      for _, k in ipairs(json.keys(v) or {}) do
        if v[k] ~= nil and not seen[k] then keys[#keys + 1] = k; seen[k] = true end
      end
      local rest = {}
      for k in pairs(v) do if not seen[k] then rest[#rest + 1] = k end end
      table.sort(rest, function(a, b) return tostring(a) < tostring(b) end)
      for _, k in ipairs(rest) do keys[#keys + 1] = k end
      for _, k in ipairs(keys) do
        if type(k) ~= "string" and ctx.json then ctx.fail("%s has a key that is not a string", key) end
        oset(out, k, ser(v[k], key, ctx))
      end
    end
    return out
  end
  if ctx.json then ctx.fail("%s is a %s, which cannot be saved", key, tv) end
  return v
end

-- ======================================================================
-- Keras 2.2.4's layer configs: keys in Keras's order with their defaults,
-- declared by each layers*.lua file beside its classes (layer_config.lua)
-- ======================================================================

local LC = require("keras.layer_config")
local REQ, SAME, INIT = LC.REQ, LC.SAME, LC.INIT
local SPECS = LC.specs
S._specs = SPECS

-- arguments every layer takes: they become name/trainable/batch_input_shape
local COMMON = {name = true, trainable = true, input_shape = true, input_dim = true, input_length = true,
                batch_size = true, batch_input_shape = true, dtype = true, weights = true}
-- config keys that change nothing here and are dropped when building
local IGNORED = {implementation = true, unroll = true}
-- keys that files written by tf.keras ("2.2.4-tf" and 2.x) add to Keras 2.2.4's
-- configs, accepted at their neutral value (what Keras 2.2.4 does) and refused
-- otherwise
local NEUTRAL = {time_major = false, ragged = false, groups = 1}

local function check_neutral(cls_name, config, keys)
  for _, k in ipairs(keys) do
    local v = config[k]
    if v ~= nil and v ~= NULL and v ~= NEUTRAL[k] then
      error(string.format("%s '%s': %s = %s is not supported (only %s)", cls_name, tostring(config.name), k,
        json.encode(v), tostring(NEUTRAL[k])), 0)
    end
  end
end

-- a layer's dtype as Keras 2.2.4 (a string) or tf.keras 2.x (a string, or a
-- dtype policy {class_name = "Policy", config = {name = ...}}) writes it -> the
-- string, nil for float32
local function dtype_of(cls_name, config)
  local v = config.dtype
  if is_plain(v) then
    if v.class_name ~= "Policy" or not is_plain(v.config) or type(v.config.name) ~= "string" then
      error(string.format("%s '%s': dtype = %s is not a dtype or a dtype policy", cls_name, tostring(config.name),
        json.encode(v)), 0)
    end
    if v.config.name ~= "float32" then
      error(string.format("%s '%s': the dtype policy '%s' is not supported (only float32)", cls_name,
        tostring(config.name), v.config.name), 0)
    end
    return nil
  end
  if v == NULL or v == "float32" then return nil end
  return v
end

local function default_value(d, args)
  if getmetatable(d) == SAME then return args and args[d.key] end
  if getmetatable(d) == INIT then return ser_initializer(keras.initializers.get(d.name)) end
  if type(d) == "function" then return d() end
  if type(d) == "table" and d ~= NULL then
    -- a fresh copy, arrays marked as arrays
    local function copy(t)
      if type(t) ~= "table" or t == NULL then return t end
      local c = json.array()
      for i, x in ipairs(t) do c[i] = copy(x) end
      return c
    end
    return copy(d)
  end
  return d
end

local function user_shape(shape)
  local out = json.array()
  for i, d in ipairs(shape) do out[i] = (d == -1 or d == NULL) and NULL or d end
  return out
end

-- the Keras config of a layer built by a keras.layers constructor
local function generic_config(layer, ctx, extra)
  local cls = layer.class_name
  local spec = SPECS[cls]
  local args = layer._args or {}
  local c = json.object("name", layer.name, "trainable", layer.trainable)
  local bis = (extra and extra.batch_input_shape) or layer._user_batch_input_shape or layer._batch_input_shape
  if bis then
    oset(c, "batch_input_shape", user_shape(bis))
    oset(c, "dtype", "float32")
  end
  local done = {}
  if spec then
    local norm, values = spec.norm, {}
    for _, k in ipairs(spec.keys) do
      done[k] = true
      local v = args[k]
      local d = spec.default[k]
      if v == nil and getmetatable(d) ~= SAME then
        if d == REQ then v = NULL else v = default_value(d, args) end
      end
      if v ~= nil then
        if norm[k] then v = norm[k](v) end
        v = ser(v, k, ctx)
        if type(d) == "number" and math.type(d) == "float" then v = as_float(v) end
      end
      values[k] = v
    end
    for _, k in ipairs(spec.keys) do   -- defaults that are another argument's value
      if values[k] == nil then values[k] = values[spec.default[k].key] end
      oset(c, k, values[k])
    end
  end
  local rest = {}
  for k in pairs(args) do
    if type(k) == "string" and not done[k] and not COMMON[k] then rest[#rest + 1] = k end
  end
  table.sort(rest)
  for _, k in ipairs(rest) do oset(c, k, ser(args[k], k, ctx)) end
  return c
end

-- values from a config back into constructor arguments: nulls dropped from
-- objects (kept as keras.None in arrays, as in shapes), nested layer configs
-- built into layers
local deserialize_layer   -- forward

local function is_layer_config(v)
  return is_plain(v) and type(v.class_name) == "string" and v.config ~= nil and
    (S.layers[v.class_name] ~= nil or (type(L[v.class_name]) == "table" and L[v.class_name].class_name ~= nil)
     or v.class_name == "Sequential" or v.class_name == "Model" or v.class_name == "Functional")
end

local function deser(v, custom)
  if v == NULL then return nil end
  if not is_plain(v) then return v end
  local custom_layer = custom and type(v.class_name) == "string" and v.config ~= nil
    and custom[v.class_name] ~= nil and (is_callable(custom[v.class_name]) or L.is_layer(custom[v.class_name]))
  if is_layer_config(v) or custom_layer then
    return deserialize_layer(v, custom)
  end
  local out = {}
  if array_length(v) and (json._is_array(v) or #v > 0) then
    for i = 1, #v do
      local x = v[i]
      out[i] = (x == NULL) and NULL or deser(x, custom)
    end
    return out
  end
  for k, x in pairs(v) do
    if x ~= NULL then out[k] = deser(x, custom) end
  end
  return out
end

S._deser = deser

local function generic_build(cls, config, custom, keep_null_merge)
  if not is_plain(config) then error(string.format("the config of a %s must be an object", cls.class_name), 0) end
  local spec = SPECS[cls.class_name]
  local args = {}
  if keep_null_merge and config.merge_mode == NULL then args.merge_mode = NULL end
  check_neutral(cls.class_name, config, {"time_major", "groups"})
  for k, v in pairs(config) do
    if type(k) ~= "string" then error(string.format("%s: a config key is not a string", cls.class_name), 0) end
    if k == "name" or k == "trainable" then
      if v ~= NULL then args[k] = v end
    elseif k == "batch_input_shape" then
      if v ~= NULL then args.batch_input_shape = deser(v, custom) end
    elseif k == "dtype" then
      args.dtype = dtype_of(cls.class_name, config)
    elseif v ~= NULL and not IGNORED[k] and NEUTRAL[k] == nil then   -- (null and ignored keys: nothing)
      if spec and getmetatable(spec.default[k]) == SAME then
        -- strides equal to pool_size: the default
        if not deep_equal(v, config[spec.default[k].key]) then args[k] = deser(v, custom) end
      elseif not (spec and spec.default[k] ~= nil and spec.default[k] ~= REQ
                  and deep_equal(v, default_value(spec.default[k]))) then
        args[k] = deser(v, custom)   -- (Keras's default: the constructor's own)
      end
    end
  end
  -- tf.keras 2.x writes a BatchNormalization's axis as a list ([3])
  if cls.class_name == "BatchNormalization" and is_plain(args.axis) then
    if #args.axis ~= 1 or math.type(args.axis[1]) ~= "integer" then
      error(string.format("BatchNormalization '%s': axis = %s is not supported (one axis)", tostring(config.name),
        json.encode(config.axis)), 0)
    end
    args.axis = args.axis[1]
  end
  return cls(args)
end

-- ======================================================================
-- the registry: class_name -> {config = fn(layer, ctx), build = fn(config, custom)}
-- ======================================================================

S.layers = {}

function S.register_layer(name, entry)
  if type(name) ~= "string" then raise("register_layer: the class name must be a string") end
  if not is_plain(entry) or type(entry.config) ~= "function" or type(entry.build) ~= "function" then
    raise("register_layer: expected {config = function(layer) ... end, build = function(config) ... end}")
  end
  S.layers[name] = entry
end

S.layers.InputLayer = {
  config = function(layer)
    return json.object("batch_input_shape", user_shape(layer._batch_input_shape), "dtype", layer.dtype or "float32",
      "sparse", false, "name", layer.name)
  end,
  build = function(config)
    if not is_plain(config) then error("the config of an InputLayer must be an object", 0) end
    local bis = config.batch_input_shape
    if not is_plain(bis) then error("InputLayer: batch_input_shape is missing", 0) end
    local o = {batch_input_shape = deser(bis), name = config.name ~= NULL and config.name or nil}
    o.dtype = dtype_of("InputLayer", config)
    -- tf.keras's InputLayer: ragged; a sparse or stateful input is not supported
    check_neutral("InputLayer", config, {"ragged"})
    for _, k in ipairs{"sparse", "stateful"} do
      if config[k] ~= nil and config[k] ~= NULL and config[k] ~= false then
        error(string.format("InputLayer '%s': %s = %s is not supported (only false)", tostring(config.name), k,
          json.encode(config[k])), 0)
      end
    end
    return L.InputLayer(o)
  end,
}

S.layers.Lambda = {
  config = function(layer, ctx)
    if ctx.json then
      ctx.fail("a Lambda layer holds a Lua function, which cannot be saved; save the weights (save_weights) and " ..
        "rebuild the model in code")
    end
    local c = json.object("name", layer.name, "trainable", layer.trainable)
    if layer._batch_input_shape then oset(c, "batch_input_shape", user_shape(layer._batch_input_shape)) end
    for _, k in ipairs{"function", "output_shape", "arguments", "mask"} do
      if layer._args[k] ~= nil then oset(c, k, layer._args[k]) end
    end
    return c
  end,
  build = function(config)
    if type(config["function"]) ~= "function" then
      error("Lambda layers from Keras (Python code) cannot be loaded; rebuild the model in code and use load_weights",
        0)
    end
    local o = {}
    for k, v in pairs(config) do if v ~= NULL then o[k] = v end end
    return L.Lambda(o)
  end,
}

-- Bidirectional renames the layer it wraps to forward_<name>: its config
-- keeps the name the layer was given (as Keras's self.layer); merge_mode
-- None is a value here, not a default
S.layers.Bidirectional = {
  config = function(layer, ctx)
    ctx.layer = layer
    local c = generic_config(layer, ctx)
    local inner = c.layer
    if is_plain(inner) and is_plain(inner.config) and type(inner.config.name) == "string" then
      inner.config.name = inner.config.name:gsub("^forward_", "")
    end
    if layer.merge_mode == nil then c.merge_mode = NULL end
    return c
  end,
  build = function(config, custom)
    local cls = L.Bidirectional
    if not is_plain(config) then error("the config of a Bidirectional must be an object", 0) end
    local layer = generic_build(cls, config, custom, true)
    return layer
  end,
}

local function class_of(name)
  local c = L[name]
  if type(c) == "table" and c.class_name == name then return c end
  return nil
end

local model_config_of, model_from_config   -- forward
local OURS = setmetatable({}, {__mode = "k"})   -- the get_config functions installed below

-- the config of a layer class written in Lua (Layer:extend): the base
-- config (name, trainable, batch_input_shape, dtype) merged with what the
-- class's get_config returns, as Keras's dict(base + config)
local function custom_config(layer, ctx, extra)
  local ok, own = pcall(layer.get_config, layer)
  if not ok then ctx.fail("get_config failed: %s", clean(own)) end
  if not is_plain(own) then ctx.fail("get_config must return a table, got %s", type(own)) end
  local base = L._base_config(layer)
  if not base.batch_input_shape and extra and extra.batch_input_shape then
    base.batch_input_shape, base.dtype = user_shape(extra.batch_input_shape), "float32"
  end
  local c = json.object()
  for _, k in ipairs{"name", "trainable", "batch_input_shape", "dtype"} do
    if own[k] == nil and base[k] ~= nil then oset(c, k, ser(base[k], k, ctx)) end
  end
  local keys = {}
  for k in pairs(own) do
    if type(k) ~= "string" then ctx.fail("get_config returned a table with a key that is not a string") end
    keys[#keys + 1] = k
  end
  table.sort(keys)
  for _, k in ipairs(keys) do oset(c, k, ser(own[k], k, ctx)) end
  return c
end

-- {class_name, config} of a layer (or a nested model)
function layer_entry(layer, ctx, extra)
  local cls = layer.class_name
  local entry = S.layers[cls]
  local cfg
  if layer._custom and not entry then
    local saved = ctx.layer
    ctx.layer = layer
    cfg = custom_config(layer, ctx, extra)
    ctx.layer = saved
  elseif entry then
    local saved = ctx.layer
    ctx.layer = layer
    local ok, c = pcall(entry.config, layer, ctx)
    ctx.layer = saved
    if not ok then error(c, 0) end
    cfg = c
  elseif is_model(layer) then
    cfg = model_config_of(layer, ctx)
  elseif class_of(cls) and getmetatable(layer) == class_of(cls) then
    local saved = ctx.layer
    ctx.layer = layer
    local own = rawget(class_of(cls), "get_config")
    if own and not OURS[own] then
      -- a class defined after this file, with a get_config of its own: as Keras, use it
      local ok, c = pcall(own, layer)
      if not ok then ctx.fail("get_config failed: %s", clean(c)) end
      cfg = ser(c, "config", ctx)
    else
      cfg = generic_config(layer, ctx, extra)
    end
    ctx.layer = saved
  else
    error(string.format("layer '%s' (%s) has no config: its class is not one of keras.layers; register it with " ..
      "keras.saving.register_layer('%s', {config = ..., build = ...})",
      tostring(layer.name), tostring(cls), tostring(cls)), 0)
  end
  return json.object("class_name", cls, "config", cfg)
end

function deserialize_layer(t, custom)
  if not is_plain(t) or type(t.class_name) ~= "string" then
    error("a layer must be given as {class_name = ..., config = ...}", 0)
  end
  local name = t.class_name
  local c = custom and custom[name]
  if c ~= nil then
    if type(c) == "table" and c.from_config then return c.from_config(t.config, custom) end
    if is_callable(c) then return c(t.config) end
  end
  if S.layers[name] then return S.layers[name].build(t.config, custom) end
  if name == "Sequential" or name == "Model" or name == "Network" or name == "Functional" then
    return model_from_config(t, custom)
  end
  local cls = class_of(name)
  if not cls then error(string.format("Unknown layer: %s (pass its class in custom_objects)", name), 0) end
  return generic_build(cls, t.config, custom)
end

local function new_ctx(who, json_mode)
  local ctx = {json = json_mode}
  ctx.fail = function(fmt, ...)
    local l = ctx.layer
    local prefix = l and string.format("%s: layer '%s' (%s): ", who, tostring(l.name), tostring(l.class_name))
      or (who .. ": ")
    error(prefix .. string.format(fmt, ...), 0)
  end
  return ctx
end

-- layer:get_config() / Class.from_config(config) for every class of
-- keras.layers, and for the base class (classes added later inherit them):
-- get_config returns what is saved (the classes define none of their own)
local function install_layer_methods(cls)
  cls.get_config = function(self)
    local ctx = new_ctx("get_config", false)
    if S.layers[self.class_name] then return S.layers[self.class_name].config(self, ctx) end
    ctx.layer = self
    return generic_config(self, ctx)
  end
  OURS[cls.get_config] = true
  cls.from_config = function(config, custom)
    local ok, l = pcall(deserialize_layer, {class_name = cls.class_name, config = config}, custom)
    if not ok then raise(clean(l)) end
    return l
  end
end
install_layer_methods(L.Layer)
for name, v in pairs(L) do
  if type(v) == "table" and v.class_name == name and rawget(v, "_getters") ~= nil then install_layer_methods(v) end
end

function L.serialize(layer)
  local ok, e = pcall(layer_entry, layer, new_ctx("serialize", false))
  if not ok then raise(clean(e)) end
  return e
end

-- (config, custom_objects): Keras's positional order, then options (args.lua);
-- a lone table is the config itself
local function config_args(who)
  local spec = keras._args.spec{who = who, positional = {"config", "custom_objects"},
                                tables = {config = "keyed", custom_objects = "keyed"}}
  spec.single = function() return true end
  return spec
end
local DESERIALIZE_SPEC = config_args("deserialize")

-- keras.layers.deserialize(config, custom_objects)
function L.deserialize(...)
  local o = keras._args.parse(DESERIALIZE_SPEC, ...)
  local t, custom = o.config, o.custom_objects
  local ok, l = pcall(deserialize_layer, t, custom)
  if not ok then raise(clean(l)) end
  return l
end

-- ======================================================================
-- model configs: Sequential (a list of layer configs, as Keras 2.2.4) and
-- functional (layers with inbound_nodes, input_layers, output_layers)
-- ======================================================================

-- the calls of a model: for each layer, its nodes inside this model, with
-- their indices as Keras numbers them (networks start at 1)
local function node_indices(model)
  local index = {}
  for _, layer in ipairs(model._all_layers) do
    local k = is_model(layer) and 1 or 0
    local inside = {}
    for _, c in ipairs(model._calls) do if c.layer == layer then inside[c.rec] = true end end
    for _, rec in ipairs(layer._inbound) do
      if inside[rec] then
        index[rec] = k
        k = k + 1
      end
    end
  end
  return index
end

local function tensor_ref(t, index, kwargs)
  local m = t:meta()
  local rec = m.layer._inbound[m.node_index]
  local ref = json.array{m.layer.name, index[rec] or 0, m.tensor_index - 1}
  if kwargs then ref[4] = kwargs end
  return ref
end

local function sequential_config(model, ctx)
  local list = json.array()
  for i, layer in ipairs(model._seq) do
    local extra
    if i == 1 and model.inputs and not layer._batch_input_shape and not is_model(layer) then
      extra = {batch_input_shape = model.inputs[1].shape}
    end
    list[i] = layer_entry(layer, ctx, extra)
  end
  return list
end

local function functional_config(model, ctx)
  local index = node_indices(model)
  local layers = json.array()
  for _, layer in ipairs(model._all_layers) do
    local e = layer_entry(layer, ctx)
    local nodes = json.array()
    for _, rec in ipairs(layer._inbound) do
      if index[rec] ~= nil and #rec.inputs > 0 then
        local kw = json.object()
        if rec.kwargs ~= nil then
          local sub = {}
          sub.json, sub.fail, sub.layer = ctx.json, ctx.fail, layer
          kw = ser(rec.kwargs, "call arguments", sub)
          if not json.keys(kw) then kw = json.object() end
        end
        local node = json.array()
        for i, t in ipairs(rec.inputs) do node[i] = tensor_ref(t, index, kw) end
        nodes[#nodes + 1] = node
      end
    end
    layers[#layers + 1] = json.object("name", layer.name, "class_name", e.class_name, "config", e.config,
      "inbound_nodes", nodes)
  end
  local ins, outs = json.array(), json.array()
  for i, t in ipairs(model.inputs) do ins[i] = tensor_ref(t, index) end
  for i, t in ipairs(model.outputs) do outs[i] = tensor_ref(t, index) end
  return json.object("name", model.name, "layers", layers, "input_layers", ins, "output_layers", outs)
end

function model_config_of(model, ctx)
  if model._seq then return sequential_config(model, ctx) end
  if not model.inputs then error(ctx.who .. ": the model is not built", 0) end
  return functional_config(model, ctx)
end

local function model_entry(model, ctx)
  local cls = model._seq and "Sequential" or "Model"
  return json.object("class_name", cls, "config", model_config_of(model, ctx))
end

local function build_sequential(config, custom)
  local list, name = config, nil
  if is_plain(config) and config.layers ~= nil then
    list, name = config.layers, config.name ~= NULL and config.name or nil
  end
  if not is_plain(list) then error("a Sequential config must be a list of layers", 0) end
  local layers = {}
  for i = 1, #list do layers[i] = deserialize_layer(list[i], custom) end
  layers.name = name
  return keras.models.Sequential(layers)
end

local function build_functional(config, custom)
  if not is_plain(config) or not is_plain(config.layers) then error("a Model config must have a list 'layers'", 0) end
  local created, order, pending = {}, {}, {}
  for i = 1, #config.layers do
    local ld = config.layers[i]
    if not is_plain(ld) or type(ld.name) ~= "string" then error(string.format("layers[%d] has no name", i), 0) end
    if created[ld.name] then error(string.format("two layers are named '%s'", ld.name), 0) end
    local layer = deserialize_layer({class_name = ld.class_name, config = ld.config}, custom)
    created[ld.name] = layer
    order[#order + 1] = ld.name
    local nodes = ld.inbound_nodes
    if nodes ~= nil and nodes ~= NULL and not is_plain(nodes) then
      error(string.format("layer '%s': inbound_nodes must be a list", ld.name), 0)
    end
    pending[ld.name] = {}
    for k = 1, (nodes ~= NULL and nodes and #nodes or 0) do pending[ld.name][k] = nodes[k] end
  end
  -- the output tensor (Keras's node index, tensor index) of a layer, or nil
  -- when that node is not made yet
  local function output_of(lname, nidx, tidx, who)
    local l = created[lname]
    if not l then error(string.format("%s refers to an unknown layer '%s'", who, tostring(lname)), 0) end
    if math.type(nidx) ~= "integer" or math.type(tidx) ~= "integer" or nidx < 0 or tidx < 0 then
      error(string.format("%s: bad node reference to '%s'", who, lname), 0)
    end
    local rec = l._inbound[nidx - (is_model(l) and 1 or 0) + 1]
    if not rec then return nil end
    local t = rec.outputs[tidx + 1]
    if not t then error(string.format("%s: layer '%s' has no output %d", who, lname, tidx), 0) end
    return t
  end
  -- a call argument with references to layer outputs ([name, node, tensor] or
  -- a list of them) -> the tensors; nil when one is not made yet; other values as they are
  local function is_ref(v)
    return is_plain(v) and type(v[1]) == "string" and math.type(v[2]) == "integer"
      and math.type(v[3]) == "integer" and (#v == 3 or #v == 4 and is_plain(v[4]))
  end
  local function resolve_refs(v, who)
    if is_ref(v) then return output_of(v[1], v[2], v[3], who) end
    if is_plain(v) and #v > 0 and is_ref(v[1]) then
      local out = {}
      for i = 1, #v do
        if not is_ref(v[i]) then error(string.format("%s: item %d is not a layer output reference", who, i), 0) end
        out[i] = output_of(v[i][1], v[i][2], v[i][3], who)
        if out[i] == nil then return nil end
      end
      return out
    end
    return v
  end
  local progress = true
  while progress do
    progress = false
    for _, lname in ipairs(order) do
      local queue = pending[lname]
      while #queue > 0 do
        local node = queue[1]
        if not is_plain(node) then error(string.format("layer '%s': an inbound node must be a list", lname), 0) end
        local inputs, kwargs, ready = {}, nil, true
        for i = 1, #node do
          local ref = node[i]
          if not is_plain(ref) then error(string.format("layer '%s': a bad inbound reference", lname), 0) end
          local t = output_of(ref[1], ref[2], ref[3], "layer '" .. lname .. "'")
          if not t then ready = false; break end
          inputs[i] = t
          if is_plain(ref[4]) and next(ref[4]) ~= nil then
            kwargs = deser(ref[4], custom)
            -- tf.keras 2.x: tensors given as call arguments (an RNN's
            -- initial_state, constants) are written as [layer, node, tensor]
            for k, v in pairs(kwargs) do
              local got = resolve_refs(v, "layer '" .. lname .. "': call argument " .. tostring(k))
              if got == nil then ready = false; break end
              kwargs[k] = got
            end
            if not ready then break end
          end
        end
        if not ready then break end
        if #inputs == 0 then error(string.format("layer '%s': an inbound node without inputs", lname), 0) end
        created[lname](#inputs == 1 and inputs[1] or inputs, kwargs)
        table.remove(queue, 1)
        progress = true
      end
    end
  end
  for _, lname in ipairs(order) do
    if #pending[lname] > 0 then
      error(string.format("layer '%s': its inputs are never produced (the graph in the config is broken)", lname), 0)
    end
  end
  local function tensors(list, what)
    if not is_plain(list) or #list == 0 then error(string.format("%s must be a non-empty list", what), 0) end
    local out = {}
    for i = 1, #list do
      local ref = list[i]
      if not is_plain(ref) then error(string.format("%s[%d] is not a reference", what, i), 0) end
      out[i] = output_of(ref[1], ref[2], ref[3], what)
      if not out[i] then error(string.format("%s[%d]: layer '%s' has no such node", what, i, tostring(ref[1])), 0) end
    end
    return out
  end
  local ins, outs = tensors(config.input_layers, "input_layers"), tensors(config.output_layers, "output_layers")
  local name = config.name ~= NULL and config.name or nil
  return keras.models.Model{inputs = ins, outputs = #outs == 1 and outs[1] or outs, name = name}
end

function model_from_config(t, custom)
  if not is_plain(t) then error("a model config must be {class_name = ..., config = ...}", 0) end
  if t.class_name == "Sequential" then return build_sequential(t.config, custom) end
  -- (tf.keras 2.4 and later write a functional model as "Functional")
  if t.class_name == "Model" or t.class_name == "Network" or t.class_name == "Functional" then
    return build_functional(t.config, custom)
  end
  error(string.format("not a model config: class_name is '%s' (expected Sequential or Model)",
    tostring(t.class_name)), 0)
end

-- ======================================================================

return {as_float = as_float, config_args = config_args, deser = deser, is_model = is_model,
        model_config_of = model_config_of, model_entry = model_entry, model_from_config = model_from_config,
        new_ctx = new_ctx, ser = ser}
