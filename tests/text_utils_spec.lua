-- keras.preprocessing.text.one_hot / hashing_trick, Tokenizer's
-- sequences_to_matrix (four modes) and sequences_to_texts, and
-- keras.preprocessing.sequence.skipgrams / make_sampling_table.
-- Digests and formulas are checked against tests/fixtures/text.lua, made by
-- scripts/fixtures/text_fixtures.py with Python's hashlib and float64 numpy.
local keras = require "keras"
local T, S = keras.preprocessing.text, keras.preprocessing.sequence
local F = dofile("tests/fixtures/text.lua")

local function near(want, got, tol, what)
  tol = tol or 1e-6
  if not (math.abs(got - want) <= tol * math.max(1, math.abs(want))) then
    error(string.format("%s is %.9g, expected %.9g", what or "value", got, want), 2)
  end
end

describe("keras.preprocessing.text.hashing_trick", function()
  it("gives Keras's md5 values, int(md5(word).hexdigest(), 16) % (n - 1) + 1", function()
    for _, h in ipairs(F.hashing) do
      local o = {hash_function = "md5"}
      for k, v in pairs(h.options) do o[k] = v end
      assert.same(h.expected, T.hashing_trick(h.text, h.n, o))
    end
  end)

  it("takes Keras's positional order and the one-table form", function()
    local h = F.hashing[4]   -- lower = false
    assert.same(h.expected, T.hashing_trick(h.text, h.n, "md5", nil, false))
    assert.same(h.expected, T.hashing_trick{h.text, h.n, "md5", lower = false})
    assert.same(h.expected, T.hashing_trick{text = h.text, n = h.n, hash_function = "md5", lower = false})
    local s = F.hashing[6]   -- split = ","
    assert.same(s.expected, T.hashing_trick(s.text, s.n, "md5", nil, true, ","))
  end)

  it("uses md5 by default (Python's salted hash cannot be reproduced)", function()
    for _, h in ipairs(F.hashing) do
      assert.same(h.expected, T.hashing_trick(h.text, h.n, h.options))
    end
  end)

  it("takes a Lua hash function, as Keras takes a Python one", function()
    local lengths = function(w) return #w end
    -- "ab cde f": lengths 2, 3, 1; % 2 + 1
    assert.same({1, 2, 2}, T.hashing_trick("ab cde f", 3, lengths))
    assert.same({1, 2, 2}, T.hashing_trick("ab cde f", 3, {hash_function = lengths}))
    assert.same({3, 1, 2}, T.hashing_trick("x y z", 4, {hash_function = function(w) return w:byte() - 121 end}))
  end)

  it("names what is wrong", function()
    assert.error_matches(function() T.hashing_trick("a", 1) end,
      "hashing_trick: n must be an integer from 2 to 2^53, got 1", 1, true)
    assert.error_matches(function() T.hashing_trick("a", 2.5) end,
      "hashing_trick: n must be an integer from 2 to 2^53, got 2.5", 1, true)
    assert.error_matches(function() T.hashing_trick(5, 10) end,
      "hashing_trick: text must be a string, got number", 1, true)
    assert.error_matches(function() T.hashing_trick("a", 10, "sha1") end,
      "hashing_trick: hash_function must be nil, 'md5' or a function, got 'sha1'", 1, true)
    assert.error_matches(function() T.hashing_trick("a", 10, function() return "x" end) end,
      "hashing_trick: hash_function returned x for 'a', expected an integer", 1, true)
    assert.error_matches(function() T.hashing_trick("a", 10, {colour = 1}) end,
      "hashing_trick: unknown argument 'colour'", 1, true)
    assert.error_matches(function() T.hashing_trick("a", 10, "md5", "", true, " ", 7) end,
      "hashing_trick: too many positional arguments (7)", 1, true)
  end)
end)

describe("keras.preprocessing.text.one_hot", function()
  it("is hashing_trick with the default hash, indices in 1..n-1", function()
    for _, h in ipairs(F.hashing) do
      assert.same(h.expected, T.one_hot(h.text, h.n, h.options))
      for _, i in ipairs(T.one_hot(h.text, h.n, h.options)) do assert.is_true(i >= 1 and i <= h.n - 1) end
    end
    local h = F.hashing[5]   -- filters = "-"
    assert.same(h.expected, T.one_hot(h.text, h.n, "-"))
    assert.same(h.expected, T.one_hot{h.text, h.n, filters = "-"})
  end)

  it("has no hash_function argument", function()
    assert.error_matches(function() T.one_hot("a", 10, {hash_function = "md5"}) end,
      "one_hot: unknown argument 'hash_function'", 1, true)
  end)
end)

describe("keras.preprocessing.text.Tokenizer:sequences_to_matrix", function()
  local M = F.matrix
  local function tok()
    local t = T.Tokenizer(M.num_words)
    t:fit_on_sequences(M.fit_seqs)
    return t
  end

  it("makes binary, count, freq and tfidf rows as Keras (numpy float64 fixture)", function()
    for _, mode in ipairs{"binary", "count", "freq", "tfidf"} do
      local got = tok():sequences_to_matrix(M.seqs, mode):totable()
      for i, row in ipairs(M.expected[mode]) do
        for j, v in ipairs(row) do near(v, got[i][j], 1e-6, mode .. " [" .. i .. "][" .. j .. "]") end
      end
    end
  end)

  it("takes the mode positionally, in an options table, or in one table", function()
    local want = tok():sequences_to_matrix(M.seqs, "tfidf"):totable()
    assert.same(want, tok():sequences_to_matrix(M.seqs, {mode = "tfidf"}):totable())
    assert.same(want, tok():sequences_to_matrix{M.seqs, mode = "tfidf"}:totable())
    assert.same(tok():sequences_to_matrix(M.seqs, "binary"):totable(), tok():sequences_to_matrix{M.seqs}:totable())
    assert.error_matches(function() tok():sequences_to_matrix(M.seqs, {mood = "count"}) end,
      "sequences_to_matrix: unknown argument 'mood'", 1, true)
    assert.error_matches(function() tok():sequences_to_matrix(M.seqs, "tf-idf") end,
      "Unknown vectorization mode: tf-idf", 1, true)
  end)

  it("lets texts_to_matrix take the options-table form too", function()
    local t = T.Tokenizer()
    t:fit_on_texts{"a a b", "b c"}
    local want = {{0, 2, 1, 0}, {0, 0, 1, 1}}   -- word_index: a = 1, b = 2 (ties: first seen), c = 3
    assert.same(want, t:texts_to_matrix({"a a b", "b c"}, {mode = "count"}):totable())
    assert.same(want, t:texts_to_matrix{{"a a b", "b c"}, mode = "count"}:totable())
    assert.same(want, t:texts_to_matrix({"a a b", "b c"}, "count"):totable())
  end)
end)

describe("keras.preprocessing.text.Tokenizer:sequences_to_texts", function()
  it("maps indices back to words, dropping those at or above num_words, or mapping them to the oov token", function()
    local t = T.Tokenizer{num_words = 3}
    t:fit_on_texts{"b b b a a c"}   -- b = 1, a = 2, c = 3
    assert.same({"b a", "b"}, t:sequences_to_texts{{1, 2, 3}, {9, 1}})
    local o = T.Tokenizer{num_words = 3, oov_token = "<unk>"}
    o:fit_on_texts{"b b b a a c"}   -- <unk> = 1, b = 2, a = 3, c = 4
    assert.same({"b <unk> <unk>", "<unk> <unk>"}, o:sequences_to_texts{{2, 3, 4}, {9, 1}})
    -- round trip of texts_to_sequences on known words
    -- (a is index 3, not below num_words: texts_to_sequences already made it the oov token)
    assert.same({"b b <unk>"}, o:sequences_to_texts(o:texts_to_sequences{"B b, a"}))
  end)
end)

describe("keras.preprocessing.sequence.make_sampling_table", function()
  it("follows Keras's formula (numpy float64 fixture)", function()
    for _, c in ipairs(F.sampling_tables) do
      local got = S.make_sampling_table(c.size, c.factor)
      assert.same({c.size}, got.shape)
      local g = got:totable()
      for i, v in ipairs(c.expected) do near(v, g[i], 1e-6, string.format("table(%d, %g)[%d]", c.size, c.factor, i)) end
    end
  end)

  it("defaults sampling_factor to 1e-5 and takes both call forms", function()
    local want = F.sampling_tables[1]   -- size 10, 1e-5
    assert.same(S.make_sampling_table(10):totable(), S.make_sampling_table{10}:totable())
    assert.same(S.make_sampling_table(10):totable(), S.make_sampling_table(10, {sampling_factor = 1e-5}):totable())
    near(want.expected[4], S.make_sampling_table{size = 10}:get(4))
  end)

  it("names what is wrong", function()
    assert.error_matches(function() S.make_sampling_table(0) end,
      "make_sampling_table: size must be an integer >= 1, got 0", 1, true)
    assert.error_matches(function() S.make_sampling_table(5, -1) end,
      "make_sampling_table: sampling_factor must be a finite number >= 0, got -1", 1, true)
  end)
end)

describe("keras.preprocessing.sequence.skipgrams", function()
  local function count(list, pred)
    local n = 0
    for _, v in ipairs(list) do if pred(v) then n = n + 1 end end
    return n
  end

  it("pairs each word with its neighbours within the window, skipping index 0", function()
    local c, l = S.skipgrams({1, 2, 0, 3}, 10, {window_size = 1, negative_samples = 0, shuffle = false})
    assert.same({{1, 2}, {2, 1}}, c)
    assert.same({1, 1}, l)
    c, l = S.skipgrams({1, 2, 3}, 10, {negative_samples = 0, shuffle = false})   -- window 4
    assert.same({{1, 2}, {1, 3}, {2, 1}, {2, 3}, {3, 1}, {3, 2}}, c)
    assert.same({1, 1, 1, 1, 1, 1}, l)
  end)

  it("adds int(positives * negative_samples) negatives: a positive's first word and a random index", function()
    keras.random.seed(3)
    local c, l = S.skipgrams({1, 2, 3}, 5, {shuffle = false})   -- 6 positives, 6 negatives
    assert.equal(12, #c)
    assert.same({1, 1, 1, 1, 1, 1, 0, 0, 0, 0, 0, 0}, l)
    local firsts = {}
    for k = 7, 12 do
      firsts[#firsts + 1] = c[k][1]
      assert.is_true(c[k][2] >= 1 and c[k][2] <= 4)
    end
    table.sort(firsts)   -- each positive's first word once: 1, 1, 2, 2, 3, 3
    assert.same({1, 1, 2, 2, 3, 3}, firsts)
    c = S.skipgrams({1, 2, 3}, 5, {negative_samples = 0.5, shuffle = false})
    assert.equal(9, #c)
    local _, cl = S.skipgrams({1, 2, 3}, 5, {categorical = true, shuffle = false, window_size = 1})
    assert.same({{0, 1}, {0, 1}, {0, 1}, {0, 1}, {1, 0}, {1, 0}, {1, 0}, {1, 0}}, cl)
  end)

  it("shuffles couples and labels alike, the same way for the same seed", function()
    local seq = {1, 2, 3, 4, 5, 6}
    -- the seed fixes the shuffle (Keras reseeds before it); the negatives are drawn before, from keras.random
    keras.random.seed(1)
    local p1 = S.skipgrams(seq, 1000, {window_size = 2, negative_samples = 0, seed = 7})
    keras.random.seed(2)
    local p2 = S.skipgrams(seq, 1000, {window_size = 2, negative_samples = 0, seed = 7})
    assert.same(p1, p2)
    keras.random.seed(1)
    local c1, l1 = S.skipgrams(seq, 1000, {window_size = 2, seed = 7})
    keras.random.seed(1)
    local c2, l2 = S.skipgrams(seq, 1000, {window_size = 2, seed = 7})
    assert.same(c1, c2)
    assert.same(l1, l2)
    local c0, l0 = S.skipgrams(seq, 1000, {window_size = 2, shuffle = false})
    assert.equal(#c0, #c1)
    assert.are_not.same(c0, c1)
    -- labels follow their couples: positives are neighbours within 2, negatives drew from 1..999
    assert.equal(count(l0, function(v) return v == 1 end), count(l1, function(v) return v == 1 end))
    for k, cp in ipairs(c1) do
      if l1[k] == 1 then assert.is_true(math.abs(cp[1] - cp[2]) <= 2 and cp[1] ~= cp[2]) end
    end
    -- positional form
    keras.random.seed(1)
    local c3 = S.skipgrams(seq, 1000, 2, 1.0, true, false, nil, 7)
    assert.same(c1, c3)
    keras.random.seed(1)
    local c4 = S.skipgrams{seq, 1000, window_size = 2, seed = 7}
    assert.same(c1, c4)
  end)

  it("keeps word i with probability sampling_table[i] (element i + 1)", function()
    local none = S.skipgrams({1, 2, 1, 2}, 3, {sampling_table = {0, 0, 0}, negative_samples = 0})
    assert.same({}, none)
    local all = S.skipgrams({1, 2, 1, 2}, 3, {sampling_table = keras.tensor{1, 1, 1}, negative_samples = 0})
    assert.equal(12, #all)   -- window 4: each word with the three others
    -- word 1 kept with probability 0.3, word 2 always: 1000 of each, window 1
    keras.random.seed(11)
    local seq = {}
    for i = 1, 2000 do seq[i] = i % 2 == 1 and 1 or 2 end
    local c = S.skipgrams(seq, 3, {window_size = 1, sampling_table = {0, 0.3, 1}, negative_samples = 0,
                                   shuffle = false})
    -- each kept 1 has two neighbours (the first one only one)
    local from1 = count(c, function(cp) return cp[1] == 1 end) / 2
    local from2 = count(c, function(cp) return cp[1] == 2 end)
    assert.is_true(math.abs(from1 - 300) < 5 * math.sqrt(1000 * 0.3 * 0.7), "kept " .. from1 .. " of 1000 ones")
    assert.is_true(from2 >= 1999 and from2 <= 2000)
  end)

  it("names what is wrong", function()
    assert.error_matches(function() S.skipgrams({1, "x"}, 5) end,
      "skipgrams: sequence[2] is x, not a word index", 1, true)
    assert.error_matches(function() S.skipgrams({1, 2}, 0) end,
      "skipgrams: vocabulary_size must be an integer >= 1, got 0", 1, true)
    assert.error_matches(function() S.skipgrams({1, 2}, 1) end,
      "skipgrams: negative samples need a vocabulary_size >= 2 (indices 1..vocabulary_size-1)", 1, true)
    assert.error_matches(function() S.skipgrams({1, 2}, 5, {window_size = -1}) end,
      "skipgrams: window_size must be an integer >= 0, got -1", 1, true)
    assert.error_matches(function() S.skipgrams({1, 7}, 9, {sampling_table = {1, 1}}) end,
      "skipgrams: sampling_table has no entry for word index 7", 1, true)
    assert.error_matches(function() S.skipgrams({1, 2}, 5, {windows = 2}) end,
      "skipgrams: unknown argument 'windows'", 1, true)
    assert.error_matches(function() S.skipgrams({1, 2}, 5, {seed = 1.5}) end,
      "skipgrams: seed must be an integer, got 1.5", 1, true)
  end)
end)
