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


def progress(total: int | None = None, desc: str | None = None, unit: str = "it", **kwargs) -> tqdm:
    return tqdm(total=total, desc=desc, unit=unit, disable=not progress_enabled(), leave=False,
                dynamic_ncols=True, file=sys.stderr, **kwargs)
