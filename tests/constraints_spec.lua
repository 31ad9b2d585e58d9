-- keras.constraints: Keras 2.2.4's MaxNorm, NonNeg, UnitNorm, MinMaxNorm,
-- projected in C after every optimizer update. Expected weights are worked
-- out here in float64 (plain Lua) from the formulas of keras/constraints.py:
-- n = the L2 norm over axis, eps = 1e-7,
--   MaxNorm     w * clip(n, 0, max_value) / (eps + n)
--   NonNeg      w * (w >= 0)
--   UnitNorm    w / (eps + n)
--   MinMaxNorm  w * (rate * clip(n, min, max) + (1 - rate) * n) / (eps + n)
local keras = require "keras"
local L = keras.layers
local Cn = keras.constraints
local T = keras.tensor
local None = keras.None
local json = require "keras.json"

local EPS = 1e-7

-- a nested table's elements in row-major order, and its shape
local U_ = dofile("tests/lib/spec_util.lua")
local flat = U_.flat
local function shape_of(v)
  local s = {}
  while type(v) == "table" do
    s[#s + 1] = #v
    v = v[1]
  end
  return s
end

-- the float64 projection of the flat values w of the given shape
local function project(kind, w, shape, o)
  local out = {}
  if kind == "non_neg" then
    for i, x in ipairs(w) do out[i] = x >= 0 and x or 0 end
    return out
  end
  local axes = {}
  for _, a in ipairs(type(o.axis) == "table" and o.axis or {o.axis}) do axes[(a < 0 and a + #shape or a) + 1] = true end
  local stride, n = {}, 1
  for k = #shape, 1, -1 do
    stride[k] = n
    n = n * shape[k]
  end
  -- the group of element e: its index with the reduced axes set to 0
  local function group(e)
    local g, r = 0, e - 1
    for k = 1, #shape do
      local idx = r // stride[k]
      r = r % stride[k]
      if not axes[k] then g = g + idx * stride[k] end
    end
    return g
  end
  local ss = {}
  for e, x in ipairs(w) do
    local g = group(e)
    ss[g] = (ss[g] or 0) + x * x
  end
  for e, x in ipairs(w) do
    local nrm = math.sqrt(ss[group(e)])
    local f
    if kind == "max_norm" then
      f = math.min(nrm, o.max_value) / (EPS + nrm)
    elseif kind == "unit_norm" then
      f = 1 / (EPS + nrm)
    else
      local d = math.max(o.min_value, math.min(nrm, o.max_value))
      f = (o.rate * d + (1 - o.rate) * nrm) / (EPS + nrm)
    end
    out[e] = x * f
  end
  return out
end

local function assert_close(want, got, tol, what)
  assert.equal(#want, #got, what)
  for i = 1, #want do
    assert.is_true(math.abs(want[i] - got[i]) <= tol * (1 + math.abs(want[i])),
      string.format("%s[%d]: %.9g, expected %.9g", what or "", i, got[i], want[i]))
  end
end

-- deterministic weights in [-1.5, 1.5] (some negative, norms above and below 1)
local function weights(shape)
  local n = 1
  for _, d in ipairs(shape) do n = n * d end
  local v = {}
  for i = 1, n do v[i] = ((i * 37) % 23 - 11) / 7.3 end
  return T(v):reshape(shape)
end

-- one train_on_batch with SGD(lr = 0): the update leaves the weights as they
-- are, so afterwards they are the projection of the initial ones
local function after_one_step(model, x, y)
  model:compile{optimizer = keras.optimizers.SGD{lr = 0}, loss = "mse"}
  model:train_on_batch(x, y)
end

describe("keras.constraints after one SGD step", function()
  it("projects a Dense kernel by MaxNorm after the update, with the known gradient", function()
    -- y = x W (no bias), loss = mean((y - t)^2): dL/dW = 2 / (B * U) * x^T (x W - t)
    local W0 = {{1.0, -0.5, 2.0}, {0.5, 1.5, -1.0}}
    local X = {{1, 2}, {-1, 0.5}}
    local Tg = {{0, 1, 0}, {1, 0, -1}}
    local lr, B, U = 0.1, 2, 3
    local W1 = {}
    for i = 1, 2 do
      W1[i] = {}
      for j = 1, 3 do
        local g = 0
        for b = 1, B do
          local y = X[b][1] * W0[1][j] + X[b][2] * W0[2][j]
          g = g + X[b][i] * (y - Tg[b][j])
        end
        W1[i][j] = W0[i][j] - lr * 2 / (B * U) * g
      end
    end
    local model = keras.Sequential{L.Dense{3, input_dim = 2, use_bias = false, weights = {T(W0)},
                                           kernel_constraint = Cn.max_norm(1.2)}}
    model:compile{optimizer = keras.optimizers.SGD{lr = lr}, loss = "mse"}
    model:train_on_batch(T(X), T(Tg))
    local want = project("max_norm", flat(W1), {2, 3}, {max_value = 1.2, axis = 0})
    assert_close(want, flat(model:get_weights()[1]:totable()), 1e-5, "kernel")
    -- the norms that were above 1.2 are 1.2 now
    local k = model:get_weights()[1]:totable()
    for j = 1, 3 do
      local nrm = math.sqrt(k[1][j] ^ 2 + k[2][j] ^ 2)
      assert.is_true(nrm <= 1.2 + 1e-5, "column " .. j .. " norm " .. nrm)
    end
  end)

  local cases = {
    {"MaxNorm(2, axis 0)", "max_norm", function() return Cn.MaxNorm(2) end, {max_value = 2, axis = 0}},
    {"max_norm axis 1", "max_norm", function() return Cn.max_norm{max_value = 0.7, axis = 1} end,
      {max_value = 0.7, axis = 1}},
    {"NonNeg", "non_neg", function() return Cn.NonNeg() end, {}},
    {"UnitNorm(axis 0)", "unit_norm", function() return Cn.UnitNorm() end, {axis = 0}},
    {"unit_norm axis -1", "unit_norm", function() return Cn.unit_norm{axis = -1} end, {axis = -1}},
    {"MinMaxNorm defaults", "min_max_norm", function() return Cn.MinMaxNorm() end,
      {min_value = 0, max_value = 1, rate = 1, axis = 0}},
    {"min_max_norm rate 0.25", "min_max_norm", function() return Cn.min_max_norm(0.5, 1.1, 0.25, 0) end,
      {min_value = 0.5, max_value = 1.1, rate = 0.25, axis = 0}},
  }
  for _, c in ipairs(cases) do
    it(c[1] .. " on a Dense kernel and bias", function()
      local W0, b0 = weights{4, 3}, T{-0.5, 0.25, 3.0}
      local o = c[4]
      local model = keras.Sequential{L.Dense{3, input_dim = 4, weights = {W0, b0}, kernel_constraint = c[3](),
                                             bias_constraint = c[2] == "non_neg" and "non_neg" or nil}}
      after_one_step(model, T.ones{2, 4}, T.zeros{2, 3})
      local got = model:get_weights()
      assert_close(project(c[2], flat(W0:totable()), {4, 3}, o), flat(got[1]:totable()), 1e-6, "kernel")
      if c[2] == "non_neg" then
        assert.same({0, 0.25, 3}, got[2]:totable())
      else
        assert.same(b0:totable(), got[2]:totable())   -- no constraint: untouched
      end
    end)
  end

  it("takes a list of axes for a Conv2D kernel (Keras's advice: axis = {0, 1, 2})", function()
    local W0 = weights{2, 2, 3, 4}
    local model = keras.Sequential{L.Conv2D{4, 2, input_shape = {3, 3, 3}, use_bias = false, weights = {W0},
                                            kernel_constraint = Cn.MaxNorm{max_value = 1.5, axis = {0, 1, 2}}}}
    after_one_step(model, T.ones{1, 3, 3, 3}, T.zeros{1, 2, 2, 4})
    assert_close(project("max_norm", flat(W0:totable()), {2, 2, 3, 4}, {max_value = 1.5, axis = {0, 1, 2}}),
      flat(model:get_weights()[1]:totable()), 1e-6, "kernel")
  end)

  it("projects SeparableConv2D's depthwise, pointwise and bias weights and DepthwiseConv2D's", function()
    local D0, P0, B0 = weights{2, 2, 3, 2}, weights{1, 1, 6, 4}, weights{4}
    local sep = keras.Sequential{L.SeparableConv2D{4, 2, input_shape = {3, 3, 3}, depth_multiplier = 2,
      weights = {D0, P0, B0}, depthwise_constraint = Cn.MaxNorm{max_value = 0.5, axis = {0, 1, 2}},
      pointwise_constraint = "non_neg", bias_constraint = Cn.MinMaxNorm(0.2, 0.4)}}
    after_one_step(sep, T.ones{1, 3, 3, 3}, T.zeros{1, 2, 2, 4})
    local w = sep:get_weights()
    assert_close(project("max_norm", flat(D0:totable()), {2, 2, 3, 2}, {max_value = 0.5, axis = {0, 1, 2}}),
      flat(w[1]:totable()), 1e-6, "depthwise")
    assert_close(project("non_neg", flat(P0:totable()), {1, 1, 6, 4}, {}), flat(w[2]:totable()), 1e-6,
      "pointwise")
    assert_close(project("min_max_norm", flat(B0:totable()), {4},
      {min_value = 0.2, max_value = 0.4, rate = 1, axis = 0}), flat(w[3]:totable()), 1e-6, "bias")
    local K0 = weights{2, 2, 3, 1}
    local dw = keras.Sequential{L.DepthwiseConv2D{2, input_shape = {3, 3, 3}, use_bias = false, weights = {K0},
      depthwise_constraint = "non_neg"}}
    after_one_step(dw, T.ones{1, 3, 3, 3}, T.zeros{1, 2, 2, 3})
    assert_close(project("non_neg", flat(K0:totable()), {2, 2, 3, 1}, {}), flat(dw:get_weights()[1]:totable()), 1e-6,
      "depthwise")
  end)

  it("projects the Embedding, RNN and BatchNormalization weights", function()
    local E0 = weights{5, 3}
    local inp = keras.Input{shape = {2}}
    local e = L.Embedding{5, 3, weights = {E0}, embeddings_constraint = "unit_norm"}(inp)
    local r = L.SimpleRNN{2, kernel_constraint = "non_neg", recurrent_constraint = Cn.MaxNorm(0.5),
                          bias_constraint = Cn.MinMaxNorm(1, 2)}(e)
    local bn = L.BatchNormalization{gamma_constraint = Cn.MaxNorm(0.5, 0), beta_constraint = "non_neg",
                                    beta_initializer = keras.initializers.Constant(-1),
                                    gamma_initializer = keras.initializers.Constant(3)}(r)
    local model = keras.Model(inp, bn)
    local w0 = model:get_weights()
    after_one_step(model, T{{0, 1}, {2, 4}}, T.zeros{2, 2})
    local w = model:get_weights()
    local function check(i, kind, o, what)
      assert_close(project(kind, flat(w0[i]:totable()), shape_of(w0[i]:totable()), o), flat(w[i]:totable()), 1e-6,
        what)
    end
    check(1, "unit_norm", {axis = 0}, "embeddings")
    check(2, "non_neg", {}, "rnn kernel")
    check(3, "max_norm", {max_value = 0.5, axis = 0}, "recurrent kernel")
    check(4, "min_max_norm", {min_value = 1, max_value = 2, rate = 1, axis = 0}, "rnn bias")
    local g = 0.5 / (math.sqrt(18) + EPS) * 3   -- gamma {3, 3}: the whole vector's norm sqrt(18) -> 0.5
    assert_close({g, g}, w[5]:totable(), 1e-6, "gamma")
    assert.same({0, 0}, w[6]:totable())        -- beta -1 -> 0
  end)

  it("projects after every update in fit, on a model with a None length too", function()
    local model = keras.Sequential{L.SimpleRNN{3, input_shape = {None, 2}, kernel_constraint = "non_neg"},
                                   L.Dense(1, {kernel_constraint = Cn.MaxNorm(0.1)})}
    model:compile{optimizer = keras.optimizers.SGD{lr = 0.5}, loss = "mse"}
    local x = keras.random.uniform({8, 4, 2}, -1, 1)
    model:fit(x, T.full({8, 1}, 5), {epochs = 3, batch_size = 2, verbose = 0})
    model:fit(keras.random.uniform({8, 6, 2}, -1, 1), T.full({8, 1}, -5), {epochs = 2, batch_size = 4, verbose = 0})
    local w = model:get_weights()
    for _, v in ipairs(flat(w[1]:totable())) do assert.is_true(v >= 0, "rnn kernel entry " .. v) end
    local k = flat(w[4]:totable())
    local nrm = 0
    for _, v in ipairs(k) do nrm = nrm + v * v end
    assert.is_true(math.sqrt(nrm) <= 0.1 + 1e-6, "dense kernel norm " .. math.sqrt(nrm))
  end)

  it("projects PReLU's alpha", function()
    local model = keras.Sequential{L.PReLU{input_shape = {3}, alpha_constraint = "non_neg",
                                           alpha_initializer = keras.initializers.Constant(-0.5)}}
    after_one_step(model, T.ones{1, 3}, T.zeros{1, 3})
    assert.same({0, 0, 0}, model:get_weights()[1]:totable())
  end)

  it("applies to a custom layer's add_weight constraint", function()
    local Scale = L.Layer:extend("Scale")
    function Scale:build() self.k = self:add_weight{name = "k", shape = {3}, initializer = "ones",
                                                    constraint = Cn.MaxNorm(1)} end
    function Scale:call(x) return keras.backend.mul(x, self.k) end
    local model = keras.Sequential{L.InputLayer{input_shape = {3}}, Scale()}
    after_one_step(model, T.ones{1, 3}, T.zeros{1, 3})
    local s = 1 / (math.sqrt(3) + EPS)
    assert_close({s, s, s}, model:get_weights()[1]:totable(), 1e-6, "k")
  end)
end)

describe("keras.constraints called on a tensor", function()
  it("gives the same projection as the training step, in float64 within float32 rounding", function()
    local w = weights{3, 4}
    for _, c in ipairs{{"max_norm", Cn.MaxNorm(1.0, 1), {max_value = 1.0, axis = 1}},
                       {"unit_norm", Cn.UnitNorm{axis = {0, 1}}, {axis = {0, 1}}},
                       {"non_neg", Cn.NonNeg(), {}},
                       {"min_max_norm", Cn.MinMaxNorm(0.8, 0.9, 0.5), {min_value = 0.8, max_value = 0.9, rate = 0.5,
                                                                          axis = 0}}} do
      assert_close(project(c[1], flat(w:totable()), {3, 4}, c[3]), flat(c[2](w):totable()), 1e-6, c[1])
    end
  end)
end)

describe("keras.constraints get, serialize, deserialize and configs", function()
  it("has Keras 2.2.4's defaults and attributes", function()
    local m = Cn.max_norm()
    assert.equal("MaxNorm", m.class_name)
    assert.same({max_value = 2, axis = 0}, m:get_config())
    assert.equal(2, m.max_value)
    assert.same({}, Cn.non_neg():get_config())
    assert.same({axis = 0}, Cn.unit_norm():get_config())
    assert.same({min_value = 0.0, max_value = 1.0, rate = 1.0, axis = 0}, Cn.min_max_norm():get_config())
    assert.equal("MaxNorm", Cn.get("maxnorm").class_name)
    assert.equal(m, Cn.get(m))
    assert.is_nil(Cn.get(nil))
  end)

  it("round-trips serialize and deserialize", function()
    for _, c in ipairs{Cn.MaxNorm(3, {0, 1}), Cn.NonNeg(), Cn.UnitNorm(1), Cn.MinMaxNorm(0.1, 0.2, 0.3, 1)} do
      local s = Cn.serialize(c)
      assert.equal(c.class_name, s.class_name)
      local back = Cn.deserialize(s)
      assert.same(c:get_config(), back:get_config())
      assert.same(c:get_config(), Cn.get(s):get_config())
    end
  end)

  it("writes Keras's {class_name, config} in layer configs and reads it back", function()
    local d = L.Dense{3, kernel_constraint = Cn.MaxNorm(1.5), bias_constraint = "non_neg"}
    local text = json.encode(d:get_config())
    assert.truthy(text:find('"kernel_constraint": {"class_name": "MaxNorm", "config": {"max_value": 1.5, "axis": 0}}',
      1, true), text)
    assert.truthy(text:find('"bias_constraint": {"class_name": "NonNeg", "config": {}}', 1, true), text)
    local d2 = L.Dense.from_config(d:get_config())
    assert.equal("MaxNorm", d2.kernel_constraint.class_name)
    assert.equal(1.5, d2.kernel_constraint.max_value)
    assert.equal("NonNeg", d2.bias_constraint.class_name)
  end)

  it("reads a Keras 2.2.4 JSON config and keeps the constraints through model_from_json, .lkm and .h5", function()
    local model = keras.Sequential{
      L.Dense{4, input_dim = 3, kernel_constraint = Cn.MinMaxNorm{0.5, 1.0, 0.5, {0}}, bias_constraint = "unit_norm"},
      L.Reshape{{2, 2}},
    }
    model:add(L.LSTM{2, kernel_constraint = Cn.MaxNorm(2.5), recurrent_constraint = "non_neg"})
    model:add(L.BatchNormalization{gamma_constraint = Cn.UnitNorm(), beta_constraint = Cn.NonNeg()})
    local text = model:to_json()
    local m2 = keras.models.model_from_json(text)
    assert.equal(text, m2:to_json())
    model:compile{optimizer = "sgd", loss = "mse"}
    for _, ext in ipairs{"lkm", "h5"} do
      local path = os.tmpname() .. "." .. ext
      model:save(path)
      local m3 = keras.models.load_model(path)
      os.remove(path)
      assert.equal(text, m3:to_json(), ext)
      assert.equal("MinMaxNorm", m3.layers[1].kernel_constraint.class_name)
      -- the loaded model trains with them: the LSTM's recurrent kernel stays >= 0
      m3:fit(T.ones{2, 3}, T.full({2, 2}, -3), {epochs = 2, verbose = 0})
      for _, v in ipairs(flat(m3.layers[3]:get_weights()[2]:totable())) do assert.is_true(v >= 0) end
    end
    -- a constraint in Keras's own JSON layout
    local keras_json = [[{"class_name": "Sequential", "config": [{"class_name": "Dense", "config": {"name": "d",
      "trainable": true, "batch_input_shape": [null, 2], "dtype": "float32", "units": 2, "activation": "linear",
      "use_bias": true, "kernel_initializer": {"class_name": "Ones", "config": {}}, "bias_initializer":
      {"class_name": "Zeros", "config": {}}, "kernel_regularizer": null, "bias_regularizer": null,
      "activity_regularizer": null, "kernel_constraint": {"class_name": "MaxNorm", "config": {"max_value": 1,
      "axis": 0}}, "bias_constraint": null}}], "keras_version": "2.2.4", "backend": "tensorflow"}]]
    local m4 = keras.models.model_from_json(keras_json)
    assert.equal(1, m4.layers[1].kernel_constraint.max_value)
    after_one_step(m4, T.zeros{1, 2}, T.zeros{1, 2})
    local s = 1 / (math.sqrt(2) + EPS)
    assert_close({s, s, s, s}, flat(m4:get_weights()[1]:totable()), 1e-6, "kernel")
  end)
end)

describe("keras.constraints misuse", function()
  it("names the constraint, the argument and what was expected", function()
    assert.error_matches(function() Cn.MaxNorm(-1) end, "MaxNorm: max_value must be a number >= 0, got -1", 1, true)
    assert.error_matches(function() Cn.MaxNorm(2, 0.5) end,
      "MaxNorm: axis must be an integer or a list of integers, got 0.5", 1, true)
    assert.error_matches(function() Cn.UnitNorm{axis = {0, "a"}} end, "UnitNorm: axis[2] must be an integer, got a",
      1, true)
    assert.error_matches(function() Cn.MinMaxNorm(2, 1) end, "MinMaxNorm: min_value 2 is above max_value 1", 1, true)
    assert.error_matches(function() Cn.MinMaxNorm(0, 1, 1.5) end,
      "MinMaxNorm: rate must be a number in [0, 1], got 1.5", 1, true)
    assert.error_matches(function() Cn.get("max_nrom") end, "keras.constraints.get: unknown constraint 'max_nrom'", 1,
      true)
    assert.error_matches(function() Cn.deserialize{class_name = "MaxNorm", config = {max_value = 1, axes = 0}} end,
      "keras.constraints.deserialize: MaxNorm has no argument 'axes'", 1, true)
    assert.error_matches(function() L.Dense{2, kernel_constraint = function(w) return w end} end,
      "Dense: a Lua function as a constraint is not supported", 1, true)
  end)

  it("refuses an axis out of the weight's range when the layer is built", function()
    local d = L.Dense{2, kernel_constraint = Cn.MaxNorm(1, 2)}
    assert.error_matches(function() d(keras.Input{shape = {3}}) end,
      "Dense: kernel_constraint: axis 2 is out of range for a weight of rank 2", 1, true)
    local r = L.SimpleRNN{2, recurrent_constraint = Cn.UnitNorm(-3)}
    assert.error_matches(function() r(keras.Input{shape = {4, 3}}) end,
      "SimpleRNN: recurrent_constraint: axis -3 is out of range for a weight of rank 2", 1, true)
  end)
end)
