"""``ganeval.nearest.api.find_nearest``, hubness, feature spaces and the library fixes of issue 12."""
from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from PIL import Image

from ganeval.cli.main import main
from ganeval.errors import BadInput
from ganeval.nearest import report
from ganeval.images import to_uint8_nhwc
from ganeval.nearest.api import find_nearest
from ganeval.ssim import ssim_matrix
from ganeval.synth import make_faces


@pytest.fixture(scope="module")
def train() -> np.ndarray:
    return make_faces(40, size=32, seed=0)


def test_find_nearest_accepts_arrays_tensors_and_paths(train, tmp_path):
    gen = make_faces(6, size=32, seed=1)
    gen[0] = train[7]
    truth = ssim_matrix(gen, train)
    res = find_nearest(gen, train, k=2, exact=True, device="cpu")
    assert (res.index[:, 0] == truth.argmax(1)).all()
    assert res.score[:, 0] == pytest.approx(truth.max(1), abs=1e-6)
    assert res.neighbours(0)[0] == ("000007", pytest.approx(1.0))
    assert {"generated", "train", "settings", "ranks", "copies", "hubness", "recall"} <= set(res)
    json.dumps(res, default=str)  # the same plain keys as summary.json
    # channels-first tensor, float in [-1, 1], and a path: the same neighbours
    as_float = torch.from_numpy(gen).permute(0, 3, 1, 2).float() / 127.5 - 1
    np.save(tmp_path / "train.npy", train)
    with pytest.raises(BadInput, match="value_range"):
        find_nearest(as_float, tmp_path / "train.npy", k=2)
    res2 = find_nearest(as_float, tmp_path / "train.npy", k=2, exact=True, device="cpu", value_range=(-1, 1))
    assert (res2.index == res.index).all()
    assert res2.train_keys[:2] == ["000000", "000001"]


def test_find_nearest_from_a_generator_callable(train):
    table = torch.from_numpy(train[:8]).permute(0, 3, 1, 2).float() / 127.5 - 1

    def G(z: torch.Tensor) -> torch.Tensor:  # a "generator" that copies training images 0–7
        return table[(z[:, 0].abs() * 1000).long() % 8]

    res = find_nearest(G, train, k=1, n=10, z_dim=4, device="cpu", candidates=16)
    assert res["generated"]["n"] == 10
    assert (res.score[:, 0] > 0.999).all() and (res.index[:, 0] < 8).all()
    with pytest.raises(BadInput, match="needs n="):
        find_nearest(G, train, k=1)
    with pytest.raises(BadInput, match="unknown option"):
        find_nearest(train[:2], train, k=1, candidate=3)


def test_to_uint8_rejects_out_of_range_floats():
    with pytest.raises(BadInput, match=r"\[-1, 1\]"):
        to_uint8_nhwc(np.full((1, 8, 8, 3), 200.0), (-1, 1), strict_range=True)
    assert to_uint8_nhwc(np.zeros((2, 3, 8, 8), np.float32)).shape == (2, 8, 8, 3)
    half = to_uint8_nhwc(np.full((1, 2, 2, 3), 0.5, np.float32), (0, 1))
    assert (half.numpy() == 128).all()


def test_hubness_share_hubs_and_warning():
    keys = [f"t{i}" for i in range(10)]
    ids = np.array([3] * 12 + [1] * 5 + list(range(3)) * 1 + [9] * 1)
    hub = report.hubness(ids, keys, n_hubs=3)
    assert hub["queries"] == 21 and hub["distinct_top1"] == 5
    assert [h["train"] for h in hub["hubs"]] == ["t3", "t1", "t0"]
    assert hub["top1_share"] == pytest.approx(12 / 21)
    assert "t3" in hub["warning"] and "12 of 21" in hub["warning"]
    spread = report.hubness(np.arange(100) % 50, keys * 5)
    assert spread["top1_share"] == pytest.approx(0.02) and spread["warning"] is None


def test_cli_reports_hubness_and_hub_sheet(train, tmp_path, capsys):
    """Blurry, low-contrast queries all land on the one flat training image: a hub."""
    t = train.copy()
    t[5] = 128  # a flat grey face
    gen = np.clip(128 + (make_faces(12, size=32, seed=3).astype(int) - 128) // 16, 0, 255).astype(np.uint8)
    np.save(tmp_path / "t.npy", t)
    np.save(tmp_path / "g.npy", gen)
    out = tmp_path / "out"
    assert main(["nearest", str(tmp_path / "g.npy"), str(tmp_path / "t.npy"), "-k", "1", "-o", str(out),
                 "--exact", "--num-workers", "0"]) == 0
    err = capsys.readouterr().err
    assert "hubness:" in err and "warning: hub: training image 000005" in err
    summary = json.loads((out / "summary.json").read_text())
    assert summary["hubness"]["hubs"][0]["train"] == "000005"
    assert (out / "contact_sheets" / "hubs.png").stat().st_size > 0


def _train_with_corrupt(tmp_path, train):
    folder = tmp_path / "train"
    folder.mkdir()
    for i in range(6):
        Image.fromarray(train[i]).save(folder / f"f{i}.png")
    (folder / "f9_broken.png").write_bytes(b"not a png")
    return folder


def test_skipped_training_images_strict_and_k(train, tmp_path, capsys):
    folder = _train_with_corrupt(tmp_path, train)
    np.save(tmp_path / "g.npy", train[:2])
    base = ["nearest", str(tmp_path / "g.npy"), str(folder), "--num-workers", "0", "--exact"]
    assert main(base + ["-k", "1"]) == 0
    err = capsys.readouterr().err
    assert "skipped 1 unreadable training image(s), e.g. f9_broken.png" in err
    # the cached index remembers the skip: --strict refuses it without rebuilding
    assert main(base + ["-k", "1", "--strict"]) == 2
    err = capsys.readouterr().err
    assert "unreadable" in err and "--strict" in err and err.count("\n") == 1
    # 7 files, 6 readable: -k 7 names the readable count
    assert main(base + ["-k", "7"]) == 2
    assert "6 readable images (1 unreadable skipped)" in capsys.readouterr().err


def test_exhaustive_progress_updates_per_query(train, monkeypatch):
    import ganeval.nearest.search as search
    from ganeval.nearest.index import IndexSettings, open_index
    from ganeval.sources import ArraySource
    from pathlib import Path

    updates = []

    class Bar:
        def __init__(self, *a, **kw):
            pass

        def __enter__(self):
            return self

        def __exit__(self, *a):
            return False

        def update(self, n):
            updates.append(n)

    monkeypatch.setattr(search, "progress", Bar)
    index = open_index(ArraySource(Path("t.npy"), train), IndexSettings())
    search.Searcher(index, workers=1).exhaustive(train[:5], k=1)
    assert updates == [len(train)] * 5
