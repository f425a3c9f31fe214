"""Property (issue 12): whatever the output path is relative to the inputs (the same path, a
parent, a child, an existing file, a non-empty folder, a symlink to an input or through a
symlinked folder), with or without --overwrite, no input byte and no user's file changes, and
the command exits 0 or 2: never 1, never a traceback."""
from __future__ import annotations

import hashlib
import shutil
import tempfile
import types
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from ganeval.cli.main import main
from ganeval.models.checkpoint import save_checkpoint
from ganeval.models.registry import build_models, get_family
from ganeval.synth import write_faces

pytestmark = pytest.mark.usefixtures("one_torch_thread")

RELATIONS = ("new", "same", "parent", "child", "existing_file", "non_empty_folder", "symlink_to_input",
             "through_symlinked_folder")
COMMANDS = ("fid", "sample", "upscale", "nearest", "synth-faces")


@pytest.fixture(scope="module")
def inputs(tmp_path_factory) -> Path:
    """One copy of every command's inputs; each example works on a fresh copy."""
    root = tmp_path_factory.mktemp("inputs")
    np.savez(root / "stats.npz", mu=np.zeros(4), sigma=np.eye(4))
    cfg = get_family("dcgan").config(32, 3, width=4)
    G, D = build_models(cfg)
    save_checkpoint(root / "checkpoint.pt", {"model": "dcgan", "config": {"model": cfg.to_dict(), "train": {}},
                                             "step": 0, "G": G.state_dict(), "D": D.state_dict(),
                                             "G_ema": G.state_dict()})
    write_faces(root / "imgs", 2, 32, seed=1)
    write_faces(root / "train", 6, 32, seed=2)
    (root / "user").mkdir()
    (root / "user" / "notes.txt").write_text("a user's folder: synth-faces has no input, so this stands in")
    return root


def _hash_files(files: list[Path]) -> dict[str, str]:
    return {str(f): hashlib.sha256(f.read_bytes()).hexdigest() for f in files}


def _guarded(ws: Path) -> list[Path]:
    """Inputs and users' files: never to change."""
    return sorted(p for p in (ws / "in").rglob("*") if p.is_file()) + [ws / "other" / "full" / "keep.txt"]


def _output(ws: Path, primary: Path, relation: str, suffix: str) -> Path:
    if relation == "new":
        return ws / f"new{suffix}"
    if relation == "same":
        return primary
    if relation == "parent":
        return primary.parent
    if relation == "child":
        return primary / f"sub{suffix}"
    if relation == "existing_file":
        return ws / "other" / "existing.npz"
    if relation == "non_empty_folder":
        return ws / "other" / "full"
    if relation == "symlink_to_input":
        link = ws / f"link{suffix}"
        link.symlink_to(primary)
        return link
    link = ws / "linked_in"  # through_symlinked_folder: the input again, by another path
    link.symlink_to(ws / "in", target_is_directory=True)
    return link / primary.name


def _argv(command: str, ws: Path, relation: str, overwrite: bool) -> list[str]:
    src = ws / "in"
    primary = {"fid": src / "stats.npz", "sample": src / "checkpoint.pt", "upscale": src / "imgs",
               "nearest": src / "train", "synth-faces": src / "user"}[command]
    suffix = ".npz" if command in ("fid",) else ""
    out = str(_output(ws, primary, relation, suffix))
    flags = ["--overwrite"] if overwrite else []
    if command == "fid":
        return ["fid", str(primary), "--save-stats", out, "--device", "cpu", *flags]
    if command == "sample":
        return ["sample", str(primary), "-n", "2", "--batch-size", "2", "--device", "cpu", "-o", out, *flags]
    if command == "upscale":
        return ["upscale", str(primary), "-o", out, "--method", "bicubic", "--scale", "2", *flags]
    if command == "nearest":
        return ["nearest", str(src / "imgs"), str(primary), "-k", "1", "--exact", "--num-workers", "0",
                "--contact-sheets", "1", "-o", out, *flags]
    return ["synth-faces", out, "-n", "2", "--size", "32", *flags]


@pytest.fixture()
def fake_extractor(monkeypatch):
    """fid reads statistics files here; the feature network is never used, so skip loading it."""
    import ganeval.api as api
    from ganeval.features.base import ExtractorInfo

    info = ExtractorInfo(name="inception", dim=2048, input_size=299, weights_id="test", standard=True)
    monkeypatch.setattr(api, "build_extractor", lambda *a, **k: types.SimpleNamespace(info=info))


@settings(max_examples=25, deadline=None, database=None,  # nothing written into the repository
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(command=st.sampled_from(COMMANDS), relation=st.sampled_from(RELATIONS), overwrite=st.booleans())
def test_no_input_byte_changes_and_exit_is_0_or_2(inputs, fake_extractor, capsys, command, relation, overwrite):
    with tempfile.TemporaryDirectory() as tmp:
        ws = Path(tmp)
        shutil.copytree(inputs, ws / "in", symlinks=True)
        (ws / "other" / "full").mkdir(parents=True)
        (ws / "other" / "full" / "keep.txt").write_text("keep me")
        np.savez(ws / "other" / "existing.npz", images=np.zeros((1, 4, 4, 3), np.uint8))
        guarded = _guarded(ws)
        before = _hash_files(guarded)
        argv = _argv(command, ws, relation, overwrite)
        code = main(argv)
        err = capsys.readouterr().err
        assert code in (0, 2), (argv, err)
        assert "Traceback" not in err
        if code == 2:
            assert err.strip().splitlines()[-1].startswith(f"ganeval {command}: error:"), err
        assert _hash_files(guarded) == before, argv
        assert all(p.is_file() for p in guarded)
