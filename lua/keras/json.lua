-- keras.json (private; keras.saving.json): Python's json.dumps formatting,
-- a strict decoder for untrusted text. Objects keep their key order (Keras's
-- configs are written in Keras's order) and empty tables remember whether
-- they are arrays, beside the tables: json.object, json.array, json.set,
-- json.keys. null is keras.None. Moved here from saving.lua.
local util = require("keras.util")
local NULL = util.None
local is_tensor = util.is_tensor

local json = {null = NULL}

-- key order of objects and the kind of empty tables, kept beside the tables
-- (option tables must stay metatable-free: layer constructors check that)
local ORDER = setmetatable({}, {__mode = "k"})
local ARRAYS = setmetatable({}, {__mode = "k"})

-- json.object("a", 1, "b", 2): an object written with its keys in this order
function json.object(...)
  local t, keys = {}, {}
  for i = 1, select("#", ...), 2 do
    local k, v = select(i, ...)
    keys[#keys + 1] = k
    if v == nil then v = NULL end
    t[k] = v
  end
  ORDER[t] = keys
  return t
end

-- a table written as an array even when empty
function json.array(t)
  t = t or {}
  ARRAYS[t] = true
  return t
end

-- set key k of an ordered object (appended to the order when new)
local function oset(t, k, v)
  if v == nil then v = NULL end
  local keys = ORDER[t]
  if not keys then keys = {}; ORDER[t] = keys end
  if t[k] == nil then keys[#keys + 1] = k end
  t[k] = v
end
json.set = oset

-- Python's repr of a float: the shortest digits that read back, fixed
-- notation for exponents -4..15, else d.ddde+XX
local function pyfloat(v)
  if v ~= v then return "nan" end
  if v == math.huge then return "inf" end
  if v == -math.huge then return "-inf" end
  if v == 0 then return (1 / v < 0) and "-0.0" or "0.0" end
  local s
  for p = 0, 16 do
    s = string.format("%." .. p .. "e", v)
    if tonumber(s) == v then break end
  end
  local sign, d1, rest, exp = s:match("^(%-?)(%d)%.?(%d*)e([-+]%d+)$")
  local digits = (d1 .. rest):gsub("0+$", "")
  if digits == "" then digits = "0" end
  exp = tonumber(exp)
  if exp >= -4 and exp < 16 then
    if exp >= 0 then
      local ip = digits:sub(1, exp + 1)
      ip = ip .. string.rep("0", exp + 1 - #ip)
      local fp = digits:sub(exp + 2)
      return sign .. ip .. "." .. (fp == "" and "0" or fp)
    end
    return sign .. "0." .. string.rep("0", -exp - 1) .. digits
  end
  local m = digits:sub(1, 1) .. (#digits > 1 and ("." .. digits:sub(2)) or "")
  return string.format("%s%se%s%02d", sign, m, exp < 0 and "-" or "+", math.abs(exp))
end
json._pyfloat = pyfloat

local ESC = {['"'] = '\\"', ['\\'] = '\\\\', ['\b'] = '\\b', ['\f'] = '\\f', ['\n'] = '\\n', ['\r'] = '\\r',
             ['\t'] = '\\t'}

-- as Python's json.dumps (ensure_ascii): non-ASCII as \uXXXX escapes
local function enc_string(s)
  if not s:find('[%z\1-\31"\\\128-\255]') then return '"' .. s .. '"' end
  if utf8.len(s) then
    local out = {}
    for _, c in utf8.codes(s) do
      if c < 32 or c == 34 or c == 92 then
        local ch = string.char(c)
        out[#out + 1] = ESC[ch] or string.format("\\u%04x", c)
      elseif c < 128 then
        out[#out + 1] = string.char(c)
      elseif c < 0x10000 then
        out[#out + 1] = string.format("\\u%04x", c)
      else
        c = c - 0x10000
        out[#out + 1] = string.format("\\u%04x\\u%04x", 0xD800 + (c >> 10), 0xDC00 + (c & 0x3FF))
      end
    end
    return '"' .. table.concat(out) .. '"'
  end
  -- not UTF-8: the bytes as they are, with JSON's escapes
  return '"' .. s:gsub('[%z\1-\31"\\]', function(c) return ESC[c] or string.format("\\u%04x", c:byte()) end) .. '"'
end

local function array_length(t)
  if ARRAYS[t] then return #t end
  if ORDER[t] then return nil end
  local n = #t
  if n == 0 then return next(t) == nil and 0 or nil end
  local count = 0
  for k in pairs(t) do
    if math.type(k) ~= "integer" or k < 1 or k > n then return nil end
    count = count + 1
  end
  return count == n and n or nil
end

local function encode(v, out, opt, depth, path)
  local tv = type(v)
  if v == nil or v == NULL then
    out[#out + 1] = "null"
  elseif tv == "boolean" then
    out[#out + 1] = v and "true" or "false"
  elseif tv == "number" then
    if math.type(v) == "integer" then out[#out + 1] = string.format("%d", v)
    elseif v ~= v then out[#out + 1] = "NaN"
    elseif v == math.huge then out[#out + 1] = "Infinity"
    elseif v == -math.huge then out[#out + 1] = "-Infinity"
    else out[#out + 1] = pyfloat(v) end
  elseif tv == "string" then
    out[#out + 1] = enc_string(v)
  elseif tv == "table" and getmetatable(v) == nil then
    if depth > 100 then error(string.format("JSON: nesting deeper than 100 at %s (a cycle?)", path), 0) end
    local nl, ind, ind2 = "", "", ""
    if opt.indent then
      nl = "\n"
      ind = string.rep(" ", opt.indent * depth)
      ind2 = string.rep(" ", opt.indent * (depth + 1))
    end
    local n = array_length(v)
    if n then
      if n == 0 then out[#out + 1] = "[]"; return end
      out[#out + 1] = "[" .. nl
      for i = 1, n do
        if i > 1 then out[#out + 1] = opt.item .. nl end
        out[#out + 1] = ind2
        encode(v[i], out, opt, depth + 1, path .. "[" .. i .. "]")
      end
      out[#out + 1] = nl .. ind .. "]"
    else
      local keys = {}
      local seen = {}
      for _, k in ipairs(ORDER[v] or {}) do
        if v[k] ~= nil and not seen[k] then keys[#keys + 1] = k; seen[k] = true end
      end
      local extra = {}
      for k in pairs(v) do
        if not seen[k] then
          if type(k) ~= "string" then
            error(string.format("JSON: %s has a key that is not a string (%s)", path, tostring(k)), 0)
          end
          extra[#extra + 1] = k
        end
      end
      table.sort(extra)
      for _, k in ipairs(extra) do keys[#keys + 1] = k end
      if #keys == 0 then out[#out + 1] = "{}"; return end
      out[#out + 1] = "{" .. nl
      for i, k in ipairs(keys) do
        if i > 1 then out[#out + 1] = opt.item .. nl end
        out[#out + 1] = ind2 .. enc_string(k) .. opt.key
        encode(v[k], out, opt, depth + 1, path .. "." .. k)
      end
      out[#out + 1] = nl .. ind .. "}"
    end
  else
    local what = tv == "table" and (getmetatable(v).__name or "table with a metatable") or tv
    if is_tensor(v) then what = "tensor" end
    error(string.format("JSON: cannot write a %s (at %s)", what, path), 0)
  end
end

-- json.encode(v [, {indent = n, compact = true}]): Python's json.dumps
-- layout: ", " and ": " (or "," with indent; "," and ":" when compact)
function json.encode(v, o)
  o = o or {}
  local opt = {indent = o.indent, item = (o.compact or o.indent) and "," or ", ", key = o.compact and ":" or ": "}
  local out = {}
  encode(v, out, opt, 0, "$")
  return table.concat(out)
end

-- json.decode(s): objects and arrays as tables (key order remembered), null
-- as keras.None; NaN, Infinity and -Infinity accepted as Python writes them.
-- Errors name the position: "JSON: expected ':' at position 12".
local MAX_DEPTH = 200

function json.decode(s)
  if type(s) ~= "string" then error("JSON: expected a string, got " .. type(s), 0) end
  local pos, n = 1, #s
  local function fail(msg, at) error(string.format("JSON: %s at position %d", msg, at or pos), 0) end
  local function ws()
    pos = s:find("[^ \t\r\n]", pos) or n + 1
  end
  local value
  local function str()
    local parts = {}
    local start = pos
    pos = pos + 1
    while true do
      local a = s:find('[%z\1-\31"\\]', pos)
      if not a then fail("unterminated string starting", start) end
      if a > pos then parts[#parts + 1] = s:sub(pos, a - 1) end
      local c = s:byte(a)
      if c == 34 then
        pos = a + 1
        return table.concat(parts)
      elseif c == 92 then
        local e = s:sub(a + 1, a + 1)
        local simple = ({['"'] = '"', ['\\'] = '\\', ['/'] = '/', b = '\b', f = '\f', n = '\n', r = '\r', t = '\t'})[e]
        if simple then
          parts[#parts + 1] = simple
          pos = a + 2
        elseif e == "u" then
          local hex = s:match("^%x%x%x%x", a + 2)
          if not hex then fail("bad \\u escape", a) end
          local cp = tonumber(hex, 16)
          pos = a + 6
          if cp >= 0xD800 and cp <= 0xDBFF then
            local lo = s:match("^\\u(%x%x%x%x)", pos)
            local l = lo and tonumber(lo, 16)
            if l and l >= 0xDC00 and l <= 0xDFFF then
              cp = 0x10000 + ((cp - 0xD800) << 10) + (l - 0xDC00)
              pos = pos + 6
            end
          end
          parts[#parts + 1] = utf8.char(cp)
        else
          fail("bad escape in a string", a)
        end
      else
        fail("control character in a string", a)
      end
    end
  end
  local function num()
    local a, b = s:find("^-?%d+", pos)
    if not a then fail("bad number") end
    local int = s:sub(a, b)
    if int:match("^-?0%d") then fail("bad number (leading zero)") end
    local isfloat = false
    local c, d = s:find("^%.%d+", b + 1)
    if c then b, isfloat = d, true elseif s:sub(b + 1, b + 1) == "." then fail("bad number", b + 1) end
    c, d = s:find("^[eE][-+]?%d+", b + 1)
    if c then b, isfloat = d, true elseif s:find("^[eE]", b + 1) then fail("bad number", b + 1) end
    local text = s:sub(a, b)
    pos = b + 1
    local v = tonumber(text)
    if not isfloat then return math.tointeger(v) or v end
    return v + 0.0
  end
  local LITERALS = {{"true", true}, {"false", false}, {"null", NULL}, {"NaN", 0 / 0}, {"Infinity", math.huge},
                    {"-Infinity", -math.huge}}
  function value(depth)
    ws()
    if pos > n then fail("unexpected end of text") end
    local c = s:sub(pos, pos)
    if c == "{" then
      if depth >= MAX_DEPTH then fail("nesting deeper than " .. MAX_DEPTH) end
      pos = pos + 1
      local t, keys = {}, {}
      ORDER[t] = keys
      ws()
      if s:sub(pos, pos) == "}" then pos = pos + 1; return t end
      while true do
        ws()
        if s:sub(pos, pos) ~= '"' then fail("expected a string key") end
        local k = str()
        ws()
        if s:sub(pos, pos) ~= ":" then fail("expected ':'") end
        pos = pos + 1
        local v = value(depth + 1)
        if t[k] == nil then keys[#keys + 1] = k end
        t[k] = v
        ws()
        local sep = s:sub(pos, pos)
        pos = pos + 1
        if sep == "}" then return t end
        if sep ~= "," then fail("expected ',' or '}'", pos - 1) end
      end
    elseif c == "[" then
      if depth >= MAX_DEPTH then fail("nesting deeper than " .. MAX_DEPTH) end
      pos = pos + 1
      local t = {}
      ARRAYS[t] = true
      ws()
      if s:sub(pos, pos) == "]" then pos = pos + 1; return t end
      while true do
        t[#t + 1] = value(depth + 1)
        ws()
        local sep = s:sub(pos, pos)
        pos = pos + 1
        if sep == "]" then return t end
        if sep ~= "," then fail("expected ',' or ']'", pos - 1) end
      end
    elseif c == '"' then
      return str()
    elseif c == "-" or c:match("%d") then
      if s:sub(pos, pos + 8) == "-Infinity" then pos = pos + 9; return -math.huge end
      return num()
    else
      for _, lit in ipairs(LITERALS) do
        if s:sub(pos, pos + #lit[1] - 1) == lit[1] then
          pos = pos + #lit[1]
          return lit[2]
        end
      end
      fail("unexpected character '" .. (c:match("[%g ]") and c or string.format("\\x%02x", c:byte())) .. "'")
    end
  end
  local v = value(0)
  ws()
  if pos <= n then fail("trailing characters after the JSON value") end
  return v
end

-- the key order an object was decoded or built with
function json.keys(t) return ORDER[t] end

-- whether t was built or decoded as an array (json.array), and t's length
-- when it has only array entries (nil otherwise)
function json._is_array(t) return ARRAYS[t] == true end
json._array_length = array_length

return json
