"""Arguments shared by several subcommands, declared once."""
from __future__ import annotations

import argparse
import os
import sys
from typing import Any

from ganeval.results import json_text

# DataLoader decoding workers when --num-workers is not given (and in the demo)
DEFAULT_WORKERS = min(4, os.cpu_count() or 1)


def add_device_args(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--device", default="auto", help="auto (CUDA when present), cpu, cuda or cuda:N")


def add_output_args(parser: argparse.ArgumentParser, resume: bool = False) -> None:
    """--overwrite (and --resume), declared once; ganeval.outputs applies them before the work."""
    parser.add_argument("--overwrite", action="store_true",
                        help="replace an existing output file, or what this command wrote earlier into the output "
                             "folder (other files there are never touched)")
    if resume:
        parser.add_argument("--resume", action="store_true",
                            help="continue an interrupted run into the same folder with the same settings: "
                                 "complete files are kept, the rest written (the result equals an uninterrupted run)")


def add_loader_args(parser: argparse.ArgumentParser, batch_size: int = 50) -> None:
    parser.add_argument("--batch-size", type=positive_int, default=batch_size, help=f"images per batch (default {batch_size})")
    parser.add_argument("--num-workers", type=nonneg_int, default=DEFAULT_WORKERS,
                        help="DataLoader decoding workers (default: min(4, cores))")
    parser.add_argument("--strict", action="store_true", help="fail on a corrupt image instead of skipping it")


def positive_int(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1, got {value}")
    return value


def nonneg_int(text: str) -> int:
    value = int(text)
    if value < 0:
        raise argparse.ArgumentTypeError(f"must be 0 or more, got {value}")
    return value


def open_unit_float(text: str) -> float:
    """A number strictly between 0 and 1 (a rate, a share, a CI half-width)."""
    value = float(text)
    if not 0 < value < 1:
        raise argparse.ArgumentTypeError(f"must be between 0 and 1 (exclusive), got {text}")
    return value


def nonneg_float(text: str) -> float:
    value = float(text)
    if not value >= 0:  # NaN fails too
        raise argparse.ArgumentTypeError(f"must be 0 or more, got {text}")
    return value


def positive_int_list(text: str) -> tuple[int, ...]:
    """'10,20,50' -> (10, 20, 50), each at least 1."""
    try:
        return tuple(positive_int(part) for part in text.split(",") if part.strip())
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected comma-separated whole numbers, got {text!r}") from None


def labelled_path(text: str) -> tuple[str, str]:
    """'LABEL=PATH' -> (LABEL, PATH)."""
    label, sep, path = text.partition("=")
    if not sep or not label.strip() or not path.strip():
        raise argparse.ArgumentTypeError(f"expected LABEL=PATH, got {text!r}")
    return label.strip(), path.strip()


def to_json(obj: Any) -> str:
    """A result as the JSON that --json prints (NumPy numbers as Python numbers)."""
    return json_text(obj)


def emit_json(obj: Any) -> None:
    sys.stdout.write(to_json(obj) + "\n")


def warn(message: str) -> None:
    print(f"warning: {message}", file=sys.stderr)


def note(message: str) -> None:
    print(message, file=sys.stderr)


class HelpFormatter(argparse.RawDescriptionHelpFormatter, argparse.ArgumentDefaultsHelpFormatter):
    """Keeps example blocks in epilogs as written; adds "(default: …)" only where it says something."""

    def _get_help_string(self, action):
        if action.default is None or action.default is False or "default" in (action.help or ""):
            return action.help
        return super()._get_help_string(action)
