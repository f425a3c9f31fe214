"""FID feature extraction and Fréchet-step speed: ganeval vs pytorch-fid vs torch-fidelity.

All three run the same 2,000 synthetic 64×64 PNG faces through Inception-v3 with identical
(randomly initialised, seeded) weights, on the same device, in this one process. Prints a
markdown table. Usage: python benchmarks/fid_bench.py [-n 2000] [--batch-size 50]
[--num-workers 2] [--device cpu]
"""
from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import scipy.linalg
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from ganeval.compat import ensure_torchvision_importable  # noqa: E402
from ganeval.device import resolve_device  # noqa: E402
from ganeval.features.inception import build_inception  # noqa: E402
from ganeval.metrics.fid import frechet_distance, mean_and_covariance  # noqa: E402
from ganeval.sources import open_source  # noqa: E402
from ganeval.stats import source_features  # noqa: E402
from ganeval.synth import write_faces  # noqa: E402
from tests.conftest import random_inception_state  # noqa: E402

ensure_torchvision_importable()
from pytorch_fid import fid_score as pfid  # noqa: E402
from pytorch_fid import inception as pfid_inception  # noqa: E402
from torch_fidelity.datasets import ImagesPathDataset  # noqa: E402
from torch_fidelity.utils import create_feature_extractor, get_featuresdict_from_dataset  # noqa: E402


def timed(fn):
    start = time.perf_counter()
    result = fn()
    return result, time.perf_counter() - start


def ours(folder: Path, weights: Path, device, batch_size: int, workers: int, fast: bool = False) -> np.ndarray:
    extractor = build_inception(weights, device, fast=fast)
    fs = source_features(open_source(folder), extractor, device, batch_size, workers, use_cache=False)
    return fs.features


def pytorch_fid(folder: Path, state: dict, device, batch_size: int, workers: int) -> np.ndarray:
    original = pfid_inception.load_state_dict_from_url
    pfid_inception.load_state_dict_from_url = lambda *a, **k: state  # identical weights, no download
    try:
        model = pfid_inception.InceptionV3([3]).to(device)
    finally:
        pfid_inception.load_state_dict_from_url = original
    files = sorted(str(p) for p in folder.glob("*.png"))
    return pfid.get_activations(files, model, batch_size, 2048, str(device), workers)


def torch_fidelity(folder: Path, weights: Path, device, batch_size: int) -> np.ndarray:
    cuda = device.type == "cuda"
    extractor = create_feature_extractor("inception-v3-compat", ["2048"], cuda=cuda,
                                         feature_extractor_weights_path=str(weights), verbose=False)
    files = sorted(str(p) for p in folder.glob("*.png"))
    feats = get_featuresdict_from_dataset(ImagesPathDataset(files), extractor, batch_size, cuda, False, False)
    return feats["2048"].numpy()


def frechet_rows(dim: int = 2048, n: int = 4000) -> list[tuple[str, float, float, float]]:
    rng = np.random.default_rng(0)
    rows = []
    for label, samples in (("n > d (positive definite)", n), ("n < d (singular)", dim // 2)):
        a = rng.normal(size=(samples, dim)).astype(np.float32)
        b = (rng.normal(size=(samples, dim)) * 1.1 + 0.05).astype(np.float32)
        (m1, s1), (m2, s2) = mean_and_covariance(a), mean_and_covariance(b)
        value, t_ours = timed(lambda: frechet_distance(m1, s1, m2, s2))

        def via_sqrtm():  # what pytorch-fid and clean-fid do, minus the removed disp argument
            covmean = scipy.linalg.sqrtm(s1 @ s2)
            diff = m1 - m2
            return float(diff @ diff + np.trace(s1) + np.trace(s2) - 2 * np.trace(covmean.real))

        ref, t_ref = timed(via_sqrtm)
        rows.append((label, t_ours, t_ref, abs(value - ref) / abs(ref)))
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("-n", type=int, default=2000)
    parser.add_argument("--batch-size", type=int, default=50)
    parser.add_argument("--num-workers", type=int, default=min(2, os.cpu_count() or 1))
    parser.add_argument("--device", default="auto")
    parser.add_argument("--skip-extraction", action="store_true")
    args = parser.parse_args()
    device = resolve_device(args.device)
    print(f"device: {device}, torch threads: {torch.get_num_threads()}, cores: {os.cpu_count()}, "
          f"torch {torch.__version__}\n")
    if not args.skip_extraction:
        with tempfile.TemporaryDirectory() as tmp:
            tmp = Path(tmp)
            folder = write_faces(tmp / "faces", args.n, size=64, seed=0)
            state = random_inception_state(seed=0)
            weights = tmp / "weights.pth"
            torch.save(state, weights)
            warm = tmp / "warm"
            warm.mkdir()
            for png in sorted(folder.glob("*.png"))[: args.batch_size]:
                (warm / png.name).symlink_to(png)
            for fast in (False, True):  # warm-up: first-call allocations and oneDNN kernel selection
                ours(warm, weights, device, args.batch_size, 0, fast)
            runs = [
                ("ganeval", lambda: ours(folder, weights, device, args.batch_size, args.num_workers)),
                ("ganeval --fast", lambda: ours(folder, weights, device, args.batch_size, args.num_workers, True)),
                ("pytorch-fid 0.3.0", lambda: pytorch_fid(folder, state, device, args.batch_size, args.num_workers)),
                ("torch-fidelity 0.4.0", lambda: torch_fidelity(folder, weights, device, args.batch_size)),
            ]
            results = {name: timed(fn) for name, fn in runs}
        base = args.n / results["ganeval"][1]
        print(f"Feature extraction: {args.n} synthetic 64×64 PNG faces → Inception pool3 (2048-d), "
              f"batch {args.batch_size}, identical weights\n")
        print("| tool | seconds | images/s | images/s relative to ganeval (default) | max abs feature diff vs ganeval |")
        print("|---|---|---|---|---|")
        reference = results["ganeval"][0]
        for name, (feats, seconds) in results.items():
            ips = args.n / seconds
            diff = float(np.abs(feats - reference).max()) if feats.shape == reference.shape else float("nan")
            print(f"| {name} | {seconds:.1f} | {ips:.1f} | {ips / base:.2f}× | {diff:.2e} |")
        spread = float(reference.std(axis=0).mean())
        print(f"\n(feature spread for scale: mean per-dimension std across images = {spread:.2e})\n")
    print("Fréchet distance on 2048-d statistics (float64)\n")
    print("| case | ganeval s | scipy.linalg.sqrtm s | speed-up | relative difference |")
    print("|---|---|---|---|---|")
    for label, t_ours, t_ref, rel in frechet_rows():
        print(f"| {label} | {t_ours:.2f} | {t_ref:.2f} | {t_ref / t_ours:.1f}× | {rel:.1e} |")


if __name__ == "__main__":
    main()
