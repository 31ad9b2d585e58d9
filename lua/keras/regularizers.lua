-- keras.regularizers: l1, l2, l1_l2 and the class L1L2. A regularizer called
-- on a weight node gives the symbolic penalty sum(l1*|w|) + sum(l2*w^2) (no
-- 1/2, as Keras). Keras 2.2.4's defaults: L1L2(l1=0., l2=0.) but
-- l1(l=0.01), l2(l=0.01), l1_l2(l1=0.01, l2=0.01).
local K, args = ...
local raise = require("keras.util").raise

local R = {}

local function make(l1, l2, who)
  for _, v in ipairs{{"l1", l1}, {"l2", l2}} do
    local x = v[2]
    if type(x) ~= "number" or x ~= x or x < 0 or x == math.huge then
      raise(string.format("%s: %s must be a number >= 0, got %s", who, v[1], tostring(x)))
    end
  end
  return setmetatable({class_name = "L1L2", config = {l1 = l1, l2 = l2}}, {__call = function(_, w)
    local p
    if l1 > 0 then p = K.mul(K.sum(K.abs(w)), l1) end
    if l2 > 0 then
      local q = K.mul(K.sum(K.square(w)), l2)
      p = p and K.add(p, q) or q
    end
    return K._number_if_scalar(p or K.mul(K.sum(w), 0))
  end})
end

-- Keras 2.2.4's positional order, then options, or one table (args.lua)
local function parse(who, positional, ...)
  local o = args.parse(args.spec{who = who, positional = positional}, ...)
  return o
end

-- l1(l = 0.01), l2(l = 0.01), l1_l2(l1 = 0.01, l2 = 0.01), L1L2(l1 = 0, l2 = 0)
function R.l1(...)
  local o = parse("l1", {"l"}, ...)
  return make(o.l or 0.01, 0, "l1")
end
function R.l2(...)
  local o = parse("l2", {"l"}, ...)
  return make(0, o.l or 0.01, "l2")
end
function R.l1_l2(...)
  local o = parse("l1_l2", {"l1", "l2"}, ...)
  return make(o.l1 or 0.01, o.l2 or 0.01, "l1_l2")
end
function R.L1L2(...)
  local o = parse("L1L2", {"l1", "l2"}, ...)
  return make(o.l1 or 0, o.l2 or 0, "L1L2")
end

function R.get(x, who)
  if type(x) == "table" and x.class_name == "L1L2" then
    if getmetatable(x) then return x end
    return make(x.config.l1 or 0, x.config.l2 or 0, who or "regularizers")
  end
  -- tf.keras 2.3 and later write l1(...) and l2(...) as the classes L1 and L2
  if type(x) == "table" and (x.class_name == "L1" or x.class_name == "L2") and not getmetatable(x) then
    local cfg = type(x.config) == "table" and x.config or {}
    local v = x.class_name == "L1" and cfg.l1 or cfg.l2
    if v == nil then v = 0.01 end
    return x.class_name == "L1" and make(v, 0, who or "regularizers") or make(0, v, who or "regularizers")
  end
  if type(x) == "string" and R[x] and x ~= "get" then return R[x]() end
  raise(string.format("%s: unknown regularizer '%s'", who or "regularizers", tostring(x)))
end

return R
