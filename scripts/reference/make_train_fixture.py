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

p = argparse.ArgumentParser()
p.add_argument("--dit-repo", required=True, help="a checkout of facebookresearch/DiT (models.py, diffusion/)")
p.add_argument("--out", required=True)
p.add_argument("--input-size", type=int, default=8)
p.add_argument("--patch-size", type=int, default=2)
p.add_argument("--in-channels", type=int, default=4)
p.add_argument("--hidden-size", type=int, default=64)
p.add_argument("--depth", type=int, default=2)
p.add_argument("--num-heads", type=int, default=4)
p.add_argument("--num-classes", type=int, default=10)
p.add_argument("--learn-sigma", action=argparse.BooleanOptionalAction, default=True)
p.add_argument("--predict-xstart", action="store_true", help="create_diffusion(predict_xstart=True): the MSE is against x0")
p.add_argument("--batch", type=int, default=4)
p.add_argument("--lr", type=float, default=1e-3)
p.add_argument("--weight-decay", type=float, default=0.0)
p.add_argument("--seed", type=int, default=0)
a = p.parse_args()

import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import dit_reference

DiT, create_diffusion = dit_reference.import_dit(a.dit_repo)
from safetensors.torch import save_file

torch.manual_seed(a.seed)
cfg = dict(input_size=a.input_size, patch_size=a.patch_size, in_channels=a.in_channels,
           hidden_size=a.hidden_size, depth=a.depth, num_heads=a.num_heads, mlp_ratio=4.0,
           class_dropout_prob=0.1, num_classes=a.num_classes, learn_sigma=a.learn_sigma)
model = DiT(**cfg)
with torch.no_grad():
    for name, t in model.state_dict().items():
        if name != "pos_embed":
            t.add_(0.05 * torch.randn_like(t))
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

os.makedirs(a.out, exist_ok=True)
before = {k: v.detach().clone().contiguous() for k, v in model.state_dict().items()}
save_file(before, os.path.join(a.out, "weights.safetensors"))
with open(os.path.join(a.out, "config.json"), "w") as f:
    # predict_xstart is an argument of create_diffusion, not of DiT; the project's config.json records it.
    json.dump({**cfg, **({"predict_xstart": True} if a.predict_xstart else {})}, f, indent=1)

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
