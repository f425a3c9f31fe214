"""Load test of the study's save path: N simulated participants at once against one database.

Each participant is its own process (like separate app servers or browser sessions hitting
one database; processes are the realistic case for SQLite's file locking) and goes through
``StudyStore`` exactly as the Streamlit app does: start_participant, give_consent, then for
every trial current_trial (which records shown_at) and record(). All processes wait at a
barrier, then answer as fast as they can (--think-ms 0: a stress test far beyond human pace;
a person takes seconds per image). The study is built from synthetic faces (32 px).

Prints a markdown table: judgments saved against expected (lost = expected − saved, counted
in the database afterwards), p50/p95/max latency of record() (the save) and of one whole
step (current_trial + record), errors, and throughput. Goal: p95 save < 100 ms, 0 lost.

    python benchmarks/study_load.py                              # SQLite (WAL) in a temp folder
    python benchmarks/study_load.py --postgres                   # a throwaway PostgreSQL 15 cluster
    python benchmarks/study_load.py --db-url postgresql+psycopg://user@host/db   # an empty database
    python benchmarks/study_load.py --participants 8 --trials 20 # quick
    python benchmarks/study_load.py --servers 2 --runs 5         # two server processes, 5 runs in a row
"""
from __future__ import annotations

import argparse
import multiprocessing as mp
import os
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


def participant(study_dir: str, db_url: str | None, barrier, think_ms: float, seed: int, store=None) -> dict:
    """One simulated participant, in its own process (or a thread of a server process, sharing
    its ``store``); returns latencies (ms) and errors."""
    from ganeval.study_app.simulate import image_truth, simulated_answer
    from ganeval.study_app.store import StudyStore

    saves: list[float] = []
    steps: list[float] = []
    errors: list[str] = []
    rng = np.random.default_rng(seed)
    own = store is None
    if own:
        store = StudyStore.open(study_dir, db_url=db_url)
    try:
        truth = image_truth(store)
        barrier.wait()
        token = store.start_participant(kind="simulated")
        store.give_consent(token)
        while True:
            t0 = time.perf_counter()
            try:
                trial = store.current_trial(token)
                if trial is None:
                    break
                a = simulated_answer(trial, truth[trial.image_id] == "real", 0.0, rng)  # skill 0: chance
                t1 = time.perf_counter()
                ok = store.record(token, trial.trial_id, a.answer, confidence=a.confidence, reasons=a.reasons)
                t2 = time.perf_counter()
                if not ok:
                    errors.append(f"trial {trial.trial_id}: record returned False")
                    break
                saves.append((t2 - t1) * 1000)
                steps.append((t2 - t0) * 1000)
            except Exception as err:  # noqa: BLE001 - counted and reported
                errors.append(f"{type(err).__name__}: {err}")
                if len(errors) > 5:
                    break
            if think_ms:
                time.sleep(think_ms / 1000 * rng.uniform(0.5, 1.5))
    except Exception as err:  # noqa: BLE001
        errors.append(f"{type(err).__name__}: {err}")
    finally:
        if own:
            store.dispose()
    return {"saves": saves, "steps": steps, "errors": errors}


def server(study_dir: str, db_url: str | None, barrier, think_ms: float, seeds: list[int]) -> dict:
    """One app server process: one store (one connection pool), its participants as threads,
    the way a Streamlit server runs its sessions."""
    from concurrent.futures import ThreadPoolExecutor

    from ganeval.study_app.store import StudyStore

    store = StudyStore.open(study_dir, db_url=db_url)
    try:
        with ThreadPoolExecutor(len(seeds)) as pool:
            results = list(pool.map(lambda seed: participant(study_dir, db_url, barrier, think_ms, seed, store), seeds))
    finally:
        store.dispose()
    return {key: [x for r in results for x in r[key]] for key in ("saves", "steps", "errors")}


def build(root: Path, trials: int, db_url: str | None) -> Path:
    from ganeval.atomic import save_npz
    from ganeval.synth import make_faces
    from ganeval.study_app.build import build_study

    n = trials  # trials/2 per class per participant; a pool of `trials` images per class
    faces = make_faces(2 * n, size=32, seed=11, desc="benchmark faces")
    save_npz(root / "real.npz", images=faces[:n])
    save_npz(root / "fake.npz", images=faces[n:])
    build_study(root / "study", str(root / "real.npz"), [str(root / "fake.npz")], labels=["gan"], trials=trials,
                db_url=db_url, pool=n)
    return root / "study"


def run(participants: int, trials: int, db_url: str | None, think_ms: float, label: str, servers: int = 0) -> dict:
    """servers=0: every participant its own process; else that many server processes, the
    participants split between them as threads."""
    from ganeval.study_app.store import StudyStore

    with tempfile.TemporaryDirectory(prefix="study-load-") as tmp:
        study = build(Path(tmp), trials, db_url)
        ctx = mp.get_context("spawn")
        with ctx.Manager() as manager:
            barrier = manager.Barrier(participants + 1)
            with ctx.Pool(servers or participants) as pool:
                if servers:
                    seeds = [list(range(1000 + k, 1000 + participants, servers)) for k in range(servers)]
                    jobs = [pool.apply_async(server, (str(study), db_url, barrier, think_ms, part)) for part in seeds]
                else:
                    jobs = [pool.apply_async(participant, (str(study), db_url, barrier, think_ms, 1000 + i))
                            for i in range(participants)]
                barrier.wait()  # every process has imported and connected: go
                t0 = time.perf_counter()
                results = [job.get() for job in jobs]
                wall = time.perf_counter() - t0
        with StudyStore.open(study, db_url=db_url) as store:
            counts = store.counts()
            frame = store.export_frame()
    saves = np.concatenate([r["saves"] for r in results]) if results else np.zeros(0)
    steps = np.concatenate([r["steps"] for r in results]) if results else np.zeros(0)
    errors = [e for r in results for e in r["errors"]]
    expected = participants * trials
    saved = int(counts["judgments"])
    return {
        "backend": label, "layout": f"{servers} server processes" if servers else "a process each",
        "participants": participants, "trials": trials, "expected": expected, "saved": saved,
        "lost": expected - saved, "dupes": int(frame.duplicated(["participant", "trial_number"]).sum()),
        "p50": float(np.percentile(saves, 50)), "p95": float(np.percentile(saves, 95)), "max": float(saves.max()),
        "step_p95": float(np.percentile(steps, 95)), "errors": len(errors), "first_error": errors[0] if errors else "",
        "wall": wall, "rate": saved / wall,
    }


def table(rows: list[dict]) -> str:
    head = ("| backend | layout | participants | trials each | expected | saved | lost | duplicates | save p50 ms | "
            "save p95 ms | save max ms | step p95 ms | errors | wall s | judgments/s |")
    lines = [head, "|" + "---|" * (head.count("|") - 1)]
    for r in rows:
        lines.append(f"| {r['backend']} | {r['layout']} | {r['participants']} | {r['trials']} | {r['expected']} | {r['saved']} | "
                     f"{r['lost']} | {r['dupes']} | {r['p50']:.1f} | {r['p95']:.1f} | {r['max']:.1f} | "
                     f"{r['step_p95']:.1f} | {r['errors']} | {r['wall']:.1f} | {r['rate']:.0f} |")
    return "\n".join(lines)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--participants", type=int, default=30)
    parser.add_argument("--trials", type=int, default=100, help="main trials per participant (half real, half fake)")
    parser.add_argument("--db-url", default=None, help="an empty database (default: SQLite file in a temp study)")
    parser.add_argument("--postgres", action="store_true", help="start a throwaway PostgreSQL cluster and use it")
    parser.add_argument("--think-ms", type=float, default=0.0, help="mean pause between trials (0: stress test)")
    parser.add_argument("--servers", type=int, default=0,
                        help="split the participants over this many server processes (threads inside, one store "
                             "each, like `ganeval study run` servers on one database); 0: a process per participant")
    parser.add_argument("--runs", type=int, default=1, help="repeat the whole test this many times (one row each)")
    args = parser.parse_args()
    load = os.getloadavg()

    rows = []
    for _ in range(args.runs):
        if args.postgres:
            from tests.pg_cluster import PostgresUnavailable, throwaway_cluster

            try:
                with throwaway_cluster() as cluster:
                    rows.append(run(args.participants, args.trials, cluster.create_database("load"), args.think_ms,
                                    "PostgreSQL 15 (throwaway, 127.0.0.1)", args.servers))
            except PostgresUnavailable as err:
                print(f"PostgreSQL server not available: {err}", file=sys.stderr)
                return 1
        else:
            from ganeval.study_app.db import display_url

            label = "SQLite WAL (file)" if not args.db_url else display_url(args.db_url)
            rows.append(run(args.participants, args.trials, args.db_url, args.think_ms, label, args.servers))
        print(table(rows[-1:]).splitlines()[-1], flush=True)
    print()
    print(table(rows))
    print(f"\n{os.cpu_count()} CPU cores; load average at start {load[0]:.1f}, at end {os.getloadavg()[0]:.1f} "
          f"(participants, database server and anything else share the cores)")
    for row in rows:
        if row["first_error"]:
            print(f"\nfirst error: {row['first_error']}")
    ok = all(r["lost"] == 0 and r["errors"] == 0 and r["dupes"] == 0 for r in rows)
    met = ok and all(r["p95"] < 100 for r in rows)
    print(f"\ngoal (p95 save < 100 ms, 0 lost, every run): {'met' if met else 'NOT met'}"
          f"{f' (think time {args.think_ms:g} ms)' if args.think_ms else ' (no think time: stress test)'}")
    return 0 if ok else 1


if __name__ == "__main__":
    raise SystemExit(main())
