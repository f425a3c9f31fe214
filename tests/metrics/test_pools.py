"""The Inception's pools and the allocator setting change speed only: results are
bit-identical to PyTorch's kernels."""
from __future__ import annotations

import platform
import subprocess
import sys

import pytest
import torch
import torch.nn.functional as F

from ganeval.features.pools import avg_pool3_valid, max_pool3

SHAPES = [(2, 3, 35, 35), (1, 5, 17, 17), (3, 2, 8, 8), (2, 4, 147, 147), (1, 3, 10, 7), (1, 2, 3, 3), (2, 2, 2, 5)]


def _inputs(shape):
    x = torch.randn(shape, generator=torch.Generator().manual_seed(sum(shape)))
    x[0, 0, 0, 0] = float("nan")
    x.view(-1)[5] = float("-inf")
    x.view(-1)[7] = -0.0
    return x


def _same(a: torch.Tensor, b: torch.Tensor) -> None:
    assert a.shape == b.shape
    torch.testing.assert_close(a, b, rtol=0, atol=0, equal_nan=True)


@pytest.mark.parametrize("shape", SHAPES)
def test_max_pool_is_bit_identical(shape):
    x = _inputs(shape)
    if min(shape[-2:]) < 3:
        with pytest.raises(RuntimeError):
            F.max_pool2d(x, kernel_size=3, stride=2)
        with pytest.raises(RuntimeError):
            max_pool3(x, stride=2)
    else:
        _same(max_pool3(x, stride=2), F.max_pool2d(x, kernel_size=3, stride=2))
    _same(max_pool3(x, stride=1, padding=1), F.max_pool2d(x, kernel_size=3, stride=1, padding=1))


@pytest.mark.parametrize("shape", SHAPES + [(1, 3, 1, 4)])
def test_valid_average_pool_is_bit_identical(shape):
    x = _inputs(shape).abs() * 1e3 + torch.randn(shape) * 1e-3  # magnitudes where summation order shows
    _same(avg_pool3_valid(x), F.avg_pool2d(x, kernel_size=3, stride=1, padding=1, count_include_pad=False))


def test_non_contiguous_input_uses_the_reference_kernel():
    x = torch.randn(2, 6, 9, 9).contiguous(memory_format=torch.channels_last)
    _same(avg_pool3_valid(x), F.avg_pool2d(x, 3, 1, 1, count_include_pad=False))
    _same(max_pool3(x, stride=2), F.max_pool2d(x, 3, 2))


ALLOCATION_PROBE = """
import ctypes, resource, torch
from ganeval.allocator import reuse_freed_blocks


def faults_in_forward_like_rounds(rounds):
    # rounds that, like a forward pass, hold a few large tensors, then free them all
    start = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
    for _ in range(rounds):
        held = [torch.empty(mb << 20, dtype=torch.uint8).fill_(1) for mb in (40, 60, 40)]
        del held
    return resource.getrusage(resource.RUSAGE_SELF).ru_minflt - start


class MallInfo2(ctypes.Structure):
    _fields_ = [(n, ctypes.c_size_t) for n in ("arena", "ordblks", "smblks", "hblks", "hblkhd", "usmblks",
                                               "fsmblks", "uordblks", "fordblks", "keepcost")]


libc = ctypes.CDLL("libc.so.6")
libc.mallinfo2.restype = MallInfo2


def new_mmapped_block(mb):
    before = libc.mallinfo2().hblks
    held = torch.empty(mb << 20, dtype=torch.uint8)  # larger than any free block: new memory (never touched)
    return libc.mallinfo2().hblks - before


outside = faults_in_forward_like_rounds(4)
with reuse_freed_blocks(), reuse_freed_blocks():  # nesting is allowed
    faults_in_forward_like_rounds(3)  # the heap grows to the working set
    inside = faults_in_forward_like_rounds(4)
    mmapped_inside = new_mmapped_block(512)
print(outside, inside, mmapped_inside, new_mmapped_block(1024))
"""


@pytest.mark.skipif(platform.system() != "Linux" or platform.libc_ver()[0] != "glibc"
                    or tuple(map(int, platform.libc_ver()[1].split(".")[:2])) < (2, 33), reason="glibc >= 2.33 malloc only")
@pytest.mark.slow
def test_large_blocks_come_from_the_heap_inside_and_from_mmap_after():
    """In a fresh process (the heap's history decides what a test in this one would see)."""
    out = subprocess.run([sys.executable, "-c", ALLOCATION_PROBE], capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr[-2000:]
    outside, inside, mmapped_inside, mmapped_after = map(int, out.stdout.split())
    assert outside >= 4 * (140 << 20) // 4096 * 0.9  # every block fresh memory: a fault per 4 KiB page
    assert inside < outside / 2
    assert mmapped_inside == 0  # from the heap
    assert mmapped_after == 1  # glibc's defaults are back: a large block is mmapped
