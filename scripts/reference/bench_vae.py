#!/usr/bin/env python3
"""PyTorch + diffusers reference timing for `dit-worker bench vae`.

Random-weight AutoencoderKL with the SD VAE's configuration (sd-vae-ft-ema/-mse), fp32, CPU.
Usage: python3 bench_vae.py [--image-size 256] [--threads 2] [--repeats 3]
Needs torch and diffusers (not a dependency of the project: for comparisons only).
"""
import argparse, time
import torch
from diffusers import AutoencoderKL

p = argparse.ArgumentParser()
p.add_argument("--image-size", type=int, default=256)
p.add_argument("--threads", type=int, default=2)
p.add_argument("--repeats", type=int, default=3)
a = p.parse_args()
torch.set_num_threads(a.threads)
torch.manual_seed(0)
vae = AutoencoderKL(
    in_channels=3, out_channels=3, latent_channels=4,
    down_block_types=["DownEncoderBlock2D"] * 4, up_block_types=["UpDecoderBlock2D"] * 4,
    block_out_channels=[128, 256, 512, 512], layers_per_block=2, norm_num_groups=32,
    sample_size=a.image_size, scaling_factor=0.18215).eval()
x = torch.rand(1, 3, a.image_size, a.image_size) * 2 - 1
with torch.inference_mode():
    z = vae.encode(x).latent_dist.mean  # warm-up
    vae.decode(z)
    enc, dec = [], []
    for _ in range(a.repeats):
        t = time.perf_counter(); z = vae.encode(x).latent_dist.mean; enc.append(time.perf_counter() - t)
        t = time.perf_counter(); vae.decode(z); dec.append(time.perf_counter() - t)
print(f"torch {torch.__version__} threads {torch.get_num_threads()} {a.image_size}px: "
      f"encode {min(enc):.3f} s/image, decode {min(dec):.3f} s/image")
