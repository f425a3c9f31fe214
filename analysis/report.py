"""Compute every statistic and figure of a report and write them into REPORT_DIR.

``write_report`` is the whole job (``ganeval report`` and ``ganeval demo`` call it): ``build``
in-process (so the tables and figures exist even with ``--no-execute``), then the notebook,
whose cells call the same ``analysis`` functions for a reader who wants to re-run or change
them, executed and exported to HTML."""
from __future__ import annotations

import json
import math
import os
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import numpy as np
import pandas as pd

from ganeval.analysis import agreement, human_metrics, hype, inputs, mixed, per_image, plan, plots
from ganeval.analysis.responses import load_responses, main_trials, study_overview
from ganeval.analysis.screening import screen
from ganeval.atomic import write_text
from ganeval.errors import BadInput
from ganeval.outputs import OutputDir, prepare_output_dir

GALLERY_SIZE = 8
HYPE_EVALUATORS = 30  # Zhou et al. 2019 ask for about 30 evaluators
# what a report writes: a file of someone else's with such a name in REPORT_DIR is refused up front
REPORT_NAMES = ("report.ipynb", "report.html", "stats.json", "figures/*", "tables/*", "*.png", "*.csv")
STUDY_RESPONSES = Path("tables") / "study_responses.csv"
STUDY_IMAGES = Path("tables") / "study_images.csv"


@dataclass
class ReportInputs:
    study: Path | None = None          # a study folder (its images; judgments via study_responses)
    responses: Path | None = None      # or an exported responses CSV
    nearest: Path | None = None        # a `ganeval nearest` output folder
    fid: list[Path] = field(default_factory=list)   # `ganeval fid --json` files
    runs: list[Path] = field(default_factory=list)  # training run folders (metrics.csv)
    seed: int = 0
    bootstrap: int = 10_000
    include_all: bool = False          # keep participants who failed qualification or an attention check
    # model label -> `ganeval fid --per-image` CSV of that model's images, set against the study's
    # human fool rates (needs the study folder: the images' source keys are there)
    per_image: dict[str, Path] = field(default_factory=dict)
    # the study's judgments exported to CSV by the caller (``ganeval report`` composes the study
    # app's export with this package): analysis never imports the study app, it reads the CSV
    study_responses: Path | None = None
    study_images: Path | None = None  # likewise its images (image_id, model_label, source_key)

    @property
    def study_source(self) -> Path | None:
        return self.study_responses or self.responses

    def check(self) -> None:
        """Fail on a missing path before any work, and on nothing to report."""
        self.check_paths()
        if self.study and not self.study_responses:
            raise BadInput(f"{self.study}: export its responses first (`ganeval study export`) and give them "
                           "as study_responses")

    def check_paths(self) -> None:
        """What can be checked before the study's judgments are exported: nothing is written yet."""
        if self.study and self.responses:
            raise BadInput("give --study or --responses, not both")
        if not (self.study or self.study_source or self.nearest or self.fid or self.runs):
            raise BadInput("nothing to report: give --study/--responses, --nearest, --fid or --runs")
        for path in [p for p in (self.study, self.responses, self.nearest) if p] + list(self.fid) + list(self.runs):
            if not Path(path).exists():
                raise BadInput(f"{path}: no such file or folder")
        if self.study and not Path(self.study).is_dir():
            raise BadInput(f"{self.study}: --study takes a study folder (use --responses for a CSV)")
        if self.bootstrap < 0:
            raise BadInput("--bootstrap must be 0 or more")
        if self.per_image and not self.study:
            raise BadInput("--per-image needs --study: the study folder knows which source file each image is")
        for label, path in self.per_image.items():
            if not Path(path).is_file():
                raise BadInput(f"--per-image {label}={path}: no such file")


def study_results(df: pd.DataFrame, seed: int, resamples: int, include_all: bool = False) -> dict:
    """Every study statistic, from validated responses (all phases), on the participants that
    ``screening.screen`` keeps."""
    screening = screen(df, include_all=include_all)
    main = main_trials(screening.kept)
    out = {"overview": study_overview(df), "screening": screening, "main": main,
           "participants": agreement.participant_table(main), "hype": hype.hype_table(main, resamples, seed),
           "hype_time": hype.hype_time_table(main, resamples, seed)}
    # agreement between people is the point of the study: one participant is an error, not a skip
    out["fleiss"] = agreement.fleiss(main, resamples, seed)
    out["pairwise"], out["shared"] = agreement.pairwise_kappa(main)
    out["mixed"] = mixed.judged_real_model(main)
    out["plan"] = _next_study_plan(main, out["mixed"], seed)
    images = per_image.image_table(main)
    out.update(images=images, reasons=per_image.reason_counts(main), response_times=per_image.response_times(main),
               other_reasons=per_image.other_reasons(main))
    out["caveats"] = study_caveats(out)
    return out


def _next_study_plan(main: pd.DataFrame, fit, seed: int) -> "plan.Plan | None":
    """This study as the pilot of the next: precision of the fool rate for a grid of designs
    (``ganeval study plan --pilot`` gives the full options)."""
    try:
        model = plan.model_from_pilot(main, fit=fit)
    except BadInput:
        return None
    return plan.plan_table(model, "fool-rate", 0.05, studies=200, seed=seed)


def study_caveats(res: dict) -> list[str]:
    """What a reader must know before quoting the study's numbers."""
    out = []
    screening, evaluators = res["screening"], int(res["main"]["participant"].nunique())
    if screening.analysed_kind == "simulated":
        out.append(f"the {evaluators} participants analysed are simulated (answers drawn by a program): the numbers "
                   "show how the analysis works, not what people can tell")
    if evaluators < HYPE_EVALUATORS:
        out.append(f"HYPE∞ from {evaluators} evaluator(s), fewer than the ~{HYPE_EVALUATORS} the protocol asks for: "
                   "the intervals are wide")
    if screening.include_all and screening.flagged_kept:
        out.append(f"--include-all: {screening.flagged_kept} participant(s) who failed qualification or an attention "
                   "check are included")
    if res["mixed"].note:
        out.append(f"mixed-effects model {res['mixed'].note}")
    return out


def write_study(outdir: Path, df: pd.DataFrame, res: dict, images_dir: Path | None) -> list[str]:
    """Tables (CSV), the figures (PNG) of the study section; returns the files written."""
    tables, figures = outdir / "tables", outdir / "figures"
    main = res["main"]
    written = []
    for name in ("participants", "hype", "images", "reasons", "response_times"):
        _write_csv(tables / f"{name}.csv", res[name])
        written.append(f"tables/{name}.csv")
    if res.get("hype_time") is not None:
        _write_csv(tables / "hype_time.csv", res["hype_time"])
        written.append("tables/hype_time.csv")
    if res.get("plan") is not None:
        _write_csv(tables / "next_study_plan.csv", res["plan"].table)
        written.append("tables/next_study_plan.csv")
    _write_csv(tables / "excluded.csv", res["screening"].excluded)
    _write_csv(tables / "mixed_model.csv", res["mixed"].effects)
    written += ["tables/excluded.csv", "tables/mixed_model.csv"]
    _write_csv(tables / "pairwise_kappa.csv", res["pairwise"], index=True)
    written.append("tables/pairwise_kappa.csv")
    ptable = res["participants"]
    figs = {"confusion_matrices": lambda: plots.confusion_grid(main, ptable),
            "accuracy_kappa": lambda: plots.accuracy_kappa_bars(ptable, res["fleiss"].kappa),
            "hype": lambda: plots.hype_bars(res["hype"]),
            "pairwise_kappa": lambda: plots.pairwise_heatmap(res["pairwise"], ptable)}
    if len(res["mixed"].effects):
        figs["mixed_model"] = lambda: plots.mixed_model_bars(res["mixed"].effects)
    if len(res["reasons"]):
        figs["reasons"] = lambda: plots.reasons_bars(res["reasons"])
    if main["rt_ms"].notna().any():
        figs["response_times"] = lambda: plots.response_time_hist(main)
    if images_dir is not None and images_dir.is_dir():
        figs["gallery"] = lambda: plots.gallery(gallery_groups(res["images"]), images_dir)
    for name, make in figs.items():
        plots.save(make(), figures / f"{name}.png")
        written.append(f"figures/{name}.png")
    return written


def write_per_image_vs_humans(inp: ReportInputs, main: pd.DataFrame, outdir: Path, summary: dict) -> list[str]:
    """Per-image scores against human fool rates: the table, the scatter figure, the summary."""
    if inp.study_images is None:
        raise BadInput("--per-image needs the study's images table (give --study)")
    joined = human_metrics.join_with_humans(main, human_metrics.read_study_images(inp.study_images),
                                            human_metrics.load_scores(inp.per_image))
    if joined.empty:
        raise BadInput("--per-image: no scored image was judged in the study (do the CSVs' names match the "
                       "files the study was built from, and the labels its --label names?)")
    table = human_metrics.agreement_table(joined, min(inp.bootstrap, 2000), inp.seed)
    _write_csv(outdir / "tables" / "per_image_vs_humans.csv", table)
    _write_csv(outdir / "tables" / "per_image_scores_judged.csv", joined)
    plots.save(plots.per_image_vs_humans(joined, table), outdir / "figures" / "per_image_vs_humans.png")
    summary["per_image_vs_humans"] = {"table": _records(table), "best": human_metrics.best_predictor(table),
                                      "images": int(len(joined))}
    return ["tables/per_image_vs_humans.csv", "tables/per_image_scores_judged.csv", "figures/per_image_vs_humans.png"]


def gallery_groups(images: pd.DataFrame, n: int = GALLERY_SIZE) -> dict[str, pd.DataFrame]:
    groups = {"most convincing fakes": per_image.most_convincing_fakes(images, n),
              "least convincing fakes": per_image.least_convincing_fakes(images, n),
              "most fake-looking reals": per_image.most_fake_looking_reals(images, n)}
    return {k: v for k, v in groups.items() if len(v)}


def build(inp: ReportInputs, outdir: Path) -> dict:
    """Compute and write tables, figures and stats.json; returns the summary (stats.json)."""
    inp.check()
    outdir.mkdir(parents=True, exist_ok=True)
    summary: dict = {"inputs": _describe_inputs(inp), "files": [], "caveats": []}
    if inp.study_source:
        df = load_responses(inp.study_source)
        res = study_results(df, inp.seed, inp.bootstrap, inp.include_all)
        summary["caveats"] += res["caveats"]
        images_dir = Path(inp.study) / "images" if inp.study else None
        summary["files"] += write_study(outdir, df, res, images_dir)
        summary["study"] = {
            "overview": res["overview"],
            "screening": res["screening"].summary() | {"sentence": res["screening"].sentence()},
            "excluded": _records(res["screening"].excluded),
            "mixed_model": res["mixed"].to_dict(),
            "participants": _records(res["participants"]),
            "hype": _records(res["hype"]),
            "hype_time": None if res.get("hype_time") is None else _records(res["hype_time"]),
            "next_study_plan": None if res.get("plan") is None else res["plan"].as_dict(),
            "fleiss": res["fleiss"].to_dict(),
            "most_convincing_fakes": _records(per_image.most_convincing_fakes(res["images"], GALLERY_SIZE)),
            "most_fake_looking_reals": _records(per_image.most_fake_looking_reals(res["images"], GALLERY_SIZE)),
        }
    if inp.per_image and inp.study_source:
        summary["files"] += write_per_image_vs_humans(inp, res["main"], outdir, summary)
    if inp.nearest:
        nn = inputs.load_nearest(inp.nearest)
        ranks = inputs.nearest_rank_table(nn)
        _write_csv(outdir / "tables" / "nearest_ranks.csv", ranks)
        threshold = (nn.summary.get("copies") or {}).get("copy_threshold")
        plots.save(plots.nearest_histograms(nn.neighbours, threshold), outdir / "figures" / "nearest_ssim_hist.png")
        plots.save(plots.nearest_curve(nn.neighbours, nn.mean_ssim), outdir / "figures" / "nearest_ssim_curve.png")
        summary["files"] += ["tables/nearest_ranks.csv", "figures/nearest_ssim_hist.png", "figures/nearest_ssim_curve.png"]
        summary["nearest"] = {"ranks": _records(ranks), "copies": nn.summary.get("copies")}
    if inp.fid:
        fid = inputs.load_fid(inp.fid)
        _write_csv(outdir / "tables" / "fid.csv", fid)
        summary["files"].append("tables/fid.csv")
        if len(fid) >= 2:  # one bar per result: worth a figure when there is something to compare
            for metric in inputs.present_metrics(fid):
                plots.save(plots.metric_bars(fid, metric), outdir / "figures" / f"{metric}.png")
                summary["files"].append(f"figures/{metric}.png")
        summary["fid"] = _records(fid)
        summary["caveats"] += inputs.fid_caveats(fid)
    if inp.runs:
        runs = inputs.load_runs(inp.runs)
        plots.save(plots.training_curves(runs), outdir / "figures" / "training.png")
        summary["files"].append("figures/training.png")
        summary["training"] = {"runs": sorted(runs["run"].unique()),
                               "has_fid": bool("fid" in runs.columns and runs["fid"].notna().any())}
    write_text(outdir / "stats.json", json.dumps(_clean(summary), indent=2) + "\n")
    summary["files"].append("stats.json")
    return summary


def prepare_report_dir(inp: ReportInputs, out: str | os.PathLike, overwrite: bool = False) -> OutputDir:
    """REPORT_DIR checked by the output policy before any work (created only when written)."""
    inp.check_paths()
    return prepare_output_dir(out, "report", [inp.study, inp.responses, inp.nearest, *inp.fid, *inp.runs,
                                              *inp.per_image.values()],
                              overwrite, reserve=REPORT_NAMES, defer=True)


def write_report(inp: ReportInputs, folder: OutputDir, *, execute: bool = True, timeout: int = 600,
                 study_responses: Callable[[Path], Path] | None = None,
                 study_images: Callable[[Path], Path] | None = None,
                 say: Callable[[str], None] = lambda msg: None,
                 caution: Callable[[str], None] = lambda msg: None) -> dict:
    """The report in ``folder`` (from ``prepare_report_dir``): tables, figures, stats.json, the
    notebook and, with ``execute``, its executed HTML. ``study_responses(path)`` writes the
    study's judgments as CSV at ``path`` (the caller joins the study app's export; analysis only
    reads the CSV). ``say`` gets who was analysed, ``caution`` each caveat. Returns the summary
    (stats.json) with ``seconds``, ``report_html`` (None without ``execute``) and ``report_ipynb``."""
    from ganeval.analysis import notebook  # nbformat: loaded when a report is written

    out = folder.path
    t0 = time.perf_counter()
    folder.open()
    if study_responses is not None:
        inp.study_responses = study_responses(out / STUDY_RESPONSES)
    if study_images is not None:
        inp.study_images = study_images(out / STUDY_IMAGES)
    summary = build(inp, out)
    study = summary.get("study") or {}
    nb = notebook.build_notebook(inp, study.get("overview"), summary["caveats"],
                                 (study.get("screening") or {}).get("sentence"))
    if study.get("screening"):
        say(study["screening"]["sentence"])
    for caveat in summary["caveats"]:
        caution(f"caveat: {caveat}")
    t1 = time.perf_counter()
    if execute:
        nb = notebook.execute(nb, out.resolve(), timeout=timeout)
    notebook.write_notebook(nb, out / "report.ipynb")
    if execute:
        notebook.export_html(nb, out / "report.html")
    folder.record_new()
    t2 = time.perf_counter()
    summary["seconds"] = {"statistics_and_figures": round(t1 - t0, 2), "notebook": round(t2 - t1, 2)}
    summary["report_html"] = str((out / "report.html").resolve()) if execute else None
    summary["report_ipynb"] = str((out / "report.ipynb").resolve())
    return summary


def _describe_inputs(inp: ReportInputs) -> dict:
    def p(x):
        return str(Path(x).resolve()) if x else None
    return {"study": p(inp.study), "responses": p(inp.responses), "nearest": p(inp.nearest),
            "fid": [p(f) for f in inp.fid], "runs": [p(r) for r in inp.runs], "seed": inp.seed,
            "per_image": {label: p(path) for label, path in inp.per_image.items()},
            "bootstrap_resamples": inp.bootstrap, "include_all": inp.include_all}


def _write_csv(path: Path, frame: pd.DataFrame, index: bool = False) -> None:
    write_text(path, frame.to_csv(index=index))


def _records(frame: pd.DataFrame) -> list[dict]:
    return frame.to_dict(orient="records")


def _clean(obj):
    """JSON-safe: numpy scalars to Python, NaN/inf to null."""
    if isinstance(obj, dict):
        return {str(k): _clean(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_clean(v) for v in obj]
    if isinstance(obj, (np.integer,)):
        return int(obj)
    if isinstance(obj, (float, np.floating)):
        return float(obj) if math.isfinite(obj) else None
    if isinstance(obj, (np.bool_,)):
        return bool(obj)
    if isinstance(obj, os.PathLike):
        return str(obj)
    return obj
