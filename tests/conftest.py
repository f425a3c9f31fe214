"""Shared fixtures: everything is built here, nothing is downloaded."""
from __future__ import annotations

import os

import numpy as np
import pytest
import torch

os.environ.setdefault("GANEVAL_OFFLINE", "1")
os.environ.setdefault("GANEVAL_QUIET", "1")


@pytest.fixture(autouse=True)
def _isolated_cache(tmp_path, monkeypatch):
    """Every test gets its own empty $GANEVAL_HOME and never goes online."""
    monkeypatch.setenv("GANEVAL_HOME", str(tmp_path / "ganeval-home"))
    monkeypatch.setenv("GANEVAL_OFFLINE", "1")


def random_inception_state(seed: int = 0) -> dict[str, torch.Tensor]:
    """FID-Inception-shaped weights, as the published .pth holds them (fc included),
    with BatchNorm statistics randomised so that no layer is an identity."""
    from ganeval.features.inception import FIDInceptionNet

    torch.manual_seed(seed)
    state = FIDInceptionNet().state_dict()
    gen = torch.Generator().manual_seed(seed + 1)
    for key, value in state.items():
        if key.endswith("running_var") or key.endswith("bn.weight"):
            state[key] = torch.rand(value.shape, generator=gen) + 0.5
        elif key.endswith("running_mean") or key.endswith("bn.bias"):
            state[key] = torch.randn(value.shape, generator=gen) * 0.1
    state["fc.weight"] = torch.randn(1008, 2048, generator=gen) * 0.01
    state["fc.bias"] = torch.zeros(1008)
    return state


@pytest.fixture(scope="session")
def inception_weights(tmp_path_factory) -> str:
    path = tmp_path_factory.mktemp("weights") / "test_inception.pth"
    torch.save(random_inception_state(), path)
    return str(path)


@pytest.fixture(scope="session")
def faces32() -> np.ndarray:
    from ganeval.synth import make_faces

    return make_faces(48, size=32, seed=0)
