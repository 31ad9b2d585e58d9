-- keras.datasets: Keras 2.2.4's datasets from the files Keras downloads,
-- found in a local cache folder (keras.utils.get_file; this library never
-- downloads). Returns x_train, y_train, x_test, y_test:
--   mnist, fashion_mnist  float32 tensors of the raw values (pixels 0..255,
--                         labels 0..9), shapes (n, 28, 28) and (n,); from
--                         mnist.npz or from a folder of IDX files
--   cifar10, cifar100     (n, 32, 32, 3) pixels 0..255 and (n, 1) labels, from
--                         the binary archives cifar-10-binary.tar.gz and
--                         cifar-100-binary.tar.gz
--   boston_housing        (n, 13) and (n,) from boston_housing.npz
--   imdb, reuters         Lua lists of integer lists (ragged, as
--                         pad_sequences takes them) and (n,) label tensors,
--                         from imdb.npz / reuters.npz, whose sequences are
--                         pickled object arrays (src/io/pickle.c reads them)
-- Shuffles use numpy's legacy RandomState (MT19937, np.random.seed(seed),
-- np.random.shuffle), so the orders are Keras's own.
local keras = ...
local util = require("keras.util")
local raise = util.raise
local core = keras._core
local A = keras._args

local D = {}

local FILES = {
  x_train = "train-images-idx3-ubyte", y_train = "train-labels-idx1-ubyte",
  x_test = "t10k-images-idx3-ubyte", y_test = "t10k-labels-idx1-ubyte",
}

-- (a stat, not an open: a FIFO or a device there cannot hang the search;
-- the loader then refuses it)
local function exists(p)
  return core.file_kind(p) ~= nil
end

-- whether p is a folder
local function is_dir(p)
  return core.file_kind(p) == "directory"
end

local function find(dir, base, who)
  for _, p in ipairs{dir .. "/" .. base .. ".gz", dir .. "/" .. base, dir .. "/" .. base:gsub("%-idx", ".idx")
    .. ".gz"} do
    if exists(p) then return p end
  end
  raise(string.format("%s: '%s' not found in %s (expected %s.gz or %s)", who, base, dir, base, base))
end

local function load_idx_dir(dir, who)
  dir = dir:gsub("/+$", "")
  local out = {}
  for _, k in ipairs{"x_train", "y_train", "x_test", "y_test"} do
    local ok, t = pcall(core.load_idx, find(dir, FILES[k], who))
    if not ok then raise(who .. ": " .. tostring(t)) end
    out[k] = t
  end
  return out.x_train, out.y_train, out.x_test, out.y_test
end

local function loader(name, default_dir, hint)
  return function(path)
    local dir = path or os.getenv("LKERAS_" .. name:upper() .. "_DIR") or default_dir
    if not dir then
      raise(string.format("%s.load_data: give the folder holding the IDX files (%s)", name, hint))
    end
    return load_idx_dir(dir, name .. ".load_data")
  end
end

D.fashion_mnist = {load_data = loader("fashion_mnist", "/usr/share/datasets/fashion-mnist",
  "Debian's dataset-fashion-mnist installs them in /usr/share/datasets/fashion-mnist")}

-- ---- numpy's legacy random stream: np.random.seed(int), np.random.shuffle ----

-- MT19937 seeded as numpy's RandomState.seed(seed) does for an integer
local function mt19937(seed)
  local mt = {[0] = seed}
  for i = 1, 623 do
    local prev = mt[i - 1]
    mt[i] = (1812433253 * (prev ~ (prev >> 30)) + i) & 0xffffffff
  end
  local idx = 624
  return function()
    if idx >= 624 then
      for i = 0, 623 do
        local y = (mt[i] & 0x80000000) | (mt[(i + 1) % 624] & 0x7fffffff)
        local v = mt[(i + 397) % 624] ~ (y >> 1)
        if y & 1 == 1 then v = v ~ 0x9908b0df end
        mt[i] = v
      end
      idx = 0
    end
    local y = mt[idx]
    idx = idx + 1
    y = y ~ (y >> 11)
    y = y ~ ((y << 7) & 0x9d2c5680)
    y = y ~ ((y << 15) & 0xefc60000)
    y = y ~ (y >> 18)
    return y & 0xffffffff
  end
end

-- numpy's random_interval: a uniform integer in 0..max by masked rejection
local function interval(next32, max)
  if max == 0 then return 0 end
  local mask = max
  for _, s in ipairs{1, 2, 4, 8, 16} do mask = mask | (mask >> s) end
  local v
  repeat v = next32() & mask until v <= max
  return v
end

-- np.random.shuffle(np.arange(n)) as 1-based indices
local function shuffled(next32, n)
  local idx = {}
  for i = 1, n do idx[i] = i end
  for i = n - 1, 1, -1 do
    local j = interval(next32, i)
    idx[i + 1], idx[j + 1] = idx[j + 1], idx[i + 1]
  end
  return idx
end
D._mt19937, D._shuffled = mt19937, shuffled   -- for the specs

-- ---- option checks ----

local function check_int(who, name, v, lo, allow_nil)
  if v == nil and allow_nil then return nil end
  local n = math.tointeger(v)
  if not n or (lo and n < lo) then
    raise(string.format("%s: %s must be an integer%s%s, got %s", who, name, lo and " >= " .. lo or "",
      allow_nil and " or nil" or "", tostring(v)))
  end
  return n
end

local function check_seed(who, v)
  local n = math.tointeger(v)
  if not n or n < 0 or n > 0xffffffff then
    raise(string.format("%s: seed must be an integer in 0..2^32-1 (numpy's range), got %s", who, tostring(v)))
  end
  return n
end

local function check_split(who, v)
  if type(v) ~= "number" or v ~= v or v < 0 or v > 1 then
    raise(string.format("%s: test_split must be a number in [0, 1], got %s", who, tostring(v)))
  end
  return v
end

-- ---- files ----

local function get_file(fname, origin, who)
  local ok, p = pcall(keras.utils.get_file, fname, origin)
  if not ok then raise(who .. ": " .. tostring(p):gsub("^.-:%d+: ", ""):gsub("^get_file: ", "")) end
  return p
end

local function load_npz(path, who, want)
  local ok, t = pcall(core.load_npz, path)
  if not ok then raise(who .. ": " .. tostring(t)) end
  for _, k in ipairs(want) do
    if t[k] == nil then raise(string.format("%s: '%s' has no array '%s'", who, path, k)) end
  end
  return t
end

local function as_ragged(v, who, path, name)
  if type(v) ~= "table" or getmetatable(v) ~= nil then
    raise(string.format("%s: '%s': '%s' must be an object array of integer lists (as Keras's file), got "
      .. "a numeric array", who, path, name))
  end
  return v
end

local function as_labels(t, n, who, path, name)
  if getmetatable(t) ~= core.Tensor or #t.shape ~= 1 or t.shape[1] ~= n then
    raise(string.format("%s: '%s': '%s' must be a 1-D array of %d labels", who, path, name, n))
  end
  return t:totable()
end

local URL = "https://s3.amazonaws.com/text-datasets/"

-- Keras 2.2.4's common steps of imdb and reuters on the shuffled lists
local function text_steps(who, xs, labels, o)
  local start_char, index_from, oov_char = o.start_char, o.index_from, o.oov_char
  if start_char ~= nil or index_from ~= 0 then
    for i, x in ipairs(xs) do
      local y, k = {}, 0
      if start_char ~= nil then
        k = 1
        y[1] = start_char
      end
      for j = 1, #x do y[k + j] = x[j] + index_from end
      xs[i] = y
    end
  end
  if o.maxlen then   -- Keras's _remove_long_seq: keeps the sequences shorter than maxlen
    local nx, nl = {}, {}
    for i, x in ipairs(xs) do
      if #x < o.maxlen then
        nx[#nx + 1] = x
        nl[#nl + 1] = labels[i]
      end
    end
    xs, labels = nx, nl
    if #xs == 0 then
      raise(string.format("%s: after filtering for sequences shorter than maxlen=%d, no sequence was kept. "
        .. "Increase maxlen.", who, o.maxlen))
    end
  end
  local num_words = o.num_words
  if not num_words or num_words == 0 then
    num_words = nil
    for _, x in ipairs(xs) do
      for j = 1, #x do
        if not num_words or x[j] > num_words then num_words = x[j] end
      end
    end
    num_words = num_words or 0
  end
  local skip_top = o.skip_top
  for i, x in ipairs(xs) do
    local y = {}
    for j = 1, #x do
      local w = x[j]
      if skip_top <= w and w < num_words then
        y[#y + 1] = w
      elseif oov_char ~= nil then
        y[#y + 1] = oov_char
      end
    end
    xs[i] = y
  end
  return xs, labels
end

local function split(xs, labels, idx)
  local a, b, la, lb = {}, {}, {}, {}
  for i = 1, #xs do
    if i <= idx then
      a[i], la[i] = xs[i], labels[i]
    else
      b[i - idx], lb[i - idx] = xs[i], labels[i]
    end
  end
  local function labels_tensor(l)
    if #l == 0 then return core.full({0}, 0) end
    return core.tensor(l)
  end
  return a, labels_tensor(la), b, labels_tensor(lb)
end

local TEXT_OPTS = {"num_words", "skip_top", "maxlen", "seed", "start_char", "oov_char", "index_from"}

local function text_options(who, o)
  if o.nb_words ~= nil then
    if o.num_words ~= nil then raise(who .. ": give num_words or its old name nb_words, not both") end
    o.num_words = o.nb_words
  end
  local out = {
    num_words = check_int(who, "num_words", o.num_words, 0, true),
    skip_top = check_int(who, "skip_top", o.skip_top or 0),
    maxlen = check_int(who, "maxlen", o.maxlen, 0, true),
    seed = check_seed(who, o.seed == nil and 113 or o.seed),
    index_from = check_int(who, "index_from", o.index_from == nil and 3 or o.index_from),
  }
  -- start_char and oov_char may be turned off with false (Python's None)
  for _, k in ipairs{"start_char", "oov_char"} do
    local v = o[k]
    if v == nil then v = k == "start_char" and 1 or 2 end
    if v == false or v == A.None then out[k] = nil else out[k] = check_int(who, k, v) end
  end
  if out.maxlen == 0 then out.maxlen = nil end   -- `if maxlen:` in Keras
  return out
end

local function spec(who, positional, extra)
  local allowed = {}
  for _, k in ipairs(extra or {}) do allowed[k] = true end
  return A.spec{who = who, positional = positional, allowed = allowed}
end

-- ---- imdb ----

local IMDB_SPEC = spec("imdb.load_data", {"path", table.unpack(TEXT_OPTS)}, {"nb_words"})

local function load_imdb(...)
  local who = "imdb.load_data"
  local o = A.parse(IMDB_SPEC, ...)
  local opt = text_options(who, o)
  local path = get_file(o.path or "imdb.npz", URL .. "imdb.npz", who)
  local f = load_npz(path, who, {"x_train", "y_train", "x_test", "y_test"})
  local xtr, xte = as_ragged(f.x_train, who, path, "x_train"), as_ragged(f.x_test, who, path, "x_test")
  local ytr = as_labels(f.y_train, #xtr, who, path, "y_train")
  local yte = as_labels(f.y_test, #xte, who, path, "y_test")
  local next32 = mt19937(opt.seed)
  local xs, labels = {}, {}
  for _, part in ipairs{{xtr, ytr}, {xte, yte}} do
    for _, i in ipairs(shuffled(next32, #part[1])) do
      xs[#xs + 1] = part[1][i]
      labels[#labels + 1] = part[2][i]
    end
  end
  xs, labels = text_steps(who, xs, labels, opt)
  -- as Keras 2.2.4: the split is at the number of training sequences before maxlen's filtering
  return split(xs, labels, #xtr)
end

-- ---- reuters ----

local REUTERS_SPEC = spec("reuters.load_data", {"path", "num_words", "skip_top", "maxlen", "test_split", "seed",
  "start_char", "oov_char", "index_from"}, {"nb_words"})

local function load_reuters(...)
  local who = "reuters.load_data"
  local o = A.parse(REUTERS_SPEC, ...)
  local opt = text_options(who, o)
  local test_split = check_split(who, o.test_split == nil and 0.2 or o.test_split)
  local path = get_file(o.path or "reuters.npz", URL .. "reuters.npz", who)
  local f = load_npz(path, who, {"x", "y"})
  local x0 = as_ragged(f.x, who, path, "x")
  local y0 = as_labels(f.y, #x0, who, path, "y")
  local xs, labels = {}, {}
  for k, i in ipairs(shuffled(mt19937(opt.seed), #x0)) do
    xs[k], labels[k] = x0[i], y0[i]
  end
  xs, labels = text_steps(who, xs, labels, opt)
  return split(xs, labels, math.floor(#xs * (1 - test_split)))
end

local function word_index(name)
  local who = name .. ".get_word_index"
  local s = spec(who, {"path"})
  return function(...)
    local o = A.parse(s, ...)
    local path = get_file(o.path or (name .. "_word_index.json"), URL .. name .. "_word_index.json", who)
    local nr = util.not_regular(who, path)
    if nr then raise(nr) end
    local f, err = io.open(path, "rb")
    if not f then raise(string.format("%s: cannot read '%s' (%s)", who, path, tostring(err))) end
    local text = f:read("a")
    f:close()
    local ok, t = pcall(require("keras.json").decode, text)
    if not ok or type(t) ~= "table" then
      raise(string.format("%s: '%s' is not a JSON object of word -> index (%s)", who, path,
        tostring(ok and type(t) or t):gsub("^.-:%d+: ", "")))
    end
    local out = {}
    for k, v in pairs(t) do
      if type(k) ~= "string" or math.tointeger(v) == nil then
        raise(string.format("%s: '%s': entry %s is not a word -> integer index", who, path, tostring(k)))
      end
      out[k] = math.tointeger(v)
    end
    return out
  end
end

D.imdb = {load_data = load_imdb, get_word_index = word_index("imdb")}
D.reuters = {load_data = load_reuters, get_word_index = word_index("reuters")}

-- ---- mnist (mnist.npz, or a folder of IDX files) ----

local MNIST_SPEC = spec("mnist.load_data", {"path"})

D.mnist = {load_data = function(...)
  local who = "mnist.load_data"
  local o = A.parse(MNIST_SPEC, ...)
  local path = o.path
  if path == nil and os.getenv("LKERAS_MNIST_DIR") then path = os.getenv("LKERAS_MNIST_DIR") end
  if path ~= nil and type(path) ~= "string" then
    raise(who .. ": path must be a file name or a folder, got " .. type(path))
  end
  -- a folder, or any name but a .npz, is a folder of IDX files (as before mnist.npz was read)
  if path and (is_dir(path) or not path:match("%.npz$")) then return load_idx_dir(path, who) end
  local file = get_file(path or "mnist.npz", "https://s3.amazonaws.com/img-datasets/mnist.npz", who)
  local f = load_npz(file, who, {"x_train", "y_train", "x_test", "y_test"})
  for _, k in ipairs{"x_train", "y_train", "x_test", "y_test"} do
    if getmetatable(f[k]) ~= core.Tensor then
      raise(string.format("%s: '%s': '%s' must be a numeric array", who, file, k))
    end
  end
  return f.x_train, f.y_train, f.x_test, f.y_test
end}

-- ---- boston_housing ----

local BOSTON_SPEC = spec("boston_housing.load_data", {"path", "test_split", "seed"})

D.boston_housing = {load_data = function(...)
  local who = "boston_housing.load_data"
  local o = A.parse(BOSTON_SPEC, ...)
  local test_split = check_split(who, o.test_split == nil and 0.2 or o.test_split)
  local seed = check_seed(who, o.seed == nil and 113 or o.seed)
  local path = get_file(o.path or "boston_housing.npz",
    "https://s3.amazonaws.com/keras-datasets/boston_housing.npz", who)
  local f = load_npz(path, who, {"x", "y"})
  local x, y = f.x, f.y
  if getmetatable(x) ~= core.Tensor or getmetatable(y) ~= core.Tensor or #x.shape < 1 or #y.shape < 1
    or x.shape[1] ~= y.shape[1] then
    raise(string.format("%s: '%s': 'x' and 'y' must be numeric arrays with as many rows", who, path))
  end
  local n = x.shape[1]
  local idx = shuffled(mt19937(seed), n)
  if n > 0 then
    x, y = x:take(idx), y:take(idx)
  end
  local cut = math.floor(n * (1 - test_split))
  return x:slice(1, cut), y:slice(1, cut), x:slice(cut + 1, n), y:slice(cut + 1, n)
end}

-- ---- cifar10, cifar100 (the binary archives) ----

local function load_cifar(who, path, members, label_bytes, label_index)
  local ok, x, y = pcall(core.load_cifar, path, members, label_bytes, label_index)
  if not ok then raise(who .. ": " .. tostring(x)) end
  return x, y
end

local CIFAR10_SPEC = spec("cifar10.load_data", {"path"})

D.cifar10 = {load_data = function(...)
  local who = "cifar10.load_data"
  local o = A.parse(CIFAR10_SPEC, ...)
  local path = get_file(o.path or "cifar-10-binary.tar.gz", "https://www.cs.toronto.edu/~kriz/cifar-10-binary.tar.gz",
    who)
  local x_train, y_train = load_cifar(who, path,
    {"data_batch_1.bin", "data_batch_2.bin", "data_batch_3.bin", "data_batch_4.bin", "data_batch_5.bin"}, 1, 0)
  local x_test, y_test = load_cifar(who, path, {"test_batch.bin"}, 1, 0)
  return x_train, y_train, x_test, y_test
end}

local CIFAR100_SPEC = spec("cifar100.load_data", {"label_mode", "path"})

D.cifar100 = {load_data = function(...)
  local who = "cifar100.load_data"
  local o = A.parse(CIFAR100_SPEC, ...)
  local mode = o.label_mode or "fine"
  if mode ~= "fine" and mode ~= "coarse" then
    raise(string.format('%s: label_mode must be one of "fine" "coarse", got %s', who, tostring(mode)))
  end
  local path = get_file(o.path or "cifar-100-binary.tar.gz",
    "https://www.cs.toronto.edu/~kriz/cifar-100-binary.tar.gz", who)
  local at = mode == "fine" and 1 or 0   -- each record: the coarse label byte, the fine one, the pixels
  local x_train, y_train = load_cifar(who, path, {"train.bin"}, 2, at)
  local x_test, y_test = load_cifar(who, path, {"test.bin"}, 2, at)
  return x_train, y_train, x_test, y_test
end}

return D
