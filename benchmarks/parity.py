"""The parity table of docs/parity.md: every test marked ``parity`` compares a ganeval result
with its reference package on identical inputs and weights, and notes the largest difference
it saw; this script runs them (pytest -m parity) and prints one markdown row per quantity and
reference package (the largest difference over the test's parametrisations).

Usage: python benchmarks/parity.py [--json]
"""
from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def run_parity_tests() -> list[dict]:
    with tempfile.TemporaryDirectory(prefix="ganeval-parity-") as tmp:
        out = Path(tmp) / "parity.json"
        env = dict(os.environ, GANEVAL_PARITY_OUT=str(out))
        cmd = [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-m", "parity", "tests"]
        done = subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True)
        if done.returncode != 0:
            sys.exit(f"the parity tests failed:\n{done.stdout[-3000:]}{done.stderr[-2000:]}")
        return json.loads(out.read_text())


def table(records: list[dict]) -> list[dict]:
    rows: dict[tuple[str, str], dict] = {}
    for r in records:
        key = (r["quantity"], r["reference"])
        row = rows.setdefault(key, {"quantity": r["quantity"], "reference": r["reference"], "cases": 0,
                                    "values": 0, "max_abs_diff": 0.0, "reference_scale": 0.0})
        row["cases"] += 1
        row["values"] += r["values"]
        row["max_abs_diff"] = max(row["max_abs_diff"], r["max_abs_diff"])
        row["reference_scale"] = max(row["reference_scale"], r["reference_scale"])
    return list(rows.values())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--json", action="store_true", help="print the rows as JSON")
    args = parser.parse_args()
    rows = table(run_parity_tests())
    if args.json:
        print(json.dumps(rows, indent=1))
        return
    print("| quantity | reference | cases | values compared | max abs difference | largest reference value |")
    print("|---|---|---|---|---|---|")
    for r in rows:
        diff = "0 (identical)" if r["max_abs_diff"] == 0 else f"{r['max_abs_diff']:.2g}"
        print(f"| {r['quantity']} | {r['reference']} | {r['cases']} | {r['values']:,} | {diff} | "
              f"{r['reference_scale']:.4g} |")


if __name__ == "__main__":
    main()
