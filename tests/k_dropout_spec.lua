-- K.dropout(x, level, noise_shape, seed) as Keras 2.2.4's backend: it drops
-- always (on tensors, and inside a Lambda at predict time), keeping each unit
-- with probability 1 - level and scaling the kept ones by 1 / (1 - level).
-- The Dropout layer, by contrast, drops in training only.
local keras = require "keras"

local K = keras.backend
local T = keras.tensor

-- counts of zeros and of values equal to want (relative 1e-6) in t
local function census(t, want)
  local zeros, kept, other = 0, 0, 0
  local function walk(v)
    if type(v) == "table" then for _, x in ipairs(v) do walk(x) end return end
    if v == 0 then zeros = zeros + 1
    elseif math.abs(v - want) <= 1e-6 * want then kept = kept + 1
    else other = other + 1 end
  end
  walk(t:totable())
  return zeros, kept, other
end

-- n Bernoulli(keep) draws: within 5 standard deviations of n * keep
local function plausible(kept, n, keep)
  return math.abs(kept - n * keep) <= 5 * math.sqrt(n * keep * (1 - keep))
end

describe("K.dropout", function()
  it("drops a tensor's units with probability level and scales the rest by 1 / (1 - level)", function()
    keras.random.seed(11)
    local zeros, kept, other = census(K.dropout(T.ones{100, 100}, 0.3), 1 / 0.7)
    assert.equal(0, other)
    assert.equal(10000, zeros + kept)
    assert.is_true(plausible(kept, 10000, 0.7), "kept " .. kept)
  end)

  it("drops inside a Lambda at predict time, unlike the Dropout layer", function()
    keras.random.seed(12)
    local inputs = keras.Input{shape = {50}}
    local lam = keras.Model{inputs = inputs,
      outputs = keras.layers.Lambda(function(x) return K.dropout(x, 0.5) end)(inputs)}
    local x = T.full({40, 50}, 3)
    local zeros, kept, other = census(lam:predict(x), 6)
    assert.equal(0, other)
    assert.is_true(plausible(kept, 2000, 0.5), "kept " .. kept)
    assert.is_true(zeros > 0)
    local layer = keras.Sequential{keras.layers.Dropout(0.5, {input_shape = {50}})}
    assert.same(x:totable(), layer:predict(x):totable())
  end)

  it("draws a new mask at every call", function()
    keras.random.seed(13)
    local a, b = K.dropout(T.ones{64}, 0.5), K.dropout(T.ones{64}, 0.5)
    assert.is_true((a - b):abs():max() > 0)
  end)

  it("shares the mask along the axes where noise_shape is 1", function()
    keras.random.seed(14)
    local inputs = keras.Input{shape = {8}}
    local model = keras.Model{inputs = inputs, outputs = keras.layers.Lambda(function(x)
      return K.dropout(x, 0.4, {keras.None, 1})
    end)(inputs)}
    local y = model:predict(T.ones{300, 8}):totable()
    local rows_kept = 0
    for _, row in ipairs(y) do
      local v = row[1]
      assert.is_true(v == 0 or math.abs(v - 1 / 0.6) <= 1e-6, "value " .. v)
      for j = 2, 8 do assert.equal(v, row[j]) end
      if v ~= 0 then rows_kept = rows_kept + 1 end
    end
    assert.is_true(plausible(rows_kept, 300, 0.6), "rows kept " .. rows_kept)
    -- on a tensor: one draw per column, shared by the rows
    local t = K.dropout(T.ones{5, 200}, 0.5, {1, 200}):totable()
    for i = 2, 5 do assert.same(t[1], t[i]) end
  end)

  it("is the identity with level 0", function()
    assert.same({{1, 2}, {3, 4}}, K.dropout(T{{1, 2}, {3, 4}}, 0):totable())
  end)

  it("names what is wrong", function()
    assert.error_matches(function() K.dropout(T.ones{2}, 1) end,
      "K.dropout: level must be a number in [0, 1), got 1", 1, true)
    assert.error_matches(function() K.dropout(T.ones{2}, -0.1) end,
      "K.dropout: level must be a number in [0, 1), got -0.1", 1, true)
    assert.error_matches(function() K.dropout(T.ones{2}, 0.5, nil, 7) end,
      "K.dropout: seed is not supported (seed the whole run with keras.random.seed(n))", 1, true)
    assert.error_matches(function() K.dropout(T.ones{2, 3}, 0.5, {2}) end,
      "K.dropout: noise_shape has 1 sizes for a tensor of rank 2", 1, true)
    assert.error_matches(function() K.dropout(T.ones{2, 3}, 0.5, {2, 2}) end,
      "K.dropout: noise_shape[2] must be 3 or 1 (the input is (2, 3)), got 2", 1, true)
  end)
end)
