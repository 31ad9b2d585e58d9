-- keras.callbacks: History, ProgbarLogger and the standard callbacks, and the
-- runner that fit uses. Any Lua table with on_train_begin/end,
-- on_epoch_begin/end(self, epoch, logs) or on_batch_begin/end(self, batch,
-- logs) is a callback. Per-batch hooks make fit call back into Lua for every
-- batch; without them the C loop only reports for the progress bar.
local keras = ...
local core = keras._core
local Progbar = package.preload["keras.progbar"]()

local C = {}

local function is_plain(t) return type(t) == "table" and getmetatable(t) == nil end

-- ---- base class ----

local Callback = {}
Callback.__index = Callback
C.Callback = Callback

local function class(name, parent)
  local cls = setmetatable({class_name = name}, {__index = parent or Callback})
  cls.__index = cls
  return cls
end
C._class = class

function Callback:set_model(m) self.model = m end
function Callback:set_params(p) self.params = p end

-- options: Callback{x=1} or Callback(1, {...}); positional names given
local function options(name, a, b, positional, allowed)
  local o = {}
  if is_plain(a) and b == nil then
    for k, v in pairs(a) do o[k] = v end
  else
    for k, v in pairs(b or {}) do o[k] = v end
    if a ~= nil then o[1] = a end
  end
  for i, p in ipairs(positional) do
    if o[i] ~= nil then o[p], o[i] = o[i], nil end
  end
  for k in pairs(o) do
    if not allowed[k] then error(string.format("%s: unknown argument '%s'", name, tostring(k)), 3) end
  end
  return o
end
C._options = options

local function set(list)
  local s = {}
  for _, k in ipairs(list) do s[k] = true end
  return s
end

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
  return Progbar.new{target = target, verbose = verbose, dynamic = keras._output_dynamic(), clock = core.now, write = keras._write}
end

local ProgbarLogger = class("ProgbarLogger")
C.ProgbarLogger = setmetatable({}, {__index = ProgbarLogger, __call = function(_, a, b)
  local o = options("ProgbarLogger", a, b, {"count_mode"}, set{"count_mode", "stateful_metrics", "verbose"})
  if o.count_mode and o.count_mode ~= "samples" and o.count_mode ~= "steps" then
    error(string.format("ProgbarLogger: count_mode must be 'samples' or 'steps', got '%s'", tostring(o.count_mode)), 2)
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

function ProgbarLogger:on_epoch_end(epoch, logs)
  if self.verbose > 0 then self.bar:update(self.seen > 0 and self.seen or self.target, self:_values(logs), true) end
end

-- ---- the runner used by fit ----

local Runner = {}
Runner.__index = Runner

function C._runner(list, model, params)
  for i, cb in ipairs(list) do
    if type(cb) ~= "table" then error(string.format("fit: callbacks[%d] is not a table", i), 3) end
    if cb.set_model then cb:set_model(model) else cb.model = model end
    if cb.set_params then cb:set_params(params) else cb.params = params end
  end
  return setmetatable({list = list}, Runner)
end

function Runner:call(hook, ...)
  for _, cb in ipairs(self.list) do
    local f = cb[hook]
    if f then f(cb, ...) end
  end
end

function Runner:wants_batches()
  for _, cb in ipairs(self.list) do
    if not cb._progbar and (cb.on_batch_end or cb.on_batch_begin) then return true end
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

function Runner:batch(index, size, seen, cur, mean)
  local blogs = {batch = index, size = size}
  for _, cb in ipairs(self.list) do
    if cb._progbar then
      cb:_progress(seen, mean, index + 1)
    else
      if cb.on_batch_begin then cb:on_batch_begin(index, {batch = index, size = size}) end
      if cb.on_batch_end then
        for k, v in pairs(cur) do blogs[k] = v end
        cb:on_batch_end(index, blogs)
      end
    end
  end
end

-- ---- LambdaCallback ----

local HOOKS = {"on_epoch_begin", "on_epoch_end", "on_batch_begin", "on_batch_end", "on_train_begin", "on_train_end"}

C.LambdaCallback = function(o)
  o = o or {}
  local cb = setmetatable({}, Callback)
  local allowed = set(HOOKS)
  for k, f in pairs(o) do
    if not allowed[k] then error(string.format("LambdaCallback: unknown argument '%s'", tostring(k)), 2) end
    if type(f) ~= "function" then error(string.format("LambdaCallback: %s must be a function", k), 2) end
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
    error(string.format("%s: mode must be auto, min or max, got '%s'", name, tostring(mode)), 3)
  end
  local maximize = mode == "max" or (mode == "auto" and (monitor:find("acc") ~= nil or monitor:find("fmeasure") ~= nil))
  if maximize then
    return function(a, b) return a - min_delta > b end, -math.huge, math.abs(min_delta)
  end
  return function(a, b) return a + min_delta < b end, math.huge, -math.abs(min_delta)
end

local EarlyStopping = class("EarlyStopping")
C.EarlyStopping = function(a, b)
  local o = options("EarlyStopping", a, b, {"monitor"}, set{"monitor", "min_delta", "patience", "verbose", "mode",
    "baseline", "restore_best_weights", "restore_at_end"})
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
C.LearningRateScheduler = function(a, b)
  local o = options("LearningRateScheduler", a, b, {"schedule", "verbose"}, set{"schedule", "verbose"})
  if type(o.schedule) ~= "function" then error("LearningRateScheduler: schedule must be a function", 2) end
  return setmetatable({schedule = o.schedule, verbose = o.verbose or 0}, LearningRateScheduler)
end
function LearningRateScheduler:on_epoch_begin(epoch)
  local opt = self.model.optimizer
  if not opt then error('Optimizer must have a "lr" attribute.', 0) end
  local lr = self.schedule(epoch, opt.lr)
  if type(lr) ~= "number" or lr ~= lr then
    error('The output of the "schedule" function should be float.', 0)
  end
  opt.lr = lr
  if self.verbose > 0 then
    keras._print(string.format("\nEpoch %05d: LearningRateScheduler setting learning rate to %s.", epoch + 1, tostring(lr)))
  end
end
function LearningRateScheduler:on_epoch_end(epoch, logs) logs.lr = self.model.optimizer.lr end

local ReduceLROnPlateau = class("ReduceLROnPlateau")
C.ReduceLROnPlateau = function(a, b)
  local o = options("ReduceLROnPlateau", a, b, {"monitor"}, set{"monitor", "factor", "patience", "verbose", "mode",
    "min_delta", "epsilon", "cooldown", "min_lr"})
  local factor = o.factor or 0.1
  if factor >= 1.0 then error("ReduceLROnPlateau does not support a factor >= 1.0.", 2) end
  local self = setmetatable({monitor = o.monitor or "val_loss", factor = factor, patience = o.patience or 10,
    verbose = o.verbose or 0, cooldown = o.cooldown or 0, min_lr = o.min_lr or 0,
    min_delta = o.min_delta or o.epsilon or 1e-4}, ReduceLROnPlateau)
  local mode = o.mode or "auto"
  if mode ~= "auto" and mode ~= "min" and mode ~= "max" then
    error(string.format("ReduceLROnPlateau: mode must be auto, min or max, got '%s'", tostring(mode)), 2)
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
  logs.lr = self.model.optimizer.lr
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
      local old = self.model.optimizer.lr
      if old > self.min_lr then
        local new = math.max(old * self.factor, self.min_lr)
        self.model.optimizer.lr = new
        if self.verbose > 0 then
          keras._print(string.format("\nEpoch %05d: ReduceLROnPlateau reducing learning rate to %s.", epoch + 1, tostring(new)))
        end
        self.cooldown_counter, self.wait = self.cooldown, 0
      end
    end
  end
end

local CSVLogger = class("CSVLogger")
C.CSVLogger = function(a, b)
  local o = options("CSVLogger", a, b, {"filename", "separator", "append"}, set{"filename", "separator", "append"})
  if type(o.filename) ~= "string" then error("CSVLogger: filename must be a string", 2) end
  return setmetatable({filename = o.filename, sep = o.separator or ",", append = o.append or false}, CSVLogger)
end
function CSVLogger:on_train_begin()
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

return C
