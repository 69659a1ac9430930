#!/usr/bin/env python3
"""Diagnosis of a pixel-space DiT with facebookresearch/DiT's own code (PyTorch, CPU): is a bad
model the weights' fault or the Swift port's? Not used by the project or its tests.

  sample   sample a safetensors DiT with DiT's own DDIM/DDPM loop (clip_denoised=a.clip_denoised, as
           sample.py; --clip-denoised clamps x0 as ADM does for pixels) into OUT/NNNNNN.png + labels.npy, the layout `dit-worker eval classify
           --samples OUT` and `dit-worker grid` read: compare with `dit-worker sample`.
  denoise  noise real images to t (q_sample) and write a PNG grid, one row per image: the image,
           then (x_t, predicted x0) per t; prints per t the eps MSE with the true label, a wrong
           label (y+1 mod K) and the null label: a model that uses its label has a clear gap
           between "true" and "wrong" at mid-to-high t.
  train    DiT's train.py loop (AdamW, EMA, label dropout inside the model, uniform t, grad clip,
           linear warm-up) on an ImageFolder, writing OUT/ema.safetensors + config.json: the
           reference's learning speed for a recipe, to set against `dit-worker train`.

  python3 -m venv /tmp/ptv && /tmp/ptv/bin/pip install torch numpy safetensors pillow && /tmp/ptv/bin/pip install --no-deps timm
  P=/tmp/ptv/bin/python3; R=scripts/reference/diagnose_dit.py; D=/path/to/DiT
  $P $R sample  --dit-repo $D --weights models/shapes-dit/ema.safetensors --out /tmp/ref-samples --n 16
  $P $R denoise --dit-repo $D --weights models/shapes-dit/ema.safetensors --data real --out /tmp/x0.png
  $P $R train   --dit-repo $D --data tiny8 --out /tmp/ref-overfit --steps 4000 --batch 8 --hidden 64 --depth 2
"""
import argparse, copy, json, os, sys, time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import dit_reference as ref

p = argparse.ArgumentParser()
p.add_argument("command", choices=["sample", "denoise", "train"])
p.add_argument("--dit-repo", required=True, help="a checkout of facebookresearch/DiT (models.py, diffusion/)")
p.add_argument("--weights", help="sample, denoise: DiT safetensors (reference key names)")
p.add_argument("--config", help="sample, denoise: config.json (default: beside the weights)")
p.add_argument("--data", help="denoise, train: an ImageFolder root of 32 px PNGs")
p.add_argument("--out", required=True)
p.add_argument("--n", type=int, default=16, help="sample: samples (labels i mod K); denoise: images (i mod K)")
p.add_argument("--sampler", default="ddim25", help="sample: a create_diffusion respacing (ddim25, 250, ...)")
p.add_argument("--cfg-scale", type=float, default=1.0)
p.add_argument("--clip-denoised", action="store_true", help="sample: clamp each predicted x0 to [-1, 1] (ADM's clip_denoised)")
p.add_argument("--ts", default="50,100,250,500,750", help="denoise: timesteps")
p.add_argument("--patch", type=int, default=4); p.add_argument("--hidden", type=int, default=96)
p.add_argument("--depth", type=int, default=4); p.add_argument("--heads", type=int, default=4)
p.add_argument("--learn-sigma", action=argparse.BooleanOptionalAction, default=True)
p.add_argument("--steps", type=int, default=1000); p.add_argument("--batch", type=int, default=32)
p.add_argument("--lr", type=float, default=1e-3); p.add_argument("--warmup", type=int, default=0)
p.add_argument("--ema", type=float, default=0.999); p.add_argument("--grad-clip", type=float, default=1.0)
p.add_argument("--log-every", type=int, default=100)
p.add_argument("--seed", type=int, default=0)
p.add_argument("--threads", type=int, default=1)
a = p.parse_args()

import numpy as np, torch
torch.set_num_threads(a.threads)
torch.manual_seed(a.seed)
DiT, create_diffusion = ref.import_dit(a.dit_repo)


def sample():
    model, cfg = ref.load_model(DiT, a.weights, a.config)
    k, s, c = cfg["num_classes"], cfg["input_size"], cfg["in_channels"]
    diffusion = create_diffusion(a.sampler, learn_sigma=cfg["learn_sigma"])
    loop = diffusion.ddim_sample_loop if a.sampler.startswith("ddim") else diffusion.p_sample_loop
    y = torch.arange(a.n) % k
    z = torch.randn(a.n, c, s, s)
    with torch.no_grad():
        if a.cfg_scale != 1:  # sample.py's guided batch: [z, z] with [y, null]
            out = loop(model.forward_with_cfg, (2 * a.n, c, s, s), torch.cat([z, z]), clip_denoised=a.clip_denoised,
                       model_kwargs=dict(y=torch.cat([y, torch.full_like(y, k)]), cfg_scale=a.cfg_scale),
                       progress=False, device="cpu")[: a.n]
        else:
            out = loop(model.forward, z.shape, z, clip_denoised=a.clip_denoised, model_kwargs=dict(y=y), progress=False, device="cpu")
    os.makedirs(a.out, exist_ok=True)
    for i, img in enumerate(ref.to_uint8(out)):
        ref.write_png(f"{a.out}/{i:06d}.png", img)
    np.save(f"{a.out}/labels.npy", y.numpy().astype(np.int64))
    print(f"wrote {a.n} samples ({a.sampler}, cfg {a.cfg_scale}) and labels.npy to {a.out}")


def denoise():
    model, cfg = ref.load_model(DiT, a.weights, a.config)
    k = cfg["num_classes"]
    x, y = ref.read_image_folder(a.data, per_class=(a.n + k - 1) // k)
    order = sorted(range(len(y)), key=lambda i: (i % ((a.n + k - 1) // k), int(y[i])))[: a.n]
    x0, y = x[order], y[order]
    d = create_diffusion("", learn_sigma=cfg["learn_sigma"])
    columns = [x0]
    with torch.no_grad():
        for t in (int(v) for v in a.ts.split(",")):
            tt = torch.full((len(y),), t)
            eps = torch.randn_like(x0)
            xt = d.q_sample(x0, tt, noise=eps)
            mse = {}
            for name, labels in [("true", y), ("wrong", (y + 1) % k), ("null", torch.full_like(y, k))]:
                out = model(xt, tt, labels)[:, : x0.shape[1]]
                mse[name] = float(((out - eps) ** 2).mean())
                if name == "true":
                    pred = d._predict_xstart_from_eps(xt, tt, out)
            print(f"t {t:4d}: eps MSE true label {mse['true']:.5f}  wrong label {mse['wrong']:.5f}  null {mse['null']:.5f}"
                  f"  x0 MSE {float(((pred - x0) ** 2).mean()):.4f}")
            columns += [xt.clamp(-1, 1), pred.clamp(-1, 1)]
    tiles = [np.pad(ref.to_uint8(c), ((0, 0), (1, 1), (1, 1), (0, 0))) for c in columns]
    sheet = np.concatenate([np.concatenate([t[i] for t in tiles], 1) for i in range(len(y))], 0)
    ref.write_png(a.out, np.ascontiguousarray(sheet.repeat(3, 0).repeat(3, 1)))
    print(f"wrote {a.out}: rows = images, columns = image, then (x_t, predicted x0) per t")


def train():
    x, y = ref.read_image_folder(a.data)
    cfg = dict(input_size=x.shape[-1], patch_size=a.patch, in_channels=x.shape[1], hidden_size=a.hidden, depth=a.depth,
               num_heads=a.heads, mlp_ratio=4.0, class_dropout_prob=0.1, num_classes=int(y.max()) + 1,
               learn_sigma=a.learn_sigma)
    model = DiT(**cfg)
    ema = copy.deepcopy(model).requires_grad_(False)
    d = create_diffusion("", learn_sigma=a.learn_sigma)
    opt = torch.optim.AdamW(model.parameters(), lr=a.lr, weight_decay=0)
    model.train()
    start, total = time.time(), 0.0
    for step in range(a.steps):
        for g in opt.param_groups:
            g["lr"] = a.lr * min(1.0, (step + 1) / a.warmup) if a.warmup else a.lr
        i = torch.randint(0, len(y), (a.batch,))
        t = torch.randint(0, d.num_timesteps, (a.batch,))
        loss = d.training_losses(model, x[i], t, dict(y=y[i]))["loss"].mean()
        opt.zero_grad()
        loss.backward()
        if a.grad_clip:
            torch.nn.utils.clip_grad_norm_(model.parameters(), a.grad_clip)
        opt.step()
        with torch.no_grad():  # train.py's update_ema
            for e, m in zip(ema.parameters(), model.parameters()):
                e.mul_(a.ema).add_(m.data, alpha=1 - a.ema)
        total += loss.item()
        if (step + 1) % a.log_every == 0:
            print(f"step {step + 1}  loss {total / a.log_every:.5f}  {time.time() - start:.0f} s", flush=True)
            total = 0.0
    from safetensors.torch import save_file
    os.makedirs(a.out, exist_ok=True)
    save_file({k: v.contiguous() for k, v in ema.state_dict().items()}, a.out + "/ema.safetensors")
    json.dump(cfg, open(a.out + "/config.json", "w"), indent=1)
    print(f"wrote {a.out}/ema.safetensors, config.json")


{"sample": sample, "denoise": denoise, "train": train}[a.command]()
