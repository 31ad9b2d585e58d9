-- Forecasting the next value of a time series from the 24 before it, with
-- keras.preprocessing.sequence.TimeseriesGenerator feeding fit_generator (its
-- windows are gathered in C, the next ones on worker threads while a batch
-- trains), a validation generator over the series' last fifth, and
-- evaluate_generator / predict_generator. The model must beat the two naive
-- forecasts (the series' mean, and "the same as the last value").
--   lkeras scripts/examples/timeseries_forecast.lua   (LKERAS_QUICK=1: fewer epochs)
local keras = keras or require "keras"
local L = keras.layers
local TimeseriesGenerator = keras.preprocessing.sequence.TimeseriesGenerator
local quick = os.getenv("LKERAS_QUICK")

keras.random.seed(7)
local n, window = 1200, 24
local noise = keras.random.normal({n}, 0, 0.05):totable()
local values = {}
for t = 1, n do
  values[t] = {math.sin(t * 2 * math.pi / 50) + 0.5 * math.sin(t * 2 * math.pi / 17) + noise[t]}
end
local series = keras.tensor(values)                       -- (n, 1): time on axis 0

-- windows ending before 960 train, the rest validate (positions from 0, as Keras)
local split = 960
local train = TimeseriesGenerator(series, series, window, {end_index = split - 1, batch_size = 32})
local val = TimeseriesGenerator(series, series, window, {start_index = split - window, batch_size = 64})
print(string.format("%d training batches, %d validation batches", #train, #val))

local model = keras.Sequential{
  L.LSTM{32, input_shape = {window, 1}},
  L.Dense{1},
}
model:compile{optimizer = keras.optimizers.Adam{lr = 0.01}, loss = "mse", metrics = {"mae"}}
local history = model:fit_generator(train, {epochs = quick and 4 or 12, validation_data = val,
                                            verbose = quick and 0 or 1})

local mse, mae = model:evaluate_generator(val)
local pred = model:predict_generator(val)
-- the naive forecasts over the same windows
local mean, count, naive = 0, 0, 0
for i = 1, #val do
  local x, y = val:get(i)
  local xt, yt = x:totable(), y:totable()
  for j = 1, #yt do
    mean, count = mean + yt[j][1], count + 1
    naive = naive + (yt[j][1] - xt[j][window][1]) ^ 2
  end
end
mean = mean / count
local var = 0
for i = 1, #val do
  local _, y = val:get(i)
  for _, r in ipairs(y:totable()) do var = var + (r[1] - mean) ^ 2 end
end
var, naive = var / count, naive / count
print(string.format("validation: mse %.4f, mae %.4f over %d windows (%d predictions); "
  .. "predicting the mean: mse %.4f; repeating the last value: mse %.4f",
  mse, mae, count, pred.shape[1], var, naive))
print(string.format("val_loss by epoch: %s", (function()
  local parts = {}
  for i, v in ipairs(history.history.val_loss) do parts[i] = string.format("%.4f", v) end
  return table.concat(parts, " ")
end)()))
assert(pred.shape[1] == count, "predict_generator returned one row per window")
assert(mse < 0.5 * naive and mse < 0.1 * var, "the model did not learn to forecast the series")
