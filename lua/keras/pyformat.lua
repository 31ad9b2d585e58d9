-- keras.pyformat (private): Python's str.format, for ModelCheckpoint's file
-- names ("w.{epoch:02d}-{val_loss:.2f}.h5"). P.format is also
-- keras.saving.pyformat. Moved here from saving.lua.
local pyfloat = require("keras.json")._pyfloat

local P = {}

local function group3(digits)
  local out = digits:reverse():gsub("(%d%d%d)", "%1,"):reverse()
  return (out:gsub("^,", ""))
end

local function format_one(v, spec, name)
  local fill, align, rest = " ", nil, spec
  if #spec >= 2 and spec:sub(2, 2):match("[<>=^]") then
    fill, align, rest = spec:sub(1, 1), spec:sub(2, 2), spec:sub(3)
  elseif spec:sub(1, 1):match("[<>=^]") then
    align, rest = spec:sub(1, 1), spec:sub(2)
  end
  local sign, zero, width, comma, prec, typ =   -- ('#', the alternate form, is accepted and changes nothing)
    rest:match("^([-+ ]?)#?(0?)(%d*)(,?)(%.?%d*)([bcdeEfFgGnosxX%%]?)$")
  if not sign or prec == "." then error(string.format("Invalid format specifier '%s' for {%s}", spec, name), 0) end
  prec = prec ~= "" and tonumber(prec:sub(2)) or nil
  width = tonumber(width) or 0
  if zero == "0" and not align then fill, align = "0", "=" end
  local body, neg
  if type(v) == "number" then
    local isint = math.type(v) == "integer"
    if typ == "d" or typ == "n" then
      if not isint then error(string.format("Unknown format code 'd' for object of type 'float' (in {%s})", name),
        0) end
      neg, body = v < 0, string.format("%d", math.abs(v))
    elseif typ == "s" or typ == "c" or typ == "b" or typ == "o" or typ == "x" or typ == "X" then
      if typ == "s" then error(string.format("Unknown format code 's' for a number (in {%s})", name), 0) end
      if not isint then error(string.format("Unknown format code '%s' for object of type 'float' (in {%s})", typ,
        name), 0) end
      neg = v < 0
      local a = math.abs(v)
      if typ == "x" then body = string.format("%x", a) elseif typ == "X" then body = string.format("%X", a)
      elseif typ == "o" then body = string.format("%o", a)
      elseif typ == "c" then body = utf8.char(a)
      else
        local bits = {}
        repeat bits[#bits + 1] = tostring(a % 2); a = a // 2 until a == 0
        body = table.concat(bits):reverse()
      end
    else
      local x = v + 0.0
      neg = x < 0 or (x == 0 and 1 / x < 0)
      local a = math.abs(x)
      if a ~= a then body = "nan"
      elseif a == math.huge then body = "inf"
      elseif typ == "f" or typ == "F" then body = string.format("%." .. (prec or 6) .. "f", a)
      elseif typ == "e" or typ == "E" then body = string.format("%." .. (prec or 6) .. "e", a)
      elseif typ == "g" or typ == "G" then body = string.format("%." .. (prec or 6) .. "g", a)
      elseif typ == "%" then body = string.format("%." .. (prec or 6) .. "f", a * 100) .. "%"
      elseif isint and not prec then body = string.format("%d", math.abs(v))
      elseif prec then body = string.format("%." .. prec .. "g", a)
      else body = pyfloat(a) end
      if typ == "F" or typ == "E" or typ == "G" then body = body:upper() end
    end
    if comma == "," then
      local ip, restp = body:match("^(%d+)(.*)$")
      if ip then body = group3(ip) .. restp end
    end
    local sg = neg and "-" or (sign == "+" and "+" or (sign == " " and " " or ""))
    align = align or ">"
    local pad = width - utf8.len(sg .. body)
    if pad > 0 then
      if align == "=" then return sg .. string.rep(fill, pad) .. body end
      body = sg .. body
      if align == "<" then return body .. string.rep(fill, pad) end
      if align == "^" then return string.rep(fill, pad // 2) .. body .. string.rep(fill, pad - pad // 2) end
      return string.rep(fill, pad) .. body
    end
    return sg .. body
  end
  if typ ~= "" and typ ~= "s" then
    error(string.format("Unknown format code '%s' for object of type 'str' (in {%s})", typ, name), 0)
  end
  local s = tostring(v)
  if prec then s = s:sub(1, prec) end
  local pad = width - (utf8.len(s) or #s)
  if pad > 0 then
    align = align or "<"
    if align == ">" then return string.rep(fill, pad) .. s end
    if align == "^" then return string.rep(fill, pad // 2) .. s .. string.rep(fill, pad - pad // 2) end
    return s .. string.rep(fill, pad)
  end
  return s
end

-- P.format("w.{epoch:02d}-{val_loss:.2f}.h5", {epoch = 3, val_loss = 0.1234})
-- -> "w.03-0.12.h5"; {{ and }} are literal braces
function P.format(template, values)
  local out, i, n = {}, 1, #template
  while i <= n do
    local a = template:find("[{}]", i)
    if not a then out[#out + 1] = template:sub(i); break end
    out[#out + 1] = template:sub(i, a - 1)
    local c = template:sub(a, a)
    if template:sub(a + 1, a + 1) == c then
      out[#out + 1] = c
      i = a + 2
    elseif c == "}" then
      error("Single '}' encountered in format string", 0)
    else
      local b = template:find("}", a + 1, true)
      if not b then error("Single '{' encountered in format string", 0) end
      local field = template:sub(a + 1, b - 1)
      local name, conv, spec = field:match("^([^!:]*)(!?[rsa]?):?(.*)$")
      if not name or name == "" or name:find("[%.%[]") then
        error(string.format("unsupported replacement field {%s} (use {name} or {name:spec})", field), 0)
      end
      local v = values[name]
      if v == nil then
        local have = {}
        for k in pairs(values) do if type(k) == "string" then have[#have + 1] = k end end
        table.sort(have)
        error(string.format("{%s} is not available (available: %s)", name, table.concat(have, ", ")), 0)
      end
      if conv ~= "" then v = type(v) == "number" and math.type(v) == "float" and pyfloat(v) or tostring(v) end
      out[#out + 1] = format_one(v, spec, name)
      i = b + 1
    end
  end
  return table.concat(out)
end

return P
