-- The transposed convolution op (conv2d_transpose, src/ops_conv_transpose.h)
-- through K.conv2d_transpose and the Conv2DTranspose layer, against PyTorch's
-- F.conv_transpose2d in float64 (tests/fixtures/conv_transpose.lua, made by
-- scripts/fixtures/conv_transpose_fixtures.py): outputs, the gradients of
-- sum(y * dy) with respect to x, the kernel and the bias, the fused bias and
-- relu of the layer; the same bits for 1 and 2 threads; the graph it builds.
local keras = require "keras"
local K, L = keras.backend, keras.layers

local U_ = dofile("tests/lib/spec_util.lua")
local assert_close, sample_shape = U_.assert_close, U_.sample_shape

local cases = dofile("tests/fixtures/conv_transpose.lua")

local function check(name, want, got, tol)
  local ok, err = pcall(assert_close, want, got, tol or 1e-5)
  if not ok then error(name .. ": " .. tostring(err), 2) end
end

-- the layer of case c on a model, its weights the fixture's
local function layer_model(c)
  local layer = L.Conv2DTranspose(c.layer)
  local x = keras.tensor(c.x)
  local inp = keras.Input{shape = sample_shape(x)}
  local model = keras.Model{inputs = inp, outputs = layer(inp)}
  layer:set_weights{keras.tensor(c.kernel), keras.tensor(c.bias)}
  return model, layer, inp, x
end

describe("conv2d_transpose against PyTorch's conv_transpose2d", function()
  it("K.conv2d_transpose gives the fixtures' outputs", function()
    assert.is_true(#cases >= 8)
    for _, c in ipairs(cases) do
      local y = K.conv2d_transpose(keras.tensor(c.x), keras.tensor(c.kernel), c.output_shape, c.strides, c.padding,
        nil, c.dilation)
      assert.same(c.output_shape, y.shape)
      check(c.name, c.y, y)
    end
  end)

  it("K.gradients of K.conv2d_transpose: x, the kernel and the bias", function()
    for _, c in ipairs(cases) do
      local x, dyt = keras.tensor(c.x), keras.tensor(c.dy)
      local inp, dy = keras.Input{shape = sample_shape(x)}, keras.Input{shape = sample_shape(dyt)}
      local kv, bv = K.variable(keras.tensor(c.kernel)), K.variable(keras.tensor(c.bias))
      local oshape = {K.shape(inp)[1], c.output_shape[2], c.output_shape[3], c.output_shape[4]}
      local y = K.bias_add(K.conv2d_transpose(inp, kv, oshape, c.strides, c.padding, nil, c.dilation), bv)
      if c.activation == "relu" then y = K.relu(y) end
      local f = K["function"]({inp, dy}, K.gradients(K.sum(K.mul(y, dy)), {inp, kv, bv}))
      local gs = f({x, dyt})
      check(c.name .. " dx", c.dx, gs[1])
      check(c.name .. " dkernel", c.dkernel, gs[2])
      check(c.name .. " dbias", c.dbias, gs[3])
    end
  end)

  it("Conv2DTranspose (the bias and relu fused in the op) predicts and trains as PyTorch says", function()
    for _, c in ipairs(cases) do
      local model, layer, inp, x = layer_model(c)
      check(c.name .. " predict", c.yb, model:predict(x))
      local dy = keras.Input{shape = sample_shape(keras.tensor(c.dy))}
      local vars = {inp, layer.kernel, layer.bias}
      local f = K["function"]({inp, dy}, K.gradients(K.sum(K.mul(model.outputs[1], dy)), vars))
      local gs = f({x, keras.tensor(c.dy)})
      check(c.name .. " layer dx", c.dx, gs[1])
      check(c.name .. " layer dkernel", c.dkernel, gs[2])
      check(c.name .. " layer dbias", c.dbias, gs[3])
    end
  end)

  it("is one conv2d_transpose node, with the relu and the bias inside", function()
    local c = cases[1]
    local _, layer, inp = layer_model(c)
    local y = layer(inp)
    assert.equal("conv2d_transpose", y.op)
    assert.equal(3, #y:inputs())
    local plain = L.Conv2DTranspose{4, 3, strides = 2, padding = "same", activation = "tanh"}(inp)
    assert.equal("tanh", plain.op)
    assert.equal("conv2d_transpose", plain:inputs()[1].op)
  end)

  it("gives the same bits on 1 and 2 threads (outputs and gradients)", function()
    local before = keras.get_num_threads and keras.get_num_threads() or 1
    local c = cases[#cases]
    local model, layer, inp = layer_model(c)
    local dy = keras.Input{shape = sample_shape(keras.tensor(c.dy))}
    local f = K["function"]({inp, dy}, K.gradients(K.sum(K.mul(model.outputs[1], dy)), {inp, layer.kernel,
      layer.bias}))
    local xs = keras.random.uniform({16, 3, 4, 32}, -1, 1, nil, 3)
    local dys = keras.random.uniform({16, 6, 8, 8}, -1, 1, nil, 4)
    local runs = {}
    for t = 1, 2 do
      keras.set_num_threads(t)
      local out = {model:predict(xs)}
      for _, g in ipairs(f({xs, dys})) do out[#out + 1] = g end
      runs[t] = out
    end
    keras.set_num_threads(before)
    for i = 1, #runs[1] do
      assert.same(runs[1][i]:totable(), runs[2][i]:totable())
    end
  end)

  it("refuses output shapes its convolution does not take back to x", function()
    local x = keras.tensor.ones{1, 4, 4, 2}
    local k = keras.tensor.ones{3, 3, 5, 2}
    assert.error_matches(function() K.conv2d_transpose(x, k, {1, 11, 8, 5}, 2, "valid") end,
      "K.conv2d_transpose: output_shape (1, 11, 8, 5) does not give x's rows (4) with strides 2, kernel 3 and "
      .. "padding 'valid'", 1, true)
    local by_name = {stride_h = 2, stride_w = 2, dilation_h = 1, dilation_w = 1, shape = {1, 8, 11, 5}}
    assert.error_matches(function() K.apply("conv2d_transpose", {x, k}, by_name) end,
      "conv2d_transpose: an output of 11 columns does not come from the input's 4", 1, true)
    by_name.shape, by_name.pad_bottom = {1, 8, 8, 5}, 1
    assert.error_matches(function() K.apply("conv2d_transpose", {x, k}, by_name) end,
      "op 'conv2d_transpose': unknown attribute 'pad_bottom'", 1, true)
  end)
end)
