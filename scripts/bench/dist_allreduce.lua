-- The allreduce bandwidth of this world (docs/distributed.md's scale model):
--   mpirun -np 2 lkeras scripts/bench/dist_allreduce.lua [--mca btl self,tcp before it for TCP]
-- For messages of 1, 4, 10 and 25 MB: the median of 20 allreduces, and the
-- bus bandwidth 2 (p - 1) / p x bytes / time (the ring algorithm's traffic).
local keras = require("keras")
local dist = keras.distributed
dist.init{threads = 1}
local now = keras._core.now
local p = dist.size()
for _, mb in ipairs{1, 4, 10, 25} do
  local n = math.floor(mb * 1048576 / 4)
  local t = keras.random.normal({n})
  dist.allreduce(t)   -- warm-up
  local times = {}
  for k = 1, 20 do
    dist.barrier()
    local t0 = now()
    dist.allreduce(t, {average = false})
    times[k] = now() - t0
  end
  table.sort(times)
  local med = (times[10] + times[11]) / 2
  if dist.rank() == 0 then
    print(string.format('JSON {"allreduce_mb": %g, "ranks": %d, "median_ms": %.3f, "bus_gb_per_s": %.3f}', mb, p,
      1000 * med, 2 * (p - 1) / p * mb * 1048576 / med / 1e9))
  end
end
