-- keras.callbacks.Callback:extend (callback classes), the order of the batch
-- hooks (on_batch_begin runs before its batch, so a per-batch learning-rate
-- schedule changes the very batch that follows), and what the hooks receive:
-- self.model, self.params and Keras 2.2.4's batch logs.
-- Expected weights are SGD steps worked out in float64 in this file.
local keras = require "keras"
local L, C = keras.layers, keras.callbacks

local function near(want, got, tol, what)
  tol = tol or 1e-5
  if not (math.abs(got - want) <= tol * math.max(1, math.abs(want))) then
    error(string.format("%s is %.9g, expected %.9g", what or "value", got, want), 2)
  end
end

-- y = w x without bias, w starting at 0, mse, SGD with lr = 1 (a schedule
-- that failed to set lr before a batch would step with 1 and blow up)
local function linear(lr)
  local m = keras.Sequential{L.Dense{1, use_bias = false, kernel_initializer = "zeros", input_shape = {1}}}
  m:compile{optimizer = keras.optimizers.SGD{lr = lr or 1.0}, loss = "mse", metrics = {"mae"}}
  return m
end

local XS = {1, 2, 3, 4, 5, 6}
local function ys() local y = {} for i, x in ipairs(XS) do y[i] = 0.5 * x end return y end
local function column(list) local t = {} for i, v in ipairs(list) do t[i] = {v} end return keras.tensor(t) end

-- float64 SGD on mse for y = w x over batches of `bs` in order, lr_of(epoch, batch)
local function sgd_reference(epochs, bs, lr_of)
  local w, y = 0.0, ys()
  for e = 0, epochs - 1 do
    local b = 0
    for start = 1, #XS, bs do
      local last = math.min(start + bs - 1, #XS)
      local n, g = last - start + 1, 0.0
      for i = start, last do g = g + 2 * (w * XS[i] - y[i]) * XS[i] end
      w = w - lr_of(e, b) * g / n
      b = b + 1
    end
  end
  return w
end

describe("keras.callbacks.Callback:extend", function()
  it("makes a class whose on_batch_begin sets the learning rate of the batch that follows", function()
    local Warmup = C.Callback:extend("Warmup")
    function Warmup:init(args) self.base = args[1] or args.base end
    function Warmup:on_batch_begin(batch)
      self.model.optimizer.lr = self.base * (batch + 1)
    end
    local m = linear(1.0)
    m:fit(column(XS), column(ys()), {epochs = 2, batch_size = 2, shuffle = false, verbose = 0,
                                     callbacks = {Warmup(0.01)}})
    local want = sgd_reference(2, 2, function(_, b) return 0.01 * (b + 1) end)
    near(want, m:get_weights()[1]:get(1, 1), 1e-5, "w")
    -- and the lr left behind is the last batch's
    near(0.03, m.optimizer.lr, 1e-6, "lr")
  end)

  it("takes its arguments in both call forms, as one table", function()
    local Cb = C.Callback:extend("Cb")
    function Cb:init(args) self.args = args end
    assert.same({1, 2, k = "v"}, Cb(1, 2, {k = "v"}).args)
    assert.same({1, 2, k = "v"}, Cb{1, 2, k = "v"}.args)
    assert.same({}, Cb().args)
  end)

  it("runs hooks in Keras's order with self.model, self.params and the batch logs", function()
    local Rec = C.Callback:extend("Rec")
    function Rec:init() self.events = {} end
    local function rec(name)
      return function(self, i, logs)
        local copy = {}
        for k, v in pairs(logs or {}) do copy[k] = v end
        self.events[#self.events + 1] = {name, i, copy}
      end
    end
    for _, h in ipairs{"on_train_begin", "on_train_end", "on_epoch_begin", "on_epoch_end",
                       "on_batch_begin", "on_batch_end"} do Rec[h] = rec(h) end
    local cb = Rec()
    local m = linear(0.0)
    m:fit(column(XS), column(ys()), {epochs = 1, batch_size = 4, shuffle = false, verbose = 0, callbacks = {cb}})
    assert.equal(m, cb.model)
    assert.same({batch_size = 4, epochs = 1, samples = 6, verbose = 0, do_validation = false,
                 metrics = {"loss", "mean_absolute_error"}}, cb.params)
    local names = {}
    for i, e in ipairs(cb.events) do names[i] = e[1] .. (type(e[2]) == "number" and (" " .. e[2]) or "") end
    assert.same({"on_train_begin", "on_epoch_begin 0", "on_batch_begin 0", "on_batch_end 0",
                 "on_batch_begin 1", "on_batch_end 1", "on_epoch_end 0", "on_train_end"}, names)
    -- on_batch_begin gets {batch, size}; on_batch_end the same keys with the batch's loss and metrics
    assert.same({batch = 0, size = 4}, cb.events[3][3])
    assert.same({batch = 1, size = 2}, cb.events[5][3])
    local e = cb.events[4][3]
    assert.same({"batch", "loss", "mean_absolute_error", "size"},
                (function() local k = {} for n in pairs(e) do k[#k + 1] = n end table.sort(k) return k end)())
    -- w = 0 (lr 0): the loss of batch 1 (x = 1..4, y = x/2) is mean((x/2)^2), the mae mean(x/2)
    near((0.25 + 1 + 2.25 + 4) / 4, e.loss, 1e-6, "loss")
    near((0.5 + 1 + 1.5 + 2) / 4, e.mean_absolute_error, 1e-6, "mae")
    assert.same({batch = 0, size = 4}, {batch = e.batch, size = e.size})
  end)

  it("subclasses a subclass, whose hooks can call the parent's", function()
    local calls = {}
    local A = C.Callback:extend("A")
    function A:on_epoch_end(epoch) calls[#calls + 1] = "A" .. epoch end
    local B = A:extend("B")
    function B:on_epoch_end(epoch, logs)
      A.on_epoch_end(self, epoch, logs)
      C.Callback.on_epoch_end(self, epoch, logs)   -- the base's hooks do nothing
      calls[#calls + 1] = "B" .. epoch
    end
    linear(0):fit(column(XS), column(ys()), {epochs = 2, verbose = 0, callbacks = {B()}})
    assert.same({"A0", "B0", "A1", "B1"}, calls)
    assert.equal("B", B().class_name)
    assert.equal("<B callback>", tostring(B()))
    assert.equal("<Callback callback>", tostring(C.Callback()))
  end)

  it("leaves the batch loop without Lua calls unless a class defines on_batch_begin", function()
    local Quiet = C.Callback:extend("Quiet")
    function Quiet:on_epoch_end() end
    local r = C._runner({Quiet()}, linear(0), {})
    assert.is_false(r:wants_batch_begin())
    assert.is_false(r:wants_batches())
    local Loud = Quiet:extend("Loud")
    function Loud:on_batch_begin() end
    assert.is_true(C._runner({Loud()}, linear(0), {}):wants_batch_begin())
    assert.is_true(C._runner({{on_batch_begin = function() end}}, linear(0), {}):wants_batch_begin())
  end)

  it("reports an error raised in on_batch_begin and stops before that batch", function()
    local Bad = C.Callback:extend("Bad")
    function Bad:on_batch_begin(batch) if batch == 1 then error("no batch 1 today", 0) end end
    local m = linear(1.0)
    local ends = 0
    local ok, err = pcall(m.fit, m, column(XS), column(ys()), {epochs = 1, batch_size = 2, shuffle = false,
      verbose = 0, callbacks = {Bad(), {on_batch_end = function() ends = ends + 1 end}}})
    assert.is_false(ok)
    assert.matches("no batch 1 today", err, 1, true)
    assert.equal(1, ends)
    -- batch 0 ran with lr 1: w = 0 - 1 * 2/2 * ((0 - 0.5) * 1 + (0 - 1) * 2) = 2.5
    near(2.5, m:get_weights()[1]:get(1, 1), 1e-6, "w")
  end)

  it("is called the Keras way by LambdaCallback's on_batch_begin too", function()
    local m = linear(1.0)
    m:fit(column(XS), column(ys()), {epochs = 1, batch_size = 3, shuffle = false, verbose = 0,
      callbacks = {C.LambdaCallback{on_batch_begin = function(batch)
        m.optimizer.lr = batch == 0 and 0.02 or 0.005
      end}}})
    local want = sgd_reference(1, 3, function(_, b) return b == 0 and 0.02 or 0.005 end)
    near(want, m:get_weights()[1]:get(1, 1), 1e-5, "w")
  end)

  it("names what is wrong", function()
    assert.error_matches(function() C.Callback:extend() end,
      "Callback:extend: name must be a non-empty string, got nil", 1, true)
    assert.error_matches(function() C.Callback:extend("") end,
      "Callback:extend: name must be a non-empty string, got ''", 1, true)
    assert.error_matches(function() C.Callback.extend("X") end,
      "Callback:extend: call it as a method, Callback:extend(name)", 1, true)
    local Plain = C.Callback:extend("Plain")
    assert.error_matches(function() Plain(3) end,
      "Plain: takes no arguments (define Plain:init(args) to take them)", 1, true)
    assert.equal("Plain", Plain({}).class_name)
  end)
end)
