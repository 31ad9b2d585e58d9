-- keras.progbar -- the text progress bar of fit/evaluate/predict.
--
-- Prints what Keras 2.2.4's utils.generic_utils.Progbar prints, byte for byte,
-- with two deliberate differences:
--   * values are shown as given: the engine passes running means already
--     ({name, value} pairs), so nothing is averaged here;
--   * when stdout is not a terminal (dynamic = false) a bar with a known
--     target prints nothing until it is done, then its finished line once,
--     ending in "\n": log files get one line per epoch instead of one line
--     per update. With no target there is no finished line, so off a
--     terminal each drawn update is printed as a line of its own.
--
--   local Progbar = require "keras.progbar"
--   local bar = Progbar.new{target = 60000, clock = seconds, dynamic = true}
--   bar:update(32, {{"loss", 0.6960}, {"acc", 0.4062}})
--   bar:add(32, {{"loss", 0.6931}, {"acc", 0.4531}})
--
-- Options of Progbar.new (a table; a bare number is taken as the target):
--   target    total number of units (samples or steps), or nil if unknown
--   width     characters between the brackets (30)
--   verbose   0 silent, 1 bar, 2 one line when done (1)
--   interval  seconds between two redraws, except forced and final ones (0.05)
--   dynamic   true when stdout is a terminal: redraw in place with \b and \r
--             (default: Progbar.stdout_is_terminal())
--   write     function(s) that prints s (io.write then io.flush)
--   clock     function() returning seconds as a number; pass a monotonic
--             clock, the default os.time only counts whole seconds

local raise = require("keras.util").raise
local Progbar = {}

local methods = {}
local mt = {__index = methods, __name = "keras.Progbar"}

-- ---- formatting ----------------------------------------------------------

-- Length in characters as Python counts them (code points) when s is UTF-8.
local function textlen(s)
  return utf8.len(s) or #s
end

-- A metric value the way Progbar prints it: '%.4f', or '%.4e' when
-- |v| <= 1e-3 (Keras tests abs(v) > 1e-3). NaN prints as Python's 'nan'.
function Progbar.format_number(v)
  if type(v) ~= "number" then
    raise("format_number: number expected, got " .. type(v))
  end
  if v ~= v then return "nan" end
  if math.abs(v) > 1e-3 then
    return string.format("%.4f", v)
  end
  return string.format("%.4e", v)
end

-- verbose = 2 in Keras 2.2.4 tests avg > 1e-3 without abs: negative values
-- print with '%.4e'.
local function format_number_v2(v)
  if v ~= v then return "nan" end
  if v > 1e-3 then
    return string.format("%.4f", v)
  end
  return string.format("%.4e", v)
end

local function format_value(v, fmt)
  if type(v) == "number" then return fmt(v) end
  return tostring(v)
end

-- Python's '%d' of a float: truncation toward zero.
local function trunc(x)
  if x < 0 then return math.ceil(x) end
  return math.floor(x)
end

local function int(x)
  return string.format("%d", trunc(x))
end

-- An ETA the way Progbar prints it: '45s', '1:18' above a minute,
-- '1:02:03' above an hour. Fractions of a second are dropped.
function Progbar.format_duration(seconds)
  if type(seconds) ~= "number" or seconds ~= seconds
      or seconds == math.huge or seconds == -math.huge then
    raise("format_duration: finite number expected, got " .. tostring(seconds))
  end
  local eta = seconds
  if eta > 3600 then
    return string.format("%s:%02d:%02d", int(eta // 3600),
      trunc((eta % 3600) // 60), trunc(eta % 60))
  elseif eta > 60 then
    return string.format("%s:%02d", int(eta // 60), trunc(eta % 60))
  end
  return int(eta) .. "s"
end

-- Time per unit: '2s/step' from a second up, '21ms/step' from a
-- millisecond up, else '21us/step'.
function Progbar.format_step_time(seconds)
  if type(seconds) ~= "number" then
    raise("format_step_time: number expected, got " .. type(seconds))
  end
  if seconds >= 1 then
    return string.format("%.0fs/step", seconds)
  elseif seconds >= 1e-3 then
    return string.format("%.0fms/step", seconds * 1e3)
  end
  return string.format("%.0fus/step", seconds * 1e6)
end

-- ---- construction --------------------------------------------------------

local function default_write(s)
  io.write(s)
  io.flush()
end

-- Whether stdout is a terminal, asked of the shell ('test -t 1' inherits our
-- stdout). The engine should pass `dynamic` itself; this is the fallback.
function Progbar.stdout_is_terminal()
  if type(os.execute) ~= "function" then return false end
  local ok, res = pcall(os.execute, "test -t 1")
  return ok and res == true
end

local function is_int(v)
  return math.type(v) == "integer" or (math.type(v) == "float" and v == math.floor(v)
    and v == v and v ~= math.huge and v ~= -math.huge)
end

function Progbar.new(opts)
  if type(opts) == "number" then opts = {target = opts} end
  if opts == nil then opts = {} end
  if type(opts) ~= "table" then
    raise("Progbar.new: options table expected, got " .. type(opts))
  end
  local target = opts.target
  if target ~= nil and not (type(target) == "number" and is_int(target) and target > 0) then
    raise("Progbar.new: target must be a positive integer or nil, got " .. tostring(target))
  end
  local width = opts.width == nil and 30 or opts.width
  if not (type(width) == "number" and is_int(width) and width > 0) then
    raise("Progbar.new: width must be a positive integer, got " .. tostring(width))
  end
  local verbose = opts.verbose == nil and 1 or opts.verbose
  if verbose ~= 0 and verbose ~= 1 and verbose ~= 2 then
    raise("Progbar.new: verbose must be 0, 1 or 2, got " .. tostring(verbose))
  end
  local interval = opts.interval == nil and 0.05 or opts.interval
  if type(interval) ~= "number" or interval ~= interval or interval < 0 then
    raise("Progbar.new: interval must be a non-negative number, got " .. tostring(interval))
  end
  local write = opts.write or default_write
  if type(write) ~= "function" then
    raise("Progbar.new: write must be a function, got " .. type(write))
  end
  local clock = opts.clock or os.time
  if type(clock) ~= "function" then
    raise("Progbar.new: clock must be a function, got " .. type(clock))
  end
  local dynamic = opts.dynamic
  if dynamic == nil then
    dynamic = verbose == 1 and Progbar.stdout_is_terminal()
  elseif type(dynamic) ~= "boolean" then
    raise("Progbar.new: dynamic must be a boolean, got " .. type(dynamic))
  end
  local start = clock()
  if type(start) ~= "number" then
    raise("Progbar.new: clock must return a number, got " .. type(start))
  end
  return setmetatable({
    target = target and math.tointeger(target),
    width = math.tointeger(width),
    verbose = verbose,
    interval = interval,
    dynamic = dynamic,
    write = write,
    clock = clock,
    start = start,
    last_update = nil,   -- nil: never drawn, so the first update always draws
    total_width = 0,     -- characters on screen from the previous draw
    seen_so_far = 0,
    names = {},          -- value names in first-seen order
    values = {},         -- name -> latest value
  }, mt)
end

-- ---- drawing -------------------------------------------------------------

local function record(self, values)
  if values == nil then return end
  if type(values) ~= "table" then
    raise("Progbar:update: values must be a sequence of {name, value} pairs, got "
      .. type(values))
  end
  for i = 1, #values do
    local pair = values[i]
    if type(pair) ~= "table" or type(pair[1]) ~= "string" or pair[2] == nil then
      raise("Progbar:update: values[" .. i .. "] must be a {name, value} pair")
    end
    local name = pair[1]
    if self.values[name] == nil then
      self.names[#self.names + 1] = name
    end
    self.values[name] = pair[2]
  end
end

-- '   32/60000 [>.............................]', or '     32/Unknown'.
local function bar_text(self, current)
  local target = self.target
  if target == nil then
    return string.format("%7d/Unknown", current)
  end
  local digits = #string.format("%d", target)
  local parts = {string.format("%" .. digits .. "d/%d [", current, target)}
  local prog_width = math.floor(self.width * (current / target))
  if prog_width > 0 then
    parts[#parts + 1] = string.rep("=", prog_width - 1)
    parts[#parts + 1] = current < target and ">" or "="
  end
  parts[#parts + 1] = string.rep(".", self.width - prog_width)
  parts[#parts + 1] = "]"
  return table.concat(parts)
end

local function values_text(self, fmt)
  local parts = {}
  for _, name in ipairs(self.names) do
    parts[#parts + 1] = " - " .. name .. ": " .. format_value(self.values[name], fmt)
  end
  return table.concat(parts)
end

local function draw_verbose1(self, current, now, force)
  local target = self.target
  local done = target ~= nil and current >= target
  if not force and not done and target ~= nil and self.last_update ~= nil
      and now - self.last_update < self.interval then
    return false
  end
  if not self.dynamic and not done and target ~= nil then
    -- not a terminal: keep quiet until the finished line (with no target
    -- there is none, so each update gets a line of its own)
    return true
  end

  local bar = bar_text(self, current)
  local time_per_unit = current ~= 0 and (now - self.start) / current or 0
  local info
  if done or target == nil then
    info = string.format(" - %.0fs ", now - self.start)
      .. Progbar.format_step_time(time_per_unit)
  else
    info = " - ETA: " .. Progbar.format_duration(time_per_unit * (target - current))
  end
  info = info .. values_text(self, Progbar.format_number)

  local out
  if self.dynamic then
    local prev = self.total_width
    self.total_width = textlen(bar) + textlen(info)
    if prev > self.total_width then
      info = info .. string.rep(" ", prev - self.total_width)
    end
    out = string.rep("\b", prev) .. "\r" .. bar .. info .. (done and "\n" or "")
  else
    out = bar .. info .. "\n"
  end
  self.write(out)
  return true
end

--- Moves the bar to `current` units and shows `values`, a sequence of
-- {name, value} pairs (running means, shown as given, in first-seen order;
-- a name left out keeps its last value). Redraws at most every `interval`
-- seconds unless `force` is true or the bar reaches its target.
function methods:update(current, values, force)
  if getmetatable(self) ~= mt then
    raise("Progbar:update: called without a progress bar (use bar:update)")
  end
  if type(current) ~= "number" or not is_int(current) or current < 0 then
    raise("Progbar:update: current must be a non-negative integer, got " .. tostring(current))
  end
  current = math.tointeger(current)
  record(self, values)
  self.seen_so_far = current

  local now = self.clock()
  if type(now) ~= "number" then
    raise("Progbar:update: clock must return a number, got " .. type(now))
  end
  if self.verbose == 1 then
    if not draw_verbose1(self, current, now, force) then return end
  elseif self.verbose == 2 then
    if self.target == nil or current >= self.target then
      self.write(string.format(" - %.0fs", now - self.start)
        .. values_text(self, format_number_v2) .. "\n")
    end
  end
  self.last_update = now
end

--- Advances the bar by `n` units: update(seen + n, values).
function methods:add(n, values)
  if getmetatable(self) ~= mt then
    raise("Progbar:add: called without a progress bar (use bar:add)")
  end
  if type(n) ~= "number" or not is_int(n) then
    raise("Progbar:add: n must be an integer, got " .. tostring(n))
  end
  local current = self.seen_so_far + math.tointeger(n)
  if current < 0 then
    raise("Progbar:add: the bar would go below 0 (" .. current .. ")")
  end
  return methods.update(self, current, values)
end

return Progbar
