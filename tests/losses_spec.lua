local keras = require "keras"

local L = keras.losses
local K = keras.backend
local core = keras._core
local fixtures = dofile("tests/fixtures/losses.lua")

-- |got - want| <= 1e-5 * |want| (relative), with an absolute floor of 1e-9
-- for values that are 0 in exact arithmetic
local RTOL, ATOL = 1e-5, 1e-9

local U_ = dofile("tests/lib/spec_util.lua")
local flat = U_.flat

local function check_close(got, case)
  assert.same(case.shape, got.shape, case.fn .. " / " .. case.name .. ": shape")
  local g = flat(got:totable())
  local w = flat(case.expected)
  assert.equal(#w, #g)
  for i = 1, #w do
    local ok = math.abs(g[i] - w[i]) <= RTOL * math.abs(w[i]) + ATOL
    if not ok then
      error(string.format("%s / %s: element %d is %.9g, expected %.9g", case.fn, case.name, i, g[i], w[i]), 2)
    end
  end
end

local function tensor(v)
  if type(v) == "number" then return keras.tensor{v} end
  return keras.tensor(v)
end

local function cases_of(fn)
  local out = {}
  for _, c in ipairs(fixtures.losses) do
    if c.fn == fn then out[#out + 1] = c end
  end
  return out
end

describe("keras.losses", function()
  for _, name in ipairs(L._names) do
    describe(name, function()
      local cases = cases_of(name)
      it("has fixtures", function() assert.is_true(#cases > 0) end)
      for _, c in ipairs(cases) do
        it("matches the reference on " .. c.name, function()
          check_close(L[name](tensor(c.y_true), tensor(c.y_pred)), c)
        end)
      end
      it("gives the same values on symbolic tensors", function()
        for _, c in ipairs(cases) do
          local yt = core.variable(tensor(c.y_true))
          local yp = core.variable(tensor(c.y_pred))
          local out = L[name](yt, yp)
          assert.is_true(core.is_node(out))
          check_close(core.eval(out), c)
        end
      end)
    end)
  end

  it("gives finite results for p = 0 and p = 1 exactly", function()
    local n = 0
    for _, c in ipairs(fixtures.losses) do
      if c.name:find("p = 0 and p = 1", 1, true) then
        n = n + 1
        local v = L[c.fn](tensor(c.y_true), tensor(c.y_pred))
        assert.is_true(v:isfinite(), c.fn)
      end
    end
    assert.equal(3, n)
  end)

  it("has finite gradients for p = 0 and p = 1 exactly", function()
    for _, c in ipairs(fixtures.losses) do
      if c.name:find("p = 0 and p = 1", 1, true) then
        local yp = core.variable(tensor(c.y_pred))
        local loss = K.mean(L[c.fn](core.const(tensor(c.y_true)), yp))
        local g = core.eval(K.gradients(loss, {yp})[1])
        assert.is_true(g:isfinite(), c.fn)
      end
    end
  end)

  it("binary_crossentropy has TF's gradient sigmoid(z) - y at p = 0.5", function()
    -- d/dp mean(bce) = (p - y) / (p (1 - p)) / n; p = 0.5, y = 0, n = 2 -> 1
    local yp = core.variable(keras.tensor{{0.5, 0.5}})
    local loss = K.sum(L.binary_crossentropy(core.const(keras.tensor{{0, 1}}), yp))
    local g = core.eval(K.gradients(loss, {yp})[1]):totable()
    assert.near(1, g[1][1], 1e-6)
    assert.near(-1, g[1][2], 1e-6)
  end)

  describe("on symbolic batches", function()
    it("reduce the last axis and keep the batch axis", function()
      local yp = core.input{-1, 5}
      for _, name in ipairs(L._names) do
        local yt = name == "sparse_categorical_crossentropy" and core.input{-1, 1} or core.input{-1, 5}
        assert.same({-1}, L[name](yt, yp).shape, name)
      end
    end)

    it("sparse_categorical_crossentropy takes labels (batch,), (batch, 1) and 3-D (batch, t, 1)", function()
      local f = L.sparse_categorical_crossentropy
      assert.same({-1}, f(core.input{-1}, core.input{-1, 5}).shape)
      assert.same({-1}, f(core.input{-1, 1}, core.input{-1, 5}).shape)
      assert.same({-1, 3}, f(core.input{-1, 3}, core.input{-1, 3, 4}).shape)
      assert.same({-1, 3}, f(core.input{-1, 3, 1}, core.input{-1, 3, 4}).shape)
    end)
  end)

  it("rejects a label outside the classes", function()
    assert.has_error(function()
      L.sparse_categorical_crossentropy(keras.tensor{3}, keras.tensor{{0.2, 0.3, 0.5}})
    end)
  end)

  it("has Keras's aliases", function()
    assert.equal(L.mean_squared_error, L.mse)
    assert.equal(L.mean_squared_error, L.MSE)
    assert.equal(L.mean_absolute_error, L.mae)
    assert.equal(L.mean_absolute_error, L.MAE)
    assert.equal(L.mean_absolute_percentage_error, L.mape)
    assert.equal(L.mean_absolute_percentage_error, L.MAPE)
    assert.equal(L.mean_squared_logarithmic_error, L.msle)
    assert.equal(L.mean_squared_logarithmic_error, L.MSLE)
    assert.equal(L.kullback_leibler_divergence, L.kld)
    assert.equal(L.kullback_leibler_divergence, L.KLD)
    assert.equal(L.cosine_proximity, L.cosine)
  end)
end)

describe("keras.losses.get", function()
  it("returns the function and its canonical name", function()
    local f, name = L.get("categorical_crossentropy")
    assert.equal(L.categorical_crossentropy, f)
    assert.equal("categorical_crossentropy", name)
  end)

  it("resolves aliases to the canonical name", function()
    local expect = {mse = "mean_squared_error", mae = "mean_absolute_error",
                    mape = "mean_absolute_percentage_error", msle = "mean_squared_logarithmic_error",
                    kld = "kullback_leibler_divergence", cosine = "cosine_proximity",
                    MSE = "mean_squared_error"}
    for alias, canonical in pairs(expect) do
      local f, name = L.get(alias)
      assert.equal(L[canonical], f)
      assert.equal(canonical, name)
    end
  end)

  it("knows every loss by its own name", function()
    for _, n in ipairs(L._names) do
      local f, name = L.get(n)
      assert.equal(L[n], f)
      assert.equal(n, name)
    end
  end)

  it("names a built-in loss passed as a function", function()
    local f, name = L.get(L.binary_crossentropy)
    assert.equal(L.binary_crossentropy, f)
    assert.equal("binary_crossentropy", name)
  end)

  it("passes a custom function through with no name", function()
    local custom = function(y_true, y_pred) return K.mean(K.square(y_pred - y_true), -1) end
    local f, name = L.get(custom)
    assert.equal(custom, f)
    assert.is_nil(name)
  end)

  it("returns nil for nil", function()
    assert.is_nil(L.get(nil))
  end)

  it("rejects an unknown name", function()
    assert.error_matches(function() L.get("categorical_crossentropi") end,
      "unknown loss 'categorical_crossentropi'", 1, true)
  end)

  it("rejects what is neither a name nor a function", function()
    assert.error_matches(function() L.get(42) end, "loss must be a name or a function, got number", 1, true)
  end)

  it("points the error at the line that called the caller (error level 3)", function()
    local function compile(loss)
      local f = L.get(loss)
      return f
    end
    local line
    local ok, err = pcall(function()
      line = debug.getinfo(1, "l").currentline + 1
      compile("categorical_crossentropi")
    end)
    assert.is_false(ok)
    assert.truthy(err:find("losses_spec.lua:" .. line .. ": unknown loss", 1, true), err)
  end)

  it("takes the error level as error() counts it in the function calling get", function()
    local line
    local function _compile(loss, level)
      local f = L.get(loss, level)
      return f
    end
    local function compile(loss)
      local f = _compile(loss, 3)   -- _compile's caller's caller: the user's line
      return f
    end
    local ok, err = pcall(function()
      line = debug.getinfo(1, "l").currentline + 1
      compile("categorical_crossentropi")
    end)
    assert.is_false(ok)
    assert.truthy(err:find("losses_spec.lua:" .. line .. ": unknown loss", 1, true), err)
  end)
end)
