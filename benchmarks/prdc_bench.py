"""Precision/recall/density/coverage: ganeval's blockwise torch code vs the ``prdc`` package
(which builds full N×N distance matrices with scikit-learn), on the same features.

Each implementation runs in its own child process (so peak memory is its own: the child's
ru_maxrss); both get the same seeded non-negative 2048-d features (Inception pool3 features
are post-ReLU averages; only their geometry matters here, so no network runs). Prints a
markdown table. Usage: python benchmarks/prdc_bench.py [-n 10000] [--dim 2048] [-k 5]
[--threads 2]
"""
from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def features(n: int, dim: int, seed: int):
    import numpy as np

    basis = np.random.default_rng(1234).normal(size=(64, dim)).astype(np.float32) / 8  # one manifold for both sides
    rng = np.random.default_rng(seed)
    return np.abs(rng.normal(size=(n, 64)).astype(np.float32) @ basis + rng.normal(size=(n, dim)).astype(np.float32) * 0.1)


def child(impl: str, n: int, dim: int, k: int, threads: int) -> None:
    import torch

    torch.set_num_threads(threads)
    real, fake = features(n, dim, 0), features(n, dim, 1) * 1.05
    start = time.perf_counter()
    if impl == "ganeval":
        sys.path.insert(0, str(ROOT))
        from ganeval.metrics.prdc import prdc

        res = prdc(real, fake, k_pr=k, k_dc=k)
        out = {key: getattr(res, key) for key in ("precision", "recall", "density", "coverage")}
    else:
        import contextlib
        import io

        from prdc import compute_prdc

        with contextlib.redirect_stdout(io.StringIO()):
            out = {key: float(v) for key, v in compute_prdc(real, fake, nearest_k=k).items()}
    out["seconds"] = time.perf_counter() - start
    out["peak_mib"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(json.dumps(out))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("-n", type=int, default=10_000, help="samples per side")
    parser.add_argument("--dim", type=int, default=2048)
    parser.add_argument("-k", type=int, default=5, help="k for all four metrics (the prdc package has one k)")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--only", choices=("ganeval", "prdc"), help="run one implementation (for sizes where the other is too slow)")
    parser.add_argument("--child", choices=("ganeval", "prdc"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        child(args.child, args.n, args.dim, args.k, args.threads)
        return
    base = [sys.executable, __file__, "-n", str(args.n), "--dim", str(args.dim), "-k", str(args.k),
            "--threads", str(args.threads)]
    rows = {}
    for impl in (args.only,) if args.only else ("ganeval", "prdc"):
        done = subprocess.run([*base, "--child", impl], capture_output=True, text=True, check=True)
        rows[impl] = json.loads(done.stdout.strip().splitlines()[-1])
    print(f"{args.n:,} × {args.n:,} features, {args.dim}-d, k={args.k}, {args.threads} threads\n")
    print("| implementation | seconds | peak memory (MiB) | precision | recall | density | coverage |")
    print("|---|---|---|---|---|---|---|")
    for impl, r in rows.items():
        print(f"| {impl} | {r['seconds']:.1f} | {r['peak_mib']:.0f} | {r['precision']:.4f} | {r['recall']:.4f} "
              f"| {r['density']:.4f} | {r['coverage']:.4f} |")


if __name__ == "__main__":
    main()
