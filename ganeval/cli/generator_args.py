"""The options every command that draws from a generator shares: which images (``--seeds`` or
``-n``/``--seed``), how (``--truncation``, ``--noise-mode``, ``--class``) and, for a user's own
code or a TorchScript file, its latent size (``--z-dim``). One definition, so ``sample``,
``fid --generator``, ``nearest --generator``, ``compare`` and ``study init`` agree."""
from __future__ import annotations

import argparse
from typing import Any

from ganeval.cli.common import positive_int
from ganeval.sampler import NOISE_MODES, seed_list

GENERATOR_HELP = ("a ganeval checkpoint or run folder, an NVlabs network pickle (stylegan2-ada-pytorch, stylegan3; "
                  "loaded without running anything stored in it), a TorchScript file, or module:function "
                  "(your own code, which this runs)")


def add_sampling_args(p: argparse.ArgumentParser, n_default: int | None = None, noise_default: str = "const",
                      seed_help: str = "first seed of -n images: seeds SEED, SEED+1, …") -> None:
    p.add_argument("--seeds", metavar="LIST", help="images of these seeds, e.g. 0-99 or 0-3,10 (as NVlabs' gen_images.py)")
    p.add_argument("-n", "--num-samples", dest="num_samples", type=positive_int, default=n_default,
                   help="number of images (seeds --seed … --seed+N−1)" + (f"; default {n_default}" if n_default else ""))
    p.add_argument("--seed", type=int, default=0, help=seed_help)
    p.add_argument("--truncation", type=float, metavar="PSI", default=1.0,
                   help="style-based generators: truncation ψ, w = w_avg + ψ(w − w_avg) (default 1: none)")
    p.add_argument("--noise-mode", choices=NOISE_MODES, default=noise_default,
                   help=f"style-based generators: per-pixel noise, the stored constant (const), fresh noise seeded "
                        f"by each image's seed (random) or none (default {noise_default})")
    p.add_argument("--class", dest="class_idx", type=int, metavar="K",
                   help="conditional generators: the class of every image (0-based)")
    p.add_argument("--z-dim", type=positive_int, help="latent size of a TorchScript or module:function generator")
    p.add_argument("--no-ema", action="store_true", help="ganeval checkpoints: the raw generator, not its EMA copy")


def seeds_from_args(args: argparse.Namespace) -> list[int]:
    given_n = args.num_samples if args.seeds is None else None
    return seed_list(args.seeds, given_n, args.seed)


def sample_options(args: argparse.Namespace) -> dict[str, Any]:
    return {"truncation": args.truncation, "noise_mode": args.noise_mode, "class_idx": args.class_idx}


def load_from_args(source: str, args: argparse.Namespace, device: Any):
    from ganeval.generators import load_generator

    return load_generator(source, z_dim=args.z_dim, device=device, use_ema=not args.no_ema)
