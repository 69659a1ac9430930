#!/usr/bin/env python3
"""Reference fixture for `dit-worker eval diffusion` in the layout of shared/fixtures/diffusion/tiny,
for any small DiT configuration and `create_diffusion` options (notably predict_xstart, which the
shared fixtures do not cover).

Runs facebookresearch/DiT's own code (models.py, diffusion/) with PyTorch on CPU and writes, in OUT:
  config.json          DiT's constructor arguments (+ "predict_xstart": true when set)
  weights.safetensors  the random model (DiT's initialisation, then every tensor but pos_embed
                       perturbed by N(0, 0.05^2): the zero-initialised final layer would predict 0)
  io.safetensors       x0, t, noise, y -> x_t (q_sample), loss, mse[, vb] (training_losses, per sample);
                       z_T, labels, cfg_scale, step_noise -> ddpm_cfg (p_sample_loop, forward_with_cfg
                       on cat[z_T, z_T] with cat[labels, null], first half), ddpm_nocfg (forward on z_T,
                       noise step_noise[i][:n]), ddim_cfg (ddim_sample_loop, eta 0); all with
                       clip_denoised=False; *_timestep_map, *_betas of both respaced chains;
                       metadata as diffusion/tiny's (respacing, ddim_respacing, learn_sigma,
                       predict_xstart, noise_schedule, diffusion_steps, model_config)
`step_noise[i]` is the noise p_sample draws at step i (torch.randn_like, fed from the record).

Usage (not used by the project or its tests; generates the committed references):
  /tmp/ptv/bin/python3 scripts/reference/make_diffusion_fixture.py --dit-repo DiT --out OUT --predict-xstart --no-learn-sigma
"""
import argparse, json, os, sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import dit_reference

p = argparse.ArgumentParser()
dit_reference.add_model_arguments(p, hidden_size=32)
p.add_argument("--noise-schedule", default="linear")
p.add_argument("--respacing", default="10")
p.add_argument("--ddim-respacing", default="ddim10")
p.add_argument("--cfg-scale", type=float, default=4.0)
a = p.parse_args()

import torch

DiT, create_diffusion = dit_reference.import_dit(a.dit_repo)
import diffusion.gaussian_diffusion as gd
from safetensors.torch import save_file

model, cfg = dit_reference.perturbed_model(DiT, a)
model.eval()
saved_cfg = dit_reference.save_model(model, cfg, a)

kw = dict(noise_schedule=a.noise_schedule, learn_sigma=a.learn_sigma, predict_xstart=a.predict_xstart)
full = create_diffusion("", **kw)
ddpm = create_diffusion(a.respacing, **kw)
ddim = create_diffusion(a.ddim_respacing, **kw)

c, s, k = a.in_channels, a.input_size, a.num_classes
io = {}
with torch.no_grad():
    n = 3
    x0 = torch.randn(n, c, s, s).clamp(-1, 1)
    noise = torch.randn(n, c, s, s)
    t = torch.tensor([0, 500, 999])
    y = torch.tensor([1, 2, k])  # the last: the null label
    io.update(x0=x0, t=t, noise=noise, y=y, x_t=full.q_sample(x0, t, noise=noise))
    terms = full.training_losses(model, x0, t, dict(y=y), noise)
    io["loss"], io["mse"] = terms["loss"], terms["mse"]
    if "vb" in terms:
        io["vb"] = terms["vb"]

    m = 2
    z = torch.randn(m, c, s, s)
    labels = torch.tensor([3, 7]) % k
    steps = ddpm.num_timesteps
    step_noise = torch.randn(steps, 2 * m, c, s, s)
    io.update(z_T=z, labels=labels, cfg_scale=torch.tensor([a.cfg_scale]), step_noise=step_noise)

    def fed(noises):  # p_sample's th.randn_like(x), from the record
        it = iter(noises)
        return lambda x: next(it).clone()

    real = gd.th.randn_like
    try:
        gd.th.randn_like = fed([step_noise[i] for i in range(steps)])
        io["ddpm_cfg"] = ddpm.p_sample_loop(model.forward_with_cfg, (2 * m, c, s, s), torch.cat([z, z]), clip_denoised=False,
                                            model_kwargs=dict(y=torch.cat([labels, torch.full_like(labels, k)]), cfg_scale=a.cfg_scale),
                                            progress=False, device="cpu")[:m]
        gd.th.randn_like = fed([step_noise[i][:m] for i in range(steps)])
        io["ddpm_nocfg"] = ddpm.p_sample_loop(model.forward, (m, c, s, s), z, clip_denoised=False, model_kwargs=dict(y=labels),
                                              progress=False, device="cpu")
    finally:
        gd.th.randn_like = real
    io["ddim_cfg"] = ddim.ddim_sample_loop(model.forward_with_cfg, (2 * m, c, s, s), torch.cat([z, z]), clip_denoised=False,
                                           model_kwargs=dict(y=torch.cat([labels, torch.full_like(labels, k)]), cfg_scale=a.cfg_scale),
                                           progress=False, device="cpu", eta=0.0)[:m]
    for key, d in (("respaced", ddpm), ("ddim", ddim)):
        io[f"{key}_timestep_map"] = torch.tensor(d.timestep_map, dtype=torch.int64)
        io[f"{key}_betas"] = torch.tensor(d.betas, dtype=torch.float64)

meta = {"diffusion_steps": "1000", "model_config": json.dumps(saved_cfg, sort_keys=True), "respacing": a.respacing,
        "ddim_respacing": a.ddim_respacing, "learn_sigma": str(a.learn_sigma), "predict_xstart": str(a.predict_xstart),
        "noise_schedule": a.noise_schedule, "model_weights": "weights.safetensors", "note": f"torch {torch.__version__}"}
save_file({k: v.contiguous().clone() for k, v in io.items()}, os.path.join(a.out, "io.safetensors"), metadata=meta)
print(f"{a.out}: loss {[round(float(v), 5) for v in io['loss']]}, ddpm_cfg max {float(io['ddpm_cfg'].abs().max()):.3f}, "
      f"ddim_cfg max {float(io['ddim_cfg'].abs().max()):.3f}")
