"""``ganeval export RUN --nvlabs OUT.pkl``: a StyleGAN2 trained here as an NVlabs snapshot, for
any NVlabs-based tool (gen_images.py, projector, metrics)."""
from __future__ import annotations

import argparse

from ganeval.cli.common import HelpFormatter, add_output_args, note

EXAMPLES = """examples:
  ganeval export runs/sg2 --nvlabs sg2.pkl                 # for stylegan3's gen_images.py
  ganeval export runs/sg2/checkpoint.pt --nvlabs sg2.pkl --nvlabs-repo stylegan2-ada-pytorch
  python gen_images.py --network=sg2.pkl --seeds=0-3 --trunc=0.7 --outdir=out   (in NVlabs' checkout)

The file holds G_ema (G and D name the same generator: there is no discriminator), built by
NVlabs' own Generator class from its constructor arguments: it carries no code. NVlabs' code
renders the same pixels as `ganeval sample RUN --seeds …` (checked against their code)."""


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("export", help="write a trained StyleGAN2 as an NVlabs network pickle",
                       description=__doc__, epilog=EXAMPLES, formatter_class=HelpFormatter)
    p.add_argument("checkpoint", metavar="RUN", help="a stylegan2 run folder or its checkpoint.pt")
    p.add_argument("--nvlabs", required=True, metavar="OUT.pkl", help="the NVlabs snapshot to write")
    p.add_argument("--nvlabs-repo", choices=("stylegan3", "stylegan2-ada-pytorch"), default="stylegan3",
                   help="which NVlabs checkout will load it (their StyleGAN2 class lives in different modules)")
    p.add_argument("--no-ema", action="store_true", help="export the raw generator, not its EMA copy")
    add_output_args(p)
    p.set_defaults(func=run)


def run(args) -> int:
    from ganeval.errors import BadInput
    from ganeval.models.checkpoint import load_checkpoint, load_generator
    from ganeval.models.nvlabs import export_stylegan2
    from ganeval.outputs import check_output_file, checkpoint_input

    if not str(args.nvlabs).endswith(".pkl"):
        raise BadInput(f"{args.nvlabs}: name the NVlabs snapshot with a .pkl ending")
    check_output_file(args.nvlabs, [checkpoint_input(args.checkpoint)], args.overwrite, flag="--nvlabs")
    data = load_checkpoint(args.checkpoint)
    if data.get("model") != "stylegan2":
        raise BadInput(f"{args.checkpoint}: a {data.get('model')} checkpoint; --nvlabs exports stylegan2 runs")
    G, cfg = load_generator(data, "cpu", use_ema=not args.no_ema)
    kwargs = export_stylegan2(G, args.nvlabs, args.nvlabs_repo)
    note(f"wrote {args.nvlabs}: NVlabs {args.nvlabs_repo} StyleGAN2, {kwargs['img_resolution']}px, "
         f"z_dim {kwargs['z_dim']}, step {data.get('step', 0)} ({'raw G' if args.no_ema else 'EMA G'})")
    return 0
