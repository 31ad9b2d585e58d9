-- fastText-style text classification (Keras's examples/imdb_fasttext.py):
-- an Embedding with no input_length (a time axis of length None), averaged over
-- time by GlobalAveragePooling1D, then one sigmoid unit; `lkeras
-- imdb_fasttext.lua 2` adds bi-grams as extra tokens, as Keras's example does
-- for ngram_range = 2. There is no IMDB
-- download here: the "reviews" are made up, positive when they hold more words
-- from a "good" band of the vocabulary than from a "bad" one, and "not" before
-- a word flips it (only the bi-grams can see that).
--   lkeras scripts/examples/imdb_fasttext.lua [ngram_range]   (LKERAS_QUICK=1: a small run)
local keras = keras or require "keras"
local L = keras.layers
local quick = os.getenv("LKERAS_QUICK")

keras.random.seed(9)
math.randomseed(9)
local ngram_range = tonumber(arg and arg[1]) or 1   -- 2 adds bi-gram features, as in Keras's example
local max_features = quick and 500 or 1000
local maxlen, batch_size, embedding_dims = 60, 32, 50
local epochs = 10
local NOT = 3                              -- the word "not"
local band = max_features // 5             -- 10..band+9 good, band+10..2*band+9 bad

local function review()
  local n, s, score = math.random(10, maxlen - 10), {}, 0
  local k = 1
  while k <= n do
    local w = math.random(10, max_features - 1)
    local good, bad = w < band + 10, w >= band + 10 and w < 2 * band + 10
    if (good or bad) and k < n and math.random() < 0.15 then   -- "not good" is bad, "not bad" good
      s[k], s[k + 1] = NOT, w
      score, k = score + (good and -1 or 1), k + 2
    else
      s[k] = w
      if good then score = score + 1 elseif bad then score = score - 1 end
      k = k + 1
    end
  end
  return s, score > 0 and 1 or 0
end
local function reviews(n)
  local x, y = {}, {}
  for i = 1, n do x[i], y[i] = review() end
  return x, y
end
local n_train, n_test = quick and 4000 or 10000, quick and 200 or 5000
local x_train, y_train = reviews(n_train)
local x_test, y_test = reviews(n_test)
print(#x_train .. " train sequences, " .. #x_test .. " test sequences")

-- bi-grams: each new (a, b) pair gets an id above max_features
local token_indice, next_id = {}, max_features + 1
local function add_ngrams(seqs, learn)
  for _, s in ipairs(seqs) do
    local n = #s
    for i = 1, n - 1 do
      local key = s[i] * 100000 + s[i + 1]
      local id = token_indice[key]
      if not id and learn then id = next_id; token_indice[key] = id; next_id = next_id + 1 end
      if id then s[#s + 1] = id end
    end
  end
end
if ngram_range > 1 then
  add_ngrams(x_train, true)
  add_ngrams(x_test, false)
  print("max_features with bi-grams: " .. next_id)
end
max_features = next_id

local pad = keras.preprocessing.sequence.pad_sequences
local xt = pad(x_train, {maxlen = 2 * maxlen})
local xv = pad(x_test, {maxlen = 2 * maxlen})
print("x_train shape: (" .. xt.shape[1] .. ", " .. xt.shape[2] .. ")")

local model = keras.Sequential()
model:add(L.Embedding(max_features, embedding_dims))          -- no input_length: None
model:add(L.GlobalAveragePooling1D())
model:add(L.Dense(1, {activation = "sigmoid"}))
model:compile{loss = "binary_crossentropy", optimizer = "adam", metrics = {"accuracy"}}
local history = model:fit(xt, keras.tensor(y_train), {batch_size = batch_size, epochs = epochs,
                                                     validation_data = {xv, keras.tensor(y_test)}})
local loss, acc = model:evaluate(xv, keras.tensor(y_test), {verbose = 0})
print(string.format("Test accuracy: %.4f", acc))

-- the same model on reviews padded to other lengths: the time axis is None
local p1 = model:predict(pad({x_test[1]}, {maxlen = #x_test[1]}))
local p2 = model:predict(pad({x_test[1]}, {maxlen = 2 * maxlen}))
print(string.format("one review at its own length %d: %.4f; padded to %d: %.4f", #x_test[1], p1:get(1, 1),
                    2 * maxlen, p2:get(1, 1)))
assert(p1.shape[1] == 1 and p1:get(1, 1) > 0 and p1:get(1, 1) < 1)
assert(#history.history.loss == epochs and loss == loss)
-- chance: about 0.5 (0.53 of the quick run's test reviews are negative); quick runs reach about 0.75
assert(acc > (quick and 0.65 or 0.7), "test accuracy " .. acc)
