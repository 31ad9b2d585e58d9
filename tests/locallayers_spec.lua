-- keras.layers.LocallyConnected1D, LocallyConnected2D and ConvLSTM2D (Keras
-- 2.2.4 arguments, defaults, weight layouts and configs; channels_last).
-- Numbers: tests/fixtures/locallayers.lua (float64 loops over the output
-- positions in torch, and Keras 2.2.4's ConvLSTM2D equations in float64;
-- outputs and the gradients of sum(y * dy)), Keras 2.2.4 JSON configs and
-- .h5 files tests/fixtures/keras_locallayers.* and keras_convlstm2d.*; all
-- made by scripts/fixtures/locallayers_fixtures.py.
local keras = require "keras"
local K = keras.backend
local L = keras.layers
local None = keras.None

local U_ = dofile("tests/lib/spec_util.lua")
local flat, assert_close, sample_shape, read_all = U_.flat, U_.assert_close, U_.sample_shape, U_.read_all




local function tmpdir()
  local p = io.popen("mktemp -d /tmp/lkeras-locallayers-XXXXXX")
  local d = p:read("l")
  p:close()
  return d
end
local DIR = tmpdir()
local function P(name) return DIR .. "/" .. name end
teardown(function() os.execute("rm -rf '" .. DIR .. "'") end)

local cases = dofile("tests/fixtures/locallayers.lua")

describe("LocallyConnected1D, LocallyConnected2D and ConvLSTM2D against float64 references", function()
  it("compute the fixtures' outputs", function()
    local n, seen = 0, {}
    for _, c in ipairs(cases) do
      local layer = L[c.class](c.args)
      local x = keras.tensor(c.x)
      local inp = keras.Input{shape = sample_shape(x)}
      local model = keras.Model{inputs = inp, outputs = layer(inp)}
      local ws = {}
      for i, w in ipairs(c.weights) do ws[i] = keras.tensor(w) end
      layer:set_weights(ws)
      local ok, err = pcall(assert_close, c.y, model:predict(x), 1e-5)
      if not ok then error(c.name .. ": " .. tostring(err)) end
      n, seen[c.class] = n + 1, true
    end
    assert.equal(10, n)
    assert.is_true(seen.LocallyConnected1D and seen.LocallyConnected2D and seen.ConvLSTM2D)
  end)

  it("have torch autograd's gradients (input and every weight, in Keras's order)", function()
    local n = 0
    for _, c in ipairs(cases) do
      if c.dy then
        local layer = L[c.class](c.args)
        local x, dyt = keras.tensor(c.x), keras.tensor(c.dy)
        local inp, dy = keras.Input{shape = sample_shape(x)}, keras.Input{shape = sample_shape(dyt)}
        local y = layer(inp)
        local ws = {}
        for i, w in ipairs(c.weights) do ws[i] = keras.tensor(w) end
        layer:set_weights(ws)
        local vars = {inp}
        for _, w in ipairs(layer._ordered_weights(layer)) do vars[#vars + 1] = w.node end
        assert.equal(#c.dw + 1, #vars)
        local gs = K["function"]({inp, dy}, K.gradients(K.sum(K.mul(y, dy)), vars))({x, dyt})
        local ok, err = pcall(assert_close, c.dx, gs[1], 1e-5)
        if not ok then error(c.name .. " dx: " .. tostring(err)) end
        for i, want in ipairs(c.dw) do
          ok, err = pcall(assert_close, want, gs[i + 1], 1e-5)
          if not ok then error(c.name .. " weight " .. i .. ": " .. tostring(err)) end
        end
        n = n + 1
      end
    end
    assert.equal(7, n)
  end)

  it("take one SGD step as the gradients say (train_on_batch)", function()
    for _, c in ipairs{cases[1], cases[4], cases[7], cases[8]} do
      local layer = L[c.class](c.args)
      local x, dyt = keras.tensor(c.x), keras.tensor(c.dy)
      local inp = keras.Input{shape = sample_shape(x)}
      local model = keras.Model{inputs = inp, outputs = layer(inp)}
      local ws = {}
      for i, w in ipairs(c.weights) do ws[i] = keras.tensor(w) end
      layer:set_weights(ws)
      local function loss(y_true, y_pred) return K.sum(K.mul(y_true, y_pred)) end
      model:compile{optimizer = keras.optimizers.SGD{lr = 0.1}, loss = loss}
      model:train_on_batch(x, dyt)
      local after = layer:get_weights()
      for i, w in ipairs(c.weights) do
        assert_close((keras.tensor(w) - keras.tensor(c.dw[i]) * 0.1):totable(), after[i], 1e-5)
      end
    end
  end)

  it("train: the loss falls with fit", function()
    keras.random.seed(11)
    local model = keras.Sequential{
      L.LocallyConnected2D{4, 3, activation = "relu", input_shape = {6, 6, 2}},
      L.Reshape{{16, 4}},
      L.LocallyConnected1D{2, 3, strides = 2, activation = "tanh"},
      L.Flatten(), L.Dense(1),
    }
    local x = keras.random.random{32, 6, 6, 2}
    local y = x:reshape{32, -1}:mean(1):reshape{32, 1} * 3
    model:compile{optimizer = keras.optimizers.Adam{lr = 0.01}, loss = "mse"}
    local losses = model:fit(x, y, {epochs = 20, batch_size = 8, verbose = 0}).history.loss
    assert.is_true(losses[#losses] < 0.5 * losses[1], string.format("%g -> %g", losses[1], losses[#losses]))
  end)
end)

describe("the locally connected layers' shapes, weights and misuse", function()
  it("hold Keras 2.2.4's kernel and bias shapes and count their parameters", function()
    local l1 = L.LocallyConnected1D(64, 3, {input_shape = {10, 32}})
    local m1 = keras.Sequential{l1, L.LocallyConnected1D(32, 3)}
    assert.same({None, 6, 32}, m1.output_shape)
    local ws = l1:get_weights()
    assert.same({8, 96, 64}, ws[1].shape)
    assert.same({8, 64}, ws[2].shape)
    local names = {}
    for i, w in ipairs(l1:_ordered_weights()) do names[i] = w.short end
    assert.same({"kernel", "bias"}, names)
    assert.truthy(l1.name:find("^locally_connected1d_%d+$"))
    local l2 = L.LocallyConnected2D{5, {3, 2}, strides = {2, 1}}
    local m2 = keras.Sequential{L.InputLayer{input_shape = {7, 6, 3}}, l2}
    assert.same({None, 3, 5, 5}, m2.output_shape)
    ws = l2:get_weights()
    assert.same({15, 18, 5}, ws[1].shape)
    assert.same({3, 5, 5}, ws[2].shape)
    assert.equal(15 * 18 * 5 + 75, m2:count_params())
    local lines = {}
    m2:summary{print_fn = function(s) lines[#lines + 1] = s end}
    local text = table.concat(lines, "\n")
    assert.truthy(text:find("%(None, 3, 5, 5%)%s+1425"))
    assert.truthy(text:find("Total params: 1,425", 1, true) or text:find("Total params: 1425", 1, true))
    local nb = L.LocallyConnected2D{2, 2, use_bias = false}
    nb(keras.Input{shape = {3, 3, 1}})
    assert.equal(1, #nb:get_weights())
  end)

  it("refuse misuse, naming the layer", function()
    assert.error_matches(function() L.LocallyConnected2D{4, 3, padding = "same"} end,
      "LocallyConnected2D: padding must be 'valid' (the only mode Keras 2.2.4 has for locally connected layers), "
      .. "got 'same'", 1, true)
    assert.error_matches(function() L.LocallyConnected1D{4, 3, padding = "causal"} end,
      "LocallyConnected1D: padding must be 'valid'", 1, true)
    assert.error_matches(function() L.LocallyConnected2D{4, 3, dilation_rate = 2} end,
      "LocallyConnected2D: unknown argument 'dilation_rate'", 1, true)
    assert.error_matches(function() L.LocallyConnected1D{4, 3, data_format = "channels_first"} end,
      "LocallyConnected1D: data_format 'channels_first' is not supported (channels_last only)", 1, true)
    assert.error_matches(function() L.LocallyConnected2D{0, 3} end,
      "LocallyConnected2D: filters must be an integer >= 1, got 0", 1, true)
    assert.error_matches(function() L.LocallyConnected1D{4} end,
      "LocallyConnected1D: missing argument 'kernel_size'", 1, true)
    local a = L.LocallyConnected1D{4, 3, name = "lc"}
    assert.error_matches(function() a(keras.Input{shape = {None, 3}}) end,
      "LocallyConnected1D (lc): needs a fixed input length (a kernel of its own at each position), got shape "
      .. "(None, None, 3)", 1, true)
    assert.error_matches(function()
      keras.Sequential{L.LocallyConnected2D{4, 2, name = "lc0", input_shape = {None, 5, 1}}}
    end,
      "LocallyConnected2D (lc0): needs a fixed input size (a kernel of its own at each position), got shape "
      .. "(None, None, 5, 1)", 1, true)
    local b = L.LocallyConnected2D{4, {2, 5}, name = "lc2"}
    assert.error_matches(function() b(keras.Input{shape = {4, 4, 1}}) end,
      "LocallyConnected2D (lc2): kernel size 2x5 is larger than the input 4x4 (padding 'valid')", 1, true)
    local c = L.LocallyConnected2D{4, 2, name = "lc3"}
    assert.error_matches(function() c(keras.Input{shape = {4, 3}}) end,
      "LocallyConnected2D (lc3): expected input with ndim=4 (batch, rows, cols, channels), found ndim=3", 1, true)
    -- a built layer called on another size
    local d = L.LocallyConnected1D{2, 2, name = "lc4"}
    d(keras.Input{shape = {5, 3}})
    assert.error_matches(function() d(keras.Input{shape = {6, 3}}) end,
      "LocallyConnected1D (lc4): was built for an input giving 4 positions, got shape (None, 6, 3)", 1, true)
    assert.error_matches(function() L.LocallyConnected1D{4, 3, kernel_constraint = "max_nrom"} end,
      "LocallyConnected1D: unknown constraint 'max_nrom'", 1, true)
  end)

  it("apply their constraints after each update", function()
    local layer = L.LocallyConnected1D{3, 2, kernel_constraint = "non_neg", input_shape = {5, 2},
      bias_constraint = keras.constraints.max_norm(0.1)}
    local model = keras.Sequential{layer}
    model:compile{optimizer = keras.optimizers.SGD{lr = 1}, loss = "mse"}
    model:train_on_batch(keras.random.random{4, 5, 2}, keras.random.random{4, 4, 3} + 5)
    local k, b = layer:get_weights()[1], layer:get_weights()[2]
    for _, v in ipairs(flat(k:totable())) do assert.is_true(v >= 0) end
    -- max_norm over axis 0 of the (4, 3) bias: every column's norm <= 0.1
    local bt = b:totable()
    for j = 1, 3 do
      local s = 0
      for i = 1, 4 do s = s + bt[i][j] ^ 2 end
      assert.is_true(math.sqrt(s) <= 0.1 + 1e-6)
    end
  end)
end)

describe("saving the locally connected layers", function()
  local function two_layer_model()
    local inp = keras.Input{shape = {7, 6, 2}}
    local y = L.LocallyConnected2D{3, {3, 2}, strides = 2, activation = "relu"}(inp)
    y = L.Reshape{{9, 3}}(y)
    y = L.LocallyConnected1D{2, 2, activation = "tanh", use_bias = false}(y)
    return keras.Model{inputs = inp, outputs = y}
  end

  it("round-trips through .lkm, .h5 and to_json with the same outputs", function()
    local m = two_layer_model()
    local ws = m:get_weights()
    for i = 1, #ws do ws[i] = keras.random.random(ws[i].shape) - 0.5 end
    m:set_weights(ws)
    local x = keras.random.random{2, 7, 6, 2}
    local want = m:predict(x):totable()
    for _, ext in ipairs{"lkm", "h5"} do
      m:save(P("m." .. ext))
      local copy = keras.models.load_model(P("m." .. ext))
      assert.equal("LocallyConnected2D", copy.layers[2].class_name)
      assert_close(want, copy:predict(x), 1e-6)
    end
    local copy = keras.models.model_from_json(m:to_json())
    copy:set_weights(m:get_weights())
    assert_close(want, copy:predict(x), 1e-6)
  end)

  it("write Keras 2.2.4's config keys and values", function()
    local m = keras.Sequential{L.LocallyConnected2D{4, 3, strides = 2, input_shape = {7, 7, 2}},
      L.Reshape{{9, 4}}, L.LocallyConnected1D(2, 3)}
    local cfg = keras.saving.json.decode(m:to_json()).config
    local c2, c1 = cfg[1].config, cfg[3].config
    assert.same({3, 3}, c2.kernel_size)
    assert.same({2, 2}, c2.strides)
    assert.equal("valid", c2.padding)
    assert.equal("channels_last", c2.data_format)
    assert.is_nil(c2.dilation_rate)
    assert.same({3}, c1.kernel_size)
    assert.same({1}, c1.strides)
    assert.equal("VarianceScaling", c1.kernel_initializer.class_name)
    assert.equal(keras.saving.json.null, c1.kernel_constraint)
  end)

  it("load a Keras 2.2.4 JSON config (model_from_json) with Keras's shapes and counts", function()
    local model = keras.models.model_from_json(read_all("tests/fixtures/keras_locallayers.json"))
    local expect = dofile("tests/fixtures/keras_locallayers.expect.lua")
    assert.equal(#expect, #model.layers)
    for i, l in ipairs(model.layers) do
      local want = {}
      for j, d in ipairs(expect[i].shape) do want[j] = d < 0 and None or d end
      assert.same(want, l.output_shape, "layer " .. i)
      assert.equal(expect[i].params, l:count_params(), "layer " .. i)
    end
    assert.same({2, 2}, model.layers[1].strides)
  end)

  it("load a Keras 2.2.4 .h5 file (h5py, Keras's layout) and predict what the loops compute", function()
    local c = dofile("tests/fixtures/keras_locallayers_h5.lua")
    local model = keras.models.load_model("tests/fixtures/keras_locallayers.h5")
    assert_close(c.y, model:predict(keras.tensor(c.x)), 1e-5)
    local fresh = keras.models.model_from_json(read_all("tests/fixtures/keras_locallayers.json"))
    fresh:load_weights("tests/fixtures/keras_locallayers.h5")
    assert_close(c.y, fresh:predict(keras.tensor(c.x)), 1e-5)
  end)
end)

describe("keras.layers.ConvLSTM2D", function()
  it("holds [kernel, recurrent_kernel, bias] in Keras's shapes, unit_forget_bias, and counts its parameters",
    function()
    local l = L.ConvLSTM2D{3, {3, 2}, input_shape = {4, 6, 5, 2}}
    local m = keras.Sequential{l}
    assert.same({None, 4, 4, 3}, m.output_shape)
    local ws = l:get_weights()
    assert.same({3, 2, 2, 12}, ws[1].shape)
    assert.same({3, 2, 3, 12}, ws[2].shape)
    assert.same({12}, ws[3].shape)
    assert.same({0, 0, 0, 1, 1, 1, 0, 0, 0, 0, 0, 0}, ws[3]:totable())
    local names = {}
    for i, w in ipairs(l:_ordered_weights()) do names[i] = w.short end
    assert.same({"kernel", "recurrent_kernel", "bias"}, names)
    assert.truthy(l.name:find("^conv_lst_m2d_%d+$"))
    assert.equal(3 * 2 * 2 * 12 + 3 * 2 * 3 * 12 + 12, m:count_params())
    local lines = {}
    m:summary{print_fn = function(s) lines[#lines + 1] = s end}
    assert.truthy(table.concat(lines, "\n"):find("%(None, 4, 4, 3%)%s+372"))
    local nf = L.ConvLSTM2D{2, 3, unit_forget_bias = false, bias_initializer = "ones"}
    nf(keras.Input{shape = {2, 5, 5, 1}})
    assert.same({1, 1, 1, 1, 1, 1, 1, 1}, nf:get_weights()[3]:totable())
    local nb = L.ConvLSTM2D{2, 3, use_bias = false, padding = "same", return_sequences = true}
    nb(keras.Input{shape = {2, 5, 5, 1}})
    assert.equal(2, #nb:get_weights())
    assert.same({None, 2, 5, 5, 2}, nb.output_shape)
  end)

  it("returns its final states with return_state", function()
    local c = cases[7]
    local layer = L.ConvLSTM2D{2, 3, padding = "same", return_state = true}
    local inp = keras.Input{shape = sample_shape(keras.tensor(c.x))}
    local outs = layer(inp)
    assert.equal(3, #outs)
    local ws = {}
    for i, w in ipairs(c.weights) do ws[i] = keras.tensor(w) end
    layer:set_weights(ws)
    local got = keras.Model{inputs = inp, outputs = outs}:predict(keras.tensor(c.x))
    -- the output is h, the last step of the fixture's sequence
    local last = {}
    for b = 1, #c.y do last[b] = c.y[b][#c.y[b]] end
    assert_close(last, got[1], 1e-5)
    assert_close(last, got[2], 1e-5)
    assert.same({2, 4, 5, 2}, got[3].shape)
  end)

  -- the fixture of case 7: its case, input and weights
  local function conv_lstm_case()
    local c = cases[7]
    local ws = {}
    for i, w in ipairs(c.weights) do ws[i] = keras.tensor(w) end
    return c, keras.tensor(c.x), ws
  end

  it("starts from initial_state (h, c) and returns the states to continue from", function()
    local c, x, ws = conv_lstm_case()
    local xs = x.shape
    local T = xs[2]
    local function steps(first, last)   -- (batch, last - first + 1, rows, cols, ch)
      local rows = {}
      local flat2 = x:reshape{xs[1] * T, xs[3] * xs[4] * xs[5]}
      for b = 1, xs[1] do for t = first, last do rows[#rows + 1] = (b - 1) * T + t end end
      return flat2:take(rows):reshape{xs[1], last - first + 1, xs[3], xs[4], xs[5]}
    end
    local k = 2
    local head = L.ConvLSTM2D{2, 3, padding = "same", return_state = true}
    local hin = keras.Input{shape = {k, xs[3], xs[4], xs[5]}}
    local mh = keras.Model{inputs = hin, outputs = head(hin)}
    head:set_weights(ws)
    local first = mh:predict(steps(1, k))
    local tail = L.ConvLSTM2D{2, 3, padding = "same", return_sequences = true}
    local tin = keras.Input{shape = {T - k, xs[3], xs[4], xs[5]}}
    local h0, c0 = keras.Input{shape = sample_shape(first[2])}, keras.Input{shape = sample_shape(first[3])}
    local mt = keras.Model{inputs = {tin, h0, c0}, outputs = tail(tin, {initial_state = {h0, c0}})}
    tail:set_weights(ws)
    local rest = mt:predict{steps(k + 1, T), first[2], first[3]}
    -- the fixture's outputs of steps k+1..T
    local want = {}
    for b = 1, #c.y do
      want[b] = {}
      for t = k + 1, T do want[b][#want[b] + 1] = c.y[b][t] end
    end
    assert_close(want, rest, 1e-5)
    -- states as extra inputs: the same
    local tail2 = L.ConvLSTM2D{2, 3, padding = "same", return_sequences = true}
    local tin2 = keras.Input{shape = {T - k, xs[3], xs[4], xs[5]}}
    local h2, c2 = keras.Input{shape = sample_shape(first[2])}, keras.Input{shape = sample_shape(first[3])}
    local mt2 = keras.Model{inputs = {tin2, h2, c2}, outputs = tail2{tin2, h2, c2}}
    tail2:set_weights(ws)
    assert_close(want, mt2:predict{steps(k + 1, T), first[2], first[3]}, 1e-5)
    assert.error_matches(function() L.ConvLSTM2D{2, 3, padding = "same", name = "cs"}(tin, {initial_state = {h0}}) end,
      "ConvLSTM2D (cs): Layer has 2 states but was passed 1 initial states.", 1, true)
    local bad = keras.Input{shape = {3, 3, 2}}
    assert.error_matches(function()
      L.ConvLSTM2D{2, 3, padding = "same", name = "cs2"}(tin, {initial_state = {bad, bad}})
    end, "ConvLSTM2D (cs2): initial state 1 must have shape (batch, " .. xs[3] .. ", " .. xs[4] .. ", 2), got "
      .. "(None, 3, 3, 2)", 1, true)
  end)

  it("holds its states through masked steps: the run with the masked steps left out", function()
    local _, x, ws = conv_lstm_case()
    local xs = x.shape
    local T = xs[2]
    assert.is_true(T >= 3)
    -- step 2 of every sample zeroed and masked (a layer written in Lua gives
    -- the mask (batch, time): a step is on where any value is not 0): the
    -- final output and states are those of the sequence without step 2
    local StepMask = L.Layer:extend("StepMask")
    function StepMask:init() self.supports_masking = true end
    function StepMask.compute_mask(_, v) return K.any(K.not_equal(v, 0), {2, 3, 4}) end
    local xv = x:totable()
    for b = 1, xs[1] do
      for r = 1, xs[3] do for q = 1, xs[4] do for ch = 1, xs[5] do xv[b][2][r][q][ch] = 0 end end end
    end
    x = keras.tensor(xv)
    local inp = keras.Input{shape = sample_shape(x)}
    local layer = L.ConvLSTM2D{2, 3, padding = "same", return_state = true}
    local m = keras.Model{inputs = inp, outputs = layer(StepMask()(inp))}
    layer:set_weights(ws)
    local got = m:predict(x)
    local rows = {}
    local flat2 = x:reshape{xs[1] * T, xs[3] * xs[4] * xs[5]}
    for b = 1, xs[1] do for t = 1, T do if t ~= 2 then rows[#rows + 1] = (b - 1) * T + t end end end
    local short = flat2:take(rows):reshape{xs[1], T - 1, xs[3], xs[4], xs[5]}
    local ref = L.ConvLSTM2D{2, 3, padding = "same", return_state = true}
    local rin = keras.Input{shape = sample_shape(short)}
    local mr = keras.Model{inputs = rin, outputs = ref(rin)}
    ref:set_weights(ws)
    local want = mr:predict(short)
    for k = 1, 3 do assert_close(want[k]:totable(), got[k], 1e-5) end
    -- and the same layer unmasked differs (the mask did something)
    local plain = keras.Model{inputs = inp, outputs = layer(inp)}
    assert.is_true((plain:predict(x)[1] - got[1]):abs():max() > 1e-4)
    -- a mask per position (Masking on 5-D input) is not one per step
    assert.error_matches(function()
      L.ConvLSTM2D{2, 3, padding = "same", name = "cm"}(L.Masking()(inp))
    end, "ConvLSTM2D (cm): expects a mask of shape (batch, " .. T .. ") (one value per time step), got (None, "
      .. T .. ", " .. xs[3] .. ", " .. xs[4] .. ")", 1, true)
  end)

  it("drops in training only: predict matches the layer without dropout, and fit trains", function()
    keras.random.seed(5)
    local c = cases[7]
    local x = keras.tensor(c.x)
    local a = L.ConvLSTM2D{2, 3, padding = "same", return_sequences = true, dropout = 0.4, recurrent_dropout = 0.3}
    local b = L.ConvLSTM2D{2, 3, padding = "same", return_sequences = true}
    local ma = keras.Sequential{keras.layers.InputLayer{input_shape = sample_shape(x)}, a}
    local mb = keras.Sequential{keras.layers.InputLayer{input_shape = sample_shape(x)}, b}
    local ws = {}
    for i, w in ipairs(c.weights) do ws[i] = keras.tensor(w) end
    a:set_weights(ws)
    b:set_weights(ws)
    assert_close(c.y, ma:predict(x), 1e-5)
    assert_close(c.y, mb:predict(x), 1e-5)
    -- in training the masks change the gradients: one SGD step moves the weights differently
    local function loss(y_true, y_pred) return K.sum(K.mul(y_true, y_pred)) end
    ma:compile{optimizer = keras.optimizers.SGD{lr = 0.1}, loss = loss}
    mb:compile{optimizer = keras.optimizers.SGD{lr = 0.1}, loss = loss}
    local dy = keras.tensor(c.dy)
    ma:train_on_batch(x, dy)
    mb:train_on_batch(x, dy)
    assert_close(c.weights[1], b:get_weights()[1] + keras.tensor(c.dw[1]) * 0.1, 1e-5)
    local diff = (a:get_weights()[1] - b:get_weights()[1]):abs():max()
    assert.is_true(diff > 1e-4)
  end)

  it("trains: the loss falls with fit", function()
    keras.random.seed(3)
    local model = keras.Sequential{
      L.ConvLSTM2D{4, 3, padding = "same", return_sequences = true, input_shape = {3, 6, 6, 1}},
      L.ConvLSTM2D{2, 3, strides = 2},
      L.Flatten(), L.Dense(1),
    }
    local x = keras.random.random{16, 3, 6, 6, 1}
    local y = x:reshape{16, -1}:mean(1):reshape{16, 1} * 3
    model:compile{optimizer = keras.optimizers.Adam{lr = 0.01}, loss = "mse"}
    local losses = model:fit(x, y, {epochs = 20, batch_size = 8, verbose = 0}).history.loss
    assert.is_true(losses[#losses] < 0.5 * losses[1], string.format("%g -> %g", losses[1], losses[#losses]))
  end)

  it("refuses misuse, naming the layer", function()
    assert.error_matches(function() L.ConvLSTM2D{2, 3, stateful = true} end,
      "ConvLSTM2D: stateful = true is not supported", 1, true)
    assert.error_matches(function() L.ConvLSTM2D{2, 3, unroll = true} end,
      "ConvLSTM2D: Unrolling isn't possible with convolutional RNNs.", 1, true)
    assert.error_matches(function() L.ConvLSTM2D{2, 3, padding = "causal"} end,
      "ConvLSTM2D: padding must be 'valid' or 'same', got 'causal'", 1, true)
    assert.error_matches(function() L.ConvLSTM2D{2, 3, data_format = "channels_first"} end,
      "ConvLSTM2D: data_format 'channels_first' is not supported (channels_last only)", 1, true)
    assert.error_matches(function() L.ConvLSTM2D{2, {1, 2, 3}} end,
      "ConvLSTM2D: kernel_size must be an integer or a list of 2 integers >= 1, got a table of 3", 1, true)
    assert.error_matches(function() L.ConvLSTM2D{2, 3, strides = 2, dilation_rate = 2} end,
      "ConvLSTM2D: strides other than 1 cannot be combined with a dilation_rate other than 1", 1, true)
    assert.error_matches(function() L.ConvLSTM2D{2, 3, dropout = 1.5} end,
      "ConvLSTM2D: dropout must be a number in [0, 1), got 1.5", 1, true)
    assert.error_matches(function() L.ConvLSTM2D{2} end, "ConvLSTM2D: missing argument 'kernel_size'", 1, true)
    assert.error_matches(function() L.ConvLSTM2D{2, 3, recurrent_constraint = "max_nrom"} end,
      "ConvLSTM2D: unknown constraint 'max_nrom'", 1, true)
    local a = L.ConvLSTM2D{2, 3, name = "cl"}
    assert.error_matches(function() a(keras.Input{shape = {None, 5, 5, 1}}) end,
      "ConvLSTM2D (cl): needs a fixed number of timesteps (its steps are unrolled in the graph), got shape "
      .. "(None, None, 5, 5, 1)", 1, true)
    assert.error_matches(function()
      keras.Sequential{L.ConvLSTM2D{2, 3, name = "cl1", input_shape = {None, 5, 5, 1}}}
    end,
      "ConvLSTM2D (cl1): needs a fixed number of timesteps", 1, true)
    local b = L.ConvLSTM2D{2, 3, name = "cl2"}
    assert.error_matches(function() b(keras.Input{shape = {5, 5, 1}}) end,
      "ConvLSTM2D (cl2): expected input with ndim=5 (batch, time, rows, cols, channels), found ndim=4", 1, true)
    local d = L.ConvLSTM2D{2, {3, 6}, name = "cl3"}
    assert.error_matches(function() d(keras.Input{shape = {2, 5, 5, 1}}) end,
      "ConvLSTM2D (cl3): kernel extent 3x6 is larger than the input 5x5 (padding 'valid')", 1, true)
  end)

  it("applies its constraints after each update", function()
    local l = L.ConvLSTM2D{2, 2, recurrent_constraint = "non_neg", kernel_constraint = "non_neg",
      input_shape = {2, 3, 3, 1}}
    local m = keras.Sequential{l}
    m:compile{optimizer = keras.optimizers.SGD{lr = 1}, loss = "mse"}
    m:train_on_batch(keras.random.random{4, 2, 3, 3, 1}, keras.random.random{4, 2, 2, 2} - 5)
    for i = 1, 2 do
      for _, v in ipairs(flat(l:get_weights()[i]:totable())) do assert.is_true(v >= 0) end
    end
  end)

  it("writes Keras 2.2.4's config and round-trips through .lkm, .h5 and to_json", function()
    local inp = keras.Input{shape = {3, 6, 5, 2}}
    local y = L.ConvLSTM2D{3, 3, padding = "same", return_sequences = true, go_backwards = true}(inp)
    y = L.ConvLSTM2D{2, 2, strides = 2, recurrent_activation = "sigmoid"}(y)
    local m = keras.Model{inputs = inp, outputs = y}
    local ws = m:get_weights()
    for i = 1, #ws do ws[i] = keras.random.random(ws[i].shape) - 0.5 end
    m:set_weights(ws)
    local x = keras.random.random{2, 3, 6, 5, 2}
    local want = m:predict(x):totable()
    for _, ext in ipairs{"lkm", "h5"} do
      m:save(P("c." .. ext))
      local copy = keras.models.load_model(P("c." .. ext))
      assert.equal("ConvLSTM2D", copy.layers[2].class_name)
      assert_close(want, copy:predict(x), 1e-6)
    end
    local cfg = keras.saving.json.decode(m:to_json()).config.layers[2].config
    assert.same({3, 3}, cfg.kernel_size)
    assert.same({1, 1}, cfg.strides)
    assert.same({1, 1}, cfg.dilation_rate)
    assert.is_true(cfg.go_backwards)
    assert.is_true(cfg.unit_forget_bias)
    assert.equal(0, cfg.recurrent_dropout)
    assert.equal("hard_sigmoid", cfg.recurrent_activation)
    assert.equal("Orthogonal", cfg.recurrent_initializer.class_name)
    local copy = keras.models.model_from_json(m:to_json())
    copy:set_weights(m:get_weights())
    assert_close(want, copy:predict(x), 1e-6)
  end)

  it("loads a Keras 2.2.4 JSON config and .h5 file (h5py, Keras's layout) and predicts the equations' values",
    function()
    local model = keras.models.model_from_json(read_all("tests/fixtures/keras_convlstm2d.json"))
    local expect = dofile("tests/fixtures/keras_convlstm2d.expect.lua")
    assert.equal(#expect, #model.layers)
    for i, l in ipairs(model.layers) do
      local want = {}
      for j, d in ipairs(expect[i].shape) do want[j] = d < 0 and None or d end
      assert.same(want, l.output_shape, "layer " .. i)
      assert.equal(expect[i].params, l:count_params(), "layer " .. i)
    end
    local c = dofile("tests/fixtures/keras_convlstm2d_h5.lua")
    assert_close(c.y, keras.models.load_model("tests/fixtures/keras_convlstm2d.h5"):predict(keras.tensor(c.x)), 1e-5)
    model:load_weights("tests/fixtures/keras_convlstm2d.h5")
    assert_close(c.y, model:predict(keras.tensor(c.x)), 1e-5)
  end)
end)
