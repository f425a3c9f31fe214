"""Time `ganeval report` on demo-sized data: a study of N simulated participants × T trials
(everyone judges the same images, as in the demo), with and without executing the notebook,
and the bootstrap alone (HYPE∞ over evaluators, Fleiss over images).

    .venv/bin/python benchmarks/report_bench.py [--participants 8] [--trials 24] [--bootstrap 10000]

Prints a markdown table. Timings are wall-clock on this machine (noisy when it is shared)."""
from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--participants", type=int, default=8)
    ap.add_argument("--trials", type=int, default=24)
    ap.add_argument("--bootstrap", type=int, default=10_000)
    args = ap.parse_args()

    from ganeval.analysis import agreement, hype
    from ganeval.analysis.responses import load_responses, main_trials
    from ganeval import atomic
    from ganeval.study_app.simulate import simulate_participants
    from ganeval.cli.main import main as ganeval
    from ganeval.synth import make_faces
    from ganeval.study_app.build import build_study
    from ganeval.study_app.store import StudyStore, export_study

    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        half = (args.trials + 1) // 2
        atomic.save_npz(tmp / "real.npz", images=make_faces(half, 32, seed=0))
        atomic.save_npz(tmp / "fake.npz", images=make_faces(half, 32, seed=1))
        build_study(tmp / "study", str(tmp / "real.npz"), [str(tmp / "fake.npz")], labels=["dcgan"],
                    trials=args.trials, attention=2, pool=half)
        store = StudyStore.open(tmp / "study")
        t = time.perf_counter()
        simulate_participants(store, args.participants, seed=0)
        rows.append(("simulate participants (StudyStore save path)", time.perf_counter() - t))
        store.dispose()
        main = main_trials(load_responses(export_study(tmp / "study")))
        t = time.perf_counter()
        hype.hype_table(main, args.bootstrap, 0)
        rows.append((f"HYPE∞ bootstrap, {args.bootstrap} resamples", time.perf_counter() - t))
        t = time.perf_counter()
        agreement.fleiss(main, args.bootstrap, 0)
        rows.append((f"Fleiss' kappa bootstrap, {args.bootstrap} resamples", time.perf_counter() - t))
        for label, extra in (("report --no-execute (stats, tables, figures)", ["--no-execute"]),
                             ("report, executed notebook + HTML", [])):
            t = time.perf_counter()
            code = ganeval(["report", "--study", str(tmp / "study"), "-o", str(tmp / "r"), "--bootstrap",
                            str(args.bootstrap), *extra])
            assert code == 0
            rows.append((label, time.perf_counter() - t))
    print(f"\n{args.participants} simulated participants × {args.trials} trials\n")
    print("| step | seconds |\n|---|---|")
    for label, sec in rows:
        print(f"| {label} | {sec:.2f} |")


if __name__ == "__main__":
    main()
