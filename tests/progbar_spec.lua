require "keras" -- registers the library's modules (keras.progbar, keras.summary, ...)
local Progbar = require "keras.progbar"

-- A bar on a fake clock: `times` are the clock's answers in order (the
-- first one is read by Progbar.new); every write lands in `out`.
local function fake(opts, times)
  local out, i = {}, 0
  opts.write = function(s) out[#out + 1] = s end
  opts.clock = function()
    i = i + 1
    return assert(times[i], "fake clock ran out")
  end
  return Progbar.new(opts), out
end

local BS = function(n) return string.rep("\b", n) end

describe("keras.progbar.format_number", function()
  it("prints four decimals above 1e-3 in magnitude", function()
    assert.equal("0.6960", Progbar.format_number(0.696))
    assert.equal("-0.5000", Progbar.format_number(-0.5))
    assert.equal("12345.6789", Progbar.format_number(12345.6789))
    assert.equal("0.0011", Progbar.format_number(0.0011))
    assert.equal("3.0000", Progbar.format_number(3))
  end)

  it("switches to %.4e at or below 1e-3 in magnitude", function()
    assert.equal("4.2000e-04", Progbar.format_number(0.00042))
    assert.equal("1.0000e-03", Progbar.format_number(1e-3))
    assert.equal("-1.0000e-03", Progbar.format_number(-1e-3))
    assert.equal("-2.5000e-07", Progbar.format_number(-2.5e-7))
    assert.equal("0.0000e+00", Progbar.format_number(0))
  end)

  it("prints NaN and infinities as Python does", function()
    assert.equal("nan", Progbar.format_number(0 / 0))
    assert.equal("inf", Progbar.format_number(math.huge))
    assert.equal("-inf", Progbar.format_number(-math.huge))
  end)

  it("rejects a non-number", function()
    assert.error_matches(function() Progbar.format_number("1") end,
      "format_number: number expected, got string", 1, true)
  end)
end)

describe("keras.progbar.format_duration", function()
  it("prints whole seconds up to a minute", function()
    assert.equal("0s", Progbar.format_duration(0.9))
    assert.equal("58s", Progbar.format_duration(58.9))
    assert.equal("60s", Progbar.format_duration(60))
  end)

  it("prints m:ss above a minute and h:mm:ss above an hour", function()
    assert.equal("1:00", Progbar.format_duration(60.5))
    assert.equal("1:39", Progbar.format_duration(99))
    assert.equal("60:00", Progbar.format_duration(3600))
    assert.equal("1:01:01", Progbar.format_duration(3661.7))
    assert.equal("138:53:19", Progbar.format_duration(499999.5))
  end)

  it("rejects NaN", function()
    assert.error_matches(function() Progbar.format_duration(0 / 0) end,
      "format_duration: finite number expected", 1, true)
  end)
end)

describe("keras.progbar.format_step_time", function()
  it("picks s, ms or us per step", function()
    assert.equal("21us/step", Progbar.format_step_time(1.25 / 60000))
    assert.equal("5ms/step", Progbar.format_step_time(0.005))
    assert.equal("1ms/step", Progbar.format_step_time(0.001))
    assert.equal("2s/step", Progbar.format_step_time(2.5))
    assert.equal("1000ms/step", Progbar.format_step_time(0.9999))
  end)
end)

describe("keras.progbar on a terminal (verbose = 1)", function()
  local FIRST = "   32/60000 [..............................] - ETA: 58s"
    .. " - loss: 0.6960 - acc: 0.4062"

  it("draws the first update after a carriage return", function()
    local bar, out = fake({target = 60000, dynamic = true}, {0, 0.03125})
    bar:update(32, {{"loss", 0.6960}, {"acc", 0.4062}})
    assert.same({"\r" .. FIRST}, out)
  end)

  it("redraws over the previous line and ends the finished line", function()
    local bar, out = fake({target = 60000, dynamic = true}, {0, 0.03125, 0.625, 1.25})
    bar:update(32, {{"loss", 0.6960}, {"acc", 0.4062}})
    bar:update(30016, {{"loss", 0.4012}, {"acc", 0.8846}})
    bar:update(60000, {{"loss", 0.3028}, {"acc", 0.9141},
                       {"val_loss", 0.2811}, {"val_acc", 0.9210}})
    local mid = "30016/60000 [==============>...............] - ETA: 0s"
      .. " - loss: 0.4012 - acc: 0.8846"
    local final = "60000/60000 [==============================] - 1s 21us/step"
      .. " - loss: 0.3028 - acc: 0.9141 - val_loss: 0.2811 - val_acc: 0.9210"
    assert.same({
      "\r" .. FIRST,
      BS(#FIRST) .. "\r" .. mid .. string.rep(" ", #FIRST - #mid),
      BS(#mid) .. "\r" .. final .. "\n",   -- padding is not counted
    }, out)
  end)

  it("pads a line that is shorter than the one before", function()
    local bar, out = fake({target = 100, dynamic = true}, {0, 1, 1.2})
    bar:update(1, {{"loss", 1.5}})
    bar:update(2, {{"loss", 1.25}})
    local l1 = "  1/100 [..............................] - ETA: 1:39 - loss: 1.5000"
    local l2 = "  2/100 [..............................] - ETA: 58s - loss: 1.2500"
    assert.same({"\r" .. l1, BS(#l1) .. "\r" .. l2 .. " "}, out)
  end)

  it("prints the ETA as h:mm:ss above an hour", function()
    local bar, out = fake({target = 1000000, dynamic = true}, {10, 10.5})
    bar:update(1)
    assert.same({"\r      1/1000000 [..............................] - ETA: 138:53:19"}, out)
  end)

  it("prints ms per step and s per step when done", function()
    local bar, out = fake({target = 10, dynamic = true}, {0, 0.05})
    bar:update(10, {{"loss", 0.25}})
    assert.same({"\r10/10 [==============================] - 0s 5ms/step - loss: 0.2500\n"}, out)

    bar, out = fake({target = 10, dynamic = true}, {0, 25})
    bar:update(10)
    assert.same({"\r10/10 [==============================] - 25s 2s/step\n"}, out)
  end)

  it("prints small values with %.4e", function()
    local bar, out = fake({target = 4, dynamic = true}, {0, 2})
    bar:update(4, {{"loss", 0.00042}, {"mae", -0.5}})
    assert.same({"\r4/4 [==============================] - 2s 500ms/step"
      .. " - loss: 4.2000e-04 - mae: -0.5000\n"}, out)
  end)

  it("skips updates closer than the interval, except forced and final ones", function()
    local bar, out = fake({target = 100, dynamic = true},
      {0, 1, 1.01, 1.02, 1.03, 1.04})
    bar:update(10)          -- drawn
    bar:update(20)          -- 0.01 s later: skipped
    bar:update(30, nil, true) -- forced
    bar:update(40)          -- skipped again
    bar:update(100)         -- final: always drawn
    assert.equal(3, #out)
    assert.matches("^\r 10/100", out[1])
    assert.matches("\r 30/100", out[2])
    assert.matches("\r100/100 %[=+%] %- 1s 10ms/step\n$", out[3])
  end)

  it("draws again once the interval has passed", function()
    local bar, out = fake({target = 100, dynamic = true, interval = 0.5}, {0, 1, 1.4, 1.6})
    bar:update(10)
    bar:update(20)
    bar:update(30)
    assert.equal(2, #out)
    assert.matches(" 30/100 ", out[2], 1, true)
  end)

  it("keeps the first-seen order of values and their last value", function()
    local bar, out = fake({target = 8, dynamic = true}, {0, 1, 2})
    bar:update(4, {{"loss", 0.5}, {"acc", 0.25}})
    bar:update(8, {{"acc", 0.75}})
    assert.matches(" %- loss: 0%.5000 %- acc: 0%.7500\n$", out[2])
  end)

  it("counts an unknown target", function()
    local bar, out = fake({dynamic = true}, {0, 0.0625})
    bar:update(32, {{"loss", 0.5}})
    assert.same({"\r     32/Unknown - 0s 2ms/step - loss: 0.5000"}, out)
  end)

  it("advances with add", function()
    local bar, out = fake({target = 64, dynamic = true}, {0, 1, 2})
    bar:add(32, {{"loss", 0.5}})
    bar:add(32, {{"loss", 0.25}})
    assert.equal("\b", out[2]:sub(1, 1))
    assert.matches("64/64 [==============================] - 2s 31ms/step - loss: 0.2500\n",
      out[2], 1, true)
  end)
end)

describe("keras.progbar off a terminal", function()
  it("prints only the finished line, once", function()
    local bar, out = fake({target = 60000, dynamic = false}, {0, 0.03125, 0.625, 1.0, 1.25})
    bar:update(32, {{"loss", 0.6960}, {"acc", 0.4062}})
    bar:update(30016, {{"loss", 0.4012}, {"acc", 0.8846}})
    bar:update(45000, {{"loss", 0.35}, {"acc", 0.9}}, true)
    bar:update(60000, {{"loss", 0.3028}, {"acc", 0.9141},
                       {"val_loss", 0.2811}, {"val_acc", 0.9210}})
    assert.same({"60000/60000 [==============================] - 1s 21us/step"
      .. " - loss: 0.3028 - acc: 0.9141 - val_loss: 0.2811 - val_acc: 0.9210\n"}, out)
  end)

  it("prints one line per update when the target is unknown", function()
    local bar, out = fake({dynamic = false}, {0, 0.0625, 0.125})
    bar:update(32)
    bar:update(64)
    assert.same({"     32/Unknown - 0s 2ms/step\n", "     64/Unknown - 0s 2ms/step\n"}, out)
  end)
end)

describe("keras.progbar with verbose = 2", function()
  it("prints one line when done, without a bar", function()
    local bar, out = fake({target = 60000, verbose = 2, dynamic = true}, {0, 0.5, 1.25})
    bar:update(30000, {{"loss", 0.5}, {"acc", 0.8}})
    bar:update(60000, {{"loss", 0.3028}, {"acc", 0.9141}})
    assert.same({" - 1s - loss: 0.3028 - acc: 0.9141\n"}, out)
  end)

  it("uses %.4e for negative values, as Keras 2.2.4 does", function()
    local bar, out = fake({target = 1, verbose = 2, dynamic = false}, {0, 3})
    bar:update(1, {{"loss", -0.5}, {"acc", 0.0005}})
    assert.same({" - 3s - loss: -5.0000e-01 - acc: 5.0000e-04\n"}, out)
  end)
end)

describe("keras.progbar with verbose = 0", function()
  it("prints nothing", function()
    local bar, out = fake({target = 10, verbose = 0, dynamic = true}, {0, 1, 2})
    bar:update(5, {{"loss", 1}})
    bar:update(10, {{"loss", 1}})
    assert.same({}, out)
  end)
end)

describe("keras.progbar.new", function()
  it("accepts a bare target and fills the Keras defaults", function()
    local bar = Progbar.new(10)
    assert.equal(10, bar.target)
    assert.equal(30, bar.width)
    assert.equal(1, bar.verbose)
    assert.equal(0.05, bar.interval)
  end)

  it("rejects a bad target", function()
    assert.error_matches(function() Progbar.new{target = 0} end,
      "Progbar.new: target must be a positive integer or nil, got 0", 1, true)
    assert.error_matches(function() Progbar.new{target = 2.5} end,
      "Progbar.new: target must be a positive integer or nil, got 2.5", 1, true)
  end)

  it("rejects bad options", function()
    assert.error_matches(function() Progbar.new{target = 1, verbose = 3} end,
      "Progbar.new: verbose must be 0, 1 or 2, got 3", 1, true)
    assert.error_matches(function() Progbar.new{target = 1, width = 0} end,
      "Progbar.new: width must be a positive integer, got 0", 1, true)
    assert.error_matches(function() Progbar.new{target = 1, interval = -1} end,
      "Progbar.new: interval must be a non-negative number, got -1", 1, true)
    assert.error_matches(function() Progbar.new{target = 1, write = 1} end,
      "Progbar.new: write must be a function, got number", 1, true)
    assert.error_matches(function() Progbar.new{target = 1, clock = "now"} end,
      "Progbar.new: clock must be a function, got string", 1, true)
    assert.error_matches(function() Progbar.new{target = 1, dynamic = 1} end,
      "Progbar.new: dynamic must be a boolean, got number", 1, true)
    assert.error_matches(function() Progbar.new{target = 1, clock = function() return "x" end} end,
      "Progbar.new: clock must return a number, got string", 1, true)
    assert.error_matches(function() Progbar.new("ten") end,
      "Progbar.new: options table expected, got string", 1, true)
  end)
end)

describe("keras.progbar update", function()
  it("rejects a bad position", function()
    local bar = fake({target = 10, dynamic = true}, {0, 1, 2})
    assert.error_matches(function() bar:update(-1) end,
      "Progbar:update: current must be a non-negative integer, got -1", 1, true)
    assert.error_matches(function() bar:update(0 / 0) end,
      "Progbar:update: current must be a non-negative integer", 1, true)
    assert.error_matches(function() bar:add("1") end,
      "Progbar:add: n must be an integer, got 1", 1, true)
    assert.error_matches(function() bar:add(-5) end,
      "Progbar:add: the bar would go below 0 (-5)", 1, true)
  end)

  it("rejects malformed values", function()
    local bar = fake({target = 10, dynamic = true}, {0, 1, 2})
    assert.error_matches(function() bar:update(1, "loss") end,
      "Progbar:update: values must be a sequence of {name, value} pairs, got string", 1, true)
    assert.error_matches(function() bar:update(1, {{"loss", 1}, {2, 1}}) end,
      "Progbar:update: values[2] must be a {name, value} pair", 1, true)
  end)

  it("must be called as a method", function()
    local bar = fake({target = 10, dynamic = true}, {0, 1})
    assert.error_matches(function() bar.update(5) end,
      "Progbar:update: called without a progress bar (use bar:update)", 1, true)
    assert.error_matches(function() bar.add(5) end,
      "Progbar:add: called without a progress bar (use bar:add)", 1, true)
  end)

  it("rejects a clock that stops returning numbers", function()
    local n = 0
    local bar = Progbar.new{target = 10, dynamic = true, write = function() end,
      clock = function() n = n + 1; return n == 1 and 0 or "later" end}
    assert.error_matches(function() bar:update(1) end,
      "Progbar:update: clock must return a number, got string", 1, true)
  end)
end)

describe("keras.utils.Progbar", function()
  local keras = require "keras"
  local P = keras.utils.Progbar

  -- the strings the bar writes, with keras.set_print capturing
  local function run(dynamic, fn)
    local out = {}
    keras.set_print(function(s) out[#out + 1] = s end, {dynamic = dynamic})
    local ok, err = pcall(fn)
    keras.set_print(nil)
    if not ok then error(err, 0) end
    return out
  end

  it("averages values over the steps they were given for, and shows stateful ones as given", function()
    local out = run(false, function()
      local bar = P(10, {stateful_metrics = {"acc"}})
      bar:update(2, {{"loss", 1.0}, {"acc", 0.5}})
      bar:add(3, {{"loss", 2.0}, {"acc", 0.25}})
      bar:update(10, {{"loss", 0.5}, {"acc", 0.75}})
    end)
    -- Keras: loss = (1.0 * 2 + 2.0 * 3 + 0.5 * 5) / 10; acc is the last value
    local loss = (1.0 * 2 + 2.0 * 3 + 0.5 * 5) / 10
    assert.equal(1, #out)   -- off a terminal: the finished line alone, as fit's bar
    assert.matches("^10/10 %[==============================%] %- 0s %d+us/step %- loss: "
      .. string.format("%.4f", loss):gsub("%.", "%%.") .. " %- acc: 0%.7500\n$", out[1])
  end)

  it("redraws in place on a terminal, with the ETA while running", function()
    local out = run(true, function()
      local bar = P{5, interval = 0}
      bar:update(1, {{"loss", 4.0}})
      bar:add(1, {{"loss", 1.0}})
      bar:add(3)
    end)
    assert.equal(3, #out)
    assert.matches("^\r1/5 %[=====>........................%] %- ETA: 0s %- loss: 4%.0000$", out[1])
    -- (4 * 1 + 1 * 1) / 2
    assert.matches("^\b+\r2/5 %[===========>..................%] %- ETA: 0s %- loss: 2%.5000$", out[2])
    -- add(3) without values: loss keeps its sums, (4 + 1) / 2
    assert.matches("^\b+\r5/5 %[==============================%] %- 0s %d+us/step %- loss: 2%.5000\n$", out[3])
  end)

  it("counts an unknown target and prints one line with verbose = 2", function()
    local out = run(false, function()
      local bar = P(nil, {verbose = 1})
      bar:update(3, {{"x", 0.0001}})
    end)
    assert.matches("^      3/Unknown %- 0s %d+us/step %- x: 1%.0000e%-04\n$", out[1])
    out = run(false, function()
      local bar = P(keras.None, 30, 2)
      bar:update(4, {{"x", 2}})
    end)
    assert.same({" - 0s - x: 2.0000\n"}, out)
    out = run(false, function() P{target = 4, verbose = 0}:update(4, {{"x", 2}}) end)
    assert.same({}, out)
  end)

  it("takes Keras's positional order and the width", function()
    local bar = P(8, 10, 1, 0.5, {"acc"})
    assert.same({8, 10, 1, 0.5, {"acc"}}, {bar.target, bar.width, bar.verbose, bar.interval, bar.stateful_metrics})
    local out = run(false, function() P(8, 10):update(8) end)
    assert.matches("^8/8 %[==========%] %- 0s", out[1])
    bar = P{8}
    assert.same({8, 30, 1, 0.05}, {bar.target, bar.width, bar.verbose, bar.interval})
  end)

  it("names what is wrong", function()
    assert.error_matches(function() P(0) end, "Progbar: target must be a positive integer or nil, got 0", 1, true)
    assert.error_matches(function() P(10, {width = 0}) end, "Progbar: width must be a positive integer, got 0", 1, true)
    assert.error_matches(function() P(10, {colour = "red"}) end, "Progbar: unknown argument 'colour'", 1, true)
    assert.error_matches(function() P(10, {stateful_metrics = "acc"}) end,
      "Progbar: stateful_metrics must be a list of names, got string", 1, true)
    local bar = P(10)
    assert.error_matches(function() bar:update(-1) end,
      "Progbar:update: current must be a non-negative integer, got -1", 1, true)
    assert.error_matches(function() bar:update(1, {{"loss", "high"}}) end,
      "Progbar:update: values[1] must be a {name, number} pair", 1, true)
    assert.error_matches(function() bar.add(1) end, "Progbar:add: called without a progress bar (use bar:add)", 1, true)
    assert.error_matches(function() bar:add(-5) end, "Progbar:add: the bar would go below 0 (-5)", 1, true)
  end)
end)
