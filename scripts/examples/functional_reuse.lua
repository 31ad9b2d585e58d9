-- All models are callable, just like layers: reuse a trained model on a new
-- input (its weights are shared), and turn an image classifier into a video
-- classifier with TimeDistributed (the model runs on each of 20 frames).
local keras = keras or require "keras"
local L = keras.layers
local quick = os.getenv("LKERAS_QUICK")

local inputs = keras.Input{shape = {784}}
local h = L.Dense{64, activation = "relu"}(inputs)
h = L.Dense{64, activation = "relu"}(h)
local predictions = L.Dense{10, activation = "softmax"}(h)
local model = keras.Model{inputs = inputs, outputs = predictions}
model:compile{optimizer = "rmsprop", loss = "categorical_crossentropy", metrics = {"accuracy"}}
local n = quick and 256 or 2048
model:fit(keras.random.random{n, 784}, keras.utils.to_categorical(keras.random.randint(10, {n, 1}), 10),
          {epochs = 1, batch_size = 32, verbose = 0})

-- calling the model on a new input reuses its architecture and its weights
local x = keras.Input{shape = {784}}
local y = model(x)
local same = keras.Model{inputs = x, outputs = y}
local probe = keras.random.random{4, 784}
local a, b = model:predict(probe), same:predict(probe)
assert((a - b):abs():max() == 0, "a reused model predicts the same")
print("reused model: same weights, same predictions")

-- input tensor for sequences of 20 timesteps, each a 784-dimensional vector
local input_sequences = keras.Input{shape = {20, 784}}
-- this applies our previous model to every timestep of the input sequences:
-- the output is a sequence of 20 vectors of size 10
local processed_sequences = L.TimeDistributed(model)(input_sequences)
local video = keras.Model{inputs = input_sequences, outputs = processed_sequences}
video:summary()
local clips = keras.random.random{3, 20, 784}
local per_frame = video:predict(clips)
print("video model output shape:", table.concat(per_frame.shape, "x"))
local frame = model:predict(clips[2])
assert(math.abs(per_frame:get(2, 7, 3) - frame:get(7, 3)) < 1e-6, "TimeDistributed runs the model per frame")
