"""``ganeval style-mix``: StyleGAN's style-mixing figure from a stylegan2 checkpoint.

The work lives in ``models/sampling.py``; this module only parses arguments and reports."""
from __future__ import annotations

import argparse
from pathlib import Path

from ganeval.cli.generator_args import GENERATOR_HELP
from ganeval.cli.common import HelpFormatter, add_device_args, add_output_args, note, positive_int
from ganeval.errors import BadInput
from ganeval.outputs import check_output_file, checkpoint_input

STYLE_MIX_EXAMPLES = """examples:
  ganeval style-mix runs/sg2/checkpoint.pt --rows 1,2,3 --cols 4,5,6 -o mix.png
  ganeval style-mix runs/sg2 --rows 1,2 --cols 7,8,9 --styles 0-3 --truncation 0.7 -o coarse.png
  ganeval style-mix runs/sg2 --rows 1,2 --cols 3,4 -o mix.png --overwrite   # replace mix.png

The grid has a blank corner, the column seeds' images along the top and the row seeds'
images down the left; cell (r, c) is row r's image with the style layers named by
--styles taken from column c (default: the upper half of the layers, the fine styles:
colours and texture from the columns, pose and shape from the rows). Layer 0 is the 4×4
conv; each resolution adds two. Seed s is image 0 of `ganeval sample --seed s`."""


def register(subparsers) -> None:
    p = subparsers.add_parser("style-mix", help="stylegan2: grid of row seeds' images with column seeds' styles",
                              description="Write StyleGAN's style-mixing grid: rows' coarse styles × columns' fine styles.",
                              epilog=STYLE_MIX_EXAMPLES, formatter_class=HelpFormatter)
    p.add_argument("checkpoint", metavar="GENERATOR", help="a style-based generator: " + GENERATOR_HELP)
    p.add_argument("--rows", required=True, help="comma-separated seeds for the rows (they keep the other layers)")
    p.add_argument("--cols", required=True, help="comma-separated seeds for the columns (they give the --styles layers)")
    p.add_argument("--styles", help="layers taken from the column seeds, e.g. 4-9 or 0,1,2 (default: the upper half)")
    p.add_argument("--truncation", type=float, default=1.0, metavar="PSI", help="truncation ψ")
    p.add_argument("--scale", type=positive_int, default=1, help="enlarge the grid by this factor (nearest)")
    p.add_argument("-o", "--out", required=True, help="output image (.png); an existing file needs --overwrite")
    add_output_args(p)
    p.add_argument("--no-ema", action="store_true", help="use the raw generator, not its EMA copy")
    add_device_args(p)
    p.set_defaults(func=_style_mix)


def _style_mix(args: argparse.Namespace) -> int:
    from ganeval.generators import load_generator
    from ganeval.sampler import parse_seeds
    from ganeval.models.sampling import parse_styles, require_mapping, style_mix_grid
    from ganeval.models.visualise import save_grid

    rows, cols = parse_seeds(args.rows, "--rows"), parse_seeds(args.cols, "--cols")
    if Path(args.out).suffix.lower() != ".png":
        raise BadInput(f"{args.out}: choose an output ending in .png")
    check_output_file(args.out, [checkpoint_input(args.checkpoint)], args.overwrite)
    G = load_generator(args.checkpoint, device=args.device, use_ema=not args.no_ema)
    generator = G.module
    require_mapping(generator, "style-mix", G.label)
    styles = parse_styles(args.styles, generator.num_ws)
    images = style_mix_grid(generator, rows, cols, styles, args.truncation).numpy()
    if args.scale > 1:
        images = images.repeat(args.scale, axis=1).repeat(args.scale, axis=2)
    save_grid(args.out, images, columns=len(cols) + 1)
    note(f"wrote a {len(rows) + 1}×{len(cols) + 1} style-mixing grid (layers {','.join(map(str, styles))} "
         f"of 0-{generator.num_ws - 1} from the columns) to {args.out}")
    return 0
