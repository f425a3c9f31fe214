"""Shared training data for the model tests."""
from __future__ import annotations

from pathlib import Path

import pytest

from ganeval.atomic import save_npz
from ganeval.synth import make_faces


@pytest.fixture(scope="session")
def faces32_npz(tmp_path_factory) -> Path:
    """32 synthetic faces of 32×32 px: enough for a few training steps of any StyleGAN."""
    path = tmp_path_factory.mktemp("faces32") / "faces.npz"
    save_npz(path, images=make_faces(32, 32, seed=0))
    return path
