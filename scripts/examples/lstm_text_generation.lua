-- Character-level text generation (Keras's examples/lstm_text_generation.py)
-- fed by a generator: fit_generator draws batches of 40-character windows and
-- their next characters from the text as it trains, one-hot encoding each batch
-- when it is asked for, so the full one-hot corpus never sits in memory. The
-- text is a licence Debian ships. After each epoch a callback samples text at a
-- few temperatures.
--   lkeras scripts/examples/lstm_text_generation.lua [epochs]  (LKERAS_QUICK=1: a tiny run)
local keras = keras or require "keras"
local L = keras.layers
local quick = os.getenv("LKERAS_QUICK")

local path = "/usr/share/common-licenses/GPL-3"
local f = assert(io.open(path, "rb"))
local text = f:read("a"):lower()
f:close()
if quick then text = text:sub(1, 3000) end
print(string.format("corpus length: %d", #text))

keras.random.seed(42)
math.randomseed(42)

local chars, char_indices = {}, {}
for c in text:gmatch(".") do if not char_indices[c] then char_indices[c] = true; chars[#chars + 1] = c end end
table.sort(chars)
for i, c in ipairs(chars) do char_indices[c] = i end
print("total chars:", #chars)

-- windows of maxlen characters, every `step` characters
local maxlen, step, batch_size = 40, 3, 128
local starts = {}
for i = 1, #text - maxlen, step do starts[#starts + 1] = i end
print("nb sequences:", #starts)

-- the generator: one batch per call, windows in a new random order each pass
local function batches()
  return coroutine.wrap(function()
    while true do
      for i = #starts, 2, -1 do local j = math.random(i); starts[i], starts[j] = starts[j], starts[i] end
      for b = 1, #starts - batch_size + 1, batch_size do
        local x = keras.tensor.zeros{batch_size, maxlen, #chars}
        local y = keras.tensor.zeros{batch_size, #chars}
        for r = 1, batch_size do
          local s = starts[b + r - 1]
          for t = 1, maxlen do x:set(r, t, char_indices[text:sub(s + t - 1, s + t - 1)], 1) end
          y:set(r, char_indices[text:sub(s + maxlen, s + maxlen)], 1)
        end
        coroutine.yield(x, y)
      end
    end
  end)
end

local model = keras.Sequential()
model:add(L.LSTM(128, {input_shape = {maxlen, #chars}}))
model:add(L.Dense(#chars, {activation = "softmax"}))
model:compile{loss = "categorical_crossentropy", optimizer = keras.optimizers.RMSprop{lr = 0.01}}

-- sample an index from a probability array reshaped by a temperature
local function sample(preds, temperature)
  local w, total = {}, 0
  for i = 1, #preds do
    w[i] = math.exp(math.log(math.max(preds[i], 1e-12)) / temperature)
    total = total + w[i]
  end
  local r = math.random() * total
  for i = 1, #w do r = r - w[i]; if r <= 0 then return i end end
  return #w
end

local function generate(temperature, n)
  local s = math.random(1, #text - maxlen)
  local sentence = text:sub(s, s + maxlen - 1)
  local out = {}
  for _ = 1, n do
    local x = keras.tensor.zeros{1, maxlen, #chars}
    for t = 1, maxlen do x:set(1, t, char_indices[sentence:sub(t, t)], 1) end
    local p = model:predict(x):totable()[1]
    local c = chars[sample(p, temperature)]
    out[#out + 1] = c
    sentence = sentence:sub(2) .. c
  end
  return table.concat(out)
end

local on_epoch_end = keras.callbacks.LambdaCallback{on_epoch_end = function(epoch)
  print(string.format("----- Generating text after Epoch: %d", epoch))
  for _, diversity in ipairs(quick and {0.5} or {0.2, 0.5, 1.0, 1.2}) do
    print("----- diversity:", diversity)
    print(generate(diversity, quick and 40 or 200))
  end
end}

local epochs = quick and 1 or tonumber(arg and arg[1]) or 20
local steps = #starts // batch_size
local history = model:fit_generator(batches(), {steps_per_epoch = steps, epochs = epochs,
                                                callbacks = {on_epoch_end}})
local h = history.history
assert(#h.loss == epochs and h.loss[1] == h.loss[1], "a finite loss each epoch")
assert(h.loss[#h.loss] < math.log(#chars), "below the loss of guessing uniformly")
if not quick then assert(h.loss[#h.loss] < h.loss[1], "the loss falls") end
