-- keras.preprocessing: text (Tokenizer, text_to_word_sequence) and sequence
-- (pad_sequences), as keras-preprocessing 1.0.5 (the version Keras 2.2.4
-- requires) does them; and keras.utils.load_word_vectors for the GloVe text
-- format. Word indices are Keras's (from 1, 0 reserved for padding); the
-- results that Keras gives as numpy arrays are keras.tensor values.
local keras = ...
local util = require("keras.util")
local is_plain, is_tensor = util.is_plain, util.is_tensor
local raise = util.raise
local core = keras._core

local P = {}
local text, sequence = {}, {}
P.text, P.sequence = text, sequence

-- Keras's positional order, then options, or one table (args.lua). A lone
-- table that names no argument is the data (pad_sequences({{1, 2}, {3}}))
local A = keras._args
-- unless its first element is itself the data wrapped once more: {seqs} holds
-- a list of lists (depth 2 for sequences, 1 for texts) in its first place.
local function lone_data(spec, depth)
  return function(t)
    for k in pairs(t) do
      if type(k) == "string" and spec.known[k] then return false end
    end
    local x = t
    for _ = 1, depth do
      x = x[1]
      if type(x) ~= "table" or getmetatable(x) ~= nil then return true end
    end
    return false
  end
end
local function call_spec(who, positional, depth)
  local spec = A.spec{who = who, positional = positional, tables = {[positional[1]] = true}}
  spec.single = lone_data(spec, depth or 1)
  return spec
end

local DEFAULT_FILTERS = '!"#$%&()*+,-./:;<=>?@[\\]^_`{|}~\t\n'

-- the characters of s: UTF-8 code points when s is valid UTF-8, else bytes
local function chars(s)
  local out = {}
  if utf8.len(s) then
    for _, c in utf8.codes(s) do out[#out + 1] = utf8.char(c) end
  else
    for i = 1, #s do out[i] = s:sub(i, i) end
  end
  return out
end

local function check_string(who, what, v)
  if type(v) ~= "string" then
    raise(string.format("%s: %s must be a string, got %s", who, what, type(v)))
  end
  return v
end

-- s split on the exact separator sep (Python's str.split(sep)), empty parts dropped
local function split_plain(s, sep)
  local out, i = {}, 1
  while true do
    local a, b = s:find(sep, i, true)
    if not a then break end
    if a > i then out[#out + 1] = s:sub(i, a - 1) end
    i = b + 1
  end
  if i <= #s then out[#out + 1] = s:sub(i) end
  return out
end

local function words(s, filters, lower, split, who)
  if lower then s = s:lower() end
  if filters ~= "" then
    local set = {}
    for _, c in ipairs(chars(filters)) do set[c] = true end
    local cs = chars(s)
    for i, c in ipairs(cs) do
      if set[c] then cs[i] = split end
    end
    s = table.concat(cs)
  end
  if type(split) == "function" then
    local out = {}
    for _, w in ipairs(split(s)) do
      if w ~= "" then out[#out + 1] = w end
    end
    return out
  end
  if split == "" then raise(who .. ": split must not be empty") end
  return split_plain(s, split)
end

-- text_to_word_sequence(text, filters, lower = true, split = " ") -> list of words
local TTWS_SPEC = call_spec("text_to_word_sequence", {"text", "filters", "lower", "split"}, 0)
function text.text_to_word_sequence(...)
  local o = A.parse(TTWS_SPEC, ...)
  local s = o.text
  check_string("text_to_word_sequence", "text", s)
  local filters = o.filters == nil and DEFAULT_FILTERS or check_string("text_to_word_sequence", "filters", o.filters)
  local lower = o.lower == nil and true or o.lower
  local split = o.split == nil and " " or o.split
  if type(split) ~= "function" then check_string("text_to_word_sequence", "split", split) end
  return words(s, filters, lower, split, "text_to_word_sequence")
end

-- f(positional..., {options}) or f{positional..., options}: one table of
-- named arguments. `names` gives Keras's positional order; a plain table is
-- only taken as the options where no positional argument may be a table.
local function named_args(who, names, ...)
  local n = select("#", ...)
  local o = {}
  local first = (...)
  local src
  if n == 1 and is_plain(first) then
    src = first
  else
    local npos = n
    local last = n > 0 and select(n, ...) or nil
    if n > 0 and is_plain(last) then npos = n - 1; src = last end
    if npos > #names then raise(string.format("%s: too many positional arguments (%d)", who, npos)) end
    for i = 1, npos do o[names[i]] = (select(i, ...)) end
  end
  local allowed = {}
  for _, k in ipairs(names) do allowed[k] = true end
  for k, v in pairs(src or {}) do
    if math.type(k) == "integer" then
      if not names[k] then raise(string.format("%s: too many positional arguments (%d)", who, k)) end
      o[names[k]] = v
    elseif allowed[k] then
      o[k] = v
    else
      raise(string.format("%s: unknown argument '%s'", who, tostring(k)))
    end
  end
  return o
end

local md5

-- hashing_trick(text, n, hash_function, filters, lower, split) -> list of
-- indices in 1..n-1, one per word: hash(word) % (n - 1) + 1 (Keras's). With
-- hash_function = 'md5' a word hashes to int(md5(word).hexdigest(), 16), as
-- in Keras. Python's default hash() is salted per process, so Keras's default
-- cannot be reproduced: here the default (nil) is md5 too. A Lua function
-- word -> integer is accepted as in Keras.
local HASHING_ARGS = {"text", "n", "hash_function", "filters", "lower", "split"}

local function hashing(who, o)
  check_string(who, "text", o.text)
  local n = o.n
  if type(n) ~= "number" or n ~= math.floor(n) or n < 2 or n > 2 ^ 53 then
    raise(string.format("%s: n must be an integer from 2 to 2^53, got %s", who, tostring(n)))
  end
  n = math.tointeger(n)
  local filters = o.filters == nil and DEFAULT_FILTERS or check_string(who, "filters", o.filters)
  local lower = o.lower == nil and true or o.lower
  local split = o.split == nil and " " or o.split
  if type(split) ~= "function" then check_string(who, "split", split) end
  local hf = o.hash_function
  if hf ~= nil and hf ~= "md5" and type(hf) ~= "function" then
    raise(string.format("%s: hash_function must be nil, 'md5' or a function, got %s", who,
      type(hf) == "string" and ("'" .. hf .. "'") or type(hf)))
  end
  local out = {}
  for i, w in ipairs(words(o.text, filters, lower, split, who)) do
    local r
    if type(hf) == "function" then
      local h = hf(w)
      if type(h) ~= "number" or h ~= math.floor(h) or h ~= h then
        raise(string.format("%s: hash_function returned %s for '%s', expected an integer", who, tostring(h), w))
      end
      r = math.tointeger(h) and math.tointeger(h) % (n - 1) or math.fmod(h, n - 1) % (n - 1)
    else
      md5 = md5 or package.preload["keras.md5"]()
      r = md5.mod(w, n - 1)
    end
    out[i] = math.tointeger(r) + 1
  end
  return out
end

function text.hashing_trick(...)
  return hashing("hashing_trick", named_args("hashing_trick", HASHING_ARGS, ...))
end

-- one_hot(text, n, filters, lower, split): hashing_trick with the default hash
local ONE_HOT_ARGS = {"text", "n", "filters", "lower", "split"}
function text.one_hot(...)
  return hashing("one_hot", named_args("one_hot", ONE_HOT_ARGS, ...))
end

-- ---- Tokenizer ----

local Tokenizer = {}
Tokenizer.__index = Tokenizer
Tokenizer.__name = "keras.preprocessing.text.Tokenizer"

-- Tokenizer(num_words, filters, lower, split, char_level, oov_token, document_count)
local TOKENIZER_SPEC = A.spec{who = "Tokenizer", positional = {"num_words", "filters", "lower", "split", "char_level",
                                                               "oov_token", "document_count"},
                              allowed = {nb_words = true}}

function text.Tokenizer(...)
  local o = A.parse(TOKENIZER_SPEC, ...)
  if o.nb_words ~= nil then   -- legacy name
    if o.num_words ~= nil then raise("Tokenizer: argument 'num_words' given twice (as nb_words)") end
    o.num_words, o.nb_words = o.nb_words, nil
  end
  if o.num_words ~= nil and not (math.type(o.num_words) == "integer" and o.num_words >= 0) then
    raise("Tokenizer: num_words must be an integer >= 0, got " .. tostring(o.num_words))
  end
  for _, k in ipairs{"filters", "split"} do
    if o[k] ~= nil and type(o[k]) ~= "string" and not (k == "split" and type(o[k]) == "function") then
      raise(string.format("Tokenizer: %s must be a string, got %s", k, type(o[k])))
    end
  end
  if o.oov_token ~= nil and type(o.oov_token) ~= "string" then
    raise("Tokenizer: oov_token must be a string, got " .. type(o.oov_token))
  end
  local self = setmetatable({}, Tokenizer)
  self.num_words = o.num_words
  self.filters = o.filters == nil and DEFAULT_FILTERS or o.filters
  self.lower = o.lower == nil and true or not not o.lower
  self.split = o.split == nil and " " or o.split
  self.char_level = not not o.char_level
  self.oov_token = o.oov_token
  self.document_count = o.document_count or 0
  self.word_counts = {}      -- word -> count
  self.word_docs = {}        -- word -> number of documents with the word
  self.index_docs = {}       -- index -> number of documents
  self.word_index = {}       -- word -> index (from 1)
  self.index_word = {}       -- index -> word
  self._order = {}           -- words in first-seen order (Keras's OrderedDict)
  return self
end
text.Tokenizer_class = Tokenizer

local function seq_of(self, t, who, i)
  if type(t) == "table" then      -- a list of tokens
    local out = {}
    for k, w in ipairs(t) do
      if type(w) ~= "string" then raise(string.format("%s: text %d: token %d is not a string", who, i, k)) end
      out[k] = self.lower and w:lower() or w
    end
    return out
  end
  if type(t) ~= "string" then
    raise(string.format("%s: text %d must be a string or a list of tokens, got %s", who, i, type(t)))
  end
  if self.char_level then return chars(self.lower and t:lower() or t) end
  return words(t, self.filters, self.lower, self.split, who)
end

local function text_list(texts, who)
  if type(texts) == "string" then
    raise(who .. ": expected a list of texts, got a single string (wrap it in a table)")
  end
  if type(texts) ~= "table" then raise(who .. ": expected a list of texts, got " .. type(texts)) end
  return texts
end

function Tokenizer:fit_on_texts(texts)
  text_list(texts, "fit_on_texts")
  for i, t in ipairs(texts) do
    self.document_count = self.document_count + 1
    local seq = seq_of(self, t, "fit_on_texts", i)
    local seen = {}
    for _, w in ipairs(seq) do
      if self.word_counts[w] then
        self.word_counts[w] = self.word_counts[w] + 1
      else
        self.word_counts[w] = 1
        self._order[#self._order + 1] = w
      end
      if not seen[w] then
        seen[w] = true
        self.word_docs[w] = (self.word_docs[w] or 0) + 1
      end
    end
  end
  -- by count, descending; ties keep first-seen order (a stable sort)
  local wc = {}
  for i, w in ipairs(self._order) do wc[i] = {w, self.word_counts[w], i} end
  table.sort(wc, function(a, b)
    if a[2] ~= b[2] then return a[2] > b[2] end
    return a[3] < b[3]
  end)
  local vocab = {}
  if self.oov_token ~= nil then vocab[1] = self.oov_token end
  for _, e in ipairs(wc) do vocab[#vocab + 1] = e[1] end
  self.word_index, self.index_word = {}, {}
  for i, w in ipairs(vocab) do self.word_index[w] = i end   -- a repeated word keeps its last index
  for w, i in pairs(self.word_index) do self.index_word[i] = w end
  self.index_docs = {}
  for w, c in pairs(self.word_docs) do
    local i = self.word_index[w]
    if i then self.index_docs[i] = c end
  end
end

-- sequences: lists of indices
function Tokenizer:fit_on_sequences(seqs)
  text_list(seqs, "fit_on_sequences")
  self.document_count = self.document_count + #seqs
  for _, s in ipairs(seqs) do
    local seen = {}
    for _, i in ipairs(s) do
      if not seen[i] then
        seen[i] = true
        self.index_docs[i] = (self.index_docs[i] or 0) + 1
      end
    end
  end
end

function Tokenizer:texts_to_sequences(texts)
  text_list(texts, "texts_to_sequences")
  local out = {}
  local nw = self.num_words
  local oov = self.oov_token ~= nil and self.word_index[self.oov_token] or nil
  for k, t in ipairs(texts) do
    local v = {}
    for _, w in ipairs(seq_of(self, t, "texts_to_sequences", k)) do
      local i = self.word_index[w]
      if i ~= nil then
        if nw and nw ~= 0 and i >= nw then
          if oov then v[#v + 1] = oov end
        else
          v[#v + 1] = i
        end
      elseif self.oov_token ~= nil then
        v[#v + 1] = oov
      end
    end
    out[k] = v
  end
  return out
end

function Tokenizer:sequences_to_texts(seqs)
  text_list(seqs, "sequences_to_texts")
  local out = {}
  local nw = self.num_words
  local oov = self.oov_token ~= nil and self.word_index[self.oov_token] or nil
  for k, s in ipairs(seqs) do
    local v = {}
    for _, i in ipairs(s) do
      local w = self.index_word[i]
      if w ~= nil then
        if nw and nw ~= 0 and i >= nw then
          if oov then v[#v + 1] = self.index_word[oov] end
        else
          v[#v + 1] = w
        end
      elseif self.oov_token ~= nil then
        v[#v + 1] = self.index_word[oov]
      end
    end
    out[k] = table.concat(v, " ")
  end
  return out
end

local MODES = {binary = true, count = true, freq = true, tfidf = true}

-- sequences_to_matrix(sequences, mode = "binary"), texts_to_matrix(texts, mode = "binary")
local S2M_SPEC = call_spec("sequences_to_matrix", {"sequences", "mode"}, 2)
local T2M_SPEC = call_spec("texts_to_matrix", {"texts", "mode"})

function Tokenizer:sequences_to_matrix(...)
  local o = A.parse(S2M_SPEC, ...)
  local seqs, mode = o.sequences, o.mode or "binary"
  text_list(seqs, "sequences_to_matrix")
  local nw = self.num_words
  if not nw or nw == 0 then
    if next(self.word_index) then
      nw = 0
      for _ in pairs(self.word_index) do nw = nw + 1 end
      nw = nw + 1
    else
      raise("Specify a dimension (num_words argument), or fit on some text data first.")
    end
  end
  if not MODES[mode] then raise(string.format("Unknown vectorization mode: %s", tostring(mode))) end
  if mode == "tfidf" and self.document_count == 0 then
    raise("Fit the Tokenizer on some data before using tfidf mode.")
  end
  local n = #seqs
  local flat = {}
  for i = 1, n * nw do flat[i] = 0 end
  for r, s in ipairs(seqs) do
    if #s > 0 then
      local counts, order = {}, {}
      for _, j in ipairs(s) do
        if math.type(j) ~= "integer" and not (type(j) == "number" and j == math.floor(j)) then
          raise(string.format("sequences_to_matrix: sequence %d holds %s, not an index", r, tostring(j)))
        end
        j = math.tointeger(j)
        if j < nw and j >= 0 then
          if not counts[j] then order[#order + 1] = j end
          counts[j] = (counts[j] or 0) + 1
        end
      end
      local base = (r - 1) * nw + 1
      for _, j in ipairs(order) do
        local c, v = counts[j]
        if mode == "count" then v = c
        elseif mode == "freq" then v = c / #s
        elseif mode == "binary" then v = 1
        else
          local tf = 1 + math.log(c)
          local idf = math.log(1 + self.document_count / (1 + (self.index_docs[j] or 0)))
          v = tf * idf
        end
        flat[base + j] = v
      end
    end
  end
  if n == 0 then return core.full({0, nw}, 0) end
  return core.tensor(flat):reshape{n, nw}
end

function Tokenizer:texts_to_matrix(...)
  local o = A.parse(T2M_SPEC, ...)
  local texts, mode = o.texts, o.mode
  if mode ~= nil and not MODES[mode] then raise(string.format("Unknown vectorization mode: %s", tostring(mode))) end
  return self:sequences_to_matrix(self:texts_to_sequences(texts), mode)
end

function Tokenizer:get_config()
  return {num_words = self.num_words, filters = self.filters, lower = self.lower, split = self.split,
          char_level = self.char_level, oov_token = self.oov_token, document_count = self.document_count}
end

Tokenizer.__tostring = function(self)
  local n = 0
  for _ in pairs(self.word_index) do n = n + 1 end
  return string.format("<Tokenizer: %d words, %d documents>", n, self.document_count)
end

-- ---- pad_sequences ----

local function as_list(s, who, i)
  if is_tensor(s) then
    if s.ndim > 1 then raise(string.format("%s: sequence %d has %d dimensions; only lists of numbers are supported",
      who, i, s.ndim)) end
    return s:totable()
  end
  if type(s) ~= "table" then
    raise(string.format("`sequences` must be a list of iterables. Found non-iterable: %s", tostring(s)))
  end
  return s
end

-- pad_sequences(sequences, maxlen, dtype = "int32", padding = "pre", truncating = "pre", value = 0)
-- -> tensor (n, maxlen)
local PAD_SPEC = call_spec("pad_sequences", {"sequences", "maxlen", "dtype", "padding", "truncating", "value"}, 2)

function sequence.pad_sequences(...)
  local who = "pad_sequences"
  local o = A.parse(PAD_SPEC, ...)
  local seqs = o.sequences
  if is_tensor(seqs) then
    if seqs.ndim ~= 2 then raise(who .. ": a tensor of sequences must have 2 dimensions") end
    seqs = seqs:totable()
  end
  if type(seqs) ~= "table" then raise("`sequences` must be iterable.") end
  local padding, truncating = o.padding or "pre", o.truncating or "pre"
  local dtype = o.dtype or "int32"
  local value = o.value == nil and 0 or o.value
  if type(value) ~= "number" then raise(who .. ": value must be a number, got " .. type(value)) end
  local ints = dtype == "int32" or dtype == "int64" or dtype == "int16" or dtype == "int8" or dtype == "uint8"
  if not ints and dtype ~= "float32" and dtype ~= "float64" then
    raise(string.format("%s: dtype must be int32 or float32, got '%s'", who, tostring(dtype)))
  end
  if padding ~= "pre" and padding ~= "post" then raise(string.format('Padding type "%s" not understood',
    tostring(padding))) end
  if truncating ~= "pre" and truncating ~= "post" then
    raise(string.format('Truncating type "%s" not understood', tostring(truncating)))
  end
  local list = {}
  local longest = 0
  for i = 1, #seqs do
    list[i] = as_list(seqs[i], who, i)
    if #list[i] > longest then longest = #list[i] end
  end
  local maxlen = o.maxlen
  if maxlen == nil then
    if #list == 0 then raise(who .. ": no sequences (give maxlen for an empty list)") end
    maxlen = longest
  elseif math.type(maxlen) ~= "integer" or maxlen < 0 then
    raise(who .. ": maxlen must be an integer >= 0, got " .. tostring(maxlen))
  end
  local function cast(v)
    if ints then
      local iv = v >= 0 and math.floor(v) or math.ceil(v)   -- numpy's cast truncates
      return iv
    end
    return v
  end
  local pad = cast(value)
  local n = #list
  if n == 0 or maxlen == 0 then return core.full({n, maxlen}, 0) end
  local flat = {}
  for i = 1, n * maxlen do flat[i] = pad end
  for i, s in ipairs(list) do
    local len = #s
    if len > 0 then
      local first, last
      if len <= maxlen then first, last = 1, len
      elseif truncating == "pre" then first, last = len - maxlen + 1, len
      else first, last = 1, maxlen end
      local cnt = last - first + 1
      local start = padding == "post" and 0 or maxlen - cnt
      local base = (i - 1) * maxlen + start
      for k = 0, cnt - 1 do
        local v = s[first + k]
        if type(v) ~= "number" then
          raise(string.format("%s: sequence %d holds %s at position %d, not a number", who, i, type(v), first + k))
        end
        flat[base + k + 1] = cast(v)
      end
    end
  end
  return core.tensor(flat):reshape{n, maxlen}
end

-- ---- skipgrams, make_sampling_table ----

-- make_sampling_table(size, sampling_factor = 1e-5) -> tensor (size,): the
-- probability of keeping the word of rank i (element i + 1, rank 0 being
-- padding), Keras's min(1, sqrt(f)) with f = sampling_factor * (rank *
-- (log(rank) + gamma) + 1/2 - 1 / (12 rank)), gamma = 0.577, rank 0 counted as 1
local SAMPLING_ARGS = {"size", "sampling_factor"}
function sequence.make_sampling_table(...)
  local who = "make_sampling_table"
  local o = named_args(who, SAMPLING_ARGS, ...)
  local size, factor = o.size, o.sampling_factor == nil and 1e-5 or o.sampling_factor
  if math.type(size) ~= "integer" or size < 1 then
    raise(string.format("%s: size must be an integer >= 1, got %s", who, tostring(size)))
  end
  if type(factor) ~= "number" or factor ~= factor or factor < 0 or factor == math.huge then
    raise(string.format("%s: sampling_factor must be a finite number >= 0, got %s", who, tostring(factor)))
  end
  local gamma = 0.577
  local out = {}
  for i = 0, size - 1 do
    local rank = i == 0 and 1 or i
    local f = factor * (rank * (math.log(rank) + gamma) + 0.5 - 1 / (12 * rank))
    out[i + 1] = math.min(1, f / math.sqrt(f))
  end
  return core.tensor(out)
end

-- skipgrams(sequence, vocabulary_size, window_size = 4, negative_samples = 1,
-- shuffle = true, categorical = false, sampling_table = nil, seed = nil) ->
-- couples, labels (Lua lists): {wi, wj} with label 1 for each word wj within
-- window_size of wi (index 0 skipped; with a sampling_table, wi is kept with
-- probability sampling_table[wi], element wi + 1 of the list or tensor), then
-- int(#positives * negative_samples) couples {a shuffled first word, a random
-- index in 1..vocabulary_size-1} with label 0; categorical labels are {0, 1}
-- and {1, 0}. shuffle mixes couples and labels alike; a seed reseeds
-- keras.random first, as Keras reseeds Python's random. The draws come from
-- keras.random, so the same seed gives the same result here, not Python's.
local SKIPGRAM_ARGS = {"sequence", "vocabulary_size", "window_size", "negative_samples", "shuffle", "categorical",
                       "sampling_table", "seed"}
function sequence.skipgrams(...)
  local who = "skipgrams"
  local o = named_args(who, SKIPGRAM_ARGS, ...)
  local seq = o.sequence
  if is_tensor(seq) then
    if seq.ndim ~= 1 then raise(string.format("%s: sequence must be 1-D, got %d dimensions", who, seq.ndim)) end
    seq = seq:totable()
  end
  if type(seq) ~= "table" then raise(who .. ": sequence must be a list of word indices, got " .. type(seq)) end
  local vsize = o.vocabulary_size
  if math.type(vsize) ~= "integer" or vsize < 1 then
    raise(string.format("%s: vocabulary_size must be an integer >= 1, got %s", who, tostring(vsize)))
  end
  local window = o.window_size == nil and 4 or o.window_size
  if math.type(window) ~= "integer" or window < 0 then
    raise(string.format("%s: window_size must be an integer >= 0, got %s", who, tostring(window)))
  end
  local negative = o.negative_samples == nil and 1.0 or o.negative_samples
  if type(negative) ~= "number" or negative ~= negative or negative == math.huge then
    raise(string.format("%s: negative_samples must be a finite number, got %s", who, tostring(negative)))
  end
  local shuffle = o.shuffle == nil and true or o.shuffle
  local categorical = o.categorical or false
  local seed = o.seed
  if seed ~= nil and math.type(seed) ~= "integer" then
    raise(string.format("%s: seed must be an integer, got %s", who, tostring(seed)))
  end
  local table_ = o.sampling_table
  if table_ ~= nil then
    if is_tensor(table_) then table_ = table_:reshape{-1}:totable() end
    if type(table_) ~= "table" then
      raise(who .. ": sampling_table must be a list or a tensor of probabilities, got " .. type(table_))
    end
  end
  local n = #seq
  for i = 1, n do
    local w = seq[i]
    if math.type(w) ~= "integer" and not (type(w) == "number" and w == math.floor(w)) then
      raise(string.format("%s: sequence[%d] is %s, not a word index", who, i, tostring(w)))
    end
  end
  local keep_draws
  if table_ and n > 0 then keep_draws = core.random("uniform", {n}, 0, 1):totable() end
  local couples, labels = {}, {}
  for i = 1, n do
    local wi = math.tointeger(seq[i])
    local keep = wi ~= 0
    if keep and table_ then
      local p = table_[wi + 1]
      if type(p) ~= "number" then
        raise(string.format("%s: sampling_table has no entry for word index %d", who, wi))
      end
      if p < keep_draws[i] then keep = false end   -- Keras: skip when table[wi] < random()
    end
    if keep then
      for j = math.max(1, i - window), math.min(n, i + window) do
        local wj = math.tointeger(seq[j])
        if j ~= i and wj ~= 0 then
          couples[#couples + 1] = {wi, wj}
          labels[#labels + 1] = categorical and {0, 1} or 1
        end
      end
    end
  end
  if negative > 0 then
    local count = math.floor(#labels * negative)
    if count > 0 then
      if vsize < 2 then
        raise(who .. ": negative samples need a vocabulary_size >= 2 (indices 1..vocabulary_size-1)")
      end
      local firsts = {}
      local perm = core.permutation(#couples):totable()
      for k, p in ipairs(perm) do firsts[k] = couples[math.tointeger(p) + 1][1] end
      local draws = core.random("randint", {count}, 1, vsize):totable()
      local npos = #couples
      for k = 1, count do
        couples[npos + k] = {firsts[(k - 1) % npos + 1], math.tointeger(draws[k])}
        labels[npos + k] = categorical and {1, 0} or 0
      end
    end
  end
  if shuffle and #couples > 0 then
    if seed ~= nil then core.seed(seed) end
    local perm = core.permutation(#couples):totable()
    local c2, l2 = {}, {}
    for k, p in ipairs(perm) do
      c2[k], l2[k] = couples[math.tointeger(p) + 1], labels[math.tointeger(p) + 1]
    end
    couples, labels = c2, l2
  end
  return couples, labels
end

-- ---- word vectors (keras.utils.load_word_vectors) ----

-- GloVe text format: one "word v1 v2 ... vD" per line (a word2vec text
-- header "count dim" is skipped: a first line of two integers is taken for
-- one only when the file then holds count lines of dim values; otherwise it
-- is a word with one value). Returns a table word -> tensor (D,), and D.
local function load_word_vectors(path)
  local who = "load_word_vectors"
  if type(path) ~= "string" then raise(who .. ": path must be a string, got " .. type(path)) end
  local nr = util.not_regular(who, path)
  if nr then raise(nr) end
  local f, err = io.open(path, "rb")
  if not f then raise(string.format("%s: cannot open '%s' (%s)", who, path, tostring(err))) end
  local out, dim, lineno, nlines, first = {}, nil, 0, 0, nil
  for line in f:lines() do
    lineno = lineno + 1
    line = line:gsub("\r$", "")
    local fields = {}
    for w in line:gmatch("%S+") do fields[#fields + 1] = w end
    if #fields > 0 then
      local header = lineno == 1 and #fields == 2 and math.tointeger(tonumber(fields[1])) and
                     math.tointeger(tonumber(fields[2]))
      if header then
        first = {word = fields[1], value = tonumber(fields[2]), count = math.tointeger(tonumber(fields[1])),
                 dim = math.tointeger(tonumber(fields[2]))}
      else
        nlines = nlines + 1
        local vals = {}
        for k = 2, #fields do
          local v = tonumber(fields[k])
          if not v or v ~= v then
            f:close()
            raise(string.format("%s: %s:%d: '%s' is not a number", who, path, lineno, fields[k]))
          end
          vals[k - 1] = v
        end
        if #vals == 0 then
          f:close()
          raise(string.format("%s: %s:%d: the word '%s' has no vector", who, path, lineno, fields[1]))
        end
        if dim and #vals ~= dim then
          f:close()
          raise(string.format("%s: %s:%d: %d values, expected %d as on the lines before", who, path, lineno, #vals,
            dim))
        end
        dim = #vals
        out[fields[1]] = core.tensor(vals)
      end
    end
  end
  f:close()
  if first and not (first.count == nlines and (dim == nil or first.dim == dim)) then
    -- not a header: its counts do not describe the file, so it is a word
    if dim and dim ~= 1 then
      raise(string.format("%s: %s:1: 1 values, expected %d as on the lines after", who, path, dim))
    end
    dim = 1
    if out[first.word] == nil then out[first.word] = core.tensor({first.value}) end
  end
  return out, dim
end
P.load_word_vectors = load_word_vectors
if keras.utils then keras.utils.load_word_vectors = load_word_vectors end

return P
