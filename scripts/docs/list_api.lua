-- list_api.lua -- every public name the keras module exports, one per line.
--
--   LUA_CPATH="build/?.so;;" lua5.4 scripts/docs/list_api.lua [--where]
--   build/lkeras scripts/docs/list_api.lua [--where]
--
-- Walks the keras table at run time: every key of keras and of its namespaces
-- (keras.layers, keras.backend, keras.preprocessing.text, ...) that does not
-- start with "_", then the methods and properties of the objects users hold:
-- models (model:fit), layers (layer:get_weights), tensors (t:sum), symbolic
-- tensors (x:meta), tokenizers and callbacks. Names a class inherits from its
-- parent are listed once, under the parent. docs/reference.md must mention
-- every name printed here (tests/docs_spec.lua checks it).
--
-- --where adds, for each function written in Lua, its parameters and the
-- file and line that define it (a help for whoever updates the reference).
--
-- As a module (require or dofile), it returns list(keras) -> a sorted list of
-- {name = "keras.layers.Dense", kind = "class" | "function" | "value" |
-- "method" | "property", where = "lua/keras/layers.lua:543" or nil,
-- params = "units, ..." or nil}.

local function is_callable(v)
  if type(v) == "function" then return true end
  local mt = getmetatable(v)
  return type(mt) == "table" and mt.__call ~= nil
end

-- a class: a table with a class_name, or a callable table with methods
local function is_class(v)
  return type(v) == "table" and (rawget(v, "class_name") ~= nil or rawget(v, "__index") ~= nil)
end

local function params_of(f)
  if type(f) ~= "function" then return nil end
  local info = debug.getinfo(f, "Su")
  if info.what ~= "Lua" then return nil end
  local ps = {}
  for i = 1, info.nparams do ps[i] = debug.getlocal(f, i) end
  if info.isvararg then ps[#ps + 1] = "..." end
  return table.concat(ps, ", "), info.short_src .. ":" .. info.linedefined
end

local function sorted_keys(t)
  local ks = {}
  for k in pairs(t) do
    if type(k) == "string" and k:sub(1, 1) ~= "_" then ks[#ks + 1] = k end
  end
  table.sort(ks)
  return ks
end

local function list(keras)
  local out, seen = {}, {}
  local function add(name, kind, v)
    local params, where = params_of(v)
    out[#out + 1] = {name = name, kind = kind, params = params, where = where}
  end

  -- namespaces: plain tables (keras.tensor is a callable one) reached from keras;
  -- keras.saving.layers is a registry keyed by class name, listed but not walked
  local function walk(t, prefix)
    if seen[t] then return end
    seen[t] = true
    for _, k in ipairs(sorted_keys(t)) do
      local v, name = t[k], prefix .. "." .. k
      if name == "keras.saving.layers" then
        add(name, "value")
      elseif is_class(v) then
        add(name, "class", v)
      elseif type(v) == "table" and getmetatable(v) == nil or v == keras.tensor then
        add(name, "namespace")
        walk(v, name)
      elseif is_callable(v) then
        add(name, "function", v)
      else
        add(name, "value")
      end
    end
  end
  walk(keras, "keras")

  -- methods and properties: own fields of a class table (not inherited)
  local function members(prefix, cls, getters)
    for _, k in ipairs(sorted_keys(cls)) do
      local v = rawget(cls, k)
      if type(v) == "function" and k ~= "class_name" then add(prefix .. ":" .. k, "method", v) end
    end
    if getters then
      for _, k in ipairs(sorted_keys(getters)) do add(prefix .. "." .. k, "property", rawget(getters, k)) end
    end
  end
  members("layer", keras.layers.Layer, rawget(keras.layers.Layer, "_getters"))
  members("model", keras.models.Model, rawget(keras.models.Model, "_getters"))
  members("sequential", keras.models.Sequential, nil)
  members("callback", keras.callbacks.Callback, nil)
  local tok = keras.preprocessing.text.Tokenizer_class
  if tok then members("tokenizer", tok, nil) end

  -- tensors and symbolic tensors: the methods tables of their metatables
  local tmt = getmetatable(keras.tensor{1})
  for _, k in ipairs(sorted_keys(tmt.methods)) do add("t:" .. k, "method", tmt.methods[k]) end
  local nmt = getmetatable(keras.Input{shape = {1}})
  for _, k in ipairs(sorted_keys(nmt.methods)) do add("x:" .. k, "method", nmt.methods[k]) end

  table.sort(out, function(a, b) return a.name < b.name end)
  return out
end

local running = arg ~= nil and type(arg[0]) == "string" and arg[0]:match("list_api%.lua$") ~= nil
if not running then return list end

local keras = rawget(_G, "keras") or require("keras")
local where = arg[1] == "--where"
for _, e in ipairs(list(keras)) do
  if where and e.where then
    print(string.format("%-48s %-9s (%s)  %s", e.name, e.kind, e.params, e.where))
  elseif where then
    print(string.format("%-48s %s", e.name, e.kind))
  else
    print(e.name)
  end
end
