-- The hot paths a game calls every frame (issue 13 item 2): predict_on_batch,
-- predict of one sample, train_on_batch, tensor get/set leave no Lua garbage
-- and make no engine allocation per call after the first for a row count
-- (predict with an `out` tensor), and give exactly what the general path
-- gives (forced here by passing the same data as nested tables).
local keras = require "keras"
local L = keras.layers

local function make(metrics)
  local m = keras.Sequential{L.Dense{8, input_shape = {4}, activation = "tanh"},
                             L.Dense{3, activation = "softmax"}}
  m:compile{optimizer = keras.optimizers.Adam{lr = 0.01}, loss = "categorical_crossentropy", metrics = metrics}
  return m
end

local function pair(metrics)
  keras.random.seed(3)
  local a, b = make(metrics), make(metrics)
  b:set_weights(a:get_weights())
  return a, b
end

local function data()
  keras.random.seed(9)
  local x = keras.random.random{6, 4}
  local y = keras.utils.to_categorical(keras.tensor{0, 1, 2, 2, 1, 0}, 3)
  return x, y
end

local function same(a, b, what)
  assert.same(a.shape, b.shape, what .. ": shape")
  local ta, tb = a:reshape{-1}:totable(), b:reshape{-1}:totable()
  for i = 1, #ta do
    if ta[i] ~= tb[i] then error(string.format("%s: element %d is %.9g against %.9g", what, i, ta[i], tb[i]), 2) end
  end
end

describe("hot paths", function()
  it("predict_on_batch and predict of one sample equal the general path", function()
    local a = pair()
    local x = data()
    a:predict_on_batch(x)   -- builds the predictor
    same(a:predict_on_batch(x), a:predict_on_batch(x:totable()), "predict_on_batch")
    local x1 = x:slice(2, 2)
    same(a:predict(x1), a:predict(x1:totable()), "predict of one sample")
    same(a:predict(x), a:predict(x:totable()), "predict of 6 rows")
    same(a:predict(x, {batch_size = 2}), a:predict(x:totable(), {batch_size = 2}), "predict, batch_size 2")
  end)

  it("writes into out, returns it, and checks its shape", function()
    local a = pair()
    local x = data()
    local want = a:predict_on_batch(x:totable())
    local out = keras.backend.zeros{6, 3}
    assert.equal(out, a:predict_on_batch(x, out))
    same(out, want, "predict_on_batch(x, out)")
    local out2 = keras.backend.zeros{6, 3}
    assert.equal(out2, a:predict(x, {out = out2}))
    same(out2, want, "predict(x, {out = })")
    local out3 = keras.backend.zeros{6, 3}
    assert.equal(out3, a:predict(x:totable(), {out = out3, batch_size = 4}))   -- the general path
    same(out3, want, "predict(table, {out = }) general path")
    local bad = keras.backend.zeros{6, 2}
    assert.has_error(function() a:predict_on_batch(x, bad) end,
      "predict_on_batch: out 1 has shape (6, 2), the result has shape (6, 3)")
    assert.has_error(function() a:predict(x, {out = 3}) end, "predict: out must be a tensor, got number")
  end)

  it("train_on_batch gives the general path's losses, metrics and weights", function()
    local a, b = pair{"accuracy"}
    local x, y = data()
    for step = 1, 4 do
      local la, acc_a = a:train_on_batch(x, y)
      local lb, acc_b = b:train_on_batch(x:totable(), y:totable())
      assert.equal(lb, la, "loss at step " .. step)
      assert.equal(acc_b, acc_a, "accuracy at step " .. step)
    end
    local wa, wb = a:get_weights(), b:get_weights()
    for i = 1, #wa do same(wa[i], wb[i], "weight " .. i) end
    local l1 = a:train_on_batch(x, y)
    assert.is_number(l1)
  end)

  it("keep the general path's errors", function()
    local a = pair()
    local x = data()
    a:predict_on_batch(x)
    local ok, err = pcall(a.predict_on_batch, a, keras.backend.zeros{2, 5})
    assert.is_false(ok)
    assert.truthy(tostring(err):find("to have shape (4,) but got array with shape (5,)", 1, true), err)
    local nan = x:copy()
    nan:set(1, 1, 0 / 0)
    assert.has_error(function() a:predict_on_batch(nan) end)
    ok, err = pcall(a.predict_on_batch, a, nan)
    assert.is_false(ok)
    assert.truthy(tostring(err):find("contains NaN or Inf", 1, true), err)
    local _, y = data()
    ok, err = pcall(a.train_on_batch, a, nan, y)
    assert.is_false(ok)
    assert.truthy(tostring(err):find("contains NaN or Inf", 1, true), err)
  end)

  it("leave no Lua garbage and allocate nothing per call", function()
    local a = pair{"accuracy"}
    local x, y = data()
    local x1 = x:slice(1, 1)
    local out, out1 = keras.backend.zeros{6, 3}, keras.backend.zeros{1, 3}
    local opts = {out = out1}
    local function calls()
      a:predict_on_batch(x, out)
      a:predict_on_batch(x1, out1)
      a:predict(x1, opts)
      a:train_on_batch(x, y)
      x:set(1, 2, x:get(1, 2))
    end
    -- the first calls build plans and may grow the Lua stack (a collection
    -- shrinks it again): so they come after the collection
    collectgarbage("collect")
    collectgarbage("stop")
    calls()
    calls()
    local allocs = keras.memory().allocs   -- (a table: before the count)
    local kb = collectgarbage("count")
    for _ = 1, 300 do calls() end
    local grew, made = (collectgarbage("count") - kb) * 1024, keras.memory().allocs - allocs
    collectgarbage("restart")
    assert.equal(0, grew, "bytes of Lua garbage in 300 rounds")
    assert.equal(0, made, "engine allocations in 300 rounds")
  end)
end)
