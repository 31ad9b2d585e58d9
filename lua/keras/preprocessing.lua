-- keras.preprocessing: text (Tokenizer, text_to_word_sequence) and sequence
-- (pad_sequences), as keras-preprocessing 1.0.5 (the version Keras 2.2.4
-- requires) does them; and keras.utils.load_word_vectors for the GloVe text
-- format. Word indices are Keras's (from 1, 0 reserved for padding); the
-- results that Keras gives as numpy arrays are keras.tensor values.
local keras = ...
local core = keras._core

local P = {}
local text, sequence = {}, {}
P.text, P.sequence = text, sequence

local function is_tensor(x) return getmetatable(x) == core.Tensor end

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
    error(string.format("%s: %s must be a string, got %s", who, what, type(v)), 4)
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
  if split == "" then error(who .. ": split must not be empty", 4) end
  return split_plain(s, split)
end

-- text_to_word_sequence(text, {filters=, lower=true, split=" "}) -> list of words
function text.text_to_word_sequence(s, o)
  o = o or {}
  check_string("text_to_word_sequence", "text", s)
  local filters = o.filters == nil and DEFAULT_FILTERS or check_string("text_to_word_sequence", "filters", o.filters)
  local lower = o.lower == nil and true or o.lower
  local split = o.split == nil and " " or o.split
  if type(split) ~= "function" then check_string("text_to_word_sequence", "split", split) end
  return words(s, filters, lower, split, "text_to_word_sequence")
end

-- ---- Tokenizer ----

local Tokenizer = {}
Tokenizer.__index = Tokenizer
Tokenizer.__name = "keras.preprocessing.text.Tokenizer"

local TOKENIZER_ARGS = {num_words = true, filters = true, lower = true, split = true, char_level = true,
                        oov_token = true, document_count = true, nb_words = true}

function text.Tokenizer(a, b)
  local o = {}
  if type(a) == "table" then for k, v in pairs(a) do o[k] = v end elseif a ~= nil then o.num_words = a end
  if type(b) == "table" then for k, v in pairs(b) do o[k] = v end end
  if o[1] ~= nil then o.num_words, o[1] = o[1], nil end
  if o.nb_words ~= nil then o.num_words, o.nb_words = o.nb_words, nil end   -- legacy name
  for k in pairs(o) do
    if not TOKENIZER_ARGS[k] then error(string.format("Tokenizer: unknown argument '%s'", tostring(k)), 2) end
  end
  if o.num_words ~= nil and not (math.type(o.num_words) == "integer" and o.num_words >= 0) then
    error("Tokenizer: num_words must be an integer >= 0, got " .. tostring(o.num_words), 2)
  end
  for _, k in ipairs{"filters", "split"} do
    if o[k] ~= nil and type(o[k]) ~= "string" and not (k == "split" and type(o[k]) == "function") then
      error(string.format("Tokenizer: %s must be a string, got %s", k, type(o[k])), 2)
    end
  end
  if o.oov_token ~= nil and type(o.oov_token) ~= "string" then
    error("Tokenizer: oov_token must be a string, got " .. type(o.oov_token), 2)
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
      if type(w) ~= "string" then error(string.format("%s: text %d: token %d is not a string", who, i, k), 4) end
      out[k] = self.lower and w:lower() or w
    end
    return out
  end
  if type(t) ~= "string" then
    error(string.format("%s: text %d must be a string or a list of tokens, got %s", who, i, type(t)), 4)
  end
  if self.char_level then return chars(self.lower and t:lower() or t) end
  return words(t, self.filters, self.lower, self.split, who)
end

local function text_list(texts, who)
  if type(texts) == "string" then
    error(who .. ": expected a list of texts, got a single string (wrap it in a table)", 3)
  end
  if type(texts) ~= "table" then error(who .. ": expected a list of texts, got " .. type(texts), 3) end
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

-- mode as Keras's keyword: "count", or {mode = "count"} (the options-table
-- form); nil is "binary"
local function mode_arg(mode, who)
  if type(mode) == "table" and getmetatable(mode) == nil then
    for k in pairs(mode) do
      if k ~= "mode" and k ~= 1 then
        error(string.format("%s: unknown argument '%s' (takes mode)", who, tostring(k)), 3)
      end
    end
    if mode[1] ~= nil and mode.mode ~= nil then
      error(string.format("%s: got multiple values for argument 'mode'", who), 3)
    end
    mode = mode.mode or mode[1]
  end
  if mode == nil then return "binary" end
  if not MODES[mode] then error(string.format("Unknown vectorization mode: %s", tostring(mode)), 3) end
  return mode
end

function Tokenizer:sequences_to_matrix(seqs, mode)
  mode = mode_arg(mode, "sequences_to_matrix")
  text_list(seqs, "sequences_to_matrix")
  local nw = self.num_words
  if not nw or nw == 0 then
    if next(self.word_index) then
      nw = 0
      for _ in pairs(self.word_index) do nw = nw + 1 end
      nw = nw + 1
    else
      error("Specify a dimension (num_words argument), or fit on some text data first.", 2)
    end
  end
  if not MODES[mode] then error(string.format("Unknown vectorization mode: %s", tostring(mode)), 2) end
  if mode == "tfidf" and self.document_count == 0 then
    error("Fit the Tokenizer on some data before using tfidf mode.", 2)
  end
  local n = #seqs
  local flat = {}
  for i = 1, n * nw do flat[i] = 0 end
  for r, s in ipairs(seqs) do
    if #s > 0 then
      local counts, order = {}, {}
      for _, j in ipairs(s) do
        if math.type(j) ~= "integer" and not (type(j) == "number" and j == math.floor(j)) then
          error(string.format("sequences_to_matrix: sequence %d holds %s, not an index", r, tostring(j)), 2)
        end
        j = math.tointeger(j)
        if j < nw and j >= 0 then
          if not counts[j] then order[#order + 1] = j end
          counts[j] = (counts[j] or 0) + 1
        end
      end
      local base = (r - 1) * nw + 1
      for _, j in ipairs(order) do
        local c, v = counts[j], nil
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

function Tokenizer:texts_to_matrix(texts, mode)
  mode = mode_arg(mode, "texts_to_matrix")
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
    if s.ndim > 1 then error(string.format("%s: sequence %d has %d dimensions; only lists of numbers are supported", who, i, s.ndim), 4) end
    return s:totable()
  end
  if type(s) ~= "table" then
    error(string.format("`sequences` must be a list of iterables. Found non-iterable: %s", tostring(s)), 4)
  end
  return s
end

-- pad_sequences(sequences, {maxlen=, dtype="int32", padding="pre", truncating="pre", value=0}) -> tensor (n, maxlen)
function sequence.pad_sequences(seqs, o)
  local who = "pad_sequences"
  o = o or {}
  if type(o) ~= "table" then error(who .. ": options must be a table", 2) end
  for k in pairs(o) do
    if not ({maxlen = 1, dtype = 1, padding = 1, truncating = 1, value = 1})[k] then
      error(string.format("%s: unknown argument '%s'", who, tostring(k)), 2)
    end
  end
  if is_tensor(seqs) then
    if seqs.ndim ~= 2 then error(who .. ": a tensor of sequences must have 2 dimensions", 2) end
    seqs = seqs:totable()
  end
  if type(seqs) ~= "table" then error("`sequences` must be iterable.", 2) end
  local padding, truncating = o.padding or "pre", o.truncating or "pre"
  local dtype = o.dtype or "int32"
  local value = o.value == nil and 0 or o.value
  if type(value) ~= "number" then error(who .. ": value must be a number, got " .. type(value), 2) end
  local ints = dtype == "int32" or dtype == "int64" or dtype == "int16" or dtype == "int8" or dtype == "uint8"
  if not ints and dtype ~= "float32" and dtype ~= "float64" then
    error(string.format("%s: dtype must be int32 or float32, got '%s'", who, tostring(dtype)), 2)
  end
  if padding ~= "pre" and padding ~= "post" then error(string.format('Padding type "%s" not understood', tostring(padding)), 2) end
  if truncating ~= "pre" and truncating ~= "post" then
    error(string.format('Truncating type "%s" not understood', tostring(truncating)), 2)
  end
  local list = {}
  local longest = 0
  for i = 1, #seqs do
    list[i] = as_list(seqs[i], who, i)
    if #list[i] > longest then longest = #list[i] end
  end
  local maxlen = o.maxlen
  if maxlen == nil then
    if #list == 0 then error(who .. ": no sequences (give maxlen for an empty list)", 2) end
    maxlen = longest
  elseif math.type(maxlen) ~= "integer" or maxlen < 0 then
    error(who .. ": maxlen must be an integer >= 0, got " .. tostring(maxlen), 2)
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
          error(string.format("%s: sequence %d holds %s at position %d, not a number", who, i, type(v), first + k), 2)
        end
        flat[base + k + 1] = cast(v)
      end
    end
  end
  return core.tensor(flat):reshape{n, maxlen}
end

-- ---- word vectors (keras.utils.load_word_vectors) ----

-- GloVe text format: one "word v1 v2 ... vD" per line (a word2vec text
-- header "count dim" is skipped). Returns a table word -> tensor (D,), and D.
local function load_word_vectors(path)
  local who = "load_word_vectors"
  if type(path) ~= "string" then error(who .. ": path must be a string, got " .. type(path), 2) end
  local f, err = io.open(path, "rb")
  if not f then error(string.format("%s: cannot open '%s' (%s)", who, path, tostring(err)), 2) end
  local out, dim, lineno = {}, nil, 0
  for line in f:lines() do
    lineno = lineno + 1
    line = line:gsub("\r$", "")
    local fields = {}
    for w in line:gmatch("%S+") do fields[#fields + 1] = w end
    if #fields > 0 then
      local header = lineno == 1 and #fields == 2 and math.tointeger(tonumber(fields[1])) and
                     math.tointeger(tonumber(fields[2]))
      if not header then
        local vals = {}
        for k = 2, #fields do
          local v = tonumber(fields[k])
          if not v or v ~= v then
            f:close()
            error(string.format("%s: %s:%d: '%s' is not a number", who, path, lineno, fields[k]), 2)
          end
          vals[k - 1] = v
        end
        if #vals == 0 then
          f:close()
          error(string.format("%s: %s:%d: the word '%s' has no vector", who, path, lineno, fields[1]), 2)
        end
        if dim and #vals ~= dim then
          f:close()
          error(string.format("%s: %s:%d: %d values, expected %d as on the lines before", who, path, lineno, #vals, dim), 2)
        end
        dim = #vals
        out[fields[1]] = core.tensor(vals)
      end
    end
  end
  f:close()
  return out, dim
end
P.load_word_vectors = load_word_vectors
if keras.utils then keras.utils.load_word_vectors = load_word_vectors end

return P
