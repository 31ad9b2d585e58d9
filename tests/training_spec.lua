-- Training numerics against references computed independently in float64
-- PyTorch / numpy by scripts/fixtures/train_fixtures.py (see its docstring):
-- forward outputs, Keras losses, and the weights after 3 train_on_batch
-- steps for every optimizer.
local keras = require "keras"
local L = keras.layers
local F = dofile("tests/fixtures/training.lua")

local TOL = 1e-5

local U_ = dofile("tests/lib/spec_util.lua")
local flat = U_.flat

local function shape_of(v)
  local s = {}
  while type(v) == "table" do s[#s + 1] = #v; v = v[1] end
  return s
end

-- every element of tensor `got` within TOL of the nested table `want`
local function assert_close(want, got, what, tol)
  tol = tol or TOL
  assert.same(shape_of(want), got.shape, what .. ": shape")
  local g, w = flat(got:totable()), flat(want)
  for i = 1, #w do
    if not (math.abs(g[i] - w[i]) <= tol) then
      error(string.format("%s: element %d is %.9g, expected %.9g (tolerance %g)", what, i, g[i], w[i], tol), 2)
    end
  end
end

-- |got - want| <= TOL * max(1, |want|)
local function assert_near(want, got, what)
  if not (math.abs(got - want) <= TOL * math.max(1, math.abs(want))) then
    error(string.format("%s is %.9g, expected %.9g", what, got, want), 2)
  end
end

local function initial_weights()
  local out = {}
  for i, w in ipairs(F.weights) do out[i] = keras.tensor(w) end
  return out
end

-- x (6, 3) -> Dense(4, relu) -> Dense(3, head), with the fixture's weights
local function model_with(head)
  local model = keras.Sequential{
    L.Dense{4, activation = "relu", input_dim = 3},
    L.Dense{3, activation = head},
  }
  model:set_weights(initial_weights())
  return model
end

local X = keras.tensor(F.x)

describe("keras.Model:predict on the PyTorch reference model", function()
  for _, case in ipairs(F.forward) do
    it("matches torch's forward pass with a " .. case.activation .. " output", function()
      local model = model_with(case.activation)
      assert_close(case.outputs, model:predict(X), case.activation .. " outputs")
    end)
  end
end)

describe("keras.Model:evaluate on the PyTorch reference model", function()
  for _, case in ipairs(F.forward) do
    it("gives torch's " .. case.loss .. " of the batch", function()
      local model = model_with(case.activation)
      model:compile{optimizer = "sgd", loss = case.loss}
      local y = keras.tensor(F.targets[case.loss])
      assert_near(case.loss_value, model:evaluate(X, y, {verbose = 0}), case.loss)
    end)
  end
end)

describe("keras.Model:test_on_batch on the PyTorch reference model", function()
  for _, case in ipairs(F.forward) do
    it("gives torch's " .. case.loss .. " without changing the weights", function()
      local model = model_with(case.activation)
      model:compile{optimizer = keras.optimizers.SGD{lr = 0.1}, loss = case.loss}
      local y = keras.tensor(F.targets[case.loss])
      assert_near(case.loss_value, model:test_on_batch(X, y), case.loss)
      local w = model:get_weights()
      for i, want in ipairs(F.weights) do assert_close(want, w[i], "weight " .. i, 0) end
    end)
  end
end)

-- optimizer cases grouped by class, in fixture order
local by_class, classes = {}, {}
for _, case in ipairs(F.optimizers) do
  if not by_class[case.optimizer] then
    by_class[case.optimizer] = {}
    classes[#classes + 1] = case.optimizer
  end
  table.insert(by_class[case.optimizer], case)
end

local function describe_args(args)
  local keys = {}
  for k in pairs(args) do keys[#keys + 1] = k end
  table.sort(keys)
  local parts = {}
  for _, k in ipairs(keys) do parts[#parts + 1] = k .. "=" .. tostring(args[k]) end
  return "{" .. table.concat(parts, ", ") .. "}"
end

for _, cls in ipairs(classes) do
  describe("keras.optimizers." .. cls .. " in train_on_batch", function()
    for _, case in ipairs(by_class[cls]) do
      it(string.format("%s with %s matches the reference weights after %d steps on %s",
          cls, describe_args(case.args), F.steps, case.loss), function()
        local model = model_with(case.head)
        model:compile{optimizer = keras.optimizers[cls](case.args), loss = case.loss}
        local y = keras.tensor(F.targets[case.loss])
        for step = 1, F.steps do
          local loss = model:train_on_batch(X, y)
          assert_near(case.losses[step], loss, string.format("the loss of step %d", step))
        end
        local w = model:get_weights()
        assert.equal(#case.weights, #w)
        for i, want in ipairs(case.weights) do
          assert_close(want, w[i], string.format("weight %d after %d steps", i, F.steps))
        end
      end)
    end
  end)
end
