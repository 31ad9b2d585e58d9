-- keras.datasets: Fashion-MNIST and MNIST from IDX files (gzip or plain) in a
-- local folder. Returns x_train, y_train, x_test, y_test as float32 tensors
-- holding the raw values (pixels 0..255, labels 0..9), shapes (n, 28, 28)
-- and (n,) as Keras's numpy arrays.
local keras = ...
local raise = require("keras.util").raise
local core = keras._core

local D = {}

local FILES = {
  x_train = "train-images-idx3-ubyte", y_train = "train-labels-idx1-ubyte",
  x_test = "t10k-images-idx3-ubyte", y_test = "t10k-labels-idx1-ubyte",
}

local function exists(p)
  local f = io.open(p, "rb")
  if f then f:close() end
  return f ~= nil
end

local function find(dir, base, who)
  for _, p in ipairs{dir .. "/" .. base .. ".gz", dir .. "/" .. base, dir .. "/" .. base:gsub("%-idx", ".idx")
    .. ".gz"} do
    if exists(p) then return p end
  end
  raise(string.format("%s: '%s' not found in %s (expected %s.gz or %s)", who, base, dir, base, base))
end

local function loader(name, default_dir, hint)
  return function(path)
    local dir = path or os.getenv("LKERAS_" .. name:upper() .. "_DIR") or default_dir
    if not dir then
      raise(string.format("%s.load_data: give the folder holding the IDX files (%s)", name, hint))
    end
    dir = dir:gsub("/+$", "")
    local who = name .. ".load_data"
    local out = {}
    for _, k in ipairs{"x_train", "y_train", "x_test", "y_test"} do
      local ok, t = pcall(core.load_idx, find(dir, FILES[k], who))
      if not ok then raise(who .. ": " .. tostring(t)) end
      out[k] = t
    end
    return out.x_train, out.y_train, out.x_test, out.y_test
  end
end

D.fashion_mnist = {load_data = loader("fashion_mnist", "/usr/share/datasets/fashion-mnist",
  "Debian's dataset-fashion-mnist installs them in /usr/share/datasets/fashion-mnist")}
D.mnist = {load_data = loader("mnist", nil, "train-images-idx3-ubyte.gz and the three others")}

return D
