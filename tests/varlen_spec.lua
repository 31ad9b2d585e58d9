-- None-length axes: Input{shape={keras.None, n}}, Embedding without
-- input_length, and the layers that work over a time axis of any length.
-- A model with a None axis must give, for every length, what a model built
-- at that fixed length gives with the same weights (outputs, masks, and the
-- weights after training steps, i.e. the gradients); the fixed-length path is
-- itself checked against float64 references in rnn_spec.lua and conv_spec.lua.
local keras = require "keras"
local L = keras.layers
local None = keras.None

local U_ = dofile("tests/lib/spec_util.lua")
local flat = U_.flat

local function assert_close(want, got, tol)
  tol = tol or 1e-5
  local g = flat(type(got) == "table" and got or got:totable())
  local w = flat(type(want) == "table" and want or want:totable())
  assert.equal(#w, #g, "number of elements")
  for i = 1, #w do
    if not (math.abs(g[i] - w[i]) <= tol * math.max(1, math.abs(w[i]))) then
      error(string.format("element %d is %.9g, expected %.9g", i, g[i], w[i]), 2)
    end
  end
end

local function assert_weights_close(a, b, tol)
  local wa, wb = a:get_weights(), b:get_weights()
  assert.equal(#wa, #wb)
  for i = 1, #wa do assert_close(wa[i], wb[i], tol) end
end

-- a model of `build` at a None length and twins at fixed lengths, same weights
local function twins(build, lengths)
  local m = build(None)
  local fixed = {}
  for _, T in ipairs(lengths) do
    fixed[T] = build(T)
    fixed[T]:set_weights(m:get_weights())
  end
  return m, fixed
end

local function ids(n, T, vocab, zeros_from)
  local t = keras.random.randint(vocab - 1, {n, T}) + 1
  if zeros_from then
    for i = 1, n do
      for j = 1, zeros_from[i] or 0 do t:set(i, j, 0) end   -- pre-padding
    end
  end
  return t
end

describe("None-length axes", function()
  it("show as None in shapes and in the summary", function()
    local inp = keras.Input{shape = {None, 5}}
    local y = L.LSTM(3, {return_sequences = true})(inp)
    local m = keras.Model{inp, L.Dense(2)(y)}
    assert.same({None, None, 5}, m.input_shape)
    assert.same({None, None, 2}, m.output_shape)
    local lines = {}
    m:summary{print_fn = function(s) lines[#lines + 1] = s end}
    assert.truthy(table.concat(lines, "\n"):find("(None, None, 3)", 1, true))
    local e = keras.Sequential{L.Embedding{10, 4}}
    assert.same({None, None}, e.input_shape)
    assert.same({None, None, 4}, e.output_shape)
  end)

  local function rnn_model(kind, retseq)
    return function(T)
      local inp = keras.Input{shape = {T, 3}}
      local y = L[kind](4, {return_sequences = retseq})(inp)
      if retseq then y = L.TimeDistributed(L.Dense(2))(y) else y = L.Dense(2)(y) end
      return keras.Model{inp, y}
    end
  end

  for _, kind in ipairs{"SimpleRNN", "GRU", "LSTM"} do
    for _, retseq in ipairs{false, true} do
      local what = string.format("%s (return_sequences=%s) gives what fixed-length models give", kind, tostring(retseq))
      it(what, function()
        keras.random.seed(3)
        local m, fixed = twins(rnn_model(kind, retseq), {2, 5, 9})
        for _, T in ipairs{5, 2, 9} do
          local x = keras.random.uniform({3, T, 3}, -1, 1)
          local got = m:predict(x)
          assert.same(retseq and {3, T, 2} or {3, 2}, got.shape)
          assert_close(fixed[T]:predict(x), got)
        end
      end)
    end
  end

  it("Embedding without input_length, masks, Bidirectional and merges give what fixed-length models give", function()
    keras.random.seed(5)
    local function build(T)
      local inp = keras.Input{shape = {T}}
      local e = L.Embedding{20, 4, mask_zero = true}(inp)
      local b = L.Bidirectional(L.GRU(3, {return_sequences = true}))(e)
      local l = L.LSTM(3, {return_sequences = true})(e)
      local c = L.concatenate{b, l}
      local s = L.add{L.Dense(9)(c), c}
      local h = L.LSTM(2)(s)
      return keras.Model{inp, h}
    end
    local m, fixed = twins(build, {4, 7})
    for _, T in ipairs{4, 7} do
      local x = ids(3, T, 20, {0, 2, 3})
      assert_close(fixed[T]:predict(x), m:predict(x))
    end
  end)

  it("TimeDistributed of a layer or a model over a None time axis gives what fixed-length twins give", function()
    keras.random.seed(21)
    local m, fixed = twins(function(T)
      local inner = keras.Sequential{L.Conv1D(3, 2, {input_shape = {5, 2}}), L.GlobalMaxPooling1D()}
      local inp = keras.Input{shape = {T, 5, 2}}
      local a = L.TimeDistributed(L.Conv1D(2, 2))(inp)
      local b = L.TimeDistributed(inner)(inp)
      local model = keras.Model{inp, L.LSTM(3)(L.concatenate{L.TimeDistributed(L.Flatten())(a), b})}
      model:compile{optimizer = keras.optimizers.SGD{lr = 0.3}, loss = "mse"}
      return model
    end, {4, 6})
    assert.same({None, None, 5, 2}, m.input_shape)
    for _, T in ipairs{6, 4} do
      local x = keras.random.uniform({2, T, 5, 2}, -1, 1)
      fixed[T]:set_weights(m:get_weights())
      assert_close(fixed[T]:predict(x), m:predict(x))
      local y = keras.random.uniform({2, 3}, -1, 1)
      assert.near(fixed[T]:train_on_batch(x, y), m:train_on_batch(x, y), 1e-5)
      assert_weights_close(fixed[T], m, 1e-5)
    end
  end)

  it("a model used as a layer gives what its fixed-length twin gives", function()
    keras.random.seed(19)
    local m, fixed = twins(function(T)
      local inner = keras.Sequential{L.LSTM(4, {return_sequences = true, input_shape = {T, 3}}), L.Dense(2)}
      local inp = keras.Input{shape = {T, 3}}
      return keras.Model{inp, L.GlobalMaxPooling1D()(inner(inp))}
    end, {6, 2})
    for _, T in ipairs{6, 2} do
      local x = keras.random.uniform({2, T, 3}, -1, 1)
      assert_close(fixed[T]:predict(x), m:predict(x))
    end
  end)

  it("masked padding changes nothing at any length", function()
    keras.random.seed(6)
    local m = keras.Sequential{L.Embedding{12, 3, mask_zero = true}, L.LSTM(4)}
    local short = keras.tensor{{3, 5, 7}}
    local padded = keras.tensor{{0, 0, 0, 3, 5, 7}}
    assert_close(m:predict(short), m:predict(padded))
    local x = keras.random.uniform({2, 6, 3}, -1, 1)
    local mm = keras.Sequential{L.Masking{0, input_shape = {None, 3}}, L.GRU(2)}
    local xp = keras.tensor.zeros{2, 9, 3}
    for i = 1, 2 do for t = 1, 6 do for k = 1, 3 do xp:set(i, t + 3, k, x:get(i, t, k)) end end end
    assert_close(mm:predict(x), mm:predict(xp))
  end)

  it("Conv1D, pooling and global pooling give what fixed-length models give", function()
    keras.random.seed(7)
    local function build(T)
      return keras.Sequential{
        L.Conv1D(4, 3, {padding = "same", activation = "relu", input_shape = {T, 2}}),
        L.MaxPooling1D(2),
        L.Conv1D(3, 2, {strides = 2}),
        L.AveragePooling1D(2, {padding = "same"}),
        L.GlobalAveragePooling1D(),
      }
    end
    local m, fixed = twins(build, {9, 16})
    for _, T in ipairs{16, 9} do
      local x = keras.random.uniform({2, T, 2}, -1, 1)
      assert_close(fixed[T]:predict(x), m:predict(x))
    end
    local p, pf = twins(function(T)
      return keras.Sequential{L.ZeroPadding1D(2, {input_shape = {T, 3}}), L.Conv1D(2, 3), L.UpSampling1D(2),
                              L.Cropping1D({1, 2}), L.SpatialDropout1D(0.2), L.GlobalMaxPooling1D()}
    end, {5})
    local xp = keras.random.uniform({2, 5, 3}, -1, 1)
    assert_close(pf[5]:predict(xp), p:predict(xp))
    local g, gf = twins(function(T)
      return keras.Sequential{L.Conv1D(2, 2, {input_shape = {T, 3}}), L.GlobalMaxPooling1D()}
    end, {6})
    local x = keras.random.uniform({2, 6, 3}, -1, 1)
    assert_close(gf[6]:predict(x), g:predict(x))
  end)

  it("trains on batches of different lengths with the gradients of fixed-length models", function()
    keras.random.seed(8)
    local function build(T)
      local m = keras.Sequential{L.Embedding{15, 4, input_length = T}, L.LSTM(3, {return_sequences = true}),
                                 L.GRU(2), L.Dense(1, {activation = "sigmoid"})}
      m:compile{optimizer = keras.optimizers.SGD{lr = 0.5}, loss = "binary_crossentropy"}
      return m
    end
    local m, fixed = twins(build, {3, 6})
    for _, T in ipairs{6, 3, 6} do
      local x, y = ids(4, T, 15), keras.random.randint(2, {4, 1})
      fixed[T]:set_weights(m:get_weights())
      local lf = fixed[T]:train_on_batch(x, y)
      local ln = m:train_on_batch(x, y)
      assert.near(lf, ln, 1e-5)
      assert_weights_close(fixed[T], m, 1e-5)
      assert.near(fixed[T]:test_on_batch(x, y), m:test_on_batch(x, y), 1e-5)
    end
  end)

  it("a model of many None-capable layers predicts and trains as its fixed-length twin", function()
    keras.random.seed(15)
    local K = keras.backend
    local function build(T)
      local inp = keras.Input{shape = {T, 3}}
      local m = L.Masking{0}(inp)
      local s, h, c = table.unpack(L.LSTM(4, {return_sequences = true, return_state = true, go_backwards = true})(m))
      local g = L.GRU(4, {return_sequences = true})(s, {initial_state = {h}})
      local d = L.Dropout(0.3)(L.BatchNormalization()(g))
      local cc = L.concatenate{L.subtract{d, s}, L.multiply{d, s}, L.average{d, s}, L.maximum{d, s}}
      local td = L.TimeDistributed(L.Dense(2, {activation = "relu"}))(cc)
      local conv = L.Conv1D(3, 2, {padding = "causal", dilation_rate = 2})(td)
      local lam = L.Lambda(function(x) return K.sum(K.square(x), 1) end)(conv)
      local model = keras.Model{inp, L.concatenate{L.GlobalAveragePooling1D()(td), lam, c}}
      model:compile{optimizer = "adam", loss = "mse"}
      return model
    end
    local m, fixed = twins(build, {6})
    local f = fixed[6]
    local x = keras.random.uniform({2, 6, 3}, -1, 1)
    for t = 1, 2 do for k = 1, 3 do x:set(1, t, k, 0) end end   -- masked steps
    assert_close(f:predict(x), m:predict(x))
    local y = keras.random.uniform({2, 9}, -1, 1)
    for _ = 1, 3 do
      keras.random.seed(16)                 -- the same dropout masks on both sides
      local lm = m:train_on_batch(x, y)
      keras.random.seed(16)
      assert.near(f:train_on_batch(x, y), lm, 1e-5)
    end
    assert_weights_close(f, m, 1e-5)
  end)

  it("keeps one optimizer state across lengths (SGD momentum)", function()
    keras.random.seed(9)
    local lr, mom = 0.1, 0.9
    local m = keras.Sequential{L.SimpleRNN(3, {input_shape = {None, 2}}), L.Dense(1)}
    m:compile{optimizer = keras.optimizers.SGD{lr = lr, momentum = mom}, loss = "mse"}
    local x1, y1 = keras.random.uniform({3, 4, 2}, -1, 1), keras.random.uniform({3, 1}, -1, 1)
    local x2, y2 = keras.random.uniform({3, 7, 2}, -1, 1), keras.random.uniform({3, 1}, -1, 1)
    local p0 = m:get_weights()
    m:train_on_batch(x1, y1)
    local p1 = m:get_weights()
    m:train_on_batch(x2, y2)
    local p2 = m:get_weights()
    -- plain SGD at p1 on the second batch gives -lr * g2; momentum adds mom * (p1 - p0)
    local plain = keras.Sequential{L.SimpleRNN(3, {input_shape = {7, 2}}), L.Dense(1)}
    plain:compile{optimizer = keras.optimizers.SGD{lr = lr}, loss = "mse"}
    plain:set_weights(p1)
    plain:train_on_batch(x2, y2)
    local q = plain:get_weights()
    for i = 1, #p2 do
      local want = p1[i] + (p1[i] - p0[i]) * mom + (q[i] - p1[i])
      assert_close(want, p2[i], 1e-5)
    end
  end)

  it("saves and loads with its None axes and its optimizer state", function()
    keras.random.seed(17)
    local inp = keras.Input{shape = {None, 3}}
    local m = keras.Model{inp, L.Dense(2)(L.GRU(4, {return_sequences = true})(inp))}
    m:compile{optimizer = "adam", loss = "mse"}
    m:train_on_batch(keras.random.uniform({2, 5, 3}), keras.random.uniform({2, 5, 2}))
    for _, ext in ipairs{".lkm", ".h5"} do
      local path = os.tmpname() .. ext
      m:save(path)
      local m2 = keras.models.load_model(path)
      os.remove(path)
      assert.same({None, None, 3}, m2.input_shape)
      local x = keras.random.uniform({2, 7, 3})
      assert_close(m:predict(x), m2:predict(x), 0)
      -- Adam's moments came back: one more step is the same step on both
      local xs, ys = keras.random.uniform({2, 4, 3}), keras.random.uniform({2, 4, 2})
      m2:train_on_batch(xs, ys)
      m:train_on_batch(xs, ys)
      assert_weights_close(m, m2, 1e-6)
    end
  end)

  it("carries a stateful layer's state across batches of different lengths", function()
    keras.random.seed(18)
    local m = keras.Sequential{L.LSTM(3, {stateful = true, batch_input_shape = {2, None, 4}}), L.Dense(1)}
    local m8 = keras.Sequential{L.LSTM(3, {stateful = true, batch_input_shape = {2, 8, 4}}), L.Dense(1)}
    m8:set_weights(m:get_weights())
    local x5, x3 = keras.random.uniform({2, 5, 4}), keras.random.uniform({2, 3, 4})
    m:predict(x5, {batch_size = 2})
    local after = m:predict(x3, {batch_size = 2})   -- 5 steps, then 3 more
    assert_close(m8:predict(keras.tensor.concat({x5, x3}, 1), {batch_size = 2}), after)
    m:reset_states()
    m8:reset_states()
    assert_close(m8:predict(keras.tensor.concat({x5, x3}, 1), {batch_size = 2}), (function()
      m:predict(x5, {batch_size = 2})
      return m:predict(x3, {batch_size = 2})
    end)())
  end)

  it("fits with validation data of another length", function()
    keras.random.seed(10)
    local m = keras.Sequential{L.Embedding{10, 3}, L.GRU(2), L.Dense(1, {activation = "sigmoid"})}
    m:compile{optimizer = "adam", loss = "binary_crossentropy", metrics = {"acc"}}
    local h = m:fit(ids(8, 5, 10), keras.random.randint(2, {8, 1}),
                    {epochs = 2, batch_size = 4, verbose = 0,
                     validation_data = {ids(4, 8, 10), keras.random.randint(2, {4, 1})}})
    assert.equal(2, #h.history.val_loss)
    local fixed = keras.Sequential{L.Embedding{10, 3, input_length = 8}, L.GRU(2), L.Dense(1, {activation = "sigmoid"})}
    fixed:compile{optimizer = "adam", loss = "binary_crossentropy", metrics = {"acc"}}
    fixed:set_weights(m:get_weights())
    local vx, vy = ids(4, 8, 10), keras.random.randint(2, {4, 1})
    local a1, a2 = m:evaluate(vx, vy, {verbose = 0})
    local b1, b2 = fixed:evaluate(vx, vy, {verbose = 0})
    assert.near(b1, a1, 1e-5)
    assert.near(b2, a2, 1e-6)
  end)

  it("predicts sequences whose outputs keep the time axis", function()
    keras.random.seed(11)
    local m, fixed = twins(function(T)
      local m = keras.Sequential{L.Embedding{9, 3, input_length = T}, L.LSTM(2, {return_sequences = true}),
                                 L.TimeDistributed(L.Dense(4, {activation = "softmax"}))}
      m:compile{optimizer = "sgd", loss = "categorical_crossentropy"}
      return m
    end, {5})
    local x = ids(2, 5, 9)
    local y = keras.random.uniform({2, 5, 4}, 0, 1)
    assert_close(fixed[5]:predict(x), m:predict(x))
    assert.near(fixed[5]:test_on_batch(x, y), m:test_on_batch(x, y), 1e-5)
    assert.error_matches(function() m:train_on_batch(x, keras.random.uniform({2, 6, 4}, 0, 1)) end,
      "train_on_batch: target 'time_distributed", 1, true)
  end)
end)

describe("the per-shape plan cache", function()
  local function model(size)
    local m = keras.Sequential{L.Embedding{10, 3}, L.SimpleRNN(2), L.Dense(1)}
    m:compile{optimizer = "sgd", loss = "mse", plan_cache_size = size}
    return m
  end

  it("compiles once per shape and reuses what it has", function()
    keras.random.seed(12)
    local m = model()
    assert.equal(8, m:plan_cache_info().capacity)
    local y = keras.tensor.zeros{2, 1}
    for _, T in ipairs{3, 5, 3, 3, 5, 8} do m:train_on_batch(ids(2, T, 10), y) end
    local info = m:plan_cache_info()
    assert.equal(3, info.compilations)
    assert.equal(3, info.hits)
    assert.equal(3, info.size)
    m:predict(ids(5, 5, 10))                 -- the trainer for length 5 predicts too
    assert.equal(3, m:plan_cache_info().compilations)
    -- the same plan serves every batch size
    m:train_on_batch(ids(7, 8, 10), keras.tensor.zeros{7, 1})
    assert.equal(3, m:plan_cache_info().compilations)
  end)

  it("holds at most plan_cache_size shapes, the least recently used out", function()
    keras.random.seed(13)
    local m = model(2)
    local y = keras.tensor.zeros{2, 1}
    local function step(T) m:train_on_batch(ids(2, T, 10), y) end
    step(3); step(4); step(3)             -- 3 is the most recent
    assert.equal(2, m:plan_cache_info().compilations)
    step(5)                               -- 4 goes
    local info = m:plan_cache_info()
    assert.equal(2, info.size)
    assert.same({"t:3", "t:5"}, info.shapes)
    step(3)
    assert.equal(3, m:plan_cache_info().compilations)
    step(4)
    assert.equal(4, m:plan_cache_info().compilations)
    assert.same({"t:3", "t:4"}, m:plan_cache_info().shapes)
  end)

  it("drops a shape whose fit is running without harm (a callback predicts at another length)", function()
    keras.random.seed(20)
    local m = model(1)
    local seen = 0
    local cb = keras.callbacks.LambdaCallback{on_batch_end = function()
      seen = seen + m:predict(ids(2, 7, 10)).shape[1]
      collectgarbage()
    end}
    m:fit(ids(8, 4, 10), keras.tensor.zeros{8, 1}, {batch_size = 2, epochs = 2, verbose = 0, callbacks = {cb}})
    assert.equal(16, seen)
    assert.equal(1, m:plan_cache_info().size)
  end)

  it("is emptied by compile and works for models never compiled", function()
    keras.random.seed(14)
    local m = model(4)
    m:train_on_batch(ids(2, 3, 10), keras.tensor.zeros{2, 1})
    m:compile{optimizer = "sgd", loss = "mse"}
    assert.equal(0, m:plan_cache_info().size)
    local p = keras.Sequential{L.Embedding{10, 3}, L.SimpleRNN(2)}
    p:predict(ids(2, 3, 10)); p:predict(ids(2, 6, 10)); p:predict(ids(1, 3, 10))
    assert.equal(2, p:plan_cache_info().compilations)
  end)

  it("refuses a bad plan_cache_size", function()
    local m = keras.Sequential{L.Embedding{10, 3}, L.SimpleRNN(2)}
    assert.error_matches(function() m:compile{optimizer = "sgd", loss = "mse", plan_cache_size = 0} end,
      "compile: plan_cache_size must be an integer >= 1, got 0", 1, true)
  end)
end)

describe("None-length axes where a length is needed", function()
  it("Flatten and Reshape say so, naming the layer", function()
    local inp = keras.Input{shape = {None, 4}}
    assert.error_matches(function() L.Flatten{name = "flat"}(inp) end,
      "Flatten (flat): input shape (None, None, 4) has a None (variable-length) axis; Flatten needs every length "
      .. "known (give the Input or the first layer a fixed length)", 1, true)
    assert.error_matches(function() L.Reshape({8}, {name = "rs"})(inp) end,
      "Reshape (rs): input shape (None, None, 4) has a None (variable-length) axis", 1, true)
    assert.error_matches(function()
      keras.Sequential{L.Embedding{10, 3, name = "emb"}, L.Flatten{name = "f2"}, L.Dense(1)}
    end, "Flatten (f2): input shape (None, None, 3) has a None (variable-length) axis", 1, true)
  end)


  it("an engine op that needs a length says so, naming the layer", function()
    local inp = keras.Input{shape = {None, 4}}
    assert.error_matches(function()
      L.Lambda(function(x) return keras.backend.batch_dot(x, x, {2, 2}) end, {name = "lam"})(inp)
    end, "lam", 1, true)
    assert.error_matches(function()
      L.Lambda(function(x) return keras.backend.batch_dot(x, x, {2, 2}) end)(inp)
    end, "has a None (variable-length) axis", 1, true)
  end)

  it("data whose fixed axes do not fit is refused as before", function()
    local m = keras.Sequential{L.LSTM(2, {input_shape = {None, 3}})}
    assert.error_matches(function() m:predict(keras.tensor.zeros{2, 5, 4}) end,
      "to have shape (None, 3) but got array with shape (5, 4)", 1, true)
  end)
end)

describe("generators over a None time axis", function()
  local function twin_models()
    keras.random.seed(21)
    local function make()
      local m = keras.Sequential{L.Embedding(20, 4), L.LSTM(3), L.Dense(1, {activation = "sigmoid"})}
      m:compile{optimizer = keras.optimizers.SGD{lr = 0.1}, loss = "binary_crossentropy"}
      return m
    end
    local a, b = make(), make()
    b:set_weights(a:get_weights())
    return a, b
  end
  local function batch(len, k)
    local x, y = {}, {}
    for i = 1, 4 do
      x[i] = {}
      for t = 1, len do x[i][t] = (i * 7 + t * 3 + k) % 19 + 1 end
      y[i] = {(i + k) % 2}
    end
    return keras.tensor(x), keras.tensor(y)
  end
  local lengths = {5, 9, 5, 12}

  it("fit_generator trains on batches of different lengths as train_on_batch does", function()
    local a, b = twin_models()
    local step = 0
    local function gen()
      step = step + 1
      return batch(lengths[(step - 1) % #lengths + 1], step)
    end
    local h = a:fit_generator(gen, {steps_per_epoch = 4, epochs = 2, verbose = 0})
    for s = 1, 8 do
      local x, y = batch(lengths[(s - 1) % #lengths + 1], s)
      b:train_on_batch(x, y)
    end
    local wa, wb = a:get_weights(), b:get_weights()
    for i = 1, #wa do assert.is_true((wa[i] - wb[i]):abs():max() < 1e-6, "weight " .. i) end
    assert.equals(2, #h.history.loss)
    assert.equals(3, a:plan_cache_info().compilations)   -- lengths 5, 9 and 12
  end)

  it("evaluate_generator and predict_generator take each batch at its own length", function()
    local a = twin_models()
    local k = 0
    local function gen()
      k = k + 1
      if k > 3 then return nil end
      return batch(lengths[k], k)
    end
    local loss = a:evaluate_generator(gen, {steps = 3})
    local want = 0
    for s = 1, 3 do
      local x, y = batch(lengths[s], s)
      want = want + a:evaluate(x, y, {verbose = 0})
    end
    assert.is_true(math.abs(loss - want / 3) < 1e-5, loss .. " vs " .. want / 3)
    k = 0
    local p = a:predict_generator(function() k = k + 1; if k <= 3 then return (batch(lengths[k], k)) end end,
                                  {steps = 3})
    assert.same({12, 1}, p.shape)
    local p2 = a:predict((batch(lengths[2], 2)))
    assert.is_true(math.abs(p:get(5, 1) - p2:get(1, 1)) < 1e-6)
  end)
end)
