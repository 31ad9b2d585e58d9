-- Shared layers: do two tweets come from the same person? Both tweets, as
-- sequences of 280 one-hot characters of 256, go through ONE LSTM (the same
-- weights learn from both), then a logistic regression on the two encodings.
local keras = keras or require "keras"
local L = keras.layers
local quick = os.getenv("LKERAS_QUICK")
local check = dofile(arg[0]:match("^(.-)[^/]*$") .. "lib/check.lua")

local tweet_a = keras.Input{shape = {140, 256}}
local tweet_b = keras.Input{shape = {140, 256}}

-- this layer takes a matrix as input and returns a vector of size 64
local shared_lstm = L.LSTM(64)

-- reusing the same layer instance several times reuses its weights
local encoded_a = shared_lstm(tweet_a)
local encoded_b = shared_lstm(tweet_b)

-- concatenate the two vectors, then a logistic regression on top
local merged_vector = L.concatenate({encoded_a, encoded_b}, {axis = -1})
local predictions = L.Dense{1, activation = "sigmoid"}(merged_vector)

local model = keras.Model{inputs = {tweet_a, tweet_b}, outputs = predictions}
model:compile{optimizer = "rmsprop", loss = "binary_crossentropy", metrics = {"accuracy"}}
model:summary()
print(string.format("the shared LSTM's weights are counted once: %d parameters", shared_lstm:count_params()))

local n = quick and 16 or 256
local function tweets()
  local ids = keras.random.randint(256, {n, 140})
  return keras.utils.to_categorical(ids, 256)
end
local data_a, data_b = tweets(), tweets()
local labels = keras.random.randint(2, {n, 1})
local epochs = quick and 1 or 5
local h = model:fit({data_a, data_b}, labels, {epochs = epochs, batch_size = 16})

-- what the example claims: one LSTM, counted once: 4 gates of 64 units over 256 inputs + 64 recurrent
-- + a bias, plus the Dense on the 128 concatenated features
check.equal(shared_lstm:count_params(), 4 * 64 * (256 + 64 + 1), "the shared LSTM's parameters")
check.equal(model:count_params(), shared_lstm:count_params() + 128 + 1, "the model's parameters")
check.epochs(h, epochs)
check.shape(model:predict({data_a, data_b}).shape, {n, 1}, "the predictions")
