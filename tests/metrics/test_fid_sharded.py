"""FID scale-out: `torchrun -m ganeval fid` splits images and generator samples across
processes (gloo on CPU here) and must give the single-process result."""
from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from ganeval.cli.main import main
from ganeval.distributed import World, gather_rows, shard_range

ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.parametrize("n", [0, 1, 6, 7, 11])
@pytest.mark.parametrize("size", [1, 2, 3, 5])
def test_shards_are_whole_batches_in_order(n, size):
    shards = [shard_range(n, 3, World(rank, rank, size)) for rank in range(size)]
    assert [i for s in shards for i in s] == list(range(n))  # rank order restores source order
    assert all(s.start % 3 == 0 for s in shards if len(s))  # the batches one process would run
    assert [len(s) for s in shards][:-1] == [len(s) - len(s) % 3 for s in shards][:-1]


def test_gather_rows_single_process_is_identity():
    rows = np.arange(6, dtype=np.float32).reshape(3, 2)
    assert gather_rows(rows, World()) is rows


def _python(*args: str, processes: int = 1) -> subprocess.CompletedProcess:
    """One process, or torchrun with ``processes`` gloo ranks; one thread each either way
    (conv results may differ in the last bit between thread counts, not between shardings)."""
    env = {**os.environ, "OMP_NUM_THREADS": "1", "GANEVAL_QUIET": "1", "PYTHONPATH": str(ROOT)}
    launcher = ["-m", "torch.distributed.run", "--standalone", "--nproc_per_node", str(processes)] if processes > 1 else []
    return subprocess.run([sys.executable, *launcher, *args], cwd=ROOT, env=env, capture_output=True, text=True,
                          timeout=900)


@pytest.mark.slow
def test_torchrun_fid_equals_single_process(tmp_path, faces32, inception_weights, capsys):
    """Folder (with a corrupt file) on one side, generator samples on the other, batch 2:
    rank 0 gets 2 batches, rank 1 gets 2 (one partial). Rank 0 alone prints and writes."""
    folder = tmp_path / "real"
    folder.mkdir()
    for i, face in enumerate(faces32[:7]):
        Image.fromarray(face).save(folder / f"{i:02d}.png")
    (folder / "03b.png").write_bytes(b"not a png")
    run = tmp_path / "run"
    assert main(["train", "dcgan", "--data", str(folder), "--out", str(run), "--resolution", "32", "--steps", "1",
                 "--batch-size", "4", "--width", "8", "--device", "cpu", "--num-workers", "0"]) == 0
    capsys.readouterr()
    common = ["fid", str(folder), "--generator", str(run / "checkpoint.pt"), "-n", "7", "--seed", "3",
              "--batch-size", "2", "--weights", inception_weights, "--device", "cpu", "--num-workers", "0", "--json"]

    proc = _python("-m", "ganeval", *common, "--save-stats", str(tmp_path / "sharded.npz"), processes=2)
    assert proc.returncode == 0, proc.stderr[-3000:]
    sharded = json.loads(proc.stdout)  # one JSON document: only rank 0 printed
    assert proc.stderr.count("saved statistics") == 1 and proc.stderr.count("corrupt") == 1
    cached = list((Path(os.environ["GANEVAL_HOME"]) / "features").glob("*.npz"))
    assert len(cached) == 1  # rank 0 wrote the folder's features once

    proc = _python("-m", "ganeval", *common, "--no-cache", "--save-stats", str(tmp_path / "single.npz"))
    assert proc.returncode == 0, proc.stderr[-3000:]
    single = json.loads(proc.stdout)

    assert sharded["a"]["n"] == single["a"]["n"] == 7 and sharded["a"]["skipped_corrupt"] == 1
    assert sharded["b"]["n"] == single["b"]["n"] == 7
    assert sharded["fid"] == pytest.approx(single["fid"], rel=1e-9)
    assert sharded["kid_mean"] == pytest.approx(single["kid_mean"], rel=1e-9, abs=1e-12)
    with np.load(tmp_path / "sharded.npz") as s, np.load(tmp_path / "single.npz") as t:
        assert np.array_equal(s["mu"], t["mu"]) and np.array_equal(s["sigma"], t["sigma"])  # same batches, same bits


@pytest.mark.slow
def test_torchrun_strict_fails_on_every_rank_without_hanging(tmp_path, faces32, inception_weights):
    """A corrupt file in rank 1's share with --strict: both ranks stop with the same one-line
    error (exit 2) instead of rank 0 waiting for rank 1's features for ever."""
    folder = tmp_path / "real"
    folder.mkdir()
    for i, face in enumerate(faces32[:6]):
        Image.fromarray(face).save(folder / f"{i:02d}.png")
    (folder / "05b.png").write_bytes(b"not a png")  # sorts into the last batch: rank 1's
    proc = _python("-m", "ganeval", "fid", str(folder), str(folder), "--strict", "--no-cache", "--batch-size", "2",
                   "--weights", inception_weights, "--device", "cpu", "--num-workers", "0", processes=2)
    assert proc.returncode != 0
    assert proc.stderr.count("corrupt image 05b.png") == 2, proc.stderr[-3000:]  # each rank's one line
    # torchrun's launcher prints its own traceback for a failed child; none comes from ganeval
    assert not re.search(r'File "[^"]*/ganeval/', proc.stderr), proc.stderr[-6000:]


GATHER_WORKER = """
import json, sys
import numpy as np
from ganeval.distributed import setup, teardown, gather_rows
world, device = setup("cpu")
rows = np.full((world.rank * 2, 3), world.rank, dtype=np.float32)  # rank 0 holds none
out = gather_rows(rows, world, device)
if world.is_main:
    json.dump({"shape": list(out.shape), "values": out[:, 0].tolist(), "dtype": str(out.dtype)}, open(sys.argv[1], "w"))
teardown()
"""


@pytest.mark.slow
def test_gather_rows_uneven_shares(tmp_path):
    script = tmp_path / "worker.py"
    script.write_text(GATHER_WORKER)
    report = tmp_path / "report.json"
    proc = _python(str(script), str(report), processes=2)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert json.loads(report.read_text()) == {"shape": [2, 3], "values": [1.0, 1.0], "dtype": "float32"}
