#!/usr/bin/env python3
"""Recipe sweep for the shipped shapes model (not used by the project or its tests) with facebookresearch/DiT's own code (models.py,
diffusion/) on a GPU: several configurations train side by side (one process each) on the
procedural shapes set; at fixed numbers of images seen each writes 200 EMA samples (DDIM 25,
labels i mod 4, fixed noise) with cfg 1 and cfg 3, classified afterwards by the project's
`dit-worker eval classify`. Output: OUT/sweep.tar (one npz per evaluation) and OUT/log.txt.

  python3 recipe_sweep.py --data data.npz --dit DiT --out $OUT --seconds 400 --run 1
data.npz: x (N, 32, 32, 3) uint8, y (N,) int64 of `dit-worker dataset shapes --count 50000 --seed 0`.
Results and the reading of them: models/shapes-dit/README.md.
"""
import argparse, copy, io, json, os, sys, tarfile, time
import multiprocessing as mp

# The two runs made for the shapes model (2026-12-04, one H200, ~400 s of training each):
# run 1 (DiT's default epsilon prediction) and run 2 (x0 prediction, the cosine schedule).
RUNS = {
    1: dict(configs=[
        # name, patch, hidden, depth, heads, learn_sigma, lr, batch, predict_xstart, noise_schedule
        ("p4h96d4-sig-lr2e-3", 4, 96, 4, 4, True, 2e-3, 32, False, "linear"),
        ("p4h96d4-mse-lr2e-3", 4, 96, 4, 4, False, 2e-3, 32, False, "linear"),
        ("p4h96d4-sig-lr5e-4", 4, 96, 4, 4, True, 5e-4, 32, False, "linear"),
        ("p4h128d6-sig-lr1e-3", 4, 128, 6, 4, True, 1e-3, 32, False, "linear"),
        ("p4h128d6-mse-lr1e-3", 4, 128, 6, 4, False, 1e-3, 32, False, "linear"),
        ("p2h96d4-sig-lr1e-3", 2, 96, 4, 4, True, 1e-3, 32, False, "linear"),
        ("p4h192d8-sig-lr5e-4", 4, 192, 8, 6, True, 5e-4, 32, False, "linear"),
    ], eval_at=[50_000, 100_000, 200_000, 400_000, 800_000, 1_200_000, 1_600_000, 2_400_000, 3_200_000, 4_800_000],
        ddpm=False),
    2: dict(configs=[
        ("p4h96d4-x0mse", 4, 96, 4, 4, False, 2e-3, 32, True, "linear"),
        ("p4h96d4-x0sig", 4, 96, 4, 4, True, 2e-3, 32, True, "linear"),
        ("p4h96d4-epssig-cos", 4, 96, 4, 4, True, 2e-3, 32, False, "squaredcos_cap_v2"),
        ("p4h96d4-x0mse-cos", 4, 96, 4, 4, False, 2e-3, 32, True, "squaredcos_cap_v2"),
        ("p2h64d4-x0mse", 2, 64, 4, 4, False, 2e-3, 32, True, "linear"),
        ("p4h128d6-x0mse", 4, 128, 6, 4, False, 1e-3, 32, True, "linear"),
        ("p4h96d4-epsmse", 4, 96, 4, 4, False, 2e-3, 32, False, "linear"),
    ], eval_at=[50_000, 100_000, 200_000, 300_000, 450_000, 600_000], ddpm=True),
}


def worker(cfg, args, deadline, q):
    name, patch, hidden, depth, heads, sigma, lr, batch, x0, sched = cfg
    import numpy as np, torch
    torch.set_num_threads(1)
    sys.path.insert(0, args.dit)
    try:
        import torchvision  # noqa: F401  (timm needs it; a CPU-only test machine may lack it)
    except ImportError:
        sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "scripts", "reference"))
        import dit_reference
        dit_reference.stub_torchvision()
    import diffusion.gaussian_diffusion as gd
    cache = {}

    def extract(arr, timesteps, broadcast_shape):  # DiT's _extract_into_tensor, table kept on the device
        t = cache.get(id(arr))
        if t is None:
            t = cache[id(arr)] = (arr, torch.from_numpy(arr).to(timesteps.device))
        res = t[1][timesteps].float()
        while len(res.shape) < len(broadcast_shape):
            res = res[..., None]
        return res + torch.zeros(broadcast_shape, device=timesteps.device)

    gd._extract_into_tensor = extract
    from models import DiT
    from diffusion import create_diffusion
    dev = args.device
    torch.manual_seed(0)
    d = np.load(args.data)
    x = torch.tensor(d["x"]).to(dev).permute(0, 3, 1, 2).float() / 127.5 - 1
    y = torch.tensor(d["y"]).to(dev)
    k = int(y.max()) + 1
    model = DiT(input_size=32, patch_size=patch, in_channels=3, hidden_size=hidden, depth=depth, num_heads=heads,
                mlp_ratio=4.0, class_dropout_prob=0.1, num_classes=k, learn_sigma=sigma).to(dev)
    ema = copy.deepcopy(model).requires_grad_(False)
    params, eparams = list(model.parameters()), list(ema.parameters())
    diff = create_diffusion("", learn_sigma=sigma, predict_xstart=x0, noise_schedule=sched)
    sampler = create_diffusion("ddim25", learn_sigma=sigma, predict_xstart=x0, noise_schedule=sched)
    ddpm = create_diffusion("100", learn_sigma=sigma, predict_xstart=x0, noise_schedule=sched)
    opt = torch.optim.AdamW(params, lr=lr, weight_decay=0, **({"fused": True} if dev == "cuda" else {}))
    gen = torch.Generator(device="cpu").manual_seed(1234)
    z = torch.randn(args.n, 3, 32, 32, generator=gen).to(dev)
    ylab = (torch.arange(args.n) % k).to(dev)
    warm, decay = 500, 0.999
    seen, step, ev, t0, acc = 0, 0, 0, time.time(), 0.0
    evals = [e // args.scale for e in RUNS[args.run]["eval_at"]]

    def evaluate():
        ema.eval()
        out = {}
        with torch.no_grad():
            for cfgs in (1.0, 3.0):
                if cfgs == 1.0:
                    s = sampler.ddim_sample_loop(ema.forward, z.shape, z, clip_denoised=False, model_kwargs=dict(y=ylab),
                                                 progress=False, device=dev)
                else:
                    s = sampler.ddim_sample_loop(ema.forward_with_cfg, (2 * args.n, 3, 32, 32), torch.cat([z, z]),
                                                 clip_denoised=False, progress=False, device=dev,
                                                 model_kwargs=dict(y=torch.cat([ylab, torch.full_like(ylab, k)]), cfg_scale=cfgs))[: args.n]
                out[f"cfg{cfgs:g}"] = torch.clamp(127.5 * s + 128.0, 0, 255).permute(0, 2, 3, 1).to(torch.uint8).cpu().numpy()
            if RUNS[args.run]["ddpm"]:
                s = ddpm.p_sample_loop(ema.forward, z.shape, z, clip_denoised=False, model_kwargs=dict(y=ylab), progress=False, device=dev)
                out["ddpm100"] = torch.clamp(127.5 * s + 128.0, 0, 255).permute(0, 2, 3, 1).to(torch.uint8).cpu().numpy()
        buf = io.BytesIO()
        np.savez_compressed(buf, y=ylab.cpu().numpy(), **out)
        q.put(("npz", f"{name}_{seen:08d}.npz", buf.getvalue()))

    model.train()
    while True:
        for g in opt.param_groups:
            g["lr"] = lr * min(1.0, (step + 1) / warm)
        i = torch.randint(0, len(y), (batch,), device=dev)
        t = torch.randint(0, diff.num_timesteps, (batch,), device=dev)
        loss = diff.training_losses(model, x[i], t, dict(y=y[i]))["loss"].mean()
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(params, 1.0)
        opt.step()
        with torch.no_grad():
            d_ = min(decay, (1 + step) / (10 + step))
            torch._foreach_mul_(eparams, d_)
            torch._foreach_add_(eparams, params, alpha=1 - d_)
        step += 1
        seen += batch
        acc += loss.detach()
        if step % 500 == 0:
            q.put(("log", f"{name} step {step} seen {seen} loss {float(acc) / 500:.5f} {time.time() - t0:.0f}s"))
            acc = 0.0
        done = time.time() > deadline
        if (ev < len(evals) and seen >= evals[ev]) or done:
            evaluate()
            ev += 1
            q.put(("log", f"{name} eval at {seen} images, step {step}, {time.time() - t0:.0f}s"))
        if done or ev >= len(evals):
            break
    q.put(("done", name, None))


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--data", required=True); p.add_argument("--dit", required=True); p.add_argument("--out", required=True)
    p.add_argument("--seconds", type=float, default=420); p.add_argument("--device", default="cuda")
    p.add_argument("--n", type=int, default=200); p.add_argument("--scale", type=int, default=1, help="divide EVAL_AT (tests)")
    p.add_argument("--only", default="", help="comma-separated config names")
    p.add_argument("--run", type=int, default=2, choices=sorted(RUNS))
    args = p.parse_args()
    ctx = mp.get_context("spawn")
    q = ctx.Queue()
    deadline = time.time() + args.seconds
    cfgs = [c for c in RUNS[args.run]["configs"] if not args.only or c[0] in args.only.split(",")]
    procs = [ctx.Process(target=worker, args=(c, args, deadline, q)) for c in cfgs]
    for pr in procs:
        pr.start()
    os.makedirs(args.out, exist_ok=True)
    log = open(os.path.join(args.out, "log.txt"), "a")
    part, written, total = 0, 0, 0
    tar = tarfile.open(os.path.join(args.out, "sweep-0.tar"), "w")
    running = len(procs)
    hard = deadline + 90
    while running and time.time() < hard:
        try:
            kind, a, b = (lambda m: m if len(m) == 3 else (m[0], m[1], None))(q.get(timeout=5))
        except Exception:
            if not any(pr.is_alive() for pr in procs):
                break
            continue
        if kind == "npz":  # at most 8 files of 16 MB come back: parts of 14 MB, 56 MB in all
            if total + len(b) > 56e6:
                print("dropped", a, flush=True); continue
            if written + len(b) > 14e6:
                tar.close(); part += 1; written = 0
                tar = tarfile.open(os.path.join(args.out, f"sweep-{part}.tar"), "w")
            ti = tarfile.TarInfo(a); ti.size = len(b); tar.addfile(ti, io.BytesIO(b)); tar.fileobj.flush()
            written += len(b) + 1024; total += len(b) + 1024
            print("eval", a, len(b), flush=True)
        elif kind == "log":
            print(a, flush=True); log.write(a + "\n"); log.flush()
        elif kind == "done":
            running -= 1
    tar.close()
    for pr in procs:
        pr.join(timeout=5)
        if pr.is_alive():
            pr.kill()
    print("sweep finished", flush=True)


if __name__ == "__main__":
    main()
