-- keras.layers: the core layers, their call forms, names, weights, nodes.
-- Expected values are worked out by hand (or with plain Lua math) from the
-- Keras 2.2.4 definitions in KERAS_SEMANTICS.md sections 1-2.
local keras = require "keras"
local L = keras.layers
local K = keras.backend
local None = keras.None

local U_ = dofile("tests/lib/spec_util.lua")
local flat = U_.flat

-- every element of tensor `got` within tol of the nested table `want`
local function assert_close(want, got, tol)
  tol = tol or 1e-6
  local g, w = flat(got:totable()), flat(want)
  assert.equal(#w, #g, "number of elements")
  for i = 1, #w do
    if not (math.abs(g[i] - w[i]) <= tol * math.max(1, math.abs(w[i]))) then
      error(string.format("element %d is %.9g, expected %.9g", i, g[i], w[i]), 2)
    end
  end
end

-- a one-layer functional model on inputs of the given shape (without the batch axis)
local function apply(layer, shape, x)
  local inp = keras.Input{shape = shape}
  local model = keras.Model{inputs = inp, outputs = layer(inp)}
  return model:predict(keras.tensor(x))
end

local function map(list, f)
  local out = {}
  for i, v in ipairs(list) do out[i] = f(v) end
  return out
end

local function eye(n)
  local t = keras.tensor.zeros{n, n}
  for i = 1, n do t:set(i, i, 1) end
  return t
end

local function number_of(name, prefix)
  return math.tointeger(tonumber(name:match("^" .. prefix .. "_(%d+)$")))
end

describe("keras.Input", function()
  it("makes a symbolic tensor with an unknown batch dimension from shape", function()
    assert.same({None, 3}, K.int_shape(keras.Input{shape = {3}}))
  end)

  it("takes the shape as its positional argument", function()
    assert.same({None, 4, 2}, K.int_shape(keras.Input({4, 2})))
  end)

  it("fixes the batch dimension with batch_shape", function()
    assert.same({8, 3}, K.int_shape(keras.Input{batch_shape = {8, 3}}))
  end)

  it("names its InputLayer with name", function()
    local x = keras.Input{shape = {3}, name = "pixels"}
    local model = keras.Model{inputs = x, outputs = L.Dense{1}(x)}
    local layer = model:get_layer("pixels")
    assert.equal("InputLayer", layer.class_name)
    assert.same({"pixels"}, model.input_names)
  end)

  it("is also keras.layers.Input", function()
    assert.equal(keras.Input, L.Input)
  end)
end)

describe("keras.layers.InputLayer", function()
  it("is a layer named input_N whose output is a symbolic tensor", function()
    local layer = L.InputLayer{input_shape = {3}}
    assert.equal("InputLayer", layer.class_name)
    assert.truthy(layer.name:match("^input_%d+$"))
    assert.same({None, 3}, K.int_shape(layer.output))
  end)

  it("can start a Sequential model, which then leaves it out of model.layers", function()
    local model = keras.Sequential{L.InputLayer{input_shape = {3}}, L.Dense{2}}
    assert.equal(1, #model.layers)
    assert.same({5, 2}, model:predict(keras.tensor.ones{5, 3}).shape)
  end)
end)

describe("keras.layers.Dense", function()
  it("maps (batch, 20) to (batch, 64)", function()
    local model = keras.Sequential{L.Dense{64, input_dim = 20}}
    assert.same({3, 64}, model:predict(keras.tensor.zeros{3, 20}).shape)
  end)

  it("computes dot(x, kernel) + bias with the kernel laid out (in, units)", function()
    local dense = L.Dense{2}
    local inp = keras.Input{shape = {3}}
    local model = keras.Model{inputs = inp, outputs = dense(inp)}
    assert.same({3, 2}, dense:get_weights()[1].shape)
    dense:set_weights{keras.tensor{{1, 2}, {3, 4}, {5, 6}}, keras.tensor{10, 20}}
    local y = model:predict(keras.tensor{{1, 2, 3}, {-1, 0, 1}})
    -- row 1: (1+6+15, 2+8+18) + (10, 20); row 2: (-1+5, -2+6) + (10, 20)
    assert.same({{32, 48}, {14, 24}}, y:totable())
  end)

  it("accepts Dense(64, {activation = 'relu'}) and Dense{64, activation = 'relu'} alike", function()
    local a = L.Dense(64, {activation = "relu"})
    local b = L.Dense{64, activation = "relu"}
    assert.equal(64, a.units)
    assert.equal(64, b.units)
    assert.equal("relu", a:get_config().activation)
    assert.equal("relu", b:get_config().activation)
  end)

  it("applies its activation", function()
    local dense = L.Dense{1, activation = "relu", weights = {keras.tensor{{1}}, keras.tensor{0}}}
    assert.same({{0}, {2}}, apply(dense, {1}, {{-3}, {2}}):totable())
  end)

  it("works on the last axis of a rank-3 input", function()
    local y = apply(L.Dense{5}, {3, 4}, keras.tensor.ones{2, 3, 4})
    assert.same({2, 3, 5}, y.shape)
  end)

  it("has only a kernel with use_bias = false", function()
    local dense = L.Dense{4, use_bias = false}
    apply(dense, {3}, {{1, 2, 3}})
    assert.equal(1, #dense:get_weights())
    assert.equal(12, dense:count_params())
  end)

  it("counts (in + 1) * units parameters", function()
    local dense = L.Dense{64, input_dim = 784}
    keras.Sequential{dense}
    assert.equal(50240, dense:count_params())
  end)
end)

describe("keras.layers.Activation", function()
  local xs = {-2, -0.5, 0, 0.5, 3}
  local function exp(v) return math.exp(v) end
  local SELU_ALPHA, SELU_SCALE = 1.6732632423543772848170429916717, 1.0507009873554804934193349852946
  local softmax_sum = 0
  for _, v in ipairs(xs) do softmax_sum = softmax_sum + exp(v) end
  local expected = {
    relu = function(v) return math.max(v, 0) end,
    sigmoid = function(v) return 1 / (1 + exp(-v)) end,
    hard_sigmoid = function(v) return math.min(math.max(0.2 * v + 0.5, 0), 1) end,
    softmax = function(v) return exp(v) / softmax_sum end,
    tanh = function(v) return (exp(2 * v) - 1) / (exp(2 * v) + 1) end,
    linear = function(v) return v end,
    elu = function(v) return v > 0 and v or exp(v) - 1 end,
    selu = function(v) return SELU_SCALE * (v > 0 and v or SELU_ALPHA * (exp(v) - 1)) end,
    softplus = function(v) return math.log(1 + exp(v)) end,
    softsign = function(v) return v / (1 + math.abs(v)) end,
    exponential = function(v) return exp(v) end,
  }
  for _, name in ipairs{"relu", "sigmoid", "hard_sigmoid", "softmax", "tanh", "linear", "elu", "selu",
                        "softplus", "softsign", "exponential"} do
    it("computes " .. name .. " by name", function()
      local y = apply(L.Activation(name), {5}, {xs})
      assert_close({map(xs, expected[name])}, y)
    end)
  end

  it("accepts a Lua function of K ops", function()
    local y = apply(L.Activation(function(x) return K.square(x) end), {5}, {xs})
    assert_close({{4, 0.25, 0, 0.25, 9}}, y)
  end)

  it("takes its name as a keyword too", function()
    local y = apply(L.Activation{activation = "relu"}, {5}, {xs})
    assert_close({{0, 0, 0, 0.5, 3}}, y)
  end)
end)

describe("keras.layers.Dropout", function()
  -- x = ones -> Dense(identity, frozen by lr = 0) -> Dropout(rate)
  local n, batch = 100, 20
  local function model_with(rate, loss)
    local model = keras.Sequential{
      L.Dense{n, input_dim = n, use_bias = false, weights = {eye(n)}},
      L.Dropout(rate),
    }
    model:compile{optimizer = keras.optimizers.SGD{lr = 0}, loss = loss}
    return model
  end

  it("is the identity in predict", function()
    local model = model_with(0.5, "mse")
    local x = keras.random.uniform({4, n}, -1, 1)
    assert.same(x:totable(), model:predict(x):totable())
  end)

  it("is the identity in test_on_batch", function()
    local model = model_with(0.2, "mse")
    -- (1 - 0.625)^2 for every unit
    assert.equal(0.140625, model:test_on_batch(keras.tensor.ones{batch, n}, keras.tensor.full({batch, n}, 0.625)))
  end)

  it("zeroes units and scales the kept ones by 1 / (1 - rate) in training", function()
    local model = model_with(0.2, "mse")
    -- every unit is 0 or 1/0.8 = 1.25; both are 0.625 away from 0.625, so the
    -- loss is exactly 0.625^2 whichever units are dropped
    assert.equal(0.390625, model:train_on_batch(keras.tensor.ones{batch, n}, keras.tensor.full({batch, n}, 0.625)))
  end)

  it("keeps about 1 - rate of the units in training", function()
    local model = model_with(0.5, "mae")
    -- mean(|unit|) = kept fraction * 2; 2000 units: one standard deviation is 0.022
    local loss = model:train_on_batch(keras.tensor.ones{batch, n}, keras.tensor.zeros{batch, n})
    assert.is_true(math.abs(loss - 1) < 0.1, "mean of the dropped-out units: " .. loss)
  end)
end)

describe("keras.layers.Flatten", function()
  it("flattens channels_last (h, w, c) in row-major order", function()
    local x = keras.tensor.arange(12):reshape{1, 2, 3, 2}
    local layer = L.Flatten()
    local y = apply(layer, {2, 3, 2}, x)
    assert.same({{0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11}}, y:totable())
    assert.same({None, 12}, layer.output_shape)
  end)
end)

describe("keras.layers.Reshape", function()
  it("reshapes row-major to the target shape", function()
    local y = apply(L.Reshape{{3, 2}}, {6}, keras.tensor.arange(6):reshape{1, 6})
    assert.same({{{0, 1}, {2, 3}, {4, 5}}}, y:totable())
  end)

  it("infers a -1 dimension", function()
    local layer = L.Reshape({-1, 2})
    local y = apply(layer, {6}, keras.tensor.arange(12):reshape{2, 6})
    assert.same({2, 3, 2}, y.shape)
    assert.same({None, 3, 2}, layer.output_shape)
  end)

  it("takes the target shape positionally, in one table, or as target_shape", function()
    for _, layer in ipairs{L.Reshape({3, 2}), L.Reshape{{3, 2}}, L.Reshape{target_shape = {3, 2}}} do
      assert.same({None, 3, 2}, K.int_shape(layer(keras.Input{shape = {6}})))
    end
  end)
end)

describe("keras.layers.Permute", function()
  it("swaps the non-batch axes with dims {2, 1}", function()
    local y = apply(L.Permute({2, 1}), {2, 3}, keras.tensor.arange(6):reshape{1, 2, 3})
    assert.same({{{0, 3}, {1, 4}, {2, 5}}}, y:totable())
  end)
end)

describe("keras.layers.RepeatVector", function()
  it("repeats a (batch, d) input n times into (batch, n, d)", function()
    local y = apply(L.RepeatVector(3), {2}, {{1, 2}, {3, 4}})
    assert.same({{{1, 2}, {1, 2}, {1, 2}}, {{3, 4}, {3, 4}, {3, 4}}}, y:totable())
  end)
end)

describe("keras.layers.Lambda", function()
  it("wraps a Lua function of symbolic tensors", function()
    local y = apply(L.Lambda(function(x) return x * 2 + 1 end), {2}, {{1, 2}})
    assert.same({{3, 5}}, y:totable())
  end)

  it("passes arguments to the function", function()
    local layer = L.Lambda(function(x, args) return x * args.k end, {arguments = {k = 3}})
    assert.same({{3, 6}}, apply(layer, {2}, {{1, 2}}):totable())
  end)
end)

describe("keras.layers.LeakyReLU", function()
  it("has a slope of 0.3 below zero by default", function()
    assert_close({{-0.6, -0.15, 0, 0.5, 3}}, apply(L.LeakyReLU(), {5}, {{-2, -0.5, 0, 0.5, 3}}))
  end)

  it("takes alpha", function()
    assert_close({{-0.2, -0.05, 0, 0.5, 3}}, apply(L.LeakyReLU{alpha = 0.1}, {5}, {{-2, -0.5, 0, 0.5, 3}}))
  end)
end)

describe("keras.layers.ELU", function()
  it("computes alpha * (exp(x) - 1) below zero, alpha = 1 by default", function()
    local xs = {-2, -0.5, 0, 0.5, 3}
    assert_close({map(xs, function(v) return v > 0 and v or math.exp(v) - 1 end)}, apply(L.ELU(), {5}, {xs}))
    assert_close({map(xs, function(v) return v > 0 and v or 0.5 * (math.exp(v) - 1) end)},
      apply(L.ELU(0.5), {5}, {xs}))
  end)
end)

describe("keras.layers.PReLU", function()
  it("starts as relu (alpha initialised to zeros, one per unit)", function()
    local layer = L.PReLU()
    local y = apply(layer, {5}, {{-2, -0.5, 0, 0.5, 3}})
    assert_close({{0, 0, 0, 0.5, 3}}, y)
    assert.same({5}, layer:get_weights()[1].shape)
  end)

  it("uses a learned slope per unit", function()
    local layer = L.PReLU()
    apply(layer, {3}, {{0, 0, 0}})
    layer:set_weights{keras.tensor{0.1, 0.2, 0.3}}
    local inp = keras.Input{shape = {3}}
    local model = keras.Model{inputs = inp, outputs = layer(inp)}
    assert_close({{-0.1, -0.4, 3}}, model:predict(keras.tensor{{-1, -2, 3}}))
  end)

  it("shares alpha along shared_axes", function()
    local layer = L.PReLU{shared_axes = {1}}
    apply(layer, {2, 3}, keras.tensor.zeros{1, 2, 3})
    assert.same({1, 3}, layer:get_weights()[1].shape)
  end)
end)

describe("keras.layers.ThresholdedReLU", function()
  it("keeps x where x > theta (1.0 by default) and gives 0 elsewhere", function()
    assert_close({{0, 0, 0, 1.5, 3}}, apply(L.ThresholdedReLU(), {5}, {{-2, 0.5, 1, 1.5, 3}}))
    assert_close({{0, 0.5, 1, 1.5, 3}}, apply(L.ThresholdedReLU{theta = 0.4}, {5}, {{-2, 0.5, 1, 1.5, 3}}))
  end)

  -- the layer runs the C op thresholded_relu (docs/adding_an_op.md); the
  -- expected values below are Keras's formula evaluated in Lua's doubles
  it("matches x > theta ? x : 0 on random inputs, the ties x == theta giving 0", function()
    keras.random.seed(7)
    local x = keras.random.uniform({5, 8}, -2, 3)
    x:set(1, 1, 0.75)
    x:set(2, 3, 0.75)
    for _, theta in ipairs{0.75, 1.0, 0} do
      local want = {}
      for i, row in ipairs(x:totable()) do
        want[i] = {}
        for j, v in ipairs(row) do want[i][j] = v > theta and v or 0 end
      end
      assert_close(want, apply(L.ThresholdedReLU(theta), {8}, x), 0)
    end
  end)

  it("back-propagates dy where x > theta and 0 elsewhere (one SGD step against float64)", function()
    local xs = {{1.0, -0.5, 2.0}, {0.3, 0.8, -1.2}}
    local w = {{0.4, -0.7}, {1.1, 0.25}, {0.6, 0.9}}
    local ys = {{0.5, 1.0}, {-0.25, 0.75}}
    local theta, lr = 0.5, 0.1
    local model = keras.Sequential{L.Dense{2, use_bias = false, input_shape = {3}}, L.ThresholdedReLU{theta}}
    model.layers[1]:set_weights{keras.tensor(w)}
    model:compile{optimizer = keras.optimizers.SGD{lr = lr}, loss = "mse"}
    -- float64: z = x w, a = z > theta ? z : 0, loss = mean((a - y)^2), dz = 2 (a - y) / 4 where z > theta
    local dw = {{0, 0}, {0, 0}, {0, 0}}
    local loss = 0
    for n = 1, 2 do
      for u = 1, 2 do
        local z = 0
        for k = 1, 3 do z = z + xs[n][k] * w[k][u] end
        assert.is_true(math.abs(z - theta) > 0.05)   -- away from the kink
        local a = z > theta and z or 0
        loss = loss + (a - ys[n][u]) ^ 2 / 4
        local dz = z > theta and 2 * (a - ys[n][u]) / 4 or 0
        for k = 1, 3 do dw[k][u] = dw[k][u] + xs[n][k] * dz end
      end
    end
    local got_loss = model:train_on_batch(keras.tensor(xs), keras.tensor(ys))
    assert.is_true(math.abs(got_loss - loss) <= 1e-6 * math.max(1, loss))
    local want = {}
    for k = 1, 3 do want[k] = {w[k][1] - lr * dw[k][1], w[k][2] - lr * dw[k][2]} end
    assert_close(want, model.layers[1]:get_weights()[1], 1e-6)
  end)

  it("keeps theta through to_json and model_from_json", function()
    local model = keras.Sequential{L.ThresholdedReLU{theta = 0.25, input_shape = {3}}}
    local back = keras.models.model_from_json(model:to_json())
    assert.equal(0.25, back.layers[1].theta)
    assert_close({{0, 0.5, 0}}, back:predict(keras.tensor{{0.25, 0.5, -1}}), 0)
  end)

  it("refuses a negative or non-numeric theta", function()
    assert.error_matches(function() L.ThresholdedReLU{theta = -1} end,
      "ThresholdedReLU: theta must be a number >= 0, got -1", 1, true)
  end)
end)

describe("keras.layers.BatchNormalization", function()
  local EPS = 1e-3
  local x = {{1, 2}, {3, 6}, {5, 1}, {7, 3}}

  it("holds gamma, beta, moving_mean, moving_variance, the last two not trainable", function()
    local bn = L.BatchNormalization()
    apply(bn, {2}, x)
    local w = bn:get_weights()
    assert.equal(4, #w)
    assert.same({{1, 1}, {0, 0}, {0, 0}, {1, 1}}, map(w, function(t) return t:totable() end))
    assert.equal(2, #bn.trainable_weights)
    assert.equal(2, #bn.non_trainable_weights)
    assert.equal(8, bn:count_params())
  end)

  it("normalises with the moving statistics at inference", function()
    local bn = L.BatchNormalization()
    apply(bn, {2}, x)
    local gamma, beta, mean, var = {2, 0.5}, {1, -1}, {3, 2}, {4, 0.25}
    bn:set_weights(map({gamma, beta, mean, var}, keras.tensor))
    local inp = keras.Input{shape = {2}}
    local model = keras.Model{inputs = inp, outputs = bn(inp)}
    local want = {}
    for i, row in ipairs(x) do
      want[i] = {}
      for c = 1, 2 do want[i][c] = gamma[c] * (row[c] - mean[c]) / math.sqrt(var[c] + EPS) + beta[c] end
    end
    assert_close(want, model:predict(keras.tensor(x)), 1e-5)
  end)

  it("normalises with the batch mean and biased variance in training", function()
    local model = keras.Sequential{L.BatchNormalization{input_shape = {2}}}
    model:compile{optimizer = keras.optimizers.SGD{lr = 0}, loss = "mse"}
    -- columns {1,3,5,7} and {2,6,1,3}: biased variances 5 and 3.5; the mse
    -- against 0 of each normalised column is var / (var + eps)
    local want = (5 / (5 + EPS) + 3.5 / (3.5 + EPS)) / 2
    local loss = model:train_on_batch(keras.tensor(x), keras.tensor.zeros{4, 2})
    assert.is_true(math.abs(loss - want) < 1e-6, "loss " .. loss .. ", expected " .. want)
  end)

  it("updates the moving statistics after a training step as Keras does", function()
    local bn = L.BatchNormalization{input_shape = {2}}
    local model = keras.Sequential{bn}
    model:compile{optimizer = keras.optimizers.SGD{lr = 0}, loss = "mse"}
    model:train_on_batch(keras.tensor(x), keras.tensor.zeros{4, 2})
    -- m = 0.99 * m + 0.01 * batch_mean; v = 0.99 * v + 0.01 * var * n / (n - (1 + eps))
    local n = 4
    local factor = n / (n - (1 + EPS))
    local w = bn:get_weights()
    assert_close({0.99 * 0 + 0.01 * 4, 0.99 * 0 + 0.01 * 3}, w[3])
    assert_close({0.99 * 1 + 0.01 * 5 * factor, 0.99 * 1 + 0.01 * 3.5 * factor}, w[4])
  end)
end)

describe("keras.layers merge layers", function()
  local xa, xb = {{1, 5, -3}}, {{4, 2, -1}}
  local function merged(layer_or_fn)
    local a, b = keras.Input{shape = {3}}, keras.Input{shape = {3}}
    local out = layer_or_fn({a, b})
    local model = keras.Model{inputs = {a, b}, outputs = out}
    return model:predict{keras.tensor(xa), keras.tensor(xb)}:totable()
  end
  local cases = {
    {"Add", "add", {{5, 7, -4}}},
    {"Subtract", "subtract", {{-3, 3, -2}}},
    {"Multiply", "multiply", {{4, 10, 3}}},
    {"Average", "average", {{2.5, 3.5, -2}}},
    {"Maximum", "maximum", {{4, 5, -1}}},
    {"Minimum", "minimum", {{1, 2, -3}}},
    {"Concatenate", "concatenate", {{1, 5, -3, 4, 2, -1}}},
  }
  for _, c in ipairs(cases) do
    it(c[1] .. " and keras.layers." .. c[2] .. " merge two inputs elementwise or along the last axis", function()
      assert.same(c[3], merged(L[c[1]]()))
      assert.same(c[3], merged(L[c[2]]))
    end)
  end

  it("keras.layers.concatenate{a, b} takes the list and options in one table", function()
    local a, b = keras.Input{shape = {2, 3}}, keras.Input{shape = {2, 1}}
    assert.same({None, 2, 4}, K.int_shape(L.concatenate{a, b}))
    local c, d = keras.Input{shape = {2, 3}}, keras.Input{shape = {1, 3}}
    assert.same({None, 3, 3}, K.int_shape(L.concatenate{c, d, axis = 1}))
  end)

  it("Concatenate joins along axis", function()
    local a, b = keras.Input{shape = {2}}, keras.Input{shape = {2}}
    local model = keras.Model{inputs = {a, b}, outputs = L.Concatenate{axis = 1}({a, b})}
    assert.same({{1, 2, 3, 4}}, model:predict{keras.tensor{{1, 2}}, keras.tensor{{3, 4}}}:totable())
  end)

  it("Add sums more than two inputs", function()
    local a, b, c = keras.Input{shape = {2}}, keras.Input{shape = {2}}, keras.Input{shape = {2}}
    local model = keras.Model{inputs = {a, b, c}, outputs = L.add{a, b, c}}
    local y = model:predict{keras.tensor{{1, 2}}, keras.tensor{{10, 20}}, keras.tensor{{100, 200}}}
    assert.same({{111, 222}}, y:totable())
  end)
end)

describe("first-layer shape arguments", function()
  local function input_shape_of(layer)
    return K.int_shape(keras.Sequential{layer}.inputs[1])
  end

  it("input_shape leaves the batch dimension unknown", function()
    assert.same({None, 3}, input_shape_of(L.Dense{2, input_shape = {3}}))
  end)

  it("input_dim is input_shape = {input_dim}", function()
    assert.same({None, 3}, input_shape_of(L.Dense{2, input_dim = 3}))
  end)

  it("batch_size with input_shape fixes the batch dimension", function()
    assert.same({5, 3}, input_shape_of(L.Dense{2, input_shape = {3}, batch_size = 5}))
  end)

  it("batch_input_shape gives the whole shape", function()
    assert.same({4, 3}, input_shape_of(L.Dense{2, batch_input_shape = {4, 3}}))
    assert.same({None, 3}, input_shape_of(L.Dense{2, batch_input_shape = {None, 3}}))
  end)

  it("shows as the layer's input_shape before the layer is called", function()
    assert.same({None, 7}, L.Dense{2, input_dim = 7}.input_shape)
  end)
end)

describe("layer names", function()
  it("are snake_case class names with a per-class counter that only increases", function()
    local a, b = L.Dense(1), L.Dense(1)
    local na, nb = number_of(a.name, "dense"), number_of(b.name, "dense")
    assert.is_not_nil(na, a.name)
    assert.equal(na + 1, nb)
    local act = L.Activation("relu")
    assert.is_not_nil(number_of(act.name, "activation"), act.name)
    assert.equal(nb + 1, number_of(L.Dense(1).name, "dense"))
  end)

  it("follow Keras's snake_case for multi-word classes", function()
    assert.truthy(L.BatchNormalization().name:match("^batch_normalization_%d+$"))
    assert.truthy(L.LeakyReLU().name:match("^leaky_re_lu_%d+$"))
    assert.truthy(L.PReLU().name:match("^p_re_lu_%d+$"))
    assert.truthy(L.ThresholdedReLU().name:match("^thresholded_re_lu_%d+$"))
    assert.truthy(L.RepeatVector(2).name:match("^repeat_vector_%d+$"))
    assert.truthy(L.ELU().name:match("^elu_%d+$"))
  end)

  it("take an explicit name", function()
    assert.equal("my_dense", L.Dense{1, name = "my_dense"}.name)
  end)

  it("start at dense_1 in a fresh Lua state", function()
    local cpath = package.cpath .. ";build/?.so"
    local code = "local k = require 'keras'; io.write(k.layers.Dense(1).name, ' ', k.layers.Dense(1).name)"
    local p = assert(io.popen(string.format("LUA_CPATH=%q lua5.4 -e %q 2>&1", cpath, code)))
    local out = p:read("a")
    p:close()
    assert.equal("dense_1 dense_2", out)
  end)
end)

describe("Layer.trainable", function()
  local x, y = keras.tensor{{1, 2}, {3, 4}}, keras.tensor{{1}, {0}}

  it("= false at construction keeps the layer's weights out of training", function()
    local frozen = L.Dense{3, input_dim = 2, trainable = false}
    local model = keras.Sequential{frozen, L.Dense{1}}
    model:compile{optimizer = keras.optimizers.SGD{lr = 0.1}, loss = "mse"}
    local before = map(frozen:get_weights(), function(t) return t:totable() end)
    local other = model.layers[2]:get_weights()[1]:totable()
    model:train_on_batch(x, y)
    assert.same(before, map(frozen:get_weights(), function(t) return t:totable() end))
    assert.are_not.same(other, model.layers[2]:get_weights()[1]:totable())
  end)

  it("takes effect at the next compile, as in Keras", function()
    local first = L.Dense{3, input_dim = 2}
    local model = keras.Sequential{first, L.Dense{1}}
    model:compile{optimizer = keras.optimizers.SGD{lr = 0.1}, loss = "mse"}
    first.trainable = false
    local w0 = first:get_weights()[1]:totable()
    model:train_on_batch(x, y)
    local w1 = first:get_weights()[1]:totable()
    assert.are_not.same(w0, w1)   -- still trained: compiled before the change
    model:compile{optimizer = keras.optimizers.SGD{lr = 0.1}, loss = "mse"}
    model:train_on_batch(x, y)
    assert.same(w1, first:get_weights()[1]:totable())
  end)

  it("leaves a model with every layer frozen trainable, as Keras does: the loss is computed, nothing moves", function()
    local frozen = L.Dense{1, input_dim = 2, kernel_initializer = "ones", trainable = false}
    local model = keras.Sequential{frozen}
    model:compile{optimizer = keras.optimizers.SGD{lr = 0.1}, loss = "mse"}
    -- outputs 3 and 7 against 1 and 0: (4 + 49) / 2
    assert.equal(26.5, model:train_on_batch(x, y))
    assert.same({{1}, {1}}, frozen:get_weights()[1]:totable())
  end)

  it("moves the layer's weights to the non-trainable count", function()
    local frozen = L.Dense{3, input_dim = 2, trainable = false}
    local model = keras.Sequential{frozen, L.Dense{1}}
    assert.equal(4, #model.weights)
    assert.equal(2, #model.trainable_weights)
    assert.equal(0, #frozen.trainable_weights)
    assert.equal(2, #frozen.non_trainable_weights)
  end)
end)

describe("keras.initializers by name", function()
  it("glorot_uniform draws the Dense kernel from U(-sqrt(6 / (fan_in + fan_out)), +...)", function()
    local dense = L.Dense{200, input_dim = 300}
    keras.Sequential{dense}
    local w = dense:get_weights()[1]
    local limit = math.sqrt(6 / (300 + 200))
    local hi, lo = w:max(), w:min()
    assert.is_true(hi <= limit and lo >= -limit, string.format("range [%g, %g], limit %g", lo, hi, limit))
    assert.is_true(hi > 0.99 * limit and lo < -0.99 * limit, string.format("range [%g, %g], limit %g", lo, hi, limit))
    -- U(-l, l) has variance l^2 / 3
    local var = (w * w):mean()
    assert.is_true(math.abs(var / (limit * limit / 3) - 1) < 0.03, "variance " .. var)
  end)

  it("zeros is the default bias", function()
    local dense = L.Dense{50, input_dim = 10}
    keras.Sequential{dense}
    assert.same(keras.tensor.zeros{50}:totable(), dense:get_weights()[2]:totable())
  end)

  it("he_normal is a normal truncated at two deviations with standard deviation sqrt(2 / fan_in)", function()
    local dense = L.Dense{250, input_dim = 400, kernel_initializer = "he_normal"}
    keras.Sequential{dense}
    local w = dense:get_weights()[1]
    local target = math.sqrt(2 / 400)
    local m = w:mean()
    local sd = math.sqrt(((w - m) * (w - m)):mean())
    assert.is_true(math.abs(m) < 0.002, "mean " .. m)
    assert.is_true(math.abs(sd / target - 1) < 0.03, "standard deviation " .. sd .. ", expected " .. target)
    -- the underlying normal has stddev target / 0.8796...; nothing beyond 2 of them
    local bound = 2 * target / 0.87962566103423978
    assert.is_true(w:abs():max() <= bound * (1 + 1e-6))
  end)

  it("ones and zeros fill the kernel and bias", function()
    local dense = L.Dense{2, input_dim = 2, kernel_initializer = "ones", bias_initializer = "ones"}
    keras.Sequential{dense}
    assert.same({{1, 1}, {1, 1}}, dense:get_weights()[1]:totable())
    assert.same({1, 1}, dense:get_weights()[2]:totable())
  end)
end)

describe("the weights constructor option", function()
  it("sets the weights when the layer is built", function()
    local dense = L.Dense{2, input_dim = 2, weights = {keras.tensor{{1, 2}, {3, 4}}, keras.tensor{5, 6}}}
    local model = keras.Sequential{dense}
    assert.same({{1, 2}, {3, 4}}, dense:get_weights()[1]:totable())
    assert.same({{1 + 3 + 5, 2 + 4 + 6}}, model:predict(keras.tensor{{1, 1}}):totable())
  end)

  it("accepts nested Lua tables", function()
    local dense = L.Dense{2, input_dim = 2, weights = {{{1, 2}, {3, 4}}, {5, 6}}}
    keras.Sequential{dense}
    assert.same({5, 6}, dense:get_weights()[2]:totable())
  end)
end)

describe("Layer:get_weights and Layer:set_weights", function()
  it("get_weights returns copies", function()
    local dense = L.Dense{2, input_dim = 2, kernel_initializer = "zeros"}
    keras.Sequential{dense}
    local w = dense:get_weights()
    w[1]:set(1, 1, 100)
    assert.equal(0, dense:get_weights()[1]:get(1, 1))
  end)

  it("set_weights replaces the weights in Keras order", function()
    local dense = L.Dense{2, input_dim = 3}
    keras.Sequential{dense}
    dense:set_weights{keras.tensor{{1, 2}, {3, 4}, {5, 6}}, {7, 8}}
    assert.same({{{1, 2}, {3, 4}, {5, 6}}, {7, 8}}, map(dense:get_weights(), function(t) return t:totable() end))
  end)

  it("set_weights rejects a wrong shape with Keras's message", function()
    local dense = L.Dense{2, input_dim = 2, name = "shape_check"}
    keras.Sequential{dense}
    assert.error_matches(function() dense:set_weights{keras.tensor{{1, 2, 3}, {3, 4, 5}}, keras.tensor{5, 6}} end,
      "Layer weight shape (2, 2) not compatible with provided weight shape (2, 3) (layer shape_check, weight kernel)",
      1, true)
  end)
end)

describe("Layer nodes", function()
  it("layer.output, input, output_shape and input_shape describe the one call", function()
    local dense = L.Dense{2}
    local inp = keras.Input{shape = {3}}
    local out = dense(inp)
    assert.equal(out, dense.output)
    assert.equal(inp, dense.input)
    assert.same({None, 2}, dense.output_shape)
    assert.same({None, 3}, dense.input_shape)
  end)

  it("layer.output names get_output_at when the layer has several nodes", function()
    local dense = L.Dense{2, name = "shared_dense"}
    dense(keras.Input{shape = {3}})
    dense(keras.Input{shape = {3}})
    assert.error_matches(function() return dense.output end,
      'Layer shared_dense has multiple inbound nodes, hence the notion of "layer output" is ill-defined. '
      .. 'Use `get_output_at(node_index)` instead.', 1, true)
  end)

  it("get_output_at, get_input_at and get_output_shape_at count nodes from 1", function()
    local dense = L.Dense{2}
    local a, b = keras.Input{shape = {3}}, keras.Input{shape = {3}}
    local oa, ob = dense(a), dense(b)
    assert.equal(oa, dense:get_output_at(1))
    assert.equal(ob, dense:get_output_at(2))
    assert.equal(b, dense:get_input_at(2))
    assert.same({None, 2}, dense:get_output_shape_at(2))
  end)

  it("layer.output_shape of a layer shared on inputs of one shape is that shape, as in Keras", function()
    local dense = L.Dense{2}
    dense(keras.Input{shape = {3}})
    dense(keras.Input{shape = {3}})
    assert.same({None, 2}, dense.output_shape)
    assert.same({None, 3}, dense.input_shape)
  end)

  it("shares the weights between the calls", function()
    local dense = L.Dense{1, kernel_initializer = "ones"}
    local a, b = keras.Input{shape = {2}}, keras.Input{shape = {2}}
    local model = keras.Model{inputs = {a, b}, outputs = L.add{dense(a), dense(b)}}
    assert.equal(3, model:count_params())
    assert.same({{10}}, model:predict{keras.tensor{{1, 2}}, keras.tensor{{3, 4}}}:totable())
  end)
end)
