"""`ganeval demo` (what `make demo` runs) end to end with tiny settings."""
from __future__ import annotations

import json

from ganeval.cli.main import main


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
