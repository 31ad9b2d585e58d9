-- Dilated transposed convolutions (K.conv2d_transpose and Conv2DTranspose
-- with dilation_rate, TensorFlow's atrous_conv2d_transpose): a transposed
-- convolution is the adjoint of its convolution, so for every x and y
-- <conv2d(x), y> = <x, conv2d_transpose(y)>, with K.conv2d's dilation itself
-- checked against PyTorch in conv_spec.lua. Sums in float64 (Lua numbers).
local keras = require "keras"
local K, L = keras.backend, keras.layers

local function dot(a, b)
  local x, y = a:reshape{-1}:totable(), b:reshape{-1}:totable()
  assert.equal(#x, #y)
  local s = 0
  for i = 1, #x do s = s + x[i] * y[i] end
  return s
end

describe("dilated transposed convolutions", function()
  it("are the adjoint of the dilated convolution (valid and same, square and unequal rates)", function()
    local cases = {
      {n = 9, m = 8, k = {3, 3}, d = {2, 2}, padding = "valid"},
      {n = 7, m = 10, k = {3, 2}, d = {2, 3}, padding = "same"},
      {n = 11, m = 6, k = {2, 3}, d = {3, 1}, padding = "valid"},
    }
    for i, c in ipairs(cases) do
      local kern = keras.random.uniform({c.k[1], c.k[2], 3, 2}, -1, 1, nil, i)   -- (kh, kw, out 3, in 2)
      local x = keras.random.uniform({2, c.n, c.m, 3}, -1, 1, nil, 10 + i)
      local fwd = K.eval(K.conv2d(x, kern, 1, c.padding, nil, c.d))         -- (2, h, w, 2)
      local y = keras.random.uniform(fwd.shape, -1, 1, nil, 20 + i)
      local back = K.eval(K.conv2d_transpose(y, kern, {2, c.n, c.m, 3}, 1, c.padding, nil, c.d))
      assert.same({2, c.n, c.m, 3}, back.shape)
      local lhs, rhs = dot(fwd, y), dot(x, back)
      assert.is_true(math.abs(lhs - rhs) <= 1e-4 * (1 + math.abs(lhs)), string.format("case %d: %.7g vs %.7g", i,
        lhs, rhs))
    end
  end)

  it("Conv2DTranspose takes dilation_rate: Keras's output lengths, the adjoint's numbers, training", function()
    local x = keras.Input{shape = {5, 6, 2}}
    local layer = L.Conv2DTranspose{3, {3, 2}, dilation_rate = 2, use_bias = false}
    local y = layer(x)
    -- deconv_length with the dilated extents 5 and 3, 'valid': n + extent - 1
    assert.same({5 + 4, 6 + 2, 3}, {y.shape[2], y.shape[3], y.shape[4]})
    local m = keras.Model{inputs = x, outputs = y}
    local same = L.Conv2DTranspose{3, 3, dilation_rate = {2, 3}, padding = "same"}
    assert.same({5, 6, 3}, {table.unpack(same(x).shape, 2)})
    local xs = keras.random.uniform({2, 5, 6, 2}, -1, 1, nil, 3)
    local out = m:predict(xs)
    local kern = layer:get_weights()[1]
    local want = K.eval(K.conv2d_transpose(xs, kern, {2, 9, 8, 3}, 1, "valid", nil, {2, 2}))
    assert.is_true((out - want):abs():max() < 1e-6)
    local probe = keras.random.uniform({2, 9, 8, 3}, -1, 1, nil, 4)
    local conv = K.eval(K.conv2d(probe, kern, 1, "valid", nil, {2, 2}))
    assert.is_true(math.abs(dot(conv, xs) - dot(probe, out)) < 1e-4 * (1 + math.abs(dot(conv, xs))))
    m:compile{optimizer = "adam", loss = "mse"}
    local target = keras.random.uniform({2, 9, 8, 3}, -1, 1, nil, 5)
    local losses = m:fit(xs, target, {epochs = 30, verbose = 0}).history.loss
    assert.is_true(losses[30] < losses[1])
    local cfg = layer:get_config()
    assert.same({2, 2}, cfg.dilation_rate)
  end)

  it("refuses strides with a dilation, as TensorFlow's atrous transpose takes none", function()
    assert.error_matches(function() L.Conv2DTranspose{3, 3, strides = 2, dilation_rate = 2} end,
      "Conv2DTranspose: strides 2x2 cannot be combined with dilation_rate 2x2 (a dilated transposed "
      .. "convolution takes strides 1)", 1, true)
    local y = keras.Input{shape = {4, 4, 2}}
    assert.error_matches(function()
      K.conv2d_transpose(y, keras.tensor.ones{3, 3, 3, 2}, {K.shape(y)[1], 9, 9, 3}, 2, "valid", nil, 2)
    end, "K.conv2d_transpose: strides (2, 2) cannot be combined with dilation_rate (2, 2)", 1, true)
  end)
end)
