"""The one trainer every family uses.

What a step does belongs to the family's training objective (``models/objective.py``;
``GANObjective``, the unconditional GAN step, unless the family names another), which
gets each step's models, optimisers, data, step number and RNG in a ``StepContext`` and
never sees the trainer. The trainer owns the rest: models, an EMA copy of G for samples, optimisers, the data order,
seeded RNGs (CPU runs are bit-reproducible and ``--resume`` continues exactly), mixed
precision (bf16, or fp16 with grad scaling) on CUDA, checkpoints, metrics, grids and
signals. Under torchrun, real batches come from a DistributedSampler, the objective
synchronises gradients (DDP or an all-reduce) and rank 0 writes the checkpoint, the
metrics and the grids."""
from __future__ import annotations

import contextlib
import copy
import csv
import json
import math
import signal
import sys
import time
from dataclasses import asdict, dataclass, fields
from pathlib import Path
from typing import Any

import torch

from ganeval.atomic import write_text
from ganeval.errors import BadInput
from ganeval.progress import progress
from ganeval.models.checkpoint import load_state, save_checkpoint
from ganeval.distributed import World, any_flag, gather_objects
from ganeval.models.objective import GAN_STATS, GANObjective, Objective, StepContext, TrainingSpec
from ganeval.models.registry import build_models, get_family
from ganeval.models.sampling import require_latent_model
from ganeval.sampler import latents_for_seeds
from ganeval.models.spec import ModelConfig
from ganeval.models.visualise import grid_path, save_grid

CHECKPOINT_NAME = "checkpoint.pt"
METRICS_NAME = "metrics.csv"
STATS = GAN_STATS  # the columns of the part-1 families; other objectives name their own


@dataclass
class TrainConfig:
    """How to train (the model itself is a ModelConfig); stored in the checkpoint."""

    data: str
    out: str
    steps: int | None = None  # total generator steps of the run (not "more steps")
    epochs: float | None = None  # alternative to steps: passes over the data
    batch_size: int = 64  # per process
    seed: int = 0
    ema_decay: float = 0.999
    ckpt_every: int = 1000
    sample_every: int = 500
    log_every: int = 50
    grid_size: int = 64
    num_workers: int = 0
    amp: bool = True  # mixed precision, CUDA only
    fid_every: int = 0  # 0: no FID during training
    fid_ref: str | None = None  # reference images or statistics .npz
    fid_n: int = 5000  # generated samples per measurement
    fid_features: str = "inception"
    fid_weights: str | None = None
    fid_metrics: str = "fid"  # what --fid-every logs: any of fid,kid,is,prdc (ganeval fid --metrics)
    data_hash: str | None = None  # content hash of --data (ganeval.sources); --resume refuses other images

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> "TrainConfig":
        return cls(**{f.name: data[f.name] for f in fields(cls) if f.name in data})


class MetricsLog:
    """RUN/metrics.csv: one row per --log-every steps, flushed as written; on resume the rows
    past the checkpoint (from a run that went on after it) are dropped."""

    def __init__(self, path: Path, resume_step: int | None, values: tuple[str, ...] = STATS):
        self.path = path
        self.columns = ("step", "epoch", "images") + tuple(values) + ("img_per_s", "seconds")
        rows: list[list[str]] = []
        if resume_step is not None and path.exists():
            with open(path, newline="") as fh:
                reader = csv.reader(fh)
                header = next(reader, None)
                if header == list(self.columns):
                    rows = [r for r in reader if len(r) == len(self.columns) and r[0].isdigit() and int(r[0]) <= resume_step]
        lines = [",".join(self.columns)] + [",".join(r) for r in rows]
        write_text(path, "\n".join(lines) + "\n")
        self.fh = open(path, "a", newline="")

    def write(self, values: dict[str, float]) -> None:
        row = [f"{values[c]:.6g}" if isinstance(values[c], float) else str(values[c]) for c in self.columns]
        self.fh.write(",".join(row) + "\n")
        self.fh.flush()

    def close(self) -> None:
        self.fh.close()


class Trainer:
    """Holds G, D, EMA, optimisers, data order and RNGs of one process; ``fit`` runs the loop."""

    def __init__(self, model_cfg: ModelConfig, train_cfg: TrainConfig, device: str | torch.device = "cpu",
                 world: World = World(), checkpoint: dict[str, Any] | None = None):
        self.family = get_family(model_cfg.model)
        self.model_cfg, self.cfg, self.world = model_cfg, train_cfg, world
        self.device = torch.device(device)
        self.out = Path(train_cfg.out)
        if train_cfg.batch_size < 1:
            raise BadInput(f"--batch-size must be at least 1, got {train_cfg.batch_size}")

        torch.manual_seed(train_cfg.seed)  # identical initial weights on every process
        G, D = build_models(model_cfg)
        # channels-last: faster convolutions on CPU (oneDNN) and on CUDA tensor cores
        self.G = G.to(self.device, memory_format=torch.channels_last)
        self.D = D.to(self.device, memory_format=torch.channels_last)
        self.G_ema = copy.deepcopy(self.G).eval().requires_grad_(False) if world.is_main else None
        make_objective = self.family.objective or GANObjective
        spec = TrainingSpec(self.family, model_cfg, train_cfg, world, self.device)
        self.objective: Objective = make_objective(spec, self.G, self.D)
        self.opt_G, self.opt_D = self.objective.make_optimizers(self.G, self.D)

        self.amp_dtype: torch.dtype | None = None
        if self.device.type == "cuda" and train_cfg.amp:
            self.amp_dtype = torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float16
            torch.backends.cudnn.benchmark = True
        scaled = self.amp_dtype == torch.float16
        self.scaler_G = torch.amp.GradScaler(self.device.type, enabled=scaled)
        self.scaler_D = torch.amp.GradScaler(self.device.type, enabled=scaled)

        self.rng = torch.Generator(self.device)  # z, GP mixes, augmentations: seeded, checkpointed
        self.step, batches_seen = 0, 0
        self._interval: dict[str, Any] = {}  # the metrics row in progress when the checkpoint was written
        if checkpoint is not None:
            batches_seen = self._restore_weights(checkpoint)

        self.real = self.objective.make_data(batches_seen)
        if train_cfg.steps is None:
            epochs = train_cfg.epochs if train_cfg.epochs is not None else 1.0
            train_cfg.steps = max(1, math.ceil(epochs * self.real.batches_per_epoch / self.objective.batches_per_step))

        self.objective.setup()
        # the grid shows the images of seeds seed, seed+1, …: `ganeval sample --seeds` gives the same
        self.fixed_z = latents_for_seeds(range(train_cfg.seed, train_cfg.seed + train_cfg.grid_size), model_cfg.z_dim)
        self._stop_signal: int | None = None
        # last, because setting up data loaders draws from the global RNG
        if checkpoint is not None:
            self._restore_rng(checkpoint)
        else:
            self._seed_rng()

    # ------------------------------------------------------------------ one step

    def context(self) -> StepContext:
        """What the objective's next step works with."""
        return StepContext(self.G, self.D, self.opt_G, self.opt_D, self.scaler_G, self.scaler_D, self.real,
                           self.step, self.rng, self.device, self.model_cfg.z_dim, self.amp_dtype)

    def real_batch(self) -> torch.Tensor:
        """The next real batch of the default data stream, as floats in [-1, 1]."""
        return self.context().real_batch()

    def train_step(self) -> torch.Tensor:
        """One generator step of the family's objective; returns its stats vector."""
        stats = self.objective.step(self.context())
        self._update_ema(self.objective.ema_decay(self.step), self.objective.ema_copies_buffers)
        self.step += 1
        return stats

    @torch.no_grad()
    def _update_ema(self, decay: float, copy_buffers: bool = False) -> None:
        """Parameters: G_ema ← lerp(G_ema, G, 1 − decay). Buffers: copied when the objective
        says so (StyleGAN2-ADA copies them, w_avg included), else floating ones blended too."""
        if self.G_ema is None:
            return
        torch._foreach_lerp_(list(self.G_ema.parameters()), list(self.G.parameters()), 1 - decay)
        for ema_buf, buf in zip(self.G_ema.buffers(), self.G.buffers()):
            if ema_buf.dtype.is_floating_point and not copy_buffers:
                ema_buf.lerp_(buf, 1 - decay)
            else:
                ema_buf.copy_(buf)

    # ------------------------------------------------------------------ state

    def _rng_state(self) -> dict[str, torch.Tensor]:
        state = {"torch": torch.get_rng_state(), "noise": self.rng.get_state()}  # "noise": the key since version 1
        if self.device.type == "cuda":
            state["cuda"] = torch.cuda.get_rng_state(self.device)
        return state

    def checkpoint_payload(self) -> dict[str, Any] | None:
        """The checkpoint dict on rank 0 (None elsewhere); a collective under DDP."""
        rngs = gather_objects(self._rng_state(), self.world)
        if not self.world.is_main:
            return None
        return {
            "model": self.model_cfg.model,
            "config": {"model": self.model_cfg.to_dict(), "train": self.cfg.to_dict()},
            "step": self.step,
            "batches_seen": self.real.batches_seen,
            "world_size": self.world.size,
            "G": self.G.state_dict(),
            "D": self.D.state_dict(),
            "G_ema": self.G_ema.state_dict(),
            "opt_G": self.opt_G.state_dict(),
            "opt_D": self.opt_D.state_dict(),
            "scaler_G": self.scaler_G.state_dict(),
            "scaler_D": self.scaler_D.state_dict(),
            "rng": rngs,
            "objective": self.objective.state_dict(),
            "interval": self._interval,
        }

    def _fid_monitor(self):
        """None unless --fid-every; built before the first step so bad settings cost nothing."""
        if not self.cfg.fid_every:
            return None
        if not self.cfg.fid_ref:
            raise BadInput("--fid-every needs --fid-ref (reference images or a statistics .npz)")
        require_latent_model(self.model_cfg.model, "--fid-every")
        from ganeval.models.fid_monitor import FIDMonitor

        return FIDMonitor(self.out, self.cfg.fid_ref, self.cfg.fid_n, self.cfg.fid_features, self.cfg.fid_weights,
                          self.device, batch_size=min(50, self.cfg.fid_n), metrics=self.cfg.fid_metrics)

    def _sampling_payload(self) -> dict[str, Any]:
        """Just what sampling needs (no optimiser or RNG state, no collective)."""
        return {"model": self.model_cfg.model, "step": self.step, "G": {}, "D": {},
                "config": {"model": self.model_cfg.to_dict(), "train": self.cfg.to_dict()},
                "G_ema": self.G_ema.state_dict()}

    def save(self, path: Path | None = None) -> Path:
        path = path or self.out / CHECKPOINT_NAME
        payload = self.checkpoint_payload()
        if payload is not None:
            save_checkpoint(path, payload)
        return path

    def _write_config(self) -> None:
        """RUN/config.json: the configs, the process count and what the data turned out to be."""
        data = {"hash": self.cfg.data_hash, "images": len(self.real)}
        summary = getattr(self.real, "skipped_summary", None)
        if summary is not None:
            data.update(summary())
        write_text(self.out / "config.json", json.dumps(
            {"model": self.model_cfg.to_dict(), "train": self.cfg.to_dict(), "world_size": self.world.size,
             "data": data}, indent=2) + "\n")

    def _seed_rng(self, salt: int = 0) -> None:
        """Dropout, z and GP mixes: seeded per process (and per step when re-seeding on resume)."""
        rank = self.world.rank
        torch.manual_seed(self.cfg.seed + 1 + rank + 1000003 * salt)
        self.rng.manual_seed(self.cfg.seed * 7919 + 104729 * (rank + 1) + 1000003 * salt)
        if self.device.type == "cuda":
            torch.cuda.manual_seed(self.cfg.seed + 1 + rank + 1000003 * salt)

    def _restore_rng(self, ckpt: dict[str, Any]) -> None:
        rngs = ckpt.get("rng") or []
        if len(rngs) != self.world.size:  # another process count: deterministic, not bit-exact
            self._seed_rng(salt=self.step)
            if self.world.is_main:
                print(f"warning: {ckpt.get('path', 'checkpoint')} was trained by {len(rngs)} process(es), resuming on "
                      f"{self.world.size}: training continues but will not match an uninterrupted run exactly",
                      file=sys.stderr)
            return
        rng = rngs[self.world.rank]
        torch.set_rng_state(rng["torch"])
        self.rng.set_state(rng["noise"])
        if "cuda" in rng and self.device.type == "cuda":
            torch.cuda.set_rng_state(rng["cuda"], self.device)

    def _restore_weights(self, ckpt: dict[str, Any]) -> int:
        """Load weights, optimisers and the step; returns the batches drawn per process."""
        where = ckpt.get("path", "checkpoint")
        load_state(self.G, ckpt["G"], "G", where)
        load_state(self.D, ckpt["D"], "D", where)
        if self.G_ema is not None:
            load_state(self.G_ema, ckpt["G_ema"], "G_ema", where)
        try:
            self.opt_G.load_state_dict(ckpt["opt_G"])
            self.opt_D.load_state_dict(ckpt["opt_D"])
            for scaler, key in ((self.scaler_G, "scaler_G"), (self.scaler_D, "scaler_D")):
                if scaler.is_enabled() and ckpt.get(key):
                    scaler.load_state_dict(ckpt[key])
        except (KeyError, ValueError, RuntimeError) as err:
            raise BadInput(f"{where}: optimiser state does not fit the model ({str(err).splitlines()[0][:120]})") from None
        self.objective.load_state_dict(ckpt.get("objective") or {})
        self._interval = dict(ckpt.get("interval") or {})
        self.step = int(ckpt["step"])
        batches = int(ckpt.get("batches_seen", 0))
        if int(ckpt.get("world_size", 1)) != self.world.size:
            batches = batches * int(ckpt.get("world_size", 1)) // self.world.size
        return batches

    # ------------------------------------------------------------------ the loop

    def grid_images(self) -> torch.Tensor:
        """The objective's grid of G_ema (of G on processes without an EMA copy)."""
        return self.objective.grid_images(self.G_ema if self.G_ema is not None else self.G, self.fixed_z)

    def save_grid(self) -> Path:
        path = grid_path(self.out, self.step)
        images = self.grid_images()
        columns = self.objective.grid_columns() or math.ceil(math.sqrt(len(images)))
        save_grid(path, images.numpy(), columns=columns)
        return path

    def _on_signal(self, signum, frame) -> None:
        if self._stop_signal is not None and signum == signal.SIGINT:
            raise KeyboardInterrupt  # a second Ctrl-C: stop now, without a checkpoint
        self._stop_signal = signum

    def fit(self) -> bool:
        """Train up to ``cfg.steps``; True when done, False when stopped by SIGINT/SIGTERM
        (after writing the checkpoint; ``stop_signal`` then says which, on every process)."""
        cfg, main = self.cfg, self.world.is_main
        log = None
        if main:
            self.out.mkdir(parents=True, exist_ok=True)
            self._write_config()
            log = MetricsLog(self.out / METRICS_NAME, self.step if self.step else None,
                             tuple(self.objective.stats) + tuple(self.objective.gauge_names))
            if self.step == 0:
                self.save_grid()
        monitor = self._fid_monitor() if main else None
        handlers = {}
        if hasattr(signal, "SIGTERM"):
            with contextlib.suppress(ValueError):  # not the main thread: no handlers
                for sig in (signal.SIGINT, signal.SIGTERM):
                    handlers[sig] = signal.signal(sig, self._on_signal)
        bar = progress(total=cfg.steps, desc=f"train {self.model_cfg.model}", unit="step", initial=self.step) if main else None
        names = tuple(self.objective.stats)
        # the row in progress: carried over from the checkpoint when it was written mid-interval,
        # so the resumed row averages the same steps an uninterrupted run's row does
        carried = self._interval if len(self._interval.get("sums", ())) == len(names) else {}
        sums = carried["sums"].to(self.device, torch.float32) if carried else torch.zeros(len(names), device=self.device)
        count, images, earlier = int(carried.get("count", 0)), int(carried.get("images", 0)), float(carried.get("seconds", 0))
        t0, start = time.perf_counter(), time.perf_counter()
        per_step_images = cfg.batch_size * self.objective.batches_per_step * self.world.size
        stopped = False
        try:
            while self.step < cfg.steps:
                sums += self.train_step()
                count += 1
                images += per_step_images
                if bar is not None:
                    bar.update(1)
                stopped = any_flag(self._stop_signal is not None, self.world, self.device)
                if stopped and self._stop_signal is None:  # another process was signalled
                    self._stop_signal = signal.SIGTERM
                last = self.step == cfg.steps
                # rows and grids at completed intervals only: a stopped run writes them after --resume
                if self.step % cfg.log_every == 0 or last:
                    elapsed = earlier + time.perf_counter() - t0
                    means = (sums / count).tolist()
                    row = dict(zip(names, means))
                    row.update(self.objective.gauges())
                    row.update(step=self.step, epoch=self.real.epoch, images=self.real.batches_seen * cfg.batch_size * self.world.size,
                               img_per_s=images / max(elapsed, 1e-9), seconds=time.perf_counter() - start)
                    if log is not None:
                        log.write(row)
                    if bar is not None:
                        shown = {k: f"{row[k]:.3f}" for k in names[:2]}
                        bar.set_postfix(**shown, img_s=f"{row['img_per_s']:.0f}")
                    sums.zero_()
                    count, images, earlier, t0 = 0, 0, 0.0, time.perf_counter()
                if main and (self.step % cfg.sample_every == 0 or last):
                    self.save_grid()
                if monitor is not None and (self.step % cfg.fid_every == 0 or last) and not stopped:
                    fid = monitor.measure(self._sampling_payload(), self.step, self.real.batches_seen * cfg.batch_size * self.world.size / 1000)
                    if bar is not None:
                        bar.write(f"step {self.step}: FID {fid:.2f} ({cfg.fid_n} samples)", file=sys.stderr)
                if self.step % cfg.ckpt_every == 0 or last or stopped:
                    self._interval = {"sums": sums.detach().cpu().clone(), "count": count, "images": images,
                                      "seconds": earlier + time.perf_counter() - t0}
                    self.save()
                    if main:
                        self._write_config()  # skipped-image counts grow while streaming
                if stopped:
                    break
        finally:
            if bar is not None:
                bar.close()
            if log is not None:
                log.close()
            for sig, old in handlers.items():
                signal.signal(sig, old)
        return not stopped

    @property
    def stop_signal(self) -> int | None:
        return self._stop_signal
