-- Keras 2.2.4's positional signatures (API.md §1): every public class and
-- function called the Keras way, positionally, lands its arguments where
-- Keras puts them (the layer's Keras config, the object's fields, what the
-- call does); both call forms agree; misuse is a clear error.
local keras = require "keras"
local L, O, C, I, R = keras.layers, keras.optimizers, keras.callbacks, keras.initializers, keras.regularizers
local K = keras.backend
local None = keras.None
local T = keras.tensor

local function cfg(layer) return L.serialize(layer).config end

local function raises(msg, fn)
  local ok, err = pcall(fn)
  assert.is_false(ok, "expected an error: " .. msg)
  err = tostring(err)
  assert.truthy(err:find(msg, 1, true), "expected '" .. msg .. "' in '" .. err .. "'")
end

local function maxdiff(a, b) return (a - b):abs():max() end

local DIR
setup(function()
  local p = io.popen("mktemp -d /tmp/lkeras-signatures-XXXXXX")
  DIR = p:read("l")
  p:close()
end)
teardown(function() os.execute("rm -rf '" .. DIR .. "'") end)

-- ---- the rule ----

describe("the call forms", function()
  it("reads positional values, then an options table, as Keras's positional then keyword arguments", function()
    local d = L.Dense(4, "relu", false, {name = "sig_dense"})
    local c = cfg(d)
    assert.same({4, "relu", false, "sig_dense"}, {c.units, c.activation, c.use_bias, c.name})
  end)

  it("reads one table whose array part holds the positional values the same way", function()
    local c = cfg(L.Dense{4, "relu", false, name = "sig_dense_t"})
    assert.same({4, "relu", false, "sig_dense_t"}, {c.units, c.activation, c.use_bias, c.name})
  end)

  it("skips a positional argument given as nil, which keeps its default", function()
    local c = cfg(L.Dense(4, nil, false))
    assert.same({"linear", false}, {c.activation, c.use_bias})
  end)

  it("reads a trailing list as a value where Keras takes a tuple (Conv2D(32, (3, 3)))", function()
    local c = cfg(L.Conv2D(8, {3, 3}))
    assert.same({3, 3}, c.kernel_size)
    c = cfg(L.Conv2D(8, {3, 3}, {activation = "relu"}))
    assert.same({{3, 3}, "relu"}, {c.kernel_size, c.activation})
  end)

  it("reads a lone list of sizes as the shape argument, and a lone table of them as the one-table form", function()
    assert.same({3, 4}, cfg(L.Reshape({3, 4})).target_shape)
    assert.same({3, 4}, cfg(L.Reshape{{3, 4}}).target_shape)
    assert.same({3, 4}, cfg(L.Reshape({3, 4}, {name = "sig_reshape"})).target_shape)
  end)

  it("refuses too many positional arguments", function()
    raises("Embedding: too many positional arguments", function()
      L.Embedding(10, 4, "uniform", nil, nil, nil, false, 3, "extra")
    end)
    raises("Concatenate: too many positional arguments", function() L.Concatenate(1, 2) end)
    raises("Add: takes no positional arguments, got 1", function() L.Add(1) end)
    raises("fit: too many positional arguments", function()
      local m = keras.Sequential{L.Dense(1, {input_dim = 1})}
      m:compile("sgd", "mse")
      m:fit(T.zeros{2, 1}, T.zeros{2, 1}, 1, 1, 0, nil, 0, nil, true, nil, nil, 0, nil, nil, "extra")
    end)
    raises("SGD: takes at most 4 positional arguments (lr, momentum, decay, nesterov), got 5", function()
      O.SGD(0.1, 0.9, 0, false, 1)
    end)
  end)

  it("refuses an argument given both positionally and by name", function()
    raises("Embedding: argument 'output_dim' given twice", function() L.Embedding(10, 4, {output_dim = 3}) end)
    raises("Conv2D: argument 'kernel_size' given twice", function() L.Conv2D(8, 3, {kernel_size = 3}) end)
    raises("EarlyStopping: argument 'patience' given twice", function()
      C.EarlyStopping("loss", 0, 2, {patience = 3})
    end)
    raises("pad_sequences: argument 'maxlen' given twice", function()
      keras.preprocessing.sequence.pad_sequences({{1}}, 2, {maxlen = 3})
    end)
    raises("Adam: got multiple values for argument 'beta_1'", function() O.Adam(0.1, 0.8, {beta_1 = 0.7}) end)
  end)

  it("refuses an options table that is not last, or that holds positional values after positional ones", function()
    raises("Dense: the options table must be the last argument", function() L.Dense({units = 2}, "relu") end)
    raises("Dense: positional arguments go before the options table", function() L.Dense(2, {"relu"}) end)
    raises("concatenate: give the options in the list of inputs or after it, not both", function()
      local a, b = keras.Input{2}, keras.Input{2}
      L.concatenate({a, b, axis = 1}, -1)
    end)
  end)

  it("points its errors at the caller's line", function()
    local m = keras.Sequential{L.Dense(1, {input_dim = 1})}
    local calls = {
      function() L.Embedding(10, 4, {output_dim = 3}) end,
      function() keras.Input({3}, {shape = {3}}) end,
      function() keras.Model(1, 2, 3, 4) end,
      function() m:fit(T.zeros{1, 1}, T.zeros{1, 1}, {bogus = 1}) end,
      function() O.SGD(0.1, {lr = 0.2}) end,
      function() C.EarlyStopping("loss", {bogus = 1}) end,
      function() C.ModelCheckpoint("x.h5", {bogus = 1}) end,
      function() I.RandomNormal(0, 1, 2, 3) end,
      function() R.l1(1, 2) end,
      function() keras.preprocessing.sequence.pad_sequences({{1}}, 1, {maxlen = 2}) end,
      function() keras.preprocessing.text.Tokenizer(1, {num_words = 2}) end,
      function() keras.utils.to_categorical({1}, 2, "float32", 4) end,
      function() m:save(DIR .. "/never.h5", true, true, 4) end,
    }
    for i, f in ipairs(calls) do
      local ok, err = pcall(f)
      assert.is_false(ok)
      assert.truthy(tostring(err):match("^[^:]*signatures_spec%.lua:%d+: "), "call " .. i .. ": " .. tostring(err))
    end
  end)

  it("keras._args.merge gathers both forms into one table for callables without a fixed signature", function()
    local merge = keras._args.merge
    assert.same({64, "relu", name = "a"}, merge("f", 1, 64, "relu", {name = "a"}))
    assert.same({64, "relu", name = "a"}, merge("f", 1, {64, "relu", name = "a"}))
    assert.same({64, {3, 3}}, merge("f", 1, 64, {3, 3}))
    assert.same({{3, 3}}, merge("f", 1, {{3, 3}}))
    assert.same({64}, merge("f", 1, 64, {}))
    raises("f: positional arguments go before the options table", function() merge("f", 1, 64, {3, name = "a"}) end)
  end)

  it("names an unknown argument", function()
    raises("Dot: unknown argument 'axis'", function() L.Dot(1, {axis = 1}) end)
    raises("Add: unknown argument 'axis'", function() L.Add{axis = 1} end)
    raises("predict: unknown argument 'callbacks'", function()
      local m = keras.Sequential{L.Dense(1, {input_dim = 1})}
      m:predict(T.zeros{1, 1}, {callbacks = {}})
    end)
  end)
end)

-- ---- layers ----

describe("core layers, positionally", function()
  it("Dense(units, activation, use_bias, kernel_initializer, bias_initializer, ...)", function()
    local d = L.Dense(3, "tanh", true, "zeros", "ones", R.l2(0.5))
    local c = cfg(d)
    assert.same({3, "tanh", true, "Zeros", "Ones"}, {c.units, c.activation, c.use_bias,
      d.kernel_initializer.class_name, d.bias_initializer.class_name})
    assert.same({l1 = 0.0, l2 = 0.5}, c.kernel_regularizer.config)
  end)

  it("Activation(activation), Dropout(rate), Flatten(data_format), RepeatVector(n), Permute(dims)", function()
    assert.equal("sigmoid", cfg(L.Activation("sigmoid")).activation)
    assert.equal(0.3, cfg(L.Dropout(0.3)).rate)
    assert.equal("channels_last", cfg(L.Flatten("channels_last")).data_format)
    assert.equal(3, cfg(L.RepeatVector(3)).n)
    assert.same({2, 1}, cfg(L.Permute({2, 1})).dims)
  end)

  it("Dropout(rate, noise_shape, seed) takes noise_shape positionally and refuses what it cannot do", function()
    assert.same({None, 1, 4}, cfg(L.Dropout(0.5, {None, 1, 4})).noise_shape)
    raises("Dropout: noise_shape[1] must be a size >= 1 or None, got 0", function() L.Dropout(0.5, {0, 4}) end)
    raises("Dropout: a per-layer seed is not supported", function() L.Dropout(0.5, nil, 42) end)
    raises("Flatten: data_format channels_first is not supported", function() L.Flatten("channels_first") end)
  end)

  it("Lambda(function, output_shape, mask, arguments)", function()
    local f = function(x, a) return K.scale(x, a.k) end
    local lam = L.Lambda(f, nil, nil, {k = 3})
    assert.equal(3, lam.arguments.k)
    local x = keras.Input{2}
    local m = keras.Model(x, lam(x))
    assert.same({{3, 6}}, m:predict(T{{1, 2}}):totable())
  end)

  it("Lambda's output_shape must agree with the function's output; mask is refused", function()
    local double = function(t) return K.scale(t, 2) end
    local x = keras.Input{4}
    assert.same({None, 4}, K.int_shape(L.Lambda(double, {4})(x)))
    assert.same({None, 4}, K.int_shape(L.Lambda(double, function(s) return {s[1], s[2]} end)(x)))
    raises("output_shape (None, 3) does not match the function's output (None, 4)", function()
      L.Lambda(double, {3})(x)
    end)
    raises("Lambda: mask is not supported", function() L.Lambda(double, nil, function() end) end)
  end)

  it("BatchNormalization(axis, momentum, epsilon, center, scale, ...)", function()
    local c = cfg(L.BatchNormalization(1, 0.9, 1e-4, false, true, "zeros", "ones"))
    assert.same({1, 0.9, 1e-4, false, true}, {c.axis, c.momentum, c.epsilon, c.center, c.scale})
  end)

  it("LeakyReLU(alpha), ELU(alpha), ThresholdedReLU(theta), Softmax(axis), ReLU(max_value, negative_slope)", function()
    assert.equal(0.2, cfg(L.LeakyReLU(0.2)).alpha)
    assert.equal(0.5, cfg(L.ELU(0.5)).alpha)
    assert.equal(0.7, cfg(L.ThresholdedReLU(0.7)).theta)
    assert.equal(1, cfg(L.Softmax(1)).axis)
    local relu = L.ReLU(6, 0.1)
    assert.same({6, 0.1}, {relu.max_value, relu.negative_slope})
    -- relu with slope 0.1 below 0 and a cap of 6: -10 -> -1, 3 -> 3, 10 -> 6
    local x = keras.Input{3}
    assert.same({{-1, 3, 6}}, keras.Model(x, relu(x)):predict(T{{-10, 3, 10}}):totable())
  end)

  it("PReLU(alpha_initializer, alpha_regularizer, alpha_constraint, shared_axes)", function()
    local p = L.PReLU("ones", nil, nil, {1})
    local x = keras.Input{3, 2}
    local m = keras.Model(x, p(x))
    assert.same({1, 2}, p:get_weights()[1].shape)   -- alpha shared along axis 1
    assert.same({{{-1, 2}, {3, -4}, {5, 6}}}, m:predict(T{{{-1, 2}, {3, -4}, {5, 6}}}):totable())
  end)

  it("Input(shape, batch_shape, name, dtype) and InputLayer(input_shape, batch_size, batch_input_shape)", function()
    assert.same({None, 4, 2}, K.int_shape(keras.Input({4, 2})))
    assert.same({None, 4, 2}, K.int_shape(keras.Input{{4, 2}}))
    local named = keras.Input({5}, nil, "sig_in")
    assert.equal("sig_in", named:meta().layer.name)
    assert.same({7, 3}, K.int_shape(keras.Input(nil, {7, 3})))
    assert.same({None, 5}, L.InputLayer({5}).output_shape)
    assert.same({2, 5}, L.InputLayer({5}, 2).output_shape)
    raises("Input: sparse inputs are not supported", function() keras.Input({5}, nil, nil, nil, true) end)
  end)
end)

describe("merge layers, positionally", function()
  local a, b
  before_each(function() a, b = keras.Input{2, 3}, keras.Input{2, 3} end)

  it("Concatenate(axis) and concatenate(inputs, axis)", function()
    assert.equal(-1, cfg(L.Concatenate(-1)).axis)
    assert.same({None, 4, 3}, K.int_shape(L.Concatenate(1)({a, b})))
    assert.same({None, 2, 6}, K.int_shape(L.concatenate({a, b}, -1)))
    assert.same({None, 4, 3}, K.int_shape(L.concatenate({a, b}, 1, {name = "sig_cat"})))
    assert.same({None, 4, 3}, K.int_shape(L.concatenate{a, b, axis = 1}))
  end)

  it("Dot(axes, normalize) and dot(inputs, axes, normalize)", function()
    local c = cfg(L.Dot(2, true))
    assert.same({2, true}, {c.axes, c.normalize})
    assert.same({1, 2}, cfg(L.Dot({1, 2})).axes)
    local x, y = keras.Input{3}, keras.Input{3}
    local m = keras.Model({x, y}, L.dot({x, y}, 1, true))
    -- cosine of (1, 0, 0) and (1, 1, 0): 1 / sqrt(2)
    local v = m:predict{T{{1, 0, 0}}, T{{1, 1, 0}}}:get(1, 1)
    assert.near(1 / math.sqrt(2), v, 1e-6)
    m = keras.Model({x, y}, L.dot({x, y}, 1))
    assert.near(1, m:predict{T{{1, 0, 0}}, T{{1, 1, 0}}}:get(1, 1), 1e-6)
  end)

  it("add(inputs) and the other functions take the inputs only", function()
    assert.same({None, 2, 3}, K.int_shape(L.add({a, b}, {name = "sig_add"})))
    assert.same({None, 2, 3}, K.int_shape(L.multiply({a, b})))
  end)
end)

describe("convolution layers, positionally", function()
  it("Conv2D(filters, kernel_size, strides, padding, data_format, dilation_rate, activation, use_bias)", function()
    local c = cfg(L.Conv2D(8, {3, 3}, {2, 2}, "same", nil, 1, "relu", false))
    assert.same({8, {3, 3}, {2, 2}, "same", {1, 1}, "relu", false},
      {c.filters, c.kernel_size, c.strides, c.padding, c.dilation_rate, c.activation, c.use_bias})
  end)

  it("Conv1D(filters, kernel_size, strides, padding, data_format, dilation_rate)", function()
    local c = cfg(L.Conv1D(4, 3, 1, "causal", "channels_last", 2))
    assert.same({4, {3}, "causal", {2}}, {c.filters, c.kernel_size, c.padding, c.dilation_rate})
  end)

  it("MaxPooling2D(pool_size, strides, padding), AveragePooling1D(pool_size, strides, padding)", function()
    local c = cfg(L.MaxPooling2D({3, 3}, {1, 1}, "same"))
    assert.same({{3, 3}, {1, 1}, "same"}, {c.pool_size, c.strides, c.padding})
    c = cfg(L.AveragePooling1D(3, 2, "valid"))
    assert.same({{3}, {2}, "valid"}, {c.pool_size, c.strides, c.padding})
  end)

  it("GlobalAveragePooling1D(data_format), GlobalMaxPooling2D(data_format)", function()
    assert.equal("channels_last", cfg(L.GlobalAveragePooling1D("channels_last")).data_format)
    raises("GlobalMaxPooling2D: data_format 'channels_first' is not supported", function()
      L.GlobalMaxPooling2D("channels_first")
    end)
  end)

  it("ZeroPadding2D(padding), Cropping2D(cropping), ZeroPadding1D(padding), Cropping1D(cropping)", function()
    assert.same({{1, 2}, {3, 4}}, cfg(L.ZeroPadding2D({{1, 2}, {3, 4}})).padding)
    assert.same({{1, 1}, {2, 2}}, cfg(L.ZeroPadding2D({1, 2})).padding)
    assert.same({{1, 1}, {2, 2}}, cfg(L.Cropping2D({{1, 1}, {2, 2}})).cropping)
    assert.same({2, 2}, cfg(L.ZeroPadding1D(2)).padding)
    assert.same({1, 2}, cfg(L.Cropping1D({1, 2})).cropping)
  end)

  it("UpSampling2D(size, data_format, interpolation), UpSampling1D(size), SpatialDropout1D/2D(rate)", function()
    local c = cfg(L.UpSampling2D({2, 3}, nil, "nearest"))
    assert.same({{2, 3}, "nearest"}, {c.size, c.interpolation})
    assert.equal(3, cfg(L.UpSampling1D(3)).size)
    assert.equal(0.2, cfg(L.SpatialDropout1D(0.2)).rate)
    assert.equal(0.3, cfg(L.SpatialDropout2D(0.3, "channels_last")).rate)
  end)
end)

describe("sequence layers, positionally", function()
  it("Embedding(input_dim, output_dim, {input_length = 10}) (issue 11)", function()
    local e = L.Embedding(1000, 64, {input_length = 10})
    local c = cfg(e)
    assert.same({1000, 64, 10}, {c.input_dim, c.output_dim, c.input_length})
    local m = keras.Sequential{e}
    assert.same({None, 10, 64}, m.output_shape)
  end)

  it("Embedding(input_dim, output_dim, embeddings_initializer, ..., mask_zero, input_length)", function()
    local e = L.Embedding(50, 8, "zeros", nil, nil, nil, true, 5)
    local c = cfg(e)
    assert.same({"Zeros", true, 5}, {e.embeddings_initializer.class_name, c.mask_zero, c.input_length})
  end)

  it("LSTM(units, activation, recurrent_activation, use_bias, ..., unit_forget_bias, ..., return_sequences)", function()
    local l = L.LSTM(4, "relu", "sigmoid", false, "zeros", "zeros", "ones", false, nil, nil, nil, nil, nil, nil, nil,
                     0.1, 0.2, 2, true, true, true, false, false)
    local c = cfg(l)
    assert.same({4, "relu", "sigmoid", false, "Zeros", "Ones", false, 0.1, 0.2, 2, true, true, true},
      {c.units, c.activation, c.recurrent_activation, c.use_bias, l.kernel_initializer.class_name,
       l.bias_initializer.class_name, c.unit_forget_bias, c.dropout, c.recurrent_dropout, c.implementation,
       c.return_sequences, c.return_state, c.go_backwards})
  end)

  it("GRU(units, activation, recurrent_activation, ..., implementation, return_sequences, ..., reset_after)", function()
    local c = cfg(L.GRU(3, "tanh", "sigmoid", true, nil, nil, nil, nil, nil, nil, nil, nil, nil, nil, 0, 0, 1,
                        true, false, false, false, false, true))
    assert.same({3, "sigmoid", true, true}, {c.units, c.recurrent_activation, c.return_sequences, c.reset_after})
  end)

  it("SimpleRNN(units, activation, use_bias, ..., dropout, recurrent_dropout, return_sequences)", function()
    local c = cfg(L.SimpleRNN(5, "relu", false, nil, nil, nil, nil, nil, nil, nil, nil, nil, nil, 0.25, 0, true))
    assert.same({5, "relu", false, 0.25, true}, {c.units, c.activation, c.use_bias, c.dropout, c.return_sequences})
  end)

  it("Masking(mask_value), Bidirectional(layer, merge_mode), TimeDistributed(layer)", function()
    assert.equal(-1, cfg(L.Masking(-1)).mask_value)
    local bi = L.Bidirectional(L.LSTM(4), "sum")
    assert.equal("sum", cfg(bi).merge_mode)
    local x = keras.Input{3, 2}
    assert.same({None, 4}, K.int_shape(bi(x)))
    local td = L.TimeDistributed(L.Dense(6))
    assert.same({None, 3, 6}, K.int_shape(td(x)))
  end)

  it("calls a recurrent layer as RNN.__call__(inputs, initial_state)", function()
    keras.random.seed(1)
    local x, h, c = keras.Input{3, 2}, keras.Input{4}, keras.Input{4}
    local lstm = L.LSTM(4)
    local m1 = keras.Model({x, h, c}, lstm(x, {h, c}))
    local m2 = keras.Model({x, h, c}, lstm(x, {initial_state = {h, c}}))
    local xs, hs, cs = keras.random.random{2, 3, 2}, keras.random.random{2, 4}, keras.random.random{2, 4}
    assert.equal(0, maxdiff(m1:predict{xs, hs, cs}, m2:predict{xs, hs, cs}))
    assert.is_true(maxdiff(m1:predict{xs, hs, cs}, m1:predict{xs, hs * 0, cs * 0}) > 1e-3)   -- the states are used
  end)

  it("Bidirectional(layer, merge_mode, weights) starts from the given weights", function()
    local x = keras.Input{3, 1}
    local b = L.Bidirectional(L.SimpleRNN(2), "concat")
    b(x)
    local w = b:get_weights()
    for i, t in ipairs(w) do w[i] = t + 1 end
    local b2 = L.Bidirectional(L.SimpleRNN(2), "concat", w)
    b2(x)
    local w2 = b2:get_weights()
    assert.equal(#w, #w2)
    for i = 1, #w do assert.equal(0, maxdiff(w[i], w2[i])) end
  end)
end)

-- ---- models ----

describe("models, positionally", function()
  local X, Y
  before_each(function()
    keras.random.seed(11)
    X = keras.random.random{8, 3}
    Y = keras.random.random{8, 2}
  end)

  local function model(name)
    keras.random.seed(12)
    local m = keras.Sequential({L.Dense(2, nil, true, {input_dim = 3})}, name)
    m:compile(O.SGD(0.1), "mse", {"mae"})
    return m
  end

  it("Model(inputs, outputs, name) and Sequential(layers, name)", function()
    local a, b = keras.Input{2}, keras.Input{2}
    local o1, o2 = L.Dense(1)(a), L.Dense(1)(b)
    local m = keras.Model({a, b}, {o1, o2}, "sig_model")
    assert.same({"sig_model", 2, 2}, {m.name, #m.inputs, #m.outputs})
    assert.equal("sig_seq", model("sig_seq").name)
    assert.equal("sig_seq2", keras.Sequential({L.Dense(1, {input_dim = 1})}, {name = "sig_seq2"}).name)
  end)

  it("compile(optimizer, loss, metrics)", function()
    local m = model()
    assert.same({"loss", "mean_absolute_error"}, m.metrics_names)
    assert.equal(0.1, m.optimizer:get_config().lr)
  end)

  it("fit(x, y, batch_size, epochs, verbose, callbacks, validation_split, ...)", function()
    local m = model()
    local seen = {}
    local cb = C.LambdaCallback(nil, function(epoch) seen[#seen + 1] = epoch end)
    local h = m:fit(X, Y, 4, 3, 0, {cb}, 0.25)
    assert.same({4, 3, 0, 6, true}, {h.params.batch_size, h.params.epochs, h.params.verbose, h.params.samples,
                                     h.params.do_validation})
    assert.same({0, 1, 2}, seen)
    assert.equal(3, #h.history.val_loss)
  end)

  it("fit(..., validation_data, shuffle, class_weight, sample_weight, initial_epoch) as keywords do", function()
    local sw = T{1, 2, 1, 2, 1, 2, 1, 2}
    local m1, m2 = model(), model()
    local h1 = m1:fit(X, Y, 4, 3, 0, nil, 0, {X, Y}, false, nil, sw, 1)
    local h2 = m2:fit(X, Y, {batch_size = 4, epochs = 3, verbose = 0, validation_data = {X, Y}, shuffle = false,
                             sample_weight = sw, initial_epoch = 1})
    assert.same({1, 2}, h1.epoch)
    assert.same(h2.history.loss, h1.history.loss)
    assert.same(h2.history.val_loss, h1.history.val_loss)
    assert.equal(0, maxdiff(m1:get_weights()[1], m2:get_weights()[1]))
  end)

  it("fit{x, y, epochs = 2} is the one-table form", function()
    local h = model():fit{X, Y, 8, epochs = 2, verbose = 0}
    assert.same({8, 2}, {h.params.batch_size, h.params.epochs})
  end)

  it("evaluate(x, y, batch_size, verbose, sample_weight) and predict(x, batch_size, verbose)", function()
    local m = model()
    local sw = T{0, 1, 0, 1, 0, 1, 0, 1}
    local a1, b1 = m:evaluate(X, Y, 3, 0, sw)
    local a2, b2 = m:evaluate(X, Y, {batch_size = 3, verbose = 0, sample_weight = sw})
    assert.same({a2, b2}, {a1, b1})
    local c1 = m:evaluate(X, Y, 3, 0)
    assert.are_not.equal(c1, a1)   -- the weights were used
    assert.equal(0, maxdiff(m:predict(X, 3, 0), m:predict(X, {batch_size = 3})))
    raises("evaluate: steps is not supported", function() m:evaluate(X, Y, 3, 0, nil, 2) end)
    -- verbose = 1 draws the progress bar (routed away here) and predicts the same
    local printed = {}
    keras.set_print(function(s) printed[#printed + 1] = s end)
    local ok, p1 = pcall(m.predict, m, X, 3, 1)
    keras.set_print(nil)
    assert.is_true(ok, tostring(p1))
    assert.equal(0, maxdiff(p1, m:predict(X, 3, 0)))
    assert.truthy(table.concat(printed):find("8/8 [", 1, true))
  end)

  it("train_on_batch(x, y, sample_weight), test_on_batch(x, y, sample_weight)", function()
    local m = model()
    local sw = T{0, 1, 0, 1, 0, 1, 0, 1}
    local loss = m:test_on_batch(X, Y, sw)
    assert.equal(m:evaluate(X, Y, {batch_size = 8, verbose = 0, sample_weight = sw}), loss)
    local m2 = model()
    m:train_on_batch(X, Y, sw)
    m2:train_on_batch(X, Y, {sample_weight = sw})
    assert.equal(0, maxdiff(m:get_weights()[1], m2:get_weights()[1]))
  end)

  it("predict_classes(x, batch_size, verbose), predict_proba(x, batch_size, verbose)", function()
    local m = model()
    assert.same(m:predict(X):argmax(-1):totable(), m:predict_classes(X, 4, 0):totable())
    assert.equal(0, maxdiff(m:predict(X), m:predict_proba(X, 4)))
  end)

  it("reads a trailing table keyed by output names as data or per-output settings, not as options", function()
    keras.random.seed(3)
    local x = keras.Input({3}, nil, "sig_x")
    local m = keras.Model(x, {L.Dense(1, nil, true, {name = "main"})(x), L.Dense(2, nil, true, {name = "aux"})(x)})
    m:compile("sgd", {main = "mse", aux = "mae"}, nil, {main = 1.0, aux = 0.0})
    assert.same({"loss", "main_loss", "aux_loss"}, m.metrics_names)
    local ym, ya = keras.random.random{8, 1}, keras.random.random{8, 2}
    local loss, main, aux = m:evaluate({sig_x = X}, {main = ym, aux = ya}, 8, 0)
    -- loss_weights {main = 1, aux = 0}: the total is the main loss alone
    assert.near(main, loss, 1e-6)
    assert.is_true(aux > 0)
    -- mse of the main head, computed here in float64 from its predictions
    local p, want = m:predict(X)[1], 0
    for i = 1, 8 do want = want + (p:get(i, 1) - ym:get(i, 1)) ^ 2 end
    assert.near(want / 8, main, 1e-5)
    local h = m:fit(X, {main = ym, aux = ya}, {epochs = 1, verbose = 0})
    assert.equal(1, #h.history.loss)
  end)

  it("predict{xa, xb} is the list of inputs", function()
    local a, b = keras.Input{1}, keras.Input{1}
    local m = keras.Model({a, b}, L.add({a, b}))
    assert.same({{5}}, m:predict{T{{2}}, T{{3}}}:totable())
  end)

  it("summary(line_length, positions, print_fn) and get_layer(name, index)", function()
    local m = model()
    local lines = {}
    m:summary(50, nil, function(s) lines[#lines + 1] = s end)
    assert.equal(50, #lines[2])   -- the first rule is line_length wide
    local first = m.layers[1]
    assert.equal(first, m:get_layer(first.name))
    assert.equal(first, m:get_layer(nil, 1))
    assert.equal(first, m:get_layer{index = 1})
  end)

  it("save(path, overwrite, include_optimizer), load_model(path, custom_objects, compile)", function()
    local m = model()
    local p = DIR .. "/m.h5"
    m:save(p, true, false)
    raises("save: '" .. p .. "' exists and overwrite is false", function() m:save(p, false) end)
    local back = keras.models.load_model(p, nil, false)
    assert.is_nil(back.optimizer)
    assert.equal(0, maxdiff(m:get_weights()[1], back:get_weights()[1]))
  end)

  it("model_from_json(json_string, custom_objects), model_from_config(config, custom_objects)", function()
    local m = model()
    local j = m:to_json()
    for _, back in ipairs{keras.models.model_from_json(j), keras.models.model_from_json(j, {}),
                          keras.models.model_from_json(j, {custom_objects = {}}),
                          keras.models.model_from_config({class_name = "Sequential", config = m:get_config()},
                                                         {custom_objects = {}})} do
      assert.same(m.layers[1].output_shape, back.layers[1].output_shape)
    end
    raises("model_from_json: unknown argument 'compile'", function()
      keras.models.model_from_json(j, {custom_objects = {}, compile = false})
    end)
    local d = L.deserialize(L.serialize(L.Dense(7, "relu")), {custom_objects = {}})
    assert.same({7, "relu"}, {cfg(d).units, cfg(d).activation})
  end)

  it("clone_model(model, input_tensors)", function()
    local m = model()
    local x = keras.Input({3}, nil, "sig_clone_in")
    local c = keras.models.clone_model(m, x)
    assert.equal(x, c.inputs[1])
    assert.equal(x, keras.models.clone_model(m, {x}).inputs[1])
  end)

  it("save_weights(path, overwrite), load_weights(path, by_name, skip_mismatch)", function()
    local m, m2 = model(), model()
    m:fit(X, Y, 4, 1, 0)
    local p = DIR .. "/w.h5"
    m:save_weights(p, true)
    local before = m2:get_weights()[1]
    m2:load_weights(p, true, true)   -- by_name: the two models' layers have different names
    assert.equal(0, maxdiff(before, m2:get_weights()[1]))
    m2:load_weights(p, false)        -- in order
    assert.equal(0, maxdiff(m:get_weights()[1], m2:get_weights()[1]))
    raises("load_weights: reshape is not supported", function() m2:load_weights(p, false, false, true) end)
  end)
end)

-- ---- optimizers, callbacks, initializers, regularizers ----

describe("optimizers, positionally", function()
  it("SGD(lr, momentum, decay, nesterov)", function()
    assert.same({lr = 0.1, momentum = 0.9, decay = 0.01, nesterov = true}, O.SGD(0.1, 0.9, 0.01, true):get_config())
  end)

  it("Adam(lr, beta_1, beta_2, epsilon, decay, amsgrad) and the others in Keras's order", function()
    local function close(want, got)
      for k, v in pairs(want) do
        if type(v) == "number" then
          assert.near(v, got[k], 1e-7 * math.max(1, math.abs(v)))
        else
          assert.equal(v, got[k])
        end
      end
    end
    close({lr = 0.01, beta_1 = 0.8, beta_2 = 0.99, epsilon = 1e-6, decay = 0.1, amsgrad = true},
      O.Adam(0.01, 0.8, 0.99, 1e-6, 0.1, true):get_config())
    close({lr = 0.01, rho = 0.8, epsilon = 1e-6, decay = 0.1}, O.RMSprop(0.01, 0.8, 1e-6, 0.1):get_config())
    close({lr = 0.02, epsilon = 1e-6, decay = 0.1}, O.Adagrad(0.02, 1e-6, 0.1):get_config())
    close({lr = 0.5, rho = 0.9, epsilon = 1e-6, decay = 0.1}, O.Adadelta(0.5, 0.9, 1e-6, 0.1):get_config())
    close({lr = 0.003, beta_1 = 0.8, beta_2 = 0.99, epsilon = 1e-6, decay = 0.1},
      O.Adamax(0.003, 0.8, 0.99, 1e-6, 0.1):get_config())
    close({lr = 0.003, beta_1 = 0.8, beta_2 = 0.99, epsilon = 1e-6, schedule_decay = 0.005},
      O.Nadam(0.003, 0.8, 0.99, 1e-6, 0.005):get_config())
  end)
end)

describe("callbacks, positionally", function()
  it("EarlyStopping(monitor, min_delta, patience, verbose, mode, baseline, restore_best_weights)", function()
    local es = C.EarlyStopping("loss", 0.1, 3, 0, "max", 0.5, true)
    assert.same({"loss", 0.1, 3, 0, 0.5, true}, {es.monitor, es.min_delta, es.patience, es.verbose, es.baseline,
                                                 es.restore_best_weights})
    assert.is_true(es.better(1, 0.5))   -- mode max: larger is better by more than min_delta
    assert.is_false(es.better(0.55, 0.5))
  end)

  it("ModelCheckpoint(filepath, monitor, verbose, save_best_only, save_weights_only, mode, period)", function()
    local mc = C.ModelCheckpoint(DIR .. "/c.h5", "loss", 0, true, true, "max", 2)
    assert.same({DIR .. "/c.h5", "loss", 0, true, true, 2}, {mc.filepath, mc.monitor, mc.verbose, mc.save_best_only,
                                                            mc.save_weights_only, mc.period})
    assert.is_true(mc.better(2, 1))
  end)

  it("ReduceLROnPlateau(monitor, factor, patience, verbose, mode, min_delta, cooldown, min_lr)", function()
    local r = C.ReduceLROnPlateau("loss", 0.5, 2, 0, "min", 0.01, 1, 1e-5)
    assert.same({"loss", 0.5, 2, 0.01, 1, 1e-5}, {r.monitor, r.factor, r.patience, r.min_delta, r.cooldown, r.min_lr})
    assert.is_true(r.better(0.5, 1))
  end)

  it("CSVLogger(filename, separator, append), LearningRateScheduler(schedule, verbose)", function()
    local c = C.CSVLogger(DIR .. "/log.csv", ";", true)
    assert.same({DIR .. "/log.csv", ";", true}, {c.filename, c.sep, c.append})
    local f = function() return 0.1 end
    local s = C.LearningRateScheduler(f, 1)
    assert.same({f, 1}, {s.schedule, s.verbose})
  end)

  it("ProgbarLogger(count_mode, stateful_metrics) refuses what it cannot do", function()
    raises("ProgbarLogger: count_mode must be 'samples' or 'steps', got 'batches'",
      function() C.ProgbarLogger("batches") end)
    assert.is_true(C.ProgbarLogger("steps")._steps)
    raises("ProgbarLogger: stateful_metrics is not supported", function() C.ProgbarLogger("samples", {"acc"}) end)
  end)

  it("LambdaCallback(on_epoch_begin, on_epoch_end, on_batch_begin, on_batch_end, on_train_begin, ...)", function()
    local calls = {}
    local cb = C.LambdaCallback(nil, nil, nil, nil, function() calls[#calls + 1] = "begin" end,
                                function() calls[#calls + 1] = "end" end)
    assert.equals(C.Callback.on_epoch_end, cb.on_epoch_end)   -- the base's no-op: nothing given there
    cb:on_train_begin({})
    cb:on_train_end({})
    assert.same({"begin", "end"}, calls)
  end)
end)

describe("initializers, positionally", function()
  it("take Keras's arguments in order", function()
    assert.same({mean = 1, stddev = 2, seed = 3}, I.RandomNormal(1, 2, 3).config)
    assert.same({minval = -1, maxval = 1}, I.RandomUniform(-1, 1).config)
    assert.same({mean = 0, stddev = 0.1}, I.TruncatedNormal(0, 0.1).config)
    assert.same({scale = 2, mode = "fan_out", distribution = "uniform"},
      I.VarianceScaling(2, "fan_out", "uniform").config)
    assert.same({gain = 2}, I.Orthogonal(2).config)
    assert.same({gain = 3}, I.Identity(3).config)
    assert.same({value = 5}, I.Constant(5).config)
    assert.equal(7, I.glorot_uniform(7).config.seed)
    raises("Zeros: takes no positional arguments, got 1", function() I.Zeros(1) end)
    raises("RandomNormal: stddev must be a number, got x", function() I.RandomNormal(0, "x") end)
  end)

  it("draw the same values from the same seed, and leave the global stream alone", function()
    keras.random.seed(5)
    local a = I.RandomUniform(2, 3, 9)({1000})
    local next1 = keras.random.random{3}
    keras.random.seed(5)
    local b = I.RandomUniform(2, 3, 9)({1000})
    local next2 = keras.random.random{3}
    assert.equal(0, maxdiff(a, b))
    assert.equal(0, maxdiff(next1, next2))
    assert.is_true(a:min() >= 2 and a:max() < 3)
    -- a different seed gives different values; no seed draws from the stream
    assert.is_true(maxdiff(a, I.RandomUniform(2, 3, 10)({1000})) > 0)
    local c = I.Constant(4)({2, 2})
    assert.same({{4, 4}, {4, 4}}, c:totable())
  end)
end)

describe("regularizers, positionally", function()
  it("l1(l), l2(l), l1_l2(l1, l2), L1L2(l1, l2) with Keras's defaults", function()
    assert.same({l1 = 0.3, l2 = 0}, R.l1(0.3).config)
    assert.same({l1 = 0, l2 = 0.2}, R.l2(0.2).config)
    assert.same({l1 = 0.1, l2 = 0.2}, R.l1_l2(0.1, 0.2).config)
    assert.same({l1 = 0.1, l2 = 0.01}, R.l1_l2(0.1).config)
    assert.same({l1 = 0.1, l2 = 0}, R.L1L2(0.1).config)    -- Keras's L1L2 defaults both to 0
    assert.same({l1 = 0.1, l2 = 0}, R.L1L2{l1 = 0.1}.config)
    assert.same({l1 = 0.01, l2 = 0}, R.l1().config)
  end)
end)

-- ---- preprocessing and utils ----

describe("preprocessing, positionally", function()
  local S, Tx = keras.preprocessing.sequence, keras.preprocessing.text

  it("pad_sequences(sequences, maxlen, dtype, padding, truncating, value)", function()
    local p = S.pad_sequences({{1, 2, 3}, {4}}, 2, "int32", "post", "post", 9)
    assert.same({{1, 2}, {4, 9}}, p:totable())
    assert.same({{2, 3}, {0, 4}}, S.pad_sequences({{1, 2, 3}, {4}}, 2):totable())
    assert.same({{1, 2, 3}, {0, 0, 4}}, S.pad_sequences({{1, 2, 3}, {4}}):totable())
    assert.same({{2, 3}, {0, 4}}, S.pad_sequences{{{1, 2, 3}, {4}}, maxlen = 2}:totable())
  end)

  it("Tokenizer(num_words, filters, lower, split, char_level, oov_token)", function()
    local tok = Tx.Tokenizer(3, "", false, ",", false, "OOV")
    assert.same({3, "", false, ",", false, "OOV"}, {tok.num_words, tok.filters, tok.lower, tok.split, tok.char_level,
                                                    tok.oov_token})
    tok:fit_on_texts({"A,b,b", "c"})
    -- word_index: OOV first, then by count: b (2), then A, c
    assert.same({OOV = 1, b = 2, A = 3, c = 4}, tok.word_index)
    assert.same({{2, 1}}, tok:texts_to_sequences({"b,zz"}))
  end)

  it("texts_to_matrix(texts, mode) in both forms, sequences_to_matrix(sequences, mode)", function()
    local tok = Tx.Tokenizer(4)
    tok:fit_on_texts({"a a b", "b c"})
    local want = {{0, 2, 1, 0}}   -- counts of a (index 2) and b (index 1): word_index b = 1, a = 2, c = 3
    assert.same(want, tok:texts_to_matrix({"a a b"}, "count"):totable())
    assert.same(want, tok:texts_to_matrix({"a a b"}, {mode = "count"}):totable())
    assert.same({{0, 0.5, 0.5, 0}}, tok:sequences_to_matrix({{1, 2}}, "freq"):totable())
  end)

  it("text_to_word_sequence(text, filters, lower, split)", function()
    assert.same({"A", "b c"}, Tx.text_to_word_sequence("A,b c", "", false, ","))
  end)
end)

describe("utils, positionally", function()
  it("to_categorical(y, num_classes, dtype)", function()
    assert.same({{1, 0, 0, 0}, {0, 0, 1, 0}}, keras.utils.to_categorical({0, 2}, 4):totable())
    assert.same({{1, 0, 0}}, keras.utils.to_categorical({0}, {num_classes = 3}):totable())
    assert.same({{0, 1}}, keras.utils.to_categorical({1}, 2, "float32"):totable())
    raises("to_categorical: dtype must be float32", function() keras.utils.to_categorical({1}, 2, "int32") end)
  end)

  it("normalize(x, axis, order)", function()
    -- order 1 along axis 0: each column over the sum of its absolute values
    local n = keras.utils.normalize(T{{1, 2}, {3, 2}}, 0, 1)
    assert.same({{0.25, 0.5}, {0.75, 0.5}}, n:totable())
  end)
end)

describe("one table that holds the data", function()
  local text, sequence = keras.preprocessing.text, keras.preprocessing.sequence
  it("is the one-table form when its first place holds the whole argument", function()
    assert.same({"Hello", "World"}, text.text_to_word_sequence{"Hello World", lower = false})
    assert.same({"hello", "world"}, text.text_to_word_sequence{"Hello World"})
    assert.same({{0, 1, 2}, {0, 0, 3}}, sequence.pad_sequences{{{1, 2}, {3}}, maxlen = 3}:totable())
    assert.same({{0, 1, 2}, {0, 0, 3}}, sequence.pad_sequences({{1, 2}, {3}}, 3):totable())
  end)
end)
