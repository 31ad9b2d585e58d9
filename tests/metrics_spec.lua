local keras = require "keras"

local M = keras.metrics
local L = keras.losses
local K = keras.backend
local core = keras._core
local fixtures = dofile("tests/fixtures/losses.lua")

local RTOL, ATOL = 1e-5, 1e-9

local U_ = dofile("tests/lib/spec_util.lua")
local flat = U_.flat

local function check_close(got, case)
  if type(got) == "number" then   -- a concrete reduction over every axis is a Lua number
    assert.same({}, case.shape, case.fn .. " / " .. case.name .. ": a number")
    got = keras.tensor(got)
  end
  assert.same(case.shape, got.shape, case.fn .. " / " .. case.name .. ": shape")
  local g = flat(got:totable())
  local w = flat(case.expected)
  assert.equal(#w, #g)
  for i = 1, #w do
    if math.abs(g[i] - w[i]) > RTOL * math.abs(w[i]) + ATOL then
      error(string.format("%s / %s: element %d is %.9g, expected %.9g", case.fn, case.name, i, g[i], w[i]), 2)
    end
  end
end

local METRICS = {"binary_accuracy", "categorical_accuracy", "sparse_categorical_accuracy",
                 "top_k_categorical_accuracy", "sparse_top_k_categorical_accuracy"}

describe("keras.metrics", function()
  for _, name in ipairs(METRICS) do
    describe(name, function()
      local cases = {}
      for _, c in ipairs(fixtures.metrics) do
        if c.fn == name then cases[#cases + 1] = c end
      end
      it("has fixtures", function() assert.is_true(#cases > 0) end)
      for _, c in ipairs(cases) do
        it("matches the reference on " .. c.name, function()
          check_close(M[name](keras.tensor(c.y_true), keras.tensor(c.y_pred), c.k), c)
        end)
      end
      it("gives the same values on symbolic tensors", function()
        for _, c in ipairs(cases) do
          local out = M[name](core.variable(keras.tensor(c.y_true)), core.variable(keras.tensor(c.y_pred)), c.k)
          assert.is_true(core.is_node(out))
          check_close(core.eval(out), c)
        end
      end)
    end)
  end

  it("in_top_k (tf.nn.in_top_k) is false for a row with a non-finite score", function()
    for _, c in ipairs(fixtures.in_top_k) do
      local got = M._in_top_k(keras.tensor(c.predictions), keras.tensor(c.targets), c.k)
      assert.same(c.expected, got:totable(), c.name)
    end
  end)

  it("top-k accuracies reject a k that is not a positive integer", function()
    local yt, yp = keras.tensor{{0, 1}}, keras.tensor{{0.3, 0.7}}
    assert.error_matches(function() M.top_k_categorical_accuracy(yt, yp, 0) end,
      "top_k_categorical_accuracy: k must be an integer >= 1, got 0", 1, true)
    assert.error_matches(function() M.sparse_top_k_categorical_accuracy(keras.tensor{1}, yp, 1.5) end,
      "sparse_top_k_categorical_accuracy: k must be an integer >= 1, got 1.5", 1, true)
  end)

  it("has every loss, as the same function", function()
    for _, n in ipairs(L._names) do assert.equal(L[n], M[n], n) end
    assert.equal(L.mse, M.mse)
    assert.equal(L.mae, M.mae)
    assert.equal(L.cosine, M.cosine)
  end)

  it("keeps the batch axis on symbolic batches (accuracies per sample)", function()
    local yp = core.input{-1, 4}
    assert.same({-1}, M.binary_accuracy(core.input{-1, 4}, yp).shape)
    assert.same({-1}, M.categorical_accuracy(core.input{-1, 4}, yp).shape)
    assert.same({-1}, M.sparse_categorical_accuracy(core.input{-1, 1}, yp).shape)
    assert.same({-1}, M.sparse_categorical_accuracy(core.input{-1}, yp).shape)
    assert.same({}, M.top_k_categorical_accuracy(core.input{-1, 4}, yp, 2).shape)
    assert.same({}, M.sparse_top_k_categorical_accuracy(core.input{-1, 1}, yp, 2).shape)
  end)
end)

describe("keras.metrics.resolve", function()
  local none = keras.None

  it("resolves accuracy to binary accuracy for a one-unit output", function()
    local f, name = M.resolve("accuracy", {none, 1}, "mean_squared_error")
    assert.equal(M.binary_accuracy, f)
    assert.equal("acc", name)
  end)

  it("resolves accuracy to binary accuracy for binary_crossentropy", function()
    local f, name = M.resolve("acc", {none, 10}, "binary_crossentropy")
    assert.equal(M.binary_accuracy, f)
    assert.equal("acc", name)
  end)

  it("resolves accuracy to sparse categorical accuracy for sparse_categorical_crossentropy", function()
    local f, name = M.resolve("accuracy", {none, 10}, "sparse_categorical_crossentropy")
    assert.equal(M.sparse_categorical_accuracy, f)
    assert.equal("acc", name)
  end)

  it("resolves accuracy to categorical accuracy otherwise (a custom loss too)", function()
    assert.equal(M.categorical_accuracy, (M.resolve("accuracy", {none, 10}, "categorical_crossentropy")))
    assert.equal(M.categorical_accuracy, (M.resolve("acc", {none, 10}, "mean_squared_error")))
    assert.equal(M.categorical_accuracy, (M.resolve("acc", {none, 10}, nil)))
  end)

  it("checks the output before the loss, as Keras does", function()
    assert.equal(M.binary_accuracy, (M.resolve("acc", {none, 1}, "sparse_categorical_crossentropy")))
  end)

  it("resolves crossentropy / ce the same way, displayed as ce", function()
    local f, name = M.resolve("crossentropy", {none, 1}, "mse")
    assert.equal(L.binary_crossentropy, f)
    assert.equal("ce", name)
    f, name = M.resolve("ce", {none, 5}, "sparse_categorical_crossentropy")
    assert.equal(L.sparse_categorical_crossentropy, f)
    assert.equal("ce", name)
    f, name = M.resolve("ce", {none, 5}, "categorical_crossentropy")
    assert.equal(L.categorical_crossentropy, f)
    assert.equal("ce", name)
  end)

  it("displays other names by the function's name, as Keras 2.2.4 (__name__)", function()
    local expect = {
      mae = "mean_absolute_error", mse = "mean_squared_error", MSE = "mean_squared_error",
      mape = "mean_absolute_percentage_error", msle = "mean_squared_logarithmic_error",
      cosine = "cosine_proximity", mean_absolute_error = "mean_absolute_error",
      binary_accuracy = "binary_accuracy", categorical_accuracy = "categorical_accuracy",
      sparse_categorical_accuracy = "sparse_categorical_accuracy",
      top_k_categorical_accuracy = "top_k_categorical_accuracy",
      sparse_top_k_categorical_accuracy = "sparse_top_k_categorical_accuracy",
    }
    for given, shown in pairs(expect) do
      local f, name = M.resolve(given, {none, 3}, "categorical_crossentropy")
      assert.equal(M[given], f)
      assert.equal(shown, name, given)
    end
  end)

  it("accepts every loss name as a metric", function()
    for _, n in ipairs(L._names) do
      local f, name = M.resolve(n, {none, 3}, nil)
      assert.equal(L[n], f)
      assert.equal(n, name)
    end
  end)

  it("names a built-in function by its canonical name", function()
    local f, name = M.resolve(M.binary_accuracy, {none, 1}, nil)
    assert.equal(M.binary_accuracy, f)
    assert.equal("binary_accuracy", name)
    local _, n2 = M.resolve(L.mse, {none, 1}, nil)
    assert.equal("mean_squared_error", n2)
  end)

  it("names a function after the local variable holding it in the calling code", function()
    local function mean_pred(_y_true, y_pred) return K.mean(y_pred) end
    local f, name = M.resolve(mean_pred, {none, 1}, "binary_crossentropy")
    assert.equal(mean_pred, f)
    assert.equal("mean_pred", name)
  end)

  it("looks through the library frames when given the caller's level", function()
    local function my_metric(_y_true, y_pred) return K.mean(y_pred) end
    local function compile(metrics)   -- a library function calling resolve for its caller
      local fn, name = M.resolve(metrics[1], {none, 1}, nil, 2)
      return fn, name
    end
    local _, name = compile({my_metric})
    assert.equal("my_metric", name)
  end)

  it("finds an upvalue of a calling function", function()
    local setup = (function()
      local function hits(_y_true, y_pred) return K.mean(y_pred) end
      return function()
        local list = {hits}   -- an upvalue here; the frame that had it as a local is gone
        local _, name = M.resolve(list[1], {none, 1}, nil)
        return name
      end
    end)()
    assert.equal("hits", setup())
  end)

  it("points the unknown-name error at the line calling resolve by default", function()
    local line
    local ok, err = pcall(function()
      line = debug.getinfo(1, "l").currentline + 1
      local f = M.resolve("acuracy", {none, 1}, nil)
      return f
    end)
    assert.is_false(ok)
    assert.truthy(err:find("metrics_spec.lua:" .. line .. ": unknown metric 'acuracy'", 1, true), err)
  end)

  it("finds a global function", function()
    _G.lkeras_test_global_metric = function(_y_true, y_pred) return K.mean(y_pred) end
    local list = {_G.lkeras_test_global_metric}
    local _, name = M.resolve(list[1], {none, 1}, nil)
    _G.lkeras_test_global_metric = nil
    assert.equal("lkeras_test_global_metric", name)
  end)

  it("falls back to custom_metric for an anonymous function", function()
    local list = {function(_y_true, y_pred) return K.mean(y_pred) end}
    local _, name = M.resolve(list[1], {none, 1}, nil)
    assert.equal("custom_metric", name)
  end)

  it("takes {name =, fn =}", function()
    local f = function(_y_true, y_pred) return K.mean(y_pred) end
    local got, name = M.resolve({name = "mean_pred", fn = f}, {none, 1}, nil)
    assert.equal(f, got)
    assert.equal("mean_pred", name)
  end)

  it("rejects an unknown name", function()
    assert.error_matches(function() M.resolve("acuracy", {none, 1}, nil) end,
      "unknown metric 'acuracy'", 1, true)
  end)

  it("points the unknown-name error at the given caller level", function()
    local function compile(m)
      local f = M.resolve(m, {none, 1}, nil, 2)
      return f
    end
    local line
    local ok, err = pcall(function()
      line = debug.getinfo(1, "l").currentline + 1
      compile("acuracy")
    end)
    assert.is_false(ok)
    assert.truthy(err:find("metrics_spec.lua:" .. line .. ": unknown metric 'acuracy'", 1, true), err)
  end)

  it("rejects a metric table without a name or a function", function()
    assert.error_matches(function() M.resolve({fn = function() end}, {none, 1}, nil) end,
      "metric table needs a name: {name = \"...\", fn = function(y_true, y_pred) ... end}", 1, true)
    assert.error_matches(function() M.resolve({name = "m", fn = 3}, {none, 1}, nil) end,
      "metric 'm': fn must be a function, got number", 1, true)
  end)

  it("rejects what is not a metric", function()
    assert.error_matches(function() M.resolve(42, {none, 1}, nil) end,
      "metric must be a name, a function or {name=, fn=}, got number", 1, true)
  end)
end)

describe("keras.metrics.get", function()
  it("returns the function for a name or a function", function()
    assert.equal(M.mean_absolute_error, M.get("mae"))
    local f = function() end
    assert.equal(f, M.get(f))
  end)

  it("rejects an unknown name", function()
    assert.error_matches(function() M.get("acuracy") end, "unknown metric 'acuracy'", 1, true)
  end)
end)
