-- keras.generators: Model:fit_generator / evaluate_generator / predict_generator
-- (Keras 2.2.4's engine/training_generator.py), keras.utils.Sequence and
-- keras.preprocessing.sequence.TimeseriesGenerator (keras-preprocessing 1.0.5).
--
-- A generator is a Lua function that returns one batch per call (x, y or
-- x, y, sample_weight; x alone for predict_generator), or a Sequence (len,
-- get(i) from 1, on_epoch_end). Batches are drawn in order, on demand, on the
-- calling thread: Lua cannot run on two threads at once, so workers > 1 and
-- use_multiprocessing are refused. Only a Sequence of C-side data (a
-- TimeseriesGenerator) has its next batches gathered ahead on worker threads
-- (core.gather_async, up to max_queue_size of them). Each batch then runs as
-- one step of the model's compiled plan (the train_on_batch path in C): the
-- plan is built once for the largest batch seen so far and reused for every
-- batch up to that size, so a smaller batch costs no recompilation.
local keras = ...
local util = require("keras.util")
local is_plain, is_tensor = util.is_plain, util.is_tensor
local raise = util.raise
local core, L, M = keras._core, keras.layers, keras.models
local Model = M.Model
local prepare, trainer_for, predictor_for = M._prepare, M._trainer_for, M._predictor_for

-- a model with a None-length input axis has one trainer per input shape
-- (models.lua caches them): each batch picks its own
local function per_shape(self) return self._trainer == nil and self:_has_none() end
local shape_str = L._shape_str

local G = {}

local function fail(fmt, ...) error(string.format(fmt, ...), 0) end

-- ---- arguments: f(gen, {k = v}), f{gen, k = v}, or Keras's positional order ----

local function has_integer_keys(t)
  for k in pairs(t) do if math.type(k) == "integer" then return true end end
  return false
end

local function parse(who, names, args)
  local o, pos = {}, {}
  local n = args.n
  local one = n == 1 and is_plain(args[1]) and args[1]
  if one and (one[1] ~= nil or one[names[1]] ~= nil) then   -- one table: array part = positional
    for k, v in pairs(args[1]) do
      if math.type(k) == "integer" then pos[k] = v else o[k] = v end
    end
  else
    local last = args[n]
    if n >= 2 and is_plain(last) and not has_integer_keys(last) and type(last.get) ~= "function" then
      for k, v in pairs(args[n]) do o[k] = v end
      n = n - 1
    end
    for i = 1, n do pos[i] = args[i] end
  end
  local allowed = {}
  for _, k in ipairs(names) do allowed[k] = true end
  for k, v in pairs(pos) do
    local name = names[k]
    if not name or k < 1 then
      fail("%s: too many positional arguments (at most %d)", who, #names)
    end
    if o[name] ~= nil then error(string.format("%s: argument '%s' given twice", who, name), 0) end
    o[name] = v
  end
  for k in pairs(o) do
    if not allowed[k] then error(string.format("%s: unknown argument '%s'", who, tostring(k)), 0) end
  end
  return o
end

local function int_arg(who, name, v, min, default)
  if v == nil then return default end
  local i = math.tointeger(v)
  if not i or i < min then
    fail("%s: %s must be an integer >= %d, got %s", who, name, min, tostring(v))
  end
  return i
end

-- workers, use_multiprocessing and max_queue_size: Keras's defaults are
-- accepted; what would need a second Lua thread or a Python process is
-- refused. Returns how many batches may be made ahead (nil: none): with
-- workers = 1, max_queue_size (Keras: <= 0 means no bound)
local function check_queue_args(who, o)
  local q = o.max_queue_size == nil and 10 or math.tointeger(o.max_queue_size)
  if not q then
    fail("%s: max_queue_size must be an integer, got %s", who, tostring(o.max_queue_size))
  end
  local workers = int_arg(who, "workers", o.workers, 0, 1)
  if workers > 1 then
    error(string.format("%s: workers=%d would draw batches on %d threads at once, but Lua runs on one thread: "
      .. "lkeras draws every batch in order on the calling thread (workers must be 0 or 1)", who, workers, workers), 0)
  end
  local mp = o.use_multiprocessing
  if mp ~= nil and type(mp) ~= "boolean" then
    fail("%s: use_multiprocessing must be a boolean, got %s", who, type(mp))
  end
  if mp then
    error(who .. ": use_multiprocessing=true needs Python processes; lkeras draws every batch in order "
      .. "on the calling thread (use_multiprocessing must be false)", 0)
  end
  if workers == 0 then return nil end
  return q >= 1 and q or math.huge
end

local function verbose_arg(who, v, default)
  if v == nil then return default end
  if v ~= 0 and v ~= 1 and v ~= 2 then
    error(string.format("%s: verbose must be 0, 1 or 2, got %s", who, tostring(v)), 0)
  end
  return math.tointeger(v)
end

-- ---- keras.utils.Sequence ----

local Sequence = {class_name = "Sequence"}

-- seq[i] is seq:get(i); other keys are the class's methods
local function instance_index(cls)
  return function(self, k)
    if math.type(k) == "integer" then return self:get(k) end
    return cls[k]
  end
end

local function seq_len_mm(self) return self:len() end
local function seq_tostring(self) return string.format("<Sequence %s>", self.class_name) end

local function new_instance(cls, ...)
  local self = setmetatable({}, cls)
  if cls.init then cls.init(self, ...) end
  return self
end

local function make_class(name, parent)
  local cls = setmetatable({class_name = name}, {__index = parent, __call = new_instance})
  cls.__index = instance_index(cls)
  cls.__len = seq_len_mm
  cls.__tostring = seq_tostring
  cls.__name = "keras.utils.Sequence"
  return cls
end

Sequence.__index = instance_index(Sequence)
Sequence.__len = seq_len_mm
Sequence.__tostring = seq_tostring
Sequence.__name = "keras.utils.Sequence"
setmetatable(Sequence, {__call = new_instance})

--- Sequence:extend("Name") -> a class whose instances are Sequences;
-- Name(...) makes one and passes every argument to its init(self, ...).
function Sequence:extend(name)
  if type(name) ~= "string" or name == "" then
    raise("Sequence:extend: expected the class name (a string), got " .. type(name))
  end
  if type(self) ~= "table" or not rawget(self, "class_name") then
    raise("Sequence:extend: call it on a class, as keras.utils.Sequence:extend(\"" .. name .. "\")")
  end
  return make_class(name, self)
end

function Sequence:len()
  fail("%s: a Sequence must define len(self), the number of batches", self.class_name)
end

function Sequence:get()
  fail("%s: a Sequence must define get(self, i), batch i (from 1)", self.class_name)
end

function Sequence.on_epoch_end() end

local function is_sequence(x)
  if type(x) ~= "table" then return false end
  local mt = getmetatable(x)
  while type(mt) == "table" do
    if mt == Sequence then return true end
    local up = getmetatable(mt)
    mt = up and rawget(up, "__index")
  end
  return false
end
G.is_sequence = is_sequence

local function callable(f)
  if type(f) == "function" then return true end
  local mt = getmetatable(f)
  return type(mt) == "table" and mt.__call ~= nil and not is_sequence(f)
end

-- any other object with len and get methods is taken as a Sequence (through
-- an instance that forwards to it)
local function as_sequence(x)
  if type(x) ~= "table" or is_sequence(x) or callable(x) then return x end
  if type(x.len) ~= "function" or type(x.get) ~= "function" then return x end
  local Duck = make_class(tostring(x.class_name or "Sequence"), Sequence)
  function Duck.len() return x:len() end
  function Duck.get(_, i) return x:get(i) end
  function Duck.on_epoch_end() if x.on_epoch_end then return x:on_epoch_end() end end
  return Duck()
end

-- ---- sources of batches ----

-- the message of an error raised inside the library (prepare, the C loops),
-- without positions and without the caller's own prefix
local function clean(msg, who)
  msg = tostring(msg)
  local prev
  repeat
    prev = msg
    msg = msg:gsub("^[^%s:]+%.lua:%d+: ", ""):gsub("^%[C%]: ", "")
  until msg == prev
  if msg:sub(1, #who + 2) == who .. ": " then msg = msg:sub(#who + 3) end
  return msg
end

local function seq_length(who, seq)
  local ok, n = pcall(seq.len, seq)
  if not ok then
    error(string.format("%s: len() of the Sequence %s raised an error: %s", who, seq.class_name, tostring(n)), 0)
  end
  local i = math.tointeger(n)
  if not i or i < 0 then
    fail("%s: len() of the Sequence %s must return an integer >= 0, got %s", who, seq.class_name, tostring(n))
  end
  return i
end

-- a generator function, or a Sequence visited pass after pass (shuffled per
-- pass when asked), as Keras 2.2.4's enqueuers do. A Sequence of C-side data
-- (one with _prefetch, whose get is its own) has up to `depth` of the pass's
-- next batches gathered on worker threads while the current one trains.
local function source(who, gen, what, shuffle, depth)
  gen = as_sequence(gen)
  if is_sequence(gen) then
    local n = seq_length(who, gen)
    local ahead = depth and gen._prefetch and gen.get == gen._prefetch_get and depth or nil
    if ahead and gen._prefetch_depth then ahead = math.min(ahead, gen._prefetch_depth) end
    return {seq = gen, n = n, pos = n, shuffle = shuffle, started = false, depth = ahead}
  end
  if callable(gen) then return {fn = gen} end
  error(string.format("%s: %s must be a generator function or a keras.utils.Sequence, got %s", who, what,
    type(gen) == "table" and "a table" or type(gen)), 0)
end

-- the Sequence's batch number at position p of the current pass
local function batch_at(src, p)
  return src.order and math.tointeger(src.order[p]) + 1 or p
end

-- the next batch's values as a packed table (n = number of values, trailing
-- nils dropped; 0: the data ended), or an error naming `where`
local function draw(src, who, where)
  local r
  if src.seq then
    local seq = src.seq
    if src.pos >= src.n then                      -- a new pass over the Sequence
      if src.started then src.n = seq_length(who, seq) end
      src.started = true
      if src.n == 0 then
        error(string.format("%s: %s: the Sequence %s has no batches (len() is 0)", who, where, seq.class_name), 0)
      end
      src.order = src.shuffle and core.permutation(src.n):totable() or nil
      src.pos = 0
      src.jobs = {}
    end
    src.pos = src.pos + 1
    local i = batch_at(src, src.pos)
    local job = src.jobs[src.pos]
    if job then
      src.jobs[src.pos] = nil
      r = table.pack(true, job:wait())
    else
      r = table.pack(pcall(seq.get, seq, i))
    end
    if not r[1] then
      error(string.format("%s: %s: get(%d) of the Sequence %s raised an error: %s", who, where, i, seq.class_name,
        tostring(r[2])), 0)
    end
    if src.depth then                             -- the next batches of this pass, made ahead
      for p = src.pos + 1, math.min(src.pos + src.depth, src.n) do
        if not src.jobs[p] then
          local ok, j = pcall(seq._prefetch, seq, batch_at(src, p))
          if not ok then
            fail("%s: %s: preparing batch %d of the Sequence %s: %s", who, where, batch_at(src, p), seq.class_name,
              tostring(j))
          end
          src.jobs[p] = j
        end
      end
    end
  else
    r = table.pack(pcall(src.fn))
    if not r[1] then
      fail("%s: %s: the generator raised an error: %s", who, where, tostring(r[2]))
    end
  end
  local n = r.n - 1
  while n > 0 and r[n + 1] == nil do n = n - 1 end
  return {n = n, table.unpack(r, 2, n + 1)}
end

-- after a batch: a Sequence whose pass is complete hears on_epoch_end
local function after_batch(src, who)
  if src.seq and src.pos >= src.n then
    local ok, err = pcall(src.seq.on_epoch_end, src.seq)
    if not ok then
      fail("%s: on_epoch_end of the Sequence %s raised an error: %s", who, src.seq.class_name, tostring(err))
    end
  end
end

-- ---- one batch, checked ----

-- the shape of data given as a tensor or a list of tensors (the first); nil otherwise
local function first_shape(v)
  if is_tensor(v) then return v.shape end
  if is_plain(v) and is_tensor(v[1]) then return v[1].shape end
  return nil
end

-- x, y, sample_weight of a batch, checked against the model: the lists
-- prepare makes, and the number of samples
local function batch_data(self, who, where, b, need_y, class_weight)
  local x, y, sw = b[1], b[2], b[3]
  if need_y then
    if b.n < 2 or b.n > 3 then
      error(string.format("%s: %s: the generator must return x, y or x, y, sample_weight, got %d value%s", who, where,
        b.n, b.n == 1 and "" or "s"), 0)
    end
    if y == nil then error(string.format("%s: %s: the generator returned no targets (y is nil)", who, where), 0) end
  elseif b.n > 3 then
    fail("%s: %s: the generator must return x, or x, y, or x, y, sample_weight, got %d values", who, where, b.n)
  end
  local sx, sy = first_shape(x), need_y and first_shape(y)
  if sx and #sx >= 1 and sx[1] == 0 then
    fail("%s: %s: empty batch (x has shape %s); a batch must hold at least one sample", who, where, shape_str(sx))
  end
  if sx and sy and #sx >= 1 and #sy >= 1 and sx[1] ~= sy[1] then
    error(string.format("%s: %s: x has shape %s but y has shape %s: x and y must hold the same number of samples",
      who, where, shape_str(sx), shape_str(sy)), 0)
  end
  if not need_y then y, sw = nil, nil end
  local ok, xl, yl, swl, n = pcall(prepare, self, who, x, y, sw, class_weight)
  if not ok then error(string.format("%s: %s: %s", who, where, clean(xl, who)), 0) end
  if n == 0 then error(string.format("%s: %s: empty batch; a batch must hold at least one sample", who, where), 0) end
  return xl, yl, swl, n
end

local function run_c(who, where, f, ...)
  local ok, v = pcall(f, ...)
  if not ok then error(string.format("%s: %s: %s", who, where, clean(v, who)), 0) end
  return v
end

local function step_name(step, steps)
  if steps then return string.format("step %d/%d", step, steps) end
  return string.format("step %d", step)
end

local function ended(who, where, steps)
  fail("%s: %s: the generator returned nothing, but %d %s promised (steps)", who, where, steps,
    steps == 1 and "batch was" or "batches were")
end

-- the next batch of a loop over a generator; nil when the generator ends
-- (an error when that is before `steps` batches)
local function next_batch(src, who, where, steps)
  local b = draw(src, who, where)
  if b.n > 0 then return b end
  if steps then ended(who, where, steps) end
  return nil
end

-- test steps over a source: the batch-size-weighted means of the logs
-- (Keras: np.average(outs, weights=batch_sizes)); steps = nil runs until the
-- generator returns nothing
local function evaluate_loop(self, who, src, steps, trainer, prefix, on_step)
  local acc, seen, step = {}, 0, 0
  while steps == nil or step < steps do
    local where = prefix .. step_name(step + 1, steps)
    local b = next_batch(src, who, where, steps)
    if not b then break end
    step = step + 1
    local xl, yl, swl, n = batch_data(self, who, where, b, true)
    local t
    if per_shape(self) then
      t = run_c(who, where, trainer_for, self, who, xl, yl)
    else
      trainer = trainer or run_c(who, where, trainer_for, self, who)   -- a model built on its first batch
      t = trainer
    end
    local values = run_c(who, where, t.test_batch, t, xl, yl, swl)
    for k, v in ipairs(values) do acc[k] = (acc[k] or 0) + v * n end
    seen = seen + n
    after_batch(src, who)
    if on_step then on_step(step) end
  end
  if seen == 0 then error(string.format("%s: the generator gave no batches", who), 0) end
  local out = {}
  for k, v in ipairs(acc) do out[k] = v / seen end
  return out
end

local function progbar(target, verbose)
  return keras.callbacks._progbar(target, verbose)
end

-- a bar with no target has no finished line: on a terminal, end the line it
-- redraws (off one, each update was a line of its own)
local function end_unknown_bar(bar)
  if bar.dynamic and bar.seen_so_far > 0 then keras._write("\n") end
end

-- ---- fit_generator ----

local FIT_NAMES = {"generator", "steps_per_epoch", "epochs", "verbose", "callbacks", "validation_data",
                   "validation_steps", "class_weight", "max_queue_size", "workers", "use_multiprocessing",
                   "shuffle", "initial_epoch"}

local function logs_of(names, values)
  local t = {}
  for i, n in ipairs(names) do t[n] = values[i] end
  return t
end

function Model:fit_generator(...)
  local who = "fit_generator"
  local o = parse(who, FIT_NAMES, table.pack(...))
  if o.generator == nil then error(who .. ": missing the generator", 0) end
  local epochs = int_arg(who, "epochs", o.epochs, 0, 1)
  local verbose = verbose_arg(who, o.verbose, 1)
  -- keras.distributed: rank 0 prints (as fit)
  if keras.distributed and keras.distributed._quiet() then verbose = 0 end
  local initial_epoch = int_arg(who, "initial_epoch", o.initial_epoch, 0, 0)
  local shuffle = o.shuffle
  if shuffle == nil then shuffle = true end
  if type(shuffle) ~= "boolean" then
    error(string.format("%s: shuffle must be a boolean, got %s", who, type(shuffle)), 0)
  end
  local depth = check_queue_args(who, o)
  if o.class_weight ~= nil and not is_plain(o.class_weight) then
    fail("%s: class_weight must be a table {[class] = weight}, got %s", who, type(o.class_weight))
  end
  if o.callbacks ~= nil and not is_plain(o.callbacks) then
    fail("%s: callbacks must be a list, got %s", who, type(o.callbacks))
  end
  for i, cb in ipairs(o.callbacks or {}) do
    if type(cb) ~= "table" then error(string.format("%s: callbacks[%d] is not a table", who, i), 0) end
  end
  local src = source(who, o.generator, "the generator", shuffle, depth)
  local steps = int_arg(who, "steps_per_epoch", o.steps_per_epoch, 1, nil)
  if steps == nil then
    if not src.seq then
      error(who .. ": steps_per_epoch=nil is only valid for a keras.utils.Sequence (its len() is used); "
        .. "give steps_per_epoch for a generator function", 0)
    end
    steps = src.n
    if steps < 1 then
      error(string.format("%s: the Sequence %s has no batches (len() is 0)", who, src.seq.class_name), 0)
    end
  end
  if not self._trainer and not self._compiled and not self._pending_compile then
    error(who .. ": You must compile your model before using it.", 0)
  end
  -- validation: a generator, a Sequence, or {x, y} / {x, y, sample_weight}
  local vd, vsrc, vsteps, vx, vy, vsw = o.validation_data, nil, nil, nil, nil, nil
  local vwho = who .. " (validation_data)"
  if vd ~= nil then
    if is_plain(vd) and vd.get == nil then
      if vd[1] == nil or vd[2] == nil or has_integer_keys(vd) and #vd > 3 then
        error(who .. ": validation_data must be a generator, a Sequence, {x_val, y_val} "
          .. "or {x_val, y_val, val_sample_weight}", 0)
      end
      if o.validation_steps ~= nil then
        error(who .. ": validation_steps is only used when validation_data is a generator or a Sequence", 0)
      end
      local ok, a, b, c = pcall(prepare, self, vwho, vd[1], vd[2], vd[3])
      if not ok then error(string.format("%s: %s", vwho, clean(a, vwho)), 0) end
      vx, vy, vsw = a, b, c
    else
      vsrc = source(who, vd, "validation_data", false, depth)
      vsteps = int_arg(who, "validation_steps", o.validation_steps, 1, nil)
      if vsteps == nil then
        if not vsrc.seq then
          error(who .. ": validation_steps=nil is only valid when validation_data is a keras.utils.Sequence "
            .. "(its len() is used); "
            .. "give validation_steps for a generator function", 0)
        end
        vsteps = vsrc.n
      end
    end
  elseif o.validation_steps ~= nil then
    error(who .. ": validation_steps is given but there is no validation_data", 0)
  end
  -- a Sequential model without an input shape is built (and compiled) on its first batch
  local pending
  if self._pending_compile and not self.inputs then
    local where = string.format("epoch %d/%d, %s", initial_epoch + 1, epochs, step_name(1, steps))
    if initial_epoch < epochs then
      local b = draw(src, who, where)
      if b.n == 0 then ended(who, where, steps) end
      pending = {batch_data(self, who, where, b, true, o.class_weight)}
    end
  end
  local trainer
  if not per_shape(self) then
    local ok_t, t = pcall(trainer_for, self, who)
    if not ok_t then error(string.format("%s: %s", who, clean(t, who)), 0) end
    trainer = t
  end

  local cbs = keras.callbacks
  local history = cbs.History()
  local list = {}
  if verbose > 0 then list[#list + 1] = cbs.ProgbarLogger{count_mode = "steps", verbose = verbose} end
  for _, cb in ipairs(o.callbacks or {}) do list[#list + 1] = cb end
  list[#list + 1] = history
  local names = self.metrics_names
  local do_validation = vd ~= nil
  local params = {epochs = epochs, steps = steps, verbose = verbose, do_validation = do_validation, metrics = {}}
  for _, m in ipairs(names) do params.metrics[#params.metrics + 1] = m end
  if do_validation then for _, m in ipairs(names) do params.metrics[#params.metrics + 1] = "val_" .. m end end
  local runner = cbs._runner(list, self, params)
  local hooks_begin, hooks_end, bars = {}, {}, {}
  for _, cb in ipairs(list) do
    if cb._progbar then bars[#bars + 1] = cb
    else
      if cbs._defines(cb, "on_batch_begin") then hooks_begin[#hooks_begin + 1] = cb end
      if cbs._defines(cb, "on_batch_end") then hooks_end[#hooks_end + 1] = cb end
    end
  end

  self.stop_training = false
  runner:call("on_train_begin", {})
  local acc, mean = {}, {}
  local epoch = initial_epoch
  while epoch < epochs do
    runner:call("on_epoch_begin", epoch, {})
    for k = 1, #names do acc[k] = 0 end
    local seen, step, last_n = 0, 0
    local epoch_logs = {}
    while step < steps do
      step = step + 1
      local where = string.format("epoch %d/%d, %s", epoch + 1, epochs, step_name(step, steps))
      local xl, yl, swl, n
      if pending then
        xl, yl, swl, n = table.unpack(pending)
        pending = nil
      else
        local b = draw(src, who, where)
        if b.n == 0 then ended(who, where, steps) end
        xl, yl, swl, n = batch_data(self, who, where, b, true, o.class_weight)
      end
      local bi = step - 1
      local blogs = {batch = bi, size = n}   -- Keras: the same logs reach on_batch_end, filled
      for _, cb in ipairs(hooks_begin) do cb:on_batch_begin(bi, blogs) end
      local t = per_shape(self) and run_c(who, where, trainer_for, self, who, xl, yl) or trainer
      local world = M._dist_attach(self, t)
      local values = run_c(who, where, t.train_batch, t, xl, yl, swl)
      local wn = n   -- the rows the step's logs stand for: the world's, when distributed
      if world then wn = select(3, t:dist_stats()) end
      last_n = n
      seen = seen + wn
      for k = 1, #names do
        acc[k] = acc[k] + values[k] * wn
        mean[k] = acc[k] / seen
      end
      for _, bar in ipairs(bars) do bar:_progress(seen, logs_of(names, mean), step) end
      if #hooks_end > 0 then
        for k, v in pairs(logs_of(names, values)) do blogs[k] = v end
        for _, cb in ipairs(hooks_end) do cb:on_batch_end(bi, blogs) end
      end
      after_batch(src, who)
      if step >= steps and do_validation then
        local vprefix = string.format("epoch %d/%d, validation ", epoch + 1, epochs)
        local vvalues
        if vsrc then
          vvalues = evaluate_loop(self, vwho, vsrc, vsteps, per_shape(self) and nil or trainer, vprefix)
        else
          local vwhere = string.format("epoch %d/%d", epoch + 1, epochs)
          local vt = per_shape(self) and run_c(vwho, vwhere, trainer_for, self, vwho, vx, vy) or trainer
          vvalues = run_c(vwho, vwhere, vt.evaluate, vt, vx, vy, vsw, last_n)
        end
        for i, nm in ipairs(names) do epoch_logs["val_" .. nm] = vvalues[i] end
      end
      if self.stop_training then break end
    end
    if seen > 0 then
      for k, nm in ipairs(names) do epoch_logs[nm] = acc[k] / seen end
    end
    runner:call("on_epoch_end", epoch, epoch_logs)
    epoch = epoch + 1
    if self.stop_training then break end
  end
  runner:call("on_train_end", {})
  self.history = history
  return history
end

-- ---- evaluate_generator, predict_generator ----

local EVAL_NAMES = {"generator", "steps", "max_queue_size", "workers", "use_multiprocessing", "verbose"}

-- the generator, its steps (nil: until it returns nothing) and verbose
local function common(who, o)
  if o.generator == nil then error(who .. ": missing the generator", 0) end
  local depth = check_queue_args(who, o)
  local verbose = verbose_arg(who, o.verbose, 0)
  local src = source(who, o.generator, "the generator", false, depth)
  local steps = int_arg(who, "steps", o.steps, 1, nil)
  if steps == nil and src.seq then
    steps = src.n
    if steps < 1 then
      error(string.format("%s: the Sequence %s has no batches (len() is 0)", who, src.seq.class_name), 0)
    end
  end
  return src, steps, verbose
end

function Model:evaluate_generator(...)
  local who = "evaluate_generator"
  local o = parse(who, EVAL_NAMES, table.pack(...))
  local src, steps, verbose = common(who, o)
  if not self._trainer and not self._compiled and not self._pending_compile then
    error(who .. ": You must compile your model before using it.", 0)
  end
  local trainer = self.inputs and not per_shape(self) and trainer_for(self, who) or nil
  local bar = verbose == 1 and progbar(steps, 1) or nil
  local values = evaluate_loop(self, who, src, steps, trainer, "", bar and function(step) bar:update(step) end)
  if bar and not steps then end_unknown_bar(bar) end
  if #values == 1 then return values[1] end
  return table.unpack(values)
end

function Model:predict_generator(...)
  local who = "predict_generator"
  local o = parse(who, EVAL_NAMES, table.pack(...))
  local src, steps, verbose = common(who, o)
  local bar = verbose == 1 and progbar(steps, 1) or nil
  local outs, step = {}, 0
  while steps == nil or step < steps do
    local where = step_name(step + 1, steps)
    local b = next_batch(src, who, where, steps)
    if not b then break end
    step = step + 1
    local xl, _, _, n = batch_data(self, who, where, b, false)
    local p = predictor_for(self, xl, who)
    local res = run_c(who, where, p.predict, p, xl, n)
    for k, t in ipairs(res) do
      outs[k] = outs[k] or {}
      outs[k][step] = t
    end
    after_batch(src, who)
    if bar then bar:update(step) end
  end
  if step == 0 then error(who .. ": the generator gave no batches", 0) end
  if bar and not steps then end_unknown_bar(bar) end
  local result = {}
  for k, list in ipairs(outs) do
    result[k] = #list == 1 and list[1] or keras.tensor.concat(list, 0)
  end
  if #result == 1 then return result[1] end
  return result
end

for _, name in ipairs{"fit_generator", "evaluate_generator", "predict_generator"} do
  Model[name] = L._api(Model[name])
end

-- ---- keras.preprocessing.sequence.TimeseriesGenerator ----

local TimeseriesGenerator = make_class("TimeseriesGenerator", Sequence)
getmetatable(TimeseriesGenerator).__call = L._api(new_instance)   -- errors name the caller's line

local TS_NAMES = {"data", "targets", "length", "sampling_rate", "stride", "start_index", "end_index",
                  "shuffle", "reverse", "batch_size"}

local function as_tensor(who, what, v)
  if is_tensor(v) then return v end
  if type(v) == "table" then
    local ok, t = pcall(core.tensor, v)
    if ok then return t end
    fail("%s: %s: %s", who, what, clean(t, who))
  end
  fail("%s: %s must be a keras.Tensor or a table of numbers, got %s", who, what, type(v))
end

function TimeseriesGenerator:init(...)
  local who = "TimeseriesGenerator"
  local o = parse(who, TS_NAMES, table.pack(...))
  if o.data == nil then error(who .. ": missing data", 0) end
  if o.targets == nil then error(who .. ": missing targets", 0) end
  if o.length == nil then error(who .. ": missing length", 0) end
  local data, targets = as_tensor(who, "data", o.data), as_tensor(who, "targets", o.targets)
  if data.ndim < 1 or targets.ndim < 1 then error(who .. ": data and targets must have a time axis (axis 0)", 0) end
  local n = data.shape[1]
  if n ~= targets.shape[1] then
    error(string.format("%s: Data and targets have to be of same length. Data length is %d while target length is %d",
      who, n, targets.shape[1]), 0)
  end
  self.data, self.targets = data, targets
  self.length = int_arg(who, "length", o.length, 1)
  self.sampling_rate = int_arg(who, "sampling_rate", o.sampling_rate, 1, 1)
  self.stride = int_arg(who, "stride", o.stride, 1, 1)
  self.batch_size = int_arg(who, "batch_size", o.batch_size, 1, 128)
  self.start_index = int_arg(who, "start_index", o.start_index, 0, 0) + self.length
  local last = int_arg(who, "end_index", o.end_index, 0, n - 1)
  if last > n - 1 then
    fail("%s: end_index=%d is past the last data point (index %d: data has %d timesteps)", who, last, n - 1, n)
  end
  self.end_index = last
  for _, k in ipairs{"shuffle", "reverse"} do
    if o[k] ~= nil and type(o[k]) ~= "boolean" then
      fail("%s: %s must be a boolean, got %s", who, k, type(o[k]))
    end
  end
  self.shuffle, self.reverse = o.shuffle or false, o.reverse or false
  if self.start_index > self.end_index then
    error(string.format("%s: `start_index+length=%d > end_index=%d` is disallowed, as no part of the sequence "
      .. "would be left to be used as current step.", who, self.start_index, self.end_index), 0)
  end
end

function TimeseriesGenerator:len()
  local span = self.batch_size * self.stride
  return (self.end_index - self.start_index + span) // span
end

-- batch i (from 1): samples data[row - length : row : sampling_rate] and
-- targets[row] for the rows of the batch (0-based data positions, as Keras):
-- the rows of data and of targets to gather (from 1), and the batch's shapes
local function plan(self, i)
  local n = self:len()
  local idx = math.tointeger(i)
  if not idx or idx < 1 or idx > n then
    raise(string.format("TimeseriesGenerator: batch %s is out of range 1..%d", tostring(i), n))
  end
  local rows = {}
  if self.shuffle then
    local r = core.random("randint", {self.batch_size}, self.start_index, self.end_index + 1):totable()
    for k, v in ipairs(r) do rows[k] = math.tointeger(v) end
  else
    local first = self.start_index + self.batch_size * self.stride * (idx - 1)
    local stop = math.min(first + self.batch_size * self.stride, self.end_index + 1)
    for row = first, stop - 1, self.stride do rows[#rows + 1] = row end
  end
  local picks, tpicks, steps = {}, {}, 0
  for k, row in ipairs(rows) do
    local positions = {}
    for p = row - self.length, row - 1, self.sampling_rate do positions[#positions + 1] = p end
    steps = #positions
    if self.reverse then
      for j = #positions, 1, -1 do picks[#picks + 1] = positions[j] + 1 end
    else
      for j = 1, #positions do picks[#picks + 1] = positions[j] + 1 end
    end
    tpicks[k] = row + 1
  end
  local xs_, ys_ = {#rows, steps}, {#rows}
  for d = 2, self.data.ndim do xs_[#xs_ + 1] = self.data.shape[d] end
  for d = 2, self.targets.ndim do ys_[#ys_ + 1] = self.targets.shape[d] end
  return picks, tpicks, xs_, ys_
end

function TimeseriesGenerator:get(i)
  local picks, tpicks, xs_ = plan(self, i)
  return self.data:take(picks):reshape(xs_), self.targets:take(tpicks)
end

-- get(i) gathered on a worker thread: a job whose wait() returns x, y
function TimeseriesGenerator:_prefetch(i)
  local picks, tpicks, xs_, ys_ = plan(self, i)
  return core.gather_async({self.data, self.targets}, {picks, tpicks}, {xs_, ys_})
end
TimeseriesGenerator._prefetch_get = TimeseriesGenerator.get

function TimeseriesGenerator:get_config()
  return {length = self.length, sampling_rate = self.sampling_rate, stride = self.stride,
          start_index = self.start_index - self.length, end_index = self.end_index,
          shuffle = self.shuffle, reverse = self.reverse, batch_size = self.batch_size}
end

-- ---- namespaces ----

if keras.utils then keras.utils.Sequence = Sequence end
if keras.preprocessing and keras.preprocessing.sequence then
  keras.preprocessing.sequence.TimeseriesGenerator = TimeseriesGenerator
end
G.Sequence, G.TimeseriesGenerator = Sequence, TimeseriesGenerator
return G
