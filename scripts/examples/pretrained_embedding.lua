-- Pre-trained word embeddings (the recipe of the Keras blog's GloVe example):
-- texts -> Tokenizer -> pad_sequences; a GloVe-format vectors file -> a table
-- word -> vector (keras.utils.load_word_vectors) -> the embedding matrix, row
-- i for the word of index i; a frozen Embedding with those weights, then an
-- LSTM classifier. The corpus (three topics) and the vectors file are made up
-- here and written to a temporary file in the GloVe text format.
--   lkeras scripts/examples/pretrained_embedding.lua (LKERAS_QUICK=1: a tiny run)
local keras = keras or require "keras"
local L = keras.layers
local Tokenizer = keras.preprocessing.text.Tokenizer
local pad_sequences = keras.preprocessing.sequence.pad_sequences
local quick = os.getenv("LKERAS_QUICK")
local check = dofile(arg[0]:match("^(.-)[^/]*$") .. "lib/check.lua")

keras.random.seed(4)
math.randomseed(4)
local MAX_SEQUENCE_LENGTH, EMBEDDING_DIM = 20, 16

-- ---- a corpus: sentences about three topics, built from word lists ----
local topics = {
  {"goal", "match", "team", "coach", "season", "league", "striker", "score", "referee", "stadium"},
  {"rain", "storm", "cloud", "sunny", "forecast", "wind", "snow", "temperature", "humid", "thunder"},
  {"recipe", "oven", "flour", "sugar", "butter", "bake", "dinner", "spicy", "sauce", "kitchen"},
}
local filler = {"the", "a", "was", "today", "very", "and", "of", "in", "we", "it", "this", "again"}
local function sentence(topic)
  local words = {}
  for k = 1, math.random(8, 25) do
    local w = math.random() < 0.45 and topics[topic][math.random(#topics[topic])] or filler[math.random(#filler)]
    words[k] = k == 1 and (w:sub(1, 1):upper() .. w:sub(2)) or w
  end
  return table.concat(words, " ") .. (math.random() < 0.5 and "." or "!")
end
local n = quick and 150 or 1500
local texts, labels = {}, {}
for i = 1, n do
  local t = (i - 1) % 3 + 1
  texts[i], labels[i] = sentence(t), t - 1
end

-- ---- vectors in the GloVe text format: topic words near their topic's direction ----
local glove = os.tmpname()
do
  local f = assert(io.open(glove, "w"))
  local function vec(center)
    local v = {}
    for d = 1, EMBEDDING_DIM do
      local c = center and ((d - 1) % 3 + 1 == center and 1.0 or 0.0) or 0.0
      v[d] = string.format("%.5f", c + (math.random() - 0.5) * 0.4)
    end
    return table.concat(v, " ")
  end
  for t, list in ipairs(topics) do
    for _, w in ipairs(list) do f:write(w, " ", vec(t), "\n") end
  end
  for _, w in ipairs(filler) do f:write(w, " ", vec(nil), "\n") end
  f:close()
end

-- ---- the recipe, as written for Keras ----
local tokenizer = Tokenizer{num_words = 1000}
tokenizer:fit_on_texts(texts)
local sequences = tokenizer:texts_to_sequences(texts)
local word_index = tokenizer.word_index
local nwords = 0
for _ in pairs(word_index) do nwords = nwords + 1 end
print(string.format("Found %d unique tokens.", nwords))
local data = pad_sequences(sequences, {maxlen = MAX_SEQUENCE_LENGTH})
local y = keras.utils.to_categorical(keras.tensor(labels), 3)
print(string.format("Shape of data tensor: (%d, %d)", data.shape[1], data.shape[2]))

local embeddings_index = keras.utils.load_word_vectors(glove)
os.remove(glove)
local found = 0
for _ in pairs(embeddings_index) do found = found + 1 end
print(string.format("Found %d word vectors.", found))

local embedding_matrix = keras.tensor.zeros{nwords + 1, EMBEDDING_DIM}
for word, i in pairs(word_index) do
  local embedding_vector = embeddings_index[word]
  if embedding_vector then
    -- words not found in the index stay all zeros
    embedding_matrix[i + 1] = embedding_vector     -- row i (Lua rows count from 1)
  end
end

local split = n * 4 // 5
local x_train, x_val = data:slice(1, split), data:slice(split + 1, n)
local y_train, y_val = y:slice(1, split), y:slice(split + 1, n)

local model = keras.Sequential{
  L.Embedding{nwords + 1, EMBEDDING_DIM, weights = {embedding_matrix}, input_length = MAX_SEQUENCE_LENGTH,
              trainable = false, mask_zero = true},
  L.LSTM(32),
  L.Dense{3, activation = "softmax"},
}
model:summary()
model:compile{loss = "categorical_crossentropy", optimizer = "rmsprop", metrics = {"acc"}}
local epochs = quick and 1 or 8
local h = model:fit(x_train, y_train, {batch_size = 32, epochs = epochs, validation_data = {x_val, y_val}})
local _, acc = model:evaluate(x_val, y_val, {verbose = 0})
print(string.format("Validation accuracy: %.4f", acc))

-- what the example claims: the Embedding holds the vectors read from the file and stays frozen, and the
-- classifier on top tells the three topics apart (chance: 1/3)
check.close(model.layers[1]:get_weights()[1], embedding_matrix, 0, "the frozen Embedding's weights after fit")
check.epochs(h, epochs)
check.between(acc, quick and 0.5 or 0.8, nil, "the validation accuracy")
