-- keras.complete: the candidates lkeras offers on Tab (tests/c/test_repl.c
-- drives the prompt itself on a pseudo-terminal).
local keras = require "keras"
local complete = require "keras.complete"

describe("keras.complete", function()
  it("completes globals and keywords", function()
    assert.same({"print"}, complete("prin"))   -- the real globals by default
    local env = {keras = keras, require = require, print = print}
    assert.same({"keras"}, complete("kera", env))
    assert.same({"repeat", "require", "return"}, complete("re", env))
  end)

  it("completes table fields after '.', following nested tables", function()
    local env = {keras = keras, string = string}
    assert.same({"keras.layers"}, complete("keras.lay", env))
    assert.same({"keras.layers.Dense"}, complete("keras.layers.Den", env))
    assert.same({"keras.backend.epsilon"}, complete("keras.backend.epsi", env))
    assert.same({"string.format"}, complete("string.fo", env))
  end)

  it("completes a model's methods after ':' and its getters and fields after '.'", function()
    local env = {m = keras.Sequential{keras.layers.Dense{1, input_shape = {1}}}}
    assert.same({"m:predict", "m:predict_classes", "m:predict_generator", "m:predict_on_batch", "m:predict_proba"},
                complete("m:pre", env))
    assert.same({"m:fit", "m:fit_generator"}, complete("m:fi", env))
    -- getters (layers, output...) and fields are attributes, not methods
    assert.same({"m.output", "m.output_names", "m.output_shape", "m.outputs"}, complete("m.out", env))
    assert.same({}, complete("m:out", env))
    assert.same({"m.layers"}, complete("m.laye", env))
    -- a layer through the model's list is not reachable (only chains of names are followed)
    assert.same({}, complete("m.layers[1].na", env))
  end)

  it("completes a layer's and an instance's inherited methods", function()
    local env = {d = keras.layers.Dense(4)}
    assert.same({"d:get_config", "d:get_input_at", "d:get_input_shape_at", "d:get_losses", "d:get_output_at",
                 "d:get_output_shape_at", "d:get_weights"}, complete("d:get_", env))
    local Cb = keras.callbacks.Callback:extend("Cb")
    function Cb.on_epoch_end() end
    env.cb = Cb()
    assert.same({"cb:on_epoch_begin", "cb:on_epoch_end"}, complete("cb:on_epoch", env))
  end)

  it("completes the methods and attributes of tensors", function()
    local env = {t = keras.tensor{1, 2}}
    assert.same({"t:reshape"}, complete("t:resh", env))
    -- attributes the C side computes, found by reading them
    assert.same({"t.shape"}, complete("t.sh", env))
    assert.same({"t.ndim"}, complete("t.nd", env))
    assert.same({"t.dtype"}, complete("t.dt", env))
    assert.same({"t:sum"}, complete("t:su", env))
    local env2 = {x = keras.Input{shape = {3}}}
    assert.same({"x:softmax"}, complete("x:softm", env2))
    assert.same({"x.shape"}, complete("x.sha", env2))
  end)

  it("offers names starting with '_' only when asked for them", function()
    local env = {o = {_hidden = 1, shown = 2}}
    assert.same({"o.shown"}, complete("o.", env))
    assert.same({"o._hidden"}, complete("o._", env))
  end)

  it("gives nothing, and never raises, for what it cannot look up", function()
    local env = {bad = setmetatable({}, {__index = function() error("boom") end}), n = 5}
    assert.same({}, complete("nosuch.x"))
    assert.same({}, complete("bad.x.y", env))
    assert.same({}, complete("bad.", env))
    assert.same({}, complete("n.", env))
    assert.same({}, complete("a:b:c"))
    assert.same({}, complete("(x).y"))
    assert.same({}, complete(42))
  end)
end)
