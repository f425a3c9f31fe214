"""``ganeval weights``: convert the illustration2vec Caffe model and show what is in the cache."""
from __future__ import annotations

import argparse
from pathlib import Path

from ganeval.cli.common import HelpFormatter, add_output_args, note
from ganeval.errors import BadInput

EPILOG = """examples:
  ganeval weights list
  ganeval weights convert-illust2vec ~/Downloads/illust2vec_ver200.caffemodel
  ganeval weights convert-illust2vec illust2vec_ver200.caffemodel -o i2v.pt
"""


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "weights", help="convert and list pretrained weights",
        description="Pretrained weights for the feature networks: convert illustration2vec's Caffe "
                    "model to a torch file, list what the cache holds.",
        epilog=EPILOG, formatter_class=HelpFormatter)
    actions = parser.add_subparsers(dest="weights_action", metavar="ACTION")

    convert = actions.add_parser(
        "convert-illust2vec", help="convert illust2vec_ver200.caffemodel to torch weights",
        description="Read a Caffe illustration2vec model (no Caffe needed) and write its weights as a "
                    "torch file that `ganeval fid --features illust2vec` loads.",
        epilog="examples:\n  ganeval weights convert-illust2vec illust2vec_ver200.caffemodel\n"
               "  ganeval weights convert-illust2vec model.caffemodel -o i2v.pt\n"
               "  ganeval weights convert-illust2vec model.caffemodel -o i2v.pt --overwrite   # replace i2v.pt\n",
        formatter_class=argparse.RawDescriptionHelpFormatter)
    convert.add_argument("caffemodel", metavar="CAFFEMODEL", help="illust2vec_ver200.caffemodel from the v2.0.0 release")
    convert.add_argument("-o", "--out", metavar="OUT", default=None,
                         help="output file (default: illust2vec_ver200.pt in the weights cache, replaced if there)")
    add_output_args(convert)
    convert.set_defaults(func=_convert)

    listing = actions.add_parser(
        "list", help="show which known weight files are in the cache",
        description="For each weight file ganeval knows, say whether the cache holds it and how to get it.",
        epilog="examples:\n  ganeval weights list\n  GANEVAL_HOME=/data/ganeval ganeval weights list\n",
        formatter_class=HelpFormatter)
    listing.set_defaults(func=_list)

    parser.set_defaults(func=lambda args: _no_action(parser))


def _no_action(parser: argparse.ArgumentParser) -> int:
    parser.print_help()
    return 2


def _convert(args: argparse.Namespace) -> int:
    from ganeval.features.illust2vec import convert_caffemodel_file

    source = Path(args.caffemodel).expanduser()
    if not source.is_file():
        raise BadInput(f"{source} does not exist")
    if args.out:  # the cache file is ganeval's own; a file the user names is checked
        from ganeval.outputs import check_output_file

        check_output_file(Path(args.out).expanduser(), [source], args.overwrite)
    note(f"converting {source}")
    target, meta = convert_caffemodel_file(source, Path(args.out).expanduser() if args.out else None)
    kind = "published illustration2vec architecture" if meta["standard"] else "non-standard weights"
    note(f"{kind}; source sha256 {meta['source_sha256'][:16]}…")
    print(target)
    return 0


def known_specs() -> list:
    """Every WeightSpec ganeval uses."""
    from ganeval.features.registry import weight_specs

    return weight_specs()


def _size(path: Path) -> str:
    size = float(path.stat().st_size)
    for unit in ("B", "KB", "MB", "GB"):
        if size < 1024 or unit == "GB":
            return f"{size:.0f} {unit}" if unit == "B" else f"{size:.1f} {unit}"
        size /= 1024
    return ""  # unreachable


def _list(args: argparse.Namespace) -> int:
    from ganeval.features.illust2vec import ILLUST2VEC_CAFFEMODEL
    from ganeval.weights import weight_status, weights_cache

    cache = weights_cache()
    specs = known_specs()
    width = max(len(spec.filename) for spec in specs + [ILLUST2VEC_CAFFEMODEL])
    print(f"weights cache: {cache}")
    for spec in specs:
        path = cache / spec.filename
        if path.is_file():
            print(f"  {spec.filename:<{width}}  {_size(path)}  {weight_status(path, spec)}")
        else:
            print(f"  {spec.filename:<{width}}  missing  {spec.how_to_get}")
    source = cache / ILLUST2VEC_CAFFEMODEL.filename  # only an intermediate: shown when present
    if source.is_file():
        print(f"  {source.name:<{width}}  {_size(source)}  {weight_status(source, ILLUST2VEC_CAFFEMODEL)} "
              "(Caffe source; converted on first use)")
    return 0
