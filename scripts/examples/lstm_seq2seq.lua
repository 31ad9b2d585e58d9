-- Sequence to sequence with LSTMs (Keras's examples/lstm_seq2seq.py), character
-- by character. Keras's example translates English to French from a download;
-- here the "translation" is made up and learnable: a string of digits becomes
-- its reverse spelled with letters (0 -> a, 1 -> b, ...). The encoder reads the
-- input and hands its states to the decoder, which is trained with teacher
-- forcing; inference runs the encoder once, then the decoder one character at a
-- time on inputs of length 1 -- models over time axes of length None.
--   lkeras scripts/examples/lstm_seq2seq.lua   (LKERAS_QUICK=1: a tiny run)
local keras = keras or require "keras"
local L = keras.layers
local quick = os.getenv("LKERAS_QUICK")

keras.random.seed(11)
math.randomseed(11)
local batch_size, epochs, latent_dim = 64, quick and 2 or 60, quick and 32 or 128
local num_samples = quick and 256 or 4000

-- data: "3141" -> "\tbebd\n" ("\t" starts a target, "\n" ends it)
local input_texts, target_texts = {}, {}
for i = 1, num_samples do
  local n, s, t = math.random(3, 8), {}, {}
  for k = 1, n do s[k] = tostring(math.random(0, 9)) end
  for k = n, 1, -1 do t[#t + 1] = string.char(string.byte("a") + tonumber(s[k])) end
  input_texts[i], target_texts[i] = table.concat(s), "\t" .. table.concat(t) .. "\n"
end
local function charset(texts)
  local seen, list = {}, {}
  for _, s in ipairs(texts) do
    for c in s:gmatch(".") do
      if not seen[c] then seen[c] = true; list[#list + 1] = c end
    end
  end
  table.sort(list)
  local index = {}
  for i, c in ipairs(list) do index[c] = i - 1 end
  return list, index
end
local input_chars, input_index = charset(input_texts)
local target_chars, target_index = charset(target_texts)
local num_encoder_tokens, num_decoder_tokens = #input_chars, #target_chars
local max_encoder_seq_length, max_decoder_seq_length = 0, 0
for i = 1, num_samples do
  max_encoder_seq_length = math.max(max_encoder_seq_length, #input_texts[i])
  max_decoder_seq_length = math.max(max_decoder_seq_length, #target_texts[i])
end
print("Number of samples:", num_samples)
print("Number of unique input tokens:", num_encoder_tokens)
print("Number of unique output tokens:", num_decoder_tokens)
print("Max sequence length for inputs:", max_encoder_seq_length)
print("Max sequence length for outputs:", max_decoder_seq_length)

local function onehot_texts(texts, index, len, ntok, shift)
  local x = keras.tensor.zeros{#texts, len, ntok}
  for i, s in ipairs(texts) do
    for t = 1 + shift, #s do x:set(i, t - shift, index[s:sub(t, t)] + 1, 1) end
  end
  return x
end
local encoder_input_data = onehot_texts(input_texts, input_index, max_encoder_seq_length, num_encoder_tokens, 0)
local decoder_input_data = onehot_texts(target_texts, target_index, max_decoder_seq_length, num_decoder_tokens, 0)
-- the target is the decoder input one step ahead
local decoder_target_data = onehot_texts(target_texts, target_index, max_decoder_seq_length, num_decoder_tokens, 1)

-- training model
local encoder_inputs = keras.Input{shape = {keras.None, num_encoder_tokens}}
local encoder = L.LSTM(latent_dim, {return_state = true})
local _, state_h, state_c = table.unpack(encoder(encoder_inputs))
local encoder_states = {state_h, state_c}

local decoder_inputs = keras.Input{shape = {keras.None, num_decoder_tokens}}
local decoder_lstm = L.LSTM(latent_dim, {return_sequences = true, return_state = true})
local decoder_outputs = decoder_lstm(decoder_inputs, {initial_state = encoder_states})[1]
local decoder_dense = L.Dense(num_decoder_tokens, {activation = "softmax"})
decoder_outputs = decoder_dense(decoder_outputs)

local model = keras.Model({encoder_inputs, decoder_inputs}, decoder_outputs)
model:compile{optimizer = "rmsprop", loss = "categorical_crossentropy"}
local history = model:fit({encoder_input_data, decoder_input_data}, decoder_target_data,
                          {batch_size = batch_size, epochs = epochs, validation_split = 0.2})

-- inference models: the encoder's states, then the decoder one step at a time
local encoder_model = keras.Model(encoder_inputs, encoder_states)
local decoder_state_input_h = keras.Input{shape = {latent_dim}}
local decoder_state_input_c = keras.Input{shape = {latent_dim}}
local decoder_states_inputs = {decoder_state_input_h, decoder_state_input_c}
local outs = decoder_lstm(decoder_inputs, {initial_state = decoder_states_inputs})
local decoder_outputs2 = decoder_dense(outs[1])
local decoder_model = keras.Model({decoder_inputs, decoder_state_input_h, decoder_state_input_c},
                                  {decoder_outputs2, outs[2], outs[3]})

local function decode_sequence(input_seq)
  local states = encoder_model:predict(input_seq)
  local target_seq = keras.tensor.zeros{1, 1, num_decoder_tokens}
  target_seq:set(1, 1, target_index["\t"] + 1, 1)
  local decoded = {}
  while true do
    local o = decoder_model:predict({target_seq, states[1], states[2]})
    local best, p = 1, -1
    for k = 1, num_decoder_tokens do
      if o[1]:get(1, 1, k) > p then best, p = k, o[1]:get(1, 1, k) end
    end
    local c = target_chars[best]
    if c == "\n" or #decoded > max_decoder_seq_length then break end
    decoded[#decoded + 1] = c
    target_seq = keras.tensor.zeros{1, 1, num_decoder_tokens}
    target_seq:set(1, 1, best, 1)
    states = {o[2], o[3]}
  end
  return table.concat(decoded)
end

-- the decoder runs on inputs of length 1, the training batches had length
-- max_decoder_seq_length: the same layers over a None time axis
local right, shown = 0, quick and 3 or 20
for i = 1, shown do
  local s = input_texts[i]
  local decoded = decode_sequence(encoder_input_data:slice(i, i))
  local want = target_texts[i]:sub(2, -2)
  if decoded == want then right = right + 1 end
  print(string.format("Input sentence: %s  Decoded sentence: %s  (want %s)", s, decoded, want))
end
local h = history.history
assert(#h.loss == epochs and h.loss[#h.loss] < h.loss[1], "the loss falls")
if not quick then assert(right >= shown * 3 // 4, right .. " of " .. shown .. " decoded right") end
