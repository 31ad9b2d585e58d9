#!/usr/bin/python3
"""PyTorch twin of lkeras's multi_io benchmark: the two-input two-output
headline model (Embedding(10000, 512) + LSTM(32) on 100 word ids, an auxiliary
input of 5 features concatenated, three Dense(64) ReLU, sigmoid main output,
sigmoid auxiliary output on the LSTM), RMSprop (Keras defaults), binary
crossentropy with loss weights 1.0 and 0.2, batch 32, 2000 samples.

Same command line, timing rules and JSON keys as the shared peer
(../shared/bench/peers/torch_seed.py): the first epoch is a warm-up; training
includes shuffling and batching; predict runs over the whole set at the
training batch size with the sigmoids applied, 1 warm-up + 3 timed passes.
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


class Headline(nn.Module):
    def __init__(self):
        super().__init__()
        self.embed = nn.Embedding(10000, 512)
        self.lstm = nn.LSTM(512, 32, batch_first=True)
        self.aux_out = nn.Linear(32, 1)
        self.d1 = nn.Linear(32 + 5, 64)
        self.d2 = nn.Linear(64, 64)
        self.d3 = nn.Linear(64, 64)
        self.main_out = nn.Linear(64, 1)

    def forward(self, ids, aux):
        h, _ = self.lstm(self.embed(ids))
        last = h[:, -1, :]
        x = torch.cat([last, aux], dim=1)
        x = F.relu(self.d1(x))
        x = F.relu(self.d2(x))
        x = F.relu(self.d3(x))
        return self.main_out(x), self.aux_out(last)   # logits


def keras_init(model):
    for m in model.modules():
        if isinstance(m, nn.Linear):
            nn.init.xavier_uniform_(m.weight)
            nn.init.zeros_(m.bias)
        if isinstance(m, nn.Embedding):
            nn.init.uniform_(m.weight, -0.05, 0.05)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("workload", choices=["multi_io"])
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--samples", type=int, default=2000)
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
    n, batch = a.samples, a.batch
    ids = torch.from_numpy(rng.randint(10000, size=(n, 100)).astype(np.int64))
    aux = torch.from_numpy(rng.random_sample((n, 5)).astype(np.float32))
    y = torch.from_numpy(rng.randint(2, size=(n, 1)).astype(np.float32))
    model = Headline()
    keras_init(model)
    opt = torch.optim.RMSprop(model.parameters(), lr=0.001, alpha=0.9, eps=1e-7)
    n_params = sum(p.numel() for p in model.parameters())

    epoch_times, losses = [], []
    for ep in range(a.epochs):
        model.train()
        t0 = time.perf_counter()
        perm = torch.randperm(n)
        tot = 0.0
        for i in range(0, n, batch):
            idx = perm[i:i + batch]
            main, side = model(ids[idx], aux[idx])
            yb = y[idx]
            loss = (F.binary_cross_entropy_with_logits(main, yb)
                    + 0.2 * F.binary_cross_entropy_with_logits(side, yb))
            opt.zero_grad(set_to_none=True)
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
            outs = []
            for i in range(0, n, batch):
                main, side = model(ids[i:i + batch], aux[i:i + batch])
                outs.append((torch.sigmoid(main), torch.sigmoid(side)))
            torch.cat([o[0] for o in outs])
            torch.cat([o[1] for o in outs])
            infer_times.append(time.perf_counter() - t0)
    infer_sps = n / statistics.median(infer_times[1:])

    res = {
        "workload": a.workload, "framework": "torch-" + torch.__version__, "threads": torch.get_num_threads(),
        "channels_last": False, "default_threads": default_threads,
        "OPENBLAS_CORETYPE": os.environ.get("OPENBLAS_CORETYPE", ""), "samples": n, "batch": batch,
        "epochs_timed": len(timed), "params": n_params, "train_samples_per_s": round(train_sps, 1),
        "train_ms_per_step": round(1000 * sum(timed) / (len(timed) * -(-n // batch)), 3),
        "epoch_s": [round(t, 4) for t in epoch_times], "infer_samples_per_s": round(infer_sps, 1),
        "infer_pass_s": [round(t, 4) for t in infer_times], "final_loss": round(losses[-1], 5),
        "maxrss_mb_end": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1),
        "wall_s": round(time.perf_counter() - t_start, 2),
    }
    print(f"multi_io: train {train_sps:,.0f} samples/s, infer {infer_sps:,.0f} samples/s, params {n_params:,}",
          file=sys.stderr)
    print("JSON " + json.dumps(res), flush=True)


if __name__ == "__main__":
    main()
