"""The leak audit on real anime faces. Every face is first brought to --size px (bicubic,
antialiased: any JPEG grid of the source is gone); N of them are then stored as JPEG at
--real-quality ("reals", as published sets are) and N *other* faces as clean PNG ("fakes", as
generator samples are). The content is the same kind, only the file pipeline differs, so the
pipeline AUC measures the leak alone and the generator cues should stay near 0.5. Without and
with ``--equalize jpeg:Q``.

    .venv/bin/python benchmarks/audit_bench.py ZIP [--n 200] [--size 64] [--real-quality 90] [--quality 90]

Prints a markdown table (AUC [95% bootstrap CI] per group and the strongest cues). Writes only
under a temporary folder: the faces are never kept."""
from __future__ import annotations

import argparse
import tempfile
import time
import zipfile
from pathlib import Path


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("zip", help="a zip of real face JPEGs")
    ap.add_argument("--n", type=int, default=200)
    ap.add_argument("--size", type=int, default=64, help="--image-size of the study")
    ap.add_argument("--real-quality", type=int, default=90, help="JPEG quality the 'reals' are stored at")
    ap.add_argument("--quality", type=int, default=90, help="Q of --equalize jpeg:Q")
    args = ap.parse_args()

    import numpy as np
    from PIL import Image

    from ganeval.images import decode_image, resize_rgb
    from ganeval.study_app.audit import audit_study
    from ganeval.study_app.build import build_study

    with zipfile.ZipFile(args.zip) as zf, tempfile.TemporaryDirectory() as tmp:
        names = sorted(n for n in zf.namelist() if n.lower().endswith((".jpg", ".jpeg")))
        pick = np.random.default_rng(0).permutation(len(names))[:2 * args.n]
        real, fake = Path(tmp) / "real", Path(tmp) / "fake"
        real.mkdir()
        fake.mkdir()
        for j, i in enumerate(pick):
            face = Image.fromarray(resize_rgb(decode_image(zf.read(names[i])), args.size))
            if j < args.n:
                face.save(real / f"{j}.jpg", quality=args.real_quality)  # as published: JPEG
            else:
                face.save(fake / f"{j}.png")  # as sampled: clean PNG
        print(f"{args.n} faces as JPEG (quality {args.real_quality}) vs {args.n} other faces as PNG, "
              f"{args.size} px\n")
        print("| study | pipeline AUC [95% CI] | strongest pipeline cue | blockiness AUC | bytes AUC | "
              "generator AUC [95% CI] | seconds (audit) |")
        print("|---|---|---|---|---|---|---|")
        for label, equalize in (("as is", None), (f"--equalize jpeg:{args.quality}", f"jpeg:{args.quality}")):
            study = Path(tmp) / f"s{equalize is not None}"
            build_study(study, str(real), [str(fake)], labels=["png"], trials=4, image_size=args.size,
                        pool=args.n, equalize=equalize)
            t0 = time.perf_counter()
            r = audit_study(study, resamples=1000)
            secs = time.perf_counter() - t0
            p, g = r.pipeline, r.generator
            print(f"| {label} | {p.auc:.2f} [{p.ci_low:.2f}, {p.ci_high:.2f}] | {p.strongest} "
                  f"{p.cues[p.strongest]:.2f} | {p.cues['blockiness']:.2f} | {p.cues['file_bytes']:.2f} | "
                  f"{g.auc:.2f} [{g.ci_low:.2f}, {g.ci_high:.2f}] | {secs:.1f} |")


if __name__ == "__main__":
    main()
