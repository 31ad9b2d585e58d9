-- keras.initializers: Keras 2.2.4's weight initializers by name or object.
-- An initializer is a table with a __call(shape) that returns a new tensor,
-- and a get_config() for saving. Random ones draw from the state's generator
-- (keras.random.seed makes them reproducible).
local core = ...

local I = {}

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

function I.Zeros() return make("Zeros", {}, function(s) return core.full(s, 0) end) end
function I.Ones() return make("Ones", {}, function(s) return core.full(s, 1) end) end
function I.Constant(value)
  value = type(value) == "table" and (value.value or value[1]) or value or 0
  return make("Constant", {value = value}, function(s) return core.full(s, value) end)
end

function I.RandomNormal(opts)
  opts = opts or {}
  local mean, std = opts.mean or 0, opts.stddev or 0.05
  return make("RandomNormal", {mean = mean, stddev = std}, function(s) return core.random("normal", s, mean, std) end)
end

function I.RandomUniform(opts)
  opts = opts or {}
  local lo, hi = opts.minval or -0.05, opts.maxval or 0.05
  return make("RandomUniform", {minval = lo, maxval = hi}, function(s) return core.random("uniform", s, lo, hi) end)
end

function I.TruncatedNormal(opts)
  opts = opts or {}
  local mean, std = opts.mean or 0, opts.stddev or 0.05
  return make("TruncatedNormal", {mean = mean, stddev = std},
    function(s) return core.random("truncated_normal", s, mean, std) end)
end

function I.VarianceScaling(opts)
  opts = opts or {}
  local scale, mode, dist = opts.scale or 1.0, opts.mode or "fan_in", opts.distribution or "normal"
  if scale <= 0 then error("VarianceScaling: scale must be positive, got " .. tostring(scale), 2) end
  if mode ~= "fan_in" and mode ~= "fan_out" and mode ~= "fan_avg" then
    error("VarianceScaling: mode must be fan_in, fan_out or fan_avg, got '" .. tostring(mode) .. "'", 2)
  end
  if dist ~= "normal" and dist ~= "uniform" then
    error("VarianceScaling: distribution must be normal or uniform, got '" .. tostring(dist) .. "'", 2)
  end
  return make("VarianceScaling", {scale = scale, mode = mode, distribution = dist}, function(s)
    local fi, fo = fans(s)
    local n = mode == "fan_in" and fi or mode == "fan_out" and fo or (fi + fo) / 2
    local sc = scale / math.max(1, n)
    if dist == "normal" then
      return core.random("truncated_normal", s, 0, math.sqrt(sc) / .87962566103423978)
    end
    local limit = math.sqrt(3 * sc)
    return core.random("uniform", s, -limit, limit)
  end)
end

local function vs(class, scale, mode, dist)
  return function()
    local v = I.VarianceScaling{scale = scale, mode = mode, distribution = dist}
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
function I.Orthogonal(opts)
  opts = opts or {}
  local gain = opts.gain or 1.0
  return make("Orthogonal", {gain = gain}, function(s)
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
  end)
end

function I.Identity(opts)
  opts = opts or {}
  local gain = opts.gain or 1.0
  return make("Identity", {gain = gain}, function(s)
    if #s ~= 2 then error("Identity initializer needs a 2-D shape", 2) end
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

-- name, object, or {class_name=, config=} -> initializer
function I.get(x, who)
  if type(x) == "string" then
    local f = aliases[x]
    if not f then error(string.format("%sunknown initializer '%s'", who and (who .. ": ") or "", x), 3) end
    return f()
  end
  if type(x) == "table" and x.class_name and getmetatable(x) then return x end
  if type(x) == "table" and x.class_name then
    local f = aliases[x.class_name]
    if not f then error(string.format("unknown initializer '%s'", x.class_name), 3) end
    return f(x.config)
  end
  if type(x) == "function" then
    return make("Custom", {}, x)
  end
  error(string.format("%sinitializer must be a name or an initializer, got %s", who and (who .. ": ") or "", type(x)), 3)
end

return I
