-- keras.utils: to_categorical, normalize, class weights, word vectors.
local keras = ...
local util = require("keras.util")
local is_tensor = util.is_tensor
local raise = util.raise
local core, K = keras._core, keras.backend

local U = {}

-- Keras's positional order, then options, or one table (args.lua); a lone
-- table that names no argument is the data: to_categorical({0, 2, 1})
local A = keras._args
local function call_spec(who, positional)
  local spec = A.spec{who = who, positional = positional, tables = {[positional[1]] = true}}
  spec.single = function(t)
    for k in pairs(t) do
      if type(k) == "string" and spec.known[k] then return false end
    end
    return true
  end
  return spec
end
local TO_CATEGORICAL_SPEC = call_spec("to_categorical", {"y", "num_classes", "dtype"})
local NORMALIZE_SPEC = call_spec("normalize", {"x", "axis", "order"})

-- labels (a tensor or a table of integers) -> one-hot rows; a trailing axis of
-- size 1 is squeezed, as Keras does
function U.to_categorical(...)
  local o = A.parse(TO_CATEGORICAL_SPEC, ...)
  local y, num_classes = o.y, o.num_classes
  if o.dtype ~= nil and o.dtype ~= "float32" then
    raise(string.format("to_categorical: dtype must be float32 (lkeras tensors are float32), got %s",
      tostring(o.dtype)))
  end
  if not is_tensor(y) then
    if type(y) ~= "table" then raise("to_categorical: labels must be a tensor or a table, got " .. type(y)) end
    y = core.tensor(y)
  end
  local s = y.shape
  if #s > 1 and s[#s] == 1 then
    local ns = {}
    for i = 1, #s - 1 do ns[i] = s[i] end
    y = y:reshape(ns)
  end
  if y:size() == 0 then raise("to_categorical: no labels") end
  if not y:isfinite() then raise("to_categorical: labels contain NaN or Inf") end
  if num_classes == nil then
    num_classes = math.floor(y:max()) + 1
  end
  if math.type(num_classes) ~= "integer" or num_classes < 1 then
    raise("to_categorical: num_classes must be a positive integer, got " .. tostring(num_classes))
  end
  local lo = y:min()
  if lo < 0 then   -- an integer label printed as one (not -1.67772e+07)
    raise(string.format("to_categorical: label %s is negative", lo == math.floor(lo) and lo > -2^63
      and string.format("%d", math.floor(lo)) or string.format("%.9g", lo)))
  end
  local ok, out = pcall(K.one_hot, y, num_classes)
  if not ok then
    local msg = tostring(out):gsub("^.-:%d+: ", ""):gsub("^one_hot: ", ""):gsub("^index ", "label ")
    raise("to_categorical: " .. msg)
  end
  return out
end

-- x / norm(x) along axis (order 1 or 2); zero norms are left as they are
function U.normalize(...)
  local o = A.parse(NORMALIZE_SPEC, ...)
  local x, axis, order = o.x, o.axis or -1, o.order or 2
  if not is_tensor(x) then x = core.tensor(x) end
  local n
  if order == 2 then
    n = K.sqrt(K.sum(K.square(x), axis, true))
  elseif order == 1 then
    n = K.sum(K.abs(x), axis, true)
  else
    raise("normalize: order must be 1 or 2, got " .. tostring(order))
  end
  n = K.add(n, K.equal(n, 0))
  return K.div(x, n)
end

-- keras.utils.get_file: the file in the local cache; this library never
-- downloads, so a missing file is an error that says where to put it. The
-- cache is cache_dir (default $LKERAS_HOME, else ~/.lkeras) / cache_subdir
-- (default "datasets") / fname, joined as Python's os.path.join does (an
-- absolute fname or cache_subdir stands alone).
local GET_FILE_SPEC = A.spec{who = "get_file", positional = {"fname", "origin", "untar", "md5_hash", "file_hash",
  "cache_subdir", "hash_algorithm", "extract", "archive_format", "cache_dir"}}

local function join(a, b)
  if b:sub(1, 1) == "/" then return b end
  return (a:gsub("/+$", "")) .. "/" .. b
end

function U.get_file(...)
  local o = A.parse(GET_FILE_SPEC, ...)
  local fname, origin = o.fname, o.origin
  if type(fname) ~= "string" or fname == "" then
    raise("get_file: fname must be a non-empty string, got " .. tostring(fname))
  end
  if origin ~= nil and type(origin) ~= "string" then
    raise("get_file: origin must be a string (a URL), got " .. type(origin))
  end
  if o.untar or o.extract then
    raise("get_file: untar and extract are not supported: lkeras reads its archives as they are "
      .. "(give the archive's own name)")
  end
  for _, k in ipairs{"cache_dir", "cache_subdir"} do
    if o[k] ~= nil and type(o[k]) ~= "string" then raise(string.format("get_file: %s must be a string, got %s", k,
      type(o[k]))) end
  end
  local base = o.cache_dir or os.getenv("LKERAS_HOME")
  if not base then
    local home = os.getenv("HOME")
    if not home or home == "" then raise("get_file: no cache folder: set cache_dir, $LKERAS_HOME or $HOME") end
    base = home .. "/.lkeras"
  end
  local path = join(join(base, o.cache_subdir or "datasets"), fname)
  local kind = core.file_kind(path)
  if kind ~= nil and kind ~= "file" and kind ~= "directory" then raise(util.not_regular("get_file", path)) end
  local f = io.open(path, "rb")
  local ok, _, code = true, nil, nil
  if f then ok, _, code = f:read(0) end
  if not f or (ok == nil and code == 21) then
    if f then f:close() end
    raise(string.format("get_file: '%s' is not in the cache and lkeras does not download: fetch %s and save it "
      .. "as %s", fname, origin or "it", path))
  end
  local hash = o.file_hash or o.md5_hash
  if hash ~= nil then
    local algo = o.hash_algorithm or "auto"
    if type(hash) ~= "string" then raise("get_file: file_hash must be a hex string, got " .. type(hash)) end
    if algo == "sha256" or (algo == "auto" and #hash == 64) then
      f:close()
      raise("get_file: sha256 hashes are not checked by lkeras (md5 is); leave file_hash out or give an md5")
    elseif algo ~= "md5" and algo ~= "auto" then
      f:close()
      raise(string.format("get_file: hash_algorithm must be 'auto', 'md5' or 'sha256', got %s", tostring(algo)))
    end
    local digest = require("keras.md5").hex(f:read("a") or "")
    if digest ~= hash:lower() then
      f:close()
      raise(string.format("get_file: '%s' has md5 %s, expected %s: the file is damaged or another version; "
        .. "fetch %s again", path, digest, hash:lower(), origin or "it"))
    end
  end
  f:close()
  return path
end

-- per-sample weights from a class -> weight table (Keras 2.2.4 standardize_weights)
function U._class_weights(cw, y, who)
  if type(cw) ~= "table" then raise(who .. ": class_weight must be a table {[class] = weight}") end
  local s = y.shape
  if #s > 2 then raise(who .. ": class_weight not supported for 3+ dimensional targets.") end
  local classes = (#s == 2 and s[2] > 1) and y:argmax(-1) or y:reshape{-1}
  local list = classes:totable()
  local w = core.full({#list}, 0)
  local missing = {}
  for i, c in ipairs(list) do
    local k = math.tointeger(c) or c
    local v = cw[k]
    if v == nil then missing[#missing + 1] = k
    else
      if type(v) ~= "number" then raise(string.format("%s: class_weight[%s] must be a number", who, tostring(k))) end
      w:set(i, v)
    end
  end
  if #missing > 0 then
    local seen, uniq = {}, {}
    for _, k in ipairs(missing) do if not seen[k] then seen[k] = true; uniq[#uniq + 1] = tostring(k) end end
    raise(string.format("%s: class_weight must contain all classes in the data. The classes {%s} exist in the data " ..
      "but not in class_weight.",
      who, table.concat(uniq, ", ")))
  end
  return w
end

return U
