-- compare.lua A B [bitwise]: the files train_check.lua wrote agree: every
-- epoch's loss within 1e-6 and every weight within 1e-6 + 1e-5 |w| (bitwise:
-- the files are identical). Exit status 0 when they agree, 1 when not.
local a, b, mode = arg[1], arg[2], arg[3]
local function lines(p)
  local t = {}
  for l in io.lines(p) do t[#t + 1] = l end
  return t
end
local la, lb = lines(a), lines(b)
if #la ~= #lb or #la == 0 then print("different lengths: " .. #la .. " vs " .. #lb); os.exit(1) end
local worst = 0
for i = 1, #la do
  if mode == "bitwise" then
    if la[i] ~= lb[i] then print(string.format("line %d differs: %s vs %s", i, la[i], lb[i])); os.exit(1) end
  else
    local x, y = tonumber(la[i]:match("[-%d.eE+naif]+$")), tonumber(lb[i]:match("[-%d.eE+naif]+$"))
    local tol = la[i]:find("^loss") and 1e-6 or 1e-6 + 1e-5 * math.abs(x)
    local d = math.abs(x - y)
    if not (d <= tol) then
      print(string.format("line %d: %s vs %s (|d| = %g > %g)", i, la[i], lb[i], d, tol))
      os.exit(1)
    end
    worst = math.max(worst, d)
  end
end
print(string.format("agree (%d values, max |d| %g)", #la, worst))
