"""Checking that a training run resumes bit-exactly."""
from __future__ import annotations

from pathlib import Path
from typing import Any, Callable

import torch

from ganeval.cli.main import main
from ganeval.models.checkpoint import load_checkpoint


def resume_matches_straight(train: Callable[..., int], family: str, folder: Path, steps: int, first: int,
                            *extra: str) -> tuple[dict[str, Any], dict[str, Any]]:
    """Train ``steps`` in one go (``folder/straight``) and ``first`` steps then ``--resume`` to
    ``steps`` (``folder/split``); assert G, D and G_ema are bit-identical and return both
    checkpoints. ``train(run, steps, *extra)`` starts a run."""
    straight, split = folder / "straight", folder / "split"
    assert train(straight, steps, *extra) == 0
    assert train(split, first, *extra) == 0
    assert load_checkpoint(split)["step"] == first
    assert main(["train", family, "--out", str(split), "--resume", "--steps", str(steps), "--device", "cpu",
                 "--num-workers", "0"]) == 0
    a, b = load_checkpoint(straight), load_checkpoint(split)
    assert a["step"] == b["step"] == steps
    for key in ("G", "D", "G_ema"):
        for k, v in a[key].items():
            assert torch.equal(v, b[key][k]), f"{key}.{k} differs after resume"
    return a, b
