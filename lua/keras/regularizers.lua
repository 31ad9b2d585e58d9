-- keras.regularizers: l1, l2, l1_l2. A regularizer called on a weight node
-- gives the symbolic penalty sum(l1*|w|) + sum(l2*w^2) (no 1/2, as Keras).
local K = ...

local R = {}

local function make(l1, l2)
  if type(l1) ~= "number" or type(l2) ~= "number" or l1 < 0 or l2 < 0 then
    error("regularizers: l1 and l2 must be numbers >= 0", 3)
  end
  return setmetatable({class_name = "L1L2", config = {l1 = l1, l2 = l2}}, {__call = function(_, w)
    local p
    if l1 > 0 then p = K.mul(K.sum(K.abs(w)), l1) end
    if l2 > 0 then
      local q = K.mul(K.sum(K.square(w)), l2)
      p = p and K.add(p, q) or q
    end
    return p or K.mul(K.sum(w), 0)
  end})
end

function R.l1(l) return make(l or 0.01, 0) end
function R.l2(l) return make(0, l or 0.01) end
function R.l1_l2(a, b)
  if type(a) == "table" then return make(a.l1 or 0.01, a.l2 or 0.01) end
  return make(a or 0.01, b or 0.01)
end
R.L1L2 = R.l1_l2

function R.get(x, who)
  if type(x) == "table" and x.class_name == "L1L2" then
    if getmetatable(x) then return x end
    return make(x.config.l1 or 0, x.config.l2 or 0)
  end
  if type(x) == "string" and R[x] and x ~= "get" then return R[x]() end
  error(string.format("%s: unknown regularizer '%s'", who or "regularizers", tostring(x)), 3)
end

return R
