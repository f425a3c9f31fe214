"""``ganeval demo``: the main job on built-in synthetic faces, end to end.

Each step runs the same code as its command. A step that needs pretrained weights which
are missing offline says so in one line and the demo goes on with the rest."""
from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Callable

import numpy as np
from PIL import Image, ImageFilter

from ganeval import atomic
from ganeval.cli.common import HelpFormatter, add_device_args, nonneg_int, positive_int
from ganeval.errors import GanevalError, MissingWeights
from ganeval.images import encode_png
from ganeval.outputs import MANIFEST, OutputDir, OutputRefused, prepare_output_dir, read_manifest
from ganeval.synth import make_faces

EXAMPLES = """examples:
  ganeval demo                       everything into ./demo-out
  ganeval demo --out /tmp/demo -n 300

--out is created, or reused when an earlier demo wrote it: then only the files that demo
wrote are replaced. A non-empty folder the demo did not write is refused (exit 2) unless
--overwrite, and even then only demo files are replaced; your own files are never touched.
"""


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("demo", help="run the main job on built-in synthetic faces",
                       description=__doc__, epilog=EXAMPLES, formatter_class=HelpFormatter)
    p.add_argument("--out", default="demo-out",
                   help="output folder: new, empty, or an earlier demo output (its demo files are replaced)")
    p.add_argument("--overwrite", action="store_true",
                   help="also write into a non-empty folder the demo did not write (your files are kept)")
    p.add_argument("-n", "--num", type=positive_int, default=200, help="faces per set")
    p.add_argument("--size", type=int, default=64, help="face size in pixels")
    p.add_argument("--train-faces", type=positive_int, default=2000, help="training set size for the GAN")
    p.add_argument("--train-steps", type=positive_int, default=600, help="DCGAN training steps")
    p.add_argument("--inception-weights", default=None, help="FID Inception weight file (default: cache or download)")
    p.add_argument("--illust2vec-weights", default=None, help="illustration2vec .pt or .caffemodel (default: cache)")
    p.add_argument("--participants", type=positive_int, default=8, help="simulated study participants")
    p.add_argument("--study-trials", type=positive_int, default=24, help="main trials per study participant")
    p.add_argument("--bootstrap", type=nonneg_int, default=10_000, help="bootstrap resamples in the report")
    add_device_args(p)
    p.set_defaults(func=run)


def _blur(faces: np.ndarray, radius: float) -> np.ndarray:
    return np.stack([np.asarray(Image.fromarray(f).filter(ImageFilter.GaussianBlur(radius))) for f in faces])


def _cli(argv: list[str]) -> dict | None:
    """Run a ganeval command in-process and return its --json output."""
    import contextlib
    import io

    from ganeval.cli.main import build_parser

    args = build_parser().parse_args(argv)
    buf = io.StringIO()
    with contextlib.redirect_stdout(buf):
        code = args.func(args)
    if code:
        raise GanevalError(f"`ganeval {' '.join(argv)}` exited with {code}")
    text = buf.getvalue().strip()
    return json.loads(text) if text.startswith("{") else None


class Demo:
    def __init__(self, out: Path, device: str, out_dir: OutputDir | None = None):
        self.out, self.device, self.out_dir = out, device, out_dir
        self.done: list[str] = []
        self.skipped: list[str] = []
        self.failed: list[str] = []
        self.report_html: str | None = None

    def step(self, title: str, fn: Callable[[], str]) -> None:
        print(f"== {title}", flush=True)
        try:
            summary = fn()
        except MissingWeights as err:
            line = f"skipped ({err})"
            self.skipped.append(f"{title}: {line}")
            print(f"   {line}", flush=True)
            return
        except (GanevalError, SystemExit) as err:
            line = f"failed ({err})"
            self.failed.append(f"{title}: {line}")
            print(f"   {line}", flush=True)
            return
        finally:
            if self.out_dir is not None:  # what this step wrote is the demo's, even if it failed
                record_outputs(self.out_dir)
        self.done.append(f"{title}: {summary}")
        print(f"   {summary}", flush=True)


# top-level names the demo writes in --out; a user's file under one of them is never replaced
DEMO_NAMES = ("faces_a.npz", "faces_b.npz", "faces_a_blur1.npz", "faces_a_blur2.npz", "faces_a_preview.png",
              "fid_inception.json", "fid_illust2vec.json", "fid_generator.json", "train_faces.npz",
              "dcgan_samples.npz", "dcgan-run", "nearest", "study", "report")


def prepare_demo_dir(folder: str | Path, overwrite: bool = False) -> OutputDir:
    """The demo's output folder, checked before any work: new or empty, an earlier demo output
    (reused: its recorded files are removed), or with ``overwrite`` a folder of someone else's
    files that none of the demo's names would replace."""
    manifest = read_manifest(folder) if Path(folder).is_dir() else None
    earlier_demo = bool(manifest) and manifest.get("command") == "demo"
    out = prepare_output_dir(folder, "demo", overwrite=overwrite or earlier_demo, flag="--out")
    for rel in sorted(out._foreign):
        if rel.split("/")[0] in DEMO_NAMES:
            raise OutputRefused(f"refusing to replace {out.path / rel}: the demo writes {rel.split('/')[0]} "
                                "and did not write this file; choose another --out")
    return out


def record_outputs(out: OutputDir) -> None:
    """Add every file now in the folder that was not there before the demo to its manifest."""
    mine = [p.relative_to(out.path).as_posix() for p in sorted(out.path.rglob("*"))
            if (p.is_file() or p.is_symlink()) and p.name != MANIFEST]
    out.record(*[rel for rel in mine if rel not in out._foreign])


def run(args) -> int:
    out_dir = prepare_demo_dir(args.out, args.overwrite)
    out = out_dir.path
    demo = Demo(out, args.device, out_dir)
    sets: dict[str, Path] = {}

    def make_sets() -> str:
        a = make_faces(args.num, args.size, seed=0, desc="faces A")
        b = make_faces(args.num, args.size, seed=1, desc="faces B")
        for name, arr in {"faces_a": a, "faces_b": b, "faces_a_blur1": _blur(a, 1.0), "faces_a_blur2": _blur(a, 2.0)}.items():
            sets[name] = out / f"{name}.npz"
            atomic.save_npz(sets[name], images=arr)
        grid = np.concatenate([np.concatenate(list(a[r * 8:(r + 1) * 8]), axis=1) for r in range(min(4, len(a) // 8))])
        atomic.write_bytes(out / "faces_a_preview.png", encode_png(grid))
        return f"{args.num} faces per set at {args.size}px in {out} (A: seed 0, B: seed 1, A blurred σ=1 and σ=2)"

    def fid_step(features: str) -> Callable[[], str]:
        def run_fid() -> str:
            rows = {}
            for other in ("faces_b", "faces_a_blur1", "faces_a_blur2"):
                weights = args.inception_weights if features == "inception" else args.illust2vec_weights
                res = _cli(["fid", str(sets["faces_a"]), str(sets[other]), "--features", features, "--json",
                            "--device", demo.device] + (["--weights", weights] if weights else []))
                rows[other] = res
            atomic.write_text(out / f"fid_{features}.json", json.dumps(rows, indent=2))
            return "; ".join(f"A vs {k}: FID {v['fid']:.2f}, KID {v['kid_mean']:.4f}" for k, v in rows.items())
        return run_fid

    demo.step("synthetic faces", make_sets)
    demo.step("FID/KID on Inception pool3", fid_step("inception"))
    demo.step("FID/KID on illustration2vec", fid_step("illust2vec"))
    for title, fn in _later_steps(demo, sets, args):
        demo.step(title, fn)

    print(f"\nDemo finished: {len(demo.done)} step(s) ran, {len(demo.skipped)} skipped, {len(demo.failed)} failed. "
          f"Outputs in {out.resolve()}")
    for line in demo.skipped:
        print(f"  skipped: {line}")
    for line in demo.failed:
        print(f"  FAILED: {line}")
    if demo.report_html:
        print(f"\nOpen the report: {demo.report_html}")
    return 1 if demo.failed else 0


def _fid_during_training(args, train_set: Path) -> list[str]:
    """FID every quarter of the run when the Inception weights are already here (never downloads)."""
    from ganeval.features.inception import INCEPTION_WEIGHTS  # torch: loaded when the demo runs, not at start-up
    from ganeval.weights import locate_weights

    try:
        weights = locate_weights(INCEPTION_WEIGHTS, args.inception_weights, download=False)
    except GanevalError:
        return []
    return ["--fid-every", str(max(1, args.train_steps // 4)), "--fid-ref", str(train_set),
            "--fid-n", str(min(args.num, 500)), "--fid-weights", str(weights)]


def _later_steps(demo: Demo, sets: dict[str, Path], args) -> list[tuple[str, Callable[[], str]]]:
    """Train a small GAN on the faces, sample it, and ask whether it copies its training set."""
    run_dir = demo.out / "dcgan-run"
    samples = demo.out / "dcgan_samples.npz"

    def train() -> str:
        train_set = demo.out / "train_faces.npz"
        atomic.save_npz(train_set, images=make_faces(args.train_faces, 32, seed=2, desc="training faces"))
        sets["train"] = train_set
        fid_args = _fid_during_training(args, train_set)
        _cli(["train", "dcgan", "--data", str(train_set), "--out", str(run_dir), "--resolution", "32",
              "--steps", str(args.train_steps), "--batch-size", "64", "--sample-every", str(max(1, args.train_steps // 6)),
              "--device", demo.device] + fid_args)
        tracked = ", fid.csv" if fid_args else "; no FID curve: Inception weights are not installed"
        return (f"{args.train_steps} DCGAN steps at 32px on {args.train_faces} faces in {run_dir} "
                f"(grids/, metrics.csv, checkpoint.pt{tracked})")

    def sample() -> str:
        _cli(["sample", str(run_dir / "checkpoint.pt"), "-n", str(args.num), "-o", str(samples), "--seed", "1",
              "--device", demo.device])
        return f"{args.num} samples in {samples}"

    def nearest() -> str:
        target = demo.out / "nearest"
        res = _cli(["nearest", str(samples), str(sets["train"]), "-k", "4", "-o", str(target), "--json",
                    "--device", demo.device]) or {}
        share = (res.get("copies") or {}).get("copy_share")
        extra = f"; share of samples with top-1 SSIM above the copy threshold: {share:.1%}" if isinstance(share, float) else ""
        return f"SSIM nearest training faces of every sample in {target}{extra}"

    def fid_generator() -> str:
        res = _cli(["fid", str(sets["train"]), "--generator", str(run_dir / "checkpoint.pt"), "-n", str(args.num),
                    "--json", "--device", demo.device]
                   + (["--weights", args.inception_weights] if args.inception_weights else []))
        atomic.write_text(demo.out / "fid_generator.json", json.dumps({"dcgan samples vs training faces": res}, indent=2))
        return f"FID (Inception) of {args.num} generator samples against the training faces: {res['fid']:.2f}"

    study_dir = demo.out / "study"

    def study() -> str:
        from ganeval.study_app.build import build_study
        from ganeval.study_app.simulate import simulate_participants
        from ganeval.study_app.store import StudyStore

        # pool = one participant's share of each class: everyone judges the same images, as in the
        # original study (5 people x the same 24 images), so agreement between people is measurable
        build_study(study_dir, str(sets["train"]), [str(samples)], labels=["dcgan"], trials=args.study_trials,
                    attention=2, seed=0, title="ganeval demo: real or fake?", pool=(args.study_trials + 1) // 2)
        store = StudyStore.open(study_dir)
        try:
            simulate_participants(store, args.participants, seed=0)
            n = len(store.export_frame())
        finally:
            store.dispose()
        return (f"{args.participants} simulated participants answered {n} trials through the study's save path "
                f"in {study_dir} (real: training faces; fake: DCGAN samples); run it for people with "
                f"`ganeval study run {study_dir}`")

    def report() -> str:
        cmd = ["report", "--study", str(study_dir), "-o", str(demo.out / "report"), "--bootstrap", str(args.bootstrap),
               "--json"]
        if (demo.out / "nearest" / "neighbours.csv").is_file():
            cmd += ["--nearest", str(demo.out / "nearest")]
        fid_files = [str(f) for f in sorted(demo.out.glob("fid_*.json"))]
        cmd += (["--fid", *fid_files] if fid_files else []) + (["--runs", str(run_dir)] if run_dir.is_dir() else [])
        res = _cli(cmd) or {}
        demo.report_html = res.get("report_html")
        return f"report: {res.get('report_html')}"

    return [
        ("train a DCGAN briefly", train),
        ("sample the generator", sample),
        ("does it copy its training set? (SSIM nearest neighbours)", nearest),
        ("FID straight from the generator", fid_generator),
        ("a real-vs-fake study answered by simulated participants", study),
        ("the report (statistics, plots, executed notebook, HTML)", report),
    ]
