-- A variational autoencoder, after Keras's examples/variational_autoencoder.py
-- (its Keras 2.0 form: the KL term in a custom loss rather than add_loss).
-- The sampling layer is the example's Lambda: z = z_mean + exp(z_log_var / 2)
-- * K.random_normal(K.shape(z_mean)), drawn anew for every batch. Data: 2-D
-- points on a noisy ring in 16 dimensions (random projections), so the script
-- needs no download; LKERAS_QUICK=1 trains for 2 epochs.
local keras = keras or require "keras"
local K = keras.backend
local L = keras.layers

keras.random.seed(7)
local quick = os.getenv("LKERAS_QUICK") == "1"
local n, original_dim, intermediate_dim, latent_dim = 2048, 16, 32, 2

-- data in [0, 1]: sigmoid of a random projection of points on a ring
local angle = keras.random.uniform({n, 1}, 0, 2 * math.pi)
local ring = keras.tensor.concat({K.cos(angle), K.sin(angle)}, 1)
local x = K.sigmoid(K.dot(ring + keras.random.normal({n, 2}, 0, 0.05), keras.random.normal({2, original_dim})))

local inputs = keras.Input{shape = {original_dim}}
local h = L.Dense(intermediate_dim, {activation = "relu"})(inputs)
local z_mean = L.Dense(latent_dim, {name = "z_mean"})(h)
local z_log_var = L.Dense(latent_dim, {name = "z_log_var"})(h)

-- the reparameterization trick: a new epsilon ~ N(0, 1) for every sample of every batch
local function sampling(args)
  local mean, log_var = args[1], args[2]
  local epsilon = K.random_normal(K.shape(mean))
  return K.add(mean, K.mul(K.exp(K.mul(log_var, 0.5)), epsilon))
end
local z = L.Lambda(sampling, {output_shape = {latent_dim}, name = "z"})({z_mean, z_log_var})
local decoded = L.Dense(original_dim, {activation = "sigmoid"})(L.Dense(intermediate_dim, {activation = "relu"})(z))
local vae = keras.Model{inputs = inputs, outputs = decoded}

local function vae_loss(y_true, y_pred)
  local xent = K.sum(K.binary_crossentropy(y_true, y_pred), -1)   -- original_dim * the mean
  local kl = K.mul(K.sum(K.sub(K.sub(K.add(z_log_var, 1), K.square(z_mean)), K.exp(z_log_var)), -1), -0.5)
  return K.add(xent, kl)
end
vae:compile{optimizer = "adam", loss = vae_loss}
local hist = vae:fit(x, x, {epochs = quick and 2 or 30, batch_size = 64, verbose = 0})
local losses = hist.history.loss
-- the reconstruction term cannot go below the data's own entropy
local floor = K.mean(K.sum(K.binary_crossentropy(x, x), -1))
floor = type(floor) == "number" and floor or floor:totable()
print(string.format("loss: first epoch %.4f, last epoch %.4f (the data's entropy, a floor: %.4f)", losses[1],
  losses[#losses], floor))
assert(losses[#losses] < losses[1], "the VAE did not learn")

-- the encoder maps the data to the latent means; the sampling makes two
-- predictions of the whole VAE differ
local encoder = keras.Model{inputs = inputs, outputs = z_mean}
print("latent means of 3 samples:")
print(encoder:predict(x:slice(1, 3)))
local a, b = vae:predict(x:slice(1, 8)), vae:predict(x:slice(1, 8))
local d = (a - b):abs():sum()
d = type(d) == "number" and d or d:totable()
assert(d > 0, "the sampling layer drew the same noise twice")
print("two predictions differ by sampling: ok")
