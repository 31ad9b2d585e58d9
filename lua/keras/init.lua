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

local K = part("backend", core)
keras.backend = K
keras.None = K.None

keras.tensor = part("tensor", core, K)
keras.activations = part("activations", K)
keras.initializers = part("initializers", core)

-- random numbers (one generator per Lua state)
local random = {}
local shape_arg = keras.tensor._shape_arg
function random.seed(n)
  if math.type(n) ~= "integer" then error("keras.random.seed: expected an integer, got " .. tostring(n), 2) end
  core.seed(n)
end
function random.random(shape) return core.random("uniform", shape_arg(shape, "keras.random.random"), 0, 1) end
random.rand = random.random
function random.uniform(shape, lo, hi) return core.random("uniform", shape_arg(shape, "keras.random.uniform"), lo or 0, hi or 1) end
function random.normal(shape, mean, std) return core.random("normal", shape_arg(shape, "keras.random.normal"), mean or 0, std or 1) end
function random.randint(lo, hi, shape)
  -- randint(n, shape): 0..n-1, like numpy's randint(n, size=shape)
  if type(hi) == "table" or hi == nil then lo, hi, shape = 0, lo, hi end
  if math.type(lo) ~= "integer" or math.type(hi) ~= "integer" then
    error("keras.random.randint: bounds must be integers", 2)
  end
  if hi <= lo then error(string.format("keras.random.randint: empty range [%d, %d)", lo, hi), 2) end
  return core.random("randint", shape_arg(shape or {1}, "keras.random.randint"), lo, hi)
end
function random.permutation(n) return core.permutation(n) end
keras.random = random

function keras.set_num_threads(n)
  if math.type(n) ~= "integer" or n < 1 then error("keras.set_num_threads: expected an integer >= 1", 2) end
  core.set_num_threads(n)
end
function keras.get_num_threads() return core.get_num_threads() end
function keras.memory()
  local used, peak = core.mem()
  return {in_use = used, peak = peak}
end

-- parts written in Lua; a part is optional only while it is being written
local function optional(name, ...)
  if package.preload["keras." .. name] then return part(name, ...) end
  return nil
end

keras.losses = optional("losses", K)
keras.metrics = optional("metrics", K, keras.losses)
keras.optimizers = optional("optimizers", core)
keras.regularizers = optional("regularizers", K)
keras.utils = optional("utils", keras)
keras.callbacks = optional("callbacks", keras)
keras.layers = optional("layers", keras)
-- layer families in files of their own add their classes to keras.layers
for _, family in ipairs{"layers_conv", "layers_rnn"} do optional(family, keras) end
optional("saving", keras)
keras.models = optional("models", keras)
keras.datasets = optional("datasets", keras)
keras.preprocessing = optional("preprocessing", keras)
if keras.models then
  keras.Sequential = keras.models.Sequential
  keras.Model = keras.models.Model
  keras.Input = keras.layers.Input
end

return keras
