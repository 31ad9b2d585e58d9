-- keras.backend, continued from backend_ext.lua: convolution and pooling
-- (channels_last), K.rnn and the other loops unrolled when the graph is
-- built, locally connected (unshared weights) ops, 3-D ops built from the 2-D
-- ones, and CTC. Moved verbatim from backend_ext.lua; loaded by it with the
-- core, the K table it fills and the helpers it shares (H).
local core, K, H = ...

local is_node = core.is_node
local apply, raise = K.apply, K._raise
local fmt = string.format
local is_plain = require("keras.util").is_plain
local kwargs, check_dtype, channels_last, named = H.kwargs, H.check_dtype, H.channels_last, H.named
local resolve_shape, batched, pad_axis = H.resolve_shape, H.batched, H.pad_axis
local ndim_of, shape_of, shape_str, what, is_concrete = H.ndim_of, H.shape_of, H.shape_str, H.what, H.is_concrete

-- ---- convolution and pooling (channels_last) ----

local function tuple(who, name, v, n)
  if math.type(v) == "integer" then
    local t = {}
    for i = 1, n do t[i] = v end
    return t
  end
  if not is_plain(v) or #v ~= n then raise(fmt("%s: %s must be an integer or a list of %d", who, name, n)) end
  for i = 1, n do
    if math.type(v[i]) ~= "integer" or v[i] < 1 then raise(fmt("%s: %s must hold positive integers", who, name)) end
  end
  return v
end

-- TensorFlow's padding: 'valid' none; 'same' out = ceil(n / s), the extra
-- split with the smaller half first
local function pads(who, padding, n, k, s, d)
  local ext = (k - 1) * d + 1
  if padding == "valid" then
    if ext > n then
      raise(fmt("%s: the window (%d) is larger than the input (%d) with padding 'valid'", who, ext, n))
    end
    return 0, 0
  elseif padding == "same" then
    local out = (n + s - 1) // s
    local total = math.max((out - 1) * s + ext - n, 0)
    return total // 2, total - total // 2
  end
  raise(fmt("%s: padding must be 'valid' or 'same', got '%s'", who, tostring(padding)))
end

-- the conv2d and pool2d ops' attributes by name (src/ops_conv.c): strides,
-- dilations (conv) or window (pool), and the pads {top, bottom, left, right}
local function conv_attrs(sh, sw, dh, dw, p)
  return {stride_h = sh, stride_w = sw, dilation_h = dh, dilation_w = dw,
          pad_top = p[1], pad_bottom = p[2], pad_left = p[3], pad_right = p[4]}
end

local function pool_attrs(ph, pw, sh, sw, p)
  return {pool_h = ph, pool_w = pw, stride_h = sh, stride_w = sw,
          pad_top = p[1], pad_bottom = p[2], pad_left = p[3], pad_right = p[4]}
end

-- the before/after pads of n spatial axes (x's axes 2..n+1, windows w[1..n];
-- dl nil: no dilation), as one flat list {before1, after1, before2, ...}
local function spatial_pads(who, padding, xs, ws, st, dl, n)
  local out = {}
  for k = 1, n do
    out[2 * k - 1], out[2 * k] = pads(who, padding, xs[k + 1], ws[k], st[k], dl and dl[k] or 1)
  end
  return out
end

function K.conv1d(...)
  local who = "K.conv1d"
  local a = kwargs(who, {"x", "kernel", "strides", "padding", "data_format", "dilation_rate"}, ...)
  channels_last(who, a.data_format)
  local x, w = a.x, a.kernel
  if ndim_of(x) ~= 3 or ndim_of(w) ~= 3 then
    raise(fmt("%s: expected x (batch, steps, channels) and kernel (size, in, out), got ranks %d and %d", who,
      ndim_of(x), ndim_of(w)))
  end
  local st = tuple(who, "strides", a.strides or 1, 1)[1]
  local dl = tuple(who, "dilation_rate", a.dilation_rate or 1, 1)[1]
  local k, n = shape_of(w)[1], shape_of(x)[2]
  local padding = a.padding or "valid"
  local pl, pr
  if padding == "causal" then
    pl, pr = dl * (k - 1), 0
  else
    pl, pr = pads(who, padding, n, k, st, dl)
  end
  return apply("conv2d", {x, w}, conv_attrs(1, st, 1, dl, {0, 0, pl, pr}))
end

-- the x and kernel of K.conv2d, K.conv3d and their transposes, both of
-- `rank` (channels_last); `io` names the kernel's last two axes in the error
local SPATIAL_AXES = {[4] = "rows, cols", [5] = "depth, rows, cols"}
local function input_and_kernel(who, a, rank, io)
  channels_last(who, a.data_format)
  local x, k = a.x, a.kernel
  if ndim_of(x) ~= rank or ndim_of(k) ~= rank then
    local axes = SPATIAL_AXES[rank]
    raise(fmt("%s: expected x (batch, %s, channels) and kernel (%s, %s), got ranks %d and %d", who, axes, axes, io,
      ndim_of(x), ndim_of(k)))
  end
  return x, k
end

-- the strides, dilations, shapes and pads {before1, after1, ...} of an
-- n-D convolution of x by w (K.conv2d, K.conv3d)
local function conv_geometry(who, a, x, w, n)
  local st = tuple(who, "strides", a.strides or 1, n)
  local dl = tuple(who, "dilation_rate", a.dilation_rate or 1, n)
  local xs, ws = shape_of(x), shape_of(w)
  return st, dl, xs, ws, spatial_pads(who, a.padding or "valid", xs, ws, st, dl, n)
end

function K.conv2d(...)
  local who = "K.conv2d"
  local a = kwargs(who, {"x", "kernel", "strides", "padding", "data_format", "dilation_rate"}, ...)
  local x, w = input_and_kernel(who, a, 4, "in, out")
  local st, dl, _, _, p = conv_geometry(who, a, x, w, 2)
  return apply("conv2d", {x, w}, conv_attrs(st[1], st[2], dl[1], dl[2], p))
end

function K.pool2d(...)
  local who = "K.pool2d"
  local a = kwargs(who, {"x", "pool_size", "strides", "padding", "data_format", "pool_mode"}, ...)
  channels_last(who, a.data_format)
  local x = a.x
  if ndim_of(x) ~= 4 then
    raise(fmt("%s: expected a 4-D tensor (batch, rows, cols, channels), got rank %d", who, ndim_of(x)))
  end
  local ps = tuple(who, "pool_size", a.pool_size, 2)
  local st = tuple(who, "strides", a.strides or 1, 2)
  local mode = a.pool_mode or "max"
  if mode ~= "max" and mode ~= "avg" then
    raise(fmt("%s: pool_mode must be 'max' or 'avg', got '%s'", who, tostring(mode)))
  end
  local xs = shape_of(x)
  local padding = a.padding or "valid"
  local p = spatial_pads(who, padding, xs, ps, st, nil, 2)
  return apply(mode == "max" and "max_pool2d" or "avg_pool2d", {x}, pool_attrs(ps[1], ps[2], st[1], st[2], p))
end

-- depthwise: the depthwise_conv2d op (src/ops_dwconv.c), kernel (KH, KW, C, M)
-- -> output channel c*M + m, as TensorFlow orders them; rank 3 inputs: the
-- 1-D case (kernel (KW, C, M))
local function depthwise(who, x, k, st, dl, pads_)
  local xs, ks = shape_of(x), shape_of(k)
  local rank = #xs - 2
  local C = xs[#xs]
  if ks[rank + 1] ~= C then
    raise(fmt("%s: the depthwise kernel has %d input channels, x has %d", who, ks[rank + 1], C))
  end
  return apply("depthwise_conv2d", {x, k}, conv_attrs(st[1], st[2], dl[1], dl[2], pads_))
end

local function depthwise_geometry(who, a, rank)
  channels_last(who, a.data_format)
  local x = a.x
  if ndim_of(x) ~= rank + 2 then raise(fmt("%s: expected a %d-D input, got rank %d", who, rank + 2, ndim_of(x))) end
  local st = tuple(who, "strides", a.strides or 1, rank)
  local dl = tuple(who, "dilation_rate", a.dilation_rate or 1, rank)
  local kern = a.depthwise_kernel
  if ndim_of(kern) ~= rank + 2 then
    raise(fmt("%s: the depthwise kernel must have rank %d, got %d", who, rank + 2, ndim_of(kern)))
  end
  local xs, ks = shape_of(x), shape_of(kern)
  local padding = a.padding or "valid"
  if rank == 2 then
    return {st[1], st[2]}, {dl[1], dl[2]}, spatial_pads(who, padding, xs, ks, st, dl, 2)
  end
  local pl, pr = pads(who, padding, xs[2], ks[1], st[1], dl[1])
  return {1, st[1]}, {1, dl[1]}, {0, 0, pl, pr}
end

function K.depthwise_conv2d(...)
  local who = "K.depthwise_conv2d"
  local a = kwargs(who, {"x", "depthwise_kernel", "strides", "padding", "data_format", "dilation_rate"}, ...)
  local st, dl, p = depthwise_geometry(who, a, 2)
  return depthwise(who, a.x, a.depthwise_kernel, st, dl, p)
end

-- depthwise, then a 1x1 convolution with pointwise_kernel (1, 1, C*M, O);
-- `bias` (O) and `relu` (true: the relu fused) are the layers' (K._separable)
local function separable_args(who, rank, a, bias, relu)
  local st, dl, p = depthwise_geometry(who, a, rank)
  local y = depthwise(who, a.x, a.depthwise_kernel, st, dl, p)
  local pk = a.pointwise_kernel
  if ndim_of(pk) ~= rank + 2 then
    raise(fmt("%s: the pointwise kernel must have rank %d, got %d", who, rank + 2, ndim_of(pk)))
  end
  local attr = conv_attrs(1, 1, 1, 1, {0, 0, 0, 0})
  attr.relu = relu and 1 or 0
  return apply("conv2d", bias and {y, pk, bias} or {y, pk}, attr)
end

local SEPARABLE_KEYS = {"x", "depthwise_kernel", "pointwise_kernel", "strides", "padding", "data_format",
  "dilation_rate"}
local function separable(who, rank, ...)
  return separable_args(who, rank, kwargs(who, SEPARABLE_KEYS, ...))
end

function K.separable_conv2d(...) return separable("K.separable_conv2d", 2, ...) end
function K.separable_conv1d(...) return separable("K.separable_conv1d", 1, ...) end

-- the SeparableConv1D/2D layers' product: K.separable_conv1d/2d with the
-- bias (or nil) added and, when relu is true, the relu applied by the
-- pointwise conv2d op itself (one pass over its output)
function K._separable(who, rank, x, depthwise_kernel, pointwise_kernel, strides, padding, dilation_rate, bias, relu)
  local a = {x = x, depthwise_kernel = depthwise_kernel, pointwise_kernel = pointwise_kernel, strides = strides,
             padding = padding, dilation_rate = dilation_rate}
  return separable_args(who, rank, a, bias, relu)
end

-- K.conv2d_transpose(x, kernel, output_shape, strides, padding, data_format,
-- dilation_rate): the transpose (gradient) of K.conv2d with kernel (KH, KW,
-- out, in) taking output_shape to x's shape: the conv2d_transpose op
-- (src/ops_conv_transpose.h), which scatters each input pixel through the
-- kernel (the input-gradient product of that convolution). A dilated one
-- takes strides 1, as TensorFlow's atrous_conv2d_transpose.
-- `bias` (out) and `relu` (true: the relu fused) are the layer's (K._conv2d_transpose)
local function conv2d_transpose_args(who, a, bias, relu)
  local x, k = input_and_kernel(who, a, 4, "out, in")
  local xs, ks = shape_of(x), shape_of(k)
  if ks[4] ~= xs[4] then raise(fmt("%s: the kernel takes %d input channels, x has %d", who, ks[4], xs[4])) end
  local os_ = resolve_shape(a.output_shape, who)
  if #os_ ~= 4 then raise(fmt("%s: output_shape must have 4 entries, got %d", who, #os_)) end
  if os_[4] ~= ks[3] then
    raise(fmt("%s: output_shape has %d channels, the kernel gives %d", who, os_[4], ks[3]))
  end
  local st = tuple(who, "strides", a.strides or 1, 2)
  local dl = tuple(who, "dilation_rate", a.dilation_rate or 1, 2)
  if (dl[1] ~= 1 or dl[2] ~= 1) and (st[1] ~= 1 or st[2] ~= 1) then
    raise(fmt("%s: strides (%d, %d) cannot be combined with dilation_rate (%d, %d) (a dilated transposed "
      .. "convolution takes strides 1)", who, st[1], st[2], dl[1], dl[2]))
  end
  local padding = a.padding or "valid"
  local first = {}
  for d = 1, 2 do
    local n, h, kk, s = os_[d + 1], xs[d + 1], (ks[d] - 1) * dl[d] + 1, st[d]
    -- the forward convolution output_shape -> x: its size and padding must give back x's
    local fwd
    if padding == "valid" then
      fwd = n >= kk and (n - kk) // s + 1 or 0
      first[d] = 0
    elseif padding == "same" then
      fwd = (n + s - 1) // s
      first[d] = math.max((h - 1) * s + kk - n, 0) // 2
    else
      raise(fmt("%s: padding must be 'valid' or 'same', got '%s'", who, tostring(padding)))
    end
    if fwd ~= h then
      raise(fmt("%s: output_shape %s does not give x's %s (%d) with strides %d, kernel %d and padding '%s'", who,
        shape_str(os_), d == 1 and "rows" or "columns", h, s, kk, padding))
    end
  end
  local attr = {stride_h = st[1], stride_w = st[2], dilation_h = dl[1], dilation_w = dl[2], pad_top = first[1],
                pad_left = first[2], relu = relu and 1 or 0,
                shape = {os_[1] >= 0 and os_[1] or -1, os_[2], os_[3], os_[4]}}
  return apply("conv2d_transpose", bias and {x, k, bias} or {x, k}, attr)
end

local TRANSPOSE_KEYS = {"x", "kernel", "output_shape", "strides", "padding", "data_format", "dilation_rate"}
function K.conv2d_transpose(...)
  local who = "K.conv2d_transpose"
  return conv2d_transpose_args(who, kwargs(who, TRANSPOSE_KEYS, ...))
end

-- the Conv2DTranspose layer's product: K.conv2d_transpose with the bias (or
-- nil) added and, when relu is true, the relu applied by the op itself
function K._conv2d_transpose(x, kernel, output_shape, strides, padding, dilation_rate, bias, relu)
  local a = {x = x, kernel = kernel, output_shape = output_shape, strides = strides, padding = padding,
             dilation_rate = dilation_rate}
  return conv2d_transpose_args("K.conv2d_transpose", a, bias, relu)
end

-- ---- loops, unrolled when the graph is built ----
-- The Lua function runs once per step while the graph is built (as Keras's
-- TensorFlow backend does with unroll=True); the plan then runs in C. So the
-- axis looped over must have a known size: not the batch axis.

-- element i (0-based) of x along axis, the axis dropped
local function take(x, axis, i)
  local y = apply("slice", {x}, {axis = axis, start = i, length = 1})
  return K.squeeze(y, axis)
end

local function as_list(v)
  if v == nil then return {} end
  if is_plain(v) then return v end
  return {v}
end

-- K.rnn(step_function, inputs, initial_states, go_backwards, mask, constants,
-- unroll, input_length): step_function(x_t, states) returns the output and
-- the list of new states. Returns last_output, outputs (batch, T, ...) in
-- processing order, new_states. Where mask (batch, T) is 0 the output and the
-- states carry over from the step before.
function K.rnn(...)
  local who = "K.rnn"
  local a = kwargs(who, {"step_function", "inputs", "initial_states", "go_backwards", "mask", "constants", "unroll",
                         "input_length"}, ...)
  local step, inputs = a.step_function, a.inputs
  if type(step) ~= "function" then raise(fmt("%s: step_function must be a function, got %s", who, type(step))) end
  local s = shape_of(inputs)
  if #s < 3 then raise(fmt("%s: inputs must be at least 3-D (batch, time, ...), got rank %d", who, #s)) end
  local T = s[2]
  if T < 0 then raise(fmt("%s: the time axis must have a known length to be unrolled", who)) end
  if T == 0 then raise(fmt("%s: the time axis has length 0", who)) end
  if a.input_length ~= nil and a.input_length ~= T then
    raise(fmt("%s: input_length %s differs from the time axis of the inputs (%d)", who, tostring(a.input_length), T))
  end
  -- unroll = false asks for a symbolic loop: the unrolled graph computes the same values
  local states = {}
  for i, st in ipairs(as_list(a.initial_states)) do states[i] = st end
  local constants = as_list(a.constants)
  local outs, prev = {}, nil
  for k = 1, T do
    local t = a.go_backwards and T - k or k - 1
    local args = {}
    for i, st in ipairs(states) do args[i] = st end
    for _, c in ipairs(constants) do args[#args + 1] = c end
    local out, new_states = step(take(inputs, 1, t), args)
    if not (is_node(out) or is_concrete(out)) then
      raise(fmt("%s: step_function must return a tensor and a list of states, got %s", who, what(out)))
    end
    new_states = as_list(new_states)
    if #new_states ~= #states then
      raise(fmt("%s: step_function returned %d states, expected %d", who, #new_states, #states))
    end
    if a.mask ~= nil then
      local m = take(a.mask, 1, t)
      out = K.switch(m, out, prev or K.zeros_like(out))
      for i = 1, #states do new_states[i] = K.switch(m, new_states[i], states[i]) end
    end
    outs[k], prev, states = out, out, new_states
  end
  return outs[T], K.stack(outs, 1), states
end

-- the elements of x along axis 0, which must not be the batch axis
local function elements(x, who)
  local s = shape_of(x)
  if #s == 0 then raise(fmt("%s: elems must have at least one axis", who)) end
  if s[1] < 0 then
    raise(fmt("%s: cannot loop over the batch axis of a symbolic tensor (its length is known only when the "
      .. "plan runs); write it with K ops over the whole batch", who))
  end
  local out = {}
  for i = 1, s[1] do out[i] = take(x, 0, i - 1) end
  return out
end

function K.map_fn(fn, elems, name, dtype)
  check_dtype("K.map_fn", dtype, true)
  local out = {}
  for i, e in ipairs(elements(elems, "K.map_fn")) do out[i] = fn(e) end
  return named(K.stack(out, 0), name)
end

function K.foldl(fn, elems, initializer, name)
  local es = elements(elems, "K.foldl")
  local acc, first = initializer, 1
  if acc == nil then acc, first = es[1], 2 end
  for i = first, #es do acc = fn(acc, es[i]) end
  return named(acc, name)
end

function K.foldr(fn, elems, initializer, name)
  local es = elements(elems, "K.foldr")
  local acc, last = initializer, #es
  if acc == nil then acc, last = es[#es], #es - 1 end
  for i = last, 1, -1 do acc = fn(acc, es[i]) end
  return named(acc, name)
end

-- ---- locally connected (unshared weights): one matmul per output position ----

-- the patch of x at rows r0.. (kh) and columns c0.. (kw), flattened to (batch, kh*kw*C)
local function patch(x, starts, sizes)
  local y = x
  for d = 1, #starts do y = apply("slice", {y}, {axis = d, start = starts[d], length = sizes[d]}) end
  local s = shape_of(y)
  local n = 1
  for i = 2, #s do n = n * s[i] end
  return K.reshape(y, {batched(y) and -1 or s[1], n})
end

-- K.local_conv1d(inputs, kernel, kernel_size, strides, data_format):
-- inputs (batch, steps, C), kernel (output_length, kernel_size * C, filters)
function K.local_conv1d(inputs, kernel, kernel_size, strides, data_format)
  local who = "K.local_conv1d"
  channels_last(who, data_format)
  local k = tuple(who, "kernel_size", kernel_size, 1)[1]
  local st = tuple(who, "strides", strides or 1, 1)[1]
  local xs, ks = shape_of(inputs), shape_of(kernel)
  if #xs ~= 3 or #ks ~= 3 then
    raise(fmt("%s: expected inputs (batch, steps, channels) and kernel (length, size * channels, filters)", who))
  end
  local L = xs[2] >= k and (xs[2] - k) // st + 1 or 0
  if ks[1] ~= L or ks[2] ~= k * xs[3] then
    raise(fmt("%s: a kernel of shape %s does not fit inputs %s with kernel_size %d and strides %d (expected (%d, %d, "
      .. "filters))", who, shape_str(ks), shape_str(xs), k, st, L, k * xs[3]))
  end
  local outs = {}
  for i = 0, L - 1 do outs[i + 1] = K.dot(patch(inputs, {i * st}, {k}), take(kernel, 0, i)) end
  return K.stack(outs, 1)
end

-- K.local_conv2d(inputs, kernel, kernel_size, strides, output_shape, data_format):
-- inputs (batch, rows, cols, C), kernel (out_rows * out_cols, kh * kw * C, filters)
function K.local_conv2d(inputs, kernel, kernel_size, strides, output_shape, data_format)
  local who = "K.local_conv2d"
  channels_last(who, data_format)
  local kk = tuple(who, "kernel_size", kernel_size, 2)
  local st = tuple(who, "strides", strides or 1, 2)
  local xs, ks = shape_of(inputs), shape_of(kernel)
  if #xs ~= 4 or #ks ~= 3 then
    raise(fmt("%s: expected inputs (batch, rows, cols, channels) and kernel (positions, size * channels, filters)",
      who))
  end
  local oh = xs[2] >= kk[1] and (xs[2] - kk[1]) // st[1] + 1 or 0
  local ow = xs[3] >= kk[2] and (xs[3] - kk[2]) // st[2] + 1 or 0
  if output_shape ~= nil and (output_shape[1] ~= oh or output_shape[2] ~= ow) then
    raise(fmt("%s: output_shape (%s, %s) differs from the (%d, %d) the sizes give", who, tostring(output_shape[1]),
      tostring(output_shape[2]), oh, ow))
  end
  if ks[1] ~= oh * ow or ks[2] ~= kk[1] * kk[2] * xs[4] then
    raise(fmt("%s: a kernel of shape %s does not fit inputs %s (expected (%d, %d, filters))", who, shape_str(ks),
      shape_str(xs), oh * ow, kk[1] * kk[2] * xs[4]))
  end
  local outs = {}
  for i = 0, oh - 1 do
    for j = 0, ow - 1 do
      outs[#outs + 1] = K.dot(patch(inputs, {i * st[1], j * st[2]}, kk), take(kernel, 0, i * ow + j))
    end
  end
  local y = K.stack(outs, 1)                                  -- (batch, oh * ow, filters)
  return K.reshape(y, {batched(y) and -1 or xs[1], oh, ow, ks[3]})
end

-- ---- 3-D: built from the 2-D ops, one depth slice at a time ----

function K.resize_volumes(x, depth_factor, height_factor, width_factor, data_format)
  channels_last("K.resize_volumes", data_format)
  if ndim_of(x) ~= 5 then raise(fmt("K.resize_volumes: expected a 5-D tensor, got rank %d", ndim_of(x))) end
  x = K.repeat_elements(x, depth_factor, 1)
  x = K.repeat_elements(x, height_factor, 2)
  return K.repeat_elements(x, width_factor, 3)
end

function K.spatial_3d_padding(x, padding, data_format)
  local who = "K.spatial_3d_padding"
  channels_last(who, data_format)
  padding = padding or {{1, 1}, {1, 1}, {1, 1}}
  if ndim_of(x) ~= 5 then raise(fmt("%s: expected a 5-D tensor, got rank %d", who, ndim_of(x))) end
  for d = 1, 3 do x = pad_axis(x, d, padding[d][1], padding[d][2], who) end
  return x
end

-- the conv3d op's attributes (src/ops_conv3d.h): strides, dilations and the
-- pads {front, back, top, bottom, left, right}
local function conv3d_attrs(st, dl, p)
  return {stride_d = st[1], stride_h = st[2], stride_w = st[3], dilation_d = dl[1], dilation_h = dl[2],
          dilation_w = dl[3], pad_front = p[1], pad_back = p[2], pad_top = p[3], pad_bottom = p[4], pad_left = p[5],
          pad_right = p[6]}
end

-- K.conv3d(x, kernel, strides, padding, data_format, dilation_rate): x (batch,
-- D, H, W, C), kernel (KD, KH, KW, C, O): the conv3d op
function K.conv3d(...)
  local who = "K.conv3d"
  local a = kwargs(who, {"x", "kernel", "strides", "padding", "data_format", "dilation_rate"}, ...)
  local x, k = input_and_kernel(who, a, 5, "in, out")
  local st, dl, _, _, p = conv_geometry(who, a, x, k, 3)
  return apply("conv3d", {x, k}, conv3d_attrs(st, dl, p))
end

-- K._conv3d(x, kernel, bias, strides, padding, dilation_rate, relu): the
-- Conv3D layer's op, the bias (or nil) and a relu (true) fused
function K._conv3d(x, kernel, bias, strides, padding, dilation_rate, relu)
  local who = "K.conv3d"
  local a = {x = x, kernel = kernel, strides = strides, padding = padding, dilation_rate = dilation_rate}
  input_and_kernel(who, a, 5, "in, out")
  local st, dl, _, _, p = conv_geometry(who, a, x, kernel, 3)
  local attr = conv3d_attrs(st, dl, p)
  attr.relu = relu and 1 or 0
  return apply("conv3d", bias and {x, kernel, bias} or {x, kernel}, attr)
end

-- K.pool3d(x, pool_size, strides, padding, data_format, pool_mode): two 2-D
-- pools: the rows and columns of every depth slice at once (the batch and
-- depth axes folded together), then the depths, as a pool of window
-- (depth, 1) over (depth, rows x columns). The max of a 3-D window is the max
-- over its depths of the slices' maxima; its mean (padding left out, as
-- TensorFlow) is the mean over its depths of the slices' means, since every
-- slice of a window has the same count of rows and columns inside the input
function K.pool3d(...)
  local who = "K.pool3d"
  local a = kwargs(who, {"x", "pool_size", "strides", "padding", "data_format", "pool_mode"}, ...)
  channels_last(who, a.data_format)
  local x = a.x
  if ndim_of(x) ~= 5 then raise(fmt("%s: expected a 5-D tensor (batch, depth, rows, cols, channels), got rank %d", who,
    ndim_of(x))) end
  local ps = tuple(who, "pool_size", a.pool_size, 3)
  local st = tuple(who, "strides", a.strides or 1, 3)
  local mode = a.pool_mode or "max"
  if mode ~= "max" and mode ~= "avg" then
    raise(fmt("%s: pool_mode must be 'max' or 'avg', got '%s'", who, tostring(mode)))
  end
  local xs = shape_of(x)
  local padding = a.padding or "valid"
  local p = spatial_pads(who, padding, xs, ps, st, nil, 3)
  local op = mode == "max" and "max_pool2d" or "avg_pool2d"
  local n, d, c = xs[1], xs[2], xs[5]   -- n < 0: the batch, unknown (n * d: folded with the depths)
  local y = apply(op, {apply("reshape", {x}, {shape = {n * d, xs[3], xs[4], c}})},
    pool_attrs(ps[2], ps[3], st[2], st[3], {p[3], p[4], p[5], p[6]}))
  local ys = shape_of(y)
  local oh, ow = ys[2], ys[3]
  y = apply("reshape", {y}, {shape = {n, d, oh * ow, c}})
  y = apply(op, {y}, pool_attrs(ps[1], 1, st[1], 1, {p[1], p[2], 0, 0}))
  return apply("reshape", {y}, {shape = {n, shape_of(y)[2], oh, ow, c}})
end

-- K.conv3d_transpose(x, kernel, output_shape, strides, padding): kernel
-- (KD, KH, KW, out, in); the conv3d_transpose op, the input gradient of the
-- conv3d that takes output_shape back to x (TensorFlow's leading pads)
function K.conv3d_transpose(...)
  local who = "K.conv3d_transpose"
  local a = kwargs(who, {"x", "kernel", "output_shape", "strides", "padding", "data_format"}, ...)
  local x, k = input_and_kernel(who, a, 5, "out, in")
  local xs, ks = shape_of(x), shape_of(k)
  local os_ = resolve_shape(a.output_shape, who)
  if #os_ ~= 5 then raise(fmt("%s: output_shape must have 5 entries, got %d", who, #os_)) end
  local st = tuple(who, "strides", a.strides or 1, 3)
  local padding = a.padding or "valid"
  if padding ~= "valid" and padding ~= "same" then
    raise(fmt("%s: padding must be 'valid' or 'same', got '%s'", who, tostring(padding)))
  end
  local lead = {}
  for i = 1, 3 do
    local n, D, kd, s = os_[i + 1], xs[i + 1], ks[i], st[i]
    local fwd, first
    if padding == "valid" then
      fwd, first = n >= kd and (n - kd) // s + 1 or 0, 0
    else
      fwd, first = (n + s - 1) // s, math.max((D - 1) * s + kd - n, 0) // 2
    end
    if fwd ~= D then
      local axis = ({"depth", "rows", "cols"})[i]
      raise(fmt("%s: output_shape %s does not give x's %s (%d) with strides %d, kernel %d and padding '%s'", who,
        shape_str(os_), axis, D, s, kd, padding))
    end
    lead[i] = first
  end
  if os_[5] ~= ks[4] then
    raise(fmt("%s: output_shape %s has %s channels, the kernel %s gives %d", who, shape_str(os_), tostring(os_[5]),
      shape_str(ks), ks[4]))
  end
  local attr = {stride_d = st[1], stride_h = st[2], stride_w = st[3], dilation_d = 1, dilation_h = 1, dilation_w = 1,
                pad_front = lead[1], pad_top = lead[2],
                pad_left = lead[3], shape = {batched(x) and -1 or xs[1], os_[2], os_[3], os_[4], os_[5]}}
  return apply("conv3d_transpose", {x, k}, attr)
end

-- ---- CTC ----

-- K.ctc_batch_cost(y_true, y_pred, input_length, label_length): the CTC loss
-- of each sample, (batch, 1). y_true (batch, max_label) labels from 0, y_pred
-- (batch, T, classes) softmax outputs whose last class is the blank,
-- input_length and label_length (batch, 1). As Keras: log(y_pred + epsilon)
-- as logits of TensorFlow's ctc_loss. The forward recursion over the
-- extended labels (blanks between) runs in log space, unrolled over T while
-- the graph is built; -1e10 stands for log 0.
function K.ctc_batch_cost(y_true, y_pred, input_length, label_length)
  local who = "K.ctc_batch_cost"
  local ps, ls = shape_of(y_pred), shape_of(y_true)
  if #ps ~= 3 or #ls ~= 2 then
    raise(fmt("%s: expected y_true (batch, max_label_length) and y_pred (batch, time, classes), got ranks %d and %d",
      who, #ls, #ps))
  end
  local T, C, L = ps[2], ps[3], ls[2]
  if T < 0 or C < 2 then raise(fmt("%s: y_pred needs a known time axis and at least 2 classes", who)) end
  local NEG = -1e10
  local S = 2 * L + 1
  local bdim = batched(y_pred) and -1 or ps[1]
  -- extended labels: blank, l1, blank, l2, ..., blank
  local blanks = K.add(K.zeros_like(y_true), C - 1)
  local ext = K.reshape(K.stack({blanks, y_true}, 2), {bdim, 2 * L})
  ext = apply("concat", {ext, apply("slice", {blanks}, {axis = 1, start = 0, length = 1})}, {axis = 1})
  -- log-probabilities of each extended label at each step: (batch, T, S)
  local logp = K.log_softmax(K.log(K.add(y_pred, K.epsilon())), -1)
  local emit = K.batch_dot(logp, K.one_hot(ext, C), {2, 2})
  -- a label may be reached from two back when it is not a blank and differs from the label two back
  local e1 = K.add(ext, 1)
  -- v (batch, S) moved k places along axis 1, zeros in front
  local function shifted(v, k)
    local head = apply("slice", {v}, {axis = 1, start = 0, length = S - k})
    return apply("pad_axis", {head}, {axis = 1, start = k, length = S})
  end
  local back2 = shifted(e1, 2)
  local skip = K.mul(K.not_equal(ext, C - 1), K.not_equal(e1, back2))
  local function const_row(f)
    local r = {}
    for i = 1, S do r[i] = f(i - 1) end
    return core.tensor({r})
  end
  local start = const_row(function(i) return i < 2 and 0 or NEG end)
  local first1 = const_row(function(i) return i < 1 and NEG or 0 end)
  local first2 = const_row(function(i) return i < 2 and NEG or 0 end)
  local noskip = K.mul(K.sub(1, skip), NEG)
  local function step_emit(t) return take(emit, 1, t) end
  local alpha = K.add(step_emit(0), start)
  for t = 1, T - 1 do
    local a1 = alpha
    local a2 = K.add(shifted(alpha, 1), first1)
    local a3
    if S > 2 then
      a3 = K.add(K.add(shifted(alpha, 2), first2), noskip)
    else
      a3 = K.add(K.zeros_like(alpha), NEG)
    end
    local m = K.stop_gradient(K.maximum(K.maximum(a1, a2), a3))
    local lse = K.add(m, K.log(K.add(K.add(K.exp(K.sub(a1, m)), K.exp(K.sub(a2, m))), K.exp(K.sub(a3, m)))))
    local new = K.add(lse, step_emit(t))
    -- past a sample's input length its alphas stay
    local live = K.reshape(K.less(t, input_length), {bdim})
    alpha = K.switch(live, new, alpha)
  end
  -- end in the last label or the blank after it: positions 2 * label_length - 1 and 2 * label_length
  local ll2 = K.reshape(K.mul(label_length, 2), {bdim})
  local sel = K.add(K.one_hot(ll2, S), K.one_hot(K.maximum(K.sub(ll2, 1), 0), S))
  sel = K.minimum(sel, 1)
  local final = K.add(alpha, K.mul(K.sub(1, sel), NEG))
  return K.neg(K.logsumexp(final, 1, true))
end
