"""``ganeval train | sample | models | timelapse | interpolate``: the model zoo's commands.

The work lives in ``models/``; this module only parses arguments and reports."""
from __future__ import annotations

import argparse
import json
from pathlib import Path

from ganeval.cli.common import (DEFAULT_WORKERS, HelpFormatter, add_device_args, add_output_args, emit_json,
                                nonneg_int, note, positive_int)
from ganeval.cli.generator_args import (GENERATOR_HELP, add_sampling_args, load_from_args, sample_options,
                                        seeds_from_args)
from ganeval.errors import BadInput
from ganeval.features.registry import FEATURES
from ganeval.models.flags import FAMILY_FLAGS
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
Ctrl-C/SIGTERM), metrics.csv (a row per completed --log-every interval), config.json (with
the data's content hash and any skipped unreadable images) and grids/step_*.png (a fixed-z
grid of the EMA generator every --sample-every steps). --resume refuses other images than
the run's (by content hash), another architecture, family option, batch size or seed."""

SAMPLE_EXAMPLES = """examples:
  ganeval sample runs/dcgan/checkpoint.pt -n 50000 -o samples/
  ganeval sample runs/dcgan -n 10000 -o samples.npz --seed 7
  ganeval sample network-snapshot-025000.pkl --seeds 0-3 --truncation 0.7 -o out.npz   # an NVlabs pickle
  ganeval sample stylegan3-r-afhqv2-512x512.pkl --seeds 0-99 --noise-mode const -o afhq/
  ganeval sample cond.pkl --seeds 0-15 --class 3 -o class3/       # a conditional model
  ganeval sample mygan.models:build_G --z-dim 128 -n 100 -o mine/  # your own code (runs it)
  ganeval sample runs/sg2 -n 5000 -o fidset/ --noise-mode random   # the pixels `fid --generator` sees

  ganeval sample runs/dcgan -n 50000 -o samples/ --resume      # after Ctrl-C: write the rest
  ganeval sample runs/dcgan -n 1000 -o samples/ --overwrite    # replace an earlier sample run

Images are 000000.png, 000001.png, ... (or one .npz with keys "images", N×H×W×3 uint8, and
"seeds"). The image of seed s has z = numpy RandomState(s).randn(1, z_dim), as NVlabs'
gen_images.py draws it, and depends on s alone: not on -n, the batch size or the command
(`fid --generator`, `nearest --generator` and `compare` see exactly these pixels).
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

Seed s is the latent of `ganeval sample --seeds s`; the path follows great
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
    p.add_argument("--num-workers", type=nonneg_int, default=DEFAULT_WORKERS,
                   help="decoding workers")
    p.add_argument("--ckpt-every", type=positive_int, help="checkpoint interval in steps (default 1000)")
    p.add_argument("--sample-every", type=positive_int, help="sample-grid interval in steps (default 500)")
    p.add_argument("--log-every", type=positive_int, help="metrics.csv row interval in steps (default 50)")
    p.add_argument("--ema-decay", type=float, help="decay of the generator's EMA copy (default 0.999; stylegan2 uses -O ema_kimg=10 instead)")
    p.add_argument("--width", type=positive_int,
                   help="base feature maps of G and D (default: the family's); for stylegan2 its channel_max")
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
    p.add_argument("--fid-metrics", metavar="LIST",
                   help="what --fid-every logs, as `ganeval fid --metrics`: fid,kid,is,prdc or all (default fid)")
    p.add_argument("--no-amp", action="store_true", help="full fp32 on CUDA (mixed precision is the default there)")
    p.add_argument("--resume", action="store_true", help="continue RUN/checkpoint.pt exactly where it stopped")
    p.set_defaults(func=_train)

    p = subparsers.add_parser("sample", help="write generated images from a checkpoint or an NVlabs pickle",
                              description="Generate images from a generator as PNGs in a folder or one .npz.",
                              epilog=SAMPLE_EXAMPLES, formatter_class=HelpFormatter)
    p.add_argument("checkpoint", metavar="GENERATOR", help=GENERATOR_HELP)
    p.add_argument("-o", "--out", required=True, help="output folder (new or empty), or a file ending in .npz")
    add_output_args(p, resume=True)
    add_sampling_args(p)
    p.add_argument("--batch-size", type=positive_int, default=32, help="images per batch (does not change any pixel)")
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
    p.add_argument("checkpoint", metavar="GENERATOR", help=GENERATOR_HELP)
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


def _train(args: argparse.Namespace) -> int:
    from dataclasses import fields

    from ganeval.models.run import TrainRequest, plan_training, train

    given = {f.name: getattr(args, f.name) for f in fields(TrainRequest)
             if f.name not in ("options", "amp") and hasattr(args, f.name)}
    plan = plan_training(TrainRequest(**given, options=_family_options(args), amp=not args.no_amp))
    if plan.done_already:
        note(f"{args.out}: already at step {plan.checkpoint['step']} of {plan.train.steps}; "
             "give a larger --steps to train on")
        return 0
    outcome = train(plan, args.device, report=note)
    if outcome.main:
        if outcome.finished:
            note(f"done: step {outcome.step}, checkpoint {outcome.checkpoint}, metrics {outcome.metrics}")
        else:
            note(f"stopped at step {outcome.step}; checkpoint {outcome.checkpoint} written; continue with --resume")
    return 0 if outcome.finished else 128 + int(outcome.stop_signal or 2)  # 130 for Ctrl-C, 143 for SIGTERM


# ---------------------------------------------------------------------- sample

def _sample(args: argparse.Namespace) -> int:
    from ganeval.models.samplewrite import write_samples

    seeds = seeds_from_args(args)
    loaded = []

    def load():
        loaded.append(load_from_args(args.checkpoint, args, args.device))
        return loaded[0]

    result = write_samples(args.checkpoint, load, args.out, seeds, args.batch_size, sample_options(args),
                           overwrite=args.overwrite, resume=args.resume)
    kept = f" ({result.kept} kept from the interrupted run)" if result.kept else ""
    G = loaded[0]
    what = f"{G.kind} {G.label}" + (f", {'raw G' if args.no_ema else 'EMA G'}, step {result.step}" if G.kind == "ganeval" else "")
    note(f"wrote {result.written} images{kept} ({result.resolution}px, seeds {seeds[0]}..{seeds[-1]}, {what}) "
         f"to {result.path}")
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


def _interpolate(args: argparse.Namespace) -> int:
    from ganeval.generators import load_generator
    from ganeval.models.sampling import (interpolation_latents, render_latents, render_ws, require_mapping,
                                         w_interpolation)
    from ganeval.models.visualise import write_animation
    from ganeval.sampler import parse_seeds

    seeds = parse_seeds(args.seeds)
    if Path(args.out).suffix.lower() not in (".gif", ".mp4"):
        raise BadInput(f"{args.out}: choose an output ending in .gif or .mp4")
    check_output_file(args.out, [checkpoint_input(args.checkpoint)], args.overwrite)
    G = load_generator(args.checkpoint, device=args.device, use_ema=not args.no_ema)
    generator = G.module
    if generator is None:
        raise BadInput(f"{G.label}: interpolate needs a torch module generator")
    if args.space == "w" or args.truncation is not None:
        require_mapping(generator, "--space w" if args.space == "w" else "--truncation", G.label)
    if args.space == "w":
        ws = w_interpolation(generator, seeds, args.frames, loop=not args.no_loop,
                             truncation=1.0 if args.truncation is None else args.truncation)
        frames = render_ws(generator, ws).numpy()
    else:
        z = interpolation_latents(seeds, G.z_dim, args.frames, loop=not args.no_loop)
        frames = render_latents(generator, z, truncation=args.truncation).numpy()
    if args.scale > 1:
        frames = frames.repeat(args.scale, axis=1).repeat(args.scale, axis=2)
    write_animation(args.out, list(frames), args.fps)
    note(f"wrote {len(frames)} frames through seeds {', '.join(map(str, seeds))} to {args.out}")
    return 0
