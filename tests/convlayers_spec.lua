-- keras.layers: Conv2DTranspose (Deconvolution2D), Conv3DTranspose,
-- SeparableConv1D/2D, DepthwiseConv2D, Conv3D, the 3-D poolings, padding,
-- cropping and upsampling (Keras 2.2.4 arguments, defaults, weight layouts,
-- configs; channels_last). Numbers: tests/fixtures/convlayers.lua (PyTorch,
-- float64, TensorFlow's padding, transposed convolutions from their
-- definition as gradients; outputs and, for one case of each convolution,
-- the gradients of sum(y * dy)), and Keras 2.2.4 JSON configs
-- tests/fixtures/keras_convlayers_*.json with the shapes and parameter
-- counts Keras's formulas give, and .h5 files of them in Keras's layout; all
-- made by scripts/fixtures/convlayers_fixtures.py.
local keras = require "keras"
local K = keras.backend
local L = keras.layers
local None = keras.None

local U_ = dofile("tests/lib/spec_util.lua")
local assert_close, sample_shape, read_all = U_.assert_close, U_.sample_shape, U_.read_all



local function out_shape(layer, shape)
  layer(keras.Input{shape = shape})
  return layer.output_shape
end


local function tmpdir()
  local p = io.popen("mktemp -d /tmp/lkeras-convlayers-XXXXXX")
  local d = p:read("l")
  p:close()
  return d
end
local DIR = tmpdir()
local function P(name) return DIR .. "/" .. name end
teardown(function() os.execute("rm -rf '" .. DIR .. "'") end)

describe("the new convolution layers against PyTorch", function()
  local cases = dofile("tests/fixtures/convlayers.lua")

  it("compute the fixtures' outputs", function()
    local n, seen = 0, {}
    for _, c in ipairs(cases) do
      local layer = L[c.class](c.args)
      local x = keras.tensor(c.x)
      local inp = keras.Input{shape = sample_shape(x)}
      local model = keras.Model{inputs = inp, outputs = layer(inp)}
      if #c.weights > 0 then
        local ws = {}
        for i, w in ipairs(c.weights) do ws[i] = keras.tensor(w) end
        layer:set_weights(ws)
      end
      local ok, err = pcall(assert_close, c.y, model:predict(x), 1e-5)
      if not ok then error(c.name .. ": " .. tostring(err)) end
      n, seen[c.class] = n + 1, true
    end
    assert.is_true(n >= 25)
    for _, name in ipairs{"Conv2DTranspose", "Conv3DTranspose", "SeparableConv1D", "SeparableConv2D",
                          "DepthwiseConv2D", "Conv3D", "MaxPooling3D", "AveragePooling3D", "GlobalMaxPooling3D",
                          "GlobalAveragePooling3D", "UpSampling3D", "ZeroPadding3D", "Cropping3D"} do
      assert.is_true(seen[name], name)
    end
  end)

  it("train with PyTorch's gradients (input and every weight, in Keras's order)", function()
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
        local f = K["function"]({inp, dy}, K.gradients(K.sum(K.mul(y, dy)), vars))
        local gs = f({x, dyt})
        local ok, err = pcall(assert_close, c.dx, gs[1], 1e-5)
        if not ok then error(c.name .. " dx: " .. tostring(err)) end
        for i, want in ipairs(c.dw) do
          ok, err = pcall(assert_close, want, gs[i + 1], 1e-5)
          if not ok then error(c.name .. " weight " .. i .. ": " .. tostring(err)) end
        end
        n = n + 1
      end
    end
    assert.is_true(n >= 7)
  end)

  it("take one SGD step as PyTorch's gradients say (Conv2DTranspose)", function()
    local c = cases[1]
    assert.equal("Conv2DTranspose", c.class)
    local layer = L[c.class](c.args)
    local x, dyt = keras.tensor(c.x), keras.tensor(c.dy)
    local inp = keras.Input{shape = sample_shape(x)}
    local model = keras.Model{inputs = inp, outputs = layer(inp)}
    local ws = {}
    for i, w in ipairs(c.weights) do ws[i] = keras.tensor(w) end
    layer:set_weights(ws)
    -- loss sum(y * dy) / n as a mean over one batch: y_pred * y_true with y_true = dy
    local function loss(y_true, y_pred) return K.sum(K.mul(y_true, y_pred)) end
    model:compile{optimizer = keras.optimizers.SGD{lr = 0.1}, loss = loss}
    model:train_on_batch(x, dyt)
    local after = layer:get_weights()
    for i, w in ipairs(c.weights) do
      local want = keras.tensor(w) - keras.tensor(c.dw[i]) * 0.1
      assert_close(want:totable(), after[i], 1e-5)
    end
  end)
end)

describe("models of the new layers", function()
  it("train: the loss falls with fit", function()
    keras.random.seed(7)
    local m3 = keras.Sequential{
      L.Conv3D{4, 3, padding = "same", activation = "relu", input_shape = {4, 6, 6, 1}},
      L.MaxPooling3D(),
      L.Conv3DTranspose{2, 2, strides = 2},
      L.UpSampling3D{{1, 1, 1}}, L.ZeroPadding3D(1), L.Cropping3D(1),
      L.AveragePooling3D{2},
      L.GlobalAveragePooling3D(),
      L.Dense(1),
    }
    local m2 = keras.Sequential{
      L.SeparableConv2D{4, 3, padding = "same", activation = "relu", depth_multiplier = 2, input_shape = {8, 8, 2}},
      L.DepthwiseConv2D{3, strides = 2, activation = "relu"},
      L.Conv2DTranspose{2, 3, strides = 2, padding = "same", output_padding = 1},
      L.GlobalMaxPooling2D(),
      L.Dense(1),
    }
    for _, m in ipairs{{m3, {16, 4, 6, 6, 1}}, {m2, {16, 8, 8, 2}}} do
      local model, shape = m[1], m[2]
      local x = keras.random.random(shape)
      local y = x:reshape{16, -1}:mean(1):reshape{16, 1} * 3
      model:compile{optimizer = keras.optimizers.Adam{lr = 0.01}, loss = "mse"}
      local h = model:fit(x, y, {epochs = 15, batch_size = 8, verbose = 0})
      local losses = h.history.loss
      assert.is_true(losses[#losses] < 0.5 * losses[1], string.format("%g -> %g", losses[1], losses[#losses]))
    end
  end)
end)

describe("keras.layers.Conv2DTranspose", function()
  it("gives Keras 2.2.4's output sizes (deconv_length)", function()
    assert.same({None, 15, 15, 8}, out_shape(L.Conv2DTranspose(8, 3, {strides = 2}), {7, 7, 3}))
    assert.same({None, 14, 14, 8}, out_shape(L.Conv2DTranspose(8, 3, {strides = 2, padding = "same"}), {7, 7, 3}))
    assert.same({None, 14, 14, 8}, out_shape(L.Conv2DTranspose{8, 3, strides = 2, padding = "same",
      output_padding = 1}, {7, 7, 3}))
    assert.same({None, 16, 16, 8}, out_shape(L.Conv2DTranspose{8, 3, strides = 2, output_padding = 1}, {7, 7, 3}))
    assert.same({None, 9, 21, 2}, out_shape(L.Conv2DTranspose{2, {3, 1}, strides = 3}, {3, 7, 1}))
    assert.same({None, 9, 9, 4}, out_shape(L.Conv2DTranspose{4, 3}, {7, 7, 3}))
  end)

  it("has a (kh, kw, filters, in) kernel and a bias; Deconvolution2D is the same class", function()
    local layer = L.Deconvolution2D(6, {3, 2})
    assert.equal(L.Conv2DTranspose, getmetatable(layer))
    layer(keras.Input{shape = {5, 5, 4}})
    local w = layer:get_weights()
    assert.same({3, 2, 6, 4}, w[1].shape)
    assert.same({6}, w[2].shape)
    assert.equal(3 * 2 * 6 * 4 + 6, layer:count_params())
    assert.truthy(layer.weights[1] and layer.name:find("^conv2d_transpose_%d+$"))
  end)

  it("refuses output_padding >= strides, impossible output shapes and other misuse, naming the layer", function()
    assert.error_matches(function() L.Conv2DTranspose{4, 3, strides = 2, output_padding = 2} end,
      "Conv2DTranspose: output_padding 2x2 must be smaller than the strides 2x2", 1, true)
    assert.error_matches(function() L.Conv2DTranspose{4, 3, output_padding = 1} end,
      "output_padding 1x1 must be smaller than the strides 1x1", 1, true)
    -- 'same' with an even kernel and output_padding 0: (n - 1) * 2 rows, which a convolution takes to n - 1
    local bad = L.Conv2DTranspose{4, 4, strides = 2, padding = "same", output_padding = 0, name = "up"}
    assert.error_matches(function() bad(keras.Input{shape = {5, 5, 3}}) end,
      "Conv2DTranspose (up): impossible output shape: an input of 5x5 with kernel_size 4x4, strides 2x2, padding "
      .. "'same' and output_padding 0x0 gives 8x8, which its convolution does not take back to 5x5", 1, true)
    local t = L.Conv2DTranspose{4, 3, name = "t"}
    assert.error_matches(function() t(keras.Input{shape = {5, 5, 5, 3}}) end,
      "Conv2DTranspose (t): expected input with ndim=4 (batch, rows, cols, channels), found ndim=5", 1, true)
    assert.error_matches(function() L.Conv2DTranspose{4, 3, data_format = "channels_first"} end,
      "Conv2DTranspose: data_format 'channels_first' is not supported (channels_last only)", 1, true)
    assert.error_matches(function() L.Conv2DTranspose{4, 3, strides = 2, dilation_rate = 2} end,
      "Conv2DTranspose: strides 2x2 cannot be combined with dilation_rate 2x2", 1, true)
    assert.error_matches(function() L.Conv2DTranspose{4, 3, output_padding = {1, 1, 1}} end,
      "Conv2DTranspose: output_padding must be an integer or a list of 2 integers", 1, true)
    assert.error_matches(function() L.Conv2DTranspose{4} end, "Conv2DTranspose: missing argument 'kernel_size'", 1,
      true)
  end)
end)

describe("the 3-D layers", function()
  it("refuse 4-D input, naming the layer", function()
    for _, l in ipairs{L.Conv3D{2, 3, name = "a"}, L.Conv3DTranspose{2, 3, name = "b"}, L.MaxPooling3D{name = "c"},
                       L.AveragePooling3D{name = "d"}, L.GlobalMaxPooling3D{name = "e"},
                       L.GlobalAveragePooling3D{name = "f"}, L.UpSampling3D{name = "g"},
                       L.ZeroPadding3D{name = "h"}, L.Cropping3D{name = "i"}} do
      assert.error_matches(function() l(keras.Input{shape = {6, 6, 2}}) end,
        l.class_name .. " (" .. l.name .. "): expected input with ndim=5 (batch, depth, rows, cols, channels), "
        .. "found ndim=4 (shape (None, 6, 6, 2))", 1, true)
    end
  end)

  it("name themselves when the window does not fit or the cropping leaves nothing", function()
    local c = L.Conv3D{2, {2, 5, 2}, name = "c3"}
    assert.error_matches(function() c(keras.Input{shape = {4, 4, 4, 1}}) end,
      "Conv3D (c3): kernel extent 2x5x2 is larger than the input 4x4x4 (padding 'valid')", 1, true)
    local p = L.MaxPooling3D{3, name = "p3"}
    assert.error_matches(function() p(keras.Input{shape = {2, 4, 4, 1}}) end,
      "MaxPooling3D (p3): pool size 3x3x3 is larger than the input 2x4x4 (padding 'valid')", 1, true)
    local cr = L.Cropping3D{{{1, 1}, {0, 0}, {0, 0}}, name = "cr"}
    assert.error_matches(function() cr(keras.Input{shape = {2, 4, 4, 1}}) end,
      "Cropping3D (cr): cropping ((1, 1), (0, 0), (0, 0)) leaves nothing of an input of shape (None, 2, 4, 4, 1)", 1,
      true)
    assert.error_matches(function() L.ZeroPadding3D{{1, 2}} end,
      "ZeroPadding3D: padding must be an integer, a list of 3 integers or a list of 3 lists of 2 integers", 1, true)
    assert.error_matches(function() L.UpSampling3D{data_format = "channels_first"} end,
      "UpSampling3D: data_format 'channels_first' is not supported", 1, true)
  end)

  it("take Keras's defaults and forms", function()
    assert.same({None, 2, 3, 4, 5}, out_shape(L.MaxPooling3D(), {4, 6, 8, 5}))
    assert.same({None, 4, 6, 8, 5}, out_shape(L.MaxPooling3D{2, strides = 1, padding = "same"}, {4, 6, 8, 5}))
    assert.same({None, 6, 8, 10, 5}, out_shape(L.ZeroPadding3D(), {4, 6, 8, 5}))
    assert.same({None, 6, 10, 8, 5}, out_shape(L.ZeroPadding3D{{1, 2, 0}}, {4, 6, 8, 5}))
    assert.same({None, 2, 4, 6, 5}, out_shape(L.Cropping3D(), {4, 6, 8, 5}))
    assert.same({None, 8, 12, 16, 5}, out_shape(L.UpSampling3D(), {4, 6, 8, 5}))
    assert.same({None, 5}, out_shape(L.GlobalAveragePooling3D(), {4, 6, 8, 5}))
    assert.same({None, 4, 6, 8, 7}, out_shape(L.Conv3D(7, 3, {padding = "same"}), {4, 6, 8, 5}))
    assert.same({None, 9, 13, 17, 7}, out_shape(L.Conv3DTranspose(7, 3, {strides = 2}), {4, 6, 8, 5}))
    local c = L.Conv3D(7, {1, 2, 3})
    c(keras.Input{shape = {4, 6, 8, 5}})
    assert.same({1, 2, 3, 5, 7}, c:get_weights()[1].shape)
    local t = L.Conv3DTranspose(7, {1, 2, 3})
    t(keras.Input{shape = {4, 6, 8, 5}})
    assert.same({1, 2, 3, 7, 5}, t:get_weights()[1].shape)
    assert.equal(L.MaxPooling3D, L.MaxPool3D)
    assert.equal(L.GlobalAveragePooling3D, L.GlobalAvgPool3D)
  end)
end)

describe("keras.layers.SeparableConv2D, SeparableConv1D and DepthwiseConv2D", function()
  it("hold [depthwise_kernel, pointwise_kernel, bias] in Keras's shapes", function()
    local s = L.SeparableConv2D(8, 3, {depth_multiplier = 2})
    s(keras.Input{shape = {9, 9, 3}})
    local ws = s:get_weights()
    assert.same({3, 3, 3, 2}, ws[1].shape)
    assert.same({1, 1, 6, 8}, ws[2].shape)
    assert.same({8}, ws[3].shape)
    local names = {}
    for i, w in ipairs(s:_ordered_weights()) do names[i] = w.short end
    assert.same({"depthwise_kernel", "pointwise_kernel", "bias"}, names)
    local s1 = L.SeparableConv1D(4, 5, {use_bias = false})
    assert.same({None, 6, 4}, out_shape(s1, {10, 3}))
    ws = s1:get_weights()
    assert.equal(2, #ws)
    assert.same({5, 3, 1}, ws[1].shape)
    assert.same({1, 3, 4}, ws[2].shape)
    local d = L.DepthwiseConv2D(3, {depth_multiplier = 4, padding = "same"})
    assert.same({None, 9, 9, 12}, out_shape(d, {9, 9, 3}))
    ws = d:get_weights()
    assert.same({3, 3, 3, 4}, ws[1].shape)
    assert.same({12}, ws[2].shape)
  end)

  it("refuse misuse, naming the layer", function()
    assert.error_matches(function() L.SeparableConv2D{4, 3, depth_multiplier = 0} end,
      "SeparableConv2D: depth_multiplier must be an integer >= 1, got 0", 1, true)
    assert.error_matches(function() L.SeparableConv1D{4, 3, padding = "causal"} end,
      "SeparableConv1D: padding must be 'valid' or 'same', got 'causal'", 1, true)
    assert.error_matches(function() L.DepthwiseConv2D{3, data_format = "channels_first"} end,
      "DepthwiseConv2D: data_format 'channels_first' is not supported", 1, true)
    local d = L.DepthwiseConv2D{5, name = "dw"}
    assert.error_matches(function() d(keras.Input{shape = {4, 6, 2}}) end,
      "DepthwiseConv2D (dw): kernel extent 5x5 is larger than the input 4x6 (padding 'valid')", 1, true)
    local s = L.SeparableConv2D{4, 3, name = "sep"}
    assert.error_matches(function() s(keras.Input{shape = {6, 2}}) end,
      "SeparableConv2D (sep): expected input with ndim=4 (batch, rows, cols, channels), found ndim=3", 1, true)
    assert.error_matches(function() L.SeparableConv2D{4, 3, pointwise_constraint = "max_nrom"} end,
      "SeparableConv2D: unknown constraint 'max_nrom'", 1, true)
  end)
end)

-- the models of the save/load specs: every new layer, weights drawn at random
local function models()
  local m2 = keras.Sequential{
    L.Conv2D(4, 3, {strides = 2, padding = "same", input_shape = {10, 10, 2}}),
    L.Conv2DTranspose{4, 3, strides = 2, padding = "same", output_padding = 1, activation = "relu"},
    L.SeparableConv2D{5, 3, depth_multiplier = 2},
    L.DepthwiseConv2D{{2, 3}, strides = 2, depth_multiplier = 2, use_bias = false},
    L.Deconvolution2D(3, 2, {strides = 2}),
  }
  local m3 = keras.Sequential{
    L.Conv3D(3, 3, {padding = "same", input_shape = {4, 6, 6, 2}}),
    L.MaxPooling3D(),
    L.ZeroPadding3D{{{1, 1}, {0, 1}, {1, 0}}},
    L.Cropping3D{{{1, 0}, {0, 1}, {0, 0}}},
    L.UpSampling3D{{1, 2, 2}},
    L.Conv3DTranspose{2, 3, strides = 2, padding = "same"},
    L.AveragePooling3D{2, padding = "same"},
    L.GlobalMaxPooling3D(),
  }
  local inp1, inp2 = keras.Input{shape = {9, 3}}, keras.Input{shape = {2, 3, 4, 5}}
  local a = L.GlobalMaxPooling1D()(L.SeparableConv1D{4, 3, strides = 2, padding = "same", depth_multiplier = 2}(inp1))
  local m1 = keras.Model{inputs = {inp1, inp2}, outputs = {a, L.GlobalAveragePooling3D()(inp2)}}
  return {
    {m2, {keras.random.random{2, 10, 10, 2}}},
    {m3, {keras.random.random{2, 4, 6, 6, 2}}},
    {m1, {keras.random.random{2, 9, 3}, keras.random.random{2, 2, 3, 4, 5}}},
  }
end

local function same_outputs(a, b, xs)
  local ya, yb = a:predict(#xs == 1 and xs[1] or xs), b:predict(#xs == 1 and xs[1] or xs)
  if type(ya) ~= "table" or getmetatable(ya) then ya, yb = {ya}, {yb} end
  for i = 1, #ya do assert_close(ya[i]:totable(), yb[i], 1e-6) end
end

describe("saving the new layers", function()
  it("round-trips whole models through .lkm and .h5 with the same outputs", function()
    for k, m in ipairs(models()) do
      local model, xs = m[1], m[2]
      -- weights away from their initial values (zero biases would hide a bias mix-up)
      local ws = model:get_weights()
      for i = 1, #ws do ws[i] = keras.random.random(ws[i].shape) - 0.5 end
      model:set_weights(ws)
      for _, ext in ipairs{"lkm", "h5"} do
        local path = P("m" .. k .. "." .. ext)
        model:save(path)
        local copy = keras.models.load_model(path)
        assert.equal(#model.layers, #copy.layers)
        for i, l in ipairs(model.layers) do assert.equal(l.class_name, copy.layers[i].class_name) end
        same_outputs(model, copy, xs)
      end
      local copy = keras.models.model_from_json(model:to_json())
      copy:set_weights(model:get_weights())
      same_outputs(model, copy, xs)
    end
  end)

  it("writes Keras 2.2.4's config keys and values", function()
    local m = keras.Sequential{L.Conv2DTranspose{4, 3, strides = 2, output_padding = 1, input_shape = {5, 5, 2}},
      L.SeparableConv2D(2, 3), L.DepthwiseConv2D(2)}
    local cfg = keras.saving.json.decode(m:to_json()).config
    local t = cfg[1].config
    assert.same({1, 1}, t.output_padding)
    assert.same({2, 2}, t.strides)
    assert.same({1, 1}, t.dilation_rate)
    assert.same({3, 3}, t.kernel_size)
    local s = cfg[2].config
    assert.equal(1, s.depth_multiplier)
    assert.equal("VarianceScaling", s.pointwise_initializer.class_name)
    assert.is_nil(s.kernel_initializer)
    local d = cfg[3].config
    assert.is_nil(d.filters)
    assert.equal("VarianceScaling", d.depthwise_initializer.class_name)
    local m3 = keras.Sequential{L.Conv3DTranspose{2, 3, input_shape = {3, 3, 3, 1}}, L.Cropping3D{1}}
    local c3 = keras.saving.json.decode(m3:to_json()).config
    assert.is_nil(c3[1].config.dilation_rate)
    assert.equal(keras.saving.json.null, c3[1].config.output_padding)
    assert.same({{1, 1}, {1, 1}, {1, 1}}, c3[2].config.cropping)
  end)

  it("loads the Keras 2.2.4 JSON configs of every new layer (model_from_json) with Keras's shapes and counts",
    function()
    local classes = {}
    for _, name in ipairs{"2d", "3d", "1d", "gap3d"} do
      local text = read_all("tests/fixtures/keras_convlayers_" .. name .. ".json")
      local expect = dofile("tests/fixtures/keras_convlayers_" .. name .. ".expect.lua")
      local model = keras.models.model_from_json(text)
      assert.equal(#expect, #model.layers)
      for i, l in ipairs(model.layers) do
        local want = {}
        for j, d in ipairs(expect[i].shape) do want[j] = d < 0 and None or d end
        assert.same(want, l.output_shape, name .. " layer " .. i)
        assert.equal(expect[i].params, l:count_params(), name .. " layer " .. i)
        classes[l.class_name] = true
      end
      -- and it runs, and saves back the same config
      local again = keras.models.model_from_json(model:to_json())
      again:set_weights(model:get_weights())
    end
    for _, name in ipairs{"Conv2DTranspose", "Conv3DTranspose", "SeparableConv1D", "SeparableConv2D",
                          "DepthwiseConv2D", "Conv3D", "MaxPooling3D", "AveragePooling3D", "GlobalMaxPooling3D",
                          "GlobalAveragePooling3D", "UpSampling3D", "ZeroPadding3D", "Cropping3D"} do
      assert.is_true(classes[name], name)
    end
    local m = keras.models.model_from_json(read_all("tests/fixtures/keras_convlayers_2d.json"))
    assert.same({1, 1}, m.layers[1].output_padding)
    assert.equal(3, m.layers[3].depth_multiplier)
  end)
end)

describe("Keras 2.2.4 .h5 files of the new layers (written by h5py in Keras's layout)", function()
  it("load with their weights and predict what PyTorch computes", function()
    local n = 0
    for _, c in ipairs(dofile("tests/fixtures/keras_convlayers_h5.lua")) do
      local model = keras.models.load_model(c.file)
      local ok, err = pcall(assert_close, c.y, model:predict(keras.tensor(c.x)), 1e-4)
      if not ok then error(c.file .. ": " .. tostring(err)) end
      -- and the weights alone, into the model built from the JSON config
      local fresh = keras.models.model_from_json(read_all(c.file:gsub("%.h5$", ".json")))
      fresh:load_weights(c.file)
      ok, err = pcall(assert_close, c.y, fresh:predict(keras.tensor(c.x)), 1e-4)
      if not ok then error(c.file .. " (load_weights): " .. tostring(err)) end
      n = n + 1
    end
    assert.equal(3, n)
  end)
end)

describe("summary() of the new layers", function()
  it("counts their parameters as Keras does", function()
    local model = keras.Sequential{
      L.Conv2DTranspose{4, 3, input_shape = {6, 6, 3}},       -- 3*3*4*3 + 4
      L.SeparableConv2D{5, 3, depth_multiplier = 2},           -- 3*3*4*2 + 8*5 + 5
      L.DepthwiseConv2D{3, depth_multiplier = 3},              -- 3*3*5*3 + 15
    }
    assert.equal(112 + 117 + 150, model:count_params())
    local lines = {}
    model:summary{print_fn = function(s) lines[#lines + 1] = s end}
    local text = table.concat(lines, "\n")
    -- "name (class)" cut to Keras's 29 columns
    local function row(prefix, shape, count)
      for _, l in ipairs(lines) do
        if l:sub(1, #prefix) == prefix and l:find(shape .. "%s+" .. count) then return true end
      end
      return false
    end
    assert.is_true(row("conv2d_transpose_", "%(None, 8, 8, 4%)", 112))
    assert.is_true(row("separable_conv2d_", "%(None, 6, 6, 5%)", 117))
    assert.is_true(row("depthwise_conv2d_", "%(None, 4, 4, 15%)", 150))
    assert.truthy(text:find("Total params: 379", 1, true))
  end)
end)
