-- The noise and regularization layers of Keras 2.2.4 (keras/layers/noise.py,
-- core.Dropout's noise_shape, core.ActivityRegularization, SpatialDropout3D):
-- noise in training only, the identity in predict and evaluate. The
-- statistical checks draw N values and accept the sample mean within 5
-- standard errors (sd / sqrt(N)) and the sample variance within 5 standard
-- errors of a variance (var * sqrt(2 / N) for normal noise): a wrong stddev,
-- mean or rate by a few percent fails them.
local keras = require "keras"
local L = keras.layers
local K = keras.backend
local T = keras.tensor
local None = keras.None
local json = require "keras.json"

local ALPHA_P = -1.7580993408473766

local U_ = dofile("tests/lib/spec_util.lua")
local flat = U_.flat

local function stats(values)
  local n, s = #values, 0
  for _, v in ipairs(values) do s = s + v end
  local mean, q = s / n, 0
  for _, v in ipairs(values) do q = q + (v - mean) ^ 2 end
  return mean, q / (n - 1), n
end

-- the layer's output on x, in training (phase 1) and in inference (phase 0)
local function run(layer, x)
  local inp = keras.Input{shape = {table.unpack(x.shape, 2)}}
  local out = layer(inp)
  local f = K["function"]({inp, K.learning_phase()}, {out})
  return f{x, 1}[1], f{x, 0}[1], keras.Model(inp, out)
end

local function within(got, want, tol, what)
  assert.is_true(math.abs(got - want) <= tol, string.format("%s: %.6g, expected %.6g +- %.3g", what, got, want, tol))
end

describe("keras.layers.GaussianNoise", function()
  it("adds N(0, stddev^2) noise in training", function()
    keras.random.seed(11)
    local x = T.full({50, 400}, 3)
    local train = run(L.GaussianNoise(0.5), x)
    local mean, var, n = stats(flat(train:totable()))
    within(mean, 3, 5 * 0.5 / math.sqrt(n), "mean")
    within(var, 0.25, 5 * 0.25 * math.sqrt(2 / n), "variance")
  end)

  it("is the identity in inference, predict and evaluate", function()
    local x = keras.random.uniform({4, 3}, -1, 1)
    local _, infer, model = run(L.GaussianNoise{stddev = 2}, x)
    assert.same(x:totable(), infer:totable())
    assert.same(x:totable(), model:predict(x):totable())
    model:compile{optimizer = "sgd", loss = "mse"}
    assert.equal(0, model:evaluate(x, x, {verbose = 0}))
  end)
end)

describe("keras.layers.GaussianDropout", function()
  it("multiplies by N(1, rate / (1 - rate)) noise in training", function()
    keras.random.seed(12)
    local x = T.full({50, 400}, 2)
    local train = run(L.GaussianDropout(0.3), x)
    local sd = 2 * math.sqrt(0.3 / 0.7)
    local mean, var, n = stats(flat(train:totable()))
    within(mean, 2, 5 * sd / math.sqrt(n), "mean")
    within(var, sd * sd, 5 * sd * sd * math.sqrt(2 / n), "variance")
  end)

  it("is the identity in inference and with rate 0", function()
    local x = keras.random.uniform({4, 3}, -1, 1)
    local _, infer, model = run(L.GaussianDropout(0.5), x)
    assert.same(x:totable(), infer:totable())
    assert.same(x:totable(), model:predict(x):totable())
    local train0 = run(L.GaussianDropout(0), x)
    assert.same(x:totable(), train0:totable())
  end)
end)

describe("keras.layers.AlphaDropout", function()
  local rate = 0.2
  local a = ((1 - rate) * (1 + rate * ALPHA_P ^ 2)) ^ -0.5
  local b = -a * ALPHA_P * rate

  it("sets dropped units to a * alpha' + b and kept ones to a * x + b, in training", function()
    keras.random.seed(13)
    local x = T.ones{40, 500}
    local train = run(L.AlphaDropout(rate), x)
    local kept_v, drop_v, dropped = a + b, a * ALPHA_P + b, 0
    local v = flat(train:totable())
    for _, y in ipairs(v) do
      if math.abs(y - drop_v) < 1e-5 then
        dropped = dropped + 1
      else
        within(y, kept_v, 1e-5, "kept unit")
      end
    end
    local n = #v
    within(dropped / n, rate, 5 * math.sqrt(rate * (1 - rate) / n), "dropped fraction")
  end)

  it("keeps mean 0 and variance 1 of standard normal inputs", function()
    keras.random.seed(14)
    local x = keras.random.normal({50, 400}, 0, 1)
    local train = run(L.AlphaDropout(rate), x)
    local mean, var, n = stats(flat(train:totable()))
    -- the output's variance is 1; its 4th moment is below 3 * 1.6, so the
    -- variance estimate's standard error is below sqrt(4.8 / n)
    within(mean, 0, 5 / math.sqrt(n), "mean")
    within(var, 1, 5 * math.sqrt(4.8 / n), "variance")
  end)

  it("draws one value per noise_shape entry, broadcast over its 1s", function()
    keras.random.seed(15)
    local x = T.ones{6, 5, 4}
    local train = run(L.AlphaDropout(0.5, {None, 1, 4}), x)
    local t = train:totable()
    for i = 1, 6 do
      for j = 2, 5 do assert.same(t[i][1], t[i][j]) end
    end
  end)

  it("is the identity in inference", function()
    local x = keras.random.uniform({4, 3}, -1, 1)
    local _, infer, model = run(L.AlphaDropout(0.4), x)
    assert.same(x:totable(), infer:totable())
    assert.same(x:totable(), model:predict(x):totable())
  end)
end)

describe("keras.layers.Dropout with noise_shape", function()
  it("drops whole rows along the axes of size 1 (None: the input's size), in training only", function()
    keras.random.seed(16)
    local x = T.ones{20, 5, 8}
    local train, infer = run(L.Dropout(0.5, {None, 1, None}), x)
    local t, zeros, n = train:totable(), 0, 0
    for i = 1, 20 do
      for c = 1, 8 do
        local v = t[i][1][c]
        assert.is_true(v == 0 or v == 2, "unit " .. v)
        for s = 2, 5 do assert.equal(v, t[i][s][c]) end
        if v == 0 then zeros = zeros + 1 end
        n = n + 1
      end
    end
    within(zeros / n, 0.5, 5 * 0.5 / math.sqrt(n), "dropped fraction")
    assert.same(x:totable(), infer:totable())
  end)

  it("takes the batch size or the sizes themselves, and saves noise_shape in its config", function()
    local d = L.Dropout{rate = 0.3, noise_shape = {None, 1, 4}}
    local x = T.ones{2, 3, 4}
    local train = run(d, x)
    assert.same({2, 3, 4}, train.shape)
    assert.truthy(json.encode(d:get_config()):find('"noise_shape": [null, 1, 4]', 1, true))
    local d2 = L.Dropout.from_config(d:get_config())
    assert.same(d:get_config(), d2:get_config())
  end)

  it("refuses a noise_shape that does not fit the input", function()
    assert.error_matches(function() run(L.Dropout(0.5, {None, 1}), T.ones{2, 3, 4}) end,
      "noise_shape has 2 sizes for an input of rank 3 (shape (None, 3, 4))", 1, true)
    assert.error_matches(function() run(L.Dropout(0.5, {None, 2, 4}), T.ones{2, 3, 4}) end,
      "noise_shape[2] must be 3, 1 or None for the input of shape (None, 3, 4), got 2", 1, true)
    assert.error_matches(function() L.Dropout(0.5, {None, 0}) end,
      "Dropout: noise_shape[2] must be a size >= 1 or None, got 0", 1, true)
    assert.error_matches(function() L.Dropout(0.5, nil, 42) end,
      "Dropout: a per-layer seed is not supported", 1, true)
  end)
end)

describe("keras.layers.SpatialDropout3D", function()
  it("drops whole channels of a 5-D input in training, one draw per sample and channel", function()
    keras.random.seed(17)
    local x = T.ones{8, 2, 3, 2, 6}
    local train, infer = run(L.SpatialDropout3D(0.5), x)
    local t = train:totable()
    for i = 1, 8 do
      for c = 1, 6 do
        local v = t[i][1][1][1][c]
        assert.is_true(v == 0 or v == 2)
        for _, p in ipairs{{1, 1, 2}, {2, 3, 2}, {2, 2, 1}} do assert.equal(v, t[i][p[1]][p[2]][p[3]][c]) end
      end
    end
    assert.same(x:totable(), infer:totable())
  end)

  it("refuses a 4-D input", function()
    assert.error_matches(function() run(L.SpatialDropout3D(0.5), T.ones{1, 2, 2, 2}) end,
      "expected input with ndim=5 (batch, dim1, dim2, dim3, channels), found ndim=4", 1, true)
  end)
end)

describe("keras.layers.ActivityRegularization", function()
  it("is the identity and adds l1 * sum|y| + l2 * sum y^2 of the whole batch to the loss", function()
    local inp = keras.Input{shape = {2}}
    local out = L.ActivityRegularization{l1 = 0.1, l2 = 0.5}(inp)
    local model = keras.Model(inp, out)
    model:compile{optimizer = keras.optimizers.SGD{lr = 0}, loss = "mse"}
    local x = T{{1, -2}, {0.5, 3}}
    assert.same(x:totable(), model:predict(x):totable())
    -- mse 0; 0.1 * 6.5 + 0.5 * 14.25
    within(model:train_on_batch(x, x), 0.1 * 6.5 + 0.5 * 14.25, 1e-5, "loss")
    within(model:test_on_batch(x, x), 0.1 * 6.5 + 0.5 * 14.25, 1e-5, "loss")
  end)

  it("defaults l1 and l2 to 0", function()
    assert.same({0.0, 0.0}, {L.ActivityRegularization().l1, L.ActivityRegularization().l2})
  end)
end)

describe("the noise layers' gradients in training", function()
  -- y and dsum(y)/dx from one run (the same draw): the noise is a constant
  -- of the graph, so the gradient is 1 (GaussianNoise), the drawn factor
  -- y / x (GaussianDropout) and a where kept, 0 where dropped (AlphaDropout)
  local function y_and_grad(layer, x)
    local inp = keras.Input{shape = {table.unpack(x.shape, 2)}}
    local out = layer(inp)
    local g = K.gradients(K.sum(out), {inp})[1]
    local f = K["function"]({inp, K.learning_phase()}, {out, g})
    local r = f{x, 1}
    return flat(r[1]:totable()), flat(r[2]:totable())
  end
  local x = T{{0.5, -1.5, 2, 0.25, -0.75, 1}}

  it("passes 1 through GaussianNoise", function()
    local _, g = y_and_grad(L.GaussianNoise(1), x)
    assert.same({1, 1, 1, 1, 1, 1}, g)
  end)

  it("passes the drawn factor through GaussianDropout", function()
    keras.random.seed(19)
    local y, g = y_and_grad(L.GaussianDropout(0.4), x)
    local xs = flat(x:totable())
    for i = 1, #xs do within(g[i], y[i] / xs[i], 1e-5, "factor " .. i) end
  end)

  it("passes a where kept and 0 where dropped through AlphaDropout", function()
    keras.random.seed(20)
    local rate = 0.5
    local a = ((1 - rate) * (1 + rate * ALPHA_P ^ 2)) ^ -0.5
    local b = -a * ALPHA_P * rate
    local big = keras.random.uniform({4, 50}, -1, 1)
    local y, g = y_and_grad(L.AlphaDropout(rate), big)
    local xs, kept, dropped = flat(big:totable()), 0, 0
    for i = 1, #xs do
      if math.abs(y[i] - (a * ALPHA_P + b)) < 1e-6 then
        assert.equal(0, g[i])
        dropped = dropped + 1
      else
        within(y[i], a * xs[i] + b, 1e-5, "kept value")
        within(g[i], a, 1e-6, "kept gradient")
        kept = kept + 1
      end
    end
    assert.is_true(kept > 0 and dropped > 0)
  end)
end)

describe("the noise layers in a model with a None length", function()
  it("train and predict at every length (noise shaped like the input, drawn per length)", function()
    keras.random.seed(18)
    local model = keras.Sequential{L.InputLayer{input_shape = {None, 4}}, L.GaussianNoise(0.3),
      L.GaussianDropout(0.2), L.AlphaDropout(0.1), L.Dropout(0.5, {None, 1, None}), L.AlphaDropout(0.2, {None, 1, 4})}
    model:compile{optimizer = "sgd", loss = "mse"}
    for _, len in ipairs{3, 5} do
      local x = keras.random.uniform({4, len, 4}, -1, 1)
      assert.same(x:totable(), model:predict(x):totable())   -- every layer the identity
      local loss = model:train_on_batch(x, x)                 -- noise in training: a positive loss
      assert.is_true(loss > 0.05, "loss at length " .. len .. ": " .. loss)
      assert.equal(0, model:test_on_batch(x, x))
    end
  end)
end)

describe("the noise layers' configs and misuse", function()
  it("round-trip get_config / from_config and model_from_json, .lkm and .h5", function()
    local model = keras.Sequential{
      L.GaussianNoise{0.1, input_shape = {4, 6}, name = "gn"},
      L.GaussianDropout(0.2, {name = "gd"}),
      L.AlphaDropout(0.3, {name = "ad"}),
      L.Dropout(0.25, {None, 1, None}),
      L.ActivityRegularization(0.01, 0.02, {name = "ar"}),
      L.Reshape{{2, 2, 3, 2}},
      L.SpatialDropout3D(0.1, {name = "sd"}),
    }
    local text = model:to_json()
    for _, key in ipairs{'"class_name": "GaussianNoise", "config": {"name": "gn", "trainable": true, '
                           .. '"batch_input_shape": [null, 4, 6], "dtype": "float32", "stddev": 0.1}',
                         '"class_name": "GaussianDropout", "config": {"name": "gd", "trainable": true, '
                           .. '"rate": 0.2}',
                         '"class_name": "AlphaDropout", "config": {"name": "ad", "trainable": true, '
                           .. '"rate": 0.3}',
                         '"config": {"name": "ar", "trainable": true, "l1": 0.01, "l2": 0.02}',
                         '"class_name": "SpatialDropout3D", "config": {"name": "sd", '
                           .. '"trainable": true, "rate": 0.1, "noise_shape": null, "seed": null}'} do
      assert.truthy(text:find(key, 1, true), key .. " in " .. text)
    end
    assert.equal(text, keras.models.model_from_json(text):to_json())
    for _, layer in ipairs(model.layers) do
      local cls = L[layer.class_name]
      assert.same(layer:get_config(), cls.from_config(layer:get_config()):get_config())
    end
    model:compile{optimizer = "sgd", loss = "mse"}
    local x = keras.random.uniform({3, 4, 6}, -1, 1)
    for _, ext in ipairs{"lkm", "h5"} do
      local path = os.tmpname() .. "." .. ext
      model:save(path)
      local m2 = keras.models.load_model(path)
      os.remove(path)
      assert.equal(text, m2:to_json(), ext)
      assert.same(model:predict(x):totable(), m2:predict(x):totable())
    end
  end)

  it("refuses bad rates and stddevs, naming the layer", function()
    for _, c in ipairs{
      {function() L.GaussianNoise(-0.1) end, "GaussianNoise: stddev must be a number >= 0, got -0.1"},
      {function() L.GaussianNoise() end, "GaussianNoise: missing argument 'stddev'"},
      {function() L.GaussianDropout(1) end, "GaussianDropout: rate must be a number in [0, 1), got 1"},
      {function() L.GaussianDropout(-0.5) end, "GaussianDropout: rate must be a number in [0, 1), got -0.5"},
      {function() L.AlphaDropout(1.5) end, "AlphaDropout: rate must be a number in [0, 1), got 1.5"},
      {function() L.AlphaDropout(0.5, nil, 3) end, "AlphaDropout: a per-layer seed is not supported"},
      {function() L.Dropout(-1) end, "Dropout: rate must be a number in [0, 1), got -1"},
      {function() L.SpatialDropout3D(1) end, "SpatialDropout3D: rate must be a number in [0, 1), got 1"},
      {function() L.ActivityRegularization(-1) end, "ActivityRegularization: l1 must be a number >= 0, got -1"},
    } do
      assert.error_matches(c[1], c[2], 1, true)
    end
  end)
end)
