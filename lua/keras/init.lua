-- keras: the module table. luaopen_keras (src/lua/module.c) runs this file
-- with the C core; it loads the Lua half of the library (package.preload
-- holds every lua/keras/*.lua compiled into the binary) and assembles the
-- Keras namespaces.
local core = ...

local keras = {__version = "0.1.0", _core = core}

local function part(name, ...)
  local src = package.preload["keras." .. name]
  if not src then error("keras: missing module keras." .. name) end
  return src(...)
end

-- the private helpers (keras.util): loaded first, and left in package.loaded
-- so that every part reaches them with require "keras.util"
local util = part("util", core)
package.loaded["keras.util"] = util
local raise, is_callable = util.raise, util.is_callable

local K = part("backend", core)
keras.backend = K
keras.None = K.None
keras._args = part("args", keras)   -- the call forms of docs/signatures.md

keras.tensor = part("tensor", core, K)
keras.activations = part("activations", K)
keras.initializers = part("initializers", core, keras._args)

-- random numbers (one generator per Lua state)
local random = {}
local shape_arg = keras.tensor._shape_arg
function random.seed(n)
  if math.type(n) ~= "integer" then raise("keras.random.seed: expected an integer, got " .. tostring(n)) end
  core.seed(n)
end
function random.random(shape) return core.random("uniform", shape_arg(shape, "keras.random.random"), 0, 1) end
random.rand = random.random
function random.uniform(shape, lo, hi)
  lo, hi = lo or 0, hi or 1
  util.check_random("keras.random.uniform", "uniform", lo, hi, "low", "high")
  return core.random("uniform", shape_arg(shape, "keras.random.uniform"), lo, hi)
end
function random.normal(shape, mean, std)
  mean, std = mean or 0, std or 1
  util.check_random("keras.random.normal", "normal", mean, std, "mean", "std")
  return core.random("normal", shape_arg(shape, "keras.random.normal"), mean, std)
end
function random.randint(lo, hi, shape)
  -- randint(n, shape): 0..n-1, like numpy's randint(n, size=shape)
  if type(hi) == "table" or hi == nil then lo, hi, shape = 0, lo, hi end
  if math.type(lo) ~= "integer" or math.type(hi) ~= "integer" then
    raise("keras.random.randint: bounds must be integers")
  end
  if hi <= lo then raise(string.format("keras.random.randint: empty range [%d, %d)", lo, hi)) end
  return core.random("randint", shape_arg(shape or {1}, "keras.random.randint"), lo, hi)
end
function random.permutation(n) return core.permutation(n) end
keras.random = random

-- ---- output: everything the library prints goes through keras._write ----

local writer, writer_dynamic

-- keras._write(s): s (no newline added) through the routed function; by
-- default io.write then io.flush, looked up at each call
function keras._write(s)
  if writer then return writer(s) end
  io.write(s)
  io.flush()
end

-- keras._print(...): as print, through keras._write
function keras._print(...)
  local parts = {}
  for i = 1, select("#", ...) do parts[i] = tostring((select(i, ...))) end
  keras._write(table.concat(parts, "\t") .. "\n")
end

-- whether the progress bar may redraw in place: stdout is a terminal, or
-- set_print was told so
function keras._output_dynamic()
  if writer then return writer_dynamic == true end
  return core.isatty(io.stdout)
end

-- keras.set_print(fn [, {dynamic = false}]): every string the library
-- prints (progress bars, summaries, Epoch lines, callbacks' messages) goes to
-- fn(s) instead of stdout; nil restores stdout. A C host can pass a
-- lua_CFunction. dynamic = true lets the progress bar redraw in place.
function keras.set_print(fn, opts)
  if fn ~= nil and not is_callable(fn) then
    raise("keras.set_print: expected a function or nil, got " .. type(fn))
  end
  if opts ~= nil and (type(opts) ~= "table" or getmetatable(opts) ~= nil) then
    raise("keras.set_print: options must be a table")
  end
  writer = fn
  writer_dynamic = opts and opts.dynamic or false
end

function keras.set_num_threads(n)
  if math.type(n) ~= "integer" or n < 1 then raise("keras.set_num_threads: expected an integer >= 1") end
  core.set_num_threads(n)
end
function keras.get_num_threads() return core.get_num_threads() end
function keras.memory()
  local used, peak, allocs = core.mem()
  return {in_use = used, peak = peak, allocs = allocs}
end

-- parts written in Lua; a part is optional only while it is being written
local function optional(name, ...)
  if package.preload["keras." .. name] then return part(name, ...) end
  return nil
end

keras.losses = optional("losses", K)
keras.metrics = optional("metrics", K, keras.losses)
keras.optimizers = optional("optimizers", core, keras._args)
keras.regularizers = optional("regularizers", K, keras._args)
keras.constraints = optional("constraints", K, keras._args)
keras.utils = optional("utils", keras)
keras.callbacks = optional("callbacks", keras)
keras.layers = optional("layers", keras)
-- layer families in files of their own add their classes to keras.layers
local FAMILIES = {"layers_noise", "layers_merge", "layers_conv", "layers_rnn", "layers_rnn_lua", "layers_wrappers",
                  "layers_convlstm"}
for _, family in ipairs(FAMILIES) do
  optional(family, keras)
end
keras.models = optional("models", keras)
if keras.models then optional("plot", keras) end   -- keras.utils.plot_model, model_to_dot, plot_history
optional("saving", keras)   -- adds save/load to models, ModelCheckpoint to callbacks
optional("custom", keras)   -- Layer:extend, Model:extend, model:add_loss
keras.datasets = optional("datasets", keras)
if keras.callbacks then keras.distributed = optional("distributed", keras) end   -- data-parallel over MPI
keras.preprocessing = optional("preprocessing", keras)
if keras.models then optional("generators", keras) end   -- fit_generator & co, Sequence, TimeseriesGenerator
if keras.preprocessing and keras.utils and keras.utils.Sequence then
  keras.preprocessing.image = optional("image", keras)   -- load_img & co, ImageDataGenerator
end
if keras.models then
  keras.Sequential = keras.models.Sequential
  keras.Model = keras.models.Model
  keras.Input = keras.layers.Input
end

return keras
