"""``ganeval nearest --space inception``: cosine neighbours in a feature network's space."""
from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from ganeval.cli.main import main
from ganeval.features.registry import build_extractor
from ganeval.synth import make_faces


@pytest.mark.slow
def test_inception_space_finds_feature_neighbours(inception_weights, tmp_path, capsys):
    train = make_faces(5, size=32, seed=0)
    gen = make_faces(2, size=32, seed=1)
    gen[1] = train[3]  # a copy: cosine 1 with itself
    np.save(tmp_path / "t.npy", train)
    np.save(tmp_path / "g.npy", gen)
    out = tmp_path / "out"
    argv = ["nearest", str(tmp_path / "g.npy"), str(tmp_path / "t.npy"), "-k", "2", "--space", "inception",
            "--weights", inception_weights, "-o", str(out), "--device", "cpu", "--num-workers", "0",
            "--batch-size", "4"]
    assert main(argv) == 0
    err = capsys.readouterr().err
    assert "training features: 5 images, inception (2048-d)" in err and "hubness:" in err
    summary = json.loads((out / "summary.json").read_text())
    assert summary["settings"]["space"] == "inception" and summary["settings"]["method"] == "cosine:inception"
    assert summary["train"]["index"]["standard_weights"] is False

    # the reference: the extractor's features, cosine by hand
    net = build_extractor("inception", inception_weights, torch.device("cpu")).eval()
    with torch.no_grad():
        f = net(torch.from_numpy(np.concatenate([train, gen[:1]])).permute(0, 3, 1, 2)).numpy().astype(np.float64)
    ft, fg = f[:5], np.concatenate([f[5:], f[3:4]])  # gen[1] is train[3]
    cos = (fg / np.linalg.norm(fg, axis=1, keepdims=True)) @ (ft / np.linalg.norm(ft, axis=1, keepdims=True)).T
    rows = [line.split(",") for line in (out / "neighbours.csv").read_text().splitlines()[1:]]
    for q in range(2):
        order = np.argsort(-cos[q])[:2]
        got = [r for r in rows if r[0] == f"{q:06d}"]
        assert [r[2] for r in got] == [f"{i:06d}" for i in order]
        assert [float(r[3]) for r in got] == pytest.approx(cos[q, order], abs=1e-4)
    assert rows[2][2] == "000003" and float(rows[2][3]) == pytest.approx(1.0, abs=1e-5)

    # second run: the training features come from the cache
    assert main(argv[:-4] + ["--json", "--num-workers", "0", "--device", "cpu", "--overwrite"]) == 0
    assert json.loads(capsys.readouterr().out)["train"]["index"]["cached"] is True


def test_feature_space_refuses_ssim_only_flags(tmp_path, capsys):
    np.save(tmp_path / "t.npy", make_faces(4, size=32, seed=0))
    assert main(["nearest", str(tmp_path / "t.npy"), str(tmp_path / "t.npy"), "--space", "inception",
                 "--mean-all"]) == 2
    assert "--space ssim only" in capsys.readouterr().err
    assert main(["nearest", str(tmp_path / "t.npy"), str(tmp_path / "t.npy"), "--space", "nosuch"]) == 2
    assert "unknown features" in capsys.readouterr().err
