-- Determinism (docs/reliability.md, "Determinism"): the same seed and the same
-- build give bit-identical training for any thread count. Each model trains 2
-- epochs from the same seed at 1, 2 and 3 threads (more threads than this
-- machine may have cores: the engine accepts that); the losses of every epoch
-- and every weight must be the same floats. The sizes are chosen so that the
-- parallel paths run: the conv kernel gradient's per-chunk partial sums, the
-- tiled matrix products (a Dense layer with K = 784, where OpenBLAS's own
-- threads change the floats), the recurrent kernels' row parts, dropout's
-- random stream and BatchNormalization's batch statistics.
local keras = require "keras"
local L = keras.layers

local U_ = dofile("tests/lib/spec_util.lua")
local flat = U_.flat

local function onehot(n, k)
  local y = keras.tensor.zeros{n, k}
  for i = 1, n do y[i][(i * 7) % k + 1] = 1 end
  return y
end

local MODELS = {
  {"a Dense MLP with dropout", function()
    local m = keras.Sequential{
      L.Dense{256, activation = "relu", input_shape = {784}},
      L.Dropout(0.2),
      L.Dense{128, activation = "relu"},
      L.Dense{10, activation = "softmax"},
    }
    m:compile{loss = "categorical_crossentropy", optimizer = keras.optimizers.RMSprop{lr = 0.001},
              metrics = {"accuracy"}}
    return m, keras.random.random{256, 784}, onehot(256, 10), 64
  end},
  {"a Conv2D + pooling CNN", function()
    local m = keras.Sequential{
      L.Conv2D{16, {3, 3}, activation = "relu", input_shape = {24, 24, 3}},
      L.Conv2D{16, {3, 3}, activation = "relu"},
      L.MaxPooling2D{pool_size = {2, 2}},
      L.Dropout(0.25),
      L.Conv2D{8, {3, 3}, strides = 2},
      L.Flatten(),
      L.Dense{10, activation = "softmax"},
    }
    m:compile{loss = "categorical_crossentropy", optimizer = keras.optimizers.SGD{lr = 0.01, momentum = 0.9,
                                                                                  nesterov = true}}
    return m, keras.random.random{96, 24, 24, 3}, onehot(96, 10), 32
  end},
  {"a Conv1D model", function()
    local m = keras.Sequential{
      L.Conv1D{64, 3, activation = "relu", input_shape = {100, 16}},
      L.MaxPooling1D(3),
      L.Conv1D{32, 3, activation = "relu"},
      L.GlobalAveragePooling1D(),
      L.Dense{1, activation = "sigmoid"},
    }
    m:compile{loss = "binary_crossentropy", optimizer = "rmsprop"}
    return m, keras.random.random{128, 100, 16}, keras.random.randint(2, {128, 1}), 64
  end},
  {"an LSTM", function()
    local m = keras.Sequential{
      L.LSTM{32, input_shape = {30, 32}, dropout = 0.1},
      L.Dense{1, activation = "sigmoid"},
    }
    m:compile{loss = "binary_crossentropy", optimizer = "adam"}
    return m, keras.random.random{128, 30, 32}, keras.random.randint(2, {128, 1}), 64
  end},
  {"a BatchNormalization model", function()
    local m = keras.Sequential{
      L.Dense{64, input_shape = {100}},
      L.BatchNormalization(),
      L.Activation("relu"),
      L.Dense{10, activation = "softmax"},
    }
    m:compile{loss = "categorical_crossentropy", optimizer = "adam", metrics = {"accuracy"}}
    return m, keras.random.random{200, 100}, onehot(200, 10), 50
  end},
}

-- the run at `threads`: every epoch's loss (and metric), then every weight, as floats
local function train(build, threads)
  keras.set_num_threads(threads)
  keras.random.seed(1234)
  local m, x, y, batch = build()
  local h = m:fit(x, y, {epochs = 2, batch_size = batch, verbose = 0})
  local out = {losses = {}, weights = {}}
  local keys = {}
  for k in pairs(h.history) do keys[#keys + 1] = k end
  table.sort(keys)
  for _, k in ipairs(keys) do
    for e, v in ipairs(h.history[k]) do out.losses[#out.losses + 1] = {k .. " epoch " .. e, v} end
  end
  for i, w in ipairs(m:get_weights()) do out.weights[i] = flat(w:totable()) end
  return out
end

-- the first float that differs, or nil
local function first_difference(a, b)
  for i, l in ipairs(a.losses) do
    if l[2] ~= b.losses[i][2] then
      return string.format("%s: %.9g vs %.9g", l[1], l[2], b.losses[i][2])
    end
  end
  if #a.weights ~= #b.weights then return "weight count" end
  for i, w in ipairs(a.weights) do
    local v = b.weights[i]
    if #w ~= #v then return "weight " .. i .. ": size" end
    for k = 1, #w do
      if w[k] ~= v[k] then
        return string.format("weight %d element %d: %.9g vs %.9g", i, k, w[k], v[k])
      end
    end
  end
  return nil
end

describe("determinism: the same seed gives bit-identical training at 1, 2 and 3 threads", function()
  local before
  setup(function() before = keras.get_num_threads() end)
  teardown(function() keras.set_num_threads(before) end)

  for _, case in ipairs(MODELS) do
    it("for " .. case[1], function()
      local one = train(case[2], 1)
      assert.is_true(#one.losses >= 2 and #one.weights >= 2)
      for _, l in ipairs(one.losses) do
        assert.is_true(l[2] == l[2] and math.abs(l[2]) < math.huge, l[1] .. " is finite")
      end
      for threads = 2, 3 do
        local other = train(case[2], threads)
        local d = first_difference(one, other)
        assert.is_nil(d, string.format("1 thread vs %d threads: %s", threads, d))
      end
      -- the runs are not trivially equal: a different seed trains other weights
      keras.set_num_threads(1)
      keras.random.seed(99)
      local m, x, y, batch = case[2]()
      m:fit(x, y, {epochs = 2, batch_size = batch, verbose = 0})
      assert.is_not_nil(first_difference(one, {losses = one.losses, weights = (function()
        local ws = {}
        for i, w in ipairs(m:get_weights()) do ws[i] = flat(w:totable()) end
        return ws
      end)()}), "another seed gives other weights")
    end)
  end
end)
