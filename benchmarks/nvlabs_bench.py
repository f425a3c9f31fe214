"""Sampling an NVlabs StyleGAN2 pickle: ganeval against NVlabs' own code on the same file, seeds
and machine. Prints a table of seconds per image and the ratio.

NVlabs' code is the reference and is never part of ganeval: fetch stylegan2-ada-pytorch or stylegan3
outside this repository and pass its folder (it runs on CPU with its reference ops; a stylegan3
checkout also times StyleGAN3-T/-R):

    python benchmarks/nvlabs_bench.py --nvlabs /tmp/nv-stylegan3 [--pickle P.pkl] [--images 16] [--full-width]

Both render one image per forward pass, as NVlabs' gen_images.py does (ganeval does on CPU), with
truncation 0.7 and const noise; the load (unpickling and building the network) is timed apart.
Tools alternate, and the table gives medians over --repeats. Without --pickle, the networks of
tests/make_nvlabs_golden.py (64 and 256 px, random weights) are built with NVlabs' code and
pickled by it into a temporary folder; ``--full-width`` times the 256 px ones at NVlabs' widths
instead (StyleGAN2 channel_base 16384 as paper256, StyleGAN3-T 32768; channel_max 512)."""
from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

ROOT = Path(__file__).resolve().parents[1]


def _nvlabs(pickle_path: Path, nvlabs: Path):
    sys.path.insert(0, str(nvlabs))
    import legacy  # noqa: E402  (NVlabs, from the fetched copy; this runs the stored source)

    with open(pickle_path, "rb") as f:
        return legacy.load_network_pkl(f)["G_ema"].eval()


def _ours(pickle_path: Path):
    from ganeval.generators import load_generator

    return load_generator(pickle_path, device="cpu")


FULL_WIDTH = {"sg2_256": dict(channel_base=16384, channel_max=512), "sg3t_256": dict(channel_base=32768, channel_max=512)}


def _reference_pickle(nvlabs: Path, name: str, folder: Path, full_width: bool = False) -> Path:
    """A snapshot as NVlabs' training loop writes it (stored source included), of the test networks."""
    import pickle

    sys.path.insert(0, str(ROOT / "tests"))
    if name.startswith("sg3"):
        from make_sg3_golden import CONFIGS, build  # noqa: E402
    else:
        from make_nvlabs_golden import CONFIGS, build  # noqa: E402
    if full_width:  # the same layout at NVlabs' widths
        *head, syn = CONFIGS[name][:-1] if name.startswith("sg2") else CONFIGS[name]
        widened = dict(syn, **FULL_WIDTH[name])
        CONFIGS[name] = (*head, widened, CONFIGS[name][-1]) if name.startswith("sg2") else (*head, widened)

    G = build(nvlabs, name, seed=list(CONFIGS).index(name))
    path = folder / f"{name}.pkl"
    with open(path, "wb") as f:
        pickle.dump({"G_ema": G, "G": G, "D": G, "augment_pipe": None, "training_set_kwargs": {}}, f)
    return path


def _time_nvlabs(G, seeds):
    out = []
    start = time.perf_counter()
    with torch.no_grad():
        for s in seeds:
            z = torch.from_numpy(np.random.RandomState(s).randn(1, G.z_dim))
            img = G(z, torch.zeros(1, G.c_dim), truncation_psi=0.7, noise_mode="const")
            out.append((img.permute(0, 2, 3, 1) * 127.5 + 128).clamp(0, 255).to(torch.uint8))
    return time.perf_counter() - start, torch.cat(out)


def _time_ours(G, seeds):
    start = time.perf_counter()
    images = torch.cat(list(G.sample(seeds, truncation=0.7, noise_mode="const", batch_size=len(seeds))))
    return time.perf_counter() - start, images


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--nvlabs", type=Path, help="a fetched stylegan2-ada-pytorch or stylegan3 folder (the reference)")
    ap.add_argument("--pickle", type=Path, action="append", help="NVlabs pickle(s) to time (repeat)")
    ap.add_argument("--images", type=int, default=16, help="images per timed run")
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--threads", type=int, default=torch.get_num_threads())
    ap.add_argument("--full-width", action="store_true", help="the 256 px networks at NVlabs' widths")
    args = ap.parse_args()
    if args.nvlabs is None or not (args.nvlabs / "legacy.py").is_file():
        print("skipped: the reference needs a fetched stylegan2-ada-pytorch folder (--nvlabs DIR)")
        return
    torch.set_num_threads(args.threads)
    tmp = tempfile.TemporaryDirectory(prefix="nvlabs-bench-")
    sg3 = (args.nvlabs / "training" / "networks_stylegan3.py").is_file()  # a stylegan3 checkout renders both
    names = ["sg2_64", "sg2_256"] + (["sg3t_64", "sg3r_64", "sg3t_256"] if sg3 else [])
    if args.full_width:
        names = [n for n in names if n in FULL_WIDTH]
    pickles = args.pickle or [_reference_pickle(args.nvlabs, name, Path(tmp.name), args.full_width) for name in names]
    seeds = list(range(args.images))
    print("| pickle | px | load ganeval s | load NVlabs s | ganeval s/img | NVlabs s/img | ganeval ÷ NVlabs speed | max pixel diff |")
    print("|---|---|---|---|---|---|---|---|")
    for path in pickles:
        t0 = time.perf_counter()
        ours = _ours(path)
        load_ours = time.perf_counter() - t0
        t0 = time.perf_counter()
        theirs = _nvlabs(path, args.nvlabs)
        load_theirs = time.perf_counter() - t0
        if theirs.c_dim:
            raise SystemExit(f"{path}: conditional pickles are not timed here")
        _time_ours(ours, seeds[:1]), _time_nvlabs(theirs, seeds[:1])  # warm-up
        t_ours, t_theirs = [], []
        for _ in range(args.repeats):
            a, img_ours = _time_ours(ours, seeds)
            b, img_theirs = _time_nvlabs(theirs, seeds)
            t_ours.append(a / len(seeds))
            t_theirs.append(b / len(seeds))
        diff = int((img_ours.int() - img_theirs.int()).abs().max())
        mo, mt = statistics.median(t_ours), statistics.median(t_theirs)
        print(f"| {path.name} | {ours.resolution} | {load_ours:.2f} | {load_theirs:.2f} | {mo:.4f} | {mt:.4f} | "
              f"**{mt / mo:.2f}×** | {diff} |")


if __name__ == "__main__":
    main()
