"""StyleGAN2-ADA's defaults are NVlabs' --cfg presets (stylegan2-ada-pytorch train.py), by name;
every value given explicitly wins over the preset."""
from __future__ import annotations

import pytest

from ganeval.errors import BadInput
from ganeval.models.stylegan2 import STYLEGAN2, StyleGAN2Objective, stylegan2_options

# NVlabs' table (train.py cfg_specs), written out: fmaps·32768, lr, γ, ema kimg, ramp-up, mapping layers, mbstd
NVLABS = {
    "stylegan2": (32768, 0.002, 10.0, 10.0, 0.0, 8, 4),
    "paper256": (16384, 0.0025, 1.0, 20.0, 0.0, 8, 8),
    "paper512": (32768, 0.0025, 0.5, 20.0, 0.0, 8, 8),
    "paper1024": (65536, 0.002, 2.0, 10.0, 0.0, 8, 4),
}
KEYS = ("channel_base", "lr", "r1_gamma", "ema_kimg", "ema_rampup", "mapping_layers", "mbstd_group")


@pytest.mark.parametrize("cfg", sorted(NVLABS))
def test_named_presets_equal_nvlabs_table(cfg):
    o = stylegan2_options(256, {"cfg": cfg})
    assert tuple(o[k] for k in KEYS) == NVLABS[cfg]
    assert o["pl_weight"] == 2.0 and o["style_mixing"] == 0.9 and o["conv_clamp"] == 256.0


@pytest.mark.parametrize("res,base,lr", [(64, 16384, 0.0025), (256, 16384, 0.0025), (512, 32768, 0.0025)])
def test_auto_follows_the_resolution(res, base, lr):
    o = stylegan2_options(res, {})
    assert (o["cfg"], o["channel_base"], o["lr"], o["mapping_layers"], o["ema_rampup"]) == ("auto", base, lr, 2, 0.05)
    assert o["r1_gamma"] is None and o["ema_kimg"] is None  # from the batch when training starts


def test_explicit_values_win_and_bad_presets_are_refused():
    o = stylegan2_options(64, {"cfg": "paper256", "lr": 0.001, "pl_weight": 0})
    assert o["lr"] == 0.001 and o["pl_weight"] == 0.0 and o["r1_gamma"] == 1.0
    with pytest.raises(BadInput, match="cfg must be one of auto, stylegan2"):
        stylegan2_options(64, {"cfg": "paper9000"})


def test_auto_ema_half_life_follows_the_batch():
    o = stylegan2_options(64, {})
    assert STYLEGAN2.betas == (0.0, 0.99)
    # half-life batch·10/32 kimg: at batch 64 and far into training, β = 0.5^(64 / 20000)
    obj = StyleGAN2Objective.__new__(StyleGAN2Objective)
    obj.o = o
    obj._images_per_step = lambda: 64
    assert obj.ema_decay(10**9) == pytest.approx(0.5 ** (64 / 20_000))
