"""DCGAN training speed: ganeval's trainer against a plain PyTorch DCGAN loop.

The reference is a from-scratch reimplementation of the loop of the PyTorch examples'
``dcgan/main.py``: the same architecture (nz 100, ngf = ndf = 64, 64×64 RGB), N(0, 0.02)
init, BCELoss on a sigmoid output, Adam(2e-4, β1 0.5), D stepped on a real then a fake
batch, G stepped through the updated D with the same fakes. Its data is the same
synthetic faces, already decoded to a float tensor and served by a shuffling DataLoader
(no image decoding, which favours the reference). Both run in this process, in alternating
rounds, with the same batch size and thread count; img/s counts real images per second
(one batch per step for both). Timed: ``Trainer.train_step`` (logging, grids and
checkpoints happen every few hundred steps in a real run and are left out).

Single steps of the two loops alternate, so a busy machine slows both alike; the table
gives img/s from the fastest step (the least disturbed) and from the median step, and the
median over step pairs of (plain step time / ganeval step time).

    python benchmarks/train_bench.py                 # 64×64, batch 128, 12 steps each
    python benchmarks/train_bench.py --steps 30 --threads 2

``--model stylegan2`` instead times StyleGAN2-ADA at 64×64 (the 64 preset, batch 32) and
reports seconds per thousand images (kimg), extrapolated from a few steps: the median
plain step plus 1/16 of a timed lazy-R1 step (R1 runs every 16 D steps), with ADA's p
held at 0.5 so the augmentations are paid for (at p = 0 they are skipped):

    python benchmarks/train_bench.py --model stylegan2 --steps 3
"""
from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

import torch
from torch import nn
from torch.utils.data import DataLoader, TensorDataset

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from ganeval.atomic import save_npz  # noqa: E402
from ganeval.synth import make_faces  # noqa: E402
from ganeval.models.registry import get_family  # noqa: E402
from ganeval.models.trainer import Trainer, TrainConfig  # noqa: E402

NZ, NGF, NDF, NC = 100, 64, 64, 3


# ------------------------------------------------------------------ the plain reference loop

def _init(m: nn.Module) -> None:
    kind = type(m).__name__
    if "Conv" in kind:
        nn.init.normal_(m.weight, 0.0, 0.02)
    elif "BatchNorm" in kind:
        nn.init.normal_(m.weight, 1.0, 0.02)
        nn.init.zeros_(m.bias)


def plain_generator() -> nn.Module:
    g = nn.Sequential(
        nn.ConvTranspose2d(NZ, NGF * 8, 4, 1, 0, bias=False), nn.BatchNorm2d(NGF * 8), nn.ReLU(True),
        nn.ConvTranspose2d(NGF * 8, NGF * 4, 4, 2, 1, bias=False), nn.BatchNorm2d(NGF * 4), nn.ReLU(True),
        nn.ConvTranspose2d(NGF * 4, NGF * 2, 4, 2, 1, bias=False), nn.BatchNorm2d(NGF * 2), nn.ReLU(True),
        nn.ConvTranspose2d(NGF * 2, NGF, 4, 2, 1, bias=False), nn.BatchNorm2d(NGF), nn.ReLU(True),
        nn.ConvTranspose2d(NGF, NC, 4, 2, 1, bias=False), nn.Tanh(),
    )
    g.apply(_init)
    return g


def plain_discriminator() -> nn.Module:
    d = nn.Sequential(
        nn.Conv2d(NC, NDF, 4, 2, 1, bias=False), nn.LeakyReLU(0.2, inplace=True),
        nn.Conv2d(NDF, NDF * 2, 4, 2, 1, bias=False), nn.BatchNorm2d(NDF * 2), nn.LeakyReLU(0.2, inplace=True),
        nn.Conv2d(NDF * 2, NDF * 4, 4, 2, 1, bias=False), nn.BatchNorm2d(NDF * 4), nn.LeakyReLU(0.2, inplace=True),
        nn.Conv2d(NDF * 4, NDF * 8, 4, 2, 1, bias=False), nn.BatchNorm2d(NDF * 8), nn.LeakyReLU(0.2, inplace=True),
        nn.Conv2d(NDF * 8, 1, 4, 1, 0, bias=False), nn.Sigmoid(),
    )
    d.apply(_init)
    return d


class PlainLoop:
    def __init__(self, images_uint8: torch.Tensor, batch_size: int):
        data = images_uint8.permute(0, 3, 1, 2).float().div(127.5).sub(1)  # Normalize((.5,)*3, (.5,)*3)
        self.loader = DataLoader(TensorDataset(data), batch_size=batch_size, shuffle=True, drop_last=True)
        self.it = iter(self.loader)
        self.netG, self.netD = plain_generator(), plain_discriminator()
        self.criterion = nn.BCELoss()
        self.optD = torch.optim.Adam(self.netD.parameters(), lr=2e-4, betas=(0.5, 0.999))
        self.optG = torch.optim.Adam(self.netG.parameters(), lr=2e-4, betas=(0.5, 0.999))

    def _next(self) -> torch.Tensor:
        try:
            return next(self.it)[0]
        except StopIteration:
            self.it = iter(self.loader)
            return next(self.it)[0]

    def step(self) -> None:
        real = self._next()
        b = real.size(0)
        ones, zeros = torch.full((b,), 1.0), torch.full((b,), 0.0)
        self.netD.zero_grad()
        err_real = self.criterion(self.netD(real).view(-1), ones)
        err_real.backward()
        fake = self.netG(torch.randn(b, NZ, 1, 1))
        err_fake = self.criterion(self.netD(fake.detach()).view(-1), zeros)
        err_fake.backward()
        self.optD.step()
        self.netG.zero_grad()
        err_g = self.criterion(self.netD(fake).view(-1), ones)
        err_g.backward()
        self.optG.step()


# ------------------------------------------------------------------ timing

def timed(step) -> float:
    t0 = time.perf_counter()
    step()
    return time.perf_counter() - t0


def stylegan2_bench(args: argparse.Namespace) -> None:
    """Seconds per kimg of StyleGAN2-ADA training, extrapolated from a few steps."""
    torch.set_num_threads(args.threads)
    res, batch = args.resolution, args.batch_size or 32
    faces = make_faces(max(args.images, 2 * batch), res, seed=0)
    with tempfile.TemporaryDirectory() as tmp:
        data = Path(tmp) / "faces.npz"
        save_npz(data, images=faces)
        family = get_family("stylegan2")
        cfg = family.config(res, 3, options={"ada_p": 0.5, "ada_kimg": 10**9})  # p stays at 0.5
        trainer = Trainer(cfg, TrainConfig(data=str(data), out=str(Path(tmp) / "run"), steps=10**9,
                                           batch_size=batch), "cpu")
        obj = trainer.objective
        n_params = (sum(p.numel() for p in trainer.G.parameters()), sum(p.numel() for p in trainer.D.parameters()))
        for _ in range(max(1, args.warmup)):
            trainer.train_step()  # step 0 also runs R1
        if trainer.step % obj.o["r1_interval"] == 0:
            trainer.step += 1  # keep the timed steps free of R1; it is timed on its own below
        times = []
        for _ in range(args.steps):
            if trainer.step % obj.o["r1_interval"] == 0:
                trainer.step += 1
            times.append(timed(trainer.train_step))
        ctx = trainer.context()
        real = ctx.real_batch()
        r1 = statistics.median(timed(lambda: obj._r1(ctx, real)) for _ in range(2))
    step = statistics.median(times) + r1 / obj.o["r1_interval"]
    print(f"StyleGAN2-ADA {res}×{res} training on CPU, {args.threads} thread(s), batch {batch}, "
          f"G {n_params[0]:,} / D {n_params[1]:,} params, ADA p 0.5, {args.steps} timed steps "
          f"(extrapolated to 1000 images)\n")
    print("| model | s/step (median) | R1 step (every 16) | img/s | s/kimg |")
    print("| --- | ---: | ---: | ---: | ---: |")
    print(f"| stylegan2 {res}px | {statistics.median(times):.2f} | {r1:.2f} | {batch / step:.2f} | {step / batch * 1000:.0f} |")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model", choices=("dcgan", "stylegan2"), default="dcgan")
    ap.add_argument("--resolution", type=int, default=64)
    ap.add_argument("--batch-size", type=int, help="default 128 (dcgan), 32 (stylegan2)")
    ap.add_argument("--images", type=int, default=1024)
    ap.add_argument("--steps", type=int, default=12, help="timed steps of each loop")
    ap.add_argument("--warmup", type=int, default=2)
    ap.add_argument("--threads", type=int, default=torch.get_num_threads())
    args = ap.parse_args()
    if args.model == "stylegan2":
        stylegan2_bench(args)
        return
    args.batch_size = args.batch_size or 128
    if args.resolution != 64:
        raise SystemExit("the reference loop is the 64×64 DCGAN")
    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    faces = make_faces(args.images, args.resolution, seed=0)
    with tempfile.TemporaryDirectory() as tmp:
        data = Path(tmp) / "faces.npz"
        save_npz(data, images=faces)
        cfg = get_family("dcgan").config(args.resolution, 3, z_dim=NZ, width=NGF)
        ours = Trainer(cfg, TrainConfig(data=str(data), out=str(Path(tmp) / "run"), steps=10**9,
                                        batch_size=args.batch_size), "cpu")
        plain = PlainLoop(torch.from_numpy(faces), args.batch_size)
        n_params = (sum(p.numel() for p in ours.G.parameters()), sum(p.numel() for p in ours.D.parameters()))
        n_plain = (sum(p.numel() for p in plain.netG.parameters()), sum(p.numel() for p in plain.netD.parameters()))
        assert n_params == n_plain, (n_params, n_plain)
        for _ in range(args.warmup):
            timed(ours.train_step), timed(plain.step)
        # alternate single steps, so both loops see the same load from whatever else runs
        t_ours, t_plain = [], []
        for i in range(args.steps):
            pair = ((t_ours, ours.train_step), (t_plain, plain.step))
            for times, step in pair if i % 2 == 0 else pair[::-1]:
                times.append(timed(step))
    b = args.batch_size
    paired = statistics.median(p / o for o, p in zip(t_ours, t_plain))
    rows = [("ganeval trainer", t_ours), ("plain PyTorch-example loop", t_plain)]
    print(f"DCGAN {args.resolution}×{args.resolution} training on CPU, {args.threads} thread(s), batch {b}, "
          f"G {n_params[0]:,} / D {n_params[1]:,} params, {args.steps} alternating steps each\n")
    print("| loop | img/s, best step | img/s, median step | ratio (best) | ratio (median of paired steps) |")
    print("| --- | ---: | ---: | ---: | ---: |")
    best_plain = b / min(t_plain)
    for name, times in rows:
        is_ours = times is t_ours
        print(f"| {name} | {b / min(times):.1f} | {b / statistics.median(times):.1f} | "
              f"{(b / min(times)) / best_plain:.2f}× | {paired if is_ours else 1.0:.2f}× |")


if __name__ == "__main__":
    main()
