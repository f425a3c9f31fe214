"""Sampling an NVlabs StyleGAN (v1) TensorFlow pickle: ganeval (PyTorch, no TensorFlow) against
NVlabs' own code under TensorFlow, on the same file, seeds and machine. Prints a table of
seconds per image and the ratio.

NVlabs' code is the reference and never part of ganeval. It runs in a throwaway environment
with TensorFlow (see tests/make_stylegan_golden.py for how to make one) on a fetched copy of
NVlabs' stylegan repository:

    python benchmarks/stylegan_v1_bench.py --tf-python /tmp/tfenv/bin/python --stylegan /tmp/nv-stylegan \\
        [--resolution 256] [--fmap-max 512] [--images 8] [--repeats 3]

NVlabs' code builds a network of the given size with random weights and pickles it (as its
training loop does); both tools then render one image per pass (as NVlabs' pretrained_example.py
and ganeval on CPU do) at truncation 0.7 with the stored noise. TensorFlow's time is measured
inside its own process, after a warm-up; the load is timed apart."""
from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

ROOT = Path(__file__).resolve().parents[1]

TF_SIDE = r"""
import json, pickle, sys, time
import numpy as np
sys.path[:0] = [{tests!r}, {stylegan!r}]
from make_stylegan_golden import setup_tensorflow
tf = setup_tensorflow()
import dnnlib.tflib as tflib
tflib.init_tf({{"rnd.np_random_seed": 0, "rnd.tf_random_seed": 0, "allow_soft_placement": True,
               "intra_op_parallelism_threads": {threads}, "inter_op_parallelism_threads": 1}})
kwargs = json.loads({kwargs!r})
t0 = time.perf_counter()
G = tflib.Network("G", func_name="training.networks_stylegan.G_style", **kwargs)
D = tflib.Network("D", func_name="training.networks_stylegan.D_basic", num_channels=3,
                  resolution=kwargs["resolution"], fmap_max=kwargs["fmap_max"])
Gs = G.clone("Gs")
with open({pkl!r}, "wb") as f:
    pickle.dump((G, D, Gs), f)
fmt = dict(func=tflib.convert_images_to_uint8, nchw_to_nhwc=True)

def render(seeds):
    return np.concatenate([Gs.run(np.random.RandomState(s).randn(1, kwargs["latent_size"]), None, truncation_psi=0.7,
                                  randomize_noise=False, output_transform=fmt) for s in seeds])

render([0])
times = []
for _ in range({repeats}):
    t = time.perf_counter()
    images = render(range({images}))
    times.append((time.perf_counter() - t) / {images})
np.save({out!r}, images)
print(json.dumps({{"times": times}}))
"""


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--tf-python", type=Path, help="python of an environment with TensorFlow (the reference)")
    ap.add_argument("--stylegan", type=Path, help="a fetched NVlabs/stylegan folder")
    ap.add_argument("--resolution", type=int, default=256)
    ap.add_argument("--fmap-max", type=int, default=512)
    ap.add_argument("--images", type=int, default=8)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--threads", type=int, default=torch.get_num_threads())
    args = ap.parse_args()
    if not args.tf_python or not args.stylegan or not (args.stylegan / "training" / "networks_stylegan.py").is_file():
        print("skipped: the reference needs --tf-python (TensorFlow) and a fetched NVlabs/stylegan folder (--stylegan)")
        return
    torch.set_num_threads(args.threads)
    kwargs = {"latent_size": 512, "dlatent_size": 512, "num_channels": 3, "label_size": 0,
              "resolution": args.resolution, "fmap_max": args.fmap_max}
    with tempfile.TemporaryDirectory(prefix="sg1-bench-") as tmp:
        pkl, out = Path(tmp) / "sg1.pkl", Path(tmp) / "tf.npy"
        code = TF_SIDE.format(tests=str(ROOT / "tests"), stylegan=str(args.stylegan.resolve()), kwargs=json.dumps(kwargs),
                              pkl=str(pkl), out=str(out), images=args.images, repeats=args.repeats,
                              threads=args.threads)
        done = subprocess.run([str(args.tf_python), "-c", code], capture_output=True, text=True)
        if done.returncode:
            raise SystemExit(done.stderr[-2000:])
        t_tf = statistics.median(json.loads(done.stdout.strip().splitlines()[-1])["times"])
        from ganeval.generators import load_generator

        t0 = time.perf_counter()
        G = load_generator(pkl, device="cpu")
        load = time.perf_counter() - t0
        seeds = list(range(args.images))
        torch.cat(list(G.sample(seeds[:1], truncation=0.7)))  # warm-up
        times = []
        for _ in range(args.repeats):
            t0 = time.perf_counter()
            ours = torch.cat(list(G.sample(seeds, truncation=0.7, noise_mode="const")))
            times.append((time.perf_counter() - t0) / len(seeds))
        t_ours = statistics.median(times)
        diff = np.abs(ours.numpy().astype(int) - np.load(out).astype(int))
    print("| network | ganeval load s | ganeval s/img | NVlabs TF s/img | ganeval ÷ NVlabs speed | max pixel diff | pixels differing |")
    print("|---|---|---|---|---|---|---|")
    print(f"| StyleGAN {args.resolution} px, fmap_max {args.fmap_max} | {load:.2f} | {t_ours:.4f} | {t_tf:.4f} | "
          f"**{t_tf / t_ours:.2f}×** | {diff.max()} | {(diff > 0).mean():.1e} |")


if __name__ == "__main__":
    sys.exit(main())
