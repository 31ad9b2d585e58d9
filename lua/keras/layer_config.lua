-- keras.layer_config (private): Keras 2.2.4's layer configs as data. Each
-- layers*.lua file declares the configs of the classes it defines, beside
-- them (config.add); saving.lua writes a layer's config and rebuilds a layer
-- from one by config.specs. A spec lists a class's keys in Keras's order,
-- each with its default: REQ (a required argument), NULL (None), a value,
-- initializer(name) (that initializer's config), same_as(key) (another
-- argument's value, as pooling's strides = pool_size); a class's norm maps a
-- key to how a constructor's value becomes Keras's (tuple(rank),
-- padding_pairs(rank): ints to tuples). Classes without a spec keep their
-- arguments by name. Moved here from saving.lua.
local util = require("keras.util")
local json = require("keras.json")
local NULL = util.None

local C = {NULL = NULL, specs = {}}

-- a default that is an initializer's config, made when a config is written
local INIT = {}
local function initializer(name) return setmetatable({name = name}, INIT) end

local REQ = {}   -- a required argument: no default
local function tuple(rank)   -- an int or a list -> a list of `rank` ints (Keras's normalize_tuple)
  return function(v)
    if math.type(v) == "integer" then
      local t = json.array()
      for i = 1, rank do t[i] = v end
      return t
    end
    return v
  end
end
local function padding_pairs(rank)   -- ZeroPadding/Cropping: int, (a, b) or ((a, b), (c, d))
  return function(v)
    if math.type(v) == "integer" then
      if rank == 1 then return json.array{v, v} end
      local t = json.array()
      for i = 1, rank do t[i] = json.array{v, v} end
      return t
    end
    if type(v) == "table" and rank > 1 and math.type(v[1]) == "integer" then
      local t = json.array()
      for i = 1, rank do t[i] = json.array{v[i], v[i]} end
      return t
    end
    return v
  end
end

local function defaults_of(list)
  local spec = {keys = {}, default = {}, norm = {}}
  for i = 1, #list, 2 do
    local k, d = list[i], list[i + 1]
    spec.keys[#spec.keys + 1] = k
    spec.default[k] = d
  end
  return spec
end

local CONV_TAIL = {"activation", "linear", "use_bias", true, "kernel_initializer", initializer("glorot_uniform"),
  "bias_initializer", initializer("zeros"), "kernel_regularizer", NULL, "bias_regularizer", NULL,
  "activity_regularizer", NULL, "kernel_constraint", NULL, "bias_constraint", NULL}
local function concat(...)
  local out = {}
  for _, l in ipairs{...} do for _, v in ipairs(l) do out[#out + 1] = v end end
  return out
end
-- a default that is another argument's value (pooling strides = pool_size)
local SAME = {}
local function same_as(key) return setmetatable({key = key}, SAME) end

C.REQ, C.SAME, C.INIT = REQ, SAME, INIT
C.initializer, C.same_as, C.tuple, C.padding_pairs, C.concat = initializer, same_as, tuple, padding_pairs, concat
C.CONV_TAIL = CONV_TAIL   -- the keys Dense and the convolutions end with

-- config.add({Class = spec list, ...}, {Class = {key = norm, ...}, ...})
function C.add(lists, norms)
  for name, list in pairs(lists) do
    local spec = defaults_of(list)
    spec.norm = norms and norms[name] or {}
    C.specs[name] = spec
  end
end

return C
