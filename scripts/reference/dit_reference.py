"""Shared set-up of the reference scripts that run facebookresearch/DiT's own code (models.py,
diffusion/) with PyTorch on CPU: the import path, a stand-in for torchvision where it cannot be
imported, a DiT built from a config.json + safetensors, PNG folders as [-1, 1] tensors, and the
small random model of the fixture scripts (its arguments, its making and its saving).

    import dit_reference as ref
    DiT, create_diffusion = ref.import_dit("/path/to/DiT")
"""
import glob, importlib.abc, importlib.machinery, json, os, sys, types

CONFIG_KEYS = ["input_size", "patch_size", "in_channels", "hidden_size", "depth", "num_heads", "mlp_ratio",
               "class_dropout_prob", "num_classes", "learn_sigma"]


def stub_torchvision():
    """timm imports torchvision at module level (data transforms, FrozenBatchNorm2d) though DiT's
    PatchEmbed, Attention and Mlp use none of it. Where no torchvision matching this torch can be
    installed (a CPU-only torch wheel), empty stand-in modules satisfy those imports."""
    try:
        import torchvision  # noqa: F401
        return
    except Exception:
        pass

    class _StubMeta(type):
        def __getattr__(cls, name):
            if name.startswith("__"):
                raise AttributeError(name)
            return _StubMeta(name, (), {})

    class _Stub(types.ModuleType):
        def __getattr__(self, name):
            if name.startswith("__"):
                raise AttributeError(name)
            if name[:1].isupper():  # a class (subclassed or used as an enum at import time)
                c = _StubMeta(name, (), {})
                setattr(self, name, c)
                return c
            return _stub(self.__name__ + "." + name)

    def _stub(name):
        if name not in sys.modules:
            m = _Stub(name)
            m.__path__ = []
            m.__spec__ = importlib.machinery.ModuleSpec(name, None, is_package=True)
            sys.modules[name] = m
        return sys.modules[name]

    class _Finder(importlib.abc.MetaPathFinder, importlib.abc.Loader):
        def find_spec(self, name, path, target=None):
            if name == "torchvision" or name.startswith("torchvision."):
                return importlib.machinery.ModuleSpec(name, self, is_package=True)
            return None

        def create_module(self, spec):
            return _stub(spec.name)

        def exec_module(self, module):
            pass

    for k in [k for k in sys.modules if k == "torchvision" or k.startswith("torchvision.")]:
        del sys.modules[k]
    sys.meta_path.insert(0, _Finder())


def import_dit(repo):
    """(models.DiT, diffusion.create_diffusion) from a checkout of facebookresearch/DiT."""
    sys.path.insert(0, repo)
    stub_torchvision()
    from models import DiT
    from diffusion import create_diffusion
    return DiT, create_diffusion


def load_model(DiT, weights, config=None):
    """A DiT in eval mode from a safetensors state dict (reference key names) and its config.json
    (default: beside the weights). Returns (model, config dict)."""
    from safetensors.torch import load_file
    cfg = json.load(open(config or os.path.join(os.path.dirname(weights) or ".", "config.json")))
    cfg = {k: cfg[k] for k in CONFIG_KEYS}
    model = DiT(**cfg)
    model.load_state_dict(load_file(weights), strict=True)
    return model.eval(), cfg


def read_image_folder(root, per_class=None):
    """An ImageFolder root (root/<class>/<image>.png, classes sorted as torchvision does) as
    (x (N, 3, H, W) in [-1, 1], y (N,)), at most `per_class` images of each class."""
    import numpy as np, torch
    from PIL import Image
    classes = sorted(d for d in os.listdir(root) if os.path.isdir(os.path.join(root, d)))
    xs, ys = [], []
    for label, name in enumerate(classes):
        files = sorted(glob.glob(os.path.join(root, name, "*.png")))[:per_class]
        for f in files:
            xs.append(np.asarray(Image.open(f).convert("RGB")))
            ys.append(label)
    x = torch.tensor(np.stack(xs)).permute(0, 3, 1, 2).float() / 127.5 - 1
    return x, torch.tensor(ys)


def to_uint8(x):
    """(N, 3, H, W) in [-1, 1] → (N, H, W, 3) uint8, as sample.py's clamp(127.5 x + 128, 0, 255)."""
    import torch
    return torch.clamp(127.5 * x + 128.0, 0, 255).permute(0, 2, 3, 1).to(dtype=torch.uint8).numpy()


def write_png(path, hwc):
    from PIL import Image
    Image.fromarray(hwc).save(path)


def add_model_arguments(p, hidden_size):
    """The fixture scripts' arguments: the repository, OUT, a small DiT and its diffusion's options."""
    import argparse
    p.add_argument("--dit-repo", required=True, help="a checkout of facebookresearch/DiT (models.py, diffusion/)")
    p.add_argument("--out", required=True)
    p.add_argument("--input-size", type=int, default=8)
    p.add_argument("--patch-size", type=int, default=2)
    p.add_argument("--in-channels", type=int, default=4)
    p.add_argument("--hidden-size", type=int, default=hidden_size)
    p.add_argument("--depth", type=int, default=2)
    p.add_argument("--num-heads", type=int, default=4)
    p.add_argument("--num-classes", type=int, default=10)
    p.add_argument("--learn-sigma", action=argparse.BooleanOptionalAction, default=True)
    p.add_argument("--predict-xstart", action="store_true",
                   help="create_diffusion(predict_xstart=True): the model predicts x0 (recorded in config.json)")
    p.add_argument("--seed", type=int, default=0)


def perturbed_model(DiT, a):
    """(model, cfg): DiT(**cfg) from the arguments after torch.manual_seed(a.seed), every tensor but the
    frozen pos_embed perturbed by N(0, 0.05^2) (DiT's initialisation zeroes adaLN and the final layer,
    so the model would predict 0 and every gradient but the final layer's would be 0)."""
    import torch
    torch.manual_seed(a.seed)
    cfg = dict(input_size=a.input_size, patch_size=a.patch_size, in_channels=a.in_channels,
               hidden_size=a.hidden_size, depth=a.depth, num_heads=a.num_heads, mlp_ratio=4.0,
               class_dropout_prob=0.1, num_classes=a.num_classes, learn_sigma=a.learn_sigma)
    model = DiT(**cfg)
    with torch.no_grad():
        for name, t in model.state_dict().items():
            if name != "pos_embed":
                t.add_(0.05 * torch.randn_like(t))
    return model, cfg


def save_model(model, cfg, a):
    """OUT/weights.safetensors (the state dict now) and OUT/config.json: DiT's constructor arguments,
    plus "predict_xstart": true when set (an argument of create_diffusion, not of DiT, which the
    project's config.json records). Returns the saved config."""
    from safetensors.torch import save_file
    os.makedirs(a.out, exist_ok=True)
    save_file({k: v.detach().clone().contiguous() for k, v in model.state_dict().items()},
              os.path.join(a.out, "weights.safetensors"))
    saved = {**cfg, **({"predict_xstart": True} if a.predict_xstart else {})}
    with open(os.path.join(a.out, "config.json"), "w") as f:
        json.dump(saved, f, indent=1)
    return saved
