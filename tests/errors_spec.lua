-- Every user-reachable error of the model and layer API, each asserted once
-- with its exact message (API.md section 9). The message must also point at
-- the caller's line (STYLE.md 3.6: error(msg, 2)) or carry no position at all:
-- a position inside lua/keras/*.lua tells the user nothing.
local keras = require "keras"
local L = keras.layers
local None = keras.None

local SPEC = debug.getinfo(1, "S").short_src

-- fn must raise exactly `expected` (after an optional "file:line: " that
-- names this spec file)
local function raises(expected, fn)
  local ok, err = pcall(fn)
  assert(not ok, "no error; expected: " .. expected)
  assert.is_string(err)
  local where, msg = err:match("^([^\n]-:%d+): (.*)$")
  if not where then msg = err end
  assert.equal(expected, msg)
  if where then
    assert(where:sub(1, #SPEC) == SPEC, "the error points at " .. where .. ", not at the caller's line")
  end
end

local function compiled()
  local model = keras.Sequential{L.Dense{1, input_dim = 2}}
  model:compile{optimizer = "sgd", loss = "mse"}
  return model
end

local X, Y = keras.tensor.ones{4, 2}, keras.tensor.ones{4, 1}

local function two_io()
  local a, b = keras.Input{shape = {2}, name = "in_a"}, keras.Input{shape = {3}, name = "in_b"}
  local oa = L.Dense{1, name = "out_a"}(a)
  local ob = L.Dense{1, name = "out_b"}(L.concatenate{a, b})
  return keras.Model{inputs = {a, b}, outputs = {oa, ob}}
end

describe("layer call errors", function()
  it("Dense names itself when the input's last dimension is not its declared input_dim", function()
    local dense = L.Dense{64, input_dim = 20, name = "dense_1"}
    raises("Dense (dense_1): expected input with last dimension 20, got 30", function()
      dense(keras.Input{shape = {30}})
    end)
  end)

  it("Dense names itself when called again on an input of another width", function()
    local dense = L.Dense{64, name = "dense_w"}
    dense(keras.Input{shape = {20}})
    raises("Dense (dense_w): expected input with last dimension 20, got 30", function()
      dense(keras.Input{shape = {30}})
    end)
  end)

  it("refuses a concrete tensor", function()
    raises("Dense (concrete): expected a symbolic tensor (keras.Input or a layer output), got a concrete tensor",
      function() L.Dense{2, name = "concrete"}(keras.tensor{{1, 2}}) end)
  end)

  it("Lambda refuses a function that returns no symbolic tensor", function()
    raises("Lambda (lam): the function must return a symbolic tensor, got number", function()
      L.Lambda(function() return 3 end, {name = "lam"})(keras.Input{shape = {2}})
    end)
  end)

  it("Reshape refuses a target of another total size", function()
    raises("Reshape (rs): total size of new array must be unchanged (input (None, 6), target (4,))", function()
      L.Reshape({4}, {name = "rs"})(keras.Input{shape = {6}})
    end)
  end)

  it("Permute refuses dims that are not a permutation", function()
    raises("Permute (pm): dims must be a permutation of 1..2, got 1", function()
      L.Permute({1, 1}, {name = "pm"})(keras.Input{shape = {2, 3}})
    end)
  end)
end)

describe("layer constructor errors", function()
  it("refuses an unknown activation, quoted", function()
    raises("Dense: unknown activation 'rel' (expected one of: elu, exponential, hard_sigmoid, linear, relu, selu, "
      .. "sigmoid, softmax, softplus, softsign, tanh)", function() L.Dense{1, activation = "rel"} end)
  end)

  it("refuses an activation that is neither a name nor a function", function()
    raises("Dense: activation must be a name or a function, got number", function() L.Dense{1, activation = 3} end)
  end)

  it("refuses an unknown initializer, quoted", function()
    raises("Dense: unknown initializer 'glorot'", function() L.Dense{1, kernel_initializer = "glorot"} end)
  end)

  it("refuses an unknown argument", function()
    raises("Dense: unknown argument 'foo'", function() L.Dense{3, foo = 1} end)
  end)

  it("refuses an argument given twice", function()
    raises("Dense: argument 'units' given twice", function() L.Dense(3, {units = 4}) end)
  end)

  it("refuses too many positional arguments", function()
    -- Dense takes Keras's 10 (units ... bias_constraint): an 11th is one too many
    raises("Dense: too many positional arguments", function()
      L.Dense(3, "linear", true, "glorot_uniform", "zeros", nil, nil, nil, nil, nil, 4)
    end)
  end)

  it("refuses units < 1", function()
    raises("Dense: units must be an integer >= 1, got 0", function() L.Dense(0) end)
  end)

  it("refuses a Dropout rate outside [0, 1)", function()
    raises("Dropout: rate must be a number in [0, 1), got 1.5", function() L.Dropout(1.5) end)
  end)

  it("refuses a Reshape with two unknown dimensions", function()
    raises("Reshape: can only infer one unknown dimension", function() L.Reshape{{-1, -1}} end)
  end)

  it("refuses an input_shape with the batch dimension", function()
    raises("Dense: input_shape must not include the batch dimension",
      function() L.Dense{3, input_shape = {None, 2}} end)
  end)

  it("refuses keras.Input without a shape", function()
    raises("Input: give a shape (shape={...}) or a batch_shape", function() keras.Input{} end)
  end)
end)

describe("merge layer errors", function()
  it("Subtract takes exactly two inputs", function()
    local a, b, c = keras.Input{shape = {2}}, keras.Input{shape = {2}}, keras.Input{shape = {2}}
    raises("Subtract (sub): a Subtract layer should be called on exactly 2 inputs", function()
      L.Subtract{name = "sub"}({a, b, c})
    end)
  end)

  it("a merge layer needs a list of at least two inputs", function()
    raises("Add (add_one): a merge layer should be called on a list of at least 2 inputs", function()
      L.Add{name = "add_one"}(keras.Input{shape = {2}})
    end)
  end)

  it("Add refuses inputs of different shapes", function()
    local a, b = keras.Input{shape = {2}}, keras.Input{shape = {3}}
    raises("Add (add_mismatch): Operands could not be broadcast together with shapes (None, 2) (None, 3)", function()
      L.Add{name = "add_mismatch"}({a, b})
    end)
  end)

  it("Concatenate refuses shapes that differ off the concatenation axis", function()
    local a, b = keras.Input{shape = {2, 3}}, keras.Input{shape = {3, 3}}
    raises("Concatenate (cat): A `Concatenate` layer requires inputs with matching shapes except for the concat axis. "
      .. "Got inputs shapes: (None, 2, 3), (None, 3, 3)", function() L.Concatenate{name = "cat"}({a, b}) end)
  end)
end)

describe("weight errors", function()
  it("Layer:set_weights refuses a list of the wrong length", function()
    local dense = L.Dense{2, input_dim = 2, name = "counted"}
    keras.Sequential{dense}
    raises('You called `set_weights(weights)` on layer "counted" with a weight list of length 1, '
      .. "but the layer was expecting 2 weights.", function() dense:set_weights{keras.tensor{{1, 2}, {3, 4}}} end)
  end)

  it("Model:set_weights refuses a list of the wrong length", function()
    raises("set_weights: the model has 2 weights, got 1", function() compiled():set_weights{keras.tensor{1}} end)
  end)

  it("Model:set_weights refuses a weight of the wrong shape", function()
    local model = keras.Sequential{L.Dense{1, input_dim = 2, name = "shaped"}}
    raises("set_weights: weight 1 (shaped/kernel:0) has shape (2, 1), got (1, 2)", function()
      model:set_weights{keras.tensor{{1, 2}}, keras.tensor{1}}
    end)
  end)
end)

describe("model construction errors", function()
  it("refuses an input that needs another input the model was not given", function()
    local a, b = keras.Input{shape = {2}, name = "given"}, keras.Input{shape = {2}, name = "forgotten"}
    local out = L.add{L.Dense{1}(a), L.Dense{1}(b)}
    raises('Graph disconnected: cannot obtain value for tensor forgotten at layer "forgotten". Pass it in inputs.',
      function() keras.Model{inputs = a, outputs = out} end)
  end)

  it("refuses an input that does not lead to the outputs", function()
    local a, b = keras.Input{shape = {2}, name = "used"}, keras.Input{shape = {2}, name = "unused"}
    raises("Model: input 'unused' is not connected to the outputs", function()
      keras.Model{inputs = {a, b}, outputs = L.Dense{1}(a)}
    end)
  end)

  it("refuses model inputs that are not keras.Input", function()
    local a = keras.Input{shape = {2}}
    local h = L.Dense{2}(a)
    raises("Model: input 1 is not a keras.Input (model inputs must come from keras.Input)", function()
      keras.Model{inputs = h, outputs = L.Dense{1}(h)}
    end)
  end)

  it("refuses concrete outputs", function()
    raises("Model: outputs must be a symbolic tensor or a list of them", function()
      keras.Model{inputs = keras.Input{shape = {2}}, outputs = X}
    end)
  end)

  it("Sequential:add refuses what is not a layer", function()
    raises("The added layer must be an instance of class Layer. Found: 42", function() keras.Sequential():add(42) end)
  end)

  it("Sequential:pop refuses an empty model", function()
    raises("There are no layers in the model.", function() keras.Sequential():pop() end)
  end)

  it("summary refuses a model that is not built yet", function()
    raises("This model has not yet been built. Build the model first by calling build() or calling fit() with some "
      .. "data. Or specify input_shape or batch_input_shape in the first layer for automatic build.",
      function() keras.Sequential{L.Dense{2}}:summary() end)
  end)
end)

describe("compile errors", function()
  local function model() return keras.Sequential{L.Dense{1, input_dim = 2}} end

  it("refuses an unknown loss, quoted", function()
    raises("unknown loss 'categorical_crossentropi'", function()
      model():compile{optimizer = "sgd", loss = "categorical_crossentropi"}
    end)
  end)

  it("refuses an unknown optimizer, quoted", function()
    raises("unknown optimizer 'sgdd'", function() model():compile{optimizer = "sgdd", loss = "mse"} end)
  end)

  it("refuses an unknown metric, quoted", function()
    raises("unknown metric 'acuracy'", function()
      model():compile{optimizer = "sgd", loss = "mse", metrics = {"acuracy"}}
    end)
  end)

  it("needs an optimizer", function()
    raises("compile: missing argument 'optimizer'", function() model():compile{loss = "mse"} end)
  end)

  it("needs a loss", function()
    raises("compile: missing argument 'loss'", function() model():compile{optimizer = "sgd"} end)
  end)

  it("refuses a loss for an output the model does not have", function()
    raises("compile: unknown output name 'out_c' in loss (outputs: out_a, out_b)", function()
      two_io():compile{optimizer = "sgd", loss = {out_a = "mse", out_c = "mse"}}
    end)
  end)

  it("refuses a loss table that misses an output", function()
    raises("compile: loss has no entry for output 'out_b'", function()
      two_io():compile{optimizer = "sgd", loss = {out_a = "mse"}}
    end)
  end)

  it("refuses a loss list of the wrong length", function()
    raises("compile: loss has 1 entries but the model has 2 outputs", function()
      two_io():compile{optimizer = "sgd", loss = {"mse"}}
    end)
  end)

  it("refuses a bad optimizer argument", function()
    raises("SGD: lr must be a non-negative number, got -1", function() keras.optimizers.SGD{lr = -1} end)
  end)
end)

describe("fit errors", function()
  it("refuses to fit before compile", function()
    local model = keras.Sequential{L.Dense{1, input_dim = 2}}
    raises("fit: You must compile your model before using it.", function() model:fit(X, Y, {verbose = 0}) end)
  end)

  it("refuses to evaluate before compile", function()
    local model = keras.Sequential{L.Dense{1, input_dim = 2}}
    raises("evaluate: You must compile your model before using it.", function() model:evaluate(X, Y) end)
  end)

  it("refuses x and y with different numbers of samples", function()
    raises("fit: x has 1000 samples but y has 900", function()
      compiled():fit(keras.tensor.ones{1000, 2}, keras.tensor.ones{900, 1}, {verbose = 0})
    end)
  end)

  it("refuses NaN in x", function()
    local x = keras.tensor.ones{3, 2}
    x:set(2, 1, 0 / 0)
    local inp = keras.Input{shape = {2}, name = "features"}
    local model = keras.Model{inputs = inp, outputs = L.Dense{1}(inp)}
    model:compile{optimizer = "sgd", loss = "mse"}
    raises("fit: input 'features' contains NaN or Inf",
      function() model:fit(x, keras.tensor.ones{3, 1}, {verbose = 0}) end)
  end)

  it("refuses NaN in y", function()
    local y = keras.tensor.ones{4, 1}
    y:set(1, 1, 0 / 0)
    local model = keras.Sequential{L.Dense{1, input_dim = 2, name = "target_out"}}
    model:compile{optimizer = "sgd", loss = "mse"}
    raises("fit: target 'target_out' contains NaN or Inf", function() model:fit(X, y, {verbose = 0}) end)
  end)

  it("refuses NaN and Inf in predict's inputs, found batch by batch, naming the input", function()
    local a = keras.Input{shape = {2}, name = "first"}
    local b = keras.Input{shape = {2}, name = "second"}
    local model = keras.Model{inputs = {a, b}, outputs = L.Add()({a, b})}
    local xa, xb = keras.tensor.ones{10, 2}, keras.tensor.ones{10, 2}
    xb:set(9, 2, 1 / 0)   -- in the third batch of 4
    raises("predict: input 'second' contains NaN or Inf", function() model:predict({xa, xb}, {batch_size = 4}) end)
    raises("predict_on_batch: input 'second' contains NaN or Inf", function() model:predict_on_batch({xa, xb}) end)
    xb:set(9, 2, 1)
    xa:set(1, 1, 0 / 0)
    raises("predict: input 'first' contains NaN or Inf", function() model:predict({xa, xb}, {batch_size = 4}) end)
    xa:set(1, 1, -1 / 0)
    raises("predict: input 'first' contains NaN or Inf", function() model:predict({xa, xb}, {batch_size = 4}) end)
    xa:set(1, 1, 3.4e38)   -- large but finite
    local out = model:predict({xa, xb}, {batch_size = 4})
    assert.are.equal(2, out:get(2, 1))
    assert.is_true(out:get(1, 1) > 3e38 and out:get(1, 1) < math.huge)
  end)

  it("refuses an input of the wrong shape as Keras does", function()
    local inp = keras.Input{shape = {2}, name = "features"}
    local model = keras.Model{inputs = inp, outputs = L.Dense{1}(inp)}
    model:compile{optimizer = "sgd", loss = "mse"}
    raises("Error when checking input: expected features to have shape (2,) but got array with shape (5,)", function()
      model:fit(keras.tensor.ones{3, 5}, keras.tensor.ones{3, 1}, {verbose = 0})
    end)
  end)

  it("refuses a target of the wrong shape as Keras does", function()
    local model = keras.Sequential{L.Dense{1, input_dim = 2, name = "scores"}}
    model:compile{optimizer = "sgd", loss = "mse"}
    raises("Error when checking target: expected scores to have shape (1,) but got array with shape (3,)", function()
      model:fit(X, keras.tensor.ones{4, 3}, {verbose = 0})
    end)
  end)

  it("refuses epochs = -1", function()
    raises("fit: epochs must be an integer >= 0, got -1",
      function() compiled():fit(X, Y, {epochs = -1, verbose = 0}) end)
  end)

  it("refuses batch_size = 0", function()
    raises("fit: batch_size must be an integer >= 1, got 0", function()
      compiled():fit(X, Y, {batch_size = 0, verbose = 0})
    end)
  end)

  it("refuses validation_split = 1.5", function()
    raises("fit: validation_split must be a number in [0, 1), got 1.5", function()
      compiled():fit(X, Y, {validation_split = 1.5, verbose = 0})
    end)
  end)

  it("refuses verbose = 3", function()
    raises("fit: verbose must be 0, 1 or 2, got 3", function() compiled():fit(X, Y, {verbose = 3}) end)
  end)

  it("refuses an unknown option", function()
    raises("fit: unknown argument 'foo'", function() compiled():fit(X, Y, {foo = 1, verbose = 0}) end)
  end)

  it("refuses fit without y", function()
    raises("fit: missing y (targets)", function() compiled():fit(X) end)
  end)

  it("refuses validation_data that is not {x_val, y_val}", function()
    raises("fit: validation_data must be {x_val, y_val} or {x_val, y_val, val_sample_weight}", function()
      compiled():fit(X, Y, {validation_data = X, verbose = 0})
    end)
  end)

  it("refuses sample_weight of another length", function()
    raises("fit: sample_weight has 2 entries but there are 4 samples", function()
      compiled():fit(X, Y, {sample_weight = keras.tensor{1, 2}, verbose = 0})
    end)
  end)

  it("refuses a class_weight without every class in the data", function()
    raises("fit: class_weight must contain all classes in the data. The classes {1} exist in the data but not in "
      .. "class_weight.", function()
      compiled():fit(X, keras.tensor{{0}, {1}, {1}, {0}}, {class_weight = {[0] = 1}, verbose = 0})
    end)
  end)

  it("refuses data for an input the model does not have", function()
    local model = two_io()
    model:compile{optimizer = "sgd", loss = "mse"}
    raises("fit: unknown input name 'in_c' (expected in_a, in_b)", function()
      model:fit({in_a = X, in_c = X}, {Y, Y}, {verbose = 0})
    end)
  end)

  it("refuses a table that misses an input", function()
    local model = two_io()
    model:compile{optimizer = "sgd", loss = "mse"}
    raises("fit: no data for input 'in_b'", function() model:fit({in_a = X}, {Y, Y}, {verbose = 0}) end)
  end)

  it("refuses a list with too few arrays", function()
    local model = two_io()
    model:compile{optimizer = "sgd", loss = "mse"}
    raises("fit: the model has 2 inputs but 1 arrays were given", function() model:fit({X}, {Y, Y}, {verbose = 0}) end)
  end)

  it("refuses x that is not data", function()
    raises("fit: input must be a keras.Tensor, a list of them or a table keyed by name, got string", function()
      compiled():fit("abc", Y, {verbose = 0})
    end)
  end)

  it("refuses a callback that is not a table", function()
    raises("fit: callbacks[2] is not a table", function() compiled():fit(X, Y, {verbose = 0, callbacks = {{}, 3}}) end)
  end)

  it("refuses evaluate with batch_size = 0", function()
    raises("evaluate: batch_size must be an integer >= 1, got 0", function()
      compiled():evaluate(X, Y, {batch_size = 0})
    end)
  end)

  it("refuses predict with batch_size = 0", function()
    raises("predict: batch_size must be an integer >= 1, got 0", function() compiled():predict(X, {batch_size = 0}) end)
  end)
end)

describe("callback errors", function()
  it("LambdaCallback refuses an unknown hook", function()
    raises("LambdaCallback: unknown argument 'on_foo'", function()
      keras.callbacks.LambdaCallback{on_foo = function() end}
    end)
  end)

  it("EarlyStopping refuses an unknown mode", function()
    raises("EarlyStopping: mode must be auto, min or max, got 'up'",
      function() keras.callbacks.EarlyStopping{mode = "up"} end)
  end)

  it("LearningRateScheduler refuses a schedule that returns no number", function()
    raises('The output of the "schedule" function should be float.', function()
      local schedule = keras.callbacks.LearningRateScheduler(function() return "a" end)
      compiled():fit(X, Y, {verbose = 0, callbacks = {schedule}})
    end)
  end)
end)

describe("keras.utils.to_categorical errors", function()
  it("refuses a negative label", function()
    raises("to_categorical: label -1 is negative", function() keras.utils.to_categorical({1, -1, 2}, 3) end)
  end)

  it("refuses a label beyond num_classes", function()
    raises("to_categorical: label 5 is outside [0, 3)", function() keras.utils.to_categorical({0, 1, 5}, 3) end)
  end)

  it("refuses NaN labels", function()
    raises("to_categorical: labels contain NaN or Inf", function() keras.utils.to_categorical({0, 0 / 0}, 3) end)
  end)
end)

describe("keras.datasets errors", function()
  it("mnist.load_data names the missing file and the folder", function()
    raises("mnist.load_data: 'train-images-idx3-ubyte' not found in /nonexistent/mnist (expected "
      .. "train-images-idx3-ubyte.gz or train-images-idx3-ubyte)", function()
      keras.datasets.mnist.load_data("/nonexistent/mnist")
    end)
  end)

  it("mnist.load_data given nothing looks for mnist.npz in the cache and says where to put it", function()
    -- a child process, so that HOME can point at an empty folder
    local cmd = "env -u LKERAS_HOME -u LKERAS_MNIST_DIR HOME=/nonexistent-home LUA_CPATH='build/?.so;;' lua5.4 -e "
      .. "'print(select(2, pcall(require(\"keras\").datasets.mnist.load_data)))' 2>&1"
    local p = assert(io.popen(cmd))
    local out = p:read("a")
    p:close()
    assert.equal("mnist.load_data: 'mnist.npz' is not in the cache and lkeras does not download: fetch "
      .. "https://s3.amazonaws.com/img-datasets/mnist.npz and save it as /nonexistent-home/.lkeras/datasets/mnist.npz",
      (out:gsub("^[^\n]-:%d+: ", ""):gsub("\n$", "")))
  end)
end)

describe("keras.random errors", function()
  it("seed refuses a non-integer", function()
    raises("keras.random.seed: expected an integer, got 1.5", function() keras.random.seed(1.5) end)
  end)
end)

-- One helper raises every user-facing error (keras.util.raise): at the first
-- caller outside lua/keras, however deep inside the library the check runs
-- and whichever path reached it. Each case names the exact line of this file.
describe("an error from a public call", function()
  -- fn(here) must raise a message that names this file at the line `here()`
  -- returns (the line fn's call runs on)
  local function at_line(expected, fn)
    local line
    local function here() line = debug.getinfo(2, "l").currentline; return line end
    local ok, err = pcall(fn, here)
    assert(not ok, "no error; expected: " .. expected)
    assert.is_string(err)
    assert.equal(SPEC .. ":" .. line .. ": " .. expected, err)
  end

  it("names the user's line for a constructor's own check", function()
    at_line("Dense: units must be an integer >= 1, got 0", function(here)
      local _ = here() and L.Dense(0)
    end)
  end)

  it("names the user's line for a check shared by many layers (a constraint, four calls deep)", function()
    at_line("Dense: unknown constraint 'max_nrom'", function(here)
      local _ = here() and L.Dense(4, {kernel_constraint = "max_nrom"})
    end)
    at_line("Conv2D: unknown constraint 'max_nrom'", function(here)
      local _ = here() and L.Conv2D(4, 3, {kernel_constraint = "max_nrom"})
    end)
    at_line("LSTM: unknown constraint 'max_nrom'", function(here)
      local _ = here() and L.LSTM(4, {kernel_constraint = "max_nrom"})
    end)
  end)

  it("names the user's line for an argument error found by the shared parser", function()
    at_line("Dense: unknown argument 'unit'", function(here)
      local _ = here() and L.Dense{unit = 3}
    end)
  end)

  it("names the user's line when the same check is reached from a user's function", function()
    local function make_layer()   -- the check runs inside a function of the user's
      local layer = L.Dense(-2)
      return layer
    end
    local ok, err = pcall(make_layer)
    assert.is_false(ok)
    local line = debug.getinfo(1, "l").currentline - 5
    assert.equal(SPEC .. ":" .. line .. ": Dense: units must be an integer >= 1, got -2", err)
  end)

  it("names the user's line for compile's unknown loss and optimizer", function()
    local model = keras.Sequential{L.Dense{1, input_dim = 2}}
    at_line("unknown loss 'msee'", function(here)
      local _ = here() and model:compile("sgd", "msee")
    end)
    at_line("unknown optimizer 'sgdd'", function(here)
      local _ = here() and model:compile("sgdd", "mse")
    end)
  end)

  it("names the user's line for keras.random.seed", function()
    at_line("keras.random.seed: expected an integer, got 1.5", function(here)
      local _ = here() and keras.random.seed(1.5)
    end)
  end)
end)
