-- Variables as Keras has them: K.variable (symbolic, differentiable with
-- K.gradients, read and written with K.get_value / K.set_value), K.constant
-- with dtype and shape, and the optimizers' hyperparameters (lr, momentum,
-- ...) as variables that K.set_value changes between two batches of fit.
-- Expected values are float64 formulas and hand-computed SGD steps below.
local keras = require "keras"

local K = keras.backend
local T = keras.tensor
local O = keras.optimizers

local function close(want, got, what)
  assert.equal(#want, #got, (what or "") .. ": element count")
  for i = 1, #want do
    if not (math.abs(got[i] - want[i]) <= 1e-5 * math.abs(want[i]) + 1e-6) then
      error(string.format("%s: element %d is %.9g, expected %.9g", what or "", i, got[i], want[i]), 2)
    end
  end
end

local function flat(t)
  local out = {}
  local function walk(v)
    if type(v) == "table" then for _, x in ipairs(v) do walk(x) end else out[#out + 1] = v end
  end
  walk(t:totable())
  return out
end

describe("K.variable", function()
  it("is symbolic: ops on it are evaluated by K.eval", function()
    local v = K.variable(T{1, -2, 3})
    assert.is_true(K.is_keras_tensor(v))
    local s = K.sum(K.square(v))
    assert.is_true(K.is_keras_tensor(s))
    assert.equal(14, K.eval(s))
    close({2, -4, 6}, flat(K.eval(v * 2)), "v * 2")
  end)

  it("has a value that K.get_value copies and K.set_value replaces", function()
    local v = K.variable({{1, 2}, {3, 4}})
    local got = K.get_value(v)
    assert.same({{1, 2}, {3, 4}}, got:totable())
    got:set(1, 1, 9)   -- a copy: the variable keeps its value
    assert.same({{1, 2}, {3, 4}}, K.get_value(v):totable())
    local doubled = v * 2
    K.set_value(v, T{{5, 6}, {7, 8}})
    assert.same({{10, 12}, {14, 16}}, K.eval(doubled):totable())
    assert.equal(3, K.get_value(K.variable(3)))
  end)

  it("names what is wrong", function()
    assert.error_matches(function() K.variable(T{1}, "int32") end,
      "K.variable: dtype 'int32' is not supported: lkeras computes in float32 (give nil or \"float32\")", 1, true)
    assert.error_matches(function() K.variable("x") end,
      "K.variable: value must be a number, a table or a tensor, got string", 1, true)
    assert.error_matches(function() K.set_value(K.variable(T{1, 2}), T{1, 2, 3}) end,
      "K.set_value: assign: shape (3,) does not match (2,)", 1, true)
    assert.error_matches(function() K.set_value(K.variable(T{1}) * 2, 1) end,
      "K.set_value: expected a variable, got a symbolic tensor of op mul", 1, true)
    assert.error_matches(function() K.get_value(K.variable(T{1}) * 2) end,
      "K.get_value: a symbolic tensor computed from others has no value of its own (use K.eval)", 1, true)
  end)
end)

describe("K.gradients", function()
  -- L = sum(w * v^2) + mean(exp(v)): dL/dv = 2 w v + exp(v) / n, dL/dw = v^2
  local v0, w0 = {0.5, -1, 2}, {1, 2, 3}

  it("differentiates a loss built from K.variables", function()
    local v, w = K.variable(T(v0)), K.variable(T(w0))
    local loss = K.sum(w * K.square(v)) + K.mean(K.exp(v))
    local want_loss, dv, dw = 0, {}, {}
    for i = 1, 3 do
      want_loss = want_loss + w0[i] * v0[i] ^ 2 + math.exp(v0[i]) / 3
      dv[i] = 2 * w0[i] * v0[i] + math.exp(v0[i]) / 3
      dw[i] = v0[i] ^ 2
    end
    close({want_loss}, {K.eval(loss)}, "loss")
    local g = K.gradients(loss, {v, w})
    assert.equal(2, #g)
    close(dv, flat(K.eval(g[1])), "dL/dv")
    close(dw, flat(K.eval(g[2])), "dL/dw")
  end)

  it("follows K.set_value: the gradient is computed at the variable's current value", function()
    local v = K.variable(T{1, 2})
    local g = K.gradients(K.sum(K.square(v)), v)   -- one variable for the list
    K.set_value(v, T{3, -4})
    close({6, -8}, flat(K.eval(g[1])), "2 v")
  end)

  it("gives zeros for a variable the loss does not use", function()
    local v, u = K.variable(T{1, 2}), K.variable(T{5, 6, 7})
    local g = K.gradients(K.sum(v), {u})
    assert.same({0, 0, 0}, K.eval(g[1]):totable())
  end)

  it("differentiates with respect to an Input, inside a model", function()
    local w = K.variable(T{1, -2, 3})
    local inputs = keras.Input{shape = {3}}
    -- d sum(x^2 * w) / dx = 2 x w
    local model = keras.Model{inputs = inputs, outputs = keras.layers.Lambda(function(x)
      return K.gradients(K.sum(K.square(x) * w), {x})[1]
    end)(inputs)}
    close({2, -8, 18, -1, 0, 6}, flat(model:predict(T{{1, 2, 3}, {-0.5, 0, 1}})), "2 x w")
    -- a loss that does not use the Input: zeros of its shape, batch axis included
    local g = K.gradients(K.sum(w), {inputs})
    assert.same({keras.None, 3}, K.int_shape(g[1]))
  end)

  it("names bad input at the caller's line", function()
    local v = K.variable(T{1, 2})
    local ok, err = pcall(function() local g = K.gradients(T{1}, {v}) return g end)
    assert.is_false(ok)
    assert.equal(debug.getinfo(1, "S").short_src, err:match("^([^\n]-):%d+: "))
    assert.truthy(err:find("K.gradients: loss must be a symbolic tensor (computed from K.variable, Input or layer "
      .. "tensors), got a tensor", 1, true))
    assert.error_matches(function() K.gradients(K.sum(v), {T{1, 2}}) end,
      "K.gradients: variables[1] must be a symbolic tensor (K.variable, a weight, an Input), got a tensor", 1, true)
    assert.error_matches(function() K.gradients(K.sum(v), 3) end,
      "K.gradients: variables must be a list of symbolic tensors, got number", 1, true)
    -- a loss that is not a scalar is summed first, as tf.gradients does: d sum(2v) / dv = 2
    assert.same({2, 2}, K.eval(K.gradients(v * 2, {v})[1]):totable())
  end)
end)

describe("K.constant", function()
  it("fills a shape with one value, as K.constant(3, nil, {2}) does in Keras", function()
    local c = K.constant(3, nil, {2})
    assert.same({2}, c.shape)
    assert.same({3, 3}, K.eval(c):totable())
    assert.same({{-1.5, -1.5, -1.5}, {-1.5, -1.5, -1.5}}, K.eval(K.constant(-1.5, "float32", {2, 3})):totable())
  end)

  it("reshapes as many values to the shape, and pads fewer with the last (tf.constant's rule)", function()
    assert.same({{1, 2}, {3, 4}}, K.eval(K.constant({1, 2, 3, 4}, nil, {2, 2})):totable())
    assert.same({{1, 2}, {2, 2}}, K.eval(K.constant(T{1, 2}, nil, {2, 2})):totable())
    assert.same({1, 2, 3}, K.eval(K.constant({1, 2, 3})):totable())
  end)

  it("refuses a dtype other than float32, and values that do not fit", function()
    assert.error_matches(function() K.constant(3, "int32", {2}) end,
      "K.constant: dtype 'int32' is not supported: lkeras computes in float32 (give nil or \"float32\")", 1, true)
    assert.error_matches(function() K.constant({1, 2, 3}, nil, {2}) end,
      "K.constant: 3 values do not fit shape (2)", 1, true)
    assert.error_matches(function() K.constant(1, nil, {2, -1}) end,
      "K.constant: shape[2] must be an integer >= 0, got -1", 1, true)
  end)
end)

describe("optimizer hyperparameters as variables", function()
  -- one weight w (Dense 1 -> 1, no bias, starting at 1), x = 1, y = 0, mse:
  -- the gradient is 2 w; SGD: v = momentum v - lr g, w = w + v
  local function one_weight(opt)
    local model = keras.Sequential{keras.layers.Dense{1, input_dim = 1, use_bias = false, kernel_initializer = "ones"}}
    model:compile{optimizer = opt, loss = "mse"}
    return model
  end
  local ones, zeros = T{{1}, {1}, {1}}, T{{0}, {0}, {0}}

  it("are the same object each time, which K.get_value reads", function()
    local opt = O.Adam{lr = 0.01}
    assert.equal(opt.lr, opt.lr)
    assert.equal(opt.lr, opt.learning_rate)
    assert.equal(0.01, K.get_value(opt.lr))
    assert.equal(0.9, K.get_value(opt.beta_1))
    assert.equal(0.999, K.get_value(opt.beta_2))
    assert.equal(0, K.get_value(opt.decay))
    assert.equal(0.9, K.get_value(O.RMSprop().rho))
    assert.equal(0, K.get_value(O.SGD().momentum))
    assert.equal("lr", opt.lr.name)
    assert.equal(0.01, K.eval(opt.lr))
    assert.equal(0, K.get_value(opt.iterations))
  end)

  it("change the step of the next batch of fit when K.set_value is called in a callback", function()
    local model = one_weight(O.SGD{lr = 0.1})
    local seen = {}
    local cb = {on_batch_end = function(_, batch)
      seen[#seen + 1] = K.get_value(model.optimizer.lr)
      K.set_value(model.optimizer.lr, 0.05 / (batch + 1))
    end}
    model:fit(ones, zeros, {batch_size = 1, epochs = 1, shuffle = false, verbose = 0, callbacks = {cb}})
    -- w1 = 1 - 0.1 * 2 = 0.8; w2 = 0.8 - 0.05 * 1.6 = 0.72; w3 = 0.72 - 0.025 * 1.44 = 0.684
    close({0.684}, flat(model:get_weights()[1]), "w after 3 steps")
    close({0.1, 0.05, 0.025}, seen, "lr seen")
  end)

  it("change the step of train_on_batch", function()
    local model = one_weight(O.SGD{lr = 0.1})
    model:train_on_batch(T{{1}}, T{{0}})
    K.set_value(model.optimizer.lr, 0.05)
    assert.equal(0.05, K.get_value(model.optimizer.lr))
    model:train_on_batch(T{{1}}, T{{0}})
    close({0.72}, flat(model:get_weights()[1]), "0.8 - 0.05 * 1.6")
  end)

  it("include momentum", function()
    local model = one_weight(O.SGD{lr = 0.1, momentum = 0.9})
    K.set_value(model.optimizer.momentum, 0.5)
    model:fit(T{{1}, {1}}, T{{0}, {0}}, {batch_size = 1, epochs = 1, shuffle = false, verbose = 0})
    -- v1 = -0.1 * 2 = -0.2, w1 = 0.8; v2 = 0.5 * -0.2 - 0.1 * 1.6 = -0.26, w2 = 0.54
    close({0.54}, flat(model:get_weights()[1]), "w after 2 steps")
  end)

  it("work in LearningRateScheduler-style code and with LearningRateScheduler", function()
    local model = one_weight(O.SGD{lr = 0.1})
    local sched = keras.callbacks.LearningRateScheduler(function(_epoch, lr) return lr / 2 end)
    local h = model:fit(T{{1}}, T{{0}}, {batch_size = 1, epochs = 2, verbose = 0, callbacks = {sched}})
    close({0.05, 0.025}, h.history.lr, "history.lr")
    -- w1 = 1 - 0.05 * 2 = 0.9; w2 = 0.9 - 0.025 * 1.8 = 0.855
    close({0.855}, flat(model:get_weights()[1]), "w after 2 epochs")
    local lr = K.get_value(model.optimizer.lr)
    K.set_value(model.optimizer.lr, lr * 0.1)
    close({0.0025}, {K.get_value(model.optimizer.lr)}, "lr * 0.1")
  end)

  it("take a one-element tensor, give numbers in arithmetic, and are checked", function()
    local opt = O.SGD{lr = 0.1}
    K.set_value(opt.lr, T{0.2})
    close({0.2}, {K.get_value(opt.lr)}, "from a tensor")
    K.set_value(opt.lr, 0.25)
    assert.equal(0.5, opt.lr * 2)
    assert.is_true(opt.lr < 0.3)
    assert.is_false(opt.lr > 0.3)
    assert.equal("0.25", tostring(opt.lr))
    assert.equal("lr 0.25", "lr " .. opt.lr)
    assert.same({lr = 0.25, momentum = 0, decay = 0, nesterov = false}, opt:get_config())
    assert.error_matches(function() K.set_value(opt.lr, -1) end,
      "SGD: lr must be a non-negative number, got -1", 1, true)
    assert.error_matches(function() K.set_value(opt.lr, T{1, 2}) end,
      "K.set_value (SGD.lr): expected a number, got a tensor of 2 elements", 1, true)
    assert.error_matches(function() K.set_value(O.Adam().beta_1, 1) end,
      "Adam: beta_1 must be a number in [0, 1), got 1", 1, true)
  end)
end)
