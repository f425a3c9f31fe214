"""FID feature extraction speed: ganeval vs pytorch-fid vs torch-fidelity, in-process and as
whole processes, plus the Fréchet step.

All tools read the same image folder with identical (test-built, seeded) Inception weights on
the same device. Runs are interleaved (tool order rotates every repeat) and medians reported,
because the machine may be shared. Whole processes time the command a user runs, from
interpreter start to the statistics file: `ganeval fid DIR --save-stats OUT --no-cache` and
`python -m pytorch_fid --save-stats DIR OUT` (download patched to the same weights);
torch-fidelity has no statistics-only command, so a 6-line script calls its extractor.

  python benchmarks/fid_bench.py -n 300 --faces real --repeats 3
  python benchmarks/fid_bench.py -n 300 --faces synthetic --skip-process
  python benchmarks/fid_bench.py --fast-fid 1000        # FID exact vs --fast on real faces
  python benchmarks/fid_bench.py --imports               # what `ganeval fid --help` loads
"""
from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
import zipfile
from pathlib import Path

import numpy as np
import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from ganeval.compat import ensure_torchvision_importable  # noqa: E402
from ganeval.device import resolve_device  # noqa: E402
from ganeval.features.inception import build_inception  # noqa: E402
from ganeval.metrics.fid import frechet_distance, mean_and_covariance  # noqa: E402
from ganeval.sources import open_source  # noqa: E402
from ganeval.features.extract import source_features  # noqa: E402
from ganeval.synth import write_faces  # noqa: E402
from tests.conftest import random_inception_state  # noqa: E402

REAL_FACES = ROOT.parent / "shared" / "data" / "anime-faces-96px-10k.zip"

PYTORCH_FID = """
import sys, torch
from ganeval.compat import ensure_torchvision_importable
ensure_torchvision_importable()
from pytorch_fid import fid_score, inception
weights, args = sys.argv[1], sys.argv[2:]
inception.load_state_dict_from_url = lambda *a, **k: torch.load(weights, weights_only=True)  # no download
sys.argv = ["pytorch_fid", *args]
fid_score.main()
"""

TORCH_FIDELITY = """
import sys, numpy as np, torch
from ganeval.compat import ensure_torchvision_importable
ensure_torchvision_importable()
from torch_fidelity.datasets import ImagesPathDataset
from torch_fidelity.utils import create_feature_extractor, get_featuresdict_from_dataset
weights, folder, out, device, batch = sys.argv[1:6]
files = sorted(str(p) for p in __import__("pathlib").Path(folder).glob("*.*"))
fx = create_feature_extractor("inception-v3-compat", ["2048"], cuda=device.startswith("cuda"),
                              feature_extractor_weights_path=weights, verbose=False)
f = get_featuresdict_from_dataset(ImagesPathDataset(files), fx, int(batch), device.startswith("cuda"), False, False)["2048"].double().numpy()
np.savez(out, mu=f.mean(0), sigma=np.cov(f, rowvar=False))
"""


def timed(fn):
    start = time.perf_counter()
    result = fn()
    return result, time.perf_counter() - start


def prepare_faces(kind: str, n: int, tmp: Path) -> Path:
    """A flat folder of n faces: the first n of the real 96 px zip (never kept), or synthetic 64 px PNGs."""
    folder = tmp / f"faces-{kind}"
    if kind == "synthetic":
        return write_faces(folder, n, size=64, seed=0)
    if not REAL_FACES.is_file():
        raise SystemExit(f"{REAL_FACES} not found: use --faces synthetic")
    folder.mkdir()
    with zipfile.ZipFile(REAL_FACES) as zf:
        names = sorted(m for m in zf.namelist() if m.lower().endswith((".jpg", ".png")))[:n]
        for i, name in enumerate(names):
            (folder / f"{i:05d}{Path(name).suffix}").write_bytes(zf.read(name))
    return folder


# ---------------------------------------------------------------- in-process

def ours(folder: Path, weights: Path, device, batch_size: int, workers: int, fast: bool = False) -> np.ndarray:
    extractor = build_inception(weights, device, fast=fast)
    return source_features(open_source(folder), extractor, device, batch_size, workers, use_cache=False).features


def pytorch_fid(folder: Path, state: dict, device, batch_size: int, workers: int) -> np.ndarray:
    from pytorch_fid import fid_score as pfid
    from pytorch_fid import inception as pfid_inception

    original = pfid_inception.load_state_dict_from_url
    pfid_inception.load_state_dict_from_url = lambda *a, **k: state  # identical weights, no download
    try:
        model = pfid_inception.InceptionV3([3]).to(device)
    finally:
        pfid_inception.load_state_dict_from_url = original
    files = sorted(str(p) for p in folder.iterdir())
    return pfid.get_activations(files, model, batch_size, 2048, str(device), workers)


def torch_fidelity(folder: Path, weights: Path, device, batch_size: int) -> np.ndarray:
    from torch_fidelity.datasets import ImagesPathDataset
    from torch_fidelity.utils import create_feature_extractor, get_featuresdict_from_dataset

    cuda = device.type == "cuda"
    extractor = create_feature_extractor("inception-v3-compat", ["2048"], cuda=cuda,
                                         feature_extractor_weights_path=str(weights), verbose=False)
    files = sorted(str(p) for p in folder.iterdir())
    return get_featuresdict_from_dataset(ImagesPathDataset(files), extractor, batch_size, cuda, False, False)["2048"].numpy()


def interleaved(runs: dict, repeats: int) -> dict[str, tuple[list[float], object]]:
    """Each repeat runs every tool once, starting one tool later than the previous repeat."""
    names = list(runs)
    times: dict[str, list[float]] = {name: [] for name in names}
    last: dict[str, object] = {}
    for r in range(repeats):
        for name in names[r % len(names):] + names[: r % len(names)]:
            last[name], seconds = timed(runs[name])
            times[name].append(seconds)
            print(f"  repeat {r + 1}: {name} {seconds:.1f} s", file=sys.stderr, flush=True)
    return {name: (times[name], last[name]) for name in names}


def table(title: str, n: int, results: dict, diffs: dict[str, str]) -> None:
    print(f"\n{title}\n")
    print("| tool | median s (runs) | images/s | ganeval ÷ tool (speed) | ganeval --fast ÷ tool | features vs ganeval |")
    print("|---|---|---:|---:|---:|---|")
    med = {name: statistics.median(t) for name, (t, _) in results.items()}
    for name, (t, _) in results.items():
        runs = ", ".join(f"{x:.1f}" for x in t)
        print(f"| {name} | {med[name]:.1f} ({runs}) | {n / med[name]:.1f} | {med[name] / med['ganeval']:.2f}× | "
              f"{med[name] / med['ganeval --fast']:.2f}× | {diffs.get(name, '')} |")


def feature_diff(a: np.ndarray, b: np.ndarray) -> str:
    if a.shape != b.shape:
        return f"shape {b.shape}"
    return "bit-identical" if np.array_equal(a, b) else f"max abs diff {np.abs(a - b).max():.1e}"


# ---------------------------------------------------------------- whole processes

def process_runs(folder: Path, weights: Path, tmp: Path, device: str, batch: int, workers: int) -> dict:
    env = {**os.environ, "GANEVAL_QUIET": "1", "GANEVAL_HOME": str(tmp / "home"), "PYTHONPATH": str(ROOT)}
    common = ["--device", device, "--batch-size", str(batch), "--num-workers", str(workers)]

    def command(argv: list[str], out: Path):
        def run():
            out.unlink(missing_ok=True)
            proc = subprocess.run(argv, env=env, capture_output=True, text=True)
            if proc.returncode:
                raise SystemExit(f"{argv[:4]} failed: {proc.stderr[-2000:]}")
            with np.load(out) as npz:
                return npz["mu"], npz["sigma"]
        return run

    py = sys.executable
    return {
        "ganeval": command([py, "-m", "ganeval", "fid", str(folder), "--save-stats", str(tmp / "g.npz"),
                            "--weights", str(weights), "--no-cache", *common], tmp / "g.npz"),
        "ganeval --fast": command([py, "-m", "ganeval", "fid", str(folder), "--save-stats", str(tmp / "gf.npz"),
                                   "--weights", str(weights), "--no-cache", "--fast", *common], tmp / "gf.npz"),
        "pytorch-fid 0.3.0": command([py, "-c", PYTORCH_FID, str(weights), "--save-stats", str(folder),
                                      str(tmp / "p.npz"), *common], tmp / "p.npz"),
        "torch-fidelity 0.4.0": command([py, "-c", TORCH_FIDELITY, str(weights), str(folder), str(tmp / "t.npz"),
                                         device, str(batch)], tmp / "t.npz"),
    }


def stats_diff(a, b) -> str:
    (mu1, s1), (mu2, s2) = a, b
    if np.array_equal(mu1, mu2) and np.array_equal(s1, s2):
        return "identical mu, sigma"
    return f"mu max abs diff {np.abs(mu1 - mu2).max():.1e}"


# ---------------------------------------------------------------- exact vs --fast FID, Fréchet step

def fast_vs_exact(folder: Path, weights: Path, device, batch: int, workers: int) -> None:
    exact = ours(folder, weights, device, batch, workers)
    quick = ours(folder, weights, device, batch, workers, fast=True)
    half = len(exact) // 2
    fid_e = frechet_distance(*mean_and_covariance(exact[:half]), *mean_and_covariance(exact[half:]))
    fid_f = frechet_distance(*mean_and_covariance(quick[:half]), *mean_and_covariance(quick[half:]))
    print(f"\nFID between the two halves of {len(exact)} faces ({folder.name}): exact {fid_e:.9g}, "
          f"--fast {fid_f:.9g}, relative difference {abs(fid_f - fid_e) / fid_e:.2e}; "
          f"feature max abs diff {np.abs(exact - quick).max():.1e}")


def frechet_rows(dim: int = 2048, n: int = 4000) -> None:
    import scipy.linalg

    rng = np.random.default_rng(0)
    print("\nFréchet distance on 2048-d statistics (float64)\n")
    print("| case | ganeval s | scipy.linalg.sqrtm s | speed-up | relative difference |")
    print("|---|---|---|---|---|")
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
        print(f"| {label} | {t_ours:.2f} | {t_ref:.2f} | {t_ref / t_ours:.1f}× | {abs(value - ref) / abs(ref):.1e} |")


IMPORT_PROBE = """
import sys, time
start = time.process_time()
from ganeval.cli.main import build_parser
build_parser(sys.argv[1:])
heavy = [m for m in ("torch", "scipy.stats", "faiss", "sklearn", "pandas", "streamlit", "matplotlib") if m in sys.modules]
print(f"{len(sys.modules)} modules, {time.process_time() - start:.2f} CPU s, heavy: {', '.join(heavy) or 'none'}")
"""


def import_rows(repeats: int) -> None:
    """Modules and CPU seconds to build the parser (CPU time survives a loaded machine)."""
    print("\n| `ganeval …` | modules, CPU s to import + build the parser (each run) |\n|---|---|")
    for argv in (["fid", "--help"], ["--help"]):
        runs = [subprocess.run([sys.executable, "-c", IMPORT_PROBE, *argv], capture_output=True, text=True,
                               cwd=ROOT).stdout.strip() for _ in range(repeats)]
        print(f"| `{' '.join(argv)}` | {' / '.join(runs)} |")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("-n", type=int, default=300, help="images")
    parser.add_argument("--faces", choices=("real", "synthetic"), default="real")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--batch-size", type=int, default=50)
    parser.add_argument("--num-workers", type=int, default=min(2, os.cpu_count() or 1))
    parser.add_argument("--device", default="auto")
    parser.add_argument("--skip-inprocess", action="store_true")
    parser.add_argument("--skip-process", action="store_true")
    parser.add_argument("--frechet", action="store_true", help="also time the Fréchet step against sqrtm")
    parser.add_argument("--imports", action="store_true", help="only: modules and CPU time of the CLI start-up")
    parser.add_argument("--fast-fid", type=int, metavar="N", default=0,
                        help="only: FID between two halves of N faces, exact vs --fast")
    args = parser.parse_args()
    device = resolve_device(args.device)
    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
    print(f"device: {device}, torch threads: {torch.get_num_threads()}, cores: {os.cpu_count()}, "
          f"torch {torch.__version__}, load average at start {load:.1f}")
    if args.imports:
        import_rows(args.repeats)
        return
    ensure_torchvision_importable()
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        state = random_inception_state(seed=0)
        weights = tmp / "weights.pth"
        torch.save(state, weights)
        if args.fast_fid:
            fast_vs_exact(prepare_faces(args.faces, args.fast_fid, tmp), weights, device, args.batch_size,
                          args.num_workers)
            return
        folder = prepare_faces(args.faces, args.n, tmp)
        what = f"{args.n} {args.faces} faces ({'96 px JPEG' if args.faces == 'real' else '64 px PNG'})"
        setting = f"batch {args.batch_size}, {args.num_workers} loader workers, identical weights, {args.repeats} interleaved repeats"
        if not args.skip_inprocess:
            warm = tmp / "warm"
            warm.mkdir()
            for f in sorted(folder.iterdir())[: args.batch_size]:
                (warm / f.name).symlink_to(f)
            for fast in (False, True):  # first-call allocations and oneDNN kernel selection
                ours(warm, weights, device, args.batch_size, 0, fast)
            results = interleaved({
                "ganeval": lambda: ours(folder, weights, device, args.batch_size, args.num_workers),
                "ganeval --fast": lambda: ours(folder, weights, device, args.batch_size, args.num_workers, True),
                "pytorch-fid 0.3.0": lambda: pytorch_fid(folder, state, device, args.batch_size, args.num_workers),
                "torch-fidelity 0.4.0": lambda: torch_fidelity(folder, weights, device, args.batch_size),
            }, args.repeats)
            ref = results["ganeval"][1]
            table(f"In-process feature extraction (model build + loading + network): {what}, {setting}", args.n,
                  results, {name: feature_diff(ref, feats) for name, (_, feats) in results.items()})
        if not args.skip_process:
            results = interleaved(process_runs(folder, weights, tmp, str(device), args.batch_size, args.num_workers),
                                  args.repeats)
            ref = results["ganeval"][1]
            table(f"Whole processes, image folder → statistics file: {what}, {setting}", args.n, results,
                  {name: stats_diff(ref, st) for name, (_, st) in results.items()})
    if args.frechet:
        frechet_rows()


if __name__ == "__main__":
    main()
