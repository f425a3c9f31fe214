"""The API's results are the ``--json`` objects: ``as_dict()`` equals what the command prints."""
from __future__ import annotations

import json

import numpy as np
import pytest

import ganeval
from ganeval.cli.main import main
from ganeval.nearest.api import find_nearest
from ganeval.results import Result
from ganeval.synth import make_faces


def _without_timings(obj):
    if isinstance(obj, dict):
        return {k: _without_timings(v) for k, v in obj.items() if "seconds" not in k and k not in ("path", "cached")}
    if isinstance(obj, list):
        return [_without_timings(v) for v in obj]
    return obj


def test_result_reads_as_items_and_attributes():
    r = Result(fid=np.float64(1.5), n=np.int64(3), a={"path": "x"})
    assert r.fid == r["fid"] == 1.5 and r.a["path"] == "x"
    assert r.as_dict() == {"fid": 1.5, "n": 3, "a": {"path": "x"}}
    assert type(r.as_dict()["n"]) is int
    with pytest.raises(AttributeError, match="keys: fid, n, a"):
        r.kid_mean


@pytest.mark.slow
def test_compute_metrics_as_dict_is_fid_json(tmp_path, faces32, inception_weights, capsys):
    np.save(tmp_path / "a.npy", faces32[:12])
    np.save(tmp_path / "b.npy", faces32[12:24])
    result = ganeval.compute_metrics(tmp_path / "a.npy", tmp_path / "b.npy", metrics="fid,kid",
                                     weights=inception_weights, device="cpu", cache=False, on_warning=lambda m: None)
    assert result.fid == result["fid"] > 0
    assert main(["fid", str(tmp_path / "a.npy"), str(tmp_path / "b.npy"), "--metrics", "fid,kid", "--weights",
                 inception_weights, "--device", "cpu", "--num-workers", "0", "--no-cache", "--json"]) == 0
    printed = json.loads(capsys.readouterr().out)
    assert result.as_dict() == printed


def test_find_nearest_as_dict_is_nearest_json(tmp_path, capsys):
    np.save(tmp_path / "t.npy", make_faces(20, size=32, seed=0))
    np.save(tmp_path / "g.npy", make_faces(4, size=32, seed=1))
    result = find_nearest(tmp_path / "g.npy", tmp_path / "t.npy", k=2, device="cpu", outdir=tmp_path / "api")
    assert main(["nearest", str(tmp_path / "g.npy"), str(tmp_path / "t.npy"), "-k", "2", "--device", "cpu",
                 "--num-workers", "0", "--json", "-o", str(tmp_path / "out")]) == 0
    printed = json.loads(capsys.readouterr().out)
    assert result.ranks == printed["ranks"]
    mine, theirs = _without_timings(result.as_dict()), _without_timings(printed)
    for key in set(mine) | set(theirs):
        assert mine.get(key) == theirs.get(key), key


@pytest.mark.slow
def test_results_do_not_depend_on_batch_size(faces32, inception_weights):
    """FID, KID and the nearest neighbours are the same numbers at batch sizes 7, 50 and 64."""
    a, b = faces32[:10], faces32[10:20]
    kw = dict(metrics="fid,kid", weights=inception_weights, device="cpu", cache=False, on_warning=lambda m: None)
    fids = {bs: ganeval.compute_metrics(a, b, batch_size=bs, **kw) for bs in (7, 50, 64)}
    assert len({(r.fid, r.kid_mean) for r in fids.values()}) == 1
    found = [find_nearest(b, a, k=3, device="cpu", batch_size=bs) for bs in (7, 50, 64)]
    for other in found[1:]:
        np.testing.assert_array_equal(other.index, found[0].index)
        np.testing.assert_array_equal(other.score, found[0].score)
