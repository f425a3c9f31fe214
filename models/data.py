"""Real images for training: any ganeval image source, resized once, drawn in a resumable order.

Small sets are decoded once into one uint8 tensor (N×H×W×C); sets larger than
``memory_limit`` bytes are decoded on the fly by DataLoader workers. The order is a
``DistributedSampler`` permutation per epoch (seed + epoch), split across processes, so
the batch drawn after k batches is a function of (seed, k, rank) alone: that is what lets
``--resume`` continue exactly where a run stopped."""
from __future__ import annotations

import os
import sys
from typing import Iterator

import numpy as np
import torch
from torch.utils.data import DataLoader, Dataset, DistributedSampler

from ganeval.errors import BadInput, GanevalError
from ganeval.images import CorruptImage
from ganeval.resample import resize_rgb
from ganeval.sources import Source, open_source

MEMORY_LIMIT = 2 << 30  # decode up to 2 GiB of pixels into memory, stream beyond


def to_channels(images: np.ndarray, channels: int) -> np.ndarray:
    """N×H×W×3 RGB → N×H×W×channels; grayscale is ITU-R 601 luma in Pillow's fixed-point
    arithmetic, so it equals ``Image.convert("L")`` exactly."""
    if channels == 3:
        return images
    rgb = images.astype(np.uint32)
    luma = (rgb[..., 0] * 19595 + rgb[..., 1] * 38470 + rgb[..., 2] * 7471 + 0x8000) >> 16
    return luma.astype(np.uint8)[..., None]


class _Decoded(Dataset):
    """Streaming access: decode, resize and convert one image; corrupt files give None."""

    def __init__(self, source: Source, resolution: int, channels: int):
        self.source, self.resolution, self.channels = source, resolution, channels

    def __len__(self) -> int:
        return len(self.source)

    def __getitem__(self, index: int) -> torch.Tensor | None:
        try:
            img = resize_rgb(self.source.read(index), self.resolution)
        except CorruptImage:
            return None
        return torch.from_numpy(np.array(to_channels(img[None], self.channels)[0]))  # a writable copy


def _stack(items: list[torch.Tensor | None]) -> torch.Tensor:
    good = [t for t in items if t is not None]
    if not good:
        raise GanevalError("every image of a training batch is unreadable; check the data source")
    return torch.stack(good)  # N×H×W×C


class RealBatches:
    """An endless, resumable stream of uint8 batches for one process."""

    def __init__(self, path: str | os.PathLike, resolution: int, channels: int, batch_size: int,
                 seed: int = 0, rank: int = 0, world_size: int = 1, num_workers: int = 0,
                 batches_seen: int = 0, memory_limit: int = MEMORY_LIMIT):
        self.source = open_source(path)  # BadInput on a missing or empty source
        self.batch_size, self.seed, self.num_workers = batch_size, seed, num_workers
        self.images: torch.Tensor | None = None
        if len(self.source) * resolution * resolution * channels <= memory_limit:
            array = self.source.read_all(num_workers=num_workers, size=resolution, desc="decoding training images")
            self.images = torch.from_numpy(np.ascontiguousarray(to_channels(array, channels)))  # N×H×W×C
        self.dataset = _Decoded(self.source, resolution, channels)
        n = len(self)
        self.sampler = DistributedSampler(range(n), num_replicas=world_size, rank=rank,
                                          shuffle=True, seed=seed, drop_last=True)
        self.batches_per_epoch = len(self.sampler) // batch_size
        if self.batches_per_epoch == 0:
            need = batch_size * world_size
            raise BadInput(f"{path}: {n} image(s), fewer than one batch ({batch_size} × {world_size} process(es) = {need}); "
                           "lower --batch-size or add images")
        self.batches_seen = batches_seen
        self._epoch_iter: Iterator[torch.Tensor] | None = None
        self._warned = False

    def __len__(self) -> int:
        """Images available (after skipping unreadable files, when decoded in memory)."""
        return len(self.images) if self.images is not None else len(self.source)

    @property
    def epoch(self) -> float:
        return self.batches_seen / self.batches_per_epoch

    def _epoch_batches(self, epoch: int, skip: int) -> list[list[int]]:
        self.sampler.set_epoch(epoch)
        order = list(self.sampler)
        b = self.batch_size
        return [order[i * b:(i + 1) * b] for i in range(skip, self.batches_per_epoch)]

    def _iterate(self) -> Iterator[torch.Tensor]:
        while True:
            epoch, skip = divmod(self.batches_seen, self.batches_per_epoch)
            batches = self._epoch_batches(epoch, skip)
            if self.images is not None:
                for indices in batches:
                    yield self.images[torch.as_tensor(indices)]
            else:
                # own generator: creating a loader must not draw from the global RNG (exact resume)
                loader = DataLoader(self.dataset, batch_sampler=batches, num_workers=self.num_workers,
                                    collate_fn=_stack, pin_memory=torch.cuda.is_available(),
                                    generator=torch.Generator().manual_seed(self.seed + epoch))
                for images, indices in zip(loader, batches):
                    if len(images) < len(indices) and not self._warned:
                        print(f"warning: {self.source.path}: skipping unreadable image(s) in a batch", file=sys.stderr)
                        self._warned = True
                    yield images

    def __next__(self) -> torch.Tensor:
        """The next N×C×H×W uint8 batch, laid out channels-last (a free view of N×H×W×C)."""
        if self._epoch_iter is None:
            self._epoch_iter = self._iterate()
        batch = next(self._epoch_iter)
        self.batches_seen += 1
        return batch.permute(0, 3, 1, 2)

    def __iter__(self) -> "RealBatches":
        return self
