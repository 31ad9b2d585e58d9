-- keras.layers: Dropout and the noise and regularization layers,
-- GaussianNoise, GaussianDropout, AlphaDropout, ActivityRegularization
-- (Keras 2.2.4's arguments and defaults); all of them act in training only.
local keras = ...
local util = require("keras.util")
local raise = util.raise
local K, L = keras.backend, keras.layers
local define, shape_str = L._define, L._shape_str
local check_number = L._check_number

-- ---- Dropout ----

-- noise_shape: the mask's shape, one size per axis of the input (batch
-- included), each the input's size, None (the input's) or 1 (the mask
-- broadcast along that axis), as Keras 2.2.4's Dropout._get_noise_shape
local function noise_shape_arg(who, ns)
  if ns == nil or ns == K.None then return nil end
  if type(ns) ~= "table" or #ns == 0 then
    raise(string.format("%s: noise_shape must be a list of sizes (None for the input's), got %s", who, tostring(ns)))
  end
  for i, d in ipairs(ns) do
    if d ~= K.None and d ~= -1 and not (math.type(d) == "integer" and d >= 1) then
      raise(string.format("%s: noise_shape[%d] must be a size >= 1 or None, got %s", who, i, tostring(d)))
    end
  end
  return ns
end

-- noise_shape checked against the input x: {size or None} for K.dropout
local function noise_shape_for(self, x)
  local ns, s = self.noise_shape, x.shape
  if #ns ~= #s then
    error(self:_msg("noise_shape has %d sizes for an input of rank %d (shape %s)", #ns, #s, shape_str(s)), 0)
  end
  local out = {}
  for i, d in ipairs(ns) do
    if d == K.None or d == -1 or (s[i] < 0 and d ~= 1) then d = K.None   -- a None axis: any size
    elseif d ~= 1 and d ~= s[i] then
      error(self:_msg("noise_shape[%d] must be %s, 1 or None for the input of shape %s, got %d", i,
        s[i] < 0 and "None" or tostring(s[i]), shape_str(s), d), 0)
    end
    out[i] = d
  end
  return out
end

local function no_seed(who, seed)
  if seed ~= nil and seed ~= K.None then
    raise(who .. ": a per-layer seed is not supported by this version of lkeras " ..
      "(keras.random.seed seeds every dropout)")
  end
end

local Dropout = define("Dropout", {"rate", "noise_shape", "seed"}, {"rate", "noise_shape", "seed"}, function(self, o)
  self.rate = check_number("Dropout", "rate", o.rate, 0, 1)
  self.noise_shape = noise_shape_arg("Dropout", o.noise_shape)
  no_seed("Dropout", o.seed)
end)
Dropout.supports_masking = true
function Dropout:call(x)
  if self.rate <= 0 then return x end
  if self.noise_shape then   -- one draw per mask entry, broadcast; in training only
    return K.in_train_phase(K.dropout(x, self.rate, noise_shape_for(self, x)), x)
  end
  return K._train_dropout(x, self.rate)
end

-- ---- noise and regularization layers (Keras 2.2.4's keras/layers/noise.py
-- and core.ActivityRegularization): the noise is drawn in training only,
-- every layer is the identity in predict and evaluate ----

-- random values of the given shape (default x's), a None axis where x has
-- one: a model with a None length runs per length (the random ops, src/ops_backend.c)
local function noise_like(op, x, attrs, shape)
  attrs.shape = shape or x.shape
  return K.apply(op, {x}, attrs)
end

-- GaussianNoise(stddev): x + N(0, stddev^2) noise
local GaussianNoise = define("GaussianNoise", {"stddev"}, {"stddev"}, function(self, o)
  if o.stddev == nil then raise("GaussianNoise: missing argument 'stddev'") end
  self.stddev = check_number("GaussianNoise", "stddev", o.stddev, 0)
end)
GaussianNoise.supports_masking = true
GaussianNoise._prefix = "gaussian_noise"
function GaussianNoise:call(x)
  return K.in_train_phase(K.add(x, noise_like("random_normal", x, {mean = 0, stddev = self.stddev})), x)
end

-- GaussianDropout(rate): x * N(1, rate / (1 - rate)) noise, for 0 < rate < 1
local GaussianDropout = define("GaussianDropout", {"rate"}, {"rate"}, function(self, o)
  self.rate = check_number("GaussianDropout", "rate", o.rate, 0, 1)
end)
GaussianDropout.supports_masking = true
GaussianDropout._prefix = "gaussian_dropout"
function GaussianDropout:call(x)
  if self.rate <= 0 then return x end
  local stddev = math.sqrt(self.rate / (1 - self.rate))
  return K.in_train_phase(K.mul(x, noise_like("random_normal", x, {mean = 1, stddev = stddev})), x)
end

-- AlphaDropout(rate, noise_shape, seed): dropped units set to alpha' =
-- -scale * alpha of SELU, then a * x + b, which keeps a unit mean and variance:
-- a = ((1 - rate) * (1 + rate * alpha'^2))^-1/2, b = -a * alpha' * rate
local ALPHA_P = -1.7580993408473766   -- -1.0507009873554805 * 1.6732632423543772
local AlphaDropout = define("AlphaDropout", {"rate", "noise_shape", "seed"}, {"rate", "noise_shape", "seed"},
  function(self, o)
    self.rate = check_number("AlphaDropout", "rate", o.rate, 0, 1)
    self.noise_shape = noise_shape_arg("AlphaDropout", o.noise_shape)
    no_seed("AlphaDropout", o.seed)
  end)
AlphaDropout.supports_masking = true
AlphaDropout._prefix = "alpha_dropout"
function AlphaDropout:call(x)
  local rate = self.rate
  if rate <= 0 then return x end
  local shape
  if self.noise_shape then
    shape = {}
    for i, d in ipairs(noise_shape_for(self, x)) do shape[i] = d == K.None and x.shape[i] or d end
  end
  -- kept: 1 with probability 1 - rate (uniform draw >= rate), broadcast over noise_shape's 1s
  local u = noise_like("random_uniform", x, {minval = 0, maxval = 1}, shape)
  local kept = K.cast(K.greater_equal(u, rate), "float32")
  local a = ((1 - rate) * (1 + rate * ALPHA_P * ALPHA_P)) ^ -0.5
  local b = -a * ALPHA_P * rate
  local dropped = K.add(K.mul(K.sub(x, ALPHA_P), kept), ALPHA_P)   -- x * kept + alpha' * (1 - kept)
  return K.in_train_phase(K.add(K.mul(dropped, a), b), x)
end

-- ActivityRegularization(l1 = 0, l2 = 0): the identity, adding the penalty
-- L1L2(l1, l2) of its output to the model's loss
local ActivityRegularization = define("ActivityRegularization", {"l1", "l2"}, {"l1", "l2"}, function(self, o)
  self.l1 = check_number("ActivityRegularization", "l1", o.l1 or 0.0, 0)
  self.l2 = check_number("ActivityRegularization", "l2", o.l2 or 0.0, 0)
  self.activity_regularizer = keras.regularizers.L1L2(self.l1, self.l2)
end)
ActivityRegularization.supports_masking = true
ActivityRegularization._prefix = "activity_regularization"
function ActivityRegularization:call(x)
  self:_activity_loss(x)
  return x
end

-- ---- Keras 2.2.4's configs of this file's classes (layer_config.lua) ----

do
  local config = require("keras.layer_config")
  local NULL, REQ = config.NULL, config.REQ
  config.add({
    Dropout = {"rate", REQ, "noise_shape", NULL, "seed", NULL},
    GaussianNoise = {"stddev", REQ},
    GaussianDropout = {"rate", REQ},
    AlphaDropout = {"rate", REQ},
    ActivityRegularization = {"l1", 0.0, "l2", 0.0},
  })
end
