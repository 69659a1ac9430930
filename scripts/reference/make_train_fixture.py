#!/usr/bin/env python3
"""Reference fixture for `dit-worker eval train` (one DiT training step), any configuration.

Runs facebookresearch/DiT's own code (models.py, diffusion/) with PyTorch on CPU:
  model = DiT(...), diffusion = create_diffusion(timestep_respacing="", learn_sigma=..., predict_xstart=...)
  loss = training_losses(model, x0, t, dict(y=y), noise)["loss"].mean()
  loss.backward(); torch.optim.AdamW(lr, weight_decay).step()
and writes, in OUT:
  config.json          DiT's constructor arguments
  weights.safetensors  the state dict before the step (reference key names)
  io.safetensors       x0, t, noise, y -> loss (batch mean), mse[, vb] (per sample),
                       grad.<param> (every trainable parameter), after.<param> (every
                       state-dict tensor after the AdamW step); metadata lr, weight_decay,
                       betas, eps, learn_sigma and the weights file name
The layout of shared/fixtures/train/tiny, plus the model's own weights and config, so that
`TrainStepEval.run(weights: OUT/weights.safetensors, inputs: OUT/io.safetensors)` reproduces it.

DiT's initialisation zeroes adaLN and the final layer (every gradient but the final layer's
would be zero), so every tensor except the frozen pos_embed is perturbed by N(0, 0.05²).

Usage (not used by the project or its tests; generates data for the lead to place in shared/):
  python3 -m venv /tmp/ptv && /tmp/ptv/bin/pip install torch numpy safetensors && /tmp/ptv/bin/pip install --no-deps timm
  /tmp/ptv/bin/python3 scripts/reference/make_train_fixture.py --dit-repo /path/to/DiT \\
      --out /tmp/fixtures/train/tiny-mse --no-learn-sigma
"""
import argparse, json, os, sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import dit_reference

p = argparse.ArgumentParser()
dit_reference.add_model_arguments(p, hidden_size=64)
p.add_argument("--batch", type=int, default=4)
p.add_argument("--lr", type=float, default=1e-3)
p.add_argument("--weight-decay", type=float, default=0.0)
a = p.parse_args()

import torch

DiT, create_diffusion = dit_reference.import_dit(a.dit_repo)
from safetensors.torch import save_file

model, cfg = dit_reference.perturbed_model(DiT, a)
model.train()
# The training loop drops labels before the call; the fixture gives the labels as used
# (the null class num_classes among them) and the model applies no dropout of its own.
model.y_embedder.dropout_prob = 0.0

n, c, s = a.batch, a.in_channels, a.input_size
x0 = torch.randn(n, c, s, s).clamp(-1, 1)
noise = torch.randn(n, c, s, s)
t = torch.tensor([0, 1, 500, 999] + [int(v) for v in torch.randint(0, 1000, (max(0, n - 4),))])[:n]
y = torch.tensor([i % (a.num_classes + 1) for i in range(n)])[:n]
y[-1] = a.num_classes  # the dropped (null) label

dit_reference.save_model(model, cfg, a)  # the state before the step

diffusion = create_diffusion(timestep_respacing="", learn_sigma=a.learn_sigma, predict_xstart=a.predict_xstart)
opt = torch.optim.AdamW(model.parameters(), lr=a.lr, weight_decay=a.weight_decay)
opt.zero_grad()
terms = diffusion.training_losses(model, x0, t, dict(y=y), noise)
loss = terms["loss"].mean()
loss.backward()
io = {"x0": x0, "t": t, "noise": noise, "y": y, "loss": loss.detach().reshape(1),
      "mse": terms["mse"].detach()}
if "vb" in terms:
    io["vb"] = terms["vb"].detach()
for name, prm in model.named_parameters():
    if prm.requires_grad:
        io["grad." + name] = prm.grad.detach().clone()
opt.step()
for k, v in model.state_dict().items():
    io["after." + k] = v.detach().clone()
g = opt.param_groups[0]
meta = {"lr": str(a.lr), "weight_decay": str(a.weight_decay), "betas": str(tuple(g["betas"])), "eps": str(g["eps"]),
        "learn_sigma": str(a.learn_sigma), "predict_xstart": str(a.predict_xstart), "weights": "weights.safetensors",
        "note": "loss = mean over the batch of ADM training_losses (mse + vb when learn_sigma, mse alone otherwise); one torch.optim.AdamW step; "
                f"torch {torch.__version__}"}
save_file({k: v.contiguous() for k, v in io.items()}, os.path.join(a.out, "io.safetensors"), metadata=meta)
print(f"{a.out}: loss {loss.item():.6f}, {sum(1 for k in io if k.startswith('grad.'))} gradients, learn_sigma={a.learn_sigma}")
