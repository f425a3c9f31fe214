"""Progress bars for long work: on stderr, quiet when GANEVAL_QUIET=1 or not on a terminal."""
from __future__ import annotations

import os
import sys

from tqdm.auto import tqdm


def progress_enabled() -> bool:
    if os.environ.get("GANEVAL_QUIET") == "1":
        return False
    if os.environ.get("RANK", "0") != "0":  # under torchrun only rank 0 draws bars
        return False
    if os.environ.get("GANEVAL_PROGRESS") == "1":
        return True
    return sys.stderr.isatty()


def _columns() -> int | None:
    """The terminal's width, or None where it reports none: some terminals (and pseudo-terminals
    under CI runners) report 0 columns, and a 0-wide bar is drawn as nothing at all."""
    try:
        columns = os.get_terminal_size(sys.stderr.fileno()).columns
    except (OSError, ValueError, AttributeError):
        return None
    return columns if columns > 0 else None


def progress(total: int | None = None, desc: str | None = None, unit: str = "it", **kwargs) -> tqdm:
    enabled = progress_enabled()
    columns = _columns() if enabled else None
    sizing = {"dynamic_ncols": True} if columns else {"ncols": 80}
    return tqdm(total=total, desc=desc, unit=unit, disable=not enabled, leave=False,
                file=sys.stderr, **sizing, **kwargs)
