-- A denoising convolutional autoencoder on Fashion-MNIST (Keras's
-- mnist_denoising_autoencoder, on Debian's dataset-fashion-mnist): the
-- images with Gaussian noise (std 0.5, clipped to [0, 1]) go in, the clean
-- images are the targets. Encoder Conv2D(32, 3, strides 2) and Conv2D(64, 3,
-- strides 2) to 7x7x64; decoder Conv2DTranspose(64, 3, strides 2) and
-- Conv2DTranspose(32, 3, strides 2) back to 28x28, then Conv2D(1, 3,
-- sigmoid); mean squared error, Adam. Prints the test reconstruction MSE
-- (denoised against clean) beside the noisy images' own MSE, and writes
-- conv_autoencoder.png (a grid: noisy, denoised and clean test images in
-- three rows, drawn by gnuplot's image plot) when gnuplot is installed.
--   lkeras scripts/examples/conv_autoencoder.lua [epochs] [threads]
-- LKERAS_QUICK=1: 512 training and 256 test images, one epoch (the test
-- runner's mode).
local keras = keras or require "keras"
local L = keras.layers
local quick = os.getenv("LKERAS_QUICK")
local check = dofile(arg[0]:match("^(.-)[^/]*$") .. "lib/check.lua")

local epochs = tonumber(arg and arg[1]) or (quick and 1 or 10)
if arg and arg[2] then keras.set_num_threads(math.tointeger(tonumber(arg[2]))) end
keras.random.seed(1234)
local now = keras._core and keras._core.now or os.time
local t0 = now()

local x_train, _, x_test = keras.datasets.fashion_mnist.load_data()
local n_train, n_test = quick and 512 or x_train.shape[1], quick and 256 or x_test.shape[1]
x_train = x_train:slice(1, n_train):reshape{n_train, 28, 28, 1} / 255
x_test = x_test:slice(1, n_test):reshape{n_test, 28, 28, 1} / 255
local function noisy(x) return (x + keras.random.normal(x.shape, 0, 0.5)):clip(0, 1) end
local x_train_noisy, x_test_noisy = noisy(x_train), noisy(x_test)
print(string.format("%d train images, %d test images, %d threads", n_train, n_test, keras.get_num_threads()))

local model = keras.Sequential{
  L.Conv2D{32, 3, strides = 2, padding = "same", activation = "relu", input_shape = {28, 28, 1}},
  L.Conv2D{64, 3, strides = 2, padding = "same", activation = "relu"},
  L.Conv2DTranspose{64, 3, strides = 2, padding = "same", activation = "relu"},
  L.Conv2DTranspose{32, 3, strides = 2, padding = "same", activation = "relu"},
  L.Conv2D{1, 3, padding = "same", activation = "sigmoid"},
}
model:summary()
model:compile{loss = "mse", optimizer = keras.optimizers.Adam{lr = 0.001}}
local h = model:fit(x_train_noisy, x_train, {batch_size = 128, epochs = epochs, verbose = quick and 0 or 1})

local denoised = model:predict(x_test_noisy, {batch_size = 256})
local mse = ((denoised - x_test) ^ 2):mean()
local noisy_mse = ((x_test_noisy - x_test) ^ 2):mean()
local evaluated = model:evaluate(x_test_noisy, x_test, {batch_size = 256, verbose = 0})
print(string.format("Noisy test images, MSE against the clean ones: %.4f", noisy_mse))
print(string.format("Test reconstruction MSE (denoised against clean): %.4f", mse))
print(string.format("Wall time: %.1fs", now() - t0))

check.shape(model.layers[2].output_shape, {keras.None, 7, 7, 64}, "the encoder's output")
check.shape(model.layers[3].output_shape, {keras.None, 14, 14, 64}, "the first Conv2DTranspose's output")
check.shape(model.layers[4].output_shape, {keras.None, 28, 28, 32}, "the second Conv2DTranspose's output")
check.shape(denoised.shape, {n_test, 28, 28, 1}, "the denoised images")
check.epochs(h, epochs)
check.between(mse, 0, 1, "the test reconstruction MSE")
check.between(math.abs(mse - evaluated), nil, 1e-4, "the difference of the MSE computed here and by evaluate")
check.between(denoised:min(), -1e-6, nil, "the darkest denoised pixel")
check.between(denoised:max(), nil, 1 + 1e-6, "the brightest denoised pixel")
-- a trained model denoises: its output is nearer the clean images than its input is
if not quick then check.between(mse, nil, noisy_mse, "the reconstruction MSE against the noisy images' MSE") end

-- the grid: 10 test images (8 in quick mode) per row, noisy / denoised / clean,
-- a one-pixel gap between images; row 0 of the data file is drawn at the bottom
local function write_grid(path, n)
  local rows = {}
  for r, t in ipairs{x_test_noisy, denoised, x_test} do rows[r] = t:slice(1, n):totable() end
  local W, H = n * 29 - 1, 3 * 29 - 1
  local data = path .. ".dat"
  local f = assert(io.open(data, "w"))
  for y = H - 1, 0, -1 do
    local r, py = y // 29 + 1, y % 29
    local line = {}
    for x = 0, W - 1 do
      local i, px = x // 29 + 1, x % 29
      local v = 1
      if py < 28 and px < 28 then v = rows[r][i][py + 1][px + 1][1] end   -- 1-based
      line[#line + 1] = string.format("%.3f", v)
    end
    f:write(table.concat(line, " "), "\n")
  end
  f:close()
  local script = path .. ".gp"
  f = assert(io.open(script, "w"))
  f:write(string.format([[
set terminal pngcairo size %d,%d
set output '%s'
unset key; unset tics; unset border; unset colorbox
set margins 0,0,0,0
set palette gray
set cbrange [0:1]
set xrange [-0.5:%g]; set yrange [-0.5:%g]
plot '%s' matrix with image
]], W * 4, H * 4, path, W - 0.5, H - 0.5, data))
  f:close()
  local ok = os.execute("gnuplot '" .. script .. "' 2>/dev/null")
  os.remove(data)
  os.remove(script)
  return ok
end

if os.execute("command -v gnuplot >/dev/null 2>&1") then
  local base = quick and os.tmpname()   -- a fresh name in quick mode (the test runner's)
  local path = quick and base .. ".png" or "conv_autoencoder.png"
  check.equal(not not write_grid(path, quick and 8 or 10), true, "gnuplot's exit status")
  local f = io.open(path, "rb")
  local head = f and f:read(8)
  if f then f:close() end
  check.equal(head, "\137PNG\r\n\26\n", "the first bytes of " .. path)
  print("wrote " .. path .. " (rows: noisy, denoised, clean)")
  if quick then os.remove(path); os.remove(base) end
else
  print("gnuplot is not installed: no picture (apt-get install gnuplot-nox)")
end
