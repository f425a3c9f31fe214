"""`ganeval demo` (what `make demo` runs) end to end with tiny settings."""
from __future__ import annotations

import pytest

import json

from ganeval.cli.main import main


@pytest.mark.slow
def test_demo_runs_every_step(tmp_path, capsys, inception_weights):
    out = tmp_path / "demo"
    code = main(["demo", "--out", str(out), "-n", "12", "--train-faces", "64", "--train-steps", "4",
                 "--device", "cpu", "--inception-weights", inception_weights,
                 "--participants", "3", "--study-trials", "8", "--bootstrap", "200"])
    text = capsys.readouterr().out
    assert code == 0, text
    assert "0 failed" in text and "1 skipped" in text  # only illustration2vec (no weights offline)
    fid = json.loads((out / "fid_inception.json").read_text())
    assert fid["faces_a_blur1"]["fid"] < fid["faces_a_blur2"]["fid"]
    assert (out / "dcgan-run" / "checkpoint.pt").is_file()
    assert (out / "nearest" / "summary.json").is_file() and (out / "nearest" / "neighbours.csv").is_file()
    assert "FID (Inception) of 12 generator samples" in text
    # the study, answered by simulated participants through the app's save path, and the report
    stats = json.loads((out / "report" / "stats.json").read_text())
    assert stats["study"]["overview"]["participants_by_kind"] == {"simulated": 3}
    assert stats["study"]["fleiss"]["images"] == 8  # everyone judged the same images
    assert stats["nearest"]["ranks"][0]["rank"] == 1 and len(stats["fid"]) == 4  # 3 face sets + the generator
    html = (out / "report" / "report.html").read_text()
    assert html.count('src="data:image/png;base64,') >= 8 and "Simulated participants" in html
    assert f"Open the report: {(out / 'report' / 'report.html').resolve()}" in text


def test_demo_offline_skips_in_one_line(tmp_path, capsys, monkeypatch):
    import ganeval.cli.demo as demo

    monkeypatch.setattr(demo, "_later_steps", lambda *a: [])  # the rest is covered above
    assert main(["demo", "--out", str(tmp_path / "d"), "-n", "8"]) == 0
    text = capsys.readouterr().out
    skipped = [line for line in text.splitlines() if line.strip().startswith("skipped (")]
    assert len(skipped) == 2 and all("pt_inception" in s or "illust2vec" in s for s in skipped)


def _quick_demo(monkeypatch):
    import ganeval.cli.demo as demo

    monkeypatch.setattr(demo, "_later_steps", lambda *a: [])  # the full run is covered above


def test_demo_refuses_a_folder_it_did_not_write(tmp_path, capsys, monkeypatch):
    _quick_demo(monkeypatch)
    out = tmp_path / "mine"
    out.mkdir()
    (out / "thesis.txt").write_text("four years of work")
    assert main(["demo", "--out", str(out), "-n", "8"]) == 2
    err = capsys.readouterr().err
    assert "not empty" in err and "--overwrite" in err and len(err.strip().splitlines()) == 1
    assert sorted(p.name for p in out.iterdir()) == ["thesis.txt"]  # refused before any work
    assert (out / "thesis.txt").read_text() == "four years of work"


def test_demo_reruns_into_its_own_output_and_keeps_other_files(tmp_path, capsys, monkeypatch):
    _quick_demo(monkeypatch)
    out = tmp_path / "demo-out"
    assert main(["demo", "--out", str(out), "-n", "8"]) == 0
    first = (out / "faces_a.npz").read_bytes()
    (out / "notes.txt").write_text("mine")
    (out / "faces_a_stale.npz").write_bytes(b"")  # not a demo name: kept too
    assert main(["demo", "--out", str(out), "-n", "16"]) == 0  # what `make demo` does twice
    assert (out / "notes.txt").read_text() == "mine" and (out / "faces_a_stale.npz").exists()
    assert (out / "faces_a.npz").read_bytes() != first  # replaced by the second run (16 faces)
    from ganeval.outputs import read_manifest

    manifest = read_manifest(out)
    assert manifest["command"] == "demo" and "faces_a.npz" in manifest["files"]
    assert "notes.txt" not in manifest["files"]


def test_demo_overwrite_writes_beside_user_files_but_never_over_them(tmp_path, capsys, monkeypatch):
    _quick_demo(monkeypatch)
    out = tmp_path / "shared"
    out.mkdir()
    (out / "thesis.txt").write_text("x")
    assert main(["demo", "--out", str(out), "-n", "8", "--overwrite"]) == 0
    assert (out / "thesis.txt").read_text() == "x" and (out / "faces_a.npz").is_file()

    clash = tmp_path / "clash"
    clash.mkdir()
    (clash / "faces_b.npz").write_bytes(b"user data")
    assert main(["demo", "--out", str(clash), "-n", "8", "--overwrite"]) == 2
    assert "faces_b.npz" in capsys.readouterr().err
    assert (clash / "faces_b.npz").read_bytes() == b"user data"


@pytest.mark.slow
def test_demo_calls_library_functions_not_its_own_command_line(tmp_path, capsys, monkeypatch):
    """Issue 14: every step calls the library function behind its command; no argv is parsed
    again and no JSON is read back from stdout (offline: the three FID steps skip)."""
    from pathlib import Path

    import ganeval.cli.demo as demo
    import ganeval.cli.main as cli_main

    source = Path(demo.__file__).read_text()
    assert not any(word in source for word in ("build_parser", "parse_args", "redirect_stdout", "json.loads"))
    args = cli_main.build_parser(["demo"]).parse_args(
        ["demo", "--out", str(tmp_path / "d"), "-n", "16", "--train-faces", "64", "--train-steps", "2",
         "--participants", "3", "--study-trials", "8", "--bootstrap", "50", "--device", "cpu"])

    def no_parser(*a, **k):
        raise AssertionError("the demo built the command-line parser")

    monkeypatch.setattr(cli_main, "build_parser", no_parser)
    assert args.func(args) == 0
    text = capsys.readouterr().out
    assert "6 step(s) ran, 3 skipped, 0 failed" in text, text
    out = tmp_path / "d"
    assert (out / "dcgan_samples.npz").is_file() and (out / "nearest" / "neighbours.csv").is_file()
    assert (out / "report" / "report.html").is_file() and "Open the report:" in text
