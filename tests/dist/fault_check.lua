-- fault_check.lua: rank 1 raises while the others wait in a collective; the
-- job must end (mpirun exits nonzero) with keras.distributed's message
-- instead of waiting for ever. tests/dist/run.sh times it.
local keras = require("keras")
local dist = keras.distributed
dist.init()
if dist.rank() == 1 then error("rank 1 fails on purpose") end
dist.barrier()
dist.allreduce(keras.tensor{1, 2, 3})
print("rank " .. dist.rank() .. " should not get here")
