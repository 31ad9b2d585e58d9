-- CuDNNGRU, CuDNNLSTM, GRU(reset_after = true) and RNN with cells
-- (SimpleRNNCell, GRUCell, LSTMCell, StackedRNNCells): outputs, final states
-- and one SGD step against PyTorch (tests/fixtures/rnncells.lua, made by
-- scripts/fixtures/rnncell_fixtures.py), a model file written in Keras 2.2.4's
-- layout (tests/fixtures/rnncells_keras.h5), configs, states, misuse.
local keras = require "keras"
local json = require "keras.json"
local L = keras.layers

local FIX = dofile("tests/fixtures/rnncells.lua")

local U_ = dofile("tests/lib/spec_util.lua")
local flat = U_.flat

local function assert_close(want, got, tol, what)
  tol = tol or 1e-5
  local g = flat(type(got) == "table" and got or got:totable())
  local w = flat(type(want) == "table" and want or want:totable())
  assert.equal(#w, #g, (what or "") .. ": number of elements")
  for i = 1, #w do
    if not (math.abs(g[i] - w[i]) <= tol * math.max(1, math.abs(w[i]))) then
      error(string.format("%s: element %d is %.9g, expected %.9g", what or "", i, g[i], w[i]), 2)
    end
  end
end

local function tmpdir()
  local p = io.popen("mktemp -d /tmp/lkeras-rnncells-XXXXXX")
  local d = p:read("l")
  p:close()
  return d
end
local DIR = tmpdir()
local function P(name) return DIR .. "/" .. name end
teardown(function() os.execute("rm -rf '" .. DIR .. "'") end)

local function shape_of(t)
  local s, v = {}, t
  while type(v) == "table" do s[#s + 1] = #v; v = v[1] end
  return s
end

describe("CuDNN layers and RNN cells against PyTorch", function()
  for _, c in ipairs(FIX.cases) do
    it(c.name .. ": outputs, states and one SGD step", function()
      local x = keras.tensor(c.x)
      local xs = shape_of(c.x)
      local layer = c.layer(L)
      local inp = keras.Input{shape = {xs[2], xs[3]}}
      local outs = layer(inp)
      local list = type(outs) == "table" and outs or {outs}
      local model = keras.Model{inputs = inp, outputs = list}
      local w = {}
      for i, v in ipairs(c.w) do w[i] = keras.tensor(v) end
      layer:set_weights(w)
      local got = model:predict(x)
      if #list == 1 then got = {got} end
      assert.equal(#c.outs, #got, "number of outputs")
      for i, want in ipairs(c.outs) do assert_close(want, got[i], 1e-5, "output " .. i) end
      -- one SGD step on the mean squared error of the first output
      local train = keras.Model{inputs = inp, outputs = list[1]}
      train:compile{optimizer = keras.optimizers.SGD{lr = FIX.lr}, loss = "mse"}
      train:train_on_batch(x, keras.tensor(c.t))
      local after = layer:get_weights()
      assert.equal(#c.new, #after)
      for i, want in ipairs(c.new) do assert_close(want, after[i], 1e-5, "weight " .. i .. " after the step") end
    end)
  end
end)

describe("a model file written by Keras 2.2.4", function()
  local have = os.execute("/usr/bin/python3 -c 'import h5py' 2>/dev/null")

  it("loads (CuDNNLSTM, RNN of StackedRNNCells: GRUCell reset_after, LSTMCell; CuDNNGRU) and predicts", function()
    local m = keras.models.load_model(FIX.h5.file)
    local names = {}
    for i, l in ipairs(m.layers) do names[i] = l.class_name end
    assert.same({"CuDNNLSTM", "RNN", "CuDNNGRU", "Dense"}, names)
    assert.equal("StackedRNNCells", m.layers[2].cell.class_name)
    assert.is_true(m.layers[2].cell.cells[1].reset_after)
    assert.same({2, 12}, m.layers[2]:get_weights()[3].shape)
    assert.same({24}, m.layers[1]:get_weights()[3].shape)
    assert.same({12}, m.layers[3]:get_weights()[3].shape)
    assert_close(FIX.h5.y, m:predict(keras.tensor(FIX.h5.x)), 1e-5, "prediction")
  end)

  for _, ext in ipairs{"h5", "lkm"} do
    it("saves and loads again (." .. ext .. "): the same config, weights and predictions", function()
      local m = keras.models.load_model(FIX.h5.file)
      m:save(P("again." .. ext))
      local m2 = keras.models.load_model(P("again." .. ext))
      assert.equal(m:to_json(), m2:to_json())
      assert_close(FIX.h5.y, m2:predict(keras.tensor(FIX.h5.x)), 1e-5, "prediction")
    end)
  end

  it("writes the weights under Keras's names (the RNN's cells in the layer's scope)", function()
    if not have then pending("python3-h5py is not installed") return end
    local m = keras.models.load_model(FIX.h5.file)
    m:save(P("names.h5"))
    local p = io.popen("/usr/bin/python3 -c \"import h5py; f = h5py.File('" .. P("names.h5") ..
      "', 'r'); g = f['model_weights']; print(' '.join(n.decode() + '=' + 'x'.join(str(d) for d in g[l][n].shape) " ..
      "for l in ('cu_dnnlstm_1', 'rnn_1', 'cu_dnngru_1') for n in g[l].attrs['weight_names']))\"")
    local out = p:read("a")
    p:close()
    assert.equal("cu_dnnlstm_1/kernel:0=4x12 cu_dnnlstm_1/recurrent_kernel:0=3x12 cu_dnnlstm_1/bias:0=24 " ..
      "rnn_1/kernel:0=3x12 rnn_1/recurrent_kernel:0=4x12 rnn_1/bias:0=2x12 rnn_1/kernel_1:0=4x12 " ..
      "rnn_1/recurrent_kernel_1:0=3x12 rnn_1/bias_1:0=12 cu_dnngru_1/kernel:0=3x6 " ..
      "cu_dnngru_1/recurrent_kernel:0=2x6 cu_dnngru_1/bias:0=12\n", out)
  end)
end)

describe("configs", function()
  it("writes Keras 2.2.4's keys: RNN nests its cell, a list of cells becomes StackedRNNCells", function()
    L._reset_uids()
    local r = L.RNN({L.SimpleRNNCell(2), L.LSTMCell(3, {unit_forget_bias = false})}, {return_state = true})
    local c = r:get_config()
    assert.equal("StackedRNNCells", c.cell.class_name)
    assert.equal("SimpleRNNCell", c.cell.config.cells[1].class_name)
    assert.is_false(c.cell.config.cells[2].config.unit_forget_bias)
    local keys = {}
    for _, k in ipairs(json.keys(c)) do keys[#keys + 1] = k end
    assert.same({"name", "trainable", "return_sequences", "return_state", "go_backwards", "stateful", "unroll",
                 "cell"}, keys)
    local back = L.RNN.from_config(c)
    assert.equal(json.encode(c), json.encode(back:get_config()))
    local g = L.CuDNNGRU(4, {return_sequences = true}):get_config()
    keys = {}
    for _, k in ipairs(json.keys(g)) do keys[#keys + 1] = k end
    assert.same({"name", "trainable", "return_sequences", "return_state", "go_backwards", "stateful", "units",
                 "kernel_initializer", "recurrent_initializer", "bias_initializer", "kernel_regularizer",
                 "recurrent_regularizer", "bias_regularizer", "activity_regularizer", "kernel_constraint",
                 "recurrent_constraint", "bias_constraint"}, keys)
    assert.is_nil(g.activation)
    assert.is_true(L.CuDNNLSTM(2):get_config().unit_forget_bias)
  end)

  it("loads Keras's JSON of a GRU with reset_after and of RNN(GRUCell)", function()
    local cfg = [[{"class_name": "Sequential", "config": [
      {"class_name": "GRU", "config": {"name": "gru_1", "trainable": true, "batch_input_shape": [null, 4, 3],
        "dtype": "float32", "return_sequences": false, "return_state": false, "go_backwards": false,
        "stateful": false, "unroll": false, "units": 5, "activation": "tanh", "recurrent_activation": "sigmoid",
        "use_bias": true, "kernel_initializer": {"class_name": "VarianceScaling", "config": {"scale": 1.0,
        "mode": "fan_avg", "distribution": "uniform", "seed": null}}, "recurrent_initializer": {"class_name":
        "Orthogonal", "config": {"gain": 1.0, "seed": null}}, "bias_initializer": {"class_name": "Zeros",
        "config": {}}, "kernel_regularizer": null, "recurrent_regularizer": null, "bias_regularizer": null,
        "activity_regularizer": null, "kernel_constraint": null, "recurrent_constraint": null,
        "bias_constraint": null, "dropout": 0.0, "recurrent_dropout": 0.0, "implementation": 2,
        "reset_after": true}},
      {"class_name": "RepeatVector", "config": {"name": "rv", "trainable": true, "n": 2}},
      {"class_name": "RNN", "config": {"name": "rnn_7", "trainable": true, "return_sequences": true,
        "return_state": false, "go_backwards": false, "stateful": false, "unroll": false,
        "cell": {"class_name": "GRUCell", "config": {"name": "gru_cell_3", "trainable": true, "units": 2,
        "activation": "tanh", "recurrent_activation": "hard_sigmoid", "use_bias": true,
        "kernel_initializer": {"class_name": "VarianceScaling", "config": {"scale": 1.0, "mode": "fan_avg",
        "distribution": "uniform", "seed": null}}, "recurrent_initializer": {"class_name": "Orthogonal",
        "config": {"gain": 1.0, "seed": null}}, "bias_initializer": {"class_name": "Zeros", "config": {}},
        "kernel_regularizer": null, "recurrent_regularizer": null, "bias_regularizer": null,
        "kernel_constraint": null, "recurrent_constraint": null, "bias_constraint": null, "dropout": 0.0,
        "recurrent_dropout": 0.0, "implementation": 1, "reset_after": true}}}}]}]]
    local m = keras.models.model_from_json(cfg)
    assert.same({2, 15}, m.layers[1]:get_weights()[3].shape)
    assert.same({2, 6}, m.layers[3]:get_weights()[3].shape)
    assert.same({-1, 2, 2}, m.output.shape)
    local again = keras.models.model_from_json(m:to_json())
    assert.equal(m:to_json(), again:to_json())
  end)
end)

describe("RNN with cells", function()
  it("keeps the states of a stateful stack between batches (the last cell's states first)", function()
    keras.random.seed(5)
    local xt = keras.random.uniform({2, 6, 3}, -1, 1):totable()
    local a, b = {}, {}
    for i = 1, 2 do
      a[i], b[i] = {}, {}
      for t = 1, 3 do a[i][t], b[i][t] = xt[i][t], xt[i][t + 3] end
    end
    local inp = keras.Input{shape = {6, 3}}
    local rw = L.RNN({L.LSTMCell(3), L.GRUCell(2)}, {return_state = true})
    local whole = keras.Model{inputs = inp, outputs = rw(inp)}
    local rp = L.RNN({L.LSTMCell(3), L.GRUCell(2)}, {stateful = true, batch_input_shape = {2, 3, 3}})
    local parts = keras.Sequential{rp}
    rp:set_weights(rw:get_weights())
    local want = whole:predict(keras.tensor(xt))
    local first = parts:predict(keras.tensor(a))
    local got = parts:predict(keras.tensor(b))
    assert_close(want[1], got, 1e-5, "output")
    local st = rp.states
    assert.equal(3, #st)
    assert.same({2, 2}, st[1].shape)   -- the GRU's h, then the LSTM's h and c
    for i = 1, 3 do assert_close(want[i + 1], st[i], 1e-5, "state " .. i) end
    rp:reset_states()
    assert_close(first, parts:predict(keras.tensor(a)), 0, "after reset_states")
    rp:reset_states({st[1], st[2], st[3]})
    assert.error_matches(function() rp:reset_states({st[1]}) end, "expects 3 states, but it received 1", 1, true)
  end)

  it("adds the cells' regularizers to the loss and runs on any length under a None time axis", function()
    keras.random.seed(9)
    local cell = L.LSTMCell(3, {kernel_regularizer = keras.regularizers.l2(0.5)})
    local r = L.RNN({L.SimpleRNNCell(2, {bias_regularizer = keras.regularizers.l1(0.25)}), cell},
                    {input_shape = {keras.None, 2}})
    local m = keras.Sequential{r}
    m:compile("sgd", "mse")
    local b = keras.random.uniform({2}, 0.5, 1)
    local w = r:get_weights()
    w[3] = b
    r:set_weights(w)
    local x = keras.random.uniform({4, 5, 2})
    local zeros = keras.tensor({{0, 0, 0}, {0, 0, 0}, {0, 0, 0}, {0, 0, 0}})
    local mse = 0
    for _, row in ipairs(m:predict(x):totable()) do for _, v in ipairs(row) do mse = mse + v * v / 12 end end
    local pen = 0
    for _, row in ipairs(w[4]:totable()) do for _, v in ipairs(row) do pen = pen + 0.5 * v * v end end
    for _, v in ipairs(b:totable()) do pen = pen + 0.25 * math.abs(v) end
    assert_close({mse + pen}, {m:evaluate(x, zeros, {verbose = 0})}, 1e-5, "loss")
    assert.same({4, 3}, m:predict(keras.random.uniform({4, 7, 2})).shape)
  end)

  it("takes initial states in Keras's order and runs with a mask", function()
    keras.random.seed(6)
    local inp = keras.Input{shape = {4}}
    local emb = L.Embedding(10, 3, {mask_zero = true})(inp)
    local h2 = keras.Input{shape = {2}}
    local h1, c1 = keras.Input{shape = {3}}, keras.Input{shape = {3}}
    local r = L.RNN({L.LSTMCell(3), L.SimpleRNNCell(2)}, {return_sequences = true})
    local y = r(emb, {initial_state = {h2, h1, c1}})
    local m = keras.Model{inputs = {inp, h2, h1, c1}, outputs = y}
    local ids = keras.tensor({{1, 2, 0, 0}, {3, 0, 0, 0}})
    local z2, z3 = keras.tensor({{0, 0}, {0, 0}}), keras.tensor({{0, 0, 0}, {0, 0, 0}})
    local out = m:predict({ids, z2, z3, z3}):totable()
    -- a masked step carries the output over
    assert_close(out[1][2], out[1][4], 0, "carried")
    assert_close(out[2][1], out[2][3], 0, "carried")
    local other = m:predict({ids, keras.tensor({{1, 1}, {1, 1}}), z3, z3}):totable()
    assert.is_true(math.abs(other[1][1][1] - out[1][1][1]) > 1e-4)
  end)
end)

describe("misuse", function()
  it("gets clear errors", function()
    assert.error_matches(function() L.RNN(L.Dense(3)) end,
      "RNN: expected a cell (SimpleRNNCell, GRUCell, LSTMCell, a cell written in Lua with state_size and "
      .. "call(self, x, states), StackedRNNCells) or a list of cells, got a Dense layer", 1, true)
    -- (cells written in Lua are taken: rnn_lua_cells_spec.lua; one of an unknown length is refused)
    local MyCell = L.Layer:extend("MyCell")
    function MyCell:init(args) self.units = args[1]; self.state_size = args[1] end
    function MyCell:call(x, states) return x, states end
    assert.error_matches(function() L.RNN(MyCell(3))(keras.Input{shape = {keras.backend.None, 3}}) end,
      "is written in Lua: its steps are unrolled", 1, true)
    assert.error_matches(function() L.StackedRNNCells{{}} end,
      "StackedRNNCells: cells must be a non-empty list of cells", 1, true)
    assert.error_matches(function() L.CuDNNLSTM(3, {dropout = 0.2}) end, "CuDNNLSTM: unknown argument 'dropout'", 1,
      true)
    assert.error_matches(function() L.CuDNNGRU(3, {activation = "relu"}) end,
      "CuDNNGRU: unknown argument 'activation'", 1, true)
    local cell = L.LSTMCell(2)
    L.RNN(cell)
    assert.error_matches(function() L.RNN(cell) end, "cell 'lstm_cell_", 1, true)
    local inp = keras.Input{shape = {3, 2}}
    assert.error_matches(function() L.GRUCell(2)(inp) end, "a cell runs inside an RNN layer", 1, true)
    local ids = keras.Input{shape = {3}}
    local e = L.Embedding(5, 2, {mask_zero = true})(ids)
    assert.error_matches(function() L.CuDNNGRU(2)(e) end, "Masking is not supported for CuDNN RNNs.", 1, true)
    local r = L.RNN({L.LSTMCell(2), L.GRUCell(2)})
    assert.error_matches(function() r(inp, {initial_state = {keras.Input{shape = {2}}}}) end,
      "Layer has 3 states but was passed 1 initial states.", 1, true)
    assert.error_matches(function() L.RNN(L.SimpleRNNCell(2))(keras.Input{shape = {3}}) end,
      "expected ndim=3, found ndim=2", 1, true)
  end)

  it("Bidirectional wraps the CuDNN layers", function()
    local inp = keras.Input{shape = {5, 3}}
    local y = L.Bidirectional(L.CuDNNLSTM(4, {return_sequences = true}))(inp)
    assert.same({-1, 5, 8}, y.shape)
    local m = keras.Model{inputs = inp, outputs = y}
    assert.equal(6, #m:get_weights())
  end)
end)

describe("Bidirectional", function()
  it("wraps RNN(cell): the same numbers as wrapping the layer twin, cells of its own going backwards", function()
    keras.random.seed(8)
    local x = keras.random.uniform({2, 4, 3}, -1, 1)
    local inp = keras.Input{shape = {4, 3}}
    local a = L.Bidirectional(L.RNN(L.LSTMCell(3, {recurrent_activation = "sigmoid"}), {return_sequences = true}))
    local b = L.Bidirectional(L.LSTM(3, {recurrent_activation = "sigmoid", return_sequences = true}))
    local ma = keras.Model{inputs = inp, outputs = a(inp)}
    local mb = keras.Model{inputs = inp, outputs = b(inp)}
    assert.are_not.equal(a.forward_layer.cell, a.backward_layer.cell)
    local w = mb:get_weights()
    ma:set_weights(w)
    assert_close(mb:predict(x), ma:predict(x), 1e-6, "output")
    local back = keras.models.model_from_json(ma:to_json())
    back:set_weights(w)
    assert_close(mb:predict(x), back:predict(x), 1e-6, "output after model_from_json")
  end)
end)
