-- keras._core.op's attributes by name: each op takes the names of its row in
-- the op table (src/ops.c, src/ops_conv.c, src/ops_rnn.c, src/ops_backend.c);
-- an unknown name, a value of the wrong kind or an attribute given to an op
-- that takes none is a clear error naming the op and the attribute. The codes
-- of the rnn op's cells, flags and activations come from the engine.
local keras = require "keras"
local core = keras._core
local K = keras.backend

local function values(node) return K.eval(node):totable() end

describe("op attributes by name", function()
  it("reach the op's slots: slice, scale, clip, conv2d", function()
    local x = core.tensor({{1, 2, 3, 4}, {5, 6, 7, 8}})
    assert.same({{2, 3}, {6, 7}}, values(core.op("slice", {x}, {axis = 1, start = 1, length = 2})))
    assert.same({{3, 5, 7, 9}, {11, 13, 15, 17}}, values(core.op("scale", {x}, {scale = 2, offset = 1})))
    assert.same({{2, 2, 3, 4}, {5, 5, 5, 5}}, values(core.op("clip", {x}, {min_value = 2, max_value = 5})))
    -- a 1x1 conv of a (1, 1, 3, 1) image by weight 2 at stride 2 with one zero column padded on the right
    local img = core.tensor({{{{1}, {2}, {3}}}})
    local w = core.tensor({{{{2}}}})
    local y = core.op("conv2d", {img, w}, {stride_h = 1, stride_w = 2, dilation_h = 1, dilation_w = 1,
                                           pad_top = 0, pad_bottom = 0, pad_left = 0, pad_right = 1})
    assert.same({{{{2}, {6}}}}, values(y))
  end)

  it("take a list (transpose's perm) and booleans for integers (keepdims)", function()
    local x = core.tensor({{1, 2, 3}, {4, 5, 6}})
    assert.same({{1, 4}, {2, 5}, {3, 6}}, values(core.op("transpose", {x}, {perm = {1, 0}})))
    assert.same({{6}, {15}}, values(core.op("sum", {x}, {axes = 2, keepdims = true})))
    assert.same({6, 15}, values(core.op("sum", {x}, {axes = 2, keepdims = false})))
  end)

  it("refuse an unknown name, naming the op and the names it takes", function()
    local x = core.tensor({1, 2})
    assert.has_error(function() core.op("clip", {x}, {lo = 0}) end,
      "op 'clip': unknown attribute 'lo' (expected one of: min_value, max_value)")
    assert.has_error(function() core.op("slice", {x}, {i = {0, 0, 1}}) end,
      "op 'slice': unknown attribute 'i' (expected one of: axis, start, length)")
    assert.has_error(function() core.op("neg", {x}, {alpha = 1}) end,
      "op 'neg': unknown attribute 'alpha' (expected one of: none)")
  end)

  it("refuse a value of the wrong kind", function()
    local x = core.tensor({1, 2})
    assert.has_error(function() core.op("slice", {x}, {axis = 0, start = 0.5, length = 1}) end,
      "op 'slice': attribute 'start' must be an integer, got number")
    assert.has_error(function() core.op("clip", {x}, {min_value = "0"}) end,
      "op 'clip': attribute 'min_value' must be a number, got string")
    assert.has_error(function() core.op("transpose", {x}, {perm = 0}) end,
      "op 'transpose': attribute 'perm' must be a list of integers, got number")
    assert.has_error(function() core.op("transpose", {x}, {perm = {0, 1, 2, 3, 4, 5, 6, 7, 8}}) end,
      "op 'transpose': attribute 'perm' has 9 entries, at most 8")
    assert.has_error(function() core.op("clip", {x}, {[1] = 0}) end,
      "op 'clip': attribute names must be strings, got number")
  end)

  it("are named in the engine's own errors", function()
    local x = core.tensor({{{1}, {2}, {3}}})   -- rank 3: a 1-D conv has no height
    local w = core.tensor({{{1}}})
    local ok, err = pcall(core.op, "conv2d", {x, w}, {stride_h = 2, stride_w = 1, dilation_h = 1, dilation_w = 1})
    assert.is_false(ok)
    assert.truthy(tostring(err):find("conv2d: a rank-3 input has no height: attribute 'stride_h' must be 1, got 2",
      1, true), tostring(err))
  end)

  it("export the rnn op's codes from the engine", function()
    assert.same({SimpleRNN = 0, LSTM = 1, GRU = 2, GRU_reset_after = 3}, core.rnn_cells)
    assert.same({return_sequences = 1, go_backwards = 2, initial_state = 4, mask = 8, stateful = 16,
                 input_order = 32}, core.rnn_flags)
    assert.equal(1, core.rnn_activations.tanh)
    assert.equal(3, core.rnn_activations.hard_sigmoid)
    local n = 0
    for _ in pairs(core.rnn_activations) do n = n + 1 end
    assert.equal(10, n)
  end)
end)
