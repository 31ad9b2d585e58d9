-- keras.utils.plot_model, model_to_dot and plot_history: pictures of a
-- model's graph (Graphviz's dot) and of its training curves (gnuplot).
--
-- Both programs are optional: the library loads and works without them, and
-- only these calls need them; a missing program is a clear error naming the
-- Debian package. The graph follows Keras 2.2.4's vis_utils: one record box
-- per layer of model._layers (a Sequential's InputLayer included), labelled
-- "name: ClassName", input and output shapes when asked, a nested model as
-- one box (Keras 2.2.4 does not expand nested models), one edge per inbound
-- layer of each of the model's own calls.
local keras = ...
local raise = require("keras.util").raise
local U, L = keras.utils, keras.layers
local shape_str = L._shape_str

local P = {}

local args_spec, args_parse = keras._args.spec, keras._args.parse

-- ---- helpers ----

-- a word for the shell: single-quoted, quotes inside escaped
local function shq(s) return "'" .. s:gsub("'", "'\\''") .. "'" end

-- whether a program is on PATH
local function have(prog)
  local ok = os.execute("command -v " .. prog .. " >/dev/null 2>&1")
  return ok == true
end

local PACKAGES = {dot = "graphviz", gnuplot = "gnuplot (or gnuplot-nox)"}
local INSTALL = {dot = "graphviz", gnuplot = "gnuplot-nox"}
local function need(prog, who)
  if not have(prog) then
    raise(string.format("%s: the program '%s' was not found on PATH; install the Debian package %s "
      .. "(apt-get install %s)", who, prog, PACKAGES[prog], INSTALL[prog]))
  end
end

local function read_all(path)
  local f = io.open(path, "rb")
  if not f then return "" end
  local s = f:read("a")
  f:close()
  return s
end

-- the error for a file that cannot be written; io.open's message without
-- the path it repeats
local function cannot_write(path, err, who)
  err = tostring(err)
  if err:sub(1, #path + 2) == path .. ": " then err = err:sub(#path + 3) end
  raise(string.format("%s: cannot write '%s': %s", who, path, err))
end

-- checks that path can be written (an error naming it if not), creating it
-- empty when it is not there (the renderer then replaces it); returns true
-- when it created the file, which is removed again if drawing fails
local function check_writable(path, who)
  local old = io.open(path, "rb")
  if old then old:close() end
  local f, err = io.open(path, "ab")
  if not f then cannot_write(path, err, who) end
  f:close()
  return old == nil
end

-- the extension of a file name (without the dot, lower case), or nil
local function extension(path)
  local base = path:match("[^/]*$")
  local ext = base:match("^.+%.([^.]+)$")
  return ext and ext:lower() or nil
end

-- runs a renderer: writes text to a temporary file, runs the command that
-- command(quoted file name) gives, reports the program's own message when it
-- fails
local function render(text, command, who, prog, created, to_file)
  local src = os.tmpname()
  local errf = os.tmpname()
  local f = assert(io.open(src, "wb"))
  f:write(text)
  f:close()
  local ok, _, code = os.execute(command(shq(src)) .. " 2>" .. shq(errf))
  local msg = read_all(errf)
  os.remove(src)
  os.remove(errf)
  if not ok then
    if created then os.remove(to_file) end
    msg = msg:gsub("%s+$", "")
    raise(string.format("%s: %s failed (exit %s)%s", who, prog, tostring(code), msg ~= "" and (": " .. msg) or ""))
  end
end

-- ---- the model graph ----

-- a Model, a Sequential or a subclassed model (not traced yet: no layers)
local function is_model(x)
  return type(x) == "table" and L.is_layer(x) and (x._all_layers ~= nil or x.fit == keras.models.Model.fit)
end

-- model._layers of Keras 2.2.4: a Sequential's InputLayer, then its layers;
-- a functional model's layers by depth
local function model_layers(model, who)
  if not model.inputs or not model.outputs then
    raise(who .. ": the model has not yet been built (give the first layer an input_shape, "
      .. "or call the model on data first)")
  end
  if model._seq then
    local list = {model.inputs[1]:meta().layer}
    for _, l in ipairs(model._seq) do list[#list + 1] = l end
    return list
  end
  local list = {}
  for i, l in ipairs(model._all_layers) do list[i] = l end
  return list
end

-- the shapes of one side of a call: "(None, 3)", or "[(None, 3), (None, 4)]"
local function call_shapes(list)
  if #list == 1 then return shape_str(list[1].shape) end
  local parts = {}
  for i, t in ipairs(list) do parts[i] = shape_str(t.shape) end
  return "[" .. table.concat(parts, ", ") .. "]"
end

-- a layer's input or output shape as Keras's label shows it: the same in
-- every call, or 'multiple'
local function layer_shape(layer, field)
  local seen
  for _, rec in ipairs(layer._inbound) do
    local list = rec[field]
    if field == "inputs" and #list == 0 then list = rec.outputs end   -- an InputLayer
    local s = call_shapes(list)
    if seen and s ~= seen then return "multiple" end
    seen = s
  end
  return seen or "multiple"
end

-- a string inside a DOT (or gnuplot) double-quoted string
local function dot_quote(s)
  return '"' .. s:gsub('[\\"]', "\\%0") .. '"'
end

-- text for a record label: {, }, |, <, > and spaces at the ends mean
-- something there, a backslash and a double quote end or escape the string
local function record_escape(s)
  return (s:gsub('[{}|<>\\"]', "\\%0"))
end

local DOT_SPEC = args_spec{who = "model_to_dot", positional = {"model", "show_shapes", "show_layer_names", "rankdir"},
                           allowed = {}, tables = {}}
local PLOT_SPEC = args_spec{who = "plot_model",
                            positional = {"model", "to_file", "show_shapes", "show_layer_names", "rankdir"},
                            allowed = {}, tables = {}}

local function check_options(o, who)
  if not is_model(o.model) then
    raise(string.format("%s: model must be a Model or Sequential, got %s", who, tostring(o.model)))
  end
  for _, k in ipairs{"show_shapes", "show_layer_names"} do
    if o[k] ~= nil and type(o[k]) ~= "boolean" then
      raise(string.format("%s: %s must be a boolean, got %s", who, k, type(o[k])))
    end
  end
  local rankdir = o.rankdir or "TB"
  if rankdir ~= "TB" and rankdir ~= "LR" and rankdir ~= "BT" and rankdir ~= "RL" then
    raise(string.format("%s: rankdir must be 'TB', 'LR', 'BT' or 'RL', got %s", who, tostring(rankdir)))
  end
  return o.show_shapes == true, o.show_layer_names ~= false, rankdir
end

local function to_dot(model, show_shapes, show_names, rankdir, who)
  local layers = model_layers(model, who)
  local id = {}
  local out = {"digraph G {", "rankdir=" .. rankdir .. ";", "concentrate=true;", "node [shape=record];"}
  for i, layer in ipairs(layers) do
    id[layer] = i
    local name, class = layer.name, layer.class_name
    if type(layer.layer) == "table" and L.is_layer(layer.layer) then   -- a wrapper: TimeDistributed, Bidirectional
      name = string.format("%s(%s)", name, layer.layer.name)
      class = string.format("%s(%s)", class, layer.layer.class_name)
    end
    local label = show_names and (name .. ": " .. class) or class
    label = record_escape(label)
    if show_shapes then
      label = string.format("%s\\n|{input:|output:}|{{%s}|{%s}}", label,
        layer_shape(layer, "inputs"), layer_shape(layer, "outputs"))
    end
    out[#out + 1] = string.format('%d [label="%s"];', i, label)
  end
  -- edges: the inbound layers of each of the model's own calls, layer by layer
  local own = {}
  for _, c in ipairs(model._calls) do own[c.rec] = true end
  for _, layer in ipairs(layers) do
    for _, rec in ipairs(layer._inbound) do
      if own[rec] then
        for _, t in ipairs(rec.inputs) do
          local from = t:meta().layer
          if id[from] then out[#out + 1] = string.format("%d -> %d;", id[from], id[layer]) end
        end
      end
    end
  end
  out[#out + 1] = "}"
  return table.concat(out, "\n") .. "\n"
end

--- keras.utils.model_to_dot(model, show_shapes=false, show_layer_names=true,
-- rankdir="TB") -> the DOT text of the model's graph
function P.model_to_dot(...)
  local o = args_parse(DOT_SPEC, ...)
  local shapes, names, rankdir = check_options(o, "model_to_dot")
  return to_dot(o.model, shapes, names, rankdir, "model_to_dot")
end

local DOT_FORMATS = {png = true, svg = true, pdf = true, jpg = true, jpeg = true, gif = true, ps = true, eps = true}

--- keras.utils.plot_model(model, to_file="model.png", show_shapes=false,
-- show_layer_names=true, rankdir="TB"): the graph drawn by dot, in the format
-- the file's extension names (png without one); .dot and .gv get the text
function P.plot_model(...)
  local who = "plot_model"
  local o = args_parse(PLOT_SPEC, ...)
  local shapes, names, rankdir = check_options(o, who)
  local to_file = o.to_file or "model.png"
  if type(to_file) ~= "string" or to_file == "" then
    raise(who .. ": to_file must be a file name, got " .. tostring(to_file))
  end
  local ext = extension(to_file) or "png"
  local text = to_dot(o.model, shapes, names, rankdir, who)
  if ext == "dot" or ext == "gv" then
    local f, err = io.open(to_file, "wb")
    if not f then cannot_write(to_file, err, who) end
    f:write(text)
    f:close()
    return
  end
  if not DOT_FORMATS[ext] then
    raise(string.format("%s: cannot draw a '.%s' file; the extension must be one of "
      .. "png, svg, pdf, jpg, gif, ps, eps, dot, gv", who, ext))
  end
  need("dot", who)
  local created = check_writable(to_file, who)
  local format = ext == "jpeg" and "jpg" or ext
  render(text, function(src) return "dot -T" .. format .. " -o " .. shq(to_file) .. " " .. src end, who, "dot",
    created, to_file)
end

-- ---- training curves ----

-- the series a History holds: history.history, metric -> values by epoch
local function series_of(history, who)
  local h = type(history) == "table" and history.history
  if type(h) ~= "table" then
    raise(string.format("%s: expected a History (what fit returns), got %s", who, tostring(history)))
  end
  return h
end

-- the default panels: each metric that is not a val_ one (loss first), the
-- alias 'accuracy' left out when 'acc' is there
local function default_metrics(h)
  local list = {}
  for k in pairs(h) do
    if type(k) == "string" and not k:match("^val_") and not (k == "accuracy" and h.acc) then list[#list + 1] = k end
  end
  table.sort(list, function(a, b)
    if a == "loss" or b == "loss" then return a == "loss" end
    return a < b
  end)
  if #list == 0 then
    for k in pairs(h) do
      if type(k) == "string" and not (k == "val_accuracy" and h.val_acc) then list[#list + 1] = k end
    end
    table.sort(list)
  end
  return list
end

local function number(v)
  if type(v) ~= "number" or v ~= v or v == math.huge or v == -math.huge then return "NaN" end
  return string.format("%.17g", v)
end

local GNUPLOT_TERMS = {png = "pngcairo", svg = "svg", pdf = "pdfcairo"}

local HISTORY_SPEC = args_spec{who = "plot_history", positional = {"history", "to_file", "metrics"},
                               allowed = {title = true, width = true, height = true}, tables = {metrics = true}}

-- the gnuplot script of the panels
local function gnuplot_script(h, metrics, term, to_file, o, who)
  local n = 0
  for _, m in ipairs(metrics) do
    if type(m) ~= "string" then raise(string.format("%s: metrics must be names, got %s", who, tostring(m))) end
    local s = h[m]
    if type(s) ~= "table" or #s == 0 then
      local have_names = {}
      for k in pairs(h) do if type(k) == "string" then have_names[#have_names + 1] = k end end
      table.sort(have_names)
      raise(string.format("%s: the History has no metric '%s' (it has: %s)", who, m,
        #have_names > 0 and table.concat(have_names, ", ") or "nothing; was fit run?"))
    end
    n = math.max(n, #s)
  end
  local width = o.width or 640
  local height = o.height or math.max(240, 260 * #metrics)
  if math.type(width) ~= "integer" or width < 100 or math.type(height) ~= "integer" or height < 100 then
    raise(string.format("%s: width and height must be integers of at least 100 pixels", who))
  end
  local lines = {}
  local function add(...) lines[#lines + 1] = string.format(...) end
  if term == "svg" then
    add("set terminal svg size %d,%d dynamic noenhanced background rgb 'white' font 'sans,11'", width, height)
  elseif term == "pdfcairo" then
    add("set terminal pdfcairo size %g,%g noenhanced font 'sans,9'", width / 100, height / 100)
  else
    add("set terminal pngcairo size %d,%d noenhanced font 'sans,10'", width, height)
  end
  add("set output %s", dot_quote(to_file))
  add("set datafile missing 'NaN'")
  -- the data: epoch, then each series (train, validation) in columns
  local cols, col = {}, 1
  add("$curves << EOD")
  for e = 1, n do
    local row = {tostring(e)}
    for _, m in ipairs(metrics) do
      row[#row + 1] = number(h[m][e])
      local v = h["val_" .. m]
      row[#row + 1] = number(type(v) == "table" and v[e] or nil)
    end
    lines[#lines + 1] = table.concat(row, " ")
  end
  add("EOD")
  for i, m in ipairs(metrics) do
    cols[i] = {train = col + 1, val = col + 2, has_val = type(h["val_" .. m]) == "table" and #h["val_" .. m] > 0}
    col = col + 2
  end
  add("set multiplot layout %d,1 title %s", #metrics, dot_quote(o.title or ""))
  add("set grid")
  add("set key outside right top")
  -- the same margins in every panel, so that the epochs line up
  local longest = 0
  for i, m in ipairs(metrics) do longest = math.max(longest, #m + (cols[i].has_val and 4 or 0)) end
  add("set lmargin 12")
  add("set rmargin %d", longest + 8)
  add("set xlabel 'epoch'")
  add("set xrange [%g:%g]", n > 1 and 1 or 0.5, n > 1 and n or 1.5)
  add(n <= 20 and "set xtics 1" or "set xtics autofreq")
  for i, m in ipairs(metrics) do
    add("set title %s", dot_quote(m))
    add("set ylabel %s", dot_quote(m))
    local plot = string.format("plot $curves using 1:%d with linespoints lw 2 pt 7 ps 0.6 lc rgb '#1f77b4' "
      .. "title %s", cols[i].train, dot_quote(m))
    if cols[i].has_val then
      plot = plot .. string.format(", $curves using 1:%d with linespoints lw 2 pt 7 ps 0.6 lc rgb '#ff7f0e' title %s",
        cols[i].val, dot_quote("val_" .. m))
    end
    add("%s", plot)
  end
  add("unset multiplot")
  add("set output")
  return table.concat(lines, "\n") .. "\n"
end

local function draw_history(o, who)
  local h = series_of(o.history, who)
  local to_file = o.to_file or "history.png"
  if type(to_file) ~= "string" or to_file == "" then
    raise(who .. ": to_file must be a file name, got " .. tostring(to_file))
  end
  local ext = extension(to_file) or "png"
  local term = GNUPLOT_TERMS[ext]
  if not term then
    raise(string.format("%s: cannot draw a '.%s' file; the extension must be png, svg or pdf", who, ext))
  end
  local metrics = o.metrics
  if metrics == nil then metrics = default_metrics(h)
  elseif type(metrics) == "string" then metrics = {metrics}
  elseif type(metrics) ~= "table" then
    raise(string.format("%s: metrics must be a list of names, got %s", who, type(metrics)))
  end
  if #metrics == 0 then
    raise(who .. ": the History holds no metric to draw (was fit run?)")
  end
  -- the script checks the names before anything is written
  local script = gnuplot_script(h, metrics, term, to_file, o, who)
  need("gnuplot", who)
  local created = check_writable(to_file, who)
  render(script, function(src) return "gnuplot " .. src end, who, "gnuplot", created, to_file)
end

--- keras.utils.plot_history(history, to_file="history.png", metrics=nil,
-- {title=, width=, height=}): one panel per metric, the training curve and
-- the validation one (val_<metric>) when the History has it, against epochs
function P.plot_history(...)
  local o = args_parse(HISTORY_SPEC, ...)
  draw_history(o, "plot_history")
end

P._draw_history = draw_history
P._need = need
P._check_writable = check_writable
P._cannot_write = cannot_write

U.model_to_dot = P.model_to_dot
U.plot_model = P.plot_model
U.plot_history = P.plot_history
U._plot = P

return P
