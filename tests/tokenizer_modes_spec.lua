-- Tokenizer:texts_to_matrix and sequences_to_matrix take Keras's keyword
-- `mode` in both Lua call forms: a string, or the options table {mode = ...}.
-- Expected matrices are counted by hand in the comments.
local keras = require "keras"

local text = keras.preprocessing.text

local function fitted()
  local tok = text.Tokenizer()
  -- word_index: the = 1 (2 texts), cat = 2, sat = 3, dog = 4 (first seen order)
  tok:fit_on_texts{"the cat sat", "the dog"}
  return tok
end

describe("Tokenizer:texts_to_matrix", function()
  local docs = {"the the cat", "dog"}
  -- columns 0..4: row 1 holds "the" twice and "cat" once, row 2 "dog" once
  local counts = {{0, 2, 1, 0, 0}, {0, 0, 0, 0, 1}}

  it("takes mode in an options table", function()
    local tok = fitted()
    assert.same(counts, tok:texts_to_matrix(docs, {mode = "count"}):totable())
    assert.same({{0, 1, 1, 0, 0}, {0, 0, 0, 0, 1}}, tok:texts_to_matrix(docs, {mode = "binary"}):totable())
    local f = tok:texts_to_matrix(docs, {mode = "freq"}):totable()
    assert.is_true(math.abs(f[1][2] - 2 / 3) < 1e-6 and math.abs(f[1][3] - 1 / 3) < 1e-6 and f[2][5] == 1)
  end)

  it("takes mode by position, as a string or the array part of the table", function()
    local tok = fitted()
    assert.same(counts, tok:texts_to_matrix(docs, "count"):totable())
    assert.same({{0, 1, 1, 0, 0}, {0, 0, 0, 0, 1}}, tok:texts_to_matrix(docs, {}):totable())
  end)

  it("names a bad mode or argument", function()
    local tok = fitted()
    assert.error_matches(function() tok:texts_to_matrix(docs, {mode = "onehot"}) end,
      "Unknown vectorization mode: onehot", 1, true)
    assert.error_matches(function() tok:texts_to_matrix(docs, {mdoe = "count"}) end,
      "texts_to_matrix: unknown argument 'mdoe'", 1, true)
    assert.error_matches(function() tok:texts_to_matrix(docs, {"count", mode = "freq"}) end,
      "texts_to_matrix: positional arguments go before the options table", 1, true)
  end)
end)

describe("Tokenizer:sequences_to_matrix", function()
  it("takes mode in an options table too", function()
    local tok = fitted()
    assert.same({{0, 2, 1, 0, 0}}, tok:sequences_to_matrix({{1, 1, 2}}, {mode = "count"}):totable())
    assert.same({{0, 2, 1, 0, 0}}, tok:sequences_to_matrix({{1, 1, 2}}, "count"):totable())
    assert.error_matches(function() tok:sequences_to_matrix({{1}}, {modes = "count"}) end,
      "sequences_to_matrix: unknown argument 'modes'", 1, true)
  end)
end)
