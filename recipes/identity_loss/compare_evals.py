"""Paired comparison of `facestudio eval` runs of the same benchmark: per-person mean similarity
of each run against the first, with the paired t-test over people.

    python recipes/identity_loss/compare_evals.py RUN/eval-base RUN/eval-identity \
        --condition identity --out comparison.json
"""

from __future__ import annotations

import argparse
import json
from collections import defaultdict
from pathlib import Path

import numpy as np
from scipy import stats


def per_person(results: Path, condition: str) -> dict[str, float]:
    """Mean similarity (misses 0) of each identity's images under `condition`."""
    rows = json.loads((results / "results.json").read_text())["images"]
    scores: dict[str, list[float]] = defaultdict(list)
    for row in rows:
        if row["ablation"] == condition:
            scores[row["identity"]].append(row["similarity"])
    return {name: float(np.mean(values)) for name, values in scores.items()}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("runs", nargs="+", help="eval output folders; the first is the base")
    parser.add_argument("--condition", default="identity")
    parser.add_argument("--out", help="JSON file to write")
    args = parser.parse_args()
    base_run, *others = [Path(run) for run in args.runs]
    base = per_person(base_run, args.condition)
    report = {"condition": args.condition, "base": str(base_run), "people": len(base), "runs": {}}
    print(f"{base_run}: {np.mean(list(base.values())):.4f}")
    for run in others:
        mine = per_person(run, args.condition)
        people = sorted(set(base) & set(mine))
        a, b = np.array([mine[p] for p in people]), np.array([base[p] for p in people])
        entry = {
            "mean": round(float(a.mean()), 4),
            "difference": round(float((a - b).mean()), 4),
            "p_value": float(stats.ttest_rel(a, b).pvalue),
        }
        report["runs"][str(run)] = entry
        print(
            f"{run}: {entry['mean']:.4f} ({entry['difference']:+.4f}, p = {entry['p_value']:.2g})"
        )
    if args.out:
        Path(args.out).write_text(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
