-- ImageDataGenerator's iterators make their next batches on worker threads
-- (the _prefetch protocol of generators.lua, core.image_batch_async): a batch
-- made ahead must be, bit for bit, what get(i) makes on the calling thread.
local keras = require "keras"
local I = keras.preprocessing.image
local core = keras._core

local function tmpdir()
  local p = io.popen("mktemp -d /tmp/lkeras-imgasync-XXXXXX")
  local d = p:read("l")
  p:close()
  return d
end
local DIR = tmpdir()
teardown(function() os.execute("rm -rf '" .. DIR .. "'") end)

local function flat(t) return t:reshape{-1}:totable() end

local function same_bits(want, got, what)
  assert.same(want.shape, got.shape, what)
  local a, b = flat(want), flat(got)
  for k = 1, #a do
    if a[k] ~= b[k] and not (a[k] ~= a[k] and b[k] ~= b[k]) then
      error(string.format("%s: value %d differs: get %.9g, prefetched %.9g", what, k, a[k], b[k]))
    end
  end
end

-- values 0..255 from a fixed formula
local function pixels(shape, salt)
  local n = 1
  for _, d in ipairs(shape) do n = n * d end
  local v = {}
  for i = 1, n do v[i] = math.floor(((math.sin(i * 12.9898 + salt) * 43758.5453) % 1) * 256) end
  return keras.tensor(v):reshape(shape)
end

local AUGMENT = {rotation_range = 30, width_shift_range = 0.2, height_shift_range = 0.1, shear_range = 20,
  zoom_range = 0.3, horizontal_flip = true, vertical_flip = true, channel_shift_range = 20,
  brightness_range = {0.5, 1.5}, fill_mode = "reflect", rescale = 1 / 255}

-- every batch of two passes, made ahead and made by get, compared
local function compare_passes(it, what)
  for _ = 1, 2 do
    for i = 1, it:len() do
      local want = table.pack(it:get(i))
      local got = table.pack(it:_prefetch(i):wait())
      assert.equal(want.n, got.n, what)
      for k = 1, want.n do same_bits(want[k], got[k], string.format("%s, batch %d, value %d", what, i, k)) end
    end
    it:on_epoch_end()
  end
end

describe("ImageDataGenerator:flow, batches made ahead", function()
  local n = 11
  local x = pixels({n, 9, 7, 3}, 1)
  local y = keras.tensor.arange(0, n)

  it("equal get(i) bit for bit, with every random transform and featurewise standardization", function()
    local o = {featurewise_center = true, featurewise_std_normalization = true}
    for k, v in pairs(AUGMENT) do o[k] = v end
    local g = I.ImageDataGenerator(o)
    g:fit(x)
    compare_passes(g:flow(x, y, {batch_size = 4, seed = 7}), "flow")
    compare_passes(g:flow(x, {batch_size = 5, seed = 3, shuffle = false}), "flow without y")
  end)

  it("equal get(i) with samplewise standardization and one channel", function()
    local g = I.ImageDataGenerator{rotation_range = 45, zoom_range = {0.8, 1.2}, samplewise_center = true,
      samplewise_std_normalization = true, fill_mode = "wrap"}
    compare_passes(g:flow(pixels({n, 6, 6, 1}, 2), y, {batch_size = 3, seed = 11}), "flow, one channel")
  end)

  it("run preprocessing_function (Lua) on the calling thread, as get(i) does", function()
    local calls = 0
    local g = I.ImageDataGenerator{horizontal_flip = true,
      preprocessing_function = function(s) calls = calls + 1; return s * 2 end}
    compare_passes(g:flow(x, y, {batch_size = 4, seed = 5}), "flow with preprocessing_function")
    assert.is_true(calls > 0)
  end)

  it("are made on a worker when fit_generator asks for them, and train as get(i) does", function()
    local xs = pixels({32, 8, 8, 1}, 3)
    local labels = {}
    for k = 1, 32 do labels[k] = k % 2 end
    local ys = keras.utils.to_categorical(keras.tensor(labels), 2)
    local g = I.ImageDataGenerator{rotation_range = 20, horizontal_flip = true, rescale = 1 / 255}
    local function model()
      local m = keras.Sequential{keras.layers.Flatten{input_shape = {8, 8, 1}},
        keras.layers.Dense(2, {activation = "softmax", kernel_initializer = "ones"})}
      m:compile{optimizer = "sgd", loss = "categorical_crossentropy"}
      return m
    end
    local made = 0
    local real = core.image_batch_async
    core.image_batch_async = function(spec) made = made + 1; return real(spec) end
    local ok, h1 = pcall(function()
      return model():fit_generator(g:flow(xs, ys, {batch_size = 8, seed = 1}),
        {epochs = 2, verbose = 0, shuffle = false})
    end)
    core.image_batch_async = real
    assert.is_true(ok, tostring(h1))
    assert.is_true(made >= 6, "batches made ahead: " .. made)
    local h0 = model():fit_generator(g:flow(xs, ys, {batch_size = 8, seed = 1}),
      {epochs = 2, verbose = 0, shuffle = false, workers = 0})
    assert.same(h0.history.loss, h1.history.loss)
  end)

  it("may be dropped before they are waited for", function()
    local g = I.ImageDataGenerator(AUGMENT)
    local it = g:flow(pixels({64, 32, 32, 3}, 4), {batch_size = 64, seed = 1})
    for _ = 1, 5 do it:_prefetch(1) end
    collectgarbage()
    collectgarbage()
    local job = core.image_batch_async{src = x, rows = {1, 2}}
    job:free()
    assert.has_error(function() job:wait() end, "image_batch_async: this job has been freed")
  end)

  it("refuse bad jobs clearly", function()
    assert.has_error(function() core.image_batch_async{} end,
      "image_batch_async: give src and rows, or files")
    assert.has_error(function() core.image_batch_async{src = x, rows = {0}} end,
      "image_batch_async: row 1 is not a row number in 1..11")
    assert.has_error(function() core.image_batch_async{src = x, rows = {1}, params = {1, 2}} end,
      "image_batch_async: expected 12 parameters per image (1 images)")
    assert.has_error(function() core.image_batch_async{files = {"a.png"}, channels = 2, height = 2, width = 2} end,
      "image_batch_async: channels must be 1, 3 or 4")
  end)
end)

describe("ImageDataGenerator:flow_from_directory, batches made ahead", function()
  local root = DIR .. "/tree"
  os.execute("mkdir -p '" .. root .. "/a' '" .. root .. "/b'")
  for i = 1, 5 do I.save_img(root .. "/a/x" .. i .. ".png", pixels({10 + i, 12, 3}, i), {scale = false}) end
  for i = 1, 4 do
    I.save_img(root .. "/b/y" .. i .. (i % 2 == 0 and ".jpg" or ".png"), pixels({9, 7 + i, 3}, 10 + i),
      {scale = false})
  end

  it("equal get(i) bit for bit in every class_mode and color_mode, resized and transformed", function()
    local g = I.ImageDataGenerator(AUGMENT)
    for _, mode in ipairs{"categorical", "sparse", "binary", "input", false} do
      for _, cm in ipairs{"rgb", "grayscale", "rgba"} do
        local it = g:flow_from_directory(root, {target_size = {8, 6}, class_mode = mode, color_mode = cm,
          batch_size = 4, seed = 2})
        compare_passes(it, string.format("flow_from_directory %s %s", tostring(mode), cm))
      end
    end
    local plain = I.ImageDataGenerator()
    compare_passes(plain:flow_from_directory(root, {target_size = {5, 5}, batch_size = 3, shuffle = false}),
      "flow_from_directory without transforms")
  end)

  it("raise the file's error in wait() when an image went missing or is not an image", function()
    local r2 = DIR .. "/tree2"
    os.execute("mkdir -p '" .. r2 .. "/a'")
    I.save_img(r2 .. "/a/ok.png", pixels({4, 4, 3}, 1), {scale = false})
    I.save_img(r2 .. "/a/gone.png", pixels({4, 4, 3}, 2), {scale = false})
    local it = I.ImageDataGenerator():flow_from_directory(r2, {target_size = {4, 4}, batch_size = 2,
      shuffle = false})
    os.remove(r2 .. "/a/gone.png")
    local job = it:_prefetch(1)
    assert.has_error(function() job:wait() end, "load_img: cannot open " .. r2 .. "/a/gone.png")
    local f = assert(io.open(r2 .. "/a/gone.png", "wb"))
    f:write("\137PNG\r\n\26\n truncated")
    f:close()
    local ok, err = pcall(function() return it:_prefetch(1):wait() end)
    assert.is_false(ok)
    assert.truthy(tostring(err):find("gone.png", 1, true), tostring(err))
  end)
end)
