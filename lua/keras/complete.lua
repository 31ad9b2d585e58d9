-- keras.complete: the candidates for Tab completion at the lkeras prompt
-- (src/lkeras.c asks through libedit), as Python's rlcompleter gives them.
--
--   complete("keras.lay")  -> {"keras.layers"}
--   complete("model:fi")   -> {"model:fit", ...}   methods only after ':'
--   complete("pri")        -> {"print"}            globals and keywords
--
-- The text before the last '.' or ':' must be a chain of names
-- (a.b.c); it is looked up from the globals, never run as code. The names
-- of a value are its own string keys, those reachable through its
-- metatable's __index chain (tables, and the class tables that layers and
-- models use), a layer's or model's getters, and the methods of tensors and
-- symbolic tensors. Names starting with '_' are offered only when the text
-- after the separator starts with '_'. Nothing here raises: a lookup that
-- fails gives no candidates.

local KEYWORDS = {"and", "break", "do", "else", "elseif", "end", "false", "for", "function", "goto", "if",
                  "in", "local", "nil", "not", "or", "repeat", "return", "then", "true", "until", "while"}

-- attributes that userdata compute in their __index function (tensors,
-- symbolic tensors); offered when reading them gives a value
local PROBES = {"shape", "ndim", "dtype", "op", "value", "id"}

local function is_name(s)
  return type(s) == "string" and s:match("^[%a_][%w_]*$") ~= nil
end

local KEYWORD_SET = {}
for _, k in ipairs(KEYWORDS) do KEYWORD_SET[k] = true end

local function callable(v)
  if type(v) == "function" then return true end
  local mt = getmetatable(v)
  return type(mt) == "table" and rawget(mt, "__call") ~= nil
end

-- name -> true (a method) / false (some other value) for every name of v
local function names_of(v)
  local out, seen = {}, {}
  local function add(k, val)
    if is_name(k) and not KEYWORD_SET[k] and out[k] == nil then out[k] = callable(val) end
  end
  local function add_raw(t, skip_meta)
    for k, val in next, t do
      if not (skip_meta and type(k) == "string" and k:sub(1, 2) == "__") then add(k, val) end
    end
  end
  -- the fields a class table (and its parents) lend their instances
  local function add_class(cls)
    local depth = 0
    while type(cls) == "table" and not seen[cls] and depth < 32 do
      seen[cls] = true
      depth = depth + 1
      add_raw(cls, true)
      local getters = rawget(cls, "_getters")
      local gdepth = 0
      while type(getters) == "table" and gdepth < 32 do   -- layer/model getters: attributes
        for k in next, getters do if is_name(k) and out[k] == nil then out[k] = false end end
        local gm = getmetatable(getters)
        getters = type(gm) == "table" and rawget(gm, "__index") or nil
        gdepth = gdepth + 1
      end
      local mt = getmetatable(cls)
      local idx = type(mt) == "table" and rawget(mt, "__index") or nil
      cls = type(idx) == "table" and idx or nil
    end
  end
  if type(v) == "table" then add_raw(v, false) end
  local mt = getmetatable(v)
  if type(mt) == "table" then
    local methods = rawget(mt, "methods")
    if type(methods) == "table" then      -- tensors and symbolic tensors
      add_raw(methods, false)
      for _, k in ipairs(PROBES) do
        local ok, val = pcall(function() return v[k] end)
        if ok and val ~= nil then add(k, val) end
      end
    else
      local idx = rawget(mt, "__index")
      if type(idx) == "table" then
        add_class(idx)
      elseif type(idx) == "function" then
        add_class(mt)                      -- layers and models: the class is the metatable
      end
    end
  end
  return out
end

-- the value a chain of names "a.b.c" leads to from env, or nil
local function lookup(env, chain)
  local v = env
  for part in (chain .. "."):gmatch("([^.]*)%.") do
    if not is_name(part) then return nil end
    local ok, nv = pcall(function() return v[part] end)
    if not ok or nv == nil then return nil end
    v = nv
  end
  return v
end

--- complete(text [, env]) -> sorted list of completions of text (each the
-- whole text completed), env being the globals by default
local function complete(text, env)
  env = env or _G
  if type(text) ~= "string" then return {} end
  local head, sep, partial = text:match("^(.*)([.:])([%w_]*)$")
  local out = {}
  local show_private = (partial or text):sub(1, 1) == "_"
  local function offer(prefix, name)
    if name:sub(1, #partial) == partial and (show_private or name:sub(1, 1) ~= "_") then
      out[#out + 1] = prefix .. name
    end
  end
  if head then
    if head == "" or head:find(":", 1, true) then return {} end
    local ok, v = pcall(lookup, env, head)
    if not ok or v == nil then return {} end
    local ok2, names = pcall(names_of, v)
    if not ok2 then return {} end
    for name, is_method in pairs(names) do
      if sep == "." or is_method then offer(head .. sep, name) end
    end
  else
    if not text:match("^[%w_]*$") then return {} end
    partial = text
    local ok, names = pcall(names_of, env)
    if ok then for name in pairs(names) do offer("", name) end end
    for _, k in ipairs(KEYWORDS) do offer("", k) end
  end
  table.sort(out)
  return out
end

return complete
