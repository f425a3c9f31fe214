"""The trainer: every family trains, the GAN learns, resume is exact, sampling is
deterministic, the run folder is complete, and bad input gets one clear line."""
from __future__ import annotations

import csv
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from ganeval.atomic import save_npz
from ganeval.cli.main import main
from ganeval.sources import open_source
from ganeval.synth import make_faces
from ganeval.models.checkpoint import load_checkpoint
from ganeval.models.registry import FAMILIES, get_family
from tests.draw import draw
from ganeval.models.trainer import Trainer, TrainConfig
from ganeval.models.visualise import mp4_available

ROOT = Path(__file__).resolve().parents[2]


pytestmark = pytest.mark.usefixtures("one_torch_thread")


@pytest.fixture(scope="module")
def faces_npz(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("data") / "faces_npz.npz"
    save_npz(path, images=make_faces(256, 32, seed=0))
    return path


@pytest.fixture(scope="module")
def trained(faces_npz, tmp_path_factory) -> Path:
    """A small finished run, shared by the sampling tests."""
    run = tmp_path_factory.mktemp("run") / "dcgan"
    code = main(["train", "dcgan", "--data", str(faces_npz), "--out", str(run), "--steps", "6", "--batch-size", "8",
                 "--resolution", "32", "--width", "8", "--device", "cpu", "--num-workers", "0",
                 "--sample-every", "3", "--log-every", "2"])
    assert code == 0
    return run


def _config(name: str, data: Path, out: Path, steps: int, batch: int = 8, **kw) -> tuple:
    # StyleGAN grows from 4 px through every level within the first 12 steps of batch 8, so every
    # toRGB/fromRGB takes part
    growing = {"start_resolution": 4, "lod_kimg": 0.016, "fade_kimg": 0.016} if name == "stylegan" else None
    cfg = get_family(name).config(32, 3, width=8, options=growing)
    return cfg, TrainConfig(data=str(data), out=str(out), steps=steps, batch_size=batch, log_every=5,
                            sample_every=10**6, ckpt_every=10**6, **kw)


def _params(module: torch.nn.Module) -> dict[str, torch.Tensor]:
    return {k: v.detach().clone() for k, v in module.state_dict().items()}


@pytest.mark.slow
@pytest.mark.parametrize("name", sorted(FAMILIES))
def test_twenty_steps_finite_losses_and_changing_weights(name, faces_npz, tmp_path):
    if name in ("cyclegan", "ugatit"):
        pytest.skip("unpaired trainA/trainB data: covered by tests/models/test_translate.py")
    model_cfg, train_cfg = _config(name, faces_npz, tmp_path / "run", steps=20)
    trainer = Trainer(model_cfg, train_cfg, "cpu")
    g0, d0 = _params(trainer.G), _params(trainer.D)
    stats = torch.stack([trainer.train_step() for _ in range(20)])
    assert torch.isfinite(stats).all(), stats
    for before, module in ((g0, trainer.G), (d0, trainer.D)):
        after = module.state_dict()
        moved = [k for k, v in before.items() if v.is_floating_point() and not torch.equal(v, after[k])]
        weights = [k for k in before if k.endswith("weight")]
        assert set(weights) <= set(moved), f"{name}: weights that did not change: {set(weights) - set(moved)}"
        assert all(torch.isfinite(v).all() for v in after.values())
    if name == "wgan-gp":
        assert (stats[:, 4] > 0).all()  # a gradient penalty was computed
        assert trainer.real.batches_seen == 20 * 5  # five critic batches per generator step
    if name == "resdcgan-cycle":
        assert (stats[:, 5] > 0).all()  # the latent-cycle error is part of the objective


def _pixel_distance(fake: np.ndarray, real: np.ndarray) -> float:
    """Fréchet distance between Gaussians fitted to 4×4 mean-pooled pixels (48 dims):
    a cheap pixel-space FID, enough to see a GAN learn colours and layout."""
    from scipy import linalg

    def feats(x):
        n, h, w, c = x.shape
        return x.reshape(n, 4, h // 4, 4, w // 4, c).mean((2, 4)).reshape(n, -1).astype(np.float64) / 255

    a, b = feats(fake), feats(real)
    mu = a.mean(0) - b.mean(0)
    s1, s2 = np.cov(a, rowvar=False), np.cov(b, rowvar=False)
    root = linalg.sqrtm(s1 @ s2).real
    return float(mu @ mu + np.trace(s1 + s2 - 2 * root))


@pytest.mark.slow
def test_dcgan_learns_the_faces(faces_npz, tmp_path):
    real = make_faces(256, 32, seed=0)
    model_cfg = get_family("dcgan").config(32, 3, width=16)
    train_cfg = TrainConfig(data=str(faces_npz), out=str(tmp_path / "run"), steps=600, batch_size=32, log_every=100,
                            sample_every=10**6, ckpt_every=10**6)
    trainer = Trainer(model_cfg, train_cfg, "cpu")

    def distance() -> float:
        fake = np.concatenate([b.numpy() for b in draw(trainer.checkpoint_payload(), 256, 128, 1, "cpu")])
        return _pixel_distance(fake, real)

    start = distance()
    for _ in range(600):
        trainer.train_step()
    end = distance()
    # 0.33-0.41 of the start for training seeds 0-3; an untrained G stays at 1.0
    assert end < 0.6 * start, (start, end)


def _train_cli(name, data, run, steps, *extra) -> int:
    return main(["train", name, "--data", str(data), "--out", str(run), "--steps", str(steps), "--batch-size", "8",
                 "--resolution", "32", "--width", "8", "--device", "cpu", "--num-workers", "0",
                 "--log-every", "2", "--ckpt-every", "100", *extra])


@pytest.mark.parametrize("name", ["dcgan-seed", "wgan-gp"])  # dropout RNG; critic iterations + GP noise
def test_resume_is_exact(name, faces_npz, tmp_path):
    straight, split = tmp_path / "straight", tmp_path / "split"
    assert _train_cli(name, faces_npz, straight, 8) == 0
    assert _train_cli(name, faces_npz, split, 4) == 0
    assert load_checkpoint(split)["step"] == 4
    assert main(["train", name, "--out", str(split), "--resume", "--steps", "8", "--device", "cpu",
                 "--num-workers", "0"]) == 0
    a, b = load_checkpoint(straight), load_checkpoint(split)
    assert a["step"] == b["step"] == 8
    for key in ("G", "D", "G_ema"):
        for k, v in a[key].items():
            assert torch.equal(v, b[key][k]), f"{key}.{k} differs after resume"
    for k, v in a["opt_G"]["state"].items():
        assert torch.equal(v["exp_avg"], b["opt_G"]["state"][k]["exp_avg"])
    rows = list(csv.DictReader(open(split / "metrics.csv")))
    assert [int(r["step"]) for r in rows] == [2, 4, 6, 8]
    assert [r["loss_d"] for r in rows] == [r["loss_d"] for r in csv.DictReader(open(straight / "metrics.csv"))]


def test_run_folder_has_checkpoint_metrics_and_grids(trained):
    data = load_checkpoint(trained / "checkpoint.pt")
    assert data["step"] == 6 and data["model"] == "dcgan"
    assert data["config"]["train"]["batch_size"] == 8 and data["config"]["model"]["width"] == 8
    assert set(data) >= {"G", "D", "G_ema", "opt_G", "opt_D", "rng", "step", "config", "version"}
    rows = list(csv.DictReader(open(trained / "metrics.csv")))
    assert [int(r["step"]) for r in rows] == [2, 4, 6]
    assert all(np.isfinite(float(r["loss_d"])) and float(r["img_per_s"]) > 0 for r in rows)
    grids = sorted(p.name for p in (trained / "grids").iterdir())
    assert grids == ["step_00000000.png", "step_00000003.png", "step_00000006.png"]
    assert Image.open(trained / "grids" / grids[-1]).size == (8 * 34 + 2, 8 * 34 + 2)  # 64 images of 32px, 2px gaps


def test_sampling_is_deterministic_and_prefix_stable(trained):
    ckpt = trained / "checkpoint.pt"
    first = torch.cat(list(draw(ckpt, 20, 7, seed=5, device="cpu")))
    again = torch.cat(list(draw(ckpt, 20, 7, seed=5, device="cpu")))
    assert first.shape == (20, 32, 32, 3) and first.dtype == torch.uint8
    assert torch.equal(first, again)
    prefix = torch.cat(list(draw(ckpt, 9, 4, seed=5, device="cpu")))
    # image i depends on (seed, i) only; other batch sizes may move a value by float rounding
    assert (prefix.int() - first[:9].int()).abs().max() <= 1
    other = torch.cat(list(draw(ckpt, 20, 7, seed=6, device="cpu")))
    assert not torch.equal(first, other)
    raw = torch.cat(list(draw(ckpt, 20, 7, seed=5, device="cpu", use_ema=False)))
    assert not torch.equal(first, raw)
    assert [len(b) for b in draw(ckpt, 20, 7, seed=5, device="cpu")] == [7, 7, 6]


def test_sample_command_writes_exactly_the_generated_pixels(trained, tmp_path):
    expected = torch.cat(list(draw(trained / "checkpoint.pt", 12, 5, seed=3, device="cpu"))).numpy()
    assert main(["sample", str(trained), "-n", "12", "-o", str(tmp_path / "png"), "--seed", "3",
                 "--batch-size", "5", "--device", "cpu"]) == 0
    src = open_source(tmp_path / "png")
    assert src.keys()[:2] == ["000000.png", "000001.png"]
    assert np.array_equal(src.read_all(), expected)  # PNGs are lossless: sample-then-read == stream
    assert main(["sample", str(trained), "-n", "12", "-o", str(tmp_path / "s.npz"), "--seed", "3",
                 "--batch-size", "5", "--device", "cpu"]) == 0
    with np.load(tmp_path / "s.npz") as npz:
        assert np.array_equal(npz["images"], expected)
    # refuses to mix with an existing set
    assert main(["sample", str(trained), "-n", "2", "-o", str(tmp_path / "png"), "--device", "cpu"]) == 2


def test_grayscale_samples_are_rgb(faces_npz, tmp_path):
    run = tmp_path / "gray"
    assert _train_cli("dcgan-seed", faces_npz, run, 2, "--channels", "1") == 0
    img = next(draw(run / "checkpoint.pt", 3, 3, seed=0, device="cpu"))
    assert img.shape == (3, 32, 32, 3)
    assert torch.equal(img[..., 0], img[..., 1]) and torch.equal(img[..., 1], img[..., 2])


def test_timelapse_and_interpolate_write_gifs(trained, tmp_path):
    assert main(["timelapse", str(trained), "--no-mp4"]) == 0
    gif = Image.open(trained / "timelapse.gif")
    assert gif.n_frames == 3
    out = tmp_path / "walk.gif"
    assert main(["interpolate", str(trained / "checkpoint.pt"), "--seeds", "1,2,3", "--frames", "5",
                 "-o", str(out), "--device", "cpu", "--scale", "2"]) == 0
    walk = Image.open(out)
    assert walk.n_frames == 15 and walk.size == (64, 64)
    # the first frame is seed 1's image, i.e. image 0 of `sample --seed 1`
    walk.seek(0)
    first = np.asarray(walk.convert("RGB"))[::2, ::2].astype(int)
    expected = next(draw(trained / "checkpoint.pt", 1, 1, seed=1, device="cpu"))[0].numpy()
    assert np.abs(first - expected).mean() < 12  # GIF palettes quantise colours


@pytest.mark.slow
def test_sigterm_writes_a_checkpoint_and_exits(faces_npz, tmp_path):
    run = tmp_path / "run"
    env = {**os.environ, "GANEVAL_QUIET": "1", "OMP_NUM_THREADS": "1"}
    proc = subprocess.Popen([sys.executable, "-m", "ganeval", "train", "dcgan", "--data", str(faces_npz), "--out", str(run),
                             "--steps", "1000000", "--batch-size", "8", "--resolution", "32", "--width", "4",
                             "--device", "cpu", "--num-workers", "0", "--log-every", "1", "--ckpt-every", "1000000"],
                            cwd=ROOT, env=env, stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.time() + 120
        while time.time() < deadline:  # wait until training steps are being logged
            metrics = run / "metrics.csv"
            if metrics.exists() and len(metrics.read_text().splitlines()) > 3:
                break
            time.sleep(0.2)
        proc.send_signal(signal.SIGTERM)
        _, err = proc.communicate(timeout=120)
    finally:
        proc.kill()
    assert proc.returncode == 128 + signal.SIGTERM, err
    assert "stopped at step" in err and "--resume" in err
    step = load_checkpoint(run)["step"]
    assert 3 <= step < 1000000
    assert int(list(csv.DictReader(open(run / "metrics.csv")))[-1]["step"]) == step


# ---------------------------------------------------------------- bad input

def test_bad_training_requests_are_one_line_errors(faces_npz, tmp_path, capsys):
    (tmp_path / "empty").mkdir()
    cases = [
        (["train", "stylegan9", "--data", str(faces_npz), "--out", str(tmp_path / "a")], "unknown model 'stylegan9'"),
        (["train", "dcgan", "--data", str(faces_npz), "--out", str(tmp_path / "b"), "--resolution", "48"],
         "cannot generate 48×48"),
        (["train", "dcgan", "--data", str(tmp_path / "empty"), "--out", str(tmp_path / "c")], "contains no images"),
        (["train", "dcgan", "--data", str(tmp_path / "missing"), "--out", str(tmp_path / "d")], "no such file"),
        (["train", "dcgan", "--data", str(faces_npz), "--out", str(tmp_path / "e"), "--batch-size", "1000",
          "--resolution", "32"], "fewer than one batch"),
        (["train", "dcgan", "--out", str(tmp_path / "f")], "--data is required"),
        (["train", "dcgan", "--out", str(tmp_path / "g"), "--resume"], "nothing to resume"),
    ]
    for argv, message in cases:
        assert main(argv + ["--device", "cpu", "--num-workers", "0"]) == 2, argv
        err = capsys.readouterr().err.strip()
        assert message in err and len(err.splitlines()) == 1, err


def test_resume_refuses_changes_that_break_exactness(trained, faces_npz, capsys):
    assert main(["train", "dcgan", "--data", str(faces_npz), "--out", str(trained), "--steps", "9"]) == 2
    assert "--resume" in capsys.readouterr().err
    assert main(["train", "wgan-gp", "--out", str(trained), "--resume", "--steps", "9"]) == 2
    assert "holds a dcgan run" in capsys.readouterr().err
    assert main(["train", "dcgan", "--out", str(trained), "--resume", "--steps", "9", "--width", "16"]) == 2
    assert "architecture cannot change" in capsys.readouterr().err
    assert main(["train", "dcgan", "--out", str(trained), "--resume", "--steps", "3"]) == 0
    assert "already at step 6" in capsys.readouterr().err


@pytest.mark.skipif(not mp4_available(), reason="the optional imageio-ffmpeg is not installed")
def test_timelapse_writes_an_mp4_beside_the_gif_when_ffmpeg_is_there(trained, tmp_path):
    import imageio_ffmpeg

    out = tmp_path / "t.gif"
    assert main(["timelapse", str(trained), "-o", str(out)]) == 0
    frames = imageio_ffmpeg.read_frames(str(out.with_suffix(".mp4")))
    meta = next(frames)
    assert sum(1 for _ in frames) == 3 and meta["size"][0] % 16 == 0


# ---------------------------------------------------------------- data

def test_grayscale_conversion_matches_pillow():
    from ganeval.models.data import to_channels

    rgb = np.random.default_rng(0).integers(0, 256, (4, 9, 11, 3), dtype=np.uint8)
    ours = to_channels(rgb, 1)[..., 0]
    pillow = np.stack([np.asarray(Image.fromarray(x).convert("L")) for x in rgb])
    assert np.array_equal(ours, pillow)
    assert to_channels(rgb, 3) is rgb


def test_streamed_and_in_memory_batches_agree_and_resume(tmp_path):
    from ganeval.synth import write_faces
    from ganeval.models.data import RealBatches

    folder = tmp_path / "faces"
    write_faces(folder, 40, size=32, seed=2)
    memory = RealBatches(folder, 32, 3, batch_size=8, seed=4)
    streamed = RealBatches(folder, 32, 3, batch_size=8, seed=4, memory_limit=0)
    assert memory.images is not None and streamed.images is None
    first = [next(memory) for _ in range(7)]  # crosses an epoch boundary (5 batches per epoch)
    assert all(torch.equal(a, next(streamed)) for a in first)
    assert first[0].shape == (8, 3, 32, 32) and first[0].dtype == torch.uint8
    assert not torch.equal(first[0], first[5])  # each epoch has its own permutation
    resumed = RealBatches(folder, 32, 3, batch_size=8, seed=4, batches_seen=3)
    assert all(torch.equal(a, next(resumed)) for a in first[3:])
    assert memory.epoch == 7 / 5
    # a corrupt file is skipped when streaming (the batch is one short), never crashes training
    victim = sorted(folder.rglob("*.png"))[0]
    victim.write_bytes(b"not a png")
    broken = RealBatches(folder, 32, 3, batch_size=8, seed=4, memory_limit=0)
    assert sum(len(next(broken)) for _ in range(5)) == 39


# ---------------------------------------------------------------- resume rules, interrupts, skipped images (issue 12)

def test_resume_refuses_other_data_without_touching_the_run(trained, tmp_path, capsys):
    other = tmp_path / "other.npz"
    save_npz(other, images=make_faces(64, 32, seed=9))
    before = {name: (trained / name).read_bytes() for name in ("config.json", "checkpoint.pt", "metrics.csv")}
    stored = load_checkpoint(trained)["config"]["train"]["data_hash"]
    assert stored == open_source(load_checkpoint(trained)["config"]["train"]["data"]).content_hash()
    assert main(["train", "dcgan", "--data", str(other), "--out", str(trained), "--resume", "--steps", "9",
                 "--device", "cpu", "--num-workers", "0"]) == 2
    err = capsys.readouterr().err.strip()
    assert "other images than the run being resumed" in err and len(err.splitlines()) == 1, err
    assert {name: (trained / name).read_bytes() for name in before} == before  # nothing rewritten
    # a copy of the same images under another name is the same data: allowed
    same = tmp_path / "same.npz"
    same.write_bytes(Path(load_checkpoint(trained)["config"]["train"]["data"]).read_bytes())
    from ganeval.models.run import TrainRequest, plan_training

    plan = plan_training(TrainRequest("dcgan", str(trained), data=str(same), resume=True, steps=9))
    assert plan.train.data == str(same) and plan.train.data_hash == stored


def _stop_at(trainer: Trainer, step: int) -> None:
    """Make ``trainer`` behave as if SIGTERM arrived during ``step``."""
    train_step = trainer.train_step

    def stepping():
        stats = train_step()
        if trainer.step == step:
            trainer._stop_signal = signal.SIGTERM
        return stats

    trainer.train_step = stepping


def test_an_interrupted_run_keeps_its_timelapse_and_metrics_consistent(faces_npz, tmp_path):
    """Stopped mid-interval: no partial grid or row; the resumed row averages the whole interval."""
    from ganeval.models.run import TrainRequest, plan_training, train

    def request(out, steps, resume=False):
        return TrainRequest("dcgan", str(out), data=None if resume else str(faces_npz), resume=resume, steps=steps,
                            batch_size=8, resolution=32, width=8, log_every=4, sample_every=4, ckpt_every=100)

    straight, split = tmp_path / "straight", tmp_path / "split"
    assert train(plan_training(request(straight, 8)), "cpu").finished
    plan = plan_training(request(split, 8))
    trainer = Trainer(plan.model, plan.train, "cpu")
    _stop_at(trainer, 3)
    assert trainer.fit() is False and trainer.stop_signal == signal.SIGTERM
    assert load_checkpoint(split)["step"] == 3
    assert sorted(p.name for p in (split / "grids").iterdir()) == ["step_00000000.png"]  # no partial grid
    assert len((split / "metrics.csv").read_text().splitlines()) == 1  # the header only: no partial row
    assert train(plan_training(request(split, 8, resume=True)), "cpu").finished
    assert sorted(p.name for p in (split / "grids").iterdir()) == sorted(p.name for p in (straight / "grids").iterdir())
    rows = list(csv.DictReader(open(split / "metrics.csv")))
    straight_rows = list(csv.DictReader(open(straight / "metrics.csv")))
    assert [r["step"] for r in rows] == ["4", "8"]
    for column in ("step", "images", "loss_d", "loss_g", "d_real", "d_fake"):
        assert [r[column] for r in rows] == [r[column] for r in straight_rows], column


def test_skipped_training_images_are_reported_once_and_recorded(tmp_path, capsys):
    data = tmp_path / "faces"
    data.mkdir()
    for i, face in enumerate(make_faces(16, 32, seed=3)):
        Image.fromarray(face).save(data / f"{i:02d}.png")
    (data / "broken.png").write_bytes(b"not a png")
    run = tmp_path / "run"
    assert main(["train", "dcgan", "--data", str(data), "--out", str(run), "--steps", "1", "--batch-size", "8",
                 "--resolution", "32", "--width", "4", "--device", "cpu", "--num-workers", "0"]) == 0
    lines = [line for line in capsys.readouterr().err.splitlines() if "corrupt" in line]
    assert len(lines) == 1 and "skipped 1 corrupt image(s), e.g. broken.png" in lines[0], lines
    import json

    recorded = json.loads((run / "config.json").read_text())["data"]
    assert recorded["skipped"] == 1 and recorded["first_skipped"] == "broken.png" and recorded["images"] == 16
    # decoded on the fly (sets larger than memory): counted as met, each file once
    from ganeval.models.data import RealBatches

    stream = RealBatches(data, 32, 3, 8, memory_limit=0)
    for _ in range(2 * stream.batches_per_epoch):
        next(stream)
    assert stream.skipped_summary() == {"skipped": 1, "first_skipped": "broken.png"}


def test_an_objective_steps_from_explicit_inputs_without_a_trainer(faces_npz, tmp_path):
    """Issue 14: models, optimisers, data, step and RNG arrive as arguments (a StepContext)."""
    from ganeval.distributed import World
    from ganeval.models.objective import GANObjective, StepContext, TrainingSpec
    from ganeval.models.registry import build_models

    cfg, train_cfg = _config("dcgan", faces_npz, tmp_path / "run", 2)
    trainer = Trainer(cfg, train_cfg, "cpu")
    assert not any(isinstance(v, Trainer) for v in vars(trainer.objective).values())
    torch.manual_seed(0)
    G, D = build_models(cfg)
    spec = TrainingSpec(get_family("dcgan"), cfg, train_cfg, World(), torch.device("cpu"))
    objective = GANObjective(spec, G, D)
    opt_G, opt_D = objective.make_optimizers(G, D)
    scaler = torch.amp.GradScaler("cpu", enabled=False)
    ctx = StepContext(G, D, opt_G, opt_D, scaler, scaler, objective.make_data(0), step=0,
                      rng=torch.Generator().manual_seed(1), device=torch.device("cpu"), z_dim=cfg.z_dim)
    before = _params(G)
    stats = objective.step(ctx)
    assert stats.shape == (len(objective.stats),) and torch.isfinite(stats).all()
    assert any(not torch.equal(v, before[k]) for k, v in G.state_dict().items())
    assert ctx.data.batches_seen == 1
