-- keras.backend beyond the basics (API.md section 11): K["function"], the
-- learning phase, K.gradients, symbolic shapes and random draws, and the rest
-- of Keras 2.2.4's backend functions. Values are checked against float64
-- formulas written here (direct loops for the convolutions, numpy's
-- definitions for the scans and losses); random draws against their
-- distributions; refusals against their messages.
local keras = require "keras"

local K = keras.backend
local T = keras.tensor
local L = keras.layers

local U_ = dofile("tests/lib/spec_util.lua")
local flat = U_.flat

-- float32 results against float64 references: |got - want| <= tol * (1 + |want|)
local function close(got, want, tol, what)
  tol = tol or 1e-5
  if type(got) ~= "table" and type(got) ~= "number" then got = got:totable() end
  local g, w = flat(got), flat(want)
  assert.equal(#w, #g, (what or "") .. ": element count")
  for i = 1, #w do
    if not (math.abs(g[i] - w[i]) <= tol * (1 + math.abs(w[i]))) then
      error(string.format("%s: element %d is %.9g, expected %.9g", what or "", i, g[i], w[i]), 2)
    end
  end
end


local function mat(t) return t:totable() end

-- a Dense layer's output in float64 from its weights
local function dense_ref(x, W, b, relu)
  local out = {}
  for i = 1, #x do
    out[i] = {}
    for j = 1, #W[1] do
      local s = b[j]
      for k = 1, #W do s = s + x[i][k] * W[k][j] end
      out[i][j] = relu and math.max(s, 0) or s
    end
  end
  return out
end

describe("K[\"function\"]", function()
  it("fetches an intermediate layer's output (the FAQ's recipe)", function()
    keras.random.seed(1)
    local inp = keras.Input{shape = {4}}
    local hidden = L.Dense(3, {activation = "relu"})
    local h = hidden(inp)
    local model = keras.Model{inputs = inp, outputs = L.Dense(2)(h)}
    local f = K["function"]({model.input}, {hidden.output})
    local x = keras.random.normal({5, 4})
    local out = f({x})
    assert.equal(1, #out)
    local w = hidden:get_weights()
    close(out[1], dense_ref(mat(x), mat(w[1]), mat(w[2]), true), 1e-5, "hidden")
    assert.equal(K["function"], K.func)
  end)

  it("runs Dropout as in training when the learning phase is 1, as in inference when 0", function()
    keras.random.seed(2)
    local inp = keras.Input{shape = {50}}
    local d = L.Dropout(0.5)(inp)
    local f = K["function"]({inp, K.learning_phase()}, {d})
    local x = T.ones({40, 50})
    close(f({x, 0})[1], mat(x), 0, "phase 0")
    local y = flat(f({x, 1})[1]:totable())
    local zeros = 0
    for _, v in ipairs(y) do
      assert.is_true(v == 0 or math.abs(v - 2) < 1e-6, "a value neither dropped nor scaled: " .. v)
      if v == 0 then zeros = zeros + 1 end
    end
    -- 2000 draws at rate 0.5: the count of zeros is 1000 +- 22 (one sd)
    assert.is_true(zeros > 880 and zeros < 1120, "zeros: " .. zeros)
    -- true and false work as 1 and 0
    close(f({x, false})[1], mat(x), 0, "phase false")
  end)

  it("runs BatchNormalization on the batch's statistics when the phase is 1, leaving the moving ones", function()
    local inp = keras.Input{shape = {2}}
    local bn = L.BatchNormalization()
    local f = K["function"]({inp, K.learning_phase()}, {bn(inp)})
    local x = {{1, 10}, {3, 20}, {2, 60}}
    local want = {}
    for j = 1, 2 do
      local m, v = 0, 0
      for i = 1, 3 do m = m + x[i][j] / 3 end
      for i = 1, 3 do v = v + (x[i][j] - m) ^ 2 / 3 end
      for i = 1, 3 do
        want[i] = want[i] or {}
        want[i][j] = (x[i][j] - m) / math.sqrt(v + 1e-3)
      end
    end
    close(f({T(x), 1})[1], want, 1e-5, "training")
    local w = bn:get_weights()
    close(w[3], {0, 0}, 0, "moving mean kept")
    close(w[4], {1, 1}, 0, "moving variance kept")
    local want0 = {}
    for i = 1, 3 do want0[i] = {x[i][1] / math.sqrt(1.001), x[i][2] / math.sqrt(1.001)} end
    close(f({T(x), 0})[1], want0, 1e-5, "inference")
  end)

  it("compiles once per learning phase for the largest batch seen, not per call", function()
    local inp = keras.Input{shape = {3}}
    local f = K["function"]({inp}, {K.square(inp)})
    local ud = K._functions[f]
    f({T.ones({5, 3})})
    f({T.ones({2, 3})})
    local r = f({T.ones({5, 3})})
    assert.same({[0] = 5}, ud:plans())
    assert.same({5, 3}, r[1].shape)
    assert.same({2, 3}, f({T.ones({2, 3})})[1].shape)
    f({T.ones({8, 3})})
    assert.same({[0] = 8}, ud:plans())
  end)

  it("names a wrong number of inputs, a wrong shape and a non-placeholder input", function()
    local inp = keras.Input{shape = {3}}
    local f = K["function"]({inp, K.learning_phase()}, {inp})
    assert.error_matches(function() f({T.ones({2, 3})}) end, "K.function: expected 2 inputs, got 1", 1, true)
    assert.error_matches(function() f({T.ones({2, 4}), 0}) end,
      "K.function: input 1 has shape (2, 4), expected (None, 3)", 1, true)
    assert.error_matches(function() f({T.ones({2, 3}), 2}) end,
      "K.function: the learning phase must be 0 or 1, got 2", 1, true)
    assert.error_matches(function() f(T.ones({2, 3})) end,
      "K.function: call it with a list of values, one per input ({x, ...}), got a tensor", 1, true)
    assert.error_matches(function() K["function"]({K.square(inp)}, {inp}) end,
      "K.function: input 1 is a computed tensor (square), not a placeholder such as an Input", 1, true)
    assert.error_matches(function() K["function"]({inp, 3}, {inp}) end,
      "K.function: input 2 must be a symbolic tensor (an Input, K.placeholder or K.learning_phase()), got number",
      1, true)
  end)

  it("applies updates after each call, from the values before it", function()
    local inp = keras.Input{shape = {2}}
    local dense = L.Dense(2, {use_bias = false, kernel_initializer = "zeros"})
    local y = dense(inp)
    local f = K["function"]({inp}, {y}, {K.update_add(dense.kernel, K.ones_like(dense.kernel))})
    local x = T{{1, 2}}
    close(f({x})[1], {{0, 0}}, 0, "first call sees the zero kernel")
    close(f({x})[1], {{3, 3}}, 1e-6, "second call sees the kernel + 1")
    close(dense:get_weights()[1], {{2, 2}, {2, 2}}, 0, "kernel after two updates")
    local g = K["function"]({inp}, {y}, {{dense.kernel, K.zeros_like(dense.kernel)}})
    g({x})
    close(dense:get_weights()[1], {{0, 0}, {0, 0}}, 0, "a pair {x, new} sets x")
  end)

  it("follows K.set_learning_phase when the phase is not an input", function()
    keras.random.seed(3)
    local inp = keras.Input{shape = {100}}
    local d = L.Dropout(0.5)(inp)
    K.set_learning_phase(1)
    assert.equal(1, K.learning_phase())
    local f = K["function"]({inp}, {d})
    local y = flat(f({T.ones({4, 100})})[1]:totable())
    local zeros = 0
    for _, v in ipairs(y) do if v == 0 then zeros = zeros + 1 end end
    assert.is_true(zeros > 100, "dropout did not run: " .. zeros .. " zeros")
    K.clear_session()
    assert.is_true(keras._core.is_node(K.learning_phase()))
    assert.error_matches(function() K.set_learning_phase(2) end, "K.set_learning_phase: expected 0 or 1, got 2", 1,
      true)
  end)
end)

describe("K.gradients", function()
  it("differentiates with respect to inputs", function()
    local inp = keras.Input{shape = {3}}
    local c = T{{1, -2, 0.5}}
    local loss = K.sum(K.mul(K.square(inp), c))
    local g = K.gradients(loss, {inp})
    local x = T{{0.5, 1, -3}, {2, 0, 1}}
    local want = {}
    for i, row in ipairs(mat(x)) do
      want[i] = {}
      for j, v in ipairs(row) do want[i][j] = 2 * v * mat(c)[1][j] end
    end
    close(K["function"]({inp}, g)({x})[1], want, 1e-6, "2 x c")
  end)

  it("differentiates with respect to the weights model.trainable_weights lists", function()
    local inp = keras.Input{shape = {3}}
    local model = keras.Model{inputs = inp, outputs = L.Dense(2)(inp)}
    local loss = K.sum(model.output)    -- not a scalar per sample: summed, as tf.gradients does
    local g = K.gradients(loss, model.trainable_weights)
    assert.equal(2, #g)
    local x = T{{1, 2, 3}, {4, 5, 6}}
    local r = K["function"]({inp}, g)({x})
    close(r[1], {{5, 5}, {7, 7}, {9, 9}}, 1e-6, "dW: column sums of x")
    close(r[2], {2, 2}, 1e-6, "db: the batch size")
    -- the same through the layer's kernel node
    local gk = K.gradients(K.sum(model.output), model.layers[2].kernel)
    close(K["function"]({inp}, gk)({x})[1], {{5, 5}, {7, 7}, {9, 9}}, 1e-6, "dW by node")
  end)

  it("gives the gradient of logsumexp, the softmax, through the new ops", function()
    local inp = keras.Input{shape = {3}}
    local g = K.gradients(K.sum(K.logsumexp(inp, 1)), {inp})
    local x = {{1, 2, 3}, {1000, 1001, 999}}
    local want = {}
    for i, row in ipairs(x) do
      local m, s = math.max(table.unpack(row)), 0
      for _, v in ipairs(row) do s = s + math.exp(v - m) end
      want[i] = {}
      for j, v in ipairs(row) do want[i][j] = math.exp(v - m) / s end
    end
    close(K["function"]({inp}, g)({T(x)})[1], want, 1e-6, "softmax")
  end)

  it("gives zeros of the run-time shape for an input the loss does not use", function()
    local a, b = keras.Input{shape = {3}}, keras.Input{shape = {2}}
    local g = K.gradients(K.sum(K.square(a)), {a, b})
    local r = K["function"]({a, b}, g)({T{{1, 2, 3}, {4, 5, 6}}, T{{1, 1}, {1, 1}}})
    close(r[1], {{2, 4, 6}, {8, 10, 12}}, 1e-6, "used")
    close(r[2], {{0, 0}, {0, 0}}, 0, "unused")
  end)

  it("stops at K.stop_gradient, given one tensor or a list", function()
    local a = keras.Input{shape = {2}}
    local s = K.stop_gradient({K.square(a), K.mul(a, 3)})
    assert.equal(2, #s)
    local g = K.gradients(K.sum(K.add(K.mul(a, s[1]), s[2])), {a})
    close(K["function"]({a}, g)({T{{1, 2}}})[1], {{1, 4}}, 1e-6, "d/da (a * stop(a^2) + stop(3a))")
  end)

  it("takes K.variables (symbolic variables) and refuses what is not a tensor", function()
    local v = K.variable(T{1, 2})
    close(K.eval(K.gradients(K.sum(K.square(v)), {v})[1]), {2, 4}, 1e-6)   -- d sum(v^2) = 2v
    assert.error_matches(function() K.gradients(T{1}, {}) end,
      "K.gradients: loss must be a symbolic tensor (computed from K.variable, Input or layer tensors), got a tensor",
      1, true)
  end)
end)

describe("K.shape and symbolic shapes", function()
  it("is a 1-D tensor: concrete for a tensor, symbolic with the batch filled in at run time", function()
    close(K.shape(T.zeros({2, 5, 3})), {2, 5, 3}, 0, "concrete")
    local inp = keras.Input{shape = {4, 3}}
    local s = K.shape(inp)
    assert.same({3}, s.shape)
    local r = K["function"]({inp}, {s, K.shape(inp)[1], K.shape(inp)[3]})({T.zeros({7, 4, 3})})
    close(r[1], {7, 4, 3}, 0, "K.shape(x)")
    assert.same({}, r[2].shape)
    close(r[2], {7}, 0, "K.shape(x)[1] is the batch size")
    close(r[3], {3}, 0, "K.shape(x)[3]")
    assert.error_matches(function() return K.shape(inp)[4] end, "K.shape(x)[i]: position 4 is out of range 1..3", 1,
      true)
  end)

  it("samples as the variational autoencoder does: K.random_normal(K.shape(z_mean)), anew at every call", function()
    keras.random.seed(4)
    local inp = keras.Input{shape = {8}}
    local z_mean = L.Dense(8, {kernel_initializer = "zeros"})(inp)
    local z_log_var = L.Dense(8, {kernel_initializer = "zeros"})(inp)
    local z = L.Lambda(function(args)
      local m, lv = args[1], args[2]
      return K.add(m, K.mul(K.exp(K.mul(lv, 0.5)), K.random_normal(K.shape(m))))
    end)({z_mean, z_log_var})
    local model = keras.Model{inputs = inp, outputs = z}
    local x = T.zeros({500, 8})
    local a = model:predict(x)
    local b = model:predict(x)
    assert.same({500, 8}, a.shape)
    local va, vb = flat(a:totable()), flat(b:totable())
    local s, s2, same = 0, 0, 0
    for i, v in ipairs(va) do
      s, s2 = s + v, s2 + v * v
      if v == vb[i] then same = same + 1 end
    end
    local n = #va
    local mean, sd = s / n, math.sqrt(s2 / n - (s / n) ^ 2)
    -- 4000 draws of N(0, 1): the mean within 4 standard errors (0.063), the sd within 5%
    assert.is_true(math.abs(mean) < 0.064, "mean " .. mean)
    assert.is_true(math.abs(sd - 1) < 0.05, "sd " .. sd)
    assert.is_true(same < 10, "the second predict repeated " .. same .. " draws")
    assert.same({3, 8}, model:predict(T.zeros({3, 8})).shape)
  end)

  it("is reproducible after keras.random.seed", function()
    local inp = keras.Input{shape = {3}}
    local f = K["function"]({inp}, {K.random_uniform({K.shape(inp)[1], 4}, -1, 2)})
    keras.random.seed(9)
    local a = f({T.zeros({6, 3})})[1]
    keras.random.seed(9)
    local b = f({T.zeros({6, 3})})[1]
    assert.same({6, 4}, a.shape)
    assert.same(a:totable(), b:totable())
    for _, v in ipairs(flat(a:totable())) do assert.is_true(v >= -1 and v < 2) end
  end)

  it("draws binomial and truncated normal values of the right kind", function()
    keras.random.seed(5)
    local inp = keras.Input{shape = {1000}}
    local f = K["function"]({inp}, {K.random_binomial(K.shape(inp), 0.25), K.truncated_normal(K.shape(inp), 3, 0.5)})
    local r = f({T.zeros({4, 1000})})
    local ones, s = 0, 0
    for _, v in ipairs(flat(r[1]:totable())) do
      assert.is_true(v == 0 or v == 1)
      ones = ones + v
    end
    -- 4000 draws, p = 0.25: 1000 +- 27 (one sd)
    assert.is_true(ones > 860 and ones < 1140, "ones " .. ones)
    for _, v in ipairs(flat(r[2]:totable())) do
      assert.is_true(v >= 2 and v <= 4, "truncated beyond 2 sd: " .. v)
      s = s + v
    end
    assert.is_true(math.abs(s / 4000 - 3) < 0.03, "truncated mean " .. s / 4000)
  end)

  it("accepts symbolic shapes in K.zeros, K.ones and K.reshape", function()
    local inp = keras.Input{shape = {2, 3}}
    local f = K["function"]({inp}, {K.zeros(K.shape(inp)), K.ones({K.shape(inp)[1], 5}),
                                    K.reshape(inp, {K.shape(inp)[1], 6})})
    local x = T{{{1, 2, 3}, {4, 5, 6}}}
    local r = f({x})
    close(r[1], {{{0, 0, 0}, {0, 0, 0}}}, 0, "zeros")
    close(r[2], {{1, 1, 1, 1, 1}}, 0, "ones")
    close(r[3], {{1, 2, 3, 4, 5, 6}}, 0, "reshape")
    assert.error_matches(function() K.random_normal({4, K.shape(inp)[1]}) end,
      "K.random_normal: only the first axis can be the batch axis, got shape element 2 = K.shape(x)[1]", 1, true)
    assert.error_matches(function() K.random_normal({2}, 0, 1, nil, 42) end,
      "K.random_normal: a per-call seed is not supported: call keras.random.seed(n) once", 1, true)
    assert.error_matches(function() K.random_normal({2}, 0, 1, "float64") end,
      "K.random_normal: dtype 'float64' is not supported: every tensor holds float32", 1, true)
  end)

  it("takes Keras's keyword arguments as an options table", function()
    keras.random.seed(6)
    local a = K.random_normal{shape = {2000}, mean = 5, stddev = 0.1}
    local m = 0
    for _, v in ipairs(flat(a:totable())) do m = m + v end
    assert.is_true(math.abs(m / 2000 - 5) < 0.01)
    assert.same({3, 2}, K.random_uniform({3, 2}, {maxval = 3}).shape)
    assert.error_matches(function() K.random_uniform({3}, {max = 3}) end, "K.random_uniform: unknown argument 'max'",
      1, true)
  end)
end)

describe("K.in_train_phase, K.in_test_phase, K.switch", function()
  it("chooses statically for training = 1 or 0 and at run time for the learning phase", function()
    local a, b = T{1, 2}, T{3, 4}
    close(K.in_train_phase(a, b, 1), {1, 2}, 0)
    close(K.in_train_phase(a, b, 0), {3, 4}, 0)
    close(K.in_test_phase(a, b, 1), {3, 4}, 0)
    close(K.in_train_phase(function() return a end, function() return b end, true), {1, 2}, 0)
    local inp = keras.Input{shape = {2}}
    local y = K.in_train_phase(K.mul(inp, 10), inp)
    local f = K["function"]({inp, K.learning_phase()}, {y})
    close(f({T{{1, 2}}, 1})[1], {{10, 20}}, 0, "training")
    close(f({T{{1, 2}}, 0})[1], {{1, 2}}, 0, "inference")
  end)

  it("selects elementwise, a lower-rank condition applying along the trailing axes", function()
    close(K.switch(T{1, 0, 1}, T{1, 2, 3}, T{-1, -2, -3}), {1, -2, 3}, 0)
    close(K.switch(T{1, 0}, T{{1, 2}, {3, 4}}, T{{5, 6}, {7, 8}}), {{1, 2}, {7, 8}}, 0)
    close(K.switch(1, T{1}, T{2}), {1}, 0)
    -- the unused branch may be infinite: no NaN leaks through
    close(K.switch(T{1, 0}, T{1, 1}, K.log(T{0, 1})), {1, 0}, 0)
    -- its gradient goes to the chosen branch only
    local inp = keras.Input{shape = {3}}
    local cond = T{{1, 0, 1}}
    local g = K.gradients(K.sum(K.switch(cond, K.mul(inp, 3), K.square(inp))), {inp})
    close(K["function"]({inp}, g)({T{{1, 2, 3}}})[1], {{3, 4, 3}}, 1e-6, "d switch")
    assert.error_matches(function() K.switch(T{{1}}, T{1}, T{2}) end,
      "K.switch: the condition has rank 2, more than the expressions' rank 1", 1, true)
  end)
end)

describe("K shape functions", function()
  it("tile, repeat, repeat_elements, stack, reverse and slice as numpy", function()
    local x = T{{1, 2}, {3, 4}}
    close(K.tile(x, {2, 3}), {{1, 2, 1, 2, 1, 2}, {3, 4, 3, 4, 3, 4}, {1, 2, 1, 2, 1, 2}, {3, 4, 3, 4, 3, 4}}, 0)
    close(K["repeat"](x, 2), {{{1, 2}, {1, 2}}, {{3, 4}, {3, 4}}}, 0)
    close(K.repeat_elements(x, 2, 0), {{1, 2}, {1, 2}, {3, 4}, {3, 4}}, 0)
    close(K.repeat_elements(x, 3, 1), {{1, 1, 1, 2, 2, 2}, {3, 3, 3, 4, 4, 4}}, 0)
    close(K.stack({T{1, 2}, T{3, 4}}), {{1, 2}, {3, 4}}, 0)
    close(K.stack({T{1, 2}, T{3, 4}}, -1), {{1, 3}, {2, 4}}, 0)
    close(K.reverse(x, 1), {{2, 1}, {4, 3}}, 0)
    close(K.reverse(x, {0, 1}), {{4, 3}, {2, 1}}, 0)
    close(K.slice(T{{1, 2, 3}, {4, 5, 6}}, {1, 1}, {1, -1}), {{5, 6}}, 0)
    close(K.arange(5), {0, 1, 2, 3, 4}, 0)
    close(K.arange(2, 10, 3), {2, 5, 8}, 0)
    close(K.eye(2), {{1, 0}, {0, 1}}, 0)
    close(K.temporal_padding(T{{{1}, {2}}}, {1, 2}), {{{0}, {1}, {2}, {0}, {0}}}, 0)
    close(K.spatial_2d_padding(T{{{{1}}}}, {{1, 0}, {0, 1}}), {{{{0}, {0}}, {{1}, {0}}}}, 0)
    close(K.resize_images(T{{{{1}, {2}}}}, 2, 1), {{{{1}, {2}}, {{1}, {2}}}}, 0)
  end)

  it("keeps the batch axis of symbolic tensors and refuses to move it", function()
    local inp = keras.Input{shape = {2}}
    local r = K["repeat"](inp, 3)
    assert.same({keras.None, 3, 2}, K.int_shape(r))
    assert.same({keras.None, 6, 6}, K.int_shape(K.tile(r, {1, 2, 3})))
    assert.same({keras.None, 2, 2}, K.int_shape(K.stack({inp, inp}, 1)))
    assert.same({keras.None, 4}, K.int_shape(K.repeat_elements(inp, 2, 1)))
    assert.error_matches(function() K.tile(inp, {2, 1}) end, "K.tile: cannot tile the batch axis of a symbolic tensor",
      1, true)
    assert.error_matches(function() K.stack({inp, inp}) end,
      "K.stack: stacking symbolic tensors on axis 0 would move their batch axis", 1, true)
    local f = K["function"]({inp}, {K.repeat_elements(inp, 2, 1), K.stack({inp, K.neg(inp)}, 1)})
    local res = f({T{{1, 2}, {3, 4}}})
    close(res[1], {{1, 1, 2, 2}, {3, 3, 4, 4}}, 0)
    close(res[2], {{{1, 2}, {-1, -2}}, {{3, 4}, {-3, -4}}}, 0)
  end)
end)

describe("K scans and reductions", function()
  it("cumsum and cumprod run along an axis (default 0) as numpy", function()
    local x = {{1, 2, 3}, {4, 5, 6}}
    close(K.cumsum(T(x)), {{1, 2, 3}, {5, 7, 9}}, 0)
    close(K.cumsum(T(x), 1), {{1, 3, 6}, {4, 9, 15}}, 0)
    close(K.cumprod(T(x)), {{1, 2, 3}, {4, 10, 18}}, 0)
    close(K.cumprod(T(x), -1), {{1, 2, 6}, {4, 20, 120}}, 0)
    -- gradient of sum(cumsum(x) * c) along axis 1: reverse running sums of c
    local inp = keras.Input{shape = {3}}
    local c = T{{1, 2, 3}}
    local g = K.gradients(K.sum(K.mul(K.cumsum(inp, 1), c)), {inp})
    close(K["function"]({inp}, g)({T{{0, 0, 0}}})[1], {{6, 5, 3}}, 1e-6, "d cumsum")
  end)

  it("logsumexp is stable for large values", function()
    local x = {{1, 2, 3}, {1000, 1000, 1000}}
    local want = {}
    for i, row in ipairs(x) do
      local m, s = math.max(table.unpack(row)), 0
      for _, v in ipairs(row) do s = s + math.exp(v - m) end
      want[i] = m + math.log(s)
    end
    close(K.logsumexp(T(x), 1), want, 1e-6)
    close(K.logsumexp(T(x), 1, true), {{want[1]}, {want[2]}}, 1e-6)
  end)

  it("in_top_k counts ties as in the top k", function()
    local p = T{{0.1, 0.5, 0.4}, {0.3, 0.3, 0.4}, {0.6, 0.2, 0.2}}
    close(K.in_top_k(p, T{2, 0, 1}, 1), {0, 0, 0}, 0)
    close(K.in_top_k(p, T{1, 2, 0}, 1), {1, 1, 1}, 0)
    close(K.in_top_k(p, T{2, 1, 2}, 2), {1, 1, 1}, 0)
  end)

  it("sin and cos as libm", function()
    local xs = {-2, -0.5, 0, 1, 3}
    local s, c = {}, {}
    for i, v in ipairs(xs) do s[i], c[i] = math.sin(v), math.cos(v) end
    close(K.sin(T(xs)), s, 1e-6)
    close(K.cos(T(xs)), c, 1e-6)
  end)
end)

describe("K losses", function()
  local eps = 1e-7
  local function clip(v) return math.min(math.max(v, eps), 1 - eps) end

  it("categorical_crossentropy normalizes and clips probabilities, or takes logits", function()
    local t, o = {{0, 1, 0}, {0.5, 0.5, 0}}, {{0.2, 0.6, 0.2}, {2, 1, 1}}
    local want, want_l = {}, {}
    for i = 1, 2 do
      local s = 0
      for _, v in ipairs(o[i]) do s = s + v end
      local acc = 0
      for j = 1, 3 do acc = acc - t[i][j] * math.log(clip(o[i][j] / s)) end
      want[i] = acc
      local m, z = math.max(table.unpack(o[i])), 0
      for j = 1, 3 do z = z + math.exp(o[i][j] - m) end
      acc = 0
      for j = 1, 3 do acc = acc - t[i][j] * (o[i][j] - m - math.log(z)) end
      want_l[i] = acc
    end
    close(K.categorical_crossentropy(T(t), T(o)), want, 1e-6)
    close(K.categorical_crossentropy(T(t), T(o), true), want_l, 1e-6)
    close(K.categorical_crossentropy{T(t), T(o), from_logits = true}, want_l, 1e-6)
  end)

  it("sparse_categorical_crossentropy takes integer targets of shape (batch,) or (batch, 1)", function()
    local o = {{0.2, 0.7, 0.1}, {0.5, 0.25, 0.25}}
    local ids = {1, 2}
    local want, want_l = {}, {}
    for i = 1, 2 do
      -- Keras: log of the clipped output fed to a softmax cross entropy
      local z = 0
      for j = 1, 3 do z = z + clip(o[i][j]) end
      want[i] = -(math.log(clip(o[i][ids[i] + 1])) - math.log(z))
      local m, s = math.max(table.unpack(o[i])), 0
      for j = 1, 3 do s = s + math.exp(o[i][j] - m) end
      want_l[i] = -(o[i][ids[i] + 1] - m - math.log(s))
    end
    close(K.sparse_categorical_crossentropy(T(ids), T(o)), want, 1e-6)
    close(K.sparse_categorical_crossentropy(T{{1}, {2}}, T(o)), want, 1e-6)
    close(K.sparse_categorical_crossentropy(T(ids), T(o), true), want_l, 1e-6)
  end)

  it("binary_crossentropy clips probabilities, or takes logits, stably", function()
    local t, o = {1, 0, 1, 0}, {0.9, 0.2, 1.0, 0.0}
    local want = {}
    for i = 1, 4 do
      local p = clip(o[i])
      want[i] = -(t[i] * math.log(p) + (1 - t[i]) * math.log(1 - p))
    end
    close(K.binary_crossentropy(T(t), T(o)), want, 1e-4)
    local lg = {3, -2, 100, -100}
    local want_l = {}
    for i = 1, 4 do
      local x = lg[i]
      want_l[i] = math.max(x, 0) - x * t[i] + math.log(1 + math.exp(-math.abs(x)))
    end
    close(K.binary_crossentropy(T(t), T(lg), true), want_l, 1e-6)
  end)
end)

describe("K normalization and bias", function()
  it("batch_normalization: (x - mean) / sqrt(var + epsilon) * gamma + beta", function()
    local x = {{1, 2}, {3, 5}}
    local mean, var, beta, gamma = {2, 3}, {1, 4}, {0.5, -1}, {2, 3}
    local want = {}
    for i = 1, 2 do
      want[i] = {}
      for j = 1, 2 do want[i][j] = (x[i][j] - mean[j]) / math.sqrt(var[j] + 1e-3) * gamma[j] + beta[j] end
    end
    close(K.batch_normalization(T(x), T(mean), T(var), T(beta), T(gamma)), want, 1e-6)
    -- along axis 0 of a (2, 2)
    local want0 = {}
    for i = 1, 2 do
      want0[i] = {}
      for j = 1, 2 do want0[i][j] = (x[i][j] - mean[i]) / math.sqrt(var[i] + 0.01) * gamma[i] + beta[i] end
    end
    close(K.batch_normalization(T(x), T(mean), T(var), T(beta), T(gamma), {axis = 0, epsilon = 0.01}), want0, 1e-6)
    local y, m, v = K.normalize_batch_in_training(T(x), nil, nil, {0})
    close(m, {2, 3.5}, 1e-6)
    close(v, {1, 2.25}, 1e-6)
    close(y, {{-1 / math.sqrt(1.001), -1.5 / math.sqrt(2.251)}, {1 / math.sqrt(1.001), 1.5 / math.sqrt(2.251)}}, 1e-6)
  end)

  it("bias_add adds along the last axis and names a bias that does not fit", function()
    close(K.bias_add(T{{1, 2}, {3, 4}}, T{10, 20}), {{11, 22}, {13, 24}}, 0)
    assert.error_matches(function() K.bias_add(T{{1, 2}}, T{1, 2, 3}) end,
      "K.bias_add: a bias of shape (3,) does not fit x of shape (1, 2)", 1, true)
    assert.error_matches(function() K.bias_add(T{{1, 2}}, T{1, 2}, "channels_first") end,
      "K.bias_add: data_format 'channels_first' is not supported: lkeras computes channels_last only", 1, true)
  end)
end)

describe("K.dropout", function()
  it("applies always, scaling kept values by 1 / (1 - level), on concrete and symbolic tensors", function()
    keras.random.seed(7)
    local y = flat(K.dropout(T.ones({1000}), 0.2):totable())
    local zeros = 0
    for _, v in ipairs(y) do
      assert.is_true(v == 0 or math.abs(v - 1.25) < 1e-6)
      if v == 0 then zeros = zeros + 1 end
    end
    assert.is_true(zeros > 160 and zeros < 240, "zeros " .. zeros)
    -- in a Lambda at predict time too (Keras's K.dropout ignores the phase)
    local inp = keras.Input{shape = {500}}
    local model = keras.Model{inputs = inp, outputs = L.Lambda(function(x) return K.dropout(x, 0.5) end)(inp)}
    local p = flat(model:predict(T.ones({2, 500})):totable())
    zeros = 0
    for _, v in ipairs(p) do if v == 0 then zeros = zeros + 1 end end
    assert.is_true(zeros > 400 and zeros < 600, "predict zeros " .. zeros)
    -- noise_shape: one draw per row, broadcast over the columns
    local r = K.dropout(T.ones({50, 4}), 0.5, {50, 1}):totable()
    for _, row in ipairs(r) do
      for j = 2, 4 do assert.equal(row[1], row[j]) end
    end
  end)
end)

describe("K convolution and pooling", function()
  -- direct float64 convolution, channels_last, zero padding pt/pl before
  local function conv_ref(x, w, sh, sw, dh, dw, pt, pl, oh, ow)
    local out = {}
    local KH, KW, C, O = #w, #w[1], #w[1][1], #w[1][1][1]
    for n = 1, #x do
      out[n] = {}
      for i = 1, oh do
        out[n][i] = {}
        for j = 1, ow do
          out[n][i][j] = {}
          for o = 1, O do
            local s = 0
            for a = 1, KH do
              for b = 1, KW do
                local r, c = (i - 1) * sh + (a - 1) * dh - pt + 1, (j - 1) * sw + (b - 1) * dw - pl + 1
                if r >= 1 and r <= #x[n] and c >= 1 and c <= #x[n][1] then
                  for ch = 1, C do s = s + x[n][r][c][ch] * w[a][b][ch][o] end
                end
              end
            end
            out[n][i][j][o] = s
          end
        end
      end
    end
    return out
  end

  local function gen(shape, seed)
    local k = seed
    local function rec(d)
      local t = {}
      for i = 1, shape[d] do
        if d == #shape then
          k = k + 1
          t[i] = ((k * 7919) % 2001) / 1000 - 1
        else
          t[i] = rec(d + 1)
        end
      end
      return t
    end
    return rec(1)
  end

  it("conv2d with 'valid' and 'same' padding, strides and dilation", function()
    local x, w = gen({2, 5, 6, 3}, 1), gen({3, 2, 3, 4}, 5)
    close(K.conv2d(T(x), T(w)), conv_ref(x, w, 1, 1, 1, 1, 0, 0, 3, 5), 1e-5, "valid")
    -- same, strides 2: out (3, 3); rows: total (3-1)*2+3-5 = 2 -> top 1; cols: (3-1)*2+2-6 = 0
    close(K.conv2d(T(x), T(w), {2, 2}, "same"), conv_ref(x, w, 2, 2, 1, 1, 1, 0, 3, 3), 1e-5, "same strided")
    close(K.conv2d{T(x), T(w), padding = "valid", dilation_rate = {2, 1}}, conv_ref(x, w, 1, 1, 2, 1, 0, 0, 1, 5),
      1e-5, "dilated")
  end)

  it("conv1d with 'valid', 'same' and 'causal' padding", function()
    local x, w = gen({2, 7, 3}, 2), gen({3, 3, 2}, 9)
    local function as2d(v)
      local out = {}
      for n = 1, #v do out[n] = {v[n]} end
      return out
    end
    local w2 = {w}
    local function ref(st, dl, pl, ow)
      local r = conv_ref(as2d(x), w2, 1, st, 1, dl, 0, pl, 1, ow)
      for n = 1, #r do r[n] = r[n][1] end
      return r
    end
    close(K.conv1d(T(x), T(w)), ref(1, 1, 0, 5), 1e-5, "valid")
    close(K.conv1d(T(x), T(w), 1, "same"), ref(1, 1, 1, 7), 1e-5, "same")
    close(K.conv1d(T(x), T(w), 1, "causal", nil, 2), ref(1, 2, 4, 7), 1e-5, "causal dilated")
    close(K.conv1d(T(x), T(w), 2), ref(2, 1, 0, 3), 1e-5, "strided")
  end)

  it("depthwise_conv2d and separable_conv2d / separable_conv1d", function()
    local x, dk = gen({2, 5, 4, 3}, 3), gen({2, 3, 3, 2}, 11)    -- C = 3, multiplier 2
    local pk = gen({1, 1, 6, 4}, 17)
    -- depthwise reference: output channel c*M + m from input channel c alone
    local function dw_ref(sh, sw, pt, pl, oh, ow)
      local out = {}
      for n = 1, 2 do
        out[n] = {}
        for i = 1, oh do
          out[n][i] = {}
          for j = 1, ow do
            out[n][i][j] = {}
            for c = 1, 3 do
              for m = 1, 2 do
                local acc = 0
                for a = 1, 2 do
                  for b = 1, 3 do
                    local r, cc = (i - 1) * sh + a - pt, (j - 1) * sw + b - pl
                    if r >= 1 and r <= 5 and cc >= 1 and cc <= 4 then acc = acc + x[n][r][cc][c] * dk[a][b][c][m] end
                  end
                end
                out[n][i][j][(c - 1) * 2 + m] = acc
              end
            end
          end
        end
      end
      return out
    end
    local dv = dw_ref(1, 1, 0, 0, 4, 2)
    close(K.depthwise_conv2d(T(x), T(dk)), dv, 1e-5, "depthwise valid")
    -- same, strides 2: rows out 3, total (3-1)*2+2-5 = 1 -> top 0; cols out 2, total (2-1)*2+3-4 = 1 -> left 0
    close(K.depthwise_conv2d(T(x), T(dk), {2, 2}, "same"), dw_ref(2, 2, 0, 0, 3, 2), 1e-5, "depthwise same")
    local sep = {}
    for n = 1, 2 do
      sep[n] = {}
      for i = 1, 4 do
        sep[n][i] = {}
        for j = 1, 2 do
          sep[n][i][j] = {}
          for o = 1, 4 do
            local acc = 0
            for q = 1, 6 do acc = acc + dv[n][i][j][q] * pk[1][1][q][o] end
            sep[n][i][j][o] = acc
          end
        end
      end
    end
    close(K.separable_conv2d(T(x), T(dk), T(pk)), sep, 1e-5, "separable 2-D")
    -- 1-D: the same numbers with the rows as batch entries
    local x1, dk1, pk1 = {}, {}, {{}}
    for i = 1, 5 do x1[i] = x[1][i] end
    for b = 1, 3 do dk1[b] = dk[1][b] end
    pk1[1] = pk[1][1]
    local want1 = {}
    for i = 1, 5 do
      want1[i] = {}
      for j = 1, 2 do
        want1[i][j] = {}
        for o = 1, 4 do
          local acc = 0
          for c = 1, 3 do
            for m = 1, 2 do
              local d = 0
              for b = 1, 3 do d = d + x1[i][j + b - 1][c] * dk1[b][c][m] end
              acc = acc + d * pk1[1][(c - 1) * 2 + m][o]
            end
          end
          want1[i][j][o] = acc
        end
      end
    end
    close(K.separable_conv1d(T(x1), T(dk1), T(pk1)), want1, 1e-5, "separable 1-D")
    assert.error_matches(function() K.depthwise_conv2d(T(x), T(gen({2, 3, 4, 1}, 1))) end,
      "K.depthwise_conv2d: the depthwise kernel has 4 input channels, x has 3", 1, true)
  end)

  it("conv2d_transpose scatters each input through the kernel, as the gradient of conv2d", function()
    -- y[i*s + a - pt][j*s + b - pl][o] += x[i][j][c] k[a][b][o][c]
    local function ref(x, k, s, pt, pl, oh, ow)
      local out = {}
      for n = 1, #x do
        out[n] = {}
        for i = 1, oh do
          out[n][i] = {}
          for j = 1, ow do
            out[n][i][j] = {}
            for o = 1, #k[1][1] do out[n][i][j][o] = 0 end
          end
        end
        for i = 1, #x[n] do
          for j = 1, #x[n][1] do
            for a = 1, #k do
              for b = 1, #k[1] do
                local r, c = (i - 1) * s[1] + a - pt, (j - 1) * s[2] + b - pl
                if r >= 1 and r <= oh and c >= 1 and c <= ow then
                  for o = 1, #k[1][1] do
                    for ch = 1, #x[n][i][j] do
                      out[n][r][c][o] = out[n][r][c][o] + x[n][i][j][ch] * k[a][b][o][ch]
                    end
                  end
                end
              end
            end
          end
        end
      end
      return out
    end
    local x, k = gen({2, 3, 2, 3}, 4), gen({3, 2, 4, 3}, 8)     -- kernel (KH, KW, out 4, in 3)
    close(K.conv2d_transpose(T(x), T(k), {2, 5, 3, 4}), ref(x, k, {1, 1}, 0, 0, 5, 3), 1e-5, "valid")
    close(K.conv2d_transpose(T(x), T(k), {2, 7, 5, 4}, {2, 2}), ref(x, k, {2, 2}, 0, 0, 7, 5), 1e-5, "valid strided")
    close(K.conv2d_transpose(T(x), T(k), {2, 8, 5, 4}, {2, 2}), ref(x, k, {2, 2}, 0, 0, 8, 5), 1e-5,
      "valid strided, one row more")
    -- same, strides 2: output 6 x 4; rows total (3-1)*2+3-6 = 1 -> top 0; cols (2-1)*2+2-4 = 0
    close(K.conv2d_transpose(T(x), T(k), {2, 6, 4, 4}, {2, 2}, "same"), ref(x, k, {2, 2}, 0, 0, 6, 4), 1e-5,
      "same strided")
    -- same, strides 1: rows total 2 -> top 1; cols total 1 -> left 0
    close(K.conv2d_transpose(T(x), T(k), {2, 3, 2, 4}, 1, "same"), ref(x, k, {1, 1}, 1, 0, 3, 2), 1e-5, "same")
    -- with a symbolic batch: the output shape's batch as K.shape(x)[1]
    local inp = keras.Input{shape = {3, 2, 3}}
    local y = K.conv2d_transpose(inp, T(k), {K.shape(inp)[1], 7, 5, 4}, {2, 2})
    assert.same({keras.None, 7, 5, 4}, K.int_shape(y))
    close(K["function"]({inp}, {y})({T(x)})[1], ref(x, k, {2, 2}, 0, 0, 7, 5), 1e-5, "symbolic")
    -- every input reaches the whole kernel ('valid', nothing cropped): d sum(y) / dx = sum of k over a, b, o
    local ksum = {0, 0, 0}
    for a = 1, 3 do for b = 1, 2 do for o = 1, 4 do for c = 1, 3 do ksum[c] = ksum[c] + k[a][b][o][c] end end end end
    local gx = K["function"]({inp}, K.gradients(K.sum(y), {inp}))({T(x)})[1]
    for _, sample in ipairs(gx:totable()) do
      for _, row in ipairs(sample) do
        for _, cell in ipairs(row) do close(cell, ksum, 1e-5, "d conv2d_transpose") end
      end
    end
    assert.error_matches(function() K.conv2d_transpose(T(x), T(k), {2, 9, 5, 4}, {2, 2}) end,
      "K.conv2d_transpose: output_shape (2, 9, 5, 4) does not give x's rows (3) with strides 2, kernel 3 and "
      .. "padding 'valid'", 1, true)
  end)

  it("local_conv1d and local_conv2d: a kernel of its own at every output position", function()
    local x, k = gen({2, 6, 3}, 6), gen({2, 9, 4}, 12)    -- steps 6, size 3, strides 2 -> 2 positions
    local want = {}
    for n = 1, 2 do
      want[n] = {}
      for i = 1, 2 do
        want[n][i] = {}
        for f = 1, 4 do
          local acc = 0
          for a = 1, 3 do
            for c = 1, 3 do acc = acc + x[n][(i - 1) * 2 + a][c] * k[i][(a - 1) * 3 + c][f] end
          end
          want[n][i][f] = acc
        end
      end
    end
    close(K.local_conv1d(T(x), T(k), 3, 2), want, 1e-5, "local_conv1d")
    local x2, k2 = gen({2, 4, 3, 2}, 3), gen({6, 8, 5}, 14)   -- 2x2 windows, stride 1 -> 3 x 2 positions
    local want2 = {}
    for n = 1, 2 do
      want2[n] = {}
      for i = 1, 3 do
        want2[n][i] = {}
        for j = 1, 2 do
          want2[n][i][j] = {}
          for f = 1, 5 do
            local acc = 0
            for a = 1, 2 do
              for b = 1, 2 do
                for c = 1, 2 do
                  acc = acc + x2[n][i + a - 1][j + b - 1][c] * k2[(i - 1) * 2 + j][((a - 1) * 2 + (b - 1)) * 2 + c][f]
                end
              end
            end
            want2[n][i][j][f] = acc
          end
        end
      end
    end
    close(K.local_conv2d(T(x2), T(k2), {2, 2}, {1, 1}, {3, 2}), want2, 1e-5, "local_conv2d")
    local inp = keras.Input{shape = {4, 3, 2}}
    local y = K.local_conv2d(inp, T(k2), {2, 2}, {1, 1}, {3, 2})
    assert.same({keras.None, 3, 2, 5}, K.int_shape(y))
    close(K["function"]({inp}, {y})({T(x2)})[1], want2, 1e-5, "symbolic")
    assert.error_matches(function() K.local_conv1d(T(x), T(k), 3, 1) end,
      "K.local_conv1d: a kernel of shape (2, 9, 4) does not fit inputs (2, 6, 3) with kernel_size 3 and strides 1 "
      .. "(expected (4, 9, filters))", 1, true)
  end)

  it("conv3d, pool3d, resize_volumes and spatial_3d_padding", function()
    local x, k = gen({2, 4, 3, 3, 2}, 5), gen({2, 2, 1, 2, 3}, 7)
    -- direct 3-D convolution with zero padding p before each axis
    local function ref(s, p, od, oh, ow)
      local out = {}
      for n = 1, 2 do
        out[n] = {}
        for d = 1, od do
          out[n][d] = {}
          for i = 1, oh do
            out[n][d][i] = {}
            for j = 1, ow do
              out[n][d][i][j] = {}
              for o = 1, 3 do
                local acc = 0
                for a = 1, 2 do
                  for b = 1, 2 do
                    for c = 1, 1 do
                      local z, r, q = (d - 1) * s[1] + a - p[1], (i - 1) * s[2] + b - p[2], (j - 1) * s[3] + c - p[3]
                      if z >= 1 and z <= 4 and r >= 1 and r <= 3 and q >= 1 and q <= 3 then
                        for ch = 1, 2 do acc = acc + x[n][z][r][q][ch] * k[a][b][c][ch][o] end
                      end
                    end
                  end
                end
                out[n][d][i][j][o] = acc
              end
            end
          end
        end
      end
      return out
    end
    close(K.conv3d(T(x), T(k)), ref({1, 1, 1}, {0, 0, 0}, 3, 2, 3), 1e-5, "conv3d valid")
    -- same, strides 2: depth out 2, total (2-1)*2+2-4 = 0; rows out 2, total (2-1)*2+2-3 = 1 -> top 0
    close(K.conv3d(T(x), T(k), {2, 2, 2}, "same"), ref({2, 2, 2}, {0, 0, 0}, 2, 2, 2), 1e-5, "conv3d same strided")
    -- pooling: 2 x 2 x 2 windows, strides 2, 'same' pads the depth (4: none) and the rows/cols (3: one after)
    local function pref(mode)
      local out = {}
      for n = 1, 2 do
        out[n] = {}
        for d = 1, 2 do
          out[n][d] = {}
          for i = 1, 2 do
            out[n][d][i] = {}
            for j = 1, 2 do
              out[n][d][i][j] = {}
              for ch = 1, 2 do
                local m, sum, cnt = -math.huge, 0, 0
                for a = 0, 1 do
                  for b = 0, 1 do
                    for c = 0, 1 do
                      local z, r, q = (d - 1) * 2 + a + 1, (i - 1) * 2 + b + 1, (j - 1) * 2 + c + 1
                      if r <= 3 and q <= 3 then
                        local v = x[n][z][r][q][ch]
                        m, sum, cnt = math.max(m, v), sum + v, cnt + 1
                      end
                    end
                  end
                end
                out[n][d][i][j][ch] = mode == "max" and m or sum / cnt
              end
            end
          end
        end
      end
      return out
    end
    close(K.pool3d(T(x), {2, 2, 2}, {2, 2, 2}, "same"), pref("max"), 1e-6, "pool3d max")
    close(K.pool3d(T(x), {2, 2, 2}, {2, 2, 2}, "same", nil, "avg"), pref("avg"), 1e-5, "pool3d avg")
    local v = T{{{{{1}, {2}}}}}                                  -- (1, 1, 1, 2, 1)
    close(K.resize_volumes(v, 2, 1, 2), {{{{{1}, {1}, {2}, {2}}}, {{{1}, {1}, {2}, {2}}}}}, 0, "resize_volumes")
    close(K.spatial_3d_padding(v, {{0, 1}, {0, 0}, {1, 0}}), {{{{{0}, {1}, {2}}}, {{{0}, {0}, {0}}}}}, 0, "padding")
  end)

  it("conv3d_transpose scatters each input through the 3-D kernel", function()
    local x, k = gen({1, 2, 2, 2, 2}, 3), gen({2, 2, 1, 3, 2}, 5)   -- kernel (2, 2, 1, out 3, in 2)
    local function ref(s, p, od, oh, ow)
      local out = {}
      for d = 1, od do
        out[d] = {}
        for i = 1, oh do
          out[d][i] = {}
          for j = 1, ow do out[d][i][j] = {0, 0, 0} end
        end
      end
      for z = 1, 2 do
        for r = 1, 2 do
          for q = 1, 2 do
            for a = 1, 2 do
              for b = 1, 2 do
                local d, i, j = (z - 1) * s[1] + a - p[1], (r - 1) * s[2] + b - p[2], (q - 1) * s[3] + 1 - p[3]
                if d >= 1 and d <= od and i >= 1 and i <= oh and j >= 1 and j <= ow then
                  for o = 1, 3 do
                    for c = 1, 2 do out[d][i][j][o] = out[d][i][j][o] + x[1][z][r][q][c] * k[a][b][1][o][c] end
                  end
                end
              end
            end
          end
        end
      end
      return {out}
    end
    close(K.conv3d_transpose(T(x), T(k), {1, 3, 3, 2, 3}), ref({1, 1, 1}, {0, 0, 0}, 3, 3, 2), 1e-5, "valid")
    close(K.conv3d_transpose(T(x), T(k), {1, 4, 4, 4, 3}, {2, 2, 2}, "same"), ref({2, 2, 2}, {0, 0, 0}, 4, 4, 4),
      1e-5, "same strided")
  end)

  it("pool2d takes the max or the average of each window", function()
    local x = {{{{1}, {2}, {3}}, {{4}, {5}, {6}}, {{7}, {8}, {9}}}}
    close(K.pool2d(T(x), {2, 2}), {{{{5}, {6}}, {{8}, {9}}}}, 0, "max")
    close(K.pool2d(T(x), {2, 2}, {1, 1}, "valid", nil, "avg"), {{{{3}, {4}}, {{6}, {7}}}}, 1e-6, "avg")
    -- same, strides 2: the padded cells are ignored
    close(K.pool2d(T(x), {2, 2}, {2, 2}, "same", nil, "avg"), {{{{3}, {4.5}}, {{7.5}, {9}}}}, 1e-6, "avg same")
    assert.error_matches(function() K.pool2d(T(x), {2, 2}, 1, "valid", nil, "median") end,
      "K.pool2d: pool_mode must be 'max' or 'avg', got 'median'", 1, true)
  end)
end)

describe("K variables, values and updates", function()
  it("update, update_add, update_sub and moving_average_update set a K.variable", function()
    local v = K.variable(T{1, 2})
    K.update(v, T{5, 6})
    close(K.get_value(v), {5, 6}, 0)
    K.update_add(v, T{1, 1})
    close(K.get_value(v), {6, 7}, 0)
    K.update_sub(v, 2)
    close(K.get_value(v), {4, 5}, 0)
    K.moving_average_update(v, T{0, 10}, 0.75)
    close(K.get_value(v), {3, 6.25}, 1e-6)
    K.batch_set_value({{v, T{1, 1}}})
    close(K.batch_get_value({v})[1], {1, 1}, 0)
    assert.error_matches(function() K.update(v, T{1, 2, 3}) end, "K.update: the new value has shape (3,), x has (2,)",
      1, true)
  end)

  it("constant takes a dtype and a shape; variable refuses what it cannot hold", function()
    close(K.eval(K.constant(3, nil, {2})), {3, 3}, 0)
    close(K.eval(K.constant({1, 2, 3, 4}, "float32", {2, 2})), {{1, 2}, {3, 4}}, 0)
    assert.same({2, 2}, K.constant({1, 2, 3, 4}, nil, {2, 2}).shape)
    -- TensorFlow 1's rule, which Keras 2.2.4 passes on: a shorter list is padded with its last value
    close(K.eval(K.constant({1, 2, 3}, nil, {2, 2})), {{1, 2}, {3, 3}}, 0)
    assert.error_matches(function() K.constant({1, 2, 3, 4, 5}, nil, {2, 2}) end,
      "K.constant: 5 values do not fit shape (2, 2)", 1, true)
    assert.error_matches(function() K.constant(1, "float64") end,
      "K.constant: dtype 'float64' is not supported", 1, true)
    assert.error_matches(function() K.variable({1}, nil, nil, function(w) return w end) end,
      "K.variable: constraint is not supported", 1, true)
  end)

  it("count_params, dtype, placeholder, is_placeholder, eye", function()
    assert.equal(6, K.count_params(T.zeros({2, 3})))
    assert.error_matches(function() K.count_params(keras.Input{shape = {3}}) end,
      "K.count_params: axis 0 of shape (None, 3) is not known", 1, true)
    assert.equal("float32", K.dtype(T{1}))
    local p = K.placeholder{shape = {keras.None, 4}}
    assert.same({keras.None, 4}, K.int_shape(p))
    assert.is_true(K.is_placeholder(p))
    assert.is_false(K.is_placeholder(K.square(p)))
    assert.same({keras.None}, K.int_shape(K.placeholder{ndim = 1}))
    close(K["function"]({p}, {K.sum(p, 1)})({T{{1, 2, 3, 4}}})[1], {10}, 0)
    assert.error_matches(function() K.placeholder{shape = {2, keras.None}} end,
      "K.placeholder: axis 1 is None: only the first axis (the batch) may be None here", 1, true)
    assert.error_matches(function() K.placeholder{shape = {2}, sparse = true} end,
      "K.placeholder: sparse tensors are not supported: every tensor is dense", 1, true)
  end)
end)

describe("K.rnn, K.map_fn, K.foldl, K.foldr", function()
  -- h_t = tanh(x_t W + h_{t-1} U), float64; mask: output and state carried over
  local function rnn_ref(x, W, U, backwards, mask)
    local outs, h = {}, {}
    for n = 1, #x do
      h[n] = {}
      for j = 1, #U do h[n][j] = 0 end
    end
    local steps = #x[1]
    for k = 1, steps do
      local t = backwards and steps - k + 1 or k
      for n = 1, #x do
        outs[n] = outs[n] or {}
        local new = {}
        for j = 1, #U do
          local v = 0
          for i = 1, #W do v = v + x[n][t][i] * W[i][j] end
          for i = 1, #U do v = v + h[n][i] * U[i][j] end
          new[j] = (math.exp(2 * v) - 1) / (math.exp(2 * v) + 1)   -- tanh
        end
        if mask and mask[n][t] == 0 then new = h[n] end
        h[n] = new
        outs[n][k] = new
      end
    end
    return outs, h
  end

  it("unrolls a step function over the time axis, forwards, backwards and with a mask", function()
    local x = {{{0.5, -1}, {0.2, 0.3}, {1, 0.4}}, {{-0.3, 0.8}, {0.6, -0.5}, {0.1, 0.9}}}
    local W = {{0.4, -0.6, 0.2}, {0.3, 0.5, -0.1}}
    local U = {{0.1, 0.2, -0.3}, {-0.4, 0.3, 0.2}, {0.5, -0.2, 0.1}}
    local inp = keras.Input{shape = {3, 2}}
    local Wt, Ut = K.constant(W), K.constant(U)
    local function step(xt, states)
      local h = K.tanh(K.add(K.dot(xt, Wt), K.dot(states[1], Ut)))
      return h, {h}
    end
    local h0 = K.zeros({K.shape(inp)[1], 3})
    for _, backwards in ipairs{false, true} do
      local last, outputs, states = K.rnn(step, inp, {h0}, backwards)
      assert.same({keras.None, 3, 3}, K.int_shape(outputs))
      local r = K["function"]({inp}, {last, outputs, states[1]})({T(x)})
      local want, h = rnn_ref(x, W, U, backwards)
      close(r[2], want, 1e-5, "outputs")
      close(r[1], h, 1e-5, "last output")
      close(r[3], h, 1e-5, "state")
    end
    local mask_in = keras.Input{shape = {3}}
    local last, outputs = K.rnn(step, inp, {h0}, false, mask_in)
    local mask = {{1, 0, 1}, {1, 1, 0}}
    local r = K["function"]({inp, mask_in}, {last, outputs})({T(x), T(mask)})
    local want, h = rnn_ref(x, W, U, false, mask)
    close(r[2], want, 1e-5, "masked outputs")
    close(r[1], h, 1e-5, "masked last output")
    -- the gradient flows through the unrolled steps
    local g = K.gradients(K.sum(last), {inp})
    assert.same({2, 3, 2}, K["function"]({inp, mask_in}, g)({T(x), T(mask)})[1].shape)
    assert.error_matches(function() K.rnn(step, inp, {h0}, false, nil, nil, false, 5) end,
      "K.rnn: input_length 5 differs from the time axis of the inputs (3)", 1, true)
    assert.error_matches(function() K.rnn(function(xt) return xt, {} end, inp, {h0}) end,
      "K.rnn: step_function returned 0 states, expected 1", 1, true)
  end)

  it("map_fn, foldl and foldr loop over a known first axis", function()
    local x = T{{1, 2}, {3, 4}, {5, 6}}
    close(K.map_fn(function(r) return K.mul(r, r) end, x), {{1, 4}, {9, 16}, {25, 36}}, 0)
    close(K.foldl(function(acc, r) return K.add(K.mul(acc, 2), r) end, x), {15, 22}, 0)   -- 2 (2 x1 + x2) + x3
    close(K.foldr(function(acc, r) return K.sub(r, acc) end, x, T{0, 0}), {3, 4}, 0)
    assert.error_matches(function() K.map_fn(K.square, keras.Input{shape = {2}}) end,
      "K.map_fn: cannot loop over the batch axis of a symbolic tensor", 1, true)
  end)
end)

describe("K.ctc_batch_cost", function()
  -- brute force: the probability of every path of the input's length that
  -- collapses (repeats merged, blanks dropped) to the label
  local function ctc_ref(probs, label, tlen)
    local C = #probs[1]
    local blank, total, path = C - 1, 0, {}
    local function rec(t, p)
      if t > tlen then
        local out, prev = {}, nil
        for i = 1, tlen do
          local c = path[i]
          if c ~= prev and c ~= blank then out[#out + 1] = c end
          prev = c
        end
        if #out ~= #label then return end
        for i = 1, #out do if out[i] ~= label[i] then return end end
        total = total + p
        return
      end
      for c = 0, C - 1 do
        path[t] = c
        rec(t + 1, p * probs[t][c + 1])
      end
    end
    rec(1, 1)
    return -math.log(total)
  end

  it("is the negative log of the summed probability of the paths, on concrete and symbolic tensors", function()
    keras.random.seed(3)
    local B, steps, C = 3, 5, 4
    local y_pred = K.softmax(keras.random.normal({B, steps, C}))
    local labels, ll, il = {{1, 1, 0}, {2, 0, 0}, {0, 2, 1}}, {{2}, {1}, {3}}, {{5}, {4}, {5}}
    local yp = y_pred:totable()
    local want = {}
    for b = 1, B do
      -- Keras: log(y_pred + epsilon) taken as logits (normalized again)
      local probs = {}
      for t = 1, steps do
        local z = 0
        for c = 1, C do z = z + yp[b][t][c] + 1e-7 end
        probs[t] = {}
        for c = 1, C do probs[t][c] = (yp[b][t][c] + 1e-7) / z end
      end
      local lab = {}
      for i = 1, ll[b][1] do lab[i] = labels[b][i] end
      want[b] = {ctc_ref(probs, lab, il[b][1])}
    end
    close(K.ctc_batch_cost(T(labels), y_pred, T(il), T(ll)), want, 1e-5, "concrete")
    local yin = keras.Input{shape = {steps, C}}
    local lin, iin, llin = keras.Input{shape = {3}}, keras.Input{shape = {1}}, keras.Input{shape = {1}}
    local loss = K.ctc_batch_cost(lin, yin, iin, llin)
    assert.same({keras.None, 1}, K.int_shape(loss))
    local f = K["function"]({lin, yin, iin, llin}, {loss, K.gradients(K.sum(loss), {yin})[1]})
    local r = f({T(labels), y_pred, T(il), T(ll)})
    close(r[1], want, 1e-5, "symbolic")
    assert.same({B, steps, C}, r[2].shape)
    -- a step past a sample's input length gets no gradient
    for c = 1, C do assert.equal(0, r[2]:totable()[2][5][c]) end
  end)
end)

describe("K functions lkeras refuses", function()
  it("raise an error saying why, rather than being nil", function()
    local cases = {
      {"get_session", "there is no TensorFlow session"},
      {"ctc_decode", "its output's length depends on the data"},
    }
    for _, c in ipairs(cases) do
      assert.is_function(K[c[1]])
      assert.error_matches(function() K[c[1]]() end, "K." .. c[1] .. " is not supported by lkeras: " .. c[2], 1, true)
    end
    assert.error_matches(function() K.set_floatx("float64") end, "K.set_floatx: only 'float32' is supported", 1, true)
    assert.error_matches(function() K.print_tensor(keras.Input{shape = {2}}) end,
      "K.print_tensor: printing from inside a compiled plan is not supported", 1, true)
  end)
end)
