"""Training objectives: what one training step does, per family.

The trainer owns everything every family shares (models, EMA copy, optimisers, data
order, RNGs, AMP, checkpoints, metrics, grids, signals, DDP process group). An
``Objective`` owns what differs: the D and G updates of one step, their regularisers, any
extra state that must survive a resume (ADA's p, a path-length mean), the numbers logged
to ``metrics.csv`` and, optionally, how real batches are made. A ``Family`` names its
objective (``Family(objective=MyObjective)``); families that name none get
``GANObjective``, the unconditional GAN step of part 1 (non-saturating or WGAN-GP, with
the optional latent cycle), bit for bit.

Life cycle, as the trainer calls it::

    obj = Family.objective(trainer)       # after G and D are built (and on the device)
    opt_G, opt_D = obj.make_optimizers()
    obj.load_state_dict(ckpt["objective"])      # on resume only
    trainer.real = obj.make_data(batches_seen)  # default: RealBatches of the --data source
    obj.setup()                           # e.g. wrap modules in DDP when world.distributed
    per step: stats = obj.step(); trainer updates G_ema with obj.ema_decay()
    per log row: the mean of ``stats`` over the interval (names: obj.stats) + obj.gauges()
"""
from __future__ import annotations

import weakref
from typing import TYPE_CHECKING, Any

import torch
import torch.distributed as dist
import torch.nn.functional as F
from torch import nn

from ganeval.images import uint8_to_signed as to_signed  # noqa: F401  (the one uint8 → [-1, 1] conversion)
from torch.nn.parallel import DistributedDataParallel as DDP

from ganeval.models.data import RealBatches

if TYPE_CHECKING:  # pragma: no cover
    from ganeval.models.trainer import Trainer

GAN_STATS = ("loss_d", "loss_g", "d_real", "d_fake", "gp", "cycle")


class Objective:
    """One family's training step. Subclass it and name it in the family's ``Family``.

    ``self.t`` is the trainer: ``t.G``, ``t.D``, ``t.G_ema`` (None off rank 0), ``t.opt_G``,
    ``t.opt_D``, ``t.scaler_G``, ``t.scaler_D``, ``t.real`` (from ``make_data``),
    ``t.model_cfg`` (its ``options`` dict holds family settings), ``t.cfg`` (TrainConfig),
    ``t.family``, ``t.world``, ``t.device``, ``t.step`` (generator steps done, before this
    one), ``t.noise`` (a seeded torch.Generator on the device, checkpointed), and helpers
    ``t.autocast()``, ``t.latents(n)``, ``t.real_batch()`` (next real batch in [-1, 1]).
    Draw randomness only from ``t.noise`` or the global RNG (both are seeded and restored
    on resume), never from a fresh unseeded generator, so resume stays exact."""

    stats: tuple[str, ...] = ()  # per-step values, averaged over each metrics.csv row
    gauge_names: tuple[str, ...] = ()  # values logged as they are at the row (e.g. ada_p)

    def __init__(self, trainer: "Trainer"):
        # a weak reference: no trainer ↔ objective cycle, so a dropped trainer (and its DDP
        # wrappers) is freed at once, not by a late garbage collection after the process
        # group is gone (which aborts the process)
        self.t = trainer if isinstance(trainer, weakref.ProxyTypes) else weakref.proxy(trainer)

    @property
    def batches_per_step(self) -> int:
        """Real batches drawn per generator step (turns --epochs into steps, counts images)."""
        return 1

    def make_optimizers(self) -> tuple[torch.optim.Optimizer, torch.optim.Optimizer]:
        """(opt_G, opt_D): Adam with the family's paper settings by default."""
        fam = self.t.family
        return (torch.optim.Adam(self.t.G.parameters(), lr=fam.lr_g, betas=fam.betas),
                torch.optim.Adam(self.t.D.parameters(), lr=fam.lr_d, betas=fam.betas))

    def make_data(self, batches_seen: int) -> Any:
        """The real-image stream. Anything with ``__next__`` (what ``step`` consumes),
        ``batches_seen`` (batches drawn so far by this process; it is checkpointed and
        given back here on resume, so the stream must restart exactly after that many),
        ``batches_per_epoch``, ``epoch`` and ``__len__`` (images) will do."""
        t = self.t
        return RealBatches(t.cfg.data, t.model_cfg.resolution, t.model_cfg.channels, t.cfg.batch_size,
                           seed=t.cfg.seed, rank=t.world.rank, world_size=t.world.size,
                           num_workers=t.cfg.num_workers, batches_seen=batches_seen)

    def setup(self) -> None:
        """Called once the data exists: wrap modules for DDP and the like."""

    def step(self) -> torch.Tensor:
        """One generator step with its D updates; returns a float vector in ``stats`` order."""
        raise NotImplementedError

    def ema_decay(self) -> float:
        """Decay of this step's G_ema update (``t.step`` is not yet incremented)."""
        step = self.t.step
        return min(self.t.cfg.ema_decay, (1 + step) / (10 + step))  # warm-up: track G early on

    def gauges(self) -> dict[str, float]:
        return {}

    def grid_images(self) -> torch.Tensor:
        """uint8 N×H×W×3 images for RUN/grids/ (default: G_ema on the run's fixed z)."""
        from ganeval.models.sampling import render_latents

        return render_latents(self.t.G_ema, self.t.fixed_z.to(self.t.device))

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
        if not self.t.world.distributed:
            return
        params = [p for p in module.parameters() if p.requires_grad]
        for p in params:
            if p.grad is None:
                p.grad = torch.zeros_like(p)
        flat = torch.cat([p.grad.flatten() for p in params])
        dist.all_reduce(flat)
        flat /= self.t.world.size
        offset = 0
        for p in params:
            n = p.numel()
            p.grad.copy_(flat[offset:offset + n].view_as(p.grad))
            offset += n

    def all_reduce_mean(self, values: torch.Tensor) -> torch.Tensor:
        """Mean of a tensor over processes (itself when single-process)."""
        if self.t.world.distributed:
            values = values.clone()
            dist.all_reduce(values)
            values /= self.t.world.size
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

    def __init__(self, trainer: "Trainer"):
        super().__init__(trainer)
        fam = trainer.family
        self.D_loss: nn.Module = DiscriminatorObjective(trainer.D, fam.loss, fam.gp_lambda,
                                                        trainer.model_cfg.cycle_lambda)
        self.G_train: nn.Module = trainer.G

    @property
    def batches_per_step(self) -> int:
        return self.t.family.n_critic

    def setup(self) -> None:
        t = self.t
        if t.world.distributed:
            ids = [t.device] if t.device.type == "cuda" else None
            self.G_train = DDP(t.G, device_ids=ids)
            self.D_loss = DDP(self.D_loss, device_ids=ids)

    def step(self) -> torch.Tensor:
        t = self.t
        fam, cyc = t.family, t.model_cfg.cycle_lambda
        reuse = fam.n_critic == 1
        d_stats = None
        for _ in range(fam.n_critic):
            real = t.real_batch()
            z = t.latents(len(real))
            with t.autocast():
                if reuse:
                    fake = self.G_train(z)
                else:
                    with torch.no_grad():
                        fake = t.G(z)
            eps = None
            if fam.loss == "wgan-gp":
                eps = torch.rand(len(real), 1, 1, 1, device=t.device, generator=t.noise)
            with t.autocast():
                d_loss, d_stats = self.D_loss(real, fake.detach(), z, eps)
            self.optimise(d_loss, t.opt_D, t.scaler_D)
        if not reuse:
            z = t.latents(t.cfg.batch_size)
            with t.autocast():
                fake = self.G_train(z)
        t.D.requires_grad_(False)
        try:
            with t.autocast():
                g_loss, g_cycle = generator_loss(t.D, fam.loss, cyc, fake, z)
            self.optimise(g_loss, t.opt_G, t.scaler_G)
        finally:
            t.D.requires_grad_(True)
        # loss_d, loss_g, d_real, d_fake, gp, cycle (the G-side cycle error)
        return torch.stack([d_stats[0], g_loss.detach().float(), d_stats[1], d_stats[2], d_stats[3], g_cycle.float()])

