"""Regenerate tests/data/nvlabs/sg3_*: small random NVlabs StyleGAN3-T and -R generators, pickled
as NVlabs' training loop does, and the images NVlabs' code renders for seeds 0-3 (truncation 0.7,
uint8 as gen_images.py converts).

NVlabs' code is an oracle, never part of ganeval: fetch stylegan3 outside this repository and
point this script at it (it runs on CPU with NVlabs' reference ops):

    python tests/make_sg3_golden.py --nvlabs /tmp/nv-stylegan3 --out tests/data/nvlabs

Stored ``module_src`` fields are replaced by a placeholder (see make_nvlabs_golden.py)."""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from make_nvlabs_golden import write_golden  # noqa: E402

# name: (resolution, extra Generator kwargs) — narrow networks so the files stay small
CONFIGS = {
    "sg3t_64": (64, dict(channel_base=512, channel_max=16)),
    "sg3r_64": (64, dict(channel_base=1024, channel_max=32, conv_kernel=1, use_radial_filters=True)),
    "sg3t_256": (256, dict(channel_base=256, channel_max=8)),
    "sg3r_256": (256, dict(channel_base=512, channel_max=8, conv_kernel=1, use_radial_filters=True)),
}


def build(nvlabs: Path, name: str, seed: int):
    sys.path.insert(0, str(nvlabs))
    from training.networks_stylegan3 import Generator  # noqa: E402  (NVlabs, from the fetched copy)

    res, extra = CONFIGS[name]
    torch.manual_seed(seed)
    G = Generator(z_dim=32, c_dim=0, w_dim=32, img_resolution=res, img_channels=3,
                  mapping_kwargs=dict(num_layers=2), **extra).eval()
    with torch.no_grad():  # trained-looking state: magnitudes, biases, a transform-predicting affine
        for pname, p in G.named_parameters():
            if pname.endswith("bias"):
                p.add_(torch.randn_like(p) * 0.1)
        G.synthesis.input.affine.weight.copy_(torch.randn_like(G.synthesis.input.affine.weight) * 0.5)
        for buf_name, buf in G.named_buffers():
            if buf_name.endswith("magnitude_ema"):
                buf.copy_(torch.rand(()) * 0.3 + 0.02)
        # scale toRGB so the images use most grey levels: equality then tests every layer
        torgb = getattr(G.synthesis, G.synthesis.layer_names[-1])
        probe = G(torch.randn(4, G.z_dim), torch.zeros(4, 0), noise_mode="const")
        torgb.weight.mul_(0.45 / float(probe.std()))
        G.mapping.w_avg.copy_(torch.randn_like(G.mapping.w_avg) * 0.5)
    return G


def build_stylegan2(nvlabs: Path, seed: int):
    """stylegan3's own StyleGAN2 (``--cfg stylegan2``), whose snapshots store flat synthesis arguments."""
    from make_nvlabs_golden import build as build_sg2  # noqa: E402

    return build_sg2(nvlabs, "sg2_64", seed)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--nvlabs", type=Path, required=True, help="a fetched stylegan3 folder")
    ap.add_argument("--out", type=Path, default=Path(__file__).parent / "data" / "nvlabs")
    ap.add_argument("--only", nargs="*", help="regenerate only these names")
    args = ap.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    for i, name in enumerate([*CONFIGS, "sg2v3_64"]):
        if args.only and name not in args.only:
            continue
        G = build_stylegan2(args.nvlabs, 20) if name == "sg2v3_64" else build(args.nvlabs, name, seed=10 + i)
        write_golden(G, name, args.out)

if __name__ == "__main__":
    main()
