"""``ganeval nearest GENERATED TRAIN``: each generated image's most similar training images by SSIM.

Does the GAN invent faces or copy its training set? Scores are exact SSIM, as
scikit-image computes it (Gaussian window σ=1.5, K1=0.01, K2=0.03, on RGB; --gray: on
luminance 0.2125 R + 0.7154 G + 0.0721 B). Images are compared at the training set's
size (its first image's); other sizes are resized with Pillow's bicubic filter
(antialiased when shrinking), and the output says how many were.

The search is a cascade whose last step is exact: FAISS over SSIM-like embeddings gives
--candidates per query, a strided SSIM keeps the best --shortlist, exact SSIM ranks them.
--exact scores every training image instead (the ground truth; slow). The training index
is built once and cached under $GANEVAL_HOME/nearest, keyed by the set's content.

Writes to OUTDIR: neighbours.csv (query, rank, train, ssim), summary.json (per-rank
statistics, copy and original shares, hubness, recall, copy statistics), ssim_hist.png (one
panel per rank), contact_sheets/ (each query beside its neighbours, with scores; hubs.png: the
training images most often top-1), and with --mean-all mean_ssim.csv and mean_ssim.png.
Every run reports hubness (k-occurrence skewness S_Nk for k = 1, 5, 10, Radovanovic et al. 2010)
and warns when S_N10 is well above a hub-free choice's or one training image is the top-1 of > 5%
of queries. With --test, C_T (Meehan et al. 2020) compares in-cell distances of generated and
held-out images.
OUTDIR may not be (or lie inside, or hold) an input; a non-empty OUTDIR needs --overwrite, which
removes what an earlier `ganeval nearest` wrote there (stale contact sheets included) and never
touches other files."""
from __future__ import annotations

import argparse

from ganeval.cli.generator_args import (GENERATOR_HELP, add_sampling_args, load_from_args, sample_options,
                                        seeds_from_args)
from ganeval.cli.common import (HelpFormatter, add_device_args, add_loader_args, add_output_args, emit_json,
                                nonneg_int, note, positive_int)
from ganeval.errors import BadInput
from ganeval.features.registry import FEATURES
from ganeval.nearest.api import find_nearest
from ganeval.nearest.pipeline import DEFAULT_COPY_THRESHOLD, is_main_process

EXAMPLES = """examples:
  ganeval nearest generated/ train.zip -k 4 -o nn-out           top-4 SSIM neighbours, all outputs
  ganeval nearest fake.npz real/ -o out --check-recall 50       also measure recall against --exact
  ganeval nearest fake/ real/ -o out --exact --mean-all         exhaustive, plus mean SSIM over all
  ganeval nearest fake/ real/ -o out --test heldout/            + data-copying C_T and authenticity
  ganeval nearest fake/ real/ --gray --json                     luminance SSIM, summary on stdout
  ganeval nearest fake/ real/ --space inception -o out          cosine neighbours in Inception features
  torchrun --nproc_per_node 4 -m ganeval nearest fake/ real/ -o out    queries sharded over 4 processes
  ganeval nearest fake/ real/ -o out --overwrite                replace the earlier run's outputs in out/
  ganeval nearest --generator network-snapshot-025000.pkl real/ -n 1000 -o out   1,000 samples of a pickle
"""


def _threshold(text: str) -> float:
    value = float(text)
    if not -1.0 <= value <= 1.0:
        raise argparse.ArgumentTypeError(f"SSIM thresholds lie in [-1, 1], got {value}")
    return value


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("nearest", help="nearest training images of each generated image by exact SSIM",
                       description=__doc__, epilog=EXAMPLES, formatter_class=HelpFormatter)
    p.add_argument("generated", metavar="GENERATED", nargs="?",
                   help="generated images: folder, .zip, .npy or .npz (leave out with --generator)")
    p.add_argument("train", metavar="TRAIN", help="training images: folder, .zip, .npy or .npz")
    p.add_argument("--generator", metavar="GENERATOR", default=None,
                   help="draw the generated images from this generator instead: " + GENERATOR_HELP)
    p.add_argument("-k", type=positive_int, default=4, help="neighbours per generated image")
    p.add_argument("-o", "--outdir", default=None, help="output folder (without it, only the summary is printed)")
    add_output_args(p)
    p.add_argument("--gray", action="store_true", help="SSIM on luminance instead of RGB")
    p.add_argument("--space", default="ssim", metavar="SPACE",
                   help=f"similarity: ssim (exact SSIM), or cosine of a feature network's features: "
                        f"{', '.join(FEATURES)} (copy detection beyond SSIM)")
    p.add_argument("--weights", default=None, help="weight file of the --space network (default: cache or download)")
    p.add_argument("--exact", action="store_true", help="exhaustive SSIM against every training image (slow)")
    p.add_argument("--candidates", type=positive_int, default=None,
                   help="FAISS candidates per query (default max(512, 128k); measured recall on real "
                        "faces in ganeval/nearest/search.py)")
    p.add_argument("--shortlist", type=positive_int, default=None,
                   help="candidates scored exactly after the strided-SSIM screen (default max(32, 8k))")
    p.add_argument("--check-recall", type=nonneg_int, default=0, metavar="N",
                   help="measure recall against exhaustive search on N random generated images")
    p.add_argument("--copy-threshold", type=_threshold, default=DEFAULT_COPY_THRESHOLD,
                   help="top-1 SSIM at or above which a generated image counts as a copy")
    p.add_argument("--mean-all", action="store_true",
                   help="also each generated image's mean SSIM over the whole training set (exhaustive)")
    p.add_argument("--test", metavar="DIR", default=None,
                   help="held-out real images: adds Meehan et al.'s C_T and Alaa et al.'s authenticity")
    p.add_argument("--cells", type=positive_int, default=None,
                   help="k-means cells for C_T (default min(50, n_test/20, n_generated/40))")
    p.add_argument("--contact-sheets", type=nonneg_int, default=64, metavar="N",
                   help="contact-sheet rows for the N most similar generated images (0: none)")
    p.add_argument("--pca", type=nonneg_int, default=0, metavar="DIM",
                   help="reduce embeddings to DIM with faiss.PCAMatrix (0: off; IVF indexes use 256)")
    p.add_argument("--rebuild", action="store_true", help="rebuild the cached training index")
    add_sampling_args(p, seed_help="first seed of --generator's images; also seeds --check-recall sampling and k-means")
    p.add_argument("--json", action="store_true", help="print the summary as JSON")
    add_loader_args(p, batch_size=64)
    add_device_args(p)
    p.set_defaults(func=run)


def run(args) -> int:
    if args.shortlist is not None and args.candidates is not None and args.shortlist > args.candidates:
        raise BadInput(f"--shortlist {args.shortlist} exceeds --candidates {args.candidates}")
    if (args.generated is None) == (args.generator is None):
        raise BadInput("give the generated images (GENERATED) or --generator, not both")
    generated = args.generated
    if args.generator:  # the generated side as uint8 batches of the one sampler
        G = load_from_args(args.generator, args, args.device)
        generated = iter(G.sample(seeds_from_args(args), batch_size=args.batch_size, **sample_options(args)))
    summary = find_nearest(
        say=note, generated=generated, train=args.train, outdir=args.outdir, overwrite=args.overwrite,
        k=args.k, gray=args.gray, space=args.space, weights=args.weights,
        exact=args.exact, candidates=args.candidates, shortlist=args.shortlist, check_recall=args.check_recall,
        copy_threshold=args.copy_threshold, mean_all=args.mean_all, test=args.test, cells=args.cells,
        contact_sheets=args.contact_sheets, pca=args.pca, rebuild=args.rebuild, device=args.device,
        batch_size=args.batch_size, num_workers=args.num_workers, strict=args.strict, seed=args.seed,
    )
    if not is_main_process():  # torchrun: rank 0 reports
        return 0
    if args.outdir:
        note(f"wrote {', '.join(summary['outputs'][:4])}{' …' if len(summary['outputs']) > 4 else ''} to {args.outdir}")
    if args.json:
        emit_json(summary)
    return 0
