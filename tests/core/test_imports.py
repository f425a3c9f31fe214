"""Each command loads only what it uses: `ganeval fid` must not pay for faiss, scipy.stats,
pandas or streamlit, which other commands need (issue 16: 1.9 s of imports before any work)."""
from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

ROOT = Path(__file__).resolve().parents[2]

# never needed by `ganeval fid` (nor by `ganeval --help`)
NOT_FOR_FID = ("scipy", "sklearn", "pandas", "seaborn", "faiss", "streamlit", "statsmodels", "matplotlib",
               "skimage", "sqlalchemy", "nbformat", "ganeval.nearest", "ganeval.study_app", "ganeval.analysis",
               "ganeval.models")

PROBE = """
import json, sys
from ganeval.cli.main import build_parser, main
argv = json.loads(sys.argv[1])
code = main(argv) if sys.argv[2] == "run" else (build_parser(argv), 0)[1]
loaded = sorted({m for m in sys.modules for prefix in json.loads(sys.argv[3]) if m == prefix or m.startswith(prefix + ".")})
print("\\nLOADED " + json.dumps({"code": code, "loaded": loaded}))
"""


def _loaded(argv: list[str], mode: str, watch: tuple[str, ...]) -> dict:
    proc = subprocess.run([sys.executable, "-c", PROBE, json.dumps(argv), mode, json.dumps(watch)],
                          cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-2000:]
    return json.loads(proc.stdout.rsplit("LOADED ", 1)[1])


def test_catalog_matches_what_the_modules_register():
    """main.COMMANDS lists every command, in order, with the help line its module registers."""
    from ganeval.cli.main import COMMANDS, build_parser

    parser = build_parser()  # no argv: every module registers for real
    sub = next(a for a in parser._actions if a.__class__.__name__ == "_SubParsersAction")
    registered = [(a.dest, a.help) for a in sub._choices_actions]
    assert registered == [entry for _, commands in COMMANDS for entry in commands]


def test_top_level_help_imports_no_command():
    result = _loaded(["--help"], "parse", ("torch", "numpy", "PIL", *NOT_FOR_FID))
    assert result["loaded"] == []


@pytest.mark.slow
def test_fid_help_imports_only_what_fid_uses():
    assert _loaded(["fid", "--help"], "parse", NOT_FOR_FID)["loaded"] == []


@pytest.mark.slow
def test_fid_run_imports_only_what_fid_uses(tmp_path, inception_weights, faces32):
    for name, part in (("a", faces32[:2]), ("b", faces32[2:4])):
        np.savez(tmp_path / f"{name}.npz", images=part)
    argv = ["fid", str(tmp_path / "a.npz"), str(tmp_path / "b.npz"), "--weights", inception_weights,
            "--device", "cpu", "--num-workers", "0", "--no-cache", "--json"]
    result = _loaded(argv, "run", NOT_FOR_FID)
    assert result == {"code": 0, "loaded": []}


def test_other_commands_still_parse():
    """A command outside the first module still gets its real parser (not the stub)."""
    from ganeval.cli.main import build_parser

    for argv in (["models"], ["upscale-compare", "--help"]):
        parser = build_parser(argv)
        sub = next(a for a in parser._actions if a.__class__.__name__ == "_SubParsersAction")
        assert sub.choices[argv[0]].get_default("func") is not None
        assert sub.choices["fid"].get_default("func") is None  # a stub: ganeval.cli.fid not imported
