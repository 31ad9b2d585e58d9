-- keras.util (private, not part of the user API): the helpers every part of
-- the Lua half shares, written once. init.lua loads it first, with the C
-- core, and leaves it in package.loaded, so a part reaches it with
-- `require "keras.util"` (in the lkeras host and in lua5.4 with keras.so).
local core = ...

local U = {}

-- Keras's None (an unknown dimension, JSON's null): keras.None, K.None
U.None = setmetatable({}, {__tostring = function() return "None" end, __name = "keras.None"})

function U.is_plain(t) return type(t) == "table" and getmetatable(t) == nil end

function U.is_tensor(x) return getmetatable(x) == core.Tensor end

function U.is_callable(f)
  if type(f) == "function" then return true end
  local mt = getmetatable(f)
  return type(mt) == "table" and mt.__call ~= nil
end

-- a caught error's message without its leading "file:line: "
function U.clean(msg)
  if type(msg) ~= "string" then return tostring(msg) end
  return (msg:gsub("^[^:\n]*:%d+: ", ""))
end

-- The one way the library raises an error a user caused: at the user's line,
-- the first caller outside the library (every part is compiled with the chunk
-- name "@lua/keras/<part>.lua", scripts/embed.lua), however deep inside the
-- library the check runs. A C function between the two (pcall, a host's
-- lua_call) ends the walk: the message then carries no position. A message
-- that already names a line of the library (the engine's, re-raised) loses
-- that position.
function U.raise(err)
  if type(err) ~= "string" then error(err, 0) end
  err = err:gsub("^lua/keras/[%w_]+%.lua:%d+: ", "")
  local level = 2
  while true do
    local info = debug.getinfo(level, "S")
    if not info then error(err, 0) end
    if info.what == "C" or info.source:sub(1, 11) ~= "@lua/keras/" then error(err, level) end
    level = level + 1
  end
end

-- Before a loader io.open's path: nil when it is a regular file (or missing:
-- io.open then says why), else "<who>: '<path>': not a regular file (a
-- fifo)". A stat, never an open: a FIFO or a device cannot hang the loader.
function U.not_regular(who, path)
  local kind = core.file_kind(path)
  if kind == nil or kind == "file" then return nil end
  if kind == "directory" then return string.format("%s: '%s': cannot open (Is a directory)", who, path) end
  return string.format("%s: '%s': not a regular file (a %s)", who, path, kind)
end

-- an optional boolean argument: nil gives the default, anything else its truth
function U.bool(v, default)
  if v == nil then return default end
  return not not v
end

-- the kernel_/bias_/activity_regularizer options of a layer
function U.regularizer(keras, who, r)
  if r == nil then return nil end
  if keras.regularizers then return keras.regularizers.get(r, who) end
  U.raise(who .. ": regularizers are not available")
end

-- the *_constraint options of a layer (keras.constraints.get)
function U.constraint(keras, who, c)
  if c == nil then return nil end
  if keras.constraints then return keras.constraints.get(c, who) end
  U.raise(who .. ": constraints are not available")
end

-- options this version refuses
function U.no_constraint(who, o, ...)
  for _, k in ipairs{...} do
    if o[k] ~= nil then U.raise(string.format("%s: %s is not supported by this version of lkeras", who, k)) end
  end
end

-- the name of a variable holding fn: a local of the frames first..last (levels
-- as debug.getinfo counts them in the function calling variable_name) that
-- keep(info) accepts (all when keep is nil), then an upvalue of those frames'
-- functions, then a global; nil when none holds it
function U.variable_name(fn, first, last, keep)
  first, last = first + 1, last + 1   -- this function's own frame
  for pass = 1, 2 do
    for lv = first, last do
      local info = debug.getinfo(lv, "Sf")
      if not info then break end
      if not keep or keep(info) then
        local i = 1
        while true do
          local name, v
          if pass == 1 then name, v = debug.getlocal(lv, i) else name, v = debug.getupvalue(info.func, i) end
          if name == nil then break end
          if v == fn and name:sub(1, 1) ~= "(" and name ~= "" and name ~= "_ENV" then return name end
          i = i + 1
        end
      end
    end
  end
  for k, v in pairs(_G) do
    if v == fn and type(k) == "string" then return k end
  end
  return nil
end

-- The parameters of a random draw (keras.random.*, K.random_*): kind
-- "normal" checks a finite mean a and a finite standard deviation b >= 0;
-- "uniform" finite bounds a <= b. names: what the caller calls a and b.
function U.check_random(who, kind, a, b, name_a, name_b)
  local function show(v) return v ~= v and "NaN" or tostring(v) end
  for _, p in ipairs{{name_a, a}, {name_b, b}} do
    local v = p[2]
    if type(v) ~= "number" then
      U.raise(string.format("%s: %s must be a number, got %s", who, p[1], type(v)))
    end
    if v ~= v or v == math.huge or v == -math.huge then
      U.raise(string.format("%s: %s must be a finite number, got %s", who, p[1], show(v)))
    end
  end
  if kind == "normal" and b < 0 then
    U.raise(string.format("%s: %s must be >= 0, got %s", who, name_b, show(b)))
  elseif kind == "uniform" and a > b then
    U.raise(string.format("%s: %s (%s) must be <= %s (%s)", who, name_a, show(a), name_b, show(b)))
  end
end

-- a set from a list of names
function U.set(list)
  local s = {}
  for _, k in ipairs(list) do s[k] = true end
  return s
end

return U
