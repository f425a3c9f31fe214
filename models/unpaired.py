"""Unpaired image-to-image data (``trainA/ trainB/ testA/ testB/``) and the training step
shared by CycleGAN and U-GAT-IT: two resumable real-image streams, a fixed preview batch
for the trainer's grids, and the G/D update order of each paper."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
from torch import nn

from ganeval.errors import BadInput
from ganeval.images import CorruptImage, signed_to_uint8
from ganeval.resample import resize_rgb
from ganeval.sources import open_source
from ganeval.models.data import RealBatches
from ganeval.models.objective import Objective, StepContext, to_signed


LAYOUT = "trainA/ trainB/ testA/ testB/"
GRID_PAIRS = 4  # preview rows in each training grid (A | A→B | B | B→A)


def domain_folder(root: str | Path, split: str, domain: str, required: bool = True) -> Path | None:
    """``root/<split><domain>`` (e.g. trainA) if it exists; BadInput when a required one does not."""
    root = Path(root).expanduser()
    if not root.is_dir():
        raise BadInput(f"{root}: not a folder; unpaired training data is a folder with {LAYOUT}")
    folder = root / f"{split}{domain}"
    if folder.is_dir():
        return folder
    if required:
        raise BadInput(f"{root}: no {folder.name}/ folder; unpaired training data is a folder with {LAYOUT} "
                       "(A: source domain, e.g. photos; B: target domain, e.g. anime faces)")
    return None


class UnpairedBatches:
    """Two endless, resumable streams (trainA, trainB) drawn in lockstep: after k steps both
    have given k batches, so ``batches_seen`` alone restores the order of either. Each domain
    wraps around on its own; an "epoch" is a pass over the larger domain."""

    def __init__(self, root: str | Path, resolution: int, batch_size: int, seed: int = 0, rank: int = 0,
                 world_size: int = 1, num_workers: int = 0, batches_seen: int = 0):
        kw = dict(resolution=resolution, channels=3, batch_size=batch_size, rank=rank, world_size=world_size,
                  num_workers=num_workers, batches_seen=batches_seen)
        self.A = RealBatches(domain_folder(root, "train", "A"), seed=seed, **kw)
        self.B = RealBatches(domain_folder(root, "train", "B"), seed=seed + 1, **kw)
        self.batches_seen = batches_seen
        self.batches_per_epoch = max(self.A.batches_per_epoch, self.B.batches_per_epoch)

    def __len__(self) -> int:
        return len(self.A) + len(self.B)

    def skipped_summary(self) -> dict[str, object]:
        skipped = self.A.skipped + self.B.skipped
        return {"skipped": len(skipped), "first_skipped": skipped[0][0] if skipped else None}

    @property
    def epoch(self) -> float:
        return self.batches_seen / self.batches_per_epoch

    def __next__(self) -> tuple[torch.Tensor, torch.Tensor]:
        """(A, B): uint8 N×3×H×W batches, one from each domain."""
        self.batches_seen += 1
        return next(self.A), next(self.B)

    def __iter__(self) -> "UnpairedBatches":
        return self


def preview_images(root: str | Path, domain: str, resolution: int, n: int = GRID_PAIRS) -> np.ndarray:
    """The first ``n`` readable images of testX/ (else trainX/), resized: fixed grid inputs."""
    folder = domain_folder(root, "test", domain, required=False)
    if folder is None or not any(folder.iterdir()):
        folder = domain_folder(root, "train", domain)
    source = open_source(folder)
    images = []
    for i in range(len(source)):
        try:
            images.append(resize_rgb(source.read(i), resolution))
        except CorruptImage:
            continue
        if len(images) == n:
            break
    return np.stack(images) if images else np.zeros((0, resolution, resolution, 3), np.uint8)


@torch.no_grad()
def translate_uint8(G: nn.Module, images: np.ndarray, direction: str, device: torch.device,
                    memory_format: torch.memory_format = torch.channels_last) -> np.ndarray:
    """uint8 N×H×W×3 through ``G.translate`` (a Translator) and back to uint8; ``memory_format``
    should match G's (channels-last as trained; contiguous is faster for CPU inference)."""
    if len(images) == 0:
        return images
    x = torch.from_numpy(np.require(images, np.uint8, ["C", "W"])).to(device).permute(0, 3, 1, 2)
    x = to_signed(x).contiguous(memory_format=memory_format)
    y = signed_to_uint8(G.translate(x, direction))
    return y.permute(0, 2, 3, 1).cpu().numpy()


class UnpairedObjective(Objective):
    """What CycleGAN and U-GAT-IT share: the two-domain data stream, real batches in [-1, 1],
    hand-averaged gradients under DDP, and preview grids (rows: A, A→B, B, B→A with G_ema)."""

    def __init__(self, spec, G: nn.Module, D: nn.Module):
        super().__init__(spec, G, D)
        self._preview: tuple[np.ndarray, np.ndarray] | None = None

    def make_data(self, batches_seen: int) -> UnpairedBatches:
        s = self.spec
        return UnpairedBatches(s.train.data, s.model.resolution, s.train.batch_size, seed=s.train.seed,
                               rank=s.world.rank, world_size=s.world.size, num_workers=s.train.num_workers,
                               batches_seen=batches_seen)

    def decay_learning_rates(self, ctx: StepContext) -> None:
        """Both papers' schedule: the initial rate for the first half of training, then linear
        to zero (CycleGAN: 100 + 100 epochs; U-GAT-IT: from iteration/2). Set from the step
        alone, so a resumed run follows the same schedule. Off with -O lr_decay=false."""
        steps, fam = self.spec.train.steps, self.spec.family
        if not self.options.get("lr_decay", False) or not steps:
            return
        factor = min(1.0, 2.0 * (1.0 - ctx.step / steps))
        for opt, base in ((ctx.opt_G, fam.lr_g), (ctx.opt_D, fam.lr_d)):
            for group in opt.param_groups:
                group["lr"] = base * factor

    def real_pair(self, ctx: StepContext) -> tuple[torch.Tensor, torch.Tensor]:
        a, b = next(ctx.data)
        dev = ctx.device
        return to_signed(a.to(dev, non_blocking=True)), to_signed(b.to(dev, non_blocking=True))

    def grid_images(self, G_ema: nn.Module, fixed_z: torch.Tensor | None = None) -> torch.Tensor:
        """One row per preview pair: A | A→B | B | B→A, translated by G_ema (uint8 N×H×W×3)."""
        if self._preview is None:
            res, data = self.spec.model.resolution, self.spec.train.data
            self._preview = (preview_images(data, "A", res), preview_images(data, "B", res))
        a, b = self._preview
        n = min(len(a), len(b))
        a, b = a[:n], b[:n]
        dev = self.device
        quads = np.stack([a, translate_uint8(G_ema, a, "AB", dev), b, translate_uint8(G_ema, b, "BA", dev)], axis=1)
        return torch.from_numpy(quads.reshape(-1, *a.shape[1:]))

    def grid_columns(self) -> int:
        return 4
