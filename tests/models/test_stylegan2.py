"""StyleGAN2-ADA: presets, truncation, the training step through the real trainer, exact
resume, and the sampling tools (truncation, style mixing, interpolation in W)."""
from __future__ import annotations

import csv
import functools
import math

import numpy as np
import pytest
import torch
from PIL import Image

from ganeval.cli.main import main
from ganeval.errors import BadInput
from ganeval.models.checkpoint import load_checkpoint, load_generator
from ganeval.models.registry import build_models, get_family
from ganeval.models.sampling import render_ws, seed_ws, style_mix_grid
from tests.draw import draw
from tests.models.runs import resume_matches_straight
from ganeval.models.stylegan2 import (RESOLUTIONS, MinibatchStd, channels_at, modulated_conv2d,
                                     r1_gamma_auto, stylegan2_options)
from ganeval.models.trainer import Trainer, TrainConfig

pytestmark = pytest.mark.usefixtures("one_torch_thread")

FAMILY = get_family("stylegan2")
SMALL = ("--res", "32", "--width", "8", "--z-dim", "16", "--batch-size", "4")


def _train(data, run, steps, *extra) -> int:
    return main(["train", "stylegan2", "--data", str(data), "--out", str(run), "--steps", str(steps), *SMALL,
                 "--device", "cpu", "--num-workers", "0", "--log-every", "2", "--ckpt-every", "100", *extra])


@pytest.fixture(scope="module")
def trained(faces32_npz, tmp_path_factory):
    run = tmp_path_factory.mktemp("sg2run") / "run"
    assert _train(faces32_npz, run, 4) == 0
    return run


# ---------------------------------------------------------------- architecture

@pytest.mark.parametrize("res", RESOLUTIONS)
def test_every_preset_builds_with_the_paper_layout(res):
    cfg = FAMILY.config(res, 3)
    base = 32768 if res >= 512 else 16384  # NVlabs' --cfg auto: fmaps 1 from 512 px, else 0.5
    assert cfg.options["channel_base"] == base and cfg.options["mapping_layers"] == 2
    G, D = build_models(cfg)
    n = int(math.log2(res))
    assert G.num_ws == 2 * n - 2  # one w per conv (2 per resolution, 1 at 4×4) + the last toRGB
    assert len(G.mapping.net) == 2 and G.mapping.net[0].lr_mul == 0.01
    assert G.mapping.w_avg.shape == (512,)
    blocks = list(G.synthesis.blocks.values())
    assert [b.conv1.weight.shape[0] for b in blocks] == [channels_at(4 * 2**i, base, 512) for i in range(n - 1)]
    assert blocks[-1].torgb.weight.shape == (3, channels_at(res, base, 512), 1, 1)
    assert blocks[-1].conv0.noise_const.shape == (res, res)
    assert len(D.blocks) == n - 2 and D.from_rgb.weight.shape[1] == 3
    assert D.conv.weight.shape[1] == D.conv.weight.shape[0] + 1  # + the minibatch-stddev channel
    if res <= 64:  # the full-width forward pass is cheap enough for the small presets only
        G.eval()
        x = G(torch.randn(1, 512))
        assert x.shape == (1, 3, res, res) and torch.isfinite(x).all()
        assert D(torch.randn(2, 3, res, res)).shape == (2,)


@pytest.mark.parametrize("res", RESOLUTIONS)
@pytest.mark.parametrize("channels", [1, 3])
def test_forward_shapes_at_every_resolution_narrow(res, channels):
    G, D = build_models(FAMILY.config(res, channels, z_dim=8, width=4))
    x = G(torch.randn(2, 8))
    assert x.shape == (2, channels, res, res)
    assert D(x).shape == (2,)


def test_fused_and_batched_modulated_convolutions_agree():
    gen = torch.Generator().manual_seed(0)
    x, weight, styles = torch.randn(3, 5, 8, 8, generator=gen), torch.randn(7, 5, 3, 3, generator=gen), torch.randn(3, 5, generator=gen)
    for demod in (True, False):
        for up in (False, True):
            fused = modulated_conv2d(x, weight, styles, demod, fused=True, up=up)
            batched = modulated_conv2d(x, weight, styles, demod, fused=False, up=up)
            assert fused.shape == (3, 7, 16 if up else 8, 16 if up else 8)
            torch.testing.assert_close(fused, batched, rtol=1e-4, atol=1e-5)
    # demodulated outputs have unit expected variance for unit-variance inputs
    big = modulated_conv2d(torch.randn(4, 64, 16, 16, generator=gen), torch.randn(32, 64, 3, 3, generator=gen),
                           torch.randn(4, 64, generator=gen), True, fused=False)
    assert 0.8 < big[:, :, 1:-1, 1:-1].std() < 1.2


def test_minibatch_stddev_handles_any_batch_size():
    layer = MinibatchStd(4)
    for n in (1, 3, 4, 6, 8):
        x = torch.randn(n, 5, 4, 4)
        out = layer(x)
        assert out.shape == (n, 6, 4, 4) and torch.isfinite(out).all()
    x = torch.randn(4, 2, 4, 4)
    expected = x.std(dim=0, unbiased=False).mean()
    assert torch.allclose(layer(x)[0, -1, 0, 0], expected, atol=1e-4)


def test_truncation_zero_gives_the_image_of_w_avg():
    G, _ = build_models(FAMILY.config(32, 3, z_dim=16, width=8))
    with torch.no_grad():
        for _ in range(3):
            G(torch.randn(8, 16))  # training-mode forwards move w_avg away from 0
    assert G.mapping.w_avg.abs().sum() > 0
    G.eval()
    z = torch.randn(5, 16)
    out = G(z, truncation_psi=0.0)
    avg = G.synthesis(G.broadcast(G.mapping.w_avg[None]), "const")
    for img in out:
        torch.testing.assert_close(img, avg[0], rtol=1e-5, atol=1e-5)
    assert not torch.allclose(G(z)[0], G(z)[1])  # without truncation the samples differ
    w = G.mapping(z)
    torch.testing.assert_close(G.mapping(z, 0.5), G.mapping.w_avg + 0.5 * (w - G.mapping.w_avg))
    w_before = G.mapping.w_avg.clone()
    G(z)
    assert torch.equal(w_before, G.mapping.w_avg)  # eval forwards leave the average alone


def test_options_are_checked():
    opts = stylegan2_options(64, {"pl_weight": 2, "ada": "false"})
    assert opts["pl_weight"] == 2.0 and opts["ada"] is False and opts["r1_gamma"] is None  # auto, from the batch
    assert r1_gamma_auto(64, 32) == pytest.approx(0.0256)
    assert stylegan2_options(64, opts) == opts  # idempotent: checkpoints re-validate
    with pytest.raises(BadInput, match="no option warp"):
        stylegan2_options(64, {"warp": 1})
    with pytest.raises(BadInput, match="style_mixing is a probability"):
        stylegan2_options(64, {"style_mixing": 2})
    with pytest.raises(BadInput, match="mapping_layers must be int"):
        stylegan2_options(64, {"mapping_layers": 1.5})
    with pytest.raises(BadInput, match="takes no family options"):
        get_family("dcgan").config(64, options={"pl_weight": 1})


# ---------------------------------------------------------------- training

@pytest.mark.slow
def test_twenty_cpu_steps_with_every_regulariser(faces32_npz, tmp_path):
    cfg = FAMILY.config(32, 3, z_dim=16, width=8, options={"pl_weight": 2.0, "r1_interval": 4, "ada_kimg": 0.1,
                                                            "ada_interval": 2, "ada_p": 0.2})
    train = TrainConfig(data=str(faces32_npz), out=str(tmp_path / "run"), steps=20, batch_size=4, log_every=5,
                        sample_every=10**6, ckpt_every=10**6)
    trainer = Trainer(cfg, train, "cpu")
    g0 = {k: v.clone() for k, v in trainer.G.state_dict().items()}
    stats = torch.stack([trainer.train_step() for _ in range(20)])
    assert torch.isfinite(stats).all(), stats
    names = trainer.objective.stats
    assert (stats[:, names.index("r1")] > 0).all() and (stats[:, names.index("pl")] > 0).all()
    assert float(trainer.objective.pl_mean) > 0
    changed = [k for k, v in trainer.G.state_dict().items() if k.endswith("weight") and not torch.equal(v, g0[k])]
    assert len(changed) == sum(k.endswith("weight") for k in g0)
    p = trainer.objective.gauges()["ada_p"]
    assert p != 0.2 and 0 <= p <= 1  # the controller moved p (by 8 images × 2 steps / 100 per adjustment)
    # EMA: full copy at step 0, then a half-life ramping up with the images seen
    assert trainer.objective.ema_decay(trainer.step) == pytest.approx(0.5 ** (4 / (20 * 4 * 0.05)))


@pytest.mark.slow
def test_resume_is_exact_with_ada_and_lazy_regularisers(faces32_npz, tmp_path):
    extra = ("--pl-weight", "1", "-O", "r1_interval=3", "-O", "pl_interval=2", "-O", "ada_kimg=0.05",
             "-O", "ada_interval=1", "-O", "ada_p=0.3")
    a, b = resume_matches_straight(functools.partial(_train, faces32_npz), "stylegan2", tmp_path, 6, 4, *extra)
    split, straight = tmp_path / "split", tmp_path / "straight"
    assert a["objective"]["ada"]["p"] == b["objective"]["ada"]["p"]
    assert torch.equal(a["objective"]["pl_mean"], b["objective"]["pl_mean"])
    rows = list(csv.DictReader(open(split / "metrics.csv")))
    straight_rows = list(csv.DictReader(open(straight / "metrics.csv")))
    assert [r["loss_d"] for r in rows] == [r["loss_d"] for r in straight_rows]
    assert [r["ada_p"] for r in rows] == [r["ada_p"] for r in straight_rows]
    assert {"ada_p", "ada_rt", "r1", "pl"} <= set(rows[0])
    assert len({r["ada_p"] for r in rows}) > 1  # p moved during the run


def test_options_cannot_change_on_resume_and_bad_options_are_one_line(trained, faces32_npz, tmp_path, capsys):
    assert main(["train", "stylegan2", "--out", str(trained), "--resume", "--steps", "9", "--pl-weight", "3"]) == 2
    assert "cannot change on resume" in capsys.readouterr().err
    for argv, message in [(["-O", "warp=1"], "no option warp"), (["-O", "nokey"], "KEY=VALUE"),
                          (["--r1-gamma", "-1"], "0 or more")]:
        assert _train(faces32_npz, tmp_path / "x", 2, *argv) == 2
        err = capsys.readouterr().err.strip()
        assert message in err and len(err.splitlines()) == 1, err
    assert main(["train", "dcgan", "--data", str(faces32_npz), "--out", str(tmp_path / "d"), "--pl-weight", "2"]) == 2
    assert "dcgan takes no family options" in capsys.readouterr().err


# ---------------------------------------------------------------- sampling tools

def test_sample_with_truncation(trained, tmp_path, capsys):
    ckpt = trained / "checkpoint.pt"  # the stored noise, so ψ = 0 leaves no per-image variation
    full = torch.cat(list(draw(ckpt, 4, 4, seed=1, device="cpu", noise_mode="const")))
    half = torch.cat(list(draw(ckpt, 4, 4, seed=1, device="cpu", truncation=0.5, noise_mode="const")))
    zero = torch.cat(list(draw(ckpt, 4, 4, seed=1, device="cpu", truncation=0.0, noise_mode="const")))
    assert not torch.equal(full, half)
    assert all(torch.equal(zero[0], img) for img in zero)  # ψ = 0: every sample is the average face
    one = torch.cat(list(draw(ckpt, 4, 4, seed=1, device="cpu", truncation=1.0, noise_mode="const")))
    assert torch.equal(one, full)
    assert main(["sample", str(trained), "-n", "3", "-o", str(tmp_path / "t.npz"), "--truncation", "0.5",
                 "--seed", "1", "--device", "cpu", "--batch-size", "4"]) == 0
    with np.load(tmp_path / "t.npz") as npz:  # `sample` uses the stored noise by default
        assert np.array_equal(npz["images"], half[:3].numpy())


def test_truncation_and_w_space_are_refused_for_other_families(faces32_npz, tmp_path, capsys):
    run = tmp_path / "dcgan"
    assert main(["train", "dcgan", "--data", str(faces32_npz), "--out", str(run), "--steps", "1", "--batch-size", "4",
                 "--resolution", "32", "--width", "4", "--device", "cpu", "--num-workers", "0"]) == 0
    capsys.readouterr()
    for argv in (["sample", str(run), "-n", "2", "-o", str(tmp_path / "s"), "--truncation", "0.7"],
                 ["interpolate", str(run), "--seeds", "1,2", "-o", str(tmp_path / "w.gif"), "--space", "w"],
                 ["style-mix", str(run), "--rows", "1", "--cols", "2", "-o", str(tmp_path / "m.png")]):
        assert main(argv + ["--device", "cpu"]) == 2
        err = capsys.readouterr().err.strip()
        assert "mapping network (stylegan2); dcgan has none" in err and len(err.splitlines()) == 1, err


def test_style_mix_command_writes_the_grid(trained, tmp_path):
    out = tmp_path / "mix.png"
    assert main(["style-mix", str(trained), "--rows", "1,2,3", "--cols", "4,5", "--styles", "2-7", "-o", str(out),
                 "--device", "cpu"]) == 0
    grid = np.asarray(Image.open(out).convert("RGB"))
    assert grid.shape == (4 * 34 + 2, 3 * 34 + 2, 3)  # (rows + 1) × (cols + 1) cells of 32 px, 2 px gaps
    G, _ = load_generator(trained, "cpu")
    cells = style_mix_grid(G, [1, 2, 3], [4, 5], list(range(2, 8))).numpy()
    cell = lambda r, c: grid[2 + r * 34:2 + r * 34 + 32, 2 + c * 34:2 + c * 34 + 32]  # noqa: E731
    assert (cell(0, 0) == 255).all()
    assert np.array_equal(cell(0, 1), render_ws(G, seed_ws(G, [4]))[0].numpy())  # column seed 4 on top
    assert np.array_equal(cell(2, 0), render_ws(G, seed_ws(G, [2]))[0].numpy())  # row seed 2 on the left
    assert np.array_equal(cell(3, 2), cells[3 * 3 + 2])
    # the mix takes layers 2-7 from the column: equal to rendering that layer stack directly
    w_row, w_col = seed_ws(G, [3])[0], seed_ws(G, [5])[0]
    ws = torch.stack([w_row] * 2 + [w_col] * 6)[None]
    assert np.array_equal(cell(3, 2), render_ws(G, ws)[0].numpy())
    # sample seed s, image 0 == the W-space render of seed s
    first = next(draw(trained, 1, 1, seed=4, device="cpu", noise_mode="const"))[0].numpy()
    assert np.abs(first.astype(int) - cell(0, 1).astype(int)).max() <= 1
    assert main(["style-mix", str(trained), "--rows", "1", "--cols", "2", "--styles", "0-99", "-o", str(out),
                 "--device", "cpu"]) == 2


def test_interpolation_in_w(trained, tmp_path):
    out = tmp_path / "w.gif"
    assert main(["interpolate", str(trained), "--seeds", "1,2,3", "--space", "w", "--frames", "4", "-o", str(out),
                 "--device", "cpu"]) == 0
    assert Image.open(out).n_frames == 12
    G, _ = load_generator(trained, "cpu")
    from ganeval.models.sampling import w_interpolation

    ws = w_interpolation(G, [1, 2], 4, loop=False)
    w1, w2 = seed_ws(G, [1, 2])
    assert len(ws) == 5 and torch.equal(ws[0], w1) and torch.equal(ws[-1], w2)
    torch.testing.assert_close(ws[2], (w1 + w2) / 2)


DDP_WORKER = """
import sys
import torch, torch.distributed as dist
from ganeval.distributed import setup, teardown
from ganeval.models.registry import get_family
from ganeval.models.trainer import Trainer, TrainConfig

data, out, report = sys.argv[1:4]
world, device = setup("cpu")
cfg = get_family("stylegan2").config(32, 3, z_dim=16, width=4,
                                     options={"pl_weight": 1.0, "ada_kimg": 0.01, "ada_interval": 1})
t = Trainer(cfg, TrainConfig(data=data, out=out, steps=3, batch_size=4), device, world)
for _ in range(3):
    t.train_step()
flat = torch.cat([p.detach().flatten() for p in list(t.G.parameters()) + list(t.D.parameters())])
weights = [torch.zeros_like(flat) for _ in range(world.size)]
dist.all_gather(weights, flat)
p = [torch.zeros(1) for _ in range(world.size)]
dist.all_gather(p, torch.tensor([float(t.objective.augment.p)]))
w_avg = [torch.zeros_like(t.G.mapping.w_avg) for _ in range(world.size)]
dist.all_gather(w_avg, t.G.mapping.w_avg)
if world.is_main:
    open(report, "w").write(f"{all(torch.equal(weights[0], w) for w in weights)} {len({float(x) for x in p})} "
                            f"{all(torch.equal(w_avg[0], w) for w in w_avg) and bool(w_avg[0].abs().sum() > 0)}")
teardown()
"""


@pytest.mark.slow
def test_two_process_ddp_keeps_weights_and_ada_in_sync(faces32_npz, tmp_path):
    """R1 and path length need double backward, so the objective all-reduces gradients itself;
    w_avg follows the mean w over all processes, so it is the same on every rank."""
    import os
    import subprocess
    import sys
    from pathlib import Path

    root = Path(__file__).resolve().parents[2]
    script, report = tmp_path / "worker.py", tmp_path / "report.txt"
    script.write_text(DDP_WORKER)
    env = {**os.environ, "OMP_NUM_THREADS": "1", "GANEVAL_QUIET": "1", "PYTHONPATH": str(root)}
    def launch() -> subprocess.CompletedProcess:
        return subprocess.run([sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2",
                               str(script), str(faces32_npz), str(tmp_path / "run"), str(report)],
                              cwd=root, env=env, capture_output=True, text=True, timeout=300)

    proc = launch()
    if proc.returncode != 0 and "terminate called without an active exception" in proc.stderr:
        # seen once in ~20 runs on a loaded 2-core machine: a gloo rank aborting at interpreter exit,
        # after the barrier and destroy_process_group (the work itself was done); one retry
        report.unlink(missing_ok=True)
        proc = launch()
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert report.read_text() == "True 1 True"  # identical weights, one p and one w_avg on both processes


# ---------------------------------------------------------------- as the reference does it (issue 15)

def _tiny_trainer(faces32_npz, tmp_path, batch_size=4, **options):
    cfg = FAMILY.config(32, 3, z_dim=16, width=4, options=options)
    train = TrainConfig(data=str(faces32_npz), out=str(tmp_path / "run"), steps=3, batch_size=batch_size,
                        sample_every=10**6, ckpt_every=10**6)
    return Trainer(cfg, train, "cpu")


def test_ema_copies_buffers_so_w_avg_is_the_generators(faces32_npz, tmp_path):
    t = _tiny_trainer(faces32_npz, tmp_path, r1_interval=0, ada=False)
    for _ in range(3):
        t.train_step()
        assert torch.equal(t.G_ema.mapping.w_avg, t.G.mapping.w_avg)  # copied, not blended
    assert t.G.mapping.w_avg.abs().sum() > 0
    # the weights are still an average, not a copy (decay > 0 after the first step)
    assert not torch.equal(t.G_ema.mapping.net[0].weight, t.G.mapping.net[0].weight)


def test_r1_gamma_follows_the_auto_rule_of_resolution_and_batch(faces32_npz, tmp_path):
    four = _tiny_trainer(faces32_npz, tmp_path / "a", batch_size=4).objective.r1_gamma
    eight = _tiny_trainer(faces32_npz, tmp_path / "b", batch_size=8).objective.r1_gamma
    assert four == pytest.approx(0.0002 * 32 * 32 / 4) and eight == pytest.approx(four / 2)
    fixed = _tiny_trainer(faces32_npz, tmp_path / "c", batch_size=8, r1_gamma=0.5).objective.r1_gamma
    assert fixed == 0.5  # -O r1_gamma= overrides the rule
    assert _train(faces32_npz, tmp_path / "cli", 1, "-O", "r1_gamma=0.25") == 0
    assert load_checkpoint(tmp_path / "cli")["config"]["model"]["options"]["r1_gamma"] == 0.25


@pytest.fixture(scope="module")
def noisy_checkpoint(trained, tmp_path_factory):
    """The trained run with a strong noise strength in G_ema, so noise modes visibly differ."""
    from ganeval.models.checkpoint import save_checkpoint

    data = load_checkpoint(trained)
    data.pop("path")
    for key in data["G_ema"]:
        if key.endswith("noise_strength"):
            data["G_ema"][key] = torch.tensor(0.5)
    path = tmp_path_factory.mktemp("noisy") / "checkpoint.pt"
    save_checkpoint(path, {k: v for k, v in data.items() if k not in ("format", "version")})
    return path


def test_metric_sampling_uses_random_noise_and_sample_keeps_const(noisy_checkpoint, tmp_path):
    def images(**kw):
        return torch.cat(list(draw(noisy_checkpoint, 6, 3, seed=2, device="cpu", **kw)))

    random, const = images(noise_mode="random"), images(noise_mode="const")
    assert torch.equal(images(noise_mode="random"), random)  # seeded: the same pixels again
    assert not torch.equal(random, const)
    # an image's noise depends on its seed only: a shard drawing images 3-5 gets their noise, and
    # another batch size gives the same pixels
    share = torch.cat(list(draw(noisy_checkpoint, 3, 3, seed=2, device="cpu", start=3)))
    assert torch.equal(share, random[3:])
    other = torch.cat(list(draw(noisy_checkpoint, 6, 4, seed=2, device="cpu")))
    assert torch.equal(other, random)
    assert main(["sample", str(noisy_checkpoint), "-n", "6", "-o", str(tmp_path / "c.npz"), "--seed", "2",
                 "--batch-size", "3", "--device", "cpu"]) == 0
    assert main(["sample", str(noisy_checkpoint), "-n", "6", "-o", str(tmp_path / "r.npz"), "--seed", "2",
                 "--batch-size", "3", "--device", "cpu", "--noise-mode", "random"]) == 0
    with np.load(tmp_path / "c.npz") as c, np.load(tmp_path / "r.npz") as r:
        assert np.array_equal(c["images"], const.numpy()) and np.array_equal(r["images"], random.numpy())


@pytest.mark.slow
def test_fid_generator_samples_with_random_noise(noisy_checkpoint, faces32_npz, tmp_path, capsys, inception_weights):
    import json

    common = ["--json", "--num-workers", "0", "--device", "cpu", "--weights", inception_weights, "--batch-size", "4"]
    for mode in ("const", "random"):
        assert main(["sample", str(noisy_checkpoint), "-n", "8", "-o", str(tmp_path / f"{mode}.npz"), "--seed", "0",
                     "--batch-size", "4", "--device", "cpu", "--noise-mode", mode]) == 0
    capsys.readouterr()

    def fid(*args) -> float:
        assert main(["fid", str(faces32_npz), *map(str, args), *common]) == 0
        return json.loads(capsys.readouterr().out)["fid"]

    streamed = fid("--generator", noisy_checkpoint, "-n", 8, "--seed", 0)
    assert streamed == pytest.approx(fid(tmp_path / "random.npz"), rel=1e-6)
    assert streamed != pytest.approx(fid(tmp_path / "const.npz"), rel=1e-6)


# ---------------------------------------------------------------- names as in the reference (issue 14)

def test_options_are_named_as_the_reference():
    cfg = FAMILY.config(32, 3, z_dim=16, width=8)
    assert cfg.width is None and cfg.options["channel_max"] == 8 and cfg.options["w_dim"] is None
    assert FAMILY.config(32, 3, z_dim=16, options={"channel_max": 8}) == cfg  # --width is channel_max
    G, D = build_models(FAMILY.config(32, 3, z_dim=16, width=8, options={"w_dim": 24}))
    assert G.z_dim == 16 and G.w_dim == 24 and G.mapping.w_avg.shape == (24,)
    assert G(torch.randn(2, 16)).shape == (2, 3, 32, 32)
    assert max(m.weight.shape[0] for m in D.modules() if hasattr(m, "weight") and m.weight.dim() == 4) <= 8
    with pytest.raises(BadInput, match="disagree"):
        FAMILY.config(32, 3, width=8, options={"channel_max": 16})
    with pytest.raises(BadInput, match="w_dim must be at least 1"):
        FAMILY.config(32, 3, options={"w_dim": 0})


def test_checkpoints_with_the_old_names_still_load_and_resume(trained, faces32_npz, tmp_path):
    """Before issue 14 a stylegan2 config kept channel_max in ``width`` and had no w_dim."""
    from ganeval.models.checkpoint import save_checkpoint

    data = load_checkpoint(trained)
    data.pop("path")
    options = data["config"]["model"]["options"]
    data["config"]["model"]["width"] = options.pop("channel_max")
    options.pop("w_dim")
    options["r1_gamma"] = 0.0064  # the old preset value, stored explicitly
    old = tmp_path / "old"
    old.mkdir()
    save_checkpoint(old / "checkpoint.pt", {k: v for k, v in data.items() if k not in ("format", "version")})
    G_old, _ = load_generator(old, "cpu")
    G_new, _ = load_generator(trained, "cpu")
    z = torch.randn(2, 16)
    assert torch.equal(G_old(z), G_new(z))
    assert main(["train", "stylegan2", "--out", str(old), "--resume", "--steps", "5", "--width", "8",
                 "--data", str(faces32_npz), "--device", "cpu", "--num-workers", "0"]) == 0
    resumed = load_checkpoint(old)["config"]["model"]
    assert resumed["width"] is None and resumed["options"]["channel_max"] == 8 and resumed["options"]["r1_gamma"] == 0.0064


# ---------------------------------------------------------------- export to NVlabs


def test_export_nvlabs_renders_the_runs_pixels(trained, tmp_path, capsys):
    """`export --nvlabs` writes a snapshot ganeval reads back (as data, like any NVlabs file) with
    the run's exact pixels; tests/check_nvlabs_export.py checks NVlabs' own code on it."""
    from ganeval.generators import load_generator

    out = tmp_path / "sg2.pkl"
    for repo in ("stylegan3", "stylegan2-ada-pytorch"):
        assert main(["export", str(trained), "--nvlabs", str(out), "--nvlabs-repo", repo, "--overwrite"]) == 0
        assert f"the stylegan2 G and D for NVlabs' {repo}" in capsys.readouterr().err
        ours = torch.cat(list(load_generator(trained, device="cpu").sample("0-3", truncation=0.7)))
        exported = load_generator(out, device="cpu")
        assert exported.kind == "nvlabs"
        theirs = torch.cat(list(exported.sample("0-3", truncation=0.7)))
        diff = (theirs.int() - ours.int()).abs()  # the run renders channels-last, as trained: rare last-bit ties
        assert diff.max() <= 1 and (diff > 0).float().mean() < 1e-3
    data = out.read_bytes()
    assert b"training.networks" in data and b"def " not in data  # a class name, no code
    # D is NVlabs' resnet Discriminator with the run's weights under NVlabs' names
    from ganeval.models.checkpoint import load_discriminator
    from ganeval.models.nvlabs import StoredNetwork, _read

    snapshot = _read(out)
    record = snapshot["D"]
    assert isinstance(record, StoredNetwork) and record.class_name == "Discriminator"
    assert record.init_kwargs["architecture"] == "resnet" and record.init_kwargs["img_resolution"] == 32
    D = load_discriminator(trained)
    stored = record.tensors()
    assert torch.equal(stored["b32.fromrgb.weight"], D.from_rgb.weight)
    assert torch.equal(stored["b8.skip.weight"], D.blocks[2].skip.weight)
    assert torch.equal(stored["b4.out.bias"], D.out.bias)
    assert main(["export", str(trained), "--nvlabs", str(out)]) == 2  # exists: refused
    assert "--overwrite" in capsys.readouterr().err
    assert main(["export", str(trained), "--nvlabs", str(tmp_path / "x.png")]) == 2
