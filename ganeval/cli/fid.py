"""``ganeval fid A B``: FID, KID, IS and precision/recall/density/coverage between two image
sets, statistics files or a generator."""
from __future__ import annotations

import argparse

from ganeval.api import DEFAULT_METRICS, METRICS, compute_metrics
from ganeval.cli.generator_args import GENERATOR_HELP, add_sampling_args, load_from_args, sample_options, seeds_from_args
from ganeval.cli.common import HelpFormatter, add_device_args, add_loader_args, emit_json, note, positive_int, warn
from ganeval.distributed import setup, teardown
from ganeval.errors import BadInput
from ganeval.features.registry import FEATURES, PRESETS

EXAMPLES = """examples:
  ganeval fid real/ generated/                      FID + KID on Inception pool3
  ganeval fid real/ generated/ --metrics all        + Inception Score, precision/recall, density/coverage
  ganeval fid real/ generated/ --metrics fid,prdc --prdc-k 5 --prdc-n 5000
  ganeval fid real/ generated/ --preset clean-fid   clean-fid's preprocessing (Pillow bicubic on floats)
  ganeval fid real/ generated/ --metrics fid,kid,is --preset torch-fidelity   torch-fidelity's numbers
  ganeval fid real/ generated/ --features dinov2    FD_DINOv2 (ViT-L/14 CLS token)
  ganeval fid real.zip fake.npz --features illust2vec
  ganeval fid real/ --save-stats real_stats.npz     statistics only (pytorch-fid format)
  ganeval fid real/ fake/ --save-stats r.npz --save-stats f.npz --save-features feats.npz
  ganeval fid real_stats.npz generated/ --json
  ganeval fid --generator run/checkpoint.pt -n 50000 real_stats.npz   FID50k from a generator
  ganeval fid --generator network-snapshot-025000.pkl real_stats.npz   FID50k of an NVlabs pickle
  torchrun --nproc_per_node 4 -m ganeval fid real/ generated/   split the images across 4 processes
                                                    (same FID as one process; rank 0 prints)
"""


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("fid", help="FID, KID, IS, precision/recall/density/coverage between two image sets",
                       description=__doc__, epilog=EXAMPLES, formatter_class=HelpFormatter)
    p.add_argument("inputs", nargs="+", metavar="SOURCE",
                   help="image folder, .zip, .npy/.npz images, or a .npz with mu/sigma (pytorch-fid format)")
    p.add_argument("--metrics", default=",".join(DEFAULT_METRICS),
                   help=f"comma-separated, from {', '.join(METRICS)}, or all (default: fid,kid)")
    p.add_argument("--features", choices=FEATURES, default="inception", help="feature network")
    p.add_argument("--weights", default=None, help="weight file for the feature network (default: cache or download)")
    p.add_argument("--preset", "--resize", dest="preset", default="pytorch-fid",
                   metavar="{" + ",".join(PRESETS) + "}",
                   help="whose Inception preprocessing every metric uses, so the numbers equal that package's: "
                        "pytorch-fid (bilinear, 2x/255-1), torch-fidelity (TF1 bilinear, (x-128)/128), "
                        "clean-fid (Pillow bicubic on floats)")
    p.add_argument("--fast", action="store_true",
                   help="Inception with BatchNorm folded and channels-last: faster, features differ from "
                        "pytorch-fid's by ~1e-4 (float32 rounding), so not bit-identical")
    add_loader_args(p, batch_size=50)
    add_device_args(p)
    p.add_argument("--save-stats", action="append", metavar="OUT.npz", default=None,
                   help="write the statistics of the first input in pytorch-fid's format; give it again for the second")
    p.add_argument("--save-features", metavar="OUT.npz", default=None,
                   help="write the raw features of each input (keys a and b, N×D float32, input order)")
    p.add_argument("--per-image", metavar="OUT.csv", default=None,
                   help="write every image of the second input's realism and rarity scores, nearest first-input "
                        "image and Gaussian log-density (needs images on both sides)")
    p.add_argument("--overwrite", action="store_true", help="replace existing --save-stats/--save-features/--per-image files")
    p.add_argument("--generator", metavar="GENERATOR", default=None,
                   help="sample the other side from this generator: " + GENERATOR_HELP)
    add_sampling_args(p, n_default=50_000, noise_default="random",
                      seed_help="first seed of --generator's images, and the prdc subsampling seed")
    p.add_argument("--kid-subsets", type=positive_int, default=100, help="KID subsets (torch-fidelity's default)")
    p.add_argument("--kid-subset-size", type=positive_int, default=1000, help="KID subset size (shrinks to the smaller set)")
    p.add_argument("--prdc-k", default="3,5", metavar="K[,K_DC]",
                   help="nearest neighbours for precision/recall and for density/coverage (default 3,5 as the papers)")
    p.add_argument("--prdc-n", type=positive_int, default=10_000,
                   help="precision/recall/density/coverage on at most this many samples per side (seeded subsample)")
    p.add_argument("--no-cache", action="store_true", help="neither read nor write cached features")
    p.add_argument("--json", action="store_true", help="print the result as JSON")
    p.set_defaults(func=run)


def run(args) -> int:
    if len(args.inputs) + (1 if args.generator else 0) > 2:
        raise BadInput("give two inputs (or one input with --generator)")
    world, device = setup(args.device)  # under torchrun: join the group, each rank extracts a share
    try:
        code = _measure(args, device, world)
    except BaseException:
        teardown(clean=False)
        raise
    teardown()
    return code


def _measure(args, device, world) -> int:
    sides = list(args.inputs)
    if args.generator:
        from ganeval.api import generator_side

        G = load_from_args(args.generator, args, device)
        sides.append(generator_side(G, seeds_from_args(args), args.batch_size, **sample_options(args)))
    result = compute_metrics(
        sides[0], sides[1] if len(sides) > 1 else None, args.metrics,
        features=args.features, weights=args.weights, device=device, preset=args.preset, fast=args.fast,
        batch_size=args.batch_size, num_workers=args.num_workers, strict=args.strict, cache=not args.no_cache,
        seed=args.seed, kid_subsets=args.kid_subsets, kid_subset_size=args.kid_subset_size,
        prdc_k=args.prdc_k, prdc_n=args.prdc_n, save_stats=args.save_stats, save_features=args.save_features,
        per_image=args.per_image,
        overwrite=args.overwrite, on_warning=warn if world.is_main else (lambda msg: None), world=world)
    if not world.is_main:  # every rank holds all features; rank 0 writes and prints
        return 0
    for out, key in zip(args.save_stats or [], "ab"):
        note(f"saved statistics of {result[key]['path']} ({result[key]['n']} images) to {out}")
    if args.save_features:
        note(f"saved features to {args.save_features}")
    if args.per_image:
        note(f"saved per-image scores of {result['b']['n']} images to {args.per_image}")
    if "b" not in result:
        return 0
    if args.json:
        emit_json(result)
        return 0
    print_result(result)
    return 0


def print_result(result: dict) -> None:
    if "fid" in result:
        print(f"FID ({result['features']}, {result['feature_dim']}-d): {result['fid']:.4f}")
    if "kid_mean" in result:
        if result["kid_mean"] is None:
            print("KID: n/a (needs features; a statistics file holds only mu and sigma)")
        else:
            print(f"KID: {result['kid_mean']:.6f} ± {result['kid_std']:.6f} "
                  f"({result['kid_subsets']} subsets of {result['kid_subset_size']})")
    if "is_mean" in result:
        print(f"IS (of B): {result['is_mean']:.4f} ± {result['is_std']:.4f} (10 splits)")
    if "precision" in result:
        k_pr, k_dc = result["prdc_k"]
        print(f"precision {result['precision']:.4f}, recall {result['recall']:.4f} (k={k_pr}); "
              f"density {result['density']:.4f}, coverage {result['coverage']:.4f} (k={k_dc}); "
              f"{result['prdc_n'][0]} vs {result['prdc_n'][1]} samples")
    for name in ("a", "b"):
        fs = result[name]
        extra = " (cached)" if fs["cached"] else ""
        kind = "samples (statistics file)" if fs["origin"] == "statistics" else "samples"
        print(f"{name.upper()}: {fs['path']} — {fs['n']} {kind}{extra}")
