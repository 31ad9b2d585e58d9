-- Sequence classification with an LSTM (the Keras guide's example): Embedding
-- -> LSTM(128) -> Dropout -> Dense sigmoid, as for IMDB reviews. There is no
-- IMDB download here, so the "reviews" are made up: sequences of word ids where
-- a review is positive when it holds more words from the "good" band of the
-- vocabulary than from the "bad" one, with zeros padding the short ones at the
-- front (pad_sequences), masked by the Embedding.
--   lkeras scripts/examples/imdb_style_lstm.lua     (LKERAS_QUICK=1: a small run)
local keras = keras or require "keras"
local L = keras.layers
local quick = os.getenv("LKERAS_QUICK")
local check = dofile(arg[0]:match("^(.-)[^/]*$") .. "lib/check.lua")

keras.random.seed(3)
math.randomseed(3)
local max_features = quick and 500 or 2000
local maxlen = quick and 20 or 40
local n_train, n_test = quick and 2000 or 4000, quick and 200 or 1000

local band = max_features * 3 // 40   -- ids 1..band are good words, band+1..2*band bad ones

local function reviews(n)
  local seqs, labels = {}, {}
  for i = 1, n do
    local len = math.random(maxlen // 2, maxlen + 10)   -- some longer than maxlen: truncated
    local s, score = {}, 0
    for k = 1, len do
      local w = math.random(1, max_features - 1)
      if w <= band then score = score + 1 elseif w <= 2 * band then score = score - 1 end
      s[k] = w
    end
    seqs[i], labels[i] = s, {score > 0 and 1 or 0}
  end
  return keras.preprocessing.sequence.pad_sequences(seqs, {maxlen = maxlen}), keras.tensor(labels)
end
local x_train, y_train = reviews(n_train)
local x_test, y_test = reviews(n_test)
print(string.format("x_train shape: (%d, %d)", x_train.shape[1], x_train.shape[2]))

local model = keras.Sequential{
  L.Embedding{max_features, quick and 32 or 64, mask_zero = true},
  L.LSTM(quick and 32 or 128),
  L.Dropout(0.5),
  L.Dense{1, activation = "sigmoid"},
}
model:compile{loss = "binary_crossentropy", optimizer = "rmsprop", metrics = {"accuracy"}}
local epochs = quick and 4 or 6
local h = model:fit(x_train, y_train, {batch_size = 32, epochs = epochs, validation_data = {x_test, y_test}})
local score, acc = model:evaluate(x_test, y_test, {batch_size = 32, verbose = 0})
print(string.format("Test score: %.4f", score))
print(string.format("Test accuracy: %.4f", acc))

-- what the example claims: the LSTM learns which words count, well above always answering the more
-- common label (about 0.65 of the test reviews; quick runs reach about 0.8)
local positives = y_test:mean()
check.epochs(h, epochs)
check.epochs(h, epochs, "val_acc")
check.falls(h)
check.between(acc, math.max(positives, 1 - positives) + 0.05, nil, "the test accuracy")
check.between(acc, 0.75, nil, "the test accuracy")
