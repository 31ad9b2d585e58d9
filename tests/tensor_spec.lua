-- keras.tensor and keras.random (API.md section 6): constructors, files,
-- random data, element access, views, printing like numpy, and the math
-- methods and operators with numpy broadcasting.
--
-- Expected values are worked out by hand below, or come from numpy float64
-- through the fixture files (tests/fixtures/tensor.lua from
-- scripts/fixtures/tensor_fixtures.py, tests/fixtures/print.lua from
-- scripts/fixtures/print_fixtures.py); none is computed with lkeras.
local keras = require "keras"

local T = keras.tensor
local math_cases = dofile("tests/fixtures/tensor.lua")
local print_cases = dofile("tests/fixtures/print.lua")

-- float32 results against float64 references:
-- |got - want| <= RTOL * |want| + ATOL
local RTOL, ATOL = 1e-6, 1e-7

local U_ = dofile("tests/lib/spec_util.lua")
local flat = U_.flat

local function close(got, want, what)
  local g, w = flat(got), flat(want)
  assert.equal(#w, #g, (what or "") .. ": element count")
  for i = 1, #w do
    local ok = (w[i] ~= w[i] and g[i] ~= g[i]) or math.abs(g[i] - w[i]) <= RTOL * math.abs(w[i]) + ATOL
    if not ok then
      error(string.format("%s: element %d is %.9g, expected %.9g", what or "", i, g[i], w[i]), 2)
    end
  end
end

-- a fixture case's result: right shape, values within tolerance
local function check(got, c)
  if #c.shape == 0 then   -- a reduction over every axis gives a Lua number
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
  for _, c in ipairs(math_cases) do
    if c.fn == fn then out[#out + 1] = c end
  end
  assert(#out > 0, "no fixture for " .. fn)
  return out
end

-- the float32 nearest to a Lua number (Lua's own conversion, not lkeras's)
local function f32(x) return (string.unpack("<f", string.pack("<f", x))) end

local function slurp(path)
  local f = assert(io.open(path, "rb"))
  local s = f:read("a")
  f:close()
  return s
end

-- the "file:line" an error message starts with, or nil
local function where(fn)
  local ok, err = pcall(fn)
  assert.is_false(ok)
  return err:match("^([^\n]-):%d+: ")
end
local SPEC = debug.getinfo(1, "S").short_src

local function spit(path, s)
  local f = assert(io.open(path, "wb"))
  f:write(s)
  f:close()
end

-- a .npy file (format version 1.0) written byte by byte from the NumPy spec
local function npy_bytes(descr, shape_text, payload)
  local dict = string.format("{'descr': '%s', 'fortran_order': False, 'shape': %s, }", descr, shape_text)
  local pad = (64 - (10 + #dict + 1) % 64) % 64
  local header = dict .. string.rep(" ", pad) .. "\n"
  return "\x93NUMPY\1\0" .. string.pack("<I2", #header) .. header .. payload
end

describe("keras.tensor", function()
  it("builds a matrix from nested tables", function()
    local t = T{{1, 2, 3}, {4, 5, 6}}
    assert.same({2, 3}, t.shape)
    assert.same({{1, 2, 3}, {4, 5, 6}}, t:totable())
  end)

  it("builds a 3-D tensor from three levels of tables", function()
    local t = T{{{1, 2}, {3, 4}}, {{5, 6}, {7, 8}}, {{9, 10}, {11, 12}}}
    assert.same({3, 2, 2}, t.shape)
    assert.equal(11, t:get(3, 2, 1))
  end)

  it("makes a number a 0-d tensor", function()
    local t = T(2.5)
    assert.same({}, t.shape)
    assert.equal(0, t.ndim)
    assert.equal(2.5, t:totable())
  end)

  it("stores float32: 0.1 becomes the nearest float32", function()
    assert.equal(f32(0.1), T{0.1}:get(1))
    assert.are_not.equal(0.1, T{0.1}:get(1))
  end)

  it("reads booleans as 1 and 0", function()
    assert.same({1, 0}, T{true, false}:totable())
  end)

  it("gives shape (0,) for an empty table and (1, 0) for a table holding one", function()
    assert.same({0}, T{}.shape)
    assert.same({1, 0}, T{{}}.shape)
  end)

  it("copies a tensor into new storage", function()
    local a = T{1, 2}
    local b = T(a)
    b:set(1, 9)
    assert.same({1, 2}, a:totable())
    assert.same({9, 2}, b:totable())
  end)

  it("rejects a ragged nested table", function()
    assert.error_matches(function() T{{1, 2}, {3}} end,
      "tensor: ragged nested table (expected 2 items at depth 2, got 1)", 1, true)
  end)

  it("rejects a number where a row was expected", function()
    assert.error_matches(function() T{{1, 2}, 3} end,
      "tensor: ragged nested table (a number where a table was expected)", 1, true)
  end)

  it("rejects non-numbers inside the table", function()
    assert.error_matches(function() T{1, "a"} end, "tensor: expected numbers, got string", 1, true)
  end)

  it("rejects nesting deeper than 8 levels, even a table that contains itself", function()
    assert.error_matches(function() T{{{{{{{{{1}}}}}}}}} end, "tensor: nesting deeper than 8", 1, true)
    local loop = {}
    loop[1] = loop
    assert.error_matches(function() T(loop) end, "tensor: nesting deeper than 8", 1, true)
  end)

  it("names the caller's line in its errors, not a line of the library", function()
    assert.equal(SPEC, where(function() local t = T{{1, 2}, {3}} return t end))
    assert.equal(SPEC, where(function() local t = T.zeros{2, 3} + T.zeros{4} return t end))
    assert.equal(SPEC, where(function() local t = T.zeros{2, 3}:reshape{4} return t end))
    assert.equal(SPEC, where(function() local t = T.zeros{2, 3}:sum(5) return t end))
  end)

  it("rejects what is not a table, a number or a tensor", function()
    assert.error_matches(function() T("x") end,
      "keras.tensor: expected a table, a number or a tensor, got string", 1, true)
    assert.error_matches(function() T(nil) end,
      "keras.tensor: expected a table, a number or a tensor, got nil", 1, true)
  end)
end)

describe("keras.tensor.zeros", function()
  it("makes a tensor of the given shape filled with 0", function()
    local t = T.zeros{2, 3}
    assert.same({2, 3}, t.shape)
    assert.same({{0, 0, 0}, {0, 0, 0}}, t:totable())
  end)

  it("takes a single size for a vector", function()
    assert.same({4}, T.zeros(4).shape)
  end)

  it("accepts sizes written as floats with integer values", function()
    assert.same({2, 3}, T.zeros{2.0, 3e0}.shape)
  end)

  it("allows a dimension of size 0", function()
    assert.same({0, 3}, T.zeros{0, 3}.shape)
    assert.equal(0, T.zeros{0, 3}:size())
  end)

  it("rejects a negative size", function()
    assert.error_matches(function() T.zeros{2, -1} end, "zeros: shape[2] must be an integer >= 0, got -1", 1, true)
  end)

  it("rejects a size that is not an integer", function()
    assert.error_matches(function() T.zeros{1.5} end, "zeros: shape[1] must be an integer >= 0, got 1.5", 1, true)
  end)

  it("rejects a shape that is not a table", function()
    assert.error_matches(function() T.zeros("2x3") end, "zeros: shape must be a table of sizes, got string", 1, true)
  end)

  it("refuses a tensor bigger than the machine's memory with a clean error", function()
    -- 1e6 x 1e6 floats are 4e12 bytes
    assert.error_matches(function() T.zeros{1e6, 1e6} end,
      "tensor: shape (1000000, 1000000) needs 4000000000000 bytes, more than this machine's memory", 1, true)
  end)

  it("refuses a shape whose byte count overflows", function()
    assert.error_matches(function() T.zeros{1 << 40, 1 << 40} end,
      "tensor: shape (1099511627776, 1099511627776) is too large", 1, true)
  end)
end)

describe("keras.tensor.ones", function()
  it("makes a tensor filled with 1", function()
    assert.same({{1, 1}, {1, 1}, {1, 1}}, T.ones{3, 2}:totable())
  end)

  it("rejects a negative size", function()
    assert.error_matches(function() T.ones{-3} end, "ones: shape[1] must be an integer >= 0, got -3", 1, true)
  end)
end)

describe("keras.tensor.full", function()
  it("fills the shape with the value", function()
    assert.same({{7.5, 7.5, 7.5}}, T.full({1, 3}, 7.5):totable())
  end)

  it("rejects a value that is not a number", function()
    assert.error_matches(function() T.full({2}, "x") end, "full: value must be a number, got string", 1, true)
  end)
end)

describe("keras.tensor.arange", function()
  it("counts from 0 to n - 1", function()
    assert.same({0, 1, 2, 3, 4}, T.arange(5):totable())
  end)

  it("counts from a to b - 1", function()
    assert.same({2, 3, 4}, T.arange(2, 5):totable())
  end)

  it("takes a fractional step", function()
    assert.same({0, 0.25, 0.5, 0.75}, T.arange(0, 1, 0.25):totable())
  end)

  it("takes a negative step", function()
    assert.same({5, 3, 1}, T.arange(5, 0, -2):totable())
  end)

  it("gives an empty vector for an empty range", function()
    assert.same({0}, T.arange(3, 3).shape)
  end)

  it("rejects a step of 0", function()
    assert.error_matches(function() T.arange(0, 1, 0) end, "arange: step must not be 0", 1, true)
  end)
end)

describe("keras.tensor.load", function()
  local path
  before_each(function() path = os.tmpname() end)
  after_each(function() os.remove(path) end)

  it("reads a little-endian float32 file written from the NumPy format spec", function()
    spit(path, npy_bytes("<f4", "(2, 3)", string.pack("<ffffff", 1, -2, 0.5, 3, 4.25, -6)))
    local t = T.load(path)
    assert.same({2, 3}, t.shape)
    assert.same({{1, -2, 0.5}, {3, 4.25, -6}}, t:totable())
  end)

  it("converts float64 data to float32", function()
    spit(path, npy_bytes("<f8", "(3,)", string.pack("<ddd", 0.1, -2.5, 1e10)))
    assert.same({f32(0.1), -2.5, f32(1e10)}, T.load(path):totable())
  end)

  it("reads int32 data", function()
    spit(path, npy_bytes("<i4", "(2, 2)", string.pack("<i4i4i4i4", 1, -2, 300, 0)))
    assert.same({{1, -2}, {300, 0}}, T.load(path):totable())
  end)

  it("names the file it cannot open", function()
    assert.error_matches(function() T.load("/nonexistent/x.npy") end,
      "load: '/nonexistent/x.npy': cannot open (No such file or directory)", 1, true)
  end)

  it("rejects a file that is not .npy", function()
    spit(path, "hello, world\n")
    assert.error_matches(function() T.load(path) end, "load: '" .. path .. "' is not a .npy file (bad magic)", 1, true)
  end)
end)

describe("keras.Tensor:save", function()
  local path
  before_each(function() path = os.tmpname() end)
  after_each(function() os.remove(path) end)

  it("writes a NumPy 1.0 file: magic, '<f4' C-order header, 64-byte aligned, little-endian data", function()
    T{{1, 2}, {3, 4}, {5, 6.5}}:save(path)
    local s = slurp(path)
    assert.equal("\x93NUMPY\1\0", s:sub(1, 8))
    local hlen = string.unpack("<I2", s, 9)
    local header = s:sub(11, 10 + hlen)
    assert.truthy(header:find("'descr': '<f4'", 1, true))
    assert.truthy(header:find("'fortran_order': False", 1, true))
    assert.truthy(header:find("'shape': (3, 2)", 1, true))
    assert.equal("\n", header:sub(-1))
    assert.equal(0, (10 + hlen) % 64)
    local v = {string.unpack("<ffffff", s, 11 + hlen)}
    assert.equal(#s + 1, table.remove(v))
    assert.same({1, 2, 3, 4, 5, 6.5}, v)
  end)

  it("round-trips through keras.tensor.load", function()
    local t = T{{0.1, -2}, {1e-30, 3e38}, {-0.0, 7}}
    t:save(path)
    local u = T.load(path)
    assert.same(t.shape, u.shape)
    assert.same(t:totable(), u:totable())
  end)

  it("round-trips a vector and a 0-d tensor", function()
    T{1, 2, 3}:save(path)
    assert.truthy(slurp(path):find("'shape': (3,)", 1, true))
    assert.same({1, 2, 3}, T.load(path):totable())
    T(4.5):save(path)
    assert.truthy(slurp(path):find("'shape': ()", 1, true))
    local u = T.load(path)
    assert.same({}, u.shape)
    assert.equal(4.5, u:totable())
  end)

  it("names the path it cannot write", function()
    assert.error_matches(function() T{1}:save("/nonexistent/dir/x.npy") end, "save: '/nonexistent/dir/x.npy'", 1, true)
  end)
end)

describe("keras.tensor.from_csv", function()
  local path
  before_each(function() path = os.tmpname() end)
  after_each(function() os.remove(path) end)

  it("reads rows of comma-separated numbers", function()
    spit(path, "1,2.5\n-3,4e2\n")
    local t = T.from_csv(path)
    assert.same({2, 2}, t.shape)
    assert.same({{1, 2.5}, {-3, 400}}, t:totable())
  end)

  it("skips a header line when asked", function()
    spit(path, "a,b,c\n1,2,3\n")
    assert.same({{1, 2, 3}}, T.from_csv(path, {skip_header = true}):totable())
  end)

  it("takes another delimiter", function()
    spit(path, "1;2\n3;4\n")
    assert.same({{1, 2}, {3, 4}}, T.from_csv(path, {delimiter = ";"}):totable())
  end)

  it("names the line and column of a field that is not a number", function()
    spit(path, "a,b\n1,2\n")
    assert.error_matches(function() T.from_csv(path) end,
      "CSV '" .. path .. "': line 1, column 1: expected a number, got 'a'", 1, true)
  end)

  it("names the file it cannot open", function()
    assert.error_matches(function() T.from_csv("/nonexistent/x.csv") end,
      "CSV '/nonexistent/x.csv': cannot open (No such file or directory)", 1, true)
  end)
end)

describe("keras.random.seed", function()
  it("makes keras.random.random reproducible", function()
    keras.random.seed(42)
    local a = keras.random.random{4, 5}:totable()
    keras.random.seed(42)
    assert.same(a, keras.random.random{4, 5}:totable())
  end)

  it("makes normal, uniform and randint reproducible, in sequence", function()
    local function draw()
      return {keras.random.normal({3, 3}, 1, 2):totable(), keras.random.uniform({6}, -1, 1):totable(),
              keras.random.randint(100, {10}):totable()}
    end
    keras.random.seed(7)
    local a = draw()
    keras.random.seed(7)
    assert.same(a, draw())
  end)

  it("gives different numbers for different seeds", function()
    keras.random.seed(1)
    local a = keras.random.random{8}:totable()
    keras.random.seed(2)
    assert.are_not.same(a, keras.random.random{8}:totable())
  end)
end)

describe("keras.random.random", function()
  it("draws uniformly from [0, 1)", function()
    keras.random.seed(3)
    local v = flat(keras.random.random{1000, 100}:totable())
    local sum, lo, hi = 0, math.huge, -math.huge
    for _, x in ipairs(v) do
      sum = sum + x
      lo, hi = math.min(lo, x), math.max(hi, x)
    end
    assert.equal(100000, #v)
    assert.is_true(lo >= 0 and hi < 1)
    -- the mean of 1e5 uniforms has standard deviation 0.0009: allow 0.01
    assert.is_true(math.abs(sum / #v - 0.5) < 0.01)
  end)

  it("rejects a negative size", function()
    assert.error_matches(function() keras.random.random{-1} end,
      "keras.random.random: shape[1] must be an integer >= 0, got -1", 1, true)
  end)
end)

describe("keras.random.normal", function()
  it("draws with the given mean and standard deviation", function()
    keras.random.seed(4)
    local v = flat(keras.random.normal({100000}, 5, 2):totable())
    local s, s2 = 0, 0
    for _, x in ipairs(v) do s = s + x end
    local mean = s / #v
    for _, x in ipairs(v) do s2 = s2 + (x - mean) ^ 2 end
    -- standard errors: 0.0063 for the mean, 0.0045 for the std; allow 0.05
    assert.is_true(math.abs(mean - 5) < 0.05)
    assert.is_true(math.abs(math.sqrt(s2 / #v) - 2) < 0.05)
  end)
end)

describe("keras.random.uniform", function()
  it("draws from [lo, hi)", function()
    keras.random.seed(5)
    local v = flat(keras.random.uniform({10000}, -2, -1):totable())
    for _, x in ipairs(v) do assert.is_true(x >= -2 and x < -1) end
  end)
end)

describe("keras.random.randint", function()
  it("draws the integers 0..n-1 with randint(n, shape)", function()
    keras.random.seed(6)
    local t = keras.random.randint(10, {1000, 1})
    assert.same({1000, 1}, t.shape)
    local seen = {}
    for _, x in ipairs(flat(t:totable())) do
      assert.equal(math.floor(x), x)
      assert.is_true(x >= 0 and x <= 9)
      seen[x] = true
    end
    for k = 0, 9 do assert.is_true(seen[k], "never drew " .. k) end
  end)

  it("draws lo..hi-1 with randint(lo, hi, shape)", function()
    keras.random.seed(8)
    for _, x in ipairs(flat(keras.random.randint(3, 6, {200}):totable())) do
      assert.is_true(x == 3 or x == 4 or x == 5)
    end
  end)

  it("rejects an empty range", function()
    assert.error_matches(function() keras.random.randint(0, {2}) end,
      "keras.random.randint: empty range [0, 0)", 1, true)
    assert.error_matches(function() keras.random.randint(5, 2, {2}) end,
      "keras.random.randint: empty range [5, 2)", 1, true)
  end)

  it("rejects bounds that are not integers", function()
    assert.error_matches(function() keras.random.randint(2.5, {2}) end,
      "keras.random.randint: bounds must be integers", 1, true)
  end)
end)

describe("keras.Tensor.shape", function()
  it("is a sequence of sizes", function()
    assert.same({2, 3, 4}, T.zeros{2, 3, 4}.shape)
  end)

  it("is a fresh table each time", function()
    local t = T.zeros{2, 3}
    t.shape[1] = 99
    assert.same({2, 3}, t.shape)
  end)
end)

describe("keras.Tensor:size", function()
  it("counts the elements", function()
    assert.equal(24, T.zeros{2, 3, 4}:size())
  end)

  it("gives one dimension's size for a 1-based axis", function()
    assert.equal(3, T.zeros{2, 3, 4}:size(2))
  end)
end)

describe("keras.Tensor.ndim", function()
  it("is the number of dimensions", function()
    assert.equal(3, T.zeros{2, 3, 4}.ndim)
    assert.equal(1, T{1, 2}.ndim)
    assert.equal(0, T(1).ndim)
  end)
end)

describe("keras.Tensor:get", function()
  local t = T{{1, 2, 3}, {4, 5, 6}}

  it("reads an element with 1-based indices", function()
    assert.equal(1, t:get(1, 1))
    assert.equal(6, t:get(2, 3))
    assert.equal(4, t:get(2, 1))
  end)

  it("rejects an index out of range", function()
    assert.error_matches(function() t:get(3, 1) end, "index 3 is out of range for axis 1 of size 2", 1, true)
    assert.error_matches(function() t:get(1, 0) end, "index 0 is out of range for axis 2 of size 3", 1, true)
  end)

  it("rejects the wrong number of indices", function()
    assert.error_matches(function() t:get(1) end, "get/set: a tensor of rank 2 needs 2 indices, got 1", 1, true)
  end)
end)

describe("keras.Tensor:set", function()
  it("writes an element with 1-based indices", function()
    local t = T.zeros{2, 3}
    t:set(2, 3, 7)
    assert.same({{0, 0, 0}, {0, 0, 7}}, t:totable())
  end)

  it("returns the tensor", function()
    local t = T.zeros{2}
    assert.equal(t, t:set(1, 1))
  end)

  it("rejects an index out of range", function()
    assert.error_matches(function() T.zeros{2, 3}:set(1, 4, 0) end,
      "index 4 is out of range for axis 2 of size 3", 1, true)
  end)

  it("rejects the wrong number of indices", function()
    assert.error_matches(function() T.zeros{2, 3}:set(1, 1, 1, 0) end,
      "get/set: a tensor of rank 2 needs 2 indices, got 3", 1, true)
  end)
end)

describe("keras.Tensor row view t[i]", function()
  it("is row i, 1-based", function()
    local t = T{{1, 2}, {3, 4}, {5, 6}}
    assert.same({3, 4}, t[2]:totable())
    assert.same({2}, t[2].shape)
  end)

  it("counts negative indices from the end", function()
    assert.same({5, 6}, T{{1, 2}, {3, 4}, {5, 6}}[-1]:totable())
  end)

  it("shares storage: setting through the view changes the parent", function()
    local t = T{{1, 2}, {3, 4}}
    local row = t[2]
    row:set(1, 30)
    assert.same({{1, 2}, {30, 4}}, t:totable())
  end)

  it("gives a 0-d tensor for an element of a vector", function()
    local x = T{5, 6, 7}[2]
    assert.equal(0, x.ndim)
    assert.equal(6, x:totable())
  end)

  it("assigns a row from a table or a number", function()
    local t = T.zeros{2, 2}
    t[1] = {7, 8}
    t[2] = 5
    assert.same({{7, 8}, {5, 5}}, t:totable())
  end)

  it("rejects a row assignment of the wrong length", function()
    local t = T.zeros{2, 2}
    assert.error_matches(function() t[1] = {1, 2, 3} end, "row assignment: expected 2 values, got 3", 1, true)
  end)

  it("rejects an index out of range", function()
    local t = T.zeros{3, 2}
    assert.error_matches(function() return t[4] end, "index 4 is out of range for 3 rows", 1, true)
    assert.error_matches(function() return t[0] end, "index 0 is out of range for 3 rows", 1, true)
  end)

  it("rejects an index that is not an integer", function()
    local t = T.zeros{3, 2}
    assert.error_matches(function() return t[1.5] end, "tensor index must be an integer", 1, true)
  end)
end)

describe("keras.Tensor:slice", function()
  local t = T{{1, 2}, {3, 4}, {5, 6}, {7, 8}}

  it("takes rows first..last, 1-based and inclusive", function()
    local s = t:slice(2, 3)
    assert.same({2, 2}, s.shape)
    assert.same({{3, 4}, {5, 6}}, s:totable())
  end)

  it("runs to the last row without a second index", function()
    assert.same({{5, 6}, {7, 8}}, t:slice(3):totable())
  end)

  it("counts negative indices from the end", function()
    assert.same({{5, 6}, {7, 8}}, t:slice(-2, -1):totable())
  end)

  it("shares storage with the parent", function()
    local u = T{{1, 2}, {3, 4}, {5, 6}}
    u:slice(2, 3):set(1, 1, 30)
    assert.equal(30, u:get(2, 1))
  end)

  it("rejects rows out of range", function()
    assert.error_matches(function() t:slice(0, 2) end, "slice: rows 0..2 out of range for 4 rows", 1, true)
    assert.error_matches(function() t:slice(2, 5) end, "slice: rows 2..5 out of range for 4 rows", 1, true)
  end)
end)

describe("keras.Tensor:totable", function()
  it("gives nested Lua tables of numbers", function()
    local v = T{{1.5, 2}, {3, 4}}:totable()
    assert.same({{1.5, 2}, {3, 4}}, v)
    assert.equal("number", type(v[1][1]))
  end)

  it("gives a number for a 0-d tensor", function()
    assert.equal(3, T(3):totable())
  end)
end)

describe("keras.Tensor:reshape", function()
  local t = T{{1, 2, 3}, {4, 5, 6}}

  it("keeps the elements in row-major order", function()
    assert.same({{1, 2}, {3, 4}, {5, 6}}, t:reshape{3, 2}:totable())
  end)

  it("infers one -1 dimension", function()
    assert.same({3, 2}, t:reshape{-1, 2}.shape)
    assert.same({6}, t:reshape{-1}.shape)
    assert.same({1, 2, 3}, t:reshape{1, -1, 3}.shape)
  end)

  it("takes the sizes as separate arguments too", function()
    assert.same({6, 1}, t:reshape(6, 1).shape)
  end)

  it("shares storage with the original", function()
    local u = T{{1, 2}, {3, 4}}
    u:reshape{4}:set(4, 40)
    assert.equal(40, u:get(2, 2))
  end)

  it("rejects a shape with another number of elements", function()
    assert.error_matches(function() t:reshape{4} end, "reshape: cannot reshape (2, 3) (6 elements) to (4,)", 1, true)
  end)

  it("rejects a -1 that cannot be inferred", function()
    assert.error_matches(function() t:reshape{4, -1} end,
      "reshape: cannot reshape (2, 3) into a shape with -1", 1, true)
  end)

  it("rejects two -1", function()
    assert.error_matches(function() t:reshape{-1, -1} end,
      "reshape: dimension 2 must be >= 0 (or one -1), got -1", 1, true)
  end)
end)

describe("keras.Tensor:transpose", function()
  it("swaps rows and columns of a matrix", function()
    assert.same({{1, 4}, {2, 5}, {3, 6}}, T{{1, 2, 3}, {4, 5, 6}}:transpose():totable())
  end)

  for _, c in ipairs(cases("transpose")) do
    it("matches numpy: " .. c.name, function() check(T(c.x):transpose(), c) end)
  end

  for _, c in ipairs(cases("permute_dimensions")) do
    it("permutes by a given order: " .. c.name, function() check(T(c.x):transpose(c.args[1]), c) end)
  end
end)

describe("tostring(keras.Tensor)", function()
  it("prints integers like numpy", function()
    assert.equal("[[1. 2.]\n [3. 4.]]", tostring(T{{1, 2}, {3, 4}}))
  end)

  it("pads fractions on the right", function()
    assert.equal("[0.5  0.25]", tostring(T{0.5, 0.25}))
  end)

  it("aligns negative numbers", function()
    assert.equal("[-1.   2.5]", tostring(T{-1, 2.5}))
    assert.equal("[[-1.5  2. ]\n [ 3.  -4. ]]", tostring(T{{-1.5, 2}, {3, -4}}))
  end)

  it("switches to scientific notation for a wide range of magnitudes", function()
    assert.equal("[1.e-05 1.e+03]", tostring(T{1e-5, 1e3}))
  end)

  it("prints a 0-d tensor like a numpy float32 scalar", function()
    assert.equal("18.0", tostring(T(18)))
    assert.equal("1e-05", tostring(T(1e-5)))
  end)

  it("is what print writes", function()
    local t = T{{1, 2}, {3, 4}}
    assert.equal(tostring(t), string.format("%s", t))
  end)

  for _, c in ipairs(print_cases.arrays) do
    it("matches numpy 1.24 on " .. c.name, function()
      local t = T(c.values):reshape(c.shape)
      assert.equal(c.expected, tostring(t))
    end)
  end

  it("matches numpy 1.24 on float32 scalars", function()
    for _, c in ipairs(print_cases.scalars) do
      assert.equal(c.expected, tostring(T(c.value)), "value " .. tostring(c.value))
    end
  end)

  it("says so for a freed tensor", function()
    local t = T{1}
    t:free()
    assert.equal("keras.Tensor (freed)", tostring(t))
  end)
end)

-- ---- math ----

describe("keras.Tensor + (add)", function()
  it("adds elementwise", function()
    assert.same({{11, 22}, {33, 44}}, (T{{1, 2}, {3, 4}} + T{{10, 20}, {30, 40}}):totable())
  end)

  it("broadcasts a number, a row and a column", function()
    local t = T{{1, 2, 3}, {4, 5, 6}}
    assert.same({{2, 3, 4}, {5, 6, 7}}, (t + 1):totable())
    assert.same({{11, 22, 33}, {14, 25, 36}}, (t + T{10, 20, 30}):totable())
    assert.same({{101, 102, 103}, {204, 205, 206}}, (t + T{{100}, {200}}):totable())
  end)

  it("broadcasts (3, 1) with (1, 4) to (3, 4)", function()
    local r = T{{0}, {10}, {20}} + T{{1, 2, 3, 4}}
    assert.same({{1, 2, 3, 4}, {11, 12, 13, 14}, {21, 22, 23, 24}}, r:totable())
  end)

  it("takes a plain table as the other operand", function()
    assert.same({{2, 4}, {4, 6}}, (T{{1, 2}, {3, 4}} + {1, 2}):totable())
  end)

  for _, c in ipairs(cases("add")) do
    it("matches numpy: " .. c.name, function() check(arg(c.x) + arg(c.y), c) end)
  end

  it("rejects shapes that do not broadcast", function()
    assert.error_matches(function() return T.zeros{2, 3} + T.zeros{4} end,
      "add: cannot broadcast shapes (2, 3) and (4,)", 1, true)
  end)

  it("rejects an operand that is not a tensor, a number or a table", function()
    assert.error_matches(function() return T.zeros{2} + "x" end,
      "add: input 2 must be a tensor, a number or a table, got string", 1, true)
  end)
end)

describe("keras.Tensor - (sub)", function()
  it("subtracts elementwise, with a number on either side", function()
    local t = T{{1, 2}, {3, 4}}
    assert.same({{0, 0}, {0, 0}}, (t - t):totable())
    assert.same({{9, 8}, {7, 6}}, (10 - t):totable())
    assert.same({{-1, 0}, {1, 2}}, (t - 2):totable())
  end)

  for _, c in ipairs(cases("sub")) do
    it("matches numpy: " .. c.name, function() check(arg(c.x) - arg(c.y), c) end)
  end

  it("rejects shapes that do not broadcast", function()
    assert.error_matches(function() return T.zeros{2, 3} - T.zeros{2} end,
      "sub: cannot broadcast shapes (2, 3) and (2,)", 1, true)
  end)
end)

describe("keras.Tensor * (mul)", function()
  it("multiplies elementwise, not as matrices", function()
    assert.same({{5, 12}, {21, 32}}, (T{{1, 2}, {3, 4}} * T{{5, 6}, {7, 8}}):totable())
  end)

  for _, c in ipairs(cases("mul")) do
    it("matches numpy: " .. c.name, function() check(arg(c.x) * arg(c.y), c) end)
  end
end)

describe("keras.Tensor / (div)", function()
  it("divides elementwise", function()
    assert.same({{0.5, 1}, {1.5, 2}}, (T{{1, 2}, {3, 4}} / 2):totable())
    assert.same({0.5, 0.25}, (1 / T{2, 4}):totable())
  end)

  it("gives inf and nan for division by zero, as IEEE floats do", function()
    local v = (T{1, -1, 0} / 0):totable()
    assert.equal(math.huge, v[1])
    assert.equal(-math.huge, v[2])
    assert.is_true(v[3] ~= v[3])
  end)

  for _, c in ipairs(cases("div")) do
    it("matches numpy: " .. c.name, function() check(arg(c.x) / arg(c.y), c) end)
  end
end)

describe("keras.Tensor unary -", function()
  it("negates every element", function()
    assert.same({{-1, 2}, {-3, 4}}, (-T{{1, -2}, {3, -4}}):totable())
  end)

  for _, c in ipairs(cases("neg")) do
    it("matches numpy: " .. c.name, function() check(-T(c.x), c) end)
  end
end)

describe("keras.Tensor:matmul", function()
  it("multiplies matrices", function()
    -- [[1 2 3] [4 5 6]] x [[1 0] [0 1] [1 1]] = [[4 5] [10 11]]
    local r = T{{1, 2, 3}, {4, 5, 6}}:matmul(T{{1, 0}, {0, 1}, {1, 1}})
    assert.same({{4, 5}, {10, 11}}, r:totable())
  end)

  it("takes a plain table", function()
    assert.same({{5}, {11}}, T{{1, 2}, {3, 4}}:matmul{{1}, {2}}:totable())
  end)

  it("treats a vector on the right as a column and drops that axis, like numpy", function()
    assert.same({5, 11}, T{{1, 2}, {3, 4}}:matmul(T{1, 2}):totable())
  end)

  it("treats a vector on the left as a row and drops that axis, like numpy", function()
    assert.same({9, 12, 15}, T{1, 2}:matmul(T{{1, 2, 3}, {4, 5, 6}}):totable())
  end)

  it("gives the dot product of two vectors as a 0-d tensor", function()
    local r = T{1, 2, 3}:matmul(T{4, 5, 6})
    assert.same({}, r.shape)
    assert.equal(32, r:totable())
  end)

  for _, c in ipairs(cases("dot")) do
    it("matches numpy: " .. c.name, function() check(T(c.x):matmul(T(c.y)), c) end)
  end

  it("rejects misaligned shapes", function()
    assert.error_matches(function() T.zeros{2, 3}:matmul(T.zeros{2, 3}) end,
      "matmul: shapes (2, 3) and (2, 3) do not align", 1, true)
  end)
end)

-- reductions: t:sum(axis, keepdims) and friends, numpy axis numbers
local by_hand = {}

function by_hand.sum()
  local t = T{{1, 2, 3}, {4, 5, 6}}

  it("sums everything to a Lua number without an axis", function()
    local s = t:sum()
    assert.equal("number", type(s))
    assert.equal(21, s)
  end)

  it("sums columns with axis 0 and rows with axis 1 or -1", function()
    assert.same({5, 7, 9}, t:sum(0):totable())
    assert.same({6, 15}, t:sum(1):totable())
    assert.same({6, 15}, t:sum(-1):totable())
  end)

  it("keeps the reduced axis with keepdims", function()
    assert.same({{6}, {15}}, t:sum(1, true):totable())
    assert.same({{21}}, t:sum(nil, true):totable())
  end)

  it("rejects an axis that is not an integer", function()
    assert.error_matches(function() t:sum(0.5) end, "K.sum: axis must be an integer, got 0.5", 1, true)
  end)
end

function by_hand.mean()
  it("averages along an axis", function()
    assert.same({2.5, 3.5, 4.5}, T{{1, 2, 3}, {4, 5, 6}}:mean(0):totable())
  end)
end

function by_hand.max()
  it("takes the largest along an axis", function()
    assert.same({3, 6}, T{{1, 3, 2}, {6, 5, 4}}:max(1):totable())
  end)
end

function by_hand.min()
  it("takes the smallest of everything without an axis", function()
    assert.equal(-4, T{{1, 3, 2}, {6, -4, 4}}:min())
  end)
end

for _, fn in ipairs{"sum", "mean", "max", "min"} do
  describe("keras.Tensor:" .. fn, function()
    by_hand[fn]()

    for _, c in ipairs(cases(fn)) do
      it("matches numpy: " .. c.name, function()
        local t = T(c.x)
        check(t[fn](t, c.args[1], c.args[2]), c)
      end)
    end

    it("rejects an axis out of range", function()
      local t = T.zeros{2, 2}
      assert.error_matches(function() t[fn](t, 2) end,
        "K." .. fn .. ": axis 2 is out of range for a tensor of rank 2", 1, true)
    end)
  end)
end

describe("keras.Tensor:argmax", function()
  it("gives 0-based positions along an axis", function()
    local t = T{{1, 9, 3}, {7, 5, 6}}
    assert.same({1, 0, 1}, t:argmax(0):totable())
    assert.same({1, 0}, t:argmax(1):totable())
  end)

  it("gives the position in the flattened tensor without an axis, like numpy", function()
    assert.equal(3, T{{1, 9, 3}, {12, 5, 6}}:argmax():totable())
  end)

  for _, c in ipairs(cases("argmax")) do
    it("matches numpy: " .. c.name, function() check(T(c.x):argmax(c.args[1]), c) end)
  end

  it("rejects an axis out of range", function()
    assert.error_matches(function() T.zeros{2, 2}:argmax(2) end,
      "argmax: axis 2 out of range for shape (2, 2)", 1, true)
  end)
end)

function by_hand.abs()
  it("drops the sign", function()
    assert.same({1, 0, 2.5}, T{-1, 0, 2.5}:abs():totable())
  end)
end

function by_hand.exp()
  it("gives exp(0) = 1 exactly", function()
    assert.same({1}, T{0}:exp():totable())
  end)
end

function by_hand.log()
  it("gives log(1) = 0 exactly and -inf for log(0)", function()
    assert.same({0, -math.huge}, T{1, 0}:log():totable())
  end)
end

function by_hand.sqrt()
  it("gives exact roots of perfect squares", function()
    assert.same({0, 2, 12}, T{0, 4, 144}:sqrt():totable())
  end)
end

for _, fn in ipairs{"abs", "exp", "log", "sqrt"} do
  describe("keras.Tensor:" .. fn, function()
    by_hand[fn]()

    for _, c in ipairs(cases(fn)) do
      it("matches numpy: " .. c.name, function()
        local t = T(c.x)
        check(t[fn](t), c)
      end)
    end
  end)
end

describe("keras.Tensor:eq", function()
  it("gives 1 where equal and 0 elsewhere", function()
    assert.same({{1, 0}, {0, 1}}, T{{1, 2}, {3, 4}}:eq(T{{1, 0}, {0, 4}}):totable())
  end)

  it("broadcasts a number", function()
    assert.same({0, 1, 0}, T{1, 2, 3}:eq(2):totable())
  end)

  for _, c in ipairs(cases("equal")) do
    it("matches numpy: " .. c.name, function() check(T(c.x):eq(arg(c.y)), c) end)
  end
end)

describe("keras.Tensor:gt", function()
  it("gives 1 where greater and 0 elsewhere, equal included", function()
    assert.same({0, 0, 1}, T{1, 2, 3}:gt(2):totable())
  end)

  for _, c in ipairs(cases("greater")) do
    it("matches numpy: " .. c.name, function() check(T(c.x):gt(arg(c.y)), c) end)
  end
end)

describe("keras.tensor.concat", function()
  it("stacks rows on axis 0 by default", function()
    assert.same({{1, 2}, {3, 4}, {5, 6}}, T.concat{T{{1, 2}}, T{{3, 4}, {5, 6}}}:totable())
  end)

  it("joins columns on axis 1", function()
    assert.same({{1, 2, 5}, {3, 4, 6}}, T.concat({T{{1, 2}, {3, 4}}, T{{5}, {6}}}, 1):totable())
  end)

  for _, c in ipairs(cases("concatenate")) do
    it("matches numpy: " .. c.name, function() check(T.concat({T(c.x), T(c.y)}, c.args[1]), c) end)
  end

  it("rejects shapes that differ off the axis", function()
    assert.error_matches(function() T.concat({T.zeros{2, 3}, T.zeros{2, 2}}, 0) end,
      "concatenate: shapes (2, 3) and (2, 2) do not match", 1, true)
  end)

  it("rejects an axis out of range", function()
    assert.error_matches(function() T.concat({T.zeros{2, 3}, T.zeros{2, 3}}, 2) end,
      "concat: axis 2 out of range for shape (2, 3)", 1, true)
  end)
end)

-- issue 11, item 1: a reduction of a concrete tensor over every axis is a Lua
-- number (numpy's scalars, Torch7's sums); with an axis or keepdims it is a
-- tensor; on symbolic tensors it stays a rank-0 node. Expected values are
-- float64 formulas written here.
describe("keras.Tensor reductions over every axis", function()
  local x = {{1.5, -2, 3}, {4, 0.25, -6}}
  local flatx = {1.5, -2, 3, 4, 0.25, -6}
  local function f64(fn)
    local n, s, p, hi, lo = #flatx, 0, 1, -math.huge, math.huge
    for _, v in ipairs(flatx) do s = s + v; p = p * v; hi = math.max(hi, v); lo = math.min(lo, v) end
    local m = s / n
    local ss = 0
    for _, v in ipairs(flatx) do ss = ss + (v - m) ^ 2 end
    return ({sum = s, mean = m, max = hi, min = lo, prod = p, var = ss / n, std = math.sqrt(ss / n)})[fn]
  end

  for _, fn in ipairs{"sum", "mean", "max", "min", "prod", "std", "var"} do
    it(fn .. "() is a Lua number equal to the float64 value", function()
      local t = T(x)
      local got = t[fn](t)
      assert.equal("number", type(got))
      local want = f64(fn)
      assert.is_true(math.abs(got - want) <= 1e-6 * math.abs(want) + 1e-7,
        string.format("%s: %.9g, expected %.9g", fn, got, want))
      local k = keras.backend[fn](t)
      assert.equal("number", type(k))
      assert.equal(got, k)
    end)

    it(fn .. "(axis) and " .. fn .. "(nil, true) stay tensors", function()
      local t = T(x)
      local a = t[fn](t, 1)
      assert.equal("userdata", type(a))
      assert.same({2}, a.shape)
      local kd = t[fn](t, nil, true)
      assert.same({1, 1}, kd.shape)
      assert.equal(t[fn](t), kd:item())
      assert.same({1, 3}, keras.backend[fn](t, 0, true).shape)
    end)

    it(fn .. " of a symbolic tensor stays a rank-0 node", function()
      local s = keras.backend[fn](keras.Input{shape = {3}})
      assert.is_true(keras.backend.is_keras_tensor(s))
      assert.same({}, s.shape)
    end)
  end

  it("lets differences be compared with numbers, as in numpy", function()
    local a, b = T{1, 2, 3}, T{1, 2, 3.0000001}
    assert.is_true((a - b):abs():max() < 1e-6)
    assert.is_true(T.zeros{2, 2}:max() == 0)
    assert.is_false(T.ones{2, 2}:max() == 0)
    assert.is_true(math.abs(T{0.25, 0.75}:sum() - 1) < 1e-7)
  end)

  it("gives K.any and K.all over every axis as numbers 1 or 0", function()
    local K = keras.backend
    assert.equal(1, K.any(T{{0, 0}, {0, 2}}))
    assert.equal(0, K.any(T.zeros{2, 2}))
    assert.equal(0, K.all(T{{1, 0}, {1, 1}}))
    assert.equal(1, K.all(T{{1, -1}, {3, 1}}))
  end)

  it("sums an empty tensor to 0 and multiplies it to 1", function()
    assert.equal(0, T.zeros{0, 3}:sum())
    assert.equal(1, T.zeros{0}:prod())
  end)
end)

describe("keras.Tensor:item", function()
  it("returns the number of any one-element tensor", function()
    assert.equal(7, T{7}:item())
    assert.equal(-2.5, T{{{-2.5}}}:item())
    assert.equal(3, T{{1, 2}, {3, 4}}:sum(nil, true):item() - 7)
  end)

  it("names the size of a tensor that is not one element", function()
    assert.error_matches(function() T{{1, 2}, {3, 4}}:item() end,
      "item: only a tensor of one element converts to a number, got 4 elements (shape (2, 2))", 1, true)
    assert.error_matches(function() T.zeros{0}:item() end,
      "item: only a tensor of one element converts to a number, got 0 elements (shape (0))", 1, true)
  end)
end)
