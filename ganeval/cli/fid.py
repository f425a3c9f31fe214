"""``ganeval fid A B``: FID and KID between two image sets, statistics files or a generator."""
from __future__ import annotations

import argparse
import warnings
from pathlib import Path

from ganeval.cli.common import (HelpFormatter, add_device_args, add_loader_args, add_output_args, emit_json, note,
                                positive_int, warn)
from ganeval.device import resolve_device
from ganeval.errors import BadInput
from ganeval.features.registry import FEATURES, build_extractor
from ganeval.metrics.fid import frechet_distance
from ganeval.metrics.kid import kernel_inception_distance
from ganeval.outputs import check_output_files
from ganeval.stats import FeatureSet, generator_features, path_features, save_stats

EXAMPLES = """examples:
  ganeval fid real/ generated/                      FID + KID on Inception pool3
  ganeval fid real.zip fake.npz --features illust2vec
  ganeval fid real/ --save-stats real_stats.npz     statistics only (pytorch-fid format)
  ganeval fid real/ --save-stats real_stats.npz --overwrite     replace an existing statistics file
  ganeval fid real_stats.npz generated/ --json
  ganeval fid --generator run/checkpoint.pt -n 50000 real_stats.npz   FID50k from a generator
"""


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("fid", help="FID and KID between two image sets or statistics files",
                       description=__doc__, epilog=EXAMPLES, formatter_class=HelpFormatter)
    p.add_argument("inputs", nargs="+", metavar="SOURCE",
                   help="image folder, .zip, .npy/.npz images, or a .npz with mu/sigma (pytorch-fid format)")
    p.add_argument("--features", choices=FEATURES, default="inception", help="feature network")
    p.add_argument("--weights", default=None, help="weight file for the feature network (default: cache or download)")
    p.add_argument("--fast", action="store_true",
                   help="Inception with BatchNorm folded and channels-last: faster, features differ from "
                        "pytorch-fid's by ~1e-4 (float32 rounding), so not bit-identical")
    add_loader_args(p, batch_size=50)
    add_device_args(p)
    p.add_argument("--save-stats", nargs="+", metavar="OUT.npz", default=None,
                   help="write the statistics of the first (and second) input in pytorch-fid's format "
                        "(never onto an input; an existing file needs --overwrite)")
    add_output_args(p)
    p.add_argument("--generator", metavar="CKPT", default=None, help="sample the other side from this generator checkpoint")
    p.add_argument("-n", "--num-samples", type=positive_int, default=50_000, help="samples to draw with --generator")
    p.add_argument("--seed", type=int, default=0, help="latent seed for --generator")
    p.add_argument("--truncation", type=float, metavar="PSI",
                   help="stylegan2 only: sample --generator with truncation ψ (default 1: none)")
    p.add_argument("--kid-subsets", type=positive_int, default=100, help="KID subsets (torch-fidelity's default)")
    p.add_argument("--kid-subset-size", type=positive_int, default=1000, help="KID subset size (shrinks to the smaller set)")
    p.add_argument("--no-cache", action="store_true", help="neither read nor write cached features")
    p.add_argument("--json", action="store_true", help="print the result as JSON")
    p.set_defaults(func=run)


def _side(path: str, args, extractor, device) -> FeatureSet:
    return path_features(path, extractor, device, args.batch_size, args.num_workers, args.strict,
                         use_cache=not args.no_cache, on_skip=warn)


def _describe(fs: FeatureSet) -> dict:
    return {"path": fs.label, "origin": fs.origin, "n": fs.n, "cached": fs.cached, "skipped_corrupt": fs.skipped}


def run(args) -> int:
    n_inputs = len(args.inputs) + (1 if args.generator else 0)
    if n_inputs > 2:
        raise BadInput("give two inputs (or one input with --generator)")
    if args.save_stats and len(args.save_stats) > len(args.inputs):
        raise BadInput("--save-stats takes one file per input")
    device = resolve_device(args.device)
    for path in args.inputs:  # fail on a bad path before loading any network
        if not Path(path).exists():
            raise BadInput(f"{path}: no such file or folder")
    check_output_files(args.save_stats or [], [*args.inputs, args.generator, args.weights], args.overwrite,
                       flag="--save-stats")
    extractor = build_extractor(args.features, args.weights, device, fast=args.fast)
    if not extractor.info.standard:
        warn(f"{args.features} weights are not the published ones: values are not comparable with published numbers")
    sides = [_side(path, args, extractor, device) for path in args.inputs]
    if args.generator:
        sides.append(generator_features(args.generator, extractor, device, args.num_samples, args.batch_size, args.seed,
                                        truncation=args.truncation))
    for fs, out in zip(sides, args.save_stats or []):
        save_stats(out, fs)
        note(f"saved statistics of {fs.label} ({fs.n} images) to {out}")
    if len(sides) == 1:
        if not args.save_stats:
            raise BadInput("one input given: add a second input to compare, or --save-stats OUT.npz")
        return 0
    a, b = sides
    for fs in sides:
        if fs.origin != "statistics" and fs.n < extractor.info.dim:
            warn(f"{fs.label}: {fs.n} samples < {extractor.info.dim} feature dimensions; FID is biased upwards "
                 "and only comparable at equal sample counts")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        fid = frechet_distance(a.mu, a.sigma, b.mu, b.sigma)
    kid = None
    if a.features is not None and b.features is not None:
        kid = kernel_inception_distance(a.features, b.features, args.kid_subsets, args.kid_subset_size)
    result = {
        "fid": fid,
        "kid_mean": kid.mean if kid else None,
        "kid_std": kid.std if kid else None,
        "kid_subsets": kid.subsets if kid else None,
        "kid_subset_size": kid.subset_size if kid else None,
        "features": extractor.info.name,
        "standard_weights": extractor.info.standard,
        "a": _describe(a),
        "b": _describe(b),
    }
    if args.json:
        emit_json(result)
        return 0
    print(f"FID ({extractor.info.name}, {extractor.info.dim}-d): {fid:.4f}")
    if kid:
        print(f"KID: {kid.mean:.6f} ± {kid.std:.6f} ({kid.subsets} subsets of {kid.subset_size})")
    else:
        print("KID: n/a (needs features; a statistics file holds only mu and sigma)")
    for name, fs in (("A", a), ("B", b)):
        extra = " (cached)" if fs.cached else ""
        print(f"{name}: {fs.label} — {fs.n} {'samples' if fs.origin != 'statistics' else 'samples (statistics file)'}{extra}")
    return 0
