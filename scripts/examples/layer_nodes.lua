-- The concept of layer "node": each call of a layer on a tensor adds a node.
-- With one node, layer.output is well defined; with several, ask by index.
local keras = keras or require "keras"
local L = keras.layers

local a = keras.Input{shape = {280, 256}}
local lstm = L.LSTM(32)
local encoded_a = lstm(a)
assert(lstm.output == encoded_a)
print("one node: lstm.output is encoded_a")

local b = keras.Input{shape = {280, 256}}
local encoded_b = lstm(b)
assert(lstm:get_output_at(1) == encoded_a)   -- node indices are 1-based, as Lua's
assert(lstm:get_output_at(2) == encoded_b)
local ok, err = pcall(function() return lstm.output end)
assert(not ok)
print("two nodes: " .. tostring(err))

-- shapes: the same for every node here, so input_shape is well defined
local c = keras.Input{shape = {32, 32, 3}}
local d = keras.Input{shape = {32, 32, 3}}
local conv = L.Conv2D{16, {3, 3}, padding = "same"}
local conved_c = conv(c)
local conved_d = conv(d)
print("conv input shape:", table.concat((function()
  local s = {}
  for i, v in ipairs(conv.input_shape) do s[i] = tostring(v) end
  return s
end)(), ", "))

-- different shapes: ask for each node's shape
local e = keras.Input{shape = {64, 64, 3}}
local conved_e = conv(e)
assert(conv:get_input_shape_at(1)[2] == 32 and conv:get_input_shape_at(3)[2] == 64)
print("node 3 input shape: (None, 64, 64, 3)")
assert(conved_c and conved_d and conved_e)
