"""`ganeval inspect`: one activation grid per hooked generator layer, for every family."""
from __future__ import annotations

import re

import numpy as np
import pytest
import torch
from PIL import Image

from ganeval.atomic import save_npz
from ganeval.cli.main import main
from ganeval.synth import make_faces
from ganeval.models.inspect import channel_grid, record_activations
from ganeval.models.registry import get_family
from ganeval.sampler import latents_for_seeds
from ganeval.models.trainer import Trainer, TrainConfig

pytestmark = pytest.mark.usefixtures("one_torch_thread")


@pytest.fixture(scope="module")
def faces_npz(tmp_path_factory):
    path = tmp_path_factory.mktemp("insp") / "faces.npz"
    save_npz(path, images=make_faces(16, 32, seed=0))
    return path


def _checkpoint(name, data, out, **kw):
    cfg = get_family(name).config(32, 3, width=4, **kw)
    trainer = Trainer(cfg, TrainConfig(data=str(data), out=str(out), steps=1, batch_size=4), "cpu")
    return trainer.save(), trainer


def _listed(index_html: str) -> list[str]:
    return re.findall(r'<img src="(\d{3}_[^"]+\.png)"', index_html)


@pytest.mark.parametrize("name, expected", [
    ("dcgan", ["net.0.0", "net.0", "net.1.0", "net.1", "net.2.0", "net.2", "net.3", "net"]),
    ("stylegan2", ["synthesis.blocks.b4.conv1", "synthesis.blocks.b4.torgb", "synthesis.blocks.b8.conv0",
                   "synthesis.blocks.b8.conv1", "synthesis.blocks.b8.torgb", "synthesis.blocks.b16.conv0",
                   "synthesis.blocks.b16.conv1", "synthesis.blocks.b16.torgb", "synthesis.blocks.b32.conv0",
                   "synthesis.blocks.b32.conv1", "synthesis.blocks.b32.torgb", "synthesis"]),
])
def test_inspect_writes_one_grid_per_layer(name, expected, faces_npz, tmp_path):
    ckpt, trainer = _checkpoint(name, faces_npz, tmp_path / "run", **({"z_dim": 16} if name == "stylegan2" else {}))
    out = tmp_path / "inspect"
    assert main(["inspect", str(ckpt), "--seed", "3", "-o", str(out), "--max-channels", "16", "--device", "cpu"]) == 0
    index = (out / "index.html").read_text()
    files = _listed(index)
    assert [re.sub(r"^\d{3}_|\.png$", "", f) for f in files] == expected  # forward order, no duplicates
    pngs = sorted(p.name for p in out.glob("[0-9][0-9][0-9]_*.png"))
    assert pngs == sorted(files)
    for f in files:
        assert Image.open(out / f).mode == "RGB"
    assert "output.png" in index and (out / "output.png").exists()
    # the channel counts listed match the generator's layers for that seed
    G = trainer.G_ema
    z = latents_for_seeds([3], trainer.model_cfg.z_dim)
    recorded, _ = record_activations(G, lambda: G(z))
    assert [r[0] for r in recorded] == expected
    for (layer, _kind, act), f in zip(recorded, files):
        c, h, w = act.shape
        assert f"<td>{c}×{h}×{w}</td>" in index
        shown = min(c, 16)
        cols = int(np.ceil(np.sqrt(shown)))
        cell = h * -(-32 // h) if h < 32 else h  # small maps are enlarged to ≥ 32 px
        width = Image.open(out / f).size[0]
        assert width == cols * (cell + 1) + 1, (layer, width)


def test_channel_grid_puts_the_highest_energy_channel_first_and_caps_the_count():
    gen = torch.Generator().manual_seed(0)
    act = torch.stack([torch.zeros(4, 4), torch.randn(4, 4, generator=gen) * 5, torch.randn(4, 4, generator=gen) * 0.1])
    picture, shown = channel_grid(act, max_channels=2)
    assert shown == 2
    first = picture[1:1 + 32:8, 1:1 + 32:8, 0].astype(float)  # the first cell, 4×4 enlarged to 32×32
    strongest = act[1]
    expected = (strongest - strongest.min()) / (strongest.max() - strongest.min()) * 255
    assert np.abs(first - expected.numpy()).max() <= 0.5
    _, all_shown = channel_grid(act, max_channels=64)
    assert all_shown == 3
    flat, _ = channel_grid(torch.zeros(1, 4, 4))
    assert (flat[1:33, 1:33] == 128).all()  # a constant channel is mid-grey, not a division by zero


def test_inspect_bad_input(tmp_path, capsys):
    (tmp_path / "file").write_text("x")
    assert main(["inspect", str(tmp_path / "missing.pt"), "-o", str(tmp_path / "o")]) == 2
    assert "no such checkpoint" in capsys.readouterr().err
