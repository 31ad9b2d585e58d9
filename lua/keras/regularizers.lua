-- keras.regularizers: l1, l2, l1_l2 and the class L1L2. A regularizer called
-- on a weight node gives the symbolic penalty sum(l1*|w|) + sum(l2*w^2) (no
-- 1/2, as Keras). Keras 2.2.4's defaults: L1L2(l1=0., l2=0.) but
-- l1(l=0.01), l2(l=0.01), l1_l2(l1=0.01, l2=0.01).
local K = ...

local R = {}

local function make(l1, l2, who, level)
  for _, v in ipairs{{"l1", l1}, {"l2", l2}} do
    local x = v[2]
    if type(x) ~= "number" or x ~= x or x < 0 or x == math.huge then
      error(string.format("%s: %s must be a number >= 0, got %s", who, v[1], tostring(x)), level + 1)
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

-- both call forms: f(a, b), f(a, {b = ...}), f{a, b = ...}; names are the
-- Keras argument names in order, defaults the Keras defaults
local function args(who, names, defaults, level, ...)
  local n = select("#", ...)
  local vals = {}
  local opts
  local last = select(n > 0 and n or 1, ...)
  if n > 0 and type(last) == "table" and getmetatable(last) == nil then
    opts = last
    n = n - 1
  end
  if n > #names then
    error(string.format("%s: takes at most %d arguments (%s), got %d", who, #names,
      table.concat(names, ", "), n), level + 1)
  end
  for i = 1, n do vals[names[i]] = (select(i, ...)) end
  if opts then
    for k, v in pairs(opts) do
      local name = math.type(k) == "integer" and names[k] or k
      local known = false
      for _, nm in ipairs(names) do known = known or nm == name end
      if not known then
        error(string.format("%s: unknown argument '%s' (takes %s)", who, tostring(k), table.concat(names, ", ")),
          level + 1)
      end
      if vals[name] ~= nil then
        error(string.format("%s: got multiple values for argument '%s'", who, name), level + 1)
      end
      vals[name] = v
    end
  end
  local out = {}
  for i, nm in ipairs(names) do
    local v = vals[nm]
    if v == nil then v = defaults[i] end
    out[i] = v
  end
  return table.unpack(out, 1, #names)
end

function R.l1(...)
  local l = args("l1", {"l"}, {0.01}, 2, ...)
  return make(l, 0, "l1", 2)
end
function R.l2(...)
  local l = args("l2", {"l"}, {0.01}, 2, ...)
  return make(0, l, "l2", 2)
end
function R.l1_l2(...)
  local a, b = args("l1_l2", {"l1", "l2"}, {0.01, 0.01}, 2, ...)
  return make(a, b, "l1_l2", 2)
end
function R.L1L2(...)
  local a, b = args("L1L2", {"l1", "l2"}, {0, 0}, 2, ...)
  return make(a, b, "L1L2", 2)
end

function R.get(x, who)
  if type(x) == "table" and x.class_name == "L1L2" then
    if getmetatable(x) then return x end
    return make(x.config.l1 or 0, x.config.l2 or 0, who or "regularizers", 2)
  end
  if type(x) == "string" and R[x] and x ~= "get" then return R[x]() end
  error(string.format("%s: unknown regularizer '%s'", who or "regularizers", tostring(x)), 3)
end

return R
