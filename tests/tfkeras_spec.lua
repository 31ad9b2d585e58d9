-- Model files written by Keras 2.2.5 and by tf.keras ("2.2.4-tf" and 2.x):
-- four .h5 files in those versions' layouts (tests/fixtures/tfkeras_*.h5,
-- made with the numpy float64 predictions of tests/fixtures/tfkeras.lua by
-- scripts/fixtures/tfkeras_fixtures.py) load and predict; tf.keras's config
-- keys at their neutral values, its initializer class names, dtype policies,
-- the "Functional" class, an RNN's initial_state as a call argument of its
-- node or as extra inputs of it; what is not supported is refused by name.
local keras = require "keras"
local json = require "keras.json"

local FIX = dofile("tests/fixtures/tfkeras.lua")

local U_ = dofile("tests/lib/spec_util.lua")
local flat = U_.flat

local function assert_close(want, got, tol, what)
  local g = flat(type(got) == "table" and got or got:totable())
  local w = flat(type(want) == "table" and want or want:totable())
  assert.equal(#w, #g, (what or "") .. ": number of elements")
  for i = 1, #w do
    if not (math.abs(g[i] - w[i]) <= tol * math.max(1, math.abs(w[i]))) then
      error(string.format("%s: element %d is %.9g, expected %.9g", what or "", i, g[i], w[i]), 2)
    end
  end
end

local T = keras.tensor
local TOL = 1e-5

local function read(path)
  local f = assert(io.open(path, "rb"))
  local s = f:read("a")
  f:close()
  return s
end

local function err_of(f, ...)
  local ok, e = pcall(f, ...)
  assert.is_false(ok)
  return tostring(e)
end

describe("files written by Keras 2.2.5 and tf.keras", function()
  it("Keras 2.2.5: a stateful LSTM on None-length input keeps its states across predict calls", function()
    local c = FIX.keras225_stateful
    local m = keras.models.load_model(c.file)
    assert.is_true(m.layers[1].stateful)
    assert.matches('"batch_input_shape": [2, null, 3]', m:to_json(), 1, true)
    assert_close(c.y1, m:predict(T(c.x1), {batch_size = 2}), TOL, "the first sequence")
    assert_close(c.y2, m:predict(T(c.x2), {batch_size = 2}), TOL, "the next one, from the carried states")
    m:reset_states()
    assert_close(c.y2_reset, m:predict(T(c.x2), {batch_size = 2}), TOL, "after reset_states")
  end)

  it("tf.keras 2.2.4-tf: Bidirectional(GRU) on None-length input, tf.keras initializer classes", function()
    local c = FIX.tf1_bidirectional
    local m = keras.models.load_model(c.file)
    assert_close(c.y1, m:predict(T(c.x1)), TOL, "the prediction")
    local init = m.layers[2].kernel_initializer
    assert.equal("VarianceScaling", init.class_name)
    assert.equal("fan_avg", init.config.mode)
    assert.equal("uniform", init.config.distribution)
  end)

  it("tf.keras 2.2.4-tf: an LSTM's initial states as extra inputs of its node", function()
    local c = FIX.tf1_model_states
    local m = keras.models.load_model(c.file)
    assert.equal(3, #m.inputs)
    assert_close(c.y1, m:predict{T(c.x1), T(c.h0), T(c.c0)}, TOL, "the prediction")
  end)

  it("tf.keras 2.4: Functional, ragged, time_major, GRU(reset_after), initial_state as a call argument", function()
    local c = FIX.tf2_functional
    local m = keras.models.load_model(c.file)
    assert.equal(3, #m.inputs)
    assert.is_true(m:get_layer("gru").reset_after)
    assert_close(c.y1, m:predict{T(c.x1), T(c.h0), T(c.c0)}, TOL, "the prediction")
    -- compiled as saved: tf.keras 2.4's Adam, its counter, m and v
    assert.equal("Adam", m.optimizer.class_name)
    assert.near(0.0005, m.optimizer:get_config().lr, 1e-9)
    assert.equal(7, m.optimizer.iterations)
    local slots = m.optimizer:get_slots()
    assert_close(c.adam_m1, slots[1], 0, "the first m")
    assert_close(c.adam_v_last, slots[16], 0, "the last v")
    local h = m:fit({T(c.x1), T(c.h0), T(c.c0)}, T(c.y1), {epochs = 1, verbose = 0})
    assert.is_true(h.history.loss[1] < 1e-6, "the loss at the reference values")
    assert.equal(8, m.optimizer.iterations)
    -- the same topology from model.to_json()'s text, the weights from the file
    local j = keras.models.model_from_json(read("tests/fixtures/tfkeras_tf2_functional.json"))
    j:load_weights(c.file)
    assert_close(c.y1, j:predict{T(c.x1), T(c.h0), T(c.c0)}, TOL, "model_from_json + load_weights")
    -- saved again (Keras 2.2.4's format) and loaded back: the same model
    local again = keras.models.model_from_json(m:to_json())
    again:set_weights(m:get_weights())
    assert_close(c.y1, again:predict{T(c.x1), T(c.h0), T(c.c0)}, TOL, "to_json and back")
  end)
end)

describe("tf.keras 2.4's Sequential to_json()", function()
  local L = keras.layers

  it("loads: InputLayer first, groups = 1, BatchNormalization axis [3], the L1 and L2 classes, MaxNorm", function()
    local m = keras.models.model_from_json(read("tests/fixtures/tfkeras_tf2_sequential.json"))
    assert.equal(6, #m.layers)
    local conv, bn, dense = m:get_layer("conv2d"), m:get_layer("batch_normalization"), m:get_layer("dense")
    assert.same({l1 = 0, l2 = 0.009999999776482582}, conv.kernel_regularizer.config)
    assert.same({l1 = 0.001, l2 = 0}, dense.kernel_regularizer.config)
    assert.equal("MaxNorm", conv.kernel_constraint.class_name)
    assert.equal(3, conv.kernel_constraint.config.max_value)
    assert.equal(3, bn.axis)
    -- the same network written with keras.layers, the same weights: the same predictions
    local ref = keras.Sequential{
      L.Conv2D{4, 3, padding = "same", activation = "relu", input_shape = {8, 8, 1}},
      L.BatchNormalization{axis = 3}, L.MaxPooling2D(), L.Dropout(0.25), L.Flatten(),
      L.Dense{3, activation = "softmax"},
    }
    local ws = {}
    for i, w in ipairs(ref:get_weights()) do ws[i] = keras.random.uniform(w.shape, -0.5, 0.5) + (i == 6 and 1 or 0) end
    ref:set_weights(ws)
    m:set_weights(ws)
    local x = keras.random.random{3, 8, 8, 1}
    assert_close(ref:predict(x), m:predict(x), 1e-6, "against the network written in Lua")
    -- saved in Keras 2.2.4's format: no groups, the axis an integer
    local j = m:to_json()
    assert.is_nil(j:find('"groups"', 1, true))
    assert.matches('"axis": 3,', j, 1, true)
  end)

  it("refuses groups other than 1 and several BatchNormalization axes", function()
    local s = read("tests/fixtures/tfkeras_tf2_sequential.json")
    local e = err_of(keras.models.model_from_json, (s:gsub('"groups": 1', '"groups": 2')))
    assert.matches("Conv2D 'conv2d': groups = 2 is not supported (only 1)", e, 1, true)
    e = err_of(keras.models.model_from_json, (s:gsub('"axis": %[3%]', '"axis": [1, 3]')))
    assert.matches("BatchNormalization 'batch_normalization': axis = [1, 3] is not supported (one axis)", e, 1, true)
  end)
end)

-- the tf.keras 2.4 topology with one value changed
local function tf2_config(edit)
  local cfg = json.decode(read("tests/fixtures/tfkeras_tf2_functional.json"))
  local by = {}
  for _, l in ipairs(cfg.config.layers) do by[l.name] = l end
  edit(by, cfg)
  return json.encode(cfg)
end

describe("tf.keras configs: what is not supported is refused by name", function()
  it("time_major = true", function()
    local e = err_of(keras.models.model_from_json, tf2_config(function(by) by.lstm.config.time_major = true end))
    assert.matches("LSTM 'lstm': time_major = true is not supported", e, 1, true)
  end)

  it("ragged, sparse and stateful inputs", function()
    local e = err_of(keras.models.model_from_json, tf2_config(function(by) by.input_2.config.ragged = true end))
    assert.matches("InputLayer 'input_2': ragged = true is not supported", e, 1, true)
    e = err_of(keras.models.model_from_json, tf2_config(function(by) by.input_1.config.sparse = true end))
    assert.matches("InputLayer 'input_1': sparse = true is not supported", e, 1, true)
    e = err_of(keras.models.model_from_json, tf2_config(function(by) by.input_1.config.stateful = true end))
    assert.matches("InputLayer 'input_1': stateful = true is not supported", e, 1, true)
  end)

  it("dtype policies: float32 accepted, others refused", function()
    local ok = keras.models.model_from_json(tf2_config(function(by)
      by.dense.config.dtype = {class_name = "Policy", config = {name = "float32"}}
      by.input_1.config.dtype = {class_name = "Policy", config = {name = "float32"}}
    end))
    assert.equal(3, #ok.inputs)
    local e = err_of(keras.models.model_from_json, tf2_config(function(by)
      by.dense.config.dtype = {class_name = "Policy", config = {name = "mixed_float16"}}
    end))
    assert.matches("Dense 'dense': the dtype policy 'mixed_float16' is not supported (only float32)", e, 1, true)
    e = err_of(keras.models.model_from_json, tf2_config(function(by)
      by.gru.config.dtype = {class_name = "Float", config = {}}
    end))
    assert.matches("GRU 'gru': dtype = ", e, 1, true)
  end)

  it("an initializer's dtype other than float32, an unknown initializer class", function()
    local e = err_of(keras.models.model_from_json, tf2_config(function(by)
      by.dense.config.kernel_initializer = {class_name = "GlorotUniform", config = {seed = json.null or keras.None,
        dtype = "float16"}}
    end))
    assert.matches("initializer GlorotUniform: dtype must be float32, got 'float16'", e, 1, true)
    e = err_of(keras.models.model_from_json, tf2_config(function(by)
      by.dense.config.kernel_initializer = {class_name = "GlorotUniformish", config = {}}
    end))
    assert.matches("unknown initializer 'GlorotUniformish'", e, 1, true)
  end)

  -- a small model saved as .h5, its training_config rewritten (by h5py) as
  -- tf.keras 2.x writes it, loaded: pcall's results
  local function with_training_config(tc)
    local m = keras.Sequential{keras.layers.Dense{1, input_shape = {2}}}
    m:compile{loss = "mse", optimizer = "sgd"}
    local base = os.tmpname()
    local p = base .. ".h5"
    m:save(p)
    local ok = os.execute(string.format("/usr/bin/python3 -c \"import h5py,sys; f = h5py.File(sys.argv[1], 'a'); " ..
      "f.attrs['training_config'] = sys.argv[2].encode(); del f['optimizer_weights']\" '%s' '%s'", p,
      json.encode(tc)))
    assert.is_truthy(ok)
    local okl, r = pcall(keras.models.load_model, p)
    os.remove(p)
    os.remove(base)
    return okl, r
  end

  it("a tf.keras optimizer's options that Keras 2.2.4 lacks, away from their neutral values", function()
    local function with_optimizer(cls, cfg)
      return with_training_config{loss = "mse", optimizer_config = {class_name = cls, config = cfg}}
    end
    local ok, m = with_optimizer("RMSprop", {name = "RMSprop", learning_rate = 0.01, rho = 0.8, momentum = 0,
      epsilon = 1e-7, centered = false, decay = 0})
    assert.is_true(ok, tostring(m))
    assert.near(0.01, m.optimizer:get_config().lr, 1e-9)
    assert.near(0.8, m.optimizer:get_config().rho, 1e-9)
    local e
    ok, e = with_optimizer("RMSprop", {name = "RMSprop", learning_rate = 0.01, momentum = 0.9})
    assert.is_false(ok)
    assert.matches("optimizer RMSprop: momentum = 0.9 is not supported (only 0)", e, 1, true)
    ok, e = with_optimizer("RMSprop", {name = "RMSprop", learning_rate = 0.01, centered = true})
    assert.is_false(ok)
    assert.matches("optimizer RMSprop: centered = true is not supported (only false)", e, 1, true)
    ok, e = with_optimizer("Adam", {name = "Adam", learning_rate = {class_name = "ExponentialDecay",
      config = {initial_learning_rate = 0.1}}})
    assert.is_false(ok)
    assert.matches("optimizer Adam: learning_rate is a schedule (ExponentialDecay), which is not supported", e, 1,
      true)
  end)

  it("tf.keras's loss and metric objects: Keras's functions at Keras 2.2.4's options, refused otherwise", function()
    local sgd = {class_name = "SGD", config = {name = "SGD", learning_rate = 0.01}}
    local ok, m = with_training_config{optimizer_config = sgd,
      loss = {class_name = "BinaryCrossentropy", config = {reduction = "auto", name = "binary_crossentropy",
        from_logits = false, label_smoothing = 0}},
      metrics = {{class_name = "MeanMetricWrapper", config = {name = "acc", dtype = "float32",
        fn = "binary_accuracy"}}}}
    assert.is_true(ok, tostring(m))
    -- the loss is Keras's binary crossentropy of the (linear) output p = 0.8:
    -- -mean(y log p + (1 - y) log(1 - p)); the accuracy binary_accuracy's
    m:set_weights{T{{0}, {0}}, T{0.8}}
    local loss, acc = m:evaluate(T{{1, 2}, {3, 4}}, T{{1}, {0}}, {verbose = 0})
    local p = 0.8
    assert.near(-(math.log(p) + math.log(1 - p)) / 2, loss, 1e-5)
    assert.near(0.5, acc, 1e-6)
    local e
    ok, e = with_training_config{optimizer_config = sgd,
      loss = {class_name = "CategoricalCrossentropy", config = {from_logits = true}}}
    assert.is_false(ok)
    assert.matches("loss CategoricalCrossentropy: from_logits = true is not supported", e, 1, true)
    ok, e = with_training_config{optimizer_config = sgd,
      loss = {class_name = "MeanSquaredError", config = {reduction = "sum"}}}
    assert.is_false(ok)
    assert.matches('loss MeanSquaredError: reduction = "sum" is not supported', e, 1, true)
  end)

  it("a call argument that refers to an unknown layer", function()
    local e = err_of(keras.models.model_from_json, tf2_config(function(by)
      by.lstm.inbound_nodes[1][1][4].initial_state[2] = {"nowhere", 0, 0}
    end))
    assert.matches("unknown layer 'nowhere'", e, 1, true)
  end)
end)

describe("tf.keras initializer classes", function()
  local I = keras.initializers

  it("GlorotUniform, HeNormal, ... are Keras's glorot_uniform, he_normal, ...", function()
    for cls, name in pairs{GlorotUniform = "glorot_uniform", GlorotNormal = "glorot_normal",
                           HeUniform = "he_uniform", HeNormal = "he_normal", LecunUniform = "lecun_uniform",
                           LecunNormal = "lecun_normal"} do
      local a = I.get{class_name = cls, config = {seed = 7}}
      local b = I.get{class_name = name, config = {seed = 7}}
      assert.same(b.config, a.config, cls)
      assert_close(b{6, 5}, a{6, 5}, 0, cls)
    end
    local z = I.get{class_name = "Zeros", config = {dtype = "float32"}}
    assert_close({{0, 0}, {0, 0}}, z{2, 2}, 0, "Zeros with a dtype")
  end)

  it("VarianceScaling: truncated_normal is Keras's normal, untruncated_normal draws N(0, scale / n)", function()
    local a = I.get{class_name = "VarianceScaling", config = {scale = 2.0, mode = "fan_in",
      distribution = "truncated_normal", seed = 3}}
    local b = I.VarianceScaling{scale = 2.0, mode = "fan_in", distribution = "normal", seed = 3}
    assert.equal("normal", a.config.distribution)
    assert_close(b{40, 30}, a{40, 30}, 0, "truncated_normal")
    local u = I.get{class_name = "VarianceScaling", config = {scale = 2.0, mode = "fan_in",
      distribution = "untruncated_normal", seed = 3}}
    assert.equal("untruncated_normal", u.config.distribution)
    local w = u{200, 300}
    local std = math.sqrt(2.0 / 200)
    local sd = math.sqrt((w * w):mean() - w:mean() ^ 2)
    assert.is_true(math.abs(sd - std) < 0.02 * std, "std " .. sd .. " against " .. std)
    -- not truncated at two standard deviations
    assert.is_true(w:abs():max() > 2.5 * std)
    assert.matches("distribution must be normal, uniform, truncated_normal or untruncated_normal, got 'gamma'",
      err_of(I.VarianceScaling, {distribution = "gamma"}), 1, true)
  end)
end)
