"""Finding pretrained weights: a path the user gives, the cache, or a checksummed download.

Offline, the error names the file and where to put it. Nothing here fakes weights."""
from __future__ import annotations

import hashlib
import os
import shutil
import sys
import tempfile
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path

from ganeval.cache import cache_dir, file_sha256
from ganeval.errors import BadInput, MissingWeights
from ganeval.progress import progress


@dataclass(frozen=True)
class WeightSpec:
    filename: str             # name in the cache folder
    url: str | None           # official download, or None when the file must be made locally
    sha256_prefix: str | None # published hash prefix (torch.hub convention), checked after download
    how_to_get: str           # one sentence for the offline error


def weights_cache() -> Path:
    return cache_dir("weights")


def is_standard(path: Path, spec: WeightSpec) -> bool:
    return bool(spec.sha256_prefix) and file_sha256(path).startswith(spec.sha256_prefix)


def locate_weights(spec: WeightSpec, user_path: str | os.PathLike | None = None, download: bool = True) -> Path:
    """Return a local weight file: ``user_path``, else the cache, else download it."""
    if user_path:
        path = Path(user_path).expanduser()
        if path.is_dir():
            raise BadInput(f"--weights {path} is a folder; give the weight file itself ({spec.filename})")
        if not path.exists():
            raise BadInput(f"weights file {path} does not exist")
        if not path.is_file():
            raise BadInput(f"--weights {path} is not a regular file")
        return path
    cached = weights_cache() / spec.filename
    if cached.is_file():
        return cached
    if download and spec.url and os.environ.get("GANEVAL_OFFLINE") != "1":
        try:
            return download_checked(spec, cached)
        except (urllib.error.URLError, OSError, TimeoutError) as err:
            reason = f"download failed ({getattr(err, 'reason', err)})"
        # fall through to the offline message
    else:
        reason = "not in the cache"
    raise MissingWeights(
        f"{spec.filename} {reason}: {spec.how_to_get} Put it at {cached} or pass --weights PATH."
    )


def download_checked(spec: WeightSpec, target: Path) -> Path:
    """Stream the official file to a temp file, check its SHA-256 prefix, then rename."""
    assert spec.url
    target.parent.mkdir(parents=True, exist_ok=True)
    digest = hashlib.sha256()
    fd, tmp = tempfile.mkstemp(prefix=f".{target.name}.", dir=target.parent)
    try:
        with os.fdopen(fd, "wb") as out, urllib.request.urlopen(spec.url, timeout=30) as resp:
            total = int(resp.headers.get("Content-Length") or 0) or None
            with progress(total=total, desc=f"downloading {spec.filename}", unit="B", unit_scale=True) as bar:
                for block in iter(lambda: resp.read(1 << 20), b""):
                    out.write(block)
                    digest.update(block)
                    bar.update(len(block))
        got = digest.hexdigest()
        if spec.sha256_prefix and not got.startswith(spec.sha256_prefix):
            raise MissingWeights(f"{spec.url}: checksum mismatch (sha256 {got[:16]}…, expected {spec.sha256_prefix}…)")
        os.replace(tmp, target)
        print(f"saved {spec.filename} to {target}", file=sys.stderr)
        return target
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)


def load_state_dict(path: str | os.PathLike) -> dict:
    """A weight file as a plain state dict (``weights_only=True``), or one clear BadInput line."""
    import torch

    path = Path(path)
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as err:  # noqa: BLE001 - any unpickling failure means "not a weight file"
        raise BadInput(f"{path}: not a readable PyTorch weight file ({type(err).__name__})") from err
    if not isinstance(state, dict):
        raise BadInput(f"{path}: expected a state dict, got {type(state).__name__}")
    return state


def weight_status(path: Path, spec: WeightSpec) -> str:
    """What a cached weight file is, read from its bytes, never from its name alone: the
    published file (its SHA-256 prefix matches), another file under that name, or unreadable."""
    if spec.sha256_prefix:
        digest = file_sha256(path)
        if digest.startswith(spec.sha256_prefix):
            return f"verified (sha256 {digest[:12]}…)"
        return f"NOT the published file (sha256 {digest[:12]}…, expected {spec.sha256_prefix}…)"
    if path.suffix in (".pt", ".pth"):
        import torch

        try:
            state = torch.load(path, map_location="cpu", weights_only=True)
        except Exception as err:  # noqa: BLE001 - any failure means the file is unusable
            return f"unreadable ({type(err).__name__})"
        if not isinstance(state, dict):
            return "unreadable (not a state dict)"
        return "loads (no published checksum to compare)"
    return "present (no published checksum to compare)"


def install_weights(source: Path, spec: WeightSpec) -> Path:
    """Copy a user's file into the cache under the expected name."""
    target = weights_cache() / spec.filename
    shutil.copyfile(source, target)
    return target
