"""``ganeval translate``: photos → anime faces (or back) with a CycleGAN or U-GAT-IT checkpoint."""
from __future__ import annotations

import argparse

import os

from ganeval.cli.common import HelpFormatter, add_device_args, add_output_args, positive_int
from ganeval.cli.imagemap import report
from ganeval.imagewrite import ImageMap
from ganeval.outputs import checkpoint_input

EXAMPLES = """examples:
  ganeval translate photo.jpg -o anime.png -g runs/ugatit
  ganeval translate photos/ -o anime/ -g runs/ugatit/checkpoint.pt --prefix result
  ganeval translate anime/ -o photos/ -g runs/cyclegan --direction BA
  ganeval translate big_scan.png -o big_anime.png -g runs/cyclegan --mosaic
  ganeval translate photos/ -o anime/ -g runs/ugatit --resume      # finish an interrupted run

Train a translator with `ganeval train ugatit --data DIR` (or cyclegan), where DIR holds
trainA/ (source domain, e.g. photos), trainB/ (target, e.g. anime faces) and optionally
testA/ testB/ (used for the training grids). AB translates A→B, BA the reverse.

By default each image is resized to the model's training size and the output has that
size. --mosaic instead cuts the image into model-size squares (the bottom and right edges
padded by reflection), translates each and stitches them back to the original size.
A folder (or zip) in gives a folder of PNGs out (OUT/<name>.png, or <prefix>_<name>.png);
unreadable images are skipped and counted. The output may not be (or lie inside) SRC; an
existing .png or a non-empty folder needs --overwrite (only files `ganeval translate`
wrote there are replaced). Interrupted, it says how many images it wrote; --resume
writes the rest with the same settings."""


def register(subparsers) -> None:
    p = subparsers.add_parser("translate", help="translate images with a CycleGAN or U-GAT-IT checkpoint",
                              description="Translate an image, folder or zip of images between the two domains "
                                          "of a CycleGAN or U-GAT-IT model.",
                              epilog=EXAMPLES, formatter_class=HelpFormatter)
    p.add_argument("src", metavar="SRC", help="an image file, or a folder, zip, .npy or .npz of images")
    p.add_argument("-o", "--out", required=True, help="output .png (for one image) or folder")
    add_output_args(p, resume=True)
    p.add_argument("-g", "--generator", metavar="CKPT", required=True,
                   help="cyclegan or ugatit checkpoint, or its run folder")
    p.add_argument("--direction", default="AB", type=str.upper, choices=("AB", "BA"), help="A→B or B→A")
    p.add_argument("--prefix", default="", help="output names become PREFIX_<name>.png")
    p.add_argument("--mosaic", action="store_true",
                   help="tile large images into model-size squares and stitch the results (keeps the size)")
    p.add_argument("--batch-size", type=positive_int, default=16, help="mosaic tiles per forward pass")
    p.add_argument("--no-ema", action="store_true", help="use the raw generator, not its EMA copy")
    add_device_args(p)
    p.set_defaults(func=_translate)


def _translate(args: argparse.Namespace) -> int:
    from ganeval.models.translate import ImageTranslator

    job = ImageMap.open(args.src, args.out, f"{args.prefix}_" if args.prefix else "", command="translate",
                        inputs=[checkpoint_input(args.generator)], overwrite=args.overwrite, resume=args.resume,
                        settings={"generator": os.path.realpath(args.generator), "direction": args.direction,
                                  "mosaic": args.mosaic, "ema": not args.no_ema})
    translator = ImageTranslator(args.generator, args.direction, args.device, use_ema=not args.no_ema)
    return report(job.run(lambda img: translator(img, mosaic=args.mosaic, batch_size=args.batch_size),
                          desc=f"translate {args.direction}"))
