# Generates Tests/PipelineTests/Resources/pillow13: small images of the PNG/JPEG
# modes Pillow converts with quirks, and Pillow 13.0.0's decodes and crops of them.
import numpy as np, zlib, struct, sys
from PIL import Image
out = sys.argv[1]
rng = np.random.default_rng(42)
H, W = 29, 37
y, x = np.mgrid[0:H, 0:W]
def smooth(c):
    return np.clip(np.stack([np.sin(x / (3 + k) + y / (4 + k)) * 90 + 128 + rng.normal(0, 25, (H, W)) for k in range(c)], -1), 0, 255).astype(np.uint8)
def chunk(t, d): return struct.pack(">I", len(d)) + t + d + struct.pack(">I", zlib.crc32(t + d) & 0xffffffff)
def png(path, bd, ct, rows, plte=None, trns=None):
    raw = b"".join(b"\x00" + r for r in rows)
    d = b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", W, H, bd, ct, 0, 0, 0))
    if plte is not None: d += chunk(b"PLTE", plte)
    if trns is not None: d += chunk(b"tRNS", trns)
    d += chunk(b"IDAT", zlib.compress(raw, 9)) + chunk(b"IEND", b"")
    open(path, "wb").write(d)
rgb = smooth(3)
files = []
v = rgb[..., 0].astype(np.uint16) * (1 + (np.arange(W) % 3 == 0))          # I;16, some values > 255
Image.fromarray(v.astype(np.uint16)).save(f"{out}/gray16.png"); files.append("gray16.png")
a = rng.integers(0, 65536, (H, W, 2), dtype=np.uint16).astype(">u2")         # LA;16B read as RGBA
png(f"{out}/graya16.png", 16, 4, [a[r].tobytes() for r in range(H)]); files.append("graya16.png")
a = rng.integers(0, 65536, (H, W, 3), dtype=np.uint16).astype(">u2")         # RGB;16B
png(f"{out}/rgb16.png", 16, 2, [a[r].tobytes() for r in range(H)]); files.append("rgb16.png")
per = (W * 2 + 7) // 8                                                       # 2-bit palette, 3 of 4 entries, tRNS
rows = [rng.integers(0, 256, per, dtype=np.uint8).tobytes() for _ in range(H)]
png(f"{out}/palette2.png", 2, 3, rows, plte=bytes([200, 30, 40, 10, 220, 90, 60, 70, 250]), trns=bytes([0, 128]))
files.append("palette2.png")
per = (W + 7) // 8                                                           # mode "1"
png(f"{out}/gray1.png", 1, 0, [rng.integers(0, 256, per, dtype=np.uint8).tobytes() for _ in range(H)]); files.append("gray1.png")
Image.fromarray(rgb).convert("CMYK").save(f"{out}/cmyk.jpg", quality=90); files.append("cmyk.jpg")
Image.fromarray(rgb).save(f"{out}/progressive.jpg", quality=80, progressive=True); files.append("progressive.jpg")
Image.fromarray(rgb).save(f"{out}/subsampled422.jpg", quality=75, subsampling=1); files.append("subsampled422.jpg")
Image.fromarray(rgb[..., 1]).save(f"{out}/gray.jpg", quality=70); files.append("gray.jpg")
def center_crop_arr(pil_image, image_size):
    while min(*pil_image.size) >= 2 * image_size:
        pil_image = pil_image.resize(tuple(x // 2 for x in pil_image.size), resample=Image.BOX)
    scale = image_size / min(*pil_image.size)
    pil_image = pil_image.resize(tuple(round(x * scale) for x in pil_image.size), resample=Image.BICUBIC)
    arr = np.array(pil_image)
    crop_y = (arr.shape[0] - image_size) // 2
    crop_x = (arr.shape[1] - image_size) // 2
    return arr[crop_y : crop_y + image_size, crop_x : crop_x + image_size]
for f in files:
    im = Image.open(f"{out}/{f}").convert("RGB")
    np.save(f"{out}/{f}.rgb.npy", np.array(im))
    np.save(f"{out}/{f}.crop6.npy", center_crop_arr(im, 6))
