"""``ganeval inspect``: per-layer activation pictures of a generator for one seed.

The work lives in ``models/inspect.py``; this module only parses arguments and reports."""
from __future__ import annotations

import argparse

from ganeval.cli.generator_args import GENERATOR_HELP
from ganeval.cli.common import HelpFormatter, add_device_args, add_output_args, note, positive_int
from ganeval.outputs import checkpoint_input, prepare_output_dir
from ganeval.errors import BadInput

INSPECT_EXAMPLES = """examples:
  ganeval inspect runs/dcgan/checkpoint.pt --seed 3 -o inspect_dcgan/
  ganeval inspect runs/sg2 --seed 3 -o inspect_sg2/ --max-channels 32 --truncation 0.7
  ganeval inspect runs/dcgan/checkpoint.pt --seed 4 -o inspect_dcgan/ --overwrite   # replace the earlier one

Writes DIR/index.html (open it in a browser), DIR/output.png and one NNN_<layer>.png per
layer: that layer's channels for the seed's latent (image 0 of `ganeval sample --seed S`),
highest energy first, each scaled to its own range. A non-empty DIR needs --overwrite, which
replaces what an earlier `ganeval inspect` wrote there and nothing else."""


def register(subparsers) -> None:
    p = subparsers.add_parser("inspect", help="save each generator layer's activations for one seed, with an HTML index",
                              description="Hook every generator layer, run one latent and save its channels as grids.",
                              epilog=INSPECT_EXAMPLES, formatter_class=HelpFormatter)
    p.add_argument("checkpoint", metavar="GENERATOR", help=GENERATOR_HELP)
    p.add_argument("--seed", type=int, default=0, help="latent seed")
    p.add_argument("-o", "--out", required=True, metavar="DIR", help="output folder")
    add_output_args(p)
    p.add_argument("--max-channels", type=positive_int, default=64, help="channels shown per layer")
    p.add_argument("--truncation", type=float, metavar="PSI", help="style-based generators: truncation ψ")
    p.add_argument("--no-ema", action="store_true", help="use the raw generator, not its EMA copy")
    add_device_args(p)
    p.set_defaults(func=_inspect)


def _inspect(args: argparse.Namespace) -> int:
    from ganeval.generators import load_generator
    from ganeval.models.inspect import inspect_generator
    from ganeval.models.sampling import require_mapping

    out = prepare_output_dir(args.out, "inspect", [checkpoint_input(args.checkpoint)], args.overwrite, reserve=("*.png", "index.html"),
                             defer=True)
    G = load_generator(args.checkpoint, device=args.device, use_ema=not args.no_ema)
    generator = G.module
    if generator is None:
        raise BadInput(f"{G.label}: inspect needs a torch module generator")
    if args.truncation is not None:
        require_mapping(generator, "--truncation", G.label)
    model = G.info.get("model") or G.info.get("architecture") or G.kind
    title = f"{model} {G.resolution}×{G.resolution} ({'raw G' if args.no_ema else 'EMA G'})"
    out.open()
    try:
        layers = inspect_generator(generator, args.seed, args.out, args.max_channels, args.truncation, title)
    finally:
        out.record_new()
    note(f"wrote {len(layers)} layer grids and index.html to {args.out}")
    return 0
