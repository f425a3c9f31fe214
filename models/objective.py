"""Training objectives: what one training step does, per family.

The trainer owns everything every family shares (models, EMA copy, optimisers, data
order, RNGs, AMP, checkpoints, metrics, grids, signals, DDP process group). An
``Objective`` says what differs: the D and G updates of one step, their regularisers, any
extra state that must survive a resume (ADA's p, a path-length mean), the numbers logged
to ``metrics.csv`` and, optionally, how real batches and optimisers are made. A ``Family``
names its objective (``Family(objective=MyObjective)``); families that name none get
``GANObjective``, the unconditional GAN step (non-saturating or WGAN-GP, with
the optional latent cycle), bit for bit.

An objective never sees the trainer. It is built from a ``TrainingSpec`` (family, configs,
process world, device) and the modules it trains; each step gets a ``StepContext`` with
everything that step may use (models, optimisers, grad scalers, the real-batch stream,
the step number, the seeded RNG), as NVlabs' ``Loss.accumulate_gradients`` takes its
inputs as arguments. Life cycle, as the trainer calls it::

    obj = Family.objective(spec, G, D)          # after G and D are built (and on the device)
    opt_G, opt_D = obj.make_optimizers(G, D)
    obj.load_state_dict(ckpt["objective"])      # on resume only
    data = obj.make_data(batches_seen)          # default: RealBatches of the --data source
    obj.setup()                                 # e.g. wrap modules in DDP when world.distributed
    per step: stats = obj.step(ctx); G_ema follows G with obj.ema_decay(ctx.step)
    per log row: the mean of ``stats`` over the interval (names: obj.stats) + obj.gauges()
"""
from __future__ import annotations

import contextlib
from dataclasses import dataclass
from typing import Any

import torch
import torch.distributed as dist
import torch.nn.functional as F
from torch import nn

from ganeval.images import uint8_to_signed as to_signed  # noqa: F401  (the one uint8 → [-1, 1] conversion)
from torch.nn.parallel import DistributedDataParallel as DDP

from ganeval.models.data import RealBatches
from ganeval.distributed import World
from ganeval.models.spec import Family, ModelConfig

GAN_STATS = ("loss_d", "loss_g", "d_real", "d_fake", "gp", "cycle")


@dataclass(frozen=True)
class TrainingSpec:
    """What an objective is built from: the run's settings, not its state."""

    family: Family
    model: ModelConfig  # ``model.options`` holds the family's settings
    train: Any  # TrainConfig (batch_size, steps, data, seed, ...)
    world: World
    device: torch.device


@dataclass
class StepContext:
    """Everything one training step works with. ``step``: generator steps done before this
    one. Draw randomness only from ``rng`` or the global RNG (both seeded and restored on
    resume), never from a fresh unseeded generator, so resume stays exact."""

    G: nn.Module
    D: nn.Module
    opt_G: torch.optim.Optimizer
    opt_D: torch.optim.Optimizer
    scaler_G: torch.amp.GradScaler
    scaler_D: torch.amp.GradScaler
    data: Any  # the real-batch stream (``make_data``)
    step: int
    rng: torch.Generator  # on the device; checkpointed
    device: torch.device
    z_dim: int
    amp_dtype: torch.dtype | None = None

    def autocast(self):
        """Mixed precision on CUDA (when enabled), a no-op elsewhere."""
        if self.amp_dtype is None:
            return contextlib.nullcontext()
        return torch.autocast(self.device.type, dtype=self.amp_dtype)

    def latents(self, n: int) -> torch.Tensor:
        """n standard-normal z from the seeded, checkpointed RNG."""
        return torch.randn(n, self.z_dim, device=self.device, generator=self.rng)

    def real_batch(self) -> torch.Tensor:
        """The next real batch of the data stream, as floats in [-1, 1]."""
        return to_signed(next(self.data).to(self.device, non_blocking=True))


class Objective:
    """One family's training step. Subclass it and name it in the family's ``Family``."""

    stats: tuple[str, ...] = ()  # per-step values, averaged over each metrics.csv row
    gauge_names: tuple[str, ...] = ()  # values logged as they are at the row (e.g. ada_p)
    # G_ema's buffers: copied from G (StyleGAN2-ADA's rule, so w_avg is G's) or blended like the weights
    ema_copies_buffers: bool = False

    def __init__(self, spec: TrainingSpec, G: nn.Module, D: nn.Module):
        self.spec = spec
        self.options = spec.model.options
        self.device, self.world = spec.device, spec.world

    @property
    def batches_per_step(self) -> int:
        """Real batches drawn per generator step (turns --epochs into steps, counts images)."""
        return 1

    def make_optimizers(self, G: nn.Module, D: nn.Module) -> tuple[torch.optim.Optimizer, torch.optim.Optimizer]:
        """(opt_G, opt_D): Adam with the family's paper settings by default."""
        fam = self.spec.family
        return (torch.optim.Adam(G.parameters(), lr=fam.lr_g, betas=fam.betas),
                torch.optim.Adam(D.parameters(), lr=fam.lr_d, betas=fam.betas))

    def make_data(self, batches_seen: int) -> Any:
        """The real-image stream. Anything with ``__next__`` (what ``step`` consumes),
        ``batches_seen`` (batches drawn so far by this process; it is checkpointed and
        given back here on resume, so the stream must restart exactly after that many),
        ``batches_per_epoch``, ``epoch`` and ``__len__`` (images) will do."""
        s = self.spec
        return RealBatches(s.train.data, s.model.resolution, s.model.channels, s.train.batch_size,
                           seed=s.train.seed, rank=s.world.rank, world_size=s.world.size,
                           num_workers=s.train.num_workers, batches_seen=batches_seen)

    def setup(self) -> None:
        """Called once the data exists: wrap modules for DDP and the like."""

    def step(self, ctx: StepContext) -> torch.Tensor:
        """One generator step with its D updates; returns a float vector in ``stats`` order."""
        raise NotImplementedError

    def ema_decay(self, step: int) -> float:
        """Decay of the G_ema update after generator step ``step`` (0-based, before counting it)."""
        return min(self.spec.train.ema_decay, (1 + step) / (10 + step))  # warm-up: track G early on

    def gauges(self) -> dict[str, float]:
        return {}

    def grid_images(self, G_ema: nn.Module, fixed_z: torch.Tensor) -> torch.Tensor:
        """uint8 N×H×W×3 images for RUN/grids/ (default: G_ema on the run's fixed z)."""
        from ganeval.models.sampling import render_latents

        return render_latents(G_ema, fixed_z.to(self.device))

    def grid_columns(self) -> int | None:
        """Images per grid row (None: as square as possible)."""
        return None

    def state_dict(self) -> dict[str, Any]:
        """Extra state for the checkpoint (plain types and tensors only: weights_only loads)."""
        return {}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Restore what ``state_dict`` returned ({} for checkpoints written without it)."""

    # ------------------------------------------------------------------ helpers

    def optimise(self, loss: torch.Tensor, opt: torch.optim.Optimizer, scaler: torch.amp.GradScaler,
                 params: nn.Module | None = None) -> None:
        """zero_grad → (scaled) backward → [all-reduce grads of ``params`` under DDP] → step."""
        opt.zero_grad(set_to_none=True)
        scaler.scale(loss).backward()
        if params is not None:
            self.all_reduce_grads(params)
        scaler.step(opt)
        scaler.update()

    def all_reduce_grads(self, module: nn.Module) -> None:
        """Average gradients across processes by hand, for objectives whose losses DDP
        cannot wrap (double backward for R1 or path length, several forwards per backward)."""
        if not self.world.distributed:
            return
        params = [p for p in module.parameters() if p.requires_grad]
        for p in params:
            if p.grad is None:
                p.grad = torch.zeros_like(p)
        flat = torch.cat([p.grad.flatten() for p in params])
        dist.all_reduce(flat)
        flat /= self.world.size
        offset = 0
        for p in params:
            n = p.numel()
            p.grad.copy_(flat[offset:offset + n].view_as(p.grad))
            offset += n

    def all_reduce_mean(self, values: torch.Tensor) -> torch.Tensor:
        """Mean of a tensor over processes (itself when single-process)."""
        if self.world.distributed:
            values = values.clone()
            dist.all_reduce(values)
            values /= self.world.size
        return values


# ---------------------------------------------------------------------- the part-1 GAN step

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

    def __init__(self, D: nn.Module, loss: str, gp_lambda: float, cycle_lambda: float):
        super().__init__()
        self.D, self.loss, self.gp_lambda, self.cycle_lambda = D, loss, gp_lambda, cycle_lambda

    def forward(self, real: torch.Tensor, fake: torch.Tensor, z: torch.Tensor,
                eps: torch.Tensor | None) -> tuple[torch.Tensor, torch.Tensor]:
        s_real, _ = _split(self.D(real))
        s_fake, z_hat = _split(self.D(fake))
        zero = s_real.new_zeros(()).float()
        gp, cycle = zero, zero
        if self.loss == "wgan-gp":
            loss = s_fake.float().mean() - s_real.float().mean()
            gp = gradient_penalty(self.D, real, fake, eps)
            loss = loss + self.gp_lambda * gp
        else:
            loss = F.softplus(-s_real.float()).mean() + F.softplus(s_fake.float()).mean()
        if z_hat is not None:  # the head learns to read z back from (detached) fakes
            cycle = (z_hat.float() - z).pow(2).mean()
            loss = loss + self.cycle_lambda * cycle
        stats = torch.stack([loss.detach(), s_real.detach().float().mean(), s_fake.detach().float().mean(),
                             gp.detach(), cycle.detach()])
        return loss, stats


def generator_loss(D: nn.Module, loss_kind: str, cycle_lambda: float, fake: torch.Tensor,
                   z: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    score, z_hat = _split(D(fake))
    loss = -score.float().mean() if loss_kind == "wgan-gp" else F.softplus(-score.float()).mean()
    cycle = loss.new_zeros(())
    if z_hat is not None:  # G keeps z recoverable from its output
        cycle = (z_hat.float() - z).pow(2).mean()
        loss = loss + cycle_lambda * cycle
    return loss, cycle.detach()


class GANObjective(Objective):
    """Unconditional GAN step: ``n_critic`` D updates, each on a fresh real batch, then one
    G update. With ``n_critic == 1`` the G step reuses the fakes of the D step (one G
    forward per step, as in the PyTorch DCGAN example). D is frozen during the G step, so
    no D weight gradients are computed there. Under DDP, G and the D loss are wrapped in
    DistributedDataParallel."""

    stats = GAN_STATS

    def __init__(self, spec: TrainingSpec, G: nn.Module, D: nn.Module):
        super().__init__(spec, G, D)
        fam = spec.family
        self.G = G
        self.D_loss: nn.Module = DiscriminatorObjective(D, fam.loss, fam.gp_lambda, spec.model.cycle_lambda)
        self.G_train: nn.Module = G

    @property
    def batches_per_step(self) -> int:
        return self.spec.family.n_critic

    def setup(self) -> None:
        if self.world.distributed:
            ids = [self.device] if self.device.type == "cuda" else None
            self.G_train = DDP(self.G, device_ids=ids)
            self.D_loss = DDP(self.D_loss, device_ids=ids)

    def step(self, ctx: StepContext) -> torch.Tensor:
        fam, cyc = self.spec.family, self.spec.model.cycle_lambda
        reuse = fam.n_critic == 1
        d_stats = None
        for _ in range(fam.n_critic):
            real = ctx.real_batch()
            z = ctx.latents(len(real))
            with ctx.autocast():
                if reuse:
                    fake = self.G_train(z)
                else:
                    with torch.no_grad():
                        fake = ctx.G(z)
            eps = None
            if fam.loss == "wgan-gp":
                eps = torch.rand(len(real), 1, 1, 1, device=ctx.device, generator=ctx.rng)
            with ctx.autocast():
                d_loss, d_stats = self.D_loss(real, fake.detach(), z, eps)
            self.optimise(d_loss, ctx.opt_D, ctx.scaler_D)
        if not reuse:
            z = ctx.latents(self.spec.train.batch_size)
            with ctx.autocast():
                fake = self.G_train(z)
        ctx.D.requires_grad_(False)
        try:
            with ctx.autocast():
                g_loss, g_cycle = generator_loss(ctx.D, fam.loss, cyc, fake, z)
            self.optimise(g_loss, ctx.opt_G, ctx.scaler_G)
        finally:
            ctx.D.requires_grad_(True)
        # loss_d, loss_g, d_real, d_fake, gp, cycle (the G-side cycle error)
        return torch.stack([d_stats[0], g_loss.detach().float(), d_stats[1], d_stats[2], d_stats[3], g_cycle.float()])

