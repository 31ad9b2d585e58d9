-- A variational autoencoder (Keras's examples/variational_autoencoder.py, the
-- MLP version) on Fashion-MNIST: the encoder gives the mean and log-variance of
-- a 2-D latent code, a Lambda layer samples from it with K.random_normal over
-- K.shape(z_mean), and the loss (reconstruction + KL divergence) is attached to
-- the model with add_loss, so compile takes no loss and fit no targets.
--   lkeras scripts/examples/variational_autoencoder.lua   (LKERAS_QUICK=1: a tiny run)
local keras = keras or require "keras"
local K, L = keras.backend, keras.layers
local quick = os.getenv("LKERAS_QUICK")

keras.random.seed(7)
local n_train, n_test = quick and 2000 or 60000, quick and 500 or 10000
local x_train, _, x_test = keras.datasets.fashion_mnist.load_data()
local original_dim = 28 * 28
x_train = x_train:slice(1, n_train):reshape{n_train, original_dim} / 255
x_test = x_test:slice(1, n_test):reshape{n_test, original_dim} / 255

local intermediate_dim, batch_size, latent_dim = 512, 128, 2
local epochs = quick and 2 or 30

-- reparameterization trick: z = z_mean + sqrt(var) * eps, eps ~ N(0, I)
local function sampling(args)
  local z_mean, z_log_var = args[1], args[2]
  local batch = K.shape(z_mean)[1]
  local dim = K.int_shape(z_mean)[2]
  local epsilon = K.random_normal{batch, dim}
  return z_mean + K.exp(0.5 * z_log_var) * epsilon
end

-- encoder
local inputs = keras.Input{shape = {original_dim}, name = "encoder_input"}
local x = L.Dense(intermediate_dim, {activation = "relu"})(inputs)
local z_mean = L.Dense(latent_dim, {name = "z_mean"})(x)
local z_log_var = L.Dense(latent_dim, {name = "z_log_var"})(x)
local z = L.Lambda(sampling, {output_shape = {latent_dim}, name = "z"})({z_mean, z_log_var})
local encoder = keras.Model(inputs, {z_mean, z_log_var, z}, {name = "encoder"})
encoder:summary()

-- decoder
local latent_inputs = keras.Input{shape = {latent_dim}, name = "z_sampling"}
x = L.Dense(intermediate_dim, {activation = "relu"})(latent_inputs)
local outputs = L.Dense(original_dim, {activation = "sigmoid"})(x)
local decoder = keras.Model(latent_inputs, outputs, {name = "decoder"})
decoder:summary()

-- the VAE
outputs = decoder(encoder(inputs)[3])
local vae = keras.Model(inputs, outputs, {name = "vae_mlp"})

local reconstruction_loss = keras.losses.binary_crossentropy(inputs, outputs) * original_dim
local kl_loss = 1 + z_log_var - K.square(z_mean) - K.exp(z_log_var)
kl_loss = K.sum(kl_loss, -1) * -0.5
local vae_loss = K.mean(reconstruction_loss + kl_loss)
vae:add_loss(vae_loss)
vae:compile{optimizer = "adam"}
vae:summary()

local history = vae:fit(x_train, nil, {epochs = epochs, batch_size = batch_size,
                                       validation_data = {x_test, keras.None}})

-- what the example claims: the loss falls, and the decoder maps the latent
-- plane to images (784 values in (0, 1))
local h = history.history
print(string.format("loss %.2f -> %.2f, val_loss %.2f", h.loss[1], h.loss[#h.loss], h.val_loss[#h.val_loss]))
assert(#h.loss == epochs and #h.val_loss == epochs)
assert(h.loss[#h.loss] < h.loss[1], "the VAE loss falls")
assert(h.val_loss[#h.val_loss] == h.val_loss[#h.val_loss], "a finite validation loss")
assert(h.loss[#h.loss] < (quick and 400 or 270), "loss " .. h.loss[#h.loss])
local z_test = encoder:predict(x_test, {batch_size = batch_size})
assert(z_test[1].shape[1] == n_test and z_test[1].shape[2] == latent_dim)
local digit = decoder:predict(keras.tensor{{0.5, -0.5}})
assert(digit.shape[2] == original_dim and digit:min() > 0 and digit:max() < 1)
