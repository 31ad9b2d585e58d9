-- compile{weighted_metrics=}, the options compile / fit / evaluate / predict
-- refuse rather than ignore, and Keras's fit shuffle = "batch".
-- Expected metric values are worked out by hand in the comments, on a model
-- whose prediction is fixed: softmax(0, log 3) = (0.25, 0.75) for every row.
local keras = require "keras"

local T = keras.tensor
local L = keras.layers

local function near(want, got, what)
  assert.is_true(math.abs(got - want) <= 1e-5 * math.abs(want) + 1e-6,
    string.format("%s: %.9g, expected %.9g", what or "", got, want))
end

local function fixed_model(compile_args)
  local model = keras.Sequential{L.Dense{2, input_dim = 3, activation = "softmax", name = "out"}}
  model:set_weights{T.zeros{3, 2}, T{0, math.log(3)}}
  model:compile(compile_args)
  return model
end

local x = T{{1, 2, 3}, {3, 2, 1}, {0, 1, 0}, {1, 1, 1}}
local y = T{{1, 0}, {0, 1}, {1, 0}, {0, 1}}
-- per sample: acc 0, 1, 0, 1; mse ((0.75^2 + 0.75^2) / 2 =) 0.5625, (0.25^2 =) 0.0625, 0.5625, 0.0625;
-- crossentropy -log 0.25, -log 0.75, -log 0.25, -log 0.75

describe("compile{weighted_metrics = ...}", function()
  it("adds the metrics weighted by sample_weight, named weighted_<name> after the others", function()
    local model = fixed_model{optimizer = "sgd", loss = "categorical_crossentropy", metrics = {"acc"},
                              weighted_metrics = {"acc", "mse"}}
    assert.same({"loss", "acc", "weighted_acc", "weighted_mean_squared_error"}, model.metrics_names)
    local w = T{1, 0, 0, 3}
    -- Keras 2.2.4: mean(score * w) / mean(w != 0), mean(w != 0) = 0.5
    local loss, acc, wacc, wmse = model:evaluate(x, y, {sample_weight = w, verbose = 0})
    near((-math.log(0.25) * 1 + -math.log(0.75) * 3) / 4 / 0.5, loss, "loss")
    near(0.5, acc, "acc")
    near((0 * 1 + 1 * 3) / 4 / 0.5, wacc, "weighted_acc")
    near((0.5625 * 1 + 0.0625 * 3) / 4 / 0.5, wmse, "weighted_mse")
  end)

  it("equals the plain metric without weights", function()
    local model = fixed_model{optimizer = "sgd", loss = "categorical_crossentropy", weighted_metrics = {"mse"}}
    local _, wmse = model:evaluate(x, y, {verbose = 0})
    near((0.5625 + 0.0625) / 2, wmse, "weighted_mse")
  end)

  it("weights by class_weight in fit", function()
    local model = fixed_model{optimizer = keras.optimizers.SGD{lr = 0}, loss = "categorical_crossentropy",
                              metrics = {"acc"}, weighted_metrics = {"acc"}}
    local h = model:fit(x, y, {batch_size = 4, epochs = 1, verbose = 0, class_weight = {[0] = 1, [1] = 2}})
    near(0.5, h.history.acc[1], "acc")
    -- weights 1, 2, 1, 2: mean(score * w) = (2 + 2) / 4, all weights non-zero
    near(1.0, h.history.weighted_acc[1], "weighted_acc")
  end)

  it("prefixes the output name in a model with several outputs", function()
    local inputs = keras.Input{shape = {3}}
    local a, b = L.Dense{2, name = "a"}(inputs), L.Dense{1, name = "b"}(inputs)
    local model = keras.Model{inputs = inputs, outputs = {a, b}}
    model:compile{optimizer = "sgd", loss = "mse", weighted_metrics = {b = {"mae"}}}
    assert.same({"loss", "a_loss", "b_loss", "b_weighted_mean_absolute_error"}, model.metrics_names)
  end)
end)

describe("compile options Keras has but lkeras does not", function()
  it("refuses target_tensors rather than ignoring it", function()
    local model = keras.Sequential{L.Dense{1, input_dim = 2}}
    assert.error_matches(function()
      model:compile{optimizer = "sgd", loss = "mse", target_tensors = {keras.Input{shape = {1}}}}
    end, "compile: target_tensors is not supported by this version of lkeras (give the targets as y to fit)", 1, true)
  end)

  it("refuses the layers' options", function()
    local model = keras.Sequential{L.Dense{1, input_dim = 2}}
    assert.error_matches(function() model:compile{optimizer = "sgd", loss = "mse", name = "m"} end,
      "compile: unknown argument 'name'", 1, true)
  end)
end)

describe("fit, evaluate, predict and the one-batch methods", function()
  local function model1()
    local model = keras.Sequential{L.Dense{1, input_dim = 2}}
    model:compile{optimizer = "sgd", loss = "mse"}
    return model
  end
  local x2, y1 = T{{1, 2}, {3, 4}}, T{{1}, {2}}

  it("refuse options they would ignore, at the caller's line", function()
    local model = model1()
    assert.error_matches(function() model:fit(x2, y1, {verbose = 0, input_shape = {2}}) end,
      "fit: unknown argument 'input_shape'", 1, true)
    assert.error_matches(function() model:fit(x2, y1, {verbose = 0, validation_steps = 2}) end,
      "fit: validation_steps is only used with steps_per_epoch, which this version of lkeras does not support", 1, true)
    assert.error_matches(function() model:fit(x2, y1, {verbose = 0, shuffle = "yes"}) end,
      "fit: shuffle must be true, false or \"batch\", got yes", 1, true)
    assert.error_matches(function() model:fit(x2, y1, {verbose = 0, validation_split = "0.5"}) end,
      "fit: validation_split must be a number in [0, 1), got 0.5", 1, true)
    assert.error_matches(function() model:evaluate(x2, y1, {callbacks = {}}) end,
      "evaluate: unknown argument 'callbacks'", 1, true)
    assert.error_matches(function() model:evaluate(x2, y1, {steps = 1}) end,
      "evaluate: steps is not supported with data arrays (the batches are the data split by batch_size)", 1, true)
    assert.error_matches(function() model:evaluate(x2, y1, {verbose = 3}) end,
      "evaluate: verbose must be 0, 1 or 2, got 3", 1, true)
    assert.error_matches(function() model:predict(x2, {steps = 1}) end,
      "predict: steps is not supported with data arrays (the batches are the data split by batch_size)", 1, true)
    assert.error_matches(function() model:predict(x2, {callbacks = {}}) end,
      "predict: unknown argument 'callbacks'", 1, true)
    assert.error_matches(function() model:predict(x2, {verbose = "yes"}) end,
      "predict: verbose must be 0, 1 or 2, got yes", 1, true)
    assert.error_matches(function() model:train_on_batch(x2, y1, {sample_weights = T{1, 1}}) end,
      "train_on_batch: unknown sample_weight name 'sample_weights'", 1, true)
    assert.error_matches(function() model:test_on_batch(x2, y1, {class_weight = {}}) end,
      "test_on_batch: unknown sample_weight name 'class_weight'", 1, true)
    local ok, err = pcall(function() local h = model:fit(x2, y1, {verbose = 0, nmae = 1}) return h end)
    assert.is_false(ok)
    assert.equal(debug.getinfo(1, "S").short_src, err:match("^([^\n]-):%d+: "))
  end)

  it("take sample_weight as the third argument of train_on_batch and test_on_batch, as Keras", function()
    local model = model1()
    model:set_weights{T{{0}, {0}}, T{0}}
    -- predictions 0: squared errors 1 and 4; weights 0 and 1: mean(se * w) / mean(w != 0) = 2 / 0.5
    near(4, model:test_on_batch(x2, y1, T{0, 1}), "test_on_batch")
    near(4, model:test_on_batch(x2, y1, {0, 1}), "test_on_batch (a list)")
    near(4, model:test_on_batch(x2, y1, {sample_weight = T{0, 1}}), "test_on_batch (options)")
    near(4, model:train_on_batch(x2, y1, T{0, 1}), "train_on_batch")
  end)

  it("print Keras's progress bar in predict with verbose = 1", function()
    local model = model1()
    local out = {}
    local saved = keras._write
    keras._write = function(s) out[#out + 1] = s end
    local ok, err = pcall(model.predict, model, x2, {verbose = 1})
    keras._write = saved
    assert.is_true(ok, tostring(err))
    assert.truthy(table.concat(out):find("2/2 [==============================]", 1, true), table.concat(out))
  end)
end)

describe("fit{shuffle = \"batch\"}", function()
  it("visits whole batches in a random order, the last partial batch last (Keras's _batch_shuffle)", function()
    local xs = keras.random.random{7, 3}
    local ys = keras.random.random{7, 1}
    local function model()
      local m = keras.Sequential{L.Dense{1, input_dim = 3}}
      m:set_weights{T{{0.1}, {-0.2}, {0.3}}, T{0}}
      m:compile{optimizer = keras.optimizers.SGD{lr = 0.1}, loss = "mse"}
      return m
    end
    local a, b = model(), model()
    keras.random.seed(21)
    a:fit(xs, ys, {batch_size = 2, epochs = 1, shuffle = "batch", verbose = 0})
    -- the same order by hand: 3 whole batches permuted, row 7 last
    keras.random.seed(21)
    local perm = keras.random.permutation(3)
    local rows = {}
    for c = 1, 3 do
      local first = math.tointeger(perm:get(c)) * 2
      rows[#rows + 1], rows[#rows + 2] = first + 1, first + 2
    end
    rows[7] = 7
    local idx = T(rows)
    b:fit(xs:take(idx), ys:take(idx), {batch_size = 2, epochs = 1, shuffle = false, verbose = 0})
    for i, w in ipairs(a:get_weights()) do
      assert.same(b:get_weights()[i]:totable(), w:totable())
    end
  end)
end)
