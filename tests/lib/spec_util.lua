-- Helpers shared by the specs: dofile("tests/lib/spec_util.lua") (busted
-- runs from the repository's root).
local U = {}

-- the numbers of a nested list, in order
function U.flat(v, out)
  out = out or {}
  if type(v) == "table" then
    for _, x in ipairs(v) do U.flat(x, out) end
  else
    out[#out + 1] = v
  end
  return out
end

-- a tensor against nested expected numbers: |got - want| <= tol * max(1, |want|)
-- (tol 1e-5 by default); the NaN-safe compare fails on NaN
function U.assert_close(want, got, tol)
  tol = tol or 1e-5
  local g, w = U.flat(got:totable()), U.flat(want)
  -- (busted's assert lives in the spec's environment, not here)
  if #w ~= #g then error(string.format("number of elements: %d, expected %d", #g, #w), 2) end
  for i = 1, #w do
    if not (math.abs(g[i] - w[i]) <= tol * math.max(1, math.abs(w[i]))) then
      error(string.format("element %d is %.9g, expected %.9g", i, g[i], w[i]), 2)
    end
  end
end

-- a tensor's shape without its batch axis
function U.sample_shape(t)
  local s = {}
  for i = 2, #t.shape do s[i - 1] = t.shape[i] end
  return s
end

-- a whole file's bytes
function U.read_all(path)
  local f = assert(io.open(path, "rb"))
  local s = f:read("a")
  f:close()
  return s
end

return U
