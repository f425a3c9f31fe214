"""illust2vec: Caffe conversion and feature extraction speed, printed as a markdown table.

Writes a synthetic caffemodel with the published shapes (random weights, ~950 MB, in a temp
folder) unless --small, then times: parsing, conversion to the torch file, loading via
build_illust2vec, and feature extraction at 224 px (native) and 64 px (upscaled) inputs.

    python benchmarks/illust2vec_bench.py              # full size, CPU
    python benchmarks/illust2vec_bench.py --small      # reduced widths, seconds
    python benchmarks/illust2vec_bench.py --device cuda --images 256
"""
from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from ganeval.caffemodel import CaffeLayer, read_caffemodel, write_caffemodel  # noqa: E402
from ganeval.device import resolve_device  # noqa: E402
from ganeval.features.illust2vec import (  # noqa: E402
    CONV_LAYERS, DEFAULT_ENCODE_DIM, DEFAULT_WIDTHS, build_illust2vec, convert_caffemodel_file,
)
from ganeval.synth import make_faces  # noqa: E402


def synthetic_model(path: Path, widths, encode_dim) -> None:
    rng = np.random.default_rng(0)
    layers, cin = [], 3
    for name, width in zip(CONV_LAYERS, widths):
        w = rng.standard_normal((width, cin, 3, 3), dtype=np.float32) * np.float32(np.sqrt(2 / (9 * cin)))
        layers.append(CaffeLayer(name, "Convolution", [w, np.zeros(width, np.float32)]))
        cin = width
    w = rng.standard_normal((encode_dim, cin * 49), dtype=np.float32) * np.float32(1 / np.sqrt(cin * 49))
    layers.append(CaffeLayer("encode1", "InnerProduct", [w, np.zeros(encode_dim, np.float32)]))
    write_caffemodel(path, layers)


def timed(fn):
    start = time.perf_counter()
    result = fn()
    return result, time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--small", action="store_true", help="reduced widths (fast smoke run)")
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--images", type=int, default=16, help="images per extraction timing")
    parser.add_argument("--batch-size", type=int, default=8)
    args = parser.parse_args()
    device = resolve_device(args.device)
    widths = (8, 8, 16, 16, 32, 32, 32, 32, 64, 64, 64) if args.small else DEFAULT_WIDTHS
    encode_dim = 256 if args.small else DEFAULT_ENCODE_DIM
    torch.set_num_threads(os.cpu_count() or 1)

    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        os.environ["GANEVAL_HOME"] = tmp
        caffe = Path(tmp) / "i2v.caffemodel"
        synthetic_model(caffe, widths, encode_dim)
        size_mb = caffe.stat().st_size / 2**20
        layers, seconds = timed(lambda: read_caffemodel(caffe))
        rows.append(("parse caffemodel (mmap, no copy)", f"{size_mb:.0f} MB", seconds, f"{size_mb / seconds:.0f} MB/s"))
        del layers
        (out, _), seconds = timed(lambda: convert_caffemodel_file(caffe, Path(tmp) / "i2v.pt"))
        rows.append(("convert → .pt (hash, copy, save)", f"{size_mb:.0f} MB", seconds, f"{size_mb / seconds:.0f} MB/s"))
        caffe.unlink()
        extractor, seconds = timed(lambda: build_illust2vec(out, device))
        rows.append(("build_illust2vec (load + sha256)", f"{out.stat().st_size / 2**20:.0f} MB", seconds, ""))

        for side in (224, 64):
            faces = make_faces(args.images, size=side, seed=0)
            images = torch.from_numpy(faces).permute(0, 3, 1, 2).contiguous()
            extractor(images[:2].to(device))  # warm-up
            if device.type == "cuda":
                torch.cuda.synchronize()
            start = time.perf_counter()
            for i in range(0, len(images), args.batch_size):
                extractor(images[i:i + args.batch_size].to(device))
            if device.type == "cuda":
                torch.cuda.synchronize()
            seconds = time.perf_counter() - start
            rows.append((f"features, {side} px input, batch {args.batch_size}", f"{args.images} images",
                         seconds, f"{args.images / seconds:.1f} img/s"))

    arch = "reduced widths" if args.small else "published shapes"
    print(f"illust2vec ({arch}) on {device}, torch {torch.__version__}, {torch.get_num_threads()} threads\n")
    print("| step | size | seconds | rate |")
    print("|---|---|---|---|")
    for step, size, seconds, rate in rows:
        print(f"| {step} | {size} | {seconds:.2f} | {rate} |")


if __name__ == "__main__":
    main()
