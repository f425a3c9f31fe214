"""Multi-process training on CPU: torchrun, 2 gloo processes, a few steps."""
from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from ganeval.atomic import save_npz
from ganeval.synth import make_faces
from ganeval.models.checkpoint import load_checkpoint

ROOT = Path(__file__).resolve().parents[2]

# Trains on both ranks, then checks that DDP kept G and D identical across the processes
# while each process drew different real images.
WORKER = """
import json, sys
import torch, torch.distributed as dist
from ganeval.distributed import setup, teardown
from ganeval.models.registry import get_family
from ganeval.models.trainer import Trainer, TrainConfig

data, out, report = sys.argv[1:4]
world, device = setup("cpu")
result = {}
for name in ("wgan-gp", "resdcgan-cycle"):  # gradient penalty inside DDP; latent head; batch norm
    cfg = get_family(name).config(32, 3, width=4)
    t = Trainer(cfg, TrainConfig(data=data, out=f"{out}/{name}", steps=2, batch_size=4), device, world)
    g0 = torch.cat([p.detach().flatten().clone() for p in t.G.parameters()])
    first_real = next(t.real).float().sum()
    for _ in range(2):
        t.train_step()
    flat = torch.cat([p.detach().flatten() for p in list(t.G.parameters()) + list(t.D.parameters())])
    gathered = [torch.zeros_like(flat) for _ in range(world.size)]
    dist.all_gather(gathered, flat)
    reals = [torch.zeros(()) for _ in range(world.size)]
    dist.all_gather(reals, first_real)
    result[name] = {"same_weights": all(torch.equal(gathered[0], g) for g in gathered),
                    "moved": not torch.equal(g0, flat[: len(g0)]),
                    "different_data": len({float(r) for r in reals}) == world.size}
if world.is_main:
    json.dump(result, open(report, "w"))
teardown()
"""


@pytest.fixture(scope="module")
def faces(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("ddp") / "faces.npz"
    save_npz(path, images=make_faces(64, 32, seed=1))
    return path


def _torchrun(*args: str) -> subprocess.CompletedProcess:
    env = {**os.environ, "OMP_NUM_THREADS": "1", "GANEVAL_QUIET": "1", "PYTHONPATH": str(ROOT)}
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2", *args]
    return subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True, timeout=300)


@pytest.mark.slow
def test_torchrun_two_processes_train_and_resume(faces, tmp_path):
    run = tmp_path / "run"
    common = ["--out", str(run), "--device", "cpu", "--num-workers", "0", "--log-every", "1"]
    proc = _torchrun("-m", "ganeval", "train", "dcgan", "--data", str(faces), "--steps", "3", "--batch-size", "4",
                     "--resolution", "32", "--width", "8", *common)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert proc.stderr.count("training dcgan") == 1  # only rank 0 reports
    ckpt = load_checkpoint(run)
    assert ckpt["step"] == 3 and ckpt["world_size"] == 2 and len(ckpt["rng"]) == 2
    assert not torch.equal(ckpt["rng"][0]["noise"], ckpt["rng"][1]["noise"])  # each process its own noise
    rows = (run / "metrics.csv").read_text().splitlines()
    assert len(rows) == 4 and rows[-1].split(",")[2] == str(3 * 4 * 2)  # images: steps × batch × processes

    proc = _torchrun("-m", "ganeval", "train", "dcgan", "--resume", "--steps", "5", *common)
    assert proc.returncode == 0, proc.stderr[-3000:]
    resumed = load_checkpoint(run)
    assert resumed["step"] == 5
    assert not torch.equal(resumed["G"]["net.0.0.weight"], ckpt["G"]["net.0.0.weight"])
    assert all(torch.isfinite(v).all() for v in resumed["G"].values())


@pytest.mark.slow
def test_ddp_keeps_processes_in_sync(faces, tmp_path):
    script = tmp_path / "worker.py"
    script.write_text(WORKER)
    report = tmp_path / "report.json"
    proc = _torchrun(str(script), str(faces), str(tmp_path / "runs"), str(report))
    assert proc.returncode == 0, proc.stderr[-3000:]
    result = json.loads(report.read_text())
    for name, checks in result.items():
        assert checks == {"same_weights": True, "moved": True, "different_data": True}, name
