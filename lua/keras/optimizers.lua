-- keras.optimizers: SGD, RMSprop, Adagrad, Adadelta, Adam, Adamax, Nadam with
-- Keras 2.2.4's arguments, defaults and get_config. Each object wraps a C
-- optimizer (core.optimizer); the update rules run in C. Hyperparameters
-- read and write through: opt.lr (a keras.Variable: K.get_value(opt.lr),
-- K.set_value(opt.lr, 0.001)), opt.lr = 0.001, opt.iterations.
local core, args = ...
local raise = require("keras.util").raise

local O = {}

local EPSILON = 1e-7   -- K.epsilon(): what epsilon=None becomes

-- kinds of check
local function is_finite(v) return type(v) == "number" and v == v and v > -math.huge and v < math.huge end

local function show(v)
  if type(v) == "number" or type(v) == "boolean" then return tostring(v) end
  if type(v) == "string" then return string.format("%q", v) end
  return type(v)
end

local checks = {
  nonneg = {"a non-negative number", function(v) return is_finite(v) and v >= 0 end},
  positive = {"a positive number", function(v) return is_finite(v) and v > 0 end},
  unit = {"a number in [0, 1]", function(v) return is_finite(v) and v >= 0 and v <= 1 end},
  unit_open = {"a number in [0, 1)", function(v) return is_finite(v) and v >= 0 and v < 1 end},
  bool = {"a boolean", function(v) return type(v) == "boolean" end},
}

-- what each argument must be (epsilon > 0: the C side reads epsilon <= 0 as
-- "use the default")
local kind_of_arg = {
  lr = "nonneg", momentum = "nonneg", decay = "nonneg", rho = "unit", epsilon = "positive",
  beta_1 = "unit_open", beta_2 = "unit_open", schedule_decay = "nonneg",
  clipnorm = "nonneg", clipvalue = "nonneg", nesterov = "bool", amsgrad = "bool",
}

local function check(class, name, v)
  local c = checks[kind_of_arg[name]]
  if not c[2](v) then
    raise(string.format("%s: %s must be %s, got %s", class, name, c[1], show(v)))
  end
  return v
end

-- each class: C kind, positional order (Keras's), defaults, get_config order
local classes = {
  SGD = {kind = "sgd", args = {"lr", "momentum", "decay", "nesterov"},
         defaults = {lr = 0.01, momentum = 0.0, decay = 0.0, nesterov = false},
         config = {"lr", "momentum", "decay", "nesterov"}},
  RMSprop = {kind = "rmsprop", args = {"lr", "rho", "epsilon", "decay"},
             defaults = {lr = 0.001, rho = 0.9, epsilon = EPSILON, decay = 0.0},
             config = {"lr", "rho", "decay", "epsilon"}},
  Adagrad = {kind = "adagrad", args = {"lr", "epsilon", "decay"},
             defaults = {lr = 0.01, epsilon = EPSILON, decay = 0.0},
             config = {"lr", "decay", "epsilon"}},
  Adadelta = {kind = "adadelta", args = {"lr", "rho", "epsilon", "decay"},
              defaults = {lr = 1.0, rho = 0.95, epsilon = EPSILON, decay = 0.0},
              config = {"lr", "rho", "decay", "epsilon"}},
  Adam = {kind = "adam", args = {"lr", "beta_1", "beta_2", "epsilon", "decay", "amsgrad"},
          defaults = {lr = 0.001, beta_1 = 0.9, beta_2 = 0.999, epsilon = EPSILON, decay = 0.0, amsgrad = false},
          config = {"lr", "beta_1", "beta_2", "decay", "epsilon", "amsgrad"}},
  Adamax = {kind = "adamax", args = {"lr", "beta_1", "beta_2", "epsilon", "decay"},
            defaults = {lr = 0.002, beta_1 = 0.9, beta_2 = 0.999, epsilon = EPSILON, decay = 0.0},
            config = {"lr", "beta_1", "beta_2", "decay", "epsilon"}},
  -- Keras 2.2.4's Nadam has no decay
  Nadam = {kind = "nadam", args = {"lr", "beta_1", "beta_2", "epsilon", "schedule_decay"},
           defaults = {lr = 0.002, beta_1 = 0.9, beta_2 = 0.999, epsilon = EPSILON, schedule_decay = 0.004},
           config = {"lr", "beta_1", "beta_2", "epsilon", "schedule_decay"}},
}
local class_order = {"SGD", "RMSprop", "Adagrad", "Adadelta", "Adam", "Adamax", "Nadam"}
for name, c in pairs(classes) do
  c.name = name
  c.has = {clipnorm = true, clipvalue = true}
  for _, a in ipairs(c.args) do c.has[a] = true end
  c.spec = args.spec{who = name, positional = c.args,
                     allowed = {clipnorm = true, clipvalue = true, learning_rate = true},
                     twice = "got multiple values for argument '%s'",
                     too_many = "takes at most %d positional arguments (%s), got %d"}
end

-- ---- hyperparameter variables ----

-- The hyperparameters Keras keeps as variables (lr, momentum, decay, rho,
-- beta_1, beta_2) are keras.Variable objects: opt.lr is the same object each
-- time; K.get_value(opt.lr) reads it and K.set_value(opt.lr, v) (or opt.lr = v)
-- writes it into the C optimizer, which reads it at its next step. Arithmetic
-- and comparisons with numbers give numbers (opt.lr * 0.5, opt.lr < 1e-3).
local VARIABLES = {lr = true, momentum = true, decay = true, rho = true, beta_1 = true, beta_2 = true}

local Variable = {__name = "keras.Variable"}

local function var_value(v)
  if getmetatable(v) == Variable then return rawget(v, "_opt")._ud:get(rawget(v, "_key")) end
  return v
end

-- a number, or a tensor of one element
local function plain_number(v, who)
  if type(v) == "number" then return v end
  if getmetatable(v) == Variable then return var_value(v) end
  if getmetatable(v) == core.Tensor and v:size() == 1 then return v:reshape{1}:get(1) end
  raise(string.format("%s: expected a number, got %s", who, getmetatable(v) == core.Tensor
    and "a tensor of " .. v:size() .. " elements" or type(v)))
end

Variable.__get_value = var_value
Variable.__set_value = function(v, x)
  local opt, k = rawget(v, "_opt"), rawget(v, "_key")
  local c = rawget(opt, "_class")
  x = plain_number(x, "K.set_value (" .. c.name .. "." .. k .. ")")
  check(c.name, k, x)
  rawget(opt, "_ud"):set(k, x)
end
Variable.__index = function(v, k)
  if k == "name" then return rawget(v, "_key") end
  return nil
end
Variable.__newindex = function() raise("keras.Variable: set its value with K.set_value") end
Variable.__tostring = function(v) return tostring(var_value(v)) end
Variable.__concat = function(a, b) return tostring(a) .. tostring(b) end
for _, mm in ipairs{"add", "sub", "mul", "div", "mod", "pow", "idiv"} do
  local f = ({add = function(a, b) return a + b end, sub = function(a, b) return a - b end,
             mul = function(a, b) return a * b end, div = function(a, b) return a / b end,
             mod = function(a, b) return a % b end, pow = function(a, b) return a ^ b end,
             idiv = function(a, b) return a // b end})[mm]
  Variable["__" .. mm] = function(a, b)
    a, b = var_value(a), var_value(b)
    if type(a) ~= "number" or type(b) ~= "number" then
      raise(string.format("keras.Variable: cannot %s a %s and a %s (use K.get_value)", mm, type(a), type(b)))
    end
    return f(a, b)
  end
end
Variable.__unm = function(a) return -var_value(a) end
Variable.__lt = function(a, b) return var_value(a) < var_value(b) end
Variable.__le = function(a, b) return var_value(a) <= var_value(b) end
Variable.__eq = function(a, b) return rawequal(a, b) end

O.Variable = Variable
function O.is_variable(x) return getmetatable(x) == Variable end

-- ---- the optimizer object ----

local methods = {}
local Optimizer = {__name = "keras.Optimizer"}

-- fields kept in Lua (the C optimizer has no setter for them)
local BOOLS = {nesterov = true, amsgrad = true}

-- the plain value of a hyperparameter (a number, a boolean or nil)
local function value(self, k)
  local c = rawget(self, "_class")
  if k == "iterations" then return rawget(self, "_ud"):get("iterations") end
  if type(k) == "string" and c.has[k] then
    if BOOLS[k] then return rawget(self, "_bools")[k] end
    if (k == "clipnorm" or k == "clipvalue") and not rawget(self, "_clip")[k] then return nil end
    return rawget(self, "_ud"):get(k)
  end
  return nil
end

Optimizer.__index = function(self, k)
  local m = methods[k]
  if m then return m end
  if k == "learning_rate" then k = "lr" end
  local c = rawget(self, "_class")
  if type(k) == "string" and VARIABLES[k] and c.has[k] then
    local vars = rawget(self, "_vars")
    local v = vars[k]
    if not v then
      v = setmetatable({_opt = self, _key = k}, Variable)
      vars[k] = v
    end
    return v
  end
  return value(self, k)
end

Optimizer.__newindex = function(self, k, v)
  if k == "learning_rate" then k = "lr" end
  local c = rawget(self, "_class")
  if k == "iterations" then
    if math.type(v) ~= "integer" or v < 0 then
      raise(string.format("%s: iterations must be an integer >= 0, got %s", c.name, show(v)))
    end
    rawget(self, "_ud"):set("iterations", v)
    return
  end
  if type(k) == "string" and c.has[k] then
    if BOOLS[k] then
      raise(string.format("%s: %s is fixed when the optimizer is created", c.name, k))
    end
    if (k == "clipnorm" or k == "clipvalue") and v == nil then
      rawget(self, "_clip")[k] = nil
      rawget(self, "_ud"):set(k, 0)
      return
    end
    if VARIABLES[k] and (getmetatable(v) == Variable or getmetatable(v) == core.Tensor) then
      v = plain_number(v, c.name .. ": " .. k)
    end
    check(c.name, k, v)
    if k == "clipnorm" or k == "clipvalue" then rawget(self, "_clip")[k] = true end
    rawget(self, "_ud"):set(k, v)
    return
  end
  rawset(self, k, v)
end

Optimizer.__tostring = function(self)
  local c = rawget(self, "_class")
  local parts = {}
  for _, k in ipairs(c.config) do parts[#parts + 1] = k .. "=" .. tostring(value(self, k)) end
  return string.format("%s(%s)", c.name, table.concat(parts, ", "))
end

-- Keras's get_config: the hyperparameters by their Keras names, plus
-- clipnorm/clipvalue when they were given
function methods.get_config(self)
  local c = rawget(self, "_class")
  local cfg = {}
  for _, k in ipairs(c.config) do cfg[k] = value(self, k) end
  for _, k in ipairs{"clipnorm", "clipvalue"} do
    if rawget(self, "_clip")[k] then cfg[k] = value(self, k) end
  end
  return cfg
end

-- the state tensors (momenta, accumulators) in creation order, for saving
function methods.get_slots(self) return rawget(self, "_ud"):slots() end

function O.is_optimizer(x) return getmetatable(x) == Optimizer end

-- ---- constructors: both call forms ----

-- Keras's positional order, then options, or one table (args.lua), in
-- Python's words: SGD(0.01, 0.9, {nesterov = true}), SGD{0.01, momentum = 0.9}
local function construct(c, ...)
  local named = args.parse(c.spec, ...)
  local cfg = {}
  for k, v in pairs(named) do
    local key = k == "learning_rate" and "lr" or k
    if cfg[key] ~= nil then
      raise(string.format("%s: got both lr and learning_rate", c.name))
    end
    cfg[key] = v
  end

  local clip = {}
  for k, v in pairs(cfg) do
    check(c.name, k, v)
    if k == "clipnorm" or k == "clipvalue" then clip[k] = true end
  end
  for k, v in pairs(c.defaults) do
    if cfg[k] == nil then cfg[k] = v end
  end

  local spec = {kind = c.kind}
  for k, v in pairs(cfg) do spec[k] = v end
  local ud = core.optimizer(spec)
  local bools = {nesterov = cfg.nesterov, amsgrad = cfg.amsgrad}
  return setmetatable({_ud = ud, _class = c, _clip = clip, _bools = bools, _vars = {}, class_name = c.name},
    Optimizer)
end

for _, name in ipairs(class_order) do
  local c = classes[name]
  O[name] = function(...)
    local opt = construct(c, ...)
    return opt
  end
  O[name:lower()] = O[name]   -- keras.optimizers.sgd = SGD, ...
end

-- ---- get / serialize / deserialize ----

local by_lower = {}
for _, name in ipairs(class_order) do by_lower[name:lower()] = name end

function O.serialize(opt)
  return {class_name = opt.class_name, config = opt:get_config()}
end

-- {class_name = "SGD", config = {...}} -> optimizer
function O.deserialize(t)
  local cn = type(t) == "table" and t.class_name
  local name = type(cn) == "string" and by_lower[cn:lower()]
  if not name then raise(string.format("unknown optimizer '%s'", tostring(cn))) end
  local opt = construct(classes[name], t.config or {})
  return opt
end

-- O._lookup(name | optimizer | {class_name=, config=}) -> optimizer; names
-- are case-insensitive, as Keras lower-cases the class name. Errors point at
-- the user's line.
local function lookup(x)
  if O.is_optimizer(x) then return x end
  if type(x) == "string" then
    local name = by_lower[x:lower()]
    if not name then raise(string.format("unknown optimizer '%s'", x)) end
    local opt = construct(classes[name], {})
    return opt
  end
  if type(x) == "table" and getmetatable(x) == nil and x.class_name ~= nil then
    local cn = x.class_name
    local name = type(cn) == "string" and by_lower[cn:lower()]
    if not name then raise(string.format("unknown optimizer '%s'", tostring(cn))) end
    local opt = construct(classes[name], x.config or {})
    return opt
  end
  raise(string.format("optimizer must be a name or an optimizer object, got %s", type(x)))
end
O._lookup = lookup

-- O.get(x [, level]) -> optimizer, as _lookup, for a caller that names the
-- frame its errors point at: `level` as error() counts it in the function
-- that calls get (default 2: that function's caller)
function O.get(x, level)
  local ok, opt = pcall(lookup, x)
  if not ok then error(opt, (level or 2) + 1) end
  return opt
end

return O
