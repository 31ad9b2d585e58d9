-- Inference plans keep Dense weights packed in the GEMM's panel layout with
-- the activation in the GEMM's epilogue (src/plan.c, src/kernels/gemm_packed.c).
-- keras._core.gemm_packed(1) packs every Dense (0: never, 2: where measured
-- faster, the default). Checked here: predictions against a float64 forward
-- pass computed from get_weights, against the unpacked plan, for every
-- activation; and that the packed copies follow the weights (set_weights,
-- load_weights, train_on_batch, K.set_value, assign).
local keras = require "keras"
local K = keras.backend
local L = keras.layers
local core = keras._core

local SELU_A, SELU_S = 1.6732632423543772, 1.0507009873554805
local ACTS = {
  linear = function(v) return v end,
  relu = function(v) return v > 0 and v or 0 end,
  sigmoid = function(v) return 1 / (1 + math.exp(-v)) end,
  hard_sigmoid = function(v) return math.max(0, math.min(1, 0.2 * v + 0.5)) end,
  tanh = function(v) local e = math.exp(-2 * math.abs(v)); return (v < 0 and -1 or 1) * (1 - e) / (1 + e) end,
  softplus = function(v) return math.log(1 + math.exp(v)) end,
  softsign = function(v) return v / (1 + math.abs(v)) end,
  elu = function(v) return v > 0 and v or math.exp(v) - 1 end,
  selu = function(v) return SELU_S * (v > 0 and v or SELU_A * (math.exp(v) - 1)) end,
  exponential = math.exp,
}

-- float64 forward pass of Dense layers (acts[i] names their activations)
-- from the model's current weights
local function reference(model, acts, x)
  local w = model:get_weights()
  local rows = x:totable()
  local li = 1
  for _, act in ipairs(acts) do
    local W, b = w[li]:totable(), w[li + 1]:totable()
    li = li + 2
    local out = {}
    for r, xr in ipairs(rows) do
      local o = {}
      for j = 1, #b do
        local s = b[j]
        for k = 1, #xr do s = s + xr[k] * W[k][j] end
        o[j] = s
      end
      if act == "softmax" then
        local m = -math.huge
        for j = 1, #o do m = math.max(m, o[j]) end
        local z = 0
        for j = 1, #o do o[j] = math.exp(o[j] - m); z = z + o[j] end
        for j = 1, #o do o[j] = o[j] / z end
      else
        for j = 1, #o do o[j] = ACTS[act](o[j]) end
      end
      out[r] = o
    end
    rows = out
  end
  return rows
end

local function worst(got, want)
  local g = got:totable()
  local e = 0
  for r = 1, #want do
    for j = 1, #want[r] do
      local d = math.abs(g[r][j] - want[r][j]) / math.max(1, math.abs(want[r][j]))
      if not (d <= e) then e = d end   -- NaN counts
    end
  end
  return e
end

local function dense_model(acts, sizes, seed)
  keras.random.seed(seed or 7)
  local layers = {}
  for i, act in ipairs(acts) do
    layers[i] = L.Dense{sizes[i + 1], activation = act, input_shape = i == 1 and {sizes[1]} or nil,
                        bias_initializer = "random_uniform"}
  end
  local m = keras.Sequential(layers)
  m:compile{loss = "mse", optimizer = keras.optimizers.SGD{lr = 0.1}}
  return m
end

local mode_before
setup(function() mode_before = core.gemm_packed(1) end)
teardown(function() core.gemm_packed(mode_before) end)

describe("packed Dense weights in inference plans", function()
  it("are packed once, at the predict plan's building (engine memory grows by the packed copy)", function()
    local m = dense_model({"relu", "linear"}, {300, 200, 3})
    local x = keras.random.random{4, 300}
    local before = core.mem()
    m:predict(x)
    local after = core.mem()
    -- the first layer's 300 x 200 weights alone are 240,000 bytes
    assert.is_true(after - before >= 300 * 200 * 4)
    -- and not again per call
    local allocs = select(3, core.mem())
    m:predict(x)
    m:predict(x)
    assert.is_true(select(3, core.mem()) - allocs < 20)
    local again = core.mem()
    assert.is_true(again - after < 300 * 200 * 4)
  end)

  it("apply every activation in the epilogue: equal to float64 and to the unpacked plan", function()
    local x = keras.random.uniform({37, 19}, -2, 2)
    local names = {"softmax"}
    for k in pairs(ACTS) do names[#names + 1] = k end
    table.sort(names)
    for _, a in ipairs(names) do
      local acts = {a, a == "exponential" and "tanh" or a}
      core.gemm_packed(1)
      local mp = dense_model(acts, {19, 40, 33})
      local yp = mp:predict(x, {batch_size = 16})
      core.gemm_packed(0)
      local mu = dense_model(acts, {19, 40, 33})
      mu:set_weights(mp:get_weights())
      local yu = mu:predict(x, {batch_size = 16})
      core.gemm_packed(1)
      local ref = reference(mp, acts, x)
      assert.is_true(worst(yp, ref) < 2e-5, a .. ": packed vs float64 " .. worst(yp, ref))
      assert.is_true(worst(yu, ref) < 2e-5, a .. ": unpacked vs float64 " .. worst(yu, ref))
      assert.is_true(worst(yp, yu:totable()) < 2e-5, a)
    end
  end)

  it("a relu with alpha and max_value, a Dense without bias, a Dense on 3-D input", function()
    keras.random.seed(3)
    local inp = keras.Input{shape = {5, 11}}
    local h = L.Dense{13, use_bias = false}(inp)
    local out = L.Lambda(function(t) return K.relu(t, 0.1, 0.5) end)(L.Dense{6}(h))
    local m = keras.Model{inputs = inp, outputs = out}
    local x = keras.random.uniform({9, 5, 11}, -1, 1)
    local y = m:predict(x)
    local w = m:get_weights()
    local W1, W2, b2 = w[1]:totable(), w[2]:totable(), w[3]:totable()
    local X, Y = x:totable(), y:totable()
    local e = 0
    for i = 1, 9 do
      for t = 1, 5 do
        local hv = {}
        for j = 1, 13 do
          local s = 0
          for k = 1, 11 do s = s + X[i][t][k] * W1[k][j] end
          hv[j] = s
        end
        for j = 1, 6 do
          local s = b2[j]
          for k = 1, 13 do s = s + hv[k] * W2[k][j] end
          s = s > 0 and math.min(s, 0.5) or 0.1 * s
          e = math.max(e, math.abs(Y[i][t][j] - s))
        end
      end
    end
    assert.is_true(e < 1e-5, tostring(e))
  end)

  it("give the same numbers for 1 and 2 threads, bit for bit", function()
    local m = dense_model({"relu", "relu", "softmax"}, {70, 150, 90, 10})
    local x = keras.random.random{131, 70}
    local threads = core.get_num_threads()
    keras.set_num_threads(1)
    local y1 = m:predict(x, {batch_size = 131}):totable()
    keras.set_num_threads(2)
    local y2 = m:predict(x, {batch_size = 131}):totable()
    keras.set_num_threads(threads)
    assert.are.same(y1, y2)
  end)
end)

describe("packed weights follow the weights", function()
  local acts = {"relu", "tanh", "softmax"}
  local x

  before_each(function() x = keras.random.uniform({21, 17}, -1, 1) end)

  local function check(m, what)
    local e = worst(m:predict(x, {batch_size = 8}), reference(m, acts, x))
    assert.is_true(e < 2e-5, what .. ": " .. e)
  end

  it("after set_weights", function()
    local m = dense_model(acts, {17, 24, 12, 5}, 1)
    check(m, "before")
    local other = dense_model(acts, {17, 24, 12, 5}, 2)
    m:set_weights(other:get_weights())
    check(m, "set_weights")
    -- a layer's own set_weights too
    m.layers[1]:set_weights(dense_model(acts, {17, 24, 12, 5}, 3).layers[1]:get_weights())
    check(m, "layer set_weights")
  end)

  it("after load_weights", function()
    local m = dense_model(acts, {17, 24, 12, 5}, 1)
    local path = os.tmpname() .. ".lkm"
    m:save_weights(path)
    local y0 = m:predict(x):totable()
    m:set_weights(dense_model(acts, {17, 24, 12, 5}, 4):get_weights())
    local y1 = m:predict(x):totable()
    assert.are_not.same(y0, y1)
    m:load_weights(path)
    os.remove(path)
    assert.are.same(y0, m:predict(x):totable())
    check(m, "load_weights")
  end)

  it("after train_on_batch and fit", function()
    local m = dense_model(acts, {17, 24, 12, 5}, 1)
    local y = keras.utils.to_categorical(keras.random.randint(5, {21}), 5)
    local p0 = m:predict(x):totable()
    m:train_on_batch(x, y)
    local p1 = m:predict(x):totable()
    assert.are_not.same(p0, p1)
    check(m, "train_on_batch")
    m:fit(x, y, {epochs = 2, batch_size = 7, verbose = 0})
    check(m, "fit")
    assert.are_not.same(p1, m:predict(x):totable())
  end)

  it("after K.set_value, assign and a row assignment on a kernel", function()
    local m = dense_model(acts, {17, 24, 12, 5}, 1)
    check(m, "before")
    local k = m.layers[2].kernel
    K.set_value(k, keras.random.uniform({24, 12}, -1, 1))
    check(m, "K.set_value")
    -- the variable's tensor, written in place
    m.layers[3].bias.value:assign(keras.random.uniform({5}, -1, 1))
    check(m, "assign")
    local w = m.layers[1].kernel.value
    w[3] = keras.random.uniform({24}, -3, 3)
    check(m, "row assignment")
    w:set(2, 5, 7.5)
    check(m, "set")
  end)

  it("predict_on_batch follows them too", function()
    local m = dense_model(acts, {17, 24, 12, 5}, 1)
    m:predict_on_batch(x)
    m:set_weights(dense_model(acts, {17, 24, 12, 5}, 5):get_weights())
    assert.is_true(worst(m:predict_on_batch(x), reference(m, acts, x)) < 2e-5)
  end)
end)
