-- keras.layers: the merge layers Add, Subtract, Multiply, Average, Maximum,
-- Minimum, Concatenate and Dot, and their functions keras.layers.add & co
-- (Keras 2.2.4's arguments and output shapes).
local keras = ...
local util = require("keras.util")
local is_plain = util.is_plain
local core, K, layers = keras._core, keras.backend, keras.layers
local is_node = core.is_node
local define, shape_str, number_list = layers._define, layers._shape_str, layers._number_list

-- ---- merge layers ----

-- Keras 2.2.4: Add(**kwargs), ..., Concatenate(axis=-1), Dot(axes, normalize=False)
local MERGE_ARGS = {Concatenate = {"axis"}, Dot = {"axes", "normalize"}}

local function merge(name, fn, min_inputs)
  local args = MERGE_ARGS[name] or {}
  local cls = define(name, args, args, function(self, o)
    self.axis = o.axis
    self.axes = o.axes
    if name == "Dot" and is_plain(o.axes) and #o.axes == 1 then self.axes = o.axes[1] end
    self.normalize = o.normalize or false
  end, name == "Dot" and {single = number_list} or nil)
  function cls:call(xs)
    if is_node(xs) or #xs < (min_inputs or 2) then
      error(self:_msg("a merge layer should be called on a list of at least %d inputs", min_inputs or 2), 0)
    end
    return fn(self, xs)
  end
  -- concatenate({a, b}, axis, {name = ...}), concatenate{a, b, axis = 1}: the
  -- inputs, then the layer's own arguments
  local lower = name:sub(1, 1):lower() .. name:sub(2)
  layers[lower] = layers._api(function(list, ...)
    if is_plain(list) and not is_node(list) then
      local opts, ins = nil, {}
      for k, v in pairs(list) do
        if math.type(k) == "integer" then ins[k] = v else opts = opts or {}; opts[k] = v end
      end
      if opts then
        local n = select("#", ...)
        local extra = ...
        if n > 1 or (n == 1 and not (is_plain(extra) and next(extra) ~= nil and extra[1] == nil)) then
          error(string.format("%s: give the options in the list of inputs or after it, not both", lower), 0)
        end
        for k, v in pairs(extra or {}) do
          if opts[k] ~= nil then error(string.format("%s: argument '%s' given twice", lower, k), 0) end
          opts[k] = v
        end
        return cls(opts)(ins)
      end
      return cls(...)(ins)
    end
    return cls(...)(list)
  end)
  return cls
end

local function fold(xs, f)
  local acc = xs[1]
  for i = 2, #xs do acc = f(acc, xs[i]) end
  return acc
end

local function same_shapes(self, xs)
  local s0 = xs[1].shape
  for i = 2, #xs do
    local s = xs[i].shape
    local ok = #s == #s0
    for k = 2, #s do if s[k] ~= s0[k] then ok = false end end
    if not ok then
      error(self:_msg("Operands could not be broadcast together with shapes %s %s", shape_str(s0), shape_str(s)), 0)
    end
  end
end

merge("Add", function(self, xs) same_shapes(self, xs); return fold(xs, K.add) end)
merge("Subtract", function(self, xs)
  if #xs ~= 2 then error(self:_msg("a Subtract layer should be called on exactly 2 inputs"), 0) end
  same_shapes(self, xs)
  return K.sub(xs[1], xs[2])
end)
merge("Multiply", function(self, xs) same_shapes(self, xs); return fold(xs, K.mul) end)
merge("Average", function(self, xs) same_shapes(self, xs); return K.scale(fold(xs, K.add), 1 / #xs) end)
merge("Maximum", function(self, xs) same_shapes(self, xs); return fold(xs, K.maximum) end)
merge("Minimum", function(self, xs) same_shapes(self, xs); return fold(xs, K.minimum) end)
merge("Dot", function(self, xs)
  if #xs ~= 2 then error(self:_msg("a Dot layer should be called on exactly 2 inputs"), 0) end
  local a, b = xs[1], xs[2]
  local axes = self.axes
  if axes == nil then error(self:_msg("missing argument 'axes'"), 0) end
  if type(axes) == "number" then axes = {axes, axes} end
  local na, nb = #a.shape, #b.shape
  local a1 = axes[1] < 0 and axes[1] + na or axes[1]
  local a2 = axes[2] < 0 and axes[2] + nb or axes[2]
  if a.shape[a1 + 1] ~= b.shape[a2 + 1] then
    error(self:_msg("Dimension incompatibility %s != %s. Layer shapes: %s, %s", tostring(a.shape[a1 + 1]),
      tostring(b.shape[a2 + 1]), shape_str(a.shape), shape_str(b.shape)), 0)
  end
  if self.normalize then
    a, b = K.l2_normalize(a, a1), K.l2_normalize(b, a2)
  end
  return K.batch_dot(a, b, {a1, a2})
end)

local Concatenate = merge("Concatenate", function(self, xs)
  local axis = self.axis or -1
  local s0 = xs[1].shape
  local ax = axis < 0 and #s0 + axis or axis
  for i = 2, #xs do
    local s = xs[i].shape
    local ok = #s == #s0
    for k = 2, #s do if k - 1 ~= ax and s[k] ~= s0[k] then ok = false end end
    if not ok then
      error(self:_msg("A `Concatenate` layer requires inputs with matching shapes except for the concat axis. Got " ..
        "inputs shapes: %s, %s",
        shape_str(s0), shape_str(s)), 0)
    end
  end
  return K.concatenate(xs, axis)
end)
Concatenate._prefix = "concatenate"

-- ---- Keras 2.2.4's configs of this file's classes (layer_config.lua) ----

do
  local config = require("keras.layer_config")
  local REQ = config.REQ
  config.add({
    Add = {}, Subtract = {}, Multiply = {}, Average = {}, Maximum = {}, Minimum = {},
    Concatenate = {"axis", -1},
    Dot = {"axes", REQ, "normalize", false}
  })
end
