"""The CLI and the output policy under hostile input: special files as outputs, hard links of
inputs, file names that are not UTF-8, corrupt archives, and what an interrupt prints."""
from __future__ import annotations

import json
import os
import stat
import sys

import numpy as np
import pytest
from PIL import Image

from ganeval import atomic
from ganeval.cli.main import main
from ganeval.errors import GanevalError
from ganeval.models.checkpoint import save_checkpoint
from ganeval.models.registry import build_models, get_family
from ganeval.outputs import MANIFEST, OutputRefused, check_output_file, prepare_output_dir


def _specials(tmp_path) -> list:
    """A FIFO always; a character device (the kernel's /dev/null, 1:3) where we may make one."""
    fifo = tmp_path / "fifo"
    os.mkfifo(fifo)
    made = [fifo]
    try:
        os.mknod(tmp_path / "null", stat.S_IFCHR | 0o666, os.makedev(1, 3))
        made.append(tmp_path / "null")
    except (PermissionError, OSError):
        pass
    return made


def _unchanged(path) -> bool:
    mode = os.lstat(path).st_mode
    return stat.S_ISFIFO(mode) or stat.S_ISCHR(mode)


def _tiny_checkpoint(path) -> None:
    cfg = get_family("dcgan").config(32, 3, width=4)
    G, D = build_models(cfg)
    save_checkpoint(path, {"model": "dcgan", "config": {"model": cfg.to_dict(), "train": {}}, "step": 0,
                           "G": G.state_dict(), "D": D.state_dict(), "G_ema": G.state_dict()})


def test_special_files_are_never_outputs_even_with_overwrite(tmp_path):
    for special in _specials(tmp_path):
        link = tmp_path / f"{special.name}.npz"
        link.symlink_to(special)
        for target in (special, link):
            with pytest.raises(OutputRefused, match="not a regular file"):
                check_output_file(target, overwrite=True)
            with pytest.raises(OutputRefused, match="not a regular file"):
                prepare_output_dir(target, "sample", overwrite=True)
            with pytest.raises(GanevalError, match="not a regular file"):
                atomic.write_bytes(target, b"x")  # the last line of defence, at the rename
        assert _unchanged(special)


@pytest.mark.parametrize("argv", [
    ["fid", "{img}", "{img}", "--save-stats", "{special}", "--overwrite"],
    ["fid", "{img}", "{img}", "--save-features", "{special}", "--overwrite"],
    ["sample", "{ckpt}", "-n", "2", "-o", "{special}.npz", "--overwrite"],
    ["interpolate", "{ckpt}", "--seeds", "0,1", "--frames", "2", "-o", "{special}.gif", "--overwrite"],
])
def test_commands_refuse_special_outputs_before_work(tmp_path, capsys, argv):
    img = tmp_path / "img"
    img.mkdir()
    for i in range(2):
        Image.fromarray(np.full((16, 16, 3), 40 * i, np.uint8)).save(img / f"{i}.png")
    _tiny_checkpoint(tmp_path / "ckpt.pt")
    for special in _specials(tmp_path):
        name = special.name
        if argv[-2].startswith("{special}."):  # a device reached through a name with the expected suffix
            (tmp_path / f"{name}{argv[-2][9:]}").symlink_to(special)
        args = [a.format(img=img, ckpt=tmp_path / "ckpt.pt", special=special) for a in argv]
        assert main(args) == 2
        err = capsys.readouterr().err
        assert err.count("\n") == 1 and "not a regular file" in err, err
        assert _unchanged(special)


def test_a_hard_link_of_an_input_is_the_input(tmp_path):
    data = tmp_path / "faces.npz"
    data.write_bytes(b"x")
    os.link(data, tmp_path / "alias.npz")
    with pytest.raises(OutputRefused, match="same file as the input"):
        check_output_file(tmp_path / "alias.npz", [data], overwrite=True)


def test_overwrite_keeps_the_other_commands_ownership(tmp_path):
    out = tmp_path / "out"
    first = prepare_output_dir(out, "sample")
    first.claim("a.png").write_bytes(b"1")
    first.record("a.png")
    second = prepare_output_dir(out, "nearest", overwrite=True)
    second.claim("summary.json").write_text("{}")
    second.record("summary.json")
    manifest = json.loads((out / MANIFEST).read_text())
    assert manifest["others"] == {"sample": ["a.png"]}
    third = prepare_output_dir(out, "sample", overwrite=True)  # sample still owns (and replaces) a.png
    assert not (out / "a.png").exists() and (out / "summary.json").exists()
    with pytest.raises(OutputRefused, match="did not write"):
        third.claim("summary.json")
    assert json.loads((out / MANIFEST).read_text())["others"] == {"nearest": ["summary.json"]}


def _non_utf8_faces(folder, tag: bytes, n: int, seed: int) -> list[bytes]:
    folder.mkdir()
    rng = np.random.default_rng(seed)
    names = []
    for i in range(n):
        name = b"face%d%s.png" % (i, tag)
        Image.fromarray((rng.random((32, 32, 3)) * 255).astype(np.uint8)).save(
            os.path.join(os.fsencode(folder), name))
        names.append(name)
    return names


@pytest.mark.skipif(sys.platform == "darwin", reason="macOS file systems refuse names that are not UTF-8")
def test_names_that_are_not_utf8_round_trip_through_nearest(tmp_path, capsys):
    gen_names = _non_utf8_faces(tmp_path / "gen", b"\xff", 3, 0)
    train_names = _non_utf8_faces(tmp_path / "train", b"\xfe", 8, 1)
    assert main(["nearest", str(tmp_path / "gen"), str(tmp_path / "train"), "-k", "2",
                 "-o", str(tmp_path / "out"), "--device", "cpu"]) == 0
    rows = (tmp_path / "out" / "neighbours.csv").read_bytes().splitlines()[1:]
    assert {r.split(b",")[0] for r in rows} == set(gen_names)  # the file system's bytes, as they were
    assert {r.split(b",")[2] for r in rows} <= set(train_names)
    json.loads((tmp_path / "out" / "summary.json").read_text())


@pytest.mark.skipif(sys.platform == "darwin", reason="macOS file systems refuse names that are not UTF-8")
def test_names_that_are_not_utf8_are_stored_escaped_by_study_init(tmp_path):
    _non_utf8_faces(tmp_path / "gen", b"\xff", 6, 0)
    _non_utf8_faces(tmp_path / "real", b"\xfe", 8, 1)
    assert main(["study", "init", str(tmp_path / "study"), "--real", str(tmp_path / "real"), "--fake",
                 str(tmp_path / "gen"), "--trials", "4", "--qualification", "2", "--attention", "0",
                 "--no-audit"]) == 0


def test_corrupt_and_empty_npz_name_the_file(tmp_path, capsys, inception_weights):
    bad = tmp_path / "bad.npz"
    bad.write_bytes(os.urandom(300))
    empty = tmp_path / "empty.npz"
    np.savez(empty, images=np.zeros((0, 8, 8, 3), np.uint8))
    for path, said in ((bad, "not a readable .npz file"), (empty, "holds 0 images")):
        assert main(["fid", str(path), str(path), "--weights", inception_weights, "--device", "cpu"]) == 2
        err = capsys.readouterr().err.strip().splitlines()[-1]
        assert str(path) in err and said in err, err


def test_a_bare_interrupt_says_what_happened(capsys, monkeypatch):
    import ganeval.cli.main as cli

    def stop(args):
        raise KeyboardInterrupt

    parser = cli.build_parser(["models"])
    monkeypatch.setattr(cli, "build_parser", lambda *argv: parser)
    args = parser.parse_args(["models"])
    monkeypatch.setattr(parser, "parse_args", lambda argv=None: type(args)(**{**vars(args), "func": stop}))
    assert cli.main(["models"]) == 130
    err = capsys.readouterr().err.strip()
    assert err.startswith("ganeval models: interrupted") and len(err) > len("ganeval models: interrupted")


def test_study_init_checks_the_upscaler_before_work(tmp_path, capsys):
    _non_utf8_faces(tmp_path / "gen", b"", 6, 0)
    _non_utf8_faces(tmp_path / "real", b"", 8, 1)
    bad = tmp_path / "unreadable.pt"
    bad.write_bytes(b"\x00not a checkpoint" * 20)
    dcgan = tmp_path / "dcgan.pt"
    _tiny_checkpoint(dcgan)
    for ckpt, said in ((bad, "not a readable checkpoint"), (dcgan, "not an SRGAN")):
        assert main(["study", "init", str(tmp_path / "study"), "--real", str(tmp_path / "real"), "--fake",
                     str(tmp_path / "gen"), "--trials", "4", "--qualification", "2", "--upscaler",
                     f"srgan:{ckpt}"]) == 2
        assert said in capsys.readouterr().err
        assert not (tmp_path / "study").exists()
