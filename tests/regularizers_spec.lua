-- keras.regularizers: Keras 2.2.4's defaults (L1L2 has l1 = l2 = 0; the
-- helpers l1, l2, l1_l2 default to 0.01) and penalties sum(l1*|w|) + sum(l2*w^2).
-- Expected values are worked out by hand in the comments.
local keras = require "keras"

local R = keras.regularizers
local T = keras.tensor

local function near(want, got, what)
  assert.is_true(math.abs(got - want) <= 1e-6 * math.abs(want) + 1e-7,
    string.format("%s: %.9g, expected %.9g", what or "", got, want))
end

describe("keras.regularizers.L1L2", function()
  it("defaults both factors to 0: {l1 = 0.1} adds no l2", function()
    local r = R.L1L2{l1 = 0.1}
    assert.same({l1 = 0.1, l2 = 0}, r.config)
    near(0.3, r(T{1, -2}), "0.1 * (1 + 2)")
  end)

  it("takes l1 and l2 by position too", function()
    assert.same({l1 = 0.1, l2 = 0.5}, R.L1L2(0.1, 0.5).config)
    assert.same({l1 = 0, l2 = 0.5}, R.L1L2(nil, 0.5).config)
    assert.same({l1 = 0.1, l2 = 0.5}, R.L1L2(0.1, {l2 = 0.5}).config)
    assert.same({l1 = 0.1, l2 = 0.5}, R.L1L2{0.1, l2 = 0.5}.config)
    assert.same({l1 = 0, l2 = 0}, R.L1L2().config)
    near(0.2 * 5, R.L1L2{l2 = 0.2}(T{1, -2}), "0.2 * (1 + 4)")
  end)

  it("gives 0 with both factors 0", function()
    assert.equal(0, R.L1L2()(T{1, -2}))
  end)

  it("rejects unknown arguments and bad factors", function()
    assert.error_matches(function() R.L1L2{l3 = 1} end, "L1L2: unknown argument 'l3'", 1, true)
    assert.error_matches(function() R.L1L2{l1 = -1} end, "L1L2: l1 must be a number >= 0, got -1", 1, true)
    assert.error_matches(function() R.L1L2(1, 2, 3) end, "L1L2: too many positional arguments", 1, true)
    assert.error_matches(function() R.L1L2(0.1, {l1 = 0.2}) end,
      "L1L2: argument 'l1' given twice", 1, true)
  end)
end)

describe("keras.regularizers.l1_l2", function()
  it("defaults both factors to 0.01", function()
    assert.same({l1 = 0.01, l2 = 0.01}, R.l1_l2().config)
    -- 0.1 * (1 + 2) + 0.01 * (1 + 4)
    near(0.35, R.l1_l2{l1 = 0.1}(T{1, -2}), "l1_l2{l1 = 0.1}")
    near(0.35, R.l1_l2(0.1)(T{1, -2}), "l1_l2(0.1)")
  end)
end)

describe("keras.regularizers.l1 and l2", function()
  it("default to 0.01 and take l by position or by name", function()
    near(0.03, R.l1()(T{1, -2}), "0.01 * 3")
    near(0.05, R.l2()(T{1, -2}), "0.01 * 5")
    near(0.3, R.l1{l = 0.1}(T{1, -2}), "0.1 * 3")
    near(0.5, R.l2(0.1)(T{1, -2}), "0.1 * 5")
  end)
end)

describe("a layer's kernel_regularizer", function()
  it("adds L1L2{l1 = 0.1}'s penalty (and no l2) to the loss", function()
    local model = keras.Sequential{keras.layers.Dense{1, input_dim = 2, use_bias = false,
                                                      kernel_regularizer = R.L1L2{l1 = 0.1}}}
    model:compile{optimizer = "sgd", loss = "mse"}
    model:set_weights{T{{1}, {-2}}}
    -- x = 0 predicts 0 = y: the loss is the penalty alone, 0.1 * (1 + 2)
    near(0.3, model:evaluate(T.zeros{4, 2}, T.zeros{4, 1}, {verbose = 0}), "loss")
  end)
end)

describe("a layer's activity_regularizer", function()
  -- Keras 2.2.4 adds the regularizer of the layer's whole output batch to the
  -- loss, not divided by the batch size (tf.keras divides; 2.2.4 does not)
  local x = T{{1, 2, 3}, {0.5, -1, 2}, {0, 0, 1}, {2, 2, 2}}
  local function model_with(layer)
    local model = keras.Sequential{layer}
    model:compile{optimizer = "sgd", loss = "mse"}
    return model
  end

  it("adds l2(0.1) of a Dense output, summed over the batch", function()
    local model = model_with(keras.layers.Dense{2, input_dim = 3, kernel_initializer = "ones",
                                                activity_regularizer = R.l2(0.1)})
    -- rows sum to 6, 1.5, 1, 6 on both units: 0.1 * 2 * (36 + 2.25 + 1 + 36) = 15.05;
    -- y = the prediction makes the mse term 0
    near(15.05, model:evaluate(x, model:predict(x), {verbose = 0, batch_size = 4}), "one batch of 4")
    -- two batches of 2: each batch's penalty (0.1*2*(36+2.25) = 7.65, 0.1*2*(1+36) = 7.4),
    -- evaluate's mean over the batches weighted by their sizes: 7.525
    near(7.525, model:evaluate(x, model:predict(x), {verbose = 0, batch_size = 2}), "two batches of 2")
  end)

  it("adds l1(0.5) of an Embedding output", function()
    local model = model_with(keras.layers.Embedding{3, 2, input_length = 2, embeddings_initializer = "ones",
                                                    activity_regularizer = R.l1(0.5)})
    local ids = T{{0, 1}, {2, 2}}
    -- 2 samples x 2 steps x 2 dims of 1: 0.5 * 8 = 4
    near(4, model:evaluate(ids, model:predict(ids), {verbose = 0}), "loss")
  end)
end)
