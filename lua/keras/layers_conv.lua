-- keras.layers, the convolution family (Keras 2.2.4, channels_last):
-- Conv1D, Conv2D, MaxPooling1D/2D, AveragePooling1D/2D, the global poolings,
-- ZeroPadding1D/2D, Cropping1D/2D, UpSampling1D/2D, SpatialDropout1D/2D;
-- and, built on the backend's functions (backend_nn.lua, see
-- docs/conv_layers.md), Conv2DTranspose, Conv3DTranspose, SeparableConv1D/2D,
-- DepthwiseConv2D, Conv3D and the 3-D poolings, padding, cropping, upsampling,
-- LocallyConnected1D/2D.
-- Loaded after layers.lua as `local keras = ...`; each class is declared
-- with keras.layers._define and adds C ops (src/ops_conv.h) when called:
--   conv2d   {stride_h, stride_w, dilation_h, dilation_w, pad_top, pad_bottom,
--            pad_left, pad_right, relu (1: the relu fused)}
--   max_pool2d / avg_pool2d   {pool_h, pool_w, stride_h, stride_w, pad_top, ...}
--   pad2d / crop2d  {top, bottom, left, right}; upsample2d {size_h, size_w};
--   spatial_dropout {rate}: attributes by name (the op table's, src/ops_conv.c).
-- The 1-D layers run the same ops on (batch, steps, channels) tensors, where
-- the height entries are neutral. 'same' padding is TensorFlow's: the total
-- max((ceil(n/s) - 1)*s + (k-1)*d + 1 - n, 0), the extra one at the
-- bottom/right; 'causal' pads (k-1)*d on the left. Shapes use -1 for the
-- batch axis internally; layer shape errors name the layer and are raised
-- when the layer is built.
local keras = ...
local util = require("keras.util")
local is_plain = util.is_plain
local raise = util.raise
local K = keras.backend
local A, I = keras.activations, keras.initializers
local layers = keras.layers
local define, check_int, check_number = layers._define, layers._check_int, layers._check_number
local shape_str = layers._shape_str

-- ---- argument helpers ----

-- a plain table holding only integers at 1..#t
local function int_seq(t)
  if not is_plain(t) or #t == 0 then return false end
  for k, v in pairs(t) do
    if math.type(k) ~= "integer" or k < 1 or k > #t or math.type(v) ~= "integer" then return false end
  end
  return true
end

-- an integer or a list of n integers (Keras's conv_utils.normalize_tuple)
local function tuple(who, name, v, n, lo)
  lo = lo or 1
  local out = {}
  -- Layer{3} reads as a one-element list where Keras reads the integer 3
  if int_seq(v) and #v == 1 then v = v[1] end
  if math.type(v) == "integer" then
    for i = 1, n do out[i] = v end
  elseif int_seq(v) and #v == n then
    for i = 1, n do out[i] = v[i] end
  else
    raise(string.format("%s: %s must be an integer or a list of %d integers, got %s", who, name, n,
      type(v) == "table" and "a table of " .. #v or tostring(v)))
  end
  for i = 1, n do
    if out[i] < lo then
      raise(string.format("%s: %s must hold integers >= %d, got %d", who, name, lo, out[i]))
    end
  end
  return out
end

local function padding_arg(who, v, causal_ok)
  v = v or "valid"
  if type(v) == "string" then v = v:lower() end
  if v == "valid" or v == "same" or (causal_ok and v == "causal") then return v end
  raise(string.format("%s: padding must be %s, got %s", who,
    causal_ok and "'valid', 'same' or 'causal'" or "'valid' or 'same'",
    type(v) == "string" and ("'" .. v .. "'") or tostring(v)))
end

local function data_format_arg(who, v)
  if v == nil or v == "channels_last" then return "channels_last" end
  raise(string.format("%s: data_format %s is not supported (channels_last only)",
    who, type(v) == "string" and ("'" .. v .. "'") or tostring(v)))
end

local function regularizer(who, r) return util.regularizer(keras, who, r) end
local function constraint(who, c) return util.constraint(keras, who, c) end

-- pads (before, after) on one axis of size n for a window k, stride s, dilation d
local function pads(mode, n, k, s, d)
  if mode == "valid" then return 0, 0 end
  if mode == "causal" then return (k - 1) * d, 0 end
  local out = (n + s - 1) // s
  local total = math.max((out - 1) * s + (k - 1) * d + 1 - n, 0)
  return total // 2, total - total // 2
end

-- ZeroPadding2D({{1, 1}, {2, 2}}): a lone list of two pairs is the amounts
local function amounts_value(t)
  return layers._number_list(t) or (#t == 2 and next(t, 2) == nil and int_seq(t[1]) and int_seq(t[2]))
end

-- ---- convolution ----

local CONV_KEYS = {"filters", "kernel_size", "strides", "padding", "data_format", "dilation_rate", "activation",
  "use_bias", "kernel_initializer", "bias_initializer", "kernel_regularizer", "bias_regularizer",
  "activity_regularizer", "kernel_constraint", "bias_constraint"}


-- use_bias and the initializer, regularizer and constraint options of a
-- convolution layer's main weight (`main`: "kernel" or "depthwise"), its bias
-- and its output (activity_regularizer)
local function weight_options(self, o, who, main)
  self.use_bias = o.use_bias == nil and true or not not o.use_bias
  self[main .. "_initializer"] = I.get(o[main .. "_initializer"] or "glorot_uniform", who)
  self.bias_initializer = I.get(o.bias_initializer or "zeros", who)
  self[main .. "_regularizer"] = regularizer(who, o[main .. "_regularizer"])
  self.bias_regularizer = regularizer(who, o.bias_regularizer)
  self.activity_regularizer = regularizer(who, o.activity_regularizer)
  self[main .. "_constraint"] = constraint(who, o[main .. "_constraint"])
  self.bias_constraint = constraint(who, o.bias_constraint)
end

-- kernel_size, strides and dilation_rate of a convolution layer as tuples of
-- `rank`, written back into o (the layer's _args, where its config starts) as
-- Keras writes them
local function kernel_geometry(self, o, who, rank)
  if o.kernel_size == nil then raise(who .. ": missing argument 'kernel_size'") end
  self.kernel_size = tuple(who, "kernel_size", o.kernel_size, rank)
  self.strides = tuple(who, "strides", o.strides or 1, rank)
  self.dilation_rate = tuple(who, "dilation_rate", o.dilation_rate or 1, rank)
  o.kernel_size = self.kernel_size
  if o.strides ~= nil then o.strides = self.strides end
  if o.dilation_rate ~= nil then o.dilation_rate = self.dilation_rate end
end
local function conv_init(rank)
  return function(self, o)
    local who = self.class_name
    self.rank = rank
    self.filters = check_int(who, "filters", o.filters)
    kernel_geometry(self, o, who, rank)
    self.padding = padding_arg(who, o.padding, rank == 1)
    self.data_format = data_format_arg(who, o.data_format)
    self.activation, self._act_name = A.get(o.activation, who)
    weight_options(self, o, who, "kernel")
  end
end

-- the spatial sizes of an input shape, checked against the layer's rank
local function spatial(self, shape, rank)
  local want = rank + 2
  if #shape ~= want then
    local layout = rank == 1 and "(batch, steps, channels)" or rank == 2 and "(batch, rows, cols, channels)"
      or "(batch, depth, rows, cols, channels)"
    error(self:_msg("expected input with ndim=%d %s, found ndim=%d (shape %s)", want, layout, #shape,
      shape_str(shape)), 0)
  end
  local s = {}
  for i = 1, rank do s[i] = shape[i + 1] end
  return s
end

local function dims_str(t) return table.concat(t, "x") end

local function conv_build(self, shape)
  local rank = self.rank
  local size = spatial(self, shape, rank)
  local c = shape[#shape]
  if self.padding == "valid" then
    local ext, big = {}, false
    for i = 1, rank do
      ext[i] = (self.kernel_size[i] - 1) * self.dilation_rate[i] + 1
      if size[i] >= 0 and ext[i] > size[i] then big = true end   -- a None length is checked per length
    end
    if big then
      local dil = ""
      for i = 1, rank do
        if self.dilation_rate[i] ~= 1 then
          dil = string.format(" with dilation %s (extent %s)", dims_str(self.dilation_rate), dims_str(ext))
        end
      end
      error(self:_msg("kernel size %s%s is larger than the input %s (padding 'valid')", dims_str(self.kernel_size),
        dil, dims_str(size)), 0)
    end
  end
  local kshape = {}
  for i = 1, rank do kshape[i] = self.kernel_size[i] end
  kshape[rank + 1], kshape[rank + 2] = c, self.filters
  self.input_channels = c
  self:_add_kernel_and_bias(kshape, self.filters)
end

local function conv_call(self, x)
  local rank = self.rank
  local s = x.shape
  local size = spatial(self, s, rank)
  if s[#s] ~= self.input_channels then
    error(self:_msg("expected input with %d channels (last axis), got shape %s", self.input_channels, shape_str(s)), 0)
  end
  local ks, st, dl = self.kernel_size, self.strides, self.dilation_rate
  local attr
  if rank == 2 then
    local pt, pb = pads(self.padding, size[1], ks[1], st[1], dl[1])
    local pl, pr = pads(self.padding, size[2], ks[2], st[2], dl[2])
    attr = {stride_h = st[1], stride_w = st[2], dilation_h = dl[1], dilation_w = dl[2],
            pad_top = pt, pad_bottom = pb, pad_left = pl, pad_right = pr}
  else
    local pl, pr = pads(self.padding, size[1], ks[1], st[1], dl[1])
    attr = {stride_h = 1, stride_w = st[1], dilation_h = 1, dilation_w = dl[1],
            pad_top = 0, pad_bottom = 0, pad_left = pl, pad_right = pr}
  end
  local fuse = self._act_name == "relu"
  local inputs = {x, self.kernel}
  if self.use_bias then inputs[3] = self.bias end
  attr.relu = fuse and 1 or 0
  local y = K.apply("conv2d", inputs, attr)
  if not fuse then y = self.activation(y) end
  self:_activity_loss(y)
  return y
end

for rank = 1, 2 do
  local name = "Conv" .. rank .. "D"
  local cls = define(name, CONV_KEYS, CONV_KEYS, conv_init(rank))
  cls._prefix = "conv" .. rank .. "d"
  cls.build, cls.call = conv_build, conv_call
end
layers.Convolution1D, layers.Convolution2D = layers.Conv1D, layers.Conv2D

-- ---- pooling ----

-- a pooling layer's pool_size, strides (pool_size by default), padding and
-- data_format, written back into o as Keras writes them
local function pool_options(self, o, name, rank)
  self.rank = rank
  self.pool_size = tuple(name, "pool_size", o.pool_size or 2, rank)
  self.strides = o.strides == nil and {table.unpack(self.pool_size)} or tuple(name, "strides", o.strides, rank)
  if o.pool_size ~= nil then o.pool_size = self.pool_size end
  if o.strides ~= nil then o.strides = self.strides end
  self.padding = padding_arg(name, o.padding)
  self.data_format = data_format_arg(name, o.data_format)
end

local function pool_class(name, prefix, rank, op)
  local cls = define(name, {"pool_size", "strides", "padding", "data_format"},
    {"pool_size", "strides", "padding", "data_format"}, function(self, o)
      pool_options(self, o, name, rank)
    end, {first_is_sequence = true})
  cls._prefix = prefix
  function cls:build(shape)
    local size = spatial(self, shape, rank)
    if self.padding == "valid" then
      for i = 1, rank do
        if size[i] >= 0 and self.pool_size[i] > size[i] then
          error(self:_msg("pool size %s is larger than the input %s (padding 'valid')", dims_str(self.pool_size),
            dims_str(size)), 0)
        end
      end
    end
  end
  function cls:call(x)
    local size = spatial(self, x.shape, rank)
    local ps, st = self.pool_size, self.strides
    local attr
    if rank == 2 then
      local pt, pb = pads(self.padding, size[1], ps[1], st[1], 1)
      local pl, pr = pads(self.padding, size[2], ps[2], st[2], 1)
      attr = {pool_h = ps[1], pool_w = ps[2], stride_h = st[1], stride_w = st[2],
              pad_top = pt, pad_bottom = pb, pad_left = pl, pad_right = pr}
    else
      local pl, pr = pads(self.padding, size[1], ps[1], st[1], 1)
      attr = {pool_h = 1, pool_w = ps[1], stride_h = 1, stride_w = st[1],
              pad_top = 0, pad_bottom = 0, pad_left = pl, pad_right = pr}
    end
    return K.apply(op, {x}, attr)
  end
  return cls
end

pool_class("MaxPooling1D", "max_pooling1d", 1, "max_pool2d")
pool_class("MaxPooling2D", "max_pooling2d", 2, "max_pool2d")
pool_class("AveragePooling1D", "average_pooling1d", 1, "avg_pool2d")
pool_class("AveragePooling2D", "average_pooling2d", 2, "avg_pool2d")
layers.MaxPool1D, layers.MaxPool2D = layers.MaxPooling1D, layers.MaxPooling2D
layers.AvgPool1D, layers.AvgPool2D = layers.AveragePooling1D, layers.AveragePooling2D

-- the mean over the spatial axes as one average-pooling window (the pooling
-- kernel is vectorized over the channels and threaded over the samples), then
-- a reshape to (batch, channels); K.mean beyond the window limit. (The masked
-- mean of GlobalAveragePooling1D is added by layers_rnn.lua, with the masks.)
local function spatial_mean(x, axes)
  local s = x.shape
  local rows, cols = #s == 4 and s[2] or 1, s[#s - 1]
  if rows < 0 or cols < 0 or rows * cols > 65535 then return K.mean(x, axes) end   -- < 0: a None length
  local y = K.apply("avg_pool2d", {x}, {pool_h = rows, pool_w = cols, stride_h = rows, stride_w = cols})
  return K.apply("reshape", {y}, {shape = {s[1], s[#s]}})
end

local function global_pool(name, prefix, rank, reduce)
  local cls = define(name, {"data_format"}, {"data_format"}, function(self, o)
    self.data_format = data_format_arg(name, o.data_format)
  end)
  cls._prefix = prefix
  function cls:build(shape) spatial(self, shape, rank) end
  function cls:call(x)
    spatial(self, x.shape, rank)
    return reduce(x, rank == 1 and 1 or rank == 2 and {1, 2} or {1, 2, 3})
  end
  return cls
end

global_pool("GlobalAveragePooling1D", "global_average_pooling1d", 1, spatial_mean)
global_pool("GlobalMaxPooling1D", "global_max_pooling1d", 1, K.max)
global_pool("GlobalAveragePooling2D", "global_average_pooling2d", 2, spatial_mean)
global_pool("GlobalMaxPooling2D", "global_max_pooling2d", 2, K.max)
layers.GlobalAvgPool1D, layers.GlobalMaxPool1D = layers.GlobalAveragePooling1D, layers.GlobalMaxPooling1D

layers.GlobalAvgPool2D, layers.GlobalMaxPool2D = layers.GlobalAveragePooling2D, layers.GlobalMaxPooling2D

-- ---- padding and cropping ----

-- 1-D: an integer or (left, right); 2-D: an integer, (rows, cols) symmetric,
-- or ((top, bottom), (left, right)) -> {top, bottom, left, right}
local function amounts(who, name, v, rank)
  local function bad()
    raise(string.format(rank == 1 and "%s: %s must be an integer or a list of 2 integers (left, right), got %s"
      or "%s: %s must be an integer, a list of 2 integers or a list of 2 lists of 2 integers, got %s",
      who, name, type(v) == "table" and "a table" or tostring(v)))
  end
  local out
  if int_seq(v) and #v == 1 then v = v[1] end   -- Layer{1}: the integer 1
  if math.type(v) == "integer" then
    out = rank == 1 and {0, 0, v, v} or {v, v, v, v}
  elseif rank == 1 then
    if not (int_seq(v) and #v == 2) then bad() end
    out = {0, 0, v[1], v[2]}
  elseif int_seq(v) and #v == 2 then
    out = {v[1], v[1], v[2], v[2]}
  elseif is_plain(v) and #v == 2 and int_seq(v[1]) and #v[1] == 2 and int_seq(v[2]) and #v[2] == 2 then
    out = {v[1][1], v[1][2], v[2][1], v[2][2]}
  else
    bad()
  end
  for _, a in ipairs(out) do
    if a < 0 then raise(string.format("%s: %s must not be negative, got %d", who, name, a)) end
  end
  return out
end

local function amounts_config(self, t)
  if self.rank == 1 then return {t[3], t[4]} end
  return {{t[1], t[2]}, {t[3], t[4]}}
end

local function pad_class(name, prefix, rank, key, default, op)
  -- Keras 2.2.4: ZeroPadding1D(padding), ZeroPadding2D(padding, data_format)
  local cls = define(name, rank == 1 and {key} or {key, "data_format"}, {key, "data_format"}, function(self, o)
    self.rank = rank
    self[key] = amounts(name, key, o[key] == nil and default or o[key], rank)
    if o[key] ~= nil then o[key] = amounts_config(self, self[key]) end
    self.data_format = data_format_arg(name, o.data_format)
  end, {single = amounts_value})
  cls._prefix = prefix
  function cls:build(shape)
    local size = spatial(self, shape, rank)
    if op == "crop2d" then
      local a = self[key]
      local rows = rank == 2 and size[1] - a[1] - a[2] or 1
      local cols = size[rank] - a[3] - a[4]
      if (rows < 1 and size[1] >= 0) or (cols < 1 and size[rank] >= 0) then   -- a None length: checked per length
        error(self:_msg("cropping %s leaves nothing of an input of shape %s",
          rank == 1 and string.format("(%d, %d)", a[3], a[4])
            or string.format("((%d, %d), (%d, %d))", a[1], a[2], a[3], a[4]), shape_str(shape)), 0)
      end
    end
  end
  function cls:call(x)
    spatial(self, x.shape, rank)
    local a = self[key]
    return K.apply(op, {x}, {top = a[1], bottom = a[2], left = a[3], right = a[4]})
  end
  return cls
end

pad_class("ZeroPadding1D", "zero_padding1d", 1, "padding", 1, "pad2d")
pad_class("ZeroPadding2D", "zero_padding2d", 2, "padding", 1, "pad2d")
pad_class("Cropping1D", "cropping1d", 1, "cropping", {1, 1}, "crop2d")
pad_class("Cropping2D", "cropping2d", 2, "cropping", 0, "crop2d")

-- ---- upsampling ----

local UpSampling2D = define("UpSampling2D", {"size", "data_format", "interpolation"},
  {"size", "data_format", "interpolation"}, function(self, o)
    self.size = tuple("UpSampling2D", "size", o.size or 2, 2)
    if o.size ~= nil then o.size = self.size end
    self.data_format = data_format_arg("UpSampling2D", o.data_format)
    self.interpolation = o.interpolation or "nearest"
    if self.interpolation ~= "nearest" then
      raise(string.format("UpSampling2D: interpolation '%s' is not supported (nearest only)",
        tostring(self.interpolation)))
    end
  end, {first_is_sequence = true})
UpSampling2D._prefix = "up_sampling2d"
function UpSampling2D:build(shape) spatial(self, shape, 2) end
function UpSampling2D:call(x)
  spatial(self, x.shape, 2)
  return K.apply("upsample2d", {x}, {size_h = self.size[1], size_w = self.size[2]})
end

local UpSampling1D = define("UpSampling1D", {"size"}, {"size"}, function(self, o)
  self.size = check_int("UpSampling1D", "size", o.size or 2)
end)
UpSampling1D._prefix = "up_sampling1d"
function UpSampling1D:build(shape) spatial(self, shape, 1) end
function UpSampling1D:call(x)
  spatial(self, x.shape, 1)
  return K.apply("upsample2d", {x}, {size_h = 1, size_w = self.size})
end

-- ---- spatial dropout: whole channels dropped (one draw per sample and channel) ----

local function sdrop_class(name, prefix, rank)
  -- Keras 2.2.4: SpatialDropout1D(rate), SpatialDropout2D/3D(rate, data_format)
  local cls = define(name, rank == 1 and {"rate"} or {"rate", "data_format"}, {"rate", "data_format"}, function(self, o)
    self.rate = check_number(name, "rate", o.rate, 0, 1)
    self.data_format = data_format_arg(name, o.data_format)
  end)
  cls._prefix = prefix
  local function check(self, shape)
    if rank == 3 and #shape ~= 5 then   -- spatial's layouts are the 1-D and 2-D ones
      error(self:_msg("expected input with ndim=5 (batch, dim1, dim2, dim3, channels), found ndim=%d (shape %s)",
        #shape, shape_str(shape)), 0)
    end
    spatial(self, shape, rank)
  end
  function cls:build(shape) check(self, shape) end
  function cls:call(x)
    check(self, x.shape)
    if self.rate > 0 then return K.apply("spatial_dropout", {x}, {rate = self.rate}) end
    return x
  end
  return cls
end

sdrop_class("SpatialDropout1D", "spatial_dropout1d", 1)
sdrop_class("SpatialDropout2D", "spatial_dropout2d", 2)
sdrop_class("SpatialDropout3D", "spatial_dropout3d", 3)

-- ---- transposed, separable, depthwise and 3-D convolutions, 3-D pooling,
-- padding, cropping and upsampling: built on the backend's functions
-- (backend_nn.lua), the bias added with K.bias_add ----

local function check_extent(self, size, ks, dl, what)
  if self.padding ~= "valid" then return end
  local ext, big = {}, false
  for i = 1, #ks do
    ext[i] = (ks[i] - 1) * (dl and dl[i] or 1) + 1
    if size[i] >= 0 and ext[i] > size[i] then big = true end
  end
  if big then
    error(self:_msg("%s %s is larger than the input %s (padding 'valid')", what, dims_str(ext), dims_str(size)), 0)
  end
end

local function check_channels(self, s)
  if s[#s] ~= self.input_channels then
    error(self:_msg("expected input with %d channels (last axis), got shape %s", self.input_channels, shape_str(s)), 0)
  end
end

-- the bias, the activation and the activity regularizer of a convolution's output
local function conv_finish(self, y)
  if self.use_bias then y = K.bias_add(y, self.bias) end
  y = self.activation(y)
  self:_activity_loss(y)
  return y
end

-- Conv3D: kernel (kd, kh, kw, in, filters)
local Conv3D = define("Conv3D", CONV_KEYS, CONV_KEYS, conv_init(3))
Conv3D._prefix = "conv3d"
function Conv3D:build(shape)
  local size = spatial(self, shape, 3)
  check_extent(self, size, self.kernel_size, self.dilation_rate, "kernel extent")
  local k = self.kernel_size
  self.input_channels = shape[5]
  self:_add_kernel_and_bias({k[1], k[2], k[3], shape[5], self.filters}, self.filters)
end
function Conv3D:call(x)
  spatial(self, x.shape, 3)
  check_channels(self, x.shape)
  -- the bias and a relu go into the conv3d op (as Conv1D/Conv2D do)
  local fuse = self._act_name == "relu"
  local y = K._conv3d(x, self.kernel, self.use_bias and self.bias or nil, self.strides, self.padding,
    self.dilation_rate, fuse)
  if not fuse then y = self.activation(y) end
  self:_activity_loss(y)
  return y
end
layers.Convolution3D = Conv3D

-- the transposed convolutions: Keras 2.2.4's deconv_length. Without
-- output_padding: n*s + max(k - s, 0) ('valid'), n*s ('same'); with it:
-- (n - 1)*s + k - 2*pad + output_padding, pad = k // 2 ('same') or 0
local function deconv_length(n, s, k, padding, op)
  if op == nil then
    if padding == "valid" then return n * s + math.max(k - s, 0) end
    return n * s
  end
  local pad = padding == "same" and k // 2 or 0
  return (n - 1) * s + k - 2 * pad + op
end

-- the forward convolution's length from m (what takes the output back to the input)
local function conv_length(m, s, k, padding)
  if padding == "valid" then return m >= k and (m - k) // s + 1 or 0 end
  return (m + s - 1) // s
end

local function transpose_init(rank)
  local base = conv_init(rank)
  return function(self, o)
    base(self, o)
    local who = self.class_name
    local dilated, strided = false, false
    for i = 1, rank do
      if self.dilation_rate[i] ~= 1 then dilated = true end
      if self.strides[i] ~= 1 then strided = true end
    end
    if dilated and strided then
      -- (the dilated transpose is TensorFlow's atrous_conv2d_transpose, which takes no strides)
      raise(string.format("%s: strides %s cannot be combined with dilation_rate %s (a dilated transposed "
        .. "convolution takes strides 1)", who, dims_str(self.strides), dims_str(self.dilation_rate)))
    end
    if o.output_padding ~= nil then
      self.output_padding = tuple(who, "output_padding", o.output_padding, rank, 0)
      o.output_padding = self.output_padding
      for i = 1, rank do
        if self.output_padding[i] >= self.strides[i] then
          raise(string.format("%s: output_padding %s must be smaller than the strides %s (stride %d must be greater "
            .. "than output padding %d)", who, dims_str(self.output_padding), dims_str(self.strides), self.strides[i],
            self.output_padding[i]))
        end
      end
    end
  end
end

-- the output's spatial sizes, refused when the forward convolution would not
-- take them back to the input's (TensorFlow refuses those shapes too)
local function transpose_sizes(self, size)
  local out = {}
  local op = self.output_padding
  -- the kernel's extent with its dilation (Keras's deconv_length takes the dilated size)
  local ext = {}
  for i = 1, self.rank do ext[i] = (self.kernel_size[i] - 1) * self.dilation_rate[i] + 1 end
  for i = 1, self.rank do
    local n, s = size[i], self.strides[i]
    if n < 0 then
      error(self:_msg("needs known spatial sizes, got an input of shape %s", shape_str({-1, table.unpack(size)})), 0)
    end
    out[i] = deconv_length(n, s, ext[i], self.padding, op and op[i])
  end
  for i = 1, self.rank do
    if out[i] < 1 or conv_length(out[i], self.strides[i], ext[i], self.padding) ~= size[i] then
      error(self:_msg("impossible output shape: an input of %s with kernel_size %s, strides %s, padding '%s'%s gives "
        .. "%s, which its convolution does not take back to %s", dims_str(size), dims_str(self.kernel_size),
        dims_str(self.strides), self.padding, op and (" and output_padding " .. dims_str(op)) or "",
        dims_str(out), dims_str(size)), 0)
    end
  end
  return out
end

local TRANSPOSE_KEYS = {"filters", "kernel_size", "strides", "padding", "output_padding", "data_format",
  "dilation_rate", "activation", "use_bias", "kernel_initializer", "bias_initializer", "kernel_regularizer",
  "bias_regularizer", "activity_regularizer", "kernel_constraint", "bias_constraint"}
local TRANSPOSE3D_KEYS = {"filters", "kernel_size", "strides", "padding", "output_padding", "data_format",
  "activation", "use_bias", "kernel_initializer", "bias_initializer", "kernel_regularizer", "bias_regularizer",
  "activity_regularizer", "kernel_constraint", "bias_constraint"}

-- kernel (kh, kw, filters, in) / (kd, kh, kw, filters, in), as Keras's
local function transpose_class(name, prefix, rank, keys, fn)
  local cls = define(name, keys, keys, transpose_init(rank))
  cls._prefix = prefix
  function cls:build(shape)
    local size = spatial(self, shape, rank)
    transpose_sizes(self, size)
    local kshape = {}
    for i = 1, rank do kshape[i] = self.kernel_size[i] end
    kshape[rank + 1], kshape[rank + 2] = self.filters, shape[rank + 2]
    self.input_channels = shape[rank + 2]
    self:_add_kernel_and_bias(kshape, self.filters)
  end
  function cls:call(x)
    local size = spatial(self, x.shape, rank)
    check_channels(self, x.shape)
    local out = transpose_sizes(self, size)
    local oshape = {K.shape(x)[1]}
    for i = 1, rank do oshape[i + 1] = out[i] end
    oshape[rank + 2] = self.filters
    if rank == 2 then
      -- the conv2d_transpose op adds the bias and, for a relu, applies it as it writes the output
      local fuse = self._act_name == "relu"
      local y = K._conv2d_transpose(x, self.kernel, oshape, self.strides, self.padding, self.dilation_rate,
        self.use_bias and self.bias or nil, fuse)
      if not fuse then y = self.activation(y) end
      self:_activity_loss(y)
      return y
    end
    return conv_finish(self, fn(x, self.kernel, oshape, self.strides, self.padding))
  end
  return cls
end

transpose_class("Conv2DTranspose", "conv2d_transpose", 2, TRANSPOSE_KEYS, K.conv2d_transpose)
transpose_class("Conv3DTranspose", "conv3d_transpose", 3, TRANSPOSE3D_KEYS, K.conv3d_transpose)
layers.Deconvolution2D, layers.Convolution2DTranspose = layers.Conv2DTranspose, layers.Conv2DTranspose
layers.Deconvolution3D, layers.Convolution3DTranspose = layers.Conv3DTranspose, layers.Conv3DTranspose

-- depthwise_kernel (k..., in, depth_multiplier); SeparableConv also a
-- pointwise_kernel (1..., in * depth_multiplier, filters); then the bias
local SEPARABLE_KEYS = {"filters", "kernel_size", "strides", "padding", "data_format", "dilation_rate",
  "depth_multiplier", "activation", "use_bias", "depthwise_initializer", "pointwise_initializer", "bias_initializer",
  "depthwise_regularizer", "pointwise_regularizer", "bias_regularizer", "activity_regularizer",
  "depthwise_constraint", "pointwise_constraint", "bias_constraint"}
local DEPTHWISE_KEYS = {"kernel_size", "strides", "padding", "depth_multiplier", "data_format", "activation",
  "use_bias", "depthwise_initializer", "bias_initializer", "depthwise_regularizer", "bias_regularizer",
  "activity_regularizer", "depthwise_constraint", "bias_constraint"}
local DEPTHWISE_ALLOWED = {"dilation_rate", table.unpack(DEPTHWISE_KEYS)}

local function depthwise_init(rank, separable)
  return function(self, o)
    local who = self.class_name
    self.rank = rank
    if separable then self.filters = check_int(who, "filters", o.filters) end
    kernel_geometry(self, o, who, rank)
    self.depth_multiplier = check_int(who, "depth_multiplier", o.depth_multiplier or 1)
    self.padding = padding_arg(who, o.padding)
    self.data_format = data_format_arg(who, o.data_format)
    self.activation, self._act_name = A.get(o.activation, who)
    weight_options(self, o, who, "depthwise")
    if separable then
      self.pointwise_initializer = I.get(o.pointwise_initializer or "glorot_uniform", who)
      self.pointwise_regularizer = regularizer(who, o.pointwise_regularizer)
      self.pointwise_constraint = constraint(who, o.pointwise_constraint)
    end
  end
end

local function depthwise_class(name, prefix, rank, separable)
  local keys = separable and SEPARABLE_KEYS or DEPTHWISE_KEYS
  local cls = define(name, keys, separable and keys or DEPTHWISE_ALLOWED, depthwise_init(rank, separable))
  cls._prefix = prefix
  function cls:build(shape)
    local size = spatial(self, shape, rank)
    check_extent(self, size, self.kernel_size, self.dilation_rate, "kernel extent")
    local c, m = shape[rank + 2], self.depth_multiplier
    self.input_channels = c
    local dshape, pshape = {}, {}
    for i = 1, rank do dshape[i], pshape[i] = self.kernel_size[i], 1 end
    dshape[rank + 1], dshape[rank + 2] = c, m
    pshape[rank + 1], pshape[rank + 2] = c * m, self.filters
    self.depthwise_kernel = self:add_weight{name = "depthwise_kernel", shape = dshape,
      initializer = self.depthwise_initializer, regularizer = self.depthwise_regularizer,
      constraint = self.depthwise_constraint}
    if separable then
      self.pointwise_kernel = self:add_weight{name = "pointwise_kernel", shape = pshape,
        initializer = self.pointwise_initializer, regularizer = self.pointwise_regularizer,
        constraint = self.pointwise_constraint}
    end
    if self.use_bias then
      self.bias = self:add_weight{name = "bias", shape = {separable and self.filters or c * m},
        initializer = self.bias_initializer, regularizer = self.bias_regularizer, constraint = self.bias_constraint}
    end
  end
  function cls:call(x)
    spatial(self, x.shape, rank)
    check_channels(self, x.shape)
    if not separable then
      local y = K.depthwise_conv2d(x, self.depthwise_kernel, self.strides, self.padding, nil, self.dilation_rate)
      return conv_finish(self, y)
    end
    -- the bias and a relu go into the pointwise conv2d op (as Conv1D/Conv2D do)
    local fuse = self._act_name == "relu"
    local y = K._separable(rank == 2 and "K.separable_conv2d" or "K.separable_conv1d", rank, x,
      self.depthwise_kernel, self.pointwise_kernel, self.strides, self.padding, self.dilation_rate,
      self.use_bias and self.bias or nil, fuse)
    if not fuse then y = self.activation(y) end
    self:_activity_loss(y)
    return y
  end
  return cls
end

depthwise_class("SeparableConv1D", "separable_conv1d", 1, true)
depthwise_class("SeparableConv2D", "separable_conv2d", 2, true)
depthwise_class("DepthwiseConv2D", "depthwise_conv2d", 2, false)
layers.SeparableConvolution1D, layers.SeparableConvolution2D = layers.SeparableConv1D, layers.SeparableConv2D

-- MaxPooling3D, AveragePooling3D (K.pool3d)
local function pool3d_class(name, prefix, mode)
  local keys = {"pool_size", "strides", "padding", "data_format"}
  local cls = define(name, keys, keys, function(self, o)
    pool_options(self, o, name, 3)
  end, {first_is_sequence = true})
  cls._prefix = prefix
  function cls:build(shape)
    check_extent(self, spatial(self, shape, 3), self.pool_size, nil, "pool size")
  end
  function cls:call(x)
    spatial(self, x.shape, 3)
    return K.pool3d(x, self.pool_size, self.strides, self.padding, nil, mode)
  end
  return cls
end

pool3d_class("MaxPooling3D", "max_pooling3d", "max")
pool3d_class("AveragePooling3D", "average_pooling3d", "avg")
layers.MaxPool3D, layers.AvgPool3D = layers.MaxPooling3D, layers.AveragePooling3D

global_pool("GlobalAveragePooling3D", "global_average_pooling3d", 3, K.mean)
global_pool("GlobalMaxPooling3D", "global_max_pooling3d", 3, K.max)
layers.GlobalAvgPool3D, layers.GlobalMaxPool3D = layers.GlobalAveragePooling3D, layers.GlobalMaxPooling3D

-- ZeroPadding3D / Cropping3D amounts: an integer, (d, h, w) symmetric, or
-- ((front, back), (top, bottom), (left, right)) -> a list of 3 pairs
local function amounts3(who, name, v)
  if int_seq(v) and #v == 1 then v = v[1] end
  local out
  if math.type(v) == "integer" then
    out = {{v, v}, {v, v}, {v, v}}
  elseif int_seq(v) and #v == 3 then
    out = {{v[1], v[1]}, {v[2], v[2]}, {v[3], v[3]}}
  elseif is_plain(v) and #v == 3 and int_seq(v[1]) and #v[1] == 2 and int_seq(v[2]) and #v[2] == 2
      and int_seq(v[3]) and #v[3] == 2 then
    out = {{v[1][1], v[1][2]}, {v[2][1], v[2][2]}, {v[3][1], v[3][2]}}
  else
    raise(string.format("%s: %s must be an integer, a list of 3 integers or a list of 3 lists of 2 integers, got %s",
      who, name, type(v) == "table" and "a table" or tostring(v)))
  end
  for _, p in ipairs(out) do
    for _, a in ipairs(p) do
      if a < 0 then raise(string.format("%s: %s must not be negative, got %d", who, name, a)) end
    end
  end
  return out
end

-- a lone list of three pairs is the amounts
local function amounts3_value(t)
  return layers._number_list(t) or (#t == 3 and next(t, 3) == nil and int_seq(t[1]) and int_seq(t[2])
    and int_seq(t[3]))
end

local function pad3d_class(name, prefix, key, crop)
  local cls = define(name, {key, "data_format"}, {key, "data_format"}, function(self, o)
    self.rank = 3
    self[key] = amounts3(name, key, o[key] == nil and 1 or o[key])
    if o[key] ~= nil then o[key] = self[key] end
    self.data_format = data_format_arg(name, o.data_format)
  end, {single = amounts3_value})
  cls._prefix = prefix
  function cls:build(shape)
    local size = spatial(self, shape, 3)
    if crop then
      local a = self[key]
      for i = 1, 3 do
        if size[i] >= 0 and size[i] - a[i][1] - a[i][2] < 1 then
          error(self:_msg("cropping ((%d, %d), (%d, %d), (%d, %d)) leaves nothing of an input of shape %s", a[1][1],
            a[1][2], a[2][1], a[2][2], a[3][1], a[3][2], shape_str(shape)), 0)
        end
      end
    end
  end
  function cls:call(x)
    local size = spatial(self, x.shape, 3)
    local a = self[key]
    if not crop then return K.spatial_3d_padding(x, a) end
    for i = 1, 3 do
      if a[i][1] > 0 or a[i][2] > 0 then
        x = K.apply("slice", {x}, {axis = i, start = a[i][1], length = size[i] - a[i][1] - a[i][2]})
      end
    end
    return x
  end
  return cls
end

pad3d_class("ZeroPadding3D", "zero_padding3d", "padding", false)
pad3d_class("Cropping3D", "cropping3d", "cropping", true)

local UpSampling3D = define("UpSampling3D", {"size", "data_format"}, {"size", "data_format"}, function(self, o)
  self.size = tuple("UpSampling3D", "size", o.size or 2, 3)
  if o.size ~= nil then o.size = self.size end
  self.data_format = data_format_arg("UpSampling3D", o.data_format)
end, {first_is_sequence = true})
UpSampling3D._prefix = "up_sampling3d"
function UpSampling3D:build(shape) spatial(self, shape, 3) end
function UpSampling3D:call(x)
  spatial(self, x.shape, 3)
  return K.resize_volumes(x, self.size[1], self.size[2], self.size[3])
end

-- ---- locally connected: a kernel of its own at every output position
-- (K.local_conv1d / K.local_conv2d), 'valid' padding only as Keras 2.2.4;
-- kernel (positions, kernel_size * channels, filters) and bias (output
-- length, filters) for 1-D, (out_rows, out_cols, filters) for 2-D ----

local LOCAL_KEYS = {"filters", "kernel_size", "strides", "padding", "data_format", "activation", "use_bias",
  "kernel_initializer", "bias_initializer", "kernel_regularizer", "bias_regularizer", "activity_regularizer",
  "kernel_constraint", "bias_constraint"}

local function local_init(rank)
  local base = conv_init(rank)
  return function(self, o)
    local who = self.class_name
    if o.padding ~= nil then
      local v = type(o.padding) == "string" and o.padding:lower() or o.padding
      if v ~= "valid" then
        raise(string.format("%s: padding must be 'valid' (the only mode Keras 2.2.4 has for locally connected "
          .. "layers), got %s", who, type(v) == "string" and ("'" .. v .. "'") or tostring(v)))
      end
    end
    base(self, o)
  end
end

local function local_build(self, shape)
  local rank = self.rank
  local size = spatial(self, shape, rank)
  for i = 1, rank do
    if size[i] < 0 then
      error(self:_msg("needs a fixed input %s (a kernel of its own at each position), got shape %s",
        rank == 1 and "length" or "size", shape_str(shape)), 0)
    end
  end
  check_extent(self, size, self.kernel_size, nil, "kernel size")
  local c, ks, st = shape[#shape], self.kernel_size, self.strides
  local out, positions, patch = {}, 1, c
  for i = 1, rank do
    out[i] = (size[i] - ks[i]) // st[i] + 1
    positions, patch = positions * out[i], patch * ks[i]
  end
  self.input_channels, self.output_size = c, out
  self.kernel = self:add_weight{name = "kernel", shape = {positions, patch, self.filters},
    initializer = self.kernel_initializer, regularizer = self.kernel_regularizer, constraint = self.kernel_constraint}
  if self.use_bias then
    local bshape = {}
    for i = 1, rank do bshape[i] = out[i] end
    bshape[rank + 1] = self.filters
    self.bias = self:add_weight{name = "bias", shape = bshape, initializer = self.bias_initializer,
      regularizer = self.bias_regularizer, constraint = self.bias_constraint}
  end
end

local function local_call(self, x)
  local size = spatial(self, x.shape, self.rank)
  check_channels(self, x.shape)
  for i = 1, self.rank do
    local k = self.kernel_size[i]
    if size[i] < k or (size[i] - k) // self.strides[i] + 1 ~= self.output_size[i] then
      error(self:_msg("was built for an input giving %s positions, got shape %s", dims_str(self.output_size),
        shape_str(x.shape)), 0)
    end
  end
  local y
  if self.rank == 1 then
    y = K.local_conv1d(x, self.kernel, self.kernel_size, self.strides)
  else
    y = K.local_conv2d(x, self.kernel, self.kernel_size, self.strides, self.output_size)
  end
  return conv_finish(self, y)
end

for rank = 1, 2 do
  local cls = define("LocallyConnected" .. rank .. "D", LOCAL_KEYS, LOCAL_KEYS, local_init(rank))
  cls._prefix = "locally_connected" .. rank .. "d"
  cls.build, cls.call = local_build, local_call
  cls._none_length_ok = true   -- refused in build with its own message
end

-- the 1-D layers take a None steps axis (input_shape = {keras.None, channels})
for _, name in ipairs{"Conv1D", "MaxPooling1D", "AveragePooling1D", "GlobalAveragePooling1D", "GlobalMaxPooling1D",
                      "ZeroPadding1D", "Cropping1D", "UpSampling1D", "SpatialDropout1D"} do
  layers[name]._none_length_ok = true
end


-- ---- Keras 2.2.4's configs of this file's classes: keys in Keras's order
-- with their defaults, and how a constructor's value becomes Keras's (ints to
-- tuples); saving.lua writes and reads configs by them (layer_config.lua) ----

do
  local config = require("keras.layer_config")
  local NULL, REQ = config.NULL, config.REQ
  local concat, same_as, to_tuple, padding_pairs = config.concat, config.same_as, config.tuple, config.padding_pairs
  local CONV_TAIL = config.CONV_TAIL
  config.add({
    SpatialDropout1D = {"rate", REQ, "noise_shape", NULL, "seed", NULL},
    SpatialDropout2D = {"rate", REQ, "noise_shape", NULL, "seed", NULL},
    SpatialDropout3D = {"rate", REQ, "noise_shape", NULL, "seed", NULL},
    Conv1D = concat({"filters", REQ, "kernel_size", REQ, "strides", {1}, "padding", "valid",
      "data_format", "channels_last", "dilation_rate", {1}}, CONV_TAIL),
    Conv2D = concat({"filters", REQ, "kernel_size", REQ, "strides", {1, 1}, "padding", "valid",
      "data_format", "channels_last", "dilation_rate", {1, 1}}, CONV_TAIL),
    MaxPooling1D = {"strides", same_as("pool_size"), "pool_size", {2}, "padding", "valid", "data_format",
      "channels_last"},
    AveragePooling1D = {"strides", same_as("pool_size"), "pool_size", {2}, "padding", "valid",
      "data_format", "channels_last"},
    MaxPooling2D = {"pool_size", {2, 2}, "padding", "valid", "strides", same_as("pool_size"),
      "data_format", "channels_last"},
    AveragePooling2D = {"pool_size", {2, 2}, "padding", "valid", "strides", same_as("pool_size"),
      "data_format", "channels_last"},
    GlobalAveragePooling1D = {"data_format", "channels_last"},
    GlobalMaxPooling1D = {"data_format", "channels_last"},
    GlobalAveragePooling2D = {"data_format", "channels_last"},
    GlobalMaxPooling2D = {"data_format", "channels_last"},
    ZeroPadding1D = {"padding", {1, 1}},
    ZeroPadding2D = {"padding", {{1, 1}, {1, 1}}, "data_format", "channels_last"},
    Cropping1D = {"cropping", {1, 1}},
    Cropping2D = {"cropping", {{0, 0}, {0, 0}}, "data_format", "channels_last"},
    UpSampling1D = {"size", 2},
    UpSampling2D = {"size", {2, 2}, "data_format", "channels_last", "interpolation", "nearest"}
  }, {
    Conv1D = {kernel_size = to_tuple(1), strides = to_tuple(1), dilation_rate = to_tuple(1)},
    Conv2D = {kernel_size = to_tuple(2), strides = to_tuple(2), dilation_rate = to_tuple(2)},
    MaxPooling1D = {pool_size = to_tuple(1), strides = to_tuple(1)},
    AveragePooling1D = {pool_size = to_tuple(1), strides = to_tuple(1)},
    MaxPooling2D = {pool_size = to_tuple(2), strides = to_tuple(2)},
    AveragePooling2D = {pool_size = to_tuple(2), strides = to_tuple(2)},
    ZeroPadding1D = {padding = padding_pairs(1)},
    ZeroPadding2D = {padding = padding_pairs(2)},
    Cropping1D = {cropping = padding_pairs(1)},
    Cropping2D = {cropping = padding_pairs(2)},
    UpSampling2D = {size = to_tuple(2)}
  })
end

-- the configs of the transposed, separable, depthwise and 3-D classes (Keras
-- 2.2.4's get_config: the separable ones drop the kernel_* keys of their base
-- class and end with theirs; Conv3DTranspose has no dilation_rate)
do
  local config = require("keras.layer_config")
  local NULL, REQ = config.NULL, config.REQ
  local concat, same_as, to_tuple, padding_pairs = config.concat, config.same_as, config.tuple, config.padding_pairs
  local init = config.initializer
  local CONV_TAIL = config.CONV_TAIL
  local BIAS_TAIL = {"activation", "linear", "use_bias", true, "bias_initializer", init("zeros"), "bias_regularizer",
    NULL, "activity_regularizer", NULL, "bias_constraint", NULL}
  local function separable(rank)
    local ones = rank == 1 and {1} or {1, 1}
    return concat({"filters", REQ, "kernel_size", REQ, "strides", ones, "padding", "valid", "data_format",
      "channels_last", "dilation_rate", ones}, BIAS_TAIL, {"depth_multiplier", 1, "depthwise_initializer",
      init("glorot_uniform"), "pointwise_initializer", init("glorot_uniform"), "depthwise_regularizer", NULL,
      "pointwise_regularizer", NULL, "depthwise_constraint", NULL, "pointwise_constraint", NULL})
  end
  local function pool3d()
    return {"pool_size", {2, 2, 2}, "padding", "valid", "strides", same_as("pool_size"), "data_format",
      "channels_last"}
  end
  local function kernel_norms(rank)
    return {kernel_size = to_tuple(rank), strides = to_tuple(rank), dilation_rate = to_tuple(rank)}
  end
  local transpose2d, transpose3d = kernel_norms(2), kernel_norms(3)
  transpose2d.output_padding, transpose3d.output_padding = to_tuple(2), to_tuple(3)
  config.add({
    Conv3D = concat({"filters", REQ, "kernel_size", REQ, "strides", {1, 1, 1}, "padding", "valid",
      "data_format", "channels_last", "dilation_rate", {1, 1, 1}}, CONV_TAIL),
    Conv2DTranspose = concat({"filters", REQ, "kernel_size", REQ, "strides", {1, 1}, "padding", "valid",
      "data_format", "channels_last", "dilation_rate", {1, 1}}, CONV_TAIL, {"output_padding", NULL}),
    Conv3DTranspose = concat({"filters", REQ, "kernel_size", REQ, "strides", {1, 1, 1}, "padding", "valid",
      "data_format", "channels_last"}, CONV_TAIL, {"output_padding", NULL}),
    SeparableConv1D = separable(1),
    SeparableConv2D = separable(2),
    DepthwiseConv2D = concat({"kernel_size", REQ, "strides", {1, 1}, "padding", "valid", "data_format",
      "channels_last", "dilation_rate", {1, 1}}, BIAS_TAIL, {"depth_multiplier", 1, "depthwise_initializer",
      init("glorot_uniform"), "depthwise_regularizer", NULL, "depthwise_constraint", NULL}),
    MaxPooling3D = pool3d(),
    AveragePooling3D = pool3d(),
    GlobalAveragePooling3D = {"data_format", "channels_last"},
    GlobalMaxPooling3D = {"data_format", "channels_last"},
    ZeroPadding3D = {"padding", {{1, 1}, {1, 1}, {1, 1}}, "data_format", "channels_last"},
    Cropping3D = {"cropping", {{1, 1}, {1, 1}, {1, 1}}, "data_format", "channels_last"},
    UpSampling3D = {"size", {2, 2, 2}, "data_format", "channels_last"},
    LocallyConnected1D = concat({"filters", REQ, "kernel_size", REQ, "strides", {1}, "padding", "valid",
      "data_format", "channels_last"}, CONV_TAIL),
    LocallyConnected2D = concat({"filters", REQ, "kernel_size", REQ, "strides", {1, 1}, "padding", "valid",
      "data_format", "channels_last"}, CONV_TAIL)
  }, {
    Conv3D = kernel_norms(3),
    Conv2DTranspose = transpose2d,
    Conv3DTranspose = transpose3d,
    SeparableConv1D = kernel_norms(1),
    SeparableConv2D = kernel_norms(2),
    DepthwiseConv2D = kernel_norms(2),
    MaxPooling3D = {pool_size = to_tuple(3), strides = to_tuple(3)},
    AveragePooling3D = {pool_size = to_tuple(3), strides = to_tuple(3)},
    ZeroPadding3D = {padding = padding_pairs(3)},
    Cropping3D = {cropping = padding_pairs(3)},
    UpSampling3D = {size = to_tuple(3)},
    LocallyConnected1D = {kernel_size = to_tuple(1), strides = to_tuple(1)},
    LocallyConnected2D = {kernel_size = to_tuple(2), strides = to_tuple(2)}
  })
end

return true
