"""One cache root for weights, statistics and search indexes: ``$GANEVAL_HOME``
(default ``~/.cache/ganeval``). Entries are keyed by content hash plus settings."""
from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path
from typing import Any


def cache_root() -> Path:
    root = os.environ.get("GANEVAL_HOME") or os.path.join(os.path.expanduser("~"), ".cache", "ganeval")
    return Path(root)


def cache_dir(kind: str) -> Path:
    from ganeval.errors import BadInput

    root = cache_root()
    path = root / kind
    try:
        path.mkdir(parents=True, exist_ok=True)
    except (NotADirectoryError, FileExistsError) as err:
        raise BadInput(f"the cache folder {root} ($GANEVAL_HOME) is not a folder ({err.filename} is a file); "
                       "point GANEVAL_HOME at a folder") from None
    except PermissionError:
        raise BadInput(f"the cache folder {path} ($GANEVAL_HOME) is not writable; "
                       "point GANEVAL_HOME at a writable folder") from None
    return path


def settings_key(**settings: Any) -> str:
    """A short stable hash of JSON-able settings, to combine with a content hash."""
    blob = json.dumps(settings, sort_keys=True, default=str).encode()
    return hashlib.blake2b(blob, digest_size=10).hexdigest()


def file_sha256(path: str | os.PathLike, chunk: int = 1 << 20) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(chunk), b""):
            digest.update(block)
    return digest.hexdigest()
