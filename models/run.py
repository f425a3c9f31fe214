"""A training run from a request: the new-run and resume rules, then the trainer.

``ganeval train`` fills a ``TrainRequest`` (None: not given) and calls ``train``; every rule
about what a run may become lives here, not in the CLI:

- a new run needs ``--data`` and a run folder without a checkpoint;
- ``--resume`` needs that checkpoint, and refuses (BadInput, one line, before anything is
  written) a different model, architecture, family option, batch size, seed or EMA decay,
  and data whose content hash differs from the one stored in the run (config.json is not
  touched then); the length (steps/epochs), intervals, FID settings and workers may change;
- a run already at its requested length is left alone.

The named family flags (``--pl-weight``, ``--scale``, ...) are listed in ``models/flags.py``;
the CLI adds one argument per row and the family's ``options`` function validates them."""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

from ganeval.errors import BadInput
from ganeval.models.checkpoint import load_checkpoint, model_config
from ganeval.models.data import data_hash
from ganeval.models.registry import get_family
from ganeval.models.spec import ModelConfig
from ganeval.models.trainer import CHECKPOINT_NAME, METRICS_NAME, Trainer, TrainConfig

ARCHITECTURE = ("resolution", "channels", "z_dim", "width", "cycle_lambda")  # ModelConfig fields a request may set
EXACT_RESUME = ("batch_size", "seed", "ema_decay")  # TrainConfig fields a resume must keep
CHANGEABLE = ("ckpt_every", "sample_every", "log_every", "fid_every", "fid_ref", "fid_n", "fid_features", "fid_weights",
              "fid_metrics")


@dataclass
class TrainRequest:
    """What the user asked for; None means "not given" (the family's default, or the run's on resume)."""

    model: str
    out: str
    data: str | None = None
    resume: bool = False
    steps: int | None = None
    epochs: float | None = None
    batch_size: int | None = None
    resolution: int | None = None
    channels: int | None = None
    z_dim: int | None = None
    width: int | None = None
    cycle_lambda: float | None = None
    options: dict[str, Any] = field(default_factory=dict)  # -O KEY=VALUE and the named family flags
    seed: int | None = None
    ema_decay: float | None = None
    num_workers: int = 0
    ckpt_every: int | None = None
    sample_every: int | None = None
    log_every: int | None = None
    fid_every: int | None = None
    fid_ref: str | None = None
    fid_n: int | None = None
    fid_features: str | None = None
    fid_weights: str | None = None
    fid_metrics: str | None = None
    amp: bool = True


@dataclass
class TrainPlan:
    model: ModelConfig
    train: TrainConfig
    checkpoint: dict[str, Any] | None  # the run being resumed
    done_already: bool = False  # a resumed run already at its requested length


@dataclass
class TrainOutcome:
    finished: bool  # False: stopped by a signal (after writing the checkpoint)
    step: int
    stop_signal: int | None
    checkpoint: Path
    metrics: Path
    main: bool  # the process that writes the run (rank 0): the one that reports


def _new_run(req: TrainRequest, ckpt_path: Path) -> TrainPlan:
    if ckpt_path.exists():
        raise BadInput(f"{req.out} already holds a run ({CHECKPOINT_NAME}); pass --resume to continue it or choose another --out")
    if req.data is None:
        raise BadInput("--data is required: a folder, zip, .npy or .npz of training images")
    family = get_family(req.model)
    model_cfg = family.config(req.resolution or 64, req.channels or 3, req.z_dim, req.width, req.cycle_lambda,
                              req.options)
    given = {name: getattr(req, name) for name in ("steps", "epochs", "seed", "ema_decay") + CHANGEABLE}
    train_cfg = TrainConfig(data=str(req.data), out=str(req.out), batch_size=req.batch_size or family.batch_size,
                            num_workers=req.num_workers, amp=req.amp,
                            **{k: v for k, v in given.items() if v is not None})
    train_cfg.data_hash = data_hash(train_cfg.data)
    return TrainPlan(model_cfg, train_cfg, None)


def _resumed_run(req: TrainRequest, ckpt_path: Path) -> TrainPlan:
    if not ckpt_path.is_file():
        raise BadInput(f"{req.out}: nothing to resume (no {CHECKPOINT_NAME}); drop --resume to start a new run")
    ckpt = load_checkpoint(ckpt_path)
    stored = model_config(ckpt)
    where = ckpt["path"]
    if req.model != stored.model:
        raise BadInput(f"{where} holds a {stored.model} run, not {req.model}")
    family = get_family(stored.model)
    # re-validated: fills options added since the run began, maps old names (stylegan2's width → channel_max)
    model_cfg = family.config(stored.resolution, stored.channels, stored.z_dim, stored.width, stored.cycle_lambda,
                              stored.options)
    for name in ARCHITECTURE:
        given = getattr(req, name)
        current = getattr(model_cfg, name)
        if name == "width" and family.width_option is not None:
            current = model_cfg.options[family.width_option]
        if given is not None and given != current:
            raise BadInput(f"--{name.replace('_', '-')} {given} differs from the run being resumed "
                           f"({current}); the architecture cannot change on resume")
    for key, given in req.options.items():
        if model_cfg.options.get(key) != given:
            raise BadInput(f"option {key}={given!r} differs from the run being resumed "
                           f"({model_cfg.options.get(key)!r}); family options cannot change on resume")
    train_cfg = TrainConfig.from_dict(ckpt["config"].get("train", {}))
    for name in EXACT_RESUME:
        given = getattr(req, name)
        if given is not None and given != getattr(train_cfg, name):
            raise BadInput(f"--{name.replace('_', '-')} {given} differs from the run being resumed "
                           f"({getattr(train_cfg, name)}); an exact resume needs the same value")
    if req.steps is not None or req.epochs is not None:
        train_cfg.steps, train_cfg.epochs = req.steps, req.epochs
    if req.data is not None:
        train_cfg.data = str(req.data)
    train_cfg.out = str(req.out)
    train_cfg.num_workers = req.num_workers
    for name in CHANGEABLE:
        if getattr(req, name) is not None:
            setattr(train_cfg, name, getattr(req, name))
    if not req.amp:
        train_cfg.amp = False
    done = train_cfg.steps is not None and train_cfg.steps <= int(ckpt["step"])
    if not done:
        _check_same_data(train_cfg, where, req.data is not None)
    return TrainPlan(model_cfg, train_cfg, ckpt, done)


def _check_same_data(train_cfg: TrainConfig, where: str, given: bool) -> None:
    """Refuse to continue on other images than the run's (runs older than the hash get it now)."""
    current = data_hash(train_cfg.data)
    stored = train_cfg.data_hash
    if stored is not None and current != stored:
        what = "--data" if given else "the run's data"
        raise BadInput(f"{what} {train_cfg.data} holds other images than the run being resumed was trained on "
                       f"(content hash {current[:12]}, {where} has {stored[:12]}); resume on the same data or "
                       "start a new run with another --out")
    train_cfg.data_hash = current


def plan_training(req: TrainRequest) -> TrainPlan:
    """Configs for a new or resumed run; BadInput (one line) before anything is written."""
    get_family(req.model)  # an unknown model is the first thing to hear about
    if req.epochs is not None and req.epochs <= 0:
        raise BadInput(f"--epochs must be positive, got {req.epochs}")
    ckpt_path = Path(req.out) / CHECKPOINT_NAME
    plan = _resumed_run(req, ckpt_path) if req.resume else _new_run(req, ckpt_path)
    if not 0 <= plan.train.ema_decay < 1:
        raise BadInput(f"--ema-decay must be in [0, 1), got {plan.train.ema_decay}")
    return plan


def train(plan: TrainPlan, device_spec: str = "auto", report: Callable[[str], None] = print) -> TrainOutcome:
    """Run ``plan`` (joining the torchrun process group when launched by torchrun); ``report``
    gets the one-line start message on rank 0."""
    from ganeval.distributed import setup, teardown

    world, device = setup(device_spec)
    clean_exit = False
    try:
        trainer = Trainer(plan.model, plan.train, device, world, plan.checkpoint)
        m, t = plan.model, plan.train
        if world.is_main:
            report(f"training {m.model} {m.resolution}×{m.resolution}×{m.channels} on {t.data} "
                   f"({len(trainer.real)} images), batch {t.batch_size}"
                   f"{f' × {world.size} processes' if world.distributed else ''}, {device}, "
                   f"steps {trainer.step} → {t.steps}")
        finished = trainer.fit()
        clean_exit = True
        out = Path(t.out)
        return TrainOutcome(finished, trainer.step, trainer.stop_signal, out / CHECKPOINT_NAME, out / METRICS_NAME,
                            world.is_main)
    finally:
        teardown(clean=clean_exit)
