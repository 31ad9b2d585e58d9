-- keras.preprocessing.image: load_img / img_to_array / array_to_img /
-- save_img (PNG and JPEG through libpng and libjpeg) and ImageDataGenerator.
-- Transforms and decoded pixels are checked against tests/fixtures/image.lua,
-- made by scripts/fixtures/image_fixtures.py with float64 numpy (Keras's
-- matrices, scipy's order-1 sampling reimplemented) and PIL.
local keras = require "keras"
local I = keras.preprocessing.image
local F = dofile("tests/fixtures/image.lua")

local function tmpdir()
  local p = io.popen("mktemp -d /tmp/lkeras-image-XXXXXX")
  local d = p:read("l")
  p:close()
  return d
end
local DIR = tmpdir()
local function P(name) return DIR .. "/" .. name end
teardown(function() os.execute("rm -rf '" .. DIR .. "'") end)

local function write(path, bytes)
  local f = assert(io.open(path, "wb"))
  f:write(bytes)
  f:close()
end

local function read(path)
  local f = assert(io.open(path, "rb"))
  local s = f:read("a")
  f:close()
  return s
end

local function flat(t) return t:reshape{-1}:totable() end

local function max_diff(want, got)
  local g = flat(got)
  assert.equal(#want, #g)
  local m = 0
  for i = 1, #want do m = math.max(m, math.abs(want[i] - g[i])) end
  return m
end

-- values in [0, 1) from a fixed formula, of the given shape
local function pseudo(shape)
  local n = 1
  for _, d in ipairs(shape) do n = n * d end
  local v = {}
  for i = 1, n do v[i] = (math.sin(i * 12.9898) * 43758.5453) % 1 end
  return keras.tensor(v):reshape(shape)
end

local function image()
  return keras.tensor(F.image.data):reshape(F.image.shape)
end

describe("ImageDataGenerator:apply_transform", function()
  it("matches the float64 references, each transform alone and all in Keras's order", function()
    assert.is_true(#F.transforms >= 20)
    for i, c in ipairs(F.transforms) do
      local g = I.ImageDataGenerator{fill_mode = c.fill_mode, cval = c.cval}
      local y = g:apply_transform(image(), c.params)
      assert.same(F.image.shape, y.shape)
      local d = max_diff(c.expected, y)
      assert(d <= 2e-3, string.format("case %d (%s): max difference %g", i, c.fill_mode, d))
    end
  end)

  it("leaves the image unchanged for the identity parameters", function()
    local g = I.ImageDataGenerator()
    local x = image()
    assert.equal(0, max_diff(F.image.data, g:apply_transform(x, {})))
    assert.equal(0, max_diff(F.image.data, g:apply_transform(x, {theta = 0, tx = 0, zx = 1, zy = 1})))
  end)

  it("refuses what is not an image", function()
    local g = I.ImageDataGenerator()
    assert.has_error(function() g:apply_transform(keras.tensor.ones{4, 4}, {}) end,
      "apply_transform: expected a tensor of rank 3 (height, width, channels), got shape (4, 4)")
    assert.has_error(function() g:apply_transform(image(), 3) end,
      "apply_transform: params must be a table, got number")
  end)
end)

describe("ImageDataGenerator:get_random_transform / random_transform", function()
  it("draws within the ranges, the same for the same seed", function()
    local g = I.ImageDataGenerator{rotation_range = 20, width_shift_range = 0.1, height_shift_range = 3,
      shear_range = 5, zoom_range = 0.2, channel_shift_range = 10, brightness_range = {0.5, 1.5},
      horizontal_flip = true}
    local flips = 0
    for s = 1, 200 do
      local p = g:get_random_transform({20, 30, 3}, s)
      assert(math.abs(p.theta) <= 20 and math.abs(p.shear) <= 5)
      assert(math.abs(p.ty) <= 0.1 * 30 + 1e-12, "width shift in pixels")
      assert(math.abs(p.tx) <= 2 and p.tx == math.floor(p.tx), "an integer range: whole pixels -2 .. 2")
      assert(p.zx >= 0.8 and p.zx <= 1.2 and p.zy >= 0.8 and p.zy <= 1.2)
      assert(math.abs(p.channel_shift_intensity) <= 10)
      assert(p.brightness >= 0.5 and p.brightness <= 1.5)
      assert.is_false(p.flip_vertical)
      if p.flip_horizontal then flips = flips + 1 end
      assert.same(p, g:get_random_transform({20, 30, 3}, s))
    end
    assert(flips > 60 and flips < 140, "about half flipped: " .. flips)
    local x = image()
    assert.equal(0, max_diff(flat(g:random_transform(x, 7)), g:random_transform(x, 7)))
  end)

  it("takes a float range of 1 or more as pixels", function()
    local g = I.ImageDataGenerator{height_shift_range = 3.0}
    local frac = false
    for s = 1, 50 do
      local tx = g:get_random_transform({10, 10, 1}, s).tx
      assert(math.abs(tx) <= 3)
      if tx ~= math.floor(tx) then frac = true end
    end
    assert.is_true(frac)
  end)

  it("takes a list of shifts as Keras's choices", function()
    local g = I.ImageDataGenerator{width_shift_range = {2, 4}}
    for s = 1, 50 do
      local ty = g:get_random_transform({10, 10, 1}, s).ty
      assert(ty == 2 or ty == -2 or ty == 4 or ty == -4, tostring(ty))
    end
  end)
end)

describe("ImageDataGenerator arguments", function()
  it("refuses bad values clearly", function()
    assert.has_error(function() I.ImageDataGenerator{fill_mode = "mirror"} end,
      'ImageDataGenerator: fill_mode must be "constant", "nearest", "reflect" or "wrap", got mirror')
    assert.has_error(function() I.ImageDataGenerator{zoom_range = {1}} end)
    assert.has_error(function() I.ImageDataGenerator{rotation_rnage = 3} end,
      "ImageDataGenerator: unknown argument rotation_rnage")
    assert.has_error(function() I.ImageDataGenerator{validation_split = 1} end,
      "ImageDataGenerator: validation_split must be a number in [0, 1), got 1")
    assert.has_error(function() I.ImageDataGenerator{zca_whitening = true, zca_epsilon = "small"} end,
      "ImageDataGenerator: zca_epsilon must be a number >= 0, got small")
    assert.has_error(function() I.ImageDataGenerator{data_format = "channels_first"} end)
  end)
end)

describe("ImageDataGenerator:fit / standardize", function()
  local x = pseudo({6, 4, 5, 3}) * 10

  local function channel_stats(t)
    local v = flat(t)
    local s, q, n = {0, 0, 0}, {0, 0, 0}, #v / 3
    for i = 1, #v do local c = (i - 1) % 3 + 1; s[c] = s[c] + v[i] end
    for c = 1, 3 do s[c] = s[c] / n end
    for i = 1, #v do local c = (i - 1) % 3 + 1; q[c] = q[c] + (v[i] - s[c]) ^ 2 end
    for c = 1, 3 do q[c] = math.sqrt(q[c] / n) end
    return s, q
  end

  it("fit keeps the per-channel mean and (population) std", function()
    local g = I.ImageDataGenerator{featurewise_center = true, featurewise_std_normalization = true}
    g:fit(x)
    local m, s = channel_stats(x)
    assert.same({1, 1, 3}, g.mean.shape)
    for c = 1, 3 do
      assert(math.abs(flat(g.mean)[c] - m[c]) < 1e-4)
      assert(math.abs(flat(g.std)[c] - s[c]) < 1e-4)
    end
    local y = g:standardize(x)
    local m2, s2 = channel_stats(y)
    for c = 1, 3 do
      assert(math.abs(m2[c]) < 1e-4)
      assert(math.abs(s2[c] - s[c] / (s[c] + 1e-7)) < 1e-4)
    end
  end)

  it("asks for fit first", function()
    local g = I.ImageDataGenerator{featurewise_center = true}
    assert.has_error(function() g:standardize(x) end,
      "ImageDataGenerator: featurewise_center is set but the generator has not been fit on any data; call fit(x) first")
  end)

  it("runs preprocessing_function, rescale, then samplewise centering and std, per sample", function()
    local calls = 0
    local g = I.ImageDataGenerator{rescale = 0.5, samplewise_center = true, samplewise_std_normalization = true,
      preprocessing_function = function(s) calls = calls + 1; return s + 1 end}
    local y = g:standardize(x)
    assert.equal(6, calls)
    local xv, yv = flat(x), flat(y)
    local per = 4 * 5 * 3
    for i = 0, 5 do
      local m, q = 0, 0
      for k = 1, per do m = m + (xv[i * per + k] + 1) * 0.5 end
      m = m / per
      for k = 1, per do q = q + ((xv[i * per + k] + 1) * 0.5 - m) ^ 2 end
      local sd = math.sqrt(q / per)
      for k = 1, per, 7 do
        local want = ((xv[i * per + k] + 1) * 0.5 - m) / (sd + 1e-7)
        assert(math.abs(yv[i * per + k] - want) < 1e-4)
      end
    end
  end)
end)

describe("ImageDataGenerator zca_whitening", function()
  it("fit finds Keras's principal components and standardize whitens with them", function()
    local z = F.zca
    local x = pseudo(z.shape)
    local g = I.ImageDataGenerator{zca_whitening = true}
    assert.is_true(g.featurewise_center)   -- implied, as Keras
    assert.has_error(function() g:standardize(x) end)
    g:fit(x)
    local d = z.shape[2] * z.shape[3] * z.shape[4]
    assert.same({d, d}, g.principal_components.shape)
    local e1 = max_diff(z.principal_components, g.principal_components)
    assert(e1 < 1e-3, "principal components differ by " .. e1)
    local e2 = max_diff(z.expected, g:standardize(x))
    assert(e2 < 1e-3, "whitened samples differ by " .. e2)
    -- the whitened samples' covariance is the identity (within eps)
    local w = g:standardize(x):reshape{z.shape[1], d}
    local cov = (w:transpose() :matmul(w) / z.shape[1]):totable()
    for i = 1, d do
      for j = 1, d do assert(math.abs(cov[i][j] - (i == j and 1 or 0)) < 1e-3) end
    end
  end)
end)

describe("ImageDataGenerator:flow", function()
  local n = 10
  local x = keras.tensor.arange(0, n):reshape{n, 1, 1, 1} * keras.tensor.ones{n, 2, 3, 1}
  local y = keras.tensor.arange(0, n)

  it("gives batches in order without shuffle, the last one short", function()
    local it = I.ImageDataGenerator():flow(x, y, {batch_size = 4, shuffle = false})
    assert.equal(3, #it)
    local bx, by = it:get(1)
    assert.same({4, 2, 3, 1}, bx.shape)
    assert.same({0, 1, 2, 3}, by:totable())
    bx, by = it:get(3)
    assert.same({2, 2, 3, 1}, bx.shape)
    assert.same({8, 9}, by:totable())
    assert.equal(8, flat(bx)[1])
    assert.has_error(function() it:get(4) end, "NumpyArrayIterator: batch 4 is out of range 1..3")
  end)

  it("shuffles every sample once per epoch, x and y together, reproducibly with a seed", function()
    local function epoch(it)
      local seen = {}
      for b = 1, #it do
        local bx, by = it:get(b)
        local xs, ys = flat(bx), by:totable()
        for k, v in ipairs(ys) do
          assert.equal(v, xs[(k - 1) * 6 + 1])
          seen[#seen + 1] = v
        end
      end
      return seen
    end
    local it = I.ImageDataGenerator():flow(x, y, {batch_size = 3, seed = 5})
    local e1 = epoch(it)
    local sorted = {table.unpack(e1)}
    table.sort(sorted)
    assert.same({0, 1, 2, 3, 4, 5, 6, 7, 8, 9}, sorted)
    assert.are_not.same({0, 1, 2, 3, 4, 5, 6, 7, 8, 9}, e1)
    it:on_epoch_end()
    local e2 = epoch(it)
    assert.are_not.same(e1, e2)
    assert.same(e1, epoch(I.ImageDataGenerator():flow(x, y, {batch_size = 3, seed = 5})))
  end)

  it("takes the validation_split subsets (validation first, as Keras)", function()
    local g = I.ImageDataGenerator{validation_split = 0.3}
    local v = g:flow(x, nil, {batch_size = 10, shuffle = false, subset = "validation"})
    local t = g:flow(x, nil, {batch_size = 10, shuffle = false, subset = "training"})
    assert.same({3, 2, 3, 1}, v:get(1).shape)
    assert.same({7, 2, 3, 1}, t:get(1).shape)
    assert.equal(3, flat(t:get(1))[1])
    assert.has_error(function() g:flow(x, y, {subset = "training"}) end)
    assert.has_error(function() I.ImageDataGenerator():flow(x, nil, {subset = "training"}) end,
      "flow: subset is given but the generator's validation_split is 0")
  end)

  it("trains a model through fit_generator", function()
    local m = keras.Sequential{keras.layers.Flatten{input_shape = {2, 3, 1}}, keras.layers.Dense(1)}
    m:compile{optimizer = "sgd", loss = "mse"}
    local g = I.ImageDataGenerator{horizontal_flip = true, rescale = 0.1}
    local h = m:fit_generator(g:flow(x, y, {batch_size = 4, seed = 1}), {epochs = 2, verbose = 0})
    assert.equal(2, #h.history.loss)
  end)
end)

describe("load_img / img_to_array", function()
  it("decodes PNG and JPEG files as PIL does (modes, nearest resize)", function()
    assert.is_true(#F.loads >= 50)
    for _, c in ipairs(F.loads) do
      local img = I.load_img("tests/fixtures/images/" .. c.file, {color_mode = c.color_mode,
        target_size = c.target_size})
      local a = I.img_to_array(img)
      assert.same(c.shape, a.shape)
      local d = max_diff(c.expected, a)
      local tol = c.file:match("%.jpg$") and 1 or 0
      assert(d <= tol, string.format("%s %s: max difference %g", c.file, c.color_mode, d))
    end
  end)

  it("takes grayscale = true and tells the image's size and mode", function()
    local img = I.load_img("tests/fixtures/images/rgb.png", {grayscale = true})
    assert.equal("L", img.mode)
    local w, h = img:size()
    assert.same({13, 11}, {w, h})
  end)

  it("refuses missing, truncated, foreign and oversized files with the path in the error", function()
    local png = read("tests/fixtures/images/rgb.png")
    local jpg = read("tests/fixtures/images/rgb.jpg")
    write(P("trunc.png"), png:sub(1, 60))
    write(P("trunc.jpg"), jpg:sub(1, 300))
    write(P("header.jpg"), jpg:sub(1, 20))
    write(P("text.png"), "hello, not an image\n")
    write(P("empty.png"), "")
    -- a PNG whose header declares 100000 x 100000 pixels (valid CRC)
    write(P("huge.png"), "\137PNG\r\n\26\n\0\0\0\13IHDR\0\1\134\160\0\1\134\160\8\2\0\0\0\39\48\156\159"
      .. "\0\0\0\12IDAT\120\156\99\96\160\12\0\0\0\64\0\1\183\52\124\239\0\0\0\0IEND\174\66\96\130")
    local cases = {
      {P("missing.png"), "load_img: cannot open " .. P("missing.png")},
      {P("trunc.png"), "broken PNG data"},
      {P("trunc.jpg"), "broken JPEG data"},
      {P("header.jpg"), "broken JPEG data"},
      {P("text.png"), "is not a PNG or JPEG file"},
      {P("empty.png"), "is not a PNG or JPEG file"},
      {P("huge.png"), "declares 100000 x 100000 pixels"},
    }
    for _, c in ipairs(cases) do
      local ok, err = pcall(I.load_img, c[1])
      assert.is_false(ok, c[1])
      assert(tostring(err):find(c[2], 1, true), tostring(err))
    end
    assert.has_error(function() I.load_img(1) end, "load_img: path must be a string, got number")
    assert.has_error(function() I.load_img("x.png", {color_mode = "cmyk"}) end,
      'load_img: color_mode must be "grayscale", "rgb" or "rgba", got cmyk')
    assert.has_error(function() I.load_img("x.png", {interpolation = "bicubic"}) end)
    assert.has_error(function() I.load_img("x.png", {target_size = {0, 3}}) end)
  end)
end)

describe("array_to_img / save_img", function()
  it("scale maps min..max to 0..255, truncated as uint8; scale=false keeps values", function()
    local t = keras.tensor({{{-1}, {0}}, {{1}, {3}}})
    assert.same({0, 63, 127, 255}, flat(I.img_to_array(I.array_to_img(t))))
    assert.same({0, 0, 1, 3}, flat(I.img_to_array(I.array_to_img(t, {scale = false}))))
    assert.has_error(function() I.array_to_img(keras.tensor.ones{2, 2, 2}) end,
      "array_to_img: an image has 1, 3 or 4 channels, got 2")
  end)

  it("round-trips PNG exactly (1, 3 and 4 channels) and JPEG closely", function()
    for _, c in ipairs{1, 3, 4} do
      local t = pseudo({9, 7, c}) * 255
      local q = I.img_to_array(I.array_to_img(t, {scale = false}))
      I.save_img(P("r" .. c .. ".png"), t, {scale = false})
      local mode = ({"grayscale", nil, "rgb", "rgba"})[c]
      assert.equal(0, max_diff(flat(q), I.img_to_array(I.load_img(P("r" .. c .. ".png"), {color_mode = mode}))))
    end
    local sv = {}
    for r = 0, 15 do for q = 0, 15 do for k = 0, 2 do sv[#sv + 1] = 40 + r * 6 + q * 4 + k * 30 end end end
    I.save_img(P("s.jpg"), keras.tensor(sv):reshape{16, 16, 3}, {scale = false, quality = 95})
    local v = flat(I.img_to_array(I.load_img(P("s.jpg"))))
    local sum = 0
    for i, w in ipairs(sv) do sum = sum + math.abs(w - v[i]) end
    assert(sum / #v < 2, "mean JPEG error " .. sum / #v)
  end)

  it("refuses unknown formats and unwritable paths", function()
    local t = keras.tensor.ones{2, 2, 3}
    assert.has_error(function() I.save_img(P("a.gif"), t) end)
    assert.has_error(function() I.save_img(P("nodir/a.png"), t) end)
    assert.has_error(function() I.save_img(P("a.jpg"), keras.tensor.ones{2, 2, 4}) end)
  end)
end)

describe("ImageDataGenerator:flow_from_directory", function()
  local root = P("tree")
  os.execute("mkdir -p '" .. root .. "/cat' '" .. root .. "/dog/sub' '" .. root .. "/emu'")
  local function img(v) return keras.tensor.full({6, 8, 3}, v) end
  for i = 1, 4 do I.save_img(root .. "/cat/c" .. i .. ".png", img(10 + i), {scale = false}) end
  for i = 1, 2 do I.save_img(root .. "/dog/d" .. i .. ".png", img(100 + i), {scale = false}) end
  I.save_img(root .. "/dog/sub/d9.png", img(109), {scale = false})
  I.save_img(root .. "/emu/e1.png", img(200), {scale = false})
  write(root .. "/emu/notes.txt", "not an image")

  it("finds the classes (sorted subfolders) and their images, labels as Keras's", function()
    local g = I.ImageDataGenerator()
    local it = g:flow_from_directory(root, {target_size = {3, 4}, batch_size = 8, shuffle = false})
    assert.equal(8, it.samples)
    assert.same({cat = 0, dog = 1, emu = 2}, it.class_indices)
    local bx, by = it:get(1)
    assert.same({8, 3, 4, 3}, bx.shape)
    assert.same({8, 3}, by.shape)
    local xs = flat(bx)
    local firsts = {}
    for k = 0, 7 do firsts[#firsts + 1] = xs[k * 36 + 1] end
    assert.same({11, 12, 13, 14, 101, 102, 109, 200}, firsts)
    assert.same({1, 0, 0}, by:totable()[1])
    assert.same({0, 0, 1}, by:totable()[8])
    local sp = g:flow_from_directory(root, {target_size = {3, 4}, class_mode = "sparse", shuffle = false,
      color_mode = "grayscale"})
    local gx, gy = sp:get(1)
    assert.same({8, 3, 4, 1}, gx.shape)
    assert.same({0, 0, 0, 0, 1, 1, 1, 2}, gy:totable())
    local none = g:flow_from_directory(root, {classes = {"dog"}, class_mode = false, shuffle = false})
    assert.same({3, 256, 256, 3}, none:get(1).shape)
  end)

  it("splits each class for validation_split", function()
    local g = I.ImageDataGenerator{validation_split = 0.5}
    local v = g:flow_from_directory(root, {target_size = {3, 4}, subset = "validation", shuffle = false})
    local t = g:flow_from_directory(root, {target_size = {3, 4}, subset = "training", shuffle = false})
    assert.equal(3, v.samples)   -- 2 cats, 1 dog, 0 emus
    assert.equal(5, t.samples)
  end)

  it("refuses a missing directory and bad options", function()
    local g = I.ImageDataGenerator()
    assert.has_error(function() g:flow_from_directory(P("nothere")) end,
      "flow_from_directory: cannot read the directory " .. P("nothere"))
    assert.has_error(function() g:flow_from_directory(root, {class_mode = "multi"}) end)
  end)
end)
