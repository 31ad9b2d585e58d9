-- keras.backend (Keras's K, API.md section 7): every function on concrete
-- tensors, with values checked against float64 numpy references
-- (tests/fixtures/tensor.lua, from scripts/fixtures/tensor_fixtures.py) or
-- hand arithmetic; and on symbolic tensors (keras.Input and what K makes of
-- it): the shapes K.int_shape reports, with keras.None for the batch, and
-- the values a model computes through the same functions.
local keras = require "keras"

local K = keras.backend
local T = keras.tensor
local fixtures = dofile("tests/fixtures/tensor.lua")

-- float32 results against float64 references:
-- |got - want| <= RTOL * |want| + ATOL
local RTOL, ATOL = 1e-6, 1e-7

local None = keras.None

local U_ = dofile("tests/lib/spec_util.lua")
local flat = U_.flat

local function close(got, want, what)
  local g, w = flat(got), flat(want)
  assert.equal(#w, #g, (what or "") .. ": element count")
  for i = 1, #w do
    if not (math.abs(g[i] - w[i]) <= RTOL * math.abs(w[i]) + ATOL) then
      error(string.format("%s: element %d is %.9g, expected %.9g", what or "", i, g[i], w[i]), 2)
    end
  end
end

local function check(got, c)
  if #c.shape == 0 and not K.is_tensor(got) then   -- a concrete reduction over every axis: a number
    assert.equal("number", type(got), c.name .. ": a number")
    close(got, c.expected, c.name)
    return
  end
  assert.same(c.shape, got.shape, c.name .. ": shape")
  close(got:totable(), c.expected, c.name)
end

local function arg(v)
  if type(v) == "table" then return T(v) end
  return v
end

local function cases(fn)
  local out = {}
  for _, c in ipairs(fixtures) do
    if c.fn == fn then out[#out + 1] = c end
  end
  assert(#out > 0, "no fixture for " .. fn)
  return out
end

-- K.<fn>(x, y, args...) for a fixture case; x may be replaced (by a symbolic tensor)
local function call_k(c, x)
  x = x or arg(c.x)
  if c.fn == "concatenate" then return K.concatenate({x, T(c.y)}, c.args[1]) end
  local a, n = {x}, 1
  if c.y ~= nil then
    n = n + 1
    a[n] = arg(c.y)
  end
  if c.args then
    for i = 1, c.args.n or #c.args do
      n = n + 1
      a[n] = c.args[i]
    end
  end
  return K[c.fn](table.unpack(a, 1, n))
end

-- the cases a model can compute with x as its input: x is a batch of 3 rows
-- of 4, the other operand (if any) a number or a row, and the result keeps
-- the batch axis without mixing the rows
local function batchable(c)
  if type(c.x) ~= "table" or #c.x ~= 3 or type(c.x[1]) ~= "table" or #c.x[1] ~= 4 then return false end
  if type(c.y) == "table" and type(c.y[1]) == "table" then return false end
  if c.shape[1] ~= 3 then return false end
  if c.args and (c.args[1] == 0 or (c.args.n and c.args[1] == nil)) then return false end
  return true
end

-- run f on symbolic tensors inside a model, on the rows of x
local function via_model(f, x)
  local input = keras.Input{shape = {#x[1]}}
  local model = keras.Model{inputs = input, outputs = keras.layers.Lambda(f)(input)}
  return model:predict(T(x), {batch_size = #x})
end

local function input34() return keras.Input{shape = {3, 4}} end

-- describe K.<fn>: the fixture cases on tensors and, where a model can run
-- them, through a Lambda layer on symbolic tensors. extra.refuses names the
-- cases Keras's K.<fn> refuses ({[case name] = {why = ..., error = ...}}):
-- each becomes a test that the call raises that error, and a name that
-- matches no case is an error, so that no fixture case is left out unseen.
local function numeric(fn, extra)
  local refuses = extra and extra.refuses or {}
  describe("K." .. fn, function()
    local names = {}
    for _, c in ipairs(cases(fn)) do
      names[c.name] = true
      local r = refuses[c.name]
      if r then
        it("refuses, as Keras does (" .. r.why .. "): " .. c.name, function()
          assert.error_matches(function() call_k(c) end, r.error, 1, true)
        end)
      else
        it("matches numpy: " .. c.name, function() check(call_k(c), c) end)
      end
    end
    for name in pairs(refuses) do
      assert(names[name], "K." .. fn .. ": refuses names no fixture case: " .. name)
    end
    for _, c in ipairs(cases(fn)) do
      if batchable(c) and not refuses[c.name] then
        it("computes the same inside a model (symbolic): " .. c.name, function()
          check(via_model(function(x) return call_k(c, x) end, c.x), c)
        end)
      end
    end
    if extra and extra.symbolic then
      it("gives a symbolic tensor of shape " .. extra.symbolic[2] .. " on an Input of (None, 3, 4)", function()
        local y = extra.symbolic[1](input34())
        assert.is_true(K.is_keras_tensor(y))
        assert.same(extra.symbolic[3], K.int_shape(y))
      end)
    end
    if extra and extra.more then extra.more() end
  end)
end

local same34 = {None, 3, 4}

numeric("abs", {symbolic = {K.abs, "(None, 3, 4)", same34}})
numeric("square", {symbolic = {K.square, "(None, 3, 4)", same34}})
numeric("exp", {symbolic = {K.exp, "(None, 3, 4)", same34}})
numeric("log", {symbolic = {K.log, "(None, 3, 4)", same34}})
numeric("sign", {symbolic = {K.sign, "(None, 3, 4)", same34}})
numeric("floor", {symbolic = {K.floor, "(None, 3, 4)", same34}})
numeric("sigmoid", {symbolic = {K.sigmoid, "(None, 3, 4)", same34},
  more = function()
    it("is 1/2 at 0 and 1/(1+e^-2) at 2", function()
      close(K.sigmoid(T{0, 2}):totable(), {0.5, 1 / (1 + math.exp(-2))}, "sigmoid")
    end)
  end})
numeric("tanh", {symbolic = {K.tanh, "(None, 3, 4)", same34}})
numeric("softplus", {symbolic = {K.softplus, "(None, 3, 4)", same34}})
numeric("softsign", {symbolic = {K.softsign, "(None, 3, 4)", same34}})
numeric("selu", {symbolic = {K.selu, "(None, 3, 4)", same34}})
numeric("hard_sigmoid", {symbolic = {K.hard_sigmoid, "(None, 3, 4)", same34},
  more = function()
    it("is clip(0.2 x + 0.5, 0, 1)", function()
      close(K.hard_sigmoid(T{-3, 0, 1, 3}):totable(), {0, 0.5, 0.7, 1}, "hard_sigmoid")
    end)
  end})
numeric("elu", {symbolic = {K.elu, "(None, 3, 4)", same34}})
numeric("neg", {symbolic = {K.neg, "(None, 3, 4)", same34}})

numeric("sqrt", {symbolic = {K.sqrt, "(None, 3, 4)", same34},
  more = function()
    it("gives exact roots of perfect squares", function()
      assert.same({0, 1, 3, 12}, K.sqrt(T{0, 1, 9, 144}):totable())
    end)

    it("clips negatives to 0 first, as Keras does", function()
      assert.same({0, 2}, K.sqrt(T{-4, 4}):totable())
    end)
  end})

numeric("round", {symbolic = {K.round, "(None, 3, 4)", same34},
  more = function()
    it("rounds halves to even, as tf.round", function()
      assert.same({-2, -2, -0.0, 0, 2, 2}, K.round(T{-2.5, -1.5, -0.5, 0.5, 1.5, 2.5}):totable())
    end)
  end})

numeric("relu", {symbolic = {K.relu, "(None, 3, 4)", same34},
  more = function()
    it("takes alpha for negatives and max_value as a ceiling", function()
      close(K.relu(T{-2, -1, 0.5, 3}, 0.1, 2):totable(), {-0.2, -0.1, 0.5, 2}, "relu")
    end)
  end})

numeric("clip", {symbolic = {function(x) return K.clip(x, 0, 1) end, "(None, 3, 4)", same34},
  more = function()
    it("clips to [lo, hi]", function()
      assert.same({0, 0.5, 1}, K.clip(T{-1, 0.5, 3}, 0, 1):totable())
    end)

    it("takes hi = lo when hi < lo, as Keras does", function()
      assert.same({1, 1, 1}, K.clip(T{-1, 0.5, 3}, 1, 0):totable())
    end)

    it("leaves a nil bound open", function()
      assert.same({-1, 0.5, 1}, K.clip(T{-1, 0.5, 3}, nil, 1):totable())
      assert.same({0, 0.5, 3}, K.clip(T{-1, 0.5, 3}, 0, nil):totable())
    end)
  end})

numeric("pow", {symbolic = {function(x) return K.pow(x, 2) end, "(None, 3, 4)", same34},
  more = function()
    it("raises to a number or to a tensor of exponents", function()
      assert.same({8, 27}, K.pow(T{2, 3}, 3):totable())
      assert.same({2, 9}, K.pow(T{2, 3}, T{1, 2}):totable())
    end)
  end})

-- two operands, numpy broadcasting
for _, fn in ipairs{"add", "sub", "mul", "div"} do
  numeric(fn, {symbolic = {function(x) return K[fn](x, T{1, 2, 3, 4}) end, "(None, 3, 4)", same34}})
end
numeric("maximum", {symbolic = {function(x) return K.maximum(x, 0) end, "(None, 3, 4)", same34}})
numeric("minimum", {symbolic = {function(x) return K.minimum(x, T{1, 2, 3, 4}) end, "(None, 3, 4)", same34}})
numeric("equal", {symbolic = {function(x) return K.equal(x, x) end, "(None, 3, 4)", same34},
  more = function()
    it("gives 1 where equal and 0 elsewhere", function()
      assert.same({1, 0, 1}, K.equal(T{1, 2, 3}, T{1, 0, 3}):totable())
    end)
  end})
for _, fn in ipairs{"not_equal", "greater", "greater_equal", "less", "less_equal"} do
  numeric(fn, {symbolic = {function(x) return K[fn](x, 0) end, "(None, 3, 4)", same34}})
end

-- reductions
numeric("mean", {symbolic = {function(x) return K.mean(x, -1) end, "(None, 3)", {None, 3}},
  more = function()
    it("reduces everything to a scalar without an axis, symbolic too", function()
      assert.equal(2.5, K.mean(T{{1, 2}, {3, 4}}))
      assert.same({}, K.int_shape(K.mean(input34())))
    end)

    it("keeps the reduced axis with keepdims", function()
      assert.same({{1.5}, {3.5}}, K.mean(T{{1, 2}, {3, 4}}, 1, true):totable())
      assert.same({None, 1, 4}, K.int_shape(K.mean(input34(), 1, true)))
    end)

    it("rejects an axis out of range", function()
      assert.error_matches(function() K.mean(input34(), 3) end,
        "K.mean: axis 3 is out of range for a tensor of rank 3", 1, true)
    end)

    it("rejects an axis that is not an integer", function()
      assert.error_matches(function() K.mean(T{1, 2}, "x") end, "K.mean: axis must be an integer, got x", 1, true)
    end)

    it("names the caller's line in its errors", function()
      local ok, err = pcall(function() local y = K.mean(input34(), 3) return y end)
      assert.is_false(ok)
      assert.equal(debug.getinfo(1, "S").short_src, err:match("^([^\n]-):%d+: "))
    end)
  end})
numeric("sum", {symbolic = {function(x) return K.sum(x, {1, 2}) end, "(None,)", {None}},
  more = function()
    it("sums a list of axes", function()
      assert.same({10, 26}, K.sum(T{{{1, 2}, {3, 4}}, {{5, 6}, {7, 8}}}, {1, 2}):totable())
    end)
  end})
numeric("max", {symbolic = {function(x) return K.max(x, -1) end, "(None, 3)", {None, 3}}})
numeric("min", {symbolic = {function(x) return K.min(x, 1) end, "(None, 4)", {None, 4}}})
numeric("prod", {symbolic = {function(x) return K.prod(x, -1) end, "(None, 3)", {None, 3}}})
numeric("var", {symbolic = {function(x) return K.var(x, -1) end, "(None, 3)", {None, 3}},
  more = function()
    it("is the mean squared deviation (no Bessel correction)", function()
      close({K.var(T{1, 2, 3, 4})}, {1.25}, "var")
    end)
  end})
numeric("std", {symbolic = {function(x) return K.std(x, -1) end, "(None, 3)", {None, 3}}})
numeric("any", {symbolic = {function(x) return K.any(x, -1) end, "(None, 3)", {None, 3}}})
numeric("all", {symbolic = {function(x) return K.all(x, -1) end, "(None, 3)", {None, 3}}})
numeric("argmax", {symbolic = {K.argmax, "(None, 3)", {None, 3}},
  more = function()
    it("takes the last axis by default, as Keras", function()
      assert.same({1, 0}, K.argmax(T{{1, 3, 2}, {9, 0, 1}}):totable())
    end)

    it("takes an axis, 0-based as numpy", function()
      assert.same({1, 0, 0}, K.argmax(T{{1, 3, 2}, {9, 0, 1}}, 0):totable())
      assert.same({None, 4}, K.int_shape(K.argmax(input34(), 1)))
    end)
  end})
numeric("argmin", {symbolic = {K.argmin, "(None, 3)", {None, 3}}})
numeric("softmax", {symbolic = {K.softmax, "(None, 3, 4)", same34},
  more = function()
    it("gives e^x / sum(e^x) on the last axis", function()
      local e1, e2, e3 = math.exp(1), math.exp(2), math.exp(3)
      local s = e1 + e2 + e3
      close(K.softmax(T{{1, 2, 3}}):totable(), {{e1 / s, e2 / s, e3 / s}}, "softmax")
    end)
  end})
numeric("log_softmax", {symbolic = {K.log_softmax, "(None, 3, 4)", same34}})
numeric("l2_normalize", {symbolic = {function(x) return K.l2_normalize(x, -1) end, "(None, 3, 4)", same34},
  more = function()
    it("divides (3, 4) by 5", function()
      close(K.l2_normalize(T{{3, 4}}, -1):totable(), {{0.6, 0.8}}, "l2_normalize")
    end)
  end})

-- products and layout
-- numpy's matmul of (3,4) and (4,) (checked as Tensor:matmul in tensor_spec.lua) is not
-- Keras's K.dot: for 2-D operands that is tf.matmul, which takes rank 2 only
numeric("dot", {refuses = {["matmul (3,4) x (4,)"] = {why = "tf.matmul needs a 2-D right operand",
                                                       error = "matmul: shapes (3, 4) and (4,) do not align"}},
  symbolic = {function(x) return K.dot(x, T.ones{4, 5}) end, "(None, 3, 5)", {None, 3, 5}},
  more = function()
    it("multiplies matrices", function()
      assert.same({{4, 5}, {10, 11}}, K.dot(T{{1, 2, 3}, {4, 5, 6}}, T{{1, 0}, {0, 1}, {1, 1}}):totable())
    end)

    it("rejects misaligned shapes, naming them", function()
      assert.error_matches(function() K.dot(input34(), T.ones{3, 5}) end,
        "matmul: shapes (None, 3, 4) and (3, 5) do not align", 1, true)
    end)
  end})
numeric("transpose", {more = function()
  it("reverses the axes of a tensor", function()
    assert.same({{1, 3}, {2, 4}}, K.transpose(T{{1, 2}, {3, 4}}):totable())
  end)
end})
numeric("permute_dimensions", {
  symbolic = {function(x) return K.permute_dimensions(x, {0, 2, 1}) end, "(None, 4, 3)", {None, 4, 3}}})
numeric("concatenate", {
  symbolic = {function(x) return K.concatenate({x, x}, -1) end, "(None, 3, 8)", {None, 3, 8}},
  more = function()
    it("takes the last axis by default", function()
      assert.same({{1, 2, 3}}, K.concatenate{T{{1}}, T{{2, 3}}}:totable())
    end)
  end})

describe("K.cast", function()
  it("keeps float32 values", function()
    assert.same({1.5, -2.25}, K.cast(T{1.5, -2.25}, "float32"):totable())
    assert.same({1.5}, K.cast(T{1.5}, K.floatx()):totable())
  end)

  it("truncates toward 0 for an integer type, as tf.cast", function()
    assert.same({-1, 1, 2, 0}, K.cast(T{-1.7, 1.7, 2.5, 0.2}, "int32"):totable())
  end)

  it("gives 1 for non-zero and 0 for zero for bool", function()
    assert.same({0, 1, 1}, K.cast(T{0, 2, -0.5}, "bool"):totable())
  end)

  it("turns comparisons into 0/1 floats on symbolic tensors", function()
    local y = K.cast(K.greater(input34(), 0.5), "float32")
    assert.same(same34, K.int_shape(y))
    local out = via_model(function(x) return K.cast(K.greater(x, 0.5), "float32") end, {{0, 1}, {2, 0.25}})
    assert.same({{0, 1}, {1, 0}}, out:totable())
  end)
end)

describe("K.reshape", function()
  it("infers one -1 on a tensor", function()
    assert.same({{1, 2, 3}, {4, 5, 6}}, K.reshape(T{1, 2, 3, 4, 5, 6}, {-1, 3}):totable())
  end)

  it("keeps the batch axis of a symbolic tensor and infers the rest", function()
    assert.same({None, 12}, K.int_shape(K.reshape(input34(), {-1, 12})))
    assert.same({None, 2, 6}, K.int_shape(K.reshape(input34(), {None, 2, 6})))
    assert.same({None, 6, 2}, K.int_shape(K.reshape(input34(), {-1, -1, 2})))
  end)

  it("rejects two -1", function()
    assert.error_matches(function() K.reshape(T.ones{2, 3}, {-1, -1}) end,
      "K.reshape: only one dimension can be -1", 1, true)
  end)

  it("rejects a -1 that cannot be inferred", function()
    assert.error_matches(function() K.reshape(T.ones{2, 3}, {4, -1}) end,
      "K.reshape: cannot infer the -1 dimension", 1, true)
  end)

  it("rejects a size for the batch axis of a symbolic tensor", function()
    assert.error_matches(function() K.reshape(input34(), {5, -1}) end,
      "K.reshape: the first axis of a symbolic tensor of shape (None, 3, 4) is its batch axis: "
        .. "give it as -1 or keras.None, got 5", 1, true)
  end)
end)

describe("K.flatten", function()
  it("makes a tensor one-dimensional", function()
    assert.same({1, 2, 3, 4}, K.flatten(T{{1, 2}, {3, 4}}):totable())
  end)
end)

describe("K.batch_flatten", function()
  it("keeps the first axis and flattens the rest", function()
    assert.same({2, 4}, K.batch_flatten(T.zeros{2, 2, 2}).shape)
    assert.same({None, 12}, K.int_shape(K.batch_flatten(input34())))
  end)
end)

describe("K.expand_dims", function()
  it("inserts a unit axis", function()
    assert.same({2, 1, 3}, K.expand_dims(T.zeros{2, 3}, 1).shape)
    assert.same({2, 3, 1}, K.expand_dims(T.zeros{2, 3}).shape)
    assert.same({None, 1, 3, 4}, K.int_shape(K.expand_dims(input34(), 1)))
  end)

  it("counts a negative axis from the end of the result", function()
    assert.same({2, 3, 1}, K.expand_dims(T.zeros{2, 3}, -1).shape)
    assert.same({1, 2, 3}, K.expand_dims(T.zeros{2, 3}, -3).shape)
  end)

  it("rejects an axis out of range", function()
    assert.error_matches(function() K.expand_dims(T.zeros{2}, 5) end,
      "K.expand_dims: axis 5 is out of range for a tensor of rank 1", 1, true)
  end)
end)

describe("K.squeeze", function()
  it("removes a unit axis", function()
    assert.same({2, 3}, K.squeeze(T.zeros{2, 1, 3}, 1).shape)
  end)

  it("rejects an axis out of range", function()
    assert.error_matches(function() K.squeeze(T.zeros{2, 1}, 2) end,
      "K.squeeze: axis 2 is out of range for a tensor of rank 2", 1, true)
  end)

  it("rejects an axis whose size is not 1", function()
    assert.error_matches(function() K.squeeze(T.zeros{2, 3}, 0) end, "K.squeeze: axis 0 has size 2, not 1", 1, true)
  end)
end)

describe("K.one_hot", function()
  it("maps class ids (from 0) to rows of an identity", function()
    assert.same({{1, 0, 0}, {0, 0, 1}}, K.one_hot(T{0, 2}, 3):totable())
  end)

  it("adds a class axis to a symbolic tensor", function()
    assert.same({None, 5, 3}, K.int_shape(K.one_hot(keras.Input{shape = {5}}, 3)))
  end)
end)

describe("K.gather", function()
  it("picks rows by 0-based ids", function()
    assert.same({{5, 6}, {1, 2}}, K.gather(T{{1, 2}, {3, 4}, {5, 6}}, T{2, 0}):totable())
  end)
end)

describe("K.zeros_like", function()
  it("gives zeros of the same shape", function()
    assert.same({{0, 0}}, K.zeros_like(T{{1, 2}}):totable())
    assert.same(same34, K.int_shape(K.zeros_like(input34())))
  end)
end)

describe("K.ones_like", function()
  it("gives ones of the same shape", function()
    assert.same({{1, 1}}, K.ones_like(T{{5, -2}}):totable())
    assert.same(same34, K.int_shape(K.ones_like(input34())))
  end)
end)

describe("K.identity", function()
  it("gives the same values", function()
    assert.same({1, -2}, K.identity(T{1, -2}):totable())
  end)
end)

describe("K.stop_gradient", function()
  it("gives the same values", function()
    assert.same({1, -2}, K.stop_gradient(T{1, -2}):totable())
  end)
end)

describe("K.epsilon", function()
  it("is 1e-7", function() assert.equal(1e-7, K.epsilon()) end)

  it("is changed by K.set_epsilon", function()
    K.set_epsilon(1e-5)
    local e = K.epsilon()
    K.set_epsilon(1e-7)
    assert.equal(1e-5, e)
  end)
end)

describe("K.floatx", function()
  it("is float32", function() assert.equal("float32", K.floatx()) end)
end)

describe("K.image_data_format", function()
  it("is channels_last", function() assert.equal("channels_last", K.image_data_format()) end)
end)

describe("K.int_shape", function()
  it("gives the sizes of a tensor", function()
    assert.same({2, 3}, K.int_shape(T.zeros{2, 3}))
  end)

  it("gives keras.None for the batch axis of an Input", function()
    local s = K.int_shape(keras.Input{shape = {784}})
    assert.equal(None, s[1])
    assert.equal(784, s[2])
    assert.equal(2, #s)
  end)

  it("gives the full shape of an Input with a batch_shape", function()
    assert.same({32, 10}, K.int_shape(keras.Input{batch_shape = {32, 10}}))
  end)
end)

describe("K.ndim", function()
  it("counts the axes of tensors and symbolic tensors", function()
    assert.equal(2, K.ndim(T.zeros{2, 3}))
    assert.equal(3, K.ndim(input34()))
  end)
end)

describe("K.is_keras_tensor", function()
  it("is true for symbolic tensors only", function()
    assert.is_true(K.is_keras_tensor(input34()))
    assert.is_false(K.is_keras_tensor(T{1}))
  end)
end)

describe("K.variable", function()
  it("holds a value that K.get_value reads and K.set_value replaces", function()
    local v = K.variable(T{1, 2})
    assert.same({1, 2}, K.get_value(v):totable())
    K.set_value(v, T{3, 4})
    assert.same({3, 4}, K.get_value(v):totable())
  end)
end)

describe("K.constant", function()
  it("evaluates to its value with K.eval", function()
    assert.same({1, 2}, K.eval(K.constant(T{1, 2})):totable())
  end)
end)

describe("K.eval", function()
  it("computes a symbolic expression of constants", function()
    assert.same({4, 6}, K.eval(K.constant(T{1, 2}) * 2 + K.constant(T{2, 2})):totable())
  end)

  it("gives a tensor back as it is", function()
    local t = T{1}
    assert.equal(t, K.eval(t))
  end)
end)

describe("symbolic tensor arithmetic", function()
  it("gives symbolic results with the Input's shape for + - * / ^ and unary -", function()
    local x = input34()
    for _, y in ipairs{x + 1, 1 + x, x - x, 2 - x, x * 2, x / 2, 1 / x, x ^ 2, -x, x + T{1, 2, 3, 4}, x * x} do
      assert.is_true(K.is_keras_tensor(y))
      assert.same(same34, K.int_shape(y))
    end
  end)

  it("broadcasts a (None, 3, 1) against a (4,)", function()
    local x = keras.Input{shape = {3, 1}}
    assert.same(same34, K.int_shape(x + T{1, 2, 3, 4}))
  end)

  it("offers the tensor methods", function()
    local x = input34()
    assert.same({None, 4}, K.int_shape(x:sum(1)))
    assert.same({}, K.int_shape(x:mean()))
    assert.same({None, 3, 2}, K.int_shape(x:matmul(T.ones{4, 2})))
    assert.same({None, 3}, K.int_shape(x:argmax()))
  end)

  it("computes in a model what the same expression computes on tensors", function()
    -- mean((2x - 1)^2, -1) for rows (0, 1) and (2, 3): (1 + 1) / 2 = 1 and (9 + 25) / 2 = 17
    local out = via_model(function(x) return K.mean(K.square(x * 2 - 1), -1) end, {{0, 1}, {2, 3}})
    assert.same({1, 17}, out:totable())
  end)

  it("rejects shapes that do not broadcast, naming them", function()
    assert.error_matches(function() return input34() + T.ones{5} end,
      "add: cannot broadcast shapes (None, 3, 4) and (5,)", 1, true)
  end)
end)
