"""Regenerate tests/data/nvlabs/sg2_*: small random NVlabs StyleGAN2 generators, pickled the way
NVlabs' training loop writes ``network-snapshot-*.pkl``, and the images NVlabs' own code renders
for seeds 0-3 (z = RandomState(seed).randn(1, z_dim), truncation 0.7, noise_mode const, uint8 as
gen_images.py converts).

NVlabs' code is an oracle here, never part of ganeval: fetch stylegan2-ada-pytorch outside this
repository and point this script at it (it runs on CPU with NVlabs' reference ops):

    python tests/make_nvlabs_golden.py --nvlabs /tmp/nv-stylegan2-ada-pytorch --out tests/data/nvlabs

Every persistence record's stored ``module_src`` (NVlabs' source file) is replaced by a short
placeholder before the pickle is written, so no NVlabs code enters the repository; ganeval's
loader never reads that field anyway."""
from __future__ import annotations

import argparse
import copy
import io
import pickle
import sys
from pathlib import Path

import numpy as np
import torch

SEEDS = (0, 1, 2, 3)
PSI = 0.7
PLACEHOLDER = "# NVlabs source omitted: ganeval rebuilds networks from their stored arguments\n"

# name: (resolution, c_dim, synthesis kwargs, mapping kwargs)
CONFIGS = {
    "sg2_64": (64, 0, dict(channel_base=1024, channel_max=32, num_fp16_res=0, conv_clamp=None), {}),
    "sg2_64_cond": (64, 5, dict(channel_base=1024, channel_max=32, num_fp16_res=0, conv_clamp=256), dict(num_layers=2)),
    "sg2_256": (256, 0, dict(channel_base=1024, channel_max=16, num_fp16_res=0, conv_clamp=256), dict(num_layers=2)),
}


class _StripSource(pickle.Pickler):
    """Pickles as NVlabs does, then blanks module_src in every persistence record."""

    def reducer_override(self, obj):
        if isinstance(obj, torch.nn.Module) and hasattr(obj, "_orig_module_src"):
            fields = list(obj.__reduce__())
            meta = dict(fields[1][0])
            meta["module_src"] = PLACEHOLDER
            fields[1] = (meta,)
            return tuple(fields)
        return NotImplemented


def build(nvlabs: Path, name: str, seed: int):
    sys.path.insert(0, str(nvlabs))
    res, c_dim, syn, mapping = CONFIGS[name]
    torch.manual_seed(seed)
    try:  # NVlabs, from the fetched copy: stylegan2-ada-pytorch nests the synthesis arguments
        from training.networks import Generator  # noqa: E402
        G = Generator(z_dim=32, c_dim=c_dim, w_dim=32, img_resolution=res, img_channels=3,
                      mapping_kwargs=mapping, synthesis_kwargs=syn).eval()
    except ImportError:  # stylegan3's StyleGAN2 takes them flat
        from training.networks_stylegan2 import Generator  # noqa: E402
        G = Generator(z_dim=32, c_dim=c_dim, w_dim=32, img_resolution=res, img_channels=3,
                      mapping_kwargs=mapping, **syn).eval()
    with torch.no_grad():  # trained-looking weights: non-zero noise strengths, biases and w_avg
        for pname, p in G.named_parameters():
            if pname.endswith("noise_strength"):
                p.copy_(torch.randn(()) * 0.3)
            elif pname.endswith("bias"):
                p.add_(torch.randn_like(p) * 0.1)
        G.mapping.w_avg.copy_(torch.randn_like(G.mapping.w_avg) * 0.5)
    return G


def render(G, c_dim: int) -> np.ndarray:
    images = []
    for seed in SEEDS:
        z = torch.from_numpy(np.random.RandomState(seed).randn(1, G.z_dim))
        c = torch.zeros(1, c_dim)
        if c_dim:
            c[0, seed % c_dim] = 1
        img = G(z, c, truncation_psi=PSI, noise_mode="const")
        images.append((img.permute(0, 2, 3, 1) * 127.5 + 128).clamp(0, 255).to(torch.uint8)[0].numpy())
    return np.stack(images)


def write_golden(G, name: str, out: Path) -> None:
    """``name``.pkl (a snapshot as NVlabs writes one, stored source blanked) and ``name``.npz (the
    images NVlabs' code renders for SEEDS at PSI, one-hot class seed % c_dim when conditional)."""
    images = render(G, G.c_dim)
    snapshot = dict(G=None, D=None, G_ema=copy.deepcopy(G).requires_grad_(False), augment_pipe=None,
                    training_set_kwargs=dict(resolution=G.img_resolution))
    buf = io.BytesIO()
    _StripSource(buf).dump(snapshot)
    (out / f"{name}.pkl").write_bytes(buf.getvalue())
    np.savez_compressed(out / f"{name}.npz", images=images, seeds=np.array(SEEDS), psi=PSI,
                        classes=np.array([s % G.c_dim for s in SEEDS]) if G.c_dim else np.array([]))
    print(f"{name}: {len(buf.getvalue()) / 1e3:.0f} kB pickle, images {images.shape}")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--nvlabs", type=Path, required=True, help="a fetched stylegan2-ada-pytorch folder")
    ap.add_argument("--out", type=Path, default=Path(__file__).parent / "data" / "nvlabs")
    args = ap.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    for i, name in enumerate(CONFIGS):
        write_golden(build(args.nvlabs, name, seed=i), name, args.out)


if __name__ == "__main__":
    main()
