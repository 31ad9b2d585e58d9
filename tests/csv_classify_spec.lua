-- scripts/examples/csv_classify (build/csv_classify, built by make test): a
-- saved model predicts the rows of a CSV piped to it; its classes and
-- probabilities are the Lua API's predict.
local keras = require "keras"

local function run(cmd)
  local p = assert(io.popen(cmd .. " 2>&1"))
  local out = p:read("a")
  local ok, _, code = p:close()
  return out, ok, code
end

local function tmpdir()
  local p = io.popen("mktemp -d /tmp/lkeras-csv-XXXXXX")
  local d = p:read("l")
  p:close()
  return d
end

local function write(path, s)
  local f = assert(io.open(path, "w"))
  f:write(s)
  f:close()
end

describe("csv_classify", function()
  local dir, model, x

  setup(function()
    dir = tmpdir()
    keras.random.seed(4)
    x = keras.random.random{40, 3}
    -- the class is the largest of the three features
    local y = keras.utils.to_categorical(x:argmax(-1), 3)
    model = keras.Sequential{keras.layers.Dense{16, input_shape = {3}, activation = "relu"},
                             keras.layers.Dense{3, activation = "softmax"}}
    model:compile{optimizer = keras.optimizers.Adam{lr = 0.02}, loss = "categorical_crossentropy"}
    model:fit(x, y, {epochs = 60, batch_size = 8, verbose = 0})
    model:save(dir .. "/m.lkm")
  end)

  teardown(function() os.execute("rm -rf '" .. dir .. "'") end)

  local function csv(t, header)
    local lines = {header}
    for i = 1, t.shape[1] do
      local r = {}
      for k = 1, t.shape[2] do r[k] = string.format("%.9g", t:get(i, k)) end
      lines[#lines + 1] = table.concat(r, ",")
    end
    return table.concat(lines, "\n") .. "\n"
  end

  it("prints the class and the probabilities of every row", function()
    write(dir .. "/in.csv", csv(x, "a,b,c"))
    local out, ok = run(string.format("build/csv_classify %s/m.lkm --probs < %s/in.csv", dir, dir))
    assert(ok, out)
    local p = model:predict(x)
    local n = 0
    for line in out:gmatch("[^\n]+") do
      n = n + 1
      local cls, a, b, c = line:match("^(%d+),([^,]+),([^,]+),([^,]+)$")
      assert.truthy(cls, line)
      local best = 0
      for k = 1, 3 do if p:get(n, k) > p:get(n, best + 1) then best = k - 1 end end
      assert.equal(best, tonumber(cls), "row " .. n)
      for k, v in ipairs{a, b, c} do assert.near(p:get(n, k), tonumber(v), 1e-5) end
    end
    assert.equal(40, n)
    -- and the model learned the rule
    local plain = run(string.format("build/csv_classify %s/m.lkm < %s/in.csv", dir, dir))
    local right, i = 0, 0
    for line in plain:gmatch("[^\n]+") do
      i = i + 1
      local want = 0
      for k = 2, 3 do if x:get(i, k) > x:get(i, want + 1) then want = k - 1 end end
      if tonumber(line) == want then right = right + 1 end
    end
    assert.is_true(right >= 36, right .. " of 40 rows right")
  end)

  it("takes more rows than a block, and reports bad input by line", function()
    local big = keras.random.random{600, 3}
    write(dir .. "/big.csv", csv(big))
    local out, ok = run(string.format("build/csv_classify %s/m.lkm < %s/big.csv", dir, dir))
    assert(ok, out)
    local n = select(2, out:gsub("\n", ""))
    assert.equal(600, n)
    write(dir .. "/bad.csv", "1,2,3\n4,5\n")
    out, ok = run(string.format("build/csv_classify %s/m.lkm < %s/bad.csv", dir, dir))
    assert.falsy(ok)
    assert.truthy(out:find("line 2: expected 3 numbers separated by commas", 1, true), out)
    out, ok = run(string.format("build/csv_classify %s/missing.lkm < %s/bad.csv", dir, dir))
    assert.falsy(ok)
    assert.truthy(out:find("missing.lkm", 1, true), out)
  end)
end)
