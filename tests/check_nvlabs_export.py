"""Check that NVlabs' own code loads ``ganeval export --nvlabs`` files and renders ganeval's pixels.

Not a test of the suite (it needs NVlabs' code, which is never part of ganeval): fetch stylegan3
or stylegan2-ada-pytorch outside this repository and run, with this repository's environment,

    python tests/check_nvlabs_export.py --nvlabs /tmp/nv-stylegan3 --run runs/sg2 [--repo stylegan3]

It exports the run (stylegan2, or stylegan3 for ``--repo stylegan3``), loads the file with NVlabs'
``legacy.load_network_pkl`` (as gen_images.py does), renders seeds 0-3 at ψ 0.7 with const noise
as gen_images.py does, and compares with ``ganeval sample``; it also scores four random images
with NVlabs' D and the run's D. It prints the largest differences and exits 1 when the images
differ by more than one grey level or the scores by more than 1e-4 (relative)."""
from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np
import torch


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--nvlabs", type=Path, required=True)
    ap.add_argument("--run", type=Path, required=True, help="a ganeval stylegan2 or stylegan3 run or checkpoint")
    ap.add_argument("--repo", default="stylegan3", choices=("stylegan3", "stylegan2-ada-pytorch"))
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        pkl = Path(tmp) / "export.pkl"
        subprocess.run([sys.executable, "-m", "ganeval", "export", str(args.run), "--nvlabs", str(pkl),
                        "--nvlabs-repo", args.repo], check=True)
        from ganeval.generators import load_generator

        ours = torch.cat(list(load_generator(args.run, device="cpu").sample("0-3", truncation=0.7))).numpy()
        sys.path.insert(0, str(args.nvlabs))
        import legacy  # noqa: E402  (NVlabs, from the fetched copy)

        with open(pkl, "rb") as f:
            snapshot = legacy.load_network_pkl(f)
        G, D = snapshot["G_ema"], snapshot["D"]
        theirs = []
        for seed in range(4):
            z = torch.from_numpy(np.random.RandomState(seed).randn(1, G.z_dim))
            img = G(z, torch.zeros(1, G.c_dim), truncation_psi=0.7, noise_mode="const")
            theirs.append((img.permute(0, 2, 3, 1) * 127.5 + 128).clamp(0, 255).to(torch.uint8)[0].numpy())
        diff = int(np.abs(np.stack(theirs).astype(int) - ours.astype(int)).max())
        print(f"NVlabs {args.repo} renders the export within {diff} grey level(s) of ganeval sample")
        from ganeval.models.checkpoint import load_discriminator

        x = torch.randn(4, G.img_channels, G.img_resolution, G.img_resolution, generator=torch.Generator().manual_seed(0))
        mine = load_discriminator(args.run)(x)
        scores = D(x, torch.zeros(4, 0)).view(-1)
        rel = float((scores - mine).abs().max() / mine.abs().max())
        print(f"NVlabs' D scores the export's D within {rel:.1e} (relative) of ganeval's D: {scores.tolist()}")
        return int(diff > 1 or rel > 1e-4)


if __name__ == "__main__":
    sys.exit(main())
