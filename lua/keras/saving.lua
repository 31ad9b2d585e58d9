-- keras.saving: models that outlive the process.
--   model:save(path) / keras.models.load_model(path): architecture, weights,
--     optimizer state (slots and iterations) and training configuration;
--   model:save_weights(path) / model:load_weights(path[, by_name]);
--   model:to_json() / keras.models.model_from_json(s), model:get_config(),
--     keras.models.model_from_config, keras.models.clone_model;
--   layer:get_config() / Class.from_config(config) for every keras.layers
--     class, through a registry (keras.saving.layers);
--   keras.random.get_state / set_state.
-- (The JSON codec is lua/keras/json.lua, Python's str.format
-- lua/keras/pyformat.lua, ModelCheckpoint lives in callbacks.lua, output
-- routing in init.lua.)
--
-- Formats. Both hold Keras 2.2.4's layout (docs/design.md, Saving formats): root
-- attributes keras_version, backend, model_config, training_config; the
-- group model_weights with attribute layer_names and one group per layer
-- (attribute weight_names, datasets model_weights/<layer>/<weight name>);
-- the group optimizer_weights. A path ending in .h5/.hdf5 is written as
-- HDF5 (src/io/h5.c); anything else in the native single-file format
-- (src/io/model_file.c), whose JSON text holds the attributes by group and
-- whose named tensors are the datasets. Loading tells the two apart by the
-- file's first bytes. The layout code below is written once against a small
-- store interface that both formats implement.
--
-- Configs are Keras's: a layer config is derived from the constructor's
-- arguments (layer._args) with Keras's defaults per class in Keras's key
-- order (the specs each layers*.lua file declares beside its classes,
-- layer_config.lua), so classes added in other files work without edits
-- here; classes without a spec keep their arguments by name.
local keras = ...
local util = require("keras.util")
local is_plain, is_tensor, is_callable = util.is_plain, util.is_tensor, util.is_callable
local raise = util.raise
local core, K, L = keras._core, keras.backend, keras.layers
local NULL = K.None

local S = {}
keras.saving = S

local KERAS_VERSION, BACKEND = "2.2.4", "tensorflow"

-- the JSON codec (lua/keras/json.lua) and Python's str.format
-- (lua/keras/pyformat.lua, for ModelCheckpoint's file names)
local json = require("keras.json")
S.json = json
S.pyformat = require("keras.pyformat").format
local oset, array_length = json.set, json._array_length

local clean = util.clean

local function deep_equal(a, b)
  if a == b then return true end
  if type(a) ~= "table" or type(b) ~= "table" then return false end
  if getmetatable(a) or getmetatable(b) then return false end
  for k, v in pairs(a) do if not deep_equal(v, b[k]) then return false end end
  for k in pairs(b) do if a[k] == nil then return false end end
  return true
end
S._deep_equal = deep_equal

-- (output routing, keras._write and keras.set_print, lives in init.lua)
local function warn(msg) keras._write("Warning: " .. msg .. "\n") end

-- ======================================================================
-- the random generator's state
-- ======================================================================

if keras.random then
  -- keras.random.get_state() -> a string; set_state(s) continues that stream
  function keras.random.get_state() return core.rng_get_state() end
  function keras.random.set_state(s)
    if type(s) ~= "string" then raise("keras.random.set_state: expected a string from get_state, got " .. type(s)) end
    local ok, err = pcall(core.rng_set_state, s)
    if not ok then raise("keras.random.set_state: " .. (clean(err):gsub("^bad argument #1 to '[^']*' %((.*)%)$",
      "%1"))) end
  end
end

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
     or v.class_name == "Sequential" or v.class_name == "Model")
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
  for k, v in pairs(config) do
    if type(k) ~= "string" then error(string.format("%s: a config key is not a string", cls.class_name), 0) end
    if k == "name" or k == "trainable" then
      if v ~= NULL then args[k] = v end
    elseif k == "batch_input_shape" then
      if v ~= NULL then args.batch_input_shape = deser(v, custom) end
    elseif k == "dtype" then
      if v ~= NULL and v ~= "float32" then args.dtype = v end
    elseif v ~= NULL and not IGNORED[k] then   -- (null and ignored keys: nothing)
      if spec and getmetatable(spec.default[k]) == SAME then
        -- strides equal to pool_size: the default
        if not deep_equal(v, config[spec.default[k].key]) then args[k] = deser(v, custom) end
      elseif not (spec and spec.default[k] ~= nil and spec.default[k] ~= REQ
                  and deep_equal(v, default_value(spec.default[k]))) then
        args[k] = deser(v, custom)   -- (Keras's default: the constructor's own)
      end
    end
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
    if config.dtype ~= NULL and config.dtype ~= "float32" then o.dtype = config.dtype end
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
  if name == "Sequential" or name == "Model" or name == "Network" then return model_from_config(t, custom) end
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
          if is_plain(ref[4]) and next(ref[4]) ~= nil then kwargs = deser(ref[4], custom) end
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
  if t.class_name == "Model" or t.class_name == "Network" then return build_functional(t.config, custom) end
  error(string.format("not a model config: class_name is '%s' (expected Sequential or Model)",
    tostring(t.class_name)), 0)
end

-- ======================================================================
-- the stores: one interface over the native format and HDF5
-- ======================================================================

local function join(a, b)
  if a == "" then return b end
  return a .. "/" .. b
end

local function norm_group(g) return (g:gsub("^/+", ""):gsub("/+$", "")) end

-- native writer: attributes by group in the JSON text, datasets as tensors
local NativeW = {}
NativeW.__index = NativeW

local function native_writer(path)
  return setmetatable({path = path, attrs = json.object(), ints = json.object(), names = {}, tensors = {}, seen = {}},
    NativeW)
end

function NativeW:group(g)
  g = norm_group(g)
  local a = self.attrs[g]
  if not a then
    a = json.object()
    oset(self.attrs, g, a)
  end
  return a
end
function NativeW:set_attr(g, name, v)
  if type(v) == "table" then
    local c = json.array()
    for i, x in ipairs(v) do c[i] = x end
    v = c
  end
  oset(self:group(g), name, v)
end
function NativeW:set_json_attr(g, name, t) oset(self:group(g), name, t) end
function NativeW:write(path, t)
  if self.seen[path] then error(string.format("'%s' is written twice", path), 0) end
  self.seen[path] = true
  self.names[#self.names + 1] = path
  self.tensors[#self.tensors + 1] = t
end
function NativeW:write_int(path, v) oset(self.ints, path, v) end
function NativeW:commit()
  local doc = json.object("format", "lkeras", "attrs", self.attrs, "ints", self.ints)
  core.lkm_save(self.path, json.encode(doc, {compact = true}), self.names, self.tensors)
end
function NativeW.abort(_self) end

-- native reader
local NativeR = {}
NativeR.__index = NativeR

local function bad(path, msg) error(string.format("'%s': not a valid model file: %s", path, msg), 0) end

local function native_reader(path)
  local text, tensors = core.lkm_load(path)
  local ok, doc = pcall(json.decode, text)
  if not ok then bad(path, doc) end
  if not is_plain(doc) or doc.format ~= "lkeras" then bad(path, "the JSON text is not an lkeras document") end
  if not is_plain(doc.attrs) or array_length(doc.attrs) and #doc.attrs > 0 then bad(path,
    "'attrs' must be an object") end
  for g, a in pairs(doc.attrs) do
    if type(g) ~= "string" or not is_plain(a) then bad(path, "each group's attributes must be an object") end
  end
  local ints = doc.ints == nil and {} or doc.ints
  if not is_plain(ints) then bad(path, "'ints' must be an object") end
  for k, v in pairs(ints) do
    if type(k) ~= "string" or type(v) ~= "number" then bad(path, "'ints' must map names to numbers") end
  end
  return setmetatable({path = path, attrs = doc.attrs, ints = ints, tensors = tensors}, NativeR)
end

function NativeR:attr(g, name)
  local a = self.attrs[norm_group(g)]
  local v = a and a[name]
  if v == NULL then return nil end
  return v
end
function NativeR:json_attr(g, name)
  local v = self:attr(g, name)
  if type(v) == "string" then
    local ok, t = pcall(json.decode, v)
    if not ok then bad(self.path, name .. ": " .. t) end
    return t
  end
  return v
end
function NativeR:read(path)
  local t = self.tensors[path]
  if not t then bad(self.path, string.format("no tensor '%s'", path)) end
  return t
end
function NativeR:read_number(path)
  local v = self.ints[path]
  if v ~= nil then return v end
  local t = self:read(path)
  if t:size() ~= 1 then bad(self.path, string.format("'%s' should hold one number", path)) end
  return t:reshape{1}:get(1)
end
function NativeR:exists(path)
  return self.tensors[path] ~= nil or self.ints[path] ~= nil or self.attrs[norm_group(path)] ~= nil
end
function NativeR.close(_self) end

-- HDF5 writer and reader
local H5W = {}
H5W.__index = H5W

local function h5_writer(path) return setmetatable({h = core.h5_create(path)}, H5W) end
function H5W:set_attr(g, name, v) self.h:set_attr(g == "" and "/" or g, name, v) end
function H5W:set_json_attr(g, name, t) self.h:set_attr(g == "" and "/" or g, name, json.encode(t)) end
function H5W:write(path, t) self.h:write(path, t) end
function H5W:write_int(path, v) self.h:write_int(path, v) end
function H5W:commit()
  self.h:commit()
  self.h:close()
end
function H5W:abort() self.h:close() end

local H5R = {}
H5R.__index = H5R

local function h5_reader(path) return setmetatable({h = core.h5_open(path), path = path}, H5R) end
function H5R:attr(g, name)
  g = g == "" and "/" or g
  local v = self.h:attr(g, name)
  if v == nil and (name == "layer_names" or name == "weight_names") then
    -- Keras splits attributes above 64 KiB into name0, name1, ...
    local parts, k = {}, 0
    while true do
      local p = self.h:attr(g, name .. k)
      if p == nil then break end
      for _, x in ipairs(type(p) == "table" and p or {p}) do parts[#parts + 1] = x end
      k = k + 1
    end
    if k > 0 then v = parts end
  end
  return v
end
function H5R:json_attr(g, name)
  local v = self:attr(g, name)
  if v == nil then return nil end
  if type(v) ~= "string" then bad(self.path, name .. " is not a JSON string") end
  local ok, t = pcall(json.decode, v)
  if not ok then bad(self.path, name .. ": " .. t) end
  return t
end
function H5R:read(path) return self.h:read(path) end
function H5R:read_number(path) return self.h:read_number(path) end
function H5R:exists(path) return self.h:exists(path) end
function H5R:close() self.h:close() end

local function is_h5_path(path)
  local p = path:lower()
  return p:sub(-3) == ".h5" or p:sub(-5) == ".hdf5"
end

local function open_writer(path, format)
  if format == "h5" or (format == nil and is_h5_path(path)) then return h5_writer(path) end
  return native_writer(path)
end

local HDF5_MAGIC = "\137HDF\r\n\26\n"
local LKM_MAGIC = "\137LKM\r\n\26\n"

local function open_reader(path)
  local f, err = io.open(path, "rb")
  if not f then error(string.format("'%s': cannot open (%s)", path, tostring(err):gsub("^[^:]*: ", "")), 0) end
  local head = f:read(8) or ""
  f:close()
  if head == LKM_MAGIC then return native_reader(path) end
  if head == HDF5_MAGIC then return h5_reader(path) end
  -- HDF5 allows a user block before the signature (at 512, 1024, ...)
  if is_h5_path(path) then return h5_reader(path) end
  error(string.format("'%s': not a model file (neither the lkeras format nor HDF5)", path), 0)
end

-- ======================================================================
-- the Keras layout: weights by layer, optimizer weights, configs
-- ======================================================================

local function layer_weights(layer)
  if is_model(layer) then return layer:_weight_records() end
  return L.Layer._ordered_weights(layer)
end

-- weight names, unique within the layer ("kernel_1:0" for a second "kernel:0")
local function weight_names(ws)
  local names, seen = {}, {}
  for i, w in ipairs(ws) do
    local n = w.name or (w.short and (w.short .. ":0")) or ("weight_" .. i .. ":0")
    if seen[n] then
      local base, suffix = n:match("^(.-)(:%d+)$")
      base, suffix = base or n, suffix or ""
      local k = 1
      while seen[base .. "_" .. k .. suffix] do k = k + 1 end
      n = base .. "_" .. k .. suffix
    end
    seen[n] = true
    names[i] = n
  end
  return names
end

local function save_weights_to_group(W, group, layers)
  local names = {}
  for i, l in ipairs(layers) do names[i] = l.name end
  W:set_attr(group, "layer_names", names)
  W:set_attr(group, "backend", BACKEND)
  W:set_attr(group, "keras_version", KERAS_VERSION)
  for _, layer in ipairs(layers) do
    local ws = layer_weights(layer)
    local wn = weight_names(ws)
    local g = join(group, layer.name)
    W:set_attr(g, "weight_names", wn)
    for i, w in ipairs(ws) do W:write(join(g, wn[i]), w.tensor) end
  end
end

local function string_list(v, what)
  if v == nil then return nil end
  if type(v) == "string" then return {v} end
  if type(v) ~= "table" then error(string.format("%s is not a list of names", what), 0) end
  local out = {}
  for i = 1, #v do
    if type(v[i]) ~= "string" then error(string.format("%s[%d] is not a string", what, i), 0) end
    out[i] = v[i]
  end
  return out
end

local function shape_text(s) return L._shape_str(s) end

local function same_shape(a, b)
  if #a ~= #b then return false end
  for i = 1, #a do if a[i] ~= b[i] then return false end end
  return true
end

-- the weights stored for each layer name, in file order
local function read_layer_weights(R, group)
  local names = string_list(R:attr(group, "layer_names"), "layer_names")
  if not names then error("no layer_names attribute: not a Keras weights layout", 0) end
  local out = {}
  for _, lname in ipairs(names) do
    local g = join(group, lname)
    local wn = string_list(R:attr(g, "weight_names"), "weight_names of '" .. lname .. "'") or {}
    local values = {}
    for i, n in ipairs(wn) do values[i] = R:read(join(g, n)) end
    out[#out + 1] = {name = lname, names = wn, values = values}
  end
  return out
end

local function load_weights_from_group(R, group, layers, by_name, skip_mismatch)
  local saved = read_layer_weights(R, group)
  local plan = {}
  if by_name then
    local index = {}
    for _, l in ipairs(layers) do index[l.name] = index[l.name] or l end
    for k, s in ipairs(saved) do
      local layer = index[s.name]
      if layer then
        local ws = layer_weights(layer)
        if #ws ~= #s.values then
          if skip_mismatch then
            warn(string.format('Skipping loading of weights for layer %s due to mismatch in number of weights (%d ' ..
              'vs %d).',
              layer.name, #ws, #s.values))
            goto continue
          end
          error(string.format('Layer #%d (named "%s") expects %d weight(s), but the saved weights have %d element(s).',
            k - 1, layer.name, #ws, #s.values), 0)
        end
        for i, w in ipairs(ws) do
          if not same_shape(w.tensor.shape, s.values[i].shape) then
            local msg = string.format('Layer #%d (named "%s"), weight %s has shape %s, but the saved weight has ' ..
              'shape %s.',
              k - 1, layer.name, w.name, shape_text(w.tensor.shape), shape_text(s.values[i].shape))
            if skip_mismatch then
              warn("Skipping loading of weights for layer " .. layer.name .. " due to mismatch in shape: " .. msg)
              goto continue
            end
            error(msg, 0)
          end
        end
        plan[#plan + 1] = {ws, s.values}
      end
      ::continue::
    end
  else
    local fl, fs = {}, {}
    for _, l in ipairs(layers) do if #layer_weights(l) > 0 then fl[#fl + 1] = l end end
    for _, s in ipairs(saved) do if #s.values > 0 then fs[#fs + 1] = s end end
    if #fl ~= #fs then
      error(string.format("You are trying to load a weight file containing %d layers into a model with %d layers.",
        #fs, #fl), 0)
    end
    for k, layer in ipairs(fl) do
      local s, ws = fs[k], layer_weights(layer)
      if #ws ~= #s.values then
        error(string.format('Layer #%d (named "%s" in the current model) was found to correspond to layer %s in the ' ..
          'save file. However the new layer %s expects %d weights, but the saved weights have %d elements.',
          k - 1, layer.name, s.name, layer.name, #ws, #s.values), 0)
      end
      for i, w in ipairs(ws) do
        if not same_shape(w.tensor.shape, s.values[i].shape) then
          error(string.format('Layer #%d (named "%s"), weight %s has shape %s, but the saved weight has shape %s.',
            k - 1, layer.name, w.name, shape_text(w.tensor.shape), shape_text(s.values[i].shape)), 0)
        end
      end
      plan[#plan + 1] = {ws, s.values}
    end
  end
  -- every check passed: now set them all
  for _, p in ipairs(plan) do
    for i, w in ipairs(p[1]) do w.tensor:assign(p[2][i]) end
  end
end

-- Keras's optimizer.weights: [iterations] + slots for these, slots alone for the rest
local HAS_ITERATIONS = {SGD = true, Adam = true, Adamax = true, Nadam = true}
local OPT_KEY_ORDER = {"clipnorm", "clipvalue", "lr", "momentum", "rho", "beta_1", "beta_2", "decay", "epsilon",
                       "nesterov", "amsgrad", "schedule_decay"}

local function optimizer_config(opt)
  local cfg = opt:get_config()
  local out = json.object()
  local done = {}
  for _, k in ipairs(OPT_KEY_ORDER) do
    if cfg[k] ~= nil then
      local v = cfg[k]
      if type(v) == "number" then v = as_float(v) end
      oset(out, k, v)
      done[k] = true
    end
  end
  for k, v in pairs(cfg) do if not done[k] then oset(out, k, v) end end
  return json.object("class_name", opt.class_name, "config", out)
end

local function save_optimizer(W, model)
  local opt = model.optimizer
  local cls = opt.class_name
  local slots = opt:get_slots()
  local names = {}
  if HAS_ITERATIONS[cls] then
    names[1] = cls .. "/iterations:0"
    W:write_int(join("optimizer_weights", names[1]), opt.iterations)
  end
  for i, t in ipairs(slots) do
    local n = string.format("training/%s/Variable%s:0", cls, i == 1 and "" or ("_" .. (i - 1)))
    names[#names + 1] = n
    W:write(join("optimizer_weights", n), t)
  end
  W:set_attr("optimizer_weights", "weight_names", names)
  if not HAS_ITERATIONS[cls] then W:set_attr("optimizer_weights", "lkeras_iterations", opt.iterations) end
end

local function load_optimizer(R, model)
  local names = string_list(R:attr("optimizer_weights", "weight_names"), "optimizer weight_names")
  if not names then return end
  local iterations = R:attr("optimizer_weights", "lkeras_iterations")
  local values = {}
  for _, n in ipairs(names) do
    local p = join("optimizer_weights", n)
    if n:match("iterations:%d+$") then iterations = R:read_number(p)
    else values[#values + 1] = R:read(p) end
  end
  local opt = model.optimizer
  local slots = opt:get_slots()
  local ok = #slots == #values
  for i = 1, ok and #slots or 0 do
    if not same_shape(slots[i].shape, values[i].shape) then ok = false end
  end
  if not ok then
    warn("Error in loading the saved optimizer state. As a result, your model is starting with a freshly " ..
      "initialized optimizer.")
    return
  end
  for i, t in ipairs(slots) do t:assign(values[i]) end
  if math.type(iterations) == "integer" and iterations >= 0 then opt.iterations = iterations
  elseif type(iterations) == "number" and iterations >= 0 and iterations == math.floor(iterations) then
    opt.iterations = math.tointeger(iterations) or 0
  end
end

-- the names of a compiled model's function losses and metrics
-- (a library's name for it, else the name of a variable that holds it in
-- the frames of the caller of save -- locals, then upvalues -- else a global)
local function function_name(fn, lib)
  for k, v in pairs(lib or {}) do
    if v == fn and type(k) == "string" then return k end
  end
  for pass = 1, 2 do
    for lv = 2, 60 do
      local info = debug.getinfo(lv, "Sf")
      if not info then break end
      if info.what ~= "C" and info.source:sub(1, 11) ~= "@lua/keras/" then
        local i = 1
        while true do
          local name, v
          if pass == 1 then name, v = debug.getlocal(lv, i) else name, v = debug.getupvalue(info.func, i) end
          if name == nil then break end
          if v == fn and name:sub(1, 1) ~= "(" and name ~= "" and name ~= "_ENV" then return name end
          i = i + 1
        end
      end
    end
  end
  for k, v in pairs(_G) do
    if v == fn and type(k) == "string" then return k end
  end
  return nil
end

local function metric_names_by_function(model)
  local o = model._compiled
  local names = model.output_names
  local out = {}
  local idx = 1 + (#model.outputs > 1 and #model.outputs or 0)
  local specs = o.metrics
  if not is_plain(specs) then return out end
  local per = {}
  if specs[1] == nil and next(specs) ~= nil then
    for i, n in ipairs(names) do
      local m = specs[n]
      per[i] = m == nil and {} or (is_plain(m) and m or {m})
    end
  else
    for i = 1, #names do per[i] = specs end
  end
  for i = 1, #names do
    for _, spec in ipairs(per[i]) do
      idx = idx + 1
      local full = model.metrics_names[idx]
      if type(spec) ~= "string" and full and out[spec] == nil then
        if #names > 1 then full = full:gsub("^" .. names[i]:gsub("%p", "%%%0") .. "_", "") end
        out[spec] = full
      end
    end
  end
  return out
end

local function training_config(model)
  local o = model._compiled
  local lossnames = model.loss_functions or {}
  local mnames = metric_names_by_function(model)
  local function loss_name(v, i)
    if type(v) == "string" then return v end
    return function_name(v, keras.losses) or (type(lossnames[i]) == "string" and lossnames[i]) or "custom"
  end
  local function metric_name(v)
    if type(v) == "string" then return v end
    return function_name(v, keras.metrics) or mnames[v] or "custom"
  end
  local loss
  if o.loss == nil then
    loss = NULL   -- compiled without loss: the model's own losses (add_loss), not saved
  elseif is_plain(o.loss) then
    if o.loss[1] ~= nil then
      loss = json.array()
      for i, v in ipairs(o.loss) do loss[i] = loss_name(v, i) end
    else
      loss = json.object()
      for i, n in ipairs(model.output_names) do
        if o.loss[n] ~= nil then oset(loss, n, loss_name(o.loss[n], i)) end
      end
    end
  else
    loss = loss_name(o.loss, 1)
  end
  local metrics = json.array()
  if is_plain(o.metrics) then
    if o.metrics[1] == nil and next(o.metrics) ~= nil then
      metrics = json.object()
      for _, n in ipairs(model.output_names) do
        local m = o.metrics[n]
        if m ~= nil then
          if is_plain(m) then
            local l = json.array()
            for i, x in ipairs(m) do l[i] = metric_name(x) end
            oset(metrics, n, l)
          else
            oset(metrics, n, metric_name(m))
          end
        end
      end
    else
      for i, m in ipairs(o.metrics) do metrics[i] = metric_name(m) end
    end
  end
  local lw = NULL
  if o.loss_weights ~= nil then lw = ser(o.loss_weights, "loss_weights", {json = true, fail = function(f, ...)
    error("save: loss_weights: " .. string.format(f, ...), 0) end}) end
  return json.object("optimizer_config", optimizer_config(model.optimizer), "loss", loss, "metrics", metrics,
    "sample_weight_mode", NULL, "loss_weights", lw)
end

local function compile_from(model, tc, custom)
  if not is_plain(tc) then error("training_config is not an object", 0) end
  local oc = tc.optimizer_config
  if not is_plain(oc) then error("training_config has no optimizer_config", 0) end
  local opt = keras.optimizers._lookup(deser(oc))
  local function resolve(name, lib, what)
    if type(name) ~= "string" then return deser(name) end
    if custom and custom[name] ~= nil then return custom[name] end
    local ok = pcall(lib.get, name)
    if not ok and name ~= "accuracy" and name ~= "acc" and name ~= "crossentropy" and name ~= "ce" then
      error(string.format("unknown %s '%s' (a custom %s: pass it in custom_objects, {custom_objects = {%s = fn}}, " ..
        "or load with compile = false)",
        what, name, what, name), 0)
    end
    return name
  end
  local loss = tc.loss
  if type(loss) == "string" then
    loss = resolve(loss, keras.losses, "loss")
  elseif is_plain(loss) then
    local out = {}
    for k, v in pairs(loss) do out[k] = resolve(v, keras.losses, "loss") end
    loss = out
  elseif loss == NULL then
    loss = nil
    if #model:get_losses() == 0 then
      error("the model was compiled without a loss and its model:add_loss terms are not saved: "
        .. "load it with {compile = false}, add them again and compile", 0)
    end
  else
    error("training_config has no loss", 0)
  end
  local metrics
  if is_plain(tc.metrics) then
    metrics = {}
    for k, v in pairs(tc.metrics) do
      if is_plain(v) then
        local l = {}
        for i, x in ipairs(v) do l[i] = resolve(x, keras.metrics, "metric") end
        metrics[k] = l
      else
        metrics[k] = resolve(v, keras.metrics, "metric")
      end
    end
    if next(metrics) == nil then metrics = nil end
  end
  local args = {optimizer = opt, loss = loss, metrics = metrics}
  if tc.loss_weights ~= nil and tc.loss_weights ~= NULL then args.loss_weights = deser(tc.loss_weights) end
  if tc.sample_weight_mode ~= nil
    and tc.sample_weight_mode ~= NULL then args.sample_weight_mode = tc.sample_weight_mode end
  model:compile(args)
end

-- ======================================================================
-- the API: save, load_model, save_weights, load_weights, to_json, ...
-- ======================================================================

local function install_models(M)
local Model = M.Model

-- the arguments after the path, in Keras's order, then options (args.lua):
-- f(path, true, false), f(path, {overwrite = true}); tables = the positional
-- names whose value may be a table
local function opts_of(who, positional, allowed, tables, ...)
  local spec = keras._args.spec{who = who, positional = positional, allowed = allowed, tables = tables}
  if tables and tables.custom_objects and positional[1] == "custom_objects" then
    -- a lone table that names no argument is Keras's positional custom_objects:
    -- load_model(path, {MyDense = MyDense})
    spec.single = function(t)
      for k in pairs(t) do if spec.known[k] then return false end end
      return next(t) ~= nil
    end
  end
  local o = keras._args.parse(spec, ...)
  return o
end

local function check_path(who, path)
  if type(path) ~= "string" or path == "" then
    raise(string.format("%s: path must be a non-empty string, got %s", who, type(path)))
  end
end

local function exists(path)
  local f = io.open(path, "rb")
  if f then f:close() return true end
  return false
end

local function ensure_compiled_state(model)
  if model._pending_compile and model.inputs then model:_compile(model._pending_compile, 4) end
end

local function with_store(W, fn)
  local ok, err = pcall(fn)
  if not ok then
    W:abort()
    error(err, 0)
  end
  W:commit()
end

-- model:save(path [, overwrite, include_optimizer] [, {overwrite = true, include_optimizer = true}])
function Model:save(path, ...)
  check_path("save", path)
  local o = opts_of("save", {"overwrite", "include_optimizer"}, {format = true}, nil, ...)
  if o.overwrite == false and exists(path) then raise(string.format("save: '%s' exists and overwrite is false",
    path)) end
  if not self.inputs then
    raise("save: the model is not built yet (give the first layer an input_shape, or fit it on data first)")
  end
  local ok, err = pcall(function()
    ensure_compiled_state(self)
    local ctx = new_ctx("save", true)
    local mc = model_entry(self, ctx)
    oset(mc, "keras_version", KERAS_VERSION)
    oset(mc, "backend", BACKEND)
    local tc = (o.include_optimizer ~= false and self._compiled and self.optimizer) and training_config(self) or nil
    local W = open_writer(path, o.format)
    with_store(W, function()
      W:set_attr("", "keras_version", KERAS_VERSION)
      W:set_attr("", "backend", BACKEND)
      W:set_json_attr("", "model_config", json.object("class_name", mc.class_name, "config", mc.config))
      save_weights_to_group(W, "model_weights", self.layers)
      if tc then
        W:set_json_attr("", "training_config", tc)
        save_optimizer(W, self)
      end
    end)
  end)
  if not ok then
    err = clean(err)
    if not err:find("^save:") then err = "save: " .. err end
    raise(err)
  end
end

-- keras.models.save_model(model, path [, overwrite, include_optimizer] [, opts])
function M.save_model(model, path, ...)
  if not (type(model) == "table" and model.save) then raise("save_model: expected a model") end
  local ok, err = pcall(model.save, model, path, ...)
  if not ok then raise(clean(err)) end
end

-- keras.models.load_model(path [, custom_objects, compile] [, {custom_objects = {...}, compile = true}])
function M.load_model(path, ...)
  check_path("load_model", path)
  local o = opts_of("load_model", {"custom_objects", "compile"}, {}, {custom_objects = "keyed"}, ...)
  local custom = o.custom_objects
  if custom ~= nil and not is_plain(custom) then raise("load_model: custom_objects must be a table") end
  local ok, model = pcall(function()
    local R = open_reader(path)
    local mc = R:json_attr("", "model_config")
    if mc == nil then error("No model found in config file.", 0) end
    -- building draws initial weights: leave the random stream as it was
    local state = core.rng_get_state()
    local bok, m = pcall(model_from_config, mc, custom)
    core.rng_set_state(state)
    if not bok then error(m, 0) end
    load_weights_from_group(R, "model_weights", m.layers, false)
    if o.compile ~= false then
      local tc = R:json_attr("", "training_config")
      if tc ~= nil then
        compile_from(m, tc, custom)
        load_optimizer(R, m)
      end
    end
    R:close()
    return m
  end)
  if not ok then
    local msg = clean(model)
    if not msg:find(path, 1, true) then msg = string.format("'%s': %s", path, msg) end
    raise("load_model: " .. msg)
  end
  return model
end

-- model:save_weights(path [, overwrite] [, {overwrite = true}])
function Model:save_weights(path, ...)
  check_path("save_weights", path)
  local o = opts_of("save_weights", {"overwrite"}, {format = true}, nil, ...)
  if o.overwrite == false and exists(path) then
    raise(string.format("save_weights: '%s' exists and overwrite is false", path))
  end
  local ok, err = pcall(function()
    local W = open_writer(path, o.format)
    with_store(W, function() save_weights_to_group(W, "", self.layers) end)
  end)
  if not ok then
    err = clean(err)
    if not err:find("^save") then err = "save_weights: " .. err end
    raise(err)
  end
end

-- model:load_weights(path [, by_name, skip_mismatch, reshape] [, {by_name = false, skip_mismatch = false}])
function Model:load_weights(path, ...)
  check_path("load_weights", path)
  local o = opts_of("load_weights", {"by_name", "skip_mismatch", "reshape"}, {}, nil, ...)
  if o.reshape then raise("load_weights: reshape is not supported by this version of lkeras") end
  if o.skip_mismatch and not o.by_name then
    raise("load_weights: skip_mismatch can only be used with by_name = true")
  end
  local ok, err = pcall(function()
    local R = open_reader(path)
    local group = ""
    if R:attr("", "layer_names") == nil and R:exists("model_weights") then group = "model_weights" end
    load_weights_from_group(R, group, self.layers, o.by_name, o.skip_mismatch)
    R:close()
  end)
  if not ok then
    local msg = clean(err)
    if not msg:find(path, 1, true) then msg = string.format("'%s': %s", path, msg) end
    raise("load_weights: " .. msg)
  end
end

-- model:get_config(): Keras's config (a table; functions allowed)
function Model:get_config()
  local ok, c = pcall(model_config_of, self, new_ctx("get_config", false))
  if not ok then raise(clean(c)) end
  return c
end

-- model:to_json([{indent = n}]): {"class_name": ..., "config": ..., "keras_version": ..., "backend": ...}
function Model:to_json(...)
  local o = opts_of("to_json", {"indent"}, {}, nil, ...)
  local ok, s = pcall(function()
    local e = model_entry(self, new_ctx("to_json", true))
    oset(e, "keras_version", KERAS_VERSION)
    oset(e, "backend", BACKEND)
    return json.encode(e, {indent = o.indent})
  end)
  if not ok then
    local msg = clean(s)
    if not msg:find("^to_json:") then msg = "to_json: " .. msg end
    raise(msg)
  end
  return s
end

local MODEL_FROM_CONFIG_SPEC = config_args("model_from_config")
local MODEL_FROM_JSON_SPEC = keras._args.spec{who = "model_from_json", positional = {"json_string", "custom_objects"},
                                              tables = {custom_objects = "keyed"}}
local CLONE_SPEC = keras._args.spec{who = "clone_model", positional = {"model", "input_tensors"},
                                    tables = {input_tensors = true}}
CLONE_SPEC.single = function() return true end

-- keras.models.model_from_config(config, custom_objects)
function M.model_from_config(...)
  local o = keras._args.parse(MODEL_FROM_CONFIG_SPEC, ...)
  local config, custom = o.config, o.custom_objects
  local ok, m = pcall(model_from_config, config, custom)
  if not ok then raise("model_from_config: " .. clean(m)) end
  return m
end

-- keras.models.model_from_json(s [, custom_objects])
-- keras.models.model_from_json(json_string, custom_objects)
function M.model_from_json(...)
  local o = keras._args.parse(MODEL_FROM_JSON_SPEC, ...)
  local s, custom = o.json_string, o.custom_objects
  if type(s) ~= "string" then raise("model_from_json: expected a JSON string, got " .. type(s)) end
  local ok, m = pcall(function()
    local t = json.decode(s)
    return model_from_config(t, custom)
  end)
  if not ok then raise("model_from_json: " .. clean(m)) end
  return m
end

-- custom_objects as Keras's positional argument ({MyDense = MyDense}) or by
-- keyword ({custom_objects = {MyDense = MyDense}})
local function custom_arg(who, o)
  if o == nil then return nil end
  if not is_plain(o) then raise(string.format("%s: custom_objects must be a table, got %s", who, type(o))) end
  if o.custom_objects ~= nil then
    for k in pairs(o) do
      if k ~= "custom_objects" then raise(string.format("%s: unknown argument '%s'", who, tostring(k))) end
    end
    if not is_plain(o.custom_objects) then
      raise(string.format("%s: custom_objects must be a table, got %s", who, type(o.custom_objects)))
    end
    return o.custom_objects
  end
  return o
end

Model.from_config = function(config, custom)
  custom = custom_arg("from_config", custom)
  local ok, m = pcall(model_from_config, {class_name = "Model", config = config}, custom)
  if not ok then raise("from_config: " .. clean(m)) end
  return m
end

M.Sequential.from_config = function(config, custom)
  custom = custom_arg("from_config", custom)
  local ok, m = pcall(model_from_config, {class_name = "Sequential", config = config}, custom)
  if not ok then raise("from_config: " .. clean(m)) end
  return m
end

-- keras.models.clone_model(model [, input_tensors]): the same architecture
-- with new layers and freshly initialized weights
-- keras.models.clone_model(model, input_tensors)
function M.clone_model(...)
  local o = keras._args.parse(CLONE_SPEC, ...)
  local model, input_tensors = o.model, o.input_tensors
  if not (is_model(model)) then raise("clone_model: expected a model, got " .. tostring(model)) end
  local ok, m = pcall(function()
    local c = model_entry(model, new_ctx("clone_model", false))
    -- layer classes written in Lua (Layer:extend) come back through their own class
    local classes = {}
    local function collect(m)
      for _, l in ipairs(m._all_layers or {}) do
        if l._all_layers then collect(l) elseif l._custom then classes[l.class_name] = getmetatable(l) end
      end
    end
    collect(model)
    local clone = model_from_config(c, classes)
    if input_tensors ~= nil then
      local ins = core.is_node(input_tensors) and {input_tensors} or input_tensors
      local outs = clone(#ins == 1 and ins[1] or ins)
      return M.Model{inputs = ins, outputs = outs, name = clone.name}
    end
    return clone
  end)
  if not ok then raise("clone_model: " .. clean(m)) end
  return m
end

end   -- install_models

-- keras.models is loaded after this file or before it, depending on where
-- init.lua loads "saving": install now, or when keras.models is assigned
if keras.models then
  install_models(keras.models)
else
  setmetatable(keras, {__newindex = function(t, k, v)
    rawset(t, k, v)
    if k == "models" and type(v) == "table" then
      setmetatable(t, nil)
      install_models(v)
    end
  end})
end

return S
