-- Callbacks added with saving: ModelCheckpoint (and the Python str.format of
-- its file names), EarlyStopping's restore_best_weights and restore_at_end,
-- and keras.set_print, which routes everything the library prints.
local keras = require "keras"
local L, C = keras.layers, keras.callbacks

local DIR
setup(function()
  local p = io.popen("mktemp -d /tmp/lkeras-callbacks-XXXXXX")
  DIR = p:read("l")
  p:close()
end)
teardown(function() os.execute("rm -rf '" .. DIR .. "'") end)
local function P(name) return DIR .. "/" .. name end

local function exists(path)
  local f = io.open(path, "rb")
  if f then f:close() end
  return f ~= nil
end

local function maxdiff(a, b) return (a - b):abs():max() end

local function same(ws, vs)
  for i = 1, #ws do if maxdiff(ws[i], vs[i]) ~= 0 then return false end end
  return #ws == #vs
end

local function model()
  local m = keras.Sequential{L.Dense{6, activation = "relu", input_shape = {3}}, L.Dense{2, activation = "softmax"}}
  m:compile{optimizer = keras.optimizers.SGD{lr = 0.1}, loss = "categorical_crossentropy", metrics = {"accuracy"}}
  return m
end

local function data()
  keras.random.seed(4)
  local x = keras.random.random{24, 3}
  local y = keras.utils.to_categorical(keras.random.randint(2, {24}), 2)
  return x, y
end

-- a callback that puts seq[epoch + 1] in logs[name] and keeps the weights
-- of each epoch's end (put it before the callbacks that read logs[name])
local function script(name, seq)
  local cb = {snapshots = {}}
  function cb:on_epoch_end(epoch, logs)
    logs[name] = seq[epoch + 1]
    self.snapshots[epoch + 1] = self.model:get_weights()
  end
  return cb
end

-- runs fn with keras.set_print capturing; returns the text
local function captured(fn)
  local out = {}
  keras.set_print(function(s) out[#out + 1] = s end)
  local ok, err = pcall(fn)
  keras.set_print(nil)
  if not ok then error(err, 0) end
  return table.concat(out)
end

describe("keras.saving.pyformat (ModelCheckpoint's file names)", function()
  local F = keras.saving.pyformat
  it("formats like Python's str.format", function()
    assert.equal("w.03-0.12.lkm", F("w.{epoch:02d}-{val_loss:.2f}.lkm", {epoch = 3, val_loss = 0.1234}))
    assert.equal("7 0.25 1e-05 {x}", F("{epoch} {a} {b} {{x}}", {epoch = 7, a = 0.25, b = 1e-5}))
    assert.equal("[   1.500] [+2.5e+00] [1,234,567] [50.0%] [3.14    ] [0.333333]",
      F("[{a:>8.3f}] [{b:+.1e}] [{n:,}] [{p:.1%}] [{c:<8.2f}] [{d:f}]",
        {a = 1.5, b = 2.5, n = 1234567, p = 0.5, c = 3.14159, d = 1 / 3}))
    assert.equal("0005|inf|nan|-0.10",
      F("{e:04d}|{i:.1f}|{n:.2f}|{m:.2f}", {e = 5, i = math.huge, n = 0 / 0, m = -0.1}))
  end)

  it("says what is wrong with a template", function()
    assert.error_matches(function() F("w.{val_loss:.2f}.h5", {epoch = 1, loss = 0.5}) end,
      "{val_loss} is not available (available: epoch, loss)", 1, true)
    assert.error_matches(function() F("w.{loss:d}.h5", {loss = 0.5}) end,
      "Unknown format code 'd' for object of type 'float' (in {loss})", 1, true)
    assert.error_matches(function() F("w.{epoch.h5", {epoch = 1}) end, "Single '{' encountered in format string",
      1, true)
    assert.error_matches(function() F("w.}", {}) end, "Single '}' encountered in format string", 1, true)
    assert.error_matches(function() F("{a:q}", {a = 1}) end, "Invalid format specifier 'q' for {a}", 1, true)
  end)
end)

describe("keras.callbacks.ModelCheckpoint", function()
  it("saves a model every epoch under names made from the template", function()
    local m = model()
    local x, y = data()
    m:fit(x, y, {epochs = 3, verbose = 0, validation_split = 0.25,
      callbacks = {C.ModelCheckpoint(P("w.{epoch:02d}-{val_loss:.2f}.lkm"))}})
    local h = m.history.history
    for e = 1, 3 do
      local path = P(string.format("w.%02d-%.2f.lkm", e, h.val_loss[e]))
      assert.is_true(exists(path), path)
    end
    local last = keras.models.load_model(P(string.format("w.03-%.2f.lkm", h.val_loss[3])))
    assert.equal(0, maxdiff(m:predict(x), last:predict(x)))
    assert.equal(m.optimizer.iterations, last.optimizer.iterations)
  end)

  it("saves only improvements with save_best_only, and says so when verbose", function()
    local m = model()
    local x, y = data()
    local s = script("val_loss", {0.5, 0.7, 0.4, 0.4, 0.9})
    local text = captured(function()
      m:fit(x, y, {epochs = 5, verbose = 0, callbacks = {s, C.ModelCheckpoint{P("best.lkm"), save_best_only = true,
        verbose = 1}}})
    end)
    assert.equal(table.concat({
      "\nEpoch 00001: val_loss improved from inf to 0.50000, saving model to " .. P("best.lkm") .. "\n",
      "\nEpoch 00002: val_loss did not improve from 0.50000\n",
      "\nEpoch 00003: val_loss improved from 0.50000 to 0.40000, saving model to " .. P("best.lkm") .. "\n",
      "\nEpoch 00004: val_loss did not improve from 0.40000\n",
      "\nEpoch 00005: val_loss did not improve from 0.40000\n"}), text)
    assert.is_true(same(s.snapshots[3], keras.models.load_model(P("best.lkm")):get_weights()))
  end)

  it("maximizes accuracy-like monitors in auto mode, and follows mode", function()
    local m = model()
    local x, y = data()
    local s = script("val_acc", {0.5, 0.7, 0.6})
    m:fit(x, y, {epochs = 3, verbose = 0, callbacks = {s, C.ModelCheckpoint{P("acc.lkm"), monitor = "val_acc",
      save_best_only = true}}})
    assert.is_true(same(s.snapshots[2], keras.models.load_model(P("acc.lkm")):get_weights()))
    local s2 = script("score", {0.5, 0.7, 0.6})
    m:fit(x, y, {epochs = 3, verbose = 0, callbacks = {s2, C.ModelCheckpoint{P("min.lkm"), monitor = "score",
      save_best_only = true, mode = "max"}}})
    assert.is_true(same(s2.snapshots[2], keras.models.load_model(P("min.lkm")):get_weights()))
  end)

  it("writes weights only with save_weights_only, every period epochs, in HDF5 for .h5", function()
    local m = model()
    local x, y = data()
    m:fit(x, y, {epochs = 4, verbose = 0, callbacks = {C.ModelCheckpoint{P("p{epoch}.h5"), save_weights_only = true,
      period = 2}}})
    assert.is_false(exists(P("p1.h5")))
    assert.is_true(exists(P("p2.h5")))
    assert.is_false(exists(P("p3.h5")))
    local f = io.open(P("p4.h5"), "rb")
    assert.equal("\137HDF", f:read(4))
    f:close()
    assert.error_matches(function() keras.models.load_model(P("p4.h5")) end, "No model found in config file.", 1, true)
    local m2 = model()
    m2:load_weights(P("p4.h5"))
    assert.is_true(same(m:get_weights(), m2:get_weights()))
  end)

  it("warns when the monitored value is missing, and fails on a template that does not fit the logs", function()
    local m = model()
    local x, y = data()
    local text = captured(function()
      m:fit(x, y, {epochs = 1, verbose = 0, callbacks = {C.ModelCheckpoint{P("x.lkm"), save_best_only = true}}})
    end)
    assert.equal("Warning: Can save best model only with val_loss available, skipping.\n", text)
    assert.is_false(exists(P("x.lkm")))
    assert.error_matches(function()
      m:fit(x, y, {epochs = 1, verbose = 0, callbacks = {C.ModelCheckpoint(P("w.{val_acc:.2f}.lkm"))}})
    end, "ModelCheckpoint: filepath '" .. P("w.{val_acc:.2f}.lkm")
      .. "': {val_acc} is not available (available: acc, epoch, loss)", 1, true)
  end)

  it("checks its arguments", function()
    assert.error_matches(function() C.ModelCheckpoint() end, "ModelCheckpoint: filepath must be a non-empty string",
      1, true)
    assert.error_matches(function() C.ModelCheckpoint("w.{epoch", {}) end,
      "ModelCheckpoint: filepath: Single '{' encountered in format string", 1, true)
    assert.error_matches(function() C.ModelCheckpoint("w", {mode = "up"}) end,
      "ModelCheckpoint: mode must be auto, min or max, got 'up'", 1, true)
    assert.error_matches(function() C.ModelCheckpoint("w", {period = 0}) end,
      "ModelCheckpoint: period must be an integer >= 1, got 0", 1, true)
    assert.error_matches(function() C.ModelCheckpoint("w", {nope = 1}) end,
      "ModelCheckpoint: unknown argument 'nope'", 1, true)
  end)
end)

describe("keras.callbacks.EarlyStopping", function()
  local function run(es, seq, epochs)
    local m = model()
    local x, y = data()
    local s = script("score", seq)
    m:fit(x, y, {epochs = epochs or #seq, verbose = 0, callbacks = {s, es}})
    return m, s
  end

  it("stops after patience epochs without improvement and restores the best weights", function()
    local es = C.EarlyStopping{monitor = "score", patience = 2, restore_best_weights = true}
    local m, s = run(es, {5, 3, 4, 4, 4, 1})
    assert.equal(4, #m.history.epoch)
    assert.equal(3, es.stopped_epoch)
    assert.is_true(same(s.snapshots[2], m:get_weights()))
  end)

  it("keeps the last weights without restore_best_weights", function()
    local m, s = run(C.EarlyStopping{monitor = "score", patience = 2}, {5, 3, 4, 4, 4, 1})
    assert.is_true(same(s.snapshots[4], m:get_weights()))
  end)

  it("restores only when it stopped the run itself, as Keras does (keras#12511)", function()
    local m, s = run(C.EarlyStopping{monitor = "score", patience = 5, restore_best_weights = true}, {5, 3, 4})
    assert.equal(3, #m.history.epoch)
    assert.is_true(same(s.snapshots[3], m:get_weights()))
  end)

  it("restores at the end of a full run with restore_at_end", function()
    local m, s = run(C.EarlyStopping{monitor = "score", patience = 5, restore_at_end = true}, {5, 3, 4})
    assert.equal(3, #m.history.epoch)
    assert.is_true(same(s.snapshots[2], m:get_weights()))
  end)

  it("restores at the end of a run another callback stopped, with restore_at_end", function()
    local m = model()
    local x, y = data()
    local s = script("score", {5, 3, 4, 6})
    local stopper = {on_epoch_end = function(self, epoch) if epoch == 2 then self.model.stop_training = true end end}
    m:fit(x, y, {epochs = 4, verbose = 0, callbacks = {s, C.EarlyStopping{monitor = "score", patience = 5,
      restore_at_end = true}, stopper}})
    assert.equal(3, #m.history.epoch)
    assert.is_true(same(s.snapshots[2], m:get_weights()))
  end)

  it("honours min_delta, mode and baseline", function()
    local m = run(C.EarlyStopping{monitor = "score", patience = 1, min_delta = 0.5}, {5, 4.8, 4.6})
    assert.equal(2, #m.history.epoch)
    m = run(C.EarlyStopping{monitor = "score", patience = 1, mode = "max"}, {1, 2, 1.5, 3})
    assert.equal(3, #m.history.epoch)
    m = run(C.EarlyStopping{monitor = "score", patience = 2, baseline = 1}, {3, 2, 0.5, 0.8, 0.9})
    assert.equal(2, #m.history.epoch)
  end)

  it("can be used for a second fit: its state starts afresh", function()
    local es = C.EarlyStopping{monitor = "score", patience = 2, restore_best_weights = true, restore_at_end = true}
    local m = model()
    local x, y = data()
    m:fit(x, y, {epochs = 5, verbose = 0, callbacks = {script("score", {5, 6, 7, 8, 9}), es}})
    assert.equal(3, #m.history.epoch)
    local s = script("score", {3, 4})
    m:fit(x, y, {epochs = 2, verbose = 0, callbacks = {s, es}})
    assert.equal(2, #m.history.epoch)
    assert.is_true(same(s.snapshots[1], m:get_weights()))
  end)

  it("says what it does when verbose, through keras.set_print", function()
    local text = captured(function()
      run(C.EarlyStopping{monitor = "score", patience = 1, restore_best_weights = true, verbose = 1}, {5, 3, 4, 1})
    end)
    assert.equal("Restoring model weights from the end of the best epoch\nEpoch 00003: early stopping\n", text)
  end)
end)

describe("keras.set_print", function()
  it("routes fit's Epoch lines and progress bar, without \\b when not dynamic", function()
    local m = model()
    local x, y = data()
    local text = captured(function() m:fit(x, y, {epochs = 2, batch_size = 8}) end)
    assert.is_truthy(text:find("^Epoch 1/2\n"))
    assert.is_truthy(text:find("\nEpoch 2/2\n", 1, true))
    assert.is_truthy(text:find("24/24 [==============================] - ", 1, true))
    assert.is_nil(text:find("\b", 1, true))
    local _, lines = text:gsub("\n", "")
    assert.equal(4, lines)
  end)

  it("routes verbose = 2 lines, evaluate's bar, Train on ... and summary", function()
    local m = model()
    local x, y = data()
    local text = captured(function() m:fit(x, y, {epochs = 1, verbose = 2, validation_split = 0.25}) end)
    assert.is_truthy(text:find("^Train on 18 samples, validate on 6 samples\nEpoch 1/1\n"))
    assert.is_truthy(text:find(" - loss: ", 1, true))
    text = captured(function() m:evaluate(x, y) end)
    assert.is_truthy(text:find("24/24 [==============================]", 1, true))
    text = captured(function() m:summary() end)
    assert.is_truthy(text:find("Total params: 38\n", 1, true))
  end)

  it("lets the bar redraw in place when told the output is dynamic", function()
    local m = model()
    local x, y = data()
    local out = {}
    keras.set_print(function(s) out[#out + 1] = s end, {dynamic = true})
    m:fit(x, y, {epochs = 1, batch_size = 4})
    keras.set_print(nil)
    local text = table.concat(out)
    assert.is_truthy(text:find("[\b\r]"))
  end)

  it("prints nothing on stdout while routed, and goes back to stdout with nil", function()
    local m = model()
    local x, y = data()
    local saved = io.write
    local leaked = {}
    -- luacheck: push ignore 122 (io.write replaced for this test: what reaches it leaked)
    io.write = function(...) leaked[#leaked + 1] = table.concat({...}) return io.stdout end
    local ok, err = pcall(function()
      captured(function() m:fit(x, y, {epochs = 1}); m:summary() end)
    end)
    local routed_leak = #leaked
    keras._write("back\n")
    io.write = saved
    -- luacheck: pop
    assert.is_true(ok, err)
    assert.equal(0, routed_leak)
    assert.equal("back\n", leaked[#leaked])
  end)

  it("accepts a C function, and refuses what is not callable", function()
    keras.set_print(io.write)
    keras.set_print(nil)
    assert.error_matches(function() keras.set_print(42) end,
      "keras.set_print: expected a function or nil, got number", 1, true)
  end)
end)
