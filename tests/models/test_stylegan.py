"""StyleGAN (v1): the progressive-growing schedule, levels of detail in G, D and the reals,
bit-exact resume of `ganeval train stylegan`, and sampling through the one sampler. Pixel
equality with NVlabs' TensorFlow rendering is in test_nvlabs.py."""
from __future__ import annotations

import functools

import numpy as np
import pytest
import torch

from ganeval.cli.main import main
from ganeval.errors import BadInput
from tests.models.runs import resume_matches_straight
from ganeval.models.stylegan import (StyleGANDiscriminator, StyleGANGenerator, lod_at, reals_at_lod,
                                     stylegan_options)


def test_schedule_follows_nvlabs_progressive_growing():
    """64 px from 8 px: lod 3 for lod_kimg, then fading one level per fade_kimg, and so on."""
    lod = [lod_at(kimg * 1000, 64, 8, 600, 600) for kimg in (0, 599, 600, 900, 1200, 1800, 2400, 3000, 4000)]
    assert lod == pytest.approx([3, 3, 3, 2.5, 2, 2, 1, 1, 0])
    assert lod_at(0, 64, 64, 600, 600) == 0  # starting at the full resolution: no growing
    assert lod_at(300_000, 64, 8, 600, 0) == 3 and lod_at(600_000, 64, 8, 600, 0) == 2


def test_learning_rate_follows_nvlabs_per_resolution():
    from types import SimpleNamespace

    from ganeval.models.stylegan import StyleGANObjective

    spec = SimpleNamespace(model=SimpleNamespace(resolution=256), family=SimpleNamespace(lr_g=0.001))
    objective = SimpleNamespace(options_v1=stylegan_options(256, {}), spec=spec)
    rates = [StyleGANObjective.learning_rate(objective, lod) for lod in (3.0, 2.0, 1.5, 1.0, 0.4, 0.0)]
    assert rates == [0.001, 0.001, 0.0015, 0.0015, 0.002, 0.002]  # 32, 64, 128 (fading to 256), 256 px
    objective.options_v1 = stylegan_options(256, {"lr_schedule": False, "lr": 0.002})
    assert StyleGANObjective.learning_rate(objective, 0.0) == 0.002


def test_options_are_checked():
    assert stylegan_options(64, {})["fmap_base"] == 8192
    with pytest.raises(BadInput, match="start_resolution must be a power of two from 4 to 64"):
        stylegan_options(64, {"start_resolution": 12})
    with pytest.raises(BadInput, match="style_mixing is a probability"):
        stylegan_options(64, {"style_mixing": 2.0})


def test_levels_of_detail_in_generator_discriminator_and_reals():
    torch.manual_seed(0)
    G = StyleGANGenerator(8, 3, 32, fmap_base=64, fmap_max=8).eval()
    D = StyleGANDiscriminator(3, 32, fmap_base=64, fmap_max=8).eval()
    z = torch.randn(4, 8)
    full = G(z)
    G.set_lod(1)  # 16 px shown at 32 px: 2×2 blocks
    coarse = G(z)
    assert torch.equal(coarse[..., ::2, ::2], coarse[..., 1::2, 1::2]) and not torch.allclose(coarse, full)
    G.set_lod(0.5)
    half = G(z)
    assert not torch.allclose(half, coarse) and not torch.allclose(half, full)
    x = torch.randn(4, 3, 32, 32)
    scores = []
    for lod in (0.0, 0.5, 1.0):
        D.lod.fill_(lod)
        scores.append(D(x))
    assert not torch.allclose(scores[0], scores[1]) and not torch.allclose(scores[1], scores[2])
    assert torch.equal(reals_at_lod(x, 0), x)
    one = reals_at_lod(x, 1)
    torch.testing.assert_close(one[..., ::2, ::2], torch.nn.functional.avg_pool2d(x, 2))
    torch.testing.assert_close(reals_at_lod(x, 0.5), 0.5 * x + 0.5 * one)


def test_truncation_moves_only_the_coarse_styles():
    torch.manual_seed(0)
    G = StyleGANGenerator(8, 3, 64, fmap_base=64, fmap_max=8).eval()
    G.mapping.w_avg.normal_()
    z = torch.randn(2, 8)
    ws, full = G.ws(z, 0.5), G.ws(z)
    assert G.num_ws == 10  # two per resolution, 4 to 64 px
    assert torch.allclose(ws[:, 8:], full[:, 8:]) and not torch.allclose(ws[:, :8], full[:, :8])
    assert not torch.allclose(G.ws(z, 0.5, truncation_cutoff=10)[:, 8:], full[:, 8:])


def _train(data, run, steps, *extra) -> int:
    # batch 4: 8 images take lod 2 (8 px) to 1.5 over steps 2-4, then 16 px
    return main(["train", "stylegan", "--data", str(data), "--out", str(run), "--steps", str(steps), "--batch-size",
                 "4", "--resolution", "32", "--width", "8", "-O", "fmap_base=64", "--z-dim", "8", "-O",
                 "lod_kimg=0.008", "-O", "fade_kimg=0.016", "--device", "cpu", "--num-workers", "0",
                 "--log-every", "1", "--ckpt-every", "100", *extra])


@pytest.mark.slow
def test_training_grows_resumes_exactly_and_samples(faces32_npz, tmp_path, capsys):
    a, _ = resume_matches_straight(functools.partial(_train, faces32_npz), "stylegan", tmp_path, 4, 2)
    straight = tmp_path / "straight"
    assert float(a["G"]["synthesis.lod"]) == pytest.approx(1.75)  # step 3: 12 images, half-way into the fade
    assert float(a["G_ema"]["synthesis.lod"]) == float(a["G"]["synthesis.lod"])
    import pandas as pd

    assert pd.read_csv(straight / "metrics.csv")["lod"].tolist() == [2.0, 2.0, 2.0, 1.75]
    out = tmp_path / "s.npz"
    assert main(["sample", str(straight), "--seeds", "0-2", "--truncation", "0.7", "-o", str(out),
                 "--device", "cpu"]) == 0
    with np.load(out) as npz:
        assert npz["images"].shape == (3, 32, 32, 3)
    capsys.readouterr()
    assert main(["models"]) == 0
    assert "stylegan " in capsys.readouterr().out.replace("stylegan2", "").replace("stylegan3", "") + " "
