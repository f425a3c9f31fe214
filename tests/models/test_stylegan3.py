"""StyleGAN3 in the zoo: filters designed as NVlabs designs them, training with StyleGAN2-ADA's
machinery, bit-exact resume, and sampling through the one sampler."""
from __future__ import annotations

import functools
from pathlib import Path

import numpy as np
import pytest
import torch

from ganeval.cli.main import main
from ganeval.errors import BadInput
from ganeval.models.nvlabs import _read
from ganeval.models.stylegan3 import StyleGAN3Generator, stylegan3_options
from tests.models.runs import resume_matches_straight

DATA = Path(__file__).resolve().parents[1] / "data" / "nvlabs"


@pytest.mark.parametrize("name", ["sg3t_64", "sg3r_64"])
def test_designed_filters_equal_nvlabs_stored_ones(name):
    record = _read(DATA / f"{name}.pkl")["G_ema"]
    kw = dict(record.init_kwargs)
    mapping = kw.pop("mapping_kwargs", {})
    core = {k: kw.pop(k) for k in ("z_dim", "c_dim", "w_dim", "img_resolution", "img_channels")}
    ours = StyleGAN3Generator(**core, mapping_layers=mapping.get("num_layers", 2), **kw).state_dict()
    stored = record.tensors()
    filters = [k for k in stored if k.endswith("_filter")]
    assert filters and all(k in ours for k in filters)
    for k in filters:
        assert torch.allclose(ours[k], stored[k].float(), atol=1e-7, rtol=0), k
    assert torch.equal(ours["synthesis.input.transform"], torch.eye(3))


def test_options_follow_nvlabs_configs():
    t, r = stylegan3_options(64, {}), stylegan3_options(64, {"cfg": "r"})
    assert (t["cfg"], t["channel_base"], t["channel_max"], t["mapping_layers"]) == ("t", 32768, 512, 2)
    assert (r["channel_base"], r["channel_max"]) == (65536, 1024)
    assert t["pl_weight"] == 0 and t["style_mixing"] == 0  # NVlabs' stylegan3 configs turn both off
    assert t["blur_sigma"] == 0 and r["blur_sigma"] == 10  # config R blurs D's inputs at first
    assert stylegan3_options(64, t) == t  # stored in checkpoints: passes through unchanged
    with pytest.raises(BadInput, match="cfg must be t or r"):
        stylegan3_options(64, {"cfg": "paper256"})


def test_discriminator_input_blur_fades_out():
    """Config R's blur of D's inputs: a normalised Gaussian (σ px, taps to 3σ) whose σ falls
    linearly from blur_sigma to 0 over blur_fade_kimg (default batch·200/32) thousand images."""
    from types import SimpleNamespace

    import torch

    from ganeval.models.stylegan2 import StyleGAN2Objective, gaussian_blur

    delta = torch.zeros(1, 3, 41, 41)
    delta[:, :, 20, 20] = 1
    out = gaussian_blur(delta, 2.0)
    x = torch.arange(-6, 7, dtype=torch.float32)
    g = torch.exp(-x.square() / 8)
    want = torch.outer(g, g) / g.sum() ** 2
    torch.testing.assert_close(out[0, 1, 14:27, 14:27], want)
    assert out.sum().item() == pytest.approx(3.0, abs=1e-5) and torch.equal(gaussian_blur(delta, 0.3), delta)
    objective = SimpleNamespace(o={"blur_sigma": 10.0, "blur_fade_kimg": None}, _images_per_step=lambda: 32)
    sigma = [StyleGAN2Objective.blur_sigma(objective, step) for step in (0, 3125, 6250, 10_000)]
    assert sigma == [10.0, 5.0, 0.0, 0.0]  # 200 thousand images at batch 32
    objective.o["blur_sigma"] = 0.0
    assert StyleGAN2Objective.blur_sigma(objective, 0) == 0.0


def _train(data, run, steps, *extra) -> int:
    return main(["train", "stylegan3", "--data", str(data), "--out", str(run), "--steps", str(steps), "--batch-size",
                 "4", "--resolution", "32", "--width", "8", "-O", "channel_base=256", "--z-dim", "8", "--device", "cpu",
                 "--num-workers", "0", "--log-every", "2", "--ckpt-every", "100", *extra])


@pytest.mark.slow
@pytest.mark.parametrize("cfg", ["t", "r"])
def test_training_resumes_exactly_and_samples(cfg, faces32_npz, tmp_path):
    a, _ = resume_matches_straight(functools.partial(_train, faces32_npz), "stylegan3", tmp_path, 4, 2, "--cfg", cfg)
    straight = tmp_path / "straight"
    mags = [v for k, v in a["G"].items() if k.endswith("magnitude_ema")]
    assert mags and any(float(m) != 1.0 for m in mags)  # tracked while training
    out = tmp_path / "s.npz"
    assert main(["sample", str(straight), "--seeds", "0-2", "-o", str(out), "--device", "cpu"]) == 0
    with np.load(out) as npz:
        assert npz["images"].shape == (3, 32, 32, 3)
    # exported for NVlabs' stylegan3 (tests/check_nvlabs_export.py renders it with their code),
    # read back as data with the run's pixels
    from ganeval.generators import load_generator

    pkl = tmp_path / "sg3.pkl"
    assert main(["export", str(straight), "--nvlabs", str(pkl)]) == 0
    ours = torch.cat(list(load_generator(straight, device="cpu").sample("0-3", truncation=0.7)))
    theirs = torch.cat(list(load_generator(pkl, device="cpu").sample("0-3", truncation=0.7)))
    assert (theirs.int() - ours.int()).abs().max() <= 1
    assert main(["export", str(straight), "--nvlabs", str(tmp_path / "x.pkl"), "--nvlabs-repo",
                 "stylegan2-ada-pytorch"]) == 2
    assert not (tmp_path / "x.pkl").exists()


def test_training_tracks_magnitudes_with_nvlabs_half_life(faces32_npz, tmp_path):
    from ganeval.models.registry import get_family
    from ganeval.models.trainer import Trainer, TrainConfig

    cfg = get_family("stylegan3").config(32, 3, z_dim=8, width=8, options={"channel_base": 256})
    trainer = Trainer(cfg, TrainConfig(data=str(faces32_npz), out=str(tmp_path / "run"), steps=1, batch_size=4,
                                       num_workers=0), "cpu")
    betas = {m.magnitude_ema_beta for m in trainer.G.modules() if hasattr(m, "magnitude_ema_beta")}
    assert betas == {0.5 ** (4 / 20_000)}
