"""``ganeval synth-faces``: write the built-in synthetic anime faces as PNGs or one .npz."""
from __future__ import annotations

import argparse

from ganeval.cli.common import HelpFormatter, add_output_args, emit_json

EPILOG = """examples:
  ganeval synth-faces faces/                      # 2000 PNGs, 64×64, seed 0
  ganeval synth-faces faces.npz -n 10000 --size 96
  ganeval synth-faces big/ -n 200 --size 256 --seed 3
  ganeval synth-faces faces/ -n 500 --overwrite   # replace what synth-faces wrote in faces/

Face i depends only on (seed, i): the same command always writes the same bytes, and
-n 500 writes the first 500 faces of -n 2000. An existing .npz or a non-empty folder needs
--overwrite; a face_*.png that synth-faces did not write is never replaced.
"""


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "synth-faces", help="write synthetic anime-style faces (the built-in dataset)",
        description="Draw deterministic cartoon anime faces (varied hair, eyes, face shape, colours) "
                    "and write them as face_000000.png… in a folder, or as one .npz with key 'images'. "
                    "Useful as a dataset for trying training, FID and nearest-neighbour search offline.",
        epilog=EPILOG, formatter_class=HelpFormatter)
    parser.add_argument("out", metavar="OUT", help="output folder, or a file ending in .npz")
    parser.add_argument("-n", "--num", type=int, default=2000, help="number of faces")
    parser.add_argument("--size", type=int, default=64, help="side in pixels (32-256)")
    parser.add_argument("--seed", type=int, default=0, help="which set of faces")
    parser.add_argument("--format", choices=("png", "npz"), default=None,
                        help="png: a folder of PNGs; npz: one file (unset: npz when OUT ends in .npz, else png)")
    add_output_args(parser)
    parser.add_argument("--json", action="store_true", help="print the result as JSON")
    parser.set_defaults(func=_run)


def _run(args: argparse.Namespace) -> int:
    from ganeval.synth import write_faces

    from ganeval.outputs import check_output_file, prepare_output_dir

    fmt = args.format or ("npz" if args.out.lower().endswith(".npz") else "png")
    folder = None
    if fmt == "npz":
        check_output_file(args.out, (), args.overwrite)
    elif not args.out.lower().endswith(".npz"):  # (a png folder named *.npz is write_faces' error)
        folder = prepare_output_dir(args.out, "synth-faces", (), args.overwrite, reserve=("face_*.png",), defer=True)
    path = write_faces(args.out, args.num, size=args.size, seed=args.seed, fmt=fmt, overwrite=args.overwrite)
    if folder is not None:  # write_faces replaced the earlier face_*.png (all ours, checked above)
        folder.open(remove_stale=False).record_new()
    if args.json:
        emit_json({"path": str(path), "format": fmt, "count": args.num, "size": args.size, "seed": args.seed})
    else:
        what = "in" if fmt == "png" else "to"
        print(f"wrote {args.num} faces of {args.size}×{args.size} {what} {path}")
    return 0
