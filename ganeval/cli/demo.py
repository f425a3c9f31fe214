"""``ganeval demo``: the main job on built-in synthetic faces, end to end.

Each step calls the library function its command calls (no command line is parsed again). A
step that needs pretrained weights which are missing offline says so in one line and the
demo goes on with the rest."""
from __future__ import annotations

import argparse
from functools import partial
from pathlib import Path
from typing import Any, Callable

import numpy as np
from PIL import Image, ImageFilter

from ganeval import atomic
from ganeval.cli.common import (DEFAULT_WORKERS, HelpFormatter, add_device_args, nonneg_int, note, positive_int,
                                to_json, warn)
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


class Demo:
    """Runs the steps one after another: a step that fails or lacks weights is reported, the rest go on."""

    def __init__(self, out_dir: OutputDir | None = None):
        self.out_dir = out_dir
        self.done: list[str] = []
        self.skipped: list[str] = []
        self.failed: list[str] = []

    def step(self, title: str, fn: Callable[[], str]) -> None:
        print(f"== {title}", flush=True)
        try:
            summary = fn()
        except MissingWeights as err:
            line = f"skipped ({err})"
            self.skipped.append(f"{title}: {line}")
            print(f"   {line}", flush=True)
            return
        except GanevalError as err:
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


class DemoSteps:
    """The demo's steps on one output folder. Each calls the library function behind its command
    with the demo's settings and returns a one-line summary; the files have fixed names in ``out``."""

    FACE_SETS = ("faces_a", "faces_b", "faces_a_blur1", "faces_a_blur2")

    def __init__(self, out: Path, args: argparse.Namespace):
        self.out, self.args = out, args
        self.faces = {name: out / f"{name}.npz" for name in self.FACE_SETS}
        self.train_set = out / "train_faces.npz"
        self.run_dir = out / "dcgan-run"
        self.checkpoint = self.run_dir / "checkpoint.pt"
        self.samples = out / "dcgan_samples.npz"
        self.nearest_dir = out / "nearest"
        self.study_dir = out / "study"
        self.report_html: str | None = None

    def make_sets(self) -> str:
        args = self.args
        a = make_faces(args.num, args.size, seed=0, desc="faces A")
        b = make_faces(args.num, args.size, seed=1, desc="faces B")
        for name, arr in zip(self.FACE_SETS, (a, b, _blur(a, 1.0), _blur(a, 2.0))):
            atomic.save_npz(self.faces[name], images=arr)
        grid = np.concatenate([np.concatenate(list(a[r * 8:(r + 1) * 8]), axis=1) for r in range(min(4, len(a) // 8))])
        atomic.write_bytes(self.out / "faces_a_preview.png", encode_png(grid))
        return f"{args.num} faces per set at {args.size}px in {self.out} (A: seed 0, B: seed 1, A blurred σ=1 and σ=2)"

    def _metrics(self, a: Path, b: Any, features: str = "inception") -> dict:
        """``compute_metrics`` as ``ganeval fid --json`` calls it with its defaults: the same keys and values."""
        from ganeval.api import compute_metrics

        weights = self.args.inception_weights if features == "inception" else self.args.illust2vec_weights
        return compute_metrics(str(a), b, features=features, weights=weights, device=self.args.device,
                               num_workers=DEFAULT_WORKERS, on_warning=warn)

    def fid(self, features: str) -> str:
        rows = {other: self._metrics(self.faces["faces_a"], str(self.faces[other]), features)
                for other in ("faces_b", "faces_a_blur1", "faces_a_blur2")}
        atomic.write_text(self.out / f"fid_{features}.json", to_json(rows))
        return "; ".join(f"A vs {k}: FID {v['fid']:.2f}, KID {v['kid_mean']:.4f}" for k, v in rows.items())

    def train(self) -> str:
        from ganeval.models.run import TrainRequest, plan_training, train

        args = self.args
        atomic.save_npz(self.train_set, images=make_faces(args.train_faces, 32, seed=2, desc="training faces"))
        fid_settings = _fid_during_training(args, self.train_set)
        plan = plan_training(TrainRequest(
            model="dcgan", data=str(self.train_set), out=str(self.run_dir), resolution=32, steps=args.train_steps,
            batch_size=64, sample_every=max(1, args.train_steps // 6), num_workers=DEFAULT_WORKERS, **fid_settings))
        outcome = train(plan, args.device, report=note)
        if not outcome.finished:
            raise GanevalError(f"training stopped at step {outcome.step} (signal {outcome.stop_signal})")
        tracked = ", fid.csv" if fid_settings else "; no FID curve: Inception weights are not installed"
        return (f"{args.train_steps} DCGAN steps at 32px on {args.train_faces} faces in {self.run_dir} "
                f"(grids/, metrics.csv, checkpoint.pt{tracked})")

    def sample(self) -> str:
        from ganeval.generators import load_generator
        from ganeval.models.samplewrite import write_samples

        seeds = list(range(1, 1 + self.args.num))
        write_samples(str(self.checkpoint), lambda: load_generator(str(self.checkpoint), device=self.args.device),
                      str(self.samples), seeds)
        return f"{self.args.num} samples in {self.samples}"

    def nearest(self) -> str:
        from ganeval.nearest.api import find_nearest

        res = find_nearest(str(self.samples), str(self.train_set), k=4, outdir=str(self.nearest_dir),
                           device=self.args.device, num_workers=DEFAULT_WORKERS, say=note)
        share = (res.get("copies") or {}).get("copy_share")
        extra = f"; share of samples with top-1 SSIM above the copy threshold: {share:.1%}" if isinstance(share, float) else ""
        return f"SSIM nearest training faces of every sample in {self.nearest_dir}{extra}"

    def fid_generator(self) -> str:
        from ganeval.api import generator_side
        from ganeval.generators import load_generator

        n = self.args.num
        # seeds 0…n−1 with random noise: the defaults of `ganeval fid --generator`
        G = load_generator(str(self.checkpoint), device=self.args.device)
        res = self._metrics(self.train_set, generator_side(G, range(n), 50, noise_mode="random"))
        atomic.write_text(self.out / "fid_generator.json", to_json({"dcgan samples vs training faces": res}))
        return f"FID (Inception) of {n} generator samples against the training faces: {res['fid']:.2f}"

    def study(self) -> str:
        from ganeval.study_app.build import build_study
        from ganeval.study_app.simulate import simulate_participants
        from ganeval.study_app.store import StudyStore

        args, study_dir = self.args, self.study_dir
        # pool = one participant's share of each class: everyone judges the same images, as in the
        # original study (5 people x the same 24 images), so agreement between people is measurable
        build_study(study_dir, str(self.train_set), [str(self.samples)], labels=["dcgan"], trials=args.study_trials,
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

    def report(self) -> str:
        from ganeval.analysis.report import ReportInputs
        from ganeval.cli.report import make_report

        has_nearest = (self.nearest_dir / "neighbours.csv").is_file()
        inp = ReportInputs(study=self.study_dir, nearest=self.nearest_dir if has_nearest else None,
                           fid=sorted(self.out.glob("fid_*.json")),
                           runs=[self.run_dir] if self.run_dir.is_dir() else [], bootstrap=self.args.bootstrap)
        summary = make_report(inp, self.out / "report")
        self.report_html = summary["report_html"]
        return f"report: {self.report_html}"


def run(args: argparse.Namespace) -> int:
    out_dir = prepare_demo_dir(args.out, args.overwrite)
    out = out_dir.path
    demo = Demo(out_dir)
    steps = DemoSteps(out, args)
    demo.step("synthetic faces", steps.make_sets)
    demo.step("FID/KID on Inception pool3", partial(steps.fid, "inception"))
    demo.step("FID/KID on illustration2vec", partial(steps.fid, "illust2vec"))
    for title, fn in _later_steps(steps):
        demo.step(title, fn)

    print(f"\nDemo finished: {len(demo.done)} step(s) ran, {len(demo.skipped)} skipped, {len(demo.failed)} failed. "
          f"Outputs in {out.resolve()}")
    for line in demo.skipped:
        print(f"  skipped: {line}")
    for line in demo.failed:
        print(f"  FAILED: {line}")
    if steps.report_html:
        print(f"\nOpen the report: {steps.report_html}")
    return 1 if demo.failed else 0


def _fid_during_training(args: argparse.Namespace, train_set: Path) -> dict[str, Any]:
    """TrainRequest's FID settings: FID every quarter of the run when the Inception weights are
    already here (never downloads); none otherwise."""
    from ganeval.features.inception import INCEPTION_WEIGHTS  # torch: loaded when the demo runs, not at start-up
    from ganeval.weights import locate_weights

    try:
        weights = locate_weights(INCEPTION_WEIGHTS, args.inception_weights, download=False)
    except GanevalError:
        return {}
    return {"fid_every": max(1, args.train_steps // 4), "fid_ref": str(train_set), "fid_n": min(args.num, 500),
            "fid_weights": str(weights)}


def _later_steps(steps: DemoSteps) -> list[tuple[str, Callable[[], str]]]:
    """Train a small GAN on the faces, sample it, and ask whether it copies its training set."""
    return [
        ("train a DCGAN briefly", steps.train),
        ("sample the generator", steps.sample),
        ("does it copy its training set? (SSIM nearest neighbours)", steps.nearest),
        ("FID straight from the generator", steps.fid_generator),
        ("a real-vs-fake study answered by simulated participants", steps.study),
        ("the report (statistics, plots, executed notebook, HTML)", steps.report),
    ]
