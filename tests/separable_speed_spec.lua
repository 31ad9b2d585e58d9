-- The fast paths of the separable and pointwise convolutions keep the
-- numbers: SeparableConv1D/2D with activation "relu" fuse it into their
-- pointwise conv2d (one pass, its mask in the gradients) and must train as
-- the linear layer followed by a relu; a pointwise Conv2D and a depthwise
-- block, whatever lowerings the autotuner picks (the packed GEMM, the
-- AVX-512 depthwise kernels), give the same floats for 1 and 2 threads in
-- one process, and the same results within float tolerance as the fixed
-- rules (docs/design.md, "Convolution lowering and autotuning").
local keras = require "keras"
local K = keras.backend
local L = keras.layers

local U_ = dofile("tests/lib/spec_util.lua")
local assert_close = U_.assert_close

-- one SGD epoch over x, y (no shuffling) from the weights w; the weights after
local function train(model, w, x, y)
  model:set_weights(w)
  model:compile{loss = "mse", optimizer = keras.optimizers.SGD{lr = 0.1}}
  model:fit(x, y, {batch_size = 4, epochs = 1, shuffle = false, verbose = 0})
  return model:get_weights()
end

describe("SeparableConv1D/2D with activation 'relu'", function()
  for _, case in ipairs{
    {"SeparableConv2D", {9, 9, 4}, {12, 9, 9, 4}},
    {"SeparableConv1D", {11, 5}, {12, 11, 5}},
  } do
    local name, shape, xshape = case[1], case[2], case[3]
    it(name .. " trains as the linear layer followed by a relu (the relu fused into the pointwise conv)", function()
      keras.random.seed(3)
      local function model(fused)
        local layers = {L[name]{6, 3, padding = "same", depth_multiplier = 2, input_shape = shape,
          activation = fused and "relu" or nil}}
        if not fused then layers[#layers + 1] = L.Activation("relu") end
        layers[#layers + 1] = L.Flatten()
        layers[#layers + 1] = L.Dense(2)
        return keras.Sequential(layers)
      end
      local a, b = model(true), model(false)
      local w0 = a:get_weights()
      b:set_weights(w0)
      local x = keras.random.normal(xshape)
      local y = keras.random.normal{xshape[1], 2}
      assert_close(a:predict(x):totable(), b:predict(x), 1e-6)
      local wa, wb = train(a, w0, x, y), train(b, w0, x, y)
      assert.equal(#w0, #wa)
      for i = 1, #wa do assert_close(wa[i]:totable(), wb[i], 1e-5) end
      -- the fused layer's relu really acts: some outputs are clipped, none negative
      local h = U_.flat(keras.Model{inputs = a.inputs, outputs = a.layers[1].output}:predict(x):totable())
      local zeros, negative = 0, 0
      for _, v in ipairs(h) do
        if v == 0 then zeros = zeros + 1 elseif v < 0 then negative = negative + 1 end
      end
      assert.is_true(zeros > 0 and negative == 0, string.format("%d zeros, %d negative", zeros, negative))
    end)
  end
end)

describe("the pointwise and depthwise lowerings", function()
  local function net()
    keras.random.seed(11)
    local m = keras.Sequential{
      L.Conv2D{32, 3, strides = 2, padding = "same", activation = "relu", input_shape = {20, 20, 3}},
      L.SeparableConv2D{64, 3, padding = "same", activation = "relu"},
      L.DepthwiseConv2D{3, strides = 2, padding = "same", activation = "relu"},
      L.Conv2D{48, 1, activation = "relu"},
      L.GlobalAveragePooling2D(),
      L.Dense(3),
    }
    return m
  end

  it("give the same floats for 1 and 2 threads in one process, and the rules' results within tolerance", function()
    local x = keras.random.normal{24, 20, 20, 3}
    local y = keras.random.normal{24, 3}
    local threads = keras.get_num_threads()
    local w0 = net():get_weights()
    local got = {}
    for k, t in ipairs{1, 2} do
      keras.set_num_threads(t)
      local m = net()
      got[k] = {train(m, w0, x, y), m:predict(x)}
    end
    K.set_conv_autotune(false)
    keras.set_num_threads(1)
    local m = net()
    local rule = {train(m, w0, x, y), m:predict(x)}
    K.set_conv_autotune(true)
    keras.set_num_threads(threads)
    assert.same(got[1][2]:totable(), got[2][2]:totable())
    for i = 1, #got[1][1] do
      assert.same(got[1][1][i]:totable(), got[2][1][i]:totable())
      assert_close(rule[1][i]:totable(), got[1][1][i], 1e-4)
    end
    assert_close(rule[2]:totable(), got[1][2], 1e-4)
  end)
end)
