-- Issue 17, the engine's findings: tensor memory seen by Lua's collector, a
-- failed plan allocation that does not stick, NaN through the max-like ops,
-- integer labels compared as integers, model building in O(layers), argument
-- checks of the random functions, and the smaller error-reporting items.
local keras = require "keras"
local K = keras.backend -- luacheck: ignore
local L = keras.layers -- luacheck: ignore

-- Runs `body` (Lua source, with `keras` loaded) in a child lua5.4 on the
-- normal build and returns its output. The child reads its peak RSS with
-- hwm() (KB) and stops by itself past `stop_mb` of RSS, so that a regression
-- cannot take the machine's memory.
local function child(body, stop_mb)
  local path = os.tmpname()
  local f = assert(io.open(path, "w"))
  f:write(string.format([[
package.cpath = "build/?.so;" .. package.cpath
local keras = require("keras")
local function status(key)
  for l in io.lines("/proc/self/status") do
    local v = l:match("^" .. key .. ":%%s*(%%d+)")
    if v then return tonumber(v) end
  end
end
local function hwm() return status("VmHWM") end
local function guard()
  if status("VmRSS") > %d * 1024 then print("RSS over %d MB") os.exit(1) end
end
]], stop_mb, stop_mb))
  f:write(body)
  f:close()
  local p = assert(io.popen("lua5.4 " .. path .. " 2>&1"))
  local out = p:read("a")
  p:close()
  os.remove(path)
  return out
end

describe("tensor memory seen by Lua's collector", function()
  it("200 garbage 4 MB tensors keep the peak RSS at tens of MB", function()
    local out = child([[
for i = 1, 200 do
  local t = keras.tensor.zeros{1000, 1000} + 1
  guard()
end
print("peak", hwm())
]], 600)
    local kb = tonumber(out:match("peak%s+(%d+)"))
    assert(kb, out)
    assert(kb < 150 * 1024, "peak RSS " .. kb .. " KB")
  end)

  it("150 predicts with 4 MB outputs keep the peak RSS at tens of MB", function()
    local out = child([[
local m = keras.models.Sequential()
m:add(keras.layers.Dense{1000, input_shape = {4}})
m:compile{optimizer = "sgd", loss = "mse"}
local x = keras.tensor.zeros{1000, 4}
for i = 1, 150 do
  local y = m:predict(x, {batch_size = 1000})
  guard()
end
print("peak", hwm())
]], 600)
    local kb = tonumber(out:match("peak%s+(%d+)"))
    assert(kb, out)
    assert(kb < 150 * 1024, "peak RSS " .. kb .. " KB")
  end)

  it("a stopped collector stays stopped", function()
    local out = child([[
collectgarbage("stop")
local n0 = collectgarbage("count")
for i = 1, 20 do local t = keras.tensor.zeros{100, 100} + 1 end
print("running", collectgarbage("isrunning"), collectgarbage("count") > n0)
]], 600)
    assert.equal("running\tfalse\ttrue\n", out)
  end)
end)
