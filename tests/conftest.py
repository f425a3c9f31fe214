"""Shared fixtures: everything is built here, nothing is downloaded."""
from __future__ import annotations

import json
import os
import tempfile

import numpy as np
import pytest
import torch

os.environ.setdefault("GANEVAL_OFFLINE", "1")
os.environ.setdefault("GANEVAL_QUIET", "1")
# hypothesis keeps its working files in ./.hypothesis by default: tests write only under tmp paths
os.environ.setdefault("HYPOTHESIS_STORAGE_DIRECTORY", tempfile.mkdtemp(prefix="ganeval-hypothesis-"))

# the throwaway PostgreSQL cluster: one per session, shared by every module that asks for it
pytest_plugins = ["tests.pg_cluster"]


@pytest.fixture(autouse=True)
def _isolated_cache(tmp_path, monkeypatch):
    """Every test gets its own empty $GANEVAL_HOME and never goes online."""
    monkeypatch.setenv("GANEVAL_HOME", str(tmp_path / "ganeval-home"))
    monkeypatch.setenv("GANEVAL_OFFLINE", "1")


# what the parity tests measured against their reference packages; `benchmarks/parity.py` runs them
# with GANEVAL_PARITY_OUT set and prints the table of docs/parity.md
PARITY_RECORDS: list[dict] = []


@pytest.fixture
def parity(request):
    """``parity(quantity, reference, ours, theirs)``: note the largest |ours − theirs| of a
    parity test (scalars or arrays) for the parity table; the test still asserts its tolerance."""
    def record(quantity: str, reference: str, ours, theirs) -> None:
        a, b = np.asarray(ours, dtype=np.float64), np.asarray(theirs, dtype=np.float64)
        scale = float(np.max(np.abs(b))) if b.size else 0.0
        PARITY_RECORDS.append({"test": request.node.nodeid, "quantity": quantity, "reference": reference,
                               "values": int(a.size), "max_abs_diff": float(np.max(np.abs(a - b))) if a.size else 0.0,
                               "reference_scale": scale})
    return record


def pytest_sessionfinish(session):
    out = os.environ.get("GANEVAL_PARITY_OUT")
    if out:
        with open(out, "w") as fh:
            json.dump(PARITY_RECORDS, fh, indent=1)


@pytest.fixture(scope="module")
def one_torch_thread():
    """Tiny models run fastest on one thread, and a second OpenMP thread waiting for a busy
    core can slow a step tens of times on a shared 2-core machine."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


def random_inception_state(seed: int = 0) -> dict[str, torch.Tensor]:
    """FID-Inception-shaped weights in the published .pth layout (fc included).

    Default-initialised random weights make pool3 nearly constant across images (the
    signal dies in 90 layers and only biases remain), which would let parity tests pass
    on rounding noise. So: He-normal convolutions, then BatchNorm running statistics
    calibrated on a fixed batch, as training would leave them; features then vary
    across images at unit scale, like real ones."""
    from ganeval.features.inception import FIDInceptionNet
    from ganeval.synth import make_faces

    gen = torch.Generator().manual_seed(seed)
    net = FIDInceptionNet()
    for module in net.modules():
        if isinstance(module, torch.nn.Conv2d):
            fan_in = module.weight[0].numel()
            module.weight.data = torch.randn(module.weight.shape, generator=gen) * (2.0 / fan_in) ** 0.5
        elif isinstance(module, torch.nn.BatchNorm2d):
            module.momentum = None  # cumulative average: running stats = the calibration batch's
            module.weight.data = torch.rand(module.weight.shape, generator=gen) * 0.5 + 0.75
            module.bias.data = torch.randn(module.bias.shape, generator=gen) * 0.1
            module.reset_running_stats()
    faces = torch.from_numpy(make_faces(8, size=64, seed=seed + 100)).permute(0, 3, 1, 2).float() / 255
    noise = torch.rand((8, 3, 64, 64), generator=gen)
    batch = torch.nn.functional.interpolate(torch.cat([faces, noise]), size=(299, 299), mode="bilinear",
                                            align_corners=False) * 2 - 1
    net.train()
    with torch.no_grad():
        net(batch)
    state = net.state_dict()
    state["fc.weight"] = torch.randn(1008, 2048, generator=gen) * 0.01
    state["fc.bias"] = torch.zeros(1008)
    return state


@pytest.fixture(scope="session")
def inception_state() -> dict[str, torch.Tensor]:
    return random_inception_state()


@pytest.fixture(scope="session")
def inception_weights(tmp_path_factory, inception_state) -> str:
    path = tmp_path_factory.mktemp("weights") / "test_inception.pth"
    torch.save(inception_state, path)
    return str(path)


@pytest.fixture(scope="session")
def faces32() -> np.ndarray:
    from ganeval.synth import make_faces

    return make_faces(48, size=32, seed=0)
