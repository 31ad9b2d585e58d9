-- trainable_weights / non_trainable_weights of layers and models (Keras
-- 2.2.4's Layer and Network properties) and Model:get_layer by name or index.
local keras = require "keras"

local L = keras.layers

-- the positions (in `all`) of the tensors of `list`, by identity
local function positions(all, list)
  local out = {}
  for i, t in ipairs(list) do
    out[i] = false
    for k, a in ipairs(all) do
      if rawequal(a, t) then out[i] = k end
    end
  end
  return out
end

describe("model.non_trainable_weights", function()
  it("holds BatchNormalization's moving statistics, and trainable_weights excludes them", function()
    local bn = L.BatchNormalization()
    local model = keras.Sequential{L.Dense{3, input_dim = 2}, bn, L.Dense{1}}
    local all = model.weights
    -- kernel, bias, gamma, beta, moving_mean, moving_variance, kernel, bias
    assert.equal(8, #all)
    assert.same({5, 6}, positions(all, model.non_trainable_weights))
    assert.same({1, 2, 3, 4, 7, 8}, positions(all, model.trainable_weights))
    assert.same({1, 1, 1}, model.non_trainable_weights[2]:totable())   -- moving_variance starts at ones
    assert.same({bn.weights[3], bn.weights[4]}, bn.non_trainable_weights)
  end)

  it("holds a frozen layer's weights, trainable ones first", function()
    local frozen = L.Dense{3, input_dim = 2, trainable = false}
    local model = keras.Sequential{frozen, L.Dense{1}}
    assert.same({1, 2}, positions(model.weights, model.non_trainable_weights))
    assert.same({3, 4}, positions(model.weights, model.trainable_weights))
    assert.same({}, frozen.trainable_weights)
    assert.equal(2, #frozen.non_trainable_weights)
  end)

  it("follows a layer frozen after the model is built", function()
    local bn = L.BatchNormalization()
    local inputs = keras.Input{shape = {2}}
    local model = keras.Model{inputs = inputs, outputs = L.Dense{1}(bn(inputs))}
    bn.trainable = false
    -- the BatchNormalization's gamma, beta, moving_mean, moving_variance, then nothing of Dense
    assert.same({1, 2, 3, 4}, positions(model.weights, model.non_trainable_weights))
    assert.same({5, 6}, positions(model.weights, model.trainable_weights))
    assert.same({1, 2, 3, 4}, positions(bn.weights, bn.non_trainable_weights))
  end)

  it("looks inside a model used as a layer, frozen or not", function()
    local inner = keras.Sequential{L.Dense{2, input_dim = 2}, L.BatchNormalization()}
    local outer = keras.Sequential{inner, L.Dense{1}}
    -- inner: kernel, bias, gamma, beta, moving_mean, moving_variance; outer Dense: kernel, bias
    assert.same({5, 6}, positions(outer.weights, outer.non_trainable_weights))
    inner.trainable = false
    assert.same({1, 2, 3, 4, 5, 6}, positions(outer.weights, outer.non_trainable_weights))
    assert.same({7, 8}, positions(outer.weights, outer.trainable_weights))
  end)

  it("holds every weight of a frozen model, which has no trainable weights", function()
    local model = keras.Sequential{L.Dense{3, input_dim = 2}, L.BatchNormalization()}
    model.trainable = false
    assert.same({}, model.trainable_weights)
    -- Keras: the layers' trainable weights, then their non-trainable ones
    assert.same({1, 2, 3, 4, 5, 6}, positions(model.weights, model.non_trainable_weights))
  end)

  it("is what compile trains: frozen weights do not move in fit", function()
    keras.random.seed(3)
    local frozen = L.Dense{3, input_dim = 2, trainable = false}
    local model = keras.Sequential{frozen, L.BatchNormalization(), L.Dense{1}}
    model:compile{optimizer = keras.optimizers.SGD{lr = 0.1}, loss = "mse"}
    local before = model:get_weights()
    model:fit(keras.random.random{16, 2}, keras.random.random{16, 1}, {epochs = 1, batch_size = 8, verbose = 0})
    local after = model:get_weights()
    assert.equal(0, (after[1] - before[1]):abs():max())
    assert.equal(0, (after[2] - before[2]):abs():max())
    assert.is_true((after[7] - before[7]):abs():max() > 0)
    -- the moving statistics move (by the layer's update, not the optimizer)
    assert.is_true((after[5] - before[5]):abs():max() > 0)
  end)
end)

describe("Model:get_layer by index", function()
  local function model3()
    local a, b = L.Dense{2, input_dim = 3, name = "a"}, L.Dense{1, name = "b"}
    return keras.Sequential{a, b}, a, b
  end

  it("counts from 1 as model.layers does, in both call forms", function()
    local model, a, b = model3()
    assert.equal(a, model:get_layer{index = 1})
    assert.equal(b, model:get_layer{index = 2})
    assert.equal(a, model:get_layer(nil, 1))
    assert.equal(model.layers[2], model:get_layer(nil, 2))
    assert.equal(b, model:get_layer{name = "b"})
    assert.equal(b, model:get_layer{"b"})
    assert.equal(a, model:get_layer{nil, 1})
  end)

  it("counts the InputLayer of a functional model as Keras does", function()
    local inputs = keras.Input{shape = {3}, name = "in"}
    local d = L.Dense{1, name = "d"}
    local model = keras.Model{inputs = inputs, outputs = d(inputs)}
    assert.equal("in", model:get_layer{index = 1}.name)
    assert.equal(d, model:get_layer{index = 2})
  end)

  it("names what is wrong", function()
    local model = model3()
    assert.error_matches(function() model:get_layer{index = 3} end,
      "get_layer: no layer at index 3 (the model has 2)", 1, true)
    assert.error_matches(function() model:get_layer{index = 0} end,
      "get_layer: no layer at index 0 (the model has 2)", 1, true)
    assert.error_matches(function() model:get_layer{index = 1.5} end,
      "get_layer: index must be an integer (from 1), got 1.5", 1, true)
    assert.error_matches(function() model:get_layer{} end,
      "get_layer: provide either a layer name or a layer index", 1, true)
    assert.error_matches(function() model:get_layer{name = "a", index = 1} end,
      "get_layer: give a layer name or an index, not both", 1, true)
    assert.error_matches(function() model:get_layer{idx = 1} end,
      "get_layer: unknown argument 'idx'", 1, true)
    assert.error_matches(function() model:get_layer(42) end,
      "get_layer: name must be a string, got number", 1, true)
  end)
end)
