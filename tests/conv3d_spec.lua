-- K.conv3d, K.conv3d_transpose and the Conv3D / Conv3DTranspose layers on
-- the conv3d and conv3d_transpose ops (src/ops_conv3d.c): outputs and
-- gradients against PyTorch (tests/fixtures/conv3d.lua, made by
-- scripts/fixtures/conv3d_fixtures.py), by both lowerings (the autotuner on
-- and off), the same floats for 1 and 2 threads, graphs of a few nodes,
-- and the refusals of the op.
local keras = require "keras"

local K = keras.backend
local L = keras.layers

local U_ = dofile("tests/lib/spec_util.lua")
local assert_close = U_.assert_close

local cases = dofile("tests/fixtures/conv3d.lua")

-- y and the gradients of sum(y * dy) for x and the kernel of case c
local function run(c)
  local x, k = K.variable(keras.tensor(c.x)), K.variable(keras.tensor(c.k))
  local y
  if c.fn == "conv3d" then
    y = K.conv3d(x, k, c.strides, c.padding, nil, c.dilation)
  else
    y = K.conv3d_transpose(x, k, c.output_shape, c.strides, c.padding)
  end
  local g = K.gradients(K.sum(K.mul(y, K.constant(keras.tensor(c.dy)))), {x, k})
  return K.eval(y), K.eval(g[1]), K.eval(g[2]), y
end

local function check_case(c, what)
  local y, dx, dk, node = run(c)
  for _, t in ipairs{{"y", c.y, y}, {"dx", c.dx, dx}, {"dk", c.k and c.dk, dk}} do
    local ok, err = pcall(assert_close, t[2], t[3], 1e-5)
    if not ok then error(string.format("%s (%s) %s: %s", c.name, what, t[1], tostring(err))) end
  end
  return node
end

describe("conv3d and conv3d_transpose", function()
  after_each(function() K.set_conv_autotune(true) end)

  it("match PyTorch's outputs and gradients by the fixed rules", function()
    K.set_conv_autotune(false)
    local n = 0
    for _, c in ipairs(cases) do
      local y = check_case(c, "rules")
      assert.equal(c.fn, y.op)   -- one op, not a graph of 2-D slices
      n = n + 1
    end
    assert.equal(11, n)
  end)

  it("match them with the autotuner's choices too", function()
    -- two cases (the tuner keeps at most 256 geometries per state, which later specs need too)
    K.set_conv_autotune(true)
    for _, c in ipairs{cases[4], cases[9]} do check_case(c, "autotuned") end
    local passes = {}
    for _, e in ipairs(K.conv_autotune_report().entries) do passes[e.pass] = true end
    assert.is_true(passes.conv3d_forward and passes.conv3d_input_gradient and passes.conv3d_kernel_gradient
      and passes.conv3d_transpose and true or false)
  end)

  it("give the same floats on 1 and 2 threads", function()
    -- 16 samples of 8x8x8x8 by a 3x3x3x8x16 kernel: 28M multiply-adds, three fixed chunks of samples
    local vals, i = {}, 0
    local function fill(shape, d)
      local t = {}
      for j = 1, shape[d] do
        if d == #shape then i = i + 1; t[j] = math.sin(i * 0.37) else t[j] = fill(shape, d + 1) end
      end
      return t
    end
    vals.x, vals.k = fill({16, 8, 8, 8, 8}, 1), fill({3, 3, 3, 8, 16}, 1)
    local before = keras.get_num_threads()
    local out = {}
    for t = 1, 2 do
      keras.set_num_threads(t)
      for _, tuned in ipairs{false, true} do
        K.set_conv_autotune(tuned)
        local x, k = K.variable(keras.tensor(vals.x)), K.variable(keras.tensor(vals.k))
        local y = K.conv3d(x, k, 1, "same")
        local z = K.conv3d_transpose(y, k, {16, 8, 8, 8, 8}, 1, "same")
        local g = K.gradients(K.sum(K.mul(z, z)), {x, k})
        out[#out + 1] = {K.eval(z):totable(), K.eval(g[1]):totable(), K.eval(g[2]):totable()}
      end
    end
    keras.set_num_threads(before)
    assert.same(out[1], out[3])   -- the rules
    assert.same(out[2], out[4])   -- the tuner's choices (kept for the process, whatever the threads)
  end)

  it("train Conv3D with a fused relu and Conv3DTranspose with a bias", function()
    local model = keras.Sequential{
      L.Conv3D{4, 3, padding = "same", activation = "relu", input_shape = {4, 5, 6, 2}},
      L.Conv3DTranspose{3, 2, strides = 2},
      L.GlobalAveragePooling3D{},
      L.Dense{1},
    }
    model:compile{optimizer = "adam", loss = "mse"}
    local i = 0
    local function fill(shape, d, f)
      local t = {}
      for j = 1, shape[d] do
        if d == #shape then i = i + 1; t[j] = f(i) else t[j] = fill(shape, d + 1, f) end
      end
      return t
    end
    local x = keras.tensor(fill({6, 4, 5, 6, 2}, 1, math.sin))
    local y = keras.tensor(fill({6, 1}, 1, math.cos))
    local first = model:evaluate(x, y, {verbose = 0})
    model:fit(x, y, {epochs = 15, batch_size = 3, verbose = 0})
    assert.is_true(model:evaluate(x, y, {verbose = 0}) < first)
  end)

  it("refuse bad attributes and shapes by name", function()
    local x = K.variable(keras.tensor(cases[1].x))
    local k = K.variable(keras.tensor(cases[1].k))
    local function err(f) local ok, e = pcall(f); assert.is_false(ok); return tostring(e) end
    assert.truthy(err(function() K.apply("conv3d", {x, k}, {stride_d = 0}) end):find(
      "conv3d: attribute 'stride_d' must be in [1, 16777216], got 0", 1, true))
    assert.truthy(err(function()
      K.apply("conv3d", {x, k}, {stride_d = 1, stride_h = 1, stride_w = 1, dilation_d = 1, dilation_h = 1,
        dilation_w = 1, pad_left = 0.5})
    end):find("conv3d: attribute 'pad_left' must be an integer", 1, true))
    assert.truthy(err(function() K.conv3d(x, K.variable(keras.tensor(cases[2].k))) end):find(
      "expects 2 input channels", 1, true))
    assert.truthy(err(function() K.conv3d(K.variable(keras.tensor({{1}})), k) end):find("K.conv3d: expected x", 1,
      true))
    assert.truthy(err(function() K.conv3d_transpose(x, k, {2, 3, 3, 3, 3}) end):find(
      "does not give x's", 1, true))
  end)
end)
