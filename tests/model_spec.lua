-- keras.Sequential and keras.Model: building, summary, compile, fit,
-- evaluate, predict, the one-batch methods, reproducibility and callbacks.
-- Expected numbers are worked out by hand from the Keras 2.2.4 rules
-- (KERAS_SEMANTICS.md sections 5-8, 12); most use a model whose weights are
-- fixed (an identity Dense trained with lr = 0) so the loss of every sample is
-- known in advance.
local keras = require "keras"
local L = keras.layers
local K = keras.backend
local None = keras.None

-- ---- helpers ----

local function map(list, f)
  local out = {}
  for i, v in ipairs(list) do out[i] = f(v) end
  return out
end

local function totables(list) return map(list, function(t) return t:totable() end) end

local function near(want, got, tol, what)
  tol = tol or 1e-6
  if not (math.abs(got - want) <= tol * math.max(1, math.abs(want))) then
    error(string.format("%s is %.9g, expected %.9g", what or "value", got, want), 2)
  end
end

local U_ = dofile("tests/lib/spec_util.lua")
local flat = U_.flat

local function assert_close(want, got, tol)
  local g, w = flat(got), flat(want)
  assert.equal(#w, #g, "number of elements")
  for i = 1, #w do near(w[i], g[i], tol, "element " .. i) end
end

-- Runs fn with stdout captured: io.write, io.flush and print write into a
-- buffer, and io.stdout is a temporary file so that the progress bar sees no
-- terminal (it then prints one finished line per epoch). Returns the text.
-- luacheck: push ignore 122 (replacing io's fields for the call is how this captures)
local function capture(fn)
  local out = {}
  local saved = {write = io.write, flush = io.flush, stdout = io.stdout, print = _G.print}
  io.write = function(...)
    for i = 1, select("#", ...) do out[#out + 1] = tostring((select(i, ...))) end
    return io.stdout
  end
  io.flush = function() end
  _G.print = function(...)
    local parts = {}
    for i = 1, select("#", ...) do parts[i] = tostring((select(i, ...))) end
    out[#out + 1] = table.concat(parts, "\t") .. "\n"
  end
  local tmp = io.tmpfile()
  io.stdout = tmp
  local ok, err = pcall(fn)
  io.write, io.flush, io.stdout, _G.print = saved.write, saved.flush, saved.stdout, saved.print
  tmp:close()
  if not ok then error(err, 0) end
  return table.concat(out)
end
-- luacheck: pop

-- x -> Dense(d, identity kernel, no bias), trained with lr = 0: the output
-- is x itself, so with mae against zeros the loss of a sample is mean(|x|).
local function identity_model(d, o)
  o = o or {}
  local kernel = keras.tensor.zeros{d, d}
  for i = 1, d do kernel:set(i, i, 1) end
  local model = keras.Sequential{L.Dense{d, input_dim = d, use_bias = false, weights = {kernel}}}
  model:compile{optimizer = keras.optimizers.SGD{lr = 0}, loss = o.loss or "mae", metrics = o.metrics}
  return model
end

-- column of the values 1..n, as an (n, 1) tensor
local function column(n)
  local rows = {}
  for i = 1, n do rows[i] = {i} end
  return keras.tensor(rows)
end

local function small_classifier(o)
  o = o or {}
  local model = keras.Sequential{
    L.Dense{4, activation = "relu", input_dim = 3},
    L.Dense{2, activation = "softmax"},
  }
  model:compile{optimizer = o.optimizer or keras.optimizers.SGD{lr = 0.1}, loss = "categorical_crossentropy",
                metrics = o.metrics}
  return model
end

local X10 = keras.tensor{{0.1, 0.2, 0.3}, {0.5, -0.1, 0.2}, {-0.3, 0.8, 0.1}, {0.9, 0.4, -0.6}, {0.2, 0.2, 0.2},
                         {-0.7, -0.2, 0.5}, {0.3, -0.9, 0.4}, {0.6, 0.1, 0.9}, {-0.4, 0.5, -0.5}, {0.0, 0.7, 0.3}}
local Y10 = keras.tensor{{1, 0}, {0, 1}, {1, 0}, {0, 1}, {1, 0}, {0, 1}, {0, 1}, {1, 0}, {1, 0}, {0, 1}}

-- the two-headed model of the Keras functional API guide, small
local function two_headed()
  local main_in = keras.Input{shape = {4}, name = "main_input"}
  local aux_in = keras.Input{shape = {2}, name = "aux_input"}
  local trunk = L.Dense{8, activation = "relu", name = "trunk"}(main_in)
  local aux_out = L.Dense{1, activation = "sigmoid", name = "aux_output"}(trunk)
  local merged = L.concatenate{trunk, aux_in}
  local main_out = L.Dense{1, activation = "sigmoid", name = "main_output"}(merged)
  return keras.Model{inputs = {main_in, aux_in}, outputs = {main_out, aux_out}}
end

local XA = keras.tensor{{0.1, 0.2, 0.3, 0.4}, {0.5, -0.1, 0.2, 0.0}, {-0.3, 0.8, 0.1, 0.2}, {0.9, 0.4, -0.6, 0.1},
                        {0.2, 0.2, 0.2, 0.2}, {-0.7, -0.2, 0.5, 0.3}}
local XB = keras.tensor{{1, 0}, {0, 1}, {1, 1}, {0, 0}, {1, 0}, {0, 1}}
local YM = keras.tensor{{1}, {0}, {1}, {0}, {1}, {0}}
local YA = keras.tensor{{0}, {0}, {1}, {1}, {0}, {1}}

-- ---- Sequential ----

describe("keras.Sequential", function()
  it("takes its layers as a list", function()
    local a, b = L.Dense{4, input_dim = 3}, L.Dense{2}
    local model = keras.Sequential{a, b}
    assert.equal(2, #model.layers)
    assert.equal(a, model.layers[1])
    assert.equal(b, model.layers[2])
    assert.same({5, 2}, model:predict(keras.tensor.zeros{5, 3}).shape)
  end)

  it("grows with add", function()
    local model = keras.Sequential()
    model:add(L.Dense{4, input_dim = 3})
    model:add(L.Dense{6})
    assert.equal(2, #model.layers)
    assert.same({5, 6}, model:predict(keras.tensor.zeros{5, 3}).shape)
  end)

  it("drops its last layer with pop", function()
    local model = keras.Sequential{L.Dense{4, input_dim = 3}, L.Dense{6}}
    model:pop()
    assert.equal(1, #model.layers)
    assert.same({5, 4}, model:predict(keras.tensor.zeros{5, 3}).shape)
  end)

  it("has no inputs until it knows its input shape", function()
    local model = keras.Sequential{L.Dense{4}, L.Dense{1}}
    assert.is_nil(model.inputs)
  end)

  it("is built by fit from the data when no layer gives an input shape", function()
    local model = keras.Sequential{L.Dense{4}, L.Dense{1}}
    model:compile{optimizer = "sgd", loss = "mse"}
    model:fit(X10, keras.tensor.zeros{10, 1}, {verbose = 0})
    assert.same({3, 4}, model.layers[1]:get_weights()[1].shape)
    assert.same({None, 3}, K.int_shape(model.inputs[1]))
    assert.same({10, 1}, model:predict(X10).shape)
  end)

  it("has Keras's output_shape and input_shape", function()
    local model = keras.Sequential{L.Dense{4, input_dim = 3}, L.Dense{2}}
    assert.same({None, 2}, model.output_shape)
    assert.same({None, 3}, model.input_shape)
  end)
end)

-- ---- Model ----

describe("keras.Model", function()
  it("connects keras.Input to layer outputs called on it", function()
    local inp = keras.Input{shape = {3}}
    local hidden = L.Dense{4, activation = "relu"}(inp)
    local out = L.Dense{2, activation = "softmax"}(hidden)
    local model = keras.Model{inputs = inp, outputs = out}
    assert.equal(3, #model.layers)
    assert.equal("InputLayer", model.layers[1].class_name)
    assert.same({10, 2}, model:predict(X10).shape)
  end)

  it("is callable like a layer and shares its weights", function()
    local inp = keras.Input{shape = {3}}
    local model = keras.Model{inputs = inp, outputs = L.Dense{2}(inp)}
    local again = keras.Input{shape = {3}}
    local outer = keras.Model{inputs = again, outputs = model(again)}
    assert.same(model:predict(X10):totable(), outer:predict(X10):totable())
  end)

  it("lists its inputs and outputs by name", function()
    local model = two_headed()
    assert.same({"main_input", "aux_input"}, model.input_names)
    assert.same({"main_output", "aux_output"}, model.output_names)
    assert.equal(2, #model.inputs)
    assert.equal(2, #model.outputs)
  end)

  it("orders model.layers by depth from the outputs, as Keras does", function()
    -- depths: main_input 3; trunk and aux_input 2 (trunk reached first);
    -- concatenate 1; main_output and aux_output 0
    local names = map(two_headed().layers, function(l) return l.class_name == "Concatenate" and "concat" or l.name end)
    assert.same({"main_input", "trunk", "aux_input", "concat", "main_output", "aux_output"}, names)
  end)

  it("names per-output losses and metrics after the outputs", function()
    local model = two_headed()
    model:compile{optimizer = "rmsprop", loss = "binary_crossentropy", metrics = {"accuracy"}}
    assert.same({"loss", "main_output_loss", "aux_output_loss", "main_output_acc", "aux_output_acc"},
      model.metrics_names)
  end)

  it("trains and evaluates with lists of arrays in input and output order", function()
    local model = two_headed()
    model:compile{optimizer = "rmsprop", loss = {"binary_crossentropy", "mse"}, loss_weights = {1.0, 0.5}}
    local h = model:fit({XA, XB}, {YM, YA}, {epochs = 2, batch_size = 3, verbose = 0})
    assert.equal(2, #h.history.loss)
    assert.equal(2, #h.history.main_output_loss)
    assert.equal(2, #h.history.aux_output_loss)
    local loss, main, aux = model:evaluate({XA, XB}, {YM, YA}, {verbose = 0})
    near(main + 0.5 * aux, loss, 1e-5, "total loss")
  end)

  it("trains and evaluates with tables keyed by input and output names", function()
    local model = two_headed()
    model:compile{optimizer = "rmsprop",
                  loss = {main_output = "binary_crossentropy", aux_output = "binary_crossentropy"},
                  loss_weights = {main_output = 1.0, aux_output = 0.2}, metrics = {"accuracy"}}
    local h = model:fit({main_input = XA, aux_input = XB}, {main_output = YM, aux_output = YA},
                        {epochs = 2, batch_size = 4, verbose = 0})
    assert.equal(2, #h.history.aux_output_acc)
    local loss, main, aux, main_acc, aux_acc = model:evaluate({main_input = XA, aux_input = XB},
                                                            {main_output = YM, aux_output = YA}, {verbose = 0})
    near(main + 0.2 * aux, loss, 1e-5, "total loss")
    assert.is_true(main_acc >= 0 and main_acc <= 1 and aux_acc >= 0 and aux_acc <= 1)
  end)

  it("predicts a list with one tensor per output", function()
    local out = two_headed():predict{XA, XB}
    assert.equal(2, #out)
    assert.same({6, 1}, out[1].shape)
    assert.same({6, 1}, out[2].shape)
  end)
end)

-- ---- summary ----

describe("Model:summary", function()
  local function lines_of(model)
    local got = {}
    model:summary{print_fn = function(s) got[#got + 1] = s end}
    return got
  end

  -- the lines without their newlines, whether print_fn got them or not
  local function text_of(model)
    return map(lines_of(model), function(s) return (s:gsub("\n$", "")) end)
  end

  local SEQUENTIAL = {
    "_________________________________________________________________",
    "Layer (type)                 Output Shape              Param #   ",
    "=================================================================",
    "hidden (Dense)               (None, 4)                 16        ",
    "_________________________________________________________________",
    "probs (Dense)                (None, 2)                 10        ",
    "=================================================================",
    "Total params: 26",
    "Trainable params: 26",
    "Non-trainable params: 0",
    "_________________________________________________________________",
  }

  local function small_sequential()
    return keras.Sequential{L.Dense{4, input_dim = 3, name = "hidden"},
                            L.Dense{2, activation = "softmax", name = "probs"}}
  end

  it("prints Keras's table for a Sequential model", function()
    assert.same(SEQUENTIAL, text_of(small_sequential()))
  end)

  it("calls print_fn once per line without the newline, as Keras does", function()
    assert.same(SEQUENTIAL, lines_of(small_sequential()))
  end)

  it("prints to stdout by default", function()
    local model = small_sequential()
    local out = capture(function() model:summary() end)
    assert.equal(table.concat(SEQUENTIAL, "\n") .. "\n", out)
  end)

  it("prints the Connected to column for a functional model", function()
    local inp = keras.Input{shape = {3}, name = "features"}
    local left = L.Dense{4, name = "left"}(inp)
    local right = L.Dense{4, name = "right"}(inp)
    local sum = L.Add{name = "sum"}({left, right})
    local model = keras.Model{inputs = inp, outputs = L.Dense{1, name = "score"}(sum)}
    assert.same({
      "__________________________________________________________________________________________________",
      "Layer (type)                    Output Shape         Param #     Connected to                     ",
      "==================================================================================================",
      "features (InputLayer)           (None, 3)            0                                            ",
      "__________________________________________________________________________________________________",
      "left (Dense)                    (None, 4)            16          features[0][0]                   ",
      "__________________________________________________________________________________________________",
      "right (Dense)                   (None, 4)            16          features[0][0]                   ",
      "__________________________________________________________________________________________________",
      "sum (Add)                       (None, 4)            0           left[0][0]                       ",
      "                                                                 right[0][0]                      ",
      "__________________________________________________________________________________________________",
      "score (Dense)                   (None, 1)            5           sum[0][0]                        ",
      "==================================================================================================",
      "Total params: 37",
      "Trainable params: 37",
      "Non-trainable params: 0",
      "__________________________________________________________________________________________________",
    }, text_of(model))
  end)

  it("counts frozen layers as non-trainable", function()
    local model = keras.Sequential{L.Dense{4, input_dim = 3, name = "frozen", trainable = false},
                                   L.Dense{2, name = "head"}}
    local text = text_of(model)
    assert.equal("Total params: 26", text[8])
    assert.equal("Trainable params: 10", text[9])
    assert.equal("Non-trainable params: 16", text[10])
  end)
end)

describe("Model:count_params", function()
  it("sums every layer's weights", function()
    local model = keras.Sequential{L.Dense{64, input_dim = 784}, L.Dense{64}, L.Dense{10}}
    assert.equal(50240 + 4160 + 650, model:count_params())
  end)
end)

describe("Model:get_layer", function()
  it("finds a layer by name", function()
    local dense = L.Dense{2, input_dim = 3, name = "findme"}
    local model = keras.Sequential{dense, L.Dense{1}}
    assert.equal(dense, model:get_layer("findme"))
  end)

  it("raises Keras's error for an unknown name", function()
    local model = keras.Sequential{L.Dense{2, input_dim = 3}}
    assert.error_matches(function() model:get_layer("nope") end, "No such layer: nope", 1, true)
  end)
end)

-- ---- compile ----

describe("Model:compile", function()
  local function trains_with(optimizer)
    local model = small_classifier{optimizer = optimizer}
    local before = totables(model:get_weights())
    local loss = model:train_on_batch(X10, Y10)
    assert.is_true(loss == loss and loss > 0, "loss " .. tostring(loss))
    assert.are_not.same(before, totables(model:get_weights()))
    return model
  end

  for _, name in ipairs{"sgd", "rmsprop", "adagrad", "adadelta", "adam", "adamax", "nadam"} do
    it("takes the optimizer name '" .. name .. "' and trains a step", function()
      local model = trains_with(name)
      assert.equal(name, model.optimizer.class_name:lower())
    end)
  end

  for _, name in ipairs{"SGD", "RMSprop", "Adagrad", "Adadelta", "Adam", "Adamax", "Nadam"} do
    it("takes a keras.optimizers." .. name .. " object and trains a step", function()
      local opt = keras.optimizers[name]{lr = 0.05}
      local model = trains_with(opt)
      assert.equal(opt, model.optimizer)
    end)
  end

  it("accepts learning_rate for lr", function()
    local model = trains_with(keras.optimizers.SGD{learning_rate = 0.5})
    near(0.5, model.optimizer.lr)
  end)

  local x = keras.tensor{{0.1, 0.2, 0.3, 0.4}, {0.5, 0.1, 0.2, 0.3}, {0.3, 0.8, 0.1, 0.2}, {0.9, 0.4, 0.6, 0.1}}
  local onehot = keras.tensor{{1, 0, 0}, {0, 1, 0}, {0, 0, 1}, {0, 1, 0}}
  local labels = keras.tensor{{0}, {1}, {2}, {1}}
  for _, name in ipairs{"mse", "mean_squared_error", "mae", "mape", "msle", "binary_crossentropy",
                        "categorical_crossentropy", "sparse_categorical_crossentropy", "hinge", "squared_hinge",
                        "kullback_leibler_divergence", "poisson", "cosine_proximity", "logcosh"} do
    it("compiles the loss '" .. name .. "' and trains one step", function()
      local model = keras.Sequential{L.Dense{3, activation = "softmax", input_dim = 4}}
      model:compile{optimizer = keras.optimizers.SGD{lr = 0.5}, loss = name}
      local before = totables(model:get_weights())
      local y = name == "sparse_categorical_crossentropy" and labels or onehot
      local loss = model:train_on_batch(x, y)
      assert.is_true(type(loss) == "number" and loss == loss and math.abs(loss) < math.huge, tostring(loss))
      assert.are_not.same(before, totables(model:get_weights()))
    end)
  end

  it("trains through a Lua loss function of K ops", function()
    local model = keras.Sequential{L.Dense{1, input_dim = 1, kernel_initializer = "zeros"}}
    model:compile{optimizer = keras.optimizers.SGD{lr = 0.1},
                  loss = function(y_true, y_pred) return K.mean(K.square(y_pred - y_true), -1) end}
    -- loss (w*1 + b - 1)^2 from w = b = 0: gradient -2 for both, so both become 0.2
    assert.equal(1, model:train_on_batch(keras.tensor{{1}}, keras.tensor{{1}}))
    assert_close({{{0.2}}, {0.2}}, totables(model:get_weights()))
  end)

  it("names 'accuracy' and 'acc' acc, and other metrics by their function names", function()
    local model = keras.Sequential{L.Dense{2, input_dim = 3, activation = "softmax"}}
    local function mean_pred(_y_true, y_pred) return K.mean(y_pred) end
    model:compile{optimizer = "sgd", loss = "categorical_crossentropy", metrics = {"accuracy", "acc", "mae", mean_pred}}
    assert.same({"loss", "acc", "acc_1", "mean_absolute_error", "mean_pred"}, model.metrics_names)
  end)
end)

-- ---- fit ----

describe("Model:fit", function()
  -- Keras's rule for a value on the bar: %.4f, or %.4e when |v| <= 1e-3
  local function keras_num(v)
    if math.abs(v) > 1e-3 then return string.format("%.4f", v) end
    return string.format("%.4e", v)
  end

  local function epoch_line_pattern(n, names)
    local p = "^" .. n .. "/" .. n .. " %[==============================%] %- %d+s %d+[mu]?s/step"
    for _, k in ipairs(names) do p = p .. " %- " .. k .. ": (%-?%d+%.%d%d%d%d[e%+%-%d]*)" end
    return p .. "$"
  end

  local function split_lines(s)
    local out = {}
    for line in s:gmatch("([^\n]*)\n") do out[#out + 1] = line end
    return out
  end

  it("prints Keras's progress bar with verbose = 1", function()
    local model = small_classifier{metrics = {"accuracy"}}
    local h
    local out = capture(function() h = model:fit(X10, Y10, {epochs = 2, batch_size = 4, verbose = 1}) end)
    local lines = split_lines(out)
    assert.equal(4, #lines, out)
    for e = 1, 2 do
      assert.equal("Epoch " .. e .. "/2", lines[2 * e - 1])
      local loss, acc = lines[2 * e]:match(epoch_line_pattern(10, {"loss", "acc"}))
      assert.is_not_nil(loss, lines[2 * e])
      assert.equal(keras_num(h.history.loss[e]), loss)
      assert.equal(keras_num(h.history.acc[e]), acc)
    end
  end)

  it("announces validation and prints the val_ values with verbose = 1", function()
    local model = small_classifier{metrics = {"accuracy"}}
    local h
    local out = capture(function()
      h = model:fit(X10, Y10, {epochs = 1, batch_size = 4, verbose = 1, validation_split = 0.2})
    end)
    local lines = split_lines(out)
    assert.equal("Train on 8 samples, validate on 2 samples", lines[1])
    assert.equal("Epoch 1/1", lines[2])
    local loss, acc, val_loss, val_acc = lines[3]:match(epoch_line_pattern(8, {"loss", "acc", "val_loss", "val_acc"}))
    assert.is_not_nil(loss, lines[3])
    assert.equal(keras_num(h.history.acc[1]), acc)
    assert.equal(keras_num(h.history.val_loss[1]), val_loss)
    assert.equal(keras_num(h.history.val_acc[1]), val_acc)
    assert.equal(3, #lines)
  end)

  it("prints one line per epoch with verbose = 2", function()
    local model = small_classifier{metrics = {"accuracy"}}
    local h
    local out = capture(function() h = model:fit(X10, Y10, {epochs = 2, batch_size = 4, verbose = 2}) end)
    local lines = split_lines(out)
    assert.equal(4, #lines, out)
    for e = 1, 2 do
      assert.equal("Epoch " .. e .. "/2", lines[2 * e - 1])
      local loss, acc = lines[2 * e]:match("^ %- %d+s %- loss: (%d+%.%d%d%d%d) %- acc: (%d+%.%d%d%d%d)$")
      assert.is_not_nil(loss, lines[2 * e])
      assert.equal(keras_num(h.history.loss[e]), loss)
      assert.equal(keras_num(h.history.acc[e]), acc)
    end
  end)

  it("prints nothing with verbose = 0", function()
    local model = small_classifier{metrics = {"accuracy"}}
    assert.equal("", capture(function()
      model:fit(X10, Y10, {epochs = 2, verbose = 0, validation_split = 0.2})
    end))
  end)

  it("runs ceil(n / batch_size) batches per epoch, the last one smaller", function()
    local model = small_classifier()
    local sizes = {}
    model:fit(X10, Y10, {epochs = 1, batch_size = 4, verbose = 0,
                         callbacks = {{on_batch_end = function(_, batch, logs) sizes[batch + 1] = logs.size end}}})
    assert.same({4, 4, 2}, sizes)
  end)

  it("batch_size defaults to 32", function()
    local model = identity_model(1)
    local sizes = {}
    model:fit(column(40), keras.tensor.zeros{40, 1},
              {verbose = 0, callbacks = {{on_batch_end = function(_, _, logs) sizes[#sizes + 1] = logs.size end}}})
    assert.same({32, 8}, sizes)
  end)

  it("returns a History with one entry per epoch", function()
    local model = small_classifier()
    local h = model:fit(X10, Y10, {epochs = 3, verbose = 0})
    assert.equal(3, #h.history.loss)
    assert.same({0, 1, 2}, h.epoch)
    assert.equal(h, model.history)
    assert.equal(3, h.params.epochs)
    assert.equal(10, h.params.samples)
  end)

  it("starts counting at initial_epoch", function()
    local model = small_classifier()
    local h
    local out = capture(function() h = model:fit(X10, Y10, {epochs = 3, initial_epoch = 1, verbose = 2}) end)
    assert.same({1, 2}, h.epoch)
    assert.equal(2, #h.history.loss)
    assert.truthy(out:find("^Epoch 2/3\n"), out)
  end)

  it("logs acc and val_acc, with accuracy and val_accuracy as aliases", function()
    local model = small_classifier{metrics = {"accuracy"}}
    local h = model:fit(X10, Y10, {epochs = 2, verbose = 0, validation_data = {X10, Y10}})
    assert.equal(2, #h.history.acc)
    assert.equal(2, #h.history.val_acc)
    assert.equal(2, #h.history.val_loss)
    assert.same(h.history.acc, h.history.accuracy)
    assert.same(h.history.val_acc, h.history.val_accuracy)
  end)

  it("validates on validation_data", function()
    local model = identity_model(1)
    -- fixed weights: the val_loss is mean(|x_val|) = (100 + 300) / 2
    local h = model:fit(column(4), keras.tensor.zeros{4, 1},
                        {verbose = 0, validation_data = {keras.tensor{{100}, {-300}}, keras.tensor{{0}, {0}}}})
    assert.same({200}, h.history.val_loss)
    assert.same({2.5}, h.history.loss)
  end)

  it("takes the last fraction of the data for validation_split, before shuffling", function()
    local model = identity_model(1)
    -- samples 1..10, split 0.2: training on 1..8 (mean 4.5), validation on 9, 10 (mean 9.5)
    local h = model:fit(column(10), keras.tensor.zeros{10, 1}, {epochs = 2, verbose = 0, validation_split = 0.2})
    assert.same({4.5, 4.5}, h.history.loss)
    assert.same({9.5, 9.5}, h.history.val_loss)
  end)

  it("keeps the sample order with shuffle = false", function()
    local model = identity_model(1)
    local seen = {}
    model:fit(column(10), keras.tensor.zeros{10, 1}, {epochs = 2, batch_size = 1, shuffle = false, verbose = 0,
      callbacks = {{on_batch_end = function(_, _, logs) seen[#seen + 1] = logs.loss end}}})
    assert.same({1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10}, seen)
  end)

  it("visits the samples in a new order each epoch by default", function()
    local model = identity_model(1)
    local epochs = {{}, {}}
    local epoch = 0
    model:fit(column(20), keras.tensor.zeros{20, 1}, {epochs = 2, batch_size = 1, verbose = 0,
      callbacks = {{on_epoch_begin = function(_, e) epoch = e + 1 end,
                    on_batch_end = function(_, _, logs) table.insert(epochs[epoch], logs.loss) end}}})
    local sorted = {}
    for i = 1, 20 do sorted[i] = i end
    for e = 1, 2 do
      local copy = {table.unpack(epochs[e])}
      table.sort(copy)
      assert.same(sorted, copy)                 -- every sample once
      assert.are_not.same(sorted, epochs[e])    -- not in order (probability 1/20!)
    end
    assert.are_not.same(epochs[1], epochs[2])
  end)

  it("weights the loss by class_weight", function()
    local model = identity_model(1)
    -- y is the class; |x - y| = 1, 1, 3, 3; weights 1, 3, 1, 3: mean(w * l) / mean(w != 0) = 16 / 4
    local x, y = keras.tensor{{1}, {2}, {3}, {4}}, keras.tensor{{0}, {1}, {0}, {1}}
    local h = model:fit(x, y, {verbose = 0, batch_size = 2, shuffle = false, class_weight = {[0] = 1, [1] = 3}})
    assert.same({4}, h.history.loss)
  end)

  it("weights the loss by sample_weight, normalised by the share of non-zero weights", function()
    local model = identity_model(1)
    -- losses 1, 2, 3, 4; weights 0, 1, 1, 2: (0 + 2 + 3 + 8) / 4 / (3 / 4) = 13 / 3
    local h = model:fit(column(4), keras.tensor.zeros{4, 1}, {verbose = 0, batch_size = 4,
                                                              sample_weight = keras.tensor{0, 1, 1, 2}})
    near(13 / 3, h.history.loss[1])
  end)
end)

-- ---- evaluate ----

describe("Model:evaluate", function()
  it("returns the loss alone when there are no metrics", function()
    local model = identity_model(1)
    local n = select("#", model:evaluate(column(4), keras.tensor.zeros{4, 1}, {verbose = 0}))
    assert.equal(1, n)
    assert.equal(2.5, model:evaluate(column(4), keras.tensor.zeros{4, 1}, {verbose = 0}))
  end)

  it("returns the loss and the metrics in metrics_names order", function()
    local model = identity_model(2, {loss = "mse", metrics = {"mae"}})
    assert.same({"loss", "mean_absolute_error"}, model.metrics_names)
    -- samples (1, -3) and (2, 2): mse 5 and 4, mae 2 and 2
    local loss, mae = model:evaluate(keras.tensor{{1, -3}, {2, 2}}, keras.tensor.zeros{2, 2}, {verbose = 0})
    assert.equal(4.5, loss)
    assert.equal(2, mae)
  end)

  it("averages batches weighted by their sizes, giving the mean over the whole set", function()
    local model = small_classifier{metrics = {"accuracy"}}
    local w = totables(model:get_weights())
    -- the forward pass and the loss by hand, over all 10 samples
    local x, y = X10:totable(), Y10:totable()
    local total_loss, correct = 0, 0
    for i = 1, 10 do
      local h = {}
      for j = 1, 4 do
        local s = w[2][j]
        for k = 1, 3 do s = s + x[i][k] * w[1][k][j] end
        h[j] = math.max(s, 0)
      end
      local z = {}
      for j = 1, 2 do
        local s = w[4][j]
        for k = 1, 4 do s = s + h[k] * w[3][k][j] end
        z[j] = s
      end
      local e1, e2 = math.exp(z[1]), math.exp(z[2])
      local p = {e1 / (e1 + e2), e2 / (e1 + e2)}
      total_loss = total_loss - (y[i][1] * math.log(p[1]) + y[i][2] * math.log(p[2]))
      local pred = p[2] > p[1] and 2 or 1
      local truth = y[i][2] > y[i][1] and 2 or 1
      if pred == truth then correct = correct + 1 end
    end
    local loss, acc = model:evaluate(X10, Y10, {batch_size = 4, verbose = 0})
    near(total_loss / 10, loss, 1e-5, "loss")
    near(correct / 10, acc, 1e-6, "accuracy")
  end)
end)

-- ---- predict ----

describe("Model:predict", function()
  it("returns one row per sample", function()
    local model = small_classifier()
    assert.same({10, 2}, model:predict(X10).shape)
    assert.same({10, 2}, model:predict(X10, {batch_size = 3}).shape)
  end)

  it("matches a forward pass computed with tensor math from get_weights", function()
    local model = small_classifier()
    local w = model:get_weights()
    local hidden = (X10:matmul(w[1]) + w[2]):relu()
    local want = (hidden:matmul(w[3]) + w[4]):softmax(-1)
    assert_close(want:totable(), model:predict(X10, {batch_size = 3}):totable(), 1e-6)
  end)
end)

describe("Model:train_on_batch, test_on_batch and predict_on_batch", function()
  it("train_on_batch returns the loss before the update and changes the weights", function()
    local model = identity_model(1, {loss = "mse"})
    model:compile{optimizer = keras.optimizers.SGD{lr = 0.1}, loss = "mse"}
    -- w = 1, x = 2, y = 0: loss 4, gradient 2 * 2 * 2 = 8, w = 1 - 0.8
    assert.equal(4, model:train_on_batch(keras.tensor{{2}}, keras.tensor{{0}}))
    near(0.2, model:get_weights()[1]:get(1, 1))
  end)

  it("train_on_batch returns the metrics too when there are some", function()
    local model = identity_model(1, {loss = "mse", metrics = {"mae"}})
    local loss, mae = model:train_on_batch(keras.tensor{{2}, {-4}}, keras.tensor{{0}, {0}})
    assert.equal(10, loss)
    assert.equal(3, mae)
  end)

  it("test_on_batch gives the loss without changing the weights", function()
    local model = small_classifier()
    local before = totables(model:get_weights())
    local loss = model:test_on_batch(X10, Y10)
    near(model:evaluate(X10, Y10, {verbose = 0, batch_size = 10}), loss)
    assert.same(before, totables(model:get_weights()))
  end)

  it("predict_on_batch equals predict", function()
    local model = small_classifier()
    assert.same(model:predict(X10):totable(), model:predict_on_batch(X10):totable())
  end)
end)

-- ---- reproducibility ----

describe("keras.random.seed", function()
  local function run(seed)
    keras.random.seed(seed)
    local x = keras.random.random{32, 5}
    local y = keras.utils.to_categorical(keras.random.randint(3, {32}), 3)
    local model = keras.Sequential{
      L.Dense{8, activation = "relu", input_dim = 5},
      L.Dropout(0.5),
      L.Dense{3, activation = "softmax"},
    }
    model:compile{optimizer = "adam", loss = "categorical_crossentropy"}
    model:fit(x, y, {epochs = 2, batch_size = 8, verbose = 0})
    return totables(model:get_weights())
  end

  it("makes two identical runs give bit-identical weights", function()
    assert.same(run(1234), run(1234))
  end)

  it("gives different weights for a different seed", function()
    assert.are_not.same(run(1234), run(4321))
  end)
end)

-- ---- callbacks ----

describe("fit callbacks", function()
  it("calls a plain Lua table's hooks with 0-based epochs and the epoch logs", function()
    local model = identity_model(1)
    local calls = {}
    local cb = {
      on_train_begin = function() calls[#calls + 1] = "train_begin" end,
      on_epoch_begin = function(_, epoch) calls[#calls + 1] = "epoch_begin " .. epoch end,
      on_epoch_end = function(_, epoch, logs) calls[#calls + 1] = "epoch_end " .. epoch .. " " .. logs.loss end,
      on_train_end = function() calls[#calls + 1] = "train_end" end,
    }
    model:fit(column(4), keras.tensor.zeros{4, 1}, {epochs = 2, verbose = 0, callbacks = {cb}})
    assert.same({"train_begin", "epoch_begin 0", "epoch_end 0 2.5", "epoch_begin 1", "epoch_end 1 2.5", "train_end"},
      calls)
  end)

  it("gives a plain table its model and the fit params", function()
    local model = identity_model(1)
    local cb = {}
    model:fit(column(4), keras.tensor.zeros{4, 1}, {epochs = 3, batch_size = 2, verbose = 0, callbacks = {cb}})
    assert.equal(model, cb.model)
    assert.equal(3, cb.params.epochs)
    assert.equal(2, cb.params.batch_size)
  end)

  it("keeps in the History what callbacks add to the epoch logs", function()
    local model = identity_model(1)
    local cb = {on_epoch_end = function(_, epoch, logs) logs.extra = epoch * 10 end}
    local h = model:fit(column(4), keras.tensor.zeros{4, 1}, {epochs = 2, verbose = 0, callbacks = {cb}})
    assert.same({0, 10}, h.history.extra)
  end)

  it("stops after the epoch in which a callback sets model.stop_training", function()
    local model = identity_model(1)
    local cb = {on_epoch_end = function(self, epoch) if epoch == 1 then self.model.stop_training = true end end}
    local h = model:fit(column(4), keras.tensor.zeros{4, 1}, {epochs = 10, verbose = 0, callbacks = {cb}})
    assert.same({0, 1}, h.epoch)
  end)

  it("stops within the epoch when on_batch_end sets model.stop_training", function()
    local model = identity_model(1)
    local batches = 0
    local cb = {on_batch_end = function(self, batch)
      batches = batches + 1
      if batch == 1 then self.model.stop_training = true end
    end}
    local h = model:fit(column(8), keras.tensor.zeros{8, 1},
                        {epochs = 5, batch_size = 2, shuffle = false, verbose = 0, callbacks = {cb}})
    assert.equal(2, batches)
    assert.same({0}, h.epoch)
    -- the epoch's loss is the mean over the batches that ran: samples 1..4
    assert.same({2.5}, h.history.loss)
  end)
end)

describe("keras.callbacks.LambdaCallback", function()
  it("calls the functions it was given without self", function()
    local model = identity_model(1)
    local seen = {}
    local cb = keras.callbacks.LambdaCallback{
      on_epoch_end = function(epoch, logs) seen[#seen + 1] = {epoch, logs.loss} end,
      on_batch_end = function(batch, logs) seen[#seen + 1] = {"batch", batch, logs.size} end,
    }
    model:fit(column(4), keras.tensor.zeros{4, 1}, {epochs = 1, batch_size = 3, shuffle = false, verbose = 0,
                                                  callbacks = {cb}})
    assert.same({{"batch", 0, 3}, {"batch", 1, 1}, {0, 2.5}}, seen)
  end)
end)

describe("keras.callbacks.EarlyStopping", function()
  it("stops when the monitored value has not improved for patience epochs", function()
    local model = identity_model(1)   -- lr = 0: the loss never improves after the first epoch
    local h = model:fit(column(4), keras.tensor.zeros{4, 1}, {epochs = 10, batch_size = 4, verbose = 0,
      callbacks = {keras.callbacks.EarlyStopping{monitor = "loss", patience = 2}}})
    assert.same({0, 1, 2}, h.epoch)
  end)

  it("monitors val_loss by default", function()
    local model = identity_model(1)
    local h = model:fit(column(4), keras.tensor.zeros{4, 1}, {epochs = 10, batch_size = 4, verbose = 0,
      validation_data = {column(2), keras.tensor.zeros{2, 1}}, callbacks = {keras.callbacks.EarlyStopping()}})
    assert.same({0, 1}, h.epoch)
  end)
end)

describe("keras.callbacks.TerminateOnNaN", function()
  it("stops training at the first batch whose loss is NaN and says so", function()
    -- log(x - 10) of x in [0, 1) is NaN
    local model = keras.Sequential{L.Dense{1, input_dim = 1, kernel_initializer = "ones"},
                                   L.Lambda(function(x) return K.log(x - 10) end)}
    model:compile{optimizer = "sgd", loss = "mse"}
    local batches = 0
    local h
    local out = capture(function()
      h = model:fit(keras.tensor.full({10, 1}, 0.5), keras.tensor.zeros{10, 1},
        {epochs = 3, batch_size = 2, verbose = 0,
         callbacks = {keras.callbacks.TerminateOnNaN(), {on_batch_end = function() batches = batches + 1 end}}})
    end)
    assert.equal("Batch 0: Invalid loss, terminating training\n", out)
    assert.equal(1, batches)
    assert.equal(1, #h.history.loss)
    assert.is_true(h.history.loss[1] ~= h.history.loss[1], "the epoch loss is NaN")
  end)
end)

describe("keras.callbacks.LearningRateScheduler", function()
  it("sets optimizer.lr from schedule(epoch, lr) at the start of each epoch and logs lr", function()
    local model = identity_model(1)
    local calls = {}
    local schedule = keras.callbacks.LearningRateScheduler(function(epoch, lr)
      calls[#calls + 1] = {epoch, lr}
      return 0.5 / (epoch + 1)
    end)
    local h = model:fit(column(4), keras.tensor.zeros{4, 1}, {epochs = 3, verbose = 0, callbacks = {schedule}})
    assert.equal(3, #calls)
    assert.same({0, 1, 2}, map(calls, function(c) return c[1] end))
    near(0, calls[1][2])        -- the model's lr = 0
    near(0.5, calls[2][2])
    near(0.25, calls[3][2])
    near(0.5 / 3, model.optimizer.lr)
    assert.is_not_nil(h.history.lr, "history.lr")
    assert_close({0.5, 0.25, 0.5 / 3}, h.history.lr)
  end)
end)

describe("keras.callbacks.CSVLogger", function()
  it("writes a header of sorted keys and one row per epoch", function()
    local model = identity_model(1, {metrics = {"mse"}})
    local path = os.tmpname()
    local h = model:fit(column(4), keras.tensor.zeros{4, 1}, {epochs = 2, verbose = 0,
      validation_data = {column(2), keras.tensor.zeros{2, 1}}, callbacks = {keras.callbacks.CSVLogger(path)}})
    local f = assert(io.open(path))
    local text = f:read("a")
    f:close()
    os.remove(path)
    local rows = {}
    for line in text:gmatch("([^\r\n]*)\r?\n") do rows[#rows + 1] = line end
    assert.same({
      "epoch,loss,mean_squared_error,val_loss,val_mean_squared_error",
      "0,2.5,7.5,1.5,2.5",
      "1,2.5,7.5,1.5,2.5",
    }, rows)
    assert.same({2.5, 2.5}, h.history.loss)
  end)

  it("writes the values as Python's str(float) does", function()
    local model = identity_model(1)
    local path = os.tmpname()
    -- batches {0, 0} and {1}: loss (0 * 2 + 1 * 1) / 3 = 1/3; validation on 2, 2: 2.0
    model:fit(keras.tensor{{0}, {0}, {1}}, keras.tensor.zeros{3, 1}, {epochs = 1, batch_size = 2, shuffle = false,
      verbose = 0, validation_data = {keras.tensor{{2}, {-2}}, keras.tensor.zeros{2, 1}},
      callbacks = {keras.callbacks.CSVLogger(path)}})
    local f = assert(io.open(path))
    local text = f:read("a")
    f:close()
    os.remove(path)
    local rows = {}
    for line in text:gmatch("([^\r\n]*)\r?\n") do rows[#rows + 1] = line end
    assert.same({"epoch,loss,val_loss", "0,0.3333333333333333,2.0"}, rows)
  end)

  it("appends without a second header with append = true", function()
    local model = identity_model(1)
    local path = os.tmpname()
    os.remove(path)
    for _ = 1, 2 do
      model:fit(column(4), keras.tensor.zeros{4, 1}, {epochs = 1, verbose = 0,
        callbacks = {keras.callbacks.CSVLogger(path, {append = true})}})
    end
    local f = assert(io.open(path))
    local text = f:read("a")
    f:close()
    os.remove(path)
    local rows = {}
    for line in text:gmatch("([^\r\n]*)\r?\n") do rows[#rows + 1] = line end
    assert.same({"epoch,loss", "0,2.5", "0,2.5"}, rows)
  end)
end)

-- ---- one arena for a model's training, test and predict plans ----

describe("the memory a model's loops share", function()
  -- the three loops of a compiled model take turns in one block of memory;
  -- calls from a callback in the middle of an epoch (a larger predict batch
  -- grows the block and moves it) must not change what training computes
  local function run(meddle)
    keras.random.seed(77)
    local x = keras.random.random{40, 6}
    local y = keras.utils.to_categorical(keras.random.randint(3, {40}), 3)
    local big = keras.tensor.ones{400, 6}
    local model = keras.Sequential{
      L.Dense{16, activation = "relu", input_dim = 6},
      L.Dropout(0.25),
      L.Dense{3, activation = "softmax"},
    }
    model:compile{optimizer = "adam", loss = "categorical_crossentropy", metrics = {"accuracy"}}
    local seen = {}
    local cb = {on_batch_end = function(_, batch)
      if meddle then
        -- a new, larger predict plan each time: the shared block grows and moves
        local p = model:predict(big, {batch_size = 100 + 30 * batch})
        seen[#seen + 1] = p:get(1, 1)
        model:evaluate(x, y, {batch_size = 3, verbose = 0})
      end
    end}
    local hist = model:fit(x, y, {epochs = 2, batch_size = 8, verbose = 0, callbacks = {cb},
                                  validation_data = {x, y}, shuffle = false})
    return totables(model:get_weights()), hist.history, seen
  end

  it("gives the same training with predict and evaluate run from a callback", function()
    local w0, h0 = run(false)
    local w1, h1, seen = run(true)
    assert.same(w0, w1)
    assert.same(h0, h1)
    assert.are.equal(10, #seen)
    for _, v in ipairs(seen) do assert.is_true(v > 0 and v < 1) end
  end)

  it("gives the same predictions before and after training shares the memory", function()
    keras.random.seed(5)
    local x = keras.random.random{12, 4}
    local model = keras.Sequential{L.Dense{5, activation = "tanh", input_dim = 4}, L.Dense{2}}
    local before = model:predict(x, {batch_size = 3}):totable()
    model:compile{optimizer = "sgd", loss = "mse"}
    local again = model:predict(x, {batch_size = 12}):totable()
    assert.same(before, again)
    model:fit(x, keras.tensor.zeros{12, 2}, {epochs = 1, batch_size = 12, verbose = 0})
    model:set_weights(model:get_weights())
    local w = model:get_weights()
    local fresh = keras.Sequential{L.Dense{5, activation = "tanh", input_dim = 4}, L.Dense{2}}
    fresh:set_weights(w)
    assert.same(fresh:predict(x, {batch_size = 5}):totable(), model:predict(x, {batch_size = 5}):totable())
  end)
end)
