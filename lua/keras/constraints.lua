-- keras.constraints: Keras 2.2.4's weight constraints, MaxNorm(max_value = 2,
-- axis = 0), NonNeg(), UnitNorm(axis = 0), MinMaxNorm(min_value = 0,
-- max_value = 1, rate = 1, axis = 0), their aliases max_norm, non_neg,
-- unit_norm, min_max_norm (and maxnorm, nonneg, unitnorm), get, serialize,
-- deserialize. A layer's *_constraint projects its weight after every
-- optimizer update: the projection runs in C inside the training loop
-- (kr_constraint_apply, src/optim.c, from the descriptor made here); calling
-- a constraint on a tensor gives the same projection as a symbolic or
-- concrete tensor. Formulas (eps = K.epsilon(), n = the L2 norm over axis):
--   MaxNorm     w * clip(n, 0, max_value) / (eps + n)
--   NonNeg      w * (w >= 0)
--   UnitNorm    w / (eps + n)
--   MinMaxNorm  w * (rate * clip(n, min_value, max_value) + (1 - rate) * n) / (eps + n)
local K, args = ...
local util = require("keras.util")
local raise = util.raise

local C = {}

-- each class: its C kind, its config keys in Keras's order and defaults
local CLASSES = {
  MaxNorm = {kind = "max_norm", keys = {"max_value", "axis"}, default = {max_value = 2, axis = 0}},
  NonNeg = {kind = "non_neg", keys = {}, default = {}},
  UnitNorm = {kind = "unit_norm", keys = {"axis"}, default = {axis = 0}},
  MinMaxNorm = {kind = "min_max_norm", keys = {"min_value", "max_value", "rate", "axis"},
                default = {min_value = 0.0, max_value = 1.0, rate = 1.0, axis = 0}},
}
C._classes = CLASSES

local function is_axis(a) return math.type(a) == "integer" end

local function check_axis(who, axis)
  if is_axis(axis) then return axis end
  if type(axis) == "table" and #axis > 0 then
    for i, a in ipairs(axis) do
      if not is_axis(a) then raise(string.format("%s: axis[%d] must be an integer, got %s", who, i, tostring(a))) end
    end
    return axis
  end
  raise(string.format("%s: axis must be an integer or a list of integers, got %s", who, tostring(axis)))
end

local function check_value(who, name, v, lo, hi)
  if type(v) ~= "number" or v ~= v or v < lo or (hi and v > hi) or v == math.huge then
    raise(string.format("%s: %s must be a number %s, got %s", who, name,
      hi and string.format("in [%g, %g]", lo, hi) or string.format(">= %g", lo), tostring(v)))
  end
  return v
end

-- the axes of a weight of rank nd (0-based, negatives counted from the end)
local function axes_of(axis, nd, where)
  local list = is_axis(axis) and {axis} or axis
  local out = {}
  for _, a in ipairs(list) do
    local r = a < 0 and a + nd or a
    if r < 0 or r >= nd then
      raise(string.format("%s: axis %d is out of range for a weight of rank %d", where, a, nd))
    end
    out[#out + 1] = r
  end
  return out
end

local MT = {}
MT.__index = MT

-- c(w): the projection of w (a symbolic or concrete tensor)
function MT.__call(self, w)
  local cfg = self.config
  if self.class_name == "NonNeg" then return K.mul(w, K.cast(K.greater_equal(w, 0), "float32")) end
  local axes = axes_of(cfg.axis, #w.shape, self.class_name)
  local norms = K.sqrt(K.sum(K.square(w), axes, true))
  local eps = K.epsilon()
  if self.class_name == "UnitNorm" then return K.div(w, K.add(norms, eps)) end
  local desired
  if self.class_name == "MaxNorm" then
    desired = K.clip(norms, 0, cfg.max_value)
  else
    desired = K.add(K.mul(K.clip(norms, cfg.min_value, cfg.max_value), cfg.rate), K.mul(norms, 1 - cfg.rate))
  end
  return K.mul(w, K.div(desired, K.add(norms, eps)))
end

function MT:get_config()
  local out = {}
  for k, v in pairs(self.config) do out[k] = v end
  return out
end

MT.__name = "keras.constraints.Constraint"

local function make(class_name, o)
  local spec = CLASSES[class_name]
  local cfg = {}
  for _, k in ipairs(spec.keys) do
    local v = o[k]
    if v == nil or v == util.None then v = spec.default[k] end
    cfg[k] = v
  end
  if cfg.axis ~= nil then check_axis(class_name, cfg.axis) end
  if class_name == "MaxNorm" then check_value(class_name, "max_value", cfg.max_value, 0) end
  if class_name == "MinMaxNorm" then
    check_value(class_name, "min_value", cfg.min_value, 0)
    check_value(class_name, "max_value", cfg.max_value, 0)
    check_value(class_name, "rate", cfg.rate, 0, 1)
    if cfg.min_value > cfg.max_value then
      raise(string.format("MinMaxNorm: min_value %g is above max_value %g", cfg.min_value, cfg.max_value))
    end
  end
  local c = setmetatable({class_name = class_name, config = cfg}, MT)
  for k, v in pairs(cfg) do c[k] = v end   -- Keras's attributes: c.max_value, c.axis, ...
  return c
end

for name, spec in pairs(CLASSES) do
  local ps = args.spec{who = name, positional = spec.keys, tables = {axis = true}}   -- axis = {0, 1, 2}
  C[name] = function(...) return make(name, args.parse(ps, ...)) end
end
C.max_norm, C.maxnorm = C.MaxNorm, C.MaxNorm
C.non_neg, C.nonneg = C.NonNeg, C.NonNeg
C.unit_norm, C.unitnorm = C.UnitNorm, C.UnitNorm
C.min_max_norm = C.MinMaxNorm

local ALIAS = {max_norm = "MaxNorm", maxnorm = "MaxNorm", non_neg = "NonNeg", nonneg = "NonNeg",
               unit_norm = "UnitNorm", unitnorm = "UnitNorm", min_max_norm = "MinMaxNorm"}

function C.is_constraint(x) return getmetatable(x) == MT end

-- serialize(c) -> {class_name =, config =} (Keras's layout)
function C.serialize(c)
  if getmetatable(c) ~= MT then
    raise("keras.constraints.serialize: expected a constraint, got " .. tostring(c))
  end
  return {class_name = c.class_name, config = c:get_config()}
end

-- deserialize({class_name =, config =}) -> a constraint
function C.deserialize(t, who)
  who = who or "keras.constraints.deserialize"
  if type(t) ~= "table" or type(t.class_name) ~= "string" then
    raise(who .. ": expected {class_name =, config =}, got " .. tostring(t))
  end
  local name = ALIAS[t.class_name] or t.class_name
  if not CLASSES[name] then raise(string.format("%s: unknown constraint '%s'", who, t.class_name)) end
  local cfg = t.config or {}
  if type(cfg) ~= "table" then raise(who .. ": config must be a table, got " .. type(cfg)) end
  for k in pairs(cfg) do
    local known = false
    for _, key in ipairs(CLASSES[name].keys) do known = known or key == k end
    if not known then raise(string.format("%s: %s has no argument '%s'", who, name, tostring(k))) end
  end
  return make(name, cfg)
end

-- get(x): nil, a constraint, a name ("max_norm", "MaxNorm", ...) or a config
function C.get(x, who)
  who = who or "keras.constraints.get"
  if x == nil or x == util.None then return nil end
  if getmetatable(x) == MT then return x end
  if type(x) == "string" then
    local name = ALIAS[x] or x
    if CLASSES[name] then return make(name, {}) end
    raise(string.format("%s: unknown constraint '%s'", who, x))
  end
  if type(x) == "table" and x.class_name then return C.deserialize(x, who) end
  if type(x) == "function" then
    raise(who .. ": a Lua function as a constraint is not supported (the projection runs in C): use " ..
      "keras.constraints.MaxNorm, NonNeg, UnitNorm or MinMaxNorm")
  end
  raise(string.format("%s: could not interpret constraint %s", who, tostring(x)))
end

-- the C descriptor of c for a weight of the given shape (the trainer's
-- constraints list, src/lua/train.c); where names the layer and argument
function C._descriptor(c, shape, where)
  local cfg = c.config
  local d = {kind = CLASSES[c.class_name].kind, max_value = cfg.max_value, min_value = cfg.min_value,
             rate = cfg.rate}
  if cfg.axis ~= nil then d.axes = axes_of(cfg.axis, #shape, where) end
  return d
end

return C
