"""Writing many uint8 images as PNGs under the output policy: numbered sets (``sample``) and
image-to-image maps (``upscale``, ``translate``).

Every file is written atomically and recorded in the folder's manifest, so an interrupted
command leaves only complete files, says how many it wrote, and ``--resume`` skips them
(writing the rest gives the same folder as an uninterrupted run); ``--overwrite`` replaces
only what the command wrote before."""
from __future__ import annotations

import os
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterable, Iterator

import numpy as np

from ganeval.atomic import write_bytes
from ganeval.errors import BadInput, GanevalError
from ganeval.images import CorruptImage, decode_image, encode_png, is_image_name
from ganeval.outputs import (OVERWRITE_FLAG, RESUME_FLAG, Interrupted, OutputDir, check_output_file, interrupted,
                             prepare_output_dir, sigterm_interrupts)
from ganeval.progress import progress
from ganeval.sources import Source, open_source

CONTINUE_HINT = f"continue with {RESUME_FLAG} (same command), or start again with {OVERWRITE_FLAG}"


def numbered_name(i: int, n: int) -> str:
    """000000.png, 000001.png, …: at least six digits, more when ``n`` needs them."""
    return f"{i:0{max(6, len(str(n - 1)))}d}.png"


def _writers() -> int:
    return max(1, min(4, os.cpu_count() or 1))


def resume_start(out: OutputDir, n: int, batch_size: int) -> tuple[int, int]:
    """(index of the first batch to generate, images already complete) for ``--resume``:
    generation restarts at the batch boundary before the first missing file, so each image
    comes from the same batch as in an uninterrupted run."""
    complete = [out.done(numbered_name(i, n)) for i in range(n)]
    out.save()
    first_missing = complete.index(False) if False in complete else n
    return first_missing // batch_size * batch_size, sum(complete)


def write_numbered(batches: Iterable[np.ndarray], out: OutputDir, n: int, start: int = 0,
                   desc: str = "write") -> int:
    """Write image ``start + j`` of ``batches`` (uint8 B×H×W×3 arrays) as ``numbered_name``,
    skipping files already complete; returns how many files this call wrote.

    Ctrl-C or SIGTERM raises ``Interrupted`` with the number written and how to continue."""
    written = 0
    skipped = 0
    i = start
    try:
        with sigterm_interrupts(), progress(total=n, initial=start, desc=desc, unit="img") as bar, \
                ThreadPoolExecutor(_writers()) as pool:
            for batch in batches:
                batch = np.asarray(batch)
                todo = [(out.claim(name), img) for name, img in
                        ((numbered_name(i + j, n), img) for j, img in enumerate(batch)) if not out.done(name)]
                skipped += len(batch) - len(todo)
                list(pool.map(lambda pair: write_bytes(pair[0], encode_png(pair[1])), todo))
                out.record(*(path.name for path, _ in todo), save=False)
                written += len(todo)
                i += len(batch)
                bar.update(len(batch))
    except KeyboardInterrupt as err:
        out.record_new()  # files the pool finished before the interrupt
        raise interrupted(err, f"interrupted after writing {len(out.files)} of {n} images to {out.path} "
                               f"(every file there is complete); {CONTINUE_HINT}") from None
    finally:
        out.save()
    return written


@dataclass
class ImageMap:
    """One image file or a whole source in, one PNG per image out (a .png file, or
    OUT/<relative dir>/<prefix><name>.png), under the output policy."""

    src: Path
    out: Path
    prefix: str = ""
    source: Source | None = None
    folder: OutputDir | None = None
    skipped: list[tuple[str, str]] = field(default_factory=list)
    written: int = 0
    kept: int = 0  # complete outputs of an interrupted run, kept on --resume

    @classmethod
    def open(cls, src: str | os.PathLike, out: str | os.PathLike, prefix: str = "", *, command: str,
             inputs: Iterable[str | os.PathLike | None] = (), overwrite: bool = False, resume: bool = False,
             settings: dict[str, Any] | None = None) -> "ImageMap":
        """Check the input and the output before any work (see ``ganeval.outputs``)."""
        path, target = Path(src).expanduser(), Path(out).expanduser()
        if not path.exists():
            raise BadInput(f"{path}: no such file or folder")
        job = cls(path, target, prefix)
        inputs = [path, *inputs]
        if path.is_file() and is_image_name(path.name):
            if is_image_name(target.name) and target.suffix.lower() != ".png":
                raise BadInput(f"{target}: outputs are PNG; give a .png file or a folder")
        else:
            job.source = open_source(path)
            if (target.exists() and not target.is_dir()) or (not target.exists() and is_image_name(target.name)):
                raise BadInput(f"{target}: {path} holds several images; give an output folder")
        if job.single and target.suffix.lower() == ".png":
            if resume:
                raise BadInput(f"{RESUME_FLAG} continues a folder of outputs; {target} is one file")
            check_output_file(target, inputs, overwrite)
        else:
            settings = {"src": os.path.realpath(path), "prefix": prefix, **(settings or {})}
            job.folder = prepare_output_dir(target, command, inputs, overwrite, resume=resume, settings=settings,
                                            defer=True, can_resume=True)
        return job

    @property
    def single(self) -> bool:
        return self.source is None

    def __len__(self) -> int:
        return 1 if self.source is None else len(self.source)

    def name(self, key: str) -> str:
        rel = Path(key)
        return (rel.parent / f"{self.prefix}{rel.stem}.png").as_posix()

    def target(self, key: str) -> Path:
        """OUT itself for a single file with a .png OUT; else OUT/<relative dir>/<prefix><name>.png."""
        if self.folder is None:
            return self.out
        return self.folder.claim(self.name(key))

    def _keys(self) -> Iterator[tuple[int | None, str]]:
        if self.source is None:
            yield None, self.src.name
        else:
            for i in range(len(self.source)):
                yield i, self.source.key(i)

    def images(self) -> Iterator[tuple[str, np.ndarray]]:
        """(key, RGB uint8) for every readable image whose output is not complete yet;
        unreadable ones are recorded in ``skipped`` (a single unreadable file is BadInput)."""
        for i, key in self._keys():
            if self.folder is not None and self.folder.done(self.name(key)):
                self.kept += 1
                continue
            if i is None:
                try:
                    yield key, decode_image(self.src)
                except CorruptImage as err:
                    raise BadInput(f"{self.src}: not a readable image ({err})") from None
                continue
            try:
                img = self.source.read(i)
            except CorruptImage as err:
                self.skipped.append((key, str(err)))
                continue
            yield key, img

    def write(self, key: str, img: np.ndarray) -> Path:
        path = self.target(key)
        write_bytes(path, encode_png(img))
        if self.folder is not None:
            self.folder.record(self.name(key), save=False)
        self.written += 1
        return path

    def run(self, fn: Callable[[np.ndarray], np.ndarray], desc: str) -> "ImageMap":
        """Apply ``fn`` to each image and write the results. Raises ``GanevalError`` when
        nothing could be read, ``Interrupted`` (with the count written) on Ctrl-C/SIGTERM."""
        try:
            with sigterm_interrupts(), progress(total=len(self), desc=desc, unit="img") as bar:
                for key, img in self.images():
                    self.write(key, fn(img))
                    bar.update(1)
                bar.update(len(self.skipped) + self.kept)
        except KeyboardInterrupt as err:
            where = self.out if self.folder is None else f"{self.out} (every file there is complete)"
            hint = "" if self.folder is None else f"; {CONTINUE_HINT}"
            raise interrupted(err, f"interrupted after writing {self.written + self.kept} of {len(self)} "
                                   f"image(s) to {where}{hint}") from None
        finally:
            if self.folder is not None:
                self.folder.save()
        if self.written + self.kept == 0:
            raise GanevalError(f"{self.src}: no readable images; nothing written")
        return self


__all__ = ["numbered_name", "resume_start", "write_numbered", "ImageMap", "CONTINUE_HINT", "Interrupted"]
