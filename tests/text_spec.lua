-- keras.preprocessing.text / .sequence and keras.utils.load_word_vectors, as
-- keras-preprocessing 1.0.5 (Keras 2.2.4's) behaves; expected values worked
-- out by hand from its source (KERAS_SEMANTICS.md section 10).
local keras = require "keras"
local text = keras.preprocessing.text
local sequence = keras.preprocessing.sequence

local function keys_sorted(t)
  local out = {}
  for k, v in pairs(t) do out[#out + 1] = {k, v} end
  table.sort(out, function(a, b) return a[2] < b[2] end)
  local r = {}
  for i, e in ipairs(out) do r[i] = e[1] end
  return r
end

describe("keras.preprocessing.text.text_to_word_sequence", function()
  it("lowercases, turns the filter characters into the separator, splits, drops empties", function()
    assert.same({"hello", "world", "it's", "a", "test"},
      text.text_to_word_sequence("Hello, World!  It's a\ttest."))
  end)

  it("takes filters, lower and split", function()
    assert.same({"A", "b", "C"}, text.text_to_word_sequence("A-b-C", {lower = false, split = "-"}))
    assert.same({"a,b", "c"}, text.text_to_word_sequence("a,b c", {filters = ""}))
    assert.same({"x", "y"}, text.text_to_word_sequence("x--y", {filters = "", split = "--"}))
    assert.same({"ab", "cd"}, text.text_to_word_sequence("ab cd", {split = function(s)
      local out = {}
      for w in s:gmatch("%S+") do out[#out + 1] = w end
      return out
    end}))
  end)

  it("treats UTF-8 text by characters", function()
    assert.same({"caf\u{e9}", "na\u{ef}ve"},
      text.text_to_word_sequence("caf\u{e9}\u{2014}na\u{ef}ve", {filters = "\u{2014}"}))
  end)

  it("wants a string", function()
    assert.error_matches(function() text.text_to_word_sequence(42) end,
      "text_to_word_sequence: text must be a string, got number", 1, true)
  end)
end)

describe("keras.preprocessing.text.Tokenizer", function()
  local texts = {"The cat sat on the mat.", "The dog ate my homework!", "the the cat"}

  it("indexes words from 1 by count, ties in first-seen order", function()
    local tok = text.Tokenizer()
    tok:fit_on_texts(texts)
    assert.same({"the", "cat", "sat", "on", "mat", "dog", "ate", "my", "homework"}, keys_sorted(tok.word_index))
    assert.equal(5, tok.word_counts.the)
    assert.equal(2, tok.word_counts.cat)
    assert.equal(3, tok.word_docs.the)
    assert.equal(2, tok.word_docs.cat)
    assert.equal(3, tok.index_docs[1])
    assert.equal("cat", tok.index_word[2])
    assert.equal(3, tok.document_count)
  end)

  it("keeps indices below num_words in texts_to_sequences, dropping the rest", function()
    local tok = text.Tokenizer{num_words = 3}
    tok:fit_on_texts(texts)
    assert.equal(9, #keys_sorted(tok.word_index))     -- word_index keeps every word
    assert.same({{1, 2, 1}, {}}, tok:texts_to_sequences{"the cat and the dog", "sat on"})
  end)

  it("forces the oov_token to index 1 and maps unknown words to it", function()
    local tok = text.Tokenizer{num_words = 4, oov_token = "<UNK>"}
    tok:fit_on_texts(texts)
    assert.equal(1, tok.word_index["<UNK>"])
    assert.equal(2, tok.word_index.the)
    assert.same({{2, 3, 1, 2, 1}}, tok:texts_to_sequences{"the cat zebra the dog"})
    assert.same({"the cat <UNK> the <UNK>"}, tok:sequences_to_texts{{2, 3, 1, 2, 7}})
  end)

  it("counts characters with char_level", function()
    local tok = text.Tokenizer{char_level = true}
    tok:fit_on_texts{"abca", "Cb"}
    assert.same({"a", "b", "c"}, keys_sorted(tok.word_index))   -- 2 each: first-seen order
    assert.same({{2, 3, 1}}, tok:texts_to_sequences{"bca"})
  end)

  it("accepts lists of tokens as texts", function()
    local tok = text.Tokenizer()
    tok:fit_on_texts{{"Hello", "world"}, {"hello"}}
    assert.same({"hello", "world"}, keys_sorted(tok.word_index))
  end)

  it("makes binary, count, freq and tfidf matrices", function()
    local tok = text.Tokenizer()
    tok:fit_on_texts(texts)
    local docs = {"the cat the", "dog"}
    assert.same({{0, 1, 1, 0, 0, 0, 0, 0, 0, 0}, {0, 0, 0, 0, 0, 0, 1, 0, 0, 0}}, tok:texts_to_matrix(docs):totable())
    assert.same({{0, 2, 1, 0, 0, 0, 0, 0, 0, 0}, {0, 0, 0, 0, 0, 0, 1, 0, 0, 0}},
      tok:texts_to_matrix(docs, "count"):totable())
    local f = tok:texts_to_matrix(docs, "freq"):totable()
    assert.is_true(math.abs(f[1][2] - 2 / 3) < 1e-6 and math.abs(f[1][3] - 1 / 3) < 1e-6 and f[2][7] == 1)
    local t = tok:texts_to_matrix(docs, "tfidf"):totable()
    -- "the": count 2 in the text, in 3 of 3 documents: (1 + log 2) * log(1 + 3/4)
    assert.is_true(math.abs(t[1][2] - (1 + math.log(2)) * math.log(1 + 3 / 4)) < 1e-6)
    -- "dog": count 1, in 1 document: log(1 + 3/2)
    assert.is_true(math.abs(t[2][7] - math.log(2.5)) < 1e-6)
    assert.same({2, 10}, tok:texts_to_matrix(docs).shape)
    local tok5 = text.Tokenizer{num_words = 5}
    tok5:fit_on_texts(texts)
    assert.same({1, 5}, tok5:texts_to_matrix{"homework the"}.shape)
  end)

  it("fits on sequences for tfidf", function()
    local tok = text.Tokenizer{num_words = 4}
    tok:fit_on_sequences{{1, 2, 2}, {3}}
    local m = tok:sequences_to_matrix({{2, 2}}, "tfidf"):totable()
    assert.is_true(math.abs(m[1][3] - (1 + math.log(2)) * math.log(1 + 2 / 2)) < 1e-6)
  end)

  it("names what is wrong", function()
    local tok = text.Tokenizer()
    assert.error_matches(function() tok:texts_to_matrix{"a"} end,
      "Specify a dimension (num_words argument), or fit on some text data first.", 1, true)
    tok:fit_on_texts{"a b"}
    assert.error_matches(function() tok:texts_to_matrix({"a"}, "onehot") end,
      "Unknown vectorization mode: onehot", 1, true)
    assert.error_matches(function() text.Tokenizer{num_words = 4}:sequences_to_matrix({{1}}, "tfidf") end,
      "Fit the Tokenizer on some data before using tfidf mode.", 1, true)
    assert.error_matches(function() text.Tokenizer{nmu_words = 3} end,
      "Tokenizer: unknown argument 'nmu_words'", 1, true)
    assert.error_matches(function() text.Tokenizer{num_words = -1} end,
      "Tokenizer: num_words must be an integer >= 0, got -1", 1, true)
    assert.error_matches(function() tok:fit_on_texts("a b") end,
      "fit_on_texts: expected a list of texts, got a single string (wrap it in a table)", 1, true)
    assert.error_matches(function() tok:fit_on_texts{"a", 3} end,
      "fit_on_texts: text 2 must be a string or a list of tokens, got number", 1, true)
  end)

  it("takes the legacy nb_words and the positional form", function()
    assert.equal(7, text.Tokenizer{nb_words = 7}.num_words)
    assert.equal(9, text.Tokenizer(9).num_words)
  end)
end)

describe("keras.preprocessing.sequence.pad_sequences", function()
  local seqs = {{1, 2, 3}, {4, 5}, {6, 7, 8, 9, 10}, {}}

  it("pads and truncates at the front by default, to the longest length, and returns a tensor", function()
    local t = sequence.pad_sequences(seqs)
    assert.equal("keras.Tensor", getmetatable(t).__name)
    assert.same({{0, 0, 1, 2, 3}, {0, 0, 0, 4, 5}, {6, 7, 8, 9, 10}, {0, 0, 0, 0, 0}}, t:totable())
    assert.same({{1, 2, 3}, {0, 4, 5}, {8, 9, 10}, {0, 0, 0}}, sequence.pad_sequences(seqs, {maxlen = 3}):totable())
  end)

  it("pads and truncates at the back with post", function()
    assert.same({{1, 2, 3}, {4, 5, -1}, {6, 7, 8}, {-1, -1, -1}},
      sequence.pad_sequences(seqs, {maxlen = 3, padding = "post", truncating = "post", value = -1}):totable())
  end)

  it("casts to int32 unless asked for floats", function()
    assert.same({{0, 1, 2}}, sequence.pad_sequences({{1.7, 2.2}}, {maxlen = 3}):totable())
    local f = sequence.pad_sequences({{1.5}}, {maxlen = 2, dtype = "float32", value = 0.25}):totable()
    assert.same({{0.25, 1.5}}, f)
  end)

  it("accepts tensors", function()
    assert.same({{0, 1, 2}}, sequence.pad_sequences({keras.tensor{1, 2}}, {maxlen = 3}):totable())
    assert.same({3, 0}, sequence.pad_sequences({{1}, {2}, {3}}, {maxlen = 0}).shape)
  end)

  it("names what is wrong", function()
    assert.error_matches(function() sequence.pad_sequences(seqs, {padding = "middle"}) end,
      'Padding type "middle" not understood', 1, true)
    assert.error_matches(function() sequence.pad_sequences(seqs, {truncating = "x"}) end,
      'Truncating type "x" not understood', 1, true)
    assert.error_matches(function() sequence.pad_sequences({1, 2}) end,
      "`sequences` must be a list of iterables. Found non-iterable: 1", 1, true)
    assert.error_matches(function() sequence.pad_sequences(5) end, "`sequences` must be iterable.", 1, true)
    assert.error_matches(function() sequence.pad_sequences({{"a"}}) end,
      "pad_sequences: sequence 1 holds string at position 1, not a number", 1, true)
    assert.error_matches(function() sequence.pad_sequences({}, {}) end,
      "pad_sequences: no sequences (give maxlen for an empty list)", 1, true)
    assert.error_matches(function() sequence.pad_sequences({{1}}, {maxlen = -2}) end,
      "pad_sequences: maxlen must be an integer >= 0, got -2", 1, true)
  end)
end)

describe("keras.utils.load_word_vectors", function()
  local path = os.tmpname()
  after_each(function() os.remove(path) end)

  local function write(s)
    local f = assert(io.open(path, "w"))
    f:write(s)
    f:close()
  end

  it("reads the GloVe text format into a table word -> vector", function()
    write("the 0.1 -0.2 0.3\ncat 1 2 3\r\n\n,  -1e-2 0 5\n")
    local v, dim = keras.utils.load_word_vectors(path)
    assert.equal(3, dim)
    assert.same({3}, v.the.shape)
    assert.is_true(math.abs(v.the:get(2) + 0.2) < 1e-7)
    assert.same({1, 2, 3}, v.cat:totable())
    assert.is_true(math.abs(v[","]:get(1) + 0.01) < 1e-7)
  end)

  it("builds a frozen Embedding the Keras way", function()
    write("cat 1 2\ndog 3 4\n")
    local index = keras.utils.load_word_vectors(path)
    local tok = text.Tokenizer()
    tok:fit_on_texts{"cat dog bird", "cat"}
    local n = 0
    for _ in pairs(tok.word_index) do n = n + 1 end
    local m = keras.tensor.zeros{n + 1, 2}
    for word, i in pairs(tok.word_index) do
      local vec = index[word]
      if vec then m[i + 1] = vec end
    end
    local model = keras.Sequential{keras.layers.Embedding{n + 1, 2, weights = {m}, trainable = false, input_length = 3}}
    local x = sequence.pad_sequences(tok:texts_to_sequences{"dog cat"}, {maxlen = 3})
    assert.same({{{0, 0}, {3, 4}, {1, 2}}}, model:predict(x):totable())
  end)

  it("skips a word2vec header line", function()
    write("2 2\na 1 2\nb 3 4\n")
    local v, dim = keras.utils.load_word_vectors(path)
    assert.equal(2, dim)
    assert.same({3, 4}, v.b:totable())
  end)

  it("names the file, the line and the problem", function()
    assert.error_matches(function() keras.utils.load_word_vectors(path .. ".missing") end,
      "load_word_vectors: cannot open '" .. path .. ".missing'", 1, true)
    write("a 1 2\nb 1 x\n")
    assert.error_matches(function() keras.utils.load_word_vectors(path) end,
      "load_word_vectors: " .. path .. ":2: 'x' is not a number", 1, true)
    write("a 1 2\nb 1 2 3\n")
    assert.error_matches(function() keras.utils.load_word_vectors(path) end,
      "load_word_vectors: " .. path .. ":2: 3 values, expected 2 as on the lines before", 1, true)
    write("a 1\nlonely\n")
    assert.error_matches(function() keras.utils.load_word_vectors(path) end,
      "load_word_vectors: " .. path .. ":2: the word 'lonely' has no vector", 1, true)
    assert.error_matches(function() keras.utils.load_word_vectors(3) end,
      "load_word_vectors: path must be a string, got number", 1, true)
  end)
end)
