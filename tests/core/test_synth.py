"""The synthetic face generator: determinism, layout, variety, files and the CLI."""
from __future__ import annotations

import json
from itertools import combinations

import numpy as np
import pytest

from ganeval.cli.main import main
from ganeval.errors import BadInput
from ganeval.sources import open_source
from ganeval.synth import (BACK_HAIR, FRINGES, MOUTHS, face, make_faces, render_face, sample_params,
                           write_faces)


@pytest.fixture(scope="module")
def faces64() -> np.ndarray:
    return make_faces(16, size=64, seed=0)


def test_same_seed_same_bytes_and_other_seed_differs(faces64):
    again = make_faces(16, size=64, seed=0)
    assert again.tobytes() == faces64.tobytes()
    other = make_faces(16, size=64, seed=1)
    assert not np.array_equal(other, faces64)


def test_face_depends_only_on_seed_and_index(faces64):
    np.testing.assert_array_equal(make_faces(5, size=64, seed=0), faces64[:5])
    np.testing.assert_array_equal(face(11, size=64, seed=0), faces64[11])
    params = sample_params(np.random.default_rng([0, 3]))
    np.testing.assert_array_equal(render_face(params, 64), faces64[3])


@pytest.mark.parametrize("size,n", [(32, 4), (64, 3), (256, 2)])
def test_shape_and_dtype(size, n):
    out = make_faces(n, size=size, seed=2)
    assert out.shape == (n, size, size, 3)
    assert out.dtype == np.uint8
    assert all(img.std() > 15 for img in out)  # real drawings, not blank frames


def test_faces_vary(faces64):
    flat = faces64.astype(np.float32).reshape(len(faces64), -1)
    dists = [np.abs(a - b).mean() for a, b in combinations(flat, 2)]
    assert np.mean(dists) > 25
    assert min(dists) > 5  # no two faces alike

    params = [sample_params(np.random.default_rng([0, i])) for i in range(64)]
    assert len({p.hair for p in params}) == 64
    assert len({p.eye_color for p in params}) == 64
    assert {p.fringe for p in params} == set(FRINGES)
    assert {p.back_hair for p in params} == set(BACK_HAIR)
    assert {p.mouth for p in params} == set(MOUTHS)
    # hair colours spread over the hue circle, not shades of one colour
    hue_bins = {int(_hue(p.hair) * 12) % 12 for p in params}
    assert len(hue_bins) >= 6


def _hue(rgb) -> float:
    import colorsys

    return colorsys.rgb_to_hsv(*(c / 255 for c in rgb))[0]


def test_faces_are_drawn_where_their_parameters_say():
    """Cheek below the eye line has the skin colour; the eyes are large and show white highlights."""
    size = 128
    for i in range(8):
        p = sample_params(np.random.default_rng([5, i]))
        img = render_face(p, size).astype(int)
        r = p.radius
        x = round((p.cx - 0.12 * r) * size)
        y = round((p.cy + (p.eye_y + p.eye_h + 0.12) * r) * size)
        assert np.abs(img[y, x] - np.array(p.skin)).max() <= 8, (i, img[y, x], p.skin)
        if not p.eyes_closed:
            ex, ey = (p.cx + p.eye_gap * r) * size, (p.cy + p.eye_y * r) * size
            ew, eh = p.eye_w * r * size, p.eye_h * r * size
            assert ew > size * 0.06  # big anime eyes
            patch = img[round(ey - eh):round(ey + eh), round(ex - ew):round(ex + ew)]
            assert (patch.min(axis=2) > 235).sum() > 5  # sclera and highlights


def test_bad_sizes_and_counts():
    with pytest.raises(BadInput, match="between 32 and 256"):
        make_faces(2, size=16)
    with pytest.raises(BadInput, match="between 32 and 256"):
        make_faces(2, size=257)
    with pytest.raises(BadInput, match="at least 1"):
        make_faces(0)


def test_png_folder_loads_back_identically(tmp_path):
    out = write_faces(tmp_path / "faces", 6, size=32, seed=1)
    assert out == tmp_path / "faces"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["faces"]  # no temp folder left
    src = open_source(out)
    assert src.keys() == [f"face_{i:06d}.png" for i in range(6)]
    np.testing.assert_array_equal(src.read_all(), make_faces(6, size=32, seed=1))


def test_npz_loads_back_identically(tmp_path):
    out = write_faces(tmp_path / "faces.npz", 5, size=48, seed=4, fmt="npz")
    with np.load(out) as data:
        assert list(data.files) == ["images"]
    src = open_source(out)
    assert len(src) == 5
    np.testing.assert_array_equal(src.read_all(), make_faces(5, size=48, seed=4))


def test_existing_outputs_need_overwrite(tmp_path):
    folder = write_faces(tmp_path / "faces", 5, size=32)
    (folder / "notes.txt").write_text("keep me")
    with pytest.raises(BadInput, match="not empty"):
        write_faces(folder, 3, size=32)
    write_faces(folder, 3, size=32, seed=9, overwrite=True)
    assert sorted(p.name for p in folder.iterdir()) == ["face_000000.png", "face_000001.png",
                                                        "face_000002.png", "notes.txt"]
    np.testing.assert_array_equal(open_source(folder).read_all(), make_faces(3, size=32, seed=9))

    npz = write_faces(tmp_path / "f.npz", 2, size=32, fmt="npz")
    with pytest.raises(BadInput, match="already exists"):
        write_faces(npz, 2, size=32, fmt="npz")
    with pytest.raises(BadInput, match=r"\.npz"):
        write_faces(tmp_path / "f.bin", 2, size=32, fmt="npz")


def test_cli_writes_png_and_npz(tmp_path, capsys):
    folder = tmp_path / "out"
    assert main(["synth-faces", str(folder), "-n", "4", "--size", "32", "--seed", "3"]) == 0
    assert str(folder) in capsys.readouterr().out
    assert len(list(folder.glob("face_*.png"))) == 4

    npz = tmp_path / "faces.npz"
    assert main(["synth-faces", str(npz), "-n", "3", "--size", "32", "--seed", "3", "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report == {"path": str(npz), "format": "npz", "count": 3, "size": 32, "seed": 3}
    np.testing.assert_array_equal(open_source(npz).read_all(), open_source(folder).read_all()[:3])


@pytest.mark.parametrize("extra,needle", [
    (["--size", "16"], "between 32 and 256"),
    (["-n", "0"], "at least 1"),
])
def test_cli_bad_input_is_one_line_exit_2(tmp_path, capsys, extra, needle):
    code = main(["synth-faces", str(tmp_path / "x"), *extra])
    err = capsys.readouterr().err
    assert code == 2
    assert len(err.strip().splitlines()) == 1
    assert needle in err
    assert not (tmp_path / "x").exists()
