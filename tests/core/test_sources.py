"""The image-source layer: folders, zips, arrays, odd modes, corrupt files."""
from __future__ import annotations

import io
import zipfile

import numpy as np
import pytest
from PIL import Image

from ganeval.errors import BadInput, GanevalError
from ganeval.images import CorruptImage, decode_image
from ganeval.sources import ArraySource, FolderSource, ZipSource, open_source


def _png_bytes(img: Image.Image, fmt: str = "PNG") -> bytes:
    buf = io.BytesIO()
    img.save(buf, format=fmt)
    return buf.getvalue()


def test_modes_convert_to_rgb_uint8():
    gray = Image.fromarray(np.full((5, 6), 100, np.uint8), "L")
    assert (decode_image(_png_bytes(gray)) == 100).all()
    assert decode_image(_png_bytes(gray)).shape == (5, 6, 3)

    rgba = np.zeros((4, 4, 4), np.uint8)
    rgba[..., 0] = 255
    rgba[:2, :, 3] = 255  # top half opaque red, bottom half fully transparent
    out = decode_image(_png_bytes(Image.fromarray(rgba, "RGBA")))
    assert out[0, 0].tolist() == [255, 0, 0]
    assert out[3, 0].tolist() == [255, 255, 255]  # composited on white

    pal = Image.fromarray(np.arange(16, dtype=np.uint8).reshape(4, 4), "L").convert("P")
    assert decode_image(_png_bytes(pal)).shape == (4, 4, 3)

    sixteen = Image.fromarray(np.full((3, 3), 65535, np.uint16))
    assert (decode_image(_png_bytes(sixteen)) == 255).all()  # scaled, not clipped to 255 from 65535
    half = Image.fromarray(np.full((3, 3), 32896, np.uint16))
    assert (decode_image(_png_bytes(half)) == 128).all()

    cmyk = Image.new("CMYK", (3, 3), (0, 255, 255, 0))  # pure red in CMYK
    out = decode_image(_png_bytes(cmyk, "JPEG"))
    assert out[1, 1, 0] > 200 and out[1, 1, 1] < 60

    tiny = Image.new("RGB", (1, 1), (1, 2, 3))
    assert decode_image(_png_bytes(tiny)).tolist() == [[[1, 2, 3]]]


def test_corrupt_and_truncated_raise():
    with pytest.raises(CorruptImage):
        decode_image(b"definitely not an image")
    good = _png_bytes(Image.new("RGB", (64, 64), (9, 9, 9)))
    with pytest.raises(CorruptImage):
        decode_image(good[: len(good) // 2])


@pytest.fixture()
def image_folder(tmp_path, faces32):
    root = tmp_path / "imgs"
    (root / "sub").mkdir(parents=True)
    for i in range(6):
        target = root / ("sub" if i % 2 else "") / f"img{i}.png"
        Image.fromarray(faces32[i]).save(target)
    Image.fromarray(faces32[6]).convert("L").save(root / "gray.png")
    Image.fromarray(faces32[7]).convert("RGBA").save(root / "rgba.png")
    (root / "broken.png").write_bytes(b"\x89PNG\r\n\x1a\n garbage")
    (root / "notes.txt").write_text("not an image")
    return root


def test_folder_source_order_skips_and_strict(image_folder):
    src = open_source(image_folder)
    assert isinstance(src, FolderSource)
    assert len(src) == 9  # 6 + gray + rgba + broken; .txt ignored
    assert src.keys() == sorted(src.keys())
    it = src.loader(batch_size=4, num_workers=2)
    images = np.concatenate([b.images.numpy() for b in it])
    assert images.shape == (8, 32, 32, 3) and images.dtype == np.uint8
    assert len(it.corrupt) == 1 and it.corrupt[0][0] == "broken.png"
    assert "skipped 1 corrupt" in it.report_corrupt()
    with pytest.raises(GanevalError, match="broken.png"):
        list(src.loader(batch_size=4, num_workers=0, strict=True))


def test_content_hash_tracks_bytes(image_folder):
    h1 = open_source(image_folder).content_hash()
    assert open_source(image_folder).content_hash() == h1
    Image.new("RGB", (32, 32)).save(image_folder / "img0.png")
    assert open_source(image_folder).content_hash() != h1


def test_zip_and_array_sources_match_folder(tmp_path, faces32):
    zpath = tmp_path / "faces.zip"
    with zipfile.ZipFile(zpath, "w") as zf:
        for i in range(5):
            zf.writestr(f"faces/{i:03d}.png", _png_bytes(Image.fromarray(faces32[i])))
        zf.writestr("__MACOSX/faces/._000.png", b"junk")
        zf.writestr("faces/bad.jpg", b"junk")
    zsrc = open_source(zpath)
    assert isinstance(zsrc, ZipSource) and len(zsrc) == 6
    it = zsrc.loader(batch_size=2, num_workers=2)
    np.testing.assert_array_equal(np.concatenate([b.images.numpy() for b in it]), faces32[:5])
    assert len(it.corrupt) == 1

    np.save(tmp_path / "faces.npy", faces32[:5])
    np.savez(tmp_path / "faces.npz", images=faces32[:5])
    for name in ("faces.npy", "faces.npz"):
        src = open_source(tmp_path / name)
        assert isinstance(src, ArraySource)
        np.testing.assert_array_equal(src.read_all(), faces32[:5])
    np.save(tmp_path / "gray.npy", faces32[:3, :, :, 0])
    assert open_source(tmp_path / "gray.npy").read(0).shape == (32, 32, 3)


def test_mixed_sizes_resized_only_when_asked(tmp_path, faces32):
    root = tmp_path / "mixed"
    root.mkdir()
    Image.fromarray(faces32[0]).save(root / "a.png")
    Image.fromarray(faces32[1]).resize((40, 40)).save(root / "b.png")
    src = open_source(root)
    with pytest.raises(BadInput, match="different sizes"):
        list(src.loader(batch_size=2))
    batch = next(iter(src.loader(batch_size=2, mixed_size=32)))
    assert tuple(batch.images.shape) == (2, 32, 32, 3)
    np.testing.assert_array_equal(batch.images[0].numpy(), faces32[0])  # the right size stays untouched


@pytest.mark.parametrize("make, message", [
    (lambda p: p.mkdir(), "contains no images"),
    (lambda p: None, "no such file"),
    (lambda p: p.with_suffix(".txt").write_text("x") or None, "not an image source"),
])
def test_bad_sources(tmp_path, make, message):
    path = tmp_path / "thing"
    make(path)
    target = path if path.exists() or "no such" in message else path.with_suffix(".txt")
    with pytest.raises(BadInput, match=message):
        open_source(target)


def test_bad_arrays(tmp_path):
    np.save(tmp_path / "f.npy", np.zeros((2, 4, 4, 3), np.float32))
    with pytest.raises(BadInput, match="uint8"):
        open_source(tmp_path / "f.npy")
    np.savez(tmp_path / "stats.npz", mu=np.zeros(3), sigma=np.eye(3))
    with pytest.raises(BadInput, match="statistics file"):
        open_source(tmp_path / "stats.npz")
    (tmp_path / "bad.zip").write_bytes(b"not a zip")
    with pytest.raises(BadInput, match="not a readable zip"):
        open_source(tmp_path / "bad.zip")


def test_strict_error_in_a_worker_is_one_line_bad_input(image_folder):
    """A corrupt file under --strict decoded in a DataLoader worker surfaces as the same one-line
    BadInput (exit 2) as in the main process, not a worker traceback."""
    from ganeval.errors import BadInput

    for workers in (0, 2):
        with pytest.raises(BadInput) as info:
            list(open_source(image_folder).loader(batch_size=4, num_workers=workers, strict=True))
        message = str(info.value)
        assert "broken.png" in message and "\n" not in message and "Traceback" not in message


def test_mixed_sizes_without_a_size_are_one_line_in_workers(tmp_path, faces32):
    from ganeval.errors import BadInput

    root = tmp_path / "mixed"
    root.mkdir()
    Image.fromarray(faces32[0]).save(root / "a.png")
    Image.fromarray(faces32[1]).resize((16, 16)).save(root / "b.png")
    with pytest.raises(BadInput, match="different sizes") as info:
        list(open_source(root).loader(batch_size=4, num_workers=1))
    assert "\n" not in str(info.value)


def test_skipped_line_names_count_and_first():
    from ganeval.sources import skipped_line

    assert skipped_line("set", []) is None and skipped_line("set", 0) is None
    assert skipped_line("set", [("x.png", "bad"), ("y.png", "bad")]) == "set: skipped 2 corrupt image(s), e.g. x.png (bad)"
    assert skipped_line("set", 3, first="z.png") == "set: skipped 3 corrupt image(s), e.g. z.png"


def test_cache_home_that_is_a_file_is_one_clear_line(tmp_path, monkeypatch):
    from ganeval.cache import cache_dir
    from ganeval.errors import BadInput

    home = tmp_path / "home"
    home.write_text("not a folder")
    monkeypatch.setenv("GANEVAL_HOME", str(home))
    with pytest.raises(BadInput, match="GANEVAL_HOME"):
        cache_dir("weights")


def test_progress_bar_survives_a_zero_column_terminal(monkeypatch, capsys):
    import os as _os

    from ganeval import progress as prog

    monkeypatch.setenv("GANEVAL_PROGRESS", "1")
    monkeypatch.delenv("GANEVAL_QUIET", raising=False)
    monkeypatch.setattr(prog.os, "get_terminal_size", lambda fd=None: _os.terminal_size((0, 24)))
    with prog.progress(total=10, desc="work") as bar:
        bar.update(10)
    assert bar.ncols == 80
