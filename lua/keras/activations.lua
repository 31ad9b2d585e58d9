-- keras.activations: activation functions by name (Keras 2.2.4), each a
-- function of K ops, so they work on symbolic and concrete tensors alike.
local K = ...
local raise = require("keras.util").raise

local A = {}

function A.linear(x) return x end
function A.relu(x, alpha, max_value) return K.relu(x, alpha, max_value) end
function A.sigmoid(x) return K.sigmoid(x) end
function A.hard_sigmoid(x) return K.hard_sigmoid(x) end
function A.tanh(x) return K.tanh(x) end
function A.elu(x, alpha) return K.elu(x, alpha or 1.0) end
function A.selu(x) return K.selu(x) end
function A.softplus(x) return K.softplus(x) end
function A.softsign(x) return K.softsign(x) end
function A.exponential(x) return K.exp(x) end

function A.softmax(x, axis)
  if K.ndim(x) < 2 and not axis then
    raise("Cannot apply softmax to a tensor that is 1D")
  end
  return K.softmax(x, axis or -1)
end

local names = {}
for k in pairs(A) do names[#names + 1] = k end
table.sort(names)

-- a name, a Lua function or nil (linear) -> function, name
function A.get(x, who)
  if x == nil then return A.linear, "linear" end
  if type(x) == "function" then return x, "custom" end
  if type(x) == "string" then
    local f = A[x]
    if f and x ~= "get" then return f, x end
    raise(string.format("%sunknown activation '%s' (expected one of: %s)", who and (who .. ": ") or "",
      x, table.concat(names, ", ")))
  end
  raise(string.format("%sactivation must be a name or a function, got %s", who and (who .. ": ") or "", type(x)))
end

return A
