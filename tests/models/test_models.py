"""The model zoo: shapes at every resolution, the registry, the checkpoint format, latents."""
from __future__ import annotations

import math
import pickle

import numpy as np
import pytest
import torch

from ganeval.cli.main import main
from ganeval.errors import BadInput
from ganeval.models.checkpoint import FORMAT, load_checkpoint, save_checkpoint
from ganeval.models.registry import FAMILIES, build_models, get_family
from ganeval.images import to_uint8_nhwc as to_uint8
from ganeval.models.sampling import interpolation_latents, slerp
from ganeval.sampler import latents_for_seeds
from ganeval.models.spec import ModelConfig
from ganeval.models.visualise import tile

EXPECTED = {"dcgan-seed", "dcgan", "wgan-gp", "resdcgan", "resdcgan-cycle"}


pytestmark = pytest.mark.usefixtures("one_torch_thread")


def _score(out):
    return out[0] if isinstance(out, tuple) else out


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_forward_shapes_at_every_resolution(name):
    family = get_family(name)
    assert family.resolutions == (32, 64, 128)
    for resolution in family.resolutions:
        for channels in family.channels:
            cfg = family.config(resolution, channels, width=4)
            G, D = build_models(cfg)
            G.train(), D.train()
            z = torch.randn(2, cfg.z_dim)
            x = G(z)
            assert x.shape == (2, channels, resolution, resolution)
            assert x.min() >= -1 and x.max() <= 1  # tanh output
            out = D(x)
            assert _score(out).shape == (2,)
            if name == "resdcgan-cycle":
                assert out[1].shape == (2, cfg.z_dim)  # the latent head predicts z
            else:
                assert isinstance(out, torch.Tensor)


def test_dcgan_matches_the_reference_architecture():
    # Radford et al. / PyTorch example at 64×64 with nz=100, ngf=ndf=64
    G, D = build_models(get_family("dcgan").config(64, 3))
    assert sum(p.numel() for p in G.parameters()) == 3_576_704
    assert sum(p.numel() for p in D.parameters()) == 2_765_568
    convs = [m for m in G.modules() if isinstance(m, torch.nn.ConvTranspose2d)]
    assert [m.out_channels for m in convs] == [512, 256, 128, 64, 3]


def test_dcgan_seed_is_dense_to_eighth_then_four_transposed_convs_and_two_convs():
    G, D = build_models(get_family("dcgan-seed").config(64, 1))
    assert isinstance(G.net[0], torch.nn.Linear) and G.net[0].out_features == 8 * 32 * 8 * 8  # dense → 8×8
    assert sum(isinstance(m, torch.nn.ConvTranspose2d) for m in G.modules()) == 4
    assert sum(isinstance(m, torch.nn.Conv2d) for m in D.modules()) == 2
    assert G(torch.randn(2, 100)).shape == (2, 1, 64, 64)


def test_family_settings_follow_the_papers():
    wgan = get_family("wgan-gp")
    assert (wgan.loss, wgan.gp_lambda, wgan.n_critic, wgan.betas, wgan.lr_d) == ("wgan-gp", 10.0, 5, (0.0, 0.9), 1e-4)
    assert not any(isinstance(m, torch.nn.BatchNorm2d) for m in build_models(wgan.config(32, 3, width=4))[1].modules())
    dcgan = get_family("dcgan")
    assert (dcgan.lr_g, dcgan.betas, dcgan.loss) == (2e-4, (0.5, 0.999), "nonsaturating")
    assert get_family("resdcgan-cycle").cycle_lambda == 0.1
    assert get_family("resdcgan").cycle_lambda == 0.0


def test_registry_rejects_bad_requests():
    with pytest.raises(BadInput, match="unknown model 'stylegan4'.*dcgan"):
        get_family("stylegan4")
    with pytest.raises(BadInput, match="cannot generate 48×48.*32, 64, 128"):
        get_family("dcgan").config(48)
    with pytest.raises(BadInput, match="channels"):
        get_family("dcgan").config(64, channels=2)
    with pytest.raises(BadInput, match="no latent-cycle head"):
        get_family("dcgan").config(64, cycle_lambda=0.5)
    with pytest.raises(BadInput, match="cannot generate 256"):
        build_models(ModelConfig("resdcgan", resolution=256))


def test_models_command_lists_every_family_on_one_line(capsys):
    assert main(["models"]) == 0
    lines = capsys.readouterr().out.strip().splitlines()
    assert {line.split()[0] for line in lines} == set(FAMILIES) >= EXPECTED  # later parts add families
    assert len(lines) == len(FAMILIES)
    assert main(["models", "--json"]) == 0
    assert "gp_lambda" in capsys.readouterr().out


# ---------------------------------------------------------------- checkpoints

def _tiny_checkpoint(path, model="dcgan"):
    cfg = get_family(model).config(32, 3, width=4)
    G, D = build_models(cfg)
    save_checkpoint(path, {"model": model, "config": {"model": cfg.to_dict(), "train": {}}, "step": 0,
                           "G": G.state_dict(), "D": D.state_dict(), "G_ema": G.state_dict()})
    return G


def test_checkpoint_round_trip_is_weights_only(tmp_path):
    G = _tiny_checkpoint(tmp_path / "checkpoint.pt")
    raw = torch.load(tmp_path / "checkpoint.pt", weights_only=True)
    assert raw["format"] == FORMAT and raw["version"] == 1
    data = load_checkpoint(tmp_path)  # a run folder works too
    assert torch.equal(data["G"]["net.0.0.weight"], G.state_dict()["net.0.0.weight"])


@pytest.mark.parametrize("kind", ["garbage", "truncated", "foreign-torch", "foreign-pickle", "future", "mismatch"])
def test_bad_checkpoints_are_one_line_errors(tmp_path, capsys, kind):
    path = tmp_path / "bad.pt"
    if kind == "garbage":
        path.write_bytes(b"\x00not a checkpoint" * 50)
    elif kind == "truncated":
        _tiny_checkpoint(path)
        path.write_bytes(path.read_bytes()[:300])
    elif kind == "foreign-torch":
        torch.save({"state_dict": {"w": torch.zeros(3)}}, path)
    elif kind == "foreign-pickle":
        path.write_bytes(pickle.dumps({"format": FORMAT, "obj": object}))
    elif kind == "future":
        torch.save({"format": FORMAT, "version": 99}, path)
    elif kind == "mismatch":  # weights of another width than the config says
        _tiny_checkpoint(path)
        data = torch.load(path, weights_only=True)
        data["config"]["model"]["width"] = 8
        torch.save(data, path)
    code = main(["sample", str(path), "-n", "2", "-o", str(tmp_path / "out")])
    err = capsys.readouterr().err.strip()
    assert code == 2
    assert len(err.splitlines()) == 1 and str(path) in err
    assert "Traceback" not in err
    assert not (tmp_path / "out").exists()


def test_missing_checkpoint(tmp_path, capsys):
    assert main(["sample", str(tmp_path / "nope.pt"), "-n", "1", "-o", str(tmp_path / "o")]) == 2
    assert "no such checkpoint" in capsys.readouterr().err


# ---------------------------------------------------------------- latents and pictures

def test_the_latent_of_a_seed_is_numpys_as_nvlabs_draws_it():
    whole = latents_for_seeds(range(3, 40), 16)
    assert torch.equal(whole[5], torch.from_numpy(np.random.RandomState(8).randn(1, 16)).float()[0])
    assert torch.equal(latents_for_seeds([8], 16)[0], whole[5])  # alone or among others: the same
    assert not torch.equal(whole[0], whole[1])


def test_slerp_follows_the_great_circle():
    z0, z1 = torch.randn(64, generator=torch.Generator().manual_seed(0)), torch.randn(64, generator=torch.Generator().manual_seed(1))
    assert torch.allclose(slerp(z0, z1, 0.0), z0, atol=1e-5)
    assert torch.allclose(slerp(z0, z1, 1.0), z1, atol=1e-5)
    # for equal-norm ends the path turns at constant speed and stays on their sphere
    # (a straight line cuts inside it)
    u, v = z0 / z0.norm() * 8, z1 / z1.norm() * 8
    angle = lambda a, b: math.acos(float(torch.dot(a, b) / (a.norm() * b.norm())))  # noqa: E731
    for t in (0.25, 0.5):
        assert angle(u, slerp(u, v, t)) == pytest.approx(t * angle(u, v), abs=1e-4)
    assert float(slerp(u, v, 0.3).norm()) == pytest.approx(8, rel=1e-4)
    assert float(((1 - 0.3) * u + 0.3 * v).norm()) < 7.9
    assert torch.allclose(slerp(z0, z0 * 2, 0.5), z0 * 1.5)  # parallel: linear


def test_interpolation_path_loops_through_the_seeds():
    z = interpolation_latents([1, 2, 3], 8, frames_per_pair=4)
    assert z.shape == (12, 8)
    for i, s in enumerate([1, 2, 3]):
        assert torch.allclose(z[4 * i], latents_for_seeds([s], 8)[0], atol=1e-6)
    open_path = interpolation_latents([1, 2], 8, frames_per_pair=4, loop=False)
    assert open_path.shape == (5, 8) and torch.allclose(open_path[-1], latents_for_seeds([2], 8)[0], atol=1e-6)
    with pytest.raises(BadInput, match="at least two"):
        interpolation_latents([1], 8, 4)


def test_to_uint8_maps_the_tanh_range_and_repeats_gray():
    x = torch.tensor([-1.0, -0.5, 0.0, 1.0, 1.5]).view(1, 1, 1, 5)
    out = to_uint8(x)
    assert out.shape == (1, 1, 5, 3) and out.dtype == torch.uint8
    assert out[0, 0, :, 0].tolist() == [0, 64, 128, 255, 255]
    assert torch.equal(out[..., 0], out[..., 2])


def test_tile_places_images_in_rows():
    imgs = np.stack([np.full((2, 3, 3), i, np.uint8) for i in range(5)])
    grid = tile(imgs, columns=2, pad=1, fill=200)
    assert grid.shape == (3 * 3 + 1, 2 * 4 + 1, 3)
    assert grid[1, 1, 0] == 0 and grid[1, 5, 0] == 1 and grid[4, 1, 0] == 2 and grid[7, 1, 0] == 4
    assert grid[7, 5, 0] == 200 and grid[0, 0, 0] == 200
