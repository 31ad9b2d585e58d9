-- keras.summary -- the text of model:summary().
--
-- Prints what Keras 2.2.4's utils.layer_utils.print_summary prints, byte for
-- byte, from rows the model has already worked out:
--
--   local summary = require "keras.summary"
--   summary.print({
--     {name = "dense_1", class = "Dense", output_shape = "(None, 64)", params = 50240},
--   }, {sequential = true, trainable = 50240, non_trainable = 0})
--
-- Row fields:
--   name, class     printed as 'name (class)'
--   output_shape    a string such as '(None, 64)'; nil prints 'multiple'
--   params          the layer's parameter count (an integer)
--   connected       functional models only: the inbound tensors, e.g.
--                   {"input_1[0][0]", "dense_2[0][0]"}; the first goes on the
--                   layer's row, each further one on a row of its own
-- Options:
--   sequential      true: three columns in 65 characters; false: four columns
--                   (with 'Connected to') in 98 characters
--   total, trainable, non_trainable
--                   the counts printed at the bottom; total defaults to
--                   trainable + non_trainable, trainable to the sum of the
--                   rows' params less non_trainable (default 0)
--   line_length     overrides 65 / 98
--   positions       column ends: fractions of line_length when the last one is
--                   <= 1, otherwise character positions
--   write           function(s) receiving each line with its "\n" (io.write)
--
-- A field longer than its column is cut at the column's end, and the last
-- character kept gives way to the space before the next column, as in Keras.

local raise = require("keras.util").raise
local summary = {}

-- ---- text helpers (characters as Python counts them when s is UTF-8) -----

local function textlen(s)
  return utf8.len(s) or #s
end

-- The first n characters of s (Python's s[:n] for n >= 0).
local function head(s, n)
  if n <= 0 then return "" end
  if utf8.len(s) == nil then return s:sub(1, n) end
  local stop = utf8.offset(s, n + 1)
  if stop == nil then return s end
  return s:sub(1, stop - 1)
end

-- s without its last character (Python's s[:-1]).
local function drop_last(s)
  local n = textlen(s)
  if n == 0 then return s end
  return head(s, n - 1)
end

-- ---- numbers -------------------------------------------------------------

--- An integer with thousands separators, as Python's '{:,}': 1234567 ->
-- '1,234,567', -1234 -> '-1,234'.
function summary.format_int(n)
  local i = math.type(n) == "integer" and n or (math.type(n) == "float" and math.tointeger(n))
  if not i then
    raise("format_int: integer expected, got " .. tostring(n))
  end
  local digits = string.format("%d", i)
  local sign = ""
  if digits:sub(1, 1) == "-" then sign, digits = "-", digits:sub(2) end
  local lead = #digits % 3
  local groups = {}
  if lead > 0 then groups[1] = digits:sub(1, lead) end
  for k = lead + 1, #digits, 3 do
    groups[#groups + 1] = digits:sub(k, k + 2)
  end
  return sign .. table.concat(groups, ",")
end

-- ---- layout --------------------------------------------------------------

local HEADERS_SEQUENTIAL = {"Layer (type)", "Output Shape", "Param #"}
local HEADERS_GRAPH = {"Layer (type)", "Output Shape", "Param #", "Connected to"}

-- Fields placed so that field i ends at column positions[i]: each field is
-- cut to its column, padded with spaces, and the character before the next
-- field is turned into a space.
local function row_text(fields, positions)
  local line = ""
  for i = 1, #fields do
    if i > 1 then line = drop_last(line) .. " " end
    line = head(line .. fields[i], positions[i])
    line = line .. string.rep(" ", positions[i] - textlen(line))
  end
  return line
end

-- Errors below are raised at level 3 (4 in check_count): build is always
-- called, not tail-called, by one public function, so they point at its
-- caller.
local function check_count(v, what)
  if type(v) ~= "number" or not math.tointeger(v) then
    raise("summary: " .. what .. " must be an integer, got " .. tostring(v))
  end
  return math.tointeger(v)
end

local function build(rows, opts)
  if type(rows) ~= "table" then
    raise("summary: rows must be a sequence of tables, got " .. type(rows))
  end
  opts = opts or {}
  if type(opts) ~= "table" then
    raise("summary: options must be a table, got " .. type(opts))
  end
  local sequential = opts.sequential and true or false
  local headers = sequential and HEADERS_SEQUENTIAL or HEADERS_GRAPH

  local line_length = opts.line_length or (sequential and 65 or 98)
  if type(line_length) ~= "number" or not math.tointeger(line_length) or line_length < 1 then
    raise("summary: line_length must be a positive integer, got " .. tostring(line_length))
  end
  line_length = math.tointeger(line_length)

  local given = opts.positions or (sequential and {.45, .85, 1} or {.33, .55, .67, 1})
  if type(given) ~= "table" or #given ~= #headers then
    raise("summary: positions must hold " .. #headers .. " numbers")
  end
  local relative = type(given[#given]) == "number" and given[#given] <= 1
  local positions = {}
  for i = 1, #headers do
    local p = given[i]
    if type(p) ~= "number" or p ~= p or p < 0 then
      raise("summary: positions[" .. i .. "] must be a non-negative number, got " .. tostring(p))
    end
    if relative then p = line_length * p end
    positions[i] = math.tointeger(math.floor(p))
    if positions[i] == nil then
      raise("summary: positions[" .. i .. "] is too large")
    end
  end

  local out = {}
  local function emit(s) out[#out + 1] = s end

  emit(string.rep("_", line_length))
  emit(row_text(headers, positions))
  emit(string.rep("=", line_length))

  local param_sum = 0
  for r = 1, #rows do
    local row = rows[r]
    if type(row) ~= "table" then
      raise("summary: rows[" .. r .. "] must be a table, got " .. type(row))
    end
    if type(row.name) ~= "string" or type(row.class) ~= "string" then
      raise("summary: rows[" .. r .. "] needs string fields name and class")
    end
    local params = check_count(row.params, "rows[" .. r .. "].params")
    param_sum = param_sum + params
    local shape = row.output_shape
    if shape == nil then shape = "multiple" end
    if type(shape) ~= "string" then
      raise("summary: rows[" .. r .. "].output_shape must be a string, got " .. type(shape))
    end
    local label = row.name .. " (" .. row.class .. ")"
    local pcount = string.format("%d", params)
    if sequential then
      emit(row_text({label, shape, pcount}, positions))
    else
      local conn = row.connected or {}
      if type(conn) ~= "table" then
        raise("summary: rows[" .. r .. "].connected must be a sequence of strings, got "
          .. type(conn))
      end
      for k = 1, #conn do
        if type(conn[k]) ~= "string" then
          raise("summary: rows[" .. r .. "].connected[" .. k .. "] must be a string, got "
            .. type(conn[k]))
        end
      end
      emit(row_text({label, shape, pcount, conn[1] or ""}, positions))
      for k = 2, #conn do
        emit(row_text({"", "", "", conn[k]}, positions))
      end
    end
    emit(string.rep(r == #rows and "=" or "_", line_length))
  end

  local non_trainable, trainable, total = 0
  if opts.non_trainable ~= nil then
    non_trainable = check_count(opts.non_trainable, "non_trainable")
  end
  if opts.total ~= nil then total = check_count(opts.total, "total") end
  if opts.trainable ~= nil then
    trainable = check_count(opts.trainable, "trainable")
  else
    trainable = (total or param_sum) - non_trainable
  end
  total = total or trainable + non_trainable

  emit("Total params: " .. summary.format_int(total))
  emit("Trainable params: " .. summary.format_int(trainable))
  emit("Non-trainable params: " .. summary.format_int(non_trainable))
  emit(string.rep("_", line_length))
  return out
end

--- Writes the summary, one write(line .. "\n") per line; see the top of
-- this file for rows and opts.
function summary.print(rows, opts)
  local write = type(opts) == "table" and opts.write or io.write
  if type(write) ~= "function" then
    raise("summary: write must be a function, got " .. type(write))
  end
  local lines = build(rows, opts)
  for i = 1, #lines do write(lines[i] .. "\n") end
end

--- The summary as a sequence of lines, without their newlines.
function summary.lines(rows, opts)
  local lines = build(rows, opts)
  return lines
end

--- The summary as one string, each line ending in "\n".
function summary.format(rows, opts)
  local lines = build(rows, opts)
  return table.concat(lines, "\n") .. "\n"
end

return summary
