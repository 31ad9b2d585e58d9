-- The weight gradient at a small batch (Dense's x^T dy: a matmul with
-- transpose a summed over at most 32 rows) has its own AVX-512 kernel
-- (src/kernels/linalg.c, tn_small), chosen by measuring against sgemm on
-- first use. Checked here for shapes with tails (columns not a multiple of
-- 16 or 128) against a float64 product: with the kernel forced
-- (keras._core.gemm_packed(1)), with sgemm forced (0) and measured (2); the
-- same floats on 1 and 2 threads; and Dense training that uses it.
local keras = require "keras"
local K = keras.backend
local L = keras.layers
local core = keras._core

-- dW = x^T c through K.gradients of sum(Dense(x) * c)
local function grad_fn(k_in, n)
  local x = keras.Input{shape = {k_in}}
  local c = keras.Input{shape = {n}}
  local dense = L.Dense(n, {use_bias = false})
  local loss = K.sum(K.mul(dense(x), c))
  return K["function"]({x, c}, K.gradients(loss, {dense.kernel}))
end

-- the worst |got - want| over the bound sum_m |x_mi c_mj| * 2^-21, float64
local function worst(got, x, c)
  local g, xs, cs = got:totable(), x:totable(), c:totable()
  local w = 0
  for i = 1, #g do
    for j = 1, #g[i] do
      local s, m = 0, 0
      for r = 1, #xs do
        s = s + xs[r][i] * cs[r][j]
        m = m + math.abs(xs[r][i] * cs[r][j])
      end
      local e = math.abs(g[i][j] - s) / (m * 2 ^ -21 + 1e-30)
      if e > w or e ~= e then w = e ~= e and math.huge or e end
    end
  end
  return w
end

local SHAPES = {{1, 300, 256}, {7, 257, 300}, {16, 512, 130}, {32, 300, 256}, {33, 260, 256}, {5, 9, 7}}
local mode_before, threads_before

describe("the small-batch weight gradient (tn_small)", function()
  setup(function()
    mode_before = core.gemm_packed(2)
    threads_before = core.get_num_threads()
  end)
  teardown(function()
    core.gemm_packed(mode_before)
    core.set_num_threads(threads_before)
  end)

  for _, sh in ipairs(SHAPES) do
    local b, k_in, n = sh[1], sh[2], sh[3]
    it(string.format("matches a float64 product for %d rows, %d x %d, forced, sgemm and measured", b, k_in, n),
      function()
        keras.random.seed(b * 1000 + n)
        local x, c = keras.random.normal({b, k_in}), keras.random.normal({b, n})
        for _, mode in ipairs({1, 0, 2}) do
          core.gemm_packed(mode)
          local f = grad_fn(k_in, n)
          local g = f({x, c})[1]
          assert.same({k_in, n}, g.shape)
          local e = worst(g, x, c)
          assert.is_true(e <= 1, string.format("mode %d: error %.3g of the bound", mode, e))
        end
      end)
  end

  it("gives the same floats on 1 and 2 threads", function()
    core.gemm_packed(1)
    keras.random.seed(5)
    local x, c = keras.random.normal({16, 700}), keras.random.normal({16, 200})
    local f = grad_fn(700, 200)
    core.set_num_threads(1)
    local a = f({x, c})[1]:totable()
    core.set_num_threads(2)
    local b2 = f({x, c})[1]:totable()
    for i = 1, #a do
      for j = 1, #a[i] do
        if a[i][j] ~= b2[i][j] then error(string.format("[%d][%d]: %.9g vs %.9g", i, j, a[i][j], b2[i][j])) end
      end
    end
  end)

  it("trains a Dense model the same with the kernel and with sgemm", function()
    local function run(mode)
      core.gemm_packed(mode)
      keras.random.seed(11)
      local m = keras.Sequential{L.Dense(300, {activation = "relu", input_shape = {400}}),
                                 L.Dense(4, {activation = "softmax"})}
      m:compile{optimizer = keras.optimizers.SGD{lr = 0.05}, loss = "categorical_crossentropy"}
      local x = keras.random.normal({96, 400})
      local y = keras.utils.to_categorical(keras.random.randint(0, 4, {96}), 4)
      local h = m:fit(x, y, {batch_size = 16, epochs = 3, shuffle = false, verbose = 0})
      return h.history.loss
    end
    local own, blas = run(1), run(0)
    assert.is_true(own[3] < own[1], "the loss did not fall")
    for i = 1, 3 do
      assert.is_true(math.abs(own[i] - blas[i]) <= 1e-5 * math.abs(blas[i]) + 1e-6,
        string.format("epoch %d: %.9g with the kernel, %.9g with sgemm", i, own[i], blas[i]))
    end
  end)
end)
