-- keras.backend.set_deterministic(true): no choice made by timing (the conv
-- autotuner, the packed GEMM's measurement), so separate processes running
-- the same script at different thread counts give the same floats, bit for
-- bit (within one process, determinism_spec.lua covers any thread count).
local keras = require "keras"
local K = keras.backend

local SCRIPT = [[
local keras = require "keras"
local K, L = keras.backend, keras.layers
K.set_deterministic(true)
keras.set_num_threads(%d)
keras.random.seed(11)
local m = keras.Sequential{
  L.Conv2D(8, 3, {activation = "relu", input_shape = {12, 12, 2}}),
  L.MaxPooling2D(2),
  L.Conv2D(8, 3, {activation = "relu", padding = "same"}),
  L.Flatten(),
  L.Dense(32, {activation = "relu"}),
  L.Dense(3, {activation = "softmax"}),
}
m:compile{optimizer = "adam", loss = "categorical_crossentropy"}
local x = keras.random.uniform({48, 12, 12, 2}, 0, 1, nil, 3)
local labels = {}
for i = 1, 48 do labels[i] = i %% 3 end
local y = keras.utils.to_categorical(keras.tensor(labels), 3)
local h = m:fit(x, y, {epochs = 2, batch_size = 16, verbose = 0, shuffle = false})
local out = {}
for _, v in ipairs(h.history.loss) do out[#out + 1] = string.format("%%a", v) end
for _, w in ipairs(m:get_weights()) do
  for _, v in ipairs(w:reshape{-1}:totable()) do out[#out + 1] = string.format("%%a", v) end
end
for _, v in ipairs(m:predict(x):reshape{-1}:totable()) do out[#out + 1] = string.format("%%a", v) end
io.write(table.concat(out, " "))
]]

local function run(threads)
  local path = os.tmpname()
  local f = assert(io.open(path, "w"))
  f:write(string.format(SCRIPT, threads))
  f:close()
  local p = io.popen("LUA_CPATH='build/?.so;;' lua5.4 " .. path .. " 2>&1")
  local s = p:read("a")
  p:close()
  os.remove(path)
  return s
end

describe("keras.backend.set_deterministic", function()
  it("turns off the measured choices, and back on", function()
    local was = K.get_deterministic()
    K.set_deterministic(true)
    assert.is_true(K.get_deterministic())
    assert.is_false(K.get_conv_autotune())
    K.set_conv_autotune(true)   -- a measured choice again: no longer deterministic
    assert.is_false(K.get_deterministic())
    K.set_deterministic(false)
    assert.is_false(K.get_deterministic())
    assert.is_true(K.get_conv_autotune())
    K.set_deterministic(was)
    assert.has_error(function() K.set_deterministic(1) end, "K.set_deterministic: expected a boolean, got number")
  end)

  it("gives the same floats in separate processes at 1, 2 and 3 threads", function()
    local a, b, c = run(1), run(2), run(3)
    assert.truthy(a:match("^%-?0x"), a:sub(1, 300))
    assert.is_true(#a > 1000)
    assert.equal(a, b)
    assert.equal(a, c)
  end)
end)
