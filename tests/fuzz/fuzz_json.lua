-- fuzz_json.lua -- a mutation fuzzer for the model-config loader, through the
-- public API only: keras.models.model_from_json(text). Run under the ASan +
-- UBSan build of the host (build/asan/lkeras), so that a memory error in
-- the engine behind a hostile config aborts the run.
--   build/asan/lkeras tests/fuzz/fuzz_json.lua [seconds] [seed]
-- Seeds: the JSON of real models built here (Sequential and functional,
-- dense, convolutional, recurrent, merge and wrapper layers). Each input is
-- a seed mutated a few times: bytes flipped, inserted, deleted or repeated;
-- a number replaced by an extreme (0, -1, 1e9, 1e300, -1e300, 0.5, huge
-- integers); a string replaced by another seen string or a layer class
-- name; a slice of the text copied over another place. Every input must
-- either load or raise a Lua error whose message is a string; anything else
-- fails the run. A crash or an abort kills the host: the wrapper
-- (tests/fuzz/bounded_json.sh) then shows the input being tried, which is
-- written to build/fuzz/json-current.json before each attempt.
-- Prints "fuzz_json: 1 passed, 0 failed" (or 0 passed, 1 failed) at the end.
local seconds = tonumber(arg and arg[1]) or 20
if seconds <= 0 then seconds = math.huge end   -- 0: until stopped
local seed = tonumber(arg and arg[2]) or 20260
local L = keras.layers

local function seeds()
  local out = {}
  local function add(m) out[#out + 1] = m:to_json() end
  add(keras.Sequential{L.Dense{4, input_shape = {3}, activation = "relu"}, L.Dropout{0.5}, L.Dense{2}})
  add(keras.Sequential{L.Conv2D{2, {3, 3}, input_shape = {6, 6, 1}, padding = "same"}, L.MaxPooling2D{},
    L.BatchNormalization{}, L.Flatten{}, L.Dense{3, activation = "softmax"}})
  add(keras.Sequential{L.Embedding{10, 4, input_length = 5}, L.LSTM{3, return_sequences = true}, L.GRU{2}})
  add(keras.Sequential{L.Conv1D{2, 3, input_shape = {8, 2}}, L.GlobalAveragePooling1D{},
    L.Reshape{{2, 1}}, L.SimpleRNN{2}})
  local a = L.Input{shape = {4}}
  local b = L.Input{shape = {4}}
  local h = L.Dense{3}(L.Concatenate{}({a, b}))
  local s = L.Add{}({L.Dense{3}(a), h})
  add(keras.Model{inputs = {a, b}, outputs = {s, L.Activation{"tanh"}(h)}})
  local x = L.Input{shape = {5, 3}}
  add(keras.Model{inputs = x, outputs = L.Bidirectional{L.LSTM{2}}(L.TimeDistributed{L.Dense{3}}(x))})
  return out
end

local corpus = seeds()
local strings, names = {}, {"Dense", "Conv2D", "LSTM", "GRU", "Reshape", "Flatten", "Concatenate", "Add",
  "InputLayer", "Model", "Sequential", "Bidirectional", "TimeDistributed", "Embedding", "MaxPooling2D", "Lambda",
  "", "null", "__index", "nope"}
for _, text in ipairs(corpus) do
  for str in text:gmatch('"([^"\\]*)"') do strings[#strings + 1] = str end
end
local extremes = {"0", "-1", "1e9", "1e300", "-1e300", "0.5", "2147483648", "9007199254740993", "-0", "1e-300",
  "[]", "{}", "null", "true", "\"x\""}

local rng = seed
local function rand(n)   -- 1..n, a 31-bit LCG of our own (math.random's state is the engine's business)
  rng = (rng * 1103515245 + 12345) % 2147483648
  return rng % n + 1
end

local function mutate(t)
  local k = rand(8)
  local n = #t
  if n == 0 then return "{" end
  local i = rand(n)
  if k == 1 then   -- flip a byte
    return t:sub(1, i - 1) .. string.char(rand(256) - 1) .. t:sub(i + 1)
  elseif k == 2 then   -- delete a run
    return t:sub(1, i - 1) .. t:sub(i + rand(16))
  elseif k == 3 then   -- insert a structural byte
    local c = ("{}[]\",:0-.eE\\ "):sub(rand(15), nil)
    return t:sub(1, i - 1) .. c:sub(1, 1) .. t:sub(i)
  elseif k == 4 or k == 5 then   -- a number becomes an extreme
    local starts = {}
    for p in t:gmatch("()[-%d]") do starts[#starts + 1] = p end
    if #starts == 0 then return t end
    local p = starts[rand(#starts)]
    local q = t:find("[^-%d.eE+]", p) or n + 1
    return t:sub(1, p - 1) .. extremes[rand(#extremes)] .. t:sub(q)
  elseif k == 6 then   -- a string becomes another string or a class name
    local starts = {}
    for p in t:gmatch('()"') do starts[#starts + 1] = p end
    if #starts < 2 then return t end
    local j = rand(#starts - 1)
    local p, q = starts[j], starts[j + 1]
    local pool = rand(2) == 1 and strings or names
    return t:sub(1, p) .. pool[rand(#pool)] .. t:sub(q)
  elseif k == 7 then   -- copy a slice over another place
    local j = rand(n)
    local len = rand(64)
    return t:sub(1, i - 1) .. t:sub(j, j + len) .. t:sub(i + rand(len))
  else   -- repeat a slice (deep nesting, long arrays)
    local len = rand(32)
    local piece = t:sub(i, i + len)
    return t:sub(1, i - 1) .. piece:rep(rand(40)) .. t:sub(i)
  end
end

os.execute("mkdir -p build/fuzz")
local current = "build/fuzz/json-current.json"
local deadline = os.time() + seconds
local tried, loaded, bad = 0, 0, 0
-- the seeds themselves load
for _, text in ipairs(corpus) do
  local ok, err = pcall(keras.models.model_from_json, text)
  if not ok then
    print("a seed does not load: " .. tostring(err))
    bad = bad + 1
  end
end
while os.time() < deadline and bad == 0 do
  local text = corpus[rand(#corpus)]
  for _ = 1, rand(4) do text = mutate(text) end
  local f = io.open(current, "wb")
  if f then
    f:write(text)
    f:close()
  end
  tried = tried + 1
  local ok, err = pcall(keras.models.model_from_json, text)
  if ok then
    loaded = loaded + 1
  elseif type(err) ~= "string" then
    bad = bad + 1
    print("an error that is not a message (" .. type(err) .. ") for the input in " .. current)
  end
  if tried % 200 == 0 then collectgarbage() end
end
print(string.format("  %d inputs, %d loaded, %d refused with a message", tried, loaded, tried - loaded - bad))
if bad == 0 then os.remove(current) end
print(string.format("fuzz_json: %d passed, %d failed", bad == 0 and 1 or 0, bad == 0 and 0 or 1))
os.exit(bad == 0 and 0 or 1)
