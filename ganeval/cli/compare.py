"""``ganeval compare REAL GEN1 GEN2 …``: one table of metrics for several generators or image
sets against the same real images; ``--over-training RUN`` for FID over a run's snapshots."""
from __future__ import annotations

import argparse

from ganeval.cli.common import HelpFormatter, add_device_args, add_loader_args, emit_json, nonneg_int, note, positive_int, warn

EXAMPLES = """examples:
  ganeval compare real/ dcgan/checkpoint.pt network-snapshot-025000.pkl samples.npz -o cmp/
  ganeval compare real.zip a.pkl b.pkl --label ours --label baseline --metrics fid,kid,prdc -n 50000 -o cmp/
  ganeval compare real.npz --over-training runs/00000-anime/ -n 10000 -o curve/

Each candidate is a generator (ganeval checkpoint or run folder, NVlabs .pkl, TorchScript,
module:function) drawn at seeds --seed … --seed+N−1 with random noise, or an image set (folder,
zip, .npz). The real features are extracted once. FID gets a 95% bootstrap interval over the
candidate's samples (--bootstrap resamples), KID its subset standard deviation. Writes
comparison.csv, comparison.md, comparison.json and comparison.png (bars with the intervals).
--over-training measures FID of every network-snapshot-*.pkl (or *.pt checkpoint) of a run into
over_training.csv and over_training.png; run it again to measure only new snapshots."""


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("compare", help="one metrics table for several generators or image sets; FID over training",
                       description=__doc__, epilog=EXAMPLES, formatter_class=HelpFormatter)
    p.add_argument("real", metavar="REAL", help="the real images (folder, .zip, .npz) or their statistics .npz")
    p.add_argument("candidates", metavar="CANDIDATE", nargs="*", help="generators or image sets to compare")
    p.add_argument("--label", action="append", default=None, help="name of each candidate, in order (repeat)")
    p.add_argument("--over-training", metavar="RUN", default=None,
                   help="FID of every snapshot in this run folder instead of a table")
    p.add_argument("-o", "--outdir", required=True, help="output folder")
    p.add_argument("--overwrite", action="store_true", help="replace what an earlier `ganeval compare` wrote there")
    p.add_argument("--metrics", default="fid,kid", help="metrics of the table, as `ganeval fid --metrics` (default fid,kid)")
    p.add_argument("-n", "--num-samples", type=positive_int, default=10_000, help="images drawn from each generator")
    p.add_argument("--seed", type=int, default=0, help="first seed of each generator's images")
    p.add_argument("--bootstrap", type=nonneg_int, default=20, help="FID bootstrap resamples for the interval (0: none)")
    p.add_argument("--features", default="inception", help="feature network, as `ganeval fid --features`")
    p.add_argument("--weights", default=None, help="weight file of the feature network")
    p.add_argument("--json", action="store_true", help="print the table as JSON")
    add_loader_args(p)
    add_device_args(p)
    p.set_defaults(func=run)


def run(args) -> int:
    from ganeval.compare import compare, over_training
    from ganeval.errors import BadInput

    if args.over_training:
        if args.candidates:
            raise BadInput("--over-training measures one run: give REAL and --over-training RUN, no candidates")
        rows = over_training(args.over_training, args.real, args.outdir, n=args.num_samples, seed=args.seed,
                             features=args.features, weights=args.weights, device=args.device,
                             batch_size=args.batch_size, num_workers=args.num_workers, overwrite=args.overwrite,
                             on_warning=warn, say=note)
        if args.json:
            emit_json(rows)
        note(f"wrote FID of {len(rows)} snapshots to {args.outdir}/over_training.csv and over_training.png")
        return 0
    if not args.candidates:
        raise BadInput("give at least one CANDIDATE (a generator or an image set) after REAL")
    result = compare(args.real, args.candidates, args.label, metrics=args.metrics, n=args.num_samples, seed=args.seed,
                     bootstrap=args.bootstrap, features=args.features, weights=args.weights, device=args.device,
                     batch_size=args.batch_size, num_workers=args.num_workers, outdir=args.outdir,
                     overwrite=args.overwrite, on_warning=warn)
    if args.json:
        emit_json(result.as_dict())
    else:
        for row in result.rows:
            ci = f" [{row['fid_ci_low']:.2f}, {row['fid_ci_high']:.2f}]" if "fid_ci_low" in row else ""
            fid = f"FID {row['fid']:.3f}{ci}" if row.get("fid") is not None else ""
            kid = f"  KID {row['kid_mean']:.5f} ± {row['kid_std']:.5f}" if row.get("kid_mean") is not None else ""
            print(f"{row['label']:<24} {fid}{kid}")
    note(f"wrote comparison.csv, .md, .json and .png to {args.outdir}")
    return 0
