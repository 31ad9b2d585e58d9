-- keras.layers.LocallyConnected1D and LocallyConnected2D (Keras 2.2.4
-- arguments, defaults, weight layouts and configs; channels_last, 'valid'
-- only). Numbers: tests/fixtures/locallayers.lua (float64 loops over the
-- output positions in torch; outputs and the gradients of sum(y * dy)), a
-- Keras 2.2.4 JSON config and .h5 file tests/fixtures/keras_locallayers.*;
-- all made by scripts/fixtures/locallayers_fixtures.py.
local keras = require "keras"
local K = keras.backend
local L = keras.layers
local None = keras.None

local function flat(v, out)
  out = out or {}
  if type(v) == "table" then
    for _, x in ipairs(v) do flat(x, out) end
  else
    out[#out + 1] = v
  end
  return out
end

local function assert_close(want, got, tol)
  tol = tol or 1e-5
  local g, w = flat(got:totable()), flat(want)
  assert.equal(#w, #g, "number of elements")
  for i = 1, #w do
    if not (math.abs(g[i] - w[i]) <= tol * math.max(1, math.abs(w[i]))) then
      error(string.format("element %d is %.9g, expected %.9g", i, g[i], w[i]), 2)
    end
  end
end

local function sample_shape(t)
  local s = {}
  for i = 2, #t.shape do s[i - 1] = t.shape[i] end
  return s
end

local function read_all(path)
  local f = assert(io.open(path, "rb"))
  local s = f:read("a")
  f:close()
  return s
end

local function tmpdir()
  local p = io.popen("mktemp -d /tmp/lkeras-locallayers-XXXXXX")
  local d = p:read("l")
  p:close()
  return d
end
local DIR = tmpdir()
local function P(name) return DIR .. "/" .. name end
teardown(function() os.execute("rm -rf '" .. DIR .. "'") end)

local cases = dofile("tests/fixtures/locallayers.lua")

describe("LocallyConnected1D and LocallyConnected2D against float64 loops", function()
  it("compute the fixtures' outputs", function()
    local n, seen = 0, {}
    for _, c in ipairs(cases) do
      local layer = L[c.class](c.args)
      local x = keras.tensor(c.x)
      local inp = keras.Input{shape = sample_shape(x)}
      local model = keras.Model{inputs = inp, outputs = layer(inp)}
      local ws = {}
      for i, w in ipairs(c.weights) do ws[i] = keras.tensor(w) end
      layer:set_weights(ws)
      local ok, err = pcall(assert_close, c.y, model:predict(x), 1e-5)
      if not ok then error(c.name .. ": " .. tostring(err)) end
      n, seen[c.class] = n + 1, true
    end
    assert.equal(6, n)
    assert.is_true(seen.LocallyConnected1D and seen.LocallyConnected2D)
  end)

  it("have torch autograd's gradients (input, kernel, bias)", function()
    local n = 0
    for _, c in ipairs(cases) do
      if c.dy then
        local layer = L[c.class](c.args)
        local x, dyt = keras.tensor(c.x), keras.tensor(c.dy)
        local inp, dy = keras.Input{shape = sample_shape(x)}, keras.Input{shape = sample_shape(dyt)}
        local y = layer(inp)
        local ws = {}
        for i, w in ipairs(c.weights) do ws[i] = keras.tensor(w) end
        layer:set_weights(ws)
        local vars = {inp}
        for _, w in ipairs(layer._ordered_weights(layer)) do vars[#vars + 1] = w.node end
        assert.equal(#c.dw + 1, #vars)
        local gs = K["function"]({inp, dy}, K.gradients(K.sum(K.mul(y, dy)), vars))({x, dyt})
        local ok, err = pcall(assert_close, c.dx, gs[1], 1e-5)
        if not ok then error(c.name .. " dx: " .. tostring(err)) end
        for i, want in ipairs(c.dw) do
          ok, err = pcall(assert_close, want, gs[i + 1], 1e-5)
          if not ok then error(c.name .. " weight " .. i .. ": " .. tostring(err)) end
        end
        n = n + 1
      end
    end
    assert.equal(4, n)
  end)

  it("take one SGD step as the gradients say (train_on_batch)", function()
    for _, c in ipairs{cases[1], cases[4]} do
      local layer = L[c.class](c.args)
      local x, dyt = keras.tensor(c.x), keras.tensor(c.dy)
      local inp = keras.Input{shape = sample_shape(x)}
      local model = keras.Model{inputs = inp, outputs = layer(inp)}
      local ws = {}
      for i, w in ipairs(c.weights) do ws[i] = keras.tensor(w) end
      layer:set_weights(ws)
      local function loss(y_true, y_pred) return K.sum(K.mul(y_true, y_pred)) end
      model:compile{optimizer = keras.optimizers.SGD{lr = 0.1}, loss = loss}
      model:train_on_batch(x, dyt)
      local after = layer:get_weights()
      for i, w in ipairs(c.weights) do
        assert_close((keras.tensor(w) - keras.tensor(c.dw[i]) * 0.1):totable(), after[i], 1e-5)
      end
    end
  end)

  it("train: the loss falls with fit", function()
    keras.random.seed(11)
    local model = keras.Sequential{
      L.LocallyConnected2D{4, 3, activation = "relu", input_shape = {6, 6, 2}},
      L.Reshape{{16, 4}},
      L.LocallyConnected1D{2, 3, strides = 2, activation = "tanh"},
      L.Flatten(), L.Dense(1),
    }
    local x = keras.random.random{32, 6, 6, 2}
    local y = x:reshape{32, -1}:mean(1):reshape{32, 1} * 3
    model:compile{optimizer = keras.optimizers.Adam{lr = 0.01}, loss = "mse"}
    local losses = model:fit(x, y, {epochs = 20, batch_size = 8, verbose = 0}).history.loss
    assert.is_true(losses[#losses] < 0.5 * losses[1], string.format("%g -> %g", losses[1], losses[#losses]))
  end)
end)

describe("the locally connected layers' shapes, weights and misuse", function()
  it("hold Keras 2.2.4's kernel and bias shapes and count their parameters", function()
    local l1 = L.LocallyConnected1D(64, 3, {input_shape = {10, 32}})
    local m1 = keras.Sequential{l1, L.LocallyConnected1D(32, 3)}
    assert.same({None, 6, 32}, m1.output_shape)
    local ws = l1:get_weights()
    assert.same({8, 96, 64}, ws[1].shape)
    assert.same({8, 64}, ws[2].shape)
    local names = {}
    for i, w in ipairs(l1:_ordered_weights()) do names[i] = w.short end
    assert.same({"kernel", "bias"}, names)
    assert.truthy(l1.name:find("^locally_connected1d_%d+$"))
    local l2 = L.LocallyConnected2D{5, {3, 2}, strides = {2, 1}}
    local m2 = keras.Sequential{L.InputLayer{input_shape = {7, 6, 3}}, l2}
    assert.same({None, 3, 5, 5}, m2.output_shape)
    ws = l2:get_weights()
    assert.same({15, 18, 5}, ws[1].shape)
    assert.same({3, 5, 5}, ws[2].shape)
    assert.equal(15 * 18 * 5 + 75, m2:count_params())
    local lines = {}
    m2:summary{print_fn = function(s) lines[#lines + 1] = s end}
    local text = table.concat(lines, "\n")
    assert.truthy(text:find("%(None, 3, 5, 5%)%s+1425"))
    assert.truthy(text:find("Total params: 1,425", 1, true) or text:find("Total params: 1425", 1, true))
    local nb = L.LocallyConnected2D{2, 2, use_bias = false}
    nb(keras.Input{shape = {3, 3, 1}})
    assert.equal(1, #nb:get_weights())
  end)

  it("refuse misuse, naming the layer", function()
    assert.error_matches(function() L.LocallyConnected2D{4, 3, padding = "same"} end,
      "LocallyConnected2D: padding must be 'valid' (the only mode Keras 2.2.4 has for locally connected layers), "
      .. "got 'same'", 1, true)
    assert.error_matches(function() L.LocallyConnected1D{4, 3, padding = "causal"} end,
      "LocallyConnected1D: padding must be 'valid'", 1, true)
    assert.error_matches(function() L.LocallyConnected2D{4, 3, dilation_rate = 2} end,
      "LocallyConnected2D: unknown argument 'dilation_rate'", 1, true)
    assert.error_matches(function() L.LocallyConnected1D{4, 3, data_format = "channels_first"} end,
      "LocallyConnected1D: data_format 'channels_first' is not supported (channels_last only)", 1, true)
    assert.error_matches(function() L.LocallyConnected2D{0, 3} end,
      "LocallyConnected2D: filters must be an integer >= 1, got 0", 1, true)
    assert.error_matches(function() L.LocallyConnected1D{4} end,
      "LocallyConnected1D: missing argument 'kernel_size'", 1, true)
    local a = L.LocallyConnected1D{4, 3, name = "lc"}
    assert.error_matches(function() a(keras.Input{shape = {None, 3}}) end,
      "LocallyConnected1D (lc): needs a fixed input length (a kernel of its own at each position), got shape "
      .. "(None, None, 3)", 1, true)
    local b = L.LocallyConnected2D{4, {2, 5}, name = "lc2"}
    assert.error_matches(function() b(keras.Input{shape = {4, 4, 1}}) end,
      "LocallyConnected2D (lc2): kernel size 2x5 is larger than the input 4x4 (padding 'valid')", 1, true)
    local c = L.LocallyConnected2D{4, 2, name = "lc3"}
    assert.error_matches(function() c(keras.Input{shape = {4, 3}}) end,
      "LocallyConnected2D (lc3): expected input with ndim=4 (batch, rows, cols, channels), found ndim=3", 1, true)
    -- a built layer called on another size
    local d = L.LocallyConnected1D{2, 2, name = "lc4"}
    d(keras.Input{shape = {5, 3}})
    assert.error_matches(function() d(keras.Input{shape = {6, 3}}) end,
      "LocallyConnected1D (lc4): was built for an input giving 4 positions, got shape (None, 6, 3)", 1, true)
    assert.error_matches(function() L.LocallyConnected1D{4, 3, kernel_constraint = "max_nrom"} end,
      "LocallyConnected1D: unknown constraint 'max_nrom'", 1, true)
  end)

  it("apply their constraints after each update", function()
    local layer = L.LocallyConnected1D{3, 2, kernel_constraint = "non_neg", input_shape = {5, 2},
      bias_constraint = keras.constraints.max_norm(0.1)}
    local model = keras.Sequential{layer}
    model:compile{optimizer = keras.optimizers.SGD{lr = 1}, loss = "mse"}
    model:train_on_batch(keras.random.random{4, 5, 2}, keras.random.random{4, 4, 3} + 5)
    local k, b = layer:get_weights()[1], layer:get_weights()[2]
    for _, v in ipairs(flat(k:totable())) do assert.is_true(v >= 0) end
    -- max_norm over axis 0 of the (4, 3) bias: every column's norm <= 0.1
    local bt = b:totable()
    for j = 1, 3 do
      local s = 0
      for i = 1, 4 do s = s + bt[i][j] ^ 2 end
      assert.is_true(math.sqrt(s) <= 0.1 + 1e-6)
    end
  end)
end)

describe("saving the locally connected layers", function()
  local function two_layer_model()
    local inp = keras.Input{shape = {7, 6, 2}}
    local y = L.LocallyConnected2D{3, {3, 2}, strides = 2, activation = "relu"}(inp)
    y = L.Reshape{{9, 3}}(y)
    y = L.LocallyConnected1D{2, 2, activation = "tanh", use_bias = false}(y)
    return keras.Model{inputs = inp, outputs = y}
  end

  it("round-trips through .lkm, .h5 and to_json with the same outputs", function()
    local m = two_layer_model()
    local ws = m:get_weights()
    for i = 1, #ws do ws[i] = keras.random.random(ws[i].shape) - 0.5 end
    m:set_weights(ws)
    local x = keras.random.random{2, 7, 6, 2}
    local want = m:predict(x):totable()
    for _, ext in ipairs{"lkm", "h5"} do
      m:save(P("m." .. ext))
      local copy = keras.models.load_model(P("m." .. ext))
      assert.equal("LocallyConnected2D", copy.layers[2].class_name)
      assert_close(want, copy:predict(x), 1e-6)
    end
    local copy = keras.models.model_from_json(m:to_json())
    copy:set_weights(m:get_weights())
    assert_close(want, copy:predict(x), 1e-6)
  end)

  it("write Keras 2.2.4's config keys and values", function()
    local m = keras.Sequential{L.LocallyConnected2D{4, 3, strides = 2, input_shape = {7, 7, 2}},
      L.Reshape{{9, 4}}, L.LocallyConnected1D(2, 3)}
    local cfg = keras.saving.json.decode(m:to_json()).config
    local c2, c1 = cfg[1].config, cfg[3].config
    assert.same({3, 3}, c2.kernel_size)
    assert.same({2, 2}, c2.strides)
    assert.equal("valid", c2.padding)
    assert.equal("channels_last", c2.data_format)
    assert.is_nil(c2.dilation_rate)
    assert.same({3}, c1.kernel_size)
    assert.same({1}, c1.strides)
    assert.equal("VarianceScaling", c1.kernel_initializer.class_name)
    assert.equal(keras.saving.json.null, c1.kernel_constraint)
  end)

  it("load a Keras 2.2.4 JSON config (model_from_json) with Keras's shapes and counts", function()
    local model = keras.models.model_from_json(read_all("tests/fixtures/keras_locallayers.json"))
    local expect = dofile("tests/fixtures/keras_locallayers.expect.lua")
    assert.equal(#expect, #model.layers)
    for i, l in ipairs(model.layers) do
      local want = {}
      for j, d in ipairs(expect[i].shape) do want[j] = d < 0 and None or d end
      assert.same(want, l.output_shape, "layer " .. i)
      assert.equal(expect[i].params, l:count_params(), "layer " .. i)
    end
    assert.same({2, 2}, model.layers[1].strides)
  end)

  it("load a Keras 2.2.4 .h5 file (h5py, Keras's layout) and predict what the loops compute", function()
    local c = dofile("tests/fixtures/keras_locallayers_h5.lua")
    local model = keras.models.load_model("tests/fixtures/keras_locallayers.h5")
    assert_close(c.y, model:predict(keras.tensor(c.x)), 1e-5)
    local fresh = keras.models.model_from_json(read_all("tests/fixtures/keras_locallayers.json"))
    fresh:load_weights("tests/fixtures/keras_locallayers.h5")
    assert_close(c.y, fresh:predict(keras.tensor(c.x)), 1e-5)
  end)
end)
