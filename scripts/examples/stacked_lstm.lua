-- Stacked LSTM for sequence classification (the Keras guide's example): three
-- LSTM(32) layers, the first two returning their whole sequence, then a softmax
-- over 10 classes; random data, validation data given to fit.
--   lkeras scripts/examples/stacked_lstm.lua        (LKERAS_QUICK=1: a tiny run)
local keras = keras or require "keras"
local LSTM, Dense = keras.layers.LSTM, keras.layers.Dense
local quick = os.getenv("LKERAS_QUICK")
local check = dofile(arg[0]:match("^(.-)[^/]*$") .. "lib/check.lua")

local data_dim, timesteps, num_classes = 16, 8, 10
keras.random.seed(1)

-- expected input data shape: (batch_size, timesteps, data_dim)
local model = keras.Sequential{
  LSTM{32, return_sequences = true, input_shape = {timesteps, data_dim}},  -- a sequence of 32-vectors
  LSTM{32, return_sequences = true},                                       -- a sequence of 32-vectors
  LSTM(32),                                                                -- a single 32-vector
  Dense{num_classes, activation = "softmax"},
}
model:summary()
model:compile{loss = "categorical_crossentropy", optimizer = "rmsprop", metrics = {"accuracy"}}

-- dummy training and validation data
local n = quick and 200 or 1000
local x_train = keras.random.random{n, timesteps, data_dim}
local y_train = keras.random.random{n, num_classes}
local x_val = keras.random.random{100, timesteps, data_dim}
local y_val = keras.random.random{100, num_classes}

local epochs = quick and 1 or 5
local h = model:fit(x_train, y_train, {batch_size = 64, epochs = epochs, validation_data = {x_val, y_val}})

-- what the example claims: two LSTMs return their whole sequence, the third one vector; a loss and a
-- validation loss each epoch
check.shape(model.layers[1].output_shape, {keras.None, timesteps, 32}, "the first LSTM's output")
check.shape(model.layers[2].output_shape, {keras.None, timesteps, 32}, "the second LSTM's output")
check.shape(model.layers[3].output_shape, {keras.None, 32}, "the third LSTM's output")
check.epochs(h, epochs)
check.epochs(h, epochs, "val_loss")
check.epochs(h, epochs, "val_acc")
