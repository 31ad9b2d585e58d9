-- RNN with cells written in Lua (lua/keras/layers_rnn_lua.lua): a cell with
-- the built-in cells' own math must give the built-in layers' numbers (the
-- built-in rnn op is checked against PyTorch in rnncells_spec.lua), forward,
-- states and training; the cell's Lua runs only while the model is put together.
local keras = require "keras"
local K, L = keras.backend, keras.layers

local function flat(t) return t:reshape{-1}:totable() end
local function max_abs_diff(a, b)
  local x, y = flat(a), flat(b)
  assert.equal(#x, #y)
  local m = 0
  for i = 1, #x do m = math.max(m, math.abs(x[i] - y[i])) end
  return m
end

-- SimpleRNNCell's math: h = tanh(x W + h U + b); counts its calls
local SimpleCell = L.Layer:extend("LuaSimpleCell")
SimpleCell.calls = 0
function SimpleCell:init(a)
  self.units = a.units or a[1]
  self.state_size = self.units
end
function SimpleCell:build(shape)
  self.kernel = self:add_weight{name = "kernel", shape = {shape[2], self.units}, initializer = "glorot_uniform"}
  self.recurrent_kernel = self:add_weight{name = "recurrent_kernel", shape = {self.units, self.units},
    initializer = "orthogonal"}
  self.bias = self:add_weight{name = "bias", shape = {self.units}, initializer = "zeros"}
end
function SimpleCell:call(x, states)
  SimpleCell.calls = SimpleCell.calls + 1
  local h = K.tanh(K.bias_add(K.dot(x, self.kernel) + K.dot(states[1], self.recurrent_kernel), self.bias))
  return h, {h}
end
function SimpleCell:get_config() return {units = self.units} end

-- LSTMCell's math (Keras's gate order i, f, c, o; hard_sigmoid gates); two states
local LSTMish = L.Layer:extend("LuaLSTMCell")
function LSTMish:init(a)
  self.units = a.units or a[1]
  self.state_size = {self.units, self.units}
end
function LSTMish:build(shape)
  local u = self.units
  self.kernel = self:add_weight{name = "kernel", shape = {shape[2], 4 * u}, initializer = "glorot_uniform"}
  self.recurrent_kernel = self:add_weight{name = "recurrent_kernel", shape = {u, 4 * u}, initializer = "orthogonal"}
  self.bias = self:add_weight{name = "bias", shape = {4 * u}, initializer = "ones"}
end
function LSTMish:call(x, states)
  local u = self.units
  local h, c = states[1], states[2]
  local z = K.bias_add(K.dot(x, self.kernel) + K.dot(h, self.recurrent_kernel), self.bias)
  local function part(k) return K.slice(z, {0, k * u}, {-1, u}) end
  local i, f = K.hard_sigmoid(part(0)), K.hard_sigmoid(part(1))
  local c2 = f * c + i * K.tanh(part(2))
  local o = K.hard_sigmoid(part(3))
  local h2 = o * K.tanh(c2)
  return h2, {h2, c2}
end

local data = keras.random.uniform({3, 6, 4}, -1, 1, nil, 7)

local function pair(lua_layer, builtin_layer, shape)
  local x1 = keras.Input{shape = shape or {6, 4}}
  local m1 = keras.Model{inputs = x1, outputs = lua_layer(x1)}
  local x2 = keras.Input{shape = shape or {6, 4}}
  local m2 = keras.Model{inputs = x2, outputs = builtin_layer(x2)}
  m2:set_weights(m1:get_weights())
  return m1, m2
end

describe("RNN with a cell written in Lua", function()
  it("gives SimpleRNN's outputs for SimpleRNNCell's math, in every direction and output mode", function()
    for _, o in ipairs{{}, {return_sequences = true}, {go_backwards = true}, {return_sequences = true,
        go_backwards = true}} do
      local m1, m2 = pair(L.RNN(SimpleCell(5), o), L.SimpleRNN(5, o))
      assert.is_true(max_abs_diff(m2:predict(data), m1:predict(data)) < 1e-5)
    end
  end)

  it("gives LSTM's outputs and final states for LSTMCell's math (two states, return_state)", function()
    local m1, m2 = pair(L.RNN(LSTMish(3), {return_state = true}), L.LSTM(3, {return_state = true}))
    local a, b = m1:predict(data), m2:predict(data)
    assert.equal(3, #a)
    for k = 1, 3 do assert.is_true(max_abs_diff(b[k], a[k]) < 1e-5, "output " .. k) end
  end)

  it("passes a stack's steps through the cells in order, states the last cell's first", function()
    local m1, m2 = pair(L.RNN({SimpleCell(4), LSTMish(3)}, {return_state = true, return_sequences = true}),
      L.RNN({L.SimpleRNNCell(4), L.LSTMCell(3)}, {return_state = true, return_sequences = true}))
    local a, b = m1:predict(data), m2:predict(data)
    assert.equal(4, #a)   -- output, h and c of the LSTM cell, h of the first
    for k = 1, 4 do assert.is_true(max_abs_diff(b[k], a[k]) < 1e-5, "output " .. k) end
  end)

  it("takes initial states and masks as the built-in cells do", function()
    local x = keras.Input{shape = {6, 4}}
    local h0 = keras.Input{shape = {5}}
    local masked = L.Masking{mask_value = 0}(x)
    local lua_rnn, rnn = L.RNN(SimpleCell(5), {return_sequences = true}), L.SimpleRNN(5, {return_sequences = true})
    local m1 = keras.Model{inputs = {x, h0}, outputs = lua_rnn(masked, {initial_state = {h0}})}
    local x2 = keras.Input{shape = {6, 4}}
    local h2 = keras.Input{shape = {5}}
    local m2 = keras.Model{inputs = {x2, h2}, outputs = rnn(L.Masking{mask_value = 0}(x2), {initial_state = {h2}})}
    m2:set_weights(m1:get_weights())
    -- steps 4..6 of the first sample and step 2 of the second are masked
    local v = data:totable()
    for t = 4, 6 do for f = 1, 4 do v[1][t][f] = 0 end end
    for f = 1, 4 do v[2][2][f] = 0 end
    local xs = keras.tensor(v)
    local hs = keras.random.uniform({3, 5}, -1, 1, nil, 3)
    local a, b = m1:predict{xs, hs}, m2:predict{xs, hs}
    assert.is_true(max_abs_diff(b, a) < 1e-5)
    local y = a:totable()
    for f = 1, 5 do assert.equal(y[1][3][f], y[1][6][f]) end   -- held through the masked steps
  end)

  it("trains as the built-in layer does, and its Lua runs only while the model is put together", function()
    SimpleCell.calls = 0
    local m1, m2 = pair(L.RNN(SimpleCell(5)), L.SimpleRNN(5))
    assert.equal(6, SimpleCell.calls)   -- one call per time step, when the model was made
    local y = keras.random.uniform({3, 5}, -1, 1, nil, 5)
    for _, m in ipairs{m1, m2} do m:compile{optimizer = keras.optimizers.SGD{lr = 0.1}, loss = "mse"} end
    local h1 = m1:fit(data, y, {epochs = 3, batch_size = 2, shuffle = false, verbose = 0})
    local h2 = m2:fit(data, y, {epochs = 3, batch_size = 2, shuffle = false, verbose = 0})
    m1:predict(data)
    assert.equal(6, SimpleCell.calls)
    for e = 1, 3 do assert.is_true(math.abs(h1.history.loss[e] - h2.history.loss[e]) < 1e-5) end
    local w1, w2 = m1:get_weights(), m2:get_weights()
    for k = 1, #w1 do assert.is_true(max_abs_diff(w2[k], w1[k]) < 1e-5) end
  end)

  it("names its weights in the RNN's scope and saves and loads with custom_objects", function()
    local x = keras.Input{shape = {6, 4}}
    local m = keras.Model{inputs = x, outputs = L.RNN({SimpleCell(3), SimpleCell(2)}, {name = "rnn_lua"})(x)}
    local names = {}
    for _, w in ipairs(m.layers[2]._weights) do names[#names + 1] = w.name end
    assert.same({"rnn_lua/kernel:0", "rnn_lua/recurrent_kernel:0", "rnn_lua/bias:0", "rnn_lua/kernel_1:0",
      "rnn_lua/recurrent_kernel_1:0", "rnn_lua/bias_1:0"}, names)
    local want = m:predict(data)
    for _, ext in ipairs{".lkm", ".h5"} do
      local path = os.tmpname() .. ext
      m:save(path)
      assert.has_error(function() keras.models.load_model(path) end)
      local back = keras.models.load_model(path, {custom_objects = {LuaSimpleCell = SimpleCell}})
      os.remove(path)
      assert.equal(0, max_abs_diff(want, back:predict(data)))
    end
  end)

  it("runs inside Bidirectional, the backward layer with cells of its own", function()
    local x = keras.Input{shape = {6, 4}}
    local m1 = keras.Model{inputs = x, outputs = L.Bidirectional(L.RNN(SimpleCell(3)))(x)}
    local x2 = keras.Input{shape = {6, 4}}
    local m2 = keras.Model{inputs = x2, outputs = L.Bidirectional(L.SimpleRNN(3))(x2)}
    assert.equal(6, #m1:get_weights())
    m2:set_weights(m1:get_weights())
    assert.is_true(max_abs_diff(m2:predict(data), m1:predict(data)) < 1e-5)
  end)

  it("refuses what it cannot unroll and cells that break the contract, clearly", function()
    local function err_of(f)
      local ok, e = pcall(f)
      assert.is_false(ok)
      return tostring(e)
    end
    local e = err_of(function() L.RNN(SimpleCell(3))(keras.Input{shape = {K.None, 4}}) end)
    assert.truthy(e:find("is written in Lua: its steps are unrolled when the model is put together, so the number "
      .. "of time steps must be known (got None)", 1, true), e)
    e = err_of(function() L.RNN(SimpleCell(3), {stateful = true}) end)
    assert.truthy(e:find("stateful = true needs the states kept between batches", 1, true), e)
    e = err_of(function() L.RNN{SimpleCell(3), L.SimpleRNNCell(2)} end)
    assert.truthy(e:find("mixes cells written in Lua with built-in cells", 1, true), e)
    local Bad = L.Layer:extend("BadCell")
    function Bad:init() self.state_size = {2, 2} end
    function Bad.call(_, x, states) return x, {states[1]} end
    e = err_of(function() L.RNN(Bad())(keras.Input{shape = {3, 2}}) end)
    assert.truthy(e:find("call(x, states) returned 1 new states, expected 2 (its state_size)", 1, true), e)
    local NoOut = L.Layer:extend("NoOutCell")
    function NoOut:init() self.state_size = 2 end
    function NoOut.call() return 3 end
    e = err_of(function() L.RNN(NoOut())(keras.Input{shape = {3, 2}}) end)
    assert.truthy(e:find("must return the output (a symbolic tensor) and the list of new states, got number", 1, true),
      e)
    local BadSize = L.Layer:extend("BadSizeCell")
    function BadSize:init() self.state_size = 0 end
    e = err_of(function() L.RNN(BadSize()) end)
    assert.truthy(e:find("state_size must be a positive integer or a list of them, got 0", 1, true), e)
    e = err_of(function() L.RNN(L.Dense(3)) end)
    assert.truthy(e:find("expected a cell", 1, true), e)
  end)
end)
