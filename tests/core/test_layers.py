"""The layer contract (pyproject.toml [tool.importlinter]) holds, and a user's own ``models.py``
or ``models/`` in the working directory shadows nothing.

import-linter reads packages from the file system; in the repository models/, study_app/ and
analysis/ sit beside ganeval/ and are mapped into it at install time, so the check runs on a
copy laid out as installed (ganeval/models/, ...), under pytest's tmp path."""
from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

ROOT = Path(__file__).resolve().parents[2]
MAPPED = {"models": "models", "study_app": "study_app", "analysis": "analysis"}  # folder → ganeval.<name>
LINT = "import sys; from importlinter.cli import lint_imports_command; sys.exit(lint_imports_command())"


def installed_layout(dest: Path) -> Path:
    """ganeval/ with models/, study_app/, analysis/ inside it, and the pyproject (the contract)."""
    ignore = shutil.ignore_patterns("__pycache__", "*.pyc")
    # ganeval/models etc. in the repository are links to the top-level folders: copy the folders
    shutil.copytree(ROOT / "ganeval", dest / "ganeval",
                    ignore=shutil.ignore_patterns("__pycache__", "*.pyc", *MAPPED.values()))
    for folder, name in MAPPED.items():
        shutil.copytree(ROOT / folder, dest / "ganeval" / name, ignore=ignore)
    shutil.copy(ROOT / "pyproject.toml", dest / "pyproject.toml")
    return dest


def lint_imports(root: Path) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-c", LINT, "--no-cache"], cwd=root, capture_output=True, text=True,
                          timeout=300)


def test_the_layer_contract_holds(tmp_path):
    res = lint_imports(installed_layout(tmp_path))
    assert res.returncode == 0, res.stdout + res.stderr
    assert "0 broken" in res.stdout


def test_the_layer_contract_holds_in_the_repository():
    """`lint-imports` run in a checkout sees the same graph (ganeval/models etc. link the folders)."""
    res = lint_imports(ROOT)
    assert res.returncode == 0, res.stdout + res.stderr
    assert "0 broken" in res.stdout and "ignore" not in res.stdout.lower()


def test_the_contract_catches_the_core_importing_a_model(tmp_path):
    root = installed_layout(tmp_path)
    with open(root / "ganeval" / "ssim.py", "a") as fh:
        fh.write("\n\ndef _sneaky():\n    from ganeval.models.sampling import to_uint8  # noqa: F401\n")
    res = lint_imports(root)
    assert res.returncode != 0
    assert "ganeval.ssim -> ganeval.models.sampling" in res.stdout


def test_the_contract_catches_a_cycle_in_the_core(tmp_path):
    root = installed_layout(tmp_path)
    with open(root / "ganeval" / "atomic.py", "a") as fh:
        fh.write("\n\ndef _sneaky():\n    from ganeval import outputs  # noqa: F401\n")
    res = lint_imports(root)
    assert res.returncode != 0 and "No cycles are allowed in ganeval" in res.stdout


def _shadowing_folder(tmp_path: Path, package: bool) -> Path:
    """A working directory with the user's own models/study_app/analysis that must not be imported."""
    work = tmp_path / ("pkg" if package else "mod")
    work.mkdir()
    for name in ("models", "study_app", "analysis", "cli"):
        body = f"raise RuntimeError('the user\\'s own {name} was imported')\n"
        if package:
            (work / name).mkdir()
            (work / name / "__init__.py").write_text(body)
        else:
            (work / f"{name}.py").write_text(body)
    return work


def _ganeval(work: Path, *argv: str) -> subprocess.CompletedProcess:
    # `python -m` puts the working directory first on sys.path: the worst case for shadowing
    return subprocess.run([sys.executable, "-m", "ganeval", *argv], cwd=work, capture_output=True, text=True,
                          timeout=300)


@pytest.mark.slow
def test_a_models_py_in_the_working_directory_changes_nothing(tmp_path, inception_weights):
    dim = 2048  # statistics files in pytorch-fid's format: no feature extraction needed
    for package in (False, True):
        work = _shadowing_folder(tmp_path, package)
        res = _ganeval(work, "models")
        assert res.returncode == 0 and "dcgan" in res.stdout, res.stderr
    for name, shift in (("a", 0.0), ("b", 0.5)):
        np.savez(work / f"{name}.npz", mu=np.full(dim, shift), sigma=np.eye(dim))
    res = _ganeval(work, "fid", "a.npz", "b.npz", "--weights", inception_weights, "--device", "cpu", "--json")
    assert res.returncode == 0, res.stderr
    assert json.loads(res.stdout)["fid"] == pytest.approx(dim * 0.25, rel=1e-6)


BLOCK_EXTRAS = """
import contextlib, io, json, sys
from importlib.abc import MetaPathFinder

BLOCKED = {"streamlit", "sqlalchemy", "psycopg", "statsmodels", "nbformat", "nbclient", "nbconvert", "ipykernel"}

class NotInstalled(MetaPathFinder):  # the base install: the study and report extras are missing
    def find_spec(self, name, path=None, target=None):
        if name.split(".")[0] in BLOCKED:
            raise ModuleNotFoundError(f"No module named {name!r}", name=name)
        return None

sys.meta_path.insert(0, NotInstalled())
from ganeval.cli.main import main

results = []
for argv in json.loads(sys.argv[1]):
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        try:
            code = main(argv)
        except SystemExit as stop:  # --help
            code = stop.code or 0
    loaded = sorted(m for m in sys.modules if m.split(".")[0] in BLOCKED)
    results.append({"argv": argv, "code": code, "out": out.getvalue(), "err": err.getvalue(), "loaded": loaded})
print(json.dumps(results))
"""


@pytest.mark.slow
def test_the_base_install_runs_without_the_study_and_report_extras(tmp_path):
    """fid, nearest, train and sample start with the study and report extras missing, import
    none of them, and `study run` / `report` say in one line which extra to install."""
    script = tmp_path / "base_install.py"
    script.write_text(BLOCK_EXTRAS)
    runs = [["models"], ["fid", "--help"], ["nearest", "--help"], ["train", "--help"], ["sample", "--help"],
            ["study", "run", str(tmp_path / "no-study")],
            ["report", "--study", str(tmp_path), "-o", str(tmp_path / "out")]]
    res = subprocess.run([sys.executable, str(script), json.dumps(runs)], cwd=tmp_path, capture_output=True,
                         text=True, timeout=600)
    assert res.returncode == 0, res.stderr
    results = json.loads(res.stdout.strip().splitlines()[-1])
    models, *helps, study, report = results
    assert models["code"] == 0 and "dcgan" in models["out"] and models["loaded"] == []
    for r in helps:
        assert r["code"] == 0 and r["loaded"] == [], r
    for r, extra in ((study, "study"), (report, "report")):
        err = r["err"].strip().splitlines()
        assert r["code"] == 1 and len(err) == 1 and f"install ganeval[{extra}]" in err[0], r
