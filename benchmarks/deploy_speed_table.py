"""Rebuild the tables of ``benchmarks/deploy_speed.md`` from the raw samples ``pyramid-bert bench --latency --csv``
wrote (one row per timed call: every request at batch 1, every pass over the split at batch 32 / 128).

    python benchmarks/deploy_speed_table.py benchmarks/deploy_speed/threads1.csv benchmarks/deploy_speed/threads2.csv

Each file is summarized on its own (speedups are paired within one process) and printed as one Markdown table.
"""

from __future__ import annotations

import argparse
import csv

from pyramid_bert.measure.latency import Sample, format_deploy_table, summarize


def read_samples(path: str) -> list[Sample]:
    with open(path, newline="") as stream:
        return [
            Sample(row["kind"], row["variant"], int(row["threads"]), int(row["batch_size"]), int(row["repeat"]),
                   int(row["item"]), int(row["tokens"]), float(row["seconds"]))  # fmt: skip
            for row in csv.DictReader(stream)
        ]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("csv", nargs="+")
    args = parser.parse_args()
    rows = [row for path in args.csv for row in summarize(read_samples(path))]
    print(format_deploy_table(rows))


if __name__ == "__main__":
    main()
