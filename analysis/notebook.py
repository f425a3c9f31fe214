"""The report notebook: built with nbformat, run with nbclient, exported to HTML with nbconvert.

Its cells are meant to be read and re-run: they load the inputs and call ``analysis``
functions, nothing is pasted in as numbers. Sections whose inputs were not given are left
out. The kernel is the interpreter running ganeval (a throwaway kernelspec pointing at
``sys.executable``), so execution works in a fresh virtualenv without ``ipython kernel
install`` and never picks another Python from PATH; the saved notebook names the usual
``python3`` kernel for people who open it in Jupyter later."""
from __future__ import annotations

import json
import os
import sys
import tempfile
from pathlib import Path

import nbformat
from nbformat.v4 import new_code_cell, new_markdown_cell, new_notebook

from ganeval.atomic import write_text
from ganeval.errors import GanevalError

KERNEL_NAME = "ganeval-python3"


def _md(text: str):
    return new_markdown_cell(text.strip())


def _code(text: str):
    return new_code_cell(text.strip())


def build_notebook(inp, overview: dict | None = None, caveats: list[str] | None = None,
                   screening: str | None = None) -> nbformat.NotebookNode:
    """Cells for the given ``analysis.report.ReportInputs``; ``overview`` (from
    ``study_overview``), ``caveats`` and ``screening`` (who was analysed, in one sentence) only
    word the introduction, e.g. to flag simulated participants or non-standard weights."""
    cells = [_md(_intro(inp, overview, caveats, screening))]
    setup = ["%matplotlib inline", "from pathlib import Path", "", "import pandas as pd", "",
             "from ganeval.analysis import agreement, hype, inputs, mixed, per_image, plots, report",
             "from ganeval.analysis.responses import load_responses, main_trials, study_overview",
             "from ganeval.analysis.screening import screen", "",
             'pd.set_option("display.precision", 3)', 'pd.set_option("display.max_columns", 30)',
             f"SEED = {inp.seed}  # bootstrap seed: the same seed gives the same intervals",
             f"RESAMPLES = {inp.bootstrap}  # bootstrap resamples"]
    if inp.study_source:
        setup.append(f"RESPONSES = Path({str(Path(inp.study_source).resolve())!r})  # the study's judgments (CSV)")
        if inp.study:
            setup.append(f"STUDY = Path({str(Path(inp.study).resolve())!r})  # the study folder (its images)")
        setup.append(f"INCLUDE_ALL = {bool(inp.include_all)!r}  # True: keep those who failed qualification or an "
                     "attention check")
    if inp.nearest:
        setup.append(f"NEAREST = Path({str(Path(inp.nearest).resolve())!r})  # `ganeval nearest` output folder")
    if inp.fid:
        setup.append(f"FID_FILES = {[str(Path(p).resolve()) for p in inp.fid]!r}  # `ganeval fid --json` outputs")
    if inp.runs:
        setup.append(f"RUNS = {[str(Path(p).resolve()) for p in inp.runs]!r}  # training run folders")
    if inp.per_image and inp.study_images:
        setup.append(f"PER_IMAGE = {({k: str(Path(v).resolve()) for k, v in inp.per_image.items()})!r}  "
                     "# model label -> `ganeval fid --per-image` CSV")
        setup.append(f"STUDY_IMAGES = Path({str(Path(inp.study_images).resolve())!r})  # the study's images")
    cells.append(_code("\n".join(setup)))
    if inp.study_source:
        cells += _study_cells(bool(inp.study), bool(overview and overview.get("simulated")))
    if inp.nearest:
        cells += _nearest_cells()
    if inp.fid:
        cells += _fid_cells()
    if inp.runs:
        cells += _runs_cells()
    if inp.per_image and inp.study_images and inp.study_source:
        cells += _per_image_cells()
    nb = new_notebook(cells=cells)
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    nb.metadata["language_info"] = {"name": "python"}
    return nb


def _intro(inp, overview: dict | None, caveats: list[str] | None = None, screening: str | None = None) -> str:
    lines = ["# ganeval report", "",
             "Re-run any cell to recompute: each one loads its inputs and calls `analysis` functions. "
             "Sections whose inputs were not given to `ganeval report` are left out.", ""]
    given = [("study", inp.study_source), ("SSIM nearest neighbours", inp.nearest),
             ("FID", ", ".join(map(str, inp.fid))), ("training runs", ", ".join(map(str, inp.runs)))]
    lines += [f"- **{name}**: `{value}`" for name, value in given if value]
    if overview and overview.get("simulated"):
        kinds = overview.get("participants_by_kind", {})
        lines += ["", f"> **Simulated participants.** {kinds.get('simulated', 0)} of {overview['participants']} "
                  "participants are simulated (answers drawn by a program through the study's save path, not "
                  "given by people). They are marked *simulated* in the tables and drawn in grey; their numbers "
                  "show how the analysis works, not what people can tell."]
    if screening:
        lines += ["", f"**Who is analysed:** {screening}."]
    if caveats:
        lines += ["", "> **Caveats**"] + [f"> - {c}" for c in caveats]
    return "\n".join(lines)


def _study_cells(has_images: bool, simulated: bool) -> list:
    cells = [
        _md("## The human study\nOnly the **main** trials enter the statistics; qualification trials "
            "screen participants and attention checks are reported separately. By default the statistics "
            "use the participants who passed qualification (>= 65% on real and on fake) and every attention "
            "check, and never pool simulated participants with people (`ganeval report --include-all` keeps "
            "those who failed a check; simulated ones are still kept apart)."),
        _code("responses = load_responses(RESPONSES)\nscreening = screen(responses, include_all=INCLUDE_ALL)\n"
              "main = main_trials(screening.kept)\nprint(screening.sentence())\n"
              "pd.Series(study_overview(responses), name=\"overview\").to_frame()"),
        _code("screening.excluded  # who was left out, and why"),
        _md("### Each participant\nThe confusion matrix (truth × answer), accuracy with a 95% Wilson "
            "interval, the exact two-sided binomial test against guessing (p = 0.5), and Cohen's kappa "
            "against the truth with its asymptotic 95% interval. `kind` says whether a participant is "
            "a person or simulated."),
        _code('participants = agreement.participant_table(main)\nparticipants.drop(columns="participant").set_index("label")'),
        _code("plots.confusion_grid(main, participants);"),
        _md("### Agreement between participants\nFleiss' kappa over the images every participant "
            "judged (or, without such images, the largest set with an equal number of ratings), with a "
            "percentile bootstrap interval over images; and Cohen's kappa for every pair of "
            "participants on the images both judged."),
        _code("fleiss = agreement.fleiss(main, RESAMPLES, SEED)\n"
              "pd.Series(fleiss.to_dict(), name=\"Fleiss' kappa\").to_frame()"),
        _code("pairwise, shared = agreement.pairwise_kappa(main)\nplots.pairwise_heatmap(pairwise, participants);"),
        _code("plots.accuracy_kappa_bars(participants, fleiss.kappa);"),
        _md("### HYPE∞\nHYPE∞ (Zhou et al. 2019) is an evaluator's share of wrong judgments, averaged "
            "over evaluators (50% = people cannot tell); per model it is half the evaluator's fake error on "
            "that model plus half their real error. `fake_error` is the share of fakes judged real. "
            "Intervals: 95% percentile bootstrap over evaluators and images."),
        _code("hype_scores = hype.hype_table(main, RESAMPLES, SEED)\nplots.hype_bars(hype_scores)\nhype_scores"),
        _code("# HYPE-time (studies run with --protocol hype-time): mean modal exposure per model, in ms\n"
              "hype.hype_time_table(main, RESAMPLES, SEED)"),
        _md("### P(judged real) by model label: a mixed-effects logistic model\n"
            "`logit P(real) = beta[label] + u[participant] + v[image]` with random effects for participants "
            "and images (statsmodels `BinomialBayesMixedGLM`, variational Bayes). `posterior_mean`/`posterior_sd` "
            "are on the log-odds scale; `p_judged_real` is the implied probability that a typical participant "
            "calls a typical image of that label real (95% interval from mean ± 1.96 SD). Unlike HYPE∞ it "
            "separates the label's effect from lenient people and easy images."),
        _code("mixed_model = mixed.judged_real_model(main)\nprint(mixed_model.note or '')\n"
              "if len(mixed_model.effects):\n    plots.mixed_model_bars(mixed_model.effects)\n"
              "display(mixed_model.random_sd)\nmixed_model.effects"),
        _md("### Planning the next study\nThis study as the pilot: whole studies simulated from the fitted model "
            "give the 95% CI half-width of the fool rate for each design (`ganeval study plan --pilot` for other "
            "targets, metrics and power)."),
        _code("next_plan = report._next_study_plan(main, mixed_model, SEED)\n"
              "next_plan.table if next_plan is not None else 'not available: the mixed model was not fitted'"),
        _md("### Per image\nThe fool rate is the share of judgments that got an image wrong."),
        _code("images = per_image.image_table(main)\nper_image.most_convincing_fakes(images)"),
        _code("per_image.most_fake_looking_reals(images)"),
    ]
    if has_images:
        cells.append(_code('plots.gallery(report.gallery_groups(images), STUDY / "images");'))
    cells += [
        _md("### Reasons and response times\nResponse times are measured on the server, from the moment a "
            "trial was first shown to its answer." + (" Simulated participants answer at once, so their "
                                                      "times are near 0 ms." if simulated else "")),
        _code("reasons = per_image.reason_counts(main)\n"
              "if len(reasons):\n    plots.reasons_bars(reasons)\n"
              "print('other reasons given:', per_image.other_reasons(main) or 'none')\nreasons"),
        _code("if main['rt_ms'].notna().any():\n    plots.response_time_hist(main)\nper_image.response_times(main)"),
    ]
    return cells


def _nearest_cells() -> list:
    return [
        _md("## Does the GAN copy its training set?\nSSIM between each generated image and its nearest "
            "training images (`ganeval nearest`). Top-1 SSIM near 1 means a near copy."),
        _code("nn = inputs.load_nearest(NEAREST)\n"
              "threshold = (nn.summary.get('copies') or {}).get('copy_threshold')\n"
              "print('copies (top-1 SSIM above the threshold):', nn.summary.get('copies'))\n"
              "inputs.nearest_rank_table(nn)"),
        _code("plots.nearest_histograms(nn.neighbours, threshold);"),
        _code("plots.nearest_curve(nn.neighbours, nn.mean_ssim);"),
    ]


def _fid_cells() -> list:
    return [
        _md("## FID and the other metrics\nEvery metric in the `ganeval fid --json` files: FID and KID (lower is "
            "closer to the reference set), Inception Score, precision/recall and density/coverage (fidelity and "
            "diversity). A bar chart per metric when there are several results; hatched bars used "
            "non-standard weights."),
        _code("fid = inputs.load_fid(FID_FILES)\nfor caveat in inputs.fid_caveats(fid):\n    print('caveat:', caveat)\n"
              "if len(fid) >= 2:\n    for metric in inputs.present_metrics(fid):\n        plots.metric_bars(fid, metric)\n"
              "fid"),
    ]


def _per_image_cells() -> list:
    return [
        _md("## Which per-image metric agrees with people\nEach judged fake image's fool rate (the share of its "
            "judgments that said *real*) against its `ganeval fid --per-image` scores: Spearman's ρ over images "
            "with a bootstrap CI over images, per model and over all."),
        _code("from ganeval.analysis import human_metrics\n"
              "joined = human_metrics.join_with_humans(main, human_metrics.read_study_images(STUDY_IMAGES),\n"
              "                                        human_metrics.load_scores(PER_IMAGE))\n"
              "agree = human_metrics.agreement_table(joined, min(RESAMPLES, 2000), SEED)\n"
              "print(human_metrics.best_predictor(agree))\nplots.per_image_vs_humans(joined, agree)\nagree"),
    ]


def _runs_cells() -> list:
    return [
        _md("## Training\nFID against the training step when the runs logged it, otherwise the losses "
            "from each run's `metrics.csv`."),
        _code("runs = inputs.load_runs(RUNS)\nplots.training_curves(runs);"),
    ]


def execute(nb: nbformat.NotebookNode, cwd: Path, timeout: int = 600) -> nbformat.NotebookNode:
    """Run every cell in a kernel on this interpreter; a failing cell is one GanevalError line."""
    from jupyter_client.kernelspec import KernelSpecManager
    from jupyter_client.manager import KernelManager
    from nbclient import NotebookClient
    from nbclient.exceptions import CellExecutionError, DeadKernelError

    from ganeval import analysis

    env = dict(os.environ)
    root = str(Path(analysis.__file__).resolve().parents[1])  # importable even when not installed
    env["PYTHONPATH"] = os.pathsep.join([root] + ([env["PYTHONPATH"]] if env.get("PYTHONPATH") else []))
    env.pop("MPLBACKEND", None)  # the notebook's %matplotlib inline decides
    with tempfile.TemporaryDirectory(prefix="ganeval-kernel-") as tmp:
        spec_dir = Path(tmp) / "kernels" / KERNEL_NAME
        spec_dir.mkdir(parents=True)
        spec = {"argv": [sys.executable, "-m", "ipykernel_launcher", "-f", "{connection_file}"],
                "display_name": "Python 3 (ganeval)", "language": "python"}
        (spec_dir / "kernel.json").write_text(json.dumps(spec))
        km = KernelManager(kernel_name=KERNEL_NAME,
                           kernel_spec_manager=KernelSpecManager(kernel_dirs=[str(Path(tmp) / "kernels")]))
        client = NotebookClient(nb, km=km, timeout=timeout, kernel_name=KERNEL_NAME,
                                extra_arguments=["--IPKernelApp.log_level=ERROR"],  # no TCP-plaintext banner
                                resources={"metadata": {"path": str(cwd)}})
        try:
            client.execute(env=env, cwd=str(cwd))
        except CellExecutionError as err:
            raise GanevalError(f"the report notebook failed in a cell: {_last_line(err)}") from None
        except DeadKernelError as err:
            raise GanevalError(f"the notebook kernel died: {err}") from None
        except RuntimeError as err:  # kernel failed to start
            raise GanevalError(f"could not run the notebook kernel ({sys.executable}): {err}") from None
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    return nb


def _last_line(err: Exception) -> str:
    ename, evalue = getattr(err, "ename", ""), getattr(err, "evalue", "")
    if ename:
        return f"{ename}: {evalue}".strip()
    lines = [ln for ln in str(err).splitlines() if ln.strip()]
    return lines[-1] if lines else type(err).__name__


def write_notebook(nb: nbformat.NotebookNode, path: Path) -> None:
    write_text(path, nbformat.writes(nb))


def export_html(nb: nbformat.NotebookNode, path: Path) -> None:
    """HTML with the figures embedded (data: URIs), one self-contained file."""
    from nbconvert import HTMLExporter

    body, _ = HTMLExporter().from_notebook_node(nb)
    write_text(path, body)
