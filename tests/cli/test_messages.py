"""Messages that tell the truth (issue 12, item 13): each names the real problem in one line."""
from __future__ import annotations

import errno

import numpy as np
import pytest
import torch

from ganeval.cli.main import main
from ganeval.errors import BadInput, GanevalError


def test_weights_folder_is_called_a_folder(tmp_path):
    from ganeval.features.inception import INCEPTION_WEIGHTS
    from ganeval.weights import locate_weights

    with pytest.raises(BadInput, match="is a folder"):
        locate_weights(INCEPTION_WEIGHTS, tmp_path)
    with pytest.raises(BadInput, match="does not exist"):
        locate_weights(INCEPTION_WEIGHTS, tmp_path / "nope.pth")


def test_weights_list_checks_bytes_not_names(tmp_path, monkeypatch, capsys):
    from ganeval.features.inception import INCEPTION_WEIGHTS

    home = tmp_path / "home"
    monkeypatch.setenv("GANEVAL_HOME", str(home))
    (home / "weights").mkdir(parents=True)
    (home / "weights" / INCEPTION_WEIGHTS.filename).write_bytes(np.random.default_rng(0).bytes(4096))
    assert main(["weights", "list"]) == 0
    line = next(l for l in capsys.readouterr().out.splitlines() if INCEPTION_WEIGHTS.filename in l)
    assert "NOT the published file" in line and "present" not in line


def test_timelapse_on_a_checkpoint_file_names_the_run_folder(tmp_path, capsys):
    run = tmp_path / "run"
    run.mkdir()
    ckpt = run / "checkpoint.pt"
    ckpt.write_bytes(b"x")
    assert main(["timelapse", str(ckpt)]) == 2
    err = capsys.readouterr().err
    assert "is a file" in err and str(run) in err and "no such run folder" not in err


def test_checkpoint_errors_end_at_a_word(tmp_path):
    from ganeval.models.checkpoint import _short, load_state

    long = RuntimeError("size mismatch for a very long parameter name " * 20)
    text = _short(long)
    assert len(text) <= 202 and text.endswith(" …") and "\n" not in text
    net = torch.nn.Linear(3, 2)
    with pytest.raises(BadInput) as info:
        load_state(net, {"weight": torch.zeros(2, 4), "bias": torch.zeros(2)}, "G", "ckpt.pt")
    message = str(info.value)
    assert "of another shape, e.g. weight: (2, 4) in the file, (2, 3) in the model" in message


def test_disk_full_names_the_output(tmp_path, monkeypatch):
    from ganeval import atomic

    target = tmp_path / "stats.npz"
    real_replace = atomic.os.replace

    def full(src, dst):
        raise OSError(errno.ENOSPC, "No space left on device", str(src))

    monkeypatch.setattr(atomic.os, "replace", full)
    with pytest.raises(GanevalError, match=f"cannot write {target}: No space left on device"):
        atomic.write_text(target, "x")
    monkeypatch.setattr(atomic.os, "replace", real_replace)
    assert list(tmp_path.iterdir()) == []  # no temp file left behind


def test_ganeval_home_that_is_a_file(tmp_path, monkeypatch, capsys):
    home = tmp_path / "home"
    home.write_text("x")
    monkeypatch.setenv("GANEVAL_HOME", str(home))
    assert main(["weights", "list"]) == 2
    err = capsys.readouterr().err.strip()
    assert "GANEVAL_HOME" in err and "NotADirectoryError" not in err and len(err.splitlines()) == 1
