-- keras.initializers: Keras 2.2.4's weight initializers by name or object.
-- An initializer is a table with a __call(shape) that returns a new tensor,
-- and a get_config() for saving. Random ones draw from the state's generator
-- (keras.random.seed makes them reproducible).
local core, args = ...
local raise = require("keras.util").raise

local I = {}

-- Keras 2.2.4's positional order, then options, or one table (args.lua);
-- a null seed (keras.None, as saved configs hold it) is no seed
local function parse(who, positional, ...)
  local spec = args.spec{who = who, positional = positional}
  local o = args.parse(spec, ...)
  if o.seed == args.None then o.seed = nil end
  if o.seed ~= nil and math.type(o.seed) ~= "integer" then
    raise(string.format("%s: seed must be an integer, got %s", who, tostring(o.seed)))
  end
  return o
end

local function number(who, name, v)
  if type(v) ~= "number" or v ~= v then
    raise(string.format("%s: %s must be a number, got %s", who, name, tostring(v)))
  end
  return v
end

-- draw with the state's generator, or, given a seed, from that seed (the same
-- values at every call, as Keras's seeded initializers) leaving the state's
-- stream where it was
local function draw(seed, f, s)
  if seed == nil then return f(s) end
  local state = core.rng_get_state()
  core.seed(seed)
  local ok, t = pcall(f, s)
  core.rng_set_state(state)
  if not ok then error(t, 0) end
  return t
end

local function fans(shape)
  local n = #shape
  if n == 2 then return shape[1], shape[2] end
  if n >= 3 then
    local receptive = 1
    for i = 1, n - 2 do receptive = receptive * shape[i] end
    return shape[n - 1] * receptive, shape[n] * receptive
  end
  local p = 1
  for i = 1, n do p = p * shape[i] end
  local s = math.sqrt(p)
  return s, s
end
I._fans = fans

local function make(class, config, fn)
  return setmetatable({class_name = class, config = config},
    {__call = function(_, shape) return fn(shape) end})
end

function I.Zeros(...)
  parse("Zeros", {}, ...)
  return make("Zeros", {}, function(s) return core.full(s, 0) end)
end
function I.Ones(...)
  parse("Ones", {}, ...)
  return make("Ones", {}, function(s) return core.full(s, 1) end)
end
-- Constant(value = 0)
function I.Constant(...)
  local o = parse("Constant", {"value"}, ...)
  local value = number("Constant", "value", o.value or 0)
  return make("Constant", {value = value}, function(s) return core.full(s, value) end)
end

-- RandomNormal(mean = 0, stddev = 0.05, seed)
function I.RandomNormal(...)
  local o = parse("RandomNormal", {"mean", "stddev", "seed"}, ...)
  local mean = number("RandomNormal", "mean", o.mean or 0)
  local std, seed = number("RandomNormal", "stddev", o.stddev or 0.05), o.seed
  return make("RandomNormal", {mean = mean, stddev = std, seed = seed},
    function(s) return draw(seed, function(z) return core.random("normal", z, mean, std) end, s) end)
end

-- RandomUniform(minval = -0.05, maxval = 0.05, seed)
function I.RandomUniform(...)
  local o = parse("RandomUniform", {"minval", "maxval", "seed"}, ...)
  local lo = number("RandomUniform", "minval", o.minval or -0.05)
  local hi, seed = number("RandomUniform", "maxval", o.maxval or 0.05), o.seed
  return make("RandomUniform", {minval = lo, maxval = hi, seed = seed},
    function(s) return draw(seed, function(z) return core.random("uniform", z, lo, hi) end, s) end)
end

-- TruncatedNormal(mean = 0, stddev = 0.05, seed)
function I.TruncatedNormal(...)
  local o = parse("TruncatedNormal", {"mean", "stddev", "seed"}, ...)
  local mean = number("TruncatedNormal", "mean", o.mean or 0)
  local std, seed = number("TruncatedNormal", "stddev", o.stddev or 0.05), o.seed
  return make("TruncatedNormal", {mean = mean, stddev = std, seed = seed},
    function(s) return draw(seed, function(z) return core.random("truncated_normal", z, mean, std) end, s) end)
end

-- VarianceScaling(scale = 1, mode = "fan_in", distribution = "normal", seed)
function I.VarianceScaling(...)
  local o = parse("VarianceScaling", {"scale", "mode", "distribution", "seed"}, ...)
  local scale, mode, dist = o.scale or 1.0, o.mode or "fan_in", o.distribution or "normal"
  local seed = o.seed
  number("VarianceScaling", "scale", scale)
  if scale <= 0 then raise("VarianceScaling: scale must be positive, got " .. tostring(scale)) end
  if mode ~= "fan_in" and mode ~= "fan_out" and mode ~= "fan_avg" then
    raise("VarianceScaling: mode must be fan_in, fan_out or fan_avg, got '" .. tostring(mode) .. "'")
  end
  -- tf.keras's names: truncated_normal is Keras's normal; untruncated_normal
  -- draws from the normal distribution of variance scale / n itself
  if dist == "truncated_normal" then dist = "normal" end
  if dist ~= "normal" and dist ~= "uniform" and dist ~= "untruncated_normal" then
    raise("VarianceScaling: distribution must be normal, uniform, truncated_normal or untruncated_normal, got '" ..
      tostring(dist) .. "'")
  end
  local function sample(s)
    local fi, fo = fans(s)
    local n = mode == "fan_in" and fi or mode == "fan_out" and fo or (fi + fo) / 2
    local sc = scale / math.max(1, n)
    if dist == "normal" then
      return core.random("truncated_normal", s, 0, math.sqrt(sc) / .87962566103423978)
    end
    if dist == "untruncated_normal" then return core.random("normal", s, 0, math.sqrt(sc)) end
    local limit = math.sqrt(3 * sc)
    return core.random("uniform", s, -limit, limit)
  end
  return make("VarianceScaling", {scale = scale, mode = mode, distribution = dist, seed = seed},
    function(s) return draw(seed, sample, s) end)
end

-- glorot_uniform(seed), ...: VarianceScaling with Keras's settings
local function vs(class, scale, mode, dist)
  return function(...)
    local o = parse(class, {"seed"}, ...)
    local v = I.VarianceScaling{scale = scale, mode = mode, distribution = dist, seed = o.seed}
    v.class_name = "VarianceScaling"
    return v
  end
end
I.glorot_uniform = vs("glorot_uniform", 1, "fan_avg", "uniform")
I.glorot_normal = vs("glorot_normal", 1, "fan_avg", "normal")
I.he_uniform = vs("he_uniform", 2, "fan_in", "uniform")
I.he_normal = vs("he_normal", 2, "fan_in", "normal")
I.lecun_uniform = vs("lecun_uniform", 1, "fan_in", "uniform")
I.lecun_normal = vs("lecun_normal", 1, "fan_in", "normal")

-- Orthogonal: Q of a QR factorization of a normal matrix (rows <-> columns as
-- needed), signs fixed by R's diagonal, times gain; the flat shape is
-- (prod(shape[:-1]), shape[-1]) as in Keras.
-- Orthogonal(gain = 1, seed)
function I.Orthogonal(...)
  local o = parse("Orthogonal", {"gain", "seed"}, ...)
  local gain, seed = number("Orthogonal", "gain", o.gain or 1.0), o.seed
  local function sample(s)
    local rows = 1
    for i = 1, #s - 1 do rows = rows * s[i] end
    local cols = s[#s]
    local r, c = math.max(rows, cols), math.min(rows, cols)
    local a = core.random("normal", {c, r}, 0, 1):totable()   -- c vectors of length r
    -- modified Gram-Schmidt on the c vectors
    for i = 1, c do
      local v = a[i]
      for j = 1, i - 1 do
        local u, d = a[j], 0
        for k = 1, r do d = d + u[k] * v[k] end
        for k = 1, r do v[k] = v[k] - d * u[k] end
      end
      local norm = 0
      for k = 1, r do norm = norm + v[k] * v[k] end
      norm = math.sqrt(norm)
      if norm == 0 then norm = 1 end
      for k = 1, r do v[k] = v[k] / norm * gain end
    end
    local out = {}
    if rows >= cols then       -- columns are the vectors: (rows, cols)
      for i = 1, rows do
        local row = {}
        for j = 1, cols do row[j] = a[j][i] end
        out[i] = row
      end
    else                       -- rows are the vectors
      out = a
    end
    return core.tensor(out):reshape(s)
  end
  return make("Orthogonal", {gain = gain, seed = seed}, function(s) return draw(seed, sample, s) end)
end

-- Identity(gain = 1)
function I.Identity(...)
  local o = parse("Identity", {"gain"}, ...)
  local gain = number("Identity", "gain", o.gain or 1.0)
  return make("Identity", {gain = gain}, function(s)
    if #s ~= 2 then raise("Identity initializer needs a 2-D shape") end
    local t = core.full(s, 0)
    for i = 1, math.min(s[1], s[2]) do t:set(i, i, gain) end
    return t
  end)
end

local aliases = {
  zeros = I.Zeros, zero = I.Zeros, ones = I.Ones, one = I.Ones, constant = I.Constant,
  random_normal = I.RandomNormal, normal = I.RandomNormal, random_uniform = I.RandomUniform,
  uniform = I.RandomUniform, truncated_normal = I.TruncatedNormal, orthogonal = I.Orthogonal,
  identity = I.Identity, variance_scaling = I.VarianceScaling,
  glorot_uniform = I.glorot_uniform, glorot_normal = I.glorot_normal, he_uniform = I.he_uniform,
  he_normal = I.he_normal, lecun_uniform = I.lecun_uniform, lecun_normal = I.lecun_normal,
  Zeros = I.Zeros, Ones = I.Ones, Constant = I.Constant, RandomNormal = I.RandomNormal,
  RandomUniform = I.RandomUniform, TruncatedNormal = I.TruncatedNormal, Orthogonal = I.Orthogonal,
  Identity = I.Identity, VarianceScaling = I.VarianceScaling,
}

-- tf.keras's class names (files written by tf.keras, "2.2.4-tf" and 2.x)
local TF_CLASSES = {
  GlorotUniform = I.glorot_uniform, GlorotNormal = I.glorot_normal, HeUniform = I.he_uniform,
  HeNormal = I.he_normal, LecunUniform = I.lecun_uniform, LecunNormal = I.lecun_normal,
}

-- {class_name=, config=} as Keras or tf.keras writes it -> the constructor and
-- its options; tf.keras 1.x puts a "dtype" in every initializer's config,
-- accepted at float32
local function from_config(x)
  local name = x.class_name
  local f = aliases[name] or TF_CLASSES[name]
  if not f then
    raise(string.format("unknown initializer '%s'", tostring(name)))
  end
  local cfg = x.config
  if type(cfg) == "table" and cfg.dtype ~= nil then
    if cfg.dtype ~= "float32" and cfg.dtype ~= args.None then
      raise(string.format("initializer %s: dtype must be float32, got '%s'", name, tostring(cfg.dtype)))
    end
    local c = {}
    for k, v in pairs(cfg) do if k ~= "dtype" then c[k] = v end end
    cfg = c
  end
  return f, cfg
end

-- name, object, or {class_name=, config=} -> initializer
function I.get(x, who)
  if type(x) == "string" then
    local f = aliases[x]
    if not f then raise(string.format("%sunknown initializer '%s'", who and (who .. ": ") or "", x)) end
    return f()
  end
  if type(x) == "table" and x.class_name and getmetatable(x) then return x end
  if type(x) == "table" and x.class_name then
    local f, cfg = from_config(x)
    return f(cfg)
  end
  if type(x) == "function" then
    return make("Custom", {}, x)
  end
  raise(string.format("%sinitializer must be a name or an initializer, got %s", who and (who .. ": ") or "", type(x)))
end

return I
