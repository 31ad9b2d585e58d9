-- keras.callbacks: History, ProgbarLogger and the standard callbacks, and the
-- runner that fit uses. Any Lua table with on_train_begin/end,
-- on_epoch_begin/end(self, epoch, logs) or on_batch_begin/end(self, batch,
-- logs) is a callback. Per-batch hooks make fit call back into Lua for every
-- batch; without them the C loop only reports for the progress bar.
local keras = ...
local util = require("keras.util")
local is_plain, set, clean = util.is_plain, util.set, util.clean
local raise = util.raise
local core = keras._core
local Progbar = package.preload["keras.progbar"]()

local C = {}

-- ---- base class ----

-- keras.callbacks.Callback: the base of every callback class. Its hooks do
-- nothing (so that a subclass may call them, as Python's super() does), and
-- fit treats a hook that is still the base's as absent: a class without
-- on_batch_begin/on_batch_end of its own costs no Lua call per batch.
local Callback = {class_name = "Callback"}
Callback.__index = Callback
Callback.__tostring = function(self) return string.format("<%s callback>", self.class_name) end
C.Callback = Callback

local HOOKS = {"on_epoch_begin", "on_epoch_end", "on_batch_begin", "on_batch_end", "on_train_begin", "on_train_end"}
for _, h in ipairs(HOOKS) do Callback[h] = function() end end

-- the arguments of a class's constructor as one table, as layers get them:
-- Cls(a, b, {k = v}) and Cls{a, b, k = v} both give {a, b, k = v}
local function ctor_args(...)
  local n = select("#", ...)
  local args = {}
  local last = n > 0 and select(n, ...) or nil
  local npos = n
  if is_plain(last) then npos = n - 1 end
  for i = 1, npos do args[i] = (select(i, ...)) end
  if is_plain(last) then
    for k, v in pairs(last) do
      if math.type(k) == "integer" and k >= 1 then args[npos + k] = v else args[k] = v end
    end
  end
  return args
end

local function construct(cls, ...)
  local self = setmetatable({}, cls)
  local init = cls.init
  if init then
    init(self, ctor_args(...))
  elseif select("#", ...) > 0 and next(ctor_args(...)) ~= nil then
    raise(string.format("%s: takes no arguments (define %s:init(args) to take them)", cls.class_name,
      cls.class_name))
  end
  return self
end

local function class(name, parent)
  local cls = setmetatable({class_name = name}, {__index = parent or Callback, __call = construct})
  cls.__index = cls
  cls.__tostring = Callback.__tostring
  return cls
end
C._class = class

setmetatable(Callback, {__call = construct})

--- Callback:extend(name) -> a callback class whose instances are made by
-- calling it: Cls(...) runs cls.init(self, args) when the class has one.
-- Define on_train_begin/end, on_epoch_begin/end, on_batch_begin/end(self,
-- epoch_or_batch, logs); fit sets self.model and self.params first.
function Callback.extend(parent, name)
  if type(parent) ~= "table" or (parent ~= Callback and getmetatable(parent) == nil) then
    raise("Callback:extend: call it as a method, Callback:extend(name)")
  end
  if type(name) ~= "string" or name == "" then
    local got = type(name) == "string" and "''" or type(name)
    raise("Callback:extend: name must be a non-empty string, got " .. got)
  end
  return class(name, parent)
end

function Callback:set_model(m) self.model = m end
function Callback:set_params(p) self.params = p end

-- a constructor's arguments: Keras's positional order, then options, or one
-- table (args.lua); errors point at the constructor's caller
local function parse(name, positional, allowed, ...)
  local spec = keras._args.spec{who = name, positional = positional, allowed = allowed}
  local o = keras._args.parse(spec, ...)
  return o
end
C._parse = parse

-- the same for at most two arguments: Callback{x=1} or Callback(1, {...})
local function options(name, a, b, positional, allowed)
  local spec = keras._args.spec{who = name, positional = positional, allowed = allowed}
  local o
  if b == nil then o = keras._args.parse(spec, a) else o = keras._args.parse(spec, a, b) end
  return o
end
C._options = options

-- ---- History ----

local History = class("History")
C.History = setmetatable({}, {__index = History, __call = function()
  return setmetatable({epoch = {}, history = {}}, History)
end})

function History:on_train_begin()
  self.epoch = self.epoch or {}
  self.history = self.history or {}
end

function History:on_epoch_end(epoch, logs)
  table.insert(self.epoch, epoch)
  for k, v in pairs(logs or {}) do
    self.history[k] = self.history[k] or {}
    table.insert(self.history[k], v)
  end
  -- Keras 2.2.4 logs accuracy as "acc"; "accuracy" is accepted as an alias
  if self.history.acc then self.history.accuracy = self.history.acc end
  if self.history.val_acc then self.history.val_accuracy = self.history.val_acc end
end

function History:set_params(p) self.params = p end

-- ---- progress bar ----


function C._progbar(target, verbose)
  return Progbar.new{target = target, verbose = verbose, dynamic = keras._output_dynamic(), clock = core.now,
    write = keras._write}
end

local ProgbarLogger = class("ProgbarLogger")
C.ProgbarLogger = setmetatable({}, {__index = ProgbarLogger, __call = function(_, ...)
  local spec = keras._args.spec{who = "ProgbarLogger", positional = {"count_mode", "stateful_metrics"},
                                allowed = {verbose = true}, tables = {stateful_metrics = true}}
  local o = keras._args.parse(spec, ...)
  if o.stateful_metrics ~= nil then
    raise("ProgbarLogger: stateful_metrics is not supported by this version of lkeras")
  end
  if o.count_mode and o.count_mode ~= "samples" and o.count_mode ~= "steps" then
    raise(string.format("ProgbarLogger: count_mode must be 'samples' or 'steps', got '%s'", tostring(o.count_mode)))
  end
  -- count_mode 'steps' (fit_generator's) counts batches against params.steps
  return setmetatable({verbose = o.verbose or 1, _progbar = true, _steps = o.count_mode == "steps"}, ProgbarLogger)
end})

function ProgbarLogger:on_train_begin() self.epochs = self.params.epochs end

function ProgbarLogger:on_epoch_begin(epoch)
  if self.verbose > 0 then
    keras._write(string.format("Epoch %d/%d\n", epoch + 1, self.epochs))
  end
  self.target = self._steps and self.params.steps or self.params.samples
  self.bar = C._progbar(self.target, self.verbose)
  self.seen = 0
end

function ProgbarLogger:_values(logs)
  local v = {}
  for _, k in ipairs(self.params.metrics) do
    if logs[k] ~= nil then v[#v + 1] = {k, logs[k]} end
  end
  return v
end

function ProgbarLogger:_progress(seen, mean_logs, steps)
  if self._steps then seen = steps end
  self.seen = seen
  if self.verbose > 0 and (self.target == nil or seen < self.target) then
    self.bar:update(seen, self:_values(mean_logs))
  end
end

function ProgbarLogger:on_epoch_end(_epoch, logs)
  if self.verbose > 0 then self.bar:update(self.seen > 0 and self.seen or self.target, self:_values(logs), true) end
end

-- ---- keras.utils.Progbar: the bar for custom loops ----

-- Keras 2.2.4's utils.generic_utils.Progbar(target, width=30, verbose=1,
-- interval=0.05, stateful_metrics=None). update(current, values) and
-- add(n, values) take values as {name, value} pairs; a value is averaged over
-- the steps it was given for (weighted by how far `current` moved), except
-- for names in stateful_metrics, shown as given. The drawing is fit's own bar
-- (keras.progbar), through keras.set_print.
local PublicProgbar = {}
PublicProgbar.__index = PublicProgbar
PublicProgbar.__name = "keras.utils.Progbar"

local PROGBAR_ARGS = {"target", "width", "verbose", "interval", "stateful_metrics"}
local PROGBAR_SET = set(PROGBAR_ARGS)

local function progbar_options(...)
  local n = select("#", ...)
  local first = (...)
  local o = {}
  local function take(t, offset)
    for k, v in pairs(t) do
      if math.type(k) == "integer" and k >= 1 then
        local name = PROGBAR_ARGS[k + offset]
        if not name then raise(string.format("Progbar: too many positional arguments (%d)", k + offset)) end
        o[name] = v
      else
        o[k] = v
      end
    end
  end
  if n == 1 and is_plain(first) then
    take(first, 0)
  else
    local npos = n
    -- a trailing plain table is the options, except as the 5th argument (stateful_metrics)
    local last = n > 0 and select(n, ...) or nil
    if n ~= 5 and is_plain(last) then npos = n - 1 end
    if npos > 5 then raise(string.format("Progbar: too many positional arguments (%d)", npos)) end
    for i = 1, npos do o[PROGBAR_ARGS[i]] = (select(i, ...)) end
    if npos < n then take(last, 0) end
  end
  for k in pairs(o) do
    if not PROGBAR_SET[k] then raise(string.format("Progbar: unknown argument '%s'", tostring(k))) end
  end
  return o
end

local function new_public_progbar(_, ...)
  local o = progbar_options(...)
  local target = o.target
  if target == keras.None then target = nil end
  local stateful = {}
  if o.stateful_metrics ~= nil then
    if type(o.stateful_metrics) ~= "table" then
      raise("Progbar: stateful_metrics must be a list of names, got " .. type(o.stateful_metrics))
    end
    for i, name in ipairs(o.stateful_metrics) do
      if type(name) ~= "string" then
        raise(string.format("Progbar: stateful_metrics[%d] must be a string, got %s", i, type(name)))
      end
      stateful[name] = true
    end
  end
  local ok, bar = pcall(Progbar.new, {target = target, width = o.width, verbose = o.verbose, interval = o.interval,
                                      dynamic = keras._output_dynamic(), clock = core.now, write = keras._write})
  if not ok then raise((tostring(bar):gsub("^[^:]*:%d+: ", ""):gsub("^Progbar%.new: ", "Progbar: "))) end
  return setmetatable({target = bar.target, width = bar.width, verbose = bar.verbose, interval = bar.interval,
                       stateful_metrics = o.stateful_metrics or {}, _bar = bar, _stateful = stateful,
                       _sums = {}, _names = {}, _seen_so_far = 0}, PublicProgbar)
end

local function value_of(v)
  if getmetatable(v) == core.Tensor and v:size() == 1 then return v:item() end
  return v
end

--- bar:update(current, values): moves to step `current` and shows values,
-- a list of {name, value_for_last_step} pairs
function PublicProgbar:update(current, values)
  if getmetatable(self) ~= PublicProgbar then
    raise("Progbar:update: called without a progress bar (use bar:update)")
  end
  if type(current) ~= "number" or current ~= current or current < 0 or math.floor(current) ~= current then
    raise("Progbar:update: current must be a non-negative integer, got " .. tostring(current))
  end
  if values ~= nil and type(values) ~= "table" then
    raise("Progbar:update: values must be a list of {name, value} pairs, got " .. type(values))
  end
  for i, pair in ipairs(values or {}) do   -- checked first: a bad call changes nothing
    local name, v = type(pair) == "table" and pair[1], type(pair) == "table" and value_of(pair[2])
    if type(name) ~= "string" or type(v) ~= "number" then
      raise(string.format("Progbar:update: values[%d] must be a {name, number} pair", i))
    end
  end
  local delta = current - self._seen_so_far
  for _, pair in ipairs(values or {}) do
    local name, v = pair[1], value_of(pair[2])
    local s = self._sums[name]
    if not s then
      self._names[#self._names + 1] = name
      s = {0, 0}
      self._sums[name] = s
    end
    if self._stateful[name] then
      s[1], s[2] = v, 1
    else
      s[1], s[2] = s[1] + v * delta, s[2] + delta
    end
  end
  self._seen_so_far = current
  local shown = {}
  for i, name in ipairs(self._names) do
    local s = self._sums[name]
    shown[i] = {name, s[1] / math.max(1, s[2])}
  end
  local ok, err = pcall(self._bar.update, self._bar, current, shown)
  if not ok then raise((tostring(err):gsub("^[^:]*:%d+: ", ""))) end
end

--- bar:add(n, values): update(seen_so_far + n, values)
function PublicProgbar:add(n, values)
  if getmetatable(self) ~= PublicProgbar then
    raise("Progbar:add: called without a progress bar (use bar:add)")
  end
  if type(n) ~= "number" or n ~= n or math.floor(n) ~= n then
    raise("Progbar:add: n must be an integer, got " .. tostring(n))
  end
  if self._seen_so_far + n < 0 then
    raise(string.format("Progbar:add: the bar would go below 0 (%d)", self._seen_so_far + n))
  end
  return PublicProgbar.update(self, self._seen_so_far + n, values)
end

PublicProgbar.__tostring = function(self)
  return string.format("<Progbar %d/%s>", self._seen_so_far, self.target and tostring(self.target) or "Unknown")
end

C._PublicProgbar = setmetatable({}, {__index = PublicProgbar, __call = new_public_progbar})
if keras.utils then keras.utils.Progbar = C._PublicProgbar end

-- ---- the runner used by fit ----

local Runner = {}
Runner.__index = Runner

function C._runner(list, model, params)
  for i, cb in ipairs(list) do
    if type(cb) ~= "table" then raise(string.format("fit: callbacks[%d] is not a table", i)) end
    if cb.set_model then cb:set_model(model) else cb.model = model end
    if cb.set_params then cb:set_params(params) else cb.params = params end
  end
  return setmetatable({list = list}, Runner)
end

-- whether a callback defines a hook of its own (the base class's are no-ops)
local function defines(cb, hook)
  local f = cb[hook]
  return f ~= nil and f ~= Callback[hook]
end
C._defines = defines

function Runner:call(hook, ...)
  for _, cb in ipairs(self.list) do
    if defines(cb, hook) then cb[hook](cb, ...) end
  end
end

-- whether fit must report after every batch (on_batch_end)
function Runner:wants_batches()
  for _, cb in ipairs(self.list) do
    if not cb._progbar and defines(cb, "on_batch_end") then return true end
  end
  return false
end

-- whether fit must call into Lua before every batch (on_batch_begin); when
-- no callback defines it, the C loop runs without it
function Runner:wants_batch_begin()
  for _, cb in ipairs(self.list) do
    if not cb._progbar and defines(cb, "on_batch_begin") then return true end
  end
  return false
end

-- the progress bar needs reports at its refresh interval
function Runner:interval()
  for _, cb in ipairs(self.list) do
    if cb._progbar and cb.verbose == 1 then return 0.05 end
  end
  return nil
end

-- before batch `index` (from 0) of `size` samples: Keras's batch logs
-- {batch, size}, which the same batch's on_batch_end receives again with the
-- batch's loss and metrics added
function Runner:batch_begin(index, size)
  local blogs = {batch = index, size = size}
  self._blogs, self._begun = blogs, index
  for _, cb in ipairs(self.list) do
    if not cb._progbar and defines(cb, "on_batch_begin") then cb:on_batch_begin(index, blogs) end
  end
end

-- after batch `index`: on_batch_end with the batch's values (cur), and the
-- progress bar with the running means. A loop that did not call batch_begin
-- before this batch gets on_batch_begin here, so that it runs once per batch.
function Runner:batch(index, size, seen, cur, mean)
  local blogs
  if self._begun == index and self._blogs then
    blogs = self._blogs
  else
    blogs = {batch = index, size = size}
    for _, cb in ipairs(self.list) do
      if not cb._progbar and defines(cb, "on_batch_begin") then cb:on_batch_begin(index, blogs) end
    end
  end
  self._blogs, self._begun = nil, nil
  local filled = false
  for _, cb in ipairs(self.list) do
    if cb._progbar then
      cb:_progress(seen, mean)
    elseif defines(cb, "on_batch_end") then
      if not filled then
        for k, v in pairs(cur) do blogs[k] = v end
        filled = true
      end
      cb:on_batch_end(index, blogs)
    end
  end
end

-- ---- LambdaCallback ----

-- Keras 2.2.4: LambdaCallback(on_epoch_begin, on_epoch_end, on_batch_begin, on_batch_end,
-- on_train_begin, on_train_end)
C.LambdaCallback = function(...)
  local o = parse("LambdaCallback", HOOKS, {}, ...)
  local cb = setmetatable({}, Callback)
  for k, f in pairs(o) do
    if type(f) ~= "function" then raise(string.format("LambdaCallback: %s must be a function", k)) end
    cb[k] = function(_, ...) return f(...) end
  end
  return cb
end

-- ---- TerminateOnNaN ----

local TerminateOnNaN = class("TerminateOnNaN")
C.TerminateOnNaN = function() return setmetatable({}, TerminateOnNaN) end
function TerminateOnNaN:on_batch_end(batch, logs)
  local loss = logs and logs.loss
  if loss and (loss ~= loss or loss == math.huge or loss == -math.huge) then
    keras._print(string.format("Batch %d: Invalid loss, terminating training", batch))
    self.model.stop_training = true
  end
end

-- ---- monitors: EarlyStopping, ReduceLROnPlateau ----

local function monitor_op(name, mode, monitor, min_delta)
  if mode ~= "auto" and mode ~= "min" and mode ~= "max" then
    raise(string.format("%s: mode must be auto, min or max, got '%s'", name, tostring(mode)))
  end
  local maximize = mode == "max" or (mode == "auto" and (monitor:find("acc") ~= nil or monitor:find("fmeasure") ~= nil))
  if maximize then
    return function(a, b) return a - min_delta > b end, -math.huge, math.abs(min_delta)
  end
  return function(a, b) return a + min_delta < b end, math.huge, -math.abs(min_delta)
end

local EarlyStopping = class("EarlyStopping")
C.EarlyStopping = function(...)
  local o = parse("EarlyStopping", {"monitor", "min_delta", "patience", "verbose", "mode", "baseline",
    "restore_best_weights"}, set{"restore_at_end"}, ...)
  local self = setmetatable({monitor = o.monitor or "val_loss", patience = o.patience or 0, verbose = o.verbose or 0,
    baseline = o.baseline, restore_best_weights = o.restore_best_weights or false,
    restore_at_end = o.restore_at_end or false}, EarlyStopping)
  local md = math.abs(o.min_delta or 0)
  local op, best = monitor_op("EarlyStopping", o.mode or "auto", self.monitor, md)
  self.better = function(cur, ref) return op(cur, ref) end
  self.min_delta = md
  self._initial_best = best
  return self
end

function EarlyStopping:on_train_begin()
  self.wait, self.stopped_epoch, self.restored = 0, 0, false
  self.best = self.baseline or self._initial_best
  self.best_weights = nil
  self.restored = false
end

function EarlyStopping:on_epoch_end(epoch, logs)
  local cur = logs[self.monitor]
  if cur == nil then
    keras._write(string.format("Early stopping conditioned on metric `%s` which is not available.\n", self.monitor))
    return
  end
  if self.better(cur, self.best) then
    self.best = cur
    self.wait = 0
    if self.restore_best_weights or self.restore_at_end then self.best_weights = self.model:get_weights() end
  else
    self.wait = self.wait + 1
    if self.wait >= self.patience then
      self.stopped_epoch = epoch
      self.model.stop_training = true
      if self.restore_best_weights and self.best_weights then
        if self.verbose > 0 then keras._print("Restoring model weights from the end of the best epoch") end
        self.model:set_weights(self.best_weights)
        self.restored = true
      end
    end
  end
end

function EarlyStopping:on_train_end()
  if self.stopped_epoch > 0 and self.verbose > 0 then
    keras._print(string.format("Epoch %05d: early stopping", self.stopped_epoch + 1))
  end
  -- an option Keras lacks: restore the best weights also when training ran to the end
  if self.restore_at_end and not self.restored and self.best_weights then
    self.model:set_weights(self.best_weights)
  end
end

local LearningRateScheduler = class("LearningRateScheduler")
C.LearningRateScheduler = function(...)
  local o = parse("LearningRateScheduler", {"schedule", "verbose"}, {}, ...)
  if type(o.schedule) ~= "function" then raise("LearningRateScheduler: schedule must be a function") end
  return setmetatable({schedule = o.schedule, verbose = o.verbose or 0}, LearningRateScheduler)
end
function LearningRateScheduler:on_epoch_begin(epoch)
  local opt = self.model.optimizer
  if not opt then error('Optimizer must have a "lr" attribute.', 0) end
  local lr = self.schedule(epoch, keras.backend.get_value(opt.lr))
  if type(lr) ~= "number" or lr ~= lr then
    error('The output of the "schedule" function should be float.', 0)
  end
  keras.backend.set_value(opt.lr, lr)
  if self.verbose > 0 then
    keras._print(string.format("\nEpoch %05d: LearningRateScheduler setting learning rate to %s.", epoch + 1,
      tostring(lr)))
  end
end
function LearningRateScheduler:on_epoch_end(_epoch, logs)
  logs.lr = keras.backend.get_value(self.model.optimizer.lr)
end

local ReduceLROnPlateau = class("ReduceLROnPlateau")
C.ReduceLROnPlateau = function(...)
  local o = parse("ReduceLROnPlateau", {"monitor", "factor", "patience", "verbose", "mode", "min_delta", "cooldown",
    "min_lr"}, set{"epsilon"}, ...)
  local factor = o.factor or 0.1
  if factor >= 1.0 then raise("ReduceLROnPlateau does not support a factor >= 1.0.") end
  local self = setmetatable({monitor = o.monitor or "val_loss", factor = factor, patience = o.patience or 10,
    verbose = o.verbose or 0, cooldown = o.cooldown or 0, min_lr = o.min_lr or 0,
    min_delta = o.min_delta or o.epsilon or 1e-4}, ReduceLROnPlateau)
  local mode = o.mode or "auto"
  if mode ~= "auto" and mode ~= "min" and mode ~= "max" then
    raise(string.format("ReduceLROnPlateau: mode must be auto, min or max, got '%s'", tostring(mode)))
  end
  local maximize = mode == "max" or (mode == "auto" and self.monitor:find("acc") ~= nil)
  local md = self.min_delta
  if maximize then
    self.better, self._initial_best = function(a2, b2) return a2 > b2 + md end, -math.huge
  else
    self.better, self._initial_best = function(a2, b2) return a2 < b2 - md end, math.huge
  end
  return self
end
function ReduceLROnPlateau:on_train_begin()
  self.best, self.wait, self.cooldown_counter = self._initial_best, 0, 0
end
function ReduceLROnPlateau:on_epoch_end(epoch, logs)
  logs.lr = keras.backend.get_value(self.model.optimizer.lr)
  local cur = logs[self.monitor]
  if cur == nil then return end
  if self.cooldown_counter > 0 then
    self.cooldown_counter = self.cooldown_counter - 1
    self.wait = 0
  end
  if self.better(cur, self.best) then
    self.best, self.wait = cur, 0
  elseif self.cooldown_counter <= 0 then
    self.wait = self.wait + 1
    if self.wait >= self.patience then
      local old = keras.backend.get_value(self.model.optimizer.lr)
      if old > self.min_lr then
        local new = math.max(old * self.factor, self.min_lr)
        keras.backend.set_value(self.model.optimizer.lr, new)
        if self.verbose > 0 then
          keras._print(string.format("\nEpoch %05d: ReduceLROnPlateau reducing learning rate to %s.", epoch + 1,
            tostring(new)))
        end
        self.cooldown_counter, self.wait = self.cooldown, 0
      end
    end
  end
end

local CSVLogger = class("CSVLogger")
C.CSVLogger = function(...)
  local o = parse("CSVLogger", {"filename", "separator", "append"}, {}, ...)
  if type(o.filename) ~= "string" then raise("CSVLogger: filename must be a string") end
  return setmetatable({filename = o.filename, sep = o.separator or ",", append = o.append or false}, CSVLogger)
end
-- keras.distributed: only rank 0 writes the job's files
local function not_writer() return keras.distributed ~= nil and not keras.distributed._writes() end
C._not_writer = not_writer

function CSVLogger:on_train_begin()
  if not_writer() then return end
  local exists = io.open(self.filename, "r")
  self.append_header = true
  if self.append and exists then
    self.append_header = exists:read("l") == nil
  end
  if exists then exists:close() end
  local f, err = io.open(self.filename, self.append and "a" or "w")
  if not f then error("CSVLogger: cannot open '" .. self.filename .. "': " .. tostring(err), 0) end
  self.file = f
  self.keys = nil
end
-- a number as Python's str(float) writes it (Keras's logs hold float64):
-- the shortest digits that read back to the same double, "2.0" for an
-- integral value, "nan", "inf"
local function csv_value(v)
  if math.type(v) == "integer" then return tostring(v) end
  if type(v) ~= "number" then return tostring(v) end
  if v ~= v then return "nan" end
  if v == math.huge then return "inf" end
  if v == -math.huge then return "-inf" end
  local e
  for digits = 1, 17 do
    e = string.format("%." .. (digits - 1) .. "e", v)
    if tonumber(e) == v then break end
  end
  local mantissa, exp = e:match("^(%-?[%d%.]+)e([-+]%d+)$")
  exp = tonumber(exp)
  if exp < -4 or exp >= 16 then return e end
  -- fixed notation with the same digits, as Python's repr does from 1e-4 to 1e16
  local decimals = #mantissa:gsub("[^%d]", "") - 1 - exp
  local s = string.format("%." .. math.max(decimals, 0) .. "f", v)
  if not s:find(".", 1, true) then s = s .. ".0" end
  return s
end
function CSVLogger:on_epoch_end(epoch, logs)
  if not self.file then return end   -- not rank 0 of a distributed job
  if not self.keys then
    self.keys = {}
    for k in pairs(logs) do self.keys[#self.keys + 1] = k end
    table.sort(self.keys)
    if self.append_header then self.file:write("epoch", self.sep, table.concat(self.keys, self.sep), "\n") end
  end
  local row = {tostring(epoch)}
  for _, k in ipairs(self.keys) do row[#row + 1] = logs[k] ~= nil and csv_value(logs[k]) or "NA" end
  self.file:write(table.concat(row, self.sep), "\n")
  self.file:flush()
end
function CSVLogger:on_train_end()
  if self.file then self.file:close(); self.file = nil end
end

-- LivePlot{to_file=, every=1, metrics=nil}: redraws the training curves
-- (keras.utils.plot_history) every `every` epochs and after the last one, so
-- a long run can be watched from an image viewer or a browser. Each picture
-- is drawn beside the file and renamed over it, never seen half written.
local LivePlot = class("LivePlot")
C.LivePlot = function(...)
  local o = parse("LivePlot", {"to_file", "every", "metrics"}, {title = true, width = true, height = true}, ...)
  if type(o.to_file) ~= "string" or o.to_file == "" then
    raise("LivePlot: to_file must be a file name (.png, .svg or .pdf), got " .. tostring(o.to_file))
  end
  local every = o.every or 1
  if math.type(every) ~= "integer" or every < 1 then
    raise("LivePlot: every must be an integer >= 1, got " .. tostring(every))
  end
  if o.metrics ~= nil and type(o.metrics) ~= "table" and type(o.metrics) ~= "string" then
    raise("LivePlot: metrics must be a list of names, got " .. type(o.metrics))
  end
  return setmetatable({to_file = o.to_file, every = every, metrics = o.metrics,
                       options = {title = o.title, width = o.width, height = o.height}}, LivePlot)
end
-- the picture is drawn here, then renamed over to_file: name.part.png
local function part_file(path)
  local tmp = path:gsub("(%.[^./]+)$", ".part%1")
  if tmp == path then tmp = path .. ".part" end
  return tmp
end
function LivePlot:_draw()
  local P = keras.utils._plot
  local tmp = part_file(self.to_file)
  P._draw_history({history = self, to_file = tmp, metrics = self.metrics, title = self.options.title,
                   width = self.options.width, height = self.options.height}, "LivePlot")
  local ok, err = os.rename(tmp, self.to_file)
  if not ok then os.remove(tmp); error("LivePlot: cannot write '" .. self.to_file .. "': " .. tostring(err), 0) end
  self.drawn = #self.epoch
end
function LivePlot:on_train_begin()
  local P = keras.utils._plot
  P._need("gnuplot", "LivePlot")
  local tmp = part_file(self.to_file)
  if P._check_writable(tmp, "LivePlot") then os.remove(tmp) end
  self.epoch, self.history, self.drawn = {}, {}, 0
end
function LivePlot:on_epoch_end(epoch, logs)
  self.epoch[#self.epoch + 1] = epoch
  for k, v in pairs(logs or {}) do
    self.history[k] = self.history[k] or {}
    self.history[k][#self.epoch] = v
  end
  if #self.epoch % self.every == 0 then self:_draw() end
end
function LivePlot:on_train_end()
  if #self.epoch > (self.drawn or 0) then self:_draw() end
end

-- ---- ModelCheckpoint (keras/callbacks.py [2.2.4]; moved here from saving.lua) ----

local pyformat = require("keras.pyformat").format   -- the filepath template
local function warn(msg) keras._write("Warning: " .. msg .. "\n") end

do
  local ModelCheckpoint = C._class("ModelCheckpoint")
  -- Keras 2.2.4: ModelCheckpoint(filepath, monitor, verbose, save_best_only, save_weights_only, mode, period)
  C.ModelCheckpoint = setmetatable({}, {__index = ModelCheckpoint, __call = function(_, ...)
    local o = C._parse("ModelCheckpoint", {"filepath", "monitor", "verbose", "save_best_only",
      "save_weights_only", "mode", "period"}, {}, ...)
    if type(o.filepath) ~= "string" or o.filepath == "" then
      raise("ModelCheckpoint: filepath must be a non-empty string")
    end
    local self = setmetatable({filepath = o.filepath, monitor = o.monitor or "val_loss", verbose = o.verbose or 0,
      save_best_only = o.save_best_only or false, save_weights_only = o.save_weights_only or false,
      period = o.period or 1, epochs_since_last_save = 0}, ModelCheckpoint)
    if type(self.monitor) ~= "string" then raise("ModelCheckpoint: monitor must be a string") end
    if math.type(self.period) ~= "integer" or self.period < 1 then
      raise("ModelCheckpoint: period must be an integer >= 1, got " .. tostring(self.period))
    end
    local mode = o.mode or "auto"
    if mode ~= "auto" and mode ~= "min" and mode ~= "max" then
      raise(string.format("ModelCheckpoint: mode must be auto, min or max, got '%s'", tostring(mode)))
    end
    if mode == "max" or (mode == "auto" and (self.monitor:find("acc", 1, true) or self.monitor:sub(1,
      8) == "fmeasure")) then
      self.better, self.best = function(x, y) return x > y end, -math.huge
    else
      self.better, self.best = function(x, y) return x < y end, math.huge
    end
    -- the template is checked now, so that a typo fails before training
    local ok, err = pcall(pyformat, self.filepath, setmetatable({}, {__index = function() return 1 end}))
    if not ok then raise("ModelCheckpoint: filepath: " .. clean(err)) end
    return self
  end})

  function ModelCheckpoint:_save(filepath)
    if self.save_weights_only then
      self.model:save_weights(filepath, {overwrite = true})
    else
      self.model:save(filepath, {overwrite = true})
    end
  end

  function ModelCheckpoint:on_epoch_end(epoch, logs)
    if C._not_writer() then return end   -- keras.distributed: rank 0 writes
    logs = logs or {}
    self.epochs_since_last_save = self.epochs_since_last_save + 1
    if self.epochs_since_last_save < self.period then return end
    self.epochs_since_last_save = 0
    local values = {epoch = epoch + 1}
    for k, v in pairs(logs) do if k ~= "epoch" then values[k] = v end end
    local ok, filepath = pcall(pyformat, self.filepath, values)
    if not ok then error(string.format("ModelCheckpoint: filepath '%s': %s", self.filepath, clean(filepath)), 0) end
    if self.save_best_only then
      local current = logs[self.monitor]
      if current == nil then
        warn(string.format("Can save best model only with %s available, skipping.", self.monitor))
      elseif self.better(current, self.best) then
        if self.verbose > 0 then
          keras._write(string.format("\nEpoch %05d: %s improved from %0.5f to %0.5f, saving model to %s\n", epoch + 1,
            self.monitor, self.best, current, filepath))
        end
        self.best = current
        self:_save(filepath)
      elseif self.verbose > 0 then
        keras._write(string.format("\nEpoch %05d: %s did not improve from %0.5f\n", epoch + 1, self.monitor, self.best))
      end
    else
      if self.verbose > 0 then keras._write(string.format("\nEpoch %05d: saving model to %s\n", epoch + 1,
        filepath)) end
      self:_save(filepath)
    end
  end
end

return C
