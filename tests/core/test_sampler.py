"""The one sampler: z per seed as NVlabs draws it, the same image whatever the batch size or the
command, and one-line errors for what a generator or its caller gets wrong."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

import ganeval
from ganeval.api import generator_side
from ganeval.cli.main import main
from ganeval.errors import BadInput
from ganeval.generators import load_generator
from ganeval.nearest.api import sample_generator
from ganeval.sampler import latents_for_seeds, parse_seeds, seed_list

PKL = Path(__file__).resolve().parents[1] / "data" / "nvlabs" / "sg2_64.pkl"


def _net() -> torch.nn.Module:
    torch.manual_seed(0)
    return torch.nn.Sequential(torch.nn.Linear(8, 3 * 8 * 8), torch.nn.Tanh(), torch.nn.Unflatten(1, (3, 8, 8)))


def test_seed_lists_read_like_gen_images():
    assert parse_seeds("0-3,10") == [0, 1, 2, 3, 10]
    assert parse_seeds(" 5 ") == [5] and parse_seeds([2, 1]) == [2, 1]
    assert seed_list(n=3, seed=7) == [7, 8, 9]
    for bad, message in (("3-1", "runs backwards"), ("a", "not a seed"), ("", "not a seed"), ("-1", "not a seed")):
        with pytest.raises(BadInput, match=message):
            parse_seeds(bad)
    with pytest.raises(BadInput, match="say which images"):
        seed_list()


def test_latents_are_numpys_randomstate_per_seed():
    z = latents_for_seeds([4, 0], 6)
    assert z.dtype == torch.float32
    assert torch.equal(z[0], torch.from_numpy(np.random.RandomState(4).randn(1, 6)).float()[0])
    assert torch.equal(z[1], latents_for_seeds([0], 6)[0])


@pytest.mark.parametrize("source", ["callable", "pickle"])
def test_every_path_gives_the_same_images_for_any_batch_size(source, tmp_path):
    """sample (API and command), fid's generator side and nearest's generator side, batch sizes
    7, 50 and 64: image by image identical."""
    n, seed = 70, 3
    if source == "callable":
        G, z_dim, argv_gen = _net(), 8, None
    else:
        G, z_dim, argv_gen = str(PKL), None, str(PKL)
    reference = ganeval.sample(G, n=n, seed=seed, batch_size=1, device="cpu", z_dim=z_dim).numpy()
    assert reference.shape[0] == n
    for batch in (7, 50, 64):
        gen = load_generator(G, z_dim=z_dim, device="cpu")
        api = torch.cat(list(gen.sample(n=n, seed=seed, batch_size=batch))).numpy()
        fid_side = torch.cat(list(generator_side(gen, range(seed, seed + n), batch).make())).numpy()
        nearest_side = sample_generator(G, n, z_dim, batch_size=batch, seed=seed, device="cpu")
        for got in (api, fid_side, nearest_side):
            assert np.array_equal(got, reference)
        if argv_gen:
            out = tmp_path / f"s{batch}.npz"
            assert main(["sample", argv_gen, "-n", str(n), "--seed", str(seed), "--batch-size", str(batch),
                         "-o", str(out), "--device", "cpu"]) == 0
            with np.load(out) as npz:
                assert np.array_equal(npz["images"], reference)
    shard = torch.cat(list(generator_side(load_generator(G, z_dim=z_dim), range(seed, seed + n), 7)
                           .make_share(20, 30))).numpy()
    assert np.array_equal(shard, reference[20:50])  # a torchrun rank's share: the same pixels


def test_random_noise_depends_on_the_seed_alone():
    G = load_generator(PKL, device="cpu")
    a = torch.cat(list(G.sample("0-9", noise_mode="random", batch_size=3)))
    b = torch.cat(list(G.sample("5-9", noise_mode="random", batch_size=5)))
    assert torch.equal(a[5:], b)
    assert not torch.equal(a, torch.cat(list(G.sample("0-9", noise_mode="const"))))
    none = torch.cat(list(G.sample("0-1", noise_mode="none")))
    assert none.shape == (2, 64, 64, 3)


def test_bad_generators_and_arguments_are_one_line_errors(inception_weights):
    G = load_generator(_net(), z_dim=8)
    with pytest.raises(BadInput, match="batch_size must be a positive integer"):
        next(G.sample(n=2, batch_size=0))
    with pytest.raises(BadInput, match="does not take z of size 5"):
        next(load_generator(_net(), z_dim=5).sample(n=2))
    with pytest.raises(BadInput, match="needs its latent size"):
        load_generator(lambda z: z)

    def nan_generator(z):
        return torch.full((len(z), 3, 4, 4), float("nan"))

    with pytest.raises(BadInput, match="nan_generator returned NaN or Inf for seed 0"):
        next(load_generator(nan_generator, z_dim=4).sample(n=2, batch_size=2))
    with pytest.raises(BadInput, match="NaN or Inf"):
        ganeval.compute_fid(np.zeros((4, 8, 8, 3), np.uint8), nan_generator, z_dim=4, n=4, device="cpu",
                            weights=inception_weights)
    with pytest.raises(BadInput, match="--truncation needs a style-based generator"):
        next(G.sample(n=1, truncation=0.5))
    with pytest.raises(BadInput, match="--noise-mode must be one of"):
        next(load_generator(PKL).sample(n=1, noise_mode="fresh"))
    with pytest.raises(BadInput, match="unconditional: --class does not apply"):
        next(G.sample(n=1, class_idx=0))


def test_torchscript_and_user_code_generators(tmp_path, monkeypatch, capsys):
    net = _net()
    scripted = torch.jit.script(net)
    path = tmp_path / "g.pt"
    scripted.save(str(path))
    reference = ganeval.sample(net, n=4, z_dim=8).numpy()
    assert np.array_equal(ganeval.sample(str(path), n=4, z_dim=8).numpy(), reference)
    with pytest.raises(BadInput, match="needs its latent size"):
        load_generator(path)
    (tmp_path / "mygen.py").write_text(
        "import torch\n"
        "def build():\n"
        "    torch.manual_seed(0)\n"
        "    return torch.nn.Sequential(torch.nn.Linear(8, 3 * 8 * 8), torch.nn.Tanh(), torch.nn.Unflatten(1, (3, 8, 8)))\n")
    monkeypatch.chdir(tmp_path)
    assert np.array_equal(ganeval.sample("mygen:build", n=4, z_dim=8).numpy(), reference)
    out = tmp_path / "mine.npz"
    assert main(["sample", "mygen:build", "--z-dim", "8", "-n", "4", "-o", str(out), "--device", "cpu"]) == 0
    with np.load(out) as npz:
        assert np.array_equal(npz["images"], reference)
    assert main(["sample", "mygen:nothing", "--z-dim", "8", "-n", "4", "-o", str(tmp_path / "x.npz")]) == 2
    assert "mygen:nothing" in capsys.readouterr().err


def test_the_flat_api_lists_its_names():
    for name in ("compute_fid", "compute_metrics", "find_nearest", "load_generator", "sample"):
        assert name in dir(ganeval) and name in ganeval.__all__
        assert callable(getattr(ganeval, name))
    for name in ("MetricsResult", "NearestResult", "FeatureSet", "Generator"):
        assert name in dir(ganeval) and isinstance(getattr(ganeval, name), type)
