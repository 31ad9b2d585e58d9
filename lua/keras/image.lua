-- keras.preprocessing.image (keras-preprocessing 1.0.5, the version Keras
-- 2.2.4 requires): load_img / img_to_array / array_to_img / save_img for PNG
-- and JPEG files (libpng, libjpeg; src/io/image.c) and ImageDataGenerator
-- with its random transforms, applied in C on the engine's threads
-- (src/kernels/image.c). Images are (height, width, channels) tensors of
-- values 0..255 (channels_last only); class indices are Keras's, from 0.
local keras = ...
local util = require("keras.util")
local is_plain, is_tensor = util.is_plain, util.is_tensor
local raise = util.raise
local core, K = keras._core, keras.backend
local Sequence = keras.utils.Sequence

local I = {}

local function fail(fmt, ...) raise(string.format(fmt, ...)) end

local function opts_of(who, o)
  if o == nil then return {} end
  if not is_plain(o) then fail("%s: options must be a table, got %s", who, type(o)) end
  return o
end

local function check_known(who, o, known)
  for k in pairs(o) do
    if type(k) ~= "string" or not known[k] then
      fail("%s: unknown option %s", who, tostring(k))
    end
  end
end

local function set(list)
  local s = {}
  for _, k in ipairs(list) do s[k] = true end
  return s
end

-- ---- a small seeded random stream (splitmix64), one per generator ----

local function rng(seed)
  local state = math.tointeger(seed) or math.random(0, 0x7fffffff)
  local r = {}
  function r.next()
    state = state + 0x9E3779B97F4A7C15
    local z = state
    z = (z ~ (z >> 30)) * -0x40A7B892E31B1A47
    z = (z ~ (z >> 27)) * -0x6B2FB644ECCEEE15
    return z ~ (z >> 31)
  end
  function r.uniform(a, b)
    local u = (r.next() >> 11) * (1.0 / 9007199254740992.0)
    return a + (b - a) * u
  end
  function r.int(n) return math.floor(r.uniform(0, n)) end   -- 0 .. n-1
  function r.permutation(n)
    local p = {}
    for i = 1, n do p[i] = i end
    for i = n, 2, -1 do
      local j = r.int(i) + 1
      p[i], p[j] = p[j], p[i]
    end
    return p
  end
  return r
end
I._rng = rng

-- ---- images ----

local Image = {}
Image.__index = Image
Image.__name = "keras.preprocessing.image.Image"
local MODES = {[1] = "L", [3] = "RGB", [4] = "RGBA"}

local function new_image(t)
  return setmetatable({_t = t, height = t.shape[1], width = t.shape[2], mode = MODES[t.shape[3]]}, Image)
end
function Image:size() return self.width, self.height end   -- PIL's (width, height)
function Image:__tostring()
  return string.format("<Image mode=%s size=%dx%d>", self.mode, self.width, self.height)
end
I.Image = Image

local function is_image(v) return getmetatable(v) == Image end

local LOAD_OPTS = set{"grayscale", "color_mode", "target_size", "interpolation"}
local CHANNELS = {grayscale = 1, rgb = 3, rgba = 4}

local function target_size_arg(who, ts)
  if ts == nil then return nil end
  if not is_plain(ts) or #ts ~= 2 or math.type(ts[1]) ~= "integer" or math.type(ts[2]) ~= "integer"
      or ts[1] < 1 or ts[2] < 1 then
    fail("%s: target_size must be {height, width} (positive integers), got %s", who, tostring(ts))
  end
  return ts
end

local function color_mode_arg(who, cm)
  if CHANNELS[cm] == nil then
    fail("%s: color_mode must be \"grayscale\", \"rgb\" or \"rgba\", got %s", who, tostring(cm))
  end
  return cm
end

--- load_img(path, {grayscale=false, color_mode="rgb", target_size=nil, interpolation="nearest"})
function I.load_img(path, o)
  o = opts_of("load_img", o)
  check_known("load_img", o, LOAD_OPTS)
  if type(path) ~= "string" then fail("load_img: path must be a string, got %s", type(path)) end
  local cm = o.color_mode or "rgb"
  if o.grayscale then cm = "grayscale" end
  color_mode_arg("load_img", cm)
  local ts = target_size_arg("load_img", o.target_size)
  local interp = o.interpolation or "nearest"
  if interp ~= "nearest" then
    fail("load_img: interpolation must be \"nearest\" (the only one supported), got %s", tostring(interp))
  end
  local ok, t = pcall(core.image_read, path, CHANNELS[cm], ts and ts[1], ts and ts[2])
  if not ok then raise(tostring(t)) end
  return new_image(t)
end

local function data_format_arg(who, df)
  if df ~= nil and df ~= "channels_last" then
    fail("%s: data_format must be \"channels_last\" (the only one supported), got %s", who, tostring(df))
  end
end

--- img_to_array(img) -> a (height, width, channels) tensor (a copy)
function I.img_to_array(img, data_format)
  if is_plain(data_format) then data_format = data_format.data_format end
  data_format_arg("img_to_array", data_format)
  if not is_image(img) then
    fail("img_to_array: expected an image (from load_img or array_to_img), got %s", type(img))
  end
  return img._t:copy()
end

local function image_tensor(who, x)
  if not is_tensor(x) then fail("%s: expected a (height, width, channels) tensor, got %s", who, type(x)) end
  local s = x.shape
  if #s ~= 3 then
    fail("%s: expected a tensor of rank 3 (height, width, channels), got shape (%s)", who, table.concat(s, ", "))
  end
  if not MODES[s[3]] then fail("%s: an image has 1, 3 or 4 channels, got %d", who, s[3]) end
  return x
end

--- array_to_img(x, {scale=true}): scale maps x's min..max to 0..255
function I.array_to_img(x, o)
  o = opts_of("array_to_img", o)
  check_known("array_to_img", o, set{"scale", "data_format"})
  data_format_arg("array_to_img", o.data_format)
  image_tensor("array_to_img", x)
  if o.scale == nil or o.scale then
    x = x - x:min()
    local mx = x:max()
    if mx ~= 0 then x = x / mx end
    x = x * 255
  end
  -- uint8: truncated, clipped to 0..255
  return new_image(core.image_quantize(x))
end

local FORMATS = {png = false, jpg = true, jpeg = true}

--- save_img(path, x, {file_format=nil, scale=true, quality=75}); x a tensor or an image
function I.save_img(path, x, o)
  o = opts_of("save_img", o)
  check_known("save_img", o, set{"file_format", "scale", "data_format", "quality"})
  if type(path) ~= "string" then fail("save_img: path must be a string, got %s", type(path)) end
  local fmt = o.file_format or path:match("%.([%w]+)$")
  fmt = fmt and fmt:lower()
  if fmt == nil or FORMATS[fmt] == nil then
    fail("save_img: %s: the format must be png, jpg or jpeg (from file_format or the extension), got %s",
      path, tostring(fmt))
  end
  local q = o.quality or 75
  if math.type(q) ~= "integer" or q < 1 or q > 100 then
    fail("save_img: quality must be an integer 1..100, got %s", tostring(q))
  end
  local img = is_image(x) and x or I.array_to_img(x, {scale = o.scale, data_format = o.data_format})
  local ok, err = pcall(core.image_write, path, img._t, FORMATS[fmt], q)
  if not ok then raise(tostring(err)) end
end

-- ---- ImageDataGenerator ----

local GEN_DEFAULTS = {
  featurewise_center = false, samplewise_center = false,
  featurewise_std_normalization = false, samplewise_std_normalization = false,
  zca_whitening = false, zca_epsilon = 1e-6, rotation_range = 0,
  width_shift_range = 0, height_shift_range = 0, brightness_range = false,
  shear_range = 0, zoom_range = 0, channel_shift_range = 0, fill_mode = "nearest",
  cval = 0, horizontal_flip = false, vertical_flip = false, rescale = false,
  preprocessing_function = false, data_format = false, validation_split = 0, dtype = false,
}
local FILL = {constant = 0, nearest = 1, reflect = 2, wrap = 3}

local Gen = {}
Gen.__index = Gen
Gen.__name = "keras.preprocessing.image.ImageDataGenerator"
I.ImageDataGenerator_class = Gen

local function num_arg(who, k, v, lo)
  if type(v) ~= "number" or v ~= v or (lo and v < lo) then
    fail("%s: %s must be a number%s, got %s", who, k, lo and (" >= " .. lo) or "", tostring(v))
  end
  return v
end

local function shift_arg(who, k, v)
  if type(v) == "number" then return num_arg(who, k, v, 0) end
  if is_plain(v) and #v > 0 then
    for i, e in ipairs(v) do num_arg(who, k .. "[" .. i .. "]", e) end
    return v
  end
  fail("%s: %s must be a number or a list of numbers, got %s", who, k, tostring(v))
end

--- ImageDataGenerator{...}: Keras 2.2.4's arguments and defaults
function I.ImageDataGenerator(o)
  local who = "ImageDataGenerator"
  o = opts_of(who, o)
  for k in pairs(o) do
    if GEN_DEFAULTS[k] == nil then fail("%s: unknown argument %s", who, tostring(k)) end
  end
  local g = setmetatable({}, Gen)
  for k, d in pairs(GEN_DEFAULTS) do
    local v = o[k]
    if v == nil then v = d end
    g[k] = v
  end
  data_format_arg(who, o.data_format)
  -- as Keras: ZCA whitening implies featurewise centering and replaces std normalization
  if g.zca_whitening then
    if not g.featurewise_center then
      g.featurewise_center = true
      io.stderr:write("Warning: this ImageDataGenerator specifies zca_whitening, which overrides setting of "
        .. "featurewise_center.\n")
    end
    if g.featurewise_std_normalization then
      g.featurewise_std_normalization = false
      io.stderr:write("Warning: this ImageDataGenerator specifies zca_whitening, which overrides setting of "
        .. "featurewise_std_normalization.\n")
    end
    num_arg(who, "zca_epsilon", g.zca_epsilon, 0)
  end
  for _, k in ipairs{"rotation_range", "shear_range", "channel_shift_range", "cval"} do
    num_arg(who, k, g[k], k ~= "cval" and 0 or nil)
  end
  g.width_shift_range = shift_arg(who, "width_shift_range", g.width_shift_range)
  g.height_shift_range = shift_arg(who, "height_shift_range", g.height_shift_range)
  local z = g.zoom_range
  if type(z) == "number" then
    num_arg(who, "zoom_range", z, 0)
    g.zoom_range = {1 - z, 1 + z}
  elseif is_plain(z) and #z == 2 and type(z[1]) == "number" and type(z[2]) == "number" then
    g.zoom_range = {z[1], z[2]}
  else
    fail("%s: zoom_range must be a number or {lower, upper}, got %s", who, tostring(z))
  end
  local b = g.brightness_range
  if b and not (is_plain(b) and #b == 2 and type(b[1]) == "number" and type(b[2]) == "number") then
    fail("%s: brightness_range must be {lower, upper}, got %s", who, tostring(b))
  end
  if FILL[g.fill_mode] == nil then
    fail("%s: fill_mode must be \"constant\", \"nearest\", \"reflect\" or \"wrap\", got %s", who, tostring(g.fill_mode))
  end
  if g.rescale and type(g.rescale) ~= "number" then
    fail("%s: rescale must be a number, got %s", who, tostring(g.rescale))
  end
  if g.preprocessing_function and type(g.preprocessing_function) ~= "function" then
    fail("%s: preprocessing_function must be a function, got %s", who, type(g.preprocessing_function))
  end
  local vs = g.validation_split
  if type(vs) ~= "number" or not (vs >= 0 and vs < 1) then
    fail("%s: validation_split must be a number in [0, 1), got %s", who, tostring(vs))
  end
  return g
end

-- one pick of a shift range, as Keras: a list is a choice with a random sign,
-- an integer n a choice of 0 .. n-1 with a random sign (numpy's choice(n)), a
-- float uniform in (-range, range); a fraction of the size when below 1
local function pick_shift(r, range, size)
  if not range or range == 0 then return 0 end
  local v, mx
  if type(range) == "table" then
    v = range[r.int(#range) + 1] * (r.int(2) == 0 and -1 or 1)
    mx = -math.huge
    for _, e in ipairs(range) do mx = math.max(mx, e) end
  elseif math.type(range) == "integer" then
    v, mx = r.int(range) * (r.int(2) == 0 and -1 or 1), range
  else
    v, mx = r.uniform(-range, range), range
  end
  if mx < 1 then v = v * size end
  return v
end

--- g:get_random_transform(shape, seed) -> Keras's parameter table
function Gen:get_random_transform(shape, seed, r)
  r = r or rng(seed)
  local p = {}
  p.theta = self.rotation_range ~= 0 and r.uniform(-self.rotation_range, self.rotation_range) or 0
  p.tx = pick_shift(r, self.height_shift_range, shape[1])
  p.ty = pick_shift(r, self.width_shift_range, shape[2])
  p.shear = self.shear_range ~= 0 and r.uniform(-self.shear_range, self.shear_range) or 0
  local z = self.zoom_range
  if z[1] == 1 and z[2] == 1 then p.zx, p.zy = 1, 1
  else p.zx, p.zy = r.uniform(z[1], z[2]), r.uniform(z[1], z[2]) end
  p.flip_horizontal = self.horizontal_flip and r.uniform(0, 1) < 0.5 or false
  p.flip_vertical = self.vertical_flip and r.uniform(0, 1) < 0.5 or false
  if self.channel_shift_range ~= 0 then
    p.channel_shift_intensity = r.uniform(-self.channel_shift_range, self.channel_shift_range)
  end
  if self.brightness_range then
    p.brightness = r.uniform(self.brightness_range[1], self.brightness_range[2])
  end
  return p
end

local function matmul3(a, b)
  local c = {}
  for i = 0, 2 do
    for j = 0, 2 do
      local s = 0
      for k = 0, 2 do s = s + a[i * 3 + k + 1] * b[k * 3 + j + 1] end
      c[i * 3 + j + 1] = s
    end
  end
  return c
end

-- keras-preprocessing's apply_affine_transform: rotation, shift, shear, zoom
-- composed in that order, then centred on the image ((h/2 + 0.5, w/2 + 0.5))
local function affine_matrix(p, h, w)
  local m
  local function comp(x) m = m and matmul3(m, x) or x end
  local theta, tx, ty, shear = p.theta or 0, p.tx or 0, p.ty or 0, p.shear or 0
  local zx, zy = p.zx or 1, p.zy or 1
  if theta ~= 0 then
    local t = math.rad(theta)
    comp{math.cos(t), -math.sin(t), 0, math.sin(t), math.cos(t), 0, 0, 0, 1}
  end
  if tx ~= 0 or ty ~= 0 then comp{1, 0, tx, 0, 1, ty, 0, 0, 1} end
  if shear ~= 0 then
    local s = math.rad(shear)
    comp{1, -math.sin(s), 0, 0, math.cos(s), 0, 0, 0, 1}
  end
  if zx ~= 1 or zy ~= 1 then comp{zx, 0, 0, 0, zy, 0, 0, 0, 1} end
  if not m then return nil end
  local ox, oy = h / 2 + 0.5, w / 2 + 0.5
  m = matmul3(matmul3({1, 0, ox, 0, 1, oy, 0, 0, 1}, m), {1, 0, -ox, 0, 1, -oy, 0, 0, 1})
  return m
end

local function push_params(list, p, h, w)
  local m = affine_matrix(p, h, w)
  local n = #list
  if m then
    for k, v in ipairs{m[1], m[2], m[3], m[4], m[5], m[6]} do list[n + k] = v end
    list[n + 7] = 1
  else
    for k = 1, 6 do list[n + k] = 0 end
    list[n + 7] = 0
  end
  list[n + 8] = p.channel_shift_intensity or (0 / 0)
  list[n + 9] = p.flip_horizontal and 1 or 0
  list[n + 10] = p.flip_vertical and 1 or 0
  list[n + 11] = p.brightness or (0 / 0)
  list[n + 12] = 0
end

local function batch_tensor(who, x)
  if not is_tensor(x) then x = keras.tensor(x) end
  if #x.shape ~= 4 then
    fail("%s: expected images of shape (samples, height, width, channels), got shape (%s)",
      who, table.concat(x.shape, ", "))
  end
  return x
end

local function transform_batch(self, x, params)
  local list = {}
  for _, p in ipairs(params) do push_params(list, p, x.shape[2], x.shape[3]) end
  local ok, y = pcall(core.image_transform, x, list, FILL[self.fill_mode], self.cval)
  if not ok then raise(tostring(y)) end
  return y
end

--- g:apply_transform(x, params): x one (height, width, channels) image
function Gen:apply_transform(x, params)
  image_tensor("apply_transform", x)
  if not is_plain(params) then fail("apply_transform: params must be a table, got %s", type(params)) end
  local s = x.shape
  return transform_batch(self, x:reshape{1, s[1], s[2], s[3]}, {params}):reshape{s[1], s[2], s[3]}
end

--- g:random_transform(x, seed)
function Gen:random_transform(x, seed)
  image_tensor("random_transform", x)
  return self:apply_transform(x, self:get_random_transform(x.shape, seed))
end

-- standardize on a batch (n, h, w, c): each sample as Keras's standardize
local function standardize_batch(self, x)
  if self.preprocessing_function then
    local n = x.shape[1]
    local parts = {}
    for i = 1, n do
      local s = x:slice(i, i):reshape{x.shape[2], x.shape[3], x.shape[4]}
      local y = self.preprocessing_function(s)
      if not is_tensor(y) or #y.shape ~= 3 then
        fail("ImageDataGenerator: preprocessing_function must return a (height, width, channels) tensor")
      end
      parts[i] = y:reshape{1, y.shape[1], y.shape[2], y.shape[3]}
    end
    x = n == 1 and parts[1] or K.concatenate(parts, 0)
  end
  if self.rescale and self.rescale ~= 0 then x = x * self.rescale end
  if self.samplewise_center then x = x - K.mean(x, {1, 2, 3}, true) end
  if self.samplewise_std_normalization then x = x / (K.std(x, {1, 2, 3}, true) + K.epsilon()) end
  if self.featurewise_center then
    if not self.mean then
      fail("ImageDataGenerator: featurewise_center is set but the generator has not been fit on any data; "
        .. "call fit(x) first")
    end
    x = x - self.mean
  end
  if self.featurewise_std_normalization then
    if not self.std then
      fail("ImageDataGenerator: featurewise_std_normalization is set but the generator has not been fit on any "
        .. "data; call fit(x) first")
    end
    x = x / (self.std + K.epsilon())
  end
  if self.zca_whitening then
    if not self.principal_components then
      fail("ImageDataGenerator: zca_whitening is set but the generator has not been fit on any data; "
        .. "call fit(x) first")
    end
    local s = x.shape
    x = K.dot(x:reshape{s[1], s[2] * s[3] * s[4]}, self.principal_components):reshape(s)
  end
  return x
end

--- g:standardize(x): one image or a batch of them
function Gen:standardize(x)
  if not is_tensor(x) then fail("standardize: expected a tensor, got %s", type(x)) end
  if #x.shape == 3 then
    local s = x.shape
    return standardize_batch(self, x:reshape{1, s[1], s[2], s[3]}):reshape{s[1], s[2], s[3]}
  end
  return standardize_batch(self, batch_tensor("standardize", x))
end

--- g:fit(x): the per-channel mean and std of x (samples, height, width, channels)
function Gen:fit(x, o)
  x = batch_tensor("fit", x)
  if o ~= nil and not is_plain(o) then fail("fit: options must be a table, got %s", type(o)) end
  if o and (o.augment or (o.rounds and o.rounds ~= 1)) then
    fail("fit: augment and rounds are not supported by this version")
  end
  local c = x.shape[4]
  if self.featurewise_center then
    self.mean = K.mean(x, {0, 1, 2}):reshape{1, 1, c}
    x = x - self.mean
  end
  if self.featurewise_std_normalization then
    self.std = K.std(x, {0, 1, 2}):reshape{1, 1, c}
    x = x / (self.std + K.epsilon())
  end
  if self.zca_whitening then
    local s = x.shape
    local ok, pc = pcall(core.image_zca, x:reshape{s[1], s[2] * s[3] * s[4]}, self.zca_epsilon)
    if not ok then raise(tostring(pc)) end
    self.principal_components = pc
  end
end

-- ---- iterators (keras.utils.Sequence) ----

local Iter = Sequence:extend("Iterator")

local FLOW_OPTS = set{"batch_size", "shuffle", "seed", "subset", "sample_weight", "save_to_dir",
  "save_prefix", "save_format"}

local function iter_common(it, who, g, n, o)
  local bs = o.batch_size or 32
  if math.type(bs) ~= "integer" or bs < 1 then
    fail("%s: batch_size must be a positive integer, got %s", who, tostring(bs))
  end
  local sh = o.shuffle
  if sh == nil then sh = true end
  if type(sh) ~= "boolean" then fail("%s: shuffle must be a boolean, got %s", who, tostring(sh)) end
  if o.seed ~= nil and math.type(o.seed) ~= "integer" then
    fail("%s: seed must be an integer, got %s", who, tostring(o.seed))
  end
  if o.save_to_dir then fail("%s: save_to_dir is not supported by this version", who) end
  if n < 1 then fail("%s: there are no images to iterate over", who) end
  it.gen, it.n, it.batch_size, it.shuffle = g, n, bs, sh
  it.seed = o.seed or math.random(0, 0x7fffffff)
  it.epoch = 0
  it:_set_index_array()
end

function Iter:_set_index_array()
  if self.shuffle then
    self.index_array = rng(self.seed * 7919 + self.epoch).permutation(self.n)
  else
    local a = {}
    for i = 1, self.n do a[i] = i end
    self.index_array = a
  end
end

function Iter:len() return (self.n + self.batch_size - 1) // self.batch_size end

function Iter:on_epoch_end()
  self.epoch = self.epoch + 1
  self:_set_index_array()
end

-- the rows (1-based) of batch i, and the random stream of its transforms
function Iter:_batch(i)
  if math.type(i) ~= "integer" or i < 1 or i > self:len() then
    fail("%s: batch %s is out of range 1..%d", self.class_name, tostring(i), self:len())
  end
  local rows = {}
  for k = (i - 1) * self.batch_size + 1, math.min(i * self.batch_size, self.n) do
    rows[#rows + 1] = self.index_array[k]
  end
  return rows, rng(((self.seed * 1000003 + self.epoch) * 1000003 + i) & 0x7fffffffffffffff)
end

-- the random transforms of n samples of shape (h, w, c), drawn from r in
-- Keras's order, as image_transform's flat parameter list
local function batch_params(g, shape, n, r)
  local list = {}
  for _ = 1, n do push_params(list, g:get_random_transform(shape, nil, r), shape[1], shape[2]) end
  return list
end

-- transform and standardize a batch, as Keras does sample by sample
local function prepare_batch(g, x, r)
  local list = batch_params(g, {x.shape[2], x.shape[3], x.shape[4]}, x.shape[1], r)
  local ok, y = pcall(core.image_transform, x, list, FILL[g.fill_mode], g.cval)
  if not ok then raise(tostring(y)) end
  return standardize_batch(g, y)
end

-- A batch made ahead (generators.lua's _prefetch protocol): the rows are
-- gathered, or the files read, and the random transforms applied on a worker
-- thread while the current batch trains; wait() then standardizes it (whole-
-- batch tensor operations) and returns what get(i) returns, bit for bit. With
-- a preprocessing_function (Lua, sample by sample) the batch is made in wait().
-- At most two batches are made ahead: each is a thread beside the training step.
Iter._prefetch_depth = 2

local Ahead = {}
Ahead.__index = Ahead
function Ahead:wait()
  local ok, x = pcall(self.job.wait, self.job)
  if not ok then raise(tostring(x)) end
  x = standardize_batch(self.gen, x)
  if self.y == nil then return x end
  return x, self.y
end

local function ahead(it, i, spec, shape, y)
  local g = it.gen
  if g.preprocessing_function then return {wait = function() return it:get(i) end} end
  local rows, r = it:_batch(i)
  spec.params = batch_params(g, shape, #rows, r)
  spec.fill, spec.cval = FILL[g.fill_mode], g.cval
  return setmetatable({job = core.image_batch_async(spec), gen = g, y = y}, Ahead)
end

local ArrayIter = Iter:extend("NumpyArrayIterator")

local function subset_arg(who, g, subset)
  if subset ~= nil and subset ~= "training" and subset ~= "validation" then
    fail("%s: subset must be \"training\" or \"validation\", got %s", who, tostring(subset))
  end
  if subset and g.validation_split == 0 then
    fail("%s: subset is given but the generator's validation_split is 0", who)
  end
  return subset
end

--- g:flow(x, y, {batch_size=32, shuffle=true, seed=nil, subset=nil}) -> a Sequence
function Gen:flow(x, y, o)
  local who = "flow"
  if o == nil and is_plain(y) and y[1] == nil then o, y = y, nil end
  o = opts_of(who, o)
  check_known(who, o, FLOW_OPTS)
  if o.sample_weight ~= nil then fail("flow: sample_weight is not supported by this version") end
  x = batch_tensor(who, x)
  if y ~= nil and not is_tensor(y) then y = keras.tensor(y) end
  if y ~= nil and y.shape[1] ~= x.shape[1] then
    fail("flow: x and y must have the same number of samples, got %d and %d", x.shape[1], y.shape[1])
  end
  if not MODES[x.shape[4]] then
    fail("flow: images must have 1, 3 or 4 channels, got %d", x.shape[4])
  end
  local subset = subset_arg(who, self, o.subset)
  if subset then
    local split = math.floor(x.shape[1] * self.validation_split)
    if split < 1 or split >= x.shape[1] then
      fail("flow: validation_split %g leaves an empty subset of %d samples", self.validation_split, x.shape[1])
    end
    if y ~= nil then
      local function classes(t)
        local s, list = {}, {}
        for _, v in ipairs(t:reshape{-1}:totable()) do if not s[v] then s[v] = true; list[#list + 1] = v end end
        table.sort(list)
        return table.concat(list, ",")
      end
      if classes(y:slice(1, split)) ~= classes(y:slice(split + 1)) then
        fail("flow: training and validation subsets have different classes after the split "
          .. "(validation_split %g); shuffle the data first", self.validation_split)
      end
    end
    if subset == "validation" then
      x, y = x:slice(1, split), y and y:slice(1, split)
    else
      x, y = x:slice(split + 1), y and y:slice(split + 1)
    end
  end
  local it = ArrayIter()
  it.x, it.y = x, y
  iter_common(it, who, self, x.shape[1], o)
  return it
end

function ArrayIter:get(i)
  local rows, r = self:_batch(i)
  local bx = prepare_batch(self.gen, self.x:take(rows), r)
  if self.y == nil then return bx end
  return bx, self.y:take(rows)
end

function ArrayIter:_prefetch(i)
  local rows = self:_batch(i)
  local s = self.x.shape
  return ahead(self, i, {src = self.x, rows = rows}, {s[2], s[3], s[4]}, self.y and self.y:take(rows))
end
ArrayIter._prefetch_get = ArrayIter.get

-- ---- flow_from_directory ----

local EXTS = {png = true, jpg = true, jpeg = true}
local CLASS_MODES = {categorical = true, binary = true, sparse = true, input = true}

local function walk(dir, out)
  local ok, names, kinds = pcall(core.list_dir, dir)
  if not ok then raise(tostring(names)) end
  local idx = {}
  for i = 1, #names do idx[i] = i end
  table.sort(idx, function(a, b) return names[a] < names[b] end)
  for _, i in ipairs(idx) do
    local p = dir .. "/" .. names[i]
    if kinds[i] == "dir" then walk(p, out)
    else
      local ext = names[i]:match("%.([%w]+)$")
      if ext and EXTS[ext:lower()] then out[#out + 1] = p end
    end
  end
end

local DirIter = Iter:extend("DirectoryIterator")

--- g:flow_from_directory(dir, {target_size={256, 256}, color_mode="rgb", classes=nil,
---   class_mode="categorical", batch_size=32, shuffle=true, seed=nil, subset=nil,
---   interpolation="nearest"}) -> a Sequence of (x, y) batches
function Gen:flow_from_directory(dir, o)
  local who = "flow_from_directory"
  o = opts_of(who, o)
  check_known(who, o, set{"target_size", "color_mode", "classes", "class_mode", "batch_size", "shuffle",
    "seed", "subset", "interpolation", "save_to_dir", "save_prefix", "save_format", "follow_links"})
  if type(dir) ~= "string" then fail("%s: directory must be a string, got %s", who, type(dir)) end
  local ts = target_size_arg(who, o.target_size or {256, 256})
  local cm = color_mode_arg(who, o.color_mode or "rgb")
  local mode = o.class_mode
  if mode == nil then mode = "categorical" end
  if mode ~= false and not CLASS_MODES[mode] then
    fail("%s: class_mode must be \"categorical\", \"binary\", \"sparse\", \"input\" or false (no labels), got %s",
      who, tostring(mode))
  end
  if (o.interpolation or "nearest") ~= "nearest" then
    fail("%s: interpolation must be \"nearest\" (the only one supported), got %s", who, tostring(o.interpolation))
  end
  local subset = subset_arg(who, self, o.subset)
  local classes = o.classes
  if classes == nil then
    local ok, names, kinds = pcall(core.list_dir, dir)
    if not ok then raise(tostring(names)) end
    classes = {}
    for i = 1, #names do if kinds[i] == "dir" then classes[#classes + 1] = names[i] end end
    table.sort(classes)
  elseif not is_plain(classes) then
    fail("%s: classes must be a list of subdirectory names, got %s", who, type(classes))
  end
  local it = DirIter()
  it.filenames, it.classes, it.class_indices = {}, {}, {}
  for ci, name in ipairs(classes) do
    it.class_indices[name] = ci - 1
    local files = {}
    walk(dir .. "/" .. name, files)
    local n = #files
    local a, b = 1, n
    if subset then
      local split = math.floor(self.validation_split * n)
      if subset == "validation" then b = split else a = split + 1 end
    end
    for k = a, b do
      it.filenames[#it.filenames + 1] = files[k]
      it.classes[#it.classes + 1] = ci - 1
    end
  end
  it.num_classes, it.class_mode, it.color_mode, it.target_size = #classes, mode, cm, ts
  it.samples = #it.filenames
  io.stdout:write(string.format("Found %d images belonging to %d classes.\n", it.samples, #classes))
  iter_common(it, who, self, it.samples, o)
  return it
end

-- the batch's targets for class_mode (bx: the images, for "input")
local function dir_targets(self, rows, bx)
  local mode = self.class_mode
  if mode == false then return nil end
  if mode == "input" then return bx:copy() end
  local labels = {}
  for k, row in ipairs(rows) do labels[k] = self.classes[row] end
  if mode == "sparse" or mode == "binary" then return keras.tensor(labels) end
  local onehot = {}
  for k, c in ipairs(labels) do
    local v = {}
    for j = 1, self.num_classes do v[j] = (j - 1 == c) and 1 or 0 end
    onehot[k] = v
  end
  return keras.tensor(onehot)
end

function DirIter:get(i)
  local rows, r = self:_batch(i)
  local imgs = {}
  for k, row in ipairs(rows) do
    local img = I.load_img(self.filenames[row], {color_mode = self.color_mode, target_size = self.target_size})
    imgs[k] = img._t:reshape{1, img.height, img.width, #img._t.shape == 3 and img._t.shape[3] or 1}
  end
  local x = #imgs == 1 and imgs[1] or K.concatenate(imgs, 0)
  local bx = prepare_batch(self.gen, x, r)
  if self.class_mode == false then return bx end
  return bx, dir_targets(self, rows, bx)
end

local AheadInput = setmetatable({}, {__index = Ahead})
AheadInput.__index = AheadInput
function AheadInput:wait()
  local bx = Ahead.wait(self)
  return bx, bx:copy()
end

function DirIter:_prefetch(i)
  local rows = self:_batch(i)
  local files = {}
  for k, row in ipairs(rows) do files[k] = self.filenames[row] end
  local ts, c = self.target_size, CHANNELS[self.color_mode]
  local spec = {files = files, channels = c, height = ts[1], width = ts[2]}
  local y = self.class_mode ~= "input" and dir_targets(self, rows) or nil
  local job = ahead(self, i, spec, {ts[1], ts[2], c}, y)
  if self.class_mode == "input" and getmetatable(job) == Ahead then setmetatable(job, AheadInput) end
  return job
end
DirIter._prefetch_get = DirIter.get

return I
