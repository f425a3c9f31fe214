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
from ganeval.sources import Source, open_source, skipped_line

MEMORY_LIMIT = 2 << 30  # decode up to 2 GiB of pixels into memory, stream beyond


def to_channels(images: np.ndarray, channels: int) -> np.ndarray:
    """N×H×W×3 RGB → N×H×W×channels; grayscale is ITU-R 601 luma in Pillow's fixed-point
    arithmetic, so it equals ``Image.convert("L")`` exactly."""
    if channels == 3:
        return images
    rgb = images.astype(np.uint32)
    luma = (rgb[..., 0] * 19595 + rgb[..., 1] * 38470 + rgb[..., 2] * 7471 + 0x8000) >> 16
    return luma.astype(np.uint8)[..., None]


def data_hash(path: str | os.PathLike) -> str:
    """The content hash of a training source (the one ``ganeval.sources`` keys caches with):
    stored in the run so that ``--resume`` can refuse different images."""
    return open_source(path).content_hash()


class _Decoded(Dataset):
    """Streaming access: decode, resize and convert one image; a corrupt file gives
    (index, None, reason) instead of (index, image, None)."""

    def __init__(self, source: Source, resolution: int, channels: int):
        self.source, self.resolution, self.channels = source, resolution, channels

    def __len__(self) -> int:
        return len(self.source)

    def __getitem__(self, index: int) -> tuple[int, torch.Tensor | None, str | None]:
        try:
            img = resize_rgb(self.source.read(index), self.resolution)
        except CorruptImage as err:
            return index, None, str(err) or "unreadable"
        return index, torch.from_numpy(np.array(to_channels(img[None], self.channels)[0])), None  # a writable copy


def _stack(items: list[tuple[int, torch.Tensor | None, str | None]]) -> tuple[torch.Tensor, list[tuple[int, str]]]:
    good = [t for _, t, _ in items if t is not None]
    if not good:
        raise GanevalError("every image of a training batch is unreadable; check the data source")
    return torch.stack(good), [(i, why) for i, t, why in items if t is None]  # N×H×W×C, the skipped


class RealBatches:
    """An endless, resumable stream of uint8 batches for one process."""

    def __init__(self, path: str | os.PathLike, resolution: int, channels: int, batch_size: int,
                 seed: int = 0, rank: int = 0, world_size: int = 1, num_workers: int = 0,
                 batches_seen: int = 0, memory_limit: int = MEMORY_LIMIT):
        self.source = open_source(path)  # BadInput on a missing or empty source
        self.batch_size, self.seed, self.num_workers = batch_size, seed, num_workers
        self.images: torch.Tensor | None = None
        self.rank = rank
        self.skipped: list[tuple[str, str]] = []  # (name, reason) of unreadable files met so far
        self._warned = False
        if len(self.source) * resolution * resolution * channels <= memory_limit:
            loader = self.source.loader(batch_size=256, num_workers=num_workers, size=resolution,
                                        desc="decoding training images")
            parts = [batch.images.numpy() for batch in loader]
            if not parts:
                raise BadInput(f"{path}: no readable images")
            self.skipped = list(loader.corrupt)
            self._report()
            array = np.concatenate(parts)
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

    def _report(self) -> None:
        """One warning line (count, first name) on the main process, once."""
        line = skipped_line(self.source.path, self.skipped)
        if line and not self._warned and self.rank == 0:
            print(f"warning: {line}", file=sys.stderr)
        self._warned = self._warned or bool(line)

    def skipped_summary(self) -> dict[str, object]:
        """For the run's config.json: how many files were skipped and the first one."""
        return {"skipped": len(self.skipped), "first_skipped": self.skipped[0][0] if self.skipped else None}

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
                for images, bad in loader:
                    if bad:  # decoded on the fly: reported at the first, counted as met
                        seen = {name for name, _ in self.skipped}  # each file once, not once per epoch
                        self.skipped += [(self.source.key(i), why) for i, why in bad if self.source.key(i) not in seen]
                        self._report()
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
