"""Image-to-image figures: `ganeval upscale` / `translate` img/s, and SRGAN vs bicubic/Lanczos
PSNR and SSIM after a short CPU training on synthetic faces.

Speed: the commands run end to end through ``ganeval.cli.main`` on a folder of 64×64
synthetic faces (decode, model, PNG encode, atomic write), with paper-size models at their
initial weights (speed does not depend on the weights): SRGAN ×4 (16 blocks, width 64,
64→256), CycleGAN 256 px (9 blocks), U-GAT-IT 256 px light (4 blocks). Bicubic and Lanczos
(Pillow) are the baselines. Each command runs once to warm up, then ``--repeats`` times; the
table gives the best run's img/s.

Quality: SRGAN ×4 trains for ``--steps`` steps on ``--train`` synthetic 64×64 faces (HR; LR
16×16 by Pillow bicubic), then `upscale-compare` measures it on ``--test`` held-out faces
(another seed).

    python benchmarks/img2img_bench.py                     # both parts
    python benchmarks/img2img_bench.py --part speed --images 32 --threads 2
    python benchmarks/img2img_bench.py --part quality --steps 600 --width 32 --blocks 8
"""
from __future__ import annotations

import argparse
import contextlib
import io
import json
import os
import sys
import tempfile
import time
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from ganeval.cli.main import main  # noqa: E402
from ganeval.synth import write_faces  # noqa: E402
from ganeval.models.registry import get_family  # noqa: E402
from ganeval.models.trainer import Trainer, TrainConfig  # noqa: E402


def _checkpoint(name: str, resolution: int, data: Path, out: Path, options: dict, width: int = 64) -> Path:
    """A checkpoint of a freshly initialised model (paper size), without training."""
    cfg = get_family(name).config(resolution, 3, width=width, options=options)
    trainer = Trainer(cfg, TrainConfig(data=str(data), out=str(out), steps=1, batch_size=1), "cpu")
    return trainer.save()


def _quiet_main(argv: list[str]) -> tuple[int, str]:
    out = io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(io.StringIO()):
        code = main(argv)
    return code, out.getvalue()


def _time(argv: list[str], n: int, repeats: int) -> float:
    best = float("inf")
    for i in range(repeats + 1):  # the first run warms up (imports, model load, allocator)
        t0 = time.perf_counter()
        code, _ = _quiet_main(argv)
        elapsed = time.perf_counter() - t0
        if code != 0:
            raise SystemExit(f"{' '.join(argv)} failed ({code})")
        if i:
            best = min(best, elapsed)
    return n / best


def speed(args: argparse.Namespace, tmp: Path) -> None:
    faces = tmp / "faces64"
    write_faces(faces, args.images, 64, seed=11)
    unpaired = tmp / "unpaired"
    for d in ("trainA", "trainB"):
        write_faces(unpaired / d, 2, 64, seed=1)
    hr = tmp / "hr256"
    write_faces(hr, 2, 256, seed=2)
    sr = _checkpoint("srgan", 256, hr, tmp / "srgan", {"scale": 4, "perceptual": "off"})
    cyc = _checkpoint("cyclegan", 256, unpaired, tmp / "cyclegan", {})
    ugl = _checkpoint("ugatit", 256, unpaired, tmp / "ugatit", {"light": True})
    rows = [
        ("upscale ×4 bicubic (64→256)", ["upscale", str(faces), "--method", "bicubic"]),
        ("upscale ×4 Lanczos (64→256)", ["upscale", str(faces), "--method", "lanczos"]),
        ("upscale ×4 SRGAN 16 blocks (64→256)", ["upscale", str(faces), "--method", f"srgan:{sr}", "--device", "cpu"]),
        ("translate CycleGAN 256 px, 9 blocks", ["translate", str(faces), "-g", str(cyc), "--device", "cpu"]),
        ("translate U-GAT-IT 256 px light, 4 blocks", ["translate", str(faces), "-g", str(ugl), "--device", "cpu"]),
    ]
    print(f"\n{args.images} synthetic 64×64 faces, torch threads {torch.get_num_threads()}, CPU, best of {args.repeats}\n")
    print("| command | img/s |\n|---|---|")
    for label, argv in rows:
        rate = _time(argv + ["-o", str(tmp / "out" / label.split()[0])], args.images, args.repeats)
        print(f"| {label} | {rate:.2f} |", flush=True)


def quality(args: argparse.Namespace, tmp: Path) -> None:
    train, test = tmp / "train", tmp / "test"
    write_faces(train, args.train, 64, seed=0)
    write_faces(test, args.test, 64, seed=12345)
    run = tmp / "srgan_q"
    cfg = get_family("srgan").config(64, 3, width=args.width, options={"scale": 4, "n_blocks": args.blocks,
                                                                      "perceptual": "off"})
    trainer = Trainer(cfg, TrainConfig(data=str(train), out=str(run), steps=args.steps, batch_size=args.batch,
                                       log_every=50, sample_every=10**9, ckpt_every=10**9), "cpu")
    t0 = time.perf_counter()
    with contextlib.redirect_stderr(io.StringIO()):
        trainer.fit()
    minutes = (time.perf_counter() - t0) / 60
    code, out = _quiet_main(["upscale-compare", str(test), "--ckpt", str(run), "--json", "--device", "cpu"])
    report = json.loads(out)
    print(f"\nSRGAN ×4 (width {args.width}, {args.blocks} blocks, no perceptual term), {args.steps} steps × batch "
          f"{args.batch} on {args.train} synthetic 64×64 faces ({minutes:.1f} min CPU); "
          f"{report['images']} held-out faces, LR 16×16 → 64×64\n")
    print("| method | PSNR (dB) | SSIM |\n|---|---|---|")
    for method, vals in report["methods"].items():
        print(f"| {method} | {vals['psnr']:.2f} | {vals['ssim']:.4f} |")


def parse() -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--part", choices=("speed", "quality", "both"), default="both")
    p.add_argument("--images", type=int, default=16, help="images per speed run")
    p.add_argument("--repeats", type=int, default=2)
    p.add_argument("--threads", type=int, default=torch.get_num_threads())
    p.add_argument("--steps", type=int, default=400, help="SRGAN training steps (quality)")
    p.add_argument("--batch", type=int, default=16)
    p.add_argument("--width", type=int, default=32)
    p.add_argument("--blocks", type=int, default=8)
    p.add_argument("--train", type=int, default=512, help="training faces (quality)")
    p.add_argument("--test", type=int, default=64, help="held-out faces (quality)")
    return p.parse_args()


if __name__ == "__main__":
    args = parse()
    torch.set_num_threads(args.threads)
    os.environ.setdefault("GANEVAL_QUIET", "1")
    with tempfile.TemporaryDirectory() as tmp:
        os.environ["GANEVAL_HOME"] = str(Path(tmp) / "home")
        if args.part in ("speed", "both"):
            speed(args, Path(tmp))
        if args.part in ("quality", "both"):
            quality(args, Path(tmp))
