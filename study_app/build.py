"""``ganeval study init``: build a study folder from a real source and one or more fake sources.

Images are decoded with the foundation's decoder and copied in as PNG (no metadata) under
opaque random ids (``secrets.token_hex(8)``), written in shuffled order: neither a name, a
path nor the order of files on disk tells real from fake. Truth, model label and source key
live only in the database. Each source contributes up to ``pool`` images (a seeded random
subset), never fewer than one participant needs. Corrupt images are skipped and counted; the
same pixels among real and fake give a warning, and so do real and fake sets of different
colour modes (grayscale vs colour). ``equalize="jpeg:Q"`` passes every image, real and fake,
through the same resampling and JPEG encoding (``equalize_jpeg``), so JPEG's 8×8 grid in the
reals stops telling them apart; ``study_app.audit`` measures what is left. The study folder
appears whole: it is filled under a temporary name and renamed at the end."""
from __future__ import annotations

import datetime as dt
import hashlib
import io
import os
import secrets
import shutil
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Sequence

import numpy as np
from PIL import Image
from sqlalchemy import func, insert, select

from ganeval.atomic import write_bytes
from ganeval.errors import BadInput
from ganeval.images import CorruptImage, decode_image, encode_png
from ganeval.resample import resize_rgb
from ganeval.sources import Source, open_source, printable_name
from ganeval.study_app import db
from ganeval.study_app.assign import needed_per_class
from ganeval.study_app.protocol import ATTENTION_LABEL, REAL_LABEL
from ganeval.study_app.store import IMAGES_DIR, SETTINGS_FILE, StudySettings

DEFAULT_POOL = 200
EQUALIZE_SCALE = 2 / 3  # --equalize resamples through 2/3 of the side: the finest detail (JPEG noise) goes
MIN_DISPLAY, MAX_DISPLAY = 64, 2048
_RESERVED_LABELS = (REAL_LABEL, ATTENTION_LABEL)


@dataclass
class SourceImages:
    """The images taken from one source: arrays with their source keys and pixel hashes."""

    path: str
    label: str
    truth: str
    arrays: list[np.ndarray] = field(default_factory=list)
    keys: list[str] = field(default_factory=list)
    hashes: list[str] = field(default_factory=list)
    corrupt: int = 0
    first_corrupt: str | None = None


@dataclass
class BuildResult:
    study_dir: Path
    settings: StudySettings
    images: dict[str, int]          # per model label, attention checks included
    corrupt: dict[str, int]         # per source path
    warnings: list[str]
    db: str                         # display URL (password hidden)
    equalize: str | None = None     # 'jpeg:Q' when every image went through equalize_jpeg


def pixel_hash(arr: np.ndarray) -> str:
    """Hash of decoded pixels (and shape): the same image in two encodings hashes the same."""
    digest = hashlib.blake2b(digest_size=16)
    digest.update(str(arr.shape).encode())
    digest.update(np.ascontiguousarray(arr).tobytes())
    return digest.hexdigest()


def parse_upscaler(spec: str | None) -> str | None:
    """None (Lanczos) or 'srgan:/abs/path/to/ckpt'; BadInput otherwise."""
    if spec is None or spec.lower() in ("", "lanczos", "none"):
        return None
    kind, sep, ckpt = spec.partition(":")
    if not sep or kind != "srgan" or not ckpt:
        raise BadInput(f"--upscaler must be srgan:CHECKPOINT (or lanczos), got {spec!r}")
    path = Path(ckpt).expanduser()
    if not path.is_file():
        raise BadInput(f"--upscaler: no such checkpoint {path}")
    return f"srgan:{path.resolve()}"


def parse_equalize(spec: str | None) -> int | None:
    """None, or the JPEG quality of ``--equalize jpeg:Q`` (1..95); BadInput otherwise."""
    if spec is None or spec.lower() in ("", "none", "off"):
        return None
    kind, sep, quality = spec.partition(":")
    if kind.lower() != "jpeg" or not sep or not quality.isdigit() or not 1 <= int(quality) <= 95:
        raise BadInput(f"--equalize must be jpeg:Q with a quality Q from 1 to 95 (e.g. jpeg:90), got {spec!r}")
    return int(quality)


def _jpeg_round_trip(arr: np.ndarray, quality: int) -> np.ndarray:
    buf = io.BytesIO()
    Image.fromarray(arr).save(buf, format="JPEG", quality=quality, subsampling=2)  # baseline 4:2:0, no metadata
    return decode_image(buf.getvalue())


def equalize_jpeg(arr: np.ndarray, quality: int) -> np.ndarray:
    """The same JPEG encoding and resampling for every image, real and fake.

    Real sets are JPEGs and generator samples clean PNGs: the reals carry JPEG's 8×8 grid and
    its quantisation noise. A bare re-encoding would lay a second grid exactly on the first.
    So every image is encoded at ``quality`` (every image now carries that noise), resampled
    by the same non-integer factor (a 1/24-of-the-side margin cropped off each edge, bicubic
    through 2/3 of the size and back), which moves any old grid off the 8-pixel lattice and
    smooths the finest detail where the noise lives, and encoded at ``quality`` once more, so
    every image carries the same, new grid. Measured on synthetic faces (JPEG reals at
    quality 70-90 vs PNG fakes, 64 px): blockiness AUC 0.51, PNG byte-size AUC 0.53-0.54."""
    h, w = arr.shape[:2]
    margin = max(1, min(h, w) // 24)
    low = (max(8, round(h * EQUALIZE_SCALE)), max(8, round(w * EQUALIZE_SCALE)))
    first = _jpeg_round_trip(arr, quality)
    resampled = resize_rgb(resize_rgb(first[margin:h - margin, margin:w - margin], low), (h, w))
    return _jpeg_round_trip(resampled, quality)


def fake_labels(fakes: Sequence[str], labels: Sequence[str | None] | None) -> list[str]:
    """One label per fake source: the given one, or (None / missing) the source's file stem."""
    labels = list(labels or [])
    if len(labels) > len(fakes):
        raise BadInput(f"{len(labels)} --label values for {len(fakes)} --fake sources; give one --label per --fake")
    labels += [None] * (len(fakes) - len(labels))
    out = []
    for i, (fake, label) in enumerate(zip(fakes, labels)):
        if label is None:
            stem = Path(fake).expanduser().name.split(".")[0] or f"fake{i}"
            label = f"fake_{stem}" if stem in _RESERVED_LABELS else stem
        out.append(label)
    for label in out:
        if label in _RESERVED_LABELS:
            raise BadInput(f"the label {label!r} is reserved; give another --label")
        if not label.strip():
            raise BadInput("a --label must not be empty")
    dupes = sorted({x for x in out if out.count(x) > 1})
    if dupes:
        raise BadInput(f"model labels must differ, {', '.join(dupes)} appears twice; give --label for each --fake")
    return out


def _take(source: Source, label: str, truth: str, want: int, need: int, rng: np.random.Generator,
          warn: Callable[[str], None]) -> SourceImages:
    """Read a seeded random subset of ``want`` readable images, skipping corrupt ones."""
    if len(source) < need:
        readable, skipped = _count_decodable(source)
        extra = f" ({len(skipped)} other file(s) skipped, not decodable images: {', '.join(skipped[:3])})" if skipped else ""
        raise BadInput(f"{source.path}: {readable} image(s){extra}, but each participant needs {need} {label} image(s); "
                       f"add images or lower --trials/--qualification")
    taken = SourceImages(printable_name(source.path), label, truth)
    for index in rng.permutation(len(source)).tolist():
        if len(taken.arrays) >= want:
            break
        try:
            arr = source.read(index)
        except CorruptImage as err:
            taken.corrupt += 1
            taken.first_corrupt = taken.first_corrupt or f"{printable_name(source.key(index))} ({err})"
            continue
        taken.arrays.append(arr)
        taken.keys.append(printable_name(source.key(index)))
        taken.hashes.append(pixel_hash(arr))
    if len(taken.arrays) < need:  # one line: the refusal names the skipped files itself
        raise BadInput(f"{source.path}: only {len(taken.arrays)} readable image(s) ({taken.corrupt} corrupt), "
                       f"but each participant needs {need} {label} image(s)")
    if taken.corrupt:
        warn(f"{source.path}: skipped {taken.corrupt} corrupt image(s), e.g. {taken.first_corrupt}")
    # canonical order (source order), so the seeded assignment does not depend on read order
    order = sorted(range(len(taken.keys)), key=lambda i: taken.keys[i])
    taken.arrays = [taken.arrays[i] for i in order]
    taken.keys = [taken.keys[i] for i in order]
    taken.hashes = [taken.hashes[i] for i in order]
    return taken


def _count_decodable(source: Source) -> tuple[int, list[str]]:
    """How many of the (few) files decode, and the names of those that do not: a text file
    called b.jpg is not an image."""
    readable, skipped = 0, []
    for index in range(len(source)):
        try:
            source.read(index)
            readable += 1
        except CorruptImage:
            skipped.append(source.key(index))
    return readable, skipped


def is_grayscale(arr: np.ndarray, tolerance: int = 8, share: float = 0.01) -> bool:
    """True when (almost) no pixel has colour: fewer than ``share`` of the pixels have channels
    more than ``tolerance`` levels apart (JPEG's chroma rounding in a gray image stays below)."""
    a = arr.astype(np.int16)
    chroma = a.max(axis=2) - a.min(axis=2)
    return float((chroma > tolerance).mean()) < share


def colour_mode_warning(taken: list[SourceImages]) -> str | None:
    """One line when the real set and a fake set differ in colour mode (grayscale vs colour
    content, by majority): colour alone would give the truth away."""
    def mode(t: SourceImages) -> tuple[str, int]:
        gray = sum(is_grayscale(a) for a in t.arrays)
        return ("grayscale" if gray * 2 > len(t.arrays) else "colour"), gray

    real_mode, _ = mode(taken[0])
    differing = []
    for t in taken[1:]:
        m, gray = mode(t)
        if m != real_mode:
            differing.append(f"{t.label} {m} ({gray if m == 'grayscale' else len(t.arrays) - gray} of {len(t.arrays)})")
    if not differing:
        return None
    return (f"colour mode differs: real images are {real_mode} but {', '.join(differing)}; colour alone tells real "
            "from fake (convert one side, or use sources of one colour mode)")


def common_size(taken: list[SourceImages], image_size: int | None, warn: Callable[[str], None]) -> int:
    """Bring every image to one square size, in place: sharp 96 px reals beside blurry upscaled
    64 px fakes would give the truth away. Default: the smallest side among all images."""
    if image_size is not None and image_size < 8:
        raise BadInput(f"--image-size must be at least 8 px, got {image_size}")
    sides = {(arr.shape[0], arr.shape[1]) for t in taken for arr in t.arrays}
    size = image_size or min(min(hw) for hw in sides)
    if sides == {(size, size)}:
        return size
    if len(sides) > 1:
        per_source = ", ".join(f"{t.label} {'/'.join(sorted({f'{a.shape[1]}×{a.shape[0]}' for a in t.arrays}))}"
                           for t in taken)
        warn(f"images differ in size ({per_source}); all are brought to {size}×{size} px so that resolution "
             "does not reveal which are real (set --image-size to choose)")
    for t in taken:
        t.arrays = [resize_rgb(center_square(arr), size) for arr in t.arrays]
        t.hashes = [pixel_hash(arr) for arr in t.arrays]
    return size


def center_square(arr: np.ndarray) -> np.ndarray:
    h, w = arr.shape[:2]
    side = min(h, w)
    top, left = (h - side) // 2, (w - side) // 2
    return arr[top:top + side, left:left + side]


def scrambled(arr: np.ndarray, rng: np.random.Generator, grid: int = 4) -> np.ndarray:
    """An obvious fake for attention checks: the image cut into grid×grid tiles, shuffled,
    every other tile colour-inverted."""
    h, w = (arr.shape[0] // grid) * grid, (arr.shape[1] // grid) * grid
    if h < grid or w < grid:
        raise BadInput(f"images of {arr.shape[1]}×{arr.shape[0]} px are too small for attention checks")
    th, tw = h // grid, w // grid
    tiles = [arr[r * th:(r + 1) * th, c * tw:(c + 1) * tw] for r in range(grid) for c in range(grid)]
    order = rng.permutation(len(tiles))
    while np.array_equal(order, np.arange(len(tiles))):
        order = rng.permutation(len(tiles))
    out = np.empty((h, w, 3), dtype=np.uint8)
    for slot, src in enumerate(order.tolist()):
        r, c = divmod(slot, grid)
        tile = tiles[src]
        out[r * th:(r + 1) * th, c * tw:(c + 1) * tw] = 255 - tile if slot % 2 else tile
    return out


def build_study(study_dir: str | os.PathLike, real: str, fakes: Sequence[str], labels: Sequence[str] | None = None,
                trials: int = 24, qualification: int = 0, attention: int = 0, seed: int = 0,
                display_size: int = 512, upscaler: str | None = None, db_url: str | None = None,
                title: str | None = None, pool: int = DEFAULT_POOL, image_size: int | None = None,
                equalize: str | None = None,
                warn: Callable[[str], None] = lambda message: None) -> BuildResult:
    """Create STUDY_DIR with study.json, images/ and the database; BadInput on unusable input."""
    if trials < 2:
        raise BadInput(f"--trials must be at least 2 (half real, half fake), got {trials}")
    if qualification < 0 or attention < 0:
        raise BadInput("--qualification and --attention must be 0 or more")
    if qualification == 1:
        raise BadInput("--qualification must be 0 or at least 2 (it tests real and fake images)")
    if not MIN_DISPLAY <= display_size <= MAX_DISPLAY:
        raise BadInput(f"--display-size must be {MIN_DISPLAY}..{MAX_DISPLAY} px, got {display_size}")
    if not fakes:
        raise BadInput("give at least one --fake source")
    labels = fake_labels(fakes, labels)
    upscaler = parse_upscaler(upscaler)
    jpeg_quality = parse_equalize(equalize)
    study_dir = Path(study_dir).expanduser().resolve()
    if (study_dir / SETTINGS_FILE).exists():
        raise BadInput(f"{study_dir}: already holds a study; choose a new folder")
    if study_dir.exists() and (not study_dir.is_dir() or any(study_dir.iterdir())):
        raise BadInput(f"{study_dir}: exists and is not an empty folder; choose a new folder")

    warnings: list[str] = []

    def _warn(message: str) -> None:
        warnings.append(message)
        warn(message)

    sources = [(open_source(real), REAL_LABEL, "real")] + [(open_source(f), lb, "fake") for f, lb in zip(fakes, labels)]
    need = needed_per_class(trials, qualification, labels)
    rng = np.random.default_rng([int(seed), 0x5717])
    taken = [_take(src, lb, truth, max(need[lb], pool), need[lb], rng, _warn) for src, lb, truth in sources]

    colour = colour_mode_warning(taken)
    if colour:
        _warn(colour)
    common_size(taken, image_size, _warn)
    real_hashes = dict(zip(taken[0].hashes, taken[0].keys))
    dupes = [(real_hashes[h], t.label, k) for t in taken[1:] for h, k in zip(t.hashes, t.keys) if h in real_hashes]
    if dupes:
        r, lb, k = dupes[0]
        _warn(f"{len(dupes)} image(s) appear among both real and fake (same pixels), e.g. real {r} = {lb} {k}; "
              f"check that the fake source is not a copy of the real one")
    if jpeg_quality is not None:
        for t in taken:
            t.arrays = [equalize_jpeg(arr, jpeg_quality) for arr in t.arrays]
            t.hashes = [pixel_hash(arr) for arr in t.arrays]

    # rows in canonical order: real, then each label; attention checks from real images
    rows: list[dict] = []
    for t in taken:
        for arr, key, h in zip(t.arrays, t.keys, t.hashes):
            rows.append({"truth": t.truth, "model_label": t.label, "role": "pool", "source": t.path,
                         "source_key": key, "pixel_hash": h, "array": arr})
    reals = taken[0]
    for i in range(2 * attention):
        base = int(rng.integers(len(reals.arrays)))
        arr = scrambled(reals.arrays[base], rng)
        rows.append({"truth": "fake", "model_label": ATTENTION_LABEL, "role": "attention", "source": reals.path,
                     "source_key": f"scrambled:{reals.keys[base]}", "pixel_hash": pixel_hash(arr), "array": arr})
    used: set[str] = set()
    for sort_key, row in enumerate(rows):
        row["sort_key"] = sort_key
        row["id"] = secrets.token_hex(8)
        while row["id"] in used:
            row["id"] = secrets.token_hex(8)
        used.add(row["id"])

    settings = StudySettings(
        title=title or "Real or fake?", trials=trials, qualification=qualification, attention=attention, seed=seed,
        display_size=display_size, upscaler=upscaler, db_url=db_url, labels=labels,
        created_at=db.iso(dt.datetime.now(dt.timezone.utc)))

    study_dir.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{study_dir.name}.", dir=study_dir.parent))
    try:
        (tmp / IMAGES_DIR).mkdir()
        for i in rng.permutation(len(rows)).tolist():  # file order on disk says nothing either
            write_bytes(tmp / IMAGES_DIR / f"{rows[i]['id']}.png", encode_png(rows[i]["array"]))
        url = db_url or os.environ.get("GANEVAL_STUDY_DB_URL") or db.sqlite_url(tmp)
        engine = db.make_engine(url)
        try:
            try:
                db.create_schema(engine)
            except Exception as err:  # noqa: BLE001 - an unreachable server etc.: one line
                raise BadInput(f"cannot use database {db.display_url(url)}: {type(err).__name__}: "
                               f"{str(err).splitlines()[0] if str(err) else ''}") from None
            with db.write_tx(engine) as conn:
                if conn.execute(select(func.count()).select_from(db.images)).scalar():
                    raise BadInput(f"database {db.display_url(url)} already holds a study; give an empty database")
                conn.execute(insert(db.images), [
                    {k: row[k] for k in ("id", "truth", "model_label", "role", "source", "source_key", "pixel_hash",
                                         "sort_key")} | {"height": row["array"].shape[0], "width": row["array"].shape[1]}
                    for row in rows])
        finally:
            engine.dispose()
        settings.save(tmp / SETTINGS_FILE)
        mask = os.umask(0)
        os.umask(mask)
        os.chmod(tmp, 0o777 & ~mask)  # mkdtemp made it private
        if study_dir.exists():
            study_dir.rmdir()  # empty (checked above)
        os.replace(tmp, study_dir)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    counts: dict[str, int] = {}
    for row in rows:
        counts[row["model_label"]] = counts.get(row["model_label"], 0) + 1
    return BuildResult(study_dir, settings, counts, {t.path: t.corrupt for t in taken}, warnings,
                       db.display_url(db_url or os.environ.get("GANEVAL_STUDY_DB_URL") or db.sqlite_url(study_dir)),
                       None if jpeg_quality is None else f"jpeg:{jpeg_quality}")
