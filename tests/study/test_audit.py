"""The study's leak audit and what `study init` does so that the image files cannot give the
truth away: a cross-validated classifier on pipeline cues (JPEG grid, bytes, metadata, size,
colour mode) and generator cues; `--equalize jpeg:Q`; the colour-mode warning; only decodable
files counted as images."""
from __future__ import annotations

import io
import json

import numpy as np
import pytest
from PIL import Image
from sklearn.metrics import roc_auc_score

from ganeval.atomic import save_npz
from ganeval.cli.main import main
from ganeval.images import decode_image
from ganeval.study_app.audit import blockiness, luma, rank_auc
from ganeval.study_app.build import build_study, equalize_jpeg
from ganeval.synth import make_faces


def jpeg(arr: np.ndarray, quality: int) -> np.ndarray:
    buf = io.BytesIO()
    Image.fromarray(arr).save(buf, format="JPEG", quality=quality)
    return decode_image(buf.getvalue())


def test_rank_auc_equals_scikit_learn():
    rng = np.random.default_rng(0)
    y = rng.integers(0, 2, 200)
    score = np.round(rng.normal(y * 0.5, 1), 1)  # ties included
    assert rank_auc(y, score) == pytest.approx(roc_auc_score(y, score), abs=1e-12)


def test_blockiness_sees_the_jpeg_grid_and_equalize_removes_it():
    faces = make_faces(12, 64, seed=1)
    clean = np.array([blockiness(luma(f)) for f in faces])
    jpegs = np.array([blockiness(luma(jpeg(f, 75))) for f in faces])
    assert np.all(jpegs > clean) and abs(clean.mean() - 1) < 0.1
    # after the same resampling + JPEG for both, the old grid no longer separates them
    eq_real = np.array([blockiness(luma(equalize_jpeg(jpeg(f, 75), 90))) for f in faces])
    eq_fake = np.array([blockiness(luma(equalize_jpeg(f, 90))) for f in faces])
    assert abs(eq_real.mean() - eq_fake.mean()) < 0.25 * abs(jpegs.mean() - clean.mean())


@pytest.fixture
def jpeg_reals_png_fakes(tmp_path):
    """Real faces stored as JPEG (quality 75), generator samples as clean PNG: 40 each, 64 px."""
    faces = make_faces(80, 64, seed=0)
    real, fake = tmp_path / "real", tmp_path / "fake"
    real.mkdir()
    fake.mkdir()
    for i, arr in enumerate(faces[:40]):
        Image.fromarray(arr).save(real / f"{i:03d}.jpg", quality=75)
    for i, arr in enumerate(faces[40:]):
        Image.fromarray(arr).save(fake / f"{i:03d}.png")
    return real, fake


@pytest.mark.slow
def test_audit_warns_on_jpeg_reals_and_equalize_removes_the_leak(tmp_path, jpeg_reals_png_fakes, capsys):
    real, fake = jpeg_reals_png_fakes
    assert main(["study", "init", str(tmp_path / "s"), "--real", str(real), "--fake", str(fake),
                 "--trials", "4", "--json"]) == 0
    captured = capsys.readouterr()
    leak = json.loads(captured.out)["audit"]
    assert leak["real"] == 40 and leak["fake"] == 40
    assert leak["pipeline"]["auc"] > 0.9 and leak["pipeline"]["ci_low"] > 0.6
    assert "warning: the image files give the truth away: pipeline cues" in captured.err
    assert leak["pipeline"]["strongest"] in ("blockiness", "file_bytes")
    assert leak["pipeline"]["cues"]["blockiness"] > 0.6

    assert main(["study", "init", str(tmp_path / "e"), "--real", str(real), "--fake", str(fake),
                 "--trials", "4", "--equalize", "jpeg:90"]) == 0
    captured = capsys.readouterr()
    assert "give the truth away" not in captured.err and "leak audit (40 real, 40 fake" in captured.out
    assert main(["study", "audit", str(tmp_path / "e"), "--json"]) == 0
    leak = json.loads(capsys.readouterr().out)
    assert leak["pipeline"]["auc"] < 0.65 and leak["warning"] is None
    assert abs(leak["pipeline"]["cues"]["blockiness"] - 0.5) < 0.15
    assert 0 <= leak["generator"]["auc"] <= 1 and set(leak["generator"]["cues"]) >= {"laplacian_var", "saturation"}


def test_identical_pipelines_do_not_warn(tmp_path, capsys):
    save_npz(tmp_path / "real.npz", images=make_faces(16, 32, seed=0))
    save_npz(tmp_path / "fake.npz", images=make_faces(16, 32, seed=5))
    build_study(tmp_path / "s", str(tmp_path / "real.npz"), [str(tmp_path / "fake.npz")], trials=4, attention=1)
    assert main(["study", "audit", str(tmp_path / "s"), "--resamples", "100"]) == 0
    captured = capsys.readouterr()
    assert "leak audit (16 real, 16 fake" in captured.out and "pipeline cues:" in captured.out
    assert "warning" not in captured.err


@pytest.mark.parametrize("spec", ["png", "jpeg", "jpeg:0", "jpeg:100", "jpeg:x"])
def test_bad_equalize_is_one_line(tmp_path, jpeg_reals_png_fakes, capsys, spec):
    real, fake = jpeg_reals_png_fakes
    assert main(["study", "init", str(tmp_path / "s"), "--real", str(real), "--fake", str(fake),
                 "--equalize", spec]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "--equalize must be jpeg:Q" in err
    assert not (tmp_path / "s").exists()


def test_audit_of_a_folder_that_is_not_a_study_is_one_line(tmp_path, capsys):
    assert main(["study", "audit", str(tmp_path)]) == 2
    assert len(capsys.readouterr().err.strip().splitlines()) == 1


def test_grayscale_fakes_with_colour_reals_warn(tmp_path):
    faces = make_faces(16, 32, seed=0)
    gray = np.repeat(luma(faces[8:]).round().astype(np.uint8)[..., None], 3, axis=3)
    save_npz(tmp_path / "real.npz", images=faces[:8])
    save_npz(tmp_path / "gray.npz", images=gray)
    save_npz(tmp_path / "colour.npz", images=faces[8:])
    warnings: list[str] = []
    build_study(tmp_path / "s", str(tmp_path / "real.npz"), [str(tmp_path / "gray.npz"), str(tmp_path / "colour.npz")],
                trials=4, warn=warnings.append)
    colour = [w for w in warnings if "colour mode" in w]
    assert colour == ["colour mode differs: real images are colour but gray grayscale (8 of 8); colour alone tells "
                      "real from fake (convert one side, or use sources of one colour mode)"]
    warnings.clear()
    build_study(tmp_path / "t", str(tmp_path / "real.npz"), [str(tmp_path / "colour.npz")], trials=4,
                warn=warnings.append)
    assert not [w for w in warnings if "colour mode" in w]


def test_a_text_file_named_jpg_is_not_counted_as_an_image(tmp_path, capsys):
    faces = make_faces(10, 32, seed=0)
    real = tmp_path / "real"
    real.mkdir()
    for i, arr in enumerate(faces[:3]):
        Image.fromarray(arr).save(real / f"a{i}.png")
    (real / "b.jpg").write_text("not an image, just text\n")
    save_npz(tmp_path / "fake.npz", images=faces[3:])
    # fewer files than one participant needs: the count is of decodable images only
    assert main(["study", "init", str(tmp_path / "s"), "--real", str(real), "--fake", str(tmp_path / "fake.npz"),
                 "--trials", "10"]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1
    assert "3 image(s) (1 other file(s) skipped, not decodable images: b.jpg), but each participant needs 5" in err
    # exactly as many files as needed, one of them text: refused in one line, not a warning and an error
    assert main(["study", "init", str(tmp_path / "s"), "--real", str(real), "--fake", str(tmp_path / "fake.npz"),
                 "--trials", "8"]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "only 3 readable image(s) (1 corrupt), but each participant needs 4" in err
    # enough images: the study is built and the skipped file reported in one line
    assert main(["study", "init", str(tmp_path / "s"), "--real", str(real), "--fake", str(tmp_path / "fake.npz"),
                 "--trials", "6", "--no-audit"]) == 0
    err = capsys.readouterr().err
    assert [ln for ln in err.splitlines() if "b.jpg" in ln] == [ln for ln in err.splitlines() if "skipped" in ln]
    assert "skipped 1 corrupt image(s), e.g. b.jpg" in err
