-- keras.saving: models that outlive the process.
--   model:save(path) / keras.models.load_model(path): architecture, weights,
--     optimizer state (slots and iterations) and training configuration;
--   model:save_weights(path) / model:load_weights(path[, by_name]);
--   model:to_json() / keras.models.model_from_json(s), model:get_config(),
--     keras.models.model_from_config, keras.models.clone_model;
--   layer:get_config() / Class.from_config(config) for every keras.layers
--     class, through a registry (keras.saving.layers);
--   keras.random.get_state / set_state.
-- (Configs of values, layers and models, and the layer registry, are in
-- lua/keras/configs.lua, loaded below; the JSON codec is lua/keras/json.lua,
-- Python's str.format lua/keras/pyformat.lua, ModelCheckpoint lives in
-- callbacks.lua, output routing in init.lua.)
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
local is_plain = util.is_plain
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
-- configs: values, layers (the registry), models -- in configs.lua, which
-- returns the helpers the file layout and the API below share
-- ======================================================================

local configs = package.preload["keras.configs"]
if not configs then error("keras: missing module keras.configs") end
local CF = configs(keras, S)
local as_float, config_args, deser, is_model = CF.as_float, CF.config_args, CF.deser, CF.is_model
local model_config_of, model_entry, model_from_config = CF.model_config_of, CF.model_entry, CF.model_from_config
local new_ctx, ser = CF.new_ctx, CF.ser

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
function NativeW:commit(done)
  local doc = json.object("format", "lkeras", "attrs", self.attrs, "ints", self.ints)
  core.lkm_save(self.path, json.encode(doc, {compact = true}), self.names, self.tensors, done)
end
function NativeW.abort(_self) end

-- native reader
local NativeR = {}
NativeR.__index = NativeR

local function bad(path, msg) error(string.format("'%s': not a valid model file: %s", path, msg), 0) end

local function native_reader(path)
  local text, tensors = core.lkm_load(path)
  local valid, at = utf8.len(text)
  if not valid then bad(path, string.format("the JSON text is not valid UTF-8 (at byte %d of it)", at)) end
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
function H5W:commit(done)
  self.h:commit(done)
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
  local nr = util.not_regular("load", path)
  if nr then error((nr:gsub("^load: ", "")), 0) end
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

local function load_weights_from_group(R, group, layers, by_name, skip_mismatch, saved)
  saved = saved or read_layer_weights(R, group)
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
    -- (tf.keras 2.x names the counter <optimizer>/iter:0)
    if n:match("iterations:%d+$") or n:match("/iter:%d+$") then iterations = R:read_number(p)
    else values[#values + 1] = R:read(p) end
  end
  -- a count that is negative, fractional or beyond int64 is a bad file, not 0
  if iterations ~= nil then
    local n = math.type(iterations) == "float" and iterations >= -0x1p63 and iterations < 0x1p63 and
              math.tointeger(iterations) or iterations
    if math.type(n) ~= "integer" or n < 0 then
      bad(R.path, string.format("the optimizer's iteration count must be a non-negative integer, got %s",
        type(iterations) == "number" and string.format("%.17g", iterations) or type(iterations)))
    end
    iterations = n
  end
  local opt = model.optimizer
  local slots = opt:get_slots()
  -- tf.keras 2.x's Adam without amsgrad keeps m and v only, where Keras 2.2.4
  -- adds a placeholder vhat per weight: those stay as they are
  local n = #slots
  if opt.class_name == "Adam" and not opt:get_config().amsgrad and #values * 3 == n * 2 then n = #values end
  local ok = n == #values
  for i = 1, ok and n or 0 do
    if not same_shape(slots[i].shape, values[i].shape) then ok = false end
  end
  if not ok then
    warn("Error in loading the saved optimizer state. As a result, your model is starting with a freshly " ..
      "initialized optimizer.")
    return
  end
  for i = 1, n do slots[i]:assign(values[i]) end
  if iterations ~= nil then opt.iterations = iterations end
end

-- the names of a compiled model's function losses and metrics
-- (a library's name for it, else the name of a variable that holds it in
-- the frames of the caller of save -- locals, then upvalues -- else a global)
local function outside_library(info) return info.what ~= "C" and info.source:sub(1, 11) ~= "@lua/keras/" end

local function function_name(fn, lib)
  for k, v in pairs(lib or {}) do
    if v == fn and type(k) == "string" then return k end
  end
  local name = util.variable_name(fn, 2, 60, outside_library)
  return name
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

-- an optimizer's config as tf.keras 2.x writes it (nulls already dropped by
-- deser) -> Keras 2.2.4's: its name and bookkeeping dropped, learning_rate (a
-- number; a schedule is refused) kept, the keys Keras 2.2.4 lacks accepted at
-- their neutral values and refused otherwise
local TF_OPTIMIZER_NEUTRAL = {centered = false, weight_decay = 0, use_ema = false}
local TF_OPTIMIZER_DROPPED = {name = true, jit_compile = true, is_legacy_optimizer = true, ema_momentum = true}
local function tf_optimizer_config(oc)
  if not is_plain(oc) or not is_plain(oc.config) then return oc end
  local cls, out = tostring(oc.class_name), {}
  local function refuse(k, v, only)
    error(string.format("optimizer %s: %s = %s is not supported (only %s)", cls, k, tostring(v), only), 0)
  end
  for k, v in pairs(oc.config) do
    if TF_OPTIMIZER_DROPPED[k] then   -- (tf.keras's bookkeeping)
      out[k] = nil
    elseif k == "learning_rate" and is_plain(v) then
      error(string.format("optimizer %s: learning_rate is a schedule (%s), which is not supported", cls,
        tostring(v.class_name)), 0)
    elseif k == "momentum" and cls:lower() == "rmsprop" then   -- tf.keras's RMSprop has a momentum
      if v ~= 0 then refuse(k, v, "0") end
    elseif TF_OPTIMIZER_NEUTRAL[k] ~= nil then
      if v ~= TF_OPTIMIZER_NEUTRAL[k] then refuse(k, v, tostring(TF_OPTIMIZER_NEUTRAL[k])) end
    elseif k == "global_clipnorm" or k == "ema_overwrite_frequency" then
      refuse(k, v, "null")
    else
      out[k] = v
    end
  end
  return {class_name = oc.class_name, config = out}
end

-- a loss or metric object as tf.keras 2.x writes it ({class_name =
-- "BinaryCrossentropy", config = {...}}, a MeanMetricWrapper) -> Keras's name
-- of its function, when its options are Keras 2.2.4's; others as they are
local TF_LOSSES = {BinaryCrossentropy = "binary_crossentropy", CategoricalCrossentropy = "categorical_crossentropy",
  SparseCategoricalCrossentropy = "sparse_categorical_crossentropy", MeanSquaredError = "mean_squared_error",
  MeanAbsoluteError = "mean_absolute_error", MeanAbsolutePercentageError = "mean_absolute_percentage_error",
  MeanSquaredLogarithmicError = "mean_squared_logarithmic_error", Hinge = "hinge", SquaredHinge = "squared_hinge",
  CategoricalHinge = "categorical_hinge", LogCosh = "logcosh", KLDivergence = "kullback_leibler_divergence",
  Poisson = "poisson", CosineSimilarity = "cosine_proximity"}
local function tf_loss_or_metric(v, what)
  if not is_plain(v) or type(v.class_name) ~= "string" or not is_plain(v.config) then return v end
  local cfg = v.config
  if v.class_name == "MeanMetricWrapper" and type(cfg.fn) == "string" then return cfg.fn end
  local name = TF_LOSSES[v.class_name]
  if not name then return v end
  local function refuse(k)
    error(string.format("%s %s: %s = %s is not supported", what, v.class_name, k, json.encode(cfg[k])), 0)
  end
  if cfg.from_logits ~= nil and cfg.from_logits ~= false then refuse("from_logits") end
  if cfg.label_smoothing ~= nil and cfg.label_smoothing ~= 0 then refuse("label_smoothing") end
  if cfg.reduction ~= nil and cfg.reduction ~= "auto" and cfg.reduction ~= "sum_over_batch_size" then
    refuse("reduction")
  end
  if v.class_name == "CosineSimilarity" and cfg.axis ~= nil and cfg.axis ~= -1 then refuse("axis") end
  return name
end

local function compile_from(model, tc, custom)
  if not is_plain(tc) then error("training_config is not an object", 0) end
  local oc = tc.optimizer_config
  if not is_plain(oc) then error("training_config has no optimizer_config", 0) end
  local opt = keras.optimizers._lookup(tf_optimizer_config(deser(oc)))
  local function resolve(name, lib, what)
    name = tf_loss_or_metric(name, what)
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
  local loss = tf_loss_or_metric(tc.loss, "loss")
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
      v = tf_loss_or_metric(v, "metric")
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

local function exists(path)   -- a stat: a FIFO there cannot hang it
  return core.file_kind(path) ~= nil
end

local function ensure_compiled_state(model)
  if model._pending_compile and model.inputs then model:_compile(model._pending_compile, 4) end
end

-- done.committed is set (from C) the moment the file is in place
local function with_store(W, fn, done)
  local ok, err = pcall(fn)
  if not ok then
    W:abort()
    error(err, 0)
  end
  W:commit(done)
end

-- an error after the file was committed (a Ctrl-C's "interrupted!" landing
-- on the save's last instructions) is not the save's: it passes unchanged
local function after_commit(done, err)
  if done.committed then raise(clean(err)) end
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
  local done = {}
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
    end, done)
  end)
  if not ok then
    after_commit(done, err)
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
    -- the file's weights first (each checked against its stored bytes and
    -- the memory budget as it is read): building the model may then
    -- allocate no more bytes of weights than the file holds
    local saved = read_layer_weights(R, "model_weights")
    local bytes = 0
    for _, s in ipairs(saved) do
      for _, t in ipairs(s.values) do bytes = bytes + 4 * t:size() end
    end
    -- building draws initial weights: leave the random stream as it was
    local state = core.rng_get_state()
    keras._weight_budget = {left = bytes, path = path}
    local bok, m = pcall(model_from_config, mc, custom)
    keras._weight_budget = nil
    core.rng_set_state(state)
    if not bok then error(m, 0) end
    load_weights_from_group(R, "model_weights", m.layers, false, nil, saved)
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
  local done = {}
  local ok, err = pcall(function()
    local W = open_writer(path, o.format)
    with_store(W, function() save_weights_to_group(W, "", self.layers) end, done)
  end)
  if not ok then
    after_commit(done, err)
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
