"""One image-source API for every command: ``open_source(path) -> Source``.

A source is a folder (recursive), a zip file, or a uint8 ``.npy``/``.npz`` array of shape
N×H×W×C. Order is deterministic (sorted names, array order). Decoding runs in DataLoader
workers; corrupt files are skipped and counted, or raise with ``strict=True``."""
from __future__ import annotations

import hashlib
import os
import zipfile
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterator, Sequence

import numpy as np
import torch
from torch.utils.data import DataLoader, Dataset

from ganeval.errors import BadInput
from ganeval.images import CorruptImage, decode_image, is_image_name, to_rgb_array
from ganeval.resample import resize_rgb
from ganeval.progress import progress

ARRAY_KEYS = ("images", "arr_0", "x", "data")


class Source:
    """Random access to RGB uint8 images with stable keys."""

    path: Path

    def __len__(self) -> int:
        raise NotImplementedError

    def key(self, index: int) -> str:
        """A human-readable identifier (relative path or array index)."""
        raise NotImplementedError

    def read(self, index: int) -> np.ndarray:
        """RGB uint8 H×W×3; raises CorruptImage."""
        raise NotImplementedError

    def _hash_parts(self) -> Iterator[bytes]:
        raise NotImplementedError

    def content_hash(self) -> str:
        """Hash of the bytes of every image (and their names), for cache keys."""
        if getattr(self, "_content_hash", None) is None:
            digest = hashlib.blake2b(digest_size=16)
            digest.update(type(self).__name__.encode())
            for part in self._hash_parts():
                digest.update(len(part).to_bytes(8, "little"))
                digest.update(part)
            self._content_hash = digest.hexdigest()
        return self._content_hash

    def keys(self) -> list[str]:
        return [self.key(i) for i in range(len(self))]

    def loader(
        self,
        batch_size: int = 64,
        num_workers: int = 0,
        size: int | tuple[int, int] | None = None,
        mixed_size: int | tuple[int, int] | None = None,
        strict: bool = False,
        indices: Sequence[int] | None = None,
        desc: str | None = None,
    ) -> "BatchIterator":
        """Batches of decoded images in source order.

        ``size`` resizes every image; ``mixed_size`` is used only when a batch holds
        images of different sizes (otherwise they keep their own)."""
        return BatchIterator(self, batch_size, num_workers, size, mixed_size, strict, indices, desc)

    def read_all(self, num_workers: int = 0, size=None, strict: bool = False, desc: str | None = None) -> np.ndarray:
        """All images as one N×H×W×3 uint8 array (they must share a size, or give ``size``)."""
        it = self.loader(batch_size=256, num_workers=num_workers, size=size, strict=strict, desc=desc)
        parts = [batch.images.numpy() for batch in it]
        if not parts:
            raise BadInput(f"{self.path}: no readable images")
        shapes = {p.shape[1:] for p in parts}
        if len(shapes) > 1:
            raise BadInput(f"{self.path}: images have different sizes {sorted(shapes)}; give a size to resize them to")
        return np.concatenate(parts)


class FolderSource(Source):
    def __init__(self, path: Path):
        self.path = path
        self.files = sorted(
            (p for p in path.rglob("*") if p.is_file() and is_image_name(p.name) and not p.name.startswith(".")),
            key=lambda p: p.relative_to(path).as_posix(),
        )

    def __len__(self) -> int:
        return len(self.files)

    def key(self, index: int) -> str:
        return self.files[index].relative_to(self.path).as_posix()

    def read(self, index: int) -> np.ndarray:
        return decode_image(self.files[index])

    def _hash_parts(self) -> Iterator[bytes]:
        for index, file in enumerate(self.files):
            yield self.key(index).encode("utf-8", "surrogateescape")
            yield file.read_bytes()


class ZipSource(Source):
    def __init__(self, path: Path):
        self.path = path
        try:
            with zipfile.ZipFile(path) as zf:
                self.members = sorted(
                    info.filename
                    for info in zf.infolist()
                    if not info.is_dir()
                    and is_image_name(info.filename)
                    and not info.filename.startswith("__MACOSX/")
                    and not Path(info.filename).name.startswith(".")
                )
        except (zipfile.BadZipFile, OSError) as err:
            raise BadInput(f"{path}: not a readable zip file ({err})") from err
        self._zip: zipfile.ZipFile | None = None
        self._zip_pid: int | None = None

    def _open(self) -> zipfile.ZipFile:
        # one handle per process: DataLoader workers must not share the parent's file offset
        if self._zip is None or self._zip_pid != os.getpid():
            self._zip = zipfile.ZipFile(self.path)
            self._zip_pid = os.getpid()
        return self._zip

    def __getstate__(self):
        state = self.__dict__.copy()
        state["_zip"] = None
        return state

    def __len__(self) -> int:
        return len(self.members)

    def key(self, index: int) -> str:
        return self.members[index]

    def read(self, index: int) -> np.ndarray:
        try:
            data = self._open().read(self.members[index])
        except (zipfile.BadZipFile, OSError, EOFError) as err:
            raise CorruptImage(str(err)) from err
        return decode_image(data)

    def _hash_parts(self) -> Iterator[bytes]:
        zf = self._open()
        for name in self.members:
            yield name.encode("utf-8", "surrogateescape")
            try:
                yield zf.read(name)
            except (zipfile.BadZipFile, OSError, EOFError):
                yield b"<unreadable>"


class ArraySource(Source):
    def __init__(self, path: Path, array: np.ndarray | None = None):
        self.path = path
        self.array = self._load(path) if array is None else self._check(array, path)

    @staticmethod
    def _check(array: np.ndarray, path: Path) -> np.ndarray:
        if array.dtype != np.uint8:
            raise BadInput(f"{path}: image arrays must be uint8, got {array.dtype}")
        if array.ndim == 3:
            array = array[..., None]
        if array.ndim != 4 or array.shape[3] not in (1, 3, 4):
            raise BadInput(f"{path}: image arrays must be N×H×W×C with C in 1, 3, 4; got shape {array.shape}")
        return array

    @classmethod
    def _load(cls, path: Path) -> np.ndarray:
        try:
            if path.suffix.lower() == ".npy":
                return cls._check(np.load(path, mmap_mode="r", allow_pickle=False), path)
            if not zipfile.is_zipfile(path):  # np.load would call random bytes "pickled data"
                raise BadInput(f"{path}: not a readable .npz file (not a zip archive: truncated or corrupt?)")
            with np.load(path, allow_pickle=False) as npz:
                names = list(npz.files)
                if "mu" in names and "sigma" in names:
                    raise BadInput(f"{path}: this is a statistics file (mu, sigma), not images")
                key = next((k for k in ARRAY_KEYS if k in names), None)
                if key is None:
                    candidates = [k for k in names if npz[k].ndim in (3, 4)]
                    if len(candidates) != 1:
                        raise BadInput(f"{path}: no image array found (keys: {', '.join(names) or 'none'})")
                    key = candidates[0]
                return cls._check(npz[key], path)
        except (ValueError, OSError, zipfile.BadZipFile, EOFError) as err:
            raise BadInput(f"{path}: not a readable numpy array file ({err})") from err

    def __len__(self) -> int:
        return int(self.array.shape[0])

    def key(self, index: int) -> str:
        return f"{index:06d}"

    def read(self, index: int) -> np.ndarray:
        img = np.asarray(self.array[index])
        if img.shape[2] == 1:
            return np.repeat(img, 3, axis=2)
        if img.shape[2] == 4:
            from PIL import Image

            return to_rgb_array(Image.fromarray(img, "RGBA"))
        return np.ascontiguousarray(img)

    def _hash_parts(self) -> Iterator[bytes]:
        yield str(self.array.shape).encode()
        for start in range(0, len(self), 4096):
            yield np.ascontiguousarray(self.array[start : start + 4096]).tobytes()


def printable_name(name: str | os.PathLike) -> str:
    """A file name as valid UTF-8 text: bytes that are not UTF-8 (held as surrogates) become
    ``\\xNN`` escapes, for databases and reports that cannot store the raw bytes."""
    return os.fspath(name).encode("utf-8", "surrogateescape").decode("utf-8", "backslashreplace")


def open_source(path: str | os.PathLike, allow_empty: bool = False) -> Source:
    """Open a folder, zip, .npy or .npz of images; BadInput with one clear line otherwise."""
    path = Path(path).expanduser()
    if not path.exists():
        raise BadInput(f"{path}: no such file or folder")
    if path.is_dir():
        source: Source = FolderSource(path)
    elif path.suffix.lower() == ".zip":
        source = ZipSource(path)
    elif path.suffix.lower() in (".npy", ".npz"):
        source = ArraySource(path)
    elif is_image_name(path.name):
        raise BadInput(f"{path}: a single image is not a set; give a folder, zip or array of images")
    else:
        raise BadInput(f"{path}: not an image source (expected a folder, .zip, .npy or .npz)")
    if len(source) == 0 and not allow_empty:
        if isinstance(source, ArraySource):
            raise BadInput(f"{path}: its image array holds 0 images (shape {tuple(source.array.shape)})")
        raise BadInput(f"{path}: contains no images ({', '.join(e[1:] for e in ('.png', '.jpg', '.jpeg', '.webp', '.bmp'))})")
    return source


# ---------------------------------------------------------------- batching

@dataclass
class Batch:
    images: torch.Tensor  # N×H×W×3 uint8
    indices: list[int]


@dataclass
class _Item:
    index: int
    image: np.ndarray | None
    error: str | None = None


class _DecodeDataset(Dataset):
    def __init__(self, source: Source, indices: Sequence[int], size, strict: bool):
        self.source, self.indices, self.size, self.strict = source, list(indices), size, strict

    def __len__(self) -> int:
        return len(self.indices)

    def __getitem__(self, i: int) -> _Item:
        index = self.indices[i]
        try:
            img = self.source.read(index)
        except CorruptImage as err:
            # never raised here: an exception in a DataLoader worker reaches the user as a
            # 15-line worker traceback; the main process raises it as one line (strict)
            return _Item(index, None, str(err))
        if self.size is not None:
            img = resize_rgb(img, self.size)
        return _Item(index, img)


class _Collate:
    def __init__(self, mixed_size):
        self.mixed_size = mixed_size

    def __call__(self, items: list[_Item]):
        good = [it for it in items if it.image is not None]
        bad = [(it.index, it.error) for it in items if it.image is None]
        shapes = {it.image.shape for it in good}
        if len(shapes) > 1:
            if self.mixed_size is None:  # reported by the main process (see BatchIterator)
                return None, sorted(shapes), bad
            for it in good:
                it.image = resize_rgb(it.image, self.mixed_size)
        images = torch.from_numpy(np.stack([it.image for it in good])) if good else torch.empty(0, 1, 1, 3, dtype=torch.uint8)
        return images, [it.index for it in good], bad


@dataclass
class BatchIterator:
    source: Source
    batch_size: int
    num_workers: int
    size: int | tuple[int, int] | None
    mixed_size: int | tuple[int, int] | None
    strict: bool
    indices: Sequence[int] | None
    desc: str | None
    corrupt: list[tuple[str, str]] = field(default_factory=list)
    sizes: Counter = field(default_factory=Counter)

    def __len__(self) -> int:
        n = len(self.indices) if self.indices is not None else len(self.source)
        return (n + self.batch_size - 1) // self.batch_size

    def __iter__(self) -> Iterator[Batch]:
        indices = list(range(len(self.source))) if self.indices is None else list(self.indices)
        dataset = _DecodeDataset(self.source, indices, self.size, self.strict)
        workers = max(0, min(self.num_workers, len(self)))
        loader = DataLoader(
            dataset,
            batch_size=self.batch_size,
            shuffle=False,
            num_workers=workers,
            collate_fn=_Collate(self.mixed_size),
            persistent_workers=False,
        )
        with progress(total=len(indices), desc=self.desc or str(self.source.path.name), unit="img") as bar:
            for images, kept, bad in loader:
                self.corrupt.extend((self.source.key(i), err) for i, err in bad)
                if bad and self.strict:
                    key, why = self.source.key(bad[0][0]), bad[0][1]
                    raise BadInput(f"{self.source.path}: corrupt image {key} ({why}); "
                                   "without --strict it would be skipped")
                if images is None:
                    raise BadInput(f"{self.source.path}: images of different sizes {kept} in one set; resize them first")
                bar.update(len(kept) + len(bad))
                if len(kept):
                    self.sizes[tuple(images.shape[1:3])] += len(kept)
                    yield Batch(images, kept)

    def report_corrupt(self) -> str | None:
        """One line about skipped files, or None."""
        return skipped_line(self.source.path, self.corrupt)


def skipped_line(path: str | os.PathLike, skipped: Sequence[tuple[str, str]] | int,
                 first: str | None = None, what: str = "corrupt image(s)") -> str | None:
    """The one corrupt-image report every command prints: how many files were skipped and the
    first one's name (and why, when known); None when nothing was skipped. ``skipped`` is the
    list of (name, reason) pairs, or a count with ``first`` (a cached result keeps only those)."""
    if isinstance(skipped, int):
        count, name, why = skipped, first, None
    else:
        count = len(skipped)
        name, why = (skipped[0] if skipped else (None, None))
    if not count:
        return None
    detail = f", e.g. {name}" + (f" ({why})" if why else "") if name else ""
    return f"{path}: skipped {count} {what}{detail}"
