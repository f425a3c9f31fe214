"""``torchrun -m ganeval nearest``: queries sharded over 2 gloo CPU processes equal one process."""
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
from ganeval.distributed import World, shard
from ganeval.nearest.index import gpu_placement
from ganeval.synth import make_faces

ROOT = Path(__file__).resolve().parents[2]


def test_shards_cover_queries_in_order():
    for n in (0, 1, 5, 10):
        parts = [shard(n, World(r, r, 3)) for r in range(3)]
        assert sum((list(range(n))[p] for p in parts), []) == list(range(n))
        assert max(p.stop - p.start for p in parts) - min(p.stop - p.start for p in parts) <= 1


def test_faiss_gpu_placement():
    assert gpu_placement(0) == ("cpu", [])
    assert gpu_placement(0, world_size=4, local_rank=2) == ("cpu", [])
    assert gpu_placement(1) == ("one", [0])
    assert gpu_placement(4) == ("shards", [0, 1, 2, 3])          # one process, several GPUs: shard the index
    assert gpu_placement(4, world_size=4, local_rank=3) == ("one", [3])  # torchrun: each rank its own GPU
    assert gpu_placement(2, world_size=4, local_rank=3) == ("one", [1])


@pytest.mark.slow
def test_torchrun_two_processes_equal_one(tmp_path, capsys):
    train, gen = make_faces(60, size=32, seed=0), make_faces(9, size=32, seed=1)
    np.save(tmp_path / "t.npy", train)
    np.save(tmp_path / "g.npy", gen)
    common = [str(tmp_path / "g.npy"), str(tmp_path / "t.npy"), "-k", "3", "--candidates", "16",
              "--num-workers", "0", "--device", "cpu", "--contact-sheets", "4"]
    env = {**os.environ, "OMP_NUM_THREADS": "1", "GANEVAL_QUIET": "1", "PYTHONPATH": str(ROOT)}  # same cache
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2",
           "-m", "ganeval", "nearest", *common, "-o", str(tmp_path / "ddp"), "--json"]
    proc = subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert proc.stderr.count("training index:") == 1  # only rank 0 speaks
    summary = json.loads(proc.stdout)  # and prints the JSON once
    assert summary["settings"]["processes"] == 2

    assert main(["nearest", *common, "-o", str(tmp_path / "one")]) == 0
    capsys.readouterr()
    assert (tmp_path / "ddp" / "neighbours.csv").read_text() == (tmp_path / "one" / "neighbours.csv").read_text()
    assert sorted(p.name for p in (tmp_path / "ddp").rglob("*")) == sorted(p.name for p in (tmp_path / "one").rglob("*"))


@pytest.mark.slow
def test_torchrun_strict_training_error_stops_every_rank(tmp_path):
    """Rank 0 builds the index and meets a corrupt training image under --strict: rank 1,
    waiting for that index, stops with the same one-line error instead of waiting for ever."""
    train = tmp_path / "train"
    train.mkdir()
    for i, face in enumerate(make_faces(8, size=32, seed=0)):
        Image.fromarray(face).save(train / f"{i}.png")
    (train / "bad.png").write_bytes(b"not a png")
    np.save(tmp_path / "g.npy", make_faces(4, size=32, seed=1))
    env = {**os.environ, "OMP_NUM_THREADS": "1", "GANEVAL_QUIET": "1", "PYTHONPATH": str(ROOT)}
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2",
           "-m", "ganeval", "nearest", str(tmp_path / "g.npy"), str(train), "-k", "2", "--strict",
           "--num-workers", "0", "--device", "cpu", "-o", str(tmp_path / "out")]
    proc = subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True, timeout=300)
    assert proc.returncode != 0
    assert proc.stderr.count("corrupt image bad.png") == 2, proc.stderr[-3000:]  # rank 0's line, and rank 1's
    assert not re.search(r'File "[^"]*/ganeval/', proc.stderr), proc.stderr[-3000:]  # torchrun's traceback only
