-- Multi-input and multi-output models: predict how many retweets and likes a
-- news headline gets. The main input is the headline (a sequence of word ids)
-- read by an Embedding and an LSTM; an auxiliary input brings 5 extra
-- features; an auxiliary output on the LSTM regularizes training.
local keras = keras or require "keras"
local L = keras.layers
local quick = os.getenv("LKERAS_QUICK")
local check = dofile(arg[0]:match("^(.-)[^/]*$") .. "lib/check.lua")

-- headline input: sequences of 100 integers between 1 and 10000
local main_input = keras.Input{shape = {100}, dtype = "int32", name = "main_input"}
-- the Embedding encodes each word id as a dense 512-dimensional vector
local x = L.Embedding{output_dim = 512, input_dim = 10000, input_length = 100}(main_input)
-- an LSTM turns the sequence of vectors into one vector
local lstm_out = L.LSTM(32)(x)
local auxiliary_output = L.Dense{1, activation = "sigmoid", name = "aux_output"}(lstm_out)

local auxiliary_input = keras.Input{shape = {5}, name = "aux_input"}
x = L.concatenate{lstm_out, auxiliary_input}
-- a deep densely-connected network on top
x = L.Dense{64, activation = "relu"}(x)
x = L.Dense{64, activation = "relu"}(x)
x = L.Dense{64, activation = "relu"}(x)
-- and the main logistic regression layer
local main_output = L.Dense{1, activation = "sigmoid", name = "main_output"}(x)

local model = keras.Model{inputs = {main_input, auxiliary_input}, outputs = {main_output, auxiliary_output}}
model:compile{optimizer = "rmsprop", loss = "binary_crossentropy", loss_weights = {1.0, 0.2}}
model:summary()

local n = quick and 64 or 2000
local headline_data = keras.random.randint(1, 10000, {n, 100})
local additional_data = keras.random.random{n, 5}
local labels = keras.random.randint(2, {n, 1})
local epochs = quick and 1 or 5
local h1 = model:fit({headline_data, additional_data}, {labels, labels}, {epochs = epochs, batch_size = 32})

-- the same with the inputs and outputs named
model:compile{optimizer = "rmsprop",
              loss = {main_output = "binary_crossentropy", aux_output = "binary_crossentropy"},
              loss_weights = {main_output = 1.0, aux_output = 0.2}}
local h2 = model:fit({main_input = headline_data, aux_input = additional_data},
                     {main_output = labels, aux_output = labels},
                     {epochs = epochs, batch_size = 32})
print("metrics:", table.concat(model.metrics_names, ", "))

-- what the example claims: two outputs, each with its loss, weighted 1 and 0.2 into the loss trained;
-- the same with positional and with named inputs and outputs
check.names(model.metrics_names, {"loss", "main_output_loss", "aux_output_loss"}, "the metrics' names")
for _, h in ipairs{h1, h2} do
  local total, main, aux = check.epochs(h, epochs), check.epochs(h, epochs, "main_output_loss"),
                           check.epochs(h, epochs, "aux_output_loss")
  for e = 1, epochs do
    check.between(total[e] - (main[e] + 0.2 * aux[e]), -1e-4 * total[e], 1e-4 * total[e],
                  "loss - (main_output_loss + 0.2 aux_output_loss)")
  end
end
local main_pred, aux_pred = table.unpack(model:predict({headline_data, additional_data}))
check.shape(main_pred.shape, {n, 1}, "the main output's predictions")
check.shape(aux_pred.shape, {n, 1}, "the auxiliary output's predictions")
