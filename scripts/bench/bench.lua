-- The seed workloads on lkeras, timed by the same rules as the PyTorch peer
-- (../shared/bench/peers/torch_seed.py):
--   training: `epochs` epochs of fit (shuffle + batches + forward/backward/step);
--             the first epoch is a warm-up and not counted;
--             train samples/s = samples * timed epochs / timed seconds;
--   predict:  over the whole set at the training batch size, output activation
--             applied; 1 warm-up pass, then `infer_passes` timed passes, median.
--
--   build/lkeras scripts/bench/bench.lua WORKLOAD [--samples N] [--epochs N]
--                [--threads N] [--batch N] [--infer-passes N] [--seed N]
--   build/lkeras scripts/bench/bench.lua --list     (the workloads it knows)
--
-- LKERAS_CONV_AUTOTUNE=0 in the environment runs the fixed conv lowering rules.
-- Prints a summary on stderr and one line starting with "JSON " on stdout (the
-- convolution workloads first one starting with "AUTOTUNE ": the autotuner's choices).

local keras = keras or require "keras"
local L = keras.layers
local now = keras._core.now
local blas = keras.backend.blas_info()   -- the OpenBLAS kernels this run uses, and the CPU

-- ---------------------------------------------------------------- data

local function onehot(n, k)
  return keras.utils.to_categorical(keras.random.randint(k, {n}), k)
end

-- ---------------------------------------------------------------- workloads
-- Each: build(n) -> model (compiled), x, y.  Definitions as in torch_seed.py.

local function sgd_nesterov() return keras.optimizers.SGD{lr = 0.01, momentum = 0.9, nesterov = true} end
-- Keras RMSprop defaults: lr = 0.001, rho = 0.9, epsilon = 1e-7
local function rmsprop() return keras.optimizers.RMSprop{lr = 0.001, rho = 0.9} end

local WORKLOADS = {}
local ORDER = {}
-- bucketed: build returns the model and a list of length buckets ({x, y, len}),
-- trained batch by batch (see run_buckets) instead of by fit
local function workload(name, samples, batch, epochs, build, bucketed)
  WORKLOADS[name] = {build = build, samples = samples, batch = batch, epochs = epochs, bucketed = bucketed}
  ORDER[#ORDER + 1] = name
end

workload("mlp", 20000, 128, 11, function(n)
  local model = keras.Sequential{
    L.Dense{64, activation = "relu", input_shape = {20}},
    L.Dropout(0.5),
    L.Dense{64, activation = "relu"},
    L.Dropout(0.5),
    L.Dense{10, activation = "softmax"},
  }
  model:compile{loss = "categorical_crossentropy", optimizer = sgd_nesterov()}
  return model, keras.random.random{n, 20}, onehot(n, 10)
end)

-- the mlp network with its Dense layers written in Lua (keras.layers.Layer:extend,
-- API.md §10): traced once at build, it should train at the built-in layer's speed
-- (its peer is torch_seed.py's mlp)
local LuaDense = L.Layer:extend("LuaDense")
function LuaDense:init(args)
  self.units = args[1]
  self.activation = keras.activations.get(args.activation, "LuaDense")
end
function LuaDense:build(input_shape)
  self.kernel = self:add_weight{name = "kernel", shape = {input_shape[2], self.units}, initializer = "glorot_uniform"}
  self.bias = self:add_weight{name = "bias", shape = {self.units}, initializer = "zeros"}
end
function LuaDense:call(x) return self.activation(keras.backend.dot(x, self.kernel) + self.bias) end

workload("custom_dense", 20000, 128, 11, function(n)
  local model = keras.Sequential{
    LuaDense{64, activation = "relu", input_shape = {20}},
    L.Dropout(0.5),
    LuaDense{64, activation = "relu"},
    L.Dropout(0.5),
    LuaDense{10, activation = "softmax"},
  }
  model:compile{loss = "categorical_crossentropy", optimizer = sgd_nesterov()}
  return model, keras.random.random{n, 20}, onehot(n, 10)
end)

workload("mlp_big", 60000, 128, 4, function(n)
  local model = keras.Sequential{
    L.Dense{512, activation = "relu", input_shape = {784}},
    L.Dropout(0.2),
    L.Dense{512, activation = "relu"},
    L.Dropout(0.2),
    L.Dense{10, activation = "softmax"},
  }
  model:compile{loss = "categorical_crossentropy", optimizer = rmsprop()}
  return model, keras.random.random{n, 784}, onehot(n, 10)
end)

-- ---- the functional API (issue 5): the seed MLP in functional form, and the
-- two-input two-output headline model (its PyTorch twin: scripts/bench/torch_multi_io.py) ----

workload("mlp_functional", 20000, 128, 11, function(n)
  local inputs = keras.Input{shape = {20}}
  local x = L.Dense{64, activation = "relu"}(inputs)
  x = L.Dropout(0.5)(x)
  x = L.Dense{64, activation = "relu"}(x)
  x = L.Dropout(0.5)(x)
  local out = L.Dense{10, activation = "softmax"}(x)
  local model = keras.Model{inputs = inputs, outputs = out}
  model:compile{loss = "categorical_crossentropy", optimizer = sgd_nesterov()}
  return model, keras.random.random{n, 20}, onehot(n, 10)
end)

workload("multi_io", 2000, 32, 4, function(n)
  local main_input = keras.Input{shape = {100}, name = "main_input"}
  local x = L.Embedding{output_dim = 512, input_dim = 10000, input_length = 100}(main_input)
  local lstm_out = L.LSTM(32)(x)
  local aux_output = L.Dense{1, activation = "sigmoid", name = "aux_output"}(lstm_out)
  local aux_input = keras.Input{shape = {5}, name = "aux_input"}
  x = L.concatenate{lstm_out, aux_input}
  x = L.Dense{64, activation = "relu"}(x)
  x = L.Dense{64, activation = "relu"}(x)
  x = L.Dense{64, activation = "relu"}(x)
  local main_output = L.Dense{1, activation = "sigmoid", name = "main_output"}(x)
  local model = keras.Model{inputs = {main_input, aux_input}, outputs = {main_output, aux_output}}
  model:compile{optimizer = rmsprop(), loss = "binary_crossentropy", loss_weights = {1.0, 0.2}}
  local labels = keras.random.randint(2, {n, 1})
  return model, {keras.random.randint(10000, {n, 100}), keras.random.random{n, 5}}, {labels, labels}
end)

-- ---- the convolution workloads (issue 3: Conv1D/Conv2D); as in torch_seed.py ----

workload("cnn", 100, 32, 6, function(n)
  local model = keras.Sequential{
    L.Conv2D{32, {3, 3}, activation = "relu", input_shape = {100, 100, 3}},
    L.Conv2D{32, {3, 3}, activation = "relu"},
    L.MaxPooling2D{pool_size = {2, 2}},
    L.Dropout(0.25),
    L.Conv2D{64, {3, 3}, activation = "relu"},
    L.Conv2D{64, {3, 3}, activation = "relu"},
    L.MaxPooling2D{pool_size = {2, 2}},
    L.Dropout(0.25),
    L.Flatten(),
    L.Dense{256, activation = "relu"},
    L.Dropout(0.5),
    L.Dense{10, activation = "softmax"},
  }
  model:compile{loss = "categorical_crossentropy", optimizer = sgd_nesterov()}
  return model, keras.random.random{n, 100, 100, 3}, onehot(n, 10)
end)

workload("conv1d", 1000, 16, 6, function(n)
  local model = keras.Sequential{
    L.Conv1D{64, 3, activation = "relu", input_shape = {100, 100}},
    L.Conv1D{64, 3, activation = "relu"},
    L.MaxPooling1D(3),
    L.Conv1D{128, 3, activation = "relu"},
    L.Conv1D{128, 3, activation = "relu"},
    L.GlobalAveragePooling1D(),
    L.Dropout(0.5),
    L.Dense{1, activation = "sigmoid"},
  }
  model:compile{loss = "binary_crossentropy", optimizer = rmsprop()}
  return model, keras.random.random{n, 100, 100}, keras.random.randint(2, {n, 1})
end)

-- ---- the convolution workloads of issue 12 (transposed, separable and depthwise
-- convolutions). Their PyTorch twin: scripts/bench/torch_convnets.py. ----

-- a denoising autoencoder on 28x28x1 images (scripts/examples/conv_autoencoder.lua's
-- network): noisy images in, clean images out, mean squared error, Adam
workload("conv_autoencoder", 2000, 128, 4, function(n)
  local model = keras.Sequential{
    L.Conv2D{32, 3, strides = 2, padding = "same", activation = "relu", input_shape = {28, 28, 1}},
    L.Conv2D{64, 3, strides = 2, padding = "same", activation = "relu"},
    L.Conv2DTranspose{64, 3, strides = 2, padding = "same", activation = "relu"},
    L.Conv2DTranspose{32, 3, strides = 2, padding = "same", activation = "relu"},
    L.Conv2D{1, 3, padding = "same", activation = "sigmoid"},
  }
  model:compile{loss = "mse", optimizer = keras.optimizers.Adam{lr = 0.001}}
  local clean = keras.random.random{n, 28, 28, 1}
  local noisy = (clean + keras.random.normal(clean.shape, 0, 0.5)):clip(0, 1)
  return model, noisy, clean
end)

-- a small MobileNet-style classifier on 32x32x3 images: a strided Conv2D stem, then
-- SeparableConv2D blocks and one DepthwiseConv2D + 1x1 Conv2D block (MobileNet's
-- unit, written out), global average pooling, softmax; RMSprop
workload("separable_cnn", 2000, 32, 4, function(n)
  local model = keras.Sequential{
    L.Conv2D{32, 3, strides = 2, padding = "same", activation = "relu", input_shape = {32, 32, 3}},
    L.SeparableConv2D{64, 3, padding = "same", activation = "relu"},
    L.SeparableConv2D{128, 3, strides = 2, padding = "same", activation = "relu"},
    L.DepthwiseConv2D{3, padding = "same", activation = "relu"},
    L.Conv2D{128, 1, activation = "relu"},
    L.SeparableConv2D{256, 3, strides = 2, padding = "same", activation = "relu"},
    L.GlobalAveragePooling2D(),
    L.Dense{10, activation = "softmax"},
  }
  model:compile{loss = "categorical_crossentropy", optimizer = rmsprop()}
  return model, keras.random.random{n, 32, 32, 3}, onehot(n, 10)
end)

-- a small volumetric classifier on 16x16x16x1 volumes (issue 12's 3-D convolutions):
-- Conv3D, max pooling, Conv3D, softmax; Adam
workload("conv3d", 512, 32, 4, function(n)
  local model = keras.Sequential{
    L.Conv3D{16, 3, activation = "relu", input_shape = {16, 16, 16, 1}},
    L.MaxPooling3D{pool_size = 2},
    L.Conv3D{32, 3, activation = "relu"},
    L.Flatten(),
    L.Dense{10, activation = "softmax"},
  }
  model:compile{loss = "categorical_crossentropy", optimizer = keras.optimizers.Adam{lr = 0.001}}
  return model, keras.random.random{n, 16, 16, 16, 1}, onehot(n, 10)
end)

-- ---- end of the convolution workloads ----

-- ---- the recurrent workloads (issue 4: sequences and text); as in torch_seed.py ----

workload("lstm_stacked", 10000, 64, 6, function(n)
  local model = keras.Sequential{
    L.LSTM{32, return_sequences = true, input_shape = {8, 16}},
    L.LSTM{32, return_sequences = true},
    L.LSTM{32},
    L.Dense{10, activation = "softmax"},
  }
  model:compile{loss = "categorical_crossentropy", optimizer = rmsprop()}
  return model, keras.random.random{n, 8, 16}, keras.random.random{n, 10}
end)

workload("embed_lstm", 2000, 32, 4, function(n)
  local model = keras.Sequential{
    L.Embedding{20000, 256, input_length = 80},
    L.LSTM(128),
    L.Dropout(0.5),
    L.Dense{1, activation = "sigmoid"},
  }
  model:compile{loss = "binary_crossentropy", optimizer = rmsprop()}
  return model, keras.random.randint(20000, {n, 80}), keras.random.randint(2, {n, 1})
end)

-- ---- None-length sequences (issue 11): the embed_lstm classifier without
-- input_length, its batches in 8 length buckets (10, 20, ..., 80 steps, an
-- equal share of the samples each), trained batch by batch with
-- train_on_batch in a shuffled order of batches; and its fixed-length twin,
-- the same model at the buckets' mean length (45) on the same samples, so
-- the same total timesteps, the same number of batches and the same loop.
-- Both report samples*timesteps per second (train_timesteps_per_s). Their
-- PyTorch twin: scripts/bench/torch_lstm_varlen.py. ----

local function embed_lstm_model(len)
  local model = keras.Sequential{
    L.Embedding{20000, 256, input_length = len},
    L.LSTM(128),
    L.Dropout(0.5),
    L.Dense{1, activation = "sigmoid"},
  }
  model:compile{loss = "binary_crossentropy", optimizer = rmsprop()}
  return model
end

-- n samples in buckets of the given lengths: a list of {x = (m, T) ids, y = (m, 1)}
local function buckets(n, lengths)
  local out, per = {}, math.max(n // #lengths, 1)
  for i, T in ipairs(lengths) do
    out[i] = {x = keras.random.randint(20000, {per, T}), y = keras.random.randint(2, {per, 1}), len = T}
  end
  return out
end

local BUCKETS = {10, 20, 30, 40, 50, 60, 70, 80}
workload("lstm_varlen", 2048, 32, 4, function(n)
  return embed_lstm_model(nil), buckets(n, BUCKETS)
end, true)

workload("lstm_fixedlen", 2048, 32, 4, function(n)
  local b = buckets(n, {45})
  -- as many samples as the buckets hold together
  b[1] = {x = keras.random.randint(20000, {(n // #BUCKETS) * #BUCKETS, 45}),
          y = keras.random.randint(2, {(n // #BUCKETS) * #BUCKETS, 1}), len = 45}
  return embed_lstm_model(45), b
end, true)

-- ---- end of the recurrent workloads ----

-- ---------------------------------------------------------------- arguments

local function usage(msg)
  io.stderr:write((msg and (msg .. "\n") or "") ..
    "usage: lkeras bench.lua WORKLOAD [--samples N] [--epochs N] [--threads N] [--batch N]" ..
    " [--infer-passes N] [--seed N] [--dist 1] [--overlap 0|1]\n       lkeras bench.lua --list\n" ..
    "workloads: " .. table.concat(ORDER, " ") .. "\n")
  os.exit(2)
end

local opts = {threads = 2, infer_passes = 3, seed = 0}
local name
local i = 1
while arg[i] do
  local a = arg[i]
  if a == "--list" then
    print(table.concat(ORDER, "\n"))
    os.exit(0)
  elseif a == "-h" or a == "--help" then
    usage()
  elseif a:sub(1, 2) == "--" then
    local key = a:sub(3):gsub("-", "_")
    local v = math.tointeger(tonumber(arg[i + 1] or ""))
    if not ({samples = 1, epochs = 1, threads = 1, batch = 1, infer_passes = 1, seed = 1, dist = 1,
             overlap = 1})[key] then
      usage("unknown option " .. a)
    end
    if not v or v < ((key == "seed" or key == "overlap") and 0 or 1) then usage(a .. " needs a positive integer") end
    if key == "epochs" and v < 2 then usage("--epochs counts the warm-up epoch: it must be >= 2") end
    opts[key] = v
    i = i + 2
  else
    if name then usage("one workload per run") end
    name = a
    i = i + 1
  end
end
if not name then usage("missing workload") end
local w = WORKLOADS[name]
if not w then usage("unknown workload '" .. name .. "'") end

-- ---------------------------------------------------------------- memory

local function vm(field)
  local f = io.open("/proc/self/status")
  if not f then return nil end
  local s = f:read("a")
  f:close()
  local kb = s:match(field .. ":%s*(%d+)")
  return kb and tonumber(kb) / 1024 or nil
end

local function round(x, d)
  if x == nil then return nil end
  local m = 10 ^ d
  return math.floor(x * m + 0.5) / m
end

-- ---------------------------------------------------------------- run

local t_start = now()
local default_threads = keras.get_num_threads()
keras.set_num_threads(opts.threads)
keras.random.seed(opts.seed)
-- LKERAS_CONV_AUTOTUNE=0 in the environment: the fixed conv lowering rules (K.set_conv_autotune(false))
if os.getenv("LKERAS_CONV_AUTOTUNE") == "0" then keras.backend.set_conv_autotune(false) end
local n = opts.samples or w.samples
local batch = opts.batch or w.batch
local epochs = opts.epochs or w.epochs

local model, x, y = w.build(n)
local n_params = model:count_params()
-- --dist 1 (under mpirun, scripts/bench/run_dist.sh): data-parallel over the
-- ranks at the same global batch (batch / size rows per process)
local dist = opts.dist and keras.distributed.init{threads = opts.threads}
if dist then
  -- --overlap 0|1: the reduction after the backward pass or overlapped with it (default: "auto")
  local ov = "auto"
  if opts.overlap then ov = opts.overlap == 1 end
  keras.distributed.DistributedOptimizer(model.optimizer, {overlap = ov})
  batch = math.max(1, batch // dist.size())
end
local rss_before_train = vm("VmHWM")
local bucket_list, timesteps, steps
if w.bucketed then
  -- x is the list of buckets: n counts their samples, timesteps their samples * lengths
  bucket_list, n, timesteps, steps = x, 0, 0, 0
  for _, b in ipairs(bucket_list) do
    local m = b.x.shape[1]
    n, timesteps, steps = n + m, timesteps + m * b.len, steps + (m + batch - 1) // batch
  end
  x, y = {}, {}
  for k, b in ipairs(bucket_list) do x[k], y[k] = b.x, b.y end
end

-- bucketed training: every epoch the batches of every bucket (each bucket's
-- samples shuffled) in a shuffled order, one train_on_batch each
local function run_buckets()
  local epoch_times, losses = {}, {}
  for _ = 1, epochs do
    local t = now()
    local list = {}
    for _, b in ipairs(bucket_list) do
      local m = b.x.shape[1]
      local perm = keras.random.permutation(m) + 1
      local bx, by = b.x:take(perm), b.y:take(perm)
      for first = 1, m, batch do
        local last = math.min(first + batch - 1, m)
        list[#list + 1] = {bx:slice(first, last), by:slice(first, last), last - first + 1}
      end
    end
    local order = keras.random.permutation(#list)
    local total = 0
    for k = 1, #list do
      local bt = list[math.tointeger(order:get(k)) + 1]
      total = total + model:train_on_batch(bt[1], bt[2]) * bt[3]
    end
    epoch_times[#epoch_times + 1] = now() - t
    losses[#losses + 1] = total / n
  end
  return epoch_times, losses
end

-- training: one fit call, epochs timed by a callback (fit shuffles every epoch)
local epoch_times, t0 = {}, nil
local losses
if w.bucketed then
  epoch_times, losses = run_buckets()
else
  local timer = keras.callbacks.LambdaCallback{
    on_epoch_begin = function() t0 = now() end,
    on_epoch_end = function() epoch_times[#epoch_times + 1] = now() - t0 end,
  }
  local history = model:fit(x, y, {batch_size = batch, epochs = epochs, verbose = 0, shuffle = true,
                                   callbacks = {timer}})
  losses = history.history.loss
end
local timed_s = 0
for e = 2, #epoch_times do timed_s = timed_s + epoch_times[e] end
local timed = #epoch_times - 1
local train_sps = n * timed / timed_s
local gbatch = batch * (dist and dist.size() or 1)
steps = steps or (n + gbatch - 1) // gbatch
-- the time the distributed fit spent in its collectives (allreduce) per step
local allreduce_ms, overlap_buckets, shared_region, split_step, state_steps, chunked_steps
if dist and model._trainer then
  local sec, nsteps, _, nb, shm, split, sst, cst = model._trainer:dist_stats()
  allreduce_ms = nsteps > 0 and 1000 * sec / nsteps or nil
  overlap_buckets, shared_region, split_step, state_steps, chunked_steps = nb, shm, split, sst, cst
end

-- predict: 1 warm-up pass + infer_passes timed passes, median
local infer_times = {}
for _ = 0, opts.infer_passes do
  local t = now()
  if w.bucketed then
    for _, b in ipairs(bucket_list) do model:predict(b.x, {batch_size = batch}) end
  else
    model:predict(x, {batch_size = batch})
  end
  infer_times[#infer_times + 1] = now() - t
end
local sorted = {}
for k = 2, #infer_times do sorted[#sorted + 1] = infer_times[k] end
table.sort(sorted)
local m = #sorted
local median = m % 2 == 1 and sorted[(m + 1) // 2] or (sorted[m // 2] + sorted[m // 2 + 1]) / 2
local infer_sps = n / median

local function list(t, d)
  local out = {}
  for k, v in ipairs(t) do out[k] = string.format("%." .. d .. "f", v):gsub("0+$", ""):gsub("%.$", "") end
  return "[" .. table.concat(out, ", ") .. "]"
end
local function num(v)
  if v == nil then return "null" end
  if math.type(v) == "integer" then return tostring(v) end
  if v ~= v or v == math.huge or v == -math.huge then return "null" end
  return string.format("%.14g", v)
end

-- x and y are tensors, or lists of them (multi-input/multi-output models)
local function elements(v)
  if getmetatable(v) == nil and type(v) == "table" then
    local total = 0
    for _, t in ipairs(v) do total = total + t:size() end
    return total
  end
  return v:size()
end
local data_mb = (elements(x) + elements(y)) * 4 / 2 ^ 20
local fields = {
  {"workload", string.format("%q", name)},
  {"framework", '"lkeras-0.1"'},
  {"threads", num(keras.get_num_threads())},
  {"default_threads", num(default_threads)},
  {"OPENBLAS_CORETYPE", string.format("%q", os.getenv("OPENBLAS_CORETYPE") or "")},
  {"blas_core", string.format("%q", blas.core)},
  {"blas_chosen_by", string.format("%q", blas.chosen_by)},
  {"blas_openblas_core", string.format("%q", blas.openblas_core)},
  {"cpu", string.format("%q", blas.cpu)},
  {"samples", num(n)},
  {"batch", num(batch)},
  {"epochs_timed", num(timed)},
  {"params", num(n_params)},
  {"train_samples_per_s", num(round(train_sps, 1))},
  {"train_ms_per_step", num(round(1000 * timed_s / (timed * steps), 3))},
  {"epoch_s", list(epoch_times, 4)},
  {"infer_samples_per_s", num(round(infer_sps, 1))},
  {"infer_pass_s", list(infer_times, 4)},
  {"final_loss", num(round(losses[#losses], 5))},
  {"train_timesteps_per_s", num(timesteps and round(timesteps * timed / timed_s, 1))},
  {"infer_timesteps_per_s", num(timesteps and round(timesteps / median, 1))},
  {"data_mb", num(round(data_mb, 1))},
  {"maxrss_mb_before_train", num(round(rss_before_train, 1))},
  {"maxrss_mb_end", num(round(vm("VmHWM"), 1))},
  {"wall_s", num(round(now() - t_start, 2))},
  {"dist_size", num(dist and dist.size() or 1)},
  {"allreduce_ms_per_step", num(allreduce_ms and round(allreduce_ms, 3))},
  {"overlap_buckets", num(overlap_buckets)},
  {"shared_region", shared_region == nil and "null" or tostring(shared_region)},
  {"split_step", num(split_step)},
  {"shared_state_steps", num(state_steps)},
  {"chunked_steps", num(chunked_steps)},
}
if dist and dist.rank() ~= 0 then return end   -- rank 0 reports the job
local parts = {}
for k, f in ipairs(fields) do parts[k] = string.format('"%s": %s', f[1], f[2]) end
io.stderr:write(string.format("%s: train %.0f samples/s (%.3f ms/step, batch %d), infer %.0f samples/s, " ..
  "params %d, loss %.4f->%.4f\n", name, train_sps, 1000 * timed_s / (timed * steps), batch, infer_sps,
  n_params, losses[1], losses[#losses]))
-- the convolution workloads: what the autotuner chose for each conv pass, and its time
-- (keras.backend.conv_autotune_report, docs/design.md), as one "AUTOTUNE " JSON line
local CONV_WORKLOADS = {cnn = true, conv1d = true, conv_autoencoder = true, separable_cnn = true, conv3d = true}
if CONV_WORKLOADS[name] then
  io.write("AUTOTUNE " .. require("keras.json").encode(keras.backend.conv_autotune_report()) .. "\n")
end
io.write("JSON {" .. table.concat(parts, ", ") .. "}\n")
io.stdout:flush()
