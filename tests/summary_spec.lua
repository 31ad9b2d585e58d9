require "keras" -- registers the library's modules (keras.progbar, keras.summary, ...)
local summary = require "keras.summary"

-- Runs summary.print and returns everything it wrote.
local function printed(rows, opts)
  local out = {}
  opts.write = function(s) out[#out + 1] = s end
  summary.print(rows, opts)
  return table.concat(out)
end

local function text(lines)
  return table.concat(lines, "\n") .. "\n"
end

local SEQUENTIAL_ROWS = {
  {name = "dense_1", class = "Dense", output_shape = "(None, 64)", params = 50240},
  {name = "dense_2", class = "Dense", output_shape = "(None, 64)", params = 4160},
  {name = "dense_3", class = "Dense", output_shape = "(None, 10)", params = 650},
}

local FUNCTIONAL_ROWS = {
  {name = "input_1", class = "InputLayer", output_shape = "(None, 784)", params = 0},
  {name = "dense_1", class = "Dense", output_shape = "(None, 64)", params = 50240,
   connected = {"input_1[0][0]"}},
  {name = "dense_2", class = "Dense", output_shape = "(None, 64)", params = 4160,
   connected = {"input_1[0][0]"}},
  {name = "add_1", class = "Add", output_shape = "(None, 64)", params = 0,
   connected = {"dense_1[0][0]", "dense_2[0][0]"}},
  {name = "dense_3", class = "Dense", output_shape = "(None, 10)", params = 650,
   connected = {"add_1[0][0]"}},
}

describe("keras.summary.format_int", function()
  it("groups digits by thousands", function()
    assert.equal("0", summary.format_int(0))
    assert.equal("999", summary.format_int(999))
    assert.equal("1,000", summary.format_int(1000))
    assert.equal("55,050", summary.format_int(55050))
    assert.equal("100,000", summary.format_int(100000))
    assert.equal("1,234,567", summary.format_int(1234567))
    assert.equal("-1,234", summary.format_int(-1234))
    assert.equal("4,160", summary.format_int(4160.0))
  end)

  it("rejects a fraction", function()
    assert.error_matches(function() summary.format_int(1.5) end,
      "format_int: integer expected, got 1.5", 1, true)
  end)
end)

describe("keras.summary.print", function()
  it("prints a Sequential model in 65 columns", function()
    local got = printed(SEQUENTIAL_ROWS,
      {sequential = true, total = 55050, trainable = 55050, non_trainable = 0})
    assert.equal(text{
      "_________________________________________________________________",
      "Layer (type)                 Output Shape              Param #   ",
      "=================================================================",
      "dense_1 (Dense)              (None, 64)                50240     ",
      "_________________________________________________________________",
      "dense_2 (Dense)              (None, 64)                4160      ",
      "_________________________________________________________________",
      "dense_3 (Dense)              (None, 10)                650       ",
      "=================================================================",
      "Total params: 55,050",
      "Trainable params: 55,050",
      "Non-trainable params: 0",
      "_________________________________________________________________",
    }, got)
  end)

  it("prints a functional model with a Connected to column in 98 columns", function()
    local got = printed(FUNCTIONAL_ROWS, {sequential = false, trainable = 54400, non_trainable = 650})
    assert.equal(text{
      "__________________________________________________________________________________________________",
      "Layer (type)                    Output Shape         Param #     Connected to                     ",
      "==================================================================================================",
      "input_1 (InputLayer)            (None, 784)          0                                            ",
      "__________________________________________________________________________________________________",
      "dense_1 (Dense)                 (None, 64)           50240       input_1[0][0]                    ",
      "__________________________________________________________________________________________________",
      "dense_2 (Dense)                 (None, 64)           4160        input_1[0][0]                    ",
      "__________________________________________________________________________________________________",
      "add_1 (Add)                     (None, 64)           0           dense_1[0][0]                    ",
      "                                                                 dense_2[0][0]                    ",
      "__________________________________________________________________________________________________",
      "dense_3 (Dense)                 (None, 10)           650         add_1[0][0]                      ",
      "==================================================================================================",
      "Total params: 55,050",
      "Trainable params: 54,400",
      "Non-trainable params: 650",
      "__________________________________________________________________________________________________",
    }, got)
  end)

  it("cuts a field at its column and keeps a space before the next", function()
    local lines = summary.lines({
      {name = "a_rather_long_layer_name", class = "Dense", output_shape = "(None, 64)", params = 8},
      {name = "d", class = "Reshape",
       output_shape = "(None, 1000000, 1000000, 1000000, 1000000)", params = 1234567890123},
    }, {sequential = true})
    assert.equal("a_rather_long_layer_name (De (None, 64)                8         ", lines[4])
    assert.equal("d (Reshape)                  (None, 1000000, 1000000,  1234567890", lines[6])
    assert.equal("Total params: 1,234,567,890,131", lines[8])
  end)

  it("counts characters, not bytes, when cutting UTF-8 names", function()
    local lines = summary.lines({
      {name = "couche_dense_très_longue_ici", class = "Dense", output_shape = "(None, 2)", params = 6},
    }, {sequential = true})
    assert.equal("couche_dense_très_longue_ici (None, 2)                 6         ", lines[4])
    assert.equal(65, utf8.len(lines[4]))
  end)

  it("derives the totals it is not given", function()
    local lines = summary.lines(SEQUENTIAL_ROWS, {sequential = true, non_trainable = 650})
    assert.equal("Total params: 55,050", lines[10])
    assert.equal("Trainable params: 54,400", lines[11])
    assert.equal("Non-trainable params: 650", lines[12])
  end)

  it("prints 'multiple' for a layer without one output shape", function()
    local lines = summary.lines({{name = "shared", class = "Dense", params = 10}}, {sequential = true})
    assert.equal("shared (Dense)               multiple                  10        ", lines[4])
  end)

  it("takes line_length and relative or absolute positions", function()
    local lines = summary.lines({{name = "d", class = "Dense", output_shape = "(None, 1)", params = 2}},
      {sequential = true, line_length = 40, positions = {0.5, 0.75, 1}})
    assert.same({
      "________________________________________",
      "Layer (type)        Output Sh Param #   ",
      "========================================",
      "d (Dense)           (None, 1) 2         ",
      "========================================",
      "Total params: 2",
      "Trainable params: 2",
      "Non-trainable params: 0",
      "________________________________________",
    }, lines)
    local abs = summary.lines({}, {sequential = true, line_length = 40, positions = {20, 30, 40}})
    assert.same(lines[2], abs[2])
  end)

  it("prints no layer rows for an empty model", function()
    assert.equal(text{
      "_________________________________________________________________",
      "Layer (type)                 Output Shape              Param #   ",
      "=================================================================",
      "Total params: 0",
      "Trainable params: 0",
      "Non-trainable params: 0",
      "_________________________________________________________________",
    }, summary.format({}, {sequential = true}))
  end)

  it("rejects malformed rows and options", function()
    assert.error_matches(function() summary.print("dense", {}) end,
      "summary: rows must be a sequence of tables, got string", 1, true)
    assert.error_matches(function() summary.format({}, 65) end,
      "summary: options must be a table, got number", 1, true)
    assert.error_matches(function() summary.lines({{name = "d", params = 1}}, {}) end,
      "summary: rows[1] needs string fields name and class", 1, true)
    assert.error_matches(function() summary.lines({5}, {}) end,
      "summary: rows[1] must be a table, got number", 1, true)
    assert.error_matches(function()
      summary.lines({{name = "d", class = "Dense", params = 1.5}}, {})
    end, "summary: rows[1].params must be an integer, got 1.5", 1, true)
    assert.error_matches(function()
      summary.lines({{name = "d", class = "Dense", params = 1, output_shape = {1}}}, {})
    end, "summary: rows[1].output_shape must be a string, got table", 1, true)
    assert.error_matches(function()
      summary.lines({{name = "d", class = "Dense", params = 1, connected = "x[0][0]"}}, {})
    end, "summary: rows[1].connected must be a sequence of strings, got string", 1, true)
    assert.error_matches(function()
      summary.lines({{name = "d", class = "Dense", params = 1, connected = {"x[0][0]", 2}}}, {})
    end, "summary: rows[1].connected[2] must be a string, got number", 1, true)
    assert.error_matches(function() summary.lines({}, {sequential = true, positions = {.5, 1}}) end,
      "summary: positions must hold 3 numbers", 1, true)
    assert.error_matches(function() summary.lines({}, {positions = {.3, .5, "x", 1}}) end,
      "summary: positions[3] must be a non-negative number, got x", 1, true)
    assert.error_matches(function() summary.lines({}, {line_length = 0}) end,
      "summary: line_length must be a positive integer, got 0", 1, true)
    assert.error_matches(function() summary.lines({}, {trainable = "many"}) end,
      "summary: trainable must be an integer, got many", 1, true)
    assert.error_matches(function() summary.print({}, {write = true}) end,
      "summary: write must be a function, got boolean", 1, true)
  end)
end)
