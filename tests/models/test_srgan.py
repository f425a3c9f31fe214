"""SRGAN and upscaling: shapes at each scale, Pillow parity of the resamplers, PSNR/SSIM parity
with scikit-image, training through the trainer (with and without a perceptual term), and
`ganeval upscale` / `upscale-compare` end to end, bad input included."""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from ganeval.cli.main import main
from ganeval.errors import BadInput
from ganeval.images import decode_image
from ganeval.synth import make_faces, write_faces
from ganeval.resample import downscale
from ganeval.upscale import compare_one, psnr, score
from ganeval.models.upscale import upscale_array, upscale_image
from ganeval.models.checkpoint import load_checkpoint
from ganeval.models.registry import get_family
from ganeval.models.srgan import SRDiscriminator, SRResNet, build_perceptual
from ganeval.models.trainer import Trainer, TrainConfig

pytestmark = pytest.mark.usefixtures("one_torch_thread")

TINY = {"n_blocks": 1}


@pytest.fixture(scope="module")
def hr_folder(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("hr") / "faces"
    write_faces(root, 12, 32, seed=3)
    return root


def _train(data: Path, out: Path, steps: int, options: dict | None = None, resolution: int = 32, **kw) -> Trainer:
    cfg = get_family("srgan").config(resolution, 3, width=8, options={**TINY, **(options or {})})
    train = TrainConfig(data=str(data), out=str(out), steps=steps, batch_size=4, log_every=1,
                        sample_every=10**6, ckpt_every=10**6, **kw)
    trainer = Trainer(cfg, train, "cpu")
    return trainer


@pytest.fixture(scope="module")
def srgan_run(hr_folder, tmp_path_factory) -> Path:
    run = tmp_path_factory.mktemp("runs") / "srgan"
    assert _train(hr_folder, run, steps=2).fit()
    return run


@pytest.fixture(scope="module")
def dcgan_run(hr_folder, tmp_path_factory) -> Path:
    run = tmp_path_factory.mktemp("runs") / "dcgan"
    assert main(["train", "dcgan", "--data", str(hr_folder), "--out", str(run), "--steps", "1", "--batch-size", "4",
                 "--resolution", "32", "--width", "4", "--device", "cpu", "--num-workers", "0"]) == 0
    return run


# ---------------------------------------------------------------- architecture

@pytest.mark.parametrize("scale", [2, 4, 8])
def test_generator_upscales_by_its_factor_at_any_size(scale):
    G = SRResNet(scale, width=8, n_blocks=2).eval()
    for h, w in ((8, 8), (5, 7)):
        out = G(torch.rand(2, 3, h, w) * 2 - 1)
        assert out.shape == (2, 3, h * scale, w * scale)
        assert out.abs().max() <= 1
    # the paper's generator: 16 residual blocks, one pixel-shuffle ×2 stage per doubling
    full = SRResNet(scale)
    assert len(full.blocks) == 16
    assert sum(isinstance(m, torch.nn.PixelShuffle) for m in full.modules()) == int(np.log2(scale))


@pytest.mark.parametrize("side", [16, 32, 96])
def test_discriminator_takes_any_patch_size(side):
    D = SRDiscriminator(width=4)
    assert D(torch.rand(3, 3, side, side)).shape == (3,)
    strides = [m.stride[0] for m in D.modules() if isinstance(m, torch.nn.Conv2d)]
    assert strides == [1, 2, 1, 2, 1, 2, 1, 2]  # the paper's conv stack


def test_scale_and_resolution_are_checked():
    fam = get_family("srgan")
    assert fam.config(64, options={"scale": 8}).options["scale"] == 8
    with pytest.raises(BadInput, match="scale must be one of 2, 4, 8"):
        fam.config(64, options={"scale": 3})
    with pytest.raises(BadInput, match="cannot generate 48"):
        fam.config(48)
    with pytest.raises(BadInput, match="no option colour"):
        fam.config(64, options={"colour": 1})


# ---------------------------------------------------------------- resampling parity

def test_downscale_and_bicubic_lanczos_upscaling_equal_pillow():
    img = make_faces(1, 64, seed=5)[0]
    pil = Image.fromarray(img)
    assert np.array_equal(downscale(img, 4), np.asarray(pil.resize((16, 16), Image.Resampling.BICUBIC)))
    small = downscale(img, 4)
    for method, flt in (("bicubic", Image.Resampling.BICUBIC), ("lanczos", Image.Resampling.LANCZOS)):
        ref = np.asarray(Image.fromarray(small).resize((64, 64), flt))
        assert np.array_equal(upscale_array(small, 4, method), ref)
        assert np.array_equal(upscale_image(small, (64, 64), method), ref)
    odd = make_faces(1, 50, seed=1)[0][:, :47]  # crops to a multiple of the factor first
    assert downscale(odd, 4).shape == (12, 11, 3)
    with pytest.raises(BadInput, match="unknown upscaling method"):
        upscale_array(small, 2, "nearest")


def test_psnr_and_ssim_match_scikit_image():
    from skimage.metrics import peak_signal_noise_ratio, structural_similarity

    hr = make_faces(1, 48, seed=2)[0]
    results = compare_one(hr, 4)
    assert set(results) == {"LR", "bicubic", "lanczos", "HR"} and results["LR"].shape == (12, 12, 3)
    for method, (p, s) in score(results).items():
        ref_p = peak_signal_noise_ratio(hr, results[method], data_range=255)
        ref_s = structural_similarity(hr, results[method], channel_axis=-1, data_range=255,
                                      gaussian_weights=True, sigma=1.5, use_sample_covariance=False)
        assert p == pytest.approx(ref_p, rel=1e-12)
        assert s == pytest.approx(ref_s, abs=2e-6)
    assert psnr(hr, hr) == float("inf")


# ---------------------------------------------------------------- training

def test_training_steps_are_finite_and_move_the_weights(hr_folder, tmp_path, capsys):
    trainer = _train(hr_folder, tmp_path / "run", steps=3, options={"scale": 4})
    assert "perceptual loss off" in capsys.readouterr().err  # no weights in the isolated cache
    g0 = {k: v.clone() for k, v in trainer.G.state_dict().items()}
    stats = torch.stack([trainer.train_step() for _ in range(3)])
    assert torch.isfinite(stats).all()
    names = trainer.objective.stats
    assert (stats[:, names.index("pixel")] > 0).all() and (stats[:, names.index("perceptual")] == 0).all()
    changed = [k for k, v in trainer.G.state_dict().items() if v.is_floating_point() and not torch.equal(v, g0[k])]
    assert any("blocks" in k for k in changed) and any("upsample" in k for k in changed)


def test_perceptual_term_on_illust2vec_features(hr_folder, tmp_path, capsys):
    from ganeval.features.illust2vec import Illust2VecNet

    torch.manual_seed(0)
    weights = tmp_path / "i2v_small.pt"
    torch.save(Illust2VecNet((4, 4, 6, 6, 8, 8, 8, 8, 12, 12, 12), 24).state_dict(), weights)
    trainer = _train(hr_folder, tmp_path / "run", steps=2, options={"perceptual": f"illust2vec:{weights}"})
    assert "perceptual loss on illust2vec" in capsys.readouterr().err
    stats = torch.stack([trainer.train_step() for _ in range(2)])
    assert torch.isfinite(stats).all()
    assert (stats[:, trainer.objective.stats.index("perceptual")] > 0).all()
    assert trainer.objective.perceptual.tower[0].weight.requires_grad is False  # frozen


@pytest.mark.slow
def test_perceptual_choices_fail_clearly(tmp_path):
    assert build_perceptual("off")[0] is None
    tower, line, resolved = build_perceptual("auto")  # empty cache: off, said in one line
    assert tower is None and resolved == "off" and "perceptual loss off" in line
    with pytest.raises(BadInput, match="VGG19 weights not found"):
        build_perceptual(f"vgg19:{tmp_path / 'absent.pth'}")
    junk = tmp_path / "junk.pth"
    torch.save({"x": torch.zeros(1)}, junk)
    with pytest.raises(BadInput, match="not torchvision VGG19 weights"):
        build_perceptual(f"vgg19:{junk}")
    with pytest.raises(BadInput, match="--perceptual must be"):
        build_perceptual("alexnet")


def test_resume_continues_exactly(hr_folder, tmp_path):
    straight = _train(hr_folder, tmp_path / "a", steps=4)
    straight.fit()
    half = _train(hr_folder, tmp_path / "b", steps=2)
    half.fit()
    ckpt = load_checkpoint(tmp_path / "b" / "checkpoint.pt")
    assert ckpt["objective"] == {"perceptual": "off"}
    resumed = Trainer(half.model_cfg, TrainConfig.from_dict({**half.cfg.to_dict(), "steps": 4}), "cpu", checkpoint=ckpt)
    resumed.fit()
    for k, v in straight.G.state_dict().items():
        assert torch.equal(v, resumed.G.state_dict()[k]), k


# ---------------------------------------------------------------- commands

def test_upscale_folder_with_srgan_and_single_file_with_lanczos(srgan_run, hr_folder, tmp_path, capsys):
    small = tmp_path / "small"
    write_faces(small, 3, 32, seed=9)
    (small / "broken.png").write_bytes(b"not a png")
    out = tmp_path / "big"
    assert main(["upscale", str(small), "-o", str(out), "--method", f"srgan:{srgan_run}", "--device", "cpu"]) == 0
    err = capsys.readouterr().err
    assert "skipped 1 unreadable image(s), e.g. broken.png" in err
    files = sorted(out.glob("*.png"))  # (beside them: the output manifest)
    assert len(files) == 3 and decode_image(files[0]).shape == (128, 128, 3)
    # the files are exactly what the upscaler function gives
    first = decode_image(sorted(small.glob("face_*.png"))[0])
    assert np.array_equal(decode_image(files[0]), upscale_array(first, None, f"srgan:{srgan_run}"))

    target = tmp_path / "one.png"
    assert main(["upscale", str(sorted(small.glob("face_*.png"))[0]), "-o", str(target), "--scale", "3",
                 "--method", "lanczos"]) == 0
    ref = np.asarray(Image.fromarray(first).resize((96, 96), Image.Resampling.LANCZOS))
    assert np.array_equal(decode_image(target), ref)


def test_upscale_bad_input_is_one_line(dcgan_run, tmp_path, capsys):
    img = tmp_path / "x.png"
    Image.fromarray(make_faces(1, 32)[0]).save(img)
    assert main(["upscale", str(img), "-o", str(tmp_path / "o.png"), "--method", f"srgan:{dcgan_run}"]) == 2
    err = capsys.readouterr().err.strip()
    assert "holds a 'dcgan' model, not an SRGAN upscaler" in err and len(err.splitlines()) == 1
    bad = tmp_path / "bad.png"
    bad.write_bytes(b"\x89PNG truncated")
    assert main(["upscale", str(bad), "-o", str(tmp_path / "o.png")]) == 2
    err = capsys.readouterr().err.strip()
    assert "not a readable image" in err and len(err.splitlines()) == 1
    assert main(["upscale", str(img), "-o", str(tmp_path / "o.png"), "--method", "waifu2x"]) == 2
    assert "unknown upscaling method" in capsys.readouterr().err


def test_upscale_compare_reports_psnr_ssim_and_writes_a_sheet(srgan_run, hr_folder, tmp_path, capsys):
    sheet = tmp_path / "compare.png"
    assert main(["upscale-compare", str(hr_folder), "--ckpt", str(srgan_run), "-n", "4", "--rows", "2",
                 "-o", str(sheet), "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["images"] == 4 and report["scale"] == 4
    assert set(report["methods"]) == {"bicubic", "lanczos", "srgan"}
    # bicubic's numbers are the mean of the per-image scores
    expected = np.mean([score(compare_one(decode_image(p), 4))["bicubic"][0] for p in sorted(hr_folder.iterdir())[:4]])
    assert report["methods"]["bicubic"]["psnr"] == pytest.approx(expected)
    assert 0 < report["methods"]["srgan"]["ssim"] < 1
    # 2 rows × 5 columns (LR | bicubic | Lanczos | SRGAN | HR) of 32-px images, 2-px gaps
    assert decode_image(sheet).shape == (2 * 34 + 2, 5 * 34 + 2, 3)
    assert main(["upscale-compare", str(hr_folder), "--ckpt", str(srgan_run), "--scale", "2"]) == 2


def test_sampling_an_srgan_is_one_clear_line(srgan_run, tmp_path, capsys):
    assert main(["sample", str(srgan_run), "-n", "2", "-o", str(tmp_path / "s")]) == 2
    err = capsys.readouterr().err.strip()
    assert "ganeval upscale" in err and len(err.splitlines()) == 1


def test_training_grid_rows_are_bicubic_sr_hr(hr_folder, tmp_path):
    trainer = _train(hr_folder, tmp_path / "run", steps=1)
    grid = trainer.grid_images().numpy()
    assert grid.shape == (6 * 3, 32, 32, 3) and trainer.objective.grid_columns() == 3
    hr = decode_image(sorted(hr_folder.iterdir())[0])
    assert np.array_equal(grid[2], hr)  # row 0: bicubic(LR) | SR | HR
    assert np.array_equal(grid[0], np.asarray(Image.fromarray(downscale(hr, 4)).resize((32, 32), Image.Resampling.BICUBIC)))
