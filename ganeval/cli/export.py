"""``ganeval export RUN --nvlabs OUT.pkl``: a StyleGAN2 or StyleGAN3 trained here as an NVlabs
snapshot, for any NVlabs-based tool (gen_images.py, projector, metrics)."""
from __future__ import annotations

import argparse

from ganeval.cli.common import HelpFormatter, add_output_args, note

EXAMPLES = """examples:
  ganeval export runs/sg2 --nvlabs sg2.pkl                 # for stylegan3's gen_images.py
  ganeval export runs/sg3 --nvlabs sg3.pkl                 # StyleGAN3 (-T or -R), for stylegan3
  ganeval export runs/sg2/checkpoint.pt --nvlabs sg2.pkl --nvlabs-repo stylegan2-ada-pytorch
  python gen_images.py --network=sg2.pkl --seeds=0-3 --trunc=0.7 --outdir=out   (in NVlabs' checkout)

The file holds G_ema (G names it too) and D, built by NVlabs' own Generator and Discriminator
classes from their constructor arguments: it carries no code. NVlabs' code renders the same
pixels as `ganeval sample RUN --seeds …` and its D gives the run's D scores (checked against
their code)."""


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("export", help="write a trained StyleGAN2 or StyleGAN3 as an NVlabs network pickle",
                       description=__doc__, epilog=EXAMPLES, formatter_class=HelpFormatter)
    p.add_argument("checkpoint", metavar="RUN", help="a stylegan2 or stylegan3 run folder, or its checkpoint.pt")
    p.add_argument("--nvlabs", required=True, metavar="OUT.pkl", help="the NVlabs snapshot to write")
    p.add_argument("--nvlabs-repo", choices=("stylegan3", "stylegan2-ada-pytorch"), default="stylegan3",
                   help="which NVlabs checkout will load it (their StyleGAN2 class lives in different modules)")
    p.add_argument("--no-ema", action="store_true", help="export the raw generator, not its EMA copy")
    add_output_args(p)
    p.set_defaults(func=run)


def run(args) -> int:
    from ganeval.errors import BadInput
    from ganeval.models.nvlabs import export_run
    from ganeval.outputs import check_output_file, checkpoint_input

    if not str(args.nvlabs).endswith(".pkl"):
        raise BadInput(f"{args.nvlabs}: name the NVlabs snapshot with a .pkl ending")
    check_output_file(args.nvlabs, [checkpoint_input(args.checkpoint)], args.overwrite, flag="--nvlabs")
    done = export_run(args.checkpoint, args.nvlabs, args.nvlabs_repo, use_ema=not args.no_ema)
    note(f"wrote {args.nvlabs}: the {done['model']} G and D for NVlabs' {args.nvlabs_repo}, {done['resolution']}px, "
         f"z_dim {done['z_dim']}, step {done['step']} ({'raw G' if args.no_ema else 'EMA G'})")
    return 0
