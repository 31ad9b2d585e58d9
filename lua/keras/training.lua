-- keras.models, continued from models.lua: the data arguments of fit,
-- evaluate and predict (a tensor, a list, or a table keyed by names), the
-- per-shape graphs, trainers and plans of a model with a None length, and
-- fit / evaluate / predict / predict_classes / predict_proba and the on-batch
-- methods. Moved verbatim from models.lua; loaded by it with the keras table,
-- the models table it fills and the call forms it shares (H).
local keras, M, H = ...
local util = require("keras.util")
local is_plain, is_tensor = util.is_plain, util.is_tensor
local raise = util.raise

-- An error out of a C loop (fit_epoch, evaluate): the engine's messages carry
-- no position and are raised at the user's line; what a callback raised
-- (on_batch_*, under the loop's lua_pcall) goes on as it was: a table error
-- object unchanged, a message with the file:line of the user's code.
local function loop_error(e)
  if type(e) ~= "string" then error(e, 0) end
  local where = e:match("^([^\n]-):%d+: ")
  if where and where:sub(1, 10) ~= "lua/keras/" then error(e, 0) end
  raise((e:gsub("^[^:]*:%d+: ", "")))
end
local core, K, L = keras._core, keras.backend, keras.layers
local is_node = core.is_node
local Model = M.Model
local shape_str = L._shape_str
local args_parse = keras._args.parse
local call_spec, DATA, keyed_x, lone_x = H.call_spec, H.DATA, H.keyed_x, H.lone_x

-- ---- data arguments: a tensor, a list, or a table keyed by names ----

local function to_tensor(v, what)
  if is_tensor(v) then return v end
  if is_plain(v) then
    local ok, t = pcall(core.tensor, v)
    if ok then return t end
    raise(string.format("%s: %s", what, tostring(t):gsub("^[^:]*:%d+: ", "")))
  end
  raise(string.format("%s must be a keras.Tensor or a table of numbers, got %s", what, type(v)))
end

local function data_list(v, names, who, what)
  if v == nil then return nil end
  local list
  if is_tensor(v) then
    list = {v}
  elseif is_plain(v) then
    if v[1] ~= nil then
      if is_tensor(v[1]) or (#names > 1 and is_plain(v[1]) and #v == #names) then
        list = {}
        for i = 1, #v do list[i] = to_tensor(v[i], string.format("%s: %s[%d]", who, what, i)) end
      else
        list = {to_tensor(v, who .. ": " .. what)}
      end
    else
      list = {}
      for k in pairs(v) do
        local found = false
        for _, n in ipairs(names) do if n == k then found = true end end
        if not found then
          raise(string.format("%s: unknown %s name '%s' (expected %s)", who, what, tostring(k), table.concat(names,
            ", ")))
        end
      end
      for i, n in ipairs(names) do
        if v[n] == nil then raise(string.format("%s: no data for %s '%s'", who, what, n)) end
        list[i] = to_tensor(v[n], string.format("%s: %s '%s'", who, what, n))
      end
    end
  else
    raise(string.format("%s: %s must be a keras.Tensor, a list of them or a table keyed by name, got %s", who, what,
      type(v)))
  end
  if #list ~= #names then
    raise(string.format("%s: the model has %d %ss but %d arrays were given", who, #names, what, #list))
  end
  return list
end

local function nsamples(t) return t.shape[1] end

-- check one array against what the model expects, reshaping (n,) to (n, 1)
local function fit_shape(t, node_shape, _who, what, name)
  local s = t.shape
  if #s == #node_shape - 1 and node_shape[#node_shape] == 1 then
    local ns = {}
    for i = 1, #s do ns[i] = s[i] end
    ns[#ns + 1] = 1
    t = t:reshape(ns)
    s = t.shape
  end
  local ok = #s == #node_shape
  for i = 2, #s do if s[i] ~= node_shape[i] and node_shape[i] ~= -1 then ok = false end end
  if ok and node_shape[1] ~= -1 and s[1] % node_shape[1] ~= 0 then
    raise(string.format("Error when checking %s: %s has a fixed batch size of %d (batch_shape), and %d samples "
      .. "are not a multiple of it", what, name, node_shape[1], s[1]))
  end
  if not ok then
    local want = {}
    for i = 2, #node_shape do want[#want + 1] = node_shape[i] end
    local got = {}
    for i = 2, #s do got[#got + 1] = s[i] end
    raise(string.format("Error when checking %s: expected %s to have shape %s but got array with shape %s",
      what, name, shape_str(want), shape_str(got)))
  end
  return t
end

-- ---- None lengths: a concrete graph, trainer and plans per input shape ----
-- A model whose inputs have a None axis past the batch (Input{shape={keras.None, 8}},
-- an Embedding without input_length) keeps its layer graph with those axes
-- unknown. Data of a given shape gets a variant: the recorded layer calls
-- traced again on inputs of that shape (same weights), the loss and metrics
-- over them, and a C trainer whose plans and arena fit that shape. Variants
-- are cached by shape, least recently used out (compile's plan_cache_size,
-- default 8), so a length seen before costs no new compilation. All variants
-- share one optimizer and its slots, and one arena (they never run at once).

M.DEFAULT_PLAN_CACHE_SIZE = 8

function Model:_has_none()
  for _, t in ipairs(self.inputs or {}) do
    local s = t.shape
    for i = 2, #s do if s[i] < 0 then return true end end
  end
  return false
end

-- kwargs of a recorded call with its tensors replaced by their traced copies
local function map_kwargs(kwargs, map, layer)
  if kwargs == nil then return nil end
  local function one(v, k)
    if not is_node(v) then return v end
    local m = map[v]
    if not m then
      error(string.format("%s: its call argument '%s' is a tensor made outside the model's layers; it cannot be "
        .. "traced again for a new length", layer.name, tostring(k)), 0)
    end
    return m
  end
  local out = {}
  for k, v in pairs(kwargs) do
    if is_plain(v) then
      local l = {}
      for i, x in pairs(v) do l[i] = one(x, k) end
      out[k] = l
    else
      out[k] = one(v, k)
    end
  end
  return out
end

-- the model's recorded layer calls run again on new input nodes: the outputs
local function replay(model, xs)
  local map = {}
  for i, t in ipairs(model.inputs) do map[t] = xs[i] end
  for _, c in ipairs(model._calls) do
    local layer = c.layer
    if layer.class_name ~= "InputLayer" then
      local ins = {}
      for i, t in ipairs(c.rec.inputs) do
        ins[i] = map[t]
        if not ins[i] then error(string.format("%s: an input cannot be traced again", layer.name), 0) end
      end
      local outs
      if layer._calls and layer.inputs then
        outs = replay(layer, ins)
      else
        outs = layer:_replay(ins, map_kwargs(c.rec.kwargs, map, layer))
      end
      for i, t in ipairs(c.rec.outputs) do map[t] = outs[i] end
    end
  end
  local outs = {}
  for i, t in ipairs(model.outputs) do outs[i] = map[t] end
  return outs
end

local function shape_key(xl)
  local parts = {}
  for i, t in ipairs(xl) do
    local s, p = t.shape, {}
    for k = 2, #s do p[#p + 1] = s[k] end
    parts[i] = table.concat(p, "x")
  end
  return table.concat(parts, ";")
end

-- the trainer for data xl (concrete tensors, one per input); train: one with
-- the loss and the optimizer (the model must be compiled)
local function variant_for(self, xl, train, who)
  local cache = self._variants
  if not cache then
    local cap = (self._compiled and self._compiled.plan_cache_size) or M.DEFAULT_PLAN_CACHE_SIZE
    cache = {map = {}, order = {}, capacity = cap, compilations = 0, hits = 0}
    self._variants = cache
  end
  local key = (train and "t:" or "p:") .. shape_key(xl)
  local v = cache.map[key]
  if v then
    cache.hits = cache.hits + 1
    for i, k in ipairs(cache.order) do
      if k == key then table.remove(cache.order, i); break end
    end
    cache.order[#cache.order + 1] = key
    return v
  end
  local xs = {}
  for i, t in ipairs(self.inputs) do
    local s, d = t.shape, xl[i].shape
    local cs = {s[1]}
    for k = 2, #s do cs[k] = d[k] end
    xs[i] = core.input(cs)
  end
  local ok, outs = pcall(replay, self, xs)
  if not ok then
    error(string.format("%s: the model cannot run on inputs of shape %s: %s", who, shape_key(xl),
      tostring(outs):gsub("^[^:]*:%d+: ", "")), 0)
  end
  local spec = {inputs = xs, outputs = outs}
  v = {inputs = xs, outputs = outs}
  if train then
    local g = self:_training_graph(self._compiled, outs, 0)
    spec.targets, spec.weights, spec.logs, spec.vars = g.targets, g.weights, g.logs, g.vars
    spec.constraints = g.constraints
    spec.optimizer, spec.keep_optimizer = self.optimizer._ud, true
    v.targets = g.targets
  end
  -- the variants never run at once: they share one arena (as big as the largest needs)
  local last = cache.order[#cache.order]
  if last then spec.share_arena = cache.map[last].trainer end
  local tok, trainer = pcall(core.trainer, spec)
  if not tok then error(who .. ": " .. tostring(trainer):gsub("^[^:]*:%d+: ", ""), 0) end
  v.trainer = trainer
  cache.compilations = cache.compilations + 1
  if #cache.order >= cache.capacity then
    -- dropped, not freed here: a loop of it may be running (a callback of its
    -- fit can come here); the collector frees it once nothing holds it
    local old = table.remove(cache.order, 1)
    cache.map[old] = nil
  end
  cache.map[key] = v
  cache.order[#cache.order + 1] = key
  return v
end

-- how the per-shape cache stands: {size, capacity, compilations, hits, shapes}
function Model:plan_cache_info()
  local c = self._variants
  local cap = (self._compiled and self._compiled.plan_cache_size) or M.DEFAULT_PLAN_CACHE_SIZE
  if not c then return {size = 0, capacity = cap, compilations = 0, hits = 0, shapes = {}} end
  local shapes = {}
  for i, k in ipairs(c.order) do shapes[i] = k end
  return {size = #c.order, capacity = c.capacity, compilations = c.compilations, hits = c.hits, shapes = shapes}
end

-- whether the compiled model takes targets (false: compiled without loss)
local function takes_targets(self)
  if self._pending_compile and self.inputs then self:_compile(self._pending_compile, 5) end
  return not (self._compiled and self._targets and #self._targets == 0)
end

-- the trainer for data xl (the input tensors); yl: targets to check against
-- a None-length model's concrete targets
local function trainer_for(self, who, xl, yl)
  if self._pending_compile and self.inputs then self:_compile(self._pending_compile, 4) end
  if not self._compiled then
    raise(who .. ": You must compile your model before using it.")
  end
  if self._trainer then return self._trainer end
  if not xl then   -- callers must pass the batch's data: it picks the trainer
    raise(who .. ": internal error: a model with a None axis needs the data to choose its trainer")
  end
  local ok, v = pcall(variant_for, self, xl, true, who)
  if not ok then raise(v) end
  for i, t in ipairs(yl or {}) do
    local want, got = v.targets[i].shape, t.shape
    local same = #want == #got
    for k = 2, #want do if want[k] ~= got[k] then same = false end end
    if not same then
      raise(string.format("%s: target '%s' has shape %s but the model's output for inputs of shape %s is %s", who,
        self.output_names[i], shape_str(got), shape_key(xl), shape_str(want)))
    end
  end
  return v.trainer
end

-- for loops over batches (generators): the trainer for this batch's data
function Model:_trainer_for(who, xl, yl) return trainer_for(self, who, xl, yl) end

local function predictor_for(self, xl, who)
  if self._trainer then return self._trainer end
  if self:_has_none() then
    local ok, v = pcall(variant_for, self, xl, self._compiled ~= nil, who)
    if not ok then raise(v) end
    return v.trainer
  end
  if not self._predictor then
    self._predictor = core.trainer{inputs = self.inputs, outputs = self.outputs}
  end
  return self._predictor
end

-- the C API (src/lua/capi.c): the trainer that predicts (train false) or
-- trains a model with fixed per-sample sizes; who names the C function
function Model:_c_trainer(train, who)
  if not self.inputs then
    raise(who .. ": the model is not built yet (give its first layer an input_shape, or call it once)")
  end
  if self:_has_none() then
    raise(who .. ": the model has an input with a None length; the C API needs fixed per-sample sizes")
  end
  if train then return trainer_for(self, who) end
  return predictor_for(self, nil, who)
end

-- the C API: the model's weight tensors themselves, in get_weights order
function Model:_c_weights()
  local out = {}
  for i, w in ipairs(self:_weight_records()) do out[i] = w.tensor end
  return out
end

-- ---- fit ----

-- Keras 2.2.4's order
local FIT_SPEC = call_spec("fit", {"x", "y", "batch_size", "epochs", "verbose", "callbacks", "validation_split",
                              "validation_data", "shuffle", "class_weight", "sample_weight", "initial_epoch",
                              "steps_per_epoch", "validation_steps"}, DATA)
FIT_SPEC.single = keyed_x(FIT_SPEC)

local function check_count(x_list, y_list, who)
  local n = nsamples(x_list[1])
  for i, t in ipairs(x_list) do
    if nsamples(t) ~= n then
      raise(string.format("%s: all input arrays should have the same number of samples (input 1 has %d, input %d " ..
        "has %d)",
        who, n, i, nsamples(t)))
    end
  end
  for _, t in ipairs(y_list or {}) do
    if nsamples(t) ~= n then
      raise(string.format("%s: x has %d samples but y has %d", who, n, nsamples(t)))
    end
  end
  return n
end

-- x_checked_later: predict, whose C loop checks the inputs for NaN and Inf
-- as it copies each batch (see predict_error)
local function prepare(self, who, x, y, sw_arg, class_weight, x_checked_later)
  self:_ensure_built(x, who)
  local xl = data_list(x, self.input_names, who, "input")
  if not xl then raise(who .. ": missing x") end
  for i, t in ipairs(xl) do
    xl[i] = fit_shape(t, self.inputs[i].shape, who, "input", self.input_names[i])
    if not x_checked_later and not t:isfinite() then
      raise(string.format("%s: input '%s' contains NaN or Inf", who, self.input_names[i]))
    end
  end
  local yl
  if y ~= nil and y ~= K.None then
    if self._pending_compile then self:_compile(self._pending_compile, 4) end
    if not self._compiled then raise(who .. ": You must compile your model before using it.") end
    if #self._targets == 0 then
      raise(string.format("%s: the model was compiled without a loss for its outputs, so it takes no targets "
        .. "(give y = nil)", who))
    end
    yl = data_list(y, self.output_names, who, "target")
    for i, t in ipairs(yl) do
      yl[i] = fit_shape(t, self._targets[i].shape, who, "target", self.output_names[i])
      if not yl[i]:isfinite() then raise(string.format("%s: target '%s' contains NaN or Inf", who,
        self.output_names[i])) end
    end
  end
  local n = check_count(xl, yl, who)
  -- stateful layers need every batch at their fixed size
  for _, l in ipairs(self._all_layers or {}) do
    if l.stateful and l._fixed_batch and n % l._fixed_batch ~= 0 then
      raise(string.format("%s: In a stateful network, you should only pass inputs with a number of samples that can " ..
        "be divided by the batch size. Found: %d samples", who, n))
    end
  end
  local swl
  if not yl and (sw_arg ~= nil or class_weight ~= nil) then
    raise(string.format("%s: %s needs targets (the model was compiled without a loss for its outputs)", who,
      sw_arg ~= nil and "sample_weight" or "class_weight"))
  end
  if yl then
    swl = {}
    local sws = sw_arg and data_list(sw_arg, self.output_names, who, "sample_weight")
    for i = 1, #yl do
      local sw = sws and sws[i]
      if sw then
        sw = sw:reshape{-1}
        if sw:size() ~= n then
          raise(string.format("%s: sample_weight has %d entries but there are %d samples", who, sw:size(), n))
        end
        if not sw:isfinite() then raise(who .. ": sample_weight contains NaN or Inf") end
      elseif class_weight then
        sw = keras.utils and keras.utils._class_weights(class_weight, yl[i], who) or raise(who
          .. ": class_weight needs keras.utils")
      else
        sw = core.full({n}, 1)
      end
      swl[i] = sw
    end
  end
  return xl, yl, swl, n
end

local function slice_all(list, a, b)
  if not list then return nil end
  local out = {}
  for i, t in ipairs(list) do out[i] = t:slice(a, b) end
  return out
end

local function logs_table(names, values, prefix)
  local t = {}
  for i, n in ipairs(names) do t[(prefix or "") .. n] = values[i] end
  return t
end

-- shuffle = "batch" (Keras's _batch_shuffle, for data read in chunks): the
-- rows of each list in lists, taken in batch_size chunks whose order is random
local function batch_shuffle(lists, n, batch_size)
  local count = n // batch_size
  local perm = core.permutation(count)
  local rows = {}
  for c = 1, count do
    local first = math.tointeger(perm:get(c)) * batch_size
    for r = 1, batch_size do rows[#rows + 1] = first + r end
  end
  for r = count * batch_size + 1, n do rows[#rows + 1] = r end
  local idx = core.tensor(rows)
  local out = {}
  for i, list in ipairs(lists) do
    out[i] = {}
    for k, t in ipairs(list) do out[i][k] = t:take(idx) end
  end
  return table.unpack(out, 1, #lists)
end

function Model:fit(...)
  local o = args_parse(FIT_SPEC, ...)
  local who = "fit"
  local epochs = o.epochs or 1
  local batch_size = o.batch_size or 32
  local verbose = o.verbose == nil and 1 or o.verbose
  local initial_epoch = o.initial_epoch or 0
  if math.type(epochs) ~= "integer" or epochs < 0 then raise("fit: epochs must be an integer >= 0, got "
    .. tostring(epochs)) end
  if math.type(batch_size) ~= "integer" or batch_size < 1 then
    raise("fit: batch_size must be an integer >= 1, got " .. tostring(batch_size))
  end
  if verbose ~= 0 and verbose ~= 1 and verbose ~= 2 then raise("fit: verbose must be 0, 1 or 2, got "
    .. tostring(verbose)) end
  if math.type(initial_epoch) ~= "integer"
    or initial_epoch < 0 then raise("fit: initial_epoch must be an integer >= 0") end
  if o.steps_per_epoch then raise("fit: steps_per_epoch is not supported by this version of lkeras") end
  if o.validation_steps then
    raise("fit: validation_steps is only used with steps_per_epoch, which this version of lkeras does not support")
  end
  local shuffle = o.shuffle == nil and true or o.shuffle
  if shuffle ~= true and shuffle ~= false and shuffle ~= "batch" then
    raise("fit: shuffle must be true, false or \"batch\", got " .. tostring(shuffle))
  end
  if o.validation_split ~= nil and (type(o.validation_split) ~= "number" or o.validation_split ~= o.validation_split
                                     or o.validation_split < 0) then
    raise("fit: validation_split must be a number in [0, 1), got " .. tostring(o.validation_split))
  end
  if o.y == K.None then o.y = nil end
  if o.y == nil then
    self:_ensure_built(o.x, who)
    if takes_targets(self) then raise("fit: missing y (targets)") end
  end
  local xl, yl, swl, n = prepare(self, who, o.x, o.y, o.sample_weight, o.class_weight)
  local trainer = trainer_for(self, who, xl, yl)
  -- keras.distributed: batch_size is per process; the logs are the world's
  local dist = keras.distributed
  local fw = dist and dist._fit_world(self)
  local state_guard <close> = fw and dist._state_guard()   -- luacheck: ignore 211 (closed at the end)
  if fw and dist._quiet() then verbose = 0 end
  local step_rows = batch_size * (fw and fw.size or 1)
  -- validation
  local vx, vy, vsw
  if o.validation_data then
    local vd = o.validation_data
    local vtargets = yl ~= nil
    if not is_plain(vd) or vd[1] == nil or (vtargets and (vd[2] == nil or vd[2] == K.None)) then
      raise("fit: validation_data must be {x_val, y_val} or {x_val, y_val, val_sample_weight}")
    end
    if not vtargets and vd[2] ~= nil and vd[2] ~= K.None then
      raise("fit: validation_data: the model was compiled without a loss for its outputs, so it takes no targets "
        .. "(give {x_val} or {x_val, keras.None})")
    end
    vx, vy, vsw = prepare(self, "fit (validation_data)", vd[1], vtargets and vd[2] or nil, vd[3])
  elseif o.validation_split and o.validation_split > 0 then
    if type(o.validation_split) ~= "number" or o.validation_split >= 1 then
      raise("fit: validation_split must be a number in [0, 1), got " .. tostring(o.validation_split))
    end
    local split_at = math.floor(n * (1 - o.validation_split))
    if split_at < 1 or split_at >= n then
      raise(string.format("fit: validation_split %g leaves no %s samples (%d samples)", o.validation_split,
        split_at < 1 and "training" or "validation", n))
    end
    vx, vy, vsw = slice_all(xl, split_at + 1, n), slice_all(yl, split_at + 1, n), slice_all(swl, split_at + 1, n)
    xl, yl, swl = slice_all(xl, 1, split_at), slice_all(yl, 1, split_at), slice_all(swl, 1, split_at)
    n = split_at
  end
  local cbs = keras.callbacks
  for i, cb in ipairs(o.callbacks or {}) do
    if type(cb) ~= "table" then raise(string.format("fit: callbacks[%d] is not a table", i)) end
  end
  local history = cbs.History()
  local list = {}
  if verbose > 0 then list[#list + 1] = cbs.ProgbarLogger{verbose = verbose} end
  for _, cb in ipairs(o.callbacks or {}) do list[#list + 1] = cb end
  list[#list + 1] = history
  local names = self.metrics_names
  local params = {batch_size = batch_size, epochs = epochs, steps = nil, samples = n, verbose = verbose,
                  do_validation = vx ~= nil, metrics = {}}
  for _, m in ipairs(names) do params.metrics[#params.metrics + 1] = m end
  if vx then for _, m in ipairs(names) do params.metrics[#params.metrics + 1] = "val_" .. m end end
  local runner = cbs._runner(list, self, params)
  if vx and verbose > 0 then
    keras._write(string.format("Train on %d samples, validate on %d samples\n", n, nsamples(vx[1])))
  end
  self.stop_training = false
  runner:call("on_train_begin", {})
  local per_batch = runner:wants_batches()
  local begin_fn
  if runner:wants_batch_begin() then
    begin_fn = function(batch_index, size) runner:batch_begin(batch_index, size) end
  end
  local interval = runner:interval()
  local epoch = initial_epoch
  while epoch < epochs do
    runner:call("on_epoch_begin", epoch, {})
    local cb_fn
    if per_batch or interval then
      cb_fn = function(batch_index, size, cur, mean)
        local seen = math.min(batch_index * step_rows + size, n)
        runner:batch(batch_index, size, seen, logs_table(names, cur), logs_table(names, mean))
        return self.stop_training
      end
    end
    if not self._trainer then trainer = trainer_for(self, who, xl) end   -- a None-length model's, from its cache
    local exl, eyl, eswl, eshuffle = xl, yl, swl, shuffle
    if shuffle == "batch" then   -- Keras: whole batches in a random order, the last partial one last
      exl, eyl, eswl = batch_shuffle({xl, yl, swl}, n, batch_size)
      eshuffle = false
    end
    if fw then dist._attach(self, trainer, fw) end
    local ok, values = pcall(trainer.fit_epoch, trainer, exl, eyl, eswl, eshuffle, batch_size, cb_fn,
                                      per_batch and 0 or interval, begin_fn)
    if not ok then loop_error(values) end
    local logs = logs_table(names, values)
    if vx then
      local vtrainer = self._trainer or trainer_for(self, who, vx, vy)
      local vok, vvalues
      if fw then
        vok, vvalues = pcall(dist._evaluate, vtrainer, vx, vy, vsw, batch_size, nsamples(vx[1]), #names)
      else
        vok, vvalues = pcall(vtrainer.evaluate, vtrainer, vx, vy, vsw, batch_size)
      end
      if not vok then raise(tostring(vvalues):gsub("^[^:]*:%d+: ", "")) end
      for i, nm in ipairs(names) do logs["val_" .. nm] = vvalues[i] end
    end
    runner:call("on_epoch_end", epoch, logs)
    epoch = epoch + 1
    if self.stop_training then break end
  end
  runner:call("on_train_end", {})
  self.history = history
  return history
end

-- ---- evaluate, predict, one batch ----

-- Keras 2.2.4: evaluate(x, y, batch_size, verbose, sample_weight, steps)
local EVAL_SPEC = call_spec("evaluate", {"x", "y", "batch_size", "verbose", "sample_weight", "steps"}, DATA)
EVAL_SPEC.single = keyed_x(EVAL_SPEC)

local function unpack_logs(_self, values)
  if #values == 1 then return values[1] end
  return table.unpack(values)
end

function Model:evaluate(...)
  local o = args_parse(EVAL_SPEC, ...)
  if o.steps ~= nil then
    raise("evaluate: steps is not supported with data arrays (the batches are the data split by batch_size)")
  end
  local batch_size = o.batch_size or 32
  if math.type(batch_size) ~= "integer" or batch_size < 1 then
    raise("evaluate: batch_size must be an integer >= 1, got " .. tostring(batch_size))
  end
  if o.y == K.None then o.y = nil end
  if o.y == nil then
    self:_ensure_built(o.x, "evaluate")
    if takes_targets(self) then raise("evaluate: missing y (targets)") end
  end
  local verbose = o.verbose == nil and 1 or o.verbose
  if verbose ~= 0 and verbose ~= 1 and verbose ~= 2 then
    raise("evaluate: verbose must be 0, 1 or 2, got " .. tostring(verbose))
  end
  local xl, yl, swl, n = prepare(self, "evaluate", o.x, o.y, o.sample_weight)
  local trainer = trainer_for(self, "evaluate", xl, yl)
  local fn
  local bar
  if verbose == 1 and keras.callbacks and not (keras.distributed and keras.distributed._quiet()) then
    bar = keras.callbacks._progbar(n, 1)
    fn = function(bi, size, _cur, _mean)
      bar:update(math.min(bi * batch_size + size, n))
      return false
    end
  end
  local ok, values
  local dist = keras.distributed
  if dist and dist._sharded(self) then   -- every rank its rows; the logs are the world's
    ok, values = pcall(dist._evaluate, trainer, xl, yl, swl, batch_size, n, #self.metrics_names)
    if bar then bar:update(n) end
  else
    ok, values = pcall(trainer.evaluate, trainer, xl, yl, swl, batch_size, fn)
  end
  if not ok then loop_error(values) end
  return unpack_logs(self, values)
end

-- Keras 2.2.4: predict(x, batch_size, verbose, steps)
local PRED_SPEC = call_spec("predict", {"x", "batch_size", "verbose", "steps", "out"}, DATA)
PRED_SPEC.single = lone_x(PRED_SPEC)

-- the message of a failed C predict, without its position; the input the C
-- loop found NaN or Inf in is named as prepare names it
local function predict_error(self, who, e)
  local msg = tostring(e):gsub("^[^:]*:%d+: ", "")
  local i = msg:match("^predict: input (%d+) contains NaN or Inf$")
  if i then return string.format("%s: input '%s' contains NaN or Inf", who, self.input_names[tonumber(i)]) end
  return msg
end

-- out (an extension): a tensor of the result's shape (a list of them, one per
-- output), written in place and returned instead of new tensors
local function into(who, outs, out)
  if out == nil then
    if #outs == 1 then return outs[1] end
    return outs
  end
  local list = is_tensor(out) and {out} or out
  if type(list) ~= "table" or #list ~= #outs then
    raise(string.format("%s: out must be %s, got %s", who,
      #outs == 1 and "a tensor" or ("a list of " .. #outs .. " tensors (one per output)"), type(out)))
  end
  for i, t in ipairs(outs) do
    local o, b = list[i], t.shape
    if not is_tensor(o) then raise(string.format("%s: out %d is not a tensor (got %s)", who, i, type(o))) end
    local a = o.shape
    local same = #a == #b
    for k = 1, #b do if a[k] ~= b[k] then same = false end end
    if not same then
      raise(string.format("%s: out %d has shape %s, the result has shape %s", who, i, shape_str(a), shape_str(b)))
    end
    o:assign(t)
  end
  return out
end

-- The fast paths (see tr:predict_rows and tr:train_rows in src/lua/train.c):
-- a model with one input and one output, its trainer built, given a tensor
-- of exactly its input shape, runs its compiled plan directly: no argument
-- tables, no Lua garbage but the result tensor (none with out), no engine
-- allocation after the first call for a row count. Anything else, and any
-- error, takes the general path below, which checks and reports.
local function fast_predict_opts(o)
  for k, v in pairs(o) do
    if k == "batch_size" then
      if math.type(v) ~= "integer" or v < 1 then return false end
    elseif k == "verbose" then
      if v ~= 0 and v ~= 2 then return false end
    elseif k ~= "out" then
      return false
    end
  end
  return true
end

local function general_predict(self, ...)
  local o = args_parse(PRED_SPEC, ...)
  if o.steps ~= nil then
    raise("predict: steps is not supported with data arrays (the batches are the data split by batch_size)")
  end
  local batch_size = o.batch_size or 32
  if math.type(batch_size) ~= "integer" or batch_size < 1 then
    raise("predict: batch_size must be an integer >= 1, got " .. tostring(batch_size))
  end
  -- Keras's default is 0; 1 shows the progress bar (drawn when the C loop is done)
  local verbose = o.verbose == nil and 0 or o.verbose
  if verbose ~= 0 and verbose ~= 1 and verbose ~= 2 then
    raise("predict: verbose must be 0, 1 or 2, got " .. tostring(verbose))
  end
  local xl = prepare(self, "predict", o.x, nil, nil, nil, true)
  local bar = verbose == 1 and keras.callbacks and keras.callbacks._progbar(nsamples(xl[1]), 1)
  local p = predictor_for(self, xl, "predict")
  local dist = keras.distributed
  local ok, outs
  if dist and dist._sharded(self) then   -- every rank its rows, gathered
    ok, outs = pcall(dist._predict, p, xl, batch_size, nsamples(xl[1]))
  else
    ok, outs = pcall(p.predict, p, xl, batch_size)
  end
  if not ok then raise(predict_error(self, "predict", outs)) end
  if bar then bar:update(nsamples(xl[1])) end
  return into("predict", outs, o.out)
end

function Model:predict(...)
  local p = self._trainer or self._predictor
  local n = select("#", ...)
  if p and (n == 1 or n == 2) then
    local x, o = ...
    if n == 1 then
      local r = p:predict_rows(x, nil, 32)
      if r then return r end
    elseif type(o) == "table" and getmetatable(o) == nil and fast_predict_opts(o) then
      local out = rawget(o, "out")
      if out == nil or is_tensor(out) then
        local r = p:predict_rows(x, out, rawget(o, "batch_size") or 32)
        if r then return r end
      end
    end
  end
  return general_predict(self, ...)
end

-- out (an extension): as predict's
function Model:predict_on_batch(x, out)
  local p = self._trainer or self._predictor
  if p and (out == nil or is_tensor(out)) then
    local r = p:predict_rows(x, out)
    if r then return r end
  end
  local xl = prepare(self, "predict_on_batch", x, nil, nil, nil, true)
  local n = nsamples(xl[1])
  p = predictor_for(self, xl, "predict_on_batch")
  local ok, outs = pcall(p.predict, p, xl, math.max(n, 1))
  if not ok then raise(predict_error(self, "predict_on_batch", outs)) end
  return into("predict_on_batch", outs, out)
end

-- Keras 2.2.4 (Sequential): predict_classes(x, batch_size, verbose), predict_proba(x, batch_size, verbose)
local PRED_CLASSES_SPEC = call_spec("predict_classes", {"x", "batch_size", "verbose"}, DATA)
PRED_CLASSES_SPEC.single = lone_x(PRED_CLASSES_SPEC)
local PRED_PROBA_SPEC = call_spec("predict_proba", {"x", "batch_size", "verbose"}, DATA)
PRED_PROBA_SPEC.single = lone_x(PRED_PROBA_SPEC)

function Model:predict_classes(...)
  local o = args_parse(PRED_CLASSES_SPEC, ...)
  local p = self:predict(o)
  if p.shape[#p.shape] > 1 then return p:argmax(-1) end
  return p:gt(0.5)
end

function Model:predict_proba(...)
  local o = args_parse(PRED_PROBA_SPEC, ...)
  return self:predict(o)
end

-- Keras 2.2.4: train_on_batch(x, y, sample_weight, class_weight), test_on_batch(x, y, sample_weight)
local ON_BATCH_SPEC = {
  train_on_batch = call_spec("train_on_batch", {"x", "y", "sample_weight", "class_weight"}, DATA),
  test_on_batch = call_spec("test_on_batch", {"x", "y", "sample_weight"}, DATA),
}
for _, sp in pairs(ON_BATCH_SPEC) do sp.single = keyed_x(sp) end

-- keras.distributed: a model with a DistributedOptimizer trains on the
-- world's gradients (each rank its own batch)
local function dist_attach(self, trainer)
  local dist = keras.distributed
  return dist ~= nil and dist._attach_batch(self, trainer)
end

local function one_batch(self, who, method, ...)
  local o = args_parse(ON_BATCH_SPEC[who], ...)
  if o.y == K.None then o.y = nil end
  if o.y == nil then
    self:_ensure_built(o.x, who)
    if takes_targets(self) then raise(who .. ": missing y (targets)") end
  end
  local xl, yl, swl = prepare(self, who, o.x, o.y, o.sample_weight, o.class_weight)
  local trainer = trainer_for(self, who, xl, yl)
  if method == "train_batch" then dist_attach(self, trainer) end
  local ok, values = pcall(trainer[method], trainer, xl, yl, swl)
  if not ok then raise(tostring(values):gsub("^[^:]*:%d+: ", "")) end
  return unpack_logs(self, values)
end

-- the fast path's result (tr:train_rows), or the general path's when it was nil
local function train_fast(self, x, y, first, ...)
  if first ~= nil then return first, ... end
  return one_batch(self, "train_on_batch", "train_batch", x, y)
end

function Model:train_on_batch(...)
  local t = self._trainer
  if t and select("#", ...) == 2 and not self._pending_compile then
    dist_attach(self, t)
    local x, y = ...
    return train_fast(self, x, y, t:train_rows(x, y))
  end
  return one_batch(self, "train_on_batch", "train_batch", ...)
end
function Model:test_on_batch(...) return one_batch(self, "test_on_batch", "test_batch", ...) end


-- what the generator loops (generators.lua) share with fit, evaluate and predict
M._prepare, M._trainer_for, M._predictor_for = prepare, trainer_for, predictor_for
M._dist_attach = dist_attach
