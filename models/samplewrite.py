"""``ganeval sample`` as a function: a checkpoint's images as numbered PNGs or one .npz,
under the output policy (checked before the checkpoint is loaded), resumable after an
interrupt: image i depends only on (checkpoint, seed, i), so a resumed folder equals an
uninterrupted one."""
from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ganeval.atomic import save_npz
from ganeval.errors import BadInput
from ganeval.imagewrite import resume_start, write_numbered
from ganeval.models.checkpoint import load_checkpoint
from ganeval.models.sampling import generate_uint8_batches
from ganeval.outputs import (RESUME_FLAG, check_output_file, checkpoint_input, interrupted, prepare_output_dir,
                             sigterm_interrupts)
from ganeval.progress import progress

CHECKPOINT_FILE = "checkpoint.pt"  # what a run folder holds (models.trainer.CHECKPOINT_NAME)


@dataclass
class SampleResult:
    path: Path
    n: int
    written: int  # files written by this call
    kept: int  # complete files of an interrupted run kept by --resume
    resolution: int
    step: int


def _checkpoint_identity(checkpoint: str | os.PathLike) -> dict:
    """Which checkpoint, cheaply: a resumed folder must come from the same file, unchanged."""
    path = Path(checkpoint)
    if path.is_dir():
        path = path / CHECKPOINT_FILE
    try:
        st = path.stat()
    except OSError:
        return {"checkpoint": os.path.realpath(path)}
    return {"checkpoint": os.path.realpath(path), "size": st.st_size, "mtime_ns": st.st_mtime_ns}


def write_samples(checkpoint: str | os.PathLike, out: str | os.PathLike, n: int, batch_size: int = 100,
                  seed: int = 0, device: str = "auto", use_ema: bool = True, truncation: float | None = None,
                  noise_mode: str = "const", overwrite: bool = False, resume: bool = False) -> SampleResult:
    """Write ``n`` images: ``out`` ending in .npz gets one file (key ``images``), anything
    else a folder of 000000.png, …"""
    target = Path(out)
    if resume and noise_mode == "random":  # one noise stream runs through all images: cannot restart midway
        raise BadInput(f"{RESUME_FLAG} needs --noise-mode const (random noise is one stream over all images); "
                       f"pass --overwrite to sample again")
    if target.suffix.lower() == ".npz":
        if resume:
            raise BadInput(f"{RESUME_FLAG} continues a folder of PNGs; {target} is written once, at the end")
        check_output_file(target, [checkpoint_input(checkpoint)], overwrite)
        data = load_checkpoint(checkpoint)
        parts: list[np.ndarray] = []
        try:
            with sigterm_interrupts(), progress(total=n, desc="sample", unit="img") as bar:
                for batch in generate_uint8_batches(data, n, batch_size, seed, device, use_ema=use_ema,
                                                    truncation=truncation, noise_mode=noise_mode):
                    parts.append(batch.numpy())
                    bar.update(len(batch))
        except KeyboardInterrupt as err:
            raise interrupted(err, f"interrupted after generating {sum(map(len, parts))} of {n} images; "
                                   f"nothing written ({target} is written once, at the end)") from None
        save_npz(target, images=np.concatenate(parts))
        return SampleResult(target, n, n, 0, _resolution(data), int(data.get("step", 0)))

    settings = {**_checkpoint_identity(checkpoint), "seed": seed, "ema": use_ema, "truncation": truncation,
                "noise_mode": noise_mode, "batch_size": batch_size, "names": f"{max(6, len(str(n - 1)))} digits"}
    folder = prepare_output_dir(target, "sample", [checkpoint_input(checkpoint)], overwrite, resume=resume, settings=settings,
                                defer=True, can_resume=True)
    data = load_checkpoint(checkpoint)
    start, kept = resume_start(folder, n, batch_size) if folder.resumed else (0, 0)
    batches = (b.numpy() for b in generate_uint8_batches(data, n - start, batch_size, seed, device, use_ema=use_ema,
                                                         truncation=truncation, noise_mode=noise_mode, start=start))
    written = write_numbered(batches, folder, n, start, desc="sample")
    return SampleResult(target, n, written, kept, _resolution(data), int(data.get("step", 0)))


def _resolution(data: dict) -> int:
    return int(data["config"]["model"]["resolution"])
