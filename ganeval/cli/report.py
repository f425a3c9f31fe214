"""``ganeval report``: study statistics, SSIM neighbours, FID and training curves in one
executed notebook (report.ipynb) and its HTML (report.html), plus the figures as PNG and the
tables as CSV/JSON. Sections whose inputs are not given are left out."""
from __future__ import annotations

import argparse
from functools import partial
from pathlib import Path
from typing import TYPE_CHECKING

from ganeval.cli.common import HelpFormatter, add_output_args, emit_json, labelled_path, nonneg_int, note, warn

if TYPE_CHECKING:
    from ganeval.analysis.report import ReportInputs

EXAMPLES = """examples:
  ganeval report --study study/ -o report/                       the human study only
  ganeval report --responses responses.csv --nearest nn-out -o report/
  ganeval report --study study/ --nearest nn-out --fid fid.json --runs run1 run2 -o report/
  ganeval report --study study/ -o report/ --no-execute          notebook, tables and figures; no HTML
  ganeval report --study study/ -o report/ --overwrite           replace an earlier report in report/
  ganeval report --study study/ -o report/ --include-all         keep those who failed a check

who is analysed:
  By default the statistics use the participants who passed qualification (>= 65% correct on
  real and on fake) and every attention check; the report says how many were excluded and why
  (tables/excluded.csv). --include-all keeps them. Simulated participants are never pooled with
  people: when both answered, the people are analysed and the simulated ones listed as excluded.

caveats:
  The report (its first cell, stats.json "caveats", and stderr) carries what a reader must know:
  simulated participants, fewer than ~30 evaluators for HYPE, FID from non-standard weights or
  from fewer samples than feature dimensions.

outputs in REPORT_DIR:
  report.ipynb, report.html        the executed notebook and its HTML (figures embedded)
  figures/*.png, tables/*.csv      each figure and table on its own
  stats.json                       the main numbers, for machines
"""


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("report", help="statistics, plots and an executed notebook + HTML report",
                       description=__doc__, epilog=EXAMPLES, formatter_class=HelpFormatter)
    src = p.add_mutually_exclusive_group()
    src.add_argument("--study", type=Path, metavar="DIR", help="a study folder (ganeval study init)")
    src.add_argument("--responses", type=Path, metavar="CSV", help="a responses CSV (ganeval study export)")
    p.add_argument("--nearest", type=Path, metavar="DIR", help="a `ganeval nearest` output folder")
    p.add_argument("--fid", type=Path, nargs="+", default=[], metavar="FILE.json",
                   help="`ganeval fid --json` outputs (one result, or a mapping of names to results)")
    p.add_argument("--runs", type=Path, nargs="+", default=[], metavar="RUN", help="training run folders (metrics.csv)")
    p.add_argument("--per-image", action="append", default=[], type=labelled_path, metavar="LABEL=CSV",
                   help="a `ganeval fid --per-image` CSV of the images the study shows under --label LABEL: "
                        "which per-image score agrees with the human fool rates (needs --study; repeat per model)")
    p.add_argument("-o", "--out", type=Path, required=True, metavar="REPORT_DIR", help="output folder")
    add_output_args(p)
    p.add_argument("--seed", type=int, default=0, help="bootstrap seed")
    p.add_argument("--include-all", action="store_true",
                   help="keep participants who failed qualification or an attention check (never mixes simulated "
                        "participants with people)")
    p.add_argument("--bootstrap", type=nonneg_int, default=10_000, help="bootstrap resamples (0: no intervals)")
    p.add_argument("--no-execute", action="store_true", help="write the notebook without running it (no HTML)")
    p.add_argument("--timeout", type=int, default=600, help="seconds allowed per notebook cell")
    p.add_argument("--json", action="store_true", help="print the inputs, written files, timings and report paths as JSON")
    p.set_defaults(func=run)


def run(args) -> int:
    from ganeval.analysis.report import ReportInputs

    inp = ReportInputs(study=args.study, responses=args.responses, nearest=args.nearest, fid=list(args.fid),
                       runs=list(args.runs), seed=args.seed, bootstrap=args.bootstrap, include_all=args.include_all,
                       per_image={label: Path(path) for label, path in args.per_image})
    out: Path = args.out
    summary = make_report(inp, out, overwrite=args.overwrite, execute=not args.no_execute, timeout=args.timeout)
    if args.json:
        emit_json({k: v for k, v in summary.items()
                   if k in ("inputs", "files", "caveats", "seconds", "report_html", "report_ipynb")})
    elif args.no_execute:
        note(f"wrote {out / 'report.ipynb'} (not executed; no report.html) and {len(summary['files'])} tables/figures")
    else:
        print(f"report: {summary['report_html']}")
        print(f"notebook: {summary['report_ipynb']}  (tables/, figures/, stats.json beside it)")
    return 0


def make_report(inp: ReportInputs, out: Path, *, overwrite: bool = False, execute: bool = True,
                timeout: int = 600) -> dict:
    """The report job, for ``ganeval report`` and ``ganeval demo``: analysis writes the report
    and the study app exports the judgments it reads (only this layer may join the two)."""
    from ganeval.analysis.report import prepare_report_dir, write_report

    folder = prepare_report_dir(inp, out, overwrite)
    study_responses = study_images = None
    if inp.study:
        from ganeval.study_app.export import write_csv
        from ganeval.study_app.store import export_study, export_study_images

        judgments = export_study(inp.study)  # a folder that is no study fails here, before any write
        study_responses = partial(write_csv, judgments)
        if inp.per_image:
            study_images = partial(write_csv, export_study_images(inp.study))
    return write_report(inp, folder, execute=execute, timeout=timeout, study_responses=study_responses,
                        study_images=study_images, say=note, caution=warn)
