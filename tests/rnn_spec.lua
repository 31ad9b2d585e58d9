-- keras.layers, the sequence family: Embedding, Masking, SimpleRNN, GRU, LSTM,
-- Bidirectional, TimeDistributed; masks; stateful layers. Values are checked
-- against a float64 transcription of Keras 2.2.4's cells written here in plain
-- Lua (the C kernels themselves are checked against PyTorch in test_rnn.c).
local keras = require "keras"
local L = keras.layers
local K = keras.backend
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

local function not_close(a, b)
  local x, y = flat(a:totable()), flat(b:totable())
  for i = 1, #x do if math.abs(x[i] - y[i]) > 1e-6 then return true end end
  return false
end

-- ---- a float64 reference of Keras 2.2.4's cells (inputs as nested tables) ----

local function hard_sigmoid(v) return math.min(1, math.max(0, 0.2 * v + 0.5)) end
local function sigmoid(v) return 1 / (1 + math.exp(-v)) end
local function tanh(v) local e = math.exp(2 * v) return (e - 1) / (e + 1) end

-- x (B, T, F); W (F, G*u), U (u, G*u), b (G*u) or {b_in, b_rec}; returns outputs[b][s][j] and final h
local function ref_rnn(kind, x, W, U, b, o)
  o = o or {}
  local ra = o.ract == "sigmoid" and sigmoid or hard_sigmoid
  local B, T = #x, #x[1]
  local u = #U
  local outs, finals = {}, {}
  for bi = 1, B do
    local h, c = {}, {}
    for j = 1, u do h[j], c[j] = 0, 0 end
    local prev = {}
    for j = 1, u do prev[j] = 0 end
    outs[bi] = {}
    for s = 1, T do
      local t = o.backwards and T - s + 1 or s
      local xt = x[bi][t]
      local function lin(col, hv, bias)   -- x W[:, col] + hv U[:, col] + bias[col]
        local v = bias and bias[col] or 0
        for f = 1, #xt do v = v + xt[f] * W[f][col] end
        if hv then for k = 1, u do v = v + hv[k] * U[k][col] end end
        return v
      end
      local hn, cn = {}, {}
      if kind == "SimpleRNN" then
        for j = 1, u do hn[j] = tanh(lin(j, h, b)) end
      elseif kind == "LSTM" then
        for j = 1, u do
          local i = ra(lin(j, h, b))
          local f = ra(lin(u + j, h, b))
          local g = tanh(lin(2 * u + j, h, b))
          local oo = ra(lin(3 * u + j, h, b))
          cn[j] = f * c[j] + i * g
          hn[j] = oo * tanh(cn[j])
        end
      elseif kind == "GRU" and not o.reset_after then
        local z, r = {}, {}
        for j = 1, u do
          z[j] = ra(lin(j, h, b))
          r[j] = ra(lin(u + j, h, b))
        end
        local rh = {}
        for k = 1, u do rh[k] = r[k] * h[k] end
        for j = 1, u do
          local hh = tanh(lin(2 * u + j, rh, b))
          hn[j] = z[j] * h[j] + (1 - z[j]) * hh
        end
      else   -- GRU reset_after: b = {input bias, recurrent bias}
        for j = 1, u do
          local function rec(col)
            local v = b[2][col]
            for k = 1, u do v = v + h[k] * U[k][col] end
            return v
          end
          local z = ra(lin(j, nil, b[1]) + rec(j))
          local r = ra(lin(u + j, nil, b[1]) + rec(u + j))
          local hh = tanh(lin(2 * u + j, nil, b[1]) + r * rec(2 * u + j))
          hn[j] = z * h[j] + (1 - z) * hh
        end
      end
      local m = o.mask and o.mask[bi][t] or 1
      if m ~= 0 then
        h, c = hn, (kind == "LSTM" and cn or c)
        prev = hn
      end
      outs[bi][s] = prev
    end
    finals[bi] = h
  end
  return outs, finals
end

local function last_of(outs)
  local r = {}
  for b, seq in ipairs(outs) do r[b] = seq[#seq] end
  return r
end

local function rand_table(shape, lo, hi)
  return keras.random.uniform(shape, lo, hi):totable()
end

-- ---- the recurrent layers ----

describe("keras.layers.LSTM", function()
  it("has Keras's weights: kernel (F, 4u), recurrent_kernel (u, 4u), bias (4u) with the forget slice at 1", function()
    local lstm = L.LSTM{3, input_shape = {5, 2}}
    keras.Sequential{lstm}
    local w = lstm:get_weights()
    assert.equal(3, #w)
    assert.same({2, 12}, w[1].shape)
    assert.same({3, 12}, w[2].shape)
    assert.same({12}, w[3].shape)
    assert.same({0, 0, 0, 1, 1, 1, 0, 0, 0, 0, 0, 0}, w[3]:totable())
    assert.equal("lstm_" .. lstm.name:match("%d+$") .. "/kernel:0", lstm._weights[1].name)
    -- the recurrent kernel is orthogonal: its rows are orthonormal (u < 4u)
    local U = w[2]
    local g = U:matmul(U:transpose()):totable()
    for i = 1, 3 do for j = 1, 3 do assert.is_true(math.abs(g[i][j] - (i == j and 1 or 0)) < 1e-5) end end
  end)

  it("defaults to tanh and hard_sigmoid, as Keras 2.2.4", function()
    local lstm = L.LSTM(4)
    assert.equal("tanh", lstm.activation)
    assert.equal("hard_sigmoid", lstm.recurrent_activation)
    assert.is_false(lstm.return_sequences)
    assert.is_true(lstm.unit_forget_bias)
    local cfg = lstm:get_config()
    assert.equal(4, cfg.units)
    assert.equal("Orthogonal", cfg.recurrent_initializer.class_name)
    assert.equal("VarianceScaling", cfg.kernel_initializer.class_name)
  end)

  it("computes Keras's LSTM (i, f, c, o; hard_sigmoid gates) over the whole sequence", function()
    keras.random.seed(3)
    local x = rand_table({2, 4, 3}, -1, 1)
    local lstm = L.LSTM{5, return_sequences = true, input_shape = {4, 3}}
    local model = keras.Sequential{lstm}
    local w = lstm:get_weights()
    w[3] = keras.random.uniform({20}, -0.5, 0.5)
    lstm:set_weights(w)
    local outs = ref_rnn("LSTM", x, w[1]:totable(), w[2]:totable(), w[3]:totable())
    assert_close(outs, model:predict(keras.tensor(x)))
  end)

  it("returns the last output and the final states with return_state", function()
    keras.random.seed(4)
    local inp = keras.Input{shape = {3, 2}}
    local outs = L.LSTM{4, return_state = true}(inp)
    assert.equal(3, #outs)
    for _, o in ipairs(outs) do assert.same({-1, 4}, o.shape) end
    local model = keras.Model{inputs = inp, outputs = outs}
    local res = model:predict(keras.random.random{2, 3, 2})
    assert_close(res[1], res[2])          -- the output is h
  end)

  it("uses sigmoid gates when asked, and no bias with use_bias=false", function()
    keras.random.seed(5)
    local x = rand_table({2, 3, 2}, -1, 1)
    local lstm = L.LSTM{3, recurrent_activation = "sigmoid", use_bias = false, input_shape = {3, 2}}
    local model = keras.Sequential{lstm}
    local w = lstm:get_weights()
    assert.equal(2, #w)
    local outs = ref_rnn("LSTM", x, w[1]:totable(), w[2]:totable(), nil, {ract = "sigmoid"})
    assert_close(last_of(outs), model:predict(keras.tensor(x)))
  end)

  it("reads the sequence backwards with go_backwards", function()
    keras.random.seed(6)
    local x = rand_table({2, 5, 3}, -1, 1)
    local lstm = L.LSTM{4, go_backwards = true, return_sequences = true, input_shape = {5, 3}}
    local model = keras.Sequential{lstm}
    local w = lstm:get_weights()
    local outs = ref_rnn("LSTM", x, w[1]:totable(), w[2]:totable(), w[3]:totable(), {backwards = true})
    assert_close(outs, model:predict(keras.tensor(x)))
  end)

  it("trains: the loss goes down on a learnable task", function()
    keras.random.seed(7)
    local n = 128
    local x = keras.random.uniform({n, 6, 1}, 0, 1)
    local y = K.greater(x:sum(1), 3)     -- is the sum above 3?
    local model = keras.Sequential{L.LSTM{8, input_shape = {6, 1}}, L.Dense{1, activation = "sigmoid"}}
    model:compile{optimizer = keras.optimizers.Adam{lr = 0.02}, loss = "binary_crossentropy"}
    local h = model:fit(x, y, {epochs = 15, batch_size = 32, verbose = 0})
    assert.is_true(h.history.loss[15] < 0.8 * h.history.loss[1])
  end)

  it("takes an initial state, and the gradient reaches the layer that made it", function()
    keras.random.seed(8)
    local enc_in = keras.Input{shape = {4, 3}}
    local _, h, c = table.unpack(L.LSTM{5, return_state = true}(enc_in))
    local dec_in = keras.Input{shape = {3, 2}}
    local dec = L.LSTM{5, return_sequences = true}
    local y = dec(dec_in, {initial_state = {h, c}})
    local out = L.TimeDistributed(L.Dense(1))(y)
    local model = keras.Model{inputs = {enc_in, dec_in}, outputs = out}
    assert.equal(5, #model.layers)
    model:compile{optimizer = keras.optimizers.SGD{lr = 0.5}, loss = "mse"}
    local xe, xd = keras.random.random{16, 4, 3}, keras.random.random{16, 3, 2}
    local yt = keras.random.random{16, 3, 1}
    local enc = model.layers[3]
    assert.same({3, 20}, enc:get_weights()[1].shape)
    local enc_w = enc:get_weights()[1]
    model:fit({xe, xd}, yt, {epochs = 2, verbose = 0})
    assert.is_true(not_close(enc_w, enc:get_weights()[1]))
  end)

  it("trains with dropout and recurrent_dropout, and predicts without them", function()
    keras.random.seed(9)
    local model = keras.Sequential{L.LSTM{6, dropout = 0.3, recurrent_dropout = 0.3, input_shape = {5, 2}},
                                   L.Dense(1)}
    model:compile{optimizer = "rmsprop", loss = "mse"}
    local x = keras.random.random{32, 5, 2}
    model:fit(x, keras.random.random{32, 1}, {epochs = 1, verbose = 0})
    assert_close(model:predict(x), model:predict(x), 0)
  end)

  it("names what is wrong with its input and arguments", function()
    assert.error_matches(function() keras.Sequential{L.LSTM{4, input_shape = {3}}} end,
      "Input 0 is incompatible with layer lstm_%d+: expected ndim=3, found ndim=2")
    assert.error_matches(function() L.LSTM{0} end, "LSTM: units must be an integer >= 1, got 0", 1, true)
    assert.error_matches(function() L.LSTM{4, recurrent_activation = function(x) return x end} end,
      "LSTM: recurrent_activation must be one of elu, exponential, hard_sigmoid, linear, relu, selu, sigmoid, "
      .. "softplus, softsign, tanh for a recurrent layer, got a function", 1, true)
    assert.error_matches(function() L.LSTM{4, activation = "softmax"} end,
      "got 'softmax'", 1, true)
    assert.error_matches(function() L.LSTM{4, kernel_constraint = "max_nrom"} end,
      "LSTM: unknown constraint 'max_nrom'", 1, true)
    assert.error_matches(function() L.LSTM{4, dropout = 1.5} end, "LSTM: dropout must be a number in [0, 1), got 1.5",
      1, true)
    assert.error_matches(function() L.LSTM{4, reset_after = true} end, "LSTM: unknown argument 'reset_after'", 1, true)
    assert.error_matches(function() L.LSTM{4, implementation = 3} end, "LSTM: implementation must be 1 or 2, got 3",
      1, true)
    local lstm = L.LSTM{4, name = "enc"}
    local inp = keras.Input{shape = {3, 2}}
    lstm(inp)
    assert.error_matches(function() lstm(keras.Input{shape = {3, 5}}) end,
      "LSTM (enc): expected input with last dimension 2, got 5", 1, true)
    assert.error_matches(function() L.LSTM{4}(inp, {initial_state = {keras.Input{shape = {4}}}}) end,
      "Layer has 2 states but was passed 1 initial states.", 1, true)
    assert.error_matches(
      function() L.LSTM{4}(inp, {initial_state = {keras.Input{shape = {3}}, keras.Input{shape = {4}}}}) end,
      "initial state 1 has shape (None, 3), expected (None, 4)", 1, true)
  end)
end)

describe("keras.layers.GRU", function()
  it("computes Keras's GRU (z, r, h; reset before the product) with weights (F, 3u), (u, 3u), (3u)", function()
    keras.random.seed(11)
    local x = rand_table({2, 4, 3}, -1, 1)
    local gru = L.GRU{4, return_sequences = true, input_shape = {4, 3}}
    local model = keras.Sequential{gru}
    local w = gru:get_weights()
    assert.same({3, 12}, w[1].shape)
    assert.same({12}, w[3].shape)
    w[3] = keras.random.uniform({12}, -0.5, 0.5)
    gru:set_weights(w)
    local outs = ref_rnn("GRU", x, w[1]:totable(), w[2]:totable(), w[3]:totable())
    assert_close(outs, model:predict(keras.tensor(x)))
  end)

  it("supports reset_after with a (2, 3u) bias", function()
    keras.random.seed(12)
    local x = rand_table({2, 4, 3}, -1, 1)
    local gru = L.GRU{4, reset_after = true, recurrent_activation = "sigmoid", input_shape = {4, 3}}
    local model = keras.Sequential{gru}
    local w = gru:get_weights()
    assert.same({2, 12}, w[3].shape)
    w[3] = keras.random.uniform({2, 12}, -0.5, 0.5)
    gru:set_weights(w)
    local outs = ref_rnn("GRU", x, w[1]:totable(), w[2]:totable(), w[3]:totable(),
                         {reset_after = true, ract = "sigmoid"})
    assert_close(last_of(outs), model:predict(keras.tensor(x)))
    assert.is_true(gru:get_config().reset_after)
  end)

  it("returns its one state", function()
    local outs = L.GRU{3, return_state = true}(keras.Input{shape = {2, 2}})
    assert.equal(2, #outs)
  end)
end)

describe("keras.layers.SimpleRNN", function()
  it("computes tanh(x W + h U + b) with weights (F, u), (u, u), (u)", function()
    keras.random.seed(13)
    local x = rand_table({3, 4, 2}, -1, 1)
    local rnn = L.SimpleRNN{5, return_sequences = true, input_shape = {4, 2}}
    assert.equal("simple_rnn", rnn.name:match("^(.*)_%d+$"))
    local model = keras.Sequential{rnn}
    local w = rnn:get_weights()
    assert.same({2, 5}, w[1].shape)
    assert.same({5, 5}, w[2].shape)
    w[3] = keras.random.uniform({5}, -0.5, 0.5)
    rnn:set_weights(w)
    local outs = ref_rnn("SimpleRNN", x, w[1]:totable(), w[2]:totable(), w[3]:totable())
    assert_close(outs, model:predict(keras.tensor(x)))
  end)

  it("has no recurrent_activation", function()
    assert.error_matches(function() L.SimpleRNN{3, recurrent_activation = "sigmoid"} end,
      "SimpleRNN: unknown argument 'recurrent_activation'", 1, true)
  end)

  it("builds from input_dim and input_length", function()
    local model = keras.Sequential{L.SimpleRNN{3, input_dim = 2, input_length = 7}}
    assert.same({-1, 7, 2}, model.inputs[1].shape)
  end)
end)

-- ---- masks ----

describe("masking", function()
  it("Embedding(mask_zero) makes padded steps carry the state: pre-padding changes nothing", function()
    keras.random.seed(21)
    local emb = L.Embedding{10, 3, mask_zero = true, input_length = 6}
    local lstm = L.LSTM{4}
    local model = keras.Sequential{emb, lstm}
    local emb2 = L.Embedding{10, 3, input_length = 4}
    local lstm2 = L.LSTM{4}
    local model2 = keras.Sequential{emb2, lstm2}
    model2:set_weights(model:get_weights())
    local a = model:predict(keras.tensor{{0, 0, 3, 4, 5, 6}, {0, 0, 2, 3, 4, 5}})
    local b = model2:predict(keras.tensor{{3, 4, 5, 6}, {2, 3, 4, 5}})
    assert_close(b, a)
  end)

  it("holds the previous output at masked steps and passes the mask on with return_sequences", function()
    keras.random.seed(22)
    local inp = keras.Input{shape = {5}}
    local e = L.Embedding{8, 2, mask_zero = true}(inp)
    assert.is_not_nil(e:meta().mask)
    local seq = L.GRU{3, return_sequences = true}(e)
    assert.equal(e:meta().mask, seq:meta().mask)
    local last = L.GRU{3}(seq)
    assert.is_nil(last:meta().mask)
    local model = keras.Model{inputs = inp, outputs = seq}
    local out = model:predict(keras.tensor{{0, 2, 0, 0, 3}}):totable()[1]
    assert.same({0, 0, 0}, out[1])                  -- nothing seen yet: zeros
    assert_close(out[2], out[3], 0)
    assert_close(out[2], out[4], 0)
    assert.is_true(math.abs(out[5][1] - out[4][1]) > 0)
  end)

  it("Masking(mask_value) masks the steps whose features all equal the value", function()
    keras.random.seed(23)
    local x = rand_table({2, 5, 3}, -1, 1)
    for j = 1, 3 do x[1][2][j] = 0; x[2][5][j] = 0 end
    local model = keras.Sequential{L.Masking{0.0, input_shape = {5, 3}}, L.SimpleRNN{4, return_sequences = true}}
    local w = model.layers[2]:get_weights()
    local mask = {{1, 0, 1, 1, 1}, {1, 1, 1, 1, 0}}
    local outs = ref_rnn("SimpleRNN", x, w[1]:totable(), w[2]:totable(), w[3]:totable(), {mask = mask})
    assert_close(outs, model:predict(keras.tensor(x)))
    local m = L.Masking{mask_value = -1}
    assert.equal(-1, m:get_config().mask_value)
  end)

  it("GlobalAveragePooling1D averages the unmasked steps only", function()
    keras.random.seed(25)
    local emb = L.Embedding{6, 2, mask_zero = true, input_length = 4}
    local model = keras.Sequential{emb, L.GlobalAveragePooling1D()}
    local m = emb:get_weights()[1]:totable()
    local out = model:predict(keras.tensor{{0, 0, 1, 3}, {2, 0, 4, 4}}):totable()
    assert_close({{(m[2][1] + m[4][1]) / 2, (m[2][2] + m[4][2]) / 2},
                  {(m[3][1] + 2 * m[5][1]) / 3, (m[3][2] + 2 * m[5][2]) / 3}}, out)
  end)

  it("masks a backwards layer at the same input steps", function()
    keras.random.seed(24)
    local x = rand_table({1, 5, 2}, -1, 1)
    local mask = {{1, 1, 0, 1, 0}}
    for j = 1, 2 do x[1][3][j] = 0; x[1][5][j] = 0 end
    local model = keras.Sequential{L.Masking{input_shape = {5, 2}}, L.LSTM{3, go_backwards = true}}
    local w = model.layers[2]:get_weights()
    local outs = ref_rnn("LSTM", x, w[1]:totable(), w[2]:totable(), w[3]:totable(), {mask = mask, backwards = true})
    assert_close(last_of(outs), model:predict(keras.tensor(x)))
  end)
end)

-- ---- Embedding ----

describe("keras.layers.Embedding", function()
  it("looks rows up: (batch, input_length) ids -> (batch, input_length, output_dim)", function()
    local emb = L.Embedding{5, 2, input_length = 3}
    local model = keras.Sequential{emb}
    assert.same({-1, 3}, model.inputs[1].shape)
    local m = emb:get_weights()[1]
    assert.same({5, 2}, m.shape)
    local out = model:predict(keras.tensor{{0, 4, 2}})
    assert_close({{m:totable()[1], m:totable()[5], m:totable()[3]}}, out, 0)
  end)

  it("initializes uniformly in [-0.05, 0.05]", function()
    keras.random.seed(31)
    local emb = L.Embedding{1000, 8, input_length = 4}
    keras.Sequential{emb}
    local w = emb:get_weights()[1]
    assert.is_true(w:max() <= 0.05 and w:min() >= -0.05)
    assert.is_true(w:max() > 0.04 and w:min() < -0.04)
  end)

  it("takes pre-trained weights and can be frozen", function()
    local M = keras.tensor{{0, 0}, {1, 2}, {3, 4}}
    local emb = L.Embedding{3, 2, weights = {M}, trainable = false, input_length = 2}
    local model = keras.Sequential{emb, L.Flatten(), L.Dense(1)}
    model:compile{optimizer = "sgd", loss = "mse"}
    model:fit(keras.tensor{{1, 2}, {2, 1}}, keras.tensor{{1}, {0}}, {epochs = 2, verbose = 0})
    assert_close(M, emb:get_weights()[1], 0)
    assert.equal(6, #model.trainable_weights == 2 and 6 or 0)
    local lines = {}
    model:summary{print_fn = function(s) lines[#lines + 1] = s end}
    assert.truthy(table.concat(lines, "\n"):find("Non-trainable params: 6", 1, true))
  end)

  it("trains its rows (a dense update, as Keras 2.2.4)", function()
    keras.random.seed(32)
    local emb = L.Embedding{4, 2, input_length = 2}
    local model = keras.Sequential{emb, L.Flatten(), L.Dense(1)}
    model:compile{optimizer = "sgd", loss = "mse"}
    local before = emb:get_weights()[1]:totable()
    model:fit(keras.tensor{{1, 1}}, keras.tensor{{1}}, {epochs = 1, verbose = 0})
    local after = emb:get_weights()[1]:totable()
    assert.same(before[1], after[1])           -- row 0 was not used
    assert.is_true(before[2][1] ~= after[2][1])
  end)

  it("refuses ids outside [0, input_dim)", function()
    local model = keras.Sequential{L.Embedding{5, 2, input_length = 2}}
    assert.error_matches(function() model:predict(keras.tensor{{1, 5}}) end,
      "embedding: index 5 is outside [0, 5)", 1, true)
    assert.error_matches(function() model:predict(keras.tensor{{-1, 0}}) end,
      "embedding: index -1 is outside [0, 5)", 1, true)
    assert.error_matches(function() model:predict(keras.tensor{{1.5, 0}}) end,
      "embedding: index 1.5 is outside [0, 5)", 1, true)
  end)

  it("checks input_length against its input", function()
    local emb = L.Embedding{5, 2, input_length = 3, name = "emb"}
    emb(keras.Input{shape = {3}})
    assert.error_matches(function() emb(keras.Input{shape = {4}}) end,
      'Embedding (emb): "input_length" is 3, but received input has shape (None, 4)', 1, true)
    assert.error_matches(function() L.Embedding{0, 2} end, "Embedding: input_dim must be", 1, true)
    assert.error_matches(function() L.Embedding{5} end, "Embedding: output_dim must be an integer >= 1, got nil",
      1, true)
  end)

  it("builds from the data when it has no input_length", function()
    local model = keras.Sequential{L.Embedding{7, 3}, L.LSTM(2)}
    local y = model:predict(keras.tensor{{1, 2, 3, 4}})
    assert.equal(1, y.shape[1])
  end)
end)

-- ---- wrappers ----

describe("keras.layers.Bidirectional", function()
  it("concatenates a forward and a backward copy of the layer", function()
    keras.random.seed(41)
    local x = rand_table({2, 4, 3}, -1, 1)
    local bi = L.Bidirectional(L.LSTM{3, return_sequences = true}, {input_shape = {4, 3}})
    local model = keras.Sequential{bi}
    assert.equal("bidirectional", bi.name:match("^(.*)_%d+$"))
    assert.truthy(bi.forward_layer.name:match("^forward_lstm_%d+$"))
    assert.truthy(bi.backward_layer.name:match("^backward_lstm_%d+$"))
    local w = bi:get_weights()
    assert.equal(6, #w)
    assert.equal(2 * (3 * 12 + 3 * 12 + 12), bi:count_params())
    local f = ref_rnn("LSTM", x, w[1]:totable(), w[2]:totable(), w[3]:totable())
    local b = ref_rnn("LSTM", x, w[4]:totable(), w[5]:totable(), w[6]:totable(), {backwards = true})
    -- the backward sequence is reversed back into input order, then concatenated
    local want = {}
    for i = 1, 2 do
      want[i] = {}
      for t = 1, 4 do
        local row = {}
        for j = 1, 3 do row[j] = f[i][t][j] end
        for j = 1, 3 do row[3 + j] = b[i][4 - t + 1][j] end
        want[i][t] = row
      end
    end
    assert_close(want, model:predict(keras.tensor(x)))
  end)

  it("merges with sum, mul, ave, or returns both with merge_mode None", function()
    local inp = keras.Input{shape = {3, 2}}
    for _, mm in ipairs{"sum", "mul", "ave"} do
      assert.same({-1, 4}, L.Bidirectional(L.GRU(4), {merge_mode = mm})(inp).shape)
    end
    local outs = L.Bidirectional(L.GRU(4), {merge_mode = None})(inp)
    assert.equal(2, #outs)
    local st = L.Bidirectional(L.LSTM{4, return_state = true})(inp)
    assert.equal(5, #st)
    assert.same({-1, 8}, st[1].shape)
    assert.error_matches(function() L.Bidirectional(L.GRU(4), {merge_mode = "max"}) end,
      'Invalid merge mode. Merge mode should be one of {"sum", "mul", "ave", "concat", None}', 1, true)
    assert.error_matches(function() L.Bidirectional(L.Dense(4)) end,
      "Bidirectional: the wrapped layer must be a recurrent layer (SimpleRNN, GRU, LSTM, RNN, CuDNNGRU or " ..
      "CuDNNLSTM), got Dense", 1, true)
  end)

  it("trains both directions", function()
    keras.random.seed(42)
    local model = keras.Sequential{L.Embedding{20, 4, input_length = 5, mask_zero = true},
                                   L.Bidirectional(L.LSTM(4)), L.Dense(1, {activation = "sigmoid"})}
    model:compile{optimizer = "adam", loss = "binary_crossentropy"}
    local bi = model.layers[2]
    local w0 = bi:get_weights()
    model:fit(keras.random.randint(20, {16, 5}), keras.random.randint(2, {16, 1}), {epochs = 1, verbose = 0})
    local w1 = bi:get_weights()
    assert.is_true(not_close(w0[1], w1[1]) and not_close(w0[4], w1[4]))
  end)
end)

describe("keras.layers.TimeDistributed", function()
  it("applies a Dense layer to every step with shared weights", function()
    keras.random.seed(51)
    local td = L.TimeDistributed(L.Dense(2), {input_shape = {3, 4}})
    local model = keras.Sequential{td}
    assert.same({-1, 3, 2}, model.outputs[1].shape)
    local w = td:get_weights()
    assert.equal(2, #w)
    local x = keras.random.random{2, 3, 4}
    assert_close(x:matmul(w[1]) + w[2], model:predict(x))
  end)

  it("applies any layer step by step", function()
    local model = keras.Sequential{L.TimeDistributed(L.Flatten(), {input_shape = {3, 2, 2}})}
    local x = keras.random.random{2, 3, 2, 2}
    assert_close(x:reshape{2, 3, 4}, model:predict(x), 0)
    local inner = keras.Sequential{L.Dense{2, input_shape = {4}}}
    local m2 = keras.Sequential{L.TimeDistributed(inner, {input_shape = {5, 4}})}
    assert.same({-1, 5, 2}, m2.outputs[1].shape)
    assert.equal(10, m2:count_params())
  end)

  it("loops over the steps when the batch size is fixed", function()
    local y = L.TimeDistributed(L.Flatten())(keras.Input{batch_shape = {2, 3, 2, 2}})
    assert.same({2, 3, 4}, y.shape)
    assert.equal("concat", y.op)
  end)

  it("wants a time axis", function()
    assert.error_matches(function() keras.Sequential{L.TimeDistributed(L.Dense(2), {input_shape = {4}})} end,
      "expected input of rank >= 3 (batch, timesteps, ...), got shape (None, 4)", 1, true)
  end)
end)

-- ---- stateful ----

describe("stateful recurrent layers", function()
  it("carry the final state of sample i into sample i of the next batch", function()
    keras.random.seed(61)
    local lstm = L.LSTM{4, stateful = true, batch_input_shape = {2, 3, 2}}
    local model = keras.Sequential{lstm}
    local whole = keras.Sequential{L.LSTM{4, input_shape = {6, 2}}}
    whole:set_weights(model:get_weights())
    local x = keras.random.random{2, 6, 2}
    local tx = x:totable()
    local a, b = {}, {}
    for i = 1, 2 do
      a[i], b[i] = {tx[i][1], tx[i][2], tx[i][3]}, {tx[i][4], tx[i][5], tx[i][6]}
    end
    model:predict(keras.tensor(a), {batch_size = 2})
    local y = model:predict(keras.tensor(b), {batch_size = 2})
    assert_close(whole:predict(x), y)
    -- reset_states starts over
    model:reset_states()
    assert_close(keras.Sequential{L.LSTM{4, input_shape = {3, 2}}}.layers[1] and
      (function()
        local m = keras.Sequential{L.LSTM{4, input_shape = {3, 2}}}
        m:set_weights(model:get_weights())
        return m:predict(keras.tensor(b))
      end)(), model:predict(keras.tensor(b), {batch_size = 2}))
  end)

  it("a model whose Input has a fixed batch size (batch_shape) compiles, trains and evaluates", function()
    -- the sample weights' input takes the output's fixed batch axis (it was
    -- (None,) and compile failed with "mul: cannot broadcast shapes (2,) and (None,)")
    local inp = keras.Input{batch_shape = {2, 4}}
    local model = keras.Model(inp, L.Dense{3, kernel_initializer = "ones", bias_initializer = "zeros"}(inp))
    model:compile{optimizer = "sgd", loss = "mse"}
    local x, y = keras.tensor.ones{2, 4}, keras.tensor.zeros{2, 3}
    -- every output is 4 before the first step: mse 16
    assert.is_true(math.abs(model:evaluate(x, y, {batch_size = 2, verbose = 0}) - 16) < 1e-5)
    local hist = model:fit(x, y, {batch_size = 2, epochs = 2, verbose = 0})
    assert.is_true(hist.history.loss[2] < hist.history.loss[1])
    assert.is_true(model:train_on_batch(x, y) < hist.history.loss[2])
  end)

  it("a model whose Input has a fixed batch size runs any multiple of it, in batches of exactly it", function()
    local inp = keras.Input{batch_shape = {2, 4}}
    local model = keras.Model(inp, L.Dense{3, kernel_initializer = "ones", bias_initializer = "zeros"}(inp))
    model:compile{optimizer = "sgd", loss = "mse"}
    local x = keras.tensor.ones{6, 4}
    -- before any step every output is 4: predict gives 6 rows of them
    local p = model:predict(x, {batch_size = 2}):totable()
    assert.equal(6, #p)
    for i = 1, 6 do assert.same({4, 4, 4}, p[i]) end
    assert.is_true(math.abs(model:evaluate(x, keras.tensor.zeros{6, 3}, {batch_size = 2, verbose = 0}) - 16) < 1e-5)
    local hist = model:fit(x, keras.tensor.zeros{6, 3}, {batch_size = 2, epochs = 2, verbose = 0})
    assert.is_true(hist.history.loss[2] < hist.history.loss[1])
    assert.error_matches(function() model:predict(x) end,
      "predict: the model's inputs have a fixed batch size of 2 (batch_shape); give batch_size = 2, got 6", 1, true)
    assert.error_matches(function() model:fit(x, keras.tensor.zeros{6, 3}, {batch_size = 3, verbose = 0}) end,
      "fit: the model's inputs have a fixed batch size of 2 (batch_shape); give batch_size = 2, got 3", 1, true)
    assert.error_matches(function() model:predict(keras.tensor.ones{5, 4}, {batch_size = 2}) end,
      "has a fixed batch size of 2 (batch_shape), and 5 samples are not a multiple of it", 1, true)
    assert.error_matches(function() model:train_on_batch(x, keras.tensor.zeros{6, 3}) end,
      "train_on_batch: the model's inputs have a fixed batch size of 2 (batch_shape); give 2 samples, got 6", 1,
      true)
  end)

  it("keep their state across fit, train_on_batch and predict, until reset_states", function()
    keras.random.seed(62)
    local model = keras.Sequential{
      L.LSTM{8, return_sequences = true, stateful = true, batch_input_shape = {4, 5, 3}},
      L.LSTM{8, stateful = true},
      L.Dense{2, activation = "softmax"},
    }
    model:compile{optimizer = "rmsprop", loss = "categorical_crossentropy", metrics = {"accuracy"}}
    local x = keras.random.random{16, 5, 3}
    local y = keras.utils.to_categorical(keras.random.randint(2, {16}), 2)
    model:fit(x, y, {batch_size = 4, epochs = 2, shuffle = false, verbose = 0})
    model:train_on_batch(x:slice(1, 4), y:slice(1, 4))
    local s = model.layers[1].states
    assert.equal(2, #s)
    assert.same({4, 8}, s[1].shape)
    assert.is_true(s[1]:abs():sum() > 0)
    local p1 = model:predict(x:slice(1, 4), {batch_size = 4})
    local p2 = model:predict(x:slice(1, 4), {batch_size = 4})
    assert.is_true(not_close(p1, p2))
    model:reset_states()
    assert.equal(0, model.layers[1].states[1]:abs():sum())
    assert.equal(0, model.layers[2].states[2]:abs():sum())
    local p3 = model:predict(x:slice(1, 4), {batch_size = 4})
    model.layers[1]:reset_states()
    model.layers[2]:reset_states()
    assert_close(p3, model:predict(x:slice(1, 4), {batch_size = 4}), 0)
  end)

  it("find the batch size given to an Embedding in front of them", function()
    local model = keras.Sequential{L.Embedding{10, 3, batch_input_shape = {2, 4}}, L.GRU{3, stateful = true}}
    assert.same({2, 3}, model.layers[2].states[1].shape)
    assert.same({2, 4}, model.layers[1]:get_config().batch_input_shape)
  end)

  it("need to know their batch size", function()
    assert.error_matches(function() keras.Sequential{L.LSTM{4, stateful = true, input_shape = {3, 2}}} end,
      "If a RNN is stateful, it needs to know its batch size. Specify the batch size of your input tensors: \n" ..
      "- If using a Sequential model, specify the batch size by passing a `batch_input_shape` argument to your "
      .. "first layer.\n" ..
      "- If using the functional API, specify the batch size by passing a `batch_shape` argument to your Input layer.",
      1, true)
    assert.error_matches(function() L.LSTM{4, stateful = true}:reset_states() end,
      "If a RNN is stateful, it needs to know its batch size.", 1, true)
  end)

  it("refuse a batch of another size", function()
    local model = keras.Sequential{L.SimpleRNN{3, stateful = true, batch_size = 4, input_shape = {2, 1}}}
    model:compile{optimizer = "sgd", loss = "mse"}
    assert.error_matches(function() model:predict(keras.random.random{6, 2, 1}, {batch_size = 4}) end,
      "predict: In a stateful network, you should only pass inputs with a number of samples that can be divided "
      .. "by the batch size. Found: 6 samples", 1, true)
    assert.error_matches(function() model:train_on_batch(keras.random.random{3, 2, 1}, keras.random.random{3, 3}) end,
      "train_on_batch: In a stateful network, you should only pass inputs with a number of samples that can be "
      .. "divided by the batch size. Found: 3 samples", 1, true)
    -- a whole batch at the wrong size is caught by the layer itself
    assert.error_matches(function() model:predict(keras.random.random{8, 2, 1}, {batch_size = 8}) end,
      "the batch has 8 samples but the layer's state holds 4", 1, true)
  end)

  it("take states from reset_states(states) and check their shapes", function()
    local lstm = L.LSTM{2, stateful = true, batch_input_shape = {1, 1, 1}, name = "st"}
    local model = keras.Sequential{lstm}
    lstm:reset_states{keras.tensor{{0.5, -0.5}}, keras.tensor{{1, 1}}}
    assert.same({{0.5, -0.5}}, lstm.states[1]:totable())
    assert.error_matches(function() lstm:reset_states{keras.tensor{{1, 2}}} end,
      "Layer st expects 2 states, but it received 1 state values.", 1, true)
    assert.error_matches(function() lstm:reset_states{keras.tensor{{1, 2, 3}}, keras.tensor{{1, 2}}} end,
      "State 0 is incompatible with layer st: expected shape=(1, 2), found shape=(1, 3)", 1, true)
    assert.is_not_nil(model)
  end)

  it("leave non-stateful layers alone on model:reset_states()", function()
    local model = keras.Sequential{L.LSTM{2, input_shape = {3, 1}}}
    model:reset_states()
    assert.is_nil(model.layers[1].states[1])
  end)
end)
