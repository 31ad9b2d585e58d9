-- Layers and models written in Lua (lua/keras/custom.lua, API.md §10):
-- keras.layers.Layer:extend and keras.Model:extend, add_weight, add_loss,
-- masks, saving with custom_objects; model:add_loss, compile without loss,
-- fit/evaluate without targets, model.losses and model.updates. Expected
-- numbers are computed here in float64 from the layers' weights.
local keras = require "keras"
local L = keras.layers
local K = keras.backend
local None = keras.None

-- ---- helpers ----

local function near(want, got, tol, what)
  tol = tol or 1e-5
  if math.abs(got - want) > tol * math.max(1, math.abs(want)) or got ~= got then
    error(string.format("%s is %.9g, expected %.9g", what or "value", got, want), 2)
  end
end

local function near_table(want, got, tol, what)
  if type(want) == "table" then
    assert.equal(#want, #got, (what or "table") .. ": lengths differ")
    for i = 1, #want do near_table(want[i], got[i], tol, string.format("%s[%d]", what or "value", i)) end
  else
    near(want, got, tol, what)
  end
end

-- x (n, k) times w (k, m) plus b (m), in float64 from tables
local function affine(x, w, b)
  local out = {}
  for i = 1, #x do
    out[i] = {}
    for j = 1, #w[1] do
      local s = b and b[j] or 0
      for k = 1, #w do s = s + x[i][k] * w[k][j] end
      out[i][j] = s
    end
  end
  return out
end

local function mean_sq(a, b)   -- mean over every element of (a - b)^2
  local s, n = 0, 0
  for i = 1, #a do
    for j = 1, #a[i] do
      local d = a[i][j] - (b and b[i][j] or 0)
      s, n = s + d * d, n + 1
    end
  end
  return s / n
end

local function tmpdir()
  local p = io.popen("mktemp -d /tmp/lkeras-custom-XXXXXX")
  local d = p:read("l")
  p:close()
  return d
end
local DIR = tmpdir()
local function P(name) return DIR .. "/" .. name end
teardown(function() os.execute("rm -rf '" .. DIR .. "'") end)

-- Keras's guide layer ("Writing your own Keras layers"), with a bias; the
-- number of times its Lua call runs is counted
local calls = 0
local MyDense = L.Layer:extend("MyDense")
function MyDense:init(args)
  self.units = args[1] or args.units
  self.seen_args = args
end
function MyDense:build(input_shape)
  self.seen_shape = input_shape
  self.kernel = self:add_weight{name = "kernel", shape = {input_shape[2], self.units}, initializer = "glorot_uniform"}
  self.bias = self:add_weight{name = "bias", shape = {self.units}, initializer = "uniform"}
end
function MyDense:call(x)
  calls = calls + 1
  return K.dot(x, self.kernel) + self.bias
end
function MyDense:compute_output_shape(s) return {s[1], self.units} end
function MyDense:get_config() return {units = self.units} end

local function predict_by_hand(layer, x)
  local w = layer:get_weights()
  return affine(x:totable(), w[1]:totable(), w[2]:totable())
end

describe("keras.layers.Layer:extend", function()
  before_each(function() keras.random.seed(7) end)

  it("gives init the same table from both call forms, after the base class took the common options", function()
    local a = MyDense(4, {name = "a", input_shape = {3}, extra = "x"})
    local b = MyDense{4, name = "b", input_shape = {3}, extra = "x"}
    assert.same({4, extra = "x"}, a.seen_args)
    assert.same(a.seen_args, b.seen_args)
    assert.equal("a", a.name)
    assert.same({None, 3}, a.input_shape)
    assert.equal("MyDense", a.class_name)
    local c = MyDense(5)
    assert.same({5}, c.seen_args)
    assert.matches("^my_dense_%d+$", c.name)
    local d = MyDense(2, 3, {trainable = false})
    assert.same({2, 3}, d.seen_args)
    assert.is_false(d.trainable)
  end)

  it("builds with the input shape as Keras gives it, and computes x W + b", function()
    local layer = MyDense(3, {input_shape = {4}})
    local model = keras.Sequential{layer}
    assert.same({None, 4}, layer.seen_shape)
    assert.same({None, 3}, layer.output_shape)
    local x = keras.random.random{5, 4}
    near_table(predict_by_hand(layer, x), model:predict(x):totable(), 1e-5, "predict")
    assert.equal(2, #layer.trainable_weights)
    assert.equal(15, layer:count_params())
  end)

  it("runs its Lua call once, when the model is put together, not per batch", function()
    calls = 0
    local model = keras.Sequential{MyDense(8, {input_shape = {4}}), MyDense(2)}
    assert.equal(2, calls)
    model:compile{optimizer = "sgd", loss = "mse"}
    local x, y = keras.random.random{200, 4}, keras.random.random{200, 2}
    model:fit(x, y, {epochs = 3, batch_size = 4, verbose = 0})   -- 150 batches
    model:evaluate(x, y, {verbose = 0})
    model:predict(x)
    assert.equal(2, calls)
  end)

  it("trains as Keras does: one SGD step moves the weights by lr times the mse gradient", function()
    local layer = MyDense(2, {input_shape = {3}})
    local model = keras.Sequential{layer}
    model:compile{optimizer = keras.optimizers.SGD{lr = 0.1}, loss = "mse"}
    local x, y = keras.random.random{4, 3}, keras.random.random{4, 2}
    local w0 = layer:get_weights()
    local W, b = w0[1]:totable(), w0[2]:totable()
    local xt, yt = x:totable(), y:totable()
    local p = affine(xt, W, b)
    local loss = model:train_on_batch(x, y)
    near(mean_sq(p, yt), loss, 1e-5, "loss")
    -- d loss / d p = 2 (p - y) / (n * units)
    local n, u = #xt, 2
    local W1, b1 = layer:get_weights()[1]:totable(), layer:get_weights()[2]:totable()
    for j = 1, u do
      local gb = 0
      for i = 1, n do gb = gb + 2 * (p[i][j] - yt[i][j]) / (n * u) end
      near(b[j] - 0.1 * gb, b1[j], 1e-5, "bias")
      for k = 1, 3 do
        local gw = 0
        for i = 1, n do gw = gw + xt[i][k] * 2 * (p[i][j] - yt[i][j]) / (n * u) end
        near(W[k][j] - 0.1 * gw, W1[k][j], 1e-5, "kernel")
      end
    end
  end)

  it("shows its class name and parameters in summary, non-trainable weights apart", function()
    local Scale = L.Layer:extend("Scale")
    function Scale:build(s)
      self.w = self:add_weight{name = "w", shape = {s[2]}, initializer = "ones"}
      self.frozen = self:add_weight{name = "frozen", shape = {s[2]}, initializer = "zeros", trainable = false}
    end
    function Scale:call(x) return x * self.w + self.frozen end
    local layer = Scale{input_shape = {6}, name = "scale"}
    local model = keras.Sequential{layer}
    local lines = {}
    model:summary{print_fn = function(s) lines[#lines + 1] = s end}
    local text = table.concat(lines, "\n")
    assert.truthy(text:find("scale (Scale)                (None, 6)                 12", 1, true))
    assert.truthy(text:find("Trainable params: 6", 1, true))
    assert.truthy(text:find("Non-trainable params: 6", 1, true))
    assert.equal(1, #layer.trainable_weights)
    assert.equal(1, #layer.non_trainable_weights)
    -- training leaves the non-trainable weight alone
    model:compile{optimizer = "sgd", loss = "mse"}
    model:fit(keras.random.random{8, 6}, keras.random.random{8, 6}, {verbose = 0})
    assert.same({0, 0, 0, 0, 0, 0}, layer:get_weights()[2]:totable())
    assert.are_not.same({1, 1, 1, 1, 1, 1}, layer:get_weights()[1]:totable())
  end)

  it("stays as it is when built frozen (trainable = false)", function()
    local frozen = MyDense(2, {input_shape = {3}, trainable = false})
    local model = keras.Sequential{frozen, MyDense(1)}
    model:compile{optimizer = keras.optimizers.SGD{lr = 0.5}, loss = "mse"}
    local before = frozen:get_weights()[1]:totable()
    model:fit(keras.random.random{8, 3}, keras.random.random{8, 1}, {verbose = 0})
    assert.same(before, frozen:get_weights()[1]:totable())
    assert.equal(2, #model.trainable_weights)   -- the second layer's kernel and bias
  end)

  it("takes initial weights, and the weights option, like built-in layers", function()
    local W = keras.tensor{{1, 2}, {3, 4}, {5, 6}}
    local b = keras.tensor{0.5, -0.5}
    local layer = MyDense(2, {input_shape = {3}, weights = {W, b}})
    local model = keras.Sequential{layer}
    assert.same({{1 * 1 + 2 * 3 + 3 * 5 + 0.5, 1 * 2 + 2 * 4 + 3 * 6 - 0.5}},
      model:predict(keras.tensor{{1, 2, 3}}):totable())
  end)

  it("takes several inputs (call gets a list, build a list of shapes) and returns several outputs", function()
    local Pair = L.Layer:extend("Pair")
    function Pair:build(shapes)
      self.shapes = shapes
      self.w = self:add_weight{name = "w", shape = {shapes[2][2]}, initializer = "ones"}
    end
    function Pair:call(xs) return {xs[1] + xs[2] * self.w, xs[1] * xs[2]} end
    function Pair.compute_output_shape(_, shapes) return {shapes[1], shapes[1]} end
    local a, b = keras.Input{shape = {3}}, keras.Input{shape = {3}}
    local pair = Pair()
    local outs = pair{a, b}
    assert.same({{None, 3}, {None, 3}}, pair.shapes)
    assert.equal(2, #outs)
    local model = keras.Model{inputs = {a, b}, outputs = outs}
    local xa, xb = keras.tensor{{1, 2, 3}}, keras.tensor{{4, 5, 6}}
    pair:set_weights{keras.tensor{2, 2, 2}}
    local p = model:predict{xa, xb}
    assert.same({{9, 12, 15}}, p[1]:totable())
    assert.same({{4, 10, 18}}, p[2]:totable())
  end)

  it("gets the input mask in kwargs, and passes on what compute_mask returns", function()
    local seen
    local MaskedMean = L.Layer:extend("MaskedMean")
    function MaskedMean.call(_, x, kwargs)
      seen = kwargs
      local m = K.cast(kwargs.mask, "float32")                    -- (batch, steps)
      local s = K.sum(x * K.expand_dims(m, -1), 1)                -- (batch, dim)
      return s / K.expand_dims(K.sum(m, 1), -1)
    end
    function MaskedMean.compute_output_shape(_, s) return {s[1], s[3]} end
    function MaskedMean.compute_mask() return nil end
    local inp = keras.Input{shape = {4}}
    local e = L.Embedding{5, 2, mask_zero = true}
    local out = MaskedMean()(e(inp))
    assert.is_nil(out:meta().mask)
    assert.truthy(seen.mask)
    local model = keras.Model{inputs = inp, outputs = out}
    e:set_weights{keras.tensor{{0, 0}, {1, 10}, {2, 20}, {3, 30}, {4, 40}}}
    -- ids 0 are padding: the mean is over the other steps
    assert.same({{2, 20}, {4, 40}}, model:predict(keras.tensor{{0, 0, 1, 3}, {4, 4, 4, 0}}):totable())
  end)

  it("gets training in kwargs when the caller gives it", function()
    local got
    local T = L.Layer:extend("T")
    function T.call(_, x, kwargs) got = kwargs.training; return x * 2 end
    T()(keras.Input{shape = {2}}, {training = true})
    assert.is_true(got)
  end)

  it("refuses a mask it was not written for, as Keras does", function()
    local inp = keras.Input{shape = {4}}
    local e = L.Embedding{5, 2, mask_zero = true}(inp)
    local Plain = L.Layer:extend("Plain")
    function Plain.call(_, x) return x * 2 end
    assert.error_matches(function() Plain{name = "plain"}(e) end,
      "Layer plain does not support masking, but was passed an input_mask", 1, true)
    local Passing = L.Layer:extend("Passing")
    function Passing:init() self.supports_masking = true end
    function Passing.call(_, x) return x * 2 end
    local y = Passing()(e)
    assert.truthy(y:meta().mask)
  end)

  it("adds its add_loss terms (from call) and its regularizers to the training loss", function()
    local Act = L.Layer:extend("ActivityPenalty")
    function Act:init(args) self.rate = args.rate end
    function Act:call(x)
      self:add_loss(K.mean(K.square(x)) * self.rate)
      return x
    end
    local inp = keras.Input{shape = {3}}
    local dense = MyDense(2)
    local reg = L.Layer:extend("Reg")
    function reg:build(s)
      self.w = self:add_weight{name = "w", shape = {s[2]}, initializer = "ones",
                               regularizer = keras.regularizers.l2(0.5)}
    end
    function reg:call(x) return x * self.w end
    local out = reg()(dense(Act{rate = 0.25}(inp)))
    local model = keras.Model{inputs = inp, outputs = out}
    assert.equal(2, #model.losses)
    model:compile{optimizer = "sgd", loss = "mse"}
    local x, y = keras.random.random{6, 3}, keras.random.random{6, 2}
    local p = predict_by_hand(dense, x)
    local xt = x:totable()
    -- mse + 0.25 * mean(x^2) + 0.5 * sum(w^2) with w = 1, 1
    local want = mean_sq(p, y:totable()) + 0.25 * mean_sq(xt) + 0.5 * 2
    near(want, model:evaluate(x, y, {batch_size = 6, verbose = 0}), 1e-5, "loss")
  end)

  it("counts a call's add_loss term only in the models that call is part of", function()
    local Pen = L.Layer:extend("Pen")
    function Pen:build()
      self:add_loss(K.constant(0.5))         -- outside call: the layer's own term
    end
    function Pen:call(x)
      self:add_loss(K.mean(x))
      return x * 1
    end
    local pen = Pen()
    local a, b = keras.Input{shape = {2}}, keras.Input{shape = {2}}
    local ma = keras.Model{inputs = a, outputs = pen(a)}
    local mb = keras.Model{inputs = b, outputs = pen(b)}
    assert.equal(3, #pen.losses)             -- its own term and one per call
    assert.equal(2, #ma.losses)
    assert.equal(2, #mb.losses)
    ma:compile{optimizer = "sgd"}
    mb:compile{optimizer = "sgd"}
    local xa, xb = keras.tensor{{1, 2}, {3, 4}}, keras.tensor{{10, 20}, {30, 40}}
    near(0.5 + 2.5, ma:evaluate(xa, nil, {verbose = 0}), 1e-6, "model a")
    near(0.5 + 25, mb:evaluate(xb, nil, {verbose = 0}), 1e-6, "model b")
  end)

  it("is saved and loaded with custom_objects, native and HDF5, as a class or a constructor function", function()
    local model = keras.Sequential{MyDense(3, {input_shape = {4}, name = "mine"}), MyDense(2)}
    model:compile{optimizer = "adam", loss = "mse"}
    model:fit(keras.random.random{16, 4}, keras.random.random{16, 2}, {verbose = 0})
    local x = keras.random.random{5, 4}
    local want = model:predict(x):totable()
    for _, path in ipairs{P("m.lkm"), P("m.h5")} do
      model:save(path)
      local back = keras.models.load_model(path, {custom_objects = {MyDense = MyDense}})
      assert.equal("MyDense", back.layers[1].class_name)
      assert.equal("mine", back.layers[1].name)
      assert.same(want, back:predict(x):totable())
      local made = 0
      local function ctor(config) made = made + 1; return MyDense(config) end
      local back2 = keras.models.load_model(path, {custom_objects = {MyDense = ctor}})
      assert.equal(2, made)
      assert.same(want, back2:predict(x):totable())
      -- Keras's positional custom_objects
      assert.same(want, keras.models.load_model(path, {MyDense = MyDense}):predict(x):totable())
      assert.error_matches(function() keras.models.load_model(path) end,
        "Unknown layer: MyDense (pass its class in custom_objects)", 1, true)
    end
    local cfg = keras.saving.json.decode(model:to_json())
    assert.same({name = "mine", trainable = true, batch_input_shape = {None, 4}, dtype = "float32", units = 3},
      cfg.config[1].config)
  end)

  it("is rebuilt by model_from_json with custom_objects by keyword or by position", function()
    local inp = keras.Input{shape = {4}}
    local model = keras.Model{inputs = inp, outputs = MyDense(2)(inp)}
    local s = model:to_json()
    local a = keras.models.model_from_json(s, {custom_objects = {MyDense = MyDense}})
    local b = keras.models.model_from_json(s, {MyDense = MyDense})
    local c = keras.models.model_from_json(s, {custom_objects = {MyDense = function(cfg) return MyDense(cfg) end}})
    for _, m in ipairs{a, b, c} do
      assert.equal("MyDense", m.layers[2].class_name)
      assert.same({None, 2}, m.output_shape)
    end
    assert.error_matches(function() keras.models.model_from_json(s) end,
      "model_from_json: Unknown layer: MyDense (pass its class in custom_objects)", 1, true)
    assert.error_matches(function() keras.models.model_from_json(s, {custom_objects = {}, compile = true}) end,
      "model_from_json: unknown argument 'compile'", 1, true)
  end)

  it("owns the weights of the layers it makes in init and uses in call: trained, counted, saved", function()
    local Block = L.Layer:extend("Block")
    function Block:init(args)
      self.inner = L.Dense(args[1] or args.units)
      self.units = args[1] or args.units
    end
    function Block:build()
      self.gain = self:add_weight{name = "gain", shape = {self.units}, initializer = "ones"}
    end
    function Block:call(x) return self.inner(x) * self.gain end
    function Block:get_config() return {units = self.units} end
    local block = Block(3, {input_shape = {2}})
    local model = keras.Sequential{block}
    assert.equal(3 + 2 * 3 + 3, model:count_params())
    assert.equal(3, #block.weights)
    local before = model.layers[1].inner:get_weights()[1]:totable()
    model:compile{optimizer = keras.optimizers.SGD{lr = 0.5}, loss = "mse"}
    model:fit(keras.random.random{8, 2}, keras.random.random{8, 3}, {verbose = 0})
    assert.are_not.same(before, block.inner:get_weights()[1]:totable())
    local x = keras.random.random{4, 2}
    model:save(P("block.lkm"))
    local back = keras.models.load_model(P("block.lkm"), {custom_objects = {Block = Block}})
    assert.same(model:predict(x):totable(), back:predict(x):totable())
  end)

  it("works inside TimeDistributed, applied to every step", function()
    local inp = keras.Input{shape = {5, 3}}
    local inner = MyDense(2)
    local model = keras.Model{inputs = inp, outputs = L.TimeDistributed(inner)(inp)}
    assert.same({None, 5, 2}, model.output_shape)
    assert.equal(3 * 2 + 2, model:count_params())
    local x = keras.random.random{2, 5, 3}
    local p = model:predict(x):totable()
    for i = 1, 2 do
      near_table(predict_by_hand(inner, x[i]), p[i], 1e-5, "step outputs")
    end
  end)

  it("is cloned by clone_model with fresh weights", function()
    local model = keras.Sequential{MyDense(3, {input_shape = {4}, name = "mine"})}
    local clone = keras.models.clone_model(model)
    assert.equal("MyDense", clone.layers[1].class_name)
    assert.are_not.equal(model.layers[1], clone.layers[1])
    clone:set_weights(model:get_weights())
    local x = keras.random.random{2, 4}
    assert.same(model:predict(x):totable(), clone:predict(x):totable())
  end)

  it("can be extended again: the subclass inherits the methods", function()
    local Twice = MyDense:extend("Twice")
    function Twice:call(x) return MyDense.call(self, x) * 2 end
    local layer = Twice(2, {input_shape = {3}})
    local model = keras.Sequential{layer}
    local x = keras.random.random{2, 3}
    local p = predict_by_hand(layer, x)
    for i = 1, 2 do for j = 1, 2 do p[i][j] = 2 * p[i][j] end end
    near_table(p, model:predict(x):totable(), 1e-5, "predict")
  end)
end)

describe("custom layer errors", function()
  it("refuses add_weight outside build", function()
    local Early = L.Layer:extend("Early")
    function Early:init() self.w = self:add_weight{name = "w", shape = {2}} end
    assert.error_matches(function() Early{name = "early"} end,
      "Early (early): add_weight called outside build: weights are made in build(input_shape), "
        .. "which runs on the layer's first call", 1, true)
    local Late = L.Layer:extend("Late")
    function Late:call(x) self:add_weight{name = "w", shape = {2}}; return x end
    assert.error_matches(function() Late{name = "late"}(keras.Input{shape = {2}}) end,
      "Late (late): add_weight called outside build", 1, true)
  end)

  it("takes add_weight's Keras positional form", function()
    local Pos = L.Layer:extend("Pos")
    function Pos:build(s) self.w = self:add_weight("w", {s[2]}, {initializer = "ones", trainable = false}) end
    function Pos:call(x) return x * self.w end
    local layer = Pos{input_shape = {3}}
    keras.Sequential{layer}
    assert.equal("w:0", layer._weights[1].name:match("[^/]+$"))
    assert.equal(1, #layer.non_trainable_weights)
  end)

  it("refuses bad add_weight arguments, naming the layer and the weight", function()
    local Bad = L.Layer:extend("Bad")
    function Bad:init(args) self.o = args.o end
    function Bad:build() self:add_weight(self.o) end
    local x = keras.Input{shape = {3}}
    assert.error_matches(function() Bad{name = "b1", o = {name = "k", shape = {None, 3}}}(x) end,
      "Bad (b1): add_weight: shape of weight 'k' must hold positive integers (known when build runs), "
        .. "got None at position 1", 1, true)
    assert.error_matches(function() Bad{name = "b2", o = {name = "k", shape = {3}, constraint = "non_negative"}}(x) end,
      "Bad (b2): add_weight: constraint (weight 'k'): unknown constraint 'non_negative'", 1, true)
    assert.error_matches(function() Bad{name = "b3", o = {name = "k", shape = {3}, initialiser = "ones"}}(x) end,
      "Bad (b3): add_weight: unknown argument 'initialiser'", 1, true)
  end)

  it("refuses a call that returns something other than symbolic tensors", function()
    local Num = L.Layer:extend("Num")
    function Num.call() return 3 end
    assert.error_matches(function() Num{name = "num"}(keras.Input{shape = {2}}) end,
      "Num (num): call must return a symbolic tensor or a list of them (built from its inputs with K ops), got number",
      1, true)
    local Concrete = L.Layer:extend("Concrete")
    function Concrete.call() return keras.tensor{1, 2} end
    assert.error_matches(function() Concrete{name = "c"}(keras.Input{shape = {2}}) end,
      "got a concrete keras.Tensor", 1, true)
  end)

  it("refuses an output whose shape cannot be inferred, without compute_output_shape", function()
    local Total = L.Layer:extend("Total")
    function Total.call(_, x) return K.sum(x) end
    assert.error_matches(function() Total{name = "total"}(keras.Input{shape = {2}}) end,
      "Total (total): cannot infer the output shape: call returned a tensor of shape () without the batch axis; "
        .. "define compute_output_shape(input_shape), and return a tensor whose first axis is the batch", 1, true)
    -- with compute_output_shape, the traced shape must agree with it
    function Total.compute_output_shape(_, s) return {s[1], 1} end
    assert.error_matches(function() Total{name = "total2"}(keras.Input{shape = {2}}) end,
      "Total (total2): compute_output_shape gives (None, 1) but call returned a tensor of shape ()", 1, true)
  end)

  it("refuses to extend a built-in layer, and bad class names", function()
    assert.error_matches(function() L.Dense:extend("D2") end,
      "extend: keras.layers.Dense cannot be extended; extend keras.layers.Layer (or a class made with extend)", 1, true)
    assert.error_matches(function() L.Layer:extend("my layer") end,
      "Layer:extend: the class name must be an identifier string (its class_name in configs), got 'my layer'", 1, true)
    assert.error_matches(function() MyDense(2, {dtype = "float64"}) end,
      "MyDense: dtype must be 'float32' (the engine's one float type), got float64", 1, true)
  end)
end)

-- ---- subclassed models ----

local Net = keras.Model:extend("Net")
local net_calls = 0
function Net:init(args)
  self.hidden = L.Dense(args[1] or 8, {activation = "relu"})
  self.out = L.Dense(2)
end
function Net:call(x)
  net_calls = net_calls + 1
  return self.out(self.hidden(x))
end

describe("keras.Model:extend", function()
  before_each(function() keras.random.seed(3) end)

  it("is traced once, on the first fit, and then compiled, fitted, evaluated and predicted like any model", function()
    net_calls = 0
    local net = Net(6)
    assert.matches("^net_%d+$", net.name)
    net:compile{optimizer = "adam", loss = "mse"}
    local x, y = keras.random.random{64, 5}, keras.random.random{64, 2}
    local h = net:fit(x, y, {epochs = 2, batch_size = 8, verbose = 0})
    assert.equal(1, net_calls)
    assert.equal(2, #h.history.loss)
    assert.same({None, 5}, net.input_shape)
    assert.same({None, 2}, net.output_shape)
    assert.equal(5 * 6 + 6 + 6 * 2 + 2, net:count_params())
    -- the numbers are those of its layers
    local p = net:predict(x)
    local w = net:get_weights()
    local hdn = affine(x:totable(), w[1]:totable(), w[2]:totable())
    for i = 1, #hdn do for j = 1, #hdn[i] do hdn[i][j] = math.max(hdn[i][j], 0) end end
    local want = affine(hdn, w[3]:totable(), w[4]:totable())
    near_table(want, p:totable(), 1e-5, "predict")
    near(mean_sq(want, y:totable()), net:evaluate(x, y, {batch_size = 64, verbose = 0}), 1e-5, "loss")
    assert.equal(1, net_calls)
    local lines = {}
    net:summary{print_fn = function(s) lines[#lines + 1] = s end}
    assert.truthy(table.concat(lines, "\n"):find("Total params: 50", 1, true))
  end)

  it("builds from build(input_shape), and predicts without compile", function()
    local net = Net()
    net:build{None, 3}
    assert.same({None, 2}, net.output_shape)
    assert.same({4, 2}, net:predict(keras.random.random{4, 3}).shape)
  end)

  it("is callable on symbolic tensors inside other models, sharing its layers", function()
    local net = Net(4)
    local inp = keras.Input{shape = {3}}
    local outer = keras.Model{inputs = inp, outputs = L.Activation("tanh")(net(inp))}
    local x = keras.random.random{3, 3}
    local want = net:predict(x):totable()
    for i = 1, #want do
      for j = 1, #want[i] do
        local e = math.exp(2 * want[i][j])
        want[i][j] = (e - 1) / (e + 1)
      end
    end
    near_table(want, outer:predict(x):totable(), 1e-5, "predict")
  end)

  it("cannot be saved whole (its architecture is Lua code), but its weights can", function()
    local net = Net()
    net:build{None, 3}
    assert.error_matches(function() net:save(P("net.lkm")) end,
      "save: Net is a subclassed model (keras.Model:extend): its architecture is Lua code, which cannot be saved; "
        .. "use save_weights/load_weights and rebuild it in code", 1, true)
    net:save_weights(P("net_w.lkm"))
    local other = Net()
    other:build{None, 3}
    other:load_weights(P("net_w.lkm"))
    local x = keras.random.random{2, 3}
    assert.same(net:predict(x):totable(), other:predict(x):totable())
  end)

  it("takes self:add_loss in call, in the traced model and in each call on other tensors", function()
    local AE = keras.Model:extend("AE")
    function AE:init() self.enc, self.dec = L.Dense(2), L.Dense(3) end
    function AE:call(x)
      local y = self.dec(self.enc(x))
      self:add_loss(K.mean(K.square(y - x)))
      return y
    end
    local ae = AE()
    ae:compile{optimizer = "sgd"}
    local x = keras.random.random{5, 3}
    local got = ae:evaluate(x, nil, {verbose = 0})
    local we, wd = ae.enc:get_weights(), ae.dec:get_weights()
    local y = affine(affine(x:totable(), we[1]:totable(), we[2]:totable()), wd[1]:totable(), wd[2]:totable())
    near(mean_sq(y, x:totable()), got, 1e-5, "loss")
    assert.equal(1, #ae.losses)
    -- called inside another model: the term of that call comes along
    local inp = keras.Input{shape = {3}}
    local outer = keras.Model{inputs = inp, outputs = ae(inp)}
    assert.equal(1, #outer.losses)
    outer:compile{optimizer = "sgd"}
    near(got, outer:evaluate(x, nil, {verbose = 0}), 1e-6, "outer loss")
  end)

  it("takes several inputs as a list", function()
    local Two = keras.Model:extend("Two")
    function Two:init() self.merge = L.Concatenate(); self.out = L.Dense(1) end
    function Two:call(xs) return self.out(self.merge(xs)) end
    local two = Two()
    two:compile{optimizer = "sgd", loss = "mse"}
    local a, b, y = keras.random.random{6, 2}, keras.random.random{6, 3}, keras.random.random{6, 1}
    two:fit({a, b}, y, {verbose = 0})
    assert.equal(2, #two.inputs)
    local w = two.out:get_weights()
    local rows = {}
    for i = 1, 6 do rows[i] = {a:get(i, 1), a:get(i, 2), b:get(i, 1), b:get(i, 2), b:get(i, 3)} end
    near_table(affine(rows, w[1]:totable(), w[2]:totable()), two:predict{a, b}:totable(), 1e-5, "predict")
  end)

  it("says when its call returns no tensor", function()
    local Broken = keras.Model:extend("Broken")
    function Broken.call() return "nothing" end
    assert.error_matches(function() Broken():build{None, 2} end,
      "build: Broken's call must return a symbolic tensor or a list of them, got string", 1, true)
  end)
end)

-- ---- add_loss and compile without loss ----

describe("model:add_loss", function()
  before_each(function() keras.random.seed(11) end)

  -- an autoencoder whose loss is its reconstruction error plus a penalty on the code
  local function autoencoder()
    local inp = keras.Input{shape = {4}}
    local enc = L.Dense(2, {name = "enc"})
    local dec = L.Dense(4, {name = "dec"})
    local code = enc(inp)
    local out = dec(code)
    local model = keras.Model{inputs = inp, outputs = out}
    model:add_loss(K.mean(K.square(out - inp)))
    model:add_loss{K.mean(K.square(code)) * 0.1}
    return model, enc, dec
  end

  local function loss_by_hand(enc, dec, x)
    local we, wd = enc:get_weights(), dec:get_weights()
    local code = affine(x:totable(), we[1]:totable(), we[2]:totable())
    local out = affine(code, wd[1]:totable(), wd[2]:totable())
    return mean_sq(out, x:totable()) + 0.1 * mean_sq(code)
  end

  it("compiles without loss and trains on x alone; the reported loss is the sum of the added terms", function()
    local model, enc, dec = autoencoder()
    assert.equal(2, #model.losses)
    model:compile{optimizer = keras.optimizers.SGD{lr = 0.1}}
    assert.same({"loss"}, model.metrics_names)
    local x = keras.random.random{32, 4}
    near(loss_by_hand(enc, dec, x), model:evaluate(x, nil, {batch_size = 32, verbose = 0}), 1e-5, "evaluate")
    near(loss_by_hand(enc, dec, x), model:test_on_batch(x), 1e-5, "test_on_batch")
    local before = loss_by_hand(enc, dec, x)
    local h = model:fit(x, nil, {epochs = 20, batch_size = 8, verbose = 0})
    assert.equal(20, #h.history.loss)
    assert.truthy(loss_by_hand(enc, dec, x) < before)
    near(loss_by_hand(enc, dec, x), model:evaluate(x, keras.None, {verbose = 0}), 1e-5, "after fit")
  end)

  it("validates on {x_val, keras.None} and {x_val}", function()
    local model, enc, dec = autoencoder()
    model:compile{optimizer = "sgd"}
    local x, xv = keras.random.random{16, 4}, keras.random.random{8, 4}
    for _, vd in ipairs{{xv, keras.None}, {xv}} do
      local h = model:fit(x, nil, {epochs = 1, batch_size = 16, verbose = 0, validation_data = vd})
      near(loss_by_hand(enc, dec, xv), h.history.val_loss[1], 1e-5, "val_loss")
    end
  end)

  it("adds its terms to the outputs' loss when the model has one", function()
    local model, enc, dec = autoencoder()
    model:compile{optimizer = "sgd", loss = "mse"}
    local x, y = keras.random.random{8, 4}, keras.random.random{8, 4}
    local we, wd = enc:get_weights(), dec:get_weights()
    local out = affine(affine(x:totable(), we[1]:totable(), we[2]:totable()), wd[1]:totable(), wd[2]:totable())
    near(mean_sq(out, y:totable()) + loss_by_hand(enc, dec, x), model:evaluate(x, y, {batch_size = 8, verbose = 0}),
      1e-5, "loss")
  end)

  it("counts the regularizers' penalties in model.losses and in the reported loss", function()
    local model = keras.Sequential{L.Dense(3, {input_shape = {2}, kernel_regularizer = keras.regularizers.l2(0.01)})}
    assert.equal(1, #model.losses)
    model:compile{optimizer = "sgd"}   -- a regularizer is a loss: nothing else is needed
    local W = model.layers[1]:get_weights()[1]:totable()
    local s = 0
    for _, row in ipairs(W) do for _, v in ipairs(row) do s = s + v * v end end
    near(0.01 * s, model:evaluate(keras.random.random{4, 2}, nil, {verbose = 0}), 1e-5, "penalty")
  end)

  it("is saved compiled without a loss: layers' terms come back, model:add_loss's must be added again", function()
    local Pen = L.Layer:extend("Pen")
    function Pen:call(x) self:add_loss(K.mean(K.square(x))); return x * 1 end
    local inp = keras.Input{shape = {2}}
    local m = keras.Model{inputs = inp, outputs = Pen()(L.Dense(2)(inp))}
    m:compile{optimizer = "adam"}
    m:fit(keras.random.random{8, 2}, nil, {verbose = 0})
    m:save(P("pen.lkm"))
    local back = keras.models.load_model(P("pen.lkm"), {custom_objects = {Pen = Pen}})
    local x = keras.random.random{4, 2}
    near(m:evaluate(x, nil, {verbose = 0}), back:evaluate(x, nil, {verbose = 0}), 1e-6, "loss")
    local ae = autoencoder()
    ae:compile{optimizer = "sgd"}
    ae:save(P("ae.lkm"))
    assert.error_matches(function() keras.models.load_model(P("ae.lkm")) end,
      "the model was compiled without a loss and its model:add_loss terms are not saved: "
        .. "load it with {compile = false}, add them again and compile", 1, true)
    assert.equal(0, #keras.models.load_model(P("ae.lkm"), {compile = false}).losses)
  end)

  it("refuses misuse with clear errors", function()
    local plain = keras.Sequential{L.Dense(2, {input_shape = {3}})}
    assert.error_matches(function() plain:compile{optimizer = "sgd"} end, "compile: missing argument 'loss'", 1, true)
    local model = autoencoder()
    model:compile{optimizer = "sgd"}
    local x = keras.random.random{4, 4}
    assert.error_matches(function() model:fit(x, x, {verbose = 0}) end,
      "fit: the model was compiled without a loss for its outputs, so it takes no targets (give y = nil)", 1, true)
    assert.error_matches(function() model:fit(x, nil, {validation_data = {x, x}, verbose = 0}) end,
      "fit: validation_data: the model was compiled without a loss for its outputs, so it takes no targets", 1, true)
    assert.error_matches(function() model:compile{optimizer = "sgd", metrics = {"mae"}} end,
      "compile: metrics needs a loss for the outputs (compiled without loss, the model takes no targets)", 1, true)
    assert.error_matches(function() model:add_loss(3 < 4) end,
      "add_loss: a loss must be a symbolic tensor (built with K ops from the model's tensors), got boolean", 1, true)
    local other = keras.Input{shape = {4}}
    assert.error_matches(function() model:add_loss(K.mean(other)) end,
      "add_loss: the loss depends on input '" .. other:meta().layer.name .. "', which is not an input of model '"
        .. model.name .. "'", 1, true)
    -- a model with targets still needs them
    local m2 = keras.Sequential{L.Dense(2, {input_shape = {3}})}
    m2:compile{optimizer = "sgd", loss = "mse"}
    assert.error_matches(function() m2:fit(keras.random.random{2, 3}) end, "fit: missing y (targets)", 1, true)
    assert.error_matches(function() m2:evaluate(keras.random.random{2, 3}) end, "evaluate: missing y (targets)",
      1, true)
  end)
end)

describe("model.updates", function()
  it("lists BatchNormalization's moving averages, two per call", function()
    local model = keras.Sequential{L.Dense(3, {input_shape = {2}}), L.BatchNormalization{name = "bn"}, L.Dense(1)}
    local u = model.updates
    assert.equal(2, #u)
    assert.equal("bn/moving_mean:0", u[1].name)
    assert.equal("bn/moving_variance:0", u[2].name)
    assert.equal(0.99, u[1].momentum)
    assert.equal("<update bn/moving_mean:0: moving average, momentum 0.99>", tostring(u[1]))
    assert.equal(0, #keras.Sequential{L.Dense(3, {input_shape = {2}})}.updates)
    assert.equal(2, #model.layers[2].updates)
  end)
end)

describe("from_config with custom_objects", function()
  it("takes the classes by keyword or positionally, for Model and Sequential", function()
    local Scale = keras.layers.Layer:extend("ScaleByTwo")
    function Scale:call(x) return x * 2 end
    local inp = keras.Input{shape = {3}}
    local m = keras.Model(inp, Scale()(inp))
    local x = keras.tensor{{1, 2, 3}}
    local cfg = m:get_config()
    for _, custom in ipairs{{custom_objects = {ScaleByTwo = Scale}}, {ScaleByTwo = Scale}} do
      local back = keras.Model.from_config(cfg, custom)
      assert.same({{2, 4, 6}}, back:predict(x):totable())
    end
    local s = keras.Sequential{Scale{input_shape = {3}}}
    local sback = keras.Sequential.from_config(s:get_config(), {custom_objects = {ScaleByTwo = Scale}})
    assert.same({{2, 4, 6}}, sback:predict(x):totable())
    assert.error_matches(function() keras.Model.from_config(cfg, {custom_objects = {}, extra = 1}) end,
      "from_config: unknown argument 'extra'", 1, true)
  end)
end)
