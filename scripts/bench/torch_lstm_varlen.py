#!/usr/bin/python3
"""PyTorch twin of lkeras's lstm_varlen and lstm_fixedlen benchmarks: the
embed_lstm text classifier (Embedding(20000, 256), LSTM(128) keeping the last
step, Dropout(0.5), Dense(1) with a sigmoid; RMSprop with Keras's defaults;
binary crossentropy; batch 32) on word-id sequences of several lengths.

  lstm_varlen:   the samples in 8 length buckets (10, 20, ..., 80 steps, an
                 equal share each); every batch holds one bucket's samples,
                 at that bucket's length (no padding, no packing).
  lstm_fixedlen: the same number of samples at the buckets' mean length, 45:
                 the same total timesteps and the same number of batches.

Every epoch shuffles each bucket's samples and then the order of all the
batches. Same command line, timing rules and JSON keys as the shared peer
(../shared/bench/peers/torch_seed.py): the first epoch is a warm-up; training
includes shuffling and batching; predict runs over every bucket at the
training batch size with the sigmoid applied, 1 warm-up + 3 timed passes,
median. Also reported: train_timesteps_per_s and infer_timesteps_per_s
(samples * timesteps per second), the figure the two workloads compare.
Run with Debian's /usr/bin/python3 (python3-torch).
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

BUCKETS = [10, 20, 30, 40, 50, 60, 70, 80]
FIXED = 45


class EmbedLSTM(nn.Module):
    def __init__(self):
        super().__init__()
        self.embed = nn.Embedding(20000, 256)
        self.lstm = nn.LSTM(256, 128, batch_first=True)
        self.drop = nn.Dropout(0.5)
        self.out = nn.Linear(128, 1)

    def forward(self, ids):
        h, _ = self.lstm(self.embed(ids))
        return self.out(self.drop(h[:, -1, :]))   # logits


def keras_init(model):
    """Keras's defaults: glorot_uniform kernels, zero biases, uniform(-0.05, 0.05) embeddings."""
    for m in model.modules():
        if isinstance(m, nn.Linear):
            nn.init.xavier_uniform_(m.weight)
            nn.init.zeros_(m.bias)
        if isinstance(m, nn.Embedding):
            nn.init.uniform_(m.weight, -0.05, 0.05)


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
    ap.add_argument("workload", choices=["lstm_varlen", "lstm_fixedlen"])
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--samples", type=int, default=2048)
    ap.add_argument("--batch", type=int, default=32)
    ap.add_argument("--epochs", type=int, default=4, help="including the warm-up epoch")
    ap.add_argument("--infer-passes", type=int, default=3)
    ap.add_argument("--seed", type=int, default=0)
    a = ap.parse_args()

    t_start = time.perf_counter()
    default_threads = torch.get_num_threads()
    torch.set_num_threads(a.threads)
    torch.manual_seed(a.seed)
    rng = np.random.RandomState(a.seed)
    batch = a.batch
    per = max(a.samples // len(BUCKETS), 1)
    lengths = BUCKETS if a.workload == "lstm_varlen" else [FIXED]
    count = per if a.workload == "lstm_varlen" else per * len(BUCKETS)
    buckets = []
    for T in lengths:
        ids = torch.from_numpy(rng.randint(20000, size=(count, T)).astype(np.int64))
        y = torch.from_numpy(rng.randint(2, size=(count, 1)).astype(np.float32))
        buckets.append((ids, y))
    n = sum(b[0].shape[0] for b in buckets)
    timesteps = sum(b[0].shape[0] * b[0].shape[1] for b in buckets)
    steps = sum(-(-b[0].shape[0] // batch) for b in buckets)
    model = EmbedLSTM()
    keras_init(model)
    opt = torch.optim.RMSprop(model.parameters(), lr=0.001, alpha=0.9, eps=1e-7)
    n_params = sum(p.numel() for p in model.parameters())
    rss_before_train = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024

    epoch_times, losses = [], []
    for ep in range(a.epochs):
        model.train()
        t0 = time.perf_counter()
        batches = []
        for ids, y in buckets:
            perm = torch.randperm(ids.shape[0])
            for i in range(0, ids.shape[0], batch):
                idx = perm[i:i + batch]
                batches.append((ids[idx], y[idx]))
        tot = 0.0
        for k in torch.randperm(len(batches)).tolist():
            xb, yb = batches[k]
            opt.zero_grad(set_to_none=True)
            loss = F.binary_cross_entropy_with_logits(model(xb), yb)
            loss.backward()
            opt.step()
            tot += loss.item() * xb.shape[0]
        epoch_times.append(time.perf_counter() - t0)
        losses.append(tot / n)
    timed = epoch_times[1:]
    train_sps = n * len(timed) / sum(timed)

    model.eval()
    infer_times = []
    with torch.no_grad():
        for p in range(a.infer_passes + 1):
            t0 = time.perf_counter()
            for ids, _ in buckets:
                outs = [torch.sigmoid(model(ids[i:i + batch])) for i in range(0, ids.shape[0], batch)]
                torch.cat(outs)
            infer_times.append(time.perf_counter() - t0)
    infer_median = statistics.median(infer_times[1:])
    infer_sps = n / infer_median

    res = {
        "workload": a.workload, "framework": "torch-" + torch.__version__, "threads": torch.get_num_threads(),
        "channels_last": False, "default_threads": default_threads,
        "OPENBLAS_CORETYPE": os.environ.get("OPENBLAS_CORETYPE", ""), "blas_core": blas_core(),
        "cpu": next((l.split(":", 1)[1].strip() for l in open("/proc/cpuinfo") if l.startswith("model name")), ""),
        "samples": n, "batch": batch, "epochs_timed": len(timed), "params": n_params,
        "train_samples_per_s": round(train_sps, 1),
        "train_ms_per_step": round(1000 * sum(timed) / (len(timed) * steps), 3),
        "epoch_s": [round(t, 4) for t in epoch_times], "infer_samples_per_s": round(infer_sps, 1),
        "infer_pass_s": [round(t, 4) for t in infer_times], "final_loss": round(losses[-1], 5),
        "train_timesteps_per_s": round(timesteps * len(timed) / sum(timed), 1),
        "infer_timesteps_per_s": round(timesteps / infer_median, 1),
        "data_mb": round(sum(b[0].numel() * 8 + b[1].numel() * 4 for b in buckets) / 2**20, 1),
        "maxrss_mb_before_train": round(rss_before_train, 1),
        "maxrss_mb_end": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1),
        "wall_s": round(time.perf_counter() - t_start, 2),
    }
    print(f"{a.workload}: train {train_sps:,.0f} samples/s "
          f"({res['train_timesteps_per_s']:,.0f} timesteps/s), infer {infer_sps:,.0f} samples/s, "
          f"params {n_params:,}, loss {losses[0]:.4f}->{losses[-1]:.4f}", file=sys.stderr)
    print("JSON " + json.dumps(res), flush=True)


if __name__ == "__main__":
    main()
