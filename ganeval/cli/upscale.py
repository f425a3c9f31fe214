"""``ganeval upscale`` (bicubic, Lanczos or an SRGAN checkpoint) and ``ganeval upscale-compare``
(PSNR/SSIM of SRGAN against bicubic and Lanczos on held-out high-resolution images)."""
from __future__ import annotations

import argparse

import numpy as np

from ganeval.atomic import write_bytes
from ganeval.cli.common import HelpFormatter, add_device_args, add_output_args, emit_json, note, positive_int, warn
from ganeval.cli.imagemap import report
from ganeval.errors import BadInput
from ganeval.imagewrite import ImageMap
from ganeval.images import encode_png
from ganeval.outputs import check_output_file, checkpoint_input
from ganeval.sources import skipped_line

UPSCALE_EXAMPLES = """examples:
  ganeval upscale face.png -o face_x4.png --method srgan:runs/srgan
  ganeval upscale samples/ -o big/ --method srgan:runs/srgan/checkpoint.pt
  ganeval upscale samples/ -o big/ --scale 8 --method lanczos
  ganeval upscale samples/ -o big/ --method lanczos --resume      # finish an interrupted run

--scale defaults to the SRGAN's own factor (4 for bicubic/lanczos). An SRGAN asked for
another factor runs once and Lanczos resamples its output to the requested size. A folder
(or zip) in gives a folder of PNGs out; unreadable images are skipped and counted.
The output may not be (or lie inside) SRC; an existing .png or a non-empty folder needs
--overwrite (only files `ganeval upscale` wrote there are replaced). Interrupted, it says
how many images it wrote; --resume writes the rest with the same settings.
Train an upscaler with `ganeval train srgan --data HR_SRC --scale 4 --resolution 128`."""

COMPARE_EXAMPLES = """examples:
  ganeval upscale-compare heldout_hr/ --ckpt runs/srgan -o compare.png
  ganeval upscale-compare heldout_hr/ --ckpt runs/srgan -n 200 --json
  ganeval upscale-compare heldout_hr/ --ckpt runs/srgan -o compare.png --overwrite   # replace compare.png

Each high-resolution image is cropped to a multiple of the scale, downscaled with Pillow's
bicubic filter (the degradation SRGAN was trained on) and upscaled back by bicubic, Lanczos
and the SRGAN. PSNR (dB) and SSIM (Gaussian σ=1.5, scikit-image's settings) are measured
against the original and averaged over images. The PNG shows the first --rows images as
LR (nearest) | bicubic | Lanczos | SRGAN | HR. Use images the SRGAN was not trained on."""


def register(subparsers) -> None:
    p = subparsers.add_parser("upscale", help="enlarge images with bicubic, Lanczos or an SRGAN checkpoint",
                              description="Upscale an image, folder or zip of images.",
                              epilog=UPSCALE_EXAMPLES, formatter_class=HelpFormatter)
    p.add_argument("src", metavar="SRC", help="an image file, or a folder, zip, .npy or .npz of images")
    p.add_argument("-o", "--out", required=True, help="output .png (for one image) or folder")
    add_output_args(p, resume=True)
    p.add_argument("--method", default="bicubic", help="bicubic, lanczos or srgan:CKPT")
    p.add_argument("--scale", type=positive_int, help="enlargement factor (default: the SRGAN's, or 4)")
    p.add_argument("--prefix", default="", help="output names become PREFIX_<name>.png")
    add_device_args(p)
    p.set_defaults(func=_upscale)

    p = subparsers.add_parser("upscale-compare", help="PSNR/SSIM of an SRGAN against bicubic and Lanczos",
                              description="Measure upscalers on held-out high-resolution images and write a "
                                          "side-by-side PNG.",
                              epilog=COMPARE_EXAMPLES, formatter_class=HelpFormatter)
    p.add_argument("src", metavar="HR_SRC", help="held-out high-resolution images (folder, zip, .npy, .npz)")
    p.add_argument("--ckpt", metavar="CKPT", help="SRGAN checkpoint or run folder (without it: bicubic vs Lanczos)")
    p.add_argument("--scale", type=positive_int, help="factor (default: the SRGAN's, or 4)")
    p.add_argument("-n", type=positive_int, help="use the first N images (default: all)")
    p.add_argument("-o", "--out", help="side-by-side PNG to write, e.g. compare.png")
    add_output_args(p)
    p.add_argument("--rows", type=positive_int, default=6, help="images shown in the PNG")
    p.add_argument("--json", action="store_true", help="print the results as JSON")
    add_device_args(p)
    p.set_defaults(func=_compare)


def _upscale(args: argparse.Namespace) -> int:
    from ganeval.models.upscale import parse_method, resolve_method, upscale_image
    from ganeval.resample import resize_rgb

    _kind, ckpt = parse_method(args.method)
    job = ImageMap.open(args.src, args.out, f"{args.prefix}_" if args.prefix else "", command="upscale",
                        inputs=[checkpoint_input(ckpt)], overwrite=args.overwrite, resume=args.resume,
                        settings={"method": args.method, "scale": args.scale})
    scale, model = resolve_method(args.method, args.scale, args.device)
    if model is not None and model.scale != scale:
        note(f"the SRGAN upscales ×{model.scale}; Lanczos takes its output to ×{scale}")

    def run(img: np.ndarray) -> np.ndarray:
        size = (img.shape[0] * scale, img.shape[1] * scale)
        if model is None:
            return upscale_image(img, size, args.method)
        return resize_rgb(model(img), size, "lanczos")

    return report(job.run(run, desc=f"upscale ×{scale}"))


def _compare(args: argparse.Namespace) -> int:
    from ganeval.models.upscale import SRGANUpscaler
    from ganeval.sources import open_source
    from ganeval.upscale import compare_source, side_by_side

    if args.out:
        check_output_file(args.out, [args.src, checkpoint_input(args.ckpt)], args.overwrite)
    source = open_source(args.src)
    model = SRGANUpscaler(args.ckpt, args.device) if args.ckpt else None
    scale = args.scale or (model.scale if model else 4)
    if model is not None and scale != model.scale:
        raise BadInput(f"--scale {scale} differs from the SRGAN's factor ({model.scale}); drop --scale")
    result = compare_source(source, scale, model, args.n, args.rows, label=str(args.src))
    line = skipped_line(args.src, result.skipped, what="unreadable or too small image(s)")
    if line:
        warn(line)
    if args.out:
        write_bytes(args.out, encode_png(side_by_side(result.shown)))
    if args.json:
        emit_json({"images": result.images, "scale": scale, "checkpoint": model.path if model else None,
                   "methods": result.methods, "png": args.out})
    else:
        print(f"{result.images} image(s), ×{scale}{f', SRGAN {model.path}' if model else ''}")
        print(f"{'method':<10} {'PSNR (dB)':>10} {'SSIM':>8}")
        for method, vals in result.methods.items():
            print(f"{method:<10} {vals['psnr']:>10.2f} {vals['ssim']:>8.4f}")
        if args.out:
            note(f"wrote {args.out}")
    return 0
