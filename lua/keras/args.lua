-- keras._args: Keras's call forms for every public constructor and method
-- (docs/signatures.md). One rule, in one place:
--   f(v1, v2, ..., {k = v, ...})   positional values in Keras's order, then an
--                                  optional options table
--   f{v1, v2, ..., k = v, ...}     one table whose array part holds the
--                                  positional values
-- A positional value may itself be a plain table (a shape, a kernel size, a
-- list of inputs, a table keyed by output names). The spec of each callable
-- says where that is possible, and parse reads a table there as a value:
--   tables[name] = true      a trailing table holding only array entries fills
--                            the positional slot `name` (Conv2D(32, {3, 3}))
--   tables[name] = "keyed"   so does one keyed only by names that are not
--                            arguments (compile("sgd", {out_a = "mse"}))
--   single(t)                true when a lone table argument is the first
--                            positional value, not the one-table form
--                            (Reshape({3, 4}), predict({xa, xb}))
-- and, for callables whose messages follow Python's wording (the optimizers):
--   twice = "got multiple values for argument '%s'"
--   too_many = "takes at most %d positional arguments (%s), got %d"
local keras = ...
local util = require("keras.util")
local is_plain = util.is_plain
local raise = util.raise
local K = keras.backend

local A = {None = K.None}

A.is_plain = is_plain

-- spec{who = "Dense", positional = {"units", ...}, allowed = set, common = set,
--      tables = {...}, single = fn}: keyword names are allowed, common and positional
function A.spec(s)
  local known = {}
  for k in pairs(s.allowed or {}) do known[k] = true end
  for k in pairs(s.common or {}) do known[k] = true end
  for _, k in ipairs(s.positional) do known[k] = true end
  s.known = known
  s.tables = s.tables or {}
  return s
end

-- whether t has a key naming an argument of s
local function names_argument(s, t)
  for k in pairs(t) do
    if type(k) == "string" and s.known[k] then return true end
  end
  return false
end

-- whether t holds array entries only (1..#t)
local function only_array(t)
  local n = #t
  for k in pairs(t) do
    if math.type(k) ~= "integer" or k < 1 or k > n then return false end
  end
  return true
end

-- a sequence of numbers and keras.None: a shape, a kernel size, axes
function A.number_list(t)
  if #t == 0 or not only_array(t) then return false end
  for _, v in ipairs(t) do
    if type(v) ~= "number" and v ~= K.None then return false end
  end
  return true
end

-- whether the trailing plain table t is the options table, for the slot `slot`
local function is_options(s, t, slot)
  if next(t) == nil or names_argument(s, t) then return true end
  local kind = slot and s.tables[slot]
  if not kind then return true end
  if only_array(t) then return false end
  return kind ~= "keyed"
end

-- parse(spec, ...) -> the arguments by name (a new table). Errors are raised
-- at the user's line (keras.util.raise).
function A.parse(s, ...)
  local who = s.who
  local function fail(fmt, ...)
    raise(string.format("%s: " .. fmt, who, ...))
  end
  local last = select("#", ...)
  while last > 0 and select(last, ...) == nil do last = last - 1 end   -- f(a, nil) is f(a)
  local o = {}
  local first = ...
  if last == 1 and is_plain(first) and not (s.single and s.single(first)) then
    for k, v in pairs(first) do o[k] = v end            -- f{v1, v2, k = v}
  else
    local tail = last >= 2 and select(last, ...) or nil
    if is_plain(tail) and is_options(s, tail, s.positional[last]) then
      for k, v in pairs(tail) do
        if math.type(k) == "integer" then fail("positional arguments go before the options table") end
        o[k] = v
      end
      last = last - 1
    end
    for i = 1, last do
      local v = select(i, ...)
      if is_plain(v) and i < last and names_argument(s, v) and not s.tables[s.positional[i]] then
        fail("the options table must be the last argument")
      end
      o[i] = v
    end
  end
  local np, most = #s.positional, 0
  for k in pairs(o) do
    if math.type(k) == "integer" and k > most then most = k end
  end
  if most > np then
    if np == 0 then fail("takes no positional arguments, got %d", most) end
    if s.too_many then fail(s.too_many, np, table.concat(s.positional, ", "), most) end
    fail("too many positional arguments")
  end
  for i = 1, most do
    local v = o[i]
    if v ~= nil then
      local name = s.positional[i]
      if o[name] ~= nil then fail(s.twice or "argument '%s' given twice", name) end
      o[name], o[i] = v, nil
    end
  end
  for k in pairs(o) do
    if math.type(k) == "integer" or not s.known[k] then fail("unknown argument '%s'", tostring(k)) end
  end
  return o
end

-- merge(who, _, ...) -> one table: the positional values in its array part,
-- the options by name, for callables whose parameters are not known in
-- advance (a custom layer's init receives this table, docs/custom_layers.md). A
-- trailing table is the options table unless it holds array entries only.
-- (the second argument, once an error level, is ignored: errors are raised at
-- the user's line)
function A.merge(who, _, ...)
  local last = select("#", ...)
  while last > 0 and select(last, ...) == nil do last = last - 1 end
  local o = {}
  local first = ...
  if last == 1 and is_plain(first) then
    for k, v in pairs(first) do o[k] = v end
    return o
  end
  local tail = last >= 1 and select(last, ...) or nil
  if is_plain(tail) and (next(tail) == nil or not only_array(tail)) then
    for k, v in pairs(tail) do
      if math.type(k) == "integer" then
        raise(string.format("%s: positional arguments go before the options table", who))
      end
      o[k] = v
    end
    last = last - 1
  end
  for i = 1, last do o[i] = select(i, ...) end
  return o
end

return A
