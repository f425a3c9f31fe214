"""Atomic writes: a temp file beside the target, then rename, so an interrupted run never
leaves a half-written output behind."""
from __future__ import annotations

import contextlib
import errno
import io
import os
import stat
import tempfile
from pathlib import Path
from typing import Any, Iterator

import numpy as np

from ganeval.errors import GanevalError


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


@contextlib.contextmanager
def atomic_path(target: str | os.PathLike, suffix: str = "") -> Iterator[Path]:
    """Yield a temp path in the target's folder; rename it onto ``target`` on success."""
    target = Path(target)
    _refuse_special(target)
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=f".{target.name}.", suffix=suffix or ".tmp", dir=target.parent)
    except OSError as err:
        raise GanevalError(f"cannot write {target}: {err.strerror or err}") from None
    os.close(fd)
    tmp_path = Path(tmp)
    os.chmod(tmp_path, 0o666 & ~_umask())  # mkstemp makes 0600; outputs get the usual mode
    try:
        yield tmp_path
        _refuse_special(target)  # checked again: something may have appeared there meanwhile
        os.replace(tmp_path, target)
    except OSError as err:
        if err.errno in (errno.ENOSPC, errno.EDQUOT, errno.EROFS, errno.EACCES, errno.EIO):
            # the temp file's name means nothing to the user: name the output it was for
            raise GanevalError(f"cannot write {target}: {err.strerror or err}") from None
        raise
    finally:
        if tmp_path.exists():
            tmp_path.unlink()


def _refuse_special(target: Path) -> None:
    """Never rename over a device node, FIFO or socket (``os.replace`` onto /dev/null as root
    would replace the system's /dev/null with a regular file)."""
    try:
        mode = os.stat(target).st_mode
    except OSError:
        return
    if not (stat.S_ISREG(mode) or stat.S_ISDIR(mode)):
        raise GanevalError(f"refusing to write {target}: it is not a regular file")


def write_bytes(target: str | os.PathLike, data: bytes) -> None:
    with atomic_path(target) as tmp:
        tmp.write_bytes(data)


def write_text(target: str | os.PathLike, text: str) -> None:
    """UTF-8; file names that are not UTF-8 (held as surrogates, as Python reads them from the
    file system) are written back as their original bytes."""
    write_bytes(target, text.encode("utf-8", "surrogateescape"))


def save_npz(target: str | os.PathLike, **arrays: Any) -> None:
    """np.savez into memory, then atomically onto ``target`` (np.savez would add '.npz')."""
    buf = io.BytesIO()
    np.savez(buf, **arrays)
    write_bytes(target, buf.getvalue())


def torch_save(target: str | os.PathLike, obj: Any) -> None:
    """torch.save names the archive inside after the file it writes; saving through memory
    keeps the bytes (and so content hashes) independent of the temp file's random name."""
    import torch

    buf = io.BytesIO()
    torch.save(obj, buf)
    write_bytes(target, buf.getvalue())
