"""The Python API (ganeval.compute_fid / compute_metrics) and docs/fid.md's examples, run as doctests."""
from __future__ import annotations

import doctest
import re
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

import ganeval
from ganeval.errors import BadInput

N = 12
ROOT = Path(__file__).resolve().parents[2]


def test_import_ganeval_stays_light():
    code = "import sys, ganeval; assert 'torch' not in sys.modules, 'torch imported'; print(ganeval.__version__)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT)
    assert out.returncode == 0, out.stderr


@pytest.mark.slow
def test_arrays_tensors_and_paths_agree(tmp_path, faces32, inception_weights):
    kw = dict(weights=inception_weights, device="cpu", on_warning=lambda msg: None)
    a, b = faces32[:N], faces32[N:2 * N]
    np.savez(tmp_path / "b.npz", images=b)
    from_arrays = ganeval.compute_fid(a, b, **kw)
    from_mixed = ganeval.compute_fid(torch.from_numpy(a).permute(0, 3, 1, 2), tmp_path / "b.npz", **kw)
    assert from_arrays > 1.0
    assert from_mixed == pytest.approx(from_arrays, rel=1e-9)
    with pytest.raises(BadInput, match="uint8"):
        ganeval.compute_fid(a.astype(np.float32), b, **kw)


@pytest.mark.slow
def test_generator_callable_equals_its_samples(faces32, inception_weights):
    torch.manual_seed(0)
    G = torch.nn.Sequential(torch.nn.Linear(16, 3 * 32 * 32), torch.nn.Tanh(), torch.nn.Unflatten(1, (3, 32, 32)))
    kw = dict(weights=inception_weights, device="cpu", on_warning=lambda msg: None, batch_size=5)
    streamed = ganeval.compute_metrics(faces32[:N], G, metrics="fid,kid", z_dim=16, n=N, seed=3, **kw)
    z = torch.cat([torch.from_numpy(np.random.RandomState(s).randn(1, 16)).float() for s in range(3, 3 + N)])
    with torch.no_grad():  # z of seed s, and NVlabs' uint8 conversion
        samples = (G(z) * 127.5 + 128).clamp(0, 255).to(torch.uint8).permute(0, 2, 3, 1).numpy()
    written = ganeval.compute_metrics(faces32[:N], samples, metrics="fid,kid", **kw)
    assert streamed["b"]["origin"] == "generator" and streamed["b"]["n"] == N
    assert streamed["fid"] == pytest.approx(written["fid"], rel=1e-9)
    assert streamed["kid_mean"] == pytest.approx(written["kid_mean"], rel=1e-9)
    with pytest.raises(BadInput, match="z_dim"):
        ganeval.compute_fid(faces32[:N], G, **kw)


@pytest.mark.slow
def test_compute_metrics_all_keys(faces32, inception_weights):
    res = ganeval.compute_metrics(faces32[:N], faces32[N:2 * N], "all", weights=inception_weights, device="cpu",
                                  on_warning=lambda msg: None, prdc_k=2)
    for key in ("fid", "kid_mean", "kid_std", "is_mean", "is_std", "precision", "recall", "density", "coverage"):
        assert isinstance(res[key], float), key
    assert res["metrics"] == ["fid", "kid", "is", "prdc"] and res["prdc_k"] == [2, 2]
    assert res["is_mean"] >= 1.0 and 0 <= res["precision"] <= 1 and 0 <= res["coverage"] <= 1
    with pytest.raises(BadInput, match="unknown metric 'isc'"):
        ganeval.compute_metrics(faces32[:N], faces32[N:], "fid,isc", weights=inception_weights)


README_WEIGHTS = "pt_inception-2015-12-05-6726825d.pth"


def _readme_fid_section() -> str:
    text = (ROOT / "docs" / "fid.md").read_text()
    start = text.index("## `ganeval fid A B`")
    end = text.find("\n## ", start + 1)
    return text[start:end if end > 0 else None]


@pytest.mark.slow
def test_readme_python_examples_run(tmp_path, monkeypatch, faces32, inception_weights):
    """docs/fid.md's ```python blocks of the fid section, as doctests, on synthetic faces with
    test-built weights placed where the examples name them."""
    section = _readme_fid_section()
    blocks = re.findall(r"```python\n(.*?)```", section, flags=re.S)
    assert blocks, "the fid section has no python examples"
    monkeypatch.chdir(tmp_path)
    shutil.copy(inception_weights, tmp_path / README_WEIGHTS)
    Path("real").mkdir()
    for i, face in enumerate(faces32[:N]):
        Image.fromarray(face).save(f"real/{i:03d}.png")
    np.savez("fake.npz", images=faces32[N:2 * N])
    parser, runner = doctest.DocTestParser(), doctest.DocTestRunner(optionflags=doctest.ELLIPSIS)
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # test weights are not the published ones
        for i, block in enumerate(blocks):
            test = parser.get_doctest(block, {}, f"README fid block {i}", "README.md", 0)
            assert test.examples
            runner.run(test)
    result = runner.summarize(verbose=False)
    assert result.failed == 0, result


def test_inception_score_sample_count_is_checked_before_any_network(tmp_path, monkeypatch):
    import ganeval.api as api

    def no_network(*args, **kwargs):
        raise AssertionError("the feature network was built")

    monkeypatch.setattr(api, "build_extractor", no_network)
    with pytest.raises(BadInput, match=r"array b: the Inception Score \(10 splits\) needs at least 10 images, got 5"):
        ganeval.compute_metrics(np.zeros((12, 8, 8, 3), np.uint8), np.zeros((5, 8, 8, 3), np.uint8), "fid,is")
    folder = tmp_path / "few"
    folder.mkdir()
    from PIL import Image

    for i in range(3):
        Image.new("RGB", (8, 8)).save(folder / f"{i}.png")
    with pytest.raises(BadInput, match="got 3"):
        ganeval.compute_metrics(np.zeros((12, 8, 8, 3), np.uint8), str(folder), "is")
