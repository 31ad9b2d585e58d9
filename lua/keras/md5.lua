-- keras.md5: the MD5 digest of a string (RFC 1321), as a 32-digit lowercase
-- hex string. keras.preprocessing.text.hashing_trick uses it for Keras's
-- hash_function='md5' (int(md5(w.encode()).hexdigest(), 16)). Plain Lua 5.4
-- integer arithmetic, masked to 32 bits.
local raise = require("keras.util").raise
local M = {}

local MASK = 0xffffffff

-- per-round shift amounts and the constants floor(abs(sin(i + 1)) * 2^32)
local S = {7, 12, 17, 22, 7, 12, 17, 22, 7, 12, 17, 22, 7, 12, 17, 22,
           5, 9, 14, 20, 5, 9, 14, 20, 5, 9, 14, 20, 5, 9, 14, 20,
           4, 11, 16, 23, 4, 11, 16, 23, 4, 11, 16, 23, 4, 11, 16, 23,
           6, 10, 15, 21, 6, 10, 15, 21, 6, 10, 15, 21, 6, 10, 15, 21}
local T = {}
for i = 1, 64 do T[i] = math.floor(math.abs(math.sin(i)) * 2 ^ 32) & MASK end

local function rotl(x, n)
  return ((x << n) | (x >> (32 - n))) & MASK
end

--- md5.hex(s) -> "d41d8cd98f00b204e9800998ecf8427e" for ""
function M.hex(s)
  if type(s) ~= "string" then raise("md5: string expected, got " .. type(s)) end
  local len = #s
  -- padding: 0x80, zeros to 56 mod 64, the bit length as 64-bit little endian
  local msg = s .. "\128" .. string.rep("\0", (55 - len) % 64) .. string.pack("<I8", (len * 8) & -1)
  local a0, b0, c0, d0 = 0x67452301, 0xefcdab89, 0x98badcfe, 0x10325476
  local X = {}
  for chunk = 1, #msg, 64 do
    for i = 0, 15 do X[i] = string.unpack("<I4", msg, chunk + 4 * i) end
    local a, b, c, d = a0, b0, c0, d0
    for i = 0, 63 do
      local f, g
      if i < 16 then
        f, g = (b & c) | (~b & d), i
      elseif i < 32 then
        f, g = (d & b) | (~d & c), (5 * i + 1) % 16
      elseif i < 48 then
        f, g = b ~ c ~ d, (3 * i + 5) % 16
      else
        f, g = c ~ (b | (~d & MASK)), (7 * i) % 16
      end
      f = (f + a + T[i + 1] + X[g]) & MASK
      a, d, c = d, c, b
      b = (b + rotl(f, S[i + 1])) & MASK
    end
    a0, b0 = (a0 + a) & MASK, (b0 + b) & MASK
    c0, d0 = (c0 + c) & MASK, (d0 + d) & MASK
  end
  local digest = string.pack("<I4<I4<I4<I4", a0, b0, c0, d0)
  return (digest:gsub(".", function(ch) return string.format("%02x", ch:byte()) end))
end

--- md5.mod(s, m) -> int(md5(s).hexdigest(), 16) % m, for 1 <= m < 2^58,
-- without big integers: the 128-bit value is folded in one hex digit at a time
function M.mod(s, m)
  local r = 0
  for ch in M.hex(s):gmatch(".") do
    r = (r * 16 + tonumber(ch, 16)) % m
  end
  return r
end

return M
