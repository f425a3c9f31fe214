"""Image-in, image-out commands (``upscale``, ``translate``): one file or a whole source in,
PNGs out, with a progress bar, unreadable images skipped and counted (or an error for a
single file), and every output written atomically."""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Iterator

import numpy as np

from ganeval.atomic import write_bytes
from ganeval.cli.common import note, warn
from ganeval.errors import BadInput, GanevalError
from ganeval.images import CorruptImage, decode_image, encode_png, is_image_name
from ganeval.progress import progress
from ganeval.sources import Source, open_source


@dataclass
class ImageMap:
    """Where images come from (a file or a source) and where each result goes."""

    src: Path
    out: Path
    prefix: str = ""
    source: Source | None = None
    skipped: list[tuple[str, str]] = field(default_factory=list)
    written: int = 0

    @classmethod
    def open(cls, src: str, out: str, prefix: str = "") -> "ImageMap":
        path, target = Path(src).expanduser(), Path(out).expanduser()
        if not path.exists():
            raise BadInput(f"{path}: no such file or folder")
        job = cls(path, target, prefix)
        if path.is_file() and is_image_name(path.name):
            if is_image_name(target.name) and target.suffix.lower() != ".png":
                raise BadInput(f"{target}: outputs are PNG; give a .png file or a folder")
        else:
            job.source = open_source(path)
            if (target.exists() and not target.is_dir()) or (not target.exists() and is_image_name(target.name)):
                raise BadInput(f"{target}: {path} holds several images; give an output folder")
        return job

    @property
    def single(self) -> bool:
        return self.source is None

    def __len__(self) -> int:
        return 1 if self.source is None else len(self.source)

    def target(self, key: str) -> Path:
        """OUT itself for a single file with a .png OUT; else OUT/<relative dir>/<prefix><name>.png."""
        if self.single and self.out.suffix.lower() == ".png":
            return self.out
        rel = Path(key)
        return self.out / rel.parent / f"{self.prefix}{rel.stem}.png"

    def images(self) -> Iterator[tuple[str, np.ndarray]]:
        """(key, RGB uint8) for every readable image; unreadable ones are recorded in ``skipped``
        (a single unreadable file is BadInput)."""
        if self.source is None:
            try:
                yield self.src.name, decode_image(self.src)
            except CorruptImage as err:
                raise BadInput(f"{self.src}: not a readable image ({err})") from None
            return
        for i in range(len(self.source)):
            try:
                img = self.source.read(i)
            except CorruptImage as err:
                self.skipped.append((self.source.key(i), str(err)))
                continue
            yield self.source.key(i), img

    def write(self, key: str, img: np.ndarray) -> Path:
        path = self.target(key)
        write_bytes(path, encode_png(img))
        self.written += 1
        return path

    def run(self, fn: Callable[[np.ndarray], np.ndarray], desc: str) -> int:
        """Apply ``fn`` to each image and write the results; returns the exit code."""
        with progress(total=len(self), desc=desc, unit="img") as bar:
            for key, img in self.images():
                self.write(key, fn(img))
                bar.update(1)
            bar.update(len(self.skipped))
        return self.finish()

    def finish(self) -> int:
        if self.skipped:
            first, why = self.skipped[0]
            warn(f"{self.src}: skipped {len(self.skipped)} unreadable image(s), e.g. {first} ({why})")
        if self.written == 0:
            raise GanevalError(f"{self.src}: no readable images; nothing written")
        note(f"wrote {self.written} image(s) to {self.out}")
        return 0
