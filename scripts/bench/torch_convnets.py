#!/usr/bin/python3
"""PyTorch twin of lkeras's conv_autoencoder, separable_cnn and conv3d benchmarks
(scripts/bench/bench.lua), the same networks, data sizes, batch sizes and
optimizers:

  conv_autoencoder: a denoising autoencoder on 28x28x1 images: Conv2d(32, 3,
      stride 2) and Conv2d(64, 3, stride 2) to 7x7x64, ConvTranspose2d(64, 3,
      stride 2) and ConvTranspose2d(32, 3, stride 2) back to 28x28 (Keras's
      padding "same": 1 and output_padding 1), Conv2d(1, 3) with a sigmoid;
      ReLU between; mean squared error; Adam (lr 0.001, Keras's epsilon 1e-7);
      batch 128, 2000 samples (noisy images in, clean images out).
  separable_cnn: a small MobileNet-style classifier on 32x32x3 images:
      Conv2d(32, 3, stride 2); separable convolutions (a depthwise 3x3
      convolution without bias, then a 1x1 convolution with bias, as Keras's
      SeparableConv2D) to 64 and to 128 with stride 2; a depthwise 3x3
      convolution with bias (DepthwiseConv2D) and a 1x1 Conv2d(128); a separable
      convolution to 256 with stride 2; ReLU after each; global average pooling;
      Linear(10) with a softmax; RMSprop (lr 0.001, rho 0.9, epsilon 1e-7);
      categorical crossentropy; batch 32, 2000 samples.
  conv3d: a small volumetric classifier on 16x16x16x1 volumes: Conv3d(16, 3)
      with a ReLU, MaxPool3d(2), Conv3d(32, 3) with a ReLU, Linear(10) with a
      softmax; categorical crossentropy; Adam (lr 0.001, epsilon 1e-7); batch
      32, 512 samples. --channels-last: torch's channels_last_3d (NDHWC).

Same command line, timing rules and JSON keys as the shared peer
(../shared/bench/peers/torch_seed.py): the first epoch is a warm-up; training
includes shuffling and batching; predict runs over the whole set at the
training batch size with the output activation applied, 1 warm-up + 3 timed
passes, median. --channels-last runs the convolutions in torch's NHWC memory
format. Run with Debian's /usr/bin/python3 (python3-torch).
"""
import argparse
import json
import os
import resource
import statistics
import sys
import time

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

DEFAULTS = {"conv_autoencoder": (2000, 128, 4), "separable_cnn": (2000, 32, 4), "conv3d": (512, 32, 4)}


class ConvAutoencoder(nn.Module):
    def __init__(self):
        super().__init__()
        self.e1 = nn.Conv2d(1, 32, 3, stride=2, padding=1)
        self.e2 = nn.Conv2d(32, 64, 3, stride=2, padding=1)
        self.d1 = nn.ConvTranspose2d(64, 64, 3, stride=2, padding=1, output_padding=1)
        self.d2 = nn.ConvTranspose2d(64, 32, 3, stride=2, padding=1, output_padding=1)
        self.out = nn.Conv2d(32, 1, 3, padding=1)

    def forward(self, x):
        x = F.relu(self.e1(x))
        x = F.relu(self.e2(x))
        x = F.relu(self.d1(x))
        x = F.relu(self.d2(x))
        return torch.sigmoid(self.out(x))


class Separable(nn.Module):
    """Keras's SeparableConv2D: depthwise (no bias), then pointwise with the bias."""
    def __init__(self, cin, cout, stride=1):
        super().__init__()
        self.depthwise = nn.Conv2d(cin, cin, 3, stride=stride, padding=1, groups=cin, bias=False)
        self.pointwise = nn.Conv2d(cin, cout, 1)

    def forward(self, x):
        return self.pointwise(self.depthwise(x))


class SeparableCNN(nn.Module):
    def __init__(self):
        super().__init__()
        self.stem = nn.Conv2d(3, 32, 3, stride=2, padding=1)
        self.s1 = Separable(32, 64)
        self.s2 = Separable(64, 128, stride=2)
        self.dw = nn.Conv2d(128, 128, 3, padding=1, groups=128)
        self.pw = nn.Conv2d(128, 128, 1)
        self.s3 = Separable(128, 256, stride=2)
        self.fc = nn.Linear(256, 10)

    def forward(self, x):
        for m in (self.stem, self.s1, self.s2, self.dw, self.pw, self.s3):
            x = F.relu(m(x))
        return self.fc(x.mean(dim=(2, 3)))   # logits


class Conv3DNet(nn.Module):
    def __init__(self):
        super().__init__()
        self.c1 = nn.Conv3d(1, 16, 3)
        self.c2 = nn.Conv3d(16, 32, 3)
        self.fc = nn.Linear(32 * 5 * 5 * 5, 10)

    def forward(self, x):
        x = F.max_pool3d(F.relu(self.c1(x)), 2)
        x = F.relu(self.c2(x))
        return self.fc(torch.flatten(x, 1))   # logits


def keras_init(model):
    """Keras's defaults: glorot_uniform kernels (depthwise and pointwise too), zero biases."""
    for m in model.modules():
        if isinstance(m, (nn.Linear, nn.Conv2d, nn.ConvTranspose2d, nn.Conv3d)):
            nn.init.xavier_uniform_(m.weight)
            if m.bias is not None:
                nn.init.zeros_(m.bias)


def blas_core():
    """The kernel set OpenBLAS runs in this process ('' if torch did not load OpenBLAS)."""
    import ctypes
    try:
        with open("/proc/self/maps") as f:
            paths = {l.split()[-1] for l in f if "openblas" in l and l.split()[-1].startswith("/")}
        for p in sorted(paths):
            lib = ctypes.CDLL(p)
            if hasattr(lib, "openblas_get_corename"):
                lib.openblas_get_corename.restype = ctypes.c_char_p
                return lib.openblas_get_corename().decode()
    except OSError:
        pass
    return ""


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("workload", choices=sorted(DEFAULTS))
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--samples", type=int)
    ap.add_argument("--batch", type=int)
    ap.add_argument("--epochs", type=int, help="including the warm-up epoch")
    ap.add_argument("--infer-passes", type=int, default=3)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--channels-last", action="store_true")
    a = ap.parse_args()
    d_samples, d_batch, d_epochs = DEFAULTS[a.workload]
    n = a.samples or d_samples
    batch = a.batch or d_batch
    epochs = a.epochs or d_epochs
    if epochs < 2:
        ap.error("--epochs counts the warm-up epoch: it must be >= 2")

    t_start = time.perf_counter()
    default_threads = torch.get_num_threads()
    torch.set_num_threads(a.threads)
    torch.manual_seed(a.seed)
    rng = np.random.RandomState(a.seed)
    fmt = torch.channels_last if a.channels_last else torch.contiguous_format
    if a.channels_last and a.workload == "conv3d":
        fmt = torch.channels_last_3d
    if a.workload == "conv_autoencoder":
        clean = rng.random_sample((n, 1, 28, 28)).astype(np.float32)
        noisy = np.clip(clean + rng.normal(0, 0.5, clean.shape).astype(np.float32), 0, 1)
        x = torch.from_numpy(noisy).contiguous(memory_format=fmt)
        y = torch.from_numpy(clean).contiguous(memory_format=fmt)
        model = ConvAutoencoder()
        keras_init(model)
        opt = torch.optim.Adam(model.parameters(), lr=0.001, eps=1e-7)

        def loss_fn(out, yb):
            return F.mse_loss(out, yb)

        def infer(xb):
            return model(xb)
    elif a.workload == "conv3d":
        x = torch.from_numpy(rng.random_sample((n, 1, 16, 16, 16)).astype(np.float32)).contiguous(memory_format=fmt)
        y = torch.from_numpy(rng.randint(10, size=n).astype(np.int64))
        model = Conv3DNet()
        keras_init(model)
        opt = torch.optim.Adam(model.parameters(), lr=0.001, eps=1e-7)

        def loss_fn(out, yb):
            return F.cross_entropy(out, yb)

        def infer(xb):
            return torch.softmax(model(xb), dim=1)
    else:
        x = torch.from_numpy(rng.random_sample((n, 3, 32, 32)).astype(np.float32)).contiguous(memory_format=fmt)
        y = torch.from_numpy(rng.randint(10, size=n).astype(np.int64))
        model = SeparableCNN()
        keras_init(model)
        opt = torch.optim.RMSprop(model.parameters(), lr=0.001, alpha=0.9, eps=1e-7)

        def loss_fn(out, yb):
            return F.cross_entropy(out, yb)

        def infer(xb):
            return torch.softmax(model(xb), dim=1)
    model = model.to(memory_format=fmt)
    n_params = sum(p.numel() for p in model.parameters())
    rss_before_train = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024

    epoch_times, losses = [], []
    for ep in range(epochs):
        model.train()
        t0 = time.perf_counter()
        perm = torch.randperm(n)
        tot = 0.0
        for i in range(0, n, batch):
            idx = perm[i:i + batch]
            xb = x[idx].contiguous(memory_format=fmt)
            opt.zero_grad(set_to_none=True)
            loss = loss_fn(model(xb), y[idx])
            loss.backward()
            opt.step()
            tot += loss.item() * len(idx)
        epoch_times.append(time.perf_counter() - t0)
        losses.append(tot / n)
    timed = epoch_times[1:]
    train_sps = n * len(timed) / sum(timed)

    model.eval()
    infer_times = []
    with torch.no_grad():
        for p in range(a.infer_passes + 1):
            t0 = time.perf_counter()
            torch.cat([infer(x[i:i + batch]) for i in range(0, n, batch)])
            infer_times.append(time.perf_counter() - t0)
    infer_sps = n / statistics.median(infer_times[1:])

    res = {
        "workload": a.workload, "framework": "torch-" + torch.__version__, "threads": torch.get_num_threads(),
        "channels_last": a.channels_last, "default_threads": default_threads,
        "OPENBLAS_CORETYPE": os.environ.get("OPENBLAS_CORETYPE", ""), "blas_core": blas_core(),
        "cpu": next((l.split(":", 1)[1].strip() for l in open("/proc/cpuinfo") if l.startswith("model name")), ""),
        "samples": n, "batch": batch, "epochs_timed": len(timed), "params": n_params,
        "train_samples_per_s": round(train_sps, 1),
        "train_ms_per_step": round(1000 * sum(timed) / (len(timed) * -(-n // batch)), 3),
        "epoch_s": [round(t, 4) for t in epoch_times], "infer_samples_per_s": round(infer_sps, 1),
        "infer_pass_s": [round(t, 4) for t in infer_times], "final_loss": round(losses[-1], 5),
        "data_mb": round((x.numel() * 4 + y.numel() * y.element_size()) / 2**20, 1),
        "maxrss_mb_before_train": round(rss_before_train, 1),
        "maxrss_mb_end": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1),
        "wall_s": round(time.perf_counter() - t_start, 2),
    }
    print(f"{a.workload}: train {train_sps:,.0f} samples/s, infer {infer_sps:,.0f} samples/s, "
          f"params {n_params:,}, loss {losses[0]:.4f}->{losses[-1]:.4f}", file=sys.stderr)
    print("JSON " + json.dumps(res), flush=True)


if __name__ == "__main__":
    main()
