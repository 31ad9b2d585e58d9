-- Character-level text generation with an LSTM (Keras's lstm_text_generation
-- example) trained on a licence text Debian ships: windows of 40 characters,
-- one-hot encoded, predict the next character; after each epoch, sample text
-- at a few temperatures.
--   lkeras scripts/examples/char_lstm_textgen.lua [epochs] [text file]
--   (LKERAS_QUICK=1: the first 2000 characters, two short epochs)
local keras = keras or require "keras"
local L = keras.layers
local quick = os.getenv("LKERAS_QUICK")
local check = dofile(arg[0]:match("^(.-)[^/]*$") .. "lib/check.lua")

local epochs = tonumber(arg and arg[1]) or 3
local path = arg and arg[2]
if not path then
  for _, p in ipairs{"/usr/share/common-licenses/GPL-3", "/usr/share/common-licenses/Apache-2.0",
                     "/usr/share/common-licenses/GPL-2"} do
    local f = io.open(p)
    if f then f:close(); path = p; break end
  end
end
assert(path, "no text file found: give one as the second argument")
local f = assert(io.open(path, "rb"))
local text = f:read("a"):lower()
f:close()
if quick then text, epochs = text:sub(1, 2000), 2 end
print(string.format("%s: corpus length %d", path, #text))

keras.random.seed(5)
math.randomseed(5)

-- the characters (bytes) in the text, sorted
local seen, chars = {}, {}
for i = 1, #text do
  local c = text:sub(i, i)
  if not seen[c] then seen[c] = true; chars[#chars + 1] = c end
end
table.sort(chars)
local char_index = {}
for i, c in ipairs(chars) do char_index[c] = i end   -- 1-based: a tensor position
print(string.format("total chars: %d", #chars))

-- cut the text in semi-redundant sequences of maxlen characters
local maxlen, step = 40, 3
local sentences, next_chars = {}, {}
for i = 1, #text - maxlen, step do
  sentences[#sentences + 1] = text:sub(i, i + maxlen - 1)
  next_chars[#next_chars + 1] = text:sub(i + maxlen, i + maxlen)
end
print(string.format("nb sequences: %d", #sentences))

print("Vectorization...")
local n = #sentences
local x = keras.tensor.zeros{n, maxlen, #chars}
local y = keras.tensor.zeros{n, #chars}
for i, s in ipairs(sentences) do
  for t = 1, maxlen do x:set(i, t, char_index[s:sub(t, t)], 1) end
  y:set(i, char_index[next_chars[i]], 1)
end

-- build the model: a single LSTM
print("Build model...")
local model = keras.Sequential{
  L.LSTM{128, input_shape = {maxlen, #chars}},
  L.Dense{#chars, activation = "softmax"},
}
model:compile{loss = "categorical_crossentropy", optimizer = keras.optimizers.RMSprop{lr = 0.01}}

-- an index drawn from a probability array, sharpened or flattened by temperature
local function sample(preds, temperature)
  local p, sum = {}, 0
  for i, v in ipairs(preds) do
    p[i] = math.exp(math.log(math.max(v, 1e-12)) / temperature)
    sum = sum + p[i]
  end
  local r, acc = math.random() * sum, 0
  for i, v in ipairs(p) do
    acc = acc + v
    if r <= acc then return i end
  end
  return #p
end

local function generate(epoch)
  print(string.format("\n----- Generating text after Epoch: %d", epoch))
  local start = math.random(1, #text - maxlen)
  local diversities = quick and {0.5} or {0.2, 0.5, 1.0}
  for _, diversity in ipairs(diversities) do
    print(string.format("----- diversity: %.1f", diversity))
    local sentence = text:sub(start, start + maxlen - 1)
    io.write(string.format('----- Generating with seed: "%s"\n', sentence:gsub("\n", " ")))
    io.write(sentence)
    local x_pred = keras.tensor.zeros{1, maxlen, #chars}
    for _ = 1, quick and 40 or 300 do
      x_pred:assign(0)
      for t = 1, maxlen do x_pred:set(1, t, char_index[sentence:sub(t, t)], 1) end
      local preds = model:predict(x_pred):totable()[1]
      local next_char = chars[sample(preds, diversity)]
      sentence = sentence:sub(2) .. next_char
      io.write(next_char)
    end
    io.write("\n")
    io.stdout:flush()
  end
end

local print_callback = keras.callbacks.LambdaCallback{on_epoch_end = function(epoch) generate(epoch) end}
local h = model:fit(x, y, {batch_size = 128, epochs = epochs, callbacks = {print_callback}})

-- what the example claims: the LSTM learns the next character, better than a uniform guess
local losses = check.epochs(h, epochs)
if epochs >= 2 then check.falls(h) end
check.between(losses[#losses], nil, math.log(#chars), "the last epoch's loss (uniform guess: log of the chars)")
