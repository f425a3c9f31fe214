"""CycleGAN and U-GAT-IT: shapes, ρ clipping, mosaic tiling, unpaired training through the
trainer (finite losses, moving weights, exact resume), and `ganeval translate` end to end,
bad input included."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from torch import nn

from ganeval.cli.main import main
from ganeval.errors import BadInput
from ganeval.images import decode_image, encode_png
from ganeval.synth import make_faces
from ganeval.tiling import split_tiles, stitch_tiles
from ganeval.models.checkpoint import load_checkpoint
from ganeval.models.cyclegan import PatchDiscriminator, ResnetGenerator, Translator
from ganeval.models.registry import get_family
from ganeval.models.trainer import Trainer, TrainConfig
from ganeval.models.translate import ImageTranslator
from ganeval.models.ugatit import AdaLIN, ILN, UGATITCritics, UGATITGenerator, clip_rho

pytestmark = pytest.mark.usefixtures("one_torch_thread")

TINY = {"cyclegan": {"n_blocks": 1, "pool_size": 4}, "ugatit": {"n_blocks": 1, "light": True}}


def posterise(faces: np.ndarray) -> np.ndarray:
    """Domain B: a colour-shifted, posterised version of the faces (a stand-in "anime" domain)."""
    return ((faces[..., ::-1] // 64) * 64 + 32).astype(np.uint8)


@pytest.fixture(scope="module")
def unpaired(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("unpaired") / "photo2anime"
    faces = make_faces(10, 32, seed=4)
    for split, part in (("train", faces[:8]), ("test", faces[8:])):
        for domain, images in (("A", part), ("B", posterise(part[::-1]))):
            (root / f"{split}{domain}").mkdir(parents=True)
            for i, img in enumerate(images):
                (root / f"{split}{domain}" / f"{i:02d}.png").write_bytes(encode_png(img))
    return root


def _trainer(name: str, data: Path, out: Path, steps: int, **options) -> Trainer:
    cfg = get_family(name).config(32, 3, width=4, options={**TINY[name], **options})
    train = TrainConfig(data=str(data), out=str(out), steps=steps, batch_size=2, log_every=1,
                        sample_every=10**6, ckpt_every=10**6)
    return Trainer(cfg, train, "cpu")


@pytest.fixture(scope="module")
def runs(unpaired, tmp_path_factory) -> dict[str, Path]:
    base = tmp_path_factory.mktemp("runs")
    out = {}
    for name in ("cyclegan", "ugatit"):
        assert _trainer(name, unpaired, base / name, steps=1).fit()
        out[name] = base / name
    assert main(["train", "dcgan", "--data", str(unpaired / "trainA"), "--out", str(base / "dcgan"), "--steps", "1",
                 "--batch-size", "4", "--resolution", "32", "--width", "4", "--num-workers", "0"]) == 0
    out["dcgan"] = base / "dcgan"
    return out


# ---------------------------------------------------------------- architecture

@pytest.mark.parametrize("side", [32, 64])
def test_cyclegan_shapes(side):
    G, D = ResnetGenerator(width=4, n_blocks=2), PatchDiscriminator(width=4)
    x = torch.rand(2, 3, side, side) * 2 - 1
    assert G(x).shape == x.shape and G(x).abs().max() <= 1
    assert D(x).shape == (2, 1, side // 8 - 2, side // 8 - 2)  # 70×70 PatchGAN: 256 px → 30×30
    assert PatchDiscriminator(width=4)(torch.rand(1, 3, 256, 256)).shape == (1, 1, 30, 30)
    full = ResnetGenerator()
    assert sum(isinstance(m, nn.InstanceNorm2d) for m in full.modules()) == 2 + 1 + 2 + 9 * 2  # c7s1, d, d, 9R, u, u
    assert sum(isinstance(m, nn.ReflectionPad2d) for m in full.modules()) == 2 + 9 * 2


@pytest.mark.parametrize("light", [True, False])
@pytest.mark.parametrize("side", [32, 64])
def test_ugatit_shapes(side, light):
    G = UGATITGenerator(side, width=4, n_blocks=2, light=light)
    x = torch.rand(2, 3, side, side) * 2 - 1
    out, cam_logit, heatmap = G(x)
    assert out.shape == x.shape and cam_logit.shape == (2, 2) and heatmap.shape == (2, 1, side // 4, side // 4)
    D = UGATITCritics(side, width=4)
    for d in (D.GA, D.LA):
        logit, cam, _ = d(x)
        assert logit.ndim == 4 and logit.shape[:2] == (2, 1) and min(logit.shape[2:]) >= 2 and cam.shape == (2, 2)
    # at 256 px the paper's discriminators: 5 (global) and 3 (local) stride-2 convolutions
    paper = UGATITCritics(256, width=2)
    strides = [sum(m.stride == (2, 2) for m in d.modules() if isinstance(m, nn.Conv2d)) for d in (paper.GA, paper.LA)]
    assert strides == [5, 3]


def test_adalin_is_the_papers_mix_of_instance_and_layer_norm():
    torch.manual_seed(0)
    x, gamma, beta = torch.randn(2, 6, 5, 7) * 3 + 1, torch.randn(2, 6), torch.randn(2, 6)
    norm = AdaLIN(6)
    with torch.no_grad():
        norm.rho.copy_(torch.linspace(0, 1, 6).view(1, 6, 1, 1))
    mi, vi = x.mean((2, 3), keepdim=True), x.var((2, 3), keepdim=True, unbiased=False)
    ml, vl = x.mean((1, 2, 3), keepdim=True), x.var((1, 2, 3), keepdim=True, unbiased=False)
    rho = norm.rho
    expected = (rho * (x - mi) / (vi + 1e-5).sqrt() + (1 - rho) * (x - ml) / (vl + 1e-5).sqrt()) \
        * gamma[:, :, None, None] + beta[:, :, None, None]
    assert torch.allclose(norm(x, gamma, beta), expected, atol=1e-5)
    assert AdaLIN(6).rho.eq(0.9).all() and ILN(6).rho.eq(0).all()  # the paper's initial ρ


def test_rho_stays_in_unit_interval_after_optimiser_steps():
    G = UGATITGenerator(32, width=4, n_blocks=1, light=True)
    rhos = [m.rho for m in G.modules() if isinstance(m, (AdaLIN, ILN))]
    assert len(rhos) == 2 + 2  # two AdaLIN in the one bottleneck block, ILN in both up-sampling blocks
    opt = torch.optim.SGD(rhos, lr=10.0)
    for sign in (1.0, -1.0):  # push every ρ far above 1, then far below 0
        opt.zero_grad()
        (sign * -sum(r.sum() for r in rhos)).backward()
        opt.step()
        assert any(r.max() > 1 or r.min() < 0 for r in rhos)
        clip_rho(G)
        assert all(0 <= r.min() and r.max() <= 1 for r in rhos)
    assert all(torch.all((r == 0) | (r == 1)) for r in rhos)


# ---------------------------------------------------------------- mosaic

@pytest.mark.parametrize("shape", [(64, 64), (37, 50), (5, 3), (1, 40), (33, 1)])
def test_split_and_stitch_are_inverse(shape):
    img = np.random.default_rng(0).integers(0, 256, (*shape, 3), dtype=np.uint8)
    tiles, layout = split_tiles(img, 16)
    assert tiles.shape[1:] == (16, 16, 3) and len(tiles) == layout.rows * layout.cols
    assert np.array_equal(stitch_tiles(tiles, layout), img)
    assert np.array_equal(tiles[0][:min(16, shape[0]), :min(16, shape[1])], img[:16, :16])
    if shape == (37, 50):  # the padding reflects the image (no black borders)
        # the last tile covers rows 32–47, columns 48–63; padded row 37 is image row 2·36 − 37 = 35
        assert np.array_equal(tiles[-1][5, :2], img[35, 48:50])
        assert np.array_equal(tiles[-1][0, 2], img[32, 48])  # padded column 50 is column 2·49 − 50 = 48


def test_identity_generator_mosaic_reconstructs_the_input_exactly():
    identity = Translator(nn.Identity(), nn.Identity(), resolution=32)
    translator = ImageTranslator.from_generator(identity, 32)
    for shape in ((70, 45), (32, 32), (20, 90)):
        img = np.random.default_rng(1).integers(0, 256, (*shape, 3), dtype=np.uint8)
        assert np.array_equal(translator(img, mosaic=True, batch_size=3), img)
        assert translator(img).shape == (32, 32, 3)  # default: resized to the model size


# ---------------------------------------------------------------- training

@pytest.mark.parametrize("name", ["cyclegan", "ugatit"])
def test_training_steps_are_finite_and_move_every_weight(name, unpaired, tmp_path):
    trainer = _trainer(name, unpaired, tmp_path / name, steps=3)
    before = {k: v.clone() for k, v in {**trainer.G.state_dict(), **{f"D.{k}": v for k, v in trainer.D.state_dict().items()}}.items()}
    stats = torch.stack([trainer.train_step() for _ in range(3)])
    assert torch.isfinite(stats).all(), stats
    names = trainer.objective.stats
    assert (stats[:, names.index("cycle")] > 0).all() and (stats[:, names.index("identity")] > 0).all()
    after = {**trainer.G.state_dict(), **{f"D.{k}": v for k, v in trainer.D.state_dict().items()}}
    frozen = [k for k in before if (k.endswith("weight") or k.endswith("original")) and torch.equal(before[k], after[k])]
    assert not frozen, f"{name}: weights that did not change: {frozen}"
    if name == "ugatit":
        assert "cam" in names
        assert all(0 <= m.rho.min() and m.rho.max() <= 1 for m in trainer.G.modules() if isinstance(m, (AdaLIN, ILN)))
    grid = trainer.grid_images()
    assert grid.shape == (4 * 2, 32, 32, 3) and grid.dtype == torch.uint8  # 2 test images × (A, A→B, B, B→A)


@pytest.mark.parametrize("name", ["cyclegan", "ugatit"])
def test_learning_rate_decays_linearly_over_the_second_half(name, unpaired, tmp_path):
    trainer = _trainer(name, unpaired, tmp_path / name, steps=4)
    base = trainer.family.lr_g
    seen = []
    for _ in range(4):
        trainer.train_step()
        seen.append(trainer.opt_G.param_groups[0]["lr"] / base)
    assert seen == pytest.approx([1.0, 1.0, 1.0, 0.5])  # the rate used by steps 1..4 of 4
    assert trainer.opt_D.param_groups[0]["lr"] == pytest.approx(0.5 * trainer.family.lr_d)
    fixed = _trainer(name, unpaired, tmp_path / f"{name}-fixed", steps=4, lr_decay=False)
    for _ in range(4):
        fixed.train_step()
    assert fixed.opt_G.param_groups[0]["lr"] == base


def test_cyclegan_resume_with_an_image_pool_is_exact(unpaired, tmp_path):
    straight = _trainer("cyclegan", unpaired, tmp_path / "a", steps=4)
    straight.fit()
    half = _trainer("cyclegan", unpaired, tmp_path / "b", steps=2)
    half.fit()
    ckpt = load_checkpoint(tmp_path / "b" / "checkpoint.pt")
    assert ckpt["objective"]["pool_A"].shape == (4, 3, 32, 32)  # the pool travels with the checkpoint
    resumed = Trainer(half.model_cfg, TrainConfig.from_dict({**half.cfg.to_dict(), "steps": 4}), "cpu", checkpoint=ckpt)
    resumed.fit()
    for module in ("G", "D"):
        ref, got = getattr(straight, module).state_dict(), getattr(resumed, module).state_dict()
        for k in ref:
            assert torch.equal(ref[k], got[k]), (module, k)


def test_missing_unpaired_layout_is_one_clear_line(unpaired, tmp_path, capsys):
    assert main(["train", "cyclegan", "--data", str(unpaired / "trainA"), "--out", str(tmp_path / "r"),
                 "--resolution", "32", "--num-workers", "0"]) == 2
    err = capsys.readouterr().err.strip()
    assert "no trainA/ folder" in err and "trainA/ trainB/ testA/ testB/" in err and len(err.splitlines()) == 1
    with pytest.raises(BadInput, match="no option light"):
        get_family("cyclegan").config(32, options={"light": True})


# ---------------------------------------------------------------- translate command

def test_translate_folder_prefix_direction_and_mosaic(runs, unpaired, tmp_path, capsys):
    src = tmp_path / "photos"
    src.mkdir()
    for i, img in enumerate(make_faces(3, 48, seed=7)):
        (src / f"p{i}.png").write_bytes(encode_png(img[:, :40]))  # 48×40, not the model size
    (src / "broken.jpg").write_bytes(b"\xff\xd8 not a jpeg")
    out = tmp_path / "anime"
    assert main(["translate", str(src), "-o", str(out), "-g", str(runs["ugatit"]), "--prefix", "result"]) == 0
    assert "skipped 1 unreadable image(s), e.g. broken.jpg" in capsys.readouterr().err
    files = sorted(p.name for p in out.glob("*.png"))  # (beside them: the output manifest)
    assert files == ["result_p0.png", "result_p1.png", "result_p2.png"]
    assert decode_image(out / "result_p0.png").shape == (32, 32, 3)  # resized to the model size

    mosaic = tmp_path / "mosaic"
    assert main(["translate", str(src), "-o", str(mosaic), "-g", str(runs["cyclegan"]), "--mosaic",
                 "--direction", "ba"]) == 0
    img = decode_image(mosaic / "p1.png")
    assert img.shape == (48, 40, 3)  # stitched back to the original size
    translator = ImageTranslator(runs["cyclegan"], "BA")
    assert np.array_equal(img, translator(decode_image(src / "p1.png"), mosaic=True))
    assert not np.array_equal(img, ImageTranslator(runs["cyclegan"], "AB")(decode_image(src / "p1.png"), mosaic=True))

    single = tmp_path / "one.png"
    assert main(["translate", str(src / "p0.png"), "-o", str(single), "-g", str(runs["cyclegan"])]) == 0
    assert decode_image(single).shape == (32, 32, 3)


@pytest.mark.parametrize("kind,message", [("dcgan", "holds a 'dcgan' model, not an image translator"),
                                          ("srgan", "ganeval upscale")])
def test_translate_refuses_a_model_of_the_wrong_kind(kind, message, runs, unpaired, tmp_path, capsys):
    ckpt = runs.get(kind)
    if ckpt is None:  # an SRGAN checkpoint, built here (cheap: 1 block, width 4, one step)
        cfg = get_family("srgan").config(32, 3, width=4, options={"n_blocks": 1})
        train = TrainConfig(data=str(unpaired / "trainA"), out=str(tmp_path / "sr"), steps=1, batch_size=2)
        Trainer(cfg, train, "cpu").fit()
        ckpt = tmp_path / "sr"
    capsys.readouterr()
    assert main(["translate", str(unpaired / "testA"), "-o", str(tmp_path / "o"), "-g", str(ckpt)]) == 2
    err = capsys.readouterr().err.strip()
    assert message in err and len(err.splitlines()) == 1


def test_translate_unreadable_single_file_is_an_error(runs, tmp_path, capsys):
    bad = tmp_path / "bad.png"
    bad.write_bytes(b"garbage")
    assert main(["translate", str(bad), "-o", str(tmp_path / "o.png"), "-g", str(runs["cyclegan"])]) == 2
    err = capsys.readouterr().err.strip()
    assert "bad.png: not a readable image" in err and len(err.splitlines()) == 1


def test_output_kind_must_fit_the_input(runs, unpaired, tmp_path, capsys):
    assert main(["translate", str(unpaired / "testA"), "-o", str(tmp_path / "o.png"), "-g", str(runs["cyclegan"])]) == 2
    assert "holds several images; give an output folder" in capsys.readouterr().err
    one = next((unpaired / "testA").iterdir())
    assert main(["translate", str(one), "-o", str(tmp_path / "o.jpg"), "-g", str(runs["cyclegan"])]) == 2
    assert "outputs are PNG" in capsys.readouterr().err


@pytest.mark.parametrize("command", ["translate", "upscale", "upscale-compare"])
def test_help_has_examples(command, capsys):
    with pytest.raises(SystemExit) as stop:
        main([command, "--help"])
    assert stop.value.code == 0
    assert f"ganeval {command} " in capsys.readouterr().out.split("examples:")[1]


def test_sampling_a_translator_is_one_clear_line(runs, tmp_path, capsys):
    assert main(["sample", str(runs["ugatit"]), "-n", "2", "-o", str(tmp_path / "s")]) == 2
    err = capsys.readouterr().err.strip()
    assert "ganeval translate" in err and len(err.splitlines()) == 1
