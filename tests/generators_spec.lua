-- Generators (API.md §12): fit_generator, evaluate_generator and
-- predict_generator checked against float64 SGD written out here for a
-- linear model, keras.utils.Sequence, and TimeseriesGenerator's batches
-- against keras-preprocessing 1.0.5's definition worked out in loops here.
local keras = require "keras"
local L = keras.layers

local TOL = 1e-5

-- ---- data and a float64 reference for Dense(1) + mse + SGD ----

-- 8 samples of 3 features and their targets; every value is exact in float32
local X = {{0.5, -1, 0.25}, {1, 0.75, -0.5}, {-0.25, 0.5, 1}, {0.125, -0.75, 0.5},
           {1.5, 0.25, -1}, {-1, 1, 0.75}, {0.375, 0.625, -0.125}, {-0.5, -0.5, 1.25}}
local Y = {0.5, -1, 0.25, 1, -0.5, 0.75, 0, 1.5}
local W0, B0 = {0.25, -0.5, 0.75}, 0.125

local function rows(t, a, b)
  local out = {}
  for i = a, b do out[#out + 1] = t[i] end
  return out
end

local function xs(a, b) return keras.tensor(rows(X, a, b)) end
local function ys(a, b)
  local out = {}
  for i = a, b do out[#out + 1] = {Y[i]} end
  return keras.tensor(out)
end

local function linear(lr)
  local m = keras.Sequential{L.Dense{1, input_dim = 3}}
  m:compile{optimizer = keras.optimizers.SGD{lr = lr or 0.1}, loss = "mse", metrics = {"mae"}}
  m:set_weights{keras.tensor{{W0[1]}, {W0[2]}, {W0[3]}}, keras.tensor{B0}}
  return m
end

-- the float64 state of the linear model: w (3), b
local function state() return {w = {W0[1], W0[2], W0[3]}, b = B0} end

local function pred(s, i)
  local p = s.b
  for j = 1, 3 do p = p + X[i][j] * s.w[j] end
  return p
end

-- one SGD step on samples a..b with per-sample weights sw (nil: 1):
-- Keras 2.2.4's loss mean(score * w) / mean(w ~= 0); returns the loss
local function sgd_step(s, a, b, lr, sw)
  local n = b - a + 1
  local nz = 0
  for i = a, b do if (sw and sw[i] or 1) ~= 0 then nz = nz + 1 end end
  local loss, gw, gb = 0, {0, 0, 0}, 0
  for i = a, b do
    local w = sw and sw[i] or 1
    local e = pred(s, i) - Y[i]
    loss = loss + e * e * w / nz
    for j = 1, 3 do gw[j] = gw[j] + 2 * e * w * X[i][j] / nz end
    gb = gb + 2 * e * w / nz
  end
  for j = 1, 3 do s.w[j] = s.w[j] - lr * gw[j] end
  s.b = s.b - lr * gb
  return loss, n
end

-- mse and mae of the samples a..b (the batch-size-weighted mean of batches
-- is the mean over all samples)
local function errors(s, a, b)
  local se, ae = 0, 0
  for i = a, b do
    local e = pred(s, i) - Y[i]
    se, ae = se + e * e, ae + math.abs(e)
  end
  return se / (b - a + 1), ae / (b - a + 1)
end

local function assert_near(want, got, what)
  if not (math.abs(got - want) <= TOL * math.max(1, math.abs(want))) then
    error(string.format("%s is %.9g, expected %.9g", what, got, want), 2)
  end
end

local function assert_weights(s, m)
  local w = m:get_weights()
  for j = 1, 3 do assert_near(s.w[j], w[1]:get(j, 1), "kernel[" .. j .. "]") end
  assert_near(s.b, w[2]:get(1), "bias")
end

-- a generator over the batches {first, last} of X, Y, cycling
local function cycle(batches, extra)
  local k = 0
  return function()
    k = k % #batches + 1
    local a, b = batches[k][1], batches[k][2]
    if extra then return xs(a, b), ys(a, b), extra(a, b) end
    return xs(a, b), ys(a, b)
  end
end

local BATCHES = {{1, 3}, {4, 6}, {7, 8}}     -- sizes 3, 3, 2

-- runs fn with keras.set_print capturing; returns the text
local function captured(fn)
  local out = {}
  keras.set_print(function(s) out[#out + 1] = s end)
  local ok, err = pcall(fn)
  keras.set_print(nil)
  if not ok then error(err, 0) end
  return table.concat(out)
end

describe("model:fit_generator", function()
  it("runs one SGD step per batch, batches of different sizes, as the float64 reference", function()
    local m = linear(0.1)
    local h = m:fit_generator(cycle(BATCHES), {steps_per_epoch = 3, epochs = 2, verbose = 0})
    local s = state()
    for e = 1, 2 do
      local total, seen = 0, 0
      local mae_total = 0
      for _, r in ipairs(BATCHES) do
        local _, mae = errors(s, r[1], r[2])
        local loss, n = sgd_step(s, r[1], r[2], 0.1)
        total, mae_total, seen = total + loss * n, mae_total + mae * n, seen + n
      end
      -- epoch logs: the batch-size-weighted means of the batches' values (BaseLogger)
      assert_near(total / seen, h.history.loss[e], "loss of epoch " .. e)
      assert_near(mae_total / seen, h.history.mean_absolute_error[e], "mae of epoch " .. e)
    end
    assert_weights(s, m)
    assert.same({0, 1}, h.epoch)
    assert.equal(m.history, h)
    assert.same({epochs = 2, steps = 3, verbose = 0, do_validation = false,
                 metrics = {"loss", "mean_absolute_error"}}, h.params)
  end)

  it("validates on {x, y} at each epoch's end, with evaluate's numbers", function()
    local m = linear(0.05)
    local h = m:fit_generator(cycle(BATCHES), {steps_per_epoch = 3, epochs = 2, verbose = 0,
                                               validation_data = {xs(1, 8), ys(1, 8)}})
    local s = state()
    for e = 1, 2 do
      for _, r in ipairs(BATCHES) do sgd_step(s, r[1], r[2], 0.05) end
      local mse, mae = errors(s, 1, 8)
      assert_near(mse, h.history.val_loss[e], "val_loss of epoch " .. e)
      assert_near(mae, h.history.val_mean_absolute_error[e], "val_mae of epoch " .. e)
    end
  end)

  it("validates on a generator for validation_steps batches, weighted by batch size", function()
    local m = linear(0.05)
    local h = m:fit_generator(cycle(BATCHES), {steps_per_epoch = 3, epochs = 1, verbose = 0,
                                               validation_data = cycle{{1, 5}, {6, 8}}, validation_steps = 2})
    local s = state()
    for _, r in ipairs(BATCHES) do sgd_step(s, r[1], r[2], 0.05) end
    local mse = errors(s, 1, 8)
    assert_near(mse, h.history.val_loss[1], "val_loss")
  end)

  it("weights samples by class_weight, and by the generator's sample_weight", function()
    -- targets as classes 0/1 for class_weight: y itself for shape (n, 1)
    local saved = Y
    Y = {0, 1, 1, 0, 1, 0, 0, 1}
    local ok, err = pcall(function()
      local m = linear(0.1)
      m:fit_generator(cycle(BATCHES), {steps_per_epoch = 3, epochs = 1, verbose = 0, class_weight = {[0] = 1, [1] = 3}})
      local s, sw = state(), {}
      for i = 1, 8 do sw[i] = Y[i] == 1 and 3 or 1 end
      for _, r in ipairs(BATCHES) do sgd_step(s, r[1], r[2], 0.1, sw) end
      assert_weights(s, m)
      -- a third value is the batch's sample weights (zeros count as Keras counts them)
      local w8 = {2, 0, 1, 0.5, 1, 0, 3, 1}
      local m2 = linear(0.1)
      m2:fit_generator(cycle(BATCHES, function(a, b) return keras.tensor(rows(w8, a, b)) end),
                       {steps_per_epoch = 3, epochs = 1, verbose = 0})
      local s2 = state()
      for _, r in ipairs(BATCHES) do sgd_step(s2, r[1], r[2], 0.1, w8) end
      assert_weights(s2, m2)
    end)
    Y = saved
    if not ok then error(err, 0) end
  end)

  it("calls callbacks as fit does: on_batch_begin before each batch, then on_batch_end", function()
    local m = linear(0.1)
    local events = {}
    local gen = cycle(BATCHES)
    local function g() events[#events + 1] = "gen"; return gen() end
    local cb = {}
    function cb.on_train_begin() events[#events + 1] = "train_begin" end
    function cb.on_epoch_begin(_, e) events[#events + 1] = "epoch_begin " .. e end
    function cb.on_batch_begin(_, b, logs)
      events[#events + 1] = string.format("batch_begin %d size %d", b, logs.size)
    end
    function cb.on_batch_end(_, b, logs)
      events[#events + 1] = string.format("batch_end %d size %d %s", b, logs.size, logs.loss and "loss" or "-")
    end
    function cb.on_epoch_end(_, e, logs)
      events[#events + 1] = string.format("epoch_end %d %s %s", e, logs.loss and "loss" or "-",
        logs.val_loss and "val_loss" or "-")
    end
    function cb.on_train_end() events[#events + 1] = "train_end" end
    local h = m:fit_generator(g, {steps_per_epoch = 2, epochs = 3, initial_epoch = 1, verbose = 0,
                                  callbacks = {cb}, validation_data = {xs(1, 8), ys(1, 8)}})
    assert.same({"train_begin",
      "epoch_begin 1", "gen", "batch_begin 0 size 3", "batch_end 0 size 3 loss",
      "gen", "batch_begin 1 size 3", "batch_end 1 size 3 loss", "epoch_end 1 loss val_loss",
      "epoch_begin 2", "gen", "batch_begin 0 size 2", "batch_end 0 size 2 loss",
      "gen", "batch_begin 1 size 3", "batch_end 1 size 3 loss", "epoch_end 2 loss val_loss",
      "train_end"}, events)
    assert.same({1, 2}, h.epoch)
    assert.equal(cb.model, m)
  end)

  it("stops after the batch in which a callback sets stop_training, without validation", function()
    local m = linear(0.1)
    local cb, ends = {}, {}
    function cb:on_batch_end(b) if b == 1 then self.model.stop_training = true end end
    function cb.on_epoch_end(_, e, logs) ends[#ends + 1] = {e, logs.val_loss} end
    local h = m:fit_generator(cycle(BATCHES), {steps_per_epoch = 3, epochs = 4, verbose = 0, callbacks = {cb},
                                               validation_data = {xs(1, 8), ys(1, 8)}})
    assert.same({{0, nil}}, ends)
    local s = state()
    local l1, n1 = sgd_step(s, 1, 3, 0.1)
    local l2, n2 = sgd_step(s, 4, 6, 0.1)
    assert_near((l1 * n1 + l2 * n2) / (n1 + n2), h.history.loss[1], "loss of the stopped epoch")
    assert_weights(s, m)
  end)

  it("prints fit's progress bar counting steps, and one line per epoch with verbose = 2", function()
    local m = linear(0.1)
    local h
    local out = captured(function()
      h = m:fit_generator(cycle(BATCHES), {steps_per_epoch = 3, epochs = 2})
    end)
    local f = string.format
    local lines = {}
    for line in out:gmatch("[^\n]+") do lines[#lines + 1] = line end
    assert.equal(4, #lines)
    assert.equal("Epoch 1/2", lines[1])
    assert.equal("Epoch 2/2", lines[3])
    for e = 1, 2 do
      local line = lines[2 * e]
      local tail = f(" - loss: %.4f - mean_absolute_error: %.4f", h.history.loss[e], h.history.mean_absolute_error[e])
      assert.truthy(line:find("^3/3 %[==============================%] %- %d+s %d+[mu]?s/step"), line)
      assert.equal(tail, line:sub(-#tail))
    end
    out = captured(function()
      h = m:fit_generator(cycle(BATCHES), {steps_per_epoch = 3, epochs = 1, verbose = 2,
                                           validation_data = {xs(1, 8), ys(1, 8)}})
    end)
    assert.equal(f("Epoch 1/1\n - 0s - loss: %.4f - mean_absolute_error: %.4f - val_loss: %.4f"
      .. " - val_mean_absolute_error: %.4f\n",
      h.history.loss[1], h.history.mean_absolute_error[1], h.history.val_loss[1],
      h.history.val_mean_absolute_error[1]), out)
    assert.equal("", captured(function()
      m:fit_generator(cycle(BATCHES), {steps_per_epoch = 3, verbose = 0})
    end))
  end)

  it("takes Keras's positional order and the one-table form", function()
    local a, b, c = linear(0.1), linear(0.1), linear(0.1)
    a:fit_generator(cycle(BATCHES), 3, 2, 0)
    b:fit_generator{cycle(BATCHES), steps_per_epoch = 3, epochs = 2, verbose = 0}
    c:fit_generator{generator = cycle(BATCHES), steps_per_epoch = 3, epochs = 2, verbose = 0,
                    max_queue_size = 10, workers = 1, use_multiprocessing = false, shuffle = true}
    local s = state()
    for _ = 1, 2 do for _, r in ipairs(BATCHES) do sgd_step(s, r[1], r[2], 0.1) end end
    assert_weights(s, a)
    assert_weights(s, b)
    assert_weights(s, c)
    local d = linear(0.1)
    d:fit_generator(cycle(BATCHES), {steps_per_epoch = 3, epochs = 2, verbose = 0, workers = 0})
    assert_weights(s, d)
  end)

  it("takes a coroutine, and builds a Sequential without an input shape on its first batch", function()
    local m = keras.Sequential{L.Dense{1}}
    m:compile{optimizer = keras.optimizers.SGD{lr = 0.1}, loss = "mse"}
    local gen = coroutine.wrap(function()
      while true do
        for _, r in ipairs(BATCHES) do coroutine.yield(xs(r[1], r[2]), ys(r[1], r[2])) end
      end
    end)
    local h = m:fit_generator(gen, {steps_per_epoch = 3, epochs = 2, verbose = 0})
    assert.equal(2, #h.history.loss)
    assert.same({"loss"}, h.params.metrics)
    -- the same batches through train_on_batch on a twin with the same weights
    local twin = keras.Sequential{L.Dense{1, input_dim = 3}}
    twin:compile{optimizer = keras.optimizers.SGD{lr = 0.1}, loss = "mse"}
    local m2 = keras.Sequential{L.Dense{1}}
    m2:compile{optimizer = keras.optimizers.SGD{lr = 0.1}, loss = "mse"}
    m2:predict(xs(1, 1))
    twin:set_weights(m2:get_weights())
    local g2 = coroutine.wrap(function()
      for _, r in ipairs(BATCHES) do coroutine.yield(xs(r[1], r[2]), ys(r[1], r[2])) end
    end)
    m2:fit_generator(g2, {steps_per_epoch = 3, verbose = 0})
    for _, r in ipairs(BATCHES) do twin:train_on_batch(xs(r[1], r[2]), ys(r[1], r[2])) end
    local a, b = m2:get_weights(), twin:get_weights()
    for i = 1, 2 do
      local ta, tb = a[i]:reshape{-1}:totable(), b[i]:reshape{-1}:totable()
      for j = 1, #ta do assert.equal(tb[j], ta[j]) end
    end
    -- the coroutine has ended: the next call says so with the step
    assert.error_matches(function() m2:fit_generator(g2, {steps_per_epoch = 1, verbose = 0}) end,
      "fit_generator: epoch 1/1, step 1/1: the generator returned nothing, but 1 batch was promised (steps)", 1, true)
  end)

  it("takes batches for several inputs and outputs, as lists or keyed by name", function()
    local function net()
      local a, b = keras.Input{shape = {2}, name = "left"}, keras.Input{shape = {1}, name = "right"}
      local h = L.concatenate{a, b}
      local o1 = L.Dense{1, name = "sum"}(h)
      local o2 = L.Dense{2, name = "pair"}(h)
      local m = keras.Model{inputs = {a, b}, outputs = {o1, o2}}
      m:compile{optimizer = keras.optimizers.SGD{lr = 0.1}, loss = "mse"}
      return m
    end
    local m1, m2, twin = net(), net(), net()
    m2:set_weights(m1:get_weights())
    twin:set_weights(m1:get_weights())
    local function batch(r)
      local x = X
      local l, rr, s, p = {}, {}, {}, {}
      for i = r[1], r[2] do
        l[#l + 1] = {x[i][1], x[i][2]}
        rr[#rr + 1] = {x[i][3]}
        s[#s + 1] = {Y[i]}
        p[#p + 1] = {Y[i], -Y[i]}
      end
      return keras.tensor(l), keras.tensor(rr), keras.tensor(s), keras.tensor(p)
    end
    local k1, k2 = 0, 0
    m1:fit_generator(function()
      k1 = k1 % 3 + 1
      local l, r, s, p = batch(BATCHES[k1])
      return {l, r}, {s, p}
    end, {steps_per_epoch = 3, verbose = 0})
    m2:fit_generator(function()
      k2 = k2 % 3 + 1
      local l, r, s, p = batch(BATCHES[k2])
      return {right = r, left = l}, {pair = p, sum = s}
    end, {steps_per_epoch = 3, verbose = 0})
    for _, r in ipairs(BATCHES) do
      local l, rr, s, p = batch(r)
      twin:train_on_batch({l, rr}, {s, p})
    end
    local w1, w2, wt = m1:get_weights(), m2:get_weights(), twin:get_weights()
    for i = 1, #wt do
      local a, b, c = w1[i]:reshape{-1}:totable(), w2[i]:reshape{-1}:totable(), wt[i]:reshape{-1}:totable()
      for j = 1, #c do
        assert.equal(c[j], a[j])
        assert.equal(c[j], b[j])
      end
    end
  end)

  it("reuses the compiled plan: engine allocations per step stay constant, the smaller batch included", function()
    local m = keras.Sequential{L.Dense{8, input_dim = 3, activation = "relu"}, L.Dense{1}}
    m:compile{optimizer = "adam", loss = "mse", metrics = {"mae"}}
    keras.random.seed(3)
    local batches = {}
    for i, n in ipairs{4, 4, 4, 2} do batches[i] = {keras.random.random{n, 3}, keras.random.random{n, 1}} end
    local k = 0
    local function gen() k = k % #batches + 1; return batches[k][1], batches[k][2] end
    local counts = {}
    local cb = {on_batch_end = function() counts[#counts + 1] = select(3, keras._core.mem()) end}
    m:fit_generator(gen, {steps_per_epoch = 4, epochs = 3, verbose = 0, callbacks = {cb}})
    assert.equal(12, #counts)
    local per_step = counts[2] - counts[1]
    for i = 3, #counts do assert.equal(per_step, counts[i] - counts[i - 1], "allocations in step " .. i) end
    -- what a new plan costs: a batch larger than any before is more than that
    local _, _, before = keras._core.mem()
    m:train_on_batch(batches[1][1], batches[1][2])
    local _, _, mid = keras._core.mem()
    m:train_on_batch(keras.tensor.concat({batches[1][1], batches[2][1]}, 0),
                     keras.tensor.concat({batches[1][2], batches[2][2]}, 0))
    local _, _, after = keras._core.mem()
    -- train_on_batch of tensors that fit takes the fast path (issue 13): no
    -- engine allocation at all once its plan exists, less than a generator
    -- step (whose data preparation allocates its unit sample weights)
    assert.equal(0, mid - before)
    assert.is_true(after - mid > per_step + 8)
  end)
end)

describe("model:fit_generator errors", function()
  it("names the epoch and step when the generator raises, and leaves the model usable", function()
    local m = linear(0.1)
    local k, gen = 0, cycle(BATCHES)
    local function bad()
      k = k + 1
      if k == 5 then error("boom in the data") end
      return gen()
    end
    local ok, err = pcall(m.fit_generator, m, bad, {steps_per_epoch = 3, epochs = 3, verbose = 0})
    assert.is_false(ok)
    assert.truthy(err:find("fit_generator: epoch 2/3, step 2/3: the generator raised an error: ", 1, true), err)
    assert.truthy(err:find("boom in the data", 1, true), err)
    -- the four steps before the error were taken; the model trains on from there
    local s = state()
    for _, r in ipairs(BATCHES) do sgd_step(s, r[1], r[2], 0.1) end
    sgd_step(s, 1, 3, 0.1)
    assert_weights(s, m)
    local h = m:fit_generator(cycle(BATCHES), {steps_per_epoch = 3, epochs = 1, verbose = 0})
    for _, r in ipairs(BATCHES) do sgd_step(s, r[1], r[2], 0.1) end
    assert_weights(s, m)
    assert.equal(1, #h.history.loss)
    local h2 = m:fit(xs(1, 8), ys(1, 8), {epochs = 1, batch_size = 8, verbose = 0})
    assert.equal(1, #h2.history.loss)
  end)

  it("names the step and the shapes when a batch does not fit", function()
    local m = linear(0.1)
    local k = 0
    local function gen()
      k = k + 1
      if k == 3 then return keras.tensor.zeros{2, 4}, ys(1, 2) end
      return xs(1, 2), ys(1, 2)
    end
    assert.error_matches(function() m:fit_generator(gen, {steps_per_epoch = 4, verbose = 0}) end,
      "fit_generator: epoch 1/1, step 3/4: Error when checking input: expected input_", 1, true)
    k = 0
    assert.error_matches(function() m:fit_generator(gen, {steps_per_epoch = 4, verbose = 0}) end,
      "to have shape (3,) but got array with shape (4,)", 1, true)
    assert.error_matches(function()
      m:fit_generator(function() return xs(1, 3), ys(1, 2) end, {steps_per_epoch = 2, verbose = 0})
    end, "fit_generator: epoch 1/1, step 1/2: x has shape (3, 3) but y has shape (2, 1): "
      .. "x and y must hold the same number of samples", 1, true)
    assert.error_matches(function()
      m:fit_generator(function() return xs(1, 3), keras.tensor.zeros{3, 2} end, {steps_per_epoch = 2, verbose = 0})
    end, "fit_generator: epoch 1/1, step 1/2: Error when checking target: expected dense_", 1, true)
    assert.error_matches(function()
      m:fit_generator(function() return xs(1, 3) end, {steps_per_epoch = 2, verbose = 0})
    end, "fit_generator: epoch 1/1, step 1/2: the generator must return x, y or x, y, sample_weight, got 1 value",
      1, true)
    assert.error_matches(function()
      m:fit_generator(function() return "x", ys(1, 3) end, {steps_per_epoch = 2, verbose = 0})
    end, "fit_generator: epoch 1/1, step 1/2: input must be a keras.Tensor, a list of them or a table keyed by name, "
      .. "got string",
      1, true)
    assert.error_matches(function()
      m:fit_generator(function() return keras.tensor.zeros{0, 3}, keras.tensor.zeros{0, 1} end,
                      {steps_per_epoch = 2, verbose = 0})
    end, "fit_generator: epoch 1/1, step 1/2: empty batch (x has shape (0, 3)); a batch must hold at least one sample",
      1, true)
    -- usable after all of these (the two calls that failed at step 3 took two steps each)
    m:fit_generator(cycle(BATCHES), {steps_per_epoch = 3, verbose = 0})
    local s = state()
    for _ = 1, 4 do sgd_step(s, 1, 2, 0.1) end
    for _, r in ipairs(BATCHES) do sgd_step(s, r[1], r[2], 0.1) end
    assert_weights(s, m)
  end)

  it("says when the generator ends before the promised steps", function()
    local m = linear(0.1)
    local k = 0
    local function short() k = k + 1; if k <= 4 then return xs(1, 2), ys(1, 2) end end
    assert.error_matches(function() m:fit_generator(short, {steps_per_epoch = 3, epochs = 2, verbose = 0}) end,
      "fit_generator: epoch 2/2, step 2/3: the generator returned nothing, but 3 batches were promised (steps)",
      1, true)
    assert.error_matches(function()
      m:fit_generator(cycle(BATCHES), {steps_per_epoch = 3, verbose = 0, validation_data = function() end,
                                       validation_steps = 2})
    end, "fit_generator (validation_data): epoch 1/1, validation step 1/2: the generator returned nothing, "
      .. "but 2 batches were promised (steps)", 1, true)
  end)

  it("refuses options it cannot honour, naming them", function()
    local m = linear(0.1)
    local g = cycle(BATCHES)
    local cases = {
      {{}, "fit_generator: steps_per_epoch=nil is only valid for a keras.utils.Sequence (its len() is used); "
           .. "give steps_per_epoch for a generator function"},
      {{steps_per_epoch = 3, workers = 4}, "fit_generator: workers=4 would draw batches on 4 threads at once, but Lua "
           .. "runs on one thread: lkeras draws every batch in order on the calling thread (workers must be 0 or 1)"},
      {{steps_per_epoch = 3, use_multiprocessing = true}, "fit_generator: use_multiprocessing=true needs Python "
           .. "processes; lkeras draws every batch in order on the calling thread (use_multiprocessing must be false)"},
      {{steps_per_epoch = 3, batch_size = 4}, "fit_generator: unknown argument 'batch_size'"},
      {{steps_per_epoch = 0}, "fit_generator: steps_per_epoch must be an integer >= 1, got 0"},
      {{steps_per_epoch = 3, epochs = 1.5}, "fit_generator: epochs must be an integer >= 0, got 1.5"},
      {{steps_per_epoch = 3, verbose = 3}, "fit_generator: verbose must be 0, 1 or 2, got 3"},
      {{steps_per_epoch = 3, shuffle = "batch"}, "fit_generator: shuffle must be a boolean, got string"},
      {{steps_per_epoch = 3, validation_steps = 2},
       "fit_generator: validation_steps is given but there is no validation_data"},
      {{steps_per_epoch = 3, validation_data = function() end},
       "fit_generator: validation_steps=nil is only valid when validation_data is a keras.utils.Sequence"},
      {{steps_per_epoch = 3, validation_data = {xs(1, 2)}},
       "fit_generator: validation_data must be a generator, a Sequence, {x_val, y_val} "
         .. "or {x_val, y_val, val_sample_weight}"},
      {{steps_per_epoch = 3, class_weight = 2},
       "fit_generator: class_weight must be a table {[class] = weight}, got number"},
      {{steps_per_epoch = 3, max_queue_size = "big"}, "fit_generator: max_queue_size must be an integer"},
    }
    for _, c in ipairs(cases) do
      assert.error_matches(function() m:fit_generator(g, c[1]) end, c[2], 1, true)
    end
    assert.error_matches(function() m:fit_generator(42, {steps_per_epoch = 3}) end,
      "fit_generator: the generator must be a generator function or a keras.utils.Sequence, got number", 1, true)
    assert.error_matches(function() m:fit_generator(g, 3, 1, 0, {}, {}, {}, {}, 10, 1, false, true, 0, 9) end,
      "fit_generator: too many positional arguments (at most 13)", 1, true)
    local fresh = keras.Sequential{L.Dense{1, input_dim = 3}}
    assert.error_matches(function() fresh:fit_generator(g, {steps_per_epoch = 3}) end,
      "fit_generator: You must compile your model before using it.", 1, true)
    assert.error_matches(function() fresh:evaluate_generator(g, {steps = 3}) end,
      "evaluate_generator: You must compile your model before using it.", 1, true)
  end)

  it("points at the caller's line", function()
    local m = linear(0.1)
    local ok, err = pcall(function() m:fit_generator(function() end, {steps_per_epoch = 1, verbose = 0}) end)
    assert.is_false(ok)
    assert.truthy(err:find("^[^:]*generators_spec%.lua:%d+: fit_generator: "), err)
  end)
end)

describe("model:evaluate_generator and model:predict_generator", function()
  it("evaluate_generator averages the batches weighted by their sizes", function()
    local m = linear(0.1)
    local s = state()
    local mse, mae = errors(s, 1, 8)
    local loss, got_mae = m:evaluate_generator(cycle(BATCHES), {steps = 3})
    assert_near(mse, loss, "loss")
    assert_near(mae, got_mae, "mae")
    -- without steps, a generator function runs until it returns nothing
    local k = 0
    local function once() k = k + 1; if k <= 2 then return xs(4 * k - 3, 4 * k), ys(4 * k - 3, 4 * k) end end
    loss = m:evaluate_generator(once)
    assert_near(mse, loss, "loss until the end")
    local l2, m2 = m:evaluate_generator{cycle(BATCHES), 3}
    assert_near(mse, l2, "loss (one-table form)")
    assert_near(mae, m2, "mae (one-table form)")
  end)

  it("predict_generator stacks the batches' outputs", function()
    local m = linear(0.1)
    local s = state()
    local p = m:predict_generator(cycle(BATCHES), {steps = 3})
    assert.same({8, 1}, p.shape)
    for i = 1, 8 do assert_near(pred(s, i), p:get(i, 1), "prediction " .. i) end
    -- x, y batches are accepted (y unused, as Keras does); no steps: until nothing
    local k = 0
    local function twice() k = k + 1; if k <= 2 then return xs(k, k), ys(k, k) end end
    p = m:predict_generator(twice)
    assert.same({2, 1}, p.shape)
    assert_near(pred(s, 2), p:get(2, 1), "prediction 2")
  end)

  it("predict_generator gives a list for several outputs", function()
    local inp = keras.Input{shape = {3}}
    local a = L.Dense{2, name = "a"}(inp)
    local b = L.Dense{1, name = "b"}(inp)
    local m = keras.Model{inputs = inp, outputs = {a, b}}
    local outs = m:predict_generator(cycle(BATCHES), {steps = 3})
    local ref = m:predict(xs(1, 8))
    assert.equal(2, #outs)
    for k = 1, 2 do
      assert.same(ref[k].shape, outs[k].shape)
      local r, o = ref[k]:totable(), outs[k]:totable()
      for i = 1, 8 do for j = 1, #r[i] do assert_near(r[i][j], o[i][j], "output " .. k) end end
    end
  end)

  it("prints a progress bar of steps with verbose = 1", function()
    local m = linear(0.1)
    local out = captured(function() m:evaluate_generator(cycle(BATCHES), {steps = 3, verbose = 1}) end)
    assert.truthy(out:find("^3/3 %[==============================%] %- %d+s %d+[mu]?s/step\n$"), out)
    out = captured(function() m:predict_generator(cycle(BATCHES), {steps = 3, verbose = 1}) end)
    assert.truthy(out:find("^3/3 %[==============================%] %- %d+s %d+[mu]?s/step\n$"), out)
    assert.equal("", captured(function() m:predict_generator(cycle(BATCHES), {steps = 3}) end))
    -- no steps: the bar has no target (off a terminal, a line per batch)
    local k = 0
    out = captured(function()
      m:predict_generator(function() k = k + 1; if k <= 2 then return xs(1, 2) end end, {verbose = 1})
    end)
    assert.truthy(out:find("^      1/Unknown %- %d+s %d+[mu]?s/step\n      2/Unknown %- %d+s %d+[mu]?s/step\n$"), out)
  end)

  it("name the step of a bad batch", function()
    local m = linear(0.1)
    assert.error_matches(function() m:evaluate_generator(function() return xs(1, 2) end, {steps = 2}) end,
      "evaluate_generator: step 1/2: the generator must return x, y or x, y, sample_weight, got 1 value", 1, true)
    local k = 0
    local function g() k = k + 1; if k == 2 then return keras.tensor.zeros{1, 5} end return xs(1, 2) end
    assert.error_matches(function() m:predict_generator(g, {steps = 3}) end,
      "predict_generator: step 2/3: Error when checking input: expected input_", 1, true)
    local nan = xs(1, 2)
    nan:set(2, 2, 0 / 0)
    assert.error_matches(function() m:predict_generator(function() return nan end, {steps = 1}) end,
      "predict_generator: step 1/1: input 'input_", 1, true)
    assert.error_matches(function() m:predict_generator(function() return nan end, {steps = 1}) end,
      "' contains NaN or Inf", 1, true)
    local ynan = ys(1, 2)
    ynan:set(2, 1, 1 / 0)
    assert.error_matches(function() m:fit_generator(function() return xs(1, 2), ynan end,
                                                    {steps_per_epoch = 1, verbose = 0}) end,
      "fit_generator: epoch 1/1, step 1/1: target 'dense_", 1, true)
    assert.error_matches(function() m:predict_generator(function() end, {steps = 3}) end,
      "predict_generator: step 1/3: the generator returned nothing, but 3 batches were promised (steps)", 1, true)
    assert.error_matches(function() m:predict_generator(function() end) end,
      "predict_generator: the generator gave no batches", 1, true)
    assert.error_matches(function() m:predict_generator(function() end, {steps = 1, workers = 2}) end,
      "predict_generator: workers=2 would draw batches on 2 threads at once", 1, true)
    assert.error_matches(function() m:evaluate_generator(function() end, {steps = 1, shuffle = true}) end,
      "evaluate_generator: unknown argument 'shuffle'", 1, true)
  end)
end)

describe("keras.utils.Sequence", function()
  -- batches of X, Y of batch_size rows; records the calls it gets
  local function batches_class()
    local S = keras.utils.Sequence:extend("XYBatches")
    function S:init(batch_size) self.batch_size, self.got, self.ends = batch_size, {}, 0 end
    function S:len() return math.ceil(8 / self.batch_size) end
    function S:get(i)
      self.got[#self.got + 1] = i
      local a = (i - 1) * self.batch_size + 1
      local b = math.min(a + self.batch_size - 1, 8)
      return xs(a, b), ys(a, b)
    end
    function S:on_epoch_end() self.ends = self.ends + 1 end
    return S
  end

  it("is a class with len, get (from 1), #seq and seq[i]", function()
    local S = batches_class()
    local seq = S(3)
    assert.equal(3, #seq)
    assert.equal(3, seq:len())
    local x, y = seq:get(3)
    assert.same({2, 3}, x.shape)
    assert.same({2, 1}, y.shape)
    assert.same({3, 3}, seq[1].shape)
    local Sub = S:extend("Sub")
    assert.equal(3, #Sub(3))
  end)

  it("trains len() batches per epoch in order with shuffle = false, and hears on_epoch_end", function()
    local m = linear(0.1)
    local seq = batches_class()(3)
    m:fit_generator(seq, {epochs = 2, shuffle = false, verbose = 0})
    assert.same({1, 2, 3, 1, 2, 3}, seq.got)
    assert.equal(2, seq.ends)
    local s = state()
    for _ = 1, 2 do for _, r in ipairs(BATCHES) do sgd_step(s, r[1], r[2], 0.1) end end
    assert_weights(s, m)
  end)

  it("visits every batch once per epoch in a new random order with shuffle = true", function()
    local m = linear(0.01)
    local S = keras.utils.Sequence:extend("Ones")
    function S:init() self.got = {} end
    function S.len() return 8 end
    function S:get(i) self.got[#self.got + 1] = i; return xs(i, i), ys(i, i) end
    local seq = S()
    keras.random.seed(11)
    m:fit_generator(seq, {epochs = 3, verbose = 0})
    assert.equal(24, #seq.got)
    local orders = {}
    for e = 1, 3 do
      local seen, order = {}, {}
      for k = 1, 8 do
        local i = seq.got[(e - 1) * 8 + k]
        assert.is_nil(seen[i])
        seen[i] = true
        order[k] = i
      end
      orders[e] = table.concat(order, ",")
    end
    assert.is_true(orders[1] ~= orders[2] or orders[2] ~= orders[3])
    assert.is_true(orders[1] ~= "1,2,3,4,5,6,7,8" or orders[2] ~= "1,2,3,4,5,6,7,8")
  end)

  it("serves evaluate_generator, predict_generator and validation with len() steps", function()
    local m = linear(0.1)
    local seq = batches_class()(3)
    local mse = errors(state(), 1, 8)
    assert_near(mse, (m:evaluate_generator(seq)), "loss")
    assert.same({1, 2, 3}, seq.got)
    assert.same({8, 1}, m:predict_generator(seq).shape)
    local vseq = batches_class()(5)
    local h = m:fit_generator(cycle(BATCHES), {steps_per_epoch = 3, verbose = 0, validation_data = vseq})
    assert.same({1, 2}, vseq.got)
    local s = state()
    for _, r in ipairs(BATCHES) do sgd_step(s, r[1], r[2], 0.1) end
    assert_near((errors(s, 1, 8)), h.history.val_loss[1], "val_loss")
  end)

  it("takes any object with len and get methods as a Sequence", function()
    local m = linear(0.1)
    local ends = 0
    local obj = {len = function() return 3 end, on_epoch_end = function() ends = ends + 1 end}
    obj.get = function(_, i) local r = BATCHES[i]; return xs(r[1], r[2]), ys(r[1], r[2]) end
    m:fit_generator(obj, {epochs = 2, shuffle = false, verbose = 0, validation_data = obj})
    local s = state()
    for _ = 1, 2 do for _, r in ipairs(BATCHES) do sgd_step(s, r[1], r[2], 0.1) end end
    assert_weights(s, m)
    assert.equal(4, ends)                         -- two training passes, two validation passes
    assert_near((errors(s, 1, 8)), (m:evaluate_generator(obj)), "loss")
  end)

  it("says what a Sequence lacks or raised", function()
    local m = linear(0.1)
    local S = keras.utils.Sequence:extend("Empty")
    assert.error_matches(function() m:fit_generator(S(), {verbose = 0}) end,
      "fit_generator: len() of the Sequence Empty raised an error: Empty: a Sequence must define len(self), "
      .. "the number of batches", 1, true)
    function S.len() return 2 end
    assert.error_matches(function() m:fit_generator(S(), {verbose = 0, shuffle = false}) end,
      "fit_generator: epoch 1/1, step 1/2: get(1) of the Sequence Empty raised an error: Empty: a Sequence must define "
      .. "get(self, i), batch i (from 1)", 1, true)
    function S.len() return 0 end
    assert.error_matches(function() m:fit_generator(S(), {verbose = 0}) end,
      "fit_generator: the Sequence Empty has no batches (len() is 0)", 1, true)
    function S.len() return "two" end
    assert.error_matches(function() m:predict_generator(S()) end,
      "predict_generator: len() of the Sequence Empty must return an integer >= 0, got two", 1, true)
    assert.error_matches(function() keras.utils.Sequence:extend(3) end,
      "Sequence:extend: expected the class name (a string), got number", 1, true)
  end)
end)

describe("keras.preprocessing.sequence.TimeseriesGenerator", function()
  local TG = keras.preprocessing.sequence.TimeseriesGenerator

  -- keras-preprocessing 1.0.5's batch `index` (from 0), written out: rows
  -- start_index + length .. end_index (default len - 1) by stride, batch_size
  -- of them per batch; sample = data[row - length .. row - 1 by sampling_rate]
  -- (reversed with reverse), target = targets[row]. Data positions from 0.
  local function expected(n, o, index)
    local start = (o.start_index or 0) + o.length
    local last = o.end_index or n - 1
    local bs, stride, sr = o.batch_size or 128, o.stride or 1, o.sampling_rate or 1
    local xs_, ys_ = {}, {}
    local first = start + bs * stride * index
    local row = first
    while row < math.min(first + bs * stride, last + 1) do
      local sample = {}
      local p = row - o.length
      while p < row do sample[#sample + 1] = p; p = p + sr end
      if o.reverse then
        local r = {}
        for k = #sample, 1, -1 do r[#r + 1] = sample[k] end
        sample = r
      end
      xs_[#xs_ + 1] = sample
      ys_[#ys_ + 1] = row
      row = row + stride
    end
    return xs_, ys_
  end

  -- data[t] = {t, 100 + t}, targets[t] = 1000 + t: every value names its position
  local function series(n)
    local d, t = {}, {}
    for i = 0, n - 1 do d[#d + 1] = {i, 100 + i}; t[#t + 1] = 1000 + i end
    return keras.tensor(d), keras.tensor(t)
  end

  local function check(n, o)
    local data, targets = series(n)
    local opts = {}
    for k, v in pairs(o) do if k ~= "length" then opts[k] = v end end
    local g = TG(data, targets, o.length, opts)
    local span = (o.batch_size or 128) * (o.stride or 1)
    local last = o.end_index or n - 1
    local len = (last - ((o.start_index or 0) + o.length) + span) // span
    assert.equal(len, #g)
    for i = 1, len do
      local x, y = g:get(i)
      local wx, wy = expected(n, o, i - 1)
      assert.same({#wx, #wx[1], 2}, x.shape)
      assert.same({#wy}, y.shape)
      local tx, ty = x:totable(), y:totable()
      for j = 1, #wx do
        assert.equal(1000 + wy[j], ty[j])
        for k = 1, #wx[j] do
          assert.same({wx[j][k], 100 + wx[j][k]}, tx[j][k])
        end
      end
    end
  end

  it("gives Keras's documented example", function()
    local data = {}
    for i = 0, 49 do data[#data + 1] = {i} end
    local g = TG(data, data, 10, {sampling_rate = 2, batch_size = 2})
    assert.equal(20, #g)
    local x, y = g:get(1)
    assert.same({{{0}, {2}, {4}, {6}, {8}}, {{1}, {3}, {5}, {7}, {9}}}, x:totable())
    assert.same({{10}, {11}}, y:totable())
  end)

  it("gives the batches of keras-preprocessing 1.0.5 for every option", function()
    check(20, {length = 3})
    check(20, {length = 4, batch_size = 3})
    check(23, {length = 5, sampling_rate = 2, batch_size = 4})
    check(23, {length = 6, sampling_rate = 4, stride = 3, batch_size = 2})
    check(30, {length = 3, start_index = 4, end_index = 17, batch_size = 4})
    check(30, {length = 4, reverse = true, batch_size = 5, stride = 2})
    check(12, {length = 11})
  end)

  it("draws batch_size random rows per batch with shuffle = true", function()
    local data, targets = series(40)
    keras.random.seed(5)
    local g = TG{data, targets, 4, batch_size = 6, shuffle = true, start_index = 2, end_index = 30}
    assert.equal(5, #g)
    for i = 1, #g do
      local x, y = g:get(i)
      assert.same({6, 4, 2}, x.shape)
      local tx, ty = x:totable(), y:totable()
      for j = 1, 6 do
        local row = ty[j] - 1000
        assert.is_true(row >= 6 and row <= 30, "row " .. row)
        for k = 1, 4 do assert.same({row - 5 + k, 100 + row - 5 + k}, tx[j][k]) end
      end
    end
  end)

  it("feeds fit_generator as a Sequence, the last batch smaller", function()
    local n = 60
    local d = {}
    for i = 0, n - 1 do d[#d + 1] = {math.sin(i / 4)} end
    local data = keras.tensor(d)
    local g = TG(data, data, 8, {batch_size = 16})
    assert.equal(4, #g)
    local _, ylast = g:get(4)
    assert.same({4, 1}, ylast.shape)             -- rows 56..59: end_index is len - 1 in 1.0.5
    local m = keras.Sequential{L.Flatten{input_shape = {8, 1}}, L.Dense{1}}
    m:compile{optimizer = keras.optimizers.SGD{lr = 0.05}, loss = "mse"}
    keras.random.seed(2)
    local h = m:fit_generator(g, {epochs = 8, verbose = 0})
    assert.equal(8, #h.history.loss)
    assert.is_true(h.history.loss[8] < h.history.loss[1])
    assert.same({52, 1}, m:predict_generator(g).shape)
  end)

  it("has its next batches gathered on worker threads, giving what workers = 0 gives", function()
    local core = keras._core
    local real = core.gather_async
    local jobs = 0
    core.gather_async = function(...) jobs = jobs + 1; return real(...) end
    local ok, err = pcall(function()
      local data, targets = series(50)
      local function run(opts, shuffle_rows)
        keras.random.seed(21)
        local g = TG(data, targets, 5, {batch_size = 4, shuffle = shuffle_rows})
        local m = keras.Sequential{L.Flatten{input_shape = {5, 2}}, L.Dense{1}}
        m:compile{optimizer = keras.optimizers.SGD{lr = 1e-5}, loss = "mse"}
        m:set_weights{keras.tensor.full({10, 1}, 0.01), keras.tensor{0}}
        jobs = 0
        local o = {epochs = 2, verbose = 0}
        for k, v in pairs(opts) do o[k] = v end
        local h = m:fit_generator(g, o)
        local p = m:predict_generator(g, {workers = o.workers, max_queue_size = o.max_queue_size})
        return m:get_weights(), h.history.loss, p, jobs
      end
      for _, shuffle_rows in ipairs{false, true} do
        local w0, l0, p0, j0 = run({workers = 0}, shuffle_rows)
        local w1, l1, p1, j1 = run({}, shuffle_rows)
        local _, l2, p2, j2 = run({max_queue_size = 2, shuffle = false}, shuffle_rows)
        assert.equal(0, j0)
        -- #g = 12: every batch of a pass but its first is made ahead (2 epochs, then predict's pass)
        assert.equal(11 * 3, j1)
        assert.equal(11 * 3, j2)
        assert.same(w0[1]:totable(), w1[1]:totable())
        assert.same(w0[2]:totable(), w1[2]:totable())
        assert.same(l0, l1)
        assert.same(p0:totable(), p1:totable())
        assert.equal(2, #l2)
        assert.same(p0.shape, p2.shape)
      end
      -- a subclass with its own get is called for every batch, never bypassed
      local Mine = TG:extend("Mine")
      local calls = 0
      function Mine:get(i) calls = calls + 1; return TG.get(self, i) end
      local m = keras.Sequential{L.Flatten{input_shape = {5, 2}}, L.Dense{1}}
      m:compile{optimizer = "sgd", loss = "mse"}
      jobs = 0
      m:fit_generator(Mine(data, targets, 5, {batch_size = 4}), {epochs = 1, verbose = 0})
      assert.equal(12, calls)
      assert.equal(0, jobs)
    end)
    core.gather_async = real
    if not ok then error(err, 0) end
  end)

  it("core.gather_async checks what it is given", function()
    local core = keras._core
    local d = keras.tensor{{1, 2}, {3, 4}, {5, 6}}
    local job = core.gather_async({d, keras.tensor{7, 8, 9}}, {{3, 1}, {2}}, {{2, 2}, {1}})
    local x, y = job:wait()
    assert.same({{5, 6}, {1, 2}}, x:totable())
    assert.same({8}, y:totable())
    assert.same({{5, 6}, {1, 2}}, (job:wait()):totable())
    job:free()
    assert.error_matches(function() job:wait() end, "gather_async: this job has been freed", 1, true)
    assert.error_matches(function() core.gather_async({d}, {{4}}, {{1, 2}}) end,
      "gather_async: row 1 of list 1 is not a row number in 1..3", 1, true)
    assert.error_matches(function() core.gather_async({d}, {{1}}, {{1, 3}}) end,
      "gather_async: shape 1 holds 3 values, but 1 rows of 2 were asked for", 1, true)
    assert.error_matches(function() core.gather_async({d}, {{1}, {1}}, {{1, 2}}) end,
      "gather_async: 1 sources need 1 row lists and 1 shapes", 1, true)
    assert.error_matches(function() core.gather_async({"d"}, {{1}}, {{1, 2}}) end,
      "gather_async: source 1 is not a tensor", 1, true)
    -- a job dropped while its thread may still run is joined before it is freed
    for _ = 1, 20 do core.gather_async({d}, {{1, 2, 3}}, {{3, 2}}) end
    collectgarbage()
  end)

  it("says what is wrong with its arguments", function()
    local data, targets = series(10)
    local cases = {
      {{data, keras.tensor.zeros{9}, 3}, "TimeseriesGenerator: Data and targets have to be of same length. "
        .. "Data length is 10 while target length is 9"},
      {{data, targets, 10}, "TimeseriesGenerator: `start_index+length=10 > end_index=9` is disallowed, as no part "
        .. "of the sequence would be left to be used as current step."},
      {{data, targets, 3, {end_index = 10}}, "TimeseriesGenerator: end_index=10 is past the last data point "
        .. "(index 9: data has 10 timesteps)"},
      {{data, targets, 0}, "TimeseriesGenerator: length must be an integer >= 1, got 0"},
      {{data, targets, 3, {stride = 0}}, "TimeseriesGenerator: stride must be an integer >= 1, got 0"},
      {{data, targets, 3, {shuffle = 1}}, "TimeseriesGenerator: shuffle must be a boolean, got number"},
      {{data, targets, 3, {batch = 4}}, "TimeseriesGenerator: unknown argument 'batch'"},
      {{data, targets}, "TimeseriesGenerator: missing length"},
      {{"data", targets, 3}, "TimeseriesGenerator: data must be a keras.Tensor or a table of numbers, got string"},
    }
    for _, c in ipairs(cases) do
      assert.error_matches(function() TG(table.unpack(c[1], 1, 4)) end, c[2], 1, true)
    end
    local g = TG(data, targets, 3)
    assert.error_matches(function() g:get(2) end, "TimeseriesGenerator: batch 2 is out of range 1..1", 1, true)
  end)
end)
