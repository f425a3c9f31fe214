"""The ```python examples of README.md and docs/ run as written, in a folder holding the files
they name (images, a training zip, an NVlabs pickle, a ganeval run) with the test-built
Inception weights in the cache. Only sample counts meant for a GPU are shrunk (``n=50_000``
becomes ``n=24``) so that the examples run in seconds on a CPU."""
from __future__ import annotations

import re
import shutil
import zipfile
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from ganeval.cli.main import main
from ganeval.features.inception import INCEPTION_WEIGHTS

ROOT = Path(__file__).resolve().parents[2]
DOCS = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
SHRINK = {"n=50_000": "n=24", "n=1000": "n=24", 'seeds="0-99"': 'seeds="0-3"'}


def python_blocks(path: Path) -> list[str]:
    return re.findall(r"```python\n(.*?)```", path.read_text(), flags=re.S)


def test_every_python_example_is_found():
    found = {p.name: len(python_blocks(p)) for p in DOCS if python_blocks(p)}
    assert {"README.md", "api.md", "generators.md", "nearest.md", "fid.md"} <= set(found), found


@pytest.fixture
def workspace(tmp_path, monkeypatch, faces32, inception_weights):
    monkeypatch.chdir(tmp_path)
    cache = Path(tmp_path / "ganeval-home" / "weights")
    cache.mkdir(parents=True)
    shutil.copy(inception_weights, cache / INCEPTION_WEIGHTS.filename)
    Path("real").mkdir()
    for i, face in enumerate(faces32[:16]):
        Image.fromarray(face).save(f"real/{i:03d}.png")
    np.savez("fake.npz", images=faces32[16:32])
    np.savez("real.npz", images=faces32[:16])
    with zipfile.ZipFile("train.zip", "w") as zf:
        for i, face in enumerate(faces32[16:48]):
            Image.fromarray(face).save(f"t{i}.png")
            zf.write(f"t{i}.png", f"train/{i:03d}.png")
    shutil.copy(ROOT / "tests" / "data" / "nvlabs" / "sg2_64.pkl", "network-snapshot-025000.pkl")
    assert main(["train", "dcgan", "--data", "real.npz", "--out", "run", "--resolution", "32", "--width", "8",
                 "--batch-size", "8", "--steps", "1", "--num-workers", "0", "--device", "cpu"]) == 0
    torch.manual_seed(0)
    G = torch.nn.Sequential(torch.nn.Linear(128, 3 * 32 * 32), torch.nn.Tanh(), torch.nn.Unflatten(1, (3, 32, 32)))
    return {"fake_uint8": faces32[32:40], "G": G}


@pytest.mark.slow
@pytest.mark.parametrize("doc", ["README.md", "api.md", "generators.md", "nearest.md"])
def test_python_examples_run(doc, workspace, capsys):
    path = ROOT / doc if doc == "README.md" else ROOT / "docs" / doc
    blocks = python_blocks(path)
    assert blocks
    namespace = dict(workspace)
    for i, block in enumerate(blocks):
        for long, short in SHRINK.items():
            block = block.replace(long, short)
        exec(compile(block, f"{doc} python block {i}", "exec"), namespace)  # noqa: S102 - our own docs
    capsys.readouterr()
