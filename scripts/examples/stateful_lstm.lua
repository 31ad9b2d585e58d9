-- Stateful stacked LSTM (the Keras guide's example): the final state of sample
-- i in batch k is the initial state of sample i in batch k+1, so the batch size
-- is part of the model (batch_input_shape) and fit must not shuffle. Then the
-- call a game makes every frame: one step of a small stateful LSTM, timed.
--   lkeras scripts/examples/stateful_lstm.lua       (LKERAS_QUICK=1: a tiny run)
local keras = keras or require "keras"
local LSTM, Dense = keras.layers.LSTM, keras.layers.Dense
local quick = os.getenv("LKERAS_QUICK")
local check = dofile(arg[0]:match("^(.-)[^/]*$") .. "lib/check.lua")

local data_dim, timesteps, num_classes, batch_size = 16, 8, 10, 32
keras.random.seed(2)

-- expected input batch shape: (batch_size, timesteps, data_dim); note that we
-- have to give the full batch_input_shape since the network is stateful
local model = keras.Sequential{
  LSTM{32, return_sequences = true, stateful = true, batch_input_shape = {batch_size, timesteps, data_dim}},
  LSTM{32, return_sequences = true, stateful = true},
  LSTM{32, stateful = true},
  Dense{num_classes, activation = "softmax"},
}
model:compile{loss = "categorical_crossentropy", optimizer = "rmsprop", metrics = {"accuracy"}}

-- dummy training and validation data: a whole number of batches
local x_train = keras.random.random{batch_size * 10, timesteps, data_dim}
local y_train = keras.random.random{batch_size * 10, num_classes}
local x_val = keras.random.random{batch_size * 3, timesteps, data_dim}
local y_val = keras.random.random{batch_size * 3, num_classes}

local epochs = quick and 1 or 5
local h = model:fit(x_train, y_train, {batch_size = batch_size, epochs = epochs, shuffle = false,
                                       validation_data = {x_val, y_val}})
model:reset_states()
check.epochs(h, epochs)
check.epochs(h, epochs, "val_loss")

-- ---- one step per frame: a small stateful LSTM driven one sample at a time ----
local agent = keras.Sequential{
  LSTM{32, stateful = true, batch_input_shape = {1, 1, 8}},
  Dense{4, activation = "softmax"},
}
local frame = keras.random.random{1, 1, 8}
local now = keras._core.now
for _ = 1, 20 do agent:predict(frame) end       -- warm up (the plan is built on the first call)
agent:reset_states()
local frames = quick and 200 or 5000
local t0 = now()
local p
for _ = 1, frames do p = agent:predict(frame) end
local dt = now() - t0
print(string.format("single-sample predict of a stateful LSTM(32): %.1f us per call (%d calls), last action %d",
  1e6 * dt / frames, frames, p:argmax(-1):item()))

-- what the example claims: the state carries from call to call (the same frame gives another answer)
-- and reset_states starts over (the first answer again)
agent:reset_states()
local first = agent:predict(frame)
local second = agent:predict(frame)
check.between((first - second):abs():max(), 1e-7, nil, "the change between two calls on the same frame")
agent:reset_states()
check.close(agent:predict(frame), first, 0, "the first answer after reset_states, against the first one before")
check.shape(first.shape, {1, 4}, "an answer")
