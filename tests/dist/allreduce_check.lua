-- allreduce_check.lua: the collectives on this world are exact: each rank
-- builds every rank's seeded tensor (values k/64, so that any order of the
-- float sum is exact) and checks allreduce (sum and average), broadcast and
-- allgather against its own float64 sums. Prints "ok" on every rank.
local keras = require("keras")
local dist = keras.distributed
dist.init()
local size, rank = dist.size(), dist.rank()
local n = 100003
local function seeded(r)
  keras.random.seed(1000 + r)
  return keras.random.randint(-4096, 4096, {n}) / 64
end
local mine = seeded(rank)
local all = {}
for r = 0, size - 1 do all[r] = seeded(r) end
local sum = dist.allreduce(mine, {average = false})
local avg = dist.allreduce(mine)
local bad = 0
for i = 1, n, 7 do
  local s = 0
  for r = 0, size - 1 do s = s + all[r]:get(i) end
  if sum:get(i) ~= s then bad = bad + 1 end
  local want = s / size
  if math.abs(avg:get(i) - want) > 1e-6 * math.abs(want) then bad = bad + 1 end
end
assert(bad == 0, string.format("rank %d: %d allreduce values differ from the float64 sums", rank, bad))
local b = dist.broadcast(mine, size - 1)
for i = 1, n, 101 do assert(b:get(i) == all[size - 1]:get(i), "broadcast differs") end
local g = dist.allgather(mine:reshape{n, 1}:slice(1, rank + 1))
assert(g.shape[1] == size * (size + 1) // 2, "allgather: wrong row count " .. g.shape[1])
local at = 1
for r = 0, size - 1 do
  for i = 1, r + 1 do
    assert(g:get(at, 1) == all[r]:get(i), "allgather differs"); at = at + 1
  end
end
dist.barrier()
print("ok rank " .. rank .. " of " .. size)
