"""``ganeval sample`` as a function: a generator's images as numbered PNGs or one .npz, under
the output policy (checked before the generator is loaded), resumable after an interrupt:
image i is the image of seed i's latent alone (:mod:`ganeval.sampler`), so a resumed folder
equals an uninterrupted one."""
from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Sequence

import numpy as np

from ganeval.atomic import save_npz
from ganeval.imagewrite import resume_start, write_numbered
from ganeval.outputs import check_output_file, checkpoint_input, interrupted, prepare_output_dir, sigterm_interrupts
from ganeval.progress import progress

CHECKPOINT_FILE = "checkpoint.pt"  # what a run folder holds (models.trainer.CHECKPOINT_NAME)


@dataclass
class SampleResult:
    path: Path
    n: int
    written: int  # files written by this call
    kept: int  # complete files of an interrupted run kept by --resume
    resolution: int
    step: int | None


def _source_identity(source: str | os.PathLike) -> dict:
    """Which generator file, cheaply: a resumed folder must come from the same file, unchanged."""
    path = Path(source)
    if path.is_dir():
        path = path / CHECKPOINT_FILE
    try:
        st = path.stat()
    except OSError:
        return {"checkpoint": str(source)}
    return {"checkpoint": os.path.realpath(path), "size": st.st_size, "mtime_ns": st.st_mtime_ns}


def write_samples(source: str | os.PathLike, load: Callable[[], Any], out: str | os.PathLike, seeds: Sequence[int],
                  batch_size: int = 32, options: dict[str, Any] | None = None, overwrite: bool = False,
                  resume: bool = False) -> SampleResult:
    """Write the images of ``seeds``: ``out`` ending in .npz gets one file (key ``images``, and
    ``seeds``), anything else a folder of 000000.png, … (file i is seeds[i]'s image).
    ``load()`` gives the generator (a :class:`ganeval.generators.Generator`), called only after
    the outputs are checked; ``options`` are its ``sample`` keywords (truncation, noise mode, class)."""
    options = dict(options or {})
    target, n = Path(out), len(seeds)
    inputs = [checkpoint_input(source)] if Path(source).exists() else []
    if target.suffix.lower() == ".npz":
        if resume:
            from ganeval.errors import BadInput
            from ganeval.outputs import RESUME_FLAG

            raise BadInput(f"{RESUME_FLAG} continues a folder of PNGs; {target} is written once, at the end")
        check_output_file(target, inputs, overwrite)
        G = load()
        parts: list[np.ndarray] = []
        try:
            with sigterm_interrupts(), progress(total=n, desc="sample", unit="img") as bar:
                for batch in G.sample(list(seeds), batch_size=batch_size, **options):
                    parts.append(batch.numpy())
                    bar.update(len(batch))
        except KeyboardInterrupt as err:
            raise interrupted(err, f"interrupted after generating {sum(map(len, parts))} of {n} images; "
                                   f"nothing written ({target} is written once, at the end)") from None
        save_npz(target, images=np.concatenate(parts), seeds=np.asarray(seeds, dtype=np.int64))
        return SampleResult(target, n, n, 0, int(G.resolution or parts[0].shape[1]), G.info.get("step"))

    settings = {**_source_identity(source), "seeds": _seed_summary(seeds), **{k: v for k, v in options.items()},
                "batch_size": batch_size, "names": f"{max(6, len(str(n - 1)))} digits"}
    folder = prepare_output_dir(target, "sample", inputs, overwrite, resume=resume, settings=settings,
                                defer=True, can_resume=True)
    G = load()
    start, kept = resume_start(folder, n, batch_size) if folder.resumed else (0, 0)
    batches = (b.numpy() for b in G.sample(list(seeds[start:]), batch_size=batch_size, **options))
    written = write_numbered(batches, folder, n, start, desc="sample")
    return SampleResult(target, n, written, kept, int(G.resolution or 0), G.info.get("step"))


def _seed_summary(seeds: Sequence[int]) -> str:
    """Seeds as ranges ("0-99,200"), so a resume with other seeds is refused without listing 50k numbers."""
    parts, i = [], 0
    while i < len(seeds):
        j = i
        while j + 1 < len(seeds) and seeds[j + 1] == seeds[j] + 1:
            j += 1
        parts.append(str(seeds[i]) if i == j else f"{seeds[i]}-{seeds[j]}")
        i = j + 1
    return ",".join(parts)
