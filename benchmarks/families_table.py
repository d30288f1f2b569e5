"""Rebuild the speed table of ``benchmarks/families.md`` from the CSVs ``benchmarks/families.sh`` wrote (one
``pyramid-bert bench --csv`` file per geometry, one row each).

    python benchmarks/families_table.py benchmarks/families/{minilm-l6,distilbert-small,...}_fixed.csv

Rows come in the order of the files given.
"""

from __future__ import annotations

import argparse
import csv

HEADER = ["geometry", "layers", "examples", "dense sorted ms", "real speedup, median (IQR)", "FLOPs model",
          "real / FLOPs", "paper protocol (padded to N)", "FLOPs (padded)"]  # fmt: skip
#: Geometries whose name does not say their family.
FAMILY_OF = {"minilm-l6": "BERT"}


def table_row(row: dict[str, str]) -> list[str]:
    model = row["model"]
    name = f"{model} ({FAMILY_OF[model]})" if model in FAMILY_OF else model
    real = f"{float(row['real_speedup']):.2f} ({float(row['real_q25']):.2f}-{float(row['real_q75']):.2f})"
    numbers = (row[column] for column in ("real_predicted", "real_ratio", "paper_speedup", "paper_predicted"))
    return [name, str(len(row["lengths"].split())), row["examples"], f"{float(row['dense_sorted_ms']):.0f}", real,
            *(f"{float(value):.2f}" for value in numbers)]  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("csv", nargs="+", help="bench CSVs, one per geometry, in the table's order")
    args = parser.parse_args()
    rows = []
    for path in args.csv:
        with open(path, newline="") as stream:
            rows += [table_row(row) for row in csv.DictReader(stream)]
    lines = ["| " + " | ".join(HEADER) + " |", "|" + "---|" * len(HEADER)]
    print("\n".join(lines + ["| " + " | ".join(row) + " |" for row in rows]))


if __name__ == "__main__":
    main()
