-- check.lua -- what the examples assert about their own runs. scripts/run-tests.sh
-- runs each example in quick mode and counts it passed when it exits 0: these
-- checks make an example that no longer does what it claims exit with an error
-- (a falling loss, the history's length, an accuracy floor, shapes, ...).
-- An example loads it from beside itself:
--   local check = dofile(arg[0]:match("^(.-)[^/]*$") .. "lib/check.lua")
-- Each function raises "check failed: ..." at the example's line.
-- luacheck: ignore 581 (the checks are written 'not (a < b)' so that a NaN fails them)
local check = {}

local function fail(fmt, ...)
  error("check failed: " .. string.format(fmt, ...), 3)
end

local function is_finite(v)
  return type(v) == "number" and v == v and v ~= math.huge and v ~= -math.huge
end

local function history_of(h)
  return h.history or h
end

-- h: what fit returned (or its history table). history[key] (default "loss")
-- has one finite value per epoch. Returns that list.
function check.epochs(h, epochs, key)
  key = key or "loss"
  local v = history_of(h)[key]
  if type(v) ~= "table" then fail("the history has no '%s'", key) end
  if #v ~= epochs then fail("history.%s has %d values for %d epochs", key, #v, epochs) end
  for i = 1, #v do
    if not is_finite(v[i]) then fail("history.%s[%d] is %s", key, i, tostring(v[i])) end
  end
  return v
end

-- history[key] (default "loss") is lower at the last epoch than at the first, by
-- more than the fraction by (default 1e-3: well above the float32 rounding of an
-- epoch's mean, so that a model that does not learn at all fails)
function check.falls(h, key, by)
  key, by = key or "loss", by or 1e-3
  local v = history_of(h)[key]
  if type(v) ~= "table" or #v < 2 then fail("history.%s needs 2 epochs or more to fall", key) end
  if not (v[#v] < v[1] - by * math.abs(v[1])) then
    fail("%s went from %.6g to %.6g: it did not fall by %g of it", key, v[1], v[#v], by)
  end
end

-- a number, or every element of a tensor, is finite
function check.finite(x, what)
  if type(x) == "number" then
    if not is_finite(x) then fail("%s is %s", what, tostring(x)) end
    return
  end
  local s = (x - x):sum()            -- 0 when every element is finite, NaN otherwise
  if s ~= 0 then fail("%s holds a NaN or an infinity", what) end
end

-- lo < v < hi (either bound may be nil); v a finite number
function check.between(v, lo, hi, what)
  if not is_finite(v) then fail("%s is %s", what, tostring(v)) end
  if lo and not (v > lo) then fail("%s is %.6g, expected above %.6g", what, v, lo) end
  if hi and not (v < hi) then fail("%s is %.6g, expected below %.6g", what, v, hi) end
end

-- got == want (numbers, strings, booleans)
function check.equal(got, want, what)
  if got ~= want then fail("%s is %s, expected %s", what, tostring(got), tostring(want)) end
end

-- a tensor's shape, or a layer's output_shape (keras.None for the batch), is want
function check.shape(shape, want, what)
  if type(shape) ~= "table" then fail("%s has no shape (got %s)", what, tostring(shape)) end
  local same = #shape == #want
  for i = 1, #want do same = same and shape[i] == want[i] end
  if not same then
    local function str(s)
      local p = {}
      for i = 1, #s do p[i] = tostring(s[i]) end
      return "(" .. table.concat(p, ", ") .. ")"
    end
    fail("%s has shape %s, expected %s", what, str(shape), str(want))
  end
end

-- two tensors of the same shape differ by at most tol everywhere
function check.close(a, b, tol, what)
  check.finite(a, what)
  local d = (a - b):abs():max()
  if not (d <= tol) then fail("%s: the two differ by %.6g (tolerance %g)", what, d, tol) end
end

-- two lists of names are the same
function check.names(got, want, what)
  local g, w = table.concat(got, ", "), table.concat(want, ", ")
  if g ~= w then fail("%s are {%s}, expected {%s}", what, g, w) end
end

return check
