"""Issue 12: every writing command refuses, before any work, to damage an input or a user's
file; interrupted outputs are complete or absent and ``--resume`` finishes them exactly.

Each refused or interrupted command hashes its inputs before and after."""
from __future__ import annotations

import hashlib
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from ganeval.cli.main import main
from ganeval.images import decode_image
from ganeval.models.checkpoint import save_checkpoint
from ganeval.models.registry import build_models, get_family
from ganeval.outputs import MANIFEST
from ganeval.synth import write_faces

pytestmark = pytest.mark.usefixtures("one_torch_thread")


def tree_hash(*paths: Path) -> str:
    """Every byte and name under the paths (files or folders)."""
    h = hashlib.sha256()
    for root in paths:
        files = sorted(p for p in Path(root).rglob("*") if p.is_file()) if Path(root).is_dir() else [Path(root)]
        for f in files:
            h.update(str(f).encode())
            h.update(f.read_bytes())
    return h.hexdigest()


def one_line_error(capsys, code: int = 2) -> str:
    err = capsys.readouterr().err
    assert "Traceback" not in err and len(err.strip().splitlines()) == 1, err
    return err


@pytest.fixture(scope="module")
def ckpt(tmp_path_factory) -> Path:
    """An untrained 32-px DCGAN: sampling needs no training."""
    path = tmp_path_factory.mktemp("run") / "checkpoint.pt"
    cfg = get_family("dcgan").config(32, 3, width=4)
    G, D = build_models(cfg)
    save_checkpoint(path, {"model": "dcgan", "config": {"model": cfg.to_dict(), "train": {}}, "step": 0,
                           "G": G.state_dict(), "D": D.state_dict(), "G_ema": G.state_dict()})
    return path


@pytest.fixture()
def imgs(tmp_path) -> Path:
    folder = tmp_path / "imgs"
    write_faces(folder, 6, 32, seed=1)
    return folder


def pngs(folder: Path) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in sorted(folder.glob("*.png"))}


# ------------------------------------------------------------------ items 1, 3, 4, 5, 9: refuse before the work

def test_fid_save_stats_never_replaces_an_input_or_a_users_file(tmp_path, capsys):
    data = tmp_path / "faces.npz"
    np.savez(data, images=np.zeros((2, 8, 8, 3), np.uint8))
    notes = tmp_path / "notes.txt"
    notes.write_text("my notes")
    before = tree_hash(tmp_path)
    assert main(["fid", str(data), "--save-stats", str(data), "--device", "cpu"]) == 2
    assert "is the input" in one_line_error(capsys)
    assert main(["fid", str(data), "--save-stats", str(notes), "--device", "cpu"]) == 2
    assert "--overwrite" in one_line_error(capsys)
    assert main(["fid", str(data), str(data), "--save-stats", str(tmp_path / "a.npz"), "--save-stats",
                 str(tmp_path / "." / "a.npz")]) == 2
    assert "given twice" in one_line_error(capsys)
    assert tree_hash(tmp_path) == before


@pytest.mark.slow
def test_fid_save_stats_overwrite_replaces_the_file(tmp_path, capsys, inception_weights):
    data = tmp_path / "faces.npy"
    np.save(data, write_faces_array(4))
    stats = tmp_path / "stats.npz"
    stats.write_text("old")
    assert main(["fid", str(data), "--save-stats", str(stats), "--overwrite", "--weights", inception_weights,
                 "--device", "cpu", "--num-workers", "0", "--no-cache"]) == 0
    assert set(np.load(stats)) >= {"mu", "sigma"}


def write_faces_array(n: int) -> np.ndarray:
    from ganeval.synth import make_faces

    return make_faces(n, 32, seed=3)


@pytest.mark.parametrize("command", ["upscale", "translate"])
def test_image_maps_never_write_into_their_source(command, imgs, tmp_path, capsys):
    extra = ["-g", str(tmp_path / "run")] if command == "translate" else ["--method", "lanczos"]
    before = tree_hash(imgs)
    for out in (imgs, imgs / "sub", tmp_path):
        assert main([command, str(imgs), "-o", str(out), "--overwrite", *extra]) == 2
        assert "the input" in one_line_error(capsys)
    one = imgs / "face_000000.png"
    assert main([command, str(one), "-o", str(one), "--overwrite", *extra]) == 2
    assert "is the input" in one_line_error(capsys)
    assert tree_hash(imgs) == before


def test_upscale_refuses_a_non_empty_folder_and_an_existing_file_before_working(imgs, tmp_path, capsys):
    out = tmp_path / "big"
    out.mkdir()
    (out / "thesis.txt").write_text("mine")
    (out / "face_000000.png").write_bytes(b"my own picture")
    before = tree_hash(imgs, out)
    assert main(["upscale", str(imgs), "-o", str(out), "--method", "lanczos"]) == 2
    assert "not empty" in one_line_error(capsys)
    # --overwrite still never replaces a file ganeval did not write
    assert main(["upscale", str(imgs), "-o", str(out), "--method", "lanczos", "--overwrite"]) == 2
    assert "did not write it" in one_line_error(capsys)
    existing = tmp_path / "one.png"
    existing.write_bytes(b"keep")
    assert main(["upscale", str(imgs / "face_000001.png"), "-o", str(existing), "--method", "lanczos"]) == 2
    assert "already exists" in one_line_error(capsys)
    assert tree_hash(imgs, out) == before and existing.read_bytes() == b"keep"
    assert main(["upscale", str(imgs / "face_000001.png"), "-o", str(existing), "--method", "lanczos",
                 "--overwrite"]) == 0
    assert decode_image(existing).shape == (128, 128, 3)


def test_upscale_overwrite_replaces_only_its_own_outputs(imgs, tmp_path, capsys):
    out = tmp_path / "big"
    assert main(["upscale", str(imgs), "-o", str(out), "--method", "lanczos", "--prefix", "a"]) == 0
    assert len(pngs(out)) == 6 and json.loads((out / MANIFEST).read_text())["command"] == "upscale"
    (out / "thesis.txt").write_text("mine")
    assert main(["upscale", str(imgs), "-o", str(out), "--method", "lanczos", "--prefix", "b", "--overwrite"]) == 0
    assert sorted(pngs(out)) == [f"b_face_{i:06d}.png" for i in range(6)]  # a_* were this command's: removed
    assert (out / "thesis.txt").read_text() == "mine"


def test_sample_refuses_an_existing_npz_and_overwrite_replaces_it(ckpt, tmp_path, capsys):
    faces = tmp_path / "faces.npz"
    np.savez(faces, images=np.ones((3, 8, 8, 3), np.uint8))
    before = tree_hash(faces, ckpt)
    assert main(["sample", str(ckpt), "-n", "4", "-o", str(faces)]) == 2
    assert "already exists" in one_line_error(capsys)
    assert main(["sample", str(ckpt), "-n", "4", "-o", str(ckpt)]) == 2
    assert "is the input" in one_line_error(capsys)
    assert main(["sample", str(ckpt), "-n", "4", "-o", str(ckpt.parent), "--overwrite"]) == 2
    assert "the input" in one_line_error(capsys)
    assert tree_hash(faces, ckpt) == before
    assert main(["sample", str(ckpt), "-n", "4", "-o", str(faces), "--overwrite", "--device", "cpu"]) == 0
    assert np.load(faces)["images"].shape == (4, 32, 32, 3)


@pytest.fixture()
def nn_sets(tmp_path) -> dict[str, Path]:
    from ganeval.synth import make_faces

    paths = {"gen": tmp_path / "gen", "train": tmp_path / "train"}
    write_faces(paths["gen"], 6, 32, seed=1)
    write_faces(paths["train"], 12, 32, seed=2)
    np.save(tmp_path / "train.npy", make_faces(12, 32, seed=2))
    return paths


def _nearest(sets, out, *extra) -> list[str]:
    return ["nearest", str(sets["gen"]), str(sets["train"]), "-k", "2", "--exact", "--num-workers", "0",
            "-o", str(out), *extra]


def test_nearest_never_writes_among_its_inputs_or_onto_a_file(nn_sets, tmp_path, capsys):
    before = tree_hash(tmp_path)
    for out in (nn_sets["train"], nn_sets["train"] / "x", nn_sets["gen"], tmp_path):
        assert main(_nearest(nn_sets, out, "--overwrite")) == 2
        assert "the input" in one_line_error(capsys)
    existing = tmp_path / "train.npy"
    assert main(_nearest(nn_sets, existing)) == 2
    assert "is a file" in one_line_error(capsys)  # item 9: refused up front, not FileExistsError at the end
    assert tree_hash(tmp_path) == before


@pytest.mark.slow
def test_nearest_overwrite_removes_the_earlier_runs_stale_outputs(nn_sets, tmp_path, capsys):
    out = tmp_path / "nn"
    assert main(_nearest(nn_sets, out, "--contact-sheets", "6", "--mean-all")) == 0
    capsys.readouterr()
    first = json.loads((out / MANIFEST).read_text())["files"]
    assert "mean_ssim.csv" in first and any(f.startswith("contact_sheets/") for f in first)
    (out / "my_notes.txt").write_text("mine")
    assert main(_nearest(nn_sets, out, "--contact-sheets", "0")) == 2
    assert "not empty" in one_line_error(capsys)
    assert main(_nearest(nn_sets, out, "--contact-sheets", "0", "--overwrite")) == 0
    left = sorted(p.relative_to(out).as_posix() for p in out.rglob("*") if p.is_file())
    assert left == sorted([MANIFEST, "my_notes.txt", "neighbours.csv", "ssim_hist.png", "summary.json"])


def test_nearest_refuses_to_replace_a_users_file_with_an_output_name(nn_sets, tmp_path, capsys):
    out = tmp_path / "nn"
    out.mkdir()
    (out / "summary.json").write_text("{\"mine\": 1}")
    assert main(_nearest(nn_sets, out, "--overwrite")) == 2
    assert "did not write" in one_line_error(capsys)
    assert (out / "summary.json").read_text() == "{\"mine\": 1}"


def test_other_commands_refuse_existing_outputs(ckpt, imgs, tmp_path, capsys):
    taken = tmp_path / "taken.png"
    taken.write_bytes(b"mine")
    gif = tmp_path / "walk.gif"
    gif.write_bytes(b"mine")
    full = tmp_path / "full"
    full.mkdir()
    (full / "x.txt").write_text("mine")
    before = tree_hash(tmp_path)
    cases = [
        (["interpolate", str(ckpt), "--seeds", "1,2", "-o", str(gif)], "already exists"),
        (["inspect", str(ckpt), "-o", str(full)], "not empty"),
        (["inspect", str(ckpt), "-o", str(ckpt.parent)], "the input"),
        (["synth-faces", str(full), "-n", "2"], "not empty"),
        (["synth-faces", str(taken.with_suffix(".npz")), "-n", "2"], None),  # new file: fine
        (["upscale-compare", str(imgs), "-o", str(taken)], "already exists"),
        (["report", "--nearest", str(full), "-o", str(full)], "the input"),
        (["weights", "convert-illust2vec", str(taken), "-o", str(taken)], "is the input"),
    ]
    for argv, message in cases:
        if message is None:
            continue
        assert main(argv) == 2, argv
        assert message in one_line_error(capsys), argv
    assert tree_hash(tmp_path) == before


def test_inspect_overwrite_replaces_its_own_files(ckpt, tmp_path, capsys):
    out = tmp_path / "insp"
    assert main(["inspect", str(ckpt), "-o", str(out), "--max-channels", "2", "--device", "cpu"]) == 0
    files = json.loads((out / MANIFEST).read_text())["files"]
    assert "index.html" in files and "output.png" in files
    capsys.readouterr()
    assert main(["inspect", str(ckpt), "-o", str(out), "--max-channels", "2", "--device", "cpu"]) == 2
    one_line_error(capsys)
    assert main(["inspect", str(ckpt), "-o", str(out), "--max-channels", "2", "--device", "cpu", "--overwrite"]) == 0


def test_synth_faces_overwrite_never_replaces_a_users_face_file(tmp_path, capsys):
    out = tmp_path / "faces"
    assert main(["synth-faces", str(out), "-n", "3", "--size", "32"]) == 0
    assert main(["synth-faces", str(out), "-n", "2", "--size", "32", "--overwrite"]) == 0
    assert sorted(pngs(out)) == ["face_000000.png", "face_000001.png"]
    (out / "face_000009.png").write_bytes(b"mine")
    capsys.readouterr()
    assert main(["synth-faces", str(out), "-n", "2", "--size", "32", "--overwrite"]) == 2
    assert "did not write" in one_line_error(capsys)
    assert (out / "face_000009.png").read_bytes() == b"mine"


# ------------------------------------------------------------------ item 15: interrupts and --resume

class _Interrupt:
    """Wraps a batch iterator: Ctrl-C (KeyboardInterrupt in the main thread) after ``after`` batches."""

    def __init__(self, real, after: int):
        self.real, self.after = real, after

    def __call__(self, *args, **kwargs):
        for i, batch in enumerate(self.real(*args, **kwargs)):
            if i == self.after:
                raise KeyboardInterrupt
            yield batch


def test_interrupted_sample_says_how_many_and_resume_equals_an_uninterrupted_run(ckpt, tmp_path, capsys,
                                                                                 monkeypatch):
    from ganeval.generators import Generator

    whole, part = tmp_path / "whole", tmp_path / "part"
    argv = ["sample", str(ckpt), "-n", "10", "--batch-size", "3", "--seed", "4", "--device", "cpu"]
    assert main(argv + ["-o", str(whole)]) == 0
    capsys.readouterr()
    before = tree_hash(ckpt)
    real = Generator.sample
    monkeypatch.setattr(Generator, "sample", lambda self, *a, **k: _Interrupt(real, after=2)(self, *a, **k))
    assert main(argv + ["-o", str(part)]) == 130
    err = one_line_error(capsys)
    assert "interrupted after writing 6 of 10 images" in err and "--resume" in err
    assert len(pngs(part)) == 6
    monkeypatch.setattr(Generator, "sample", real)
    assert main(argv + ["-o", str(part)]) == 2  # a plain rerun refuses, and says what to do
    assert "--resume" in one_line_error(capsys)
    assert main(argv + ["-o", str(part), "--seed", "5", "--resume"]) == 2  # other settings: refused
    assert "other settings" in one_line_error(capsys)
    (part / "000007.png").write_bytes(pngs(whole)["000007.png"])  # written after the last manifest save
    assert main(argv + ["-o", str(part), "--resume"]) == 0
    assert "wrote 3 images (7 kept" in capsys.readouterr().err
    assert pngs(part) == pngs(whole)
    assert tree_hash(ckpt) == before
    assert main(argv + ["-o", str(part), "--overwrite"]) == 0 and pngs(part) == pngs(whole)


def test_interrupted_upscale_keeps_complete_files_and_resumes(imgs, tmp_path, capsys, monkeypatch):
    import ganeval.imagewrite as imagewrite

    argv = ["upscale", str(imgs), "--method", "bicubic", "--scale", "2"]
    assert main(argv + ["-o", str(tmp_path / "whole")]) == 0
    capsys.readouterr()
    calls = {"n": 0}
    real = imagewrite.encode_png

    def flaky(img):
        calls["n"] += 1
        if calls["n"] == 4:
            raise KeyboardInterrupt
        return real(img)

    monkeypatch.setattr(imagewrite, "encode_png", flaky)
    before = tree_hash(imgs)
    part = tmp_path / "part"
    assert main(argv + ["-o", str(part)]) == 130
    assert "interrupted after writing 3 of 6 image(s)" in one_line_error(capsys)
    assert len(pngs(part)) == 3 and not [p for p in part.iterdir() if p.name.startswith(".face")]  # no temp files
    monkeypatch.setattr(imagewrite, "encode_png", real)
    assert main(argv + ["-o", str(part), "--resume"]) == 0
    assert "wrote 3 image(s) (3 kept" in capsys.readouterr().err
    assert pngs(part) == pngs(tmp_path / "whole")
    assert tree_hash(imgs) == before


@pytest.mark.slow
def test_sigterm_and_sigint_on_a_real_sample_process(ckpt, tmp_path):
    """A real signal to a real process: exit 143/130, one line with the count, complete files only."""
    for sig, code in ((signal.SIGTERM, 143), (signal.SIGINT, 130)):
        out = tmp_path / f"out{code}"
        env = dict(os.environ, GANEVAL_QUIET="1", OMP_NUM_THREADS="1")
        proc = subprocess.Popen([sys.executable, "-m", "ganeval", "sample", str(ckpt), "-n", "200000",
                                 "--batch-size", "20", "--device", "cpu", "-o", str(out)],
                                stderr=subprocess.PIPE, text=True, env=env)
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and len(list(out.glob("*.png"))) < 40:
            time.sleep(0.05)
        proc.send_signal(sig)
        _, err = proc.communicate(timeout=60)
        assert proc.returncode == code, err
        assert "interrupted after writing" in err and "Traceback" not in err
        n = int(err.split("interrupted after writing ")[1].split()[0])
        files = sorted(out.glob("*.png"))
        assert len(files) == n and all(decode_image(f).shape == (32, 32, 3) for f in files)
