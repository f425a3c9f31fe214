"""``ganeval train | sample | models | timelapse | interpolate``: the model zoo's commands.

The work lives in ``models/``; this module only parses arguments and reports."""
from __future__ import annotations

import argparse
import json
import os
from pathlib import Path

from ganeval.cli.common import (HelpFormatter, add_device_args, add_output_args, emit_json, nonneg_int, note,
                                positive_int)
from ganeval.errors import BadInput
from ganeval.features.registry import FEATURES
from ganeval.outputs import check_output_file, checkpoint_input

TRAIN_EXAMPLES = """examples:
  ganeval train dcgan --data faces/ --out runs/dcgan --steps 20000
  ganeval train wgan-gp --data faces.zip --out runs/wgan --epochs 30 --resolution 32
  ganeval train dcgan-seed --data faces.npz --out runs/seed --channels 1 --steps 5000
  ganeval train dcgan --data faces/ --out runs/dcgan --resume --steps 40000   # continue to step 40000
  torchrun --nproc_per_node 2 -m ganeval train resdcgan --data faces/ --out runs/res --steps 10000
  ganeval train srgan --data hr_faces/ --out runs/srgan --scale 4 --resolution 128 --steps 20000
  ganeval train ugatit --data photo2anime/ --out runs/ugatit --resolution 256 -O light=true   # trainA/ trainB/ testA/ testB/

--steps is the total for the run, so a resumed run takes the new total. --batch-size is per
process under torchrun. The run folder gets checkpoint.pt (every --ckpt-every steps and on
Ctrl-C/SIGTERM), metrics.csv, config.json and grids/step_*.png (a fixed-z grid of the EMA
generator every --sample-every steps)."""

SAMPLE_EXAMPLES = """examples:
  ganeval sample runs/dcgan/checkpoint.pt -n 50000 -o samples/
  ganeval sample runs/dcgan -n 10000 -o samples.npz --seed 7
  ganeval sample runs/sg2 -n 64 -o trunc/ --truncation 0.7     # stylegan2: truncation ψ

  ganeval sample runs/dcgan -n 50000 -o samples/ --resume      # after Ctrl-C: write the rest
  ganeval sample runs/dcgan -n 1000 -o samples/ --overwrite    # replace an earlier sample run

Images are 000000.png, 000001.png, ... (or one .npz with key "images", N×H×W×3 uint8).
Image i depends only on the checkpoint, the seed and i: a smaller -n gives a prefix of a
larger one, and `ganeval fid --generator CKPT` sees exactly these pixels.
An existing .npz or a non-empty folder is refused unless --overwrite (which replaces only
what `ganeval sample` wrote there). Interrupted (Ctrl-C, exit 130), it says how many
images it wrote; every file is complete, and --resume writes the rest (same checkpoint,
seed and settings), giving exactly the folder an uninterrupted run gives."""

MODELS_EXAMPLES = """examples:
  ganeval models
  ganeval models --json"""

TIMELAPSE_EXAMPLES = """examples:
  ganeval timelapse runs/dcgan                 # runs/dcgan/timelapse.gif (+ .mp4 with imageio-ffmpeg)
  ganeval timelapse runs/dcgan -o growth.gif --fps 4
  ganeval timelapse runs/dcgan --overwrite     # replace RUN/timelapse.gif after more training

An existing output file is refused unless --overwrite."""

INTERPOLATE_EXAMPLES = """examples:
  ganeval interpolate runs/dcgan/checkpoint.pt --seeds 1,2,3 -o walk.gif
  ganeval interpolate runs/dcgan --seeds 4,9 --frames 48 --no-loop --scale 2 -o walk.mp4
  ganeval interpolate runs/sg2 --seeds 1,2,3 --space w -o wwalk.gif   # stylegan2: lines in W

Seed s is the latent of image 0 of `ganeval sample --seed s`; the path follows great
circles (slerp) from seed to seed and back to the first. An existing output file is
refused unless --overwrite (e.g. `ganeval interpolate runs/dcgan --seeds 1,2 -o walk.gif --overwrite`)."""


def register(subparsers) -> None:
    p = subparsers.add_parser("train", help="train a GAN from the model zoo on an image source",
                              description="Train a GAN (see `ganeval models`) on a folder, zip, .npy or .npz of images.",
                              epilog=TRAIN_EXAMPLES, formatter_class=HelpFormatter)
    p.add_argument("model", metavar="MODEL", help="model family, e.g. dcgan (list: ganeval models)")
    p.add_argument("--data", metavar="SRC", help="training images (folder, zip, .npy, .npz)")
    p.add_argument("--out", metavar="RUN", required=True, help="run folder for checkpoint, metrics and grids")
    length = p.add_mutually_exclusive_group()
    length.add_argument("--steps", type=positive_int, help="total generator steps (default: one epoch)")
    length.add_argument("--epochs", type=float, help="total passes over the data, instead of --steps")
    p.add_argument("--batch-size", type=positive_int, help="images per batch per process (default: the paper's)")
    p.add_argument("--resolution", "--res", type=int, help="32, 64 or 128; stylegan2 32-512 (default 64)")
    p.add_argument("--channels", type=int, help="3 for colour, 1 for grayscale (default 3)")
    add_device_args(p)
    p.add_argument("--seed", type=int, help="seed for weights, data order and noise (default 0)")
    p.add_argument("--num-workers", type=nonneg_int, default=min(4, os.cpu_count() or 1),
                   help="decoding workers")
    p.add_argument("--ckpt-every", type=positive_int, help="checkpoint interval in steps (default 1000)")
    p.add_argument("--sample-every", type=positive_int, help="sample-grid interval in steps (default 500)")
    p.add_argument("--log-every", type=positive_int, help="metrics.csv row interval in steps (default 50)")
    p.add_argument("--ema-decay", type=float, help="decay of the generator's EMA copy (default 0.999; stylegan2 uses -O ema_kimg=10 instead)")
    p.add_argument("--width", type=positive_int, help="base feature maps of G and D (default: the family's)")
    p.add_argument("--z-dim", type=positive_int, help="latent size (default: the family's)")
    p.add_argument("--cycle-lambda", type=float, help="latent-cycle weight for resdcgan-cycle (default 0.1)")
    for flag, _key, kind, text in FAMILY_FLAGS:
        p.add_argument(flag, type=kind, help=text)
    p.add_argument("-O", "--option", action="append", default=[], metavar="KEY=VALUE",
                   help="a family-specific setting (repeatable), e.g. -O mapping_layers=4; "
                        "`ganeval models --json` lists each family's options")
    p.add_argument("--fid-every", type=nonneg_int, help="measure FID every N steps into RUN/fid.csv (default 0: off)")
    p.add_argument("--fid-ref", metavar="REF", help="FID reference: images or a statistics .npz (e.g. the training set)")
    p.add_argument("--fid-n", type=positive_int, help="generated samples per FID measurement (default 5000)")
    p.add_argument("--fid-features", choices=FEATURES, help="FID feature network (default inception)")
    p.add_argument("--fid-weights", metavar="PATH", help="feature-network weights (default: cache or download)")
    p.add_argument("--no-amp", action="store_true", help="full fp32 on CUDA (mixed precision is the default there)")
    p.add_argument("--resume", action="store_true", help="continue RUN/checkpoint.pt exactly where it stopped")
    p.set_defaults(func=_train)

    p = subparsers.add_parser("sample", help="write generated images from a checkpoint",
                              description="Generate N images from a checkpoint as PNGs in a folder or one .npz.",
                              epilog=SAMPLE_EXAMPLES, formatter_class=HelpFormatter)
    p.add_argument("checkpoint", metavar="CKPT", help="checkpoint file, or a run folder holding checkpoint.pt")
    p.add_argument("-n", type=positive_int, required=True, help="number of images")
    p.add_argument("-o", "--out", required=True, help="output folder (new or empty), or a file ending in .npz")
    add_output_args(p, resume=True)
    p.add_argument("--seed", type=int, default=0, help="latent seed")
    p.add_argument("--batch-size", type=positive_int, default=100, help="images per forward pass")
    p.add_argument("--no-ema", action="store_true", help="use the raw generator, not its EMA copy")
    p.add_argument("--truncation", type=float, metavar="PSI",
                   help="stylegan2 only: truncation ψ, w = w_avg + ψ(w − w_avg) (e.g. 0.7; default 1: none)")
    add_device_args(p)
    p.set_defaults(func=_sample)

    p = subparsers.add_parser("models", help="list the model families, one line each",
                              description="List the GAN families `ganeval train` knows.",
                              epilog=MODELS_EXAMPLES, formatter_class=HelpFormatter)
    p.add_argument("--json", action="store_true", help="machine-readable details")
    p.set_defaults(func=_models)

    p = subparsers.add_parser("timelapse", help="turn a run's sample grids into a GIF (and MP4)",
                              description="Animate RUN/grids/step_*.png in step order.",
                              epilog=TIMELAPSE_EXAMPLES, formatter_class=HelpFormatter)
    p.add_argument("run", metavar="RUN", help="run folder of `ganeval train`")
    p.add_argument("-o", "--out", help="output .gif or .mp4 (default RUN/timelapse.gif)")
    add_output_args(p)
    p.add_argument("--fps", type=float, default=8.0, help="frames per second")
    p.add_argument("--no-mp4", action="store_true", help="do not also write an MP4 beside the GIF")
    p.set_defaults(func=_timelapse)

    p = subparsers.add_parser("interpolate", help="animate a spherical latent walk through seeds",
                              description="Slerp between the latents of given seeds and animate the generated images.",
                              epilog=INTERPOLATE_EXAMPLES, formatter_class=HelpFormatter)
    p.add_argument("checkpoint", metavar="CKPT", help="checkpoint file, or a run folder holding checkpoint.pt")
    p.add_argument("--seeds", required=True, help="comma-separated seeds, at least two, e.g. 1,2,3")
    p.add_argument("-o", "--out", required=True, help="output .gif or .mp4")
    add_output_args(p)
    p.add_argument("--frames", type=positive_int, default=24, help="frames from one seed to the next")
    p.add_argument("--fps", type=float, default=12.0, help="frames per second")
    p.add_argument("--no-loop", action="store_true", help="stop at the last seed instead of returning to the first")
    p.add_argument("--scale", type=positive_int, default=1, help="enlarge frames by this factor (nearest)")
    p.add_argument("--no-ema", action="store_true", help="use the raw generator, not its EMA copy")
    p.add_argument("--space", choices=("z", "w"), default="z",
                   help="z: slerp between latents; w: straight lines in the mapped space (stylegan2 only)")
    p.add_argument("--truncation", type=float, metavar="PSI", help="stylegan2 only: truncation ψ (default 1: none)")
    add_device_args(p)
    p.set_defaults(func=_interpolate)


# ---------------------------------------------------------------------- train

_FIXED = ("resolution", "channels", "z_dim", "width", "cycle_lambda")  # ModelConfig fields the CLI can set

# Named flags for family-specific settings: (flag, key in ModelConfig.options, type, help).
# The family's ``options`` function validates them (and rejects keys it does not know), so
# adding a family's flag is one row here; anything else can be passed as -O KEY=VALUE.
FAMILY_FLAGS: tuple[tuple[str, str, type, str], ...] = (
    ("--pl-weight", "pl_weight", float, "stylegan2: path-length regularisation weight (default 0: off; paper 2)"),
    ("--r1-gamma", "r1_gamma", float, "stylegan2: R1 weight γ (default: the resolution preset's)"),
    ("--ada-target", "ada_target", float, "stylegan2: ADA target r_t for sign(D(real)) (default 0.6)"),
    ("--ada-kimg", "ada_kimg", float, "stylegan2: thousands of images for p to go 0 -> 1 (default 500)"),
    ("--scale", "scale", int, "srgan: upscaling factor 2, 4 or 8 (default 4); --resolution is the HR size"),
    ("--n-blocks", "n_blocks", int, "srgan/cyclegan/ugatit: residual blocks in G (default: the paper's)"),
    ("--perceptual", "perceptual", str, "srgan: off, auto, illust2vec[:PATH] or vgg19[:PATH] (default auto: "
                                        "whichever weights are cached, else off)"),
)


def _parse_value(text: str):
    """-O values: JSON literals (4, 0.5, true, null, "x") or else the bare string."""
    try:
        return json.loads(text)
    except ValueError:
        return text


def _family_options(args: argparse.Namespace) -> dict:
    """ModelConfig.options from -O KEY=VALUE and the named family flags (given ones only)."""
    options = {}
    for item in args.option:
        key, sep, value = item.partition("=")
        if not sep or not key.strip():
            raise BadInput(f"-O expects KEY=VALUE, got {item!r}")
        options[key.strip().replace("-", "_")] = _parse_value(value.strip())
    for _flag, key, _kind, _text in FAMILY_FLAGS:
        value = getattr(args, key)
        if value is not None:
            options[key] = value
    return options


# TrainConfig fields set by --fid-* flags (they may change on --resume)
FID_SETTINGS = ("fid_every", "fid_ref", "fid_n", "fid_features", "fid_weights")


def _resume_configs(ckpt: dict, args: argparse.Namespace):
    from ganeval.models.checkpoint import model_config
    from ganeval.models.trainer import TrainConfig

    model_cfg = model_config(ckpt)
    where = ckpt["path"]
    if args.model != model_cfg.model:
        raise BadInput(f"{where} holds a {model_cfg.model} run, not {args.model}")
    for name in _FIXED:
        given = getattr(args, name)
        if given is not None and given != getattr(model_cfg, name):
            raise BadInput(f"--{name.replace('_', '-')} {given} differs from the run being resumed "
                           f"({getattr(model_cfg, name)}); the architecture cannot change on resume")
    for key, given in _family_options(args).items():
        if model_cfg.options.get(key) != given:
            raise BadInput(f"option {key}={given!r} differs from the run being resumed "
                           f"({model_cfg.options.get(key)!r}); family options cannot change on resume")
    train_cfg = TrainConfig.from_dict(ckpt["config"].get("train", {}))
    for name in ("batch_size", "seed", "ema_decay"):
        given = getattr(args, name)
        if given is not None and given != getattr(train_cfg, name):
            raise BadInput(f"--{name.replace('_', '-')} {given} differs from the run being resumed "
                           f"({getattr(train_cfg, name)}); an exact resume needs the same value")
    if args.steps is not None or args.epochs is not None:
        train_cfg.steps, train_cfg.epochs = args.steps, args.epochs
    if args.data is not None:
        train_cfg.data = str(args.data)
    train_cfg.out = str(args.out)
    train_cfg.num_workers = args.num_workers
    for name in ("ckpt_every", "sample_every", "log_every") + FID_SETTINGS:
        if getattr(args, name) is not None:
            setattr(train_cfg, name, getattr(args, name))
    if args.no_amp:
        train_cfg.amp = False
    return model_cfg, train_cfg


def _train(args: argparse.Namespace) -> int:
    from ganeval.models.checkpoint import load_checkpoint
    from ganeval.models.distributed import setup, teardown
    from ganeval.models.registry import get_family
    from ganeval.models.trainer import CHECKPOINT_NAME, Trainer, TrainConfig

    family = get_family(args.model)
    if args.epochs is not None and args.epochs <= 0:
        raise BadInput(f"--epochs must be positive, got {args.epochs}")
    run = Path(args.out)
    ckpt_path = run / CHECKPOINT_NAME
    ckpt = None
    if args.resume:
        if not ckpt_path.is_file():
            raise BadInput(f"{run}: nothing to resume (no {CHECKPOINT_NAME}); drop --resume to start a new run")
        ckpt = load_checkpoint(ckpt_path)
        model_cfg, train_cfg = _resume_configs(ckpt, args)
    else:
        if ckpt_path.exists():
            raise BadInput(f"{run} already holds a run ({CHECKPOINT_NAME}); pass --resume to continue it or choose another --out")
        if args.data is None:
            raise BadInput("--data is required: a folder, zip, .npy or .npz of training images")
        model_cfg = family.config(args.resolution or 64, args.channels or 3, args.z_dim, args.width, args.cycle_lambda,
                                  _family_options(args))
        defaults = TrainConfig(data="", out="")
        train_cfg = TrainConfig(
            data=str(args.data), out=str(run), steps=args.steps, epochs=args.epochs,
            batch_size=args.batch_size or family.batch_size,
            seed=args.seed if args.seed is not None else defaults.seed,
            ema_decay=args.ema_decay if args.ema_decay is not None else defaults.ema_decay,
            ckpt_every=args.ckpt_every or defaults.ckpt_every,
            sample_every=args.sample_every or defaults.sample_every,
            log_every=args.log_every or defaults.log_every,
            num_workers=args.num_workers, amp=not args.no_amp,
            **{name: getattr(args, name) for name in FID_SETTINGS if getattr(args, name) is not None})
    if not 0 <= train_cfg.ema_decay < 1:
        raise BadInput(f"--ema-decay must be in [0, 1), got {train_cfg.ema_decay}")
    if train_cfg.steps is not None and ckpt is not None and train_cfg.steps <= int(ckpt["step"]):
        note(f"{run}: already at step {ckpt['step']} of {train_cfg.steps}; give a larger --steps to train on")
        return 0

    world, device = setup(args.device)
    clean_exit = False
    try:
        trainer = Trainer(model_cfg, train_cfg, device, world, ckpt)
        if world.is_main:
            note(f"training {model_cfg.model} {model_cfg.resolution}×{model_cfg.resolution}×{model_cfg.channels} "
                 f"on {train_cfg.data} ({len(trainer.real)} images), batch {train_cfg.batch_size}"
                 f"{f' × {world.size} processes' if world.distributed else ''}, {device}, "
                 f"steps {trainer.step} → {train_cfg.steps}")
        finished = trainer.fit()
        clean_exit = True
        if world.is_main:
            where = run / CHECKPOINT_NAME
            if finished:
                note(f"done: step {trainer.step}, checkpoint {where}, metrics {run / 'metrics.csv'}")
            else:
                note(f"stopped at step {trainer.step}; checkpoint {where} written; continue with --resume")
        return 0 if finished else 128 + int(trainer.stop_signal or 2)  # 130 for Ctrl-C, 143 for SIGTERM
    finally:
        teardown(clean=clean_exit)


# ---------------------------------------------------------------------- sample

def _sample(args: argparse.Namespace) -> int:
    from ganeval.models.samplewrite import write_samples

    result = write_samples(args.checkpoint, args.out, args.n, args.batch_size, args.seed, args.device,
                           use_ema=not args.no_ema, truncation=args.truncation, overwrite=args.overwrite,
                           resume=args.resume)
    kept = f" ({result.kept} kept from the interrupted run)" if result.kept else ""
    note(f"wrote {result.written} images{kept} ({result.resolution}px, seed {args.seed}, "
         f"{'raw G' if args.no_ema else 'EMA G'}, step {result.step}) to {result.path}")
    return 0


# ---------------------------------------------------------------------- models

def _models(args: argparse.Namespace) -> int:
    from ganeval.models.registry import FAMILIES

    if args.json:
        emit_json([{"name": f.name, "summary": f.summary, "resolutions": list(f.resolutions),
                    "channels": list(f.channels), "loss": f.loss, "n_critic": f.n_critic,
                    "lr_g": f.lr_g, "lr_d": f.lr_d, "betas": list(f.betas), "batch_size": f.batch_size,
                    "z_dim": f.z_dim, "width": f.width, "gp_lambda": f.gp_lambda,
                    "cycle_lambda": f.cycle_lambda, "options": f.options(64, {}) if f.options else {},
                    "reference": f.reference} for f in FAMILIES.values()])
        return 0
    res_width = max(len("/".join(map(str, f.resolutions))) for f in FAMILIES.values())
    for f in FAMILIES.values():
        print(f"{f.name:<15} {'/'.join(map(str, f.resolutions)):<{res_width}} {f.summary}")
    return 0


# ---------------------------------------------------------------------- timelapse / interpolate

def _timelapse(args: argparse.Namespace) -> int:
    from ganeval.models.visualise import timelapse

    from ganeval.models.visualise import mp4_available

    target = Path(args.out) if args.out else Path(args.run) / "timelapse.gif"
    targets = [target] + ([target.with_suffix(".mp4")] if target.suffix.lower() == ".gif" and not args.no_mp4
                          and mp4_available() else [])
    for path in targets:  # the run's grids are the input; RUN/timelapse.gif is an output beside them
        check_output_file(path, [Path(args.run) / "grids"], args.overwrite)
    written = timelapse(args.run, args.out, fps=args.fps, mp4=False if args.no_mp4 else None)
    note("wrote " + ", ".join(map(str, written)))
    return 0


def _parse_seeds(text: str) -> list[int]:
    try:
        seeds = [int(s) for s in text.replace(" ", "").split(",") if s]
    except ValueError:
        raise BadInput(f"--seeds must be comma-separated integers, e.g. 1,2,3; got {text!r}") from None
    return seeds


def _interpolate(args: argparse.Namespace) -> int:
    from ganeval.device import resolve_device
    from ganeval.models.checkpoint import load_generator
    from ganeval.models.sampling import (interpolation_latents, render_latents, render_ws, require_latent_model,
                                 require_mapping, w_interpolation)
    from ganeval.models.visualise import write_animation

    seeds = _parse_seeds(args.seeds)
    if Path(args.out).suffix.lower() not in (".gif", ".mp4"):
        raise BadInput(f"{args.out}: choose an output ending in .gif or .mp4")
    check_output_file(args.out, [checkpoint_input(args.checkpoint)], args.overwrite)
    generator, cfg = load_generator(args.checkpoint, resolve_device(args.device), use_ema=not args.no_ema)
    require_latent_model(cfg.model, "interpolate")
    if args.space == "w" or args.truncation is not None:
        require_mapping(generator, "--space w" if args.space == "w" else "--truncation", cfg.model)
    if args.space == "w":
        ws = w_interpolation(generator, seeds, args.frames, loop=not args.no_loop,
                             truncation=1.0 if args.truncation is None else args.truncation)
        frames = render_ws(generator, ws).numpy()
    else:
        z = interpolation_latents(seeds, cfg.z_dim, args.frames, loop=not args.no_loop)
        frames = render_latents(generator, z, truncation=args.truncation).numpy()
    if args.scale > 1:
        frames = frames.repeat(args.scale, axis=1).repeat(args.scale, axis=2)
    write_animation(args.out, list(frames), args.fps)
    note(f"wrote {len(frames)} frames through seeds {', '.join(map(str, seeds))} to {args.out}")
    return 0
