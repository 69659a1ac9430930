#!/usr/bin/env python3
"""PyTorch reference timing for `dit-worker bench inception`: pytorch-fid's FID Inception-v3
(random weights, since only the architecture matters for speed), fp32, CPU, input at --size
resized to 299 inside as pytorch-fid does. Reports images/s (best of --iterations).
Needs torch, torchvision and pytorch-fid (comparisons only; not a project dependency).
"""
import argparse, time
import torch
import pytorch_fid.inception as fi

p = argparse.ArgumentParser()
p.add_argument("--batch", type=int, default=8)
p.add_argument("--threads", type=int, default=2)
p.add_argument("--size", type=int, default=299)
p.add_argument("--iterations", type=int, default=3)
a = p.parse_args()
torch.set_num_threads(a.threads)
torch.manual_seed(0)
# No download: hand the model its own (random) state dict instead of the 2015 weights.
fi.load_state_dict_from_url = lambda *args, **kw: None
_orig = torch.nn.Module.load_state_dict
torch.nn.Module.load_state_dict = lambda self, sd, *args, **kw: None if sd is None else _orig(self, sd, *args, **kw)
model = fi.InceptionV3([fi.InceptionV3.BLOCK_INDEX_BY_DIM[2048]], use_fid_inception=True).eval()
x = torch.rand(a.batch, 3, a.size, a.size)
with torch.inference_mode():
    model(x)
    best = min((lambda t0: (model(x), time.perf_counter() - t0)[1])(time.perf_counter()) for _ in range(a.iterations))
print(f"torch {torch.__version__} threads {torch.get_num_threads()} batch {a.batch} {a.size}px: "
      f"{a.batch / best:.2f} images/s")
