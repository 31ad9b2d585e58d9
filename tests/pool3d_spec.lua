-- K.pool3d (MaxPooling3D, AveragePooling3D): values and gradients against a
-- float64 loop over every 3-D window (TensorFlow's padding: 'same' pads
-- after more than before; padded cells left out of the max and the mean)
local keras = require("keras")
local K = keras.backend

local function ref(x, xs, ps, st, pads, mode, r)
  local N, D, H, W, C = xs[1], xs[2], xs[3], xs[4], xs[5]
  local function dim(n, p, s, pa, pb) return (n + pa + pb - p) // s + 1 end
  local od = dim(D, ps[1], st[1], pads[1], pads[2])
  local oh, ow = dim(H, ps[2], st[2], pads[3], pads[4]), dim(W, ps[3], st[3], pads[5], pads[6])
  local function at(n, d, h, w, c) return (((n * D + d) * H + h) * W + w) * C + c + 1 end
  local y, dx, k = {}, {}, 0
  for i = 1, N * D * H * W * C do dx[i] = 0 end
  for n = 0, N - 1 do for a = 0, od - 1 do for b = 0, oh - 1 do for e = 0, ow - 1 do for c = 0, C - 1 do
    local best, bi, sum, cnt = -math.huge, nil, 0, 0
    for q = 0, ps[1] - 1 do for u = 0, ps[2] - 1 do for v = 0, ps[3] - 1 do
      local d, h, w = a * st[1] + q - pads[1], b * st[2] + u - pads[3], e * st[3] + v - pads[5]
      if d >= 0 and d < D and h >= 0 and h < H and w >= 0 and w < W then
        local i = at(n, d, h, w, c); local val = x[i]
        if val > best then best, bi = val, i end
        sum, cnt = sum + val, cnt + 1
      end
    end end end
    k = k + 1
    if mode == "max" then y[k] = best; dx[bi] = dx[bi] + r[k]
    else
      y[k] = sum / cnt
      for q = 0, ps[1] - 1 do for u = 0, ps[2] - 1 do for v = 0, ps[3] - 1 do
        local d, h, w = a * st[1] + q - pads[1], b * st[2] + u - pads[3], e * st[3] + v - pads[5]
        if d >= 0 and d < D and h >= 0 and h < H and w >= 0 and w < W then
          local i = at(n, d, h, w, c)
          dx[i] = dx[i] + r[k] / cnt
        end
      end end end
    end
  end end end end end
  return y, dx, {N, od, oh, ow, C}
end
local function tfpads(n, p, s, same)
  if not same then return 0, 0 end
  local out = (n + s - 1) // s
  local tot = math.max((out - 1) * s + p - n, 0)
  return tot // 2, tot - tot // 2
end
describe("K.pool3d", function()
  it("matches a float64 loop over the windows, values and gradients, max and avg, valid and same", function()
    keras.random.seed(5)
    local worst = 0

    local cases = 0
    for _, cfg in ipairs{
      {{2, 5, 6, 7, 3}, {2, 2, 2}, {2, 2, 2}, "valid"}, {{2, 5, 6, 7, 3}, {3, 2, 2}, {1, 2, 1}, "same"},
      {{1, 4, 5, 5, 2}, {2, 3, 2}, {2, 1, 3}, "same"}, {{3, 3, 4, 4, 1}, {3, 3, 3}, {1, 1, 1}, "valid"},
      {{2, 7, 3, 5, 2}, {2, 1, 2}, {3, 1, 2}, "same"}} do
      for _, mode in ipairs{"max", "avg"} do
        local xs, ps, st, padding = cfg[1], cfg[2], cfg[3], cfg[4]
        local x = keras.random.normal(xs)
        local xv = keras.Input{shape = {xs[2], xs[3], xs[4], xs[5]}}
        local y = K.pool3d(xv, ps, st, padding, nil, mode)
        local ysh = y.shape
        local pads = {}
        for k = 1, 3 do pads[2 * k - 1], pads[2 * k] = tfpads(xs[k + 1], ps[k], st[k], padding == "same") end
        local r = keras.random.normal({xs[1], ysh[2], ysh[3], ysh[4], ysh[5]})
        local rv = keras.Input{shape = {ysh[2], ysh[3], ysh[4], ysh[5]}}
        local loss = K.sum(K.mul(y, rv))
        local g = K.gradients(loss, {xv})[1]
        local fn = K["function"]({xv, rv}, {y, g})
        local outs = fn({x, r})
        local xf, rf = x:reshape{-1}, r:reshape{-1}
        local xt, rt = {}, {}
        for i = 1, xf:size() do xt[i] = xf:get(i) end
        for i = 1, rf:size() do rt[i] = rf:get(i) end
        local yr, dxr, shp = ref(xt, xs, ps, st, pads, mode, rt)
        for i = 2, 5 do assert(shp[i] == ysh[i], "shape") end
        local yo, go = outs[1]:reshape{-1}, outs[2]:reshape{-1}
        for i = 1, #yr do worst = math.max(worst, math.abs(yo:get(i) - yr[i])) end
        for i = 1, #dxr do worst = math.max(worst, math.abs(go:get(i) - dxr[i])) end
        cases = cases + 1
      end
    end

    assert.are.equal(10, cases)
    assert.is_true(worst < 1e-5, "worst " .. worst)
  end)
end)
