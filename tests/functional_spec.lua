local keras = require "keras"
local L, K = keras.layers, keras.backend

local function raises(msg, fn) assert.error_matches(fn, msg, 1, true) end

describe("keras.layers.Dot", function()
  it("gives the per-sample dot product of 2-D inputs as (batch, 1)", function()
    local a, b = keras.Input{shape = {4}}, keras.Input{shape = {4}}
    local m = keras.Model{inputs = {a, b}, outputs = L.dot({a, b}, {axes = 1})}
    local out = m:predict({keras.tensor{{1, 2, 3, 4}, {0, 1, 0, 1}}, keras.tensor{{1, 1, 1, 2}, {3, 3, 3, 3}}})
    assert.same({{14}, {6}}, out:totable())
  end)

  it("contracts the given axes of 3-D inputs, per sample", function()
    local p, q = keras.Input{shape = {2, 3}}, keras.Input{shape = {4, 3}}
    local m = keras.Model{inputs = {p, q}, outputs = L.Dot{axes = 2}{p, q}}
    assert.same({K.None, 2, 4}, m.output_shape)
    local P = keras.tensor{{{1, 2, 3}, {0, 1, 0}}}
    local Q = keras.tensor{{{1, 0, 0}, {0, 1, 0}, {0, 0, 1}, {1, 1, 1}}}
    -- out[i][j] = sum_k P[i][k] * Q[j][k]
    assert.same({{{1, 2, 3, 6}, {0, 1, 0, 1}}}, m:predict({P, Q}):totable())
  end)

  it("gives the cosine similarity with normalize = true", function()
    local a, b = keras.Input{shape = {2}}, keras.Input{shape = {2}}
    local m = keras.Model{inputs = {a, b}, outputs = L.Dot(1, {normalize = true}){a, b}}
    local v = m:predict({keras.tensor{{3, 4}}, keras.tensor{{4, 3}}}):get(1, 1)
    assert.is_true(math.abs(v - 24 / 25) < 1e-6)
  end)

  it("names the sizes that do not match", function()
    local a, b = keras.Input{shape = {4}}, keras.Input{shape = {5}}
    raises("Dot (dot_x): Dimension incompatibility 4 != 5. Layer shapes: (None, 4), (None, 5)", function()
      L.Dot{axes = 1, name = "dot_x"}{a, b}
    end)
  end)
end)

describe("keras.backend.batch_dot", function()
  it("multiplies batches of matrices on concrete tensors", function()
    local x = keras.tensor{{{1, 2}, {3, 4}}}
    local y = keras.tensor{{{5, 6}, {7, 8}}}
    assert.same({{{19, 22}, {43, 50}}}, K.batch_dot(x, y, {2, 1}):totable())
    -- contracting x's axis 2 with y's axis 2: x y^T
    assert.same({{{17, 23}, {39, 53}}}, K.batch_dot(x, y, {2, 2}):totable())
  end)
end)

describe("shared layers", function()
  it("count their weights once and update them once per step from the summed gradient", function()
    local shared = L.Dense{1, use_bias = false, kernel_initializer = "ones", name = "shared_dense"}
    local a, b = keras.Input{shape = {2}}, keras.Input{shape = {2}}
    local out = L.add{shared(a), shared(b)}
    local m = keras.Model{inputs = {a, b}, outputs = out}
    assert.equal(2, m:count_params())
    m:compile{optimizer = keras.optimizers.SGD{lr = 0.1}, loss = "mse"}
    -- y = w.xa + w.xb = 2 + 1 = 3 against target 0; L = y^2, dL/dy = 6,
    -- dL/dw = 6 (xa + xb) = (6, 12): one SGD step with lr 0.1 gives (0.4, -0.2)
    m:train_on_batch({keras.tensor{{1, 1}}, keras.tensor{{0, 1}}}, keras.tensor{{0}})
    local w = shared:get_weights()[1]
    assert.is_true(math.abs(w:get(1, 1) - 0.4) < 1e-5)
    assert.is_true(math.abs(w:get(2, 1) - (-0.2)) < 1e-5)
  end)

  it("give symbolic tensors that are equal exactly when they are the same output", function()
    local d = L.Dense{3}
    local x = keras.Input{shape = {2}}
    local y1, y2 = d(x), d(x)
    assert.is_true(d:get_output_at(1) == y1)
    assert.is_false(y1 == y2)
  end)
end)

describe("models as layers", function()
  it("reuse the model's weights on a new input", function()
    local x = keras.Input{shape = {3}}
    local inner = keras.Model{inputs = x, outputs = L.Dense{2}(x)}
    local z = keras.Input{shape = {3}}
    local outer = keras.Model{inputs = z, outputs = L.Activation"relu"(inner(z))}
    assert.equal(inner:count_params(), outer:count_params())
    local data = keras.tensor{{1, -2, 3}}
    local direct = inner:predict(data):totable()[1]
    local through = outer:predict(data):totable()[1]
    for i = 1, 2 do assert.equal(math.max(direct[i], 0), through[i]) end
  end)
end)

describe("multi-output models", function()
  local function two_outputs()
    local x = keras.Input{shape = {3}, name = "in"}
    local a = L.Dense{1, name = "out_a"}(x)
    local b = L.Dense{2, name = "out_b"}(x)
    return keras.Model{inputs = x, outputs = {a, b}}
  end

  it("predict a list of tensors in output order", function()
    local outs = two_outputs():predict(keras.random.random{5, 3})
    assert.equal(2, #outs)
    assert.same({5, 1}, outs[1].shape)
    assert.same({5, 2}, outs[2].shape)
  end)

  it("name the metrics per output and report the weighted total loss", function()
    local m = two_outputs()
    m:compile{optimizer = "sgd", loss = {out_a = "mse", out_b = "mae"}, loss_weights = {out_a = 2.0, out_b = 0.5},
              metrics = {"mae"}}
    assert.same({"loss", "out_a_loss", "out_b_loss", "out_a_mean_absolute_error", "out_b_mean_absolute_error"},
                m.metrics_names)
    local x = keras.random.random{8, 3}
    local ya, yb = keras.random.random{8, 1}, keras.random.random{8, 2}
    local total, la, lb = m:evaluate(x, {ya, yb}, {verbose = 0})
    assert.is_true(math.abs(total - (2.0 * la + 0.5 * lb)) < 1e-5)
  end)

  it("refuse unknown and missing output names", function()
    local m = two_outputs()
    raises("compile: unknown output name 'out_c' in loss (outputs: out_a, out_b)", function()
      m:compile{optimizer = "sgd", loss = {out_a = "mse", out_c = "mse"}}
    end)
    raises("compile: loss has no entry for output 'out_b'", function()
      m:compile{optimizer = "sgd", loss = {out_a = "mse"}}
    end)
    m:compile{optimizer = "sgd", loss = "mse"}
    raises("fit: no data for target 'out_b'", function()
      m:fit(keras.random.random{4, 3}, {out_a = keras.random.random{4, 1}}, {verbose = 0})
    end)
  end)
end)

describe("keras.Model construction", function()
  it("refuses an input that the outputs do not use", function()
    local a, b = keras.Input{shape = {2}, name = "used"}, keras.Input{shape = {2}, name = "unused"}
    raises("Model: input 'unused' is not connected to the outputs", function()
      keras.Model{inputs = {a, b}, outputs = L.Dense{1}(a)}
    end)
  end)

  it("refuses outputs that need an input it was not given", function()
    local a, b = keras.Input{shape = {2}, name = "in_a"}, keras.Input{shape = {2}, name = "in_b"}
    local y = L.add{a, b}
    raises('Graph disconnected: cannot obtain value for tensor in_b at layer "in_b". Pass it in inputs.', function()
      keras.Model{inputs = a, outputs = y}
    end)
  end)
end)
