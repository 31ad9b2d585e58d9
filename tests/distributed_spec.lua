-- keras.distributed without mpirun: a world of size 1 where every call works
-- (the MPI runs are tests/dist/run.sh)
local keras = require("keras")
local dist = keras.distributed
local L = keras.layers

describe("keras.distributed in one process", function()
  it("is a world of size 1", function()
    assert.are.equal(dist, dist.init())
    assert.are.equal(1, dist.size())
    assert.are.equal(0, dist.rank())
    assert.are.equal(0, dist.local_rank())
    assert.are.equal(1, dist.local_size())
  end)

  it("allreduce, broadcast, allgather and barrier return the tensor's values", function()
    local t = keras.tensor{{1, 2}, {3, 4}}
    local r = dist.allreduce(t)
    assert.are.same({2, 2}, r.shape)
    assert.are.equal(4, r:get(2, 2))
    assert.are.equal(3, dist.allreduce(t, {average = false}):get(2, 1))
    assert.are.equal(2, dist.broadcast(t, 0):get(1, 2))
    assert.are.equal(1, dist.allgather(t):get(1, 1))
    assert.are.equal(2, dist.allgather(t).shape[1])
    assert.are.equal(6, dist.allreduce({5, 6}):get(2))
    dist.barrier()
  end)

  it("names the argument in its errors", function()
    assert.has_error(function() dist.broadcast(keras.tensor{1}, 1) end,
      "keras.distributed.broadcast: root must be a rank in [0, 1), got 1")
    assert.has_error(function() dist.allreduce("x") end,
      "keras.distributed.allreduce: expected a keras.Tensor or a table of numbers, got string")
    assert.has_error(function() dist.DistributedOptimizer(keras.optimizers.SGD(), {fusion_mb = 0}) end,
      "DistributedOptimizer: fusion_mb must be a number > 0, got 0")
    assert.has_error(function() dist.DistributedOptimizer(42) end,
      "DistributedOptimizer: expected a keras optimizer, got number")
    assert.has_error(function() dist.DistributedOptimizer(keras.optimizers.SGD(), {overlap = "yes"}) end,
      'DistributedOptimizer: overlap must be true, false or "auto", got yes')
    assert.has_error(function() dist.DistributedOptimizer(keras.optimizers.SGD(), {first_bucket_mb = -1}) end,
      "DistributedOptimizer: first_bucket_mb must be a number > 0, got -1")
    assert.has_error(function() dist.DistributedOptimizer(keras.optimizers.SGD(), {bucket_mb = 1}) end,
      "DistributedOptimizer: unknown option 'bucket_mb'")
  end)

  it("train_on_batch and fit_generator with a DistributedOptimizer train as without it (one process)", function()
    local function run(wrap, gen)
      keras.random.seed(11)
      local x = keras.random.normal({24, 4})
      local y = keras.random.normal({24, 1})
      local m = keras.Sequential{L.Dense(3, {input_shape = {4}, activation = "tanh"}), L.Dense(1)}
      local opt = keras.optimizers.RMSprop{lr = 0.01}
      if wrap then opt = dist.DistributedOptimizer(opt, {overlap = true}) end
      m:compile{optimizer = opt, loss = "mse"}
      local out = {}
      if gen then
        local i = 0
        local h = m:fit_generator(function()
          i = i % 3 + 1
          return x:slice(8 * i - 7, 8 * i), y:slice(8 * i - 7, 8 * i)
        end, {steps_per_epoch = 3, epochs = 2, verbose = 0})
        out = h.history.loss
      else
        for i = 1, 3 do out[i] = m:train_on_batch(x:slice(8 * i - 7, 8 * i), y:slice(8 * i - 7, 8 * i)) end
      end
      return out
    end
    assert.are.same(run(false, false), run(true, false))
    assert.are.same(run(false, true), run(true, true))
  end)

  it("a DistributedOptimizer keeps its optimizer's name and config and trains as it does", function()
    local function run(wrap)
      keras.random.seed(7)
      local x = keras.random.normal({40, 4})
      local y = keras.random.normal({40, 1})
      local m = keras.Sequential{L.Dense(3, {input_shape = {4}, activation = "tanh"}), L.Dense(1)}
      local opt = keras.optimizers.Adam{lr = 0.01}
      if wrap then opt = dist.DistributedOptimizer(opt, {fusion_mb = 1}) end
      m:compile{optimizer = opt, loss = "mse"}
      local h = m:fit(x, y, {batch_size = 8, epochs = 2, verbose = 0,
        callbacks = {dist.BroadcastGlobalVariablesCallback(0), dist.MetricAverageCallback(),
                     dist.LearningRateWarmupCallback{warmup_epochs = 1}}})
      return h.history.loss, m
    end
    local a = run(false)
    local b, m = run(true)
    assert.are.same(a, b)
    assert.truthy(tostring(m.optimizer):match("^Adam%("))
    assert.is_true(math.abs(keras.backend.get_value(m.optimizer.lr) - 0.01) < 1e-7)
    assert.are.equal(40, m:predict(keras.random.normal({40, 4})).shape[1])
  end)
end)
