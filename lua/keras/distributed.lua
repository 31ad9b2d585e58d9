-- keras.distributed: data-parallel training shaped like Horovod's Keras API
-- (API.md §14; docs/distributed.md). The world is the C reducer of
-- src/dist.h: MPI when the program was started by mpirun (and the build has
-- the MPI plugin), else a single process where every call works. fit, with a
-- DistributedOptimizer, runs each rank's slice of every global batch and
-- averages the gradients in C (train.c, fit_epoch_dist_body); evaluate and
-- predict shard the rows and gather them here.
local keras = ...
local util = require("keras.util")
local raise, is_plain, is_tensor = util.raise, util.is_plain, util.is_tensor
local core = keras._core

local D = {}
local world                    -- the keras.Dist, once init ran
local info = {size = 1, rank = 0, local_size = 1, local_rank = 0, transport = "single"}
local print_all = false

--- init([{threads = n, print_all = bool}]): join the world (a world of size
-- 1 without mpirun). Threads per process default to the cores over the
-- processes on this host.
function D.init(o)
  if o ~= nil and not is_plain(o) then raise("keras.distributed.init: expected an options table, got " .. type(o)) end
  o = o or {}
  if world then return D end
  local ok, w = pcall(core.dist)
  if not ok then raise(tostring(w):gsub("^[^:]*:%d+: ", "")) end
  world = w
  info = world:info()
  if o.print_all ~= nil then print_all = o.print_all and true or false end
  local threads = o.threads
  if threads ~= nil and (math.type(threads) ~= "integer" or threads < 1) then
    raise("keras.distributed.init: threads must be an integer >= 1, got " .. tostring(threads))
  end
  if threads then
    core.set_num_threads(threads)
  elseif info.local_size > 1 then
    core.set_num_threads(math.max(1, core.get_num_threads() // info.local_size))
  end
  return D
end

local function ensure()
  if not world then D.init() end
  return world
end

function D.size() ensure(); return info.size end
function D.rank() ensure(); return info.rank end
function D.local_size() ensure(); return info.local_size end
function D.local_rank() ensure(); return info.local_rank end
function D.transport() ensure(); return info.transport end
function D.is_initialized() return world ~= nil end

local function tensor_arg(t, who)
  if is_tensor(t) then return t end
  if is_plain(t) or type(t) == "number" then
    local ok, v = pcall(core.tensor, t)
    if ok then return v end
  end
  raise(string.format("%s: expected a keras.Tensor or a table of numbers, got %s", who, type(t)))
end

--- allreduce(t, {average = true}) -> a new tensor: the mean (or with
-- average = false the sum) of t over the ranks
function D.allreduce(t, o)
  t = tensor_arg(t, "keras.distributed.allreduce")
  if o ~= nil and not is_plain(o) then raise("keras.distributed.allreduce: options must be a table") end
  local average = not (o and o.average == false)
  return ensure():allreduce(t, average)
end

--- broadcast(t, root) -> a new tensor with root's values of t
function D.broadcast(t, root)
  t = tensor_arg(t, "keras.distributed.broadcast")
  root = root or 0
  if math.type(root) ~= "integer" or root < 0 or root >= D.size() then
    raise(string.format("keras.distributed.broadcast: root must be a rank in [0, %d), got %s", D.size(),
      tostring(root)))
  end
  return ensure():broadcast(t, root)
end

--- allgather(t) -> every rank's t along the first axis, in rank order
function D.allgather(t)
  t = tensor_arg(t, "keras.distributed.allgather")
  return ensure():allgather(t)
end

function D.barrier() ensure():barrier() end

--- abort(msg): end every process of the job with msg
function D.abort(msg) ensure():abort(tostring(msg or "keras.distributed.abort")) end

-- ---- DistributedOptimizer ----

--- DistributedOptimizer(opt, {fusion_mb = 25, overlap = "auto", first_bucket_mb = 1}): opt itself,
-- marked so that fit averages the gradients over the ranks before each step
-- (its name and config stay, so a saved model has the optimizer's own).
-- overlap: a communication thread reduces each gradient bucket while the
-- backward pass still runs; "auto" where a core is free for it on every host
-- (cores >= processes on the host x (threads + 1)), true or false to choose;
-- its first bucket is first_bucket_mb (PyTorch DDP's is 1 MB too: small, so
-- that the reduction starts early in the backward pass), the others up to
-- fusion_mb.
function D.DistributedOptimizer(opt, o)
  local O = keras.optimizers
  if type(opt) == "string" or is_plain(opt) then opt = O.get(opt) end
  if not O.is_optimizer(opt) then
    raise("DistributedOptimizer: expected a keras optimizer, got " .. type(opt))
  end
  if o ~= nil and not is_plain(o) then raise("DistributedOptimizer: options must be a table, got " .. type(o)) end
  local mb = o and o.fusion_mb or 25
  if type(mb) ~= "number" or mb ~= mb or mb <= 0 or mb == math.huge then
    raise("DistributedOptimizer: fusion_mb must be a number > 0, got " .. tostring(mb))
  end
  local first = o and o.first_bucket_mb or 1
  if type(first) ~= "number" or first ~= first or first <= 0 or first == math.huge then
    raise("DistributedOptimizer: first_bucket_mb must be a number > 0, got " .. tostring(first))
  end
  local overlap = "auto"
  if o and o.overlap ~= nil then overlap = o.overlap end
  if overlap ~= "auto" and overlap ~= true and overlap ~= false then
    raise("DistributedOptimizer: overlap must be true, false or \"auto\", got " .. tostring(overlap))
  end
  local known = {fusion_mb = true, overlap = true, first_bucket_mb = true}
  for k in pairs(o or {}) do
    if not known[k] then raise("DistributedOptimizer: unknown option '" .. tostring(k) .. "'") end
  end
  rawset(opt, "_distributed", {fusion_mb = mb, overlap = overlap, first_mb = first})
  return opt
end

-- whether the overlap is on: the same answer on every rank (the buckets are
-- collectives), so every rank votes
local function overlap_on(mode)
  if mode == false then return false end
  local want = mode == true or info.cores >= info.local_size * (core.get_num_threads() + 1)
  local votes = world:allreduce_numbers({want and 1 or 0, info.threads_ok and 1 or 0})
  if mode == true and votes[2] < info.size then
    raise("DistributedOptimizer: overlap = true needs MPI with MPI_THREAD_SERIALIZED on every rank")
  end
  return votes[1] == info.size and votes[2] == info.size
end

-- the world fit trains over for this model, or nil (no DistributedOptimizer, or size 1)
function D._fit_world(model)
  local opt = model.optimizer
  local mark = type(opt) == "table" and rawget(opt, "_distributed")
  if not mark then return nil end
  ensure()
  if info.size < 2 then return nil end
  for _, l in ipairs(model._all_layers or {}) do
    if l.stateful then raise("fit: a stateful layer (" .. l.name .. ") cannot train distributed") end
  end
  return {size = info.size, rank = info.rank, fusion = mark.fusion_mb * 1048576,
          overlap = overlap_on(mark.overlap or "auto"), first = (mark.first_mb or 1) * 1048576}
end

-- the BatchNormalization moving statistics of a model: averaged after every step
local function state_tensors(model)
  local out = {}
  for _, l in ipairs(model._all_layers or {}) do
    if l.moving_mean and l.moving_variance then
      out[#out + 1] = l.moving_mean.value
      out[#out + 1] = l.moving_variance.value
    end
  end
  return out
end

-- the trainers attached to the world (weak keys): fit attaches once per
-- epoch, train_on_batch and fit_generator once per trainer
local attached = setmetatable({}, {__mode = "k"})

function D._attach(model, trainer, fw)
  trainer:set_dist(world, fw.fusion, state_tensors(model), fw.overlap and math.max(1, fw.first) or 0)
  attached[trainer] = model
end

-- train_on_batch and fit_generator (Horovod's form): every rank calls them
-- with its own batch; a model with a DistributedOptimizer steps with the
-- world's gradients, weighted by each rank's rows. true when distributed
function D._attach_batch(model, trainer)
  if attached[trainer] == model then return true end
  local fw = D._fit_world(model)
  if not fw then return false end
  D._attach(model, trainer, fw)
  return true
end

-- fit's guard (a to-be-closed value): at fit's end the weights and optimizer
-- slots that fit kept in the host's shared window (one copy per host) go
-- back to each process's own memory; after an error, without a collective
local state_guard = setmetatable({}, {__close = function(_, err)
  if world then world:release_state(err == nil) end
end})
function D._state_guard() return state_guard end

function D._quiet()
  return world ~= nil and info.size > 1 and info.rank ~= 0 and not print_all
end

-- whether this process writes files for the job (ModelCheckpoint, CSVLogger): rank 0
function D._writes() return world == nil or info.rank == 0 end

-- the rows [a, b] (from 1; b < a: none) of n that this rank evaluates or predicts
local function shard(n)
  local base, rem = n // info.size, n % info.size
  local r = info.rank
  local first = r * base + math.min(r, rem)
  local count = base + (r < rem and 1 or 0)
  return first + 1, first + count
end

local function slice_list(list, a, b)
  if not list then return nil end
  local out = {}
  for i, t in ipairs(list) do out[i] = t:slice(a, b) end
  return out
end

-- evaluate over the world: each rank its rows; the logs weighted by rows
function D._sharded(model)
  local opt = model.optimizer
  if not (world and info.size > 1 and type(opt) == "table" and rawget(opt, "_distributed")) then return false end
  return true
end

function D._evaluate(trainer, xl, yl, swl, batch_size, n, nlogs)
  local a, b = shard(n)
  local rows = b - a + 1
  local sums = {}
  for i = 1, nlogs do sums[i] = 0 end
  if rows > 0 then
    local ok, v = pcall(trainer.evaluate, trainer, slice_list(xl, a, b), slice_list(yl, a, b),
      slice_list(swl, a, b), batch_size)
    if not ok then raise(tostring(v):gsub("^[^:]*:%d+: ", "")) end
    for i = 1, nlogs do sums[i] = v[i] * rows end
  end
  sums[nlogs + 1] = math.max(rows, 0)
  local tot = world:allreduce_numbers(sums)
  local out = {}
  for i = 1, nlogs do out[i] = tot[nlogs + 1] > 0 and tot[i] / tot[nlogs + 1] or 0 end
  return out
end

-- predict over the world: each rank its rows, gathered in rank order (with
-- fewer rows than ranks every rank predicts them all)
function D._predict(trainer, xl, batch_size, n)
  if n < info.size then
    local ok, v = pcall(trainer.predict, trainer, xl, batch_size)
    if not ok then raise(tostring(v):gsub("^[^:]*:%d+: ", "")) end
    return v
  end
  local a, b = shard(n)
  local ok, outs = pcall(trainer.predict, trainer, slice_list(xl, a, b), batch_size)
  if not ok then raise(tostring(outs):gsub("^[^:]*:%d+: ", "")) end
  for i, t in ipairs(outs) do outs[i] = world:allgather(t) end
  return outs
end

-- ---- callbacks, as Horovod's ----

local cbs = keras.callbacks
local class = cbs._class

--- BroadcastGlobalVariablesCallback(root): at the start of training every
-- rank takes root's weights, optimizer slots and iteration count, and
-- random generator state
local Broadcast = class("BroadcastGlobalVariablesCallback")
D.BroadcastGlobalVariablesCallback = function(root)
  root = root or 0
  if math.type(root) ~= "integer" or root < 0 then
    raise("BroadcastGlobalVariablesCallback: root must be an integer rank >= 0, got " .. tostring(root))
  end
  return setmetatable({root = root}, Broadcast)
end

function D.broadcast_global_variables(model, root)
  local w = ensure()
  if root >= info.size then
    raise(string.format("BroadcastGlobalVariablesCallback: root %d is not a rank (the world has %d)", root, info.size))
  end
  if info.size < 2 then return end
  for _, v in ipairs(model.weights or {}) do
    if v.value then w:broadcast_(v.value, root) end
  end
  local opt = model.optimizer
  if keras.optimizers and keras.optimizers.is_optimizer(opt) then
    for _, s in ipairs(opt:get_slots()) do w:broadcast_(s, root) end
    local it = w:broadcast_numbers({opt.iterations}, root)
    opt.iterations = math.tointeger(it[1]) or math.floor(it[1])
  end
  w:set_rng_state(w:broadcast_numbers(w:rng_state(), root))
end

function Broadcast:on_train_begin()
  D.broadcast_global_variables(self.model, self.root)
end

--- MetricAverageCallback(): at each epoch's end, every numeric log averaged over the ranks
local MetricAverage = class("MetricAverageCallback")
D.MetricAverageCallback = function() return setmetatable({}, MetricAverage) end

function MetricAverage.on_epoch_end(_, _epoch, logs)
  if not logs or not world or info.size < 2 then return end
  local keys = {}
  for k, v in pairs(logs) do if type(v) == "number" then keys[#keys + 1] = k end end
  table.sort(keys)
  local vals = {}
  for i, k in ipairs(keys) do vals[i] = logs[k] end
  local tot = world:allreduce_numbers(vals)
  for i, k in ipairs(keys) do logs[k] = tot[i] / info.size end
end

--- LearningRateWarmupCallback{warmup_epochs = 5, verbose = 0}: the learning
-- rate rises from lr / size to lr over the first warmup_epochs epochs, batch
-- by batch (Goyal et al.), as Horovod's
local Warmup = class("LearningRateWarmupCallback")
D.LearningRateWarmupCallback = function(o)
  if o ~= nil and not is_plain(o) then raise("LearningRateWarmupCallback: options must be a table") end
  o = o or {}
  local we = o.warmup_epochs or 5
  if type(we) ~= "number" or we <= 0 then
    raise("LearningRateWarmupCallback: warmup_epochs must be a number > 0, got " .. tostring(we))
  end
  for k in pairs(o) do
    if k ~= "warmup_epochs" and k ~= "verbose" and k ~= "steps_per_epoch" and k ~= "initial_lr" then
      raise("LearningRateWarmupCallback: unknown option '" .. tostring(k) .. "'")
    end
  end
  return setmetatable({warmup_epochs = we, verbose = o.verbose or 0, steps_per_epoch = o.steps_per_epoch,
                       initial_lr = o.initial_lr}, Warmup)
end

function Warmup:on_train_begin()
  self.target = self.initial_lr or keras.backend.get_value(self.model.optimizer.lr)
  local p = self.params or {}
  if not self.steps_per_epoch then
    local gb = (p.batch_size or 32) * D.size()
    self.steps = math.max(1, math.ceil((p.samples or gb) / gb))
  else
    self.steps = self.steps_per_epoch
  end
end

function Warmup.on_epoch_begin(self, epoch) self.epoch = epoch end

function Warmup:on_batch_begin(batch)
  local e = self.epoch + batch / self.steps
  if e > self.warmup_epochs then return end
  local size = D.size()
  self.model.optimizer.lr = self.target / size * (e * (size - 1) / self.warmup_epochs + 1)
end

function Warmup:on_epoch_end(epoch)
  if epoch + 1 == math.ceil(self.warmup_epochs) or (epoch + 1 >= self.warmup_epochs and not self.done) then
    self.model.optimizer.lr = self.target
    self.done = true
    if self.verbose > 0 and D.rank() == 0 then
      keras._write(string.format("\nEpoch %d: finished gradual learning rate warmup to %g.\n", epoch + 1, self.target))
    end
  end
end

return D
