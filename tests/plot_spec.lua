-- keras.utils.plot_model / model_to_dot (Graphviz's dot), plot_history
-- (gnuplot) and the LivePlot callback: the DOT text of Keras 2.2.4's layout,
-- real pictures whose headers are read back, and the errors of misuse.
local keras = require "keras"
local L, U, C = keras.layers, keras.utils, keras.callbacks

local DIR
setup(function()
  local p = io.popen("mktemp -d /tmp/lkeras-plot-XXXXXX")
  DIR = p:read("l")
  p:close()
end)
teardown(function() os.execute("rm -rf '" .. DIR .. "'") end)
local function P(name) return DIR .. "/" .. name end

local function read(path)
  local f = io.open(path, "rb")
  if not f then return nil end
  local s = f:read("a")
  f:close()
  return s
end

-- width and height of a PNG file, from its signature and IHDR chunk
local function png_size(path)
  local s = read(path)
  assert(s, "no file " .. path)
  assert.equal("\137PNG\r\n\26\n", s:sub(1, 8))
  assert.equal("IHDR", s:sub(13, 16))
  local w, h = string.unpack(">I4", s, 17), (string.unpack(">I4", s, 21))
  return w, h
end

local function errmsg(f, ...)
  local ok, err = pcall(f, ...)
  assert.is_false(ok)
  return tostring(err)
end

local function lines(s)
  local out = {}
  for l in s:gmatch("[^\n]+") do out[#out + 1] = l end
  return out
end

-- runs a Lua snippet in a fresh lua5.4 whose PATH holds no program at all
local function without_programs(code)
  local cpath = package.cpath .. ";build/?.so"
  local cmd = string.format("env PATH=/nonexistent LUA_CPATH=%q /usr/bin/lua5.4 -e %q 2>&1", cpath, code)
  local p = assert(io.popen(cmd))
  local out = p:read("a")
  p:close()
  return out
end

local function sequential()
  return keras.Sequential{
    L.InputLayer{input_shape = {4}, name = "seq_in"},
    L.Dense(8, {activation = "relu", name = "seq_hidden"}),
    L.Dense(3, {activation = "softmax", name = "seq_out"}),
  }
end

describe("keras.utils.model_to_dot", function()
  it("draws a Sequential as Keras 2.2.4 does: its InputLayer, one record per layer, a chain of edges", function()
    local dot = U.model_to_dot(sequential())
    assert.same({
      "digraph G {",
      "rankdir=TB;",
      "concentrate=true;",
      "node [shape=record];",
      '1 [label="seq_in: InputLayer"];',
      '2 [label="seq_hidden: Dense"];',
      '3 [label="seq_out: Dense"];',
      "1 -> 2;",
      "2 -> 3;",
      "}",
    }, lines(dot))
  end)

  it("adds the input and output shapes as a record table with show_shapes", function()
    local dot = U.model_to_dot(sequential(), {show_shapes = true, rankdir = "LR"})
    local l = lines(dot)
    assert.equal("rankdir=LR;", l[2])
    assert.equal('1 [label="seq_in: InputLayer\\n|{input:|output:}|{{(None, 4)}|{(None, 4)}}"];', l[5])
    assert.equal('2 [label="seq_hidden: Dense\\n|{input:|output:}|{{(None, 4)}|{(None, 8)}}"];', l[6])
    assert.equal('3 [label="seq_out: Dense\\n|{input:|output:}|{{(None, 8)}|{(None, 3)}}"];', l[7])
  end)

  it("leaves the names out with show_layer_names=false", function()
    local l = lines(U.model_to_dot(sequential(), {show_layer_names = false}))
    assert.equal('2 [label="Dense"];', l[6])
  end)

  it("includes the InputLayer a Sequential makes from input_shape", function()
    local m = keras.Sequential{L.Dense(2, {input_shape = {3}, name = "only"})}
    local l = lines(U.model_to_dot(m))
    assert.equal(string.format('1 [label="%s: InputLayer"];', m.inputs[1]:meta().layer.name), l[5])
    assert.equal('2 [label="only: Dense"];', l[6])
    assert.equal("1 -> 2;", l[7])
  end)

  it("draws a multi-input, multi-output model: list shapes for a merge, every edge", function()
    local a = keras.Input{shape = {4}, name = "mi_a"}
    local b = keras.Input{shape = {5}, name = "mi_b"}
    local x = L.Concatenate{name = "mi_cat"}({a, b})
    local h = L.Dense(6, {name = "mi_h"})(x)
    local o1 = L.Dense(1, {name = "mi_o1"})(h)
    local o2 = L.Dense(2, {name = "mi_o2"})(x)
    local m = keras.Model({a, b}, {o1, o2})
    local l = lines(U.model_to_dot(m, {show_shapes = true}))
    assert.same({
      '1 [label="mi_a: InputLayer\\n|{input:|output:}|{{(None, 4)}|{(None, 4)}}"];',
      '2 [label="mi_b: InputLayer\\n|{input:|output:}|{{(None, 5)}|{(None, 5)}}"];',
      '3 [label="mi_cat: Concatenate\\n|{input:|output:}|{{[(None, 4), (None, 5)]}|{(None, 9)}}"];',
      '4 [label="mi_h: Dense\\n|{input:|output:}|{{(None, 9)}|{(None, 6)}}"];',
      '5 [label="mi_o1: Dense\\n|{input:|output:}|{{(None, 6)}|{(None, 1)}}"];',
      '6 [label="mi_o2: Dense\\n|{input:|output:}|{{(None, 9)}|{(None, 2)}}"];',
      "1 -> 3;", "2 -> 3;", "3 -> 4;", "4 -> 5;", "3 -> 6;", "}",
    }, {table.unpack(l, 5)})
  end)

  it("draws a nested model as one box (Keras 2.2.4 does not expand it)", function()
    local inner = keras.Sequential({L.Dense(6, {input_shape = {9}, name = "nest_d1"}), L.Dense(2, {name = "nest_d2"})},
      "nest_inner")
    local x = keras.Input{shape = {9}, name = "nest_x"}
    local y = L.Dense(1, {name = "nest_top"})(inner(x))
    local m = keras.Model(x, y)
    local dot = U.model_to_dot(m, {show_shapes = true})
    assert.same({
      '1 [label="nest_x: InputLayer\\n|{input:|output:}|{{(None, 9)}|{(None, 9)}}"];',
      '2 [label="nest_inner: Sequential\\n|{input:|output:}|{{(None, 9)}|{(None, 2)}}"];',
      '3 [label="nest_top: Dense\\n|{input:|output:}|{{(None, 2)}|{(None, 1)}}"];',
      "1 -> 2;", "2 -> 3;", "}",
    }, {table.unpack(lines(dot), 5)})
    assert.is_nil(dot:find("nest_d1", 1, true))
  end)

  it("labels a wrapper with its inner layer, and a shared layer's edges once per call", function()
    local x = keras.Input{shape = {5, 3}, name = "wr_x"}
    local td = L.TimeDistributed(L.Dense(2, {name = "wr_inner"}), {name = "wr_td"})
    local a, b = keras.Input{shape = {2}, name = "sh_a"}, keras.Input{shape = {2}, name = "sh_b"}
    local shared = L.Dense(2, {name = "sh_d"})
    local m = keras.Model({x, a, b}, {td(x), L.Add{name = "sh_add"}({shared(a), shared(b)})})
    local dot = U.model_to_dot(m, {show_shapes = true})
    assert.truthy(dot:find('[label="wr_td(wr_inner): TimeDistributed(Dense)\\n', 1, true))
    -- called twice on the same shape: one shape, as Keras's layer.input_shape
    assert.truthy(dot:find('[label="sh_d: Dense\\n|{input:|output:}|{{(None, 2)}|{(None, 2)}}"]', 1, true))
    local ids = {}
    for id, name in dot:gmatch('(%d+) %[label="([%w_]+)') do ids[name] = id end
    assert.truthy(dot:find(ids.sh_a .. " -> " .. ids.sh_d .. ";", 1, true))
    assert.truthy(dot:find(ids.sh_b .. " -> " .. ids.sh_d .. ";", 1, true))
    local adds = 0
    for _ in dot:gmatch(ids.sh_d .. " %-> " .. ids.sh_add .. ";") do adds = adds + 1 end
    assert.equal(2, adds)
  end)

  it("shows 'multiple' for a layer called on different shapes", function()
    local shared = L.Flatten{name = "mult_flat"}
    local a, b = keras.Input{shape = {2, 3}, name = "mult_a"}, keras.Input{shape = {4}, name = "mult_b"}
    local m = keras.Model({a, b}, {shared(a), shared(b)})
    local dot = U.model_to_dot(m, {show_shapes = true})
    assert.truthy(dot:find('[label="mult_flat: Flatten\\n|{input:|output:}|{{multiple}|{multiple}}"]', 1, true))
  end)

  it("escapes what a record label or a DOT string would read", function()
    local x = keras.Input{shape = {2}, name = 'we{ir}d|"na\\me'}
    local m = keras.Model(x, L.Dense(1, {name = "esc_d"})(x))
    local l = lines(U.model_to_dot(m))
    assert.equal('1 [label="we\\{ir\\}d\\|\\"na\\\\me: InputLayer"];', l[5])
  end)

  it("refuses an unbuilt model and bad options", function()
    local m = keras.Sequential{L.Dense(3)}
    assert.truthy(errmsg(U.model_to_dot, m):find("model_to_dot: the model has not yet been built", 1, true))
    assert.truthy(errmsg(U.model_to_dot, L.Dense(3)):find("model_to_dot: model must be a Model or Sequential", 1, true))
    local Net = keras.Model:extend("PlotNet")
    function Net:init() self.d = L.Dense(2, {name = "net_d"}) end
    function Net:call(x) return self.d(x) end
    local net = Net()
    assert.truthy(errmsg(U.model_to_dot, net):find("model_to_dot: the model has not yet been built", 1, true))
    net:build{keras.None, 3}
    assert.truthy(U.model_to_dot(net):find('[label="net_d: Dense"]', 1, true))
    assert.truthy(errmsg(U.model_to_dot, sequential(), {rankdir = "XY"})
      :find("model_to_dot: rankdir must be 'TB', 'LR', 'BT' or 'RL', got XY", 1, true))
    assert.truthy(errmsg(U.model_to_dot, sequential(), {show_shapes = 1})
      :find("model_to_dot: show_shapes must be a boolean, got number", 1, true))
  end)
end)

describe("keras.utils.plot_model", function()
  it("writes a PNG of sensible size: taller than wide from top to bottom, wider from left to right", function()
    local m = sequential()
    U.plot_model(m, {to_file = P("seq.png"), show_shapes = true})
    local w, h = png_size(P("seq.png"))
    assert.is_true(w > 150 and w < 1500, "width " .. w)
    assert.is_true(h > 150 and h < 1500, "height " .. h)
    U.plot_model(m, P("seq_lr.png"), {rankdir = "LR"})
    local w2, h2 = png_size(P("seq_lr.png"))
    assert.is_true(h > w * 0.5, "TB " .. w .. "x" .. h)
    assert.is_true(w2 > h2, "LR " .. w2 .. "x" .. h2)
  end)

  it("draws a multi-input, multi-output model and a nested one; SVG, PDF and DOT by extension", function()
    local a, b = keras.Input{shape = {4}}, keras.Input{shape = {5}}
    local x = L.Concatenate()({a, b})
    local inner = keras.Sequential{L.Dense(6, {input_shape = {9}}), L.Dense(2)}
    local m = keras.Model({a, b}, {L.Dense(1)(inner(x)), L.Dense(2)(x)})
    U.plot_model(m, P("multi.png"), true)
    local w, h = png_size(P("multi.png"))
    assert.is_true(w > 300 and w < 3000 and h > 300 and h < 3000, w .. "x" .. h)
    U.plot_model(m, P("multi.svg"))
    local svg = read(P("multi.svg"))
    assert.truthy(svg:find("<svg", 1, true))
    assert.truthy(svg:find(inner.name .. ": Sequential", 1, true))
    U.plot_model{m, to_file = P("multi.pdf")}
    assert.equal("%PDF", read(P("multi.pdf")):sub(1, 4))
    U.plot_model(m, P("multi.dot"))
    assert.equal(U.model_to_dot(m), read(P("multi.dot")))
  end)

  it("takes file names with spaces, quotes and percent signs", function()
    local name = P("a 'b' \"c\" 100%d.png")
    U.plot_model(sequential(), name)
    png_size(name)
    local h = C.History()
    h:on_epoch_end(0, {loss = 1})
    h:on_epoch_end(1, {loss = 0.5})
    U.plot_history(h, name)
    assert.same({640, 260}, {png_size(name)})
  end)

  it("writes PNG when the file name has no extension", function()
    U.plot_model(sequential(), P("noext"))
    png_size(P("noext"))
  end)

  it("names the path it cannot write, the extension it cannot draw, and the unbuilt model", function()
    local m = sequential()
    assert.equal("plot_model: cannot write '" .. P("no/such/dir.png") .. "': No such file or directory",
      errmsg(U.plot_model, m, P("no/such/dir.png")))
    assert.truthy(errmsg(U.plot_model, m, P("m.bmpx")):find("plot_model: cannot draw a '.bmpx' file", 1, true))
    assert.truthy(errmsg(U.plot_model, keras.Sequential{L.Dense(3)}, P("u.png"))
      :find("plot_model: the model has not yet been built", 1, true))
    assert.is_nil(read(P("u.png")))
  end)

  it("says which Debian package to install when dot is missing", function()
    local out = without_programs([[
      local k = require "keras"
      local m = k.Sequential{k.layers.Dense(2, {input_shape = {3}})}
      io.write(select(2, pcall(k.utils.plot_model, m, "]] .. P("nodot.png") .. [[")), "\n")
      io.write(#k.utils.model_to_dot(m) > 0 and "dot text ok" or "no dot text")]])
    assert.equal("plot_model: the program 'dot' was not found on PATH; install the Debian package graphviz "
      .. "(apt-get install graphviz)\ndot text ok", out)
    assert.is_nil(read(P("nodot.png")))
  end)
end)

-- a small model trained for a few epochs with validation: a real History
local function trained(epochs, callbacks)
  keras.random.seed(7)
  local m = keras.Sequential{L.Dense(8, {input_shape = {4}, activation = "relu"}), L.Dense(3, {activation = "softmax"})}
  m:compile("adam", "categorical_crossentropy", {metrics = {"acc"}})
  local x = keras.random.normal{40, 4}
  local y = U.to_categorical(keras.random.randint(3, {40}), 3)
  return m:fit(x, y, {epochs = epochs, verbose = 0, validation_split = 0.25, callbacks = callbacks})
end

describe("keras.utils.plot_history", function()
  local history
  setup(function() history = trained(4) end)

  it("draws one panel per metric from a real History (loss and acc by default)", function()
    U.plot_history(history, {to_file = P("h2.png")})
    local w, h = png_size(P("h2.png"))
    assert.equal(640, w)
    assert.equal(520, h)
    U.plot_history(history, P("h1.png"), {"loss"})
    local w1, h1 = png_size(P("h1.png"))
    assert.equal(640, w1)
    assert.equal(260, h1)
    U.plot_history(history, {to_file = P("h3.png"), metrics = {"loss", "acc"}, width = 800, height = 300})
    assert.same({800, 300}, {png_size(P("h3.png"))})
  end)

  it("draws SVG and PDF by extension, each metric with its validation curve", function()
    U.plot_history(history, {to_file = P("h.svg"), metrics = {"loss", "acc"}})
    local svg = read(P("h.svg"))
    assert.truthy(svg:find("<svg", 1, true))
    for _, name in ipairs{">loss<", ">val_loss<", ">acc<", ">val_acc<"} do
      assert.truthy(svg:find(name, 1, true), name)
    end
    U.plot_history(history, {to_file = P("h.pdf")})
    assert.equal("%PDF", read(P("h.pdf")):sub(1, 4))
  end)

  it("names a metric the History does not have, and the ones it has", function()
    assert.equal("plot_history: the History has no metric 'mae' (it has: acc, accuracy, loss, val_acc, val_accuracy, "
      .. "val_loss)", errmsg(U.plot_history, history, P("x.png"), {"loss", "mae"}))
    assert.is_nil(read(P("x.png")))
  end)

  it("refuses an unwritable path, a bad extension, something that is not a History", function()
    assert.equal("plot_history: cannot write '" .. P("no/dir/h.png") .. "': No such file or directory",
      errmsg(U.plot_history, history, P("no/dir/h.png")))
    assert.truthy(errmsg(U.plot_history, history, P("h.gif"))
      :find("plot_history: cannot draw a '.gif' file; the extension must be png, svg or pdf", 1, true))
    assert.truthy(errmsg(U.plot_history, 42, P("h.png")):find("plot_history: expected a History", 1, true))
    assert.truthy(errmsg(U.plot_history, C.History(), P("h.png"))
      :find("plot_history: the History holds no metric to draw", 1, true))
  end)

  it("says which Debian package to install when gnuplot is missing", function()
    local out = without_programs([[
      local k = require "keras"
      local h = k.callbacks.History()
      h:on_epoch_end(0, {loss = 1})
      io.write(select(2, pcall(k.utils.plot_history, h, "]] .. P("nognuplot.png") .. [[")))]])
    assert.equal("plot_history: the program 'gnuplot' was not found on PATH; install the Debian package gnuplot "
      .. "(or gnuplot-nox) (apt-get install gnuplot-nox)", out)
  end)
end)

describe("keras.callbacks.LivePlot", function()
  it("redraws the picture every `every` epochs and after the last one, never leaving a part file", function()
    local file = P("live.png")
    local seen = {}
    local spy = C.Callback:extend("Spy")
    function spy.on_epoch_end(_, epoch)
      local s = read(file)
      seen[epoch + 1] = s and select(2, png_size(file)) or false
    end
    local live = C.LivePlot{to_file = file, every = 2, metrics = {"loss"}}
    local h = trained(5, {live, spy()})
    assert.same({false, 260, 260, 260, 260}, seen)
    assert.equal(5, #h.epoch)
    assert.equal(5, live.drawn)   -- the last epoch drawn at the end of training
    assert.is_nil(read(P("live.part.png")))
    assert.same({640, 260}, {png_size(file)})
  end)

  it("checks its arguments and, before training, that it can draw", function()
    assert.truthy(errmsg(C.LivePlot, {every = 1}):find("LivePlot: to_file must be a file name", 1, true))
    assert.truthy(errmsg(C.LivePlot, {to_file = P("l.png"), every = 0})
      :find("LivePlot: every must be an integer >= 1, got 0", 1, true))
    local bad = C.LivePlot{to_file = P("no/dir/l.png")}
    assert.truthy(errmsg(trained, 1, {bad}):find("LivePlot: cannot write '" .. P("no/dir/l.part.png") .. "'", 1, true))
    local missing = C.LivePlot{to_file = P("m.png"), metrics = {"mae"}}
    assert.truthy(errmsg(trained, 1, {missing}):find("LivePlot: the History has no metric 'mae'", 1, true))
  end)
end)
