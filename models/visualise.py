"""Pictures of a run: sample grids, a timelapse of the grids, latent interpolations.

GIFs are written with Pillow; MP4s need the optional ``imageio-ffmpeg`` package (it ships
its own ffmpeg). Every file is written atomically."""
from __future__ import annotations

import io
import math
import os
import re
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw

from ganeval.atomic import atomic_path, write_bytes
from ganeval.errors import BadInput
from ganeval.images import decode_image, encode_png

GRID_NAME = re.compile(r"^step_(\d+)\.png$")


def tile(images: np.ndarray, columns: int | None = None, pad: int = 2, fill: int = 255) -> np.ndarray:
    """N×H×W×3 uint8 → one grid image, ``columns`` wide (default: as square as possible)."""
    n, h, w, c = images.shape
    cols = columns or math.ceil(math.sqrt(n))
    rows = math.ceil(n / cols)
    grid = np.full((rows * (h + pad) + pad, cols * (w + pad) + pad, c), fill, np.uint8)
    for i, img in enumerate(images):
        r, q = divmod(i, cols)
        y, x = pad + r * (h + pad), pad + q * (w + pad)
        grid[y:y + h, x:x + w] = img
    return grid


def grid_path(run_dir: str | os.PathLike, step: int) -> Path:
    return Path(run_dir) / "grids" / f"step_{step:08d}.png"


def save_grid(path: str | os.PathLike, images: np.ndarray, columns: int | None = None) -> None:
    write_bytes(path, encode_png(tile(images, columns)))


def label(frame: np.ndarray, text: str) -> np.ndarray:
    """Add a white strip with ``text`` under a frame."""
    h, w, _ = frame.shape
    canvas = Image.new("RGB", (w, h + 14), (255, 255, 255))
    canvas.paste(Image.fromarray(frame), (0, 0))
    ImageDraw.Draw(canvas).text((4, h + 1), text, fill=(0, 0, 0))
    return np.asarray(canvas)


def mp4_available() -> bool:
    try:
        import imageio_ffmpeg  # noqa: F401
    except ImportError:
        return False
    return True


def write_gif(path: str | os.PathLike, frames: list[np.ndarray], fps: float) -> None:
    images = [Image.fromarray(f) for f in frames]
    buf = io.BytesIO()
    images[0].save(buf, format="GIF", save_all=True, append_images=images[1:],
                   duration=max(20, round(1000 / fps)), loop=0, optimize=False)
    write_bytes(path, buf.getvalue())


def write_mp4(path: str | os.PathLike, frames: list[np.ndarray], fps: float) -> None:
    """H.264 MP4 via imageio-ffmpeg; frames are padded with white to a multiple of 16."""
    if not mp4_available():
        raise BadInput(f"{path}: writing MP4 needs the optional package imageio-ffmpeg (pip install imageio-ffmpeg); "
                       "write a .gif instead")
    import imageio_ffmpeg

    h, w, _ = frames[0].shape
    H, W = -(-h // 16) * 16, -(-w // 16) * 16
    with atomic_path(path, suffix=".mp4") as tmp:
        writer = imageio_ffmpeg.write_frames(str(tmp), (W, H), fps=fps, codec="libx264",
                                             pix_fmt_out="yuv420p", macro_block_size=16, quality=8)
        writer.send(None)
        for f in frames:
            padded = np.full((H, W, 3), 255, np.uint8)
            padded[:h, :w] = f
            writer.send(np.ascontiguousarray(padded))
        writer.close()


def write_animation(path: str | os.PathLike, frames: list[np.ndarray], fps: float) -> None:
    """A .gif or .mp4, chosen by the file name."""
    if not frames:
        raise BadInput(f"{path}: no frames to write")
    suffix = Path(path).suffix.lower()
    if suffix == ".gif":
        write_gif(path, frames, fps)
    elif suffix == ".mp4":
        write_mp4(path, frames, fps)
    else:
        raise BadInput(f"{path}: choose an output ending in .gif or .mp4")


def run_grids(run_dir: str | os.PathLike) -> list[tuple[int, Path]]:
    """(step, path) of a run's sample grids, by step."""
    folder = Path(run_dir) / "grids"
    if Path(run_dir).is_file():
        raise BadInput(f"{run_dir} is a file; give the run folder that holds it ({Path(run_dir).parent})")
    if not Path(run_dir).is_dir():
        raise BadInput(f"{run_dir}: no such run folder")
    found = sorted((int(m.group(1)), p) for p in folder.glob("step_*.png") if (m := GRID_NAME.match(p.name)))
    if not found:
        raise BadInput(f"{run_dir}: no sample grids in {folder} (they are written by `ganeval train` every --sample-every steps)")
    return found


def timelapse(run_dir: str | os.PathLike, out: str | os.PathLike | None = None, fps: float = 8,
              mp4: bool | None = None) -> list[Path]:
    """Turn a run's grids into RUN/timelapse.gif (or ``out``), plus an MP4 beside it when
    imageio-ffmpeg is installed (``mp4=None``) or asked for (``mp4=True``)."""
    grids = run_grids(run_dir)
    frames = []
    for step, path in grids:
        frames.append(label(decode_image(path), f"step {step}"))
    shape = frames[0].shape
    if any(f.shape != shape for f in frames):
        raise BadInput(f"{run_dir}: grids have different sizes; was the run restarted with other settings?")
    target = Path(out) if out else Path(run_dir) / "timelapse.gif"
    written = []
    write_animation(target, frames, fps)
    written.append(target)
    if target.suffix.lower() == ".gif" and (mp4 or (mp4 is None and mp4_available())):
        write_mp4(target.with_suffix(".mp4"), frames, fps)
        written.append(target.with_suffix(".mp4"))
    return written
