"""The one trainer every family uses.

Per generator step: ``n_critic`` discriminator updates, each on a fresh real batch, then
one generator update. With ``n_critic == 1`` the generator step reuses the fakes of the
discriminator step (one G forward per step, as in the PyTorch DCGAN example). D is frozen
during the G step, so no D weight gradients are computed there.

Mixed precision (bf16, or fp16 with grad scaling) on CUDA; an EMA copy of G for samples;
all randomness from seeded generators, so CPU runs are bit-reproducible and ``--resume``
continues exactly. Under torchrun, G and the D objective are wrapped in
DistributedDataParallel, real batches come from a DistributedSampler and rank 0 writes
the checkpoint, the metrics and the grids."""
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
import torch.nn.functional as F
from torch import nn
from torch.nn.parallel import DistributedDataParallel as DDP

from ganeval.atomic import write_text
from ganeval.errors import BadInput
from ganeval.progress import progress
from models.checkpoint import load_state, save_checkpoint
from models.data import RealBatches
from models.distributed import World, any_flag, gather_objects
from models.registry import build_models, get_family
from models.sampling import LatentStream, render_latents
from models.spec import Family, ModelConfig
from models.visualise import grid_path, save_grid

CHECKPOINT_NAME = "checkpoint.pt"
METRICS_NAME = "metrics.csv"
STATS = ("loss_d", "loss_g", "d_real", "d_fake", "gp", "cycle")


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

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> "TrainConfig":
        return cls(**{f.name: data[f.name] for f in fields(cls) if f.name in data})


def _split(out: Any) -> tuple[torch.Tensor, torch.Tensor | None]:
    """A discriminator returns a score, or (score, ẑ) when it has a latent head."""
    return (out[0], out[1]) if isinstance(out, tuple) else (out, None)


def gradient_penalty(D: nn.Module, real: torch.Tensor, fake: torch.Tensor, eps: torch.Tensor) -> torch.Tensor:
    """Gulrajani et al.: E[(‖∇ₓD(x̂)‖₂ − 1)²] at x̂ = εx + (1−ε)G(z), computed in fp32."""
    with torch.autocast(real.device.type, enabled=False):
        mixed = (eps * real.float() + (1 - eps) * fake.float()).requires_grad_(True)
        score, _ = _split(D(mixed))
        (grad,) = torch.autograd.grad(score.sum(), mixed, create_graph=True)
        return (grad.flatten(1).norm(dim=1) - 1).pow(2).mean()


class DiscriminatorObjective(nn.Module):
    """D's whole loss in one forward, so DistributedDataParallel sees one forward per backward."""

    def __init__(self, D: nn.Module, family: Family, cycle_lambda: float):
        super().__init__()
        self.D, self.family, self.cycle_lambda = D, family, cycle_lambda

    def forward(self, real: torch.Tensor, fake: torch.Tensor, z: torch.Tensor,
                eps: torch.Tensor | None) -> tuple[torch.Tensor, torch.Tensor]:
        s_real, _ = _split(self.D(real))
        s_fake, z_hat = _split(self.D(fake))
        zero = s_real.new_zeros(()).float()
        gp, cycle = zero, zero
        if self.family.loss == "wgan-gp":
            loss = s_fake.float().mean() - s_real.float().mean()
            gp = gradient_penalty(self.D, real, fake, eps)
            loss = loss + self.family.gp_lambda * gp
        else:
            loss = F.softplus(-s_real.float()).mean() + F.softplus(s_fake.float()).mean()
        if z_hat is not None:  # the head learns to read z back from (detached) fakes
            cycle = (z_hat.float() - z).pow(2).mean()
            loss = loss + self.cycle_lambda * cycle
        stats = torch.stack([loss.detach(), s_real.detach().float().mean(), s_fake.detach().float().mean(),
                             gp.detach(), cycle.detach()])
        return loss, stats


def generator_loss(D: nn.Module, family: Family, cycle_lambda: float, fake: torch.Tensor,
                   z: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    score, z_hat = _split(D(fake))
    loss = -score.float().mean() if family.loss == "wgan-gp" else F.softplus(-score.float()).mean()
    cycle = loss.new_zeros(())
    if z_hat is not None:  # G keeps z recoverable from its output
        cycle = (z_hat.float() - z).pow(2).mean()
        loss = loss + cycle_lambda * cycle
    return loss, cycle.detach()


class MetricsLog:
    """RUN/metrics.csv: one row per --log-every steps, flushed as written; on resume the rows
    past the checkpoint (from a run that went on after it) are dropped."""

    COLUMNS = ("step", "epoch", "images") + STATS + ("img_per_s", "seconds")

    def __init__(self, path: Path, resume_step: int | None):
        self.path = path
        rows: list[list[str]] = []
        if resume_step is not None and path.exists():
            with open(path, newline="") as fh:
                reader = csv.reader(fh)
                header = next(reader, None)
                if header == list(self.COLUMNS):
                    rows = [r for r in reader if len(r) == len(self.COLUMNS) and r[0].isdigit() and int(r[0]) <= resume_step]
        lines = [",".join(self.COLUMNS)] + [",".join(r) for r in rows]
        write_text(path, "\n".join(lines) + "\n")
        self.fh = open(path, "a", newline="")

    def write(self, values: dict[str, float]) -> None:
        row = [f"{values[c]:.6g}" if isinstance(values[c], float) else str(values[c]) for c in self.COLUMNS]
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
        fam = self.family
        self.opt_G = torch.optim.Adam(self.G.parameters(), lr=fam.lr_g, betas=fam.betas)
        self.opt_D = torch.optim.Adam(self.D.parameters(), lr=fam.lr_d, betas=fam.betas)

        self.amp_dtype: torch.dtype | None = None
        if self.device.type == "cuda" and train_cfg.amp:
            self.amp_dtype = torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float16
            torch.backends.cudnn.benchmark = True
        scaled = self.amp_dtype == torch.float16
        self.scaler_G = torch.amp.GradScaler(self.device.type, enabled=scaled)
        self.scaler_D = torch.amp.GradScaler(self.device.type, enabled=scaled)

        self.noise = torch.Generator(self.device)
        self.step, batches_seen = 0, 0
        if checkpoint is not None:
            batches_seen = self._restore_weights(checkpoint)

        self.real = RealBatches(train_cfg.data, model_cfg.resolution, model_cfg.channels, train_cfg.batch_size,
                                seed=train_cfg.seed, rank=world.rank, world_size=world.size,
                                num_workers=train_cfg.num_workers, batches_seen=batches_seen)
        if train_cfg.steps is None:
            epochs = train_cfg.epochs if train_cfg.epochs is not None else 1.0
            train_cfg.steps = max(1, math.ceil(epochs * self.real.batches_per_epoch / fam.n_critic))

        self.D_objective: nn.Module = DiscriminatorObjective(self.D, fam, model_cfg.cycle_lambda)
        self.G_train: nn.Module = self.G
        if world.distributed:
            ids = [self.device] if self.device.type == "cuda" else None
            self.G_train = DDP(self.G, device_ids=ids)
            self.D_objective = DDP(self.D_objective, device_ids=ids)
        self.fixed_z = LatentStream(train_cfg.seed, model_cfg.z_dim).take(train_cfg.grid_size)
        self._stop_signal: int | None = None
        # last, because setting up data loaders draws from the global RNG
        if checkpoint is not None:
            self._restore_rng(checkpoint)
        else:
            self._seed_rng()

    # ------------------------------------------------------------------ one step

    def _autocast(self):
        if self.amp_dtype is None:
            return contextlib.nullcontext()
        return torch.autocast(self.device.type, dtype=self.amp_dtype)

    def _latents(self, n: int) -> torch.Tensor:
        return torch.randn(n, self.model_cfg.z_dim, device=self.device, generator=self.noise)

    def _real_batch(self) -> torch.Tensor:
        images = next(self.real).to(self.device, non_blocking=True)
        return images.float().div_(127.5).sub_(1.0)

    def train_step(self) -> torch.Tensor:
        """One generator step (after n_critic D steps); returns the stats vector (STATS order)."""
        fam, cyc = self.family, self.model_cfg.cycle_lambda
        reuse = fam.n_critic == 1
        d_stats = None
        for _ in range(fam.n_critic):
            real = self._real_batch()
            z = self._latents(len(real))
            with self._autocast():
                if reuse:
                    fake = self.G_train(z)
                else:
                    with torch.no_grad():
                        fake = self.G(z)
            eps = None
            if fam.loss == "wgan-gp":
                eps = torch.rand(len(real), 1, 1, 1, device=self.device, generator=self.noise)
            with self._autocast():
                d_loss, d_stats = self.D_objective(real, fake.detach(), z, eps)
            self.opt_D.zero_grad(set_to_none=True)
            self.scaler_D.scale(d_loss).backward()
            self.scaler_D.step(self.opt_D)
            self.scaler_D.update()
        if not reuse:
            z = self._latents(self.cfg.batch_size)
            with self._autocast():
                fake = self.G_train(z)
        self.D.requires_grad_(False)
        try:
            with self._autocast():
                g_loss, g_cycle = generator_loss(self.D, fam, cyc, fake, z)
            self.opt_G.zero_grad(set_to_none=True)
            self.scaler_G.scale(g_loss).backward()
            self.scaler_G.step(self.opt_G)
            self.scaler_G.update()
        finally:
            self.D.requires_grad_(True)
        self._update_ema()
        self.step += 1
        # loss_d, loss_g, d_real, d_fake, gp, cycle (the G-side cycle error)
        return torch.stack([d_stats[0], g_loss.detach().float(), d_stats[1], d_stats[2], d_stats[3], g_cycle.float()])

    @torch.no_grad()
    def _update_ema(self) -> None:
        if self.G_ema is None:
            return
        decay = min(self.cfg.ema_decay, (1 + self.step) / (10 + self.step))  # warm-up: track G early on
        torch._foreach_lerp_(list(self.G_ema.parameters()), list(self.G.parameters()), 1 - decay)
        for ema_buf, buf in zip(self.G_ema.buffers(), self.G.buffers()):
            if ema_buf.dtype.is_floating_point:
                ema_buf.lerp_(buf, 1 - decay)
            else:
                ema_buf.copy_(buf)

    # ------------------------------------------------------------------ state

    def _rng_state(self) -> dict[str, torch.Tensor]:
        state = {"torch": torch.get_rng_state(), "noise": self.noise.get_state()}
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
        }

    def save(self, path: Path | None = None) -> Path:
        path = path or self.out / CHECKPOINT_NAME
        payload = self.checkpoint_payload()
        if payload is not None:
            save_checkpoint(path, payload)
        return path

    def _seed_rng(self, salt: int = 0) -> None:
        """Dropout, z and GP mixes: seeded per process (and per step when re-seeding on resume)."""
        rank = self.world.rank
        torch.manual_seed(self.cfg.seed + 1 + rank + 1000003 * salt)
        self.noise.manual_seed(self.cfg.seed * 7919 + 104729 * (rank + 1) + 1000003 * salt)
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
        self.noise.set_state(rng["noise"])
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
        self.step = int(ckpt["step"])
        batches = int(ckpt.get("batches_seen", 0))
        if int(ckpt.get("world_size", 1)) != self.world.size:
            batches = batches * int(ckpt.get("world_size", 1)) // self.world.size
        return batches

    # ------------------------------------------------------------------ the loop

    def save_grid(self) -> Path:
        path = grid_path(self.out, self.step)
        images = render_latents(self.G_ema, self.fixed_z.to(self.device))
        save_grid(path, images.numpy(), columns=math.ceil(math.sqrt(len(images))))
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
            write_text(self.out / "config.json", json.dumps(
                {"model": self.model_cfg.to_dict(), "train": cfg.to_dict(), "world_size": self.world.size}, indent=2) + "\n")
            log = MetricsLog(self.out / METRICS_NAME, self.step if self.step else None)
            if self.step == 0:
                self.save_grid()
        handlers = {}
        if hasattr(signal, "SIGTERM"):
            with contextlib.suppress(ValueError):  # not the main thread: no handlers
                for sig in (signal.SIGINT, signal.SIGTERM):
                    handlers[sig] = signal.signal(sig, self._on_signal)
        bar = progress(total=cfg.steps, desc=f"train {self.model_cfg.model}", unit="step", initial=self.step) if main else None
        sums = torch.zeros(len(STATS), device=self.device)
        count, images, t0, start = 0, 0, time.perf_counter(), time.perf_counter()
        per_step_images = cfg.batch_size * self.family.n_critic * self.world.size
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
                if self.step % cfg.log_every == 0 or last or stopped:
                    elapsed = time.perf_counter() - t0
                    means = (sums / count).tolist()
                    row = dict(zip(STATS, means))
                    row.update(step=self.step, epoch=self.real.epoch, images=self.real.batches_seen * cfg.batch_size * self.world.size,
                               img_per_s=images / max(elapsed, 1e-9), seconds=time.perf_counter() - start)
                    if log is not None:
                        log.write(row)
                    if bar is not None:
                        bar.set_postfix(d=f"{row['loss_d']:.3f}", g=f"{row['loss_g']:.3f}", img_s=f"{row['img_per_s']:.0f}")
                    sums.zero_()
                    count, images, t0 = 0, 0, time.perf_counter()
                if main and (self.step % cfg.sample_every == 0 or last or stopped):
                    self.save_grid()
                if self.step % cfg.ckpt_every == 0 or last or stopped:
                    self.save()
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
