"""Summarise ``pyramid-bert lra`` / ``benchmarks/lra_table4.py`` result files into one Table-4-style markdown table.

Reads every ``*.json`` under the given folders (one file per task, backbone and run; a run may hold only some of
the methods), groups rows by (backbone, task, method) and reports the mean test accuracy over runs (seeds),
each run's accuracy, and the median of the runs' median speedups, with the paper's number beside them:

    /work/venv/bin/python benchmarks/lra_table4_summary.py runs/lra/e4_* runs/lra/s1_*
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
from collections import defaultdict
from pathlib import Path

from pyramid_bert.lra.experiment import METHOD_TITLES, PAPER_TABLE4, TABLE4_METHODS


def summarise(folders: list[Path]) -> str:
    groups: dict[tuple[str, str, str], list[dict[str, object]]] = defaultdict(list)
    for folder in folders:
        for path in sorted(folder.glob("*.json")):
            result = json.loads(path.read_text())
            for row in result["rows"]:
                groups[(result["config"]["backbone"], result["task"], row["label"])].append(row)
    lines = ["| backbone | task | method | k | accuracy % (mean) | runs | paper % | speedup (median) |",
             "|---|---|---|---|---|---|---|---|"]
    for backbone, task in sorted({(b, t) for b, t, _ in groups}):
        for label in TABLE4_METHODS:
            rows = groups.get((backbone, task, label))
            if not rows:
                continue
            accuracies = [100 * float(row["accuracy"]) for row in rows]
            speedup = statistics.median(float(row["speedup_median"]) for row in rows)
            paper = PAPER_TABLE4.get((backbone, task), {}).get(label)
            lines.append(
                f"| {backbone} | {task} | {METHOD_TITLES[label]} | {rows[0]['keep']} | {statistics.mean(accuracies):.1f} "
                f"| {', '.join(f'{a:.1f}' for a in accuracies)} | {'-' if paper is None else paper} | {speedup:.2f} |"
            )
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("folders", nargs="+", type=Path, help="folders holding result .json files")
    print(summarise(parser.parse_args(argv).folders))
    return 0


if __name__ == "__main__":
    sys.exit(main())
