"""An NVlabs pickle works wherever a generator is accepted: sample, fid --generator, nearest
--generator, interpolate, style-mix, inspect and study init --fake, with the same pixels."""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from ganeval.cli.main import main
from ganeval.generators import load_generator

PKL = Path(__file__).resolve().parents[1] / "data" / "nvlabs" / "sg2_64.pkl"
CPU = ["--device", "cpu"]


def test_visual_commands_take_a_pickle(tmp_path, capsys):
    assert main(["interpolate", str(PKL), "--seeds", "1,2", "--frames", "2", "-o", str(tmp_path / "w.gif"),
                 "--space", "w"] + CPU) == 0
    assert main(["style-mix", str(PKL), "--rows", "1,2", "--cols", "3", "-o", str(tmp_path / "m.png")] + CPU) == 0
    assert main(["inspect", str(PKL), "--seed", "0", "-o", str(tmp_path / "layers")] + CPU) == 0
    assert (tmp_path / "w.gif").stat().st_size and (tmp_path / "m.png").stat().st_size
    assert (tmp_path / "layers" / "index.html").is_file()


def test_nearest_generator_samples_the_same_images(tmp_path, capsys):
    images = np.concatenate([b.numpy() for b in load_generator(PKL).sample(n=6, seed=2)])
    train = tmp_path / "train.npz"
    np.savez(train, images=np.concatenate([images[:3], np.zeros((3, 64, 64, 3), np.uint8)]))
    assert main(["nearest", "--generator", str(PKL), str(train), "-n", "6", "--seed", "2", "-k", "1",
                 "--noise-mode", "const", "--json"] + CPU) == 0
    summary = json.loads(capsys.readouterr().out)
    assert summary["generated"]["n"] == 6
    assert main(["nearest", str(train), str(train), "--generator", str(PKL), "-n", "2"] + CPU) == 2
    assert "not both" in capsys.readouterr().err


@pytest.mark.slow
def test_fid_generator_takes_a_pickle(tmp_path, capsys, inception_weights):
    real = tmp_path / "real.npz"
    np.savez(real, images=np.concatenate([b.numpy() for b in load_generator(PKL).sample(n=8, seed=100)]))
    common = ["--weights", inception_weights, "--json", "--num-workers", "0", "--metrics", "fid"] + CPU
    assert main(["fid", str(real), "--generator", str(PKL), "-n", "8"] + common) == 0
    first = json.loads(capsys.readouterr().out)["fid"]
    assert main(["fid", str(real), "--generator", str(PKL), "--seeds", "0-7", "--batch-size", "3"] + common) == 0
    assert json.loads(capsys.readouterr().out)["fid"] == pytest.approx(first, rel=1e-9)


def test_study_init_draws_fakes_from_a_generator(tmp_path, capsys, faces32):
    real = tmp_path / "real.npz"
    big = np.repeat(np.repeat(faces32[:12], 2, axis=1), 2, axis=2)  # 64 px like the pickle
    np.savez(real, images=big)
    assert main(["study", "init", str(tmp_path / "s"), "--real", str(real), "--fake", str(PKL), "--pool", "12",
                 "--trials", "4", "--no-audit", "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["images"].get("sg2_64") == 12 and out["labels"] == ["sg2_64"]
